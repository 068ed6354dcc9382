//! Multi-node topologies against real FRR 8.4 and 10.3: every node runs FRR managed by
//! `frr-composer apply`, the external routers are FRR instances configured with vtysh.
//!
//! - ECMP: three nodes announce the same /32 to one router with `maximum-paths 3`; the
//!   router's kernel holds one route with three next hops. One node withdraws it: two next
//!   hops remain, and no session is reset.
//! - Racks: two ToRs (iBGP with their nodes, `bgp listen range`) under a spine (eBGP). One
//!   FRRConfiguration per rack (selected by the `rack` label) peers with the rack's ToR, one
//!   per node (selected by hostname) announces the node's pod CIDR. The spine learns all four
//!   CIDRs via the right ToR. A node moves to the other rack (cable and label): it now peers
//!   with the other ToR only, and the spine learns its CIDR via that ToR.
//!
//! Needs root, `ip netns` and FRR (.ci/install-frr.sh): skipped without them, except under
//! CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab::{Bridge, Frr, FrrVersion, Netns, Req, TempDir};

const NS: &str = "frr-k8s-system";

fn apply(frr: &Frr, inputs: &[&Path], node: &str, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frr-composer"));
    c.arg("apply").args(inputs).args(["--node", node]).args(frr.cli_args()).args(extra);
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn must_apply(frr: &Frr, inputs: &[&Path], node: &str, extra: &[&str]) -> String {
    let o = apply(frr, inputs, node, extra);
    assert!(o.status.success(), "FRR {}: apply on {node} failed:\n{}", frr.version().label(), text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Node objects: (name, extra labels).
fn nodes_yaml(nodes: &[(&str, &[(&str, &str)])]) -> String {
    let mut s = String::new();
    for (name, labels) in nodes {
        s.push_str(&format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n"));
        for (k, v) in *labels {
            s.push_str(&format!("    {k}: {v}\n"));
        }
    }
    s
}

/// Established sessions to `peer` so far (`connectionsEstablished`), 0 if unknown.
fn connections(frr: &Frr, peer: &str) -> u64 {
    frr.vtysh_json(&format!("show bgp neighbors {peer} json")).ok().and_then(|j| j[peer]["connectionsEstablished"].as_u64()).unwrap_or(0)
}

/// Peers of `show bgp summary json` (IPv4 unicast) and their state.
fn summary_peers(frr: &Frr) -> BTreeMap<String, String> {
    let Ok(j) = frr.vtysh_json("show bgp ipv4 unicast summary json") else {
        return BTreeMap::new();
    };
    j["peers"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v["state"].as_str().unwrap_or("?").to_string())).collect()).unwrap_or_default()
}

/// Paths in FRR's BGP table: prefix -> sorted (next hop, peer) of every path.
fn bgp_paths(frr: &Frr) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let Ok(j) = frr.vtysh_json("show bgp ipv4 unicast json") else {
        return out;
    };
    for (prefix, paths) in j["routes"].as_object().into_iter().flatten() {
        let mut v: Vec<(String, String)> = paths
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["nexthops"][0]["ip"].as_str().unwrap_or("?").to_string(), p["peerId"].as_str().unwrap_or("?").to_string()))
            .collect();
        v.sort();
        out.insert(prefix.clone(), v);
    }
    out
}

/// The kernel's routes for `dst` in `ns`: (number of routes, next-hop addresses of all of
/// them, number of `nexthop via` lines).
fn kernel_nexthops(ns: &Netns, dst: &str) -> (usize, BTreeSet<String>, usize) {
    let out = ns.routes(false, &[dst]).unwrap_or_default();
    let routes = out.lines().filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace)).count();
    let multipath = out.lines().filter(|l| l.trim_start().starts_with("nexthop via ")).count();
    let mut hops = BTreeSet::new();
    let words: Vec<&str> = out.split_whitespace().collect();
    for w in words.windows(2) {
        if w[0] == "via" {
            hops.insert(w[1].to_string());
        }
    }
    (routes, hops, multipath)
}

