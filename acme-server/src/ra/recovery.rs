//! Closing what a replica abandoned when it died: a validation it had started, or a finalization whose signature
//! it never recorded. Both would otherwise stay "processing" for ever and block the client.

use castellan_store::acme::ChallengeOutcome;

use super::Ra;
use castellan_authority::Actor;

/// How long a validation or finalization may be in flight before it counts as abandoned: far beyond the VA's
/// timeout and an HSM signature, so a slow one still running elsewhere is never cut short.
pub const ABANDONED_AFTER_SECS: i64 = 10 * 60;

/// How many of each are closed per sweep.
const BATCH: i64 = 100;

impl Ra {
    /// One sweep; returns how many validations and finalizations it closed.
    pub async fn close_abandoned(&self) -> Result<(usize, usize), castellan_store::StoreError> {
        let cutoff = self.now() - ABANDONED_AFTER_SECS;
        let challenges = self.store().stale_challenges(cutoff, BATCH).await?;
        for id in &challenges {
            let outcome = ChallengeOutcome::Invalid {
                error: serde_json::json!({
                    "type": "urn:ietf:params:acme:error:serverInternal",
                    "detail": "the validation was interrupted by a server restart; please create a new order",
                    "status": 500,
                }),
            };
            if let Err(e) = self.store().finish_challenge(*id, &outcome, Actor::acme("recovery").as_str()).await {
                tracing::warn!(challenge_id = %id, error = %e, "closing an abandoned validation failed");
            }
        }
        let orders = self.store().processing_orders(cutoff, BATCH).await?;
        for id in &orders {
            let error = serde_json::json!({
                "type": "urn:ietf:params:acme:error:serverInternal",
                "detail": "finalization was interrupted by a server restart; please create a new order",
                "status": 500,
            });
            // The reserved certificate row stays pending: a signature may exist, and an operator should look.
            if let Err(e) = self.store().fail_order(*id, &error, false, Actor::acme("recovery").as_str()).await {
                tracing::warn!(order_id = %id, error = %e, "closing an abandoned finalization failed");
            }
        }
        if !challenges.is_empty() || !orders.is_empty() {
            tracing::warn!(
                validations = challenges.len(),
                finalizations = orders.len(),
                "closed work a server left unfinished"
            );
        }
        Ok((challenges.len(), orders.len()))
    }

    /// Sweeps every minute, for the life of the server.
    pub async fn close_abandoned_forever(self) {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            if let Err(e) = self.close_abandoned().await {
                tracing::warn!(error = %e, "sweeping abandoned ACME work failed");
            }
        }
    }
}
