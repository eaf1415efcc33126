//! Fixed keys and URLs shared by the fuzz targets and by `examples/gen_seeds.rs`, so that the seed corpus holds
//! inputs that pass every check (signatures and MACs included) and the fuzzer starts from the deep paths.
//!
//! Nothing here is secret: these keys exist only to sign fuzz inputs.

use std::sync::LazyLock;

use castellan_acme_proto::{Jwk, JwsSigner, SignError, SignatureAlgorithm};
use p256::ecdsa::SigningKey;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// The account URL: the outer "kid" of a keyChange request, and the "account" its inner payload must name.
pub const ACCOUNT_URL: &str = "https://ca.example/acme/acct/1";
/// The keyChange URL: the "url" of both the outer and the inner JWS.
pub const KEY_CHANGE_URL: &str = "https://ca.example/acme/key-change";
/// The newAccount URL: the outer "url" an external account binding must repeat.
pub const NEW_ACCOUNT_URL: &str = "https://ca.example/acme/new-account";
/// A nonce for headers that need one.
pub const NONCE: &str = "fuzz-nonce";
/// The MAC key the CA handed out for external account binding.
pub const EAB_HMAC_KEY: &[u8] = b"castellan-fuzz-eab-hmac-key-0123456789";
/// The EAB key identifier.
pub const EAB_KID: &str = "fuzz-eab-kid";

/// The account key (P-256): signs the outer keyChange JWS, is the old key, and is the key that a "kid" JWS in the
/// jws_parse target is verified with.
pub static ACCOUNT_KEY: LazyLock<SigningKey> = LazyLock::new(|| p256_key(0x11));
/// The account key's public JWK.
pub static ACCOUNT_JWK: LazyLock<Jwk> = LazyLock::new(|| public_jwk(&*ACCOUNT_KEY));

/// A P-256 key whose scalar is 32 copies of `byte` (any nonzero byte gives a scalar below the group order).
pub fn p256_key(byte: u8) -> SigningKey {
    match SigningKey::from_bytes(&[byte; 32].into()) {
        Ok(key) => key,
        // Reached only if a caller passes 0; a fixture mistake, not fuzz input.
        Err(e) => panic!("fixed P-256 scalar {byte:#04x} is invalid: {e}"),
    }
}

/// The public JWK of a fixed key.
pub fn public_jwk(key: &dyn JwsSigner) -> Jwk {
    match key.public_jwk() {
        Ok(jwk) => jwk,
        Err(e) => panic!("fixed key has no public JWK: {e}"),
    }
}

/// The account key as a ring key pair. The key_change target signs an outer JWS around every input; ring's
/// assembly signs about ten times faster than the sanitizer-instrumented p256 crate, and speed is coverage.
pub static ACCOUNT_KEY_RING: LazyLock<RingP256> = LazyLock::new(|| RingP256::new(&ACCOUNT_KEY));

/// A P-256 signing key backed by ring.
pub struct RingP256 {
    pair: EcdsaKeyPair,
    jwk: Jwk,
    rng: SystemRandom,
}

impl RingP256 {
    fn new(key: &SigningKey) -> Self {
        let rng = SystemRandom::new();
        let public = key.verifying_key().to_encoded_point(false);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            public.as_bytes(),
            &rng,
        );
        match pair {
            Ok(pair) => RingP256 { pair, jwk: public_jwk(key), rng },
            Err(e) => panic!("ring refused the fixed P-256 key: {e}"),
        }
    }
}

impl JwsSigner for RingP256 {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Es256
    }
    fn public_jwk(&self) -> Result<Jwk, SignError> {
        Ok(self.jwk.clone())
    }
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature = self.pair.sign(&self.rng, signing_input).map_err(|e| SignError::Signer(e.to_string()))?;
        Ok(signature.as_ref().to_vec())
    }
}
