//! Public JWKs (RFC 7517, RFC 7518 §6) for the key types an ACME account may use, and their RFC 7638 thumbprint.
//!
//! Supported: EC P-256, P-384 and P-521, RSA with a 2048..=8192-bit modulus, OKP Ed25519. ring verifies all but
//! P-521, which RustCrypto's p521 verifies.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::b64::{self, B64Error};

/// Smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: usize = 8192;

/// Members that only a private (or symmetric) JWK carries.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK was refused. All map to the ACME `badPublicKey` problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("JWK is not valid JSON: {0}")]
    NotJson(String),
    #[error("JWK is not a JSON object")]
    NotAnObject,
    #[error("JWK member {0:?} is missing")]
    MissingMember(&'static str),
    #[error("JWK member {0:?} must be a string")]
    NotAString(&'static str),
    #[error("JWK member {member:?} is not valid base64url: {source}")]
    Base64 { member: &'static str, source: B64Error },
    #[error("JWK contains private key member {0:?}; send only the public key")]
    PrivateMember(&'static str),
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("invalid public key: {0}")]
    InvalidKey(String),
}

/// The kinds of key a [`Jwk`] may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    P521,
    Rsa,
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384",
            KeyKind::P521 => "EC P-521",
            KeyKind::Rsa => "RSA",
            KeyKind::Ed25519 => "OKP Ed25519",
        })
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Key {
    P256 {
        x: [u8; 32],
        y: [u8; 32],
    },
    P384 {
        x: [u8; 48],
        y: [u8; 48],
    },
    P521 {
        x: [u8; 66],
        y: [u8; 66],
    },
    /// Big-endian, no leading zero octets.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: [u8; 32],
    },
}

/// A validated public JWK. Equality compares key material only (members such as "kid" or "use" are dropped).
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    key: Key,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jwk({}, {})", self.kind(), self.thumbprint())
    }
}

impl Jwk {
    /// Parses a JWK from JSON text.
    pub fn from_json_str(s: &str) -> Result<Self, JwkError> {
        let value: Value = serde_json::from_str(s).map_err(|e| JwkError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Parses and validates a public JWK.
    pub fn from_value(value: &Value) -> Result<Self, JwkError> {
        let obj = value.as_object().ok_or(JwkError::NotAnObject)?;
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(JwkError::PrivateMember(m));
        }
        let key = match str_member(obj, "kty")? {
            "EC" => parse_ec(obj)?,
            "RSA" => parse_rsa(obj)?,
            "OKP" => parse_okp(obj)?,
            other => return Err(JwkError::UnsupportedKey(format!("kty {other:?}"))),
        };
        Ok(Jwk { key })
    }

    /// Builds a JWK from an RSA public key's big-endian modulus and exponent, with the same checks as parsing.
    pub fn from_rsa_components(n: &[u8], e: &[u8]) -> Result<Self, JwkError> {
        let strip = |b: &[u8]| b.iter().position(|&x| x != 0).map_or(Vec::new(), |i| b[i..].to_vec());
        Ok(Jwk { key: check_rsa(strip(n), strip(e))? })
    }

    /// Builds a JWK from an uncompressed SEC1 point (`04 || x || y`) on P-256 or P-384.
    pub fn from_ec_sec1(point: &[u8]) -> Result<Self, JwkError> {
        let Some((&4, coords)) = point.split_first() else {
            return Err(JwkError::InvalidKey("EC point is not in uncompressed form".into()));
        };
        let (x, y) = coords.split_at(coords.len() / 2);
        let key = match (x.try_into(), y.try_into(), x.try_into(), y.try_into()) {
            (Ok(x), Ok(y), _, _) => check_p256(x, y)?,
            (_, _, Ok(x), Ok(y)) => check_p384(x, y)?,
            _ if coords.len() == 132 => check_p521(
                x.try_into().map_err(|_| JwkError::InvalidKey("P-521 x".into()))?,
                y.try_into().map_err(|_| JwkError::InvalidKey("P-521 y".into()))?,
            )?,
            _ => return Err(JwkError::UnsupportedKey(format!("EC point of {} bytes", point.len()))),
        };
        Ok(Jwk { key })
    }

    /// Builds a JWK from a 32-byte Ed25519 public key.
    pub fn from_ed25519(x: [u8; 32]) -> Result<Self, JwkError> {
        Ok(Jwk { key: check_ed25519(x)? })
    }

    /// Builds a JWK from a DER SubjectPublicKeyInfo (a CSR's or certificate's key), so the server can compare it
    /// with account keys: a CSR must not carry the account key, and revocation by certificate key must be signed
    /// with the certificate's key.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, JwkError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::DecodePublicKey;
        if let Ok(key) = p256::PublicKey::from_public_key_der(spki) {
            return Self::from_ec_sec1(key.to_encoded_point(false).as_bytes());
        }
        if let Ok(key) = p384::PublicKey::from_public_key_der(spki) {
            return Self::from_ec_sec1(key.to_encoded_point(false).as_bytes());
        }
        if let Ok(key) = p521::PublicKey::from_public_key_der(spki) {
            return Self::from_ec_sec1(key.to_encoded_point(false).as_bytes());
        }
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(spki) {
            return Self::from_ed25519(key.to_bytes());
        }
        if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(spki) {
            use rsa::traits::PublicKeyParts;
            return Self::from_rsa_components(&key.n().to_bytes_be(), &key.e().to_bytes_be());
        }
        Err(JwkError::UnsupportedKey("a SubjectPublicKeyInfo of no supported key type".into()))
    }

