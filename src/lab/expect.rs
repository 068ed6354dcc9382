//! `lab run --expect FILE`: what each peer must receive and what the node must accept, as a
//! small YAML file; the differences from a lab's report, in words.
//!
//! ```yaml
//! peers:
//!   192.0.2.1:                  # a neighbor (address or interface)
//!     state: Established        # optional, as FRR names it
//!     received:                 # exactly these prefixes reach the peer
//!     - 198.51.100.181/32
//!     - prefix: 198.51.100.182/32
//!       nextHop: 192.0.2.254    # every attribute given is checked, the others are not
//!       communities: ["65000:1"]
//!       largeCommunities: ["1:2:3"]
//!       localPref: 200
//!     accepted: [203.0.113.0/24]   # exactly these prefixes the node accepts from it
//!     installed: [203.0.113.0/24]  # exactly these the node installs in its kernel via it
//!     bfd: up
//! ```
//! A list left out is not checked; an empty list means "nothing".

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::topology::{LabReport, Route};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub peers: BTreeMap<String, PeerExpect>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerExpect {
    pub state: Option<String>,
    pub received: Option<Vec<RouteExpect>>,
    pub accepted: Option<Vec<RouteExpect>>,
    pub installed: Option<Vec<String>>,
    pub bfd: Option<String>,
}

/// A prefix, or a prefix with attributes.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RouteExpect {
    Prefix(String),
    Detailed(RouteDetail),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteDetail {
    pub prefix: String,
    pub next_hop: Option<String>,
    pub communities: Option<Vec<String>>,
    pub large_communities: Option<Vec<String>>,
    pub local_pref: Option<u32>,
    pub as_path: Option<Vec<u32>>,
}

impl RouteExpect {
    fn detail(&self) -> RouteDetail {
        match self {
            RouteExpect::Prefix(p) => RouteDetail { prefix: p.clone(), ..Default::default() },
            RouteExpect::Detailed(d) => d.clone(),
        }
    }
}

/// How large an expectation file may be (a few KB in practice).
pub const MAX_EXPECT_FILE: u64 = 1 << 20;

/// Parses an expectation file's text, with the same nesting and alias bounds as the inputs;
/// `name` is used in errors.
pub fn parse(text: &str, name: &str) -> Result<Expect, String> {
    let value = crate::input::bounded_value(text, name)?;
    serde_yaml::from_value(value).map_err(|e| format!("{name}: {}", crate::core::error::excerpt(&e.to_string())))
}

/// A prefix in canonical form (`203.0.113.0/24`), so that `203.0.113.0/24` and a host
/// address without a length compare equal to what routers print.
fn canon(p: &str) -> String {
    let p = p.trim();
    if let Ok(n) = p.parse::<ipnet::IpNet>() {
        return n.trunc().to_string();
    }
    if let Ok(a) = p.parse::<std::net::IpAddr>() {
        return ipnet::IpNet::from(a).to_string();
    }
    p.to_string()
}

fn words(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let s: BTreeSet<String> = v.into_iter().collect();
    s.into_iter().collect()
}

fn compare_routes(who: &str, what: &str, want: &[RouteExpect], have: &[Route], out: &mut Vec<String>) {
    let have_prefixes: BTreeSet<String> = have.iter().map(|r| canon(&r.prefix)).collect();
    let want_detail: Vec<RouteDetail> = want.iter().map(RouteExpect::detail).collect();
    let want_prefixes: BTreeSet<String> = want_detail.iter().map(|d| canon(&d.prefix)).collect();
    for p in want_prefixes.difference(&have_prefixes) {
        out.push(format!("{who}: {what}: missing {p}"));
    }
    for p in have_prefixes.difference(&want_prefixes) {
        out.push(format!("{who}: {what}: unexpected {p}"));
    }
    for d in &want_detail {
        let prefix = canon(&d.prefix);
        let paths: Vec<&Route> = have.iter().filter(|r| canon(&r.prefix) == prefix).collect();
        if paths.is_empty() {
            continue;
        }
        // the first path that differs least: report its differences
        let mut best: Option<Vec<String>> = None;
        for r in &paths {
            let mut diffs = Vec::new();
            if let Some(nh) = &d.next_hop {
                if r.next_hop.as_deref() != Some(nh.as_str()) {
                    diffs.push(format!("next hop is {}, expected {nh}", r.next_hop.as_deref().unwrap_or("none")));
                }
            }
            if let Some(c) = &d.communities {
                let (w, h) = (sorted(c.iter().cloned()), sorted(r.communities.iter().cloned()));
                if w != h {
                    diffs.push(format!("communities are {}, expected {}", words(&h), words(&w)));
                }
            }
            if let Some(c) = &d.large_communities {
                let strip = |s: &String| s.strip_prefix("large:").unwrap_or(s).to_string();
                let (w, h) = (sorted(c.iter().map(strip)), sorted(r.large_communities.iter().map(strip)));
                if w != h {
                    diffs.push(format!("large communities are {}, expected {}", words(&h), words(&w)));
                }
            }
            if let Some(lp) = d.local_pref {
                if r.local_pref != Some(lp) {
                    diffs.push(format!("local preference is {}, expected {lp}", r.local_pref.map(|x| x.to_string()).unwrap_or_else(|| "none".into())));
                }
            }
            if let Some(path) = &d.as_path {
                if &r.as_path != path {
                    diffs.push(format!("AS path is {:?}, expected {path:?}", r.as_path));
                }
            }
            if best.as_ref().is_none_or(|b| diffs.len() < b.len()) {
                best = Some(diffs);
            }
        }
        for diff in best.unwrap_or_default() {
            out.push(format!("{who}: {what} {prefix}: {diff}"));
        }
    }
}

