//! The one way a certificate is issued, whoever asks (ACME finalization, an operator, Castellan's own TLS and OCSP
//! certificates, and what comes next: managed certificates, the client tier):
//!
//! 1. **reserve** — the `pending` inventory row: serial, TBS hash, names. UNIQUE (issuer, serial) in the database.
//! 2. **sign** — the HSM signs exactly the linted TBS bytes.
//! 3. **record** — the certificate, its `certificate.issue` audit entry and whatever the issuance is bound to (an
//!    ACME order) commit in one transaction.
//!
//! The rules between the steps live here and nowhere else: a row is marked `failed` only when the token refused
//! to sign (nothing exists under that serial); if anything fails after a signature may exist, the row stays
//! `pending` for an operator (`castellan certificate search --status pending`). A crash can leave a pending row
//! naming what may have been signed, never a signed certificate the inventory lacks.

use crate::Authority;
use crate::actor::Actor;
use crate::clock::{rfc3339, unix_seconds};
use crate::error::Result;
use crate::issuing::{Prepared, Requester};
use castellan_ca::CaError;
use castellan_hsm::HsmSignature;
use castellan_store::audit::AuditEvent;
use castellan_store::lifecycle::ManagedCompletion;
use castellan_store::{CertificateId, OrderId};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// A certificate whose serial is on record, not yet signed.
#[derive(Debug)]
pub struct Reservation {
    pub certificate_id: CertificateId,
    prepared: Prepared,
    requester: Requester,
}

impl Reservation {
    pub fn serial_hex(&self) -> &str {
        self.prepared.serial_hex()
    }

    /// The prepared certificate's (notBefore, notAfter).
    pub fn prepared_facts(&self) -> (SystemTime, SystemTime) {
        let facts = self.prepared.facts();
        (facts.not_before, facts.not_after)
    }
}

/// What else commits with the signed certificate.
#[derive(Clone, Debug)]
pub enum Binding {
    /// Nothing: the certificate stands alone.
    Standalone,
    /// An ACME order: processing → valid with the certificate (and `replaces` linked to it), or → invalid with
    /// `failure` (an RFC 7807 problem) when signing fails.
    Order { order_id: OrderId, replaces: Option<CertificateId>, failure: Value },
    /// A managed certificate's rotation: the certificate becomes its current one (superseding the old), with its
    /// sealed key, the rotation's success and the next renewal. A refused signature fails the row; the caller
    /// records the rotation's failure and its back-off.
    Managed { name: String, completion: ManagedCompletion },
}

/// A signed certificate on record.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub certificate_id: CertificateId,
    pub serial_hex: String,
    pub certificate: Certificate,
    pub der: Vec<u8>,
    /// Leaf, then the issuing chain (intermediate, root), PEM.
    pub chain_pem: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub profile: String,
}

impl Authority {
    /// Verifies a CSR and prepares a leaf under a CA profile: checks and lints, on the blocking pool (CSR
    /// signatures are CPU work). Nothing is recorded yet.
    pub async fn prepare_leaf(&self, csr: Vec<u8>, profile: &str, lifetime: Option<Duration>) -> Result<Prepared> {
        let (ca, profile, now) = (Arc::clone(self.ca()), profile.to_owned(), self.clock().now());
        let prepared = tokio::task::spawn_blocking(move || {
            let verified = castellan_ca::verify_csr(&csr)?;
            ca.issuer.prepare(&verified, &profile, lifetime, now)
        })
        .await??;
        Ok(Prepared::Leaf(prepared))
    }

    /// Step one: the pending row.
    pub async fn reserve(&self, prepared: Prepared, requester: Requester) -> Result<Reservation> {
        let row = self.ca().pending_row(&prepared, &requester);
        let certificate_id = self.store().reserve_certificate(&row).await?;
        Ok(Reservation { certificate_id, prepared, requester })
    }

    /// A reservation that will never be signed (a concurrent finalization won the order): its serial stays
    /// spent, the row says nothing was issued.
    pub async fn abandon(&self, reservation: Reservation) -> Result<()> {
        self.store().fail_certificate(reservation.certificate_id).await?;
        Ok(())
    }

