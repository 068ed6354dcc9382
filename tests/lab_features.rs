//! Features of the frrk8s API proven live: the node is FRR (8.4 and 10.3) configured only by
//! `frr-composer apply`; the peers are FRR 8.4 routers (configured with vtysh) or GoBGP. Every
//! feature is checked by what a peer actually receives or what the node actually accepts:
//!
//! - policy: filtered and `mode: all` advertisement, standard and large communities, local
//!   preference (iBGP), next hop, receive selectors with `ge`/`le`, `--always-block`;
//! - imports between VRFs (a Linux VRF `red` in the node's namespace, where the kernel has one);
//! - BFD with a profile, seen up on both sides and by `frr-composer status`;
//! - passwords from a Secret (TCP-MD5): right password up, wrong password down, never printed;
//! - unnumbered peering over an interface (IPv6 link-local, dynamic ASN);
//! - an IPv6 session and a dual-stack session over IPv4 transport.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab::{Bridge, Frr, FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_frr-composer")
}

/// `frr-composer apply FILE --node lab-node <frr args> EXTRA...` with FILE = the Node object
/// followed by `docs`.
fn apply(frr: &Frr, tmp: &TempDir, file: &str, docs: &str, extra: &[&str]) -> Output {
    let p = tmp.write(file, &format!("{}{docs}", lab::NODE_DOC)).unwrap();
    apply_files(frr, &[&p], extra)
}

fn apply_files(frr: &Frr, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.arg("apply").args(inputs).args(["--node", "lab-node"]).args(frr.cli_args()).args(extra);
    c.output().unwrap()
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

fn require(version: FrrVersion, gobgp: bool) -> bool {
    let mut reqs = vec![Req::Frr(version), Req::Frr(FrrVersion::V8)];
    if gobgp {
        reqs.push(Req::GoBgp);
    }
    lab::require(&reqs)
}

/// An FRR 8.4 peer in `ns`, configured with `conf` (vtysh -f). Route-map changes take effect at
/// once (`bgp route-map delay-timer 0`).
fn frr_peer(ns: &Netns, conf: &str) -> Frr {
    let f = Frr::start(FrrVersion::V8, ns).unwrap();
    f.load_config_file(&format!("bgp route-map delay-timer 0\n{conf}")).unwrap_or_else(|e| panic!("peer configuration refused: {e}"));
    f
}

fn enable_ipv6(ns: &Netns) {
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "0").unwrap();
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "0").unwrap();
}

/// The paths of `prefix` in an FRR's BGP table (`show bgp ipv4|ipv6 unicast PREFIX json`).
fn frr_paths(frr: &Frr, vrf: Option<&str>, prefix: &str) -> Vec<Value> {
    let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    let vrf = vrf.map(|v| format!("vrf {v} ")).unwrap_or_default();
    frr.vtysh_json(&format!("show bgp {vrf}{fam} unicast {prefix} json"))
        .ok()
        .and_then(|v| v.get("paths").and_then(|p| p.as_array()).cloned())
        .unwrap_or_default()
}

/// Prefixes in an FRR's BGP table of `vrf`.
fn frr_prefixes(frr: &Frr, vrf: &str, v6: bool) -> BTreeSet<String> {
    let fam = if v6 { "ipv6" } else { "ipv4" };
    frr.vtysh_json(&format!("show bgp vrf {vrf} {fam} unicast json"))
        .ok()
        .and_then(|v| v.get("routes").and_then(|r| r.as_object()).map(|m| m.keys().cloned().collect()))
        .unwrap_or_default()
}

fn established(frr: &Frr, peer: &str) -> bool {
    frr.bgp_neighbor_state(peer).is_ok_and(|s| s == "Established")
}

/// Diagnostics of an FRR: running configuration, BGP summary and tables.
fn diag(name: &str, frr: &Frr) -> String {
    format!(
        "=== {name} (FRR {})\n{}\n{}\n{}\n{}\n",
        frr.version().label(),
        frr.running_config().unwrap_or_default(),
        frr.vtysh(&["show bgp vrf all summary"]).unwrap_or_default(),
        frr.vtysh(&["show bgp vrf all ipv4 unicast"]).unwrap_or_default(),
        frr.vtysh(&["show bgp vrf all ipv6 unicast"]).unwrap_or_default(),
    )
}

