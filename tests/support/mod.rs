//! Helpers shared by the test harnesses (`tests/lab`, `tests/apiserver`): running programs
//! with a clean environment and reporting their output when they fail.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// `kill -s SIG PID` (errors ignored: the process may be gone).
pub fn signal(pid: u32, sig: &str) {
    let _ = command("kill").args(["-s", sig, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// SIGTERM, up to `grace`, then SIGKILL; reaps the child.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `n` lines of a file, for error messages.
pub fn tail_file(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
