//! Sealing secrets under an AES-256 key-encryption key (KEK) that never leaves the token.
//!
//! A sealed secret is `"CSL1" ‖ key-id length ‖ KEK id ‖ 12-byte IV ‖ AES-256-GCM ciphertext ‖ 16-byte tag`. The
//! additional authenticated data binds the purpose (what the secret is: "leaf-key", "eab-hmac"…) and the owner
//! (whose it is: a certificate or account id), so a sealed blob copied onto another row does not open.
//! IVs are random: NIST SP 800-38D allows 2^32 random-IV messages per key; rotate the KEK long before that.

use crate::error::{HsmError, Result};
use crate::keys::find_one;
use crate::token::Hsm;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use rand::RngCore;
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"CSL1";
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const TAG_LEN: usize = 16;

/// The token's key-encryption key, found or created by label.
#[derive(Clone, Debug)]
pub struct Kek {
    pub label: String,
    pub id: Vec<u8>,
    handle: ObjectHandle,
}

impl Hsm {
    /// Creates the AES-256 KEK: a token object, sensitive, non-extractable, for encryption and key wrapping.
    pub fn create_kek(&self, label: &str) -> Result<Kek> {
        let _one_writer = crate::keys::object_write_lock();
        if self.with_session(|s| find_one(s, label, ObjectClass::SECRET_KEY))?.is_some() {
            return Err(HsmError::KeyExists { label: label.to_owned() });
        }
        let mut id = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::ValueLen(32.into()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let handle = self.with_session(|s| {
            s.generate_key(&Mechanism::AesKeyGen, &template).map_err(HsmError::pkcs11("C_GenerateKey"))
        })?;
        tracing::info!(label, "generated key-encryption key in token");
        Ok(Kek { label: label.to_owned(), id, handle })
    }

    pub fn find_kek(&self, label: &str) -> Result<Kek> {
        self.with_session(|s| {
            let handle = find_one(s, label, ObjectClass::SECRET_KEY)?
                .ok_or_else(|| HsmError::KeyNotFound { label: label.to_owned(), class: "secret key" })?;
            let id = match s
                .get_attributes(handle, &[AttributeType::Id])
                .map_err(HsmError::pkcs11("C_GetAttributeValue"))?
                .pop()
            {
                Some(Attribute::Id(id)) => id,
                _ => Vec::new(),
            };
            Ok(Kek { label: label.to_owned(), id, handle })
        })
    }

    /// The KEK labelled `label`, created on first use.
    pub fn find_or_create_kek(&self, label: &str) -> Result<Kek> {
        match self.find_kek(label) {
            // Another session (a replica on the same token, another task here) may create it between our look
            // and our create: then theirs is the KEK.
            Err(HsmError::KeyNotFound { .. }) => match self.create_kek(label) {
                Err(HsmError::KeyExists { .. }) => self.find_kek(label),
                created => created,
            },
            other => other,
        }
    }

    /// Encrypts `secret` under the KEK, bound to `purpose` and `owner`.
    pub fn seal(&self, kek: &Kek, purpose: &str, owner: &str, secret: &[u8]) -> Result<Vec<u8>> {
        let id_len = u8::try_from(kek.id.len()).map_err(|_| HsmError::SealedMalformed("KEK id too long"))?;
        let aad = associated_data(purpose, owner, &kek.id);
        let mut iv = [0u8; IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let (iv, ciphertext) = self.with_session(|s| {
            let mut iv_copy = iv;
            let params =
                GcmParams::new(&mut iv_copy, &aad, TAG_BITS.into()).map_err(HsmError::pkcs11("CK_GCM_PARAMS"))?;
            let ciphertext =
                s.encrypt(&Mechanism::AesGcm(params), kek.handle, secret).map_err(HsmError::pkcs11("C_Encrypt"))?;
            // A module that generates IVs itself (FIPS mode: SP 800-38D §8.2) writes the IV it used into pIv;
            // store that one, or the secret could never be opened.
            Ok((iv_copy, ciphertext))
        })?;
        let mut sealed = Vec::with_capacity(MAGIC.len() + 1 + kek.id.len() + IV_LEN + ciphertext.len());
        sealed.extend_from_slice(MAGIC);
        sealed.push(id_len);
        sealed.extend_from_slice(&kek.id);
        sealed.extend_from_slice(&iv);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts a sealed secret; fails unless the KEK, purpose and owner are those it was sealed with.
    pub fn unseal(&self, kek: &Kek, purpose: &str, owner: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or(HsmError::SealedMalformed("no CSL1 header"))?;
        let (&id_len, rest) = rest.split_first().ok_or(HsmError::SealedMalformed("truncated"))?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + IV_LEN + TAG_LEN {
            return Err(HsmError::SealedMalformed("truncated"));
        }
        let (id, rest) = rest.split_at(id_len);
        if id != kek.id.as_slice() {
            return Err(HsmError::SealOpenFailed);
        }
        let (iv, ciphertext) = rest.split_at(IV_LEN);
        let aad = associated_data(purpose, owner, &kek.id);
        let plaintext = self.with_session(|s| {
            let mut iv_copy = [0u8; IV_LEN];
            iv_copy.copy_from_slice(iv);
            let params =
                GcmParams::new(&mut iv_copy, &aad, TAG_BITS.into()).map_err(HsmError::pkcs11("CK_GCM_PARAMS"))?;
            match s.decrypt(&Mechanism::AesGcm(params), kek.handle, ciphertext) {
                Ok(plain) => Ok(Some(plain)),
                // A failed tag check is an answer about the data, not a broken session. PKCS#11 says so with
                // CKR_ENCRYPTED_DATA_INVALID (or _LEN_RANGE, judged on the length alone), or since v3.0 with
                // CKR_AEAD_DECRYPT_FAILED (0x42, which cryptoki 0.12 does not name). SoftHSM2 2.6 says
                // CKR_GENERAL_ERROR: its SymDecrypt maps every failed decryptFinal, the GCM tag check included, to
                // it (seen in the tests). CKR_GENERAL_ERROR is not a session error, so counting it as "does not
                // open" costs no recovery; it only hides a genuine general failure behind SealOpenFailed.
                Err(CkError::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::UnknownErrorCode(0x42)
                    | RvError::GeneralError,
                    _,
                )) => Ok(None),
                // Anything else is about the token or the session (a lost login, a removed device, a stale KEK
                // handle): pass it on, so the pool recovers and the caller does not blame the data.
                Err(e) => Err(HsmError::pkcs11("C_Decrypt")(e)),
            }
        })?;
        plaintext.map(Zeroizing::new).ok_or(HsmError::SealOpenFailed)
    }
}

/// Length-prefixed fields, so that ("ab", "c") and ("a", "bc") never give the same AAD.
fn associated_data(purpose: &str, owner: &str, kek_id: &[u8]) -> Vec<u8> {
    let mut aad = b"castellan-seal-v1".to_vec();
    for field in [purpose.as_bytes(), owner.as_bytes(), kek_id] {
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field);
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn a_token_error_while_opening_is_not_blamed_on_the_data() {
        let hsm = &testkit::shared().hsm;
        let kek = hsm.create_kek(&testkit::unique_label("seal-stale")).expect("kek");
        let sealed = hsm.seal(&kek, "leaf-key", "cert-1", b"secret").expect("seal");
        // The KEK disappears from under its handle: the token, not the sealed data, is what failed.
        hsm.with_session(|s| s.destroy_object(kek.handle).map_err(HsmError::pkcs11("C_DestroyObject")))
            .expect("destroy the KEK");
        let err = hsm.unseal(&kek, "leaf-key", "cert-1", &sealed).expect_err("the KEK is gone");
        assert!(matches!(err, HsmError::Pkcs11 { operation: "C_Decrypt", .. }), "got {err:?}");
        assert!(err.handle_is_stale(), "got {err:?}");
    }
}
