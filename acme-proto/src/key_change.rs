//! Checks on keyChange's inner JWS (RFC 8555 §7.3.5). Whether the new key is already some account's key is the
//! server's to check against its store.

use crate::error::JwsError;
use crate::jwk::Jwk;
use crate::jws::{Jws, VerifiedJws};
use crate::types::KeyChange;

/// A key change whose inner JWS passed every check that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKeyChange {
    /// The account URL (the outer "kid").
    pub account: String,
    pub old_key: Jwk,
    pub new_key: Jwk,
}

/// Checks a keyChange request whose outer JWS verified with the account key: the inner JWS (the outer payload)
/// carries its signing key in "jwk", has no nonce, has the outer url, verifies, and names the outer account and key.
pub fn verify_key_change(outer: &VerifiedJws) -> Result<VerifiedKeyChange, JwsError> {
    let account = outer.header().kid().ok_or(JwsError::JwkNotAllowed)?;
    let inner = Jws::from_slice(outer.payload())?;
    if inner.header().nonce.is_some() {
        return Err(JwsError::KeyChangeNonce);
    }
    if inner.header().url != outer.header().url {
        return Err(JwsError::KeyChangeUrlMismatch);
    }
    let inner = inner.verify_embedded()?;
    let change: KeyChange = inner.payload_json()?;
    if change.account != account {
        return Err(JwsError::KeyChangeAccountMismatch);
    }
    if change.old_key != *outer.key() {
        return Err(JwsError::KeyChangeOldKeyMismatch);
    }
    Ok(VerifiedKeyChange { account: change.account, old_key: change.old_key, new_key: inner.key().clone() })
}
