//! Per-object conversion: one FRRConfiguration, checked field by field, into its contribution to
//! the merged model. All errors of the object are collected, each with its field path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::error::{Error, ObjRef};
use super::model::{AddressFamilies, AllowAsIn, BfdProfile, IpFamilies, Peer, PrefixMatch, RemoteAs, VniProperties};
use super::values::{self, Community, Family};
use crate::api;

/// A Secret of the agent's namespace as the core needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretEntry {
    pub type_: String,
    /// The `password` key: `None` when absent, `Err` when not UTF-8.
    pub password: Option<Result<String, ()>>,
}

pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";

/// A resolved password and where it came from (the value is never printed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Password {
    pub value: String,
    pub origin: String,
}

#[derive(Clone, Debug)]
pub struct ConfigContrib {
    pub obj: ObjRef,
    pub routers: Vec<RouterContrib>,
    pub bfd_profiles: Vec<BfdProfile>,
    pub raw: Option<(i32, String)>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RouterContrib {
    pub obj: ObjRef,
    pub asn: u32,
    pub vrf: String,
    pub router_id: Option<Ipv4Addr>,
    pub prefixes: BTreeSet<IpNet>,
    pub import_vrfs: BTreeSet<String>,
    pub evpn: Option<EvpnContrib>,
    pub neighbors: Vec<NeighborContrib>,
}

#[derive(Clone, Debug)]
pub struct EvpnContrib {
    pub advertise_vnis: Option<api::AdvertiseVnis>,
    pub advertise_svi: bool,
    pub l2vnis: BTreeMap<u32, VniProperties>,
    pub l3vni: Option<(u32, VniProperties, bool)>,
}

/// One object's view of a neighbor, grouped as the model's `Neighbor` is. Settings the object
/// leaves unset are `None` (no opinion); the merge resolves them to values.
#[derive(Clone, Debug)]
pub struct NeighborContrib {
    pub obj: ObjRef,
    pub peer: Peer,
    pub session: SessionContrib,
    pub families: AddressFamilies,
    pub outbound: OutboundContrib,
    pub inbound: InboundContrib,
}

#[derive(Clone, Debug)]
pub struct SessionContrib {
    pub remote_as: RemoteAs,
    pub local_asn: Option<u32>,
    pub port: Option<u16>,
    pub source_address: Option<String>,
    pub ebgp_multihop: bool,
    pub password: Option<Password>,
    pub hold: Option<u64>,
    pub keepalive: Option<u64>,
    pub connect: Option<u64>,
    pub bfd_profile: Option<String>,
    pub graceful_restart: bool,
}

#[derive(Clone, Debug, Default)]
pub struct OutboundContrib {
    pub advertise: BTreeSet<IpNet>,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub local_pref: BTreeMap<IpNet, u32>,
    pub communities: BTreeMap<Community, BTreeSet<IpNet>>,
    /// How many times the local ASN is prepended to each prefix's AS path.
    pub as_path_prepend: BTreeMap<IpNet, u32>,
}

#[derive(Clone, Debug, Default)]
pub struct InboundContrib {
    pub allow_as_in: Option<AllowAsIn>,
    pub receive_all: bool,
    pub receive: BTreeSet<PrefixMatch>,
}

/// The most an AS path may be prepended by one setting (as upstream's CRD: 1-10).
pub const MAX_AS_PATH_PREPEND: u32 = 10;

/// Treats `""` like an absent value, as the Go API's omitempty strings do.
fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

struct Ctx<'a> {
    obj: &'a ObjRef,
    errors: Vec<Error>,
}

impl Ctx<'_> {
    fn err(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(Error::invalid(self.obj, field, reason));
    }
    fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(field, e);
                None
            }
        }
    }
}

/// VRF name canonical form: "" for the default VRF (`default` is FRR's name for it).
pub fn canonical_vrf(vrf: Option<&str>) -> &str {
    match vrf {
        None | Some("") | Some("default") => "",
        Some(v) => v,
    }
}

/// The most neighbors one object may hold, over all its routers: far beyond any node's sessions,
/// and it bounds what one admitted object costs every agent that selects it (10,000 neighbors
/// took an agent from 18 MB to 170 MB). The CRD bounds each router's list to the same number.
pub const MAX_NEIGHBORS: usize = 1000;

