//! The status service over a SoftHSM2 CA and a SQLite store: the CRL follows revocations with increasing numbers,
//! OCSP answers good / revoked / unknown from a cache that costs one signature per certificate, nonces get fresh
//! signatures, malformed requests get malformedRequest, and the responder certificate survives a restart.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use castellan_authority::testkit::{self, TestAuthority};
use castellan_store::CertificateId;
use castellan_store::inventory::{CertificateSource, NewCertificate};
use castellan_store::revocation::ReasonCode;
use der::{Decode, Encode};
use sha2::Sha256;
use std::time::Instant;
use tower::ServiceExt;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request as OcspReq,
};

const ACTOR: &str = "status-test";

struct Fixture {
    test: TestAuthority,
    state_dir: tempfile::TempDir,
}

fn config() -> StatusConfig {
    StatusConfig { crl_batch_secs: 0, poll_interval_ms: 100, ..StatusConfig::default() }
}

/// A CA with keys in the test token, a fresh SQLite store, and a manual clock.
async fn fixture() -> Fixture {
    Fixture { test: testkit::authority(Clock::manual_now()).await, state_dir: tempfile::tempdir().expect("tempdir") }
}

impl Fixture {
    fn authority(&self) -> &Authority {
        &self.test.authority
    }

    fn store(&self) -> &castellan_store::Store {
        self.test.authority.store()
    }

    async fn start(&self) -> Status {
        Status::start(StatusSetup {
            authority: self.authority().clone(),
            config: config(),
            state_dir: self.state_dir.path().to_owned(),
            crl_url: Some("http://ca.example/crl/1.crl".into()),
            ocsp_url: None,
        })
        .await
        .expect("start the status service")
    }

    /// An issued certificate in the inventory (the DER is a stand-in: status is all that matters here).
    async fn issued(&self) -> (CertificateId, SerialNumber) {
        let ca = self.authority().ca();
        let serial_bytes: Vec<u8> = std::iter::once(1u8).chain(rand::random::<[u8; 16]>()).collect();
        let now = self.store().now();
        let cert = NewCertificate {
            issuer_id: Some(ca.issuer_id),
            issuer_key_id: ca.issuer_key_id.clone(),
            issuer_dn: ca.issuer_dn.clone(),
            serial: hex::encode(&serial_bytes),
            source: CertificateSource::InternalAcme,
            profile: Some("tls-server".into()),
            subject: String::new(),
            names: vec!["DNS:status.example".into()],
            tbs_sha256: rand::random::<[u8; 32]>().to_vec(),
            spki_sha256: rand::random::<[u8; 32]>().to_vec(),
            not_before: now,
            not_after: now + 86_400,
            account_id: None,
            owner: None,
            replaces_id: None,
        };
        let der = format!("certificate {}", cert.serial).into_bytes();
        let sha = rand::random::<[u8; 32]>().to_vec();
        let id = self.store().insert_certificate(&cert, &der, &sha).await.expect("insert");
        (id, SerialNumber::new(&serial_bytes).expect("serial"))
    }

    fn request(&self, serial: &SerialNumber, nonce: Option<&[u8]>) -> Vec<u8> {
        let id =
            CertId::from_issuer::<Sha256>(self.authority().ca().issuer.certificate(), serial.clone()).expect("cert id");
        request_for(vec![id], nonce)
    }
}

fn request_for(ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    use x509_cert::ext::AsExtension;
    let request_extensions = nonce.map(|n| {
        let ext = x509_ocsp::ext::Nonce::new(n.to_vec()).expect("nonce");
        vec![ext.to_extension(&x509_cert::name::Name::default(), &[]).expect("extension")]
    });
    let tbs_request = x509_ocsp::TbsRequest {
        version: x509_ocsp::Version::V1,
        requestor_name: None,
        request_list: ids.into_iter().map(|req_cert| OcspReq { req_cert, single_request_extensions: None }).collect(),
        request_extensions,
    };
    OcspRequest { tbs_request, optional_signature: None }.to_der().expect("encode request")
}

/// The response's status code, and its BasicOCSPResponse when successful (its signature checked).
fn decode(der: &[u8]) -> (OcspResponseStatus, Option<BasicOcspResponse>) {
    let response = OcspResponse::from_der(der).expect("an OCSPResponse");
    let basic = response.response_bytes.map(|bytes| {
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
        let signer: &Certificate = &basic.certs.as_ref().expect("certs")[0];
        let tbs = basic.tbs_response_data.to_der().expect("tbs");
        castellan_ca::key::verify_signature(
            &signer.tbs_certificate.subject_public_key_info,
            &basic.signature_algorithm,
            &tbs,
            basic.signature.as_bytes().expect("bits"),
        )
        .expect("the response verifies under the responder certificate");
        basic
    });
    (response.response_status, basic)
}

