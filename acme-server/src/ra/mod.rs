//! The registration authority: ACME's state machine over the store. It decides — who may do what to which
//! account, order, authorization and certificate — and asks the VA to validate and the CA to sign. It never
//! speaks HTTP (the WFE does) and never connects out (the VA does).

mod accounts;
mod challenges;
pub mod eab;
mod finalize;
pub mod identifiers;
pub mod issuing;
pub mod limits;
mod orders;
pub mod policy;
pub mod recovery;
pub mod renewal_info;
pub mod revocation;

pub use accounts::NewAccountOutcome;
pub use issuing::IssuingCa;

use crate::config::AcmeConfig;
use crate::problem::AcmeError;
use crate::validation::Validator;
use castellan_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct Ra {
    store: Store,
    ca: Arc<IssuingCa>,
    validator: Validator,
    config: Arc<AcmeConfig>,
    /// None where no token is at hand to unseal EAB keys; bindings are then refused.
    eab_keys: Option<eab::EabKeys>,
}

impl Ra {
    pub fn new(
        store: Store,
        ca: Arc<IssuingCa>,
        validator: Validator,
        config: Arc<AcmeConfig>,
        eab_keys: Option<eab::EabKeys>,
    ) -> Self {
        Ra { store, ca, validator, config, eab_keys }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn ca(&self) -> &IssuingCa {
        &self.ca
    }
}

/// Who acted, for the audit log.
pub fn account_actor(account_id: i64) -> String {
    format!("acme:account:{account_id}")
}

/// The store says "not found": answer as the RFC's resource-not-found (404 malformed), which also hides whether
/// another account's resource exists.
pub fn not_found(what: &str) -> AcmeError {
    AcmeError::malformed(format!("{what} does not exist")).with_status(axum::http::StatusCode::NOT_FOUND)
}

fn now() -> i64 {
    castellan_store::unix_now()
}

/// 32 random bytes, base64url: challenge tokens (RFC 8555 §8.1 asks for at least 128 bits of entropy).
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    castellan_acme_proto::b64::encode(bytes)
}
