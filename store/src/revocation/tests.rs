//! Revocation on both backends: the epoch replicas poll, CRL pages, CRL numbers, OCSP status, and the operator's
//! bulk revocation and renew-now, each audited.

use super::*;
use crate::acme::{AccountCreation, NewAccount};
use crate::ids::IssuerId;
use crate::inventory::{CertificateSource, CertificateStatus, NewCertificate, NewIssuer};
use crate::testkit;

const DAY: i64 = 86_400;
const ACTOR: &str = "cli:test";

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Our intermediate, filed as the binary files it; returns (issuer id, key id).
async fn issuer(store: &Store) -> (IssuerId, Vec<u8>) {
    let key_id = rand::random::<[u8; 20]>().to_vec();
    let record = store
        .register_issuer(&NewIssuer {
            name: format!("intermediate-{}", random_hex(8)),
            role: "intermediate".into(),
            subject: "CN=Test Intermediate".into(),
            certificate_der: random_hex(32).into_bytes(),
            spki_sha256: rand::random::<[u8; 32]>().to_vec(),
            key_id: key_id.clone(),
            token_label: Some("test".into()),
            key_label: Some("int".into()),
            not_before: 0,
            not_after: store.now() + 365 * DAY,
        })
        .await
        .expect("register issuer");
    (record.id, key_id)
}

async fn account(store: &Store) -> AccountId {
    let thumbprint = random_hex(16);
    let new = NewAccount {
        jwk_json: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{thumbprint}"}}"#),
        jwk_thumbprint: thumbprint,
        contacts: vec![],
        terms_agreed: true,
        group_id: None,
        eab_key_id: None,
    };
    match store.create_account(&new, ACTOR).await.expect("account") {
        AccountCreation::Created(a) | AccountCreation::Existing(a) => a.id,
    }
}

/// An issued certificate of ours for `names`; returns (id, serial).
async fn issue(
    store: &Store,
    (issuer_id, key_id): &(IssuerId, Vec<u8>),
    names: &[&str],
    account: Option<AccountId>,
    not_after: i64,
) -> (CertificateId, String) {
    let serial = format!("01{}", random_hex(16));
    let cert = NewCertificate {
        issuer_id: Some(*issuer_id),
        issuer_key_id: key_id.clone(),
        issuer_dn: "CN=Test Intermediate".into(),
        serial: serial.clone(),
        source: CertificateSource::InternalAcme,
        profile: Some("tls-server".into()),
        subject: String::new(),
        names: names.iter().map(|n| format!("DNS:{n}")).collect(),
        tbs_sha256: rand::random::<[u8; 32]>().to_vec(),
        spki_sha256: rand::random::<[u8; 32]>().to_vec(),
        not_before: not_after - 90 * DAY,
        not_after,
        account_id: account,
        owner: None,
        replaces_id: None,
    };
    let der = format!("certificate {serial}").into_bytes();
    let sha = rand::random::<[u8; 32]>().to_vec();
    (store.insert_certificate(&cert, &der, &sha).await.expect("insert certificate"), serial)
}

fn crl_reason(code: u8) -> ReasonCode {
    ReasonCode::new(code).expect("a CRLReason")
}

async fn audit_count(store: &Store, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(store.raw_pool_for_tests())
        .await
        .expect("count")
}

