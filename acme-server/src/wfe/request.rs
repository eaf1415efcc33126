//! Turning an HTTP POST into a verified ACME request (RFC 8555 §6.2–§6.5): media type, body size, JWS syntax,
//! signature, "url", replay nonce and the account behind "kid". Every handler goes through here, so each rule is
//! written once.

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use castellan_acme_proto::{Jws, JwsError, VerifiedJws};
use castellan_store::acme::AccountRecord;
use serde::de::DeserializeOwned;

use super::Wfe;
use super::urls::BaseUrl;
use crate::problem::{AcmeError, ProblemType};

pub const JOSE_JSON: &str = "application/jose+json";

/// Which key a request must be signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// "jwk": newAccount.
    Jwk,
    /// "kid": everything an account does.
    Kid,
    /// Either: revokeCert (by account, or by the certificate's own key).
    Either,
}

/// A request whose JWS verified, whose nonce was fresh and whose url matched.
#[derive(Debug)]
pub struct SignedRequest {
    pub jws: VerifiedJws,
    /// The account named by "kid" (valid); None for "jwk" requests.
    pub account: Option<AccountRecord>,
}

impl SignedRequest {
    /// The account, for handlers that required "kid".
    pub fn account(&self) -> Result<&AccountRecord, AcmeError> {
        self.account.as_ref().ok_or_else(|| AcmeError::malformed("this request must be signed with an account key"))
    }

    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, AcmeError> {
        if self.jws.is_post_as_get() {
            return Err(AcmeError::malformed("this request needs a JSON payload, not POST-as-GET"));
        }
        Ok(self.jws.payload_json()?)
    }

    /// POST-as-GET (RFC 8555 §6.3): the payload must be empty.
    pub fn require_post_as_get(&self) -> Result<(), AcmeError> {
        if self.jws.is_post_as_get() {
            Ok(())
        } else {
            Err(AcmeError::malformed("this resource is fetched with POST-as-GET: the payload must be empty"))
        }
    }
}

impl Wfe {
    /// Runs every check a signed request must pass on a whole request.
    pub async fn verify(&self, base: &BaseUrl, request: Request, rule: KeyRule) -> Result<SignedRequest, AcmeError> {
        let (parts, body) = request.into_parts();
        self.verify_request(base, &parts, body, rule).await
    }

    /// Runs every check a signed request must pass.
    pub async fn verify_request(
        &self,
        base: &BaseUrl,
        parts: &Parts,
        body: Body,
        rule: KeyRule,
    ) -> Result<SignedRequest, AcmeError> {
        // Already buffered by the middleware (acme_headers); this only takes it.
        let bytes = read_body(body, self.config.max_body_bytes).await?;
        check_content_type(&parts.headers)?;
        // Routes are nested under /acme: the URL the client used is the original one.
        let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |original| &original.0);
        let jws = Jws::from_slice(&bytes)?;
        let header = jws.header();
        let expected_url = format!("{}{}", base.0, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        if header.url != expected_url {
            return Err(AcmeError::unauthorized(format!(
                "the JWS \"url\" {:?} is not the URL this request was sent to ({expected_url})",
                header.url
            )));
        }
        let nonce = header.nonce.clone().ok_or(JwsError::MissingHeader("nonce"))?;
        let (jws, account) = match (rule, header.kid()) {
            (KeyRule::Jwk, Some(_)) => return Err(JwsError::KidNotAllowed.into()),
            (KeyRule::Kid, None) => return Err(JwsError::JwkNotAllowed.into()),
            (_, Some(kid)) => {
                let account = self.account_for_kid(base, kid).await?;
                let key = castellan_acme_proto::Jwk::from_json_str(&account.jwk_json)
                    .map_err(|e| AcmeError::internal("a stored account key does not parse", &e))?;
                (jws.verify_with(&key)?, Some(account))
            }
            (_, None) => (jws.verify_embedded()?, None),
        };
        // After the signature: a forged request must not be able to burn a client's nonces.
        if !self.ra.consume_nonce(&nonce).await? {
            return Err(AcmeError::new(ProblemType::BadNonce, "the nonce is unknown, expired or already used"));
        }
        Ok(SignedRequest { jws, account })
    }

    async fn account_for_kid(&self, base: &BaseUrl, kid: &str) -> Result<AccountRecord, AcmeError> {
        let id = base
            .account_id(kid)
            .ok_or_else(|| AcmeError::new(ProblemType::AccountDoesNotExist, format!("no account has URL {kid:?}")))?;
        self.ra.valid_account(id, kid).await
    }
}

/// RFC 8555 §6.2: "application/jose+json", exactly (parameters such as charset are tolerated).
fn check_content_type(headers: &HeaderMap) -> Result<(), AcmeError> {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = value.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case(JOSE_JSON) {
        Ok(())
    } else {
        Err(AcmeError::malformed(format!("Content-Type must be {JOSE_JSON}, not {value:?}"))
            .with_status(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE))
    }
}

/// Reads the whole body (chunked or not) up to `limit` bytes. An oversize body is still read (and dropped) up to
/// a bound, so the client finishes sending and hears the 413 instead of a reset stream.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, AcmeError> {
    use http_body_util::BodyExt;
    let drain_limit = limit.saturating_mul(16);
    let mut body = body;
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| AcmeError::malformed(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > drain_limit {
            break;
        }
        if seen <= limit {
            collected.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(AcmeError::malformed(format!("the request body is larger than {limit} bytes"))
            .with_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(collected.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_must_be_jose_json() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_err());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let e = check_content_type(&headers).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(e.kind_suffix(), "malformed");
        headers.insert(header::CONTENT_TYPE, "application/jose+json".parse().unwrap());
        assert!(check_content_type(&headers).is_ok());
    }

    #[tokio::test]
    async fn oversize_bodies_are_413() {
        let e = read_body(Body::from(vec![b'x'; 100]), 10).await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read_body(Body::from("abc"), 10).await.unwrap().as_ref(), b"abc");
    }
}
