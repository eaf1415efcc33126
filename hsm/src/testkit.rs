//! A fresh SoftHSM2 token per test process, shared by every test in it.
//!
//! SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, and C_Initialize happens once per process: so the first test
//! to ask sets the variable, points it at a temporary token directory and creates the tokens; later tests reuse
//! them and keep apart by using their own key labels.

// Test support: a broken test machine fails the test that asked, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::config::{HsmConfig, PinSource, SOFTHSM_MODULE, TokenSelector};
use crate::devtoken::{ensure_token, write_softhsm_config};
use crate::token::Hsm;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The label of the token tests log in to.
pub const TOKEN_LABEL: &str = "castellan-test";
/// A second token no test logs in to with its right PIN, for wrong-PIN tests (login state is per token).
pub const SPARE_TOKEN_LABEL: &str = "castellan-spare";
/// A third token, for tests that log out (login state is shared by every session on a token).
pub const RELOGIN_TOKEN_LABEL: &str = "castellan-relogin";
pub const USER_PIN: &str = "test-user-pin-1234";
const SO_PIN: &str = "test-so-pin-5678";

pub struct TestToken {
    pub dir: tempfile::TempDir,
    pub config: HsmConfig,
    pub hsm: Hsm,
}

impl TestToken {
    /// A configuration for the spare token with this PIN file contents.
    pub fn spare_config(&self, pin: &str) -> HsmConfig {
        self.config_for(SPARE_TOKEN_LABEL, pin)
    }

    /// A configuration for the token tests may log out of.
    pub fn relogin_config(&self) -> HsmConfig {
        self.config_for(RELOGIN_TOKEN_LABEL, USER_PIN)
    }

    fn config_for(&self, label: &str, pin: &str) -> HsmConfig {
        let pin_file = self.dir.path().join(format!("spare-{}.pin", unique_suffix()));
        // The directory was just created by this process; failing to write into it is a broken test machine.
        std::fs::write(&pin_file, pin).expect("write spare PIN file");
        HsmConfig {
            module: self.config.module.clone(),
            token: TokenSelector::Label(label.into()),
            pin: PinSource::File(pin_file),
        }
    }
}

/// The module to test against: $CASTELLAN_PKCS11_MODULE or SoftHSM2's Debian path.
pub fn module_path() -> PathBuf {
    std::env::var_os("CASTELLAN_PKCS11_MODULE").map(PathBuf::from).unwrap_or_else(|| SOFTHSM_MODULE.into())
}

/// A label no other test in this process uses.
pub fn unique_label(prefix: &str) -> String {
    format!("{prefix}-{}", unique_suffix())
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The process's test token, created on first call. Panics (failing the test) when SoftHSM2 is unusable.
pub fn shared() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory for the test token");
        let conf = dir.path().join("softhsm2.conf");
        write_softhsm_config(&conf, &dir.path().join("tokens")).expect("write softhsm2.conf");
        // SAFETY: set before the module is loaded and under the OnceLock, so no other thread of this process
        // reads the environment through this code path at the same time.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        let module = module_path();
        for label in [TOKEN_LABEL, SPARE_TOKEN_LABEL, RELOGIN_TOKEN_LABEL] {
            ensure_token(&module, label, SO_PIN, USER_PIN)
                .unwrap_or_else(|e| panic!("create SoftHSM2 token {label} (is softhsm2 installed?): {e}"));
        }
        let pin_file = dir.path().join("user.pin");
        std::fs::write(&pin_file, USER_PIN).expect("write PIN file");
        let config =
            HsmConfig { module, token: TokenSelector::Label(TOKEN_LABEL.into()), pin: PinSource::File(pin_file) };
        let hsm = Hsm::open(&config).expect("log in to the test token");
        TestToken { dir, config, hsm }
    })
}
