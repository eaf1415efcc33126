//! `/admin/tokens`: the admin API's own tokens. The plaintext is in the answer that created a token, never again.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use castellan_store::TokenId;
use serde::Deserialize;

use super::{AdminError, Caller, Shared, json_body, path_id};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    /// "read" or "admin"; default "read", the least a token can do.
    scope: Option<String>,
}

pub(super) async fn create(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let new: NewToken = json_body(&body)?;
    let token = state.operator.create_token(&new.name, new.scope.as_deref(), &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

pub(super) async fn list(State(state): State<Shared>) -> Result<Response, AdminError> {
    Ok(Json(state.operator.tokens().await?).into_response())
}

/// Revokes a token (the caller's own included): it authenticates nothing from now on.
pub(super) async fn revoke(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = path_id(&id, "API token", TokenId)?;
    Ok(Json(state.operator.revoke_token(id, &caller.actor()).await?).into_response())
}
