//! `frr-composer lab`: the binary builds its own lab (real FRR, real gobgpd or FRR peers) and
//! reports what the peers received and the node accepted. Addresses from the documentation
//! ranges only. Every test also checks that the lab left no namespace, process or directory.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab::{FrrVersion, Req, TempDir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_frr-composer");

fn testdata(p: &str) -> String {
    format!("{}/testdata/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn ready(reqs: &[Req]) -> bool {
    lab::require(reqs)
}

/// Namespaces, processes and directories named after `pid`'s labs (`fc-<pid>-...`).
fn leftovers(pid: u32) -> Vec<String> {
    let tag = format!("fc-{pid}-");
    let mut out = Vec::new();
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    out.extend(String::from_utf8_lossy(&ns.stdout).lines().filter(|l| l.starts_with(&tag)).map(|l| format!("namespace {l}")));
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(c) = std::fs::read(format!("/proc/{p}/cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(&tag) && lab::pid_alive(p) {
                out.push(format!("process {p}: {c}"));
            }
        }
    }
    for root in [Path::new("/").to_path_buf(), lab::frr10_root()] {
        for d in ["tmp", "run/frr"] {
            for e in std::fs::read_dir(root.join(d)).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(&tag) {
                    out.push(format!("directory {}", e.path().display()));
                }
            }
        }
    }
    out
}

/// Runs `frr-composer lab run ARGS... -o json`: (exit code, report, stderr, seconds); asserts
/// that nothing of the lab is left.
fn lab_run(args: &[&str]) -> (i32, Value, String, f64) {
    let t = Instant::now();
    let child = Command::new(BIN).args(["lab", "run", "-o", "json"]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out: Output = child.wait_with_output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report =
        if stdout.trim().is_empty() { Value::Null } else { serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}")) };
    assert_eq!(leftovers(pid), Vec::<String>::new(), "the lab left things behind\n{stderr}");
    (out.status.code().unwrap_or(-1), report, stderr, secs)
}

fn peer<'a>(report: &'a Value, neighbor: &str) -> &'a Value {
    report["peers"].as_array().unwrap().iter().find(|p| p["neighbor"] == neighbor).unwrap_or_else(|| panic!("no peer {neighbor} in {report:#}"))
}

fn prefixes(v: &Value) -> Vec<String> {
    let mut p: Vec<String> = v.as_array().unwrap().iter().map(|r| r.get("prefix").unwrap_or(r).as_str().unwrap().to_string()).collect();
    p.sort();
    p.dedup();
    p
}

fn route<'a>(list: &'a Value, prefix: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|r| r["prefix"] == prefix).unwrap_or_else(|| panic!("no {prefix} in {list:#}"))
}

