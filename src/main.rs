//! `castellan`: the command line that wires the crates together.

mod authority;
mod config;
mod devhsm;
mod files;
mod serve;

use anyhow::{Context, Result};
use castellan_ca::{IssuanceRequest, NameConstraintSpec};
use castellan_hsm::{Hsm, HsmSignature};
use clap::{Args, Parser, Subcommand};
use config::{HsmSetting, Settings};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "castellan", version, about = "Certificate authority and certificate lifecycle manager")]
struct Cli {
    /// Configuration file (TOML). Everything has a default; without one, a SoftHSM2 dev token is used.
    #[arg(long, global = true, env = "CASTELLAN_CONFIG")]
    config: Option<PathBuf>,
    /// Where Castellan keeps its state (the dev token, CA certificates).
    #[arg(long, global = true, env = "CASTELLAN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant is of no consequence.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the CA's HTTPS server; creates the dev token and the CA on first start.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Manage the certificate authority itself.
    #[command(subcommand)]
    Ca(CaCommand),
}

#[derive(Subcommand)]
enum CaCommand {
    /// The key ceremony: root and intermediate keys in the token, their certificates beside the data.
    Init(InitArgs),
    /// Install the intermediate certificate an external root signed (after `init --intermediate-csr`).
    Import {
        /// The intermediate certificate (PEM or DER).
        #[arg(long)]
        cert: PathBuf,
        /// The external root certificate that signed it.
        #[arg(long)]
        root: PathBuf,
    },
    /// Show the CA certificates' subjects and fingerprints.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Issue a certificate from a CSR and print the chain (PEM).
    Issue {
        /// PKCS#10 CSR, PEM or DER.
        #[arg(long)]
        csr: PathBuf,
        /// tls-server, tls-client or service.
        #[arg(long, default_value = "tls-server")]
        profile: String,
        /// Lifetime in seconds (default: the profile's maximum).
        #[arg(long)]
        lifetime_secs: Option<u64>,
    },
}

#[derive(Args)]
struct InitArgs {
    #[arg(long)]
    root_subject: Option<String>,
    /// ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096.
    #[arg(long)]
    root_key: Option<String>,
    #[arg(long)]
    root_lifetime_days: Option<u64>,
    #[arg(long)]
    intermediate_subject: Option<String>,
    #[arg(long)]
    intermediate_key: Option<String>,
    #[arg(long)]
    intermediate_lifetime_days: Option<u64>,
    /// Name constraint: DNS subtree the intermediate may issue for (repeatable).
    #[arg(long = "permit-dns")]
    permit_dns: Vec<String>,
    /// Name constraint: DNS subtree the intermediate must not issue for (repeatable).
    #[arg(long = "exclude-dns")]
    exclude_dns: Vec<String>,
    /// Name constraint: IP network (CIDR) the intermediate may issue for (repeatable).
    #[arg(long = "permit-ip")]
    permit_ip: Vec<String>,
    /// Name constraint: IP network (CIDR) the intermediate must not issue for (repeatable).
    #[arg(long = "exclude-ip")]
    exclude_ip: Vec<String>,
    /// Enterprise path: create only the intermediate key and write its CSR here, for an external root to sign.
    #[arg(long)]
    intermediate_csr: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let settings = Settings::load(cli.config.as_deref(), cli.data_dir)?;
    // Before any thread exists: SoftHSM reads its configuration path from the environment.
    if let HsmSetting::Dev(dev) = &settings.hsm {
        devhsm::prepare_environment(dev)?;
    }
    match cli.command {
        Command::Serve { listen } => {
            let mut settings = settings;
            if let Some(listen) = listen {
                settings.serve.listen = listen;
            }
            let hsm = open_hsm(&settings)?;
            if !authority::ca_exists(&settings) {
                tracing::info!(dir = %settings.ca_dir().display(), "no CA yet: running the key ceremony (first start)");
                let created = authority::init(&settings, &hsm, &authority::InitOptions::default())?;
                for cert in &created {
                    tracing::info!(role = cert.role, subject = %cert.subject, sha256 = %cert.sha256_fingerprint, "created");
                }
            }
            let ca = authority::load(&settings, &hsm)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(serve::run(settings, hsm, ca))
        }
        Command::Ca(command) => run_ca(&settings, command),
    }
}

fn open_hsm(settings: &Settings) -> Result<Hsm> {
    if let HsmSetting::Dev(dev) = &settings.hsm {
        devhsm::ensure_dev_token(dev)?;
    }
    Hsm::open(settings.hsm_config()).context("opening the HSM token")
}

fn run_ca(settings: &Settings, command: CaCommand) -> Result<()> {
    let hsm = open_hsm(settings)?;
    match command {
        CaCommand::Init(args) => {
            let parse_nets = |nets: &[String]| nets.iter().map(|n| n.parse()).collect::<Result<Vec<_>, _>>();
            let options = authority::InitOptions {
                root_subject: args.root_subject,
                root_key: args.root_key,
                root_lifetime_days: args.root_lifetime_days,
                intermediate_subject: args.intermediate_subject,
                intermediate_key: args.intermediate_key,
                intermediate_lifetime_days: args.intermediate_lifetime_days,
                constraints: NameConstraintSpec {
                    permitted_dns: args.permit_dns,
                    excluded_dns: args.exclude_dns,
                    permitted_ip: parse_nets(&args.permit_ip)?,
                    excluded_ip: parse_nets(&args.exclude_ip)?,
                },
                intermediate_csr: args.intermediate_csr.clone(),
            };
            let created = authority::init(settings, &hsm, &options)?;
            if let Some(path) = args.intermediate_csr {
                println!("intermediate key created in the token; CSR written to {}", path.display());
                println!(
                    "have it signed by your root, then: castellan ca import --cert <intermediate.pem> --root <root.pem>"
                );
                return Ok(());
            }
            print_summaries(&created, args.json)
        }
        CaCommand::Import { cert, root } => print_summaries(&authority::import(settings, &hsm, &cert, &root)?, false),
        CaCommand::Show { json } => print_summaries(&authority::show(settings, &hsm)?, json),
        CaCommand::Issue { csr, profile, lifetime_secs } => {
            let ca = authority::load(settings, &hsm)?;
            let csr = std::fs::read(&csr).with_context(|| format!("reading {}", csr.display()))?;
            let issued = ca.issuer.issue::<HsmSignature>(&IssuanceRequest {
                csr: &csr,
                profile: &profile,
                lifetime: lifetime_secs.map(Duration::from_secs),
            })?;
            tracing::info!(serial = %issued.serial_hex, profile = %issued.profile, "issued");
            print!("{}", issued.chain_pem);
            Ok(())
        }
    }
}

fn print_summaries(summaries: &[authority::CertificateSummary], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summaries)?);
        return Ok(());
    }
    for s in summaries {
        println!("{:<13} {}", format!("{}:", s.role), s.subject);
        println!("{:<13} SHA256 {}", "", s.sha256_fingerprint);
        println!("{:<13} expires {} · key {}", "", s.not_after, s.key_label);
    }
    Ok(())
}
