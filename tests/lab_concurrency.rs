//! Status reads while applying: the agent polls BGP sessions and reads the running
//! configuration while changes are being applied. FRR 10.3's mgmtd mixes up concurrent vtysh
//! sessions (a batch sent next to other sessions' `show` commands reached zebra with a
//! corrupted prefix-list value, after which every commit hung for mgmtd's 10-minute backend
//! timeout), so frr-composer gives each FRR one vtysh at a time. Here two threads read state
//! as fast as they can while the applier adds and removes a prefix: every apply must
//! succeed and be verified, on FRR 10.3 and 8.4.
//!
//! Needs root, `ip netns` and FRR (.ci/install-frr.sh): skipped without them, except under
//! CI=true, where it fails.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use frr_composer::frr::apply::Applier;
use lab::{Frr, FrrVersion, Netns, Req};

const NEIGHBORS: usize = 10;
const PREFIXES: usize = 500;
const ROUNDS: usize = 40;

/// A MetalLB-like configuration (one router, neighbors advertising every prefix), rendered
/// by frr-composer, with `extra` prefixes added.
fn rendered(extra: usize) -> String {
    let prefixes: Vec<String> = (0..PREFIXES + extra).map(|i| format!("198.51.{}.{}/32", 100 + i / 250, i % 250)).collect();
    let mut y = String::from("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: services\n  namespace: metallb-system\nspec:\n  bgp:\n    routers:\n    - asn: 64512\n      prefixes:\n");
    for p in &prefixes {
        let _ = writeln!(y, "      - {p}");
    }
    y.push_str("      neighbors:\n");
    for j in 0..NEIGHBORS {
        let _ = write!(
            y,
            "      - address: 192.0.2.{}\n        asn: 64513\n        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n",
            11 + j
        );
        for p in &prefixes {
            let _ = writeln!(y, "            - {p}");
        }
    }
    let (objects, errors) = frr_composer::input::parse_documents(&y, "services.yaml");
    assert!(errors.is_empty(), "{errors:?}");
    let args = frr_composer::offline::NodeArgs { hostname: Some("node".into()), ..Default::default() };
    let c = frr_composer::offline::compose_objects(&args, &objects, &mut Vec::new()).unwrap();
    frr_composer::render::render(&c.model).unwrap()
}

fn reads_while_applying(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let ns = Netns::new().unwrap();
    let frr = Frr::start(version, &ns).unwrap();
    let (base, more) = (rendered(0), rendered(1));
    let mut applier = Applier::new(frr.location());
    applier.apply(&base).unwrap_or_else(|e| panic!("initial apply: {e}\n{}", frr.logs()));

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = ["show bgp vrf all neighbors json", "show running-config"]
        .into_iter()
        .map(|cmd| {
            let (loc, stop) = (frr.location(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    loc.show(cmd).unwrap_or_else(|e| panic!("{cmd}: {e}"));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for round in 0..ROUNDS {
        for (what, text) in [("add", &more), ("remove", &base)] {
            let t = Instant::now();
            let r = applier.apply(text).unwrap_or_else(|e| panic!("round {round}, {what}: {e}\n{}", frr.logs()));
            assert_eq!(r.commands, 2, "round {round}, {what}: one entry of the shared list and one network line");
            slowest = slowest.max(t.elapsed());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    eprintln!("{} applies in {:.1?} (slowest {slowest:.0?}), reads meanwhile: {reads:?}", 2 * ROUNDS, started.elapsed());
    assert!(reads.iter().all(|n| *n >= ROUNDS), "the readers hardly ran: {reads:?}");
    // a no-change apply still costs no FRR command
    assert_eq!(applier.apply(&base).unwrap().commands, 0);
}

crate::frr_versions!(reads_while_applying);