pub fn convert(obj: &ObjRef, spec: &api::FRRConfigurationSpec, secrets: &BTreeMap<String, SecretEntry>) -> Result<ConfigContrib, Vec<Error>> {
    let mut cx = Ctx { obj, errors: Vec::new() };
    // checked before anything is converted, so that the refusal costs nothing per neighbor
    let neighbors: usize = spec.bgp.routers.iter().map(|r| r.neighbors.len()).sum();
    if neighbors > MAX_NEIGHBORS {
        cx.err(
            "spec.bgp.routers[].neighbors",
            format!("{neighbors} neighbors in this FRRConfiguration; at most {MAX_NEIGHBORS} (split them over several objects)"),
        );
        return Err(cx.errors);
    }
    let mut warnings = Vec::new();

    // BFD profiles: unique by name inside one object.
    let mut bfd_profiles: Vec<BfdProfile> = Vec::new();
    for (i, p) in spec.bgp.bfd_profiles.iter().enumerate() {
        let path = format!("spec.bgp.bfdProfiles[{i}]");
        if cx.check(&format!("{path}.name"), values::check_name(&p.name, "BFD profile name", 64)).is_none() {
            continue;
        }
        if bfd_profiles.iter().any(|q| q.name == p.name) {
            cx.err(format!("{path}.name"), format!("duplicate BFD profile name {:?} in this FRRConfiguration", p.name));
            continue;
        }
        let range = |cx: &mut Ctx, field: &str, v: Option<u32>, lo: u32, hi: u32| {
            if let Some(v) = v {
                if v < lo || v > hi {
                    cx.err(format!("{path}.{field}"), format!("{v} is out of range {lo}-{hi}"));
                }
            }
        };
        range(&mut cx, "receiveInterval", p.receive_interval, 10, 60000);
        range(&mut cx, "transmitInterval", p.transmit_interval, 10, 60000);
        range(&mut cx, "echoInterval", p.echo_interval, 10, 60000);
        range(&mut cx, "detectMultiplier", p.detect_multiplier, 2, 255);
        range(&mut cx, "minimumTtl", p.minimum_ttl, 1, 254);
        bfd_profiles.push(BfdProfile {
            name: p.name.clone(),
            receive_interval: p.receive_interval,
            transmit_interval: p.transmit_interval,
            detect_multiplier: p.detect_multiplier,
            echo_interval: p.echo_interval,
            echo_mode: p.echo_mode.unwrap_or(false),
            passive_mode: p.passive_mode.unwrap_or(false),
            minimum_ttl: p.minimum_ttl,
            sources: super::model::Sources::one(obj),
        });
    }

    // Prefixes per VRF of this object, for imports (the anchor's prefixesForVRFs).
    let mut prefixes_for_vrf: BTreeMap<String, BTreeSet<IpNet>> = BTreeMap::new();
    let mut router_prefixes: Vec<BTreeSet<IpNet>> = Vec::new();
    for (i, r) in spec.bgp.routers.iter().enumerate() {
        let mut set = BTreeSet::new();
        for (k, p) in r.prefixes.iter().enumerate() {
            if let Some(net) = cx.check(&format!("spec.bgp.routers[{i}].prefixes[{k}]"), values::parse_prefix(p)) {
                set.insert(net);
            }
        }
        prefixes_for_vrf.entry(canonical_vrf(r.vrf.as_deref()).to_string()).or_default().extend(set.iter().copied());
        router_prefixes.push(set);
    }
    let mut seen_vrfs: BTreeMap<String, usize> = BTreeMap::new();

    let mut routers = Vec::new();
    for (i, r) in spec.bgp.routers.iter().enumerate() {
        let path = format!("spec.bgp.routers[{i}]");
        if r.asn == 0 {
            cx.err(format!("{path}.asn"), "the router ASN must be between 1 and 4294967295");
        }
        let vrf = canonical_vrf(r.vrf.as_deref()).to_string();
        if !vrf.is_empty() {
            let _ = cx.check(&format!("{path}.vrf"), values::check_ifname(&vrf, "VRF name"));
        }
        if let Some(prev) = seen_vrfs.insert(vrf.clone(), i) {
            cx.err(
                format!("{path}.vrf"),
                format!("spec.bgp.routers[{prev}] is already in vrf {:?}; one router per VRF", if vrf.is_empty() { "default" } else { &vrf }),
            );
        }
        let router_id = match non_empty(&r.id) {
            Some(id) => cx.check(&format!("{path}.id"), values::parse_ipv4(id).map_err(|e| format!("{e}: a BGP router-id is an IPv4 address"))),
            None => None,
        };
        let mut import_vrfs = BTreeSet::new();
        let mut all_prefixes = router_prefixes[i].clone();
        for (k, imp) in r.imports.iter().enumerate() {
            let field = format!("{path}.imports[{k}].vrf");
            if imp.vrf.is_empty() {
                cx.err(field, "the VRF to import from is empty");
                continue;
            }
            let key = canonical_vrf(Some(&imp.vrf)).to_string();
            if key == vrf {
                cx.err(field, format!("a router cannot import its own vrf {:?}", imp.vrf));
                continue;
            }
            if !key.is_empty() && values::check_ifname(&key, "VRF name").is_err() {
                cx.err(field, format!("{:?} is not a valid VRF name", imp.vrf));
                continue;
            }
            match prefixes_for_vrf.get(&key) {
                Some(p) => all_prefixes.extend(p.iter().copied()),
                None => {
                    cx.err(
                        field,
                        format!(
                            "imports vrf {:?}, but this FRRConfiguration has no router in that VRF (imports must refer to routers of the same object)",
                            imp.vrf
                        ),
                    );
                    continue;
                }
            }
            import_vrfs.insert(if key.is_empty() { "default".to_string() } else { key });
        }
        let evpn = r.evpn.as_ref().map(|e| convert_evpn(&mut cx, &path, e));
        let view = RouterView { asn: r.asn, all_prefixes: &all_prefixes, bfd_profiles: &bfd_profiles };
        let mut neighbors = Vec::new();
        for (j, n) in r.neighbors.iter().enumerate() {
            let npath = format!("{path}.neighbors[{j}]");
            if n.disable_mp {
                warnings.push(format!("FRRConfiguration {obj}: {npath}.disableMP is deprecated and ignored"));
            }
            if let Some(nc) = convert_neighbor(&mut cx, &npath, &view, n, secrets) {
                if nc.session.ebgp_multihop && nc.session.remote_as.is_internal(r.asn) {
                    warnings.push(format!(
                        "FRRConfiguration {obj}: {npath}.ebgpMultiHop is ignored: the session is iBGP, which FRR never limits to one hop (it would drop the line)"
                    ));
                }
                neighbors.push(nc);
            }
        }
        routers.push(RouterContrib { obj: obj.clone(), asn: r.asn, vrf, router_id, prefixes: router_prefixes[i].clone(), import_vrfs, evpn, neighbors });
    }

    let raw = if spec.raw.raw_config.is_empty() { None } else { Some((spec.raw.priority, spec.raw.raw_config.clone())) };
    if cx.errors.is_empty() {
        Ok(ConfigContrib { obj: obj.clone(), routers, bfd_profiles, raw, warnings })
    } else {
        Err(cx.errors)
    }
}

