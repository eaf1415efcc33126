//! DNS for the VA: A/AAAA and TXT lookups through hickory, with Castellan's own retries.
//!
//! The resolver caches nothing (each validation sees DNS as it is now, like Boulder), uses no search domains and no
//! hosts file (names are absolute; the hosts file is the VA machine's view, not the identifier's), and retries only
//! what may succeed on a second try: timeouts, I/O errors and SERVFAIL. NXDOMAIN and empty answers are final.
//!
//! `localhost` and names under `.localhost` are loopback without asking DNS, as RFC 6761 §6.3 says resolvers should:
//! a development CA can then validate names on its own machine. Whether the VA may connect there is the SSRF
//! guard's decision, and by default it may not (loopback is denied unless `[acme.validation]` allows it).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Name, ResolveError, TokioResolver};

use super::{ValidationConfig, ValidationError, ValidationSetupError};

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// `localhost` or a name under it (RFC 6761 §6.3), in any case, with or without the final dot.
fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

pub(super) struct DnsResolver {
    resolver: TokioResolver,
    attempts: u32,
}

/// A lookup's failure after retries, kept apart from [`ValidationError`] so A and AAAA results can be combined.
struct LookupFailure {
    detail: String,
    /// NXDOMAIN, or NOERROR with no records of the type.
    no_data: bool,
    nx_domain: bool,
}

impl DnsResolver {
    pub(super) fn new(config: &ValidationConfig) -> Result<Self, ValidationSetupError> {
        let servers = match config.dns_resolver {
            Some(server) => vec![server],
            None => system_nameservers(Path::new(RESOLV_CONF))?,
        };
        let mut resolver_config = ResolverConfig::new();
        for server in servers {
            // UDP first; TCP for answers too large for UDP.
            resolver_config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
            resolver_config.add_name_server(NameServerConfig::new(server, Protocol::Tcp));
        }
        let attempts = config.dns_attempts.max(1);
        let mut options = ResolverOpts::default();
        // All attempts of all lookups a validation makes must fit in its timeout, with room to connect.
        options.timeout = (config.timeout / (attempts + 1)).max(Duration::from_millis(50));
        // Castellan retries itself (hickory would not retry SERVFAIL).
        options.attempts = 0;
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        options.edns0 = true;
        let resolver = TokioResolver::builder_with_config(resolver_config, TokioConnectionProvider::default())
            .with_options(options)
            .build();
        Ok(DnsResolver { resolver, attempts })
    }

    /// The addresses `host` resolves to, IPv6 first. Fails only if neither A nor AAAA gave an address.
    pub(super) async fn lookup_ips(&self, host: &str) -> Result<Vec<IpAddr>, ValidationError> {
        if is_localhost(host) {
            return Ok(vec![IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)]);
        }
        let name = absolute_name(host, "A/AAAA")?;
        let (v6, v4) = tokio::join!(
            self.with_retries(|| self.resolver.ipv6_lookup(name.clone())),
            self.with_retries(|| self.resolver.ipv4_lookup(name.clone())),
        );
        let mut addresses = Vec::new();
        if let Ok(lookup) = &v6 {
            addresses.extend(lookup.iter().map(|aaaa| IpAddr::V6(aaaa.0)));
        }
        if let Ok(lookup) = &v4 {
            addresses.extend(lookup.iter().map(|a| IpAddr::V4(a.0)));
        }
        if !addresses.is_empty() {
            return Ok(addresses);
        }
        let dns_error = |detail: String| ValidationError::Dns { name: host.to_owned(), record_type: "A/AAAA", detail };
        match (v4, v6) {
            // Report a real failure (timeout, SERVFAIL) over an empty answer: it is what the client must fix.
            (Err(v4), _) if !v4.no_data => Err(dns_error(v4.detail)),
            (_, Err(v6)) if !v6.no_data => Err(dns_error(v6.detail)),
            (Err(v4), _) if v4.nx_domain => Err(dns_error("NXDOMAIN (the name does not exist)".to_owned())),
            _ => Err(dns_error("no A or AAAA records".to_owned())),
        }
    }

    /// The TXT records at `name`, each record's strings joined. An existing name without TXT records gives an
    /// empty list; NXDOMAIN is an error.
    pub(super) async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, ValidationError> {
        let query = absolute_name(name, "TXT")?;
        match self.with_retries(|| self.resolver.txt_lookup(query.clone())).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    let bytes: Vec<u8> = txt.txt_data().iter().flat_map(|s| s.iter().copied()).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                })
                .collect()),
            Err(failure) if failure.no_data && !failure.nx_domain => Ok(Vec::new()),
            Err(failure) => {
                let detail =
                    if failure.nx_domain { "NXDOMAIN (the name does not exist)".to_owned() } else { failure.detail };
                Err(ValidationError::Dns { name: name.to_owned(), record_type: "TXT", detail })
            }
        }
    }

    async fn with_retries<T, F, Fut>(&self, lookup: F) -> Result<T, LookupFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ResolveError>>,
    {
        let mut attempt = 1;
        loop {
            match lookup().await {
                Ok(found) => return Ok(found),
                Err(err) if is_transient(&err) && attempt < self.attempts => {
                    tracing::debug!(attempt, error = %err, "transient DNS failure, retrying");
                    attempt += 1;
                }
                Err(err) => return Err(failure(&err, attempt)),
            }
        }
    }
}

