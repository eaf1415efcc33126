//! The certificate inventory on both backends: the two-step reservation, its behaviour under concurrency, and
//! search with stable cursors.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_store::inventory::{
    CertificateQuery, CertificateRecord, CertificateSource, CertificateStatus, NameMatch, NewCertificate,
};
use castellan_store::{AccountId, CertificateId, Store, StoreError, testkit};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

const DAY: i64 = 86_400;
const ISSUER_KEY: [u8; 20] = [7; 20];

fn random_serial() -> String {
    let mut serial = rand::random::<[u8; 16]>();
    serial[0] &= 0x7f;
    hex::encode(serial)
}

fn cert(names: &[&str], not_after: i64) -> NewCertificate {
    NewCertificate {
        issuer_id: None,
        issuer_key_id: ISSUER_KEY.to_vec(),
        issuer_dn: "CN=Test Intermediate".into(),
        serial: random_serial(),
        source: CertificateSource::InternalAcme,
        profile: Some("tls-server".into()),
        subject: String::new(),
        names: names.iter().map(|n| n.to_string()).collect(),
        tbs_sha256: rand::random::<[u8; 32]>().to_vec(),
        spki_sha256: rand::random::<[u8; 32]>().to_vec(),
        not_before: not_after - 90 * DAY,
        not_after,
        account_id: None,
        owner: None,
        replaces_id: None,
    }
}

/// A fake certificate: what matters to the store is that DER and hash are distinct per certificate.
fn der_for(cert: &NewCertificate) -> (Vec<u8>, Vec<u8>) {
    let der = format!("certificate {}", cert.serial).into_bytes();
    let sha = Sha256::digest(&der).to_vec();
    (der, sha)
}

async fn issue(store: &Store, cert: &NewCertificate) -> CertificateId {
    let (der, sha) = der_for(cert);
    store.insert_certificate(cert, &der, &sha).await.expect("insert certificate")
}

async fn issue_with_status(store: &Store, cert: &NewCertificate, status: CertificateStatus) -> CertificateId {
    let id = issue(store, cert).await;
    if status != CertificateStatus::Active {
        store.set_certificate_status(id, status).await.expect("set status");
    }
    id
}

async fn new_account(store: &Store) -> AccountId {
    sqlx::query_scalar(
        "INSERT INTO accounts (jwk_json, jwk_thumbprint, status, created_at, updated_at) \
         VALUES ('{}', $1, 'valid', $2, $2) RETURNING id",
    )
    .bind(random_serial())
    .bind(store.now())
    .fetch_one(store.raw_pool_for_tests())
    .await
    .expect("insert account")
}

async fn search(store: &Store, q: CertificateQuery) -> Vec<CertificateId> {
    let page = store.search_certificates(&q).await.expect("search");
    assert!(page.next_cursor.is_none(), "expected one page for {q:?}");
    assert!(page.items.iter().all(|c| c.certificate_der.is_none()), "list queries must not fetch DER");
    page.items.iter().map(|c| c.id).collect()
}

fn by_name(name: NameMatch) -> CertificateQuery {
    CertificateQuery { name: Some(name), ..Default::default() }
}

/// Every page of `q`, following cursors with `between` run after each page.
async fn walk<F, Fut>(store: &Store, mut q: CertificateQuery, mut between: F) -> Vec<CertificateRecord>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut all = Vec::new();
    for _ in 0..1000 {
        let page = store.search_certificates(&q).await.expect("page");
        assert!(page.items.len() <= q.limit as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return all,
        }
        between().await;
    }
    panic!("pagination does not end");
}

