//! Leaf issuance end to end: a root and an intermediate in a SoftHSM2 token, CSRs made by the `openssl` CLI
//! (P-256, P-384, RSA and Ed25519 keys) and in Rust (for malformed cases), the issued certificates checked with
//! `openssl verify` and `openssl x509 -text`, and every bad input refused with a typed error.
//!
//! These tests need `openssl` (3.x) on PATH and fail, never skip, without it.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_ca::extensions::key_identifier;
use castellan_ca::key::KeyError;
use castellan_ca::names::NameError;
use castellan_ca::sign::verify_certificate_signature;
use castellan_ca::{
    AuthorityUrls, CaError, IssuanceRequest, Issued, Issuer, NameConstraintSpec, ProfileKind, Profiles, SanName,
    self_signed_root, sign_intermediate,
};
use castellan_hsm::testkit;
use castellan_hsm::{Hsm, HsmKey, HsmSignature, HsmSigner, KeySpec};
use const_oid::AssociatedOid;
use der::asn1::{BitString, Ia5String, OctetString};
use der::pem::LineEnding;
use der::{Decode, Encode, EncodePem};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectAltName, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::request::CertReq;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const BACKDATE: Duration = castellan_ca::issuer::DEFAULT_BACKDATE;
const CRL_URL: &str = "http://127.0.0.1:8080/crl/1.crl";
const OCSP_URL: &str = "http://127.0.0.1:8080/ocsp";
const CA_ISSUERS_URL: &str = "http://127.0.0.1:8080/ca/intermediate.der";
const SPIFFE_ID: &str = "spiffe://corp.example/ns/prod/sa/api";

// ---------------------------------------------------------------------------------------------------------------
// Fixture: one root + intermediate per test process.

struct Ca {
    /// Holds root.pem and intermediate.pem.
    dir: tempfile::TempDir,
    root: Certificate,
    intermediate: Certificate,
    intermediate_key: HsmKey,
    issuer: Issuer<HsmSigner>,
}

impl Ca {
    fn root_pem(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    fn intermediate_pem(&self) -> PathBuf {
        self.dir.path().join("intermediate.pem")
    }

    /// Another issuer for the same intermediate key, with its own signer.
    fn new_issuer(&self, chain: Vec<Certificate>) -> Issuer<HsmSigner> {
        Issuer::new::<HsmSignature>(hsm().signer(self.intermediate_key.clone()), chain, &urls(), Profiles::default())
            .expect("issuer")
    }
}

fn hsm() -> &'static Hsm {
    &testkit::shared().hsm
}

fn urls() -> AuthorityUrls {
    AuthorityUrls { crl: Some(CRL_URL.into()), ocsp: Some(OCSP_URL.into()), ca_issuers: Some(CA_ISSUERS_URL.into()) }
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let root_key =
            hsm().generate_key_pair(&testkit::unique_label("issuance-root"), KeySpec::EcP384).expect("root key");
        let root_signer = hsm().signer(root_key);
        let root = self_signed_root::<_, HsmSignature>(
            &root_signer,
            Name::from_str("CN=Castellan Issuance Test Root,O=Castellan Test").expect("name"),
            3650 * DAY,
            SystemTime::now(),
        )
        .expect("root");
        let intermediate_key = hsm()
            .generate_key_pair(&testkit::unique_label("issuance-intermediate"), KeySpec::EcP256)
            .expect("intermediate key");
        let intermediate = sign_intermediate::<_, HsmSignature>(
            &root_signer,
            &root,
            &intermediate_key.public_key,
            Name::from_str("CN=Castellan Issuance Test Intermediate,O=Castellan Test").expect("name"),
            365 * DAY,
            &NameConstraintSpec::default(),
            SystemTime::now(),
        )
        .expect("intermediate");
        let dir = tempfile::tempdir().expect("tempdir");
        write_cert(&dir.path().join("root.pem"), &root);
        write_cert(&dir.path().join("intermediate.pem"), &intermediate);
        let issuer = Issuer::new::<HsmSignature>(
            hsm().signer(intermediate_key.clone()),
            vec![intermediate.clone()],
            &urls(),
            Profiles::default(),
        )
        .expect("issuer");
        Ca { dir, root, intermediate, intermediate_key, issuer }
    })
}

fn issue(csr: &[u8], profile: &str, lifetime: Option<Duration>) -> Result<Issued, CaError> {
    ca().issuer.issue::<HsmSignature>(&IssuanceRequest { csr, profile, lifetime }, SystemTime::now())
}

// ---------------------------------------------------------------------------------------------------------------
// openssl and file helpers.

/// Runs `openssl` in `dir`; returns (exit success, stdout + stderr). Panics when openssl cannot be run: a skipped
/// interoperability check would look like a pass.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("these tests need the `openssl` binary (3.x) on PATH to check interoperability; running it failed: {e}")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {} failed:\n{text}", args.join(" "));
    text
}

