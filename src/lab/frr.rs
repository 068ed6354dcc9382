//! FRR instances in network namespaces, each in its own pathspace.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::{build_lock, command, frr10_7_root, frr10_root, process_matches, run, stop_processes, under, unique_name, wait_until, Netns};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrrVersion {
    /// Debian bookworm FRR 8.4, native.
    V8,
    /// Debian trixie FRR 10.3, in a chroot of `.ci/install-frr.sh`.
    V10,
    /// Debian forky (testing) FRR 10.7, in a chroot of `.ci/install-frr.sh`.
    V10_7,
}

impl FrrVersion {
    /// Every FRR the suite has, oldest first: tests that run on every version take them from
    /// here, so adding a version is one line.
    pub const ALL: [FrrVersion; 3] = [FrrVersion::V8, FrrVersion::V10, FrrVersion::V10_7];

    pub fn label(self) -> &'static str {
        match self {
            FrrVersion::V8 => "8.4",
            FrrVersion::V10 => "10.3",
            FrrVersion::V10_7 => "10.7",
        }
    }
    /// FRR under `root`: 8.x without mgmtd; with mgmtd, 10.7 when the package installed there
    /// says so, else 10.3.
    pub fn detect(root: &Path) -> FrrVersion {
        if !root.join("usr/lib/frr/mgmtd").is_file() {
            return FrrVersion::V8;
        }
        let status = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap_or_default();
        let frr_version = status
            .split("\n\n")
            .find(|p| p.lines().any(|l| l == "Package: frr"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("Version: ")))
            .unwrap_or("");
        if frr_version.starts_with("10.7") {
            FrrVersion::V10_7
        } else {
            FrrVersion::V10
        }
    }
    /// The file system root the daemons and vtysh run in (the tests' installation).
    pub fn root(self) -> PathBuf {
        match self {
            FrrVersion::V8 => PathBuf::from("/"),
            FrrVersion::V10 => frr10_root(),
            FrrVersion::V10_7 => frr10_7_root(),
        }
    }
    /// Daemons in start order.
    pub fn daemons(self) -> &'static [&'static str] {
        match self {
            FrrVersion::V8 => &["zebra", "bgpd", "bfdd", "staticd"],
            FrrVersion::V10 | FrrVersion::V10_7 => &["mgmtd", "zebra", "bgpd", "bfdd", "staticd"],
        }
    }
    /// FRR 10's mgmtd and staticd (a mgmtd back end) reject `-f`.
    fn takes_config_file(self, daemon: &str) -> bool {
        !(self != FrrVersion::V8 && matches!(daemon, "mgmtd" | "staticd"))
    }
}

/// Numeric uid and gid of `frr` in `root`'s /etc/passwd.
pub(crate) fn frr_ids(root: &Path) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string(root.join("etc/passwd"))?;
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == "frr" {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("no user frr in {}", root.join("etc/passwd").display())
}

/// Gives `path` and everything below it to uid:gid; links are changed themselves, never
/// followed (a link to a root file stays a link to a root-owned file).
fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// One FRR instance (pathspace `fc-<pid>-<n>`) running in a namespace: zebra, bgpd, bfdd,
/// staticd (mgmtd first for 10.3), each daemonized with a pid file. Its directory
/// `/tmp/<name>` (inside the chroot for 10.3) holds the pid files, logs (`<daemon>.log`),
/// the daemons' (empty) startup config and vtysh's config dir; the vty sockets are in
/// `/run/frr/<name>`. bgpd listens on port 179 in the namespace.
/// Drop stops exactly the daemons it started and removes both directories.
pub struct Frr {
    version: FrrVersion,
    name: String,
    ns: String,
    root: PathBuf,
    /// Instance directory, as seen by the daemons (inside `root`).
    dir: PathBuf,
    /// Socket directory, as seen by the daemons.
    run_dir: PathBuf,
    pids: Vec<(String, u32)>,
    loads: AtomicUsize,
}

impl Frr {
    /// Start the daemons in `ns` and wait until vtysh reaches all of them.
    pub fn start(version: FrrVersion, ns: &Netns) -> Result<Frr> {
        Self::start_at(version, version.root(), ns)
    }

    /// Start FRR installed under `root` (`/` for Debian's package) in `ns`.
    pub fn start_at(version: FrrVersion, root: PathBuf, ns: &Netns) -> Result<Frr> {
        Self::start_some(version, root, ns, version.daemons())
    }

