//! `frr-composer routes`: every prefix the nodes advertise, to which peer, with the attributes
//! it carries (communities, local preference, AS-path prepend), the FRRConfigurations it came
//! from and, for a LoadBalancer address, the Service that owns it. Each node's routes are
//! computed by the same merge and per-object isolation the agent runs, from the objects as they
//! are now; the session's state is the one its agent published. Read from the API server with
//! paged lists, or offline from what `kubectl get -o yaml` saved.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use serde::Serialize;

use super::peers::{self, Output};
use crate::api::{BGPSessionState, FRRConfiguration};
use crate::core::convert::{canonical_vrf, SecretEntry, BASIC_AUTH};
use crate::core::isolation::{isolate, Decision, Isolated, Ledger};
use crate::core::model::Model;
use crate::core::{Settings, Snapshot};

#[derive(clap::Args, Debug)]
pub struct RoutesArgs {
    /// Only the routes for this address (the prefixes that hold it) or prefix (those inside it).
    pub prefix: Option<String>,
    #[command(flatten)]
    pub cluster: peers::ClusterArgs,
    #[command(flatten)]
    pub scope: peers::ScopeArgs,
    /// The routes the nodes accepted instead: what each peer sent and the node's inbound policy
    /// let in, with the objects whose toReceive accepts it, and each session's counts and policy.
    #[arg(long)]
    pub received: bool,
    /// Read saved YAML instead of the API server (`kubectl get -A
    /// frrconfigurations,bgpsessionstates,nodes,services -o yaml`); repeat for several files.
    #[arg(long = "from")]
    pub from: Vec<PathBuf>,
    /// table, wide (with the session's state), json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// One prefix a node advertises to one peer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRow {
    pub prefix: String,
    pub node: String,
    /// `default` for the default VRF.
    pub vrf: String,
    pub peer: String,
    /// The session's BGP state as the node's agent published it (`-`: none published).
    pub session: String,
    /// Whether the node's FRR sent the prefix on the session, as its agent published it
    /// (absent: not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// How many times the local ASN is prepended to the AS path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_path_prepend: Option<u32>,
    /// The FRRConfigurations (`namespace/name`) that ask for the prefix on this neighbor.
    pub objects: Vec<String>,
    /// The LoadBalancer Services (`namespace/name`) whose addresses are inside the prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}

/// An object a node does not apply as written, and why: its prefixes are not in the rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotInEffect {
    pub node: String,
    pub object: String,
    /// `HeldAtLastGood` or `LeftOut`, as the agent's condition says it.
    pub reason: String,
    pub message: String,
}

/// One prefix a node accepted from one peer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedRow {
    pub prefix: String,
    pub node: String,
    pub vrf: String,
    pub peer: String,
    /// The FRRConfigurations whose toReceive on this neighbor accepts the prefix.
    pub accepted_by: Vec<String>,
    /// Whether the node's routing table installed the route from this peer, as its agent
    /// published it (absent: not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<bool>,
}

/// What a node received on one session, as its agent published it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIn {
    pub node: String,
    pub vrf: String,
    pub peer: String,
    /// What FRR counts as received and accepted. FRR drops a route its inbound policy refuses
    /// (no soft-reconfiguration inbound), so refused routes are neither listed nor counted.
    pub received: Option<u64>,
    pub accepted: Option<u64>,
    /// How many of the accepted routes the node's routing table installed from this peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<u64>,
    /// The objects whose toReceive makes the neighbor's inbound policy (none: everything is
    /// refused).
    pub policy: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    pub routes: Vec<RouteRow>,
    /// With `--received`: what each session accepted, and each session's counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<ReceivedRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions_in: Vec<SessionIn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_in_effect: Vec<NotInEffect>,
    /// Nodes whose objects could not be merged at all (a setting wrong for every object).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What `routes` reads.
#[derive(Clone, Default)]
pub struct Inputs {
    pub namespace: String,
    pub configs: Vec<FRRConfiguration>,
    pub sessions: Vec<BGPSessionState>,
    pub node_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// LoadBalancer addresses and the Service (`namespace/name`) holding each.
    pub services: Vec<(IpAddr, String)>,
}

/// Which routes to show.
#[derive(Default)]
pub struct Filter {
    pub scope: peers::Scope,
    pub prefix: Option<IpNet>,
    /// The prefix was given as an address: the prefixes that hold it.
    pub address: bool,
    /// The received routes instead of the advertised ones.
    pub received: bool,
}

