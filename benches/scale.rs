//! Scale benchmark: the node agent and the admission webhook against a real kube-apiserver +
//! etcd loaded like a 3,000-node cluster, with live FRR.
//!
//! The cluster (benches/scale/fixture.rs): --nodes Nodes (default 3,000; labels
//! kubernetes.io/hostname, rack (20 nodes each), zone (4)), --configs FRRConfigurations in
//! frr-k8s-system (default 6,000): one MetalLB-shaped object per node (nodeSelector
//! kubernetes.io/hostname=<node>, router AS 64512, 1-2 top-of-rack neighbors, a third of them
//! with a passwordSecret, 1-3 LoadBalancer /32s), the rest admin objects (--all-nodes of them,
//! default 5, select every node; every 20th of the others a zone, the rest a rack), and
//! --secrets basic-auth Secrets (default 3,000). Loaded with a kube client, --concurrency
//! creates in flight (default 32); the load time is reported.
//!
//! Parts, in this order:
//! 0. Baseline: the API server's own request counters over --baseline seconds with no agent
//!    running (its own loops and this benchmark's FRRNodeState watch), subtracted in part 2.
//! 1. One agent (`frr-composer controller`) with FRR 10.3 (chroot) in a network namespace,
//!    for node-0000: time from process start to the first FRRNodeState with the node's
//!    configuration applied (and, from its log, to "caches synced"); the latency of --changes
//!    changes to its node's MetalLB object (a new /32; merge patch returned -> FRRNodeState
//!    shows `network <prefix>` with success) on the idle cluster and again while a background
//!    writer changes --writer-rate other nodes' MetalLB objects per second (default 100; the
//!    rate achieved is reported); peak RSS (VmHWM).
//! 2. Steady state: --agents agents (default 20, including the one of part 1), each for a
//!    different node with its own FRR 10.3 in its own namespace. After all applied and
//!    --settle seconds (default 30), the API server's /metrics is read twice, --window seconds
//!    apart (default 60): `apiserver_request_total` by verb and resource, minus the baseline,
//!    per agent per minute. Target: no LIST or GET.
//! 3. Webhook (`frr-composer webhook`, serving certificate from the harness's CA): time to
//!    /healthz 200; --reviews sequential AdmissionReviews (default 200, at most
//!    --review-budget seconds, default 120) of a new object selecting every node, POSTed over
//!    HTTPS on one connection: p50/p99; --burst concurrent reviews (default 50, one connection
//!    each; at most --burst-budget seconds, default 300) with /healthz sampled on another
//!    connection meanwhile; whether the reviews
//!    overlapped (burst x sequential p50 over the burst's wall time: 1 means one at a time,
//!    about 2 both cores busy); peak RSS.
//! 4. The CLI against the loaded API server: `frr-composer peers -o json` (every node's
//!    sessions), `routes -o json` (every node's routes) and `routes ADDRESS`, and `frr-composer diff -f` of a change to one admin object that selects every
//!    node: wall time and the process's peak RSS (wait4).
//!
//! Run (root; FRR from .ci/install-frr.sh, the API server from .ci/install-apiserver.sh):
//!   cargo build --release && cargo bench --bench scale
//!   cargo bench --bench scale -- --nodes 300 --configs 600 --secrets 300   # a quick run
//!   cargo bench --bench scale -- --skip-agent --skip-steady                 # webhook only
//! The binary under test: $FRR_BENCH_AGENT_BIN, else the one cargo built for this bench, else
//! ${CARGO_TARGET_DIR:-target}/release/frr-composer. The report (stdout, markdown) names it.
//! Everything started (processes by pid, namespaces, directories) is removed on every path,
//! also on SIGINT/SIGTERM.

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "scale/fixture.rs"]
mod fixture;
#[path = "../tests/support/mod.rs"]
mod support;
#[path = "scale/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use apiserver::node::NodeFrr;
use apiserver::{AgentUnderTest, ApiServer};
use fixture::{lb_prefixes, node_name, Shape};
use frr_composer::lab::{self, FrrVersion, Req, TempDir};
use kube::Client;
use serde_json::{json, Value};
use support::{free_port, Process};
use tools::{applied, has_network, max, ms, pct, vm_mib, Requests, States};

const INITIAL_TIMEOUT: Duration = Duration::from_secs(900);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
const FRR: FrrVersion = FrrVersion::V10;
/// Log lines quoted when the webhook exits.
const WEBHOOK_LOG_LINES: usize = 20;

#[derive(clap::Parser)]
struct Opts {
    #[arg(long, default_value_t = 3000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(40..=9999))]
    nodes: usize,
    /// All FRRConfigurations (one MetalLB object per node, the rest admin objects).
    #[arg(long, default_value_t = 6000)]
    configs: usize,
    #[arg(long, default_value_t = 3000)]
    secrets: usize,
    /// Admin objects selecting every node.
    #[arg(long, default_value_t = 5)]
    all_nodes: usize,
    /// The agents' --object-status (all, problems).
    #[arg(long, default_value = "all")]
    object_status: String,
    /// Creates in flight while loading.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 30)]
    baseline: u64,
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=50))]
    changes: usize,
    #[arg(long, default_value_t = 100)]
    writer_rate: usize,
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100))]
    agents: usize,
    #[arg(long, default_value_t = 30)]
    settle: u64,
    #[arg(long, default_value_t = 60)]
    window: u64,
    #[arg(long, default_value_t = 200)]
    reviews: usize,
    #[arg(long, default_value_t = 120)]
    review_budget: u64,
    #[arg(long, default_value_t = 50)]
    burst: usize,
    /// Seconds the burst may take; reviews not answered by then are counted as such.
    #[arg(long, default_value_t = 300)]
    burst_budget: u64,
    #[arg(long = "skip-agent", action = clap::ArgAction::SetFalse)]
    agent: bool,
    #[arg(long = "skip-steady", action = clap::ArgAction::SetFalse)]
    steady: bool,
    #[arg(long = "skip-webhook", action = clap::ArgAction::SetFalse)]
    webhook: bool,
    #[arg(long = "skip-cli", action = clap::ArgAction::SetFalse)]
    cli: bool,
    // cargo bench passes --bench and test filters
    #[arg(long, hide = true)]
    bench: bool,
    #[arg(hide = true)]
    filters: Vec<String>,
}

