//! The admin API's bearer tokens.
//!
//! A token is `cst_` followed by 32 bytes from the operating system's CSPRNG in base64url (47 characters). The
//! store keeps only its SHA-256: a 256-bit random secret needs no salt or slow hash, and looking a token up by its
//! hash leaks nothing through timing that would help guess another. The plaintext exists once, in the answer to
//! [`Store::create_token`]; the audit log records a token's id, name and scope, never the token.

use crate::acme::{audit, check_text};
use crate::error::{Result, StoreError};
use crate::ids::TokenId;
use crate::write::Durability;
use crate::{Backend, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "cst_";

/// Random bytes per token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// base64url without padding of [`TOKEN_BYTES`] bytes.
const TOKEN_TEXT_LEN: usize = TOKEN_PREFIX.len() + (TOKEN_BYTES * 8).div_ceil(6);

/// `last_used_at` is rewritten at most this often, so authenticating stays a read almost every time.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// The longest token name.
const MAX_TOKEN_NAME_LEN: usize = 128;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// Read anything the admin API shows.
    Read,
    /// Read and change.
    Admin,
}

impl TokenScope {
    pub const ALL: &'static [TokenScope] = &[TokenScope::Read, TokenScope::Admin];

    /// As the schema's CHECK spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<TokenScope> {
        TokenScope::ALL.iter().copied().find(|v| v.as_str() == s)
    }

    /// Whether a token of this scope may do what `needed` demands (admin may read).
    pub fn allows(self, needed: TokenScope) -> bool {
        self == TokenScope::Admin || needed == TokenScope::Read
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: i64,
    /// To the minute: see [`Store::authenticate_token`].
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "id, name, scope, created_at, last_used_at, revoked_at";

impl Store {
    /// A new token; returns its record and its plaintext, which nothing can show again. Audit "token.create".
    pub async fn create_token(&self, name: &str, scope: TokenScope, actor: &str) -> Result<(TokenRecord, String)> {
        check_name(name)?;
        let (plaintext, hash) = generate();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO api_tokens (name, token_sha256, scope, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(name)
        .bind(hash)
        .bind(scope.as_str())
        .bind(self.now())
        .fetch_one(&mut **tx)
        .await?;
        let token = token_from_row(&row)?;
        audit_create(&mut tx, actor, &token, false).await?;
        tx.commit().await?;
        Ok((token, plaintext))
    }

    /// Like [`Store::create_token`], but only when no unrevoked token exists (the same condition as
    /// [`Store::token_count`] being 0), atomically: replicas bootstrapping at once create one token between them.
    /// None when a token exists. Audit "token.create" with `"bootstrap": true`.
    pub async fn bootstrap_token(
        &self,
        name: &str,
        scope: TokenScope,
        actor: &str,
    ) -> Result<Option<(TokenRecord, String)>> {
        check_name(name)?;
        let (plaintext, hash) = generate();
        let mut tx = self.begin_write(Durability::Durable).await?;
        if self.backend() == Backend::Postgres {
            // Under READ COMMITTED two inserts could each see no token; this lock mode conflicts with itself and
            // with writers of the table, and not with readers. (On SQLite the one statement below holds the
            // database's write lock, which is enough.)
            sqlx::query("LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
        }
        let row = sqlx::query(&format!(
            "INSERT INTO api_tokens (name, token_sha256, scope, created_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL) \
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(name)
        .bind(hash)
        .bind(scope.as_str())
        .bind(self.now())
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let token = token_from_row(&row)?;
        audit_create(&mut tx, actor, &token, true).await?;
        tx.commit().await?;
        Ok(Some((token, plaintext)))
    }

    /// The unrevoked token this text is, or None (unknown, revoked, or not a token at all: malformed text is
    /// refused without a query). Records the use in `last_used_at` when the stored time is a minute old or more,
    /// with relaxed durability: a lost update only makes the time a little older. A token revoked while its
    /// request is in flight may finish that request; the next is refused.
    pub async fn authenticate_token(&self, plaintext: &str) -> Result<Option<TokenRecord>> {
        if !well_formed(plaintext) {
            return Ok(None);
        }
        let hash = Sha256::digest(plaintext.as_bytes()).to_vec();
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_sha256 = $1"))
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        let Some(mut token) = row.as_ref().map(token_from_row).transpose()? else {
            return Ok(None);
        };
        if token.revoked_at.is_some() {
            return Ok(None);
        }
        let now = self.now();
        let stale = now.saturating_sub(LAST_USED_GRANULARITY_SECS);
        if token.last_used_at.is_none_or(|at| at <= stale) {
            let mut tx = self.begin_write(Durability::Relaxed).await?;
            // Conditional, so replicas authenticating at once write once; it also returns the row as it is now,
            // revocation included.
            let row = sqlx::query(&format!(
                "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 \
                 AND (last_used_at IS NULL OR last_used_at <= $3) RETURNING {TOKEN_COLUMNS}"
            ))
            .bind(now)
            .bind(token.id)
            .bind(stale)
            .fetch_optional(&mut **tx)
            .await?;
            tx.commit().await?;
            if let Some(row) = row {
                token = token_from_row(&row)?;
                if token.revoked_at.is_some() {
                    return Ok(None);
                }
            }
        }
        Ok(Some(token))
    }

    /// Every token, revoked ones included, by id.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows =
            sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id")).fetch_all(self.pool()).await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token: authentication refuses it from now on. Revoking a revoked token is Invalid, an unknown
    /// one NotFound. Audit "token.revoke".
    pub async fn revoke_token(&self, id: TokenId, actor: &str) -> Result<TokenRecord> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        let row = sqlx::query(&format!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(self.now())
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            tx.rollback().await?;
            return Err(match exists {
                None => StoreError::NotFound { what: format!("API token {id}") },
                Some(_) => StoreError::Invalid { what: "token revocation", why: format!("API token {id} is revoked") },
            });
        };
        let token = token_from_row(&row)?;
        let details = json!({ "name": token.name, "scope": token.scope.as_str() });
        audit(&mut tx, actor, "token.revoke", subject(id), details).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// How many tokens are not revoked: the admin API bootstraps a first token only when this is 0 (see
    /// [`Store::bootstrap_token`], which checks it atomically).
    pub async fn token_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL")
            .fetch_one(self.pool())
            .await?)
    }
}

/// A fresh token's text and the SHA-256 of that text.
fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let plaintext = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = Sha256::digest(plaintext.as_bytes()).to_vec();
    (plaintext, hash)
}

/// The shape of a token this module generates; anything else cannot be one.
fn well_formed(text: &str) -> bool {
    text.len() == TOKEN_TEXT_LEN
        && text
            .strip_prefix(TOKEN_PREFIX)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn check_name(name: &str) -> Result<()> {
    check_text("token name", name)?;
    if name.is_empty() || name.len() > MAX_TOKEN_NAME_LEN || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            what: "token name",
            why: format!("{name:?} is not 1 to {MAX_TOKEN_NAME_LEN} bytes without control characters"),
        });
    }
    Ok(())
}

