//! Pre-issuance lints: the last look at a to-be-signed certificate before the HSM is asked to sign
//! it.
//!
//! The issuer builds the TBSCertificate from the profile and the CSR; [`lint_tbs`] decodes the very
//! DER bytes that will be signed (not the issuer's in-memory structure), so an encoding slip cannot
//! hide behind a correct struct. Any refusal here is a bug in Castellan or in a profile, never an
//! ordinary request error: the RA and policy should have refused the request earlier. Each refusal
//! names what is wrong, and [`lint_error_kind`] gives a stable code for logs and metrics.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
use der::{Any, Decode, Tag, Tagged};
use thiserror::Error;
use x509_cert::certificate::{Profile, TbsCertificateInner, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::serial_number::SerialNumber;

use crate::key::{self, KeyError};
use crate::names::{self, NameError};

/// RFC 5280 §4.1.2.2: conforming CAs MUST NOT use serial numbers longer than 20 octets. We count
/// the DER content octets, sign byte included, which is the strict reading.
const MAX_SERIAL_LEN: usize = 20;

/// What the profile demands of every certificate it issues.
#[derive(Debug, Clone)]
pub struct LintPolicy {
    /// The longest validity period allowed, counted inclusively as RFC 5280 §4.1.2.5 and the CA/B
    /// Forum BRs do: a certificate valid for `max_lifetime` has `notAfter = notBefore +
    /// max_lifetime - 1s`.
    pub max_lifetime: Duration,
    /// Every one of these must be in the ExtendedKeyUsage extension.
    pub required_ekus: Vec<ObjectIdentifier>,
    /// The "service" profile certifies a SPIFFE ID, so it needs a URI SAN.
    pub require_uri_san: bool,
    pub allow_ip_sans: bool,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LintError {
    #[error("the TBSCertificate does not decode: {0}")]
    Malformed(der::Error),
    #[error("the certificate is {version:?}, not V3")]
    NotV3 { version: Version },
    #[error("serial number {serial} is negative")]
    SerialNegative { serial: String },
    #[error("serial number is zero")]
    SerialZero,
    #[error("serial number {serial} is {len} octets long; the limit is 20")]
    SerialTooLong { serial: String, len: usize },
    #[error("notAfter ({not_after}) is not after notBefore ({not_before})")]
    ValidityInverted { not_before: String, not_after: String },
    #[error("the validity period is {lifetime:?} (inclusive); the profile allows at most {max:?}")]
    LifetimeTooLong { lifetime: Duration, max: Duration },
    #[error("subject public key: {0}")]
    Key(#[from] KeyError),
    #[error("extension {oid} appears more than once")]
    DuplicateExtension { oid: ObjectIdentifier },
    #[error("the {extension} extension is missing")]
    MissingExtension { extension: &'static str },
    #[error("the {extension} extension does not decode: {source}")]
    BadExtension { extension: &'static str, source: der::Error },
    #[error("the subjectAltName extension is empty")]
    EmptySan,
    #[error("keyUsage lacks digitalSignature")]
    NoDigitalSignature,
    #[error("keyUsage asserts keyCertSign or cRLSign in an end-entity certificate")]
    CaKeyUsage,
    #[error("extendedKeyUsage lacks {eku}")]
    MissingEku { eku: ObjectIdentifier },
    #[error("basicConstraints asserts cA in an end-entity certificate")]
    CaTrue,
    #[error("authorityKeyIdentifier has no keyIdentifier")]
    AkiWithoutKeyId,
    #[error("SAN DNS name {name:?}: {source}")]
    InvalidDnsName { name: String, source: NameError },
    #[error("SAN DNS name {name:?}: {source}")]
    BadWildcard { name: String, source: NameError },
    #[error("SAN iPAddress {octets}: {source}")]
    InvalidIpSan { octets: String, source: NameError },
    #[error("SAN iPAddress {ip}: the profile does not allow IP addresses")]
    IpSanNotAllowed { ip: IpAddr },
    #[error("SAN URI {uri:?}: {source}")]
    InvalidUriSan { uri: String, source: NameError },
    #[error("SAN of kind {kind} is not supported")]
    UnsupportedSanKind { kind: &'static str },
    #[error("SAN {san} appears more than once")]
    DuplicateSan { san: String },
    #[error("subject commonName {cn:?} is not one of the SAN DNS names or IP addresses")]
    CommonNameNotInSan { cn: String },
    #[error("subject commonName is not a UTF8String, PrintableString or IA5String")]
    BadCommonName,
    #[error("the subject is empty, so subjectAltName must be critical (RFC 5280 §4.2.1.6)")]
    EmptySubjectSanNotCritical,
    #[error("the profile requires a SPIFFE URI SAN and there is none")]
    MissingUriSan,
    #[error("{count} URI SANs; an X.509-SVID has exactly one SPIFFE ID")]
    MultipleUriSans { count: usize },
    #[error("extendedKeyUsage has {eku}, which this certificate must not carry")]
    ExtraEku { eku: ObjectIdentifier },
}

/// A stable short code for each refusal, for logs and metrics.
pub fn lint_error_kind(error: &LintError) -> &'static str {
    match error {
        LintError::Malformed(_) => "malformed-tbs",
        LintError::NotV3 { .. } => "not-v3",
        LintError::SerialNegative { .. } => "serial-negative",
        LintError::SerialZero => "serial-zero",
        LintError::SerialTooLong { .. } => "serial-too-long",
        LintError::ValidityInverted { .. } => "validity-inverted",
        LintError::LifetimeTooLong { .. } => "lifetime-too-long",
        LintError::Key(KeyError::WeakKey { .. }) => "weak-key",
        LintError::Key(KeyError::UnsupportedKey { .. }) => "unsupported-key",
        LintError::Key(_) => "malformed-key",
        LintError::DuplicateExtension { .. } => "duplicate-extension",
        LintError::MissingExtension { .. } => "missing-extension",
        LintError::BadExtension { .. } => "malformed-extension",
        LintError::EmptySan => "empty-san",
        LintError::NoDigitalSignature => "no-digital-signature",
        LintError::CaKeyUsage => "ca-key-usage",
        LintError::MissingEku { .. } => "missing-eku",
        LintError::CaTrue => "ca-true",
        LintError::AkiWithoutKeyId => "aki-without-key-id",
        LintError::InvalidDnsName { .. } => "invalid-dns-name",
        LintError::BadWildcard { .. } => "bad-wildcard",
        LintError::InvalidIpSan { .. } => "invalid-ip-san",
        LintError::IpSanNotAllowed { .. } => "ip-san-not-allowed",
        LintError::InvalidUriSan { .. } => "invalid-uri-san",
        LintError::UnsupportedSanKind { .. } => "unsupported-san-kind",
        LintError::DuplicateSan { .. } => "duplicate-san",
        LintError::CommonNameNotInSan { .. } => "cn-not-in-san",
        LintError::BadCommonName => "bad-common-name",
        LintError::EmptySubjectSanNotCritical => "empty-subject-san-not-critical",
        LintError::MissingUriSan => "missing-uri-san",
        LintError::MultipleUriSans { .. } => "multiple-uri-sans",
        LintError::ExtraEku { .. } => "extra-eku",
    }
}

/// Decoding profile that lets any serial number through, so that [`lint_tbs`] can name the serial
/// problem instead of reporting a bare decode error (x509-cert's default profile refuses > 21
/// octets).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LintProfile;

impl Profile for LintProfile {
    fn check_serial_number(_serial: &SerialNumber<Self>) -> der::Result<()> {
        Ok(())
    }
}

type Tbs = TbsCertificateInner<LintProfile>;

/// Refuses the DER TBSCertificate `tbs_der` unless it is fit to sign under `policy`.
pub fn lint_tbs(tbs_der: &[u8], policy: &LintPolicy) -> Result<(), LintError> {
    let tbs = Tbs::from_der(tbs_der).map_err(LintError::Malformed)?;
    if tbs.version != Version::V3 {
        return Err(LintError::NotV3 { version: tbs.version });
    }
    lint_serial(tbs.serial_number.as_bytes())?;
    lint_validity(&tbs, policy)?;
    key::classify_and_check(&tbs.subject_public_key_info)?;
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    if let Some(dup) = extensions.iter().find(|ext| !seen.insert(ext.extn_id)) {
        return Err(LintError::DuplicateExtension { oid: dup.extn_id });
    }
    let (san_ext, san) = required::<SubjectAltName>(extensions, "subjectAltName")?;
    let sans = lint_sans(&san, policy)?;
    let (_, key_usage) = required::<KeyUsage>(extensions, "keyUsage")?;
    if !key_usage.digital_signature() {
        return Err(LintError::NoDigitalSignature);
    }
    // RFC 5280 §4.2.1.3: keyCertSign needs cA; a leaf that may sign certificates or CRLs is a CA.
    if key_usage.key_cert_sign() || key_usage.crl_sign() {
        return Err(LintError::CaKeyUsage);
    }
    let (_, eku) = required::<ExtendedKeyUsage>(extensions, "extendedKeyUsage")?;
    if let Some(missing) = policy.required_ekus.iter().find(|oid| !eku.0.contains(oid)) {
        return Err(LintError::MissingEku { eku: *missing });
    }
    let (_, basic) = required::<BasicConstraints>(extensions, "basicConstraints")?;
    if basic.ca {
        return Err(LintError::CaTrue);
    }
    // RFC 5280 §4.2.1.1: the keyIdentifier is what path builders use; the other fields are
    // optional.
    let (_, aki) = required::<AuthorityKeyIdentifier>(extensions, "authorityKeyIdentifier")?;
    if aki.key_identifier.is_none() {
        return Err(LintError::AkiWithoutKeyId);
    }
    required::<SubjectKeyIdentifier>(extensions, "subjectKeyIdentifier")?;
    lint_subject(&tbs, san_ext, &sans)?;
    if policy.require_uri_san && sans.uris.is_empty() {
        return Err(LintError::MissingUriSan);
    }
    Ok(())
}

/// Refuses the DER TBSCertificate of a delegated OCSP responder (RFC 6960 §4.2.2.2) unless it is fit to sign: V3,
/// a good serial and key, at most `max_lifetime`, keyUsage digitalSignature without certificate or CRL signing,
/// extendedKeyUsage exactly id-kp-OCSPSigning (a responder key should sign nothing else), id-pkix-ocsp-nocheck
/// (NULL), basicConstraints cA false, an AKI with a keyIdentifier, and an SKI. No SAN: it certifies no name.
pub fn lint_ocsp_responder_tbs(tbs_der: &[u8], max_lifetime: Duration) -> Result<(), LintError> {
    use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
    use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
    let tbs = Tbs::from_der(tbs_der).map_err(LintError::Malformed)?;
    if tbs.version != Version::V3 {
        return Err(LintError::NotV3 { version: tbs.version });
    }
    lint_serial(tbs.serial_number.as_bytes())?;
    let policy = LintPolicy { max_lifetime, required_ekus: vec![], require_uri_san: false, allow_ip_sans: false };
    lint_validity(&tbs, &policy)?;
    key::classify_and_check(&tbs.subject_public_key_info)?;
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    if let Some(dup) = extensions.iter().find(|ext| !seen.insert(ext.extn_id)) {
        return Err(LintError::DuplicateExtension { oid: dup.extn_id });
    }
    let (_, key_usage) = required::<KeyUsage>(extensions, "keyUsage")?;
    if !key_usage.digital_signature() {
        return Err(LintError::NoDigitalSignature);
    }
    if key_usage.key_cert_sign() || key_usage.crl_sign() {
        return Err(LintError::CaKeyUsage);
    }
    let (_, eku) = required::<ExtendedKeyUsage>(extensions, "extendedKeyUsage")?;
    if !eku.0.contains(&ID_KP_OCSP_SIGNING) {
        return Err(LintError::MissingEku { eku: ID_KP_OCSP_SIGNING });
    }
    if let Some(extra) = eku.0.iter().find(|oid| **oid != ID_KP_OCSP_SIGNING) {
        return Err(LintError::ExtraEku { eku: *extra });
    }
    let nocheck = extensions.iter().find(|ext| ext.extn_id == ID_PKIX_OCSP_NOCHECK);
    let nocheck = nocheck.ok_or(LintError::MissingExtension { extension: "id-pkix-ocsp-nocheck" })?;
    der::asn1::Null::from_der(nocheck.extn_value.as_bytes())
        .map_err(|source| LintError::BadExtension { extension: "id-pkix-ocsp-nocheck", source })?;
    let (_, basic) = required::<BasicConstraints>(extensions, "basicConstraints")?;
    if basic.ca {
        return Err(LintError::CaTrue);
    }
    let (_, aki) = required::<AuthorityKeyIdentifier>(extensions, "authorityKeyIdentifier")?;
    if aki.key_identifier.is_none() {
        return Err(LintError::AkiWithoutKeyId);
    }
    required::<SubjectKeyIdentifier>(extensions, "subjectKeyIdentifier")?;
    Ok(())
}

fn lint_serial(serial: &[u8]) -> Result<(), LintError> {
    let hex = || hex::encode(serial);
    // DER integers are two's complement: a set top bit on the first content octet means negative.
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(LintError::SerialNegative { serial: hex() });
    }
    if serial.iter().all(|b| *b == 0) {
        return Err(LintError::SerialZero);
    }
    if serial.len() > MAX_SERIAL_LEN {
        return Err(LintError::SerialTooLong { serial: hex(), len: serial.len() });
    }
    Ok(())
}

fn lint_validity(tbs: &Tbs, policy: &LintPolicy) -> Result<(), LintError> {
    let not_before = tbs.validity.not_before.to_unix_duration();
    let not_after = tbs.validity.not_after.to_unix_duration();
    let Some(span) = not_after.checked_sub(not_before).filter(|span| !span.is_zero()) else {
        return Err(LintError::ValidityInverted {
            not_before: tbs.validity.not_before.to_string(),
            not_after: tbs.validity.not_after.to_string(),
        });
    };
    // Inclusive: notAfter is the last second the certificate is valid, so it adds one second.
    let lifetime = span.saturating_add(Duration::from_secs(1));
    if lifetime > policy.max_lifetime {
        return Err(LintError::LifetimeTooLong { lifetime, max: policy.max_lifetime });
    }
    Ok(())
}

/// Finds and decodes an extension the profile requires.
fn required<'a, T: Decode<'a> + AssociatedOid>(
    extensions: &'a [Extension],
    name: &'static str,
) -> Result<(&'a Extension, T), LintError> {
    let ext = extensions.iter().find(|ext| ext.extn_id == T::OID);
    let ext = ext.ok_or(LintError::MissingExtension { extension: name })?;
    let value = T::from_der(ext.extn_value.as_bytes());
    let value = value.map_err(|source| LintError::BadExtension { extension: name, source })?;
    Ok((ext, value))
}

/// The SANs, each checked and distinct.
struct Sans<'a> {
    dns: Vec<&'a str>,
    ips: Vec<IpAddr>,
    uris: Vec<&'a str>,
}

fn lint_sans<'a>(san: &'a SubjectAltName, policy: &LintPolicy) -> Result<Sans<'a>, LintError> {
    if san.0.is_empty() {
        return Err(LintError::EmptySan);
    }
    let mut sans = Sans { dns: Vec::new(), ips: Vec::new(), uris: Vec::new() };
    let mut seen = HashSet::new();
    for name in &san.0 {
        // DNS names compare exactly: validate_dns_name already refused every other spelling.
        let key = match name {
            GeneralName::DnsName(dns) => {
                let name = dns.as_str();
                names::validate_dns_name(name).map_err(|source| match source {
                    NameError::BadWildcard { .. } => LintError::BadWildcard { name: name.into(), source },
                    _ => LintError::InvalidDnsName { name: name.into(), source },
                })?;
                sans.dns.push(name);
                format!("DNS:{name}")
            }
            GeneralName::IpAddress(octets) => {
                let octets = octets.as_bytes();
                let ip = names::ip_from_san_octets(octets)
                    .map_err(|source| LintError::InvalidIpSan { octets: hex::encode(octets), source })?;
                if !policy.allow_ip_sans {
                    return Err(LintError::IpSanNotAllowed { ip });
                }
                sans.ips.push(ip);
                format!("IP:{ip}")
            }
            GeneralName::UniformResourceIdentifier(uri) => {
                let uri = uri.as_str();
                names::validate_uri_san(uri).map_err(|source| LintError::InvalidUriSan { uri: uri.into(), source })?;
                sans.uris.push(uri);
                format!("URI:{uri}")
            }
            other => {
                return Err(LintError::UnsupportedSanKind { kind: crate::names::general_name_kind(other) });
            }
        };
        if !seen.insert(key.clone()) {
            return Err(LintError::DuplicateSan { san: key });
        }
    }
    // X.509-SVID §2: exactly one URI SAN; more would make the workload's identity ambiguous.
    if sans.uris.len() > 1 {
        return Err(LintError::MultipleUriSans { count: sans.uris.len() });
    }
    Ok(sans)
}

fn lint_subject(tbs: &Tbs, san_ext: &Extension, sans: &Sans<'_>) -> Result<(), LintError> {
    if tbs.subject.0.is_empty() && !san_ext.critical {
        return Err(LintError::EmptySubjectSanNotCritical);
    }
    let cn_oid = const_oid::db::rfc4519::CN;
    let attributes = tbs.subject.0.iter().flat_map(|rdn| rdn.0.iter());
    for value in attributes.filter(|atv| atv.oid == cn_oid).map(|atv| &atv.value) {
        let cn = common_name(value).ok_or(LintError::BadCommonName)?;
        // The CN is a legacy copy of one SAN; the textual form of an IP is Rust's, i.e. RFC 5952's.
        let in_san = sans.dns.contains(&cn) || sans.ips.iter().any(|ip| ip.to_string() == cn);
        if !in_san {
            return Err(LintError::CommonNameNotInSan { cn: cn.to_owned() });
        }
    }
    Ok(())
}

fn common_name(value: &Any) -> Option<&str> {
    match value.tag() {
        Tag::Utf8String => value.decode_as::<Utf8StringRef<'_>>().ok().map(|s| s.as_str()),
        Tag::PrintableString => value.decode_as::<PrintableStringRef<'_>>().ok().map(|s| s.as_str()),
        Tag::Ia5String => value.decode_as::<Ia5StringRef<'_>>().ok().map(|s| s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
    use const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
    use der::Encode;
    use der::asn1::{Ia5String, OctetString, UtcTime};
    use rand::rngs::OsRng;
    use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SubjectPublicKeyInfoOwned};
    use x509_cert::ext::pkix::KeyUsages;
    use x509_cert::name::Name;
    use x509_cert::time::{Time, Validity};

    use super::*;

    const DAY: u64 = 86_400;
    const NOT_BEFORE: u64 = 1_750_000_000;

    macro_rules! assert_refuses {
        ($tbs:expr => $pattern:pat $(if $guard:expr)?) => {
            assert_refuses!($tbs, &policy() => $pattern $(if $guard)?)
        };
        ($tbs:expr, $policy:expr => $pattern:pat $(if $guard:expr)?) => {
            let result = lint_tbs(&$tbs.to_der().expect("encode TBS"), $policy);
            assert!(matches!(&result, Err($pattern) $(if $guard)?), "{result:?}");
        };
    }

    fn policy() -> LintPolicy {
        LintPolicy {
            max_lifetime: Duration::from_secs(90 * DAY),
            required_ekus: vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH],
            require_uri_san: false,
            allow_ip_sans: true,
        }
    }

    fn lint(tbs: &Tbs, policy: &LintPolicy) -> Result<(), LintError> {
        lint_tbs(&tbs.to_der().expect("encode TBS"), policy)
    }

    fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Extension {
        let extn_value = OctetString::new(value.to_der().expect("encode")).expect("octets");
        Extension { extn_id: T::OID, critical, extn_value }
    }

    fn dns(name: &str) -> GeneralName {
        GeneralName::DnsName(Ia5String::new(name).expect("IA5"))
    }

    fn uri(uri: &str) -> GeneralName {
        GeneralName::UniformResourceIdentifier(Ia5String::new(uri).expect("IA5"))
    }

    fn ip(octets: &[u8]) -> GeneralName {
        GeneralName::IpAddress(OctetString::new(octets).expect("octets"))
    }

    fn time(unix: u64) -> Time {
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix)).expect("time"))
    }

    /// A raw DER INTEGER, so tests can write serials the RFC 5280 profile would refuse to build.
    fn serial(content: &[u8]) -> SerialNumber<LintProfile> {
        let mut der = vec![0x02, content.len() as u8];
        der.extend_from_slice(content);
        SerialNumber::from_der(&der).expect("serial")
    }

    fn spki_of(key: impl EncodePublicKey) -> SubjectPublicKeyInfoOwned {
        let der = key.to_public_key_der().expect("encode SPKI");
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("decode SPKI")
    }

    fn good_sans() -> Vec<GeneralName> {
        let spiffe = uri("spiffe://example.com/ns/prod/web");
        vec![dns("www.example.com"), dns("*.example.com"), ip(&[192, 0, 2, 1]), spiffe]
    }

    /// A TBS that passes every lint; each test below changes exactly one thing.
    fn good() -> Tbs {
        let key_id = |byte| OctetString::new([byte; 20]).expect("key id");
        let aki = AuthorityKeyIdentifier { key_identifier: Some(key_id(1)), ..Default::default() };
        let basic = BasicConstraints { ca: false, path_len_constraint: None };
        Tbs {
            version: Version::V3,
            serial_number: serial(&[0x3a, 0x5f, 0x01, 0x9c, 0x44, 0x12, 0x7e, 0xd0]),
            signature: AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None },
            issuer: Name::from_str("CN=Castellan Test CA,O=Castellan").expect("issuer"),
            validity: Validity { not_before: time(NOT_BEFORE), not_after: time(NOT_BEFORE + 90 * DAY - 1) },
            subject: Name::from_str("CN=www.example.com").expect("subject"),
            subject_public_key_info: spki_of(*p256::ecdsa::SigningKey::random(&mut OsRng).verifying_key()),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![
                ext(&SubjectAltName(good_sans()), false),
                ext(&KeyUsage(KeyUsages::DigitalSignature.into()), true),
                ext(&ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH]), false),
                ext(&basic, true),
                ext(&aki, false),
                ext(&SubjectKeyIdentifier(key_id(2)), false),
            ]),
        }
    }

    /// "A good TBS except …" edits.
    trait Edit {
        fn with_ext(self, ext: Extension) -> Tbs;
        fn without_ext(self, oid: ObjectIdentifier) -> Tbs;
        fn with_sans(self, sans: Vec<GeneralName>) -> Tbs;
        fn with_extra_san(self, extra: GeneralName) -> Tbs;
    }

    impl Edit for Tbs {
        /// Replaces the extension with the same OID.
        fn with_ext(mut self, ext: Extension) -> Tbs {
            let exts = self.extensions.get_or_insert_with(Vec::new);
            exts.retain(|e| e.extn_id != ext.extn_id);
            exts.push(ext);
            self
        }

        fn without_ext(mut self, oid: ObjectIdentifier) -> Tbs {
            self.extensions.get_or_insert_with(Vec::new).retain(|e| e.extn_id != oid);
            self
        }

        fn with_sans(self, sans: Vec<GeneralName>) -> Tbs {
            self.with_ext(ext(&SubjectAltName(sans), false))
        }

        /// The good SANs plus `extra`.
        fn with_extra_san(self, extra: GeneralName) -> Tbs {
            self.with_sans(good_sans().into_iter().chain([extra]).collect())
        }
    }

    #[test]
    fn good_tbs_passes() {
        assert_eq!(lint(&good(), &policy()), Ok(()));
        let policy = LintPolicy { require_uri_san: true, ..policy() };
        assert_eq!(lint(&good(), &policy), Ok(()));
    }

    #[test]
    fn malformed() {
        assert!(matches!(lint_tbs(&[0x30, 0x03, 1, 2, 3], &policy()), Err(LintError::Malformed(_))));
        let mut trailing = good().to_der().expect("encode");
        trailing.push(0);
        assert!(matches!(lint_tbs(&trailing, &policy()), Err(LintError::Malformed(_))));
    }

    #[test]
    fn not_v3() {
        assert_refuses!(Tbs { version: Version::V1, ..good() } =>
            LintError::NotV3 { version: Version::V1 });
    }

    #[test]
    fn serial_negative() {
        assert_refuses!(Tbs { serial_number: serial(&[0x80, 1]), ..good() } =>
            LintError::SerialNegative { .. });
    }

    #[test]
    fn serial_zero() {
        assert_refuses!(Tbs { serial_number: serial(&[0]), ..good() } => LintError::SerialZero);
    }

    #[test]
    fn serial_too_long() {
        assert_eq!(lint(&Tbs { serial_number: serial(&[0x7f; 20]), ..good() }, &policy()), Ok(()));
        let long = serial(&[0x7f; 21]);
        assert_refuses!(Tbs { serial_number: long, ..good() } =>
            LintError::SerialTooLong { len: 21, .. });
        // A 20-octet value with its top bit set needs a 21st (sign) octet: too long under the
        // strict reading.
        let mut signed = [0xff; 21];
        signed[0] = 0;
        let signed = serial(&signed);
        assert_refuses!(Tbs { serial_number: signed, ..good() } =>
            LintError::SerialTooLong { len: 21, .. });
    }

    #[test]
    fn validity_inverted() {
        for not_after in [NOT_BEFORE, NOT_BEFORE - 1] {
            let validity = Validity { not_before: time(NOT_BEFORE), not_after: time(not_after) };
            assert_refuses!(Tbs { validity, ..good() } => LintError::ValidityInverted { .. });
        }
    }

    #[test]
    fn lifetime_too_long() {
        // notAfter = notBefore + 90 days is one second too long: both ends are inclusive.
        let validity = Validity { not_before: time(NOT_BEFORE), not_after: time(NOT_BEFORE + 90 * DAY) };
        let max = Duration::from_secs(90 * DAY);
        assert_refuses!(Tbs { validity, ..good() } =>
            LintError::LifetimeTooLong { lifetime, .. }
                if *lifetime == max + Duration::from_secs(1));
    }

    #[test]
    fn weak_key() {
        let rsa = rsa::RsaPrivateKey::new(&mut OsRng, 1024).expect("generate RSA key");
        let spki = spki_of(rsa.to_public_key());
        assert_refuses!(Tbs { subject_public_key_info: spki, ..good() } =>
            LintError::Key(KeyError::WeakKey { .. }));
    }

    #[test]
    fn unsupported_key() {
        let ed448 = ObjectIdentifier::new_unwrap("1.3.101.113");
        let mut spki = good().subject_public_key_info;
        spki.algorithm = AlgorithmIdentifierOwned { oid: ed448, parameters: None };
        assert_refuses!(Tbs { subject_public_key_info: spki, ..good() } =>
            LintError::Key(KeyError::UnsupportedKey { .. }));
    }

    #[test]
    fn missing_extensions() {
        for (oid, name) in [
            (SubjectAltName::OID, "subjectAltName"),
            (KeyUsage::OID, "keyUsage"),
            (ExtendedKeyUsage::OID, "extendedKeyUsage"),
            (BasicConstraints::OID, "basicConstraints"),
            (AuthorityKeyIdentifier::OID, "authorityKeyIdentifier"),
            (SubjectKeyIdentifier::OID, "subjectKeyIdentifier"),
        ] {
            assert_refuses!(good().without_ext(oid) =>
                LintError::MissingExtension { extension } if *extension == name);
        }
    }

    #[test]
    fn duplicate_extension() {
        let mut tbs = good();
        let ski = ext(&SubjectKeyIdentifier(OctetString::new([3; 20]).expect("key id")), false);
        tbs.extensions.get_or_insert_with(Vec::new).push(ski);
        assert_refuses!(tbs =>
            LintError::DuplicateExtension { oid } if *oid == SubjectKeyIdentifier::OID);
    }

    #[test]
    fn malformed_extension() {
        let garbage = OctetString::new([0x04, 0x01]).expect("octets");
        let san = Extension { extn_id: SubjectAltName::OID, critical: false, extn_value: garbage };
        assert_refuses!(good().with_ext(san) =>
            LintError::BadExtension { extension: "subjectAltName", .. });
    }

    #[test]
    fn empty_san() {
        assert_refuses!(good().with_sans(vec![]) => LintError::EmptySan);
    }

    #[test]
    fn key_usage_without_digital_signature() {
        let ku = KeyUsage(KeyUsages::KeyEncipherment.into());
        assert_refuses!(good().with_ext(ext(&ku, true)) => LintError::NoDigitalSignature);
    }

    #[test]
    fn key_usage_cert_sign() {
        let ku = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign);
        assert_refuses!(good().with_ext(ext(&ku, true)) => LintError::CaKeyUsage);
    }

    #[test]
    fn missing_eku() {
        let eku = ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]);
        assert_refuses!(good().with_ext(ext(&eku, false)) =>
            LintError::MissingEku { eku } if *eku == ID_KP_CLIENT_AUTH);
    }

    #[test]
    fn basic_constraints_ca() {
        let basic = BasicConstraints { ca: true, path_len_constraint: None };
        assert_refuses!(good().with_ext(ext(&basic, true)) => LintError::CaTrue);
    }

    #[test]
    fn aki_without_key_id() {
        let aki = AuthorityKeyIdentifier::default();
        assert_refuses!(good().with_ext(ext(&aki, false)) => LintError::AkiWithoutKeyId);
    }

    #[test]
    fn invalid_dns_name() {
        assert_refuses!(good().with_extra_san(dns("Mail.example.com")) =>
            LintError::InvalidDnsName { name, source: NameError::Uppercase { .. } }
                if name == "Mail.example.com");
        assert_refuses!(good().with_extra_san(dns("under_score.example")) =>
            LintError::InvalidDnsName { .. });
    }

    #[test]
    fn bad_wildcard() {
        assert_refuses!(good().with_extra_san(dns("a*.example.com")) =>
            LintError::BadWildcard { .. });
        assert_refuses!(good().with_extra_san(dns("*.*.example.com")) =>
            LintError::BadWildcard { .. });
    }

    #[test]
    fn ip_san_wrong_length() {
        assert_refuses!(good().with_extra_san(ip(&[10, 0, 0])) =>
            LintError::InvalidIpSan { source: NameError::BadIpLength { len: 3 }, .. });
    }

    #[test]
    fn ip_san_not_allowed() {
        let policy = LintPolicy { allow_ip_sans: false, ..policy() };
        assert_refuses!(good(), &policy =>
            LintError::IpSanNotAllowed { ip } if ip.to_string() == "192.0.2.1");
    }

    #[test]
    fn invalid_uri_san() {
        let sans = vec![dns("www.example.com"), uri("https://example.com/")];
        assert_refuses!(good().with_sans(sans) =>
            LintError::InvalidUriSan { source: NameError::UnsupportedUriScheme { .. }, .. });
        let sans = vec![dns("www.example.com"), uri("spiffe://example.com/a/../b")];
        assert_refuses!(good().with_sans(sans) => LintError::InvalidUriSan { .. });
    }

    #[test]
    fn unsupported_san_kind() {
        let email = GeneralName::Rfc822Name(Ia5String::new("admin@example.com").expect("IA5"));
        assert_refuses!(good().with_extra_san(email) =>
            LintError::UnsupportedSanKind { kind: "rfc822Name" });
        let dir = GeneralName::DirectoryName(Name::from_str("CN=x").expect("name"));
        assert_refuses!(good().with_extra_san(dir) =>
            LintError::UnsupportedSanKind { kind: "directoryName" });
    }

    #[test]
    fn duplicate_san() {
        assert_refuses!(good().with_extra_san(dns("www.example.com")) =>
            LintError::DuplicateSan { san } if san == "DNS:www.example.com");
        assert_refuses!(good().with_extra_san(ip(&[192, 0, 2, 1])) =>
            LintError::DuplicateSan { san } if san == "IP:192.0.2.1");
    }

    #[test]
    fn common_name_not_in_san() {
        let subject = Name::from_str("CN=other.example.com").expect("subject");
        assert_refuses!(Tbs { subject, ..good() } =>
            LintError::CommonNameNotInSan { cn } if cn == "other.example.com");
        // The textual form of an IP SAN is a valid CN.
        let subject = Name::from_str("CN=192.0.2.1").expect("subject");
        assert_eq!(lint(&Tbs { subject, ..good() }, &policy()), Ok(()));
    }

    #[test]
    fn empty_subject_needs_critical_san() {
        let tbs = Tbs { subject: Name::default(), ..good() };
        assert_refuses!(tbs.clone() => LintError::EmptySubjectSanNotCritical);
        let critical = tbs.with_ext(ext(&SubjectAltName(good_sans()), true));
        assert_eq!(lint(&critical, &policy()), Ok(()));
    }

    #[test]
    fn missing_uri_san() {
        let policy = LintPolicy { require_uri_san: true, ..policy() };
        let tbs = good().with_sans(vec![dns("www.example.com")]);
        assert_refuses!(tbs, &policy => LintError::MissingUriSan);
    }

    #[test]
    fn multiple_uri_sans() {
        let tbs = good().with_extra_san(uri("spiffe://example.com/ns/prod/api"));
        assert_refuses!(tbs => LintError::MultipleUriSans { count: 2 });
    }

    #[test]
    fn error_kinds_are_stable() {
        assert_eq!(lint_error_kind(&LintError::SerialZero), "serial-zero");
        let name = "a*.example.com".to_owned();
        let source = NameError::BadWildcard { reason: "" };
        assert_eq!(lint_error_kind(&LintError::BadWildcard { name, source }), "bad-wildcard");
        let weak = KeyError::WeakKey { key: crate::key::KeyKind::Rsa { bits: 1024 }, reason: "" };
        assert_eq!(lint_error_kind(&LintError::Key(weak)), "weak-key");
    }

    /// A responder TBS: the good leaf without SAN, with EKU OCSPSigning and ocsp-nocheck.
    fn responder() -> Tbs {
        use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
        let nocheck = Extension {
            extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK,
            critical: false,
            extn_value: OctetString::new(vec![0x05, 0x00]).expect("octets"),
        };
        good()
            .without_ext(SubjectAltName::OID)
            .with_ext(ext(&ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING]), true))
            .with_ext(nocheck)
    }

    #[test]
    fn ocsp_responder_lints() {
        use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
        let lint = |tbs: Tbs| lint_ocsp_responder_tbs(&tbs.to_der().expect("encode"), Duration::from_secs(90 * DAY));
        assert_eq!(lint(responder()), Ok(()));
        let both = ext(&ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH]), true);
        assert!(matches!(lint(responder().with_ext(both)), Err(LintError::ExtraEku { .. })));
        let leaf_eku = ext(&ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]), false);
        assert!(matches!(lint(responder().with_ext(leaf_eku)), Err(LintError::MissingEku { .. })));
        let missing = lint(responder().without_ext(ID_PKIX_OCSP_NOCHECK));
        assert!(matches!(missing, Err(LintError::MissingExtension { extension: "id-pkix-ocsp-nocheck" })));
        let not_null = Extension {
            extn_id: ID_PKIX_OCSP_NOCHECK,
            critical: false,
            extn_value: OctetString::new(vec![0x01, 0x01, 0xff]).expect("octets"),
        };
        assert!(matches!(lint(responder().with_ext(not_null)), Err(LintError::BadExtension { .. })));
        let signs_crls = ext(&KeyUsage(KeyUsages::DigitalSignature | KeyUsages::CRLSign), true);
        assert!(matches!(lint(responder().with_ext(signs_crls)), Err(LintError::CaKeyUsage)));
        let ca = ext(&BasicConstraints { ca: true, path_len_constraint: None }, true);
        assert!(matches!(lint(responder().with_ext(ca)), Err(LintError::CaTrue)));
        let long = Validity { not_before: time(NOT_BEFORE), not_after: time(NOT_BEFORE + 91 * DAY) };
        assert!(matches!(lint(Tbs { validity: long, ..responder() }), Err(LintError::LifetimeTooLong { .. })));
    }
}
