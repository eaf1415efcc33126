//! PKCS#11 for Castellan.
//!
//! Keys are created inside the token as sensitive and non-extractable and are only ever used through it:
//! this crate signs with them (as a RustCrypto `Signer`, see [`HsmSigner`]) and seals secrets under an AES key
//! that stays in the token ([`Kek`]). Nothing here can export a private key.
//!
//! All calls are blocking; async code goes through [`Hsm::run`], which moves them to tokio's blocking pool.

mod config;
mod context;
mod devtoken;
mod error;
mod keys;
mod pool;
mod seal;
mod signer;
mod token;

#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;

pub use config::{HsmConfig, PinSource, SOFTHSM_MODULE, TokenSelector};
pub use devtoken::{TokenSetup, ensure_token, write_softhsm_config};
pub use error::{HsmError, Result};
pub use keys::{HsmKey, KeyProtection, KeySpec, UnknownKeySpec};
pub use seal::Kek;
pub use signer::{HsmPublicKey, HsmSignature, HsmSigner, SignatureScheme};
pub use token::Hsm;
