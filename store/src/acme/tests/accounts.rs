use super::*;
use crate::StoreError;
use crate::ids::GroupId;
use std::sync::Arc;

#[tokio::test]
async fn an_account_per_key_and_the_second_request_writes_nothing() {
    for t in testkit::all().await {
        let s = &t.store;
        let new = new_account("thumb-1");
        let created = match s.create_account(&new, ACTOR).await.expect("create") {
            AccountCreation::Created(a) => a,
            other => panic!("{:?}: {other:?}", s.backend()),
        };
        assert_eq!(created.status, AccountStatus::Valid);
        assert_eq!(created.contacts, new.contacts);
        assert!(created.terms_agreed);
        assert_eq!((created.group_id, created.eab_key_id.as_deref()), (None, None));
        assert_eq!(s.account(created.id).await.expect("read"), created);
        assert_eq!(s.account_by_thumbprint("thumb-1").await.expect("by key"), Some(created.clone()));
        assert_eq!(s.account_by_thumbprint("thumb-2").await.expect("by key"), None);

        let total = audit_total(s).await;
        let again = s.create_account(&new, ACTOR).await.expect("again");
        assert_eq!(again, AccountCreation::Existing(created.clone()));
        assert_eq!(audit_total(s).await, total, "an existing account writes nothing");
        assert_eq!(audit_subjects(s, "account.create").await, [format!("account:{}", created.id)]);

        let missing = s.account(AccountId(created.id.get() + 1000)).await.expect_err("no such account");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");

        let contacts = vec!["mailto:a@example.com".to_owned(), "mailto:b@example.com".to_owned()];
        let updated = s.update_account_contacts(created.id, &contacts, ACTOR).await.expect("update");
        assert_eq!(updated.contacts, contacts);
        assert_eq!(s.account(created.id).await.expect("read").contacts, contacts);
        assert_eq!(audit_count(s, "account.update").await, 1);
        let nul = s.update_account_contacts(created.id, &["mailto:a\0b".to_owned()], ACTOR).await;
        assert!(matches!(nul, Err(StoreError::Invalid { .. })), "{nul:?}");
        assert_audit_intact(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creators_of_one_key_get_one_account() {
    const RACERS: usize = 8;
    for t in testkit::all().await {
        let store = t.store.clone();
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let (store, barrier) = (store.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.create_account(&new_account("raced-key"), ACTOR).await
                })
            })
            .collect();
        let mut created = 0;
        let mut ids = std::collections::HashSet::new();
        for task in tasks {
            let outcome = task.await.expect("task").expect("create account");
            created += usize::from(matches!(outcome, AccountCreation::Created(_)));
            ids.insert(outcome.record().id);
        }
        assert_eq!(created, 1, "{:?}", store.backend());
        assert_eq!(ids.len(), 1, "{:?}", store.backend());
        assert_eq!(count(&store, "SELECT COUNT(*) FROM accounts").await, 1);
        assert_eq!(audit_count(&store, "account.create").await, 1);
        assert_audit_intact(&store).await;
    }
}

