//! A BGP lab on one machine: real FRR daemons and GoBGP peers in Linux network namespaces.
//!
//! Two users: `frr-composer lab` (the node's FRR configured as `apply` does, one peer per
//! neighbor, see [`topology`]) and the live tests (`tests/lab`), which build their own
//! topologies from the same parts.
//!
//! Everything created carries a name unique to the process and the object (`fc-<pid>-<n>`):
//! network namespaces, FRR pathspaces (`-N`), per-instance directories, GoBGP API ports, so
//! labs can run side by side. Every object cleans up in `Drop` (processes it started,
//! namespaces, directories); declare the namespaces first so that the daemons inside them are
//! dropped (stopped) before the namespaces. Namespaces are also recorded in a process-wide
//! register, so that a signal handler can remove them ([`cleanup_all`]) while the lab is
//! being built. Leftovers of a killed process (SIGKILL gives no chance to clean up) are
//! removed by the next lab: namespaces and directories named `fc-<pid>-...` whose process no
//! longer exists, together with the processes still running inside those namespaces.
//!
//! FRR runs from a file system root: `/` for Debian's package (`/usr/lib/frr`), or a chroot
//! (FRR 10.3 of `.ci/install-frr.sh` at `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/trixie`).
//! The vty sockets are plain files, so vtysh runs outside the namespace (inside the chroot,
//! where the sockets are at `/run/frr/<pathspace>`).
//!
//! Network rule: only namespaces created here are touched, never the host's interfaces; the
//! namespaces have no link to the host and no route out.

pub mod expect;
pub mod frr;
pub mod gobgp;
pub mod topology;

pub use frr::{Frr, FrrVersion};
pub use gobgp::{BgpRoute, GoBgp, GoBgpNeighbor};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The programs' search path: the lab's programs run with a clean environment.
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

// ------------------------------------------------------------------------------ basics

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn next_seq() -> usize {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// A name unique to this process and call, and not guessable by another local user:
/// `fc-<pid>-<n>-<random>` (what is created under it is created exclusively anyway; the random
/// part keeps a planted name from making the lab fail).
pub fn unique_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the system's random source, per instance
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("fc-{}-{}-{:08x}", std::process::id(), next_seq(), random as u32)
}

/// Creates the directory `path` (0700) exclusively: an existing directory, file or link of
/// that name is an error, never reused or followed.
pub(crate) fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(path)
}

/// Writes a new file `path` (0600) exclusively: whatever already has that name (a planted
/// link too) is first removed as a name, never written through.
pub(crate) fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{} is a directory", path.display()))),
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    // O_CREAT|O_EXCL: fails on any name created in between, a dangling link included
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?.write_all(contents)
}

/// Poll `f` (20 ms, growing to 250 ms) until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        if f() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(delay.min(deadline - now));
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run(command("ip").args(args))
}

fn cache_dir() -> PathBuf {
    std::env::var_os("FRR_COMPOSER_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/frr-composer"))
}

/// The FRR 10.3 chroot built by `.ci/install-frr.sh` (Debian trixie).
pub fn frr10_root() -> PathBuf {
    cache_dir().join("trixie")
}

/// The FRR 10.7 chroot built by `.ci/install-frr.sh` (Debian forky).
pub fn frr10_7_root() -> PathBuf {
    cache_dir().join("forky")
}

/// The GoBGP release that `.ci/install-gobgp.sh` builds from the Go module proxy (Debian
/// bookworm's gobgpd 3.10 is the lab's ordinary peer; this one is the router that speaks to
/// FRR 8.4's zebra).
pub const GOBGP_RELEASE: &str = "4.8.0";

/// Where `.ci/install-gobgp.sh` puts `gobgpd` and `gobgp` of [`GOBGP_RELEASE`].
pub fn gobgp_release_bin() -> PathBuf {
    cache_dir().join(format!("gobgp-{GOBGP_RELEASE}")).join("bin")
}

/// `ip -j route` output as destination -> gateways (one per ECMP next hop; none for a
/// directly connected route). Unparsable output is an empty table.
pub fn route_table(json: &str) -> BTreeMap<String, BTreeSet<String>> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut t = BTreeMap::new();
    for r in v.as_array().into_iter().flatten() {
        let Some(dst) = r["dst"].as_str() else { continue };
        let mut hops: BTreeSet<String> = r["gateway"].as_str().map(String::from).into_iter().collect();
        hops.extend(r["nexthops"].as_array().into_iter().flatten().filter_map(|h| h["gateway"].as_str().map(String::from)));
        t.entry(dst.to_string()).or_insert_with(BTreeSet::new).extend(hops);
    }
    t
}

