//! Authorizations and challenges (RFC 8555 §7.5): fetching, deactivating, and starting validation in the VA.

use castellan_acme_proto::Jwk;
use castellan_acme_proto::key_authorization::key_authorization;
use castellan_acme_proto::types::Identifier;
use castellan_store::StoreError;
use castellan_store::acme::{
    AccountRecord, AuthorizationRecord, ChallengeOutcome, ChallengeRecord, ChallengeStatus, ChallengeType,
};

use super::{Ra, account_actor, not_found};
use crate::problem::AcmeError;
use crate::validation::{ChallengeKind, ValidationRequest};
use castellan_authority::Actor;
use castellan_store::{AuthorizationId, ChallengeId};

impl Ra {
    pub async fn authorization(
        &self,
        account: &AccountRecord,
        authorization_id: AuthorizationId,
    ) -> Result<AuthorizationRecord, AcmeError> {
        let authz = match self.store().authorization(authorization_id).await {
            Ok(authz) => authz,
            Err(StoreError::NotFound { .. }) => return Err(not_found("the authorization")),
            Err(e) => return Err(e.into()),
        };
        if authz.account_id != account.id {
            return Err(AcmeError::unauthorized("this authorization belongs to another account"));
        }
        Ok(authz)
    }

    pub async fn deactivate_authorization(
        &self,
        account: &AccountRecord,
        authorization_id: AuthorizationId,
    ) -> Result<AuthorizationRecord, AcmeError> {
        self.authorization(account, authorization_id).await?;
        match self.store().deactivate_authorization(authorization_id, account_actor(account.id).as_str()).await {
            Ok(authz) => Ok(authz),
            Err(StoreError::Invalid { why, .. }) => {
                Err(AcmeError::malformed(format!("the authorization cannot be deactivated: {why}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The challenge and the authorization it belongs to, if the account owns them.
    pub async fn challenge(
        &self,
        account: &AccountRecord,
        challenge_id: ChallengeId,
    ) -> Result<(ChallengeRecord, AuthorizationRecord), AcmeError> {
        let challenge = match self.store().challenge(challenge_id).await {
            Ok(challenge) => challenge,
            Err(StoreError::NotFound { .. }) => return Err(not_found("the challenge")),
            Err(e) => return Err(e.into()),
        };
        let authz = self.authorization(account, challenge.authorization_id).await?;
        Ok((challenge, authz))
    }

    /// The client says it is ready (RFC 8555 §7.5.1). Starts the validation unless one is already under way or
    /// done — a repeated POST just shows the state — and waits a moment for the outcome, so fast validations
    /// answer in one round trip.
    pub async fn respond_to_challenge(
        &self,
        account: &AccountRecord,
        challenge_id: ChallengeId,
    ) -> Result<(ChallengeRecord, AuthorizationRecord), AcmeError> {
        let (challenge, authz) = self.challenge(account, challenge_id).await?;
        if challenge.status != ChallengeStatus::Pending {
            return Ok((challenge, authz));
        }
        let actor = account_actor(account.id);
        if !self.store().start_challenge(challenge_id, self.now(), actor.as_str()).await? {
            // Another challenge of this authorization is in flight, the authorization is no longer pending or
            // has expired, or a concurrent POST won: show the state as it is.
            return self.challenge(account, challenge_id).await;
        }
        let key = Jwk::from_json_str(&account.jwk_json)
            .map_err(|e| AcmeError::internal("a stored account key does not parse", &e))?;
        let request = ValidationRequest {
            kind: match challenge.kind {
                ChallengeType::Http01 => ChallengeKind::Http01,
                ChallengeType::Dns01 => ChallengeKind::Dns01,
                ChallengeType::TlsAlpn01 => ChallengeKind::TlsAlpn01,
            },
            identifier: match authz.identifier.kind.as_str() {
                "ip" => Identifier::ip(authz.identifier.value.clone()),
                _ => Identifier::dns(authz.identifier.value.clone()),
            },
            token: challenge.token.clone(),
            key_authorization: key_authorization(&challenge.token, &key),
        };
        let ra = self.clone();
        // The validation runs on its own task: a client that hangs up must not abandon it half-way.
        let task = tokio::spawn(async move { ra.validate_and_record(challenge_id, request, actor).await });
        let wait = self.config.wait_for_outcome();
        if !wait.is_zero() && tokio::time::timeout(wait, task).await.is_ok() {
            return self.challenge(account, challenge_id).await;
        }
        // Still validating when the wait ran out: answer with the state we put it in; the client polls.
        Ok((ChallengeRecord { status: ChallengeStatus::Processing, ..challenge }, authz))
    }

    async fn validate_and_record(&self, challenge_id: ChallengeId, request: ValidationRequest, actor: Actor) {
        let outcome = match self.validator.validate(&request).await {
            Ok(record) => ChallengeOutcome::Valid {
                validated_at: self.now(),
                authorization_expires_at: self
                    .now()
                    .saturating_add(i64::try_from(self.config.valid_authorization_lifetime_secs).unwrap_or(i64::MAX)),
                record: serde_json::to_value(&record).unwrap_or_default(),
            },
            Err(e) => {
                tracing::info!(%challenge_id, identifier = %request.identifier.value, error = %e, "validation failed");
                let identifier = match request.identifier.kind {
                    castellan_acme_proto::types::IdentifierType::Ip => {
                        request.identifier.value.parse().ok().map(super::identifiers::OrderIdentifier::Ip)
                    }
                    _ => Some(super::identifiers::OrderIdentifier::Dns {
                        name: request.identifier.value.clone(),
                        wildcard: false,
                    }),
                };
                if let Some(identifier) = identifier {
                    self.charge_failed_validation(&identifier).await;
                }
                ChallengeOutcome::Invalid {
                    error: serde_json::json!({
                        "type": format!("urn:ietf:params:acme:error:{}", e.problem_type()),
                        "detail": e.to_string(),
                        "status": 400,
                        "identifier": request.identifier,
                    }),
                }
            }
        };
        if let Err(e) = self.store().finish_challenge(challenge_id, &outcome, actor.as_str()).await {
            tracing::error!(%challenge_id, error = %e, "recording a validation outcome failed");
        }
    }
}