    /// Start only `daemons` (in this order, a subset of [`FrrVersion::daemons`]) of the
    /// installation under `version.root()` in `ns`, e.g. zebra alone (and FRR 10's mgmtd) for
    /// a routing daemon of another suite that reaches zebra by its socket
    /// ([`zserv_socket`](Frr::zserv_socket)).
    pub fn start_daemons(version: FrrVersion, ns: &Netns, daemons: &[&str]) -> Result<Frr> {
        if let Some(d) = daemons.iter().find(|d| !version.daemons().contains(d)) {
            bail!("FRR {}: the lab does not run {d}", version.label());
        }
        Self::start_some(version, version.root(), ns, daemons)
    }

    fn start_some(version: FrrVersion, root: PathBuf, ns: &Netns, daemons: &[&str]) -> Result<Frr> {
        super::frr_roots().insert(root.clone());
        let name = unique_name();
        let dir = PathBuf::from("/tmp").join(&name);
        let run_dir = PathBuf::from("/run/frr").join(&name);
        let ids = frr_ids(&root)?;
        let mut frr = Frr { version, name, ns: ns.name().to_string(), root, dir, run_dir, pids: Vec::new(), loads: AtomicUsize::new(0) };
        // From here on, Drop cleans up whatever exists.
        // every directory of the instance is new and private: created exclusively, never reused
        let conf_dir = frr.host(&frr.dir.join("etc").join(&frr.name));
        super::private_dir(&frr.host(&frr.dir))?;
        super::private_dir(&frr.host(&frr.dir.join("etc")))?;
        super::private_dir(&conf_dir)?;
        super::write_new(&conf_dir.join("vtysh.conf"), b"")?;
        super::write_new(&conf_dir.join("frr.conf"), b"")?;
        chown_tree(&frr.host(&frr.dir), ids.0, ids.1)?;
        let run_host = frr.host(&frr.run_dir);
        fs::create_dir_all(run_host.parent().expect("/run/frr/<name>"))?;
        super::private_dir(&run_host)?;
        std::os::unix::fs::lchown(&run_host, Some(ids.0), Some(ids.1))?;

        for d in daemons {
            frr.start_daemon(d)?;
        }
        let want: Vec<&str> = daemons.to_vec();
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(10), || match frr.vtysh(&["show daemons"]) {
            Ok(out) => {
                let have: BTreeSet<&str> = out.split_whitespace().collect();
                last = out.clone();
                want.iter().all(|d| have.contains(d))
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        });
        if !ok {
            bail!("FRR {} in {}: vtysh does not reach all daemons: {last}\n{}", version.label(), frr.ns, frr.logs());
        }
        // FRR 10: right after start, mgmtd may hold the running datastore while its back
        // ends (zebra, staticd) connect: "% Can't enter config; running datastore locked by
        // another session". Wait until a configuration session can start.
        let ok = wait_until(Duration::from_secs(10), || match frr.vtysh(&["configure terminal", "end"]) {
            Ok(out) => {
                last = out.clone();
                !out.contains('%')
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        });
        if !ok {
            bail!("FRR {} in {}: cannot enter configuration mode: {last}\n{}", version.label(), frr.ns, frr.logs());
        }
        Ok(frr)
    }

    pub fn version(&self) -> FrrVersion {
        self.version
    }
    /// The pathspace (`vtysh -N NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn netns(&self) -> &str {
        &self.ns
    }
    /// The instance directory, as seen from the host.
    pub fn dir(&self) -> PathBuf {
        self.host(&self.dir)
    }
    /// Arguments that point `frr-composer apply` / `status` at this instance.
    pub fn cli_args(&self) -> Vec<String> {
        let mut v = vec!["--pathspace".to_string(), self.name.clone(), "--vtysh-config-dir".to_string(), self.dir.join("etc").display().to_string()];
        if self.root != Path::new("/") {
            v.push("--frr-root".into());
            v.push(self.root.display().to_string());
        }
        v
    }

    /// The same instance for frr-composer's library (what `cli_args` says to the binary).
    pub fn location(&self) -> crate::frr::vtysh::FrrLocation {
        crate::frr::vtysh::FrrLocation {
            pathspace: Some(self.name.clone()),
            config_dir: Some(self.dir.join("etc")),
            root: (self.root != Path::new("/")).then(|| self.root.clone()),
            ..Default::default()
        }
    }

