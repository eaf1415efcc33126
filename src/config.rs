//! `castellan.toml`: everything is optional; without a file, the dev defaults put a SoftHSM2 token, its PIN and
//! the CA under the data directory.

use anyhow::{Context, Result};
use castellan_authority::ca_dir::CaSettings;
use castellan_hsm::{HsmConfig, PinSource, SOFTHSM_MODULE, TokenSelector};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    /// sqlite://… (default: castellan.db in the data directory) or postgres://… (shared by replicas).
    pub database_url: Option<String>,
    /// Without an [hsm] section, Castellan runs on a SoftHSM2 dev token it creates under the data directory.
    pub hsm: Option<HsmConfig>,
    #[serde(default)]
    pub ca: CaSettings,
    #[serde(default)]
    pub serve: ServeConfig,
    /// The ACME server under /acme: profiles, lifetimes, and where validation may connect.
    #[serde(default)]
    pub acme: castellan_acme_server::AcmeConfig,
    /// How CRLs and OCSP responses are published: their lifetimes, refresh, and the OCSP cache.
    #[serde(default)]
    pub revocation: castellan_status::StatusConfig,
    /// The renewal scheduler of managed certificates: its pace, its concurrency, its back-off.
    #[serde(default)]
    pub lifecycle: castellan_lifecycle::SchedulerConfig,
    /// Alerts before certificates expire and when renewals fail, and where they are sent.
    #[serde(default)]
    pub alerts: castellan_lifecycle::AlertsConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Names in the server's own TLS certificate.
    pub tls_names: Vec<String>,
    /// Lifetime of the server's own TLS certificate; it is renewed after two thirds of it.
    pub tls_lifetime_secs: u64,
    /// The plain-HTTP listener for CRLs and OCSP (relying parties fetch them without TLS: the responses are signed,
    /// and a TLS check that needs revocation status could not get it over TLS). Leaves point at it unless
    /// `ca.crl_url` and `ca.ocsp_url` say otherwise, so every process that issues reads this one setting.
    pub http_listen: SocketAddr,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            tls_lifetime_secs: 7 * 24 * 3600,
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// The settings in force: file, then command line, then defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub hsm: HsmSetting,
    pub ca: CaSettings,
    pub serve: ServeConfig,
    pub acme: castellan_acme_server::AcmeConfig,
    pub revocation: castellan_status::StatusConfig,
    pub lifecycle: castellan_lifecycle::SchedulerConfig,
    pub alerts: castellan_lifecycle::AlertsConfig,
}

#[derive(Clone, Debug)]
pub enum HsmSetting {
    /// A configured token, created by whoever runs the HSM.
    Configured(HsmConfig),
    /// The SoftHSM2 dev token under the data directory, created on first use.
    Dev(DevToken),
}

#[derive(Clone, Debug)]
pub struct DevToken {
    pub softhsm_conf: PathBuf,
    pub token_dir: PathBuf,
    pub so_pin_file: PathBuf,
    pub config: HsmConfig,
}

pub const DEV_TOKEN_LABEL: &str = "castellan-dev";

impl Settings {
    pub fn load(
        config_path: Option<&Path>,
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
    ) -> Result<Settings> {
        let file = match config_path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./var"));
        let hsm = match file.hsm {
            Some(config) => HsmSetting::Configured(config),
            None => HsmSetting::Dev(dev_token(&data_dir)),
        };
        let database_url = database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", absolute(&data_dir.join("castellan.db")).display()));
        Ok(Settings {
            data_dir,
            database_url,
            hsm,
            ca: file.ca,
            serve: file.serve,
            acme: file.acme,
            revocation: file.revocation,
            lifecycle: file.lifecycle,
            alerts: file.alerts,
        })
    }

    /// The base of the CRL and OCSP URLs from `serve.http_listen` as configured, when it names a port (port 0 is
    /// known only to the server that bound it, which records what it bound: see `castellan_authority::urls`).
    pub fn configured_status_base(&self) -> Option<String> {
        let address = self.serve.http_listen;
        (address.port() != 0).then(|| http_base(address, &self.serve.tls_names))
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.data_dir.join("ca")
    }

