//! Order finalization (RFC 8555 §7.4): ready → processing with the CSR and the reserved inventory row, then
//! processing → valid with the signed certificate, or → invalid.
//!
//! The inventory row is reserved (`Store::reserve_certificate`, status pending) before `begin_finalize`, and the
//! HSM signs between `begin_finalize` and `complete_order`. A replica that dies in between leaves the order
//! processing and the row pending: `processing_orders` finds them for recovery.

use super::model::OrderRecord;
use super::orders::order_in;
use super::{Kind, audit, json_text, why_not};
use crate::Store;
use crate::audit::{AuditEvent, audit_append_in};
use crate::error::{Result, StoreError};
use crate::ids::{CertificateId, OrderId};
use crate::write::Durability;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

impl Store {
    /// ready → processing, storing the CSR and the id of the already reserved (pending) certificate row. False if
    /// the order is not ready (of concurrent finalizations exactly one gets true); NotFound for an unknown order.
    /// Audit "order.finalize".
    pub async fn begin_finalize(
        &self,
        order_id: OrderId,
        csr_der: &[u8],
        certificate_id: CertificateId,
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let done = sqlx::query(
            "UPDATE orders SET status = 'processing', csr_der = $1, certificate_id = $2, updated_at = $3 \
             WHERE id = $4 AND status = 'ready'",
        )
        .bind(csr_der)
        .bind(certificate_id)
        .bind(self.now())
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            if super::status_of(&mut tx, Kind::Order, order_id).await?.is_none() {
                return Err(Kind::Order.not_found(order_id));
            }
            return Ok(false);
        }
        let details = json!({ "certificate_id": certificate_id, "csr_sha256": hex::encode(Sha256::digest(csr_der)) });
        audit(&mut tx, actor, "order.finalize", Kind::Order.subject(order_id), details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// In one transaction: the order's reserved certificate row is completed (DER, hash, status active — what
    /// `Store::complete_certificate` does), the order goes processing → valid, and when the order replaces
    /// `replaces_certificate_id` the two rows are linked (`replaced_by_id` on the old, `replaces_id` on the new),
    /// and `event` (the issuance's audit entry, which the caller words) is appended. Invalid unless the order is
    /// processing; Conflict if the row is no longer pending.
    pub async fn complete_order(
        &self,
        order_id: OrderId,
        certificate_der: &[u8],
        cert_sha256: &[u8],
        replaces_certificate_id: Option<CertificateId>,
        event: &AuditEvent,
    ) -> Result<OrderRecord> {
        let now = self.now();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let certificate_id: Option<Option<CertificateId>> = sqlx::query_scalar(
            "UPDATE orders SET status = 'valid', updated_at = $1 WHERE id = $2 AND status = 'processing' \
             RETURNING certificate_id",
        )
        .bind(now)
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?;
        let certificate_id = match certificate_id {
            None => return Err(why_not(&mut tx, Kind::Order, order_id, "processing").await),
            Some(None) => {
                return Err(StoreError::Corrupt(format!("order {order_id} is processing without a certificate")));
            }
            Some(Some(id)) => id,
        };

        crate::inventory::complete_in(&mut tx, certificate_id, certificate_der, cert_sha256).await?;

        if let Some(old) = replaces_certificate_id {
            if old == certificate_id {
                return Err(StoreError::Invalid {
                    what: "replacement",
                    why: format!("certificate {old} cannot replace itself"),
                });
            }
            let linked = sqlx::query("UPDATE certificates SET replaced_by_id = $1, updated_at = $2 WHERE id = $3")
                .bind(certificate_id)
                .bind(now)
                .bind(old)
                .execute(&mut **tx)
                .await?;
            if linked.rows_affected() != 1 {
                return Err(Kind::Certificate.not_found(old));
            }
            sqlx::query("UPDATE certificates SET replaces_id = $1 WHERE id = $2")
                .bind(old)
                .bind(certificate_id)
                .execute(&mut **tx)
                .await?;
        }

        let order = order_in(&mut tx, order_id).await?;
        // Last before commit: appending holds the audit chain's lock until the transaction ends.
        let at = tx.now;
        audit_append_in(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// processing → invalid with `error`. The reserved certificate row becomes failed only when
    /// `certificate_failed` (the HSM refused to sign, so nothing exists under that serial); otherwise a signature
    /// may exist and the row stays pending for an operator. Audit "order.invalid".
    pub async fn fail_order(
        &self,
        order_id: OrderId,
        error: &Value,
        certificate_failed: bool,
        actor: &str,
    ) -> Result<OrderRecord> {
        let now = self.now();
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let certificate_id: Option<Option<CertificateId>> = sqlx::query_scalar(
            "UPDATE orders SET status = 'invalid', error_json = $1, updated_at = $2 \
             WHERE id = $3 AND status = 'processing' RETURNING certificate_id",
        )
        .bind(json_text(error)?)
        .bind(now)
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(certificate_id) = certificate_id else {
            return Err(why_not(&mut tx, Kind::Order, order_id, "processing").await);
        };
        let mut marked_failed = false;
        if let (true, Some(id)) = (certificate_failed, certificate_id) {
            let done = sqlx::query(
                "UPDATE certificates SET status = 'failed', updated_at = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            marked_failed = done.rows_affected() == 1;
        }
        let order = order_in(&mut tx, order_id).await?;
        let details = json!({
            "error": error,
            "certificate_id": certificate_id,
            "certificate_failed": marked_failed,
        });
        audit(&mut tx, actor, "order.invalid", Kind::Order.subject(order_id), details).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Orders left processing since before `updated_before` (a replica died mid-finalization), ids ascending, at
    /// most `limit`.
    pub async fn processing_orders(&self, updated_before: i64, limit: i64) -> Result<Vec<OrderId>> {
        super::check_limit(limit)?;
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'processing' AND updated_at < $1 ORDER BY id LIMIT $2",
        )
        .bind(updated_before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
