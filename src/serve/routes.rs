//! The HTTP routes of this stage: health and the CA certificates.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState {
    pub root_pem: String,
    /// Intermediate then root.
    pub chain_pem: String,
    pub issuer: String,
    pub token: String,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ca/roots.pem", get(roots))
        .route("/ca/chain.pem", get(chain))
        .with_state(Arc::new(state))
}

async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "issuer": state.issuer, "token": state.token }))
}

const PEM_CHAIN: &str = "application/pem-certificate-chain";

async fn roots(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PEM_CHAIN)], state.root_pem.clone())
}

async fn chain(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PEM_CHAIN)], state.chain_pem.clone())
}
