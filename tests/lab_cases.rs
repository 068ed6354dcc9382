//! Lab cases as data: every folder `testdata/lab/cases/<case>/` holds the objects
//! (`input.yaml`), the `frr-composer lab run` flags that describe the node and what the peers
//! announce (`args`, one flag and its value a line: `--labels`, `--node`, `--always-block`,
//! `--announce`, `--peers`), and the expectation (`expect.yaml`, in `lab run --expect` form). Each case runs
//! on every FRR of the suite through the lab (`Lab::build`, as `lab run` does): the lab must
//! agree with the expectation, and applying the same configuration again must send FRR no
//! command and change nothing (idempotence). A route announced by one peer (`PREFIX@PEER`) must
//! have been sent by it, so that one the node does not accept was refused by the node's
//! policy. No password of the inputs may appear in the
//! report. A new live case is these three small files and no Rust.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use frr_composer::lab::expect;
use frr_composer::lab::topology::{Announce, Lab, Options, PeerKind};
use frr_composer::offline::{desired, NodeArgs};
use lab::{FrrVersion, Req};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lab/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(root).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("expect.yaml").is_file()).collect();
    v.sort();
    v
}

/// The case's flags.
struct Case {
    node: NodeArgs,
    announce: Vec<Announce>,
    peers: PeerKind,
}

fn case(dir: &Path) -> Case {
    let mut c = Case { node: NodeArgs::default(), announce: Vec::new(), peers: PeerKind::Gobgp };
    let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
    for line in args.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (flag, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        match flag {
            "--labels" => c.node.labels.extend(value.split(',').map(String::from)),
            "--node" => c.node.node = Some(value.to_string()),
            "--always-block" => c.node.always_block.extend(value.split(',').map(String::from)),
            "--announce" => c.announce.push(value.parse().unwrap_or_else(|e| panic!("{}: {e}", dir.display()))),
            "--peers" => {
                c.peers = match value {
                    "frr" => PeerKind::Frr,
                    "gobgp" => PeerKind::Gobgp,
                    o => panic!("{}: --peers {o}", dir.display()),
                }
            }
            o => panic!("{}/args: {o} is not a flag these cases take", dir.display()),
        }
    }
    c
}

/// The passwords of the case's Secrets and inline `password` fields.
fn passwords(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("input.yaml")).unwrap();
    text.lines().filter_map(|l| l.split_once("password:").map(|(_, v)| v.trim().trim_matches(['"', '}', ' ']).to_string())).filter(|p| !p.is_empty()).collect()
}

/// The routes announced to one peer (`PREFIX@PEER`) that the peer did not send the node.
fn unsent(lab: &Lab, announce: &[Announce]) -> Vec<String> {
    let mut out = Vec::new();
    for a in announce {
        let Some(neighbor) = &a.peer else { continue };
        let prefix = a.prefix.to_string();
        let fam = if a.prefix.addr().is_ipv4() { "ipv4" } else { "ipv6" };
        let sent: Vec<String> = match (lab.peer_gobgp(neighbor), lab.peer_frr(neighbor), lab.node_address(neighbor)) {
            (Some(g), _, Some(node)) => g.adj_out(&node.to_string()).map(|v| v.into_iter().map(|r| r.prefix).collect()).unwrap_or_default(),
            (_, Some(f), node) => {
                let nb = node.map(|n| n.to_string()).unwrap_or_else(|| "eth0".into());
                f.vtysh_json(&format!("show bgp {fam} unicast neighbors {nb} advertised-routes json"))
                    .ok()
                    .and_then(|v| v.get("advertisedRoutes").and_then(|r| r.as_object()).map(|m| m.keys().cloned().collect()))
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        };
        if !sent.contains(&prefix) {
            out.push(format!("peer {neighbor}: {prefix} was announced but not sent (it sent {sent:?})"));
        }
    }
    out
}

/// Runs one case; its failures go to `failures`.
fn run_case(dir: &Path, version: FrrVersion, failures: &mut Vec<String>) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let c = case(dir);
    let mut err = Vec::new();
    let Some((model, text)) = desired(&[dir.join("input.yaml")], &c.node, &mut err) else {
        failures.push(format!("{name}: the inputs do not render:\n{}", String::from_utf8_lossy(&err)));
        return;
    };
    let want = expect::parse(&std::fs::read_to_string(dir.join("expect.yaml")).unwrap(), "expect.yaml").unwrap();
    let opts = Options { frr_root: version.root(), peers: c.peers, announce: c.announce.clone() };
    let mut lab = match Lab::build(&model, &text, &opts, &mut |_| {}) {
        Ok(l) => l,
        Err(e) => return failures.push(format!("{name}: the lab does not build: {e:#}")),
    };
    let report = match lab.converge(Duration::from_secs(60), Duration::from_millis(1500), Duration::from_millis(500)) {
        Ok(r) => r,
        Err(e) => return failures.push(format!("{name}: {e:#}")),
    };
    let mut diffs = expect::differences(&want, &report);
    diffs.extend(unsent(&lab, &c.announce));
    if !diffs.is_empty() {
        return failures.push(lab.diag(&format!("{name} (FRR {}):\n  {}", version.label(), diffs.join("\n  "))));
    }
    let json = serde_json::to_string(&report).unwrap();
    for p in passwords(dir) {
        if json.contains(&p) {
            failures.push(format!("{name}: a password of the inputs is in the lab's report"));
        }
    }
    // the same configuration again: nothing to send, nothing changes
    match lab.apply(&text) {
        Ok(r) if r.commands == 0 => {}
        Ok(r) => failures.push(format!("{name}: the second apply sent {} commands: {:?} {:?}", r.commands, r.added, r.removed)),
        Err(e) => failures.push(format!("{name}: the second apply failed: {e:#}")),
    }
    match lab.report() {
        Ok(again) => {
            let diffs = expect::differences(&want, &again);
            if !diffs.is_empty() {
                failures.push(format!("{name}: after the second apply:\n  {}", diffs.join("\n  ")));
            }
        }
        Err(e) => failures.push(format!("{name}: {e:#}")),
    }
    eprintln!("lab case {name} (FRR {}): converged in {:.1} s, agrees, idempotent", version.label(), report.seconds);
}

/// Cases run two at a time: a lab mostly waits (for sessions, for FRR's update timers).
const PARALLEL_CASES: usize = 2;

fn run_all(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version), Req::GoBgp]) {
        return;
    }
    let cases = cases();
    assert!(cases.len() >= 6, "the lab cases are missing");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_CASES {
            s.spawn(|| {
                while let Some(dir) = cases.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    let mut f = Vec::new();
                    run_case(dir, version, &mut f);
                    failures.lock().unwrap().extend(f);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "FRR {}: {} failure(s):\n{}", version.label(), failures.len(), failures.join("\n"));
}

crate::frr_versions!(run_all);
