//! The issuer's full CRL: read from the store page by page, numbered by the store (monotonic across restarts and
//! replicas), signed by the issuing key in the HSM, and kept in memory for HTTP.
//!
//! It is re-signed when the revocation watch says something was revoked (at most `crl_batch_secs` later, so a
//! burst of revocations shares one signature) and every `crl_refresh_secs` regardless, well before its nextUpdate.

use super::{StatusConfig, StatusError};
use axum::body::Bytes;
use castellan_authority::Authority;
use castellan_authority::clock::{system_time, unix_seconds as unix};
use castellan_ca::crl::{CrlParams, RevocationReason, RevokedEntry, sign_crl, to_der};
use castellan_hsm::HsmSignature;
use castellan_store::Store;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use x509_cert::serial_number::SerialNumber;

/// Revocations read from the store per query. Large, because PostgreSQL may answer each page with one scan of
/// the certificates table (a hash join); 50,000 rows are a few megabytes.
const PAGE: i64 = 50_000;
/// CRL numbers are per (issuer, shard); this CRL covers the whole issuer.
const FULL_CRL_SHARD: i64 = 0;
/// How often the regeneration loop looks at whether a CRL is due.
const TICK: Duration = Duration::from_millis(500);

/// A signed CRL as served.
#[derive(Clone, Debug)]
pub struct PublishedCrl {
    pub der: Bytes,
    pub number: i64,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    pub entries: usize,
    /// The revocation epoch it was built from.
    pub epoch: i64,
}

pub struct CrlPublisher {
    authority: Authority,
    store: Store,
    config: Arc<StatusConfig>,
    current: RwLock<Option<Arc<PublishedCrl>>>,
    /// The newest revocation epoch the watch has seen; a CRL built from an older one is due.
    wanted_epoch: AtomicI64,
}

impl CrlPublisher {
    pub(crate) fn new(authority: Authority, config: Arc<StatusConfig>) -> CrlPublisher {
        let store = authority.store().clone();
        CrlPublisher { authority, store, config, current: RwLock::new(None), wanted_epoch: AtomicI64::new(0) }
    }

