//! `frr-composer peers`: every node's BGP sessions in one table, from what the agents publish
//! (one BGPSessionState per session), each with the FRRConfigurations that define its
//! neighbor. Read from the API server with paged lists (no `exec`, nothing per node), or
//! offline from what `kubectl get -o yaml` saved.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, ObjectList};
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{BGPSessionState, FRRConfiguration};
use crate::core::convert::canonical_vrf;

/// Where the cluster's objects are: the agents' namespace and the kubeconfig context.
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// The namespace of the agents: where the FRRConfigurations and what the agents publish
    /// (BGPSessionStates) are.
    #[arg(short = 'n', long, default_value = "frr-k8s-system")]
    pub namespace: String,
    /// The kubeconfig context to use (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
}

/// Which nodes, peers and VRFs to show.
#[derive(clap::Args, Debug)]
pub struct ScopeArgs {
    /// Only these nodes (repeat the flag for several).
    #[arg(long)]
    pub node: Vec<String>,
    /// Only the nodes whose labels match this label selector (`rack=a`, `tier in (edge)`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only this peer (address or interface).
    #[arg(long)]
    pub peer: Option<String>,
    /// Only this VRF (`default` for the default VRF).
    #[arg(long)]
    pub vrf: Option<String>,
}

impl ScopeArgs {
    /// The nodes the label selector admits, as the API server selects them (None: no selector).
    pub(crate) async fn selected(&self, client: &kube::Client) -> anyhow::Result<Option<BTreeSet<String>>> {
        match &self.selector {
            Some(s) => Ok(Some(node_labels(client, Some(s)).await.context("listing Nodes by the selector")?.into_keys().collect())),
            None => Ok(None),
        }
    }

    /// The same offline, from the saved Nodes' labels.
    pub(crate) fn selected_offline(&self, node_labels: &BTreeMap<String, BTreeMap<String, String>>) -> anyhow::Result<Option<BTreeSet<String>>> {
        self.selector.as_deref().map(|s| select_offline(node_labels, s)).transpose()
    }

    /// The scope, with the nodes the label selector admits.
    pub(crate) fn scope(&self, selected_nodes: Option<BTreeSet<String>>) -> Scope {
        Scope { nodes: self.node.clone(), selected_nodes, peer: self.peer.clone(), vrf: self.vrf.clone() }
    }
}

#[derive(clap::Args, Debug)]
pub struct PeersArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only sessions in this BGP state; `!Established` for every session that is not up.
    #[arg(long)]
    pub state: Option<String>,
    /// Read saved YAML instead of the API server (`kubectl get
    /// bgpsessionstates,frrconfigurations,nodes -o yaml`); repeat for several files.
    #[arg(long = "from")]
    pub from: Vec<PathBuf>,
    /// table, wide (with the last reset reason), json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Wide,
    Json,
    Yaml,
}

/// One session as `peers` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerRow {
    pub node: String,
    pub peer: String,
    /// `default` for the default VRF.
    pub vrf: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub established_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefixes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefixes_received: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefixes_accepted: Option<u64>,
    pub bfd: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reset_reason: Option<String>,
    /// The FRRConfigurations (`namespace/name`) that select the node and define this neighbor.
    pub objects: Vec<String>,
}

/// What `peers` reads.
#[derive(Default)]
pub struct Inputs {
    pub sessions: Vec<BGPSessionState>,
    pub configs: Vec<FRRConfiguration>,
    /// Node labels by node name (None: the nodes were not read).
    pub node_labels: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// Which nodes, peers and VRFs a command shows: [`ScopeArgs`] with its label selector resolved.
#[derive(Default)]
pub struct Scope {
    pub nodes: Vec<String>,
    /// Nodes allowed by a label selector (None: no selector given).
    pub selected_nodes: Option<BTreeSet<String>>,
    pub peer: Option<String>,
    pub vrf: Option<String>,
}

impl Scope {
    pub(crate) fn admits_node(&self, node: &str) -> bool {
        (self.nodes.is_empty() || self.nodes.iter().any(|n| n == node)) && self.selected_nodes.as_ref().is_none_or(|s| s.contains(node))
    }

    /// Any spelling of the peer (see [`same_peer`]).
    pub(crate) fn admits_peer(&self, peer: &str) -> bool {
        self.peer.as_deref().is_none_or(|p| same_peer(p, peer))
    }

