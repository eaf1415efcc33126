//! Managed certificates as operators use them (`/admin/domains`, `castellan domains`): start managing a set of
//! names, see a certificate and its renewal state, renew now, stop managing; and every certificate in the
//! inventory expiring soon, with the renewal state of those Castellan manages.

use super::views::{
    CertificateView, DomainCertificateView, DomainPage, DomainView, ExpiringPage, ExpiringView, RotationView,
};
use super::{Operator, page_limit};
use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use crate::keys::KeyType;
use crate::managed::{check_policy, san_names};
use crate::policy::DEFAULT_GROUP;
use crate::revocation::{self};
use castellan_store::inventory::CertificateQuery;
use castellan_store::lifecycle::{ManagedQuery, ManagedStatus, NewManaged, RenewalReason};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

/// The issuer of managed certificates unless one is named: this CA.
pub const INTERNAL_ISSUER: &str = "internal";
/// The profile of managed certificates unless one is named.
pub const DEFAULT_PROFILE: &str = "tls-server";
/// The shortest lifetime a managed certificate may ask for: renewals come every two thirds of it.
pub const MIN_LIFETIME_SECS: u64 = 60;
/// How many rotations a domain's view shows.
const ROTATIONS_SHOWN: i64 = 10;

/// `POST /admin/domains`: what to manage.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    /// The name the certificate is addressed by, and its first subjectAltName.
    pub domain: String,
    /// More names: DNS names (wildcards too) and IP addresses.
    #[serde(default)]
    pub sans: Vec<String>,
    /// ec-p256 (the default), ec-p384, rsa-2048, rsa-3072, rsa-4096.
    pub key_type: Option<String>,
    /// "internal" (the default): this CA.
    pub issuer: Option<String>,
    /// A CA profile; tls-server by default.
    pub profile: Option<String>,
    /// The account group whose policy the names must pass; "default" by default.
    pub group: Option<String>,
    /// Seconds; the profile's maximum by default.
    pub lifetime_secs: Option<u64>,
}