fn write_cert(path: &Path, cert: &Certificate) {
    std::fs::write(path, cert.to_pem(LineEnding::LF).expect("PEM")).expect("write certificate");
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

fn assert_lacks(text: &str, needle: &str) {
    assert!(!text.contains(needle), "did not expect {needle:?} in:\n{text}");
}

#[derive(Clone, Copy, Debug)]
enum KeyAlg {
    P256,
    P384,
    Rsa(u32),
    Ed25519,
}

/// A PEM CSR made by `openssl req` in `dir` with a fresh key; `san` is the subjectAltName value, if any.
fn openssl_csr(dir: &Path, alg: KeyAlg, subject: &str, san: Option<&str>) -> Vec<u8> {
    let stem = unique("csr");
    let (key, csr) = (format!("{stem}.key"), format!("{stem}.csr"));
    let rsa;
    let mut args = vec!["req", "-new", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject];
    match alg {
        KeyAlg::P256 => args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        KeyAlg::P384 => args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        KeyAlg::Rsa(bits) => {
            rsa = format!("rsa:{bits}");
            args.extend(["-newkey", &rsa]);
        }
        KeyAlg::Ed25519 => args.extend(["-newkey", "ed25519"]),
    }
    let san = san.map(|s| format!("subjectAltName={s}"));
    if let Some(san) = &san {
        args.extend(["-addext", san]);
    }
    openssl_ok(dir, &args);
    std::fs::read(dir.join(csr)).expect("read CSR")
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    let (label, der) = der::pem::decode_vec(pem).expect("PEM");
    assert_eq!(label, "CERTIFICATE REQUEST");
    der
}

/// A DER CSR signed by a fresh software P-256 key, for the cases openssl will not make.
fn rust_csr(subject: &str, sans: Option<Vec<GeneralName>>) -> Vec<u8> {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let subject = if subject.is_empty() { Name::default() } else { Name::from_str(subject).expect("name") };
    let mut builder = RequestBuilder::new(subject, &key).expect("request builder");
    if let Some(sans) = sans {
        builder.add_extension(&SubjectAltName(sans)).expect("SAN");
    }
    builder.build::<p256::ecdsa::DerSignature>().expect("sign CSR").to_der().expect("encode CSR")
}

fn dns(name: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(name).expect("IA5"))
}

// ---------------------------------------------------------------------------------------------------------------
// Checking an issued leaf.

struct Expect<'a> {
    profile: ProfileKind,
    /// As `openssl x509 -text` prints them, e.g. "DNS:a.example", "IP Address:10.0.0.1", "URI:spiffe://…".
    sans: &'a [&'a str],
    names: Vec<SanName>,
    /// The requested lifetime, or the profile's maximum when None was requested.
    lifetime: Duration,
    rsa: bool,
}