fn cert_status(der: &[u8]) -> CertStatus {
    let (status, basic) = decode(der);
    assert_eq!(status, OcspResponseStatus::Successful);
    basic.expect("basic").tbs_response_data.responses[0].cert_status
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ocsp_answers_from_cache_and_follows_revocations() {
    let fx = fixture().await;
    let status = fx.start().await;
    let (id, serial) = fx.issued().await;
    let request = fx.request(&serial, None);

    let first = status.answer_ocsp(&request).await;
    assert!(matches!(cert_status(&first.der), CertStatus::Good(_)));
    assert!(first.cache.is_some());
    let signatures = status.ocsp_signatures();
    for _ in 0..20 {
        assert_eq!(status.answer_ocsp(&request).await.der, first.der, "served from the cache");
    }
    assert_eq!(status.ocsp_signatures(), signatures, "no signature per request");

    // A nonce gets a fresh signature that echoes it; the cache is untouched.
    let nonce = [0x5a; 16];
    let fresh = status.answer_ocsp(&fx.request(&serial, Some(&nonce))).await;
    let (_, basic) = decode(&fresh.der);
    let echoed = basic.expect("basic").nonce().expect("nonce echoed");
    assert_eq!(echoed.0.as_bytes(), nonce);
    assert!(fresh.cache.is_none());
    assert_eq!(status.ocsp_signatures(), signatures + 1);
    assert_eq!(status.answer_ocsp(&request).await.der, first.der);

    // Revoked elsewhere (the store directly, as the CLI or another replica would): the watch drops the entry.
    fx.store().revoke_certificate(id, ReasonCode::new(1).expect("reason"), "admin", ACTOR).await.expect("revoke");
    eventually("OCSP to say revoked", async || {
        matches!(cert_status(&status.answer_ocsp(&request).await.der), CertStatus::Revoked(_))
    })
    .await;
    let CertStatus::Revoked(info) = cert_status(&status.answer_ocsp(&request).await.der) else { unreachable!() };
    assert_eq!(info.revocation_reason, Some(x509_cert::ext::pkix::CrlReason::KeyCompromise));

    // Never issued: unknown. Another issuer: unauthorized.
    let never = SerialNumber::new(&[1, 2, 3, 4]).expect("serial");
    assert!(matches!(cert_status(&status.answer_ocsp(&fx.request(&never, None)).await.der), CertStatus::Unknown(_)));
    let mut foreign =
        CertId::from_issuer::<Sha256>(fx.authority().ca().issuer.certificate(), serial.clone()).expect("id");
    foreign.issuer_key_hash = der::asn1::OctetString::new(vec![0; 32]).expect("octets");
    let (code, _) = decode(&status.answer_ocsp(&request_for(vec![foreign], None)).await.der);
    assert_eq!(code, OcspResponseStatus::Unauthorized);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_malformed_request() {
    let fx = fixture().await;
    let status = fx.start().await;
    let (_, serial) = fx.issued().await;
    let id = CertId::from_issuer::<Sha256>(fx.authority().ca().issuer.certificate(), serial).expect("id");
    let two = request_for(vec![id.clone(), id], None);
    for bad in [&b""[..], b"\x30\x03\x02\x01", b"garbage", &two] {
        let (code, basic) = decode(&status.answer_ocsp(bad).await.der);
        assert_eq!(code, OcspResponseStatus::MalformedRequest);
        assert!(basic.is_none());
    }
    let signatures = status.ocsp_signatures();
    let router = status.router();
    for uri in ["/ocsp/%%%", "/ocsp/!!!", "/ocsp"] {
        let response = router.clone().oneshot(Request::get(uri).body(Body::empty()).expect("request")).await;
        let response = response.expect("response");
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/ocsp-response");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert_eq!(decode(&body).0, OcspResponseStatus::MalformedRequest, "{uri}");
    }
    assert_eq!(status.ocsp_signatures(), signatures, "nothing signed for malformed requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_routes_serve_crl_and_ocsp_with_caching_headers() {
    let fx = fixture().await;
    let status = fx.start().await;
    let (_, serial) = fx.issued().await;
    let router = status.router();
    let crl_uri = crl_path(&fx.authority().ca().issuer_key_id);
    for uri in [crl_uri.as_str(), "/crl/1.crl"] {
        let response = router.clone().oneshot(Request::get(uri).body(Body::empty()).expect("req")).await.expect("resp");
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/pkix-crl");
        let cache = response.headers()[header::CACHE_CONTROL].to_str().expect("ascii").to_owned();
        assert!(cache.starts_with("public, max-age=") && cache.contains("60"), "{cache}");
        let etag = response.headers()[header::ETAG].clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        CertificateList::from_der(&body).expect("a DER CRL");
        let again = Request::get(uri).header(header::IF_NONE_MATCH, etag).body(Body::empty()).expect("req");
        assert_eq!(router.clone().oneshot(again).await.expect("resp").status(), StatusCode::NOT_MODIFIED);
    }

    let request = fx.request(&serial, None);
    let post = Request::post("/ocsp")
        .header(header::CONTENT_TYPE, "application/ocsp-request")
        .body(Body::from(request.clone()))
        .expect("req");
    let response = router.clone().oneshot(post).await.expect("resp");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/ocsp-response");
    let posted = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
    let escaped = encoded.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    for path in [format!("/ocsp/{escaped}"), format!("/ocsp/{encoded}")] {
        let response =
            router.clone().oneshot(Request::get(&path).body(Body::empty()).expect("req")).await.expect("resp");
        let cache = response.headers()[header::CACHE_CONTROL].to_str().expect("ascii").to_owned();
        assert!(cache.starts_with("public, max-age="), "{cache}");
        assert!(response.headers().contains_key(header::LAST_MODIFIED));
        let got = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert_eq!(got, posted, "GET and POST share the cached response");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_crl_follows_revocations_with_increasing_numbers() {
    let fx = fixture().await;
    let status = fx.start().await;
    let first = status.current_crl();
    assert_eq!((first.number, first.entries), (1, 0));
    let (id, serial) = fx.issued().await;
    fx.store().revoke_certificate(id, ReasonCode::new(4).expect("reason"), "admin", ACTOR).await.expect("revoke");
    eventually("the CRL to list the revocation", async || status.current_crl().entries == 1).await;
    let crl = status.current_crl();
    assert!(crl.number > first.number);
    let list = CertificateList::from_der(&crl.der).expect("DER CRL");
    let issuer = fx.authority().ca().issuer.certificate();
    castellan_ca::key::verify_signature(
        &issuer.tbs_certificate.subject_public_key_info,
        &list.signature_algorithm,
        &list.tbs_cert_list.to_der().expect("tbs"),
        list.signature.as_bytes().expect("bits"),
    )
    .expect("signed by the issuing key");
    let revoked = list.tbs_cert_list.revoked_certificates.expect("entries");
    assert_eq!(revoked[0].serial_number, serial);
    let next = list.tbs_cert_list.next_update.expect("nextUpdate").to_system_time();
    let this = list.tbs_cert_list.this_update.to_system_time();
    assert_eq!(next.duration_since(this).expect("later"), Duration::from_secs(config().crl_next_update_secs));

    // Numbers keep increasing across a restart: they come from the store.
    drop(status);
    let restarted = fx.start().await;
    assert!(restarted.current_crl().number > crl.number);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_responder_certificate_is_recorded_and_reused_across_restarts() {
    let fx = fixture().await;
    let status = fx.start().await;
    let (_, serial) = fx.issued().await;
    let (_, basic) = decode(&status.answer_ocsp(&fx.request(&serial, None)).await.der);
    let responder = basic.expect("basic").certs.expect("certs").remove(0);
    let first_serial = hex::encode(responder.tbs_certificate.serial_number.as_bytes());
    let row = fx.store().certificates_with_serial(&first_serial).await.expect("inventory");
    assert_eq!(row.len(), 1);
    assert_eq!(row[0].profile.as_deref(), Some(castellan_ca::RESPONDER_PROFILE));
    let eku = responder
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id == const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK);
    assert!(eku, "id-pkix-ocsp-nocheck");

    let again = fx.start().await;
    let (_, basic) = decode(&again.answer_ocsp(&fx.request(&serial, None)).await.der);
    let reused = basic.expect("basic").certs.expect("certs").remove(0);
    assert_eq!(reused, responder, "the remembered certificate and key are reused");
    let audit = fx.store().audit_tail(50).await.expect("audit");
    let issued = audit.iter().filter(|e| e.action == "certificate.issue" && e.subject == first_serial).count();
    assert_eq!(issued, 1);
}

#[test]
fn inconsistent_settings_are_refused() {
    assert!(StatusConfig::default().check().is_ok());
    let refused = |c: StatusConfig| matches!(c.check(), Err(StatusError::Config(_)));
    assert!(refused(StatusConfig { crl_next_update_secs: 3600, ..StatusConfig::default() }));
    assert!(refused(StatusConfig { crl_batch_secs: 61, ..StatusConfig::default() }));
    assert!(refused(StatusConfig { ocsp_refresh_secs: 0, ..StatusConfig::default() }));
    assert!(refused(StatusConfig { responder_lifetime_secs: 3600, ..StatusConfig::default() }));
    assert!(refused(StatusConfig { responder_lifetime_secs: 365 * 86_400, ..StatusConfig::default() }));
    assert!(refused(StatusConfig { poll_interval_ms: 0, ..StatusConfig::default() }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_responder_certificate_signs_from_then_on() {
    let fx = fixture().await;
    let status = fx.start().await;
    let (_, serial) = fx.issued().await;
    let request = fx.request(&serial, None);
    let responder_of = |der: &[u8]| decode(der).1.expect("basic").certs.expect("certs").remove(0);
    let first = responder_of(&status.answer_ocsp(&request).await.der);
    // Two thirds into the responder's life: the renewal loop issues a new certificate, and the cached responses
    // signed with the old key are dropped, so the next answer is signed by the new one.
    fx.authority().clock().advance(Duration::from_secs(config().responder_lifetime_secs * 2 / 3 + 60));
    eventually("answers signed by the renewed responder", async || {
        responder_of(&status.answer_ocsp(&request).await.der) != first
    })
    .await;
    let renewed = responder_of(&status.answer_ocsp(&request).await.der);
    assert!(
        renewed.tbs_certificate.validity.not_after.to_system_time()
            > first.tbs_certificate.validity.not_after.to_system_time()
    );
}
