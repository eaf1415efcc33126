//! Admin API errors: an HTTP status and a JSON body (RFC 9457 problem details) that says what went wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use castellan_authority::AuthorityError;
use castellan_store::StoreError;

#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub detail: String,
    /// Sent as `WWW-Authenticate` (RFC 6750 §3) on 401 and 403.
    challenge: Option<&'static str>,
}

impl AdminError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> AdminError {
        AdminError { status, detail: detail.into(), challenge: None }
    }

    pub fn bad_request(detail: impl Into<String>) -> AdminError {
        AdminError::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> AdminError {
        AdminError::new(StatusCode::NOT_FOUND, detail)
    }

    /// No token, or one that is unknown or revoked.
    pub fn unauthenticated(detail: impl Into<String>, token_given: bool) -> AdminError {
        let challenge = if token_given {
            r#"Bearer realm="castellan-admin", error="invalid_token""#
        } else {
            r#"Bearer realm="castellan-admin""#
        };
        AdminError { status: StatusCode::UNAUTHORIZED, detail: detail.into(), challenge: Some(challenge) }
    }

    /// A valid token whose scope does not cover the operation.
    pub fn forbidden(detail: impl Into<String>) -> AdminError {
        AdminError {
            status: StatusCode::FORBIDDEN,
            detail: detail.into(),
            challenge: Some(r#"Bearer realm="castellan-admin", error="insufficient_scope""#),
        }
    }

    /// A failure the caller cannot do anything about: logged here, not described to the caller.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> AdminError {
        tracing::error!(%error, "{context}");
        AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{context} failed; see the server log"))
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        match &e {
            StoreError::NotFound { .. } => AdminError::not_found(e.to_string()),
            StoreError::Conflict { .. } => AdminError::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::Invalid { .. } => AdminError::bad_request(e.to_string()),
            _ => AdminError::internal("the database", &e),
        }
    }
}

impl From<AuthorityError> for AdminError {
    fn from(e: AuthorityError) -> AdminError {
        match &e {
            AuthorityError::NotFound(_) => AdminError::not_found(e.to_string()),
            AuthorityError::Conflict(_) => AdminError::new(StatusCode::CONFLICT, e.to_string()),
            AuthorityError::Invalid(_) => AdminError::bad_request(e.to_string()),
            AuthorityError::Unavailable(_) => AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            // A CSR or request the CA refuses is the caller's to fix; a signing failure is not.
            AuthorityError::Ca(ca) if is_request_error(ca) => AdminError::bad_request(e.to_string()),
            _ => AdminError::internal("the operation", &e),
        }
    }
}

/// Whether the CA refused what it was asked (a bad CSR, a name or lifetime the profile forbids) rather than failed.
fn is_request_error(e: &castellan_ca::CaError) -> bool {
    use castellan_ca::CaError::*;
    matches!(
        e,
        MalformedCsr(_)
            | CsrSignature(_)
            | BadKey(_)
            | UnknownProfile { .. }
            | NoIdentifiers
            | BadIdentifier(_)
            | ProfileForbids { .. }
            | OutsideNameConstraints { .. }
            | LifetimeTooLong { .. }
            | LifetimeOutOfRange { .. }
            | Lint(_)
    )
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(challenge) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
