//! Settings that apply to every group and every replica, such as the global deny list: a key and its text.

use crate::Store;
use crate::acme::{audit, check_text};
use crate::error::{Result, StoreError};
use crate::write::Durability;
use serde_json::json;

/// The global deny list, as the policy crate's `GlobalDeny` JSON.
pub const GLOBAL_DENY: &str = "policy.global_deny";

/// The longest setting key.
pub const MAX_SETTING_KEY_LEN: usize = 64;

impl Store {
    /// The value and when it was last set (Unix seconds), or None if it never was.
    pub async fn setting(&self, key: &str) -> Result<Option<(String, i64)>> {
        check_key(key)?;
        Ok(sqlx::query_as("SELECT value, updated_at FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Every setting as (key, value, updated_at), by key.
    pub async fn settings(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as("SELECT key, value, updated_at FROM settings ORDER BY key").fetch_all(self.pool()).await?)
    }

    /// Sets a value, stored as given. Audit "setting.set" with the old value (null when there was none) and the
    /// new one.
    pub async fn set_setting(&self, key: &str, value: &str, actor: &str) -> Result<()> {
        check_key(key)?;
        check_text("setting value", value)?;
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        // Lock the row and read the old value; if there is no row, insert one. An insert that finds the row
        // (another writer created it since the lock attempt and has committed) means there is one to lock now.
        let mut old = lock(&mut tx, key).await?;
        if old.is_none() {
            let inserted = sqlx::query(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                old = lock(&mut tx, key).await?;
                if old.is_none() {
                    return Err(StoreError::Corrupt(format!("setting {key:?} conflicted on insert but is missing")));
                }
            }
        }
        if old.is_some() {
            sqlx::query("UPDATE settings SET value = $1, updated_at = $2 WHERE key = $3")
                .bind(value)
                .bind(now)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        audit(&mut tx, actor, "setting.set", format!("setting:{key}"), json!({ "old": old, "new": value })).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Locks the setting's row and returns its value, or None when there is no row.
async fn lock(tx: &mut sqlx::Transaction<'static, sqlx::Any>, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("UPDATE settings SET updated_at = updated_at WHERE key = $1 RETURNING value")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Lower-case dotted names: `[a-z0-9][a-z0-9._-]*`, at most [`MAX_SETTING_KEY_LEN`] characters.
fn check_key(key: &str) -> Result<()> {
    let bytes = key.as_bytes();
    let ok = matches!(bytes.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= MAX_SETTING_KEY_LEN
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "setting key",
            why: format!("{key:?} is not 1 to {MAX_SETTING_KEY_LEN} characters of a-z, 0-9, '.', '_', '-'"),
        })
    }
}
