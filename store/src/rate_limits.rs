//! Rate limits shared by every replica: GCRA (the generic cell rate algorithm) over one row per bucket.
//!
//! A limit of `count` per `period` with bursts of up to `burst` has an emission interval T = period / count
//! (rounded up to a whole millisecond, so rounding never allows more than the limit) and a tolerance
//! τ = T × (burst − 1). Each bucket stores one number, its theoretical arrival time (TAT, Unix milliseconds): the
//! time at which it would be empty again. A request at `now` sees tat = max(stored, now); if tat − now > τ it is
//! refused, to retry after tat − now − τ, and nothing is stored; otherwise it is allowed and tat + T is stored.
//! So `burst` requests may come at once, then one per T, and a bucket idle for τ + T is full again.
//!
//! Atomic per bucket on both backends: one transaction creates the row if missing and locks it in the same
//! statement (`INSERT … ON CONFLICT DO UPDATE SET tat_ms = tat_ms RETURNING tat_ms`: PostgreSQL's row lock,
//! SQLite's write lock), decides in Rust, and writes the new TAT, so replicas charging one bucket at once are
//! serialized and never allow more than the limit between them. Relaxed durability: a power loss that forgets
//! the last few charges lets a few more requests through, which is what a rate limit can afford; it does not
//! corrupt anything.
//!
//! A bucket whose TAT is in the past behaves exactly like one with no row, so deleting such rows
//! ([`Store::purge_rate_limits`]) changes no decision; it only keeps the table to the buckets in use. Clocks: the
//! caller passes `now_ms`, so replicas whose clocks disagree by d give a client up to d more or less of waiting.

use crate::Store;
use crate::acme::check_text;
use crate::error::{Result, StoreError};
use crate::write::{Durability, WriteTx};
use std::time::Duration;

/// The longest bucket name ("new-order:account:42", "new-account:ip:2001:db8::/48"…).
pub const MAX_BUCKET_LEN: usize = 256;

/// `count` requests per `period`, in bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Limit {
    pub const fn new(count: u32, period: Duration, burst: u32) -> Limit {
        Limit { count, period, burst }
    }

    /// T and τ in milliseconds; Invalid for a limit that allows nothing or has no period.
    fn gcra(&self) -> Result<Gcra> {
        let invalid = |why: &str| Err(StoreError::Invalid { what: "rate limit", why: why.to_owned() });
        if self.count == 0 {
            return invalid("count is 0");
        }
        if self.burst == 0 {
            return invalid("burst is 0");
        }
        let period_ms = self.period.as_millis();
        if period_ms == 0 {
            return invalid("period is shorter than a millisecond");
        }
        let interval_ms = i64::try_from(period_ms.div_ceil(u128::from(self.count))).unwrap_or(i64::MAX);
        let tolerance_ms = interval_ms.saturating_mul(i64::from(self.burst - 1));
        Ok(Gcra { interval_ms, tolerance_ms })
    }
}

/// What a bucket says to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused; the same request would be allowed after `retry_after` (if nothing else charges the bucket).
    Limited {
        retry_after: Duration,
    },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// The algorithm, in whole milliseconds: T (> 0) and τ (≥ 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gcra {
    interval_ms: i64,
    tolerance_ms: i64,
}

/// What [`Gcra::decide`] found: allow and store `tat`, or refuse for `retry_after_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Allow { tat: i64 },
    Refuse { retry_after_ms: i64 },
}

impl Gcra {
    /// One request at `now` against a bucket whose stored TAT is `stored` (None: no row).
    fn decide(self, stored: Option<i64>, now: i64) -> Step {
        let tat = stored.map_or(now, |s| s.max(now));
        let ahead = tat.saturating_sub(now);
        if ahead > self.tolerance_ms {
            Step::Refuse { retry_after_ms: ahead - self.tolerance_ms }
        } else {
            Step::Allow { tat: tat.saturating_add(self.interval_ms) }
        }
    }

    /// Spends one request whatever the bucket says (for attempts counted after the fact, such as failed
    /// validations), but never pushes the TAT past now + τ + T, where a bucket emptied by allowed requests would
    /// be: a flood of failures costs a client one interval of waiting, not one per failure. Never lowers the TAT.
    fn charge(self, stored: Option<i64>, now: i64) -> i64 {
        let tat = stored.map_or(now, |s| s.max(now));
        let ceiling = now.saturating_add(self.tolerance_ms).saturating_add(self.interval_ms);
        tat.saturating_add(self.interval_ms).min(ceiling).max(tat)
    }
}

