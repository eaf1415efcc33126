//! Revocation status at scale, in one run on one machine: OCSP responses per second from Castellan's cache over
//! HTTP with concurrent clients, against `openssl ocsp -index … -port` (Debian's OpenSSL responder, which signs
//! every response in software); and the time to build and sign a CRL of 100,000 revoked serials, against
//! `openssl ca -gencrl` over the same number.
//!
//! Castellan's status service (`castellan_status`) runs in-process on its own Tokio runtime, served by
//! hyper as `castellan serve`'s HTTP listener serves it, with its CA keys and OCSP signing key in SoftHSM2 and its
//! store on SQLite (and PostgreSQL for the CRL when $DATABASE_URL is set). The load generator runs on a second
//! runtime: N keep-alive connections, each sending the next request of a pool (one per certificate) and waiting for
//! the answer. The machine's cores are shared by server and load generator, as they are for the peer.
//!
//! Usage: cargo run --release -p castellan-bench --bin ocsp -- [seconds (5)] [connections (64)] [revoked (100000)]
#[path = "machine.rs"]
mod machine;

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use castellan_authority::{Authority, Clock, IssuingCa};
use castellan_ca::{AuthorityUrls, Issuer, NameConstraintSpec, Profiles};
use castellan_hsm::{HsmSignature, KeySpec, testkit};
use castellan_status::{Status, StatusConfig, StatusSetup};
use castellan_store::Store;
use castellan_store::inventory::{CertificateSource, NewCertificate, NewIssuer};
use der::{Decode, DecodePem, Encode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sha2::Sha256;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use x509_cert::Certificate;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{CertId, OcspRequest, OcspResponse, OcspResponseStatus, Request, TbsRequest};

/// Certificates whose status the load asks for (each one a pre-signed response in Castellan's cache).
const CERTIFICATES: usize = 1_000;
/// Certificates asked about once each, to measure the first answer (a store read and an HSM signature).
const COLD_CERTIFICATES: usize = 5_000;
/// CRL measurements per backend; the median is reported.
const CRL_RUNS: usize = 5;

struct Args {
    seconds: u64,
    connections: usize,
    revoked: usize,
}

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let mut next = |default: u64| -> Result<u64> { Ok(argv.next().map(|s| s.parse()).transpose()?.unwrap_or(default)) };
    let args = Args { seconds: next(5)?, connections: next(64)? as usize, revoked: next(100_000)? as usize };
    let token = testkit::shared();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).enable_all().build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).enable_all().build()?;

    println!("machine: {}", machine::describe());
    println!("peer: {}", command_output(Command::new("openssl").arg("version"))?.trim());
    println!(
        "load: {} keep-alive connections, {} s per measurement, {CERTIFICATES} certificates",
        args.connections, args.seconds
    );

    let ca = server_rt.block_on(CastellanCa::new(&token.hsm))?;
    let ocsp = server_rt.block_on(castellan_ocsp(&ca))?;
    let address = ocsp.address;
    let window = Duration::from_secs(args.seconds);
    println!(
        "\n| responder | requests | connections | responses/s | p50 ms | p99 ms | HSM signatures during the run |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, method) in [("POST", Method::Post), ("GET", Method::Get)] {
        let before = ocsp.status.ocsp_signatures();
        let run = client_rt.block_on(load(address, "/ocsp", &ocsp.requests, method, args.connections, window))?;
        let signed = ocsp.status.ocsp_signatures() - before;
        println!(
            "| Castellan (cached, SoftHSM2 key) | {label}, keep-alive | {} | {:.0} | {:.2} | {:.2} | {signed} |",
            args.connections, run.rate, run.p50_ms, run.p99_ms
        );
    }
    let run =
        client_rt.block_on(load(address, "/ocsp", &ocsp.requests, Method::PostClose, args.connections, window))?;
    println!(
        "| Castellan (cached, SoftHSM2 key) | POST, a connection each | {} | {:.0} | {:.2} | {:.2} | 0 |",
        args.connections, run.rate, run.p50_ms, run.p99_ms
    );

    let before = ocsp.status.ocsp_signatures();
    let (rate, elapsed) = client_rt.block_on(one_pass(address, &ocsp.cold, args.connections))?;
    let signed = ocsp.status.ocsp_signatures() - before;
    println!(
        "| Castellan (first request per certificate: store read + HSM signature) | POST, keep-alive | {} | {rate:.0} \
         | — | — | {signed} in {:.2} s |",
        args.connections,
        elapsed.as_secs_f64()
    );

    let peer = OpensslResponder::start(cores)?;
    let run =
        client_rt.block_on(load(peer.address, "/", &peer.requests, Method::PostClose, args.connections, window))?;
    println!(
        "| openssl ocsp -multi {cores} (signs each, software key) | POST, a connection each | {} | {:.0} | {:.2} | {:.2} | — |",
        args.connections, run.rate, run.p50_ms, run.p99_ms
    );
    drop(peer);

    println!("\nCRL with {} revoked serials (median of {CRL_RUNS}):", args.revoked);
    println!("\n| producer | store | read ms | total ms (read + number + sign + encode) | CRL bytes |");
    println!("|---|---|---|---|---|");
    for (backend, store) in server_rt.block_on(stores())? {
        let (read_ms, total_ms, bytes) = server_rt.block_on(crl_timing(&ca, &store.store, args.revoked))?;
        println!("| Castellan (SoftHSM2 P-256 key) | {backend} | {read_ms:.0} | {total_ms:.0} | {bytes} |");
    }
    let (ms, bytes) = openssl_gencrl(args.revoked)?;
    println!("| openssl ca -gencrl (software P-256 key) | index.txt | — | {ms:.0} | {bytes} |");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Castellan's side
