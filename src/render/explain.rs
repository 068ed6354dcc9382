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
            let _ = writeln!(out, "  neighbor {} remote-as {}  <- {}", n.peer, n.remote_as, from(&n.sources));
            for (p, s) in n.advertise.iter() {
                let _ = writeln!(out, "    advertise {p}  <- {}", from(s));
            }
            match &n.receive_all {
                Some(s) => {
                    let _ = writeln!(out, "    receive any  <- {}", from(s));
                }
                None => {
                    for (f, s) in &n.receive {
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
