//! Both backends for tests. SQLite: a file in a temporary directory. PostgreSQL: a fresh database on the server
//! $DATABASE_URL names (scripts/test starts a throwaway cluster and sets it when none is given).

// Test support: a broken test machine fails the test that asked, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{Store, TimeSource};

/// A store and whatever keeps it alive (the SQLite file's directory).
pub struct TestStore {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// The same database again (a second handle for another component); `other` keeps it alive.
    pub fn sharing(other: &TestStore) -> TestStore {
        TestStore { store: other.store.clone(), url: other.url.clone(), _dir: None }
    }
}

pub async fn sqlite() -> TestStore {
    sqlite_in(tempfile::tempdir().expect("temporary directory")).await
}

/// SQLite in memory: the database file on tmpfs (/dev/shm, where the machine has it), so the store runs exactly as
/// in production (WAL, durable commits, the writers' queue) at memory speed. For tests that want milliseconds.
pub async fn memory() -> TestStore {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    sqlite_in(dir.expect("temporary directory")).await
}

async fn sqlite_in(dir: tempfile::TempDir) -> TestStore {
    let url = format!("sqlite://{}", dir.path().join("castellan.db").display());
    let store = Store::open(&url).await.expect("open SQLite store");
    TestStore { store, url, _dir: Some(dir) }
}

/// A fresh PostgreSQL database, or None when $DATABASE_URL is unset. When CASTELLAN_REQUIRE_POSTGRES is set
/// (scripts/test sets it), a missing $DATABASE_URL fails the test instead, so CI cannot skip PostgreSQL silently.
pub async fn postgres() -> Option<TestStore> {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var_os("CASTELLAN_REQUIRE_POSTGRES").is_none(),
            "CASTELLAN_REQUIRE_POSTGRES is set but DATABASE_URL is not"
        );
        eprintln!("DATABASE_URL is not set: PostgreSQL half of this test not run (scripts/test sets it)");
        return None;
    };
    let name = format!("castellan_test_{}_{}", std::process::id(), rand::random::<u32>());
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await.expect("connect to PostgreSQL");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    let url = with_database(&base, &name);
    let store = Store::open(&url).await.expect("open PostgreSQL store");
    Some(TestStore { store, url, _dir: None })
}

/// Every backend available: SQLite always, PostgreSQL when configured.
pub async fn all() -> Vec<TestStore> {
    let mut stores = vec![sqlite().await];
    stores.extend(postgres().await);
    stores
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_end..].find('/').map(|i| authority_end + i).unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A time source that stands still until a test moves it (castellan-authority's clock does this above the store;
/// the store's own tests use this one).
#[derive(Debug)]
pub struct ManualTime(std::sync::atomic::AtomicI64);

impl ManualTime {
    /// Starts at the system's current second.
    pub fn now() -> std::sync::Arc<ManualTime> {
        std::sync::Arc::new(ManualTime(std::sync::atomic::AtomicI64::new(crate::SystemTime.unix_now())))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl crate::TimeSource for ManualTime {
    fn unix_now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
