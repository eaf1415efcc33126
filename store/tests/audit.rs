//! The hash-chained audit log, on every backend: appending, reading, concurrent appenders, and tampering
//! (with the append-only triggers dropped, as a database owner could) caught by verification.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_store::audit::{self, AuditEntry, AuditEvent, GENESIS_HASH};
use castellan_store::{Backend, Store, StoreError, testkit};
use serde_json::json;

fn event(n: usize) -> AuditEvent {
    AuditEvent::new("admin", "certificate.issue", format!("serial-{n}"))
        .with_details(json!({ "n": n, "names": ["a.example", "b.example"], "profile": "server" }))
}

async fn append(store: &Store, count: usize) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    for n in 0..count {
        out.push(store.audit_append(&event(n)).await.expect("append"));
    }
    out
}

/// Runs SQL behind the store's back.
async fn raw(store: &Store, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql).execute(store.raw_pool_for_tests()).await.map(|r| r.rows_affected())
}

async fn drop_update_trigger(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update",
        Backend::Postgres => "DROP TRIGGER audit_log_no_update ON audit_log",
    };
    raw(store, sql).await.expect("drop the update trigger");
}

/// On PostgreSQL one trigger refuses both UPDATE and DELETE.
async fn drop_delete_trigger(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_delete",
        Backend::Postgres => "DROP TRIGGER audit_log_no_update ON audit_log",
    };
    raw(store, sql).await.expect("drop the delete trigger");
}

#[tokio::test]
async fn an_empty_log_verifies() {
    for t in testkit::all().await {
        let v = t.store.audit_verify().await.expect("verify");
        assert_eq!((v.entries, v.head_hash, v.first_broken), (0, GENESIS_HASH, None), "{:?}", t.store.backend());
        assert!(t.store.audit_tail(10).await.expect("tail").is_empty());
    }
}

#[tokio::test]
async fn appended_entries_verify_and_read_back_as_written() {
    for t in testkit::all().await {
        let written = append(&t.store, 5).await;
        let v = t.store.audit_verify().await.expect("verify");
        assert!(v.is_intact(), "{:?}: {:?}", t.store.backend(), v.first_broken);
        assert_eq!(v.entries, 5);
        assert_eq!(v.head_hash, written[4].hash);

        let read = t.store.audit_page(0, 100).await.expect("page");
        assert_eq!(read, written);
        assert_eq!(read[2].subject, "serial-2");
        assert_eq!(read[2].details["names"][1], "b.example");
    }
}

#[tokio::test]
async fn each_entry_links_to_the_one_before() {
    for t in testkit::all().await {
        let entries = append(&t.store, 4).await;
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        for pair in entries.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash, "entry {}", pair[1].seq);
        }
        // The documented format, recomputed from the entry's own fields.
        for e in &entries {
            let details = audit::canonical_json(&e.details);
            let h = audit::entry_hash(&e.prev_hash, e.seq, e.at, &e.actor, &e.action, &e.subject, &details);
            assert_eq!(h, e.hash, "entry {}", e.seq);
        }
        // Stored details are the canonical text, keys sorted.
        let (stored,): (String,) = sqlx::query_as("SELECT details_json FROM audit_log WHERE seq = 1")
            .fetch_one(t.store.raw_pool_for_tests())
            .await
            .expect("read details_json");
        assert_eq!(stored, r#"{"n":0,"names":["a.example","b.example"],"profile":"server"}"#);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_appenders_get_consecutive_seqs_and_a_valid_chain() {
    const TASKS: usize = 16;
    const EACH: usize = 25;
    for t in testkit::all().await {
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let store = t.store.clone();
            handles.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..EACH {
                    let e = AuditEvent::new(format!("task-{task}"), "test.append", n.to_string());
                    seqs.push(store.audit_append(&e).await.expect("concurrent append").seq);
                }
                seqs
            }));
        }
        let mut seqs = Vec::new();
        for h in handles {
            seqs.extend(h.await.expect("task"));
        }
        seqs.sort_unstable();
        let total = (TASKS * EACH) as i64;
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "{:?}", t.store.backend());

        let v = t.store.audit_verify().await.expect("verify");
        assert!(v.is_intact(), "{:?}: {:?}", t.store.backend(), v.first_broken);
        assert_eq!(v.entries, total);

        // Reading forward page by page sees every entry once, in order.
        let (mut after, mut seen) = (0, 0);
        loop {
            let page = t.store.audit_page(after, 64).await.expect("page");
            let Some(last) = page.last() else { break };
            assert!(page.iter().zip(after + 1..).all(|(e, want)| e.seq == want));
            after = last.seq;
            seen += page.len() as i64;
        }
        assert_eq!(seen, total);
    }
}

