//! `frr-composer diff -f FILES`: what applying (or deleting) these FRRConfigurations would do
//! on every node, before it happens: the objects each node would refuse (and whether an
//! earlier generation stays in effect), the FRR commands the agent would send, the BGP
//! sessions that would reset and why, and the prefixes each peer would lose or gain. Nodes
//! with the same outcome are printed together, so a change to 3,000 nodes reads in a few
//! lines. Against the API server (as `kubectl diff -f`) or against saved objects (a pull
//! request's pipeline without cluster access). Exit 0: no change; 1: changes; 2: errors.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use serde::Serialize;

use crate::api::FRRConfiguration;
use crate::core::isolation::{isolate, Decision, Ledger};
use crate::core::model::Model;
use crate::core::{SecretEntry, Settings, Snapshot};

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The changed FRRConfigurations: files or folders (repeatable), as `kubectl diff -f`.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// What deleting the objects of the files would do, instead of applying them.
    #[arg(long)]
    pub delete: bool,
    /// The cluster as saved YAML instead of the API server: `kubectl get -A
    /// frrconfigurations,nodes -o yaml` (add the agents' Secrets for passwordSecret).
    #[arg(long = "from")]
    pub from: Vec<PathBuf>,
    /// The namespace of the agents (objects of the files without one go there).
    #[arg(short = 'n', long, default_value = "frr-k8s-system")]
    pub namespace: String,
    /// The kubeconfig context to use (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// text, or json for CI.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// What a change does on one node (nodes with equal outcomes are grouped).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `namespace/name: what happens` for each object the node would not apply as written.
    pub refused: Vec<String>,
    /// The FRR commands the agent would send (context lines joined with ` > `).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `peer (vrf): why` for every session that would reset, go down or start.
    pub sessions: Vec<String>,
    /// `peer (vrf): prefix` no longer advertised, and newly advertised.
    pub withdrawn: Vec<String>,
    pub announced: Vec<String>,
}

impl Outcome {
    pub fn changes(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }
}

/// One group of nodes with the same outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub nodes: Vec<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What the prediction reads: the cluster as it is, and the change.
pub struct Cluster {
    pub namespace: String,
    pub configs: Vec<FRRConfiguration>,
    pub node_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, SecretEntry>,
}

/// What changes between two models of one node, for its sessions and advertisements.
fn sessions_and_prefixes(before: &Model, after: &Model, out: &mut Outcome) {
    let i = crate::core::impact::impact(before, after);
    out.sessions.extend(i.sessions);
    out.withdrawn.extend(i.withdrawn);
    out.announced.extend(i.announced);
}

/// The outcome on one node: `before` as the agent runs it now (each refused object left
/// out), `after` decided by per-object isolation against it, as the agent would.
fn node_outcome(
    settings: &Settings,
    labels: &BTreeMap<String, String>,
    before: &[FRRConfiguration],
    after: &[FRRConfiguration],
    secrets: &BTreeMap<String, SecretEntry>,
) -> Result<Outcome, String> {
    let snap = |configs| Snapshot { node_labels: labels, configs, secrets };
    let b = isolate(settings, snap(before), &Ledger::default()).map_err(|e| e.to_string())?;
    let a = isolate(settings, snap(after), &b.ledger).map_err(|e| e.to_string())?;
    let mut out = Outcome::default();
    let was_refused: BTreeSet<String> = b.decisions.iter().filter(|d| !matches!(d.decision, Decision::Applied)).map(|d| d.obj.to_string()).collect();
    for d in a.decisions.iter().filter(|d| !matches!(d.decision, Decision::Applied)) {
        let note = if was_refused.contains(&d.obj.to_string()) { " (already refused now)" } else { "" };
        out.refused.push(format!("{}: {}{note}", d.obj, crate::frr::redact(&d.message())));
    }
    let render = |m: &Model| crate::render::render(m).map_err(|e| e.to_string());
    let batch = crate::frr::apply::commands(&render(&b.composition.model)?, &render(&a.composition.model)?);
    out.added = batch.added.iter().map(|l| crate::frr::redact(l)).collect();
    out.removed = batch.removed.iter().map(|l| crate::frr::redact(l)).collect();
    sessions_and_prefixes(&b.composition.model, &a.composition.model, &mut out);
    Ok(out)
}

