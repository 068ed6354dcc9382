//! Merge of the per-object contributions into one model, by monotonic union rules.
//!
//! Contributions arrive sorted by object, so every result and every error is independent of the
//! order in which the objects were read. Lists and sets combine; receive modes widen from
//! filtered to all; graceful restart and address families combine by OR; single-valued fields
//! must agree (where the anchor treats "unset" as compatible, so do we), and a disagreement is a
//! conflict naming both objects, the field and both values.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::sync::Arc;

use ipnet::IpNet;

use super::convert::{ConfigContrib, EvpnContrib, NeighborContrib, RouterContrib};
use super::error::{Error, ObjRef, Scope};
use super::model::*;

/// The merged pieces of a model (settings such as the hostname are added by the caller).
pub struct Merged {
    pub routers: Vec<Router>,
    pub bfd_profiles: Vec<BfdProfile>,
    pub raw: Vec<RawSnippet>,
    pub warnings: Vec<String>,
}

/// Keeps the first value; reports the first value that differs from it as a conflict.
fn agree<'a, T: PartialEq + Clone + 'a>(
    errors: &mut Vec<Error>,
    scope: &Scope,
    field: &str,
    items: impl IntoIterator<Item = (&'a ObjRef, T)>,
    show: impl Fn(&T) -> String,
) -> Option<T> {
    let mut first: Option<(&ObjRef, T)> = None;
    for (obj, v) in items {
        match &first {
            None => first = Some((obj, v)),
            Some((fobj, fv)) => {
                if *fv != v {
                    errors.push(Error::Conflict {
                        first: (*fobj).clone(),
                        second: obj.clone(),
                        scope: scope.clone(),
                        field: field.to_string(),
                        first_value: show(fv),
                        second_value: show(&v),
                    });
                    break;
                }
            }
        }
    }
    first.map(|(_, v)| v)
}

fn disp<T: Display>(v: &T) -> String {
    v.to_string()
}

fn opt<T: Display>(v: &Option<T>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "unset".to_string(),
    }
}

/// Merges contributions given in object order; they may be owned or borrowed (the webhook
/// merges the same cached contributions in many combinations).
pub fn merge<C: Borrow<ConfigContrib>>(contribs: &[C], always_block: &[IpNet]) -> Result<Merged, Vec<Error>> {
    let mut errors = Vec::new();
    let contribs = || contribs.iter().map(|c| c.borrow());
    let mut warnings: Vec<String> = contribs().flat_map(|c| c.warnings.iter().cloned()).collect();
    warnings.sort();
    warnings.dedup();

    // BFD profiles are global by name: every definition of a name must be identical.
    let mut profiles: BTreeMap<String, Vec<&BfdProfile>> = BTreeMap::new();
    for c in contribs() {
        for p in &c.bfd_profiles {
            profiles.entry(p.name.clone()).or_default().push(p);
        }
    }
    let mut bfd_profiles = Vec::new();
    for (name, defs) in profiles {
        let scope = Scope { vrf: None, neighbor: None };
        let before = errors.len();
        fn src<'a>(p: &&'a BfdProfile) -> &'a ObjRef {
            p.sources.iter().next().expect("a converted profile has its source")
        }
        let field = |f: &str| format!("spec.bgp.bfdProfiles[name={name}].{f}");
        let o = |v: &Option<u32>| opt(v);
        agree(&mut errors, &scope, &field("receiveInterval"), defs.iter().map(|p| (src(p), p.receive_interval)), o);
        agree(&mut errors, &scope, &field("transmitInterval"), defs.iter().map(|p| (src(p), p.transmit_interval)), o);
        agree(&mut errors, &scope, &field("detectMultiplier"), defs.iter().map(|p| (src(p), p.detect_multiplier)), o);
        agree(&mut errors, &scope, &field("echoInterval"), defs.iter().map(|p| (src(p), p.echo_interval)), o);
        agree(&mut errors, &scope, &field("echoMode"), defs.iter().map(|p| (src(p), p.echo_mode)), disp);
        agree(&mut errors, &scope, &field("passiveMode"), defs.iter().map(|p| (src(p), p.passive_mode)), disp);
        agree(&mut errors, &scope, &field("minimumTtl"), defs.iter().map(|p| (src(p), p.minimum_ttl)), o);
        if errors.len() == before {
            let mut merged = defs[0].clone();
            merged.sources = defs.iter().flat_map(|p| p.sources.iter()).collect();
            bfd_profiles.push(merged);
        }
    }

    // Routers: one per VRF.
    let mut by_vrf: BTreeMap<&str, Vec<&RouterContrib>> = BTreeMap::new();
    for c in contribs() {
        for r in &c.routers {
            by_vrf.entry(r.vrf.as_str()).or_default().push(r);
        }
    }
    let mut routers = Vec::new();
    for (vrf, parts) in &by_vrf {
        if let Some(r) = merge_router(&mut errors, vrf, parts, always_block) {
            routers.push(r);
        }
    }
    validate_evpn(&mut errors, &routers);

    let mut raw: Vec<RawSnippet> = contribs()
        .filter_map(|c| c.raw.as_ref().map(|(priority, text)| RawSnippet { priority: *priority, source: c.obj.clone(), text: text.clone() }))
        .collect();
    raw.sort_by(|a, b| (a.priority, &a.source).cmp(&(b.priority, &b.source)));

    if errors.is_empty() {
        Ok(Merged { routers, bfd_profiles, raw, warnings })
    } else {
        Err(errors)
    }
}

