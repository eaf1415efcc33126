//! External account binding (RFC 8555 §7.3.4): an inner JWS, MACed with a key the CA handed out beforehand, whose
//! payload is the new account's public key.
//!
//! Server flow: [`EabJws::from_value`] on the newAccount payload's "externalAccountBinding", look the MAC key up
//! by [`EabJws::kid`], then [`EabJws::verify`].

use ring::hmac;
use serde_json::Value;

use crate::alg::MacAlgorithm;
use crate::b64;
use crate::error::JwsError;
use crate::jwk::Jwk;
use crate::jws::{RawJws, header_str};
use crate::sign::FlattenedJws;

/// A parsed external account binding whose MAC has not been checked yet.
pub struct EabJws {
    raw: RawJws,
    alg: MacAlgorithm,
    kid: String,
    url: String,
}

impl std::fmt::Debug for EabJws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabJws").field("alg", &self.alg).field("kid", &self.kid).field("url", &self.url).finish()
    }
}

impl EabJws {
    /// Parses the "externalAccountBinding" value: protected header {alg: HS256/384/512, kid, url}, no nonce, no jwk.
    pub fn from_value(value: &Value) -> Result<Self, JwsError> {
        let raw = RawJws::from_value(value)?;
        if raw.header.contains_key("crit") {
            return Err(JwsError::Critical);
        }
        let alg_name = header_str(&raw.header, "alg")?;
        let alg = MacAlgorithm::from_name(&alg_name).ok_or(JwsError::EabAlgorithm(alg_name))?;
        for forbidden in ["nonce", "jwk"] {
            if raw.header.contains_key(forbidden) {
                return Err(JwsError::EabForbiddenHeader(forbidden));
            }
        }
        let kid = header_str(&raw.header, "kid")?;
        let url = header_str(&raw.header, "url")?;
        Ok(EabJws { raw, alg, kid, url })
    }

    /// The external account's key identifier.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> MacAlgorithm {
        self.alg
    }

    /// Checks the MAC with `hmac_key`, that the url is the outer JWS's, and that the payload is `outer_jwk`.
    pub fn verify(&self, hmac_key: &[u8], outer_jwk: &Jwk, outer_url: &str) -> Result<(), JwsError> {
        let key = hmac::Key::new(self.alg.ring(), hmac_key);
        hmac::verify(&key, &self.raw.signing_input(), &self.raw.signature).map_err(|_| JwsError::EabBadMac)?;
        if self.url != outer_url {
            return Err(JwsError::EabUrlMismatch);
        }
        let payload: Value = serde_json::from_slice(&self.raw.payload).map_err(|_| JwsError::EabPayloadMismatch)?;
        match Jwk::from_value(&payload) {
            Ok(jwk) if jwk == *outer_jwk => Ok(()),
            _ => Err(JwsError::EabPayloadMismatch),
        }
    }
}

/// Builds an external account binding for `account_jwk` (client side).
pub fn sign_eab(alg: MacAlgorithm, kid: &str, url: &str, hmac_key: &[u8], account_jwk: &Jwk) -> FlattenedJws {
    let header = serde_json::json!({"alg": alg.as_str(), "kid": kid, "url": url});
    let protected = b64::encode(header.to_string());
    let payload = b64::encode(account_jwk.to_value().to_string());
    let key = hmac::Key::new(alg.ring(), hmac_key);
    let tag = hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    FlattenedJws { protected, payload, signature: b64::encode(tag.as_ref()) }
}