    /// `default` and the empty name are the default VRF.
    pub(crate) fn admits_vrf(&self, vrf: &str) -> bool {
        self.vrf.as_deref().is_none_or(|v| canonical_vrf(Some(v)) == canonical_vrf(Some(vrf)))
    }
}

/// Which sessions to show.
#[derive(Default)]
pub struct Filter {
    pub scope: Scope,
    /// The state, and whether it is negated (`!Established`).
    pub state: Option<(String, bool)>,
}

impl Filter {
    fn admits(&self, r: &PeerRow) -> bool {
        self.scope.admits_node(&r.node)
            && self.scope.admits_peer(&r.peer)
            && self.scope.admits_vrf(&r.vrf)
            && self.state.as_ref().is_none_or(|(s, negated)| s.eq_ignore_ascii_case(&r.state) != *negated)
    }
}

/// The node of a published session: its status says it, else its label does.
pub(crate) fn session_node(s: &BGPSessionState) -> Option<String> {
    s.status.as_ref().and_then(|st| st.node.clone()).or_else(|| s.labels().get(crate::api::LABEL_NODE).cloned())
}

/// Two spellings of one peer: equal addresses (`2001:DB8::1` and `2001:db8::1`) or the same
/// interface name.
pub(crate) fn same_peer(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The rows for `inputs`, filtered and sorted by node, VRF and peer. Pure: the commands read,
/// this decides.
pub fn rows(inputs: &Inputs, filter: &Filter) -> Vec<PeerRow> {
    let no_labels = BTreeMap::new();
    let definers = Definers::new(&inputs.configs);
    let mut out: Vec<PeerRow> = inputs
        .sessions
        .iter()
        .filter_map(|s| {
            let st = s.status.as_ref()?;
            let node = session_node(s)?;
            let vrf = st.vrf.clone().unwrap_or_default();
            Some(PeerRow {
                node,
                peer: st.peer.clone()?,
                vrf: if vrf.is_empty() { "default".into() } else { vrf },
                state: st.bgp_status.clone().unwrap_or_else(|| "Unknown".into()),
                established_since: st.established_since.clone(),
                prefixes_sent: st.prefixes_sent,
                prefixes_received: st.prefixes_received,
                prefixes_accepted: st.prefixes_accepted,
                bfd: st.bfd_status.clone().unwrap_or_else(|| "N/A".into()),
                last_reset_reason: st.last_reset_reason.clone(),
                objects: Vec::new(),
            })
        })
        .filter(|r| filter.admits(r))
        .collect();
    for r in &mut out {
        let labels = inputs.node_labels.as_ref().and_then(|l| l.get(&r.node)).unwrap_or(&no_labels);
        r.objects = definers.of(labels, &r.peer, &r.vrf);
    }
    out.sort_by(|a, b| (&a.node, canonical_vrf(Some(&a.vrf)), &a.peer).cmp(&(&b.node, canonical_vrf(Some(&b.vrf)), &b.peer)));
    out
}

/// One spelling of a peer: an address as Rust prints it, an interface as it is.
fn canonical_peer(p: &str) -> String {
    p.parse::<IpAddr>().map(|a| a.to_string()).unwrap_or_else(|_| p.to_string())
}

/// The FRRConfigurations by the neighbors they define, `(vrf, peer)`, each with its parsed
/// nodeSelector: built once, so that a row costs the objects of its neighbor, not all of them.
struct Definers {
    by_neighbor: std::collections::HashMap<(String, String), Vec<Definer>>,
}

/// An object's parsed nodeSelector (None: every node) and its `namespace/name`.
type Definer = (Option<kube::core::Selector>, String);

impl Definers {
    fn new(configs: &[FRRConfiguration]) -> Definers {
        let mut by_neighbor: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
        for c in configs {
            let selector = match c.spec.node_selector.as_ref().map(crate::core::parse_selector) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(_)) => continue, // an invalid selector selects no node (it is refused)
            };
            let name = format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
            let mut keys = BTreeSet::new();
            for r in &c.spec.bgp.routers {
                for n in &r.neighbors {
                    if let Some(p) = n.address.as_deref().or(n.interface.as_deref()) {
                        keys.insert((canonical_vrf(r.vrf.as_deref()).to_string(), canonical_peer(p)));
                    }
                }
            }
            for k in keys {
                by_neighbor.entry(k).or_default().push((selector.clone(), name.clone()));
            }
        }
        Definers { by_neighbor }
    }