    /// The key's type.
    pub fn kind(&self) -> KeyKind {
        match self.key {
            Key::P256 { .. } => KeyKind::P256,
            Key::P384 { .. } => KeyKind::P384,
            Key::P521 { .. } => KeyKind::P521,
            Key::Rsa { .. } => KeyKind::Rsa,
            Key::Ed25519 { .. } => KeyKind::Ed25519,
        }
    }

    /// RSA modulus length in bits; `None` for other key types.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.key {
            Key::Rsa { n, .. } => Some(bit_len(n)),
            _ => None,
        }
    }

    /// The bytes ring wants for verification: SEC1 uncompressed point, raw Ed25519 key. RSA is handled apart.
    pub(crate) fn ring_public_key(&self) -> Vec<u8> {
        match &self.key {
            Key::P256 { x, y } => [&[4u8][..], x, y].concat(),
            Key::P384 { x, y } => [&[4u8][..], x, y].concat(),
            Key::P521 { x, y } => [&[4u8][..], x, y].concat(),
            Key::Ed25519 { x } => x.to_vec(),
            Key::Rsa { .. } => Vec::new(),
        }
    }

    /// RSA modulus and exponent, big-endian.
    pub(crate) fn rsa_components(&self) -> Option<(&[u8], &[u8])> {
        match &self.key {
            Key::Rsa { n, e } => Some((n, e)),
            _ => None,
        }
    }

    /// The required members (RFC 7638 §3.2) as canonical JSON: lexicographic order, no whitespace.
    pub fn canonical_json(&self) -> String {
        // Every value is a fixed name or base64url, so none needs JSON escaping.
        match &self.key {
            Key::P256 { x, y } => ec_json("P-256", x, y),
            Key::P384 { x, y } => ec_json("P-384", x, y),
            Key::P521 { x, y } => ec_json("P-521", x, y),
            Key::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64::encode(e), b64::encode(n)),
            Key::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64::encode(x)),
        }
    }

    /// RFC 7638 JWK thumbprint with SHA-256, base64url without padding.
    pub fn thumbprint(&self) -> String {
        b64::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    /// The public JWK as a JSON value (required members only).
    pub fn to_value(&self) -> Value {
        use serde_json::json;
        match &self.key {
            Key::P256 { x, y } => json!({"crv": "P-256", "kty": "EC", "x": b64::encode(x), "y": b64::encode(y)}),
            Key::P384 { x, y } => json!({"crv": "P-384", "kty": "EC", "x": b64::encode(x), "y": b64::encode(y)}),
            Key::P521 { x, y } => json!({"crv": "P-521", "kty": "EC", "x": b64::encode(x), "y": b64::encode(y)}),
            Key::Rsa { n, e } => json!({"e": b64::encode(e), "kty": "RSA", "n": b64::encode(n)}),
            Key::Ed25519 { x } => json!({"crv": "Ed25519", "kty": "OKP", "x": b64::encode(x)}),
        }
    }
}

impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Jwk::from_value(&value).map_err(serde::de::Error::custom)
    }
}

