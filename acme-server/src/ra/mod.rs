//! The registration authority: ACME's state machine over the store. It decides — who may do what to which
//! account, order, authorization and certificate — and asks the VA to validate and the authority to issue. It never
//! speaks HTTP (the WFE does) and never connects out (the VA does).

mod accounts;
mod challenges;
mod eab;
mod finalize;
pub mod identifiers;
pub mod limits;
mod nonces;
mod orders;
pub mod policy;
pub mod recovery;
pub mod renewal_info;
pub mod revocation;

#[cfg(test)]
mod tests;

pub use accounts::NewAccountOutcome;

use crate::config::AcmeConfig;
use crate::problem::AcmeError;
use crate::validation::Validator;
use castellan_authority::{Actor, Authority};
use castellan_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct Ra {
    authority: Authority,
    validator: Validator,
    config: Arc<AcmeConfig>,
    nonces: Arc<nonces::Nonces>,
}

impl Ra {
    pub fn new(authority: Authority, validator: Validator, config: Arc<AcmeConfig>) -> Self {
        let nonces = Arc::new(nonces::Nonces::for_authority(&authority));
        Ra { authority, validator, config, nonces }
    }

    /// The sweep that closes work a dead replica left unfinished, and the purge of expired nonces. Call from
    /// within a Tokio runtime.
    pub fn start_background_work(&self) {
        tokio::spawn(self.clone().close_abandoned_forever());
        tokio::spawn(Arc::clone(&self.nonces).purge_forever());
    }

    fn store(&self) -> &Store {
        self.authority.store()
    }

    /// The process's metrics (the front end counts requests in them).
    pub fn metrics(&self) -> &castellan_authority::metrics::Metrics {
        self.authority.metrics()
    }

    /// Now, in Unix seconds, by the authority's clock.
    pub fn now(&self) -> i64 {
        self.authority.clock().unix()
    }
}

/// Who acted, for the audit log.
pub fn account_actor(account_id: castellan_store::AccountId) -> Actor {
    Actor::acme_account(account_id)
}

/// The store says "not found": answer as the RFC's resource-not-found (404 malformed), which also hides whether
/// another account's resource exists.
pub fn not_found(what: &str) -> AcmeError {
    AcmeError::malformed(format!("{what} does not exist")).with_status(axum::http::StatusCode::NOT_FOUND)
}

/// 32 random bytes, base64url: challenge tokens (RFC 8555 §8.1 asks for at least 128 bits of entropy).
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    castellan_acme_proto::b64::encode(bytes)
}
