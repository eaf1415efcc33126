//! The OCSP responder (RFC 6960, with the RFC 5019 profile's one-certificate requests): parses a request, looks
//! the certificate up, and answers with a response the delegated OCSP signing key signed.
//!
//! Responses are pre-signed and cached per CertID (hash algorithm, its parameters' encoding and the serial; the
//! issuer hashes are checked to be ours before the cache is consulted): the first request for a certificate costs
//! one HSM signature, every other one until `ocsp_refresh_secs` is a hash map lookup. Concurrent first requests
//! for one certificate wait for a single signature. A revocation drops the entries of its serial (see `watch`); the
//! entry is in the map before its status is read from the store, so an invalidation can never be overtaken by a
//! lookup that started before the revocation committed.
//!
//! A request with a nonce gets a fresh signature echoing it, within `ocsp_nonce_signatures_per_sec`; beyond that
//! budget it gets the cached response without a nonce, so nonces cannot be used to make the HSM sign at will.

use super::{StatusConfig, StatusError};
use axum::body::Bytes;
use castellan_authority::token_identity::TokenIdentity;
use castellan_authority::{Authority, Clock};
use castellan_ca::crl::RevocationReason;
use castellan_ca::ocsp::{
    CertStatusInfo, OcspErrorStatus, SingleResponseInput, error_response, parse_request, sign_response,
};
use castellan_hsm::HsmSignature;
use castellan_store::Store;
use castellan_store::revocation::SerialStatus;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use der::Encode;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{OnceCell, Semaphore};
use x509_ocsp::CertId;

/// The cache is split so that readers of different serials rarely touch the same lock.
const SHARDS: usize = 16;

/// What the HTTP layer sends back: the DER OCSPResponse, and for a cacheable one its validity.
#[derive(Clone, Debug)]
pub struct OcspReply {
    pub der: Bytes,
    pub cache: Option<Validity>,
}

/// How long a cached response may be kept by HTTP caches.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    /// When Castellan re-signs it; HTTP caches should not keep it longer.
    pub refresh_at: SystemTime,
}

impl OcspReply {
    fn error(status: OcspErrorStatus) -> OcspReply {
        OcspReply { der: Bytes::from(error_response(status)), cache: None }
    }
}

/// The issuer's name and key hashed with every algorithm a CertID may use (RFC 6960 §4.1.1), computed once.
struct IssuerHashes {
    by_algorithm: Vec<(ObjectIdentifier, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    fn new(issuer: &x509_cert::Certificate) -> Result<IssuerHashes, StatusError> {
        let name = issuer.tbs_certificate.subject.to_der().map_err(castellan_ca::CaError::from)?;
        let key = issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        type Hash = fn(&[u8]) -> Vec<u8>;
        let sha1: Hash = |d| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, d).as_ref().to_vec();
        let hashes: [(ObjectIdentifier, Hash); 4] = [
            (ID_SHA_1, sha1),
            (ID_SHA_256, |d| Sha256::digest(d).to_vec()),
            (ID_SHA_384, |d| Sha384::digest(d).to_vec()),
            (ID_SHA_512, |d| Sha512::digest(d).to_vec()),
        ];
        Ok(IssuerHashes { by_algorithm: hashes.iter().map(|(oid, hash)| (*oid, hash(&name), hash(key))).collect() })
    }

    /// The index of the CertID's hash algorithm when it names our issuer; None when it does not (or uses
    /// parameters other than absent or NULL).
    fn matches(&self, id: &CertId) -> Option<u8> {
        if id.hash_algorithm.parameters.as_ref().is_some_and(|p| !p.is_null()) {
            return None;
        }
        let (index, (_, name, key)) =
            self.by_algorithm.iter().enumerate().find(|(_, (oid, _, _))| *oid == id.hash_algorithm.oid)?;
        let ours = id.issuer_name_hash.as_bytes() == name.as_slice() && id.issuer_key_hash.as_bytes() == key.as_slice();
        ours.then_some(index as u8)
    }
}

/// The part of a CertID that varies once the issuer is known to be ours.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    algorithm: u8,
    /// The AlgorithmIdentifier's parameters were an explicit NULL (openssl) rather than absent: the response must
    /// repeat the CertID byte for byte.
    null_parameters: bool,
    serial: Box<[u8]>,
}

impl CacheKey {
    fn shard(&self) -> usize {
        self.serial.last().map_or(0, |b| usize::from(*b) % SHARDS)
    }
}

/// A signed response and what it says.
#[derive(Debug)]
struct Cached {
    der: Bytes,
    status: SerialStatus,
    validity: Validity,
}

