//! Orders (RFC 8555 §7.4): creation with authorization reuse, profiles (draft-ietf-acme-profiles), ARI's
//! `replaces` (RFC 9773 §5), expiry, and an account's orders list.

use castellan_acme_proto::types::NewOrder;
use castellan_store::StoreError;
use castellan_store::acme::{
    AccountRecord, AuthorizationPlan, ChallengeType, NewAuthorization, NewChallenge, OrderRecord, OrderStatus,
};
use castellan_store::inventory::CertificateRecord;

use super::identifiers::{OrderIdentifier, parse_order_identifiers};
use super::renewal_info::CertId;
use super::{Ra, account_actor, not_found, random_token};
use crate::problem::{AcmeError, ProblemType};
use castellan_authority::Actor;
use castellan_store::OrderId;

/// A reused authorization must stay valid at least this long, so the order can still be finalized with it.
const REUSE_MARGIN_SECS: i64 = 24 * 3600;

/// Challenge types offered for an identifier: wildcards can only be proven in DNS (RFC 8555 §7.1.3); IP
/// addresses have no DNS challenge (RFC 8738 §7).
fn challenge_types(identifier: &OrderIdentifier) -> &'static [ChallengeType] {
    match identifier {
        OrderIdentifier::Dns { wildcard: true, .. } => &[ChallengeType::Dns01],
        OrderIdentifier::Dns { wildcard: false, .. } => {
            &[ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01]
        }
        OrderIdentifier::Ip(_) => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
    }
}

/// Parses an RFC 3339 timestamp from newOrder.
fn parse_time(field: &str, value: &str) -> Result<i64, AcmeError> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| AcmeError::malformed(format!("{field} {value:?} is not an RFC 3339 time: {e}")))
}

impl Ra {
    /// The ACME profile asked for (or the default), checked against those configured.
    pub fn resolve_profile(&self, asked: Option<&str>) -> Result<String, AcmeError> {
        let name = asked.unwrap_or(&self.config.default_profile);
        if self.config.profiles.contains_key(name) {
            Ok(name.to_owned())
        } else {
            let known: Vec<_> = self.config.profiles.keys().map(String::as_str).collect();
            Err(AcmeError::new(
                ProblemType::InvalidProfile,
                format!("unknown profile {name:?}; this server offers: {}", known.join(", ")),
            ))
        }
    }

    pub async fn new_order(&self, account: &AccountRecord, request: &NewOrder) -> Result<OrderRecord, AcmeError> {
        let identifiers = parse_order_identifiers(&request.identifiers)?;
        let profile = self.resolve_profile(request.profile.as_deref())?;
        let now = self.now();
        let not_before = request.not_before.as_deref().map(|v| parse_time("notBefore", v)).transpose()?;
        let not_after = request.not_after.as_deref().map(|v| parse_time("notAfter", v)).transpose()?;
        self.check_validity_request(&profile, now, not_before, not_after)?;
        // Policy first at the door (and again at finalization: it may change in between).
        let policy = self.effective_policy(account).await?;
        Ra::check_identifiers(policy.policy(), &identifiers)?;
        Ra::check_profile(policy.policy(), &profile)?;
        if let Some(not_after) = not_after {
            Ra::check_lifetime(policy.policy(), u64::try_from(not_after - now).unwrap_or(0))?;
        }
        self.check_failed_validations(&identifiers).await?;
        self.limit_new_order(account.id, &policy.group_name).await?;
        let replaces = match &request.replaces {
            Some(cert_id) => Some(self.check_replaces(account, cert_id, &identifiers).await?),
            None => None,
        };

        let expires_at = now.saturating_add(i64::try_from(self.config.order_lifetime_secs).unwrap_or(i64::MAX));
        let mut plans = Vec::with_capacity(identifiers.len());
        for identifier in &identifiers {
            let (target, wildcard) = identifier.authorization_target();
            let reusable = self
                .store()
                .find_reusable_authorization(account.id, &target, wildcard, now + REUSE_MARGIN_SECS)
                .await?;
            plans.push(match reusable {
                Some(authz) => AuthorizationPlan::Reuse(authz.id),
                None => AuthorizationPlan::Create(NewAuthorization {
                    identifier: target,
                    wildcard,
                    expires_at,
                    challenges: challenge_types(identifier)
                        .iter()
                        .map(|kind| NewChallenge { kind: *kind, token: random_token() })
                        .collect(),
                }),
            });
        }
        let new = castellan_store::acme::NewOrder {
            account_id: account.id,
            identifiers: identifiers.iter().map(OrderIdentifier::to_stored).collect(),
            profile: Some(profile),
            not_before,
            not_after,
            replaces: replaces.as_ref().map(|(text, _)| text.clone()),
            expires_at,
            authorizations: plans,
        };
        match self.store().create_order(&new, account_actor(account.id).as_str()).await {
            Ok(order) => Ok(order),
            Err(StoreError::Conflict { .. }) => Err(AcmeError::new(
                ProblemType::AlreadyReplaced,
                "the certificate named in \"replaces\" has already been replaced by another order",
            )),
            // A reused authorization expired or was deactivated between the lookup and the insert.
            Err(StoreError::Invalid { why, .. }) => Err(AcmeError::new(
                ProblemType::ServerInternal,
                format!("an authorization changed while the order was created ({why}); retry"),
            )
            .with_retry_after(1)),
            Err(e) => Err(e.into()),
        }
    }

