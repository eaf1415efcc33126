//! http-01 (RFC 8555 §8.3; IP identifiers RFC 8738 §3).
//!
//! GET `http://<identifier>:<http01_port>/.well-known/acme-challenge/<token>`, following at most
//! [`MAX_REDIRECTS`] redirects, each only to http or https on an allowed port, each re-resolved and re-checked by
//! the guard. The VA opens every TCP connection itself, to the address the guard checked, and speaks HTTP/1.1 over
//! it with hyper; https hops do not check the certificate (the body is the proof, as in Boulder). The body is read
//! up to `max_http_response_bytes` and must equal the key authorization, trailing whitespace aside.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, HOST, LOCATION, USER_AGENT};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::connect::{self, ConnectError};
use super::{Host, Inner, Joined, RedirectRecord, ValidationConfig, ValidationError, ValidationRecord, check_dns_name};

/// Redirects followed before giving up (Boulder's limit).
pub(super) const MAX_REDIRECTS: usize = 10;

/// How much of a wrong body an error message shows.
const PREVIEW_BYTES: usize = 128;

const USER_AGENT_VALUE: &str = concat!("castellan-va/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A URL the VA requests: always an absolute http(s) URL to a checked host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: Scheme,
    host: Host,
    port: u16,
    /// Origin-form request target, starting with '/'.
    path_and_query: String,
}

impl Url {
    /// `host[:port]`, the port only when not the scheme's default: the Host header and the URL's authority.
    fn authority(&self) -> String {
        let host = match &self.host {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            host => host.to_string(),
        };
        if self.port == self.scheme.default_port() { host } else { format!("{host}:{}", self.port) }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.authority(), self.path_and_query)
    }
}

/// One response.
enum Fetched {
    Redirect { location: String },
    Body { status: StatusCode, body: Vec<u8>, truncated: bool },
}

pub(super) async fn validate(
    inner: &Inner,
    identifier: &Host,
    token: &str,
    key_authorization: &str,
) -> Result<ValidationRecord, ValidationError> {
    // The token goes into the path; RFC 8555 §8.1 makes it base64url, and nothing else may reach the URL.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ValidationError::InvalidToken(token.to_owned()));
    }
    let mut url = Url {
        scheme: Scheme::Http,
        host: identifier.clone(),
        port: inner.config.http01_port,
        path_and_query: format!("/.well-known/acme-challenge/{token}"),
    };
    let mut record = ValidationRecord::new(identifier);
    record.port = Some(url.port);
    record.url = Some(url.to_string());
    let mut previous: Option<Url> = None;
    loop {
        let addresses = connect::addresses(inner, &url.host).await?;
        let (stream, address) = match (connect::connect(inner, &addresses, url.port).await, &previous) {
            (Ok(connected), _) => connected,
            (Err(err), None) => return Err(err.for_host(&url.host, url.port)),
            (Err(ConnectError::Refused(refusals)), Some(from)) => {
                return Err(ValidationError::RedirectRefused {
                    from: from.to_string(),
                    to: url.to_string(),
                    reason: Joined(&refusals).to_string(),
                });
            }
            (Err(ConnectError::Failed(failures)), Some(_)) => {
                return Err(ValidationError::Connection { host: url.host.to_string(), port: url.port, failures });
            }
        };
        if previous.is_none() {
            record.addresses_resolved = addresses;
            record.address_used = Some(address.ip());
        } else {
            record.redirects.push(RedirectRecord {
                url: url.to_string(),
                hostname: url.host.to_string(),
                port: url.port,
                addresses_resolved: addresses,
                address_used: address.ip(),
            });
        }
        match fetch(inner, &url, stream, address).await? {
            Fetched::Redirect { location } => {
                if record.redirects.len() == MAX_REDIRECTS {
                    return Err(ValidationError::TooManyRedirects { url: url.to_string(), max: MAX_REDIRECTS });
                }
                let next = redirect_target(&inner.config, &url, &location)?;
                tracing::debug!(from = %url, to = %next, "following redirect");
                previous = Some(std::mem::replace(&mut url, next));
            }
            Fetched::Body { status, body, .. } if status != StatusCode::OK => {
                return Err(ValidationError::HttpStatus {
                    url: url.to_string(),
                    address,
                    status: status.as_u16(),
                    body: preview(&body).0,
                });
            }
            Fetched::Body { body, truncated, .. } => {
                let trimmed = body.trim_ascii_end();
                if !truncated && trimmed == key_authorization.as_bytes() {
                    return Ok(record);
                }
                let (got, cut) = preview(trimmed);
                return Err(ValidationError::KeyAuthorizationMismatch {
                    url: url.to_string(),
                    address,
                    expected: key_authorization.to_owned(),
                    got,
                    truncated: truncated || cut,
                });
            }
        }
    }
}

