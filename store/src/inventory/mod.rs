//! The certificate inventory: every certificate Castellan issued, manages, obtained publicly or discovered.
//!
//! Issuance writes in two steps around the HSM signature: `reserve_certificate` records the serial and the TBS
//! hash (status `pending`) before signing — the database's UNIQUE (issuer_key_id, serial) makes a reused serial
//! impossible — and `complete_certificate` stores the signed certificate after. A crash between the two leaves a
//! pending row that names what may have been signed; it never leaves a signed certificate the inventory lacks.

mod bulk;
mod model;
mod search;

pub(crate) use model::{CERTIFICATE_COLUMNS, certificate_from_row};
pub use model::{CertificateRecord, CertificateSource, CertificateStatus, IssuerRecord, NewCertificate, NewIssuer};
pub use search::{CertificateQuery, NameMatch, Page};

use crate::Store;
use crate::error::{Result, StoreError};
use crate::ids::CertificateId;
use crate::write::{Durability, WriteTx};
use sqlx::Row;

/// Splits "DNS:www.example.com" into what the name index stores: the value, and its reversal for suffix search.
pub(crate) fn index_name(typed: &str) -> (String, String) {
    let value = typed.split_once(':').map(|(_, v)| v).unwrap_or(typed).to_ascii_lowercase();
    let reversed = value.chars().rev().collect();
    (value, reversed)
}

impl Store {
    /// Records one of our issuers (idempotent by name: the same certificate again returns the existing row).
    pub async fn register_issuer(&self, issuer: &NewIssuer) -> Result<IssuerRecord> {
        let now = self.now();
        let inserted = sqlx::query(
            "INSERT INTO issuers (name, role, subject, certificate_der, spki_sha256, key_id, token_label, key_label, \
             not_before, not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&issuer.name)
        .bind(&issuer.role)
        .bind(&issuer.subject)
        .bind(&issuer.certificate_der)
        .bind(&issuer.spki_sha256)
        .bind(&issuer.key_id)
        .bind(&issuer.token_label)
        .bind(&issuer.key_label)
        .bind(issuer.not_before)
        .bind(issuer.not_after)
        .bind(now)
        .execute(self.pool())
        .await?;
        let existing = self.issuer_by_name(&issuer.name).await?;
        if inserted.rows_affected() == 0 && existing.certificate_der != issuer.certificate_der {
            return Err(StoreError::Conflict { what: format!("a different issuer named {:?}", issuer.name) });
        }
        Ok(existing)
    }

    pub async fn issuer_by_name(&self, name: &str) -> Result<IssuerRecord> {
        let row = sqlx::query(&format!("SELECT {} FROM issuers WHERE name = $1", model::ISSUER_COLUMNS))
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound { what: format!("issuer {name:?}") })?;
        model::issuer_from_row(&row)
    }