/// The change applied to the cluster's objects: each object of `change` replaces the one of
/// its namespace and name (or is added); with `delete`, it is removed.
pub fn changed(current: &[FRRConfiguration], change: &[FRRConfiguration], delete: bool) -> Vec<FRRConfiguration> {
    let key = |c: &FRRConfiguration| (c.namespace().unwrap_or_default(), c.name_any());
    let touched: BTreeSet<(String, String)> = change.iter().map(key).collect();
    let mut out: Vec<FRRConfiguration> = current.iter().filter(|c| !touched.contains(&key(c))).cloned().collect();
    if !delete {
        for c in change {
            let mut c = c.clone();
            // a changed spec is a new generation, as the API server counts it
            if let Some(old) = current.iter().find(|o| key(o) == key(&c)) {
                c.metadata.uid = old.metadata.uid.clone();
                c.metadata.generation = Some(old.metadata.generation.unwrap_or(1) + i64::from(old.spec != c.spec));
            } else {
                c.metadata.generation = Some(1);
            }
            out.push(c);
        }
    }
    out
}

/// An object with its nodeSelector parsed (None: none, or an invalid one).
type Selecting = (Option<kube::core::Selector>, FRRConfiguration);

/// Every node's outcome, grouped; nodes the change does not touch are left out. Errors are
/// per node (`node: error`).
pub fn predict(cluster: &Cluster, change: &[FRRConfiguration], delete: bool) -> (Vec<Group>, Vec<String>) {
    let after = changed(&cluster.configs, change, delete);
    // each selector parsed once; a node composes only the objects that may select it (an
    // invalid selector counts: the node reports it), as the agent's watch keeps them
    let selecting = |configs: &[FRRConfiguration]| -> Vec<Selecting> {
        configs.iter().map(|c| (c.spec.node_selector.as_ref().and_then(|s| crate::core::parse_selector(s).ok()), c.clone())).collect()
    };
    let (before_sel, after_sel) = (selecting(&cluster.configs), selecting(&after));
    let for_node = |all: &[Selecting], labels: &BTreeMap<String, String>| -> Vec<FRRConfiguration> {
        all.iter()
            .filter(|(sel, c)| match sel {
                Some(s) => kube::core::SelectorExt::matches(s, labels),
                None => c.spec.node_selector.is_none() || crate::core::parse_selector(c.spec.node_selector.as_ref().expect("checked")).is_err(),
            })
            .map(|(_, c)| c.clone())
            .collect()
    };
    let mut groups: BTreeMap<Outcome, Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (node, labels) in &cluster.node_labels {
        let settings = Settings {
            namespace: cluster.namespace.clone(),
            hostname: node.clone(),
            log_level: crate::api::LogLevel::Info,
            always_block: Vec::new(),
            node_has_ipv4: true,
            frr_version: None,
        };
        match node_outcome(&settings, labels, &for_node(&before_sel, labels), &for_node(&after_sel, labels), &cluster.secrets) {
            Ok(o) if o.changes() || !o.refused.is_empty() => groups.entry(o).or_default().push(node.clone()),
            Ok(_) => {}
            Err(e) => errors.push(format!("{node}: {e}")),
        }
    }
    let mut out: Vec<Group> = groups.into_iter().map(|(outcome, nodes)| Group { nodes, outcome }).collect();
    out.sort_by(|a, b| b.nodes.len().cmp(&a.nodes.len()).then_with(|| a.nodes.cmp(&b.nodes)));
    (out, errors)
}

/// The groups as text: the nodes (the first ten named), then each kind of change.
pub fn text(groups: &[Group]) -> String {
    let mut s = String::new();
    if groups.is_empty() {
        s.push_str("no node changes\n");
    }
    for g in groups {
        let shown: Vec<&str> = g.nodes.iter().take(10).map(|n| n.as_str()).collect();
        let more = if g.nodes.len() > 10 { format!(" and {} more", g.nodes.len() - 10) } else { String::new() };
        s.push_str(&format!("{} node{}: {}{more}\n", g.nodes.len(), if g.nodes.len() == 1 { "" } else { "s" }, shown.join(", ")));
        let mut section = |title: &str, sign: &str, items: &[String]| {
            if !items.is_empty() {
                s.push_str(&format!("  {title}:\n"));
                for i in items {
                    s.push_str(&format!("    {sign}{i}\n"));
                }
            }
        };
        section("refused", "", &g.outcome.refused);
        section("sessions", "", &g.outcome.sessions);
        section("withdrawn", "- ", &g.outcome.withdrawn);
        section("announced", "+ ", &g.outcome.announced);
        section("FRR commands removed", "- ", &g.outcome.removed);
        section("FRR commands added", "+ ", &g.outcome.added);
    }
    s
}

