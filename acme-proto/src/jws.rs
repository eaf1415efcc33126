//! Parsing and verifying ACME request bodies: JWS in the flattened JSON serialization (RFC 7515 §7.2.2), the only
//! form RFC 8555 §6.2 allows.
//!
//! Flow for a server: [`Jws::from_slice`], look at [`Jws::header`] (nonce, url, kid), then either
//! [`Jws::verify_embedded`] (newAccount: key in "jwk") or [`Jws::verify_with`] (key found by "kid"). Only a
//! [`VerifiedJws`] gives access to the payload.

use ring::signature::{self as rs, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::alg::{MacAlgorithm, SignatureAlgorithm};
use crate::b64;
use crate::error::JwsError;
use crate::jwk::{Jwk, KeyKind};

/// How the protected header names the signing key (RFC 8555 §6.2: exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// The public key itself, for newAccount and revocation by certificate key.
    Jwk(Jwk),
    /// The account URL.
    Kid(String),
}

/// A decoded protected header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedHeader {
    pub alg: SignatureAlgorithm,
    pub key: KeyRef,
    /// Replay nonce; required on every request the server receives, absent on keyChange's inner JWS.
    pub nonce: Option<String>,
    pub url: String,
    /// Members not listed above, kept as sent. When building a header, do not repeat the members above here.
    pub extra: Map<String, Value>,
}

impl ProtectedHeader {
    /// The JSON object this header serializes to.
    pub fn to_value(&self) -> Value {
        let mut obj = self.extra.clone();
        obj.insert("alg".into(), self.alg.as_str().into());
        match &self.key {
            KeyRef::Jwk(jwk) => obj.insert("jwk".into(), jwk.to_value()),
            KeyRef::Kid(kid) => obj.insert("kid".into(), kid.as_str().into()),
        };
        if let Some(nonce) = &self.nonce {
            obj.insert("nonce".into(), nonce.as_str().into());
        }
        obj.insert("url".into(), self.url.as_str().into());
        Value::Object(obj)
    }

    /// The key named by "kid", if any.
    pub fn kid(&self) -> Option<&str> {
        match &self.key {
            KeyRef::Kid(kid) => Some(kid),
            KeyRef::Jwk(_) => None,
        }
    }

    /// The key carried in "jwk", if any.
    pub fn jwk(&self) -> Option<&Jwk> {
        match &self.key {
            KeyRef::Jwk(jwk) => Some(jwk),
            KeyRef::Kid(_) => None,
        }
    }

    fn from_map(mut obj: Map<String, Value>) -> Result<Self, JwsError> {
        if obj.contains_key("crit") {
            return Err(JwsError::Critical);
        }
        let alg = parse_alg(&header_str(&obj, "alg")?)?;
        let key = match (obj.remove("jwk"), obj.remove("kid")) {
            (Some(_), Some(_)) => return Err(JwsError::BothJwkAndKid),
            (None, None) => return Err(JwsError::NeitherJwkNorKid),
            (Some(jwk), None) => {
                let jwk = Jwk::from_value(&jwk)?;
                check_alg_key(alg, jwk.kind())?;
                KeyRef::Jwk(jwk)
            }
            (None, Some(Value::String(kid))) => KeyRef::Kid(kid),
            (None, Some(_)) => return Err(JwsError::HeaderNotAString("kid")),
        };
        let nonce = match obj.remove("nonce") {
            None => None,
            Some(Value::String(n)) => Some(n),
            Some(_) => return Err(JwsError::HeaderNotAString("nonce")),
        };
        let url = header_str(&obj, "url")?;
        obj.remove("alg");
        obj.remove("url");
        Ok(ProtectedHeader { alg, key, nonce, url, extra: obj })
    }
}

fn parse_alg(name: &str) -> Result<SignatureAlgorithm, JwsError> {
    if name == "none" {
        return Err(JwsError::AlgNone);
    }
    if MacAlgorithm::from_name(name).is_some() {
        return Err(JwsError::MacNotAllowed(name.into()));
    }
    SignatureAlgorithm::from_name(name).ok_or_else(|| JwsError::UnsupportedAlgorithm(name.into()))
}

fn check_alg_key(alg: SignatureAlgorithm, key: KeyKind) -> Result<(), JwsError> {
    if alg.key_kind() == key { Ok(()) } else { Err(JwsError::AlgKeyMismatch { alg: alg.as_str(), key }) }
}

