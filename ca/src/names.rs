//! Syntax of the identifiers Castellan puts in certificates: DNS names, SPIFFE IDs (our only URI
//! SANs) and IP addresses. These checks are about form only; whether the requester controls a name
//! is the validation authority's business, and whether policy allows it is `policy`'s.
//!
//! DNS names are compared byte for byte everywhere else in Castellan (authorizations, SANs, the CN
//! check in `lint`), so this module accepts exactly one spelling of each name: lowercase, no
//! trailing dot, IDNs as A-labels ("xn--…").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// RFC 1035 §2.3.4, counted without the trailing dot (which we refuse anyway).
const MAX_DNS_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;
/// SPIFFE-ID §2.3: implementations must support 2048 bytes and should not generate longer IDs.
const MAX_SPIFFE_ID_LEN: usize = 2048;
/// SPIFFE-ID §2.3: the trust domain is a URI host, which RFC 3986 limits to 255 characters.
const MAX_TRUST_DOMAIN_LEN: usize = 255;
const SPIFFE_PREFIX: &str = "spiffe://";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the DNS name is {len} bytes long; the limit is 253")]
    DnsNameTooLong { len: usize },
    #[error("the DNS name ends with a dot; write it without the trailing dot")]
    TrailingDot,
    #[error("the DNS name has an empty label")]
    EmptyLabel,
    #[error("DNS label {label:?} is {len} bytes long; the limit is 63")]
    LabelTooLong { label: String, len: usize },
    #[error("DNS label {label:?} contains {ch:?}; only a-z, 0-9 and '-' are allowed (IDNs as A-labels)")]
    BadCharacter { label: String, ch: char },
    #[error("DNS names must be lowercase (names are compared exactly): use {lowercase:?}")]
    Uppercase { lowercase: String },
    #[error("DNS label {label:?} begins or ends with a hyphen")]
    HyphenAtLabelEdge { label: String },
    #[error("the last label {label:?} is all digits, which makes the name look like an IPv4 address")]
    NumericTopLabel { label: String },
    #[error("bad wildcard: {reason}")]
    BadWildcard { reason: &'static str },
    #[error("wildcard names are not allowed here")]
    WildcardNotAllowed,
    #[error("the SPIFFE ID is {len} bytes long; the limit is 2048")]
    SpiffeIdTooLong { len: usize },
    #[error("a SPIFFE ID must start with \"spiffe://\"")]
    SpiffeScheme,
    #[error("the SPIFFE ID has no trust domain")]
    SpiffeEmptyTrustDomain,
    #[error("SPIFFE trust domain {trust_domain:?}: {reason}")]
    SpiffeTrustDomain { trust_domain: String, reason: &'static str },
    #[error("a SPIFFE ID must not contain userinfo or a port")]
    SpiffeUserinfoOrPort,
    #[error("a SPIFFE ID must not contain a query or a fragment")]
    SpiffeQueryOrFragment,
    #[error("SPIFFE path segment {segment:?}: {reason}")]
    SpiffePathSegment { segment: String, reason: &'static str },
    #[error("the URI has no scheme")]
    MissingUriScheme,
    #[error("URI scheme {scheme:?} is not supported: only spiffe:// URIs are issued")]
    UnsupportedUriScheme { scheme: String },
    #[error("an iPAddress SAN is {len} octets long; it must be 4 (IPv4) or 16 (IPv6)")]
    BadIpLength { len: usize },
}

/// Checks a DNS name for a dNSName SAN; a wildcard ("*.example.com") is allowed.
pub fn validate_dns_name(name: &str) -> Result<(), NameError> {
    validate_dns(name, true)
}

/// Checks a DNS name where a wildcard makes no sense (an identifier to validate, a CAA domain).
pub fn validate_dns_name_no_wildcard(name: &str) -> Result<(), NameError> {
    validate_dns(name, false)
}

fn validate_dns(name: &str, allow_wildcard: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(NameError::DnsNameTooLong { len: name.len() });
    }
    if name.ends_with('.') {
        return Err(NameError::TrailingDot);
    }
    // Checked before the character rules so the error says how to fix the name, not just that it is
    // wrong.
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(NameError::Uppercase { lowercase: name.to_ascii_lowercase() });
    }
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    // Only the whole leftmost label may be "*" (RFC 6125 §7.2 and the CA/B Forum BRs):
    // partial-label and nested wildcards match differently across clients, so we never issue them.
    if rest.contains('*') {
        return Err(NameError::BadWildcard {
            reason: "a wildcard must be the whole leftmost label, as in *.example.com",
        });
    }
    let mut labels = 0;
    let mut last = "";
    for label in rest.split('.') {
        validate_label(label)?;
        labels += 1;
        last = label;
    }
    if wildcard && labels < 2 {
        return Err(NameError::BadWildcard { reason: "a wildcard needs at least two labels after it" });
    }
    // Single-label names ("localhost", an intranet host "db") are normal on an internal CA: which of them a
    // team may have is for the policy engine to decide, not the syntax check.
    // An all-numeric last label would let "1.2.3.4" pass as a DNS name (RFC 3696 §2).
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::NumericTopLabel { label: last.to_owned() });
    }
    if wildcard && !allow_wildcard {
        return Err(NameError::WildcardNotAllowed);
    }
    Ok(())
}

