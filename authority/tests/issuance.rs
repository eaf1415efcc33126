//! The one issuance path against the SoftHSM2 test token and SQLite: what a certificate leaves in the inventory
//! and the audit log, the same for every kind, and what a refused signature leaves.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_authority::testkit;
use castellan_authority::{Actor, Clock, Requester};
use castellan_store::inventory::{CertificateSource, CertificateStatus};
use std::process::Command;
use std::time::Duration;

/// A P-256 CSR for `name`, made by openssl.
fn csr(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("openssl")
        .current_dir(dir.path())
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k"])
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}"), "-outform", "DER"])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issued_certificate_is_on_record_with_one_audit_entry() {
    let test = testkit::authority(Clock::manual_now()).await;
    let authority = &test.authority;
    let actor = Actor::cli("alice");
    let requester = Requester::castellan(actor.as_str());
    let issued = authority
        .issue_from_csr(csr("svc.corp.example"), "tls-server", Some(Duration::from_secs(86_400)), requester, &actor)
        .await
        .expect("issue");
    let row = authority.store().certificate(issued.certificate_id).await.expect("row");
    assert_eq!(row.status, CertificateStatus::Active);
    assert_eq!((row.source, row.profile.as_deref()), (CertificateSource::ManagedInternal, Some("tls-server")));
    assert_eq!(row.names, ["DNS:svc.corp.example"]);
    assert_eq!(row.serial, issued.serial_hex);
    // Dated by the authority's clock, backdated as every leaf is.
    assert_eq!(row.not_before, authority.clock().unix() - 300);
    let entries = authority.store().audit_tail(10).await.expect("audit");
    let issue: Vec<_> = entries.iter().filter(|e| e.action == "certificate.issue").collect();
    assert_eq!(issue.len(), 1);
    assert_eq!((issue[0].subject.as_str(), issue[0].actor.as_str()), (issued.serial_hex.as_str(), "cli:alice"));
    let details = &issue[0].details;
    assert_eq!(details["inventory_id"], issued.certificate_id.get());
    assert_eq!(details["profile"], "tls-server");
    assert_eq!(details["names"][0], "DNS:svc.corp.example");
    assert_eq!(details["sha256"].as_str().map(str::len), Some(64));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signature_the_token_refuses_leaves_a_failed_row_and_no_certificate() {
    let test = testkit::authority(Clock::manual_now()).await;
    let authority = &test.authority;
    // The issuing key goes from the token: the HSM refuses to sign, so nothing exists under the serial.
    let hsm = authority.ca().hsm().clone();
    hsm.destroy_key_pair(&test.intermediate_key).expect("remove the issuing key");
    let actor = Actor::cli("alice");
    let refused = authority
        .issue_from_csr(csr("gone.corp.example"), "tls-server", None, Requester::castellan(actor.as_str()), &actor)
        .await;
    assert!(refused.is_err());
    let failed = authority
        .store()
        .search_certificates(&castellan_store::inventory::CertificateQuery {
            status: Some(CertificateStatus::Failed),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(failed.items.len(), 1, "the serial stays spent, marked failed");
    let entries = authority.store().audit_tail(10).await.expect("audit");
    assert!(!entries.iter().any(|e| e.action == "certificate.issue"), "no issuance is audited");
}
