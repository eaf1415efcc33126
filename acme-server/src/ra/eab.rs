//! External account binding (RFC 8555 §7.3.4): credentials an admin hands out, bound to an account group. The HMAC
//! keys exist in the clear only in memory: the store holds them sealed under the token's key-encryption key, with
//! the key id bound into the seal, so a sealed key copied to another credential's row does not open.

use castellan_acme_proto::{EabJws, Jwk};
use castellan_hsm::{Hsm, Kek};
use castellan_store::admin::EabRecord;
use std::sync::Arc;
use zeroize::Zeroizing;

use super::Ra;
use crate::problem::{AcmeError, ProblemType};

/// The token key that seals EAB HMAC keys (and other secrets Castellan keeps).
pub const KEK_LABEL: &str = "castellan-kek";
/// What the seal's additional data says the secret is for.
const PURPOSE: &str = "acme-eab-hmac";
/// Bytes of a generated HMAC key (HS256 wants at least 32).
pub const HMAC_KEY_BYTES: usize = 32;

/// Seals and unseals EAB HMAC keys in the HSM.
#[derive(Clone)]
pub struct EabKeys {
    hsm: Hsm,
    kek: Arc<Kek>,
}

impl EabKeys {
    /// Finds the token's KEK, creating it on first use.
    pub async fn open(hsm: Hsm) -> Result<EabKeys, castellan_hsm::HsmError> {
        let kek = hsm.run(|hsm| hsm.find_or_create_kek(KEK_LABEL)).await?;
        Ok(EabKeys { hsm, kek: Arc::new(kek) })
    }

    /// A fresh random HMAC key and its sealed form for credential `key_id`.
    pub async fn generate(&self, key_id: &str) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), castellan_hsm::HsmError> {
        use rand::RngCore;
        let mut key = Zeroizing::new(vec![0u8; HMAC_KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut key);
        let (kek, owner, secret) = (Arc::clone(&self.kek), key_id.to_owned(), key.clone());
        let sealed = self.hsm.run(move |hsm| hsm.seal(&kek, PURPOSE, &owner, &secret)).await?;
        Ok((key, sealed))
    }

    pub async fn unseal(&self, record: &EabRecord) -> Result<Zeroizing<Vec<u8>>, castellan_hsm::HsmError> {
        let (kek, owner, sealed) = (Arc::clone(&self.kek), record.key_id.clone(), record.hmac_key_sealed.clone());
        self.hsm.run(move |hsm| hsm.unseal(&kek, PURPOSE, &owner, &sealed)).await
    }
}

/// An account's binding, once verified: which credential and group.
pub struct Binding {
    pub key_id: String,
    pub group_id: i64,
}

impl Ra {
    /// Verifies newAccount's "externalAccountBinding" against its credential. The credential must exist, be
    /// unused, and its MAC must cover this account key and this URL.
    pub async fn verify_eab(&self, binding: &serde_json::Value, key: &Jwk, url: &str) -> Result<Binding, AcmeError> {
        let eab = EabJws::from_value(binding)?;
        let unauthorized = |why: &str| AcmeError::unauthorized(format!("external account binding: {why}"));
        let record = self.store.eab(eab.kid()).await?.ok_or_else(|| unauthorized("unknown key id"))?;
        if record.used_at.is_some() {
            return Err(unauthorized("this key id has already been used to create an account"));
        }
        let keys = self.eab_keys.as_ref().ok_or_else(|| {
            AcmeError::new(ProblemType::ServerInternal, "external account binding is not available on this server")
        })?;
        let hmac_key = keys.unseal(&record).await.map_err(|e| AcmeError::internal("unsealing an EAB key", &e))?;
        eab.verify(&hmac_key, key, url)?;
        Ok(Binding { key_id: record.key_id, group_id: record.group_id })
    }
}
