//! Castellan's ACME server (RFC 8555, with RFC 8737, RFC 8738 and RFC 9773), cut along trust boundaries like
//! Boulder:
//!
//! - [`wfe`] (web front end): the HTTP surface. It checks every request — media type, size, JWS, nonce, url,
//!   account — and renders resources and problem documents. It decides nothing, and reaches state only through
//!   the RA.
//! - [`ra`] (registration authority): the state machine over the store — accounts, orders, authorizations,
//!   finalization, revocation, renewal information. It asks the VA to validate and the authority to issue.
//! - [`validation`] (the VA): the only part that reaches out to the network, to prove control of identifiers.
//! - [`problem`]: every ACME problem type and its HTTP status, in one place.

pub mod config;
pub mod problem;
pub mod ra;
pub mod validation;
pub mod wfe;

pub use config::AcmeConfig;
pub use ra::Ra;

use castellan_authority::Authority;
use std::sync::Arc;

/// Builds the ACME routes (under /acme) over the authority and a validator, and starts the RA's background work
/// (closing what a dead replica left unfinished, purging expired nonces). Call from within a Tokio runtime.
pub fn router(authority: Authority, validator: validation::Validator, config: AcmeConfig) -> axum::Router {
    let config = Arc::new(config);
    let ra = Ra::new(authority, validator, Arc::clone(&config));
    ra.start_background_work();
    wfe::router(Arc::new(wfe::Wfe::new(ra, config)))
}
