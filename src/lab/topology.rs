//! The lab of `frr-composer lab`: the node's FRR, configured from a merged model exactly as
//! `apply` configures a real node, and one BGP peer per neighbor, each in its own namespace.
//!
//! Layout. The node namespace holds FRR. Neighbors whose sessions are directly connected
//! share one bridge in the node namespace per subnet (/24 for IPv4, /64 for IPv6): the node
//! takes an address on it (the neighbor's `sourceaddress` when it lies in the subnet, else
//! the highest free host address) and every peer of the subnet plugs in with the neighbor's
//! address. A multihop neighbor gets its own link with no subnet: the peer holds the
//! neighbor's address on its loopback, the node its source address on its loopback, and
//! each side routes the other's address onto the link. Interface (unnumbered) neighbors get
//! a link named after the interface, IPv6 link-local only, and an FRR peer. The namespaces
//! have no link to the host and no route out: the users' own addresses work as written.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use serde::Serialize;

use super::{Frr, FrrVersion, GoBgp, Netns};
use crate::core::model::{IpFamilies, Model, Peer, RemoteAs};
use crate::core::values::Community;
use crate::frr::apply::{Applier, ApplyError, Report};
use crate::frr::state;

/// Which program plays the peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    /// gobgpd (a route server); shows communities and local preference as received.
    #[default]
    Gobgp,
    /// FRR (the same installation as the node's): needed for BFD and unnumbered neighbors.
    Frr,
}

/// A route a peer announces to the node: `PREFIX[@PEER][=COMMUNITY,...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Announce {
    pub prefix: IpNet,
    /// The neighbor (address or interface) whose peer announces it; None: every peer.
    pub peer: Option<String>,
    pub communities: Vec<Community>,
}

impl std::str::FromStr for Announce {
    type Err = String;
    fn from_str(s: &str) -> Result<Announce, String> {
        let (rest, comms) = match s.split_once('=') {
            Some((r, c)) => (r, Some(c)),
            None => (s, None),
        };
        let (prefix, peer) = match rest.split_once('@') {
            Some((p, n)) if !n.is_empty() => (p, Some(n.to_string())),
            Some(_) => return Err(format!("{s:?}: nothing after @ (PREFIX@PEER)")),
            None => (rest, None),
        };
        let prefix: IpNet = prefix.parse().map_err(|e| format!("{s:?}: {prefix:?} is not a prefix: {e}"))?;
        let communities =
            comms.into_iter().flat_map(|c| c.split(',')).map(Community::parse).collect::<Result<Vec<_>, _>>().map_err(|e| format!("{s:?}: {e}"))?;
        if prefix != prefix.trunc() {
            // as everywhere else in the product: host bits are a mistake, not a request
            return Err(format!("{s:?}: {prefix} has host bits set (the prefix is {})", prefix.trunc()));
        }
        Ok(Announce { prefix, peer, communities })
    }
}

/// How to build the lab.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where FRR is installed (`/` for Debian's package).
    pub frr_root: PathBuf,
    pub peers: PeerKind,
    pub announce: Vec<Announce>,
}

/// One neighbor's peer, as planned from the model.
#[derive(Clone, Debug)]
struct Plan {
    /// The neighbor as the configuration names it (address or interface).
    neighbor: String,
    address: Option<IpAddr>,
    interface: Option<String>,
    /// The peer's ASN, and the ASN it expects from the node.
    asn: u32,
    node_asn: u32,
    /// The node's address for this session (None: unnumbered).
    node_addr: Option<IpAddr>,
    multihop: bool,
    password: Option<String>,
    port: u16,
    family: IpFamilies,
    bfd: bool,
    kind: PeerKind,
    router_id: Ipv4Addr,
}

