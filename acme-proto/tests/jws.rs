//! JWS verification, signing and external account binding, end to end through the public API.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use castellan_acme_proto::b64;
use castellan_acme_proto::jwk::JwkError;
use castellan_acme_proto::{
    EabJws, Jwk, Jws, JwsError, JwsSigner, KeyKind, KeyRef, MacAlgorithm, ProtectedHeader, SignError,
    SignatureAlgorithm, sign_eab, sign_flattened,
};
use rand::rngs::OsRng;
use serde_json::{Value, json};

const URL: &str = "https://ca.example/acme/new-account";
const NONCE: &str = "6S8IqOGY7eL2lsGoTZYifg";

fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap())
}

fn p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::random(&mut OsRng)
}

fn ed_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&rand::random())
}

fn header_for(signer: &dyn JwsSigner) -> ProtectedHeader {
    ProtectedHeader {
        alg: signer.algorithm(),
        key: KeyRef::Jwk(signer.public_jwk().unwrap()),
        nonce: Some(NONCE.into()),
        url: URL.into(),
        extra: Default::default(),
    }
}

fn to_body(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Signs an arbitrary protected header with `signer`, bypassing every check `sign_flattened` makes.
fn raw_jws(header: Value, payload: &[u8], signer: &dyn JwsSigner) -> Value {
    let protected = b64::encode(header.to_string());
    let payload = b64::encode(payload);
    let sig = signer.sign(format!("{protected}.{payload}").as_bytes()).unwrap();
    json!({"protected": protected, "payload": payload, "signature": b64::encode(sig)})
}

fn parse_and_verify(body: &Value) -> Result<castellan_acme_proto::VerifiedJws, JwsError> {
    Jws::from_slice(&to_body(body))?.verify_embedded()
}

fn round_trip(signer: &dyn JwsSigner, kind: KeyKind) {
    let payload = br#"{"termsOfServiceAgreed":true}"#;
    let jws = sign_flattened(&header_for(signer), payload, signer).unwrap();
    let parsed = Jws::from_slice(&to_body(&jws)).unwrap();
    assert_eq!(parsed.header().alg, signer.algorithm());
    assert_eq!(parsed.header().nonce.as_deref(), Some(NONCE));
    assert_eq!(parsed.header().url, URL);
    let verified = parsed.verify_embedded().unwrap();
    assert_eq!(verified.key().kind(), kind);
    assert_eq!(verified.payload(), payload);
    let v: Value = verified.payload_json().unwrap();
    assert_eq!(v["termsOfServiceAgreed"], true);

    // POST-as-GET with a "kid", verified with the account key.
    let account_key = signer.public_jwk().unwrap();
    let mut header = header_for(signer);
    header.key = KeyRef::Kid("https://ca.example/acme/acct/1".into());
    let jws = sign_flattened(&header, b"", signer).unwrap();
    assert_eq!(jws.payload, "");
    let parsed = Jws::from_slice(&to_body(&jws)).unwrap();
    assert_eq!(parsed.header().kid(), Some("https://ca.example/acme/acct/1"));
    let verified = parsed.verify_with(&account_key).unwrap();
    assert!(verified.is_post_as_get());
}

#[test]
fn round_trip_es256() {
    round_trip(&p256_key(), KeyKind::P256);
}

#[test]
fn round_trip_es384() {
    round_trip(&p384::ecdsa::SigningKey::random(&mut OsRng), KeyKind::P384);
}

#[test]
fn round_trip_rs256() {
    round_trip(rsa_key(), KeyKind::Rsa);
}

#[test]
fn round_trip_eddsa() {
    round_trip(&ed_key(), KeyKind::Ed25519);
}

#[test]
fn unknown_header_members_are_kept() {
    let key = p256_key();
    let mut header = header_for(&key);
    header.extra.insert("x-test".into(), json!([1, 2]));
    let jws = sign_flattened(&header, b"{}", &key).unwrap();
    let verified = Jws::from_slice(&to_body(&jws)).unwrap().verify_embedded().unwrap();
    assert_eq!(verified.header().extra.get("x-test"), Some(&json!([1, 2])));
    assert_eq!(verified.header(), &header);
}

#[test]
fn tampering_breaks_the_signature() {
    for signer in [&p256_key() as &dyn JwsSigner, rsa_key(), &ed_key()] {
        let jws = sign_flattened(&header_for(signer), br#"{"a":1}"#, signer).unwrap();

        let mut body = serde_json::to_value(&jws).unwrap();
        body["payload"] = json!(b64::encode(br#"{"a":2}"#));
        assert_eq!(parse_and_verify(&body).unwrap_err(), JwsError::BadSignature);

        let mut header = header_for(signer);
        header.url = "https://ca.example/acme/new-order".into();
        let mut body = serde_json::to_value(&jws).unwrap();
        body["protected"] = json!(b64::encode(header.to_value().to_string()));
        let err = parse_and_verify(&body).unwrap_err();
        assert_eq!(err, JwsError::BadSignature);
        assert_eq!(err.problem_type(), "malformed");

        // Verifying with another key of the same type fails too.
        let mut header = header_for(signer);
        header.key = KeyRef::Kid("acct".into());
        let jws = sign_flattened(&header, b"", signer).unwrap();
        let other = match signer.algorithm() {
            SignatureAlgorithm::Es256 => p256_key().public_jwk().unwrap(),
            SignatureAlgorithm::EdDsa => ed_key().public_jwk().unwrap(),
            _ => continue,
        };
        let err = Jws::from_slice(&to_body(&jws)).unwrap().verify_with(&other).unwrap_err();
        assert_eq!(err, JwsError::BadSignature);
    }
}

#[test]
fn ecdsa_der_signature_is_refused() {
    let key = p256_key();
    let header = header_for(&key).to_value();
    let protected = b64::encode(header.to_string());
    let sig: p256::ecdsa::Signature = signature::Signer::sign(&key, format!("{protected}.").as_bytes());
    let body = json!({"protected": protected, "payload": "", "signature": b64::encode(sig.to_der().as_bytes())});
    assert_eq!(parse_and_verify(&body).unwrap_err(), JwsError::BadSignature);
}

fn header_json(alg: &str, key: &dyn JwsSigner) -> Value {
    json!({"alg": alg, "jwk": key.public_jwk().unwrap(), "nonce": NONCE, "url": URL})
}

#[test]
fn alg_none_and_mac_are_refused() {
    let key = p256_key();
    let err = parse_and_verify(&raw_jws(header_json("none", &key), b"{}", &key)).unwrap_err();
    assert_eq!(err, JwsError::AlgNone);
    assert_eq!(err.problem_type(), "badSignatureAlgorithm");

    let err = parse_and_verify(&raw_jws(header_json("HS256", &key), b"{}", &key)).unwrap_err();
    assert_eq!(err, JwsError::MacNotAllowed("HS256".into()));
    assert_eq!(err.problem_type(), "badSignatureAlgorithm");

    // ES512 is supported, but not with this P-256 key.
    let err = parse_and_verify(&raw_jws(header_json("ES512", &key), b"{}", &key)).unwrap_err();
    assert!(matches!(err, JwsError::AlgKeyMismatch { alg: "ES512", .. }), "{err:?}");
    for alg in ["PS256", "RS512", "es256", "ES256K"] {
        let err = parse_and_verify(&raw_jws(header_json(alg, &key), b"{}", &key)).unwrap_err();
        assert_eq!(err, JwsError::UnsupportedAlgorithm(alg.into()));
    }
    let problem = castellan_acme_proto::types::Problem::from(&err);
    assert_eq!(problem.kind, "urn:ietf:params:acme:error:badSignatureAlgorithm");
    assert_eq!(problem.algorithms.unwrap(), ["ES256", "ES384", "ES512", "RS256", "EdDSA"]);
}

#[test]
fn alg_must_match_key_type() {
    // ES256 claimed, RSA jwk.
    let rsa = rsa_key();
    let err = parse_and_verify(&raw_jws(header_json("ES256", rsa), b"{}", rsa)).unwrap_err();
    assert_eq!(err, JwsError::AlgKeyMismatch { alg: "ES256", key: KeyKind::Rsa });
    assert_eq!(err.problem_type(), "badSignatureAlgorithm");

    // ES384 claimed, P-256 jwk.
    let key = p256_key();
    let err = parse_and_verify(&raw_jws(header_json("ES384", &key), b"{}", &key)).unwrap_err();
    assert_eq!(err, JwsError::AlgKeyMismatch { alg: "ES384", key: KeyKind::P256 });

    // With a kid, the mismatch shows once the account key is known.
    let header = json!({"alg": "ES256", "kid": "acct", "nonce": NONCE, "url": URL});
    let jws = Jws::from_slice(&to_body(&raw_jws(header, b"", &key))).unwrap();
    let err = jws.verify_with(&rsa.public_jwk().unwrap()).unwrap_err();
    assert_eq!(err, JwsError::AlgKeyMismatch { alg: "ES256", key: KeyKind::Rsa });
}

#[test]
fn exactly_one_of_jwk_and_kid() {
    let key = p256_key();
    let mut both = header_json("ES256", &key);
    both["kid"] = json!("acct");
    assert_eq!(parse_and_verify(&raw_jws(both, b"", &key)).unwrap_err(), JwsError::BothJwkAndKid);

    let neither = json!({"alg": "ES256", "nonce": NONCE, "url": URL});
    assert_eq!(parse_and_verify(&raw_jws(neither, b"", &key)).unwrap_err(), JwsError::NeitherJwkNorKid);

    let kid = json!({"alg": "ES256", "kid": "acct", "nonce": NONCE, "url": URL});
    assert_eq!(parse_and_verify(&raw_jws(kid, b"", &key)).unwrap_err(), JwsError::KidNotAllowed);

    let no_url = json!({"alg": "ES256", "kid": "acct", "nonce": NONCE});
    assert_eq!(parse_and_verify(&raw_jws(no_url, b"", &key)).unwrap_err(), JwsError::MissingHeader("url"));

    let mut crit = header_json("ES256", &key);
    crit["crit"] = json!(["b64"]);
    assert_eq!(parse_and_verify(&raw_jws(crit, b"", &key)).unwrap_err(), JwsError::Critical);
}

#[test]
fn jwk_header_must_be_the_verifying_key() {
    let key = p256_key();
    let jws = sign_flattened(&header_for(&key), b"", &key).unwrap();
    let other = p256_key().public_jwk().unwrap();
    let err = Jws::from_slice(&to_body(&jws)).unwrap().verify_with(&other).unwrap_err();
    assert_eq!(err, JwsError::JwkMismatch);
}

#[test]
fn base64_must_be_strict() {
    let key = p256_key();
    let jws = serde_json::to_value(sign_flattened(&header_for(&key), b"{}", &key).unwrap()).unwrap();
    for member in ["protected", "payload", "signature"] {
        let mut body = jws.clone();
        // Pad to a multiple of four (adding at least one '=').
        let s = body[member].as_str().unwrap().to_owned();
        let padded = format!("{s}{}", "=".repeat(4 - s.len() % 4));
        body[member] = json!(padded);
        let err = parse_and_verify(&body).unwrap_err();
        assert!(matches!(err, JwsError::Base64 { member: m, source: b64::B64Error::Padding } if m == member), "{err}");
        assert_eq!(err.problem_type(), "malformed");
    }
    let mut body = jws.clone();
    body["signature"] = json!(body["signature"].as_str().unwrap().replace(['-', '_'], "+"));
    if body["signature"] != jws["signature"] {
        assert!(matches!(parse_and_verify(&body).unwrap_err(), JwsError::Base64 { member: "signature", .. }));
    }
    let mut body = jws.clone();
    body["payload"] = json!("e30/");
    assert!(matches!(parse_and_verify(&body).unwrap_err(), JwsError::Base64 { member: "payload", .. }));
}

#[test]
fn only_the_flattened_form_is_accepted() {
    let key = p256_key();
    let jws = serde_json::to_value(sign_flattened(&header_for(&key), b"{}", &key).unwrap()).unwrap();

    let mut body = jws.clone();
    body["header"] = json!({"kid": "acct"});
    assert_eq!(parse_and_verify(&body).unwrap_err(), JwsError::UnprotectedHeader);

    let general = json!({"payload": jws["payload"], "signatures": [{"protected": jws["protected"], "signature": jws["signature"]}]});
    assert_eq!(parse_and_verify(&general).unwrap_err(), JwsError::GeneralSerialization);

    let mut body = jws.clone();
    body["extra"] = json!(1);
    assert_eq!(parse_and_verify(&body).unwrap_err(), JwsError::UnexpectedMember("extra".into()));

    let mut body = jws.clone();
    body.as_object_mut().unwrap().remove("signature");
    assert_eq!(parse_and_verify(&body).unwrap_err(), JwsError::MissingMember("signature"));

    assert!(matches!(Jws::from_slice(b"eyJhbGciOi.e30.c2ln").unwrap_err(), JwsError::NotJson(_)));
    assert_eq!(Jws::from_slice(b"[]").unwrap_err(), JwsError::NotAnObject);
    let not_header = json!({"protected": b64::encode("[]"), "payload": "", "signature": ""});
    assert!(matches!(parse_and_verify(&not_header).unwrap_err(), JwsError::HeaderNotJson(_)));
}

#[test]
fn bad_jwks_in_the_header() {
    let key = p256_key();
    let mut header = header_json("ES256", &key);
    header["jwk"]["d"] = json!("AAAA");
    let err = parse_and_verify(&raw_jws(header, b"", &key)).unwrap_err();
    assert_eq!(err, JwsError::BadPublicKey(JwkError::PrivateMember("d")));
    assert_eq!(err.problem_type(), "badPublicKey");

    let rsa = rsa_key();
    let mut header = header_json("RS256", rsa);
    let n = b64::decode(header["jwk"]["n"].as_str().unwrap()).unwrap();
    header["jwk"]["n"] = json!(b64::encode(&n[..128]));
    let err = parse_and_verify(&raw_jws(header, b"", rsa)).unwrap_err();
    assert!(matches!(&err, JwsError::BadPublicKey(JwkError::InvalidKey(m)) if m.contains("1024 bits")), "{err}");
    assert_eq!(err.problem_type(), "badPublicKey");
}

#[test]
fn signer_must_match_header() {
    let key = p256_key();
    let mut header = header_for(&key);
    header.alg = SignatureAlgorithm::Es384;
    assert_eq!(
        sign_flattened(&header, b"", &key).unwrap_err(),
        SignError::AlgorithmMismatch { header: "ES384", signer: "ES256" }
    );
    let header = header_for(&p256_key());
    assert_eq!(sign_flattened(&header, b"", &key).unwrap_err(), SignError::JwkMismatch);
}

// External account binding (RFC 8555 §7.3.4).

const EAB_KEY: &[u8] = b"a shared secret of thirty-two b!";
const EAB_KID: &str = "kid-1";

fn eab_value(alg: MacAlgorithm, url: &str, mac_key: &[u8], jwk: &Jwk) -> Value {
    serde_json::to_value(sign_eab(alg, EAB_KID, url, mac_key, jwk)).unwrap()
}

fn mac_jws(header: Value, payload: &[u8], mac_key: &[u8]) -> Value {
    let protected = b64::encode(header.to_string());
    let payload = b64::encode(payload);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, mac_key);
    let tag = ring::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64::encode(tag.as_ref())})
}

#[test]
fn eab_valid() {
    let account = p256_key().public_jwk().unwrap();
    for alg in MacAlgorithm::ALL {
        let eab = EabJws::from_value(&eab_value(alg, URL, EAB_KEY, &account)).unwrap();
        assert_eq!(eab.kid(), EAB_KID);
        assert_eq!(eab.alg(), alg);
        eab.verify(EAB_KEY, &account, URL).unwrap();
    }
}

#[test]
fn eab_wrong_mac_key() {
    let account = p256_key().public_jwk().unwrap();
    let eab = EabJws::from_value(&eab_value(MacAlgorithm::Hs256, URL, EAB_KEY, &account)).unwrap();
    let err = eab.verify(b"another secret", &account, URL).unwrap_err();
    assert_eq!(err, JwsError::EabBadMac);
    assert_eq!(err.problem_type(), "unauthorized");
}

#[test]
fn eab_payload_must_be_the_outer_jwk() {
    let account = p256_key().public_jwk().unwrap();
    let other = p256_key().public_jwk().unwrap();
    let eab = EabJws::from_value(&eab_value(MacAlgorithm::Hs256, URL, EAB_KEY, &other)).unwrap();
    assert_eq!(eab.verify(EAB_KEY, &account, URL).unwrap_err(), JwsError::EabPayloadMismatch);

    let header = json!({"alg": "HS256", "kid": EAB_KID, "url": URL});
    let eab = EabJws::from_value(&mac_jws(header, b"not json", EAB_KEY)).unwrap();
    assert_eq!(eab.verify(EAB_KEY, &account, URL).unwrap_err(), JwsError::EabPayloadMismatch);
}

#[test]
fn eab_header_rules() {
    let account = p256_key().public_jwk().unwrap();
    let payload = account.to_value().to_string();

    let header = json!({"alg": "HS256", "kid": EAB_KID, "url": URL, "nonce": NONCE});
    let err = EabJws::from_value(&mac_jws(header, payload.as_bytes(), EAB_KEY)).unwrap_err();
    assert_eq!(err, JwsError::EabForbiddenHeader("nonce"));
    assert_eq!(err.problem_type(), "malformed");

    let header = json!({"alg": "HS256", "kid": EAB_KID, "url": URL, "jwk": account});
    let err = EabJws::from_value(&mac_jws(header, payload.as_bytes(), EAB_KEY)).unwrap_err();
    assert_eq!(err, JwsError::EabForbiddenHeader("jwk"));

    let header = json!({"alg": "ES256", "kid": EAB_KID, "url": URL});
    let err = EabJws::from_value(&mac_jws(header, payload.as_bytes(), EAB_KEY)).unwrap_err();
    assert_eq!(err, JwsError::EabAlgorithm("ES256".into()));

    let header = json!({"alg": "HS256", "url": URL});
    let err = EabJws::from_value(&mac_jws(header, payload.as_bytes(), EAB_KEY)).unwrap_err();
    assert_eq!(err, JwsError::MissingHeader("kid"));

    let eab = EabJws::from_value(&eab_value(MacAlgorithm::Hs256, "https://elsewhere", EAB_KEY, &account)).unwrap();
    assert_eq!(eab.verify(EAB_KEY, &account, URL).unwrap_err(), JwsError::EabUrlMismatch);

    let mut with_header = eab_value(MacAlgorithm::Hs256, URL, EAB_KEY, &account);
    with_header["header"] = json!({});
    assert_eq!(EabJws::from_value(&with_header).unwrap_err(), JwsError::UnprotectedHeader);
}
