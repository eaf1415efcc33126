//! Row ids, typed: a function taking an order and a certificate cannot be handed them the wrong way round.
//!
//! Each is the row's integer primary key, stored and bound as one (sqlx's transparent encoding), shown as the
//! integer, and serialized as a JSON number.

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl $name {
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    )*};
}

ids! {
    /// An ACME account (`/acme/acct/<id>`).
    AccountId;
    /// An ACME order.
    OrderId;
    /// An ACME authorization.
    AuthorizationId;
    /// An ACME challenge.
    ChallengeId;
    /// A certificate in the inventory (issued, pending or failed).
    CertificateId;
    /// A CA certificate in the issuers table.
    IssuerId;
    /// An account group.
    GroupId;
    /// An admin API token.
    TokenId;
    /// A managed certificate (`/admin/domains/<name>`).
    ManagedId;
    /// One attempt to give a managed certificate a new certificate.
    RotationId;
}