#[tokio::test]
async fn the_triggers_refuse_update_delete_and_truncate() {
    for t in testkit::all().await {
        let written = append(&t.store, 3).await;
        let update = raw(&t.store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").await;
        assert!(update.expect_err("update refused").to_string().contains("append-only"));
        let delete = raw(&t.store, "DELETE FROM audit_log WHERE seq = 3").await;
        assert!(delete.expect_err("delete refused").to_string().contains("append-only"));
        if t.store.backend() == Backend::Postgres {
            let truncate = raw(&t.store, "TRUNCATE audit_log").await;
            assert!(truncate.expect_err("truncate refused").to_string().contains("append-only"));
        }
        assert_eq!(t.store.audit_page(0, 10).await.expect("page"), written);
        assert!(t.store.audit_verify().await.expect("verify").is_intact());
    }
}

#[tokio::test]
async fn edited_details_are_reported_at_that_entry() {
    for t in testkit::all().await {
        append(&t.store, 6).await;
        drop_update_trigger(&t.store).await;
        let changed = raw(&t.store, r#"UPDATE audit_log SET details_json = '{"n":99}' WHERE seq = 4"#).await;
        assert_eq!(changed.expect("tamper"), 1);

        let v = t.store.audit_verify().await.expect("verify");
        let broken = v.first_broken.expect("tampering detected");
        assert_eq!(broken.seq, 4, "{:?}: {broken}", t.store.backend());
        assert!(broken.reason.contains("does not match the entry's contents"), "{broken}");
        assert_eq!(v.entries, 6);
    }
}

#[tokio::test]
async fn a_rehashed_entry_breaks_the_next_link() {
    for t in testkit::all().await {
        let entries = append(&t.store, 3).await;
        drop_update_trigger(&t.store).await;
        // Rewrite entry 2 with a hash consistent with its new contents, but leave entry 3 alone.
        let e = &entries[1];
        let details = r#"{"n":99}"#;
        let forged = audit::entry_hash(&e.prev_hash, e.seq, e.at, &e.actor, &e.action, &e.subject, details);
        sqlx::query("UPDATE audit_log SET details_json = $1, hash = $2 WHERE seq = 2")
            .bind(details)
            .bind(forged.to_vec())
            .execute(t.store.raw_pool_for_tests())
            .await
            .expect("forge");

        let broken = t.store.audit_verify().await.expect("verify").first_broken.expect("detected");
        assert_eq!(broken.seq, 3, "{broken}");
        assert!(broken.reason.contains("prev_hash is not entry 2's hash"), "{broken}");
    }
}

#[tokio::test]
async fn deleting_the_newest_entry_is_detected_as_truncation() {
    for t in testkit::all().await {
        append(&t.store, 4).await;
        drop_delete_trigger(&t.store).await;
        assert_eq!(raw(&t.store, "DELETE FROM audit_log WHERE seq = 4").await.expect("delete"), 1);

        let v = t.store.audit_verify().await.expect("verify");
        let broken = v.first_broken.expect("truncation detected");
        assert_eq!(broken.seq, 4, "{:?}: {broken}", t.store.backend());
        assert!(broken.reason.contains("truncated"), "{broken}");
        assert_eq!(v.entries, 3);
    }
}

#[tokio::test]
async fn deleting_an_entry_in_the_middle_is_reported_as_missing() {
    for t in testkit::all().await {
        append(&t.store, 5).await;
        drop_delete_trigger(&t.store).await;
        assert_eq!(raw(&t.store, "DELETE FROM audit_log WHERE seq = 2").await.expect("delete"), 1);

        let broken = t.store.audit_verify().await.expect("verify").first_broken.expect("gap detected");
        assert_eq!(broken.seq, 2, "{broken}");
        assert!(broken.reason.contains("missing"), "{broken}");
    }
}

#[tokio::test]
async fn a_head_rolled_back_behind_the_log_is_detected_and_appending_refuses() {
    for t in testkit::all().await {
        append(&t.store, 3).await;
        raw(&t.store, "UPDATE audit_head SET seq = 2 WHERE id = 1").await.expect("roll the head back");

        let broken = t.store.audit_verify().await.expect("verify").first_broken.expect("detected");
        assert_eq!(broken.seq, 3, "{broken}");
        let err = t.store.audit_append(&event(9)).await.expect_err("seq 3 is taken");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }
}

#[tokio::test]
async fn tail_returns_newest_first_and_page_reads_forward() {
    for t in testkit::all().await {
        append(&t.store, 5).await;
        let seqs = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(t.store.audit_tail(3).await.expect("tail")), [5, 4, 3]);
        assert_eq!(seqs(t.store.audit_tail(100).await.expect("tail")), [5, 4, 3, 2, 1]);
        assert!(t.store.audit_tail(0).await.expect("tail").is_empty());
        assert_eq!(seqs(t.store.audit_page(2, 2).await.expect("page")), [3, 4]);
        assert!(t.store.audit_page(5, 10).await.expect("page").is_empty());
        assert!(matches!(t.store.audit_tail(-1).await, Err(StoreError::Invalid { .. })));
    }
}

#[tokio::test]
async fn an_entry_appended_in_a_transaction_commits_or_rolls_back_with_it() {
    for t in testkit::all().await {
        let pool = t.store.raw_pool_for_tests();

        let mut tx = pool.begin().await.expect("begin");
        let e = audit::audit_append_in(&mut tx, &event(1), t.store.now()).await.expect("append in transaction");
        assert_eq!(e.seq, 1);
        tx.rollback().await.expect("rollback");
        assert!(t.store.audit_tail(10).await.expect("tail").is_empty());
        assert!(t.store.audit_verify().await.expect("verify").is_intact());

        let mut tx = pool.begin().await.expect("begin");
        let e = audit::audit_append_in(&mut tx, &event(2), t.store.now()).await.expect("append in transaction");
        assert_eq!(e.seq, 1, "the rolled-back seq is reused: no gap");
        tx.commit().await.expect("commit");
        assert_eq!(t.store.audit_tail(10).await.expect("tail"), [e]);
        assert!(t.store.audit_verify().await.expect("verify").is_intact());
    }
}

#[tokio::test]
async fn events_with_nul_or_without_actor_are_refused_on_every_backend() {
    for t in testkit::all().await {
        for bad in [
            AuditEvent::new("ad\0min", "x.y", "s"),
            AuditEvent::new("admin", "x.y", "s\0"),
            AuditEvent::new("", "x.y", "s"),
            AuditEvent::new("admin", "", "s"),
        ] {
            let err = t.store.audit_append(&bad).await.expect_err("refused");
            assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        }
        // A NUL inside details is escaped in the JSON text, so it is fine everywhere.
        let ok = AuditEvent::new("admin", "x.y", "").with_details(json!({ "s": "a\u{0}b" }));
        let e = t.store.audit_append(&ok).await.expect("append");
        assert_eq!(t.store.audit_tail(1).await.expect("tail"), [e]);
    }
}

#[tokio::test]
async fn verification_reads_across_pages_of_a_chain_built_from_the_documented_format() {
    // More than one verification page (10,000 rows). The rows are built here from the documented format alone and
    // inserted in bulk, which also shows another tool's chain is one the store accepts and continues.
    const COUNT: i64 = 10_050;
    const BATCH: i64 = 500;
    for t in testkit::all().await {
        let pool = t.store.raw_pool_for_tests();
        let details = r#"{"k":"v"}"#;
        let mut prev = GENESIS_HASH;
        let mut start = 1;
        while start <= COUNT {
            let end = (start + BATCH - 1).min(COUNT);
            let values: Vec<String> = (0..=end - start)
                .map(|i| {
                    let p = i * 8;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO audit_log (seq, at, actor, action, subject, details_json, prev_hash, hash) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for seq in start..=end {
                let hash = audit::entry_hash(&prev, seq, 1_700_000_000 + seq, "tool", "bulk.load", "", details);
                query = query
                    .bind(seq)
                    .bind(1_700_000_000 + seq)
                    .bind("tool")
                    .bind("bulk.load")
                    .bind("")
                    .bind(details)
                    .bind(prev.to_vec())
                    .bind(hash.to_vec());
                prev = hash;
            }
            query.execute(pool).await.expect("bulk insert");
            start = end + 1;
        }
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(COUNT)
            .bind(prev.to_vec())
            .execute(pool)
            .await
            .expect("set the head");

        let v = t.store.audit_verify().await.expect("verify");
        assert!(v.is_intact(), "{:?}: {:?}", t.store.backend(), v.first_broken);
        assert_eq!((v.entries, v.head_hash), (COUNT, prev));
        let next = t.store.audit_append(&event(0)).await.expect("append after the bulk load");
        assert_eq!((next.seq, next.prev_hash), (COUNT + 1, prev));

        drop_update_trigger(&t.store).await;
        raw(&t.store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 10005").await.expect("tamper");
        let v = t.store.audit_verify().await.expect("verify");
        assert_eq!(v.first_broken.map(|b| b.seq), Some(10_005));
        assert_eq!(v.entries, COUNT + 1);
    }
}
