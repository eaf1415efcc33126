//! Challenge validation (RFC 8555 §7.5.1) and authorization deactivation (§7.5.2): how an authorization's
//! outcome reaches the orders that list it.

use super::model::{AuthorizationRecord, ChallengeOutcome};
use super::orders::{authorization_in, orders_linking};
use super::{Kind, audit, json_text, unauthorized, why_not};
use crate::Store;
use crate::error::Result;
use crate::ids::{AuthorizationId, ChallengeId, OrderId};
use crate::write::Durability;
use serde_json::json;

impl Store {
    /// pending → processing, only if the challenge is pending, its authorization is pending and unexpired at `now`,
    /// and no other challenge of that authorization is processing (RFC 8555 §7.5.1: one validation at a time).
    /// True iff this call started it: of any number of concurrent callers, across replicas, exactly one gets true.
    /// NotFound for an unknown challenge. Audit "challenge.start".
    pub async fn start_challenge(&self, challenge_id: ChallengeId, now: i64, actor: &str) -> Result<bool> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        // The authorization's row is the lock every start and finish of its challenges queues on (PostgreSQL's row
        // lock; SQLite's write lock): the sibling check below then sees what the previous holder committed.
        let authorization_id: Option<AuthorizationId> = sqlx::query_scalar(
            "UPDATE authorizations SET updated_at = updated_at \
             WHERE id = (SELECT authorization_id FROM challenges WHERE id = $1) \
             AND status = 'pending' AND expires_at >= $2 RETURNING id",
        )
        .bind(challenge_id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(authorization_id) = authorization_id else {
            if super::status_of(&mut tx, Kind::Challenge, challenge_id).await?.is_none() {
                return Err(Kind::Challenge.not_found(challenge_id));
            }
            return Ok(false);
        };
        let kind: Option<String> = sqlx::query_scalar(
            "UPDATE challenges SET status = 'processing', started_at = $3 WHERE id = $1 AND status = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM challenges other \
                             WHERE other.authorization_id = $2 AND other.status = 'processing') \
             RETURNING type",
        )
        .bind(challenge_id)
        .bind(authorization_id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(kind) = kind else { return Ok(false) };
        let details = json!({ "authorization_id": authorization_id, "type": kind });
        audit(&mut tx, actor, "challenge.start", Kind::Challenge.subject(challenge_id), details).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Challenges still 'processing' that started before `started_before`: validations a replica abandoned when
    /// it died. Ids ascending.
    pub async fn stale_challenges(&self, started_before: i64, limit: i64) -> Result<Vec<ChallengeId>> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM challenges WHERE status = 'processing' AND started_at < $1 ORDER BY id LIMIT $2",
        )
        .bind(started_before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(ids)
    }

    /// Records the VA's outcome in one transaction: the challenge (which must be processing, else Invalid) becomes
    /// valid or invalid; its authorization, if still pending, becomes valid until `authorization_expires_at`, or
    /// invalid; and each pending order listing that authorization becomes ready when all its authorizations are
    /// now valid, or invalid with the outcome's error. Returns the authorization as it now is. Audit
    /// "challenge.valid" (with the validation record) or "challenge.invalid" (with the error).
    pub async fn finish_challenge(
        &self,
        challenge_id: ChallengeId,
        outcome: &ChallengeOutcome,
        actor: &str,
    ) -> Result<AuthorizationRecord> {
        let now = self.now();
        let (status, validated_at, error_json) = match outcome {
            ChallengeOutcome::Valid { validated_at, .. } => ("valid", Some(*validated_at), None),
            ChallengeOutcome::Invalid { error } => ("invalid", None, Some(json_text(error)?)),
        };
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        // Lock order: the authorization before its challenge, as start_challenge does.
        let authorization_id: Option<AuthorizationId> = sqlx::query_scalar(
            "UPDATE authorizations SET updated_at = updated_at \
             WHERE id = (SELECT authorization_id FROM challenges WHERE id = $1) RETURNING id",
        )
        .bind(challenge_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(authorization_id) = authorization_id else {
            return Err(Kind::Challenge.not_found(challenge_id));
        };
        let kind: Option<String> = sqlx::query_scalar(
            "UPDATE challenges SET status = $1, validated_at = $2, error_json = $3 \
             WHERE id = $4 AND status = 'processing' RETURNING type",
        )
        .bind(status)
        .bind(validated_at)
        .bind(&error_json)
        .bind(challenge_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(kind) = kind else {
            return Err(why_not(&mut tx, Kind::Challenge, challenge_id, "processing").await);
        };

        // An authorization deactivated (or swept as expired) while the VA worked keeps that state.
        let authorization = match outcome {
            ChallengeOutcome::Valid { authorization_expires_at, .. } => sqlx::query(
                "UPDATE authorizations SET status = 'valid', expires_at = $1, updated_at = $2 \
                 WHERE id = $3 AND status = 'pending'",
            )
            .bind(*authorization_expires_at)
            .bind(now)
            .bind(authorization_id),
            ChallengeOutcome::Invalid { .. } => sqlx::query(
                "UPDATE authorizations SET status = 'invalid', updated_at = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(authorization_id),
        }
        .execute(&mut **tx)
        .await?;

        let mut orders_changed = Vec::new();
        if authorization.rows_affected() == 1 {
            for order_id in orders_linking(&mut tx, authorization_id).await? {
                let changed = match outcome {
                    ChallengeOutcome::Valid { .. } => make_ready(&mut tx, order_id, now).await?,
                    ChallengeOutcome::Invalid { .. } => {
                        sqlx::query(
                            "UPDATE orders SET status = 'invalid', error_json = $1, updated_at = $2 \
                         WHERE id = $3 AND status = 'pending'",
                        )
                        .bind(&error_json)
                        .bind(now)
                        .bind(order_id)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected()
                            == 1
                    }
                };
                if changed {
                    orders_changed.push(order_id);
                }
            }
        }

        let authz = authorization_in(&mut tx, authorization_id).await?;
        let subject = Kind::Challenge.subject(challenge_id);
        match outcome {
            ChallengeOutcome::Valid { record, .. } => {
                let details = json!({
                    "authorization_id": authorization_id,
                    "type": kind,
                    "record": record,
                    "authorization_status": authz.status.as_str(),
                    "orders_ready": orders_changed,
                });
                audit(&mut tx, actor, "challenge.valid", subject, details).await?;
            }
            ChallengeOutcome::Invalid { error } => {
                let details = json!({
                    "authorization_id": authorization_id,
                    "type": kind,
                    "error": error,
                    "authorization_status": authz.status.as_str(),
                    "orders_invalidated": orders_changed,
                });
                audit(&mut tx, actor, "challenge.invalid", subject, details).await?;
            }
        }
        tx.commit().await?;
        Ok(authz)
    }

    /// pending or valid → deactivated (RFC 8555 §7.5.2; Invalid from any other state), invalidating the pending
    /// and ready orders that list it. Audit "authorization.deactivate".
    pub async fn deactivate_authorization(&self, id: AuthorizationId, actor: &str) -> Result<AuthorizationRecord> {
        let now = self.now();
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let done = sqlx::query(
            "UPDATE authorizations SET status = 'deactivated', updated_at = $1 \
             WHERE id = $2 AND status IN ('pending', 'valid')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(why_not(&mut tx, Kind::Authorization, id, "pending or valid").await);
        }
        let error = json_text(&unauthorized(format!("authorization {id} was deactivated")))?;
        let mut invalidated = Vec::new();
        for order_id in orders_linking(&mut tx, id).await? {
            let done = sqlx::query(
                "UPDATE orders SET status = 'invalid', error_json = $1, updated_at = $2 \
                 WHERE id = $3 AND status IN ('pending', 'ready')",
            )
            .bind(&error)
            .bind(now)
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                invalidated.push(order_id);
            }
        }
        let authz = authorization_in(&mut tx, id).await?;
        let details = json!({
            "account_id": authz.account_id,
            "identifier": authz.identifier,
            "wildcard": authz.wildcard,
            "orders_invalidated": invalidated,
        });
        audit(&mut tx, actor, "authorization.deactivate", Kind::Authorization.subject(id), details).await?;
        tx.commit().await?;
        Ok(authz)
    }
}

/// pending → ready when every authorization of the order is valid. The order's row is locked first, in a statement
/// of its own: on PostgreSQL the check then runs in a snapshot taken after any concurrent finisher of another of
/// its authorizations committed, so of two finishing at once the second always sees the first's authorization.
async fn make_ready(tx: &mut super::Tx<'_>, order_id: OrderId, now: i64) -> Result<bool> {
    let locked = sqlx::query("UPDATE orders SET updated_at = updated_at WHERE id = $1 AND status = 'pending'")
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    if locked.rows_affected() != 1 {
        return Ok(false);
    }
    let done = sqlx::query(
        "UPDATE orders SET status = 'ready', updated_at = $1 WHERE id = $2 AND status = 'pending' \
         AND NOT EXISTS (SELECT 1 FROM order_authorizations oa JOIN authorizations a ON a.id = oa.authorization_id \
                         WHERE oa.order_id = $2 AND a.status <> 'valid')",
    )
    .bind(now)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
