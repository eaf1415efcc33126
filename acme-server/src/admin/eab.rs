//! `/admin/eab`: external account binding credentials. A fresh HMAC key is sealed under the token's KEK before it
//! is stored and shown in the clear exactly once, in the answer that created it.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use castellan_store::admin::EabRecord;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, Caller, Shared, json_body, query};

fn view(record: &EabRecord) -> Value {
    json!({
        "key_id": record.key_id,
        "group": record.group_name,
        "created_at": record.created_at,
        "used_at": record.used_at,
        "used_by_account": record.used_by_account,
    })
}

/// A random key id: 16 bytes, base64url (as `castellan eab create` makes them).
fn random_key_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    castellan_acme_proto::b64::encode(bytes)
}

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
    let keys = state.eab_keys.as_ref().ok_or_else(|| {
        AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "this server has no sealing key for EAB credentials")
    })?;
    // Checked first so an unknown group costs no HSM work; the store checks again in its transaction.
    if state.store.group_by_name(&new.group).await?.is_none() {
        return Err(AdminError::not_found(format!("account group {:?} not found", new.group)));
    }
    let key_id = new.key_id.unwrap_or_else(random_key_id);
    let (hmac, sealed) = keys.generate(&key_id).await.map_err(|e| AdminError::internal("sealing the HMAC key", &e))?;
    let record = state.store.create_eab(&key_id, &new.group, &sealed, &caller.actor()).await?;
    let body = json!({
        "key_id": record.key_id,
        "hmac_key": castellan_acme_proto::b64::encode(&*hmac),
        "group": record.group_name,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    group: Option<String>,
}

pub(super) async fn list(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: ListQuery = query(&uri)?;
    let records = state.store.eabs(q.group.as_deref()).await?;
    Ok(Json(json!({ "credentials": records.iter().map(view).collect::<Vec<_>>() })).into_response())
}

pub(super) async fn delete(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<Response, AdminError> {
    state.store.delete_eab(&key_id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
