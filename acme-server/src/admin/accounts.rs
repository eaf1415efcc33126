//! `/admin/accounts`: ACME accounts, by id, and deactivating one (as a client can itself, RFC 8555 §7.3.6).

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use castellan_store::acme::AccountRecord;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::{AdminError, Caller, Shared, limit, path_id, query};

fn view(account: &AccountRecord, groups: &HashMap<i64, String>) -> Value {
    json!({
        "id": account.id,
        "status": account.status.as_str(),
        "contacts": account.contacts,
        "group": account.group_id.and_then(|id| groups.get(&id)),
        "group_id": account.group_id,
        "eab_key_id": account.eab_key_id,
        "jwk_thumbprint": account.jwk_thumbprint,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    })
}

async fn group_names(state: &Shared) -> Result<HashMap<i64, String>, AdminError> {
    Ok(state.store.groups().await?.into_iter().map(|g| (g.id, g.name)).collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    group: Option<String>,
    /// The last id of the previous page.
    after: Option<i64>,
    limit: Option<i64>,
}

/// Up to `limit` accounts with ids above `after`; `next_after` continues (null on the last page).
pub(super) async fn list(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: ListQuery = query(&uri)?;
    let limit = limit(q.limit)?;
    let accounts = state.store.accounts(q.group.as_deref(), q.after, limit).await?;
    let groups = group_names(&state).await?;
    let next_after = if accounts.len() as i64 == limit { accounts.last().map(|a| a.id) } else { None };
    let accounts: Vec<_> = accounts.iter().map(|a| view(a, &groups)).collect();
    Ok(Json(json!({ "accounts": accounts, "next_after": next_after })).into_response())
}

pub(super) async fn deactivate(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = path_id(&id, "account")?;
    let account = state.store.deactivate_account(id, &caller.actor()).await?;
    let groups = group_names(&state).await?;
    Ok(Json(view(&account, &groups)).into_response())
}
