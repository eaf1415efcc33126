//! The RFC 8555 §7 wire types use the RFC's field names and status strings.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_acme_proto::Jwk;
use castellan_acme_proto::types::*;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn order_field_names() {
    let order = Order {
        status: OrderStatus::Pending,
        expires: Some("2016-01-05T14:09:07.99Z".into()),
        identifiers: vec![Identifier::dns("www.example.org"), Identifier::ip("192.0.2.1")],
        profile: Some("classic".into()),
        not_before: Some("2016-01-01T00:00:00Z".into()),
        not_after: Some("2016-01-08T00:00:00Z".into()),
        error: None,
        authorizations: vec!["https://example.com/acme/authz/PAniVnsZcis".into()],
        finalize: "https://example.com/acme/order/TOlocE8rfgo/finalize".into(),
        certificate: None,
        replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
    };
    let v = serde_json::to_value(&order).unwrap();
    assert_eq!(
        keys(&v),
        [
            "authorizations",
            "expires",
            "finalize",
            "identifiers",
            "notAfter",
            "notBefore",
            "profile",
            "replaces",
            "status"
        ]
    );
    assert_eq!(v["status"], "pending");
    assert_eq!(
        v["identifiers"],
        json!([{"type": "dns", "value": "www.example.org"}, {"type": "ip", "value": "192.0.2.1"}])
    );
    assert_eq!(serde_json::from_value::<Order>(v).unwrap(), order);
}

#[test]
fn rfc8555_order_example_parses() {
    // RFC 8555 §7.1.3, with an unknown member added.
    let order: Order = serde_json::from_value(json!({
        "status": "valid",
        "expires": "2016-01-20T14:09:07.99Z",
        "identifiers": [{"type": "dns", "value": "www.example.org"}, {"type": "dns", "value": "example.org"}],
        "notBefore": "2016-01-01T00:00:00Z",
        "notAfter": "2016-01-08T00:00:00Z",
        "authorizations": ["https://example.com/acme/authz/PAniVnsZcis", "https://example.com/acme/authz/r4HqLzrSrpI"],
        "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
        "certificate": "https://example.com/acme/cert/mAt3xBGaobw",
        "future": true
    }))
    .unwrap();
    assert_eq!(order.status, OrderStatus::Valid);
    assert_eq!(order.certificate.as_deref(), Some("https://example.com/acme/cert/mAt3xBGaobw"));
    let other: Identifier = serde_json::from_value(json!({"type": "email", "value": "a@b"})).unwrap();
    assert_eq!(other.kind, IdentifierType::Other("email".into()));
    assert!(serde_json::from_value::<Order>(json!({"status": "bogus"})).is_err());
}

#[test]
fn directory_field_names() {
    let dir: Directory = serde_json::from_value(json!({
        "newNonce": "https://example.com/acme/new-nonce",
        "newAccount": "https://example.com/acme/new-account",
        "newOrder": "https://example.com/acme/new-order",
        "newAuthz": "https://example.com/acme/new-authz",
        "revokeCert": "https://example.com/acme/revoke-cert",
        "keyChange": "https://example.com/acme/key-change",
        "meta": {
            "termsOfService": "https://example.com/acme/terms/2017-5-30",
            "website": "https://www.example.com/",
            "caaIdentities": ["example.com"],
            "externalAccountRequired": false,
            "profiles": {"classic": "The same profile you're accustomed to"}
        }
    }))
    .unwrap();
    let meta = dir.meta.as_ref().unwrap();
    assert_eq!(meta.caa_identities.as_deref(), Some(&["example.com".to_owned()][..]));
    assert_eq!(meta.profiles.as_ref().unwrap().len(), 1);
    let v = serde_json::to_value(&dir).unwrap();
    assert_eq!(keys(&v), ["keyChange", "meta", "newAccount", "newAuthz", "newNonce", "newOrder", "revokeCert"]);
    assert_eq!(keys(&v["meta"]), ["caaIdentities", "externalAccountRequired", "profiles", "termsOfService", "website"]);
}

#[test]
fn account_and_requests() {
    let account = Account {
        status: AccountStatus::Deactivated,
        contact: Some(vec!["mailto:cert-admin@example.org".into()]),
        terms_of_service_agreed: Some(true),
        external_account_binding: None,
        orders: Some("https://example.com/acme/orders/rzGoeA".into()),
    };
    let v = serde_json::to_value(&account).unwrap();
    assert_eq!(keys(&v), ["contact", "orders", "status", "termsOfServiceAgreed"]);
    assert_eq!(v["status"], "deactivated");

    let new: NewAccount = serde_json::from_value(json!({"onlyReturnExisting": true})).unwrap();
    assert_eq!(new.only_return_existing, Some(true));
    assert_eq!(serde_json::to_value(NewAccount::default()).unwrap(), json!({}));

    assert_eq!(serde_json::to_value(Finalize { csr: "MIIB".into() }).unwrap(), json!({"csr": "MIIB"}));
    let rev = Revocation { certificate: "MIIC".into(), reason: Some(4) };
    assert_eq!(serde_json::to_value(&rev).unwrap(), json!({"certificate": "MIIC", "reason": 4}));

    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let kc: KeyChange =
        serde_json::from_value(json!({"account": "https://example.com/acme/acct/1", "oldKey": jwk})).unwrap();
    assert_eq!(kc.old_key, Jwk::from_value(&jwk).unwrap());
    assert_eq!(keys(&serde_json::to_value(&kc).unwrap()), ["account", "oldKey"]);
    let private = json!({"account": "a", "oldKey": {"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"}});
    assert!(serde_json::from_value::<KeyChange>(private).is_err());
}

#[test]
fn authorization_and_challenge() {
    let authz: Authorization = serde_json::from_value(json!({
        "status": "valid",
        "expires": "2015-03-01T14:09:07.99Z",
        "identifier": {"type": "dns", "value": "www.example.org"},
        "challenges": [{
            "url": "https://example.com/acme/chall/prV_B7yEyA4",
            "type": "http-01",
            "status": "valid",
            "token": "DGyRejmCefe7v4NfDGDKfA",
            "validated": "2014-12-01T12:05:58.16Z"
        }],
        "wildcard": false
    }))
    .unwrap();
    assert_eq!(authz.status, AuthorizationStatus::Valid);
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Valid);
    let v = serde_json::to_value(&authz).unwrap();
    assert_eq!(keys(&v), ["challenges", "expires", "identifier", "status", "wildcard"]);
    assert_eq!(keys(&v["challenges"][0]), ["status", "token", "type", "url", "validated"]);
}

#[test]
fn problem_with_subproblems() {
    let mut problem = Problem::acme("rejectedIdentifier", "Some of the identifiers requested were rejected", 403);
    let mut sub = Problem::acme("malformed", "Invalid underscore in DNS name \"_example.org\"", 400);
    sub.status = None;
    sub.identifier = Some(Identifier::dns("_example.org"));
    problem.subproblems = Some(vec![sub]);
    let v = serde_json::to_value(&problem).unwrap();
    assert_eq!(v["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
    assert_eq!(keys(&v), ["detail", "status", "subproblems", "type"]);
    assert_eq!(keys(&v["subproblems"][0]), ["detail", "identifier", "type"]);
    assert_eq!(serde_json::from_value::<Problem>(v).unwrap(), problem);
}
