//! Challenge validation (the VA): the only part of Castellan that makes outbound connections, to prove that an
//! ACME client controls an identifier (RFC 8555 §8, RFC 8737, RFC 8738).
//!
//! Everything it reads from the network is hostile, and every address it connects to is chosen by the party being
//! validated. So: every address passes the [`guard`] (after DNS resolution and on every redirect hop) and the VA
//! connects to exactly the address it checked; responses are read with a size limit; a whole validation runs under
//! one timeout; a semaphore bounds how many run at once. One file per challenge type, after Boulder's `va/`:
//! [`http01`], [`dns01`], [`tls_alpn01`].
//!
//! Errors say what the ACME client needs to fix (the identifier, the address, the URL, what was expected and what
//! was found), and [`ValidationError::problem_type`] names the RFC 8555 §6.7 problem type to report.

mod connect;
mod dns01;
pub mod guard;
mod http01;
mod resolver;
mod tls;
mod tls_alpn01;

#[cfg(test)]
pub(crate) mod testutil;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use castellan_acme_proto::types::{Identifier, IdentifierType};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;
use tokio::sync::Semaphore;

use guard::{AddressGuard, Refusal};
use resolver::DnsResolver;

/// Validation settings. `Default` gives production values (ports 80 and 443, the system resolver, the
/// [default denied networks](ValidationConfig::default_denied_networks)).
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// Port for http-01 requests (RFC 8555 §8.3: 80). Also the only port an `http` redirect may point to.
    pub http01_port: u16,
    /// Port for tls-alpn-01 handshakes (RFC 8737: 443). Also the only port an `https` redirect may point to.
    pub tls_alpn01_port: u16,
    /// Nameserver to query (over UDP, and TCP for truncated answers); `None` reads `/etc/resolv.conf`.
    pub dns_resolver: Option<SocketAddr>,
    /// If non-empty, the VA connects only to addresses in these networks.
    pub allowed_networks: Vec<IpNet>,
    /// The VA never connects to addresses in these networks (checked before `allowed_networks`).
    pub denied_networks: Vec<IpNet>,
    /// Limit on one whole validation: DNS, connections, redirects, reading.
    pub timeout: Duration,
    /// How many validations may run at once; more wait for a slot.
    pub max_concurrent: usize,
    /// http-01 response bodies are read up to this many bytes; a longer body fails validation.
    pub max_http_response_bytes: usize,
    /// DNS queries are tried this many times when they time out or get SERVFAIL.
    pub dns_attempts: u32,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolver: None,
            allowed_networks: Vec::new(),
            denied_networks: Self::default_denied_networks(),
            timeout: Duration::from_secs(10),
            max_concurrent: 64,
            // A key authorization is ~87 bytes; anything much larger is not one, and reading less keeps a hostile
            // server from making the VA buffer a lot.
            max_http_response_bytes: 64 * 1024,
            dns_attempts: 3,
        }
    }
}

impl ValidationConfig {
    /// Addresses no validation should reach: unspecified, loopback, link-local (which holds the cloud metadata
    /// service at 169.254.169.254; AWS also serves it at fd00:ec2::254), multicast and broadcast.
    ///
    /// RFC 1918, CGNAT and ULA space are *not* denied: an internal CA exists to validate internal names.
    pub fn default_denied_networks() -> Vec<IpNet> {
        fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len))
        }
        fn v6(segments: [u16; 8], len: u8) -> IpNet {
            let [a, b, c, d, e, f, g, h] = segments;
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len))
        }
        vec![
            // Unspecified ("this network").
            v4(0, 0, 0, 0, 8),
            v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
            // Loopback.
            v4(127, 0, 0, 0, 8),
            v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
            // Link-local, including instance metadata services.
            v4(169, 254, 0, 0, 16),
            v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
            // AWS's IPv6 metadata endpoint sits in ULA space, which is otherwise allowed.
            v6([0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254], 128),
            // Multicast and broadcast: never a single host that could answer a challenge.
            v4(224, 0, 0, 0, 4),
            v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
            v4(255, 255, 255, 255, 32),
        ]
    }
}

