//! Real local peers for the VA's tests, all on 127.0.0.1 with ephemeral ports: an authoritative DNS server
//! (hickory-server), a DNS proxy that counts queries and can answer SERVFAIL, a silent DNS server, HTTP and HTTPS
//! servers (axum), a TLS server for tls-alpn-01, and self-made certificates (x509-cert + p256).

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use castellan_acme_proto::types::Identifier;
use der::asn1::{BitString, Ia5String, OctetString};
use der::{Encode, asn1::ObjectIdentifier};
use hickory_server::ServerFuture;
use hickory_server::authority::{Catalog, ZoneType};
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryAuthority;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name as X509Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::{ChallengeKind, ValidationConfig, ValidationRequest};

/// The RFC 7638 §3.1 key's thumbprint: key authorizations in these tests are `token.THUMBPRINT`.
pub const THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

pub fn key_authorization(token: &str) -> String {
    format!("{token}.{THUMBPRINT}")
}

pub fn request(kind: ChallengeKind, identifier: Identifier, token: &str) -> ValidationRequest {
    ValidationRequest { kind, identifier, token: token.to_owned(), key_authorization: key_authorization(token) }
}

pub fn http01_request(identifier: Identifier, token: &str) -> ValidationRequest {
    request(ChallengeKind::Http01, identifier, token)
}

/// The default policy except loopback, which the test servers live on.
pub fn test_config(dns: SocketAddr) -> ValidationConfig {
    let loopback = ["127.0.0.0/8", "::1/128"].map(|n| n.parse::<ipnet::IpNet>().unwrap());
    ValidationConfig {
        dns_resolver: Some(dns),
        denied_networks: ValidationConfig::default_denied_networks()
            .into_iter()
            .filter(|net| !loopback.contains(net))
            .collect(),
        timeout: Duration::from_secs(5),
        dns_attempts: 2,
        ..ValidationConfig::default()
    }
}

/// A task aborted when this is dropped, so test servers die with their test.
pub struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn spawn_abort_on_drop(task: impl Future<Output = ()> + Send + 'static) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(task))
}

// --- DNS ---

pub enum TestRecord {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Txt(Vec<String>),
}

/// An authoritative server for `va.test.` (hickory-server's InMemoryAuthority), behind a counting proxy.
pub struct TestDns {
    pub addr: SocketAddr,
    proxy: DnsProxy,
    _server: ServerFuture<Catalog>,
}

impl TestDns {
    /// Serves `records` (names relative to nothing: give them in full, inside `va.test`).
    pub async fn start(records: &[(&str, TestRecord)]) -> TestDns {
        let origin = Name::from_ascii("va.test.").unwrap();
        let mut authority = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
        let soa = SOA::new(
            Name::from_ascii("ns.va.test.").unwrap(),
            Name::from_ascii("hostmaster.va.test.").unwrap(),
            1,
            3600,
            600,
            86400,
            60,
        );
        assert!(authority.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1));
        for (name, record) in records {
            let name = Name::from_ascii(format!("{name}.")).unwrap();
            let rdata = match record {
                TestRecord::A(ip) => RData::A(A(*ip)),
                TestRecord::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
                TestRecord::Txt(strings) => RData::TXT(TXT::new(strings.clone())),
            };
            assert!(authority.upsert_mut(Record::from_rdata(name, 60, rdata), 1));
        }
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::from(&origin), vec![Arc::new(authority)]);
        let mut server = ServerFuture::new(catalog);
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let upstream = socket.local_addr().unwrap();
        server.register_socket(socket);
        let proxy = DnsProxy::start(upstream, 0).await;
        TestDns { addr: proxy.addr, proxy, _server: server }
    }

    /// How many queries arrived.
    pub fn queries(&self) -> usize {
        self.proxy.queries()
    }
}

/// A UDP DNS proxy that answers the first `servfail_first` queries with SERVFAIL and forwards the rest.
pub struct DnsProxy {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    servfail_first: usize,
    _task: AbortOnDrop,
}

/// The proxy in front of [`TestDns`] when it is meant to fail.
pub type FlakyDns = DnsProxy;

impl DnsProxy {
    pub async fn start(upstream: SocketAddr, servfail_first: usize) -> DnsProxy {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let count = queries.clone();
        let task = spawn_abort_on_drop(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, client)) = socket.recv_from(&mut buf).await {
                let query = buf[..len].to_vec();
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                let socket = socket.clone();
                tokio::spawn(async move {
                    let answer = if n <= servfail_first { servfail(&query) } else { forward(upstream, &query).await };
                    if let Some(answer) = answer {
                        let _ = socket.send_to(&answer, client).await;
                    }
                });
            }
        });
        DnsProxy { addr, queries, servfail_first, _task: task }
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    pub fn servfails(&self) -> usize {
        self.queries().min(self.servfail_first)
    }
}

/// The query turned into a SERVFAIL answer: QR set, RA set, RCODE 2, opcode and RD kept.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut answer = query.to_vec();
    answer[2] |= 0x80;
    answer[3] = 0x80 | 0x02;
    Some(answer)
}

async fn forward(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(query, upstream).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await.ok()?.ok()?;
    buf.truncate(len);
    Some(buf)
}

/// A DNS server that reads queries and never answers.
pub struct SilentDns {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    _task: AbortOnDrop,
}

