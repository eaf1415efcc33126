//! Writing files so that a crash leaves either the old contents or the new, never a torn or empty file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn write_synced(tmp: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(tmp)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// Replaces `path` with `contents`: temporary file, fsync, rename, fsync of the directory.
pub fn replace_durably(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temporary_beside(path);
    write_synced(&tmp, contents, mode)?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Creates `path` with `contents` (mode 0600) only if it does not exist: the file appears whole or not at all,
/// and an existing one is never overwritten.
pub fn create_secret_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temporary_beside(path);
    write_synced(&tmp, contents, 0o600)?;
    // A hard link fails if the target exists, unlike rename.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    sync_parent(path)
}
