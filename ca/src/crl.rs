//! CRL signing primitive (RFC 5280 §5).
//!
//! [`sign_crl`] turns a list of revoked serials into a signed v2 `CertificateList`. It decides nothing about *which*
//! certificates are revoked or when the next CRL is due; that is the caller's job. What it does own is getting the
//! encoding right: the issuer name, AKI and CRL number extensions, UTCTime/GeneralizedTime per RFC 5280 §4.1.2.5,
//! omitting `revokedCertificates` when empty, and never signing with a key that is not the issuer's.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use const_oid::AssociatedOid;
use const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT;
use der::asn1::{GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, Uint, UtcTime};
use der::{Decode, Encode, pem::LineEnding};
use signature::{Keypair, Signer};
use spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

/// Why a CRL could not be produced, or a revocation reason could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("the signer's public key is not the issuer certificate's subject public key")]
    SignerMismatch,
    #[error("the issuer certificate has a keyUsage extension without cRLSign")]
    IssuerNotCrlSigner,
    #[error("nextUpdate must be later than thisUpdate")]
    NextUpdateNotAfterThisUpdate,
    #[error("serial {0} is listed more than once")]
    DuplicateSerial(String),
    #[error("serial {0} has reason removeFromCRL, which belongs only in delta CRLs (RFC 5280 §5.3.1)")]
    RemoveFromCrlInFullCrl(String),
    #[error("issuing distribution point cannot be limited to both user and CA certificates")]
    ConflictingIdpScope,
    #[error("issuing distribution point URI is not a valid IA5String: {0}")]
    InvalidIdpUri(der::Error),
    #[error("time cannot be represented in X.509 (before 1970 or after 9999): {0}")]
    TimeOutOfRange(der::Error),
    #[error("unknown CRL reason code {0}")]
    UnknownReasonCode(u8),
    #[error("unknown CRL reason name {0:?}")]
    UnknownReasonName(String),
    #[error("issuer certificate extension {oid} is malformed: {source}")]
    IssuerExtension { oid: ObjectIdentifier, source: der::Error },
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error("signer public key: {0}")]
    PublicKey(#[from] spki::Error),
    #[error("signing failed: {0}")]
    Signature(#[from] signature::Error),
}

/// CRLReason (RFC 5280 §5.3.1). Code 7 is unassigned in the RFC and so has no variant.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RevocationReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    RemoveFromCrl = 8,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

impl RevocationReason {
    /// Every reason, in code order; the single table `TryFrom<u8>` and `FromStr` search.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The CRLReason ENUMERATED value; also the code ACME (RFC 8555 §7.6) sends.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The identifier exactly as spelled in RFC 5280's ASN.1 module.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The x509-cert type that carries the reason on the wire (CRL entry extension, OCSP RevokedInfo).
    pub fn to_x509(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::CertificateHold => CrlReason::CertificateHold,
            Self::RemoveFromCrl => CrlReason::RemoveFromCRL,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            Self::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

impl TryFrom<u8> for RevocationReason {
    type Error = CrlError;

    fn try_from(code: u8) -> Result<Self, CrlError> {
        Self::ALL.into_iter().find(|r| r.code() == code).ok_or(CrlError::UnknownReasonCode(code))
    }
}

impl FromStr for RevocationReason {
    type Err = CrlError;

    /// Accepts the RFC 5280 names; case-insensitive because operators type "caCompromise" as often as
    /// "cACompromise", and no two names differ only in case.
    fn from_str(s: &str) -> Result<Self, CrlError> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CrlError::UnknownReasonName(s.to_owned()))
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: SerialNumber,
    pub revoked_at: SystemTime,
    pub reason: Option<RevocationReason>,
}

/// The issuingDistributionPoint extension (RFC 5280 §5.2.5), for publishing the CRL in shards: each shard names the
/// URI it is served from, and certificates carry the matching CRLDistributionPoints URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpParams<'a> {
    pub uri: &'a str,
    pub only_contains_user_certs: bool,
    pub only_contains_ca_certs: bool,
}

/// Everything that goes into one CRL.
#[derive(Clone, Debug)]
pub struct CrlParams<'a> {
    /// The CA certificate whose key signs the CRL; its subject becomes the CRL issuer.
    pub issuer: &'a Certificate,
    /// Monotonically increasing per issuer (RFC 5280 §5.2.3). The RFC allows up to 20 octets; 16 is plenty.
    pub crl_number: u128,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    pub entries: &'a [RevokedEntry],
    pub issuing_distribution_point: Option<IdpParams<'a>>,
}

