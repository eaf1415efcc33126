use super::*;
use crate::StoreError;
use crate::ids::{AuthorizationId, OrderId};

#[tokio::test]
async fn an_order_creates_and_reuses_authorizations_in_the_listed_order() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let first = order(s, a.id, &["a.example.com", "b.example.com"]).await;
        assert_eq!(first.status, OrderStatus::Pending);
        assert_eq!(first.identifiers, [dns("a.example.com"), dns("b.example.com")]);
        assert_eq!(first.authorization_ids.len(), 2);
        assert_eq!(s.order(first.id).await.expect("read"), first);
        let authzs = s.order_authorizations(first.id).await.expect("authzs");
        assert_eq!(authzs.iter().map(|z| z.id).collect::<Vec<_>>(), first.authorization_ids);
        assert_eq!(authzs[0].identifier, dns("a.example.com"));
        for authz in &authzs {
            assert_eq!((authz.status, authz.account_id, authz.wildcard), (AuthorizationStatus::Pending, a.id, false));
            let kinds: Vec<_> = authz.challenges.iter().map(|c| c.kind).collect();
            assert_eq!(kinds, [ChallengeType::Http01, ChallengeType::Dns01]);
            assert!(authz.challenges.windows(2).all(|w| w[0].id < w[1].id), "challenges by id");
            assert!(authz.challenges.iter().all(|c| c.status == ChallengeStatus::Pending && c.error.is_none()));
            assert_eq!(s.authorization(authz.id).await.expect("authz"), *authz);
            assert_eq!(s.challenge(authz.challenges[0].id).await.expect("challenge"), authz.challenges[0]);
        }
        let reused_a = first.authorization_ids[0];
        validate(s, reused_a).await;

        // Listed new-then-reused: the new authorization has the higher id but comes first, as listed.
        let mut plans =
            vec![AuthorizationPlan::Create(new_authz(s, "c.example.com")), AuthorizationPlan::Reuse(reused_a)];
        let mut new = new_order(s, a.id, &["c.example.com", "a.example.com"], plans.clone());
        new.profile = Some("tls-server".into());
        new.not_before = Some(1);
        new.not_after = Some(2);
        let second = s.create_order(&new, ACTOR).await.expect("second order");
        assert_eq!(second.status, OrderStatus::Pending, "one authorization is new");
        assert_eq!(second.authorization_ids[1], reused_a);
        assert!(second.authorization_ids[0] > reused_a);
        assert_eq!(
            (second.profile.as_deref(), second.not_before, second.not_after),
            (Some("tls-server"), Some(1), Some(2))
        );
        let listed: Vec<AuthorizationId> =
            s.order_authorizations(second.id).await.expect("authzs").iter().map(|z| z.id).collect();
        assert_eq!(listed, second.authorization_ids);

        // Every authorization reused and valid: ready at once.
        validate(s, first.authorization_ids[1]).await;
        plans = vec![AuthorizationPlan::Reuse(first.authorization_ids[1]), AuthorizationPlan::Reuse(reused_a)];
        let third = s
            .create_order(&new_order(s, a.id, &["b.example.com", "a.example.com"], plans), ACTOR)
            .await
            .expect("third");
        assert_eq!(third.status, OrderStatus::Ready);
        assert_eq!(third.authorization_ids, [first.authorization_ids[1], reused_a]);

        assert_eq!(s.account_orders(a.id, None, 10).await.expect("list"), [first.id, second.id, third.id]);
        assert_eq!(s.account_orders(a.id, Some(first.id), 1).await.expect("page"), [second.id]);
        assert!(s.account_orders(AccountId(a.id.get() + 100), None, 10).await.expect("none").is_empty());
        assert!(matches!(s.account_orders(a.id, None, -1).await, Err(StoreError::Invalid { .. })));
        let missing = s.order(OrderId(third.id.get() + 100)).await.expect_err("no order");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        let missing = s.order_authorizations(OrderId(third.id.get() + 100)).await.expect_err("no order");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");

        let subjects = audit_subjects(s, "order.create").await;
        assert_eq!(subjects, [first.id, second.id, third.id].map(|id| format!("order:{id}")));
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn an_authorization_is_reused_only_by_its_account_while_live() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let b = account(s).await;
        let existing = order(s, a.id, &["a.example.com", "b.example.com", "c.example.com"]).await;
        let [live, deactivated, expired] = [0, 1, 2].map(|i| existing.authorization_ids[i]);
        s.deactivate_authorization(deactivated, ACTOR).await.expect("deactivate");
        sqlx::query("UPDATE authorizations SET expires_at = $1 WHERE id = $2")
            .bind(s.now() - 1)
            .bind(expired)
            .execute(s.raw_pool_for_tests())
            .await
            .expect("expire");

        let orders_before = count(s, "SELECT COUNT(*) FROM orders").await;
        let authzs_before = count(s, "SELECT COUNT(*) FROM authorizations").await;
        let audit_before = audit_total(s).await;
        let plans_for = |account_id: AccountId, reuse: AuthorizationId| {
            new_order(
                s,
                account_id,
                &["new.example.com", "x"],
                vec![AuthorizationPlan::Create(new_authz(s, "new.example.com")), AuthorizationPlan::Reuse(reuse)],
            )
        };
        for (new, why) in [
            (plans_for(b.id, live), "another account's authorization"),
            (plans_for(a.id, deactivated), "a deactivated authorization"),
            (plans_for(a.id, expired), "an expired authorization"),
            (plans_for(a.id, AuthorizationId(live.get() + 1000)), "no such authorization"),
            (
                new_order(s, a.id, &["x"], vec![AuthorizationPlan::Reuse(live), AuthorizationPlan::Reuse(live)]),
                "the same authorization twice",
            ),
            (new_order(s, a.id, &["x"], vec![]), "no authorizations"),
            (new_order(s, a.id, &[], vec![AuthorizationPlan::Reuse(live)]), "no identifiers"),
            (
                new_order(
                    s,
                    a.id,
                    &["x"],
                    vec![AuthorizationPlan::Create(NewAuthorization { challenges: vec![], ..new_authz(s, "x") })],
                ),
                "no challenges",
            ),
        ] {
            let err = s.create_order(&new, ACTOR).await.expect_err(why);
            assert!(matches!(err, StoreError::Invalid { .. }), "{:?}, {why}: {err}", s.backend());
        }
        let missing =
            s.create_order(&plans_for(AccountId(b.id.get() + 100), live), ACTOR).await.expect_err("no account");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        // Refused orders leave nothing behind: no order, no half-created authorization, no audit entry.
        assert_eq!(count(s, "SELECT COUNT(*) FROM orders").await, orders_before);
        assert_eq!(count(s, "SELECT COUNT(*) FROM authorizations").await, authzs_before);
        assert_eq!(audit_total(s).await, audit_before);

        let ok = s.create_order(&plans_for(a.id, live), ACTOR).await.expect("reuse live");
        assert_eq!(ok.authorization_ids[1], live);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn the_reusable_authorization_is_valid_first_then_longest_lived() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let now = s.now();
        let name = dns("reuse.example.com");
        assert_eq!(s.find_reusable_authorization(a.id, &name, false, now).await.expect("none"), None);

        let mut short = new_authz(s, "reuse.example.com");
        short.expires_at = now + DAY;
        let mut long = new_authz(s, "reuse.example.com");
        long.expires_at = now + 5 * DAY;
        let mut wildcard = new_authz(s, "reuse.example.com");
        wildcard.wildcard = true;
        wildcard.expires_at = now + 9 * DAY;
        let plans = [short, long, wildcard].map(AuthorizationPlan::Create).to_vec();
        let o = s
            .create_order(&new_order(s, a.id, &["reuse.example.com", "*.reuse.example.com"], plans), ACTOR)
            .await
            .expect("order");
        let [short_id, long_id, wildcard_id] = [0, 1, 2].map(|i| o.authorization_ids[i]);

        let found = |wildcard: bool, not_before: i64| {
            let name = name.clone();
            async move {
                s.find_reusable_authorization(a.id, &name, wildcard, not_before).await.expect("find").map(|z| z.id)
            }
        };
        assert_eq!(found(false, now).await, Some(long_id), "pending: the longest-lived");
        assert_eq!(found(true, now).await, Some(wildcard_id), "the wildcard flag must match");
        assert_eq!(found(false, now + 6 * DAY).await, None, "expires too soon");
        let b = account(s).await;
        assert_eq!(s.find_reusable_authorization(b.id, &name, false, now).await.expect("other account"), None);

        let validated = validate(s, short_id).await;
        assert_eq!(validated.status, AuthorizationStatus::Valid);
        assert_eq!(found(false, now).await, Some(short_id), "a valid one before a pending one");
        let full = s.find_reusable_authorization(a.id, &name, false, now).await.expect("find").expect("some");
        assert_eq!(full, s.authorization(short_id).await.expect("authz"), "with its challenges");
        s.deactivate_authorization(short_id, ACTOR).await.expect("deactivate");
        assert_eq!(found(false, now).await, Some(long_id));
    }
}

