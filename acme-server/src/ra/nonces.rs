//! Replay nonces (RFC 8555 §6.5), kept where every server that could see the next request can check them.
//!
//! - On PostgreSQL, replicas share the store, so nonces live in it (`castellan_store::nonces`): a nonce one replica
//!   issued is good on another, and a request replayed to all of them succeeds on exactly one.
//! - On SQLite there is exactly one server process, so nonces live in its memory: two database writes (and two
//!   fsyncs) fewer per ACME request. A restart forgets them; clients answer the `badNonce` with the fresh nonce
//!   it carries, as RFC 8555 §6.5 asks of them.

use super::Ra;
use castellan_authority::{Authority, Clock};
use castellan_store::{Backend, Store, StoreError};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Past this many outstanding nonces, expired ones are swept before another is issued; past twice as many, the
/// oldest are dropped (clients that hoard nonces get badNonce, never the server's memory).
const MEMORY_SWEEP_AT: usize = 100_000;

/// How often nonces the store holds are purged once expired, so the table stays as small as the nonces in flight.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub enum Nonces {
    Memory(MemoryNonces),
    Store(Store),
}

impl Nonces {
    pub fn for_authority(authority: &Authority) -> Nonces {
        match authority.store().backend() {
            Backend::Sqlite => Nonces::Memory(MemoryNonces::new(authority.clock().clone())),
            Backend::Postgres => Nonces::Store(authority.store().clone()),
        }
    }

    /// Deletes expired nonces from the store every minute (memory nonces sweep themselves).
    pub async fn purge_forever(self: Arc<Self>) {
        let Nonces::Store(store) = &*self else { return };
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            if let Err(e) = store.purge_expired_nonces().await {
                tracing::warn!(error = %e, "purging expired nonces failed");
            }
        }
    }

    pub async fn issue(&self, lifetime: Duration) -> Result<String, StoreError> {
        match self {
            Nonces::Memory(memory) => Ok(memory.issue(lifetime)),
            Nonces::Store(store) => store.issue_nonce(lifetime).await,
        }
    }

    /// True exactly once for a nonce issued here and not yet expired.
    pub async fn consume(&self, nonce: &str) -> Result<bool, StoreError> {
        match self {
            Nonces::Memory(memory) => Ok(memory.consume(nonce)),
            Nonces::Store(store) => store.consume_nonce(nonce).await,
        }
    }
}

pub struct MemoryNonces {
    outstanding: Mutex<HashMap<String, SystemTime>>,
    sweep_at: usize,
    clock: Clock,
}

impl MemoryNonces {
    fn new(clock: Clock) -> Self {
        MemoryNonces::with_sweep_at(MEMORY_SWEEP_AT, clock)
    }

    fn with_sweep_at(sweep_at: usize, clock: Clock) -> Self {
        MemoryNonces { outstanding: Mutex::default(), sweep_at, clock }
    }

    fn issue(&self, lifetime: Duration) -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let nonce = castellan_acme_proto::b64::encode(bytes);
        let now = self.clock.now();
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if outstanding.len() >= self.sweep_at {
            outstanding.retain(|_, expires| *expires > now);
        }
        if outstanding.len() >= 2 * self.sweep_at {
            let mut by_expiry: Vec<(String, SystemTime)> = outstanding.drain().collect();
            by_expiry.sort_by_key(|(_, expires)| *expires);
            outstanding.extend(by_expiry.into_iter().skip(self.sweep_at));
        }
        outstanding.insert(nonce.clone(), now + lifetime);
        nonce
    }

    fn consume(&self, nonce: &str) -> bool {
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        outstanding.remove(nonce).is_some_and(|expires| expires > self.clock.now())
    }
}

impl Ra {
    /// A fresh nonce, for every response's Replay-Nonce (RFC 8555 §6.5).
    pub async fn issue_nonce(&self) -> Result<String, StoreError> {
        self.nonces.issue(self.config.nonce_lifetime()).await
    }

    /// True exactly once for a nonce issued by this server (or, on PostgreSQL, any replica) and not expired.
    pub async fn consume_nonce(&self, nonce: &str) -> Result<bool, StoreError> {
        self.nonces.consume(nonce).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_nonces_are_single_use_and_expire() {
        let clock = Clock::manual_now();
        let nonces = MemoryNonces::new(clock.clone());
        let fresh = nonces.issue(Duration::from_secs(60));
        assert_eq!(fresh.len(), 22);
        assert!(nonces.consume(&fresh));
        assert!(!nonces.consume(&fresh), "a second use is refused");
        assert!(!nonces.consume("never-issued"));
        let stale = nonces.issue(Duration::from_secs(60));
        clock.advance(Duration::from_secs(61));
        assert!(!nonces.consume(&stale), "an expired nonce is refused");
    }

    #[test]
    fn memory_nonces_stay_bounded() {
        let clock = Clock::manual_now();
        let nonces = MemoryNonces::with_sweep_at(100, clock.clone());
        for _ in 0..1_000 {
            nonces.issue(Duration::from_secs(60));
        }
        let held = nonces.outstanding.lock().map(|o| o.len()).unwrap_or(0);
        assert!(held <= 200, "{held}");
        // Expired ones go first.
        let nonces = MemoryNonces::with_sweep_at(100, clock.clone());
        for _ in 0..150 {
            nonces.issue(Duration::from_secs(1));
        }
        clock.advance(Duration::from_secs(2));
        let kept = nonces.issue(Duration::from_secs(60));
        assert!(nonces.outstanding.lock().map(|o| o.len()).unwrap_or(0) <= 100);
        assert!(nonces.consume(&kept));
    }
}
