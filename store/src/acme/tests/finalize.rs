use super::*;
use crate::StoreError;
use crate::ids::OrderId;
use crate::inventory::CertificateStatus;
use crate::revocation::ReasonCode;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_concurrent_finalization_wins() {
    const RACERS: usize = 8;
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let o = ready_order(s, a.id).await;
        let mut reserved = Vec::new();
        for _ in 0..RACERS {
            reserved.push(reserve(s, a.id).await);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = reserved
            .iter()
            .map(|&cert| {
                let (store, barrier) = (s.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.begin_finalize(o.id, b"csr", cert, ACTOR).await.map(|won| (won, cert))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (won, cert) = task.await.expect("task").expect("begin finalize");
            if won {
                winners.push(cert);
            }
        }
        assert_eq!(winners.len(), 1, "{:?}", s.backend());
        let processing = s.order(o.id).await.expect("order");
        assert_eq!((processing.status, processing.certificate_id), (OrderStatus::Processing, Some(winners[0])));
        let csr: Option<Vec<u8>> = sqlx::query_scalar("SELECT csr_der FROM orders WHERE id = $1")
            .bind(o.id)
            .fetch_one(s.raw_pool_for_tests())
            .await
            .expect("csr");
        assert_eq!(csr.as_deref(), Some(&b"csr"[..]));
        assert_eq!(audit_subjects(s, "order.finalize").await, [format!("order:{}", o.id)]);

        let pending = order(s, a.id, &["p.example.com"]).await;
        assert!(!s.begin_finalize(pending.id, b"csr", reserved[0], ACTOR).await.expect("not ready"));
        let missing = s.begin_finalize(OrderId(o.id.get() + 100), b"csr", reserved[0], ACTOR).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn completing_an_order_issues_its_certificate_and_links_the_replaced_one() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let (first, old_cert) = issued(s, a.id).await;
        assert_eq!((first.status, first.certificate_id), (OrderStatus::Valid, Some(old_cert)));
        let old = s.certificate(old_cert).await.expect("certificate");
        assert_eq!(old.status, CertificateStatus::Active);
        assert!(old.certificate_der.is_some() && old.cert_sha256.is_some());

        let o = ready_order(s, a.id).await;
        let cert = reserve(s, a.id).await;
        let event = issue_event(s, &o, cert, &[2; 32], Some(old_cert)).await;
        let early = s.complete_order(o.id, b"der", &[1; 32], None, &event).await.expect_err("not processing");
        assert!(matches!(early, StoreError::Invalid { .. }), "{early}");
        assert!(s.begin_finalize(o.id, b"csr", cert, ACTOR).await.expect("finalize"));
        let valid = s.complete_order(o.id, b"new der", &[2; 32], Some(old_cert), &event).await.expect("complete");
        assert_eq!((valid.status, valid.certificate_id), (OrderStatus::Valid, Some(cert)));
        assert_eq!(s.order(o.id).await.expect("read"), valid);
        let new = s.certificate(cert).await.expect("new");
        assert_eq!((new.status, new.certificate_der.as_deref()), (CertificateStatus::Active, Some(&b"new der"[..])));
        assert_eq!(new.replaces_id, Some(old_cert));
        assert_eq!(s.certificate(old_cert).await.expect("old").replaced_by_id, Some(cert));

        let again = s.complete_order(o.id, b"der", &[3; 32], None, &event).await.expect_err("twice");
        assert!(matches!(again, StoreError::Invalid { .. }), "{again}");
        // The issuance's entry is the caller's event, as given: subject the serial, details its own.
        let (actor, details): (String, String) = sqlx::query_as(
            "SELECT actor, details_json FROM audit_log WHERE action = 'certificate.issue' AND subject = $1",
        )
        .bind(&new.serial)
        .fetch_one(s.raw_pool_for_tests())
        .await
        .expect("audit");
        assert_eq!(actor, ACTOR);
        assert!(details.contains(&new.serial) && details.contains("DNS:www.example.com"), "{details}");
        assert!(details.contains(&format!("\"order_id\":{}", o.id)), "{details}");
        assert!(details.contains(&format!("\"replaces_certificate_id\":{old_cert}")), "{details}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&details).expect("details JSON"), event.details);
        assert_eq!(audit_count(s, "certificate.issue").await, 2);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn a_failed_finalization_invalidates_the_order_and_fails_the_row_only_when_nothing_was_signed() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let error = json!({ "type": "urn:ietf:params:acme:error:serverInternal", "detail": "signing failed" });
        let mut outcomes = Vec::new();
        for certificate_failed in [true, false] {
            let o = ready_order(s, a.id).await;
            let cert = reserve(s, a.id).await;
            assert!(s.begin_finalize(o.id, b"csr", cert, ACTOR).await.expect("finalize"));
            assert_eq!(s.processing_orders(s.now() + 1, 10).await.expect("processing"), [o.id]);
            let failed = s.fail_order(o.id, &error, certificate_failed, ACTOR).await.expect("fail");
            assert_eq!((failed.status, failed.error.as_ref()), (OrderStatus::Invalid, Some(&error)));
            outcomes.push(s.certificate(cert).await.expect("row").status);
            let again = s.fail_order(o.id, &error, certificate_failed, ACTOR).await.expect_err("twice");
            assert!(matches!(again, StoreError::Invalid { .. }), "{again}");
        }
        assert_eq!(outcomes, [CertificateStatus::Failed, CertificateStatus::Pending], "{:?}", s.backend());
        assert!(s.processing_orders(s.now() + 1, 10).await.expect("processing").is_empty());
        assert_eq!(audit_count(s, "order.invalid").await, 2);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn processing_orders_are_listed_oldest_first_for_recovery() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let o = ready_order(s, a.id).await;
            let cert = reserve(s, a.id).await;
            assert!(s.begin_finalize(o.id, b"csr", cert, ACTOR).await.expect("finalize"));
            ids.push(o.id);
        }
        let now = s.now();
        assert!(s.processing_orders(now - 60, 10).await.expect("none stuck yet").is_empty());
        assert_eq!(s.processing_orders(now + 1, 10).await.expect("all"), ids);
        assert_eq!(s.processing_orders(now + 1, 2).await.expect("limited"), ids[..2]);
    }
}

#[tokio::test]
async fn a_certificate_is_found_by_serial_and_revoked_once() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let (_, cert) = issued(s, a.id).await;
        let record = s.certificate(cert).await.expect("certificate");
        let found = s.certificate_by_serial(&record.issuer_key_id, &record.serial.to_ascii_uppercase()).await;
        assert_eq!(found.expect("by serial").map(|c| c.id), Some(cert));
        assert_eq!(s.certificate_by_serial(&[9; 20], &record.serial).await.expect("other issuer"), None);
        assert_eq!(s.certificate_by_serial(&record.issuer_key_id, "00").await.expect("other serial"), None);

        let bad = ReasonCode::new(7).expect_err("reason 7");
        assert!(matches!(bad, StoreError::Invalid { .. }), "{bad}");
        s.revoke_certificate(cert, crl_reason(1), &format!("account:{}", a.id), ACTOR).await.expect("revoke");
        let revoked = s.certificate(cert).await.expect("certificate");
        assert_eq!(revoked.status, CertificateStatus::Revoked);
        let due = revoked.renewal_due_at.expect("renewal due");
        assert!(due <= s.now() && due >= s.now() - 60, "{due}");
        let (reason, by): (i64, String) =
            sqlx::query_as("SELECT reason, revoked_by FROM revocations WHERE certificate_id = $1")
                .bind(cert)
                .fetch_one(s.raw_pool_for_tests())
                .await
                .expect("revocation row");
        assert_eq!((reason, by), (1, format!("account:{}", a.id)));

        let twice = s.revoke_certificate(cert, crl_reason(4), "admin", ACTOR).await.expect_err("twice");
        assert!(
            matches!(&twice, StoreError::Conflict { what } if what == &format!("revocation of certificate {cert}")),
            "{twice}"
        );
        let pending = reserve(s, a.id).await;
        let unsigned = s.revoke_certificate(pending, crl_reason(0), "admin", ACTOR).await.expect_err("pending");
        assert!(matches!(unsigned, StoreError::Invalid { .. }), "{unsigned}");
        let missing = s
            .revoke_certificate(CertificateId(pending.get() + 100), crl_reason(0), "admin", ACTOR)
            .await
            .expect_err("missing");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");

        // An operator set it live again: the revocations row still refuses a second revocation.
        s.set_certificate_status(cert, CertificateStatus::Active).await.expect("set active");
        let again = s.revoke_certificate(cert, crl_reason(4), "admin", ACTOR).await.expect_err("revocation row exists");
        assert!(matches!(again, StoreError::Conflict { .. }), "{:?}: {again}", s.backend());
        assert_eq!(s.certificate(cert).await.expect("row").status, CertificateStatus::Active, "rolled back");

        assert_eq!(audit_subjects(s, "certificate.revoke").await, [format!("certificate:{cert}")]);
        assert_audit_intact(s).await;
    }
}

fn crl_reason(code: u8) -> ReasonCode {
    ReasonCode::new(code).expect("a CRLReason")
}
