//! `castellan group …`, `castellan eab …`, `castellan policy …`: account groups, their policies and external
//! account binding credentials, on the store (and, for EAB keys, the token) directly. Every change is audited
//! with the operator as actor.

use anyhow::{Context, Result, bail};
use castellan_acme_server::ra::eab::EabKeys;
use castellan_acme_server::ra::policy::GLOBAL_DENY_SETTING;
use castellan_policy::{GlobalDeny, GroupPolicy};
use clap::Subcommand;
use std::path::{Path, PathBuf};

use crate::Ctx;

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Creates a group, with a policy document (JSON; default: nothing allowed).
    Create {
        name: String,
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Replaces a group's policy; it governs the next order on every replica.
    SetPolicy {
        name: String,
        #[arg(long)]
        policy: PathBuf,
    },
    /// Lists groups and their policies.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EabCommand {
    /// Creates an external account binding credential for a group; prints its key id and HMAC key, once.
    Create {
        #[arg(long)]
        group: String,
        /// Default: random.
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Lists credentials (never their keys).
    List {
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Sets the global deny list that applies to every group: {"dns": [...], "ip": [...], "uri": [...]}.
    SetGlobalDeny { file: PathBuf },
    /// Shows the global deny list.
    Show,
}

/// Reads a policy document and checks it whole: a document that does not parse or contradicts itself changes
/// nothing.
fn read_policy(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let policy = GroupPolicy::from_json(&text).with_context(|| format!("{} is not a valid policy", path.display()))?;
    Ok(policy.to_json().to_owned())
}

pub fn run_group(ctx: &Ctx, command: GroupCommand) -> Result<()> {
    let actor = ctx.operator().0;
    match command {
        GroupCommand::Create { name, policy } => {
            let policy = match policy {
                Some(path) => read_policy(&path)?,
                None => GroupPolicy::deny_all().to_json().to_owned(),
            };
            let group = ctx.runtime.block_on(ctx.store.create_group(&name, &policy, &actor))?;
            println!("created group {} (id {})", group.name, group.id);
        }
        GroupCommand::SetPolicy { name, policy } => {
            let policy = read_policy(&policy)?;
            ctx.runtime.block_on(ctx.store.set_group_policy(&name, &policy, &actor))?;
            println!("policy of group {name} replaced");
        }
        GroupCommand::List { json } => {
            let groups = ctx.runtime.block_on(ctx.store.groups())?;
            if json {
                let list: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        let policy: serde_json::Value = serde_json::from_str(&g.policy_json).unwrap_or_default();
                        serde_json::json!({"id": g.id, "name": g.name, "policy": policy, "updated_at": g.updated_at})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for g in groups {
                    println!("{:<24} {}", g.name, g.policy_json);
                }
            }
        }
    }
    Ok(())
}

/// A random key id: 16 bytes, base64url.
fn random_key_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    castellan_acme_proto::b64::encode(bytes)
}

pub fn run_eab(ctx: &Ctx, command: EabCommand) -> Result<()> {
    let actor = ctx.operator().0;
    match command {
        EabCommand::Create { group, key_id, json } => {
            let key_id = key_id.unwrap_or_else(random_key_id);
            if ctx.runtime.block_on(ctx.store.group_by_name(&group))?.is_none() {
                bail!("no group {group:?}: create it first with `castellan group create {group}`");
            }
            let hsm = crate::open_hsm(&ctx.settings)?;
            let keys = ctx.runtime.block_on(EabKeys::open(hsm)).context("the token's sealing key")?;
            let (hmac, sealed) = ctx.runtime.block_on(keys.generate(&key_id))?;
            ctx.runtime.block_on(ctx.store.create_eab(&key_id, &group, &sealed, &actor))?;
            let hmac = castellan_acme_proto::b64::encode(&*hmac);
            if json {
                println!("{}", serde_json::json!({"key_id": key_id, "hmac_key": hmac, "group": group}));
            } else {
                println!("key id:   {key_id}\nhmac key: {hmac}\ngroup:    {group}");
                println!("(the HMAC key is shown only now; certbot: --eab-kid {key_id} --eab-hmac-key {hmac})");
            }
        }
        EabCommand::List { group, json } => {
            let records = ctx.runtime.block_on(ctx.store.eabs(group.as_deref()))?;
            let rows: Vec<_> = records
                .iter()
                .map(|r| {
                    serde_json::json!({"key_id": r.key_id, "group": r.group_name, "created_at": r.created_at,
                        "used_at": r.used_at, "used_by_account": r.used_by_account})
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for r in records {
                    let used = r.used_by_account.map_or("unused".to_owned(), |a| format!("used by account {a}"));
                    println!("{:<24} {:<16} {used}", r.key_id, r.group_name);
                }
            }
        }
    }
    Ok(())
}

pub fn run_policy(ctx: &Ctx, command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::SetGlobalDeny { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let deny =
                GlobalDeny::from_json(&text).with_context(|| format!("{} is not a valid deny list", file.display()))?;
            ctx.runtime.block_on(ctx.store.set_setting(GLOBAL_DENY_SETTING, deny.to_json(), &ctx.operator().0))?;
            println!("global deny list replaced");
        }
        PolicyCommand::Show => {
            let current = ctx.runtime.block_on(ctx.store.setting(GLOBAL_DENY_SETTING))?;
            println!("{}", current.map_or("{}".to_owned(), |(value, _)| value));
        }
    }
    Ok(())
}
