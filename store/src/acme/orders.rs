//! ACME orders and their authorizations (RFC 8555 §7.4, §7.5): creation with authorization reuse, reads, and
//! invalidation.

use super::model::{
    AUTHORIZATION_COLUMNS, AuthorizationPlan, AuthorizationRecord, AuthorizationStatus, CHALLENGE_COLUMNS,
    ChallengeRecord, NewAuthorization, NewOrder, ORDER_COLUMNS, OrderRecord, OrderStatus, StoredIdentifier,
    authorization_from_row, challenge_from_row, order_from_row,
};
use super::{Kind, Tx, audit, check_limit, check_text, json_text, why_not};
use crate::Store;
use crate::error::{Result, StoreError};
use crate::ids::{AccountId, AuthorizationId, ChallengeId, OrderId};
use crate::write::Durability;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashSet};

impl Store {
    /// Creates an order with its authorizations in one transaction: new authorizations (status pending) with their
    /// challenges, and reused ones, which must belong to the order's account and be pending or valid and unexpired
    /// now (else Invalid). The order is ready when every authorization is already valid, pending otherwise. An
    /// order replacing a certificate that another live (not invalid) order already replaces is a Conflict.
    /// The account must be valid; its row is locked for the transaction, so an order cannot slip past a
    /// concurrent deactivation. Audit "order.create".
    pub async fn create_order(&self, new: &NewOrder, actor: &str) -> Result<OrderRecord> {
        validate(new)?;
        let now = self.now();
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let account = sqlx::query("UPDATE accounts SET updated_at = updated_at WHERE id = $1 AND status = 'valid'")
            .bind(new.account_id)
            .execute(&mut **tx)
            .await?;
        if account.rows_affected() != 1 {
            return Err(why_not(&mut tx, Kind::Account, new.account_id, "valid").await);
        }

        // Lock the reused authorizations in ascending id order (the lock order for several rows of one kind), so
        // they cannot be deactivated or expire between this check and the commit.
        let mut reused: Vec<AuthorizationId> = new
            .authorizations
            .iter()
            .filter_map(|plan| match plan {
                AuthorizationPlan::Reuse(id) => Some(*id),
                AuthorizationPlan::Create(_) => None,
            })
            .collect();
        reused.sort_unstable();
        let mut all_valid = reused.len() == new.authorizations.len();
        for &id in &reused {
            let status: Option<String> = sqlx::query_scalar(
                "UPDATE authorizations SET updated_at = updated_at \
                 WHERE id = $1 AND account_id = $2 AND status IN ('pending', 'valid') AND expires_at >= $3 \
                 RETURNING status",
            )
            .bind(id)
            .bind(new.account_id)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
            match status.as_deref() {
                Some("valid") => {}
                Some(_) => all_valid = false,
                None => {
                    return Err(StoreError::Invalid {
                        what: "authorization reuse",
                        why: format!(
                            "authorization {id} is not a pending or valid, unexpired authorization of account {}",
                            new.account_id
                        ),
                    });
                }
            }
        }

        let status = if all_valid { OrderStatus::Ready } else { OrderStatus::Pending };
        let order_id: OrderId = sqlx::query_scalar(
            "INSERT INTO orders (account_id, status, identifiers_json, profile, not_before, not_after, replaces, \
             expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(new.account_id)
        .bind(status.as_str())
        .bind(json_text(&new.identifiers)?)
        .bind(&new.profile)
        .bind(new.not_before)
        .bind(new.not_after)
        .bind(&new.replaces)
        .bind(new.expires_at)
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| {
            if StoreError::is_unique_violation(&e) {
                StoreError::Conflict { what: format!("an order replacing {}", new.replaces.as_deref().unwrap_or("")) }
            } else {
                e.into()
            }
        })?;

        for (ordinal, plan) in new.authorizations.iter().enumerate() {
            let authorization_id = match plan {
                AuthorizationPlan::Reuse(id) => *id,
                AuthorizationPlan::Create(authz) => insert_authorization(&mut tx, new.account_id, authz, now).await?,
            };
            sqlx::query("INSERT INTO order_authorizations (order_id, authorization_id, ordinal) VALUES ($1, $2, $3)")
                .bind(order_id)
                .bind(authorization_id)
                .bind(i64::try_from(ordinal).unwrap_or(i64::MAX))
                .execute(&mut **tx)
                .await?;
        }

        let order = order_in(&mut tx, order_id).await?;
        let details = json!({
            "account_id": order.account_id,
            "status": order.status.as_str(),
            "identifiers": order.identifiers,
            "authorizations": order.authorization_ids,
            "reused_authorizations": reused,
            "profile": order.profile,
            "replaces": order.replaces,
            "expires_at": order.expires_at,
        });
        audit(&mut tx, actor, "order.create", Kind::Order.subject(order_id), details).await?;
        tx.commit().await?;
        Ok(order)
    }

