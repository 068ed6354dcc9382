//! Running vtysh: show commands (text and JSON), FRR's syntax check, and configuration batches.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where FRR is and how to reach it.
#[derive(Clone, Debug, Default)]
pub struct FrrLocation {
    /// The vtysh program (default `vtysh`).
    pub vtysh: Option<PathBuf>,
    /// FRR's pathspace (`vtysh -N`).
    pub pathspace: Option<String>,
    /// FRR installed under another root (e.g. a chroot): vtysh runs as `chroot ROOT vtysh`.
    pub root: Option<PathBuf>,
    /// vtysh's configuration folder (`--config_dir`), as seen by vtysh.
    pub config_dir: Option<PathBuf>,
    /// Folder of the vty sockets, as seen by vtysh (default `/run/frr[/<pathspace>]`).
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FrrError {
    #[error("cannot run vtysh ({program}): {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("FRR is not running or not reachable{}: {output}", .pathspace.as_ref().map(|p| format!(" (pathspace {p})")).unwrap_or_default())]
    Unreachable { pathspace: Option<String>, output: String },
    #[error("vtysh `{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("`{command}` did not return JSON: {reason}")]
    Json { command: String, reason: String },
    #[error("FRR {found} is too old; frr-composer needs FRR 8.0 or later")]
    TooOld { found: String },
    #[error("cannot write {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
}

/// A line FRR refused, with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number in the text that was checked or applied.
    pub line_no: usize,
    pub line: String,
    pub message: String,
}

