//! Features of the frrk8s API proven live that need steps a lab case cannot state as data.
//! The node is FRR (each version of the suite) configured as `frr-composer apply` configures a
//! node; the peers are the lab's (`Lab::build`), one per neighbor:
//!
//! - imports between VRFs (a Linux VRF `red` in the node's namespace, where the kernel has one):
//!   FRR's running configuration and the VRFs' tables;
//! - BFD with a profile, and with a profile of FRR's default values: the intervals on both
//!   sides, up on both sides and as `frr-composer status` reports it;
//! - passwords from a Secret (TCP-MD5): right password up, wrong password down and staying
//!   down, never printed by `frr-composer apply`;
//! - the IPv6 next hop of a dual-stack session over IPv4 transport: the node's global IPv6
//!   address (the lab links each IP family separately, so this one builds its own link).
//!
//! Policy (filtered and `mode: all` advertisement, communities, large communities, local
//! preference, next hop, `ge`/`le`, `--always-block`), unnumbered peering and IPv6 and
//! dual-stack sessions are lab cases: `testdata/lab/cases/`, run by tests/lab_cases.rs.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use frr_composer::lab::topology::{Lab, Options, PeerKind};
use frr_composer::offline::{desired, NodeArgs};
use lab::{Frr, FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_frr-composer")
}

/// `frr-composer apply INPUT --node lab-node` against `frr`.
fn apply(frr: &Frr, input: &Path) -> Output {
    Command::new(bin()).arg("apply").arg(input).args(["--node", "lab-node"]).args(frr.cli_args()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn applied(o: &Output) {
    assert!(o.status.success(), "apply failed:\n{}", text(o));
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The FRRConfiguration `name` in namespace `lab` with `bgp` (YAML, its keys indented by four
/// spaces) as its `spec.bgp`.
fn frr_configuration(name: &str, bgp: &str) -> String {
    format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: {name}, namespace: lab}}\nspec:\n  bgp:\n{bgp}")
}

/// `docs` after the Node object `lab-node`, as the file `name` in `tmp`.
fn input(tmp: &TempDir, name: &str, docs: &str) -> PathBuf {
    tmp.write(name, &format!("{}{docs}", lab::NODE_DOC)).unwrap()
}

/// The lab for the objects `docs` on node `lab-node`: the node's FRR of `version` configured
/// from them, one peer (of `peers`) per neighbor; and the folder of the file `input.yaml`
/// that holds them, after the Node object. None: skipped (see `lab::require`).
fn lab_of(version: FrrVersion, peers: PeerKind, docs: &str) -> Option<(TempDir, Lab)> {
    let reqs = [Req::Frr(version), Req::GoBgp];
    if !lab::require(if peers == PeerKind::Gobgp { &reqs } else { &reqs[..1] }) {
        return None;
    }
    let tmp = TempDir::new().unwrap();
    let mut err = Vec::new();
    let node = NodeArgs { node: Some("lab-node".into()), ..Default::default() };
    let (model, text) = desired(&[input(&tmp, "input.yaml", docs)], &node, &mut err).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&err)));
    let opts = Options { frr_root: version.root(), peers, announce: Vec::new() };
    let lab = Lab::build(&model, &text, &opts, &mut |_| {}).unwrap_or_else(|e| panic!("the lab does not build: {e:#}"));
    Some((tmp, lab))
}

/// The paths of `prefix` in an FRR's BGP table (`show bgp [vrf VRF] ipv4|ipv6 unicast PREFIX json`).
fn frr_paths(frr: &Frr, vrf: Option<&str>, prefix: &str) -> Vec<Value> {
    let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    let vrf = vrf.map(|v| format!("vrf {v} ")).unwrap_or_default();
    frr.vtysh_json(&format!("show bgp {vrf}{fam} unicast {prefix} json"))
        .ok()
        .and_then(|v| v.get("paths").and_then(|p| p.as_array()).cloned())
        .unwrap_or_default()
}

/// Prefixes in an FRR's IPv4 BGP table of `vrf`.
fn frr_prefixes(frr: &Frr, vrf: &str) -> BTreeSet<String> {
    frr.vtysh_json(&format!("show bgp vrf {vrf} ipv4 unicast json"))
        .ok()
        .and_then(|v| v.get("routes").and_then(|r| r.as_object()).map(|m| m.keys().cloned().collect()))
        .unwrap_or_default()
}

