//! What an operator can set about the ACME server; `castellan.toml`'s `[acme]` section deserializes into this.

use crate::validation::ValidationConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The URL clients reach the server at, e.g. "https://ca.internal:8443". Unset: taken from each request's
    /// Host (what Boulder and Pebble do), which is right unless a proxy rewrites it.
    pub external_url: Option<String>,
    pub terms_of_service: Option<String>,
    pub website: Option<String>,
    /// How long a new order (and its pending authorizations) may wait to become valid.
    pub order_lifetime_secs: u64,
    /// How long a valid authorization is reused for new orders of the same account.
    pub valid_authorization_lifetime_secs: u64,
    /// How long a Replay-Nonce stays usable.
    pub nonce_lifetime_secs: u64,
    /// The largest request body accepted (JWS with a CSR of an RSA-4096 key and many names fit easily).
    pub max_body_bytes: usize,
    /// How long a challenge POST or a finalize waits for its outcome before answering "processing".
    pub wait_for_outcome_ms: u64,
    /// Retry-After sent with processing orders and pending authorizations.
    pub retry_after_secs: u64,
    /// Orders per page of an account's orders list.
    pub orders_page_size: i64,
    /// ACME profile name → CA profile name; the first listed in `default_profile` is used when none is asked.
    pub profiles: BTreeMap<String, ProfileConfig>,
    pub default_profile: String,
    pub external_account_required: bool,
    /// The policy of the default group (accounts created without external account binding) while no "default"
    /// group is stored: a castellan-policy document. Unset: the default group may have nothing.
    pub default_policy: Option<serde_json::Value>,
    pub rate_limits: RateLimitSettings,
    pub validation: ValidationSettings,
}

/// GCRA limits shared by every replica through the store; each is off unless set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// newOrder per account.
    pub new_orders_per_account: Option<LimitSetting>,
    /// newOrder per account group (all its accounts together).
    pub new_orders_per_group: Option<LimitSetting>,
    /// newAccount per client IP address.
    pub new_accounts_per_ip: Option<LimitSetting>,
    /// Failed validations per registered domain (the last two labels of a name; an IP address as itself).
    pub failed_validations_per_domain: Option<LimitSetting>,
}

/// `count` per `period_secs`, in bursts of up to `burst` (default: `count`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSetting {
    pub count: u32,
    pub period_secs: u64,
    #[serde(default)]
    pub burst: Option<u32>,
}

impl LimitSetting {
    pub fn limit(self) -> castellan_store::rate_limits::Limit {
        castellan_store::rate_limits::Limit::new(
            self.count,
            Duration::from_secs(self.period_secs),
            self.burst.unwrap_or(self.count),
        )
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The CA profile this ACME profile issues under ("tls-server", "tls-client").
    pub ca_profile: String,
    pub description: String,
    /// Lifetime of certificates issued under this profile; the CA profile's maximum when unset.
    #[serde(default)]
    pub lifetime_secs: Option<u64>,
}

/// The VA's settings as written in the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationSettings {
    pub http01_port: u16,
    pub tls_alpn01_port: u16,
    /// "127.0.0.1:5353"; the system's resolv.conf when unset.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// CIDR ranges validation may connect to; empty means anything not denied.
    pub allowed_networks: Vec<String>,
    /// CIDR ranges validation never connects to; unset means the built-in list (loopback, link-local…).
    pub denied_networks: Option<Vec<String>>,
    pub timeout_secs: u64,
    pub max_concurrent: usize,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        let defaults = ValidationConfig::default();
        ValidationSettings {
            http01_port: defaults.http01_port,
            tls_alpn01_port: defaults.tls_alpn01_port,
            dns_resolver: defaults.dns_resolver,
            allowed_networks: Vec::new(),
            denied_networks: None,
            timeout_secs: defaults.timeout.as_secs(),
            max_concurrent: defaults.max_concurrent,
        }
    }
}

impl ValidationSettings {
    pub fn to_config(&self) -> Result<ValidationConfig, String> {
        let parse = |list: &[String]| -> Result<Vec<ipnet::IpNet>, String> {
            list.iter()
                .map(|s| {
                    s.parse::<ipnet::IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|e| format!("network {s:?}: {e}"))
                })
                .collect()
        };
        let mut config = ValidationConfig {
            http01_port: self.http01_port,
            tls_alpn01_port: self.tls_alpn01_port,
            dns_resolver: self.dns_resolver,
            allowed_networks: parse(&self.allowed_networks)?,
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
            max_concurrent: self.max_concurrent.max(1),
            ..ValidationConfig::default()
        };
        if let Some(denied) = &self.denied_networks {
            config.denied_networks = parse(denied)?;
        }
        Ok(config)
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        let mut profiles = BTreeMap::new();
        profiles.insert(
            "tls-server".to_owned(),
            ProfileConfig {
                ca_profile: "tls-server".into(),
                description: "TLS server certificate (serverAuth)".into(),
                lifetime_secs: None,
            },
        );
        profiles.insert(
            "tls-client".to_owned(),
            ProfileConfig {
                ca_profile: "tls-client".into(),
                description: "TLS client certificate (clientAuth)".into(),
                lifetime_secs: None,
            },
        );
        AcmeConfig {
            external_url: None,
            terms_of_service: None,
            website: None,
            order_lifetime_secs: 7 * 24 * 3600,
            valid_authorization_lifetime_secs: 30 * 24 * 3600,
            nonce_lifetime_secs: 3600,
            max_body_bytes: 64 * 1024,
            wait_for_outcome_ms: 2_000,
            retry_after_secs: 1,
            orders_page_size: 100,
            profiles,
            default_profile: "tls-server".into(),
            external_account_required: false,
            default_policy: None,
            rate_limits: RateLimitSettings::default(),
            validation: ValidationSettings::default(),
        }
    }
}

impl AcmeConfig {
    /// Refuses a configuration the server could not run with, before it starts.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(policy) = &self.default_policy {
            castellan_policy::GroupPolicy::from_json(&policy.to_string())
                .map_err(|e| format!("acme.default_policy: {e}"))?;
        }
        let limits = &self.rate_limits;
        for (name, limit) in [
            ("new_orders_per_account", limits.new_orders_per_account),
            ("new_orders_per_group", limits.new_orders_per_group),
            ("new_accounts_per_ip", limits.new_accounts_per_ip),
            ("failed_validations_per_domain", limits.failed_validations_per_domain),
        ] {
            if let Some(limit) = limit
                && (limit.count == 0 || limit.period_secs == 0 || limit.burst == Some(0))
            {
                return Err(format!("acme.rate_limits.{name}: count, period_secs and burst must be positive"));
            }
        }
        if !self.profiles.contains_key(&self.default_profile) {
            return Err(format!("acme.default_profile {:?} is not among acme.profiles", self.default_profile));
        }
        self.validation.to_config().map(|_| ()).map_err(|e| format!("acme.validation: {e}"))
    }

    pub fn order_lifetime(&self) -> Duration {
        Duration::from_secs(self.order_lifetime_secs)
    }
    pub fn nonce_lifetime(&self) -> Duration {
        Duration::from_secs(self.nonce_lifetime_secs.max(1))
    }
    pub fn wait_for_outcome(&self) -> Duration {
        Duration::from_millis(self.wait_for_outcome_ms)
    }
}