fn merge_router(errors: &mut Vec<Error>, vrf: &str, parts: &[&RouterContrib], always_block: &[IpNet]) -> Option<Router> {
    let scope = Scope { vrf: Some(vrf.to_string()), neighbor: None };
    let before = errors.len();
    let asn = agree(errors, &scope, "asn", parts.iter().map(|r| (&r.obj, r.asn)), disp)?;
    let router_id = agree(errors, &scope, "id", parts.iter().filter_map(|r| r.router_id.map(|id| (&r.obj, id))), disp);
    let mut prefixes: BTreeMap<IpNet, Sources> = BTreeMap::new();
    let mut import_vrfs = BTreeSet::new();
    let sources: Sources = parts.iter().map(|r| &r.obj).collect();
    for r in parts {
        for p in &r.prefixes {
            add_source(&mut prefixes, *p, &r.obj);
        }
        import_vrfs.extend(r.import_vrfs.iter().cloned());
    }
    let evpn_parts: Vec<(&ObjRef, &EvpnContrib)> = parts.iter().filter_map(|r| r.evpn.as_ref().map(|e| (&r.obj, e))).collect();
    let evpn = if evpn_parts.is_empty() { None } else { merge_evpn(errors, &scope, &evpn_parts) };

    let mut by_peer: BTreeMap<&Peer, Vec<&NeighborContrib>> = BTreeMap::new();
    for r in parts {
        for n in &r.neighbors {
            by_peer.entry(&n.peer).or_default().push(n);
        }
    }
    let mut neighbors: Vec<Neighbor> = Vec::new();
    let mut distinct: Vec<Arc<BTreeMap<IpNet, Sources>>> = Vec::new();
    for (peer, ns) in by_peer {
        let nscope = Scope { vrf: Some(vrf.to_string()), neighbor: Some(peer.to_string()) };
        if let Some(mut n) = merge_neighbor(errors, &nscope, vrf, ns, always_block) {
            match distinct.iter().find(|d| ***d == *n.outbound.advertise) {
                Some(same) => n.outbound.advertise = same.clone(),
                None => distinct.push(n.outbound.advertise.clone()),
            }
            neighbors.push(n);
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(Router { asn, vrf: vrf.to_string(), router_id, neighbors, prefixes, import_vrfs, evpn, sources })
}

/// One neighbor from every object that names it, section by section: the session's settings
/// must agree, the address families combine, outbound policy is a union whose attributes must
/// agree per prefix, and inbound policy widens.
fn merge_neighbor(errors: &mut Vec<Error>, scope: &Scope, vrf: &str, ns: Vec<&NeighborContrib>, always_block: &[IpNet]) -> Option<Neighbor> {
    let before = errors.len();
    let session = merge_session(errors, scope, &ns);
    let families = merge_families(errors, scope, &ns);
    let outbound = merge_outbound(errors, scope, &ns);
    let inbound = merge_inbound(errors, scope, &ns, always_block);
    if errors.len() > before {
        return None;
    }
    let n = Neighbor {
        peer: ns[0].peer.clone(),
        vrf: vrf.to_string(),
        session: session?,
        families: families?,
        outbound,
        inbound,
        sources: ns.iter().map(|n| &n.obj).collect(),
    };
    let entries = n.outbound.property_entries();
    if entries > MAX_PROPERTY_ENTRIES {
        errors.push(Error::Merged {
            objects: n.sources.iter().cloned().collect(),
            scope: scope.clone(),
            reason: format!("{entries} local preference, community and AS-path prepend settings (one per value and address family, toAdvertise.withLocalPref, withCommunity and withAsPathPrepend); at most {MAX_PROPERTY_ENTRIES} per neighbor"),
        });
        return None;
    }
    Some(n)
}

/// Every setting of the session must agree. Settings a configuration leaves unset are no
/// opinion: another configuration may set them (frr-k8s compares unset as the default value, so
/// an admin's receive-all for a MetalLB neighbor with timers or a password conflicts there).
fn merge_session(errors: &mut Vec<Error>, scope: &Scope, ns: &[&NeighborContrib]) -> Option<Session> {
    let each = || ns.iter().map(|n| (&n.obj, &n.session));
    let remote_as = agree(errors, scope, "asn/dynamicASN", each().map(|(o, s)| (o, s.remote_as)), disp);
    let port = agree(errors, scope, "port", each().filter_map(|(o, s)| s.port.map(|p| (o, p))), disp).unwrap_or(DEFAULT_PORT);
    let source_address = agree(errors, scope, "sourceaddress", each().filter_map(|(o, s)| s.source_address.clone().map(|a| (o, a))), disp);
    let ebgp_multihop = agree(errors, scope, "ebgpMultiHop", each().map(|(o, s)| (o, s.ebgp_multihop)), disp);
    let local_asn = agree(errors, scope, "localASN", each().filter_map(|(o, s)| s.local_asn.map(|a| (o, a))), disp);
    let secs = |v: &u64| format!("{v}s");
    let hold = agree(errors, scope, "holdTime", each().filter_map(|(o, s)| s.hold.map(|v| (o, v))), secs).unwrap_or(DEFAULT_HOLD);
    let keepalive = agree(errors, scope, "keepaliveTime", each().filter_map(|(o, s)| s.keepalive.map(|v| (o, v))), secs).unwrap_or(DEFAULT_KEEPALIVE);
    let connect = agree(errors, scope, "connectTime", each().filter_map(|(o, s)| s.connect.map(|v| (o, v))), secs);
    // Passwords are compared by value but shown only by origin.
    let before_pw = errors.len();
    let password =
        agree(errors, scope, "password", each().filter_map(|(o, s)| s.password.as_ref().map(|p| (o, PwCmp(p.value.clone(), p.origin.clone())))), |p| {
            format!("a password ({})", p.1)
        });
    if let Some(Error::Conflict { second_value, first_value, .. }) = errors.get_mut(before_pw) {
        if first_value.starts_with("a password") && second_value.starts_with("a password") {
            *second_value = second_value.replacen("a password", "a different password", 1);
        }
    }
    let bfd_profile = agree(errors, scope, "bfdProfile", each().filter_map(|(o, s)| s.bfd_profile.clone().map(|b| (o, b))), disp);
    Some(Session {
        remote_as: remote_as?,
        local_asn,
        port,
        source_address,
        ebgp_multihop: ebgp_multihop?,
        password: password.map(|p| p.0),
        timers: Timers { keepalive, hold, connect },
        bfd_profile,
        graceful_restart: ns.iter().any(|n| n.session.graceful_restart),
    })
}

/// The IP families of the session must agree; unicast and EVPN are activated when any object
/// asks for them.
fn merge_families(errors: &mut Vec<Error>, scope: &Scope, ns: &[&NeighborContrib]) -> Option<AddressFamilies> {
    let ip = agree(errors, scope, "dualStackAddressFamily (session address families)", ns.iter().map(|n| (&n.obj, n.families.ip)), |f| f.name().to_string())?;
    Some(AddressFamilies { ip, unicast: ns.iter().any(|n| n.families.unicast), evpn: ns.iter().any(|n| n.families.evpn) })
}

/// Advertised prefixes and communities combine; a next hop, and a prefix's local preference and
/// AS-path prepend count, must agree.
fn merge_outbound(errors: &mut Vec<Error>, scope: &Scope, ns: &[&NeighborContrib]) -> Outbound {
    let each = || ns.iter().map(|n| (&n.obj, &n.outbound));
    let next_hop_v4 = agree(errors, scope, "toAdvertise.nextHop.ipv4", each().filter_map(|(o, out)| out.next_hop_v4.map(|a| (o, a))), disp);
    let next_hop_v6 = agree(errors, scope, "toAdvertise.nextHop.ipv6", each().filter_map(|(o, out)| out.next_hop_v6.map(|a| (o, a))), disp);
    let mut advertise: BTreeMap<IpNet, Sources> = BTreeMap::new();
    let mut local_pref_items: BTreeMap<IpNet, Vec<(&ObjRef, u32)>> = BTreeMap::new();
    let mut communities: BTreeMap<super::values::Community, BTreeSet<IpNet>> = BTreeMap::new();
    let mut prepend_items: BTreeMap<IpNet, Vec<(&ObjRef, u32)>> = BTreeMap::new();
    for (obj, out) in each() {
        for p in &out.advertise {
            add_source(&mut advertise, *p, obj);
        }
        for (p, lp) in &out.local_pref {
            local_pref_items.entry(*p).or_default().push((obj, *lp));
        }
        for (c, ps) in &out.communities {
            communities.entry(c.clone()).or_default().extend(ps.iter().copied());
        }
        for (p, count) in &out.as_path_prepend {
            prepend_items.entry(*p).or_default().push((obj, *count));
        }
    }
    let mut local_pref = BTreeMap::new();
    for (p, items) in local_pref_items {
        if let Some(v) = agree(errors, scope, &format!("toAdvertise.withLocalPref (prefix {p})"), items, disp) {
            local_pref.insert(p, v);
        }
    }
    // one count per prefix and neighbor: two objects asking for different counts conflict
    let mut as_path_prepend = BTreeMap::new();
    for (p, items) in prepend_items {
        let sources: Sources = items.iter().map(|(o, _)| *o).collect();
        if let Some(v) = agree(errors, scope, &format!("toAdvertise.withAsPathPrepend (prefix {p})"), items, disp) {
            as_path_prepend.insert(p, (v, sources));
        }
    }
    Outbound { advertise: Arc::new(advertise), next_hop_v4, next_hop_v6, local_pref, communities, as_path_prepend }
}

/// Receive widens (filtered to all, prefix matches combine), allowAsIn takes the least
/// restrictive compatible value, and the node's always-blocked prefixes apply to every neighbor.
fn merge_inbound(errors: &mut Vec<Error>, scope: &Scope, ns: &[&NeighborContrib], always_block: &[IpNet]) -> Inbound {
    let allow_as_in = merge_allow_as_in(errors, scope, ns);
    let mut receive: BTreeMap<PrefixMatch, Sources> = BTreeMap::new();
    let mut receive_all: Option<Sources> = None;
    for n in ns {
        if n.inbound.receive_all {
            match &mut receive_all {
                Some(s) => s.insert(&n.obj),
                None => receive_all = Some(Sources::one(&n.obj)),
            }
        }
        for m in &n.inbound.receive {
            add_source(&mut receive, m.clone(), &n.obj);
        }
    }
    Inbound { allow_as_in, receive_all, receive, always_block: always_block.to_vec() }
}

fn add_source<K: Ord>(map: &mut BTreeMap<K, Sources>, key: K, obj: &ObjRef) {
    match map.entry(key) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(Sources::one(obj));
        }
        std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().insert(obj),
    }
}