impl Filter {
    fn admits_prefix(&self, p: &IpNet) -> bool {
        match &self.prefix {
            None => true,
            Some(f) if self.address => p.contains(&f.addr()),
            Some(f) => f.contains(p),
        }
    }
}

/// The LoadBalancer addresses of `services`, each with its Service.
pub fn lb_addresses(services: &[Service]) -> Vec<(IpAddr, String)> {
    let mut out = Vec::new();
    for s in services {
        let name = format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any());
        for ingress in s.status.iter().flat_map(|st| st.load_balancer.iter()).flat_map(|lb| lb.ingress.iter().flatten()) {
            if let Some(ip) = ingress.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) {
                out.push((ip, name.clone()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every password Secret the objects name, with a stand-in value: routes need no password,
/// and `routes` reads no Secret (their errors are the agents' to report).
fn stand_in_secrets(configs: &[FRRConfiguration]) -> BTreeMap<String, SecretEntry> {
    configs
        .iter()
        .flat_map(|c| c.spec.bgp.routers.iter().flat_map(|r| &r.neighbors))
        .filter_map(|n| n.password_secret.as_ref().and_then(|s| s.name.clone()))
        .map(|name| (name, SecretEntry { type_: BASIC_AUTH.to_string(), password: Some(Ok("not-read".to_string())) }))
        .collect()
}

/// Services whose address is inside `p`, at most five named, then how many more.
fn services_in(p: &IpNet, services: &[(IpAddr, String)]) -> Vec<String> {
    let mut names: Vec<String> = services.iter().filter(|(ip, _)| p.contains(ip)).map(|(_, n)| n.clone()).collect();
    names.sort();
    names.dedup();
    if names.len() > 5 {
        let more = names.len() - 5;
        names.truncate(5);
        names.push(format!("(and {more} more)"));
    }
    names
}

/// A session as its agent published it.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub state: String,
    pub last_reset_reason: Option<String>,
    /// The prefixes FRR sent on it (at most 100 listed) and how many it sent in all.
    pub advertised: Option<Vec<String>>,
    pub sent: Option<u64>,
    pub accepted: Option<Vec<String>>,
    pub accepted_count: Option<u64>,
    pub received_count: Option<u64>,
    /// How many accepted routes were installed, and those that were not (at most 100 listed).
    pub installed_count: Option<u64>,
    pub not_installed: Option<Vec<String>>,
}

impl Session {
    /// Whether FRR sent `prefix` on the session: None when the agent did not say (no list, or
    /// a list that holds only part of what was sent, for a session that is up).
    pub fn sent(&self, prefix: &str) -> Option<bool> {
        if self.state != "Established" {
            return Some(false); // a session that is not up carries nothing
        }
        let list = self.advertised.as_ref()?;
        if list.iter().any(|p| p == prefix) {
            return Some(true);
        }
        self.sent.is_some_and(|n| n as usize <= list.len()).then_some(false)
    }

    /// Whether the routing table installed the accepted `prefix` from this session: None when
    /// the agent did not say (not published, or more not installed than the list holds).
    pub fn installed(&self, prefix: &str) -> Option<bool> {
        let not = self.not_installed.as_ref()?;
        if not.iter().any(|p| p == prefix) {
            return Some(false);
        }
        let (accepted, installed) = (self.accepted_count?, self.installed_count?);
        (accepted.saturating_sub(installed) as usize <= not.len()).then_some(true)
    }
}

/// The published sessions, by (node, VRF as the core spells it, peer as Rust prints an address).
pub type Sessions = BTreeMap<(String, String, String), Session>;

pub fn session_states(inputs: &Inputs) -> Sessions {
    inputs
        .sessions
        .iter()
        .filter_map(|s| {
            let st = s.status.as_ref()?;
            let node = peers::session_node(s)?;
            let peer = st.peer.as_deref()?;
            let peer = peer.parse::<IpAddr>().map(|a| a.to_string()).unwrap_or_else(|_| peer.to_string());
            let session = Session {
                state: st.bgp_status.clone().unwrap_or_else(|| "Unknown".into()),
                last_reset_reason: st.last_reset_reason.clone(),
                advertised: st.advertised_prefixes.clone(),
                sent: st.prefixes_sent,
                accepted: st.accepted_prefixes.clone(),
                accepted_count: st.prefixes_accepted,
                received_count: st.prefixes_received,
                installed_count: st.prefixes_installed,
                not_installed: st.not_installed_prefixes.clone(),
            };
            Some(((node, canonical_vrf(st.vrf.as_deref()).to_string(), peer), session))
        })
        .collect()
}

/// Whether `m` matches prefix `p` as FRR's prefix-list entry does: inside it, with a length
/// from `ge` (else the entry's own) to `le` (else the family's longest with `ge`, else exact).
pub fn covers(m: &crate::core::model::PrefixMatch, p: &IpNet) -> bool {
    if !m.prefix.contains(p) {
        return false;
    }
    let (len, max) = (p.prefix_len(), p.max_prefix_len());
    let low = m.ge.unwrap_or(m.prefix.prefix_len());
    let high = m.le.unwrap_or(if m.ge.is_some() { max } else { m.prefix.prefix_len() });
    (low..=high).contains(&len)
}

/// The neighbors of a node's model that `filter` admits, each with its VRF (`default` for the
/// default VRF) and its peer as Rust prints an address.
pub fn neighbors<'a>(model: &'a Model, filter: &'a Filter) -> impl Iterator<Item = (String, &'a crate::core::model::Neighbor, String)> + 'a {
    model
        .routers
        .iter()
        .map(|r| (if r.vrf.is_empty() { "default".to_string() } else { r.vrf.clone() }, r))
        .filter(|(vrf, _)| filter.scope.admits_vrf(vrf))
        .flat_map(|(vrf, r)| r.neighbors.iter().map(move |n| (vrf.clone(), n, n.peer.to_string())))
        .filter(|(_, _, peer)| filter.scope.admits_peer(peer))
}

/// What one node's sessions accepted (as their agents published it), each prefix with the
/// objects whose toReceive accepts it, and each session's counts.
fn node_received(node: &str, model: &Model, sessions: &Sessions, filter: &Filter, out: &mut Routes) {
    for (vrf, n, peer) in neighbors(model, filter) {
        let inbound = &n.inbound;
        let mut policy: Vec<String> =
            inbound.receive_all.iter().flat_map(|s| s.iter()).chain(inbound.receive.values().flat_map(|s| s.iter())).map(|o| o.to_string()).collect();
        policy.sort();
        policy.dedup();
        let Some(s) = sessions.get(&(node.to_string(), canonical_vrf(Some(&vrf)).to_string(), peer.clone())) else { continue };
        out.sessions_in.push(SessionIn {
            node: node.to_string(),
            vrf: vrf.clone(),
            peer: peer.clone(),
            received: s.received_count,
            accepted: s.accepted_count,
            installed: s.installed_count,
            policy,
        });
        for prefix in s.accepted.iter().flatten().filter_map(|p| p.parse::<IpNet>().ok()).filter(|p| filter.admits_prefix(p)) {
            let mut by: Vec<String> = match &inbound.receive_all {
                Some(all) => all.iter().map(|o| o.to_string()).collect(),
                None => Vec::new(),
            };
            by.extend(inbound.receive.iter().filter(|(m, _)| covers(m, &prefix)).flat_map(|(_, s)| s.iter()).map(|o| o.to_string()));
            by.sort();
            by.dedup();
            let installed = s.installed(&prefix.to_string());
            out.received.push(ReceivedRow {
                prefix: prefix.to_string(),
                node: node.to_string(),
                vrf: vrf.clone(),
                peer: peer.clone(),
                accepted_by: by,
                installed,
            });
        }
    }
}

/// The routes one node's model advertises.
fn node_rows(node: &str, model: &Model, sessions: &Sessions, inputs: &Inputs, filter: &Filter, out: &mut Vec<RouteRow>) {
    for (vrf, n, peer) in neighbors(model, filter) {
        let published = sessions.get(&(node.to_string(), canonical_vrf(Some(&vrf)).to_string(), peer.clone()));
        let session = published.map_or_else(|| "-".into(), |s| s.state.clone());
        let o = &n.outbound;
        for (prefix, sources) in o.advertise.iter().filter(|(p, _)| filter.admits_prefix(p)) {
            out.push(RouteRow {
                prefix: prefix.to_string(),
                node: node.to_string(),
                vrf: vrf.clone(),
                peer: peer.clone(),
                session: session.clone(),
                sent: published.and_then(|s| s.sent(&prefix.to_string())),
                communities: o.communities.iter().filter(|(_, ps)| ps.contains(prefix)).map(|(c, _)| c.to_string()).collect(),
                local_pref: o.local_pref.get(prefix).copied(),
                as_path_prepend: o.as_path_prepend.get(prefix).map(|(n, _)| *n),
                objects: sources.iter().map(|s| s.to_string()).collect(),
                services: services_in(prefix, &inputs.services),
            });
        }
    }
}

/// The objects of `inputs` ready to be merged node by node: each selector parsed once, and the
/// stand-in Secrets.
pub struct Prepared<'a> {
    namespace: &'a str,
    selecting: Vec<(Option<kube::core::Selector>, &'a FRRConfiguration)>,
    secrets: BTreeMap<String, SecretEntry>,
}

impl<'a> Prepared<'a> {
    pub fn new(inputs: &'a Inputs) -> Prepared<'a> {
        let selecting = inputs.configs.iter().map(|c| (c.spec.node_selector.as_ref().and_then(|s| crate::core::parse_selector(s).ok()), c)).collect();
        Prepared { namespace: &inputs.namespace, selecting, secrets: stand_in_secrets(&inputs.configs) }
    }

    /// The objects that may select a node with `labels`: those whose selector matches, those
    /// with none, and those with an invalid one (the node's merge reports it).
    pub fn selecting(&self, labels: &BTreeMap<String, String>) -> Vec<&'a FRRConfiguration> {
        self.selecting
            .iter()
            .filter(|(sel, c)| match sel {
                Some(s) => kube::core::SelectorExt::matches(s, labels),
                None => c.spec.node_selector.is_none() || crate::core::parse_selector(c.spec.node_selector.as_ref().expect("checked")).is_err(),
            })
            .map(|(_, c)| *c)
            .collect()
    }

    /// What the node's agent, deciding afresh, would run of `configs`: the merge and per-object
    /// isolation (messages redacted).
    pub fn compose(&self, node: &str, labels: &BTreeMap<String, String>, configs: &[&FRRConfiguration]) -> Result<Isolated, String> {
        let settings = Settings {
            namespace: self.namespace.to_string(),
            hostname: node.to_string(),
            log_level: crate::api::LogLevel::Info,
            always_block: Vec::new(),
            node_has_ipv4: true,
            frr_version: None,
        };
        let configs: Vec<FRRConfiguration> = configs.iter().map(|c| (*c).clone()).collect();
        isolate(&settings, Snapshot { node_labels: labels, configs: &configs, secrets: &self.secrets }, &Ledger::default())
            .map_err(|e| crate::frr::redact(&e.to_string()))
    }
}

/// The routes of every node `filter` admits, sorted by prefix, node, VRF and peer. Pure.
pub fn routes(inputs: &Inputs, filter: &Filter) -> Routes {
    let sessions = session_states(inputs);
    let prepared = Prepared::new(inputs);
    // With a prefix asked for, only the objects whose routers hold a prefix it admits can
    // bring a route (every advertised prefix is a router's): a node none of them selects has
    // none, and only their refusals answer the question.
    let relevant = |c: &FRRConfiguration| {
        filter.prefix.is_none()
            || filter.received
            || c.spec.bgp.routers.iter().flat_map(|r| &r.prefixes).any(|p| p.parse::<IpNet>().is_ok_and(|p| filter.admits_prefix(&p)))
    };
    let relevant_objects: BTreeSet<crate::core::ObjRef> = inputs.configs.iter().filter(|c| relevant(c)).map(crate::core::obj_ref).collect();
    let mut out = Routes::default();
    for (node, labels) in inputs.node_labels.iter().filter(|(n, _)| filter.scope.admits_node(n)) {
        let configs = prepared.selecting(labels);
        if !configs.iter().any(|c| relevant(c)) {
            continue;
        }
        match prepared.compose(node, labels, &configs) {
            Ok(isolated) => {
                let not_applied = |d: &&crate::core::isolation::ObjectDecision| !matches!(d.decision, Decision::Applied);
                for d in isolated.decisions.iter().filter(not_applied).filter(|d| relevant_objects.contains(&d.obj)) {
                    out.not_in_effect.push(NotInEffect {
                        node: node.clone(),
                        object: d.obj.to_string(),
                        reason: d.reason().to_string(),
                        message: crate::frr::redact(&d.message()),
                    });
                }
                if filter.received {
                    node_received(node, &isolated.composition.model, &sessions, filter, &mut out);
                } else {
                    node_rows(node, &isolated.composition.model, &sessions, inputs, filter, &mut out.routes);
                }
            }
            Err(e) => out.errors.push(format!("{node}: {e}")),
        }
    }
    let key = |r: &RouteRow| (r.prefix.parse::<IpNet>().ok(), r.node.clone(), canonical_vrf(Some(&r.vrf)).to_string(), r.peer.clone());
    out.routes.sort_by_key(key);
    out.received.sort_by_key(|r| (r.prefix.parse::<IpNet>().ok(), r.node.clone(), canonical_vrf(Some(&r.vrf)).to_string(), r.peer.clone()));
    out
}

/// The routes as `output` asks; what is not in effect follows the table.
pub fn print(r: &Routes, output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(r).unwrap_or_default(),
        Output::Table | Output::Wide if !r.sessions_in.is_empty() => {
            let dash = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(",") };
            let num = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
            let yes_no = |b: Option<bool>| b.map_or("-", |b| if b { "yes" } else { "no" }).to_string();
            let mut table: Vec<Vec<String>> = vec![["PREFIX", "NODE", "VRF", "PEER", "INSTALLED", "ACCEPTED BY"].iter().map(|h| h.to_string()).collect()];
            table.extend(
                r.received
                    .iter()
                    .map(|row| vec![row.prefix.clone(), row.node.clone(), row.vrf.clone(), row.peer.clone(), yes_no(row.installed), dash(&row.accepted_by)]),
            );
            let mut s = if r.received.is_empty() { String::new() } else { peers::columns(&table) + "\n" };
            let mut sessions: Vec<Vec<String>> =
                vec![["NODE", "VRF", "PEER", "RECEIVED", "ACCEPTED", "INSTALLED", "INBOUND POLICY"].iter().map(|h| h.to_string()).collect()];
            sessions.extend(r.sessions_in.iter().map(|x| {
                let policy = if x.policy.is_empty() { "none: every route refused".to_string() } else { x.policy.join(",") };
                vec![x.node.clone(), x.vrf.clone(), x.peer.clone(), num(x.received), num(x.accepted), num(x.installed), policy]
            }));
            s.push_str(&peers::columns(&sessions));
            s
        }
        Output::Table | Output::Wide => {
            let mut header = vec!["PREFIX", "NODE", "VRF", "PEER", "SENT"];
            if output == Output::Wide {
                header.push("SESSION");
            }
            header.extend(["COMMUNITIES", "LOCALPREF", "PREPEND", "OBJECTS", "SERVICES"]);
            let dash = |v: Vec<String>| if v.is_empty() { "-".to_string() } else { v.join(",") };
            let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
            for row in &r.routes {
                let sent = match row.sent {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                };
                let mut line = vec![row.prefix.clone(), row.node.clone(), row.vrf.clone(), row.peer.clone(), sent.to_string()];
                if output == Output::Wide {
                    line.push(row.session.clone());
                }
                line.extend([
                    dash(row.communities.clone()),
                    row.local_pref.map_or("-".into(), |v| v.to_string()),
                    row.as_path_prepend.map_or("-".into(), |v| format!("{v}x")),
                    dash(row.objects.clone()),
                    dash(row.services.clone()),
                ]);
                table.push(line);
            }
            let mut s = if r.routes.is_empty() { String::new() } else { peers::columns(&table) };
            for n in &r.not_in_effect {
                s.push_str(&format!("not in effect on {}: {} ({}): {}\n", n.node, n.object, n.reason, n.message));
            }
            for e in &r.errors {
                s.push_str(&format!("not merged: {e}\n"));
            }
            s
        }
    }
}

