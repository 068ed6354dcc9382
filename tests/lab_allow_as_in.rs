//! `allowAsIn` proven live on FRR 8.4 and 10.3, configured only by `frr-composer apply`: a
//! GoBGP peer (AS 65001) announces routes whose AS path holds the node's own AS (65000), over
//! one dual-stack session (IPv4 transport, IPv4 and IPv6 unicast):
//!
//! - 203.0.113.0/25, path `65001 65000`: the node's AS once, as the origin;
//! - 203.0.113.128/25, path `65001 65000 65000 65002`: twice, not as the origin;
//! - 2001:db8:300::/64, path `65001 65000`: once, as the origin (IPv6 unicast);
//! - 198.51.100.0/24, path `65001`: a control route, always accepted.
//!
//! Unset and `none` refuse the first three (FRR's default), `origin` and `"1"` accept the first
//! and the third, `"2"` all of them, and unsetting it again withdraws them.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Frr, FrrVersion, GoBgp, GoBgpNeighbor, Netns, Req, TempDir};

const CONTROL: &str = "198.51.100.0/24";
const ORIGIN_V4: &str = "203.0.113.0/25";
const TWICE_V4: &str = "203.0.113.128/25";
const ORIGIN_V6: &str = "2001:db8:300::/64";

fn config(allow_as_in: Option<&str>) -> String {
    let line = allow_as_in.map(|v| format!("\n            allowAsIn: \"{v}\"")).unwrap_or_default();
    format!(
        "{}apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata:
  name: allow-as-in
  namespace: lab
spec:
  bgp:
    routers:
      - asn: 65000
        id: 192.0.2.2
        neighbors:
          - address: 192.0.2.1
            asn: 65001
            dualStackAddressFamily: true{line}
            toReceive:
              allowed:
                mode: all
",
        lab::NODE_DOC
    )
}

/// Prefixes in the node's BGP table (IPv4 and IPv6 unicast).
fn node_prefixes(frr: &Frr) -> BTreeSet<String> {
    let mut all = frr.bgp_prefixes(false).unwrap_or_default();
    all.extend(frr.bgp_prefixes(true).unwrap_or_default());
    all
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn allow_as_in_live(version: FrrVersion) {
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
    let gobgp = GoBgp::start(&peer_ns, 65001, "192.0.2.1", &[GoBgpNeighbor::new("192.0.2.2", 65000).families(&["ipv4-unicast", "ipv6-unicast"])]).unwrap();
    gobgp.add_route(CONTROL, "192.0.2.1", &[]).unwrap();
    gobgp.add_route(ORIGIN_V4, "192.0.2.1", &["aspath", "65000"]).unwrap();
    gobgp.add_route(TWICE_V4, "192.0.2.1", &["aspath", "65000,65000,65002"]).unwrap();
    gobgp.add_route(ORIGIN_V6, "2001:db8::1", &["aspath", "65000"]).unwrap();
    let node = Frr::start(version, &node_ns).unwrap();

    let diag = || {
        format!(
            "--- node running config\n{}\n--- node tables\n{}\n{}\n--- gobgp rib\n{}\n{}\n--- gobgp log\n{}",
            node.running_config().unwrap_or_default(),
            node.vtysh(&["show bgp ipv4 unicast"]).unwrap_or_default(),
            node.vtysh(&["show bgp ipv6 unicast"]).unwrap_or_default(),
            gobgp.cli(&["global", "rib"]).unwrap_or_default(),
            gobgp.cli(&["global", "rib", "-a", "ipv6"]).unwrap_or_default(),
            gobgp.log()
        )
    };
    let steps: [(Option<&str>, &[&str], &str); 6] = [
        (None, &[CONTROL], ""),
        (Some("none"), &[CONTROL], ""),
        (Some("origin"), &[CONTROL, ORIGIN_V4, ORIGIN_V6], "allowas-in origin"),
        (Some("1"), &[CONTROL, ORIGIN_V4, ORIGIN_V6], "allowas-in 1"),
        (Some("2"), &[CONTROL, ORIGIN_V4, TWICE_V4, ORIGIN_V6], "allowas-in 2"),
        (None, &[CONTROL], ""),
    ];
    for (value, want, line) in steps {
        let file = tmp.write("c.yaml", &config(value)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_frr-composer")).arg("apply").arg(&file).args(["--node", "lab-node"]).args(node.cli_args()).output().unwrap();
        assert!(out.status.success(), "apply allowAsIn={value:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // What FRR runs: the line in both unicast families, or in none.
        let running = node.running_config().unwrap();
        let count = running.lines().filter(|l| l.trim_start().starts_with("neighbor 192.0.2.1 allowas-in")).count();
        if line.is_empty() {
            assert_eq!(count, 0, "allowAsIn={value:?} left an allowas-in line:\n{running}");
        } else {
            let exact = running.lines().filter(|l| l.trim() == format!("neighbor 192.0.2.1 {line}")).count();
            assert_eq!((count, exact), (2, 2), "allowAsIn={value:?}: want `{line}` in ipv4 and ipv6 unicast:\n{running}");
        }
        // What FRR accepts: the control route first (GoBGP has sent its table), then exactly `want`.
        let want = set(want);
        let reached = lab::wait_until(Duration::from_secs(40), || node_prefixes(&node) == want);
        assert!(reached, "allowAsIn={value:?}: the node has {:?}, want {want:?}\n{}", node_prefixes(&node), diag());
        // Refused routes stay refused (not merely late).
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(node_prefixes(&node), want, "allowAsIn={value:?}: the table changed after settling\n{}", diag());
    }
    eprintln!("allow_as_in FRR {}: {:.1} s", version.label(), start.elapsed().as_secs_f64());
}

crate::frr_versions!(allow_as_in_live);
