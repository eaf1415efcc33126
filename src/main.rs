//! `castellan`: the command line that wires the crates together.

mod accounts_cli;
mod admin_cli;
mod admin_client;
mod authority;
mod config;
mod devhsm;
mod files;
mod records;
mod serve;

use anyhow::{Context, Result};
use castellan_ca::{IssuanceRequest, NameConstraintSpec};
use castellan_hsm::Hsm;
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
    /// sqlite://path (default: castellan.db in the data directory) or postgres://… shared by replicas.
    #[arg(long, global = true, env = "CASTELLAN_DATABASE_URL")]
    database_url: Option<String>,
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
        /// Plain-HTTP address for CRLs and OCSP (overrides serve.http_listen; port 0 picks a free port).
        #[arg(long)]
        http_listen: Option<std::net::SocketAddr>,
    },
    /// Manage the certificate authority itself.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Account groups and their issuance policies.
    #[command(subcommand)]
    Group(accounts_cli::GroupCommand),
    /// External account binding credentials, bound to a group.
    #[command(subcommand)]
    Eab(accounts_cli::EabCommand),
    /// The global deny list every group's policy is subject to.
    #[command(subcommand)]
    Policy(accounts_cli::PolicyCommand),
    /// The admin API: its first token.
    #[command(subcommand)]
    Admin(admin_cli::AdminCommand),
    /// Search the certificate inventory (filters combine; newest first, or soonest expiry with --expiring-days).
    Inventory(InventoryArgs),
    /// Revoke certificates by serial, by name, or every certificate of an ACME account. Running servers publish
    /// the revocation (OCSP at once, the CRL within a minute); each certificate is audited.
    Revoke(RevokeArgs),
    /// Mark a certificate for re-issuance now (an incident): ACME renewal information (RFC 9773) then tells its
    /// client to renew at once. The certificate stays valid.
    RenewNow {
        /// Serial number in hex.
        #[arg(long)]
        serial: String,
    },
}

