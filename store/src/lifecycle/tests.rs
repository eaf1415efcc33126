//! The renewal queue on both backends: claims and leases, rotations, completion with the sealed key, failures
//! with back-off, revocation pulling a renewal forward, and certificate states by age.

use super::AlertReport;
use super::*;
use crate::Store;
use crate::audit::AuditEvent;
use crate::ids::{CertificateId, IssuerId};
use crate::inventory::{CertificateSource, CertificateStatus, NewCertificate, NewIssuer};
use crate::revocation::ReasonCode;
use crate::testkit::{self, ManualTime};
use std::sync::Arc;

const DAY: i64 = 86_400;
const ACTOR: &str = "lifecycle:test";

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

async fn stores() -> Vec<(testkit::TestStore, Store, Arc<ManualTime>)> {
    let mut out = Vec::new();
    for ts in testkit::all().await {
        let time = ManualTime::now();
        let store = ts.store.clone().with_time(time.clone());
        out.push((ts, store, time));
    }
    out
}

async fn issuer(store: &Store) -> IssuerId {
    store
        .register_issuer(&NewIssuer {
            name: format!("intermediate-{}", random_hex(8)),
            role: "intermediate".into(),
            subject: "CN=Test Intermediate".into(),
            certificate_der: random_hex(32).into_bytes(),
            spki_sha256: rand::random::<[u8; 32]>().to_vec(),
            key_id: vec![1, 2, 3],
            token_label: Some("test".into()),
            key_label: Some("int".into()),
            not_before: 0,
            not_after: store.now() + 365 * DAY,
        })
        .await
        .expect("register issuer")
        .id
}

fn managed(name: &str) -> NewManaged {
    NewManaged {
        name: name.into(),
        names: vec![format!("DNS:{name}")],
        issuer: "internal".into(),
        profile: "tls-server".into(),
        key_type: "ec-p256".into(),
        group_name: "default".into(),
        lifetime_secs: Some(90 * DAY),
    }
}

/// A pending row, as the authority reserves before signing.
async fn reserve(store: &Store, issuer: IssuerId, name: &str, lifetime: i64) -> CertificateId {
    let now = store.now();
    store
        .reserve_certificate(&NewCertificate {
            issuer_id: Some(issuer),
            issuer_key_id: vec![1, 2, 3],
            issuer_dn: "CN=Test Intermediate".into(),
            serial: format!("01{}", random_hex(16)),
            source: CertificateSource::ManagedInternal,
            profile: Some("tls-server".into()),
            subject: String::new(),
            names: vec![format!("DNS:{name}")],
            tbs_sha256: rand::random::<[u8; 32]>().to_vec(),
            spki_sha256: rand::random::<[u8; 32]>().to_vec(),
            not_before: now,
            not_after: now + lifetime,
            account_id: None,
            owner: Some(format!("managed:{name}")),
            replaces_id: None,
        })
        .await
        .expect("reserve")
}

/// Issues the claimed rotation's certificate as the lifecycle engine does; returns the new certificate's id.
async fn complete(store: &Store, issuer: IssuerId, claim: &Claim, lifetime: i64) -> (CertificateId, bool) {
    let id = reserve(store, issuer, &claim.managed.name, lifetime).await;
    let completion = ManagedCompletion {
        managed_id: claim.managed.id,
        rotation_id: claim.rotation.id,
        lease_owner: claim.lease_owner.clone(),
        next_renewal_at: store.now() + lifetime * 2 / 3,
        sealed_key: vec![0xA5; 48],
        kek_label: "castellan-kek".into(),
        key_type: "ec-p256".into(),
    };
    let event = AuditEvent::new(ACTOR, "certificate.issue", format!("serial-{id}"));
    let der = format!("certificate {id}").into_bytes();
    let sha = rand::random::<[u8; 32]>().to_vec();
    let current = store.complete_managed(id, &der, &sha, &completion, &event).await.expect("complete");
    (id, current)
}

