//! Key pairs that live in the token: generated there as sensitive and non-extractable, found by label, and
//! described by their public half (a SubjectPublicKeyInfo) so the rest of Castellan never needs the token to
//! know what a key is.

use crate::error::{HsmError, Result};
use crate::token::Hsm;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{SECP_256_R_1, SECP_384_R_1};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::{Decode, Encode, asn1::OctetString};
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use std::str::FromStr;

/// SoftHSM2's file object store fails with CKR_GENERAL_ERROR now and then when two sessions create token objects
/// at the same moment. Creating objects is rare (ceremonies, TLS key rotation), so one at a time costs nothing.
pub(crate) static OBJECT_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn object_write_lock() -> std::sync::MutexGuard<'static, ()> {
    OBJECT_WRITES.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The key types Castellan creates in a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySpec {
    EcP256,
    EcP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeySpec {
    pub const ALL: [KeySpec; 5] =
        [KeySpec::EcP256, KeySpec::EcP384, KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096];

    pub fn name(self) -> &'static str {
        match self {
            KeySpec::EcP256 => "ec-p256",
            KeySpec::EcP384 => "ec-p384",
            KeySpec::Rsa2048 => "rsa-2048",
            KeySpec::Rsa3072 => "rsa-3072",
            KeySpec::Rsa4096 => "rsa-4096",
        }
    }

    fn rsa_bits(self) -> Option<u64> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            KeySpec::EcP256 | KeySpec::EcP384 => None,
        }
    }

    fn curve(self) -> Option<ObjectIdentifier> {
        match self {
            KeySpec::EcP256 => Some(SECP_256_R_1),
            KeySpec::EcP384 => Some(SECP_384_R_1),
            _ => None,
        }
    }

    /// Bytes of one coordinate of a point on the curve.
    fn coordinate_len(self) -> Option<usize> {
        match self {
            KeySpec::EcP256 => Some(32),
            KeySpec::EcP384 => Some(48),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown key type {0:?} (expected one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)")]
pub struct UnknownKeySpec(String);

impl FromStr for KeySpec {
    type Err = UnknownKeySpec;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        KeySpec::ALL.into_iter().find(|spec| spec.name() == s).ok_or_else(|| UnknownKeySpec(s.to_owned()))
    }
}

/// A key pair in the token. Holds no secret: only where the private half is and what the public half is.
#[derive(Clone, Debug)]
pub struct HsmKey {
    pub label: String,
    pub id: Vec<u8>,
    pub spec: KeySpec,
    pub public_key: SubjectPublicKeyInfoOwned,
    pub(crate) private: ObjectHandle,
}

impl HsmKey {
    /// The DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        self.public_key.to_der().map_err(|e| HsmError::Encoding(e.to_string()))
    }
}

/// How the token protects a private key, read back from its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyProtection {
    pub token: bool,
    pub private: bool,
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
}