fn convert_vni_props(cx: &mut Ctx, path: &str, rd: &Option<String>, import_rts: &[String], export_rts: &[String]) -> VniProperties {
    let mut v = VniProperties::default();
    if let Some(rd) = non_empty(rd) {
        v.rd = cx.check(&format!("{path}.rd"), values::parse_rd_rt(rd, "route distinguisher", false));
    }
    for (k, rt) in import_rts.iter().enumerate() {
        if let Some(rt) = cx.check(&format!("{path}.importRTs[{k}]"), values::parse_rd_rt(rt, "import route target", true)) {
            v.import_rts.insert(rt);
        }
    }
    for (k, rt) in export_rts.iter().enumerate() {
        if let Some(rt) = cx.check(&format!("{path}.exportRTs[{k}]"), values::parse_rd_rt(rt, "export route target", false)) {
            v.export_rts.insert(rt);
        }
    }
    v
}

fn check_vni(cx: &mut Ctx, field: &str, vni: u32) {
    if !(1..=16_777_215).contains(&vni) {
        cx.err(field, format!("VNI {vni} is out of range 1-16777215"));
    }
}

fn convert_evpn(cx: &mut Ctx, rpath: &str, e: &api::EvpnConfig) -> EvpnContrib {
    let path = format!("{rpath}.evpn");
    let mut l2vnis = BTreeMap::new();
    for (k, l2) in e.l2vnis.iter().enumerate() {
        let p = format!("{path}.l2vnis[{k}]");
        check_vni(cx, &format!("{p}.vni"), l2.vni);
        let props = convert_vni_props(cx, &p, &l2.rd, &l2.import_rts, &l2.export_rts);
        for (k, rt) in l2.import_rts.iter().enumerate() {
            if rt.starts_with("*:") {
                cx.err(format!("{p}.importRTs[{k}]"), format!("{rt:?}: FRR accepts wildcard route targets only for an l3vni, not for an l2vni"));
            }
        }
        if l2vnis.insert(l2.vni, props).is_some() {
            cx.err(format!("{p}.vni"), format!("duplicate L2 VNI {} in this router", l2.vni));
        }
    }
    let l3vni = e.l3vni.as_ref().map(|l3| {
        let p = format!("{path}.l3vni");
        check_vni(cx, &format!("{p}.vni"), l3.vni);
        if l3.advertise_prefixes.is_empty() {
            cx.err(format!("{p}.advertisePrefixes"), "must list \"unicast\"");
        }
        let props = convert_vni_props(cx, &p, &l3.rd, &l3.import_rts, &l3.export_rts);
        (l3.vni, props, l3.advertise_prefixes.contains(&api::AdvertisePrefixFamily::Unicast))
    });
    EvpnContrib { advertise_vnis: e.advertise_vnis, advertise_svi: e.advertise_svi, l2vnis, l3vni }
}