#[tokio::test]
async fn a_new_managed_certificate_is_due_at_once_and_renews_on_schedule() {
    for (_keep, store, time) in stores().await {
        let issuer = issuer(&store).await;
        let (record, rotation) = store.create_managed(&managed("app.corp.example"), ACTOR).await.expect("create");
        assert_eq!(record.next_renewal_at, Some(store.now()));
        assert_eq!((rotation.reason, rotation.status), (RenewalReason::Initial, RotationStatus::Queued));
        let err = store.create_managed(&managed("app.corp.example"), ACTOR).await.expect_err("duplicate");
        assert!(matches!(err, crate::StoreError::Conflict { .. }), "{err}");

        let claims = store.claim_due_renewals("replica-a", 10, 300).await.expect("claim");
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].rotation.id, rotation.id, "the queued rotation is the one that runs");
        assert_eq!(claims[0].rotation.status, RotationStatus::Running);
        assert!(store.claim_due_renewals("replica-b", 10, 300).await.expect("claim").is_empty(), "leased");

        let (first, current) = complete(&store, issuer, &claims[0], 90 * DAY).await;
        assert!(current);
        let record = store.managed_by_name("app.corp.example").await.expect("managed");
        assert_eq!(record.current_certificate_id, Some(first));
        assert_eq!((record.failures, record.lease_owner.as_deref()), (0, None));
        assert_eq!(store.certificate(first).await.expect("certificate").status, CertificateStatus::Active);
        assert_eq!(store.sealed_key(first).await.expect("sealed key").sealed, vec![0xA5; 48]);

        // Not due until its renewal time.
        assert!(store.claim_due_renewals("replica-a", 10, 300).await.expect("claim").is_empty());
        time.advance(60 * DAY);
        let claims = store.claim_due_renewals("replica-b", 10, 300).await.expect("claim");
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].rotation.reason, RenewalReason::Scheduled);
        assert_eq!(claims[0].rotation.old_certificate_id, Some(first));
        assert_eq!(store.certificate(first).await.expect("old").status, CertificateStatus::Renewing);
        let (second, _) = complete(&store, issuer, &claims[0], 90 * DAY).await;
        let old = store.certificate(first).await.expect("old");
        assert_eq!((old.status, old.replaced_by_id), (CertificateStatus::Superseded, Some(second)));
        assert_eq!(store.certificate(second).await.expect("new").replaces_id, Some(first));
        let history = store.rotations(record.id, 10).await.expect("rotations");
        let statuses: Vec<_> = history.iter().map(|r| (r.reason, r.status)).collect();
        assert_eq!(
            statuses,
            [
                (RenewalReason::Scheduled, RotationStatus::Succeeded),
                (RenewalReason::Initial, RotationStatus::Succeeded)
            ]
        );
    }
}

#[tokio::test]
async fn a_dead_replicas_lease_expires_and_its_late_result_changes_nothing() {
    for (_keep, store, time) in stores().await {
        let issuer = issuer(&store).await;
        store.create_managed(&managed("lease.corp.example"), ACTOR).await.expect("create");
        let dead = store.claim_due_renewals("replica-dead", 10, 300).await.expect("claim").remove(0);
        time.advance(301);
        let alive = store.claim_due_renewals("replica-alive", 10, 300).await.expect("claim").remove(0);
        assert_ne!(alive.rotation.id, dead.rotation.id);
        let history = store.rotations(alive.managed.id, 10).await.expect("rotations");
        assert_eq!(history[1].status, RotationStatus::Abandoned, "{history:?}");

        // The dead replica wakes up: its failure is ignored, its certificate replaces nothing.
        assert_eq!(store.fail_rotation(&dead, "late", store.now() + 60, ACTOR).await.expect("fail"), None);
        let (late, current) = complete(&store, issuer, &dead, DAY).await;
        assert!(!current);
        assert_eq!(store.certificate(late).await.expect("late").status, CertificateStatus::Superseded);
        let (mine, current) = complete(&store, issuer, &alive, DAY).await;
        assert!(current);
        assert_eq!(store.managed(alive.managed.id).await.expect("managed").current_certificate_id, Some(mine));

        // The same replica claiming again after its own lease ran out: the first attempt's late failure must not
        // count against the second, still running.
        store.request_renewal("lease.corp.example", RenewalReason::Manual, ACTOR).await.expect("renew");
        let slow = store.claim_due_renewals("replica-alive", 10, 300).await.expect("claim").remove(0);
        time.advance(301);
        let again = store.claim_due_renewals("replica-alive", 10, 300).await.expect("claim").remove(0);
        assert_eq!(store.fail_rotation(&slow, "late", store.now() + 60, ACTOR).await.expect("fail"), None);
        let record = store.managed(again.managed.id).await.expect("managed");
        assert_eq!((record.failures, record.lease_owner.as_deref()), (0, Some("replica-alive")));
        assert_eq!(store.rotations(record.id, 1).await.expect("rotations")[0].status, RotationStatus::Running);

        // Removed while renewing: its certificate does not stay "renewing".
        store.remove_managed("lease.corp.example", ACTOR).await.expect("remove");
        assert_eq!(store.certificate(mine).await.expect("certificate").status, CertificateStatus::Active);
    }
}

