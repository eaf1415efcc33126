//! What `/metrics` reads at each scrape: every live certificate's validity, and the renewal queue's state.

use crate::Store;
use crate::error::{Result, StoreError};
use crate::ids::CertificateId;
use crate::inventory::CertificateSource;
use sqlx::Row;

/// A live certificate as the `x509_cert_not_after` series names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCertificate {
    pub id: CertificateId,
    pub serial: String,
    /// The first name ("DNS:…"), as the subject's CN would be.
    pub first_name: Option<String>,
    pub issuer_dn: String,
    pub source: CertificateSource,
    pub not_before: i64,
    pub not_after: i64,
    /// The managed certificate it is the current certificate of.
    pub managed: Option<String>,
}

/// The renewal queue at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueState {
    pub managed: i64,
    /// Active managed certificates whose renewal is due (or overdue) now.
    pub due: i64,
    /// The earliest `next_renewal_at` among those due.
    pub oldest_due_at: Option<i64>,
    /// Active managed certificates whose last attempt failed.
    pub failing: i64,
}

impl Store {
    /// Every live certificate (active, expiring soon, renewing), soonest expiry first.
    pub async fn live_certificates(&self) -> Result<Vec<LiveCertificate>> {
        let rows = sqlx::query(
            "SELECT c.id, c.serial, c.sans_json, c.issuer_dn, c.source, c.not_before, c.not_after, m.name AS managed \
             FROM certificates c LEFT JOIN managed_certificates m \
             ON m.current_certificate_id = c.id AND m.status = 'active' \
             WHERE c.status IN ('active', 'expiring_soon', 'renewing') ORDER BY c.not_after, c.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let sans: String = row.try_get("sans_json")?;
                let names: Vec<String> =
                    serde_json::from_str(&sans).map_err(|e| StoreError::Corrupt(format!("sans_json: {e}")))?;
                let source: String = row.try_get("source")?;
                Ok(LiveCertificate {
                    id: row.try_get("id")?,
                    serial: row.try_get("serial")?,
                    first_name: names.into_iter().next(),
                    issuer_dn: row.try_get("issuer_dn")?,
                    source: CertificateSource::parse(&source)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown certificate source {source:?}")))?,
                    not_before: row.try_get("not_before")?,
                    not_after: row.try_get("not_after")?,
                    managed: row.try_get("managed")?,
                })
            })
            .collect()
    }

    pub async fn renewal_queue_state(&self) -> Result<QueueState> {
        let now = self.now();
        let row = sqlx::query(
            "SELECT COUNT(*) AS managed, \
             COALESCE(SUM(CASE WHEN next_renewal_at <= $1 THEN 1 ELSE 0 END), 0) AS due, \
             MIN(CASE WHEN next_renewal_at <= $1 THEN next_renewal_at END) AS oldest_due_at, \
             COALESCE(SUM(CASE WHEN failures > 0 THEN 1 ELSE 0 END), 0) AS failing \
             FROM managed_certificates WHERE status = 'active'",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(QueueState {
            managed: row.try_get("managed")?,
            due: row.try_get("due")?,
            oldest_due_at: row.try_get("oldest_due_at")?,
            failing: row.try_get("failing")?,
        })
    }
}
