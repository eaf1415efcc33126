//! Producing flattened JWS (for the ACME client and for tests), with a signer trait so a software key and a
//! hardware key look the same.

use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use signature::Signer;

use crate::alg::SignatureAlgorithm;
use crate::b64;
use crate::error::SignError;
use crate::jwk::Jwk;
use crate::jws::{KeyRef, ProtectedHeader};

/// A JWS in the flattened JSON serialization, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenedJws {
    pub protected: String,
    pub payload: String,
    pub signature: String,
}

/// A key that signs JWS.
pub trait JwsSigner {
    /// The "alg" this key signs with.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The public key, as it goes into a "jwk" header.
    fn public_jwk(&self) -> Result<Jwk, SignError>;
    /// Signs the JWS signing input; ECDSA signatures are raw `r || s`.
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Signs `payload` (empty for POST-as-GET) under `header`. The header's alg must be the signer's, and a "jwk"
/// header must be the signer's public key.
pub fn sign_flattened(
    header: &ProtectedHeader,
    payload: &[u8],
    signer: &dyn JwsSigner,
) -> Result<FlattenedJws, SignError> {
    if header.alg != signer.algorithm() {
        return Err(SignError::AlgorithmMismatch { header: header.alg.as_str(), signer: signer.algorithm().as_str() });
    }
    if let KeyRef::Jwk(jwk) = &header.key
        && *jwk != signer.public_jwk()?
    {
        return Err(SignError::JwkMismatch);
    }
    let protected = b64::encode(header.to_value().to_string());
    let payload = b64::encode(payload);
    let signature = signer.sign(format!("{protected}.{payload}").as_bytes())?;
    Ok(FlattenedJws { protected, payload, signature: b64::encode(signature) })
}

fn jwk_err(e: crate::jwk::JwkError) -> SignError {
    SignError::Signer(e.to_string())
}

impl JwsSigner for p256::ecdsa::SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Es256
    }
    fn public_jwk(&self) -> Result<Jwk, SignError> {
        Jwk::from_ec_sec1(self.verifying_key().to_encoded_point(false).as_bytes()).map_err(jwk_err)
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: p256::ecdsa::Signature = self.try_sign(signing_input).map_err(|e| SignError::Signer(e.to_string()))?;
        Ok(sig.to_bytes().to_vec())
    }
}

impl JwsSigner for p521::ecdsa::SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Es512
    }
    fn public_jwk(&self) -> Result<Jwk, SignError> {
        let verifying = p521::ecdsa::VerifyingKey::from(self);
        Jwk::from_ec_sec1(verifying.to_encoded_point(false).as_bytes()).map_err(jwk_err)
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: p521::ecdsa::Signature = self.try_sign(signing_input).map_err(|e| SignError::Signer(e.to_string()))?;
        Ok(sig.to_bytes().to_vec())
    }
}

impl JwsSigner for p384::ecdsa::SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Es384
    }
    fn public_jwk(&self) -> Result<Jwk, SignError> {
        Jwk::from_ec_sec1(self.verifying_key().to_encoded_point(false).as_bytes()).map_err(jwk_err)
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: p384::ecdsa::Signature = self.try_sign(signing_input).map_err(|e| SignError::Signer(e.to_string()))?;
        Ok(sig.to_bytes().to_vec())
    }
}

impl JwsSigner for ed25519_dalek::SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EdDsa
    }
    fn public_jwk(&self) -> Result<Jwk, SignError> {
        Jwk::from_ed25519(self.verifying_key().to_bytes()).map_err(jwk_err)
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: ed25519_dalek::Signature =
            self.try_sign(signing_input).map_err(|e| SignError::Signer(e.to_string()))?;
        Ok(sig.to_bytes().to_vec())
    }
}

/// RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
impl JwsSigner for rsa::RsaPrivateKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Rs256
    }
    fn public_jwk(&self) -> Result<Jwk, SignError> {
        Jwk::from_rsa_components(&self.n().to_bytes_be(), &self.e().to_bytes_be()).map_err(jwk_err)
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let digest = Sha256::digest(signing_input);
        rsa::RsaPrivateKey::sign(self, rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
            .map_err(|e| SignError::Signer(e.to_string()))
    }
}

#[cfg(test)]
mod es512_tests {
    use super::*;
    use crate::jws::{Jws, KeyRef};

    #[test]
    fn es512_signs_and_verifies_and_refuses_tampering() {
        let key = p521::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let jwk = key.public_jwk().unwrap();
        assert_eq!(jwk.kind(), crate::jwk::KeyKind::P521);
        let header = ProtectedHeader {
            alg: SignatureAlgorithm::Es512,
            key: KeyRef::Jwk(jwk.clone()),
            nonce: Some("n".into()),
            url: "https://ca.test/acme/new-account".into(),
            extra: Default::default(),
        };
        let signed = sign_flattened(&header, b"{}", &key).unwrap();
        assert_eq!(crate::b64::decode(&signed.signature).unwrap().len(), 132);
        let body = serde_json::to_vec(&signed).unwrap();
        let verified = Jws::from_slice(&body).unwrap().verify_embedded().unwrap();
        assert_eq!(verified.key(), &jwk);
        assert_eq!(Jwk::from_json_str(&jwk.canonical_json()).unwrap(), jwk);
        let mut tampered = signed.clone();
        tampered.payload = crate::b64::encode(b"{\"x\":1}");
        let body = serde_json::to_vec(&tampered).unwrap();
        assert!(Jws::from_slice(&body).unwrap().verify_embedded().is_err());
    }
}
