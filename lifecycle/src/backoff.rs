//! How long a failing renewal waits: the minimum after the first failure, doubling with each further one, up to
//! the maximum; with up to a tenth of random jitter, so renewals that failed together (an issuer outage) do not
//! all retry in the same second.

use std::time::Duration;

/// The wait before the next attempt after `failures` consecutive failures (1 after the first).
pub fn retry_delay(failures: i64, min: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    let base = min.saturating_mul(2u32.saturating_pow(doublings)).min(max);
    let jitter = base.mul_f64(rand::random::<f64>() / 10.0);
    base.saturating_sub(jitter).max(min.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_minute_to_six_hours() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(6 * 3600));
        let secs = |n| retry_delay(n, min, max).as_secs();
        assert_eq!(secs(1), 60, "the first retry waits the minimum");
        assert!((108..=120).contains(&secs(2)), "{}", secs(2));
        assert!((216..=240).contains(&secs(3)), "{}", secs(3));
        assert!((19_440..=21_600).contains(&secs(20)), "capped: {}", secs(20));
        assert!((19_440..=21_600).contains(&secs(i64::MAX)), "no overflow");
        assert_eq!(secs(0), 60);
    }
}
