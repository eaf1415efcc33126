//! Alerts: a certificate about to expire that no successor has replaced, whatever its source (30, 7 and 1 days
//! before by default), and a managed certificate whose renewals keep failing. Each fires once per threshold per
//! certificate — the UNIQUE constraints say so, so replicas evaluating at once cannot fire it twice — and resolves
//! when a successor is issued (or the renewal succeeds).
//!
//! Delivery is an outbox: firing and resolving each queue one row per receiver in `alert_deliveries`, which
//! replicas claim with a lease, send, and retry with back-off; a receiver that is down delays its own deliveries
//! and nobody else's.

use crate::error::Result;
use crate::ids::{CertificateId, ManagedId};
use crate::write::{Durability, WriteTx};
use crate::{Backend, Store};
use serde::Serialize;
use sqlx::Row;

/// What an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    pub id: i64,
    /// "expiry_30d", "expiry_7d", … or "renewal_failing".
    pub kind: String,
    pub certificate_id: Option<CertificateId>,
    pub managed_id: Option<ManagedId>,
    pub fired_at: i64,
    pub resolved_at: Option<i64>,
}

/// One alert state ("firing" or "resolved") owed to one receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub receiver: String,
    pub state: String,
    pub attempts: i64,
    pub alert: AlertRecord,
    /// What the receiver is told about: the certificate, and the managed certificate it belongs to.
    pub certificate: Option<crate::inventory::CertificateRecord>,
    pub managed: Option<super::ManagedRecord>,
}

/// What one evaluation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertReport {
    pub fired: u64,
    pub resolved: u64,
}

const ALERT_COLUMNS: &str = "a.id, a.kind, a.certificate_id, a.managed_id, a.fired_at, a.resolved_at";

