//! What `verify_csr` does after the signature check (reading the extensionRequest, subjectAltName entries, IP
//! octets, the commonName) is out of reach of `csr_parse`: a mutated CSR no longer verifies. This target parses the
//! input as a CSR, puts a fixed P-256 key in it, signs it again, and runs `verify_csr` on the result, so every
//! parseable input reaches the name extraction. The signature and key are ours, so the only refusals allowed are
//! the ones about content.

#![no_main]

use std::sync::LazyLock;

use castellan_ca::CaError;
use castellan_ca::csr::parse_csr;
use castellan_fuzz::ACCOUNT_KEY;
use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
use der::asn1::BitString;
use der::{Decode, Encode};
use libfuzzer_sys::fuzz_target;
use p256::pkcs8::EncodePublicKey;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

struct Resigner {
    spki: SubjectPublicKeyInfoOwned,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

/// ring signs: the sanitizer-instrumented p256 crate would be several times slower.
static RESIGNER: LazyLock<Resigner> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let public = ACCOUNT_KEY.verifying_key();
    let spki = public
        .to_public_key_der()
        .map_err(|e| e.to_string())
        .and_then(|der| SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| e.to_string()));
    let pair = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ACCOUNT_KEY.to_bytes(),
        public.to_encoded_point(false).as_bytes(),
        &rng,
    );
    match (spki, pair) {
        (Ok(spki), Ok(pair)) => Resigner { spki, pair, rng },
        (spki, pair) => panic!("fixed CSR key unusable: {:?} {:?}", spki.err(), pair.err()),
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(mut request) = parse_csr(data) else {
        return;
    };
    request.info.public_key = RESIGNER.spki.clone();
    request.algorithm = AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None };
    // Contents that parsed but do not encode again (der is stricter writing than reading) are not our concern.
    let Ok(info) = request.info.to_der() else {
        return;
    };
    let Ok(signature) = RESIGNER.pair.sign(&RESIGNER.rng, &info) else {
        return;
    };
    let Ok(signature) = BitString::from_bytes(signature.as_ref()) else {
        return;
    };
    request.signature = signature;
    let Ok(resigned) = request.to_der() else {
        return;
    };
    match castellan_ca::verify_csr(&resigned) {
        Ok(csr) => {
            for name in &csr.names {
                let _ = name.to_string();
            }
        }
        // Refusals of what the CSR asks for.
        Err(CaError::MalformedCsr(_) | CaError::BadIdentifier(_)) => {}
        Err(e) => panic!("a CSR re-signed with a valid P-256 key was refused for something else: {e}"),
    }
});
