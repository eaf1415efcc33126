//! How a replica learns of revocations made anywhere: it polls the store's revocation epoch and, when it moved,
//! reads the certificates revoked in the new epochs, drops their cached OCSP responses and tells the CRL publisher.
//! In-process notification alone would miss revocations by other replicas and by the CLI.

use super::crl::CrlPublisher;
use super::ocsp::OcspService;
use castellan_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn watch(
    store: Store,
    mut seen: i64,
    issuer_key_id: Vec<u8>,
    crl: Arc<CrlPublisher>,
    ocsp: Arc<OcspService>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let epoch = match store.revocation_epoch().await {
            Ok(epoch) => epoch,
            Err(e) => {
                tracing::warn!(error = %e, "polling the revocation epoch failed");
                continue;
            }
        };
        if epoch < seen {
            // The database went back in time (a restore): nothing cached can be trusted to match it.
            tracing::warn!(epoch, seen, "the revocation epoch went backwards; dropping every cached OCSP response");
            ocsp.clear();
            crl.revoked_up_to(epoch);
            seen = epoch;
            continue;
        }
        if epoch == seen {
            continue;
        }
        match store.revoked_in_epochs(seen, epoch).await {
            Ok(revoked) => {
                let ours: Vec<&str> =
                    revoked.iter().filter(|r| r.issuer_key_id == issuer_key_id).map(|r| r.serial.as_str()).collect();
                tracing::info!(epoch, revoked = ours.len(), "revocations seen; updating OCSP and the CRL");
                ocsp.invalidate(ours);
                crl.revoked_up_to(epoch);
                seen = epoch;
            }
            Err(e) => tracing::warn!(error = %e, "reading new revocations failed"),
        }
    }
}
