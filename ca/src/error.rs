//! Why the CA refused or failed, one variant per reason a caller may need to tell apart.

use crate::key::KeyError;
use crate::lint::LintError;
use crate::names::NameError;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("malformed CSR: {0}")]
    MalformedCsr(String),
    #[error("the CSR's signature does not verify: {0}")]
    CsrSignature(KeyError),
    #[error("the CSR's key is not acceptable: {0}")]
    BadKey(KeyError),
    #[error("unknown profile {name:?} (this CA issues: {known})")]
    UnknownProfile { name: String, known: String },
    #[error("the CSR names nothing to certify (no DNS name, IP address or URI)")]
    NoIdentifiers,
    #[error("invalid identifier: {0}")]
    BadIdentifier(NameError),
    #[error("the {profile} profile does not allow {what}")]
    ProfileForbids { profile: &'static str, what: String },
    #[error("{name} is outside the issuing CA's name constraints")]
    OutsideNameConstraints { name: String },
    #[error("requested lifetime of {requested_secs}s exceeds the {profile} profile's maximum of {max_secs}s")]
    LifetimeTooLong { profile: &'static str, requested_secs: u64, max_secs: u64 },
    #[error("a lifetime of {requested_secs}s ends beyond any date a certificate can hold")]
    LifetimeOutOfRange { requested_secs: u64 },
    #[error(
        "the issuing CA certificate is not valid at the time of issuance (it is valid from {not_before} to {not_after})"
    )]
    IssuerNotValid { not_before: String, not_after: String },
    #[error(
        "the issuing CA certificate has {kind} name constraints, which Castellan does not check: refusing to issue \
         a certificate clients might reject"
    )]
    UnsupportedNameConstraint { kind: &'static str },
    #[error("pre-issuance lint refused the certificate: {0}")]
    Lint(LintError),
    #[error("the signer's key does not match the issuing certificate")]
    SignerMismatch,
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the signed certificate does not match what was linted (TBS bytes differ)")]
    TbsMismatch,
    #[error("the certificate's signature does not verify under the issuer key: {0}")]
    SignatureCheck(KeyError),
    #[error("the CA certificate is not acceptable: {0}")]
    BadCaCertificate(String),
    #[error("DER encoding: {0}")]
    Der(#[from] der::Error),
    #[error("certificate builder: {0}")]
    Builder(String),
}

impl From<x509_cert::builder::Error> for CaError {
    fn from(e: x509_cert::builder::Error) -> Self {
        CaError::Builder(e.to_string())
    }
}

// Display already includes the inner error, so these are not `#[source]`: a report that prints the whole
// chain would say it twice.
impl From<NameError> for CaError {
    fn from(e: NameError) -> Self {
        CaError::BadIdentifier(e)
    }
}

impl From<LintError> for CaError {
    fn from(e: LintError) -> Self {
        CaError::Lint(e)
    }
}

impl From<der::pem::Error> for CaError {
    fn from(e: der::pem::Error) -> Self {
        CaError::Der(e.into())
    }
}

impl From<spki::Error> for CaError {
    fn from(e: spki::Error) -> Self {
        CaError::Builder(e.to_string())
    }
}