fn ec_json(crv: &str, x: &[u8], y: &[u8]) -> String {
    format!(r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#, b64::encode(x), b64::encode(y))
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, JwkError> {
    obj.get(name).ok_or(JwkError::MissingMember(name))?.as_str().ok_or(JwkError::NotAString(name))
}

fn b64_member(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JwkError> {
    b64::decode(str_member(obj, name)?).map_err(|source| JwkError::Base64 { member: name, source })
}

fn fixed<const N: usize>(obj: &Map<String, Value>, name: &'static str) -> Result<[u8; N], JwkError> {
    let bytes = b64_member(obj, name)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| JwkError::InvalidKey(format!("member {name:?} is {len} bytes, expected {N} (RFC 7518 §6.2.1.2)")))
}

fn parse_ec(obj: &Map<String, Value>) -> Result<Key, JwkError> {
    match str_member(obj, "crv")? {
        "P-256" => check_p256(fixed(obj, "x")?, fixed(obj, "y")?),
        "P-384" => check_p384(fixed(obj, "x")?, fixed(obj, "y")?),
        "P-521" => check_p521(fixed(obj, "x")?, fixed(obj, "y")?),
        other => Err(JwkError::UnsupportedKey(format!("EC curve {other:?} (supported: P-256, P-384, P-521)"))),
    }
}

fn check_p256(x: [u8; 32], y: [u8; 32]) -> Result<Key, JwkError> {
    let point = [&[4u8][..], &x, &y].concat();
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| JwkError::InvalidKey("point is not on P-256".into()))?;
    Ok(Key::P256 { x, y })
}

fn check_p384(x: [u8; 48], y: [u8; 48]) -> Result<Key, JwkError> {
    let point = [&[4u8][..], &x, &y].concat();
    p384::PublicKey::from_sec1_bytes(&point).map_err(|_| JwkError::InvalidKey("point is not on P-384".into()))?;
    Ok(Key::P384 { x, y })
}

fn check_p521(x: [u8; 66], y: [u8; 66]) -> Result<Key, JwkError> {
    let point = [&[4u8][..], &x, &y].concat();
    p521::PublicKey::from_sec1_bytes(&point).map_err(|_| JwkError::InvalidKey("point is not on P-521".into()))?;
    Ok(Key::P521 { x, y })
}

fn parse_okp(obj: &Map<String, Value>) -> Result<Key, JwkError> {
    match str_member(obj, "crv")? {
        "Ed25519" => check_ed25519(fixed(obj, "x")?),
        other => Err(JwkError::UnsupportedKey(format!("OKP curve {other:?} (supported: Ed25519)"))),
    }
}

fn check_ed25519(x: [u8; 32]) -> Result<Key, JwkError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| JwkError::InvalidKey("not a valid Ed25519 point".into()))?;
    if key.is_weak() {
        return Err(JwkError::InvalidKey("Ed25519 key of small order".into()));
    }
    Ok(Key::Ed25519 { x })
}

fn parse_rsa(obj: &Map<String, Value>) -> Result<Key, JwkError> {
    let n = b64_member(obj, "n")?;
    let e = b64_member(obj, "e")?;
    if n.first() == Some(&0) || e.first() == Some(&0) {
        return Err(JwkError::InvalidKey("RSA n and e must not have leading zero octets (RFC 7518 §6.3.1)".into()));
    }
    check_rsa(n, e)
}

fn check_rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Key, JwkError> {
    let bits = bit_len(&n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(JwkError::InvalidKey(format!(
            "RSA modulus of {bits} bits (allowed: {RSA_MIN_BITS} to {RSA_MAX_BITS})"
        )));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(JwkError::InvalidKey("RSA modulus is even".into()));
    }
    // ring accepts exponents from 3 up to 2^33 - 1; we keep to 32 bits.
    if e.len() > 4 {
        return Err(JwkError::InvalidKey("RSA exponent larger than 32 bits".into()));
    }
    let value = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    if value < 3 || value % 2 == 0 {
        return Err(JwkError::InvalidKey(format!("RSA exponent {value} (must be odd and at least 3)")));
    }
    Ok(Key::Rsa { n, e })
}