#[tokio::test]
async fn failures_back_off_and_an_operator_renewal_is_idempotent() {
    for (_keep, store, time) in stores().await {
        store.create_managed(&managed("fail.corp.example"), ACTOR).await.expect("create");
        let claim = store.claim_due_renewals("replica-a", 10, 300).await.expect("claim").remove(0);
        let failed = store.fail_rotation(&claim, "the issuer said no", store.now() + 60, ACTOR).await.expect("fail");
        assert_eq!(failed.map(|f| f.failures), Some(1));
        let record = store.managed(claim.managed.id).await.expect("managed");
        assert_eq!(record.last_error.as_deref(), Some("the issuer said no"));
        assert!(store.claim_due_renewals("replica-a", 10, 300).await.expect("claim").is_empty(), "backing off");
        time.advance(60);
        let claim = store.claim_due_renewals("replica-a", 10, 300).await.expect("claim").remove(0);
        assert_eq!(claim.rotation.reason, RenewalReason::Initial, "the retry keeps its reason");

        // While that one runs, "renew now" returns it instead of queueing another.
        let (rotation, created) =
            store.request_renewal("fail.corp.example", RenewalReason::Manual, ACTOR).await.expect("renew");
        assert!(!created);
        assert_eq!(rotation.id, claim.rotation.id);
        store.fail_rotation(&claim, "again", store.now() + 3600, ACTOR).await.expect("fail");
        let (queued, created) =
            store.request_renewal("fail.corp.example", RenewalReason::Manual, ACTOR).await.expect("renew");
        assert!(created);
        let (again, created) =
            store.request_renewal("fail.corp.example", RenewalReason::Manual, ACTOR).await.expect("renew");
        assert_eq!((again.id, created), (queued.id, false));
        let claim = store.claim_due_renewals("replica-a", 10, 300).await.expect("claim").remove(0);
        assert_eq!((claim.rotation.id, claim.rotation.reason), (queued.id, RenewalReason::Manual));

        let removed = store.remove_managed("fail.corp.example", ACTOR).await.expect("remove");
        assert_eq!(removed.status, ManagedStatus::Removed);
        assert_eq!(store.rotations(removed.id, 1).await.expect("rotations")[0].status, RotationStatus::Abandoned);
        let err = store.request_renewal("fail.corp.example", RenewalReason::Manual, ACTOR).await.expect_err("removed");
        assert!(matches!(err, crate::StoreError::Invalid { .. }), "{err}");
        store.create_managed(&managed("fail.corp.example"), ACTOR).await.expect("managed again");
    }
}

#[tokio::test]
async fn revoking_a_managed_certificate_renews_it_now() {
    for (_keep, store, _time) in stores().await {
        let issuer = issuer(&store).await;
        store.create_managed(&managed("revoked.corp.example"), ACTOR).await.expect("create");
        let claim = store.claim_due_renewals("r", 10, 300).await.expect("claim").remove(0);
        let (id, _) = complete(&store, issuer, &claim, 90 * DAY).await;
        assert!(store.claim_due_renewals("r", 10, 300).await.expect("claim").is_empty());
        let reason = ReasonCode::new(1).expect("keyCompromise");
        store.revoke_certificate(id, reason, "operator", ACTOR).await.expect("revoke");
        let claim = store.claim_due_renewals("r", 10, 300).await.expect("claim").remove(0);
        assert_eq!(claim.rotation.reason, RenewalReason::Revoked);
        assert_eq!(store.certificate(id).await.expect("row").status, CertificateStatus::Revoked, "not renewing");
    }
}

#[tokio::test]
async fn certificates_move_to_expiring_soon_and_expired_by_age() {
    for (_keep, store, time) in stores().await {
        let issuer = issuer(&store).await;
        store.create_managed(&managed("age.corp.example"), ACTOR).await.expect("create");
        let claim = store.claim_due_renewals("r", 10, 300).await.expect("claim").remove(0);
        let (short, _) = complete(&store, issuer, &claim, 180).await;
        let status = |id| {
            let store = store.clone();
            async move { store.certificate(id).await.expect("row").status }
        };
        assert_eq!(store.sweep_certificate_states().await.expect("sweep"), SweepReport::default());
        time.advance(119);
        store.sweep_certificate_states().await.expect("sweep");
        assert_eq!(status(short).await, CertificateStatus::Active);
        time.advance(1);
        assert_eq!(store.sweep_certificate_states().await.expect("sweep").expiring_soon, 1);
        assert_eq!(status(short).await, CertificateStatus::ExpiringSoon);

        let q = crate::inventory::CertificateQuery {
            expiring_within: Some(std::time::Duration::from_secs(3600)),
            ..Default::default()
        };
        let page = store.expiring_certificates(&q).await.expect("expiring");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].managed.as_ref().map(|m| m.name.as_str()), Some("age.corp.example"));

        time.advance(61);
        assert_eq!(store.sweep_certificate_states().await.expect("sweep").expired, 1);
        assert_eq!(status(short).await, CertificateStatus::Expired);
    }
}