impl Step {
    fn decision(self) -> Decision {
        match self {
            Step::Allow { .. } => Decision::Allowed,
            Step::Refuse { retry_after_ms } => {
                Decision::Limited { retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0)) }
            }
        }
    }
}

impl Store {
    /// Asks `bucket` for one request at `now_ms` (Unix milliseconds) and, if it is allowed, charges it.
    pub async fn rate_limit(&self, bucket: &str, limit: &Limit, now_ms: i64) -> Result<Decision> {
        let gcra = limit.gcra()?;
        check_bucket(bucket)?;
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let stored = lock_bucket(&mut tx, bucket, now_ms).await?;
        let step = gcra.decide(Some(stored), now_ms);
        match step {
            Step::Allow { tat } => {
                store_tat(&mut tx, bucket, tat).await?;
                tx.commit().await?;
            }
            // Nothing to store: a refused request costs nothing.
            Step::Refuse { .. } => tx.rollback().await?,
        }
        Ok(step.decision())
    }

    /// What [`Store::rate_limit`] would answer now, without charging or writing anything: for limits charged
    /// later with [`Store::rate_limit_charge`] (failed validations: check before, charge on failure).
    pub async fn rate_limit_peek(&self, bucket: &str, limit: &Limit, now_ms: i64) -> Result<Decision> {
        let gcra = limit.gcra()?;
        check_bucket(bucket)?;
        let stored: Option<i64> = sqlx::query_scalar("SELECT tat_ms FROM rate_limits WHERE bucket = $1")
            .bind(bucket)
            .fetch_optional(self.pool())
            .await?;
        Ok(gcra.decide(stored, now_ms).decision())
    }

