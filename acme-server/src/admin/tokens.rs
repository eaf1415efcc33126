//! `/admin/tokens`: the admin API's own tokens. The plaintext is in the answer that created a token, never again.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use castellan_store::admin::{TokenRecord, TokenScope};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, Caller, Shared, json_body, path_id};

fn view(token: &TokenRecord) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "scope": token.scope.as_str(),
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    })
}

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
    let scope = match new.scope.as_deref() {
        None => TokenScope::Read,
        Some(s) => TokenScope::parse(s)
            .ok_or_else(|| AdminError::bad_request(format!("scope {s:?} is neither \"read\" nor \"admin\"")))?,
    };
    let (token, plaintext) = state.store.create_token(&new.name, scope, &caller.actor()).await?;
    let mut body = view(&token);
    body["token"] = Value::String(plaintext);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn list(State(state): State<Shared>) -> Result<Response, AdminError> {
    let tokens = state.store.tokens().await?;
    Ok(Json(json!({ "tokens": tokens.iter().map(view).collect::<Vec<_>>() })).into_response())
}

/// Revokes a token (the caller's own included): it authenticates nothing from now on.
pub(super) async fn revoke(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = path_id(&id, "API token")?;
    let token = state.store.revoke_token(id, &caller.actor()).await?;
    Ok(Json(view(&token)).into_response())
}
