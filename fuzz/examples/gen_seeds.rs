//! Writes the JSON seed corpora (corpus/jws_parse, corpus/eab, corpus/key_change): inputs that pass every check,
//! signed with the fixed keys of `castellan_fuzz`, one per supported key type. Each seed is checked to pass before
//! it is written. ECDSA here is RFC 6979 deterministic and the RSA key comes from a seeded RNG, so reruns write the
//! same bytes.
//!
//! Run through `fuzz/make-seeds`, which also writes the CSR seeds with openssl.

use std::fs;
use std::path::Path;

use castellan_acme_proto::{
    EabJws, FlattenedJws, Jws, JwsSigner, KeyRef, MacAlgorithm, ProtectedHeader, sign_eab, sign_flattened,
    verify_key_change,
};
use castellan_fuzz::{
    ACCOUNT_JWK, ACCOUNT_KEY, ACCOUNT_URL, EAB_HMAC_KEY, EAB_KID, KEY_CHANGE_URL, NEW_ACCOUNT_URL, NONCE, p256_key,
    public_jwk,
};
use rand::SeedableRng;
use serde_json::{Map, Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let p384 = p384::ecdsa::SigningKey::from_bytes(&[0x44; 48].into())?;
    let ed25519 = ed25519_dalek::SigningKey::from_bytes(&[0x33; 32]);
    let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::StdRng::seed_from_u64(8555), 2048)?;
    let new_p256 = p256_key(0x22);
    let others: [(&str, &dyn JwsSigner); 4] =
        [("es256", &new_p256), ("es384", &p384), ("eddsa", &ed25519), ("rs256", &rsa)];

    let dir = corpus.join("jws_parse");
    let new_account = json!({"termsOfServiceAgreed": true, "contact": ["mailto:admin@example.org"]});
    let eab = sign_eab(MacAlgorithm::Hs256, EAB_KID, NEW_ACCOUNT_URL, EAB_HMAC_KEY, &ACCOUNT_JWK);
    let new_account_eab = json!({"termsOfServiceAgreed": true, "externalAccountBinding": eab});
    let new_order = json!({"identifiers": [{"type": "dns", "value": "www.example.org"}]});
    let jwk_header = |key: &dyn JwsSigner| header(key, KeyRef::Jwk(public_jwk(key)), Some(NONCE), NEW_ACCOUNT_URL);
    let kid_header = |url: &str| header(&*ACCOUNT_KEY, KeyRef::Kid(ACCOUNT_URL.into()), Some(NONCE), url);
    let order_url = "https://ca.example/acme/new-order";
    let jws_seed = |name: &str, jws: FlattenedJws| -> Result<()> {
        let parsed = Jws::from_value(&serde_json::to_value(&jws)?)?;
        match parsed.header().jwk() {
            Some(_) => parsed.verify_embedded()?,
            None => parsed.verify_with(&ACCOUNT_JWK)?,
        };
        write(&dir, name, &jws)
    };
    jws_seed("new-account-eab-es256-jwk", sign(&jwk_header(&*ACCOUNT_KEY), &new_account_eab, &*ACCOUNT_KEY)?)?;
    jws_seed("new-order-es256-kid", sign(&kid_header(order_url), &new_order, &*ACCOUNT_KEY)?)?;
    jws_seed(
        "post-as-get-es256-kid",
        sign_flattened(&kid_header("https://ca.example/acme/order/1"), b"", &*ACCOUNT_KEY)?,
    )?;
    for (name, key) in others {
        jws_seed(&format!("new-account-{name}-jwk"), sign(&jwk_header(key), &new_account, key)?)?;
        write(&dir, &format!("jwk-{name}"), &public_jwk(key))?;
    }

    let dir = corpus.join("eab");
    for (name, alg) in [("hs256", MacAlgorithm::Hs256), ("hs384", MacAlgorithm::Hs384), ("hs512", MacAlgorithm::Hs512)]
    {
        let eab = sign_eab(alg, EAB_KID, NEW_ACCOUNT_URL, EAB_HMAC_KEY, &ACCOUNT_JWK);
        EabJws::from_value(&serde_json::to_value(&eab)?)?.verify(EAB_HMAC_KEY, &ACCOUNT_JWK, NEW_ACCOUNT_URL)?;
        write(&dir, &format!("eab-{name}"), &eab)?;
    }

    // The inner JWS of a keyChange: signed by the new key, carrying it in "jwk", no nonce, naming the account and
    // its old key.
    let dir = corpus.join("key_change");
    let change = json!({"account": ACCOUNT_URL, "oldKey": &*ACCOUNT_JWK});
    for (name, key) in others {
        let inner = header(key, KeyRef::Jwk(public_jwk(key)), None, KEY_CHANGE_URL);
        let inner = sign(&inner, &change, key)?;
        // The same outer JWS the key_change target builds around its input.
        let outer_header = header(&*ACCOUNT_KEY, KeyRef::Kid(ACCOUNT_URL.into()), Some(NONCE), KEY_CHANGE_URL);
        let outer = sign_flattened(&outer_header, &serde_json::to_vec(&inner)?, &*ACCOUNT_KEY)?;
        let outer = Jws::from_value(&serde_json::to_value(&outer)?)?.verify_with(&ACCOUNT_JWK)?;
        verify_key_change(&outer)?;
        write(&dir, &format!("key-change-{name}"), &inner)?;
    }
    Ok(())
}

fn header(key: &dyn JwsSigner, key_ref: KeyRef, nonce: Option<&str>, url: &str) -> ProtectedHeader {
    ProtectedHeader {
        alg: key.algorithm(),
        key: key_ref,
        nonce: nonce.map(str::to_owned),
        url: url.into(),
        extra: Map::new(),
    }
}

fn sign(header: &ProtectedHeader, payload: &Value, key: &dyn JwsSigner) -> Result<FlattenedJws> {
    Ok(sign_flattened(header, payload.to_string().as_bytes(), key)?)
}

fn write(dir: &Path, name: &str, value: &impl serde::Serialize) -> Result<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.json"));
    fs::write(&path, serde_json::to_vec(value)?)?;
    println!("wrote {}", path.display());
    Ok(())
}