/// The binary under test and how it was chosen.
fn binary() -> Result<(PathBuf, String)> {
    if let Some(p) = std::env::var_os("FRR_BENCH_AGENT_BIN") {
        return Ok((PathBuf::from(p), "from FRR_BENCH_AGENT_BIN".into()));
    }
    let built = option_env!("CARGO_BIN_EXE_frr-composer").map(PathBuf::from).filter(|p| p.is_file());
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let fallback = Some(target.join("release/frr-composer")).filter(|p| p.is_file());
    match (built, fallback) {
        (Some(p), _) => Ok((p, "built by cargo for this benchmark".into())),
        (None, Some(p)) => Ok((p, "release build in the target directory".into())),
        (None, None) => bail!("no frr-composer binary: set FRR_BENCH_AGENT_BIN or run `cargo build --release`"),
    }
}

/// A process of the binary under test: stopped (SIGTERM, then SIGKILL) on drop.
/// Seconds from `started_at` to the first line of the log at `log` with `message`.
fn logged_after(log: &Path, started_at: jiff::Timestamp, message: &str) -> Option<f64> {
    let line = tools::log_lines(log, message).into_iter().next()?;
    let t: jiff::Timestamp = line["timestamp"].as_str()?.parse().ok()?;
    Some((t.as_millisecond() - started_at.as_millisecond()) as f64 / 1e3)
}

/// Warning and error lines of an agent's log, counted by level and message.
fn problems(agent: &AgentUnderTest, into: &mut BTreeMap<String, usize>) {
    for l in agent.log().lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else { continue };
        let level = v["level"].as_str().unwrap_or("?");
        if matches!(level, "WARN" | "ERROR") {
            *into.entry(format!("{level} \"{}\"", v["fields"]["message"].as_str().unwrap_or("?"))).or_default() += 1;
        }
    }
}

/// An agent with its FRR in its own namespace (dropped in this order: agent, FRR, namespace).
struct Site {
    agent: AgentUnderTest,
    /// When the agent was started, as its log's timestamps count.
    started_at: jiff::Timestamp,
    frr: NodeFrr,
    node: usize,
}

impl Site {
    fn frr(node: usize) -> Result<NodeFrr> {
        NodeFrr::start(FRR).with_context(|| format!("starting FRR {} for {}", FRR.label(), node_name(node)))
    }
    fn start(cx: &Ctx, frr: NodeFrr, node: usize) -> Result<Site> {
        let name = node_name(node);
        let started_at = jiff::Timestamp::now();
        let agent = AgentUnderTest::builder(cx.api, &frr.cli_args(), &name, fixture::NS, cx.tmp)
            .bin(cx.bin)
            .clean_env()
            .log_name(format!("agent-{name}.log"))
            .args(["--object-status", &cx.o.object_status])
            .terminate_on_drop(Duration::from_secs(5))
            .try_spawn()?;
        Ok(Site { agent, started_at, frr, node })
    }
    /// Seconds from the agent's start to the first log line with `message`.
    fn logged_after(&self, message: &str) -> Option<f64> {
        logged_after(self.agent.log_path(), self.started_at, message)
    }
    /// Waits for FRRNodeState/<node> with the node's /32s applied (after the first `from`
    /// versions); when it arrived.
    fn wait_applied(&mut self, states: &States, from: usize, timeout: Duration) -> Result<(Instant, Value)> {
        let want = lb_prefixes(self.node);
        let agent = &mut self.agent;
        states.wait(&node_name(self.node), from, timeout, &mut || agent.alive(), &|v| applied(v) && want.iter().all(|p| has_network(v, p)))
    }
}

/// The report: markdown rows (measure, value, target) and notes.
#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String)>,
    notes: Vec<String>,
    failed: bool,
}

impl Report {
    fn row(&mut self, what: impl Into<String>, value: impl Into<String>, target: &str) {
        let (w, v) = (what.into(), value.into());
        eprintln!("  {w}: {v}");
        self.rows.push((w, v, target.into()));
    }
    fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("  note: {n}");
        self.notes.push(n);
    }
}

fn lat(v: &[f64]) -> String {
    format!("p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms (n={})", pct(v, 50.0), pct(v, 90.0), max(v), v.len())
}

/// The API server's request counters, and its open long-running requests (watches).
fn metrics(api: &ApiServer) -> Result<Requests> {
    Ok(tools::parse_requests(&api.kubectl(&["get", "--raw", "/metrics"])?))
}

fn open_watches(api: &ApiServer) -> Result<Requests> {
    Ok(tools::parse_by_verb_and_resource(&api.kubectl(&["get", "--raw", "/metrics"])?, "apiserver_longrunning_requests"))
}

// ------------------------------------------------------------------------------ 1. one agent

