//! Turning a TBSCertificate into a signed certificate with any RustCrypto signer (HSM or software).

use crate::error::CaError;
use der::{Decode, Encode};
use signature::{Keypair, Signer};
use spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned};
use x509_cert::{Certificate, TbsCertificate};

/// The bounds every CA signer meets: `castellan_hsm::HsmSigner` in production, a software key in tests.
pub trait CaSigner<Sig>: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier
where
    Self::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
}

impl<S, Sig> CaSigner<Sig> for S
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
}

/// The signer's public key as a SubjectPublicKeyInfo.
pub fn signer_public_key<S, Sig>(signer: &S) -> Result<SubjectPublicKeyInfoOwned, CaError>
where
    S: CaSigner<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let der = signer.verifying_key().to_public_key_der()?;
    Ok(SubjectPublicKeyInfoOwned::from_der(der.as_bytes())?)
}

/// Signs exactly the bytes `tbs_der` and assembles the certificate around them. Checks that the certificate's
/// TBS re-encodes to the same bytes, so what was linted is what was signed is what is served.
pub fn sign_tbs_der<S, Sig>(tbs_der: &[u8], signer: &S) -> Result<(Certificate, Vec<u8>), CaError>
where
    S: CaSigner<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let tbs_certificate = TbsCertificate::from_der(tbs_der)?;
    let signature_algorithm = signer.signature_algorithm_identifier()?;
    if tbs_certificate.signature != signature_algorithm {
        return Err(CaError::SignerMismatch);
    }
    let signature = signer.try_sign(tbs_der).map_err(|e| CaError::Signing(e.to_string()))?.to_bitstring()?;
    let certificate = Certificate { tbs_certificate, signature_algorithm, signature };
    let der = certificate.to_der()?;
    if certificate.tbs_certificate.to_der()? != tbs_der {
        return Err(CaError::TbsMismatch);
    }
    Ok((certificate, der))
}

/// Encodes and signs a TBSCertificate.
pub fn sign_tbs<S, Sig>(tbs: &TbsCertificate, signer: &S) -> Result<(Certificate, Vec<u8>), CaError>
where
    S: CaSigner<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    sign_tbs_der(&tbs.to_der()?, signer)
}

/// Checks `certificate`'s signature under `issuer_key`.
pub fn verify_certificate_signature(
    certificate: &Certificate,
    issuer_key: &SubjectPublicKeyInfoOwned,
) -> Result<(), CaError> {
    let tbs = certificate.tbs_certificate.to_der()?;
    let signature = certificate
        .signature
        .as_bytes()
        .ok_or_else(|| CaError::BadCaCertificate("signature has unused bits".into()))?;
    crate::key::verify_signature(issuer_key, &certificate.signature_algorithm, &tbs, signature)
        .map_err(CaError::SignatureCheck)
}

/// SHA-256 fingerprint as colon-separated upper-case hex, the form `openssl x509 -fingerprint -sha256` prints.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// PEM of a DER certificate.
pub fn certificate_pem(der: &[u8]) -> Result<String, CaError> {
    Ok(der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)?)
}
