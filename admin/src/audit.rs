//! `/admin/audit`: the hash-chained audit log, oldest first, a page at a time; and its verification.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AdminError, Shared, query};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// The last seq seen; default 0 (from the start).
    after_seq: Option<i64>,
    limit: Option<i64>,
    /// The newest entries instead, newest first.
    #[serde(default)]
    tail: bool,
}

pub(super) async fn page(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: PageQuery = query(&uri)?;
    let page = if q.tail {
        state.operator.audit_tail(q.limit).await?
    } else {
        state.operator.audit_page(q.after_seq, q.limit).await?
    };
    Ok(Json(page).into_response())
}

pub(super) async fn verify(State(state): State<Shared>) -> Result<Response, AdminError> {
    Ok(Json(state.operator.audit_verify().await?).into_response())
}
