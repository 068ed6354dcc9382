//! Node agent benchmark: `frr-composer controller` against a real kube-apiserver + etcd and a
//! live FRR 10.3 (chroot) in a network namespace with only loopback (the neighbors never
//! connect; nothing is routed).
//!
//! 1. Latency: N times (default 15) one more LoadBalancer /32 in a MetalLB-like
//!    FRRConfiguration (router prefixes and the neighbor's allowed prefixes), applied with
//!    `kubectl apply`; measured from `kubectl apply` returning to the moment FRRNodeState/<node>
//!    shows the new prefix in `status.runningConfig` (which the agent reads back from FRR after
//!    the apply) with `lastReloadResult: success`. Observed through one long-lived
//!    `kubectl get frrnodestate <node> -w -o json` (no polling). The agent's own "applied ... ms"
//!    log lines give the FRR apply part.
//! 2. Scale: 100 Nodes (node-000..node-099, labels rack/zone/hostname), 1,000
//!    FRRConfigurations with varied node selectors (about 10% select the agent's node), all with
//!    router AS 65801, 1-3 neighbors from a pool of 60 (some with a password Secret), 2-4 /32
//!    prefixes, some receiving; 50 Secrets. A fresh FRR; the agent serves node-042. Measured:
//!    time and CPU time (utime+stime) from process start to the first FRRNodeState with
//!    lastConversionResult and lastReloadResult success; the running configuration is checked
//!    against the expected set of `network` lines; then a few changes (a selected config, an
//!    unselected one, a password rotation, relabelling the node and back, a deletion) with
//!    their latencies; then peak RSS (VmHWM) and current RSS, and idle CPU.
//!
//! Run (root; FRR from .ci/install-frr.sh, the API server from .ci/install-apiserver.sh):
//!   cargo build --release && cargo bench --bench agent
//!   cargo bench --bench agent -- --changes 15 --configs 1000 --nodes 100 [--skip-latency] [--skip-scale]
//! or the environment: FRR_BENCH_CHANGES, FRR_BENCH_CONFIGS, FRR_BENCH_NODES.
//! The agent binary: $FRR_BENCH_AGENT_BIN, else the one cargo built for this bench
//! (CARGO_BIN_EXE_frr-composer, release profile under `cargo bench`), else
//! ${CARGO_TARGET_DIR:-target}/release/frr-composer, else .../debug/frr-composer.
//! The report says which binary (and profile) ran. FRR_BENCH_AGENT_ENV="K=V,..." adds
//! environment variables to the agent (experiments such as MALLOC_ARENA_MAX=2).

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/support/mod.rs"]
mod support;
// the lab and the API server harness each include tests/support
#[path = "../tests/lab/mod.rs"]
mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::BufReader;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use apiserver::node::NodeFrr;
use apiserver::{AgentUnderTest, ApiServer};
use lab::{Frr, FrrVersion, Req, TempDir};
use serde_json::Value;

const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
const ROUTER_ASN: u32 = 65801;
/// How long one change may take to show before the benchmark gives up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the agent may take for its initial sync + apply at scale.
const INITIAL_TIMEOUT: Duration = Duration::from_secs(300);

// ------------------------------------------------------------------------------ options

/// Options (also from the environment); cargo's own `--bench` flag and test filters are
/// accepted and ignored.
#[derive(clap::Parser)]
struct Opts {
    /// Timed changes in the latency part (1-200).
    #[arg(long, short = 'n', env = "FRR_BENCH_CHANGES", default_value_t = 15, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=200))]
    changes: usize,
    /// FRRConfigurations in the scale part (at least 100).
    #[arg(long, env = "FRR_BENCH_CONFIGS", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(100..))]
    configs: usize,
    /// Nodes in the scale part (at least 50).
    #[arg(long, env = "FRR_BENCH_NODES", default_value_t = 100, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(50..))]
    nodes: usize,
    #[arg(long = "skip-latency", action = clap::ArgAction::SetFalse)]
    latency: bool,
    #[arg(long = "skip-scale", action = clap::ArgAction::SetFalse)]
    scale: bool,
    #[arg(long, hide = true)]
    bench: bool,
    #[arg(hide = true)]
    filters: Vec<String>,
}

// ------------------------------------------------------------------------------ helpers