impl Hsm {
    /// Generates a key pair in the token. The private key is a token object, private, sensitive and
    /// non-extractable, usable only to sign; a key with the same label is never overwritten.
    pub fn generate_key_pair(&self, label: &str, spec: KeySpec) -> Result<HsmKey> {
        let _one_writer = object_write_lock();
        if self.find_private_handle(label)?.is_some() {
            return Err(HsmError::KeyExists { label: label.to_owned() });
        }
        let id = random_id();
        let mut public_template = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let mechanism = match (spec.curve(), spec.rsa_bits()) {
            (Some(curve), _) => {
                let params = curve.to_der().map_err(|e| HsmError::Encoding(e.to_string()))?;
                public_template.push(Attribute::EcParams(params));
                Mechanism::EccKeyPairGen
            }
            (None, Some(bits)) => {
                public_template.push(Attribute::ModulusBits(bits.into()));
                public_template.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            (None, None) => return Err(HsmError::UnsupportedKey(spec.to_string())),
        };
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        // SoftHSM2's file store answers CKR_GENERAL_ERROR now and then even with object creation serialised here
        // (another session reading the token's files at that moment): try again, a little later, while no key with
        // this label exists — never a second key under one label.
        let mut attempts = 0;
        let (public, private) = loop {
            let generated = self.with_session(|session| {
                session
                    .generate_key_pair(&mechanism, &public_template, &private_template)
                    .map_err(HsmError::pkcs11("C_GenerateKeyPair"))
            });
            match generated {
                Err(e)
                    if attempts < 3
                        && e.return_value() == Some(cryptoki::error::RvError::GeneralError)
                        && self.find_private_handle(label)?.is_none() =>
                {
                    attempts += 1;
                    tracing::warn!(label, error = %e, attempts, "the token failed to generate a key pair; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempts));
                }
                other => break other?,
            }
        };
        let public_key = self.with_session(|session| read_public_key(session, public, spec))?;
        tracing::info!(label, %spec, "generated key pair in token");
        Ok(HsmKey { label: label.to_owned(), id, spec, public_key, private })
    }

    /// Finds a key pair by label: the private key with that label, and the public key with its label and CKA_ID.
    pub fn find_key_pair(&self, label: &str) -> Result<HsmKey> {
        let private = self
            .find_private_handle(label)?
            .ok_or_else(|| HsmError::KeyNotFound { label: label.to_owned(), class: "private key" })?;
        self.with_session(|session| {
            let id = object_id(session, private)?;
            let public = find_public_half(session, label, &id)?
                .ok_or_else(|| HsmError::KeyNotFound { label: label.to_owned(), class: "public key" })?;
            let spec = key_spec(session, public)?;
            let public_key = read_public_key(session, public, spec)?;
            Ok(HsmKey { label: label.to_owned(), id, spec, public_key, private })
        })
    }

    /// Finds a key pair by its CKA_ID (as HSM vendors' tools and PKCS#11 URIs name keys).
    pub fn find_key_pair_by_id(&self, id: &[u8]) -> Result<HsmKey> {
        let not_found = || HsmError::KeyNotFound { label: format!("id {}", hex::encode(id)), class: "private key" };
        let label = self.with_session(|session| {
            let template = [Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.to_vec())];
            let found = session.find_objects(&template).map_err(HsmError::pkcs11("C_FindObjects"))?;
            let Some(private) = found.into_iter().next() else { return Ok(None) };
            match session
                .get_attributes(private, &[AttributeType::Label])
                .map_err(HsmError::pkcs11("C_GetAttributeValue"))?
                .pop()
            {
                Some(Attribute::Label(label)) => Ok(Some(String::from_utf8_lossy(&label).into_owned())),
                _ => Ok(None),
            }
        })?;
        let key = self.find_key_pair(&label.ok_or_else(not_found)?)?;
        if key.id != id {
            // Another pair with the same label shadows this one: refuse rather than hand out the wrong key.
            return Err(not_found());
        }
        Ok(key)
    }

    /// Whether a private key with this label exists.
    pub fn key_exists(&self, label: &str) -> Result<bool> {
        Ok(self.find_private_handle(label)?.is_some())
    }

    /// Destroys both halves of a key pair (for retiring a TLS key after renewal, or a failed ceremony).
    pub fn destroy_key_pair(&self, label: &str) -> Result<()> {
        let _one_writer = object_write_lock();
        self.with_session(|session| {
            // The pair is the private key and the public key that shares its label and CKA_ID, as in
            // find_key_pair: another public key that merely has the same label is not ours to destroy.
            let Some(private) = find_one(session, label, ObjectClass::PRIVATE_KEY)? else {
                return Ok(());
            };
            let public = find_public_half(session, label, &object_id(session, private)?)?;
            for handle in std::iter::once(private).chain(public) {
                session.destroy_object(handle).map_err(HsmError::pkcs11("C_DestroyObject"))?;
            }
            Ok(())
        })
    }

    /// Reads back how the token protects a private key.
    pub fn key_protection(&self, key: &HsmKey) -> Result<KeyProtection> {
        let wanted = [
            AttributeType::Token,
            AttributeType::Private,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
        ];
        let attributes = self.with_session(|session| {
            session.get_attributes(key.private, &wanted).map_err(HsmError::pkcs11("C_GetAttributeValue"))
        })?;
        let mut protection = KeyProtection {
            token: false,
            private: false,
            sensitive: false,
            extractable: true,
            always_sensitive: false,
            never_extractable: false,
        };
        for attribute in attributes {
            match attribute {
                Attribute::Token(v) => protection.token = v,
                Attribute::Private(v) => protection.private = v,
                Attribute::Sensitive(v) => protection.sensitive = v,
                Attribute::Extractable(v) => protection.extractable = v,
                Attribute::AlwaysSensitive(v) => protection.always_sensitive = v,
                Attribute::NeverExtractable(v) => protection.never_extractable = v,
                _ => {}
            }
        }
        Ok(protection)
    }

    fn find_private_handle(&self, label: &str) -> Result<Option<ObjectHandle>> {
        self.with_session(|session| find_one(session, label, ObjectClass::PRIVATE_KEY))
    }

    /// Looks a key's private handle up again, for when a cached handle went stale.
    pub(crate) fn refresh_private_handle(&self, label: &str) -> Result<ObjectHandle> {
        self.find_private_handle(label)?
            .ok_or_else(|| HsmError::KeyNotFound { label: label.to_owned(), class: "private key" })
    }
}

pub(crate) fn find_one(session: &Session, label: &str, class: ObjectClass) -> Result<Option<ObjectHandle>> {
    let template = [Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())];
    let found = session.find_objects(&template).map_err(HsmError::pkcs11("C_FindObjects"))?;
    Ok(found.into_iter().next())
}

