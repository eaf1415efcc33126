//! The scheduler over the SoftHSM2 test token, SQLite and a manual clock: a managed certificate is issued at
//! once, renewed on its own with a new key each time (the key sealed, opening to the certificate's key), its
//! rotations recorded; a failing renewal backs off and says why; "renew now" is idempotent.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_authority::operator::{NewDomain, Operator};
use castellan_authority::{Actor, Clock, testkit};
use castellan_lifecycle::{InternalIssuer, Issuers, PassReport, Scheduler, SchedulerConfig};
use castellan_store::inventory::CertificateStatus;
use der::{Decode, Encode};
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

struct Harness {
    test: testkit::TestAuthority,
    clock: Clock,
    operator: Operator,
    scheduler: Scheduler,
}

async fn harness() -> Harness {
    let clock = Clock::manual_now();
    let test = testkit::authority(clock.clone()).await;
    let policy = json!({"dns": {"allow": [".corp.example"]}});
    let operator = Operator::with_authority(test.authority.clone()).with_default_policy(Some(policy.clone()));
    let issuers =
        Issuers::default().with("internal", Arc::new(InternalIssuer::new(test.authority.clone(), Some(policy))));
    let config = SchedulerConfig { sweep_secs: 1, ..Default::default() };
    let scheduler = Scheduler::new(&test.authority, issuers, config, "replica-test".into());
    Harness { test, clock, operator, scheduler }
}

fn domain(name: &str, lifetime_secs: u64) -> NewDomain {
    NewDomain {
        domain: name.into(),
        sans: vec![format!("www.{name}")],
        key_type: None,
        issuer: None,
        profile: None,
        group: None,
        lifetime_secs: Some(lifetime_secs),
    }
}

