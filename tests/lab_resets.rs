//! `frr-composer diff`'s predictions against what FRR and its peers do, in the lab: generated
//! change pairs (the node's object before and after: each step changes every neighbor in one
//! of several ways, chosen by a seeded generator) are applied one after the other to a live
//! FRR with four gobgpd peers, and for every step
//! - the commands `frr::apply::commands` predicts are the commands the applier sent,
//! - the sessions `core::impact` says reset are exactly those FRR dropped (its per-neighbor
//!   `connectionsDropped` counter), with no miss and no false alarm,
//! - what each peer holds afterwards is what the model after the change advertises to it (the
//!   predicted withdrawals are gone, the predicted announcements are there).
//!
//! The changes: ebgpMultiHop on or off and dualStackAddressFamily on or off (the address
//! families), which reset the session; hold and keepalive times, a prefix advertised or
//! withdrawn, a community or a local preference on a prefix, allowAsIn, receiving everything or
//! nothing, which do not. 34 steps per FRR version (102 pairs on the three);
//! `FRR_COMPOSER_RESET_STEPS` changes the count. Then the changes whose reset keeps the session
//! down, as the peers are not told (remote AS, local AS, password, port) and update-source,
//! each on one neighbor and put back: FRR drops exactly that session, as predicted, and the
//! commands are again the predicted ones.
//!
//! Needs root, `ip netns`, FRR and gobgpd (.ci/install-frr.sh): skipped without them, except
//! under CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use frr_composer::core::model::Model;
use frr_composer::lab::topology::{Lab, Options, PeerKind};
use frr_composer::offline::{desired, NodeArgs};
use lab::{FrrVersion, Req, TempDir};

const PEERS: usize = 4;
const POOL: usize = 8;

/// One neighbor's settings in a step.
#[derive(Clone, Debug)]
struct Peer {
    multihop: bool,
    /// A change that breaks the session (phase 2): an index into `BREAKING`.
    breaking: Option<usize>,
    dual_stack: bool,
    hold: u32,
    prefixes: BTreeSet<usize>,
    community: Option<usize>,
    local_pref: Option<usize>,
    allow_as_in: bool,
    receive_all: bool,
}

fn address(i: usize) -> String {
    format!("192.0.2.{}", 1 + i)
}

fn prefix(p: usize) -> String {
    format!("198.51.100.{}/32", 10 + p)
}

/// The node's object for these neighbors. FRR retries a connection every second (after a
/// reset it would otherwise wait for its 120 s connect timer or the peer's next attempt), and
/// applies a changed policy within a second (a raw `bgp route-map delay-timer 1`: by default
/// it waits up to 5 s, and 0 turns the update off), so that a step takes seconds, not tens.
fn object(peers: &[Peer]) -> String {
    let all: BTreeSet<usize> = peers.iter().flat_map(|p| p.prefixes.iter().copied()).collect();
    let list = |s: &BTreeSet<usize>| s.iter().map(|p| prefix(*p)).collect::<Vec<_>>().join(", ");
    let mut neighbors = String::new();
    for (i, p) in peers.iter().enumerate() {
        neighbors.push_str(&format!(
            "      - address: {}\n        asn: {}\n        holdTime: {}s\n        keepaliveTime: {}s\n        connectTime: 1s\n",
            address(i),
            65001 + i,
            p.hold,
            p.hold / 3
        ));
        match p.breaking {
            Some(0) => neighbors = neighbors.replace(&format!("asn: {}\n", 65001 + i), &format!("asn: {}\n", 65101 + i)),
            Some(1) => neighbors.push_str("        localASN: 64999\n"),
            Some(2) => neighbors.push_str("        password: lab-reset-pw\n"),
            Some(3) => neighbors.push_str("        port: 1179\n"),
            Some(4) => neighbors.push_str("        sourceaddress: 192.0.2.254\n"),
            _ => {}
        }
        if p.multihop {
            neighbors.push_str("        ebgpMultiHop: true\n");
        }
        if p.dual_stack {
            neighbors.push_str("        dualStackAddressFamily: true\n");
        }
        if p.allow_as_in {
            neighbors.push_str("        allowAsIn: \"2\"\n");
        }
        neighbors.push_str(&format!("        toAdvertise:\n          allowed:\n            prefixes: [{}]\n", list(&p.prefixes)));
        if let Some(c) = p.community.filter(|c| p.prefixes.contains(c)) {
            neighbors.push_str(&format!("          withCommunity:\n          - {{community: \"65000:{c}\", prefixes: [{}]}}\n", prefix(c)));
        }
        if let Some(l) = p.local_pref.filter(|l| p.prefixes.contains(l)) {
            neighbors.push_str(&format!("          withLocalPref:\n          - {{localPref: {}, prefixes: [{}]}}\n", 100 + l, prefix(l)));
        }
        if p.receive_all {
            neighbors.push_str("        toReceive: {allowed: {mode: all}}\n");
        }
    }
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: generated, namespace: frr-k8s-system}}\nspec:\n  raw:\n    rawConfig: \"bgp route-map delay-timer 1\"\n  bgp:\n    routers:\n    - asn: 64512\n      prefixes: [{}]\n      neighbors:\n{neighbors}",
        list(&all)
    )
}