#[tokio::test]
async fn reserve_then_complete_once_and_serials_are_unique_per_issuer() {
    for t in testkit::all().await {
        let s = &t.store;
        let new = cert(&["DNS:www.example.com"], s.now() + 90 * DAY);
        let id = s.reserve_certificate(&new).await.expect("reserve");

        let pending = s.certificate(id).await.expect("pending row");
        assert_eq!(pending.status, CertificateStatus::Pending);
        assert_eq!(pending.serial, new.serial);
        assert_eq!(pending.tbs_sha256, new.tbs_sha256);
        assert_eq!((pending.certificate_der, pending.cert_sha256), (None, None));

        let (der, sha) = der_for(&new);
        s.complete_certificate(id, &der, &sha).await.expect("complete");
        let active = s.certificate(id).await.expect("active row");
        assert_eq!(active.status, CertificateStatus::Active);
        assert_eq!(active.certificate_der.as_deref(), Some(der.as_slice()));
        assert_eq!(active.cert_sha256.as_deref(), Some(sha.as_slice()));

        let again = s.complete_certificate(id, &der, &sha).await.expect_err("completing twice");
        assert!(matches!(again, StoreError::Conflict { .. }), "{:?}: {again}", s.backend());

        // The same serial under the same issuer key: refused by the database's UNIQUE (issuer_key_id, serial).
        let mut reused = cert(&["DNS:other.example.com"], s.now() + 90 * DAY);
        reused.serial = new.serial.clone();
        let err = s.reserve_certificate(&reused).await.expect_err("same serial twice");
        assert!(matches!(err, StoreError::Conflict { .. }), "{:?}: {err}", s.backend());
        let direct = sqlx::query(
            "INSERT INTO certificates (issuer_key_id, issuer_dn, serial, status, source, subject, sans_json, \
             tbs_sha256, spki_sha256, not_before, not_after, created_at, updated_at) \
             VALUES ($1, 'x', $2, 'pending', 'discovered', '', '[]', $3, $3, 0, 0, 0, 0)",
        )
        .bind(ISSUER_KEY.to_vec())
        .bind(new.serial.clone())
        .bind(vec![0u8; 32])
        .execute(s.raw_pool_for_tests())
        .await;
        assert!(direct.is_err(), "{:?}: the database itself must refuse a reused serial", s.backend());

        // Another issuer key may use the same serial.
        reused.issuer_key_id = vec![8; 20];
        s.reserve_certificate(&reused).await.expect("same serial, other issuer");
        assert_eq!(s.certificate_count().await.unwrap(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_lose_nothing_and_a_raced_serial_is_won_once() {
    const TASKS: usize = 16;
    const EACH: usize = 50;
    const RACERS: usize = 8;
    for t in testkit::all().await {
        let store = t.store.clone();
        let raced = random_serial();
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let (store, raced, barrier) = (store.clone(), raced.clone(), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                let mut issued = Vec::new();
                let mut raced_id = None;
                for i in 0..EACH {
                    if i == EACH / 2 {
                        // Half-way, everyone lines up and the first RACERS tasks reserve the same serial at once.
                        barrier.wait().await;
                        if task < RACERS {
                            let mut c = cert(&["DNS:raced.example.com"], store.now() + 30 * DAY);
                            c.serial = raced.clone();
                            match store.reserve_certificate(&c).await {
                                Ok(id) => raced_id = Some(id),
                                Err(StoreError::Conflict { .. }) => {}
                                Err(e) => panic!("raced reservation: {e}"),
                            }
                        }
                    }
                    let c = cert(&[&format!("DNS:t{task}-{i}.example.com")], store.now() + 30 * DAY);
                    let id = store.reserve_certificate(&c).await.expect("reserve");
                    let (der, sha) = der_for(&c);
                    store.complete_certificate(id, &der, &sha).await.expect("complete");
                    issued.push((id, c.serial));
                }
                (issued, raced_id)
            }));
        }
        let mut issued = Vec::new();
        let mut winners = Vec::new();
        for task in tasks {
            let (mine, won) = task.await.expect("task");
            issued.extend(mine);
            winners.extend(won);
        }
        assert_eq!(winners.len(), 1, "{:?}: exactly one reservation of the raced serial wins", store.backend());
        assert_eq!(issued.len(), TASKS * EACH);
        let ids: HashSet<CertificateId> = issued.iter().map(|(id, _)| *id).chain(winners.iter().copied()).collect();
        assert_eq!(ids.len(), TASKS * EACH + 1, "ids are distinct");
        assert_eq!(store.certificate_count().await.unwrap(), (TASKS * EACH + 1) as i64, "nothing lost");
        for (id, serial) in &issued {
            let row = store.certificate(*id).await.expect("row");
            assert_eq!((&row.serial, row.status), (serial, CertificateStatus::Active));
        }
        let duplicates: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT serial FROM certificates GROUP BY issuer_key_id, serial HAVING COUNT(*) > 1) d",
        )
        .fetch_one(store.raw_pool_for_tests())
        .await
        .unwrap();
        assert_eq!(duplicates, 0);
        assert_eq!(store.certificate(winners[0]).await.unwrap().serial, raced);
    }
}