crate::frr_versions!(policy, vrf_imports, bfd, password_secret, unnumbered, ipv6_and_dual_stack, bfd_defaults);

/// A BFD profile whose values equal FRR's defaults (300/300 ms, multiplier 3): FRR does not
/// print default values in its running configuration, so apply's verification once reported
/// them missing and exited 1.
fn bfd_defaults(version: FrrVersion) {
    bfd_with(version, 300, 300, 3)
}

// ------------------------------------------------------------------------------ 1. policy

/// One segment: node 192.0.2.10 (AS 65000), eBGP peer `ext` 192.0.2.11 (AS 65001), iBGP
/// peer `int` 192.0.2.12 (AS 65000), both FRR.
///
/// - ext gets only the two listed prefixes of the router's three, 198.51.100.0/26 with
///   community 65000:100, 198.51.100.64/26 with large community 1:2:3, both with next hop
///   192.0.2.99 (nextHop.ipv4);
/// - int (mode all) gets all three, 198.51.100.128/26 with LOCAL_PREF 250, the others 100;
/// - ext advertises 203.0.113.0/24, /26 and /28; the selector 203.0.113.0/24 ge 25 le 27
///   lets only the /26 in;
/// - int advertises 203.0.113.128/25 and 203.0.113.192/26 and the node receives all from it,
///   but `--always-block 203.0.113.192/26` refuses the /26.
fn policy(version: FrrVersion) {
    if !require(version, false) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let ext_ns = Netns::new().unwrap();
    let int_ns = Netns::new().unwrap();
    let mut br = Bridge::new().unwrap();
    br.attach(&node_ns, "eth0", &["192.0.2.10/24"]).unwrap();
    br.attach(&ext_ns, "eth0", &["192.0.2.11/24"]).unwrap();
    br.attach(&int_ns, "eth0", &["192.0.2.12/24"]).unwrap();

    let ext = frr_peer(
        &ext_ns,
        "router bgp 65001
 bgp router-id 192.0.2.11
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 192.0.2.10 remote-as 65000
 neighbor 192.0.2.10 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.0/24
  network 203.0.113.0/26
  network 203.0.113.0/28
 exit-address-family
exit
",
    );
    let int = frr_peer(
        &int_ns,
        "router bgp 65000
 bgp router-id 192.0.2.12
 no bgp network import-check
 neighbor 192.0.2.10 remote-as 65000
 neighbor 192.0.2.10 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.128/25
  network 203.0.113.192/26
 exit-address-family
exit
",
    );
    let node = Frr::start(version, &node_ns).unwrap();

    let o = apply(
        &node,
        &tmp,
        "policy.yaml",
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: policy
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 192.0.2.10
        prefixes: [198.51.100.0/26, 198.51.100.64/26, 198.51.100.128/26]
        neighbors:
          - address: 192.0.2.11
            asn: 65001
            connectTime: 1s
            toAdvertise:
              allowed:
                prefixes: [198.51.100.0/26, 198.51.100.64/26]
              withCommunity:
                - community: 65000:100
                  prefixes: [198.51.100.0/26]
                - community: large:1:2:3
                  prefixes: [198.51.100.64/26]
              nextHop:
                ipv4: 192.0.2.99
            toReceive:
              allowed:
                prefixes:
                  - prefix: 203.0.113.0/24
                    ge: 25
                    le: 27
          - address: 192.0.2.12
            asn: 65000
            connectTime: 1s
            toAdvertise:
              allowed:
                mode: all
              withLocalPref:
                - localPref: 250
                  prefixes: [198.51.100.128/26]
            toReceive:
              allowed:
                mode: all
",
        &["--always-block", "203.0.113.192/26"],
    );
    applied(&o);
    let all = || format!("{}{}{}", diag("node", &node), diag("ext", &ext), diag("int", &int));

    // ext: only the listed prefixes, with their communities and the configured next hop.
    let ext_own = set(&["203.0.113.0/24", "203.0.113.0/26", "203.0.113.0/28"]);
    let ext_want: BTreeSet<String> = ext_own.iter().cloned().chain(set(&["198.51.100.0/26", "198.51.100.64/26"])).collect();
    assert!(
        lab::wait_until(Duration::from_secs(30), || ext.bgp_prefixes(false).is_ok_and(|p| p == ext_want)),
        "ext did not receive exactly the two listed prefixes\n{}",
        all()
    );
    let p0 = frr_paths(&ext, None, "198.51.100.0/26");
    let p64 = frr_paths(&ext, None, "198.51.100.64/26");
    assert_eq!(p0.len(), 1, "{p0:?}");
    assert_eq!(p64.len(), 1, "{p64:?}");
    let community = |p: &Value| p["community"]["string"].as_str().unwrap_or("").to_string();
    let large = |p: &Value| p["largeCommunity"]["string"].as_str().unwrap_or("").to_string();
    let nexthop = |p: &Value| p["nexthops"][0]["ip"].as_str().unwrap_or("").to_string();
    assert_eq!(community(&p0[0]), "65000:100", "198.51.100.0/26 at ext: {}", p0[0]);
    assert_eq!(large(&p0[0]), "", "198.51.100.0/26 at ext: {}", p0[0]);
    assert_eq!(large(&p64[0]), "1:2:3", "198.51.100.64/26 at ext: {}", p64[0]);
    assert_eq!(community(&p64[0]), "", "198.51.100.64/26 at ext: {}", p64[0]);
    for p in [&p0[0], &p64[0]] {
        assert_eq!(nexthop(p), "192.0.2.99", "next hop at ext: {p}");
    }

    // int: mode all = all the router's prefixes (not the routes learned from ext), local pref.
    let int_want = set(&["198.51.100.0/26", "198.51.100.64/26", "198.51.100.128/26", "203.0.113.128/25", "203.0.113.192/26"]);
    assert!(
        lab::wait_until(Duration::from_secs(30), || int.bgp_prefixes(false).is_ok_and(|p| p == int_want)),
        "int did not receive exactly the router's three prefixes\n{}",
        all()
    );
    let local_pref = |p: &Value| p.get("locPrf").or_else(|| p.get("localpref")).and_then(Value::as_u64);
    let lp128 = frr_paths(&int, None, "198.51.100.128/26");
    assert_eq!(local_pref(&lp128[0]), Some(250), "198.51.100.128/26 at int: {}", lp128[0]);
    let lp0 = frr_paths(&int, None, "198.51.100.0/26");
    assert_eq!(local_pref(&lp0[0]), Some(100), "198.51.100.0/26 at int: {}", lp0[0]);

    // node: ge/le selector from ext, always-block against int's mode all.
    let node_want = set(&["198.51.100.0/26", "198.51.100.64/26", "198.51.100.128/26", "203.0.113.0/26", "203.0.113.128/25"]);
    assert!(
        lab::wait_until(Duration::from_secs(20), || node.bgp_prefixes(false).is_ok_and(|p| p == node_want)),
        "the node did not accept exactly 203.0.113.0/26 (selector) and 203.0.113.128/25 (always-block)\n{}",
        all()
    );
    // Both peers sent everything (their adj-out), and the node still holds exactly that.
    let adv = |f: &Frr| {
        f.vtysh_json("show bgp ipv4 unicast neighbors 192.0.2.10 advertised-routes json")
            .ok()
            .and_then(|v| v.get("advertisedRoutes").and_then(|r| r.as_object()).map(|m| m.keys().cloned().collect::<BTreeSet<String>>()))
            .unwrap_or_default()
    };
    assert!(lab::wait_until(Duration::from_secs(10), || adv(&ext).is_superset(&ext_own)), "ext advertised {:?}", adv(&ext));
    assert!(
        lab::wait_until(Duration::from_secs(10), || adv(&int).is_superset(&set(&["203.0.113.128/25", "203.0.113.192/26"]))),
        "int advertised {:?}",
        adv(&int)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(node.bgp_prefixes(false).unwrap(), node_want, "{}", all());
    eprintln!("policy FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ VRF imports

/// A Linux VRF `red` (table 10) in the node's namespace; router 65000 in the default VRF
/// originates 198.51.100.0/24 and imports `red`; router 65000 in `red` originates
/// 203.0.113.0/24 and imports `default`. FRR runs both `import vrf` lines; default's table
/// holds 203.0.113.0/24 leaked from red (this works even without a kernel VRF device), and,
/// when the kernel can create the VRF device (CONFIG_NET_VRF), red's table holds
/// 198.51.100.0/24 leaked from default. Without kernel VRF support that half is skipped with
/// a message: FRR cannot activate `red` then.
fn vrf_imports(version: FrrVersion) {
    if !require(version, false) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    // The kernel may lack VRF support (CONFIG_NET_VRF): FRR then holds the `red` instance
    // but cannot activate it, and nothing leaks. The configuration must still be accepted.
    let kernel_vrf = match node_ns.ip(&["link", "add", "red", "type", "vrf", "table", "10"]) {
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
        node_ns.link_up("red").unwrap();
    }
    let node = Frr::start(version, &node_ns).unwrap();
    if kernel_vrf {
        assert!(
            lab::wait_until(Duration::from_secs(10), || node.vtysh(&["show vrf"]).is_ok_and(|s| s.contains("red"))),
            "zebra does not see VRF red: {}",
            node.vtysh(&["show vrf"]).unwrap_or_default()
        );
    }

    let o = apply(
        &node,
        &tmp,
        "vrfs.yaml",
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: vrfs
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 198.51.100.1
        prefixes: [198.51.100.0/24]
        imports:
          - vrf: red
      - asn: 65000
        id: 203.0.113.1
        vrf: red
        prefixes: [203.0.113.0/24]
        imports:
          - vrf: default
",
        &[],
    );
    applied(&o);
    let running = node.running_config().unwrap();
    for l in ["router bgp 65000 vrf red", "  import vrf red", "  import vrf default", "  network 203.0.113.0/24"] {
        assert!(running.contains(l), "`{l}` not in FRR's running configuration:\n{running}");
    }
    // default imports red: on FRR 8.4 and 10.3 this works even when the kernel has no VRF
    // device for red. FRR 10.7 leaks nothing from a VRF it cannot activate: without a kernel
    // VRF device only the configuration can be checked there (it was, above).
    if !kernel_vrf && version == FrrVersion::V10_7 {
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(frr_prefixes(&node, "default", false), set(&["198.51.100.0/24"]), "FRR 10.7 now leaks from an inactive VRF\n{}", diag("node", &node));
        eprintln!("vrf_imports FRR 10.7: no kernel VRF device; FRR 10.7 leaks nothing from the inactive VRF red (8.4 and 10.3 do): leaking NOT checked");
        return;
    }
    assert!(
        lab::wait_until(Duration::from_secs(20), || frr_prefixes(&node, "default", false) == set(&["198.51.100.0/24", "203.0.113.0/24"])),
        "203.0.113.0/24 not leaked from red into default\n{}",
        diag("node", &node)
    );
    let leaked = frr_paths(&node, None, "203.0.113.0/24");
    assert!(leaked.len() == 1 && leaked[0]["nhVrfName"] == "red", "203.0.113.0/24 in default does not come from red: {leaked:?}");
    if !kernel_vrf {
        eprintln!(
            "vrf_imports FRR {}: red importing default NOT checked (no kernel VRF device, FRR cannot activate red); red holds {:?}",
            version.label(),
            frr_prefixes(&node, "red", false)
        );
        return;
    }
    assert!(
        lab::wait_until(Duration::from_secs(20), || frr_prefixes(&node, "red", false) == set(&["198.51.100.0/24", "203.0.113.0/24"])),
        "198.51.100.0/24 not leaked from default into red\n{}",
        diag("node", &node)
    );
    let leaked = frr_paths(&node, Some("red"), "198.51.100.0/24");
    assert!(leaked.len() == 1 && leaked[0]["nhVrfName"] == "default", "198.51.100.0/24 in red does not come from default: {leaked:?}");
    eprintln!("vrf_imports FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ 2. BFD

/// Neighbor 192.0.2.11 with bfdProfile `lab` (250/200 ms, multiplier 5) defined in the same
/// object; the FRR peer has `neighbor 192.0.2.10 bfd`. BFD is up on both sides with the
/// profile's intervals, and `frr-composer status -o json` reports bfdStatus Up for the session.
fn bfd(version: FrrVersion) {
    bfd_with(version, 250, 200, 5)
}

fn bfd_with(version: FrrVersion, rx: u64, tx: u64, mult: u64) {
    if !require(version, false) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let peer_ns = Netns::new().unwrap();
    lab::veth(&node_ns, "eth0", &["192.0.2.10/24"], &peer_ns, "eth0", &["192.0.2.11/24"]).unwrap();
    let peer = frr_peer(
        &peer_ns,
        "router bgp 65001
 bgp router-id 192.0.2.11
 no bgp ebgp-requires-policy
 neighbor 192.0.2.10 remote-as 65000
 neighbor 192.0.2.10 timers connect 1
 neighbor 192.0.2.10 bfd
exit
",
    );
    let node = Frr::start(version, &node_ns).unwrap();
    let o = apply(
        &node,
        &tmp,
        "bfd.yaml",
        &format!(
            "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: bfd
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 192.0.2.10
        neighbors:
          - address: 192.0.2.11
            asn: 65001
            connectTime: 1s
            bfdProfile: lab
    bfdProfiles:
      - name: lab
        receiveInterval: {rx}
        transmitInterval: {tx}
        detectMultiplier: {mult}
"
        ),
        &[],
    );
    applied(&o);
    let bfd_peer = |f: &Frr, addr: &str| -> Option<Value> {
        f.vtysh_json("show bfd peers json").ok()?.as_array()?.iter().find(|p| p["peer"].as_str() == Some(addr)).cloned()
    };
    let up = |f: &Frr, addr: &str| bfd_peer(f, addr).is_some_and(|p| p["status"].as_str() == Some("up"));
    let all = || {
        format!(
            "{}{}--- node bfd\n{}\n--- peer bfd\n{}",
            diag("node", &node),
            diag("peer", &peer),
            node.vtysh(&["show bfd peers"]).unwrap_or_default(),
            peer.vtysh(&["show bfd peers"]).unwrap_or_default()
        )
    };
    assert!(
        lab::wait_until(Duration::from_secs(30), || established(&node, "192.0.2.11") && up(&node, "192.0.2.11") && up(&peer, "192.0.2.10")),
        "BGP/BFD not up on both sides\n{}",
        all()
    );
    let p = bfd_peer(&node, "192.0.2.11").unwrap();
    assert_eq!(p["receive-interval"].as_u64(), Some(rx), "node's BFD peer: {p}");
    assert_eq!(p["transmit-interval"].as_u64(), Some(tx), "node's BFD peer: {p}");
    assert_eq!(p["detect-multiplier"].as_u64(), Some(mult), "node's BFD peer: {p}");
    // The peer (defaults 300/300) sees the node's intervals as the remote ones.
    let q = bfd_peer(&peer, "192.0.2.10").unwrap();
    assert_eq!(q["remote-receive-interval"].as_u64(), Some(rx), "peer's BFD peer: {q}");
    assert_eq!(q["remote-transmit-interval"].as_u64(), Some(tx), "peer's BFD peer: {q}");

    let mut c = Command::new(bin());
    c.arg("status").args(node.cli_args()).args(["-o", "json"]);
    let mut last = String::new();
    let ok = lab::wait_until(Duration::from_secs(10), || {
        let o = c.output().unwrap();
        last = text(&o);
        let Ok(v) = serde_json::from_slice::<Value>(&o.stdout) else { return false };
        let n = v["bgpNeighbors"].as_array().and_then(|a| a.iter().find(|n| n["peer"] == "192.0.2.11").cloned());
        let b = v["bfdPeers"].as_array().and_then(|a| a.iter().find(|n| n["peer"] == "192.0.2.11").cloned());
        n.is_some_and(|n| n["state"] == "Established" && n["bfdStatus"] == "Up") && b.is_some_and(|b| b["status"] == "up")
    });
    assert!(ok, "frr-composer status does not report BFD Up:\n{last}\n{}", all());
    eprintln!("bfd FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ 3. passwords

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
/// holds a wrong password: after the apply the session goes down and stays down (TCP-MD5).
/// Neither password ever appears in frr-composer's output.
fn password_secret(version: FrrVersion) {
    if !require(version, false) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let peer_ns = Netns::new().unwrap();
    lab::veth(&node_ns, "eth0", &["192.0.2.10/24"], &peer_ns, "eth0", &["192.0.2.11/24"]).unwrap();
    let peer = frr_peer(
        &peer_ns,
        &format!(
            "router bgp 65001
 bgp router-id 192.0.2.11
 no bgp ebgp-requires-policy
 neighbor 192.0.2.10 remote-as 65000
 neighbor 192.0.2.10 timers connect 1
 neighbor 192.0.2.10 password {GOOD_PW}
exit
"
        ),
    );
    let node = Frr::start(version, &node_ns).unwrap();
    let no_secret = |o: &Output| {
        let t = text(o);
        assert!(!t.contains(GOOD_PW) && !t.contains(BAD_PW), "frr-composer printed a password:\n{t}");
    };

    let o = apply(&node, &tmp, "pw.yaml", &secret_config(GOOD_PW), &[]);
    applied(&o);
    no_secret(&o);
    assert!(
        lab::wait_until(Duration::from_secs(30), || established(&node, "192.0.2.11") && peer.bgp_prefixes(false).is_ok_and(|p| p.contains("198.51.100.0/24"))),
        "no session with the right password\n{}{}",
        diag("node", &node),
        diag("peer", &peer)
    );

    let o = apply(&node, &tmp, "pw.yaml", &secret_config(BAD_PW), &[]);
    applied(&o);
    no_secret(&o);
    assert!(
        lab::wait_until(Duration::from_secs(10), || !established(&node, "192.0.2.11")),
        "the session stayed up after the password changed\n{}",
        diag("node", &node)
    );
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(10) {
        assert!(
            !established(&node, "192.0.2.11") && !established(&peer, "192.0.2.10"),
            "the session came up with a wrong password\n{}{}",
            diag("node", &node),
            diag("peer", &peer)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The running configuration holds the new password (FRR runs what was asked).
    assert!(node.running_config().unwrap().contains(&format!("neighbor 192.0.2.11 password {BAD_PW}")));
    eprintln!("password_secret FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ 4. unnumbered

/// `interface: eth0` with dynamicASN external, no IPv4 address on the link; the FRR peer has
/// `neighbor eth0 interface remote-as external`. Established over IPv6 link-local; IPv4 and
/// IPv6 prefixes exchanged both ways (IPv4 with an IPv6 next hop, RFC 8950).
fn unnumbered(version: FrrVersion) {
    if !require(version, false) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let peer_ns = Netns::new().unwrap();
    enable_ipv6(&node_ns);
    enable_ipv6(&peer_ns);
    lab::veth(&node_ns, "eth0", &[], &peer_ns, "eth0", &[]).unwrap();
    for ns in [&node_ns, &peer_ns] {
        ns.sysctl("net.ipv6.conf.eth0.disable_ipv6", "0").unwrap();
    }
    assert!(
        lab::wait_until(Duration::from_secs(5), || [&node_ns, &peer_ns]
            .iter()
            .all(|ns| ns.ip(&["-6", "addr", "show", "dev", "eth0", "scope", "link"]).is_ok_and(|s| s.contains("fe80::")))),
        "no IPv6 link-local address on eth0"
    );
    let peer = frr_peer(
        &peer_ns,
        "router bgp 65001
 bgp router-id 192.0.2.11
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor eth0 interface remote-as external
 neighbor eth0 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.0/24
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:300::/64
  neighbor eth0 activate
 exit-address-family
exit
",
    );
    let node = Frr::start(version, &node_ns).unwrap();
    let o = apply(
        &node,
        &tmp,
        "unnumbered.yaml",
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: unnumbered
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 192.0.2.10
        prefixes: [198.51.100.0/24, 2001:db8:100::/64]
        neighbors:
          - interface: eth0
            dynamicASN: external
            connectTime: 1s
            toAdvertise:
              allowed:
                mode: all
            toReceive:
              allowed:
                mode: all
",
        &[],
    );
    applied(&o);
    let all = || format!("{}{}", diag("node", &node), diag("peer", &peer));
    assert!(
        lab::wait_until(Duration::from_secs(30), || established(&node, "eth0") && established(&peer, "eth0")),
        "unnumbered session not Established\n{}",
        all()
    );
    assert!(
        lab::wait_until(Duration::from_secs(20), || {
            node.bgp_prefixes(false).is_ok_and(|p| p.contains("203.0.113.0/24"))
                && node.bgp_prefixes(true).is_ok_and(|p| p.contains("2001:db8:300::/64"))
                && peer.bgp_prefixes(false).is_ok_and(|p| p.contains("198.51.100.0/24"))
                && peer.bgp_prefixes(true).is_ok_and(|p| p.contains("2001:db8:100::/64"))
        }),
        "prefixes not exchanged over the unnumbered session\n{}",
        all()
    );
    let j = node.vtysh_json("show bgp neighbors eth0 json").unwrap();
    assert_eq!(j["eth0"]["remoteAs"].as_u64(), Some(65001), "{j}");
    eprintln!("unnumbered FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ 5. IPv6

/// GoBGP (AS 65001) at 192.0.2.1 / 2001:db8::1, the node at 192.0.2.2 / 2001:db8::2:
/// - an IPv6 neighbor 2001:db8::1 that gets only 2001:db8:100::/64;
/// - a dual-stack neighbor 192.0.2.1 (IPv4 transport) that gets 198.51.100.0/24 and
///   2001:db8:101::/64;
/// - GoBGP advertises 203.0.113.0/24 and 2001:db8:300::/64: the node accepts the IPv6 prefix
///   over both sessions and the IPv4 prefix over the dual-stack one.
fn ipv6_and_dual_stack(version: FrrVersion) {
    if !require(version, true) {
        return;
    }
    let start = Instant::now();
    let tmp = TempDir::new().unwrap();
    let node_ns = Netns::new().unwrap();
    let peer_ns = Netns::new().unwrap();
    enable_ipv6(&node_ns);
    enable_ipv6(&peer_ns);
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
    gobgp.add_route("203.0.113.0/24", "192.0.2.1", &[]).unwrap();
    gobgp.add_route("2001:db8:300::/64", "2001:db8::1", &[]).unwrap();
    let node = Frr::start(version, &node_ns).unwrap();
    let o = apply(
        &node,
        &tmp,
        "v6.yaml",
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: v6
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 192.0.2.2
        prefixes: [198.51.100.0/24, 2001:db8:100::/64, 2001:db8:101::/64]
        neighbors:
          - address: 2001:db8::1
            asn: 65001
            toAdvertise:
              allowed:
                prefixes: [2001:db8:100::/64]
            toReceive:
              allowed:
                mode: all
          - address: 192.0.2.1
            asn: 65001
            dualStackAddressFamily: true
            toAdvertise:
              allowed:
                prefixes: [198.51.100.0/24, 2001:db8:101::/64]
            toReceive:
              allowed:
                mode: all
",
        &[],
    );
    applied(&o);
    let all = || {
        format!(
            "{}--- gobgp\n{}\n{}\n{}",
            diag("node", &node),
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
    // The routes carry the node's addresses as next hops, IPv6 ones its global IPv6 address
    // (over the IPv4 session too). Read from GoBGP's JSON: this GoBGP prints MP_REACH's next
    // hop as "nexthop", which lab::BgpRoute does not parse.
    let next_hops = |neighbor: &str, fam: &str| -> Vec<(String, String)> {
        let out = gobgp.cli(&["-j", "neighbor", neighbor, "adj-in", "-a", fam]).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let mut r = Vec::new();
        for (prefix, paths) in v.as_object().into_iter().flatten() {
            for p in paths.as_array().into_iter().flatten() {
                for a in p["attrs"].as_array().into_iter().flatten() {
                    if let Some(nh) = a.get("nexthop").and_then(Value::as_str) {
                        r.push((prefix.clone(), nh.to_string()));
                    }
                }
            }
        }
        r
    };
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(next_hops("2001:db8::2", "ipv6"), pairs(&[("2001:db8:100::/64", "2001:db8::2")]));
    assert_eq!(next_hops("192.0.2.2", "ipv6"), pairs(&[("2001:db8:101::/64", "2001:db8::2")]));
    assert_eq!(next_hops("192.0.2.2", "ipv4"), pairs(&[("198.51.100.0/24", "192.0.2.2")]));
    let peers_of =
        |prefix: &str| -> BTreeSet<String> { frr_paths(&node, None, prefix).iter().filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_string)).collect() };
    assert!(
        lab::wait_until(Duration::from_secs(20), || peers_of("2001:db8:300::/64") == set(&["192.0.2.1", "2001:db8::1"])
            && peers_of("203.0.113.0/24") == set(&["192.0.2.1"])),
        "the node did not accept GoBGP's routes over both sessions: 2001:db8:300::/64 from {:?}, 203.0.113.0/24 from {:?}\n{}",
        peers_of("2001:db8:300::/64"),
        peers_of("203.0.113.0/24"),
        all()
    );
    eprintln!("ipv6_and_dual_stack FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}
