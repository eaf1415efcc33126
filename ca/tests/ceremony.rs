//! The CA's own certificates against a real SoftHSM2 token, checked with the `openssl` CLI: a root and an
//! intermediate made here (EC and RSA roots, name constraints), and the enterprise path where an external root
//! made by openssl signs our intermediate's CSR.
//!
//! These tests need `openssl` (3.x) on PATH and fail, never skip, without it.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_ca::authority::csr_pem;
use castellan_ca::{
    AuthorityUrls, CaError, IssuanceRequest, Issuer, NameConstraintSpec, Profiles, check_imported_intermediate,
    intermediate_csr, self_signed_root, sign_intermediate,
};
use castellan_hsm::testkit;
use castellan_hsm::{Hsm, HsmKey, HsmPublicKey, HsmSignature, HsmSigner, KeySpec};
use der::pem::LineEnding;
use der::{DecodePem, EncodePem};
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn hsm() -> &'static Hsm {
    &testkit::shared().hsm
}

/// A fresh key pair in the test token and a signer for it.
fn token_key(prefix: &str, spec: KeySpec) -> (HsmKey, HsmSigner) {
    let key = hsm().generate_key_pair(&testkit::unique_label(prefix), spec).expect("generate a key in the token");
    let signer = hsm().signer(key.clone());
    (key, signer)
}

fn name(rfc4514: &str) -> Name {
    Name::from_str(rfc4514).expect("distinguished name")
}

/// Runs `openssl` in `dir`; returns (exit success, stdout + stderr). Panics when openssl cannot be run: a skipped
/// interoperability check would look like a pass.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("these tests need the `openssl` binary (3.x) on PATH to check interoperability; running it failed: {e}")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs `openssl` and fails the test unless it succeeds.
fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {} failed:\n{text}", args.join(" "));
    text
}

fn write_cert(dir: &Path, file: &str, cert: &Certificate) {
    std::fs::write(dir.join(file), cert.to_pem(LineEnding::LF).expect("PEM")).expect("write certificate");
}

fn read_cert(dir: &Path, file: &str) -> Certificate {
    let pem = std::fs::read(dir.join(file)).expect("read certificate");
    Certificate::from_pem(&pem).expect("parse certificate PEM")
}

fn text_of(dir: &Path, file: &str) -> String {
    openssl_ok(dir, &["x509", "-in", file, "-noout", "-text"])
}

/// `openssl verify` of `leaf` with `root.pem` as the only trust anchor and `untrusted` as the intermediate.
fn verify(dir: &Path, untrusted: Option<&str>, leaf: &str) -> (bool, String) {
    let mut args = vec!["verify", "-CAfile", "root.pem"];
    if let Some(file) = untrusted {
        args.extend(["-untrusted", file]);
    }
    args.push(leaf);
    openssl(dir, &args)
}

fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

/// A DER CSR from a fresh software P-256 key, asking for `dns` (the first also as CN) and `ips`.
fn leaf_csr(dns: &[&str], ips: &[[u8; 4]]) -> Vec<u8> {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let subject = match dns.first() {
        Some(first) => name(&format!("CN={first}")),
        None => Name::default(),
    };
    let mut builder = RequestBuilder::new(subject, &key).expect("request builder");
    let mut sans: Vec<GeneralName> =
        dns.iter().map(|d| GeneralName::DnsName(der::asn1::Ia5String::new(d).expect("IA5"))).collect();
    sans.extend(ips.iter().map(|ip| GeneralName::IpAddress(der::asn1::OctetString::new(ip.to_vec()).expect("octets"))));
    builder.add_extension(&SubjectAltName(sans)).expect("SAN");
    let csr = builder.build::<p256::ecdsa::DerSignature>().expect("sign CSR");
    der::Encode::to_der(&csr).expect("encode CSR")
}

/// A root and an intermediate made in the token; the intermediate's signer is returned for issuing.
struct Hierarchy {
    root: Certificate,
    intermediate: Certificate,
    intermediate_signer: HsmSigner,
}

