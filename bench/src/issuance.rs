//! Issuance throughput against the HSM's own signing rate, in one run on one machine.
//!
//! Measures, with 1 and 2 threads: raw SoftHSM2 P-256 signatures per second (hash in software, CKM_ECDSA), and
//! certificates per second from a PKCS#10 CSR to a signed chain (CSR signature check, profile, lints, HSM
//! signature, encoding). The goal is issuance at ≥ 70% of the raw signing rate.
//!
//! Usage: cargo run --release -p castellan-bench --bin issuance -- [seconds per measurement, default 5]
#[path = "machine.rs"]
mod machine;

use anyhow::{Context, Result};
use castellan_ca::{AuthorityUrls, IssuanceRequest, Issuer, NameConstraintSpec, Profiles};
use castellan_hsm::{HsmSignature, HsmSigner, KeySpec, testkit};
use der::Encode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

const CSR_POOL: usize = 512;

fn main() -> Result<()> {
    let seconds: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let window = Duration::from_secs(seconds);
    print_machine();

    let token = testkit::shared();
    let hsm = &token.hsm;
    let root_key = hsm.generate_key_pair(&testkit::unique_label("bench-root"), KeySpec::EcP256)?;
    let root_signer = hsm.signer(root_key);
    let root = castellan_ca::self_signed_root::<_, HsmSignature>(
        &root_signer,
        "CN=Bench Root".parse()?,
        Duration::from_secs(86400),
        SystemTime::now(),
    )?;
    let int_key = hsm.generate_key_pair(&testkit::unique_label("bench-int"), KeySpec::EcP256)?;
    let intermediate = castellan_ca::sign_intermediate::<_, HsmSignature>(
        &root_signer,
        &root,
        &int_key.public_key,
        "CN=Bench Intermediate".parse()?,
        Duration::from_secs(86400),
        &NameConstraintSpec::default(),
        SystemTime::now(),
    )?;
    let urls = AuthorityUrls {
        crl: Some("http://127.0.0.1/crl/1.crl".into()),
        ocsp: Some("http://127.0.0.1/ocsp".into()),
        ca_issuers: Some("http://127.0.0.1/ca/intermediate.der".into()),
    };
    let issuer = Arc::new(Issuer::new::<HsmSignature>(
        hsm.signer(int_key.clone()),
        vec![intermediate],
        &urls,
        Profiles::default(),
    )?);
    let raw_signer = Arc::new(hsm.signer(int_key));
    let csrs = Arc::new(make_csrs(CSR_POOL)?);

    println!("\n| measurement | threads | ops/s | vs raw HSM signing (same threads) |");
    println!("|---|---|---|---|");
    for threads in [1usize, 2] {
        let raw = measure(threads, window, {
            let signer = Arc::clone(&raw_signer);
            move |i| sign_once(&signer, i)
        });
        let issued = measure(threads, window, {
            let (issuer, csrs) = (Arc::clone(&issuer), Arc::clone(&csrs));
            move |i| {
                let csr = &csrs[i as usize % csrs.len()];
                issuer
                    .issue::<HsmSignature>(
                        &IssuanceRequest { csr, profile: "tls-server", lifetime: None },
                        SystemTime::now(),
                    )
                    .map(|_| ())
                    .context("issue")
            }
        });
        println!("| raw SoftHSM2 P-256 signature (CKM_ECDSA) | {threads} | {raw:.0} | 100% |");
        println!(
            "| certificate from CSR (tls-server, P-256 CSR) | {threads} | {issued:.0} | {:.0}% |",
            100.0 * issued / raw
        );
    }
    breakdown(&issuer, &raw_signer, &csrs)?;
    Ok(())
}

/// Where one issuance's time goes, single-threaded: each stage timed alone.
fn breakdown(issuer: &Issuer<HsmSigner>, signer: &HsmSigner, csrs: &[Vec<u8>]) -> Result<()> {
    const N: usize = 4000;
    let per_op = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / N as f64;
    let start = Instant::now();
    for i in 0..N {
        castellan_ca::verify_csr(&csrs[i % csrs.len()])?;
    }
    let verify = per_op(start);
    let start = Instant::now();
    for i in 0..N {
        sign_once(signer, i as u64)?;
    }
    let sign = per_op(start);
    let csr = castellan_ca::verify_csr(&csrs[0])?;
    let start = Instant::now();
    for _ in 0..N {
        issuer.issue_verified::<HsmSignature>(&csr, "tls-server", None, std::time::SystemTime::now())?;
    }
    let issue_verified = per_op(start);
    println!("\n| stage (1 thread) | µs per certificate |\n|---|---|");
    println!("| CSR parse + key check + signature verification | {verify:.1} |");
    println!("| HSM signature (hash + CKM_ECDSA + DER) | {sign:.1} |");
    println!("| build + lint + sign + assemble (CSR already verified) | {issue_verified:.1} |");
    println!("| of which not the HSM signature | {:.1} |", issue_verified - sign);
    Ok(())
}

fn sign_once(signer: &HsmSigner, i: u64) -> Result<()> {
    // A TBSCertificate-sized message, different each time.
    let mut message = [0u8; 600];
    message[..8].copy_from_slice(&i.to_le_bytes());
    signer.sign(&message)?;
    Ok(())
}

/// Runs `op` on `threads` threads for `window`; returns completed operations per second.
fn measure<F>(threads: usize, window: Duration, op: F) -> f64
where
    F: Fn(u64) -> Result<()> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (op, stop, done) = (Arc::clone(&op), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut i = (t as u64) << 40;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = op(i) {
                        eprintln!("operation failed: {e:#}");
                        return;
                    }
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Distinct CSRs from software P-256 keys, as ACME clients send them.
fn make_csrs(n: usize) -> Result<Vec<Vec<u8>>> {
    (0..n)
        .map(|i| {
            let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            let name = format!("host{i}.bench.example");
            let mut builder = RequestBuilder::new(format!("CN={name}").parse()?, &key)?;
            builder.add_extension(&SubjectAltName(vec![GeneralName::DnsName(der::asn1::Ia5String::new(&name)?)]))?;
            Ok(builder.build::<p256::ecdsa::DerSignature>()?.to_der()?)
        })
        .collect()
}

fn print_machine() {
    let softhsm = std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    println!("machine: {}; SoftHSM2 {softhsm}; castellan {}", machine::describe(), env!("CARGO_PKG_VERSION"));
}
