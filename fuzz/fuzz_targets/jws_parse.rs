//! ACME request bodies: every POST the server receives is parsed by `Jws::from_slice` before anything is trusted,
//! so it must refuse any byte string with a typed error. Also fuzzes `Jwk::from_json_str` on the same input.

#![no_main]

use castellan_acme_proto::{Jwk, Jws};
use castellan_fuzz::ACCOUNT_JWK;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jws) = Jws::from_slice(data) {
        // The header is re-serialized when the server echoes or logs it.
        let _ = jws.header().to_value();
        if let Some(jwk) = jws.header().jwk() {
            check_jwk(jwk);
        }
        // "jwk" requests verify with the embedded key; "kid" requests with the account key the kid names, which here
        // is always the fixed account key so seeds signed with it verify.
        let verified = match jws.header().jwk() {
            Some(_) => jws.verify_embedded(),
            None => jws.verify_with(&ACCOUNT_JWK),
        };
        if let Ok(verified) = verified {
            let _ = verified.is_post_as_get();
            let _ = verified.payload_json::<serde_json::Value>();
            let _ = verified.key().thumbprint();
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(jwk) = Jwk::from_json_str(text)
    {
        check_jwk(&jwk);
    }
});

/// Invariants of an accepted JWK: its serialized form parses back to the same key, and is the RFC 7638 canonical
/// JSON the thumbprint is computed over.
fn check_jwk(jwk: &Jwk) {
    let value = jwk.to_value();
    assert_eq!(Jwk::from_value(&value).as_ref(), Ok(jwk), "a serialized JWK must parse back to itself");
    assert_eq!(value.to_string(), jwk.canonical_json(), "to_value and canonical_json disagree");
    let _ = jwk.thumbprint();
}
