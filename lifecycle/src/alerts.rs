//! Alerts before anything expires: evaluated by the scheduler's pass, delivered to every configured receiver — a
//! generic JSON webhook, or the Prometheus Alertmanager API v2 — with retries. Which alerts exist and which were
//! delivered is in the store (`castellan_store::lifecycle::alerts`), so replicas neither duplicate nor lose one.

use crate::backoff::retry_delay;
use castellan_authority::Clock;
use castellan_authority::clock::rfc3339;
use castellan_store::Store;
use castellan_store::lifecycle::{AlertReport, Delivery};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// `[alerts]` in the configuration file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Days before notAfter at which a certificate that no successor replaced alerts, once per threshold.
    pub expiry_days: Vec<u32>,
    /// Consecutive failed renewals that alert (a failing renewal within 7 days of expiry alerts at once).
    pub renewal_failures: i64,
    pub receivers: Vec<ReceiverConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { expiry_days: vec![30, 7, 1], renewal_failures: 3, receivers: Vec::new() }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Names the receiver in the store's delivery records.
    pub name: String,
    pub kind: ReceiverKind,
    /// webhook: where to POST; alertmanager: its base URL (…/api/v2/alerts is appended).
    pub url: String,
    /// PEM roots to trust for an https URL instead of the system's (a private CA, this one for instance).
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverKind {
    Webhook,
    Alertmanager,
}

impl AlertsConfig {
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for r in &self.receivers {
            if !names.insert(r.name.as_str()) {
                return Err(format!("alerts.receivers: the name {:?} is used twice", r.name));
            }
            if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
                return Err(format!("alerts.receivers {:?}: url must be http:// or https://", r.name));
            }
        }
        if self.renewal_failures < 1 {
            return Err("alerts.renewal_failures must be at least 1".into());
        }
        Ok(())
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

struct Receiver {
    config: ReceiverConfig,
    client: HttpsClient,
}

/// Evaluates alerts and delivers them; one per server, driven by the scheduler's pass.
pub struct Alerter {
    store: Store,
    clock: Clock,
    config: AlertsConfig,
    receivers: Vec<Receiver>,
    replica: String,
}

/// How long one delivery may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries claimed at once, and how long the claim holds: longer than sending all of them can take.
const BATCH: i64 = 10;
const LEASE_SECS: i64 = 120;

