//! Operator actions: what people who run the CA do, each rule written once. The admin API (over HTTPS, and the
//! CLI through it, in process or against a server) calls these and nothing else; their answers are the views in
//! [`views`], which serialize the same for the API and for `--json` (hex for hashes, RFC 3339 for times).
//!
//! Every change is audited by the store in the transaction that makes it, with the acting operator.

mod accounts;
mod audit;
mod certificates;
mod domains;
mod groups;
mod tokens;
pub mod views;

pub use certificates::{CertificateSearch, Selector};
pub use domains::{
    DEFAULT_PROFILE, DomainSearch, ExpiringSearch, INTERNAL_ISSUER, NewDomain, ReissueRequest, ReissueView,
};

use crate::Authority;
use crate::error::{AuthorityError, Result};
use castellan_store::Store;

/// Rows per page when a list request does not say, and the most it may ask for.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// The operator actions over a store; those that need the CA's token (issuing from a CSR, sealing EAB keys) also
/// need the [`Authority`], present where the token is.
#[derive(Clone)]
pub struct Operator {
    store: Store,
    authority: Option<Authority>,
    /// The configured policy of the default group, for when the store holds none (`acme.default_policy`).
    default_policy: Option<serde_json::Value>,
}

impl Operator {
    /// Actions on the store alone: everything but issuing and creating EAB credentials.
    pub fn new(store: Store) -> Operator {
        Operator { store, authority: None, default_policy: None }
    }

    /// Every action, the token's included.
    pub fn with_authority(authority: Authority) -> Operator {
        Operator { store: authority.store().clone(), authority: Some(authority), default_policy: None }
    }

    /// The default group's policy from the configuration, used when the store holds none.
    pub fn with_default_policy(mut self, policy: Option<serde_json::Value>) -> Operator {
        self.default_policy = policy;
        self
    }

    /// The Prometheus exposition: this process's counters (where the authority runs) and the state in the store.
    pub async fn metrics(&self) -> Result<String> {
        match &self.authority {
            Some(authority) => authority.metrics().render(&self.store).await,
            None => crate::metrics::Metrics::new().render(&self.store).await,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn authority(&self, what: &str) -> Result<&Authority> {
        self.authority.as_ref().ok_or_else(|| {
            AuthorityError::Unavailable(format!("{what} needs the CA's token, which this process has not opened"))
        })
    }
}

/// A page size: the default when absent, at most [`MAX_LIMIT`].
pub fn page_limit(asked: Option<i64>) -> Result<i64> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(AuthorityError::invalid(format!("limit {n} is not between 1 and {MAX_LIMIT}"))),
    }
}
