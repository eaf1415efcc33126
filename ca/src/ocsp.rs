//! OCSP request parsing and response signing primitives (RFC 6960).
//!
//! This module speaks the wire format only: it parses a request into CertIDs and a nonce, and signs a
//! BasicOCSPResponse for statuses someone else looked up. HTTP transport, caching, and deciding which issuer a
//! CertID belongs to (with [`issuer_matches`]) are the responder's job. Requests are not required to be signed, and
//! a request signature, if present, is ignored: OCSP status is public information.

use std::collections::HashSet;
use std::time::SystemTime;

use const_oid::AssociatedOid;
use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use const_oid::db::rfc6960::{ID_PKIX_OCSP_NOCHECK, ID_PKIX_OCSP_NONCE};
use der::asn1::{GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode, EncodeValue, FixedTag, Length, Tag, Writer};
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::{Keypair, Signer};
use spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse, Version,
};

use crate::crl::{RevocationReason, sha1};

/// RFC 9654 §2.1 (which obsoletes RFC 8954's 32): `Nonce ::= OCTET STRING(SIZE(1..128))`, and a responder MUST answer
/// `malformedRequest` to a nonce of 0 or more than 128 octets.
pub const MAX_NONCE_LEN: usize = 128;

/// What exactly was wrong with a request; all of these are answered with `malformedRequest`.
#[derive(Debug, thiserror::Error)]
pub enum RequestProblem {
    #[error("not a DER OCSPRequest: {0}")]
    Der(der::Error),
    #[error("requestList is empty")]
    NoCertIds,
    #[error("nonce extension value is not an OCTET STRING: {0}")]
    NonceNotOctetString(der::Error),
    #[error("nonce is {0} octets; RFC 9654 allows 1 to 128")]
    NonceLength(usize),
    #[error("extension {0} appears more than once")]
    DuplicateExtension(ObjectIdentifier),
    #[error("critical extension {0} is not supported")]
    UnsupportedCriticalExtension(ObjectIdentifier),
}

#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    #[error("malformed OCSP request: {0}")]
    MalformedRequest(RequestProblem),
    #[error("the signer's public key is not the responder certificate's subject public key")]
    SignerMismatch,
    #[error("a response must answer at least one CertID")]
    NoResponses,
    #[error("nextUpdate must be later than thisUpdate")]
    NextUpdateNotAfterThisUpdate,
    #[error("nonce is {0} octets; RFC 9654 allows 1 to 128")]
    NonceLength(usize),
    #[error("reason {0} does not describe a revocation (removeFromCRL belongs only in delta CRLs)")]
    InvalidRevocationReason(RevocationReason),
    #[error("time cannot be represented as GeneralizedTime: {0}")]
    TimeOutOfRange(der::Error),
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error("signer public key: {0}")]
    PublicKey(#[from] spki::Error),
    #[error("signing failed: {0}")]
    Signature(#[from] signature::Error),
}

impl OcspError {
    /// The OCSPResponseStatus an HTTP layer should answer with when this error stops a request.
    pub fn response_status(&self) -> OcspErrorStatus {
        match self {
            Self::MalformedRequest(_) => OcspErrorStatus::MalformedRequest,
            _ => OcspErrorStatus::InternalError,
        }
    }
}

/// The unsuccessful OCSPResponseStatus values (RFC 6960 §4.2.1). `successful` is absent on purpose: it must carry a
/// signed response, which [`error_response`] cannot make.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OcspErrorStatus {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// The parts of a request a responder acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    pub cert_ids: Vec<CertId>,
    /// The nonce octets (the inner OCTET STRING's contents), to echo with [`sign_response`].
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER OCSPRequest. Anything the responder cannot answer faithfully is `MalformedRequest`.
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    let malformed = OcspError::MalformedRequest;
    // `from_der` also rejects trailing bytes after the request.
    let req = OcspRequest::from_der(der).map_err(|e| malformed(RequestProblem::Der(e)))?;
    let tbs = req.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(malformed(RequestProblem::NoCertIds));
    }
    for single in &tbs.request_list {
        check_extensions(single.single_request_extensions.as_deref().unwrap_or_default())?;
    }
    let extensions = tbs.request_extensions.unwrap_or_default();
    check_extensions(&extensions)?;
    let nonce = match extensions.iter().find(|e| e.extn_id == ID_PKIX_OCSP_NONCE) {
        None => None,
        Some(ext) => {
            let inner = OctetString::from_der(ext.extn_value.as_bytes())
                .map_err(|e| malformed(RequestProblem::NonceNotOctetString(e)))?;
            let len = inner.as_bytes().len();
            if !(1..=MAX_NONCE_LEN).contains(&len) {
                return Err(malformed(RequestProblem::NonceLength(len)));
            }
            Some(inner.into_bytes())
        }
    };
    Ok(ParsedRequest { cert_ids: tbs.request_list.into_iter().map(|r| r.req_cert).collect(), nonce })
}

