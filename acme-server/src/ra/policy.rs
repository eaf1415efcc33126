//! The RA's questions to the issuance policy (`castellan-policy` answers; `castellan_authority::policy` gathers
//! the documents in force), with refusals turned into problems.

use castellan_acme_proto::types::Identifier;
use castellan_authority::policy::{EffectivePolicy, effective_policy, key_type};
use castellan_ca::key::KeyKind;
use castellan_policy::{Policy, Subject};
use castellan_store::acme::AccountRecord;

use super::Ra;
use super::identifiers::OrderIdentifier;
use crate::problem::{AcmeError, ProblemType, identifier_refusals, subproblem};

impl Ra {
    /// The policy of the account's group; accounts without one are in the default group, whose policy is the
    /// stored "default" group's, else `acme.default_policy` from the configuration, else nothing allowed.
    pub async fn effective_policy(&self, account: &AccountRecord) -> Result<EffectivePolicy, AcmeError> {
        Ok(effective_policy(self.store(), account.group_id, self.config.default_policy.as_ref()).await?)
    }

    /// Every identifier the policy refuses, each named with its rule in a subproblem.
    pub fn check_identifiers(policy: Policy<'_>, identifiers: &[OrderIdentifier]) -> Result<(), AcmeError> {
        let mut refusals = Vec::new();
        for identifier in identifiers {
            let wire: Identifier = identifier.to_wire();
            let subject = match identifier {
                OrderIdentifier::Ip(ip) => Subject::Ip(*ip),
                OrderIdentifier::Dns { .. } => Subject::Dns(&wire.value),
            };
            if let Err(refusal) = policy.check_subject(subject) {
                let kind = ProblemType::RejectedIdentifier;
                refusals.push((kind, subproblem(kind, refusal.to_string(), wire.clone())));
            }
        }
        match identifier_refusals(refusals, "are not allowed by policy") {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    pub fn check_profile(policy: Policy<'_>, profile: &str) -> Result<(), AcmeError> {
        policy.check_profile(profile).map_err(|r| AcmeError::new(ProblemType::InvalidProfile, r.to_string()))
    }

    pub fn check_lifetime(policy: Policy<'_>, seconds: u64) -> Result<(), AcmeError> {
        policy.check_lifetime(seconds).map_err(|r| AcmeError::malformed(r.to_string()))
    }

    pub fn check_key(policy: Policy<'_>, kind: &KeyKind) -> Result<(), AcmeError> {
        policy.check_key(key_type(kind)).map_err(|r| AcmeError::new(ProblemType::BadCsr, r.to_string()))
    }
}
