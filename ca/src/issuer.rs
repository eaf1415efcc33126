//! Issuing leaf certificates from CSRs under a profile.
//!
//! The order of operations is the safety argument: everything about the certificate is decided and encoded
//! first, the encoded TBSCertificate is linted, and only then is the HSM asked to sign those exact bytes.

use crate::constraints::IssuerConstraints;
use crate::csr::{SanName, VerifiedCsr, verify_csr};
use crate::error::CaError;
use crate::extensions::{
    authority_info_access, authority_key_identifier, crl_distribution_point, extension, subject_key_identifier,
};
use crate::key::KeyKind;
use crate::lint::{LintPolicy, lint_tbs};
use crate::profile::{Profile, ProfileKind, Profiles};
use crate::serial::{random_serial, serial_hex};
use crate::sign::{CaSigner, certificate_pem, sign_tbs_der, signer_public_key, verify_certificate_signature};
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use flagset::FlagSet;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SignatureBitStringEncoding};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// Where relying parties find revocation status and the issuer's certificate; embedded in every leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorityUrls {
    pub crl: Option<String>,
    pub ocsp: Option<String>,
    pub ca_issuers: Option<String>,
}

/// What to issue.
#[derive(Clone, Debug)]
pub struct IssuanceRequest<'a> {
    /// PKCS#10, DER or PEM.
    pub csr: &'a [u8],
    pub profile: &'a str,
    /// Defaults to the profile's maximum. Cut short at the issuing certificate's notAfter.
    pub lifetime: Option<Duration>,
}

/// An issued certificate and what the inventory needs to know about it.
#[derive(Clone, Debug)]
pub struct Issued {
    pub certificate: Certificate,
    pub der: Vec<u8>,
    pub serial: SerialNumber,
    pub serial_hex: String,
    pub profile: ProfileKind,
    pub names: Vec<SanName>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub tbs_sha256: [u8; 32],
    /// Leaf then the issuing chain, PEM (application/pem-certificate-chain).
    pub chain_pem: String,
}