/// Password compared by value only; the origin is for messages.
#[derive(Clone)]
struct PwCmp(String, String);
impl PartialEq for PwCmp {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// allowAsIn: unset yields; `none` conflicts with any other set value; otherwise the least
/// restrictive value wins (any count over `origin`, a higher count over a lower one).
fn merge_allow_as_in(errors: &mut Vec<Error>, scope: &Scope, ns: &[&NeighborContrib]) -> Option<AllowAsIn> {
    let mut acc: Option<(&ObjRef, AllowAsIn)> = None;
    for n in ns {
        let Some(v) = n.inbound.allow_as_in else { continue };
        acc = match acc {
            None => Some((&n.obj, v)),
            Some((o, a)) => match a.combine(v) {
                Some(c) => Some((if c == a { o } else { &n.obj }, c)),
                None => {
                    errors.push(Error::Conflict {
                        first: o.clone(),
                        second: n.obj.clone(),
                        scope: scope.clone(),
                        field: "allowAsIn".into(),
                        first_value: a.to_string(),
                        second_value: v.to_string(),
                    });
                    return None;
                }
            },
        };
    }
    acc.map(|(_, v)| v)
}

fn merge_vni_props(errors: &mut Vec<Error>, scope: &Scope, what: &str, items: &[(&ObjRef, &VniProperties)]) -> VniProperties {
    let rd = agree(errors, scope, &format!("{what}.rd"), items.iter().filter_map(|(o, v)| v.rd.clone().map(|rd| (*o, rd))), disp);
    let mut props = VniProperties { rd, ..Default::default() };
    for (name, get) in
        [("importRTs", (|v: &VniProperties| &v.import_rts) as fn(&VniProperties) -> &BTreeSet<String>), ("exportRTs", |v: &VniProperties| &v.export_rts)]
    {
        // implicit (none listed) and explicit route targets cannot be mixed
        agree(errors, scope, &format!("{what}.{name}"), items.iter().map(|(o, v)| (*o, get(v).is_empty())), |empty| {
            if *empty {
                "implicit route targets (none listed)".to_string()
            } else {
                "explicit route targets".to_string()
            }
        });
        let union: BTreeSet<String> = items.iter().flat_map(|(_, v)| get(v).iter().cloned()).collect();
        if name == "importRTs" {
            props.import_rts = union;
        } else {
            props.export_rts = union;
        }
    }
    props
}

fn merge_evpn(errors: &mut Vec<Error>, scope: &Scope, parts: &[(&ObjRef, &EvpnContrib)]) -> Option<Evpn> {
    let before = errors.len();
    let vnis = agree(
        errors,
        scope,
        "evpn.advertiseVNIs",
        // unset is compatible with either value; explicit Disabled and All conflict
        parts.iter().filter_map(|(o, e)| e.advertise_vnis.map(|v| (*o, v))),
        |v| format!("{v:?}"),
    );
    let mut l2: BTreeMap<u32, Vec<(&ObjRef, &VniProperties)>> = BTreeMap::new();
    for (o, e) in parts {
        for (vni, props) in &e.l2vnis {
            l2.entry(*vni).or_default().push((*o, props));
        }
    }
    let mut l2vnis = BTreeMap::new();
    for (vni, items) in l2 {
        l2vnis.insert(vni, merge_vni_props(errors, scope, &format!("evpn.l2vnis[vni={vni}]"), &items));
    }
    let l3_items: Vec<(&ObjRef, &(u32, VniProperties, bool))> = parts.iter().filter_map(|(o, e)| e.l3vni.as_ref().map(|l| (*o, l))).collect();
    let l3vni = match agree(errors, scope, "evpn.l3vni.vni", l3_items.iter().map(|(o, l)| (*o, l.0)), disp) {
        None => None,
        Some(vni) => {
            let props_items: Vec<(&ObjRef, &VniProperties)> = l3_items.iter().map(|(o, l)| (*o, &l.1)).collect();
            let props = merge_vni_props(errors, scope, "evpn.l3vni", &props_items);
            Some(L3Vni { vni, props, advertise_unicast: l3_items.iter().any(|(_, l)| l.2) })
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Evpn { advertise_all_vni: vnis == Some(crate::api::AdvertiseVnis::All), advertise_svi: parts.iter().any(|(_, e)| e.advertise_svi), l2vnis, l3vni })
}

fn validate_evpn(errors: &mut Vec<Error>, routers: &[Router]) {
    let mut vnis: BTreeMap<u32, Vec<(String, &str)>> = BTreeMap::new();
    for r in routers {
        let scope = Scope { vrf: Some(r.vrf.clone()), neighbor: None };
        let objects: Vec<ObjRef> = r.sources.iter().cloned().collect();
        let has_evpn_neighbor = r.neighbors.iter().any(|n| n.families.evpn);
        match &r.evpn {
            None => {
                for n in r.neighbors.iter().filter(|n| n.families.evpn) {
                    errors.push(Error::Merged {
                        objects: n.sources.iter().cloned().collect(),
                        scope: Scope { vrf: Some(r.vrf.clone()), neighbor: Some(n.peer.to_string()) },
                        reason: "the neighbor lists the evpn address family, but the router has no evpn section".into(),
                    });
                }
            }
            Some(e) => {
                if (e.advertise_all_vni || e.advertise_svi || !e.l2vnis.is_empty()) && !has_evpn_neighbor {
                    errors.push(Error::Merged {
                        objects: objects.clone(),
                        scope: scope.clone(),
                        reason:
                            "invalid EVPN configuration: advertiseVNIs=All, advertiseSVI and l2vnis require at least one neighbor with the evpn address family"
                                .into(),
                    });
                }
                if (e.advertise_svi || !e.l2vnis.is_empty()) && !e.advertise_all_vni {
                    errors.push(Error::Merged {
                        objects: objects.clone(),
                        scope: scope.clone(),
                        reason:
                            "invalid EVPN configuration: advertiseSVI and l2vnis take effect in FRR only with advertiseVNIs: All (FRR ignores them otherwise)"
                                .into(),
                    });
                }
                if e.l3vni.is_some() && !r.neighbors.is_empty() {
                    errors.push(Error::Merged {
                        objects: objects.clone(),
                        scope: scope.clone(),
                        reason: "invalid EVPN configuration: an l3vni can only be configured on a router with no neighbors".into(),
                    });
                }
                for vni in e.l2vnis.keys() {
                    vnis.entry(*vni).or_default().push((r.vrf.clone(), "l2vni"));
                }
                if let Some(l3) = &e.l3vni {
                    vnis.entry(l3.vni).or_default().push((r.vrf.clone(), "l3vni"));
                }
            }
        }
    }
    for (vni, uses) in vnis {
        if uses.len() > 1 {
            let objects: BTreeSet<ObjRef> = routers.iter().filter(|r| uses.iter().any(|(v, _)| *v == r.vrf)).flat_map(|r| r.sources.iter().cloned()).collect();
            let list = uses.iter().map(|(v, k)| format!("{k} in vrf {:?}", if v.is_empty() { "default" } else { v })).collect::<Vec<_>>().join(" and ");
            errors.push(Error::Merged {
                objects: objects.into_iter().collect(),
                scope: Scope { vrf: None, neighbor: None },
                reason: format!("duplicate VNI {vni}: configured as {list}"),
            });
        }
    }
}