fn alert_from_row(row: &sqlx::any::AnyRow) -> Result<AlertRecord> {
    Ok(AlertRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        certificate_id: row.try_get("certificate_id")?,
        managed_id: row.try_get("managed_id")?,
        fired_at: row.try_get("fired_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

impl Store {
    /// Fires what is due and resolves what is over, queueing a delivery to each of `receivers` for every change.
    /// `expiry_days`: the thresholds (30, 7, 1), each applying to certificates that live longer than it (a 30-day
    /// alert about a 7-day certificate would say nothing but its lifetime). Castellan's own TLS and OCSP
    /// certificates (owner `castellan:…`) renew themselves in the token and are left out. `failures`: consecutive failed renewals that alert (a failing
    /// renewal whose certificate expires within 7 days alerts at once).
    pub async fn evaluate_alerts(
        &self,
        expiry_days: &[u32],
        failures: i64,
        receivers: &[String],
    ) -> Result<AlertReport> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let now = tx.now;
        let mut fired = Vec::new();
        for days in expiry_days {
            let kind = format!("expiry_{days}d");
            let ids: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO alerts (kind, certificate_id, fired_at) SELECT $1, id, $2 FROM certificates \
                 WHERE status IN ('active', 'expiring_soon', 'renewing') AND not_after <= $3 \
                 AND replaced_by_id IS NULL AND not_after - not_before > $4 \
                 AND (owner IS NULL OR owner NOT LIKE 'castellan:%') \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(&kind)
            .bind(now)
            .bind(now.saturating_add(i64::from(*days) * 86_400))
            .bind(i64::from(*days) * 86_400)
            .fetch_all(&mut **tx)
            .await?;
            fired.extend(ids);
        }
        let ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (kind, managed_id, certificate_id, fired_at) \
             SELECT 'renewal_failing', m.id, m.current_certificate_id, $1 FROM managed_certificates m LEFT JOIN certificates c ON c.id = m.current_certificate_id \
             WHERE m.status = 'active' AND m.failures > 0 \
             AND (m.failures >= $2 OR c.id IS NULL OR c.not_after <= $3) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(now)
        .bind(failures)
        .bind(now.saturating_add(7 * 86_400))
        .fetch_all(&mut **tx)
        .await?;
        fired.extend(ids);

        // Over: a successor replaced the certificate (or it was revoked: that is its own story), or the
        // renewals succeed again, or the name is no longer managed.
        let resolved: Vec<i64> = sqlx::query_scalar(
            "UPDATE alerts SET resolved_at = $1 WHERE resolved_at IS NULL AND ( \
             (kind <> 'renewal_failing' AND certificate_id IN \
                (SELECT id FROM certificates WHERE replaced_by_id IS NOT NULL OR status IN ('superseded', 'revoked'))) \
             OR (kind = 'renewal_failing' AND managed_id IN \
                (SELECT id FROM managed_certificates WHERE failures = 0 OR status <> 'active'))) RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        for (ids, state) in [(&fired, "firing"), (&resolved, "resolved")] {
            for id in ids {
                for receiver in receivers {
                    queue_delivery_in(&mut tx, *id, receiver, state).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(AlertReport { fired: fired.len() as u64, resolved: resolved.len() as u64 })
    }

    /// Claims up to `limit` deliveries due now for `owner`, for `lease_secs`.
    pub async fn claim_deliveries(&self, owner: &str, limit: i64, lease_secs: i64) -> Result<Vec<Delivery>> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let now = tx.now;
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM alert_deliveries WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $1) ORDER BY next_attempt_at, id LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "UPDATE alert_deliveries SET lease_owner = $1, lease_expires_at = $2 WHERE id = $3 \
                 RETURNING id, alert_id, receiver, state, attempts",
            )
            .bind(owner)
            .bind(now.saturating_add(lease_secs))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
            let alert_id: i64 = row.try_get("alert_id")?;
            let alert = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts a WHERE a.id = $1"))
                .bind(alert_id)
                .fetch_one(&mut **tx)
                .await?;
            claimed.push(Delivery {
                id: row.try_get("id")?,
                receiver: row.try_get("receiver")?,
                state: row.try_get("state")?,
                attempts: row.try_get("attempts")?,
                alert: alert_from_row(&alert)?,
                certificate: None,
                managed: None,
            });
        }
        tx.commit().await?;
        for delivery in &mut claimed {
            if let Some(id) = delivery.alert.certificate_id {
                delivery.certificate = Some(self.certificate(id).await?);
            }
            if let Some(id) = delivery.alert.managed_id {
                delivery.managed = Some(self.managed(id).await?);
            } else if let Some(id) = delivery.alert.certificate_id {
                delivery.managed = self.managed_by_certificates(&[id]).await?.remove(&id);
            }
        }
        Ok(claimed)
    }

    /// The receiver took it.
    pub async fn delivered(&self, delivery: &Delivery) -> Result<()> {
        let now = self.now();
        sqlx::query(
            "UPDATE alert_deliveries SET delivered_at = $1, attempts = attempts + 1, last_error = NULL, \
             lease_owner = NULL, lease_expires_at = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(delivery.id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The receiver did not take it: try again at `retry_at`.
    pub async fn delivery_failed(&self, delivery: &Delivery, error: &str, retry_at: i64) -> Result<()> {
        let error: String = error.replace('\0', "").chars().take(1000).collect();
        sqlx::query(
            "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
             lease_owner = NULL, lease_expires_at = NULL WHERE id = $3",
        )
        .bind(error)
        .bind(retry_at)
        .bind(delivery.id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Alerts, newest first (`firing_only`: those not resolved).
    pub async fn alerts(&self, firing_only: bool, limit: i64) -> Result<Vec<AlertRecord>> {
        crate::acme::check_limit(limit)?;
        let filter = if firing_only { "WHERE a.resolved_at IS NULL" } else { "" };
        let rows = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts a {filter} ORDER BY a.id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(alert_from_row).collect()
    }
}

async fn queue_delivery_in(tx: &mut WriteTx, alert: i64, receiver: &str, state: &str) -> Result<()> {
    let now = tx.now;
    sqlx::query(
        "INSERT INTO alert_deliveries (alert_id, receiver, state, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING",
    )
    .bind(alert)
    .bind(receiver)
    .bind(state)
    .bind(now)
    .execute(&mut ***tx)
    .await?;
    Ok(())
}