async fn read_cluster(args: &DiffArgs) -> anyhow::Result<Cluster> {
    let client = super::peers::client(args.context.as_deref()).await?;
    let lp = ListParams::default();
    let configs =
        super::peers::list_all(&Api::<FRRConfiguration>::namespaced(client.clone(), &args.namespace), &lp).await.context("listing FRRConfigurations")?;
    let node_labels = super::peers::node_labels(&client, None).await.context("listing Nodes")?;
    // passwords resolve as on the nodes; without the right to read them, both sides miss them
    let secrets = match super::peers::list_all(&Api::<Secret>::namespaced(client, &args.namespace), &lp).await {
        Ok(s) => crate::input::secret_entries(s.iter()),
        Err(e) => {
            tracing::debug!(error = %e, "Secrets not read");
            BTreeMap::new()
        }
    };
    Ok(Cluster { namespace: args.namespace.clone(), configs, node_labels, secrets })
}

fn read_saved(args: &DiffArgs) -> anyhow::Result<Cluster> {
    let (objects, errors) = crate::offline::load_inputs(&args.from);
    if let Some(e) = errors.first() {
        anyhow::bail!("{e}");
    }
    let secrets = objects.secrets_in(&args.namespace);
    Ok(Cluster {
        namespace: args.namespace.clone(),
        configs: objects.configs.into_iter().filter(|c| c.namespace().unwrap_or_default() == args.namespace).collect(),
        node_labels: objects.nodes.iter().map(|n| (n.name_any(), n.labels().clone())).collect(),
        secrets,
    })
}

