//! CSRs from finalize requests (base64url-decoded DER) and from the CLI (PEM): `verify_csr` parses, classifies
//! the key, checks the self-signature and extracts the requested names. It must refuse any input with a typed
//! error. An accepted CSR's key then goes through `Jwk::from_spki_der`, as the server does to refuse a CSR
//! carrying the account key.

#![no_main]

use castellan_acme_proto::Jwk;
use der::Encode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(csr) = castellan_ca::verify_csr(data) else {
        return;
    };
    for name in &csr.names {
        let _ = name.to_string();
    }
    if let Ok(spki) = csr.request.info.public_key.to_der() {
        let _ = Jwk::from_spki_der(&spki);
    }
});