/// The start of `body` as text, and whether it was cut.
fn preview(body: &[u8]) -> (String, bool) {
    let shown = &body[..body.len().min(PREVIEW_BYTES)];
    (String::from_utf8_lossy(shown).into_owned(), shown.len() < body.len())
}

/// One request over a fresh connection (TLS first for https).
async fn fetch(inner: &Inner, url: &Url, stream: TcpStream, address: SocketAddr) -> Result<Fetched, ValidationError> {
    match url.scheme {
        Scheme::Http => exchange(inner, url, stream, address).await,
        Scheme::Https => {
            let server_name = match &url.host {
                Host::Name(name) => ServerName::try_from(name.clone()).map_err(|err| ValidationError::Tls {
                    host: name.clone(),
                    address,
                    detail: format!("not usable as SNI: {err}"),
                })?,
                // rustls sends no SNI for an IP address (RFC 6066 §3).
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            };
            let tls = tokio_rustls::TlsConnector::from(inner.tls_https.clone())
                .connect(server_name, stream)
                .await
                .map_err(|err| ValidationError::Tls { host: url.host.to_string(), address, detail: err.to_string() })?;
            exchange(inner, url, tls, address).await
        }
    }
}

async fn exchange<S>(inner: &Inner, url: &Url, io: S, address: SocketAddr) -> Result<Fetched, ValidationError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |detail: String| ValidationError::Http { url: url.to_string(), address, detail };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|err| http_error(chain(&err)))?;
    // The connection is driven beside the request and dropped with it (on timeout too).
    let driver = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "http-01 connection ended with an error");
        }
    });
    let _abort = AbortOnDrop(driver);
    let request = Request::get(url.path_and_query.as_str())
        .header(HOST, url.authority())
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|err| http_error(format!("cannot build the request: {err}")))?;
    let response = sender.send_request(request).await.map_err(|err| http_error(chain(&err)))?;
    let status = response.status();
    let is_redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
    if let (true, Some(location)) = (is_redirect, response.headers().get(LOCATION)) {
        let location = location.to_str().map_err(|_| ValidationError::RedirectRefused {
            from: url.to_string(),
            to: String::from_utf8_lossy(location.as_bytes()).into_owned(),
            reason: "the Location header is not ASCII".to_owned(),
        })?;
        return Ok(Fetched::Redirect { location: location.to_owned() });
    }
    let (body, truncated) =
        read_limited(response.into_body(), inner.config.max_http_response_bytes).await.map_err(http_error)?;
    Ok(Fetched::Body { status, body, truncated })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads at most `limit` bytes of `body`; `true` if there was more.
async fn read_limited(mut body: Incoming, limit: usize) -> Result<(Vec<u8>, bool), String> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| format!("reading the body: {}", chain(&err)))?;
        if let Ok(data) = frame.into_data() {
            let room = limit - buf.len();
            if data.len() > room {
                buf.extend_from_slice(&data[..room]);
                return Ok((buf, true));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf, false))
}