fn hierarchy(root_spec: KeySpec, constraints: &NameConstraintSpec) -> Hierarchy {
    let (_, root_signer) = token_key("ceremony-root", root_spec);
    let root = self_signed_root::<_, HsmSignature>(
        &root_signer,
        name("CN=Castellan Ceremony Root,O=Castellan Test"),
        3650 * DAY,
        SystemTime::now(),
    )
    .expect("self-signed root");
    let (intermediate_key, intermediate_signer) = token_key("ceremony-intermediate", KeySpec::EcP256);
    let intermediate = sign_intermediate::<_, HsmSignature>(
        &root_signer,
        &root,
        &intermediate_key.public_key,
        name("CN=Castellan Ceremony Intermediate,O=Castellan Test"),
        365 * DAY,
        constraints,
        SystemTime::now(),
    )
    .expect("intermediate signed by the root");
    Hierarchy { root, intermediate, intermediate_signer }
}

#[test]
fn ec_root_and_intermediate_in_the_token_verify_with_openssl() {
    let h = hierarchy(KeySpec::EcP384, &NameConstraintSpec::default());
    let dir = tempfile::tempdir().expect("tempdir");
    write_cert(dir.path(), "root.pem", &h.root);
    write_cert(dir.path(), "intermediate.pem", &h.intermediate);

    let (ok, out) = verify(dir.path(), None, "intermediate.pem");
    assert!(ok && out.contains("intermediate.pem: OK"), "openssl verify of the intermediate:\n{out}");

    let root_text = text_of(dir.path(), "root.pem");
    assert_contains(&root_text, "Signature Algorithm: ecdsa-with-SHA384");
    assert_contains(&root_text, "NIST CURVE: P-384");
    assert_contains(&root_text, "X509v3 Basic Constraints: critical");
    assert_contains(&root_text, "CA:TRUE");
    assert!(!root_text.contains("pathlen"), "the root has no path length limit:\n{root_text}");

    let text = text_of(dir.path(), "intermediate.pem");
    assert_contains(&text, "Signature Algorithm: ecdsa-with-SHA384");
    assert_contains(&text, "NIST CURVE: P-256");
    assert_contains(&text, "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0");
    assert_contains(&text, "X509v3 Key Usage: critical");
    assert_contains(&text, "Certificate Sign, CRL Sign");
    assert_contains(&text, "X509v3 Subject Key Identifier");
    assert_contains(&text, "X509v3 Authority Key Identifier");
    assert!(!text.contains("Name Constraints"), "no constraints were asked for:\n{text}");
    assert_eq!(h.intermediate.tbs_certificate.issuer, h.root.tbs_certificate.subject);
}

#[test]
fn name_constraints_are_encoded_verified_by_openssl_and_applied_by_the_issuer() {
    let constraints = NameConstraintSpec {
        permitted_dns: vec!["corp.example".into()],
        permitted_ip: vec!["10.0.0.0/8".parse().expect("CIDR")],
        ..Default::default()
    };
    let h = hierarchy(KeySpec::EcP384, &constraints);
    let dir = tempfile::tempdir().expect("tempdir");
    write_cert(dir.path(), "root.pem", &h.root);
    write_cert(dir.path(), "intermediate.pem", &h.intermediate);

    let text = text_of(dir.path(), "intermediate.pem");
    assert_contains(&text, "X509v3 Name Constraints: critical");
    assert_contains(&text, "Permitted:");
    assert_contains(&text, "DNS:corp.example");
    assert_contains(&text, "IP:10.0.0.0/255.0.0.0");
    assert!(!text.contains("Excluded"), "no exclusions were asked for:\n{text}");
    let (ok, out) = verify(dir.path(), None, "intermediate.pem");
    assert!(ok, "openssl verify of the constrained intermediate:\n{out}");

    let issuer = Issuer::new::<HsmSignature>(
        h.intermediate_signer,
        vec![h.intermediate.clone()],
        &AuthorityUrls::default(),
        Profiles::default(),
    )
    .expect("issuer");
    let issue = |csr: Vec<u8>, file: &str| {
        let issued = issuer
            .issue::<HsmSignature>(
                &IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: Some(DAY) },
                SystemTime::now(),
            )
            .expect("inside the constraints");
        write_cert(dir.path(), file, &issued.certificate);
    };

    issue(leaf_csr(&["a.corp.example"], &[[10, 1, 2, 3]]), "inside.pem");
    let (ok, out) = verify(dir.path(), Some("intermediate.pem"), "inside.pem");
    assert!(ok && out.contains("inside.pem: OK"), "a leaf inside the constraints must verify:\n{out}");

    // Clients would reject these (openssl: "subtree violation"), so the issuer refuses them before signing.
    for (csr, refused) in [
        (leaf_csr(&["outside.example"], &[]), "DNS:outside.example"),
        (leaf_csr(&["b.corp.example"], &[[192, 168, 1, 1]]), "IP:192.168.1.1"),
    ] {
        let err = issuer
            .issue::<HsmSignature>(
                &IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: Some(DAY) },
                SystemTime::now(),
            )
            .expect_err("outside the constraints");
        assert!(matches!(&err, castellan_ca::CaError::OutsideNameConstraints { name } if name == refused), "{err}");
    }
}