#[tokio::test]
async fn search_by_exact_name_and_suffix() {
    for t in testkit::all().await {
        let s = &t.store;
        let later = s.now() + 60 * DAY;
        let www = issue(s, &cert(&["DNS:www.example.com"], later)).await;
        let apex = issue(s, &cert(&["DNS:example.com", "IP:10.0.0.1"], later)).await;
        let _bad = issue(s, &cert(&["DNS:badexample.com"], later)).await;
        let _dash = issue(s, &cert(&["DNS:foo-example.com"], later)).await;
        let _evil = issue(s, &cert(&["DNS:example.com.evil.net"], later)).await;
        let two = issue(s, &cert(&["DNS:a.example.com", "DNS:b.example.com"], later)).await;
        let wild = issue(s, &cert(&["DNS:*.Example.COM"], later)).await;
        let _org = issue(s, &cert(&["DNS:example.org"], later)).await;
        let uri = issue(s, &cert(&["URI:spiffe://example.com/svc"], later)).await;

        let exact = |n: &str| by_name(NameMatch::Exact(n.into()));
        let suffix = |n: &str| by_name(NameMatch::Suffix(n.into()));
        assert_eq!(search(s, exact("example.com")).await, vec![apex]);
        assert_eq!(search(s, exact("DNS:WWW.Example.com")).await, vec![www]);
        assert_eq!(search(s, exact("IP:10.0.0.1")).await, vec![apex]);
        assert_eq!(search(s, exact("spiffe://example.com/svc")).await, vec![uri]);
        assert_eq!(search(s, exact("*.example.com")).await, vec![wild]);
        assert_eq!(search(s, exact("nothing.example.com")).await, Vec::<CertificateId>::new());

        // Newest first; a certificate with two matching names appears once.
        assert_eq!(search(s, suffix("example.com")).await, vec![wild, two, apex, www], "{:?}", s.backend());
        assert_eq!(search(s, suffix(".Example.com")).await, vec![wild, two, apex, www]);
        assert_eq!(search(s, suffix("www.example.com")).await, vec![www]);
        assert_eq!(search(s, suffix("b.example.com")).await, vec![two]);
        assert_eq!(search(s, suffix("ample.com")).await, Vec::<CertificateId>::new());
        assert_eq!(search(s, suffix("com")).await.len(), 6);

        let err = s.search_certificates(&suffix(".")).await.expect_err("empty suffix");
        assert!(matches!(err, StoreError::Invalid { .. }));
    }
}

