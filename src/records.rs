//! What the CA does, written down: issuers and issued certificates in the inventory, every change in the audit
//! log. Issuance is recorded in two steps around the HSM signature (see castellan_store::inventory).

use crate::authority::LoadedCa;
use anyhow::{Context, Result};
use castellan_acme_server::ra::issuing::{Requester, unix_seconds as unix};
use castellan_ca::{CaError, IssuanceRequest, Issued};
use castellan_hsm::HsmSignature;
use castellan_store::Store;
use castellan_store::audit::AuditEvent;
use castellan_store::inventory::{CertificateSource, NewIssuer};
use der::Encode;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::SystemTime;
use x509_cert::Certificate;

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The name an issuer is filed under: its role and the start of its fingerprint, stable across restarts.
fn issuer_name(role: &str, der: &[u8]) -> String {
    format!("{role}-{}", &hex::encode(Sha256::digest(der))[..16])
}

/// Files the CA's certificates in the store (idempotent); returns the intermediate's issuer id.
pub async fn register_issuers(
    store: &Store,
    root: &Certificate,
    root_key: Option<&str>,
    intermediate: &Certificate,
    intermediate_key: &str,
    token: &str,
) -> Result<i64> {
    let record = |role: &str, cert: &Certificate, key: Option<&str>| -> Result<NewIssuer> {
        let der = cert.to_der()?;
        let tbs = &cert.tbs_certificate;
        Ok(NewIssuer {
            name: issuer_name(role, &der),
            role: role.to_owned(),
            subject: tbs.subject.to_string(),
            spki_sha256: sha256(&tbs.subject_public_key_info.to_der()?),
            key_id: castellan_ca::extensions::issuer_key_id(cert)?,
            token_label: key.map(|_| token.to_owned()),
            key_label: key.map(str::to_owned),
            not_before: unix(tbs.validity.not_before.to_system_time()),
            not_after: unix(tbs.validity.not_after.to_system_time()),
            certificate_der: der,
        })
    };
    store.register_issuer(&record("root", root, root_key)?).await?;
    let intermediate = store.register_issuer(&record("intermediate", intermediate, Some(intermediate_key))?).await?;
    Ok(intermediate.id)
}

/// Who did it and why, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor(pub String);

/// Issues from a CSR with the inventory and audit log kept in step:
/// reserve (serial, TBS hash) → sign in the HSM → complete, with the audit entry in the completing transaction.
pub async fn issue_recorded(
    store: &Store,
    ca: &Arc<LoadedCa>,
    request: IssuanceRequest<'_>,
    source: CertificateSource,
    actor: &Actor,
) -> Result<Issued> {
    let csr = request.csr.to_vec();
    let (profile, lifetime) = (request.profile.to_owned(), request.lifetime);
    let prepared = {
        let ca = Arc::clone(ca);
        tokio::task::spawn_blocking(move || {
            let verified = castellan_ca::verify_csr(&csr)?;
            ca.issuer.prepare(&verified, &profile, lifetime, SystemTime::now())
        })
        .await??
    };
    let requester =
        Requester { source, profile: Some(prepared.profile.name().to_owned()), account_id: None, owner: None };
    let pending = ca.issuing().pending_row(&prepared, requester);
    let id = store.reserve_certificate(&pending).await.context("recording the serial before signing")?;
    let signed = {
        let ca = Arc::clone(ca);
        tokio::task::spawn_blocking(move || ca.issuer.sign_prepared::<HsmSignature>(prepared)).await
    };
    let issued = match signed {
        Ok(Ok(issued)) => issued,
        // The token refused to sign: nothing exists under this serial. It stays spent; the row says so.
        Ok(Err(e @ CaError::Signing(_))) => {
            store.fail_certificate(id).await.context("marking a failed issuance")?;
            return Err(e.into());
        }
        // A signature may exist (the checks after signing failed, or the worker died): the row stays pending,
        // naming serial and TBS hash, for an operator to look at (`castellan inventory --status pending`).
        Ok(Err(e)) => {
            tracing::error!(inventory_id = id, error = %e, "issuance failed after the HSM signed; row left pending");
            return Err(e.into());
        }
        Err(e) => {
            tracing::error!(inventory_id = id, error = %e, "the signing worker failed; row left pending");
            return Err(e.into());
        }
    };
    let cert_sha256 = sha256(&issued.der);
    let event = AuditEvent::new(actor.0.clone(), "certificate.issue", issued.serial_hex.clone()).with_details(
        serde_json::json!({
            "inventory_id": id,
            "profile": issued.profile.name(),
            "names": pending.names,
            "not_after": pending.not_after,
            "sha256": hex::encode(&cert_sha256),
        }),
    );
    store
        .complete_certificate_audited(id, &issued.der, &cert_sha256, &event)
        .await
        .context("recording the signed certificate")?;
    Ok(issued)
}

/// Appends an audit entry for a change that has no row of its own (ceremony, import).
pub async fn audit(
    store: &Store,
    actor: &Actor,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<()> {
    store.audit_append(&AuditEvent::new(actor.0.clone(), action, subject).with_details(details)).await?;
    Ok(())
}