/// Signs a v2 CRL for `params.issuer` with `signer`, which must hold the issuer certificate's key.
pub fn sign_crl<S, Sig>(params: &CrlParams<'_>, signer: &S) -> Result<CertificateList, CrlError>
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let issuer = &params.issuer.tbs_certificate;
    // A CRL signed by the wrong key verifies nowhere, and relying parties may treat that as "no revocation info";
    // refuse here instead of publishing it.
    let signer_spki = SubjectPublicKeyInfoOwned::from_key(signer.verifying_key())?;
    if signer_spki.to_der()? != issuer.subject_public_key_info.to_der()? {
        return Err(CrlError::SignerMismatch);
    }
    if let Some(ku) = find_extension::<KeyUsage>(params.issuer)? {
        if !ku.0.contains(KeyUsages::CRLSign) {
            return Err(CrlError::IssuerNotCrlSigner);
        }
    }
    if params.next_update <= params.this_update {
        return Err(CrlError::NextUpdateNotAfterThisUpdate);
    }

    let mut crl_extensions = vec![
        authority_key_identifier(params.issuer)?.to_extension(&issuer.subject, &[])?,
        CrlNumber(Uint::new(&params.crl_number.to_be_bytes())?).to_extension(&issuer.subject, &[])?,
    ];
    if let Some(idp) = &params.issuing_distribution_point {
        crl_extensions.push(idp_extension(idp)?);
    }

    let tbs_cert_list = TbsCertList {
        version: x509_cert::Version::V2,
        signature: signer.signature_algorithm_identifier()?,
        issuer: issuer.subject.clone(),
        this_update: x509_time(params.this_update)?,
        next_update: Some(x509_time(params.next_update)?),
        // RFC 5280 §5.1.2.6: when there are no revoked certificates the list MUST be absent, not empty.
        revoked_certificates: if params.entries.is_empty() { None } else { Some(revoked_certs(params.entries)?) },
        crl_extensions: Some(crl_extensions),
    };
    let tbs_der = tbs_cert_list.to_der()?;
    let signature = signer.try_sign(&tbs_der)?.to_bitstring()?;
    Ok(CertificateList { signature_algorithm: tbs_cert_list.signature.clone(), tbs_cert_list, signature })
}

/// DER encoding of a signed CRL, as served over HTTP (`application/pkix-crl`).
pub fn to_der(crl: &CertificateList) -> Result<Vec<u8>, CrlError> {
    Ok(crl.to_der()?)
}

/// PEM encoding (`-----BEGIN X509 CRL-----`). x509-cert 0.2 gives CertificateList no PEM label, so it is set here.
pub fn to_pem(crl: &CertificateList) -> Result<String, CrlError> {
    // pem-rfc7468's error type is not `std::error::Error`; der wraps it as `ErrorKind::Pem`.
    Ok(der::pem::encode_string("X509 CRL", LineEnding::LF, &crl.to_der()?).map_err(der::Error::from)?)
}

/// `SystemTime` as an X.509 `Time`: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5, which §5.1.2.4
/// applies to CRLs). Sub-second precision is dropped, as DER times for X.509 carry none.
pub(crate) fn x509_time(t: SystemTime) -> Result<Time, CrlError> {
    let general = GeneralizedTime::from_system_time(t).map_err(CrlError::TimeOutOfRange)?;
    let date = general.to_date_time();
    if date.year() <= UtcTime::MAX_YEAR {
        Ok(Time::UtcTime(UtcTime::from_date_time(date).map_err(CrlError::TimeOutOfRange)?))
    } else {
        Ok(Time::GeneralTime(general))
    }
}

/// Serial number as the lowercase hex of its DER content octets, the form errors and logs use.
pub(crate) fn serial_hex(serial: &SerialNumber) -> String {
    hex::encode(serial.as_bytes())
}