fn host_len(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// The subnet a directly connected neighbor shares with the node.
fn subnet(a: IpAddr) -> IpNet {
    let len = if a.is_ipv4() { 24 } else { 64 };
    IpNet::new(a, len).expect("valid length").trunc()
}

/// The highest host address of `net` that `used` does not hold.
fn free_host(net: IpNet, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    match net {
        IpNet::V4(n) => {
            let top = u32::from(n.broadcast());
            (1..=253u32).map(|k| IpAddr::V4(Ipv4Addr::from(top - k))).find(|a| !used.contains(a))
        }
        IpNet::V6(n) => {
            let top = u128::from(n.broadcast());
            (1..=253u128).map(|k| IpAddr::V6(Ipv6Addr::from(top - k))).find(|a| !used.contains(a))
        }
    }
}

/// A peer ASN for `remoteASN: external` that differs from the node's.
fn external_asn(node: u32) -> u32 {
    if node == 64512 {
        64513
    } else {
        64512
    }
}

/// How many peers one lab may start: each is a namespace and a daemon (gobgpd takes about
/// 18 MiB), so a few-KB file with 1,000 neighbors would ask for gigabytes.
pub const MAX_PEERS: usize = 32;

/// Whether the lab itself uses an interface of this name in the node's namespace
/// (`lo`, the bridges `brN`, the peer links `pN`).
fn reserved_interface(name: &str) -> bool {
    let numbered = |prefix: &str| name.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    name == "lo" || numbered("br") || numbered("p")
}

/// The peers the model's neighbors need; `notes` gets what the lab does not simulate.
fn plan(model: &Model, opts: &Options, notes: &mut Vec<String>) -> Result<Vec<Plan>> {
    let mut plans = Vec::new();
    let used: BTreeSet<IpAddr> = model
        .routers
        .iter()
        .flat_map(|r| &r.neighbors)
        .filter_map(|n| match n.peer {
            Peer::Address(a) => Some(a),
            Peer::Interface(_) => None,
        })
        .collect();
    // the node's address per subnet, chosen once
    let mut node_addrs: BTreeMap<IpNet, IpAddr> = BTreeMap::new();
    for r in &model.routers {
        if !r.vrf.is_empty() {
            for n in &r.neighbors {
                notes.push(format!("neighbor {} in VRF {:?}: no peer (the lab simulates the default VRF only)", n.peer, r.vrf));
            }
            continue;
        }
        for n in &r.neighbors {
            let node_asn = n.session.local_asn.unwrap_or(r.asn);
            let asn = match n.session.remote_as {
                RemoteAs::Number(a) => a,
                RemoteAs::Internal => node_asn,
                RemoteAs::External => external_asn(node_asn),
            };
            let source: Option<IpAddr> = n.session.source_address.as_deref().and_then(|s| s.parse().ok());
            let index = plans.len();
            let mut p = Plan {
                neighbor: n.peer.to_string(),
                address: None,
                interface: None,
                asn,
                node_asn,
                node_addr: None,
                multihop: n.session.ebgp_multihop,
                password: n.session.password.clone(),
                port: n.session.port,
                family: n.families.ip,
                bfd: n.session.bfd_profile.is_some(),
                kind: opts.peers,
                router_id: Ipv4Addr::from(index as u32 + 1),
            };
            match &n.peer {
                Peer::Address(a) => {
                    p.address = Some(*a);
                    if let IpAddr::V4(v4) = a {
                        p.router_id = *v4;
                    }
                    let net = subnet(*a);
                    p.node_addr = Some(match source {
                        Some(s) => s,
                        None => match node_addrs.get(&net) {
                            Some(x) => *x,
                            None => {
                                let x = free_host(net, &used).ok_or_else(|| anyhow!("no free address for the node in {net}"))?;
                                node_addrs.insert(net, x);
                                x
                            }
                        },
                    });
                    if source.is_some_and(|s| !net.contains(&s)) && !n.session.ebgp_multihop {
                        notes.push(format!(
                            "neighbor {a}: source address {} is outside {net}: reached over a routed link",
                            n.session.source_address.as_deref().unwrap_or_default()
                        ));
                        p.multihop = true;
                    }
                    if p.node_addr.is_some_and(|s| s.is_ipv4() != a.is_ipv4()) {
                        bail!("neighbor {a}: source address {} is of the other IP family", n.session.source_address.as_deref().unwrap_or_default());
                    }
                }
                Peer::Interface(i) => {
                    if reserved_interface(i) {
                        bail!("neighbor {i}: the lab names its own interfaces lo, brN and pN; give the unnumbered neighbor another interface name to try it in the lab");
                    }
                    p.interface = Some(i.clone());
                    if p.kind == PeerKind::Gobgp {
                        notes.push(format!("neighbor {i} (unnumbered): played by FRR (GoBGP has no unnumbered sessions)"));
                        p.kind = PeerKind::Frr;
                    }
                }
            }
            if p.bfd && p.kind == PeerKind::Gobgp {
                notes.push(format!("neighbor {}: BFD is configured but GoBGP has no BFD; use --peers frr to see BFD come up", p.neighbor));
            }
            if p.kind == PeerKind::Frr && p.port != crate::core::model::DEFAULT_PORT {
                bail!("neighbor {}: port {} needs a GoBGP peer (an FRR peer listens on 179 only)", p.neighbor, p.port);
            }
            plans.push(p);
        }
    }
    if plans.is_empty() {
        bail!("the merged configuration has no neighbor in the default VRF: nothing to peer with");
    }
    if plans.len() > MAX_PEERS {
        bail!("the merged configuration has {} neighbors in the default VRF; the lab starts at most {MAX_PEERS} peers (one namespace and daemon each): select fewer objects or a smaller file", plans.len());
    }
    Ok(plans)
}

/// The program playing one peer.
enum Daemon {
    Gobgp(GoBgp),
    Frr(Frr),
}

/// One peer: its daemon and namespace (the daemon is declared first: dropped first).
struct PeerLab {
    daemon: Daemon,
    ns: Netns,
    plan: Plan,
}

/// A running lab. Dropping it stops every process and removes every namespace it made.
pub struct Lab {
    peers: Vec<PeerLab>,
    node: Frr,
    pub applier: Applier,
    node_ns: Netns,
    /// The node FRR's version as `show version` gives it.
    frr_version: String,
    /// What the lab does not simulate (VRFs, BFD with GoBGP...).
    pub notes: Vec<String>,
}

/// One path as a router holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub as_path: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
}