/// Bit length of a big-endian integer without leading zero octets.
fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        Some(&first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spki_keys_convert_to_the_same_jwk() {
        use p256::pkcs8::EncodePublicKey;
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let from_spki = super::Jwk::from_spki_der(spki.as_bytes()).unwrap();
        let direct = super::Jwk::from_ec_sec1(key.verifying_key().to_encoded_point(false).as_bytes()).unwrap();
        assert_eq!(from_spki.thumbprint(), direct.thumbprint());
        assert!(super::Jwk::from_spki_der(b"garbage").is_err());
    }

    use super::*;
    use serde_json::json;

    /// RFC 7638 §3.1.
    pub(crate) const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rfc7638_key() -> Value {
        json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
    }

    #[test]
    fn rfc7638_thumbprint() {
        let jwk = Jwk::from_value(&rfc7638_key()).unwrap();
        assert_eq!(jwk.kind(), KeyKind::Rsa);
        assert_eq!(jwk.rsa_bits(), Some(2048));
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(jwk.canonical_json(), format!(r#"{{"e":"AQAB","kty":"RSA","n":"{RFC7638_N}"}}"#));
    }

    #[test]
    fn to_value_matches_canonical_json() {
        let jwk = Jwk::from_value(&rfc7638_key()).unwrap();
        assert_eq!(jwk.to_value().to_string(), jwk.canonical_json());
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let jwk = Jwk::from_value(&ed).unwrap();
        assert_eq!(jwk.to_value().to_string(), jwk.canonical_json());
    }

    #[test]
    fn from_ec_sec1_checks_form_and_length() {
        let p256 = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let jwk = Jwk::from_value(&p256).unwrap();
        let point = jwk.ring_public_key();
        assert_eq!(Jwk::from_ec_sec1(&point).unwrap(), jwk);
        assert_eq!(jwk.to_value().to_string(), jwk.canonical_json());
        let mut compressed = point.clone();
        compressed[0] = 2;
        assert!(matches!(Jwk::from_ec_sec1(&compressed), Err(JwkError::InvalidKey(_))));
        assert!(matches!(Jwk::from_ec_sec1(&point[..64]), Err(JwkError::UnsupportedKey(_))));
        assert!(matches!(Jwk::from_ec_sec1(&[]), Err(JwkError::InvalidKey(_))));
    }

    #[test]
    fn from_json_str_and_serde() {
        let jwk = Jwk::from_json_str(&rfc7638_key().to_string()).unwrap();
        let round: Jwk = serde_json::from_value(serde_json::to_value(&jwk).unwrap()).unwrap();
        assert_eq!(round, jwk);
        assert!(matches!(Jwk::from_json_str("{"), Err(JwkError::NotJson(_))));
        assert_eq!(Jwk::from_value(&json!([1])), Err(JwkError::NotAnObject));
    }

    #[test]
    fn private_members_are_refused() {
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            let mut key = rfc7638_key();
            key[m] = json!("AQAB");
            assert_eq!(Jwk::from_value(&key), Err(JwkError::PrivateMember(m)), "{m}");
        }
        assert_eq!(Jwk::from_value(&json!({"kty": "oct", "k": "AAAA"})), Err(JwkError::PrivateMember("k")));
    }

    #[test]
    fn rsa_limits() {
        // 1024-bit modulus: first 128 bytes of the RFC key.
        let n = b64::decode(RFC7638_N).unwrap();
        let short = json!({"kty": "RSA", "n": b64::encode(&n[..128]), "e": "AQAB"});
        assert!(matches!(Jwk::from_value(&short), Err(JwkError::InvalidKey(m)) if m.contains("1024 bits")));
        let even_e = json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAA"});
        assert!(matches!(Jwk::from_value(&even_e), Err(JwkError::InvalidKey(_))));
        let leading_zero = json!({"kty": "RSA", "n": b64::encode([&[0u8][..], &n].concat()), "e": "AQAB"});
        assert!(matches!(Jwk::from_value(&leading_zero), Err(JwkError::InvalidKey(_))));
        let missing_e = json!({"kty": "RSA", "n": RFC7638_N});
        assert_eq!(Jwk::from_value(&missing_e), Err(JwkError::MissingMember("e")));
    }

    #[test]
    fn ec_and_okp() {
        // RFC 7515 Appendix A.3 P-256 key.
        let p256 = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert_eq!(Jwk::from_value(&p256).unwrap().kind(), KeyKind::P256);
        let mut off_curve = p256.clone();
        off_curve["y"] = json!("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a8");
        assert!(matches!(Jwk::from_value(&off_curve), Err(JwkError::InvalidKey(_))));
        let mut short = p256.clone();
        short["x"] = json!("AAAA");
        assert!(matches!(Jwk::from_value(&short), Err(JwkError::InvalidKey(_))));
        let p521 = json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"});
        assert!(matches!(Jwk::from_value(&p521), Err(JwkError::InvalidKey(_))));
        let secp256k1 = json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"});
        assert!(matches!(Jwk::from_value(&secp256k1), Err(JwkError::UnsupportedKey(_))));
        // RFC 8037 Appendix A.2 Ed25519 key.
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let jwk = Jwk::from_value(&ed).unwrap();
        // RFC 8037 Appendix A.3 thumbprint.
        assert_eq!(jwk.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(matches!(Jwk::from_value(&x25519), Err(JwkError::UnsupportedKey(_))));
        let padded = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="});
        assert!(matches!(Jwk::from_value(&padded), Err(JwkError::Base64 { member: "x", source: B64Error::Padding })));
    }
}
