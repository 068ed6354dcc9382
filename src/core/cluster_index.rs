//! Which configurations meet on which nodes, and what their merges there say about one object:
//! the admission webhook's view of the whole cluster, computed without composing node by node.
//!
//! Every configuration is prepared once (identity, parsed nodeSelector, contribution converted
//! without Secrets). Nodes are indexed by label, so that a selector with a `key=value` or `key in
//! (...)` requirement finds its nodes without scanning them all. For the object under review,
//! the nodes it selects are grouped by the set of other configurations selecting them; each group
//! is merged once. The result is what `super::compose` would give on every node, node by node
//! (the webhook's tests hold the node-by-node algorithm as the oracle).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::core::{Selector, SelectorExt};

use super::convert::{self, ConfigContrib, InboundContrib, NeighborContrib, OutboundContrib, RouterContrib};
use super::error::{Error, ObjRef};
use super::model::Peer;
use super::{merge, obj_ref, parse_selector, values};
use crate::api::FRRConfiguration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A parsed nodeSelector, with the requirements that name label values (matchLabels and `In`
/// expressions): any one of them narrows the candidate nodes to those holding one of its values.
#[derive(Clone, Debug)]
pub struct NodeSelector {
    selector: Selector,
    narrowing: Vec<(String, Vec<String>)>,
    /// The selector is exactly its one narrowing requirement: the index answers it alone, with
    /// no node to check (a MetalLB object's hostname, an admin object's rack or zone).
    exact: bool,
}

impl NodeSelector {
    pub fn parse(sel: &LabelSelector) -> Result<NodeSelector, String> {
        let selector = parse_selector(sel)?;
        let mut narrowing: Vec<(String, Vec<String>)> = sel.match_labels.iter().flatten().map(|(k, v)| (k.clone(), vec![v.clone()])).collect();
        for req in sel.match_expressions.iter().flatten().filter(|r| r.operator == "In") {
            narrowing.push((req.key.clone(), req.values.clone().unwrap_or_default()));
        }
        let requirements = sel.match_labels.as_ref().map_or(0, |m| m.len()) + sel.match_expressions.as_ref().map_or(0, |e| e.len());
        let exact = requirements == 1 && narrowing.len() == 1;
        Ok(NodeSelector { selector, narrowing, exact })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }
}

/// One FRRConfiguration as the webhook keeps it, derived once per change of the object.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub obj: ObjRef,
    /// Whether the namespace and name are valid (an object with an invalid one is not merged).
    pub name: Result<(), String>,
    /// `None`: no nodeSelector, every node.
    pub selector: Result<Option<NodeSelector>, String>,
    /// The contribution, converted without Secrets (an object that needs one is not merged
    /// here: the webhook cannot read Secrets), or the object's own errors.
    pub converted: Result<ConfigContrib, Vec<Error>>,
}

impl Prepared {
    pub fn new(c: &FRRConfiguration) -> Prepared {
        let obj = obj_ref(c);
        let name = values::check_object_name(&obj.namespace, &obj.name);
        let selector = c.spec.node_selector.as_ref().map(NodeSelector::parse).transpose();
        let converted = convert::convert(&obj, &c.spec, &BTreeMap::new());
        Prepared { obj, name, selector, converted }
    }

    /// The contribution and selector, when the object takes part in merges on the nodes it
    /// selects.
    fn mergeable(&self) -> Option<(&ConfigContrib, &Option<NodeSelector>)> {
        match (&self.name, &self.selector, &self.converted) {
            (Ok(()), Ok(sel), Ok(c)) => Some((c, sel)),
            _ => None,
        }
    }
}

/// Nodes in name order, with an index from label to nodes.
#[derive(Debug, Default)]
pub struct NodeIndex {
    names: Vec<String>,
    labels: Vec<BTreeMap<String, String>>,
    by_label: HashMap<String, HashMap<String, Vec<u32>>>,
}

impl NodeIndex {
    pub fn new(nodes: impl IntoIterator<Item = (String, BTreeMap<String, String>)>) -> NodeIndex {
        let mut nodes: Vec<(String, BTreeMap<String, String>)> = nodes.into_iter().collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        nodes.dedup_by(|a, b| a.0 == b.0);
        let mut by_label: HashMap<String, HashMap<String, Vec<u32>>> = HashMap::new();
        for (i, (_, labels)) in nodes.iter().enumerate() {
            for (k, v) in labels {
                by_label.entry(k.clone()).or_default().entry(v.clone()).or_default().push(i as u32);
            }
        }
        let (names, labels) = nodes.into_iter().unzip();
        NodeIndex { names, labels, by_label }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, node: u32) -> &str {
        &self.names[node as usize]
    }

