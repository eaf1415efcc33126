//! certbot and lego — real ACME clients from Debian — against `castellan serve`: http-01, dns-01 through a real
//! bind9 the clients' hooks update, tls-alpn-01, wildcards, several SANs, renewal, revocation by account and by
//! certificate key, and unregistering.
//!
//! Each test runs its own bind9 and its own castellan; castellan's VA resolves through that bind9 (every name
//! under castellan.test is 127.0.0.1) and connects to the ports the client listens on.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::dns::TestDns;
use common::peers::{Certbot, Challenge, Issued, Lego, free_port, run_limited};
use common::{Server, castellan, ok, write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

struct Castellan {
    _dir: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    directory: String,
    root: PathBuf,
    http_port: u16,
    tls_port: u16,
}

impl Castellan {
    fn start(dns: &TestDns) -> Castellan {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http_port, tls_port) = (free_port(), free_port());
        let config = write(
            dir.path(),
            "castellan.toml",
            format!(
                "{}[acme.validation]\nhttp01_port = {http_port}\ntls_alpn01_port = {tls_port}\n\
                 dns_resolver = \"{}\"\ndenied_networks = []\n",
                common::acme::ALLOW_ALL_POLICY,
                dns.addr()
            ),
        );
        let data = dir.path().join("var");
        let server = Server::start(&data, Some(&config));
        let directory = server.url("/acme/directory");
        let root = data.join("ca/root.pem");
        Castellan { _dir: dir, data, server, directory, root, http_port, tls_port }
    }

    fn certbot(&self) -> Certbot {
        Certbot::new(&self.directory, &self.root)
    }

    fn lego(&self) -> Lego {
        Lego::new(&self.directory, &self.root)
    }

    /// The certificate's status in castellan's inventory ("active", "revoked", …).
    fn status(&self, issued: &Issued) -> String {
        let serial = hex::encode(issued.leaf().tbs_certificate.serial_number.as_bytes());
        let out = ok(castellan()
            .args(["certificate", "search"])
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--serial", &serial, "--json"]));
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        json["certificates"][0]["status"].as_str().unwrap_or_default().to_owned()
    }

    /// openssl verifies the client's chain up to castellan's root.
    fn assert_chains(&self, issued: &Issued) {
        let dir = tempfile::tempdir().expect("tempdir");
        let full = issued.fullchain_pem();
        let chain = write(dir.path(), "chain.pem", common::split_leaf(&full).1);
        let leaf = write(dir.path(), "leaf.pem", issued.leaf_pem());
        let mut cmd = Command::new("openssl");
        cmd.arg("verify").arg("-CAfile").arg(&self.root).arg("-untrusted").arg(&chain).arg(&leaf);
        let done = run_limited(&mut cmd, None, Duration::from_secs(20));
        assert!(done.success(), "{} does not chain to castellan's root: {}", issued.name, done.describe(10));
    }

    fn assert_healthy(&self) {
        let log = self.server.log();
        assert!(!log.contains("panicked") && !log.contains(" ERROR "), "{log}");
    }
}

#[test]
fn certbot_http01_standalone() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let certbot = ca.certbot();
    certbot.register("ops@castellan.test");
    let names = ["www.castellan.test", "api.castellan.test"];
    let issued = certbot.certonly_standalone(&names, ca.http_port);
    issued.assert_names(&names);
    ca.assert_chains(&issued);
    assert_eq!(ca.status(&issued), "active");
    ca.assert_healthy();
}

#[test]
fn certbot_dns01_wildcard_and_base_then_renew() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let certbot = ca.certbot();
    let names = ["*.castellan.test", "castellan.test"];
    let issued = certbot.certonly_dns(&names, &dns);
    issued.assert_names(&names);
    ca.assert_chains(&issued);
    assert!(dns.txt("_acme-challenge.castellan.test").is_empty(), "the cleanup hook left records behind");
    let renewed = certbot.renew(&issued.name, Some(&dns));
    renewed.assert_names(&names);
    ca.assert_healthy();
}

#[test]
fn certbot_renew_revoke_by_account_and_by_key_and_unregister() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let certbot = ca.certbot();
    certbot.register("ops@castellan.test");

    let first = certbot.certonly_standalone(&["one.castellan.test"], ca.http_port);
    let serial = first.serial_hex();
    let renewed = certbot.renew(&first.name, None);
    renewed.assert_names(&["one.castellan.test"]);
    assert_ne!(renewed.serial_hex(), serial, "renewal must issue a new certificate");

    certbot.revoke(&renewed, "keycompromise", false);
    assert_eq!(ca.status(&renewed), "revoked");

    let second = certbot.certonly_standalone(&["two.castellan.test"], ca.http_port);
    certbot.revoke(&second, "superseded", true);
    assert_eq!(ca.status(&second), "revoked");

    certbot.unregister();
    ca.assert_healthy();
}

#[test]
fn lego_http01_with_several_sans() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let names = ["lego.castellan.test", "www.castellan.test", "mail.castellan.test"];
    let issued = ca.lego().run_http(&names, ca.http_port);
    issued.assert_names(&names);
    ca.assert_chains(&issued);
    ca.assert_healthy();
}

#[test]
fn lego_tls_alpn01() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let names = ["alpn.castellan.test", "castellan.test"];
    let issued = ca.lego().run_tls_alpn(&names, ca.tls_port);
    issued.assert_names(&names);
    ca.assert_chains(&issued);
    ca.assert_healthy();
}

#[test]
fn lego_dns01_wildcard_and_sans() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let names = ["*.castellan.test", "castellan.test", "a.castellan.test", "b.castellan.test"];
    let issued = ca.lego().run_dns(&names, &dns);
    issued.assert_names(&names);
    ca.assert_chains(&issued);
    for name in ["_acme-challenge.castellan.test", "_acme-challenge.a.castellan.test"] {
        assert!(dns.txt(name).is_empty(), "cleanup left records at {name}");
    }
    ca.assert_healthy();
}

#[test]
fn lego_renew_and_revoke() {
    let dns = TestDns::start();
    let ca = Castellan::start(&dns);
    let lego = ca.lego();
    let names = ["renew.castellan.test"];
    let first = lego.run_http(&names, ca.http_port).serial_hex();
    let renewed = lego.renew(&names, Challenge::Http(ca.http_port), false);
    renewed.assert_names(&names);
    assert_ne!(renewed.serial_hex(), first, "renewal must issue a new certificate");
    if Lego::supports_ari() {
        let again = lego.renew(&names, Challenge::Http(ca.http_port), true);
        again.assert_names(&names);
    }
    lego.revoke(&names, 1);
    assert_eq!(ca.status(&renewed), "revoked");
    ca.assert_healthy();
}
