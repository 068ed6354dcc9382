//! `--explain`: which FRRConfiguration(s) contributed each rendered neighbor and prefix.
//! Passwords are never part of it.

use std::fmt::Write;

use crate::core::model::{Model, Sources};

fn from(s: &Sources) -> String {
    s.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
}

pub fn explain(model: &Model) -> String {
    let mut out = String::new();
    for r in &model.routers {
        let vrf = if r.vrf.is_empty() { "default" } else { &r.vrf };
        let _ = writeln!(out, "router bgp {} vrf {vrf}  <- {}", r.asn, from(&r.sources));
        for (p, s) in &r.prefixes {
            let _ = writeln!(out, "  network {p}  <- {}", from(s));
        }
        for n in &r.neighbors {
            let _ = writeln!(out, "  neighbor {} remote-as {}  <- {}", n.peer, n.session.remote_as, from(&n.sources));
            for (p, s) in n.outbound.advertise.iter() {
                let _ = writeln!(out, "    advertise {p}  <- {}", from(s));
            }
            for (p, (count, s)) in &n.outbound.as_path_prepend {
                let _ = writeln!(out, "    as-path prepend {p} x{count}  <- {}", from(s));
            }
            match &n.inbound.receive_all {
                Some(s) => {
                    let _ = writeln!(out, "    receive any  <- {}", from(s));
                }
                None => {
                    for (f, s) in &n.inbound.receive {
                        let _ = writeln!(out, "    receive {f}  <- {}", from(s));
                    }
                }
            }
        }
    }
    for p in &model.bfd_profiles {
        let _ = writeln!(out, "bfd profile {}  <- {}", p.name, from(&p.sources));
    }
    for raw in &model.raw {
        let _ = writeln!(out, "raw configuration (priority {})  <- {}", raw.priority, raw.source);
    }
    out
}

/// The FRRConfiguration(s) a rendered line most likely comes from, for error messages: the
/// neighbor or prefix it names, else the raw snippet that holds it, else every object of the
/// router it sits in, else every object.
pub fn sources_for_line(model: &Model, line: &str) -> Vec<crate::core::ObjRef> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut found: std::collections::BTreeSet<crate::core::ObjRef> = Default::default();
    for r in &model.routers {
        for n in &r.neighbors {
            let peer = n.peer.to_string();
            let (anchor, fallback) = (format!("{}-", n.id()), super::plan::fallback_prefix(n));
            if words.iter().any(|w| *w == peer || w.starts_with(&anchor) || w.starts_with(&fallback)) {
                found.extend(n.sources.iter().cloned());
            }
        }
        for (p, s) in &r.prefixes {
            if words.contains(&p.to_string().as_str()) {
                found.extend(s.iter().cloned());
            }
        }
    }
    if found.is_empty() {
        for raw in &model.raw {
            if raw.text.lines().any(|l| l.trim() == line.trim()) {
                found.insert(raw.source.clone());
            }
        }
    }
    if found.is_empty() {
        for r in &model.routers {
            found.extend(r.sources.iter().cloned());
        }
        for p in &model.bfd_profiles {
            found.extend(p.sources.iter().cloned());
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    /// `--explain` names the object each AS-path prepend came from.
    #[test]
    fn names_the_objects_of_each_prepend() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/render/feature-as-path-prepend-merge/input.yaml")).unwrap();
        let (objects, errors) = crate::input::parse_documents(&text, "input.yaml");
        assert!(errors.is_empty(), "{errors:?}");
        let args = crate::offline::NodeArgs { node: Some("node1".into()), ..Default::default() };
        let c = crate::offline::compose_objects(&args, &objects, &mut Vec::new()).expect("composes");
        let out = super::explain(&c.model);
        for line in [
            "as-path prepend 198.51.100.10/32 x3  <- frr-system/metallb-node1",
            "as-path prepend 198.51.100.11/32 x1  <- frr-system/admin",
            "as-path prepend 198.51.100.12/32 x3  <- frr-system/admin, frr-system/metallb-node1",
        ] {
            assert!(out.lines().any(|l| l.trim() == line), "{line:?} not in:\n{out}");
        }
    }
}