#[tokio::test]
async fn revocations_advance_the_epoch_and_reach_ocsp_and_crl_pages() {
    for t in testkit::all().await {
        let s = &t.store;
        let ca = issuer(s).await;
        let live = s.now() + 30 * DAY;
        let (good, good_serial) = issue(s, &ca, &["good.example"], None, live).await;
        let (bad, bad_serial) = issue(s, &ca, &["bad.example"], None, live).await;
        let (old, _) = issue(s, &ca, &["old.example"], None, s.now() - 10 * DAY).await;
        assert_eq!(s.revocation_epoch().await.expect("epoch"), 0);
        assert_eq!(s.serial_status(&ca.1, &good_serial).await.expect("status"), SerialStatus::Good);
        assert_eq!(s.serial_status(&ca.1, "00ff").await.expect("status"), SerialStatus::Unknown);
        assert_eq!(s.serial_status(&[1; 20], &good_serial).await.expect("other issuer"), SerialStatus::Unknown);

        // The ACME path advances the epoch too.
        s.revoke_certificate(bad, crl_reason(1), "account:1", ACTOR).await.expect("revoke");
        assert_eq!(s.revocation_epoch().await.expect("epoch"), 1);
        let status = s.serial_status(&ca.1, &bad_serial.to_ascii_uppercase()).await.expect("status");
        assert!(matches!(status, SerialStatus::Revoked { reason: 1, revoked_at } if revoked_at <= s.now()));
        let report = s.revoke_certificates(&[old, good], crl_reason(4), "admin", ACTOR).await.expect("bulk");
        assert_eq!(report.revoked.iter().map(|r| r.0).collect::<Vec<_>>(), [old, good]);
        assert_eq!(s.revocation_epoch().await.expect("epoch"), 2, "one epoch per transaction");

        let seen = s.revoked_in_epochs(0, 1).await.expect("epoch 1");
        assert_eq!(seen, [RevokedSerial { issuer_key_id: ca.1.clone(), serial: bad_serial.clone() }]);
        assert_eq!(s.revoked_in_epochs(1, 2).await.expect("epoch 2").len(), 2);
        assert!(s.revoked_in_epochs(2, 2).await.expect("nothing new").is_empty());

        // CRL pages: in id order, the long-expired one left out, and the cursor continues after the last row read.
        let cutoff = s.now() - DAY;
        let pairs = |page: &RevokedPage| page.entries.iter().map(|e| (e.certificate_id, e.reason)).collect::<Vec<_>>();
        let first = s.revoked_entries(&ca.1, cutoff, 0, 1).await.expect("page 1");
        assert_eq!((pairs(&first), first.next_after), (vec![(good.get(), 4)], Some(good.get())));
        let second = s.revoked_entries(&ca.1, cutoff, good.get(), 1).await.expect("page 2");
        assert_eq!((pairs(&second), second.next_after), (vec![(bad.get(), 1)], Some(bad.get())));
        let last =
            s.revoked_entries(&ca.1, cutoff, bad.get(), 10).await.expect("page 3: only the expired one, skipped");
        assert_eq!((pairs(&last), last.next_after), (vec![], None), "a short page is the last");
        let with_old = s.revoked_entries(&ca.1, 0, 0, 10).await.expect("all");
        assert_eq!(with_old.entries.len(), 3);
        assert!(s.revoked_entries(&[1; 20], 0, 0, 10).await.expect("other issuer").entries.is_empty());
        assert_eq!(audit_count(s, "certificate.revoke").await, 3);
    }
}

#[tokio::test]
async fn crl_numbers_increase_and_never_go_with_older_contents() {
    for t in testkit::all().await {
        let s = &t.store;
        let issuer_id = issuer(s).await.0;
        assert_eq!(s.last_crl_number(issuer_id, 0).await.expect("none"), None);
        assert_eq!(s.next_crl_number(issuer_id, 0, 0).await.expect("first"), Some(1));
        assert_eq!(s.next_crl_number(issuer_id, 0, 0).await.expect("second"), Some(2));
        assert_eq!(s.next_crl_number(issuer_id, 0, 5).await.expect("newer contents"), Some(3));
        // A replica that read revocations older than CRL 3's is refused a number.
        assert_eq!(s.next_crl_number(issuer_id, 0, 4).await.expect("older contents"), None);
        assert_eq!(s.last_crl_number(issuer_id, 0).await.expect("last"), Some(3));
        assert_eq!(s.next_crl_number(issuer_id, 1, 0).await.expect("another shard"), Some(1));
    }
}

