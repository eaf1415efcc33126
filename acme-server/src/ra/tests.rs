//! The RA's state machine on its own: an authority over SQLite in memory and the SoftHSM2 test token, a manual
//! clock the tests move instead of sleeping, and the VA validating http-01 against a responder on loopback. No
//! HTTP in front: what the WFE would have verified is handed to the RA directly.

use super::revocation::Revoker;
use super::*;
use crate::validation::ValidationConfig;
use crate::validation::testutil::TestHttp;
use castellan_acme_proto::types::{Identifier, NewAccount, NewOrder, Revocation};
use castellan_acme_proto::{Jwk, VerifiedKeyChange};
use castellan_authority::Clock;
use castellan_authority::testkit::{self, TestAuthority};
use castellan_store::acme::{AccountRecord, AuthorizationStatus, ChallengeStatus, ChallengeType, OrderStatus};
use castellan_store::inventory::CertificateStatus;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const DAY: u64 = 86_400;

/// An RA over a fresh authority, and the http-01 responder its VA validates against.
struct Harness {
    ra: Ra,
    test: TestAuthority,
    /// token → key authorization, as an ACME client would provision them.
    answers: Arc<Mutex<HashMap<String, String>>>,
    _responder: TestHttp,
}

impl Harness {
    async fn new() -> Harness {
        let answers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = Arc::clone(&answers);
        let router = axum::Router::new().route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(move |axum::extract::Path(token): axum::extract::Path<String>| {
                let answer = served.lock().unwrap_or_else(|p| p.into_inner()).get(&token).cloned();
                async move { answer.ok_or(axum::http::StatusCode::NOT_FOUND) }
            }),
        );
        let responder = TestHttp::start(router).await;
        let validation = ValidationConfig {
            http01_port: responder.port,
            denied_networks: Vec::new(),
            timeout: Duration::from_secs(5),
            ..ValidationConfig::default()
        };
        let test = testkit::authority_on(castellan_store::testkit::memory().await, Clock::manual_now()).await;
        let config = AcmeConfig {
            default_policy: Some(serde_json::json!({"ip": {"allow": ["127.0.0.0/8"]}, "dns": {"allow": ["."]}})),
            wait_for_outcome_ms: 5_000,
            ..AcmeConfig::default()
        };
        let ra = Ra::new(test.authority.clone(), Validator::new(validation).expect("validator"), Arc::new(config));
        Harness { ra, test, answers, _responder: responder }
    }

    fn clock(&self) -> &Clock {
        self.test.authority.clock()
    }

    async fn account(&self, key: &SigningKey) -> AccountRecord {
        let request = NewAccount { terms_of_service_agreed: Some(true), ..NewAccount::default() };
        match self.ra.new_account(&jwk(key), &request, "https://ca.test/acme/new-account", None).await {
            Ok(NewAccountOutcome::Created(account)) => account,
            Ok(NewAccountOutcome::Existing(_)) => panic!("a new key has no account yet"),
            Err(e) => panic!("newAccount: {e:?}"),
        }
    }

    async fn order(&self, account: &AccountRecord) -> castellan_store::acme::OrderRecord {
        let request = NewOrder {
            identifiers: vec![Identifier::ip("127.0.0.1")],
            not_before: None,
            not_after: None,
            profile: None,
            replaces: None,
        };
        self.ra.new_order(account, &request).await.unwrap_or_else(|e| panic!("newOrder: {e:?}"))
    }

    /// Answers the http-01 challenge of each pending authorization of the order, as a client would.
    async fn validate(&self, account: &AccountRecord, key: &SigningKey, order: &castellan_store::acme::OrderRecord) {
        for authz_id in &order.authorization_ids {
            let authz = self.ra.authorization(account, *authz_id).await.expect("authorization");
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let challenge = authz.challenges.iter().find(|c| c.kind == ChallengeType::Http01).expect("http-01");
            let key_authorization =
                castellan_acme_proto::key_authorization::key_authorization(&challenge.token, &jwk(key));
            self.answers.lock().unwrap_or_else(|p| p.into_inner()).insert(challenge.token.clone(), key_authorization);
            let (answered, _) = self.ra.respond_to_challenge(account, challenge.id).await.expect("respond");
            assert_eq!(answered.status, ChallengeStatus::Valid, "{:?}", answered.error);
        }
    }

    /// A ready order for 127.0.0.1.
    async fn ready_order(&self, account: &AccountRecord, key: &SigningKey) -> castellan_store::acme::OrderRecord {
        let order = self.order(account).await;
        self.validate(account, key, &order).await;
        let order = self.ra.order(account, order.id).await.expect("order");
        assert_eq!(order.status, OrderStatus::Ready);
        order
    }
}

