//! Managed certificates: added, listed, asked to renew, and no longer managed.

use super::model::{
    MANAGED_COLUMNS, ManagedRecord, ManagedStatus, NewManaged, ROTATION_COLUMNS, RenewalReason, RotationRecord,
    RotationStatus, managed_from_row, rotation_from_row,
};
use crate::Store;
use crate::acme::{audit, check_limit, check_text};
use crate::error::{Result, StoreError};
use crate::ids::ManagedId;
use crate::write::{Durability, WriteTx};
use serde::Serialize;
use serde_json::json;

/// A filter over managed certificates, one page at a time in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedQuery {
    pub status: Option<ManagedStatus>,
    pub issuer: Option<String>,
    /// Only those whose last renewal attempt failed.
    pub failing: bool,
    /// The name the previous page ended with.
    pub after: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Starts managing a name: the row, and a queued `initial` rotation due now, so the scheduler issues its
    /// first certificate at once. A name that was managed before and removed is managed again with the new
    /// parameters (its history stays); Conflict while it is still managed. Audit "managed.create".
    pub async fn create_managed(&self, new: &NewManaged, actor: &str) -> Result<(ManagedRecord, RotationRecord)> {
        for (what, text) in [("name", &new.name), ("issuer", &new.issuer), ("profile", &new.profile)] {
            check_text(what, text)?;
        }
        check_text("key type", &new.key_type)?;
        check_text("group", &new.group_name)?;
        let names =
            serde_json::to_string(&new.names).map_err(|e| StoreError::Invalid { what: "names", why: e.to_string() })?;
        let mut tx = self.begin_write(Durability::Durable).await?;
        let now = tx.now;
        let revived = sqlx::query_scalar::<_, ManagedId>(
            "UPDATE managed_certificates SET names_json = $1, issuer = $2, profile = $3, key_type = $4, \
             group_name = $5, lifetime_secs = $6, status = 'active', next_renewal_at = $7, renewal_reason = 'initial', \
             lease_owner = NULL, lease_expires_at = NULL, failures = 0, last_error = NULL, updated_at = $7 \
             WHERE name = $8 AND status = 'removed' RETURNING id",
        )
        .bind(&names)
        .bind(&new.issuer)
        .bind(&new.profile)
        .bind(&new.key_type)
        .bind(&new.group_name)
        .bind(new.lifetime_secs)
        .bind(now)
        .bind(&new.name)
        .fetch_optional(&mut **tx)
        .await?;
        let id = match revived {
            Some(id) => id,
            None => {
                let inserted = sqlx::query_scalar::<_, ManagedId>(
                    "INSERT INTO managed_certificates (name, names_json, issuer, profile, key_type, group_name, \
                     lifetime_secs, status, next_renewal_at, renewal_reason, failures, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, 'initial', 0, $8, $8) RETURNING id",
                )
                .bind(&new.name)
                .bind(&names)
                .bind(&new.issuer)
                .bind(&new.profile)
                .bind(&new.key_type)
                .bind(&new.group_name)
                .bind(new.lifetime_secs)
                .bind(now)
                .fetch_one(&mut **tx)
                .await;
                match inserted {
                    Ok(id) => id,
                    Err(e) if StoreError::is_unique_violation(&e) => {
                        return Err(StoreError::Conflict { what: format!("managed certificate {:?}", new.name) });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let rotation = queue_rotation_in(&mut tx, id, RenewalReason::Initial, None).await?;
        let details = json!({
            "names": new.names, "issuer": new.issuer, "profile": new.profile, "key_type": new.key_type,
            "group": new.group_name, "lifetime_secs": new.lifetime_secs, "rotation_id": rotation.id,
        });
        let managed = managed_in(&mut tx, id).await?;
        audit(&mut tx, actor, "managed.create", subject(&new.name), details).await?;
        tx.commit().await?;
        Ok((managed, rotation))
    }

    pub async fn managed_by_name(&self, name: &str) -> Result<ManagedRecord> {
        let row = sqlx::query(&format!("SELECT {MANAGED_COLUMNS} FROM managed_certificates WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| not_found(name))?;
        managed_from_row(&row)
    }

    pub async fn managed(&self, id: ManagedId) -> Result<ManagedRecord> {
        let row = sqlx::query(&format!("SELECT {MANAGED_COLUMNS} FROM managed_certificates WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound { what: format!("managed certificate {id}") })?;
        managed_from_row(&row)
    }

    /// One page in name order; the caller passes the last name it saw as `after` for the next.
    pub async fn list_managed(&self, q: &ManagedQuery) -> Result<Vec<ManagedRecord>> {
        check_limit(q.limit)?;
        let mut sql = format!("SELECT {MANAGED_COLUMNS} FROM managed_certificates WHERE name > $1");
        let mut texts = Vec::new();
        if let Some(status) = q.status {
            texts.push(status.as_str().to_owned());
            sql.push_str(&format!(" AND status = ${}", texts.len() + 1));
        }
        if let Some(issuer) = &q.issuer {
            texts.push(issuer.clone());
            sql.push_str(&format!(" AND issuer = ${}", texts.len() + 1));
        }
        if q.failing {
            sql.push_str(" AND failures > 0");
        }
        sql.push_str(&format!(" ORDER BY name LIMIT ${}", texts.len() + 2));
        let mut query = sqlx::query(&sql).bind(q.after.clone().unwrap_or_default());
        for text in texts {
            query = query.bind(text);
        }
        let rows = query.bind(q.limit).fetch_all(self.pool()).await?;
        rows.iter().map(managed_from_row).collect()
    }

    /// How many managed certificates are active.
    pub async fn managed_count(&self) -> Result<i64> {
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM managed_certificates WHERE status = 'active'")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// The newest rotations of a managed certificate, newest first.
    pub async fn rotations(&self, managed_id: ManagedId, limit: i64) -> Result<Vec<RotationRecord>> {
        check_limit(limit)?;
        let rows = sqlx::query(&format!(
            "SELECT {ROTATION_COLUMNS} FROM rotations WHERE managed_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(managed_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rotation_from_row).collect()
    }

    /// The rotation queued or running, if any, of each of these managed certificates: one query for a page of
    /// them, through the index that keeps at most one in flight each.
    pub async fn in_flight_rotations(
        &self,
        ids: &[ManagedId],
    ) -> Result<std::collections::HashMap<ManagedId, RotationRecord>> {
        let mut found = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {ROTATION_COLUMNS} FROM rotations WHERE status IN ('queued', 'running') AND managed_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let rotation = rotation_from_row(&row)?;
                found.insert(rotation.managed_id, rotation);
            }
        }
        Ok(found)
    }

    /// Asks for a new certificate now. Idempotent: while a rotation is queued or running, that one is returned
    /// (and `false`); otherwise a queued one is created and the renewal pulled to now (and `true`). A failing
    /// certificate's back-off is cut short: the operator asked. Audit "managed.renew".
    pub async fn request_renewal(
        &self,
        name: &str,
        reason: RenewalReason,
        actor: &str,
    ) -> Result<(RotationRecord, bool)> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        let now = tx.now;
        // Lock the row first (the lock order is managed certificate → rotation).
        let id: Option<ManagedId> = sqlx::query_scalar(
            "UPDATE managed_certificates SET updated_at = updated_at WHERE name = $1 AND status = 'active' RETURNING id",
        )
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(id) = id else {
            return Err(match self.managed_by_name(name).await {
                Ok(_) => StoreError::Invalid { what: "managed certificate", why: format!("{name:?} was removed") },
                Err(e) => e,
            });
        };
        if let Some(in_flight) = in_flight_in(&mut tx, id).await? {
            tx.commit().await?;
            return Ok((in_flight, false));
        }
        let current: Option<crate::ids::CertificateId> =
            sqlx::query_scalar("SELECT current_certificate_id FROM managed_certificates WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        let rotation = queue_rotation_in(&mut tx, id, reason, current).await?;
        sqlx::query(
            "UPDATE managed_certificates SET next_renewal_at = $1, \
             renewal_reason = CASE WHEN renewal_reason = 'reissue' THEN 'reissue' ELSE $2 END, updated_at = $1 \
             WHERE id = $3",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        let details = json!({ "reason": reason.as_str(), "rotation_id": rotation.id });
        audit(&mut tx, actor, "managed.renew", subject(name), details).await?;
        tx.commit().await?;
        Ok((rotation, true))
    }

    /// Stops managing a name: no more renewals, a rotation in flight is abandoned. Its certificates stay in the
    /// inventory (the caller revokes them if asked). Audit "managed.remove".
    pub async fn remove_managed(&self, name: &str, actor: &str) -> Result<ManagedRecord> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        let now = tx.now;
        let id: Option<ManagedId> = sqlx::query_scalar(
            "UPDATE managed_certificates SET status = 'removed', next_renewal_at = NULL, renewal_reason = NULL, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 WHERE name = $2 AND status = 'active' \
             RETURNING id",
        )
        .bind(now)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(id) = id else {
            return Err(match self.managed_by_name(name).await {
                Ok(_) => StoreError::Invalid { what: "managed certificate", why: format!("{name:?} was removed") },
                Err(e) => e,
            });
        };
        sqlx::query(
            "UPDATE rotations SET status = 'abandoned', error = 'no longer managed', completed_at = $1 \
             WHERE managed_id = $2 AND status IN ('queued', 'running')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        let managed = managed_in(&mut tx, id).await?;
        if let Some(current) = managed.current_certificate_id {
            super::queue::leave_renewing_in(&mut tx, current).await?;
        }
        audit(
            &mut tx,
            actor,
            "managed.remove",
            subject(name),
            json!({ "current_certificate_id": managed.current_certificate_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(managed)
    }
}

pub(crate) fn subject(name: &str) -> String {
    format!("managed:{name}")
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound { what: format!("managed certificate {name:?}") }
}

pub(crate) async fn managed_in(tx: &mut WriteTx, id: ManagedId) -> Result<ManagedRecord> {
    let row = sqlx::query(&format!("SELECT {MANAGED_COLUMNS} FROM managed_certificates WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut ***tx)
        .await?;
    managed_from_row(&row)
}

pub(crate) async fn in_flight_in(tx: &mut WriteTx, id: ManagedId) -> Result<Option<RotationRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {ROTATION_COLUMNS} FROM rotations WHERE managed_id = $1 AND status IN ('queued', 'running')"
    ))
    .bind(id)
    .fetch_optional(&mut ***tx)
    .await?;
    row.as_ref().map(rotation_from_row).transpose()
}

pub(crate) async fn queue_rotation_in(
    tx: &mut WriteTx,
    id: ManagedId,
    reason: RenewalReason,
    old: Option<crate::ids::CertificateId>,
) -> Result<RotationRecord> {
    let now = tx.now;
    let row = sqlx::query(&format!(
        "INSERT INTO rotations (managed_id, reason, status, old_certificate_id, triggered_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {ROTATION_COLUMNS}"
    ))
    .bind(id)
    .bind(reason.as_str())
    .bind(RotationStatus::Queued.as_str())
    .bind(old)
    .bind(now)
    .fetch_one(&mut ***tx)
    .await?;
    rotation_from_row(&row)
}

/// Where a mass re-issue stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReissueProgress {
    /// Active managed certificates still marked for re-issue.
    pub remaining: i64,
    /// Of those, how many failed their last attempt (and are backing off).
    pub failing: i64,
    /// Re-issue rotations that succeeded, ever.
    pub reissued: i64,
}

impl Store {
    /// Marks every active managed certificate — or those whose current certificate was issued under the issuer
    /// key `issuer_key_id` (a compromised intermediate) — for re-issue now, with a new key. The scheduler does
    /// the work at its bounded concurrency; the marks are in the store, so a restart resumes it. Those already
    /// marked are left alone: asking twice marks nothing twice. Audit "managed.reissue".
    pub async fn request_reissue(&self, issuer_key_id: Option<&[u8]>, actor: &str) -> Result<u64> {
        let mut tx = self.begin_write(Durability::Durable).await?;
        let now = tx.now;
        let filter = match issuer_key_id {
            Some(_) => " AND current_certificate_id IN (SELECT id FROM certificates WHERE issuer_key_id = $2)",
            None => "",
        };
        let sql = format!(
            "UPDATE managed_certificates SET next_renewal_at = $1, renewal_reason = 'reissue', updated_at = $1 \
             WHERE status = 'active' AND (renewal_reason IS NULL OR renewal_reason <> 'reissue'){filter}"
        );
        let mut query = sqlx::query(&sql).bind(now);
        if let Some(key) = issuer_key_id {
            query = query.bind(key);
        }
        let marked = query.execute(&mut **tx).await?.rows_affected();
        let details = json!({ "marked": marked, "issuer_key_id": issuer_key_id.map(hex::encode) });
        audit(&mut tx, actor, "managed.reissue", "managed:*".to_owned(), details).await?;
        tx.commit().await?;
        Ok(marked)
    }

    pub async fn reissue_progress(&self) -> Result<ReissueProgress> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT COUNT(*) AS remaining, COALESCE(SUM(CASE WHEN failures > 0 THEN 1 ELSE 0 END), 0) AS failing \
             FROM managed_certificates WHERE status = 'active' AND renewal_reason = 'reissue'",
        )
        .fetch_one(self.pool())
        .await?;
        let reissued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM rotations WHERE reason = 'reissue' AND status = 'succeeded'")
                .fetch_one(self.pool())
                .await?;
        Ok(ReissueProgress { remaining: row.try_get("remaining")?, failing: row.try_get("failing")?, reissued })
    }
}

/// A generated key as the store keeps it: sealed, with what it was sealed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedKey {
    pub certificate_id: crate::ids::CertificateId,
    pub managed_id: ManagedId,
    pub kek_label: String,
    pub key_type: String,
    pub sealed: Vec<u8>,
}

impl Store {
    /// The sealed private key of a certificate Castellan generated the key for.
    pub async fn sealed_key(&self, certificate_id: crate::ids::CertificateId) -> Result<SealedKey> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT certificate_id, managed_id, kek_label, key_type, sealed FROM sealed_keys WHERE certificate_id = $1",
        )
        .bind(certificate_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound { what: format!("a sealed key for certificate {certificate_id}") })?;
        Ok(SealedKey {
            certificate_id: row.try_get("certificate_id")?,
            managed_id: row.try_get("managed_id")?,
            kek_label: row.try_get("kek_label")?,
            key_type: row.try_get("key_type")?,
            sealed: row.try_get("sealed")?,
        })
    }
}