/// A path as seen from the host, for a path inside `root`.
pub(crate) fn under(root: &Path, inner: &Path) -> PathBuf {
    root.join(inner.strip_prefix("/").unwrap_or(inner))
}

// ------------------------------------------------------------------------------ processes

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// True while `pid` runs (not a zombie), its comm is `comm` and (when given) its command
/// line contains `marker`: the check that we signal exactly the process we started.
pub(crate) fn process_matches(pid: u32, comm: &str, marker: Option<&str>) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the comm may contain spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let state = stat[close + 1..].trim_start().chars().next().unwrap_or('?');
    if state == 'Z' || state == 'X' {
        return false;
    }
    let name = &stat[open + 1..close];
    // comm is truncated to 15 bytes.
    let want: String = comm.chars().take(15).collect();
    if name != want {
        return false;
    }
    match marker {
        None => true,
        Some(m) => fs::read(format!("/proc/{pid}/cmdline")).map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(m)).unwrap_or(false),
    }
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = command("kill").args(["-s", sig, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// SIGTERM every process, wait up to `grace`, SIGKILL the rest. `procs`: (pid, comm, marker).
pub(crate) fn stop_processes(procs: &[(u32, String, Option<String>)], grace: Duration) {
    let ours: Vec<&(u32, String, Option<String>)> = procs.iter().filter(|(pid, comm, m)| process_matches(*pid, comm, m.as_deref())).collect();
    for (pid, _, _) in &ours {
        signal(*pid, "TERM");
    }
    let all_gone = || ours.iter().all(|(pid, comm, m)| !process_matches(*pid, comm, m.as_deref()));
    if !wait_until(grace, all_gone) {
        for (pid, comm, m) in &ours {
            if process_matches(*pid, comm, m.as_deref()) {
                eprintln!("lab: {comm} (pid {pid}) ignored SIGTERM, sending SIGKILL");
                signal(*pid, "KILL");
            }
        }
        wait_until(Duration::from_secs(2), all_gone);
    }
}

// ------------------------------------------------------------------------------ availability

/// What a test needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Req {
    Frr(FrrVersion),
    GoBgp,
    /// GoBGP [`GOBGP_RELEASE`] of `.ci/install-gobgp.sh` ([`gobgp_release_bin`]).
    GoBgpRelease,
}

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0")))
        .unwrap_or(false)
}

pub fn on_path(bin: &str) -> bool {
    PATH.split(':').any(|d| Path::new(d).join(bin).is_file())
}

/// One-time setup per test process: probe `ip netns` and remove stale lab leftovers.
pub(crate) fn lab_init() -> &'static std::result::Result<(), String> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        if !is_root() {
            return Err("not running as root".into());
        }
        if !on_path("ip") {
            return Err("`ip` (iproute2) not found".into());
        }
        cleanup_stale();
        let probe = format!("{}-probe", unique_name());
        ip(&["netns", "add", &probe]).map_err(|e| format!("`ip netns add` does not work: {e}"))?;
        let up = ip(&["-n", &probe, "link", "set", "lo", "up"]);
        let _ = ip(&["netns", "del", &probe]);
        up.map_err(|e| format!("cannot configure a network namespace: {e}"))?;
        Ok(())
    })
}

/// Why the lab cannot provide `reqs` on this machine, or None when it can.
pub fn unavailable(reqs: &[Req]) -> Option<String> {
    if let Err(e) = lab_init() {
        return Some(e.clone());
    }
    for r in reqs {
        let missing = match r {
            Req::Frr(v) => {
                let mut m = missing_frr(&v.root());
                if m.is_empty() && *v != FrrVersion::V8 && !v.root().join(".frr-composer-ready").is_file() {
                    m.push(format!("FRR {} chroot {} is incomplete", v.label(), v.root().display()));
                }
                m
            }
            Req::GoBgp => missing_gobgp(),
            Req::GoBgpRelease => missing_gobgp_release(),
        };
        if let Some(first) = missing.into_iter().next() {
            return Some(first);
        }
    }
    None
}