// ---------------------------------------------------------------------------------------------------------------

/// A root and an intermediate with their keys in SoftHSM2.
struct CastellanCa {
    issuer: Arc<Issuer<castellan_hsm::HsmSigner>>,
    root: Certificate,
    intermediate: Certificate,
}

impl CastellanCa {
    async fn new(hsm: &castellan_hsm::Hsm) -> Result<CastellanCa> {
        let root_key = hsm.generate_key_pair(&testkit::unique_label("bench-ocsp-root"), KeySpec::EcP256)?;
        let root_signer = hsm.signer(root_key);
        let day = Duration::from_secs(86_400);
        let root = castellan_ca::self_signed_root::<_, HsmSignature>(
            &root_signer,
            "CN=Bench Root".parse()?,
            day,
            SystemTime::now(),
        )?;
        let int_key = hsm.generate_key_pair(&testkit::unique_label("bench-ocsp-int"), KeySpec::EcP256)?;
        let intermediate = castellan_ca::sign_intermediate::<_, HsmSignature>(
            &root_signer,
            &root,
            &int_key.public_key,
            "CN=Bench Intermediate".parse()?,
            day,
            &NameConstraintSpec::default(),
            SystemTime::now(),
        )?;
        let issuer = Issuer::new::<HsmSignature>(
            hsm.signer(int_key),
            vec![intermediate.clone()],
            &AuthorityUrls::default(),
            Profiles::default(),
        )?;
        Ok(CastellanCa { issuer: Arc::new(issuer), root, intermediate })
    }

    /// Files the intermediate in `store` and returns the authority over it, as the status service wants it.
    async fn authority(&self, store: &Store) -> Result<Authority> {
        let key_id = castellan_ca::extensions::issuer_key_id(&self.intermediate)?;
        let record = store
            .register_issuer(&NewIssuer {
                name: "bench-intermediate".into(),
                role: "intermediate".into(),
                subject: self.intermediate.tbs_certificate.subject.to_string(),
                certificate_der: self.intermediate.to_der()?,
                spki_sha256: vec![0; 32],
                key_id: key_id.clone(),
                token_label: Some(testkit::TOKEN_LABEL.into()),
                key_label: None,
                not_before: 0,
                not_after: store.now() + 86_400,
            })
            .await?;
        let root_pem = castellan_ca::certificate_pem(&self.root.to_der()?)?;
        let ca = IssuingCa {
            issuer: Arc::clone(&self.issuer),
            issuer_id: record.id,
            issuer_key_id: key_id,
            issuer_dn: self.intermediate.tbs_certificate.subject.to_string(),
            chain_pem: format!("{}{root_pem}", castellan_ca::certificate_pem(&self.intermediate.to_der()?)?),
            root_pem,
            root: self.root.clone(),
            intermediate: self.intermediate.clone(),
        };
        Ok(Authority::new(store.clone(), Clock::system(), ca))
    }
}

