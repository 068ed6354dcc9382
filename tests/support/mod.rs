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
