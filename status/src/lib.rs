//! Revocation status that relying parties can check: a full CRL per issuer ([`crl`]) and an RFC 6960 OCSP
//! responder ([`ocsp`]) whose delegated signing certificate has its key in the HSM (a
//! `castellan_authority::token_identity`, renewed at two thirds of its life like the server's TLS certificate).
//!
//! This is a trust boundary of its own: it serves anyone, over plain HTTP, speaks no ACME, and changes nothing
//! but what it publishes.
//!
//! Both publish what the store says. Revocations arrive from anywhere — ACME revokeCert on this replica or another,
//! the `castellan revoke` CLI — so every replica polls the store's revocation epoch ([`watch`]) and, when it moves,
//! drops the OCSP responses it cached for the revoked serials and re-signs its CRL within `crl_batch_secs`.
//!
//! The HSM signs a CRL when something was revoked or `crl_refresh_secs` passed, and an OCSP response once per
//! certificate per `ocsp_refresh_secs` (plus one per request that carries a nonce, within a budget): a flood of
//! requests is answered from memory.

pub mod crl;
mod http;
pub mod ocsp;
mod watch;

use castellan_authority::token_identity::{IdentityKind, IdentitySpec, TokenIdentity};
use castellan_authority::urls::{OCSP_PATH, crl_path};
use castellan_authority::{Actor, Authority, AuthorityError, Clock};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A replaced OCSP signing key stays in the token this long: requests being signed with it finish, and replicas
/// sharing the state file (they look every minute) move to the new one first.
const RETIRE_RESPONDER_KEY_AFTER: Duration = Duration::from_secs(5 * 60);

/// How revocation status is published; `castellan.toml`'s `[revocation]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// nextUpdate − thisUpdate of each CRL.
    pub crl_next_update_secs: u64,
    /// A CRL is re-signed at least this often, revocations or not.
    pub crl_refresh_secs: u64,
    /// The longest a revocation waits before it is on a new CRL; revocations in a burst share one CRL.
    pub crl_batch_secs: u64,
    /// How long a revoked certificate stays on the CRL after it expires (RFC 5280 §3.3: at least one CRL after
    /// its expiry must list it).
    pub crl_retain_expired_secs: u64,
    /// Cache-Control max-age of a CRL served over HTTP, at most its remaining time to nextUpdate: short, so caches
    /// in front of Castellan do not hide a revocation for long.
    pub crl_max_age_secs: u64,
    /// nextUpdate − thisUpdate of each OCSP response.
    pub ocsp_next_update_secs: u64,
    /// A cached OCSP response is re-signed once it is this old; also its Cache-Control max-age.
    pub ocsp_refresh_secs: u64,
    /// How many pre-signed responses are kept (one per certificate and CertID hash algorithm asked about; about
    /// 800 bytes each with the responder certificate they carry).
    pub ocsp_cache_entries: usize,
    /// Fresh signatures per second for requests carrying a nonce. Beyond it the cached response, without the
    /// nonce, is sent (RFC 9654 §2.1 lets a responder ignore a nonce); 0 ignores every nonce.
    pub ocsp_nonce_signatures_per_sec: u32,
    /// Lifetime of the delegated OCSP signing certificate; it is renewed after two thirds of it.
    pub responder_lifetime_secs: u64,
    /// How often the store is polled for revocations made elsewhere.
    pub poll_interval_ms: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            crl_next_update_secs: 24 * 3600,
            crl_refresh_secs: 3600,
            crl_batch_secs: 10,
            crl_retain_expired_secs: 7 * 24 * 3600,
            crl_max_age_secs: 60,
            ocsp_next_update_secs: 12 * 3600,
            ocsp_refresh_secs: 3600,
            ocsp_cache_entries: 100_000,
            ocsp_nonce_signatures_per_sec: 500,
            responder_lifetime_secs: 30 * 24 * 3600,
            poll_interval_ms: 2000,
        }
    }
}