type Slot = OnceCell<Arc<Cached>>;

struct Shard {
    map: RwLock<HashMap<CacheKey, Arc<Slot>>>,
}

/// A token bucket for nonce signatures.
struct Budget {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl Budget {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_sec).min(self.per_sec);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct OcspService {
    store: Store,
    issuer_key_id: Vec<u8>,
    hashes: IssuerHashes,
    keys: Arc<TokenIdentity>,
    config: Arc<StatusConfig>,
    clock: Clock,
    shards: Vec<Shard>,
    /// Bounds the signatures in flight to what the token's sessions can do at once.
    signing: Semaphore,
    nonce_budget: Mutex<Budget>,
    signatures: AtomicU64,
    metrics: Arc<castellan_authority::metrics::Metrics>,
}

impl OcspService {
    pub(crate) fn new(
        authority: &Authority,
        keys: Arc<TokenIdentity>,
        config: Arc<StatusConfig>,
    ) -> Result<OcspService, StatusError> {
        let per_sec = f64::from(config.ocsp_nonce_signatures_per_sec);
        let ca = authority.ca();
        let sessions = ca.hsm().session_capacity().max(1);
        Ok(OcspService {
            store: authority.store().clone(),
            issuer_key_id: ca.issuer_key_id.clone(),
            hashes: IssuerHashes::new(ca.issuer.certificate())?,
            keys,
            config,
            clock: authority.clock().clone(),
            shards: (0..SHARDS).map(|_| Shard { map: RwLock::new(HashMap::new()) }).collect(),
            signing: Semaphore::new(sessions),
            nonce_budget: Mutex::new(Budget { per_sec, tokens: per_sec, last: Instant::now() }),
            signatures: AtomicU64::new(0),
            metrics: Arc::clone(authority.metrics()),
        })
    }

    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// Answers a DER OCSPRequest. Never fails: what cannot be answered gets an unsigned error status.
    pub async fn respond(&self, request: &[u8]) -> OcspReply {
        let parsed = match parse_request(request) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return OcspReply::error(e.response_status());
            }
        };
        // RFC 5019 §2.1.1: one certificate per request. Answering several would need a signature per combination.
        let [cert_id] = parsed.cert_ids.as_slice() else {
            return OcspReply::error(OcspErrorStatus::MalformedRequest);
        };
        // RFC 6960 §2.3: "unauthorized" when the responder cannot answer for this issuer.
        let Some(algorithm) = self.hashes.matches(cert_id) else {
            return OcspReply::error(OcspErrorStatus::Unauthorized);
        };
        let key = CacheKey {
            algorithm,
            null_parameters: cert_id.hash_algorithm.parameters.is_some(),
            serial: cert_id.serial_number.as_bytes().into(),
        };
        let result = match parsed.nonce {
            Some(nonce) if self.nonce_allowed() => self.fresh(&key, cert_id, &nonce).await,
            _ => self.cached(&key, cert_id).await.map(|c| OcspReply { der: c.der.clone(), cache: Some(c.validity) }),
        };
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "answering an OCSP request failed");
            OcspReply::error(OcspErrorStatus::InternalError)
        })
    }

    fn nonce_allowed(&self) -> bool {
        self.config.ocsp_nonce_signatures_per_sec > 0
            && self.nonce_budget.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The pre-signed response for this CertID, signing it first if there is none or it is due for refresh.
    async fn cached(&self, key: &CacheKey, cert_id: &CertId) -> Result<Arc<Cached>, StatusError> {
        let shard = &self.shards[key.shard()];
        let now = self.clock.now();
        let found = shard.map.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        if let Some(cached) = found.as_ref().and_then(|slot| slot.get()).filter(|c| now < c.validity.refresh_at) {
            self.metrics.ocsp_cache(true);
            return Ok(Arc::clone(cached));
        }
        self.metrics.ocsp_cache(false);
        let slot = {
            let mut map = shard.map.write().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                // Being signed by another request, or signed meanwhile: share it.
                Some(slot) if slot.get().is_none_or(|c| now < c.validity.refresh_at) => Arc::clone(slot),
                _ => {
                    if map.len() >= self.shard_capacity() {
                        evict(&mut map, now);
                    }
                    let slot = Arc::new(Slot::new());
                    map.insert(key.clone(), Arc::clone(&slot));
                    slot
                }
            }
        };
        let signed = slot.get_or_try_init(|| self.sign(cert_id, None, None)).await.map(Arc::clone);
        let keep = signed.as_ref().is_ok_and(|c| c.status != SerialStatus::Pending);
        if !keep {
            // A failure is retried by the next request; a certificate being issued right now is not cached.
            let mut map = shard.map.write().unwrap_or_else(|p| p.into_inner());
            if map.get(key).is_some_and(|current| Arc::ptr_eq(current, &slot)) {
                map.remove(key);
            }
        }
        signed
    }

    /// A response signed now, echoing the nonce. The status comes from the cache when it holds a current one.
    async fn fresh(&self, key: &CacheKey, cert_id: &CertId, nonce: &[u8]) -> Result<OcspReply, StatusError> {
        let now = self.clock.now();
        let known = {
            let map = self.shards[key.shard()].map.read().unwrap_or_else(|p| p.into_inner());
            map.get(key).and_then(|slot| slot.get()).filter(|c| now < c.validity.refresh_at).map(|c| c.status)
        };
        let signed = self.sign(cert_id, known, Some(nonce)).await?;
        Ok(OcspReply { der: signed.der.clone(), cache: None })
    }

    /// Looks the status up (unless given) and has the HSM sign a response.
    async fn sign(
        &self,
        cert_id: &CertId,
        known: Option<SerialStatus>,
        nonce: Option<&[u8]>,
    ) -> Result<Arc<Cached>, StatusError> {
        let status = match known {
            Some(status) => status,
            None => {
                let serial = hex::encode(cert_id.serial_number.as_bytes());
                self.store.serial_status(&self.issuer_key_id, &serial).await?
            }
        };
        let this_update = self.clock.now();
        let next_update = this_update + Duration::from_secs(self.config.ocsp_next_update_secs);
        let refresh_at = this_update + Duration::from_secs(self.config.ocsp_refresh_secs);
        let input = SingleResponseInput {
            cert_id: cert_id.clone(),
            status: cert_status(status),
            this_update,
            next_update: Some(next_update),
        };
        let identity = self.keys.current();
        let nonce = nonce.map(<[u8]>::to_vec);
        let _permit = self.signing.acquire().await.map_err(|e| StatusError::Worker(e.to_string()))?;
        let der = tokio::task::spawn_blocking(move || {
            sign_response::<_, HsmSignature>(
                &identity.certificate,
                &*identity.signer,
                &[input],
                nonce.as_deref(),
                this_update,
            )
        })
        .await??;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Cached {
            der: Bytes::from(der),
            status,
            validity: Validity { this_update, next_update, refresh_at },
        }))
    }

    fn shard_capacity(&self) -> usize {
        (self.config.ocsp_cache_entries / SHARDS).max(1)
    }

    /// Drops the cached responses for these serials (hex, as the store keeps them): they were revoked.
    pub(crate) fn invalidate<'a>(&self, serials: impl IntoIterator<Item = &'a str>) {
        for serial in serials {
            let Ok(bytes) = hex::decode(serial) else { continue };
            // The key holds the serial as the client sent it, which for a DER INTEGER is exactly these octets.
            let mut key = CacheKey { algorithm: 0, null_parameters: false, serial: bytes.into() };
            let mut map = self.shards[key.shard()].map.write().unwrap_or_else(|p| p.into_inner());
            for algorithm in 0..4 {
                for null_parameters in [false, true] {
                    key.algorithm = algorithm;
                    key.null_parameters = null_parameters;
                    map.remove(&key);
                }
            }
        }
    }

    /// Drops every cached response (the signing certificate changed).
    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            shard.map.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}