impl FrrLocation {
    pub fn program(&self) -> String {
        self.vtysh.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "vtysh".into())
    }

    fn command(&self) -> Command {
        let mut c = match &self.root {
            Some(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg(self.program());
                c
            }
            None => Command::new(self.program()),
        };
        if let Some(ns) = &self.pathspace {
            c.args(["-N", ns]);
        }
        if let Some(dir) = &self.config_dir {
            c.arg("--config_dir").arg(dir);
        }
        // no history file, no pager
        c.args(["-H", "/dev/null"]).env_remove("VTYSH_PAGER");
        c
    }

    /// The vty sockets' folder on this host (under `root`).
    pub fn run_dir_on_host(&self) -> PathBuf {
        let inner = self.run_dir.clone().unwrap_or_else(|| match &self.pathspace {
            Some(ns) => Path::new("/run/frr").join(ns),
            None => PathBuf::from("/run/frr"),
        });
        match &self.root {
            Some(root) => root.join(inner.strip_prefix("/").unwrap_or(&inner)),
            None => inner,
        }
    }

    /// The turn of this FRR: FRR 10.3's mgmtd mixes up concurrent vtysh sessions. In the lab,
    /// a configuration batch sent while other vtysh processes ran `show` commands reached zebra
    /// with a corrupted value ("UTF-8 error"); zebra dropped its mgmtd connection, and every
    /// later commit hung until mgmtd's 10-minute backend timeout. Every vtysh this process
    /// runs against one FRR therefore waits for the previous one to finish.
    fn turn(&self) -> std::sync::Arc<std::sync::Mutex<()>> {
        use std::collections::BTreeMap;
        use std::sync::{Arc, Mutex, OnceLock};
        static TURNS: OnceLock<Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
        let turns = TURNS.get_or_init(Default::default);
        let mut t = turns.lock().unwrap_or_else(|e| e.into_inner());
        t.entry(self.run_dir_on_host()).or_default().clone()
    }

    /// The daemons' vty sockets (`<daemon>.vty` in the run folder), by daemon name.
    pub fn vty_sockets(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(self.run_dir_on_host())?
            .flatten()
            .filter_map(|e| Some((e.file_name().to_string_lossy().strip_suffix(".vty")?.to_string(), e.path())))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The daemons whose vty socket accepts a connection, without running vtysh (so that a
    /// liveness check never waits behind a long configuration batch).
    pub fn listening_daemons(&self) -> Result<Vec<String>, FrrError> {
        let sockets = self
            .vty_sockets()
            .map_err(|e| FrrError::Unreachable { pathspace: self.pathspace.clone(), output: format!("{}: {e}", self.run_dir_on_host().display()) })?;
        Ok(sockets.into_iter().filter(|(_, path)| std::os::unix::net::UnixStream::connect(path).is_ok()).map(|(daemon, _)| daemon).collect())
    }

    /// Runs vtysh with a time limit: a vtysh that hangs (a daemon that does not answer) is
    /// killed and reported instead of holding the caller forever.
    fn output(&self, c: &mut Command, what: &str, limit: Duration) -> Result<std::process::Output, FrrError> {
        use std::io::Read;
        use wait_timeout::ChildExt;
        let turn = self.turn();
        let _turn = turn.lock().unwrap_or_else(|e| e.into_inner());
        let mut child =
            c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| FrrError::Spawn { program: self.program(), source: e })?;
        let mut pipes = (child.stdout.take(), child.stderr.take());
        let out_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = pipes.0.take() {
                let _ = p.read_to_end(&mut b);
            }
            b
        });
        let err_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = pipes.1.take() {
                let _ = p.read_to_end(&mut b);
            }
            b
        });
        let status = match child.wait_timeout(limit).map_err(|e| FrrError::Spawn { program: self.program(), source: e })? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FrrError::Command { command: what.to_string(), output: format!("no answer within {} s; vtysh was stopped", limit.as_secs()) });
            }
        };
        Ok(std::process::Output { status, stdout: out_reader.join().unwrap_or_default(), stderr: err_reader.join().unwrap_or_default() })
    }

    fn run(&self, c: &mut Command, what: &str) -> Result<String, FrrError> {
        let out = self.output(c, what, SHOW_LIMIT)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            let output = format!("{stdout}{stderr}").trim().to_string();
            if output.contains("Exiting: failed to connect")
                || output.contains("failed to connect to any daemons")
                || output.contains("No such file or directory")
            {
                return Err(FrrError::Unreachable { pathspace: self.pathspace.clone(), output });
            }
            return Err(FrrError::Command { command: what.to_string(), output });
        }
        Ok(stdout)
    }

    /// Runs one show command.
    pub fn show(&self, cmd: &str) -> Result<String, FrrError> {
        let mut c = self.command();
        c.args(["-c", cmd]);
        self.run(&mut c, cmd)
    }

    pub fn show_json(&self, cmd: &str) -> Result<serde_json::Value, FrrError> {
        let text = self.show(cmd)?;
        serde_json::from_str(&text)
            .map_err(|e| FrrError::Json { command: cmd.to_string(), reason: format!("{e}: {}", text.chars().take(200).collect::<String>()) })
    }

    pub fn running_config(&self) -> Result<String, FrrError> {
        self.show("show running-config")
    }

    /// The running configuration as the daemons that use each part hold it, and the whole
    /// merged one, read in one vtysh session. vtysh's plain `show running-config` merges all
    /// daemons, so prefix lists and route-maps that bgpd lost in a restart would still show
    /// (zebra has copies): the BGP parts (prefix lists, route-maps, routers, BGP debugging) are
    /// taken from bgpd's own configuration, everything else from the merged one.
    pub fn running_configs(&self) -> Result<(String, String), FrrError> {
        let mut c = self.command();
        c.args(["-c", "show running-config", "-c", "show running-config bgpd"]);
        let out = self.run(&mut c, "show running-config")?;
        let marker = "Building configuration...";
        let mut parts = out.split(marker).filter(|p| !p.trim().is_empty());
        let (Some(full), Some(bgpd)) = (parts.next(), parts.next()) else {
            return Err(FrrError::Command { command: "show running-config bgpd".into(), output: out.chars().take(300).collect() });
        };
        let bgp_owned = |line: &str| {
            line.starts_with("ip prefix-list")
                || line.starts_with("ipv6 prefix-list")
                || line.starts_with("route-map ")
                || line.starts_with("router bgp")
                || line.starts_with("debug bgp")
        };
        let mut owned = String::new();
        for (text, from_bgpd) in [(full, false), (bgpd, true)] {
            let mut keep = false;
            for line in text.lines() {
                if !line.starts_with(' ') && !line.trim().is_empty() {
                    keep = bgp_owned(line) == from_bgpd;
                }
                if keep {
                    owned.push_str(line);
                    owned.push('\n');
                }
            }
        }
        Ok((format!("{marker}{full}"), owned))
    }

    pub fn owned_running_config(&self) -> Result<String, FrrError> {
        Ok(self.running_configs()?.1)
    }

    /// FRR's version, from `show version`; refuses versions older than 8.
    pub fn version(&self) -> Result<String, FrrError> {
        let text = self.show("show version")?;
        let version = text
            .split_whitespace()
            .skip_while(|w| *w != "FRRouting")
            .nth(1)
            .map(|v| v.trim_start_matches('(').trim_end_matches(')').trim_end_matches(',').to_string())
            .unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
        if crate::core::capability::release(&version).is_none_or(|(major, _)| major < 8) {
            return Err(FrrError::TooOld { found: version });
        }
        Ok(version)
    }

    /// FRR's own syntax check of a whole configuration (`vtysh -C -f`), without touching the
    /// daemons. Returns the refused lines.
    pub fn check(&self, text: &str) -> Result<Vec<Rejected>, FrrError> {
        let (host, inner) = self.temp_file("check", text)?;
        let mut c = self.command();
        c.arg("-C").arg("-f").arg(&inner);
        let out = self.output(&mut c, "vtysh -C -f", SHOW_LIMIT);
        drop(host);
        let out = out?;
        let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let rejected = rejected_lines(text, &output);
        if rejected.is_empty() && !out.status.success() {
            return Err(FrrError::Command { command: "vtysh -C -f".into(), output: output.trim().to_string() });
        }
        Ok(rejected)
    }

    /// Writes `text` to a private working file that vtysh can read (under `root` when
    /// chrooted, see [`crate::workdir`]); returns (the file on this host, removed when dropped;
    /// its path for vtysh).
    fn temp_file(&self, kind: &str, text: &str) -> Result<(tempfile::TempPath, PathBuf), FrrError> {
        let tmp = std::env::temp_dir();
        let base = match &self.root {
            Some(root) => root.join(tmp.strip_prefix("/").unwrap_or(&tmp)),
            None => tmp.clone(),
        };
        let host = crate::workdir::create(&base, kind, text.as_bytes()).map_err(|e| FrrError::File { path: base.clone(), source: e })?;
        let inner = match &self.root {
            Some(root) => Path::new("/").join(host.strip_prefix(root).unwrap_or(&host)),
            None => host.to_path_buf(),
        };
        Ok((host, inner))
    }

    /// Sends a batch of configuration commands as one configuration file (`vtysh -f`): FRR
    /// takes it as one transaction (FRR 10 commits once instead of once per command, 30x
    /// faster for a large batch). Returns the commands FRR refused. FRR 10 may briefly hold its
    /// configuration datastore for another session; that is retried for up to 5 s.
    pub fn configure(&self, batch: &str) -> Result<Vec<Rejected>, FrrError> {
        let (host, inner) = self.temp_file("batch", batch)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = loop {
            let mut c = self.command();
            c.arg("-f").arg(&inner);
            let out = match self.output(&mut c, "vtysh -f", batch_limit(batch)) {
                Ok(o) => o,
                Err(e) => break Err(e),
            };
            let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            if output.contains("datastore locked by another session") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            if output.contains("failed to connect to any daemons") || output.contains("Exiting: failed to connect") {
                break Err(FrrError::Unreachable { pathspace: self.pathspace.clone(), output: output.trim().to_string() });
            }
            if std::env::var_os("FC_DEBUG_VTYSH").is_some() {
                eprintln!("BATCH<<{batch}>>\nVTYSH OUTPUT<<{output}>>");
            }
            let rejected = rejected_lines(batch, &output);
            if rejected.is_empty() && !out.status.success() {
                break Err(FrrError::Command { command: "vtysh -f".into(), output: output.trim().to_string() });
            }
            break Ok(rejected);
        };
        drop(host);
        result
    }
}

