//! The merged, validated, canonical model of one node's FRR configuration.
//!
//! Every collection is ordered (BTreeMap/BTreeSet or a Vec sorted by key), so rendering it is
//! deterministic. `Sources` records which FRRConfigurations contributed an item (for `--explain`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use super::error::ObjRef;
use super::values::{Community, Family};

/// The objects an item came from: a sorted set, stored inline when there is one (the common
/// case), so that recording provenance costs no allocation per prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "Vec<ObjRef>")]
pub enum Sources {
    One(ObjRef),
    Many(Vec<ObjRef>),
}

impl Sources {
    pub fn one(o: &ObjRef) -> Sources {
        Sources::One(o.clone())
    }
    pub fn insert(&mut self, o: &ObjRef) {
        match self {
            Sources::One(a) if a == o => {}
            Sources::One(a) => {
                let mut v = vec![a.clone(), o.clone()];
                v.sort();
                *self = Sources::Many(v);
            }
            Sources::Many(v) => {
                if let Err(i) = v.binary_search(o) {
                    v.insert(i, o.clone());
                }
            }
        }
    }
    pub fn iter(&self) -> std::slice::Iter<'_, ObjRef> {
        match self {
            Sources::One(a) => std::slice::from_ref(a).iter(),
            Sources::Many(v) => v.iter(),
        }
    }
}

impl From<Sources> for Vec<ObjRef> {
    fn from(s: Sources) -> Self {
        s.iter().cloned().collect()
    }
}

impl<'a> FromIterator<&'a ObjRef> for Sources {
    /// Panics on an empty iterator: an item always has a source.
    fn from_iter<I: IntoIterator<Item = &'a ObjRef>>(iter: I) -> Self {
        let mut it = iter.into_iter();
        let mut s = Sources::one(it.next().expect("an item has at least one source"));
        for o in it {
            s.insert(o);
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Model {
    /// FRR's log level keyword (`informational`, `debugging`, ...).
    pub log_level: &'static str,
    pub hostname: String,
    /// Sorted by VRF, the default VRF ("") first.
    pub routers: Vec<Router>,
    /// Sorted by name.
    pub bfd_profiles: Vec<BfdProfile>,
    /// Sorted by (priority, namespace, name).
    pub raw: Vec<RawSnippet>,
    /// Things the user should know that do not stop the configuration (deprecated fields...).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawSnippet {
    pub priority: i32,
    pub source: ObjRef,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Router {
    pub asn: u32,
    pub vrf: String,
    pub router_id: Option<Ipv4Addr>,
    /// Sorted by peer.
    pub neighbors: Vec<Neighbor>,
    /// Originated prefixes (`network`), IPv4 first.
    pub prefixes: BTreeMap<IpNet, Sources>,
    /// `import vrf`: the VRFs whose routes this router imports (`default` for the default VRF).
    pub import_vrfs: BTreeSet<String>,
    pub evpn: Option<Evpn>,
    pub sources: Sources,
}

/// Identity of a neighbor inside a router: its address or its interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Peer {
    Address(IpAddr),
    Interface(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Address(a) => write!(f, "{a}"),
            Peer::Interface(i) => write!(f, "{i}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RemoteAs {
    Number(u32),
    Internal,
    External,
}

impl RemoteAs {
    /// Whether the session is iBGP for a router of `router_asn`.
    pub fn is_internal(self, router_asn: u32) -> bool {
        match self {
            RemoteAs::Internal => true,
            RemoteAs::Number(n) => n == router_asn,
            RemoteAs::External => false,
        }
    }
}

impl fmt::Display for RemoteAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteAs::Number(n) => write!(f, "{n}"),
            RemoteAs::Internal => write!(f, "internal"),
            RemoteAs::External => write!(f, "external"),
        }
    }
}

/// The IP address families a session carries unicast routes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamilies {
    Ipv4,
    Ipv6,
    Dual,
}

impl IpFamilies {
    pub fn has(self, f: Family) -> bool {
        matches!((self, f), (IpFamilies::Dual, _) | (IpFamilies::Ipv4, Family::V4) | (IpFamilies::Ipv6, Family::V6))
    }
    pub fn name(self) -> &'static str {
        match self {
            IpFamilies::Ipv4 => "ipv4",
            IpFamilies::Ipv6 => "ipv6",
            IpFamilies::Dual => "dual",
        }
    }
}

