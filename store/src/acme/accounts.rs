//! ACME accounts (RFC 8555 §7.3): one per key, contacts, deactivation, key rollover.

use super::model::{ACCOUNT_COLUMNS, AccountCreation, AccountRecord, NewAccount, account_from_row};
use super::{Kind, audit, check_text, json_text, unauthorized, why_not};
use crate::Store;
use crate::error::{Result, StoreError};
use crate::ids::{AccountId, AuthorizationId, OrderId};
use crate::write::Durability;
use serde_json::json;
use sqlx::AnyConnection;

impl Store {
    /// Creates the account for this key, or returns the one the key already has (writing nothing then). Two
    /// replicas creating an account for one key at once get one `Created` and one `Existing`: the insert yields to
    /// the UNIQUE thumbprint (`ON CONFLICT DO NOTHING`, which on PostgreSQL waits for the other insert to commit)
    /// and the loser reads the winner's row. Binding an EAB key id that another account already holds is a
    /// Conflict; an unknown EAB key id or group is Invalid. Audit "account.create".
    pub async fn create_account(&self, new: &NewAccount, actor: &str) -> Result<AccountCreation> {
        validate(new)?;
        if let Some(existing) = self.account_by_thumbprint(&new.jwk_thumbprint).await? {
            return Ok(AccountCreation::Existing(existing));
        }
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO accounts (jwk_json, jwk_thumbprint, status, contacts_json, group_id, eab_key_id, \
             terms_agreed, created_at, updated_at) VALUES ($1, $2, 'valid', $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (jwk_thumbprint) DO NOTHING RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(&new.jwk_json)
        .bind(&new.jwk_thumbprint)
        .bind(json_text(&new.contacts)?)
        .bind(new.group_id)
        .bind(&new.eab_key_id)
        .bind(i64::from(new.terms_agreed))
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| insert_error(e, new))?;
        let Some(row) = row else {
            // Another creator committed this key first.
            tx.rollback().await?;
            return match self.account_by_thumbprint(&new.jwk_thumbprint).await? {
                Some(existing) => Ok(AccountCreation::Existing(existing)),
                None => Err(StoreError::Corrupt(format!(
                    "key {} conflicted on insert but has no account",
                    new.jwk_thumbprint
                ))),
            };
        };
        let account = account_from_row(&row)?;
        if let Some(key_id) = &new.eab_key_id {
            sqlx::query("UPDATE eab_credentials SET used_at = $1, used_by_account = $2 WHERE key_id = $3")
                .bind(now)
                .bind(account.id)
                .bind(key_id)
                .execute(&mut **tx)
                .await?;
        }
        let details = json!({
            "jwk_thumbprint": account.jwk_thumbprint,
            "contacts": account.contacts,
            "terms_agreed": account.terms_agreed,
            "group_id": account.group_id,
            "eab_key_id": account.eab_key_id,
        });
        audit(&mut tx, actor, "account.create", Kind::Account.subject(account.id), details).await?;
        tx.commit().await?;
        Ok(AccountCreation::Created(account))
    }

    pub async fn account(&self, id: AccountId) -> Result<AccountRecord> {
        let mut conn = self.pool().acquire().await?;
        account_in(&mut conn, id).await
    }

