//! keyChange inner JWS checks (RFC 8555 §7.3.5).

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_acme_proto::{
    Jws, JwsError, JwsSigner, KeyRef, ProtectedHeader, VerifiedKeyChange, sign_flattened, verify_key_change,
};
use rand::rngs::OsRng;
use serde_json::{Value, json};

const URL: &str = "https://ca.example/acme/key-change";
const ACCOUNT: &str = "https://ca.example/acme/acct/1";

fn header(signer: &dyn JwsSigner, key: KeyRef, nonce: Option<&str>, url: &str) -> ProtectedHeader {
    ProtectedHeader {
        alg: signer.algorithm(),
        key,
        nonce: nonce.map(Into::into),
        url: url.into(),
        extra: Default::default(),
    }
}

/// Builds the outer JWS (signed by `old` with kid) around an inner JWS (signed by `new` with jwk).
fn key_change(
    old: &dyn JwsSigner,
    new: &dyn JwsSigner,
    inner_nonce: Option<&str>,
    inner_url: &str,
    payload: Value,
) -> Result<VerifiedKeyChange, JwsError> {
    let inner_header = header(new, KeyRef::Jwk(new.public_jwk().unwrap()), inner_nonce, inner_url);
    let inner = sign_flattened(&inner_header, payload.to_string().as_bytes(), new).unwrap();
    let outer_header = header(old, KeyRef::Kid(ACCOUNT.into()), Some("nonce"), URL);
    let outer = sign_flattened(&outer_header, &serde_json::to_vec(&inner).unwrap(), old).unwrap();
    let outer = Jws::from_slice(&serde_json::to_vec(&outer).unwrap())?.verify_with(&old.public_jwk().unwrap())?;
    verify_key_change(&outer)
}

#[test]
fn key_change_checks() {
    let old = p256::ecdsa::SigningKey::random(&mut OsRng);
    let new = p384::ecdsa::SigningKey::random(&mut OsRng);
    let old_jwk = old.public_jwk().unwrap();
    let good = json!({"account": ACCOUNT, "oldKey": old_jwk});

    let ok = key_change(&old, &new, None, URL, good.clone()).unwrap();
    assert_eq!(ok.account, ACCOUNT);
    assert_eq!(ok.old_key, old_jwk);
    assert_eq!(ok.new_key, new.public_jwk().unwrap());

    assert_eq!(key_change(&old, &new, Some("n"), URL, good.clone()).unwrap_err(), JwsError::KeyChangeNonce);
    assert_eq!(
        key_change(&old, &new, None, "https://ca.example/other", good.clone()).unwrap_err(),
        JwsError::KeyChangeUrlMismatch
    );
    let other_account = json!({"account": "https://ca.example/acme/acct/2", "oldKey": old_jwk});
    assert_eq!(key_change(&old, &new, None, URL, other_account).unwrap_err(), JwsError::KeyChangeAccountMismatch);
    let wrong_old = json!({"account": ACCOUNT, "oldKey": new.public_jwk().unwrap()});
    assert_eq!(key_change(&old, &new, None, URL, wrong_old).unwrap_err(), JwsError::KeyChangeOldKeyMismatch);
    let not_key_change = json!({"account": ACCOUNT});
    assert!(matches!(key_change(&old, &new, None, URL, not_key_change).unwrap_err(), JwsError::PayloadNotJson(_)));
}