/// How long a show command or a syntax check may take.
const SHOW_LIMIT: Duration = Duration::from_secs(60);

/// How long a configuration batch may take: FRR 8.4 needs about 8 ms a line (10.3 much less),
/// so 30 s plus 30 ms a line leaves a wide margin while a hung mgmtd transaction (which FRR
/// 10.3 only aborts after 10 minutes) holds this FRR's turn for half a minute, not for ten.
fn batch_limit(batch: &str) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(30u64.saturating_mul(batch.lines().count() as u64))
}

/// `line N: % message` lines of vtysh's file modes (`-C -f`, `-f`), paired with the text's
/// lines; FRR 10 repeats them once per daemon.
fn rejected_lines(text: &str, output: &str) -> Vec<Rejected> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rejected = Vec::new();
    let mut bare = Vec::new();
    for l in output.lines() {
        // some refusals come from the daemon without a line number (FRR 8.4: "% Malformed
        // Route Target list"); they still mean the batch was not fully applied
        if l.trim_start().starts_with('%') && !informational(l) {
            bare.push(l.trim().to_string());
            continue;
        }
        let Some(rest) = l.trim().strip_prefix("line ") else { continue };
        let Some((n, msg)) = rest.split_once(':') else { continue };
        let Ok(n) = n.trim().parse::<usize>() else { continue };
        if informational(msg) {
            continue;
        }
        let r = Rejected { line_no: n, line: lines.get(n.wrapping_sub(1)).unwrap_or(&"").trim().to_string(), message: msg.trim().to_string() };
        if !rejected.contains(&r) {
            rejected.push(r);
        }
    }
    for message in bare {
        if !rejected.iter().any(|r| r.message == message) {
            rejected.push(Rejected { line_no: 0, line: String::new(), message });
        }
    }
    rejected
}

