//! `castellan domains` (managed certificates) and `castellan reissue` (a mass re-issue, followed to its end).

use super::target::Target;
use super::{Call, Context, print};
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DomainsCommand {
    /// Manage a certificate: issued now, renewed at two thirds of its life with a new key.
    Add {
        /// The name it is addressed by (its first subjectAltName).
        domain: String,
        /// More names: DNS names (wildcards too) and IP addresses.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096.
        #[arg(long, default_value = "ec-p256")]
        key_type: String,
        /// internal: this CA.
        #[arg(long, default_value = "internal")]
        issuer: String,
        /// A CA profile.
        #[arg(long, default_value = "tls-server")]
        profile: String,
        /// The account group whose policy the names must pass.
        #[arg(long, default_value = "default")]
        group: String,
        /// Lifetime in seconds (default: the profile's maximum).
        #[arg(long)]
        lifetime_secs: Option<u64>,
    },
    /// Managed certificates and their renewal state.
    List {
        /// active, removed or all.
        #[arg(long)]
        status: Option<String>,
        /// Only those whose last renewal failed.
        #[arg(long)]
        failing: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One managed certificate: current certificate, renewal state, rotations.
    Show { domain: String },
    /// Re-issue now with a new key (asking again while one runs returns that one).
    Renew { domain: String },
    /// Stop managing; its certificates stay valid unless --revoke gives a reason.
    Remove {
        domain: String,
        /// Also revoke the current certificate with this RFC 5280 reason (e.g. cessationOfOperation).
        #[arg(long)]
        revoke: Option<String>,
    },
}

/// The admin API call of a `castellan domains` command.
pub(super) fn call(command: DomainsCommand) -> Call {
    match command {
        DomainsCommand::Add { domain, sans, key_type, issuer, profile, group, lifetime_secs } => {
            let body = json!({
                "domain": domain, "sans": sans, "key_type": key_type, "issuer": issuer, "profile": profile,
                "group": group, "lifetime_secs": lifetime_secs,
            });
            Call::send("POST", "/domains", body, print::domain)
        }
        DomainsCommand::List { status, failing, limit, cursor } => {
            let query = print::query(&[
                ("status", status),
                ("failing", failing.then(|| "true".to_owned())),
                ("limit", Some(limit.to_string())),
                ("cursor", cursor),
            ]);
            Call::get(format!("/domains{query}"), print::domains)
        }
        DomainsCommand::Show { domain } => {
            Call::get(format!("/domains/{}/certificate", print::escape(&domain)), print::domain)
        }
        DomainsCommand::Renew { domain } => {
            Call::send("POST", format!("/domains/{}/renew", print::escape(&domain)), json!({}), print::rotation)
        }
        DomainsCommand::Remove { domain, revoke } => Call {
            method: "DELETE",
            path: format!("/domains/{}{}", print::escape(&domain), print::query(&[("revoke", revoke)])),
            body: None,
            needs_token: false,
            show: |d| format!("{} is no longer managed\n", print::text(&d["domain"])),
        },
    }
}

/// Marks, then follows the progress until nothing is left (a bar in a terminal, a line per change otherwise).
pub(super) async fn reissue(context: &Context, all: bool, issuer: Option<String>, no_wait: bool) -> Result<ExitCode> {
    let target = Target::open(context, false).await?;
    let body = if all { json!({ "all": true }) } else { json!({ "issuer_key_id": issuer }) };
    let answer = target.call("POST", "/reissues", Some(body)).await?;
    let total = answer["progress"]["remaining"].as_u64().unwrap_or(0);
    if context.json && no_wait {
        println!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} marked for re-issue now; {total} to go (the running servers issue them)", answer["marked"]);
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} re-issued, {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut last = None;
    let progress = loop {
        let progress = target.call("GET", "/reissues", None).await?;
        let remaining = progress["remaining"].as_u64().unwrap_or(0);
        let failing = progress["failing"].as_u64().unwrap_or(0);
        bar.set_position(total.saturating_sub(remaining));
        bar.set_message(format!("{failing} failing"));
        if bar.is_hidden() && last != Some(remaining) {
            eprintln!("{} of {total} re-issued, {failing} failing", total.saturating_sub(remaining));
        }
        last = Some(remaining);
        if remaining == 0 {
            break progress;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    bar.finish();
    if context.json {
        println!("{progress}");
    } else {
        println!("re-issue complete: {total} managed certificates have new keys and certificates");
    }
    Ok(ExitCode::SUCCESS)
}
