//! What the authority can fail with: the lower crates' errors, and refusals a caller can act on.

use castellan_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// The request itself is wrong (a bad name, a reason that is not allowed, a malformed document).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with what exists (a name taken, a certificate already revoked).
    #[error("{0}")]
    Conflict(String),
    /// This process cannot do it (no token to seal with, no CA loaded): say where it can be done.
    #[error("{0}")]
    Unavailable(String),
    #[error("store: {0}")]
    Store(StoreError),
    #[error("HSM: {0}")]
    Hsm(#[from] castellan_hsm::HsmError),
    #[error("CA: {0}")]
    Ca(#[from] castellan_ca::CaError),
    #[error("{path}: {source}")]
    File { path: std::path::PathBuf, source: std::io::Error },
    #[error("a blocking worker failed: {0}")]
    Worker(String),
}

// Not `#[from]` with a source: the store's message already carries its cause.
impl From<StoreError> for AuthorityError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => AuthorityError::NotFound(what),
            StoreError::Conflict { what } => AuthorityError::Conflict(format!("{what} already exists")),
            StoreError::Invalid { what, why } => AuthorityError::Invalid(format!("invalid {what}: {why}")),
            other => AuthorityError::Store(other),
        }
    }
}

impl From<der::Error> for AuthorityError {
    fn from(e: der::Error) -> Self {
        AuthorityError::Ca(castellan_ca::CaError::Der(e))
    }
}

impl From<tokio::task::JoinError> for AuthorityError {
    fn from(e: tokio::task::JoinError) -> Self {
        AuthorityError::Worker(e.to_string())
    }
}

impl AuthorityError {
    pub fn invalid(why: impl Into<String>) -> Self {
        AuthorityError::Invalid(why.into())
    }

    /// A failure of the machinery (database, token, files) rather than of the request.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            AuthorityError::Store(_)
                | AuthorityError::Hsm(_)
                | AuthorityError::Ca(_)
                | AuthorityError::File { .. }
                | AuthorityError::Worker(_)
        )
    }
}

pub type Result<T, E = AuthorityError> = std::result::Result<T, E>;