/// Everything a leaf must satisfy, checked with openssl and by parsing. `before`/`after` bracket the issuance.
fn check_leaf(dir: &Path, issued: &Issued, expect: &Expect<'_>, before: SystemTime, after: SystemTime) -> String {
    let ca = ca();
    let leaf = format!("{}.pem", unique("leaf"));
    write_cert(&dir.join(&leaf), &issued.certificate);
    let root = ca.root_pem();
    let intermediate = ca.intermediate_pem();
    let (root, intermediate) = (root.to_str().expect("path"), intermediate.to_str().expect("path"));

    let purposes: &[&str] = match expect.profile {
        ProfileKind::TlsServer => &["sslserver"],
        ProfileKind::TlsClient => &["sslclient"],
        ProfileKind::Service => &["sslserver", "sslclient"],
    };
    for purpose in purposes {
        let out = openssl_ok(dir, &["verify", "-CAfile", root, "-untrusted", intermediate, "-purpose", purpose, &leaf]);
        assert_contains(&out, &format!("{leaf}: OK"));
    }

    let text = openssl_ok(dir, &["x509", "-in", &leaf, "-noout", "-text"]);
    match expect.profile {
        ProfileKind::TlsServer => {
            assert_contains(&text, "TLS Web Server Authentication");
            assert_lacks(&text, "Client Authentication");
        }
        ProfileKind::TlsClient => {
            assert_contains(&text, "TLS Web Client Authentication");
            assert_lacks(&text, "Server Authentication");
        }
        ProfileKind::Service => {
            assert_contains(&text, "TLS Web Server Authentication, TLS Web Client Authentication");
        }
    }
    assert_contains(&text, "X509v3 Subject Alternative Name:");
    for san in expect.sans {
        assert_contains(&text, san);
    }
    assert_contains(&text, "X509v3 Basic Constraints: critical\n                CA:FALSE");
    assert_contains(&text, "X509v3 Key Usage: critical\n                Digital Signature");
    if expect.rsa {
        assert_contains(&text, "Digital Signature, Key Encipherment");
    } else {
        assert_lacks(&text, "Key Encipherment");
    }
    assert_lacks(&text, "Certificate Sign");
    assert_contains(&text, "X509v3 Authority Key Identifier");
    assert_contains(&text, "X509v3 Subject Key Identifier");
    assert_contains(
        &text,
        &format!("X509v3 CRL Distribution Points: \n                Full Name:\n                  URI:{CRL_URL}"),
    );
    assert_contains(&text, "Authority Information Access: ");
    assert_contains(&text, &format!("OCSP - URI:{OCSP_URL}"));
    assert_contains(&text, &format!("CA Issuers - URI:{CA_ISSUERS_URL}"));
    assert_contains(&text, "Signature Algorithm: ecdsa-with-SHA256");
    assert_contains(&text, "Issuer: O = Castellan Test, CN = Castellan Issuance Test Intermediate");

    // Serial: 17 content octets, positive, and what openssl reads.
    let cert = &issued.certificate;
    assert_eq!(cert.tbs_certificate.serial_number, issued.serial);
    let serial = issued.serial.as_bytes();
    assert_eq!(serial.len(), 17, "serial {}", issued.serial_hex);
    assert_eq!(serial[0] & 0x80, 0, "serial must be positive");
    assert_ne!(serial[0], 0, "serial must be minimally encoded");
    assert_eq!(issued.serial_hex, hex::encode(serial));
    let out = openssl_ok(dir, &["x509", "-in", &leaf, "-noout", "-serial"]);
    assert_eq!(out.trim(), format!("serial={}", issued.serial_hex.to_uppercase()));

    // Validity: backdated, and the requested lifetime counted inclusively (notAfter − notBefore + 1s).
    let validity = &cert.tbs_certificate.validity;
    let (not_before, not_after) = (validity.not_before.to_system_time(), validity.not_after.to_system_time());
    assert_eq!((issued.not_before, issued.not_after), (not_before, not_after));
    let backdate = BACKDATE.min(expect.lifetime / 2);
    // Whole seconds: notBefore is truncated, so it may be up to a second earlier than now − backdate.
    let earliest = before - backdate - Duration::from_secs(1);
    let latest = after - backdate;
    assert!(
        earliest <= not_before && not_before <= latest,
        "notBefore {not_before:?} should be {backdate:?} before issuance ({before:?}..{after:?})"
    );
    assert!(not_before < before, "notBefore must be in the past");
    let span = not_after.duration_since(not_before).expect("notAfter after notBefore");
    assert_eq!(span + Duration::from_secs(1), expect.lifetime, "validity period (inclusive)");

    // Identity and key identifiers.
    assert_eq!(issued.profile, expect.profile);
    assert_eq!(issued.names, expect.names);
    assert_eq!(issued.der, cert.to_der().expect("DER"));
    let tbs_sha256: [u8; 32] = Sha256::digest(cert.tbs_certificate.to_der().expect("TBS")).into();
    assert_eq!(issued.tbs_sha256, tbs_sha256);
    let aki: AuthorityKeyIdentifier = extension(cert).expect("AKI");
    let issuer_ski: SubjectKeyIdentifier = extension(&ca.intermediate).expect("intermediate SKI");
    assert_eq!(aki.key_identifier.as_ref(), Some(&issuer_ski.0), "AKI is the intermediate's SKI");
    let ski: SubjectKeyIdentifier = extension(cert).expect("SKI");
    assert_eq!(ski.0.as_bytes(), key_identifier(&cert.tbs_certificate.subject_public_key_info).as_slice());
    verify_certificate_signature(cert, &ca.intermediate.tbs_certificate.subject_public_key_info)
        .expect("signature verifies under the intermediate key");

    // The chain: the leaf, then the issuer's chain (here the intermediate only).
    let chain = Certificate::load_pem_chain(issued.chain_pem.as_bytes()).expect("chain PEM");
    assert_eq!(chain, vec![cert.clone(), ca.intermediate.clone()]);
    assert!(issued.chain_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    text
}

fn extension<T: AssociatedOid + for<'a> Decode<'a>>(cert: &Certificate) -> Option<T> {
    let ext = cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == T::OID)?;
    Some(T::from_der(ext.extn_value.as_bytes()).expect("extension decodes"))
}

fn issue_and_check(
    dir: &Path,
    csr: &[u8],
    profile: ProfileKind,
    lifetime: Option<Duration>,
    expect: Expect<'_>,
) -> (Issued, String) {
    let before = SystemTime::now();
    let issued = issue(csr, profile.name(), lifetime).unwrap_or_else(|e| panic!("issue under {profile}: {e}"));
    let after = SystemTime::now();
    let text = check_leaf(dir, &issued, &expect, before, after);
    (issued, text)
}

fn ip(s: &str) -> SanName {
    SanName::Ip(s.parse::<IpAddr>().expect("IP"))
}