    pub async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<AccountRecord>> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE jwk_thumbprint = $1"))
            .bind(thumbprint)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Replaces the contacts of a valid account. Audit "account.update".
    pub async fn update_account_contacts(
        &self,
        id: AccountId,
        contacts: &[String],
        actor: &str,
    ) -> Result<AccountRecord> {
        for contact in contacts {
            check_text("contact", contact)?;
        }
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts SET contacts_json = $1, updated_at = $2 WHERE id = $3 AND status = 'valid' \
             RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(json_text(contacts)?)
        .bind(self.now())
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Err(why_not(&mut tx, Kind::Account, id, "valid").await);
        };
        let account = account_from_row(&row)?;
        audit(&mut tx, actor, "account.update", Kind::Account.subject(id), json!({ "contacts": account.contacts }))
            .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// valid → deactivated (RFC 8555 §7.3.6), and with it the account's pending and valid authorizations are
    /// deactivated and its pending and ready orders invalidated, so nothing it started can still lead to a
    /// certificate. Orders already processing finish. Audit "account.deactivate".
    pub async fn deactivate_account(&self, id: AccountId, actor: &str) -> Result<AccountRecord> {
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts SET status = 'deactivated', updated_at = $1 WHERE id = $2 AND status = 'valid' \
             RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Err(why_not(&mut tx, Kind::Account, id, "valid").await);
        };
        let account = account_from_row(&row)?;
        let authorizations: Vec<AuthorizationId> = sqlx::query_scalar(
            "UPDATE authorizations SET status = 'deactivated', updated_at = $1 \
             WHERE account_id = $2 AND status IN ('pending', 'valid') RETURNING id",
        )
        .bind(now)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        let error = unauthorized(format!("account {id} was deactivated"));
        let orders: Vec<OrderId> = sqlx::query_scalar(
            "UPDATE orders SET status = 'invalid', error_json = $1, updated_at = $2 \
             WHERE account_id = $3 AND status IN ('pending', 'ready') RETURNING id",
        )
        .bind(json_text(&error)?)
        .bind(now)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        let details =
            json!({ "authorizations_deactivated": sorted(authorizations), "orders_invalidated": sorted(orders) });
        audit(&mut tx, actor, "account.deactivate", Kind::Account.subject(id), details).await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Key rollover (RFC 8555 §7.3.5): replaces the key of a valid account that still has `old_thumbprint`, so of
    /// two concurrent rollovers from one key only the first succeeds (the second is Invalid). A new key that
    /// already belongs to an account (this one included) is a Conflict. Audit "account.key_change".
    pub async fn change_account_key(
        &self,
        id: AccountId,
        old_thumbprint: &str,
        new_jwk_json: &str,
        new_thumbprint: &str,
        actor: &str,
    ) -> Result<AccountRecord> {
        check_text("JWK", new_jwk_json)?;
        check_text("JWK thumbprint", new_thumbprint)?;
        if new_thumbprint.is_empty() || new_jwk_json.is_empty() {
            return Err(StoreError::Invalid { what: "key change", why: "empty new key".to_owned() });
        }
        let key_in_use = || StoreError::Conflict { what: format!("an account with key {new_thumbprint}") };
        if new_thumbprint == old_thumbprint {
            return Err(key_in_use());
        }
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts SET jwk_json = $1, jwk_thumbprint = $2, updated_at = $3 \
             WHERE id = $4 AND status = 'valid' AND jwk_thumbprint = $5 RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(new_jwk_json)
        .bind(new_thumbprint)
        .bind(self.now())
        .bind(id)
        .bind(old_thumbprint)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| if StoreError::is_unique_violation(&e) { key_in_use() } else { e.into() })?;
        let Some(row) = row else {
            let current = sqlx::query_scalar::<_, String>("SELECT jwk_thumbprint FROM accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            return Err(match current {
                Some(current) if current != old_thumbprint => StoreError::Invalid {
                    what: "key change",
                    why: format!("account {id}'s key is no longer {old_thumbprint}"),
                },
                _ => why_not(&mut tx, Kind::Account, id, "valid").await,
            });
        };
        let account = account_from_row(&row)?;
        let details = json!({ "old_thumbprint": old_thumbprint, "new_thumbprint": new_thumbprint });
        audit(&mut tx, actor, "account.key_change", Kind::Account.subject(id), details).await?;
        tx.commit().await?;
        Ok(account)
    }
}

pub(super) async fn account_in(conn: &mut AnyConnection, id: AccountId) -> Result<AccountRecord> {
    let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Kind::Account.not_found(id))?;
    account_from_row(&row)
}

fn validate(new: &NewAccount) -> Result<()> {
    if new.jwk_json.is_empty() || new.jwk_thumbprint.is_empty() {
        return Err(StoreError::Invalid { what: "account", why: "empty key".to_owned() });
    }
    check_text("JWK", &new.jwk_json)?;
    check_text("JWK thumbprint", &new.jwk_thumbprint)?;
    for contact in &new.contacts {
        check_text("contact", contact)?;
    }
    if let Some(key_id) = &new.eab_key_id {
        check_text("EAB key id", key_id)?;
    }
    Ok(())
}

/// The insert's constraint failures, in the caller's terms. (A taken thumbprint never gets here: it is
/// `ON CONFLICT DO NOTHING`.)
fn insert_error(e: sqlx::Error, new: &NewAccount) -> StoreError {
    let is_foreign_key = matches!(&e, sqlx::Error::Database(db) if db.is_foreign_key_violation());
    if StoreError::is_unique_violation(&e) {
        let key_id = new.eab_key_id.as_deref().unwrap_or_default();
        StoreError::Conflict { what: format!("an account bound to external account key {key_id:?}") }
    } else if is_foreign_key {
        StoreError::Invalid { what: "account", why: "unknown account group or external account key".to_owned() }
    } else {
        e.into()
    }
}

fn sorted<T: Ord>(mut ids: Vec<T>) -> Vec<T> {
    ids.sort_unstable();
    ids
}
