//! Key pairs Castellan generates for the certificates it manages: a fresh one for every issuance and renewal,
//! held in memory only as long as it takes to write its CSR and seal it (`Zeroizing`), never written or logged in
//! the clear.
//!
//! Software keys, not token keys: a managed certificate's key leaves Castellan (sealed to the server that serves
//! it), which a non-extractable token key never could.

use crate::error::{AuthorityError, Result};
use castellan_ca::SanName;
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use p256::pkcs8::EncodePrivateKey;
use rand::rngs::OsRng;
use serde::Serialize;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use zeroize::Zeroizing;

/// The key types a managed certificate can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum KeyType {
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    pub const ALL: [KeyType; 5] =
        [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    pub fn parse(text: &str) -> Result<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            let known: Vec<_> = KeyType::ALL.iter().map(|k| k.as_str()).collect();
            AuthorityError::invalid(format!("unknown key type {text:?} (known: {})", known.join(", ")))
        })
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new key pair and a CSR for `names` signed by it.
pub struct GeneratedKey {
    pub key_type: KeyType,
    /// PKCS#8 DER of the private key: for sealing, and nothing else.
    pub pkcs8_der: Zeroizing<Vec<u8>>,
    pub csr_der: Vec<u8>,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey").field("key_type", &self.key_type).finish_non_exhaustive()
    }
}

/// Generates a key pair of `key_type` and its CSR; CPU work (RSA-4096 takes seconds), so callers run it on the
/// blocking pool.
pub fn generate(key_type: KeyType, names: &[SanName]) -> Result<GeneratedKey> {
    let sans = SubjectAltName(general_names(names)?);
    let csr = |e: x509_cert::builder::Error| AuthorityError::invalid(format!("building a CSR: {e}"));
    let pkcs8 = |e: p256::pkcs8::Error| AuthorityError::invalid(format!("encoding a private key: {e}"));
    let (pkcs8_der, csr_der) = match key_type {
        KeyType::EcP256 => {
            let key = p256::ecdsa::SigningKey::random(&mut OsRng);
            let mut builder = RequestBuilder::new(Name::default(), &key).map_err(csr)?;
            builder.add_extension(&sans).map_err(csr)?;
            let request = builder.build::<p256::ecdsa::DerSignature>().map_err(csr)?;
            (key.to_pkcs8_der().map_err(pkcs8)?.to_bytes(), request.to_der()?)
        }
        KeyType::EcP384 => {
            let key = p384::ecdsa::SigningKey::random(&mut OsRng);
            let mut builder = RequestBuilder::new(Name::default(), &key).map_err(csr)?;
            builder.add_extension(&sans).map_err(csr)?;
            let request = builder.build::<p384::ecdsa::DerSignature>().map_err(csr)?;
            (key.to_pkcs8_der().map_err(pkcs8)?.to_bytes(), request.to_der()?)
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = match key_type {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            let private = rsa::RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| AuthorityError::invalid(format!("generating an RSA key: {e}")))?;
            let pkcs8_der = private.to_pkcs8_der().map_err(pkcs8)?.to_bytes();
            let key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
            let mut builder = RequestBuilder::new(Name::default(), &key).map_err(csr)?;
            builder.add_extension(&sans).map_err(csr)?;
            let request = builder.build::<rsa::pkcs1v15::Signature>().map_err(csr)?;
            (pkcs8_der, request.to_der()?)
        }
    };
    Ok(GeneratedKey { key_type, pkcs8_der: Zeroizing::new(pkcs8_der.to_vec()), csr_der })
}

/// Names as subjectAltName entries.
pub(crate) fn general_names(names: &[SanName]) -> der::Result<Vec<GeneralName>> {
    let general = |n: &SanName| -> std::result::Result<GeneralName, der::Error> {
        Ok(match n {
            SanName::Dns(d) => GeneralName::DnsName(Ia5String::new(d)?),
            SanName::Uri(u) => GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
            SanName::Ip(std::net::IpAddr::V4(v4)) => GeneralName::IpAddress(OctetString::new(v4.octets())?),
            SanName::Ip(std::net::IpAddr::V6(v6)) => GeneralName::IpAddress(OctetString::new(v6.octets())?),
        })
    };
    names.iter().map(general).collect()
}
