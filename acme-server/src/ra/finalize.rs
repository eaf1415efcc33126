//! Finalization (RFC 8555 §7.4): the CSR is checked against the order, the serial is recorded, and the HSM signs
//! on a task of its own — the HTTP request waits only a bounded moment for it, then answers "processing".

use castellan_acme_proto::Jwk;
use castellan_authority::{Actor, Binding, Prepared, Requester, Reservation};
use castellan_ca::{CaError, PreparedCertificate};
use castellan_store::acme::{AccountRecord, OrderRecord, OrderStatus};
use castellan_store::inventory::CertificateSource;
use castellan_store::{CertificateId, OrderId};
use der::Encode;
use std::sync::Arc;
use std::time::Duration;

use super::identifiers::{OrderIdentifier, check_csr_names};
use super::{Ra, account_actor};
use crate::problem::{AcmeError, ProblemType};

/// A CSR refused by the CA, as the client should hear it.
fn csr_problem(e: &CaError) -> AcmeError {
    match e {
        CaError::OutsideNameConstraints { .. } | CaError::BadIdentifier(_) | CaError::ProfileForbids { .. } => {
            AcmeError::new(ProblemType::RejectedIdentifier, e.to_string())
        }
        CaError::IssuerNotValid { .. } | CaError::UnsupportedNameConstraint { .. } => {
            AcmeError::internal("the issuing CA cannot issue", e)
        }
        _ => AcmeError::new(ProblemType::BadCsr, e.to_string()),
    }
}

impl Ra {
    pub async fn finalize(
        &self,
        account: &AccountRecord,
        order_id: OrderId,
        csr_b64: &str,
    ) -> Result<OrderRecord, AcmeError> {
        let order = self.order(account, order_id).await?;
        if order.status != OrderStatus::Ready {
            return Err(AcmeError::new(
                ProblemType::OrderNotReady,
                format!("the order is {}, not ready: it can only be finalized once", order.status.as_str()),
            ));
        }
        let csr_der = castellan_acme_proto::b64::decode(csr_b64)
            .map_err(|e| AcmeError::new(ProblemType::BadCsr, format!("csr is not base64url: {e}")))?;
        let prepared = self.prepare(account, &order, csr_der.clone()).await?;
        let requester = Requester {
            source: CertificateSource::InternalAcme,
            profile: order.profile.clone(),
            account_id: Some(account.id),
            owner: None,
        };
        let reservation = self.authority.reserve(Prepared::Leaf(prepared), requester).await?;
        let actor = account_actor(account.id);
        if !self.store().begin_finalize(order.id, &csr_der, reservation.certificate_id, actor.as_str()).await? {
            // A concurrent finalize won; this reservation is never signed.
            self.authority.abandon(reservation).await?;
            return Err(AcmeError::new(ProblemType::OrderNotReady, "the order is already being finalized"));
        }
        let replaces = match &order.replaces {
            Some(text) => {
                let cert_id = super::renewal_info::CertId::parse(text)?;
                self.certificate_by_cert_id(&cert_id).await?.map(|c| c.id)
            }
            None => None,
        };
        let ra = self.clone();
        let order_id = order.id;
        let task = tokio::spawn(async move { ra.sign_and_record(order_id, reservation, replaces, actor).await });
        let wait = self.config.wait_for_outcome();
        if !wait.is_zero() && tokio::time::timeout(wait, task).await.is_ok() {
            return Ok(self.store().order(order_id).await?);
        }
        // Still signing when the wait ran out: answer with the state we put it in; the client polls.
        Ok(OrderRecord { status: OrderStatus::Processing, ..order })
    }

