//! `/admin/certificates`: the inventory (search as `castellan inventory` does, one certificate with its PEM) and
//! revocation as `castellan revoke` does it: through the store's revocation path, so the CRL and OCSP follow.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use castellan_ca::crl::RevocationReason;
use castellan_store::inventory::{CertificateQuery, CertificateRecord, CertificateStatus, NameMatch};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

use super::{AdminError, Caller, Shared, json_body, path_id, query};

fn view(c: &CertificateRecord) -> Value {
    json!({
        "id": c.id,
        "serial": c.serial,
        "status": c.status.as_str(),
        "source": c.source.as_str(),
        "profile": c.profile,
        "subject": c.subject,
        "names": c.names,
        "issuer_dn": c.issuer_dn,
        "issuer_key_id": hex::encode(&c.issuer_key_id),
        "cert_sha256": c.cert_sha256.as_ref().map(hex::encode),
        "spki_sha256": hex::encode(&c.spki_sha256),
        "not_before": c.not_before,
        "not_after": c.not_after,
        "account_id": c.account_id,
        "owner": c.owner,
        "replaces_id": c.replaces_id,
        "replaced_by_id": c.replaced_by_id,
        "renewal_due_at": c.renewal_due_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    name: Option<String>,
    suffix: Option<String>,
    serial: Option<String>,
    status: Option<String>,
    expiring_days: Option<u64>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub(super) async fn search(State(state): State<Shared>, uri: Uri) -> Result<Response, AdminError> {
    let q: SearchQuery = query(&uri)?;
    let name = match (q.name, q.suffix) {
        (Some(_), Some(_)) => return Err(AdminError::bad_request("name and suffix exclude each other")),
        (Some(name), None) => Some(NameMatch::Exact(name)),
        (None, Some(suffix)) => Some(NameMatch::Suffix(suffix)),
        (None, None) => None,
    };
    let status = match q.status {
        Some(s) => {
            Some(CertificateStatus::parse(&s).ok_or_else(|| AdminError::bad_request(format!("unknown status {s:?}")))?)
        }
        None => None,
    };
    let limit = q.limit.unwrap_or(CertificateQuery::DEFAULT_LIMIT);
    if !(1..=CertificateQuery::MAX_LIMIT).contains(&limit) {
        return Err(AdminError::bad_request(format!(
            "limit {limit} is not between 1 and {}",
            CertificateQuery::MAX_LIMIT
        )));
    }
    let query = CertificateQuery {
        name,
        serial: q.serial,
        status,
        expiring_within: q.expiring_days.map(|d| Duration::from_secs(d.saturating_mul(86_400))),
        limit,
        cursor: q.cursor,
        ..Default::default()
    };
    let page = state.store.search_certificates(&query).await?;
    let certificates: Vec<_> = page.items.iter().map(view).collect();
    Ok(Json(json!({ "certificates": certificates, "next_cursor": page.next_cursor })).into_response())
}

pub(super) async fn show(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, AdminError> {
    let id = path_id(&id, "certificate")?;
    let certificate = state.store.certificate(id).await?;
    let mut body = view(&certificate);
    if let Some(der) = &certificate.certificate_der {
        body["pem"] = Value::String(pem(der));
    }
    Ok(Json(body).into_response())
}

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    /// An RFC 5280 reason name; default "unspecified".
    reason: Option<String>,
}

pub(super) async fn revoke(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AdminError> {
    let id = path_id(&id, "certificate")?;
    let request: Revoke = if body.is_empty() { Revoke { reason: None } } else { json_body(&body)? };
    let reason: RevocationReason = match request.reason.as_deref() {
        None => RevocationReason::Unspecified,
        Some(name) => name.parse().map_err(|e: castellan_ca::crl::CrlError| AdminError::bad_request(e.to_string()))?,
    };
    // certificateHold would promise an un-revocation Castellan does not do; removeFromCRL is for delta CRLs.
    if matches!(reason, RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl) {
        return Err(AdminError::bad_request(format!(
            "reason {reason} is not accepted: revocations are final and CRLs are full CRLs"
        )));
    }
    // NotFound for an unknown id, before anything is written.
    state.store.certificate(id).await?;
    let actor = caller.actor();
    let report = state.store.revoke_certificates(&[id], i64::from(reason.code()), &actor, &actor).await?;
    if report.revoked.is_empty() {
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            format!("certificate {id} is already revoked, or was never issued"),
        ));
    }
    let certificate = state.store.certificate(id).await?;
    let mut body = view(&certificate);
    body["revocation_reason"] = Value::String(reason.name().to_owned());
    Ok(Json(body).into_response())
}
