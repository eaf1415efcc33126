//! The SoftHSM2 dev token: created under the data directory on first start, so `castellan serve` needs no set-up.
//! Its PINs are random and kept in files readable only by their owner; a production deployment configures a real
//! token in castellan.toml instead.

use crate::config::{DEV_TOKEN_LABEL, DevToken};
use anyhow::{Context, Result};
use castellan_hsm::{PinSource, TokenSetup};
use std::path::Path;

/// Points SoftHSM2 at the dev token's configuration. Must run before any thread starts: it sets an environment
/// variable, which SoftHSM reads when the module initialises (later, once [`ensure_dev_token`] wrote the file).
/// Nothing is written here: a command that fails before it needs the token leaves nothing behind.
pub fn prepare_environment(dev: &DevToken) {
    // SAFETY: called from main before the async runtime or any other thread exists.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &dev.softhsm_conf) };
}

/// Creates the dev token, its configuration and its PIN files unless they exist.
pub fn ensure_dev_token(dev: &DevToken) -> Result<()> {
    castellan_hsm::write_softhsm_config(&dev.softhsm_conf, &dev.token_dir)
        .with_context(|| format!("writing {}", dev.softhsm_conf.display()))?;
    let PinSource::File(user_pin_file) = &dev.config.pin else {
        anyhow::bail!("the dev token keeps its PIN in a file");
    };
    if !user_pin_file.exists() {
        write_secret_file(user_pin_file, &random_pin())?;
    }
    if !dev.so_pin_file.exists() {
        write_secret_file(&dev.so_pin_file, &random_pin())?;
    }
    let user_pin = dev.config.pin.read()?;
    let so_pin = PinSource::File(dev.so_pin_file.clone()).read()?;
    let setup = castellan_hsm::ensure_token(&dev.config.module, DEV_TOKEN_LABEL, &so_pin, &user_pin)
        .context("creating the SoftHSM2 dev token (is softhsm2 installed? scripts/install-deps)")?;
    if setup == TokenSetup::Initialised {
        tracing::info!(
            token = DEV_TOKEN_LABEL,
            dir = %dev.token_dir.display(),
            "initialised the SoftHSM2 dev token (first start)"
        );
    }
    Ok(())
}

fn random_pin() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..24).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

/// Writes a file only its owner can read, whole or not at all, refusing to overwrite one that exists.
fn write_secret_file(path: &Path, contents: &str) -> Result<()> {
    castellan_authority::files::create_secret_durably(path, contents.as_bytes())
        .with_context(|| format!("creating {}", path.display()))
}
