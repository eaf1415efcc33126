//! Signing with a key in the token, exposed as RustCrypto's `Signer` + `Keypair` +
//! `DynSignatureAlgorithmIdentifier`, so x509-cert's builders sign with an HSM key exactly as with a software key.
//!
//! Hashing happens here, in software, and the token gets only the digest (CKM_ECDSA, CKM_RSA_PKCS over a
//! DigestInfo, CKM_RSA_PKCS_PSS): SoftHSM2 has no CKM_ECDSA_SHA256, and sending 32 bytes instead of a whole
//! TBSCertificate is cheaper on a networked HSM too.

use crate::error::{HsmError, Result};
use crate::keys::{HsmKey, KeySpec};
use crate::token::Hsm;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use der::asn1::BitString;
use sha2::{Digest, Sha256, Sha384};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding,
    SubjectPublicKeyInfoOwned,
};
use std::sync::Mutex;

/// How a signature is made: the hash and the padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    EcdsaSha256,
    EcdsaSha384,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPssSha256,
    RsaPssSha384,
}

impl SignatureScheme {
    /// The usual scheme for a key: ECDSA with the hash matching the curve, PKCS#1 v1.5 with SHA-256 for RSA
    /// (what every TLS client and OpenSSL version verifies).
    pub fn default_for(spec: KeySpec) -> SignatureScheme {
        match spec {
            KeySpec::EcP256 => SignatureScheme::EcdsaSha256,
            KeySpec::EcP384 => SignatureScheme::EcdsaSha384,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => SignatureScheme::RsaPkcs1Sha256,
        }
    }

    fn fits(self, spec: KeySpec) -> bool {
        let ec = matches!(spec, KeySpec::EcP256 | KeySpec::EcP384);
        match self {
            SignatureScheme::EcdsaSha256 | SignatureScheme::EcdsaSha384 => ec,
            _ => !ec,
        }
    }

    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            SignatureScheme::EcdsaSha256 | SignatureScheme::RsaPkcs1Sha256 | SignatureScheme::RsaPssSha256 => {
                Sha256::digest(message).to_vec()
            }
            SignatureScheme::EcdsaSha384 | SignatureScheme::RsaPkcs1Sha384 | SignatureScheme::RsaPssSha384 => {
                Sha384::digest(message).to_vec()
            }
        }
    }

    pub fn algorithm_identifier(self) -> spki::Result<AlgorithmIdentifierOwned> {
        use const_oid::db::rfc5912::{
            ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
        };
        let bare = |oid| AlgorithmIdentifierOwned { oid, parameters: None };
        // RFC 4055 §5: the PKCS#1 v1.5 identifiers carry an explicit NULL parameter.
        let with_null = |oid| AlgorithmIdentifierOwned { oid, parameters: Some(der::asn1::Null.into()) };
        Ok(match self {
            SignatureScheme::EcdsaSha256 => bare(ECDSA_WITH_SHA_256),
            SignatureScheme::EcdsaSha384 => bare(ECDSA_WITH_SHA_384),
            SignatureScheme::RsaPkcs1Sha256 => with_null(SHA_256_WITH_RSA_ENCRYPTION),
            SignatureScheme::RsaPkcs1Sha384 => with_null(SHA_384_WITH_RSA_ENCRYPTION),
            SignatureScheme::RsaPssSha256 => rsa::pss::get_default_pss_signature_algo_id::<Sha256>()?,
            SignatureScheme::RsaPssSha384 => rsa::pss::get_default_pss_signature_algo_id::<Sha384>()?,
        })
    }
}

/// DER prefixes of the PKCS#1 v1.5 DigestInfo (RFC 8017 §9.2 note 1); the hash follows.
const SHA256_DIGEST_INFO: &[u8] =
    &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
const SHA384_DIGEST_INFO: &[u8] =
    &[0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];

/// A signature as X.509 wants it: DER ECDSA-Sig-Value, or the RSA signature bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmSignature(pub Vec<u8>);

