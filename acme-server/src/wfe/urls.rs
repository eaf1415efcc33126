//! The server's resource URLs: built for responses, parsed back from "kid" and ARI requests.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;

use super::Wfe;
use crate::problem::AcmeError;
use castellan_store::{AccountId, AuthorizationId, CertificateId, ChallengeId, OrderId};

/// Where ACME lives under the server's origin.
pub const PREFIX: &str = "/acme";

/// The origin clients reach us at ("https://ca.example:8443"), without a trailing slash.
#[derive(Clone, Debug)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    fn at(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.0)
    }
    pub fn directory(&self) -> String {
        self.at("/directory")
    }
    pub fn new_nonce(&self) -> String {
        self.at("/new-nonce")
    }
    pub fn new_account(&self) -> String {
        self.at("/new-account")
    }
    pub fn new_order(&self) -> String {
        self.at("/new-order")
    }
    pub fn revoke_cert(&self) -> String {
        self.at("/revoke-cert")
    }
    pub fn key_change(&self) -> String {
        self.at("/key-change")
    }
    pub fn renewal_info(&self) -> String {
        self.at("/renewal-info")
    }
    pub fn account(&self, id: AccountId) -> String {
        self.at(&format!("/acct/{id}"))
    }
    pub fn account_orders(&self, id: AccountId) -> String {
        self.at(&format!("/acct/{id}/orders"))
    }
    pub fn order(&self, id: OrderId) -> String {
        self.at(&format!("/order/{id}"))
    }
    pub fn finalize(&self, id: OrderId) -> String {
        self.at(&format!("/order/{id}/finalize"))
    }
    pub fn authorization(&self, id: AuthorizationId) -> String {
        self.at(&format!("/authz/{id}"))
    }
    pub fn challenge(&self, id: ChallengeId) -> String {
        self.at(&format!("/chall/{id}"))
    }
    pub fn certificate(&self, id: CertificateId) -> String {
        self.at(&format!("/cert/{id}"))
    }

    /// The account id a "kid" names, if it is one of our account URLs.
    pub fn account_id(&self, kid: &str) -> Option<AccountId> {
        let id = kid.strip_prefix(&self.at("/acct/"))?;
        // Only canonical decimal: "+1", "01" and " 1" are other strings than the URL we handed out.
        if id.is_empty() || id.starts_with('0') || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok()
    }
}

/// A host as clients may send it: a DNS name, IPv4 or bracketed IPv6, with an optional port. Anything else would
/// end up inside Location and Link headers, so it is refused.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 262
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

impl FromRequestParts<Arc<Wfe>> for BaseUrl {
    type Rejection = AcmeError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Wfe>) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.config.external_url {
            return Ok(BaseUrl(url.trim_end_matches('/').to_owned()));
        }
        // HTTP/2 carries the authority in the URI, HTTP/1.1 in Host.
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| parts.headers.get(axum::http::header::HOST)?.to_str().ok().map(str::to_owned))
            .ok_or_else(|| AcmeError::malformed("the request names no host"))?;
        if !plausible_host(&host) {
            return Err(AcmeError::malformed("the request's Host is not a valid host name"));
        }
        Ok(BaseUrl(format!("https://{}", host.to_ascii_lowercase())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_parse_only_from_our_canonical_urls() {
        let base = BaseUrl("https://ca.test:8443".into());
        assert_eq!(base.account_id(&base.account(AccountId(42))), Some(AccountId(42)));
        for kid in [
            "https://ca.test:8443/acme/acct/",
            "https://ca.test:8443/acme/acct/042",
            "https://ca.test:8443/acme/acct/+4",
            "https://ca.test:8443/acme/acct/4/orders",
            "https://other.test/acme/acct/4",
            "https://ca.test:8443/acme/acct/99999999999999999999999",
        ] {
            assert_eq!(base.account_id(kid), None, "{kid}");
        }
    }

    #[test]
    fn hosts_that_could_inject_headers_are_refused() {
        assert!(plausible_host("ca.test:8443"));
        assert!(plausible_host("[::1]:8443"));
        assert!(!plausible_host("ca.test\r\nX: y"));
        assert!(!plausible_host("ca.test/path"));
        assert!(!plausible_host(""));
    }
}
