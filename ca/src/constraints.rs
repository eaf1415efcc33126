//! The issuing certificate's own name constraints, applied before issuance.
//!
//! Clients reject a leaf that violates its issuer's name constraints (RFC 5280 §4.2.1.10), so issuing one would
//! only produce a certificate that fails in production. We refuse it up front, naming the identifier.

use crate::csr::SanName;
use crate::error::CaError;
use const_oid::AssociatedOid;
use der::Decode;
use std::net::IpAddr;
use x509_cert::Certificate;
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
use x509_cert::ext::pkix::name::GeneralName;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Subtrees {
    dns: Vec<String>,
    uri_hosts: Vec<String>,
    /// (network, mask) octets, both 4 or 16 long.
    ip: Vec<(Vec<u8>, Vec<u8>)>,
    /// An iPAddress entry was neither 8 nor 32 octets. We cannot tell what range it meant, so it may not be
    /// dropped: leaving it out of a permitted list could leave IP addresses unconstrained.
    ip_malformed: bool,
    /// A directoryName entry (the subject DN), which `check` does not evaluate.
    directory_name: bool,
}

/// The permitted and excluded subtrees of an issuing certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuerConstraints {
    permitted: Subtrees,
    excluded: Subtrees,
    /// Which name types the permitted subtrees speak about; a type they don't mention is unconstrained.
    permits_dns: bool,
    permits_ip: bool,
    permits_uri: bool,
}

impl IssuerConstraints {
    /// None when the certificate has no nameConstraints extension.
    pub fn from_certificate(cert: &Certificate) -> Result<Option<Self>, CaError> {
        let Some(extension) =
            cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == NameConstraints::OID)
        else {
            return Ok(None);
        };
        let constraints = NameConstraints::from_der(extension.extn_value.as_bytes())?;
        Ok(Some(Self::from_name_constraints(&constraints)))
    }

    fn from_name_constraints(constraints: &NameConstraints) -> Self {
        let permitted = subtrees(constraints.permitted_subtrees.as_deref().unwrap_or_default());
        let excluded = subtrees(constraints.excluded_subtrees.as_deref().unwrap_or_default());
        IssuerConstraints {
            permits_dns: !permitted.dns.is_empty(),
            permits_ip: !permitted.ip.is_empty() || permitted.ip_malformed,
            permits_uri: !permitted.uri_hosts.is_empty(),
            permitted,
            excluded,
        }
    }

    /// Refuses a name outside the permitted subtrees of its type or inside an excluded one.
    ///
    /// Fails closed on what it cannot judge: a malformed iPAddress entry, permitted or excluded, refuses every IP
    /// address; any directoryName subtree refuses issuance altogether, because the leaf's subject DN would have to
    /// be checked against it (RFC 5280 §4.2.1.10) and Castellan does not implement DN matching.
    pub fn check(&self, name: &SanName) -> Result<(), CaError> {
        if self.permitted.directory_name || self.excluded.directory_name {
            return Err(CaError::UnsupportedNameConstraint { kind: "directoryName" });
        }
        let allowed = match name {
            SanName::Dns(dns) => {
                // A wildcard covers names under its base: constrain the base...
                let (base, wildcard) = match dns.strip_prefix("*.") {
                    Some(base) => (base, true),
                    None => (dns.as_str(), false),
                };
                // ...and, since checking the base says nothing about the names below it, refuse a wildcard when
                // an excluded subtree lies at or under its base ("*.corp.example" would cover
                // "secret.corp.example"). Stricter than needed for an exclusion two labels down, which the
                // wildcard cannot match, but never wrong in the unsafe direction.
                let excluded =
                    |c: &String| dns_within(base, c) || (wildcard && dns_within(c.trim_start_matches('.'), base));
                (!self.permits_dns || self.permitted.dns.iter().any(|c| dns_within(base, c)))
                    && !self.excluded.dns.iter().any(excluded)
            }
            SanName::Ip(ip) => {
                !self.permitted.ip_malformed
                    && !self.excluded.ip_malformed
                    && (!self.permits_ip || self.permitted.ip.iter().any(|(n, m)| ip_within(ip, n, m)))
                    && !self.excluded.ip.iter().any(|(n, m)| ip_within(ip, n, m))
            }
            SanName::Uri(uri) => {
                let host = uri_host(uri);
                (!self.permits_uri || self.permitted.uri_hosts.iter().any(|c| uri_host_within(host, c)))
                    && !self.excluded.uri_hosts.iter().any(|c| uri_host_within(host, c))
            }
        };
        if allowed { Ok(()) } else { Err(CaError::OutsideNameConstraints { name: name.to_string() }) }
    }
}

