//! RFC 8555 ACME state: accounts, orders, authorizations, challenges, and the certificates they lead to.
//!
//! Several replicas may share one PostgreSQL, so every state change is a conditional
//! `UPDATE … WHERE status = …` whose `rows_affected` says whether this caller made the transition: two replicas
//! racing to start one challenge or finalize one order get exactly one winner. Changes that touch several rows
//! (a challenge's outcome reaching its authorization and orders) happen in one transaction, with their audit entry
//! (`crate::audit::audit_append_in`) appended last in the same transaction: the log says a thing happened exactly
//! when it did.
//!
//! Two rules keep both backends correct under concurrency:
//!
//! - Every transaction writes first. On SQLite a transaction that reads and then writes can fail with
//!   SQLITE_BUSY instead of waiting for the write lock; one that writes first queues. Where a method must look at
//!   rows before deciding, it locks them with a no-op `UPDATE … SET updated_at = updated_at` (PostgreSQL's row
//!   lock, SQLite's write lock) and reads after.
//! - Rows are locked in one order: account → authorization → challenge → order (ascending ids when several) →
//!   certificate → audit head. On PostgreSQL, checks that span rows (are all of an order's authorizations valid?)
//!   run in a statement after the lock is taken, so under READ COMMITTED they see what the lock holder before
//!   them committed. Without that, two challenges of one order finishing at once could each see the other still
//!   pending and leave the order pending for ever.

mod accounts;
mod certificates;
mod challenges;
mod finalize;
mod model;
mod orders;

#[cfg(test)]
mod tests;

pub use model::{
    AccountCreation, AccountRecord, AccountStatus, AuthorizationPlan, AuthorizationRecord, AuthorizationStatus,
    ChallengeOutcome, ChallengeRecord, ChallengeStatus, ChallengeType, NewAccount, NewAuthorization, NewChallenge,
    NewOrder, OrderRecord, OrderStatus, StoredIdentifier,
};

pub(crate) use model::{ACCOUNT_COLUMNS, account_from_row};

use crate::audit::{AuditEvent, audit_append_in};
use crate::error::{Result, StoreError};
use crate::write::WriteTx;
use serde_json::Value;
use sqlx::{Any, AnyConnection, Transaction};

type Tx<'c> = Transaction<'c, Any>;

/// The ACME problem type stored on orders that an account's or authorization's deactivation invalidates.
const UNAUTHORIZED: &str = "urn:ietf:params:acme:error:unauthorized";

/// The kinds of row whose status the methods here move, for "why did the UPDATE match nothing" answers.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Account,
    Order,
    Authorization,
    Challenge,
    Certificate,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Account => "accounts",
            Kind::Order => "orders",
            Kind::Authorization => "authorizations",
            Kind::Challenge => "challenges",
            Kind::Certificate => "certificates",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Order => "order",
            Kind::Authorization => "authorization",
            Kind::Challenge => "challenge",
            Kind::Certificate => "certificate",
        }
    }

    fn state(self) -> &'static str {
        match self {
            Kind::Account => "account state",
            Kind::Order => "order state",
            Kind::Authorization => "authorization state",
            Kind::Challenge => "challenge state",
            Kind::Certificate => "certificate state",
        }
    }

    fn subject(self, id: impl Into<i64>) -> String {
        let id = id.into();
        format!("{}:{id}", self.noun())
    }

    fn not_found(self, id: impl Into<i64>) -> StoreError {
        let id = id.into();
        StoreError::NotFound { what: format!("{} {id}", self.noun()) }
    }
}

/// The row's current status, or None when there is no such row.
async fn status_of(conn: &mut AnyConnection, kind: Kind, id: impl Into<i64>) -> Result<Option<String>> {
    let id = id.into();
    let sql = format!("SELECT status FROM {} WHERE id = $1", kind.table());
    Ok(sqlx::query_scalar(&sql).bind(id).fetch_optional(conn).await?)
}

/// Why a conditional UPDATE on this row matched nothing: it does not exist (NotFound), or it is in a state other
/// than `wanted` (Invalid).
async fn why_not(conn: &mut AnyConnection, kind: Kind, id: impl Into<i64>, wanted: &str) -> StoreError {
    let id = id.into();
    match status_of(conn, kind, id).await {
        Ok(None) => kind.not_found(id),
        Ok(Some(status)) => {
            StoreError::Invalid { what: kind.state(), why: format!("{} {id} is {status}, not {wanted}", kind.noun()) }
        }
        Err(e) => e,
    }
}

/// Appends the audit entry for this transaction's change: last, just before committing, because it holds the
/// audit chain's lock until the transaction ends.
pub(crate) async fn audit(tx: &mut WriteTx, actor: &str, action: &str, subject: String, details: Value) -> Result<()> {
    let at = tx.now;
    audit_append_in(tx, &AuditEvent::new(actor, action, subject).with_details(details), at).await?;
    Ok(())
}

/// PostgreSQL's TEXT cannot hold NUL where SQLite's can: refuse it on both, with a clear error.
pub(crate) fn check_text(what: &'static str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(StoreError::Invalid { what, why: "contains a NUL character".to_owned() });
    }
    Ok(())
}

/// JSON for a TEXT column. The JSON text of a string escapes NUL, so this never needs `check_text`.
fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid { what: "JSON value", why: e.to_string() })
}

pub(crate) fn check_limit(limit: i64) -> Result<()> {
    if limit < 0 {
        return Err(StoreError::Invalid { what: "limit", why: format!("{limit} is negative") });
    }
    Ok(())
}

/// An RFC 7807 problem for orders invalidated because something they relied on went away.
fn unauthorized(detail: String) -> Value {
    serde_json::json!({ "type": UNAUTHORIZED, "detail": detail, "status": 403 })
}
