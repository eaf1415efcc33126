//! Groups, EAB credentials, settings and admin tokens on both backends (`testkit::all()`): each change, its
//! refusals, its audit entry, and the races between replicas that matter.

use super::*;
use crate::acme::{AccountCreation, AccountRecord, NewAccount};
use crate::ids::{AccountId, GroupId, TokenId};
use crate::testkit;
use crate::{Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

const ACTOR: &str = "admin-test";
const POLICY: &str = r#"{"dns":{"allow":[".corp.example"]},"max_lifetime_secs":2592000}"#;

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

async fn account(store: &Store, group_id: Option<GroupId>, eab_key_id: Option<&str>) -> AccountRecord {
    let thumbprint = random_hex(16);
    let new = NewAccount {
        jwk_json: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{thumbprint}"}}"#),
        jwk_thumbprint: thumbprint,
        contacts: vec![],
        terms_agreed: true,
        group_id,
        eab_key_id: eab_key_id.map(str::to_owned),
    };
    match store.create_account(&new, ACTOR).await.expect("create account") {
        AccountCreation::Created(a) => a,
        AccountCreation::Existing(a) => panic!("a fresh key found account {}", a.id),
    }
}

/// The newest audit entry with this action: (actor, subject, details).
async fn last_audit(store: &Store, action: &str) -> (String, String, Value) {
    let (actor, subject, details): (String, String, String) = sqlx::query_as(
        "SELECT actor, subject, details_json FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(action)
    .fetch_one(store.raw_pool_for_tests())
    .await
    .unwrap_or_else(|e| panic!("no {action} audit entry: {e}"));
    (actor, subject, serde_json::from_str(&details).expect("details are JSON"))
}

async fn audit_count(store: &Store, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(store.raw_pool_for_tests())
        .await
        .expect("count audit entries")
}

async fn audit_total(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(store.raw_pool_for_tests()).await.expect("count")
}

async fn assert_audit_intact(store: &Store) {
    let verification = store.audit_verify().await.expect("verify");
    assert!(verification.is_intact(), "{:?}: {:?}", store.backend(), verification.first_broken);
}

fn invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Invalid { why, .. }) => why,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::NotFound { .. })), "expected NotFound, got {result:?}");
}

