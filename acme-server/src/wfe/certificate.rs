//! Certificate resources: download (RFC 8555 §7.4.2), revokeCert (§7.6) and renewalInfo (RFC 9773).

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use castellan_acme_proto::types::Revocation;
use std::sync::Arc;

use super::request::KeyRule;
use super::urls::BaseUrl;
use super::{Wfe, json_resource, resource_id, with_retry_after};
use crate::problem::AcmeError;
use crate::ra::renewal_info::RETRY_AFTER_SECS;
use crate::ra::revocation::Revoker;
use castellan_store::CertificateId;

pub const PEM_CHAIN: &str = "application/pem-certificate-chain";

pub async fn download(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = CertificateId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let chain = wfe.ra.certificate_chain(signed.account()?, id).await?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(PEM_CHAIN))], chain).into_response())
}

pub async fn revoke(State(wfe): State<Arc<Wfe>>, base: BaseUrl, request: Request) -> Result<Response, AcmeError> {
    let signed = wfe.verify(&base, request, KeyRule::Either).await?;
    let payload: Revocation = signed.payload()?;
    let revoker = match &signed.account {
        Some(account) => Revoker::Account(account),
        None => Revoker::CertificateKey(signed.jws.key()),
    };
    wfe.ra.revoke(revoker, &payload).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn renewal_info(State(wfe): State<Arc<Wfe>>, Path(cert_id): Path<String>) -> Result<Response, AcmeError> {
    let info = wfe.ra.renewal_info(&cert_id).await?;
    Ok(with_retry_after(json_resource(StatusCode::OK, None, &info), RETRY_AFTER_SECS))
}
