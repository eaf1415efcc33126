//! `/admin/policy/global-deny`: the deny list every group's policy is subject to.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{AdminError, Caller, Shared, text_body};

pub(super) async fn show(State(state): State<Shared>) -> Result<Response, AdminError> {
    Ok(Json(state.operator.global_deny().await?).into_response())
}

/// The body is the deny list itself (`{"dns": [...], "ip": [...], "uri": [...]}`), checked whole.
pub(super) async fn set(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let document = text_body(&body, "deny list")?;
    Ok(Json(state.operator.set_global_deny(document, &caller.actor()).await?).into_response())
}
