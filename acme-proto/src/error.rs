//! Why a JWS (or an external account binding) was refused, and the RFC 8555 problem type each reason maps to.

use crate::b64::B64Error;
use crate::jwk::{JwkError, KeyKind};

/// A refused JWS. [`JwsError::problem_type`] gives the `urn:ietf:params:acme:error:` suffix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("request body is not JSON: {0}")]
    NotJson(String),
    #[error("JWS is not a JSON object")]
    NotAnObject,
    #[error("JWS uses the general JSON serialization (\"signatures\"); RFC 8555 §6.2 requires the flattened form")]
    GeneralSerialization,
    #[error("JWS has an unprotected \"header\" member; RFC 8555 §6.2 forbids it")]
    UnprotectedHeader,
    #[error("JWS has unexpected member {0:?}")]
    UnexpectedMember(String),
    #[error("JWS member {0:?} is missing")]
    MissingMember(&'static str),
    #[error("JWS member {0:?} must be a string")]
    NotAString(&'static str),
    #[error("JWS member {member:?} is not valid base64url: {source}")]
    Base64 { member: &'static str, source: B64Error },
    #[error("protected header is not a JSON object: {0}")]
    HeaderNotJson(String),
    #[error("protected header member {0:?} is missing")]
    MissingHeader(&'static str),
    #[error("protected header member {0:?} must be a string")]
    HeaderNotAString(&'static str),
    #[error("protected header has both \"jwk\" and \"kid\"; RFC 8555 §6.2 requires exactly one")]
    BothJwkAndKid,
    #[error("protected header has neither \"jwk\" nor \"kid\"; RFC 8555 §6.2 requires exactly one")]
    NeitherJwkNorKid,
    #[error("protected header has \"crit\"; no extensions are supported")]
    Critical,
    #[error("alg \"none\" is not allowed")]
    AlgNone,
    #[error("MAC algorithm {0:?} is only allowed on an external account binding")]
    MacNotAllowed(String),
    #[error("unsupported signature algorithm {0:?} (supported: ES256, ES384, ES512, RS256, EdDSA)")]
    UnsupportedAlgorithm(String),
    #[error("alg {alg} does not match the {key} key")]
    AlgKeyMismatch { alg: &'static str, key: KeyKind },
    #[error("bad public key: {0}")]
    BadPublicKey(#[from] JwkError),
    #[error("protected header expected to carry \"jwk\" but carries \"kid\"")]
    KidNotAllowed,
    #[error("protected header expected to carry \"kid\" but carries \"jwk\"")]
    JwkNotAllowed,
    #[error("protected header \"jwk\" differs from the key the request is verified with")]
    JwkMismatch,
    #[error("JWS signature verification failed")]
    BadSignature,
    #[error("JWS payload is not the expected JSON: {0}")]
    PayloadNotJson(String),
    #[error("external account binding alg {0:?} is not a MAC algorithm (HS256, HS384, HS512)")]
    EabAlgorithm(String),
    #[error("external account binding must not carry {0:?} in its protected header")]
    EabForbiddenHeader(&'static str),
    #[error("external account binding url differs from the outer JWS url")]
    EabUrlMismatch,
    #[error("external account binding payload is not the account key of the outer JWS")]
    EabPayloadMismatch,
    #[error("external account binding MAC verification failed")]
    EabBadMac,
    #[error("keyChange inner JWS must not carry a nonce")]
    KeyChangeNonce,
    #[error("keyChange inner JWS url differs from the outer JWS url")]
    KeyChangeUrlMismatch,
    #[error("keyChange \"account\" is not the account that signed the request")]
    KeyChangeAccountMismatch,
    #[error("keyChange \"oldKey\" is not the account's current key")]
    KeyChangeOldKeyMismatch,
}

impl JwsError {
    /// The RFC 8555 §6.7 problem type, without its `urn:ietf:params:acme:error:` prefix.
    ///
    /// A signature that does not verify is `malformed`, as in Boulder: the RFC names no better type. A failing EAB
    /// MAC is `unauthorized`: the client has not proven it holds the external account.
    pub fn problem_type(&self) -> &'static str {
        match self {
            JwsError::AlgNone
            | JwsError::MacNotAllowed(_)
            | JwsError::UnsupportedAlgorithm(_)
            | JwsError::AlgKeyMismatch { .. }
            | JwsError::EabAlgorithm(_) => "badSignatureAlgorithm",
            JwsError::BadPublicKey(_) => "badPublicKey",
            JwsError::EabBadMac => "unauthorized",
            JwsError::NotJson(_)
            | JwsError::NotAnObject
            | JwsError::GeneralSerialization
            | JwsError::UnprotectedHeader
            | JwsError::UnexpectedMember(_)
            | JwsError::MissingMember(_)
            | JwsError::NotAString(_)
            | JwsError::Base64 { .. }
            | JwsError::HeaderNotJson(_)
            | JwsError::MissingHeader(_)
            | JwsError::HeaderNotAString(_)
            | JwsError::BothJwkAndKid
            | JwsError::NeitherJwkNorKid
            | JwsError::Critical
            | JwsError::KidNotAllowed
            | JwsError::JwkNotAllowed
            | JwsError::JwkMismatch
            | JwsError::BadSignature
            | JwsError::PayloadNotJson(_)
            | JwsError::EabForbiddenHeader(_)
            | JwsError::EabUrlMismatch
            | JwsError::EabPayloadMismatch
            | JwsError::KeyChangeNonce
            | JwsError::KeyChangeUrlMismatch
            | JwsError::KeyChangeAccountMismatch
            | JwsError::KeyChangeOldKeyMismatch => "malformed",
        }
    }
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("header alg {header} differs from the signer's {signer}")]
    AlgorithmMismatch { header: &'static str, signer: &'static str },
    #[error("header jwk differs from the signer's public key")]
    JwkMismatch,
    #[error("signer failed: {0}")]
    Signer(String),
}
