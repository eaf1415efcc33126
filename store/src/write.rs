//! Write transactions, and how durable each must be.
//!
//! On SQLite every writer waits its turn on an in-process queue before `BEGIN`, instead of colliding inside
//! SQLite, whose busy handler would make it sleep and retry (1, 2, 5, 10… ms): under concurrent ACME traffic that
//! sleeping, not the work, would set the latency. On PostgreSQL writers go straight to the server.
//!
//! Durability is chosen per transaction ([`Durability`]): what a client could not redo — a certificate it is
//! about to be handed, an account, a revocation, an audit entry standing alone — waits for the disk; the steps of
//! an ACME flow in between do not, because a power loss that undid them only makes the client repeat a step.
//! SQLite in WAL mode applies commits in order, so a durable commit also makes every relaxed one before it
//! durable: nothing relaxed can outlive a later durable record that depends on it.

use crate::Store;
use crate::db::Backend;
use crate::error::Result;
use sqlx::{Any, Transaction};
use std::ops::{Deref, DerefMut};
use tokio::sync::OwnedMutexGuard;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk before `commit` returns (SQLite `synchronous = FULL`; PostgreSQL's synchronous commit).
    Durable,
    /// Survives a crash of the process but may be lost with a power failure (SQLite `synchronous = NORMAL` in
    /// WAL mode; PostgreSQL `synchronous_commit = off`). Never corrupts; loses a suffix of transactions.
    Relaxed,
}

/// A write transaction holding its turn in the writers' queue until it ends.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    _turn: Option<OwnedMutexGuard<()>>,
    /// The store's "now" when the transaction began: every time it writes is this one.
    pub(crate) now: i64,
}

impl Deref for WriteTx {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Store {
    pub(crate) async fn begin_write(&self, durability: Durability) -> Result<WriteTx> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.writers.clone().lock_owned().await;
                let mut conn = self.pool.acquire().await?;
                // The connection keeps this until the next writer sets its own; readers never look at it.
                let pragma = match durability {
                    Durability::Durable => "PRAGMA synchronous = FULL",
                    Durability::Relaxed => "PRAGMA synchronous = NORMAL",
                };
                sqlx::query(pragma).execute(&mut *conn).await?;
                // No other writer of this process can interleave (the queue above), so a deferred BEGIN cannot
                // meet SQLITE_BUSY_SNAPSHOT from one; another process (the CLI) is waited for by busy_timeout.
                let tx = Transaction::begin(conn, None).await?;
                Ok(WriteTx { tx, _turn: Some(turn), now: self.now() })
            }
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                if durability == Durability::Relaxed {
                    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
                }
                Ok(WriteTx { tx, _turn: None, now: self.now() })
            }
        }
    }
}
