//! `castellan ca …` end to end: the ceremony, its refusal to overwrite, issuing from CSRs, and the enterprise
//! path where an external root (made here with openssl) signs our intermediate.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{castellan, ok, openssl_p256_csr, run, split_leaf, text, write};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("openssl").current_dir(dir).args(args))
}

#[test]
fn init_prints_fingerprints_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    let out = ok(castellan()
        .args(["ca", "init", "--root-subject", "CN=Test Root,O=Example", "--root-key", "ec-p256"])
        .args(["--permit-dns", "corp.example", "--permit-ip", "10.0.0.0/8"])
        .arg("--data-dir")
        .arg(&data));
    assert!(out.contains("root:") && out.contains("CN=Test Root,O=Example"), "{out}");
    assert!(out.contains("intermediate:"), "{out}");
    assert_eq!(out.matches("SHA256 ").count(), 2, "{out}");

    // The printed fingerprint is the root file's.
    let root = data.join("ca/root.pem");
    let fp = openssl(dir.path(), &["x509", "-in", root.to_str().expect("path"), "-noout", "-fingerprint", "-sha256"]);
    let fp = fp.trim().split('=').nth(1).expect("fingerprint").to_owned();
    assert!(out.contains(&fp), "{out} should contain {fp}");
    let text_out =
        openssl(dir.path(), &["x509", "-in", data.join("ca/intermediate.pem").to_str().expect("p"), "-noout", "-text"]);
    assert!(text_out.contains("pathlen:0"), "{text_out}");
    assert!(text_out.contains("DNS:corp.example"), "{text_out}");

    let again = run(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("refusing to overwrite"), "{}", text(&again.stderr));
}

#[test]
fn issue_from_openssl_csrs_and_refuse_bad_ones_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    ok(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    openssl_p256_csr(
        dir.path(),
        "leaf",
        "/CN=www.corp.example",
        &["-addext", "subjectAltName=DNS:www.corp.example,IP:10.1.2.3"],
    );
    let chain = ok(castellan()
        .args(["certificate", "issue", "--csr"])
        .arg(dir.path().join("leaf.csr"))
        .args(["--profile", "tls-server", "--lifetime-secs", "86400"])
        .arg("--data-dir")
        .arg(&data));
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf and intermediate");
    write(dir.path(), "chain.pem", &chain);
    let (leaf, rest) = split_leaf(&chain);
    write(dir.path(), "leaf.pem", leaf);
    write(dir.path(), "untrusted.pem", rest);
    let root = data.join("ca/root.pem");
    let verified = openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            root.to_str().expect("p"),
            "-untrusted",
            "untrusted.pem",
            "-purpose",
            "sslserver",
            "leaf.pem",
        ],
    );
    assert!(verified.contains("leaf.pem: OK"), "{verified}");

    // Garbage, an unknown profile and a too-long lifetime: exit code 1, a sentence, no panic.
    let garbage = write(dir.path(), "garbage.csr", b"not a csr at all");
    for (args, expected) in [
        (vec!["--csr", garbage.to_str().expect("p")], "malformed CSR"),
        (vec!["--csr", dir.path().join("leaf.csr").to_str().expect("p"), "--profile", "nope"], "unknown profile"),
        (vec!["--csr", dir.path().join("leaf.csr").to_str().expect("p"), "--lifetime-secs", "999999999"], "exceeds"),
    ] {
        let out = run(castellan().args(["certificate", "issue"]).args(&args).arg("--data-dir").arg(&data));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn an_external_root_signs_our_intermediate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    let csr = dir.path().join("intermediate.csr");
    let out = ok(castellan()
        .args(["ca", "init", "--intermediate-subject", "CN=Corp Issuing CA"])
        .arg("--intermediate-csr")
        .arg(&csr)
        .arg("--data-dir")
        .arg(&data));
    assert!(out.contains("castellan ca import"), "{out}");
    openssl(dir.path(), &["req", "-verify", "-in", "intermediate.csr", "-noout"]);

    // The enterprise root, entirely outside Castellan.
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "ext-root.key",
            "-subj",
            "/CN=Enterprise Root",
            "-days",
            "30",
            "-out",
            "ext-root.pem",
        ],
    );
    write(
        dir.path(),
        "ext.cnf",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    );
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "intermediate.csr",
            "-CA",
            "ext-root.pem",
            "-CAkey",
            "ext-root.key",
            "-CAcreateserial",
            "-days",
            "20",
            "-extfile",
            "ext.cnf",
            "-out",
            "intermediate.pem",
        ],
    );
    // Serving before the import is refused with a sentence saying what to do.
    let early = run(castellan().args(["ca", "show"]).arg("--data-dir").arg(&data));
    assert!(!early.status.success());
    assert!(text(&early.stderr).contains("castellan ca import"), "{}", text(&early.stderr));

    // A certificate for some other key is refused.
    openssl_p256_csr(dir.path(), "other", "/CN=Other", &[]);
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "other.csr",
            "-CA",
            "ext-root.pem",
            "-CAkey",
            "ext-root.key",
            "-CAcreateserial",
            "-days",
            "20",
            "-extfile",
            "ext.cnf",
            "-out",
            "other.pem",
        ],
    );
    let wrong = run(castellan()
        .args(["ca", "import", "--cert"])
        .arg(dir.path().join("other.pem"))
        .arg("--root")
        .arg(dir.path().join("ext-root.pem"))
        .arg("--data-dir")
        .arg(&data));
    assert!(!wrong.status.success());
    assert!(text(&wrong.stderr).contains("different key"), "{}", text(&wrong.stderr));

    let imported = ok(castellan()
        .args(["ca", "import", "--cert"])
        .arg(dir.path().join("intermediate.pem"))
        .arg("--root")
        .arg(dir.path().join("ext-root.pem"))
        .arg("--data-dir")
        .arg(&data));
    assert!(imported.contains("CN=Corp Issuing CA"), "{imported}");

    // Leaves now chain to the enterprise root.
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-subj",
            "/CN=alice.corp.example",
            "-out",
            "client.csr",
        ],
    );
    let chain = ok(castellan()
        .args(["certificate", "issue", "--profile", "tls-client", "--csr"])
        .arg(dir.path().join("client.csr"))
        .arg("--data-dir")
        .arg(&data));
    write(dir.path(), "client.pem", split_leaf(&chain).0);
    let verified = openssl(
        dir.path(),
        &["verify", "-CAfile", "ext-root.pem", "-untrusted", "intermediate.pem", "-purpose", "sslclient", "client.pem"],
    );
    assert!(verified.contains("client.pem: OK"), "{verified}");
}