    /// Step one of issuance: the serial and TBS hash, before the HSM signs. Returns the row id.
    pub async fn reserve_certificate(&self, cert: &NewCertificate) -> Result<CertificateId> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let id = reserve_in(&mut tx, cert).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Step two of issuance: the signed certificate. Only a pending row can be completed, and only once.
    pub async fn complete_certificate(
        &self,
        id: CertificateId,
        certificate_der: &[u8],
        cert_sha256: &[u8],
    ) -> Result<()> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        complete_in(&mut tx, id, certificate_der, cert_sha256).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Step two of issuance with its audit entry, in one transaction: the certificate is on record exactly when
    /// the log says it was issued.
    pub async fn complete_certificate_audited(
        &self,
        id: CertificateId,
        certificate_der: &[u8],
        cert_sha256: &[u8],
        event: &crate::audit::AuditEvent,
    ) -> Result<crate::audit::AuditEntry> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        complete_in(&mut tx, id, certificate_der, cert_sha256).await?;
        // Last before commit: appending holds the audit chain's lock until the transaction ends.
        let at = tx.now;
        let entry = crate::audit::audit_append_in(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Signing failed after the reservation: the serial stays used, the row says nothing was issued.
    pub async fn fail_certificate(&self, id: CertificateId) -> Result<()> {
        sqlx::query("UPDATE certificates SET status = 'failed', updated_at = $1 WHERE id = $2 AND status = 'pending'")
            .bind(self.now())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A complete certificate in one step (public, discovered or imported ones, and bulk loads).
    pub async fn insert_certificate(
        &self,
        cert: &NewCertificate,
        certificate_der: &[u8],
        cert_sha256: &[u8],
    ) -> Result<CertificateId> {
        // One transaction: a failure leaves nothing behind, not a pending row that blocks a second import.
        let mut tx = self.begin_write(Durability::Durable).await?;
        let id = reserve_in(&mut tx, cert).await?;
        complete_in(&mut tx, id, certificate_der, cert_sha256).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn certificate(&self, id: CertificateId) -> Result<CertificateRecord> {
        let row = sqlx::query(&format!("SELECT {} FROM certificates WHERE id = $1", model::CERTIFICATE_COLUMNS))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound { what: format!("certificate {id}") })?;
        model::certificate_from_row(&row)
    }

    /// Changes an issued certificate's lifecycle status (expiry sweeps, renewal, supersession). `pending` and
    /// `failed` belong to issuance alone: a signed certificate never goes back to pending (which would let a
    /// second completion overwrite it), and an unsigned row never becomes live.
    pub async fn set_certificate_status(&self, id: CertificateId, status: CertificateStatus) -> Result<()> {
        if matches!(status, CertificateStatus::Pending | CertificateStatus::Failed) {
            return Err(StoreError::Invalid {
                what: "status change",
                why: format!("{} is set by issuance only", status.as_str()),
            });
        }
        let done = sqlx::query(
            "UPDATE certificates SET status = $1, updated_at = $2 WHERE id = $3 AND status NOT IN ('pending', 'failed')",
        )
                .bind(status.as_str())
                .bind(self.now())
                .bind(id)
                .execute(self.pool())
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound { what: format!("issued certificate {id}") });
        }
        Ok(())
    }

    /// How many certificates the inventory holds (all statuses).
    pub async fn certificate_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM certificates").fetch_one(self.pool()).await?;
        Ok(row.try_get(0)?)
    }
}

async fn insert_names(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: CertificateId, names: &[String]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for typed in names {
        let (value, reversed) = index_name(typed);
        if !seen.insert(value.clone()) {
            continue;
        }
        sqlx::query("INSERT INTO certificate_names (certificate_id, name, name_reversed) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(value)
            .bind(reversed)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Completes a pending certificate row inside the caller's transaction (issuance and ACME finalization).
pub(crate) async fn complete_in(
    tx: &mut WriteTx,
    id: CertificateId,
    certificate_der: &[u8],
    cert_sha256: &[u8],
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE certificates SET status = 'active', certificate_der = $1, cert_sha256 = $2, updated_at = $3 \
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(certificate_der)
    .bind(cert_sha256)
    .bind(tx.now)
    .bind(id)
    .execute(&mut ***tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict { what: format!("certificate {id} is not pending") });
    }
    Ok(())
}

/// Inserts a pending row and its names in the caller's transaction.
async fn reserve_in(tx: &mut WriteTx, cert: &NewCertificate) -> Result<CertificateId> {
    cert.validate()?;
    let now = tx.now;
    let id: CertificateId = sqlx::query_scalar(
            "INSERT INTO certificates (issuer_id, issuer_key_id, issuer_dn, serial, status, source, profile, subject, \
             sans_json, tbs_sha256, spki_sha256, not_before, not_after, account_id, owner, replaces_id, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) \
             RETURNING id",
        )
        .bind(cert.issuer_id)
        .bind(&cert.issuer_key_id)
        .bind(&cert.issuer_dn)
        .bind(&cert.serial)
        .bind(cert.source.as_str())
        .bind(&cert.profile)
        .bind(&cert.subject)
        .bind(serde_json::to_string(&cert.names).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(&cert.tbs_sha256)
        .bind(&cert.spki_sha256)
        .bind(cert.not_before)
        .bind(cert.not_after)
        .bind(cert.account_id)
        .bind(&cert.owner)
        .bind(cert.replaces_id)
        .bind(now)
        .fetch_one(&mut ***tx)
        .await
        .map_err(|e| {
            if StoreError::is_unique_violation(&e) {
                StoreError::Conflict { what: format!("serial {} for this issuer", cert.serial) }
            } else {
                e.into()
            }
        })?;
    insert_names(&mut *tx, id, &cert.names).await?;
    Ok(id)
}