/// Messages FRR prints with `%` that refuse nothing: notes on commands it did accept, and
/// vtysh's own notice that its vtysh.conf is missing (FRR started with `-N` and no
/// vtysh.conf in its folder), which is about vtysh, not about the configuration's lines.
pub(crate) fn informational(message: &str) -> bool {
    // FRR 10.7's mgmtd: "% Configuration applied with notes:" then "No changes found to be
    // committed!" when a batch changes nothing of a daemon it manages (the batch applied;
    // the verification that follows every apply checks the result)
    const NOTES: &[&str] = &["Echo mode works correctly for IPv4", "Can't open configuration file", "Configuration applied with notes"];
    NOTES.iter().any(|n| message.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_messages_with_lines_once() {
        let text = "router bgp 65000\n neighbor 192.0.2.1 timers 70000 9\nfoo bar\n";
        // FRR 10 prints each complaint once per daemon
        let output = "[12|mgmtd] sending configuration\n% Malformed Route Target list\nline 2: % Unknown command[4]:  neighbor 192.0.2.1 timers 70000 9\nline 2: % Unknown command[4]:  neighbor 192.0.2.1 timers 70000 9\nline 3: % Unknown command[4]: foo bar\nline 5: % Echo mode works correctly for IPv4, but only works when the peer is also FRR for IPv6.\n";
        let r = rejected_lines(text, output);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!((r[2].line_no, r[2].message.as_str()), (0, "% Malformed Route Target list"));
        assert_eq!((r[0].line_no, r[0].line.as_str()), (2, "neighbor 192.0.2.1 timers 70000 9"));
        assert_eq!(r[1].line, "foo bar");
    }

    #[test]
    fn a_missing_vtysh_conf_is_not_a_refusal() {
        let text = "router bgp 65000\n";
        let output = "% Can't open configuration file /etc/frr/lab1/vtysh.conf due to 'No such file or directory'.\n";
        assert_eq!(rejected_lines(text, output), vec![]);
        let output = format!("{output}line 1: % Unknown command: router bgp 65000\n");
        assert_eq!(rejected_lines(text, &output).len(), 1);
    }

    #[test]
    fn frr_10_7_notes_are_not_refusals() {
        let output = "[2550|mgmtd] sending configuration\n[2551|zebra] sending configuration\n% Configuration applied with notes:\nNo changes found to be committed!\n[2551|zebra] done\n";
        assert!(rejected_lines("router bgp 65000\n", output).is_empty());
        // a refusal beside the note still counts
        let output = format!("{output}line 1: % Unknown command: router bgpx 65000\n");
        assert_eq!(rejected_lines("router bgpx 65000\n", &output).len(), 1);
    }
}