/// What `routes` and `why` read from the API server: paged lists of the agents' namespace's
/// FRRConfigurations and BGPSessionStates, the Nodes' metadata, and Services if allowed.
pub async fn read_inputs(client: &kube::Client, namespace: &str) -> anyhow::Result<Inputs> {
    let lp = ListParams::default();
    let configs = peers::list_all(&Api::<FRRConfiguration>::namespaced(client.clone(), namespace), &lp).await.context("listing FRRConfigurations")?;
    let sessions = peers::list_all(&Api::<BGPSessionState>::namespaced(client.clone(), namespace), &lp).await.context("listing BGPSessionStates")?;
    let node_labels = peers::node_labels(client, None).await.context("listing Nodes")?;
    let services = match peers::list_all(&Api::<Service>::all(client.clone()), &lp).await {
        Ok(s) => lb_addresses(&s),
        Err(e) => {
            tracing::debug!(error = %e, "Services not read");
            Vec::new()
        }
    };
    Ok(Inputs { namespace: namespace.to_string(), configs, sessions, node_labels, services })
}

/// The same from saved YAML, with the objects read (for what else a command needs of them).
pub fn read_saved(paths: &[PathBuf], namespace: &str) -> anyhow::Result<(Inputs, crate::input::Objects)> {
    let (mut objects, errors) = crate::offline::load_inputs(paths);
    if let Some(e) = errors.first() {
        anyhow::bail!("{e}");
    }
    Ok((inputs_of(&mut objects, namespace), objects))
}

