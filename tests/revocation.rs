//! Revocation that clients can check, against the real `castellan serve` with real tools: `openssl ocsp` says good,
//! then revoked after certbot (or the CLI) revokes; `openssl crl` lists the serial; `openssl verify -crl_check`
//! fails; unknown serials are unknown, malformed requests malformedRequest; cached responses are reused and nonces
//! echoed; CRL numbers grow across a restart; ARI answers "now" after `castellan renew-now`; and replicas on one
//! PostgreSQL see each other's revocations.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use castellan_acme_proto::b64;
use common::acme::{Acme, RawClient, poll};
use common::dns::TestDns;
use common::peers::{Certbot, free_port};
use common::{Server, castellan, ok, run, text, write};
use der::Decode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The plain-HTTP listener on a free port, and short waits so the tests do not sit idle.
const STATUS_CONFIG: &str = "[serve]\nhttp_listen = \"127.0.0.1:0\"\n\
                             [revocation]\ncrl_batch_secs = 1\npoll_interval_ms = 200\n";

/// A certificate and the files openssl needs to check it.
struct Checked {
    dir: tempfile::TempDir,
    leaf: PathBuf,
    intermediate: PathBuf,
    root: PathBuf,
    serial: String,
}

impl Checked {
    fn new(chain_pem: &str, root: &Path) -> Checked {
        let dir = tempfile::tempdir().expect("tempdir");
        let (leaf, intermediate) = common::split_leaf(chain_pem);
        let leaf_path = write(dir.path(), "leaf.pem", leaf);
        let intermediate = write(dir.path(), "intermediate.pem", intermediate);
        let root = write(dir.path(), "root.pem", std::fs::read(root).expect("root"));
        let serial = ok(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&leaf_path));
        let serial = serial.trim().trim_start_matches("serial=").to_owned();
        Checked { dir, leaf: leaf_path, intermediate, root, serial }
    }

    /// What the leaf says about where its status is: (OCSP URL, CRL URL).
    fn urls(&self) -> (String, String) {
        let ocsp = ok(Command::new("openssl").args(["x509", "-noout", "-ocsp_uri", "-in"]).arg(&self.leaf));
        let text = ok(Command::new("openssl")
            .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
            .arg(&self.leaf));
        let crl = text.lines().find_map(|l| l.trim().strip_prefix("URI:")).expect("a CRL distribution point URI");
        (ocsp.trim().to_owned(), crl.to_owned())
    }

    /// `openssl ocsp` for the leaf (or for `serial`), verifying the response up to the root; stdout and stderr.
    fn ocsp(&self, url: &str, serial: Option<&str>, extra: &[&str]) -> String {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(self.dir.path()).args(["ocsp", "-issuer"]).arg(&self.intermediate);
        match serial {
            Some(serial) => cmd.args(["-serial", serial]),
            None => cmd.arg("-cert").arg(&self.leaf),
        };
        cmd.args(["-url", url, "-CAfile"]).arg(&self.root).arg("-verify_other").arg(&self.intermediate);
        let out = run(cmd.args(extra).args(["-timeout", "10"]));
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    /// Fetches the CRL and has openssl verify and print it.
    fn crl(&self, url: &str) -> String {
        let der = self.dir.path().join("crl.der");
        ok(Command::new("curl").args(["-sS", "--fail", "--max-time", "10", "-o"]).arg(&der).arg(url));
        let bundle =
            [std::fs::read(&self.intermediate).expect("int"), std::fs::read(&self.root).expect("root")].concat();
        let bundle = write(self.dir.path(), "bundle.pem", bundle);
        // openssl prints "verify OK" on stderr, the CRL on stdout.
        let out = run(Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&der)
            .arg("-CAfile")
            .arg(&bundle)
            .args(["-noout", "-text"]));
        assert!(out.status.success(), "openssl crl: {}", text(&out.stderr));
        let out = format!("{}{}", text(&out.stderr), text(&out.stdout));
        ok(Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(self.dir.path().join("crl.pem")));
        out
    }

    /// `openssl verify -crl_check` with the CRL last fetched by [`Checked::crl`].
    fn verify_with_crl(&self) -> (bool, String) {
        let out = run(Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(&self.root)
            .arg("-untrusted")
            .arg(&self.intermediate)
            .arg("-CRLfile")
            .arg(self.dir.path().join("crl.pem"))
            .arg(&self.leaf));
        (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }
}

/// The CRL Number openssl prints.
fn crl_number(text: &str) -> u64 {
    let mut lines = text.lines();
    lines.find(|l| l.contains("X509v3 CRL Number"));
    lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("no CRL number in {text}"))
}