#[tokio::test]
async fn search_by_serial_spki_status_and_account() {
    for t in testkit::all().await {
        let s = &t.store;
        let later = s.now() + 60 * DAY;
        let (alice, bob) = (new_account(s).await, new_account(s).await);

        let mut first = cert(&["DNS:a.example.com"], later);
        first.account_id = Some(alice);
        let first_id = issue(s, &first).await;
        // A renewal with the same key.
        let mut renewal = cert(&["DNS:a.example.com"], later + DAY);
        renewal.spki_sha256 = first.spki_sha256.clone();
        renewal.account_id = Some(alice);
        let renewal_id = issue(s, &renewal).await;
        let mut other = cert(&["DNS:b.example.com"], later);
        other.account_id = Some(bob);
        let other_id = issue_with_status(s, &other, CertificateStatus::Revoked).await;
        let pending_id = s.reserve_certificate(&cert(&["DNS:c.example.com"], later)).await.unwrap();

        let q = |f: fn(&mut CertificateQuery)| {
            let mut q = CertificateQuery::default();
            f(&mut q);
            q
        };
        let serial = first.serial.clone();
        let upper = CertificateQuery { serial: Some(serial.to_uppercase()), ..Default::default() };
        assert_eq!(search(s, CertificateQuery { serial: Some(serial), ..Default::default() }).await, vec![first_id]);
        assert_eq!(search(s, upper).await, vec![first_id]);
        let spki = CertificateQuery { spki_sha256: Some(first.spki_sha256.clone()), ..Default::default() };
        assert_eq!(search(s, spki).await, vec![renewal_id, first_id]);
        let err = s.search_certificates(&q(|q| q.spki_sha256 = Some(vec![1, 2, 3]))).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }));

        assert_eq!(search(s, q(|q| q.status = Some(CertificateStatus::Revoked))).await, vec![other_id]);
        assert_eq!(search(s, q(|q| q.status = Some(CertificateStatus::Pending))).await, vec![pending_id]);
        assert_eq!(search(s, q(|q| q.status = Some(CertificateStatus::Active))).await, vec![renewal_id, first_id]);

        let by_account = |a| CertificateQuery { account_id: Some(a), ..Default::default() };
        assert_eq!(search(s, by_account(alice)).await, vec![renewal_id, first_id]);
        assert_eq!(search(s, by_account(bob)).await, vec![other_id]);
        // Filters combine with AND.
        let both = CertificateQuery {
            account_id: Some(alice),
            name: Some(NameMatch::Exact("a.example.com".into())),
            status: Some(CertificateStatus::Revoked),
            ..Default::default()
        };
        assert_eq!(search(s, both).await, Vec::<CertificateId>::new());
        let mixed = CertificateQuery {
            account_id: Some(alice),
            name: Some(NameMatch::Suffix("example.com".into())),
            spki_sha256: Some(first.spki_sha256.clone()),
            ..Default::default()
        };
        assert_eq!(search(s, mixed).await, vec![renewal_id, first_id]);
        // No filter: everything, newest first, pending included.
        assert_eq!(search(s, CertificateQuery::default()).await, vec![pending_id, other_id, renewal_id, first_id]);
    }
}

#[tokio::test]
async fn expiring_within_lists_live_certificates_by_expiry() {
    use CertificateStatus::*;
    for t in testkit::all().await {
        let s = &t.store;
        let now = s.now();
        let at = |days: i64| now + days * DAY;
        let ten = issue(s, &cert(&["DNS:ten.example"], at(10))).await;
        let five = issue(s, &cert(&["DNS:five.example"], at(5))).await;
        let twenty = issue(s, &cert(&["DNS:twenty.example"], at(20))).await;
        let ten_too = issue(s, &cert(&["DNS:ten-too.example"], at(10))).await;
        let renewing = issue_with_status(s, &cert(&["DNS:renewing.example"], at(6)), Renewing).await;
        let soon = issue_with_status(s, &cert(&["DNS:soon.example"], at(7)), ExpiringSoon).await;
        // Outside the window, or not live.
        issue(s, &cert(&["DNS:forty.example"], at(40))).await;
        issue(s, &cert(&["DNS:past.example"], at(-1))).await;
        issue_with_status(s, &cert(&["DNS:expired.example"], at(-2)), Expired).await;
        issue_with_status(s, &cert(&["DNS:revoked.example"], at(3)), Revoked).await;
        issue_with_status(s, &cert(&["DNS:superseded.example"], at(4)), Superseded).await;
        s.reserve_certificate(&cert(&["DNS:pending.example"], at(8))).await.unwrap();

        let expected = vec![five, renewing, soon, ten, ten_too, twenty];
        let q = CertificateQuery { expiring_within: Some(Duration::from_secs(30 * 86_400)), ..Default::default() };
        assert_eq!(search(s, q.clone()).await, expected, "{:?}", s.backend());
        // Page boundaries in the middle of equal not_after values.
        for limit in 1..=4 {
            let pages = walk(s, CertificateQuery { limit, ..q.clone() }, || async {}).await;
            assert_eq!(pages.iter().map(|c| c.id).collect::<Vec<_>>(), expected, "limit {limit}");
        }
        let narrow = CertificateQuery { expiring_within: Some(Duration::from_secs(6 * 86_400)), ..q.clone() };
        assert_eq!(search(s, narrow).await, vec![five, renewing]);
        let with_name = CertificateQuery { name: Some(NameMatch::Suffix("ten-too.example".into())), ..q.clone() };
        assert_eq!(search(s, with_name).await, vec![ten_too]);
        let with_status = CertificateQuery { status: Some(Renewing), ..q };
        assert_eq!(search(s, with_status).await, vec![renewing]);
    }
}

