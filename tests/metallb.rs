//! A real MetalLB (v0.16.1, frr-k8s mode) drives three nodes, each with FRR 8.4 and an
//! frr-composer agent, against a real kube-apiserver; an FRR router with multipath puts what it
//! learns into its kernel, and a client behind it opens TCP connections to the LoadBalancer IPs.
//! See tests/metallb_lab/mod.rs for the topology.
//!
//! Needs root, FRR 8.4, the apiserver binaries and MetalLB (.ci/install-apiserver.sh,
//! .ci/install-metallb.sh): skipped without them, except under CI=true, where it fails.

mod apiserver;
#[path = "support/mod.rs"]
mod support;
// the lab and the API server harness each include tests/support
mod lab;
mod metallb_lab;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metallb_lab::{MetalLbLab, NODES, NS};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn all_nodes() -> BTreeSet<String> {
    NODES.iter().map(|(_, ip)| ip.to_string()).collect()
}

/// One lab, the proofs in order (one API server and one MetalLB per test binary: starting them
/// costs several CPU-seconds each on 2 cores).
#[test]
fn metallb_drives_three_nodes_end_to_end() {
    if !metallb_lab::require() {
        return;
    }
    // the default hold-down (5 s) is what this test proves
    let lab = MetalLbLab::start(&[]).unwrap();

    // 1. ECMP: one Service with endpoints on n1 and n2 (policy Cluster: every node announces).
    let ecmp = "203.0.113.10";
    lab.service("web", ecmp, false, &[0, 1]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(60), || lab.service_ip("web").as_deref() == Some(ecmp)),
        "{}",
        lab.diag("MetalLB's controller did not assign the IP")
    );
    assert!(
        lab::wait_until(Duration::from_secs(60), || lab.router_nexthops(ecmp) == all_nodes()),
        "{}",
        lab.diag("the router's kernel lacks three next hops for the LB IP")
    );
    // TCP from the client reaches a node; with the router hashing on ports, every node answers
    let mut answered = BTreeSet::new();
    for _ in 0..30 {
        let who = lab.connect(ecmp).unwrap_or_else(|e| panic!("{}", lab.diag(&format!("TCP to {ecmp}: {e}"))));
        assert!(NODES.iter().any(|(n, _)| *n == who), "unexpected answer {who:?}");
        answered.insert(who);
    }
    assert_eq!(answered.len(), 3, "30 connections reached only {answered:?}: the router does not spread over the next hops");

    // 2. BGPPeer with a password Secret (passed through as a reference), BFD up on both sides
    //    with MetalLB's profile, communities and large communities at the router.
    let cfg = lab.api.kubectl_json(&["-n", NS, "get", "frrconfiguration", "metallb-n1"]).unwrap();
    let neighbor = &cfg["spec"]["bgp"]["routers"][0]["neighbors"][0];
    assert_eq!(neighbor["passwordSecret"]["name"], "bgp-pw", "{neighbor}");
    assert!(neighbor.get("password").is_none_or(|p| p.as_str() == Some("")), "MetalLB wrote the password in clear: {neighbor}");
    for (i, (name, ip)) in NODES.iter().enumerate() {
        let node_bfd = |f: &str| {
            lab.frrs[i]
                .vtysh_json("show bfd peers json")
                .ok()
                .and_then(|v| v.as_array().and_then(|a| a.iter().find(|p| p["peer"] == metallb_lab::ROUTER_IP).map(|p| p[f].clone())))
        };
        assert!(lab::wait_until(Duration::from_secs(20), || node_bfd("status").is_some_and(|s| s == "up")), "{}", lab.diag(&format!("BFD not up on {name}")));
        assert_eq!(node_bfd("receive-interval").unwrap(), 250, "{name}: MetalLB's BFD profile not applied");
        let router_bfd = lab.router_frr.vtysh_json("show bfd peers json").unwrap();
        assert!(router_bfd.as_array().unwrap().iter().any(|p| p["peer"] == *ip && p["status"] == "up"), "router BFD to {name}: {router_bfd}");
    }
    let route = lab.router_frr.vtysh_json(&format!("show bgp ipv4 unicast {ecmp}/32 json")).unwrap();
    let paths = route["paths"].as_array().cloned().unwrap_or_default();
    assert_eq!(paths.len(), 3, "{route}");
    for p in &paths {
        assert!(p["community"]["string"].as_str().is_some_and(|c| c.split(' ').any(|c| c == "64512:200")), "community missing: {p}");
        assert!(p["largeCommunity"]["string"].as_str().is_some_and(|c| c.split(' ').any(|c| c == "64512:7:9")), "large community missing: {p}");
    }

    // 3. externalTrafficPolicy Local with the endpoint on n2: one next hop, and TCP reaches n2.
    let local = "203.0.113.20";
    lab.service("web-local", local, true, &[1]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(30), || lab.router_nexthops(local) == set(&[NODES[1].1])),
        "{}",
        lab.diag("ETP Local: not exactly n2's next hop")
    );
    for _ in 0..5 {
        assert_eq!(lab.connect(local).unwrap(), "n2");
    }

    // 4. Service deleted: withdrawn at the router right after the hold-down (5 s) that follows
    //    MetalLB's last write (a partial write during a speaker restart looks the same).
    let gone = "203.0.113.30";
    lab.service("web-gone", gone, false, &[2]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(30), || lab.router_nexthops(gone) == all_nodes()), "{}", lab.diag("web-gone not announced"));
    let mark = lab.watch().len();
    lab.delete_service("web-gone").unwrap();
    let withdrawn = metallb_lab::poll_until(Duration::from_secs(30), || lab.router_nexthops(gone).is_empty())
        .unwrap_or_else(|| panic!("{}", lab.diag("web-gone never withdrawn")));
    let at_router = Instant::now();
    let _ = withdrawn;
    let writes: Vec<_> = lab.watch().since(mark).into_iter().filter(|e| e.kind == "MODIFIED" && !e.prefixes.contains(&format!("{gone}/32"))).collect();
    let mut last_write = None;
    for (name, _) in NODES {
        let w = writes
            .iter()
            .find(|e| e.name == format!("metallb-{name}"))
            .unwrap_or_else(|| panic!("no write by {name}'s speaker withdrawing {gone}: {writes:?}"));
        last_write = last_write.max(Some(w.at));
    }
    let delay = at_router.saturating_duration_since(last_write.unwrap());
    eprintln!("Service deleted: withdrawn at the router {} ms after MetalLB's last write (hold-down 5000 ms)", delay.as_millis());
    // kept for the hold-down; then one small FRR apply + BGP + zebra (on 2 cores shared with
    // other builds one 4-command FRR 8.4 apply alone took 0.7-1 s): a regression guard, the
    // figure is printed (timings belong to benchmarks)
    assert!(delay >= Duration::from_millis(4500), "{}", lab.diag(&format!("withdrawn {delay:?} after MetalLB's write, before the hold-down ended")));
    assert!(delay <= Duration::from_secs(8), "{}", lab.diag(&format!("withdrawn {delay:?} after MetalLB's write")));

    // 5. The speaker of n1 restarted five times in a row: the router never loses n1's next hop.
    let n1 = NODES[0].1.to_string();
    let watching = AtomicBool::new(true);
    let misses: Mutex<Vec<(Duration, BTreeSet<String>)>> = Mutex::new(Vec::new());
    let polls = Mutex::new(0usize);
    let start = Instant::now();
    let mark = lab.watch().len();
    std::thread::scope(|s| {
        s.spawn(|| {
            while watching.load(Ordering::Relaxed) {
                let nh = lab.router_nexthops(ecmp);
                *polls.lock().unwrap() += 1;
                if !nh.contains(&n1) {
                    misses.lock().unwrap().push((start.elapsed(), nh));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        for round in 0..5 {
            let t = Instant::now();
            lab.restart_speaker(0).unwrap();
            // MetalLB deletes 0.3 s after start and recreates ~3.35 s later; wait past a hold-down
            std::thread::sleep(Duration::from_secs(8).saturating_sub(t.elapsed()));
            eprintln!("speaker restart {}: done after {} ms", round + 1, t.elapsed().as_millis());
        }
        watching.store(false, Ordering::Relaxed);
    });
    let events = lab.watch().since(mark);
    // what a restart does to the node's object: deleted and recreated ~3.3 s later, or written
    // without prefixes and refilled ~3 s later; either would withdraw n1 without the hold-down
    let mine: Vec<_> = events.iter().filter(|e| e.name == "metallb-n1").collect();
    let deletes = mine.iter().filter(|e| e.kind == "DELETED").count();
    let empties = mine.iter().filter(|e| e.kind != "DELETED" && e.prefixes.is_empty()).count();
    eprintln!(
        "speaker restarts: MetalLB deleted metallb-n1 {deletes} times and wrote it without prefixes {empties} times; router polls {}, misses {:?}",
        polls.lock().unwrap(),
        misses.lock().unwrap()
    );
    assert!(deletes + empties >= 1, "no restart deleted or emptied the FRRConfiguration: nothing proven ({events:?})");
    assert!(misses.lock().unwrap().is_empty(), "{}", lab.diag(&format!("the router lost n1's next hop during speaker restarts: {:?}", misses.lock().unwrap())));
    assert!(lab::wait_until(Duration::from_secs(10), || lab.router_nexthops(ecmp) == all_nodes()), "{}", lab.diag("not three next hops after the restarts"));

    // 6. A real removal: n3's speaker stops for good and its FRRConfiguration is deleted; the
    //    router keeps n3's next hop for the hold-down (5 s) and loses it right after.
    lab.stop_speaker(2);
    let n3 = NODES[2].1.to_string();
    let t = Instant::now();
    lab.api.kubectl(&["-n", NS, "delete", "frrconfiguration", "metallb-n3"]).unwrap();
    let mut kept = Duration::ZERO;
    let mut lost = None;
    while t.elapsed() < Duration::from_secs(15) {
        let nh = lab.router_nexthops(ecmp);
        if nh.contains(&n3) {
            kept = t.elapsed();
        } else {
            lost = Some(t.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let lost = lost.unwrap_or_else(|| panic!("{}", lab.diag("n3's next hop never withdrawn")));
    eprintln!("real removal: n3's next hop kept {} ms, gone {} ms after the delete (hold-down 5000 ms)", kept.as_millis(), lost.as_millis());
    assert!(kept >= Duration::from_millis(4700), "{}", lab.diag(&format!("withdrawn before the hold-down ended: {kept:?}")));
    // right after the hold-down: one apply, BGP and zebra (up to 2 s were seen on 2 busy cores)
    assert!(lost <= Duration::from_secs(8), "{}", lab.diag(&format!("withdrawn {lost:?} after the delete, not right after the hold-down")));
    assert_eq!(lab.router_nexthops(ecmp), set(&[NODES[0].1, NODES[1].1]));
    // 7. `frr-composer routes` and `why` against this cluster: for every node, the prefixes
    //    routes says it advertises to the router are exactly those the router holds from it, each
    //    row with its FRRConfiguration and Service.
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_frr-composer"))
            .args(args)
            .args(["-n", NS])
            .env("KUBECONFIG", lab.api.kubeconfig())
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let routes = || -> Vec<serde_json::Value> {
        let (code, out, err) = cli(&["routes", "-o", "json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["routes"].as_array().cloned().unwrap_or_default()
    };
    let said = |rows: &[serde_json::Value], node: &str| -> BTreeSet<String> {
        rows.iter().filter(|r| r["node"] == node && r["peer"] == metallb_lab::ROUTER_IP).map(|r| r["prefix"].as_str().unwrap().to_string()).collect()
    };
    let router_holds = |node_ip: &str| -> BTreeSet<String> {
        let v = lab.router_frr.vtysh_json(&format!("show bgp ipv4 unicast neighbors {node_ip} routes json")).unwrap_or_default();
        v["routes"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let rows = routes();
    for (name, ip) in NODES {
        assert_eq!(said(&rows, name), router_holds(ip), "{}", lab.diag(&format!("routes and the router disagree on {name}: {rows:#?}")));
    }
    assert_eq!(said(&rows, "n2"), set(&[&format!("{ecmp}/32"), &format!("{local}/32")]), "{rows:#?}");
    for r in &rows {
        assert_eq!(r["objects"], serde_json::json!([format!("{NS}/metallb-{}", r["node"].as_str().unwrap())]), "{r}");
        let service = if r["prefix"] == format!("{ecmp}/32") { "default/web" } else { "default/web-local" };
        assert_eq!(r["services"], serde_json::json!([service]), "{r}");
        assert_eq!(r["session"], "Established", "{r}");
        assert_eq!(r["sent"], true, "the node's agent published that FRR sent it: {r}");
    }
    // a new Service: in `routes` as soon as the router has it (MetalLB writes the object first)
    let new_ip = metallb_lab::LB_IPS[3];
    lab.service("web-new", new_ip, false, &[0, 1]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(60), || lab.router_nexthops(new_ip) == set(&[NODES[0].1, NODES[1].1])),
        "{}",
        lab.diag("web-new not announced by n1 and n2")
    );
    let at_router = Instant::now();
    let shown = metallb_lab::poll_until(Duration::from_secs(5), || {
        let rows = routes();
        ["n1", "n2"].iter().all(|n| said(&rows, n).contains(&format!("{new_ip}/32")))
    });
    eprintln!("a new Service's IP in `routes`: {} ms after the router had it", at_router.elapsed().as_millis());
    assert!(shown.is_some(), "{}", lab.diag("the new Service's IP not in `routes` within 5 s of reaching the router"));
    // an admin object on n1 that contradicts MetalLB's peer: left out, and `why` says so
    lab.apply(&format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: admin-n1, namespace: {NS}}}\nspec:\n  nodeSelector: {{matchLabels: {{kubernetes.io/hostname: n1}}}}\n  bgp:\n    routers:\n    - asn: {}\n      prefixes: [198.51.100.99/32]\n      neighbors:\n      - address: {}\n        asn: 64999\n        toAdvertise: {{allowed: {{prefixes: [198.51.100.99/32]}}}}\n",
        metallb_lab::NODE_ASN,
        metallb_lab::ROUTER_IP
    ))
    .unwrap();
    let (code, out, err) = cli(&["why", "198.51.100.99", "--node", "n1"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("NO  {NS}/admin-n1 is not in effect on n1 (LeftOut)")) && out.contains(&format!("{NS}/metallb-n1")) && out.contains("64999"),
        "{out}"
    );
    assert_eq!(lab.router_nexthops(ecmp), set(&[NODES[0].1, NODES[1].1]), "{}", lab.diag("the admin object disturbed the announced IP"));
    lab.api.kubectl(&["-n", NS, "delete", "frrconfiguration", "admin-n1"]).unwrap();

    for a in &lab.agents {
        assert!(!a.log().contains("panicked"), "{}", a.log_tail(20));
    }
}