    /// zebra's API socket (ZAPI) as seen from the host, for a client outside the chroot.
    pub fn zserv_socket(&self) -> PathBuf {
        self.host(&self.run_dir.join("zserv.api"))
    }

    pub fn pid(&self, daemon: &str) -> Option<u32> {
        self.pids.iter().find(|(d, _)| d == daemon).map(|(_, p)| *p)
    }

    fn host(&self, inner: &Path) -> PathBuf {
        under(&self.root, inner)
    }

    fn in_root(&self, program: &str) -> Command {
        match self.version {
            _ if self.root == Path::new("/") => command(program),
            _ => {
                let mut c = command("chroot");
                c.arg(&self.root).arg(program);
                c
            }
        }
    }

    /// Start one daemon (again, e.g. after `kill_daemon`) with an empty configuration.
    pub fn start_daemon(&mut self, daemon: &str) -> Result<()> {
        if let Some(pid) = self.pid(daemon) {
            if process_matches(pid, daemon, Some(&self.name)) {
                bail!("{daemon} already runs (pid {pid})");
            }
            self.pids.retain(|(d, _)| d != daemon);
        }
        let pidfile = self.dir.join(format!("{daemon}.pid"));
        let _ = fs::remove_file(self.host(&pidfile));
        let stderr_path = self.host(&self.dir.join(format!("{daemon}.stderr")));
        super::write_new(&stderr_path, b"")?;
        let stderr = fs::OpenOptions::new().append(true).custom_flags(libc::O_NOFOLLOW).open(&stderr_path)?;
        let mut c = command("ip");
        c.args(["netns", "exec", &self.ns]);
        if self.root != Path::new("/") {
            c.arg("chroot").arg(&self.root);
        }
        c.arg(format!("/usr/lib/frr/{daemon}"))
            .args(["-d", "-N", &self.name, "-P", "0"])
            .arg("-i")
            .arg(&pidfile)
            .arg("--log")
            .arg(format!("file:{}", self.dir.join(format!("{daemon}.log")).display()));
        if self.version.takes_config_file(daemon) {
            c.arg("-f").arg(self.dir.join("etc").join(&self.name).join("frr.conf"));
        }
        c.stdout(Stdio::null()).stderr(stderr);
        // With -d the parent returns once the daemon is up (or failed).
        let status = {
            let _building = build_lock();
            c.status().with_context(|| format!("cannot run {c:?}"))?
        };
        if !status.success() {
            bail!("{daemon} ({}) failed to start ({status}): {}", self.version.label(), fs::read_to_string(&stderr_path).unwrap_or_default());
        }
        let host_pidfile = self.host(&pidfile);
        let mut pid = None;
        wait_until(Duration::from_secs(5), || {
            pid = fs::read_to_string(&host_pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok());
            pid.is_some()
        });
        let pid = pid.ok_or_else(|| anyhow!("{daemon}: no pid file {}", host_pidfile.display()))?;
        if !process_matches(pid, daemon, Some(&self.name)) {
            bail!("{daemon}: pid {pid} from {} is not running\n{}", host_pidfile.display(), self.logs());
        }
        self.pids.push((daemon.to_string(), pid));
        Ok(())
    }

    /// Stop one daemon (SIGTERM, then SIGKILL after 3 s).
    pub fn kill_daemon(&mut self, daemon: &str) -> Result<()> {
        let pid = self.pid(daemon).ok_or_else(|| anyhow!("{daemon} was not started"))?;
        stop_processes(&[(pid, daemon.to_string(), Some(self.name.clone()))], Duration::from_secs(3));
        self.pids.retain(|(d, _)| d != daemon);
        Ok(())
    }

    /// True while the daemon started by this instance runs.
    pub fn daemon_running(&self, daemon: &str) -> bool {
        self.pid(daemon).is_some_and(|p| process_matches(p, daemon, Some(&self.name)))
    }

    fn vtysh_command(&self) -> Command {
        let mut c = self.in_root("vtysh");
        c.args(["-N", &self.name, "-H", "/dev/null", "--config_dir"]).arg(self.dir.join("etc")).env_remove("VTYSH_PAGER");
        c
    }