#[tokio::test]
async fn pages_cover_everything_once_in_order_despite_inserts_between_pages() {
    for t in testkit::all().await {
        let s = &t.store;
        let now = s.now();
        let mut originals = Vec::new();
        for i in 0..50 {
            // Expiry within 30 days, with repeats so that ties cross page boundaries.
            let not_after = now + DAY + (i % 17) * DAY;
            originals.push(issue(s, &cert(&[&format!("DNS:host{i}.example.com")], not_after)).await);
        }
        let inserted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let insert_two = || {
            let inserted = Arc::clone(&inserted);
            async move {
                for _ in 0..2 {
                    let not_after = now + DAY + rand::random::<u32>() as i64 % (17 * DAY);
                    let id = issue(s, &cert(&["DNS:late.example.com"], not_after)).await;
                    inserted.lock().unwrap().push(id);
                }
            }
        };

        // Newest first: later inserts are newer than the cursor, so the walk sees exactly the originals.
        let newest = walk(s, CertificateQuery { limit: 7, ..Default::default() }, insert_two).await;
        let ids: Vec<CertificateId> = newest.iter().map(|c| c.id).collect();
        let mut expected = originals.clone();
        expected.reverse();
        assert_eq!(ids, expected, "{:?}", s.backend());

        // Soonest expiry first: each original exactly once, strictly in (not_after, id) order; certificates
        // inserted meanwhile appear or not depending on where they fall relative to the cursor, never twice.
        let q = CertificateQuery {
            expiring_within: Some(Duration::from_secs(30 * 86_400)),
            limit: 7,
            ..Default::default()
        };
        let expiring = walk(s, q, insert_two).await;
        let keys: Vec<(i64, CertificateId)> = expiring.iter().map(|c| (c.not_after, c.id)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "strictly ordered, no repeats");
        let seen: BTreeSet<CertificateId> = expiring.iter().map(|c| c.id).collect();
        assert!(originals.iter().all(|id| seen.contains(id)), "every original once");
        let known: BTreeSet<CertificateId> = originals.iter().chain(inserted.lock().unwrap().iter()).copied().collect();
        assert!(seen.is_subset(&known));
    }
}

#[tokio::test]
async fn malformed_cursors_and_limits_are_invalid() {
    for t in testkit::all().await {
        let s = &t.store;
        for i in 0..3 {
            issue(s, &cert(&[&format!("DNS:{i}.example.com")], s.now() + 10 * DAY)).await;
        }
        let first = s.search_certificates(&CertificateQuery { limit: 2, ..Default::default() }).await.unwrap();
        let newest_cursor = first.next_cursor.expect("a second page");
        let expiring = CertificateQuery {
            expiring_within: Some(Duration::from_secs(30 * 86_400)),
            limit: 2,
            ..Default::default()
        };
        let expiring_cursor = s.search_certificates(&expiring).await.unwrap().next_cursor.expect("a second page");

        let mut bad = vec![
            (CertificateQuery { cursor: Some("not a cursor!".into()), ..Default::default() }, "garbage"),
            (CertificateQuery { cursor: Some("djE6aWQ6eA".into()), ..Default::default() }, "v1:id:x"),
            (CertificateQuery { cursor: Some(String::new()), ..Default::default() }, "empty"),
            (CertificateQuery { limit: 0, ..Default::default() }, "limit 0"),
        ];
        bad.push((CertificateQuery { cursor: Some(newest_cursor.clone()), ..expiring.clone() }, "other order"));
        bad.push((CertificateQuery { cursor: Some(expiring_cursor), ..Default::default() }, "other order"));
        for (q, what) in bad {
            let err = s.search_certificates(&q).await.expect_err(what);
            assert!(matches!(err, StoreError::Invalid { .. }), "{what}: {err}");
        }
        // A well-formed cursor works, and an enormous limit is lowered rather than refused.
        let second = CertificateQuery { limit: 2, cursor: Some(newest_cursor), ..Default::default() };
        assert_eq!(s.search_certificates(&second).await.unwrap().items.len(), 1);
        let huge = CertificateQuery { limit: u32::MAX, ..Default::default() };
        assert_eq!(s.search_certificates(&huge).await.unwrap().items.len(), 3);
    }
}

