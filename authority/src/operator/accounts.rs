//! ACME accounts as operators see them: listed by group, and deactivated (as a client can itself, RFC 8555 §7.3.6).

use super::views::{AccountPage, AccountView};
use super::{Operator, page_limit};
use crate::actor::Actor;
use crate::error::Result;
use castellan_store::{AccountId, GroupId};
use std::collections::HashMap;

impl Operator {
    async fn group_names(&self) -> Result<HashMap<GroupId, String>> {
        Ok(self.store.groups().await?.into_iter().map(|g| (g.id, g.name)).collect())
    }

    /// Up to `limit` accounts (of `group`, or all) with ids above `after`.
    pub async fn accounts(
        &self,
        group: Option<&str>,
        after: Option<AccountId>,
        limit: Option<i64>,
    ) -> Result<AccountPage> {
        let limit = page_limit(limit)?;
        let accounts = self.store.accounts(group, after, limit).await?;
        let groups = self.group_names().await?;
        let next_after = if accounts.len() as i64 == limit { accounts.last().map(|a| a.id) } else { None };
        Ok(AccountPage { accounts: accounts.iter().map(|a| AccountView::of(a, &groups)).collect(), next_after })
    }

    /// The account can do nothing more; its pending authorizations and orders are closed.
    pub async fn deactivate_account(&self, id: AccountId, actor: &Actor) -> Result<AccountView> {
        let account = self.store.deactivate_account(id, actor.as_str()).await?;
        Ok(AccountView::of(&account, &self.group_names().await?))
    }
}