/// The `+ ...` / `- ...` lines of apply's report.
fn changes(out: &str) -> Vec<String> {
    out.lines().filter(|l| l.starts_with("+ ") || l.starts_with("- ")).map(str::to_string).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------------------ ECMP

const ECMP_ROUTER: &str = "192.0.2.1";
const ECMP_NODES: [(&str, &str); 3] = [("n0", "192.0.2.10"), ("n1", "192.0.2.11"), ("n2", "192.0.2.12")];
const VIP: &str = "198.51.100.10";

/// The external router: AS 64500, eBGP multipath over the three nodes (AS 64512).
fn ecmp_router_conf() -> String {
    let mut s = String::from(
        "bgp route-map delay-timer 0\n\
         router bgp 64500\n\
         \x20bgp router-id 192.0.2.1\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20bgp bestpath as-path multipath-relax\n\
         \x20timers bgp 3 9\n\
         \x20neighbor NODES peer-group\n\
         \x20neighbor NODES remote-as 64512\n\
         \x20neighbor NODES timers connect 1\n\
         \x20neighbor NODES advertisement-interval 0\n",
    );
    for (_, ip) in ECMP_NODES {
        s.push_str(&format!(" neighbor {ip} peer-group NODES\n"));
    }
    s.push_str(" address-family ipv4 unicast\n  maximum-paths 3\n exit-address-family\nexit\n");
    s
}

/// Peering with the router, for every node (no node selector).
const ECMP_PEERING: &str = "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {name: peering, namespace: frr-k8s-system}
spec:
  bgp:
    routers:
    - asn: 64512
      neighbors:
      - address: 192.0.2.1
        asn: 64500
";

/// The service IP, announced by every node that gets this file.
const ECMP_VIP: &str = "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {name: vip, namespace: frr-k8s-system}
spec:
  bgp:
    routers:
    - asn: 64512
      prefixes: [198.51.100.10/32]
      neighbors:
      - address: 192.0.2.1
        asn: 64500
        toAdvertise:
          allowed:
            prefixes: [198.51.100.10/32]
";

fn ecmp(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let v = version.label();
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    // Namespaces first: dropped after the daemons inside them.
    let mut bridge = Bridge::new().unwrap();
    let router_ns = Netns::new().unwrap();
    let node_ns: Vec<Netns> = ECMP_NODES.iter().map(|_| Netns::new().unwrap()).collect();
    bridge.attach(&router_ns, "eth0", &[&format!("{ECMP_ROUTER}/24")]).unwrap();
    for ((_, ip), ns) in ECMP_NODES.iter().zip(&node_ns) {
        bridge.attach(ns, "eth0", &[&format!("{ip}/24")]).unwrap();
    }
    let router = Frr::start(version, &router_ns).unwrap();
    let nodes: Vec<Frr> = node_ns.iter().map(|ns| Frr::start(version, ns).unwrap()).collect();
    router.load_config_file(&ecmp_router_conf()).unwrap();

    let node_list: Vec<(&str, &[(&str, &str)])> = ECMP_NODES.iter().map(|(n, _)| (*n, &[][..])).collect();
    let nodes_file = tmp.write("nodes.yaml", &nodes_yaml(&node_list)).unwrap();
    let peering = tmp.write("peering.yaml", ECMP_PEERING).unwrap();
    let vip = tmp.write("vip.yaml", ECMP_VIP).unwrap();

    let diag = |what: &str| {
        format!(
            "FRR {v}: {what}\n--- router bgp\n{}\n--- router summary\n{}\n--- router kernel\n{}\n--- n2 running\n{}",
            router.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default(),
            router.vtysh(&["show bgp summary"]).unwrap_or_default(),
            router_ns.routes(false, &[]).unwrap_or_default(),
            nodes[2].running_config().unwrap_or_default(),
        )
    };

    for ((name, _), frr) in ECMP_NODES.iter().zip(&nodes) {
        must_apply(frr, &[&nodes_file, &peering, &vip], name, &[]);
    }
    let all: BTreeSet<String> = ECMP_NODES.iter().map(|(_, ip)| ip.to_string()).collect();
    let ok = lab::wait_until(Duration::from_secs(30), || {
        let (routes, hops, multipath) = kernel_nexthops(&router_ns, VIP);
        routes == 1 && multipath == 3 && hops == all
    });
    assert!(ok, "{}", diag("the router's kernel has no route to the VIP with three next hops"));
    eprintln!("FRR {v}: ECMP over 3 nodes after {:.1} s", start.elapsed().as_secs_f64());
    // BGP agrees: three paths, all multipath.
    let paths = bgp_paths(&router);
    assert_eq!(paths.get(&format!("{VIP}/32")).map(|p| p.len()), Some(3), "{}", diag("BGP paths"));
    for (_, ip) in ECMP_NODES {
        assert_eq!(connections(&router, ip), 1, "{}", diag(&format!("session to {ip}")));
    }

    // Applying the same inputs again, with no state file, changes nothing.
    let again = must_apply(&nodes[0], &[&nodes_file, &peering, &vip], "n0", &[]);
    assert!(changes(&again).is_empty(), "FRR {v}: a second apply of the same inputs changed:\n{again}");
    assert!(again.contains("already runs the desired configuration"), "FRR {v}:\n{again}");

    // n2 stops announcing: its configuration no longer includes vip.yaml.
    let withdraw = Instant::now();
    let out = must_apply(&nodes[2], &[&nodes_file, &peering], "n2", &[]);
    eprintln!("FRR {v}: apply on n2 (withdrawal):\n{out}");
    // A minimal change: the network and the prefix list, nothing of the neighbor itself.
    for l in changes(&out) {
        assert!(!l.contains("neighbor") && !l.contains("remote-as"), "FRR {v}: the withdrawal touched the neighbor: {l}\n{out}");
    }
    assert!(changes(&out).iter().any(|l| l.starts_with("- ") && l.contains("network 198.51.100.10/32")), "{out}");
    let running = nodes[2].running_config().unwrap();
    assert!(!running.contains("198.51.100.10"), "{}", diag("n2 still has the VIP"));
    let two: BTreeSet<String> = set(&[ECMP_NODES[0].1, ECMP_NODES[1].1]);
    let ok = lab::wait_until(Duration::from_secs(20), || {
        let (routes, hops, multipath) = kernel_nexthops(&router_ns, VIP);
        routes == 1 && multipath == 2 && hops == two
    });
    assert!(ok, "{}\n--- apply output\n{out}", diag("the router's kernel route did not shrink to two next hops"));
    eprintln!("FRR {v}: withdrawn from n2 in {:.1} s", withdraw.elapsed().as_secs_f64());
    let paths = bgp_paths(&router);
    assert_eq!(
        paths.get(&format!("{VIP}/32")).cloned().unwrap_or_default(),
        vec![(ECMP_NODES[0].1.to_string(), ECMP_NODES[0].1.to_string()), (ECMP_NODES[1].1.to_string(), ECMP_NODES[1].1.to_string())],
        "{}",
        diag("BGP paths after the withdrawal")
    );
    // No session was reset: not the remaining nodes', not even n2's.
    for (_, ip) in ECMP_NODES {
        assert_eq!(connections(&router, ip), 1, "{}", diag(&format!("the session to {ip} was reset")));
        assert_eq!(router.bgp_neighbor_state(ip).unwrap(), "Established", "{}", diag(ip));
    }
    eprintln!("FRR {v}: ECMP scenario took {:.1} s", start.elapsed().as_secs_f64());
}

crate::frr_versions!(ecmp, racks);

// ------------------------------------------------------------------------------ racks

/// A rack: its L2 segment, the ToR's address there and on the spine link, the spine's end.
struct RackPlan {
    label: &'static str,
    subnet: &'static str,
    tor: &'static str,
    tor_uplink: &'static str,
    spine_end: &'static str,
}

const RACKS: [RackPlan; 2] = [
    RackPlan { label: "rack0", subnet: "192.0.2.0/26", tor: "192.0.2.1", tor_uplink: "192.0.2.130", spine_end: "192.0.2.129" },
    RackPlan { label: "rack1", subnet: "192.0.2.64/26", tor: "192.0.2.65", tor_uplink: "192.0.2.134", spine_end: "192.0.2.133" },
];

/// Nodes: (name, rack index, address, pod CIDR).
const RACK_NODES: [(&str, usize, &str, &str); 4] = [
    ("n0", 0, "192.0.2.11", "203.0.113.0/26"),
    ("n1", 0, "192.0.2.12", "203.0.113.64/26"),
    ("n2", 1, "192.0.2.75", "203.0.113.128/26"),
    ("n3", 1, "192.0.2.76", "203.0.113.192/26"),
];
/// n1's address once it moved to rack1.
const MOVED_ADDR: &str = "192.0.2.77";

/// A ToR: AS 65001, iBGP with any node of its segment (dynamic neighbors), eBGP to the spine.
fn tor_conf(r: &RackPlan) -> String {
    format!(
        "bgp route-map delay-timer 0\n\
         router bgp 65001\n\
         \x20bgp router-id {tor}\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20timers bgp 3 9\n\
         \x20neighbor NODES peer-group\n\
         \x20neighbor NODES remote-as 65001\n\
         \x20neighbor NODES advertisement-interval 0\n\
         \x20bgp listen range {subnet} peer-group NODES\n\
         \x20neighbor {spine} remote-as 65000\n\
         \x20neighbor {spine} timers connect 1\n\
         \x20neighbor {spine} advertisement-interval 0\n\
         exit\n",
        tor = r.tor,
        subnet = r.subnet,
        spine = r.spine_end,
    )
}

fn spine_conf() -> String {
    let mut s = String::from(
        "bgp route-map delay-timer 0\n\
         router bgp 65000\n\
         \x20bgp router-id 192.0.2.129\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20timers bgp 3 9\n",
    );
    for r in &RACKS {
        s.push_str(&format!(" neighbor {u} remote-as 65001\n neighbor {u} timers connect 1\n neighbor {u} advertisement-interval 0\n", u = r.tor_uplink));
    }
    s.push_str("exit\n");
    s
}

/// One per rack: every node labelled `rack: <label>` peers with the rack's ToR.
fn rack_yaml(r: &RackPlan) -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {{name: {label}-tor, namespace: {NS}}}
spec:
  nodeSelector:
    matchLabels: {{rack: {label}}}
  bgp:
    routers:
    - asn: 65001
      neighbors:
      - address: {tor}
        asn: 65001
        connectTime: 2s
",
        label = r.label,
        tor = r.tor
    )
}