#[derive(Args)]
struct RevokeArgs {
    #[command(flatten)]
    target: RevokeTarget,
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation, privilegeWithdrawn or aACompromise.
    #[arg(long, default_value = "unspecified")]
    reason: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct RevokeTarget {
    /// Serial number in hex.
    #[arg(long)]
    serial: Option<String>,
    /// Every unexpired certificate naming this DNS name, IP address or URI.
    #[arg(long)]
    name: Option<String>,
    /// Every unexpired certificate this ACME account obtained (its id, as in /acme/acct/<id>).
    #[arg(long)]
    account: Option<i64>,
}

#[derive(Args)]
struct InventoryArgs {
    /// Certificates with exactly this name.
    #[arg(long, conflicts_with = "suffix")]
    name: Option<String>,
    /// Certificates with a name at or under this domain ("example.com" matches "www.example.com").
    #[arg(long)]
    suffix: Option<String>,
    /// Serial number in hex.
    #[arg(long)]
    serial: Option<String>,
    /// pending, active, expiring_soon, renewing, superseded, expired, revoked or failed.
    #[arg(long)]
    status: Option<String>,
    /// Live certificates expiring within this many days, soonest first.
    #[arg(long)]
    expiring_days: Option<u64>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and report the first broken link (exit code 1 if any).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Show the most recent entries, newest first.
    Tail {
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
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
    let settings = Settings::load(cli.config.as_deref(), cli.data_dir, cli.database_url)?;
    // Before any thread exists: SoftHSM reads its configuration path from the environment.
    if let HsmSetting::Dev(dev) = &settings.hsm {
        devhsm::prepare_environment(dev)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = runtime
        .block_on(castellan_store::Store::open(&settings.database_url))
        .with_context(|| format!("opening the database {}", castellan_store::redact(&settings.database_url)))?;
    let ctx = Ctx { runtime, store, settings };
    match cli.command {
        Command::Serve { listen, http_listen } => {
            let mut ctx = ctx;
            if let Some(listen) = listen {
                ctx.settings.serve.listen = listen;
            }
            if let Some(http_listen) = http_listen {
                ctx.settings.serve.http_listen = Some(http_listen);
            }
            // Bound before the CA is loaded: its address goes into the CRL and OCSP URLs of every leaf.
            let http_listener = match ctx.settings.serve.http_listen {
                Some(address) => {
                    let listener = std::net::TcpListener::bind(address)
                        .with_context(|| format!("listening on http://{address}"))?;
                    listener.set_nonblocking(true)?;
                    let bound = listener.local_addr()?;
                    ctx.settings.status_base_url = Some(config::http_base(bound, &ctx.settings.serve.tls_names));
                    Some(listener)
                }
                None => None,
            };
            let hsm = open_hsm(&ctx.settings)?;
            if !authority::ca_exists(&ctx.settings) {
                tracing::info!(dir = %ctx.settings.ca_dir().display(), "no CA yet: running the key ceremony (first start)");
                let created = authority::init(&ctx.settings, &hsm, &authority::InitOptions::default())?;
                for cert in &created {
                    tracing::info!(role = cert.role, subject = %cert.subject, sha256 = %cert.sha256_fingerprint, "created");
                }
                ctx.audit_ceremony(&records::Actor("castellan:serve".into()), "ca.init", &created)?;
            }
            let ca = ctx.load_ca(&hsm)?;
            let Ctx { runtime, store, settings } = ctx;
            runtime.block_on(serve::run(settings, hsm, ca, store, http_listener))
        }
        Command::Ca(command) => run_ca(&ctx, command),
        Command::Audit(command) => run_audit(&ctx, command),
        Command::Group(command) => accounts_cli::run_group(&ctx, command),
        Command::Eab(command) => accounts_cli::run_eab(&ctx, command),
        Command::Policy(command) => accounts_cli::run_policy(&ctx, command),
        Command::Admin(command) => admin_cli::run(&ctx, command),
        Command::Inventory(args) => run_inventory(&ctx, args),
        Command::Revoke(args) => run_revoke(&ctx, args),
        Command::RenewNow { serial } => run_renew_now(&ctx, &serial),
    }
}

fn run_revoke(ctx: &Ctx, args: RevokeArgs) -> Result<()> {
    use castellan_ca::crl::RevocationReason;
    use castellan_store::revocation::RevocationTarget;
    let reason: RevocationReason = args.reason.parse()?;
    // certificateHold would promise an un-revocation Castellan does not do; removeFromCRL is for delta CRLs.
    if matches!(reason, RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl) {
        anyhow::bail!("reason {reason} is not accepted: revocations are final and CRLs are full CRLs");
    }
    let RevokeTarget { serial, name, account } = args.target;
    let target = match (serial, name, account) {
        (Some(serial), _, _) => RevocationTarget::Serial(serial),
        (_, Some(name), _) => RevocationTarget::Name(name),
        (_, _, Some(account)) => RevocationTarget::Account(account),
        (None, None, None) => anyhow::bail!("say which certificates: --serial, --name or --account"),
    };
    let actor = ctx.operator();
    let store = &ctx.store;
    let candidates = ctx.runtime.block_on(store.revocation_candidates(&target))?;
    if candidates.is_empty() {
        anyhow::bail!("no certificate of this CA matches {target:?}");
    }
    let report =
        ctx.runtime.block_on(store.revoke_certificates(&candidates, i64::from(reason.code()), &actor.0, &actor.0))?;
    if args.json {
        let revoked: Vec<_> =
            report.revoked.iter().map(|(id, serial)| serde_json::json!({"id": id, "serial": serial})).collect();
        let json = serde_json::json!({"reason": reason.name(), "revoked": revoked, "unchanged": report.unchanged});
        println!("{json}");
        return Ok(());
    }
    for (id, serial) in &report.revoked {
        println!("revoked  {id:>8}  {serial}  ({reason})");
    }
    for id in &report.unchanged {
        println!("unchanged {id:>7}  (already revoked, or never issued)");
    }
    println!("{} revoked, {} unchanged", report.revoked.len(), report.unchanged.len());
    Ok(())
}

fn run_renew_now(ctx: &Ctx, serial: &str) -> Result<()> {
    let certificates = ctx.runtime.block_on(ctx.store.certificates_with_serial(serial))?;
    if certificates.is_empty() {
        anyhow::bail!("no certificate of this CA has serial {serial}");
    }
    let actor = ctx.operator();
    for certificate in &certificates {
        ctx.runtime.block_on(ctx.store.mark_renewal_due(certificate.id, &actor.0))?;
        println!("renewal due now: {:>8}  {}  {}", certificate.id, certificate.serial, certificate.names.join(", "));
    }
    Ok(())
}

fn run_inventory(ctx: &Ctx, args: InventoryArgs) -> Result<()> {
    use castellan_store::inventory::{CertificateQuery, CertificateStatus, NameMatch};
    let status = match &args.status {
        Some(s) => Some(CertificateStatus::parse(s).with_context(|| format!("unknown status {s:?}"))?),
        None => None,
    };
    let query = CertificateQuery {
        name: args.name.map(NameMatch::Exact).or(args.suffix.map(NameMatch::Suffix)),
        serial: args.serial,
        status,
        expiring_within: args.expiring_days.map(|d| Duration::from_secs(d.saturating_mul(86_400))),
        limit: args.limit,
        cursor: args.cursor,
        ..Default::default()
    };
    let page = ctx.runtime.block_on(ctx.store.search_certificates(&query))?;
    if args.json {
        println!("{}", serde_json::json!({ "certificates": page.items, "next_cursor": page.next_cursor }));
        return Ok(());
    }
    println!("{:>8}  {:<34}  {:<13}  {:<20}  names", "id", "serial", "status", "not after");
    for c in &page.items {
        let not_after = time::OffsetDateTime::from_unix_timestamp(c.not_after)
            .map(|t| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
            .unwrap_or_default();
        println!("{:>8}  {:<34}  {:<13}  {:<20}  {}", c.id, c.serial, c.status.as_str(), not_after, c.names.join(", "));
    }
    if let Some(cursor) = page.next_cursor {
        println!("more: --cursor {cursor}");
    }
    Ok(())
}

/// What every command shares: the settings, the database and a runtime to talk to it.
pub(crate) struct Ctx {
    runtime: tokio::runtime::Runtime,
    store: castellan_store::Store,
    settings: Settings,
}

impl Ctx {
    /// The acting operator, for the audit log.
    pub(crate) fn operator(&self) -> records::Actor {
        match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
            Ok(user) => records::Actor(format!("cli:{user}")),
            Err(_) => records::Actor(format!("cli:uid-{}", nix_uid())),
        }
    }

    fn audit_ceremony(
        &self,
        actor: &records::Actor,
        action: &str,
        created: &[authority::CertificateSummary],
    ) -> Result<()> {
        if created.is_empty() {
            return Ok(());
        }
        let details = serde_json::to_value(created)?;
        let subject = created.last().map(|c| c.subject.clone()).unwrap_or_default();
        self.runtime.block_on(records::audit(&self.store, actor, action, &subject, details))
    }

    /// Loads the CA and files its certificates in the store.
    fn load_ca(&self, hsm: &Hsm) -> Result<authority::LoadedCa> {
        let mut ca = authority::load(&self.settings, hsm)?;
        let state = authority::state(&self.settings)?;
        ca.issuer_id = self.runtime.block_on(records::register_issuers(
            &self.store,
            &ca.root,
            state.root_key.as_deref(),
            &ca.intermediate,
            &state.intermediate_key,
            hsm.token_label(),
        ))?;
        Ok(ca)
    }
}

/// The real user id, for an audit actor when the environment names no user.
fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(u32::MAX)
}

pub(crate) fn open_hsm(settings: &Settings) -> Result<Hsm> {
    if let HsmSetting::Dev(dev) = &settings.hsm {
        devhsm::ensure_dev_token(dev)?;
    }
    Hsm::open(settings.hsm_config()).context("opening the HSM token")
}

fn run_audit(ctx: &Ctx, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { json } => {
            let report = ctx.runtime.block_on(ctx.store.audit_verify())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "entries": report.entries,
                        "head_hash": hex::encode(report.head_hash),
                        "intact": report.first_broken.is_none(),
                        "first_broken": report.first_broken.as_ref().map(|b| serde_json::json!({"seq": b.seq, "reason": b.reason})),
                    })
                );
            } else if let Some(broken) = &report.first_broken {
                println!("audit log BROKEN at entry {}: {}", broken.seq, broken.reason);
            } else {
                println!("audit log intact: {} entries, head {}", report.entries, hex::encode(report.head_hash));
            }
            if report.first_broken.is_some() {
                anyhow::bail!("the audit log's hash chain is broken");
            }
            Ok(())
        }
        AuditCommand::Tail { limit, json } => {
            let entries = ctx.runtime.block_on(ctx.store.audit_tail(limit))?;
            for e in entries {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                            "subject": e.subject, "details": e.details, "hash": hex::encode(e.hash)})
                    );
                } else {
                    let at = time::OffsetDateTime::from_unix_timestamp(e.at)
                        .map(|t| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
                        .unwrap_or_default();
                    println!("{:>6}  {at}  {:<18} {:<24} {}  {}", e.seq, e.actor, e.action, e.subject, e.details);
                }
            }
            Ok(())
        }
    }
}