/// LDH label (RFC 1035 §2.3.1 as relaxed by RFC 1123 §2.1 to allow a leading digit).
fn validate_label(label: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong { label: label.to_owned(), len: label.len() });
    }
    if let Some(ch) = label.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
        return Err(NameError::BadCharacter { label: label.to_owned(), ch });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::HyphenAtLabelEdge { label: label.to_owned() });
    }
    Ok(())
}

/// Checks a SPIFFE ID as the SPIFFE-ID standard (§2) defines it: `spiffe://` + trust domain +
/// optional path, without query, fragment, userinfo or port, at most 2048 bytes.
pub fn validate_spiffe_id(uri: &str) -> Result<(), NameError> {
    if uri.len() > MAX_SPIFFE_ID_LEN {
        return Err(NameError::SpiffeIdTooLong { len: uri.len() });
    }
    // The scheme must be exactly lowercase "spiffe": SPIFFE IDs are compared as strings.
    let rest = uri.strip_prefix(SPIFFE_PREFIX).ok_or(NameError::SpiffeScheme)?;
    if rest.contains(['?', '#']) {
        return Err(NameError::SpiffeQueryOrFragment);
    }
    let (trust_domain, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], Some(&rest[slash + 1..])),
        None => (rest, None),
    };
    validate_trust_domain(trust_domain)?;
    let Some(path) = path else {
        return Ok(());
    };
    // "spiffe://td/" has one empty segment, which the loop refuses like any trailing slash.
    for segment in path.split('/') {
        let reason = match segment {
            "" => "empty segment (doubled or trailing '/')",
            "." | ".." => "relative segments are not allowed",
            s if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) => {
                "only letters, digits, '.', '-' and '_' are allowed"
            }
            _ => continue,
        };
        return Err(NameError::SpiffePathSegment { segment: segment.to_owned(), reason });
    }
    Ok(())
}

fn validate_trust_domain(trust_domain: &str) -> Result<(), NameError> {
    if trust_domain.is_empty() {
        return Err(NameError::SpiffeEmptyTrustDomain);
    }
    if trust_domain.contains(['@', ':']) {
        return Err(NameError::SpiffeUserinfoOrPort);
    }
    let bad = |reason| NameError::SpiffeTrustDomain { trust_domain: trust_domain.to_owned(), reason };
    if trust_domain.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(bad("longer than 255 bytes"));
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_');
    if !trust_domain.bytes().all(allowed) {
        return Err(bad("only a-z, 0-9, '.', '-' and '_' are allowed"));
    }
    Ok(())
}

/// Checks a URI for a uniformResourceIdentifier SAN.
///
/// We issue URI SANs only for SPIFFE service identities, so every other scheme is refused: a URI
/// SAN of an unknown scheme would be an identity nothing in Castellan validated, and relying
/// parties (X.509-SVID verifiers) treat any URI SAN as the workload's identity.
pub fn validate_uri_san(uri: &str) -> Result<(), NameError> {
    let Some((scheme, _)) = uri.split_once(':') else {
        return Err(NameError::MissingUriScheme);
    };
    if scheme.is_empty() {
        return Err(NameError::MissingUriScheme);
    }
    // Case-insensitive here so that "SPIFFE://…" gets the precise error from validate_spiffe_id.
    if !scheme.eq_ignore_ascii_case("spiffe") {
        return Err(NameError::UnsupportedUriScheme { scheme: scheme.to_owned() });
    }
    validate_spiffe_id(uri)
}

