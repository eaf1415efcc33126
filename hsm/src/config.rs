//! How to reach the token: which module, which token, and where the PIN comes from.
//!
//! The PIN itself never appears in the configuration: only the name of an environment variable or the path of
//! a file that holds it, so a configuration file can be shared, logged and committed.

use crate::error::{HsmError, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where Debian and Ubuntu put SoftHSM2; the dev default.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// Which token: by label or by serial number.
    pub token: TokenSelector,
    /// Where the user PIN is read from at start.
    pub pin: PinSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSelector {
    Label(String),
    Serial(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinSource {
    /// The PIN is the value of this environment variable.
    Env(String),
    /// The PIN is the first line of this file.
    File(PathBuf),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(label) => write!(f, "label {label:?}"),
            TokenSelector::Serial(serial) => write!(f, "serial {serial:?}"),
        }
    }
}

impl PinSource {
    /// Reads the PIN. The value is zeroized when dropped and never formatted by this crate.
    pub fn read(&self) -> Result<Zeroizing<String>> {
        let pin = match self {
            PinSource::Env(var) => Zeroizing::new(
                std::env::var(var)
                    .map_err(|_| HsmError::PinUnavailable(format!("environment variable {var} is not set")))?,
            ),
            PinSource::File(path) => read_pin_file(path)?,
        };
        if pin.is_empty() {
            return Err(HsmError::PinUnavailable(format!("{} is empty", self.describe())));
        }
        Ok(pin)
    }

    fn describe(&self) -> String {
        match self {
            PinSource::Env(var) => format!("environment variable {var}"),
            PinSource::File(path) => format!("PIN file {}", path.display()),
        }
    }
}

fn read_pin_file(path: &Path) -> Result<Zeroizing<String>> {
    let raw = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| HsmError::PinUnavailable(format!("PIN file {}: {e}", path.display())))?,
    );
    Ok(Zeroizing::new(raw.lines().next().unwrap_or("").trim().to_owned()))
}
