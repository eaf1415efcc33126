use serde::{Deserialize, Serialize};

use crate::jwk::Jwk;

/// The finalize request payload (RFC 8555 §7.4): the CSR, DER in base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalize {
    pub csr: String,
}

/// The revokeCert request payload (RFC 8555 §7.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The certificate, DER in base64url.
    pub certificate: String,
    /// RFC 5280 CRLReason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<u8>,
}

/// The payload of keyChange's inner JWS (RFC 8555 §7.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChange {
    pub account: String,
    pub old_key: Jwk,
}