/// `count` live certificates of `ca` (stand-in DER: only the inventory rows matter), loaded in bulk.
async fn load_certificates(store: &Store, ca: &IssuingCa, count: usize) -> Result<Vec<SerialNumber>> {
    let now = store.now();
    let mut serials = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(5_000) {
        let mut rows = Vec::with_capacity(chunk.len());
        for _ in chunk {
            let bytes: Vec<u8> = std::iter::once(1u8).chain(rand::random::<[u8; 16]>()).collect();
            serials.push(SerialNumber::new(&bytes)?);
            let cert = NewCertificate {
                issuer_id: Some(ca.issuer_id),
                issuer_key_id: ca.issuer_key_id.clone(),
                issuer_dn: ca.issuer_dn.clone(),
                serial: hex::encode(&bytes),
                source: CertificateSource::InternalAcme,
                profile: Some("tls-server".into()),
                subject: String::new(),
                names: vec![format!("DNS:h{}.bench.example", hex::encode(&bytes[1..5]))],
                tbs_sha256: rand::random::<[u8; 32]>().to_vec(),
                spki_sha256: rand::random::<[u8; 32]>().to_vec(),
                not_before: now - 3600,
                not_after: now + 30 * 86_400,
                account_id: None,
                owner: None,
                replaces_id: None,
            };
            rows.push((cert, bytes.clone(), rand::random::<[u8; 32]>().to_vec()));
        }
        store.insert_certificates_bulk(&rows).await.context("bulk insert")?;
    }
    Ok(serials)
}

struct CastellanOcsp {
    status: Status,
    address: SocketAddr,
    requests: Vec<Bytes>,
    /// Requests for certificates nobody asked about yet: each costs an HSM signature.
    cold: Vec<Bytes>,
    _store: castellan_store::testkit::TestStore,
    _state: tempfile::TempDir,
}

async fn castellan_ocsp(ca: &CastellanCa) -> Result<CastellanOcsp> {
    let store = castellan_store::testkit::sqlite().await;
    let authority = ca.authority(&store.store).await?;
    let serials = load_certificates(&store.store, authority.ca(), CERTIFICATES).await?;
    let cold = load_certificates(&store.store, authority.ca(), COLD_CERTIFICATES).await?;
    let cold = cold.iter().map(|s| ocsp_request(&ca.intermediate, s)).collect::<Result<Vec<_>>>()?;
    let state = tempfile::tempdir()?;
    let status = Status::start(StatusSetup {
        authority,
        config: StatusConfig { ocsp_nonce_signatures_per_sec: 0, ..StatusConfig::default() },
        state_dir: state.path().to_owned(),
        crl_url: None,
        ocsp_url: None,
    })
    .await?;
    let requests = serials.iter().map(|s| ocsp_request(&ca.intermediate, s)).collect::<Result<Vec<_>>>()?;
    // Fill the cache, and check every certificate is answered "good".
    let mut bytes = 0;
    for request in &requests {
        let reply = status.answer_ocsp(request).await;
        expect_successful(&reply.der)?;
        bytes = reply.der.len();
    }
    println!("Castellan's OCSP response: {bytes} bytes (with the delegated responder certificate)");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(serve(listener, status.router()));
    Ok(CastellanOcsp { status, address, requests, cold, _store: store, _state: state })
}