/// An error and its sources, for hyper's terse errors ("connection error" → why).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves `location` against `from` and checks it may be followed: http or https, a host name or address, no
/// credentials, and a port that http-01 or tls-alpn-01 uses (80 or 443 in production).
fn redirect_target(config: &ValidationConfig, from: &Url, location: &str) -> Result<Url, ValidationError> {
    let refuse =
        |reason: String| ValidationError::RedirectRefused { from: from.to_string(), to: location.to_owned(), reason };
    let reference = location.split('#').next().unwrap_or_default().trim();
    if reference.is_empty() {
        return Err(refuse("empty Location header".to_owned()));
    }
    let target = if reference.starts_with("//") {
        // Scheme-relative.
        parse_absolute(&format!("{}:{reference}", from.scheme.as_str())).map_err(refuse)?
    } else if has_scheme(reference) {
        parse_absolute(reference).map_err(refuse)?
    } else {
        let path = if reference.starts_with('/') {
            reference.to_owned()
        } else {
            // Relative path: against the directory of the current path (query dropped).
            let current = from.path_and_query.split('?').next().unwrap_or("/");
            let directory = &current[..current.rfind('/').map_or(0, |i| i + 1)];
            format!("{directory}{reference}")
        };
        let path = path.parse::<PathAndQuery>().map_err(|err| refuse(format!("not a valid URL path: {err}")))?;
        Url { path_and_query: path.to_string(), ..from.clone() }
    };
    if target.port != config.http01_port && target.port != config.tls_alpn01_port {
        return Err(refuse(format!(
            "port {} is not allowed; redirects may only go to ports {} and {}",
            target.port, config.http01_port, config.tls_alpn01_port
        )));
    }
    Ok(target)
}

