//! Castellan's ACME server (RFC 8555, with RFC 8737, RFC 8738 and RFC 9773), cut along trust boundaries like
//! Boulder:
//!
//! - [`wfe`] (web front end): the HTTP surface. It checks every request — media type, size, JWS, nonce, url,
//!   account — and renders resources and problem documents. It decides nothing.
//! - [`ra`] (registration authority): the state machine over the store — accounts, orders, authorizations,
//!   finalization, revocation, renewal information. It asks the VA to validate and the CA to sign.
//! - [`validation`] (the VA): the only part that reaches out to the network, to prove control of identifiers.
//! - [`problem`]: every ACME problem type and its HTTP status, in one place.
//! - [`status`]: revocation status for relying parties — the CRL and the OCSP responder — beside ACME rather than
//!   inside it: it serves anyone, over plain HTTP, and speaks no ACME.

pub mod admin;
pub mod config;
pub mod problem;
pub mod ra;
pub mod status;
pub mod validation;
pub mod wfe;

pub use admin::router as admin_router;
pub use config::AcmeConfig;
pub use ra::{IssuingCa, Ra};

use castellan_store::Store;
use std::sync::Arc;

/// Builds the ACME routes (under /acme) over a store, an issuing CA, a validator and (to verify external account
/// bindings) the token's sealing key, and starts the sweep that closes work a dead replica left unfinished. Call
/// from within a Tokio runtime.
pub fn router(
    store: Store,
    ca: Arc<IssuingCa>,
    validator: validation::Validator,
    config: AcmeConfig,
    eab_keys: Option<ra::eab::EabKeys>,
) -> axum::Router {
    let config = Arc::new(config);
    let ra = Ra::new(store.clone(), ca, validator, Arc::clone(&config), eab_keys);
    tokio::spawn(ra.clone().close_abandoned_forever());
    wfe::router(Arc::new(wfe::Wfe::new(ra, &store, config)))
}
