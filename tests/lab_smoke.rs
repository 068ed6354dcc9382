//! Live smoke test: a rendered frr.conf against a real BGP peer, on FRR 8.4 and FRR 10.3.
//!
//! The metallb-wk3 field example (shared/examples/metallb-wk3), remapped into documentation
//! ranges: node wk3 192.0.2.113 (AS 65801) peers with router 192.0.2.1 (GoBGP, AS 65102),
//! announces 198.51.100.181/32 and accepts nothing; then `receive-all` widens the incoming
//! policy and the router's routes reach the node's BGP table and kernel.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lab::{FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};

const NODE_IP: &str = "192.0.2.113";
const ROUTER_IP: &str = "192.0.2.1";
const LB_IP: &str = "198.51.100.181/32";
const PEER_ROUTES: [&str; 3] = ["0.0.0.0/0", "203.0.113.0/24", "198.51.100.0/25"];

const METALLB_WK3: &str = r#"apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: metallb-wk3
  namespace: openshift-frr-k8s
spec:
  bgp:
    routers:
    - asn: 65801
      neighbors:
      - address: 192.0.2.1
        asn: 65102
        disableMP: false
        dualStackAddressFamily: false
        passwordSecret: {}
        port: 179
        toAdvertise:
          allowed:
            mode: filtered
            prefixes:
            - 198.51.100.181/32
        toReceive:
          allowed:
            mode: filtered
      prefixes:
      - 198.51.100.181/32
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: wk3
  raw: {}
"#;

const NODE_WK3: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: wk3
  labels:
    kubernetes.io/hostname: wk3
    kubernetes.io/os: linux
"#;

const RECEIVE_ALL: &str = r#"apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: receive-all
  namespace: openshift-frr-k8s
spec:
  bgp:
    routers:
    - asn: 65801
      neighbors:
      - address: 192.0.2.1
        asn: 65102
        toReceive:
          allowed:
            mode: all
"#;

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn smoke(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version), Req::GoBgp]) {
        return;
    }
    let v = version.label();
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[FRR {v}] {:>6.2}s {what}", t0.elapsed().as_secs_f64());

    // Declared first, dropped last: the daemons stop before their namespaces go.
    let tmp = TempDir::new().unwrap();
    let node = Netns::new().unwrap();
    let router = Netns::new().unwrap();
    lab::veth(&node, "eth0", &["192.0.2.113/24"], &router, "eth0", &["192.0.2.1/24"]).unwrap();
    step("namespaces ready");

    let gobgp = GoBgp::start(&router, 65102, ROUTER_IP, &[GoBgpNeighbor::new(NODE_IP, 65801)]).unwrap();
    for p in PEER_ROUTES {
        gobgp.add_route(p, ROUTER_IP, &[]).unwrap();
    }
    step("gobgpd ready");

    let frr = lab::Frr::start(version, &node).unwrap();
    step("FRR daemons ready");

    let diag = |what: &str| -> String {
        format!(
            "FRR {v}: {what}\n--- FRR: show bgp summary\n{}\n--- FRR: show bgp ipv4 unicast\n{}\n--- FRR: running-config\n{}\n\
             --- kernel (node)\n{}\n--- gobgp neighbor\n{}\n--- gobgp global rib\n{}\n--- gobgpd log\n{}\n{}",
            frr.vtysh(&["show bgp summary"]).unwrap_or_else(|e| e.to_string()),
            frr.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_else(|e| e.to_string()),
            frr.running_config().unwrap_or_else(|e| e.to_string()),
            node.routes(false, &[]).unwrap_or_else(|e| e.to_string()),
            gobgp.cli(&["neighbor"]).unwrap_or_else(|e| e.to_string()),
            gobgp.cli(&["global", "rib"]).unwrap_or_else(|e| e.to_string()),
            gobgp.log(),
            frr.logs(),
        )
    };

    // --- 1. metallb-wk3 alone: announce the LB IP, accept nothing.
    let metallb = tmp.write("metallb-wk3.yaml", METALLB_WK3).unwrap();
    let node_yaml = tmp.write("node-wk3.yaml", NODE_WK3).unwrap();
    let args = ["--node", "wk3", "--hostname", "wk3"];
    let conf1 = lab::render(&[&metallb, &node_yaml], &args).unwrap();
    if let Err(e) = frr.load_config_file(&conf1) {
        panic!("FRR {v} rejects the rendered metallb-wk3 config: {e}\n--- config\n{conf1}");
    }
    step("metallb-wk3 config applied");

    let established = lab::wait_until(Duration::from_secs(20), || {
        gobgp.neighbor_state(NODE_IP).is_ok_and(|s| s == "established") && frr.bgp_neighbor_state(ROUTER_IP).is_ok_and(|s| s == "Established")
    });
    assert!(established, "{}", diag("BGP session not established on both sides"));
    step("session established");

    let got_lb = lab::wait_until(Duration::from_secs(10), || gobgp.received_prefixes(NODE_IP).is_ok_and(|p| p.contains(LB_IP)));
    assert!(got_lb, "{}", diag("gobgp did not receive the LB IP"));
    assert_eq!(gobgp.received_prefixes(NODE_IP).unwrap(), set(&[LB_IP]), "{}", diag("gobgp received more than the LB IP"));
    step("gobgp received 198.51.100.181/32");

    // The peer did send its routes (its adj-out) and FRR got the UPDATE, then dropped them.
    let sent = lab::wait_until(Duration::from_secs(10), || {
        gobgp.adj_out(NODE_IP).is_ok_and(|r| r.len() == PEER_ROUTES.len())
            && frr
                .vtysh_json(&format!("show bgp neighbors {ROUTER_IP} json"))
                .is_ok_and(|j| j[ROUTER_IP]["messageStats"]["updatesRecv"].as_u64().unwrap_or(0) >= 1)
    });
    assert!(sent, "{}", diag("the peer's routes never reached FRR"));
    assert_eq!(frr.bgp_prefixes(false).unwrap(), set(&[LB_IP]), "{}", diag("node accepted routes while toReceive is filtered (deny any)"));
    let nbr = frr.vtysh_json(&format!("show bgp neighbors {ROUTER_IP} json")).unwrap();
    assert_eq!(nbr[ROUTER_IP]["addressFamilyInfo"]["ipv4Unicast"]["acceptedPrefixCounter"].as_u64(), Some(0), "{}", diag("accepted prefix counter is not 0"));
    assert_eq!(node.routes(false, &["proto", "bgp"]).unwrap().trim(), "", "{}", diag("kernel has BGP routes"));
    step("node accepted nothing");

    // --- 2. add receive-all: the incoming policy widens to permit any.
    let receive_all = tmp.write("receive-all.yaml", RECEIVE_ALL).unwrap();
    let conf2 = lab::render(&[&metallb, &receive_all, &node_yaml], &args).unwrap();
    assert_ne!(conf1, conf2, "receive-all does not change the rendered config");
    if let Err(e) = frr.load_config_file(&conf2) {
        panic!("FRR {v} rejects the rendered metallb-wk3 + receive-all config: {e}\n--- config\n{conf2}");
    }
    step("metallb-wk3 + receive-all config applied");

    let mut want: BTreeSet<String> = set(&PEER_ROUTES);
    want.insert(LB_IP.to_string());
    let widened = lab::wait_until(Duration::from_secs(20), || frr.bgp_prefixes(false).is_ok_and(|p| p == want));
    assert!(widened, "{}", diag("node's BGP table did not get the peer's three routes"));
    step("node BGP table has the peer's routes");

    let in_kernel = lab::wait_until(Duration::from_secs(10), || {
        node.routes(false, &["proto", "bgp"]).is_ok_and(|r| r.lines().any(|l| l.starts_with("203.0.113.0/24 ") && l.contains("via 192.0.2.1 ")))
    });
    assert!(in_kernel, "{}", diag("kernel has no 203.0.113.0/24 via 192.0.2.1"));
    assert_eq!(frr.bgp_neighbor_state(ROUTER_IP).unwrap(), "Established", "{}", diag("session dropped while widening"));
    step("kernel has 203.0.113.0/24 via 192.0.2.1");

    // What Drop does anyway on failure, in order and timed.
    drop(frr);
    step("FRR stopped");
    drop(gobgp);
    drop((router, node));
    step("gobgpd stopped, namespaces deleted");
}

