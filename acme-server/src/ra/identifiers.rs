//! Identifiers as clients send them in newOrder, checked and put in one canonical form; and the comparison of a
//! CSR's names with the order's identifiers at finalization.

use castellan_acme_proto::types::{Identifier, IdentifierType};
use castellan_ca::SanName;
use castellan_store::acme::StoredIdentifier;
use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::problem::{AcmeError, ProblemType, identifier_refusals, subproblem};

/// The most identifiers one order may carry (Boulder's limit too).
pub const MAX_IDENTIFIERS: usize = 100;

/// One identifier of an order, in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrderIdentifier {
    /// Lower-case, no trailing dot; `wildcard` when the client asked for "*.name".
    Dns {
        name: String,
        wildcard: bool,
    },
    Ip(IpAddr),
}

impl OrderIdentifier {
    /// The identifier as it appears in the order (with "*." for a wildcard).
    pub fn to_wire(&self) -> Identifier {
        match self {
            OrderIdentifier::Dns { name, wildcard: true } => Identifier::dns(format!("*.{name}")),
            OrderIdentifier::Dns { name, wildcard: false } => Identifier::dns(name.clone()),
            OrderIdentifier::Ip(ip) => Identifier::ip(ip.to_string()),
        }
    }

    /// As the order stores it (the wire form).
    pub fn to_stored(&self) -> StoredIdentifier {
        let wire = self.to_wire();
        StoredIdentifier { kind: wire.kind.as_str().to_owned(), value: wire.value }
    }

    /// What an authorization is for: the name without "*.", and whether it is for a wildcard.
    pub fn authorization_target(&self) -> (StoredIdentifier, bool) {
        match self {
            OrderIdentifier::Dns { name, wildcard } => {
                (StoredIdentifier { kind: "dns".into(), value: name.clone() }, *wildcard)
            }
            OrderIdentifier::Ip(ip) => (StoredIdentifier { kind: "ip".into(), value: ip.to_string() }, false),
        }
    }

    pub fn from_stored(stored: &StoredIdentifier) -> Option<OrderIdentifier> {
        let wire = Identifier {
            kind: match stored.kind.as_str() {
                "dns" => IdentifierType::Dns,
                "ip" => IdentifierType::Ip,
                other => IdentifierType::Other(other.to_owned()),
            },
            value: stored.value.clone(),
        };
        parse_identifier(&wire).ok()
    }
}

/// Why one identifier was refused.
fn parse_identifier(identifier: &Identifier) -> Result<OrderIdentifier, (ProblemType, String)> {
    match &identifier.kind {
        IdentifierType::Dns => {
            let value = identifier.value.to_ascii_lowercase();
            if value.parse::<IpAddr>().is_ok() {
                return Err((ProblemType::Malformed, format!("{value:?} is an IP address: use an \"ip\" identifier")));
            }
            castellan_ca::names::validate_dns_name(&value).map_err(|e| {
                (ProblemType::RejectedIdentifier, format!("{:?} is not a valid DNS name: {e}", identifier.value))
            })?;
            Ok(match value.strip_prefix("*.") {
                Some(base) => OrderIdentifier::Dns { name: base.to_owned(), wildcard: true },
                None => OrderIdentifier::Dns { name: value, wildcard: false },
            })
        }
        IdentifierType::Ip => {
            let ip: IpAddr = identifier.value.parse().map_err(|_| {
                (ProblemType::Malformed, format!("{:?} is not an IP address (RFC 8738)", identifier.value))
            })?;
            // RFC 8738 §3: the textual form; we insist on the canonical one so "::ffff:10.0.0.1"-style aliases
            // cannot make two orders for one address look different.
            if ip.to_string() != identifier.value {
                return Err((
                    ProblemType::Malformed,
                    format!("{:?} is not in canonical form: use {ip}", identifier.value),
                ));
            }
            Ok(OrderIdentifier::Ip(ip))
        }
        IdentifierType::Other(kind) => {
            Err((ProblemType::UnsupportedIdentifier, format!("identifier type {kind:?} is not supported (dns, ip)")))
        }
    }
}

/// Checks and canonicalizes newOrder's identifiers, sorted and without duplicates. Every refused identifier is
/// reported, each as a subproblem naming it.
pub fn parse_order_identifiers(identifiers: &[Identifier]) -> Result<Vec<OrderIdentifier>, AcmeError> {
    if identifiers.is_empty() {
        return Err(AcmeError::malformed("the order names no identifiers"));
    }
    if identifiers.len() > MAX_IDENTIFIERS {
        return Err(AcmeError::new(
            ProblemType::RejectedIdentifier,
            format!("an order may name at most {MAX_IDENTIFIERS} identifiers, not {}", identifiers.len()),
        ));
    }
    let mut parsed = BTreeSet::new();
    let mut problems = Vec::new();
    for identifier in identifiers {
        match parse_identifier(identifier) {
            Ok(id) => {
                parsed.insert(id);
            }
            Err((kind, detail)) => problems.push((kind, subproblem(kind, detail, identifier.clone()))),
        }
    }
    match identifier_refusals(problems, "were refused") {
        Some(error) => Err(error),
        None => Ok(parsed.into_iter().collect()),
    }
}