    /// The nodes a selector (`None`: every node) matches, in name order.
    pub fn select(&self, sel: Option<&NodeSelector>) -> Vec<u32> {
        let Some(sel) = sel else { return (0..self.names.len() as u32).collect() };
        let holders = |(k, vs): &(String, Vec<String>)| -> Vec<&Vec<u32>> {
            let Some(by_value) = self.by_label.get(k) else { return vec![] };
            vs.iter().filter_map(|v| by_value.get(v)).collect()
        };
        let narrowest = sel.narrowing.iter().map(holders).min_by_key(|lists| lists.iter().map(|l| l.len()).sum::<usize>());
        let mut candidates: Vec<u32> = match narrowest {
            Some(lists) => lists.into_iter().flatten().copied().collect(),
            None => (0..self.names.len() as u32).collect(),
        };
        candidates.sort_unstable();
        candidates.dedup();
        if !sel.exact {
            candidates.retain(|&n| sel.matches(&self.labels[n as usize]));
        }
        candidates
    }
}

/// The first refusal (by message) of `me` on the nodes it selects, with those nodes in name
/// order: for each node, the errors involving `me` that `super::compose` reports when merging
/// `me` with the configurations of `namespace` in `others` that select the node. `others` must
/// not contain `me` (by namespace/name) nor twice the same object.
pub fn first_refusal(namespace: &str, me: &Prepared, selected: &[u32], others: &[&Prepared], nodes: &NodeIndex) -> Option<(String, Vec<String>)> {
    if selected.is_empty() {
        return None;
    }
    let everywhere = |message: String| Some((message, selected.iter().map(|&n| nodes.name(n).to_string()).collect()));
    if let Err(e) = &me.name {
        return everywhere(Error::invalid(&me.obj, "metadata", e.clone()).to_string());
    }
    if *me.obj.namespace != *namespace {
        return None; // compose leaves objects of other namespaces out
    }
    // With errors of its own (only Secret ones get here) it is not merged anywhere.
    let Ok(mine) = &me.converted else { return None };

    let mut merged: Vec<(&ObjRef, &ConfigContrib, &Option<NodeSelector>)> =
        others.iter().filter(|o| *o.obj.namespace == *namespace && o.obj != me.obj).filter_map(|o| o.mergeable().map(|(c, s)| (&o.obj, c, s))).collect();
    merged.sort_by(|a, b| a.0.cmp(b.0));
    let my_place = merged.partition_point(|(o, _, _)| **o < me.obj);

    // For each selected node, the other configurations selecting it (by place in `merged`).
    const NOT_SELECTED: u32 = u32::MAX;
    let mut place = vec![NOT_SELECTED; nodes.len()];
    for (i, &n) in selected.iter().enumerate() {
        place[n as usize] = i as u32;
    }
    let mut readers: Vec<Vec<u32>> = vec![Vec::new(); selected.len()];
    for (j, (_, _, sel)) in merged.iter().enumerate() {
        for n in nodes.select(sel.as_ref()) {
            if let Some(r) = readers.get_mut(place[n as usize] as usize) {
                r.push(j as u32);
            }
        }
    }
    // Only what can meet `mine` in a merge is merged (see `meeting`); objects that meet
    // nothing are left out, and nodes that read the same configurations merge alike: one
    // merge per group of them.
    let meeting: Vec<Option<Cow<ConfigContrib>>> = if has_evpn(mine) || merged.iter().any(|(_, c, _)| has_evpn(c)) {
        merged.iter().map(|(_, c, _)| Some(Cow::Borrowed(*c))).collect()
    } else {
        let used = readers.iter().flatten().fold(vec![false; merged.len()], |mut used, &j| {
            used[j as usize] = true;
            used
        });
        merged.iter().zip(used).map(|((_, c, _), used)| if used { meeting_part(c, mine).map(Cow::Owned) } else { None }).collect()
    };
    // Of the objects whose meeting part is routers alone (no neighbor `mine` has, no BFD
    // profile), a node needs only the first to bring each router value (see `router_values`).
    // Values are numbered, so that the nodes' lists are filtered by comparing numbers.
    let mut numbers: HashMap<RouterValue, u32> = HashMap::new();
    let mut values: Vec<u32> = Vec::new();
    let take: Vec<Take> = meeting
        .iter()
        .map(|m| match m.as_deref().map(router_values) {
            None => Take::Never,
            Some(None) => Take::Always,
            Some(Some(vs)) => {
                let start = values.len() as u32;
                for v in vs {
                    let next = numbers.len() as u32;
                    values.push(*numbers.entry(v).or_insert(next));
                }
                Take::FirstOf(start, values.len() as u32)
            }
        })
        .collect();
    let mut seen: Vec<u32> = Vec::new();
    for r in &mut readers {
        seen.clear();
        r.retain(|&j| match take[j as usize] {
            Take::Never => false,
            Take::Always => true,
            Take::FirstOf(start, end) => {
                let mut first = false;
                for &v in &values[start as usize..end as usize] {
                    if !seen.contains(&v) {
                        seen.push(v);
                        first = true;
                    }
                }
                first
            }
        });
    }
    let mut groups: HashMap<&[u32], Vec<u32>> = HashMap::new();
    for (i, r) in readers.iter().enumerate() {
        groups.entry(r.as_slice()).or_default().push(selected[i]);
    }
    let groups: Vec<(&[u32], Vec<u32>)> = groups.into_iter().collect();
    let message = |set: &[u32]| -> String {
        let mut contribs: Vec<&ConfigContrib> = Vec::with_capacity(set.len() + 1);
        let split = set.partition_point(|&j| (j as usize) < my_place);
        let part = |&j: &u32| meeting[j as usize].as_deref().expect("only meeting objects are in groups");
        contribs.extend(set[..split].iter().map(part));
        contribs.push(mine);
        contribs.extend(set[split..].iter().map(part));
        let Err(errors) = merge::merge(&contribs, &[]) else { return String::new() };
        let mut errors: Vec<Error> = errors.into_iter().filter(|e| !e.is_transient() && e.objects().contains(&&me.obj)).collect();
        errors.sort();
        errors.dedup();
        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    };
    // Two cores share the merges when there are many groups.
    let messages: Vec<String> = if groups.len() >= 256 {
        let half = groups.len().div_ceil(2);
        std::thread::scope(|s| {
            let (a, b) = groups.split_at(half);
            let other = s.spawn(|| b.iter().map(|(set, _)| message(set)).collect::<Vec<_>>());
            let mut out: Vec<String> = a.iter().map(|(set, _)| message(set)).collect();
            out.extend(other.join().expect("a merge thread panicked"));
            out
        })
    } else {
        groups.iter().map(|(set, _)| message(set)).collect()
    };
    let mut refusals: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (m, (_, on)) in messages.into_iter().zip(&groups) {
        if !m.is_empty() {
            refusals.entry(m).or_default().extend(on);
        }
    }
    let (message, mut on) = refusals.into_iter().next()?;
    on.sort_unstable();
    Some((message, on.iter().map(|&n| nodes.name(n).to_string()).collect()))
}

