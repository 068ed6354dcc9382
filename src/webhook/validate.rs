//! The admission decision, a pure function of the new object, its previous version, the other
//! configurations of its namespace and the nodes' labels.

use std::collections::BTreeMap;

use crate::api::FRRConfiguration;
use crate::core::cluster_index::{self, NodeIndex, Prepared};
use crate::core::Error;

/// Ok(warnings) to admit, Err(message) to refuse. `others` are the prepared configurations
/// of the cluster other than `new` (those of other namespaces are left out here).
pub fn validate(
    namespace: &str,
    new: &FRRConfiguration,
    old: Option<&FRRConfiguration>,
    others: &[&Prepared],
    nodes: &NodeIndex,
) -> Result<Vec<String>, String> {
    let prepared = Prepared::new(new);
    let me = &prepared.obj;
    // Secrets are the agent's business (the webhook cannot read them, and a Secret may be
    // created after the configuration): their errors are left out here.
    let relevant = |e: &Error| !e.is_transient();
    // 1. The object on its own, whether or not it selects a node today.
    if let Err(errors) = &prepared.converted {
        let errors: Vec<String> = errors.iter().filter(|e| relevant(e)).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
    }
    let selected = match &prepared.selector {
        _ if nodes.is_empty() => vec![],
        Ok(sel) => nodes.select(sel.as_ref()),
        Err(e) => return Err(format!("FRRConfiguration {me}: spec.nodeSelector: invalid nodeSelector: {e}")),
    };
    // 2. Merged with what each selected node would read (only what this object causes: an
    // existing problem between others is theirs).
    if let Some((message, on)) = cluster_index::first_refusal(namespace, &prepared, &selected, others, nodes) {
        return Err(format!("{message}\nresource is invalid for node(s) {}", on.join(", ")));
    }
    // 3. Warnings: what the change does to sessions and advertisements, then the anchor's.
    let mut warnings = match old {
        Some(old) if !nodes.is_empty() => impact_warnings(namespace, new, old, &selected, nodes),
        _ => Vec::new(),
    };
    if new.spec.bgp.routers.iter().flat_map(|r| &r.neighbors).any(|n| n.disable_mp) {
        warnings.push("disableMP is deprecated, is ignored and will be removed in a future release".to_string());
    }
    if let Some(old) = old {
        let gr = |c: &FRRConfiguration| -> BTreeMap<(String, String), bool> {
            c.spec
                .bgp
                .routers
                .iter()
                .flat_map(|r| {
                    r.neighbors.iter().map(move |n| {
                        ((r.vrf.clone().unwrap_or_default(), n.address.clone().or(n.interface.clone()).unwrap_or_default()), n.enable_graceful_restart)
                    })
                })
                .collect()
        };
        let (a, b) = (gr(old), gr(new));
        if a.iter().any(|(k, v)| b.get(k).is_some_and(|w| w != v)) {
            warnings.push("Graceful restart configuration changed, it will be available on the next restart of the session".to_string());
        }
    }
    Ok(warnings)
}

/// At most this many sessions or prefixes are named in one warning (then a count).
const WARNING_ITEMS: usize = 5;