fn subject(id: TokenId) -> String {
    format!("token:{id}")
}

async fn audit_create(tx: &mut crate::write::WriteTx, actor: &str, token: &TokenRecord, bootstrap: bool) -> Result<()> {
    let details = json!({ "name": token.name, "scope": token.scope.as_str(), "bootstrap": bootstrap });
    audit(tx, actor, "token.create", subject(token.id), details).await
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    let scope: String = row.try_get("scope")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: TokenScope::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown token scope {scope:?}")))?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, hash) = generate();
        let (b, _) = generate();
        assert_eq!(a.len(), TOKEN_TEXT_LEN);
        assert_eq!(TOKEN_TEXT_LEN, 47);
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(hash, Sha256::digest(a.as_bytes()).to_vec());
        assert!(!well_formed(""));
        assert!(!well_formed(&a[1..]));
        assert!(!well_formed(&format!("xst_{}", &a[4..])));
        assert!(!well_formed(&format!("{}=", &a[..46])));
        assert!(!well_formed(&format!("{}é", &a[..45])));
    }

    #[test]
    fn scopes_round_trip_and_admin_includes_read() {
        for s in TokenScope::ALL {
            assert_eq!(TokenScope::parse(s.as_str()), Some(*s));
        }
        assert_eq!(TokenScope::parse("Admin"), None);
        assert!(TokenScope::Admin.allows(TokenScope::Read) && TokenScope::Admin.allows(TokenScope::Admin));
        assert!(TokenScope::Read.allows(TokenScope::Read) && !TokenScope::Read.allows(TokenScope::Admin));
    }
}
