//! The HSM layer against a real SoftHSM2 token.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use castellan_hsm::testkit::{self, USER_PIN};
use castellan_hsm::{Hsm, HsmConfig, HsmError, KeySpec, PinSource, SignatureScheme, TokenSelector};
use der::{Decode, Encode};
use signature::{Keypair, Signer};
use spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey};

fn hsm() -> &'static Hsm {
    &testkit::shared().hsm
}

#[test]
fn generated_keys_are_sensitive_and_never_extractable() {
    for spec in [KeySpec::EcP256, KeySpec::EcP384, KeySpec::Rsa2048] {
        let label = testkit::unique_label(spec.name());
        let key = hsm().generate_key_pair(&label, spec).expect("generate");
        let protection = hsm().key_protection(&key).expect("read attributes");
        assert!(protection.token, "{spec}: CKA_TOKEN");
        assert!(protection.private, "{spec}: CKA_PRIVATE");
        assert!(protection.sensitive, "{spec}: CKA_SENSITIVE");
        assert!(!protection.extractable, "{spec}: CKA_EXTRACTABLE must be false");
        assert!(protection.never_extractable, "{spec}: CKA_NEVER_EXTRACTABLE");
        assert!(protection.always_sensitive, "{spec}: CKA_ALWAYS_SENSITIVE");
    }
}

#[test]
fn a_key_is_found_again_by_label_with_the_same_public_key() {
    let label = testkit::unique_label("find");
    let made = hsm().generate_key_pair(&label, KeySpec::EcP256).expect("generate");
    let found = hsm().find_key_pair(&label).expect("find");
    assert_eq!(found.spec, KeySpec::EcP256);
    assert_eq!(found.public_key, made.public_key);
    assert_eq!(found.id, made.id);
    assert!(matches!(hsm().generate_key_pair(&label, KeySpec::EcP256), Err(HsmError::KeyExists { .. })));
}

#[test]
fn a_key_is_found_by_its_cka_id_too() {
    let label = testkit::unique_label("by-id");
    let made = hsm().generate_key_pair(&label, KeySpec::EcP384).expect("generate");
    let found = hsm().find_key_pair_by_id(&made.id).expect("find by id");
    assert_eq!(found.label, label);
    assert_eq!(found.public_key, made.public_key);
    let err = hsm().find_key_pair_by_id(&[0xde, 0xad]).expect_err("no such id");
    assert!(matches!(err, HsmError::KeyNotFound { .. }), "{err}");
    assert!(err.to_string().contains("dead"), "{err}");
}

#[test]
fn ecdsa_signatures_verify_in_software() {
    for (spec, scheme) in
        [(KeySpec::EcP256, SignatureScheme::EcdsaSha256), (KeySpec::EcP384, SignatureScheme::EcdsaSha384)]
    {
        let key = hsm().generate_key_pair(&testkit::unique_label("ecdsa"), spec).expect("generate");
        let spki_der = key.public_key_der().expect("spki");
        let signer = hsm().signer(key);
        assert_eq!(signer.scheme(), scheme);
        let message = b"to be signed certificate";
        let signature: castellan_hsm::HsmSignature = signer.try_sign(message).expect("sign");
        match spec {
            KeySpec::EcP256 => {
                use p256::pkcs8::DecodePublicKey;
                let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der).expect("p256 key");
                let sig = p256::ecdsa::DerSignature::from_bytes(&signature.0).expect("DER signature");
                signature::Verifier::verify(&vk, message, &sig).expect("P-256 signature verifies");
                assert!(signature::Verifier::verify(&vk, b"other", &sig).is_err());
            }
            _ => {
                use p384::pkcs8::DecodePublicKey;
                let vk = p384::ecdsa::VerifyingKey::from_public_key_der(&spki_der).expect("p384 key");
                let sig = p384::ecdsa::DerSignature::from_bytes(&signature.0).expect("DER signature");
                signature::Verifier::verify(&vk, message, &sig).expect("P-384 signature verifies");
            }
        }
    }
}

