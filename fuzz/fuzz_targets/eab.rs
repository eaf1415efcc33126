//! External account binding: the "externalAccountBinding" member of a newAccount payload is client-supplied JSON,
//! parsed by `EabJws::from_value` and then MAC-checked. Both must refuse any input with a typed error.

#![no_main]

use castellan_acme_proto::EabJws;
use castellan_fuzz::{ACCOUNT_JWK, EAB_HMAC_KEY, NEW_ACCOUNT_URL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(eab) = EabJws::from_value(&value) else {
        return;
    };
    let _ = (eab.kid(), eab.alg(), format!("{eab:?}"));
    // The seeds are MACed with this key over the account key, so the checks after the MAC are reached too.
    let _ = eab.verify(EAB_HMAC_KEY, &ACCOUNT_JWK, NEW_ACCOUNT_URL);
});
