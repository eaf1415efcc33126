//! What the admin API manages: account groups and their policies, the EAB credentials that admit accounts to a
//! group, global settings (the global deny list), and the admin API's own tokens.
//!
//! The store keeps these as given: policy documents and setting values are checked by `castellan-policy` (or
//! whoever owns the setting) before they get here; the store only refuses what would break its own columns (a NUL
//! in TEXT, a policy that is not a JSON object, a name outside its syntax). Every change commits with its audit
//! entry in one transaction, durably: an admin's change must not vanish with a power loss while its caller was
//! told it happened.
//!
//! Transactions write first, as `acme` explains: where a method must read before deciding, it locks the row with a
//! no-op `UPDATE … SET x = x` and reads after. Account-group rows are locked after account rows (moving an
//! account locks the account, then names the group), and the audit head last.

mod eab;
mod groups;
mod settings;
mod tokens;

#[cfg(test)]
mod tests;

pub use eab::{EabRecord, MAX_EAB_KEY_ID_LEN};
pub use groups::{GroupRecord, MAX_GROUP_NAME_LEN};
pub use settings::{GLOBAL_DENY, MAX_SETTING_KEY_LEN};
pub use tokens::{TOKEN_PREFIX, TokenRecord, TokenScope};

use crate::error::{Result, StoreError};

/// A group's name: `[a-z0-9][a-z0-9-]{0,62}`, so it fits a URL path segment and an audit subject unescaped.
fn check_group_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = matches!(bytes.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= MAX_GROUP_NAME_LEN
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "group name",
            why: format!(
                "{name:?} is not 1 to {MAX_GROUP_NAME_LEN} characters of a-z, 0-9 and '-' starting with a letter \
                 or digit"
            ),
        })
    }
}

fn group_not_found(name: &str) -> StoreError {
    StoreError::NotFound { what: format!("account group {name:?}") }
}