    /// The objects that select a node with `labels` and define `peer` in `vrf`: those whose
    /// neighbors the merge combines into this session.
    fn of(&self, labels: &BTreeMap<String, String>, peer: &str, vrf: &str) -> Vec<String> {
        let key = (canonical_vrf(Some(vrf)).to_string(), canonical_peer(peer));
        let mut out: Vec<String> = self
            .by_neighbor
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|(sel, _)| sel.as_ref().is_none_or(|s| kube::core::SelectorExt::matches(s, labels)))
            .map(|(_, name)| name.clone())
            .collect();
        out.sort();
        out
    }
}

/// How long ago `since` (RFC 3339) was, as kubectl prints ages: `45s`, `12m`, `3h12m`, `4d3h`.
fn age(since: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = since.parse::<jiff::Timestamp>() else { return "-".into() };
    let s = (now.as_second() - t.as_second()).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// The rows as `output` asks.
pub fn print(rows: &[PeerRow], output: Output, now: jiff::Timestamp) -> String {
    let num = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    match output {
        Output::Json => serde_json::to_string_pretty(rows).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(rows).unwrap_or_default(),
        Output::Table | Output::Wide => {
            let mut header = vec!["NODE", "PEER", "VRF", "STATE", "SINCE", "SENT", "RECEIVED", "ACCEPTED", "BFD", "OBJECTS"];
            if output == Output::Wide {
                header.push("LAST RESET");
            }
            let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
            for r in rows {
                let mut line = vec![
                    r.node.clone(),
                    r.peer.clone(),
                    r.vrf.clone(),
                    r.state.clone(),
                    r.established_since.as_deref().map_or("-".into(), |s| age(s, now)),
                    num(r.prefixes_sent),
                    num(r.prefixes_received),
                    num(r.prefixes_accepted),
                    r.bfd.clone(),
                    if r.objects.is_empty() { "-".into() } else { r.objects.join(",") },
                ];
                if output == Output::Wide {
                    line.push(r.last_reset_reason.clone().unwrap_or_else(|| "-".into()));
                }
                table.push(line);
            }
            columns(&table)
        }
    }
}

/// Lines of cells in columns as kubectl prints them (left-aligned, three spaces apart).
pub(crate) fn columns(table: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..table[0].len()).map(|i| table.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for line in table {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        s.push_str(cells.join("   ").trim_end());
        s.push('\n');
    }
    s
}

/// Every item of a list, a page of at most 500 at a time (the API server never builds one
/// answer of every object of a big cluster).
pub(crate) async fn list_all<K>(api: &Api<K>, lp: &ListParams) -> anyhow::Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut lp = lp.clone().limit(500);
    let mut out = Vec::new();
    loop {
        let page: ObjectList<K> = api.list(&lp).await?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp.continue_token = Some(token),
            _ => return Ok(out),
        }
    }
}

/// Node labels by name, read as metadata only (paged).
pub(crate) async fn node_labels(client: &kube::Client, selector: Option<&str>) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let api: Api<Node> = Api::all(client.clone());
    let mut lp = ListParams::default().limit(500);
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    let mut out = BTreeMap::new();
    loop {
        let page = api.list_metadata(&lp).await?;
        for n in page.items {
            out.insert(n.name_any(), n.metadata.labels.unwrap_or_default());
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp.continue_token = Some(token),
            _ => return Ok(out),
        }
    }
}

/// Runs a read of the cluster on a runtime of its own (the commands are synchronous).
pub(crate) fn block_on<T>(read: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(read)
}

/// A client as kubectl finds its cluster: `context` of the kubeconfig, or the current one (or
/// the in-cluster service account).
pub(crate) async fn client(context: Option<&str>) -> anyhow::Result<kube::Client> {
    let config = match context {
        Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions { context: Some(context.to_string()), ..Default::default() })
            .await
            .with_context(|| format!("kubeconfig context {context:?}"))?,
        None => kube::Config::infer().await.context("no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a cluster")?,
    };
    Ok(kube::Client::try_from(config)?)
}