/// What the lab shows for one neighbor.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerReport {
    pub neighbor: String,
    pub peer: PeerKind,
    pub peer_asn: u32,
    /// The peer's namespace (`ip netns exec NS ...`).
    pub namespace: String,
    /// The session as the node's FRR sees it (Established, Active, ...).
    pub state: String,
    /// What the peer received from the node.
    pub received: Vec<Route>,
    /// What the node accepted from the peer (after its incoming policy).
    pub accepted: Vec<Route>,
    /// Prefixes the node installed in its kernel via this peer.
    pub installed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bfd: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabReport {
    /// The node's namespace and FRR pathspace (`vtysh -N PATHSPACE`).
    pub node_namespace: String,
    pub node_pathspace: String,
    /// The node FRR's version (`show version`).
    pub frr_version: String,
    pub converged: bool,
    pub seconds: f64,
    pub peers: Vec<PeerReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A namespace with IPv6 on (link-local addresses for unnumbered sessions).
fn lab_netns() -> Result<Netns> {
    let ns = Netns::new()?;
    for key in ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"] {
        ns.sysctl(key, "0")?;
    }
    Ok(ns)
}

fn cidr(a: IpAddr, len: u8) -> String {
    format!("{a}/{len}")
}

impl Lab {
    /// Builds the lab for `model`, applies `text` to the node's FRR and returns once
    /// everything runs (not yet converged: see [`Lab::converge`]). `progress` hears each step.
    pub fn build(model: &Model, text: &str, opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Lab> {
        let mut notes = Vec::new();
        let plans = plan(model, opts, &mut notes)?;
        for a in &opts.announce {
            if let Some(x) = &a.peer {
                if !plans.iter().any(|p| &p.neighbor == x) {
                    bail!("--announce {}@{x}: no neighbor {x} in the merged configuration", a.prefix);
                }
            }
        }
        let node_ns = lab_netns()?;
        // The node routes nothing through itself for the peers, but forwarding on keeps the
        // kernel's view the same as on a router.
        let _ = node_ns.sysctl("net.ipv4.ip_forward", "1");
        let version = FrrVersion::detect(&opts.frr_root);
        let mut peers: Vec<PeerLab> = Vec::new();
        let mut bridges: BTreeMap<IpNet, String> = BTreeMap::new();
        let mut node_addrs: BTreeSet<String> = BTreeSet::new();
        for (i, p) in plans.iter().enumerate() {
            let ns = lab_netns()?;
            let port = format!("p{i}");
            match (p.address, p.node_addr, &p.interface) {
                (Some(a), Some(node), _) if !p.multihop => {
                    let net = subnet(a);
                    let br = match bridges.get(&net) {
                        Some(b) => b.clone(),
                        None => {
                            let b = format!("br{}", bridges.len());
                            node_ns.ip(&["link", "add", &b, "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
                            node_ns.link_up(&b)?;
                            if net.contains(&node) {
                                node_ns.add_addr(&b, &cidr(node, net.prefix_len()))?;
                            }
                            bridges.insert(net, b.clone());
                            b
                        }
                    };
                    node_ns.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns.name()])?;
                    node_ns.ip(&["link", "set", &port, "master", &br])?;
                    node_ns.link_up(&port)?;
                    ns.add_addr("eth0", &cidr(a, net.prefix_len()))?;
                    ns.link_up("eth0")?;
                    if !net.contains(&node) {
                        // a source address outside the subnet: on the node's loopback
                        if node_addrs.insert(node.to_string()) {
                            node_ns.add_addr("lo", &cidr(node, host_len(node)))?;
                        }
                        ns.ip(&["route", "add", &cidr(node, host_len(node)), "dev", "eth0"])?;
                    }
                }
                (Some(a), Some(node), _) => {
                    node_ns.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns.name()])?;
                    node_ns.link_up(&port)?;
                    ns.link_up("eth0")?;
                    ns.add_addr("lo", &cidr(a, host_len(a)))?;
                    if node_addrs.insert(node.to_string()) {
                        node_ns.add_addr("lo", &cidr(node, host_len(node)))?;
                    }
                    node_ns.ip(&["route", "add", &cidr(a, host_len(a)), "dev", &port])?;
                    ns.ip(&["route", "add", &cidr(node, host_len(node)), "dev", "eth0"])?;
                }
                (_, _, Some(ifname)) => {
                    node_ns.ip(&["link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", ns.name()])?;
                    node_ns.link_up(ifname)?;
                    ns.link_up("eth0")?;
                }
                _ => bail!("neighbor {}: no address and no interface", p.neighbor),
            }
            let daemon = match p.kind {
                PeerKind::Gobgp => Daemon::Gobgp(GoBgp::start_with_config(&ns, &gobgp_config(p)).with_context(|| format!("peer of neighbor {}", p.neighbor))?),
                PeerKind::Frr => {
                    let frr = Frr::start_at(version, opts.frr_root.clone(), &ns).with_context(|| format!("FRR peer of neighbor {}", p.neighbor))?;
                    frr.load_config_file(&frr_peer_config(p, &opts.announce)).with_context(|| format!("FRR peer of neighbor {}", p.neighbor))?;
                    Daemon::Frr(frr)
                }
            };
            if let (Daemon::Gobgp(g), Some(node)) = (&daemon, p.node_addr) {
                // listening for the node before the node's FRR tries to connect
                super::wait_until(Duration::from_secs(5), || g.neighbor_state(&node.to_string()).is_ok_and(|s| s == "active"));
            }
            if let Daemon::Gobgp(g) = &daemon {
                for a in opts.announce.iter().filter(|a| a.peer.as_deref().is_none_or(|x| x == p.neighbor)) {
                    announce_gobgp(g, p, a)?;
                }
            }
            let program = match p.kind {
                PeerKind::Gobgp => "gobgpd",
                PeerKind::Frr => "FRR",
            };
            progress(&format!("peer {} ({program}, AS {}) in namespace {}", p.neighbor, p.asn, ns.name()));
            peers.push(PeerLab { daemon, ns, plan: p.clone() });
        }
        if model.routers.iter().any(|r| r.router_id.is_none())
            && !node_ns.ip(&["-4", "addr", "show"])?.lines().any(|l| l.trim_start().starts_with("inet ") && !l.contains(" 127."))
        {
            // FRR takes its router ID from an IPv4 address; a node with unnumbered sessions
            // only has none here (a real node would)
            let used: BTreeSet<IpAddr> = plans.iter().filter_map(|p| p.address).collect();
            let id = free_host("192.0.2.0/24".parse().expect("valid"), &used).ok_or_else(|| anyhow!("no address for a router ID"))?;
            node_ns.add_addr("lo", &cidr(id, 32))?;
            notes.push(format!("the node has no IPv4 address on any link: {id}/32 on its loopback gives FRR a router ID"));
        }
        let node = Frr::start_at(version, opts.frr_root.clone(), &node_ns)?;
        let frr_version = node.location().version().map_err(|e| anyhow!("the node's FRR: {e}"))?;
        progress(&format!("node FRR {frr_version} in namespace {} (vtysh -N {})", node_ns.name(), node.name()));
        let mut lab = Lab { peers, applier: Applier::new(node.location()), node, node_ns, frr_version, notes };
        lab.apply(text)?;
        progress("configuration applied");
        Ok(lab)
    }

    /// Applies a configuration to the node's FRR, as `apply` does.
    pub fn apply(&mut self, text: &str) -> Result<Report> {
        match self.applier.apply(text) {
            Ok(r) => Ok(r),
            Err(e @ (ApplyError::Refused(_) | ApplyError::Failed(_) | ApplyError::Drift(_))) => Err(anyhow!("{}", crate::frr::redact(&e.to_string()))),
            Err(e) => Err(anyhow!("cannot apply the configuration to the lab's FRR: {e}")),
        }
    }

    pub fn node_namespace(&self) -> &str {
        self.node_ns.name()
    }
    pub fn node(&self) -> &Frr {
        &self.node
    }
    /// Every namespace of the lab, node first.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.node_ns.name().to_string()).chain(self.peers.iter().map(|p| p.ns.name().to_string())).collect()
    }

    /// The FRR playing the peer of `neighbor` (None: no such neighbor, or GoBGP plays it).
    pub fn peer_frr(&self, neighbor: &str) -> Option<&Frr> {
        self.peers.iter().find(|p| p.plan.neighbor == neighbor).and_then(|p| match &p.daemon {
            Daemon::Frr(f) => Some(f),
            Daemon::Gobgp(_) => None,
        })
    }

    /// The gobgpd playing the peer of `neighbor` (None: no such neighbor, or FRR plays it).
    pub fn peer_gobgp(&self, neighbor: &str) -> Option<&GoBgp> {
        self.peers.iter().find(|p| p.plan.neighbor == neighbor).and_then(|p| match &p.daemon {
            Daemon::Gobgp(g) => Some(g),
            Daemon::Frr(_) => None,
        })
    }

    /// The node's address on the session with `neighbor`, as its peer names the node (None:
    /// no such neighbor, or an unnumbered one).
    pub fn node_address(&self, neighbor: &str) -> Option<IpAddr> {
        self.peers.iter().find(|p| p.plan.neighbor == neighbor).and_then(|p| p.plan.node_addr)
    }

    /// GoBGP API ports by neighbor (`gobgp -p PORT` inside the peer's namespace).
    pub fn gobgp_ports(&self) -> Vec<(String, String, u16)> {
        self.peers
            .iter()
            .filter_map(|p| match &p.daemon {
                Daemon::Gobgp(g) => Some((p.plan.neighbor.clone(), p.ns.name().to_string(), g.api_port())),
                Daemon::Frr(_) => None,
            })
            .collect()
    }

    /// Whether every session is established (and BFD up where both sides run it), from the
    /// node's FRR alone: one vtysh call (two with BFD).
    fn sessions_up(&self) -> Result<bool> {
        let loc = self.node.location();
        let sessions = state::bgp_neighbors(&loc).map_err(|e| anyhow!("{e}"))?;
        let bfd = if self.peers.iter().any(|p| p.plan.bfd && p.plan.kind == PeerKind::Frr) { state::bfd_peers(&loc).unwrap_or_default() } else { Vec::new() };
        Ok(self.peers.iter().all(|p| {
            let established = sessions.iter().any(|s| s.vrf == "default" && s.peer == p.plan.neighbor && s.state == "Established");
            let bfd_up = !(p.plan.bfd && p.plan.kind == PeerKind::Frr)
                || bfd.iter().any(|b| (b.peer == p.plan.neighbor || (p.plan.interface.is_some() && p.plan.interface == b.interface)) && b.status == "up");
            established && bfd_up
        }))
    }

    /// Waits until every session is established (and BFD up where both sides run it) for
    /// `settle`, and what every router holds stayed the same for `quiet`. FRR sends its first
    /// update to a new peer only after its subgroup coalesce time (1 s by default): `settle`
    /// must be longer. The report says whether it converged before `timeout`.
    pub fn converge(&self, timeout: Duration, settle: Duration, quiet: Duration) -> Result<LabReport> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut up_since: Option<Instant> = None;
        let mut last: Option<(Instant, String)> = None;
        loop {
            let now = Instant::now();
            if self.sessions_up()? {
                let since = *up_since.get_or_insert(now);
                if now.duration_since(since) >= settle.saturating_sub(quiet) {
                    let mut r = self.report()?;
                    let snapshot = serde_json::to_string(&r.peers).unwrap_or_default();
                    let now = Instant::now();
                    match &last {
                        Some((t, s)) if *s == snapshot && now.duration_since(*t) >= quiet && now.duration_since(since) >= settle => {
                            r.converged = true;
                            r.seconds = start.elapsed().as_secs_f64();
                            return Ok(r);
                        }
                        Some((_, s)) if *s == snapshot => {}
                        _ => last = Some((now, snapshot)),
                    }
                }
            } else {
                up_since = None;
                last = None;
            }
            if Instant::now() >= deadline {
                let mut r = self.report()?;
                r.seconds = start.elapsed().as_secs_f64();
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What a failing test needs to see, as text: `what` went wrong; then every session with
    /// what its peer holds from the node, the node FRR's running configuration and BGP
    /// summary (passwords redacted), and the tails of the node's and the peers' logs.
    pub fn diag(&self, what: &str) -> String {
        let mut out = format!("{what}\n--- sessions (FRR {})\n", self.frr_version);
        match self.report() {
            Ok(r) => {
                for p in &r.peers {
                    let held: Vec<&str> = p.received.iter().map(|r| r.prefix.as_str()).collect();
                    out.push_str(&format!("{} ({:?}, AS {}): {}; holds {held:?}; accepted {:?}\n", p.neighbor, p.peer, p.peer_asn, p.state, p.accepted));
                }
            }
            Err(e) => out.push_str(&format!("(no report: {e:#})\n")),
        }
        out.push_str("--- node: show bgp summary\n");
        out.push_str(&self.node.vtysh(&["show bgp summary"]).unwrap_or_else(|e| format!("({e:#})")));
        out.push_str("\n--- node: running configuration\n");
        // (passwords redacted, as everywhere the product prints a configuration)
        out.push_str(&crate::frr::redact(&self.node.running_config().unwrap_or_else(|e| format!("({e:#})"))));
        out.push_str("\n--- node: logs\n");
        out.push_str(&self.node.logs());
        for p in &self.peers {
            if let Daemon::Gobgp(g) = &p.daemon {
                out.push_str(&format!("--- peer {} (gobgpd) log\n{}\n", p.plan.neighbor, g.log()));
            }
        }
        out
    }

    /// What every router holds now.
    pub fn report(&self) -> Result<LabReport> {
        let loc = self.node.location();
        let sessions = state::bgp_neighbors(&loc).map_err(|e| anyhow!("{e}"))?;
        let bfd = if self.peers.iter().any(|p| p.plan.bfd) { state::bfd_peers(&loc).unwrap_or_default() } else { Vec::new() };
        let kernel = self.kernel_routes()?;
        let mut peers = Vec::new();
        for p in &self.peers {
            let key = p.plan.neighbor.clone();
            let session = sessions.iter().find(|s| s.vrf == "default" && s.peer == key);
            let state = session.map(|s| s.state.clone()).unwrap_or_else(|| "unknown".into());
            let received = match &p.daemon {
                Daemon::Gobgp(g) => {
                    let mut v: Vec<Route> = match p.plan.node_addr {
                        Some(a) => match g.adj_in(&a.to_string()) {
                            Ok(v) => v.into_iter().map(from_gobgp).collect(),
                            Err(e) if e.to_string().contains("not established") => Vec::new(),
                            Err(e) => return Err(e),
                        },
                        None => Vec::new(),
                    };
                    v.sort();
                    v
                }
                Daemon::Frr(f) => frr_table(f, None)?,
            };
            let accepted = frr_table(&self.node, Some(&key))?;
            // the kernel's next hop is the neighbor's address, or for unnumbered sessions a
            // link-local address on the neighbor's interface
            let mut installed: Vec<String> = kernel
                .iter()
                .filter(|(_, via, dev)| {
                    p.plan.address.is_some_and(|a| via.as_deref() == Some(&a.to_string())) || p.plan.interface.as_deref().is_some_and(|i| dev == i)
                })
                .map(|(dst, _, _)| dst.clone())
                .collect();
            installed.sort();
            installed.dedup();
            let bfd = p.plan.bfd.then(|| {
                bfd.iter()
                    .find(|b| b.peer == key || (p.plan.interface.is_some() && p.plan.interface == b.interface))
                    .map(|b| b.status.clone())
                    .unwrap_or_else(|| "none".into())
            });
            peers.push(PeerReport {
                neighbor: key,
                peer: p.plan.kind,
                peer_asn: p.plan.asn,
                namespace: p.ns.name().to_string(),
                state,
                received,
                accepted,
                installed,
                bfd,
            });
        }
        Ok(LabReport {
            node_namespace: self.node_ns.name().into(),
            node_pathspace: self.node.name().into(),
            frr_version: self.frr_version.clone(),
            converged: false,
            seconds: 0.0,
            peers,
            notes: self.notes.clone(),
        })
    }

    /// (destination, gateway, device) of the node's kernel routes from BGP.
    fn kernel_routes(&self) -> Result<Vec<(String, Option<String>, String)>> {
        let mut out = Vec::new();
        for fam in ["-4", "-6"] {
            let text = self.node_ns.ip(&["-j", fam, "route", "show", "proto", "bgp"])?;
            let v: serde_json::Value = serde_json::from_str(if text.trim().is_empty() { "[]" } else { &text })?;
            for r in v.as_array().into_iter().flatten() {
                let dst = match r.get("dst").and_then(|d| d.as_str()) {
                    Some("default") => if fam == "-4" { "0.0.0.0/0" } else { "::/0" }.to_string(),
                    Some(d) if !d.contains('/') => format!("{d}/{}", if fam == "-4" { 32 } else { 128 }),
                    Some(d) => d.to_string(),
                    None => continue,
                };
                let mut hops: Vec<(Option<String>, String)> = Vec::new();
                let one = |h: &serde_json::Value| {
                    (h.get("gateway").and_then(|g| g.as_str()).map(str::to_string), h.get("dev").and_then(|g| g.as_str()).unwrap_or_default().to_string())
                };
                match r.get("nexthops").and_then(|n| n.as_array()) {
                    Some(list) => hops.extend(list.iter().map(one)),
                    None => hops.push(one(r)),
                }
                for (via, dev) in hops {
                    out.push((dst.clone(), via, dev));
                }
            }
        }
        Ok(out)
    }
}

fn from_gobgp(r: super::BgpRoute) -> Route {
    Route {
        prefix: r.prefix,
        next_hop: r.nexthop,
        as_path: r.as_path,
        communities: r.communities,
        large_communities: r.large_communities,
        local_pref: r.local_pref,
    }
}

/// FRR's BGP table (`neighbor`: only what that neighbor sent and FRR accepted), IPv4 and IPv6.
fn frr_table(frr: &Frr, neighbor: Option<&str>) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for fam in ["ipv4", "ipv6"] {
        let cmd = match neighbor {
            Some(n) => format!("show bgp {fam} unicast neighbors {n} routes json"),
            None => format!("show bgp {fam} unicast json"),
        };
        let v = match frr.vtysh_json(&cmd) {
            Ok(v) => v,
            // FRR answers with text when the neighbor does not carry the family
            Err(_) if neighbor.is_some() => continue,
            Err(e) => return Err(e),
        };
        for (prefix, paths) in v.get("routes").and_then(|r| r.as_object()).into_iter().flatten() {
            for p in paths.as_array().into_iter().flatten() {
                if neighbor.is_none() && p.get("peerId").and_then(|x| x.as_str()).is_some_and(|x| x == "(unspec)") {
                    continue; // originated by this router itself
                }
                let next_hop =
                    p.get("nexthops").and_then(|n| n.as_array()).and_then(|n| n.first()).and_then(|h| h.get("ip")).and_then(|h| h.as_str()).map(str::to_string);
                let as_path = p.get("path").and_then(|x| x.as_str()).unwrap_or_default().split_whitespace().filter_map(|a| a.parse().ok()).collect();
                let local_pref = p.get("locPrf").and_then(|x| x.as_u64()).map(|x| x as u32);
                out.push(Route { prefix: prefix.clone(), next_hop, as_path, local_pref, ..Default::default() });
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn gobgp_families(f: IpFamilies) -> &'static [&'static str] {
    match f {
        IpFamilies::Ipv4 => &["ipv4-unicast"],
        IpFamilies::Ipv6 => &["ipv6-unicast"],
        IpFamilies::Dual => &["ipv4-unicast", "ipv6-unicast"],
    }
}

/// A TOML string (quotes and backslashes escaped).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn gobgp_config(p: &Plan) -> String {
    let node = p.node_addr.map(|a| a.to_string()).unwrap_or_default();
    let mut t = format!("[global.config]\n  as = {}\n  router-id = \"{}\"\n  port = {}\n", p.asn, p.router_id, p.port);
    t.push_str(&format!("\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{node}\"\n    peer-as = {}\n", p.node_asn));
    if let Some(pw) = &p.password {
        t.push_str(&format!("    auth-password = {}\n", toml_str(pw)));
    }
    t.push_str("  [neighbors.timers.config]\n    connect-retry = 1\n    idle-hold-time-after-reset = 1\n");
    if let Some(a) = p.address {
        t.push_str(&format!("  [neighbors.transport.config]\n    local-address = \"{a}\"\n    remote-port = 179\n"));
        // only the node connects: no connection collisions, no wait for GoBGP's connect timer
        t.push_str("    passive-mode = true\n");
    }
    if p.multihop {
        t.push_str("  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = 255\n");
    }
    for f in gobgp_families(p.family) {
        t.push_str(&format!("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\"\n"));
    }
    t
}

fn announce_gobgp(g: &GoBgp, p: &Plan, a: &Announce) -> Result<()> {
    let v6 = matches!(a.prefix, IpNet::V6(_));
    // GoBGP replaces the next hop with its own address towards an eBGP peer; towards an iBGP
    // peer it keeps this one: the peer's own address when the family matches
    let nexthop = match p.address {
        Some(x) if x.is_ipv6() == v6 => x.to_string(),
        _ if v6 => "::".into(),
        _ => "0.0.0.0".into(),
    };
    let std: Vec<String> = a.communities.iter().filter(|c| matches!(c, Community::Standard(..))).map(|c| c.value()).collect();
    let large: Vec<String> = a.communities.iter().filter(|c| matches!(c, Community::Large(..))).map(|c| c.value()).collect();
    let mut attrs: Vec<String> = Vec::new();
    if !std.is_empty() {
        attrs.extend(["community".into(), std.join(",")]);
    }
    if !large.is_empty() {
        attrs.extend(["large-community".into(), large.join(",")]);
    }
    let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
    g.add_route(&a.prefix.to_string(), &nexthop, &attrs).with_context(|| format!("peer {} cannot announce {}", p.neighbor, a.prefix))
}

/// An FRR peer's configuration: the session back to the node, BFD when the node runs it, and
/// the announced prefixes (as static routes to blackhole, with their communities).
fn frr_peer_config(p: &Plan, announce: &[Announce]) -> String {
    let nb = match (&p.interface, p.node_addr) {
        (Some(_), _) => "eth0".to_string(),
        (None, Some(a)) => a.to_string(),
        (None, None) => String::new(),
    };
    let mut t = String::from("frr defaults datacenter\n");
    let mine: Vec<&Announce> = announce.iter().filter(|a| a.peer.as_deref().is_none_or(|x| x == p.neighbor)).collect();
    for (i, a) in mine.iter().enumerate() {
        let (ip, bh) = if matches!(a.prefix, IpNet::V4(_)) { ("ip", "blackhole") } else { ("ipv6", "blackhole") };
        t.push_str(&format!("{ip} route {} {bh}\n", a.prefix));
        t.push_str(&format!("route-map LAB-ANNOUNCE-{i} permit 10\n"));
        let std: Vec<String> = a.communities.iter().filter(|c| matches!(c, Community::Standard(..))).map(|c| c.value()).collect();
        let large: Vec<String> = a.communities.iter().filter(|c| matches!(c, Community::Large(..))).map(|c| c.value()).collect();
        if !std.is_empty() {
            t.push_str(&format!(" set community {}\n", std.join(" ")));
        }
        if !large.is_empty() {
            t.push_str(&format!(" set large-community {}\n", large.join(" ")));
        }
        t.push_str("exit\n");
    }
    t.push_str(&format!(
        "router bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n no bgp network import-check\n no bgp default ipv4-unicast\n",
        p.asn, p.router_id
    ));
    if p.interface.is_some() {
        t.push_str(&format!(" neighbor {nb} interface remote-as {}\n", p.node_asn));
    } else {
        t.push_str(&format!(" neighbor {nb} remote-as {}\n", p.node_asn));
    }
    if let Some(a) = p.address {
        t.push_str(&format!(" neighbor {nb} update-source {a}\n"));
    }
    if let Some(pw) = &p.password {
        t.push_str(&format!(" neighbor {nb} password {pw}\n"));
    }
    if p.multihop {
        t.push_str(&format!(" neighbor {nb} ebgp-multihop 255\n"));
    }
    if p.bfd {
        t.push_str(&format!(" neighbor {nb} bfd\n"));
    }
    t.push_str(&format!(" neighbor {nb} timers connect 1\n"));
    for fam in ["ipv4", "ipv6"] {
        let carried = p.family == IpFamilies::Dual || p.family.name() == fam || p.interface.is_some();
        if !carried {
            continue;
        }
        t.push_str(&format!(" address-family {fam} unicast\n  neighbor {nb} activate\n"));
        for (i, a) in mine.iter().enumerate() {
            if matches!(a.prefix, IpNet::V4(_)) == (fam == "ipv4") {
                t.push_str(&format!("  network {} route-map LAB-ANNOUNCE-{i}\n", a.prefix));
            }
        }
        t.push_str(" exit-address-family\n");
    }
    t.push_str("exit\n");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_syntax() {
        let a: Announce = "203.0.113.0/24@192.0.2.1=65000:1,large:1:2:3".parse().unwrap();
        assert_eq!(a.prefix.to_string(), "203.0.113.0/24");
        assert_eq!(a.peer.as_deref(), Some("192.0.2.1"));
        assert_eq!(a.communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ["65000:1", "large:1:2:3"]);
        let b: Announce = "2001:db8::/48".parse().unwrap();
        assert_eq!((b.peer, b.communities.len()), (None, 0));
        assert!("203.0.113.0/24@".parse::<Announce>().is_err());
        assert!("nonsense".parse::<Announce>().is_err());
        assert!("203.0.113.0/24=65000:x".parse::<Announce>().is_err());
    }

    #[test]
    fn node_takes_a_free_host_address() {
        let used: BTreeSet<IpAddr> = ["192.0.2.254".parse().unwrap()].into();
        assert_eq!(free_host("192.0.2.0/24".parse().unwrap(), &used), Some("192.0.2.253".parse().unwrap()));
        assert_eq!(free_host("2001:db8::/64".parse().unwrap(), &BTreeSet::new()), Some("2001:db8::ffff:ffff:ffff:fffe".parse().unwrap()));
    }

    /// The merged model of one FRRConfiguration holding `neighbors` (YAML flow mappings).
    fn model_with(neighbors: &[String]) -> Model {
        let text = format!(
            "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: t, namespace: ns}}\nspec:\n  bgp:\n    routers:\n    - asn: 64512\n      neighbors: [{}]\n",
            neighbors.join(", ")
        );
        let (objects, errors) = crate::input::parse_documents(&text, "t.yaml");
        assert!(errors.is_empty(), "{errors:?}");
        let args = crate::offline::NodeArgs { hostname: Some("n".into()), ..Default::default() };
        crate::offline::compose_objects(&args, &objects, &mut Vec::new()).expect("composes").model
    }

    fn plan_error(model: &Model) -> String {
        let opts = Options { frr_root: "/".into(), peers: PeerKind::Gobgp, announce: Vec::new() };
        plan(model, &opts, &mut Vec::new()).map(|p| p.len()).unwrap_err().to_string()
    }

    #[test]
    fn a_lab_has_at_most_max_peers() {
        let opts = Options { frr_root: "/".into(), peers: PeerKind::Gobgp, announce: Vec::new() };
        let n = |k: usize| (0..k).map(|i| format!("{{address: 192.0.2.{}, asn: 65001}}", i + 1)).collect::<Vec<_>>();
        assert_eq!(plan(&model_with(&n(MAX_PEERS)), &opts, &mut Vec::new()).unwrap().len(), MAX_PEERS);
        let e = plan_error(&model_with(&n(MAX_PEERS + 1)));
        assert!(e.contains("33 neighbors") && e.contains("at most 32 peers"), "{e}");
    }

    #[test]
    fn interface_names_the_lab_uses_are_refused_by_name() {
        for name in ["lo", "br0", "p3"] {
            let e = plan_error(&model_with(&[format!("{{interface: {name}, asn: 65001}}")]));
            assert!(e.starts_with(&format!("neighbor {name}: the lab names its own interfaces")), "{e}");
        }
        // names that only look alike are the user's
        for name in ["eth0", "bridge1", "port1", "br", "p"] {
            let opts = Options { frr_root: "/".into(), peers: PeerKind::Frr, announce: Vec::new() };
            assert!(plan(&model_with(&[format!("{{interface: {name}, asn: 65001}}")]), &opts, &mut Vec::new()).is_ok(), "{name}");
        }
    }

    #[test]
    fn announce_with_host_bits_is_an_error() {
        let e = "10.0.0.1/24".parse::<Announce>().unwrap_err();
        assert!(e.contains("host bits") && e.contains("10.0.0.0/24"), "{e}");
        assert!("2001:db8::1/64".parse::<Announce>().is_err());
        assert_eq!("192.0.2.7/32".parse::<Announce>().unwrap().prefix.to_string(), "192.0.2.7/32");
    }
}
