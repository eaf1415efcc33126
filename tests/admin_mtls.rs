//! The admin API authenticated by TLS client certificates on a real `castellan serve`: certificates issued with
//! `castellan ca issue --profile tls-client` whose SPIFFE ID (`spiffe://castellan/admin/<name>`, `…/read/<name>`)
//! gives a scope, presented with curl; refused once revoked; ACME clients without certificates unaffected.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::acme::Acme;
use common::{castellan, ok, openssl_p256_csr, run, split_leaf, text, write};
use der::DecodePem;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A client certificate's files and serial.
struct ClientCert {
    chain: PathBuf,
    key: PathBuf,
    serial: String,
}

/// Has openssl make a key and a CSR with `san` and castellan issue it under `profile`.
fn issue(acme: &Acme, stem: &str, profile: &str, san: &str) -> ClientCert {
    let dir = acme.dir.path();
    let csr = openssl_p256_csr(dir, stem, &format!("/CN={stem}"), &["-addext", &format!("subjectAltName={san}")]);
    let chain = ok(castellan()
        .arg("--data-dir")
        .arg(dir.join("var"))
        .args(["certificate", "issue", "--profile", profile, "--csr"])
        .arg(&csr));
    let leaf = x509_cert::Certificate::from_pem(split_leaf(&chain).0.as_bytes()).expect("the issued leaf");
    ClientCert {
        chain: write(dir, &format!("{stem}.chain.pem"), &chain),
        key: dir.join(format!("{stem}.key")),
        serial: hex::encode(leaf.tbs_certificate.serial_number.as_bytes()),
    }
}

/// The outcome of one curl call: the HTTP status (0 when there was no HTTP answer) and the body.
struct Answer {
    status: u16,
    body: String,
    stderr: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

fn curl(acme: &Acme, method: &str, path: &str, cert: Option<&ClientCert>, body: Option<&str>) -> Answer {
    curl_with(acme, method, path, cert, body, &[])
}

fn curl_with(
    acme: &Acme,
    method: &str,
    path: &str,
    cert: Option<&ClientCert>,
    body: Option<&str>,
    headers: &[&str],
) -> Answer {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let body_file = out_dir.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-X", method, "-w", "%{http_code}", "-o"])
        .arg(&body_file)
        .arg("--cacert")
        .arg(&acme.ca);
    if let Some(cert) = cert {
        cmd.arg("--cert").arg(&cert.chain).arg("--key").arg(&cert.key);
    }
    for header in headers {
        cmd.arg("-H").arg(header);
    }
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", body]);
    }
    let out = run(cmd.arg(acme.server.url(path)));
    Answer {
        status: text(&out.stdout).trim().parse().unwrap_or(0),
        body: std::fs::read_to_string(&body_file).unwrap_or_default(),
        stderr: text(&out.stderr),
    }
}

fn expect(answer: &Answer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {} {}", answer.body, answer.stderr);
}

fn revoke(data: &Path, serial: &str) {
    let out = ok(castellan().arg("--data-dir").arg(data).args(["certificate", "revoke", "--serial", serial]));
    assert!(out.contains("1 revoked"), "{out}");
}

#[test]
fn admin_api_by_client_certificate() {
    let acme = Acme::start("");
    let admin = issue(&acme, "alice", "tls-client", "URI:spiffe://castellan/admin/alice");
    let reader = issue(&acme, "robot", "tls-client", "URI:spiffe://castellan/read/robot");
    let no_role = issue(&acme, "plain", "tls-client", "DNS:plain.castellan.test");

    // ACME clients send no certificate and are served as before.
    let directory = curl(&acme, "GET", "/acme/directory", None, None);
    expect(&directory, 200, "the ACME directory without a client certificate");
    assert!(directory.json()["newAccount"].is_string(), "{}", directory.body);

    // Neither a token nor a certificate: 401, as before.
    expect(&curl(&acme, "GET", "/admin/groups", None, None), 401, "no credentials");

    // The admin certificate reads and changes; the change is audited under the certificate's identity.
    let groups = curl(&acme, "GET", "/admin/groups", Some(&admin), None);
    expect(&groups, 200, "GET /admin/groups with the admin certificate");
    assert!(groups.json()["groups"].is_array(), "{}", groups.body);
    let created = curl(&acme, "POST", "/admin/groups", Some(&admin), Some(r#"{"name": "by-cert"}"#));
    expect(&created, 201, "POST /admin/groups with the admin certificate");
    let audit = curl(&acme, "GET", "/admin/audit", Some(&admin), None);
    expect(&audit, 200, "GET /admin/audit");
    let actor = format!("admin-cert:alice:{}", admin.serial);
    assert!(audit.body.contains(&actor), "no {actor} in {}", audit.body);

    // The read certificate reads, and may not change anything. Its leaf alone will do too (the intermediate is a
    // trust anchor of the server's client verifier).
    expect(&curl(&acme, "GET", "/admin/groups", Some(&reader), None), 200, "GET with the read certificate");
    let chain = std::fs::read_to_string(&reader.chain).expect("the read chain");
    let leaf_only = ClientCert {
        chain: write(acme.dir.path(), "robot.leaf.pem", split_leaf(&chain).0),
        key: reader.key.clone(),
        serial: reader.serial.clone(),
    };
    expect(&curl(&acme, "GET", "/admin/groups", Some(&leaf_only), None), 200, "GET with the read leaf alone");
    let refused = curl(&acme, "POST", "/admin/groups", Some(&reader), Some(r#"{"name": "by-reader"}"#));
    expect(&refused, 403, "POST with the read certificate");
    assert!(refused.body.contains("admin-cert:robot:"), "{}", refused.body);

    // Our certificate without a role SAN: known, but no admin identity.
    let roleless = curl(&acme, "GET", "/admin/groups", Some(&no_role), None);
    expect(&roleless, 403, "a certificate without a role");
    assert!(roleless.body.contains("no admin role"), "{}", roleless.body);

    // A certificate that is not ours fails the TLS handshake.
    let dir = acme.dir.path();
    ok(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "stranger.key",
        "-out",
        "stranger.pem",
        "-days",
        "1",
        "-subj",
        "/CN=stranger",
        "-addext",
        "subjectAltName=URI:spiffe://castellan/admin/stranger",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ]));
    let stranger = ClientCert { chain: dir.join("stranger.pem"), key: dir.join("stranger.key"), serial: String::new() };
    let answer = curl(&acme, "GET", "/admin/groups", Some(&stranger), None);
    assert_eq!(answer.status, 0, "a self-signed client certificate must not get an HTTP answer: {}", answer.body);

    // An Authorization header decides alone: a bad token is refused even with a good certificate.
    let bogus = ["Authorization: Bearer cst_not-a-token"];
    let answer = curl_with(&acme, "GET", "/admin/groups", Some(&admin), None, &bogus);
    expect(&answer, 401, "a bad token with the admin certificate");

    // Revoked: refused on the next request.
    revoke(&dir.join("var"), &admin.serial);
    let revoked = curl(&acme, "GET", "/admin/groups", Some(&admin), None);
    expect(&revoked, 401, "the revoked admin certificate");
    assert!(revoked.body.contains("revoked"), "{}", revoked.body);

    // Unaffected: the read certificate, and ACME.
    expect(&curl(&acme, "GET", "/admin/groups", Some(&reader), None), 200, "the read certificate after");
    expect(&curl(&acme, "GET", "/acme/directory", None, None), 200, "the ACME directory after");
}
