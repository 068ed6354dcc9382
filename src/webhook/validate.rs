//! The admission decision, a pure function of the new object, its previous version, the other
//! configurations of its namespace and the nodes' labels.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::{FRRConfiguration, LogLevel};
use crate::core::{self, convert, obj_ref, selector_matches, Error, Settings, Snapshot};

/// Ok(warnings) to admit, Err(message) to refuse.
pub fn validate(
    namespace: &str,
    new: &FRRConfiguration,
    old: Option<&FRRConfiguration>,
    others: &[FRRConfiguration],
    nodes: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<String>, String> {
    let me = obj_ref(new);
    // Secrets are the agent's business (the webhook cannot read them, and a Secret may be
    // created after the configuration): their errors are left out here.
    let relevant = |e: &Error| !e.is_transient();
    // 1. The object on its own, whether or not it selects a node today.
    if let Err(errors) = convert::convert(&me, &new.spec, &BTreeMap::new()) {
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
    // 2. Merged with what each selected node would read.
    let settings =
        Settings { namespace: namespace.to_string(), hostname: "webhook".into(), log_level: LogLevel::Info, always_block: vec![], node_has_ipv4: true };
    let mut configs: Vec<FRRConfiguration> = others.to_vec();
    configs.push(new.clone());
    let mut refusals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in selected_nodes {
        let labels = &nodes[node];
        if let Err(errors) = core::compose(&settings, Snapshot { node_labels: labels, configs: &configs, secrets: &BTreeMap::new() }) {
            // only what this object causes: an existing problem between others is theirs
            let mine: Vec<String> = errors.0.iter().filter(|e| relevant(e) && e.objects().contains(&&me)).map(|e| e.to_string()).collect();
            if !mine.is_empty() {
                refusals.entry(mine.join("\n")).or_default().push(node.clone());
            }
        }
    }
    if let Some((message, on)) = refusals.into_iter().next() {
        return Err(format!("{message}\nresource is invalid for node(s) {}", on.join(", ")));
    }
    // 3. Warnings.
    let mut warnings = Vec::new();
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
    let _ = new.name_any();
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

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
                node_selector: sel.map(|(k, v)| k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some([(k.to_string(), v.to_string())].into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("ns".into());
        c
    }

    fn nodes() -> BTreeMap<String, BTreeMap<String, String>> {
        [("n1".to_string(), [("rack".to_string(), "a".to_string())].into()), ("n2".to_string(), [("rack".to_string(), "b".to_string())].into())].into()
    }

    #[test]
    fn conflicts_on_a_selected_node_are_refused() {
        let err = validate("ns", &cfg("new", 65002, Some(("rack", "a"))), None, &[cfg("old", 65001, None)], &nodes()).unwrap_err();
        assert!(err.contains("ns/new") && err.contains("ns/old") && err.contains("65002") && err.contains("node(s) n1"), "{err}");
        // no common node: no conflict
        assert!(validate("ns", &cfg("new", 65002, Some(("rack", "a"))), None, &[cfg("old", 65001, Some(("rack", "b")))], &nodes()).is_ok());
    }

    #[test]
    fn per_object_checks_run_without_any_node() {
        let mut c = cfg("new", 65002, Some(("rack", "none")));
        c.spec.bgp.routers[0].neighbors[0].address = Some("not-an-ip".into());
        assert!(validate("ns", &c, None, &[], &nodes()).unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn warnings() {
        let mut c = cfg("new", 65002, None);
        c.spec.bgp.routers[0].neighbors[0].disable_mp = true;
        c.spec.bgp.routers[0].neighbors[0].enable_graceful_restart = true;
        let w = validate("ns", &c, Some(&cfg("new", 65002, None)), &[], &nodes()).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
    }
}