/// A challenge type the VA can validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ChallengeKind {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeKind {
    /// The RFC 8555 / RFC 8737 challenge type string.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::Dns01 => "dns-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRequest {
    pub kind: ChallengeKind,
    /// The identifier to validate; for a wildcard the RA passes the base name (no `*.`).
    pub identifier: Identifier,
    /// The challenge token (base64url).
    pub token: String,
    /// `token.thumbprint` (RFC 8555 §8.1), computed by the RA from the account key.
    pub key_authorization: String,
}

/// What the VA did in a successful validation: kept with the authorization, for audit and for the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationRecord {
    /// The identifier's value (a DNS name or an IP address).
    pub hostname: String,
    /// The port first connected to (none for dns-01).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The first URL requested (http-01).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Addresses the identifier resolved to (or the IP identifier itself).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses_resolved: Vec<IpAddr>,
    /// The address that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_used: Option<IpAddr>,
    /// http-01 redirects followed, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<RedirectRecord>,
}

impl ValidationRecord {
    fn new(identifier: &Host) -> Self {
        ValidationRecord {
            hostname: identifier.to_string(),
            port: None,
            url: None,
            addresses_resolved: Vec::new(),
            address_used: None,
            redirects: Vec::new(),
        }
    }
}

/// One redirect hop of an http-01 validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectRecord {
    pub url: String,
    pub hostname: String,
    pub port: u16,
    pub addresses_resolved: Vec<IpAddr>,
    pub address_used: IpAddr,
}

/// A connection attempt that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    pub address: SocketAddr,
    pub detail: String,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.detail)
    }
}

/// Writes `items` separated by "; ".
struct Joined<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

/// Why a validation failed. [`ValidationError::problem_type`] maps it to an ACME problem type; the `Display` text is
/// the problem's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("identifier {value:?} has type {kind:?}, which cannot be validated")]
    UnsupportedIdentifier { kind: String, value: String },
    #[error("{kind} identifier {value:?} cannot be validated: {reason}")]
    InvalidIdentifier { kind: &'static str, value: String, reason: &'static str },
    #[error("{challenge} cannot validate {identifier}: {reason}")]
    ChallengeNotApplicable { challenge: ChallengeKind, identifier: String, reason: &'static str },
    #[error("invalid challenge token {0:?}: a token is base64url (RFC 8555 §8.1)")]
    InvalidToken(String),
    #[error("DNS problem: {detail} looking up {record_type} for {name}")]
    Dns { name: String, record_type: &'static str, detail: String },
    #[error("refusing to connect to {host}: {}", Joined(.refusals))]
    AddressRefused { host: String, refusals: Vec<Refusal> },
    #[error("cannot connect to {host} on port {port}: {}", Joined(.failures))]
    Connection { host: String, port: u16, failures: Vec<ConnectFailure> },
    #[error("fetching {url} from {address}: {detail}")]
    Http { url: String, address: SocketAddr, detail: String },
    #[error("invalid response from {url} ({address}): HTTP {status}{}", body_preview(.body))]
    HttpStatus { url: String, address: SocketAddr, status: u16, body: String },
    #[error("invalid response from {url} ({address}): expected {expected:?}, got {got:?}{}", truncated_note(*.truncated))]
    KeyAuthorizationMismatch { url: String, address: SocketAddr, expected: String, got: String, truncated: bool },
    #[error("too many redirects: {url} redirects again after {max} redirects")]
    TooManyRedirects { url: String, max: usize },
    #[error("refusing redirect from {from} to {to:?}: {reason}")]
    RedirectRefused { from: String, to: String, reason: String },
    #[error("TLS handshake with {host} ({address}) failed: {detail}")]
    Tls { host: String, address: SocketAddr, detail: String },
    #[error("tls-alpn-01 for {identifier} at {address}: {detail}")]
    TlsAlpnResponse { identifier: String, address: SocketAddr, detail: String },
    #[error("no TXT record at {name} has the expected value {expected:?}; found {}", found_list(.found))]
    TxtMismatch { name: String, expected: String, found: Vec<String> },
    #[error("{challenge} validation of {identifier} timed out after {}", humantime(.after))]
    Timeout { challenge: ChallengeKind, identifier: String, after: Duration },
    #[error("internal error validating {identifier}: {detail}")]
    Internal { identifier: String, detail: String },
}

fn body_preview(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(", body {body:?}") }
}