    /// Everything about the CSR that can be refused, before anything is recorded.
    async fn prepare(
        &self,
        account: &AccountRecord,
        order: &OrderRecord,
        csr_der: Vec<u8>,
    ) -> Result<PreparedCertificate, AcmeError> {
        let profile = order.profile.clone().unwrap_or_else(|| self.config.default_profile.clone());
        let ca_profile = self
            .config
            .profiles
            .get(&profile)
            .map(|p| p.ca_profile.clone())
            .ok_or_else(|| AcmeError::new(ProblemType::InvalidProfile, format!("profile {profile:?} is gone")))?;
        let now = self.authority.clock().now();
        let now_unix = castellan_authority::clock::unix_seconds(now);
        let lifetime = match order.not_after {
            Some(not_after) => Some(Duration::from_secs(u64::try_from(not_after - now_unix).unwrap_or(1).max(1))),
            None => self.profile_lifetime_secs(&profile).and_then(|s| u64::try_from(s).ok()).map(Duration::from_secs),
        };
        let identifiers: Vec<OrderIdentifier> =
            order.identifiers.iter().filter_map(OrderIdentifier::from_stored).collect();
        // The policy as it is now, not as it was at newOrder.
        let policy = self.effective_policy(account).await?;
        Ra::check_identifiers(policy.policy(), &identifiers)?;
        Ra::check_profile(policy.policy(), &profile)?;
        // The group's maximum shortens the certificate rather than refusing it (the client asked for no length).
        let lifetime = match (lifetime, policy.policy().max_lifetime_secs()) {
            (Some(l), Some(max)) => Some(l.min(Duration::from_secs(max))),
            (None, Some(max)) => Some(Duration::from_secs(max)),
            (l, None) => l,
        };
        let key_policy = policy;
        let account_thumbprint = account.jwk_thumbprint.clone();
        let issuer = Arc::clone(&self.authority.ca().issuer);
        // CSR signature checks are CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            let csr = castellan_ca::verify_csr(&csr_der).map_err(|e| csr_problem(&e))?;
            Ra::check_key(key_policy.policy(), &csr.key_kind)?;
            let spki = csr.request.info.public_key.to_der().map_err(|e| AcmeError::internal("encoding a key", &e))?;
            if Jwk::from_spki_der(&spki).is_ok_and(|jwk| jwk.thumbprint() == account_thumbprint) {
                return Err(AcmeError::new(
                    ProblemType::BadCsr,
                    "the CSR's key is the account key: certificates need a key of their own",
                ));
            }
            check_csr_names(&identifiers, &csr.names)?;
            // Capped by the profile's maximum in `prepare`; a client asking for less gets less.
            let lifetime = lifetime.map(|l| issuer.profiles().get(&ca_profile).map_or(l, |p| l.min(p.max_lifetime)));
            issuer.prepare(&csr, &ca_profile, lifetime, now).map_err(|e| csr_problem(&e))
        })
        .await
        .map_err(|e| AcmeError::internal("the CSR check failed", &e))?
    }

    /// Signs and records on a task of its own; the authority applies the rules (the order goes valid with the
    /// certificate, or invalid; the row is failed only when the token refused to sign).
    async fn sign_and_record(
        &self,
        order_id: OrderId,
        reservation: Reservation,
        replaces: Option<CertificateId>,
        actor: Actor,
    ) {
        let failure = serde_json::json!({
            "type": "urn:ietf:params:acme:error:serverInternal",
            "detail": "the CA could not sign the certificate; the server logged the details",
        });
        let binding = Binding::Order { order_id, replaces, failure };
        if let Err(e) = self.authority.sign_and_record(reservation, binding, &actor).await {
            tracing::error!(%order_id, error = %e, "finalization failed");
        }
    }

    /// The chain to download for a valid order's certificate: leaf then issuing chain, PEM.
    pub async fn certificate_chain(
        &self,
        account: &AccountRecord,
        certificate_id: CertificateId,
    ) -> Result<String, AcmeError> {
        let certificate = match self.store().certificate(certificate_id).await {
            Ok(c) => c,
            Err(castellan_store::StoreError::NotFound { .. }) => return Err(super::not_found("the certificate")),
            Err(e) => return Err(e.into()),
        };
        if certificate.account_id != Some(account.id) {
            return Err(AcmeError::unauthorized("this certificate belongs to another account"));
        }
        let der = certificate.certificate_der.ok_or_else(|| super::not_found("the certificate (not issued yet)"))?;
        let mut pem = castellan_ca::certificate_pem(&der).map_err(|e| AcmeError::internal("encoding PEM", &e))?;
        pem.push_str(self.authority.ca().issuer.chain_pem());
        Ok(pem)
    }
}
