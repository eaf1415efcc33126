//! The renewal queue: managed certificates whose `next_renewal_at` has come, claimed by one replica at a time.
//!
//! A claim is a lease (`lease_owner`, `lease_expires_at`) written by a conditional UPDATE; on PostgreSQL the
//! candidates are picked `FOR UPDATE SKIP LOCKED`, so replicas claiming at once take different rows instead of
//! queueing on the same ones. A replica that dies mid-renewal leaves its lease to expire; the next claim marks its
//! rotation abandoned and starts another. Completing or failing a rotation names the lease owner, so a replica
//! whose lease was taken over cannot move the managed certificate any more.

use super::managed::{in_flight_in, managed_in, subject};
use super::model::{Claim, ManagedCompletion, ROTATION_COLUMNS, RenewalReason, RotationStatus, rotation_from_row};
use crate::audit::{AuditEvent, audit_append_in};
use crate::error::{Result, StoreError};
use crate::ids::{CertificateId, ManagedId, RotationId};
use crate::write::{Durability, WriteTx};
use crate::{Backend, Store};
use serde_json::json;

/// A certificate is expiring soon once two thirds of its life have passed, when its renewal window opens (for a
/// certificate of 90 days or more that is at least 30 days before it expires). `3·now ≥ notBefore + 2·notAfter` is
/// "two thirds have passed" without division.
pub(crate) const EXPIRING_SOON: &str = "3 * $1 >= not_before + 2 * not_after";

/// What a failed rotation left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRotation {
    pub failures: i64,
    pub next_attempt_at: i64,
}

