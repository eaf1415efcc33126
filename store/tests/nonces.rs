//! RFC 8555 anti-replay nonces, on every backend: single use, refusal of unknown, malformed and expired values,
//! the expiry sweep, two replicas racing for one nonce, and uniqueness.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use castellan_store::nonces::MAX_NONCE_LEN;
use castellan_store::testkit::ManualTime;
use castellan_store::{Store, testkit};
use std::collections::HashSet;
use std::time::Duration;

const LIFETIME: Duration = Duration::from_secs(300);

async fn stored(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM nonces").fetch_one(store.raw_pool_for_tests()).await.expect("count")
}

/// Plants a nonce behind the store's back, with the given expiry.
async fn plant(store: &Store, nonce: &str, expires_at: i64) {
    sqlx::query("INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2)")
        .bind(nonce)
        .bind(expires_at)
        .execute(store.raw_pool_for_tests())
        .await
        .expect("insert nonce");
}

#[tokio::test]
async fn a_nonce_is_consumed_once() {
    for t in testkit::all().await {
        let store = &t.store;
        let nonce = store.issue_nonce(LIFETIME).await.expect("issue");
        assert_eq!(nonce.len(), 22, "{nonce}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&nonce).expect("base64url").len(), 16);
        assert_eq!(stored(store).await, 1);

        assert!(store.consume_nonce(&nonce).await.expect("consume"), "{:?}", store.backend());
        assert!(!store.consume_nonce(&nonce).await.expect("consume again"), "{:?}", store.backend());
        assert_eq!(stored(store).await, 0);
    }
}

#[tokio::test]
async fn unknown_and_malformed_nonces_are_refused() {
    for t in testkit::all().await {
        let store = &t.store;
        let issued = store.issue_nonce(LIFETIME).await.expect("issue");

        let mut unknown = issued.clone();
        let last = if unknown.ends_with('A') { "B" } else { "A" };
        unknown.replace_range(unknown.len() - 1.., last);
        let overlong = "A".repeat(MAX_NONCE_LEN + 1);
        let padded = format!("{issued}==");
        let quoted = format!("{issued}' OR '1'='1");
        for bad in [unknown.as_str(), "", &overlong, &padded, &quoted, "a+b/c", "abc\0", "ab c", "ñonce"] {
            assert!(!store.consume_nonce(bad).await.expect("consume"), "{bad:?} on {:?}", store.backend());
        }
        // A malformed value that merely contains the real nonce must not spend it.
        assert!(store.consume_nonce(&issued).await.expect("consume issued"));
    }
}

#[tokio::test]
async fn expired_nonces_are_refused_and_purged() {
    for t in testkit::all().await {
        let store = &t.store;
        let now = store.now();
        plant(store, "expired-a-second-ago", now - 1).await;
        plant(store, "expired-an-hour-ago", now - 3600).await;
        let live = store.issue_nonce(LIFETIME).await.expect("issue");

        assert!(!store.consume_nonce("expired-a-second-ago").await.expect("consume"), "{:?}", store.backend());
        // Refused, not spent: the row stays for the sweep.
        assert_eq!(stored(store).await, 3);

        assert_eq!(store.purge_expired_nonces().await.expect("purge"), 2, "{:?}", store.backend());
        assert_eq!(stored(store).await, 1);
        assert_eq!(store.purge_expired_nonces().await.expect("purge again"), 0);
        assert!(store.consume_nonce(&live).await.expect("consume live"));
    }
}

#[tokio::test]
async fn a_zero_lifetime_nonce_expires() {
    for t in testkit::all().await {
        let time = ManualTime::now();
        let store = &t.store.clone().with_time(time.clone());
        let nonce = store.issue_nonce(Duration::ZERO).await.expect("issue");
        // Valid through the second it was issued in, then expired: move the clock past it.
        time.advance(1);
        assert!(!store.consume_nonce(&nonce).await.expect("consume"), "{:?}", store.backend());
        assert_eq!(store.purge_expired_nonces().await.expect("purge"), 1);
        assert_eq!(stored(store).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn replicas_racing_for_one_nonce_spend_it_once() {
    for t in testkit::all().await {
        // Two stores on one database, as two replicas behind a load balancer.
        let replicas = [Store::open(&t.url).await.expect("open replica a"), Store::open(&t.url).await.expect("b")];
        for round in 0..5 {
            let nonce = replicas[round % 2].issue_nonce(LIFETIME).await.expect("issue");
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let store = replicas[i % 2].clone();
                    let nonce = nonce.clone();
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.consume_nonce(&nonce).await.expect("consume")
                    })
                })
                .collect();
            let mut wins = 0;
            for task in tasks {
                wins += usize::from(task.await.expect("task"));
            }
            assert_eq!(wins, 1, "round {round} on {:?}", t.store.backend());
        }
        for replica in &replicas {
            replica.close().await;
        }
    }
}

#[tokio::test]
async fn nonces_are_unique() {
    for t in testkit::all().await {
        let store = &t.store;
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let nonce = store.issue_nonce(LIFETIME).await.expect("issue");
            assert!(seen.insert(nonce.clone()), "duplicate {nonce} on {:?}", store.backend());
        }
        assert_eq!(stored(store).await, 1000);
    }
}