fn subtrees(list: &[GeneralSubtree]) -> Subtrees {
    let mut out = Subtrees::default();
    for subtree in list {
        match &subtree.base {
            GeneralName::DnsName(d) => out.dns.push(d.as_str().to_ascii_lowercase()),
            GeneralName::UniformResourceIdentifier(u) => out.uri_hosts.push(u.as_str().to_ascii_lowercase()),
            GeneralName::IpAddress(octets) => {
                let bytes = octets.as_bytes();
                if bytes.len() == 8 || bytes.len() == 32 {
                    let (network, mask) = bytes.split_at(bytes.len() / 2);
                    out.ip.push((network.to_vec(), mask.to_vec()));
                } else {
                    out.ip_malformed = true;
                }
            }
            GeneralName::DirectoryName(_) => out.directory_name = true,
            // Other kinds (email, otherName…) constrain names we never issue: no SAN of theirs, and no
            // emailAddress in the subject.
            _ => {}
        }
    }
    out
}

/// RFC 5280: "example.com" covers itself and every subdomain; ".example.com" only subdomains.
fn dns_within(name: &str, constraint: &str) -> bool {
    if constraint.is_empty() {
        return true;
    }
    if let Some(suffix) = constraint.strip_prefix('.') {
        return name.ends_with(constraint) && name.len() > suffix.len() + 1;
    }
    name == constraint || (name.ends_with(constraint) && name[..name.len() - constraint.len()].ends_with('.'))
}

fn ip_within(ip: &IpAddr, network: &[u8], mask: &[u8]) -> bool {
    let octets = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    octets.len() == network.len() && octets.iter().zip(network).zip(mask).all(|((o, n), m)| o & m == n & m)
}

/// The host of a URI ("spiffe://corp.example/ns/x" → "corp.example").
fn uri_host(uri: &str) -> &str {
    let after_scheme = uri.split_once("://").map(|(_, rest)| rest).unwrap_or(uri);
    after_scheme.split(['/', '?', '#']).next().unwrap_or("")
}

