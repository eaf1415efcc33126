//! The admin API: JSON under `/admin` for every operator action (groups and their policies, the global deny list,
//! EAB credentials, accounts, certificates, managed certificates, the audit log, API tokens). The handlers only translate HTTP: each calls
//! one `castellan_authority::Operator` action, where the rule lives. The CLI speaks to this same router, over HTTPS
//! with `--server`, or in process ([`local_router`]) on the CA's own machine, so both grammars are one.
//!
//! Every route is one row of [`routes`]: the router and the OpenAPI document are both generated from that table,
//! so no route can exist undocumented, and none can be documented with another security requirement than the one
//! it enforces. Authentication is a bearer token (`Authorization: Bearer cst_…`, see `castellan_store::admin`) or
//! a TLS client certificate from this CA whose SPIFFE ID names a role (`spiffe://castellan/admin/<name>` or
//! `spiffe://castellan/read/<name>`); each row names the scope it needs, checked before the handler runs. Changes
//! are audited by the store with the actor `admin-token:<id>:<name>`, `admin-cert:<name>:<serial hex>`, or, from the
//! local CLI, `cli:<user>`.

mod accounts;
mod audit;
mod auth;
mod certificates;
mod domains;
mod eab;
mod error;
mod groups;
pub mod openapi;
mod policy;
mod tokens;

pub use auth::{Caller, ClientCertificate, Credential};
pub use error::AdminError;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{MethodFilter, MethodRouter, on};
use castellan_authority::{Actor, Operator};
use castellan_store::admin::TokenScope;
use std::sync::Arc;

/// Where the admin API lives.
pub const PREFIX: &str = "/admin";

/// What the handlers share.
pub struct AdminState {
    pub(crate) operator: Operator,
    /// Set for the CLI's in-process router: every request acts as this operator, with the admin scope (whoever
    /// can run the CLI where the database and the token are can do everything anyway).
    pub(crate) local: Option<Actor>,
}

type Shared = Arc<AdminState>;

/// The HTTP methods the admin API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// One operation of the admin API.
pub struct Route {
    pub method: Method,
    /// Under [`PREFIX`], with `{param}` segments (the syntax axum and OpenAPI share).
    pub path: &'static str,
    /// The token scope it needs; None for the one public document (the OpenAPI description).
    pub scope: Option<TokenScope>,
    /// The status of a successful answer.
    pub success: StatusCode,
    pub summary: &'static str,
    /// The handler, for the method filter of this row.
    handler: fn(MethodFilter) -> MethodRouter<Shared>,
}

const READ: Option<TokenScope> = Some(TokenScope::Read);
const ADMIN: Option<TokenScope> = Some(TokenScope::Admin);

/// Every route of the admin API: the one table the router and the OpenAPI document are built from.
pub fn routes() -> Vec<Route> {
    use Method::{Delete, Get, Post, Put};
    let row = |method, path, scope, success, summary, handler| Route { method, path, scope, success, summary, handler };
    let (ok, created, gone) = (StatusCode::OK, StatusCode::CREATED, StatusCode::NO_CONTENT);
    vec![
        row(Get, "/openapi.json", None, ok, "This document", |m| on(m, openapi::serve)),
        row(Get, "/groups", READ, ok, "List account groups", |m| on(m, groups::list)),
        row(Post, "/groups", ADMIN, created, "Create an account group", |m| on(m, groups::create)),
        row(Get, "/groups/{name}", READ, ok, "Show an account group", |m| on(m, groups::show)),
        row(Put, "/groups/{name}/policy", ADMIN, ok, "Replace a group's policy document", |m| {
            on(m, groups::set_policy)
        }),
        row(Delete, "/groups/{name}", ADMIN, gone, "Delete an unused account group", |m| on(m, groups::delete)),
        row(Get, "/policy/global-deny", READ, ok, "Show the global deny list", |m| on(m, policy::show)),
        row(Put, "/policy/global-deny", ADMIN, ok, "Replace the global deny list", |m| on(m, policy::set)),
        row(Post, "/eab", ADMIN, created, "Create an EAB credential (its HMAC key is shown once)", |m| {
            on(m, eab::create)
        }),
        row(Get, "/eab", READ, ok, "List EAB credentials (never their keys)", |m| on(m, eab::list)),
        row(Delete, "/eab/{key_id}", ADMIN, gone, "Delete an unused EAB credential", |m| on(m, eab::delete)),
        row(Get, "/accounts", READ, ok, "List ACME accounts", |m| on(m, accounts::list)),
        row(Post, "/accounts/{id}/deactivate", ADMIN, ok, "Deactivate an ACME account", |m| {
            on(m, accounts::deactivate)
        }),
        row(Get, "/certificates", READ, ok, "Search the certificate inventory", |m| on(m, certificates::search)),
        row(
            Get,
            "/certificates/expiring",
            READ,
            ok,
            "Every live certificate expiring within ?days=N (30), with its renewal state",
            |m| on(m, domains::expiring),
        ),
        row(
            Post,
            "/certificates",
            ADMIN,
            created,
            "Issue a certificate from a CSR (outside any group's policy)",
            |m| on(m, certificates::issue),
        ),
        row(Get, "/certificates/{id}", READ, ok, "Show a certificate", |m| on(m, certificates::show)),
        row(Post, "/certificates/{id}/revoke", ADMIN, ok, "Revoke a certificate", |m| on(m, certificates::revoke)),
        row(Post, "/revocations", ADMIN, ok, "Revoke every certificate a serial, a name or an account names", |m| {
            on(m, certificates::revoke_matching)
        }),
        row(Post, "/renewals", ADMIN, ok, "Mark certificates for re-issuance now (ARI tells clients to renew)", |m| {
            on(m, certificates::renew_now)
        }),
        row(Post, "/domains", ADMIN, created, "Manage a certificate: Castellan issues it now and renews it", |m| {
            on(m, domains::add)
        }),
        row(Get, "/domains", READ, ok, "List managed certificates (?status, ?issuer, ?failing, cursors)", |m| {
            on(m, domains::list)
        }),
        row(
            Get,
            "/domains/{domain}/certificate",
            READ,
            ok,
            "A managed certificate: current certificate, chain, renewal state, rotations",
            |m| on(m, domains::certificate),
        ),
        row(
            Post,
            "/domains/{domain}/renew",
            ADMIN,
            StatusCode::ACCEPTED,
            "Re-issue now with a new key (a second call returns the rotation in flight)",
            |m| on(m, domains::renew),
        ),
        row(Delete, "/domains/{domain}", ADMIN, ok, "Stop managing (?revoke=<reason> also revokes)", |m| {
            on(m, domains::remove)
        }),
        row(
            Get,
            "/metrics",
            READ,
            ok,
            "Prometheus metrics (OpenMetrics text): certificates' notAfter, renewals, ACME",
            |m| on(m, metrics),
        ),
        row(
            Post,
            "/reissues",
            ADMIN,
            StatusCode::ACCEPTED,
            "Re-issue managed certificates with new keys: all, or those under one issuer key",
            |m| on(m, domains::reissue),
        ),
        row(Get, "/reissues", READ, ok, "Progress of mass re-issues", |m| on(m, domains::reissue_progress)),
        row(Get, "/audit", READ, ok, "Read the audit log", |m| on(m, audit::page)),
        row(Get, "/audit/verify", READ, ok, "Recompute the audit log's hash chain", |m| on(m, audit::verify)),
        row(Post, "/tokens", ADMIN, created, "Create an API token (shown once)", |m| on(m, tokens::create)),
        row(Get, "/tokens", ADMIN, ok, "List API tokens", |m| on(m, tokens::list)),
        row(Delete, "/tokens/{id}", ADMIN, ok, "Revoke an API token", |m| on(m, tokens::revoke)),
    ]
}