/// A prefix match (as in a prefix-list entry) for incoming routes; `ge`/`le` are normalised (a
/// bound equal to the prefix length is dropped, it selects nothing more), so equivalent matches
/// are one key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PrefixMatch {
    pub prefix: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl fmt::Display for PrefixMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // FRR's own order, as `show running-config` prints it.
        write!(f, "{}", self.prefix)?;
        if let Some(ge) = self.ge {
            write!(f, " ge {ge}")?;
        }
        if let Some(le) = self.le {
            write!(f, " le {le}")?;
        }
        Ok(())
    }
}

/// A neighbor's allowAsIn: whether routes whose AS path holds the local AS are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowAsIn {
    /// `none`: refused (FRR's default), and no other configuration may relax it.
    Never,
    /// `origin`: accepted when the local AS is the origin.
    Origin,
    /// `1`-`10`: accepted with up to this many occurrences.
    Count(u8),
}

impl AllowAsIn {
    /// How much the value accepts: the least restrictive of two compatible values wins.
    fn openness(self) -> u8 {
        match self {
            AllowAsIn::Never => 0,
            AllowAsIn::Origin => 1,
            AllowAsIn::Count(n) => 1 + n,
        }
    }

    /// Two values set for one neighbor: `none` agrees only with itself (`None` is a
    /// conflict); otherwise the least restrictive wins.
    pub fn combine(self, other: AllowAsIn) -> Option<AllowAsIn> {
        match (self, other) {
            (AllowAsIn::Never, AllowAsIn::Never) => Some(AllowAsIn::Never),
            (AllowAsIn::Never, _) | (_, AllowAsIn::Never) => None,
            (a, b) => Some(if b.openness() > a.openness() { b } else { a }),
        }
    }

    /// The argument of FRR's `neighbor X allowas-in`, or `None` when nothing is rendered.
    pub fn frr_arg(self) -> Option<String> {
        match self {
            AllowAsIn::Never => None,
            AllowAsIn::Origin => Some("origin".into()),
            AllowAsIn::Count(n) => Some(n.to_string()),
        }
    }
}

impl fmt::Display for AllowAsIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowAsIn::Never => write!(f, "none"),
            AllowAsIn::Origin => write!(f, "origin"),
            AllowAsIn::Count(n) => write!(f, "{n}"),
        }
    }
}

pub const DEFAULT_PORT: u16 = 179;
pub const DEFAULT_HOLD: u64 = 180;
pub const DEFAULT_KEEPALIVE: u64 = 60;
pub const DEFAULT_CONNECT: u64 = 60;

/// Route-map entries that set attributes on advertised prefixes (one per local preference or
/// community and address family) that one neighbor may have. They are numbered inside 4,999
/// route-map slots (`render`); the limit keeps that space far from full. The CRD allows 1,000
/// `withLocalPref` and 1,000 `withCommunity` items per neighbor, at most 4,000 entries.
pub const MAX_PROPERTY_ENTRIES: usize = 4000;

/// One BGP neighbor of one router, grouped as BGP engineers (and gobgp's configuration) group
/// it: the session, the address families it carries, what goes out and what comes in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Neighbor {
    pub peer: Peer,
    pub vrf: String,
    pub session: Session,
    pub families: AddressFamilies,
    pub outbound: Outbound,
    pub inbound: Inbound,
    pub sources: Sources,
}

/// The BGP session itself: who the peer is and how the TCP session and its timers run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Session {
    pub remote_as: RemoteAs,
    /// `local-as` for this session, replacing the router's ASN.
    pub local_asn: Option<u32>,
    pub port: u16,
    pub source_address: Option<String>,
    pub ebgp_multihop: bool,
    #[serde(skip)]
    pub password: Option<String>,
    pub timers: Timers,
    pub bfd_profile: Option<String>,
    pub graceful_restart: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timers {
    pub keepalive: u64,
    pub hold: u64,
    /// Rendered only when some configuration set it.
    pub connect: Option<u64>,
}

/// The address families the session is activated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AddressFamilies {
    /// Which of ipv4 and ipv6 unicast the session carries.
    pub ip: IpFamilies,
    /// Activated in ipv4/ipv6 unicast.
    pub unicast: bool,
    /// Activated in l2vpn evpn.
    pub evpn: bool,
}