impl SignatureBitStringEncoding for HsmSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl AsRef<[u8]> for HsmSignature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The public half of an HSM key, as `Keypair::VerifyingKey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmPublicKey(pub SubjectPublicKeyInfoOwned);

impl EncodePublicKey for HsmPublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::encode_msg(&self.0)?)
    }
}

/// Signs with one token key under one scheme.
pub struct HsmSigner {
    hsm: Hsm,
    key: HsmKey,
    scheme: SignatureScheme,
    /// The private key's handle, looked up again if the token invalidates it.
    handle: Mutex<ObjectHandle>,
}

impl std::fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSigner").field("key", &self.key.label).field("scheme", &self.scheme).finish()
    }
}

impl Hsm {
    /// A signer for `key` with the key type's default scheme.
    pub fn signer(&self, key: HsmKey) -> HsmSigner {
        let scheme = SignatureScheme::default_for(key.spec);
        HsmSigner { hsm: self.clone(), handle: Mutex::new(key.private), key, scheme }
    }

    /// A signer for `key` with an explicit scheme, refused when the scheme does not fit the key.
    pub fn signer_with_scheme(&self, key: HsmKey, scheme: SignatureScheme) -> Result<HsmSigner> {
        if !scheme.fits(key.spec) {
            return Err(HsmError::UnsupportedKey(format!("{scheme:?} with a {} key", key.spec)));
        }
        Ok(HsmSigner { hsm: self.clone(), handle: Mutex::new(key.private), key, scheme })
    }
}

impl HsmSigner {
    pub fn key(&self) -> &HsmKey {
        &self.key
    }

    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    pub fn hsm(&self) -> &Hsm {
        &self.hsm
    }

    /// Hashes `message` and has the token sign the digest. Blocking: async callers use `Hsm::run`.
    pub fn sign(&self, message: &[u8]) -> Result<HsmSignature> {
        let digest = self.scheme.digest(message);
        let raw = match self.sign_digest(&digest) {
            Err(e) if e.handle_is_stale() => {
                let fresh = self.hsm.refresh_private_handle(&self.key.label)?;
                *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                self.sign_digest(&digest)?
            }
            other => other?,
        };
        self.encode(raw).map(HsmSignature)
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let handle = *self.handle.lock().unwrap_or_else(|p| p.into_inner());
        let (mechanism, input) = match self.scheme {
            SignatureScheme::EcdsaSha256 | SignatureScheme::EcdsaSha384 => (Mechanism::Ecdsa, digest.to_vec()),
            SignatureScheme::RsaPkcs1Sha256 => (Mechanism::RsaPkcs, [SHA256_DIGEST_INFO, digest].concat()),
            SignatureScheme::RsaPkcs1Sha384 => (Mechanism::RsaPkcs, [SHA384_DIGEST_INFO, digest].concat()),
            SignatureScheme::RsaPssSha256 => (
                Mechanism::RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                }),
                digest.to_vec(),
            ),
            SignatureScheme::RsaPssSha384 => (
                Mechanism::RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA384,
                    mgf: PkcsMgfType::MGF1_SHA384,
                    s_len: 48.into(),
                }),
                digest.to_vec(),
            ),
        };
        self.hsm.with_session(|session| session.sign(&mechanism, handle, &input).map_err(HsmError::pkcs11("C_Sign")))
    }

    /// CKM_ECDSA returns r‖s; X.509 wants the DER ECDSA-Sig-Value.
    fn encode(&self, raw: Vec<u8>) -> Result<Vec<u8>> {
        let malformed = |e: &dyn std::fmt::Display| HsmError::Encoding(format!("token returned a bad signature: {e}"));
        match self.key.spec {
            KeySpec::EcP256 => {
                Ok(p256::ecdsa::Signature::from_slice(&raw).map_err(|e| malformed(&e))?.to_der().as_bytes().to_vec())
            }
            KeySpec::EcP384 => {
                Ok(p384::ecdsa::Signature::from_slice(&raw).map_err(|e| malformed(&e))?.to_der().as_bytes().to_vec())
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => Ok(raw),
        }
    }
}

impl signature::Signer<HsmSignature> for HsmSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<HsmSignature, signature::Error> {
        self.sign(message).map_err(signature::Error::from_source)
    }
}

impl signature::Keypair for HsmSigner {
    type VerifyingKey = HsmPublicKey;
    fn verifying_key(&self) -> HsmPublicKey {
        HsmPublicKey(self.key.public_key.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for HsmSigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        self.scheme.algorithm_identifier()
    }
}
