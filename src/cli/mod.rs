//! The operator's command line: one grammar, `castellan <noun> <verb>`, on the one set of operator actions.
//!
//! Every command but the key ceremony and the first token is a call of the admin API: against a running server
//! with `--server URL` (a token or a client certificate), or, without it, in process on this machine's database
//! and token (`castellan_admin::local_router`, audited as `cli:<user>`). The answers are the API's JSON, shown as
//! tables for people or as they are with `--json`, so both ways say the same things the same way.

mod ca;
mod domains;
mod print;
mod target;

pub use target::Remote;

use crate::config::Settings;
use anyhow::{Context as _, Result, bail};
use castellan_authority::Clock;
use clap::Subcommand;
use domains::DomainsCommand;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use target::Target;

/// What every operator command shares.
pub struct Context {
    pub settings: Settings,
    pub clock: Clock,
    pub remote: Remote,
    pub json: bool,
}

#[derive(Subcommand)]
pub enum Noun {
    /// The certificate authority itself: the key ceremony, the enterprise import, its certificates.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// The certificate inventory: search, show, issue from a CSR, revoke, renew now.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Managed certificates: Castellan issues them, renews them with new keys, and records each rotation.
    #[command(subcommand, name = "domains", alias = "domain")]
    Domains(DomainsCommand),
    /// Account groups and their issuance policies.
    #[command(subcommand)]
    Group(GroupCommand),
    /// The global deny list every group's policy is subject to.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// External account binding credentials, each bound to a group.
    #[command(subcommand)]
    Eab(EabCommand),
    /// ACME accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Re-issue managed certificates now with new keys (after an incident): every one, or those issued under one
    /// issuer key. Resumable: the running servers do the work, and pick it up again after a restart.
    #[command(group(clap::ArgGroup::new("which_reissue").required(true).args(["all", "issuer"])))]
    Reissue {
        #[arg(long)]
        all: bool,
        /// The issuer's key identifier (hex, as `castellan certificate show` prints issuer_key_id).
        #[arg(long)]
        issuer: Option<String>,
        /// Return once marked, without following the progress.
        #[arg(long)]
        no_wait: bool,
    },
    /// Any admin API call, printing its JSON: `castellan api GET /groups`.
    Api {
        method: String,
        /// Under /admin, with any query string.
        path: String,
        /// A JSON body.
        #[arg(long)]
        data: Option<String>,
    },
}

/// Which certificates: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// Inventory id.
    #[arg(long)]
    id: Option<i64>,
    /// Serial number in hex (colons allowed).
    #[arg(long)]
    serial: Option<String>,
    /// Every unexpired certificate naming this DNS name, IP address or URI.
    #[arg(long)]
    name: Option<String>,
    /// Every unexpired certificate this ACME account obtained (its id, as in /acme/acct/<id>).
    #[arg(long)]
    account: Option<i64>,
}

impl Which {
    fn body(&self) -> Value {
        json!({ "id": self.id, "serial": self.serial, "name": self.name, "account": self.account })
    }
}