fn run_ca(ctx: &Ctx, command: CaCommand) -> Result<()> {
    let settings = &ctx.settings;
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
            ctx.audit_ceremony(&ctx.operator(), "ca.init", &created)?;
            if let Some(path) = args.intermediate_csr {
                ctx.runtime.block_on(records::audit(
                    &ctx.store,
                    &ctx.operator(),
                    "ca.intermediate_csr",
                    &path.display().to_string(),
                    serde_json::json!({}),
                ))?;
                println!("intermediate key created in the token; CSR written to {}", path.display());
                println!(
                    "have it signed by your root, then: castellan ca import --cert <intermediate.pem> --root <root.pem>"
                );
                return Ok(());
            }
            print_summaries(&created, args.json)
        }
        CaCommand::Import { cert, root } => {
            let imported = authority::import(settings, &hsm, &cert, &root)?;
            ctx.audit_ceremony(&ctx.operator(), "ca.import", &imported)?;
            ctx.load_ca(&hsm)?;
            print_summaries(&imported, false)
        }
        CaCommand::Show { json } => print_summaries(&authority::show(settings, &hsm)?, json),
        CaCommand::Issue { csr, profile, lifetime_secs } => {
            let ca = std::sync::Arc::new(ctx.load_ca(&hsm)?);
            let csr = std::fs::read(&csr).with_context(|| format!("reading {}", csr.display()))?;
            let request =
                IssuanceRequest { csr: &csr, profile: &profile, lifetime: lifetime_secs.map(Duration::from_secs) };
            let issued = ctx.runtime.block_on(records::issue_recorded(
                &ctx.store,
                &ca,
                request,
                castellan_store::inventory::CertificateSource::ManagedInternal,
                &ctx.operator(),
            ))?;
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