    /// Charges one request to `bucket` at `now_ms` whether or not the limit allows it, at most up to where a
    /// bucket that had allowed its whole burst would be (see the module documentation).
    pub async fn rate_limit_charge(&self, bucket: &str, limit: &Limit, now_ms: i64) -> Result<()> {
        let gcra = limit.gcra()?;
        check_bucket(bucket)?;
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let stored = lock_bucket(&mut tx, bucket, now_ms).await?;
        store_tat(&mut tx, bucket, gcra.charge(Some(stored), now_ms)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the buckets whose TAT is before `older_than_ms`; pass the current time (or earlier) to drop only
    /// idle buckets, which behave exactly as if they had no row. Returns how many were deleted.
    pub async fn purge_rate_limits(&self, older_than_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let deleted =
            sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1").bind(older_than_ms).execute(&mut **tx).await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}

/// Creates the bucket's row if it has none (with TAT = now, the same as no row) and locks it; returns its TAT.
async fn lock_bucket(tx: &mut WriteTx, bucket: &str, now_ms: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO rate_limits (bucket, tat_ms) VALUES ($1, $2) \
         ON CONFLICT (bucket) DO UPDATE SET tat_ms = rate_limits.tat_ms RETURNING tat_ms",
    )
    .bind(bucket)
    .bind(now_ms)
    .fetch_one(&mut ***tx)
    .await?)
}

async fn store_tat(tx: &mut WriteTx, bucket: &str, tat_ms: i64) -> Result<()> {
    sqlx::query("UPDATE rate_limits SET tat_ms = $1 WHERE bucket = $2")
        .bind(tat_ms)
        .bind(bucket)
        .execute(&mut ***tx)
        .await?;
    Ok(())
}

fn check_bucket(bucket: &str) -> Result<()> {
    check_text("rate limit bucket", bucket)?;
    if bucket.is_empty() || bucket.len() > MAX_BUCKET_LEN {
        return Err(StoreError::Invalid {
            what: "rate limit bucket",
            why: format!("{} bytes, not 1 to {MAX_BUCKET_LEN}", bucket.len()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use std::sync::Arc;

    const SECOND: Duration = Duration::from_secs(1);
    const T0: i64 = 1_700_000_000_000;

    fn gcra(count: u32, period: Duration, burst: u32) -> Gcra {
        Limit::new(count, period, burst).gcra().expect("valid limit")
    }

    fn ms(ms: u64) -> Decision {
        Decision::Limited { retry_after: Duration::from_millis(ms) }
    }

    #[test]
    fn interval_and_tolerance() {
        assert_eq!(gcra(10, SECOND, 1), Gcra { interval_ms: 100, tolerance_ms: 0 });
        assert_eq!(gcra(10, SECOND, 5), Gcra { interval_ms: 100, tolerance_ms: 400 });
        // Rounded up: 3 per second is one per 334 ms, never more than 3 in a second.
        assert_eq!(gcra(3, SECOND, 1).interval_ms, 334);
        // More than one per millisecond: one per millisecond.
        assert_eq!(gcra(5000, SECOND, 2), Gcra { interval_ms: 1, tolerance_ms: 1 });
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(gcra(50, week, 50).interval_ms, 12_096_000);
        for bad in [Limit::new(0, SECOND, 1), Limit::new(1, SECOND, 0), Limit::new(1, Duration::from_micros(999), 1)] {
            assert!(matches!(bad.gcra(), Err(StoreError::Invalid { .. })), "{bad:?}");
        }
        let huge = gcra(1, Duration::MAX, u32::MAX);
        assert_eq!((huge.interval_ms, huge.tolerance_ms), (i64::MAX, i64::MAX));
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let g = gcra(1, SECOND, 3);
        let mut stored = None;
        for _ in 0..3 {
            match g.decide(stored, 0) {
                Step::Allow { tat } => stored = Some(tat),
                refused => panic!("{refused:?}"),
            }
        }
        assert_eq!(stored, Some(3000));
        assert_eq!(g.decide(stored, 0), Step::Refuse { retry_after_ms: 1000 });
        assert_eq!(g.decide(stored, 999), Step::Refuse { retry_after_ms: 1 });
        assert_eq!(g.decide(stored, 1000), Step::Allow { tat: 4000 });
        // Idle long enough, the whole burst is back.
        assert_eq!(g.decide(stored, 3000), Step::Allow { tat: 4000 });
        assert_eq!(g.decide(Some(3000), 1000 + 2000 - 1), Step::Allow { tat: 4000 });
        // A stored TAT in the past counts as none.
        assert_eq!(g.decide(Some(5), 10_000), g.decide(None, 10_000));
    }

    #[test]
    fn steady_requests_at_the_rate_are_never_refused() {
        let g = gcra(10, SECOND, 1);
        let mut stored = None;
        for i in 0..1000 {
            match g.decide(stored, i * 100) {
                Step::Allow { tat } => stored = Some(tat),
                refused => panic!("request {i}: {refused:?}"),
            }
        }
        // One a little early is refused for exactly the difference.
        assert_eq!(g.decide(stored, 1000 * 100 - 7), Step::Refuse { retry_after_ms: 7 });
    }

    #[test]
    fn charging_is_capped_at_an_emptied_bucket_and_never_lowers_the_tat() {
        let g = gcra(1, SECOND, 3);
        let mut tat = None;
        for _ in 0..10 {
            tat = Some(g.charge(tat, 0));
        }
        // Three charges empty the bucket (TAT 3000 = now + τ + T); more do not dig deeper.
        assert_eq!(tat, Some(3000));
        assert_eq!(g.decide(tat, 0), Step::Refuse { retry_after_ms: 1000 });
        // A TAT beyond the cap (a stricter limit before) is left alone.
        assert_eq!(g.charge(Some(9000), 0), 9000);
        assert_eq!(g.charge(None, 500), 1500);
    }

    #[test]
    fn extreme_times_saturate_instead_of_overflowing() {
        let g = gcra(1, SECOND, 2);
        assert_eq!(g.decide(None, i64::MAX), Step::Allow { tat: i64::MAX });
        assert_eq!(g.decide(Some(i64::MAX), i64::MIN), Step::Refuse { retry_after_ms: i64::MAX - 1000 });
        assert_eq!(g.decide(Some(i64::MIN), i64::MIN), Step::Allow { tat: i64::MIN + 1000 });
        assert_eq!(g.charge(Some(i64::MAX), i64::MAX), i64::MAX);
        assert_eq!(Step::Refuse { retry_after_ms: -1 }.decision(), ms(0));
    }

    #[tokio::test]
    async fn exactly_the_burst_then_refused_until_retry_after() {
        let limit = Limit::new(2, SECOND, 4);
        for t in testkit::all().await {
            let s = &t.store;
            for i in 0..4 {
                assert_eq!(s.rate_limit("b", &limit, T0).await.expect("rate limit"), Decision::Allowed, "{i}");
            }
            let refused = s.rate_limit("b", &limit, T0).await.expect("rate limit");
            assert_eq!(refused, ms(500), "{:?}", s.backend());
            // Refusals charge nothing.
            assert_eq!(s.rate_limit("b", &limit, T0 + 100).await.expect("rate limit"), ms(400));
            assert_eq!(s.rate_limit("b", &limit, T0 + 499).await.expect("rate limit"), ms(1));
            assert_eq!(s.rate_limit("b", &limit, T0 + 500).await.expect("rate limit"), Decision::Allowed);
            assert_eq!(s.rate_limit("b", &limit, T0 + 500).await.expect("rate limit"), ms(500));
            // Another bucket is untouched.
            assert!(s.rate_limit("other", &limit, T0).await.expect("rate limit").is_allowed());

            let bad = s.rate_limit("", &limit, T0).await;
            assert!(matches!(bad, Err(StoreError::Invalid { .. })), "{bad:?}");
            let bad = s.rate_limit(&"x".repeat(MAX_BUCKET_LEN + 1), &limit, T0).await;
            assert!(matches!(bad, Err(StoreError::Invalid { .. })), "{bad:?}");
            let bad = s.rate_limit("a\0b", &limit, T0).await;
            assert!(matches!(bad, Err(StoreError::Invalid { .. })), "{bad:?}");
            let bad = s.rate_limit("b", &Limit::new(0, SECOND, 1), T0).await;
            assert!(matches!(bad, Err(StoreError::Invalid { .. })), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn peek_writes_nothing_and_charge_spends_even_when_over() {
        let limit = Limit::new(1, SECOND, 2);
        for t in testkit::all().await {
            let s = &t.store;
            assert_eq!(s.rate_limit_peek("fail", &limit, T0).await.expect("peek"), Decision::Allowed);
            assert_eq!(rows(s).await, 0, "peeking creates no row");
            for _ in 0..5 {
                s.rate_limit_charge("fail", &limit, T0).await.expect("charge");
            }
            assert_eq!(s.rate_limit_peek("fail", &limit, T0).await.expect("peek"), ms(1000));
            assert_eq!(s.rate_limit_peek("fail", &limit, T0).await.expect("peek"), ms(1000), "peek changes nothing");
            assert_eq!(s.rate_limit("fail", &limit, T0).await.expect("rate limit"), ms(1000));
            assert_eq!(s.rate_limit_peek("fail", &limit, T0 + 1000).await.expect("peek"), Decision::Allowed);
        }
    }

    #[tokio::test]
    async fn purge_drops_only_idle_buckets() {
        let limit = Limit::new(1, SECOND, 1);
        for t in testkit::all().await {
            let s = &t.store;
            s.rate_limit("early", &limit, T0).await.expect("rate limit");
            s.rate_limit("late", &limit, T0 + 5000).await.expect("rate limit");
            assert_eq!(s.purge_rate_limits(T0 + 1000).await.expect("purge"), 0, "a TAT equal to now is not past");
            assert_eq!(s.purge_rate_limits(T0 + 1001).await.expect("purge"), 1);
            assert_eq!(rows(s).await, 1);
            // The purged bucket answers as it would have: full.
            assert!(s.rate_limit("early", &limit, T0 + 1001).await.expect("rate limit").is_allowed());
            assert_eq!(s.rate_limit("late", &limit, T0 + 5000).await.expect("rate limit"), ms(1000));
        }
    }

    /// Two replicas (two stores on one database), 16 tasks, one bucket, one instant: exactly `burst` allowed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_replicas_never_exceed_the_burst() {
        const TASKS: usize = 16;
        const TRIES: usize = 4;
        let limit = Limit::new(10, Duration::from_secs(60), 7);
        for t in testkit::all().await {
            let other = Store::open(&t.url).await.expect("second replica");
            let replicas = [t.store.clone(), other.clone()];
            let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let (store, barrier) = (replicas[i % 2].clone(), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let mut allowed = 0;
                        for _ in 0..TRIES {
                            allowed += usize::from(store.rate_limit("shared", &limit, T0).await?.is_allowed());
                        }
                        Ok::<_, StoreError>(allowed)
                    })
                })
                .collect();
            let mut allowed = 0;
            for task in tasks {
                allowed += task.await.expect("task").expect("rate limit");
            }
            assert_eq!(allowed, 7, "{:?}", t.store.backend());
            let tat: i64 = sqlx::query_scalar("SELECT tat_ms FROM rate_limits WHERE bucket = 'shared'")
                .fetch_one(t.store.raw_pool_for_tests())
                .await
                .expect("tat");
            assert_eq!(tat, T0 + 7 * 6000);
            other.close().await;
        }
    }

    async fn rows(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM rate_limits")
            .fetch_one(store.raw_pool_for_tests())
            .await
            .expect("count")
    }
}
