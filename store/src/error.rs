//! What the store can fail with.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?} (expected sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    #[error(
        "the database schema is at version {database}, newer than this castellan knows ({known}): \
         run the castellan release that migrated it, or a newer one"
    )]
    SchemaTooNew { database: i64, known: i64 },
    #[error("migrating the database: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    #[error("the stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
}

// Not `#[from]`: the message already carries sqlx's text, and a source would make error reports repeat it.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl StoreError {
    /// A unique or primary-key constraint refused the write.
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