#[test]
fn rsa_pkcs1_and_pss_signatures_verify_in_software() {
    use rsa::pkcs8::DecodePublicKey;
    let key = hsm().generate_key_pair(&testkit::unique_label("rsa"), KeySpec::Rsa2048).expect("generate");
    let public = rsa::RsaPublicKey::from_public_key_der(&key.public_key_der().expect("spki")).expect("rsa");
    let message = b"to be signed";

    let pkcs1 = hsm().signer_with_scheme(key.clone(), SignatureScheme::RsaPkcs1Sha256).expect("scheme");
    let sig = pkcs1.sign(message).expect("sign");
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public.clone());
    let sig = rsa::pkcs1v15::Signature::try_from(sig.0.as_slice()).expect("sig");
    signature::Verifier::verify(&vk, message, &sig).expect("PKCS#1 v1.5 verifies");

    let pss = hsm().signer_with_scheme(key.clone(), SignatureScheme::RsaPssSha256).expect("scheme");
    let sig = pss.sign(message).expect("sign");
    let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(public);
    let sig = rsa::pss::Signature::try_from(sig.0.as_slice()).expect("sig");
    signature::Verifier::verify(&vk, message, &sig).expect("PSS verifies");

    assert!(hsm().signer_with_scheme(key, SignatureScheme::EcdsaSha256).is_err());
}

#[test]
fn the_signer_drives_x509_certs_builder() {
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    let key = hsm().generate_key_pair(&testkit::unique_label("builder"), KeySpec::EcP256).expect("generate");
    let signer = hsm().signer(key.clone());
    let subject: x509_cert::name::Name = "CN=Builder Test".parse().expect("name");
    let validity = x509_cert::time::Validity::from_now(std::time::Duration::from_secs(3600)).expect("validity");
    let builder = CertificateBuilder::new(
        Profile::Root,
        x509_cert::serial_number::SerialNumber::from(7u32),
        validity,
        subject,
        key.public_key.clone(),
        &signer,
    )
    .expect("builder");
    let cert = builder.build::<castellan_hsm::HsmSignature>().expect("signed by the HSM");
    let der = cert.to_der().expect("encode");
    let parsed = x509_cert::Certificate::from_der(&der).expect("parse");
    assert_eq!(parsed.tbs_certificate.subject_public_key_info, key.public_key);
    assert_eq!(parsed.signature_algorithm, signer.signature_algorithm_identifier().expect("alg"));
    // The self-signed certificate verifies under its own (token) public key.
    use p256::pkcs8::DecodePublicKey;
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(
        signer.verifying_key().to_public_key_der().expect("spki").as_bytes(),
    )
    .expect("key");
    let tbs = parsed.tbs_certificate.to_der().expect("tbs");
    let sig = p256::ecdsa::DerSignature::from_bytes(parsed.signature.raw_bytes()).expect("sig");
    signature::Verifier::verify(&vk, &tbs, &sig).expect("verifies");
}

#[test]
fn sealed_secrets_open_only_for_their_purpose_and_owner() {
    let kek = hsm().find_or_create_kek(&testkit::unique_label("kek")).expect("kek");
    let again = hsm().find_or_create_kek(&kek.label).expect("found, not re-created");
    assert_eq!(again.id, kek.id);
    let secret = b"-----BEGIN PRIVATE KEY----- pretend";
    let sealed = hsm().seal(&kek, "leaf-key", "cert-42", secret).expect("seal");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret), "ciphertext must not contain the secret");
    let opened = hsm().unseal(&kek, "leaf-key", "cert-42", &sealed).expect("open");
    assert_eq!(opened.as_slice(), secret);

    assert!(matches!(hsm().unseal(&kek, "leaf-key", "cert-43", &sealed), Err(HsmError::SealOpenFailed)));
    assert!(matches!(hsm().unseal(&kek, "eab-hmac", "cert-42", &sealed), Err(HsmError::SealOpenFailed)));
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(hsm().unseal(&kek, "leaf-key", "cert-42", &flipped), Err(HsmError::SealOpenFailed)));
    assert!(matches!(hsm().unseal(&kek, "leaf-key", "cert-42", b"CSL1"), Err(HsmError::SealedMalformed(_))));
    assert!(matches!(hsm().unseal(&kek, "leaf-key", "cert-42", b"garbage"), Err(HsmError::SealedMalformed(_))));

    let other = hsm().create_kek(&testkit::unique_label("kek")).expect("second kek");
    assert!(matches!(hsm().unseal(&other, "leaf-key", "cert-42", &sealed), Err(HsmError::SealOpenFailed)));
}

