//! External account binding (RFC 8555 §7.3.4): credentials an operator hands out, bound to an account group. The
//! HMAC keys are stored sealed under the token's key-encryption key (see `castellan_authority::sealing`) and are in
//! the clear only while a binding is verified.

use castellan_acme_proto::{EabJws, Jwk};
use castellan_store::GroupId;

use super::Ra;
use crate::problem::AcmeError;

/// An account's binding, once verified: which credential and group.
pub struct Binding {
    pub key_id: String,
    pub group_id: GroupId,
}

impl Ra {
    /// Verifies newAccount's "externalAccountBinding" against its credential. The credential must exist, be
    /// unused, and its MAC must cover this account key and this URL.
    pub async fn verify_eab(&self, binding: &serde_json::Value, key: &Jwk, url: &str) -> Result<Binding, AcmeError> {
        let eab = EabJws::from_value(binding)?;
        let unauthorized = |why: &str| AcmeError::unauthorized(format!("external account binding: {why}"));
        let record = self.store().eab(eab.kid()).await?.ok_or_else(|| unauthorized("unknown key id"))?;
        if record.used_at.is_some() {
            return Err(unauthorized("this key id has already been used to create an account"));
        }
        let sealing = self.authority.sealing().await?;
        let hmac_key = sealing.eab_key(&record).await.map_err(|e| AcmeError::internal("unsealing an EAB key", &e))?;
        eab.verify(&hmac_key, key, url)?;
        Ok(Binding { key_id: record.key_id, group_id: record.group_id })
    }
}