fn truncated_note(truncated: bool) -> &'static str {
    if truncated { " (truncated)" } else { "" }
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "no TXT records".to_owned()
    } else {
        found.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
    }
}

fn humantime(d: &Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl ValidationError {
    /// The `urn:ietf:params:acme:error:` suffix (RFC 8555 §6.7) to report this failure with.
    pub fn problem_type(&self) -> &'static str {
        match self {
            ValidationError::UnsupportedIdentifier { .. } => "unsupportedIdentifier",
            // The identifier itself (or every address it resolves to) is outside what this CA validates.
            ValidationError::InvalidIdentifier { .. } | ValidationError::AddressRefused { .. } => "rejectedIdentifier",
            ValidationError::ChallengeNotApplicable { .. } | ValidationError::InvalidToken(_) => "malformed",
            ValidationError::Dns { .. } => "dns",
            ValidationError::Connection { .. }
            | ValidationError::Http { .. }
            | ValidationError::TooManyRedirects { .. }
            | ValidationError::RedirectRefused { .. }
            | ValidationError::Timeout { .. } => "connection",
            ValidationError::Tls { .. } => "tls",
            // A response arrived and did not prove control of the identifier.
            ValidationError::HttpStatus { .. }
            | ValidationError::KeyAuthorizationMismatch { .. }
            | ValidationError::TlsAlpnResponse { .. }
            | ValidationError::TxtMismatch { .. } => "unauthorized",
            ValidationError::Internal { .. } => "serverInternal",
        }
    }
}

/// Why a [`Validator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ValidationSetupError {
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    #[error("the validation timeout must be positive")]
    ZeroTimeout,
    #[error("max_http_response_bytes must be at least 1")]
    ZeroResponseLimit,
    #[error("cannot read the system resolver configuration {path}: {detail}")]
    ResolvConf { path: String, detail: String },
    #[error("no usable nameserver in {path}")]
    NoNameservers { path: String },
    #[error("TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A host the VA connects to: an identifier, or a redirect target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// A lower-case DNS name without trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Host {
    /// The identifier as a host, refusing values that are not plain names or addresses: the value goes into URLs,
    /// Host headers, SNI and DNS queries, so nothing else may pass.
    fn from_identifier(identifier: &Identifier) -> Result<Host, ValidationError> {
        let value = &identifier.value;
        match &identifier.kind {
            IdentifierType::Dns => {
                let invalid = |reason| ValidationError::InvalidIdentifier { kind: "dns", value: value.clone(), reason };
                if value.starts_with("*.") {
                    return Err(invalid("a wildcard is validated through its base name"));
                }
                if value.parse::<IpAddr>().is_ok() {
                    return Err(invalid("an IP address must be an \"ip\" identifier (RFC 8738)"));
                }
                check_dns_name(value).map_err(invalid)?;
                Ok(Host::Name(value.to_ascii_lowercase()))
            }
            IdentifierType::Ip => value.parse::<IpAddr>().map(Host::Ip).map_err(|_| {
                ValidationError::InvalidIdentifier { kind: "ip", value: value.clone(), reason: "not an IP address" }
            }),
            IdentifierType::Other(kind) => {
                Err(ValidationError::UnsupportedIdentifier { kind: kind.clone(), value: value.clone() })
            }
        }
    }
}

/// Checks a DNS name's syntax: ASCII letters, digits, hyphens and underscores in non-empty labels of at most 63
/// octets, at most 253 octets in all, no trailing dot.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > 253 {
        return Err("longer than 253 octets");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 octets");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("only letters, digits, '-' and '_' are allowed (IDNs in A-label form)");
        }
    }
    Ok(())
}

/// What the challenge implementations share.
struct Inner {
    config: ValidationConfig,
    guard: AddressGuard,
    resolver: DnsResolver,
    /// For tls-alpn-01: offers only "acme-tls/1", accepts any certificate.
    tls_alpn: Arc<rustls::ClientConfig>,
    /// For https redirect hops: offers "http/1.1", accepts any certificate.
    tls_https: Arc<rustls::ClientConfig>,
    slots: Semaphore,
}

