//! The HTTP routes of this stage: health and the CA certificates.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub root_pem: String,
    /// Intermediate then root.
    pub chain_pem: String,
    pub issuer: String,
    pub token: String,
    pub authority: castellan_authority::Authority,
    pub scheduler: castellan_lifecycle::SchedulerHealth,
    /// A scheduler that has not finished a pass for this long is reported stuck.
    pub scheduler_stale_secs: i64,
}

/// A renewal due for longer than this (a lease and then some) means no replica is renewing.
const OVERDUE_SECS: i64 = 600;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ca/roots.pem", get(roots))
        .route("/ca/chain.pem", get(chain))
        .with_state(Arc::new(state))
}

/// Real state, each check named: the store answers, the token has a logged-in session, this server's renewal
/// scheduler is alive; 503 when any fails, so a load balancer or a probe takes the replica out. The renewal queue
/// (due, oldest overdue) is reported alongside, `overdue: true` past 10 minutes.
async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let store = state.authority.store();
    let store_ok = tokio::time::timeout(std::time::Duration::from_secs(5), store.ping()).await;
    let store_check = match store_ok {
        Ok(Ok(())) => check(true, "reachable".into()),
        Ok(Err(e)) => check(false, e.to_string()),
        Err(_) => check(false, "no answer within 5 s".into()),
    };
    let hsm = state.authority.ca().hsm().clone();
    let token_check = match hsm.run(|hsm| hsm.logged_in()).await {
        Ok(true) => check(true, "logged in".into()),
        Ok(false) => check(false, "no session is logged in".into()),
        Err(e) => check(false, e.to_string()),
    };
    let now = state.authority.clock().unix();
    let last_pass = state.scheduler.last_pass_at();
    let scheduler_check = if last_pass == 0 {
        check(now - state.scheduler.started_at() < state.scheduler_stale_secs, "starting".into())
    } else {
        let age = now - last_pass;
        check(age < state.scheduler_stale_secs, format!("last pass {age} s ago"))
    };
    // Reported, never a 503: a backlog (a mass re-issue, an outage of an issuer) is the whole cluster's state,
    // and taking every replica out for it would stop ACME and OCSP in the middle of an incident.
    let queue_check = match store.renewal_queue_state().await {
        Ok(queue) => {
            let overdue = queue.oldest_due_at.map(|at| now - at).unwrap_or(0);
            let mut c = check(true, format!("{} due, the oldest for {overdue} s", queue.due));
            c["overdue"] = serde_json::json!(overdue >= OVERDUE_SECS);
            c
        }
        Err(e) => check(false, e.to_string()),
    };
    let checks = serde_json::json!({
        "store": store_check, "token": token_check, "scheduler": scheduler_check, "renewals": queue_check,
    });
    let healthy = ["store", "token", "scheduler", "renewals"].iter().all(|k| checks[k]["ok"] == true);
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "issuer": state.issuer,
        "token": state.token,
        "checks": checks,
    });
    (status, Json(body))
}

fn check(ok: bool, detail: String) -> serde_json::Value {
    serde_json::json!({ "ok": ok, "detail": detail })
}

const PEM_CHAIN: &str = "application/pem-certificate-chain";

async fn roots(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PEM_CHAIN)], state.root_pem.clone())
}

async fn chain(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PEM_CHAIN)], state.chain_pem.clone())
}
