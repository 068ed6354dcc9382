//! The MetalLB lab of tests/metallb.rs with GoBGP as the router, as users of MetalLB's original
//! recipe run it: gobgpd 4.8.0 (`.ci/install-gobgp.sh`) with multipath puts its best paths into
//! its kernel through FRR 8.4's zebra. Three nodes with FRR 8.4 and an agent each, a real
//! MetalLB v0.16.1. Proves ECMP (the LB /32 in the router's kernel with one next hop per node,
//! and TCP from the client answered by every node) and that restarts of a node's speaker never
//! take that node's next hop away.
//!
//! Needs root, FRR 8.4, the apiserver binaries, MetalLB and gobgpd 4.8.0: skipped without
//! them, except under CI=true, where it fails.

mod apiserver;
#[path = "support/mod.rs"]
mod support;
// the lab and the API server harness each include tests/support
mod lab;
mod metallb_lab;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use metallb_lab::{MetalLbLab, Router, NODES};

#[test]
fn gobgp_router_ecmp_and_speaker_restarts() {
    if !metallb_lab::require() || !support::prerequisite("gobgpd 4.8.0", metallb_lab::gobgp_router_available(), "run .ci/install-gobgp.sh") {
        return;
    }
    let lab = MetalLbLab::start_full(&[], false, Router::GoBgp).unwrap();
    let all: BTreeSet<String> = NODES.iter().map(|(_, ip)| ip.to_string()).collect();

    // 1. ECMP: policy Cluster, every node announces; gobgpd hands zebra one next hop per node
    let ip = "203.0.113.10";
    lab.service("web", ip, false, &[0, 1]).unwrap();
    let t = Instant::now();
    assert!(lab::wait_until(Duration::from_secs(90), || lab.router_nexthops(ip) == all), "{}", lab.diag("the router's kernel lacks three next hops"));
    eprintln!("gobgpd router: three next hops in its kernel {:.1} s after the Service", t.elapsed().as_secs_f64());
    let route = lab.router.routes(false, &["exact", &format!("{ip}/32")]).unwrap();
    assert!(route.contains("proto bgp"), "not zebra's route: {route}");
    let mut answered = BTreeSet::new();
    for _ in 0..30 {
        let who = lab.connect(ip).unwrap_or_else(|e| panic!("{}", lab.diag(&format!("TCP to {ip}: {e}"))));
        answered.insert(who);
    }
    let names: BTreeSet<String> = NODES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(answered, names, "not every node answered through the router's ECMP");

    // 2. n1's speaker restarted three times: n1's next hop stays at every 50 ms poll
    let n1 = NODES[0].1;
    for round in 0..3 {
        let start = Instant::now();
        let mut missed = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| lab.restart_speaker(0).unwrap());
            while start.elapsed() < Duration::from_secs(12) {
                if !lab.router_nexthops(ip).contains(n1) {
                    missed.push(start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        assert!(missed.is_empty(), "{}", lab.diag(&format!("restart {}: n1 missing at the router at {missed:?}", round + 1)));
        eprintln!("gobgpd router: speaker restart {}: n1's next hop never missing", round + 1);
    }
    assert_eq!(lab.router_nexthops(ip), all);
}