/// The production path: a token made by someone else (here softhsm2-util), named in castellan.toml, with the PIN
/// in an environment variable; Castellan creates nothing in the data directory but its CA files.
#[test]
fn a_configured_token_with_the_pin_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("mkdir");
    let conf = write(dir.path(), "softhsm2.conf", format!("directories.tokendir = {}\n", tokens.display()));
    ok(Command::new("softhsm2-util").env("SOFTHSM2_CONF", &conf).args([
        "--init-token",
        "--free",
        "--label",
        "ops-token",
        "--pin",
        "987654",
        "--so-pin",
        "12345678",
    ]));
    let config = write(
        dir.path(),
        "castellan.toml",
        format!(
            "data_dir = \"{}\"\n\n[hsm]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken = {{ label = \"ops-token\" }}\n\
             pin = {{ env = \"OPS_HSM_PIN\" }}\n\n[ca]\nroot_subject = \"CN=Ops Root\"\nroot_key = \"rsa-3072\"\n",
            dir.path().join("var").display()
        ),
    );
    let init = |pin: Option<&str>| {
        let mut cmd = castellan();
        cmd.env("SOFTHSM2_CONF", &conf).args(["ca", "init", "--config"]).arg(&config);
        match pin {
            Some(pin) => cmd.env("OPS_HSM_PIN", pin),
            None => cmd.env_remove("OPS_HSM_PIN"),
        };
        run(&mut cmd)
    };
    let no_pin = init(None);
    assert!(!no_pin.status.success());
    assert!(text(&no_pin.stderr).contains("OPS_HSM_PIN is not set"), "{}", text(&no_pin.stderr));
    let wrong = init(Some("000000"));
    assert!(!wrong.status.success());
    assert!(text(&wrong.stderr).contains("rejected the PIN"), "{}", text(&wrong.stderr));

    let out = init(Some("987654"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("CN=Ops Root"), "{}", text(&out.stdout));
    assert!(!dir.path().join("var/hsm").exists(), "no dev token when a token is configured");
    let root_text = openssl(dir.path(), &["x509", "-in", "var/ca/root.pem", "-noout", "-text"]);
    assert!(root_text.contains("Public-Key: (3072 bit)"), "{root_text}");
    assert!(root_text.contains("sha256WithRSAEncryption"), "{root_text}");
}

/// A leaf always says where its revocation status is published, even issued by the CLI before any server ran:
/// the configured HTTP listener's address, the one `castellan serve` will publish at.
#[test]
fn leaves_from_the_cli_carry_crl_and_ocsp_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    ok(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    let csr = openssl_p256_csr(dir.path(), "leaf", "/CN=svc.corp.example", &[]);
    let chain = ok(castellan().args(["certificate", "issue", "--csr"]).arg(&csr).arg("--data-dir").arg(&data));
    write(dir.path(), "leaf.pem", split_leaf(&chain).0);
    let text_out = openssl(dir.path(), &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(text_out.contains("URI:http://127.0.0.1:8080/crl/"), "{text_out}");
    assert!(text_out.contains("OCSP - URI:http://127.0.0.1:8080/ocsp"), "{text_out}");
}
