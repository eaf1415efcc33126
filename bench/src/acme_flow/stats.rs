//! What the clients measured: flow latencies, failures by (step, problem type), request counters.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::{ClientCounters, FlowError, Step};

/// One error kind: how often, and the first detail seen (enough to recognise it).
pub struct ErrorCount {
    pub count: u64,
    pub example: String,
}

#[derive(Default)]
pub struct Recorder {
    pub latencies: Vec<Duration>,
    /// When each successful flow ended, from the start of the run.
    pub finished_at: Vec<Duration>,
    pub errors: BTreeMap<(Step, String), ErrorCount>,
    pub counters: ClientCounters,
    pub polls: u64,
    pub connects: u64,
}

impl Recorder {
    pub fn success(&mut self, latency: Duration, finished_at: Duration, polls: u32) {
        self.latencies.push(latency);
        self.finished_at.push(finished_at);
        self.polls += u64::from(polls);
    }

    pub fn failure(&mut self, error: &FlowError) {
        let entry = self.errors.entry(error.key()).or_insert_with(|| ErrorCount { count: 0, example: error.detail() });
        entry.count += 1;
    }

    pub fn failures(&self) -> u64 {
        self.errors.values().map(|e| e.count).sum()
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies.extend(other.latencies);
        self.finished_at.extend(other.finished_at);
        for (key, error) in other.errors {
            match self.errors.get_mut(&key) {
                Some(mine) => mine.count += error.count,
                None => {
                    self.errors.insert(key, error);
                }
            }
        }
        self.counters.requests += other.counters.requests;
        self.counters.bad_nonce_retries += other.counters.bad_nonce_retries;
        self.counters.nonce_fetches += other.counters.nonce_fetches;
        self.polls += other.polls;
        self.connects += other.connects;
    }
}

/// Latency percentiles by nearest rank.
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn percentiles(latencies: &[Duration]) -> Option<Percentiles> {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |p: f64| {
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    let max = *sorted.last()?;
    Some(Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max })
}

/// Completions per `width` interval from the start: shows a server slowing down or stalling during the run.
pub fn per_interval(finished_at: &[Duration], width: Duration) -> Vec<u64> {
    let mut counts = Vec::new();
    for t in finished_at {
        let i = (t.as_secs_f64() / width.as_secs_f64()) as usize;
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] += 1;
    }
    counts
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = percentiles(&v).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (ms_(50), ms_(90), ms_(99), ms_(100)));
        assert!(percentiles(&[]).is_none());
        let one = percentiles(&[ms_(7)]).unwrap();
        assert_eq!((one.p50, one.max), (ms_(7), ms_(7)));
    }

    #[test]
    fn intervals() {
        let t = [ms_(100), ms_(4_900), ms_(5_000), ms_(16_000)];
        assert_eq!(per_interval(&t, Duration::from_secs(5)), vec![2, 1, 0, 1]);
        assert!(per_interval(&[], Duration::from_secs(5)).is_empty());
    }

    fn ms_(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
