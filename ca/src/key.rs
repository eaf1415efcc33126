//! Subject public keys: which kinds Castellan certifies, how strong they must be, and verification
//! of signatures made with them (PKCS#10 proof of possession today, certificate chains later).
//!
//! Two questions are kept apart on purpose. [`classify`] answers "what is this key, and is it a
//! well-formed key at all?" (EC point on the curve, RSA modulus and exponent odd, exponent > 1,
//! Ed25519 point not of small order). [`check_strength`] answers "is it strong enough for our
//! policy?" (RSA size). Keeping the size policy apart lets a refusal name the key ("weak RSA 1024
//! key"). [`classify_and_check`] does both.
//!
//! Verification runs on the issuance hot path, so [`verify_signature`] uses `ring` for every
//! combination ring supports and falls back to RustCrypto only where ring has no implementation
//! (ECDSA with SHA-512, RSA-PSS with a salt length other than the digest length).

use std::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::Decode;
use der::asn1::AnyRef;
use ring::signature as rs;
use rsa::Pss;
use rsa::pkcs1::{self, RsaPssParams};
use sha2::digest::DynDigest;
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use thiserror::Error;

/// Smallest RSA modulus we accept: the CA/Browser Forum baseline, and ring's floor.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus we accept: ring's ceiling, and a guard against keys made to slow us down.
pub const MAX_RSA_BITS: usize = 8192;
/// Largest RSA public exponent ring and the `rsa` crate verify with.
const MAX_RSA_EXPONENT: u64 = (1 << 33) - 1;

