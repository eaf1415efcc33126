//! The CA's own certificates: the root, the intermediate it signs, and the enterprise path where an external
//! root signs our intermediate from a CSR.

use crate::error::CaError;
use crate::extensions::{authority_key_identifier, extension, subject_key_identifier};
use crate::issuer::validity;
use crate::serial::random_serial;
use crate::sign::{CaSigner, sign_tbs, signer_public_key, verify_certificate_signature};
use const_oid::AssociatedOid;
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use flagset::FlagSet;
use spki::{EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::request::CertReq;

/// Name constraints for the intermediate: which DNS subtrees and IP ranges it may issue for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameConstraintSpec {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<IpNet>,
    pub excluded_ip: Vec<IpNet>,
}

/// An IP network in CIDR form, e.g. 10.0.0.0/8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self, CaError> {
        let bad = || CaError::BadCaCertificate(format!("{s:?} is not an IP network in CIDR form (10.0.0.0/8)"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    /// RFC 5280 §4.2.1.10: address octets followed by mask octets.
    fn to_octets(self) -> Vec<u8> {
        let (addr, bits) = match self.addr {
            IpAddr::V4(v4) => (v4.octets().to_vec(), 32u32),
            IpAddr::V6(v6) => (v6.octets().to_vec(), 128u32),
        };
        let prefix = u32::from(self.prefix);
        let mask: Vec<u8> = (0..bits / 8)
            .map(|i| {
                let start = i * 8;
                let ones = prefix.saturating_sub(start).min(8);
                if ones == 0 { 0 } else { 0xffu8 << (8 - ones) }
            })
            .collect();
        let network: Vec<u8> = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
        [network, mask].concat()
    }
}

impl NameConstraintSpec {
    pub fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty()
            && self.excluded_dns.is_empty()
            && self.permitted_ip.is_empty()
            && self.excluded_ip.is_empty()
    }

    fn to_extension_value(&self) -> Result<NameConstraints, CaError> {
        let subtrees = |dns: &[String], ip: &[IpNet]| -> Result<Option<Vec<GeneralSubtree>>, CaError> {
            let mut out = Vec::new();
            for name in dns {
                // A constraint "corp.example" also matches its subdomains (RFC 5280 §4.2.1.10); a leading dot
                // is tolerated but not needed.
                let name = name.trim_start_matches('.');
                crate::names::validate_dns_name_no_wildcard(name)?;
                out.push(GeneralSubtree {
                    base: GeneralName::DnsName(Ia5String::new(name)?),
                    minimum: 0,
                    maximum: None,
                });
            }
            for net in ip {
                out.push(GeneralSubtree {
                    base: GeneralName::IpAddress(OctetString::new(net.to_octets())?),
                    minimum: 0,
                    maximum: None,
                });
            }
            Ok(if out.is_empty() { None } else { Some(out) })
        };
        Ok(NameConstraints {
            permitted_subtrees: subtrees(&self.permitted_dns, &self.permitted_ip)?,
            excluded_subtrees: subtrees(&self.excluded_dns, &self.excluded_ip)?,
        })
    }
}

fn ca_key_usage() -> KeyUsage {
    KeyUsage(FlagSet::from(KeyUsages::KeyCertSign) | KeyUsages::CRLSign | KeyUsages::DigitalSignature)
}

/// A self-signed root certificate for the key behind `signer`.
pub fn self_signed_root<S, Sig>(
    signer: &S,
    subject: Name,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Certificate, CaError>
where
    S: CaSigner<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let spki = signer_public_key(signer)?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial(),
        signature: signer.signature_algorithm_identifier()?,
        issuer: subject.clone(),
        validity: validity(now, end_of_lifetime(now, lifetime)?)?,
        subject,
        extensions: Some(vec![
            extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?,
            extension(&ca_key_usage(), true)?,
            subject_key_identifier(&spki)?,
        ]),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
    };
    let root = sign_tbs(&tbs, signer)?.0;
    // A faulty RSA-CRT signature gives the key away (Lenstra's attack): check it before the root leaves here.
    // A one-off ceremony, so every key type is checked, not only RSA.
    verify_certificate_signature(&root, &root.tbs_certificate.subject_public_key_info)?;
    Ok(root)
}

/// `now + lifetime`, or a typed error instead of SystemTime's overflow panic for an absurd configured lifetime.
fn end_of_lifetime(now: SystemTime, lifetime: Duration) -> Result<SystemTime, CaError> {
    now.checked_add(lifetime).ok_or(CaError::LifetimeOutOfRange { requested_secs: lifetime.as_secs() })
}

