//! The certificate inventory as operators use it: search, one certificate with its PEM, issuing from a CSR,
//! revoking (one, or every certificate a serial, a name or an account names), and marking for re-issuance.

use super::Operator;
use super::views::{CertificatePage, CertificateView, IssuedView, RenewalView, RevocationView, RevokedView};
use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use crate::issuing::Requester;
use crate::revocation::{self, RevocationReason, Revoker};
use castellan_store::inventory::{CertificateQuery, CertificateSource, CertificateStatus, NameMatch};
use castellan_store::revocation::RevocationTarget;
use castellan_store::{AccountId, CertificateId};
use serde::Deserialize;
use std::time::Duration;

/// An inventory search, as the API's query string and the CLI's flags say it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSearch {
    /// Exactly this name.
    pub name: Option<String>,
    /// A name at or under this domain.
    pub suffix: Option<String>,
    /// Hex, any case, colons allowed.
    pub serial: Option<String>,
    pub status: Option<String>,
    /// Live certificates expiring within this many days, soonest first.
    pub expiring_days: Option<u64>,
    /// Certificates an ACME account obtained.
    pub account: Option<AccountId>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl CertificateSearch {
    fn query(self) -> Result<CertificateQuery> {
        let name = match (self.name, self.suffix) {
            (Some(_), Some(_)) => return Err(AuthorityError::invalid("name and suffix exclude each other")),
            (Some(name), None) => Some(NameMatch::Exact(name)),
            (None, Some(suffix)) => Some(NameMatch::Suffix(suffix)),
            (None, None) => None,
        };
        let status = match self.status {
            Some(s) => Some(CertificateStatus::parse(&s).ok_or_else(|| {
                let known: Vec<&str> = CertificateStatus::ALL.iter().map(|s| s.as_str()).collect();
                AuthorityError::invalid(format!("unknown status {s:?} (one of: {})", known.join(", ")))
            })?),
            None => None,
        };
        let limit = self.limit.unwrap_or(CertificateQuery::DEFAULT_LIMIT);
        if !(1..=CertificateQuery::MAX_LIMIT).contains(&limit) {
            return Err(AuthorityError::invalid(format!(
                "limit {limit} is not between 1 and {}",
                CertificateQuery::MAX_LIMIT
            )));
        }
        Ok(CertificateQuery {
            name,
            serial: self.serial,
            status,
            account_id: self.account,
            expiring_within: self.expiring_days.map(|d| Duration::from_secs(d.saturating_mul(86_400))),
            limit,
            cursor: self.cursor,
            ..Default::default()
        })
    }
}

/// Which certificates a revocation or a renewal names: exactly one of these.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// One certificate, by inventory id.
    pub id: Option<CertificateId>,
    /// Every certificate of ours with this serial (hex).
    pub serial: Option<String>,
    /// Every unexpired certificate naming this DNS name, IP address or URI.
    pub name: Option<String>,
    /// Every unexpired certificate this ACME account obtained.
    pub account: Option<AccountId>,
}

impl Operator {
    pub async fn search_certificates(&self, search: CertificateSearch) -> Result<CertificatePage> {
        let page = self.store.search_certificates(&search.query()?).await?;
        Ok(CertificatePage {
            certificates: page.items.iter().map(CertificateView::of).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// One certificate, with its PEM once it is issued.
    pub async fn certificate(&self, id: CertificateId) -> Result<CertificateView> {
        let certificate = self.store.certificate(id).await?;
        let mut view = CertificateView::of(&certificate);
        if let Some(der) = &certificate.certificate_der {
            view.pem = Some(crate::issuing::pem(der)?);
        }
        Ok(view)
    }

    /// Issues from a CSR (PEM or DER) under a CA profile, outside any group's policy: an operator's decision,
    /// recorded with the operator as actor and owner.
    pub async fn issue(
        &self,
        csr: Vec<u8>,
        profile: &str,
        lifetime: Option<Duration>,
        actor: &Actor,
    ) -> Result<IssuedView> {
        let authority = self.authority("issuing a certificate")?;
        let requester = Requester {
            source: CertificateSource::ManagedInternal,
            profile: None,
            account_id: None,
            owner: Some(actor.as_str().to_owned()),
        };
        let issued = authority.issue_from_csr(csr, profile, lifetime, requester, actor).await?;
        let certificate = self.certificate(issued.certificate_id).await?;
        Ok(IssuedView { certificate, chain_pem: issued.chain_pem })
    }

    /// Revokes the certificates `selector` names with an operator's reason (an RFC 5280 name or code); each is
    /// audited, and running servers publish it (OCSP at once, the CRL within `crl_batch_secs`).
    pub async fn revoke(&self, selector: Selector, reason: Option<&str>, actor: &Actor) -> Result<RevocationView> {
        let reason = operator_reason(reason)?;
        let ids = self.select(selector).await?;
        let report = revocation::revoke_many(&self.store, &ids, reason, actor).await?;
        Ok(RevocationView {
            reason: reason.name(),
            revoked: report.revoked.into_iter().map(|(id, serial)| RevokedView { id, serial }).collect(),
            unchanged: report.unchanged,
        })
    }

    /// Revokes one certificate; Conflict if it is already revoked or was never issued.
    pub async fn revoke_certificate(
        &self,
        id: CertificateId,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<(CertificateView, RevocationReason)> {
        let reason = operator_reason(reason)?;
        // NotFound for an unknown id, before anything is written.
        self.store.certificate(id).await?;
        let report = revocation::revoke_many(&self.store, &[id], reason, actor).await?;
        if report.revoked.is_empty() {
            return Err(AuthorityError::Conflict(format!("certificate {id} is already revoked, or was never issued")));
        }
        Ok((self.certificate(id).await?, reason))
    }

    /// Marks the certificates `selector` names for re-issuance now (an incident): RFC 9773 renewal information
    /// then tells their clients to renew at once. They stay valid.
    pub async fn renew_now(&self, selector: Selector, actor: &Actor) -> Result<RenewalView> {
        let ids = self.select(selector).await?;
        let mut due = Vec::with_capacity(ids.len());
        for id in ids {
            self.store.mark_renewal_due(id, actor.as_str()).await?;
            due.push(CertificateView::of(&self.store.certificate(id).await?));
        }
        Ok(RenewalView { due })
    }

    /// The certificates a selector names; NotFound when it names none.
    async fn select(&self, selector: Selector) -> Result<Vec<CertificateId>> {
        let Selector { id, serial, name, account } = selector;
        let target = match (id, serial, name, account) {
            (Some(id), None, None, None) => {
                self.store.certificate(id).await?;
                return Ok(vec![id]);
            }
            (None, Some(serial), None, None) => RevocationTarget::Serial(serial),
            (None, None, Some(name), None) => RevocationTarget::Name(name),
            (None, None, None, Some(account)) => RevocationTarget::Account(account),
            _ => {
                return Err(AuthorityError::invalid(
                    "name the certificates by exactly one of id, serial, name, account",
                ));
            }
        };
        let ids = revocation::candidates(&self.store, &target).await?;
        if ids.is_empty() {
            return Err(AuthorityError::NotFound(format!("a certificate of this CA matching {target:?}")));
        }
        Ok(ids)
    }
}

/// An operator's reason, "unspecified" when none is given.
fn operator_reason(reason: Option<&str>) -> Result<RevocationReason> {
    match reason {
        None => Ok(RevocationReason::Unspecified),
        Some(text) => revocation::reason(text, Revoker::Operator).map_err(|e| AuthorityError::invalid(e.to_string())),
    }
}
