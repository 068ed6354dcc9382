//! withAsPathPrepend live: a gobgpd peer receives the LoadBalancer /32 with the node's ASN
//! prepended as asked, with its community; changing the count, removing the prepend and adding
//! it again changes the path at the peer without resetting the session (FRR's counters of
//! dropped connections stay, the session's uptime keeps growing). Prints how long after each
//! apply the peer saw the new path.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use frr_composer::lab::topology::{Lab, Options, PeerKind};
use frr_composer::offline::{desired, NodeArgs};
use lab::{FrrVersion, Req, TempDir};

const LB: &str = "198.51.100.181/32";

/// The node's object with `count` prepends (0: no withAsPathPrepend).
fn object(count: u32) -> String {
    let prepend = if count == 0 { String::new() } else { format!("          withAsPathPrepend:\n          - {{asPathPrepend: {count}, prefixes: [{LB}]}}\n") };
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1
kind: FRRConfiguration
metadata: {{name: metallb-lab, namespace: frr-k8s-system}}
spec:
  bgp:
    routers:
    - asn: 64512
      neighbors:
      - address: 192.0.2.1
        asn: 65001
        toAdvertise:
          allowed:
            prefixes: [{LB}]
{prepend}          withCommunity:
          - {{prefixes: [{LB}], community: \"65000:181\"}}
      prefixes: [{LB}]
"
    )
}

fn render(tmp: &TempDir, count: u32) -> (frr_composer::core::model::Model, String) {
    let f = tmp.write(&format!("prepend-{count}.yaml"), &object(count)).unwrap();
    let args = NodeArgs { labels: vec!["x=y".into()], ..Default::default() };
    let mut err = Vec::new();
    desired(&[f], &args, &mut err).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&err)))
}

/// The AS path and communities with which the peer holds the LoadBalancer address.
fn at_peer(lab: &Lab) -> Option<(Vec<u32>, Vec<String>)> {
    let r = lab.report().ok()?;
    let route = r.peers.first()?.received.iter().find(|x| x.prefix == LB)?.clone();
    Some((route.as_path, route.communities))
}

/// (connections dropped, session uptime in ms) as the node's FRR counts them.
fn session(lab: &Lab) -> (u64, u64) {
    let v = lab.node().vtysh_json("show bgp neighbors 192.0.2.1 json").unwrap();
    let n = &v["192.0.2.1"];
    (n["connectionsDropped"].as_u64().unwrap_or(u64::MAX), n["bgpTimerUpMsec"].as_u64().unwrap_or(0))
}

fn prepend_changes_without_reset(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version), Req::GoBgp]) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let (model, text) = render(&tmp, 2);
    let opts = Options { frr_root: version.root(), peers: PeerKind::Gobgp, announce: Vec::new() };
    let mut lab = Lab::build(&model, &text, &opts, &mut |_| {}).unwrap();
    lab.converge(Duration::from_secs(60), Duration::from_millis(1500), Duration::from_millis(500)).unwrap();
    let path = |n: u32| vec![64512u32; n as usize + 1];
    assert_eq!(at_peer(&lab), Some((path(2), vec!["65000:181".to_string()])), "FRR {}: the first path", version.label());
    let (dropped, mut uptime) = session(&lab);
    let mut seen = Vec::new();
    for count in [5, 0, 1] {
        let (_, text) = render(&tmp, count);
        let report = lab.apply(&text).unwrap();
        assert!(report.commands > 0, "nothing sent for {count}");
        let applied = Instant::now();
        let want = (path(count), vec!["65000:181".to_string()]);
        let ok = lab::wait_until(Duration::from_secs(30), || at_peer(&lab).as_ref() == Some(&want));
        assert!(ok, "{}", lab.diag(&format!("FRR {}: prepend {count}: the peer holds {:?}, expected {want:?}", version.label(), at_peer(&lab))));
        seen.push(format!("{count}: {:.1} s", applied.elapsed().as_secs_f64()));
        let (d, u) = session(&lab);
        assert_eq!(d, dropped, "FRR {}: prepend {count} reset the session", version.label());
        assert!(u > uptime, "FRR {}: the session's uptime went from {uptime} to {u} ms", version.label());
        uptime = u;
    }
    eprintln!("FRR {}: the peer saw the new path after the apply, by prepend count: {}", version.label(), seen.join(", "));
}

crate::frr_versions!(prepend_changes_without_reset);