impl SilentDns {
    pub async fn start() -> SilentDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let count = queries.clone();
        let task = spawn_abort_on_drop(async move {
            let mut buf = vec![0u8; 4096];
            while socket.recv_from(&mut buf).await.is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        SilentDns { addr, queries, _task: task }
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

// --- HTTP ---

/// An HTTP (or HTTPS) server running an axum router.
pub struct TestHttp {
    pub port: u16,
    _task: AbortOnDrop,
}

impl TestHttp {
    pub async fn start(router: axum::Router) -> TestHttp {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), router)
    }

    pub fn start_on(listener: TcpListener, router: axum::Router) -> TestHttp {
        let port = listener.local_addr().unwrap().port();
        let task = spawn_abort_on_drop(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestHttp { port, _task: task }
    }

    /// HTTPS with `cert`, HTTP/1.1 over TLS.
    pub async fn start_tls(router: axum::Router, cert: &TestCert) -> TestHttp {
        let mut config = server_config(cert);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = spawn_abort_on_drop(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TestHttp { port, _task: task }
    }
}

// --- TLS ---

/// A rustls server configuration (ring provider) presenting `cert`, TLS 1.2 and 1.3, no ALPN.
pub fn server_config(cert: &TestCert) -> rustls::ServerConfig {
    server_config_with_versions(cert, rustls::DEFAULT_VERSIONS)
}

/// As [`server_config`], with only `versions`. The certificate is handed over as a ready `CertifiedKey`:
/// `with_single_cert` would parse it with webpki, which refuses the critical acmeIdentifier extension.
pub fn server_config_with_versions(
    cert: &TestCert,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = provider.key_provider.load_private_key(cert.key()).unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![cert.cert.clone()], key);
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
}

/// A TLS server that completes handshakes with `config` and then closes. Records the SNI of each ClientHello.
pub struct TestTls {
    pub port: u16,
    sni: Arc<std::sync::Mutex<Vec<Option<String>>>>,
    _task: AbortOnDrop,
}

impl TestTls {
    pub async fn start(mut config: rustls::ServerConfig) -> TestTls {
        let sni = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Recorded while the ClientHello is processed, so before the client can have finished its handshake.
        config.cert_resolver = Arc::new(RecordSni { inner: config.cert_resolver.clone(), seen: sni.clone() });
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = spawn_abort_on_drop(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        // Wait for the client to finish (TLS 1.3 completes on the client first).
                        let mut buf = [0u8; 64];
                        let read = tokio::io::AsyncReadExt::read(&mut tls, &mut buf);
                        let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
                    }
                });
            }
        });
        TestTls { port, sni, _task: task }
    }

    /// The SNI of each ClientHello.
    pub fn sni(&self) -> Vec<Option<String>> {
        self.sni.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct RecordSni {
    inner: Arc<dyn rustls::server::ResolvesServerCert>,
    seen: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

impl rustls::server::ResolvesServerCert for RecordSni {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.seen.lock().unwrap().push(hello.server_name().map(str::to_owned));
        self.inner.resolve(hello)
    }
}

// --- Certificates ---

/// A self-signed P-256 certificate and its key.
pub struct TestCert {
    pub cert: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
}

impl TestCert {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The same certificate with another private key: a server that does not hold the certificate's key.
    pub fn with_wrong_key(&self) -> TestCert {
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        TestCert { cert: self.cert.clone(), key_pkcs8: other.to_pkcs8_der().unwrap().as_bytes().to_vec() }
    }
}

pub const ID_PE_ACME_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

/// A subjectAltName extension (non-critical, as the subject is not empty).
pub fn san_extension(names: Vec<GeneralName>) -> Extension {
    Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
        critical: false,
        extn_value: OctetString::new(SubjectAltName(names).to_der().unwrap()).unwrap(),
    }
}

pub fn dns_name(name: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(name).unwrap())
}

/// The acmeIdentifier extension (RFC 8737 §3) with raw `value` (normally DER OCTET STRING of SHA-256(ka)).
pub fn acme_extension_raw(value: Vec<u8>, critical: bool) -> Extension {
    Extension { extn_id: ID_PE_ACME_IDENTIFIER, critical, extn_value: OctetString::new(value).unwrap() }
}

/// The acmeIdentifier extension for `key_authorization`.
pub fn acme_extension(key_authorization: &str, critical: bool) -> Extension {
    let digest = Sha256::digest(key_authorization.as_bytes());
    acme_extension_raw(OctetString::new(digest.to_vec()).unwrap().to_der().unwrap(), critical)
}

/// A self-signed certificate with exactly `extensions`.
pub fn self_signed(extensions: Vec<Extension>) -> TestCert {
    // A fixed key keeps the tests deterministic; it protects nothing.
    let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let spki_der = key.verifying_key().to_public_key_der().unwrap();
    let algorithm = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
    let name = X509Name::from_str("CN=acme validation test").unwrap();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[1]).unwrap(),
        signature: algorithm.clone(),
        issuer: name.clone(),
        validity: Validity::from_now(Duration::from_secs(3600)).unwrap(),
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: if extensions.is_empty() { None } else { Some(extensions) },
    };
    let signature: DerSignature = key.sign(&tbs.to_der().unwrap());
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(signature.as_bytes()).unwrap(),
    };
    TestCert {
        cert: CertificateDer::from(cert.to_der().unwrap()),
        key_pkcs8: key.to_pkcs8_der().unwrap().as_bytes().to_vec(),
    }
}
