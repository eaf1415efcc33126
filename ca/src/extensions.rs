//! Building the X.509 extensions Castellan puts in certificates.

use crate::error::CaError;
use const_oid::AssociatedOid;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP};
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints, SubjectKeyIdentifier,
};

/// Encodes `value` as an extension.
pub fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, CaError> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// A key identifier: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits (RFC 7093 §2 method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha256::digest(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

pub fn subject_key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Result<Extension, CaError> {
    extension(&SubjectKeyIdentifier(OctetString::new(key_identifier(spki))?), false)
}

/// AKI from the issuer certificate's own SKI when it has one, so chains built by others still link up.
pub fn authority_key_identifier(issuer: &x509_cert::Certificate) -> Result<Extension, CaError> {
    let key_id = issuer_key_id(issuer)?;
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_id)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

/// The issuer's key identifier: its SKI extension, or our computed one.
pub fn issuer_key_id(issuer: &x509_cert::Certificate) -> Result<Vec<u8>, CaError> {
    use der::Decode;
    let from_extension = issuer
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SubjectKeyIdentifier::OID)
        .map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()))
        .transpose()?;
    Ok(match from_extension {
        Some(ski) => ski.0.as_bytes().to_vec(),
        None => key_identifier(&issuer.tbs_certificate.subject_public_key_info),
    })
}

pub fn uri(value: &str) -> Result<GeneralName, CaError> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(value)?))
}

pub fn crl_distribution_point(url: &str) -> Result<Extension, CaError> {
    extension(
        &CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        }]),
        false,
    )
}

pub fn authority_info_access(ocsp: Option<&str>, ca_issuers: Option<&str>) -> Result<Option<Extension>, CaError> {
    let mut access = Vec::new();
    if let Some(url) = ocsp {
        access.push(AccessDescription { access_method: ID_AD_OCSP, access_location: uri(url)? });
    }
    if let Some(url) = ca_issuers {
        access.push(AccessDescription { access_method: ID_AD_CA_ISSUERS, access_location: uri(url)? });
    }
    if access.is_empty() {
        return Ok(None);
    }
    extension(&AuthorityInfoAccessSyntax(access), false).map(Some)
}