/// The inputs among saved objects (taken out of them): what is in the agents' namespace, the
/// Nodes and the LoadBalancer addresses.
pub fn inputs_of(objects: &mut crate::input::Objects, namespace: &str) -> Inputs {
    let in_ns = |ns: Option<String>| ns.unwrap_or_default() == namespace;
    Inputs {
        namespace: namespace.to_string(),
        configs: std::mem::take(&mut objects.configs).into_iter().filter(|c| in_ns(c.namespace())).collect(),
        sessions: std::mem::take(&mut objects.sessions).into_iter().filter(|s| in_ns(s.namespace())).collect(),
        node_labels: objects.nodes.iter().map(|n| (n.name_any(), n.labels().clone())).collect(),
        services: lb_addresses(&objects.services),
    }
}

async fn read_cluster(args: &RoutesArgs) -> anyhow::Result<(Inputs, Option<BTreeSet<String>>)> {
    let client = peers::client(args.cluster.context.as_deref()).await?;
    let inputs = read_inputs(&client, &args.cluster.namespace).await?;
    Ok((inputs, args.scope.selected(&client).await?))
}

fn read_files(args: &RoutesArgs) -> anyhow::Result<(Inputs, Option<BTreeSet<String>>)> {
    let (inputs, _) = read_saved(&args.from, &args.cluster.namespace)?;
    let selected = args.scope.selected_offline(&inputs.node_labels)?;
    Ok((inputs, selected))
}