#[derive(Subcommand)]
pub enum CertificateCommand {
    /// Search the inventory (filters combine; newest first, or soonest expiry with --expiring-days).
    Search {
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
        /// Certificates an ACME account obtained.
        #[arg(long)]
        account: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Continue after the page that printed this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One certificate, with its PEM.
    Show { id: i64 },
    /// Issue a certificate from a CSR (PEM or DER) under a CA profile and print the chain (PEM).
    Issue {
        #[arg(long)]
        csr: PathBuf,
        /// tls-server, tls-client or service.
        #[arg(long, default_value = "tls-server")]
        profile: String,
        /// Lifetime in seconds (default: the profile's maximum).
        #[arg(long)]
        lifetime_secs: Option<u64>,
    },
    /// Revoke certificates. Running servers publish it: OCSP at once, the CRL within a minute.
    Revoke {
        #[command(flatten)]
        which: Which,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
        /// cessationOfOperation, privilegeWithdrawn or aACompromise.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Mark certificates for re-issuance now (an incident): ACME renewal information (RFC 9773) then tells their
    /// clients to renew at once. They stay valid.
    RenewNow {
        #[command(flatten)]
        which: Which,
    },
    /// Every live certificate expiring within --days, whatever its source, and who renews it.
    Expiring {
        #[arg(long, default_value_t = 30)]
        days: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// List groups and their policies.
    List,
    Show {
        name: String,
    },
    /// Create a group, with a policy document (JSON; default: nothing allowed).
    Create {
        name: String,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Replace a group's policy (checked whole); it governs the next order on every replica.
    SetPolicy {
        name: String,
        #[arg(long)]
        policy: PathBuf,
    },
    /// Delete a group no account or credential uses.
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Show the global deny list.
    Show,
    /// Replace the global deny list: {"dns": [...], "ip": [...], "uri": [...]}.
    SetGlobalDeny { file: PathBuf },
}

#[derive(Subcommand)]
pub enum EabCommand {
    /// List credentials (never their keys).
    List {
        #[arg(long)]
        group: Option<String>,
    },
    /// Create a credential for a group; its HMAC key is shown once.
    Create {
        #[arg(long)]
        group: String,
        /// Default: random.
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Delete a credential no account used.
    Delete {
        /// Accepted even when it starts with '-' (ids made elsewhere may).
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// List accounts, of one group or all.
    List {
        #[arg(long)]
        group: Option<String>,
        /// Continue after this account id.
        #[arg(long)]
        after: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Deactivate an account: it can do nothing more.
    Deactivate { id: i64 },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The newest entries, newest first.
    Tail {
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: i64,
    },
    /// Entries after a sequence number, oldest first.
    Page {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Recompute the hash chain and report the first broken link (exit code 1 if any).
    Verify,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    List,
    /// Create a token (shown once).
    Create {
        name: String,
        /// read or admin.
        #[arg(long, default_value = "read")]
        scope: String,
    },
    /// Revoke a token: it authenticates nothing from now on.
    Revoke {
        id: i64,
    },
    /// The first admin token, made on the CA's own machine (refused while any unrevoked token exists); printed
    /// once.
    Bootstrap {
        #[arg(long, default_value = "bootstrap")]
        name: String,
        #[arg(long, default_value = "admin")]
        scope: String,
    },
}

/// An admin API call and how to show its answer.
struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// The action needs the CA's token (issuing, sealing an EAB key): locally, the token is opened.
    needs_token: bool,
    show: fn(&Value) -> String,
}

impl Call {
    fn get(path: impl Into<String>, show: fn(&Value) -> String) -> Call {
        Call { method: "GET", path: path.into(), body: None, needs_token: false, show }
    }

    fn send(method: &'static str, path: impl Into<String>, body: Value, show: fn(&Value) -> String) -> Call {
        Call { method, path: path.into(), body: Some(body), needs_token: false, show }
    }

    fn with_token(mut self) -> Call {
        self.needs_token = true;
        self
    }
}

pub async fn run(context: Context, noun: Noun) -> Result<ExitCode> {
    let call = match noun {
        Noun::Ca(command) => return ca::run(&context, command).await,
        Noun::Token(TokenCommand::Bootstrap { name, scope }) => return bootstrap(&context, &name, &scope).await,
        Noun::Audit(AuditCommand::Verify) => {
            let answer = Target::open(&context, false).await?.call("GET", "/audit/verify", None).await?;
            print(&context, &answer, print::verification);
            let intact = answer["intact"].as_bool().unwrap_or(false);
            return Ok(if intact { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Noun::Reissue { all, issuer, no_wait } => return domains::reissue(&context, all, issuer, no_wait).await,
        Noun::Api { method, path, data } => {
            let body = data.map(|d| serde_json::from_str(&d).context("--data is not JSON")).transpose()?;
            let method = method.to_ascii_uppercase();
            let answer = Target::open(&context, true).await?.call(&method, &path, body).await?;
            println!("{answer}");
            return Ok(ExitCode::SUCCESS);
        }
        Noun::Certificate(command) => certificate(command)?,
        Noun::Domains(command) => domains::call(command),
        Noun::Group(command) => group(command)?,
        Noun::Policy(command) => policy(command)?,
        Noun::Eab(command) => eab(command),
        Noun::Account(command) => account(command),
        Noun::Audit(command) => audit(command),
        Noun::Token(command) => token(command),
    };
    let answer = Target::open(&context, call.needs_token).await?.call(call.method, &call.path, call.body).await?;
    print(&context, &answer, call.show);
    Ok(ExitCode::SUCCESS)
}

fn print(context: &Context, answer: &Value, show: fn(&Value) -> String) {
    if context.json {
        println!("{answer}");
    } else {
        print!("{}", show(answer));
    }
}

fn certificate(command: CertificateCommand) -> Result<Call> {
    Ok(match command {
        CertificateCommand::Search { name, suffix, serial, status, expiring_days, account, limit, cursor } => {
            let query = print::query(&[
                ("name", name),
                ("suffix", suffix),
                ("serial", serial),
                ("status", status),
                ("expiring_days", expiring_days.map(|d| d.to_string())),
                ("account", account.map(|a| a.to_string())),
                ("limit", Some(limit.to_string())),
                ("cursor", cursor),
            ]);
            Call::get(format!("/certificates{query}"), print::certificates)
        }
        CertificateCommand::Show { id } => Call::get(format!("/certificates/{id}"), print::certificate),
        CertificateCommand::Issue { csr, profile, lifetime_secs } => {
            let body = json!({ "csr": csr_pem(&csr)?, "profile": profile, "lifetime_secs": lifetime_secs });
            Call::send("POST", "/certificates", body, print::chain).with_token()
        }
        CertificateCommand::Revoke { which, reason } => {
            let mut body = which.body();
            body["reason"] = Value::String(reason);
            Call::send("POST", "/revocations", body, print::revocation)
        }
        CertificateCommand::RenewNow { which } => Call::send("POST", "/renewals", which.body(), print::renewals),
        CertificateCommand::Expiring { days, limit, cursor } => {
            let query = print::query(&[
                ("days", Some(days.to_string())),
                ("limit", Some(limit.to_string())),
                ("cursor", cursor),
            ]);
            Call::get(format!("/certificates/expiring{query}"), print::expiring)
        }
    })
}

fn group(command: GroupCommand) -> Result<Call> {
    Ok(match command {
        GroupCommand::List => Call::get("/groups", print::groups),
        GroupCommand::Show { name } => Call::get(format!("/groups/{}", print::escape(&name)), print::group),
        GroupCommand::Create { name, policy } => {
            let policy = policy.as_deref().map(read_json).transpose()?;
            Call::send("POST", "/groups", json!({ "name": name, "policy": policy }), print::group_created)
        }
        GroupCommand::SetPolicy { name, policy } => {
            Call::send("PUT", format!("/groups/{}/policy", print::escape(&name)), read_json(&policy)?, print::group)
        }
        GroupCommand::Delete { name } => Call {
            method: "DELETE",
            path: format!("/groups/{}", print::escape(&name)),
            body: None,
            needs_token: false,
            show: |_| "group deleted\n".to_owned(),
        },
    })
}

fn policy(command: PolicyCommand) -> Result<Call> {
    Ok(match command {
        PolicyCommand::Show => Call::get("/policy/global-deny", print::deny_list),
        PolicyCommand::SetGlobalDeny { file } => {
            Call::send("PUT", "/policy/global-deny", read_json(&file)?, |_| "global deny list replaced\n".to_owned())
        }
    })
}

fn eab(command: EabCommand) -> Call {
    match command {
        EabCommand::List { group } => {
            Call::get(format!("/eab{}", print::query(&[("group", group)])), print::credentials)
        }
        EabCommand::Create { group, key_id } => {
            Call::send("POST", "/eab", json!({ "group": group, "key_id": key_id }), print::new_credential).with_token()
        }
        EabCommand::Delete { key_id } => Call {
            method: "DELETE",
            path: format!("/eab/{}", print::escape(&key_id)),
            body: None,
            needs_token: false,
            show: |_| "credential deleted\n".to_owned(),
        },
    }
}

fn account(command: AccountCommand) -> Call {
    match command {
        AccountCommand::List { group, after, limit } => {
            let query = print::query(&[
                ("group", group),
                ("after", after.map(|a| a.to_string())),
                ("limit", Some(limit.to_string())),
            ]);
            Call::get(format!("/accounts{query}"), print::accounts)
        }
        AccountCommand::Deactivate { id } => Call::send("POST", format!("/accounts/{id}/deactivate"), json!({}), |a| {
            format!("account {} {}\n", print::text(&a["id"]), print::text(&a["status"]))
        }),
    }
}

fn audit(command: AuditCommand) -> Call {
    match command {
        AuditCommand::Tail { limit } => {
            Call::get(format!("/audit?tail=true&limit={}", limit.clamp(1, 1000)), print::audit)
        }
        AuditCommand::Page { after, limit } => {
            Call::get(format!("/audit?after_seq={after}&limit={}", limit.clamp(1, 1000)), print::audit)
        }
        AuditCommand::Verify => Call::get("/audit/verify", print::verification),
    }
}

fn token(command: TokenCommand) -> Call {
    match command {
        TokenCommand::List => Call::get("/tokens", print::tokens),
        TokenCommand::Create { name, scope } => {
            Call::send("POST", "/tokens", json!({ "name": name, "scope": scope }), print::new_token)
        }
        TokenCommand::Revoke { id } => Call {
            method: "DELETE",
            path: format!("/tokens/{id}"),
            body: None,
            needs_token: false,
            show: |t| format!("token {} revoked\n", print::text(&t["id"])),
        },
        // Handled before: it is not an API call.
        TokenCommand::Bootstrap { .. } => Call::get("/tokens", print::tokens),
    }
}

/// The first token: made on the database directly, since the API needs a token to make one.
async fn bootstrap(context: &Context, name: &str, scope: &str) -> Result<ExitCode> {
    if context.remote.server.is_some() {
        bail!("the first token is made on the CA's own machine, without --server");
    }
    let store = crate::open_store(&context.settings, &context.clock).await?;
    let operator = castellan_authority::Operator::new(store);
    let token = operator.bootstrap_token(name, Some(scope), &castellan_authority::Actor::cli_user()).await?;
    if context.json {
        println!("{}", serde_json::to_value(&token)?);
    } else {
        println!("{}", token.token.as_deref().unwrap_or_default());
        eprintln!(
            "API token {} ({:?}, scope {}): shown only now; use it as \"Authorization: Bearer <token>\" or \
             CASTELLAN_ADMIN_TOKEN with --server",
            token.id, token.name, token.scope
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// A CSR file as PEM (DER files are wrapped), for the API's JSON.
fn csr_pem(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        return String::from_utf8(bytes).with_context(|| format!("{} is not text", path.display()));
    }
    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