async fn read_cluster(args: &PeersArgs) -> anyhow::Result<(Inputs, Option<BTreeSet<String>>)> {
    let (client, ns) = (client(args.cluster.context.as_deref()).await?, &args.cluster.namespace);
    let lp = ListParams::default();
    let sessions = list_all(&Api::<BGPSessionState>::namespaced(client.clone(), ns), &lp).await.context("listing BGPSessionStates")?;
    let configs = list_all(&Api::<FRRConfiguration>::namespaced(client.clone(), ns), &lp).await.context("listing FRRConfigurations")?;
    let labels = node_labels(&client, None).await.context("listing Nodes")?;
    let selected = args.scope.selected(&client).await?;
    Ok((Inputs { sessions, configs, node_labels: Some(labels) }, selected))
}

fn read_files(args: &PeersArgs) -> anyhow::Result<(Inputs, Option<BTreeSet<String>>)> {
    let (objects, errors) = crate::offline::load_inputs(&args.from);
    if let Some(e) = errors.first() {
        anyhow::bail!("{e}");
    }
    let node_labels: BTreeMap<String, BTreeMap<String, String>> = objects.nodes.iter().map(|n| (n.name_any(), n.labels().clone())).collect();
    let selected = args.scope.selected_offline(&node_labels)?;
    let in_ns = |ns: Option<String>| ns.unwrap_or_default() == args.cluster.namespace;
    Ok((
        Inputs {
            sessions: objects.sessions.into_iter().filter(|s| in_ns(s.namespace())).collect(),
            configs: objects.configs.into_iter().filter(|c| in_ns(c.namespace())).collect(),
            node_labels: Some(node_labels),
        },
        selected,
    ))
}

/// The nodes whose labels match an equality-based selector (offline, without the API server).
pub(crate) fn select_offline(node_labels: &BTreeMap<String, BTreeMap<String, String>>, selector: &str) -> anyhow::Result<BTreeSet<String>> {
    let terms = equality_selector(selector)?;
    Ok(node_labels.iter().filter(|(_, l)| terms.iter().all(|t| t.matches(l))).map(|(n, _)| n.clone()).collect())
}

/// One term of an equality-based label selector.
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Term {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Term::Equals(k, v) => labels.get(k) == Some(v),
            Term::NotEquals(k, v) => labels.get(k) != Some(v),
            Term::Exists(k) => labels.contains_key(k),
            Term::Absent(k) => !labels.contains_key(k),
        }
    }
}

/// `k=v,k2!=v2,k3,!k4` (offline; the API server also takes set-based selectors).
fn equality_selector(s: &str) -> anyhow::Result<Vec<Term>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let term = if let Some((k, v)) = t.split_once("!=") {
                Term::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                Term::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = t.strip_prefix('!') {
                Term::Absent(k.trim().into())
            } else if t.contains(' ') || t.contains('(') {
                anyhow::bail!("--selector {s:?}: offline, only k=v, k!=v, k and !k terms are read (set-based ones need the API server)")
            } else {
                Term::Exists(t.into())
            };
            Ok(term)
        })
        .collect()
}

