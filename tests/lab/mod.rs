//! Live lab harness: real FRR daemons and GoBGP peers in Linux network namespaces.
//!
//! Use from an integration test with `mod lab;`. Everything a test creates carries a name
//! unique to the test process and the object (`fc-<pid>-<n>`): network namespaces, FRR
//! pathspaces (`-N`), per-instance directories, GoBGP API ports. Tests can therefore run in
//! parallel threads. Every object cleans up in `Drop` (processes it started, namespaces,
//! directories), so a failing assertion leaves nothing behind; declare the namespaces first
//! so that the daemons inside them are dropped (stopped) before the namespaces.
//!
//! Leftovers of a killed test process (Ctrl-C gives no `Drop`) are removed by the next run:
//! namespaces and directories named `fc-<pid>-...` whose process no longer exists, together
//! with the processes still running inside those namespaces.
//!
//! FRR 8.4 is the native Debian package; FRR 10.3 lives in the chroot that
//! `.ci/install-frr.sh` builds at `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/trixie`.
//! The vty sockets are plain files, so vtysh runs outside the namespace (for 10.3 inside the
//! chroot, where the sockets are at `/run/frr/<pathspace>`).
//!
//! Network rule: only namespaces created here are touched, never the host's interfaces.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

#[path = "../support/mod.rs"]
pub mod support;
use support::{command, run, PATH};