/// The validation authority. Cheap to clone; clones share the resolver and the concurrency limit.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Validator {
    /// Checks the configuration and builds the resolver and the TLS client configurations.
    pub fn new(config: ValidationConfig) -> Result<Validator, ValidationSetupError> {
        if config.max_concurrent == 0 {
            return Err(ValidationSetupError::NoConcurrency);
        }
        if config.timeout.is_zero() {
            return Err(ValidationSetupError::ZeroTimeout);
        }
        if config.max_http_response_bytes == 0 {
            return Err(ValidationSetupError::ZeroResponseLimit);
        }
        let resolver = DnsResolver::new(&config)?;
        let guard = AddressGuard::new(config.allowed_networks.clone(), config.denied_networks.clone());
        let tls_alpn = tls::client_config(vec![tls_alpn01::ACME_TLS_1.to_vec()])?;
        let tls_https = tls::client_config(vec![b"http/1.1".to_vec()])?;
        let slots = Semaphore::new(config.max_concurrent);
        Ok(Validator { inner: Arc::new(Inner { config, guard, resolver, tls_alpn, tls_https, slots }) })
    }

    /// The configuration this validator was built with.
    pub fn config(&self) -> &ValidationConfig {
        &self.inner.config
    }

    /// Performs one validation: waits for a slot (at most `max_concurrent` run at once), then validates under the
    /// configured timeout.
    pub async fn validate(&self, request: &ValidationRequest) -> Result<ValidationRecord, ValidationError> {
        let started = Instant::now();
        let result = self.run(request).await;
        let elapsed_ms = started.elapsed().as_millis();
        let identifier = &request.identifier.value;
        match &result {
            Ok(record) => tracing::info!(
                challenge = %request.kind, %identifier, elapsed_ms, address = ?record.address_used,
                "validation succeeded"
            ),
            Err(err) => tracing::info!(
                challenge = %request.kind, %identifier, elapsed_ms, problem = err.problem_type(), error = %err,
                "validation failed"
            ),
        }
        result
    }

    async fn run(&self, request: &ValidationRequest) -> Result<ValidationRecord, ValidationError> {
        let inner = &*self.inner;
        let host = Host::from_identifier(&request.identifier)?;
        let _slot = inner.slots.acquire().await.map_err(|_| ValidationError::Internal {
            identifier: request.identifier.value.clone(),
            detail: "the validator's semaphore is closed".to_owned(),
        })?;
        let work = async {
            match request.kind {
                ChallengeKind::Http01 => {
                    http01::validate(inner, &host, &request.token, &request.key_authorization).await
                }
                ChallengeKind::Dns01 => dns01::validate(inner, &host, &request.key_authorization).await,
                ChallengeKind::TlsAlpn01 => tls_alpn01::validate(inner, &host, &request.key_authorization).await,
            }
        };
        match tokio::time::timeout(inner.config.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ValidationError::Timeout {
                challenge: request.kind,
                identifier: host.to_string(),
                after: inner.config.timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn identifiers_are_checked_before_anything_is_sent() {
        let cases = [
            (Identifier::dns("*.example.com"), "rejectedIdentifier"),
            (Identifier::dns("127.0.0.1"), "rejectedIdentifier"),
            (Identifier::dns("exa mple.com"), "rejectedIdentifier"),
            (Identifier::dns("example.com/evil"), "rejectedIdentifier"),
            (Identifier::dns("example.com:80"), "rejectedIdentifier"),
            (Identifier::dns("example..com"), "rejectedIdentifier"),
            (Identifier::dns("example.com."), "rejectedIdentifier"),
            (Identifier::dns(""), "rejectedIdentifier"),
            (Identifier::dns("ex\u{e4}mple.com"), "rejectedIdentifier"),
            (Identifier::ip("example.com"), "rejectedIdentifier"),
            (Identifier { kind: IdentifierType::Other("email".into()), value: "a@b".into() }, "unsupportedIdentifier"),
        ];
        for (identifier, problem) in cases {
            let err = Host::from_identifier(&identifier).unwrap_err();
            assert_eq!(err.problem_type(), problem, "{identifier:?}: {err}");
            assert!(err.to_string().contains(&identifier.value) || identifier.value.is_empty(), "{err}");
        }
        assert_eq!(
            Host::from_identifier(&Identifier::dns("WWW.Example.com")).unwrap(),
            Host::Name("www.example.com".into())
        );
        assert_eq!(Host::from_identifier(&Identifier::ip("::1")).unwrap(), Host::Ip("::1".parse().unwrap()));
    }

    #[test]
    fn default_config() {
        let config = ValidationConfig::default();
        assert_eq!((config.http01_port, config.tls_alpn01_port), (80, 443));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_concurrent, 64);
        assert_eq!(config.dns_attempts, 3);
        assert!(config.allowed_networks.is_empty());
        assert_eq!(config.denied_networks, ValidationConfig::default_denied_networks());
        let denies = |s: &str| config.denied_networks.iter().any(|n| n.contains(&s.parse::<IpAddr>().unwrap()));
        assert!(denies("169.254.169.254") && denies("127.0.0.1") && denies("::1") && !denies("10.0.0.1"));
    }

    #[test]
    fn setup_refuses_unusable_settings() {
        let config = ValidationConfig { max_concurrent: 0, ..ValidationConfig::default() };
        assert!(matches!(Validator::new(config), Err(ValidationSetupError::NoConcurrency)));
        let config = ValidationConfig { timeout: Duration::ZERO, ..ValidationConfig::default() };
        assert!(matches!(Validator::new(config), Err(ValidationSetupError::ZeroTimeout)));
        let config = ValidationConfig { max_http_response_bytes: 0, ..ValidationConfig::default() };
        assert!(matches!(Validator::new(config), Err(ValidationSetupError::ZeroResponseLimit)));
    }

    #[test]
    fn record_serializes_in_camel_case_without_empty_fields() {
        let record = ValidationRecord {
            hostname: "example.com".into(),
            port: Some(80),
            url: Some("http://example.com/.well-known/acme-challenge/t".into()),
            addresses_resolved: vec!["192.0.2.1".parse().unwrap()],
            address_used: Some("192.0.2.1".parse().unwrap()),
            redirects: vec![],
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "hostname": "example.com", "port": 80, "url": "http://example.com/.well-known/acme-challenge/t",
                "addressesResolved": ["192.0.2.1"], "addressUsed": "192.0.2.1"
            })
        );
        assert_eq!(serde_json::to_value(ChallengeKind::TlsAlpn01).unwrap(), "tls-alpn-01");
    }

    /// The timeout covers the whole validation: a server that accepts and never answers fails it in time.
    #[tokio::test]
    async fn validation_times_out_on_a_silent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _silent = spawn_abort_on_drop(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let dns = TestDns::start(&[]).await;
        let mut config = test_config(dns.addr);
        config.http01_port = port;
        config.timeout = Duration::from_millis(400);
        let validator = Validator::new(config).unwrap();
        let started = Instant::now();
        let err = validator.validate(&http01_request(Identifier::ip("127.0.0.1"), "tok")).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(err.problem_type(), "connection");
        assert!(matches!(err, ValidationError::Timeout { .. }), "{err:?}");
        assert_eq!(err.to_string(), "http-01 validation of 127.0.0.1 timed out after 0.4s");
    }

    /// At most `max_concurrent` validations run at once; the rest wait, and all complete.
    #[tokio::test]
    async fn concurrency_is_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (a, b) = (in_flight.clone(), peak.clone());
        let router = axum::Router::new().route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(move |axum::extract::Path(token): axum::extract::Path<String>| {
                let (in_flight, peak) = (a.clone(), b.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    format!("{token}.{THUMBPRINT}")
                }
            }),
        );
        let http = TestHttp::start(router).await;
        let dns = TestDns::start(&[]).await;
        let mut config = test_config(dns.addr);
        config.http01_port = http.port;
        config.max_concurrent = 2;
        let validator = Validator::new(config).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..6 {
            let validator = validator.clone();
            tasks.spawn(async move {
                validator.validate(&http01_request(Identifier::ip("127.0.0.1"), &format!("token{i}"))).await
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
