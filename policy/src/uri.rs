//! URI SAN prefixes: SPIFFE IDs (`spiffe://trust-domain/path`), matched on whole path segments.

use crate::PolicyError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriPrefix {
    trust_domain: String,
    /// Path segments the URI must start with.
    segments: Vec<String>,
}

impl UriPrefix {
    pub fn parse(text: &str) -> Result<UriPrefix, PolicyError> {
        let bad = |why: &str| PolicyError::UriPrefix { prefix: text.to_owned(), why: why.to_owned() };
        let rest = text.strip_prefix("spiffe://").ok_or_else(|| bad("only spiffe:// URIs are issued"))?;
        let (trust_domain, path) = rest.split_once('/').unwrap_or((rest, ""));
        let domain_ok = !trust_domain.is_empty()
            && trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'));
        if !domain_ok {
            return Err(bad("the trust domain is lower-case letters, digits, '.', '-' and '_'"));
        }
        let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if segments.iter().any(|s| s == "." || s == "..") || text.contains(['?', '#']) {
            return Err(bad("no '.', '..', query or fragment"));
        }
        Ok(UriPrefix { trust_domain: trust_domain.to_owned(), segments })
    }

    pub fn text(&self) -> String {
        let mut text = format!("spiffe://{}/", self.trust_domain);
        for segment in &self.segments {
            text.push_str(segment);
            text.push('/');
        }
        text
    }

    pub fn matches(&self, uri: &str) -> bool {
        let Some(rest) = uri.strip_prefix("spiffe://") else { return false };
        let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
        if domain != self.trust_domain {
            return false;
        }
        let segments: Vec<&str> = path.split('/').collect();
        segments.len() >= self.segments.len() && self.segments.iter().zip(&segments).all(|(want, got)| want == got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments_in_one_trust_domain() {
        let prefix = UriPrefix::parse("spiffe://corp.example/ns/payments/").unwrap();
        assert!(prefix.matches("spiffe://corp.example/ns/payments/sa/api"));
        assert!(prefix.matches("spiffe://corp.example/ns/payments"));
        assert!(!prefix.matches("spiffe://corp.example/ns/payments-evil/sa/api"));
        assert!(!prefix.matches("spiffe://other.example/ns/payments/sa/api"));
        assert!(!prefix.matches("https://corp.example/ns/payments/x"));
        let domain = UriPrefix::parse("spiffe://corp.example").unwrap();
        assert!(domain.matches("spiffe://corp.example/anything"));
        for bad in
            ["https://corp.example/", "spiffe://", "spiffe://Corp/", "spiffe://corp.example/../x", "spiffe://c/x?y"]
        {
            assert!(UriPrefix::parse(bad).is_err(), "{bad}");
        }
    }
}
