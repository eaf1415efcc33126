//! `/admin/policy/global-deny`: the deny list every group's policy is subject to, as `castellan policy` sets it.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use castellan_policy::GlobalDeny;
use serde_json::{Value, json};

use super::{AdminError, Caller, Shared};
use crate::ra::policy::GLOBAL_DENY_SETTING;

fn view(text: &str, updated_at: Option<i64>) -> Value {
    let deny = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    json!({ "deny": deny, "updated_at": updated_at })
}

pub(super) async fn show(State(state): State<Shared>) -> Result<Response, AdminError> {
    let current = state.store.setting(GLOBAL_DENY_SETTING).await?;
    let body = match current {
        Some((text, updated_at)) => view(&text, Some(updated_at)),
        None => view("{}", None),
    };
    Ok(Json(body).into_response())
}

/// The body is the deny list itself (`{"dns": [...], "ip": [...], "uri": [...]}`), checked whole.
pub(super) async fn set(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let text = std::str::from_utf8(&body).map_err(|_| AdminError::bad_request("the deny list is not UTF-8"))?;
    let deny = GlobalDeny::from_json(text).map_err(|e| AdminError::bad_request(e.to_string()))?;
    state.store.set_setting(GLOBAL_DENY_SETTING, deny.to_json(), &caller.actor()).await?;
    let (text, updated_at) =
        state.store.setting(GLOBAL_DENY_SETTING).await?.unwrap_or_else(|| (deny.to_json().to_owned(), 0));
    Ok(Json(view(&text, Some(updated_at))).into_response())
}