/// A BGP timer in whole seconds, 0-65535 (FRR's range). FRR counts these timers in seconds:
/// a hold time must be whole seconds (`999ms` would become 0, which switches the hold timer
/// off); a keepalive of at least 1s is truncated, as frr-k8s does, because MetalLB derives it
/// as a third of the hold time (`33.333333333s`), but one below 1s (which would become 0, no
/// keepalives) is refused. Returns (seconds, nanoseconds as given).
fn timer(d: &str, hold: bool) -> Result<(u64, u128), String> {
    let ns = values::parse_go_duration(d)?;
    let s = ns / 1_000_000_000;
    if ns % 1_000_000_000 != 0 && (hold || s == 0) {
        return Err(if hold {
            format!("{d}: the hold time must be a whole number of seconds (FRR counts it in seconds)")
        } else {
            format!("{d}: FRR would take this keepalive time as 0 (no keepalives); use 0s or at least 1s")
        });
    }
    if s > 65535 {
        return Err(format!("{d}: at most 65535s"));
    }
    Ok((s as u64, ns))
}

/// What the router around a neighbor offers it: its ASN, the prefixes it may advertise and the
/// BFD profiles of the object.
struct RouterView<'a> {
    asn: u32,
    all_prefixes: &'a BTreeSet<IpNet>,
    bfd_profiles: &'a [BfdProfile],
}

/// One neighbor, section by section; `None` when any of its fields is refused (every error is
/// collected first).
fn convert_neighbor(cx: &mut Ctx, path: &str, router: &RouterView, n: &api::Neighbor, secrets: &BTreeMap<String, SecretEntry>) -> Option<NeighborContrib> {
    let before = cx.errors.len();
    let peer = convert_peer(cx, path, n);
    let session = convert_session(cx, path, router, n, secrets);
    let families = convert_families(peer.as_ref(), n);
    let peer_name = peer.as_ref().map(|p| p.to_string()).unwrap_or_default();
    let inbound = convert_inbound(cx, path, n);
    let outbound = convert_outbound(cx, path, router, &n.to_advertise, families.ip, &peer_name);
    if cx.errors.len() > before {
        return None;
    }
    Some(NeighborContrib { obj: cx.obj.clone(), peer: peer?, session: session?, families, outbound, inbound })
}

