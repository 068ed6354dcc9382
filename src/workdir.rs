//! Private working files (FRR syntax checks, configuration batches): they hold passwords.
//!
//! Every file lives in one directory per process (and per FRR root, for a chrooted FRR), made
//! under the temporary folder (`$TMPDIR`, default `/tmp`) with a random name and mode 0700.
//! Files inside are created exclusively (never through an existing name or link) with mode
//! 0600, and are removed when dropped; [`remove_all`] removes the directories themselves, at
//! exit and on SIGTERM/SIGINT (see [`crate::signals`]).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The private directories made by this process, by the folder they were made in.
fn dirs() -> MutexGuard<'static, Vec<(PathBuf, tempfile::TempDir)>> {
    static DIRS: OnceLock<Mutex<Vec<(PathBuf, tempfile::TempDir)>>> = OnceLock::new();
    DIRS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's private directory under `base` (made on first use).
pub fn private_dir(base: &Path) -> std::io::Result<PathBuf> {
    let mut dirs = dirs();
    if let Some((_, d)) = dirs.iter().find(|(b, _)| b == base) {
        return Ok(d.path().to_path_buf());
    }
    // the pid lets a test harness remove what a killed process left; the random part and the
    // exclusive creation keep the name unguessable and the directory ours
    let d = tempfile::Builder::new()
        .prefix(&format!("frr-composer-{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base)?;
    // the mode is given at creation; set it again in case the umask took bits away
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700))?;
    let path = d.path().to_path_buf();
    dirs.push((base.to_path_buf(), d));
    Ok(path)
}

/// A new file (mode 0600, created exclusively) holding `contents` in the private directory
/// under `base`; it is removed when the returned path is dropped.
pub fn create(base: &Path, kind: &str, contents: &[u8]) -> std::io::Result<tempfile::TempPath> {
    let dir = private_dir(base)?;
    let mut f = tempfile::Builder::new().prefix(&format!("{kind}-")).suffix(".conf").permissions(std::fs::Permissions::from_mode(0o600)).tempfile_in(dir)?;
    f.write_all(contents)?;
    f.as_file().sync_all()?;
    Ok(f.into_temp_path())
}

/// The process's private directory under the temporary folder.
pub fn default_dir() -> std::io::Result<PathBuf> {
    private_dir(&std::env::temp_dir())
}

/// Removes every private directory of this process with what is still in it.
pub fn remove_all() {
    let taken: Vec<_> = std::mem::take(&mut *dirs());
    for (_, d) in taken {
        let _ = d.close();
    }
}

/// Removes the private directories when dropped (at the end of `main`, also when unwinding).
pub struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_are_private_exclusive_and_removed() {
        let base = tempfile::tempdir().unwrap();
        let p = create(base.path(), "check", b"password s3cret").unwrap();
        let dir = p.parent().unwrap().to_path_buf();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::symlink_metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert!(dir.file_name().unwrap().to_string_lossy().starts_with("frr-composer-"));
        let second = create(base.path(), "check", b"x").unwrap();
        assert_eq!(second.parent().unwrap(), dir, "one directory per process and base");
        assert_ne!(*second, *p);
        let path = p.to_path_buf();
        drop(p);
        assert!(!path.exists());
        // the directory itself goes with remove_all (here only the one under `base` matters)
        drop(second);
        let mut d = dirs();
        let i = d.iter().position(|(b, _)| b == base.path()).unwrap();
        let (_, td) = d.remove(i);
        drop(d);
        td.close().unwrap();
        assert!(!dir.exists());
    }
}
