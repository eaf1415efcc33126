//! DNS name patterns: `name.example` (exactly that name), `.name.example` (every name below it) and, in allow
//! lists, `*.name.example` (exactly that wildcard).

use crate::PolicyError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsPattern {
    Exact(String),
    /// Every name strictly below this one.
    Subtree(String),
}

impl DnsPattern {
    pub fn parse(text: &str) -> Result<DnsPattern, PolicyError> {
        let bad = |why: &str| PolicyError::DnsPattern { pattern: text.to_owned(), why: why.to_owned() };
        if text == "." {
            // The root's subtree: every name. For a default group that may have anything.
            return Ok(DnsPattern::Subtree(String::new()));
        }
        if text != text.to_ascii_lowercase() {
            return Err(bad("patterns are lower-case"));
        }
        let (subtree, name) = match text.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let labels = name.strip_prefix("*.").unwrap_or(name);
        if subtree && name.starts_with("*.") {
            return Err(bad("a subtree (leading dot) cannot also be a wildcard"));
        }
        if name.is_empty() || name.len() > 253 || name.ends_with('.') {
            return Err(bad("expected a name such as corp.example, .corp.example or *.corp.example"));
        }
        for label in labels.split('.') {
            let ok_chars = label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if label.is_empty() || label.len() > 63 || !ok_chars || label.starts_with('-') || label.ends_with('-') {
                return Err(bad("each label is 1-63 letters, digits or inner hyphens"));
            }
        }
        Ok(if subtree { DnsPattern::Subtree(name.to_owned()) } else { DnsPattern::Exact(name.to_owned()) })
    }

    pub fn text(&self) -> String {
        match self {
            DnsPattern::Exact(name) => name.clone(),
            DnsPattern::Subtree(name) if name.is_empty() => ".".to_owned(),
            DnsPattern::Subtree(name) => format!(".{name}"),
        }
    }
}

/// `name` equals `base` or lies below it (every name lies below the root, "").
fn at_or_below(name: &str, base: &str) -> bool {
    base.is_empty() || name == base || name.strip_suffix(base).is_some_and(|head| head.ends_with('.'))
}

/// `name` lies strictly below `base`.
fn below(name: &str, base: &str) -> bool {
    name != base && at_or_below(name, base)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsPatterns(pub Vec<DnsPattern>);

impl DnsPatterns {
    /// The first pattern that allows `name` (a wildcard "*.x" needs "*.x" itself or a subtree covering all of x's
    /// children).
    pub fn allowing(&self, name: &str) -> Option<String> {
        let found = match name.strip_prefix("*.") {
            Some(parent) => self.0.iter().find(|p| match p {
                DnsPattern::Exact(exact) => exact == name,
                DnsPattern::Subtree(base) => at_or_below(parent, base),
            }),
            None => self.0.iter().find(|p| match p {
                DnsPattern::Exact(exact) => exact == name,
                DnsPattern::Subtree(base) => below(name, base),
            }),
        };
        found.map(DnsPattern::text)
    }

    /// The first pattern that refuses `name`; a wildcard is refused when any name it matches would be.
    pub fn denying(&self, name: &str) -> Option<String> {
        let found = match name.strip_prefix("*.") {
            Some(parent) => self.0.iter().find(|p| match p {
                // "*.x" matches "a.x": an exact deny of any child of x, or of "*.x" itself, refuses it.
                DnsPattern::Exact(exact) => {
                    exact == name || exact.split_once('.').is_some_and(|(_, rest)| rest == parent)
                }
                DnsPattern::Subtree(base) => at_or_below(parent, base),
            }),
            None => self.0.iter().find(|p| match p {
                DnsPattern::Exact(exact) => exact == name,
                DnsPattern::Subtree(base) => below(name, base),
            }),
        };
        found.map(DnsPattern::text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> DnsPatterns {
        DnsPatterns(list.iter().map(|p| DnsPattern::parse(p).unwrap()).collect())
    }

    #[test]
    fn exact_and_subtree_allow() {
        let allow = patterns(&["api.corp.example", ".payments.corp.example", "*.web.corp.example"]);
        assert_eq!(allow.allowing("api.corp.example").as_deref(), Some("api.corp.example"));
        assert_eq!(allow.allowing("x.api.corp.example"), None, "exact is exact");
        assert_eq!(allow.allowing("a.payments.corp.example").as_deref(), Some(".payments.corp.example"));
        assert_eq!(allow.allowing("a.b.payments.corp.example").as_deref(), Some(".payments.corp.example"));
        assert_eq!(allow.allowing("payments.corp.example"), None, "a subtree is below its apex, not the apex");
        assert_eq!(allow.allowing("evilpayments.corp.example"), None, "label boundaries count");
        assert_eq!(allow.allowing("*.payments.corp.example").as_deref(), Some(".payments.corp.example"));
        assert_eq!(allow.allowing("*.web.corp.example").as_deref(), Some("*.web.corp.example"));
        assert_eq!(allow.allowing("*.corp.example"), None);
    }

    #[test]
    fn deny_refuses_wildcards_that_would_cover_a_denied_name() {
        let deny = patterns(&["secret.corp.example", ".prod.corp.example"]);
        assert!(deny.denying("secret.corp.example").is_some());
        assert!(deny.denying("*.corp.example").is_some(), "*.corp.example would match secret.corp.example");
        assert!(deny.denying("*.prod.corp.example").is_some());
        assert!(deny.denying("*.x.prod.corp.example").is_some());
        assert!(deny.denying("a.prod.corp.example").is_some());
        assert!(deny.denying("prod.corp.example").is_none());
        assert!(deny.denying("*.other.example").is_none());
        assert!(deny.denying("api.corp.example").is_none());
    }

    #[test]
    fn the_root_subtree_allows_every_name() {
        let all = patterns(&["."]);
        assert_eq!(all.allowing("a.example").as_deref(), Some("."));
        assert_eq!(all.allowing("*.example").as_deref(), Some("."));
        assert_eq!(all.allowing("localhost").as_deref(), Some("."));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "Upper.example", ".*.corp.example", "a..b", "-a.example", "a.example.", "a_b.example", "*"] {
            assert!(DnsPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
