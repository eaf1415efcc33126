//! Why a policy document was refused. A refused document changes nothing.

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not valid JSON for a policy document: {0}")]
    Syntax(String),
    #[error("dns pattern {pattern:?} is invalid: {why}")]
    DnsPattern { pattern: String, why: String },
    #[error("ip range {range:?} is invalid: expected CIDR such as 10.0.0.0/8 or a single address")]
    IpRange { range: String },
    #[error("uri prefix {prefix:?} is invalid: {why}")]
    UriPrefix { prefix: String, why: String },
    #[error("unknown key type {0:?} (known: ec-p256, ec-p384, ed25519, rsa)")]
    KeyType(String),
    #[error("the policy contradicts itself: {0}")]
    Contradiction(String),
    #[error("{0}")]
    Invalid(String),
}
