//! External account binding credentials (RFC 8555 §7.3.4): each admits one ACME account to a group.
//!
//! The HMAC key is stored only sealed under the token's KEK (the caller seals and unseals; the store never sees
//! it in the clear) and never goes to the audit log. `create_account` marks a credential used in the transaction
//! that creates the account it admits, and the accounts table's UNIQUE `eab_key_id` keeps it to one account.

use super::group_not_found;
use crate::Store;
use crate::acme::audit;
use crate::error::{Result, StoreError};
use crate::ids::{AccountId, GroupId};
use crate::write::Durability;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

/// The longest key id.
pub const MAX_EAB_KEY_ID_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EabRecord {
    pub key_id: String,
    pub group_id: GroupId,
    pub group_name: String,
    /// Sealed under the token's KEK; never the key itself.
    pub hmac_key_sealed: Vec<u8>,
    pub created_at: i64,
    pub used_at: Option<i64>,
    pub used_by_account: Option<AccountId>,
}

const EAB_COLUMNS: &str = "e.key_id, e.group_id, g.name AS group_name, e.hmac_key_sealed, e.created_at, e.used_at, \
    e.used_by_account";

impl Store {
    /// Stores a credential admitting one account to `group_name`. An unknown group is NotFound, a key id already
    /// stored (used or not) a Conflict. Audit "eab.create" (the key id and group, never the key).
    pub async fn create_eab(
        &self,
        key_id: &str,
        group_name: &str,
        hmac_key_sealed: &[u8],
        actor: &str,
    ) -> Result<EabRecord> {
        check_key_id(key_id)?;
        super::check_group_name(group_name)?;
        if hmac_key_sealed.is_empty() {
            return Err(StoreError::Invalid { what: "EAB credential", why: "empty sealed key".to_owned() });
        }
        let mut tx = self.begin_write(Durability::Durable).await?;
        // One statement finds the group and inserts, so a group deleted meanwhile cannot be named.
        let row: Option<(GroupId, i64)> = sqlx::query_as(
            "INSERT INTO eab_credentials (key_id, group_id, hmac_key_sealed, created_at) \
             SELECT $1, id, $2, $3 FROM account_groups WHERE name = $4 RETURNING group_id, created_at",
        )
        .bind(key_id)
        .bind(hmac_key_sealed.to_vec())
        .bind(self.now())
        .bind(group_name)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| {
            if StoreError::is_unique_violation(&e) {
                StoreError::Conflict { what: format!("EAB credential {key_id:?}") }
            } else {
                e.into()
            }
        })?;
        let (group_id, created_at) = row.ok_or_else(|| group_not_found(group_name))?;
        let details = json!({ "group": group_name, "group_id": group_id });
        audit(&mut tx, actor, "eab.create", subject(key_id), details).await?;
        tx.commit().await?;
        Ok(EabRecord {
            key_id: key_id.to_owned(),
            group_id,
            group_name: group_name.to_owned(),
            hmac_key_sealed: hmac_key_sealed.to_vec(),
            created_at,
            used_at: None,
            used_by_account: None,
        })
    }

    /// The credential with this key id, used or not; None for an unknown (or malformed) one.
    pub async fn eab(&self, key_id: &str) -> Result<Option<EabRecord>> {
        if check_key_id(key_id).is_err() {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {EAB_COLUMNS} FROM eab_credentials e JOIN account_groups g ON g.id = e.group_id \
             WHERE e.key_id = $1"
        ))
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(eab_from_row).transpose()
    }

    /// Credentials, oldest first: a group's (an unknown group is NotFound), or with `None` every group's.
    pub async fn eabs(&self, group: Option<&str>) -> Result<Vec<EabRecord>> {
        let rows = match group {
            Some(name) => {
                let group = self.group_by_name(name).await?.ok_or_else(|| group_not_found(name))?;
                sqlx::query(&format!(
                    "SELECT {EAB_COLUMNS} FROM eab_credentials e JOIN account_groups g ON g.id = e.group_id \
                     WHERE e.group_id = $1 ORDER BY e.created_at, e.key_id"
                ))
                .bind(group.id)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {EAB_COLUMNS} FROM eab_credentials e JOIN account_groups g ON g.id = e.group_id \
                     ORDER BY e.created_at, e.key_id"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(eab_from_row).collect()
    }

    /// Deletes a credential no account has used; a used one is Invalid (it records how its account was
    /// admitted, and the account refers to it). Racing an account creation that uses it, exactly one wins: the
    /// delete's `used_at IS NULL` is re-checked under the row lock, and the account's foreign key refuses a
    /// credential already deleted. Audit "eab.delete".
    pub async fn delete_eab(&self, key_id: &str, actor: &str) -> Result<()> {
        if check_key_id(key_id).is_err() {
            return Err(not_found(key_id));
        }
        let mut tx = self.begin_write(Durability::Durable).await?;
        let deleted: Option<i64> =
            sqlx::query_scalar("DELETE FROM eab_credentials WHERE key_id = $1 AND used_at IS NULL RETURNING group_id")
                .bind(key_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| {
                    if matches!(&e, sqlx::Error::Database(db) if db.is_foreign_key_violation()) {
                        used(key_id, None)
                    } else {
                        e.into()
                    }
                })?;
        let Some(group_id) = deleted else {
            let by: Option<Option<i64>> =
                sqlx::query_scalar("SELECT used_by_account FROM eab_credentials WHERE key_id = $1")
                    .bind(key_id)
                    .fetch_optional(&mut **tx)
                    .await?;
            tx.rollback().await?;
            return Err(match by {
                None => not_found(key_id),
                Some(account) => used(key_id, account),
            });
        };
        let group: Option<String> = sqlx::query_scalar("SELECT name FROM account_groups WHERE id = $1")
            .bind(group_id)
            .fetch_optional(&mut **tx)
            .await?;
        let details = json!({ "group": group, "group_id": group_id });
        audit(&mut tx, actor, "eab.delete", subject(key_id), details).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// 1 to [`MAX_EAB_KEY_ID_LEN`] characters of RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`), so a key id
/// travels in a URL path and a JWS `kid` unescaped.
fn check_key_id(key_id: &str) -> Result<()> {
    let ok = !key_id.is_empty()
        && key_id.len() <= MAX_EAB_KEY_ID_LEN
        && key_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "EAB key id",
            why: format!("{key_id:?} is not 1 to {MAX_EAB_KEY_ID_LEN} characters of A-Z, a-z, 0-9, '-', '.', '_', '~'"),
        })
    }
}

fn subject(key_id: &str) -> String {
    format!("eab:{key_id}")
}

fn not_found(key_id: &str) -> StoreError {
    StoreError::NotFound { what: format!("EAB credential {key_id:?}") }
}

fn used(key_id: &str, account: Option<i64>) -> StoreError {
    let by = account.map(|a| format!(" by account {a}")).unwrap_or_default();
    StoreError::Invalid {
        what: "EAB credential deletion",
        why: format!("EAB credential {key_id:?} has been used{by}; a used credential stays with its account"),
    }
}

fn eab_from_row(row: &AnyRow) -> Result<EabRecord> {
    Ok(EabRecord {
        key_id: row.try_get("key_id")?,
        group_id: row.try_get("group_id")?,
        group_name: row.try_get("group_name")?,
        hmac_key_sealed: row.try_get("hmac_key_sealed")?,
        created_at: row.try_get("created_at")?,
        used_at: row.try_get("used_at")?,
        used_by_account: row.try_get("used_by_account")?,
    })
}
