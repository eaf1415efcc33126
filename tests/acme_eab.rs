//! External account binding with real clients: an admin creates a group and a credential for it; certbot
//! (--eab-kid/--eab-hmac-key) and lego (--eab) register with it and get certificates the group's policy allows;
//! without a binding, or with one already used, registration is refused.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::dns::TestDns;
use common::peers::{Certbot, Challenge, Lego, free_port};
use common::{Server, castellan, ok, write};
use std::path::{Path, PathBuf};

struct Ca {
    dir: tempfile::TempDir,
    server: Server,
    directory: String,
    root: PathBuf,
    http_port: u16,
}

impl Ca {
    fn start(dns: &TestDns) -> Ca {
        let dir = tempfile::tempdir().expect("tempdir");
        let http_port = free_port();
        // EAB required; the default group (accounts without a binding) may have nothing.
        let config = write(
            dir.path(),
            "castellan.toml",
            format!(
                "[acme]\nexternal_account_required = true\n[acme.default_policy]\n\
                 [acme.validation]\nhttp01_port = {http_port}\ndns_resolver = \"{}\"\ndenied_networks = []\n",
                dns.addr()
            ),
        );
        let server = Server::start(&dir.path().join("var"), Some(&config));
        let directory = server.url("/acme/directory");
        let root = dir.path().join("var/ca/root.pem");
        Ca { dir, server, directory, root, http_port }
    }

    fn cli(&self) -> std::process::Command {
        let mut cmd = castellan();
        cmd.arg("--data-dir").arg(self.dir.path().join("var"));
        cmd
    }

    /// A credential for `group`: (key id, HMAC key).
    fn eab(&self, group: &str) -> (String, String) {
        let out = ok(self.cli().args(["eab", "create", "--group", group, "--json"]));
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        (json["key_id"].as_str().expect("key_id").to_owned(), json["hmac_key"].as_str().expect("hmac").to_owned())
    }
}

fn policy_file(dir: &Path, json: &str) -> PathBuf {
    write(dir, "policy.json", json)
}

#[test]
fn certbot_and_lego_register_with_eab_and_get_what_their_group_allows() {
    let dns = TestDns::start();
    let ca = Ca::start(&dns);
    let policy = policy_file(ca.dir.path(), r#"{"dns": {"allow": [".apps.castellan.test"]}}"#);
    ok(ca.cli().args(["group", "create", "apps", "--policy"]).arg(&policy));

    // The directory says a binding is required, and registering without one is refused.
    let certbot = Certbot::new(&ca.directory, &ca.root);
    let refused =
        certbot.attempt(certbot.command("register").args(["--agree-tos", "--no-eff-email", "-m", "a@castellan.test"]));
    assert!(!refused.success(), "registration without EAB must fail");
    assert!(
        format!("{}{}", refused.stdout, refused.stderr).contains("externalAccountRequired")
            || certbot.diagnostics().contains("externalAccountRequired"),
        "{}",
        refused.describe(20)
    );

    // certbot with a credential: the account joins "apps", and gets a name the group allows.
    let (kid, hmac) = ca.eab("apps");
    certbot.ok(certbot.command("register").args(["--agree-tos", "--no-eff-email", "-m", "a@castellan.test"]).args([
        "--eab-kid",
        &kid,
        "--eab-hmac-key",
        &hmac,
    ]));
    let issued = certbot.certonly_standalone(&["web.apps.castellan.test"], ca.http_port);
    issued.assert_names(&["web.apps.castellan.test"]);

    // A name outside the group's policy is refused, naming the rule.
    let outside = certbot.attempt(
        certbot
            .command("certonly")
            .args(["--standalone", "--preferred-challenges", "http-01", "--http-01-address", "127.0.0.1"])
            .arg("--http-01-port")
            .arg(ca.http_port.to_string())
            .args(["-d", "web.other.castellan.test", "--cert-name", "outside"]),
    );
    assert!(!outside.success());
    assert!(certbot.diagnostics().contains("no dns.allow pattern of group"), "{}", certbot.diagnostics());

    // The same credential cannot make a second account.
    let again = Certbot::new(&ca.directory, &ca.root);
    let reused = again.attempt(
        again.command("register").args(["--agree-tos", "--no-eff-email", "-m", "b@castellan.test"]).args([
            "--eab-kid",
            &kid,
            "--eab-hmac-key",
            &hmac,
        ]),
    );
    assert!(!reused.success(), "a used credential must be refused");

    // lego with its own credential.
    let (kid, hmac) = ca.eab("apps");
    let lego = Lego::new(&ca.directory, &ca.root);
    let names = ["lego.apps.castellan.test"];
    lego.ok(lego
        .command(&names, Some(Challenge::Http(ca.http_port)))
        .args(["--eab", "--kid", &kid, "--hmac", &hmac])
        .arg("run"));
    lego.issued(&names).assert_names(&names);

    // The audit log names each credential's creation and use; the chain is intact.
    let audit = ok(ca.cli().args(["audit", "tail", "-n", "200", "--json"]));
    assert!(audit.contains("eab.create") && audit.contains("group.create"), "{audit}");
    ok(ca.cli().args(["audit", "verify"]));
    let log = ca.server.log();
    assert!(!log.contains("panicked"), "{log}");
}
