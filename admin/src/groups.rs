//! `/admin/groups`: account groups and their policy documents (checked whole by the operator action).

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{AdminError, Caller, Shared, json_body, text_body};

pub(super) async fn list(State(state): State<Shared>) -> Result<Response, AdminError> {
    Ok(Json(state.operator.groups().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    /// Default: nothing allowed.
    policy: Option<Value>,
}

pub(super) async fn create(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let new: NewGroup = json_body(&body)?;
    let policy = new.policy.map(|document| document.to_string());
    let group = state.operator.create_group(&new.name, policy.as_deref(), &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

pub(super) async fn show(State(state): State<Shared>, Path(name): Path<String>) -> Result<Response, AdminError> {
    Ok(Json(state.operator.group(&name).await?).into_response())
}

/// The body is the policy document itself. One that does not parse or contradicts itself is a 400 with the policy
/// crate's reason, and the group keeps the policy it had.
pub(super) async fn set_policy(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let policy = text_body(&body, "policy document")?;
    Ok(Json(state.operator.set_group_policy(&name, policy, &caller.actor()).await?).into_response())
}

pub(super) async fn delete(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, AdminError> {
    state.operator.delete_group(&name, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