pub(crate) fn header_str(obj: &Map<String, Value>, name: &'static str) -> Result<String, JwsError> {
    match obj.get(name) {
        None => Err(JwsError::MissingHeader(name)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(JwsError::HeaderNotAString(name)),
    }
}

/// The three members of a flattened JWS, decoded but not interpreted.
pub(crate) struct RawJws {
    pub protected_b64: String,
    pub payload_b64: String,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    pub header: Map<String, Value>,
}

impl RawJws {
    pub fn from_value(value: &Value) -> Result<Self, JwsError> {
        let obj = value.as_object().ok_or(JwsError::NotAnObject)?;
        if obj.contains_key("signatures") {
            return Err(JwsError::GeneralSerialization);
        }
        if obj.contains_key("header") {
            return Err(JwsError::UnprotectedHeader);
        }
        if let Some(other) = obj.keys().find(|k| !matches!(k.as_str(), "protected" | "payload" | "signature")) {
            return Err(JwsError::UnexpectedMember(other.clone()));
        }
        let member = |name: &'static str| -> Result<(String, Vec<u8>), JwsError> {
            let s = obj.get(name).ok_or(JwsError::MissingMember(name))?.as_str().ok_or(JwsError::NotAString(name))?;
            let bytes = b64::decode(s).map_err(|source| JwsError::Base64 { member: name, source })?;
            Ok((s.to_owned(), bytes))
        };
        let (protected_b64, protected) = member("protected")?;
        let (payload_b64, payload) = member("payload")?;
        let (_, signature) = member("signature")?;
        let header = match serde_json::from_slice::<Value>(&protected) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(JwsError::HeaderNotJson("not an object".into())),
            Err(e) => return Err(JwsError::HeaderNotJson(e.to_string())),
        };
        Ok(RawJws { protected_b64, payload_b64, payload, signature, header })
    }

    /// ASCII(BASE64URL(protected) || '.' || BASE64URL(payload)), RFC 7515 §5.2.
    pub fn signing_input(&self) -> Vec<u8> {
        [self.protected_b64.as_bytes(), b".", self.payload_b64.as_bytes()].concat()
    }
}

/// A parsed ACME request JWS whose signature has not been checked yet.
pub struct Jws {
    raw: RawJws,
    header: ProtectedHeader,
}

impl std::fmt::Debug for Jws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws").field("header", &self.header).finish_non_exhaustive()
    }
}

impl Jws {
    /// Parses a request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, JwsError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| JwsError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Parses a JWS already read as JSON (e.g. keyChange's inner JWS).
    pub fn from_value(value: &Value) -> Result<Self, JwsError> {
        let raw = RawJws::from_value(value)?;
        let header = ProtectedHeader::from_map(raw.header.clone())?;
        Ok(Jws { raw, header })
    }

    /// The protected header, before the signature is checked: use it to find the key, never to trust content.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// Verifies with the key in the header's "jwk".
    pub fn verify_embedded(self) -> Result<VerifiedJws, JwsError> {
        let key = self.header.jwk().ok_or(JwsError::KidNotAllowed)?.clone();
        self.verify_with(&key)
    }

    /// Verifies with `key` (typically the account key found through "kid"). If the header carries a "jwk", it
    /// must be that same key.
    pub fn verify_with(self, key: &Jwk) -> Result<VerifiedJws, JwsError> {
        if self.header.jwk().is_some_and(|jwk| jwk != key) {
            return Err(JwsError::JwkMismatch);
        }
        check_alg_key(self.header.alg, key.kind())?;
        verify_signature(self.header.alg, key, &self.raw.signing_input(), &self.raw.signature)?;
        Ok(VerifiedJws { header: self.header, payload: self.raw.payload, key: key.clone() })
    }
}

fn verify_signature(alg: SignatureAlgorithm, key: &Jwk, msg: &[u8], sig: &[u8]) -> Result<(), JwsError> {
    let result = match alg {
        SignatureAlgorithm::Es256 => {
            UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, key.ring_public_key()).verify(msg, sig)
        }
        SignatureAlgorithm::Es384 => {
            UnparsedPublicKey::new(&rs::ECDSA_P384_SHA384_FIXED, key.ring_public_key()).verify(msg, sig)
        }
        // ring has no P-521: RustCrypto's p521 verifies it (SHA-512, fixed-size r || s).
        SignatureAlgorithm::Es512 => {
            use p521::ecdsa::signature::Verifier;
            let verifying = p521::ecdsa::VerifyingKey::from_sec1_bytes(&key.ring_public_key())
                .map_err(|_| JwsError::BadSignature)?;
            let signature = p521::ecdsa::Signature::from_slice(sig).map_err(|_| JwsError::BadSignature)?;
            return verifying.verify(msg, &signature).map_err(|_| JwsError::BadSignature);
        }
        SignatureAlgorithm::EdDsa => UnparsedPublicKey::new(&rs::ED25519, key.ring_public_key()).verify(msg, sig),
        SignatureAlgorithm::Rs256 => {
            let (n, e) = key.rsa_components().ok_or(JwsError::BadSignature)?;
            RsaPublicKeyComponents { n, e }.verify(&rs::RSA_PKCS1_2048_8192_SHA256, msg, sig)
        }
    };
    result.map_err(|_| JwsError::BadSignature)
}

/// A JWS whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    header: ProtectedHeader,
    payload: Vec<u8>,
    key: Jwk,
}

impl VerifiedJws {
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The key the signature verified with.
    pub fn key(&self) -> &Jwk {
        &self.key
    }

    /// The decoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True for POST-as-GET (RFC 8555 §6.3): the payload is the empty string.
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Deserializes the payload as JSON.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, JwsError> {
        serde_json::from_slice(&self.payload).map_err(|e| JwsError::PayloadNotJson(e.to_string()))
    }
}
