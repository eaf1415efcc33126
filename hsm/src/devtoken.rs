//! Creating a token, for development and tests on SoftHSM2. A production HSM's tokens are created by its own
//! tooling and ceremony; Castellan only logs in to them.

use crate::context::context_for;
use crate::error::{HsmError, Result};
use crate::pool::login;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::Path;

/// Whether `ensure_token` found the token or made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSetup {
    AlreadyPresent,
    Initialised,
}

/// Initialises a token labelled `label` in a free slot with the given PINs, unless one with that label exists.
pub fn ensure_token(module: &Path, label: &str, so_pin: &str, user_pin: &str) -> Result<TokenSetup> {
    let ctx = context_for(module)?;
    let mut free_slot = None;
    for slot in ctx.get_all_slots().map_err(HsmError::pkcs11("C_GetSlotList"))? {
        let Ok(info) = ctx.get_token_info(slot) else { continue };
        if !info.token_initialized() {
            free_slot.get_or_insert(slot);
        } else if info.label().trim_end() == label {
            return Ok(TokenSetup::AlreadyPresent);
        }
    }
    let slot = free_slot.ok_or(HsmError::NoFreeSlot)?;
    let so_pin = AuthPin::from(so_pin.to_owned());
    ctx.init_token(slot, &so_pin, label).map_err(HsmError::pkcs11("C_InitToken"))?;
    let session = ctx.open_rw_session(slot).map_err(HsmError::pkcs11("C_OpenSession"))?;
    session.login(UserType::So, Some(&so_pin)).map_err(HsmError::pkcs11("C_Login(SO)"))?;
    session.init_pin(&AuthPin::from(user_pin.to_owned())).map_err(HsmError::pkcs11("C_InitPIN"))?;
    session.logout().map_err(HsmError::pkcs11("C_Logout"))?;
    // Check the user PIN works before anyone relies on it.
    login(&session, user_pin)?;
    tracing::info!(label, "initialised a new token");
    Ok(TokenSetup::Initialised)
}

/// Writes a SoftHSM2 configuration that keeps tokens in `token_dir`.
pub fn write_softhsm_config(config_path: &Path, token_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(token_dir)?;
    let text = format!(
        "# Written by Castellan: SoftHSM2 tokens for this data directory.\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        token_dir.display()
    );
    std::fs::write(config_path, text)
}
