//! Replay nonces (RFC 8555 §6.5), kept where every server that could see the next request can check them.
//!
//! - On PostgreSQL, replicas share the store, so nonces live in it (`castellan_store::nonces`): a nonce one replica
//!   issued is good on another, and a request replayed to all of them succeeds on exactly one.
//! - On SQLite there is exactly one server process, so nonces live in its memory: two database writes (and two
//!   fsyncs) fewer per ACME request. A restart forgets them; clients answer the `badNonce` with the fresh nonce
//!   it carries, as RFC 8555 §6.5 asks of them.

use castellan_store::{Backend, Store, StoreError};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many outstanding nonces, expired ones are swept before another is issued; past twice as many, the
/// oldest are dropped (clients that hoard nonces get badNonce, never the server's memory).
const MEMORY_SWEEP_AT: usize = 100_000;

pub enum Nonces {
    Memory(MemoryNonces),
    Store(Store),
}

impl Nonces {
    pub fn for_store(store: &Store) -> Nonces {
        match store.backend() {
            Backend::Sqlite => Nonces::Memory(MemoryNonces::default()),
            Backend::Postgres => Nonces::Store(store.clone()),
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
    outstanding: Mutex<HashMap<String, Instant>>,
    sweep_at: usize,
}

impl Default for MemoryNonces {
    fn default() -> Self {
        MemoryNonces::with_sweep_at(MEMORY_SWEEP_AT)
    }
}

impl MemoryNonces {
    fn with_sweep_at(sweep_at: usize) -> Self {
        MemoryNonces { outstanding: Mutex::default(), sweep_at }
    }

    fn issue(&self, lifetime: Duration) -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let nonce = castellan_acme_proto::b64::encode(bytes);
        let now = Instant::now();
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if outstanding.len() >= self.sweep_at {
            outstanding.retain(|_, expires| *expires > now);
        }
        if outstanding.len() >= 2 * self.sweep_at {
            let mut by_expiry: Vec<(String, Instant)> = outstanding.drain().collect();
            by_expiry.sort_by_key(|(_, expires)| *expires);
            outstanding.extend(by_expiry.into_iter().skip(self.sweep_at));
        }
        outstanding.insert(nonce.clone(), now + lifetime);
        nonce
    }

    fn consume(&self, nonce: &str) -> bool {
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        outstanding.remove(nonce).is_some_and(|expires| expires > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_nonces_are_single_use_and_expire() {
        let nonces = MemoryNonces::default();
        let fresh = nonces.issue(Duration::from_secs(60));
        assert_eq!(fresh.len(), 22);
        assert!(nonces.consume(&fresh));
        assert!(!nonces.consume(&fresh), "a second use is refused");
        assert!(!nonces.consume("never-issued"));
        let stale = nonces.issue(Duration::ZERO);
        assert!(!nonces.consume(&stale), "an expired nonce is refused");
    }

    #[test]
    fn memory_nonces_stay_bounded() {
        let nonces = MemoryNonces::with_sweep_at(100);
        for _ in 0..1_000 {
            nonces.issue(Duration::from_secs(60));
        }
        let held = nonces.outstanding.lock().map(|o| o.len()).unwrap_or(0);
        assert!(held <= 200, "{held}");
        // Expired ones go first.
        let nonces = MemoryNonces::with_sweep_at(100);
        for _ in 0..150 {
            nonces.issue(Duration::ZERO);
        }
        let kept = nonces.issue(Duration::from_secs(60));
        assert!(nonces.outstanding.lock().map(|o| o.len()).unwrap_or(0) <= 100);
        assert!(nonces.consume(&kept));
    }
}
