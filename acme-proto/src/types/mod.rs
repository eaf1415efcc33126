//! The JSON resources of RFC 8555 §7, as serde types.
//!
//! Field names are RFC 8555's (camelCase); absent optional fields are not serialized; unknown fields are ignored
//! when reading, so a newer peer's extensions do not break parsing. Timestamps are kept as the RFC 3339 strings
//! sent on the wire.

mod account;
mod directory;
mod identifier;
mod order;
mod problem;
mod requests;

pub use account::{Account, AccountStatus, NewAccount, OrdersList};
pub use directory::{Directory, DirectoryMeta};
pub use identifier::{Identifier, IdentifierType};
pub use order::{Authorization, AuthorizationStatus, Challenge, ChallengeStatus, NewOrder, Order, OrderStatus};
pub use problem::Problem;
pub use requests::{Finalize, KeyChange, Revocation};