fn field_example(version: FrrVersion) {
    if !ready(&[Req::Frr(version), Req::GoBgp]) {
        return;
    }
    let root = version.root();
    let root = root.to_str().unwrap();
    // metallb-wk3 alone: the LB /32 reaches the router, nothing is accepted from it
    let (code, r, err, secs) = lab_run(&["--frr-root", root, &testdata("lab/wk3/metallb-wk3.yaml"), "--announce", "203.0.113.0/24@192.0.2.1"]);
    eprintln!("FRR {}: lab run (metallb-wk3) took {secs:.1} s wall", version.label());
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert_eq!(r["converged"], true);
    // the report names the FRR that ran (8.4.4, 10.3, 10.7.1: the label is its prefix)
    let frr_version = r["frrVersion"].as_str().unwrap_or_default();
    assert!(frr_version.starts_with(version.label()), "frrVersion {frr_version:?} for FRR {}", version.label());
    let p = peer(&r, "192.0.2.1");
    assert_eq!(p["state"], "Established");
    assert_eq!(p["peerAsn"], 65102);
    assert_eq!(prefixes(&p["received"]), ["198.51.100.181/32"]);
    let lb = route(&p["received"], "198.51.100.181/32");
    assert_eq!(lb["asPath"], serde_json::json!([65801]));
    // the node's address on the router's /24 is the next hop
    assert_eq!(lb["nextHop"], "192.0.2.254");
    assert_eq!(prefixes(&p["accepted"]), Vec::<String>::new());
    assert_eq!(prefixes(&p["installed"]), Vec::<String>::new());

    // with receive-all the node accepts and installs what the router announces
    let (code, r, err, secs) = lab_run(&[
        "--frr-root",
        root,
        &testdata("lab/wk3/metallb-wk3.yaml"),
        &testdata("lab/wk3/receive-all.yaml"),
        "--announce",
        "203.0.113.0/24",
        "--announce",
        "198.51.100.0/25@192.0.2.1",
        "--announce",
        "0.0.0.0/0",
    ]);
    eprintln!("FRR {}: lab run (metallb-wk3 + receive-all) took {secs:.1} s wall", version.label());
    assert_eq!(code, 0, "{err}\n{r:#}");
    let p = peer(&r, "192.0.2.1");
    assert_eq!(prefixes(&p["received"]), ["198.51.100.181/32"]);
    assert_eq!(prefixes(&p["accepted"]), ["0.0.0.0/0", "198.51.100.0/25", "203.0.113.0/24"]);
    assert_eq!(route(&p["accepted"], "203.0.113.0/24")["nextHop"], "192.0.2.1");
    assert_eq!(route(&p["accepted"], "203.0.113.0/24")["asPath"], serde_json::json!([65102]));
    assert_eq!(prefixes(&p["installed"]), ["0.0.0.0/0", "198.51.100.0/25", "203.0.113.0/24"]);
}

crate::frr_versions!(field_example);

const RACKS: &str = r#"apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {name: rack-a, namespace: frr-k8s-system}
spec:
  nodeSelector: {matchLabels: {rack: a}}
  bgp:
    routers:
    - asn: 64600
      neighbors:
      - address: 192.0.2.1
        asn: 64601
        toAdvertise: {allowed: {mode: all}}
      prefixes: [198.51.100.10/32]
---
apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {name: rack-b, namespace: frr-k8s-system}
spec:
  nodeSelector: {matchLabels: {rack: b}}
  bgp:
    routers:
    - asn: 64600
      neighbors:
      - address: 203.0.113.1
        asn: 64602
        toAdvertise: {allowed: {mode: all}}
      prefixes: [198.51.100.20/32]
"#;