/// Phase 2: the changes that reset a session and, but for the last, keep it down (the peers
/// are not told): remote AS, local AS, password, port, update-source.
const BREAKING: [&str; 5] = ["remote AS", "local AS", "password", "port", "update-source"];

/// A small seeded generator (the steps are the same on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// One change to `p`, named.
fn change(p: &mut Peer, rng: &mut Rng) -> &'static str {
    match rng.next(10) {
        9 => {
            p.multihop = !p.multihop;
            "ebgpMultiHop"
        }
        0 | 1 => {
            p.dual_stack = !p.dual_stack;
            "dualStackAddressFamily"
        }
        2 => {
            p.hold = [30, 60, 90, 180][rng.next(4)];
            "timers"
        }
        3 | 4 => {
            let x = rng.next(POOL);
            if !p.prefixes.remove(&x) {
                p.prefixes.insert(x);
            }
            "a prefix"
        }
        5 => {
            p.community = if p.community.is_some() { None } else { p.prefixes.iter().next().copied() };
            "a community"
        }
        6 => {
            p.local_pref = if p.local_pref.is_some() { None } else { p.prefixes.iter().last().copied() };
            "a local preference"
        }
        7 => {
            p.allow_as_in = !p.allow_as_in;
            "allowAsIn"
        }
        _ => {
            p.receive_all = !p.receive_all;
            "toReceive"
        }
    }
}

fn render(tmp: &TempDir, step: usize, peers: &[Peer]) -> (Model, String) {
    let f = tmp.write(&format!("step-{step}.yaml"), &object(peers)).unwrap();
    let args = NodeArgs { labels: vec!["x=y".into()], ..Default::default() };
    let mut err = Vec::new();
    desired(&[f], &args, &mut err).unwrap_or_else(|| panic!("step {step}: {}\n{}", String::from_utf8_lossy(&err), object(peers)))
}

/// FRR's count of dropped connections, by neighbor.
fn dropped(lab: &Lab) -> BTreeMap<String, u64> {
    let v = lab.node().vtysh_json("show bgp neighbors json").unwrap_or_default();
    (0..PEERS).map(|i| (address(i), v[address(i)]["connectionsDropped"].as_u64().unwrap_or(0))).collect()
}

/// What each peer holds from the node, by neighbor address.
fn held(lab: &Lab) -> BTreeMap<String, BTreeSet<String>> {
    let Ok(r) = lab.report() else { return BTreeMap::new() };
    r.peers.iter().map(|p| (p.neighbor.clone(), p.received.iter().map(|r| r.prefix.clone()).collect())).collect()
}

/// What `model` advertises to each neighbor.
fn advertised(model: &Model) -> BTreeMap<String, BTreeSet<String>> {
    model.routers.iter().flat_map(|r| &r.neighbors).map(|n| (n.peer.to_string(), n.outbound.advertise.keys().map(|p| p.to_string()).collect())).collect()
}

/// The neighbors `impact` says reset or go down.
fn predicted_resets(before: &Model, after: &Model) -> BTreeSet<String> {
    frr_composer::core::impact::impact(before, after).disrupted().map(|s| s.split(' ').next().unwrap_or_default().to_string()).collect()
}

fn established(lab: &Lab) -> bool {
    lab.report().is_ok_and(|r| r.peers.len() == PEERS && r.peers.iter().all(|p| p.state == "Established"))
}

