//! Inventory rows as Rust values.

use crate::error::{Result, StoreError};
use crate::ids::{AccountId, CertificateId, IssuerId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    /// Reserved before signing; not (yet) a certificate.
    Pending,
    Active,
    ExpiringSoon,
    Renewing,
    Superseded,
    Expired,
    Revoked,
    /// Signing failed after the reservation.
    Failed,
}

impl CertificateStatus {
    pub const ALL: [CertificateStatus; 8] = [
        CertificateStatus::Pending,
        CertificateStatus::Active,
        CertificateStatus::ExpiringSoon,
        CertificateStatus::Renewing,
        CertificateStatus::Superseded,
        CertificateStatus::Expired,
        CertificateStatus::Revoked,
        CertificateStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Pending => "pending",
            CertificateStatus::Active => "active",
            CertificateStatus::ExpiringSoon => "expiring_soon",
            CertificateStatus::Renewing => "renewing",
            CertificateStatus::Superseded => "superseded",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Revoked => "revoked",
            CertificateStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CertificateStatus> {
        CertificateStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateSource {
    InternalAcme,
    ManagedInternal,
    ManagedPublic,
    Discovered,
}

impl CertificateSource {
    pub const ALL: [CertificateSource; 4] = [
        CertificateSource::InternalAcme,
        CertificateSource::ManagedInternal,
        CertificateSource::ManagedPublic,
        CertificateSource::Discovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertificateSource::InternalAcme => "internal_acme",
            CertificateSource::ManagedInternal => "managed_internal",
            CertificateSource::ManagedPublic => "managed_public",
            CertificateSource::Discovered => "discovered",
        }
    }

    pub fn parse(s: &str) -> Option<CertificateSource> {
        CertificateSource::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What is known of a certificate before it is signed (or, for foreign certificates, all of it but the DER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCertificate {
    pub issuer_id: Option<IssuerId>,
    pub issuer_key_id: Vec<u8>,
    pub issuer_dn: String,
    /// Lower-case hex of the serial's content octets.
    pub serial: String,
    pub source: CertificateSource,
    pub profile: Option<String>,
    pub subject: String,
    /// Typed names: "DNS:www.example.com", "IP:10.0.0.1", "URI:spiffe://…".
    pub names: Vec<String>,
    pub tbs_sha256: Vec<u8>,
    pub spki_sha256: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub account_id: Option<AccountId>,
    pub owner: Option<String>,
    pub replaces_id: Option<CertificateId>,
}

impl NewCertificate {
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |why: &str| Err(StoreError::Invalid { what: "certificate", why: why.to_owned() });
        if self.serial.is_empty() || !self.serial.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return invalid("serial must be lower-case hex");
        }
        if self.tbs_sha256.len() != 32 || self.spki_sha256.len() != 32 {
            return invalid("hashes must be SHA-256 (32 bytes)");
        }
        if self.not_after < self.not_before {
            return invalid("notAfter is before notBefore");
        }
        if self.names.iter().any(|n| !(n.starts_with("DNS:") || n.starts_with("IP:") || n.starts_with("URI:"))) {
            return invalid("names must be typed DNS:, IP: or URI:");
        }
        Ok(())
    }
}

/// A row of the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateRecord {
    pub id: CertificateId,
    pub issuer_id: Option<IssuerId>,
    pub issuer_key_id: Vec<u8>,
    pub issuer_dn: String,
    pub serial: String,
    pub status: CertificateStatus,
    pub source: CertificateSource,
    pub profile: Option<String>,
    pub subject: String,
    pub names: Vec<String>,
    pub tbs_sha256: Vec<u8>,
    pub cert_sha256: Option<Vec<u8>>,
    pub spki_sha256: Vec<u8>,
    #[serde(skip)]
    pub certificate_der: Option<Vec<u8>>,
    pub not_before: i64,
    pub not_after: i64,
    pub account_id: Option<AccountId>,
    pub owner: Option<String>,
    pub replaces_id: Option<CertificateId>,
    pub replaced_by_id: Option<CertificateId>,
    pub renewal_due_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const CERTIFICATE_COLUMNS: &str = "id, issuer_id, issuer_key_id, issuer_dn, serial, status, source, profile, \
    subject, sans_json, tbs_sha256, cert_sha256, spki_sha256, certificate_der, not_before, not_after, account_id, \
    owner, replaces_id, replaced_by_id, renewal_due_at, created_at, updated_at";

pub(crate) fn certificate_from_row(row: &AnyRow) -> Result<CertificateRecord> {
    let status: String = row.try_get("status")?;
    let source: String = row.try_get("source")?;
    let sans: String = row.try_get("sans_json")?;
    Ok(CertificateRecord {
        id: row.try_get("id")?,
        issuer_id: row.try_get("issuer_id")?,
        issuer_key_id: row.try_get("issuer_key_id")?,
        issuer_dn: row.try_get("issuer_dn")?,
        serial: row.try_get("serial")?,
        status: CertificateStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown certificate status {status:?}")))?,
        source: CertificateSource::parse(&source)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown certificate source {source:?}")))?,
        profile: row.try_get("profile")?,
        subject: row.try_get("subject")?,
        names: serde_json::from_str(&sans).map_err(|e| StoreError::Corrupt(format!("sans_json: {e}")))?,
        tbs_sha256: row.try_get("tbs_sha256")?,
        cert_sha256: row.try_get("cert_sha256")?,
        spki_sha256: row.try_get("spki_sha256")?,
        certificate_der: row.try_get("certificate_der")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        account_id: row.try_get("account_id")?,
        owner: row.try_get("owner")?,
        replaces_id: row.try_get("replaces_id")?,
        replaced_by_id: row.try_get("replaced_by_id")?,
        renewal_due_at: row.try_get("renewal_due_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One of our CA certificates and where its key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIssuer {
    pub name: String,
    /// root, intermediate or ocsp-responder.
    pub role: String,
    pub subject: String,
    pub certificate_der: Vec<u8>,
    pub spki_sha256: Vec<u8>,
    pub key_id: Vec<u8>,
    pub token_label: Option<String>,
    pub key_label: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerRecord {
    pub id: IssuerId,
    pub name: String,
    pub role: String,
    pub subject: String,
    pub certificate_der: Vec<u8>,
    pub spki_sha256: Vec<u8>,
    pub key_id: Vec<u8>,
    pub token_label: Option<String>,
    pub key_label: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub status: String,
}

pub(crate) const ISSUER_COLUMNS: &str = "id, name, role, subject, certificate_der, spki_sha256, key_id, token_label, key_label, not_before, not_after, status";

pub(crate) fn issuer_from_row(row: &AnyRow) -> Result<IssuerRecord> {
    Ok(IssuerRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        subject: row.try_get("subject")?,
        certificate_der: row.try_get("certificate_der")?,
        spki_sha256: row.try_get("spki_sha256")?,
        key_id: row.try_get("key_id")?,
        token_label: row.try_get("token_label")?,
        key_label: row.try_get("key_label")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        status: row.try_get("status")?,
    })
}
