//! `frr-composer apply` against real FRR 8.4 and 10.3 and a real peer (GoBGP):
//! the field example (metallb-wk3, then receive-all, then back), incremental changes, no-op
//! applies, refused configurations, and restarts of bgpd under `apply --watch`.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab::{Frr, FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};

const NODE_IP: &str = "192.0.2.113";
const ROUTER_IP: &str = "192.0.2.1";
const LB_IP: &str = "198.51.100.181/32";
const PEER_ROUTES: [&str; 3] = ["0.0.0.0/0", "203.0.113.0/24", "198.51.100.0/25"];

fn wk3(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lab/wk3").join(file)
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_frr-composer")
}

fn apply(frr: &Frr, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.arg("apply").args(inputs).args(["--node", "wk3"]).args(frr.cli_args()).args(extra);
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// (connections established, uptime ms) of the session to the router.
fn session(frr: &Frr) -> (u64, u64) {
    let j = frr.vtysh_json(&format!("show bgp neighbors {ROUTER_IP} json")).unwrap();
    (j[ROUTER_IP]["connectionsEstablished"].as_u64().unwrap_or(0), j[ROUTER_IP]["bgpTimerUpMsec"].as_u64().unwrap_or(0))
}

struct Lab {
    tmp: TempDir,
    frr: Frr,
    gobgp: GoBgp,
    // dropped last
    _router: Netns,
    node: Netns,
}

fn lab(version: FrrVersion) -> Option<Lab> {
    if !lab::require(&[Req::Frr(version), Req::GoBgp]) {
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let node = Netns::new().unwrap();
    let router = Netns::new().unwrap();
    lab::veth(&node, "eth0", &["192.0.2.113/24"], &router, "eth0", &["192.0.2.1/24"]).unwrap();
    let gobgp = GoBgp::start(&router, 65102, ROUTER_IP, &[GoBgpNeighbor::new(NODE_IP, 65801)]).unwrap();
    for p in PEER_ROUTES {
        gobgp.add_route(p, ROUTER_IP, &[]).unwrap();
    }
    let frr = Frr::start(version, &node).unwrap();
    Some(Lab { tmp, frr, gobgp, _router: router, node })
}

fn field_example(version: FrrVersion) {
    let Some(l) = lab(version) else { return };
    let v = version.label();
    let diag = |what: &str| {
        format!(
            "FRR {v}: {what}\n--- running\n{}\n--- bgp\n{}\n--- kernel\n{}",
            l.frr.running_config().unwrap_or_default(),
            l.frr.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default(),
            l.node.routes(false, &[]).unwrap_or_default()
        )
    };
    let state = l.tmp.path().join("state.json");
    let state_arg = state.display().to_string();

    // 1. MetalLB's configuration alone.
    let o = apply(&l.frr, &[&wk3("metallb-wk3.yaml")], &["--state-file", &state_arg]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("computed from FRR's running configuration"), "{}", text(&o));
    assert!(
        lab::wait_until(Duration::from_secs(25), || l.gobgp.received_prefixes(NODE_IP).is_ok_and(|p| p == set(&[LB_IP]))),
        "{}",
        diag("the router did not receive exactly the LB IP")
    );
    assert!(lab::wait_until(Duration::from_secs(10), || l.gobgp.adj_out(NODE_IP).is_ok_and(|r| r.len() == 3)));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(l.frr.bgp_prefixes(false).unwrap(), set(&[LB_IP]), "{}", diag("the node accepted routes although toReceive is filtered"));
    let (established, _) = session(&l.frr);
    assert_eq!(established, 1);

    // 2. No change: no FRR command at all (the state file vouches for it).
    let o = apply(&l.frr, &[&wk3("metallb-wk3.yaml")], &["--state-file", &state_arg]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no FRR command"), "{}", text(&o));

    // 3. receive-all widens: the routes reach the BGP table and the kernel, the session stays.
    let o = apply(&l.frr, &[&wk3("metallb-wk3.yaml"), &wk3("receive-all.yaml")], &["--state-file", &state_arg]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("permit any") && !out.contains("computed from FRR's running"), "{}", text(&o));
    let all: BTreeSet<String> = PEER_ROUTES.iter().chain([&LB_IP]).map(|s| s.to_string()).collect();
    assert!(
        lab::wait_until(Duration::from_secs(20), || l.frr.bgp_prefixes(false).is_ok_and(|p| p == all)),
        "{}",
        diag("routes not accepted after receive-all")
    );
    assert!(
        lab::wait_until(Duration::from_secs(5), || l.node.routes(false, &["proto", "bgp"]).is_ok_and(|r| ["203.0.113.0/24 ", "198.51.100.0/25 ", "default "]
            .iter()
            .all(|p| r.lines().any(|l| l.starts_with(p) && l.contains("via 192.0.2.1"))))),
        "{}",
        diag("routes not in the kernel")
    );
    let (established, up1) = session(&l.frr);
    assert_eq!(established, 1, "{}", diag("the session was reset by widening"));

    // 4. Remove receive-all: back to the first state, still the same session.
    let o = apply(&l.frr, &[&wk3("metallb-wk3.yaml")], &["--state-file", &state_arg]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        lab::wait_until(Duration::from_secs(20), || l.frr.bgp_prefixes(false).is_ok_and(|p| p == set(&[LB_IP]))),
        "{}",
        diag("routes stayed after removing receive-all")
    );
    assert!(
        lab::wait_until(Duration::from_secs(5), || l.node.routes(false, &["proto", "bgp"]).is_ok_and(|r| r.trim().is_empty())),
        "{}",
        diag("kernel routes stayed")
    );
    let (established, up2) = session(&l.frr);
    assert_eq!(established, 1, "{}", diag("the session was reset"));
    assert!(up2 >= up1, "uptime went backwards: {up1} -> {up2}");
    assert_eq!(l.gobgp.received_prefixes(NODE_IP).unwrap(), set(&[LB_IP]));
}

crate::frr_versions!(field_example, refused, self_healing, field_example_with_frr_router, peer_flap, listening_daemons);

/// A configuration FRR refuses is reported with the object it came from, and FRR keeps
/// running the previous one.
fn refused(version: FrrVersion) {
    let Some(l) = lab(version) else { return };
    let o = apply(&l.frr, &[&wk3("metallb-wk3.yaml")], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = l.frr.running_config().unwrap();
    // A raw snippet FRR does not accept (the core cannot check raw text).
    let bad = l.tmp.write(
        "bad-raw.yaml",
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: bad-raw, namespace: openshift-frr-k8s}\nspec:\n  raw:\n    rawConfig: |\n      ip prefix-list extra seq 5 permit 192.0.2.0/24\n      this is not an frr command\n",
    ).unwrap();
    let o = apply(&l.frr, &[&wk3("metallb-wk3.yaml"), &bad], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("this is not an frr command") && err.contains("openshift-frr-k8s/bad-raw") && err.contains("nothing was changed"), "{}", text(&o));
    let after = l.frr.running_config().unwrap();
    assert_eq!(before, after, "FRR's configuration changed although the apply was refused");
    assert!(!after.contains("prefix-list extra"));
}

use lab::support::KillOnDrop as Watch;

/// bgpd killed and started again (as watchfrr would): `apply --watch` puts the configuration
/// back within 5 s; a change made by hand is found by the drift check and repaired.
fn self_healing(version: FrrVersion) {
    let Some(mut l) = lab(version) else { return };
    let log = l.tmp.path().join("watch.log");
    let mut c = Command::new(bin());
    c.arg("apply").arg(wk3("metallb-wk3.yaml")).args(["--node", "wk3"]).args(l.frr.cli_args()).args(["--watch", "--drift-interval", "2", "--poll-ms", "200"]);
    c.stdout(std::fs::File::create(&log).unwrap()).stderr(Stdio::inherit());
    let _watch = Watch(c.spawn().unwrap());
    let configured = || l.frr.running_config().is_ok_and(|r| r.contains("neighbor 192.0.2.1 remote-as 65102") && r.contains("permit 198.51.100.181/32"));
    assert!(lab::wait_until(Duration::from_secs(10), configured), "never applied: {}", std::fs::read_to_string(&log).unwrap_or_default());
    // the first apply has finished (verified and reported) before bgpd goes away
    assert!(lab::wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("applied"))));

    l.frr.kill_daemon("bgpd").unwrap();
    l.frr.start_daemon("bgpd").unwrap();
    let restarted = Instant::now();
    let configured = || l.frr.running_config().is_ok_and(|r| r.contains("neighbor 192.0.2.1 remote-as 65102") && r.contains("route-map 192.0.2.1-out out"));
    assert!(lab::wait_until(Duration::from_secs(5), configured), "not restored within 5 s: {}", std::fs::read_to_string(&log).unwrap_or_default());
    eprintln!("FRR {}: configuration restored {:.2} s after bgpd restarted", version.label(), restarted.elapsed().as_secs_f64());
    assert!(
        lab::wait_until(Duration::from_secs(30), || l.gobgp.received_prefixes(NODE_IP).is_ok_and(|p| p == set(&[LB_IP]))),
        "the session did not come back after the restart\n--- watch log\n{}\n--- FRR\n{}\n{}\n--- gobgp\n{}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        l.frr.vtysh(&["show bgp summary"]).unwrap_or_default(),
        l.frr.running_config().unwrap_or_default(),
        l.gobgp.cli(&["neighbor"]).unwrap_or_default(),
        l.gobgp.log(),
    );

    // Someone removes a prefix-list entry by hand: the drift check repairs it.
    l.frr.vtysh(&["configure terminal", "no ip prefix-list 192.0.2.1-allowed-ipv4"]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(8), || l.frr.running_config().is_ok_and(|r| r.contains("ip prefix-list 192.0.2.1-allowed-ipv4"))),
        "drift not repaired: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // the report of the repair is written right after it
    let reported = || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("restarted") && t.contains("drift #1"));
    assert!(lab::wait_until(Duration::from_secs(3), reported), "{}", std::fs::read_to_string(&log).unwrap_or_default());
}

