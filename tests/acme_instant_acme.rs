//! instant-acme, a Rust ACME client, against `castellan serve`: the full flow with profiles, ARI renewal
//! information and `replaces`, key rollover, authorization and account deactivation.

// A test crate: its helpers fail the test that called them, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::acme::Acme;
use common::split_leaf;
use der::Decode;
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy, RevocationReason, RevocationRequest,
};
use rustls::pki_types::{CertificateDer, Der};
use std::time::Duration;

fn retries() -> RetryPolicy {
    RetryPolicy::default().timeout(Duration::from_secs(30))
}

/// Answers every http-01 challenge of the order through the test responder and waits until it is ready.
async fn authorize(acme: &Acme, order: &mut instant_acme::Order) {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.expect("authorization");
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let mut challenge = authz.challenge(ChallengeType::Http01).expect("an http-01 challenge");
        acme.responder.serve(&challenge.token, challenge.key_authorization().as_str());
        challenge.set_ready().await.expect("set_ready");
    }
    assert_eq!(order.poll_ready(&retries()).await.expect("poll_ready"), OrderStatus::Ready);
}

/// RFC 9773's certID of the leaf, computed from the chain with x509-cert.
fn cert_id(chain_pem: &str) -> (CertificateIdentifier<'static>, Vec<u8>) {
    let (leaf, issuer) = split_leaf(chain_pem);
    let leaf_der = der::pem::decode_vec(leaf.as_bytes()).expect("leaf pem").1;
    let issuer_der = der::pem::decode_vec(issuer.as_bytes()).expect("issuer pem").1;
    let leaf_cert = x509_cert::Certificate::from_der(&leaf_der).expect("leaf");
    let issuer_cert = x509_cert::Certificate::from_der(&issuer_der).expect("issuer");
    let aki = castellan_ca::extensions::issuer_key_id(&issuer_cert).expect("aki");
    let serial = leaf_cert.tbs_certificate.serial_number.as_bytes().to_vec();
    (CertificateIdentifier::new(Der::from_slice(&aki), Der::from_slice(&serial)).into_owned(), leaf_der)
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_issues_renews_with_ari_rolls_keys_and_deactivates() {
    let acme = Acme::start("");
    let directory = acme.server.url("/acme/directory");
    let (mut account, _) = Account::builder_with_root(&acme.ca)
        .expect("builder")
        .create(
            &NewAccount {
                contact: &["mailto:ops@castellan.test"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            None,
        )
        .await
        .expect("account");
    let profiles: Vec<String> = account.profiles().map(|p| p.name.to_owned()).collect();
    assert!(profiles.contains(&"tls-server".to_owned()) && profiles.contains(&"tls-client".to_owned()), "{profiles:?}");

    // Issue under the tls-client profile; instant-acme makes the key and CSR (rcgen).
    let identifiers = [Identifier::Ip("127.0.0.1".parse().expect("ip"))];
    let mut order = account.new_order(&NewOrder::new(&identifiers).profile("tls-client")).await.expect("order");
    authorize(&acme, &mut order).await;
    let _key = order.finalize().await.expect("finalize");
    let chain = order.poll_certificate(&retries()).await.expect("certificate");
    let (id, leaf_der) = cert_id(&chain);
    let leaf = x509_cert::Certificate::from_der(&leaf_der).expect("leaf");
    let eku = leaf
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .expect("EKU");
    assert!(
        eku.extn_value.as_bytes().windows(8).any(|w| w == [0x2b, 6, 1, 5, 5, 7, 3, 2]),
        "the tls-client profile gives clientAuth"
    );

    // ARI: a window in the certificate's future, and Retry-After.
    let (info, retry_after) = account.renewal_info(&id).await.expect("renewal info");
    assert!(info.suggested_window.start > time::OffsetDateTime::now_utc(), "{info:?}");
    assert!(retry_after > Duration::from_secs(3600), "{retry_after:?}");

    // Renewal that replaces it, once: a second order replacing the same certificate is refused.
    let mut renewal = account.new_order(&NewOrder::new(&identifiers).replaces(id.clone())).await.expect("renewal");
    let again = account.new_order(&NewOrder::new(&identifiers).replaces(id.clone())).await;
    let problem = format!("{:?}", again.err().expect("a second replacement is refused"));
    assert!(problem.contains("alreadyReplaced"), "{problem}");
    authorize(&acme, &mut renewal).await;
    renewal.finalize().await.expect("finalize renewal");
    let renewed = renewal.poll_certificate(&retries()).await.expect("renewed certificate");
    let (_, renewed_der) = cert_id(&renewed);
    assert_ne!(renewed_der, leaf_der);

    // Key rollover, then the account works with the new key.
    let _credentials = account.update_key().await.expect("key rollover");
    account.update_contacts(&["mailto:security@castellan.test"]).await.expect("contacts after rollover");

    // Revocation with the rolled-over account, then the old certificate is due for renewal.
    let revoked = CertificateDer::from(leaf_der.clone());
    account
        .revoke(&RevocationRequest { certificate: &revoked, reason: Some(RevocationReason::Superseded) })
        .await
        .expect("revoke");
    let (info, _) = account.renewal_info(&id).await.expect("renewal info after revocation");
    assert!(info.suggested_window.end < time::OffsetDateTime::now_utc(), "{info:?}");

    // Authorization deactivation.
    let mut order =
        account.new_order(&NewOrder::new(&[Identifier::Dns("deact.castellan.test".into())])).await.expect("order");
    {
        let mut authorizations = order.authorizations();
        let mut authz = authorizations.next().await.expect("one").expect("authorization");
        authz.deactivate().await.expect("deactivate authorization");
    }
    let state = order.refresh().await.expect("refresh");
    assert_eq!(state.status, OrderStatus::Invalid);

    // Account deactivation: afterwards nothing is allowed.
    account.deactivate().await.expect("deactivate account");
    let log = acme.server.log();
    assert!(!log.contains("panicked"), "{log}");
}
