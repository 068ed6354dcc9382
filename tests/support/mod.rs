//! Helpers shared by the test harnesses (`tests/lab`, `tests/apiserver`): running programs
//! with a clean environment and reporting their output when they fail.
#![allow(dead_code, unused_imports)]

/// The lab's clean-environment command runner, shared with the library.
pub use frr_composer::lab::{command, pid_alive, run, PATH};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A child process that is killed and reaped when the guard goes (also when a test fails).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A program under test (the agent, the webhook): stdin and stdout to nothing, stderr (its
/// log) to a file. Dropping it kills it (SIGKILL, as a node losing it would), or with
/// [`terminate_on_drop`](Process::terminate_on_drop) asks for a SIGTERM first.
pub struct Process {
    child: Child,
    /// The program's file name, for messages.
    name: String,
    log: PathBuf,
    /// When the process was started.
    pub started: Instant,
    grace: Option<Duration>,
}

impl Process {
    /// Starts `cmd` with its stderr in `log` (created anew).
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> anyhow::Result<Process> {
        let stderr = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let started = Instant::now();
        let child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        let name = Path::new(cmd.get_program()).file_name().unwrap_or_default().to_string_lossy().into_owned();
        Ok(Process { child, name, log, started, grace: None })
    }

    /// On drop: SIGTERM, up to `grace`, then SIGKILL (default: SIGKILL at once).
    pub fn terminate_on_drop(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error with the log's last `lines` when the process has exited.
    pub fn alive(&mut self, lines: usize) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}); log {}, tail:\n{}", self.name, self.log.display(), tail_file(&self.log, lines));
        }
        Ok(())
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        match self.grace {
            Some(grace) => stop_child(&mut self.child, grace),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// True when `what` can run (`missing` is None). Otherwise: panics under `CI=true` (every
/// prerequisite is mandatory there), else reports the test as skipped and returns false.
pub fn prerequisite(what: &str, missing: Option<String>, hint: &str) -> bool {
    let Some(why) = missing else { return true };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} cannot run under CI=true: {why} ({hint})");
    }
    skip(&format!("{what} cannot run: {why} ({hint})"));
    false
}

/// True when the live lab can run `reqs` (root, `ip netns`, FRR, gobgpd): as [`prerequisite`].
pub fn require_lab(reqs: &[frr_composer::lab::Req]) -> bool {
    prerequisite("the live lab", frr_composer::lab::unavailable(reqs), "needs root, `ip netns` and .ci/install-frr.sh")
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

/// A free TCP port on 127.0.0.1 (free when probed: the caller binds it soon after).
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind a free port on 127.0.0.1");
    probe.local_addr().expect("the probe's address").port()
}

/// The last `n` lines of a file, for error messages.
pub fn tail_file(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