fn new_key() -> SigningKey {
    SigningKey::random(&mut rand::rngs::OsRng)
}

fn jwk(key: &SigningKey) -> Jwk {
    let spki = key.verifying_key().to_public_key_der().expect("spki");
    Jwk::from_spki_der(spki.as_bytes()).expect("jwk")
}

/// A CSR (base64url DER, as finalize carries it) for these IP addresses, signed by `key`.
fn csr(key: &SigningKey, ips: &[&str]) -> String {
    use x509_cert::builder::{Builder, RequestBuilder};
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let names = ips
        .iter()
        .map(|ip| {
            let std::net::IpAddr::V4(v4) = ip.parse().expect("ip") else { panic!("IPv4 only here") };
            GeneralName::IpAddress(der::asn1::OctetString::new(v4.octets()).expect("octets"))
        })
        .collect();
    let mut builder = RequestBuilder::new(x509_cert::name::Name::default(), key).expect("builder");
    builder.add_extension(&SubjectAltName(names)).expect("san");
    let request = builder.build::<p256::ecdsa::DerSignature>().expect("csr");
    castellan_acme_proto::b64::encode(der::Encode::to_der(&request).expect("der"))
}

fn problem(e: &crate::problem::AcmeError) -> &str {
    e.kind_suffix()
}

