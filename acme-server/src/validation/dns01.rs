//! dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<identifier>` whose value is
//! base64url(SHA-256(key authorization)). Any one of several records may match (a client validating a name and its
//! wildcard publishes two). IP identifiers cannot use dns-01 (RFC 8738 §7).

use castellan_acme_proto::key_authorization::dns01_txt_value;

use super::{ChallengeKind, Host, Inner, ValidationError, ValidationRecord};

pub(super) async fn validate(
    inner: &Inner,
    identifier: &Host,
    key_authorization: &str,
) -> Result<ValidationRecord, ValidationError> {
    let domain = match identifier {
        Host::Name(name) => name,
        Host::Ip(ip) => {
            return Err(ValidationError::ChallengeNotApplicable {
                challenge: ChallengeKind::Dns01,
                identifier: ip.to_string(),
                reason: "an IP identifier has no DNS zone to publish a TXT record in (RFC 8738 §7)",
            });
        }
    };
    let name = format!("_acme-challenge.{domain}");
    let expected = dns01_txt_value(key_authorization);
    let found = inner.resolver.lookup_txt(&name).await?;
    if found.contains(&expected) {
        return Ok(ValidationRecord::new(identifier));
    }
    Err(ValidationError::TxtMismatch { name, expected, found })
}

#[cfg(test)]
mod tests {
    use castellan_acme_proto::types::Identifier;

    use super::super::testutil::*;
    use super::super::{ChallengeKind, Validator};
    use super::*;

    async fn validate_with(
        records: &[(&str, TestRecord)],
        identifier: Identifier,
    ) -> Result<ValidationRecord, ValidationError> {
        let dns = TestDns::start(records).await;
        let validator = Validator::new(test_config(dns.addr)).unwrap();
        validator.validate(&request(ChallengeKind::Dns01, identifier, "tok-1")).await
    }

    fn expected() -> String {
        dns01_txt_value(&key_authorization("tok-1"))
    }

    #[tokio::test]
    async fn matching_record_among_several() {
        let records = [
            ("_acme-challenge.web.va.test", TestRecord::Txt(vec!["for-the-wildcard".into()])),
            ("_acme-challenge.web.va.test", TestRecord::Txt(vec![expected()])),
        ];
        let record = validate_with(&records, Identifier::dns("web.va.test")).await.unwrap();
        assert_eq!(record.hostname, "web.va.test");
        assert_eq!(record.port, None);
    }

    #[tokio::test]
    async fn value_split_over_strings_is_joined() {
        let value = expected();
        let (a, b) = value.split_at(10);
        let records = [("_acme-challenge.web.va.test", TestRecord::Txt(vec![a.into(), b.into()]))];
        validate_with(&records, Identifier::dns("web.va.test")).await.unwrap();
    }

    #[tokio::test]
    async fn wrong_value_is_unauthorized_and_lists_what_was_found() {
        let records = [("_acme-challenge.web.va.test", TestRecord::Txt(vec!["stale-value".into()]))];
        let err = validate_with(&records, Identifier::dns("web.va.test")).await.unwrap_err();
        assert_eq!(err.problem_type(), "unauthorized");
        assert_eq!(
            err.to_string(),
            format!(
                "no TXT record at _acme-challenge.web.va.test has the expected value {:?}; found \"stale-value\"",
                expected()
            )
        );
    }

    #[tokio::test]
    async fn name_without_txt_records_is_unauthorized() {
        let records = [("_acme-challenge.web.va.test", TestRecord::A(std::net::Ipv4Addr::LOCALHOST))];
        let err = validate_with(&records, Identifier::dns("web.va.test")).await.unwrap_err();
        assert_eq!(err.problem_type(), "unauthorized");
        assert!(err.to_string().ends_with("; found no TXT records"), "{err}");
    }

    #[tokio::test]
    async fn nxdomain_is_a_dns_problem() {
        let err = validate_with(&[], Identifier::dns("web.va.test")).await.unwrap_err();
        assert_eq!(err.problem_type(), "dns");
        assert_eq!(
            err.to_string(),
            "DNS problem: NXDOMAIN (the name does not exist) looking up TXT for _acme-challenge.web.va.test"
        );
    }

    #[tokio::test]
    async fn ip_identifier_is_refused() {
        let err = validate_with(&[], Identifier::ip("192.0.2.1")).await.unwrap_err();
        assert_eq!(err.problem_type(), "malformed");
        assert!(err.to_string().starts_with("dns-01 cannot validate 192.0.2.1: "), "{err}");
    }
}