pub fn run(args: &PeersArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let read = if args.from.is_empty() { block_on(read_cluster(args)) } else { read_files(args) };
    let (inputs, selected_nodes) = match read {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            return 1;
        }
    };
    let filter = Filter {
        scope: args.scope.scope(selected_nodes),
        state: args.state.as_ref().map(|s| match s.strip_prefix('!') {
            Some(s) => (s.to_string(), true),
            None => (s.clone(), false),
        }),
    };
    let rows = rows(&inputs, &filter);
    if rows.is_empty() && matches!(args.output, Output::Table | Output::Wide) {
        let _ = writeln!(err, "no sessions{}", if inputs.sessions.is_empty() { format!(" in namespace {}", args.cluster.namespace) } else { " match".into() });
        return 0;
    }
    let _ = out.write_all(print(&rows, args.output, jiff::Timestamp::now()).as_bytes());
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BGPSessionStateStatus;

    fn scoped(scope: Scope) -> Filter {
        Filter { scope, state: None }
    }

    fn session(node: &str, peer: &str, vrf: &str, state: &str) -> BGPSessionState {
        let mut s = BGPSessionState::new(&format!("{node}-{peer}"), Default::default());
        s.metadata.namespace = Some("ns".into());
        s.status = Some(BGPSessionStateStatus {
            bgp_status: Some(state.into()),
            node: Some(node.into()),
            peer: Some(peer.into()),
            vrf: Some(vrf.into()),
            prefixes_sent: Some(12),
            established_since: (state == "Established").then(|| "2026-12-03T10:00:00Z".into()),
            ..Default::default()
        });
        s
    }

    fn config(name: &str, rack: Option<&str>, vrf: Option<&str>, peers: &[&str]) -> FRRConfiguration {
        let yaml = format!(
            "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n{}  bgp:\n    routers:\n    - asn: 64512\n{}      neighbors:\n{}",
            rack.map(|r| format!("  nodeSelector: {{matchLabels: {{rack: {r}}}}}\n")).unwrap_or_default(),
            vrf.map(|v| format!("      vrf: {v}\n")).unwrap_or_default(),
            peers.iter().map(|p| format!("      - {{address: \"{p}\", asn: 64513}}\n")).collect::<String>()
        );
        serde_yaml::from_str(&yaml).unwrap()
    }

    fn inputs() -> Inputs {
        Inputs {
            sessions: vec![
                session("n2", "192.0.2.1", "", "Established"),
                session("n1", "2001:db8::1", "", "Active"),
                session("n1", "192.0.2.1", "", "Established"),
                session("n1", "198.51.100.1", "red", "Connect"),
            ],
            configs: vec![
                config("metallb-n1", Some("a"), None, &["192.0.2.1", "2001:DB8::1"]),
                config("admin", None, None, &["192.0.2.1"]),
                config("red", None, Some("red"), &["198.51.100.1"]),
                config("rack-b", Some("b"), None, &["192.0.2.1"]),
            ],
            node_labels: Some([("n1".to_string(), [("rack".to_string(), "a".to_string())].into()), ("n2".to_string(), BTreeMap::new())].into()),
        }
    }

    #[test]
    fn every_session_with_the_objects_that_define_it() {
        let r = rows(&inputs(), &Filter::default());
        let got: Vec<(&str, &str, &str, &str, Vec<&str>)> =
            r.iter().map(|r| (&*r.node, &*r.peer, &*r.vrf, &*r.state, r.objects.iter().map(|o| &**o).collect())).collect();
        assert_eq!(
            got,
            [
                ("n1", "192.0.2.1", "default", "Established", vec!["ns/admin", "ns/metallb-n1"]),
                ("n1", "2001:db8::1", "default", "Active", vec!["ns/metallb-n1"]),
                ("n1", "198.51.100.1", "red", "Connect", vec!["ns/red"]),
                ("n2", "192.0.2.1", "default", "Established", vec!["ns/admin"]),
            ]
        );
    }

    #[test]
    fn filters() {
        let pick = |f: Filter| rows(&inputs(), &f).into_iter().map(|r| format!("{} {}", r.node, r.peer)).collect::<Vec<_>>();
        assert_eq!(pick(Filter { state: Some(("Established".into(), true)), ..Default::default() }), ["n1 2001:db8::1", "n1 198.51.100.1"]);
        assert_eq!(pick(Filter { state: Some(("established".into(), false)), ..Default::default() }), ["n1 192.0.2.1", "n2 192.0.2.1"]);
        assert_eq!(pick(scoped(Scope { nodes: vec!["n2".into()], ..Default::default() })), ["n2 192.0.2.1"]);
        assert_eq!(pick(scoped(Scope { peer: Some("2001:DB8::1".into()), ..Default::default() })), ["n1 2001:db8::1"]);
        assert_eq!(pick(scoped(Scope { vrf: Some("red".into()), ..Default::default() })), ["n1 198.51.100.1"]);
        assert_eq!(pick(scoped(Scope { vrf: Some("default".into()), nodes: vec!["n1".into()], ..Default::default() })), ["n1 192.0.2.1", "n1 2001:db8::1"]);
        assert_eq!(pick(scoped(Scope { selected_nodes: Some(["n2".to_string()].into()), ..Default::default() })), ["n2 192.0.2.1"]);
    }

    #[test]
    fn table_and_ages() {
        let now = "2026-12-03T13:12:30Z".parse().unwrap();
        let t = print(&rows(&inputs(), &scoped(Scope { nodes: vec!["n2".into()], ..Default::default() })), Output::Table, now);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["NODE", "PEER", "VRF", "STATE", "SINCE", "SENT", "RECEIVED", "ACCEPTED", "BFD", "OBJECTS"]);
        assert_eq!(lines[1], ["n2", "192.0.2.1", "default", "Established", "3h12m", "12", "-", "-", "N/A", "ns/admin"]);
        assert_eq!(age("2026-12-03T13:12:00Z", now), "30s");
        assert_eq!(age("2026-11-30T12:00:00Z", now), "3d1h");
    }
}