/// The admin routes, under [`PREFIX`], over the operator actions (with the authority where the token is, to
/// issue and to seal EAB keys).
pub fn router(operator: Operator) -> Router {
    build(AdminState { operator, local: None })
}

/// The same routes for the CLI on the CA's own machine: no credential is asked for, and every change is audited
/// as `actor`. Never served on a listener: the CLI calls it in process.
pub fn local_router(operator: Operator, actor: Actor) -> Router {
    build(AdminState { operator, local: Some(actor) })
}

fn build(state: AdminState) -> Router {
    let state = Arc::new(state);
    let mut app = Router::new();
    for route in routes() {
        let mut handler = (route.handler)(route.method.filter());
        if let Some(scope) = route.scope {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                auth::Guard { state: Arc::clone(&state), scope },
                auth::require,
            ));
        }
        app = app.route(route.path, handler);
    }
    let app = app
        .fallback(|| async { AdminError::new(StatusCode::NOT_FOUND, "no such admin resource") })
        .method_not_allowed_fallback(|| async {
            AdminError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this admin resource")
        })
        .layer(axum::middleware::from_fn(read_body))
        .with_state(state);
    Router::new().nest(PREFIX, app)
}

/// OpenMetrics text, which Prometheus asks for and parses (the counters' `_total`, the closing `# EOF`).
async fn metrics(
    axum::extract::State(state): axum::extract::State<Shared>,
) -> Result<axum::response::Response, AdminError> {
    use axum::response::IntoResponse;
    let body = state.operator.metrics().await?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The largest request body the admin API reads (policy documents are the largest).
const MAX_BODY_BYTES: usize = 1 << 20;

/// Reads the whole request body (bounded) before anything answers: an HTTP/2 stream answered mid-upload (a 401
/// before the handler would read the body) is reset, and clients report the reset instead of the answer.
async fn read_body(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => AdminError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes, or was cut short"),
        )
        .into_response(),
    }
}

/// Parses a JSON request body into `T`, refusing anything else with a 400 that says why.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| AdminError::bad_request(format!("request body: {e}")))
}

/// Parses a request's query string into `T`, refusing anything else with a 400 that says why.
fn query<T: serde::de::DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, AdminError> {
    axum::extract::Query::try_from_uri(uri).map(|q| q.0).map_err(|e| AdminError::bad_request(e.body_text()))
}

/// A numeric id from the path; anything else names nothing.
fn path_id<T>(raw: &str, what: &str, id: fn(i64) -> T) -> Result<T, AdminError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(id)
        .ok_or_else(|| AdminError::not_found(format!("{what} {raw:?} not found")))
}

/// A request body that is text (policy documents), refusing anything else with a 400.
fn text_body<'a>(body: &'a [u8], what: &str) -> Result<&'a str, AdminError> {
    std::str::from_utf8(body).map_err(|_| AdminError::bad_request(format!("the {what} is not UTF-8")))
}

#[cfg(test)]
mod tests;
