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