/// What an admitted update does on the nodes that stay selected: the sessions it resets or
/// ends and the prefixes it withdraws, from the object's own configuration before and after
/// ([`crate::core::impact`], the table `frr-composer diff` uses). On a node where another
/// object sets the same field, this object could not change it without a conflict the merge
/// refuses, so a change here is a change on the node; a withdrawn prefix may still be
/// advertised by another object, which the warning says. Passwords are compared by the name
/// of their Secret (never read). Also: the nodes the object no longer selects.
fn impact_warnings(namespace: &str, new: &FRRConfiguration, old: &FRRConfiguration, selected: &[u32], nodes: &NodeIndex) -> Vec<String> {
    use crate::core::{compose, SecretEntry, Settings, Snapshot};
    // the old selector only (the old object's contribution is composed below)
    let before: std::collections::BTreeSet<u32> = match old.spec.node_selector.as_ref().map(cluster_index::NodeSelector::parse).transpose() {
        Ok(sel) => nodes.select(sel.as_ref()).into_iter().collect(),
        Err(_) => return Vec::new(),
    };
    let staying = selected.iter().filter(|n| before.contains(n)).count();
    let leaving = before.len() - staying;
    // each object alone, on every node (selection is counted above)
    let alone = |c: &FRRConfiguration| {
        let mut c = c.clone();
        c.spec.node_selector = None;
        c
    };
    let (old_c, new_c) = (alone(old), alone(new));
    let secrets: BTreeMap<String, SecretEntry> = [&old_c, &new_c]
        .iter()
        .flat_map(|c| c.spec.bgp.routers.iter().flat_map(|r| &r.neighbors))
        .filter_map(|n| n.password_secret.as_ref().and_then(|s| s.name.clone()))
        // a stand-in per name: another Secret reads as another password
        .map(|name| (name.clone(), SecretEntry { type_: crate::core::convert::BASIC_AUTH.into(), password: Some(Ok(format!("secret-{name}"))) }))
        .collect();
    let settings = Settings {
        namespace: namespace.to_string(),
        hostname: "webhook".into(),
        log_level: crate::api::LogLevel::Info,
        always_block: vec![],
        node_has_ipv4: true,
        frr_version: None,
    };
    let model = |c: &FRRConfiguration| {
        compose(&settings, Snapshot { node_labels: &BTreeMap::new(), configs: std::slice::from_ref(c), secrets: &secrets }).ok().map(|c| c.model)
    };
    let mut warnings = Vec::new();
    let list = |items: Vec<&String>| {
        let more = items.len().saturating_sub(WARNING_ITEMS);
        let mut text = items.iter().take(WARNING_ITEMS).map(|s| s.as_str()).collect::<Vec<_>>().join("; ");
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        text
    };
    if let (Some(b), Some(a)) = (model(&old_c), model(&new_c)) {
        let impact = crate::core::impact::impact(&b, &a);
        let disrupted: Vec<&String> = impact.disrupted().collect();
        if staying > 0 && !disrupted.is_empty() {
            warnings.push(format!("this change resets or ends BGP sessions on {staying} node(s): {}", list(disrupted)));
        }
        if staying > 0 && !impact.withdrawn.is_empty() {
            warnings.push(format!(
                "this change withdraws prefixes on {staying} node(s), unless another FRRConfiguration advertises them there: {}",
                list(impact.withdrawn.iter().collect())
            ));
        }
    }
    let configures = !old.spec.bgp.routers.is_empty() || !old.spec.raw.raw_config.trim().is_empty();
    if leaving > 0 && configures {
        warnings.push(format!(
            "this change stops selecting {leaving} node(s): what it configures is removed there (its sessions go down and its prefixes are withdrawn unless another FRRConfiguration configures them)"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;
    use crate::core::{self, obj_ref, selector_matches, Settings, Snapshot};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    use kube::ResourceExt;
    use proptest::prelude::*;

    type Nodes = BTreeMap<String, BTreeMap<String, String>>;

    /// The decision as it was first written: one composition per selected node, each filtering
    /// every configuration's selector. The oracle of the grouped one.
    fn naive(
        namespace: &str,
        new: &FRRConfiguration,
        old: Option<&FRRConfiguration>,
        others: &[FRRConfiguration],
        nodes: &Nodes,
    ) -> Result<Vec<String>, String> {
        let me = obj_ref(new);
        let relevant = |e: &Error| !e.is_transient();
        if let Err(errors) = crate::core::convert::convert(&me, &new.spec, &BTreeMap::new()) {
            let errors: Vec<String> = errors.iter().filter(|e| relevant(e)).map(|e| e.to_string()).collect();
            if !errors.is_empty() {
                return Err(errors.join("\n"));
            }
        }
        let selected_nodes: Vec<&String> = match &new.spec.node_selector {
            None => nodes.keys().collect(),
            Some(sel) => {
                let mut v = Vec::new();
                for (name, labels) in nodes {
                    match selector_matches(sel, labels) {
                        Ok(true) => v.push(name),
                        Ok(false) => {}
                        Err(e) => return Err(format!("FRRConfiguration {me}: spec.nodeSelector: invalid nodeSelector: {e}")),
                    }
                }
                v
            }
        };
        let settings = Settings {
            namespace: namespace.to_string(),
            hostname: "webhook".into(),
            log_level: LogLevel::Info,
            always_block: vec![],
            node_has_ipv4: true,
            frr_version: None,
        };
        let mut configs: Vec<FRRConfiguration> = others.to_vec();
        configs.push(new.clone());
        let mut refusals: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for node in selected_nodes {
            if let Err(errors) = core::compose(&settings, Snapshot { node_labels: &nodes[node], configs: &configs, secrets: &BTreeMap::new() }) {
                let mine: Vec<String> = errors.0.iter().filter(|e| relevant(e) && e.objects().contains(&&me)).map(|e| e.to_string()).collect();
                if !mine.is_empty() {
                    refusals.entry(mine.join("\n")).or_default().push(node.clone());
                }
            }
        }
        if let Some((message, on)) = refusals.into_iter().next() {
            return Err(format!("{message}\nresource is invalid for node(s) {}", on.join(", ")));
        }
        // the warnings are computed by the same code in both
        let index = NodeIndex::new(nodes.iter().map(|(n, l)| (n.clone(), l.clone())));
        validate(namespace, new, old, &[], &index).or(Ok(vec![]))
    }

    /// The grouped decision, fed as the webhook feeds it, checked against the oracle.
    fn check(
        namespace: &str,
        new: &FRRConfiguration,
        old: Option<&FRRConfiguration>,
        others: &[FRRConfiguration],
        nodes: &Nodes,
    ) -> Result<Vec<String>, String> {
        let prepared: Vec<Prepared> = others.iter().map(Prepared::new).collect();
        let refs: Vec<&Prepared> = prepared.iter().collect();
        let index = NodeIndex::new(nodes.clone());
        let fast = validate(namespace, new, old, &refs, &index);
        assert_eq!(fast, naive(namespace, new, old, others, nodes));
        fast
    }

    fn cfg(name: &str, asn: u32, sel: Option<(&str, &str)>) -> FRRConfiguration {
        let mut c = FRRConfiguration::new(
            name,
            FRRConfigurationSpec {
                bgp: BgpConfig {
                    routers: vec![Router {
                        asn: 65000,
                        neighbors: vec![Neighbor { asn, address: Some("192.0.2.1".into()), ..Default::default() }],
                        ..Default::default()
                    }],
                    bfd_profiles: vec![],
                },
                node_selector: sel.map(|(k, v)| LabelSelector { match_labels: Some([(k.to_string(), v.to_string())].into()), ..Default::default() }),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("ns".into());
        c
    }

    fn nodes() -> Nodes {
        [("n1".to_string(), [("rack".to_string(), "a".to_string())].into()), ("n2".to_string(), [("rack".to_string(), "b".to_string())].into())].into()
    }

    #[test]
    fn conflicts_on_a_selected_node_are_refused() {
        let err = check("ns", &cfg("new", 65002, Some(("rack", "a"))), None, &[cfg("old", 65001, None)], &nodes()).unwrap_err();
        assert!(err.contains("ns/new") && err.contains("ns/old") && err.contains("65002") && err.contains("node(s) n1"), "{err}");
        // no common node: no conflict
        assert!(check("ns", &cfg("new", 65002, Some(("rack", "a"))), None, &[cfg("old", 65001, Some(("rack", "b")))], &nodes()).is_ok());
    }

    #[test]
    fn the_first_refusal_names_every_node_it_applies_to() {
        let others = [cfg("old-a", 65001, Some(("rack", "a"))), cfg("old-b", 65003, Some(("rack", "b")))];
        let err = check("ns", &cfg("new", 65002, None), None, &others, &nodes()).unwrap_err();
        assert!(err.contains("ns/old-a") && !err.contains("ns/old-b") && err.ends_with("node(s) n1"), "{err}");
        let mut both = nodes();
        both.insert("n3".into(), [("rack".to_string(), "a".to_string())].into());
        let err = check("ns", &cfg("new", 65002, None), None, &others, &both).unwrap_err();
        assert!(err.ends_with("node(s) n1, n3"), "{err}");
    }

    /// The webhook refuses what the merge refuses for AS-path prepends: two objects asking
    /// for different counts on one prefix and neighbor, and a count of 0 in one object.
    #[test]
    fn as_path_prepend_conflicts_and_bad_counts_are_refused() {
        let with_prepend = |name: &str, count: u32| {
            let mut c = cfg(name, 65001, None);
            c.spec.bgp.routers[0].prefixes = vec!["198.51.100.10/32".into()];
            let adv = &mut c.spec.bgp.routers[0].neighbors[0].to_advertise;
            adv.allowed.prefixes = vec!["198.51.100.10/32".into()];
            adv.with_as_path_prepend = vec![crate::api::AsPathPrependPrefixes { prefixes: vec!["198.51.100.10/32".into()], as_path_prepend: count }];
            c
        };
        let err = check("ns", &with_prepend("new", 4), None, &[with_prepend("metallb", 2)], &nodes()).unwrap_err();
        assert!(
            err.contains("ns/new")
                && err.contains("ns/metallb")
                && err.contains("withAsPathPrepend (prefix 198.51.100.10/32)")
                && err.contains('4')
                && err.contains('2'),
            "{err}"
        );
        assert!(check("ns", &with_prepend("new", 2), None, &[with_prepend("metallb", 2)], &nodes()).is_ok(), "the same count agrees");
        let err = check("ns", &with_prepend("new", 0), None, &[], &nodes()).unwrap_err();
        assert!(err.contains("asPathPrepend") && err.contains("from 1 to 10"), "{err}");
    }

    #[test]
    fn per_object_checks_run_without_any_node() {
        let mut c = cfg("new", 65002, Some(("rack", "none")));
        c.spec.bgp.routers[0].neighbors[0].address = Some("not-an-ip".into());
        assert!(check("ns", &c, None, &[], &nodes()).unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn an_object_of_more_than_1000_neighbors_is_refused() {
        let mut c = cfg("wide", 65002, None);
        let n = c.spec.bgp.routers[0].neighbors[0].clone();
        let mut second = c.spec.bgp.routers[0].clone();
        second.vrf = Some("red".into());
        c.spec.bgp.routers.push(second);
        for (r, count) in [(0, 600), (1, 401)] {
            c.spec.bgp.routers[r].neighbors = (0..count).map(|i| Neighbor { address: Some(format!("10.{r}.{}.{}", i / 256, i % 256)), ..n.clone() }).collect();
        }
        let e = check("ns", &c, None, &[], &nodes()).unwrap_err();
        assert!(e.contains("1001 neighbors in this FRRConfiguration; at most 1000"), "{e}");
        c.spec.bgp.routers[1].neighbors.pop();
        assert!(check("ns", &c, None, &[], &nodes()).is_ok());
    }

    #[test]
    fn an_update_that_resets_a_session_or_withdraws_prefixes_is_warned_with_node_counts() {
        let nodes = nodes();
        let n = nodes.len();
        let old = cfg("new", 65002, None);
        // the same object again: no warning
        assert_eq!(check("ns", &old, Some(&old), &[], &nodes).unwrap(), Vec::<String>::new());
        // another remote AS: the session resets on every node
        let w = check("ns", &cfg("new", 65003, None), Some(&old), &[], &nodes).unwrap();
        assert!(w.iter().any(|w| w.starts_with(&format!("this change resets or ends BGP sessions on {n} node(s)")) && w.contains("remote AS")), "{w:?}");
        // another password Secret: a reset, and no password is named
        let mut with_secret = old.clone();
        with_secret.spec.bgp.routers[0].neighbors[0].password_secret =
            Some(k8s_openapi::api::core::v1::SecretReference { name: Some("pw-a".into()), namespace: None });
        let mut other_secret = with_secret.clone();
        other_secret.spec.bgp.routers[0].neighbors[0].password_secret =
            Some(k8s_openapi::api::core::v1::SecretReference { name: Some("pw-b".into()), namespace: None });
        let w = check("ns", &other_secret, Some(&with_secret), &[], &nodes).unwrap();
        assert!(w.iter().any(|w| w.contains("resets (password)")) && !w.iter().any(|w| w.contains("secret-")), "{w:?}");
        // a prefix no longer advertised: withdrawn
        let mut advertising = old.clone();
        advertising.spec.bgp.routers[0].prefixes = vec!["198.51.100.7/32".into()];
        advertising.spec.bgp.routers[0].neighbors[0].to_advertise.allowed.prefixes = vec!["198.51.100.7/32".into()];
        let w = check("ns", &old, Some(&advertising), &[], &nodes).unwrap();
        assert!(w.iter().any(|w| w.contains("withdraws prefixes on") && w.contains("198.51.100.7/32")), "{w:?}");
        // a policy change alone (a new prefix): nothing to warn of
        assert_eq!(check("ns", &advertising, Some(&old), &[], &nodes).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn warnings() {
        let mut c = cfg("new", 65002, None);
        c.spec.bgp.routers[0].neighbors[0].disable_mp = true;
        c.spec.bgp.routers[0].neighbors[0].enable_graceful_restart = true;
        let w = check("ns", &c, Some(&cfg("new", 65002, None)), &[], &nodes()).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
    }

    /// Enough groups of nodes for the merges to be shared by two threads.
    #[test]
    fn many_groups_decide_as_node_by_node() {
        let nodes: Nodes = (0..300).map(|i| (format!("n{i:03}"), [("kubernetes.io/hostname".to_string(), format!("n{i:03}"))].into())).collect();
        // every node has its own object; those of every 7th node disagree with the new one
        let others: Vec<FRRConfiguration> = (0..300)
            .map(|i| cfg(&format!("node-{i:03}"), if i % 7 == 3 { 65009 } else { 65002 }, Some(("kubernetes.io/hostname", &format!("n{i:03}")))))
            .collect();
        let err = check("ns", &cfg("new", 65002, None), None, &others, &nodes).unwrap_err();
        assert!(err.contains("ns/node-003") && err.ends_with("node(s) n003"), "{err}");
        let agreeing: Vec<FRRConfiguration> = others.into_iter().filter(|c| c.spec.bgp.routers[0].neighbors[0].asn == 65002).collect();
        assert!(check("ns", &cfg("new", 65002, None), None, &agreeing, &nodes).is_ok());
        // each node's own object is named: the first message is about the first node
        let err = check("ns", &cfg("new", 65001, None), None, &agreeing, &nodes).unwrap_err();
        assert!(err.contains("ns/node-000") && err.ends_with("node(s) n000"), "{err}");
        // an object on every node that the new one contradicts: one message for all nodes
        let mut with_admin = agreeing.clone();
        with_admin.push(cfg("admin", 65002, None));
        let err = check("ns", &cfg("new", 65001, None), None, &with_admin, &nodes).unwrap_err();
        assert!(err.starts_with("conflict between FRRConfiguration ns/admin and ns/new"), "{err}");
        let named: Vec<&str> = err.rsplit_once("node(s) ").unwrap().1.split(", ").collect();
        assert_eq!(named, nodes.keys().map(String::as_str).collect::<Vec<_>>(), "every node refused, each named once: {err}");
    }

    /// Objects that meet the new one only in the router (its neighbor is theirs to none) are
    /// merged once per router value: each node's first to bring an ASN or a router ID. The
    /// decision stays the node-by-node one when a later object brings another value.
    #[test]
    fn objects_meeting_only_in_the_router_decide_as_node_by_node() {
        let nodes: Nodes = (0..40).map(|i| (format!("n{i:02}"), [("rack".to_string(), format!("r{}", i / 10))].into())).collect();
        let router_only = |name: &str, asn: u32, id: Option<&str>, rack: Option<&str>| {
            let mut c = cfg(name, 65001, rack.map(|r| ("rack", r)));
            c.spec.bgp.routers[0].asn = asn;
            c.spec.bgp.routers[0].id = id.map(String::from);
            c.spec.bgp.routers[0].neighbors[0].address = Some(format!("198.51.100.{}", 1 + name.len()));
            c
        };
        let mut others: Vec<FRRConfiguration> = (0..4).map(|r| router_only(&format!("a-rack-{r}"), 65000, None, Some(&format!("r{r}")))).collect();
        others.extend((0..3).map(|k| router_only(&format!("b-all-{k}"), 65000, None, None)));
        // on rack r2 only, a later object brings a router ID, and one after it another
        others.push(router_only("c-id", 65000, Some("192.0.2.10"), Some("r2")));
        others.push(router_only("d-id", 65000, Some("192.0.2.11"), Some("r2")));
        // (their own disagreement is not the new object's)
        assert!(check("ns", &cfg("new", 65002, None), None, &others, &nodes).is_ok());
        // the new object's own router ID meets the first one brought on rack r2
        let mut with_id = cfg("new", 65002, None);
        with_id.spec.bgp.routers[0].id = Some("192.0.2.12".into());
        let others: Vec<FRRConfiguration> = others.into_iter().filter(|c| c.name_any() != "d-id").collect();
        let err = check("ns", &with_id, None, &others, &nodes).unwrap_err();
        assert!(err.contains("ns/c-id") && err.contains("ns/new") && err.ends_with("node(s) n20, n21, n22, n23, n24, n25, n26, n27, n28, n29"), "{err}");
        // a new router ASN conflicts with the first object on every node
        let mut other_asn = cfg("new", 65002, None);
        other_asn.spec.bgp.routers[0].asn = 65009;
        let err = check("ns", &other_asn, None, &others, &nodes).unwrap_err();
        assert!(err.starts_with("conflict between FRRConfiguration ns/a-rack-0 and ns/new"), "{err}");
    }

    /// EVPN checks read the merged routers whole: there, what the new object does not share
    /// still counts. Here a conflict between two others at a peer the new object does not have
    /// leaves the router unmerged, so its EVPN problem is not reported against the new object.
    #[test]
    fn evpn_checks_see_the_whole_router() {
        let mut a = cfg("a", 64601, None);
        a.spec.bgp.routers[0].neighbors[0].address = Some("192.0.2.9".into());
        a.spec.bgp.routers[0].evpn =
            Some(EvpnConfig { advertise_vnis: Some(AdvertiseVnis::All), l2vnis: vec![L2Vni { vni: 100, ..Default::default() }], ..Default::default() });
        let mut b = cfg("b", 64602, None);
        b.spec.bgp.routers[0].neighbors[0].address = Some("192.0.2.9".into());
        assert!(check("ns", &cfg("new", 65002, None), None, &[a.clone(), b], &nodes()).is_ok());
        let err = check("ns", &cfg("new", 65002, None), None, &[a], &nodes()).unwrap_err();
        assert!(err.contains("evpn address family") && err.contains("ns/new"), "{err}");
    }

    fn selector() -> impl Strategy<Value = Option<LabelSelector>> {
        let req = |key: &str, op: &str, values: Option<Vec<String>>| LabelSelectorRequirement { key: key.into(), operator: op.into(), values };
        prop_oneof![
            2 => Just(None),
            3 => (0..3u8).prop_map(|r| Some(LabelSelector { match_labels: Some([("rack".to_string(), format!("r{r}"))].into()), ..Default::default() })),
            3 => (0..6u8).prop_map(|n| Some(LabelSelector { match_labels: Some([("kubernetes.io/hostname".to_string(), format!("n{n}"))].into()), ..Default::default() })),
            1 => proptest::collection::vec(0..3u8, 1..3).prop_map(move |v| Some(LabelSelector {
                match_expressions: Some(vec![req("rack", "In", Some(v.iter().map(|r| format!("r{r}")).collect()))]),
                ..Default::default()
            })),
            1 => (0..2u8).prop_map(move |z| Some(LabelSelector { match_expressions: Some(vec![req("zone", "NotIn", Some(vec![format!("z{z}")]))]), ..Default::default() })),
            1 => any::<bool>().prop_map(move |b| Some(LabelSelector { match_expressions: Some(vec![req("zone", if b { "Exists" } else { "DoesNotExist" }, None)]), ..Default::default() })),
            1 => Just(Some(LabelSelector { match_expressions: Some(vec![req("rack", "In", None)]), ..Default::default() })),
        ]
    }

    fn neighbor() -> impl Strategy<Value = Neighbor> {
        (0..3u8, 0..3u32, proptest::option::of(prop_oneof![Just(179u32), Just(1179)]), proptest::option::of(Just("90s".to_string())), 0..12u8).prop_map(
            |(peer, asn, port, hold_time, odd)| Neighbor {
                asn: 64600 + asn,
                address: Some(if odd == 0 { "not-an-ip".to_string() } else { format!("192.0.2.{}", 1 + peer) }),
                port,
                hold_time,
                password_secret: (odd == 1).then(|| k8s_openapi::api::core::v1::SecretReference { name: Some("pw".into()), namespace: None }),
                bfd_profile: (odd == 2).then(|| "bfd".to_string()),
                address_families: if odd == 3 { vec![AddressFamily::Unicast, AddressFamily::Evpn] } else { vec![] },
                to_advertise: Advertise {
                    allowed: AllowedOutPrefixes { prefixes: vec!["203.0.113.0/24".into()], ..Default::default() },
                    with_local_pref: (odd == 4 || odd == 5)
                        .then(|| LocalPrefPrefixes { prefixes: vec!["203.0.113.0/24".into()], local_pref: 100 * odd as u32 })
                        .into_iter()
                        .collect(),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    }

    fn config(name: String) -> impl Strategy<Value = FRRConfiguration> {
        let router =
            (0..2u32, any::<bool>(), proptest::option::of(0..2u8), proptest::collection::vec(neighbor(), 0..3)).prop_map(|(asn, red, id, neighbors)| Router {
                asn: 65000 + asn,
                vrf: red.then(|| "red".to_string()),
                id: id.map(|i| format!("198.51.100.{}", 1 + i)),
                neighbors,
                ..Default::default()
            });
        let bfd = (100..102u32).prop_map(|ri| BfdProfile { name: "bfd".into(), receive_interval: Some(ri), ..Default::default() });
        (proptest::collection::vec(router, 1..3), proptest::option::of(bfd), selector(), 0..20u8).prop_map(move |(routers, bfd, node_selector, odd)| {
            let mut c = FRRConfiguration::new(
                &name,
                FRRConfigurationSpec { bgp: BgpConfig { routers, bfd_profiles: bfd.into_iter().collect() }, node_selector, ..Default::default() },
            );
            c.metadata.namespace = Some(if odd == 0 { "elsewhere".into() } else { "ns".into() });
            c
        })
    }

    fn cluster() -> impl Strategy<Value = (Nodes, FRRConfiguration, Vec<FRRConfiguration>)> {
        let node = (0..3u8, proptest::option::of(0..2u8));
        let nodes = proptest::collection::vec(node, 0..6).prop_map(|ls| {
            ls.into_iter()
                .enumerate()
                .map(|(i, (rack, zone))| {
                    let mut l: BTreeMap<String, String> =
                        [("kubernetes.io/hostname".to_string(), format!("n{i}")), ("rack".to_string(), format!("r{rack}"))].into();
                    if let Some(z) = zone {
                        l.insert("zone".into(), format!("z{z}"));
                    }
                    (format!("n{i}"), l)
                })
                .collect::<Nodes>()
        });
        let others = (0..8usize).prop_flat_map(|n| (0..n).map(|i| config(format!("c{i}"))).collect::<Vec<_>>());
        (nodes, config("new".into()), others)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// The grouped decision is the node-by-node one, message for message.
        #[test]
        fn grouped_decision_is_the_node_by_node_one((nodes, new, others) in cluster()) {
            check("ns", &new, None, &others, &nodes).ok();
            // also under another name that sorts among the others
            let mut renamed = new.clone();
            renamed.metadata.name = Some("c3".into());
            let others: Vec<FRRConfiguration> = others.into_iter().filter(|c| c.name_any() != "c3").collect();
            check("ns", &renamed, None, &others, &nodes).ok();
        }
    }
}
