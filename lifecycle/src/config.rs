//! The scheduler's settings (`[lifecycle]` in the configuration file).

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Seconds between passes over the queue. A renewal is done at most this long after it falls due.
    pub tick_secs: u64,
    /// Renewals issued at once by one replica: bounds the load on the token and the issuer.
    pub concurrency: usize,
    /// Renewals claimed per store round trip.
    pub batch: usize,
    /// Seconds a replica holds a claimed renewal before another may take it over.
    pub lease_secs: u64,
    /// The first retry after a failure, in seconds; each further failure doubles it…
    pub backoff_min_secs: u64,
    /// …up to this.
    pub backoff_max_secs: u64,
    /// Seconds between sweeps moving certificates to expiring_soon and expired.
    pub sweep_secs: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick_secs: 1,
            concurrency: 8,
            batch: 64,
            lease_secs: 300,
            backoff_min_secs: 60,
            backoff_max_secs: 6 * 3600,
            sweep_secs: 60,
        }
    }
}

impl SchedulerConfig {
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("tick_secs", self.tick_secs),
            ("lease_secs", self.lease_secs),
            ("backoff_min_secs", self.backoff_min_secs),
            ("sweep_secs", self.sweep_secs),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("lifecycle.{name} must be at least 1"));
        }
        if self.concurrency == 0 || self.batch == 0 {
            return Err("lifecycle.concurrency and lifecycle.batch must be at least 1".into());
        }
        if self.backoff_max_secs < self.backoff_min_secs {
            return Err("lifecycle.backoff_max_secs must not be below backoff_min_secs".into());
        }
        Ok(())
    }
}