    /// notBefore/notAfter (RFC 8555 §7.4): a certificate starts when it is signed, so notBefore may only be
    /// "now"; notAfter sets the lifetime, within the profile's.
    fn check_validity_request(
        &self,
        profile: &str,
        now: i64,
        not_before: Option<i64>,
        not_after: Option<i64>,
    ) -> Result<(), AcmeError> {
        if let Some(nb) = not_before
            && (nb > now + 3600 || nb < now - 86_400)
        {
            return Err(AcmeError::malformed(
                "notBefore must be about now: certificates are valid from when they are issued",
            ));
        }
        if let Some(na) = not_after {
            let max = self.profile_lifetime_secs(profile).unwrap_or(i64::MAX);
            if na <= now {
                return Err(AcmeError::malformed("notAfter is in the past"));
            }
            if na - now > max + 3600 {
                return Err(AcmeError::malformed(format!(
                    "notAfter is further out than the {profile} profile's maximum lifetime of {max} seconds"
                )));
            }
        }
        Ok(())
    }

    /// The certificate lifetime of an ACME profile: its configured one, else the CA profile's maximum.
    pub fn profile_lifetime_secs(&self, profile: &str) -> Option<i64> {
        let config = self.config.profiles.get(profile)?;
        if let Some(secs) = config.lifetime_secs {
            return i64::try_from(secs).ok();
        }
        let ca_profile = self.authority.ca().issuer.profiles().get(&config.ca_profile)?;
        i64::try_from(ca_profile.max_lifetime.as_secs()).ok()
    }

    /// RFC 9773 §5: `replaces` names a certificate of this account that shares an identifier with the order.
    async fn check_replaces(
        &self,
        account: &AccountRecord,
        cert_id_text: &str,
        identifiers: &[OrderIdentifier],
    ) -> Result<(String, CertificateRecord), AcmeError> {
        let cert_id = CertId::parse(cert_id_text)?;
        let certificate =
            self.certificate_by_cert_id(&cert_id).await?.filter(|c| c.account_id == Some(account.id)).ok_or_else(
                || AcmeError::malformed(format!("\"replaces\": {cert_id_text:?} names no certificate of this account")),
            )?;
        if certificate.replaced_by_id.is_some() {
            return Err(AcmeError::new(ProblemType::AlreadyReplaced, "that certificate has already been replaced"));
        }
        let wanted: Vec<String> = identifiers
            .iter()
            .map(|i| match i {
                OrderIdentifier::Ip(ip) => format!("IP:{ip}"),
                other => format!("DNS:{}", other.to_wire().value),
            })
            .collect();
        if !certificate.names.iter().any(|n| wanted.contains(n)) {
            return Err(AcmeError::malformed(
                "\"replaces\" names a certificate that shares no identifier with this order",
            ));
        }
        Ok((cert_id_text.to_owned(), certificate))
    }

    /// An order of this account, brought up to date: expired orders become invalid.
    pub async fn order(&self, account: &AccountRecord, order_id: OrderId) -> Result<OrderRecord, AcmeError> {
        let order = match self.store().order(order_id).await {
            Ok(order) => order,
            Err(StoreError::NotFound { .. }) => return Err(not_found("the order")),
            Err(e) => return Err(e.into()),
        };
        if order.account_id != account.id {
            return Err(AcmeError::unauthorized("this order belongs to another account"));
        }
        self.refresh_order(order).await
    }

    /// An order that may have expired while nobody looked is marked so (RFC 8555 §7.1.6).
    pub async fn refresh_order(&self, order: OrderRecord) -> Result<OrderRecord, AcmeError> {
        let expirable = matches!(order.status, OrderStatus::Pending | OrderStatus::Ready);
        if expirable && order.expires_at < self.now() {
            let error = serde_json::json!({
                "type": "urn:ietf:params:acme:error:malformed",
                "detail": "the order expired before it was finalized",
            });
            return match self.store().invalidate_order(order.id, &error, Actor::acme("expiry").as_str()).await {
                Ok(order) => Ok(order),
                // Someone else moved it on meanwhile (finalized, or invalidated it first): show that.
                Err(StoreError::Invalid { .. }) => Ok(self.store().order(order.id).await?),
                Err(e) => Err(e.into()),
            };
        }
        Ok(order)
    }

    /// One page of the account's order ids, and the cursor for the next page if there is one.
    pub async fn account_orders(
        &self,
        account: &AccountRecord,
        after: Option<OrderId>,
    ) -> Result<(Vec<OrderId>, Option<OrderId>), AcmeError> {
        let page = self.config.orders_page_size.max(1);
        let mut ids = self.store().account_orders(account.id, after, page + 1).await?;
        let next = if ids.len() as i64 > page {
            ids.truncate(usize::try_from(page).unwrap_or(usize::MAX));
            ids.last().copied()
        } else {
            None
        };
        Ok((ids, next))
    }
}
