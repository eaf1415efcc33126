//! `/admin/accounts`: ACME accounts, by id, and deactivating one.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use castellan_store::AccountId;
use serde::Deserialize;

use super::{AdminError, Caller, Shared, path_id, query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    group: Option<String>,
    /// The last id of the previous page.
    after: Option<AccountId>,
    limit: Option<i64>,
}

/// Up to `limit` accounts with ids above `after`; `next_after` continues (null on the last page).
pub(super) async fn list(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: ListQuery = query(&uri)?;
    Ok(Json(state.operator.accounts(q.group.as_deref(), q.after, q.limit).await?).into_response())
}

pub(super) async fn deactivate(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = path_id(&id, "account", AccountId)?;
    Ok(Json(state.operator.deactivate_account(id, &caller.actor()).await?).into_response())
}