/// Whether a node's merge takes an object: never (it meets nothing of `mine`), always, or when
/// it is the node's first to bring one of the router values `values[start..end]`.
#[derive(Clone, Copy)]
enum Take {
    Never,
    Always,
    FirstOf(u32, u32),
}

/// A value a router brings to a merge, in its VRF: its ASN, or its router ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RouterValue<'a> {
    Asn(&'a str, u32),
    Id(&'a str, std::net::Ipv4Addr),
}

/// The values of a meeting part that is routers alone, or None when it has more (a neighbor, a
/// BFD profile). Among such parts the merge can only name one when routers disagree on a value
/// (`merge::agree`: the first to bring a value, and the first to bring another), and a part
/// that brings no value a part before it did on the same node is never either: the merge on
/// that node names the same objects without it.
fn router_values(part: &ConfigContrib) -> Option<Vec<RouterValue<'_>>> {
    if !part.bfd_profiles.is_empty() || part.routers.iter().any(|r| !r.neighbors.is_empty()) {
        return None;
    }
    let mut values = Vec::with_capacity(2 * part.routers.len());
    for r in &part.routers {
        values.push(RouterValue::Asn(&r.vrf, r.asn));
        values.extend(r.router_id.map(|id| RouterValue::Id(&r.vrf, id)));
    }
    Some(values)
}

fn has_evpn(c: &ConfigContrib) -> bool {
    c.routers.iter().any(|r| r.evpn.is_some() || r.neighbors.iter().any(|n| n.families.evpn))
}

/// A neighbor's contribution without what merges without errors (prefixes to advertise and
/// filters to receive: sets with their sources); local preferences and communities stay (they
/// must agree, and count against the neighbor's limit).
fn neighbor_values(n: &NeighborContrib) -> NeighborContrib {
    NeighborContrib {
        outbound: OutboundContrib { advertise: BTreeSet::new(), ..n.outbound.clone() },
        inbound: InboundContrib { receive_all: false, receive: BTreeSet::new(), ..n.inbound.clone() },
        ..n.clone()
    }
}