    /// `vtysh -N NAME -c CMD...` (one session, commands in order): Ok(stdout) when vtysh
    /// exits 0, else an error with its output.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String> {
        let mut c = self.vtysh_command();
        for cmd in cmds {
            c.arg("-c").arg(cmd);
        }
        run(&mut c)
    }

    /// One `show ... json` command, parsed.
    pub fn vtysh_json(&self, cmd: &str) -> Result<serde_json::Value> {
        let out = self.vtysh(&[cmd])?;
        serde_json::from_str(&out).with_context(|| format!("`{cmd}` did not return JSON: {out}"))
    }

    /// Write `text` to a file and apply it with `vtysh -f FILE` (adds and changes lines,
    /// removes nothing). Ok(vtysh's output) when FRR accepted every line, else Err with
    /// vtysh's messages (the rejected lines and why).
    pub fn load_config_file(&self, text: &str) -> Result<String> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst);
        let inner = self.dir.join(format!("load-{n}.conf"));
        let host = self.host(&inner);
        super::write_new(&host, text.as_bytes())?;
        // FRR 10 refuses the whole file while another session holds the running datastore
        // (nothing is applied then): retry that case for a few seconds.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (out, raw) = loop {
            let out = self.vtysh_command().arg("-f").arg(&inner).output()?;
            let mut raw = String::from_utf8_lossy(&out.stdout).into_owned();
            raw.push_str(&String::from_utf8_lossy(&out.stderr));
            if raw.contains("datastore locked by another session") && Instant::now() < deadline {
                eprintln!("lab: FRR {}: running datastore locked, retrying vtysh -f", self.version.label());
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            break (out, raw);
        };
        // FRR 10's vtysh forks one child per daemon, each prints progress and the same
        // complaints: drop the progress lines and repeated messages.
        let mut seen = BTreeSet::new();
        let mut msg = String::new();
        let mut complaint = false;
        for l in raw.lines() {
            let t = l.trim();
            let progress = t.is_empty()
                || t.starts_with("Waiting for children")
                || (t.starts_with('[') && (t.ends_with("] sending configuration") || t.ends_with("] done")));
            if progress || !seen.insert(t.to_string()) {
                continue;
            }
            // FRR 10.7's notes on a batch that changed nothing (a retried load whose first
            // try went through) refuse nothing: the same rule as the agent's applier
            complaint |= (t.starts_with('%') || t.starts_with("line ")) && !crate::frr::vtysh::informational(t);
            msg.push_str(l);
            msg.push('\n');
        }
        if !out.status.success() || complaint {
            bail!("FRR {} rejected lines of {} (vtysh -f: {}):\n{msg}", self.version.label(), host.display(), out.status);
        }
        Ok(msg)
    }

    pub fn running_config(&self) -> Result<String> {
        self.vtysh(&["show running-config"])
    }

    /// `bgpState` of a neighbor ("Established", "Active", ...), from `show bgp neighbors X json`.
    pub fn bgp_neighbor_state(&self, addr: &str) -> Result<String> {
        let v = self.vtysh_json(&format!("show bgp neighbors {addr} json"))?;
        v.get(addr).and_then(|n| n.get("bgpState")).and_then(|s| s.as_str()).map(str::to_string).ok_or_else(|| anyhow!("no bgpState for {addr} in {v}"))
    }

    /// Prefixes in the BGP table (`show bgp ipv4|ipv6 unicast json`).
    pub fn bgp_prefixes(&self, v6: bool) -> Result<BTreeSet<String>> {
        let fam = if v6 { "ipv6" } else { "ipv4" };
        let v = self.vtysh_json(&format!("show bgp {fam} unicast json"))?;
        Ok(v.get("routes").and_then(|r| r.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default())
    }

    /// Every daemon's log file and startup stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for d in self.version.daemons() {
            for ext in ["stderr", "log"] {
                let p = self.host(&self.dir.join(format!("{d}.{ext}")));
                if let Ok(t) = fs::read_to_string(&p) {
                    if !t.trim().is_empty() {
                        s.push_str(&format!("--- {}\n{}\n", p.display(), tail(&t, 40)));
                    }
                }
            }
        }
        s
    }
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Frr {
    fn drop(&mut self) {
        let procs: Vec<(u32, String, Option<String>)> = self.pids.iter().rev().map(|(d, p)| (*p, d.clone(), Some(self.name.clone()))).collect();
        stop_processes(&procs, Duration::from_secs(3));
        if std::env::var_os("FRR_COMPOSER_LAB_KEEP").is_some() {
            eprintln!("lab: keeping {}", self.host(&self.dir).display());
        } else {
            let _ = fs::remove_dir_all(self.host(&self.dir));
        }
        let _ = fs::remove_dir_all(self.host(&self.run_dir));
    }
}