#[test]
fn a_wrong_pin_is_refused_clearly() {
    let token = testkit::shared();
    let err = Hsm::open(&token.spare_config("not-the-pin")).expect_err("wrong PIN must fail");
    assert!(matches!(err, HsmError::WrongPin), "got {err}");
    assert!(err.to_string().contains("PIN"));
    // The right PIN still works afterwards.
    Hsm::open(&token.spare_config(USER_PIN)).expect("right PIN");
}

#[test]
fn a_missing_module_is_refused_clearly() {
    let config = HsmConfig {
        module: "/nonexistent/libpkcs11.so".into(),
        token: TokenSelector::Label("x".into()),
        pin: PinSource::Env("CASTELLAN_TEST_UNSET_PIN".into()),
    };
    let err = Hsm::open(&config).expect_err("must fail");
    assert!(matches!(err, HsmError::ModuleNotFound { .. }), "got {err}");
    assert!(err.to_string().contains("/nonexistent/libpkcs11.so"));
}

#[test]
fn a_missing_key_token_or_pin_is_refused_clearly() {
    let err = hsm().find_key_pair("no-such-key").expect_err("must fail");
    assert!(matches!(err, HsmError::KeyNotFound { .. }), "got {err}");
    assert!(err.to_string().contains("no-such-key"));

    let token = testkit::shared();
    let mut config = token.config.clone();
    config.token = TokenSelector::Label("no-such-token".into());
    let err = Hsm::open(&config).expect_err("must fail");
    assert!(matches!(err, HsmError::TokenNotFound { .. }), "got {err}");
    assert!(err.to_string().contains(testkit::TOKEN_LABEL), "lists the tokens present: {err}");

    let mut config = token.config.clone();
    config.pin = PinSource::Env("CASTELLAN_TEST_UNSET_PIN".into());
    let err = Hsm::open(&config).expect_err("must fail");
    assert!(matches!(err, HsmError::PinUnavailable(_)), "got {err}");
}

#[test]
fn many_threads_sign_at_once_through_the_pool() {
    let key = hsm().generate_key_pair(&testkit::unique_label("pool"), KeySpec::EcP256).expect("generate");
    let signer = std::sync::Arc::new(hsm().signer(key));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    signer.sign(format!("{i}-{j}").as_bytes()).expect("sign");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert!(hsm().session_capacity() >= 1);
}

#[tokio::test]
async fn async_callers_sign_off_the_runtime() {
    let label = testkit::unique_label("async");
    let sig = hsm()
        .run(move |hsm| {
            let key = hsm.generate_key_pair(&label, KeySpec::EcP256)?;
            hsm.signer(key).sign(b"async")
        })
        .await
        .expect("sign on the blocking pool");
    assert!(!sig.0.is_empty());
}

#[test]
fn a_lost_login_is_recovered_by_the_pool() {
    let hsm = Hsm::open(&testkit::shared().relogin_config()).expect("open");
    let key = hsm.generate_key_pair(&testkit::unique_label("relogin"), KeySpec::EcP256).expect("generate");
    let signer = hsm.signer(key);
    signer.sign(b"before").expect("sign while logged in");
    hsm.log_out_for_tests().expect("log out");
    // The first sign after the logout meets CKR_USER_NOT_LOGGED_IN (or, with the key hidden, an invalid key
    // handle); the pool logs in again on the same session and retries, so the caller never sees it.
    signer.sign(b"after").expect("sign after the login was lost");
    signer.sign(b"and again").expect("still logged in");
}

#[test]
fn sessions_racing_to_create_the_kek_all_get_the_same_one() {
    let label = testkit::unique_label("kek-race");
    let ids: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4).map(|_| scope.spawn(|| hsm().find_or_create_kek(&label).expect("kek"))).collect();
        racers.into_iter().map(|r| r.join().expect("racer").id).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one KEK: {ids:?}");
}