    pub fn hsm_config(&self) -> &HsmConfig {
        match &self.hsm {
            HsmSetting::Configured(config) => config,
            HsmSetting::Dev(dev) => &dev.config,
        }
    }
}

/// `http://host:port` for the plain-HTTP listener. A wildcard address names no host a client can reach: the
/// server's first TLS name stands in for it.
pub fn http_base(address: SocketAddr, tls_names: &[String]) -> String {
    if !address.ip().is_unspecified() {
        return format!("http://{address}");
    }
    let host = tls_names.first().map(String::as_str).unwrap_or("localhost");
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => format!("http://{}", SocketAddr::new(ip, address.port())),
        Err(_) => format!("http://{host}:{}", address.port()),
    }
}

fn dev_token(data_dir: &Path) -> DevToken {
    let hsm_dir = absolute(&data_dir.join("hsm"));
    DevToken {
        softhsm_conf: hsm_dir.join("softhsm2.conf"),
        token_dir: hsm_dir.join("tokens"),
        so_pin_file: hsm_dir.join("so.pin"),
        config: HsmConfig {
            module: PathBuf::from(SOFTHSM_MODULE),
            token: TokenSelector::Label(DEV_TOKEN_LABEL.into()),
            pin: PinSource::File(hsm_dir.join("user.pin")),
        },
    }
}

/// SoftHSM resolves its token directory relative to its own working directory: make paths absolute.
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in the README parses, so the README stays true.
    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("its end");
        let parsed: FileConfig = toml::from_str(&readme[start..end]).expect("README's castellan.toml parses");
        let hsm = parsed.hsm.expect("an [hsm] section");
        assert_eq!(hsm.token, TokenSelector::Label("castellan".into()));
        assert_eq!(hsm.pin, PinSource::Env("CASTELLAN_HSM_PIN".into()));
        assert_eq!(parsed.ca.max_lifetime_secs.get("tls-server"), Some(&7_776_000));
        assert_eq!(parsed.serve.tls_lifetime_secs, 604_800);
        assert!(parsed.acme.rate_limits.new_orders_per_account.is_some());
        parsed.acme.validate().expect("the README's [acme] section validates");
        assert_eq!(parsed.serve.http_listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(parsed.revocation.crl_next_update_secs, 86_400);
        parsed.revocation.check().expect("the README's [revocation] settings are consistent");
        parsed.lifecycle.validate().expect("the README's [lifecycle] settings are consistent");
        assert_eq!(parsed.lifecycle, castellan_lifecycle::SchedulerConfig::default(), "the README shows the defaults");
        parsed.alerts.validate().expect("the README's [alerts] section validates");
        assert_eq!(parsed.alerts.receivers.len(), 2);
    }

    #[test]
    fn status_urls_name_a_reachable_host() {
        let names = vec!["ca.internal".to_owned()];
        assert_eq!(http_base("127.0.0.1:8080".parse().expect("addr"), &names), "http://127.0.0.1:8080");
        assert_eq!(http_base("0.0.0.0:8080".parse().expect("addr"), &names), "http://ca.internal:8080");
        assert_eq!(http_base("[::]:80".parse().expect("addr"), &["::1".to_owned()]), "http://[::1]:80");
    }

    /// The configuration scripts/run-ca runs with parses and passes the server's own checks.
    #[test]
    fn the_development_configuration_is_valid() {
        let parsed: FileConfig =
            toml::from_str(include_str!("../scripts/dev-castellan.toml")).expect("scripts/dev-castellan.toml parses");
        parsed.acme.validate().expect("and validates");
        assert!(parsed.acme.default_policy.is_some());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("[serve]\nlisten_on = \"x\"\n").is_err());
        assert!(toml::from_str::<FileConfig>("bogus = 1\n").is_err());
    }
}
