//! Helpers shared by the test harnesses (`tests/lab`, `tests/apiserver`): running programs
//! with a clean environment and reporting their output when they fail.
#![allow(dead_code, unused_imports)]

/// The lab's clean-environment command runner, shared with the library.
pub use frr_composer::lab::{command, pid_alive, run, PATH};

/// A child process that is killed and reaped when the guard goes (also when a test fails).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reports the running test as skipped (a prerequisite is missing outside CI): a SKIPPED line
/// on stderr, and the test's name appended to the file named by FRR_COMPOSER_SKIPPED (set by
/// .ci/test, which counts these tests as skipped instead of passed).
pub fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
    let Some(file) = std::env::var_os("FRR_COMPOSER_SKIPPED") else { return };
    let binary = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
        use std::io::Write;
        let _ = writeln!(f, "{binary}::{test}");
    }
}