#[test]
fn rsa_root_signs_an_ec_intermediate_with_pkcs1() {
    let h = hierarchy(KeySpec::Rsa2048, &NameConstraintSpec::default());
    let dir = tempfile::tempdir().expect("tempdir");
    write_cert(dir.path(), "root.pem", &h.root);
    write_cert(dir.path(), "intermediate.pem", &h.intermediate);

    let root_text = text_of(dir.path(), "root.pem");
    assert_contains(&root_text, "Signature Algorithm: sha256WithRSAEncryption");
    assert_contains(&root_text, "Public-Key: (2048 bit)");
    let text = text_of(dir.path(), "intermediate.pem");
    assert_contains(&text, "Signature Algorithm: sha256WithRSAEncryption");
    assert_contains(&text, "CA:TRUE, pathlen:0");
    let (ok, out) = verify(dir.path(), None, "intermediate.pem");
    assert!(ok && out.contains("intermediate.pem: OK"), "openssl verify of the intermediate:\n{out}");

    // And the EC intermediate under the RSA root issues leaves that verify to the root.
    let issuer = Issuer::new::<HsmSignature>(
        h.intermediate_signer,
        vec![h.intermediate.clone(), h.root.clone()],
        &AuthorityUrls::default(),
        Profiles::default(),
    )
    .expect("issuer");
    let csr = leaf_csr(&["www.corp.example"], &[]);
    let issued = issuer
        .issue::<HsmSignature>(&IssuanceRequest { csr: &csr, profile: "tls-server", lifetime: None }, SystemTime::now())
        .expect("issue");
    write_cert(dir.path(), "leaf.pem", &issued.certificate);
    let (ok, out) = verify(dir.path(), Some("intermediate.pem"), "leaf.pem");
    assert!(ok, "leaf under EC intermediate under RSA root:\n{out}");
}

#[test]
fn a_root_refuses_to_sign_with_a_key_that_is_not_its_own() {
    let (_, root_signer) = token_key("ceremony-root", KeySpec::EcP256);
    let root = self_signed_root::<_, HsmSignature>(&root_signer, name("CN=Mismatch Root"), DAY, SystemTime::now())
        .expect("root");
    let (_, other_signer) = token_key("ceremony-other", KeySpec::EcP256);
    let (intermediate_key, _) = token_key("ceremony-intermediate", KeySpec::EcP256);
    let result = sign_intermediate::<_, HsmSignature>(
        &other_signer,
        &root,
        &intermediate_key.public_key,
        name("CN=Mismatch Intermediate"),
        DAY,
        &NameConstraintSpec::default(),
        SystemTime::now(),
    );
    assert!(matches!(result, Err(CaError::SignerMismatch)), "{result:?}");
}

/// A token signer whose signatures come out corrupted, as an RSA-CRT fault in the token would corrupt them.
struct Faulty(HsmSigner);

impl signature::Signer<HsmSignature> for Faulty {
    fn try_sign(&self, message: &[u8]) -> Result<HsmSignature, signature::Error> {
        let mut signature = self.0.try_sign(message)?;
        if let Some(last) = signature.0.last_mut() {
            *last ^= 1;
        }
        Ok(signature)
    }
}