/// Every difference between the expectation and the report, one readable line each
/// (empty: the lab agrees).
pub fn differences(expect: &Expect, report: &LabReport) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in &expect.peers {
        let Some(have) = report.peers.iter().find(|p| canon(&p.neighbor) == canon(name) || p.neighbor == *name) else {
            let known: Vec<String> = report.peers.iter().map(|p| p.neighbor.clone()).collect();
            out.push(format!("peer {name}: no such neighbor in the lab (neighbors: {})", words(&known)));
            continue;
        };
        let who = format!("peer {name}");
        if let Some(s) = &want.state {
            if !s.eq_ignore_ascii_case(&have.state) {
                out.push(format!("{who}: session is {}, expected {s}", have.state));
            }
        }
        if let Some(r) = &want.received {
            compare_routes(&who, "received", r, &have.received, &mut out);
        }
        if let Some(r) = &want.accepted {
            compare_routes(&who, "node accepted", r, &have.accepted, &mut out);
        }
        if let Some(i) = &want.installed {
            let w: BTreeSet<String> = i.iter().map(|p| canon(p)).collect();
            let h: BTreeSet<String> = have.installed.iter().map(|p| canon(p)).collect();
            for p in w.difference(&h) {
                out.push(format!("{who}: node installed: missing {p}"));
            }
            for p in h.difference(&w) {
                out.push(format!("{who}: node installed: unexpected {p}"));
            }
        }
        if let Some(b) = &want.bfd {
            let h = have.bfd.as_deref().unwrap_or("none");
            if !b.eq_ignore_ascii_case(h) {
                out.push(format!("{who}: BFD is {h}, expected {b}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::topology::{PeerKind, PeerReport};
    use super::*;

    fn report() -> LabReport {
        LabReport {
            node_namespace: "n".into(),
            node_pathspace: "n".into(),
            frr_version: "10.7.1".into(),
            converged: true,
            seconds: 1.0,
            notes: vec![],
            peers: vec![PeerReport {
                neighbor: "192.0.2.1".into(),
                peer: PeerKind::Gobgp,
                peer_asn: 65102,
                namespace: "p".into(),
                state: "Established".into(),
                received: vec![Route {
                    prefix: "198.51.100.181/32".into(),
                    next_hop: Some("192.0.2.254".into()),
                    communities: vec!["65000:1".into()],
                    ..Default::default()
                }],
                accepted: vec![],
                installed: vec![],
                bfd: None,
            }],
        }
    }

    #[test]
    fn agreement_and_readable_differences() {
        let ok = parse(
            "peers:\n  192.0.2.1:\n    state: established\n    received:\n    - prefix: 198.51.100.181/32\n      communities: ['65000:1']\n    accepted: []\n",
            "x",
        )
        .unwrap();
        assert_eq!(differences(&ok, &report()), Vec::<String>::new());
        let bad = parse(
            "peers:\n  192.0.2.1:\n    received:\n    - 198.51.100.182/32\n    - prefix: 198.51.100.181/32\n      nextHop: 192.0.2.9\n      communities: ['65000:2']\n    accepted: [203.0.113.0/24]\n  192.0.2.7: {}\n",
            "x",
        )
        .unwrap();
        assert_eq!(
            differences(&bad, &report()),
            [
                "peer 192.0.2.1: received: missing 198.51.100.182/32",
                "peer 192.0.2.1: received 198.51.100.181/32: next hop is 192.0.2.254, expected 192.0.2.9",
                "peer 192.0.2.1: received 198.51.100.181/32: communities are 65000:1, expected 65000:2",
                "peer 192.0.2.1: node accepted: missing 203.0.113.0/24",
                "peer 192.0.2.7: no such neighbor in the lab (neighbors: 192.0.2.1)",
            ]
        );
        assert!(parse("peers:\n  x:\n    recieved: []\n", "e.yaml").unwrap_err().contains("recieved"));
    }

    #[test]
    fn expectation_files_keep_the_input_bounds() {
        let deep = format!("peers: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep, "e.yaml").unwrap_err().contains("nested more than 64"));
        let bomb = format!("a: &a [{}]\nb: &b [{}]\nc: &c [{}]\nd: [{}]\n", "x,".repeat(100), "*a,".repeat(100), "*b,".repeat(100), "*c,".repeat(100));
        assert!(parse(&bomb, "e.yaml").unwrap_err().contains("with every alias expanded"));
    }
}