/// An intermediate certificate (pathLenConstraint 0) for `intermediate_key`, signed by the root.
pub fn sign_intermediate<S, Sig>(
    root_signer: &S,
    root: &Certificate,
    intermediate_key: &SubjectPublicKeyInfoOwned,
    subject: Name,
    lifetime: Duration,
    constraints: &NameConstraintSpec,
    now: SystemTime,
) -> Result<Certificate, CaError>
where
    S: CaSigner<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    if signer_public_key(root_signer)? != root.tbs_certificate.subject_public_key_info {
        return Err(CaError::SignerMismatch);
    }
    // An intermediate never outlives its root: clients would reject the tail of its life anyway.
    let root_end = root.tbs_certificate.validity.not_after.to_system_time();
    let not_after = end_of_lifetime(now, lifetime)?.min(root_end);
    let mut extensions = vec![
        extension(&BasicConstraints { ca: true, path_len_constraint: Some(0) }, true)?,
        extension(&ca_key_usage(), true)?,
        subject_key_identifier(intermediate_key)?,
        authority_key_identifier(root)?,
    ];
    if !constraints.is_empty() {
        extensions.push(extension(&constraints.to_extension_value()?, true)?);
    }
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: random_serial(),
        signature: root_signer.signature_algorithm_identifier()?,
        issuer: root.tbs_certificate.subject.clone(),
        validity: validity(now, not_after)?,
        subject,
        subject_public_key_info: intermediate_key.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let intermediate = sign_tbs(&tbs, root_signer)?.0;
    // As for the root: a faulty signature (RSA-CRT) would leak the root key, so check it under the root's key.
    verify_certificate_signature(&intermediate, &root.tbs_certificate.subject_public_key_info)?;
    Ok(intermediate)
}

/// A CSR for an intermediate whose key is behind `signer`, for an external (enterprise) root to sign.
pub fn intermediate_csr<S, Sig>(signer: &S, subject: Name) -> Result<CertReq, CaError>
where
    S: CaSigner<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let mut builder = RequestBuilder::new(subject, signer)?;
    builder.add_extension(&BasicConstraints { ca: true, path_len_constraint: Some(0) })?;
    builder.add_extension(&ca_key_usage())?;
    Ok(builder.build::<Sig>()?)
}

/// Checks an intermediate certificate an external root signed: it certifies the token key, it is a CA that may
/// sign certificates, it is currently valid, and it verifies under the root.
pub fn check_imported_intermediate(
    intermediate: &Certificate,
    token_key: &SubjectPublicKeyInfoOwned,
    root: &Certificate,
    now: SystemTime,
) -> Result<(), CaError> {
    let tbs = &intermediate.tbs_certificate;
    if tbs.subject_public_key_info != *token_key {
        return Err(CaError::BadCaCertificate(
            "the certificate is for a different key than the intermediate key in the token".into(),
        ));
    }
    if tbs.issuer != root.tbs_certificate.subject {
        return Err(CaError::BadCaCertificate(format!(
            "issued by {} but the root is {}",
            tbs.issuer, root.tbs_certificate.subject
        )));
    }
    verify_certificate_signature(intermediate, &root.tbs_certificate.subject_public_key_info)?;
    let basic = find_extension::<BasicConstraints>(intermediate)?
        .ok_or_else(|| CaError::BadCaCertificate("no basicConstraints extension".into()))?;
    if !basic.ca {
        return Err(CaError::BadCaCertificate("basicConstraints says this is not a CA".into()));
    }
    if let Some(usage) = find_extension::<KeyUsage>(intermediate)? {
        if !usage.0.contains(KeyUsages::KeyCertSign) {
            return Err(CaError::BadCaCertificate("keyUsage lacks keyCertSign".into()));
        }
    }
    if now < tbs.validity.not_before.to_system_time() || now > tbs.validity.not_after.to_system_time() {
        return Err(CaError::BadCaCertificate("the certificate is not valid now".into()));
    }
    Ok(())
}

fn find_extension<T: AssociatedOid + for<'a> Decode<'a>>(cert: &Certificate) -> Result<Option<T>, CaError> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == T::OID)
        .map(|e| T::from_der(e.extn_value.as_bytes()).map_err(CaError::from))
        .transpose()
}

/// PEM of a CSR.
pub fn csr_pem(csr: &CertReq) -> Result<String, CaError> {
    Ok(der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &csr.to_der()?)?)
}