    /// Steps two and three: the HSM signs, and the certificate is recorded with its audit entry and binding.
    pub async fn sign_and_record(
        &self,
        reservation: Reservation,
        binding: Binding,
        actor: &Actor,
    ) -> Result<IssuedCertificate> {
        let id = reservation.certificate_id;
        let started = std::time::Instant::now();
        let signed = {
            let (ca, prepared) = (Arc::clone(self.ca()), reservation.prepared.clone());
            tokio::task::spawn_blocking(move || match prepared {
                Prepared::Leaf(p) => ca.issuer.sign_prepared::<HsmSignature>(p).map(|i| (i.certificate, i.der)),
                Prepared::OcspResponder(p) => ca.issuer.sign_prepared_responder::<HsmSignature>(&p),
            })
            .await
        };
        let (certificate, der) = match signed {
            Ok(Ok(signed)) => {
                self.metrics().hsm_signature("certificate", started.elapsed());
                signed
            }
            Ok(Err(e)) => {
                // Only a refusal by the token means nothing exists under this serial.
                let refused = matches!(e, CaError::Signing(_));
                if !refused {
                    tracing::error!(inventory_id = %id, error = %e, "issuance failed after the HSM signed; row left pending");
                }
                self.record_failure(id, &binding, refused, actor).await?;
                return Err(e.into());
            }
            Err(e) => {
                // The worker died: whether it signed is unknown. The row stays pending, and so does an order,
                // until the recovery sweep closes it.
                tracing::error!(inventory_id = %id, error = %e, "the signing worker failed; row left pending");
                return Err(e.into());
            }
        };
        let sha256 = Sha256::digest(&der).to_vec();
        let event = issuance_event(&reservation, &binding, &sha256, actor);
        match &binding {
            Binding::Standalone => {
                self.store().complete_certificate_audited(id, &der, &sha256, &event).await?;
            }
            Binding::Order { order_id, replaces, .. } => {
                self.store().complete_order(*order_id, &der, &sha256, *replaces, &event).await?;
            }
            Binding::Managed { name, completion } => {
                let current = self.store().complete_managed(id, &der, &sha256, completion, &event).await?;
                if !current {
                    tracing::warn!(managed = %name, inventory_id = %id,
                        "the renewal's lease passed to another replica while signing: certificate recorded, superseded");
                }
            }
        }
        let mut chain_pem = crate::issuing::pem(&der)?;
        chain_pem.push_str(self.ca().issuer.chain_pem());
        let facts = reservation.prepared.facts();
        Ok(IssuedCertificate {
            certificate_id: id,
            serial_hex: facts.serial_hex.to_owned(),
            not_before: facts.not_before,
            not_after: facts.not_after,
            profile: profile_name(&reservation),
            certificate,
            der,
            chain_pem,
        })
    }

    /// All three steps, for callers with nothing to bind in between.
    pub async fn issue(&self, prepared: Prepared, requester: Requester, actor: &Actor) -> Result<IssuedCertificate> {
        let reservation = self.reserve(prepared, requester).await?;
        self.sign_and_record(reservation, Binding::Standalone, actor).await
    }

    /// A leaf from a CSR, all steps (an operator's `certificate issue`, Castellan's TLS certificate).
    pub async fn issue_from_csr(
        &self,
        csr: Vec<u8>,
        profile: &str,
        lifetime: Option<Duration>,
        requester: Requester,
        actor: &Actor,
    ) -> Result<IssuedCertificate> {
        let prepared = self.prepare_leaf(csr, profile, lifetime).await?;
        self.issue(prepared, requester, actor).await
    }

    async fn record_failure(&self, id: CertificateId, binding: &Binding, refused: bool, actor: &Actor) -> Result<()> {
        match binding {
            Binding::Standalone | Binding::Managed { .. } if refused => self.store().fail_certificate(id).await?,
            Binding::Standalone | Binding::Managed { .. } => {}
            Binding::Order { order_id, failure, .. } => {
                self.store().fail_order(*order_id, failure, refused, actor.as_str()).await?;
            }
        }
        Ok(())
    }
}

fn profile_name(reservation: &Reservation) -> String {
    reservation.requester.profile.clone().unwrap_or_else(|| reservation.prepared.profile_name().to_owned())
}

/// The `certificate.issue` audit entry, one format for every path; its subject is the serial.
fn issuance_event(reservation: &Reservation, binding: &Binding, sha256: &[u8], actor: &Actor) -> AuditEvent {
    let facts = reservation.prepared.facts();
    let requester = &reservation.requester;
    let (order_id, replaces, managed, rotation_id) = match binding {
        Binding::Standalone => (None, None, None, None),
        Binding::Order { order_id, replaces, .. } => (Some(*order_id), *replaces, None, None),
        Binding::Managed { name, completion } => (None, None, Some(name.as_str()), Some(completion.rotation_id)),
    };
    AuditEvent::new(actor.as_str(), "certificate.issue", facts.serial_hex).with_details(json!({
        "inventory_id": reservation.certificate_id,
        "profile": profile_name(reservation),
        "source": requester.source.as_str(),
        "names": facts.names,
        "not_before": rfc3339(unix_seconds(facts.not_before)),
        "not_after": rfc3339(unix_seconds(facts.not_after)),
        "account_id": requester.account_id,
        "owner": requester.owner,
        "order_id": order_id,
        "replaces_certificate_id": replaces,
        "managed": managed,
        "rotation_id": rotation_id,
        "sha256": hex::encode(sha256),
    }))
}