/// Builds the revokedCertificates list in one pass. Duplicates are caught with a hash set of the serial bytes, so
/// 100,000 entries cost 100,000 hash insertions, not a pairwise comparison.
fn revoked_certs(entries: &[RevokedEntry]) -> Result<Vec<RevokedCert>, CrlError> {
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if !seen.insert(entry.serial.as_bytes()) {
            return Err(CrlError::DuplicateSerial(serial_hex(&entry.serial)));
        }
        let crl_entry_extensions = match entry.reason {
            // RFC 5280 §5.3.1: the reasonCode extension SHOULD be absent rather than say "unspecified".
            None | Some(RevocationReason::Unspecified) => None,
            Some(RevocationReason::RemoveFromCrl) => {
                return Err(CrlError::RemoveFromCrlInFullCrl(serial_hex(&entry.serial)));
            }
            Some(reason) => Some(vec![reason.to_x509().to_extension(&Name::default(), &[])?]),
        };
        out.push(RevokedCert {
            serial_number: entry.serial.clone(),
            revocation_date: x509_time(entry.revoked_at)?,
            crl_entry_extensions,
        });
    }
    Ok(out)
}

/// The AKI keyIdentifier must match the issuer certificate's SKI for path builders to pair CRL and CA; only when the
/// CA certificate has no SKI do we derive one, by RFC 5280 §4.2.1.2 method 1 (SHA-1 of the subjectPublicKey bits).
fn authority_key_identifier(issuer: &Certificate) -> Result<AuthorityKeyIdentifier, CrlError> {
    let key_id = match find_extension::<SubjectKeyIdentifier>(issuer)? {
        Some(ski) => ski.0,
        None => {
            let spki = &issuer.tbs_certificate.subject_public_key_info;
            OctetString::new(sha1(spki.subject_public_key.raw_bytes()))?
        }
    };
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(key_id),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

/// x509-cert 0.2.5 gives `IssuingDistributionPoint` the subjectInfoAccess OID, so its `AsExtension` cannot be used;
/// the extension is assembled by hand with id-ce-issuingDistributionPoint (2.5.29.28), critical as §5.2.5 requires.
fn idp_extension(idp: &IdpParams<'_>) -> Result<Extension, CrlError> {
    if idp.only_contains_user_certs && idp.only_contains_ca_certs {
        return Err(CrlError::ConflictingIdpScope);
    }
    let uri = Ia5String::new(idp.uri).map_err(CrlError::InvalidIdpUri)?;
    let value = IssuingDistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![GeneralName::UniformResourceIdentifier(uri)])),
        only_contains_user_certs: idp.only_contains_user_certs,
        only_contains_ca_certs: idp.only_contains_ca_certs,
        only_some_reasons: None,
        indirect_crl: false,
        only_contains_attribute_certs: false,
    };
    Ok(Extension {
        extn_id: ID_CE_ISSUING_DISTRIBUTION_POINT,
        critical: true,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// Decodes `cert`'s extension of type `T`, if present.
fn find_extension<T>(cert: &Certificate) -> Result<Option<T>, CrlError>
where
    T: AssociatedOid + for<'a> Decode<'a>,
{
    let mut extensions = cert.tbs_certificate.extensions.iter().flatten();
    let Some(ext) = extensions.find(|e| e.extn_id == T::OID) else {
        return Ok(None);
    };
    let decoded = T::from_der(ext.extn_value.as_bytes());
    decoded.map(Some).map_err(|source| CrlError::IssuerExtension { oid: T::OID, source })
}

/// SHA-1, only where RFC 5280/6960 prescribe it as an identifier (key IDs, OCSP CertIDs and ResponderID), never for
/// signatures. ring is already a dependency of this crate and exposes it, so no `sha1` crate is needed.
pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
}

/// The software CA and openssl runner shared by the CRL and OCSP tests.
#[cfg(test)]
#[path = "../tests/fixtures/soft_ca.rs"]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{TestCa, issue, new_key, openssl, root, write_pem};
    use super::*;
    use p256::ecdsa::DerSignature;
    use std::time::Duration;

    /// Pins the signature type, which the p256 key could otherwise produce in two encodings.
    fn sign<S>(p: &CrlParams<'_>, key: &S) -> Result<CertificateList, CrlError>
    where
        S: Signer<DerSignature> + Keypair + DynSignatureAlgorithmIdentifier,
        S::VerifyingKey: EncodePublicKey,
    {
        sign_crl::<S, DerSignature>(p, key)
    }

    fn entry(serial: u64, reason: Option<RevocationReason>) -> RevokedEntry {
        RevokedEntry { serial: SerialNumber::from(serial), revoked_at: SystemTime::now(), reason }
    }

    fn params<'a>(ca: &'a TestCa, entries: &'a [RevokedEntry]) -> CrlParams<'a> {
        let now = SystemTime::now();
        CrlParams {
            issuer: &ca.cert,
            crl_number: 7,
            this_update: now,
            next_update: now + Duration::from_secs(86_400),
            entries,
            issuing_distribution_point: None,
        }
    }

    /// Writes root.pem and crl.der and asks openssl to verify and print the CRL.
    fn openssl_crl_text(ca: &TestCa, crl: &CertificateList) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        write_pem(dir.path(), "root.pem", &ca.cert);
        std::fs::write(dir.path().join("crl.der"), to_der(crl).expect("der")).expect("write crl");
        let args = ["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "root.pem"];
        let (ok, text) = openssl(dir.path(), &[&args[..], &["-noout", "-text"]].concat());
        assert!(ok && text.contains("verify OK"), "openssl did not verify the CRL:\n{text}");
        text
    }

    #[test]
    fn crl_with_entries_verifies_in_openssl() {
        let ca = root();
        let entries = [
            entry(0x1001, None),
            entry(0xdead_beef_cafe, Some(RevocationReason::KeyCompromise)),
            entry(0x1003, Some(RevocationReason::Unspecified)),
        ];
        let crl = sign(&params(&ca, &entries), &ca.key).expect("sign");
        let text = openssl_crl_text(&ca, &crl);
        assert!(text.contains("DEADBEEFCAFE"), "serial missing:\n{text}");
        assert!(text.contains("Key Compromise"), "reason missing:\n{text}");
        assert!(text.contains("X509v3 CRL Number") && text.contains("Version 2"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        // Unspecified must not be written as a reasonCode (RFC 5280 §5.3.1); only one entry has one.
        assert_eq!(text.matches("X509v3 CRL Reason Code").count(), 1, "{text}");
        assert!(!text.contains("No Revoked Certificates"), "{text}");
    }

    #[test]
    fn empty_crl_omits_revoked_list_and_verifies() {
        let ca = root();
        let crl = sign(&params(&ca, &[]), &ca.key).expect("sign");
        assert!(crl.tbs_cert_list.revoked_certificates.is_none());
        let text = openssl_crl_text(&ca, &crl);
        assert!(text.contains("No Revoked Certificates"), "{text}");
    }

    #[test]
    fn aki_is_the_issuer_ski() {
        let ca = root();
        let crl = sign(&params(&ca, &[]), &ca.key).expect("sign");
        let ski = find_extension::<SubjectKeyIdentifier>(&ca.cert).expect("decode");
        let exts = crl.tbs_cert_list.crl_extensions.expect("extensions");
        let aki = exts.iter().find(|e| e.extn_id == AuthorityKeyIdentifier::OID);
        let aki = AuthorityKeyIdentifier::from_der(aki.expect("aki").extn_value.as_bytes());
        assert_eq!(aki.expect("decode aki").key_identifier, ski.map(|s| s.0));
    }

    #[test]
    fn wrong_signer_is_refused() {
        let ca = root();
        let other = new_key();
        let err = sign(&params(&ca, &[]), &other).expect_err("must refuse");
        assert!(matches!(err, CrlError::SignerMismatch), "{err}");
    }

    #[test]
    fn issuer_without_crl_sign_is_refused() {
        let ca = root();
        // A leaf certificate's keyUsage is digitalSignature|nonRepudiation only.
        let leaf_key = new_key();
        let cert = issue(&ca, &leaf_key, "leaf", 5, &[]);
        let leaf = TestCa { cert, key: leaf_key };
        let err = sign(&params(&leaf, &[]), &leaf.key).expect_err("must refuse");
        assert!(matches!(err, CrlError::IssuerNotCrlSigner), "{err}");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let ca = root();
        let err = |p: &CrlParams<'_>| sign(p, &ca.key).expect_err("must refuse").to_string();
        let dup = [entry(1, None), entry(1, None)];
        assert_eq!(err(&params(&ca, &dup)), CrlError::DuplicateSerial("01".into()).to_string());
        let rm = [entry(1, Some(RevocationReason::RemoveFromCrl))];
        let want = CrlError::RemoveFromCrlInFullCrl("01".into()).to_string();
        assert_eq!(err(&params(&ca, &rm)), want);
        let mut p = params(&ca, &[]);
        p.next_update = p.this_update;
        assert_eq!(err(&p), CrlError::NextUpdateNotAfterThisUpdate.to_string());
        let mut p = params(&ca, &[]);
        let (uri, only_contains_user_certs, only_contains_ca_certs) = ("http://x/1.crl", true, true);
        let idp = IdpParams { uri, only_contains_user_certs, only_contains_ca_certs };
        p.issuing_distribution_point = Some(idp);
        assert_eq!(err(&p), CrlError::ConflictingIdpScope.to_string());
    }

    #[test]
    fn idp_and_large_crl_number_verify_in_openssl() {
        let ca = root();
        let entries = [entry(42, Some(RevocationReason::Superseded))];
        let mut p = params(&ca, &entries);
        p.crl_number = u128::MAX;
        p.issuing_distribution_point = Some(IdpParams {
            uri: "http://crl.example/shard-3.crl",
            only_contains_user_certs: true,
            only_contains_ca_certs: false,
        });
        let crl = sign(&p, &ca.key).expect("sign");
        let text = openssl_crl_text(&ca, &crl);
        assert!(
            text.contains("Issuing Distribution Point") && text.contains("http://crl.example/shard-3.crl"),
            "{text}"
        );
        assert!(text.contains("Only User Certificates"), "{text}");
        assert!(text.contains("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"), "{text}");
    }

    #[test]
    fn hundred_thousand_entries_sign() {
        let ca = root();
        use RevocationReason::{KeyCompromise, Superseded};
        let reasons = [None, Some(KeyCompromise), Some(Superseded)];
        let entries: Vec<RevokedEntry> =
            (0..100_000u64).map(|i| entry(0x0100_0000_0000 + i, reasons[(i % 3) as usize])).collect();
        let crl = sign(&params(&ca, &entries), &ca.key).expect("sign");
        let der = to_der(&crl).expect("der");
        let back = CertificateList::from_der(&der).expect("decode");
        assert_eq!(back.tbs_cert_list.revoked_certificates.map(|r| r.len()), Some(100_000));
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let y2049 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_524_607_999); // 2049-12-31T23:59:59Z
        assert!(matches!(x509_time(y2049), Ok(Time::UtcTime(_))));
        assert!(matches!(x509_time(y2049 + Duration::from_secs(1)), Ok(Time::GeneralTime(_))));
    }

    #[test]
    fn reasons_round_trip() {
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::try_from(r.code()).ok(), Some(r));
            assert_eq!(r.name().parse::<RevocationReason>().ok(), Some(r));
            assert_eq!(r.to_x509() as u32, u32::from(r.code()));
        }
        let ca_compromise = "CACOMPROMISE".parse::<RevocationReason>();
        assert_eq!(ca_compromise.ok(), Some(RevocationReason::CaCompromise));
        let seven = RevocationReason::try_from(7);
        assert!(matches!(seven, Err(CrlError::UnknownReasonCode(7))));
        let bogus = "bogus".parse::<RevocationReason>();
        assert!(matches!(bogus, Err(CrlError::UnknownReasonName(_))));
    }

    #[test]
    fn pem_has_crl_label() {
        let ca = root();
        let crl = sign(&params(&ca, &[]), &ca.key).expect("sign");
        let pem = to_pem(&crl).expect("pem");
        assert!(pem.starts_with("-----BEGIN X509 CRL-----\n"), "{pem}");
    }
}