/// The kinds of subject public key Castellan certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    EcP256,
    EcP384,
    Rsa { bits: usize },
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::EcP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcP384 => f.write_str("ECDSA P-384"),
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("unsupported public key: {algorithm}")]
    UnsupportedKey { algorithm: String },
    #[error("malformed {algorithm} public key: {reason}")]
    MalformedKey { algorithm: &'static str, reason: &'static str },
    #[error("weak {key} key: {reason}")]
    WeakKey { key: KeyKind, reason: &'static str },
    #[error("unsupported signature algorithm {algorithm}")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("bad parameters for signature algorithm {algorithm}: {reason}")]
    BadAlgorithmParameters { algorithm: String, reason: &'static str },
    #[error("signature algorithm {algorithm} cannot be used with an {key} key")]
    AlgorithmMismatch { algorithm: String, key: KeyKind },
    #[error("signature does not verify")]
    BadSignature,
}

fn unsupported(algorithm: impl Into<String>) -> KeyError {
    KeyError::UnsupportedKey { algorithm: algorithm.into() }
}

fn malformed(algorithm: &'static str, reason: &'static str) -> KeyError {
    KeyError::MalformedKey { algorithm, reason }
}

fn weak(key: KeyKind, reason: &'static str) -> KeyError {
    KeyError::WeakKey { key, reason }
}

/// Identifies the key and checks that it is well formed. The size policy is [`check_strength`]'s.
pub fn classify(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyKind, KeyError> {
    let key = parse_key(spki)?;
    let kind = key.kind();
    let on_curve = match key {
        // Full point validation here (ring validates again when verifying): this is the key we
        // certify.
        ParsedKey::Ec(Curve::P256, point) => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        ParsedKey::Ec(Curve::P384, point) => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        ParsedKey::Rsa(_) => true,
        ParsedKey::Ed25519(bytes) => match ed25519_dalek::VerifyingKey::from_bytes(bytes) {
            // A small-order key lets one signature verify for many messages: it proves nothing.
            Ok(key) if key.is_weak() => return Err(weak(kind, "point of small order")),
            Ok(_) => true,
            Err(_) => false,
        },
    };
    if !on_curve {
        return Err(malformed(kind.name(), "point is not on the curve"));
    }
    Ok(kind)
}

/// Applies the size policy to a key [`classify`] accepted.
pub fn check_strength(kind: &KeyKind) -> Result<(), KeyError> {
    match *kind {
        KeyKind::Rsa { bits } if bits < MIN_RSA_BITS => Err(weak(*kind, "RSA modulus shorter than 2048 bits")),
        KeyKind::Rsa { bits } if bits > MAX_RSA_BITS => {
            Err(unsupported(format!("RSA {bits} (longer than {MAX_RSA_BITS} bits)")))
        }
        _ => Ok(()),
    }
}

/// [`classify`] then [`check_strength`]: the check a key must pass before we certify it.
pub fn classify_and_check(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyKind, KeyError> {
    let kind = classify(spki)?;
    check_strength(&kind)?;
    Ok(kind)
}

/// Verifies `signature` over `message` under `algorithm` with the key in `spki`.
///
/// This proves possession of the key; it judges the key only as far as verification needs (RSA size
/// and exponent, which ring would refuse anyway). Run [`classify_and_check`] before certifying a
/// key. ring validates EC and Ed25519 points while verifying; an invalid point gives
/// `BadSignature`.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), KeyError> {
    let alg = SigAlg::parse(algorithm)?;
    let key = parse_key(spki)?;
    if let ParsedKey::Rsa(rsa) = &key {
        check_strength(&KeyKind::Rsa { bits: rsa.bits })?;
    }
    let ok = match (&key, alg) {
        (ParsedKey::Ec(curve, point), SigAlg::Ecdsa(hash)) => verify_ecdsa(*curve, hash, point, message, signature),
        (ParsedKey::Rsa(key), SigAlg::RsaPkcs1(hash)) => {
            let params = match hash {
                Hash::Sha256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                Hash::Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                Hash::Sha512 => &rs::RSA_PKCS1_2048_8192_SHA512,
            };
            key.components().verify(params, message, signature).is_ok()
        }
        (ParsedKey::Rsa(key), SigAlg::RsaPss { hash, salt_len }) => verify_pss(key, hash, salt_len, message, signature),
        (ParsedKey::Ed25519(point), SigAlg::Ed25519) => {
            let key = rs::UnparsedPublicKey::new(&rs::ED25519, point);
            key.verify(message, signature).is_ok()
        }
        _ => {
            let algorithm = oid_name(&algorithm.oid);
            return Err(KeyError::AlgorithmMismatch { algorithm, key: key.kind() });
        }
    };
    if ok { Ok(()) } else { Err(KeyError::BadSignature) }
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            KeyKind::EcP256 => "ECDSA P-256",
            KeyKind::EcP384 => "ECDSA P-384",
            KeyKind::Rsa { .. } => "RSA",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Hash> {
        match *oid {
            rfc5912::ID_SHA_256 => Some(Hash::Sha256),
            rfc5912::ID_SHA_384 => Some(Hash::Sha384),
            rfc5912::ID_SHA_512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// A key after the structural checks [`classify`] and [`verify_signature`] share; borrows the SPKI.
enum ParsedKey<'a> {
    /// The uncompressed SEC1 point, the form ring wants.
    Ec(Curve, &'a [u8]),
    Rsa(RsaKey<'a>),
    Ed25519(&'a [u8; 32]),
}

impl ParsedKey<'_> {
    fn kind(&self) -> KeyKind {
        match self {
            ParsedKey::Ec(Curve::P256, _) => KeyKind::EcP256,
            ParsedKey::Ec(Curve::P384, _) => KeyKind::EcP384,
            ParsedKey::Rsa(key) => KeyKind::Rsa { bits: key.bits },
            ParsedKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

struct RsaKey<'a> {
    /// Big-endian without leading zeros: the form ring's `RsaPublicKeyComponents` wants.
    n: &'a [u8],
    e: &'a [u8],
    bits: usize,
}

impl<'a> RsaKey<'a> {
    fn components(&self) -> rs::RsaPublicKeyComponents<&'a [u8]> {
        rs::RsaPublicKeyComponents { n: self.n, e: self.e }
    }
}

fn parse_key(spki: &SubjectPublicKeyInfoOwned) -> Result<ParsedKey<'_>, KeyError> {
    let oid = spki.algorithm.oid;
    let params = spki.algorithm.parameters.as_ref().map(AnyRef::from);
    let name = match oid {
        rfc5912::ID_EC_PUBLIC_KEY => "EC",
        rfc5912::RSA_ENCRYPTION => "RSA",
        rfc8410::ID_ED_25519 => "Ed25519",
        _ => return Err(unsupported(oid_name(&oid))),
    };
    // Keys are whole octets in every algorithm we support; unused bits mean a corrupt encoding.
    let bytes = spki.subject_public_key.as_bytes();
    let bytes = bytes.ok_or(malformed(name, "key bit string is not octet-aligned"))?;
    match oid {
        rfc5912::ID_EC_PUBLIC_KEY => parse_ec(params, bytes),
        // RFC 3279 §2.3.1: the parameters MUST be NULL.
        rfc5912::RSA_ENCRYPTION if params.is_some_and(|p| p.is_null()) => parse_rsa(bytes).map(ParsedKey::Rsa),
        rfc5912::RSA_ENCRYPTION => Err(malformed(name, "parameters must be NULL")),
        // RFC 8410 §3: the parameters MUST be absent.
        _ if params.is_some() => Err(malformed(name, "parameters must be absent")),
        _ => match bytes.try_into() {
            Ok(point) => Ok(ParsedKey::Ed25519(point)),
            Err(_) => Err(malformed(name, "key is not 32 bytes")),
        },
    }
}

fn parse_ec<'a>(params: Option<AnyRef<'_>>, point: &'a [u8]) -> Result<ParsedKey<'a>, KeyError> {
    // RFC 5480 §2.1.1: certificates name their curve; implicit and specified curves are not
    // allowed.
    let Some(curve) = params.and_then(|p| p.decode_as::<ObjectIdentifier>().ok()) else {
        return Err(unsupported("EC key without a named curve"));
    };
    let (curve, name, len) = match curve {
        rfc5912::SECP_256_R_1 => (Curve::P256, "ECDSA P-256", 65),
        rfc5912::SECP_384_R_1 => (Curve::P384, "ECDSA P-384", 97),
        other => return Err(unsupported(format!("EC curve {}", oid_name(&other)))),
    };
    // Uncompressed points only: ring verifies nothing else, and RFC 5480 mandates only this form.
    match point.first() {
        Some(0x04) if point.len() == len => Ok(ParsedKey::Ec(curve, point)),
        Some(0x02 | 0x03) => Err(unsupported(format!("{name} with a compressed point"))),
        _ => Err(malformed(name, "not an uncompressed point of the curve's size")),
    }
}

fn parse_rsa(bytes: &[u8]) -> Result<RsaKey<'_>, KeyError> {
    let key = pkcs1::RsaPublicKey::from_der(bytes);
    let key = key.map_err(|_| malformed("RSA", "not a PKCS#1 RSAPublicKey"))?;
    let n = strip_zeros(key.modulus.as_bytes());
    let e = strip_zeros(key.public_exponent.as_bytes());
    let Some(&top) = n.first() else {
        return Err(malformed("RSA", "modulus is zero"));
    };
    let bits = n.len() * 8 - top.leading_zeros() as usize;
    let kind = KeyKind::Rsa { bits };
    // An even modulus has the factor 2: such a key keeps no secret.
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(weak(kind, "modulus is even"));
    }
    // e must be coprime to the (even) Carmichael function of n, so odd; e = 1 is the identity map.
    if e.last().is_none_or(|b| b & 1 == 0) {
        return Err(weak(kind, "public exponent is even"));
    }
    if e == [1] {
        return Err(weak(kind, "public exponent is 1"));
    }
    let e_value = e.iter().fold(0u64, |acc, b| acc.saturating_mul(256) | u64::from(*b));
    if e.len() > 8 || e_value > MAX_RSA_EXPONENT {
        return Err(unsupported("RSA with a public exponent above 2^33-1"));
    }
    Ok(RsaKey { n, e, bits })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A signature algorithm identifier whose parameters were checked.
enum SigAlg {
    Ecdsa(Hash),
    RsaPkcs1(Hash),
    RsaPss { hash: Hash, salt_len: usize },
    Ed25519,
}

impl SigAlg {
    fn parse(alg: &AlgorithmIdentifierOwned) -> Result<SigAlg, KeyError> {
        let params = alg.parameters.as_ref().map(AnyRef::from);
        let bad = |reason| {
            let algorithm = oid_name(&alg.oid);
            KeyError::BadAlgorithmParameters { algorithm, reason }
        };
        let parsed = match alg.oid {
            rfc5912::ECDSA_WITH_SHA_256 => SigAlg::Ecdsa(Hash::Sha256),
            rfc5912::ECDSA_WITH_SHA_384 => SigAlg::Ecdsa(Hash::Sha384),
            rfc5912::ECDSA_WITH_SHA_512 => SigAlg::Ecdsa(Hash::Sha512),
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION => SigAlg::RsaPkcs1(Hash::Sha256),
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION => SigAlg::RsaPkcs1(Hash::Sha384),
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION => SigAlg::RsaPkcs1(Hash::Sha512),
            rfc8410::ID_ED_25519 => SigAlg::Ed25519,
            rfc5912::ID_RSASSA_PSS => {
                let params = params.ok_or_else(|| bad("RSASSA-PSS parameters are missing"))?;
                return parse_pss(params).map_err(bad);
            }
            _ => {
                return Err(KeyError::UnsupportedAlgorithm { algorithm: oid_name(&alg.oid) });
            }
        };
        match (&parsed, params) {
            (_, None) => Ok(parsed),
            // RFC 4055 §5: NULL or absent for the PKCS#1 v1.5 algorithms.
            (SigAlg::RsaPkcs1(_), Some(p)) if p.is_null() => Ok(parsed),
            // RFC 5758 §3.2 (ECDSA) and RFC 8410 §3 (Ed25519): parameters MUST be absent.
            _ => Err(bad("parameters must be absent")),
        }
    }
}

fn parse_pss(params: AnyRef<'_>) -> Result<SigAlg, &'static str> {
    let params = params.decode_as::<RsaPssParams<'_>>();
    let params = params.map_err(|_| "RSASSA-PSS parameters do not decode")?;
    let hash = Hash::from_oid(&params.hash.oid);
    let hash = hash.ok_or("hash must be SHA-256, SHA-384 or SHA-512")?;
    // RFC 4055 §2.1 allows NULL or absent hash parameters, and both occur in the wild.
    if params.hash.parameters.is_some_and(|p| !p.is_null()) {
        return Err("hash parameters must be NULL or absent");
    }
    // Another MGF1 hash is legal but pointless and ring lacks it: refuse rather than guess.
    let mgf = params.mask_gen;
    if mgf.oid != rfc5912::ID_MGF_1 || mgf.parameters.is_none_or(|h| h.oid != params.hash.oid) {
        return Err("mask generation must be MGF1 with the signature's hash");
    }
    Ok(SigAlg::RsaPss { hash, salt_len: usize::from(params.salt_len) })
}

fn verify_ecdsa(curve: Curve, hash: Hash, point: &[u8], message: &[u8], signature: &[u8]) -> bool {
    // ring has no SHA-512 ECDSA; RustCrypto truncates the digest to the field size, as FIPS 186
    // says.
    macro_rules! rustcrypto_sha512 {
        ($curve:ident) => {
            match ($curve::ecdsa::VerifyingKey::from_sec1_bytes(point), $curve::ecdsa::Signature::from_der(signature)) {
                (Ok(key), Ok(sig)) => key.verify_prehash(&Sha512::digest(message), &sig).is_ok(),
                _ => false,
            }
        };
    }
    let ring_alg = match (curve, hash) {
        (Curve::P256, Hash::Sha256) => &rs::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, Hash::Sha384) => &rs::ECDSA_P256_SHA384_ASN1,
        (Curve::P384, Hash::Sha256) => &rs::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, Hash::Sha384) => &rs::ECDSA_P384_SHA384_ASN1,
        (Curve::P256, Hash::Sha512) => return rustcrypto_sha512!(p256),
        (Curve::P384, Hash::Sha512) => return rustcrypto_sha512!(p384),
    };
    let key = rs::UnparsedPublicKey::new(ring_alg, point);
    key.verify(message, signature).is_ok()
}

fn verify_pss(key: &RsaKey<'_>, hash: Hash, salt: usize, message: &[u8], sig: &[u8]) -> bool {
    // ring verifies PSS only with salt length = digest length (the usual choice, and TLS 1.3's).
    if salt == hash.len() {
        let params = match hash {
            Hash::Sha256 => &rs::RSA_PSS_2048_8192_SHA256,
            Hash::Sha384 => &rs::RSA_PSS_2048_8192_SHA384,
            Hash::Sha512 => &rs::RSA_PSS_2048_8192_SHA512,
        };
        return key.components().verify(params, message, sig).is_ok();
    }
    let n = rsa::BigUint::from_bytes_be(key.n);
    let e = rsa::BigUint::from_bytes_be(key.e);
    let Ok(public) = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS) else {
        return false;
    };
    match hash {
        Hash::Sha256 => rustcrypto_pss::<Sha256>(&public, salt, message, sig),
        Hash::Sha384 => rustcrypto_pss::<Sha384>(&public, salt, message, sig),
        Hash::Sha512 => rustcrypto_pss::<Sha512>(&public, salt, message, sig),
    }
}

fn rustcrypto_pss<D>(key: &rsa::RsaPublicKey, salt: usize, message: &[u8], sig: &[u8]) -> bool
where
    D: Digest + DynDigest + Send + Sync + 'static,
{
    key.verify(Pss::new_with_salt::<D>(salt), &D::digest(message), sig).is_ok()
}

/// "name (dotted OID)" when the OID database knows the name, else the dotted OID: for messages.
fn oid_name(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}
#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use der::asn1::{BitString, UintRef};
    use der::{Any, Encode};
    use rand::rngs::OsRng;
    use rsa::RsaPrivateKey;
    use rsa::pkcs1v15::SigningKey as Pkcs1Signer;
    use rsa::pss::BlindedSigningKey as PssSigner;
    use signature::hazmat::PrehashSigner;
    use signature::{RandomizedSigner, SignatureEncoding, Signer};

    use super::*;

    const MSG: &[u8] = b"certification request info";

    macro_rules! assert_err {
        ($result:expr => $pattern:pat $(if $guard:expr)?) => {
            let result = $result;
            assert!(matches!(&result, Err($pattern) $(if $guard)?), "{result:?}");
        };
    }

    fn alg(oid: ObjectIdentifier, parameters: Option<Any>) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid, parameters }
    }

    fn spki_of(key: impl spki::EncodePublicKey) -> SubjectPublicKeyInfoOwned {
        let der = key.to_public_key_der().expect("encode SPKI");
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("decode SPKI")
    }

    fn raw_spki(oid: ObjectIdentifier, params: Option<Any>, key: &[u8]) -> SubjectPublicKeyInfoOwned {
        let subject_public_key = BitString::from_bytes(key).expect("bit string");
        SubjectPublicKeyInfoOwned { algorithm: alg(oid, params), subject_public_key }
    }

    /// RSA key generation is slow; every test shares one key.
    fn rsa2048() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut OsRng, 2048).expect("generate RSA key"))
    }

    fn pss<D: const_oid::AssociatedOid>(salt_len: u8) -> AlgorithmIdentifierOwned {
        let params = Any::encode_from(&RsaPssParams::new::<D>(salt_len)).expect("encode");
        alg(rfc5912::ID_RSASSA_PSS, Some(params))
    }

    fn verify(spki: &SubjectPublicKeyInfoOwned, alg: &AlgorithmIdentifierOwned, sig: &[u8]) -> Result<(), KeyError> {
        verify_signature(spki, alg, MSG, sig)
    }

    fn pss_sig<D>(salt_len: usize) -> Vec<u8>
    where
        D: Digest + sha2::digest::FixedOutputReset + Send + Sync + 'static,
    {
        let signer = PssSigner::<D>::new_with_salt_len(rsa2048().clone(), salt_len);
        signer.sign_with_rng(&mut OsRng, MSG).to_vec()
    }

    /// Verifies, then checks that a changed message is refused.
    fn assert_verifies(spki: &SubjectPublicKeyInfoOwned, alg: ObjectIdentifier, sig: &[u8]) {
        assert_verifies_with(spki, &super::tests::alg(alg, None), sig);
    }

    fn assert_verifies_with(spki: &SubjectPublicKeyInfoOwned, alg: &AlgorithmIdentifierOwned, sig: &[u8]) {
        assert_eq!(verify_signature(spki, alg, MSG, sig), Ok(()));
        assert_eq!(verify_signature(spki, alg, b"tampered", sig), Err(KeyError::BadSignature));
    }

    #[test]
    fn ecdsa_p256_all_hashes() {
        let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
        let spki = spki_of(*sk.verifying_key());
        assert_eq!(classify_and_check(&spki), Ok(KeyKind::EcP256));
        let sig: p256::ecdsa::DerSignature = sk.sign(MSG);
        assert_verifies(&spki, rfc5912::ECDSA_WITH_SHA_256, sig.as_bytes());
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&Sha384::digest(MSG)).expect("sign");
        assert_verifies(&spki, rfc5912::ECDSA_WITH_SHA_384, sig.to_der().as_bytes());
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&Sha512::digest(MSG)).expect("sign");
        assert_verifies(&spki, rfc5912::ECDSA_WITH_SHA_512, sig.to_der().as_bytes());
        // RFC 5758: ECDSA parameters must be absent.
        let null = alg(rfc5912::ECDSA_WITH_SHA_512, Some(Any::null()));
        let sig = sig.to_der();
        assert_err!(verify(&spki, &null, sig.as_bytes()) =>
            KeyError::BadAlgorithmParameters { .. });
    }

    #[test]
    fn ecdsa_p384_all_hashes() {
        let sk = p384::ecdsa::SigningKey::random(&mut OsRng);
        let spki = spki_of(*sk.verifying_key());
        assert_eq!(classify_and_check(&spki), Ok(KeyKind::EcP384));
        let sig: p384::ecdsa::DerSignature = sk.sign(MSG);
        assert_verifies(&spki, rfc5912::ECDSA_WITH_SHA_384, sig.as_bytes());
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(MSG)).expect("sign");
        assert_verifies(&spki, rfc5912::ECDSA_WITH_SHA_256, sig.to_der().as_bytes());
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha512::digest(MSG)).expect("sign");
        assert_verifies(&spki, rfc5912::ECDSA_WITH_SHA_512, sig.to_der().as_bytes());
    }

    #[test]
    fn rsa_pkcs1_all_hashes() {
        let key = rsa2048();
        let spki = spki_of(key.to_public_key());
        assert_eq!(classify_and_check(&spki), Ok(KeyKind::Rsa { bits: 2048 }));
        let sig = Pkcs1Signer::<Sha256>::new(key.clone()).sign(MSG).to_vec();
        // RFC 4055 §5: the NULL parameters may also be absent.
        assert_verifies(&spki, rfc5912::SHA_256_WITH_RSA_ENCRYPTION, &sig);
        let with_null = alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION, Some(Any::null()));
        assert_verifies_with(&spki, &with_null, &sig);
        let sig = Pkcs1Signer::<Sha384>::new(key.clone()).sign(MSG).to_vec();
        assert_verifies(&spki, rfc5912::SHA_384_WITH_RSA_ENCRYPTION, &sig);
        let sig = Pkcs1Signer::<Sha512>::new(key.clone()).sign(MSG).to_vec();
        assert_verifies(&spki, rfc5912::SHA_512_WITH_RSA_ENCRYPTION, &sig);
    }

    #[test]
    fn rsa_pss_ring_and_fallback() {
        let key = rsa2048();
        let spki = spki_of(key.to_public_key());
        // Salt length = digest length: ring's path.
        let sig = pss_sig::<Sha256>(32);
        assert_verifies_with(&spki, &pss::<Sha256>(32), &sig);
        let sig = pss_sig::<Sha512>(64);
        assert_verifies_with(&spki, &pss::<Sha512>(64), &sig);
        // Salt length 20 (the ASN.1 default): ring refuses it, the RustCrypto fallback verifies.
        let sig = pss_sig::<Sha384>(20);
        assert_verifies_with(&spki, &pss::<Sha384>(20), &sig);
        // The salt length is part of what is verified.
        assert_eq!(verify(&spki, &pss::<Sha384>(48), &sig), Err(KeyError::BadSignature));
    }

    #[test]
    fn rsa_pss_parameters_checked() {
        let spki = spki_of(rsa2048().to_public_key());
        let missing = alg(rfc5912::ID_RSASSA_PSS, None);
        assert_err!(verify(&spki, &missing, &[0; 256]) => KeyError::BadAlgorithmParameters { .. });
        // All defaults means SHA-1, which we refuse.
        let sha1 = Any::encode_from(&RsaPssParams::default()).expect("encode");
        let sha1 = alg(rfc5912::ID_RSASSA_PSS, Some(sha1));
        assert_err!(verify(&spki, &sha1, &[0; 256]) => KeyError::BadAlgorithmParameters { .. });
    }

    #[test]
    fn ed25519() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let spki = spki_of(sk.verifying_key());
        assert_eq!(classify_and_check(&spki), Ok(KeyKind::Ed25519));
        assert_verifies(&spki, rfc8410::ID_ED_25519, &sk.sign(MSG).to_bytes());
        // The identity point has small order.
        let mut identity = [0; 32];
        identity[0] = 1;
        let weak = raw_spki(rfc8410::ID_ED_25519, None, &identity);
        assert_err!(classify(&weak) => KeyError::WeakKey { key: KeyKind::Ed25519, .. });
    }

    #[test]
    fn algorithm_mismatch() {
        let ec = spki_of(*p256::ecdsa::SigningKey::random(&mut OsRng).verifying_key());
        let rsa = spki_of(rsa2048().to_public_key());
        let rsa_alg = alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION, None);
        let ec_alg = alg(rfc5912::ECDSA_WITH_SHA_256, None);
        let ed_alg = alg(rfc8410::ID_ED_25519, None);
        let err = verify(&ec, &rsa_alg, &[0; 64]);
        assert_err!(err => KeyError::AlgorithmMismatch { key: KeyKind::EcP256, .. });
        let err = verify(&rsa, &ec_alg, &[0; 64]);
        assert_err!(err => KeyError::AlgorithmMismatch { key: KeyKind::Rsa { .. }, .. });
        assert_err!(verify(&rsa, &ed_alg, &[0; 64]) => KeyError::AlgorithmMismatch { .. });
    }

    #[test]
    fn unsupported_signature_algorithm() {
        let ec = spki_of(*p256::ecdsa::SigningKey::random(&mut OsRng).verifying_key());
        let sha1_rsa = alg(ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5"), None);
        assert_err!(verify(&ec, &sha1_rsa, &[0; 64]) => KeyError::UnsupportedAlgorithm { .. });
    }

    #[test]
    fn rsa_1024_is_weak() {
        let key = RsaPrivateKey::new(&mut OsRng, 1024).expect("generate RSA key");
        let spki = spki_of(key.to_public_key());
        assert_eq!(classify(&spki), Ok(KeyKind::Rsa { bits: 1024 }));
        let rsa1024 = KeyKind::Rsa { bits: 1024 };
        assert_err!(classify_and_check(&spki) => KeyError::WeakKey { key, .. } if *key == rsa1024);
        // Verification refuses it with the same reason rather than a bare BadSignature.
        let sig = Pkcs1Signer::<Sha256>::new(key).sign(MSG).to_vec();
        let sha256_rsa = alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION, None);
        assert_err!(verify(&spki, &sha256_rsa, &sig) => KeyError::WeakKey { .. });
    }

    #[test]
    fn rsa_size_policy() {
        assert!(check_strength(&KeyKind::Rsa { bits: 2047 }).is_err());
        assert!(check_strength(&KeyKind::Rsa { bits: 2048 }).is_ok());
        assert!(check_strength(&KeyKind::Rsa { bits: 8192 }).is_ok());
        assert_err!(check_strength(&KeyKind::Rsa { bits: 8193 }) =>
            KeyError::UnsupportedKey { .. });
    }

    fn rsa_with_exponent(e: &[u8]) -> SubjectPublicKeyInfoOwned {
        let n = rsa::traits::PublicKeyParts::n(rsa2048()).to_bytes_be();
        let modulus = UintRef::new(&n).expect("modulus");
        let public_exponent = UintRef::new(e).expect("exponent");
        let der = pkcs1::RsaPublicKey { modulus, public_exponent }.to_der().expect("encode");
        raw_spki(rfc5912::RSA_ENCRYPTION, Some(Any::null()), &der)
    }

    #[test]
    fn rsa_bad_exponents() {
        let rsa = KeyKind::Rsa { bits: 2048 };
        assert_eq!(classify(&rsa_with_exponent(&[1])), Err(weak(rsa, "public exponent is 1")));
        assert_eq!(classify(&rsa_with_exponent(&[2])), Err(weak(rsa, "public exponent is even")));
        assert_eq!(classify(&rsa_with_exponent(&[1, 0, 0])), Err(weak(rsa, "public exponent is even")));
        let huge = rsa_with_exponent(&[1, 0, 0, 0, 0, 1]);
        assert_err!(classify(&huge) => KeyError::UnsupportedKey { .. });
        assert_eq!(classify(&rsa_with_exponent(&[1, 0, 1])), Ok(rsa));
    }

    #[test]
    fn unsupported_curve() {
        let secp256k1 = Any::encode_from(&ObjectIdentifier::new_unwrap("1.3.132.0.10")).expect("encode");
        let point = p256::ecdsa::SigningKey::random(&mut OsRng).verifying_key().to_encoded_point(false);
        let spki = raw_spki(rfc5912::ID_EC_PUBLIC_KEY, Some(secp256k1), point.as_bytes());
        assert_err!(classify(&spki) => KeyError::UnsupportedKey { .. });
    }

    #[test]
    fn point_off_curve_is_malformed() {
        let mut point = [0u8; 65];
        (point[0], point[64]) = (4, 1);
        let p256 = Any::encode_from(&rfc5912::SECP_256_R_1).expect("encode");
        let spki = raw_spki(rfc5912::ID_EC_PUBLIC_KEY, Some(p256), &point);
        assert_err!(classify(&spki) => KeyError::MalformedKey { .. });
    }

    #[test]
    fn unknown_key_algorithm() {
        let dsa = raw_spki(ObjectIdentifier::new_unwrap("1.2.840.10040.4.1"), None, &[1, 2, 3]);
        assert_err!(classify(&dsa) => KeyError::UnsupportedKey { .. });
    }

    #[test]
    fn kind_display() {
        assert_eq!(KeyKind::EcP256.to_string(), "ECDSA P-256");
        assert_eq!(KeyKind::Rsa { bits: 2048 }.to_string(), "RSA 2048");
    }
}
