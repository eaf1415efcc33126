//! Rate limits (GCRA buckets in the store, so replicas on one PostgreSQL enforce one limit): new orders per
//! account and per group, new accounts per client address, and failed validations per registered domain.

use castellan_store::rate_limits::Decision;
use std::net::IpAddr;

use super::Ra;
use super::identifiers::OrderIdentifier;
use crate::config::LimitSetting;
use crate::problem::{AcmeError, ProblemType};

fn limited(what: &str, setting: LimitSetting, retry_after: std::time::Duration) -> AcmeError {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    AcmeError::new(
        ProblemType::RateLimited,
        format!("{what}: limit of {} per {} s reached; retry after {seconds} s", setting.count, setting.period_secs),
    )
    .with_retry_after(seconds.max(1))
}

/// The registered domain a failed validation counts against: the last two labels (a private CA has no public
/// suffix list to consult), or the address itself.
pub fn registered_domain(identifier: &OrderIdentifier) -> String {
    match identifier {
        OrderIdentifier::Ip(ip) => ip.to_string(),
        OrderIdentifier::Dns { name, .. } => {
            let labels: Vec<&str> = name.rsplitn(3, '.').collect();
            match labels.as_slice() {
                [tld, second, ..] => format!("{second}.{tld}"),
                _ => name.clone(),
            }
        }
    }
}

impl Ra {
    async fn take(&self, bucket: String, setting: Option<LimitSetting>, what: &str) -> Result<(), AcmeError> {
        let Some(setting) = setting else { return Ok(()) };
        match self.store().rate_limit(&bucket, &setting.limit(), self.authority.clock().unix_millis()).await? {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after } => Err(limited(what, setting, retry_after)),
        }
    }

    /// Charged before an order is created.
    pub async fn limit_new_order(&self, account_id: castellan_store::AccountId, group: &str) -> Result<(), AcmeError> {
        let limits = &self.config.rate_limits;
        self.take(format!("orders:account:{account_id}"), limits.new_orders_per_account, "new orders for this account")
            .await?;
        self.take(
            format!("orders:group:{group}"),
            limits.new_orders_per_group,
            &format!("new orders for group {group:?}"),
        )
        .await
    }

    pub async fn limit_new_account(&self, client: Option<IpAddr>) -> Result<(), AcmeError> {
        let Some(client) = client else { return Ok(()) };
        self.take(
            format!("accounts:ip:{client}"),
            self.config.rate_limits.new_accounts_per_ip,
            "new accounts from this address",
        )
        .await
    }

    /// Refuses new orders for a domain whose validations keep failing, without charging anything.
    pub async fn check_failed_validations(&self, identifiers: &[OrderIdentifier]) -> Result<(), AcmeError> {
        let Some(setting) = self.config.rate_limits.failed_validations_per_domain else { return Ok(()) };
        for identifier in identifiers {
            let domain = registered_domain(identifier);
            let bucket = format!("failed:domain:{domain}");
            if let Decision::Limited { retry_after } =
                self.store().rate_limit_peek(&bucket, &setting.limit(), self.authority.clock().unix_millis()).await?
            {
                return Err(limited(&format!("failed validations for {domain}"), setting, retry_after)
                    .with_identifier(identifier.to_wire()));
            }
        }
        Ok(())
    }

    /// Counts a failed validation against the identifier's registered domain.
    pub async fn charge_failed_validation(&self, identifier: &OrderIdentifier) {
        let Some(setting) = self.config.rate_limits.failed_validations_per_domain else { return };
        let bucket = format!("failed:domain:{}", registered_domain(identifier));
        if let Err(e) =
            self.store().rate_limit_charge(&bucket, &setting.limit(), self.authority.clock().unix_millis()).await
        {
            tracing::warn!(error = %e, "charging a failed validation failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains_are_the_last_two_labels() {
        let dns = |name: &str| OrderIdentifier::Dns { name: name.into(), wildcard: false };
        assert_eq!(registered_domain(&dns("a.b.corp.example")), "corp.example");
        assert_eq!(registered_domain(&dns("corp.example")), "corp.example");
        assert_eq!(registered_domain(&dns("localhost")), "localhost");
        assert_eq!(registered_domain(&OrderIdentifier::Ip("10.0.0.1".parse().unwrap())), "10.0.0.1");
    }
}
