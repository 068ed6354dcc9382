//! What a change of the merged model does to BGP sessions and advertisements: the sessions
//! that reset (and why), go down or start, and the prefixes each peer loses or gains. Pure.
//! `frr-composer diff` asks it per node of merged models; the webhook per object, for its
//! admission warnings.

use std::collections::BTreeMap;

use super::model::{Model, Neighbor};

/// The sessions and advertisements a change touches, as lines for people.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impact {
    /// `peer (vrf): why` for every session that would reset, go down or start.
    pub sessions: Vec<String>,
    /// `peer (vrf): prefix` no longer advertised, and newly advertised.
    pub withdrawn: Vec<String>,
    pub announced: Vec<String>,
}

impl Impact {
    /// The sessions that reset or go down (not those that start).
    pub fn disrupted(&self) -> impl Iterator<Item = &String> {
        self.sessions.iter().filter(|s| !s.ends_with(": new session"))
    }
}

/// Which session changes reset it in FRR, and which do not. FRR resets an established
/// session (a NOTIFICATION, Cease/config change) when its remote AS, local AS, password (TCP
/// MD5), update-source, port, multihop or address families change; timers, BFD, graceful
/// restart, allowas-in and outbound or inbound policy apply without a reset (timers and
/// graceful restart take effect at the next one).
pub fn resets(before: &Neighbor, after: &Neighbor, before_asn: u32, after_asn: u32) -> Vec<&'static str> {
    let (b, a) = (&before.session, &after.session);
    let mut why = Vec::new();
    if b.remote_as != a.remote_as {
        why.push("remote AS");
    }
    if b.local_asn.unwrap_or(before_asn) != a.local_asn.unwrap_or(after_asn) {
        why.push("local AS");
    }
    if b.password != a.password {
        why.push("password");
    }
    if b.source_address != a.source_address {
        why.push("update-source");
    }
    if b.port != a.port {
        why.push("port");
    }
    if before.ebgp_multihop(before_asn) != after.ebgp_multihop(after_asn) {
        why.push("ebgp-multihop");
    }
    if before.families != after.families {
        why.push("address families");
    }
    why
}

type Neighbors<'a> = BTreeMap<(String, String), (&'a Neighbor, u32)>;

fn neighbors(m: &Model) -> Neighbors<'_> {
    m.routers
        .iter()
        .flat_map(|r| r.neighbors.iter().map(move |n| ((if r.vrf.is_empty() { "default".into() } else { r.vrf.clone() }, n.peer.to_string()), (n, r.asn))))
        .collect()
}

/// What changes from `before` to `after` (two models of one node, or of one object).
pub fn impact(before: &Model, after: &Model) -> Impact {
    let mut out = Impact::default();
    let (b, a) = (neighbors(before), neighbors(after));
    for (key @ (vrf, peer), (nb, asn_b)) in &b {
        let lost: Vec<String> = match a.get(key) {
            None => {
                out.sessions.push(format!("{peer} ({vrf}): removed, the session goes down"));
                nb.outbound.advertise.keys().map(|p| p.to_string()).collect()
            }
            Some((na, asn_a)) => {
                let why = resets(nb, na, *asn_b, *asn_a);
                if !why.is_empty() {
                    out.sessions.push(format!("{peer} ({vrf}): resets ({})", why.join(", ")));
                }
                nb.outbound.advertise.keys().filter(|p| !na.outbound.advertise.contains_key(p)).map(|p| p.to_string()).collect()
            }
        };
        out.withdrawn.extend(lost.into_iter().map(|p| format!("{peer} ({vrf}): {p}")));
    }
    for (key @ (vrf, peer), (na, _)) in &a {
        let gained: Vec<String> = match b.get(key) {
            None => {
                out.sessions.push(format!("{peer} ({vrf}): new session"));
                na.outbound.advertise.keys().map(|p| p.to_string()).collect()
            }
            Some((nb, _)) => na.outbound.advertise.keys().filter(|p| !nb.outbound.advertise.contains_key(p)).map(|p| p.to_string()).collect(),
        };
        out.announced.extend(gained.into_iter().map(|p| format!("{peer} ({vrf}): {p}")));
    }
    out
}
