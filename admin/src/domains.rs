//! `/admin/domains` and `/admin/certificates/expiring`: managed certificates (add, list, show with the current
//! certificate and renewal state, renew now, stop managing) and what in the inventory expires soon.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use castellan_authority::operator::{DomainSearch, ExpiringSearch, NewDomain, ReissueRequest};
use serde::Deserialize;
use serde_json::json;

use super::{AdminError, Caller, Shared, json_body, query};

pub(super) async fn add(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let new: NewDomain = json_body(&body)?;
    Ok((StatusCode::CREATED, Json(state.operator.add_domain(new, &caller.actor()).await?)).into_response())
}

pub(super) async fn list(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let search: DomainSearch = query(&uri)?;
    Ok(Json(state.operator.domains(search).await?).into_response())
}

pub(super) async fn certificate(
    State(state): State<Shared>,
    Path(domain): Path<String>,
) -> Result<Response, AdminError> {
    Ok(Json(state.operator.domain(&domain).await?).into_response())
}

/// 202 with the rotation: a new one, or the one already queued or running (`created` says which).
pub(super) async fn renew(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(domain): Path<String>,
) -> Result<Response, AdminError> {
    let (rotation, created) = state.operator.renew_domain(&domain, &caller.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "rotation": rotation, "created": created }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Remove {
    /// Also revoke the current certificate, with this RFC 5280 reason (e.g. cessationOfOperation).
    revoke: Option<String>,
}

pub(super) async fn remove(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(domain): Path<String>,
    uri: Uri,
) -> Result<Response, AdminError> {
    let Remove { revoke } = query(&uri)?;
    Ok(Json(state.operator.remove_domain(&domain, revoke.as_deref(), &caller.actor()).await?).into_response())
}

pub(super) async fn expiring(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let search: ExpiringSearch = query(&uri)?;
    Ok(Json(state.operator.expiring(search).await?).into_response())
}

/// 202: marked; the scheduler issues them. The body says how many were marked and where the whole stands.
pub(super) async fn reissue(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let request: ReissueRequest = json_body(&body)?;
    Ok((StatusCode::ACCEPTED, Json(state.operator.reissue(request, &caller.actor()).await?)).into_response())
}

pub(super) async fn reissue_progress(State(state): State<Shared>) -> Result<Response, AdminError> {
    Ok(Json(state.operator.reissue_progress().await?).into_response())
}