#[tokio::test]
async fn bulk_insert_is_all_or_nothing_and_indexes_names() {
    for t in testkit::all().await {
        let s = &t.store;
        let rows: Vec<_> = (0..600)
            .map(|i| {
                let c = cert(&[&format!("DNS:bulk{i}.example.net"), "DNS:shared.example.net"], s.now() + DAY);
                let (der, sha) = der_for(&c);
                (c, der, sha)
            })
            .collect();
        let ids = s.insert_certificates_bulk(&rows).await.expect("bulk insert");
        assert_eq!(ids.len(), 600);
        for (i, id) in ids.iter().enumerate().step_by(97) {
            let row = s.certificate(CertificateId(*id)).await.unwrap();
            assert_eq!((row.serial.as_str(), row.status), (rows[i].0.serial.as_str(), CertificateStatus::Active));
            assert_eq!(row.certificate_der.as_deref(), Some(rows[i].1.as_slice()));
        }
        let found = search(s, by_name(NameMatch::Exact("bulk123.example.net".into()))).await;
        assert_eq!(found, vec![CertificateId(ids[123])]);
        let shared = s
            .search_certificates(&CertificateQuery { limit: 1000, ..by_name(NameMatch::Suffix("example.net".into())) })
            .await
            .unwrap();
        assert_eq!(shared.items.len(), 600);

        // A reused serial anywhere in the batch refuses all of it.
        let mut again: Vec<_> = (0..10)
            .map(|_| {
                let c = cert(&["DNS:x.example.net"], s.now() + DAY);
                let (der, sha) = der_for(&c);
                (c, der, sha)
            })
            .collect();
        again[7].0.serial = rows[0].0.serial.clone();
        let err = s.insert_certificates_bulk(&again).await.expect_err("reused serial");
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(s.certificate_count().await.unwrap(), 600);
    }
}

#[tokio::test]
async fn issuance_statuses_cannot_be_set_from_outside_and_failed_rows_stay_dead() {
    for t in testkit::all().await {
        let store = &t.store;
        let now = store.now();
        let live = issue(store, &cert(&["DNS:live.example"], now + 10 * DAY)).await;
        for status in [CertificateStatus::Pending, CertificateStatus::Failed] {
            let err = store.set_certificate_status(live, status).await.expect_err("issuance-only status");
            assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        }
        // A reservation whose signing failed never becomes a live certificate.
        let dead = store.reserve_certificate(&cert(&["DNS:dead.example"], now + 10 * DAY)).await.expect("reserve");
        store.fail_certificate(dead).await.expect("fail");
        assert!(store.set_certificate_status(dead, CertificateStatus::Active).await.is_err());
        assert_eq!(store.certificate(dead).await.expect("row").status, CertificateStatus::Failed);
        assert!(store.complete_certificate(dead, b"x", &[0u8; 32]).await.is_err());
    }
}

#[tokio::test]
async fn a_failed_one_step_insert_leaves_nothing_behind() {
    for t in testkit::all().await {
        let store = &t.store;
        let first = cert(&["DNS:imported.example"], store.now() + DAY);
        let (der, sha) = der_for(&first);
        store.insert_certificate(&first, &der, &sha).await.expect("first import");
        // Same DER again under a new serial: cert_sha256 is unique, so completion fails inside the transaction…
        let mut second = cert(&["DNS:imported.example"], store.now() + DAY);
        second.serial = random_serial();
        assert!(store.insert_certificate(&second, &der, &sha).await.is_err());
        // …and no pending row for the second serial is left to block a corrected import.
        let (der2, sha2) = der_for(&second);
        store.insert_certificate(&second, &der2, &sha2).await.expect("retry with the right DER");
    }
}
