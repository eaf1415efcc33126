//! Castellan's own token-key certificates: issued and remembered, reused across restarts, renewed at two thirds of
//! their life by the authority's clock (moved here, not waited for), adopted by a replica sharing the state file.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_authority::testkit::{self, TestAuthority};
use castellan_authority::token_identity::{IdentityKind, IdentitySpec, TokenIdentity, san_name};
use castellan_authority::{Actor, Clock};
use castellan_store::inventory::CertificateStatus;
use std::path::Path;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn spec(kind: IdentityKind, state: &Path) -> IdentitySpec {
    IdentitySpec {
        kind,
        label_prefix: "castellan-test-identity",
        lifetime: 30 * DAY,
        state_file: state.join("identity.json"),
        retire_after: Duration::ZERO,
        actor: Actor::castellan("test"),
        name: "the test certificate",
    }
}

async fn setup() -> (TestAuthority, tempfile::TempDir) {
    (testkit::authority(Clock::manual_now()).await, tempfile::tempdir().expect("tempdir"))
}

#[tokio::test(flavor = "multi_thread")]
async fn renewed_at_two_thirds_of_its_life_and_followed_by_a_replica() {
    let (test, dir) = setup().await;
    let authority = &test.authority;
    let identity = TokenIdentity::load_or_issue(authority.clone(), spec(IdentityKind::OcspResponder, dir.path()))
        .await
        .expect("issue");
    let first = identity.current();
    let renewals = identity.subscribe();
    assert!(!identity.step().await.expect("step"), "nothing to do before two thirds");
    // A replica sharing the state file starts on the same certificate.
    let replica = TokenIdentity::load_or_issue(authority.clone(), spec(IdentityKind::OcspResponder, dir.path()))
        .await
        .expect("load");
    assert_eq!(replica.current().key_label, first.key_label);

    authority.clock().advance(20 * DAY + Duration::from_secs(60));
    assert!(identity.step().await.expect("renew"), "renewed at two thirds");
    let second = identity.current();
    assert_ne!(second.key_label, first.key_label);
    assert!(second.not_after > first.not_after && authority.clock().now() < first.not_after, "before expiry");
    assert!(renewals.has_changed().expect("sender alive"), "subscribers hear of it");
    assert!(replica.step().await.expect("adopt"), "the replica moves to the new certificate");
    assert_eq!(replica.current().key_label, second.key_label);
    let issued = authority.store().audit_tail(20).await.expect("audit");
    assert_eq!(issued.iter().filter(|e| e.action == "certificate.issue").count(), 2, "both issuances audited");
    // The replaced key leaves the token (at once here: retire_after is zero).
    let hsm = authority.ca().hsm().clone();
    let label = first.key_label.clone();
    for _ in 0..100 {
        if !hsm.key_exists(&label).expect("look") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!hsm.key_exists(&label).expect("look"), "the retired key is removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_identity_is_reused_across_restarts_and_replaced_when_its_file_is_damaged() {
    let (test, dir) = setup().await;
    let authority = &test.authority;
    let kind = IdentityKind::TlsServer { names: vec![san_name("localhost"), san_name("127.0.0.1")] };
    let first = TokenIdentity::load_or_issue(authority.clone(), spec(kind.clone(), dir.path())).await.expect("issue");
    let leaf = first.current();
    assert_eq!(leaf.chain_der.len(), 2, "leaf and intermediate");
    let serial = hex::encode(leaf.certificate.tbs_certificate.serial_number.as_bytes());
    let row = authority.store().certificates_with_serial(&serial).await.expect("inventory");
    assert_eq!(row[0].profile.as_deref(), Some("tls-server"));
    assert_eq!(row[0].names, ["DNS:localhost", "IP:127.0.0.1"]);
    assert_eq!(row[0].status, CertificateStatus::Active);

    let again = TokenIdentity::load_or_issue(authority.clone(), spec(kind.clone(), dir.path())).await.expect("load");
    assert_eq!(again.current().key_label, leaf.key_label, "a restart reuses it");

    std::fs::write(dir.path().join("identity.json"), b"{ not json").expect("damage");
    let fresh = TokenIdentity::load_or_issue(authority.clone(), spec(kind, dir.path())).await.expect("reissue");
    assert_ne!(fresh.current().key_label, leaf.key_label, "a damaged file means a new certificate, not a failure");
}
