//! `/admin/eab`: external account binding credentials. The HMAC key is in the answer that created it, never again.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AdminError, Caller, Shared, json_body, query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEab {
    group: String,
    key_id: Option<String>,
}

pub(super) async fn create(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let new: NewEab = json_body(&body)?;
    let created = state.operator.create_eab(&new.group, new.key_id, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    group: Option<String>,
}

pub(super) async fn list(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: ListQuery = query(&uri)?;
    Ok(Json(state.operator.eabs(q.group.as_deref()).await?).into_response())
}

pub(super) async fn delete(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<Response, AdminError> {
    state.operator.delete_eab(&key_id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