/// A certificate decided, encoded and linted, waiting for its signature.
#[derive(Clone, Debug)]
pub struct PreparedCertificate {
    /// The DER TBSCertificate the signer will sign, byte for byte.
    pub tbs_der: Vec<u8>,
    pub tbs_sha256: [u8; 32],
    pub serial: SerialNumber,
    pub serial_hex: String,
    pub profile: ProfileKind,
    pub names: Vec<SanName>,
    pub subject: String,
    pub spki_der: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// An issuing CA: its certificate, the chain above it, and a signer holding its key.
pub struct Issuer<S> {
    signer: S,
    certificate: Certificate,
    chain_pem: String,
    signature_algorithm: AlgorithmIdentifierOwned,
    /// AKI, CRL DP and AIA are the same in every leaf: computed once.
    issuer_extensions: Vec<Extension>,
    /// The issuing certificate's name constraints, applied before anything is signed.
    name_constraints: Option<IssuerConstraints>,
    profiles: Profiles,
    backdate: Duration,
    /// RSA-CRT signatures are checked after signing: a faulty one would leak the key (Lenstra's attack).
    verify_after_signing: bool,
}

/// How far notBefore is set in the past, so clients with slightly slow clocks accept a fresh certificate.
pub const DEFAULT_BACKDATE: Duration = Duration::from_secs(5 * 60);

impl<S> Issuer<S> {
    /// `chain` is the issuing certificate first, then any certificates above it that clients should be sent.
    pub fn new<Sig>(
        signer: S,
        chain: Vec<Certificate>,
        urls: &AuthorityUrls,
        profiles: Profiles,
    ) -> Result<Self, CaError>
    where
        S: CaSigner<Sig>,
        S::VerifyingKey: EncodePublicKey,
        Sig: SignatureBitStringEncoding,
    {
        let certificate = chain.first().cloned().ok_or_else(|| CaError::BadCaCertificate("empty chain".into()))?;
        if signer_public_key(&signer)? != certificate.tbs_certificate.subject_public_key_info {
            return Err(CaError::SignerMismatch);
        }
        let mut chain_pem = String::new();
        for cert in &chain {
            chain_pem.push_str(&certificate_pem(&cert.to_der()?)?);
        }
        let mut issuer_extensions = vec![authority_key_identifier(&certificate)?];
        if let Some(url) = &urls.crl {
            issuer_extensions.push(crl_distribution_point(url)?);
        }
        if let Some(aia) = authority_info_access(urls.ocsp.as_deref(), urls.ca_issuers.as_deref())? {
            issuer_extensions.push(aia);
        }
        let issuer_kind = crate::key::classify(&certificate.tbs_certificate.subject_public_key_info)
            .map_err(|e| CaError::BadCaCertificate(e.to_string()))?;
        let name_constraints = IssuerConstraints::from_certificate(&certificate)?;
        Ok(Issuer {
            name_constraints,
            signature_algorithm: signer.signature_algorithm_identifier()?,
            signer,
            certificate,
            chain_pem,
            issuer_extensions,
            profiles,
            backdate: DEFAULT_BACKDATE,
            verify_after_signing: matches!(issuer_kind, KeyKind::Rsa { .. }),
        })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    pub fn signer(&self) -> &S {
        &self.signer
    }

    /// The issuing chain in PEM (issuing CA first).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Verifies the CSR, builds and lints the certificate, then signs it, dated `now`.
    pub fn issue<Sig>(&self, request: &IssuanceRequest<'_>, now: SystemTime) -> Result<Issued, CaError>
    where
        S: CaSigner<Sig>,
        S::VerifyingKey: EncodePublicKey,
        Sig: SignatureBitStringEncoding,
    {
        let csr = verify_csr(request.csr)?;
        self.issue_verified(&csr, request.profile, request.lifetime, now)
    }

    /// Issues for a CSR already verified: `prepare` then `sign_prepared`.
    pub fn issue_verified<Sig>(
        &self,
        csr: &VerifiedCsr,
        profile_name: &str,
        lifetime: Option<Duration>,
        now: SystemTime,
    ) -> Result<Issued, CaError>
    where
        S: CaSigner<Sig>,
        S::VerifyingKey: EncodePublicKey,
        Sig: SignatureBitStringEncoding,
    {
        let prepared = self.prepare(csr, profile_name, lifetime, now)?;
        self.sign_prepared(prepared)
    }

    /// Decides everything about the certificate and lints the encoded TBS, without touching the signer. The
    /// caller records the serial and TBS hash (the inventory) before handing the result to `sign_prepared`.
    pub fn prepare(
        &self,
        csr: &VerifiedCsr,
        profile_name: &str,
        lifetime: Option<Duration>,
        now: SystemTime,
    ) -> Result<PreparedCertificate, CaError> {
        let profile = self.profiles.get(profile_name).ok_or_else(|| CaError::UnknownProfile {
            name: profile_name.to_owned(),
            known: self.profiles.names().join(", "),
        })?;
        check_names(profile.kind, &csr.names)?;
        if let Some(constraints) = &self.name_constraints {
            csr.names.iter().try_for_each(|name| constraints.check(name))?;
        }
        let lifetime = lifetime.unwrap_or(profile.max_lifetime);
        if lifetime > profile.max_lifetime {
            return Err(CaError::LifetimeTooLong {
                profile: profile.kind.name(),
                requested_secs: lifetime.as_secs(),
                max_secs: profile.max_lifetime.as_secs(),
            });
        }
        // A certificate issued outside its issuer's validity fails in every client; say so instead.
        let issuer_validity = &self.certificate.tbs_certificate.validity;
        let issuer_not_after = issuer_validity.not_after.to_system_time();
        if now < issuer_validity.not_before.to_system_time() || now > issuer_not_after {
            return Err(CaError::IssuerNotValid {
                not_before: issuer_validity.not_before.to_string(),
                not_after: issuer_validity.not_after.to_string(),
            });
        }
        let not_before = now.checked_sub(self.backdate.min(lifetime / 2)).unwrap_or(now);
        // Both ends are inclusive (RFC 5280 §4.1.2.5, CA/B Forum BRs), as lint_tbs counts: a certificate valid
        // for `lifetime` has notAfter = notBefore + lifetime - 1s. Checked: the lifetime comes from configuration,
        // and SystemTime + Duration panics on overflow.
        let not_after = not_before
            .checked_add(lifetime.saturating_sub(Duration::from_secs(1)))
            .ok_or(CaError::LifetimeOutOfRange { requested_secs: lifetime.as_secs() })?;
        // A leaf never outlives its issuer: clients reject the chain once the issuer has expired, so the tail of
        // its life would be a promise nobody keeps. It may come out shorter than asked, never longer, so the lint's
        // maximum still holds.
        let not_after = not_after.min(issuer_not_after);
        let serial = random_serial();
        let tbs = self.leaf_tbs(csr, profile, serial.clone(), not_before, not_after)?;
        let tbs_der = tbs.to_der()?;

        lint_tbs(&tbs_der, &lint_policy(profile))?;

        Ok(PreparedCertificate {
            serial_hex: serial_hex(&serial),
            profile: profile.kind,
            names: csr.names.clone(),
            subject: tbs.subject.to_string(),
            spki_der: tbs.subject_public_key_info.to_der()?,
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            tbs_sha256: Sha256::digest(&tbs_der).into(),
            serial,
            tbs_der,
        })
    }

    /// Has the signer sign exactly the prepared (and linted) TBS bytes, and assembles the certificate.
    pub fn sign_prepared<Sig>(&self, prepared: PreparedCertificate) -> Result<Issued, CaError>
    where
        S: CaSigner<Sig>,
        S::VerifyingKey: EncodePublicKey,
        Sig: SignatureBitStringEncoding,
    {
        let (certificate, der) = self.sign_exact(&prepared.tbs_der)?;
        let mut chain_pem = certificate_pem(&der)?;
        chain_pem.push_str(&self.chain_pem);
        Ok(Issued {
            serial_hex: prepared.serial_hex,
            serial: prepared.serial,
            profile: prepared.profile,
            names: prepared.names,
            not_before: prepared.not_before,
            not_after: prepared.not_after,
            tbs_sha256: prepared.tbs_sha256,
            certificate,
            der,
            chain_pem,
        })
    }

    /// Signs exactly `tbs_der` (already linted) and assembles the certificate, checking RSA signatures after.
    pub(crate) fn sign_exact<Sig>(&self, tbs_der: &[u8]) -> Result<(Certificate, Vec<u8>), CaError>
    where
        S: CaSigner<Sig>,
        S::VerifyingKey: EncodePublicKey,
        Sig: SignatureBitStringEncoding,
    {
        let (certificate, der) = sign_tbs_der(tbs_der, &self.signer)?;
        if self.verify_after_signing {
            verify_certificate_signature(&certificate, &self.certificate.tbs_certificate.subject_public_key_info)?;
        }
        Ok((certificate, der))
    }

    pub(crate) fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.signature_algorithm
    }

    pub(crate) fn backdate(&self) -> Duration {
        self.backdate
    }

    fn leaf_tbs(
        &self,
        csr: &VerifiedCsr,
        profile: &Profile,
        serial: SerialNumber,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<TbsCertificate, CaError> {
        let subject = leaf_subject(&csr.names)?;
        let spki = csr.request.info.public_key.clone();
        let mut usages = FlagSet::from(KeyUsages::DigitalSignature);
        if matches!(csr.key_kind, KeyKind::Rsa { .. }) {
            // TLS 1.2 RSA key exchange encrypts the premaster secret to the certificate key.
            usages |= KeyUsages::KeyEncipherment;
        }
        let sans = csr.names.iter().map(general_name).collect::<Result<Vec<_>, _>>()?;
        let mut extensions = vec![
            extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
            extension(&KeyUsage(usages), true)?,
            extension(&ExtendedKeyUsage(profile.kind.extended_key_usages()), false)?,
            // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
            extension(&SubjectAltName(sans), subject.0.is_empty())?,
            subject_key_identifier(&spki)?,
        ];
        extensions.extend(self.issuer_extensions.iter().cloned());
        Ok(TbsCertificate {
            version: Version::V3,
            serial_number: serial,
            signature: self.signature_algorithm.clone(),
            issuer: self.certificate.tbs_certificate.subject.clone(),
            validity: validity(not_before, not_after)?,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        })
    }
}

/// RFC 5280 times: UTCTime through 2049, GeneralizedTime after.
pub fn validity(not_before: SystemTime, not_after: SystemTime) -> Result<Validity, CaError> {
    Ok(Validity { not_before: x509_time(not_before)?, not_after: x509_time(not_after)? })
}

/// RFC 5280 §4.1.2.5: UTCTime for dates through 2049, GeneralizedTime from 2050; whole seconds.
pub fn x509_time(at: SystemTime) -> Result<Time, CaError> {
    let seconds = at.duration_since(SystemTime::UNIX_EPOCH).map_err(|_| der::Error::from(der::ErrorKind::DateTime))?;
    let whole = Duration::from_secs(seconds.as_secs());
    let date = der::DateTime::from_unix_duration(whole)?;
    Ok(if date.year() < 2050 {
        Time::UtcTime(der::asn1::UtcTime::from_date_time(date)?)
    } else {
        Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(date))
    })
}

fn lint_policy(profile: &Profile) -> LintPolicy {
    LintPolicy {
        max_lifetime: profile.max_lifetime,
        required_ekus: profile.kind.extended_key_usages(),
        require_uri_san: profile.kind.requires_uri_san(),
        allow_ip_sans: true,
    }
}

/// Which names a profile accepts, checked before anything is built so the error names the profile.
fn check_names(profile: ProfileKind, names: &[SanName]) -> Result<(), CaError> {
    if names.is_empty() {
        return Err(CaError::NoIdentifiers);
    }
    let mut uris = 0;
    for name in names {
        match name {
            SanName::Dns(dns) => crate::names::validate_dns_name(dns)?,
            SanName::Ip(_) => {}
            SanName::Uri(uri) => {
                if !profile.allows_uri_sans() {
                    return Err(CaError::ProfileForbids { profile: profile.name(), what: format!("URI SAN {uri}") });
                }
                crate::names::validate_uri_san(uri)?;
                uris += 1;
            }
        }
    }
    if profile.requires_uri_san() && uris != 1 {
        return Err(CaError::ProfileForbids {
            profile: profile.name(),
            what: format!("{uris} URI SANs (a service identity has exactly one SPIFFE ID)"),
        });
    }
    Ok(())
}

/// CN is the first DNS name when it fits in a commonName (64 characters); otherwise the subject is empty and
/// the names live only in the SAN extension, as RFC 5280 and the CA/Browser Forum prefer anyway.
fn leaf_subject(names: &[SanName]) -> Result<Name, CaError> {
    let first_dns = names.iter().find_map(|n| match n {
        SanName::Dns(d) if d.len() <= 64 => Some(d),
        _ => None,
    });
    match first_dns {
        Some(dns) => Ok(Name::from_str(&format!("CN={}", escape_rdn(dns)))?),
        None => Ok(Name::default()),
    }
}

/// DNS names are LDH plus '*' and '.', none of which RFC 4514 needs escaped; escape anyway for safety.
fn escape_rdn(value: &str) -> String {
    value.chars().flat_map(|c| if ",+\"\\<>;=#".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

fn general_name(name: &SanName) -> Result<GeneralName, CaError> {
    Ok(match name {
        SanName::Dns(dns) => GeneralName::DnsName(Ia5String::new(dns)?),
        SanName::Uri(uri) => GeneralName::UniformResourceIdentifier(Ia5String::new(uri)?),
        SanName::Ip(std::net::IpAddr::V4(v4)) => GeneralName::IpAddress(OctetString::new(v4.octets().to_vec())?),
        SanName::Ip(std::net::IpAddr::V6(v6)) => GeneralName::IpAddress(OctetString::new(v6.octets().to_vec())?),
    })
}
