//! Time, injected: every "now" and every wait for time to pass in Castellan goes through a [`Clock`].
//!
//! Production runs on the system clock. Unit tests use a manual clock that stands still until the test advances
//! it, so "renew at two thirds of the lifetime" is tested by moving the clock, not by sleeping. End-to-end tests
//! drive the real binary with a shifted clock (the system clock plus an offset the test moves forward, read from
//! the file `CASTELLAN_FAKE_CLOCK` names, as Boulder's integration tests use `FAKECLOCK`).
//!
//! Waits ([`Clock::sleep_until`]) wake when their deadline passes on this clock, whichever kind it is: a test that
//! advances the clock wakes every task waiting for a time it moved past.
//!
//! What stays on tokio's timers: bounds on latency (how long a request waits for a validation, a TLS handshake
//! timeout) and polling periods. Those measure how long the process waits, not what time it is.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The longest a waiting task sleeps before it reads the clock again: a suspended machine, or a system clock that
/// was set, is noticed within this long.
const LONGEST_NAP: Duration = Duration::from_secs(60);

/// How often a shifted clock reads its file to wake waiting tasks after the offset moved.
const SHIFT_POLL: Duration = Duration::from_millis(50);

/// A source of the current time; cheap to clone (clones share the time).
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

struct Inner {
    kind: Kind,
    /// Bumped whenever a test moves the clock, so waiting tasks read it again at once.
    moved: watch::Sender<u64>,
}

enum Kind {
    System,
    /// Stands still until advanced.
    Manual(Mutex<SystemTime>),
    /// The system clock plus an offset in whole seconds, read from a file on every look (test runs only: the file
    /// is tiny and a test binary's speed does not matter).
    Shifted {
        file: PathBuf,
        last_offset: Mutex<u64>,
    },
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner.kind {
            Kind::System => "system",
            Kind::Manual(_) => "manual",
            Kind::Shifted { .. } => "shifted",
        };
        f.debug_struct("Clock").field("kind", &kind).field("now", &self.now()).finish()
    }
}

impl Clock {
    fn with(kind: Kind) -> Clock {
        Clock { inner: Arc::new(Inner { kind, moved: watch::channel(0).0 }) }
    }

    /// The system clock.
    pub fn system() -> Clock {
        Clock::with(Kind::System)
    }

    /// A clock that reads `start` until a test advances it.
    pub fn manual(start: SystemTime) -> Clock {
        Clock::with(Kind::Manual(Mutex::new(start)))
    }

    /// A manual clock at the current time, truncated to whole seconds (as the store keeps time), so comparisons
    /// between what a test computes and what the store wrote are exact.
    pub fn manual_now() -> Clock {
        Clock::manual(system_time(unix_seconds(SystemTime::now())))
    }

    /// The system clock shifted forward by the whole seconds written in `file` (absent or unreadable: no shift).
    /// Start [`Clock::watch_shift`] on a runtime so waiting tasks notice when the file changes.
    pub fn shifted(file: PathBuf) -> Clock {
        Clock::with(Kind::Shifted { file, last_offset: Mutex::new(0) })
    }

    /// Whether this is the system clock (anything else is a test's).
    pub fn is_system(&self) -> bool {
        matches!(self.inner.kind, Kind::System)
    }

    pub fn now(&self) -> SystemTime {
        match &self.inner.kind {
            Kind::System => SystemTime::now(),
            Kind::Manual(now) => *now.lock().unwrap_or_else(|p| p.into_inner()),
            Kind::Shifted { file, .. } => SystemTime::now() + Duration::from_secs(read_offset(file)),
        }
    }

    /// Now, in Unix seconds (the store's unit).
    pub fn unix(&self) -> i64 {
        unix_seconds(self.now())
    }

    /// Now, in Unix milliseconds (rate limits count in them).
    pub fn unix_millis(&self) -> i64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Moves a manual clock forward and wakes every task waiting for a time it passed. On a shifted clock it
    /// moves the offset (and rewrites its file); the system clock cannot be moved, so nothing happens.
    pub fn advance(&self, by: Duration) {
        match &self.inner.kind {
            Kind::System => return,
            Kind::Manual(now) => {
                let mut now = now.lock().unwrap_or_else(|p| p.into_inner());
                *now += by;
            }
            Kind::Shifted { file, .. } => {
                let offset = read_offset(file).saturating_add(by.as_secs());
                // A test's own temporary file: failing to write it is a broken test machine, reported in the log.
                if let Err(e) = std::fs::write(file, offset.to_string()) {
                    tracing::error!(file = %file.display(), error = %e, "could not move the shifted clock");
                }
            }
        }
        self.inner.moved.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until this clock reads `deadline` or later.
    pub async fn sleep_until(&self, deadline: SystemTime) {
        let mut moved = self.inner.moved.subscribe();
        loop {
            let Ok(left) = deadline.duration_since(self.now()) else { return };
            if left.is_zero() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(left.min(LONGEST_NAP)) => {}
                changed = moved.changed() => {
                    if changed.is_err() {
                        // No sender left cannot happen while `self` holds one; fall back to plain naps.
                        tokio::time::sleep(left.min(LONGEST_NAP)).await;
                    }
                }
            }
        }
    }

    /// Waits until this clock has moved `by` from now.
    pub async fn sleep(&self, by: Duration) {
        self.sleep_until(self.now() + by).await;
    }

    /// For a shifted clock: reads its file every 50 ms and wakes waiting tasks when the offset changed. Runs until
    /// the process ends; returns at once for other clocks.
    pub async fn watch_shift(self) {
        let Kind::Shifted { file, last_offset } = &self.inner.kind else { return };
        loop {
            tokio::time::sleep(SHIFT_POLL).await;
            let offset = read_offset(file);
            let changed = {
                let mut last = last_offset.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::replace(&mut *last, offset) != offset
            };
            if changed {
                tracing::info!(offset_secs = offset, "the test clock moved");
                self.inner.moved.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

impl castellan_store::TimeSource for Clock {
    fn unix_now(&self) -> i64 {
        self.unix()
    }
}

fn read_offset(file: &std::path::Path) -> u64 {
    std::fs::read_to_string(file).ok().and_then(|text| text.trim().parse().ok()).unwrap_or(0)
}

/// A time as the store keeps it: Unix seconds, saturating (before 1970 is 0).
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Unix seconds as a time (negative is the epoch).
pub fn system_time(unix: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// Unix seconds as RFC 3339 ("2026-12-02T21:09:31Z"), as every API and `--json` output shows times.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_advanced() {
        let clock = Clock::manual_now();
        let start = clock.now();
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "half way is not there yet");
        clock.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woken").expect("joined");
        assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_shifted_clock_reads_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        let clock = Clock::shifted(file.clone());
        let before = clock.unix();
        clock.advance(Duration::from_secs(86_400));
        assert!(clock.unix() >= before + 86_400);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "86400");
        // The waiter notices a change the file made by someone else (the test process, for a server).
        let deadline = clock.now() + Duration::from_secs(7200);
        let waiter = {
            let clock = clock.clone();
            tokio::spawn(clock.clone().watch_shift());
            tokio::spawn(async move { clock.sleep_until(deadline).await })
        };
        std::fs::write(&file, (86_400 + 7200).to_string()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").expect("joined");
    }

    #[test]
    fn unix_conversions_saturate() {
        assert_eq!(unix_seconds(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(system_time(-5), SystemTime::UNIX_EPOCH);
        assert_eq!(unix_seconds(system_time(1_700_000_000)), 1_700_000_000);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