/// As `castellan serve`'s plain-HTTP listener serves the status routes (src/serve/http.rs).
async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(app);
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

/// A one-certificate OCSP request without a nonce, SHA-256 CertID.
fn ocsp_request(issuer: &Certificate, serial: &SerialNumber) -> Result<Bytes> {
    let req_cert =
        CertId::from_issuer::<Sha256>(issuer, serial.clone()).map_err(|e| anyhow::anyhow!("CertID: {e:?}"))?;
    let tbs_request = TbsRequest {
        version: x509_ocsp::Version::V1,
        requestor_name: None,
        request_list: vec![Request { req_cert, single_request_extensions: None }],
        request_extensions: None,
    };
    Ok(Bytes::from(OcspRequest { tbs_request, optional_signature: None }.to_der()?))
}

fn expect_successful(der: &[u8]) -> Result<()> {
    let response = OcspResponse::from_der(der).context("not an OCSPResponse")?;
    if response.response_status != OcspResponseStatus::Successful {
        bail!("OCSP answered {:?}", response.response_status);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    /// POST on a kept-alive connection.
    Post,
    /// GET /ocsp/<base64> on a kept-alive connection.
    Get,
    /// POST, then the connection is closed: what `openssl ocsp`'s responder does.
    PostClose,
}

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(
    address: SocketAddr,
    path: &str,
    requests: &[Bytes],
    method: Method,
    connections: usize,
    window: Duration,
) -> Result<Run> {
    let requests = Arc::new(requests.to_vec());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (requests, stop, done, path) =
            (Arc::clone(&requests), Arc::clone(&stop), Arc::clone(&done), path.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sender = None;
            let mut i = worker;
            // The first response of each worker is decoded in full; the others are checked by status and size.
            let mut checked = false;
            while !stop.load(Ordering::Relaxed) {
                let request = &requests[i % requests.len()];
                i += 1;
                let started = Instant::now();
                let body = send(address, &path, request, method, &mut sender).await?;
                if !checked {
                    expect_successful(&body)?;
                    checked = true;
                } else if body.len() < 100 {
                    bail!("short OCSP response ({} bytes)", body.len());
                }
                latencies.push(started.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }));
    }
    // A short warm-up (connections opened, caches hot), then the measured window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let measured = done.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    latencies.sort();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
    Ok(Run {
        rate: measured as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50).as_secs_f64() * 1000.0,
        p99_ms: pick(0.99).as_secs_f64() * 1000.0,
    })
}

