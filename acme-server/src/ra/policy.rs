//! Which policy governs an account, and the RA's questions to it (castellan-policy answers; this only gathers the
//! documents and turns refusals into problems).
//!
//! Policies are read from the store for every decision — a group's row and the global deny list are two indexed
//! reads — so a change an admin makes on one replica governs the next order on every replica, without a restart.

use castellan_acme_proto::types::Identifier;
use castellan_ca::key::KeyKind;
use castellan_policy::{GlobalDeny, GroupPolicy, KeyType, Policy, Subject};
use castellan_store::acme::AccountRecord;

use super::Ra;
use super::identifiers::OrderIdentifier;
use crate::problem::{AcmeError, ProblemType, identifier_refusals, subproblem};

/// The setting that holds the global deny list's JSON.
pub const GLOBAL_DENY_SETTING: &str = "policy.global_deny";
/// The group of accounts created without external account binding.
pub const DEFAULT_GROUP: &str = "default";

/// A group's policy and the global deny list, as in force now.
pub struct EffectivePolicy {
    pub group_name: String,
    group: GroupPolicy,
    global: GlobalDeny,
}

impl EffectivePolicy {
    pub fn policy(&self) -> Policy<'_> {
        Policy { group_name: &self.group_name, group: &self.group, global: &self.global }
    }
}

pub fn key_type(kind: &KeyKind) -> KeyType {
    match kind {
        KeyKind::EcP256 => KeyType::EcP256,
        KeyKind::EcP384 => KeyType::EcP384,
        KeyKind::Ed25519 => KeyType::Ed25519,
        KeyKind::Rsa { bits } => KeyType::Rsa { bits: u32::try_from(*bits).unwrap_or(u32::MAX) },
    }
}

impl Ra {
    /// The policy of the account's group; accounts without one are in the default group, whose policy is the
    /// stored "default" group's, else `acme.default_policy` from the configuration, else nothing allowed.
    pub async fn effective_policy(&self, account: &AccountRecord) -> Result<EffectivePolicy, AcmeError> {
        let (group_name, document) = match account.group_id {
            Some(id) => {
                let group = self.store.group(id).await?;
                (group.name, Some(group.policy_json))
            }
            None => match self.store.group_by_name(DEFAULT_GROUP).await? {
                Some(group) => (group.name, Some(group.policy_json)),
                None => (DEFAULT_GROUP.to_owned(), self.config.default_policy.as_ref().map(|v| v.to_string())),
            },
        };
        let group = match document {
            Some(json) => GroupPolicy::from_json(&json)
                .map_err(|e| AcmeError::internal(&format!("group {group_name:?} has an invalid policy"), &e))?,
            None => GroupPolicy::deny_all(),
        };
        let global = match self.store.setting(GLOBAL_DENY_SETTING).await? {
            Some((json, _)) => {
                GlobalDeny::from_json(&json).map_err(|e| AcmeError::internal("the global deny list is invalid", &e))?
            }
            None => GlobalDeny::default(),
        };
        Ok(EffectivePolicy { group_name, group, global })
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