/// The field example again, with FRR as the external router.
fn field_example_with_frr_router(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let node = Netns::new().unwrap();
    let router_ns = Netns::new().unwrap();
    lab::veth(&node, "eth0", &["192.0.2.113/24"], &router_ns, "eth0", &["192.0.2.1/24"]).unwrap();
    let router = Frr::start(version, &router_ns).unwrap();
    let frr = Frr::start(version, &node).unwrap();
    router
        .load_config_file(
            "ip route 0.0.0.0/0 blackhole\nip route 203.0.113.0/24 blackhole\nip route 198.51.100.0/25 blackhole\n\
             router bgp 65102\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n no bgp network import-check\n bgp route-map delay-timer 0\n\
             neighbor 192.0.2.113 remote-as 65801\n neighbor 192.0.2.113 timers connect 1\n address-family ipv4 unicast\n  network 0.0.0.0/0\n  network 203.0.113.0/24\n  network 198.51.100.0/25\n exit-address-family\nexit\n",
        )
        .unwrap();
    let v = version.label();
    let diag = |what: &str| {
        format!(
            "FRR {v}: {what}\n--- node bgp\n{}\n--- router bgp\n{}",
            frr.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default(),
            router.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default()
        )
    };
    let o = apply(&frr, &[&wk3("metallb-wk3.yaml")], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let router_has_lb = || router.bgp_prefixes(false).is_ok_and(|p| p.contains(LB_IP));
    assert!(lab::wait_until(Duration::from_secs(25), router_has_lb), "{}", diag("the router did not learn the LB IP"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(frr.bgp_prefixes(false).unwrap(), set(&[LB_IP]), "{}", diag("the node accepted routes while filtered"));

    let o = apply(&frr, &[&wk3("metallb-wk3.yaml"), &wk3("receive-all.yaml")], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let all: BTreeSet<String> = PEER_ROUTES.iter().chain([&LB_IP]).map(|s| s.to_string()).collect();
    assert!(lab::wait_until(Duration::from_secs(20), || frr.bgp_prefixes(false).is_ok_and(|p| p == all)), "{}", diag("routes not accepted"));
    assert!(
        lab::wait_until(Duration::from_secs(5), || node
            .routes(false, &["proto", "bgp"])
            .is_ok_and(|r| r.lines().any(|l| l.starts_with("203.0.113.0/24 ") && l.contains("via 192.0.2.1")))),
        "{}",
        diag("route not in the node's kernel")
    );
    let o = apply(&frr, &[&wk3("metallb-wk3.yaml")], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(lab::wait_until(Duration::from_secs(20), || frr.bgp_prefixes(false).is_ok_and(|p| p == set(&[LB_IP]))), "{}", diag("routes stayed"));
    assert_eq!(session(&frr).0, 1, "{}", diag("the session was reset"));
}

/// A flapping peer is visible in `status`, and `apply --watch` does not re-apply for it.
fn peer_flap(version: FrrVersion) {
    let Some(l) = lab(version) else { return };
    let log = l.tmp.path().join("watch.log");
    let mut c = Command::new(bin());
    c.arg("apply").arg(wk3("metallb-wk3.yaml")).args(["--node", "wk3"]).args(l.frr.cli_args()).args(["--watch", "--drift-interval", "1", "--poll-ms", "200"]);
    c.stdout(std::fs::File::create(&log).unwrap()).stderr(Stdio::inherit());
    let _watch = Watch(c.spawn().unwrap());
    let up = || l.frr.bgp_neighbor_state(ROUTER_IP).is_ok_and(|s| s == "Established");
    assert!(lab::wait_until(Duration::from_secs(25), up), "session never came up");
    let applied_before = std::fs::read_to_string(&log).unwrap().matches("applied").count();
    // the peer drops the session twice
    for _ in 0..2 {
        l.gobgp.cli(&["neighbor", NODE_IP, "disable"]).unwrap();
        assert!(lab::wait_until(Duration::from_secs(10), || !up()), "session did not drop");
        l.gobgp.cli(&["neighbor", NODE_IP, "enable"]).unwrap();
        assert!(lab::wait_until(Duration::from_secs(30), up), "session did not come back");
    }
    std::thread::sleep(Duration::from_secs(2)); // two drift checks
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log_text.matches("applied").count(), applied_before, "the flap caused a re-apply:\n{log_text}");
    assert!(!log_text.contains("drift"), "{log_text}");
    let o = Command::new(bin()).arg("status").args(l.frr.cli_args()).args(["-o", "json"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = v["bgpNeighbors"].as_array().unwrap().iter().find(|n| n["peer"] == ROUTER_IP).unwrap().clone();
    assert_eq!(n["state"], "Established", "{n}");
    assert_eq!(n["connectionsEstablished"], 3, "{n}");
    assert_eq!(n["connectionsDropped"], 2, "{n}");
    assert!(n["lastResetReason"].as_str().is_some_and(|r| !r.is_empty()), "{n}");
    let table = Command::new(bin()).arg("status").args(l.frr.cli_args()).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains(ROUTER_IP) && table.contains("Established"), "{table}");
}

/// No FRR behind the pathspace: a clear error, no stack trace, exit code 3.
#[test]
fn unreachable_frr_is_a_clear_error() {
    if !lab::require(&[Req::Frr(FrrVersion::V8)]) {
        return;
    }
    let o = Command::new(bin()).arg("apply").arg(wk3("metallb-wk3.yaml")).args(["--node", "wk3", "--pathspace", "fc-no-such-frr"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not running or not reachable") && err.contains("fc-no-such-frr") && !err.contains("panicked"), "{}", text(&o));
    let o = Command::new(bin()).arg("status").args(["--pathspace", "fc-no-such-frr"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// What the agent's /livez reports: the daemons whose vty socket accepts a connection, read
/// without vtysh. A stopped bgpd leaves its socket file behind; it must not count.
fn listening_daemons(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let mut frr = Frr::start(version, &ns).unwrap();
    let loc = frr.location();
    let all: Vec<String> = {
        let mut d: Vec<String> = version.daemons().iter().map(|d| d.to_string()).collect();
        d.sort();
        d
    };
    assert_eq!(loc.listening_daemons().unwrap(), all);
    frr.kill_daemon("bgpd").unwrap();
    let without: Vec<String> = all.iter().filter(|d| *d != "bgpd").cloned().collect();
    assert_eq!(loc.listening_daemons().unwrap(), without);
    frr.start_daemon("bgpd").unwrap();
    assert!(lab::wait_until(Duration::from_secs(5), || loc.listening_daemons().unwrap() == all));
}
