//! Opening, migrating and refusing a newer schema, on both backends.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_store::{Store, StoreError, testkit};

#[tokio::test]
async fn opens_and_migrates_both_backends_idempotently() {
    for t in testkit::all().await {
        // Opening again applies nothing new and succeeds.
        let again = Store::open(&t.url).await.expect("reopen");
        assert_eq!(again.backend(), t.store.backend());
    }
}

#[tokio::test]
async fn placeholders_numbered_in_order_work_on_both_backends() {
    for t in testkit::all().await {
        let (a, b): (i64, String) = sqlx::query_as("SELECT $1 + 1, $2")
            .bind(41i64)
            .bind("x".to_owned())
            .fetch_one(t.store.raw_pool_for_tests())
            .await
            .expect("query");
        assert_eq!((a, b.as_str()), (42, "x"));
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_message() {
    for t in testkit::all().await {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(t.store.raw_pool_for_tests())
        .await
        .expect("pretend a newer release migrated");
        let err = Store::open(&t.url).await.expect_err("must refuse");
        assert!(matches!(err, StoreError::SchemaTooNew { database: 99999, .. }), "{err}");
        assert!(err.to_string().contains("newer than this castellan knows"), "{err}");
    }
}

#[test]
fn urls_pick_the_backend_and_passwords_are_redacted() {
    assert!(castellan_store::Backend::from_url("mysql://x").is_err());
    assert_eq!(castellan_store::redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
    assert_eq!(
        castellan_store::redact("postgres://h/db?sslmode=require&password=secret"),
        "postgres://h/db?sslmode=require&password=***"
    );
}
