//! `castellan admin …`: what the admin API cannot do for itself. `bootstrap-token` creates the first API token on
//! the store directly (the API needs a token to create one), and only while no unrevoked token exists.

use anyhow::{Result, bail};
use castellan_store::admin::TokenScope;
use clap::Subcommand;

use crate::Ctx;

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
}

pub fn run(ctx: &Ctx, command: AdminCommand) -> Result<()> {
    match command {
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
