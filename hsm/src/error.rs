//! What can go wrong between Castellan and a PKCS#11 token, said precisely enough to act on.

use cryptoki::error::{Error as CkError, RvError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("PKCS#11 module {path} does not exist (install softhsm2 or set hsm.module to your HSM's library)")]
    ModuleNotFound { path: PathBuf },
    #[error("PKCS#11 module {path} could not be loaded: {source}")]
    ModuleLoad { path: PathBuf, source: CkError },
    #[error("no initialised token matches {wanted} (tokens present: {present})")]
    TokenNotFound { wanted: String, present: String },
    #[error("no free slot to initialise a new token in")]
    NoFreeSlot,
    #[error("the PIN could not be read: {0}")]
    PinUnavailable(String),
    #[error("the token rejected the PIN (CKR_PIN_INCORRECT)")]
    WrongPin,
    #[error("the token's PIN is locked after too many wrong attempts")]
    PinLocked,
    #[error("no key labelled {label:?} ({class}) in the token")]
    KeyNotFound { label: String, class: &'static str },
    #[error("a key labelled {label:?} already exists in the token")]
    KeyExists { label: String },
    #[error("unsupported key in the token: {0}")]
    UnsupportedKey(String),
    #[error("the sealed secret is malformed: {0}")]
    SealedMalformed(&'static str),
    #[error("the sealed secret does not open: wrong key, purpose or owner, or it was altered")]
    SealOpenFailed,
    #[error("public key encoding: {0}")]
    Encoding(String),
    #[error("{operation}: {source}")]
    Pkcs11 { operation: &'static str, source: CkError },
    #[error("the HSM worker task failed: {0}")]
    Worker(String),
}

pub type Result<T, E = HsmError> = std::result::Result<T, E>;

impl HsmError {
    /// Wraps a cryptoki error with the operation that failed, so a log line says what Castellan was doing.
    pub(crate) fn pkcs11(operation: &'static str) -> impl FnOnce(CkError) -> HsmError {
        move |source| HsmError::Pkcs11 { operation, source }
    }

    /// The PKCS#11 return value behind this error, if it came from the token.
    pub fn return_value(&self) -> Option<RvError> {
        match self {
            HsmError::Pkcs11 { source: CkError::Pkcs11(rv, _), .. } => Some(*rv),
            HsmError::ModuleLoad { source: CkError::Pkcs11(rv, _), .. } => Some(*rv),
            _ => None,
        }
    }

    /// The session this error came from is no use any more: throw it away, open another, log in again.
    pub(crate) fn session_is_broken(&self) -> bool {
        matches!(
            self.return_value(),
            Some(
                RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::UserNotLoggedIn
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::DeviceError
            )
        )
    }

    /// The token says we are not logged in. Login state belongs to the application, not the session, so every
    /// session on the token lost it at once: log in again rather than trying another session.
    pub(crate) fn login_is_lost(&self) -> bool {
        matches!(self.return_value(), Some(RvError::UserNotLoggedIn))
    }

    /// The device itself went away or failed: every session on it, idle ones included, is dead.
    pub(crate) fn device_is_lost(&self) -> bool {
        matches!(self.return_value(), Some(RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::DeviceError))
    }

    /// The cached object handle went stale (token re-initialised, object re-created): find it again by label.
    pub(crate) fn handle_is_stale(&self) -> bool {
        matches!(self.return_value(), Some(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid))
    }
}
