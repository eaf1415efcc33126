//! Resolving a host and connecting to it through the guard, shared by http-01 and tls-alpn-01.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use super::guard::Refusal;
use super::{ConnectFailure, Host, Inner, ValidationError};

/// Why no connection was made.
pub(super) enum ConnectError {
    /// The guard refused every address.
    Refused(Vec<Refusal>),
    /// Every allowed address failed to connect.
    Failed(Vec<ConnectFailure>),
}

impl ConnectError {
    /// The error for a connection to the identifier itself.
    pub(super) fn for_host(self, host: &Host, port: u16) -> ValidationError {
        match self {
            ConnectError::Refused(refusals) => ValidationError::AddressRefused { host: host.to_string(), refusals },
            ConnectError::Failed(failures) => ValidationError::Connection { host: host.to_string(), port, failures },
        }
    }
}

/// The addresses to try for `host`: the IP itself, or its AAAA then A records.
pub(super) async fn addresses(inner: &Inner, host: &Host) -> Result<Vec<IpAddr>, ValidationError> {
    match host {
        Host::Ip(ip) => Ok(vec![*ip]),
        Host::Name(name) => inner.resolver.lookup_ips(name).await,
    }
}

/// Connects to the first of `addresses` that the guard allows and that accepts, returning the stream and the
/// address actually connected to (checked, never re-resolved). Denied addresses are skipped, so a name with one
/// public and one denied address still validates through the public one.
pub(super) async fn connect(
    inner: &Inner,
    addresses: &[IpAddr],
    port: u16,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let mut refusals = Vec::new();
    let mut allowed = Vec::new();
    for address in addresses {
        match inner.guard.check(*address) {
            Ok(effective) if !allowed.contains(&effective) => allowed.push(effective),
            Ok(_) => {}
            Err(refusal) => refusals.push(refusal),
        }
    }
    if allowed.is_empty() {
        return Err(ConnectError::Refused(refusals));
    }
    for refusal in &refusals {
        tracing::debug!(%refusal, "skipping refused address");
    }
    // Give one unreachable address at most half the budget, so a second one can still be tried.
    let per_address = inner.config.timeout / 2;
    let mut failures = Vec::new();
    for ip in allowed {
        let address = SocketAddr::new(ip, port);
        match tokio::time::timeout(per_address, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok((stream, address)),
            Ok(Err(err)) => failures.push(ConnectFailure { address, detail: err.to_string() }),
            Err(_) => failures.push(ConnectFailure { address, detail: timed_out(per_address) }),
        }
    }
    Err(ConnectError::Failed(failures))
}

fn timed_out(after: Duration) -> String {
    format!("connection timed out after {:.1}s", after.as_secs_f64())
}