/// One per node: the node's pod CIDR, advertised to its rack's ToR. (`toAdvertise` only
/// covers prefixes of the same configuration's router, so the neighbor is repeated here, with
/// the same ASN and connect time as in the rack's configuration.)
fn pods_yaml(node: &str, cidr: &str, r: &RackPlan) -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {{name: pods-{node}, namespace: {NS}}}
spec:
  nodeSelector:
    matchLabels: {{kubernetes.io/hostname: {node}}}
  bgp:
    routers:
    - asn: 65001
      prefixes: [{cidr}]
      neighbors:
      - address: {tor}
        asn: 65001
        connectTime: 2s
        toAdvertise:
          allowed:
            prefixes: [{cidr}]
",
        tor = r.tor
    )
}

fn racks_nodes_yaml(rack_of: &[usize; 4]) -> String {
    let labels: Vec<[(&str, &str); 1]> = rack_of.iter().map(|r| [("rack", RACKS[*r].label)]).collect();
    let list: Vec<(&str, &[(&str, &str)])> = RACK_NODES.iter().zip(&labels).map(|((n, ..), l)| (*n, &l[..])).collect();
    nodes_yaml(&list)
}

fn racks(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let v = version.label();
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let mut segments: Vec<Bridge> = RACKS.iter().map(|_| Bridge::new().unwrap()).collect();
    let spine_ns = Netns::new().unwrap();
    let tor_ns: Vec<Netns> = RACKS.iter().map(|_| Netns::new().unwrap()).collect();
    let node_ns: Vec<Netns> = RACK_NODES.iter().map(|_| Netns::new().unwrap()).collect();
    for (i, r) in RACKS.iter().enumerate() {
        segments[i].attach(&tor_ns[i], "eth0", &[&format!("{}/26", r.tor)]).unwrap();
        lab::veth(&spine_ns, &format!("tor{i}"), &[&format!("{}/30", r.spine_end)], &tor_ns[i], "spine", &[&format!("{}/30", r.tor_uplink)]).unwrap();
    }
    for ((_, rack, addr, _), ns) in RACK_NODES.iter().zip(&node_ns) {
        segments[*rack].attach(ns, "eth0", &[&format!("{addr}/26")]).unwrap();
    }
    let spine = Frr::start(version, &spine_ns).unwrap();
    let tors: Vec<Frr> = tor_ns.iter().map(|ns| Frr::start(version, ns).unwrap()).collect();
    let nodes: Vec<Frr> = node_ns.iter().map(|ns| Frr::start(version, ns).unwrap()).collect();
    spine.load_config_file(&spine_conf()).unwrap();
    for (r, tor) in RACKS.iter().zip(&tors) {
        tor.load_config_file(&tor_conf(r)).unwrap();
    }

    let mut rack_of = [0usize; 4];
    for (i, (_, rack, ..)) in RACK_NODES.iter().enumerate() {
        rack_of[i] = *rack;
    }
    let nodes_file = tmp.write("nodes.yaml", &racks_nodes_yaml(&rack_of)).unwrap();
    let rack_files: Vec<PathBuf> = RACKS.iter().map(|r| tmp.write(&format!("{}.yaml", r.label), &rack_yaml(r)).unwrap()).collect();
    let pod_files: Vec<PathBuf> =
        RACK_NODES.iter().map(|(n, rack, _, cidr)| tmp.write(&format!("pods-{n}.yaml"), &pods_yaml(n, cidr, &RACKS[*rack])).unwrap()).collect();

    let diag = |what: &str| {
        let mut s = format!("FRR {v}: {what}\n--- spine bgp\n{}", spine.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default());
        for (r, t) in RACKS.iter().zip(&tors) {
            s.push_str(&format!("--- {} summary\n{}", r.label, t.vtysh(&["show bgp summary"]).unwrap_or_default()));
        }
        s.push_str(&format!(
            "--- n1 running\n{}--- n1 summary\n{}",
            nodes[1].running_config().unwrap_or_default(),
            nodes[1].vtysh(&["show bgp summary"]).unwrap_or_default()
        ));
        s
    };

    // Every node gets all the files; its labels pick what applies to it.
    let mut inputs: Vec<&Path> = vec![&nodes_file];
    inputs.extend(rack_files.iter().map(PathBuf::as_path));
    inputs.extend(pod_files.iter().map(PathBuf::as_path));
    for ((name, ..), frr) in RACK_NODES.iter().zip(&nodes) {
        must_apply(frr, &inputs, name, &[]);
    }
    // Each node peers with its own ToR only.
    for ((name, rack, ..), frr) in RACK_NODES.iter().zip(&nodes) {
        let running = frr.running_config().unwrap();
        let other = RACKS[1 - rack].tor;
        assert!(running.contains(&format!("neighbor {} remote-as 65001", RACKS[*rack].tor)), "{name}:\n{running}");
        assert!(!running.contains(&format!("neighbor {other} ")), "{name} peers with the other ToR:\n{running}");
    }
    let expected = |rack_of: &[usize; 4]| -> BTreeMap<String, Vec<(String, String)>> {
        RACK_NODES
            .iter()
            .zip(rack_of)
            .map(|((_, _, _, cidr), r)| {
                let u = RACKS[*r].tor_uplink.to_string();
                (cidr.to_string(), vec![(u.clone(), u)])
            })
            .collect()
    };
    let want = expected(&rack_of);
    let ok = lab::wait_until(Duration::from_secs(30), || bgp_paths(&spine) == want);
    assert!(ok, "{}\nwanted {want:?}\nhave {:?}", diag("the spine did not learn the four pod CIDRs via their ToRs"), bgp_paths(&spine));
    eprintln!("FRR {v}: spine learned all pod CIDRs after {:.1} s", start.elapsed().as_secs_f64());
    for (r, tor) in RACKS.iter().zip(&tors) {
        let peers = summary_peers(tor);
        let mine: BTreeSet<String> = RACK_NODES.iter().filter(|(_, rack, ..)| RACKS[*rack].label == r.label).map(|(_, _, a, _)| a.to_string()).collect();
        let established: BTreeSet<String> = peers.iter().filter(|(k, s)| *k != r.spine_end && s.as_str() == "Established").map(|(k, _)| k.clone()).collect();
        assert_eq!(established, mine, "{}", diag(&format!("{} sessions", r.label)));
    }

    // n1 moves to rack1: the cable (a new port on rack1's segment, a rack1 address), then the
    // label. Its per-node configuration follows the rack's ToR.
    let moved = Instant::now();
    node_ns[1].ip(&["link", "del", "eth0"]).unwrap();
    segments[1].attach(&node_ns[1], "eth0", &[&format!("{MOVED_ADDR}/26")]).unwrap();
    rack_of[1] = 1;
    std::fs::write(&nodes_file, racks_nodes_yaml(&rack_of)).unwrap();
    std::fs::write(&pod_files[1], pods_yaml("n1", RACK_NODES[1].3, &RACKS[1])).unwrap();
    let out = must_apply(&nodes[1], &inputs, "n1", &[]);
    eprintln!("FRR {v}: apply on n1 (moved to rack1):\n{out}");
    let running = nodes[1].running_config().unwrap();
    assert!(running.contains("neighbor 192.0.2.65 remote-as 65001"), "{}\n--- apply\n{out}", diag("n1 has no rack1 ToR"));
    assert!(
        !running.contains("neighbor 192.0.2.1 ") && !running.contains("192.0.2.1-"),
        "{}\n--- apply\n{out}",
        diag("n1 still has the rack0 ToR in its configuration")
    );
    let ok =
        lab::wait_until(Duration::from_secs(30), || summary_peers(&nodes[1]) == [("192.0.2.65".to_string(), "Established".to_string())].into_iter().collect());
    assert!(ok, "{}", diag("n1 does not peer with rack1's ToR only"));
    // rack1's ToR sees n1 at its new address; rack0's ToR lost it (hold time: 9 s).
    let ok = lab::wait_until(Duration::from_secs(20), || {
        summary_peers(&tors[1]).get(MOVED_ADDR).map(String::as_str) == Some("Established") && !summary_peers(&tors[0]).contains_key(RACK_NODES[1].2)
    });
    assert!(ok, "{}", diag("the ToRs did not see n1 move"));
    let want = expected(&rack_of);
    let ok = lab::wait_until(Duration::from_secs(20), || bgp_paths(&spine) == want);
    assert!(ok, "{}\nwanted {want:?}\nhave {:?}", diag("the spine did not learn n1's CIDR via rack1's ToR"), bgp_paths(&spine));
    eprintln!("FRR {v}: n1 moved in {:.1} s", moved.elapsed().as_secs_f64());
    // The other nodes were not touched.
    for i in [0, 2, 3] {
        let (_, rack, addr, _) = RACK_NODES[i];
        assert_eq!(connections(&tors[rack], addr), 1, "{}", diag(&format!("the session of {addr} was reset")));
    }
    eprintln!("FRR {v}: racks scenario took {:.1} s", start.elapsed().as_secs_f64());
}
