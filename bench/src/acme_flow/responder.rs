//! The http-01 responder (RFC 8555 §8.3): serves `/.well-known/acme-challenge/{token}` from a map the clients fill
//! before they answer a challenge and empty once the authorization is decided.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Token → key authorization, shared by all clients and the responder.
#[derive(Default)]
pub struct Tokens {
    map: Mutex<HashMap<String, String>>,
    /// Validation requests answered with a key authorization.
    pub hits: AtomicU64,
    /// Requests for tokens not in the map (a late retry from the server, or a stray request).
    pub misses: AtomicU64,
}

impl Tokens {
    /// Publishes a key authorization until the returned guard is dropped.
    pub fn publish(self: &Arc<Self>, token: &str, key_authorization: String) -> Published {
        self.lock().insert(token.to_owned(), key_authorization);
        Published { tokens: Arc::clone(self), token: token.to_owned() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding this lock leaves a plain map behind, still usable.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes its token from the map when the flow is done with it, on success or failure.
pub struct Published {
    tokens: Arc<Tokens>,
    token: String,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.tokens.lock().remove(&self.token);
    }
}

pub struct Responder {
    pub addr: SocketAddr,
    pub tokens: Arc<Tokens>,
}

/// Binds `listen` (port 0 picks a free one) and serves until the runtime ends.
pub async fn start(listen: SocketAddr) -> Result<Responder> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding http-01 {listen}"))?;
    let addr = listener.local_addr()?;
    let tokens = Arc::new(Tokens::default());
    let app = Router::new().route("/.well-known/acme-challenge/{token}", get(serve)).with_state(Arc::clone(&tokens));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("http-01 responder stopped: {e}");
        }
    });
    Ok(Responder { addr, tokens })
}

async fn serve(State(tokens): State<Arc<Tokens>>, Path(token): Path<String>) -> Response {
    let found = tokens.lock().get(&token).cloned();
    match found {
        Some(key_authorization) => {
            tokens.hits.fetch_add(1, Ordering::Relaxed);
            ([(header::CONTENT_TYPE, "application/octet-stream")], key_authorization).into_response()
        }
        None => {
            tokens.misses.fetch_add(1, Ordering::Relaxed);
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