#[tokio::test]
async fn one_live_order_replaces_a_certificate() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let replacing = |name: &str| {
            let mut new = new_order(s, a.id, &[name], vec![AuthorizationPlan::Create(new_authz(s, name))]);
            new.replaces = Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into());
            new
        };
        let first = s.create_order(&replacing("a.example.com"), ACTOR).await.expect("first");
        assert_eq!(first.replaces.as_deref(), Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
        let audit_before = audit_total(s).await;
        let err = s.create_order(&replacing("b.example.com"), ACTOR).await.expect_err("second replacement");
        match &err {
            StoreError::Conflict { what } => assert!(what.contains("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"), "{what}"),
            other => panic!("{:?}: {other}", s.backend()),
        }
        assert_eq!(audit_total(s).await, audit_before);

        // Once the first is invalid, another order may replace the certificate.
        let error = json!({ "type": "urn:ietf:params:acme:error:malformed", "detail": "order expired" });
        let invalid = s.invalidate_order(first.id, &error, ACTOR).await.expect("invalidate");
        assert_eq!((invalid.status, invalid.error.as_ref()), (OrderStatus::Invalid, Some(&error)));
        s.create_order(&replacing("b.example.com"), ACTOR).await.expect("replacement after invalidation");
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn invalidating_an_order_only_from_pending_or_ready() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let error = json!({ "type": "urn:ietf:params:acme:error:unauthorized", "detail": "authorization expired" });
        let pending = order(s, a.id, &["p.example.com"]).await;
        let ready = ready_order(s, a.id).await;
        for id in [pending.id, ready.id] {
            let o = s.invalidate_order(id, &error, ACTOR).await.expect("invalidate");
            assert_eq!(o.status, OrderStatus::Invalid);
            assert_eq!(s.order(id).await.expect("read"), o);
        }
        let again = s.invalidate_order(pending.id, &error, ACTOR).await.expect_err("twice");
        assert!(matches!(again, StoreError::Invalid { .. }), "{again}");
        let missing = s.invalidate_order(OrderId(ready.id.get() + 100), &error, ACTOR).await.expect_err("missing");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        assert_eq!(audit_subjects(s, "order.invalid").await, [pending.id, ready.id].map(|id| format!("order:{id}")));
        assert_audit_intact(s).await;
    }
}