/// The SPKI of a certificate, and the SPKI of the unsealed key Castellan holds for it.
async fn spki_pair(h: &Harness, certificate_id: castellan_store::CertificateId) -> (Vec<u8>, Vec<u8>) {
    let row = h.test.authority.store().certificate(certificate_id).await.unwrap();
    let cert = x509_cert::Certificate::from_der(row.certificate_der.as_ref().unwrap()).unwrap();
    let from_cert = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let pkcs8 = h.test.authority.managed_private_key(certificate_id).await.unwrap();
    let key = p256::SecretKey::from_pkcs8_der(&pkcs8).unwrap();
    let from_key = p256::pkcs8::EncodePublicKey::to_public_key_der(&key.public_key()).unwrap().to_vec();
    (from_cert, from_key)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_certificate_is_renewed_on_its_own_with_a_new_key_each_time() {
    let mut h = harness().await;
    let actor = Actor::cli("alice");
    let added = h.operator.add_domain(domain("app.corp.example", 180), &actor).await.unwrap();
    assert_eq!(added.domain.renewal.in_flight.as_ref().map(|r| r.reason), Some("initial"));
    assert!(added.certificate.is_none());

    let report = h.scheduler.pass().await.unwrap();
    let error = h.operator.domain("app.corp.example").await.unwrap().domain.renewal.last_error;
    assert_eq!((report.claimed, report.renewed, report.failed), (1, 1, 0), "{error:?}");
    let first = h.operator.domain("app.corp.example").await.unwrap();
    let first_id = first.certificate.as_ref().unwrap().id;
    assert_eq!(first.certificate.as_ref().unwrap().names, ["DNS:app.corp.example", "DNS:www.app.corp.example"]);
    assert_eq!(first.chain_pem.as_ref().unwrap().matches("BEGIN CERTIFICATE").count(), 2, "leaf, intermediate");
    let (cert_spki, key_spki) = spki_pair(&h, first_id).await;
    assert_eq!(cert_spki, key_spki, "the sealed key is the certificate's key");

    // Nothing to do until the renewal window: two thirds of 180 s, spread by a few seconds. The CA backdates
    // notBefore by half of so short a lifetime, so the window opens 21 to 39 s after issuance.
    assert_eq!(h.scheduler.pass().await.unwrap().claimed, 0);
    let mut seen = vec![first_id];
    let mut spkis = vec![cert_spki];
    for _ in 0..2 {
        h.clock.advance(Duration::from_secs(45));
        let report = h.scheduler.pass().await.unwrap();
        assert_eq!((report.renewed, report.failed), (1, 0), "{report:?}");
        let now = h.operator.domain("app.corp.example").await.unwrap();
        let id = now.certificate.as_ref().unwrap().id;
        assert!(!seen.contains(&id));
        let previous = h.test.authority.store().certificate(*seen.last().unwrap()).await.unwrap();
        assert_eq!((previous.status, previous.replaced_by_id), (CertificateStatus::Superseded, Some(id)));
        let (cert_spki, key_spki) = spki_pair(&h, id).await;
        assert_eq!(cert_spki, key_spki);
        assert!(!spkis.contains(&cert_spki), "a new key for every renewal");
        seen.push(id);
        spkis.push(cert_spki);
    }
    let view = h.operator.domain("app.corp.example").await.unwrap();
    let reasons: Vec<_> = view.rotations.iter().map(|r| (r.reason, r.status)).collect();
    assert_eq!(reasons, [("scheduled", "succeeded"), ("scheduled", "succeeded"), ("initial", "succeeded")]);
    assert_eq!(view.rotations[0].old_certificate_id, Some(seen[1]));
    assert_eq!(view.rotations[0].new_certificate_id, Some(seen[2]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_renewal_backs_off_and_says_why_and_renew_now_is_idempotent() {
    let mut h = harness().await;
    let actor = Actor::cli("alice");
    h.operator.add_domain(domain("db.corp.example", 180), &actor).await.unwrap();
    // The group's policy tightens after the name was added: its renewals are refused from now on.
    h.test
        .authority
        .store()
        .create_group("default", r#"{"dns":{"allow":[".other.example"]}}"#, actor.as_str())
        .await
        .unwrap();
    let report = h.scheduler.pass().await.unwrap();
    assert_eq!((report.claimed, report.failed), (1, 1));
    let view = h.operator.domain("db.corp.example").await.unwrap();
    assert_eq!(view.domain.renewal.failures, 1);
    assert!(view.domain.renewal.last_error.as_deref().unwrap().contains("not allowed"), "{view:?}");
    assert_eq!(view.rotations[0].status, "failed");
    // Backing off: a minute, then two.
    assert_eq!(h.scheduler.pass().await.unwrap(), PassReport::default());
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(h.scheduler.pass().await.unwrap().failed, 1);
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(h.scheduler.pass().await.unwrap().claimed, 0, "the second retry waits about two minutes");
    assert_eq!(h.operator.domain("db.corp.example").await.unwrap().domain.renewal.failures, 2);

    // The operator fixes the policy and asks for a renewal now: once, however often asked.
    h.test
        .authority
        .store()
        .set_group_policy("default", r#"{"dns":{"allow":[".corp.example"]}}"#, actor.as_str())
        .await
        .unwrap();
    let (first, created) = h.operator.renew_domain("db.corp.example", &actor).await.unwrap();
    let (second, again) = h.operator.renew_domain("db.corp.example", &actor).await.unwrap();
    assert!(created && !again);
    assert_eq!(first.id, second.id);
    let report = h.scheduler.pass().await.unwrap();
    assert_eq!((report.renewed, report.failed), (1, 0));
    let view = h.operator.domain("db.corp.example").await.unwrap();
    assert_eq!((view.domain.renewal.failures, view.domain.renewal.last_error.as_deref()), (0, None));
    assert_eq!((view.rotations[0].id, view.rotations[0].reason), (first.id, "manual"));
}

#[tokio::test(flavor = "multi_thread")]
async fn names_outside_the_policy_are_refused_when_added() {
    let h = harness().await;
    let actor = Actor::cli("alice");
    let err = h.operator.add_domain(domain("evil.example", 180), &actor).await.unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
    let mut bad = domain("ok.corp.example", 180);
    bad.key_type = Some("dsa-1024".into());
    assert!(h.operator.add_domain(bad, &actor).await.unwrap_err().to_string().contains("unknown key type"));
    let mut bad = domain("ok.corp.example", 180);
    bad.sans = vec!["::ffff:10.0.0.1".into()];
    assert!(h.operator.add_domain(bad, &actor).await.is_err());
    for (lifetime, why) in [(10, "too short"), (10 * 365 * 86_400, "longer than profile")] {
        let err = h.operator.add_domain(domain("ok.corp.example", lifetime), &actor).await.unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
    }
    assert!(h.operator.domains(Default::default()).await.unwrap().domains.is_empty());
}
