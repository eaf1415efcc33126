//! Each rule kind, allowing and refusing, through the same entry points the RA uses.

use crate::{GlobalDeny, GroupPolicy, KeyType, Policy, PolicyError, Subject};

const PAYMENTS: &str = r#"{
    "dns": { "allow": ["api.corp.example", ".payments.corp.example"], "deny": [".prod.payments.corp.example"],
             "wildcards": true },
    "ip": { "allow": ["10.20.0.0/16"], "deny": ["10.20.99.0/24"] },
    "uri": { "allow": ["spiffe://corp.example/ns/payments/"] },
    "profiles": ["tls-server"],
    "max_lifetime_secs": 2592000,
    "key_types": ["ec-p256", "rsa"],
    "rsa_min_bits": 3072
}"#;

fn with<T>(global: &str, f: impl FnOnce(Policy<'_>) -> T) -> T {
    let group = GroupPolicy::from_json(PAYMENTS).expect("valid policy");
    let global = GlobalDeny::from_json(global).expect("valid global list");
    f(Policy { group_name: "payments", group: &group, global: &global })
}

#[test]
fn dns_rules_allow_and_refuse_naming_the_rule() {
    with("{}", |policy| {
        assert!(policy.check_subject(Subject::Dns("api.corp.example")).is_ok());
        assert!(policy.check_subject(Subject::Dns("a.payments.corp.example")).is_ok());
        assert!(policy.check_subject(Subject::Dns("*.payments.corp.example")).is_ok());
        let refused = policy.check_subject(Subject::Dns("db.prod.payments.corp.example")).unwrap_err();
        assert_eq!(refused.subject, "DNS name db.prod.payments.corp.example");
        assert!(refused.rule.contains("denies dns pattern \".prod.payments.corp.example\""), "{refused}");
        let refused = policy.check_subject(Subject::Dns("www.other.example")).unwrap_err();
        assert!(refused.rule.contains("no dns.allow pattern"), "{refused}");
        assert!(policy.check_subject(Subject::Dns("*.prod.payments.corp.example")).is_err());
    });
}

#[test]
fn wildcards_need_the_group_to_allow_them() {
    let group = GroupPolicy::from_json(r#"{"dns": {"allow": [".corp.example"]}}"#).unwrap();
    let global = GlobalDeny::default();
    let policy = Policy { group_name: "web", group: &group, global: &global };
    assert!(policy.check_subject(Subject::Dns("a.corp.example")).is_ok());
    let refused = policy.check_subject(Subject::Dns("*.corp.example")).unwrap_err();
    assert!(refused.rule.contains("does not allow wildcards"), "{refused}");
}

#[test]
fn the_global_deny_list_wins_over_every_group() {
    with(
        r#"{"dns": ["api.corp.example"], "ip": ["10.20.1.0/24"], "uri": ["spiffe://corp.example/ns/payments/admin"]}"#,
        |p| {
            let refused = p.check_subject(Subject::Dns("api.corp.example")).unwrap_err();
            assert!(refused.rule.contains("global deny list"), "{refused}");
            assert!(p.check_subject(Subject::Ip("10.20.1.5".parse().unwrap())).unwrap_err().rule.contains("global"));
            assert!(p.check_subject(Subject::Uri("spiffe://corp.example/ns/payments/admin/x")).is_err());
            assert!(p.check_subject(Subject::Uri("spiffe://corp.example/ns/payments/api")).is_ok());
        },
    );
}

#[test]
fn ip_and_uri_rules() {
    with("{}", |policy| {
        assert!(policy.check_subject(Subject::Ip("10.20.1.1".parse().unwrap())).is_ok());
        let denied = policy.check_subject(Subject::Ip("10.20.99.7".parse().unwrap())).unwrap_err();
        assert!(denied.rule.contains("denies ip range 10.20.99.0/24"), "{denied}");
        let outside = policy.check_subject(Subject::Ip("192.168.1.1".parse().unwrap())).unwrap_err();
        assert!(outside.rule.contains("no ip.allow range"), "{outside}");
        assert!(policy.check_subject(Subject::Ip("::1".parse().unwrap())).is_err());
        assert!(policy.check_subject(Subject::Uri("spiffe://corp.example/ns/payments/sa/api")).is_ok());
        assert!(policy.check_subject(Subject::Uri("spiffe://corp.example/ns/billing/sa/api")).is_err());
    });
}

#[test]
fn profiles_lifetimes_and_keys() {
    with("{}", |policy| {
        assert!(policy.check_profile("tls-server").is_ok());
        assert!(policy.check_profile("tls-client").unwrap_err().rule.contains("allows only profiles"));
        assert!(policy.check_lifetime(2_592_000).is_ok());
        assert!(policy.check_lifetime(2_592_001).is_err());
        assert!(policy.check_key(KeyType::EcP256).is_ok());
        assert!(policy.check_key(KeyType::Rsa { bits: 3072 }).is_ok());
        assert!(policy.check_key(KeyType::Rsa { bits: 2048 }).unwrap_err().rule.contains("3072 bits"));
        assert!(policy.check_key(KeyType::EcP384).unwrap_err().rule.contains("allows only"));
    });
}

#[test]
fn the_default_group_may_have_nothing() {
    let group = GroupPolicy::deny_all();
    let global = GlobalDeny::default();
    let policy = Policy { group_name: "default", group: &group, global: &global };
    assert!(policy.check_subject(Subject::Dns("anything.example")).is_err());
    assert!(policy.check_subject(Subject::Ip("10.0.0.1".parse().unwrap())).is_err());
    assert!(policy.check_subject(Subject::Uri("spiffe://x/y")).is_err());
}

#[test]
fn malformed_or_contradictory_documents_are_refused_whole() {
    let refuse = |doc: &str| GroupPolicy::from_json(doc).unwrap_err();
    assert!(matches!(refuse("{"), PolicyError::Syntax(_)));
    assert!(matches!(refuse(r#"{"dns": {"allow": ["ok.example"]}, "surprise": 1}"#), PolicyError::Syntax(_)));
    assert!(matches!(refuse(r#"{"dns": {"allow": ["Bad..example"]}}"#), PolicyError::DnsPattern { .. }));
    assert!(matches!(refuse(r#"{"ip": {"allow": ["10.0.0.0/33"]}}"#), PolicyError::IpRange { .. }));
    assert!(matches!(refuse(r#"{"uri": {"allow": ["https://x/"]}}"#), PolicyError::UriPrefix { .. }));
    assert!(matches!(refuse(r#"{"key_types": ["dsa"]}"#), PolicyError::KeyType(_)));
    assert!(matches!(
        refuse(r#"{"dns": {"allow": ["a.example"], "deny": ["a.example"]}}"#),
        PolicyError::Contradiction(_)
    ));
    assert!(matches!(refuse(r#"{"dns": {"wildcards": true}}"#), PolicyError::Contradiction(_)));
    assert!(matches!(refuse(r#"{"max_lifetime_secs": 0}"#), PolicyError::Contradiction(_)));
    assert!(matches!(refuse(r#"{"profiles": []}"#), PolicyError::Contradiction(_)));
    assert!(matches!(refuse(r#"{"key_types": ["ec-p256"], "rsa_min_bits": 3072}"#), PolicyError::Contradiction(_)));
    assert!(matches!(refuse(r#"{"rsa_min_bits": 1024}"#), PolicyError::Invalid(_)));
    // A valid document round-trips through its normalized form.
    let group = GroupPolicy::from_json(PAYMENTS).unwrap();
    assert_eq!(GroupPolicy::from_json(group.to_json()).unwrap(), group);
}