/// The neighbor's identity: an address, or an interface for an unnumbered session.
fn convert_peer(cx: &mut Ctx, path: &str, n: &api::Neighbor) -> Option<Peer> {
    match (non_empty(&n.address), non_empty(&n.interface)) {
        (None, None) => {
            cx.err(path, "neighbor has neither address nor interface; exactly one is required");
            None
        }
        (Some(_), Some(_)) => {
            cx.err(path, "neighbor has both address and interface; exactly one is allowed");
            None
        }
        (Some(a), None) => cx.check(&format!("{path}.address"), values::parse_ip(a)).map(Peer::Address),
        (None, Some(i)) => {
            // `neighbor 192.0.2.1 interface` would be read by FRR as the address 192.0.2.1
            let r = values::check_ifname(i, "interface").and_then(|_| match i.parse::<IpAddr>() {
                Ok(_) => Err(format!("interface {i:?} is spelled like an IP address, which FRR would take for the address; use address instead")),
                Err(_) => Ok(Peer::Interface(i.to_string())),
            });
            cx.check(&format!("{path}.interface"), r)
        }
    }
}

/// An unnumbered session and `dualStackAddressFamily` carry both IP families; otherwise the
/// peer's address decides.
fn convert_families(peer: Option<&Peer>, n: &api::Neighbor) -> AddressFamilies {
    let ip = match peer {
        Some(Peer::Interface(_)) => IpFamilies::Dual,
        _ if n.dual_stack_address_family => IpFamilies::Dual,
        Some(Peer::Address(IpAddr::V4(_))) => IpFamilies::Ipv4,
        Some(Peer::Address(IpAddr::V6(_))) => IpFamilies::Ipv6,
        None => IpFamilies::Dual,
    };
    let afs = &n.address_families;
    AddressFamilies { ip, unicast: afs.is_empty() || afs.contains(&api::AddressFamily::Unicast), evpn: afs.contains(&api::AddressFamily::Evpn) }
}

/// Remote and local AS, transport, timers, password, BFD and graceful restart.
fn convert_session(cx: &mut Ctx, path: &str, router: &RouterView, n: &api::Neighbor, secrets: &BTreeMap<String, SecretEntry>) -> Option<SessionContrib> {
    let remote_as = match (n.asn, n.dynamic_asn) {
        (0, None) => {
            cx.err(format!("{path}.asn"), "neighbor has neither asn nor dynamicASN; exactly one is required");
            None
        }
        (a, Some(_)) if a != 0 => {
            cx.err(format!("{path}.dynamicASN"), "neighbor has both asn and dynamicASN; exactly one is allowed");
            None
        }
        (a, None) => Some(RemoteAs::Number(a)),
        (_, Some(api::DynamicAsn::Internal)) => Some(RemoteAs::Internal),
        (_, Some(api::DynamicAsn::External)) => Some(RemoteAs::External),
    };
    let local_asn = if n.local_asn == 0 { None } else { Some(n.local_asn) };
    if local_asn.is_some() && n.asn != 0 && n.asn == router.asn {
        cx.err(format!("{path}.localASN"), "localASN is not supported for iBGP sessions (asn equals the router's ASN)");
    }
    if let Some(l) = local_asn {
        if l == router.asn {
            cx.err(format!("{path}.localASN"), format!("localASN {l} equals the router's ASN"));
        }
    }
    let port = match n.port {
        None => None,
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        Some(p) => {
            cx.err(format!("{path}.port"), format!("{p} is not a TCP port (1-65535)"));
            None
        }
    };
    let (hold, keepalive, connect) = convert_timers(cx, path, n);
    let password = convert_password(cx, path, n, secrets);
    let source_address = match non_empty(&n.source_address) {
        None => None,
        Some(s) => match values::parse_ip(s) {
            Ok(ip) => Some(ip.to_string()),
            Err(_) => cx.check(
                &format!("{path}.sourceaddress"),
                values::check_ifname(s, "source address").map(|_| s.to_string()).map_err(|e| format!("{e}; expected an IP address or an interface name")),
            ),
        },
    };
    let bfd_profile = match non_empty(&n.bfd_profile) {
        None => None,
        Some(p) if router.bfd_profiles.iter().any(|b| b.name == p) => Some(p.to_string()),
        Some(p) => {
            cx.err(format!("{path}.bfdProfile"), format!("BFD profile {p:?} is not defined in spec.bgp.bfdProfiles of this FRRConfiguration"));
            None
        }
    };
    Some(SessionContrib {
        remote_as: remote_as?,
        local_asn,
        port,
        source_address,
        ebgp_multihop: n.ebgp_multi_hop,
        password,
        hold,
        keepalive,
        connect,
        bfd_profile,
        graceful_restart: n.enable_graceful_restart,
    })
}