/// Makes room in a full shard: first everything due for refresh, then, if that freed nothing, an eighth of it
/// (whatever the map yields first — cheap, and a dropped entry only costs one signature when asked for again).
fn evict(map: &mut HashMap<CacheKey, Arc<Slot>>, now: SystemTime) {
    let before = map.len();
    map.retain(|_, slot| slot.get().is_none_or(|c| now < c.validity.refresh_at));
    if map.len() == before {
        let drop: Vec<CacheKey> = map.keys().take((before / 8).max(1)).cloned().collect();
        for key in drop {
            map.remove(&key);
        }
    }
}

fn cert_status(status: SerialStatus) -> CertStatusInfo {
    match status {
        SerialStatus::Good => CertStatusInfo::Good,
        SerialStatus::Pending | SerialStatus::Unknown => CertStatusInfo::Unknown,
        SerialStatus::Revoked { reason, revoked_at } => {
            let reason = u8::try_from(reason).ok().and_then(|code| RevocationReason::try_from(code).ok());
            CertStatusInfo::Revoked {
                at: castellan_authority::clock::system_time(revoked_at),
                // As on the CRL (crl::entry): a stored removeFromCRL is stated without a reason.
                reason: reason.filter(|r| *r != RevocationReason::RemoveFromCrl),
            }
        }
    }
}