#[tokio::test]
async fn operators_revoke_by_serial_name_and_account() {
    for t in testkit::all().await {
        let s = &t.store;
        let ca = issuer(s).await;
        let live = s.now() + 30 * DAY;
        let acct = account(s).await;
        let (a1, _) = issue(s, &ca, &["a.example", "shared.example"], Some(acct), live).await;
        let (a2, _) = issue(s, &ca, &["b.example"], Some(acct), live).await;
        let (other, other_serial) = issue(s, &ca, &["shared.example"], None, live).await;
        let (expired, _) = issue(s, &ca, &["shared.example"], None, s.now() - DAY).await;

        let by_name = RevocationTarget::Name("DNS:Shared.Example".into());
        assert_eq!(s.revocation_candidates(&by_name).await.expect("candidates"), [a1, other], "not the expired one");
        let report = s.revoke_matching(&by_name, crl_reason(1), "cli:test", ACTOR).await.expect("by name");
        assert_eq!(report.revoked.iter().map(|r| r.0).collect::<Vec<_>>(), [a1, other]);
        assert!(report.unchanged.is_empty());
        assert_eq!(s.certificate(expired).await.expect("row").status, CertificateStatus::Active);

        let report =
            s.revoke_matching(&RevocationTarget::Account(acct), crl_reason(5), "cli:test", ACTOR).await.expect("acct");
        assert_eq!(report.revoked.iter().map(|r| r.0).collect::<Vec<_>>(), [a2]);
        assert_eq!(report.unchanged, [a1], "already revoked by name");

        let by_serial = RevocationTarget::Serial(format!("0X{}", other_serial.to_ascii_uppercase()));
        let report = s.revoke_matching(&by_serial, crl_reason(0), "cli:test", ACTOR).await.expect("serial");
        assert_eq!((report.revoked.len(), report.unchanged.clone()), (0, vec![other]));
        let certs = s.certificates_with_serial(&other_serial).await.expect("by serial");
        assert_eq!(certs.iter().map(|c| c.id).collect::<Vec<_>>(), [other]);
        assert_eq!(certs[0].status, CertificateStatus::Revoked);
        assert!(certs[0].renewal_due_at.is_some_and(|due| due <= s.now()));

        let bad_reason = ReasonCode::new(7).expect_err("reason 7");
        assert!(matches!(bad_reason, StoreError::Invalid { .. }), "{bad_reason}");
        assert!(matches!(
            s.revocation_candidates(&RevocationTarget::Serial("xyz".into())).await,
            Err(StoreError::Invalid { .. })
        ));
        assert_eq!(audit_count(s, "certificate.revoke").await, 3);
        assert_eq!(s.revocation_epoch().await.expect("epoch"), 2);
        assert!(s.audit_verify().await.expect("verify").is_intact());
    }
}

#[tokio::test]
async fn bulk_revocation_runs_in_chunks() {
    for t in testkit::all().await {
        let s = &t.store;
        let ca = issuer(s).await;
        let mut ids = Vec::new();
        for i in 0..(BULK_CHUNK + 3) {
            ids.push(issue(s, &ca, &[&format!("n{i}.example")], None, s.now() + DAY).await.0);
        }
        let report = s.revoke_certificates(&ids, crl_reason(1), "cli:test", ACTOR).await.expect("bulk");
        assert_eq!(report.revoked.len(), ids.len());
        assert_eq!(s.revocation_epoch().await.expect("epoch"), 2);
        assert_eq!(s.revoked_in_epochs(0, 2).await.expect("all").len(), ids.len());
        assert_eq!(audit_count(s, "certificate.revoke").await, ids.len() as i64);
    }
}

#[tokio::test]
async fn renew_now_pulls_the_renewal_window_into_the_past() {
    for t in testkit::all().await {
        let s = &t.store;
        let ca = issuer(s).await;
        let (id, serial) = issue(s, &ca, &["ari.example"], None, s.now() + 30 * DAY).await;
        assert_eq!(s.certificate(id).await.expect("row").renewal_due_at, None);
        s.mark_renewal_due(id, ACTOR).await.expect("mark");
        let due = s.certificate(id).await.expect("row").renewal_due_at.expect("due");
        assert!(due <= s.now() && due > s.now() - 60);
        assert_eq!(s.serial_status(&ca.1, &serial).await.expect("status"), SerialStatus::Good, "not revoked");
        assert!(matches!(
            s.mark_renewal_due(CertificateId(id.get() + 1000), ACTOR).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(audit_count(s, "certificate.renewal_due").await, 1);
    }
}

#[test]
fn serials_are_normalized() {
    assert_eq!(normalize_serial("01:AB:cd").ok().as_deref(), Some("01abcd"));
    assert_eq!(normalize_serial(" 0x01ABCD ").ok().as_deref(), Some("01abcd"));
    for bad in ["", "0x", "abc", "zz", "01 02"] {
        assert!(normalize_serial(bad).is_err(), "{bad:?}");
    }
}