crate::frr_versions!(smoke, harness_selftest);

/// The harness itself: rejected lines are reported (and the valid ones applied), a killed
/// daemon can be started again.
fn harness_selftest(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let mut frr = lab::Frr::start(version, &ns).unwrap();
    frr.load_config_file("router bgp 65000\n bgp router-id 192.0.2.9\nexit\n").unwrap();
    let err = frr
        .load_config_file("router bgp 65000\n bgp bogus-command\nexit\nip prefix-list lab-selftest seq 5 permit 192.0.2.0/24\n")
        .expect_err("a bad line must be reported");
    let err = format!("{err:#}");
    assert!(err.contains("line 2") && err.contains("bogus-command"), "{err}");
    assert_eq!(err.matches("bogus-command").count(), 1, "repeated messages not folded: {err}");
    let running = frr.running_config().unwrap();
    assert!(running.contains("bgp router-id 192.0.2.9"), "{running}");
    assert!(running.contains("ip prefix-list lab-selftest seq 5 permit 192.0.2.0/24"), "{running}");

    let old = frr.pid("bgpd").unwrap();
    frr.kill_daemon("bgpd").unwrap();
    assert!(!frr.daemon_running("bgpd"));
    let down = frr.vtysh(&["show bgp summary"]).expect_err("bgpd is down");
    assert!(format!("{down:#}").contains("bgpd is not running"), "{down:#}");
    frr.start_daemon("bgpd").unwrap();
    assert_ne!(frr.pid("bgpd"), Some(old));
    assert!(lab::wait_until(Duration::from_secs(5), || frr.vtysh(&["show bgp summary"]).is_ok()));
}

/// Three namespaces on one bridge reach each other over IPv4 and IPv6.
#[test]
fn lab_bridge_connects_namespaces() {
    if !lab::require(&[]) {
        return;
    }
    let mut br = lab::Bridge::new().unwrap();
    let nss: Vec<Netns> = (0..3).map(|_| Netns::new().unwrap()).collect();
    for (i, ns) in nss.iter().enumerate() {
        br.attach(ns, "eth0", &[&format!("192.0.2.{}/24", 10 + i), &format!("2001:db8::{}/64", 10 + i)]).unwrap();
    }
    for ns in &nss {
        for peer in ["192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8::10", "2001:db8::12"] {
            assert!(lab::wait_until(Duration::from_secs(5), || ns.reachable(peer)), "{} cannot reach {peer}", ns.name());
        }
    }
    assert!(!nss[0].reachable("192.0.2.99"), "reaches an address nobody has");
}