/// Outbound policy: what is advertised to the neighbor and with which attributes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outbound {
    /// Shared between neighbors that advertise exactly the same prefixes from the same objects
    /// (MetalLB announces every service to every peer).
    pub advertise: Arc<BTreeMap<IpNet, Sources>>,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub local_pref: BTreeMap<IpNet, u32>,
    pub communities: BTreeMap<Community, BTreeSet<IpNet>>,
    /// How many times the local ASN (`session.local_asn`, else the router's) is prepended to
    /// each prefix's AS path, and the configurations that asked for it.
    pub as_path_prepend: BTreeMap<IpNet, (u32, Sources)>,
}

/// Inbound policy: what is accepted from the neighbor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inbound {
    /// Set by some configuration (`none` included, which renders nothing).
    pub allow_as_in: Option<AllowAsIn>,
    /// `Some(sources)`: everything is accepted, because these configurations asked for it.
    pub receive_all: Option<Sources>,
    pub receive: BTreeMap<PrefixMatch, Sources>,
    pub always_block: Vec<IpNet>,
}

impl Neighbor {
    /// The anchor's neighbor ID: the peer, plus `-<vrf>` outside the default VRF. Prefix-list and
    /// route-map names start with it.
    pub fn id(&self) -> String {
        if self.vrf.is_empty() {
            self.peer.to_string()
        } else {
            format!("{}-{}", self.peer, self.vrf)
        }
    }

    /// Sessions whose TCP peer is directly connected but whose address FRR would not see as
    /// such (IPv6 link-local next hops): the anchor's rule for `disable-connected-check`.
    /// `ebgp-multihop` as FRR keeps it: only for eBGP sessions (FRR silently drops it for an
    /// iBGP one, which would leave a difference the applier could never clear).
    pub fn ebgp_multihop(&self, router_asn: u32) -> bool {
        self.session.ebgp_multihop && !self.session.remote_as.is_internal(router_asn)
    }

    pub fn disable_connected_check(&self, router_asn: u32) -> bool {
        if self.families.ip != IpFamilies::Ipv6 || self.session.ebgp_multihop {
            return false;
        }
        match self.session.remote_as {
            RemoteAs::External => true,
            RemoteAs::Number(n) => n != router_asn,
            RemoteAs::Internal => false,
        }
    }
}

impl Outbound {
    /// Route-map entries that set local preference, communities or an AS-path prepend (see
    /// `MAX_PROPERTY_ENTRIES`).
    pub fn property_entries(&self) -> usize {
        let local_prefs: BTreeSet<(u32, Family)> = self.local_pref.iter().map(|(p, lp)| (*lp, Family::of(p))).collect();
        let prepends: BTreeSet<(u32, Family)> = self.as_path_prepend.iter().map(|(p, (n, _))| (*n, Family::of(p))).collect();
        let communities: usize =
            self.communities.values().map(|nets| [Family::V4, Family::V6].into_iter().filter(|f| nets.iter().any(|n| Family::of(n) == *f)).count()).sum();
        local_prefs.len() + communities + prepends.len()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BfdProfile {
    pub name: String,
    pub receive_interval: Option<u32>,
    pub transmit_interval: Option<u32>,
    pub detect_multiplier: Option<u32>,
    pub echo_interval: Option<u32>,
    pub echo_mode: bool,
    pub passive_mode: bool,
    pub minimum_ttl: Option<u32>,
    pub sources: Sources,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VniProperties {
    pub rd: Option<String>,
    pub import_rts: BTreeSet<String>,
    pub export_rts: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct L3Vni {
    pub vni: u32,
    pub props: VniProperties,
    pub advertise_unicast: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evpn {
    pub advertise_all_vni: bool,
    pub advertise_svi: bool,
    pub l2vnis: BTreeMap<u32, VniProperties>,
    pub l3vni: Option<L3Vni>,
}

/// FRR's log level keyword for the API's level.
pub fn frr_log_level(level: crate::api::LogLevel) -> &'static str {
    use crate::api::LogLevel::*;
    match level {
        All | Debug => "debugging",
        Info => "informational",
        Warn => "warnings",
        Error => "errors",
        None => "emergencies",
    }
}
