//! Helpers shared by the test harnesses (`tests/lab`, `tests/apiserver`): running programs
//! with a clean environment and reporting their output when they fail.
#![allow(dead_code)]

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A command with a clean, predictable environment and no standard input.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env_clear().env("PATH", PATH).env("LC_ALL", "C").stdin(Stdio::null());
    c
}

/// Run a command; Ok(stdout) on exit 0, else an error with its status, stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("{cmd:?} failed ({}):\n{}{}", out.status, stdout, String::from_utf8_lossy(&out.stderr));
    }
    Ok(stdout)
}

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

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