/// What FRR installed under `root` lacks for the lab: its daemons and vtysh (and `chroot`
/// when `root` is not `/`). Empty: complete.
pub fn missing_frr(root: &Path) -> Vec<String> {
    let version = FrrVersion::detect(root);
    let mut out = Vec::new();
    let absent: Vec<String> = version
        .daemons()
        .iter()
        .map(|d| format!("usr/lib/frr/{d}"))
        .chain(["usr/bin/vtysh".into()])
        .map(|bin| root.join(bin))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !absent.is_empty() {
        out.push(format!("FRR is not installed under {} (missing {}; on Debian: apt-get install frr)", root.display(), absent.join(", ")));
    } else if frr::frr_ids(root).is_err() {
        out.push(format!("FRR under {} has no user `frr` in etc/passwd", root.display()));
    }
    if root != Path::new("/") && !on_path("chroot") {
        out.push(format!("`chroot` not found in {PATH} (needed for FRR under {})", root.display()));
    }
    out
}

/// What the machine lacks for GoBGP peers. Empty: complete.
pub fn missing_gobgp() -> Vec<String> {
    ["gobgpd", "gobgp"].iter().filter(|b| !on_path(b)).map(|b| format!("`{b}` not found in {PATH} (on Debian: apt-get install gobgpd)")).collect()
}

/// What the machine lacks for GoBGP [`GOBGP_RELEASE`]. Empty: complete.
pub fn missing_gobgp_release() -> Vec<String> {
    let bin = gobgp_release_bin();
    ["gobgpd", "gobgp"]
        .iter()
        .map(|b| bin.join(b))
        .filter(|p| !p.is_file())
        .map(|p| format!("{} not found (GoBGP {GOBGP_RELEASE}: run .ci/install-gobgp.sh)", p.display()))
        .collect()
}

/// Everything this machine lacks for a lab with FRR under `frr_root` (and GoBGP peers when
/// `gobgp`), one sentence each; empty when the lab can run. Removes stale lab leftovers.
pub fn missing(frr_root: &Path, gobgp: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !is_root() {
        out.push("not running as root: the lab creates network namespaces (run it with sudo)".to_string());
    } else if !on_path("ip") {
        out.push(format!("`ip` (iproute2) not found in {PATH}"));
    } else if let Err(e) = lab_init() {
        out.push(e.clone());
    }
    out.extend(missing_frr(frr_root));
    if gobgp {
        out.extend(missing_gobgp());
    }
    out
}

/// The file system roots FRR instances of this process run in (for [`cleanup_all`]).
pub(crate) fn frr_roots() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    static ROOTS: std::sync::Mutex<BTreeSet<PathBuf>> = std::sync::Mutex::new(BTreeSet::new());
    ROOTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held while a namespace is created or a process is started in one, and by [`cleanup_all`]:
/// a signal handler that cleans up never races with the lab being built.
pub(crate) fn build_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remove everything this process's labs created: the processes inside its namespaces, the
/// namespaces and the directories (for a signal handler; the objects' `Drop` does the same
/// piece by piece). Keeps holding the build lock, so nothing new is created afterwards: call
/// it only right before the process exits.
pub fn cleanup_all() {
    let guard = build_lock();
    let _ = remove_leftovers(&|name| name.strip_prefix("fc-").and_then(|r| r.split('-').next()) == Some(&std::process::id().to_string()));
    // programs still running for the lab (vtysh, gobgp, ip): this process's children
    for pid in children() {
        signal(pid, "KILL");
    }
    std::mem::forget(guard);
}

/// The pids of this process's children.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid ...", comm may hold spaces and parentheses
        let ppid = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// `<prefix><pid>-...` with a pid (not ours) that no longer runs.
