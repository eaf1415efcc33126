//! The web front end: RFC 8555's HTTP surface. It checks every request (JWS, nonce, url, account) and turns RA
//! results into resources and RA refusals into problem documents; it decides nothing itself.

mod account;
mod authz;
mod certificate;
mod directory;
mod order;
mod request;
pub mod urls;
mod views;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

use crate::config::AcmeConfig;
use crate::problem::AcmeError;
use crate::ra::Ra;
pub use request::JOSE_JSON;
use urls::BaseUrl;

pub struct Wfe {
    pub(crate) ra: Ra,
    pub(crate) config: Arc<AcmeConfig>,
}

impl Wfe {
    pub fn new(ra: Ra, config: Arc<AcmeConfig>) -> Wfe {
        Wfe { ra, config }
    }
}

pub const REPLAY_NONCE: &str = "replay-nonce";

/// The client's address, put in each request's extensions by the server's connection loop.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The ACME routes, under [`urls::PREFIX`].
pub fn router(wfe: Arc<Wfe>) -> Router {
    let routes = Router::new()
        .route("/directory", get(directory::directory))
        .route("/new-nonce", get(directory::new_nonce_get).head(directory::new_nonce_head))
        .route("/new-account", post(account::new_account))
        .route("/acct/{id}", post(account::account))
        .route("/acct/{id}/orders", post(account::orders))
        .route("/key-change", post(account::key_change))
        .route("/new-order", post(order::new_order))
        .route("/order/{id}", post(order::order))
        .route("/order/{id}/finalize", post(order::finalize))
        .route("/authz/{id}", post(authz::authorization))
        .route("/chall/{id}", post(authz::challenge))
        .route("/cert/{id}", post(certificate::download))
        .route("/revoke-cert", post(certificate::revoke))
        .route("/renewal-info/{cert_id}", get(certificate::renewal_info))
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&wfe), count_request))
        .fallback(unknown_resource)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&wfe), acme_headers))
        .with_state(wfe);
    Router::new().nest(urls::PREFIX, routes)
}

/// `castellan_acme_requests_total{endpoint, status}`: the endpoint is the route's template ("/order/{id}"), so the
/// label's values are as few as the routes.
async fn count_request(
    State(wfe): State<Arc<Wfe>>,
    path: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint = path.as_str().strip_prefix(urls::PREFIX).unwrap_or(path.as_str()).to_owned();
    let response = next.run(request).await;
    wfe.ra.metrics().acme_request(endpoint, response.status().as_u16());
    response
}

async fn unknown_resource() -> AcmeError {
    AcmeError::malformed("no such ACME resource").with_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> AcmeError {
    AcmeError::malformed("method not allowed on this resource (ACME uses POST, and GET for the directory)")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// RFC 8555 §6.5 and §7.1: every response carries a fresh Replay-Nonce and a Link to the directory, so a client
/// that got a badNonce can retry at once.
///
/// It also reads the whole request body first (bounded), so every answer — even one refusing the request before a
/// handler would look at the body — reaches a client that has finished sending; an HTTP/2 stream answered
/// mid-upload is reset, and clients report the reset instead of the problem.
async fn acme_headers(State(wfe): State<Arc<Wfe>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let base = BaseUrl::from_request_parts(&mut parts, &wfe).await;
    let mut response = match request::read_body(body, wfe.config.max_body_bytes).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(e) => e.into_response(),
    };
    let headers = response.headers_mut();
    if let Ok(base) = base
        && let Ok(link) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", base.directory()))
    {
        headers.append(header::LINK, link);
    }
    match wfe.ra.issue_nonce().await {
        Ok(nonce) => {
            if let Ok(value) = HeaderValue::from_str(&nonce) {
                headers.insert(REPLAY_NONCE, value);
            }
        }
        Err(e) => tracing::error!(error = %e, "issuing a nonce failed"),
    }
    response
}

/// A successful JSON resource with optional Location.
fn json_resource<T: serde::Serialize>(status: StatusCode, location: Option<String>, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A numeric resource id from the path; anything else names nothing.
fn resource_id(raw: &str) -> Result<i64, AcmeError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AcmeError::malformed("no such resource").with_status(StatusCode::NOT_FOUND))
}