/// The public half of a key pair: the public key with the private key's label and CKA_ID. PKCS#11 has a key
/// pair's two halves share a CKA_ID, and Castellan gives each pair a random one, so a stray public key that only
/// shares the label is not mistaken for the pair's.
fn find_public_half(session: &Session, label: &str, id: &[u8]) -> Result<Option<ObjectHandle>> {
    let template = [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let found = session.find_objects(&template).map_err(HsmError::pkcs11("C_FindObjects"))?;
    Ok(found.into_iter().next())
}

/// An object's CKA_ID; empty when it has none.
fn object_id(session: &Session, object: ObjectHandle) -> Result<Vec<u8>> {
    match session.get_attributes(object, &[AttributeType::Id]).map_err(HsmError::pkcs11("C_GetAttributeValue"))?.pop() {
        Some(Attribute::Id(id)) => Ok(id),
        _ => Ok(Vec::new()),
    }
}

fn random_id() -> Vec<u8> {
    use rand::RngCore;
    let mut id = vec![0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    id
}

fn key_spec(session: &Session, public: ObjectHandle) -> Result<KeySpec> {
    let attributes =
        session.get_attributes(public, &[AttributeType::KeyType]).map_err(HsmError::pkcs11("C_GetAttributeValue"))?;
    let key_type = match attributes.first() {
        Some(Attribute::KeyType(kt)) => *kt,
        _ => return Err(HsmError::UnsupportedKey("key has no CKA_KEY_TYPE".into())),
    };
    if key_type == KeyType::EC {
        let params = match session
            .get_attributes(public, &[AttributeType::EcParams])
            .map_err(HsmError::pkcs11("C_GetAttributeValue"))?
            .pop()
        {
            Some(Attribute::EcParams(p)) => p,
            _ => return Err(HsmError::UnsupportedKey("EC key without CKA_EC_PARAMS".into())),
        };
        let curve = ObjectIdentifier::from_der(&params)
            .map_err(|_| HsmError::UnsupportedKey("EC parameters are not a named curve".into()))?;
        match curve {
            SECP_256_R_1 => Ok(KeySpec::EcP256),
            SECP_384_R_1 => Ok(KeySpec::EcP384),
            other => Err(HsmError::UnsupportedKey(format!("EC curve {other}"))),
        }
    } else if key_type == KeyType::RSA {
        let modulus = rsa_modulus(session, public)?;
        let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
        match bits {
            2048 => Ok(KeySpec::Rsa2048),
            3072 => Ok(KeySpec::Rsa3072),
            4096 => Ok(KeySpec::Rsa4096),
            other => Err(HsmError::UnsupportedKey(format!("RSA {other} bits"))),
        }
    } else {
        Err(HsmError::UnsupportedKey(format!("key type {key_type}")))
    }
}

fn rsa_modulus(session: &Session, public: ObjectHandle) -> Result<Vec<u8>> {
    match session
        .get_attributes(public, &[AttributeType::Modulus])
        .map_err(HsmError::pkcs11("C_GetAttributeValue"))?
        .pop()
    {
        Some(Attribute::Modulus(m)) => Ok(m),
        _ => Err(HsmError::UnsupportedKey("RSA key without CKA_MODULUS".into())),
    }
}

fn read_public_key(session: &Session, public: ObjectHandle, spec: KeySpec) -> Result<SubjectPublicKeyInfoOwned> {
    let der = match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => {
            let raw = match session
                .get_attributes(public, &[AttributeType::EcPoint])
                .map_err(HsmError::pkcs11("C_GetAttributeValue"))?
                .pop()
            {
                Some(Attribute::EcPoint(p)) => p,
                _ => return Err(HsmError::UnsupportedKey("EC key without CKA_EC_POINT".into())),
            };
            let coordinate_len = spec.coordinate_len().unwrap_or(0);
            let point = uncompressed_point(&raw, coordinate_len)?;
            ec_spki_der(spec, &point)?
        }
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let attributes = session
                .get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])
                .map_err(HsmError::pkcs11("C_GetAttributeValue"))?;
            let (mut n, mut e) = (None, None);
            for attribute in attributes {
                match attribute {
                    Attribute::Modulus(m) => n = Some(m),
                    Attribute::PublicExponent(x) => e = Some(x),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Err(HsmError::UnsupportedKey("RSA key without modulus or exponent".into()));
            };
            let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from_bytes_be(&e))
                .map_err(|err| HsmError::Encoding(err.to_string()))?;
            key.to_public_key_der().map_err(|err| HsmError::Encoding(err.to_string()))?.to_vec()
        }
    };
    SubjectPublicKeyInfoOwned::from_der(&der).map_err(|e| HsmError::Encoding(e.to_string()))
}

