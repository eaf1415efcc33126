//! Every ACME problem type (RFC 8555 §6.7, RFC 9773, draft-ietf-acme-profiles) in one place with its HTTP status,
//! and the one edge where errors become RFC 7807 problem documents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use castellan_acme_proto::JwsError;
use castellan_acme_proto::types::{Identifier, Problem};

/// The `urn:ietf:params:acme:error:` types, in RFC 8555 §6.7's order, then those later RFCs added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
    /// RFC 9773 §7.4.
    AlreadyReplaced,
    /// draft-ietf-acme-profiles.
    InvalidProfile,
}

impl ProblemType {
    pub fn suffix(self) -> &'static str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::AlreadyRevoked => "alreadyRevoked",
            ProblemType::BadCsr => "badCSR",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadRevocationReason => "badRevocationReason",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Caa => "caa",
            ProblemType::Compound => "compound",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::InvalidContact => "invalidContact",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedContact => "unsupportedContact",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
            ProblemType::UserActionRequired => "userActionRequired",
            ProblemType::AlreadyReplaced => "alreadyReplaced",
            ProblemType::InvalidProfile => "invalidProfile",
        }
    }

    const ALL: [ProblemType; 26] = [
        ProblemType::AccountDoesNotExist,
        ProblemType::AlreadyRevoked,
        ProblemType::BadCsr,
        ProblemType::BadNonce,
        ProblemType::BadPublicKey,
        ProblemType::BadRevocationReason,
        ProblemType::BadSignatureAlgorithm,
        ProblemType::Caa,
        ProblemType::Compound,
        ProblemType::Connection,
        ProblemType::Dns,
        ProblemType::ExternalAccountRequired,
        ProblemType::IncorrectResponse,
        ProblemType::InvalidContact,
        ProblemType::Malformed,
        ProblemType::OrderNotReady,
        ProblemType::RateLimited,
        ProblemType::RejectedIdentifier,
        ProblemType::ServerInternal,
        ProblemType::Tls,
        ProblemType::Unauthorized,
        ProblemType::UnsupportedContact,
        ProblemType::UnsupportedIdentifier,
        ProblemType::UserActionRequired,
        ProblemType::AlreadyReplaced,
        ProblemType::InvalidProfile,
    ];

    /// The type named by a suffix such as "dns" (the VA's errors name theirs that way).
    pub fn from_suffix(suffix: &str) -> Option<ProblemType> {
        ProblemType::ALL.into_iter().find(|t| t.suffix() == suffix)
    }

    /// The HTTP status a top-level problem of this type is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            ProblemType::Unauthorized
            | ProblemType::OrderNotReady
            | ProblemType::Caa
            | ProblemType::UserActionRequired => StatusCode::FORBIDDEN,
            ProblemType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ProblemType::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemType::AlreadyReplaced => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An ACME error on its way to the client.
#[derive(Clone, Debug)]
pub struct AcmeError {
    /// Boxed: errors travel in every Result of the server, and a Problem is large.
    pub problem: Box<Problem>,
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    /// keyChange to a key another account holds: that account, whose URL goes in Location (RFC 8555 §7.3.5).
    pub conflicting_account: Option<castellan_store::AccountId>,
}

impl AcmeError {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        let status = kind.status();
        AcmeError {
            problem: Box::new(Problem::acme(kind.suffix(), detail, status.as_u16())),
            status,
            retry_after: None,
            conflicting_account: None,
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        AcmeError::new(ProblemType::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        AcmeError::new(ProblemType::Unauthorized, detail)
    }

    /// An internal failure: logged in full here, reported to the client without internals.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        AcmeError::new(ProblemType::ServerInternal, format!("{context}; the server logged the details"))
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self.problem.status = Some(status.as_u16());
        self
    }

    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.problem.identifier = Some(identifier);
        self
    }

    /// Subproblems (RFC 8555 §6.7.1), one per identifier that failed.
    pub fn with_subproblems(mut self, subproblems: Vec<Problem>) -> Self {
        if !subproblems.is_empty() {
            self.problem.subproblems = Some(subproblems);
        }
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn kind_suffix(&self) -> &str {
        self.problem.kind.strip_prefix(Problem::ACME_PREFIX).unwrap_or(&self.problem.kind)
    }
}

impl From<JwsError> for AcmeError {
    fn from(e: JwsError) -> Self {
        let problem = Problem::from(&e);
        let status = StatusCode::from_u16(problem.status.unwrap_or(400)).unwrap_or(StatusCode::BAD_REQUEST);
        AcmeError { problem: Box::new(problem), status, retry_after: None, conflicting_account: None }
    }
}

impl From<castellan_store::StoreError> for AcmeError {
    fn from(e: castellan_store::StoreError) -> Self {
        AcmeError::internal("the database failed", &e)
    }
}

impl From<castellan_authority::AuthorityError> for AcmeError {
    fn from(e: castellan_authority::AuthorityError) -> Self {
        use castellan_authority::AuthorityError as E;
        match &e {
            E::NotFound(_) => AcmeError::malformed(e.to_string()).with_status(StatusCode::NOT_FOUND),
            E::Invalid(_) | E::Conflict(_) => AcmeError::malformed(e.to_string()),
            _ => AcmeError::internal("the CA failed", &e),
        }
    }
}

/// A problem about one identifier, for a compound error's subproblems.
pub fn subproblem(kind: ProblemType, detail: impl Into<String>, identifier: Identifier) -> Problem {
    let mut problem = Problem::acme(kind.suffix(), detail, kind.status().as_u16());
    problem.status = None;
    problem.identifier = Some(identifier);
    problem
}

/// One error for per-identifier refusals (RFC 8555 §6.7.1), or None when there are none: a single refusal is the
/// top-level problem itself, naming its identifier; several share their type when they agree, else "compound",
/// with `summary` ("were refused") in the detail. Each refusal stays a subproblem.
pub fn identifier_refusals(mut refusals: Vec<(ProblemType, Problem)>, summary: &str) -> Option<AcmeError> {
    match refusals.len() {
        0 => None,
        1 => {
            let (kind, problem) = refusals.remove(0);
            let mut error = AcmeError::new(kind, problem.detail.clone().unwrap_or_default());
            if let Some(identifier) = problem.identifier.clone() {
                error = error.with_identifier(identifier);
            }
            Some(error.with_subproblems(vec![problem]))
        }
        n => {
            let first = refusals[0].0;
            let kind = if refusals.iter().all(|(k, _)| *k == first) { first } else { ProblemType::Compound };
            Some(
                AcmeError::new(kind, format!("{n} identifiers {summary}; see subproblems"))
                    .with_subproblems(refusals.into_iter().map(|(_, p)| p).collect()),
            )
        }
    }
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_suffix() {
        for kind in ProblemType::ALL {
            assert_eq!(ProblemType::from_suffix(kind.suffix()), Some(kind));
        }
        assert_eq!(ProblemType::from_suffix("nonsense"), None);
    }

    #[test]
    fn statuses_follow_the_rfc_examples() {
        assert_eq!(ProblemType::BadNonce.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ProblemType::OrderNotReady.status(), StatusCode::FORBIDDEN);
        assert_eq!(ProblemType::RateLimited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ProblemType::AlreadyReplaced.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn jws_errors_keep_their_problem_type() {
        let e = AcmeError::from(JwsError::AlgNone);
        assert_eq!(e.kind_suffix(), "badSignatureAlgorithm");
        assert!(e.problem.algorithms.is_some());
    }
}