/// Retries `check` for up to `limit`, returning its last output.
fn eventually(limit: Duration, mut check: impl FnMut() -> (bool, String)) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let (done, output) = check();
        if done {
            return output;
        }
        assert!(Instant::now() < deadline, "gave up after {limit:?}; last output:\n{output}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn certbot_revocation_reaches_ocsp_the_crl_and_openssl_verify() {
    let dns = TestDns::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = free_port();
    let config = write(
        dir.path(),
        "castellan.toml",
        format!(
            "{STATUS_CONFIG}{}[acme.validation]\nhttp01_port = {http_port}\ndns_resolver = \"{}\"\n\
             denied_networks = []\n",
            common::acme::ALLOW_ALL_POLICY,
            dns.addr()
        ),
    );
    let data = dir.path().join("var");
    let server = Server::start(&data, Some(&config));
    let root = data.join("ca/root.pem");
    let certbot = Certbot::new(&server.url("/acme/directory"), &root);
    certbot.register("ops@castellan.test");
    let issued = certbot.certonly_standalone(&["status.castellan.test"], http_port);
    let cert = Checked::new(&issued.fullchain_pem(), &root);

    // The leaf points at this server's plain-HTTP listener.
    let (ocsp_url, crl_url) = cert.urls();
    assert_eq!(ocsp_url, server.http_url("/ocsp"));
    assert!(crl_url.starts_with(&server.http_url("/crl/")) && crl_url.ends_with(".crl"), "{crl_url}");

    let good = cert.ocsp(&ocsp_url, None, &[]);
    assert!(good.contains("leaf.pem: good") && good.contains("Response verify OK"), "{good}");
    assert!(!good.contains("WARNING: no nonce"), "openssl's nonce is echoed: {good}");
    let crl = cert.crl(&crl_url);
    assert!(crl.contains("verify OK") && crl.contains("No Revoked Certificates"), "{crl}");
    let (verified, out) = cert.verify_with_crl();
    assert!(verified, "before revocation: {out}");

    certbot.revoke(&issued, "keycompromise", false);

    let revoked = eventually(Duration::from_secs(15), || {
        let out = cert.ocsp(&ocsp_url, None, &[]);
        (out.contains("leaf.pem: revoked"), out)
    });
    assert!(revoked.contains("Reason: keyCompromise") && revoked.contains("Response verify OK"), "{revoked}");
    let listed = eventually(Duration::from_secs(60), || {
        let out = cert.crl(&crl_url);
        (out.contains(&format!("Serial Number: {}", cert.serial)), out)
    });
    assert!(listed.contains("Key Compromise"), "{listed}");
    let (verified, out) = cert.verify_with_crl();
    assert!(!verified && out.contains("certificate revoked"), "after revocation: {out}");
    let log = server.log();
    assert!(!log.contains("panicked") && !log.contains(" ERROR "), "{log}");
}

/// A certificate for 127.0.0.1 through the raw client; returns its chain (PEM).
fn issue(acme: &Acme, client: &RawClient) -> String {
    let (order_url, order) = acme.ready_order(client);
    let dir = tempfile::tempdir().expect("tempdir");
    let csr =
        common::openssl_p256_csr(dir.path(), "leaf", "/CN=127.0.0.1", &["-addext", "subjectAltName=IP:127.0.0.1"]);
    let csr = std::fs::read_to_string(csr).expect("csr");
    let der = der::pem::decode_vec(csr.as_bytes()).expect("csr pem").1;
    let finalized = client.post(order["finalize"].as_str().expect("finalize"), Some(&json!({"csr": b64::encode(der)})));
    assert_eq!(finalized.status, 200, "{}", finalized.text());
    let order = poll(client, &order_url, |o| o["status"] != "processing");
    assert_eq!(order["status"], "valid", "{order}");
    client.post(order["certificate"].as_str().expect("certificate"), None).text()
}

/// RFC 9773 renewalInfo for the leaf of `chain`: (window start, window end) as Unix seconds.
fn renewal_window(client: &RawClient, chain: &str) -> (i64, i64) {
    let (leaf, issuer) = common::split_leaf(chain);
    let leaf = x509_cert::Certificate::from_der(&der::pem::decode_vec(leaf.as_bytes()).expect("leaf").1).expect("leaf");
    let issuer =
        x509_cert::Certificate::from_der(&der::pem::decode_vec(issuer.as_bytes()).expect("int").1).expect("int");
    let aki = castellan_ca::extensions::issuer_key_id(&issuer).expect("key id");
    let cert_id = format!("{}.{}", b64::encode(aki), b64::encode(leaf.tbs_certificate.serial_number.as_bytes()));
    let url = format!("{}/{cert_id}", client.url("renewalInfo"));
    let info = client.http.send("GET", &url, &[], None).json();
    let parse = |v: &serde_json::Value| {
        let text = v.as_str().expect("RFC 3339 time");
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("time")
            .unix_timestamp()
    };
    (parse(&info["suggestedWindow"]["start"]), parse(&info["suggestedWindow"]["end"]))
}