/// RFC 5280: a URI constraint is a host ("corp.example", exact) or a domain (".corp.example", subdomains).
fn uri_host_within(host: &str, constraint: &str) -> bool {
    match constraint.strip_prefix('.') {
        Some(_) => host.ends_with(constraint),
        None => host == constraint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraints(permit_dns: &[&str], exclude_dns: &[&str], permit_ip: &[(&[u8], &[u8])]) -> IssuerConstraints {
        let permitted = Subtrees {
            dns: permit_dns.iter().map(|s| s.to_string()).collect(),
            uri_hosts: vec![],
            ip: permit_ip.iter().map(|(n, m)| (n.to_vec(), m.to_vec())).collect(),
            ..Default::default()
        };
        IssuerConstraints {
            permits_dns: !permitted.dns.is_empty(),
            permits_ip: !permitted.ip.is_empty(),
            permits_uri: false,
            permitted,
            excluded: Subtrees { dns: exclude_dns.iter().map(|s| s.to_string()).collect(), ..Default::default() },
        }
    }

    fn dns(s: &str) -> SanName {
        SanName::Dns(s.into())
    }

    #[test]
    fn dns_subtrees_permit_the_domain_and_below_only() {
        let c = constraints(&["corp.example"], &["secret.corp.example"], &[]);
        assert!(c.check(&dns("corp.example")).is_ok());
        assert!(c.check(&dns("a.b.corp.example")).is_ok());
        assert!(c.check(&dns("*.a.corp.example")).is_ok());
        assert!(c.check(&dns("evilcorp.example")).is_err(), "a suffix that is not a label boundary");
        assert!(c.check(&dns("outside.example")).is_err());
        assert!(c.check(&dns("x.secret.corp.example")).is_err(), "excluded wins");
        assert!(
            matches!(c.check(&dns("outside.example")), Err(CaError::OutsideNameConstraints { name }) if name == "DNS:outside.example")
        );
    }

    #[test]
    fn a_wildcard_over_an_excluded_subtree_is_refused() {
        // "*.corp.example" covers "secret.corp.example", though its base "corp.example" is not excluded.
        let c = constraints(&["corp.example"], &["secret.corp.example"], &[]);
        assert!(
            matches!(c.check(&dns("*.corp.example")), Err(CaError::OutsideNameConstraints { name }) if name == "DNS:*.corp.example")
        );
        assert!(c.check(&dns("*.secret.corp.example")).is_err());
        assert!(c.check(&dns("*.public.corp.example")).is_ok(), "an exclusion elsewhere does not matter");
        assert!(c.check(&dns("corp.example")).is_ok(), "the base itself is not excluded");
        // A leading-dot exclusion (subdomains only) is under the base too.
        let c = constraints(&[], &[".corp.example"], &[]);
        assert!(c.check(&dns("*.corp.example")).is_err());
        assert!(c.check(&dns("corp.example")).is_ok());
        assert!(c.check(&dns("*.example")).is_err(), "an exclusion deeper under the base is refused too");
        assert!(c.check(&dns("*.other.example")).is_ok());
    }

    fn subtree(base: GeneralName) -> GeneralSubtree {
        GeneralSubtree { base, minimum: 0, maximum: None }
    }

    fn ip_octets(bytes: &[u8]) -> GeneralName {
        GeneralName::IpAddress(der::asn1::OctetString::new(bytes.to_vec()).expect("octets"))
    }

    #[test]
    fn a_malformed_ip_subtree_permits_no_ip_address() {
        let ten = IpAddr::from([10, 1, 2, 3]);
        // A 5-octet entry alone: dropping it would have left IP addresses unconstrained.
        let alone = NameConstraints {
            permitted_subtrees: Some(vec![subtree(ip_octets(&[10, 0, 0, 0, 255]))]),
            excluded_subtrees: None,
        };
        let c = IssuerConstraints::from_name_constraints(&alone);
        assert!(matches!(c.check(&SanName::Ip(ten)), Err(CaError::OutsideNameConstraints { .. })));
        assert!(c.check(&dns("anything.example")).is_ok(), "other name types are unaffected");
        // Next to a well-formed entry that would match, it still permits nothing.
        let beside = NameConstraints {
            permitted_subtrees: Some(vec![
                subtree(ip_octets(&[10, 0, 0, 0, 255, 0, 0, 0])),
                subtree(ip_octets(&[192, 168, 0])),
            ]),
            excluded_subtrees: None,
        };
        assert!(IssuerConstraints::from_name_constraints(&beside).check(&SanName::Ip(ten)).is_err());
        // In the excluded list it is unreadable too: refuse rather than guess.
        let excluded = NameConstraints {
            permitted_subtrees: None,
            excluded_subtrees: Some(vec![subtree(ip_octets(&[192, 168, 0]))]),
        };
        assert!(IssuerConstraints::from_name_constraints(&excluded).check(&SanName::Ip(ten)).is_err());
    }

    #[test]
    fn directory_name_constraints_refuse_issuance() {
        let name = |s: &str| GeneralName::DirectoryName(s.parse().expect("DN"));
        for constraints in [
            NameConstraints { permitted_subtrees: Some(vec![subtree(name("O=Corp"))]), excluded_subtrees: None },
            NameConstraints { permitted_subtrees: None, excluded_subtrees: Some(vec![subtree(name("O=Evil"))]) },
        ] {
            let c = IssuerConstraints::from_name_constraints(&constraints);
            let err = c.check(&dns("www.corp.example")).expect_err("directoryName constraints are not checked");
            assert!(matches!(err, CaError::UnsupportedNameConstraint { kind: "directoryName" }), "{err}");
            assert!(err.to_string().contains("directoryName"));
        }
    }

    #[test]
    fn ip_subtrees_match_by_mask_and_leave_other_types_free() {
        let c = constraints(&[], &[], &[(&[10, 0, 0, 0], &[255, 0, 0, 0])]);
        assert!(c.check(&SanName::Ip("10.9.8.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))).is_ok());
        assert!(c.check(&SanName::Ip(IpAddr::from([192, 168, 1, 1]))).is_err());
        assert!(c.check(&SanName::Ip("::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))).is_err());
        assert!(c.check(&dns("anything.example")).is_ok(), "no DNS subtree: DNS names are unconstrained");
    }

    #[test]
    fn uri_hosts_are_compared_for_spiffe_ids() {
        assert_eq!(uri_host("spiffe://corp.example/ns/a"), "corp.example");
        assert!(uri_host_within("corp.example", "corp.example"));
        assert!(!uri_host_within("x.corp.example", "corp.example"));
        assert!(uri_host_within("x.corp.example", ".corp.example"));
    }
}