/// Whether `reference` starts with a URI scheme (RFC 3986 §3.1) followed by ':'.
fn has_scheme(reference: &str) -> bool {
    let Some(colon) = reference.find(':') else { return false };
    let scheme = &reference[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn parse_absolute(text: &str) -> Result<Url, String> {
    let uri: Uri = text.parse().map_err(|err| format!("not a valid URL: {err}"))?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
        Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
        Some(s) => return Err(format!("only http and https redirects are followed, not {s}")),
        None => return Err("no scheme".to_owned()),
    };
    let authority = uri.authority().ok_or("no host")?;
    if authority.as_str().contains('@') {
        return Err("URLs with credentials are not followed".to_owned());
    }
    let host_text = authority.host();
    let bare = host_text.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host_text);
    let host = match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if host_text.starts_with('[') => return Err(format!("invalid IPv6 address {host_text}")),
        Err(_) => {
            let name = bare.to_ascii_lowercase();
            check_dns_name(&name).map_err(|reason| format!("invalid host {host_text:?}: {reason}"))?;
            Host::Name(name)
        }
    };
    let port = match authority.port_u16() {
        Some(port) => port,
        None if authority.as_str().ends_with(':') => return Err("empty port".to_owned()),
        None => scheme.default_port(),
    };
    let path_and_query = match uri.path_and_query().map(PathAndQuery::as_str) {
        None | Some("") => "/".to_owned(),
        Some(path) if !path.starts_with('/') => format!("/{path}"),
        Some(path) => path.to_owned(),
    };
    Ok(Url { scheme, host, port, path_and_query })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    use castellan_acme_proto::types::Identifier;

    use super::super::testutil::*;
    use super::super::{ValidationConfig, Validator};
    use super::*;

    const CHALLENGE: &str = "/.well-known/acme-challenge/{token}";

    fn ka_route() -> Router {
        Router::new().route(CHALLENGE, get(|Path(token): Path<String>| async move { key_authorization(&token) }))
    }

    async fn zone() -> TestDns {
        TestDns::start(&[
            ("web.va.test", TestRecord::A(Ipv4Addr::LOCALHOST)),
            ("other.va.test", TestRecord::A(Ipv4Addr::LOCALHOST)),
            ("metadata.va.test", TestRecord::A(Ipv4Addr::new(169, 254, 169, 254))),
            ("mixed.va.test", TestRecord::A(Ipv4Addr::new(169, 254, 169, 254))),
            ("mixed.va.test", TestRecord::A(Ipv4Addr::LOCALHOST)),
        ])
        .await
    }

    fn validator(dns: &TestDns, http_port: u16) -> Validator {
        let config = ValidationConfig { http01_port: http_port, ..test_config(dns.addr) };
        Validator::new(config).unwrap()
    }

    async fn run(router: Router, identifier: Identifier) -> (Result<ValidationRecord, ValidationError>, u16) {
        let dns = zone().await;
        let http = TestHttp::start(router).await;
        let result = validator(&dns, http.port).validate(&http01_request(identifier, "tok-1")).await;
        (result, http.port)
    }

    #[tokio::test]
    async fn valid_by_name_with_host_header_and_trailing_whitespace() {
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let seen = hosts.clone();
        let router = Router::new().route(
            CHALLENGE,
            get(move |Path(token): Path<String>, headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(headers.get(header::HOST).unwrap().to_str().unwrap().to_owned());
                    format!("{}\r\n \t\n", key_authorization(&token))
                }
            }),
        );
        let (result, port) = run(router, Identifier::dns("web.va.test")).await;
        let record = result.unwrap();
        assert_eq!(
            record,
            ValidationRecord {
                hostname: "web.va.test".into(),
                port: Some(port),
                url: Some(format!("http://web.va.test:{port}/.well-known/acme-challenge/tok-1")),
                addresses_resolved: vec!["127.0.0.1".parse().unwrap()],
                address_used: Some("127.0.0.1".parse().unwrap()),
                redirects: vec![],
            }
        );
        assert_eq!(*hosts.lock().unwrap(), vec![format!("web.va.test:{port}")]);
    }

    #[tokio::test]
    async fn valid_by_ip_identifier() {
        let (result, port) = run(ka_route(), Identifier::ip("127.0.0.1")).await;
        let record = result.unwrap();
        assert_eq!(record.hostname, "127.0.0.1");
        assert_eq!(record.url.unwrap(), format!("http://127.0.0.1:{port}/.well-known/acme-challenge/tok-1"));
    }

    #[tokio::test]
    async fn ipv6_is_tried_first_then_ipv4() {
        // Nothing listens on [::1]:port (or IPv6 is absent): the VA falls back to 127.0.0.1.
        let dns = TestDns::start(&[
            ("dual.va.test", TestRecord::Aaaa(std::net::Ipv6Addr::LOCALHOST)),
            ("dual.va.test", TestRecord::A(Ipv4Addr::LOCALHOST)),
        ])
        .await;
        let http = TestHttp::start(ka_route()).await;
        let record = validator(&dns, http.port)
            .validate(&http01_request(Identifier::dns("dual.va.test"), "tok-1"))
            .await
            .unwrap();
        assert_eq!(record.addresses_resolved, vec!["::1".parse::<IpAddr>().unwrap(), "127.0.0.1".parse().unwrap()]);
        assert_eq!(record.address_used, Some("127.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn ipv6_identifier_with_bracketed_host() {
        let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here; skipping");
            return;
        };
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let seen = hosts.clone();
        let router = Router::new().route(
            CHALLENGE,
            get(move |Path(token): Path<String>, headers: HeaderMap| {
                seen.lock().unwrap().push(headers.get(header::HOST).unwrap().to_str().unwrap().to_owned());
                async move { key_authorization(&token) }
            }),
        );
        let http = TestHttp::start_on(listener, router);
        let dns = zone().await;
        let record =
            validator(&dns, http.port).validate(&http01_request(Identifier::ip("::1"), "tok-1")).await.unwrap();
        let port = http.port;
        assert_eq!(record.url.unwrap(), format!("http://[::1]:{port}/.well-known/acme-challenge/tok-1"));
        assert_eq!(*hosts.lock().unwrap(), vec![format!("[::1]:{port}")]);
    }

    #[tokio::test]
    async fn wrong_body_is_unauthorized_and_says_what_was_expected() {
        let router = Router::new().route(CHALLENGE, get(|| async { "not-the-key-authorization" }));
        let (result, port) = run(router, Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "unauthorized");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid response from http://web.va.test:{port}/.well-known/acme-challenge/tok-1 (127.0.0.1:{port}): \
                 expected \"tok-1.{THUMBPRINT}\", got \"not-the-key-authorization\""
            )
        );
    }

    #[tokio::test]
    async fn oversize_body_is_cut_and_refused() {
        // The key authorization followed by more than the limit: not read to the end, and not accepted.
        let router =
            Router::new().route(
                CHALLENGE,
                get(|Path(token): Path<String>| async move {
                    format!("{}{}", key_authorization(&token), "x".repeat(100_000))
                }),
            );
        let (result, _) = run(router, Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "unauthorized");
        assert!(matches!(err, ValidationError::KeyAuthorizationMismatch { truncated: true, .. }), "{err:?}");
        assert!(err.to_string().ends_with("(truncated)"), "{err}");
    }

    #[tokio::test]
    async fn body_of_exactly_the_limit_is_read_whole() {
        let dns = zone().await;
        let http = TestHttp::start(ka_route()).await;
        let config = ValidationConfig {
            http01_port: http.port,
            max_http_response_bytes: key_authorization("tok-1").len(),
            ..test_config(dns.addr)
        };
        let validator = Validator::new(config).unwrap();
        validator.validate(&http01_request(Identifier::dns("web.va.test"), "tok-1")).await.unwrap();
    }

    #[tokio::test]
    async fn not_found_is_unauthorized_with_the_status() {
        let router = Router::new().route(CHALLENGE, get(|| async { (AxumStatus::NOT_FOUND, "no such token") }));
        let (result, port) = run(router, Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "unauthorized");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid response from http://web.va.test:{port}/.well-known/acme-challenge/tok-1 (127.0.0.1:{port}): \
                 HTTP 404, body \"no such token\""
            )
        );
    }

    #[tokio::test]
    async fn redirect_chain_is_followed_and_recorded() {
        let port = Arc::new(Mutex::new(0u16));
        let p = port.clone();
        let router = Router::new()
            // Relative path first, then absolute to another name, then a relative reference.
            .route(
                CHALLENGE,
                get(|Path(token): Path<String>| async move { Redirect::temporary(&format!("/hop1/{token}")) }),
            )
            .route(
                "/hop1/{token}",
                get(move |Path(token): Path<String>| {
                    let port = *p.lock().unwrap();
                    async move { Redirect::permanent(&format!("http://OTHER.va.test:{port}/dir/hop2?t={token}#frag")) }
                }),
            )
            .route("/dir/hop2", get(|| async { Redirect::to("final") }))
            .route("/dir/final", get(|| async { key_authorization("tok-1") }));
        let dns = zone().await;
        let http = TestHttp::start(router).await;
        *port.lock().unwrap() = http.port;
        let record = validator(&dns, http.port)
            .validate(&http01_request(Identifier::dns("web.va.test"), "tok-1"))
            .await
            .unwrap();
        let port = http.port;
        let urls: Vec<_> = record.redirects.iter().map(|r| r.url.clone()).collect();
        assert_eq!(
            urls,
            vec![
                format!("http://web.va.test:{port}/hop1/tok-1"),
                format!("http://other.va.test:{port}/dir/hop2?t=tok-1"),
                format!("http://other.va.test:{port}/dir/final"),
            ]
        );
        assert_eq!(record.redirects[1].hostname, "other.va.test");
        assert_eq!(record.redirects[1].addresses_resolved, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    /// `/.well-known/...` → /r/1 → /r/2 → … → /r/{n} serves the key authorization: n redirects.
    fn redirects(n: usize) -> Router {
        Router::new().route(CHALLENGE, get(|| async { Redirect::temporary("/r/1") })).route(
            "/r/{i}",
            get(move |Path(i): Path<usize>| async move {
                if i >= n {
                    key_authorization("tok-1").into_response()
                } else {
                    Redirect::temporary(&format!("/r/{}", i + 1)).into_response()
                }
            }),
        )
    }

    #[tokio::test]
    async fn ten_redirects_are_followed_eleven_are_not() {
        let (result, _) = run(redirects(10), Identifier::dns("web.va.test")).await;
        assert_eq!(result.unwrap().redirects.len(), 10);

        let (result, port) = run(redirects(11), Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "connection");
        assert_eq!(
            err.to_string(),
            format!("too many redirects: http://web.va.test:{port}/r/10 redirects again after 10 redirects")
        );
    }

    fn redirect_to(target: &'static str) -> Router {
        let router = Router::new();
        router.route(
            CHALLENGE,
            get(move |headers: HeaderMap| async move {
                // {port} in the target is this server's port, taken from the Host header.
                let host = headers.get(header::HOST).unwrap().to_str().unwrap().to_owned();
                let port = host.rsplit(':').next().unwrap().to_owned();
                Redirect::temporary(&target.replace("{port}", &port))
            }),
        )
    }

    #[tokio::test]
    async fn redirect_to_a_denied_address_is_refused() {
        // A name resolving to the metadata service: re-resolved and refused on the hop.
        let (result, port) =
            run(redirect_to("http://metadata.va.test:{port}/latest/meta-data/"), Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "connection");
        assert_eq!(
            err.to_string(),
            format!(
                "refusing redirect from http://web.va.test:{port}/.well-known/acme-challenge/tok-1 to \
                 \"http://metadata.va.test:{port}/latest/meta-data/\": 169.254.169.254 is in denied network 169.254.0.0/16"
            )
        );
        // An IPv4-mapped literal is checked as the IPv4 address.
        let (result, _) =
            run(redirect_to("http://[::ffff:169.254.169.254]:{port}/"), Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "connection");
        assert!(err.to_string().ends_with("::ffff:169.254.169.254 is in denied network 169.254.0.0/16"), "{err}");
    }

    #[tokio::test]
    async fn redirect_to_another_port_or_scheme_is_refused() {
        let (result, port) = run(redirect_to("http://web.va.test:8081/x"), Identifier::dns("web.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "connection");
        assert!(
            err.to_string().ends_with(&format!(
                "\"http://web.va.test:8081/x\": port 8081 is not allowed; redirects may only go to ports {port} and 443"
            )),
            "{err}"
        );
        // No port: http means 80, which is not the test's http01_port.
        let (result, _) = run(redirect_to("http://web.va.test/x"), Identifier::dns("web.va.test")).await;
        assert!(result.unwrap_err().to_string().contains("port 80 is not allowed"));
        for target in ["ftp://web.va.test:{port}/x", "file:///etc/passwd", "http://user:pw@web.va.test:{port}/"] {
            let (result, _) = run(redirect_to(target), Identifier::dns("web.va.test")).await;
            let err = result.unwrap_err();
            assert_eq!(err.problem_type(), "connection", "{target}");
            assert!(matches!(err, ValidationError::RedirectRefused { .. }), "{target}: {err:?}");
        }
    }

    #[tokio::test]
    async fn https_hop_without_certificate_checks() {
        let https =
            TestHttp::start_tls(ka_route(), &self_signed(vec![san_extension(vec![dns_name("elsewhere.example")])]))
                .await;
        let dns = zone().await;
        let tls_port = https.port;
        let router = Router::new().route(
            CHALLENGE,
            get(move |Path(token): Path<String>| async move {
                Redirect::temporary(&format!("https://web.va.test:{tls_port}/.well-known/acme-challenge/{token}"))
            }),
        );
        let http = TestHttp::start(router).await;
        let config = ValidationConfig { http01_port: http.port, tls_alpn01_port: tls_port, ..test_config(dns.addr) };
        let record = Validator::new(config)
            .unwrap()
            .validate(&http01_request(Identifier::dns("web.va.test"), "tok-1"))
            .await
            .unwrap();
        assert_eq!(record.redirects[0].url, format!("https://web.va.test:{tls_port}/.well-known/acme-challenge/tok-1"));
    }

    #[tokio::test]
    async fn identifier_resolving_only_to_denied_addresses_is_rejected() {
        let (result, _) = run(ka_route(), Identifier::dns("metadata.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "rejectedIdentifier");
        assert_eq!(
            err.to_string(),
            "refusing to connect to metadata.va.test: 169.254.169.254 is in denied network 169.254.0.0/16"
        );
        // With an allowed address beside the denied one, the allowed one is used.
        let (result, _) = run(ka_route(), Identifier::dns("mixed.va.test")).await;
        let record = result.unwrap();
        assert_eq!(record.address_used, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(record.addresses_resolved.len(), 2);
    }

    #[tokio::test]
    async fn nxdomain_is_a_dns_problem() {
        let (result, _) = run(ka_route(), Identifier::dns("missing.va.test")).await;
        let err = result.unwrap_err();
        assert_eq!(err.problem_type(), "dns");
        assert_eq!(
            err.to_string(),
            "DNS problem: NXDOMAIN (the name does not exist) looking up A/AAAA for missing.va.test"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_connection_problem() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let dns = zone().await;
        let err =
            validator(&dns, port).validate(&http01_request(Identifier::dns("web.va.test"), "tok-1")).await.unwrap_err();
        assert_eq!(err.problem_type(), "connection");
        assert!(
            err.to_string().starts_with(&format!("cannot connect to web.va.test on port {port}: 127.0.0.1:{port}: ")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn token_must_be_base64url() {
        let dns = zone().await;
        let err = validator(&dns, 80)
            .validate(&http01_request(Identifier::dns("web.va.test"), "../../admin"))
            .await
            .unwrap_err();
        assert_eq!(err.problem_type(), "malformed");
    }

    #[test]
    fn redirect_resolution() {
        let config = ValidationConfig::default();
        let from = Url {
            scheme: Scheme::Http,
            host: Host::Name("a.example".into()),
            port: 80,
            path_and_query: "/x/y?q=1".into(),
        };
        let target = |loc: &str| redirect_target(&config, &from, loc).map(|u| u.to_string());
        assert_eq!(target("/z").unwrap(), "http://a.example/z");
        assert_eq!(target("z?k=v").unwrap(), "http://a.example/x/z?k=v");
        assert_eq!(target("//B.example/p").unwrap(), "http://b.example/p");
        assert_eq!(target("https://b.example").unwrap(), "https://b.example/");
        assert_eq!(target("HTTPS://b.example:443/p#f").unwrap(), "https://b.example/p");
        assert_eq!(target("http://[2001:db8::1]/p").unwrap(), "http://[2001:db8::1]/p");
        assert_eq!(target("http://192.0.2.1:443/p").unwrap(), "http://192.0.2.1:443/p");
        for bad in [
            "",
            "javascript:alert(1)",
            "http://b.example:8080/",
            "http://b_.ex ample/",
            "http://[zz]/",
            "http://b.example:/",
        ] {
            let err = redirect_target(&config, &from, bad).unwrap_err();
            assert!(matches!(err, ValidationError::RedirectRefused { .. }), "{bad}: {err:?}");
        }
    }
}