/// Every request once, spread over `connections`: (responses per second, elapsed).
async fn one_pass(address: SocketAddr, requests: &[Bytes], connections: usize) -> Result<(f64, Duration)> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for share in requests.chunks(requests.len().div_ceil(connections).max(1)) {
        let share = share.to_vec();
        workers.push(tokio::spawn(async move {
            let mut sender = None;
            for request in &share {
                expect_successful(&send(address, "/ocsp", request, Method::Post, &mut sender).await?)?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    Ok((requests.len() as f64 / elapsed.as_secs_f64(), elapsed))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One request, on the kept connection or a new one; returns the response body.
async fn send(
    address: SocketAddr,
    path: &str,
    request: &Bytes,
    method: Method,
    kept: &mut Option<Sender>,
) -> Result<Bytes> {
    let mut sender = match kept.take() {
        Some(sender) if method != Method::PostClose && !sender.is_closed() => sender,
        _ => {
            let tcp = tokio::net::TcpStream::connect(address).await?;
            tcp.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(connection);
            sender
        }
    };
    sender.ready().await?;
    let builder = hyper::Request::builder().header(hyper::header::HOST, address.to_string());
    let http_request = match method {
        Method::Get => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(request);
            let escaped = encoded.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
            builder
                .method("GET")
                .uri(format!("{}/{escaped}", path.trim_end_matches('/')))
                .body(Full::new(Bytes::new()))?
        }
        Method::Post | Method::PostClose => {
            let builder =
                builder.method("POST").uri(path).header(hyper::header::CONTENT_TYPE, "application/ocsp-request");
            let builder =
                if method == Method::PostClose { builder.header(hyper::header::CONNECTION, "close") } else { builder };
            builder.body(Full::new(request.clone()))?
        }
    };
    let response = sender.send_request(http_request).await?;
    if response.status() != hyper::StatusCode::OK {
        bail!("HTTP {}", response.status());
    }
    let body = response.into_body().collect().await?.to_bytes();
    if method != Method::PostClose {
        *kept = Some(sender);
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------------------------
// The peer: openssl's OCSP responder and CRL generator
// ---------------------------------------------------------------------------------------------------------------

/// A CA made with the openssl CLI: a P-256 root that signs the CRL, and a delegated OCSP responder.
struct OpensslCa {
    dir: tempfile::TempDir,
    cert: Certificate,
}

impl OpensslCa {
    fn new() -> Result<OpensslCa> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=Peer CA",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "resp.key",
                "-out",
                "resp.csr",
                "-subj",
                "/CN=Peer OCSP",
            ],
        )?;
        std::fs::write(
            d.join("resp.ext"),
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "resp.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "1",
                "-days",
                "2",
                "-out",
                "resp.pem",
                "-extfile",
                "resp.ext",
            ],
        )?;
        let cert = Certificate::from_pem(std::fs::read(d.join("ca.pem"))?)?;
        Ok(OpensslCa { dir, cert })
    }

    /// index.txt with `count` entries, valid ("V") or revoked ("R"); returns their serials.
    fn write_index(&self, count: usize, revoked: bool) -> Result<Vec<SerialNumber>> {
        use std::fmt::Write as _;
        let mut index = String::with_capacity(count * 80);
        let mut serials = Vec::with_capacity(count);
        for _ in 0..count {
            let bytes: Vec<u8> = std::iter::once(1u8).chain(rand::random::<[u8; 16]>()).collect();
            let hex = hex::encode_upper(&bytes);
            serials.push(SerialNumber::new(&bytes)?);
            if revoked {
                writeln!(index, "R\t301231000000Z\t250101000000Z,keyCompromise\t{hex}\tunknown\t/CN=leaf")?;
            } else {
                writeln!(index, "V\t301231000000Z\t\t{hex}\tunknown\t/CN=leaf")?;
            }
        }
        std::fs::write(self.dir.path().join("index.txt"), index)?;
        std::fs::write(self.dir.path().join("index.txt.attr"), "unique_subject = no\n")?;
        Ok(serials)
    }
}

struct OpensslResponder {
    child: Child,
    address: SocketAddr,
    requests: Vec<Bytes>,
    _ca: OpensslCa,
}

impl OpensslResponder {
    fn start(processes: usize) -> Result<OpensslResponder> {
        let ca = OpensslCa::new()?;
        let serials = ca.write_index(CERTIFICATES, false)?;
        let requests = serials.iter().map(|s| ocsp_request(&ca.cert, s)).collect::<Result<Vec<_>>>()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new("openssl");
        cmd.current_dir(ca.dir.path())
            .args(["ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner", "resp.pem", "-rkey", "resp.key"])
            .args(["-port", &port.to_string(), "-nmin", "60", "-multi", &processes.to_string(), "-ignore_err"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so the worker processes -multi forks are stopped with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().context("start openssl ocsp")?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(address).is_err() {
            if Instant::now() > deadline {
                bail!("openssl ocsp did not start listening on {address}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(OpensslResponder { child, address, requests, _ca: ca })
    }
}

impl Drop for OpensslResponder {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// `openssl ca -gencrl` over an index of `revoked` revoked entries: (median ms, CRL bytes DER).
fn openssl_gencrl(revoked: usize) -> Result<(f64, usize)> {
    let ca = OpensslCa::new()?;
    ca.write_index(revoked, true)?;
    let d = ca.dir.path();
    std::fs::write(d.join("crlnumber"), "01\n")?;
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = peer\n[peer]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\n\
         default_crl_days = 1\ncertificate = ca.pem\nprivate_key = ca.key\n",
    )?;
    let mut times = Vec::new();
    for _ in 0..CRL_RUNS {
        let started = Instant::now();
        openssl(d, &["ca", "-gencrl", "-config", "ca.cnf", "-out", "crl.pem", "-batch"])?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    openssl(d, &["crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der"])?;
    let bytes = std::fs::metadata(d.join("crl.der"))?.len() as usize;
    Ok((median(&mut times), bytes))
}

fn openssl(dir: &Path, args: &[&str]) -> Result<String> {
    command_output(Command::new("openssl").current_dir(dir).args(args))
}

fn command_output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// CRL generation
// ---------------------------------------------------------------------------------------------------------------

/// A fresh SQLite store, and a PostgreSQL one when $DATABASE_URL is set.
async fn stores() -> Result<Vec<(String, castellan_store::testkit::TestStore)>> {
    let mut out = Vec::new();
    let sqlite = castellan_store::testkit::sqlite().await;
    out.push((format!("SQLite {}", server_version(&sqlite.store, "SELECT sqlite_version()").await), sqlite));
    if std::env::var_os("DATABASE_URL").is_some() {
        if let Some(pg) = castellan_store::testkit::postgres().await {
            let version = server_version(&pg.store, "SHOW server_version").await;
            out.push((format!("PostgreSQL {}", version.split_whitespace().next().unwrap_or("")), pg));
        }
    }
    Ok(out)
}

async fn server_version(store: &Store, sql: &str) -> String {
    sqlx::query_scalar::<_, String>(sql).fetch_one(store.raw_pool_for_tests()).await.unwrap_or_default()
}

/// Loads `revoked` revoked certificates, then times the CRL: (median read ms, median total ms, DER bytes).
async fn crl_timing(ca: &CastellanCa, store: &Store, revoked: usize) -> Result<(f64, f64, usize)> {
    let authority = ca.authority(store).await?;
    let issuer_key_id = authority.ca().issuer_key_id.clone();
    load_certificates(store, authority.ca(), revoked).await?;
    // The revocations rows written directly in one statement: this measures the CRL, not 100,000 audited
    // revocations (the store's bulk revocation path has its own tests).
    sqlx::query(
        "INSERT INTO revocations (certificate_id, reason, revoked_at, revoked_by, epoch) \
         SELECT id, 1, $1, 'bench', 1 FROM certificates WHERE issuer_key_id = $2",
    )
    .bind(store.now())
    .bind(&issuer_key_id)
    .execute(store.raw_pool_for_tests())
    .await?;
    sqlx::query("UPDATE revocation_epoch SET epoch = 1").execute(store.raw_pool_for_tests()).await?;
    let state = tempfile::tempdir()?;
    let status = Status::start(StatusSetup {
        authority,
        config: StatusConfig::default(),
        state_dir: state.path().to_owned(),
        crl_url: None,
        ocsp_url: None,
    })
    .await?;
    let (mut reads, mut totals) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..CRL_RUNS {
        let started = Instant::now();
        let rows = read_all(store, &issuer_key_id).await?;
        reads.push(started.elapsed().as_secs_f64() * 1000.0);
        if rows != revoked {
            bail!("read {rows} revoked rows, expected {revoked}");
        }
        let started = Instant::now();
        let crl = status.regenerate_crl().await?;
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
        if crl.entries != revoked {
            bail!("the CRL lists {} entries, expected {revoked}", crl.entries);
        }
        bytes = crl.der.len();
    }
    Ok((median(&mut reads), median(&mut totals), bytes))
}

/// The store's paginated read alone, as the CRL publisher does it.
async fn read_all(store: &Store, issuer_key_id: &[u8]) -> Result<usize> {
    let (mut after, mut rows) = (Some(0), 0);
    while let Some(after_id) = after {
        let page = store.revoked_entries(issuer_key_id, 0, after_id, 50_000).await?;
        rows += page.entries.len();
        after = page.next_after;
    }
    Ok(rows)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