/// RFC 5280 §4.2 rules, applied to request extensions: each at most once, and a critical one we do not understand
/// means we cannot answer what was asked. The nonce is the only request extension acted on.
fn check_extensions(extensions: &[Extension]) -> Result<(), OcspError> {
    let mut seen = HashSet::with_capacity(extensions.len());
    let problem = extensions.iter().find_map(|ext| {
        if !seen.insert(&ext.extn_id) {
            Some(RequestProblem::DuplicateExtension(ext.extn_id))
        } else if ext.critical && ext.extn_id != ID_PKIX_OCSP_NONCE {
            Some(RequestProblem::UnsupportedCriticalExtension(ext.extn_id))
        } else {
            None
        }
    });
    problem.map_or(Ok(()), |p| Err(OcspError::MalformedRequest(p)))
}

/// Whether `cert_id` names `issuer`: issuerNameHash is the hash of the DER subject Name, issuerKeyHash the hash of the
/// subjectPublicKey BIT STRING contents (RFC 6960 §4.1.1). SHA-1 (what `openssl ocsp` and most clients send) and
/// SHA-256/384/512 are understood; any other algorithm, or parameters other than absent/NULL, never match.
pub fn issuer_matches(cert_id: &CertId, issuer: &Certificate) -> bool {
    let params_ok = match &cert_id.hash_algorithm.parameters {
        None => true,
        Some(any) => any.is_null(),
    };
    let Ok(name_der) = issuer.tbs_certificate.subject.to_der() else {
        return false;
    };
    let spki = &issuer.tbs_certificate.subject_public_key_info;
    let key_bits = spki.subject_public_key.raw_bytes();
    let hash: fn(&[u8]) -> Vec<u8> = match cert_id.hash_algorithm.oid {
        ID_SHA_1 => sha1,
        ID_SHA_256 => |d| Sha256::digest(d).to_vec(),
        ID_SHA_384 => |d| Sha384::digest(d).to_vec(),
        ID_SHA_512 => |d| Sha512::digest(d).to_vec(),
        _ => return false,
    };
    params_ok
        && cert_id.issuer_name_hash.as_bytes() == hash(&name_der).as_slice()
        && cert_id.issuer_key_hash.as_bytes() == hash(key_bits).as_slice()
}

/// The status of one certificate, as looked up by the caller.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CertStatusInfo {
    Good,
    Revoked { at: SystemTime, reason: Option<RevocationReason> },
    Unknown,
}

/// One answer: the CertID exactly as the client sent it (clients match on its bytes), and its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponseInput {
    pub cert_id: CertId,
    pub status: CertStatusInfo,
    pub this_update: SystemTime,
    pub next_update: Option<SystemTime>,
}