impl Alerter {
    pub fn new(store: Store, clock: Clock, config: AlertsConfig, replica: String) -> Result<Alerter, String> {
        config.validate()?;
        let receivers = config
            .receivers
            .iter()
            .map(|r| Ok(Receiver { client: client(r.ca_file.as_deref())?, config: r.clone() }))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Alerter { store, clock, config, receivers, replica })
    }

    /// Fires what is due and resolves what is over, queueing a delivery to every receiver for each.
    pub async fn evaluate(&self) -> Result<AlertReport, castellan_store::StoreError> {
        let names: Vec<String> = self.receivers.iter().map(|r| r.config.name.clone()).collect();
        let report = self.store.evaluate_alerts(&self.config.expiry_days, self.config.renewal_failures, &names).await?;
        if report != AlertReport::default() {
            tracing::info!(fired = report.fired, resolved = report.resolved, "alerts");
        }
        Ok(report)
    }

    /// Sends every delivery that is due, retrying failed ones later (30 s, doubling, up to an hour).
    pub async fn deliver_due(&self) -> Result<(), castellan_store::StoreError> {
        loop {
            let claimed = self.store.claim_deliveries(&self.replica, BATCH, LEASE_SECS).await?;
            if claimed.is_empty() {
                return Ok(());
            }
            // One at a time: alerts are few, and a receiver that hangs costs at most SEND_TIMEOUT per delivery.
            for delivery in &claimed {
                // A firing delivery still owed when the alert has resolved: the resolution says all there is (and
                // sent late it would re-open what is over).
                if delivery.state == "firing" && delivery.alert.resolved_at.is_some() {
                    self.store.delivered(delivery).await?;
                    continue;
                }
                match self.deliver(delivery).await {
                    Ok(()) => self.store.delivered(delivery).await?,
                    Err(error) => {
                        let delay =
                            retry_delay(delivery.attempts + 1, Duration::from_secs(30), Duration::from_secs(3600));
                        let retry_at = self.clock.unix() + i64::try_from(delay.as_secs()).unwrap_or(3600);
                        tracing::warn!(receiver = %delivery.receiver, alert = delivery.alert.id, error,
                            "alert delivery failed");
                        self.store.delivery_failed(delivery, &error, retry_at).await?;
                    }
                }
            }
        }
    }

    /// Delivers for ever, `tick` apart by the clock; its own task, so a slow receiver delays only deliveries.
    pub async fn deliver_forever(self: std::sync::Arc<Self>, tick: Duration) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "alert delivery pass failed; retrying");
            }
            self.clock.sleep(tick).await;
        }
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<(), String> {
        let Some(receiver) = self.receivers.iter().find(|r| r.config.name == delivery.receiver) else {
            return Err(format!("no receiver named {:?} is configured any more", delivery.receiver));
        };
        let (url, body) = match receiver.config.kind {
            ReceiverKind::Webhook => (receiver.config.url.clone(), webhook_payload(delivery)),
            ReceiverKind::Alertmanager => {
                let base = receiver.config.url.trim_end_matches('/');
                (format!("{base}/api/v2/alerts"), Value::Array(vec![alertmanager_alert(delivery, self.clock.unix())]))
            }
        };
        let request = hyper::Request::post(&url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, concat!("castellan/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("{url}: {e}"))?;
        let response = tokio::time::timeout(SEND_TIMEOUT, receiver.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {SEND_TIMEOUT:?}"))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        Err(format!("{url}: HTTP {status}: {text}"))
    }
}

fn client(ca_file: Option<&std::path::Path>) -> Result<HttpsClient, String> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
        None => builder.with_native_roots().map_err(|e| format!("the system's roots: {e}"))?,
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn title(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "renewal_failing" => ("CertificateRenewalFailing", "critical"),
        "expiry_1d" => ("CertificateExpiringSoon", "critical"),
        _ => ("CertificateExpiringSoon", "warning"),
    }
}

fn summary(delivery: &Delivery) -> String {
    let names = delivery.certificate.as_ref().map(|c| c.names.join(", ")).unwrap_or_default();
    match (delivery.alert.kind.as_str(), &delivery.managed, &delivery.certificate) {
        ("renewal_failing", Some(m), _) => format!(
            "renewal of {} has failed {} time(s): {}",
            m.name,
            m.failures,
            m.last_error.as_deref().unwrap_or("no error recorded")
        ),
        (_, _, Some(c)) => format!("certificate {} ({names}) expires at {}", c.serial, rfc3339(c.not_after)),
        _ => delivery.alert.kind.clone(),
    }
}

/// The generic webhook's JSON: one alert per request.
pub fn webhook_payload(delivery: &Delivery) -> Value {
    let alert = &delivery.alert;
    json!({
        "version": "1",
        "status": delivery.state,
        "alert": {
            "id": alert.id,
            "kind": alert.kind,
            "name": title(&alert.kind).0,
            "severity": title(&alert.kind).1,
            "summary": summary(delivery),
            "fired_at": rfc3339(alert.fired_at),
            "resolved_at": alert.resolved_at.map(rfc3339),
            "certificate": delivery.certificate.as_ref().map(|c| json!({
                "id": c.id, "serial": c.serial, "names": c.names, "status": c.status.as_str(),
                "source": c.source.as_str(), "not_after": rfc3339(c.not_after), "issuer": c.issuer_dn,
            })),
            "managed": delivery.managed.as_ref().map(|m| json!({
                "domain": m.name, "failures": m.failures, "last_error": m.last_error,
                "next_attempt_at": m.next_renewal_at.map(rfc3339),
            })),
        },
    })
}

/// One alert as Alertmanager's API v2 (`POST /api/v2/alerts`) takes it. Firing alerts last until the
/// certificate's notAfter plus a week unless resolved (endsAt now), so Alertmanager never resolves them on its own
/// while the problem stands.
pub fn alertmanager_alert(delivery: &Delivery, now: i64) -> Value {
    let alert = &delivery.alert;
    let (name, severity) = title(&alert.kind);
    let mut labels = json!({ "alertname": name, "severity": severity, "kind": alert.kind, "source": "castellan" });
    if let Some(c) = &delivery.certificate {
        labels["serial_number"] = json!(c.serial);
        labels["subject_CN"] = json!(c.names.first().map(|n| n.split_once(':').map(|(_, v)| v).unwrap_or(n)));
    }
    if let Some(m) = &delivery.managed {
        labels["managed"] = json!(m.name);
    }
    let ends_at = match (delivery.state.as_str(), &delivery.certificate) {
        ("resolved", _) => alert.resolved_at.unwrap_or(now),
        (_, Some(c)) => c.not_after.max(now) + 7 * 86_400,
        _ => now + 7 * 86_400,
    };
    json!({
        "labels": labels,
        "annotations": { "summary": summary(delivery) },
        "startsAt": rfc3339(alert.fired_at),
        "endsAt": rfc3339(ends_at),
    })
}
