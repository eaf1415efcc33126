//! The admin API's own tokens. A token's plaintext is in the answer that created it and never again; the store
//! keeps its SHA-256.

use super::Operator;
use super::views::{TokenList, TokenView};
use crate::actor::Actor;
use crate::error::{AuthorityError, Result};
use castellan_store::TokenId;
use castellan_store::admin::TokenScope;

/// "read" or "admin"; "read", the least a token can do, when not said.
fn scope(text: Option<&str>) -> Result<TokenScope> {
    match text {
        None => Ok(TokenScope::Read),
        Some(s) => TokenScope::parse(s)
            .ok_or_else(|| AuthorityError::invalid(format!("scope {s:?} is neither \"read\" nor \"admin\""))),
    }
}

impl Operator {
    pub async fn create_token(&self, name: &str, scope_text: Option<&str>, actor: &Actor) -> Result<TokenView> {
        let (token, plaintext) = self.store.create_token(name, scope(scope_text)?, actor.as_str()).await?;
        Ok(TokenView { token: Some(plaintext), ..TokenView::of(&token) })
    }

    /// The first token, made where the database is: refused while any unrevoked token exists (more are created
    /// through the API, by an admin).
    pub async fn bootstrap_token(&self, name: &str, scope_text: Option<&str>, actor: &Actor) -> Result<TokenView> {
        let scope = match scope_text {
            None => TokenScope::Admin,
            Some(text) => self::scope(Some(text))?,
        };
        match self.store.bootstrap_token(name, scope, actor.as_str()).await? {
            Some((token, plaintext)) => Ok(TokenView { token: Some(plaintext), ..TokenView::of(&token) }),
            None => Err(AuthorityError::Conflict(
                "an unrevoked API token exists already; create more with `castellan token create` \
                 (POST /admin/tokens)"
                    .into(),
            )),
        }
    }

    pub async fn tokens(&self) -> Result<TokenList> {
        Ok(TokenList { tokens: self.store.tokens().await?.iter().map(TokenView::of).collect() })
    }

    /// Revokes a token (the caller's own included): it authenticates nothing from now on.
    pub async fn revoke_token(&self, id: TokenId, actor: &Actor) -> Result<TokenView> {
        Ok(TokenView::of(&self.store.revoke_token(id, actor.as_str()).await?))
    }
}