fn dns_name(s: &str) -> SanName {
    SanName::Dns(s.into())
}

// ---------------------------------------------------------------------------------------------------------------
// Issuance under each profile.

#[test]
fn tls_server_leaf_verifies_and_carries_the_right_extensions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = openssl_csr(
        dir.path(),
        KeyAlg::P256,
        "/CN=www.corp.example",
        Some("DNS:www.corp.example,DNS:api.corp.example,IP:10.0.0.7,IP:2001:db8::7"),
    );
    let lifetime = 30 * DAY;
    let (_, text) = issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::TlsServer,
        Some(lifetime),
        Expect {
            profile: ProfileKind::TlsServer,
            sans: &[
                "DNS:www.corp.example",
                "DNS:api.corp.example",
                "IP Address:10.0.0.7",
                "IP Address:2001:DB8:0:0:0:0:0:7",
            ],
            names: vec![dns_name("www.corp.example"), dns_name("api.corp.example"), ip("10.0.0.7"), ip("2001:db8::7")],
            lifetime,
            rsa: false,
        },
    );
    assert_contains(&text, "Subject: CN = www.corp.example");
    // With a subject, the SAN extension is not critical.
    assert_lacks(&text, "X509v3 Subject Alternative Name: critical");
}

#[test]
fn tls_client_leaf_verifies_and_carries_the_right_extensions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = openssl_csr(
        dir.path(),
        KeyAlg::Rsa(2048),
        "/CN=client.corp.example",
        Some("DNS:client.corp.example,URI:spiffe://corp.example/ns/prod/sa/client"),
    );
    let lifetime = 7 * DAY;
    issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::TlsClient,
        Some(lifetime),
        Expect {
            profile: ProfileKind::TlsClient,
            sans: &["DNS:client.corp.example", "URI:spiffe://corp.example/ns/prod/sa/client"],
            names: vec![
                dns_name("client.corp.example"),
                SanName::Uri("spiffe://corp.example/ns/prod/sa/client".into()),
            ],
            lifetime,
            rsa: true,
        },
    );
}

#[test]
fn service_leaf_is_an_x509_svid() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No CN: the subject is empty and the SPIFFE ID lives only in a critical SAN extension.
    let csr = openssl_csr(dir.path(), KeyAlg::Ed25519, "/O=Castellan Test", Some(&format!("URI:{SPIFFE_ID}")));
    let lifetime = 6 * 60 * 60;
    let lifetime = Duration::from_secs(lifetime);
    let (issued, text) = issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::Service,
        Some(lifetime),
        Expect {
            profile: ProfileKind::Service,
            sans: &[&format!("URI:{SPIFFE_ID}")],
            names: vec![SanName::Uri(SPIFFE_ID.into())],
            lifetime,
            rsa: false,
        },
    );
    assert_contains(&text, "X509v3 Subject Alternative Name: critical");
    assert_contains(&text, "Public Key Algorithm: ED25519");
    assert!(issued.certificate.tbs_certificate.subject.0.is_empty(), "the subject is empty");

    // A service certificate with a DNS name beside its SPIFFE ID keeps the name as CN.
    let csr = openssl_csr(
        dir.path(),
        KeyAlg::P256,
        "/CN=api.corp.example",
        Some(&format!("DNS:api.corp.example,URI:{SPIFFE_ID}")),
    );
    let (_, text) = issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::Service,
        None,
        Expect {
            profile: ProfileKind::Service,
            sans: &["DNS:api.corp.example", &format!("URI:{SPIFFE_ID}")],
            names: vec![dns_name("api.corp.example"), SanName::Uri(SPIFFE_ID.into())],
            lifetime: DAY,
            rsa: false,
        },
    );
    assert_contains(&text, "Subject: CN = api.corp.example");
}

#[test]
fn every_supported_key_type_is_certified() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (alg, rsa, key_text) in [
        (KeyAlg::P256, false, "NIST CURVE: P-256"),
        (KeyAlg::P384, false, "NIST CURVE: P-384"),
        (KeyAlg::Rsa(2048), true, "Public-Key: (2048 bit)"),
        (KeyAlg::Ed25519, false, "ED25519"),
    ] {
        let csr = openssl_csr(dir.path(), alg, "/CN=keys.corp.example", Some("DNS:keys.corp.example"));
        let (_, text) = issue_and_check(
            dir.path(),
            &csr,
            ProfileKind::TlsServer,
            Some(DAY),
            Expect {
                profile: ProfileKind::TlsServer,
                sans: &["DNS:keys.corp.example"],
                names: vec![dns_name("keys.corp.example")],
                lifetime: DAY,
                rsa,
            },
        );
        assert_contains(&text, key_text);
    }
}

