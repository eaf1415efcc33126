//! Revocation with a typed RFC 5280 reason, and the one rule about who may give which reason.
//!
//! Every path — ACME revokeCert, an operator at the CLI or through the admin API — comes through here: the reason
//! is checked against the revoker, then the store writes the revocation, its audit entry and the epoch replicas
//! poll (see `castellan_store::revocation`).

use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use castellan_store::revocation::{ReasonCode, RevocationReport, RevocationTarget};
use castellan_store::{CertificateId, Store};
use std::fmt;

pub use castellan_ca::crl::RevocationReason;

/// Who revokes: it decides which reasons may be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoker {
    /// The certificate's subscriber: its ACME account, or whoever holds its key (RFC 8555 §7.6).
    Subscriber,
    /// An operator of this CA.
    Operator,
}

impl Revoker {
    /// RFC 5280 §5.3.1. Subscribers may say unspecified, keyCompromise, affiliationChanged, superseded,
    /// cessationOfOperation or privilegeWithdrawn; caCompromise and aACompromise are the CA's to declare.
    /// Nobody may use certificateHold (a revocation here is final, a hold promises it is not) or removeFromCRL
    /// (for delta CRLs, which Castellan does not publish).
    pub fn may_give(self, reason: RevocationReason) -> bool {
        use RevocationReason::*;
        match reason {
            CertificateHold | RemoveFromCrl => false,
            CaCompromise | AaCompromise => self == Revoker::Operator,
            Unspecified | KeyCompromise | AffiliationChanged | Superseded | CessationOfOperation
            | PrivilegeWithdrawn => true,
        }
    }

    /// The reasons this revoker may give, for messages.
    pub fn reasons(self) -> Vec<RevocationReason> {
        RevocationReason::ALL.into_iter().filter(|r| self.may_give(*r)).collect()
    }
}

/// A reason the revoker may not give, or one that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonRefused {
    pub asked: String,
    pub revoker: Revoker,
}

impl fmt::Display for ReasonRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<String> =
            self.revoker.reasons().iter().map(|r| format!("{} ({})", r.name(), r.code())).collect();
        write!(f, "revocation reason {} is not accepted here; use one of: {}", self.asked, allowed.join(", "))
    }
}

impl std::error::Error for ReasonRefused {}

/// The reason with this RFC 5280 name (any case) or code, if `revoker` may give it.
pub fn reason(text: &str, revoker: Revoker) -> std::result::Result<RevocationReason, ReasonRefused> {
    let refused = || ReasonRefused { asked: format!("{text:?}"), revoker };
    let parsed = match text.parse::<u8>() {
        Ok(code) => RevocationReason::try_from(code).map_err(|_| refused())?,
        Err(_) => text.parse::<RevocationReason>().map_err(|_| refused())?,
    };
    checked(parsed, revoker)
}

/// The reason with this code (ACME sends codes), if `revoker` may give it.
pub fn reason_code(code: u8, revoker: Revoker) -> std::result::Result<RevocationReason, ReasonRefused> {
    let parsed = RevocationReason::try_from(code).map_err(|_| ReasonRefused { asked: code.to_string(), revoker })?;
    checked(parsed, revoker)
}

fn checked(reason: RevocationReason, revoker: Revoker) -> std::result::Result<RevocationReason, ReasonRefused> {
    if revoker.may_give(reason) {
        Ok(reason)
    } else {
        Err(ReasonRefused { asked: format!("{} ({})", reason.name(), reason.code()), revoker })
    }
}

fn stored(reason: RevocationReason) -> Result<ReasonCode> {
    Ok(ReasonCode::new(reason.code())?)
}

/// Revokes one issued certificate. Conflict if it is already revoked; Invalid if it was never issued.
pub async fn revoke_one(
    store: &Store,
    certificate: CertificateId,
    reason: RevocationReason,
    revoked_by: &str,
    actor: &Actor,
) -> Result<()> {
    match store.revoke_certificate(certificate, stored(reason)?, revoked_by, actor.as_str()).await {
        Err(castellan_store::StoreError::Conflict { .. }) => {
            Err(AuthorityError::Conflict(format!("certificate {certificate} is already revoked")))
        }
        other => Ok(other?),
    }
}

/// Revokes these certificates (an operator's bulk revocation); those already revoked or never issued are
/// reported unchanged.
pub async fn revoke_many(
    store: &Store,
    certificates: &[CertificateId],
    reason: RevocationReason,
    actor: &Actor,
) -> Result<RevocationReport> {
    Ok(store.revoke_certificates(certificates, stored(reason)?, actor.as_str(), actor.as_str()).await?)
}

/// The certificates an operator's revocation target names.
pub async fn candidates(store: &Store, target: &RevocationTarget) -> Result<Vec<CertificateId>> {
    Ok(store.revocation_candidates(target).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_give_which_reason() {
        assert_eq!(reason("keyCompromise", Revoker::Subscriber), Ok(RevocationReason::KeyCompromise));
        assert_eq!(reason("1", Revoker::Subscriber), Ok(RevocationReason::KeyCompromise));
        assert_eq!(reason("cacompromise", Revoker::Operator), Ok(RevocationReason::CaCompromise));
        assert!(reason("cACompromise", Revoker::Subscriber).is_err());
        assert!(reason_code(2, Revoker::Subscriber).is_err());
        assert!(reason_code(10, Revoker::Subscriber).is_err());
        assert_eq!(reason_code(10, Revoker::Operator), Ok(RevocationReason::AaCompromise));
        for revoker in [Revoker::Subscriber, Revoker::Operator] {
            assert!(reason("certificateHold", revoker).is_err());
            assert!(reason_code(8, revoker).is_err());
            assert!(reason_code(7, revoker).is_err(), "7 is unassigned");
            assert!(reason("bogus", revoker).is_err());
        }
        let subscriber: Vec<u8> = Revoker::Subscriber.reasons().iter().map(|r| r.code()).collect();
        assert_eq!(subscriber, [0, 1, 3, 4, 5, 9]);
        let message = reason_code(6, Revoker::Operator).unwrap_err().to_string();
        assert!(message.contains("certificateHold") && message.contains("keyCompromise (1)"), "{message}");
    }
}