impl signature::Keypair for Faulty {
    type VerifyingKey = HsmPublicKey;
    fn verifying_key(&self) -> HsmPublicKey {
        self.0.verifying_key()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for Faulty {
    fn signature_algorithm_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        self.0.signature_algorithm_identifier()
    }
}

#[test]
fn a_faulty_signature_never_leaves_the_ceremony() {
    let (_, root_signer) = token_key("ceremony-faulty-root", KeySpec::EcP256);
    let faulty = Faulty(root_signer);
    let result = self_signed_root::<_, HsmSignature>(&faulty, name("CN=Faulty Root"), DAY, SystemTime::now());
    assert!(matches!(result, Err(CaError::SignatureCheck(_))), "{result:?}");

    // A good root, then a fault while signing the intermediate.
    let root =
        self_signed_root::<_, HsmSignature>(&faulty.0, name("CN=Faulty Root"), DAY, SystemTime::now()).expect("root");
    let (intermediate_key, _) = token_key("ceremony-faulty-intermediate", KeySpec::EcP256);
    let result = sign_intermediate::<_, HsmSignature>(
        &faulty,
        &root,
        &intermediate_key.public_key,
        name("CN=Faulty Intermediate"),
        DAY,
        &NameConstraintSpec::default(),
        SystemTime::now(),
    );
    assert!(matches!(result, Err(CaError::SignatureCheck(_))), "{result:?}");
}

#[test]
fn an_absurd_ceremony_lifetime_is_an_error_not_a_panic() {
    let (_, root_signer) = token_key("ceremony-forever-root", KeySpec::EcP256);
    let result =
        self_signed_root::<_, HsmSignature>(&root_signer, name("CN=Forever Root"), Duration::MAX, SystemTime::now());
    assert!(matches!(result, Err(CaError::LifetimeOutOfRange { .. })), "{result:?}");

    let root = self_signed_root::<_, HsmSignature>(&root_signer, name("CN=Forever Root"), DAY, SystemTime::now())
        .expect("root");
    let (intermediate_key, _) = token_key("ceremony-forever-intermediate", KeySpec::EcP256);
    let result = sign_intermediate::<_, HsmSignature>(
        &root_signer,
        &root,
        &intermediate_key.public_key,
        name("CN=Forever Intermediate"),
        Duration::MAX,
        &NameConstraintSpec::default(),
        SystemTime::now(),
    );
    assert!(matches!(result, Err(CaError::LifetimeOutOfRange { .. })), "{result:?}");
}

/// An external root made by the openssl CLI, as an enterprise PKI would hand us: `<stem>.pem` and `<stem>.key`.
fn openssl_root(dir: &Path, stem: &str, subject: &str) -> Certificate {
    let (cert, key) = (format!("{stem}.pem"), format!("{stem}.key"));
    openssl_ok(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            subject,
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    read_cert(dir, &cert)
}

/// Has the openssl root `<root_stem>` sign `csr` with the extensions in `extensions`; returns the certificate.
fn openssl_sign(dir: &Path, root_stem: &str, csr: &str, extensions: &str, out: &str) -> Certificate {
    let extfile = format!("{out}.ext");
    std::fs::write(dir.join(&extfile), extensions).expect("write extfile");
    let (ca, ca_key) = (format!("{root_stem}.pem"), format!("{root_stem}.key"));
    openssl_ok(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &extfile,
            "-out",
            out,
        ],
    );
    read_cert(dir, out)
}

const CA_EXTENSIONS: &str = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";

#[test]
fn enterprise_root_signs_our_intermediate_csr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (key, signer) = token_key("enterprise-intermediate", KeySpec::EcP256);
    let csr = intermediate_csr::<_, HsmSignature>(&signer, name("CN=Castellan Issuing CA,O=Example Corp"))
        .expect("intermediate CSR");
    std::fs::write(d.join("intermediate.csr"), csr_pem(&csr).expect("CSR PEM")).expect("write CSR");

    let out = openssl_ok(d, &["req", "-in", "intermediate.csr", "-noout", "-verify", "-text"]);
    assert_contains(&out, "verify OK");
    // RFC 4514 strings list the most specific RDN first; the encoding (and openssl) go from the top.
    assert_contains(&out, "Subject: O = Example Corp, CN = Castellan Issuing CA");
    assert_contains(&out, "CA:TRUE, pathlen:0");
    assert_contains(&out, "Certificate Sign, CRL Sign");

