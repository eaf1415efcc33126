//! `castellan admin …`: the admin API from the command line — tables for people, `--json` for scripts — and
//! `bootstrap-token`, which creates the first API token on the store directly (the API needs a token to create
//! one), only while no unrevoked token exists.

use anyhow::{Context, Result, bail};
use castellan_store::admin::TokenScope;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

use crate::Ctx;
use crate::admin_client::AdminClient;

/// Where the API is and how to authenticate to it.
#[derive(Args, Debug)]
pub struct Connection {
    /// The server's origin.
    #[arg(long, env = "CASTELLAN_ADMIN_URL", default_value = "https://127.0.0.1:8443")]
    url: String,
    /// An API token (cst_…).
    #[arg(long, env = "CASTELLAN_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// The CA root to trust (default: the data directory's ca/root.pem).
    #[arg(long, env = "CASTELLAN_ADMIN_CA")]
    ca: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Creates the first admin API token and prints it, once. Refused while any unrevoked token exists: create
    /// further tokens through the API (POST /admin/tokens).
    BootstrapToken {
        #[arg(long, default_value = "bootstrap")]
        name: String,
        /// admin or read.
        #[arg(long, default_value = "admin")]
        scope: String,
        #[arg(long)]
        json: bool,
    },
    /// Lists account groups and their policies.
    Groups {
        #[command(flatten)]
        conn: Connection,
    },
    /// Creates a group with a policy document (JSON file; default: nothing allowed).
    GroupCreate {
        name: String,
        #[arg(long)]
        policy: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Replaces a group's policy (checked whole; an invalid document changes nothing).
    GroupPolicy {
        name: String,
        #[arg(long)]
        policy: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Creates an external account binding credential; its HMAC key is shown once.
    EabCreate {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Lists accounts, optionally of one group.
    Accounts {
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Searches the certificate inventory.
    Certificates {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        suffix: Option<String>,
        #[arg(long)]
        serial: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        expiring_days: Option<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Revokes a certificate by inventory id.
    Revoke {
        id: i64,
        #[arg(long, default_value = "unspecified")]
        reason: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Audit entries after a sequence number, oldest first.
    Audit {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Creates an API token (shown once).
    TokenCreate {
        name: String,
        #[arg(long, default_value = "read")]
        scope: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Any admin API call, printing its JSON: `castellan admin api GET /groups`.
    Api {
        method: String,
        path: String,
        /// A JSON body.
        #[arg(long)]
        data: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

/// A query string from the options that are set.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v)))).collect();
    if set.is_empty() { String::new() } else { format!("?{}", set.join("&")) }
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn read_json(path: &PathBuf) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Calls the API; a non-2xx answer is an error carrying the API's detail.
fn call(ctx: &Ctx, conn: &Connection, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let ca = conn.ca.clone().unwrap_or_else(|| ctx.settings.ca_dir().join("root.pem"));
    let client = AdminClient::new(&conn.url, conn.token.clone(), &ca)?;
    let answer = ctx.runtime.block_on(client.call(method, path, body.as_ref()))?;
    if !(200..300).contains(&answer.status) {
        let detail = answer.body["detail"].as_str().map(str::to_owned).unwrap_or_else(|| answer.body.to_string());
        bail!("{method} /admin{path}: HTTP {}: {detail}", answer.status);
    }
    Ok(answer.body)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Prints rows of `list` as aligned columns, or the JSON.
fn table(conn: &Connection, body: &Value, list: &str, columns: &[&str]) {
    if conn.json {
        println!("{body}");
        return;
    }
    let rows: Vec<Vec<String>> = body[list]
        .as_array()
        .map(|items| items.iter().map(|item| columns.iter().map(|c| text(&item[*c])).collect()).collect())
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0).min(60))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned()
    };
    println!("{}", line(columns.iter().map(|c| c.to_uppercase()).collect()));
    for row in rows {
        println!("{}", line(row));
    }
}

pub fn run(ctx: &Ctx, command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Groups { conn } => {
            let body = call(ctx, &conn, "GET", "/groups", None)?;
            table(&conn, &body, "groups", &["name", "policy", "updated_at"]);
        }
        AdminCommand::GroupCreate { name, policy, conn } => {
            let policy = policy.as_ref().map(read_json).transpose()?;
            let body = call(ctx, &conn, "POST", "/groups", Some(json!({"name": name, "policy": policy})))?;
            if conn.json { println!("{body}") } else { println!("created group {}", text(&body["name"])) }
        }
        AdminCommand::GroupPolicy { name, policy, conn } => {
            let body = call(
                ctx,
                &conn,
                "PUT",
                &format!("/groups/{}/policy", percent_encode(&name)),
                Some(read_json(&policy)?),
            )?;
            if conn.json { println!("{body}") } else { println!("policy of group {name} replaced") }
        }
        AdminCommand::EabCreate { group, conn } => {
            let body = call(ctx, &conn, "POST", "/eab", Some(json!({"group": group})))?;
            if conn.json {
                println!("{body}");
            } else {
                println!(
                    "key id:   {}\nhmac key: {}\ngroup:    {group}",
                    text(&body["key_id"]),
                    text(&body["hmac_key"])
                );
            }
        }
        AdminCommand::Accounts { group, conn } => {
            let body = call(ctx, &conn, "GET", &format!("/accounts{}", query(&[("group", group)])), None)?;
            table(&conn, &body, "accounts", &["id", "status", "group", "contacts", "created_at"]);
        }
        AdminCommand::Certificates { name, suffix, serial, status, expiring_days, conn } => {
            let q = query(&[
                ("name", name),
                ("suffix", suffix),
                ("serial", serial),
                ("status", status),
                ("expiring_days", expiring_days.map(|d| d.to_string())),
            ]);
            let body = call(ctx, &conn, "GET", &format!("/certificates{q}"), None)?;
            table(&conn, &body, "certificates", &["id", "serial", "status", "names", "not_after"]);
        }
        AdminCommand::Revoke { id, reason, conn } => {
            let body =
                call(ctx, &conn, "POST", &format!("/certificates/{id}/revoke"), Some(json!({"reason": reason})))?;
            if conn.json { println!("{body}") } else { println!("certificate {id} revoked ({reason})") }
        }
        AdminCommand::Audit { after, limit, conn } => {
            let path = format!("/audit?after_seq={after}&limit={}", limit.clamp(1, 1000));
            let body = call(ctx, &conn, "GET", &path, None)?;
            table(&conn, &body, "entries", &["seq", "at", "actor", "action", "subject"]);
        }
        AdminCommand::TokenCreate { name, scope, conn } => {
            let body = call(ctx, &conn, "POST", "/tokens", Some(json!({"name": name, "scope": scope})))?;
            if conn.json { println!("{body}") } else { println!("{}", text(&body["token"])) }
        }
        AdminCommand::Api { method, path, data, conn } => {
            let body = data.map(|d| serde_json::from_str(&d).context("--data is not JSON")).transpose()?;
            println!("{}", call(ctx, &conn, &method.to_ascii_uppercase(), &path, body)?);
        }
        AdminCommand::BootstrapToken { name, scope, json } => {
            let Some(scope) = TokenScope::parse(&scope) else {
                bail!("scope {scope:?} is neither \"admin\" nor \"read\"");
            };
            let actor = ctx.operator().0;
            let Some((token, plaintext)) = ctx.runtime.block_on(ctx.store.bootstrap_token(&name, scope, &actor))?
            else {
                bail!("an unrevoked API token exists already; create more with POST /admin/tokens");
            };
            if json {
                let body = serde_json::json!({"id": token.id, "name": token.name, "scope": token.scope.as_str(),
                    "token": plaintext});
                println!("{body}");
            } else {
                println!("{plaintext}");
                eprintln!(
                    "API token {} ({:?}, scope {}): shown only now; use it as \"Authorization: Bearer <token>\"",
                    token.id,
                    token.name,
                    token.scope.as_str()
                );
            }
        }
    }
    Ok(())
}
