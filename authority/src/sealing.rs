//! Secrets Castellan must keep (EAB HMAC keys today; generated leaf keys with managed certificates) are stored only
//! sealed under the token's key-encryption key: AES-256-GCM in the HSM, the additional data binding the purpose and
//! the owner, so a sealed secret copied to another row does not open.

use castellan_hsm::{Hsm, HsmError, Kek};
use castellan_store::admin::EabRecord;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The token key that seals every secret Castellan keeps.
pub const KEK_LABEL: &str = "castellan-kek";
/// What an EAB HMAC key's seal says it is for.
const EAB_PURPOSE: &str = "acme-eab-hmac";
/// Bytes of a generated EAB HMAC key (HS256 wants at least 32).
pub const HMAC_KEY_BYTES: usize = 32;

/// Seals and unseals secrets in the HSM; cheap to clone.
#[derive(Clone)]
pub struct Sealing {
    hsm: Hsm,
    kek: Arc<Kek>,
}

impl Sealing {
    /// Finds the token's KEK, creating it on first use.
    pub async fn open(hsm: Hsm) -> Result<Sealing, HsmError> {
        let kek = hsm.run(|hsm| hsm.find_or_create_kek(KEK_LABEL)).await?;
        Ok(Sealing { hsm, kek: Arc::new(kek) })
    }

    pub async fn seal(
        &self,
        purpose: &'static str,
        owner: &str,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<Vec<u8>, HsmError> {
        let (kek, owner) = (Arc::clone(&self.kek), owner.to_owned());
        self.hsm.run(move |hsm| hsm.seal(&kek, purpose, &owner, &secret)).await
    }

    pub async fn unseal(
        &self,
        purpose: &'static str,
        owner: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let (kek, owner, sealed) = (Arc::clone(&self.kek), owner.to_owned(), sealed.to_vec());
        self.hsm.run(move |hsm| hsm.unseal(&kek, purpose, &owner, &sealed)).await
    }

    /// A fresh random EAB HMAC key and its sealed form for credential `key_id`.
    pub async fn new_eab_key(&self, key_id: &str) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), HsmError> {
        use rand::RngCore;
        let mut key = Zeroizing::new(vec![0u8; HMAC_KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut key);
        let sealed = self.seal(EAB_PURPOSE, key_id, key.clone()).await?;
        Ok((key, sealed))
    }

    /// The HMAC key of an EAB credential, in the clear for as long as the caller holds it.
    pub async fn eab_key(&self, record: &EabRecord) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.unseal(EAB_PURPOSE, &record.key_id, &record.hmac_key_sealed).await
    }
}