impl Store {
    /// Claims up to `limit` due renewals for `owner` for `lease_secs`: each gets a running rotation (the queued
    /// one an operator asked for, or a new one for the reason the queue holds), and its current certificate moves
    /// to `renewing`.
    pub async fn claim_due_renewals(&self, owner: &str, limit: i64, lease_secs: i64) -> Result<Vec<Claim>> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let now = tx.now;
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let ids: Vec<ManagedId> = sqlx::query_scalar(&format!(
            "SELECT id FROM managed_certificates WHERE status = 'active' AND next_renewal_at <= $1 \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $1) ORDER BY next_renewal_at, id LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
        let mut claims = Vec::with_capacity(ids.len());
        for id in ids {
            sqlx::query(
                "UPDATE managed_certificates SET lease_owner = $1, lease_expires_at = $2, last_attempt_at = $3, \
                 updated_at = $3 WHERE id = $4",
            )
            .bind(owner)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            let managed = managed_in(&mut tx, id).await?;
            let rotation = match in_flight_in(&mut tx, id).await? {
                Some(queued) if queued.status == RotationStatus::Queued => {
                    start_rotation_in(&mut tx, queued.id, owner, managed.current_certificate_id).await?
                }
                in_flight => {
                    if let Some(running) = in_flight {
                        // Its replica's lease ran out: that attempt is over, whatever became of it.
                        let why = format!("the lease of {} expired", running.replica.as_deref().unwrap_or("a replica"));
                        sqlx::query(
                            "UPDATE rotations SET status = 'abandoned', error = $1, completed_at = $2 WHERE id = $3",
                        )
                        .bind(why)
                        .bind(now)
                        .bind(running.id)
                        .execute(&mut **tx)
                        .await?;
                    }
                    let reason = managed.renewal_reason.unwrap_or(RenewalReason::Scheduled);
                    let queued =
                        super::managed::queue_rotation_in(&mut tx, id, reason, managed.current_certificate_id).await?;
                    start_rotation_in(&mut tx, queued.id, owner, managed.current_certificate_id).await?
                }
            };
            if let Some(current) = managed.current_certificate_id {
                sqlx::query(
                    "UPDATE certificates SET status = 'renewing', updated_at = $1 \
                     WHERE id = $2 AND status IN ('active', 'expiring_soon')",
                )
                .bind(now)
                .bind(current)
                .execute(&mut **tx)
                .await?;
            }
            claims.push(Claim { managed, rotation, lease_owner: owner.to_owned() });
        }
        tx.commit().await?;
        Ok(claims)
    }

    /// In one transaction: the reserved certificate row is completed, its sealed key stored, and — while the
    /// rotation is still this replica's — it becomes the managed certificate's current one: the old certificate
    /// is superseded and linked to it, the rotation succeeds, the failure count resets and the next renewal is
    /// set; `event` (the issuance's audit entry) is appended. Returns whether it became current: false when the
    /// lease was lost meanwhile (the certificate is then on record, superseded, replacing nothing).
    pub async fn complete_managed(
        &self,
        certificate_id: CertificateId,
        certificate_der: &[u8],
        cert_sha256: &[u8],
        completion: &ManagedCompletion,
        event: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        let now = tx.now;
        crate::inventory::complete_in(&mut tx, certificate_id, certificate_der, cert_sha256).await?;
        sqlx::query(
            "INSERT INTO sealed_keys (certificate_id, managed_id, kek_label, key_type, sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(certificate_id)
        .bind(completion.managed_id)
        .bind(&completion.kek_label)
        .bind(&completion.key_type)
        .bind(&completion.sealed_key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let old: Option<Option<CertificateId>> = sqlx::query_scalar(
            "UPDATE managed_certificates SET updated_at = updated_at \
             WHERE id = $1 AND status = 'active' AND lease_owner = $2 RETURNING current_certificate_id",
        )
        .bind(completion.managed_id)
        .bind(&completion.lease_owner)
        .fetch_optional(&mut **tx)
        .await?;
        let running: Option<RotationId> =
            sqlx::query_scalar("SELECT id FROM rotations WHERE id = $1 AND status = 'running'")
                .bind(completion.rotation_id)
                .fetch_optional(&mut **tx)
                .await?;
        let became_current = match (old, running) {
            (Some(old), Some(_)) => {
                make_current_in(&mut tx, completion, certificate_id, old).await?;
                true
            }
            _ => {
                sqlx::query("UPDATE certificates SET status = 'superseded', updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(certificate_id)
                    .execute(&mut **tx)
                    .await?;
                false
            }
        };
        audit_append_in(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(became_current)
    }

    /// The attempt failed: the rotation says why, the managed certificate counts the failure and retries at
    /// `retry_at`, and its certificate leaves `renewing`. Nothing changes if the lease is no longer `owner`'s.
    /// Audit "managed.renewal_failed".
    pub async fn fail_rotation(
        &self,
        claim: &Claim,
        error: &str,
        retry_at: i64,
        actor: &str,
    ) -> Result<Option<FailedRotation>> {
        let error: String = error.replace('\0', "").chars().take(2000).collect();
        let mut tx = self.begin_write(Durability::Durable).await?;
        let now = tx.now;
        // The rotation first: one abandoned meanwhile (its lease expired and the renewal was claimed again, by
        // another replica or this one) must not count a failure against the attempt that replaced it.
        let still_running = sqlx::query(
            "UPDATE rotations SET status = 'failed', error = $1, completed_at = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(&error)
        .bind(now)
        .bind(claim.rotation.id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        let failures: Option<i64> = if still_running {
            sqlx::query_scalar(
                "UPDATE managed_certificates SET failures = failures + 1, last_error = $1, next_renewal_at = $2, \
                 lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
                 WHERE id = $4 AND status = 'active' AND lease_owner = $5 RETURNING failures",
            )
            .bind(&error)
            .bind(retry_at)
            .bind(now)
            .bind(claim.managed.id)
            .bind(&claim.lease_owner)
            .fetch_optional(&mut **tx)
            .await?
        } else {
            None
        };
        let Some(failures) = failures else {
            tx.commit().await?;
            return Ok(None);
        };
        if let Some(current) = claim.managed.current_certificate_id {
            leave_renewing_in(&mut tx, current).await?;
        }
        let details = json!({
            "rotation_id": claim.rotation.id, "error": error, "failures": failures, "next_attempt_at": retry_at,
        });
        let event =
            AuditEvent::new(actor, "managed.renewal_failed", subject(&claim.managed.name)).with_details(details);
        audit_append_in(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Some(FailedRotation { failures, next_attempt_at: retry_at }))
    }
}

async fn start_rotation_in(
    tx: &mut WriteTx,
    rotation: RotationId,
    owner: &str,
    old: Option<CertificateId>,
) -> Result<super::RotationRecord> {
    let now = tx.now;
    let row = sqlx::query(&format!(
        "UPDATE rotations SET status = 'running', replica = $1, started_at = $2, \
         old_certificate_id = COALESCE(old_certificate_id, $3) WHERE id = $4 RETURNING {ROTATION_COLUMNS}"
    ))
    .bind(owner)
    .bind(now)
    .bind(old)
    .bind(rotation)
    .fetch_one(&mut ***tx)
    .await?;
    rotation_from_row(&row)
}

async fn make_current_in(
    tx: &mut WriteTx,
    completion: &ManagedCompletion,
    new: CertificateId,
    old: Option<CertificateId>,
) -> Result<()> {
    let now = tx.now;
    // A mass re-issue asked for after this rotation began still wants a certificate issued after it asked: keep
    // the mark, and the renewal due now.
    let reason: String = sqlx::query_scalar("SELECT reason FROM rotations WHERE id = $1")
        .bind(completion.rotation_id)
        .fetch_one(&mut ***tx)
        .await?;
    sqlx::query(
        "UPDATE managed_certificates SET current_certificate_id = $1, \
         next_renewal_at = CASE WHEN renewal_reason = 'reissue' AND $5 <> 'reissue' THEN $3 ELSE $2 END, \
         renewal_reason = CASE WHEN renewal_reason = 'reissue' AND $5 <> 'reissue' THEN 'reissue' ELSE 'scheduled' END, \
         lease_owner = NULL, lease_expires_at = NULL, failures = 0, last_error = NULL, updated_at = $3 WHERE id = $4",
    )
    .bind(new)
    .bind(completion.next_renewal_at)
    .bind(now)
    .bind(completion.managed_id)
    .bind(reason)
    .execute(&mut ***tx)
    .await?;
    if let Some(old) = old {
        if old == new {
            return Err(StoreError::Corrupt(format!("certificate {new} would replace itself")));
        }
        sqlx::query(
            "UPDATE certificates SET replaced_by_id = $1, updated_at = $2, status = CASE WHEN status IN \
             ('active', 'expiring_soon', 'renewing') THEN 'superseded' ELSE status END WHERE id = $3",
        )
        .bind(new)
        .bind(now)
        .bind(old)
        .execute(&mut ***tx)
        .await?;
        sqlx::query("UPDATE certificates SET replaces_id = $1 WHERE id = $2")
            .bind(old)
            .bind(new)
            .execute(&mut ***tx)
            .await?;
    }
    sqlx::query("UPDATE rotations SET status = 'succeeded', new_certificate_id = $1, completed_at = $2 WHERE id = $3")
        .bind(new)
        .bind(now)
        .bind(completion.rotation_id)
        .execute(&mut ***tx)
        .await?;
    Ok(())
}

/// A certificate whose renewal stopped goes back to what its age says it is.
pub(crate) async fn leave_renewing_in(tx: &mut WriteTx, certificate: CertificateId) -> Result<()> {
    let now = tx.now;
    sqlx::query(&format!(
        "UPDATE certificates SET updated_at = $1, status = CASE WHEN {EXPIRING_SOON} THEN 'expiring_soon' \
         ELSE 'active' END WHERE id = $2 AND status = 'renewing'"
    ))
    .bind(now)
    .bind(certificate)
    .execute(&mut ***tx)
    .await?;
    Ok(())
}

/// A revoked (or operator-marked) certificate that is some managed certificate's current one: renew it now. A
/// re-issue mark stays (its progress counts it).
///
/// Revocation locks the certificate row first and the scheduler the managed row first; so that the two can never
/// wait on each other (a PostgreSQL deadlock), a managed row a scheduler holds is skipped here: that scheduler is
/// replacing the certificate already, or will retry it.
pub(crate) async fn pull_renewal_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    certificate: CertificateId,
    reason: RenewalReason,
    now: i64,
) -> Result<()> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query(&format!(
        "UPDATE managed_certificates SET next_renewal_at = $1, \
         renewal_reason = CASE WHEN renewal_reason = 'reissue' THEN 'reissue' ELSE $2 END, updated_at = $1 \
         WHERE id IN (SELECT id FROM managed_certificates WHERE current_certificate_id = $3 AND status = 'active'{lock})"
    ))
    .bind(now)
    .bind(reason.as_str())
    .bind(certificate)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