    /// The CRL being served. Before the first one is signed (never, once `Status::start` returned) this would be
    /// an empty placeholder; `start` signs one first, so callers always get a real CRL.
    pub fn current(&self) -> Arc<PublishedCrl> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.clone().unwrap_or_else(|| {
            Arc::new(PublishedCrl {
                der: Bytes::new(),
                number: 0,
                this_update: SystemTime::UNIX_EPOCH,
                next_update: SystemTime::UNIX_EPOCH,
                entries: 0,
                epoch: 0,
            })
        })
    }

    pub(crate) fn max_age_secs(&self) -> u64 {
        self.config.crl_max_age_secs
    }

    /// Told by the watch that revocations up to `epoch` exist.
    pub(crate) fn revoked_up_to(&self, epoch: i64) {
        self.wanted_epoch.fetch_max(epoch, Ordering::Relaxed);
    }

    /// Builds, numbers and signs a new CRL from the store, and serves it.
    pub async fn regenerate(&self) -> Result<Arc<PublishedCrl>, StatusError> {
        // Another replica may number a CRL from newer revocations between our read and our numbering: read again.
        for _ in 0..5 {
            let epoch = self.store.revocation_epoch().await?;
            let now = self.authority.clock().now();
            let entries = self.entries(now).await?;
            let issuer_id = self.authority.ca().issuer_id;
            let Some(number) = self.store.next_crl_number(issuer_id, FULL_CRL_SHARD, epoch).await? else {
                continue;
            };
            let next_update = now + Duration::from_secs(self.config.crl_next_update_secs);
            let ca = Arc::clone(self.authority.ca());
            let count = entries.len();
            let started = Instant::now();
            let der = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, StatusError> {
                let params = CrlParams {
                    issuer: ca.issuer.certificate(),
                    crl_number: u128::try_from(number).unwrap_or(0),
                    this_update: now,
                    next_update,
                    entries: &entries,
                    issuing_distribution_point: None,
                };
                Ok(to_der(&sign_crl::<_, HsmSignature>(&params, ca.issuer.signer())?)?)
            })
            .await??;
            let published = Arc::new(PublishedCrl {
                der: Bytes::from(der),
                number,
                this_update: now,
                next_update,
                entries: count,
                epoch,
            });
            tracing::info!(number, entries = count, ms = started.elapsed().as_millis() as u64, "signed the CRL");
            self.revoked_up_to(epoch);
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&published));
            return Ok(published);
        }
        Err(StatusError::CrlNumberContention)
    }

    /// Every revoked certificate of this issuer still worth listing, in id order.
    async fn entries(&self, now: SystemTime) -> Result<Vec<RevokedEntry>, StatusError> {
        let cutoff = unix(now).saturating_sub(i64::try_from(self.config.crl_retain_expired_secs).unwrap_or(i64::MAX));
        let mut entries = Vec::new();
        let mut after = Some(0);
        while let Some(after_id) = after {
            let page = self.store.revoked_entries(&self.authority.ca().issuer_key_id, cutoff, after_id, PAGE).await?;
            for row in &page.entries {
                entries.push(entry(row)?);
            }
            after = page.next_after;
        }
        Ok(entries)
    }

    /// Re-signs whenever revocations are waiting (after `crl_batch_secs`) or the CRL is `crl_refresh_secs` old.
    /// Runs until the process ends; a failure is logged and retried on the next tick.
    pub(crate) async fn regenerate_forever(self: Arc<Self>) {
        let batch = Duration::from_secs(self.config.crl_batch_secs);
        let refresh = Duration::from_secs(self.config.crl_refresh_secs);
        let mut waiting_since: Option<Instant> = None;
        let mut last_failure: Option<Instant> = None;
        loop {
            tokio::time::sleep(TICK).await;
            let current = self.current();
            let age = self.authority.clock().now().duration_since(current.this_update).unwrap_or_default();
            let behind = self.wanted_epoch.load(Ordering::Relaxed) > current.epoch;
            if behind && waiting_since.is_none() {
                waiting_since = Some(Instant::now());
            }
            let batch_done = waiting_since.is_some_and(|since| since.elapsed() >= batch);
            let retry_ok = last_failure.is_none_or(|at| at.elapsed() >= Duration::from_secs(5));
            if !(batch_done || age >= refresh) || !retry_ok {
                continue;
            }
            match self.regenerate().await {
                Ok(_) => {
                    waiting_since = None;
                    last_failure = None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "signing the CRL failed; retrying");
                    last_failure = Some(Instant::now());
                }
            }
        }
    }
}

/// A store row as a CRL entry. removeFromCRL belongs only in delta CRLs and certificateHold is never stored by
/// Castellan's own paths; a stored 8 is listed without a reason rather than making every future CRL unsignable.
fn entry(row: &castellan_store::revocation::RevokedEntry) -> Result<RevokedEntry, StatusError> {
    let serial = serial_number(&row.serial)?;
    let reason = match u8::try_from(row.reason).ok().and_then(|code| RevocationReason::try_from(code).ok()) {
        Some(RevocationReason::RemoveFromCrl) | None => {
            tracing::warn!(serial = %row.serial, reason = row.reason, "revocation reason not listable; listed without");
            None
        }
        Some(reason) => Some(reason),
    };
    let revoked_at = system_time(row.revoked_at);
    Ok(RevokedEntry { serial, revoked_at, reason })
}

/// The inventory's serial (hex of the DER content octets) as an X.509 serial number.
pub(crate) fn serial_number(hex_serial: &str) -> Result<SerialNumber, StatusError> {
    let bytes = hex::decode(hex_serial).map_err(|_| StatusError::BadSerial(hex_serial.to_owned()))?;
    SerialNumber::new(&bytes).map_err(|_| StatusError::BadSerial(hex_serial.to_owned()))
}
