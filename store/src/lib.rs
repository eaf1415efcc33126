//! Castellan's persistence: one `Store` over SQLite (the embedded default) or PostgreSQL (shared by replicas),
//! chosen by the database URL. It holds the certificate inventory, the issuers, the hash-chained audit log, and
//! the ACME server's state (accounts, orders, authorizations, challenges, nonces); the policy and distribution
//! tables are in the schema for the issues that fill them. `revocation` feeds CRLs, OCSP and the operator's
//! revocation commands.

pub mod acme;
pub mod admin;
pub mod audit;
mod db;
mod error;
pub mod ids;
pub mod inventory;
pub mod lifecycle;
pub mod nonces;
pub mod rate_limits;
pub mod revocation;
mod write;

#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;

pub use db::{Backend, known_schema_version, redact};
pub use error::{Result, StoreError};
pub use ids::{
    AccountId, AuthorizationId, CertificateId, ChallengeId, GroupId, IssuerId, ManagedId, OrderId, RotationId, TokenId,
};

use sqlx::AnyPool;
use std::sync::Arc;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's writers queue here rather than inside SQLite (see `write.rs`).
    writers: Arc<tokio::sync::Mutex<()>>,
    /// Where "now" comes from for every time the store writes (created_at, revoked_at, expiry checks).
    time: Arc<dyn TimeSource>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// The store's source of the current time, in Unix seconds (its unit of time). The system clock unless
/// [`Store::with_time`] installs another: castellan-authority's clock, which tests move instead of sleeping.
pub trait TimeSource: Send + Sync + 'static {
    fn unix_now(&self) -> i64;
}

/// The system clock.
pub struct SystemTime;

impl TimeSource for SystemTime {
    fn unix_now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

impl Store {
    /// Connects, applies pending migrations, and refuses a schema newer than this build.
    pub async fn open(url: &str) -> Result<Store> {
        let max_connections = match Backend::from_url(url)? {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let (pool, backend) = db::connect(url, max_connections).await?;
        db::migrate(&pool, backend).await?;
        Ok(Store { pool, backend, writers: Default::default(), time: Arc::new(SystemTime) })
    }

    /// The same database, reading the time from `time`.
    pub fn with_time(mut self, time: Arc<dyn TimeSource>) -> Store {
        self.time = time;
        self
    }

    /// Now, as the store writes it.
    /// One round trip to the database: whether it answers (what `/health` reports about the store).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn now(&self) -> i64 {
        self.time.unix_now()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(feature = "testkit")]
impl Store {
    /// The pool itself, for tests that tamper behind the store's back.
    #[doc(hidden)]
    pub fn raw_pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }
}
