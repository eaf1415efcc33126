use super::*;
use crate::StoreError;
use crate::ids::{AuthorizationId, ChallengeId};
use std::sync::Arc;

/// Starts every challenge in `challenge_ids` from `per_challenge` tasks at once; returns how many calls won.
async fn race_starts(store: &Store, challenge_ids: &[ChallengeId], per_challenge: usize) -> usize {
    let barrier = Arc::new(tokio::sync::Barrier::new(challenge_ids.len() * per_challenge));
    let mut tasks = Vec::new();
    for &id in challenge_ids {
        for _ in 0..per_challenge {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.start_challenge(id, store.now(), ACTOR).await
            }));
        }
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.expect("task").expect("start challenge"));
    }
    won
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_concurrent_start_wins() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let o = order(s, a.id, &["one.example.com", "two.example.com"]).await;

        // Sixteen callers on one challenge.
        let one = s.authorization(o.authorization_ids[0]).await.expect("authz");
        assert_eq!(race_starts(s, &[one.challenges[0].id], 16).await, 1, "{:?}", s.backend());
        assert_eq!(s.challenge(one.challenges[0].id).await.expect("read").status, ChallengeStatus::Processing);
        // While it is processing, its sibling cannot start.
        assert!(!s.start_challenge(one.challenges[1].id, s.now(), ACTOR).await.expect("sibling"));

        // Eight callers on each of two challenges of one authorization: still one winner.
        let two = s.authorization(o.authorization_ids[1]).await.expect("authz");
        let ids: Vec<ChallengeId> = two.challenges.iter().map(|c| c.id).collect();
        assert_eq!(race_starts(s, &ids, 8).await, 1, "{:?}", s.backend());
        let statuses: Vec<_> =
            s.authorization(two.id).await.expect("authz").challenges.iter().map(|c| c.status).collect();
        assert_eq!(statuses.iter().filter(|st| **st == ChallengeStatus::Processing).count(), 1, "{statuses:?}");

        assert_eq!(audit_count(s, "challenge.start").await, 2);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn a_challenge_starts_only_on_a_live_pending_authorization() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let o = order(s, a.id, &["a.example.com", "b.example.com"]).await;
        let expiring = s.authorization(o.authorization_ids[0]).await.expect("authz");
        // `now` past the authorization's expiry.
        assert!(!s.start_challenge(expiring.challenges[0].id, expiring.expires_at + 1, ACTOR).await.expect("start"));
        assert!(s.start_challenge(expiring.challenges[0].id, expiring.expires_at, ACTOR).await.expect("start"));

        let deactivated = s.deactivate_authorization(o.authorization_ids[1], ACTOR).await.expect("deactivate");
        assert!(!s.start_challenge(deactivated.challenges[0].id, s.now(), ACTOR).await.expect("start"));
        let missing = s.start_challenge(ChallengeId(deactivated.challenges[1].id.get() + 100), s.now(), ACTOR).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
        assert_eq!(audit_count(s, "challenge.start").await, 1);
    }
}

