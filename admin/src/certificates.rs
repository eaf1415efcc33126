//! `/admin/certificates`, `/admin/revocations`, `/admin/renewals`: the inventory (search, one certificate with its
//! PEM), issuing from a CSR, revoking (one, or all a serial, name or account names) and marking for re-issuance.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use castellan_authority::operator::{CertificateSearch, Selector};
use castellan_store::CertificateId;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

use super::{AdminError, Caller, Shared, json_body, path_id, query};

pub(super) async fn search(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let search: CertificateSearch = query(&uri)?;
    Ok(Json(state.operator.search_certificates(search).await?).into_response())
}

pub(super) async fn show(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, AdminError> {
    let id = path_id(&id, "certificate", CertificateId)?;
    Ok(Json(state.operator.certificate(id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    /// PKCS#10, PEM.
    csr: String,
    /// tls-server (default), tls-client or service.
    profile: Option<String>,
    /// Default: the profile's maximum.
    lifetime_secs: Option<u64>,
}

pub(super) async fn issue(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let request: IssueRequest = json_body(&body)?;
    let issued = state
        .operator
        .issue(
            request.csr.into_bytes(),
            request.profile.as_deref().unwrap_or("tls-server"),
            request.lifetime_secs.map(Duration::from_secs),
            &caller.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    /// An RFC 5280 reason name or code; default "unspecified".
    reason: Option<String>,
}

pub(super) async fn revoke(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let id = path_id(&id, "certificate", CertificateId)?;
    let request: Revoke = if body.is_empty() { Revoke { reason: None } } else { json_body(&body)? };
    let (certificate, reason) =
        state.operator.revoke_certificate(id, request.reason.as_deref(), &caller.actor()).await?;
    let mut body = serde_json::to_value(certificate).map_err(|e| AdminError::internal("encoding a certificate", &e))?;
    body["revocation_reason"] = Value::String(reason.name().to_owned());
    Ok(Json(body).into_response())
}

/// A [`Selector`] and a reason (serde's `flatten` cannot be combined with refusing unknown fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Matching {
    id: Option<CertificateId>,
    serial: Option<String>,
    name: Option<String>,
    account: Option<castellan_store::AccountId>,
    reason: Option<String>,
}

pub(super) async fn revoke_matching(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let Matching { id, serial, name, account, reason } = json_body(&body)?;
    let selector = Selector { id, serial, name, account };
    Ok(Json(state.operator.revoke(selector, reason.as_deref(), &caller.actor()).await?).into_response())
}

pub(super) async fn renew_now(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let selector: Selector = json_body(&body)?;
    Ok(Json(state.operator.renew_now(selector, &caller.actor()).await?).into_response())
}
