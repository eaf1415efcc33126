//! The issuing CA as the RA, the status service and the binary use it: the issuer (whose key is in the token),
//! how the inventory names it, and the row every issuance reserves before the HSM signs.

use castellan_ca::responder::PreparedResponder;
use castellan_ca::{Issuer, PreparedCertificate};
use castellan_hsm::HsmSigner;
use castellan_store::inventory::{CertificateSource, NewCertificate};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::SystemTime;

pub struct IssuingCa {
    pub issuer: Arc<Issuer<HsmSigner>>,
    pub issuer_id: i64,
    pub issuer_key_id: Vec<u8>,
    pub issuer_dn: String,
}

/// What the inventory needs of a certificate decided but not yet signed (a leaf or the OCSP responder's).
pub struct Reservation<'a> {
    pub serial_hex: &'a str,
    pub subject: &'a str,
    /// "DNS:…", "IP:…", "URI:…": SanName's Display is the inventory's typed form.
    pub names: Vec<String>,
    pub tbs_sha256: &'a [u8; 32],
    pub spki_der: &'a [u8],
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl<'a> From<&'a PreparedCertificate> for Reservation<'a> {
    fn from(p: &'a PreparedCertificate) -> Self {
        Reservation {
            serial_hex: &p.serial_hex,
            subject: &p.subject,
            names: p.names.iter().map(ToString::to_string).collect(),
            tbs_sha256: &p.tbs_sha256,
            spki_der: &p.spki_der,
            not_before: p.not_before,
            not_after: p.not_after,
        }
    }
}

impl<'a> From<&'a PreparedResponder> for Reservation<'a> {
    fn from(p: &'a PreparedResponder) -> Self {
        Reservation {
            serial_hex: &p.serial_hex,
            subject: &p.subject,
            names: Vec::new(),
            tbs_sha256: &p.tbs_sha256,
            spki_der: &p.spki_der,
            not_before: p.not_before,
            not_after: p.not_after,
        }
    }
}

/// Who asked for a certificate, as the inventory records it.
pub struct Requester {
    pub source: CertificateSource,
    /// The profile name to file it under (an ACME profile, a CA profile, …).
    pub profile: Option<String>,
    pub account_id: Option<i64>,
    pub owner: Option<String>,
}

impl IssuingCa {
    /// The `pending` row reserved for a prepared certificate (serial, TBS hash, names) before it is signed.
    pub fn pending_row<'a>(&self, prepared: impl Into<Reservation<'a>>, requester: Requester) -> NewCertificate {
        let prepared = prepared.into();
        NewCertificate {
            issuer_id: Some(self.issuer_id),
            issuer_key_id: self.issuer_key_id.clone(),
            issuer_dn: self.issuer_dn.clone(),
            serial: prepared.serial_hex.to_owned(),
            source: requester.source,
            profile: requester.profile,
            subject: prepared.subject.to_owned(),
            names: prepared.names,
            tbs_sha256: prepared.tbs_sha256.to_vec(),
            spki_sha256: Sha256::digest(prepared.spki_der).to_vec(),
            not_before: unix_seconds(prepared.not_before),
            not_after: unix_seconds(prepared.not_after),
            account_id: requester.account_id,
            owner: requester.owner,
            replaces_id: None,
        }
    }
}

/// A time as the store keeps it: Unix seconds, saturating.
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}