/// Hold, keepalive and connect times in seconds, each `None` when unset.
fn convert_timers(cx: &mut Ctx, path: &str, n: &api::Neighbor) -> (Option<u64>, Option<u64>, Option<u64>) {
    let hold_t = n.hold_time.as_deref().and_then(|d| cx.check(&format!("{path}.holdTime"), timer(d, true)));
    let keepalive_t = n.keepalive_time.as_deref().and_then(|d| cx.check(&format!("{path}.keepaliveTime"), timer(d, false)));
    let (hold, keepalive) = (hold_t.map(|t| t.0), keepalive_t.map(|t| t.0));
    match (&n.hold_time, &n.keepalive_time) {
        (Some(_), None) | (None, Some(_)) => cx.err(format!("{path}.holdTime"), "holdTime and keepaliveTime must be set together or not at all"),
        _ => {}
    }
    if let Some(h) = hold {
        if h != 0 && h < 3 {
            cx.err(format!("{path}.holdTime"), format!("{h}s: the hold time must be 0 or at least 3s"));
        }
    }
    if let (Some((_, hn)), Some((_, kn)), Some(hd), Some(kd)) = (hold_t, keepalive_t, &n.hold_time, &n.keepalive_time) {
        if kn > hn {
            cx.err(format!("{path}.keepaliveTime"), format!("keepaliveTime {kd} must not be greater than holdTime {hd}"));
        }
    }
    let connect = match n.connect_time.as_deref() {
        None => None,
        Some(d) => match values::parse_go_duration(d) {
            Ok(ns) if ns % 1_000_000_000 == 0 && (1..=65535).contains(&(ns / 1_000_000_000)) => Some((ns / 1_000_000_000) as u64),
            Ok(_) => {
                cx.err(format!("{path}.connectTime"), format!("{d}: the connect time must be a whole number of seconds between 1s and 65535s"));
                None
            }
            Err(e) => {
                cx.err(format!("{path}.connectTime"), e);
                None
            }
        },
    };
    (hold, keepalive, connect)
}

/// An inline password or one from a Secret, never both.
fn convert_password(cx: &mut Ctx, path: &str, n: &api::Neighbor, secrets: &BTreeMap<String, SecretEntry>) -> Option<Password> {
    let secret_name = n.password_secret.as_ref().and_then(|s| s.name.as_deref()).filter(|s| !s.is_empty());
    match (non_empty(&n.password), secret_name) {
        (Some(_), Some(_)) => {
            cx.err(format!("{path}.password"), "password and passwordSecret are both set; use one");
            None
        }
        (Some(p), None) => {
            cx.check(&format!("{path}.password"), values::check_password(p)).map(|_| Password { value: p.to_string(), origin: "inline password".into() })
        }
        (None, Some(name)) => resolve_secret(cx, path, name, secrets),
        (None, None) => None,
    }
}