    pub async fn order(&self, id: OrderId) -> Result<OrderRecord> {
        let mut conn = self.pool().acquire().await?;
        order_in(&mut conn, id).await
    }

    /// The account's order ids above `after_id` (all when None), ascending, at most `limit`: pass the last id seen
    /// to read on (RFC 8555 §7.1.2.1's orders list, paginated).
    pub async fn account_orders(
        &self,
        account_id: AccountId,
        after_id: Option<OrderId>,
        limit: i64,
    ) -> Result<Vec<OrderId>> {
        check_limit(limit)?;
        Ok(sqlx::query_scalar("SELECT id FROM orders WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3")
            .bind(account_id)
            .bind(after_id.map_or(i64::MIN, OrderId::get))
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// A pending or valid authorization of this account for exactly this identifier and wildcard flag that does
    /// not expire before `not_expiring_before`: a valid one first, then the one that lasts longest. Identifiers are
    /// compared as stored: the caller normalizes (lower-case DNS names, canonical IP text) before storing and here.
    pub async fn find_reusable_authorization(
        &self,
        account_id: AccountId,
        identifier: &StoredIdentifier,
        wildcard: bool,
        not_expiring_before: i64,
    ) -> Result<Option<AuthorizationRecord>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {AUTHORIZATION_COLUMNS} FROM authorizations \
             WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 AND wildcard = $4 \
             AND status IN ('pending', 'valid') AND expires_at >= $5 \
             ORDER BY CASE status WHEN 'valid' THEN 0 ELSE 1 END, expires_at DESC, id DESC LIMIT 1"
        ))
        .bind(account_id)
        .bind(&identifier.kind)
        .bind(&identifier.value)
        .bind(i64::from(wildcard))
        .bind(not_expiring_before)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut authz = authorization_from_row(&row)?;
        authz.challenges = challenges_of(&mut conn, authz.id).await?;
        Ok(Some(authz))
    }

    pub async fn authorization(&self, id: AuthorizationId) -> Result<AuthorizationRecord> {
        let mut conn = self.pool().acquire().await?;
        authorization_in(&mut conn, id).await
    }

    /// The order's authorizations, each with its challenges, in the order the order lists them.
    pub async fn order_authorizations(&self, order_id: OrderId) -> Result<Vec<AuthorizationRecord>> {
        let mut conn = self.pool().acquire().await?;
        let columns: Vec<String> = AUTHORIZATION_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM order_authorizations oa JOIN authorizations a ON a.id = oa.authorization_id \
             WHERE oa.order_id = $1 ORDER BY oa.ordinal, oa.authorization_id",
            columns.join(", ")
        ))
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            // Every order has at least one authorization: none means no such order.
            order_in(&mut conn, order_id).await?;
            return Err(StoreError::Corrupt(format!("order {order_id} has no authorizations")));
        }
        let mut authzs = rows.iter().map(authorization_from_row).collect::<Result<Vec<_>>>()?;
        let challenges = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE authorization_id IN \
             (SELECT authorization_id FROM order_authorizations WHERE order_id = $1) ORDER BY id"
        ))
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut by_authz: BTreeMap<AuthorizationId, Vec<ChallengeRecord>> = BTreeMap::new();
        for row in &challenges {
            let challenge = challenge_from_row(row)?;
            by_authz.entry(challenge.authorization_id).or_default().push(challenge);
        }
        for authz in &mut authzs {
            authz.challenges = by_authz.remove(&authz.id).unwrap_or_default();
        }
        Ok(authzs)
    }

    pub async fn challenge(&self, id: ChallengeId) -> Result<ChallengeRecord> {
        let row = sqlx::query(&format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| Kind::Challenge.not_found(id))?;
        challenge_from_row(&row)
    }

    /// pending or ready → invalid with `error` (the order expired, or an authorization did). Invalid from any other
    /// state. Audit "order.invalid".
    pub async fn invalidate_order(&self, order_id: OrderId, error: &Value, actor: &str) -> Result<OrderRecord> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let updated: Option<i64> = sqlx::query_scalar(
            "UPDATE orders SET status = 'invalid', error_json = $1, updated_at = $2 \
             WHERE id = $3 AND status IN ('pending', 'ready') RETURNING id",
        )
        .bind(json_text(error)?)
        .bind(self.now())
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?;
        if updated.is_none() {
            return Err(why_not(&mut tx, Kind::Order, order_id, "pending or ready").await);
        }
        let order = order_in(&mut tx, order_id).await?;
        audit(&mut tx, actor, "order.invalid", Kind::Order.subject(order_id), json!({ "error": error })).await?;
        tx.commit().await?;
        Ok(order)
    }
}