fn agent_binary() -> Result<(PathBuf, &'static str)> {
    if let Some(p) = std::env::var_os("FRR_BENCH_AGENT_BIN") {
        return Ok((PathBuf::from(p), "FRR_BENCH_AGENT_BIN"));
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_frr-composer") {
        if Path::new(p).is_file() {
            let profile = if p.contains("/release/") { "release (built by cargo for this bench)" } else { "built by cargo for this bench" };
            return Ok((PathBuf::from(p), profile));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    for (profile, label) in [("release", "release"), ("debug", "DEBUG (slower, larger; run `cargo build --release`)")] {
        let p = target.join(profile).join("frr-composer");
        if p.is_file() {
            return Ok((p, label));
        }
    }
    bail!("no frr-composer binary: run `cargo build --release` (looked in {})", target.display())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("median {:.0} ms, min {:.0} ms, max {:.0} ms (n={})", median(v), min, max, v.len())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn clk_tck() -> f64 {
    Command::new("getconf").arg("CLK_TCK").output().ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
}

/// (utime + stime, cutime + cstime) of a process, in seconds: its own CPU time and that of its
/// reaped children (the vtysh processes it runs).
fn cpu_times(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("bad stat"))? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after the comm start at state (3): utime(14) stime(15) cutime(16) cstime(17)
    let t = |i: usize| -> Result<f64> { Ok(f[i - 3].parse::<f64>()? / clk_tck()) };
    Ok((t(14)? + t(15)?, t(16)? + t(17)?))
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    Ok(cpu_times(pid)?.0)
}

/// A `Vm*:` line of /proc/<pid>/status, in MiB.
fn vm_mib(pid: u32, key: &str) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with(key)).ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))?;
    let kb: f64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("bad {line}"))?.parse()?;
    Ok(kb / 1024.0)
}

fn kubectl_cmd(api: &ApiServer, args: &[&str]) -> Command {
    let mut c = Command::new(apiserver::KUBECTL);
    c.env_clear()
        .env("PATH", PATH)
        .env("LC_ALL", "C")
        .env("HOME", api.dir())
        .arg(format!("--kubeconfig={}", api.kubeconfig().display()))
        .arg(format!("--cache-dir={}", api.dir().join("kube-cache").display()))
        .args(args);
    c
}

// ------------------------------------------------------------------------------ the agent

/// Extra environment for the agent, for experiments: FRR_BENCH_AGENT_ENV="K=V,K=V"
/// (e.g. MALLOC_ARENA_MAX=2).
fn agent_env() -> Vec<(String, String)> {
    std::env::var("FRR_BENCH_AGENT_ENV")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// The agent under test as the benchmark measures it: `bin`, a clean environment (PATH,
/// KUBECONFIG and FRR_BENCH_AGENT_ENV only), its log in `dir/log_name`.
fn start_agent(bin: &Path, api: &ApiServer, frr: &Frr, node: &str, ns: &str, dir: &Path, log_name: &str) -> Result<AgentUnderTest> {
    let agent = AgentUnderTest::builder(api, &frr.cli_args(), node, ns, dir).bin(bin).log_name(log_name).clean_env();
    agent_env().into_iter().fold(agent, |a, (k, v)| a.env(k, v)).try_spawn()
}

/// One field of the agent's "applied" log lines, in order (`ms`: the whole apply).
fn applied_field(agent: &AgentUnderTest, field: &str) -> Vec<f64> {
    agent
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "applied")
        .filter_map(|v| v["fields"][field].as_f64())
        .collect()
}

/// Warnings and errors of the agent's log, grouped by message: (level, message, count, first
/// full line).
fn problems(agent: &AgentUnderTest) -> Vec<(String, String, usize, String)> {
    let mut groups: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for l in agent.log().lines() {
        let (level, msg) = match serde_json::from_str::<Value>(l) {
            Ok(v) => (v["level"].as_str().unwrap_or("?").to_string(), v["fields"]["message"].as_str().unwrap_or("?").to_string()),
            Err(_) => ("RAW".to_string(), l.chars().take(120).collect()),
        };
        if level == "INFO" || level == "DEBUG" || level == "TRACE" {
            continue;
        }
        let e = groups.entry((level, msg)).or_insert((0, l.chars().take(400).collect()));
        e.0 += 1;
    }
    groups.into_iter().map(|((l, m), (c, first))| (l, m, c, first)).collect()
}

/// On a failure: what the agent is doing (its child processes), FRR's logs, the whole agent
/// log saved to a file.
fn diagnose(agent: &AgentUnderTest, frr: &Frr, tag: &str) -> String {
    let mut out = String::new();
    let saved = std::env::temp_dir().join(format!("frr-composer-bench-agent-{tag}-failed.log"));
    let _ = std::fs::write(&saved, agent.log());
    let _ = writeln!(out, "--- full agent log saved to {}", saved.display());
    let ps = Command::new("ps").args(["-o", "pid,etimes,stat,args", "--ppid", &agent.pid().to_string()]).output();
    let _ = writeln!(out, "--- the agent's child processes now:\n{}", ps.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default());
    let logs = frr.logs();
    let lines: Vec<&str> = logs.lines().collect();
    let _ = writeln!(out, "--- FRR logs (tail):\n{}", lines[lines.len().saturating_sub(40)..].join("\n"));
    let _ = writeln!(out, "--- agent log (tail):\n{}", agent.log_tail(15));
    out
}