    let root = openssl_root(d, "root", "/CN=Example Corp Root/O=Example Corp");
    let intermediate = openssl_sign(d, "root", "intermediate.csr", CA_EXTENSIONS, "intermediate.pem");
    check_imported_intermediate(&intermediate, &key.public_key, &root, SystemTime::now())
        .expect("a correct import is accepted");
    let (ok, out) = verify(d, None, "intermediate.pem");
    assert!(ok, "openssl verify of the imported intermediate:\n{out}");

    // The imported intermediate issues leaves that chain to the enterprise root.
    let issuer =
        Issuer::new::<HsmSignature>(signer, vec![intermediate.clone()], &AuthorityUrls::default(), Profiles::default())
            .expect("issuer from the imported intermediate");
    let leaf_der = leaf_csr(&["app.corp.example"], &[]);
    let issued = issuer
        .issue::<HsmSignature>(
            &IssuanceRequest { csr: &leaf_der, profile: "tls-server", lifetime: Some(DAY) },
            SystemTime::now(),
        )
        .expect("issue under the imported intermediate");
    write_cert(d, "leaf.pem", &issued.certificate);
    let (ok, out) = verify(d, Some("intermediate.pem"), "leaf.pem");
    assert!(ok, "leaf under the imported intermediate:\n{out}");

    // (1) A certificate for a different key: the enterprise signed someone else's CSR.
    openssl_ok(
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
            "other.key",
            "-subj",
            "/CN=Castellan Issuing CA/O=Example Corp",
            "-out",
            "other.csr",
        ],
    );
    let other = openssl_sign(d, "root", "other.csr", CA_EXTENSIONS, "other.pem");
    match check_imported_intermediate(&other, &key.public_key, &root, SystemTime::now()) {
        Err(CaError::BadCaCertificate(why)) => assert!(why.contains("different key"), "{why}"),
        other => panic!("a certificate for another key must be refused, got {other:?}"),
    }

    // (2) Issued by a root other than the one given.
    let _ = openssl_root(d, "elsewhere", "/CN=Some Other Root/O=Elsewhere");
    let foreign = openssl_sign(d, "elsewhere", "intermediate.csr", CA_EXTENSIONS, "foreign.pem");
    match check_imported_intermediate(&foreign, &key.public_key, &root, SystemTime::now()) {
        Err(CaError::BadCaCertificate(why)) => assert!(why.contains("issued by"), "{why}"),
        other => panic!("a certificate from another root must be refused, got {other:?}"),
    }
    // (2b) Same issuer name, different root key: only the signature tells them apart.
    let _ = openssl_root(d, "impostor", "/CN=Example Corp Root/O=Example Corp");
    let forged = openssl_sign(d, "impostor", "intermediate.csr", CA_EXTENSIONS, "forged.pem");
    assert_eq!(forged.tbs_certificate.issuer, root.tbs_certificate.subject);
    let result = check_imported_intermediate(&forged, &key.public_key, &root, SystemTime::now());
    assert!(matches!(result, Err(CaError::SignatureCheck(_))), "{result:?}");

    // (3) Not a CA.
    let not_ca = openssl_sign(
        d,
        "root",
        "intermediate.csr",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        "not-ca.pem",
    );
    match check_imported_intermediate(&not_ca, &key.public_key, &root, SystemTime::now()) {
        Err(CaError::BadCaCertificate(why)) => assert!(why.contains("not a CA"), "{why}"),
        other => panic!("a CA:FALSE certificate must be refused, got {other:?}"),
    }

    // (3b) A CA whose key usage does not allow signing certificates.
    let no_cert_sign = openssl_sign(
        d,
        "root",
        "intermediate.csr",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,cRLSign\n",
        "no-cert-sign.pem",
    );
    match check_imported_intermediate(&no_cert_sign, &key.public_key, &root, SystemTime::now()) {
        Err(CaError::BadCaCertificate(why)) => assert!(why.contains("keyCertSign"), "{why}"),
        other => panic!("a CA without keyCertSign must be refused, got {other:?}"),
    }
}
