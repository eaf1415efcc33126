//! Where managed certificates come from. The scheduler hands a claimed rotation to the issuer its managed
//! certificate names and records what comes back; it does not care whether that is this CA or, with the client
//! tier, a public ACME CA.

use castellan_authority::keys::KeyType;
use castellan_authority::managed::{check_policy, san_names};
use castellan_authority::{Actor, Authority, AuthorityError};
use castellan_store::CertificateId;
use castellan_store::lifecycle::Claim;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Why an issuance failed, in words for the rotation's error and the managed certificate's last error.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no issuer named {0:?} is configured")]
    UnknownIssuer(String),
    #[error(transparent)]
    Authority(#[from] AuthorityError),
}

/// A new certificate on record for the claimed rotation.
#[derive(Clone, Debug)]
pub struct Issued {
    pub certificate_id: CertificateId,
    pub serial_hex: String,
}

pub type IssueFuture<'a> = Pin<Box<dyn Future<Output = Result<Issued, IssueError>> + Send + 'a>>;

/// An issuer of managed certificates.
pub trait Issuer: Send + Sync {
    /// Issues the claimed rotation's certificate with a new key, and records it as the managed certificate's
    /// current one (with its sealed key and the rotation's success) in one transaction.
    fn issue<'a>(&'a self, claim: &'a Claim, actor: &'a Actor) -> IssueFuture<'a>;
}

/// This CA: the managed certificate's group policy, then the authority's one issuance path.
pub struct InternalIssuer {
    authority: Authority,
    /// The configured policy of the default group, for when the store holds none.
    default_policy: Option<serde_json::Value>,
}

impl InternalIssuer {
    pub fn new(authority: Authority, default_policy: Option<serde_json::Value>) -> InternalIssuer {
        InternalIssuer { authority, default_policy }
    }
}

impl Issuer for InternalIssuer {
    fn issue<'a>(&'a self, claim: &'a Claim, actor: &'a Actor) -> IssueFuture<'a> {
        Box::pin(async move {
            let managed = &claim.managed;
            // The policy as in force now: a group tightened since the name was added stops its renewals.
            let lifetime = managed.lifetime_secs.and_then(|s| u64::try_from(s).ok());
            check_policy(
                self.authority.store(),
                &managed.group_name,
                &san_names(&managed.names)?,
                &managed.profile,
                KeyType::parse(&managed.key_type)?,
                lifetime,
                self.default_policy.as_ref(),
            )
            .await?;
            let issued = self.authority.issue_managed(claim, actor).await?;
            Ok(Issued { certificate_id: issued.certificate_id, serial_hex: issued.serial_hex })
        })
    }
}

/// The issuers by the names managed certificates use.
#[derive(Clone, Default)]
pub struct Issuers {
    by_name: HashMap<String, Arc<dyn Issuer>>,
}

impl Issuers {
    pub fn with(mut self, name: &str, issuer: Arc<dyn Issuer>) -> Issuers {
        self.by_name.insert(name.to_owned(), issuer);
        self
    }

    pub fn get(&self, name: &str) -> Result<&Arc<dyn Issuer>, IssueError> {
        self.by_name.get(name).ok_or_else(|| IssueError::UnknownIssuer(name.to_owned()))
    }
}