#[test]
fn default_lifetime_is_the_profiles_maximum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spiffe = GeneralName::UniformResourceIdentifier(Ia5String::new(SPIFFE_ID).expect("IA5"));
    let spiffe_san = format!("URI:{SPIFFE_ID}");
    for (profile, max) in
        [(ProfileKind::TlsServer, 90 * DAY), (ProfileKind::TlsClient, 30 * DAY), (ProfileKind::Service, DAY)]
    {
        let (csr, names, sans): (_, _, &[&str]) = match profile {
            ProfileKind::TlsServer => {
                (rust_csr("CN=max.corp.example", None), vec![dns_name("max.corp.example")], &["DNS:max.corp.example"])
            }
            _ => (
                rust_csr("", Some(vec![dns("max.corp.example"), spiffe.clone()])),
                vec![dns_name("max.corp.example"), SanName::Uri(SPIFFE_ID.into())],
                &["DNS:max.corp.example", &spiffe_san],
            ),
        };
        issue_and_check(dir.path(), &csr, profile, None, Expect { profile, sans, names, lifetime: max, rsa: false });
        // Exactly the maximum, asked for explicitly, is also fine.
        issue(&csr, profile.name(), Some(max)).unwrap_or_else(|e| panic!("{profile} at its maximum: {e}"));
    }
}

#[test]
fn a_short_lifetime_is_backdated_by_at_most_half() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = rust_csr("CN=short.corp.example", None);
    let lifetime = Duration::from_secs(120);
    issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::TlsServer,
        Some(lifetime),
        Expect {
            profile: ProfileKind::TlsServer,
            sans: &["DNS:short.corp.example"],
            names: vec![dns_name("short.corp.example")],
            lifetime,
            rsa: false,
        },
    );
}

#[test]
fn a_wildcard_and_a_cn_only_csr_are_issued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = openssl_csr(dir.path(), KeyAlg::P256, "/CN=*.corp.example", Some("DNS:*.corp.example,DNS:corp.example"));
    issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::TlsServer,
        Some(DAY),
        Expect {
            profile: ProfileKind::TlsServer,
            sans: &["DNS:*.corp.example", "DNS:corp.example"],
            names: vec![dns_name("*.corp.example"), dns_name("corp.example")],
            lifetime: DAY,
            rsa: false,
        },
    );
    // A CSR with only a commonName (no SAN extension) gets that name as its SAN; an IP address CN too.
    let csr = openssl_csr(dir.path(), KeyAlg::P256, "/CN=solo.corp.example", None);
    issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::TlsServer,
        Some(DAY),
        Expect {
            profile: ProfileKind::TlsServer,
            sans: &["DNS:solo.corp.example"],
            names: vec![dns_name("solo.corp.example")],
            lifetime: DAY,
            rsa: false,
        },
    );
    let csr = openssl_csr(dir.path(), KeyAlg::P256, "/CN=10.9.8.7", None);
    issue_and_check(
        dir.path(),
        &csr,
        ProfileKind::TlsServer,
        Some(DAY),
        Expect {
            profile: ProfileKind::TlsServer,
            sans: &["IP Address:10.9.8.7"],
            names: vec![ip("10.9.8.7")],
            lifetime: DAY,
            rsa: false,
        },
    );
}

#[test]
fn pem_and_der_csrs_are_both_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = openssl_csr(dir.path(), KeyAlg::P256, "/CN=pem.corp.example", Some("DNS:pem.corp.example"));
    let der = pem_to_der(&pem);
    let from_pem = issue(&pem, "tls-server", Some(DAY)).expect("PEM CSR");
    let from_der = issue(&der, "tls-server", Some(DAY)).expect("DER CSR");
    assert_eq!(
        from_pem.certificate.tbs_certificate.subject_public_key_info,
        from_der.certificate.tbs_certificate.subject_public_key_info
    );
    assert_eq!(from_pem.names, from_der.names);
    assert_ne!(from_pem.serial, from_der.serial);

    // The older "NEW CERTIFICATE REQUEST" label is accepted; another label is not.
    let new_label = der::pem::encode_string("NEW CERTIFICATE REQUEST", LineEnding::LF, &der).expect("PEM");
    issue(new_label.as_bytes(), "tls-server", Some(DAY)).expect("NEW CERTIFICATE REQUEST");
    let wrong_label = der::pem::encode_string("CERTIFICATE", LineEnding::LF, &der).expect("PEM");
    let result = issue(wrong_label.as_bytes(), "tls-server", Some(DAY));
    assert!(matches!(result, Err(CaError::MalformedCsr(_))), "{result:?}");
}