/// Decodes the octets of an iPAddress SAN (RFC 5280 §4.2.1.6: 4 octets for IPv4, 16 for IPv6).
pub fn ip_from_san_octets(octets: &[u8]) -> Result<IpAddr, NameError> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Ok(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        return Ok(IpAddr::V6(Ipv6Addr::from(v6)));
    }
    Err(NameError::BadIpLength { len: octets.len() })
}

/// Encodes an address as iPAddress SAN octets. An IPv4-mapped IPv6 address stays 16 octets: the SAN
/// says what the requester asked for, and clients match the two forms differently.
pub fn ip_to_san_octets(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The ASN.1 name of a GeneralName's kind, for error messages.
pub fn general_name_kind(name: &x509_cert::ext::pkix::name::GeneralName) -> &'static str {
    use x509_cert::ext::pkix::name::GeneralName;
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a test case got the error it expects.
    type Expect = fn(&NameError) -> bool;

    fn wildcard_error(name: &str) -> bool {
        matches!(validate_dns_name(name), Err(NameError::BadWildcard { .. }))
    }

    #[test]
    fn dns_accepts() {
        for name in [
            "example.com",
            "a.b.c.example.com",
            "xn--bcher-kva.example",
            "1password.com",
            "a-b.c-d.org",
            "*.example.com",
            "*.a.b.example.com",
            "x.y1",
            // Single-label intranet names are syntax-valid; policy decides who may have them.
            "localhost",
            "db",
        ] {
            assert_eq!(validate_dns_name(name), Ok(()), "{name}");
        }
        let label63 = "a".repeat(63);
        assert_eq!(validate_dns_name(&format!("{label63}.com")), Ok(()));
        // 4 labels of 63 + 3 dots = 255 > 253; trim to exactly 253.
        let long = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(long.len(), 253);
        assert_eq!(validate_dns_name(&long), Ok(()));
    }

    #[test]
    fn dns_refuses() {
        let cases: &[(&str, Expect)] = &[
            ("", |e| *e == NameError::Empty),
            ("example.com.", |e| *e == NameError::TrailingDot),
            (".", |e| *e == NameError::TrailingDot),
            ("example..com", |e| *e == NameError::EmptyLabel),
            (".example.com", |e| *e == NameError::EmptyLabel),
            ("Example.com", |e| matches!(e, NameError::Uppercase { lowercase } if lowercase == "example.com")),
            ("exa_mple.com", |e| matches!(e, NameError::BadCharacter { ch: '_', .. })),
            ("bücher.example", |e| matches!(e, NameError::BadCharacter { ch: 'ü', .. })),
            ("exa mple.com", |e| matches!(e, NameError::BadCharacter { ch: ' ', .. })),
            ("-example.com", |e| matches!(e, NameError::HyphenAtLabelEdge { .. })),
            ("example-.com", |e| matches!(e, NameError::HyphenAtLabelEdge { .. })),
            ("1234", |e| matches!(e, NameError::NumericTopLabel { .. })),
            ("1.2.3.4", |e| matches!(e, NameError::NumericTopLabel { label } if label == "4")),
            ("example.123", |e| matches!(e, NameError::NumericTopLabel { .. })),
        ];
        for (name, expected) in cases {
            let err = validate_dns_name(name).expect_err(name);
            assert!(expected(&err), "{name}: {err:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(matches!(validate_dns_name(&long_label), Err(NameError::LabelTooLong { len: 64, .. })));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(matches!(validate_dns_name(&long_name), Err(NameError::DnsNameTooLong { len: 248.. })));
    }

    #[test]
    fn wildcards() {
        for name in ["*", "*.com", "a*.example.com", "*a.example.com", "*.*.x.y", "x.*.example.com", "example.*"] {
            assert!(wildcard_error(name), "{name}: {:?}", validate_dns_name(name));
        }
        assert_eq!(validate_dns_name_no_wildcard("*.example.com"), Err(NameError::WildcardNotAllowed));
        assert_eq!(validate_dns_name_no_wildcard("www.example.com"), Ok(()));
        // Label rules still apply behind the wildcard.
        assert_eq!(validate_dns_name("*.Example.com"), Err(NameError::Uppercase { lowercase: "*.example.com".into() }));
        assert_eq!(validate_dns_name("*..example.com"), Err(NameError::EmptyLabel));
    }

    #[test]
    fn spiffe_accepts() {
        for id in [
            "spiffe://example.org",
            "spiffe://example.org/ns/prod/sa/web-fe",
            "spiffe://trust_domain-1.example/Service.Name_v2",
            "spiffe://td/a/..b/c.",
        ] {
            assert_eq!(validate_spiffe_id(id), Ok(()), "{id}");
            assert_eq!(validate_uri_san(id), Ok(()), "{id}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(MAX_SPIFFE_ID_LEN - "spiffe://td/".len()));
        assert_eq!(validate_spiffe_id(&long), Ok(()));
    }

    #[test]
    fn spiffe_refuses() {
        let cases: &[(&str, Expect)] = &[
            ("SPIFFE://example.org/a", |e| *e == NameError::SpiffeScheme),
            ("spiffe:/example.org/a", |e| *e == NameError::SpiffeScheme),
            ("https://example.org/a", |e| *e == NameError::SpiffeScheme),
            ("spiffe://", |e| *e == NameError::SpiffeEmptyTrustDomain),
            ("spiffe:///path", |e| *e == NameError::SpiffeEmptyTrustDomain),
            ("spiffe://Example.org", |e| matches!(e, NameError::SpiffeTrustDomain { .. })),
            ("spiffe://exa%6dple.org", |e| matches!(e, NameError::SpiffeTrustDomain { .. })),
            ("spiffe://user@example.org", |e| *e == NameError::SpiffeUserinfoOrPort),
            ("spiffe://example.org:8443/a", |e| *e == NameError::SpiffeUserinfoOrPort),
            ("spiffe://example.org/a?b=c", |e| *e == NameError::SpiffeQueryOrFragment),
            ("spiffe://example.org/a#frag", |e| *e == NameError::SpiffeQueryOrFragment),
            (
                "spiffe://example.org/",
                |e| matches!(e, NameError::SpiffePathSegment { segment, .. } if segment.is_empty()),
            ),
            ("spiffe://example.org/a//b", |e| matches!(e, NameError::SpiffePathSegment { .. })),
            ("spiffe://example.org/a/", |e| matches!(e, NameError::SpiffePathSegment { .. })),
            (
                "spiffe://example.org/a/./b",
                |e| matches!(e, NameError::SpiffePathSegment { segment, .. } if segment == "."),
            ),
            (
                "spiffe://example.org/../b",
                |e| matches!(e, NameError::SpiffePathSegment { segment, .. } if segment == ".."),
            ),
            ("spiffe://example.org/a%20b", |e| matches!(e, NameError::SpiffePathSegment { .. })),
            ("spiffe://example.org/a:b", |e| matches!(e, NameError::SpiffePathSegment { .. })),
        ];
        for (id, expected) in cases {
            let err = validate_spiffe_id(id).expect_err(id);
            assert!(expected(&err), "{id}: {err:?}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(MAX_SPIFFE_ID_LEN));
        assert!(matches!(validate_spiffe_id(&long), Err(NameError::SpiffeIdTooLong { .. })));
        let long_td = format!("spiffe://{}/a", "a".repeat(256));
        assert!(matches!(validate_spiffe_id(&long_td), Err(NameError::SpiffeTrustDomain { .. })));
    }

    #[test]
    fn uri_san_only_spiffe() {
        let unsupported = |scheme: &str| NameError::UnsupportedUriScheme { scheme: scheme.into() };
        assert_eq!(validate_uri_san("https://example.com/"), Err(unsupported("https")));
        assert_eq!(validate_uri_san("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"), Err(unsupported("urn")));
        assert_eq!(validate_uri_san("example.com"), Err(NameError::MissingUriScheme));
        assert_eq!(validate_uri_san(":foo"), Err(NameError::MissingUriScheme));
        assert_eq!(validate_uri_san("SPIFFE://example.org"), Err(NameError::SpiffeScheme));
        assert_eq!(validate_uri_san("spiffe://example.org/a?x"), Err(NameError::SpiffeQueryOrFragment));
    }

    #[test]
    fn ip_octets() {
        assert_eq!(ip_from_san_octets(&[192, 0, 2, 1]), Ok("192.0.2.1".parse().expect("ip")));
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(ip_from_san_octets(&ip_to_san_octets(&v6)), Ok(v6));
        for len in [0, 1, 3, 5, 8, 15, 17, 32] {
            assert_eq!(ip_from_san_octets(&vec![0; len]), Err(NameError::BadIpLength { len }));
        }
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(ip_to_san_octets(&mapped).len(), 16);
    }
}
