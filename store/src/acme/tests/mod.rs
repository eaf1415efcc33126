//! The ACME state on both backends (`testkit::all()`): transitions, their cascades, races between replicas, and
//! the audit entry each change leaves.

mod accounts;
mod challenges;
mod finalize;
mod orders;

use super::*;
use crate::Store;
use crate::ids::{AccountId, AuthorizationId, CertificateId};
use crate::inventory::{CertificateSource, NewCertificate};
use crate::testkit;
use serde_json::json;
use sha2::Digest;

const DAY: i64 = 86_400;
const ACTOR: &str = "acme-test";

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

fn new_account(thumbprint: &str) -> NewAccount {
    NewAccount {
        jwk_json: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{thumbprint}"}}"#),
        jwk_thumbprint: thumbprint.to_owned(),
        contacts: vec!["mailto:admin@example.com".to_owned()],
        terms_agreed: true,
        group_id: None,
        eab_key_id: None,
    }
}

async fn account(store: &Store) -> AccountRecord {
    match store.create_account(&new_account(&random_hex(16)), ACTOR).await.expect("create account") {
        AccountCreation::Created(a) => a,
        AccountCreation::Existing(a) => panic!("a fresh key found account {}", a.id),
    }
}

fn dns(value: &str) -> StoredIdentifier {
    StoredIdentifier::new("dns", value)
}

fn new_authz(store: &Store, value: &str) -> NewAuthorization {
    NewAuthorization {
        identifier: dns(value),
        wildcard: false,
        expires_at: store.now() + 7 * DAY,
        challenges: vec![
            NewChallenge { kind: ChallengeType::Http01, token: random_hex(16) },
            NewChallenge { kind: ChallengeType::Dns01, token: random_hex(16) },
        ],
    }
}

fn new_order(
    store: &Store,
    account_id: AccountId,
    values: &[&str],
    authorizations: Vec<AuthorizationPlan>,
) -> NewOrder {
    NewOrder {
        account_id,
        identifiers: values.iter().map(|v| dns(v)).collect(),
        profile: None,
        not_before: None,
        not_after: None,
        replaces: None,
        expires_at: store.now() + 7 * DAY,
        authorizations,
    }
}

/// An order with a new authorization for each name.
async fn order(store: &Store, account_id: AccountId, values: &[&str]) -> OrderRecord {
    let plans = values.iter().map(|v| AuthorizationPlan::Create(new_authz(store, v))).collect();
    store.create_order(&new_order(store, account_id, values, plans), ACTOR).await.expect("create order")
}

fn valid_outcome(store: &Store) -> ChallengeOutcome {
    ChallengeOutcome::Valid {
        validated_at: store.now(),
        authorization_expires_at: store.now() + 30 * DAY,
        record: json!({ "url": "http://www.example.com/.well-known/acme-challenge/x", "address": "192.0.2.1" }),
    }
}

fn invalid_outcome() -> ChallengeOutcome {
    ChallengeOutcome::Invalid {
        error: json!({ "type": "urn:ietf:params:acme:error:unauthorized", "detail": "wrong key authorization" }),
    }
}

/// Validates an authorization through its first challenge.
async fn validate(store: &Store, authorization_id: AuthorizationId) -> AuthorizationRecord {
    let authz = store.authorization(authorization_id).await.expect("authorization");
    let challenge = authz.challenges[0].id;
    assert!(store.start_challenge(challenge, store.now(), ACTOR).await.expect("start"));
    store.finish_challenge(challenge, &valid_outcome(store), ACTOR).await.expect("finish")
}

/// A ready order for one name.
async fn ready_order(store: &Store, account_id: AccountId) -> OrderRecord {
    let order = order(store, account_id, &["www.example.com"]).await;
    validate(store, order.authorization_ids[0]).await;
    let order = store.order(order.id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Ready);
    order
}

/// A pending inventory row, as finalization reserves it before signing.
async fn reserve(store: &Store, account_id: AccountId) -> CertificateId {
    let now = store.now();
    let cert = NewCertificate {
        issuer_id: None,
        issuer_key_id: vec![7; 20],
        issuer_dn: "CN=Test Intermediate".into(),
        serial: random_hex(16),
        source: CertificateSource::InternalAcme,
        profile: None,
        subject: String::new(),
        names: vec!["DNS:www.example.com".into()],
        tbs_sha256: rand::random::<[u8; 32]>().to_vec(),
        spki_sha256: rand::random::<[u8; 32]>().to_vec(),
        not_before: now,
        not_after: now + 90 * DAY,
        account_id: Some(account_id),
        owner: None,
        replaces_id: None,
    };
    store.reserve_certificate(&cert).await.expect("reserve certificate")
}

/// A certificate issued through an order, returning (order, certificate id).
async fn issued(store: &Store, account_id: AccountId) -> (OrderRecord, CertificateId) {
    let order = ready_order(store, account_id).await;
    let cert = reserve(store, account_id).await;
    assert!(store.begin_finalize(order.id, b"csr", cert, ACTOR).await.expect("finalize"));
    let der = format!("certificate {cert} {}", random_hex(8)).into_bytes();
    let sha = sha2::Sha256::digest(&der).to_vec();
    let event = issue_event(store, &order, cert, &sha, None).await;
    let order = store.complete_order(order.id, &der, &sha, None, &event).await.expect("complete");
    (order, cert)
}

/// The `certificate.issue` event the caller of `complete_order` words for the order's reserved certificate.
async fn issue_event(
    store: &Store,
    order: &OrderRecord,
    cert: CertificateId,
    sha256: &[u8],
    replaces: Option<CertificateId>,
) -> AuditEvent {
    let reserved = store.certificate(cert).await.expect("reserved certificate");
    AuditEvent::new(ACTOR, "certificate.issue", reserved.serial.clone()).with_details(json!({
        "inventory_id": cert,
        "serial": reserved.serial,
        "names": reserved.names,
        "order_id": order.id,
        "account_id": order.account_id,
        "sha256": hex::encode(sha256),
        "replaces_certificate_id": replaces,
    }))
}

async fn audit_count(store: &Store, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(store.raw_pool_for_tests())
        .await
        .expect("count audit entries")
}

async fn audit_subjects(store: &Store, action: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT subject FROM audit_log WHERE action = $1 ORDER BY seq")
        .bind(action)
        .fetch_all(store.raw_pool_for_tests())
        .await
        .expect("audit subjects")
}

async fn audit_total(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(store.raw_pool_for_tests()).await.expect("count")
}

async fn assert_audit_intact(store: &Store) {
    let verification = store.audit_verify().await.expect("verify");
    assert!(verification.is_intact(), "{:?}: {:?}", store.backend(), verification.first_broken);
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.raw_pool_for_tests()).await.expect(sql)
}