/// RFC 8555 §7.4: the CSR must name exactly the order's identifiers. Returns a badCSR error saying what differs.
pub fn check_csr_names(order: &[OrderIdentifier], csr_names: &[SanName]) -> Result<(), AcmeError> {
    let wanted: BTreeSet<String> = order.iter().map(|i| i.to_wire().value).collect();
    let mut got = BTreeSet::new();
    for name in csr_names {
        match name {
            SanName::Dns(dns) => got.insert(dns.to_ascii_lowercase()),
            SanName::Ip(ip) => got.insert(ip.to_string()),
            SanName::Uri(uri) => {
                return Err(AcmeError::new(
                    ProblemType::BadCsr,
                    format!("the CSR asks for URI {uri:?}; ACME orders certify DNS names and IP addresses only"),
                ));
            }
        };
    }
    if wanted == got {
        return Ok(());
    }
    let extra: Vec<_> = got.difference(&wanted).cloned().collect();
    let missing: Vec<_> = wanted.difference(&got).cloned().collect();
    let mut detail = String::from("the CSR's names differ from the order's identifiers:");
    if !extra.is_empty() {
        detail.push_str(&format!(" not in the order: {}", extra.join(", ")));
    }
    if !missing.is_empty() {
        if !extra.is_empty() {
            detail.push(';');
        }
        detail.push_str(&format!(" missing from the CSR: {}", missing.join(", ")));
    }
    Err(AcmeError::new(ProblemType::BadCsr, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(v: &str) -> Identifier {
        Identifier::dns(v)
    }

    #[test]
    fn identifiers_are_canonicalized_sorted_and_deduplicated() {
        let parsed = parse_order_identifiers(&[
            dns("B.example"),
            dns("a.example"),
            dns("b.example"),
            Identifier::ip("10.0.0.1"),
            dns("*.corp.example"),
        ])
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                OrderIdentifier::Dns { name: "a.example".into(), wildcard: false },
                OrderIdentifier::Dns { name: "b.example".into(), wildcard: false },
                OrderIdentifier::Dns { name: "corp.example".into(), wildcard: true },
                OrderIdentifier::Ip("10.0.0.1".parse().unwrap()),
            ]
        );
        assert_eq!(parsed[2].to_wire(), dns("*.corp.example"));
        assert_eq!(
            parsed[2].authorization_target(),
            (StoredIdentifier { kind: "dns".into(), value: "corp.example".into() }, true)
        );
    }

    #[test]
    fn bad_identifiers_are_named_in_subproblems() {
        let e = parse_order_identifiers(&[dns("ok.example"), dns("bad..example")]).unwrap_err();
        assert_eq!(e.kind_suffix(), "rejectedIdentifier");
        let subs = e.problem.subproblems.unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].identifier, Some(dns("bad..example")));

        let other = Identifier { kind: IdentifierType::Other("email".into()), value: "a@b".into() };
        let e = parse_order_identifiers(&[other, dns("a.*.example")]).unwrap_err();
        assert_eq!(e.kind_suffix(), "compound");
        assert_eq!(e.problem.subproblems.unwrap().len(), 2);

        assert_eq!(parse_order_identifiers(&[]).unwrap_err().kind_suffix(), "malformed");
        assert_eq!(parse_order_identifiers(&[Identifier::ip("010.0.0.1")]).unwrap_err().kind_suffix(), "malformed");
        assert_eq!(
            parse_order_identifiers(&[Identifier::ip("::FFFF:1.2.3.4")]).unwrap_err().kind_suffix(),
            "malformed"
        );
        assert_eq!(parse_order_identifiers(&[dns("10.0.0.1")]).unwrap_err().kind_suffix(), "malformed");
        let many: Vec<_> = (0..101).map(|i| dns(&format!("n{i}.example"))).collect();
        assert_eq!(parse_order_identifiers(&many).unwrap_err().kind_suffix(), "rejectedIdentifier");
    }

    #[test]
    fn csr_names_must_equal_the_order() {
        let order = parse_order_identifiers(&[dns("a.example"), dns("*.corp.example"), Identifier::ip("::1")]).unwrap();
        let exact = [
            SanName::Dns("*.corp.example".into()),
            SanName::Dns("A.example".into()),
            SanName::Ip("::1".parse().unwrap()),
        ];
        check_csr_names(&order, &exact).unwrap();
        let extra = [exact[0].clone(), exact[1].clone(), exact[2].clone(), SanName::Dns("c.example".into())];
        let e = check_csr_names(&order, &extra).unwrap_err();
        assert_eq!(e.kind_suffix(), "badCSR");
        assert!(e.problem.detail.as_deref().unwrap().contains("c.example"));
        let e = check_csr_names(&order, &exact[..2]).unwrap_err();
        assert!(e.problem.detail.as_deref().unwrap().contains("missing from the CSR: ::1"));
        let uri = [SanName::Uri("spiffe://x/y".into())];
        assert_eq!(check_csr_names(&order, &uri).unwrap_err().kind_suffix(), "badCSR");
    }
}