#[tokio::test]
async fn groups_are_created_read_listed_and_their_policy_replaced() {
    for t in testkit::all().await {
        let s = &t.store;
        let team = s.create_group("team-b", POLICY, ACTOR).await.expect("create");
        assert_eq!((team.name.as_str(), team.policy_json.as_str()), ("team-b", POLICY));
        assert_eq!(team.created_at, team.updated_at);
        assert_eq!(s.group(team.id).await.expect("by id"), team);
        assert_eq!(s.group_by_name("team-b").await.expect("by name"), Some(team.clone()));
        assert_eq!(s.group_by_name("team-c").await.expect("by name"), None);
        assert_eq!(s.group_by_name("Not A Name").await.expect("by name"), None);
        not_found(s.group(GroupId(team.id.get() + 100)).await);

        let (actor, subject, details) = last_audit(s, "group.create").await;
        assert_eq!((actor.as_str(), subject.as_str()), (ACTOR, "group:team-b"));
        assert_eq!(details, json!({ "id": team.id, "policy": serde_json::from_str::<Value>(POLICY).unwrap() }));

        let first = s.create_group("0-first", "{}", ACTOR).await.expect("create");
        let names: Vec<String> = s.groups().await.expect("list").into_iter().map(|g| g.name).collect();
        assert_eq!(names, ["0-first", "team-b"]);

        let taken = s.create_group("team-b", "{}", ACTOR).await;
        assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
        let longest = "a".repeat(MAX_GROUP_NAME_LEN);
        s.create_group(&longest, "{}", ACTOR).await.expect("63 characters");
        for bad in ["", "-lead", "Upper", "a_b", "a.b", "a b", "é", &"a".repeat(MAX_GROUP_NAME_LEN + 1)] {
            invalid(s.create_group(bad, "{}", ACTOR).await);
        }
        for bad in ["", "[]", "\"x\"", "{", "{\"a\":\"\0\"}", "{\"a\":1}\0"] {
            invalid(s.create_group("fine", bad, ACTOR).await);
        }
        assert_eq!(audit_count(s, "group.create").await, 3);

        let new_policy = r#"{"dns":{"allow":["."]}}"#;
        let updated = s.set_group_policy("team-b", new_policy, ACTOR).await.expect("set policy");
        assert_eq!((updated.id, updated.policy_json.as_str()), (team.id, new_policy));
        assert!(updated.updated_at >= team.updated_at);
        assert_eq!(s.group(team.id).await.expect("read"), updated);
        let (_, subject, details) = last_audit(s, "group.policy").await;
        assert_eq!(subject, "group:team-b");
        assert_eq!(details["old_policy"], serde_json::from_str::<Value>(POLICY).unwrap());
        assert_eq!(details["new_policy"], json!({ "dns": { "allow": ["."] } }));
        not_found(s.set_group_policy("nobody", "{}", ACTOR).await);
        invalid(s.set_group_policy("team-b", "[]", ACTOR).await);
        assert_eq!(s.group(first.id).await.expect("untouched"), first);
        assert_eq!(audit_count(s, "group.policy").await, 1);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn accounts_move_between_groups_and_list_by_group_in_pages() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = s.create_group("a", "{}", ACTOR).await.expect("group");
        let b = s.create_group("b", "{}", ACTOR).await.expect("group");
        let mut in_a = Vec::new();
        for _ in 0..5 {
            in_a.push(account(s, Some(a.id), None).await.id);
        }
        let loner = account(s, None, None).await;

        let page1 = s.accounts(Some("a"), None, 2).await.expect("page");
        let page2 = s.accounts(Some("a"), page1.last().map(|a| a.id), 2).await.expect("page");
        let page3 = s.accounts(Some("a"), page2.last().map(|a| a.id), 2).await.expect("page");
        let ids: Vec<AccountId> = page1.iter().chain(&page2).chain(&page3).map(|a| a.id).collect();
        assert_eq!(ids, in_a);
        assert_eq!(page3.len(), 1);
        assert_eq!(page1[0], s.account(in_a[0]).await.expect("account"), "same record as the ACME reads");
        assert_eq!(s.accounts(None, None, 100).await.expect("all").len(), 6);
        assert_eq!(s.accounts(None, Some(AccountId(loner.id.get() - 1)), 100).await.expect("tail").len(), 1);
        assert!(s.accounts(Some("b"), None, 100).await.expect("none").is_empty());
        assert!(s.accounts(None, None, 0).await.expect("limit 0").is_empty());
        not_found(s.accounts(Some("c"), None, 10).await);
        invalid(s.accounts(None, None, -1).await);

        s.set_account_group(in_a[0], Some("b"), ACTOR).await.expect("move");
        assert_eq!(s.account(in_a[0]).await.expect("account").group_id, Some(b.id));
        let (_, subject, details) = last_audit(s, "account.group").await;
        assert_eq!(subject, format!("account:{}", in_a[0]));
        assert_eq!(
            details,
            json!({
                "old_group": "a", "old_group_id": a.id, "new_group": "b", "new_group_id": b.id, "eab_key_id": null,
            })
        );
        s.set_account_group(loner.id, Some("a"), ACTOR).await.expect("join");
        s.set_account_group(in_a[1], None, ACTOR).await.expect("leave");
        assert_eq!(s.account(in_a[1]).await.expect("account").group_id, None);
        let (_, _, details) = last_audit(s, "account.group").await;
        assert_eq!((&details["old_group"], &details["new_group"]), (&json!("a"), &Value::Null));
        let ids: Vec<AccountId> = s.accounts(Some("a"), None, 100).await.expect("list").iter().map(|a| a.id).collect();
        assert_eq!(ids, [in_a[2], in_a[3], in_a[4], loner.id]);

        not_found(s.set_account_group(AccountId(loner.id.get() + 100), Some("a"), ACTOR).await);
        not_found(s.set_account_group(loner.id, Some("zzz"), ACTOR).await);
        invalid(s.set_account_group(loner.id, Some("Bad Name"), ACTOR).await);
        assert_eq!(s.account(loner.id).await.expect("account").group_id, Some(a.id), "refusals change nothing");
        assert_eq!(audit_count(s, "account.group").await, 3);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn eab_credentials_are_stored_sealed_listed_used_once_and_deleted_only_unused() {
    for t in testkit::all().await {
        let s = &t.store;
        let team = s.create_group("team", "{}", ACTOR).await.expect("group");
        s.create_group("other", "{}", ACTOR).await.expect("group");
        let sealed = b"CSL1 sealed key material".to_vec();
        let kid1 = s.create_eab("kid-1", "team", &sealed, ACTOR).await.expect("create");
        assert_eq!(
            kid1,
            EabRecord {
                key_id: "kid-1".into(),
                group_id: team.id,
                group_name: "team".into(),
                hmac_key_sealed: sealed.clone(),
                created_at: kid1.created_at,
                used_at: None,
                used_by_account: None,
            }
        );
        assert_eq!(s.eab("kid-1").await.expect("read"), Some(kid1.clone()));
        assert_eq!(s.eab("kid-2").await.expect("read"), None);
        assert_eq!(s.eab("bad key id").await.expect("read"), None);
        let (actor, subject, details) = last_audit(s, "eab.create").await;
        assert_eq!((actor.as_str(), subject.as_str()), (ACTOR, "eab:kid-1"));
        assert_eq!(details, json!({ "group": "team", "group_id": team.id }), "never the key");

        s.create_eab("kid-2", "team", b"x", ACTOR).await.expect("create");
        s.create_eab("o.1_~", "other", b"y", ACTOR).await.expect("create");
        let keys = |list: Vec<EabRecord>| list.into_iter().map(|e| e.key_id).collect::<Vec<_>>();
        assert_eq!(keys(s.eabs(Some("team")).await.expect("list")), ["kid-1", "kid-2"]);
        assert_eq!(keys(s.eabs(Some("other")).await.expect("list")), ["o.1_~"]);
        assert_eq!(s.eabs(None).await.expect("list").len(), 3);
        not_found(s.eabs(Some("missing")).await);

        let taken = s.create_eab("kid-1", "other", b"z", ACTOR).await;
        assert!(matches!(taken, Err(StoreError::Conflict { .. })), "{taken:?}");
        not_found(s.create_eab("kid-9", "missing", b"z", ACTOR).await);
        let too_long = "k".repeat(MAX_EAB_KEY_ID_LEN + 1);
        for bad in ["", "a b", "a/b", "kid\0", "ké", too_long.as_str()] {
            invalid(s.create_eab(bad, "team", b"z", ACTOR).await);
        }
        invalid(s.create_eab("kid-9", "team", b"", ACTOR).await);
        assert_eq!(audit_count(s, "eab.create").await, 3);

        // Account creation binds the credential (acme's create_account marks it used).
        let bound = account(s, Some(team.id), Some("kid-1")).await;
        let used = s.eab("kid-1").await.expect("read").expect("still stored");
        assert_eq!(used.used_by_account, Some(bound.id));
        assert!(used.used_at.is_some());
        let why = invalid(s.delete_eab("kid-1", ACTOR).await);
        assert!(why.contains(&format!("account {}", bound.id)), "{why}");

        s.delete_eab("kid-2", ACTOR).await.expect("delete unused");
        assert_eq!(s.eab("kid-2").await.expect("read"), None);
        let (_, subject, details) = last_audit(s, "eab.delete").await;
        assert_eq!(subject, "eab:kid-2");
        assert_eq!(details, json!({ "group": "team", "group_id": team.id }));
        not_found(s.delete_eab("kid-2", ACTOR).await);
        not_found(s.delete_eab("no such id", ACTOR).await);
        assert_eq!(audit_count(s, "eab.delete").await, 1);
        assert_audit_intact(s).await;
    }
}

/// An admin deleting a credential while a client creates its account with it: exactly one of them wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_credential_races_its_use_and_one_wins() {
    for t in testkit::all().await {
        let s = t.store.clone();
        let team = s.create_group("team", "{}", ACTOR).await.expect("group");
        for round in 0..6 {
            let kid = format!("race-{round}");
            s.create_eab(&kid, "team", b"sealed", ACTOR).await.expect("create");
            let thumbprint = random_hex(16);
            let new = NewAccount {
                jwk_json: format!(r#"{{"x":"{thumbprint}"}}"#),
                jwk_thumbprint: thumbprint,
                contacts: vec![],
                terms_agreed: true,
                group_id: Some(team.id),
                eab_key_id: Some(kid.clone()),
            };
            let (creator, deleter) = (s.clone(), s.clone());
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let b1 = Arc::clone(&barrier);
            let create = tokio::spawn(async move {
                b1.wait().await;
                creator.create_account(&new, ACTOR).await
            });
            let kid2 = kid.clone();
            let delete = tokio::spawn(async move {
                barrier.wait().await;
                deleter.delete_eab(&kid2, ACTOR).await
            });
            let (created, deleted) = (create.await.expect("task"), delete.await.expect("task"));
            match (&created, &deleted) {
                (Ok(AccountCreation::Created(a)), Err(StoreError::Invalid { .. })) => {
                    let eab = s.eab(&kid).await.expect("read").expect("kept");
                    assert_eq!(eab.used_by_account, Some(a.id));
                }
                (Err(StoreError::Invalid { .. }), Ok(())) => assert_eq!(s.eab(&kid).await.expect("read"), None),
                other => panic!("{:?} round {round}: {other:?}", s.backend()),
            }
        }
        assert_audit_intact(&s).await;
    }
}

#[tokio::test]
async fn a_group_is_deleted_only_when_nothing_names_it() {
    for t in testkit::all().await {
        let s = &t.store;
        let doomed = s.create_group("doomed", POLICY, ACTOR).await.expect("group");
        s.create_group("refuge", "{}", ACTOR).await.expect("group");
        s.create_eab("spare", "doomed", b"sealed", ACTOR).await.expect("eab");
        s.create_eab("bound", "doomed", b"sealed", ACTOR).await.expect("eab");
        let plain = account(s, Some(doomed.id), None).await;
        let bound = account(s, Some(doomed.id), Some("bound")).await;

        let why = invalid(s.delete_group("doomed", ACTOR).await);
        assert!(why.contains("2 account(s)") && why.contains("\"spare\""), "{why}");
        assert!(s.group_by_name("doomed").await.expect("read").is_some());

        s.set_account_group(plain.id, Some("refuge"), ACTOR).await.expect("move");
        s.delete_eab("spare", ACTOR).await.expect("delete");
        // The bound account leaves every group: its used credential still names this one.
        s.set_account_group(bound.id, None, ACTOR).await.expect("leave");
        assert_eq!(s.eab("bound").await.expect("read").expect("kept").group_name, "doomed");
        let why = invalid(s.delete_group("doomed", ACTOR).await);
        assert!(why.contains("\"bound\"") && why.contains(&format!("account {}", bound.id)), "{why}");
        assert!(!why.contains("account(s) still belong"), "{why}");

        // Moving it into a group takes the credential along, and frees the group.
        s.set_account_group(bound.id, Some("refuge"), ACTOR).await.expect("move");
        let moved = s.eab("bound").await.expect("read").expect("kept");
        assert_eq!((moved.group_name.as_str(), moved.used_by_account), ("refuge", Some(bound.id)));
        let (_, _, details) = last_audit(s, "account.group").await;
        assert_eq!(details["eab_key_id"], "bound");

        let total = audit_total(s).await;
        s.delete_group("doomed", ACTOR).await.expect("delete");
        assert_eq!(audit_total(s).await, total + 1);
        assert_eq!(s.group_by_name("doomed").await.expect("read"), None);
        not_found(s.group(doomed.id).await);
        let (_, subject, details) = last_audit(s, "group.delete").await;
        assert_eq!(subject, "group:doomed");
        assert_eq!(details, json!({ "id": doomed.id, "policy": serde_json::from_str::<Value>(POLICY).unwrap() }));
        not_found(s.delete_group("doomed", ACTOR).await);
        invalid(s.delete_group("Bad", ACTOR).await);
        assert_eq!(audit_count(s, "group.delete").await, 1);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn settings_are_set_read_and_audited_with_their_old_value() {
    for t in testkit::all().await {
        let s = &t.store;
        assert_eq!(s.setting(GLOBAL_DENY).await.expect("read"), None);
        s.set_setting(GLOBAL_DENY, r#"{"dns":[".bad.example"]}"#, ACTOR).await.expect("set");
        let (value, at) = s.setting(GLOBAL_DENY).await.expect("read").expect("set");
        assert_eq!(value, r#"{"dns":[".bad.example"]}"#);
        assert!(at > 0);
        let (actor, subject, details) = last_audit(s, "setting.set").await;
        assert_eq!((actor.as_str(), subject.as_str()), (ACTOR, "setting:policy.global_deny"));
        assert_eq!(details, json!({ "old": null, "new": r#"{"dns":[".bad.example"]}"# }));

        s.set_setting(GLOBAL_DENY, "{}", ACTOR).await.expect("replace");
        assert_eq!(s.setting(GLOBAL_DENY).await.expect("read").map(|v| v.0).as_deref(), Some("{}"));
        let (_, _, details) = last_audit(s, "setting.set").await;
        assert_eq!(details, json!({ "old": r#"{"dns":[".bad.example"]}"#, "new": "{}" }));

        s.set_setting("a-first.key_1", "", ACTOR).await.expect("empty value");
        let keys: Vec<String> = s.settings().await.expect("list").into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(keys, ["a-first.key_1", GLOBAL_DENY]);
        let too_long = "k".repeat(MAX_SETTING_KEY_LEN + 1);
        for bad in ["", ".x", "Upper", "a b", "a/b", too_long.as_str()] {
            invalid(s.set_setting(bad, "v", ACTOR).await);
            invalid(s.setting(bad).await);
        }
        invalid(s.set_setting("k", "a\0b", ACTOR).await);
        assert_eq!(audit_count(s, "setting.set").await, 3);
        assert_audit_intact(s).await;
    }
}

/// Replicas setting one new key at once: every change is recorded with the value it really replaced, so the
/// audit entries form one chain of old → new, starting from null.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_settings_each_record_what_they_replaced() {
    const WRITERS: usize = 8;
    for t in testkit::all().await {
        let other = Store::open(&t.url).await.expect("second replica");
        let replicas = [t.store.clone(), other.clone()];
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (store, barrier) = (replicas[i % 2].clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.set_setting("raced", &format!("v{i}"), ACTOR).await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("set");
        }
        let details: Vec<String> =
            sqlx::query_scalar("SELECT details_json FROM audit_log WHERE action = 'setting.set' ORDER BY seq")
                .fetch_all(t.store.raw_pool_for_tests())
                .await
                .expect("entries");
        assert_eq!(details.len(), WRITERS);
        let mut previous = Value::Null;
        for d in &details {
            let d: Value = serde_json::from_str(d).expect("JSON");
            assert_eq!(d["old"], previous, "{:?}: {details:?}", t.store.backend());
            previous = d["new"].clone();
        }
        let stored = t.store.setting("raced").await.expect("read").expect("set").0;
        assert_eq!(Value::String(stored), previous);
        assert_audit_intact(&t.store).await;
        other.close().await;
    }
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_and_are_stored_only_hashed() {
    for t in testkit::all().await {
        let s = &t.store;
        assert_eq!(s.token_count().await.expect("count"), 0);
        let (token, plaintext) = s.create_token("ci deploy", TokenScope::Admin, ACTOR).await.expect("create");
        assert!(plaintext.starts_with(TOKEN_PREFIX) && plaintext.len() == 47, "{plaintext}");
        assert_eq!((token.name.as_str(), token.scope), ("ci deploy", TokenScope::Admin));
        assert_eq!((token.last_used_at, token.revoked_at), (None, None));
        let (actor, subject, details) = last_audit(s, "token.create").await;
        assert_eq!((actor.as_str(), subject), (ACTOR, format!("token:{}", token.id)));
        assert_eq!(details, json!({ "name": "ci deploy", "scope": "admin", "bootstrap": false }));
        let secret = &plaintext[TOKEN_PREFIX.len()..];
        let leaks: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE details_json LIKE $1 OR subject LIKE $1 OR actor LIKE $1",
        )
        .bind(format!("%{secret}%"))
        .fetch_one(s.raw_pool_for_tests())
        .await
        .expect("search");
        assert_eq!(leaks, 0, "the token text is in the audit log");
        let stored: Vec<u8> = sqlx::query_scalar("SELECT token_sha256 FROM api_tokens WHERE id = $1")
            .bind(token.id)
            .fetch_one(s.raw_pool_for_tests())
            .await
            .expect("stored hash");
        assert_eq!(stored, <sha2::Sha256 as sha2::Digest>::digest(plaintext.as_bytes()).to_vec());

        // The first use records the time; uses within the minute write nothing.
        let seen = s.authenticate_token(&plaintext).await.expect("authenticate").expect("valid");
        let first_use = seen.last_used_at.expect("recorded");
        assert_eq!(seen, TokenRecord { last_used_at: Some(first_use), ..token.clone() });
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(first_use - 30)
            .bind(token.id)
            .execute(s.raw_pool_for_tests())
            .await
            .expect("age the use");
        let again = s.authenticate_token(&plaintext).await.expect("authenticate").expect("valid");
        assert_eq!(again.last_used_at, Some(first_use - 30), "written at most once a minute");
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(first_use - 61)
            .bind(token.id)
            .execute(s.raw_pool_for_tests())
            .await
            .expect("age the use");
        let later = s.authenticate_token(&plaintext).await.expect("authenticate").expect("valid");
        assert!(later.last_used_at.expect("recorded") >= first_use);

        let (reader, reader_text) = s.create_token("dashboard", TokenScope::Read, ACTOR).await.expect("create");
        assert_eq!(s.authenticate_token(&reader_text).await.expect("auth").map(|t| t.scope), Some(TokenScope::Read));
        assert_eq!(s.token_count().await.expect("count"), 2);
        let mut forged = plaintext.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ASCII");
        for bad in [forged.as_str(), "", "cst_", &plaintext[..46], &format!("{plaintext}x"), "Bearer x"] {
            assert_eq!(s.authenticate_token(bad).await.expect("authenticate"), None, "{bad:?}");
        }

        let revoked = s.revoke_token(token.id, ACTOR).await.expect("revoke");
        assert!(revoked.revoked_at.is_some());
        assert_eq!(s.authenticate_token(&plaintext).await.expect("authenticate"), None);
        let (_, subject, details) = last_audit(s, "token.revoke").await;
        assert_eq!(subject, format!("token:{}", token.id));
        assert_eq!(details, json!({ "name": "ci deploy", "scope": "admin" }));
        invalid(s.revoke_token(token.id, ACTOR).await);
        not_found(s.revoke_token(TokenId(reader.id.get() + 100), ACTOR).await);
        assert_eq!(s.token_count().await.expect("count"), 1, "revoked tokens do not count");
        let listed = s.tokens().await.expect("list");
        assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), [token.id, reader.id]);
        assert_eq!(listed[0].revoked_at, revoked.revoked_at);

        for bad in ["", "a\nb", "nul\0", &"n".repeat(129)] {
            invalid(s.create_token(bad, TokenScope::Read, ACTOR).await);
        }
        assert_eq!(audit_count(s, "token.create").await, 2);
        assert_eq!(audit_count(s, "token.revoke").await, 1);
        assert_audit_intact(s).await;
    }
}

/// Replicas starting together each try to bootstrap a first token: one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_creates_one_token_between_racing_replicas() {
    const RACERS: usize = 8;
    for t in testkit::all().await {
        let other = Store::open(&t.url).await.expect("second replica");
        let replicas = [t.store.clone(), other.clone()];
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                let (store, barrier) = (replicas[i % 2].clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.bootstrap_token("bootstrap", TokenScope::Admin, ACTOR).await
                })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            created.extend(task.await.expect("task").expect("bootstrap"));
        }
        assert_eq!(created.len(), 1, "{:?}", t.store.backend());
        let (token, plaintext) = created.remove(0);
        assert_eq!(t.store.authenticate_token(&plaintext).await.expect("auth").map(|t| t.id), Some(token.id));
        assert_eq!(t.store.token_count().await.expect("count"), 1);
        let (_, _, details) = last_audit(&t.store, "token.create").await;
        assert_eq!(details["bootstrap"], true);

        // With every token revoked, bootstrapping works again.
        t.store.revoke_token(token.id, ACTOR).await.expect("revoke");
        let again = t.store.bootstrap_token("bootstrap-2", TokenScope::Admin, ACTOR).await.expect("bootstrap");
        assert!(again.is_some());
        assert!(t.store.bootstrap_token("bootstrap-3", TokenScope::Admin, ACTOR).await.expect("bootstrap").is_none());
        assert_eq!(audit_count(&t.store, "token.create").await, 2);
        assert_audit_intact(&t.store).await;
        other.close().await;
    }
}
