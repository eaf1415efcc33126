//! A minimal HTTP/1.1 client: one keep-alive connection per origin, owned by one ACME client, so each simulated
//! client behaves like a real one (its own TCP + TLS session) and no pool sits between it and the server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How the client decides to trust a server's TLS certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Any certificate: the servers under test run on loopback with private CAs. Handshake signatures are still
    /// checked, so the connection is real TLS with the usual cost.
    AnyCertificate,
    /// Certificates chaining to the roots in this PEM file.
    Roots(std::path::PathBuf),
}

/// The TLS client configuration every connection of the run shares.
pub fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
    let config = match trust {
        Trust::AnyCertificate => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider))).with_no_client_auth()
        }
        Trust::Roots(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).with_context(|| format!("reading {}", path.display()))? {
                roots.add(cert?)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Accepts every server certificate but verifies the handshake signature with it.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A response with its body read in full.
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A request that got no complete response in time: the server is stuck or overloaded past any useful latency.
#[derive(Debug)]
pub struct RequestTimeout(pub Duration);

impl std::fmt::Display for RequestTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no response within {:?}", self.0)
    }
}

impl std::error::Error for RequestTimeout {}

/// One client's connections, keyed by origin ("https://host:port").
pub struct HttpClient {
    tls: Arc<ClientConfig>,
    timeout: Duration,
    connections: HashMap<String, SendRequest<Full<Bytes>>>,
    /// Connections opened, to report reconnects (a server closing keep-alive connections costs handshakes).
    pub connects: u64,
}

impl HttpClient {
    /// `timeout` bounds each request, connecting included.
    pub fn new(tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        HttpClient { tls, timeout, connections: HashMap::new(), connects: 0 }
    }

    /// Sends one request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<HttpResponse> {
        let target = Target::parse(url)?;
        let body = Bytes::from(body);
        // A kept-alive connection the server closed while idle fails on first use; one retry on a fresh
        // connection covers that. A POST replayed this way reuses its nonce and gets badNonce, which the ACME
        // layer retries with a fresh one.
        let reused = self.connections.contains_key(&target.origin);
        let first = self.send_within(&target, method.clone(), content_type, body.clone()).await;
        match first {
            Err(e) if reused && e.downcast_ref::<RequestTimeout>().is_none() => {
                self.connections.remove(&target.origin);
                self.send_within(&target, method, content_type, body).await.with_context(|| format!("after {e:#}"))
            }
            other => other,
        }
    }

    async fn send_within(
        &mut self,
        target: &Target,
        method: Method,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<HttpResponse> {
        match tokio::time::timeout(self.timeout, self.send(target, method, content_type, body)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection may still deliver the late response; it must not be mistaken for the next one.
                self.connections.remove(&target.origin);
                Err(RequestTimeout(self.timeout).into())
            }
        }
    }

    async fn send(
        &mut self,
        target: &Target,
        method: Method,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<HttpResponse> {
        let sender = self.connection(target).await?;
        let mut request = Request::builder()
            .method(method)
            .uri(target.path_and_query.as_str())
            .header(header::HOST, target.authority.as_str())
            .header(header::USER_AGENT, "castellan-bench-acme-flow");
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let request = request.body(Full::new(body))?;
        let result = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(HttpResponse { status: parts.status, headers: parts.headers, body })
        }
        .await;
        match result {
            Ok(response) => Ok(response),
            Err(e) => {
                self.connections.remove(&target.origin);
                Err(anyhow!(e))
            }
        }
    }

    async fn connection(&mut self, target: &Target) -> Result<&mut SendRequest<Full<Bytes>>> {
        if self.connections.get(&target.origin).is_some_and(|s| s.is_closed()) {
            self.connections.remove(&target.origin);
        }
        if !self.connections.contains_key(&target.origin) {
            let sender = self.connect(target).await?;
            self.connects += 1;
            self.connections.insert(target.origin.clone(), sender);
        }
        self.connections.get_mut(&target.origin).ok_or_else(|| anyhow!("connection vanished"))
    }

    async fn connect(&self, target: &Target) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .with_context(|| format!("connecting to {}", target.authority))?;
        // ACME is many small request/response pairs: Nagle's delay would dominate the latency.
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = if target.tls {
            let name = ServerName::try_from(target.host.clone())?;
            Box::new(TlsConnector::from(Arc::clone(&self.tls)).connect(name, tcp).await.context("TLS handshake")?)
        } else {
            Box::new(tcp)
        };
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            // Ends when the server closes or the sender is dropped; errors surface on the next request.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// The parts of a URL a request needs.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    authority: String,
    origin: String,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("unsupported URL {url:?}"),
        };
        let authority = uri.authority().ok_or_else(|| anyhow!("URL without host: {url:?}"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
        Ok(Target {
            tls,
            origin: format!("{}://{}", if tls { "https" } else { "http" }, authority.as_str()),
            authority: authority.as_str().to_owned(),
            host,
            port,
            path_and_query,
        })
    }
}
