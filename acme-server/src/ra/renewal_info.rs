//! ACME Renewal Information (RFC 9773): which certificate a certID names, and when it should be renewed.

use castellan_acme_proto::b64;
use castellan_store::inventory::{CertificateRecord, CertificateStatus};
use serde::Serialize;

use super::{Ra, not_found};
use crate::problem::AcmeError;

/// How often clients should ask again (RFC 9773 §4.3 Retry-After), in seconds.
pub const RETRY_AFTER_SECS: u64 = 6 * 3600;

/// A parsed certID: base64url(AKI keyIdentifier) "." base64url(serial content octets) (RFC 9773 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertId {
    pub authority_key_id: Vec<u8>,
    pub serial: Vec<u8>,
}

impl CertId {
    pub fn parse(text: &str) -> Result<CertId, AcmeError> {
        let bad = |why: &str| AcmeError::malformed(format!("certID {text:?} is malformed: {why}"));
        let (aki, serial) = text.split_once('.').ok_or_else(|| bad("expected keyIdentifier.serial"))?;
        let authority_key_id = b64::decode(aki).map_err(|e| bad(&e.to_string()))?;
        let serial = b64::decode(serial).map_err(|e| bad(&e.to_string()))?;
        if authority_key_id.is_empty() || serial.is_empty() || serial.len() > 20 {
            return Err(bad("empty key identifier, or a serial that is empty or longer than 20 octets"));
        }
        // A DER INTEGER's content octets are minimal: a leading 0x00 only before a byte with the top bit set.
        if serial.len() > 1 && serial[0] == 0 && serial[1] & 0x80 == 0 {
            return Err(bad("the serial is not DER-minimal"));
        }
        Ok(CertId { authority_key_id, serial })
    }

    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    /// The certID of an inventory row, as clients compute it.
    pub fn of(certificate: &CertificateRecord) -> Option<String> {
        let serial = hex::decode(&certificate.serial).ok()?;
        Some(format!("{}.{}", b64::encode(&certificate.issuer_key_id), b64::encode(serial)))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuggestedWindow {
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    pub suggested_window: SuggestedWindow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation_url: Option<String>,
}

pub use castellan_authority::renewal::renewal_window;

pub use castellan_authority::clock::rfc3339;

impl Ra {
    /// The certificate a certID names, if we issued it.
    pub async fn certificate_by_cert_id(&self, cert_id: &CertId) -> Result<Option<CertificateRecord>, AcmeError> {
        let found = self.store().certificate_by_serial(&cert_id.authority_key_id, &cert_id.serial_hex()).await?;
        Ok(found.filter(|c| !matches!(c.status, CertificateStatus::Pending | CertificateStatus::Failed)))
    }

    pub async fn renewal_info(&self, cert_id_text: &str) -> Result<RenewalInfo, AcmeError> {
        let cert_id = CertId::parse(cert_id_text)?;
        let certificate = self
            .certificate_by_cert_id(&cert_id)
            .await?
            .ok_or_else(|| not_found("the certificate this certID names"))?;
        let (start, end) = renewal_window(&certificate, self.now());
        Ok(RenewalInfo {
            suggested_window: SuggestedWindow { start: rfc3339(start), end: rfc3339(end) },
            explanation_url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan_store::inventory::CertificateSource;

    fn record(not_before: i64, not_after: i64) -> CertificateRecord {
        CertificateRecord {
            id: castellan_store::CertificateId(1),
            issuer_id: None,
            issuer_key_id: vec![0x69, 0x88, 0x5b],
            issuer_dn: String::new(),
            serial: "00cafe".into(),
            status: CertificateStatus::Active,
            source: CertificateSource::InternalAcme,
            profile: None,
            subject: String::new(),
            names: vec![],
            tbs_sha256: vec![],
            cert_sha256: None,
            spki_sha256: vec![],
            certificate_der: None,
            not_before,
            not_after,
            account_id: None,
            owner: None,
            replaces_id: None,
            replaced_by_id: None,
            renewal_due_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn cert_ids_round_trip_and_reject_garbage() {
        let cert = record(0, 90);
        let text = CertId::of(&cert).unwrap();
        let parsed = CertId::parse(&text).unwrap();
        assert_eq!(parsed.serial_hex(), "00cafe");
        assert_eq!(parsed.authority_key_id, vec![0x69, 0x88, 0x5b]);
        // RFC 9773 §4.1's example.
        assert!(CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").is_ok());
        for bad in ["", "abc", ".AA", "aYhb.", "aYhb.AAE", "aYhb.!!", "aYhb.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(CertId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn window_is_centred_at_two_thirds() {
        let cert = record(1_000, 1_000 + 90 * 86_400);
        let (start, end) = renewal_window(&cert, 1_000);
        let centre = 1_000 + 60 * 86_400;
        assert_eq!((start + end) / 2, centre);
        assert_eq!(end - start, 9 * 86_400 - 1 + 1);
    }

    #[test]
    fn revoked_or_due_certificates_get_a_window_in_the_past() {
        let mut cert = record(1_000, 1_000 + 90 * 86_400);
        cert.status = CertificateStatus::Revoked;
        let now = 5_000;
        let (start, end) = renewal_window(&cert, now);
        assert!(start < end && end < now);
        cert.status = CertificateStatus::Active;
        cert.renewal_due_at = Some(now - 10);
        assert!(renewal_window(&cert, now).1 < now);
    }
}