pub fn run(args: &DiffArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (objects, errors) = crate::offline::load_inputs(&args.files);
    if !errors.is_empty() {
        for e in &errors {
            let _ = writeln!(err, "error: {e}");
        }
        return 2;
    }
    let change: Vec<FRRConfiguration> = objects
        .configs
        .into_iter()
        .map(|mut c| {
            if c.metadata.namespace.as_deref().unwrap_or("").is_empty() {
                c.metadata.namespace = Some(args.namespace.clone());
            }
            c
        })
        .collect();
    if change.is_empty() {
        let _ = writeln!(err, "error: no FRRConfiguration in {:?}", args.files);
        return 2;
    }
    let cluster = if args.from.is_empty() {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(read_cluster(args)),
            Err(e) => Err(e.into()),
        }
    } else {
        read_saved(args)
    };
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            return 2;
        }
    };
    let (groups, errors) = predict(&cluster, &change, args.delete);
    for e in &errors {
        let _ = writeln!(err, "error: {e}");
    }
    let printed = match args.output {
        Output::Json => serde_json::to_string_pretty(&serde_json::json!({"groups": groups, "errors": errors})).unwrap_or_default() + "\n",
        Output::Text => text(&groups),
    };
    let _ = out.write_all(printed.as_bytes());
    if !errors.is_empty() {
        2
    } else if groups.is_empty() {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, yaml_spec: &str) -> FRRConfiguration {
        let mut c: FRRConfiguration =
            serde_yaml::from_str(&format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: {name}, namespace: ns, generation: 3, uid: u-{name}}}\nspec:\n{yaml_spec}")).unwrap();
        c.metadata.namespace = Some("ns".into());
        c
    }

    fn metallb(prefixes: &[&str], asn: u32, password: Option<&str>) -> FRRConfiguration {
        let list = prefixes.join(", ");
        config(
            "metallb",
            &format!(
                "  bgp:\n    routers:\n    - asn: 64512\n      prefixes: [{list}]\n      neighbors:\n      - address: 192.0.2.1\n        asn: {asn}\n{}        toAdvertise: {{allowed: {{prefixes: [{list}]}}}}\n",
                password.map(|p| format!("        password: {p}\n")).unwrap_or_default()
            ),
        )
    }

    fn cluster(configs: Vec<FRRConfiguration>) -> Cluster {
        Cluster {
            namespace: "ns".into(),
            configs,
            node_labels: (1..=3).map(|i| (format!("wk{i}"), [("rack".to_string(), if i < 3 { "a" } else { "b" }.to_string())].into())).collect(),
            secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn a_withdrawn_prefix_and_a_new_one_on_every_node_in_one_group() {
        let c = cluster(vec![metallb(&["198.51.100.10/32", "198.51.100.11/32"], 65001, None)]);
        let (groups, errors) = predict(&c, &[metallb(&["198.51.100.10/32", "198.51.100.12/32"], 65001, None)], false);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].nodes, ["wk1", "wk2", "wk3"]);
        let o = &groups[0].outcome;
        assert_eq!(o.withdrawn, ["192.0.2.1 (default): 198.51.100.11/32"]);
        assert_eq!(o.announced, ["192.0.2.1 (default): 198.51.100.12/32"]);
        assert!(o.sessions.is_empty(), "no reset for a policy change: {:?}", o.sessions);
        assert!(o.added.iter().any(|l| l.contains("network 198.51.100.12/32")), "{:?}", o.added);
        assert!(o.removed.iter().any(|l| l.contains("network 198.51.100.11/32")), "{:?}", o.removed);
        let t = text(&groups);
        assert!(t.starts_with("3 nodes: wk1, wk2, wk3\n") && t.contains("    - 192.0.2.1 (default): 198.51.100.11/32"), "{t}");
    }

    #[test]
    fn resets_are_named_and_passwords_never_shown() {
        let c = cluster(vec![metallb(&["198.51.100.10/32"], 65001, Some("old-secret"))]);
        let (groups, _) = predict(&c, &[metallb(&["198.51.100.10/32"], 65001, Some("new-secret"))], false);
        let o = &groups[0].outcome;
        assert_eq!(o.sessions, ["192.0.2.1 (default): resets (password)"]);
        let all = serde_json::to_string(&groups).unwrap();
        assert!(!all.contains("old-secret") && !all.contains("new-secret"), "{all}");
        let (groups, _) = predict(&c, &[metallb(&["198.51.100.10/32"], 65002, Some("old-secret"))], false);
        assert_eq!(groups[0].outcome.sessions, ["192.0.2.1 (default): resets (remote AS)"]);
    }

    #[test]
    fn a_conflict_is_refused_and_the_last_good_generation_stays() {
        // rack b gets a second object that disagrees on the neighbor's ASN
        let other = config(
            "rack-b",
            "  nodeSelector: {matchLabels: {rack: b}}\n  bgp:\n    routers:\n    - asn: 64512\n      neighbors:\n      - {address: 192.0.2.1, asn: 65009}\n",
        );
        let c = cluster(vec![metallb(&["198.51.100.10/32"], 65001, None)]);
        let (groups, _) = predict(&c, std::slice::from_ref(&other), false);
        assert_eq!(groups.len(), 1, "{groups:#?}");
        assert_eq!(groups[0].nodes, ["wk3"]);
        let o = &groups[0].outcome;
        assert!(o.refused.len() == 1 && o.refused[0].starts_with("ns/rack-b: generation 1 is refused, nothing of this object is in effect"), "{:?}", o.refused);
        assert!(!o.changes(), "FRR keeps what it runs: {o:?}");
        // deleting the MetalLB object withdraws everything on every node
        let (groups, _) = predict(&c, &[metallb(&[], 65001, None)], true);
        assert_eq!(groups[0].nodes.len(), 3);
        assert_eq!(groups[0].outcome.sessions, ["192.0.2.1 (default): removed, the session goes down"]);
        assert_eq!(groups[0].outcome.withdrawn, ["192.0.2.1 (default): 198.51.100.10/32"]);
        // the same object again: no change anywhere
        let (groups, _) = predict(&c, &[metallb(&["198.51.100.10/32"], 65001, None)], false);
        assert!(groups.is_empty(), "{groups:#?}");
    }
}
