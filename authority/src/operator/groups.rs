//! Account groups and their policy documents, the global deny list, and the EAB credentials that put accounts in
//! a group. Documents are checked whole by `castellan-policy` before anything is stored: one that does not parse or
//! contradicts itself changes nothing.

use super::Operator;
use super::views::{DenyListView, EabList, EabView, GroupList, GroupView, NewEabView};
use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use crate::policy::GLOBAL_DENY_SETTING;
use castellan_policy::{GlobalDeny, GroupPolicy};

/// A policy document checked whole; its normalised text is what is stored.
fn checked_policy(text: &str) -> Result<String> {
    let policy = GroupPolicy::from_json(text).map_err(|e| AuthorityError::invalid(e.to_string()))?;
    Ok(policy.to_json().to_owned())
}

/// A random EAB key id: 16 bytes, base64url, never starting with '-' — command lines (certbot's `--eab-kid`,
/// `castellan eab delete`) would read such an id as an option.
fn random_key_id() -> String {
    use rand::RngCore;
    loop {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id = castellan_acme_proto::b64::encode(bytes);
        if !id.starts_with('-') {
            return id;
        }
    }
}

impl Operator {
    pub async fn groups(&self) -> Result<GroupList> {
        let groups = self.store.groups().await?;
        Ok(GroupList { groups: groups.iter().map(GroupView::of).collect() })
    }

    pub async fn group(&self, name: &str) -> Result<GroupView> {
        let group = self
            .store
            .group_by_name(name)
            .await?
            .ok_or_else(|| AuthorityError::NotFound(format!("account group {name:?}")))?;
        Ok(GroupView::of(&group))
    }

    /// A new group; its policy (a JSON document) defaults to nothing allowed.
    pub async fn create_group(&self, name: &str, policy: Option<&str>, actor: &Actor) -> Result<GroupView> {
        let policy = match policy {
            Some(text) => checked_policy(text)?,
            None => GroupPolicy::deny_all().to_json().to_owned(),
        };
        let group = self.store.create_group(name, &policy, actor.as_str()).await?;
        Ok(GroupView::of(&group))
    }

    /// Replaces a group's policy; it governs the next order on every replica.
    pub async fn set_group_policy(&self, name: &str, policy: &str, actor: &Actor) -> Result<GroupView> {
        let policy = checked_policy(policy)?;
        let group = self.store.set_group_policy(name, &policy, actor.as_str()).await?;
        Ok(GroupView::of(&group))
    }

    /// Deletes a group no account or credential uses.
    pub async fn delete_group(&self, name: &str, actor: &Actor) -> Result<()> {
        Ok(self.store.delete_group(name, actor.as_str()).await?)
    }

    pub async fn global_deny(&self) -> Result<DenyListView> {
        Ok(match self.store.setting(GLOBAL_DENY_SETTING).await? {
            Some((text, updated_at)) => DenyListView::of(&text, Some(updated_at)),
            None => DenyListView::of("{}", None),
        })
    }

    /// Replaces the global deny list (`{"dns": [...], "ip": [...], "uri": [...]}`), checked whole.
    pub async fn set_global_deny(&self, document: &str, actor: &Actor) -> Result<DenyListView> {
        let deny = GlobalDeny::from_json(document).map_err(|e| AuthorityError::invalid(e.to_string()))?;
        self.store.set_setting(GLOBAL_DENY_SETTING, deny.to_json(), actor.as_str()).await?;
        self.global_deny().await
    }

    /// A new EAB credential for `group`; its HMAC key is sealed under the token's KEK before it is stored and
    /// is in this answer, and never again.
    pub async fn create_eab(&self, group: &str, key_id: Option<String>, actor: &Actor) -> Result<NewEabView> {
        // Checked first so an unknown group costs no HSM work; the store checks again in its transaction.
        if self.store.group_by_name(group).await?.is_none() {
            return Err(AuthorityError::NotFound(format!("account group {group:?}")));
        }
        let sealing = self.authority("creating an EAB credential")?.sealing().await?;
        let key_id = key_id.unwrap_or_else(random_key_id);
        let (hmac, sealed) = sealing.new_eab_key(&key_id).await?;
        let record = self.store.create_eab(&key_id, group, &sealed, actor.as_str()).await?;
        Ok(NewEabView {
            key_id: record.key_id,
            hmac_key: castellan_acme_proto::b64::encode(&*hmac),
            group: record.group_name,
        })
    }

    /// Credentials (never their keys), of one group or all.
    pub async fn eabs(&self, group: Option<&str>) -> Result<EabList> {
        let records = self.store.eabs(group).await?;
        Ok(EabList { credentials: records.iter().map(EabView::of).collect() })
    }

    /// Deletes a credential no account used.
    pub async fn delete_eab(&self, key_id: &str, actor: &Actor) -> Result<()> {
        Ok(self.store.delete_eab(key_id, actor.as_str()).await?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_ids_never_look_like_options() {
        // A leading '-' comes once in 64 draws: 4,000 draws would meet ~60 of them.
        assert!((0..4000).map(|_| super::random_key_id()).all(|id| !id.starts_with('-') && id.len() == 22));
    }
}
