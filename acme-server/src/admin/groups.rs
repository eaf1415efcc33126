//! `/admin/groups`: account groups and their policy documents. Documents are checked whole by
//! `castellan-policy` before anything is stored, as `castellan group` does.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use castellan_policy::GroupPolicy;
use castellan_store::admin::GroupRecord;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, Caller, Shared, json_body};

pub(super) fn view(group: &GroupRecord) -> Value {
    // Stored documents were checked on the way in; should one not parse, show its text rather than fail.
    let policy = serde_json::from_str(&group.policy_json).unwrap_or_else(|_| Value::String(group.policy_json.clone()));
    json!({
        "id": group.id,
        "name": group.name,
        "policy": policy,
        "created_at": group.created_at,
        "updated_at": group.updated_at,
    })
}

/// A policy document checked whole; its normalised text is what is stored.
fn checked_policy(text: &str) -> Result<String, AdminError> {
    let policy = GroupPolicy::from_json(text).map_err(|e| AdminError::bad_request(e.to_string()))?;
    Ok(policy.to_json().to_owned())
}

pub(super) async fn list(State(state): State<Shared>) -> Result<Response, AdminError> {
    let groups = state.store.groups().await?;
    Ok(Json(json!({ "groups": groups.iter().map(view).collect::<Vec<_>>() })).into_response())
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
    let policy = match new.policy {
        Some(document) => checked_policy(&document.to_string())?,
        None => GroupPolicy::deny_all().to_json().to_owned(),
    };
    let group = state.store.create_group(&new.name, &policy, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(view(&group))).into_response())
}

pub(super) async fn show(State(state): State<Shared>, Path(name): Path<String>) -> Result<Response, AdminError> {
    let group = state
        .store
        .group_by_name(&name)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("account group {name:?} not found")))?;
    Ok(Json(view(&group)).into_response())
}

/// The body is the policy document itself. A document that does not parse or contradicts itself is a 400 with
/// the policy crate's reason, and the group keeps the policy it had.
pub(super) async fn set_policy(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let text = std::str::from_utf8(&body).map_err(|_| AdminError::bad_request("the policy document is not UTF-8"))?;
    let policy = checked_policy(text)?;
    let group = state.store.set_group_policy(&name, &policy, &caller.actor()).await?;
    Ok(Json(view(&group)).into_response())
}

pub(super) async fn delete(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, AdminError> {
    state.store.delete_group(&name, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
