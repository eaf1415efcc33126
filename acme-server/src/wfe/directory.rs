//! The directory and newNonce (RFC 8555 §7.1.1, §7.2).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use castellan_acme_proto::types::{Directory, DirectoryMeta};
use std::sync::Arc;

use super::Wfe;
use super::urls::BaseUrl;

pub async fn directory(State(wfe): State<Arc<Wfe>>, base: BaseUrl) -> Response {
    let config = &wfe.config;
    let profiles = config.profiles.iter().map(|(name, p)| (name.clone(), p.description.clone())).collect();
    let directory = Directory {
        new_nonce: base.new_nonce(),
        new_account: base.new_account(),
        new_order: base.new_order(),
        new_authz: None,
        revoke_cert: base.revoke_cert(),
        key_change: base.key_change(),
        renewal_info: Some(base.renewal_info()),
        meta: Some(DirectoryMeta {
            terms_of_service: config.terms_of_service.clone(),
            website: config.website.clone(),
            caa_identities: None,
            external_account_required: Some(config.external_account_required),
            profiles: Some(profiles),
        }),
    };
    axum::Json(directory).into_response()
}

/// RFC 8555 §7.2: HEAD answers 200, GET 204; the nonce itself is added to every response.
pub async fn new_nonce_head() -> Response {
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

pub async fn new_nonce_get() -> Response {
    (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "no-store")]).into_response()
}
