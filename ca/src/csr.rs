//! PKCS#10 certificate signing requests: parse, check the signature, and read what they ask for.

use crate::error::CaError;
use crate::key::{self, KeyKind};
use const_oid::AssociatedOid;
use const_oid::db::rfc5912::ID_EXTENSION_REQ;
use der::{Decode, Encode};
use std::net::IpAddr;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::request::{CertReq, ExtensionReq};

/// One subject alternative name, in the form Castellan compares and stores.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SanName {
    Dns(String),
    Ip(IpAddr),
    Uri(String),
}

impl std::fmt::Display for SanName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SanName::Dns(name) => write!(f, "DNS:{name}"),
            SanName::Ip(ip) => write!(f, "IP:{ip}"),
            SanName::Uri(uri) => write!(f, "URI:{uri}"),
        }
    }
}

/// A CSR whose signature has been verified.
#[derive(Clone, Debug)]
pub struct VerifiedCsr {
    pub request: CertReq,
    pub key_kind: KeyKind,
    /// The names asked for: the SAN extension's entries, then a commonName not already among them.
    pub names: Vec<SanName>,
}

/// Accepts DER or PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST").
pub fn parse_csr(input: &[u8]) -> Result<CertReq, CaError> {
    let der = if input.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(input).map_err(|e| CaError::MalformedCsr(format!("PEM: {e}")))?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CaError::MalformedCsr(format!("PEM label is {label:?}, not CERTIFICATE REQUEST")));
        }
        der
    } else {
        input.to_vec()
    };
    CertReq::from_der(&der).map_err(|e| CaError::MalformedCsr(e.to_string()))
}

/// Parses a CSR, verifies its self-signature and checks its key, and extracts the requested names.
pub fn verify_csr(input: &[u8]) -> Result<VerifiedCsr, CaError> {
    let request = parse_csr(input)?;
    let key_kind = key::classify(&request.info.public_key).map_err(CaError::BadKey)?;
    key::check_strength(&key_kind).map_err(CaError::BadKey)?;
    let info = request.info.to_der()?;
    let signature =
        request.signature.as_bytes().ok_or_else(|| CaError::MalformedCsr("signature has unused bits".into()))?;
    key::verify_signature(&request.info.public_key, &request.algorithm, &info, signature)
        .map_err(CaError::CsrSignature)?;
    let names = requested_names(&request)?;
    Ok(VerifiedCsr { request, key_kind, names })
}

fn requested_names(request: &CertReq) -> Result<Vec<SanName>, CaError> {
    let mut names = Vec::new();
    for attribute in request.info.attributes.iter().filter(|a| a.oid == ID_EXTENSION_REQ) {
        for value in attribute.values.iter() {
            let extensions: ExtensionReq =
                value.decode_as().map_err(|e| CaError::MalformedCsr(format!("extensionRequest: {e}")))?;
            for extension in extensions.0.iter().filter(|e| e.extn_id == SubjectAltName::OID) {
                let san = SubjectAltName::from_der(extension.extn_value.as_bytes())
                    .map_err(|e| CaError::MalformedCsr(format!("subjectAltName: {e}")))?;
                for name in san.0 {
                    names.push(san_name(&name)?);
                }
            }
        }
    }
    if let Some(cn) = common_name(&request.info.subject)? {
        let as_name = match cn.parse::<IpAddr>() {
            Ok(ip) => SanName::Ip(ip),
            Err(_) => SanName::Dns(cn),
        };
        if !names.contains(&as_name) {
            names.push(as_name);
        }
    }
    Ok(names)
}

fn san_name(name: &GeneralName) -> Result<SanName, CaError> {
    match name {
        GeneralName::DnsName(dns) => Ok(SanName::Dns(dns.as_str().to_owned())),
        GeneralName::UniformResourceIdentifier(uri) => Ok(SanName::Uri(uri.as_str().to_owned())),
        GeneralName::IpAddress(octets) => {
            crate::names::ip_from_san_octets(octets.as_bytes()).map(SanName::Ip).map_err(CaError::BadIdentifier)
        }
        other => Err(CaError::MalformedCsr(format!(
            "unsupported subjectAltName type {}",
            crate::names::general_name_kind(other)
        ))),
    }
}

/// The subject's commonName, if any (the last one, as RFC 6125 clients read it).
pub fn common_name(subject: &x509_cert::name::Name) -> Result<Option<String>, CaError> {
    use const_oid::db::rfc4519::CN;
    let mut found = None;
    for rdn in subject.0.iter() {
        for atv in rdn.0.iter().filter(|atv| atv.oid == CN) {
            let text = atv
                .value
                .decode_as::<der::asn1::Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| atv.value.decode_as::<der::asn1::PrintableStringRef<'_>>().map(|s| s.as_str().to_owned()))
                .or_else(|_| atv.value.decode_as::<der::asn1::Ia5StringRef<'_>>().map(|s| s.as_str().to_owned()))
                .map_err(|e| CaError::MalformedCsr(format!("commonName: {e}")))?;
            found = Some(text);
        }
    }
    Ok(found)
}
