//! Castellan's Prometheus metrics, in the Prometheus text format written by `prometheus-client` (the Prometheus
//! project's Rust client).
//!
//! Counters and histograms live for the life of the process and are fed by the code that does the work (the
//! ACME front end, the OCSP responder, the issuance path, the renewal scheduler). What is state rather than events
//! — every live certificate's notAfter, the renewal queue — is read from the store at each scrape, so every
//! replica reports the same truth and nothing drifts. Certificates are exported as `x509_cert_not_after` and
//! `x509_cert_not_before` with the labels of x509-certificate-exporter (`serial_number`, `subject_CN`,
//! `issuer_CN`), so its dashboards and alert rules work unchanged.

use crate::error::Result;
use castellan_store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RenewalLabels {
    pub outcome: &'static str,
    pub issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureLabels {
    /// certificate, ocsp or crl.
    pub purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// hit or miss.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
#[allow(non_snake_case)]
struct CertificateLabels {
    serial_number: String,
    subject_CN: String,
    issuer_CN: String,
    source: &'static str,
    managed: String,
}

/// The process's event metrics; cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    renewals: Family<RenewalLabels, Counter>,
    acme_requests: Family<RequestLabels, Counter>,
    hsm_signatures: Family<SignatureLabels, Histogram>,
    ocsp_cache: Family<CacheLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("castellan");
        let renewals = Family::<RenewalLabels, Counter>::default();
        registry.register("renewals", "Renewal attempts of managed certificates, by outcome", renewals.clone());
        let acme_requests = Family::<RequestLabels, Counter>::default();
        registry.register("acme_requests", "ACME requests, by endpoint and HTTP status", acme_requests.clone());
        // 50 µs to ~0.8 s: SoftHSM signs in tens of microseconds, network HSMs in milliseconds.
        let hsm_signatures = Family::<SignatureLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 15))
        });
        registry.register("hsm_signature_seconds", "Time the token took to sign, by purpose", hsm_signatures.clone());
        let ocsp_cache = Family::<CacheLabels, Counter>::default();
        registry.register("ocsp_cache_lookups", "OCSP requests answered from the cache, or not", ocsp_cache.clone());
        Metrics { registry, renewals, acme_requests, hsm_signatures, ocsp_cache }
    }

    pub fn renewal(&self, outcome: &'static str, issuer: &str) {
        self.renewals.get_or_create(&RenewalLabels { outcome, issuer: issuer.to_owned() }).inc();
    }

    pub fn acme_request(&self, endpoint: String, status: u16) {
        self.acme_requests.get_or_create(&RequestLabels { endpoint, status }).inc();
    }

    pub fn hsm_signature(&self, purpose: &'static str, took: Duration) {
        self.hsm_signatures.get_or_create(&SignatureLabels { purpose }).observe(took.as_secs_f64());
    }

    pub fn ocsp_cache(&self, hit: bool) {
        self.ocsp_cache.get_or_create(&CacheLabels { result: if hit { "hit" } else { "miss" } }).inc();
    }

    /// The whole exposition: these counters, then the state read from the store now.
    pub async fn render(&self, store: &Store) -> Result<String> {
        let mut state = Registry::default();
        let not_after = Family::<CertificateLabels, Gauge>::default();
        let not_before = Family::<CertificateLabels, Gauge>::default();
        state.register("x509_cert_not_after", "The certificate's notAfter, in Unix seconds", not_after.clone());
        state.register("x509_cert_not_before", "The certificate's notBefore, in Unix seconds", not_before.clone());
        for c in store.live_certificates().await? {
            let labels = CertificateLabels {
                serial_number: c.serial.clone(),
                subject_CN: c.first_name.as_deref().map(strip_type).unwrap_or_default().to_owned(),
                issuer_CN: common_name(&c.issuer_dn).to_owned(),
                source: c.source.as_str(),
                managed: c.managed.clone().unwrap_or_default(),
            };
            not_after.get_or_create(&labels).set(c.not_after);
            not_before.get_or_create(&labels).set(c.not_before);
        }
        let queue = store.renewal_queue_state().await?;
        let now = store.now();
        let mut add_gauge = |name: &str, help: &str, value: i64| {
            let gauge = Gauge::<i64, AtomicI64>::default();
            gauge.set(value);
            state.register(name, help, gauge);
        };
        add_gauge("castellan_managed_certificates", "Certificates Castellan manages and renews", queue.managed);
        add_gauge("castellan_renewal_queue_depth", "Managed certificates whose renewal is due now", queue.due);
        add_gauge(
            "castellan_renewal_oldest_overdue_seconds",
            "How long the most overdue renewal has been due (0 when none is)",
            queue.oldest_due_at.map(|at| (now - at).max(0)).unwrap_or(0),
        );
        add_gauge(
            "castellan_renewals_failing",
            "Managed certificates whose last renewal attempt failed",
            queue.failing,
        );
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| crate::AuthorityError::Worker(format!("metrics: {e}")))?;
        // Both registries end with "# EOF"; the text format has one, at the end.
        if let Some(stripped) = out.strip_suffix("# EOF\n") {
            out.truncate(stripped.len());
        }
        encode(&mut out, &state).map_err(|e| crate::AuthorityError::Worker(format!("metrics: {e}")))?;
        Ok(out)
    }
}

/// "DNS:www.example.com" → "www.example.com".
fn strip_type(typed: &str) -> &str {
    typed.split_once(':').map(|(_, v)| v).unwrap_or(typed)
}

/// The CN of an RFC 4514 DN string ("CN=Example Issuing CA,O=Example" → "Example Issuing CA").
fn common_name(dn: &str) -> &str {
    dn.split(',').find_map(|rdn| rdn.trim().strip_prefix("CN=")).unwrap_or(dn)
}

/// Shared metrics.
pub type SharedMetrics = Arc<Metrics>;