/// CKA_EC_POINT is specified as a DER OCTET STRING holding the point, but some modules return the bare point.
/// Both start with 0x04 (the OCTET STRING tag, or the "uncompressed" marker), so the length decides.
pub(crate) fn uncompressed_point(raw: &[u8], coordinate_len: usize) -> Result<Vec<u8>> {
    let bare_len = 1 + 2 * coordinate_len;
    if raw.len() == bare_len && raw.first() == Some(&0x04) {
        return Ok(raw.to_vec());
    }
    let wrapped = OctetString::from_der(raw)
        .map_err(|_| HsmError::UnsupportedKey("CKA_EC_POINT is neither a point nor a DER OCTET STRING".into()))?;
    let point = wrapped.as_bytes();
    if point.len() == bare_len && point.first() == Some(&0x04) {
        Ok(point.to_vec())
    } else {
        Err(HsmError::UnsupportedKey("CKA_EC_POINT is not an uncompressed point on the key's curve".into()))
    }
}

fn ec_spki_der(spec: KeySpec, point: &[u8]) -> Result<Vec<u8>> {
    let encoding = |e: &dyn std::fmt::Display| HsmError::Encoding(e.to_string());
    match spec {
        KeySpec::EcP256 => p256::PublicKey::from_sec1_bytes(point)
            .map_err(|e| encoding(&e))?
            .to_public_key_der()
            .map(|d| d.to_vec())
            .map_err(|e| encoding(&e)),
        KeySpec::EcP384 => p384::PublicKey::from_sec1_bytes(point)
            .map_err(|e| encoding(&e))?
            .to_public_key_der()
            .map(|d| d.to_vec())
            .map_err(|e| encoding(&e)),
        _ => Err(HsmError::UnsupportedKey(spec.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_is_read_bare_or_wrapped() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        assert_eq!(uncompressed_point(&bare, 32).ok(), Some(bare.clone()));
        let wrapped = OctetString::new(bare.clone()).and_then(|o| o.to_der()).ok();
        let wrapped = wrapped.unwrap_or_default();
        assert_eq!(wrapped.len(), 67);
        assert_eq!(uncompressed_point(&wrapped, 32).ok(), Some(bare));
        assert!(uncompressed_point(&[0x04, 0x01, 0x02], 32).is_err());
    }

    /// Gives the public half of a fresh key pair the label `label`: a stray public key that only shares a label.
    fn stray_public_key(hsm: &Hsm, label: &str) -> SubjectPublicKeyInfoOwned {
        let stray = hsm.generate_key_pair(&crate::testkit::unique_label("stray"), KeySpec::EcP256).expect("generate");
        hsm.with_session(|session| {
            let public = find_public_half(session, &stray.label, &stray.id)?
                .ok_or_else(|| HsmError::KeyNotFound { label: stray.label.clone(), class: "public key" })?;
            let relabel = [Attribute::Label(label.as_bytes().to_vec())];
            session.update_attributes(public, &relabel).map_err(HsmError::pkcs11("C_SetAttributeValue"))
        })
        .expect("relabel the stray public key");
        stray.public_key
    }

    #[test]
    fn a_stray_public_key_with_the_same_label_is_not_the_pairs() {
        let hsm = &crate::testkit::shared().hsm;
        let label = crate::testkit::unique_label("paired");
        // The stray comes first, so a search by label alone meets it first.
        let stray = stray_public_key(hsm, &label);
        let key = hsm.generate_key_pair(&label, KeySpec::EcP256).expect("generate");
        assert_ne!(key.public_key, stray);
        let found = hsm.find_key_pair(&label).expect("find");
        assert_eq!(found.public_key, key.public_key, "the public half is the one with the private key's CKA_ID");
        assert_eq!(found.id, key.id);

        hsm.destroy_key_pair(&label).expect("destroy");
        assert!(!hsm.key_exists(&label).expect("look up"));
        let left = hsm
            .with_session(|session| {
                let template = [Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Label(label.as_bytes().to_vec())];
                let handles = session.find_objects(&template).map_err(HsmError::pkcs11("C_FindObjects"))?;
                handles.into_iter().map(|h| object_id(session, h)).collect::<Result<Vec<_>>>()
            })
            .expect("remaining public keys");
        assert_eq!(left.len(), 1, "only the pair's public key is destroyed");
        assert_ne!(left[0], key.id);
    }

    #[test]
    fn key_specs_round_trip_through_their_names() {
        for spec in KeySpec::ALL {
            assert_eq!(spec.name().parse::<KeySpec>().ok(), Some(spec));
        }
        assert!("ec-p521".parse::<KeySpec>().is_err());
    }
}
