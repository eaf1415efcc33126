//! `/admin/audit`: the hash-chained audit log, oldest first, a page at a time.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AdminError, Shared, limit, query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// The last seq seen; default 0 (from the start).
    after_seq: Option<i64>,
    limit: Option<i64>,
}

pub(super) async fn page(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: PageQuery = query(&uri)?;
    let limit = limit(q.limit)?;
    let entries = state.store.audit_page(q.after_seq.unwrap_or(0), limit).await?;
    let next_after_seq = if entries.len() as i64 == limit { entries.last().map(|e| e.seq) } else { None };
    let entries: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
                "details": e.details, "hash": hex::encode(e.hash)})
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "next_after_seq": next_after_seq })).into_response())
}
