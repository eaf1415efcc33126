//! `castellan serve` end to end: first start on an empty data directory, HTTPS with a certificate from its own
//! HSM-backed CA, restart reusing everything, and renewal of the server certificate while it runs.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, curl, ok, served_serial, text, write};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn first_start_creates_token_and_ca_and_serves_https_chained_to_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");

    let server = Server::start(&data, None);
    // The root can be fetched without trusting anything yet...
    let roots = curl(&server.url("/ca/roots.pem"), None);
    let roots_text = text(&roots.stdout);
    assert!(roots_text.contains("application/pem-certificate-chain"), "{roots_text}");
    let pem_start = roots_text.find("-----BEGIN CERTIFICATE-----").expect("a PEM certificate");
    let root = write(dir.path(), "root.pem", &roots_text[pem_start..]);

    // ...and then every request verifies: the server's certificate chains to that root for 127.0.0.1.
    let health = curl(&server.url("/health"), Some(&root));
    assert!(health.status.success(), "curl with --cacert root.pem failed: {}", text(&health.stderr));
    let health = text(&health.stdout);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(health.contains("castellan-dev"), "{health}");

    let chain = text(&curl(&server.url("/ca/chain.pem"), Some(&root)).stdout);
    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 2, "intermediate and root: {chain}");
    let chain_start = chain.find("-----BEGIN CERTIFICATE-----").expect("PEM");
    let chain_file = write(dir.path(), "chain.pem", &chain[chain_start..]);
    ok(Command::new("openssl").arg("verify").arg("-CAfile").arg(&root).arg(&chain_file));

    let first_log = server.stop();
    assert!(first_log.contains("initialised the SoftHSM2 dev token (first start)"), "{first_log}");
    assert!(first_log.contains("running the key ceremony"), "{first_log}");
    assert!(
        !std::fs::read_dir(data.join("ca"))
            .expect("ca dir")
            .any(|e| e.map(|e| e.file_name().to_string_lossy().contains("key")).unwrap_or(false))
    );

    // Restart: same token, same CA, same server certificate.
    let again = Server::start(&data, None);
    let roots_again = text(&curl(&again.url("/ca/roots.pem"), Some(&root)).stdout);
    assert!(roots_again.contains(&roots_text[pem_start..]), "the root must not change across restarts");
    let second_log = again.stop();
    assert!(!second_log.contains("key ceremony"), "{second_log}");
    assert!(!second_log.contains("initialised"), "{second_log}");
    assert!(second_log.contains("reusing the server's TLS certificate"), "{second_log}");
}

#[test]
fn the_server_certificate_is_renewed_before_it_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "castellan.toml", "[serve]\ntls_lifetime_secs = 86400\n");
    let clock = write(dir.path(), "clock", "0");
    let server = Server::start_with(&dir.path().join("var"), Some(&config), Some(&clock));
    let first = served_serial(&server.address);
    assert!(first.starts_with("serial="), "{first}");
    // Not due yet: two thirds of a day have not passed.
    write(dir.path(), "clock", "3600");
    assert_eq!(served_serial(&server.address), first);
    // Moved past two thirds of the day: the server renews without a restart. (The wait is for the server to act
    // on the moved clock, not for time to pass.)
    write(dir.path(), "clock", "60000");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut renewed = None;
    while Instant::now() < deadline {
        let now = served_serial(&server.address);
        if now.starts_with("serial=") && now != first {
            renewed = Some(now);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.stop();
    assert!(renewed.is_some(), "the served certificate never changed:\n{log}");
    assert!(log.contains("renewed the server's TLS certificate"), "{log}");
}

/// What can fail cheaply fails first: an address in use stops `serve` before it makes a token or a CA.
#[test]
fn an_address_in_use_stops_serve_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    for (https, http) in [(address.as_str(), "127.0.0.1:0"), ("127.0.0.1:0", address.as_str())] {
        let flag = if https == address { "--listen" } else { "--http-listen" };
        let mut cmd = common::castellan();
        cmd.args(["serve", "--data-dir"]).arg(&data).args(["--listen", https, "--http-listen", http]);
        let out = common::run(&mut cmd);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{flag}: {stderr}");
        assert!(stderr.contains(&address) && stderr.contains("in use"), "{flag}: {stderr}");
        assert!(!data.join("hsm").exists() && !data.join("ca").exists(), "{flag}: nothing is created");
    }
}

/// Logs written to a pipe (or a file) are plain text: colour only on a terminal.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("var"), None);
    let log = server.stop();
    assert!(log.contains("castellan is serving"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escape codes in a piped log:\n{log}");
}