fn of_dead_process(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// `fc-<pid>-...` of a process that no longer runs.
fn stale_name(name: &str) -> bool {
    of_dead_process(name, "fc-")
}

/// Remove what killed test processes left: their namespaces (after killing the processes
/// still inside them, which the lab started there) and their directories.
fn cleanup_stale() {
    remove_leftovers(&|n| stale_name(n) || stale_workdir(n));
}

/// What labs whose process no longer runs left (a `lab run` ended by SIGKILL): their
/// namespaces with the daemons still inside, and their folders, which may hold a password.
/// Returns how many namespaces and folders were removed. Needs root.
pub fn remove_stale() -> (usize, usize) {
    remove_leftovers(&|n| stale_name(n) || stale_workdir(n))
}

/// frr-composer's private working directory (`frr-composer-<pid>-<random>`) of a process that
/// no longer runs (test processes use the library and never reach its cleanup at exit).
fn stale_workdir(name: &str) -> bool {
    of_dead_process(name, "frr-composer-")
}

fn remove_leftovers(matches: &dyn Fn(&str) -> bool) -> (usize, usize) {
    let (mut namespaces, mut folders) = (0, 0);
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if !matches(name) {
                continue;
            }
            if let Ok(pids) = ip(&["netns", "pids", name]) {
                for pid in pids.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                    eprintln!("lab: killing leftover pid {pid} in namespace {name}");
                    signal(pid, "KILL");
                }
            }
            if ip(&["netns", "del", name]).is_ok() {
                namespaces += 1;
            }
        }
    }
    let mut roots = frr_roots().clone();
    roots.extend([PathBuf::from("/"), frr10_root(), frr10_7_root()]);
    for root in roots {
        for dir in ["run/frr", "tmp"] {
            let Ok(entries) = fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                // a link of that name is removed itself, never followed
                if e.file_name().to_str().is_some_and(matches) && fs::remove_dir_all(e.path()).is_ok() {
                    folders += 1;
                }
            }
        }
    }
    (namespaces, folders)
}

// ------------------------------------------------------------------------------ temp dirs

/// A fresh private directory `/tmp/fc-<pid>-<n>-<random>` (0700, created exclusively),
/// removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> Result<TempDir> {
        let path = PathBuf::from("/tmp").join(unique_name());
        private_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TempDir { path })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Write `name` in the directory and return its path.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let p = self.path.join(name);
        write_new(&p, contents.as_bytes()).with_context(|| format!("write {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ------------------------------------------------------------------------------ netns

/// A network namespace `fc-<pid>-<n>` with `lo` up; deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Result<Netns> {
        lab_init().as_ref().map_err(|e| anyhow!("lab unavailable: {e}"))?;
        let name = unique_name();
        {
            let _building = build_lock();
            ip(&["netns", "add", &name])?;
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        // No duplicate address detection: IPv6 addresses (link-local too) usable at once.
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(command("ip").args(["-n", &self.name]).args(args))
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NS program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = command("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run ARGV inside the namespace; Ok(stdout) on success.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        let (prog, args) = argv.split_first().ok_or_else(|| anyhow!("empty argv"))?;
        run(self.command(prog).args(args))
    }

    /// `sysctl -w KEY=VALUE` inside the namespace (e.g. net.ipv4.ip_forward=1).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]).map(|_| ())
    }

    /// Add an address (IPv6 without DAD) to `ifname`.
    pub fn add_addr(&self, ifname: &str, addr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", addr, "dev", ifname];
        if addr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(|_| ())
    }

    pub fn link_up(&self, ifname: &str) -> Result<()> {
        self.ip(&["link", "set", ifname, "up"]).map(|_| ())
    }

    /// `ip -n NS [-6] route show ARGS...` (IPv4 unless `v6`), e.g. `routes(false, &["proto", "bgp"])`.
    pub fn routes(&self, v6: bool, args: &[&str]) -> Result<String> {
        let fam = if v6 { "-6" } else { "-4" };
        let mut a = vec![fam, "route", "show"];
        a.extend_from_slice(args);
        self.ip(&a)
    }

    /// The gateways of the kernel's routes to exactly `prefix` (`ip -j route show exact PREFIX
    /// EXTRA...`, e.g. `&["proto", "bgp"]`): one per ECMP next hop; empty when there is none.
    pub fn nexthops(&self, prefix: &str, extra: &[&str]) -> BTreeSet<String> {
        let fam = if prefix.contains(':') { "-6" } else { "-4" };
        let mut args = vec![fam, "-j", "route", "show", "exact", prefix];
        args.extend_from_slice(extra);
        route_table(&self.ip(&args).unwrap_or_default()).into_values().flatten().collect()
    }

    /// L3 reachability without ping (not installed everywhere): a TCP connect to port 9 from
    /// the namespace that succeeds or is refused (a RST came back) within 2 s.
    pub fn reachable(&self, addr: &str) -> bool {
        let out = self.command("timeout").args(["2", "bash", "-c", &format!(": </dev/tcp/{addr}/9")]).output();
        match out {
            Ok(o) => o.status.success() || String::from_utf8_lossy(&o.stderr).contains("Connection refused"),
            Err(_) => false,
        }
    }

    /// Processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<u32> {
        ip(&["netns", "pids", &self.name]).map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect()).unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside were started by this lab (the namespace is ours alone);
        // normally Frr/GoBgp have stopped them already.
        let _building = build_lock();
        for pid in self.pids() {
            eprintln!("lab: killing leftover pid {pid} in namespace {}", self.name);
            signal(pid, "KILL");
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("lab: cannot delete namespace {}: {e}", self.name);
        }
    }
}