fn print_problems(agent: &AgentUnderTest) {
    let p = problems(agent);
    if p.is_empty() {
        println!("  agent log: no warnings or errors");
        return;
    }
    println!("  agent log: warnings/errors:");
    for (level, msg, count, first) in p {
        println!("    {level} x{count}: {msg}\n      first: {first}");
    }
}

// ------------------------------------------------------------------------------ the watch

/// One long-lived `kubectl get frrnodestates --field-selector metadata.name=<node> -w -o json`
/// (started before the agent, so the object's creation is seen too); every object it prints
/// arrives with the instant it was read.
struct StateWatch {
    child: Child,
    rx: Receiver<(Instant, Value)>,
    stderr: PathBuf,
    last: Option<Value>,
    /// The agent's pid: waiting stops at once when it dies.
    agent: Option<u32>,
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rfind(')').and_then(|i| s[i + 1..].trim_start().chars().next()).is_some_and(|c| c == 'Z' || c == 'X'))
        .unwrap_or(false)
}

impl StateWatch {
    fn start(api: &ApiServer, node: &str, dir: &Path) -> Result<StateWatch> {
        let stderr = dir.join(format!("watch-{node}.stderr"));
        let selector = format!("metadata.name={node}");
        let mut child = kubectl_cmd(api, &["get", "frrnodestates", "--field-selector", &selector, "-w", "-o", "json", "--request-timeout=0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .context("cannot start kubectl get -w")?;
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let stream = serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter::<Value>();
            for v in stream {
                match v {
                    Ok(v) => {
                        if tx.send((Instant::now(), v)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(StateWatch { child, rx, stderr, last: None, agent: None })
    }

    /// The first object (from now on, or already queued) for which `pred` holds.
    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Result<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(pid) = self.agent {
                if !pid_alive(pid) {
                    bail!("the agent (pid {pid}) died while waiting for FRRNodeState to show {what}");
                }
            }
            match self.rx.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok((t, v)) => {
                    let hit = pred(&v);
                    self.last = Some(v.clone());
                    if hit {
                        return Ok((t, v));
                    }
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => bail!(
                    "timeout after {timeout:?} waiting for FRRNodeState to show {what}; last status seen:\n{}",
                    self.last.as_ref().map(status_summary).unwrap_or_else(|| "(none)".into())
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the FRRNodeState watch ended while waiting for {what}: {}", std::fs::read_to_string(&self.stderr).unwrap_or_default())
                }
            }
        }
    }
}

impl Drop for StateWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_summary(v: &Value) -> String {
    let s = &v["status"];
    let rc = s["runningConfig"].as_str().unwrap_or("");
    format!(
        "  lastConversionResult: {}\n  lastReloadResult: {}\n  runningConfig: {} lines",
        s["lastConversionResult"].as_str().unwrap_or("-").chars().take(600).collect::<String>(),
        s["lastReloadResult"].as_str().unwrap_or("-").chars().take(600).collect::<String>(),
        rc.lines().count()
    )
}

fn reload_ok(v: &Value) -> bool {
    v["status"]["lastReloadResult"] == "success" && v["status"]["lastConversionResult"] == "success"
}

fn running(v: &Value) -> &str {
    v["status"]["runningConfig"].as_str().unwrap_or("")
}

fn has_network(v: &Value, prefix: &str) -> bool {
    running(v).lines().any(|l| l.trim() == format!("network {prefix}"))
}

// ------------------------------------------------------------------------------ setup

fn setup_api() -> Result<ApiServer> {
    let api = ApiServer::start().context("starting kube-apiserver")?;
    api.install_crds()?;
    Ok(api)
}

fn node_yaml(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut y = format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n");
    for (k, v) in labels {
        let _ = writeln!(y, "    {k}: \"{v}\"");
    }
    y
}

// ------------------------------------------------------------------------------ 1. latency

const LAT_NS: &str = "bench-latency";
const LAT_NODE: &str = "lat-node";

fn lb_prefix(i: usize) -> String {
    format!("198.51.{}.{}/32", 100 + i / 250, 1 + i % 250)
}

fn metallb_yaml(count: usize) -> String {
    let list: String = (0..count).map(|i| format!("            - {}\n", lb_prefix(i))).collect();
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: metallb-{LAT_NODE}\n  namespace: {LAT_NS}\nspec:\n  bgp:\n    routers:\n    - asn: {ROUTER_ASN}\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n{list}        toReceive:\n          allowed:\n            mode: filtered\n      prefixes:\n{}  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: {LAT_NODE}\n",
        list.replace("            - ", "      - ")
    )
}

struct LatencyResult {
    after_apply: Vec<f64>,
    incl_kubectl: Vec<f64>,
    kubectl: Vec<f64>,
    apply_ms: Vec<f64>,
    initial: f64,
}

fn run_latency(o: &Opts, bin: &Path, api: &ApiServer, tmp: &TempDir) -> Result<LatencyResult> {
    let frr = NodeFrr::start(FrrVersion::V10).context("starting FRR 10.3")?;
    api.kubectl(&["create", "namespace", LAT_NS])?;
    api.kubectl_stdin(
        &["apply", "-f", "-"],
        &node_yaml(
            LAT_NODE,
            &[("kubernetes.io/hostname", LAT_NODE), ("kubernetes.io/os", "linux")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ),
    )?;
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb_yaml(1))?;

    let mut watch = StateWatch::start(api, LAT_NODE, tmp.path())?;
    std::thread::sleep(Duration::from_millis(500));
    let mut agent = start_agent(bin, api, &frr, LAT_NODE, LAT_NS, tmp.path(), "agent-latency.log")?;
    watch.agent = Some(agent.pid());
    let (t, _) = watch
        .wait_for("the initial configuration", Duration::from_secs(60), |v| reload_ok(v) && has_network(v, &lb_prefix(0)))
        .with_context(|| format!("agent log tail:\n{}", agent.log_tail(30)))?;
    let initial = ms(t - agent.started);
    let applied_before = applied_field(&agent, "ms").len();
    std::thread::sleep(Duration::from_secs(1));

    let mut r = LatencyResult { after_apply: vec![], incl_kubectl: vec![], kubectl: vec![], apply_ms: vec![], initial };
    for i in 1..=o.changes {
        agent.alive()?;
        let yaml = metallb_yaml(i + 1);
        let new = lb_prefix(i);
        let t0 = Instant::now();
        api.kubectl_stdin(&["apply", "-f", "-"], &yaml).with_context(|| format!("change {i}: kubectl apply"))?;
        let t1 = Instant::now();
        let (t2, v) = watch
            .wait_for(&format!("change {i} ({new})"), CHANGE_TIMEOUT, |v| reload_ok(v) && has_network(v, &new))
            .with_context(|| diagnose(&agent, &frr, "latency"))?;
        let permitted = running(&v).lines().filter(|l| l.contains(" permit 198.51.") && l.contains("/32")).count();
        if permitted < i + 1 {
            bail!("change {i}: runningConfig shows {new} but only {permitted} permitted /32s in prefix-lists (want {})", i + 1);
        }
        let d = ms(t2.saturating_duration_since(t1));
        r.after_apply.push(d);
        r.incl_kubectl.push(ms(t2 - t0));
        r.kubectl.push(ms(t1 - t0));
        eprintln!("  latency change {i:>2}: {d:>6.0} ms after kubectl apply returned ({:.0} ms incl. kubectl)", ms(t2 - t0));
        // let the agent settle (its status writes, the session poller) before the next change,
        // and let the status interval pass: a lone change's status is written at once, one
        // within the interval of the last write waits for its end
        std::thread::sleep(frr_composer::agent::pacer::STATUS_INTERVAL + Duration::from_millis(400));
    }
    r.apply_ms = applied_field(&agent, "ms").into_iter().skip(applied_before).collect();
    // FRR itself has all prefixes
    let rc = frr.running_config()?;
    for i in 0..=o.changes {
        if !rc.lines().any(|l| l.trim() == format!("network {}", lb_prefix(i))) {
            bail!("FRR's running configuration lacks network {}", lb_prefix(i));
        }
    }
    println!("\n== 1. Latency: kubectl apply -> FRRNodeState/{LAT_NODE} shows the new /32 (FRR 10.3) ==");
    println!("  agent start -> first FRRNodeState with the config applied: {:.0} ms", r.initial);
    println!("  from kubectl apply returning:     {}", stats(&r.after_apply));
    println!("  from kubectl apply starting:      {}", stats(&r.incl_kubectl));
    println!("  kubectl apply itself:             {}", stats(&r.kubectl));
    println!("  agent's FRR apply (log \"applied\" ms): {}", stats(&r.apply_ms));
    let part = |f: &str| stats(&applied_field(&agent, f).into_iter().skip(applied_before).collect::<Vec<_>>());
    println!("    of which FRR's syntax check: {}", part("check_ms"));
    println!("    the batch sent to FRR:       {}", part("apply_ms"));
    println!("    reading back and verifying:  {}", part("verify_ms"));
    println!("  (no debounce: a change after a quiet period applies at once; target p50 < 120 ms; frr-k8s: 3 s debounce + up to 30 s status polling)");
    print_problems(&agent);
    drop(watch);
    drop(agent);
    drop(frr);
    Ok(r)
}

// ------------------------------------------------------------------------------ 2. scale

const SCALE_NS: &str = "bench-scale";
const AGENT_NODE_IDX: usize = 42;
const POOL: usize = 60;

fn node_name(i: usize) -> String {
    format!("node-{i:03}")
}

fn node_labels(i: usize, rack_override: Option<usize>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("kubernetes.io/hostname".into(), node_name(i));
    m.insert("kubernetes.io/os".into(), "linux".into());
    m.insert("rack".into(), format!("rack{}", rack_override.unwrap_or(i / 10)));
    m.insert("zone".into(), format!("zone-{}", i % 3));
    m.insert("node-role.kubernetes.io/worker".into(), String::new());
    m
}

fn peer_addr(k: usize) -> String {
    format!("172.16.{}.{}", k / 200, 1 + k % 200)
}
fn peer_asn(k: usize) -> u32 {
    64600 + (k % 7) as u32
}
fn peer_has_password(k: usize) -> bool {
    k.is_multiple_of(6)
}

/// A node selector, and how to evaluate it.
enum Sel {
    All,
    Labels(Vec<(String, String)>),
    In(String, Vec<String>),
}

impl Sel {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Sel::All => true,
            Sel::Labels(kv) => kv.iter().all(|(k, v)| labels.get(k) == Some(v)),
            Sel::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
        }
    }
    fn yaml(&self) -> String {
        match self {
            Sel::All => "  nodeSelector: {}\n".into(),
            Sel::Labels(kv) => {
                let mut y = "  nodeSelector:\n    matchLabels:\n".to_string();
                for (k, v) in kv {
                    let _ = writeln!(y, "      {k}: \"{v}\"");
                }
                y
            }
            Sel::In(k, vs) => format!(
                "  nodeSelector:\n    matchExpressions:\n    - key: {k}\n      operator: In\n      values: [{}]\n",
                vs.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

struct Cfg {
    name: String,
    sel: Sel,
    prefixes: Vec<String>,
    neighbors: Vec<usize>,
    receive: Option<String>,
}

fn cfg(j: usize, nodes: usize, extra_prefixes: usize) -> Cfg {
    let kv = |k: &str, v: String| Sel::Labels(vec![(k.to_string(), v)]);
    let racks = nodes.div_ceil(10);
    let sel = match j % 10 {
        0..=3 => kv("kubernetes.io/hostname", node_name(j % nodes)),
        4 | 5 => kv("rack", format!("rack{}", (j / 10) % racks)),
        6 => Sel::In("zone".into(), vec![format!("zone-{}", j % 3)]),
        7 => Sel::In("rack".into(), vec![format!("rack{}", (j / 10) % racks), format!("rack{}", (j / 10 + 3) % racks)]),
        8 => Sel::Labels(vec![("rack".into(), format!("rack{}", (j / 10) % racks)), ("zone".into(), format!("zone-{}", j % 3))]),
        _ if j % 100 == 99 => Sel::All,
        _ => kv("kubernetes.io/hostname", format!("retired-node-{j}")),
    };
    let base = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (j as u32) * 8;
    let prefixes = (0..(2 + j % 3 + extra_prefixes)).map(|t| format!("{}/32", Ipv4Addr::from(base + t as u32))).collect();
    let n = 1 + (j / 3) % 3;
    let mut neighbors: Vec<usize> = (0..n).map(|t| (j * 7 + t * 13) % POOL).collect();
    neighbors.sort();
    neighbors.dedup();
    let receive = j.is_multiple_of(4).then(|| format!("10.{}.0.0/16", j % 250));
    Cfg { name: format!("cfg-{j:04}"), sel, prefixes, neighbors, receive }
}

fn cfg_yaml(c: &Cfg) -> String {
    let mut y = format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: {}\n  namespace: {SCALE_NS}\n  labels:\n    app: bench\nspec:\n  bgp:\n    routers:\n    - asn: {ROUTER_ASN}\n      neighbors:\n",
        c.name
    );
    for &k in &c.neighbors {
        let _ = write!(y, "      - address: {}\n        asn: {}\n", peer_addr(k), peer_asn(k));
        if peer_has_password(k) {
            let _ = writeln!(y, "        passwordSecret:\n          name: bgp-peer-{k}");
        }
        y.push_str("        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n");
        for p in &c.prefixes {
            let _ = writeln!(y, "            - {p}");
        }
        match &c.receive {
            Some(r) => {
                let _ = write!(y, "        toReceive:\n          allowed:\n            mode: filtered\n            prefixes:\n            - prefix: {r}\n              le: 24\n");
            }
            None => y.push_str("        toReceive:\n          allowed:\n            mode: filtered\n"),
        }
    }
    y.push_str("      prefixes:\n");
    for p in &c.prefixes {
        let _ = writeln!(y, "      - {p}");
    }
    y.push_str(&c.sel.yaml());
    y
}

fn secret_yaml(name: &str, password: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {SCALE_NS}\ntype: kubernetes.io/basic-auth\nstringData:\n  password: \"{password}\"\n")
}

/// The `network` lines the node's FRR should have.
fn expected_networks(cfgs: &[Cfg], labels: &BTreeMap<String, String>) -> (BTreeSet<String>, usize) {
    let sel: Vec<&Cfg> = cfgs.iter().filter(|c| c.sel.matches(labels)).collect();
    (sel.iter().flat_map(|c| c.prefixes.iter().cloned()).collect(), sel.len())
}

fn frr_networks(rc: &str) -> BTreeSet<String> {
    rc.lines().filter_map(|l| l.trim().strip_prefix("network ")).map(|p| p.split_whitespace().next().unwrap_or("").to_string()).collect()
}

fn networks_of(v: &Value) -> BTreeSet<String> {
    frr_networks(running(v))
}

/// Create many objects quickly: `kubectl create -f -` on `streams` multi-document YAML
/// streams in parallel.
fn create_many(api: &ApiServer, docs: &[String], streams: usize) -> Result<()> {
    let chunk = docs.len().div_ceil(streams.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = docs
            .chunks(chunk)
            .map(|c| {
                let text = c.join("---\n");
                s.spawn(move || api.kubectl_stdin(&["create", "-f", "-", "-o", "name"], &text).map(|_| ()))
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow!("a kubectl thread panicked"))?)
    })
}

struct Change {
    what: String,
    ms: f64,
}

fn run_scale(o: &Opts, bin: &Path, api: &ApiServer, tmp: &TempDir) -> Result<()> {
    let me = node_name(AGENT_NODE_IDX);
    api.kubectl(&["create", "namespace", SCALE_NS])?;

    // --- load the API server
    let t = Instant::now();
    let nodes: Vec<String> = (0..o.nodes).map(|i| node_yaml(&node_name(i), &node_labels(i, None))).collect();
    create_many(api, &nodes, 2).context("creating Nodes")?;
    let mut secrets: Vec<String> = (0..POOL).filter(|k| peer_has_password(*k)).map(|k| secret_yaml(&format!("bgp-peer-{k}"), &format!("pw-{k}-one"))).collect();
    let npw = secrets.len();
    for d in 0..(50usize.saturating_sub(npw)) {
        secrets.push(format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: unrelated-{d}\n  namespace: {SCALE_NS}\ntype: Opaque\nstringData:\n  config.json: \"{}\"\n",
            "x".repeat(1024)
        ));
    }
    create_many(api, &secrets, 1).context("creating Secrets")?;
    let cfgs: Vec<Cfg> = (0..o.configs).map(|j| cfg(j, o.nodes, 0)).collect();
    let docs: Vec<String> = cfgs.iter().map(cfg_yaml).collect();
    let bytes: usize = docs.iter().map(|d| d.len()).sum();
    create_many(api, &docs, 4).context("creating FRRConfigurations")?;
    let load_s = t.elapsed().as_secs_f64();
    let count = |kind: &str| -> Result<usize> {
        let v = api.kubectl_json(&["-n", SCALE_NS, "get", kind])?;
        Ok(v["items"].as_array().map(|a| a.len()).unwrap_or(0))
    };
    let (n_cfg, n_sec) = (count("frrconfigurations")?, count("secrets")?);
    let n_nodes = api.kubectl_json(&["get", "nodes"])?["items"]
        .as_array()
        .map(|a| a.iter().filter(|n| n["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("node-"))).count())
        .unwrap_or(0);
    if n_cfg != o.configs || n_nodes < o.nodes {
        bail!("API server holds {n_cfg} FRRConfigurations and {n_nodes} Nodes, want {} and {}", o.configs, o.nodes);
    }
    let labels = node_labels(AGENT_NODE_IDX, None);
    let (want, selected) = expected_networks(&cfgs, &labels);
    let neighbors: BTreeSet<usize> = cfgs.iter().filter(|c| c.sel.matches(&labels)).flat_map(|c| c.neighbors.iter().copied()).collect();

    // --- a fresh FRR and the agent
    let frr = NodeFrr::start(FrrVersion::V10).context("starting FRR 10.3")?;
    let mut watch = StateWatch::start(api, &me, tmp.path())?;
    std::thread::sleep(Duration::from_millis(500));
    let load_before = loadavg();
    let mut agent = start_agent(bin, api, &frr, &me, SCALE_NS, tmp.path(), "agent-scale.log")?;
    let pid = agent.pid();
    watch.agent = Some(pid);
    // sample RSS while it syncs (VmHWM is the kernel's own peak; this is a cross-check)
    let sampler = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let h = std::thread::spawn(move || {
            let mut peak = 0.0f64;
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(r) = vm_mib(pid, "VmRSS:") {
                    peak = peak.max(r);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        (stop, h)
    };
    let (t_ok, v) = watch
        .wait_for("the initial configuration (success/success)", INITIAL_TIMEOUT, |v| reload_ok(v) && !running(v).is_empty())
        .with_context(|| format!("agent log tail:\n{}", agent.log_tail(40)))?;
    let initial_wall = t_ok - agent.started;
    let (initial_cpu, initial_child_cpu) = cpu_times(pid)?;
    let rss_initial = vm_mib(pid, "VmRSS:")?;
    let hwm_initial = vm_mib(pid, "VmHWM:")?;
    let got = networks_of(&v);
    if got != want {
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        bail!("initial FRRNodeState: {} network lines, want {} (missing e.g. {missing:?}, unexpected e.g. {extra:?})", got.len(), want.len());
    }
    let frr_has = frr_networks(&frr.running_config()?);
    if frr_has != want {
        bail!("FRR's running configuration has {} network lines, want {}", frr_has.len(), want.len());
    }
    let state_bytes = api.kubectl(&["get", "frrnodestate", &me, "-o", "json"])?.len();
    let og = v["status"]["observedGenerations"].as_object().map(|m| m.len()).unwrap_or(0);

    // --- a few changes
    let mut changes: Vec<Change> = Vec::new();
    let mut cfgs = cfgs;
    let measure =
        |changes: &mut Vec<Change>, what: String, watch: &mut StateWatch, act: &dyn Fn() -> Result<()>, pred: &dyn Fn(&Value) -> bool| -> Result<()> {
            std::thread::sleep(Duration::from_millis(500));
            act().with_context(|| what.clone())?;
            let t1 = Instant::now();
            let (t2, _) = watch.wait_for(&what, CHANGE_TIMEOUT, pred).with_context(|| diagnose(&agent, &frr, "scale"))?;
            let d = ms(t2.saturating_duration_since(t1));
            eprintln!("  scale change: {what}: {d:.0} ms");
            changes.push(Change { what, ms: d });
            Ok(())
        };
    // (a) a selected config gains a /32, three times
    let sel_idx: Vec<usize> =
        cfgs.iter().enumerate().filter(|(_, c)| c.sel.matches(&labels) && matches!(c.sel, Sel::Labels(_))).map(|(i, _)| i).take(3).collect();
    for (n, &j) in sel_idx.iter().enumerate() {
        let c = cfg(j, o.nodes, 1 + n);
        let new = c.prefixes.last().unwrap().clone();
        let y = cfg_yaml(&c);
        cfgs[j] = c;
        measure(
            &mut changes,
            format!("selected {} gains {new}", cfgs[j].name),
            &mut watch,
            &|| api.kubectl_stdin(&["apply", "-f", "-"], &y).map(|_| ()),
            &|v| reload_ok(v) && has_network(v, &new),
        )?;
    }
    // (b) a config for another node changes: the node's status lists only the configurations
    //     merged into its FRR, so nothing of it changes
    let other = cfgs.iter().position(|c| !c.sel.matches(&labels)).unwrap();
    {
        let c = cfg(other, o.nodes, 1);
        let y = cfg_yaml(&c);
        let key = format!("{SCALE_NS}/{}", c.name);
        cfgs[other] = c;
        api.kubectl_stdin(&["apply", "-f", "-"], &y)?;
        std::thread::sleep(Duration::from_secs(1));
        let st = api.kubectl_json(&["get", "frrnodestate", &me])?;
        if st["status"]["observedGenerations"].get(&key).is_some() {
            bail!("FRRNodeState lists {key}, which does not select this node");
        }
        let listed = st["status"]["observedGenerations"].as_object().map(|m| m.len()).unwrap_or(0);
        eprintln!("  scale change: unselected {key} changed: not in this node's status ({listed} merged configurations listed)");
    }
    // (c) password rotation of a selected neighbor: FRR has the new password (polled, 20 ms)
    if let Some(&k) = neighbors.iter().find(|k| peer_has_password(**k)) {
        std::thread::sleep(Duration::from_millis(500));
        let y = secret_yaml(&format!("bgp-peer-{k}"), &format!("pw-{k}-two"));
        api.kubectl_stdin(&["apply", "-f", "-"], &y)?;
        let t1 = Instant::now();
        let needle = format!("neighbor {} password pw-{k}-two", peer_addr(k));
        if !lab::wait_until(CHANGE_TIMEOUT, || frr.running_config().is_ok_and(|rc| rc.contains(&needle))) {
            bail!("password rotation of bgp-peer-{k} not in FRR after {CHANGE_TIMEOUT:?}; agent log tail:\n{}", agent.log_tail(20));
        }
        let d = ms(t1.elapsed());
        eprintln!("  scale change: Secret bgp-peer-{k} rotated (FRR polled): {d:.0} ms");
        changes.push(Change { what: format!("Secret bgp-peer-{k} rotated (seen in FRR, polled)"), ms: d });
    }
    // (d) the node moves to another rack, and back
    for rack in [5usize, AGENT_NODE_IDX / 10] {
        let l2 = node_labels(AGENT_NODE_IDX, Some(rack));
        let (want2, sel2) = expected_networks(&cfgs, &l2);
        let w2 = want2.clone();
        measure(
            &mut changes,
            format!("Node relabelled rack=rack{rack} ({sel2} configs selected, {} networks)", want2.len()),
            &mut watch,
            &|| api.kubectl(&["label", "node", &me, &format!("rack=rack{rack}"), "--overwrite"]).map(|_| ()),
            &|v| reload_ok(v) && networks_of(v) == w2,
        )?;
    }
    // (e) a selected config is deleted
    {
        let j = sel_idx[0];
        let gone: Vec<String> = cfgs[j].prefixes.clone();
        let name = cfgs[j].name.clone();
        let rest = cfgs.iter().enumerate().filter(|(i, c)| *i != j && c.sel.matches(&labels)).flat_map(|(_, c)| c.prefixes.clone()).collect::<BTreeSet<_>>();
        let gone_only: Vec<String> = gone.into_iter().filter(|p| !rest.contains(p)).collect();
        measure(
            &mut changes,
            format!("selected {name} deleted"),
            &mut watch,
            &|| api.kubectl(&["-n", SCALE_NS, "delete", "frrconfiguration", &name]).map(|_| ()),
            &|v| reload_ok(v) && gone_only.iter().all(|p| !has_network(v, p)),
        )?;
    }
    agent.alive()?;
    let cpu_after_changes = cpu_seconds(pid)?;
    // idle: 10 s of nothing (session poller every 2 s, drift check every 30 s)
    std::thread::sleep(Duration::from_secs(10));
    let cpu_idle = cpu_seconds(pid)? - cpu_after_changes;
    agent.alive()?;
    let hwm = vm_mib(pid, "VmHWM:")?;
    let rss = vm_mib(pid, "VmRSS:")?;
    sampler.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled_peak = sampler.1.join().unwrap_or(0.0);
    let load_after = loadavg();

    println!(
        "\n== 2. Scale: {} Nodes, {n_cfg} FRRConfigurations ({:.1} MB YAML), {n_sec} Secrets in {SCALE_NS}; agent for {me} (FRR 10.3) ==",
        n_nodes,
        bytes as f64 / 1e6
    );
    println!("  API server loaded in {load_s:.1} s (kubectl create, parallel streams)");
    println!("  selected for {me}: {selected} configs, {} neighbors, {} network lines (checked in FRRNodeState and FRR)", neighbors.len(), want.len());
    println!("  FRRNodeState/{me}: {:.0} kB JSON, {og} observedGenerations entries", state_bytes as f64 / 1e3);
    println!(
        "  initial sync + apply + status: {:.2} s wall (agent start -> FRRNodeState success), agent CPU {:.2} s (utime+stime), its vtysh children {:.2} s [load avg before: {load_before}]",
        initial_wall.as_secs_f64(),
        initial_cpu,
        initial_child_cpu
    );
    println!("  RSS at first success: VmRSS {rss_initial:.1} MiB, VmHWM {hwm_initial:.1} MiB");
    for c in &changes {
        println!("  change: {:<70} {:>6.0} ms", c.what, c.ms);
    }
    println!("  CPU for the changes: {:.2} s; idle CPU over 10 s: {:.2} s ({:.1}%)", cpu_after_changes - initial_cpu, cpu_idle, cpu_idle * 10.0);
    println!("  peak RSS (VmHWM): {hwm:.1} MiB; current VmRSS: {rss:.1} MiB; 10 ms-sampled peak VmRSS {sampled_peak:.1} MiB  (target < 40 MB)");
    println!("  load avg after: {load_after}");
    print_problems(&agent);
    drop(watch);
    drop(agent);
    drop(frr);
    Ok(())
}

// ------------------------------------------------------------------------------ main

fn run(o: &Opts) -> Result<bool> {
    if let Some(why) = lab::unavailable(&[Req::Frr(FrrVersion::V10)]) {
        eprintln!("SKIPPED: live lab cannot run: {why}");
        return Ok(true);
    }
    if let Some(why) = apiserver::available() {
        eprintln!("SKIPPED: real API server cannot run: {why} (run .ci/install-apiserver.sh)");
        return Ok(true);
    }
    let (bin, profile) = agent_binary()?;
    let tmp = TempDir::new()?;
    println!("frr-composer agent benchmark");
    println!("  agent binary: {} [{profile}]", bin.display());
    if !agent_env().is_empty() {
        println!("  agent environment (FRR_BENCH_AGENT_ENV): {:?}", agent_env());
    }
    println!(
        "  machine: {} CPUs, load avg {} (other jobs may share it: figures are medians, expect noise)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        loadavg()
    );
    let t = Instant::now();
    let api = setup_api()?;
    println!("  kube-apiserver + etcd started in {:.1} s", t.elapsed().as_secs_f64());
    let mut ok = true;
    if o.latency {
        if let Err(e) = run_latency(o, &bin, &api, &tmp) {
            println!("\n== 1. Latency: FAILED: {e:#}");
            ok = false;
        }
    }
    if o.scale {
        if let Err(e) = run_scale(o, &bin, &api, &tmp) {
            println!("\n== 2. Scale: FAILED: {e:#}");
            ok = false;
        }
    }
    drop(api);
    Ok(ok)
}

fn main() {
    let o = <Opts as clap::Parser>::parse();
    // everything (processes, namespaces, directories) is dropped inside run()
    let code = match run(&o) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("FAILED: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