#[tokio::test]
async fn a_valid_challenge_makes_the_orders_ready_once_all_their_authorizations_are() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let both = order(s, a.id, &["a.example.com", "b.example.com"]).await;
        let [authz_a, authz_b] = [0, 1].map(|i| both.authorization_ids[i]);
        // A second order listing only the first authorization.
        let single = s
            .create_order(&new_order(s, a.id, &["a.example.com"], vec![AuthorizationPlan::Reuse(authz_a)]), ACTOR)
            .await
            .expect("second order");

        let challenge = s.authorization(authz_a).await.expect("authz").challenges[0].id;
        let early = s.finish_challenge(challenge, &valid_outcome(s), ACTOR).await.expect_err("not processing");
        assert!(matches!(early, StoreError::Invalid { .. }), "{early}");
        assert!(s.start_challenge(challenge, s.now(), ACTOR).await.expect("start"));
        let outcome = valid_outcome(s);
        let ChallengeOutcome::Valid { validated_at, authorization_expires_at, .. } = outcome.clone() else {
            unreachable!()
        };
        let authz = s.finish_challenge(challenge, &outcome, ACTOR).await.expect("finish");
        assert_eq!(
            (authz.id, authz.status, authz.expires_at),
            (authz_a, AuthorizationStatus::Valid, authorization_expires_at)
        );
        let done = authz.challenges.iter().find(|c| c.id == challenge).expect("challenge");
        assert_eq!(
            (done.status, done.validated_at, done.error.as_ref()),
            (ChallengeStatus::Valid, Some(validated_at), None)
        );
        assert_eq!(s.authorization(authz_a).await.expect("read"), authz);

        assert_eq!(s.order(single.id).await.expect("single").status, OrderStatus::Ready);
        assert_eq!(s.order(both.id).await.expect("both").status, OrderStatus::Pending, "b is still pending");
        validate(s, authz_b).await;
        assert_eq!(s.order(both.id).await.expect("both").status, OrderStatus::Ready);

        let twice = s.finish_challenge(challenge, &valid_outcome(s), ACTOR).await.expect_err("finished twice");
        assert!(matches!(twice, StoreError::Invalid { .. }), "{twice}");
        let details: String = sqlx::query_scalar(
            "SELECT details_json FROM audit_log WHERE action = 'challenge.valid' ORDER BY seq LIMIT 1",
        )
        .fetch_one(s.raw_pool_for_tests())
        .await
        .expect("audit");
        assert!(details.contains("192.0.2.1") && details.contains(&single.id.to_string()), "{details}");
        assert_eq!(audit_subjects(s, "challenge.valid").await.len(), 2);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn an_invalid_challenge_invalidates_its_authorization_and_pending_orders() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let o = order(s, a.id, &["a.example.com", "b.example.com"]).await;
        let challenge = s.authorization(o.authorization_ids[0]).await.expect("authz").challenges[1].id;
        assert!(s.start_challenge(challenge, s.now(), ACTOR).await.expect("start"));
        let outcome = invalid_outcome();
        let ChallengeOutcome::Invalid { error } = outcome.clone() else { unreachable!() };
        let authz = s.finish_challenge(challenge, &outcome, ACTOR).await.expect("finish");
        assert_eq!(authz.status, AuthorizationStatus::Invalid);
        let failed = s.challenge(challenge).await.expect("challenge");
        assert_eq!(
            (failed.status, failed.validated_at, failed.error.as_ref()),
            (ChallengeStatus::Invalid, None, Some(&error))
        );

        let order = s.order(o.id).await.expect("order");
        assert_eq!((order.status, order.error.as_ref()), (OrderStatus::Invalid, Some(&error)));
        assert_eq!(s.authorization(o.authorization_ids[1]).await.expect("b").status, AuthorizationStatus::Pending);
        // The authorization is no longer pending: its other challenge cannot start.
        assert!(!s.start_challenge(authz.challenges[0].id, s.now(), ACTOR).await.expect("start other"));
        assert_eq!(audit_subjects(s, "challenge.invalid").await, [format!("challenge:{challenge}")]);
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn a_challenge_finishing_after_deactivation_leaves_the_authorization_deactivated() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let o = order(s, a.id, &["a.example.com"]).await;
        let challenge = s.authorization(o.authorization_ids[0]).await.expect("authz").challenges[0].id;
        assert!(s.start_challenge(challenge, s.now(), ACTOR).await.expect("start"));
        s.deactivate_authorization(o.authorization_ids[0], ACTOR).await.expect("deactivate");
        let authz = s.finish_challenge(challenge, &valid_outcome(s), ACTOR).await.expect("finish");
        assert_eq!(authz.status, AuthorizationStatus::Deactivated);
        assert_eq!(s.order(o.id).await.expect("order").status, OrderStatus::Invalid);
        assert_audit_intact(s).await;
    }
}

/// Two authorizations of one order validated at the same moment, on two connections: whichever commits second
/// must see the first's authorization valid and make the order ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_validations_of_one_order_leave_it_ready() {
    const ORDERS: usize = 6;
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let mut orders = Vec::new();
        let mut challenges = Vec::new();
        for i in 0..ORDERS {
            let o = order(s, a.id, &[&format!("a{i}.example.com"), &format!("b{i}.example.com")]).await;
            for &authz in &o.authorization_ids {
                let c = s.authorization(authz).await.expect("authz").challenges[0].id;
                assert!(s.start_challenge(c, s.now(), ACTOR).await.expect("start"));
                challenges.push(c);
            }
            orders.push(o.id);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(challenges.len()));
        let tasks: Vec<_> = challenges
            .into_iter()
            .map(|c| {
                let (store, barrier) = (s.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.finish_challenge(c, &valid_outcome(&store), ACTOR).await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("finish");
        }
        for id in orders {
            assert_eq!(s.order(id).await.expect("order").status, OrderStatus::Ready, "{:?}: order {id}", s.backend());
        }
        assert_audit_intact(s).await;
    }
}

#[tokio::test]
async fn deactivating_an_authorization_invalidates_its_live_orders() {
    for t in testkit::all().await {
        let s = &t.store;
        let a = account(s).await;
        let ready = ready_order(s, a.id).await;
        let authz_id = ready.authorization_ids[0];
        let pending = s
            .create_order(
                &new_order(
                    s,
                    a.id,
                    &["www.example.com", "b.example.com"],
                    vec![AuthorizationPlan::Reuse(authz_id), AuthorizationPlan::Create(new_authz(s, "b.example.com"))],
                ),
                ACTOR,
            )
            .await
            .expect("pending order");
        let unrelated = order(s, a.id, &["c.example.com"]).await;

        let authz = s.deactivate_authorization(authz_id, ACTOR).await.expect("deactivate");
        assert_eq!(authz.status, AuthorizationStatus::Deactivated);
        for id in [ready.id, pending.id] {
            let o = s.order(id).await.expect("order");
            assert_eq!(o.status, OrderStatus::Invalid, "{:?}: order {id}", s.backend());
            assert_eq!(o.error.as_ref().and_then(|e| e["type"].as_str()), Some(UNAUTHORIZED));
        }
        assert_eq!(s.order(unrelated.id).await.expect("order").status, OrderStatus::Pending);

        let again = s.deactivate_authorization(authz_id, ACTOR).await.expect_err("twice");
        assert!(matches!(again, StoreError::Invalid { .. }), "{again}");
        let missing =
            s.deactivate_authorization(AuthorizationId(authz_id.get() + 100), ACTOR).await.expect_err("missing");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        assert_eq!(audit_subjects(s, "authorization.deactivate").await, [format!("authorization:{authz_id}")]);
        assert_audit_intact(s).await;
    }
}