fn predictions_hold(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version), Req::GoBgp]) {
        return;
    }
    let v = version.label();
    let steps: usize = std::env::var("FRR_COMPOSER_RESET_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(34);
    let tmp = TempDir::new().unwrap();
    let mut peers: Vec<Peer> = (0..PEERS)
        .map(|i| Peer {
            multihop: false,
            breaking: None,
            dual_stack: false,
            hold: 90,
            prefixes: [i, (i + 1) % POOL].into(),
            community: None,
            local_pref: None,
            allow_as_in: false,
            receive_all: false,
        })
        .collect();
    let (mut model, mut text) = render(&tmp, 0, &peers);
    let opts = Options { frr_root: version.root(), peers: PeerKind::Gobgp, announce: Vec::new() };
    let mut lab = Lab::build(&model, &text, &opts, &mut |_| {}).unwrap();
    lab.converge(Duration::from_secs(60), Duration::from_millis(1500), Duration::from_millis(500)).unwrap();
    let mut rng = Rng(0x5eed_0000 + version.label().len() as u64);
    let (mut resets_seen, mut quiet_seen) = (0, 0);
    let started = Instant::now();
    for step in 1..=steps {
        let kinds: Vec<&str> = peers.iter_mut().map(|p| change(p, &mut rng)).collect();
        let (next_model, next_text) = render(&tmp, step, &peers);
        let what = format!("FRR {v}, step {step} ({kinds:?})");
        // predicted
        let commands = frr_composer::frr::apply::commands(&text, &next_text);
        let resets = predicted_resets(&model, &next_model);
        let before = dropped(&lab);
        // applied
        let report = lab.apply(&next_text).unwrap_or_else(|e| panic!("{what}: {e:#}"));
        if std::env::var_os("FRR_COMPOSER_RESET_DEBUG").is_some() {
            eprintln!("{what}: predicted resets {resets:?}\n{}", report.added.join("\n"));
        }
        assert_eq!((&report.added, &report.removed), (&commands.added, &commands.removed), "{what}: the applier sent other commands than predicted");
        // observed: back to Established (a reset takes the session down and up again), then
        // the counters
        assert!(lab::wait_until(Duration::from_secs(45), || established(&lab)), "{}", lab.diag(&format!("{what}: sessions not back")));
        let after = dropped(&lab);
        let observed: BTreeSet<String> = after.iter().filter(|(n, c)| before.get(*n).is_some_and(|b| *c > b)).map(|(n, _)| n.clone()).collect();
        assert!(observed == resets, "{}", lab.diag(&format!("{what}: FRR reset {observed:?}, predicted {resets:?}")));
        // what each peer holds: what the model advertises to it
        let want = advertised(&next_model);
        assert!(
            lab::wait_until(Duration::from_secs(30), || held(&lab) == want),
            "{}",
            lab.diag(&format!("{what}: the peers hold {:?}, the model advertises {want:?}", held(&lab)))
        );
        resets_seen += resets.len();
        quiet_seen += PEERS - resets.len();
        model = next_model;
        text = next_text;
    }
    // phase 2: each breaking change on one neighbor (the others unchanged): predicted as a
    // reset of that session alone, FRR drops exactly that one; then put back
    for (k, why) in BREAKING.iter().enumerate() {
        let j = k % PEERS;
        for breaking in [Some(k), None] {
            peers[j].breaking = breaking;
            let step = steps + 1 + 2 * k + usize::from(breaking.is_none());
            let (next_model, next_text) = render(&tmp, step, &peers);
            let what = format!("FRR {v}, {why} on {} {}", address(j), if breaking.is_some() { "set" } else { "put back" });
            let commands = frr_composer::frr::apply::commands(&text, &next_text);
            let resets = predicted_resets(&model, &next_model);
            assert_eq!(resets, BTreeSet::from([address(j)]), "{what}: the table does not predict this reset");
            let before = dropped(&lab);
            let was_up = established(&lab);
            let report = lab.apply(&next_text).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!((&report.added, &report.removed), (&commands.added, &commands.removed), "{what}: the applier sent other commands than predicted");
            if was_up {
                // an established session: FRR drops it, and only it
                assert!(
                    lab::wait_until(Duration::from_secs(15), || dropped(&lab).get(&address(j)) > before.get(&address(j))),
                    "{what}: FRR did not reset the session"
                );
                std::thread::sleep(Duration::from_secs(1));
                let after = dropped(&lab);
                let others: Vec<&String> = after.iter().filter(|(n, c)| **n != address(j) && before.get(*n) != Some(*c)).map(|(n, _)| n).collect();
                assert!(others.is_empty(), "{what}: FRR also reset {others:?}");
                resets_seen += 1;
            }
            if breaking.is_none() || *why == "update-source" {
                assert!(lab::wait_until(Duration::from_secs(45), || established(&lab)), "{}", lab.diag(&format!("{what}: sessions not back")));
            }
            model = next_model;
            text = next_text;
        }
    }
    eprintln!(
        "FRR {v}: {steps} change pairs x {PEERS} neighbors and {} breaking changes in {:.0} s: {resets_seen} predicted resets observed, {quiet_seen} sessions predicted and seen to stay up",
        BREAKING.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(resets_seen > 0 && quiet_seen > 0, "the generated changes must include both kinds");
}

crate::frr_versions!(predictions_hold);