impl StatusConfig {
    /// Refuses settings that would publish nothing useful (a CRL due before it is re-signed, and the like).
    pub fn check(&self) -> Result<(), StatusError> {
        let bad = |why: &str| Err(StatusError::Config(why.to_owned()));
        if self.crl_refresh_secs == 0 || self.crl_next_update_secs <= self.crl_refresh_secs {
            return bad("crl_next_update_secs must be longer than crl_refresh_secs (which must not be 0)");
        }
        if self.crl_batch_secs > 60 {
            return bad("crl_batch_secs must be at most 60: a revocation must reach the CRL within a minute");
        }
        if self.ocsp_refresh_secs == 0 || self.ocsp_next_update_secs <= self.ocsp_refresh_secs {
            return bad("ocsp_next_update_secs must be longer than ocsp_refresh_secs (which must not be 0)");
        }
        if self.responder_lifetime_secs > castellan_ca::responder::MAX_RESPONDER_LIFETIME.as_secs() {
            return bad("responder_lifetime_secs must be at most 90 days (the certificate cannot be revoked)");
        }
        if self.responder_lifetime_secs < self.ocsp_next_update_secs.saturating_mul(3) {
            return bad("responder_lifetime_secs must be at least 3 × ocsp_next_update_secs, so every response \
                        signed before the renewal stays verifiable until its nextUpdate");
        }
        if self.poll_interval_ms == 0 {
            return bad("poll_interval_ms must not be 0");
        }
        Ok(())
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("[revocation] configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] castellan_store::StoreError),
    #[error("{0}")]
    Authority(#[from] AuthorityError),
    #[error("CA: {0}")]
    Ca(#[from] castellan_ca::CaError),
    #[error("CRL: {0}")]
    Crl(#[from] castellan_ca::crl::CrlError),
    #[error("OCSP: {0}")]
    Ocsp(#[from] castellan_ca::ocsp::OcspError),
    #[error("the stored serial {0:?} is not hex")]
    BadSerial(String),
    #[error("a blocking worker failed: {0}")]
    Worker(String),
    #[error("another replica keeps numbering CRLs from newer revocations; giving up for now")]
    CrlNumberContention,
}

impl From<tokio::task::JoinError> for StatusError {
    fn from(e: tokio::task::JoinError) -> Self {
        StatusError::Worker(e.to_string())
    }
}

/// What the status service needs from the binary.
pub struct StatusSetup {
    pub authority: Authority,
    pub config: StatusConfig,
    /// Where the delegated OCSP signing certificate is remembered across restarts (public data only).
    pub state_dir: PathBuf,
    /// The URLs certificates carry; when their paths differ from [`crl_path`] and [`OCSP_PATH`], those paths are
    /// served as well.
    pub crl_url: Option<String>,
    pub ocsp_url: Option<String>,
}

/// The running status service; cheap to clone.
#[derive(Clone)]
pub struct Status {
    pub(crate) crl: Arc<crl::CrlPublisher>,
    pub(crate) ocsp: Arc<ocsp::OcspService>,
    crl_paths: Vec<String>,
    ocsp_paths: Vec<String>,
    clock: Clock,
}

impl Status {
    /// Loads or issues the OCSP signing certificate, signs the first CRL, and starts the background tasks (the
    /// revocation watch, CRL regeneration, responder renewal). Call from within a Tokio runtime.
    pub async fn start(setup: StatusSetup) -> Result<Status, StatusError> {
        setup.config.check()?;
        let config = Arc::new(setup.config);
        let authority = setup.authority;
        let store = authority.store().clone();
        let responder = TokenIdentity::load_or_issue(
            authority.clone(),
            IdentitySpec {
                kind: IdentityKind::OcspResponder,
                label_prefix: "castellan-ocsp",
                lifetime: Duration::from_secs(config.responder_lifetime_secs),
                state_file: setup.state_dir.join("responder.json"),
                retire_after: RETIRE_RESPONDER_KEY_AFTER,
                actor: Actor::castellan("ocsp"),
                name: "the OCSP signing certificate",
            },
        )
        .await?;
        let ocsp = Arc::new(ocsp::OcspService::new(&authority, Arc::clone(&responder), Arc::clone(&config))?);
        let crl = Arc::new(crl::CrlPublisher::new(authority.clone(), Arc::clone(&config)));
        let epoch = store.revocation_epoch().await?;
        crl.regenerate().await?;

        // Responses signed with a replaced key are dropped, so none outlives its signer's retirement.
        let mut rotations = responder.subscribe();
        let ocsp_for_rotation = Arc::clone(&ocsp);
        tokio::spawn(async move {
            while rotations.changed().await.is_ok() {
                ocsp_for_rotation.clear();
            }
        });
        tokio::spawn(Arc::clone(&responder).renew_forever());
        let issuer_key_id = authority.ca().issuer_key_id.clone();
        let watch =
            watch::watch(store, epoch, issuer_key_id, Arc::clone(&crl), Arc::clone(&ocsp), config.poll_interval());
        tokio::spawn(watch);
        tokio::spawn(Arc::clone(&crl).regenerate_forever());

        let mut crl_paths = vec![crl_path(&authority.ca().issuer_key_id)];
        let crl_alias = setup.crl_url.as_deref().and_then(url_path);
        crl_paths.extend(crl_alias.filter(|p| !crl_paths.contains(p) && p != OCSP_PATH));
        let mut ocsp_paths = vec![OCSP_PATH.to_owned()];
        let ocsp_alias = setup.ocsp_url.as_deref().and_then(url_path);
        ocsp_paths.extend(ocsp_alias.filter(|p| p != OCSP_PATH && !crl_paths.contains(p)));
        Ok(Status { crl, ocsp, crl_paths, ocsp_paths, clock: authority.clock().clone() })
    }

    /// The HTTP routes: the CRL at each of its paths, OCSP (POST, and GET with the request in the path) at each
    /// of its own.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone(), &self.crl_paths, &self.ocsp_paths)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// HSM signatures made for OCSP responses since start (for tests and logs).
    pub fn ocsp_signatures(&self) -> u64 {
        self.ocsp.signatures()
    }

    /// The CRL currently served, DER.
    pub fn current_crl(&self) -> Arc<crl::PublishedCrl> {
        self.crl.current()
    }

    /// Reads the revocations, numbers and signs a new CRL now, and serves it (for benchmarks and tests; the
    /// background task does this on its own).
    pub async fn regenerate_crl(&self) -> Result<Arc<crl::PublishedCrl>, StatusError> {
        self.crl.regenerate().await
    }

    /// Answers one DER OCSP request as the HTTP routes do (for benchmarks and tests).
    pub async fn answer_ocsp(&self, request: &[u8]) -> ocsp::OcspReply {
        self.ocsp.respond(request).await
    }
}

/// The path of an http(s) URL ("http://ca.example/crl/1.crl" → "/crl/1.crl"), if it has one.
fn url_path(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    (path.len() > 1).then(|| path.to_owned())
}

#[cfg(test)]
mod tests;