fn established(frr: &Frr, peer: &str) -> bool {
    frr.bgp_neighbor_state(peer).is_ok_and(|s| s == "Established")
}

/// The lab's diagnostics and every VRF's BGP table of the node.
fn diag(lab: &Lab, what: &str) -> String {
    format!("{}\n--- node: show bgp vrf all ipv4 unicast\n{}", lab.diag(what), lab.node().vtysh(&["show bgp vrf all ipv4 unicast"]).unwrap_or_default())
}

crate::frr_versions!(vrf_imports, bfd, password_secret, dual_stack_ipv6_next_hop);

// ------------------------------------------------------------------------------ VRF imports

/// A Linux VRF `red` (table 10) in the node's namespace; router 65000 in the default VRF
/// originates 198.51.100.0/24 and imports `red`; router 65000 in `red` originates
/// 203.0.113.0/24 and imports `default`. FRR runs both `import vrf` lines; default's table
/// holds 203.0.113.0/24 leaked from red (this works even without a kernel VRF device), and,
/// when the kernel can create the VRF device (CONFIG_NET_VRF), red's table holds
/// 198.51.100.0/24 leaked from default. Without kernel VRF support that half is skipped with
/// a message: FRR cannot activate `red` then. (The default router's neighbor only gives the
/// lab its peer: it receives nothing and is sent nothing.)
fn vrf_imports(version: FrrVersion) {
    let start = Instant::now();
    let Some((_tmp, lab)) = lab_of(
        version,
        PeerKind::Gobgp,
        &frr_configuration(
            "vrfs",
            "    routers:
    - asn: 65000
      id: 198.51.100.1
      prefixes: [198.51.100.0/24]
      imports: [{vrf: red}]
      neighbors: [{address: 192.0.2.1, asn: 65001, connectTime: 1s}]
    - asn: 65000
      id: 203.0.113.1
      vrf: red
      prefixes: [203.0.113.0/24]
      imports: [{vrf: default}]
",
        ),
    ) else {
        return;
    };
    let node = lab.node();
    // The kernel may lack VRF support (CONFIG_NET_VRF): FRR then holds the `red` instance
    // but cannot activate it, and nothing leaks. The configuration must still be accepted.
    // zebra learns of the device when it comes, as on a node whose VRF is made later.
    let ns = lab.node_namespace();
    let kernel_vrf = match support::run(support::command("ip").args(["-n", ns, "link", "add", "red", "type", "vrf", "table", "10"])) {
        Ok(_) => true,
        Err(e) => {
            eprintln!(
                "vrf_imports FRR {}: this kernel cannot create a VRF device ({}): red imports from default cannot be checked",
                version.label(),
                e.to_string().lines().last().unwrap_or("")
            );
            false
        }
    };
    if kernel_vrf {
        support::run(support::command("ip").args(["-n", ns, "link", "set", "red", "up"])).unwrap();
        assert!(
            lab::wait_until(Duration::from_secs(10), || node.vtysh(&["show vrf"]).is_ok_and(|s| s.contains("red"))),
            "zebra does not see VRF red: {}",
            node.vtysh(&["show vrf"]).unwrap_or_default()
        );
    }
    let running = node.running_config().unwrap();
    for l in ["router bgp 65000 vrf red", "  import vrf red", "  import vrf default", "  network 203.0.113.0/24"] {
        assert!(running.contains(l), "`{l}` not in FRR's running configuration:\n{running}");
    }
    // default imports red: on FRR 8.4 and 10.3 this works even when the kernel has no VRF
    // device for red. FRR 10.7 leaks nothing from a VRF it cannot activate: without a kernel
    // VRF device only the configuration can be checked there (it was, above).
    if !kernel_vrf && version == FrrVersion::V10_7 {
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(frr_prefixes(node, "default"), set(&["198.51.100.0/24"]), "{}", diag(&lab, "FRR 10.7 now leaks from an inactive VRF"));
        eprintln!("vrf_imports FRR 10.7: no kernel VRF device; FRR 10.7 leaks nothing from the inactive VRF red (8.4 and 10.3 do): leaking NOT checked");
        return;
    }
    assert!(
        lab::wait_until(Duration::from_secs(20), || frr_prefixes(node, "default") == set(&["198.51.100.0/24", "203.0.113.0/24"])),
        "{}",
        diag(&lab, "203.0.113.0/24 not leaked from red into default")
    );
    let leaked = frr_paths(node, None, "203.0.113.0/24");
    assert!(leaked.len() == 1 && leaked[0]["nhVrfName"] == "red", "203.0.113.0/24 in default does not come from red: {leaked:?}");
    if !kernel_vrf {
        eprintln!(
            "vrf_imports FRR {}: red importing default NOT checked (no kernel VRF device, FRR cannot activate red); red holds {:?}",
            version.label(),
            frr_prefixes(node, "red")
        );
        return;
    }
    assert!(
        lab::wait_until(Duration::from_secs(20), || frr_prefixes(node, "red") == set(&["198.51.100.0/24", "203.0.113.0/24"])),
        "{}",
        diag(&lab, "198.51.100.0/24 not leaked from default into red")
    );
    let leaked = frr_paths(node, Some("red"), "198.51.100.0/24");
    assert!(leaked.len() == 1 && leaked[0]["nhVrfName"] == "default", "198.51.100.0/24 in red does not come from default: {leaked:?}");
    eprintln!("vrf_imports FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ BFD

/// Two neighbors with BFD, FRR peers with `neighbor NODE bfd` (FRR's defaults, 300/300 ms):
/// 192.0.2.11 with the profile `lab` (250/200 ms, multiplier 5) and 192.0.2.12 with the
/// profile `defaults`, whose values equal FRR's defaults (300/300 ms, multiplier 3). FRR does
/// not print default values in its running configuration, so apply's verification once
/// reported them missing and failed. BFD is up on both sides with each profile's intervals,
/// and `frr-composer status -o json` reports bfdStatus Up for both sessions.
fn bfd(version: FrrVersion) {
    let start = Instant::now();
    let Some((_tmp, lab)) = lab_of(
        version,
        PeerKind::Frr,
        &frr_configuration(
            "bfd",
            "    routers:
    - asn: 65000
      id: 192.0.2.10
      neighbors:
      - {address: 192.0.2.11, asn: 65001, connectTime: 1s, bfdProfile: lab}
      - {address: 192.0.2.12, asn: 65001, connectTime: 1s, bfdProfile: defaults}
    bfdProfiles:
    - {name: lab, receiveInterval: 250, transmitInterval: 200, detectMultiplier: 5}
    - {name: defaults, receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
",
        ),
    ) else {
        return;
    };
    let node = lab.node();
    let bfd_peer = |f: &Frr, addr: &str| -> Option<Value> {
        f.vtysh_json("show bfd peers json").ok()?.as_array()?.iter().find(|p| p["peer"].as_str() == Some(addr)).cloned()
    };
    let up = |f: &Frr, addr: &str| bfd_peer(f, addr).is_some_and(|p| p["status"].as_str() == Some("up"));
    let all = |what: &str| {
        let peers: String = ["192.0.2.11", "192.0.2.12"]
            .iter()
            .map(|n| format!("--- peer {n}: show bfd peers\n{}\n", lab.peer_frr(n).and_then(|f| f.vtysh(&["show bfd peers"]).ok()).unwrap_or_default()))
            .collect();
        format!("{}\n--- node: show bfd peers\n{}\n{peers}", lab.diag(what), node.vtysh(&["show bfd peers"]).unwrap_or_default())
    };
    for (neighbor, rx, tx, mult) in [("192.0.2.11", 250, 200, 5), ("192.0.2.12", 300, 300, 3)] {
        let peer = lab.peer_frr(neighbor).unwrap();
        let me = lab.node_address(neighbor).unwrap().to_string();
        assert!(
            lab::wait_until(Duration::from_secs(30), || established(node, neighbor) && up(node, neighbor) && up(peer, &me)),
            "{}",
            all(&format!("BGP/BFD with {neighbor} not up on both sides"))
        );
        let p = bfd_peer(node, neighbor).unwrap();
        assert_eq!(p["receive-interval"].as_u64(), Some(rx), "node's BFD peer: {p}");
        assert_eq!(p["transmit-interval"].as_u64(), Some(tx), "node's BFD peer: {p}");
        assert_eq!(p["detect-multiplier"].as_u64(), Some(mult), "node's BFD peer: {p}");
        // The peer (defaults 300/300) sees the node's intervals as the remote ones.
        let q = bfd_peer(peer, &me).unwrap();
        assert_eq!(q["remote-receive-interval"].as_u64(), Some(rx), "peer's BFD peer: {q}");
        assert_eq!(q["remote-transmit-interval"].as_u64(), Some(tx), "peer's BFD peer: {q}");
    }

    let mut c = Command::new(bin());
    c.arg("status").args(node.cli_args()).args(["-o", "json"]);
    let mut last = String::new();
    let ok = lab::wait_until(Duration::from_secs(10), || {
        let o = c.output().unwrap();
        last = text(&o);
        let Ok(v) = serde_json::from_slice::<Value>(&o.stdout) else { return false };
        ["192.0.2.11", "192.0.2.12"].iter().all(|peer| {
            let n = v["bgpNeighbors"].as_array().and_then(|a| a.iter().find(|n| n["peer"] == *peer).cloned());
            let b = v["bfdPeers"].as_array().and_then(|a| a.iter().find(|n| n["peer"] == *peer).cloned());
            n.is_some_and(|n| n["state"] == "Established" && n["bfdStatus"] == "Up") && b.is_some_and(|b| b["status"] == "up")
        })
    });
    assert!(ok, "{}", all(&format!("frr-composer status does not report BFD Up:\n{last}")));
    eprintln!("bfd FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ passwords

const GOOD_PW: &str = "Lab-Md5-good-7Qx";
const BAD_PW: &str = "Lab-Md5-wrong-3Zk";

fn secret_config(password: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: peer-pw
  namespace: lab
type: kubernetes.io/basic-auth
stringData:
  password: {password}
---
apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: pw
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 192.0.2.10
        prefixes: [198.51.100.0/24]
        neighbors:
          - address: 192.0.2.11
            asn: 65001
            connectTime: 1s
            passwordSecret:
              name: peer-pw
              namespace: lab
            toAdvertise:
              allowed:
                prefixes: [198.51.100.0/24]
"
    )
}

/// The password comes from a basic-auth Secret in the same YAML stream; the FRR peer has the
/// same `neighbor password`: Established, and the peer receives the prefix. The Secret then
/// holds a wrong password: after `frr-composer apply` the session goes down and stays down
/// (TCP-MD5); with the right password applied again it comes back. Neither password ever
/// appears in frr-composer's output.
fn password_secret(version: FrrVersion) {
    let start = Instant::now();
    let Some((tmp, lab)) = lab_of(version, PeerKind::Frr, &secret_config(GOOD_PW)) else { return };
    let good = tmp.path().join("input.yaml");
    let bad = input(&tmp, "bad.yaml", &secret_config(BAD_PW));
    let (node, peer) = (lab.node(), lab.peer_frr("192.0.2.11").unwrap());
    let me = lab.node_address("192.0.2.11").unwrap().to_string();
    let no_secret = |o: &Output| {
        let t = text(o);
        assert!(!t.contains(GOOD_PW) && !t.contains(BAD_PW), "frr-composer printed a password:\n{t}");
    };
    let up = || established(node, "192.0.2.11") && peer.bgp_prefixes(false).is_ok_and(|p| p.contains("198.51.100.0/24"));
    assert!(lab::wait_until(Duration::from_secs(30), up), "{}", lab.diag("no session with the right password"));

    let o = apply(node, &bad);
    applied(&o);
    no_secret(&o);
    assert!(lab::wait_until(Duration::from_secs(10), || !established(node, "192.0.2.11")), "{}", lab.diag("the session stayed up after the password changed"));
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(10) {
        assert!(!established(node, "192.0.2.11") && !established(peer, &me), "{}", lab.diag("the session came up with a wrong password"));
        std::thread::sleep(Duration::from_millis(500));
    }
    // The running configuration holds the new password (FRR runs what was asked).
    assert!(node.running_config().unwrap().contains(&format!("neighbor 192.0.2.11 password {BAD_PW}")));

    let o = apply(node, &good);
    applied(&o);
    no_secret(&o);
    assert!(lab::wait_until(Duration::from_secs(30), up), "{}", lab.diag("no session after the right password came back"));
    eprintln!("password_secret FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ dual stack

/// GoBGP (AS 65001) at 192.0.2.1 / 2001:db8::1 on one link, the node at 192.0.2.2 /
/// 2001:db8::2 on the same link: an IPv6 neighbor 2001:db8::1 and a dual-stack neighbor
/// 192.0.2.1 (IPv4 transport). The routes carry the node's addresses as next hops, IPv6 ones
/// its global IPv6 address, over the IPv4 session too. (What each session carries each way is
/// the lab case ipv6-dual-stack; the lab gives each IP family its own link, where the IPv4
/// session has no global IPv6 address to send.)
fn dual_stack_ipv6_next_hop(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version), Req::GoBgp]) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let peer_ns = Netns::new().unwrap();
    for ns in [&node_ns, &peer_ns] {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "0").unwrap();
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "0").unwrap();
    }
    lab::veth(&node_ns, "eth0", &["192.0.2.2/24", "2001:db8::2/64"], &peer_ns, "eth0", &["192.0.2.1/24", "2001:db8::1/64"]).unwrap();
    let gobgp = GoBgp::start(
        &peer_ns,
        65001,
        "192.0.2.1",
        &[
            GoBgpNeighbor::new("2001:db8::2", 65000).families(&["ipv6-unicast"]),
            GoBgpNeighbor::new("192.0.2.2", 65000).families(&["ipv4-unicast", "ipv6-unicast"]),
        ],
    )
    .unwrap();
    let node = Frr::start(version, &node_ns).unwrap();
    let file = input(
        &tmp,
        "v6.yaml",
        &frr_configuration(
            "v6",
            "    routers:
    - asn: 65000
      id: 192.0.2.2
      prefixes: [198.51.100.0/24, \"2001:db8:100::/64\", \"2001:db8:101::/64\"]
      neighbors:
      - address: 2001:db8::1
        asn: 65001
        toAdvertise: {allowed: {prefixes: [\"2001:db8:100::/64\"]}}
      - address: 192.0.2.1
        asn: 65001
        dualStackAddressFamily: true
        toAdvertise: {allowed: {prefixes: [198.51.100.0/24, \"2001:db8:101::/64\"]}}
",
        ),
    );
    applied(&apply(&node, &file));
    let all = || {
        format!(
            "=== node (FRR {})\n{}\n{}\n--- gobgp\n{}\n{}\n{}",
            version.label(),
            node.running_config().unwrap_or_default(),
            node.vtysh(&["show bgp vrf all summary"]).unwrap_or_default(),
            gobgp.cli(&["neighbor"]).unwrap_or_default(),
            gobgp.cli(&["global", "rib", "-a", "ipv6"]).unwrap_or_default(),
            gobgp.log()
        )
    };
    assert!(
        lab::wait_until(Duration::from_secs(30), || {
            gobgp.received_prefixes("2001:db8::2").is_ok_and(|p| p == set(&["2001:db8:100::/64"]))
                && gobgp.received_prefixes("192.0.2.2").is_ok_and(|p| p == set(&["198.51.100.0/24", "2001:db8:101::/64"]))
        }),
        "GoBGP did not receive the expected prefixes per session: v6 {:?}, dual {:?}\n{}",
        gobgp.received_prefixes("2001:db8::2"),
        gobgp.received_prefixes("192.0.2.2"),
        all()
    );
    let next_hops = |neighbor: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = gobgp.adj_in(neighbor).unwrap_or_default().into_iter().map(|r| (r.prefix, r.nexthop.unwrap_or_default())).collect();
        v.sort();
        v
    };
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(next_hops("2001:db8::2"), pairs(&[("2001:db8:100::/64", "2001:db8::2")]), "{}", all());
    assert_eq!(next_hops("192.0.2.2"), pairs(&[("198.51.100.0/24", "192.0.2.2"), ("2001:db8:101::/64", "2001:db8::2")]), "{}", all());
    eprintln!("dual_stack_ipv6_next_hop FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}