pub(super) async fn order_in(conn: &mut AnyConnection, id: OrderId) -> Result<OrderRecord> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Kind::Order.not_found(id))?;
    let mut order = order_from_row(&row)?;
    order.authorization_ids = sqlx::query_scalar(
        "SELECT authorization_id FROM order_authorizations WHERE order_id = $1 ORDER BY ordinal, authorization_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(order)
}

pub(super) async fn authorization_in(conn: &mut AnyConnection, id: AuthorizationId) -> Result<AuthorizationRecord> {
    let row = sqlx::query(&format!("SELECT {AUTHORIZATION_COLUMNS} FROM authorizations WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Kind::Authorization.not_found(id))?;
    let mut authz = authorization_from_row(&row)?;
    authz.challenges = challenges_of(conn, id).await?;
    Ok(authz)
}

async fn challenges_of(conn: &mut AnyConnection, authorization_id: AuthorizationId) -> Result<Vec<ChallengeRecord>> {
    let rows =
        sqlx::query(&format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE authorization_id = $1 ORDER BY id"))
            .bind(authorization_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(challenge_from_row).collect()
}

/// The ids of the orders that list this authorization, ascending (the order in which to lock them).
pub(super) async fn orders_linking(
    conn: &mut AnyConnection,
    authorization_id: AuthorizationId,
) -> Result<Vec<OrderId>> {
    Ok(sqlx::query_scalar("SELECT order_id FROM order_authorizations WHERE authorization_id = $1 ORDER BY order_id")
        .bind(authorization_id)
        .fetch_all(conn)
        .await?)
}

async fn insert_authorization(
    tx: &mut Tx<'_>,
    account_id: AccountId,
    new: &NewAuthorization,
    now: i64,
) -> Result<AuthorizationId> {
    let id: AuthorizationId = sqlx::query_scalar(
        "INSERT INTO authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(account_id)
    .bind(&new.identifier.kind)
    .bind(&new.identifier.value)
    .bind(i64::from(new.wildcard))
    .bind(AuthorizationStatus::Pending.as_str())
    .bind(new.expires_at)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    for challenge in &new.challenges {
        sqlx::query("INSERT INTO challenges (authorization_id, type, token, status) VALUES ($1, $2, $3, 'pending')")
            .bind(id)
            .bind(challenge.kind.as_str())
            .bind(&challenge.token)
            .execute(&mut **tx)
            .await?;
    }
    Ok(id)
}

fn validate(new: &NewOrder) -> Result<()> {
    let invalid = |why: String| Err(StoreError::Invalid { what: "order", why });
    if new.identifiers.is_empty() {
        return invalid("no identifiers".to_owned());
    }
    for identifier in &new.identifiers {
        identifier.validate()?;
    }
    if new.authorizations.is_empty() {
        return invalid("no authorizations".to_owned());
    }
    for text in [&new.profile, &new.replaces].into_iter().flatten() {
        check_text("order", text)?;
    }
    let mut reused = HashSet::new();
    for plan in &new.authorizations {
        match plan {
            AuthorizationPlan::Reuse(id) => {
                if !reused.insert(*id) {
                    return invalid(format!("authorization {id} is listed twice"));
                }
            }
            AuthorizationPlan::Create(authz) => {
                authz.identifier.validate()?;
                if authz.challenges.is_empty() {
                    return invalid(format!("the authorization for {} has no challenges", authz.identifier.value));
                }
                let mut kinds = HashSet::new();
                for challenge in &authz.challenges {
                    if !kinds.insert(challenge.kind) {
                        return invalid(format!("two {} challenges in one authorization", challenge.kind.as_str()));
                    }
                    if challenge.token.is_empty() {
                        return invalid("empty challenge token".to_owned());
                    }
                    check_text("challenge token", &challenge.token)?;
                }
            }
        }
    }
    Ok(())
}