/// Signs a successful OCSPResponse (DER) carrying a BasicOCSPResponse.
///
/// `responder_cert` is the certificate for `signer`'s key: the issuing CA itself, or a delegated responder issued by
/// it (see [`responder_extensions`]). It is included in `certs` so clients can validate a delegated responder without
/// fetching anything. The responder is identified byKey, which does not change when the certificate is renewed.
pub fn sign_response<S, Sig>(
    responder_cert: &Certificate,
    signer: &S,
    responses: &[SingleResponseInput],
    nonce: Option<&[u8]>,
    produced_at: SystemTime,
) -> Result<Vec<u8>, OcspError>
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let responder_spki = &responder_cert.tbs_certificate.subject_public_key_info;
    // A response signed by a key other than the enclosed certificate's fails verification at every client.
    let signer_spki = SubjectPublicKeyInfoOwned::from_key(signer.verifying_key())?;
    if signer_spki.to_der()? != responder_spki.to_der()? {
        return Err(OcspError::SignerMismatch);
    }
    if responses.is_empty() {
        return Err(OcspError::NoResponses);
    }
    let responses: Vec<_> = responses.iter().map(single_response).collect::<Result<_, _>>()?;

    let response_extensions = match nonce {
        None => None,
        Some(n) if !(1..=MAX_NONCE_LEN).contains(&n.len()) => {
            return Err(OcspError::NonceLength(n.len()));
        }
        Some(n) => Some(vec![Nonce::new(n)?.to_extension(&Name::default(), &[])?]),
    };
    // byKey is SHA-1 of the subjectPublicKey BIT STRING contents (RFC 6960 §4.2.1 KeyHash).
    let key_hash = OctetString::new(sha1(responder_spki.subject_public_key.raw_bytes()))?;
    let tbs_response_data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(key_hash),
        produced_at: generalized(produced_at)?,
        responses,
        response_extensions,
    };
    let tbs_der = tbs_response_data.to_der()?;
    let signature = signer.try_sign(&tbs_der)?.to_bitstring()?;
    let basic = BasicOcspResponse {
        tbs_response_data,
        signature_algorithm: signer.signature_algorithm_identifier()?,
        signature,
        certs: Some(vec![responder_cert.clone()]),
    };
    Ok(OcspResponse::successful(basic)?.to_der()?)
}

fn single_response(input: &SingleResponseInput) -> Result<SingleResponse, OcspError> {
    if input.next_update.is_some_and(|n| n <= input.this_update) {
        return Err(OcspError::NextUpdateNotAfterThisUpdate);
    }
    let cert_status = match input.status {
        CertStatusInfo::Good => CertStatus::good(),
        CertStatusInfo::Unknown => CertStatus::unknown(),
        CertStatusInfo::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
            revocation_time: generalized(at)?,
            revocation_reason: match reason {
                // Mirrors the CRL, which omits reasonCode for unspecified (RFC 5280 §5.3.1): the CA/B Forum
                // requires OCSP and CRL to agree on the reason.
                None | Some(RevocationReason::Unspecified) => None,
                Some(RevocationReason::RemoveFromCrl) => {
                    return Err(OcspError::InvalidRevocationReason(RevocationReason::RemoveFromCrl));
                }
                Some(r) => Some(r.to_x509()),
            },
        }),
    };
    Ok(SingleResponse {
        cert_id: input.cert_id.clone(),
        cert_status,
        this_update: generalized(input.this_update)?,
        next_update: input.next_update.map(generalized).transpose()?,
        single_extensions: None,
    })
}

/// OCSP times are always GeneralizedTime (RFC 6960 §4.2.1), without fractional seconds.
fn generalized(t: SystemTime) -> Result<OcspGeneralizedTime, OcspError> {
    let t = GeneralizedTime::from_system_time(t).map_err(OcspError::TimeOutOfRange)?;
    Ok(t.into())
}

/// An unsigned error OCSPResponse: `SEQUENCE { ENUMERATED status }`, no responseBytes. The five bytes are written out
/// directly because that encoding is fixed, which lets this function be infallible.
pub fn error_response(status: OcspErrorStatus) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

/// The id-pkix-ocsp-nocheck extension (RFC 6960 §4.2.2.2.1), value NULL: clients need not check the delegated
/// responder's own revocation status, which would otherwise be an infinite regress.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct OcspNoCheck;

impl AssociatedOid for OcspNoCheck {
    const OID: ObjectIdentifier = ID_PKIX_OCSP_NOCHECK;
}

impl FixedTag for OcspNoCheck {
    const TAG: Tag = Tag::Null;
}

impl EncodeValue for OcspNoCheck {
    fn value_len(&self) -> der::Result<Length> {
        Null.value_len()
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        Null.encode_value(writer)
    }
}

impl AsExtension for OcspNoCheck {
    fn critical(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
        false
    }
}