/// `host` as an absolute DNS name, so no search domain is ever appended.
fn absolute_name(host: &str, record_type: &'static str) -> Result<Name, ValidationError> {
    let mut name = Name::from_ascii(host).map_err(|err| ValidationError::Dns {
        name: host.to_owned(),
        record_type,
        detail: format!("invalid DNS name: {err}"),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

fn is_transient(err: &ResolveError) -> bool {
    let Some(proto) = err.proto() else { return false };
    match proto.kind() {
        ProtoErrorKind::Timeout | ProtoErrorKind::Io(_) | ProtoErrorKind::NoConnections | ProtoErrorKind::Busy => true,
        ProtoErrorKind::NoRecordsFound { response_code, .. } => *response_code == ResponseCode::ServFail,
        _ => false,
    }
}

fn failure(err: &ResolveError, attempts: u32) -> LookupFailure {
    let after = if attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() };
    let kind = err.proto().map(|proto| proto.kind());
    match kind {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
            let nx_domain = *response_code == ResponseCode::NXDomain;
            let no_data = nx_domain || *response_code == ResponseCode::NoError;
            let detail = match *response_code {
                ResponseCode::NoError => "no records".to_owned(),
                ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
                ResponseCode::ServFail => format!("SERVFAIL{after}"),
                ResponseCode::Refused => "REFUSED".to_owned(),
                other => format!("server answered {other}{after}"),
            };
            LookupFailure { detail, no_data, nx_domain }
        }
        Some(ProtoErrorKind::Timeout) => {
            LookupFailure { detail: format!("query timed out{after}"), no_data: false, nx_domain: false }
        }
        _ => LookupFailure { detail: format!("{err}{after}"), no_data: false, nx_domain: false },
    }
}

/// The `nameserver` lines of a resolv.conf (port 53; an IPv6 zone suffix is dropped).
fn system_nameservers(path: &Path) -> Result<Vec<SocketAddr>, ValidationSetupError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|err| ValidationSetupError::ResolvConf { path: shown.clone(), detail: err.to_string() })?;
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            let address = words.next()?.split('%').next()?;
            address.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
        })
        .collect();
    if servers.is_empty() {
        return Err(ValidationSetupError::NoNameservers { path: shown });
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Instant;

    use super::super::testutil::*;
    use super::*;

    fn resolver(dns: SocketAddr, attempts: u32) -> DnsResolver {
        let config = ValidationConfig {
            dns_resolver: Some(dns),
            dns_attempts: attempts,
            timeout: Duration::from_secs(2),
            ..ValidationConfig::default()
        };
        DnsResolver::new(&config).unwrap()
    }

    #[tokio::test]
    async fn a_aaaa_and_txt() {
        let dns = TestDns::start(&[
            ("both.va.test", TestRecord::A(Ipv4Addr::new(192, 0, 2, 1))),
            ("both.va.test", TestRecord::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
            ("v4.va.test", TestRecord::A(Ipv4Addr::new(192, 0, 2, 2))),
            ("txt.va.test", TestRecord::Txt(vec!["one".into()])),
            ("txt.va.test", TestRecord::Txt(vec!["two-".into(), "parts".into()])),
        ])
        .await;
        let resolver = resolver(dns.addr, 3);
        let ips = resolver.lookup_ips("both.va.test").await.unwrap();
        assert_eq!(ips, vec!["2001:db8::1".parse::<IpAddr>().unwrap(), "192.0.2.1".parse().unwrap()]);
        assert_eq!(resolver.lookup_ips("V4.va.test").await.unwrap(), vec!["192.0.2.2".parse::<IpAddr>().unwrap()]);
        let mut txt = resolver.lookup_txt("txt.va.test").await.unwrap();
        txt.sort();
        assert_eq!(txt, vec!["one".to_owned(), "two-parts".to_owned()]);
        // An existing name without TXT records: an empty answer, not an error.
        assert_eq!(resolver.lookup_txt("v4.va.test").await.unwrap(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn nxdomain_and_no_data_are_final_dns_errors() {
        let dns = TestDns::start(&[("txt.va.test", TestRecord::Txt(vec!["x".into()]))]).await;
        let resolver = resolver(dns.addr, 3);
        let err = resolver.lookup_ips("missing.va.test").await.unwrap_err();
        assert_eq!(err.problem_type(), "dns");
        assert_eq!(
            err.to_string(),
            "DNS problem: NXDOMAIN (the name does not exist) looking up A/AAAA for missing.va.test"
        );
        let err = resolver.lookup_ips("txt.va.test").await.unwrap_err();
        assert_eq!(err.to_string(), "DNS problem: no A or AAAA records looking up A/AAAA for txt.va.test");
        let err = resolver.lookup_txt("missing.va.test").await.unwrap_err();
        assert_eq!(err.problem_type(), "dns");
        assert!(err.to_string().contains("NXDOMAIN"), "{err}");
        // Each was asked once (NXDOMAIN is not retried): A+AAAA twice, TXT once.
        assert_eq!(dns.queries(), 5);
    }

    #[tokio::test]
    async fn servfail_is_retried_up_to_dns_attempts() {
        let dns = TestDns::start(&[("txt.va.test", TestRecord::Txt(vec!["value".into()]))]).await;
        // Two SERVFAILs, then the real answer: three attempts succeed.
        let flaky = FlakyDns::start(dns.addr, 2).await;
        let resolver3 = resolver(flaky.addr, 3);
        assert_eq!(resolver3.lookup_txt("txt.va.test").await.unwrap(), vec!["value".to_owned()]);
        assert_eq!(flaky.servfails(), 2);

        // With two attempts, two SERVFAILs are the answer.
        let flaky = FlakyDns::start(dns.addr, 2).await;
        let resolver2 = resolver(flaky.addr, 2);
        let err = resolver2.lookup_txt("txt.va.test").await.unwrap_err();
        assert_eq!(err.problem_type(), "dns");
        assert_eq!(err.to_string(), "DNS problem: SERVFAIL (after 2 attempts) looking up TXT for txt.va.test");
    }

    #[tokio::test]
    async fn a_silent_nameserver_times_out_after_the_attempts() {
        let silent = SilentDns::start().await;
        let resolver = resolver(silent.addr, 2);
        let started = Instant::now();
        let err = resolver.lookup_txt("txt.va.test").await.unwrap_err();
        assert_eq!(err.problem_type(), "dns");
        assert!(err.to_string().contains("timed out"), "{err}");
        // Two attempts of timeout/3 each.
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(silent.queries() >= 2, "{}", silent.queries());
    }

    #[test]
    fn localhost_names_are_loopback_without_dns() {
        for name in ["localhost", "app.localhost", "App.LocalHost.", "a.b.localhost"] {
            assert!(is_localhost(name), "{name}");
        }
        for name in ["localhost.example", "notlocalhost", "localhostx", "example.com"] {
            assert!(!is_localhost(name), "{name}");
        }
    }

    #[tokio::test]
    async fn localhost_is_answered_without_a_query() {
        let silent = SilentDns::start().await;
        let resolver = resolver(silent.addr, 1);
        let addresses = resolver.lookup_ips("app.localhost").await.unwrap();
        assert_eq!(addresses, [IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(silent.queries(), 0);
    }

    #[test]
    fn resolv_conf_nameservers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "# generated\nsearch corp.example\nnameserver 10.0.0.53 # primary\nnameserver fe80::1%eth0\n\
             nameserver not-an-ip\noptions ndots:2\n",
        )
        .unwrap();
        assert_eq!(
            system_nameservers(&path).unwrap(),
            vec!["10.0.0.53:53".parse::<SocketAddr>().unwrap(), "[fe80::1]:53".parse().unwrap()]
        );
        std::fs::write(&path, "search corp.example\n").unwrap();
        assert!(matches!(system_nameservers(&path), Err(ValidationSetupError::NoNameservers { .. })));
        assert!(matches!(
            system_nameservers(&dir.path().join("missing")),
            Err(ValidationSetupError::ResolvConf { .. })
        ));
    }
}
