//! keyChange (RFC 8555 §7.3.5): the input is the outer JWS's payload, i.e. the inner JWS. The harness signs it into
//! an outer JWS with the fixed account key (a `VerifiedJws` exists only after a real verification), then runs
//! `verify_key_change`, which must refuse any inner JWS with a typed error.

#![no_main]

use castellan_acme_proto::{Jws, KeyRef, ProtectedHeader, SignatureAlgorithm, sign_flattened, verify_key_change};
use castellan_fuzz::{ACCOUNT_JWK, ACCOUNT_KEY_RING, ACCOUNT_URL, KEY_CHANGE_URL, NONCE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = ProtectedHeader {
        alg: SignatureAlgorithm::Es256,
        key: KeyRef::Kid(ACCOUNT_URL.into()),
        nonce: Some(NONCE.into()),
        url: KEY_CHANGE_URL.into(),
        extra: serde_json::Map::new(),
    };
    let Ok(outer) = sign_flattened(&header, data, &*ACCOUNT_KEY_RING) else {
        return;
    };
    let Ok(outer) = serde_json::to_value(&outer) else {
        return;
    };
    // The outer JWS is well formed and signed by the account key: failing to verify it is a bug, not a refusal.
    let outer = Jws::from_value(&outer).and_then(|jws| jws.verify_with(&ACCOUNT_JWK));
    let outer = match outer {
        Ok(outer) => outer,
        Err(e) => panic!("outer JWS signed by the harness did not verify: {e}"),
    };
    assert_eq!(outer.payload(), data, "the outer payload must be the input byte for byte");
    if let Ok(change) = verify_key_change(&outer) {
        assert_eq!(change.account, ACCOUNT_URL);
        assert_eq!(change.old_key, *ACCOUNT_JWK);
    }
});
