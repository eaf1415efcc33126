//! Authorization and challenge resources (RFC 8555 §7.5).

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use castellan_store::acme::{AuthorizationRecord, AuthorizationStatus, ChallengeStatus};
use castellan_store::{AuthorizationId, ChallengeId};
use serde::Deserialize;
use std::sync::Arc;

use super::request::KeyRule;
use super::urls::BaseUrl;
use super::{Wfe, json_resource, resource_id, views, with_retry_after};
use crate::problem::AcmeError;

#[derive(Deserialize)]
struct AuthorizationUpdate {
    status: Option<String>,
}

fn authorization_response(wfe: &Wfe, base: &BaseUrl, authz: &AuthorizationRecord) -> Response {
    let now = wfe.ra.now();
    let response = json_resource(StatusCode::OK, None, &views::authorization(base, authz, now));
    let in_flight = authz.challenges.iter().any(|c| c.status == ChallengeStatus::Processing);
    if authz.status == AuthorizationStatus::Pending && in_flight {
        with_retry_after(response, wfe.config.retry_after_secs)
    } else {
        response
    }
}

pub async fn authorization(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = AuthorizationId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    let account = signed.account()?;
    let authz = if signed.jws.is_post_as_get() {
        wfe.ra.authorization(account, id).await?
    } else {
        let update: AuthorizationUpdate = signed.payload()?;
        match update.status.as_deref() {
            Some("deactivated") => wfe.ra.deactivate_authorization(account, id).await?,
            _ => {
                return Err(AcmeError::malformed(
                    "an authorization can only be updated with {\"status\": \"deactivated\"}",
                ));
            }
        }
    };
    Ok(authorization_response(&wfe, &base, &authz))
}

/// POST-as-GET shows the challenge; a JSON object (RFC 8555 §7.5.1: "{}") asks for validation.
pub async fn challenge(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = ChallengeId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    let account = signed.account()?;
    let (challenge, authz) = if signed.jws.is_post_as_get() {
        wfe.ra.challenge(account, id).await?
    } else {
        let _ready: serde_json::Map<String, serde_json::Value> =
            signed.payload().map_err(|_| AcmeError::malformed("a challenge response must be a JSON object, \"{}\""))?;
        wfe.ra.respond_to_challenge(account, id).await?
    };
    let mut response = json_resource(StatusCode::OK, None, &views::challenge(&base, &challenge));
    // RFC 8555 §7.5.1: Link rel="up" to the authorization.
    if let Ok(value) = HeaderValue::from_str(&format!("<{}>;rel=\"up\"", base.authorization(authz.id))) {
        response.headers_mut().append(header::LINK, value);
    }
    if challenge.status == ChallengeStatus::Processing {
        response = with_retry_after(response, wfe.config.retry_after_secs);
    }
    Ok(response)
}