#[test]
fn the_chain_includes_the_root_when_the_issuer_was_given_it() {
    let ca = ca();
    let issuer = ca.new_issuer(vec![ca.intermediate.clone(), ca.root.clone()]);
    let csr = rust_csr("CN=chain.corp.example", None);
    let issued = issuer
        .issue::<HsmSignature>(
            &IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: Some(DAY) },
            SystemTime::now(),
        )
        .expect("issue");
    let chain = Certificate::load_pem_chain(issued.chain_pem.as_bytes()).expect("chain PEM");
    assert_eq!(chain, vec![issued.certificate.clone(), ca.intermediate.clone(), ca.root.clone()]);
    assert_eq!(issued.chain_pem.matches("-----BEGIN CERTIFICATE-----").count(), 3);
}

#[test]
fn an_issuer_refuses_a_signer_for_another_key_and_an_empty_chain() {
    let ca = ca();
    let other = hsm().generate_key_pair(&testkit::unique_label("issuance-other"), KeySpec::EcP256).expect("key");
    let result =
        Issuer::new::<HsmSignature>(hsm().signer(other), vec![ca.intermediate.clone()], &urls(), Profiles::default());
    assert!(matches!(result, Err(CaError::SignerMismatch)), "{:?}", result.err());
    let result =
        Issuer::new::<HsmSignature>(hsm().signer(ca.intermediate_key.clone()), vec![], &urls(), Profiles::default());
    assert!(matches!(result, Err(CaError::BadCaCertificate(_))), "{:?}", result.err());
}

// ---------------------------------------------------------------------------------------------------------------
// What profiles refuse.

#[test]
fn service_profile_needs_exactly_one_spiffe_id() {
    let no_uri = rust_csr("CN=api.corp.example", None);
    match issue(&no_uri, "service", None) {
        Err(CaError::ProfileForbids { profile: "service", what }) => assert!(what.contains("0 URI SANs"), "{what}"),
        other => panic!("service without a URI SAN: {:?}", other.map(|i| i.serial_hex)),
    }
    let uri = |u: &str| GeneralName::UniformResourceIdentifier(Ia5String::new(u).expect("IA5"));
    let two = rust_csr("", Some(vec![uri(SPIFFE_ID), uri("spiffe://corp.example/ns/prod/sa/other")]));
    match issue(&two, "service", None) {
        Err(CaError::ProfileForbids { profile: "service", what }) => assert!(what.contains("2 URI SANs"), "{what}"),
        other => panic!("service with two URI SANs: {:?}", other.map(|i| i.serial_hex)),
    }
    let https = rust_csr("", Some(vec![uri("https://corp.example/api")]));
    let result = issue(&https, "service", None);
    assert!(
        matches!(result, Err(CaError::BadIdentifier(NameError::UnsupportedUriScheme { .. }))),
        "{:?}",
        result.map(|i| i.serial_hex)
    );
}

