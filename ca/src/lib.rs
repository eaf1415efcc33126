//! X.509 for Castellan: issuance from CSRs under profiles, pre-issuance lints, and the signing primitives for
//! CRLs and OCSP responses. Every signature is made through RustCrypto's `signature::Signer`, so the same code
//! signs with a key in a PKCS#11 token (`castellan-hsm`) or with a software key in tests.

pub mod authority;
pub mod constraints;
pub mod crl;
pub mod csr;
pub mod error;
pub mod extensions;
pub mod issuer;
pub mod key;
pub mod lint;
pub mod names;
pub mod ocsp;
pub mod profile;
pub mod responder;
pub mod serial;
pub mod sign;

pub use authority::{
    NameConstraintSpec, check_imported_intermediate, intermediate_csr, self_signed_root, sign_intermediate,
};
pub use csr::{SanName, VerifiedCsr, verify_csr};
pub use error::CaError;
pub use issuer::{AuthorityUrls, IssuanceRequest, Issued, Issuer, PreparedCertificate};
pub use profile::{Profile, ProfileKind, Profiles};
pub use responder::{PreparedResponder, RESPONDER_PROFILE};
pub use sign::{CaSigner, certificate_pem, fingerprint_sha256};
