//! `castellan`: the command line that wires the crates together. Configuration, parsing and wiring only: what a
//! command does lives in `castellan-authority` (and the servers above it).

mod cli;
mod config;
mod devhsm;
mod serve;

use anyhow::{Context, Result};
use castellan_authority::ca_dir::CaDirectory;
use castellan_authority::urls::recorded_status_base;
use castellan_authority::{Authority, Clock, IssuingCa};
use castellan_hsm::Hsm;
use castellan_store::Store;
use clap::Parser;
use config::{HsmSetting, Settings};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Names a file whose contents (whole seconds) shift this process's clock forward: for end-to-end tests that must
/// see a certificate reach two thirds of its life without waiting for it. Never set it in production.
const FAKE_CLOCK_ENV: &str = "CASTELLAN_FAKE_CLOCK";

#[derive(Parser)]
#[command(name = "castellan", version, about = "Certificate authority and certificate lifecycle manager")]
struct Cli {
    /// Configuration file (TOML). Everything has a default; without one, a SoftHSM2 dev token is used.
    #[arg(long, global = true, env = "CASTELLAN_CONFIG")]
    config: Option<PathBuf>,
    /// Where Castellan keeps its state (the dev token, CA certificates, the SQLite database).
    #[arg(long, global = true, env = "CASTELLAN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://path (default: castellan.db in the data directory) or postgres://… shared by replicas.
    #[arg(long, global = true, env = "CASTELLAN_DATABASE_URL")]
    database_url: Option<String>,
    #[command(flatten)]
    remote: cli::Remote,
    /// Print JSON (hex hashes, RFC 3339 times) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the CA: ACME, revocation status, the admin API. Creates the dev token and the CA on first start.
    Serve {
        /// HTTPS address (port 0 picks a free port); overrides serve.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Plain-HTTP address for CRLs and OCSP (port 0 picks a free port); overrides serve.http_listen.
        #[arg(long)]
        http_listen: Option<SocketAddr>,
    },
    #[command(flatten)]
    Operate(cli::Noun),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colour only for a person at a terminal: a file or a pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let mut settings = Settings::load(cli.config.as_deref(), cli.data_dir, cli.database_url)?;
    // Before any thread exists: SoftHSM reads its configuration path from the environment.
    if let HsmSetting::Dev(dev) = &settings.hsm {
        devhsm::prepare_environment(dev);
    }
    let clock = clock_from_environment();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve { listen, http_listen } => {
            settings.serve.listen = listen.unwrap_or(settings.serve.listen);
            settings.serve.http_listen = http_listen.unwrap_or(settings.serve.http_listen);
            runtime.block_on(serve::run(settings, clock))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Operate(noun) => {
            let context = cli::Context { settings, clock, remote: cli.remote, json: cli.json };
            runtime.block_on(cli::run(context, noun))
        }
    }
}

/// The system clock, or the test clock `CASTELLAN_FAKE_CLOCK` names.
fn clock_from_environment() -> Clock {
    match std::env::var_os(FAKE_CLOCK_ENV) {
        Some(file) => {
            tracing::warn!(file = ?file, "{FAKE_CLOCK_ENV} is set: this process's clock is shifted by a test");
            Clock::shifted(PathBuf::from(file))
        }
        None => Clock::system(),
    }
}

/// Opens the database, reading its time from `clock`.
pub(crate) async fn open_store(settings: &Settings, clock: &Clock) -> Result<Store> {
    let store = Store::open(&settings.database_url)
        .await
        .with_context(|| format!("opening the database {}", castellan_store::redact(&settings.database_url)))?;
    Ok(store.with_time(Arc::new(clock.clone())))
}

pub(crate) fn open_hsm(settings: &Settings) -> Result<Hsm> {
    if let HsmSetting::Dev(dev) = &settings.hsm {
        devhsm::ensure_dev_token(dev)?;
    }
    Hsm::open(settings.hsm_config()).context("opening the HSM token")
}

/// What loading the issuing CA needs.
pub(crate) struct CaContext<'a> {
    pub settings: &'a Settings,
    pub store: &'a Store,
    pub hsm: &'a Hsm,
}

impl CaContext<'_> {
    /// The issuing CA, its key found in the token. Leaves point at the configured CRL and OCSP URLs, else under
    /// `status_base`, else where `castellan serve` recorded it publishes them, else at `serve.http_listen`.
    pub async fn load_issuing_ca(&self, status_base: Option<&str>) -> Result<IssuingCa> {
        let base = match status_base {
            Some(base) => Some(base.to_owned()),
            None => recorded_status_base(self.store).await?.or_else(|| self.settings.configured_status_base()),
        };
        let dir = CaDirectory::new(self.settings.ca_dir());
        Ok(dir.load(&self.settings.ca, self.hsm, self.store, base.as_deref()).await?)
    }

    /// The authority over the loaded CA.
    pub async fn authority(&self, clock: &Clock) -> Result<Authority> {
        let ca = self.load_issuing_ca(None).await?;
        Ok(Authority::new(self.store.clone(), clock.clone(), ca))
    }
}