// ------------------------------------------------------------------------------ basics

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn next_seq() -> usize {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// A name unique to this process and call: `fc-<pid>-<n>`.
pub fn unique_name() -> String {
    format!("fc-{}-{}", std::process::id(), next_seq())
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

fn ip(args: &[&str]) -> Result<String> {
    run(command("ip").args(args))
}

/// The FRR 10 chroot built by `.ci/install-frr.sh`.
pub fn frr10_root() -> PathBuf {
    let cache = std::env::var_os("FRR_COMPOSER_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/frr-composer"));
    cache.join("trixie")
}

/// A path as seen from the host, for a path inside `root`.
fn under(root: &Path, inner: &Path) -> PathBuf {
    root.join(inner.strip_prefix("/").unwrap_or(inner))
}

// ------------------------------------------------------------------------------ processes

/// True while `pid` runs (not a zombie), its comm is `comm` and (when given) its command
/// line contains `marker`: the check that we signal exactly the process we started.
fn process_matches(pid: u32, comm: &str, marker: Option<&str>) -> bool {
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

fn signal(pid: u32, sig: &str) {
    let _ = command("kill").args(["-s", sig, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// SIGTERM every process, wait up to `grace`, SIGKILL the rest. `procs`: (pid, comm, marker).
fn stop_processes(procs: &[(u32, String, Option<String>)], grace: Duration) {
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
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0")))
        .unwrap_or(false)
}

fn on_path(bin: &str) -> bool {
    PATH.split(':').any(|d| Path::new(d).join(bin).is_file())
}

/// One-time setup per test process: probe `ip netns` and remove stale lab leftovers.
fn lab_init() -> &'static std::result::Result<(), String> {
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
        match r {
            Req::Frr(v) => {
                let root = v.root();
                for bin in v.daemons().iter().map(|d| format!("usr/lib/frr/{d}")).chain(["usr/bin/vtysh".into()]) {
                    if !root.join(&bin).is_file() {
                        return Some(format!("FRR {} is not installed ({} missing)", v.label(), root.join(&bin).display()));
                    }
                }
                if *v == FrrVersion::V10 && !root.join(".frr-composer-ready").is_file() {
                    return Some(format!("FRR 10 chroot {} is incomplete", root.display()));
                }
                if *v == FrrVersion::V10 && !on_path("chroot") {
                    return Some("`chroot` not found".into());
                }
            }
            Req::GoBgp => {
                if !on_path("gobgpd") || !on_path("gobgp") {
                    return Some("gobgpd/gobgp not installed".into());
                }
            }
        }
    }
    None
}

/// True when the lab can run `reqs`. Otherwise: panics under `CI=true` (the lab is
/// mandatory there), else prints a SKIPPED message and returns false.
pub fn require(reqs: &[Req]) -> bool {
    match unavailable(reqs) {
        None => true,
        Some(why) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("live lab cannot run under CI=true: {why} (run .ci/install-frr.sh as root)");
            }
            eprintln!("SKIPPED: live lab cannot run: {why} (needs root, `ip netns` and .ci/install-frr.sh)");
            false
        }
    }
}

/// `fc-<pid>-...` with a pid that no longer runs.
fn stale_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("fc-") else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Remove what killed test processes left: their namespaces (after killing the processes
/// still inside them, which the lab started there) and their directories.
fn cleanup_stale() {
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if !stale_name(name) {
                continue;
            }
            if let Ok(pids) = ip(&["netns", "pids", name]) {
                for pid in pids.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                    eprintln!("lab: killing leftover pid {pid} in stale namespace {name}");
                    signal(pid, "KILL");
                }
            }
            let _ = ip(&["netns", "del", name]);
        }
    }
    for root in [PathBuf::from("/"), frr10_root()] {
        for dir in ["run/frr", "tmp"] {
            let Ok(entries) = fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name().to_str().is_some_and(stale_name) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ temp dirs

/// A fresh directory `/tmp/fc-<pid>-<n>`, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> Result<TempDir> {
        let path = PathBuf::from("/tmp").join(unique_name());
        fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TempDir { path })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Write `name` in the directory and return its path.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let p = self.path.join(name);
        fs::write(&p, contents).with_context(|| format!("write {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Run the crate's binary: `frr-composer render INPUTS... EXTRA...`; Ok(frr.conf) or an error
/// with the exit status and stderr.
pub fn render(inputs: &[&Path], extra: &[&str]) -> Result<String> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frr-composer"));
    c.arg("render").args(inputs).args(extra);
    run(&mut c)
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
        ip(&["netns", "add", &name])?;
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

// ------------------------------------------------------------------------------ FRR

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrrVersion {
    /// Debian bookworm FRR 8.4, native.
    V8,
    /// Debian trixie FRR 10.3, in the chroot of `.ci/install-frr.sh`.
    V10,
}

impl FrrVersion {
    pub fn label(self) -> &'static str {
        match self {
            FrrVersion::V8 => "8.4",
            FrrVersion::V10 => "10.3",
        }
    }
    /// The file system root the daemons and vtysh run in.
    pub fn root(self) -> PathBuf {
        match self {
            FrrVersion::V8 => PathBuf::from("/"),
            FrrVersion::V10 => frr10_root(),
        }
    }
    /// Daemons in start order.
    pub fn daemons(self) -> &'static [&'static str] {
        match self {
            FrrVersion::V8 => &["zebra", "bgpd", "bfdd", "staticd"],
            FrrVersion::V10 => &["mgmtd", "zebra", "bgpd", "bfdd", "staticd"],
        }
    }
    /// FRR 10's mgmtd and staticd (a mgmtd back end) reject `-f`.
    fn takes_config_file(self, daemon: &str) -> bool {
        !(self == FrrVersion::V10 && matches!(daemon, "mgmtd" | "staticd"))
    }
}

/// Numeric uid and gid of `frr` in `root`'s /etc/passwd.
fn frr_ids(root: &Path) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string(root.join("etc/passwd"))?;
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == "frr" {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("no user frr in {}", root.join("etc/passwd").display())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
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
    ids: (u32, u32),
    pids: Vec<(String, u32)>,
    loads: AtomicUsize,
}

impl Frr {
    /// Start the daemons in `ns` and wait until vtysh reaches all of them.
    pub fn start(version: FrrVersion, ns: &Netns) -> Result<Frr> {
        let root = version.root();
        let name = unique_name();
        let dir = PathBuf::from("/tmp").join(&name);
        let run_dir = PathBuf::from("/run/frr").join(&name);
        let ids = frr_ids(&root)?;
        let mut frr = Frr { version, name, ns: ns.name().to_string(), root, dir, run_dir, ids, pids: Vec::new(), loads: AtomicUsize::new(0) };
        // From here on, Drop cleans up whatever exists.
        let conf_dir = frr.host(&frr.dir.join("etc").join(&frr.name));
        fs::create_dir_all(&conf_dir)?;
        fs::write(conf_dir.join("vtysh.conf"), "")?;
        fs::write(conf_dir.join("frr.conf"), "")?;
        chown_tree(&frr.host(&frr.dir), ids.0, ids.1)?;
        let run_host = frr.host(&frr.run_dir);
        fs::create_dir_all(&run_host)?;
        std::os::unix::fs::chown(&run_host, Some(ids.0), Some(ids.1))?;

        for d in version.daemons() {
            frr.start_daemon(d)?;
        }
        let want: Vec<&str> = version.daemons().to_vec();
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
        if self.version == FrrVersion::V10 {
            v.push("--frr-root".into());
            v.push(self.root.display().to_string());
        }
        v
    }

    /// The same instance for frr-composer's library (what `cli_args` says to the binary).
    pub fn location(&self) -> frr_composer::frr::vtysh::FrrLocation {
        frr_composer::frr::vtysh::FrrLocation {
            pathspace: Some(self.name.clone()),
            config_dir: Some(self.dir.join("etc")),
            root: (self.version == FrrVersion::V10).then(|| self.root.clone()),
            ..Default::default()
        }
    }

    pub fn pid(&self, daemon: &str) -> Option<u32> {
        self.pids.iter().find(|(d, _)| d == daemon).map(|(_, p)| *p)
    }

    fn host(&self, inner: &Path) -> PathBuf {
        under(&self.root, inner)
    }

    fn in_root(&self, program: &str) -> Command {
        match self.version {
            FrrVersion::V8 => command(program),
            FrrVersion::V10 => {
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
        let stderr = fs::File::create(&stderr_path)?;
        let mut c = command("ip");
        c.args(["netns", "exec", &self.ns]);
        if self.version == FrrVersion::V10 {
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
        let status = c.status().with_context(|| format!("cannot run {c:?}"))?;
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
        fs::write(&host, text)?;
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
            complaint |= t.starts_with('%') || t.starts_with("line ");
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

fn tail(text: &str, lines: usize) -> String {
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

// ------------------------------------------------------------------------------ GoBGP

/// A neighbor of a GoBGP peer. `families`: GoBGP afi-safi names ("ipv4-unicast",
/// "ipv6-unicast"); empty = GoBGP's default for the address. `extra_toml`: raw TOML appended
/// to this neighbor (e.g. `[neighbors.transport.config]\n passive-mode = true`).
#[derive(Clone, Debug)]
pub struct GoBgpNeighbor {
    pub address: String,
    pub asn: u32,
    pub families: Vec<String>,
    pub extra_toml: String,
}

impl GoBgpNeighbor {
    pub fn new(address: &str, asn: u32) -> GoBgpNeighbor {
        GoBgpNeighbor { address: address.into(), asn, families: Vec::new(), extra_toml: String::new() }
    }
    pub fn families(mut self, fams: &[&str]) -> GoBgpNeighbor {
        self.families = fams.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// A path in a GoBGP table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpRoute {
    pub prefix: String,
    pub nexthop: Option<String>,
    pub as_path: Vec<u32>,
    /// The neighbor it came from (None: originated by GoBGP itself).
    pub neighbor: Option<String>,
    pub best: bool,
}

/// `gobgpd` in a namespace: an external BGP router. API on 127.0.0.1:<port> inside the
/// namespace. Connect-retry and idle-hold timers are 1 s (GoBGP waits at least 5 s between
/// active connects; FRR connects itself as soon as its configuration is complete).
pub struct GoBgp {
    ns: String,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl GoBgp {
    pub fn start(ns: &Netns, asn: u32, router_id: &str, neighbors: &[GoBgpNeighbor]) -> Result<GoBgp> {
        let mut toml = format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n  port = 179\n");
        for n in neighbors {
            toml.push_str(&format!(
                "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n  \
                 [neighbors.timers.config]\n    connect-retry = 1\n    idle-hold-time-after-reset = 1\n",
                n.address, n.asn
            ));
            for f in &n.families {
                toml.push_str(&format!("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\"\n"));
            }
            if !n.extra_toml.is_empty() {
                toml.push_str(&n.extra_toml);
                toml.push('\n');
            }
        }
        Self::start_with_config(ns, &toml)
    }

    /// Start with a complete gobgpd TOML configuration.
    pub fn start_with_config(ns: &Netns, toml: &str) -> Result<GoBgp> {
        let dir = TempDir::new()?;
        let conf = dir.write("gobgpd.toml", toml)?;
        let log = fs::File::create(dir.path().join("gobgpd.log"))?;
        let port = 50100 + (next_seq() % 10000) as u16;
        let child = ns
            .command("gobgpd")
            .arg("-f")
            .arg(&conf)
            .args(["-t", "toml", "-p", "--pprof-disable", "--api-hosts", &format!("127.0.0.1:{port}")])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut g = GoBgp { ns: ns.name().into(), port, dir, child: Some(child) };
        let mut err = String::new();
        let ready = wait_until(Duration::from_secs(10), || {
            if let Some(Ok(Some(st))) = g.child.as_mut().map(|c| c.try_wait()) {
                err = format!("gobgpd exited ({st})");
                return true;
            }
            match g.cli(&["global"]) {
                Ok(_) => true,
                Err(e) => {
                    err = e.to_string();
                    false
                }
            }
        });
        if !ready || g.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_)))) {
            bail!("gobgpd did not start: {err}\n{}", g.log());
        }
        Ok(g)
    }

    pub fn api_port(&self) -> u16 {
        self.port
    }

    /// `gobgp -u 127.0.0.1 -p PORT ARGS...` inside the namespace.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut c = command("ip");
        c.args(["netns", "exec", &self.ns, "gobgp", "-u", "127.0.0.1", "-p", &self.port.to_string()]).args(args);
        run(&mut c)
    }

    fn cli_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        let out = self.cli(&a)?;
        if out.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&out).with_context(|| format!("gobgp {args:?}: not JSON: {out}"))
    }

    /// Originate `prefix` (IPv4 or IPv6) with `nexthop`; `attrs`: further `gobgp global rib
    /// add` arguments, e.g. `["aspath", "65101"]` or `["community", "65000:1"]`.
    pub fn add_route(&self, prefix: &str, nexthop: &str, attrs: &[&str]) -> Result<()> {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let mut a = vec!["global", "rib", "add", prefix, "nexthop", nexthop];
        a.extend_from_slice(attrs);
        a.extend_from_slice(&["-a", fam]);
        self.cli(&a).map(|_| ())
    }

    pub fn del_route(&self, prefix: &str) -> Result<()> {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "del", prefix, "-a", fam]).map(|_| ())
    }

    /// Session state of a neighbor, lower case: "idle", "connect", "active", "opensent",
    /// "openconfirm", "established".
    pub fn neighbor_state(&self, addr: &str) -> Result<String> {
        let v = self.cli_json(&["neighbor", addr])?;
        let st = &v["state"]["session_state"];
        let s = match st {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(1) => "idle",
                Some(2) => "connect",
                Some(3) => "active",
                Some(4) => "opensent",
                Some(5) => "openconfirm",
                Some(6) => "established",
                _ => "unknown",
            }
            .to_string(),
            serde_json::Value::String(s) => s.to_lowercase().trim_start_matches("session_state_").to_string(),
            _ => bail!("no session_state for {addr}: {v}"),
        };
        Ok(s)
    }

    fn parse_table(v: &serde_json::Value) -> Vec<BgpRoute> {
        let mut out = Vec::new();
        let Some(map) = v.as_object() else { return out };
        for (prefix, paths) in map {
            for p in paths.as_array().into_iter().flatten() {
                let mut r = BgpRoute {
                    prefix: prefix.clone(),
                    nexthop: None,
                    as_path: Vec::new(),
                    neighbor: p.get("neighbor-ip").and_then(|n| n.as_str()).map(str::to_string),
                    best: p.get("best").and_then(|b| b.as_bool()).unwrap_or(false),
                };
                for a in p.get("attrs").and_then(|a| a.as_array()).into_iter().flatten() {
                    match a.get("type").and_then(|t| t.as_u64()) {
                        Some(2) => {
                            for seg in a.get("as_paths").and_then(|s| s.as_array()).into_iter().flatten() {
                                for asn in seg.get("asns").and_then(|s| s.as_array()).into_iter().flatten() {
                                    r.as_path.extend(asn.as_u64().map(|x| x as u32));
                                }
                            }
                        }
                        Some(3) => r.nexthop = a.get("nexthop").and_then(|n| n.as_str()).map(str::to_string),
                        // MP_REACH_NLRI (IPv6)
                        Some(14) => {
                            // gobgp 3.10 prints `nexthop`, other versions a `nexthops` list
                            r.nexthop = a
                                .get("nexthop")
                                .and_then(|n| n.as_str())
                                .or_else(|| a.get("nexthops").and_then(|n| n.as_array()).and_then(|n| n.first()).and_then(|n| n.as_str()))
                                .map(str::to_string)
                        }
                        _ => {}
                    }
                }
                out.push(r);
            }
        }
        out
    }

    fn table(&self, args: &[&str]) -> Result<Vec<BgpRoute>> {
        let mut routes = Vec::new();
        for fam in ["ipv4", "ipv6"] {
            let mut a = args.to_vec();
            a.extend_from_slice(&["-a", fam]);
            routes.extend(Self::parse_table(&self.cli_json(&a)?));
        }
        Ok(routes)
    }

    /// The global RIB (IPv4 and IPv6): received and originated paths.
    pub fn rib(&self) -> Result<Vec<BgpRoute>> {
        self.table(&["global", "rib"])
    }

    /// Paths received from `addr` (before GoBGP's import policy).
    pub fn adj_in(&self, addr: &str) -> Result<Vec<BgpRoute>> {
        self.table(&["neighbor", addr, "adj-in"])
    }

    /// Paths GoBGP advertises to `addr`.
    pub fn adj_out(&self, addr: &str) -> Result<Vec<BgpRoute>> {
        self.table(&["neighbor", addr, "adj-out"])
    }

    /// Prefixes received from `addr`.
    pub fn received_prefixes(&self, addr: &str) -> Result<BTreeSet<String>> {
        Ok(self.adj_in(addr)?.into_iter().map(|r| r.prefix).collect())
    }

    pub fn log(&self) -> String {
        tail(&fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default(), 40)
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            // `ip netns exec` execs gobgpd: the child is gobgpd itself.
            if process_matches(pid, "gobgpd", None) {
                signal(pid, "TERM");
                let exited = wait_until(Duration::from_secs(3), || matches!(child.try_wait(), Ok(Some(_))));
                if !exited {
                    let _ = child.kill();
                }
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}