#[test]
fn lab_run_racks_selected_by_labels() {
    if !ready(&[Req::Frr(FrrVersion::V8), Req::GoBgp]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let f = tmp.write("racks.yaml", RACKS).unwrap();
    let f = f.to_str().unwrap();
    for (labels, neighbor, prefix) in [("rack=a", "192.0.2.1", "198.51.100.10/32"), ("rack=b", "203.0.113.1", "198.51.100.20/32")] {
        let (code, r, err, _) = lab_run(&[f, "--labels", labels]);
        assert_eq!(code, 0, "{labels}: {err}\n{r:#}");
        assert_eq!(r["peers"].as_array().unwrap().len(), 1, "{labels}: one neighbor only: {r:#}");
        let p = peer(&r, neighbor);
        assert_eq!(p["state"], "Established");
        assert_eq!(prefixes(&p["received"]), [prefix], "{labels}: the other rack's prefix stays out");
    }
}

const BFD: &str = r#"apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {name: bfd, namespace: frr-k8s-system}
spec:
  bgp:
    bfdProfiles:
    - {name: fast, receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}
    routers:
    - asn: 64900
      neighbors:
      - address: 192.0.2.1
        asn: 64901
        bfdProfile: fast
        toAdvertise: {allowed: {mode: all}}
      prefixes: [198.51.100.50/32]
"#;

#[test]
fn lab_run_bfd_with_an_frr_peer() {
    if !ready(&[Req::Frr(FrrVersion::V8)]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let f = tmp.write("bfd.yaml", BFD).unwrap();
    let (code, r, err, _) = lab_run(&[f.to_str().unwrap(), "--labels", "x=y", "--peers", "frr", "--announce", "203.0.113.0/24"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let p = peer(&r, "192.0.2.1");
    assert_eq!(p["peer"], "frr");
    assert_eq!(p["state"], "Established");
    assert_eq!(p["bfd"], "up", "{r:#}");
    assert_eq!(prefixes(&p["received"]), ["198.51.100.50/32"]);
    // the node accepts nothing (no toReceive), though the peer announces
    assert_eq!(prefixes(&p["accepted"]), Vec::<String>::new());
}

#[test]
fn lab_run_expect_agrees_or_names_the_difference() {
    if !ready(&[Req::Frr(FrrVersion::V8), Req::GoBgp]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let good = tmp
        .write(
            "good.yaml",
            "peers:\n  192.0.2.1:\n    state: Established\n    received:\n    - prefix: 198.51.100.181/32\n      nextHop: 192.0.2.254\n    accepted: []\n",
        )
        .unwrap();
    let bad = tmp.write("bad.yaml", "peers:\n  192.0.2.1:\n    received: [198.51.100.181/32, 198.51.100.99/32]\n    accepted: [203.0.113.0/24]\n").unwrap();
    let wk3 = testdata("lab/wk3/metallb-wk3.yaml");
    let (code, _, err, _) = lab_run(&[&wk3, "--announce", "203.0.113.0/24", "--expect", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("agrees with"), "{err}");
    let (code, r, err, _) = lab_run(&[&wk3, "--announce", "203.0.113.0/24", "--expect", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the lab differs from"), "{err}");
    assert!(err.contains("peer 192.0.2.1: received: missing 198.51.100.99/32"), "{err}");
    assert!(err.contains("peer 192.0.2.1: node accepted: missing 203.0.113.0/24"), "{err}");
    // the report is still printed
    assert_eq!(prefixes(&peer(&r, "192.0.2.1")["received"]), ["198.51.100.181/32"]);
}

/// Starts `lab run`, waits for a line on stderr containing `after`, sends `signal`; returns
/// the exit code and stderr once it ended, having checked that nothing is left.
fn interrupt(after: &str, signal: &str) -> (i32, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(BIN)
        .args(["lab", "run", &testdata("lab/wk3/metallb-wk3.yaml"), "--timeout", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("lab run ended before {after:?}:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(after) {
            break;
        }
    }
    assert!(!leftovers(pid).is_empty(), "the lab runs while interrupted");
    Command::new("kill").args(["-s", signal, &pid.to_string()]).status().unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    let mut left = Vec::new();
    lab::wait_until(Duration::from_secs(3), || {
        left = leftovers(pid);
        left.is_empty()
    });
    assert_eq!(left, Vec::<String>::new(), "{signal} left things behind:\n{seen}");
    (status.code().unwrap_or(-1), seen)
}

#[test]
fn lab_run_cleans_up_after_sigint_and_sigterm() {
    if !ready(&[Req::Frr(FrrVersion::V8), Req::GoBgp]) {
        return;
    }
    // while the lab is being built (a peer runs, the node's FRR not yet)...
    let (code, err) = interrupt("lab: peer 192.0.2.1", "INT");
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted; removing the lab"), "{err}");
    // ...and while it converges
    let (code, err) = interrupt("waiting for convergence", "TERM");
    assert_eq!(code, 143, "{err}");
}

#[test]
fn lab_says_what_is_missing() {
    // no FRR under the given root: named, with the missing files
    let tmp = TempDir::new();
    let empty = match &tmp {
        Ok(t) => t.path().to_path_buf(),
        Err(_) => std::env::temp_dir().join("frr-composer-no-such-root"),
    };
    let out = Command::new(BIN).args(["lab", "run", &testdata("lab/wk3/metallb-wk3.yaml"), "--frr-root"]).arg(&empty).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("FRR is not installed under {}", empty.display())), "{err}");
    assert!(err.contains("usr/lib/frr/bgpd"), "{err}");
    // not root: said first (checked as user nobody when this test runs as root)
    if lab::is_root() && lab::on_path("setpriv") {
        let out = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", BIN, "lab", "run", &testdata("lab/wk3/metallb-wk3.yaml")])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("not running as root"), "{err}");
    }
}

#[test]
fn lab_up_status_down_reapplies_changed_files() {
    if !ready(&[Req::Frr(FrrVersion::V8), Req::GoBgp]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("configs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(testdata("lab/wk3/metallb-wk3.yaml"), dir.join("metallb-wk3.yaml")).unwrap();
    let name = format!("test-{}", std::process::id());
    let cmd = |args: &[&str]| Command::new(BIN).arg("lab").args(args).args(["--name", &name]).output().unwrap();
    let out = Command::new(BIN).args(["lab", "up", dir.to_str().unwrap(), "--announce", "203.0.113.0/24", "--name", &name]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let pid: u32 = std::fs::read_to_string(format!("/run/frr-composer/lab/{name}/pid")).unwrap().trim().parse().unwrap();
    let result = std::panic::catch_unwind(|| {
        assert!(text.contains("198.51.100.181/32 via 192.0.2.254"), "{text}");
        let status = |fmt: &str| -> Value {
            let o = cmd(&["status", "-o", fmt]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            serde_json::from_slice(&o.stdout).unwrap()
        };
        assert_eq!(prefixes(&peer(&status("json"), "192.0.2.1")["accepted"]), Vec::<String>::new());
        // a new file in the folder: applied live, the session stays
        std::fs::copy(testdata("lab/wk3/receive-all.yaml"), dir.join("receive-all.yaml")).unwrap();
        let mut last = Value::Null;
        let ok = lab::wait_until(Duration::from_secs(30), || {
            last = status("json");
            // zebra installs an accepted route a moment after bgpd accepts it
            prefixes(&peer(&last, "192.0.2.1")["accepted"]) == ["203.0.113.0/24"] && prefixes(&peer(&last, "192.0.2.1")["installed"]) == ["203.0.113.0/24"]
        });
        assert!(ok, "receive-all not applied (accepted and installed): {last:#}");
    });
    let down = cmd(&["down"]);
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(!lab::pid_alive(pid));
    assert_eq!(leftovers(pid), Vec::<String>::new());
    assert!(!Path::new(&format!("/run/frr-composer/lab/{name}")).exists());
    assert_eq!(cmd(&["status"]).status.code(), Some(1), "no lab after down");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

const UNNUMBERED: &str = r#"apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {name: unnumbered, namespace: frr-k8s-system}
spec:
  bgp:
    routers:
    - asn: 65010
      neighbors:
      - interface: eth9
        dynamicASN: external
        toAdvertise: {allowed: {mode: all}}
        toReceive: {allowed: {mode: all}}
      prefixes: [198.51.100.77/32]
"#;

#[test]
fn lab_run_unnumbered_interface_neighbor() {
    if !ready(&[Req::Frr(FrrVersion::V8)]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let f = tmp.write("unnumbered.yaml", UNNUMBERED).unwrap();
    let (code, r, err, _) = lab_run(&[f.to_str().unwrap(), "--labels", "x=y", "--announce", "203.0.113.0/24"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let p = peer(&r, "eth9");
    assert_eq!(p["peer"], "frr", "GoBGP cannot play an unnumbered peer: {r:#}");
    assert_eq!(p["state"], "Established");
    assert_eq!(prefixes(&p["received"]), ["198.51.100.77/32"]);
    assert_eq!(prefixes(&p["accepted"]), ["203.0.113.0/24"]);
    assert_eq!(prefixes(&p["installed"]), ["203.0.113.0/24"]);
}
