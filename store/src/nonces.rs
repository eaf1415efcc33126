//! RFC 8555 §6.5 anti-replay nonces.
//!
//! Every ACME response carries a fresh `Replay-Nonce`, and every signed request must echo one the server issued
//! and has not yet seen. The nonces live in the database rather than in a replica's memory because replicas share
//! one store: a client may get its nonce from one replica and spend it on another behind the same load balancer,
//! and a replayed request sent to every replica at once must still succeed on at most one of them.
//!
//! Security properties:
//! - Unpredictable: 128 bits from the operating system's CSPRNG (`OsRng`), encoded base64url without padding
//!   (22 characters), so a nonce cannot be guessed or derived from earlier ones.
//! - Single use, across replicas: consuming is one `DELETE … WHERE nonce = $1 AND expires_at >= $2`, and only the
//!   caller whose statement removed the row sees `rows_affected == 1`. The database serializes the deletes
//!   (SQLite's write lock, PostgreSQL's row lock), so concurrent consumers of one nonce get exactly one `true`.
//! - Bounded lifetime: a nonce is valid until `expires_at` (Unix seconds, inclusive) by the consuming replica's
//!   clock; later it is refused even if still stored, and [`Store::purge_expired_nonces`] sweeps such rows.
//! - Input checked before the database: empty, overlong (over [`MAX_NONCE_LEN`]) or non-base64url values are
//!   refused without a query, so hostile headers cost nothing and never reach SQL.
//!
//! A refused nonce is just `false`: the caller answers with ACME's `badNonce` and a fresh nonce.

use crate::Store;
use crate::error::Result;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use std::time::Duration;

/// Random bytes per nonce: 128 bits.
const NONCE_BYTES: usize = 16;

/// The longest value [`Store::consume_nonce`] will look up; ours are 22 characters.
pub const MAX_NONCE_LEN: usize = 64;

impl Store {
    /// A fresh nonce, valid for `lifetime` (rounded down to whole seconds) from now.
    pub async fn issue_nonce(&self, lifetime: Duration) -> Result<String> {
        let mut bytes = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut bytes);
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires_at = self.now().saturating_add(lifetime);
        sqlx::query("INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2)")
            .bind(&nonce)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(nonce)
    }

    /// Spends a nonce: true exactly once for a nonce this store issued and that has not expired; false for an
    /// unknown, expired, already used or malformed one. Atomic across replicas sharing the database.
    pub async fn consume_nonce(&self, nonce: &str) -> Result<bool> {
        if !well_formed(nonce) {
            return Ok(false);
        }
        let deleted = sqlx::query("DELETE FROM nonces WHERE nonce = $1 AND expires_at >= $2")
            .bind(nonce)
            .bind(self.now())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Deletes the nonces that have expired, for a periodic sweep; returns how many.
    pub async fn purge_expired_nonces(&self) -> Result<u64> {
        let deleted =
            sqlx::query("DELETE FROM nonces WHERE expires_at < $1").bind(self.now()).execute(self.pool()).await?;
        Ok(deleted.rows_affected())
    }
}

/// Non-empty, at most [`MAX_NONCE_LEN`] characters, and only the base64url alphabet (no padding).
fn well_formed(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_accepts_base64url_only() {
        assert!(well_formed("AZaz09-_"));
        assert!(well_formed(&"A".repeat(MAX_NONCE_LEN)));
        assert!(!well_formed(""));
        assert!(!well_formed(&"A".repeat(MAX_NONCE_LEN + 1)));
        for bad in ["abc=", "ab+c", "ab/c", "ab c", "ab\0c", "abé", "ab'c"] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }
}
