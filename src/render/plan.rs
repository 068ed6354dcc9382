//! From the model to a render plan: prefix lists (shared between neighbors when identical),
//! route-maps with stable entry numbers, and the per-router data the templates print.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::Serialize;

use crate::core::model::{Model, Neighbor, PrefixMatch, DEFAULT_HOLD, DEFAULT_KEEPALIVE, DEFAULT_PORT};
use crate::core::values::{fnv1a, Community, Family};

/// Route-map entry numbers. Entries that set attributes (`on-match next`) come first, in the
/// range below `OUT_ALLOWED_V4`; the permit entries close the map.
const ROUTE_MAP_PROPERTY_SLOTS: u64 = 4999;
const OUT_ALLOWED_V4: u32 = 5001;
const OUT_ALLOWED_V6: u32 = 5002;
const IN_DENIED_V4: u32 = 1;
const IN_DENIED_V6: u32 = 2;
const IN_ALLOWED_V4: u32 = 5001;
const IN_ALLOWED_V6: u32 = 5002;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub log_level: &'static str,
    pub debug: bool,
    pub hostname: String,
    pub prefix_lists: Vec<PrefixList>,
    pub route_maps: Vec<RouteMapEntry>,
    pub vrf_vnis: Vec<(String, u32)>,
    pub routers: Vec<RouterPlan>,
    pub bfd_profiles: Vec<crate::core::model::BfdProfile>,
    pub raw: Vec<RawPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RawPlan {
    pub source: String,
    pub priority: i32,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PrefixList {
    /// `ip` or `ipv6`.
    pub family: &'static str,
    pub name: String,
    pub entries: Vec<PrefixListEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PrefixListEntry {
    pub seq: u32,
    /// `permit <prefix>[ le N][ ge M]`, `permit any` or `deny any`.
    pub rule: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RouteMapEntry {
    pub name: String,
    pub action: &'static str,
    pub seq: u32,
    /// `ip` or `ipv6`.
    pub family: &'static str,
    pub prefix_list: String,
    pub local_pref: Option<u32>,
    pub community: Option<String>,
    pub large_community: Option<String>,
    /// The ASNs `set as-path prepend` adds (the local ASN, N times).
    pub as_path_prepend: Option<String>,
    pub next_hop_v4: Option<String>,
    pub next_hop_v6: Option<String>,
    pub on_match_next: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouterPlan {
    pub asn: u32,
    pub vrf: String,
    pub router_id: Option<String>,
    pub neighbors: Vec<NeighborPlan>,
    pub networks_v4: Vec<String>,
    pub networks_v6: Vec<String>,
    pub imports: Vec<String>,
    pub evpn: Option<EvpnPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NeighborPlan {
    /// Address or interface: the word after `neighbor`.
    pub peer: String,
    pub interface: bool,
    pub remote_as: String,
    pub ebgp_multihop: bool,
    pub local_asn: Option<u32>,
    pub port: Option<u16>,
    /// `(keepalive, hold)` when they differ from FRR's defaults.
    pub timers: Option<(u64, u64)>,
    pub connect: Option<u64>,
    pub password: Option<String>,
    pub source_address: Option<String>,
    pub graceful_restart: bool,
    pub bfd_profile: Option<String>,
    pub disable_connected_check: bool,
    /// The argument of `allowas-in`, rendered in every address family the neighbor is active in.
    pub allow_as_in: Option<String>,
    pub ipv4: bool,
    pub ipv6: bool,
    pub evpn: bool,
    pub route_map_in: String,
    pub route_map_out: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvpnPlan {
    pub advertise_all_vni: bool,
    pub advertise_svi: bool,
    pub l2vnis: Vec<VniPlan>,
    pub l3vni: Option<VniPlan>,
    pub advertise_ipv4: bool,
    pub advertise_ipv6: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VniPlan {
    pub vni: u32,
    pub rd: Option<String>,
    pub import_rts: Vec<String>,
    pub export_rts: Vec<String>,
}

/// Sequence numbers that depend only on the entry itself, so adding or removing an entry never
/// renumbers another. Collisions (rare: 32-bit space) are resolved by rehashing in entry order;
/// after `REHASHES` attempts the next free number is taken, so the work is bounded even when
/// the space is nearly full. The caller keeps `rules.len()` within `space` (the core refuses
/// more, see `MAX_PROPERTY_ENTRIES`); numbers beyond it are never invented.
fn stable_seqs(rules: &[String], space: u64, offset: u64) -> Vec<u32> {
    const REHASHES: u32 = 16;
    let mut used = BTreeSet::new();
    rules
        .iter()
        .take(usize::try_from(space).unwrap_or(usize::MAX))
        .map(|rule| {
            let mut slot = fnv1a(rule.as_bytes()) % space;
            for attempt in 1..=REHASHES {
                if !used.contains(&slot) {
                    break;
                }
                slot = fnv1a(format!("{rule}#{attempt}").as_bytes()) % space;
            }
            // linear probing: terminates, since fewer than `space` slots are taken
            while used.contains(&slot) {
                slot = (slot + 1) % space;
            }
            used.insert(slot);
            (offset + slot) as u32
        })
        .collect()
}

/// FRR prefix-list sequence numbers: 1..=4294967295.
fn prefix_list_seqs(rules: &[String]) -> Vec<u32> {
    stable_seqs(rules, 4_294_967_295, 1)
}

/// Names of the lists that only deny or only permit everything; every neighbor shares them.
pub const DENY_ANY: &str = "frr-composer-deny-any";
pub const PERMIT_ANY: &str = "frr-composer-permit-any";

/// One prefix-list entry, kept structured until the list is known to be new.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    DenyAny,
    PermitAny,
    Permit(PrefixMatch),
}

impl Rule {
    fn text(&self) -> String {
        match self {
            Rule::DenyAny => "deny any".into(),
            Rule::PermitAny => "permit any".into(),
            Rule::Permit(f) => format!("permit {f}"),
        }
    }
}

fn exact(net: IpNet) -> Rule {
    Rule::Permit(PrefixMatch { prefix: net, ge: None, le: None })
}

/// Identical lists of the same kind are emitted once, under the name of the first neighbor
/// (in render order) that uses them; the constant lists have fixed names.
#[derive(Default)]
struct Lists {
    by_content: BTreeMap<(String, &'static str, Vec<Rule>), String>,
    lists: Vec<PrefixList>,
}

impl Lists {
    fn intern(&mut self, kind: &str, family: Family, preferred_name: String, mut rules: Vec<Rule>) -> String {
        if rules.is_empty() {
            rules.push(Rule::DenyAny);
        }
        let (kind, preferred_name) = match rules.as_slice() {
            [Rule::DenyAny] => ("", DENY_ANY.to_string()),
            [Rule::PermitAny] => ("", PERMIT_ANY.to_string()),
            _ => (kind, preferred_name),
        };
        let key = (kind.to_string(), family.frr(), rules);
        if let Some(name) = self.by_content.get(&key) {
            return name.clone();
        }
        let texts: Vec<String> = key.2.iter().map(Rule::text).collect();
        let seqs = prefix_list_seqs(&texts);
        let mut entries: Vec<PrefixListEntry> = texts.into_iter().zip(seqs).map(|(rule, seq)| PrefixListEntry { seq, rule }).collect();
        entries.sort();
        self.lists.push(PrefixList { family: family.frr(), name: preferred_name.clone(), entries });
        self.by_content.insert(key, preferred_name.clone());
        preferred_name
    }
}

fn of_family(nets: impl IntoIterator<Item = IpNet>, f: Family) -> Vec<IpNet> {
    nets.into_iter().filter(|n| Family::of(n) == f).collect()
}

fn blank_route_map(name: String, action: &'static str, seq: u32, family: Family, list: String) -> RouteMapEntry {
    RouteMapEntry {
        name,
        action,
        seq,
        family: family.frr(),
        prefix_list: list,
        local_pref: None,
        community: None,
        large_community: None,
        as_path_prepend: None,
        next_hop_v4: None,
        next_hop_v6: None,
        on_match_next: false,
    }
}

/// Property entries (local preference, communities, AS-path prepends) of a neighbor:
/// `on-match next` entries before the permits, one per value and address family, so that a
/// prefix with several properties gets every one of them.
struct Property {
    key: String,
    family: Family,
    prefixes: Vec<IpNet>,
    local_pref: Option<u32>,
    community: Option<Community>,
    /// How many times the local ASN is prepended.
    prepend: Option<u32>,
}

fn properties(n: &Neighbor) -> Vec<Property> {
    let mut props = Vec::new();
    let mut by_lp: BTreeMap<(u32, Family), Vec<IpNet>> = BTreeMap::new();
    for (p, lp) in &n.outbound.local_pref {
        by_lp.entry((*lp, Family::of(p))).or_default().push(*p);
    }
    for ((lp, f), prefixes) in by_lp {
        props.push(Property { key: format!("{lp}-{}-localpref-prefixes", f.frr()), family: f, prefixes, local_pref: Some(lp), community: None, prepend: None });
    }
    for (c, nets) in &n.outbound.communities {
        for f in [Family::V4, Family::V6] {
            let prefixes = of_family(nets.iter().copied(), f);
            if !prefixes.is_empty() {
                props.push(Property {
                    key: format!("{c}-{}-community-prefixes", f.frr()),
                    family: f,
                    prefixes,
                    local_pref: None,
                    community: Some(c.clone()),
                    prepend: None,
                });
            }
        }
    }
    let mut by_count: BTreeMap<(u32, Family), Vec<IpNet>> = BTreeMap::new();
    for (p, (count, _)) in &n.outbound.as_path_prepend {
        by_count.entry((*count, Family::of(p))).or_default().push(*p);
    }
    for ((count, f), prefixes) in by_count {
        props.push(Property {
            key: format!("{count}-{}-prepend-prefixes", f.frr()),
            family: f,
            prefixes,
            local_pref: None,
            community: None,
            prepend: Some(count),
        });
    }
    props
}

/// Route-map and prefix-list names of one neighbor. The anchor's names (`<id>-in`,
/// `<id>-allowed-ipv4`, ... where the id is the peer, plus `-<vrf>` outside the default VRF)
/// are kept wherever they name one neighbor only; users' raw configurations refer to them.
/// They are ambiguous in rare cases (interface `eth0` in VRF `a-b` and `eth0-a` in VRF `b`;
/// interface `10.0.0.1-x` beside address 10.0.0.1 in VRF `x`): such a name is spelled
/// `<peer>~<vrf>~<suffix>` instead (FRR 8.4 refuses `%` in prefix-list names). `~` is in no
/// peer, VRF or suffix, so these spellings are distinct from each other and from every anchor
/// name by construction.
struct Namer<'a> {
    id: String,
    peer: String,
    vrf: String,
    ambiguous: &'a BTreeSet<(bool, String)>,
}

impl Namer<'_> {
    fn new<'a>(n: &Neighbor, ambiguous: &'a BTreeSet<(bool, String)>) -> Namer<'a> {
        Namer { id: n.id(), peer: n.peer.to_string(), vrf: if n.vrf.is_empty() { "default".into() } else { n.vrf.clone() }, ambiguous }
    }
    fn anchor(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.id)
    }
    fn name(&self, route_map: bool, suffix: &str) -> String {
        let anchor = self.anchor(suffix);
        if self.ambiguous.contains(&(route_map, anchor.clone())) {
            format!("{}~{}~{suffix}", self.peer, self.vrf)
        } else {
            anchor
        }
    }
    fn route_map(&self, suffix: &str) -> String {
        self.name(true, suffix)
    }
    fn list(&self, suffix: &str) -> String {
        self.name(false, suffix)
    }
}

/// The name suffixes a neighbor uses: `(route_map, suffix)`.
fn name_suffixes(n: &Neighbor) -> Vec<(bool, String)> {
    let mut v = vec![(true, "in".to_string()), (true, "out".to_string())];
    for f in [Family::V4, Family::V6] {
        v.push((false, format!("allowed-{}", f.name())));
    }
    v.push((false, format!("inpl-{}", n.families.ip.name())));
    if !n.inbound.always_block.is_empty() {
        v.push((false, format!("denied-inpl-{}", n.families.ip.name())));
    }
    v.extend(properties(n).into_iter().map(|p| (false, p.key)));
    v
}

/// Anchor names that more than one neighbor (or a shared list) would use.
fn ambiguous_names(model: &Model) -> BTreeSet<(bool, String)> {
    let mut owners: BTreeMap<(bool, String), BTreeSet<(usize, usize)>> = BTreeMap::new();
    for name in [DENY_ANY, PERMIT_ANY] {
        owners.entry((false, name.to_string())).or_default().insert((usize::MAX, 0));
    }
    for (i, r) in model.routers.iter().enumerate() {
        for (j, n) in r.neighbors.iter().enumerate() {
            let id = n.id();
            for (rm, suffix) in name_suffixes(n) {
                owners.entry((rm, format!("{id}-{suffix}"))).or_default().insert((i, j));
            }
        }
    }
    owners.into_iter().filter(|(_, o)| o.len() > 1).map(|(k, _)| k).collect()
}

/// Warnings for raw configuration that refers to a prefix-list or route-map name two
/// neighbors would both have (`eth0` in VRF `a-b` and `eth0-a` in VRF `b` are both
/// `eth0-a-b-in`): both are then named by their fallback (`peer~vrf~suffix`), so the raw lines
/// apply to neither. A neighbor that appears later can cause this for one that was alone.
pub fn raw_name_warnings(model: &Model) -> Vec<String> {
    let ambiguous = ambiguous_names(model);
    let mut out = Vec::new();
    for raw in &model.raw {
        let words: BTreeSet<&str> = raw.text.split_whitespace().collect();
        for (_, name) in ambiguous.iter().filter(|(_, n)| words.contains(n.as_str())) {
            let owners: Vec<(String, String)> = model
                .routers
                .iter()
                .flat_map(|r| r.neighbors.iter())
                .filter_map(|n| {
                    let (_, suffix) = name_suffixes(n).into_iter().find(|(_, suffix)| format!("{}-{suffix}", n.id()) == *name)?;
                    let vrf = if n.vrf.is_empty() { "default" } else { &n.vrf };
                    Some((format!("{} (vrf {vrf})", n.peer), format!("{}~{vrf}~{suffix}", n.peer)))
                })
                .collect();
            if owners.is_empty() {
                continue; // a fixed name (deny-any, permit-any)
            }
            let (who, names): (Vec<String>, Vec<String>) = owners.into_iter().unzip();
            out.push(format!(
                "FRRConfiguration {}: rawConfig refers to {name}, a name neighbors {} would share; they are named {} instead, so the raw lines apply to neither",
                raw.source,
                who.join(" and "),
                names.join(" and ")
            ));
        }
    }
    out
}

/// The prefix every fallback name of this neighbor starts with (for `--explain`'s line lookup).
pub fn fallback_prefix(n: &Neighbor) -> String {
    format!("{}~{}~", n.peer, if n.vrf.is_empty() { "default" } else { &n.vrf })
}

/// `router_asn`: the ASN an AS-path prepend repeats when the neighbor has no local ASN.
fn neighbor_filters(n: &Neighbor, router_asn: u32, names: &Namer, lists: &mut Lists, maps: &mut Vec<RouteMapEntry>) -> (String, String) {
    let out = names.route_map("out");
    let inn = names.route_map("in");
    let props = properties(n);
    let prop_keys: Vec<String> = props.iter().map(|p| p.key.clone()).collect();
    let prop_seqs = stable_seqs(&prop_keys, ROUTE_MAP_PROPERTY_SLOTS, 1);
    for (p, seq) in props.into_iter().zip(prop_seqs) {
        let rules = p.prefixes.iter().map(|x| exact(*x)).collect();
        let list = lists.intern(&p.key, p.family, names.list(&p.key), rules);
        let mut e = blank_route_map(out.clone(), "permit", seq, p.family, list);
        e.local_pref = p.local_pref;
        match p.community {
            Some(c @ Community::Large(..)) => e.large_community = Some(c.value()),
            Some(c) => e.community = Some(c.value()),
            None => {}
        }
        if let Some(count) = p.prepend {
            let asn = n.session.local_asn.unwrap_or(router_asn).to_string();
            e.as_path_prepend = Some(vec![asn.as_str(); count as usize].join(" "));
        }
        e.on_match_next = true;
        maps.push(e);
    }

    // What may be advertised.
    for (f, seq) in [(Family::V4, OUT_ALLOWED_V4), (Family::V6, OUT_ALLOWED_V6)] {
        let rules = if n.families.ip.has(f) { n.outbound.advertise.keys().filter(|p| Family::of(p) == f).map(|p| exact(*p)).collect() } else { Vec::new() };
        let list = lists.intern("allowed", f, names.list(&format!("allowed-{}", f.name())), rules);
        let mut e = blank_route_map(out.clone(), "permit", seq, f, list);
        match f {
            Family::V4 => e.next_hop_v4 = n.outbound.next_hop_v4.map(|a| a.to_string()),
            Family::V6 => e.next_hop_v6 = n.outbound.next_hop_v6.map(|a| a.to_string()),
        }
        maps.push(e);
    }

    // What is always refused, then what may be received.
    if !n.inbound.always_block.is_empty() {
        for (f, seq) in [(Family::V4, IN_DENIED_V4), (Family::V6, IN_DENIED_V6)] {
            let rules = of_family(n.inbound.always_block.iter().copied(), f)
                .into_iter()
                .map(|net| Rule::Permit(PrefixMatch { prefix: net, ge: None, le: (net.prefix_len() != f.max_len()).then_some(f.max_len()) }))
                .collect();
            let list = lists.intern("denied-inpl", f, names.list(&format!("denied-inpl-{}", n.families.ip.name())), rules);
            maps.push(blank_route_map(inn.clone(), "deny", seq, f, list));
        }
    }
    for (f, seq) in [(Family::V4, IN_ALLOWED_V4), (Family::V6, IN_ALLOWED_V6)] {
        let rules = if n.inbound.receive_all.is_some() {
            vec![Rule::PermitAny]
        } else {
            n.inbound.receive.keys().filter(|flt| Family::of(&flt.prefix) == f).map(|flt| Rule::Permit(flt.clone())).collect()
        };
        let list = lists.intern("inpl", f, names.list(&format!("inpl-{}", n.families.ip.name())), rules);
        maps.push(blank_route_map(inn.clone(), "permit", seq, f, list));
    }
    (inn, out)
}

/// FRR does not show BFD settings at their default values; leaving them out keeps the rendered
/// text equal to what FRR runs (and a change back to a default becomes a removal).
fn without_bfd_defaults(p: &crate::core::model::BfdProfile) -> crate::core::model::BfdProfile {
    let not = |v: Option<u32>, default: u32| v.filter(|v| *v != default);
    crate::core::model::BfdProfile {
        receive_interval: not(p.receive_interval, 300),
        transmit_interval: not(p.transmit_interval, 300),
        detect_multiplier: not(p.detect_multiplier, 3),
        echo_interval: not(p.echo_interval, 50),
        minimum_ttl: not(p.minimum_ttl, 254),
        ..p.clone()
    }
}

pub fn plan(model: &Model) -> Plan {
    let mut lists = Lists::default();
    let mut route_maps = Vec::new();
    let mut routers = Vec::new();
    let mut vrf_vnis = Vec::new();
    let ambiguous = ambiguous_names(model);
    for r in &model.routers {
        let mut neighbors = Vec::new();
        for n in &r.neighbors {
            let (route_map_in, route_map_out) = neighbor_filters(n, r.asn, &Namer::new(n, &ambiguous), &mut lists, &mut route_maps);
            let timers = (n.session.timers.keepalive != DEFAULT_KEEPALIVE || n.session.timers.hold != DEFAULT_HOLD)
                .then_some((n.session.timers.keepalive, n.session.timers.hold));
            neighbors.push(NeighborPlan {
                peer: n.peer.to_string(),
                interface: matches!(n.peer, crate::core::model::Peer::Interface(_)),
                remote_as: n.session.remote_as.to_string(),
                ebgp_multihop: n.ebgp_multihop(r.asn),
                local_asn: n.session.local_asn,
                port: (n.session.port != DEFAULT_PORT).then_some(n.session.port),
                timers,
                connect: n.session.timers.connect,
                password: n.session.password.clone(),
                source_address: n.session.source_address.clone(),
                graceful_restart: n.session.graceful_restart,
                bfd_profile: n.session.bfd_profile.clone(),
                disable_connected_check: n.disable_connected_check(r.asn),
                allow_as_in: n.inbound.allow_as_in.and_then(|a| a.frr_arg()),
                ipv4: n.families.unicast && n.families.ip.has(Family::V4),
                ipv6: n.families.unicast && n.families.ip.has(Family::V6),
                evpn: n.families.evpn && r.evpn.is_some(),
                route_map_in,
                route_map_out,
            });
        }
        let evpn = r.evpn.as_ref().map(|e| {
            let vni = |vni: u32, p: &crate::core::model::VniProperties| VniPlan {
                vni,
                rd: p.rd.clone(),
                import_rts: p.import_rts.iter().cloned().collect(),
                export_rts: p.export_rts.iter().cloned().collect(),
            };
            EvpnPlan {
                advertise_all_vni: e.advertise_all_vni,
                advertise_svi: e.advertise_svi,
                // An L2VNI with neither RD nor RTs needs no block (FRR derives them).
                l2vnis: e
                    .l2vnis
                    .iter()
                    .filter(|(_, p)| p.rd.is_some() || !p.import_rts.is_empty() || !p.export_rts.is_empty())
                    .map(|(n, p)| vni(*n, p))
                    .collect(),
                l3vni: e.l3vni.as_ref().map(|l3| vni(l3.vni, &l3.props)),
                advertise_ipv4: e.l3vni.as_ref().is_some_and(|l| l.advertise_unicast),
                advertise_ipv6: e.l3vni.as_ref().is_some_and(|l| l.advertise_unicast),
            }
        });
        if let (false, Some(l3)) = (r.vrf.is_empty(), r.evpn.as_ref().and_then(|e| e.l3vni.as_ref())) {
            vrf_vnis.push((r.vrf.clone(), l3.vni));
        }
        routers.push(RouterPlan {
            asn: r.asn,
            vrf: r.vrf.clone(),
            router_id: r.router_id.map(|id| id.to_string()),
            neighbors,
            networks_v4: of_family(r.prefixes.keys().copied(), Family::V4).iter().map(|p| p.to_string()).collect(),
            networks_v6: of_family(r.prefixes.keys().copied(), Family::V6).iter().map(|p| p.to_string()).collect(),
            imports: r.import_vrfs.iter().cloned().collect(),
            evpn,
        });
    }
    let mut prefix_lists = lists.lists;
    prefix_lists.sort_by(|a, b| (a.family, &a.name).cmp(&(b.family, &b.name)));
    route_maps.sort_by(|a, b| (&a.name, a.seq).cmp(&(&b.name, b.seq)));
    Plan {
        log_level: model.log_level,
        debug: model.log_level == "debugging",
        hostname: model.hostname.clone(),
        prefix_lists,
        route_maps,
        vrf_vnis,
        routers,
        bfd_profiles: model.bfd_profiles.iter().map(without_bfd_defaults).collect(),
        raw: model.raw.iter().map(|r| RawPlan { source: r.source.to_string(), priority: r.priority, text: r.text.clone() }).collect(),
    }
}