/// The positional argument: an address, or a prefix in canonical form.
fn prefix_filter(p: &str) -> anyhow::Result<(IpNet, bool)> {
    if let Ok(a) = p.parse::<IpAddr>() {
        return Ok((IpNet::from(a), true));
    }
    let net: IpNet = p.parse().map_err(|_| anyhow::anyhow!("{p:?} is neither an IP address nor a prefix"))?;
    if net.trunc() != net {
        anyhow::bail!("{p:?} has host bits set (the prefix is {})", net.trunc());
    }
    Ok((net, false))
}

pub fn run(args: &RoutesArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let prefix = match args.prefix.as_deref().map(prefix_filter).transpose() {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let read = if args.from.is_empty() { peers::block_on(read_cluster(args)) } else { read_files(args) };
    let (inputs, selected_nodes) = match read {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            return 1;
        }
    };
    let filter =
        Filter { scope: args.scope.scope(selected_nodes), prefix: prefix.map(|(p, _)| p), address: prefix.is_some_and(|(_, a)| a), received: args.received };
    let r = routes(&inputs, &filter);
    if r.routes.is_empty() && r.sessions_in.is_empty() && matches!(args.output, Output::Table | Output::Wide) {
        let _ = writeln!(err, "no routes{}", if args.prefix.is_some() { " for that prefix" } else { "" });
    }
    let _ = out.write_all(print(&r, args.output).as_bytes());
    0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::BGPSessionStateStatus;
    use crate::cli::peers::Scope;

    pub(crate) const NS: &str = "frr-k8s-system";

    /// testdata/cli/routes-cluster.yaml, with the sessions wk1's and wk2's agents published.
    pub(crate) fn inputs() -> Inputs {
        let (mut objects, errors) = crate::input::parse_documents(include_str!("../../testdata/cli/routes-cluster.yaml"), "routes-cluster.yaml");
        assert!(errors.is_empty(), "{errors:?}");
        let mut inputs = inputs_of(&mut objects, NS);
        let session = |node: &str, peer: &str, state: &str| {
            let mut s = BGPSessionState::new(&format!("{node}-{peer}"), Default::default());
            s.status = Some(BGPSessionStateStatus { node: Some(node.into()), peer: Some(peer.into()), bgp_status: Some(state.into()), ..Default::default() });
            s
        };
        inputs.sessions = vec![session("wk1", "192.0.2.1", "Established"), session("wk2", "2001:DB8::1", "Active")];
        // what wk1's FRR sent to the router, as its agent published it
        let sent = inputs.sessions[0].status.as_mut().unwrap();
        sent.advertised_prefixes = Some(vec!["198.51.100.181/32".into(), "203.0.113.0/24".into()]);
        sent.prefixes_sent = Some(2);
        // ... and what it accepted of the router's 3 routes
        sent.accepted_prefixes = Some(vec!["198.51.100.7/32".into()]);
        (sent.prefixes_received, sent.prefixes_accepted) = (Some(3), Some(1));
        (sent.prefixes_installed, sent.not_installed_prefixes) = (Some(1), Some(vec![]));
        inputs
    }

    fn short(r: &RouteRow) -> String {
        format!("{} {} {} {}", r.prefix, r.node, r.peer, r.objects.join(","))
    }

    #[test]
    fn every_advertised_prefix_with_its_attributes_objects_and_service() {
        let r = routes(&inputs(), &Filter::default());
        let rows: Vec<String> = r.routes.iter().map(short).collect();
        assert_eq!(
            rows,
            [
                // the admin's `mode: all` is the prefixes of its own router (as upstream)
                "198.51.100.181/32 wk1 192.0.2.1 frr-k8s-system/metallb-wk1",
                "203.0.113.0/24 wk1 192.0.2.1 frr-k8s-system/admin-all",
                "203.0.113.0/24 wk1 2001:db8::1 frr-k8s-system/admin-all",
                "203.0.113.0/24 wk2 192.0.2.1 frr-k8s-system/admin-all",
                "203.0.113.0/24 wk2 2001:db8::1 frr-k8s-system/admin-all",
            ]
        );
        let lb = &r.routes[0];
        assert_eq!((lb.communities.clone(), lb.as_path_prepend, lb.local_pref), (vec!["65000:1".to_string()], Some(3), None));
        assert_eq!(lb.services, ["web/frontend"]);
        assert_eq!(lb.session, "Established");
        assert_eq!(r.routes[1].local_pref, Some(200));
        assert_eq!(r.routes[4].session, "Active", "the published session, whatever the address's spelling");
        assert_eq!(r.routes[3].session, "-", "no session published");
        let sent: Vec<Option<bool>> = r.routes.iter().map(|r| r.sent).collect();
        assert_eq!(sent, [Some(true), Some(true), None, None, Some(false)], "sent as published; a session that is not up sent nothing");
        // on wk2 the contradicting object is not in effect, and says why
        assert_eq!(r.not_in_effect.len(), 1);
        let n = &r.not_in_effect[0];
        assert!(
            n.node == "wk2" && n.object == "frr-k8s-system/odd-wk2" && n.reason == "LeftOut" && n.message.contains("admin-all") && n.message.contains("64999"),
            "{n:?}"
        );
        // no password anywhere: the Secret is not read, a stand-in is never shown
        let all = print(&r, Output::Json) + &print(&r, Output::Wide);
        assert!(!all.contains("not-read") && !all.contains("password"), "{all}");
    }

    #[test]
    fn filters_by_address_prefix_node_peer_and_vrf() {
        let pick = |f: Filter| routes(&inputs(), &f).routes.iter().map(short).collect::<Vec<_>>();
        let (net, address) = prefix_filter("198.51.100.181").unwrap();
        assert_eq!(pick(Filter { prefix: Some(net), address, ..Default::default() }), ["198.51.100.181/32 wk1 192.0.2.1 frr-k8s-system/metallb-wk1"]);
        let (net, address) = prefix_filter("203.0.113.7").unwrap();
        assert_eq!(
            pick(Filter { prefix: Some(net), address, scope: Scope { nodes: vec!["wk2".into()], ..Default::default() }, ..Default::default() }).len(),
            2,
            "the /24 holds the address"
        );
        let (net, address) = prefix_filter("198.51.100.0/24").unwrap();
        assert_eq!(
            pick(Filter { prefix: Some(net), address, scope: Scope { peer: Some("192.0.2.1".into()), ..Default::default() }, ..Default::default() }).len(),
            1
        );
        assert!(pick(Filter { scope: Scope { vrf: Some("red".into()), ..Default::default() }, ..Default::default() }).is_empty());
        assert_eq!(pick(Filter { scope: Scope { selected_nodes: Some(["wk2".to_string()].into()), ..Default::default() }, ..Default::default() }).len(), 2);
        // asked about the Service address, wk2's refused object (no such prefix) is not listed;
        // asked about a prefix it holds, it is
        let (net, address) = prefix_filter("198.51.100.181").unwrap();
        assert!(routes(&inputs(), &Filter { prefix: Some(net), address, ..Default::default() }).not_in_effect.is_empty());
        let mut with_prefix = inputs();
        with_prefix.configs[2].spec.bgp.routers[0].prefixes = vec!["203.0.113.0/24".into()];
        let (net, address) = prefix_filter("203.0.113.9").unwrap();
        let r = routes(&with_prefix, &Filter { prefix: Some(net), address, ..Default::default() });
        assert_eq!(r.not_in_effect.iter().map(|n| n.object.as_str()).collect::<Vec<_>>(), ["frr-k8s-system/odd-wk2"]);
        assert!(prefix_filter("198.51.100.1/24").unwrap_err().to_string().contains("host bits"));
        assert!(prefix_filter("nope").is_err());
    }

    #[test]
    fn received_routes_with_the_objects_that_accept_them() {
        let r = routes(&inputs(), &Filter { received: true, ..Default::default() });
        assert!(r.routes.is_empty());
        assert_eq!(
            r.received,
            [ReceivedRow {
                prefix: "198.51.100.7/32".into(),
                node: "wk1".into(),
                vrf: "default".into(),
                peer: "192.0.2.1".into(),
                accepted_by: vec!["frr-k8s-system/admin-all".into()],
                installed: Some(true),
            }]
        );
        // not installed, and not known (more not installed than listed)
        let mut i = inputs();
        let st = i.sessions[0].status.as_mut().unwrap();
        (st.prefixes_installed, st.not_installed_prefixes) = (Some(0), Some(vec!["198.51.100.7/32".into()]));
        assert_eq!(routes(&i, &Filter { received: true, ..Default::default() }).received[0].installed, Some(false));
        let st = i.sessions[0].status.as_mut().unwrap();
        (st.prefixes_accepted, st.not_installed_prefixes) = (Some(500), Some(vec!["198.51.100.1/32".into()]));
        assert_eq!(routes(&i, &Filter { received: true, ..Default::default() }).received[0].installed, None);
        let counts: Vec<(String, String, Option<u64>, Vec<String>)> =
            r.sessions_in.iter().map(|s| (s.node.clone(), s.peer.clone(), s.accepted, s.policy.clone())).collect();
        assert_eq!(
            counts,
            [
                ("wk1".to_string(), "192.0.2.1".to_string(), Some(1), vec!["frr-k8s-system/admin-all".to_string()]),
                ("wk2".to_string(), "2001:db8::1".to_string(), None, vec![]),
            ]
        );
        let t = print(&r, Output::Table);
        assert!(t.contains("198.51.100.7/32   wk1") && t.contains("none: every route refused"), "{t}");
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["PREFIX", "NODE", "VRF", "PEER", "INSTALLED", "ACCEPTED", "BY"]);
        assert_eq!(lines[1][4], "yes", "{t}");
        // a prefix-list entry as FRR matches it
        let m = |p: &str, ge: Option<u8>, le: Option<u8>| crate::core::model::PrefixMatch { prefix: p.parse().unwrap(), ge, le };
        let net = |p: &str| p.parse::<IpNet>().unwrap();
        assert!(covers(&m("198.51.100.0/24", None, Some(32)), &net("198.51.100.7/32")));
        assert!(!covers(&m("198.51.100.0/24", None, None), &net("198.51.100.7/32")), "exact only");
        assert!(covers(&m("198.51.100.0/24", Some(28), None), &net("198.51.100.0/30")));
        assert!(!covers(&m("198.51.100.0/24", Some(28), Some(29)), &net("198.51.100.0/30")));
        assert!(!covers(&m("198.51.100.0/24", None, Some(32)), &net("203.0.113.0/24")));
    }

    #[test]
    fn table() {
        let t = print(&routes(&inputs(), &Filter { scope: Scope { nodes: vec!["wk1".into()], ..Default::default() }, ..Default::default() }), Output::Table);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["PREFIX", "NODE", "VRF", "PEER", "SENT", "COMMUNITIES", "LOCALPREF", "PREPEND", "OBJECTS", "SERVICES"]);
        assert_eq!(lines[1], ["198.51.100.181/32", "wk1", "default", "192.0.2.1", "yes", "65000:1", "-", "3x", "frr-k8s-system/metallb-wk1", "web/frontend"]);
        assert_eq!(lines.len(), 4);
    }
}
