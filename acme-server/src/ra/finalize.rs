//! Finalization (RFC 8555 §7.4): the CSR is checked against the order, the serial is recorded, and the HSM signs
//! on a task of its own — the HTTP request waits only a bounded moment for it, then answers "processing".

use castellan_acme_proto::Jwk;
use castellan_ca::{CaError, PreparedCertificate};
use castellan_hsm::HsmSignature;
use castellan_store::acme::{AccountRecord, OrderRecord, OrderStatus};
use castellan_store::inventory::CertificateSource;

use super::issuing::Requester;
use der::Encode;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::identifiers::{OrderIdentifier, check_csr_names};
use super::{Ra, account_actor, now};
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
        order_id: i64,
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
        let pending = self.ca.pending_row(
            &prepared,
            Requester {
                source: CertificateSource::InternalAcme,
                profile: order.profile.clone(),
                account_id: Some(account.id),
                owner: None,
            },
        );
        let certificate_id = self.store.reserve_certificate(&pending).await?;
        let actor = account_actor(account.id);
        if !self.store.begin_finalize(order.id, &csr_der, certificate_id, &actor).await? {
            // A concurrent finalize won; this reservation is never signed.
            self.store.fail_certificate(certificate_id).await?;
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
        let task = tokio::spawn(async move { ra.sign_and_record(order_id, prepared, replaces, actor).await });
        let wait = self.config.wait_for_outcome();
        if !wait.is_zero() && tokio::time::timeout(wait, task).await.is_ok() {
            return Ok(self.store.order(order_id).await?);
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
        let now_unix = now();
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
        let issuer = Arc::clone(&self.ca.issuer);
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
            issuer.prepare(&csr, &ca_profile, lifetime, SystemTime::now()).map_err(|e| csr_problem(&e))
        })
        .await
        .map_err(|e| AcmeError::internal("the CSR check failed", &e))?
    }

    async fn sign_and_record(
        &self,
        order_id: i64,
        prepared: PreparedCertificate,
        replaces: Option<i64>,
        actor: String,
    ) {
        let issuer = Arc::clone(&self.ca.issuer);
        let signed = tokio::task::spawn_blocking(move || issuer.sign_prepared::<HsmSignature>(prepared)).await;
        let result = match signed {
            Ok(Ok(issued)) => {
                let sha = Sha256::digest(&issued.der).to_vec();
                self.store.complete_order(order_id, &issued.der, &sha, replaces, &actor).await.map(|_| ())
            }
            Ok(Err(e)) => {
                // Only a refusal by the token means nothing was signed under this serial.
                let signing_refused = matches!(e, CaError::Signing(_));
                tracing::error!(order_id, error = %e, "signing failed");
                let error = serde_json::json!({
                    "type": "urn:ietf:params:acme:error:serverInternal",
                    "detail": "the CA could not sign the certificate; the server logged the details",
                });
                self.store.fail_order(order_id, &error, signing_refused, &actor).await.map(|_| ())
            }
            Err(e) => {
                tracing::error!(order_id, error = %e, "the signing worker failed; the order stays processing");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(order_id, error = %e, "recording the finalization failed; the order stays processing");
        }
    }

    /// The chain to download for a valid order's certificate: leaf then issuing chain, PEM.
    pub async fn certificate_chain(&self, account: &AccountRecord, certificate_id: i64) -> Result<String, AcmeError> {
        let certificate = match self.store.certificate(certificate_id).await {
            Ok(c) => c,
            Err(castellan_store::StoreError::NotFound { .. }) => return Err(super::not_found("the certificate")),
            Err(e) => return Err(e.into()),
        };
        if certificate.account_id != Some(account.id) {
            return Err(AcmeError::unauthorized("this certificate belongs to another account"));
        }
        let der = certificate.certificate_der.ok_or_else(|| super::not_found("the certificate (not issued yet)"))?;
        let mut pem = castellan_ca::certificate_pem(&der).map_err(|e| AcmeError::internal("encoding PEM", &e))?;
        pem.push_str(self.ca.issuer.chain_pem());
        Ok(pem)
    }
}