/// `toAdvertise`: the prefixes sent, their next hop and the attributes set on them. Every
/// attribute must be for a prefix that is advertised.
fn convert_outbound(cx: &mut Ctx, path: &str, router: &RouterView, adv: &api::Advertise, ip: IpFamilies, peer_name: &str) -> OutboundContrib {
    let family_ok = |net: &IpNet| ip.has(Family::of(net));
    let mut out = OutboundContrib::default();
    match adv.allowed.mode {
        api::AllowMode::All => out.advertise.extend(router.all_prefixes.iter().copied().filter(|p| family_ok(p))),
        api::AllowMode::Filtered => {
            for (k, p) in adv.allowed.prefixes.iter().enumerate() {
                let field = format!("{path}.toAdvertise.allowed.prefixes[{k}]");
                let Some(net) = cx.check(&field, values::parse_prefix(p)) else { continue };
                if !family_ok(&net) {
                    cx.err(field, format!("{net} is not of the neighbor's address family ({})", ip.name()));
                } else if !router.all_prefixes.contains(&net) {
                    cx.err(field, format!("{net} is advertised to neighbor {peer_name} but is not a prefix of the router (spec.bgp.routers[].prefixes or an imported VRF of this FRRConfiguration)"));
                } else {
                    out.advertise.insert(net);
                }
            }
        }
    }
    if let Some(nh) = &adv.next_hop {
        if let Some(v4) = non_empty(&nh.ipv4) {
            let field = format!("{path}.toAdvertise.nextHop.ipv4");
            if let Some(a) = cx.check(&field, values::parse_ipv4(v4)) {
                if ip.has(Family::V4) {
                    out.next_hop_v4 = Some(a);
                } else {
                    cx.err(field, format!("IPv4 next hop {a} set for neighbor {peer_name}, which has no IPv4 address family"));
                }
            }
        }
        if let Some(v6) = non_empty(&nh.ipv6) {
            let field = format!("{path}.toAdvertise.nextHop.ipv6");
            if let Some(a) = cx.check(&field, values::parse_ipv6(v6)) {
                if ip.has(Family::V6) {
                    out.next_hop_v6 = Some(a);
                } else {
                    cx.err(field, format!("IPv6 next hop {a} set for neighbor {peer_name}, which has no IPv6 address family"));
                }
            }
        }
    }
    for (k, lp) in adv.with_local_pref.iter().enumerate() {
        if lp.prefixes.is_empty() {
            cx.err(format!("{path}.toAdvertise.withLocalPref[{k}].prefixes"), "must list at least one prefix");
        }
        for (m, p) in lp.prefixes.iter().enumerate() {
            let field = format!("{path}.toAdvertise.withLocalPref[{k}].prefixes[{m}]");
            let Some(net) = cx.check(&field, values::parse_prefix(p)) else { continue };
            if !out.advertise.contains(&net) {
                cx.err(field, format!("local preference {} is set for {net}, which is not advertised to neighbor {peer_name}", lp.local_pref));
                continue;
            }
            match out.local_pref.insert(net, lp.local_pref) {
                Some(prev) if prev != lp.local_pref => {
                    cx.err(field, format!("prefix {net} is configured with both local preference {prev} and {}", lp.local_pref))
                }
                _ => {}
            }
        }
    }
    for (k, c) in adv.with_community.iter().enumerate() {
        let Some(community) = cx.check(&format!("{path}.toAdvertise.withCommunity[{k}].community"), Community::parse(&c.community)) else { continue };
        if c.prefixes.is_empty() {
            cx.err(format!("{path}.toAdvertise.withCommunity[{k}].prefixes"), "must list at least one prefix");
        }
        for (m, p) in c.prefixes.iter().enumerate() {
            let field = format!("{path}.toAdvertise.withCommunity[{k}].prefixes[{m}]");
            let Some(net) = cx.check(&field, values::parse_prefix(p)) else { continue };
            if !out.advertise.contains(&net) {
                cx.err(field, format!("community {community} is set for {net}, which is not advertised to neighbor {peer_name}"));
                continue;
            }
            out.communities.entry(community.clone()).or_default().insert(net);
        }
    }
    for (k, pp) in adv.with_as_path_prepend.iter().enumerate() {
        let base = format!("{path}.toAdvertise.withAsPathPrepend[{k}]");
        if !(1..=MAX_AS_PATH_PREPEND).contains(&pp.as_path_prepend) {
            cx.err(format!("{base}.asPathPrepend"), format!("{} is not a count from 1 to {MAX_AS_PATH_PREPEND}", pp.as_path_prepend));
            continue;
        }
        if pp.prefixes.is_empty() {
            cx.err(format!("{base}.prefixes"), "must list at least one prefix");
        }
        for (m, p) in pp.prefixes.iter().enumerate() {
            let field = format!("{base}.prefixes[{m}]");
            let Some(net) = cx.check(&field, values::parse_prefix(p)) else { continue };
            if !out.advertise.contains(&net) {
                cx.err(field, format!("AS-path prepend {} is set for {net}, which is not advertised to neighbor {peer_name}", pp.as_path_prepend));
                continue;
            }
            if let Some(prev) = out.as_path_prepend.insert(net, pp.as_path_prepend) {
                // also with the same count: upstream refuses a prefix listed twice
                cx.err(field, format!("prefix {net} is listed twice in withAsPathPrepend (counts {prev} and {})", pp.as_path_prepend));
            }
        }
    }
    out
}