#[tokio::test(flavor = "multi_thread")]
async fn finalize_signs_once_and_refuses_what_the_order_does_not_cover() {
    let h = Harness::new().await;
    let key = new_key();
    let account = h.account(&key).await;
    let order = h.ready_order(&account, &key).await;

    // A CSR for more than the order names, or carrying the account key, leaves the order ready.
    let wider = h.ra.finalize(&account, order.id, &csr(&new_key(), &["127.0.0.1", "127.0.0.2"])).await;
    assert_eq!(problem(&wider.expect_err("wider CSR")), "badCSR");
    let own_key = h.ra.finalize(&account, order.id, &csr(&key, &["127.0.0.1"])).await;
    assert_eq!(problem(&own_key.expect_err("account key")), "badCSR");
    assert_eq!(h.ra.order(&account, order.id).await.expect("order").status, OrderStatus::Ready);

    let finalized = h.ra.finalize(&account, order.id, &csr(&new_key(), &["127.0.0.1"])).await.expect("finalize");
    assert_eq!(finalized.status, OrderStatus::Valid);
    let certificate_id = finalized.certificate_id.expect("certificate");
    let chain = h.ra.certificate_chain(&account, certificate_id).await.expect("chain");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf and intermediate");
    let row = h.test.authority.store().certificate(certificate_id).await.expect("inventory");
    assert_eq!((row.status, row.account_id), (CertificateStatus::Active, Some(account.id)));
    assert_eq!(row.names, ["IP:127.0.0.1"]);

    // Exactly once: a second finalize of the same order is refused, and nothing more is reserved.
    let again = h.ra.finalize(&account, order.id, &csr(&new_key(), &["127.0.0.1"])).await;
    assert_eq!(problem(&again.expect_err("second finalize")), "orderNotReady");
    let issued = h.test.authority.store().audit_tail(50).await.expect("audit");
    assert_eq!(issued.iter().filter(|e| e.action == "certificate.issue").count(), 1);
    // Another account sees neither the order nor the certificate.
    let other = h.account(&new_key()).await;
    assert_eq!(problem(&h.ra.order(&other, order.id).await.expect_err("foreign order")), "unauthorized");
    assert!(h.ra.certificate_chain(&other, certificate_id).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_expire_when_the_clock_passes_them() {
    let h = Harness::new().await;
    let key = new_key();
    let account = h.account(&key).await;
    let order = h.ready_order(&account, &key).await;
    h.clock().advance(Duration::from_secs(h.ra.config.order_lifetime_secs - 60));
    assert_eq!(h.ra.order(&account, order.id).await.expect("order").status, OrderStatus::Ready, "not yet");
    h.clock().advance(Duration::from_secs(120));
    let expired = h.ra.order(&account, order.id).await.expect("order");
    assert_eq!(expired.status, OrderStatus::Invalid);
    assert!(expired.error.is_some_and(|e| e.to_string().contains("expired")));
    let late = h.ra.finalize(&account, order.id, &csr(&new_key(), &["127.0.0.1"])).await;
    assert_eq!(problem(&late.expect_err("finalize after expiry")), "orderNotReady");
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_authorizations_are_reused_until_they_are_about_to_expire() {
    let h = Harness::new().await;
    let key = new_key();
    let account = h.account(&key).await;
    let first = h.ready_order(&account, &key).await;

    // The same identifier again: the valid authorization is reused, so the order is ready at once.
    let second = h.order(&account).await;
    assert_eq!(second.authorization_ids, first.authorization_ids);
    assert_eq!(second.status, OrderStatus::Ready);
    // Another account never gets it.
    let other = h.account(&new_key()).await;
    let theirs = h.order(&other).await;
    assert_ne!(theirs.authorization_ids, first.authorization_ids);
    assert_eq!(theirs.status, OrderStatus::Pending);

    // Within a day of its expiry it is no longer offered: the order could not be finalized with it.
    let lifetime = h.ra.config.valid_authorization_lifetime_secs;
    h.clock().advance(Duration::from_secs(lifetime - DAY / 2));
    let third = h.order(&account).await;
    assert_ne!(third.authorization_ids, first.authorization_ids);
    assert_eq!(third.status, OrderStatus::Pending);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_follows_who_asks_and_why() {
    let h = Harness::new().await;
    let key = new_key();
    let account = h.account(&key).await;
    let order = h.ready_order(&account, &key).await;
    let leaf_key = new_key();
    let finalized = h.ra.finalize(&account, order.id, &csr(&leaf_key, &["127.0.0.1"])).await.expect("finalize");
    let certificate_id = finalized.certificate_id.expect("certificate");
    let der = h.test.authority.store().certificate(certificate_id).await.expect("row").certificate_der.expect("der");
    let request = |reason| Revocation { certificate: castellan_acme_proto::b64::encode(&der), reason };

    let stranger = h.account(&new_key()).await;
    let refused = h.ra.revoke(Revoker::Account(&stranger), &request(None)).await;
    assert_eq!(problem(&refused.expect_err("another account")), "unauthorized");
    let ca_compromise = h.ra.revoke(Revoker::Account(&account), &request(Some(2))).await;
    assert_eq!(problem(&ca_compromise.expect_err("cACompromise")), "badRevocationReason");
    let hold = h.ra.revoke(Revoker::CertificateKey(&jwk(&leaf_key)), &request(Some(6))).await;
    assert_eq!(problem(&hold.expect_err("certificateHold")), "badRevocationReason");

    h.ra.revoke(Revoker::CertificateKey(&jwk(&leaf_key)), &request(Some(1))).await.expect("by the certificate's key");
    let row = h.test.authority.store().certificate(certificate_id).await.expect("row");
    assert_eq!(row.status, CertificateStatus::Revoked);
    let again = h.ra.revoke(Revoker::Account(&account), &request(None)).await;
    assert_eq!(problem(&again.expect_err("twice")), "alreadyRevoked");
    // ARI now says: renew at once.
    let cert_id = renewal_info::CertId::of(&row).expect("certID");
    let info = h.ra.renewal_info(&cert_id).await.expect("renewal info");
    assert!(info.suggested_window.end < renewal_info::rfc3339(h.ra.now()), "{info:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rollover_moves_the_account_to_its_new_key_once() {
    let h = Harness::new().await;
    let (old, new) = (new_key(), new_key());
    let account = h.account(&old).await;
    let url = format!("https://ca.test/acme/acct/{}", account.id);
    let change = VerifiedKeyChange { account: url.clone(), old_key: jwk(&old), new_key: jwk(&new) };
    let rolled = h.ra.change_key(&account, &change).await.expect("rollover");
    assert_eq!(rolled.jwk_thumbprint, jwk(&new).thumbprint());

    // The new key finds the account; the old one finds none.
    let lookup = |key: &SigningKey| {
        let request = NewAccount { only_return_existing: Some(true), ..NewAccount::default() };
        let (ra, key) = (h.ra.clone(), jwk(key));
        async move { ra.new_account(&key, &request, "https://ca.test/acme/new-account", None).await }
    };
    assert!(matches!(lookup(&new).await, Ok(NewAccountOutcome::Existing(a)) if a.id == account.id));
    assert_eq!(problem(&lookup(&old).await.err().expect("old key")), "accountDoesNotExist");

    // A key another account holds is refused with 409, pointing at that account.
    let taken = new_key();
    let other = h.account(&taken).await;
    let clash = VerifiedKeyChange { account: url, old_key: jwk(&new), new_key: jwk(&taken) };
    let refused = h.ra.change_key(&rolled, &clash).await.expect_err("taken key");
    assert_eq!(refused.status, axum::http::StatusCode::CONFLICT);
    assert_eq!(refused.conflicting_account, Some(other.id));
}
