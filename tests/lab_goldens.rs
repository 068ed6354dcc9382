//! Every golden frr.conf, applied one after the other to every real FRR of the suite (8.4, 10.3, 10.7) by the
//! applier: FRR must accept every line (a semantic check, beyond `vtysh -C`), the running
//! configuration read back must match (no drift), and going from each golden to the next
//! exercises the difference engine on very different configurations. Finally the empty
//! configuration leaves nothing of ours behind.
//!
//! The FRR instance runs in a namespace with no interface up, so the neighbors in the goldens
//! (which use arbitrary addresses) are never reached: no packet leaves the namespace.

mod lab;
#[path = "support/mod.rs"]
mod support;

use std::path::Path;

use frr_composer::frr::apply::{managed, Applier};
use frr_composer::frr::conf;
use lab::{Frr, FrrVersion, Netns, Req};

fn goldens() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/render");
    let mut v: Vec<(String, String)> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(p.join("expected.conf")).ok()?;
            Some((p.file_name().unwrap().to_string_lossy().to_string(), text))
        })
        .collect();
    v.sort();
    v
}

fn all_goldens(version: FrrVersion) {
    if !lab::require(&[Req::Frr(version)]) {
        return;
    }
    let ns = Netns::new().unwrap();
    ns.ip(&["link", "set", "lo", "down"]).unwrap();
    let mut frr = Frr::start(version, &ns).unwrap();
    // bgpd exits seen, as "previous -> golden"
    let mut bgpd_exits: Vec<String> = Vec::new();
    let mut applier = Applier::new(frr.location());
    let mut failures = Vec::new();
    let cases = goldens();
    assert!(cases.len() > 40);
    let mut previous: Option<&str> = None;
    let mut previous_name: Option<&str> = None;
    for (name, text) in &cases {
        // FRR 8.4 does not know wildcard route targets (`*:N`), which FRR 10 accepts: the
        // apply must fail, and FRR must keep running the previous golden.
        let refused_by_8 = version == FrrVersion::V8 && text.contains("route-target import *:");
        match applier.apply(text) {
            Ok(r) if !refused_by_8 => eprintln!("FRR {}: {name}: {} change(s) in {:?}", version.label(), r.commands, r.total),
            Ok(_) => failures.push(format!("{name}: FRR 8.4 accepted a wildcard route target")),
            Err(e) if refused_by_8 && e.to_string().contains("Malformed Route Target") => {
                let running = frr.running_config().unwrap();
                let d = frr_composer::frr::apply::drift(previous.unwrap_or(""), &running);
                if previous.is_some() && !d.is_empty() {
                    failures.push(format!("{name}: after the refused apply FRR does not run the previous configuration:\n{d}"));
                }
                applier.invalidate();
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                applier.invalidate();
            }
        }
        if !frr.daemon_running("bgpd") {
            // FRR's own failure, not ours: note it, start bgpd again, and apply the golden anew
            // (what the apply said while bgpd went away does not count)
            if failures.last().is_some_and(|f| f.starts_with(&format!("{name}: "))) {
                failures.pop();
            }
            bgpd_exits.push(format!("{} -> {name}", previous_name.unwrap_or("")));
            frr.start_daemon("bgpd").unwrap();
            applier.invalidate();
            if let Err(e) = applier.apply(text) {
                failures.push(format!("{name}: after bgpd was started again: {e}"));
            }
        }
        previous = Some(text);
        previous_name = Some(name);
    }
    // FRR 10.7.1's bgpd exits, with no message in its log, while it applies
    // feature-log-level-flag after feature-log-level-debug when feature-import-vrfs came
    // before them (VRF imports; then bgp debugging on and every instance removed; then a new
    // instance): every run, and also with just those three goldens; 8.4 and 10.3 do not. A
    // smaller hand-written sequence did not reproduce it. Pinned here, so that a fix or a new
    // exit shows.
    let known: &[&str] = if version == FrrVersion::V10_7 { &["feature-log-level-debug -> feature-log-level-flag"] } else { &[] };
    if !bgpd_exits.is_empty() {
        eprintln!("FRR {}: bgpd exited at {bgpd_exits:?}", version.label());
    }
    if bgpd_exits != known {
        failures.push(format!("bgpd exited at {bgpd_exits:?}; known for FRR {}: {known:?}", version.label()));
    }
    // back to nothing: no managed line of ours may remain
    let empty = "log stdout informational\nlog timestamp precision 3\nhostname node1\nip nht resolve-via-default\nipv6 nht resolve-via-default\n";
    if let Err(e) = applier.apply(empty) {
        failures.push(format!("empty configuration: {e}"));
    }
    let running = frr.running_config().unwrap();
    let leftovers: Vec<String> = conf::parse(&running)
        .iter()
        .filter(|n| managed(&n.line) && !empty.contains(&n.line) && !n.line.starts_with("vrf ") && n.line != "bfd")
        .map(|n| n.line.clone())
        .collect();
    if !leftovers.is_empty() {
        failures.push(format!("left behind after the empty configuration: {leftovers:#?}"));
    }
    assert!(failures.is_empty(), "FRR {}: {} failure(s):\n{}", version.label(), failures.len(), failures.join("\n"));
}

crate::frr_versions!(all_goldens);
