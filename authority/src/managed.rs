//! Issuing a managed certificate from this CA: a fresh key pair, its CSR, the policy of the managed
//! certificate's group, and the one issuance path — with the key sealed to the certificate and the rotation
//! recorded in the transaction that records the certificate.

use crate::Authority;
use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use crate::issue::{Binding, IssuedCertificate};
use crate::issuing::Requester;
use crate::keys::{self, KeyType};
use crate::policy::effective_policy;
use crate::renewal::{managed_renewal_at, scheduled_window};
use crate::sealing::KEK_LABEL;
use castellan_ca::SanName;
use castellan_policy::Subject;
use castellan_store::inventory::CertificateSource;
use castellan_store::lifecycle::{Claim, ManagedCompletion};
use castellan_store::{CertificateId, Store};
use std::time::Duration;
use zeroize::Zeroizing;

/// What a generated key's seal says it is for.
pub const MANAGED_KEY_PURPOSE: &str = "managed-private-key";

/// The owner a generated key is sealed to: its certificate, so a sealed key moved to another row does not open.
pub fn key_owner(certificate: CertificateId) -> String {
    format!("certificate:{certificate}")
}

/// The owner recorded on a managed certificate's inventory rows.
pub fn inventory_owner(name: &str) -> String {
    format!("managed:{name}")
}

/// A managed certificate's typed names ("DNS:…", "IP:…") as the CA takes them.
pub fn san_names(typed: &[String]) -> Result<Vec<SanName>> {
    typed
        .iter()
        .map(|t| match t.split_once(':') {
            Some(("DNS", name)) => Ok(SanName::Dns(name.to_owned())),
            Some(("IP", ip)) => {
                ip.parse().map(SanName::Ip).map_err(|_| AuthorityError::invalid(format!("{ip:?} is not an IP address")))
            }
            _ => Err(AuthorityError::invalid(format!("{t:?} is not a DNS: or IP: name"))),
        })
        .collect()
}

/// Whether the group's policy (under the global deny list) allows these names, profile, key type and lifetime.
/// `fallback` is the configured policy of the default group when the store has none.
pub async fn check_policy(
    store: &Store,
    group_name: &str,
    names: &[SanName],
    profile: &str,
    key_type: KeyType,
    lifetime_secs: Option<u64>,
    fallback: Option<&serde_json::Value>,
) -> Result<()> {
    let group = match store.group_by_name(group_name).await? {
        Some(group) => Some(group.id),
        None if group_name == crate::policy::DEFAULT_GROUP => None,
        None => return Err(AuthorityError::NotFound(format!("group {group_name:?}"))),
    };
    // A command on the CA's machine run without the server's configuration checks with what the server recorded.
    let recorded = match fallback {
        Some(_) => None,
        None => crate::policy::served_default_policy(store).await?,
    };
    let effective = effective_policy(store, group, fallback.or(recorded.as_ref())).await?;
    let policy = effective.policy();
    let refused = |e: castellan_policy::Refusal| AuthorityError::invalid(e.to_string());
    for name in names {
        let subject = match name {
            SanName::Dns(d) => Subject::Dns(d),
            SanName::Ip(ip) => Subject::Ip(*ip),
            SanName::Uri(u) => Subject::Uri(u),
        };
        policy.check_subject(subject).map_err(refused)?;
    }
    policy.check_profile(profile).map_err(refused)?;
    policy.check_key(policy_key_type(key_type)).map_err(refused)?;
    if let Some(secs) = lifetime_secs {
        policy.check_lifetime(secs).map_err(refused)?;
    }
    Ok(())
}

fn policy_key_type(key_type: KeyType) -> castellan_policy::KeyType {
    match key_type {
        KeyType::EcP256 => castellan_policy::KeyType::EcP256,
        KeyType::EcP384 => castellan_policy::KeyType::EcP384,
        KeyType::Rsa2048 => castellan_policy::KeyType::Rsa { bits: 2048 },
        KeyType::Rsa3072 => castellan_policy::KeyType::Rsa { bits: 3072 },
        KeyType::Rsa4096 => castellan_policy::KeyType::Rsa { bits: 4096 },
    }
}

impl Authority {
    /// Issues the certificate of a claimed rotation: a new key pair, generated here and sealed under the token's
    /// KEK to the certificate's inventory id; the certificate, its sealed key, the rotation's success and the
    /// managed certificate's next renewal commit in one transaction with the `certificate.issue` audit entry.
    /// The caller has checked the policy (`check_policy`); the CA's profile and name constraints apply here.
    pub async fn issue_managed(&self, claim: &Claim, actor: &Actor) -> Result<IssuedCertificate> {
        let managed = &claim.managed;
        let names = san_names(&managed.names)?;
        let key_type = KeyType::parse(&managed.key_type)?;
        let generated = tokio::task::spawn_blocking(move || keys::generate(key_type, &names)).await??;
        let lifetime = managed.lifetime_secs.map(|s| Duration::from_secs(s.max(1).unsigned_abs()));
        let prepared = self.prepare_leaf(generated.csr_der.clone(), &managed.profile, lifetime).await?;
        let requester = Requester {
            source: CertificateSource::ManagedInternal,
            profile: Some(managed.profile.clone()),
            account_id: None,
            owner: Some(inventory_owner(&managed.name)),
        };
        let reservation = self.reserve(prepared, requester).await?;
        let sealed = match self.seal_key(reservation.certificate_id, generated.pkcs8_der).await {
            Ok(sealed) => sealed,
            Err(e) => {
                // Nothing was signed: the serial stays spent, the row says so.
                self.abandon(reservation).await?;
                return Err(e);
            }
        };
        let facts = reservation.prepared_facts();
        let (not_before, not_after) = (crate::clock::unix_seconds(facts.0), crate::clock::unix_seconds(facts.1));
        let spread_key = format!("{}:{}", managed.id, reservation.serial_hex());
        let next_renewal_at =
            managed_renewal_at(not_before, not_after, scheduled_window(not_before, not_after), &spread_key);
        let completion = ManagedCompletion {
            managed_id: managed.id,
            rotation_id: claim.rotation.id,
            lease_owner: claim.lease_owner.clone(),
            next_renewal_at,
            sealed_key: sealed,
            kek_label: KEK_LABEL.to_owned(),
            key_type: key_type.as_str().to_owned(),
        };
        self.sign_and_record(reservation, Binding::Managed { name: managed.name.clone(), completion }, actor).await
    }

    async fn seal_key(&self, certificate: CertificateId, pkcs8: Zeroizing<Vec<u8>>) -> Result<Vec<u8>> {
        let sealing = self.sealing().await?;
        Ok(sealing.seal(MANAGED_KEY_PURPOSE, &key_owner(certificate), pkcs8).await?)
    }

    /// The private key (PKCS#8 DER) of a certificate Castellan generated the key for, unsealed: only for sealing
    /// it again to its recipient.
    pub async fn managed_private_key(&self, certificate: CertificateId) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = self.store().sealed_key(certificate).await?;
        if sealed.kek_label != KEK_LABEL {
            return Err(AuthorityError::Unavailable(format!(
                "the key of certificate {certificate} is sealed under {:?}, not this token's {KEK_LABEL:?}",
                sealed.kek_label
            )));
        }
        let sealing = self.sealing().await?;
        Ok(sealing.unseal(MANAGED_KEY_PURPOSE, &key_owner(certificate), &sealed.sealed).await?)
    }
}
