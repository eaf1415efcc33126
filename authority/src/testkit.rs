//! An authority for tests: a root and an intermediate with keys in the process's SoftHSM2 test token, a fresh
//! SQLite store, and the clock the test gives (a manual one, moved instead of sleeping).

// Test support: a broken test machine fails the test that asked, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{Authority, Clock, IssuingCa};
use castellan_ca::{AuthorityUrls, Issuer, NameConstraintSpec, Profiles};
use castellan_hsm::{HsmSignature, KeySpec, testkit as hsm_testkit};
use castellan_store::testkit::{self, TestStore};
use der::Encode;
use std::sync::Arc;
use std::time::Duration;

/// The authority and what keeps it alive (the SQLite file's directory).
pub struct TestAuthority {
    pub authority: Authority,
    pub store: TestStore,
    /// The issuing key's label in the token (a test may take it away to see signing fail).
    pub intermediate_key: String,
}

/// A CA valid from an hour before `clock`'s now for a year, leaves pointing at `http://status.test`.
pub async fn authority(clock: Clock) -> TestAuthority {
    authority_on(testkit::memory().await, clock).await
}

/// The same CA over the given test store (PostgreSQL, for tests of replicas).
pub async fn authority_on(store: TestStore, clock: Clock) -> TestAuthority {
    let hsm = hsm_testkit::shared().hsm.clone();
    let root_key = hsm.generate_key_pair(&hsm_testkit::unique_label("test-root"), KeySpec::EcP256).expect("key");
    let root_signer = hsm.signer(root_key);
    let year = Duration::from_secs(365 * 86_400);
    // Valid from an hour before the clock's now, so the clock may stand at any second of it.
    let from = clock.now() - Duration::from_secs(3600);
    let root = castellan_ca::self_signed_root::<_, HsmSignature>(
        &root_signer,
        "CN=Test Root".parse().expect("dn"),
        year,
        from,
    )
    .expect("root");
    let intermediate_key = hsm_testkit::unique_label("test-int");
    let int_key = hsm.generate_key_pair(&intermediate_key, KeySpec::EcP256).expect("key");
    let intermediate = castellan_ca::sign_intermediate::<_, HsmSignature>(
        &root_signer,
        &root,
        &int_key.public_key,
        "CN=Test Intermediate".parse().expect("dn"),
        year,
        &NameConstraintSpec::default(),
        from,
    )
    .expect("intermediate");
    let urls = AuthorityUrls {
        crl: Some("http://status.test/crl/1.crl".into()),
        ocsp: Some("http://status.test/ocsp".into()),
        ca_issuers: None,
    };
    let issuer =
        Issuer::new::<HsmSignature>(hsm.signer(int_key), vec![intermediate.clone()], &urls, Profiles::default())
            .expect("issuer");
    let issuer_id = crate::issuing::register_issuers(
        &store.store,
        &root,
        Some("test-root"),
        &intermediate,
        &intermediate_key,
        hsm_testkit::TOKEN_LABEL,
    )
    .await
    .expect("issuers");
    let root_pem = castellan_ca::certificate_pem(&root.to_der().expect("der")).expect("pem");
    let chain_pem =
        format!("{}{root_pem}", castellan_ca::certificate_pem(&intermediate.to_der().expect("der")).expect("pem"));
    let ca = IssuingCa {
        issuer: Arc::new(issuer),
        issuer_id,
        issuer_key_id: castellan_ca::extensions::issuer_key_id(&intermediate).expect("key id"),
        issuer_dn: intermediate.tbs_certificate.subject.to_string(),
        root,
        intermediate,
        root_pem,
        chain_pem,
    };
    TestAuthority { authority: Authority::new(store.store.clone(), clock, ca), store, intermediate_key }
}
