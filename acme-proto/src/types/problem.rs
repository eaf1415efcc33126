use serde::{Deserialize, Serialize};

use super::identifier::Identifier;
use crate::alg::SignatureAlgorithm;
use crate::error::JwsError;

/// A problem document (RFC 7807; RFC 8555 §6.7). Subproblems (§6.7.1) are problems carrying an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subproblems: Option<Vec<Problem>>,
    /// Supported algorithms, on badSignatureAlgorithm (RFC 8555 §6.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

impl Problem {
    /// Prefix of every ACME problem type.
    pub const ACME_PREFIX: &'static str = "urn:ietf:params:acme:error:";

    /// A problem of ACME type `suffix` (e.g. "malformed").
    pub fn acme(suffix: &str, detail: impl Into<String>, status: u16) -> Self {
        Problem {
            kind: format!("{}{suffix}", Self::ACME_PREFIX),
            title: None,
            detail: Some(detail.into()),
            status: Some(status),
            instance: None,
            identifier: None,
            subproblems: None,
            algorithms: None,
        }
    }
}

impl From<&JwsError> for Problem {
    fn from(err: &JwsError) -> Self {
        let kind = err.problem_type();
        let status = if kind == "unauthorized" { 403 } else { 400 };
        let mut problem = Problem::acme(kind, err.to_string(), status);
        if kind == "badSignatureAlgorithm" {
            problem.algorithms = Some(SignatureAlgorithm::ALL.iter().map(|a| a.as_str().to_owned()).collect());
        }
        problem
    }
}
