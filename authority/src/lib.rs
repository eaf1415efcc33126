//! The one home for what a certificate authority does, between the lower crates (hsm, ca, store, policy,
//! acme-proto) and the servers (ACME, revocation status, the admin API) and jobs above them:
//!
//! - [`issue`]: the one path to a certificate — reserve, sign in the HSM, record — whoever asks;
//! - [`token_identity`]: the certificates Castellan holds for itself (TLS, OCSP), their keys in the token,
//!   renewed at two thirds of their life;
//! - [`revocation`]: revocation with a typed RFC 5280 reason, and who may give which;
//! - [`sealing`]: secrets kept only sealed under the token's key-encryption key (EAB keys, generated keys);
//! - [`keys`] and [`managed`]: fresh key pairs for managed certificates, issued and recorded with their rotation;
//! - [`renewal`]: when a certificate should be renewed (RFC 9773's window), for ACME clients and Castellan alike;
//! - [`policy`]: the effective issuance policy of a group and the global deny list;
//! - [`operator`]: operator actions (groups, policies, EAB, tokens, revoke, renew-now, inventory, audit), each
//!   rule once, for the CLI and the admin API alike;
//! - [`ca_dir`]: the key ceremony and the CA on disk;
//! - [`clock`]: time, injected, so tests move it instead of sleeping.

pub mod actor;
pub mod ca_dir;
pub mod clock;
mod error;
pub mod files;
pub mod issue;
pub mod issuing;
pub mod keys;
pub mod managed;
pub mod metrics;
pub mod operator;
pub mod policy;
pub mod renewal;
pub mod revocation;
pub mod sealing;
pub mod token_identity;
pub mod urls;

#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;

pub use actor::Actor;
pub use clock::Clock;
pub use error::{AuthorityError, Result};
pub use issue::{Binding, IssuedCertificate, Reservation};
pub use issuing::{IssuingCa, Prepared, Requester};
pub use operator::Operator;

use castellan_store::Store;
use sealing::Sealing;
use std::sync::Arc;

/// The issuing CA with its store and clock; cheap to clone.
#[derive(Clone)]
pub struct Authority {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    ca: Arc<IssuingCa>,
    /// Opened on first use: finding (or creating) the KEK is a token call that most processes never need.
    sealing: tokio::sync::OnceCell<Sealing>,
    metrics: Arc<metrics::Metrics>,
}

impl Authority {
    /// The store is made to read its time from `clock`, so every "now" — the store's included — is one clock.
    pub fn new(store: Store, clock: Clock, ca: IssuingCa) -> Authority {
        let store = store.with_time(Arc::new(clock.clone()));
        Authority {
            inner: Arc::new(Inner {
                store,
                clock,
                ca: Arc::new(ca),
                sealing: Default::default(),
                metrics: Arc::new(metrics::Metrics::new()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// This process's metrics (`/admin/metrics`).
    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        &self.inner.metrics
    }

    pub fn ca(&self) -> &Arc<IssuingCa> {
        &self.inner.ca
    }

    /// The token's sealing key, found or created on first use.
    pub async fn sealing(&self) -> Result<Sealing> {
        let hsm = self.inner.ca.hsm().clone();
        let sealing = self.inner.sealing.get_or_try_init(|| Sealing::open(hsm)).await?;
        Ok(sealing.clone())
    }
}
