//! Bearer-token authentication (RFC 6750) and the scope check, run before every handler that needs a scope.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use castellan_store::admin::{TokenRecord, TokenScope};
use std::sync::Arc;

use super::{AdminError, AdminState};

/// What a route's guard needs: the store, and the scope the route demands.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) state: Arc<AdminState>,
    pub(crate) scope: TokenScope,
}

/// The authenticated caller, in the request's extensions for the handler.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: TokenRecord,
}

impl Caller {
    /// The audit log's actor for changes this caller makes.
    pub fn actor(&self) -> String {
        format!("admin-token:{}:{}", self.token.id, self.token.name)
    }
}

pub(crate) async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    // Owned, so the request (whose body is not Sync) is not borrowed across the store's await.
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    match authenticate(&guard, authorization).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn authenticate(guard: &Guard, authorization: Option<HeaderValue>) -> Result<Caller, AdminError> {
    let Some(value) = authorization else {
        return Err(AdminError::unauthenticated("an API token is required: Authorization: Bearer cst_…", false));
    };
    let text =
        value.to_str().ok().and_then(bearer).ok_or_else(|| {
            AdminError::unauthenticated("the Authorization header is not \"Bearer <API token>\"", true)
        })?;
    let token = guard
        .state
        .store
        .authenticate_token(text)
        .await?
        .ok_or_else(|| AdminError::unauthenticated("unknown or revoked API token", true))?;
    if !token.scope.allows(guard.scope) {
        return Err(AdminError::forbidden(format!(
            "API token {} has scope {}; this operation needs {}",
            token.id,
            token.scope.as_str(),
            guard.scope.as_str()
        )));
    }
    Ok(Caller { token })
}

/// The credentials of a `Bearer` authorization (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim()).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod unit {
    use super::bearer;

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer("Bearer cst_abc"), Some("cst_abc"));
        assert_eq!(bearer("bearer  cst_abc "), Some("cst_abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