/// `allowAsIn` and `toReceive`: what the neighbor's routes may carry and which are accepted.
fn convert_inbound(cx: &mut Ctx, path: &str, n: &api::Neighbor) -> InboundContrib {
    let allow_as_in = match n.allow_as_in.as_deref() {
        None | Some("") => None,
        Some("none") => Some(AllowAsIn::Never),
        Some("origin") => Some(AllowAsIn::Origin),
        Some(v) => match v.parse::<u8>() {
            // digits only, as the API's enum: Rust's parse would also take "+1"
            Ok(c) if (1..=10).contains(&c) && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()) => Some(AllowAsIn::Count(c)),
            _ => {
                cx.err(format!("{path}.allowAsIn"), format!("{v:?} is not one of \"\", none, origin, 1-10"));
                None
            }
        },
    };
    let rx = &n.to_receive.allowed;
    let receive_all = rx.mode == api::AllowMode::All;
    let mut receive = BTreeSet::new();
    if !receive_all {
        for (k, sel) in rx.prefixes.iter().enumerate() {
            let field = format!("{path}.toReceive.allowed.prefixes[{k}]");
            let Some(net) = cx.check(&format!("{field}.prefix"), values::parse_prefix(&sel.prefix)) else { continue };
            if let Some(m) = cx.check(&field, prefix_match(net, sel.ge, sel.le)) {
                receive.insert(m);
            }
        }
    }
    InboundContrib { allow_as_in, receive_all, receive }
}

/// Checks le/ge against the prefix and its family, and normalises a bound equal to the prefix
/// length away (it adds nothing, and FRR refuses it).
pub fn prefix_match(net: IpNet, ge: u32, le: u32) -> Result<PrefixMatch, String> {
    let len = u32::from(net.prefix_len());
    let max = u32::from(Family::of(&net).max_len());
    for (name, v) in [("le", le), ("ge", ge)] {
        if v > max {
            return Err(format!("{name} {v} is larger than {max}, the longest {} prefix", Family::of(&net).name()));
        }
        if v != 0 && v < len {
            return Err(format!("{name} {v} is shorter than the prefix length of {net}"));
        }
    }
    if le != 0 && ge != 0 && ge > le {
        return Err(format!("ge {ge} is greater than le {le}"));
    }
    // The range of prefix lengths selected, then its shortest spelling.
    let lo = if ge == 0 { len } else { ge };
    let hi = match (ge, le) {
        (_, l) if l != 0 => l,
        (0, 0) => len,
        _ => max,
    };
    let (ge, le) = match (lo == len, hi == len, hi == max) {
        (true, true, _) => (None, None),
        (true, false, _) => (None, Some(hi as u8)),
        (false, _, true) => (Some(lo as u8), None),
        (false, _, false) => (Some(lo as u8), Some(hi as u8)),
    };
    Ok(PrefixMatch { prefix: net, ge, le })
}

fn resolve_secret(cx: &mut Ctx, path: &str, name: &str, secrets: &BTreeMap<String, SecretEntry>) -> Option<Password> {
    let field = format!("{path}.passwordSecret");
    let fail = |cx: &mut Ctx, reason: String| {
        cx.errors.push(Error::Secret { object: cx.obj.clone(), field: field.clone(), reason });
        None
    };
    let Some(s) = secrets.get(name) else {
        return fail(cx, format!("Secret {name:?} not found in the agent's namespace"));
    };
    if s.type_ != BASIC_AUTH {
        return fail(cx, format!("Secret {name:?} has type {:?}; it must be {BASIC_AUTH:?}", s.type_));
    }
    match &s.password {
        None => fail(cx, format!("Secret {name:?} has no \"password\" key")),
        Some(Err(())) => fail(cx, format!("Secret {name:?}: the password is not valid UTF-8")),
        Some(Ok(p)) => match values::check_password(p) {
            Ok(()) => Some(Password { value: p.clone(), origin: format!("Secret {name:?}") }),
            Err(e) => fail(cx, format!("Secret {name:?}: {e}")),
        },
    }
}