/// extendedKeyUsage with only id-kp-OCSPSigning, which RFC 6960 §4.2.2.2 requires of a delegated responder. x509-cert
/// marks it critical (no anyExtendedKeyUsage present), which confines the key to OCSP signing; RFC 5280 §4.2.1.12 and
/// the CA/B Forum BRs (§7.1.2.8.2) leave criticality to the issuer.
pub fn ocsp_signing_eku() -> ExtendedKeyUsage {
    ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING])
}

/// The two extensions that make a certificate issued by the CA a delegated OCSP responder: EKU id-kp-OCSPSigning and
/// id-pkix-ocsp-nocheck. The issuing profile adds the usual ones (keyUsage digitalSignature, AKI, SKI,
/// basicConstraints CA:FALSE) as for any end-entity certificate.
pub fn responder_extensions(subject: &Name) -> Result<Vec<Extension>, OcspError> {
    let eku = ocsp_signing_eku().to_extension(subject, &[])?;
    let nocheck = OcspNoCheck.to_extension(subject, std::slice::from_ref(&eku))?;
    Ok(vec![eku, nocheck])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crl::test_support::{OcspFixture as Fixture, ocsp_fixture as fixture};
    use crate::crl::test_support::{openssl, openssl_request, root};
    use p256::ecdsa::DerSignature;
    use std::time::Duration;
    use x509_cert::serial_number::SerialNumber;

    fn sign(fx: &Fixture, rs: &[SingleResponseInput], nonce: Option<&[u8]>) -> Result<Vec<u8>, OcspError> {
        sign_response::<_, DerSignature>(&fx.responder, &fx.responder_key, rs, nonce, SystemTime::now())
    }

    fn answer(cert_id: CertId, status: CertStatusInfo) -> SingleResponseInput {
        let now = SystemTime::now();
        let next_update = Some(now + Duration::from_secs(3600));
        SingleResponseInput { cert_id, status, this_update: now, next_update }
    }

    /// Verifies `resp` with openssl trusting only the root, so the delegated responder must be found in `certs` and
    /// pass openssl's delegation checks (issued by the CA, id-kp-OCSPSigning). `-no_nonce` stops openssl comparing
    /// against a nonce of the request it builds internally from -serial; the nonce test uses -reqin for that.
    fn openssl_verify(fx: &Fixture, resp: &[u8], serial: &str) -> String {
        std::fs::write(fx.dir.path().join("resp.der"), resp).expect("write resp");
        let args = ["ocsp", "-respin", "resp.der", "-issuer", "root.pem", "-serial", serial];
        let more = ["-CAfile", "root.pem", "-no_nonce", "-resp_text"];
        let (ok, text) = openssl(fx.dir.path(), &[&args[..], &more].concat());
        assert!(ok && text.contains("Response verify OK"), "openssl rejected the response:\n{text}");
        text
    }

    #[test]
    fn parses_openssl_requests_with_and_without_nonce() {
        let fx = fixture();
        let dir = fx.dir.path();
        let plain = parse_request(&openssl_request(dir, "0x1234", &["-no_nonce"])).expect("parse");
        assert_eq!((plain.nonce, plain.cert_ids.len()), (None, 1));
        let id = &plain.cert_ids[0];
        assert_eq!(id.serial_number, SerialNumber::from(0x1234u32));
        assert_eq!(id.hash_algorithm.oid, ID_SHA_1, "openssl defaults to SHA-1 CertIDs");
        assert!(issuer_matches(id, &fx.ca.cert));
        assert!(!issuer_matches(id, &root().cert), "a different CA must not match");

        let with_nonce = parse_request(&openssl_request(dir, "0x1234", &[])).expect("parse");
        assert_eq!(with_nonce.nonce.map(|n| n.len()), Some(16), "openssl sends 16 octets");

        let sha256 = parse_request(&openssl_request(dir, "0x1234", &["-sha256"])).expect("parse");
        assert_eq!(sha256.cert_ids[0].hash_algorithm.oid, ID_SHA_256);
        assert!(issuer_matches(&sha256.cert_ids[0], &fx.ca.cert));
    }

    #[test]
    fn good_response_with_nonce_verifies_in_openssl() {
        let fx = fixture();
        let req = parse_request(&openssl_request(fx.dir.path(), "0x1234", &[])).expect("parse");
        let nonce = req.nonce.clone().expect("nonce");
        let responses = [answer(req.cert_ids[0].clone(), CertStatusInfo::Good)];
        let resp = sign(&fx, &responses, Some(&nonce)).expect("sign");
        let text = openssl_verify(&fx, &resp, "0x1234");
        assert!(text.contains("0x1234: good") && text.contains("OCSP Nonce"), "{text}");

        // Given the request, openssl compares the nonces itself...
        let args = ["ocsp", "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "root.pem"];
        let (ok, text) = openssl(fx.dir.path(), &args);
        assert!(ok && text.contains("Response verify OK"), "{text}");
        assert!(!text.contains("Nonce Verify error"), "{text}");
        // ...and notices a mismatch, so the check above means something.
        let other = sign(&fx, &responses, Some(&[7u8; 16])).expect("sign");
        std::fs::write(fx.dir.path().join("resp.der"), &other).expect("write resp");
        let (ok, text) = openssl(fx.dir.path(), &args);
        assert!(!ok && text.contains("Nonce Verify error"), "{text}");

        let bytes = OcspResponse::from_der(&resp).expect("decode").response_bytes.expect("bytes");
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
        assert_eq!(basic.nonce().map(|n| n.0.into_bytes()), Some(nonce));
        let spki = &fx.responder.tbs_certificate.subject_public_key_info;
        let key_hash = OctetString::new(sha1(spki.subject_public_key.raw_bytes())).expect("os");
        assert_eq!(basic.tbs_response_data.responder_id, ResponderId::ByKey(key_hash));
    }

    #[test]
    fn revoked_and_unknown_verify_in_openssl() {
        let fx = fixture();
        let req = parse_request(&openssl_request(fx.dir.path(), "0xBEEF", &["-no_nonce"]));
        let id = req.expect("parse").cert_ids[0].clone();
        let at = SystemTime::now() - Duration::from_secs(60);
        let revoked = CertStatusInfo::Revoked { at, reason: Some(RevocationReason::KeyCompromise) };
        let resp = sign(&fx, &[answer(id.clone(), revoked)], None).expect("sign");
        let text = openssl_verify(&fx, &resp, "0xBEEF");
        assert!(text.contains("0xBEEF: revoked") && text.contains("keyCompromise"), "{text}");

        let resp = sign(&fx, &[answer(id, CertStatusInfo::Unknown)], None).expect("sign");
        assert!(openssl_verify(&fx, &resp, "0xBEEF").contains("0xBEEF: unknown"));
    }

    #[test]
    fn the_ca_itself_can_sign() {
        let fx = fixture();
        let req = parse_request(&openssl_request(fx.dir.path(), "0x42", &["-no_nonce"]));
        let responses = [answer(req.expect("parse").cert_ids[0].clone(), CertStatusInfo::Good)];
        let now = SystemTime::now();
        let resp = sign_response::<_, DerSignature>(&fx.ca.cert, &fx.ca.key, &responses, None, now);
        assert!(openssl_verify(&fx, &resp.expect("sign"), "0x42").contains("0x42: good"));
    }

    #[test]
    fn responder_cert_carries_delegation_extensions() {
        let fx = fixture();
        let args = ["x509", "-in", "responder.pem", "-noout", "-text"];
        let (ok, text) = openssl(fx.dir.path(), &args);
        assert!(ok && text.contains("OCSP Signing") && text.contains("OCSP No Check"), "{text}");
        let exts = responder_extensions(&Name::default()).expect("extensions");
        let oids: Vec<_> = exts.iter().map(|e| e.extn_id).collect();
        assert_eq!(oids, [ExtendedKeyUsage::OID, ID_PKIX_OCSP_NOCHECK]);
        assert_eq!(exts[1].extn_value.as_bytes(), [0x05, 0x00]);
    }

    #[test]
    fn garbage_and_odd_requests_are_malformed() {
        for bad in [&b""[..], b"\x30\x03\x02\x01", b"not der at all", b"\x30\x00"] {
            let err = parse_request(bad).expect_err("must fail");
            assert!(matches!(err, OcspError::MalformedRequest(_)), "{err}");
            assert_eq!(err.response_status(), OcspErrorStatus::MalformedRequest);
        }
        // Well-formed DER, but an empty requestList: SEQUENCE { SEQUENCE { SEQUENCE {} } }.
        let err = parse_request(&[0x30, 0x04, 0x30, 0x02, 0x30, 0x00]).expect_err("must fail");
        assert!(matches!(err, OcspError::MalformedRequest(RequestProblem::NoCertIds)), "{err}");
    }

    /// A request about `fx`'s CA (SHA-256 CertID) carrying `ext` as its one request extension.
    fn request_with(fx: &Fixture, ext: Extension) -> Vec<u8> {
        let id = CertId::from_issuer::<Sha256>(&fx.ca.cert, SerialNumber::from(9u32)).expect("id");
        let tbs_request = x509_ocsp::TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request { req_cert: id, single_request_extensions: None }],
            request_extensions: Some(vec![ext]),
        };
        let req = OcspRequest { tbs_request, optional_signature: None };
        req.to_der().expect("encode request")
    }

    fn nonce_ext(len: usize) -> Extension {
        let nonce = Nonce::new(vec![0xab; len]).expect("nonce");
        nonce.to_extension(&Name::default(), &[]).expect("ext")
    }

    #[test]
    fn nonce_length_and_critical_extension_rules() {
        let fx = fixture();
        let ok = parse_request(&request_with(&fx, nonce_ext(MAX_NONCE_LEN))).expect("128 is fine");
        assert_eq!(ok.nonce.map(|n| n.len()), Some(MAX_NONCE_LEN));
        assert!(issuer_matches(&ok.cert_ids[0], &fx.ca.cert));
        for len in [0, MAX_NONCE_LEN + 1] {
            let err = parse_request(&request_with(&fx, nonce_ext(len))).expect_err("bad length");
            let problem = matches!(err, OcspError::MalformedRequest(RequestProblem::NonceLength(l)) if l == len);
            assert!(problem, "{err}");
        }
        let critical = Extension { extn_id: ID_PKIX_OCSP_NOCHECK, critical: true, ..nonce_ext(16) };
        let err = parse_request(&request_with(&fx, critical)).expect_err("unknown critical");
        let problem = RequestProblem::UnsupportedCriticalExtension(ID_PKIX_OCSP_NOCHECK);
        assert_eq!(err.to_string(), OcspError::MalformedRequest(problem).to_string());
    }

    #[test]
    fn error_response_is_what_openssl_expects() {
        use OcspErrorStatus::*;
        for status in [MalformedRequest, InternalError, TryLater, SigRequired, Unauthorized] {
            let decoded = OcspResponse::from_der(&error_response(status)).expect("decode");
            assert_eq!(decoded.response_status as u8, status as u8);
            assert!(decoded.response_bytes.is_none());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let err_der = dir.path().join("err.der");
        std::fs::write(err_der, error_response(MalformedRequest)).expect("write");
        let (_, text) = openssl(dir.path(), &["ocsp", "-respin", "err.der", "-resp_text"]);
        assert!(text.to_ascii_lowercase().contains("malformedrequest"), "{text}");
    }

    #[test]
    fn refuses_bad_inputs() {
        let fx = fixture();
        let id = CertId::from_issuer::<Sha256>(&fx.ca.cert, SerialNumber::from(1u32)).expect("id");
        let good = answer(id, CertStatusInfo::Good);
        let now = SystemTime::now();
        // The CA key is not the responder certificate's key.
        let one = std::slice::from_ref(&good);
        let err = sign_response::<_, DerSignature>(&fx.responder, &fx.ca.key, one, None, now);
        assert!(matches!(err, Err(OcspError::SignerMismatch)));
        assert!(matches!(sign(&fx, &[], None), Err(OcspError::NoResponses)));
        let long = [0u8; MAX_NONCE_LEN + 1];
        assert!(matches!(sign(&fx, one, Some(&long)), Err(OcspError::NonceLength(129))));
        let stale = SingleResponseInput { next_update: Some(good.this_update), ..good.clone() };
        let err = sign(&fx, &[stale], None);
        assert!(matches!(err, Err(OcspError::NextUpdateNotAfterThisUpdate)));
        let rm = CertStatusInfo::Revoked { at: now, reason: Some(RevocationReason::RemoveFromCrl) };
        let err = sign(&fx, &[answer(good.cert_id, rm)], None);
        assert!(matches!(err, Err(OcspError::InvalidRevocationReason(_))));
    }
}
