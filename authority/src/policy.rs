//! Which issuance policy governs a group, as in force now: the group's document under the global deny list.
//! `castellan-policy` decides; this gathers the documents.
//!
//! Policies are read from the store for every decision (a group's row and the deny list are two indexed reads),
//! so a change an operator makes on one replica governs the next order on every replica, without a restart.

use crate::error::{AuthorityError, Result};
use castellan_ca::key::KeyKind;
use castellan_policy::{GlobalDeny, GroupPolicy, KeyType, Policy};
use castellan_store::{GroupId, Store};

/// The setting that holds the global deny list's JSON.
pub const GLOBAL_DENY_SETTING: &str = "policy.global_deny";
/// The `acme.default_policy` of the configuration `castellan serve` last started with ("null" when it has none):
/// recorded so that a command run on the CA's machine without that configuration checks names as the server will.
pub const SERVED_DEFAULT_POLICY_SETTING: &str = "policy.served_default";

/// Records the server's configured default policy (only when it changed: each change is audited).
pub async fn record_served_default_policy(
    store: &Store,
    policy: Option<&serde_json::Value>,
    actor: &crate::Actor,
) -> Result<()> {
    let text = policy.map(ToString::to_string).unwrap_or_else(|| "null".to_owned());
    if store.setting(SERVED_DEFAULT_POLICY_SETTING).await?.map(|(v, _)| v).as_deref() != Some(text.as_str()) {
        store.set_setting(SERVED_DEFAULT_POLICY_SETTING, &text, actor.as_str()).await?;
    }
    Ok(())
}

/// What [`record_served_default_policy`] recorded, if a server ever started.
pub async fn served_default_policy(store: &Store) -> Result<Option<serde_json::Value>> {
    Ok(store
        .setting(SERVED_DEFAULT_POLICY_SETTING)
        .await?
        .and_then(|(text, _)| serde_json::from_str::<serde_json::Value>(&text).ok())
        .filter(|v| !v.is_null()))
}

/// The group of ACME accounts created without external account binding.
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

/// The policy of group `group` (None: the default group, whose policy is the stored "default" group's, else
/// `fallback` from the configuration, else nothing allowed).
pub async fn effective_policy(
    store: &Store,
    group: Option<GroupId>,
    fallback: Option<&serde_json::Value>,
) -> Result<EffectivePolicy> {
    let (group_name, document) = match group {
        Some(id) => {
            let group = store.group(id).await?;
            (group.name, Some(group.policy_json))
        }
        None => match store.group_by_name(DEFAULT_GROUP).await? {
            Some(group) => (group.name, Some(group.policy_json)),
            None => (DEFAULT_GROUP.to_owned(), fallback.map(|v| v.to_string())),
        },
    };
    let group = match document {
        Some(json) => GroupPolicy::from_json(&json).map_err(|e| {
            AuthorityError::Store(castellan_store::StoreError::Corrupt(format!(
                "group {group_name:?} has an invalid policy: {e}"
            )))
        })?,
        None => GroupPolicy::deny_all(),
    };
    let global = global_deny(store).await?;
    Ok(EffectivePolicy { group_name, group, global })
}

/// The global deny list every group is subject to (empty until an operator sets one).
pub async fn global_deny(store: &Store) -> Result<GlobalDeny> {
    match store.setting(GLOBAL_DENY_SETTING).await? {
        Some((json, _)) => GlobalDeny::from_json(&json).map_err(|e| {
            AuthorityError::Store(castellan_store::StoreError::Corrupt(format!("the global deny list is invalid: {e}")))
        }),
        None => Ok(GlobalDeny::default()),
    }
}

/// A CSR's key as the policy names key types.
pub fn key_type(kind: &KeyKind) -> KeyType {
    match kind {
        KeyKind::EcP256 => KeyType::EcP256,
        KeyKind::EcP384 => KeyType::EcP384,
        KeyKind::Ed25519 => KeyType::Ed25519,
        KeyKind::Rsa { bits } => KeyType::Rsa { bits: u32::try_from(*bits).unwrap_or(u32::MAX) },
    }
}