#[tokio::test]
async fn replicas_claiming_at_once_take_each_renewal_exactly_once() {
    for (_keep, store, _time) in stores().await {
        for i in 0..60 {
            store.create_managed(&managed(&format!("n{i}.corp.example")), ACTOR).await.expect("create");
        }
        let claimers = (0..4).map(|r| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claims = store.claim_due_renewals(&format!("replica-{r}"), 7, 300).await.expect("claim");
                    if claims.is_empty() {
                        return mine;
                    }
                    mine.extend(claims.into_iter().map(|c| c.managed.id));
                }
            })
        });
        let mut all = Vec::new();
        for claimer in claimers.collect::<Vec<_>>() {
            all.extend(claimer.await.expect("claimer"));
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!((before, all.len()), (60, 60), "each renewal claimed once");
    }
}

#[tokio::test]
async fn expiry_alerts_fire_once_per_threshold_and_resolve_when_a_successor_is_issued() {
    for (_keep, store, time) in stores().await {
        let issuer = issuer(&store).await;
        store.create_managed(&managed("alert.corp.example"), ACTOR).await.expect("create");
        let claim = store.claim_due_renewals("r", 10, 300).await.expect("claim").remove(0);
        let (first, _) = complete(&store, issuer, &claim, 90 * DAY).await;
        let receivers = vec!["hook".to_owned(), "am".to_owned()];
        let evaluate = || store.evaluate_alerts(&[30, 7, 1], 3, &receivers);
        assert_eq!(evaluate().await.expect("evaluate"), AlertReport::default());
        time.advance(61 * DAY);
        assert_eq!(evaluate().await.expect("evaluate").fired, 1, "the 30-day threshold");
        assert_eq!(evaluate().await.expect("evaluate").fired, 0, "once");
        let owed = store.claim_deliveries("r", 10, 60).await.expect("claim deliveries");
        assert_eq!(owed.len(), 2, "one per receiver");
        assert!(owed.iter().all(|d| d.state == "firing" && d.certificate.as_ref().map(|c| c.id) == Some(first)));
        assert!(store.claim_deliveries("r2", 10, 60).await.expect("claim").is_empty(), "leased");
        store.delivered(&owed[0]).await.expect("delivered");
        store.delivery_failed(&owed[1], "down", store.now() + 30).await.expect("failed");
        time.advance(31);
        let retried = store.claim_deliveries("r", 10, 60).await.expect("claim");
        assert_eq!(retried.iter().map(|d| d.receiver.as_str()).collect::<Vec<_>>(), ["am"]);
        store.delivered(&retried[0]).await.expect("delivered");

        // The renewal issues a successor: the alert resolves, and that is owed to both receivers too.
        let (rotation, _) =
            store.request_renewal("alert.corp.example", RenewalReason::Manual, ACTOR).await.expect("renew");
        let claim = store.claim_due_renewals("r", 10, 300).await.expect("claim").remove(0);
        assert_eq!(claim.rotation.id, rotation.id);
        complete(&store, issuer, &claim, 90 * DAY).await;
        assert_eq!(evaluate().await.expect("evaluate").resolved, 1);
        let owed = store.claim_deliveries("r", 10, 60).await.expect("claim");
        assert_eq!(owed.len(), 2);
        assert!(owed.iter().all(|d| d.state == "resolved"));
        assert_eq!(store.alerts(true, 10).await.expect("alerts").len(), 0);
    }
}

#[tokio::test]
async fn a_renewal_failing_again_after_recovering_is_a_new_alert() {
    for (_keep, store, _time) in stores().await {
        store.create_managed(&managed("flaky.corp.example"), ACTOR).await.expect("create");
        let fail = |n: i64| {
            let store = store.clone();
            async move {
                let claim = store.claim_due_renewals("r", 10, 300).await.expect("claim").remove(0);
                store.fail_rotation(&claim, "no", store.now(), ACTOR).await.expect("fail");
                assert_eq!(store.managed(claim.managed.id).await.expect("managed").failures, n);
            }
        };
        fail(1).await;
        assert_eq!(store.evaluate_alerts(&[], 2, &[]).await.expect("evaluate").fired, 1, "no certificate yet");
        fail(2).await;
        assert_eq!(store.evaluate_alerts(&[], 2, &[]).await.expect("evaluate").fired, 0, "one episode, one alert");
    }
}