#[test]
fn tls_server_refuses_a_uri_san() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = openssl_csr(
        dir.path(),
        KeyAlg::P256,
        "/CN=www.corp.example",
        Some(&format!("DNS:www.corp.example,URI:{SPIFFE_ID}")),
    );
    match issue(&csr, "tls-server", None) {
        Err(CaError::ProfileForbids { profile: "tls-server", what }) => assert!(what.contains(SPIFFE_ID), "{what}"),
        other => panic!("tls-server with a URI SAN: {:?}", other.map(|i| i.serial_hex)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: a typed error every time, never a panic.

fn good_csr() -> Vec<u8> {
    rust_csr("CN=good.corp.example", Some(vec![dns("good.corp.example"), dns("alt.corp.example")]))
}

#[test]
fn garbage_and_truncated_csrs_are_malformed() {
    for input in
        [&b""[..], b"not a CSR", b"\x30\x03\x02\x01", b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n", &[0xff; 64]]
    {
        let result = issue(input, "tls-server", None);
        assert!(matches!(result, Err(CaError::MalformedCsr(_))), "{input:?}: {:?}", result.map(|i| i.serial_hex));
    }
    let der = good_csr();
    for len in 0..der.len() {
        let result = issue(&der[..len], "tls-server", None);
        assert!(
            matches!(result, Err(CaError::MalformedCsr(_))),
            "truncated to {len}: {:?}",
            result.map(|i| i.serial_hex)
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    let result = issue(&trailing, "tls-server", None);
    assert!(matches!(result, Err(CaError::MalformedCsr(_))), "trailing byte: {:?}", result.map(|i| i.serial_hex));
}

#[test]
fn a_flipped_signature_bit_fails_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsa = openssl_csr(dir.path(), KeyAlg::Rsa(2048), "/CN=rsa.corp.example", None);
    for csr in [good_csr(), pem_to_der(&rsa)] {
        let mut request = CertReq::from_der(&csr).expect("CSR");
        let mut signature = request.signature.raw_bytes().to_vec();
        let last = signature.len() - 1;
        signature[last] ^= 0x01;
        request.signature = BitString::from_bytes(&signature).expect("bit string");
        let tampered = request.to_der().expect("encode");
        let result = issue(&tampered, "tls-server", None);
        assert!(
            matches!(result, Err(CaError::CsrSignature(KeyError::BadSignature))),
            "{:?}",
            result.map(|i| i.serial_hex)
        );
    }
}

#[test]
fn every_single_bit_flip_is_refused_without_panicking() {
    let der = good_csr();
    for byte in 0..der.len() {
        for bit in 0..8 {
            let mut flipped = der.clone();
            flipped[byte] ^= 1 << bit;
            let result = issue(&flipped, "tls-server", Some(DAY));
            assert!(result.is_err(), "flipping bit {bit} of byte {byte} was accepted");
        }
    }
}

#[test]
fn an_unknown_profile_is_named_with_the_known_ones() {
    let result = issue(&good_csr(), "tls-sever", None);
    let Err(error @ CaError::UnknownProfile { .. }) = result else {
        panic!("unknown profile: {:?}", result.map(|i| i.serial_hex));
    };
    let message = error.to_string();
    assert_contains(&message, "\"tls-sever\"");
    assert_contains(&message, "tls-server, tls-client, service");
}

#[test]
fn a_weak_rsa_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = openssl_csr(dir.path(), KeyAlg::Rsa(1024), "/CN=weak.corp.example", Some("DNS:weak.corp.example"));
    let result = issue(&csr, "tls-server", None);
    assert!(matches!(result, Err(CaError::BadKey(KeyError::WeakKey { .. }))), "{:?}", result.map(|i| i.serial_hex));
}

#[test]
fn a_csr_naming_nothing_is_refused() {
    for csr in [rust_csr("O=Castellan Test", None), rust_csr("", None), rust_csr("O=Castellan Test", Some(vec![]))] {
        let result = issue(&csr, "tls-server", None);
        assert!(matches!(result, Err(CaError::NoIdentifiers)), "{:?}", result.map(|i| i.serial_hex));
    }
}

const LONG_LABEL: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example";

/// Which `NameError` a bad name must give.
type Expected = fn(&NameError) -> bool;

#[test]
fn bad_dns_names_are_refused() {
    let cases: [(&str, Expected); 6] = [
        ("bad_name.example", |e| matches!(e, NameError::BadCharacter { ch: '_', .. })),
        ("a..b.example", |e| matches!(e, NameError::EmptyLabel)),
        ("Www.Corp.Example", |e| matches!(e, NameError::Uppercase { .. })),
        ("-edge.corp.example", |e| matches!(e, NameError::HyphenAtLabelEdge { .. })),
        (LONG_LABEL, |e| matches!(e, NameError::LabelTooLong { len: 64, .. })),
        ("www.corp.example.", |e| matches!(e, NameError::TrailingDot)),
    ];
    for (name, expected) in cases {
        // In the SAN extension and as the only (CN) name.
        for csr in [rust_csr("", Some(vec![dns("ok.corp.example"), dns(name)])), rust_csr(&format!("CN={name}"), None)]
        {
            match issue(&csr, "tls-server", None) {
                Err(CaError::BadIdentifier(e)) => assert!(expected(&e), "{name}: {e:?}"),
                other => panic!("{name}: {:?}", other.map(|i| i.serial_hex)),
            }
        }
    }
}

#[test]
fn a_wildcard_must_be_the_whole_leftmost_label() {
    for name in ["f*o.example.com", "*foo.example.com", "www.*.example.com", "*.*.example.com", "*.com"] {
        let csr = rust_csr("", Some(vec![dns(name)]));
        match issue(&csr, "tls-server", None) {
            Err(CaError::BadIdentifier(NameError::BadWildcard { .. })) => {}
            other => panic!("{name}: {:?}", other.map(|i| i.serial_hex)),
        }
    }
}

#[test]
fn an_unsupported_san_type_is_refused() {
    let email = GeneralName::Rfc822Name(Ia5String::new("ops@corp.example").expect("IA5"));
    let csr = rust_csr("", Some(vec![dns("mail.corp.example"), email]));
    let result = issue(&csr, "tls-server", None);
    assert!(matches!(result, Err(CaError::MalformedCsr(_))), "{:?}", result.map(|i| i.serial_hex));
    let bad_ip = GeneralName::IpAddress(OctetString::new(vec![10, 0, 0]).expect("octets"));
    let csr = rust_csr("", Some(vec![dns("ip.corp.example"), bad_ip]));
    let result = issue(&csr, "tls-server", None);
    assert!(
        matches!(result, Err(CaError::BadIdentifier(NameError::BadIpLength { len: 3 }))),
        "{:?}",
        result.map(|i| i.serial_hex)
    );
}

#[test]
fn a_lifetime_over_the_profile_maximum_is_refused() {
    for (profile, max) in [("tls-server", 90 * DAY), ("tls-client", 30 * DAY), ("service", DAY)] {
        let csr = rust_csr(
            "",
            Some(vec![
                GeneralName::UniformResourceIdentifier(Ia5String::new(SPIFFE_ID).expect("IA5")),
                dns("life.corp.example"),
            ]),
        );
        let csr = if profile == "tls-server" { good_csr() } else { csr };
        let requested = max + Duration::from_secs(1);
        match issue(&csr, profile, Some(requested)) {
            Err(CaError::LifetimeTooLong { profile: p, requested_secs, max_secs }) => {
                assert_eq!((p, requested_secs, max_secs), (profile, requested.as_secs(), max.as_secs()));
            }
            other => panic!("{profile}: {:?}", other.map(|i| i.serial_hex)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The issuer's own validity.

#[test]
fn issuance_outside_the_issuers_validity_is_refused() {
    let ca = ca();
    let csr = castellan_ca::verify_csr(&good_csr()).expect("CSR");
    let validity = &ca.intermediate.tbs_certificate.validity;
    let (start, end) = (validity.not_before.to_system_time(), validity.not_after.to_system_time());
    for at in [start - Duration::from_secs(1), end + Duration::from_secs(1)] {
        match ca.issuer.issue_verified::<HsmSignature>(&csr, "tls-server", Some(DAY), at) {
            Err(CaError::IssuerNotValid { not_before, not_after }) => {
                assert_eq!((not_before, not_after), (validity.not_before.to_string(), validity.not_after.to_string()));
            }
            other => panic!("issuing at {at:?}: {:?}", other.map(|i| i.serial_hex)),
        }
    }
    // Both ends of the issuer's validity are inside it.
    for at in [start, end] {
        ca.issuer.issue_verified::<HsmSignature>(&csr, "tls-server", Some(DAY), at).expect("issue at the edges");
    }
}

#[test]
fn a_leaf_never_outlives_its_issuer() {
    let ca = ca();
    let csr = castellan_ca::verify_csr(&good_csr()).expect("CSR");
    let issuer_end = ca.intermediate.tbs_certificate.validity.not_after.to_system_time();
    let at = issuer_end - 10 * DAY;
    let issued = ca.issuer.issue_verified::<HsmSignature>(&csr, "tls-server", Some(90 * DAY), at).expect("issue");
    assert_eq!(issued.not_after, issuer_end, "notAfter is cut short at the issuer's");
    assert_eq!(issued.not_before, at - BACKDATE, "notBefore is as usual");
    verify_certificate_signature(&issued.certificate, &ca.intermediate.tbs_certificate.subject_public_key_info)
        .expect("signature");
}

#[test]
fn a_huge_configured_lifetime_is_cut_short_or_refused_never_a_panic() {
    let ca = ca();
    let issuer_with_max = |max: Duration| {
        let mut profiles = Profiles::default();
        profiles.set_max_lifetime(ProfileKind::TlsServer, max);
        Issuer::new::<HsmSignature>(
            hsm().signer(ca.intermediate_key.clone()),
            vec![ca.intermediate.clone()],
            &urls(),
            profiles,
        )
        .expect("issuer")
    };
    let csr = good_csr();
    let request = IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: None };
    // A century fits in a SystemTime: the leaf ends with its issuer.
    let issued =
        issuer_with_max(36525 * DAY).issue::<HsmSignature>(&request, SystemTime::now()).expect("a century, cut short");
    assert_eq!(issued.not_after, ca.intermediate.tbs_certificate.validity.not_after.to_system_time());
    // Duration::MAX does not: a typed error, where `SystemTime + Duration` would panic.
    match issuer_with_max(Duration::MAX).issue::<HsmSignature>(&request, SystemTime::now()) {
        Err(CaError::LifetimeOutOfRange { requested_secs }) => assert_eq!(requested_secs, u64::MAX),
        other => panic!("{:?}", other.map(|i| i.serial_hex)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn concurrent_issuance_gives_distinct_serials() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    let ca = ca();
    let issuer = Arc::new(ca.new_issuer(vec![ca.intermediate.clone()]));
    let csr = Arc::new(good_csr());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (issuer, csr) = (Arc::clone(&issuer), Arc::clone(&csr));
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|_| {
                        issuer
                            .issue::<HsmSignature>(
                                &IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: Some(DAY) },
                                SystemTime::now(),
                            )
                            .expect("concurrent issuance")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let issued: Vec<Issued> = handles.into_iter().flat_map(|h| h.join().expect("issuing thread")).collect();
    assert_eq!(issued.len(), THREADS * PER_THREAD);
    let serials: HashSet<_> = issued.iter().map(|i| i.serial_hex.clone()).collect();
    assert_eq!(serials.len(), THREADS * PER_THREAD, "serials must be distinct");
    let intermediate_key = &ca.intermediate.tbs_certificate.subject_public_key_info;
    for i in &issued {
        assert_eq!(i.serial.as_bytes().len(), 17);
        verify_certificate_signature(&i.certificate, intermediate_key).expect("each signature verifies");
    }
}
