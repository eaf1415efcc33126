//! `castellan ca …`: the key ceremony, the enterprise import and the CA's certificates. These run where the token
//! and the CA directory are, never through a server.

use super::Context;
use anyhow::{Result, bail};
use castellan_authority::Actor;
use castellan_authority::ca_dir::{
    CaDirectory, CertificateSummary, InitOptions, audit_ceremony, audit_intermediate_csr,
};
use castellan_ca::NameConstraintSpec;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum CaCommand {
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
    Show,
}

#[derive(Args)]
pub struct InitArgs {
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
}

pub async fn run(context: &Context, command: CaCommand) -> Result<ExitCode> {
    if context.remote.server.is_some() {
        bail!("`castellan ca` runs where the CA's token and files are, without --server");
    }
    let settings = &context.settings;
    let dir = CaDirectory::new(settings.ca_dir());
    let actor = Actor::cli_user();
    match command {
        CaCommand::Init(args) => {
            let parse_nets = |nets: &[String]| nets.iter().map(|n| n.parse()).collect::<Result<Vec<_>, _>>();
            let options = InitOptions {
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
            let hsm = crate::open_hsm(settings)?;
            let created = dir.init(&settings.ca, &hsm, &options, &context.clock)?;
            let store = crate::open_store(settings, &context.clock).await?;
            audit_ceremony(&store, &actor, "ca.init", &created).await?;
            if let Some(path) = args.intermediate_csr {
                audit_intermediate_csr(&store, &actor, &path).await?;
                println!("intermediate key created in the token; CSR written to {}", path.display());
                println!(
                    "have it signed by your root, then: castellan ca import --cert <intermediate.pem> --root <root.pem>"
                );
                return Ok(ExitCode::SUCCESS);
            }
            print_summaries(&created, context.json)
        }
        CaCommand::Import { cert, root } => {
            let hsm = crate::open_hsm(settings)?;
            let imported = dir.import(&hsm, &cert, &root, &context.clock)?;
            let store = crate::open_store(settings, &context.clock).await?;
            audit_ceremony(&store, &actor, "ca.import", &imported).await?;
            print_summaries(&imported, context.json)
        }
        CaCommand::Show => print_summaries(&dir.show()?, context.json),
    }
}

fn print_summaries(summaries: &[CertificateSummary], json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(summaries)?);
        return Ok(ExitCode::SUCCESS);
    }
    for s in summaries {
        println!("{:<13} {}", format!("{}:", s.role), s.subject);
        println!("{:<13} SHA256 {}", "", s.sha256_fingerprint);
        println!("{:<13} expires {} · key {}", "", s.not_after, s.key_label);
    }
    Ok(ExitCode::SUCCESS)
}
