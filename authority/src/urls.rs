//! Where revocation status is published: the paths the status service serves and leaves point at.

/// Where the CRL of the issuer with this key identifier is served: `/crl/<hex key id>.crl`, stable across
/// restarts and replicas, and distinct per issuer.
pub fn crl_path(issuer_key_id: &[u8]) -> String {
    format!("/crl/{}.crl", hex::encode(issuer_key_id))
}

/// Where OCSP requests are answered: POST here, GET under it (RFC 6960 Appendix A.1).
pub const OCSP_PATH: &str = "/ocsp";

/// The setting in which `castellan serve` records the base URL it publishes revocation status at, so every
/// process issuing for this CA (`castellan certificate issue`, a second replica) names the same place.
pub const STATUS_BASE_SETTING: &str = "status.base_url";

/// The base URL `castellan serve` last recorded, if any.
pub async fn recorded_status_base(store: &castellan_store::Store) -> crate::Result<Option<String>> {
    Ok(store.setting(STATUS_BASE_SETTING).await?.map(|(value, _)| value))
}

/// Records where this server publishes revocation status, when that changed (audited as a setting change).
pub async fn record_status_base(store: &castellan_store::Store, base: &str, actor: &crate::Actor) -> crate::Result<()> {
    if recorded_status_base(store).await?.as_deref() != Some(base) {
        store.set_setting(STATUS_BASE_SETTING, base, actor.as_str()).await?;
    }
    Ok(())
}