/// The background writer: `rate` changes per second to other nodes' MetalLB objects, until
/// `stop`; counts (done, failed).
struct Writer {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(rt: &tokio::runtime::Runtime, client: Client, shape: Shape, rate: usize, skip: usize) -> Writer {
        let (stop, done, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, d, f) = (stop.clone(), done.clone(), failed.clone());
        let task = rt.spawn(async move {
            use futures::StreamExt;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next = 0usize;
            let mut round = 0usize;
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                round += 1;
                let batch: Vec<usize> = (0..rate)
                    .map(|_| {
                        next = (next + 1) % shape.nodes;
                        if next == skip {
                            next = (next + 1) % shape.nodes;
                        }
                        next
                    })
                    .collect();
                let extra = vec![format!("198.51.100.{}/32", 201 + round % 50)];
                let results: Vec<Result<()>> = futures::stream::iter(batch)
                    .map(|i| {
                        let (client, extra) = (client.clone(), extra.clone());
                        async move { fixture::patch_metallb(&client, &shape, i, &extra).await }
                    })
                    .buffer_unordered(16)
                    .collect()
                    .await;
                for r in results {
                    let counter = if r.is_ok() { &d } else { &f };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Writer { stop, done, failed, started: Instant::now(), task }
    }
    /// Stops it; (changes written, failed, changes per second achieved).
    fn stop(self, rt: &tokio::runtime::Runtime) -> (u64, u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let _ = rt.block_on(self.task);
        let done = self.done.load(Ordering::Relaxed);
        (done, self.failed.load(Ordering::Relaxed), done as f64 / secs)
    }
}

struct Ctx<'a> {
    o: &'a Opts,
    shape: Shape,
    bin: &'a Path,
    api: &'a ApiServer,
    client: Client,
    rt: &'a tokio::runtime::Runtime,
    states: States,
    tmp: &'a Path,
}

/// `changes` timed changes to node `node`'s MetalLB object; latencies (ms) from the patch
/// returning to FRRNodeState showing the new /32 applied.
fn timed_changes(cx: &Ctx, site: &mut Site, first: usize, n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    let name = node_name(site.node);
    for c in first..first + n {
        let prefix = format!("192.0.2.{}/32", 201 + c % 50);
        let from = cx.states.seen(&name);
        cx.rt.block_on(fixture::patch_metallb(&cx.client, &cx.shape, site.node, std::slice::from_ref(&prefix)))?;
        let t1 = Instant::now();
        let agent = &mut site.agent;
        let (t2, _) = cx
            .states
            .wait(&name, from, CHANGE_TIMEOUT, &mut || agent.alive(), &|v| applied(v) && has_network(v, &prefix))
            .with_context(|| format!("change {c} ({prefix})"))?;
        out.push(ms(t2.saturating_duration_since(t1)));
        // past the status interval: a lone change's status is written at once
        std::thread::sleep(frr_composer::agent::pacer::STATUS_INTERVAL + Duration::from_millis(200));
    }
    Ok(out)
}

fn part_agent(cx: &Ctx, r: &mut Report) -> Result<Site> {
    eprintln!("== 1. one agent with FRR {} ==", FRR.label());
    let node = 0;
    let name = node_name(node);
    let frr = Site::frr(node)?;
    let from = cx.states.seen(&name);
    let load = tools::loadavg();
    let mut site = Site::start(cx, frr, node)?;
    let (t, _) = site.wait_applied(&cx.states, from, INITIAL_TIMEOUT)?;
    let first = t - site.agent.started;
    let pid = site.agent.pid();
    let hwm_first = vm_mib(pid, "VmHWM:")?;
    let cpu_first = tools::cpu_seconds(pid)?;
    let rc = site.frr.running_config()?;
    for p in lb_prefixes(node) {
        if !rc.lines().any(|l| l.trim() == format!("network {p}")) {
            bail!("FRR's running configuration lacks `network {p}`");
        }
    }
    let neighbors = rc.lines().filter(|l| l.trim_start().starts_with("neighbor ") && l.contains(" remote-as ")).count();
    let synced = site.logged_after("caches synced").map(|s| format!("{s:.2} s")).unwrap_or_else(|| "n/a (no \"caches synced\" log line)".into());
    r.row(
        format!("1 agent ({name}): process start -> first apply (FRRNodeState success)"),
        format!("{:.2} s; \"caches synced\" logged at {synced}; CPU {cpu_first:.2} s; load avg before {load}", first.as_secs_f64()),
        "< 5 s",
    );
    r.row("1 agent: FRR configuration applied", format!("{neighbors} neighbors, {} LoadBalancer /32s (checked in FRR)", lb_prefixes(node).len()), "");
    r.row("1 agent: peak RSS (VmHWM) at first apply", format!("{hwm_first:.1} MiB"), "< 40 MB (aim 25)");
    std::thread::sleep(Duration::from_secs(3));

    let idle = timed_changes(cx, &mut site, 0, cx.o.changes)?;
    r.row("1 agent: change to its node's object -> applied, idle cluster", lat(&idle), "p50 < 120 ms");
    let writer = Writer::start(cx.rt, cx.client.clone(), cx.shape, cx.o.writer_rate, node);
    std::thread::sleep(Duration::from_secs(3));
    let busy = timed_changes(cx, &mut site, cx.o.changes, cx.o.changes);
    let (done, failed, rate) = writer.stop(cx.rt);
    let busy = busy?;
    r.row(
        format!("1 agent: the same, while other objects change ({} asked/s)", cx.o.writer_rate),
        format!("{} [writer: {done} changes, {rate:.0}/s achieved, {failed} failed]", lat(&busy)),
        "same as idle",
    );
    std::thread::sleep(Duration::from_secs(2));
    site.agent.alive()?;
    r.row(
        "1 agent: peak RSS (VmHWM) after the changes",
        format!("{:.1} MiB (VmRSS now {:.1} MiB); CPU so far {:.2} s", vm_mib(pid, "VmHWM:")?, vm_mib(pid, "VmRSS:")?, tools::cpu_seconds(pid)?),
        "< 40 MB (aim 25)",
    );
    let mut warn = BTreeMap::new();
    problems(&site.agent, &mut warn);
    if !warn.is_empty() {
        r.note(format!("agent {name} logged (log: {}): {warn:?}", site.agent.log_path().display()));
    }
    Ok(site)
}

// ------------------------------------------------------------------------------ 2. steady state

fn part_steady(cx: &Ctx, r: &mut Report, first: Option<Site>, baseline: &(Requests, f64, Requests)) -> Result<()> {
    eprintln!("== 2. steady state: {} agents ==", cx.o.agents);
    let mut sites: Vec<Site> = first.into_iter().collect();
    let step = (cx.shape.nodes / cx.o.agents).max(1);
    let nodes: Vec<usize> = (1..=cx.o.agents).map(|k| (k * step + k) % cx.shape.nodes).filter(|n| *n != 0).take(cx.o.agents - sites.len()).collect();
    let t = Instant::now();
    let frrs: Vec<_> = nodes.iter().map(|&n| Site::frr(n)).collect::<Result<_>>()?;
    eprintln!("  {} FRR instances started in {:.1} s", frrs.len(), t.elapsed().as_secs_f64());
    let m0 = metrics(cx.api)?;
    let t0 = Instant::now();
    let froms: Vec<usize> = nodes.iter().map(|&n| cx.states.seen(&node_name(n))).collect();
    for (frr, &n) in frrs.into_iter().zip(&nodes) {
        sites.push(Site::start(cx, frr, n)?);
    }
    let skip = sites.len() - nodes.len();
    let mut firsts = Vec::new();
    for (site, from) in sites.iter_mut().skip(skip).zip(froms) {
        let (t, _) = site.wait_applied(&cx.states, from, INITIAL_TIMEOUT)?;
        firsts.push(t.saturating_duration_since(t0).as_secs_f64());
    }
    r.row(
        format!("{} more agents started together: start -> first apply", nodes.len()),
        format!("median {:.1} s, last {:.1} s", pct(&firsts, 50.0), max(&firsts)),
        "",
    );
    std::thread::sleep(Duration::from_secs(cx.o.settle));
    // what starting cost the objects' status: writes (PATCH, status included) per started agent,
    // and the status an object selecting every node carries now
    let started = tools::delta(&m0, &metrics(cx.api)?);
    // (server-side apply counts as APPLY, other patches as PATCH)
    let patches: f64 = started
        .iter()
        .filter(|((verb, res), _)| res.starts_with("frrconfigurations") && matches!(verb.as_str(), "APPLY" | "PATCH" | "UPDATE"))
        .map(|(_, n)| n)
        .fold(0.0, |a, n| a + n);
    let all = cx.api.kubectl(&["-n", fixture::NS, "get", "frrconfiguration", "admin-all-0000", "-o", "json"])?;
    let status: Value = serde_json::from_str::<Value>(&all)?["status"].clone();
    let entries = status["appliedOn"].as_array().map_or(0, |a| a.len()) + status["conditions"].as_array().map_or(0, |a| a.len());
    let bytes = if status.is_null() { 0 } else { status.to_string().len() };
    r.row(
        format!("{} agents (--object-status {}): FRRConfiguration writes while starting", sites.len(), cx.o.object_status),
        format!(
            "{:.1} per started agent; an object selecting every node then carries {entries} status entries, {bytes} bytes (at {} nodes: about {:.0} kB, each write of it sent to every agent)",
            patches / nodes.len().max(1) as f64,
            cx.shape.nodes,
            bytes as f64 / sites.len() as f64 * cx.shape.nodes as f64 / 1e3
        ),
        "",
    );
    let pids: Vec<u32> = sites.iter().map(|s| s.agent.pid()).collect();
    let cpu0: f64 = pids.iter().filter_map(|p| tools::cpu_seconds(*p).ok()).sum();
    let seen0: usize = sites.iter().map(|s| cx.states.seen(&node_name(s.node))).sum();
    let m1 = metrics(cx.api)?;
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_secs(cx.o.window));
    let m2 = metrics(cx.api)?;
    let secs = t1.elapsed().as_secs_f64();
    let cpu1: f64 = pids.iter().filter_map(|p| tools::cpu_seconds(*p).ok()).sum();
    let seen1: usize = sites.iter().map(|s| cx.states.seen(&node_name(s.node))).sum();
    for s in sites.iter_mut() {
        s.agent.alive()?;
    }
    let n = sites.len() as f64;
    let d = tools::delta(&m1, &m2);
    let (base, base_secs, base_watches) = baseline;
    let mut keys: Vec<&(String, String)> = d.keys().chain(base.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut table = format!(
        "\n### Steady state: API server requests per agent per minute ({} agents, {secs:.0} s window, baseline of {base_secs:.0} s without agents subtracted)\n\n| verb | resource | in window | baseline (scaled) | per agent per minute |\n|---|---|---:|---:|---:|\n",
        sites.len()
    );
    let mut list_get = 0.0;
    for k in keys {
        let w = d.get(k).copied().unwrap_or(0.0);
        let b = base.get(k).copied().unwrap_or(0.0) * secs / base_secs;
        let per = (w - b) / n / (secs / 60.0);
        if matches!(k.0.as_str(), "LIST" | "GET") && per > 0.05 {
            list_get += per;
        }
        table.push_str(&format!("| {} | {} | {w:.0} | {b:.1} | {per:.2} |\n", k.0, k.1));
    }
    let watches = open_watches(cx.api)?;
    let open: Vec<String> = watches
        .iter()
        .filter(|(k, _)| k.0 == "WATCH")
        .map(|(k, v)| (k, v - base_watches.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .map(|(k, v)| format!("{} {:.1}", k.1, v / n))
        .collect();
    table.push_str(&format!(
        "\nWATCH requests are counted when they end (a watch is re-opened every few minutes), so few appear in a 60 s window. Open watches per agent at the end of the window (apiserver_longrunning_requests, minus those before the agents): {}\n",
        if open.is_empty() { "none".to_string() } else { open.join(", ") }
    ));
    eprintln!("{table}");
    r.notes.push(table);
    r.row(
        format!("{} agents, steady state: LIST + GET requests per agent per minute", sites.len()),
        format!("{list_get:.1} (table below)"),
        "0 (watches only)",
    );
    r.row(
        format!("{} agents, steady state: FRRNodeState versions seen, CPU", sites.len()),
        format!("{} in {secs:.0} s; agents' CPU {:.1}% of one core each", seen1 - seen0, (cpu1 - cpu0) / n / secs * 100.0),
        "",
    );
    let hwm: Vec<f64> = pids.iter().filter_map(|p| vm_mib(*p, "VmHWM:").ok()).collect();
    r.row(format!("{} agents: peak RSS (VmHWM) each", sites.len()), format!("median {:.1} MiB, max {:.1} MiB", pct(&hwm, 50.0), max(&hwm)), "< 40 MB");
    let mut warn = BTreeMap::new();
    for s in &sites {
        problems(&s.agent, &mut warn);
    }
    if !warn.is_empty() {
        r.note(format!("the {} agents logged, from their start to the end of the window: {warn:?}", sites.len()));
    }
    let t = Instant::now();
    drop(sites);
    eprintln!("  agents, FRR and namespaces stopped in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

// ------------------------------------------------------------------------------ 3. webhook

fn part_webhook(cx: &Ctx, r: &mut Report) -> Result<()> {
    eprintln!("== 3. webhook ==");
    let (cert, key) = cx.api.issue_serving_cert("scale-webhook", &["localhost"])?;
    let port = free_port();
    let args: Vec<String> = vec![
        "webhook".into(),
        "--address".into(),
        format!("127.0.0.1:{port}"),
        "--cert-file".into(),
        cert.display().to_string(),
        "--key-file".into(),
        key.display().to_string(),
        "--log-level".into(),
        "info".into(),
    ];
    let mut wh = Process::spawn(under_test(cx).args(&args), cx.tmp.join("webhook.log"))?.terminate_on_drop(Duration::from_secs(5));
    let https = tools::Https::new(&cx.api.ca_pem()?, port)?;
    let body = serde_json::to_vec(&fixture::review_of_all_nodes("bench-0"))?;
    let path = "/validate-frrk8s-metallb-io-v1beta1-frrconfiguration";
    // /healthz 200 once its caches are synced
    let deadline = Instant::now() + INITIAL_TIMEOUT;
    loop {
        wh.alive(WEBHOOK_LOG_LINES)?;
        let ok = cx.rt.block_on(async {
            let mut c = https.connect().await?;
            tools::request(&mut c, "/healthz", None).await
        });
        if matches!(ok, Ok((200, _))) {
            break;
        }
        if Instant::now() > deadline {
            bail!("webhook /healthz not 200 after {INITIAL_TIMEOUT:?}: {ok:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    r.row("webhook: process start -> /healthz 200 (caches synced)", format!("{:.2} s", wh.started.elapsed().as_secs_f64()), "");

    // sequential reviews on one connection
    let budget = Duration::from_secs(cx.o.review_budget);
    let (seq, first, seq_failures) = cx.rt.block_on(async {
        let (mut times, mut failures) = (Vec::new(), Vec::new());
        let mut first = None;
        let mut conn = https.connect().await?;
        let t0 = Instant::now();
        while times.len() < cx.o.reviews && t0.elapsed() < budget {
            let t = Instant::now();
            let res = match tools::request(&mut conn, path, Some(&body)).await {
                Ok(x) => x,
                Err(e) => {
                    failures.push(format!("{e:#} after {:.0} ms", ms(t.elapsed())));
                    conn = https.connect().await?;
                    continue;
                }
            };
            times.push(ms(t.elapsed()));
            first.get_or_insert(res);
        }
        anyhow::Ok((times, first, failures))
    })?;
    let (status, resp) = first.unwrap_or_default();
    let resp: Value = serde_json::from_slice(&resp).unwrap_or_default();
    if status != 200 || resp["response"]["allowed"] != true {
        bail!("the review was not allowed (HTTP {status}): {}", resp["response"]["status"]);
    }
    let mut capped = if seq.len() < cx.o.reviews { format!(", stopped at the {} s budget", cx.o.review_budget) } else { String::new() };
    if let Some(f) = seq_failures.first() {
        capped.push_str(&format!(", {} failed (first: {f})", seq_failures.len()));
    }
    r.row(
        format!("webhook: review of an object selecting all {} nodes, sequential", cx.shape.nodes),
        format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={}{capped})", pct(&seq, 50.0), pct(&seq, 99.0), max(&seq), seq.len()),
        "p99 < 100 ms",
    );

    // a burst of concurrent reviews, /healthz sampled meanwhile on its own connection; the
    // burst ends after --burst-budget seconds (reviews not answered by then are counted)
    let burst = cx.o.burst;
    let budget = Duration::from_secs(cx.o.burst_budget);
    let (lat, unanswered, failed, wall, health, health_waiting) = cx.rt.block_on(async {
        let mut conns = Vec::new();
        for _ in 0..burst {
            conns.push(https.connect().await?);
        }
        let mut hc = https.connect().await?;
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        let in_flight = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let (s2, f2) = (samples.clone(), in_flight.clone());
        let sampler = tokio::spawn(async move {
            loop {
                let t = Instant::now();
                *f2.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
                let res = tools::request(&mut hc, "/healthz", None).await;
                *f2.lock().unwrap_or_else(|e| e.into_inner()) = None;
                match res {
                    Ok((200, _)) => s2.lock().unwrap_or_else(|e| e.into_inner()).push(ms(t.elapsed())),
                    _ => return,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        let deadline = tokio::time::Instant::now() + budget;
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let body = body.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let res = tools::request(&mut c, path, Some(&body)).await;
                    (res.map(|(s, _)| s).map_err(|e| format!("{e:#}")), ms(t.elapsed()))
                })
            })
            .collect();
        let (mut lat, mut unanswered, mut failed) = (Vec::new(), 0usize, Vec::new());
        for mut t in tasks {
            match tokio::time::timeout_at(deadline, &mut t).await {
                Ok(done) => match done? {
                    (Ok(200), l) => lat.push(l),
                    (Ok(s), l) => failed.push(format!("HTTP {s} after {l:.0} ms")),
                    (Err(e), l) => failed.push(format!("{e} after {l:.0} ms")),
                },
                Err(_) => {
                    t.abort();
                    unanswered += 1;
                }
            }
        }
        let wall = t0.elapsed();
        sampler.abort();
        let waiting = in_flight.lock().unwrap_or_else(|e| e.into_inner()).map(|t| ms(t.elapsed()));
        let health = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        anyhow::Ok((lat, unanswered, failed, wall, health, waiting))
    })?;
    // one at a time, the burst takes `burst` sequential reviews; concurrently, CPU-bound
    // reviews on 2 cores take about half that
    let overlap = if unanswered == 0 && failed.is_empty() {
        format!("{burst} x sequential p50 / wall = {:.2} (1 = one at a time, about 2 = both cores busy)", burst as f64 * pct(&seq, 50.0) / ms(wall))
    } else {
        format!(
            "{} answered within the {} s budget, {unanswered} unanswered, {} failed{}",
            lat.len(),
            cx.o.burst_budget,
            failed.len(),
            failed.first().map(|f| format!(" (first: {f})")).unwrap_or_default()
        )
    };
    r.row(
        format!("webhook: {burst} concurrent reviews"),
        format!("wall {:.0} ms; latency p50 {:.0} ms, max {:.0} ms; {overlap}", ms(wall), pct(&lat, 50.0), max(&lat)),
        "concurrent, no lock held",
    );
    let waiting = health_waiting.map(|w| format!("; one more still unanswered after {w:.0} ms")).unwrap_or_default();
    r.row(
        "webhook: /healthz during the burst (one connection, every 10 ms)",
        format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={}){waiting}", pct(&health, 50.0), pct(&health, 99.0), max(&health), health.len()),
        "< 10 ms",
    );
    wh.alive(WEBHOOK_LOG_LINES)?;
    r.row("webhook: peak RSS (VmHWM)", format!("{:.1} MiB (VmRSS now {:.1} MiB)", vm_mib(wh.pid(), "VmHWM:")?, vm_mib(wh.pid(), "VmRSS:")?), "< 128 Mi");
    Ok(())
}

// ------------------------------------------------------------------------------ main

fn run(o: &Opts) -> Result<bool> {
    if let Some(why) = lab::unavailable(&[Req::Frr(FRR)]).or_else(apiserver::available) {
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("the scale benchmark cannot run under CI=true: {why}");
        }
        eprintln!("SKIPPED: the scale benchmark cannot run here: {why}");
        return Ok(true);
    }
    if o.configs < o.nodes + o.all_nodes {
        bail!("--configs must be at least --nodes + --all-nodes");
    }
    // SIGINT/SIGTERM: stop every child (API server, etcd, agents, FRR helpers, the webhook),
    // remove the namespaces and directories of this process
    frr_composer::signals::exit_on_signal(|| {
        eprintln!("interrupted: cleaning up");
        lab::cleanup_all();
        let me = format!("fc-apiserver-{}-", std::process::id());
        for e in std::fs::read_dir("/dev/shm").into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&me) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    })?;
    let (bin, how) = binary()?;
    let shape = Shape { nodes: o.nodes, configs: o.configs, secrets: o.secrets, all_nodes: o.all_nodes };
    let tmp = TempDir::new()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
    let mut r = Report::default();
    let t = Instant::now();
    let api = ApiServer::start()?;
    api.install_crds()?;
    eprintln!("kube-apiserver + etcd ready in {:.1} s", t.elapsed().as_secs_f64());
    let client = rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(api.kubeconfig())?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
        anyhow::Ok(Client::try_from(cfg)?)
    })?;
    let loaded = rt.block_on(fixture::load(&client, &shape, o.concurrency)).context("loading the API server")?;
    r.row(
        format!(
            "load: {} Nodes, {} FRRConfigurations ({} MetalLB, {} admin, {} of them for every node; {:.1} MB JSON), {} Secrets",
            o.nodes,
            o.configs,
            o.nodes,
            shape.admin(),
            o.all_nodes,
            loaded.json_bytes as f64 / 1e6,
            o.secrets
        ),
        format!(
            "{:.1} s ({} creates in flight: Nodes {:.1} s, Secrets {:.1} s, FRRConfigurations {:.1} s)",
            loaded.total.as_secs_f64(),
            o.concurrency,
            loaded.nodes.as_secs_f64(),
            loaded.secrets.as_secs_f64(),
            loaded.configs.as_secs_f64()
        ),
        "",
    );
    let states = States::start(&rt, client.clone());
    std::thread::sleep(Duration::from_secs(2));
    let m1 = metrics(&api)?;
    let tb = Instant::now();
    // the baseline is only needed for the steady state
    std::thread::sleep(Duration::from_secs(if o.steady { o.baseline } else { 0 }));
    let baseline = (tools::delta(&m1, &metrics(&api)?), tb.elapsed().as_secs_f64(), open_watches(&api)?);
    let cx = Ctx { o, shape, bin: &bin, api: &api, client, rt: &rt, states, tmp: tmp.path() };

    let mut first = None;
    if o.agent {
        match part_agent(&cx, &mut r) {
            Ok(site) => first = Some(site),
            Err(e) => {
                r.row("1 agent", format!("FAILED: {e:#}"), "");
                r.failed = true;
            }
        }
    }
    if o.steady {
        if let Err(e) = part_steady(&cx, &mut r, first.take(), &baseline) {
            r.row("steady state", format!("FAILED: {e:#}"), "");
            r.failed = true;
        }
    }
    drop(first);
    if o.webhook {
        if let Err(e) = part_webhook(&cx, &mut r) {
            r.row("webhook", format!("FAILED: {e:#}"), "");
            r.failed = true;
        }
    }
    if o.cli {
        if let Err(e) = part_cli(&cx, &mut r) {
            r.row("cli", format!("FAILED: {e:#}"), "");
            r.failed = true;
        }
    }

    println!("## frr-composer at scale (benches/scale.rs)\n");
    println!("- binary: `{}` ({how})", bin.display());
    println!(
        "- cluster: real kube-apiserver + etcd; {} Nodes, {} FRRConfigurations, {} Secrets; FRR {} in network namespaces",
        o.nodes,
        o.configs,
        o.secrets,
        FRR.label()
    );
    println!("- machine: {} CPUs, load average now {}\n", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), tools::loadavg());
    println!("| measure | value | target |\n|---|---|---|");
    for (w, v, t) in &r.rows {
        println!("| {w} | {} | {t} |", v.replace('|', "/").replace('\n', " "));
    }
    for n in &r.notes {
        println!("\n{n}");
    }
    drop(cx);
    drop(api);
    drop(tmp);
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(!r.failed)
}

/// Every this many nodes, one session carries a large table: what the agents publish at their
/// bound (100 listed each way), to size the objects at their largest.
const FULL_TABLE_EVERY: usize = 100;

/// The status an agent writes for session `k` of node `i` that sends `sent`: the top-of-rack
/// router's default route accepted and installed; on every [`FULL_TABLE_EVERY`]th node the
/// first session accepted 5,000 IPv6 routes, 1,000 of them not installed (the lists at 100).
fn session_status(node: &str, peer: &str, i: usize, k: usize, sent: &[String]) -> Value {
    let full = i.is_multiple_of(FULL_TABLE_EVERY) && k == 0;
    let v6 = |n: usize| format!("2001:db8:{:x}:{:x}::/64", 0x1000 + n / 0xffff, n % 0xffff);
    let (accepted, installed, listed, not_installed): (u64, u64, Vec<String>, Vec<String>) =
        if full { (5_000, 4_000, (0..100).map(v6).collect(), (4_000..4_100).map(v6).collect()) } else { (1, 1, vec!["0.0.0.0/0".into()], vec![]) };
    json!({"apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "BGPSessionState", "status": {
        "bgpStatus": "Established", "bfdStatus": "N/A", "node": node, "peer": peer, "vrf": "",
        "prefixesSent": sent.len(), "prefixesReceived": accepted, "prefixesAccepted": accepted, "prefixesInstalled": installed,
        "establishedSince": "2026-12-01T00:00:00Z", "lastResetReason": "Waiting for peer OPEN",
        "advertisedPrefixes": sent, "acceptedPrefixes": listed, "notInstalledPrefixes": not_installed
    }})
}

/// Creates a BGPSessionState for every MetalLB neighbor of every node, with its status as the
/// agents write it ([`session_status`]).
async fn load_sessions(cx: &Ctx<'_>) -> Result<usize> {
    use frr_composer::agent::status::{peer_label, session_name};
    use futures::StreamExt;
    let api: kube::Api<frr_composer::api::BGPSessionState> = kube::Api::namespaced(cx.client.clone(), fixture::NS);
    let mut objects = Vec::new();
    for i in 0..cx.shape.nodes {
        let node = node_name(i);
        let spec = fixture::metallb_spec(&cx.shape, i, &[]);
        for (k, n) in spec["bgp"]["routers"][0]["neighbors"].as_array().into_iter().flatten().enumerate() {
            let peer = n["address"].as_str().unwrap_or_default().to_string();
            objects.push((session_name(&node, "default", &peer), node.clone(), peer, i, k));
        }
    }
    let count = objects.len();
    let pp = kube::api::PatchParams::apply("scale-bench").force();
    let results: Vec<Result<()>> = futures::stream::iter(objects)
        .map(|(name, node, peer, i, k)| {
            let (api, pp) = (&api, &pp);
            async move {
                let labels = json!({"frrk8s.metallb.io/node": node, "frrk8s.metallb.io/peer": peer_label(&peer), "frrk8s.metallb.io/vrf": ""});
                let obj =
                    json!({"apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "BGPSessionState", "metadata": {"name": name, "labels": labels}, "spec": {}});
                api.patch(&name, pp, &kube::api::Patch::Apply(&obj)).await.with_context(|| format!("creating {name}"))?;
                let status = session_status(&node, &peer, i, k, &lb_prefixes(i));
                api.patch_status(&name, pp, &kube::api::Patch::Apply(&status)).await.with_context(|| format!("status of {name}"))?;
                Ok(())
            }
        })
        .buffer_unordered(cx.o.concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(count)
}

/// The binary under test, with a clean environment: the lab's PATH and the API server's
/// kubeconfig.
fn under_test(cx: &Ctx) -> Command {
    let mut cmd = Command::new(cx.bin);
    cmd.env_clear().env("PATH", lab::PATH).env("KUBECONFIG", cx.api.kubeconfig());
    cmd
}

/// Runs the binary under test with `args` against the API server to its end: (wall time,
/// its own peak RSS in MiB from wait4, exit code, standard output).
fn run_cli(cx: &Ctx, args: &[&str]) -> Result<(Duration, f64, i32, String)> {
    let out_path = cx.tmp.join("cli.out");
    let mut cmd = under_test(cx);
    cmd.args(args).stdin(Stdio::null()).stdout(std::fs::File::create(&out_path)?).stderr(std::fs::File::create(cx.tmp.join("cli.err"))?);
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {}", cx.bin.display()))?;
    let mut status = 0;
    // SAFETY: wait4 on our own child, with a zeroed rusage it fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    if waited < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    Ok((took, usage.ru_maxrss as f64 / 1024.0, code, stdout))
}

/// Part 4, the operator's commands against the loaded API server: `peers` (every node's
/// sessions, paged lists) and `diff -f` of one admin object that selects every node.
fn part_cli(cx: &Ctx, r: &mut Report) -> Result<()> {
    eprintln!("== 4. the CLI against the API server ==");
    // the BGPSessionStates the agents would write: one per MetalLB neighbor of every node,
    // Established, with its prefix counts (created, then their status)
    let t = Instant::now();
    let sessions = cx.rt.block_on(load_sessions(cx))?;
    r.row(format!("load: {sessions} BGPSessionStates (what the agents would write)"), format!("{:.1} s", t.elapsed().as_secs_f64()), "");
    // their size as the API server serves them (paged list, managed fields left out)
    let api: kube::Api<frr_composer::api::BGPSessionState> = kube::Api::namespaced(cx.client.clone(), fixture::NS);
    let (mut total, mut largest, mut typical, mut continue_token) = (0usize, 0usize, 0usize, None::<String>);
    loop {
        let mut lp = kube::api::ListParams::default().limit(500);
        if let Some(c) = &continue_token {
            lp = lp.continue_token(c);
        }
        let page = cx.rt.block_on(api.list(&lp))?;
        for mut s in page.items {
            s.metadata.managed_fields = None;
            let n = serde_json::to_vec(&s)?.len();
            total += n;
            largest = largest.max(n);
            if s.status.as_ref().and_then(|st| st.prefixes_accepted) == Some(1) {
                typical = typical.max(n);
            }
        }
        continue_token = page.metadata.continue_.filter(|c| !c.is_empty());
        if continue_token.is_none() {
            break;
        }
    }
    r.row(
        format!("BGPSessionStates as the agents write them, 1 in {FULL_TABLE_EVERY} nodes with a 5,000-route session"),
        format!(
            "{:.1} MB in all; typical session at most {:.2} kB; largest {:.1} kB (100 listed each way)",
            total as f64 / 1e6,
            typical as f64 / 1e3,
            largest as f64 / 1e3
        ),
        "bounded",
    );
    let (took, rss, code, out) = run_cli(cx, &["peers", "-n", fixture::NS, "-o", "json"])?;
    if code != 0 {
        bail!("peers exited {code}: {}", std::fs::read_to_string(cx.tmp.join("cli.err")).unwrap_or_default());
    }
    let rows = serde_json::from_str::<Value>(&out).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0);
    r.row(
        format!("`peers -o json` over {} nodes ({rows} sessions)", cx.shape.nodes),
        format!("{:.2} s, peak RSS {rss:.0} MiB", took.as_secs_f64()),
        "< 5 s, < 200 MB",
    );
    // every route of every node, then the night-time question about one address
    let (took, rss, code, out) = run_cli(cx, &["routes", "-n", fixture::NS, "-o", "json"])?;
    if code != 0 {
        bail!("routes exited {code}: {}", std::fs::read_to_string(cx.tmp.join("cli.err")).unwrap_or_default());
    }
    let rows = serde_json::from_str::<Value>(&out).ok().and_then(|v| v["routes"].as_array().map(Vec::len)).unwrap_or(0);
    r.row(
        format!("`routes -o json` over {} nodes ({rows} routes)", cx.shape.nodes),
        format!("{:.2} s, peak RSS {rss:.0} MiB", took.as_secs_f64()),
        "< 5 s, < 200 MB",
    );
    // what every node accepted, with the objects that let it in and whether it is installed
    let (took, rss, code, out) = run_cli(cx, &["routes", "--received", "-n", fixture::NS, "-o", "json"])?;
    if code != 0 {
        bail!("routes --received exited {code}: {}", std::fs::read_to_string(cx.tmp.join("cli.err")).unwrap_or_default());
    }
    let rows = serde_json::from_str::<Value>(&out).ok().and_then(|v| v["received"].as_array().map(Vec::len)).unwrap_or(0);
    r.row(
        format!("`routes --received -o json` over {} nodes ({rows} accepted routes listed)", cx.shape.nodes),
        format!("{:.2} s, peak RSS {rss:.0} MiB", took.as_secs_f64()),
        "< 5 s, < 200 MB",
    );
    let address = fixture::lb_prefixes(0)[0].split('/').next().unwrap_or_default().to_string();
    let (took, rss, code, out) = run_cli(cx, &["routes", "-n", fixture::NS, &address])?;
    if code != 0 || out.lines().count() < 2 {
        bail!("routes {address} exited {code} with {out}: {}", std::fs::read_to_string(cx.tmp.join("cli.err")).unwrap_or_default());
    }
    r.row(
        format!("`routes {address}` (one address) over {} nodes", cx.shape.nodes),
        format!("{:.2} s, peak RSS {rss:.0} MiB", took.as_secs_f64()),
        "< 5 s, < 200 MB",
    );
    // the change: admin-all-0000 receives one more prefix range (a policy change on every node)
    let mut changed = fixture::admin_all_spec(0);
    changed["bgp"]["routers"][0]["neighbors"][0]["toReceive"]["allowed"]["prefixes"]
        .as_array_mut()
        .context("the admin object's prefixes")?
        .push(json!({"prefix": "203.0.113.0/24", "le": 32}));
    let file = cx.tmp.join("change.yaml");
    let doc = json!({"apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration", "metadata": {"name": "admin-all-0000", "namespace": fixture::NS}, "spec": changed});
    std::fs::write(&file, serde_json::to_string(&doc)?)?;
    let (took, rss, code, out) = run_cli(cx, &["diff", "-n", fixture::NS, "-f", &file.to_string_lossy(), "-o", "json"])?;
    if code != 1 {
        bail!("diff exited {code} (1: changes): {}", std::fs::read_to_string(cx.tmp.join("cli.err")).unwrap_or_default());
    }
    let nodes: usize = serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v["groups"].as_array().map(|groups| groups.iter().map(|g| g["nodes"].as_array().map_or(0, Vec::len)).sum()))
        .unwrap_or(0);
    r.row(
        format!("`diff -f` of one object selecting all {} nodes ({nodes} nodes change)", cx.shape.nodes),
        format!("{:.2} s, peak RSS {rss:.0} MiB", took.as_secs_f64()),
        "< 10 s, < 300 MB",
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let o = <Opts as clap::Parser>::parse();
    let outcome = run(&o).unwrap_or_else(|e| {
        eprintln!("FAILED: {e:#}");
        false
    });
    if outcome {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