#[tokio::test]
async fn external_account_binding_binds_a_key_id_once() {
    for t in testkit::all().await {
        let s = &t.store;
        let pool = s.raw_pool_for_tests();
        let group: GroupId = sqlx::query_scalar(
            "INSERT INTO account_groups (name, created_at, updated_at) VALUES ('team', 0, 0) RETURNING id",
        )
        .fetch_one(pool)
        .await
        .expect("group");
        sqlx::query(
            "INSERT INTO eab_credentials (key_id, group_id, hmac_key_sealed, created_at) VALUES ('kid-1', $1, $2, 0)",
        )
        .bind(group)
        .bind(vec![1u8; 8])
        .execute(pool)
        .await
        .expect("eab credential");

        let mut new = new_account("eab-key-1");
        new.group_id = Some(group);
        new.eab_key_id = Some("kid-1".into());
        let account = s.create_account(&new, ACTOR).await.expect("create").into_record();
        assert_eq!((account.group_id, account.eab_key_id.as_deref()), (Some(group), Some("kid-1")));
        let used: Option<AccountId> =
            sqlx::query_scalar("SELECT used_by_account FROM eab_credentials WHERE key_id = 'kid-1'")
                .fetch_one(pool)
                .await
                .expect("used");
        assert_eq!(used, Some(account.id));

        let mut second = new_account("eab-key-2");
        second.eab_key_id = Some("kid-1".into());
        let err = s.create_account(&second, ACTOR).await.expect_err("key id used twice");
        assert!(matches!(err, StoreError::Conflict { .. }), "{:?}: {err}", s.backend());
        second.eab_key_id = Some("unknown".into());
        let err = s.create_account(&second, ACTOR).await.expect_err("unknown key id");
        assert!(matches!(err, StoreError::Invalid { .. }), "{:?}: {err}", s.backend());
        assert_eq!(count(s, "SELECT COUNT(*) FROM accounts").await, 1);
        assert_eq!(audit_count(s, "account.create").await, 1);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn key_change_replaces_the_key_once_and_refuses_a_key_in_use() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let b = account(s).await;
        let old = a.jwk_thumbprint.clone();

        let changed = s.change_account_key(a.id, &old, r#"{"kty":"new"}"#, "new-key", ACTOR).await.expect("roll");
        assert_eq!((changed.jwk_thumbprint.as_str(), changed.jwk_json.as_str()), ("new-key", r#"{"kty":"new"}"#));
        assert_eq!(s.account_by_thumbprint(&old).await.expect("old"), None);
        assert_eq!(s.account_by_thumbprint("new-key").await.expect("new").map(|a| a.id), Some(a.id));
        let details: String =
            sqlx::query_scalar("SELECT details_json FROM audit_log WHERE action = 'account.key_change'")
                .fetch_one(s.raw_pool_for_tests())
                .await
                .expect("audit");
        assert!(details.contains(&old) && details.contains("new-key"), "{details}");

        // A second rollover from the old key lost the race: the key is no longer the old one.
        let stale = s.change_account_key(a.id, &old, "{}", "newer-key", ACTOR).await.expect_err("stale");
        assert!(matches!(stale, StoreError::Invalid { .. }), "{stale}");
        // The new key belongs to another account: 409 (RFC 8555 §7.3.5).
        let taken = s.change_account_key(a.id, "new-key", "{}", &b.jwk_thumbprint, ACTOR).await.expect_err("taken");
        assert!(matches!(taken, StoreError::Conflict { .. }), "{:?}: {taken}", s.backend());
        let same = s.change_account_key(a.id, "new-key", "{}", "new-key", ACTOR).await.expect_err("same key");
        assert!(matches!(same, StoreError::Conflict { .. }), "{same}");
        let missing =
            s.change_account_key(AccountId(a.id.get() + 100), "x", "{}", "y", ACTOR).await.expect_err("no account");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        assert_eq!(s.account(b.id).await.expect("b"), b, "the other account is untouched");

        s.deactivate_account(a.id, ACTOR).await.expect("deactivate");
        let gone = s.change_account_key(a.id, "new-key", "{}", "newest", ACTOR).await.expect_err("deactivated");
        assert!(matches!(gone, StoreError::Invalid { .. }), "{gone}");
        assert_eq!(audit_count(s, "account.key_change").await, 1);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn deactivating_an_account_cancels_what_it_started() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let other = account(s).await;
        let pending = order(s, a.id, &["pending.example.com"]).await;
        let ready = ready_order(s, a.id).await;
        let processing = ready_order(s, a.id).await;
        let cert = reserve(s, a.id).await;
        assert!(s.begin_finalize(processing.id, b"csr", cert, ACTOR).await.expect("finalize"));
        let untouched = order(s, other.id, &["other.example.com"]).await;

        let deactivated = s.deactivate_account(a.id, ACTOR).await.expect("deactivate");
        assert_eq!(deactivated.status, AccountStatus::Deactivated);
        assert_eq!(s.account(a.id).await.expect("read").status, AccountStatus::Deactivated);
        for id in [pending.id, ready.id] {
            let o = s.order(id).await.expect("order");
            assert_eq!(o.status, OrderStatus::Invalid, "{:?}: order {id}", s.backend());
            assert_eq!(o.error.as_ref().and_then(|e| e["type"].as_str()), Some(UNAUTHORIZED));
            for authz in s.order_authorizations(id).await.expect("authzs") {
                assert_eq!(authz.status, AuthorizationStatus::Deactivated);
            }
        }
        assert_eq!(s.order(processing.id).await.expect("order").status, OrderStatus::Processing);
        assert_eq!(s.order(untouched.id).await.expect("order").status, OrderStatus::Pending);
        assert_eq!(
            s.authorization(untouched.authorization_ids[0]).await.expect("authz").status,
            AuthorizationStatus::Pending
        );

        for err in [
            s.deactivate_account(a.id, ACTOR).await.expect_err("twice"),
            s.update_account_contacts(a.id, &[], ACTOR).await.expect_err("update deactivated"),
            s.create_order(
                &new_order(s, a.id, &["x.example.com"], vec![AuthorizationPlan::Create(new_authz(s, "x.example.com"))]),
                ACTOR,
            )
            .await
            .expect_err("order for a deactivated account"),
        ] {
            assert!(matches!(err, StoreError::Invalid { .. }), "{:?}: {err}", s.backend());
        }
        let missing = s.deactivate_account(AccountId(a.id.get() + 100), ACTOR).await.expect_err("missing");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        assert_eq!(audit_subjects(s, "account.deactivate").await, [format!("account:{}", a.id)]);
        assert_audit_intact(s).await;
    }
}
