//! Account groups: a name, the policy document its accounts are held to, and which accounts belong to it.

use super::{check_group_name, group_not_found};
use crate::Store;
use crate::acme::{ACCOUNT_COLUMNS, AccountRecord, account_from_row, audit, check_limit, check_text};
use crate::error::{Result, StoreError};
use crate::ids::{AccountId, GroupId};
use crate::write::Durability;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The longest group name: a DNS label's length, so a name can also appear in one.
pub const MAX_GROUP_NAME_LEN: usize = 63;

/// Credentials named in a refusal to delete a group; more are counted, not listed.
const LISTED_IN_REFUSAL: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: GroupId,
    pub name: String,
    /// The policy document (a JSON object) exactly as it was given.
    pub policy_json: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const GROUP_COLUMNS: &str = "id, name, policy_json, created_at, updated_at";

// The same columns and mapping as `acme`'s accounts, which keeps its own private to its module.

impl Store {
    /// Creates a group with this policy. A taken name is a Conflict. Audit "group.create".
    pub async fn create_group(&self, name: &str, policy_json: &str, actor: &str) -> Result<GroupRecord> {
        check_group_name(name)?;
        let policy = check_policy(policy_json)?;
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO account_groups (name, policy_json, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             RETURNING {GROUP_COLUMNS}"
        ))
        .bind(name)
        .bind(policy_json)
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| {
            if StoreError::is_unique_violation(&e) {
                StoreError::Conflict { what: format!("account group {name:?}") }
            } else {
                e.into()
            }
        })?;
        let group = group_from_row(&row)?;
        audit(&mut tx, actor, "group.create", subject(name), json!({ "id": group.id, "policy": policy })).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Replaces a group's policy document. Audit "group.policy" with the old and the new document.
    pub async fn set_group_policy(&self, name: &str, policy_json: &str, actor: &str) -> Result<GroupRecord> {
        check_group_name(name)?;
        let policy = check_policy(policy_json)?;
        let mut tx = self.begin_write(Durability::Durable).await?;
        // Locks the row before reading the old document, so concurrent changes each record what they replaced.
        let old: Option<String> = sqlx::query_scalar(
            "UPDATE account_groups SET updated_at = updated_at WHERE name = $1 RETURNING policy_json",
        )
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let old = old.ok_or_else(|| group_not_found(name))?;
        let row = sqlx::query(&format!(
            "UPDATE account_groups SET policy_json = $1, updated_at = $2 WHERE name = $3 RETURNING {GROUP_COLUMNS}"
        ))
        .bind(policy_json)
        .bind(self.now())
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
        let group = group_from_row(&row)?;
        let details = json!({ "id": group.id, "old_policy": stored_policy(&old), "new_policy": policy });
        audit(&mut tx, actor, "group.policy", subject(name), details).await?;
        tx.commit().await?;
        Ok(group)
    }

    pub async fn group(&self, id: GroupId) -> Result<GroupRecord> {
        let row = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM account_groups WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound { what: format!("account group {id}") })?;
        group_from_row(&row)
    }

    /// None for an unknown name (a malformed name cannot exist, so it is None too).
    pub async fn group_by_name(&self, name: &str) -> Result<Option<GroupRecord>> {
        if check_group_name(name).is_err() {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM account_groups WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    /// Every group, by name.
    pub async fn groups(&self) -> Result<Vec<GroupRecord>> {
        let rows = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM account_groups ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Deletes a group that nothing names any more. Refused (Invalid, saying what is left) while accounts belong
    /// to it or EAB credentials would admit to it: move the accounts and delete the unused credentials first.
    /// A used credential follows its account when the account moves to another group, so the only used ones left
    /// are those of accounts moved out of every group; moving such an account into a group frees this one.
    /// Audit "group.delete" with the policy the group had.
    pub async fn delete_group(&self, name: &str, actor: &str) -> Result<()> {
        check_group_name(name)?;
        let mut tx = self.begin_write(Durability::Durable).await?;
        let locked: Option<(i64, String)> = sqlx::query_as(
            "UPDATE account_groups SET updated_at = updated_at WHERE name = $1 RETURNING id, policy_json",
        )
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let (id, policy) = locked.ok_or_else(|| group_not_found(name))?;

        let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE group_id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        let credentials: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT key_id, used_by_account FROM eab_credentials WHERE group_id = $1 ORDER BY key_id")
                .bind(id)
                .fetch_all(&mut **tx)
                .await?;
        if let Some(why) = still_named_by(accounts, &credentials) {
            tx.rollback().await?;
            return Err(StoreError::Invalid { what: "group deletion", why: format!("account group {name:?}: {why}") });
        }

        sqlx::query("DELETE FROM account_groups WHERE id = $1").bind(id).execute(&mut **tx).await.map_err(|e| {
            // An account or credential that names the group arrived after the counts above (its insert held the
            // group row in a way the no-op update does not exclude); the foreign key refused the delete.
            if matches!(&e, sqlx::Error::Database(db) if db.is_foreign_key_violation()) {
                StoreError::Invalid {
                    what: "group deletion",
                    why: format!("account group {name:?} gained an account or EAB credential meanwhile"),
                }
            } else {
                e.into()
            }
        })?;
        audit(&mut tx, actor, "group.delete", subject(name), json!({ "id": id, "policy": stored_policy(&policy) }))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves an account into a group, or out of every group (`None`). If the account was admitted by an EAB
    /// credential and moves into a group, the credential moves with it: it names the group its account is in, so
    /// the group the account left can be deleted. Audit "account.group" with the old and new group.
    pub async fn set_account_group(&self, account_id: AccountId, group: Option<&str>, actor: &str) -> Result<()> {
        if let Some(name) = group {
            check_group_name(name)?;
        }
        let mut tx = self.begin_write(Durability::Durable).await?;
        let locked: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("UPDATE accounts SET updated_at = updated_at WHERE id = $1 RETURNING group_id, eab_key_id")
                .bind(account_id)
                .fetch_optional(&mut **tx)
                .await?;
        let (old_id, eab_key_id) =
            locked.ok_or_else(|| StoreError::NotFound { what: format!("account {account_id}") })?;
        let old_name: Option<String> = match old_id {
            Some(id) => sqlx::query_scalar("SELECT name FROM account_groups WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("account {account_id} names missing group {id}")))?,
            None => None,
        };
        let new_id: Option<GroupId> = match group {
            Some(name) => Some(
                sqlx::query_scalar("SELECT id FROM account_groups WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| group_not_found(name))?,
            ),
            None => None,
        };
        let group_gone = |e: sqlx::Error| {
            // Deleted between the look-up above and this write.
            if matches!(&e, sqlx::Error::Database(db) if db.is_foreign_key_violation()) {
                group_not_found(group.unwrap_or_default())
            } else {
                e.into()
            }
        };
        sqlx::query("UPDATE accounts SET group_id = $1, updated_at = $2 WHERE id = $3")
            .bind(new_id)
            .bind(self.now())
            .bind(account_id)
            .execute(&mut **tx)
            .await
            .map_err(group_gone)?;
        if let (Some(key_id), Some(new_id)) = (&eab_key_id, new_id) {
            sqlx::query("UPDATE eab_credentials SET group_id = $1 WHERE key_id = $2")
                .bind(new_id)
                .bind(key_id)
                .execute(&mut **tx)
                .await
                .map_err(group_gone)?;
        }
        let details = json!({
            "old_group": old_name,
            "old_group_id": old_id,
            "new_group": group,
            "new_group_id": new_id,
            "eab_key_id": eab_key_id,
        });
        audit(&mut tx, actor, "account.group", format!("account:{account_id}"), details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accounts for the admin API, by id: up to `limit` with ids above `after_id` (pass the last id seen to read
    /// on), in `group` or, with `None`, in any group or none. An unknown group is NotFound.
    pub async fn accounts(
        &self,
        group: Option<&str>,
        after_id: Option<AccountId>,
        limit: i64,
    ) -> Result<Vec<AccountRecord>> {
        check_limit(limit)?;
        let after = after_id.map_or(i64::MIN, AccountId::get);
        let rows = match group {
            Some(name) => {
                let group = self.group_by_name(name).await?.ok_or_else(|| group_not_found(name))?;
                sqlx::query(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE group_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(group.id)
                .bind(after)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > $1 ORDER BY id LIMIT $2"))
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(account_from_row).collect()
    }
}

fn subject(name: &str) -> String {
    format!("group:{name}")
}

/// A policy document must be a JSON object (the policy crate checks the rest); returns it for the audit entry.
fn check_policy(policy_json: &str) -> Result<Value> {
    check_text("policy document", policy_json)?;
    match serde_json::from_str::<Value>(policy_json) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(StoreError::Invalid { what: "policy document", why: "not a JSON object".to_owned() }),
        Err(e) => Err(StoreError::Invalid { what: "policy document", why: format!("not JSON: {e}") }),
    }
}

/// A stored document for an audit entry: as JSON, or as the text itself should the column hold something else.
fn stored_policy(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Why a group cannot be deleted yet, given how many accounts it has and its credentials (key id, account).
fn still_named_by(accounts: i64, credentials: &[(String, Option<i64>)]) -> Option<String> {
    let unused: Vec<String> = credentials.iter().filter(|(_, a)| a.is_none()).map(|(k, _)| format!("{k:?}")).collect();
    let stray: Vec<String> =
        credentials.iter().filter_map(|(k, a)| a.map(|a| format!("{k:?} (account {a})"))).collect();
    let mut reasons = Vec::new();
    if accounts > 0 {
        reasons.push(format!("{accounts} account(s) still belong to it; move them to another group first"));
    }
    if !unused.is_empty() {
        reasons.push(format!(
            "{} unused EAB credential(s) would admit accounts to it ({}); delete them first",
            unused.len(),
            listed(&unused)
        ));
    }
    // Used credentials of accounts in this group are covered by the account count.
    if accounts == 0 && !stray.is_empty() {
        reasons.push(format!(
            "{} used EAB credential(s) still name it, of accounts no longer in it ({}); move those accounts to a \
             group first",
            stray.len(),
            listed(&stray)
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn listed<S: AsRef<str>>(items: &[S]) -> String {
    let mut shown: Vec<String> = items.iter().take(LISTED_IN_REFUSAL).map(|s| s.as_ref().to_owned()).collect();
    if items.len() > LISTED_IN_REFUSAL {
        shown.push(format!("and {} more", items.len() - LISTED_IN_REFUSAL));
    }
    shown.join(", ")
}

fn group_from_row(row: &AnyRow) -> Result<GroupRecord> {
    Ok(GroupRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        policy_json: row.try_get("policy_json")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
