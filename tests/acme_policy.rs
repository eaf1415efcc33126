//! Issuance policy through the ACME server: the default group's rules refuse what they do not allow, at newOrder
//! and again at finalization, each refusal naming the identifier and the rule.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::acme::{Acme, RawClient};
use serde_json::json;

const POLICY: &str = r#"wait_for_outcome_ms = 3000
[acme.default_policy]
dns = { allow = ["app.castellan.test", ".corp.castellan.test"], deny = [".secret.corp.castellan.test"] }
ip = { allow = ["127.0.0.0/8"] }
profiles = ["tls-server"]
key_types = ["ec-p384"]
"#;

fn order(client: &RawClient, identifiers: serde_json::Value) -> common::acme::Reply {
    client.post(&client.url("newOrder"), Some(&json!({ "identifiers": identifiers })))
}

/// A fresh P-256 key's CSR for 127.0.0.1.
fn p256_csr_for_localhost_ip() -> String {
    common::acme::csr(&p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng), &["127.0.0.1"], &[])
}

#[test]
fn the_default_group_policy_allows_and_refuses_naming_the_rule() {
    let acme = Acme::start(POLICY);
    let client = acme.registered();

    assert_eq!(order(&client, json!([{"type": "dns", "value": "app.castellan.test"}])).status, 201);
    assert_eq!(order(&client, json!([{"type": "dns", "value": "db.corp.castellan.test"}])).status, 201);

    let outside = order(&client, json!([{"type": "dns", "value": "www.other.test"}]));
    assert_eq!(outside.problem(), "rejectedIdentifier");
    let detail = outside.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        detail.contains("www.other.test") && detail.contains("no dns.allow pattern of group \"default\""),
        "{detail}"
    );
    assert_eq!(outside.json()["subproblems"][0]["identifier"]["value"], "www.other.test");

    let denied = order(&client, json!([{"type": "dns", "value": "x.secret.corp.castellan.test"}]));
    assert_eq!(denied.problem(), "rejectedIdentifier");
    assert!(denied.text().contains("denies dns pattern \\\".secret.corp.castellan.test\\\""), "{}", denied.text());

    let wildcard = order(&client, json!([{"type": "dns", "value": "*.corp.castellan.test"}]));
    assert!(wildcard.text().contains("does not allow wildcards"), "{}", wildcard.text());

    let ip = order(&client, json!([{"type": "ip", "value": "10.1.2.3"}]));
    assert!(ip.text().contains("no ip.allow range"), "{}", ip.text());

    // Two refused among three: each named in its own subproblem.
    let mixed = order(
        &client,
        json!([{"type": "dns", "value": "app.castellan.test"}, {"type": "dns", "value": "a.other.test"},
               {"type": "ip", "value": "10.0.0.1"}]),
    );
    assert_eq!(mixed.problem(), "rejectedIdentifier");
    assert_eq!(mixed.json()["subproblems"].as_array().map(Vec::len), Some(2), "{}", mixed.text());

    let profile = client.post(
        &client.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "app.castellan.test"}], "profile": "tls-client"})),
    );
    assert_eq!(profile.problem(), "invalidProfile");
    assert!(profile.text().contains("allows only profiles"), "{}", profile.text());

    // The key type is checked at finalization: this group takes only P-384 keys.
    let (_, ready) = acme.ready_order(&client);
    let finalize = ready["finalize"].as_str().expect("finalize");
    let refused = client.post(finalize, Some(&json!({"csr": p256_csr_for_localhost_ip()})));
    assert_eq!(refused.problem(), "badCSR");
    assert!(refused.text().contains("allows only [\\\"ec-p384\\\"]"), "{}", refused.text());
}

#[test]
fn without_a_configured_policy_the_default_group_may_have_nothing() {
    // An explicit empty policy is the same as none: deny-all.
    let acme = Acme::start("[acme.default_policy]\n");
    let client = acme.registered();
    let refused = order(&client, json!([{"type": "ip", "value": "127.0.0.1"}]));
    assert_eq!(refused.problem(), "rejectedIdentifier");
}

#[test]
fn rate_limits_refuse_with_retry_after_and_recover() {
    let acme = Acme::start_with_fake_clock(
        "[acme.rate_limits]\nnew_orders_per_account = { count = 2, period_secs = 2 }\n\
         new_accounts_per_ip = { count = 2, period_secs = 3600 }\n\
         failed_validations_per_domain = { count = 1, period_secs = 3600 }\n",
    );
    let client = acme.registered();
    let ip = json!([{"type": "ip", "value": "127.0.0.2"}]);
    assert_eq!(order(&client, ip.clone()).status, 201);
    assert_eq!(order(&client, ip.clone()).status, 201);
    let limited = order(&client, ip.clone());
    assert_eq!((limited.status, limited.problem().as_str()), (429, "rateLimited"));
    let retry: u64 = limited.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    acme.advance_clock(retry);
    assert_eq!(order(&client, ip).status, 201, "allowed again after Retry-After");

    // Accounts per client address: the second registers, the third is refused.
    let second = acme.registered();
    let third = acme.client();
    let refused = third.post(&third.url("newAccount"), Some(&json!({"termsOfServiceAgreed": true})));
    assert_eq!(refused.problem(), "rateLimited");

    // One failed validation for 127.0.0.3 (nothing answers its token) and new orders for it are refused.
    let client = second;
    let failing = order(&client, json!([{"type": "ip", "value": "127.0.0.3"}]));
    let authz = client.post(failing.json()["authorizations"][0].as_str().expect("authz"), None).json();
    let challenge = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .find(|c| c["type"] == "http-01")
        .expect("http-01")
        .clone();
    client.post(challenge["url"].as_str().expect("url"), Some(&json!({})));
    let order_url = failing.header("location").expect("location").to_owned();
    let invalid = common::acme::poll(&client, &order_url, |o| o["status"] != "pending");
    assert_eq!(invalid["status"], "invalid", "{invalid}");
    let after_failure = order(&client, json!([{"type": "ip", "value": "127.0.0.3"}]));
    assert_eq!(after_failure.problem(), "rateLimited", "{}", after_failure.text());
    assert!(after_failure.text().contains("failed validations for 127.0.0.3"), "{}", after_failure.text());
}