/// `GET /admin/domains`: filters and the page.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSearch {
    /// active (the default) or removed.
    pub status: Option<String>,
    pub issuer: Option<String>,
    /// Only those whose last renewal attempt failed.
    #[serde(default)]
    pub failing: bool,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /admin/certificates/expiring`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiringSearch {
    pub days: Option<u64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One name as a managed certificate holds it: "DNS:…" (lower-case) or "IP:…".
fn typed_name(text: &str) -> Result<String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        if let IpAddr::V6(v6) = ip
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(AuthorityError::invalid(format!(
                "{text:?} is an IPv4-mapped IPv6 address: name the IPv4 address instead"
            )));
        }
        return Ok(format!("IP:{ip}"));
    }
    let name = text.to_ascii_lowercase();
    castellan_ca::names::validate_dns_name(&name)
        .map_err(|e| AuthorityError::invalid(format!("{text:?} is not a DNS name or IP address: {e}")))?;
    Ok(format!("DNS:{name}"))
}

fn domain_key(domain: &str) -> Result<String> {
    let typed = typed_name(domain)?;
    Ok(typed.split_once(':').map(|(_, v)| v.to_owned()).unwrap_or(typed))
}

impl Operator {
    /// Starts managing a certificate; its first issuance starts at once (the scheduler finds it due).
    pub async fn add_domain(&self, new: NewDomain, actor: &Actor) -> Result<DomainCertificateView> {
        let name = domain_key(&new.domain)?;
        let mut names = vec![typed_name(&new.domain)?];
        for san in &new.sans {
            let typed = typed_name(san)?;
            if !names.contains(&typed) {
                names.push(typed);
            }
        }
        if names.len() > 100 {
            return Err(AuthorityError::invalid(format!("{} names: at most 100", names.len())));
        }
        let key_type = KeyType::parse(new.key_type.as_deref().unwrap_or(KeyType::EcP256.as_str()))?;
        let issuer = new.issuer.unwrap_or_else(|| INTERNAL_ISSUER.to_owned());
        if issuer != INTERNAL_ISSUER {
            return Err(AuthorityError::invalid(format!(
                "unknown issuer {issuer:?}: only {INTERNAL_ISSUER:?} (this CA) is configured"
            )));
        }
        let profile = new.profile.unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
        if let Some(authority) = &self.authority {
            let known = authority.ca().issuer.profiles();
            if known.get(&profile).is_none() {
                return Err(AuthorityError::invalid(format!(
                    "unknown profile {profile:?} (known: {})",
                    known.names().join(", ")
                )));
            }
        }
        if let Some(secs) = new.lifetime_secs
            && secs < MIN_LIFETIME_SECS
        {
            return Err(AuthorityError::invalid(format!(
                "lifetime_secs {secs} is too short: at least {MIN_LIFETIME_SECS} (renewed at two thirds of it)"
            )));
        }
        if let (Some(authority), Some(secs)) = (&self.authority, new.lifetime_secs)
            && let Some(max) = authority.ca().issuer.profiles().get(&profile).map(|p| p.max_lifetime.as_secs())
            && secs > max
        {
            return Err(AuthorityError::invalid(format!(
                "lifetime_secs {secs} is longer than profile {profile:?} allows ({max})"
            )));
        }
        let lifetime_secs = new.lifetime_secs.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        let group_name = new.group.unwrap_or_else(|| DEFAULT_GROUP.to_owned());
        check_policy(
            &self.store,
            &group_name,
            &san_names(&names)?,
            &profile,
            key_type,
            new.lifetime_secs,
            self.default_policy.as_ref(),
        )
        .await?;
        let record = NewManaged {
            name: name.clone(),
            names,
            issuer,
            profile,
            key_type: key_type.as_str().to_owned(),
            group_name,
            lifetime_secs,
        };
        self.store.create_managed(&record, actor.as_str()).await?;
        self.domain(&name).await
    }

    pub async fn domains(&self, search: DomainSearch) -> Result<DomainPage> {
        let status = match search.status.as_deref() {
            None => Some(ManagedStatus::Active),
            Some("all") => None,
            Some(s) => Some(
                ManagedStatus::parse(s)
                    .ok_or_else(|| AuthorityError::invalid(format!("unknown status {s:?} (active, removed or all)")))?,
            ),
        };
        let limit = page_limit(search.limit)?;
        let query = ManagedQuery {
            status,
            issuer: search.issuer,
            failing: search.failing,
            after: search.cursor,
            limit: limit + 1,
        };
        let mut found = self.store.list_managed(&query).await?;
        let more = found.len() as i64 > limit;
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more { found.last().map(|m| m.name.clone()) } else { None };
        let ids: Vec<_> = found.iter().map(|m| m.id).collect();
        let in_flight = self.store.in_flight_rotations(&ids).await?;
        let domains = found.iter().map(|m| DomainView::of(m, in_flight.get(&m.id))).collect();
        Ok(DomainPage { domains, next_cursor })
    }

    /// A managed certificate: its current certificate with the chain, its renewal state and recent rotations.
    pub async fn domain(&self, domain: &str) -> Result<DomainCertificateView> {
        let managed = self.store.managed_by_name(&domain_key(domain)?).await?;
        let rotations = self.store.rotations(managed.id, ROTATIONS_SHOWN).await?;
        let (certificate, chain_pem) = match managed.current_certificate_id {
            Some(id) => {
                let record = self.store.certificate(id).await?;
                let mut chain = match &record.certificate_der {
                    Some(der) => crate::issuing::pem(der)?,
                    None => String::new(),
                };
                if let Some(authority) = &self.authority {
                    chain.push_str(authority.ca().issuer.chain_pem());
                }
                (Some(CertificateView::of(&record)), Some(chain))
            }
            None => (None, None),
        };
        Ok(DomainCertificateView {
            domain: DomainView::of(&managed, rotations.first()),
            certificate,
            chain_pem,
            rotations: rotations.iter().map(RotationView::of).collect(),
        })
    }

    /// Re-issues now with a new key. Idempotent: while a rotation is queued or running, that one is returned and
    /// `created` is false.
    pub async fn renew_domain(&self, domain: &str, actor: &Actor) -> Result<(RotationView, bool)> {
        let (rotation, created) =
            self.store.request_renewal(&domain_key(domain)?, RenewalReason::Manual, actor.as_str()).await?;
        Ok((RotationView::of(&rotation), created))
    }

    /// Stops managing; with `revoke` (an RFC 5280 reason name, e.g. "cessationOfOperation"), its current
    /// certificate is revoked too.
    pub async fn remove_domain(&self, domain: &str, revoke: Option<&str>, actor: &Actor) -> Result<DomainView> {
        let reason = revoke
            .map(|r| revocation::reason(r, revocation::Revoker::Operator))
            .transpose()
            .map_err(|e| AuthorityError::invalid(e.to_string()))?;
        let managed = self.store.remove_managed(&domain_key(domain)?, actor.as_str()).await?;
        if let (Some(reason), Some(current)) = (reason, managed.current_certificate_id) {
            revocation::revoke_many(&self.store, &[current], reason, actor).await?;
        }
        Ok(DomainView::of(&managed, None))
    }

    /// Every live certificate in the inventory expiring within `days` (30 by default), soonest first.
    pub async fn expiring(&self, search: ExpiringSearch) -> Result<ExpiringPage> {
        let days = search.days.unwrap_or(30);
        let limit = search.limit.unwrap_or(CertificateQuery::DEFAULT_LIMIT);
        if !(1..=CertificateQuery::MAX_LIMIT).contains(&limit) {
            return Err(AuthorityError::invalid(format!(
                "limit {limit} is not between 1 and {}",
                CertificateQuery::MAX_LIMIT
            )));
        }
        let query = CertificateQuery {
            expiring_within: Some(Duration::from_secs(days.saturating_mul(86_400))),
            limit,
            cursor: search.cursor,
            ..Default::default()
        };
        let page = self.store.expiring_certificates(&query).await?;
        Ok(ExpiringPage {
            days,
            certificates: page.items.iter().map(ExpiringView::of).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// `POST /admin/reissues`: exactly one of these.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReissueRequest {
    /// Every active managed certificate.
    #[serde(default)]
    pub all: bool,
    /// Those whose current certificate was issued under this issuer key identifier (hex, the AKI).
    pub issuer_key_id: Option<String>,
}

/// A mass re-issue asked for, and where it stands.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReissueView {
    /// Newly marked by this request (0 when asked again).
    pub marked: u64,
    pub progress: castellan_store::lifecycle::ReissueProgress,
}

impl Operator {
    /// Re-issues managed certificates with new keys, all or those under one issuer key (a compromised
    /// intermediate): marked now, issued by the scheduler at its bounded concurrency, resumed after a restart.
    pub async fn reissue(&self, request: ReissueRequest, actor: &Actor) -> Result<ReissueView> {
        let key = match (request.all, request.issuer_key_id) {
            (true, None) => None,
            (false, Some(hex_text)) => {
                let key = hex::decode(hex_text.replace(':', ""))
                    .map_err(|_| AuthorityError::invalid(format!("issuer_key_id {hex_text:?} is not hex")))?;
                if key.is_empty() {
                    return Err(AuthorityError::invalid("issuer_key_id is empty"));
                }
                Some(key)
            }
            _ => return Err(AuthorityError::invalid("give exactly one of all: true or issuer_key_id")),
        };
        let marked = self.store.request_reissue(key.as_deref(), actor.as_str()).await?;
        Ok(ReissueView { marked, progress: self.store.reissue_progress().await? })
    }

    pub async fn reissue_progress(&self) -> Result<castellan_store::lifecycle::ReissueProgress> {
        Ok(self.store.reissue_progress().await?)
    }
}