fn cli(data: &Path) -> Command {
    let mut cmd = castellan();
    cmd.arg("--data-dir").arg(data);
    cmd
}

#[test]
fn cli_revocation_renew_now_unknown_malformed_cache_and_crl_numbers_across_restart() {
    let acme = Acme::start_with(STATUS_CONFIG, "");
    let data = acme.dir.path().join("var");
    let client = acme.registered();
    let chain = issue(&acme, &client);
    let cert = Checked::new(&chain, &acme.ca);
    let ocsp_url = acme.server.http_url("/ocsp");
    let (_, crl_url) = cert.urls();

    // Cached: two requests without a nonce get the very same response (ECDSA signatures are randomized, so the
    // same bytes mean one signature). With a nonce: echoed, so signed afresh.
    let first = cert.ocsp(&ocsp_url, None, &["-no_nonce", "-respout", "first.der"]);
    assert!(first.contains("leaf.pem: good"), "{first}");
    let second = cert.ocsp(&ocsp_url, None, &["-no_nonce", "-respout", "second.der"]);
    assert!(second.contains("leaf.pem: good"), "{second}");
    let read = |name: &str| std::fs::read(cert.dir.path().join(name)).expect("response");
    assert_eq!(read("first.der"), read("second.der"), "the cached response is reused");
    let nonce = cert.ocsp(&ocsp_url, None, &["-respout", "nonce.der"]);
    assert!(nonce.contains("leaf.pem: good") && !nonce.contains("WARNING: no nonce"), "{nonce}");
    assert_ne!(read("nonce.der"), read("first.der"));

    // ARI: the window is ahead; after renew-now it has passed, and the certificate is still good.
    let (start, _) = renewal_window(&client, &chain);
    assert!(start > common::unix_now(), "window ahead at first");
    let out = ok(cli(&data).args(["certificate", "renew-now", "--serial", &cert.serial]));
    assert!(out.contains("renewal due now"), "{out}");
    let (_, end) = renewal_window(&client, &chain);
    assert!(end < common::unix_now(), "window in the past after renew-now");
    assert!(cert.ocsp(&ocsp_url, None, &[]).contains("leaf.pem: good"));

    // Never issued: unknown, signed. Garbage: malformedRequest, not an HTTP error.
    let unknown = cert.ocsp(&ocsp_url, Some("0x0123456789"), &[]);
    assert!(unknown.contains("0x0123456789: unknown") && unknown.contains("Response verify OK"), "{unknown}");
    let garbage = write(cert.dir.path(), "garbage.der", b"\x30\x03\x02\x01");
    let reply = run(Command::new("curl")
        .args(["-sS", "-D", "-", "-o"])
        .arg(cert.dir.path().join("malformed.der"))
        .args(["-H", "Content-Type: application/ocsp-request", "--data-binary"])
        .arg(format!("@{}", garbage.display()))
        .arg(&ocsp_url));
    let head = text(&reply.stdout);
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("application/ocsp-response"), "{head}");
    let parsed = run(Command::new("openssl").current_dir(cert.dir.path()).args([
        "ocsp",
        "-respin",
        "malformed.der",
        "-resp_text",
    ]));
    let parsed = format!("{}{}", text(&parsed.stdout), text(&parsed.stderr)).to_ascii_lowercase();
    assert!(parsed.contains("malformedrequest"), "{parsed}");
    let get =
        run(Command::new("curl").args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"]).arg(format!("{ocsp_url}/%%%")));
    assert_eq!(text(&get.stdout), "200");

    // Revoked with the CLI (its own process, on the store): the server notices by polling.
    let number_before = crl_number(&cert.crl(&crl_url));
    let out = ok(cli(&data).args(["certificate", "revoke", "--serial", &cert.serial, "--reason", "keyCompromise"]));
    assert!(out.contains("1 revoked"), "{out}");
    let revoked = eventually(Duration::from_secs(15), || {
        let out = cert.ocsp(&ocsp_url, None, &[]);
        (out.contains("leaf.pem: revoked"), out)
    });
    assert!(revoked.contains("Reason: keyCompromise"), "{revoked}");
    let again = ok(cli(&data).args(["certificate", "revoke", "--serial", &cert.serial]));
    assert!(again.contains("0 revoked, 1 unchanged"), "{again}");
    let listed = eventually(Duration::from_secs(60), || {
        let out = cert.crl(&crl_url);
        (out.contains(&format!("Serial Number: {}", cert.serial)), out)
    });
    let number = crl_number(&listed);
    assert!(number > number_before, "{number} after {number_before}");
    let audit = ok(cli(&data).args(["audit", "tail", "-n", "50", "--json"]));
    let page: serde_json::Value = serde_json::from_str(&audit).unwrap_or_else(|e| panic!("{e}: {audit}"));
    let entries = page["entries"].as_array().expect("entries");
    let by_cli = |action: &str| {
        entries.iter().any(|e| e["action"] == action && e["actor"].as_str().is_some_and(|a| a.starts_with("cli:")))
    };
    assert!(by_cli("certificate.revoke") && by_cli("certificate.renewal_due"), "{audit}");

    // Revoke by account: the second certificate goes, the revoked one is left as it was.
    let second = Checked::new(&issue(&acme, &client), &acme.ca);
    let account = client.kid.as_deref().and_then(|k| k.rsplit('/').next()).expect("account id").to_owned();
    let out = ok(cli(&data).args(["certificate", "revoke", "--account", &account, "--reason", "superseded", "--json"]));
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["revoked"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["unchanged"].as_array().map(Vec::len), Some(1), "{report}");
    let out = eventually(Duration::from_secs(15), || {
        let out = second.ocsp(&ocsp_url, None, &[]);
        (out.contains("leaf.pem: revoked"), out)
    });
    assert!(out.contains("Reason: superseded"), "{out}");
    let refused = run(cli(&data).args(["certificate", "revoke", "--name", "nothing.example"]));
    assert!(!refused.status.success());

    // A restart: the CRL number keeps growing (it lives in the store), the responder certificate is reused.
    let Acme { dir, server, ca, responder: _responder, .. } = acme;
    let log = server.stop();
    assert!(!log.contains("panicked"), "{log}");
    let restarted = Server::start(&dir.path().join("var"), Some(&dir.path().join("castellan.toml")));
    let cert = Checked::new(&chain, &ca);
    let crl_url = restarted.http_url(&crl_url[crl_url.find("/crl/").expect("path")..]);
    let after = crl_number(&cert.crl(&crl_url));
    assert!(after > number, "CRL number {after} after a restart, was {number}");
    assert!(restarted.log().contains("reusing the OCSP signing certificate"), "{}", restarted.log());
    let out = cert.ocsp(&restarted.http_url("/ocsp"), None, &[]);
    assert!(out.contains("leaf.pem: revoked"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_postgresql_publish_each_others_revocations() {
    let Some(pg) = castellan_store::testkit::postgres().await else { return };
    let url = pg.url.clone();
    tokio::task::spawn_blocking(move || {
        let acme = Acme::start_with(&format!("database_url = \"{url}\"\n{STATUS_CONFIG}"), "");
        let replica = acme.replica();
        let client = acme.registered();
        let chain = issue(&acme, &client);
        let cert = Checked::new(&chain, &acme.ca);
        for server in [&acme.server, &replica] {
            let out = cert.ocsp(&server.http_url("/ocsp"), None, &[]);
            assert!(out.contains("leaf.pem: good"), "{out}");
        }
        // Revoked through ACME on the first replica: the second one's cached "good" goes too.
        let der = der::pem::decode_vec(common::split_leaf(&chain).0.as_bytes()).expect("leaf").1;
        let revoked =
            client.post(&client.url("revokeCert"), Some(&json!({"certificate": b64::encode(&der), "reason": 4})));
        assert_eq!(revoked.status, 200, "{}", revoked.text());
        for server in [&replica, &acme.server] {
            eventually(Duration::from_secs(15), || {
                let out = cert.ocsp(&server.http_url("/ocsp"), None, &[]);
                (out.contains("leaf.pem: revoked") && out.contains("Reason: superseded"), out)
            });
        }
        // Both number their CRLs from one counter.
        let (_, crl_url) = cert.urls();
        let path = &crl_url[crl_url.find("/crl/").expect("path")..];
        let numbers: Vec<u64> = [&acme.server, &replica]
            .into_iter()
            .map(|server| {
                let out = eventually(Duration::from_secs(60), || {
                    let out = cert.crl(&server.http_url(path));
                    (out.contains(&format!("Serial Number: {}", cert.serial)), out)
                });
                crl_number(&out)
            })
            .collect();
        assert_ne!(numbers[0], numbers[1], "CRL numbers come from one counter: {numbers:?}");
        assert!(!replica.stop().contains("panicked"));
    })
    .await
    .expect("replica test");
}
