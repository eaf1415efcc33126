//! The JWS "alg" values Castellan accepts (RFC 7518 §3.1, RFC 8037), and which key each needs.

use std::fmt;

use crate::jwk::KeyKind;

/// A signature algorithm allowed on ACME requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256, raw `r || s` signature.
    Es256,
    /// ECDSA P-384 with SHA-384, raw `r || s` signature.
    Es384,
    /// ECDSA P-521 with SHA-512, raw `r || s` signature (66 octets each).
    Es512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl SignatureAlgorithm {
    /// Every supported algorithm, for the "algorithms" member of a badSignatureAlgorithm problem (RFC 8555 §6.2).
    pub const ALL: [SignatureAlgorithm; 5] = [
        SignatureAlgorithm::Es256,
        SignatureAlgorithm::Es384,
        SignatureAlgorithm::Es512,
        SignatureAlgorithm::Rs256,
        SignatureAlgorithm::EdDsa,
    ];

    /// The "alg" string.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::Es512 => "ES512",
            SignatureAlgorithm::Rs256 => "RS256",
            SignatureAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Parses an "alg" string; `None` for anything not allowed (including "none" and MACs).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The key type this algorithm needs.
    pub fn key_kind(self) -> KeyKind {
        match self {
            SignatureAlgorithm::Es256 => KeyKind::P256,
            SignatureAlgorithm::Es384 => KeyKind::P384,
            SignatureAlgorithm::Es512 => KeyKind::P521,
            SignatureAlgorithm::Rs256 => KeyKind::Rsa,
            SignatureAlgorithm::EdDsa => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A MAC algorithm, allowed only on an external account binding (RFC 8555 §7.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl MacAlgorithm {
    /// Every supported MAC algorithm.
    pub const ALL: [MacAlgorithm; 3] = [MacAlgorithm::Hs256, MacAlgorithm::Hs384, MacAlgorithm::Hs512];

    /// The "alg" string.
    pub fn as_str(self) -> &'static str {
        match self {
            MacAlgorithm::Hs256 => "HS256",
            MacAlgorithm::Hs384 => "HS384",
            MacAlgorithm::Hs512 => "HS512",
        }
    }

    /// Parses an "alg" string.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) fn ring(self) -> ring::hmac::Algorithm {
        match self {
            MacAlgorithm::Hs256 => ring::hmac::HMAC_SHA256,
            MacAlgorithm::Hs384 => ring::hmac::HMAC_SHA384,
            MacAlgorithm::Hs512 => ring::hmac::HMAC_SHA512,
        }
    }
}

impl fmt::Display for MacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
