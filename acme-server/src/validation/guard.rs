//! The SSRF guard: which addresses the VA may connect to.
//!
//! A challenge makes the VA connect wherever the identifier's DNS (or a redirect) points, so without a guard any
//! ACME client could use the CA as a proxy into its own network: the cloud metadata service, loopback admin ports,
//! link-local devices. Every address is checked here after DNS resolution and on every redirect hop, and the caller
//! connects to exactly the address that was checked (never re-resolving), so DNS rebinding between the check and
//! the connection is impossible.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// The address policy: an address is refused if it is in a denied network, or if allowed networks are configured
/// and it is in none of them. Denied wins over allowed, so an operator can allow 10.0.0.0/8 and still deny
/// 10.0.0.1/32.
#[derive(Debug, Clone)]
pub struct AddressGuard {
    allowed: Vec<IpNet>,
    denied: Vec<IpNet>,
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalRule {
    /// The address is in this denied network.
    Denied(IpNet),
    /// Allowed networks are configured and the address is in none of them.
    NotAllowed,
}

/// An address the guard refused, and the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The address as resolved (an IPv4-mapped IPv6 address is shown as resolved, though checked as IPv4).
    pub address: IpAddr,
    pub rule: RefusalRule,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            RefusalRule::Denied(net) => write!(f, "{} is in denied network {net}", self.address),
            RefusalRule::NotAllowed => write!(f, "{} is not in any allowed network", self.address),
        }
    }
}

impl AddressGuard {
    pub fn new(allowed: Vec<IpNet>, denied: Vec<IpNet>) -> Self {
        AddressGuard { allowed, denied }
    }

    /// Checks `address`. On success returns the address to connect to: an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is checked, and connected to, as the IPv4 address it reaches, so a mapped address cannot
    /// slip past IPv4 rules such as 127.0.0.0/8 or 169.254.0.0/16.
    pub fn check(&self, address: IpAddr) -> Result<IpAddr, Refusal> {
        let effective = canonical(address);
        if let Some(net) = self.denied.iter().find(|net| net.contains(&effective)) {
            return Err(Refusal { address, rule: RefusalRule::Denied(*net) });
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|net| net.contains(&effective)) {
            return Err(Refusal { address, rule: RefusalRule::NotAllowed });
        }
        Ok(effective)
    }
}

/// The address a connection to `address` actually reaches.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::ValidationConfig;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn default_guard() -> AddressGuard {
        AddressGuard::new(vec![], ValidationConfig::default_denied_networks())
    }

    #[test]
    fn default_denies_loopback_link_local_metadata_and_friends() {
        let guard = default_guard();
        for (addr, rule) in [
            ("127.0.0.1", "127.0.0.0/8"),
            ("127.8.9.10", "127.0.0.0/8"),
            ("::1", "::1/128"),
            ("169.254.169.254", "169.254.0.0/16"),
            ("fe80::1", "fe80::/10"),
            ("fd00:ec2::254", "fd00:ec2::254/128"),
            ("0.0.0.0", "0.0.0.0/8"),
            ("::", "::/128"),
            ("224.0.0.1", "224.0.0.0/4"),
            ("ff02::1", "ff00::/8"),
            ("255.255.255.255", "255.255.255.255/32"),
        ] {
            let refusal = guard.check(ip(addr)).unwrap_err();
            assert_eq!(refusal, Refusal { address: ip(addr), rule: RefusalRule::Denied(net(rule)) }, "{addr}");
            assert_eq!(refusal.to_string(), format!("{addr} is in denied network {rule}"));
        }
    }

    #[test]
    fn default_allows_private_and_public_addresses() {
        // An internal CA validates names in RFC 1918 and ULA space; only the default-denied ranges are refused.
        let guard = default_guard();
        for addr in ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "8.8.8.8", "fd12::1", "2001:db8::1"] {
            assert_eq!(guard.check(ip(addr)), Ok(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_checked_as_ipv4() {
        let guard = default_guard();
        let refusal = guard.check(ip("::ffff:127.0.0.1")).unwrap_err();
        assert_eq!(refusal.rule, RefusalRule::Denied(net("127.0.0.0/8")));
        assert_eq!(refusal.to_string(), "::ffff:127.0.0.1 is in denied network 127.0.0.0/8");
        let refusal = guard.check(ip("::ffff:169.254.169.254")).unwrap_err();
        assert_eq!(refusal.rule, RefusalRule::Denied(net("169.254.0.0/16")));
        // Allowed mapped addresses are connected to as the IPv4 address they reach.
        assert_eq!(guard.check(ip("::ffff:10.0.0.1")), Ok(ip("10.0.0.1")));
        // And an IPv4 allow rule admits the mapped form.
        let guard = AddressGuard::new(vec![net("10.0.0.0/8")], vec![]);
        assert_eq!(guard.check(ip("::ffff:10.9.9.9")), Ok(ip("10.9.9.9")));
    }

    #[test]
    fn allowed_networks_restrict_and_denied_wins() {
        let guard = AddressGuard::new(vec![net("10.0.0.0/8"), net("fd00::/8")], vec![net("10.0.0.1/32")]);
        assert_eq!(guard.check(ip("10.2.3.4")), Ok(ip("10.2.3.4")));
        assert_eq!(guard.check(ip("fd00::5")), Ok(ip("fd00::5")));
        let refusal = guard.check(ip("192.168.0.1")).unwrap_err();
        assert_eq!(refusal.rule, RefusalRule::NotAllowed);
        assert_eq!(refusal.to_string(), "192.168.0.1 is not in any allowed network");
        let refusal = guard.check(ip("10.0.0.1")).unwrap_err();
        assert_eq!(refusal.rule, RefusalRule::Denied(net("10.0.0.1/32")));
    }

    #[test]
    fn empty_policy_allows_everything() {
        let guard = AddressGuard::new(vec![], vec![]);
        assert_eq!(guard.check(ip("127.0.0.1")), Ok(ip("127.0.0.1")));
        assert_eq!(guard.check(ip("::1")), Ok(ip("::1")));
    }
}