/// The part of `c` that can take part in an error naming `mine` when both are merged, or None
/// when nothing can: BFD profiles of the names `mine` defines; routers in the VRFs `mine` has,
/// with their router-level values and their neighbors at the peers `mine` has there (see
/// `neighbor_values`). Errors
/// arise per BFD profile name, per router's single values and per neighbor, and only among
/// the objects that contribute there; routers merge without errors in their prefixes and
/// imports. The rest merges independently of `mine`, except through the EVPN checks on the
/// merged routers: callers use this only when no object has EVPN (neither a router's evpn
/// section nor a neighbor's evpn address family).
fn meeting_part(c: &ConfigContrib, mine: &ConfigContrib) -> Option<ConfigContrib> {
    let profiles: BTreeSet<&str> = mine.bfd_profiles.iter().map(|p| p.name.as_str()).collect();
    let bfd_profiles: Vec<_> = c.bfd_profiles.iter().filter(|p| profiles.contains(p.name.as_str())).cloned().collect();
    let routers: Vec<RouterContrib> = c
        .routers
        .iter()
        .filter_map(|r| {
            let peers: Vec<&Peer> = mine.routers.iter().filter(|m| m.vrf == r.vrf).flat_map(|m| m.neighbors.iter().map(|n| &n.peer)).collect();
            mine.routers.iter().any(|m| m.vrf == r.vrf).then(|| RouterContrib {
                obj: r.obj.clone(),
                asn: r.asn,
                vrf: r.vrf.clone(),
                router_id: r.router_id,
                prefixes: BTreeSet::new(),
                import_vrfs: BTreeSet::new(),
                evpn: None,
                neighbors: r.neighbors.iter().filter(|n| peers.contains(&&n.peer)).map(neighbor_values).collect(),
            })
        })
        .collect();
    if routers.is_empty() && bfd_profiles.is_empty() {
        return None;
    }
    Some(ConfigContrib { obj: c.obj.clone(), routers, bfd_profiles, raw: None, warnings: vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn index() -> NodeIndex {
        NodeIndex::new([
            ("n2".to_string(), labels(&[("rack", "a"), ("zone", "x")])),
            ("n1".to_string(), labels(&[("rack", "a")])),
            ("n3".to_string(), labels(&[("rack", "b"), ("zone", "y")])),
        ])
    }

    fn names(i: &NodeIndex, ns: Vec<u32>) -> Vec<&str> {
        ns.into_iter().map(|n| i.name(n)).collect()
    }

    #[test]
    fn selection_through_the_index_matches_the_selector() {
        let i = index();
        let sel = |s: LabelSelector| NodeSelector::parse(&s).unwrap();
        assert_eq!(names(&i, i.select(None)), ["n1", "n2", "n3"]);
        let rack_a = sel(LabelSelector { match_labels: Some([("rack".to_string(), "a".to_string())].into()), ..Default::default() });
        assert_eq!(names(&i, i.select(Some(&rack_a))), ["n1", "n2"]);
        let req = |op: &str, values: Option<Vec<&str>>| LabelSelectorRequirement {
            key: "zone".into(),
            operator: op.into(),
            values: values.map(|v| v.into_iter().map(String::from).collect()),
        };
        let in_zone = sel(LabelSelector { match_expressions: Some(vec![req("In", Some(vec!["x", "y", "w"]))]), ..Default::default() });
        assert_eq!(names(&i, i.select(Some(&in_zone))), ["n2", "n3"]);
        // narrowed by rack, then checked against every requirement
        let rack_a_not_x = sel(LabelSelector {
            match_labels: Some([("rack".to_string(), "a".to_string())].into()),
            match_expressions: Some(vec![req("NotIn", Some(vec!["x"]))]),
        });
        assert_eq!(names(&i, i.select(Some(&rack_a_not_x))), ["n1"]);
        let no_zone = sel(LabelSelector { match_expressions: Some(vec![req("DoesNotExist", None)]), ..Default::default() });
        assert_eq!(names(&i, i.select(Some(&no_zone))), ["n1"]);
        let unknown = sel(LabelSelector { match_labels: Some([("nope".to_string(), "a".to_string())].into()), ..Default::default() });
        assert!(i.select(Some(&unknown)).is_empty());
        assert!(NodeSelector::parse(&LabelSelector { match_expressions: Some(vec![req("In", None)]), ..Default::default() }).is_err());
    }
}