fn add_addrs(ns: &Netns, ifname: &str, addrs: &[&str]) -> Result<()> {
    for a in addrs {
        ns.add_addr(ifname, a)?;
    }
    ns.link_up(ifname)
}

/// Connect two namespaces with a veth pair: `a_if` in `a`, `b_if` in `b`, with addresses
/// (CIDR, IPv4 or IPv6) and both ends up. Interface names: at most 15 characters.
pub fn veth(a: &Netns, a_if: &str, a_addrs: &[&str], b: &Netns, b_if: &str, b_addrs: &[&str]) -> Result<()> {
    a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()])?;
    add_addrs(a, a_if, a_addrs)?;
    add_addrs(b, b_if, b_addrs)
}

/// One L2 segment: a bridge `br0` in its own namespace; `attach` plugs namespaces into it.
pub struct Bridge {
    ns: Netns,
    ports: usize,
}

impl Bridge {
    pub fn new() -> Result<Bridge> {
        let ns = Netns::new()?;
        ns.ip(&["link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
        ns.link_up("br0")?;
        Ok(Bridge { ns, ports: 0 })
    }

    /// Plug `ns` into the segment: a veth with `ifname` (and `addrs`) in `ns`, its peer a
    /// bridge port in the bridge's namespace.
    pub fn attach(&mut self, ns: &Netns, ifname: &str, addrs: &[&str]) -> Result<()> {
        let port = format!("p{}", self.ports);
        self.ports += 1;
        self.ns.ip(&["link", "add", &port, "type", "veth", "peer", "name", ifname, "netns", ns.name()])?;
        self.ns.ip(&["link", "set", &port, "master", "br0"])?;
        self.ns.link_up(&port)?;
        add_addrs(ns, ifname, addrs)
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_reads_single_and_ecmp_next_hops() {
        // as iproute2 prints them: a connected route, one gateway, and a multipath route
        let json = r#"[{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.1","flags":[]},
            {"dst":"203.0.113.5","gateway":"192.0.2.11","dev":"eth0","protocol":"bgp","metric":20,"flags":[]},
            {"dst":"203.0.113.10","nhid":33,"protocol":"bgp","metric":20,"flags":[],"nexthops":[{"gateway":"192.0.2.11","dev":"eth0","weight":1,"flags":[]},{"gateway":"192.0.2.12","dev":"eth0","weight":1,"flags":[]}]}]"#;
        let t = route_table(json);
        let hops = |d: &str| t[d].iter().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(hops("192.0.2.0/24"), Vec::<&str>::new());
        assert_eq!(hops("203.0.113.5"), ["192.0.2.11"]);
        assert_eq!(hops("203.0.113.10"), ["192.0.2.11", "192.0.2.12"]);
        assert!(route_table("not json").is_empty());
    }

    #[test]
    fn lab_folders_are_private_new_and_never_follow_a_planted_link() {
        // another local user plants the names this process would use next, as links to a
        // folder of theirs: the lab must neither reuse nor follow them
        let theirs = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        let next = SEQ.load(Ordering::SeqCst);
        let planted: Vec<PathBuf> = (next..next + 8).map(|n| PathBuf::from(format!("/tmp/fc-{pid}-{n}"))).collect();
        for p in &planted {
            let _ = std::os::unix::fs::symlink(theirs.path(), p);
        }
        let dir = TempDir::new().unwrap();
        let file = dir.write("secret.conf", "password x\n").unwrap();
        for p in &planted {
            let _ = fs::remove_file(p);
        }
        assert!(fs::read_dir(theirs.path()).unwrap().next().is_none(), "a file was written into the planted folder");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = fs::symlink_metadata(dir.path()).unwrap();
        assert!(meta.is_dir() && meta.uid() == fs::metadata("/proc/self").unwrap().uid());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        // an existing name is never reused
        assert!(private_dir(dir.path()).is_err());
    }

    #[test]
    fn write_new_replaces_a_planted_link_instead_of_writing_through_it() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "root's file\n").unwrap();
        let p = d.path().join("load-0.conf");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_new(&p, b"router bgp 64512\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root's file\n");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&p).unwrap(), "router bgp 64512\n");
    }
}
