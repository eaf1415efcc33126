//! The inventory and the audit log seen from the command line: issuance is recorded, the chain verifies, a
//! tampered log is caught, a newer schema is refused, and the same binary runs on PostgreSQL.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, castellan, curl, ok, openssl_p256_csr, run, split_leaf, text, write};
use std::path::Path;
use std::process::Command;

fn issue_one(dir: &Path, data: &Path, name: &str) -> String {
    let csr = openssl_p256_csr(dir, "r", &format!("/CN={name}"), &[]);
    let chain = ok(castellan().args(["certificate", "issue", "--csr"]).arg(&csr).arg("--data-dir").arg(data));
    write(dir, "leaf.pem", split_leaf(&chain).0);
    let serial = ok(Command::new("openssl").current_dir(dir).args(["x509", "-in", "leaf.pem", "-noout", "-serial"]));
    serial.trim().trim_start_matches("serial=").to_ascii_lowercase()
}

#[test]
fn issuance_and_the_ceremony_are_audited_and_a_tampered_log_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    ok(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    let serial = issue_one(dir.path(), &data, "svc.corp.example");

    let tail = ok(castellan().args(["audit", "tail", "--json"]).arg("--data-dir").arg(&data));
    let page: serde_json::Value = serde_json::from_str(&tail).unwrap_or_else(|e| panic!("{e}: {tail}"));
    let entries = page["entries"].as_array().expect("entries");
    assert!(entries.len() >= 2, "{tail}");
    assert_eq!(
        (entries[0]["action"].as_str(), entries[0]["subject"].as_str()),
        (Some("certificate.issue"), Some(&*serial))
    );
    assert!(entries.iter().any(|e| e["action"] == "ca.init"), "{tail}");
    assert!(entries[0]["details"]["names"].to_string().contains("svc.corp.example"), "{tail}");

    let verify = ok(castellan().args(["audit", "verify"]).arg("--data-dir").arg(&data));
    assert!(verify.contains("intact"), "{verify}");

    // Behind the store's back: drop the guard trigger and rewrite history.
    ok(Command::new("sqlite3")
        .arg(data.join("castellan.db"))
        .arg("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET details_json = '{}' WHERE seq = 1;"));
    let broken = run(castellan().args(["audit", "verify"]).arg("--data-dir").arg(&data));
    assert_eq!(broken.status.code(), Some(1));
    assert!(text(&broken.stdout).contains("BROKEN at entry 1"), "{}", text(&broken.stdout));
}

#[test]
fn the_inventory_holds_every_issued_certificate_with_its_tbs_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    ok(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    let serial = issue_one(dir.path(), &data, "inv.corp.example");
    let db = data.join("castellan.db");
    let row = ok(Command::new("sqlite3").arg(&db).arg(format!(
        "SELECT status, source, profile, hex(tbs_sha256) <> '', length(certificate_der) > 0 FROM certificates \
         WHERE serial = '{serial}';"
    )));
    assert_eq!(row.trim(), "active|managed_internal|tls-server|1|1", "{row}");
    let names = ok(Command::new("sqlite3").arg(&db).arg("SELECT name FROM certificate_names ORDER BY name;"));
    assert!(names.contains("inv.corp.example"), "{names}");
    // The serial is unique per issuer in the database itself.
    let dup = run(Command::new("sqlite3").arg(&db).arg(
        "INSERT INTO certificates (issuer_id, issuer_key_id, issuer_dn, serial, status, source, subject, sans_json, \
         tbs_sha256, spki_sha256, not_before, not_after, created_at, updated_at) SELECT issuer_id, issuer_key_id, \
         issuer_dn, serial, 'pending', source, subject, sans_json, tbs_sha256, spki_sha256, not_before, not_after, 0, 0 \
         FROM certificates LIMIT 1;",
    ));
    assert!(!dup.status.success());
    assert!(text(&dup.stderr).contains("UNIQUE"), "{}", text(&dup.stderr));
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    ok(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    ok(Command::new("sqlite3").arg(data.join("castellan.db")).arg(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'future', 1, x'00', 0);",
    ));
    let out = run(castellan().args(["certificate", "search"]).arg("--data-dir").arg(&data));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("newer than this castellan knows"), "{}", text(&out.stderr));
}

/// The same binary on PostgreSQL: serve with --database-url, issue its own certificate into the shared inventory.
#[tokio::test]
async fn serve_runs_on_postgresql() {
    let Some(pg) = castellan_store::testkit::postgres().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "castellan.toml", format!("database_url = \"{}\"\n", pg.url));
    let server = Server::start(&dir.path().join("var"), Some(&config));
    let health = curl(&server.url("/health"), None);
    assert!(text(&health.stdout).contains("\"status\":\"ok\""), "{}", text(&health.stdout));
    let log = server.stop();
    assert!(!dir.path().join("var/castellan.db").exists(), "no SQLite file when PostgreSQL is configured");
    let profiles: Vec<String> =
        sqlx::query_scalar("SELECT profile FROM certificates WHERE status = 'active' ORDER BY profile")
            .fetch_all(pg.store.raw_pool_for_tests())
            .await
            .expect("profiles");
    assert_eq!(
        profiles,
        ["ocsp-responder", "tls-server"],
        "the server's own TLS and OCSP signing certificates are in the inventory:\n{log}"
    );
    let report = pg.store.audit_verify().await.expect("verify");
    assert!(report.first_broken.is_none() && report.entries >= 2, "{report:?}");
}

#[test]
fn the_inventory_is_searchable_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    ok(castellan().args(["ca", "init"]).arg("--data-dir").arg(&data));
    let a = issue_one(dir.path(), &data, "a.corp.example");
    let b = issue_one(dir.path(), &data, "b.corp.example");
    issue_one(dir.path(), &data, "other.example");

    let by_suffix =
        ok(castellan().args(["certificate", "search", "--suffix", "corp.example"]).arg("--data-dir").arg(&data));
    assert!(by_suffix.contains(&a) && by_suffix.contains(&b) && !by_suffix.contains("other.example"), "{by_suffix}");
    let exact = ok(castellan()
        .args(["certificate", "search", "--name", "a.corp.example", "--json"])
        .arg("--data-dir")
        .arg(&data));
    assert!(exact.contains(&a) && !exact.contains(&b), "{exact}");
    let expiring =
        ok(castellan().args(["certificate", "search", "--expiring-days", "400"]).arg("--data-dir").arg(&data));
    assert_eq!(expiring.lines().filter(|l| l.contains("active")).count(), 3, "{expiring}");

    // Pages of one, walked by cursor, see each certificate once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut cmd = castellan();
        cmd.args(["certificate", "search", "--suffix", "example", "--limit", "1"]).arg("--data-dir").arg(&data);
        if let Some(c) = &cursor {
            cmd.args(["--cursor", c]);
        }
        let page = ok(&mut cmd);
        seen.extend(page.lines().filter(|l| l.contains("active")).map(str::to_owned));
        match page.lines().find_map(|l| l.strip_prefix("more: --cursor ")) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    let bad = run(castellan().args(["certificate", "search", "--cursor", "garbage!"]).arg("--data-dir").arg(&data));
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("cursor"), "{}", text(&bad.stderr));
}
