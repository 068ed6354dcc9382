//! `frr-composer why PREFIX --node N [--peer P]`: the chain that explains why a node advertises
//! a prefix to a peer, or the first link where it breaks: no object asks for it on that node;
//! its object is not in effect there (and because of what); the neighbor may not advertise it;
//! the session is down; FRR does not run it. Each link names the object and the field. The
//! same reads and the same merge as `routes`, plus the node's FRRNodeState for what FRR runs.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use ipnet::IpNet;
use kube::api::Api;
use kube::ResourceExt;
use serde::Serialize;

use super::peers::{self, Output};
use super::routes::{self, Inputs};
use crate::api::{FRRConfiguration, FRRNodeState};
use crate::core::convert::canonical_vrf;
use crate::core::isolation::Decision;
use crate::core::model::{Neighbor, Router};

#[derive(clap::Args, Debug)]
pub struct WhyArgs {
    /// The prefix (`198.51.100.181/32`; an address is its host prefix).
    pub prefix: String,
    /// The node to explain.
    #[arg(long)]
    pub node: String,
    /// Only this peer (default: every neighbor of the routers that hold the prefix).
    #[arg(long)]
    pub peer: Option<String>,
    /// Explain a route the node receives from its peers (whether it is accepted, and by
    /// which object) instead of one it advertises.
    #[arg(long)]
    pub received: bool,
    #[command(flatten)]
    pub cluster: peers::ClusterArgs,
    /// Saved YAML instead of the API server (`kubectl get -A
    /// frrconfigurations,bgpsessionstates,frrnodestates,nodes,services -o yaml`).
    #[arg(long = "from")]
    pub from: Vec<PathBuf>,
    /// table (the chains as text), json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// One link of a chain: whether it holds, and what it says (with the object and the field).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    pub holds: bool,
    pub what: String,
}

/// The chain for one peer (or, when it breaks before any neighbor, for none).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// The whole chain holds: advertised to the peer (or, with `received`, accepted from it).
    pub holds: bool,
    pub links: Vec<Link>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Why {
    pub prefix: String,
    pub node: String,
    /// The chains explain a route the node received (else one it advertises).
    pub received: bool,
    pub chains: Vec<Chain>,
}

fn link(holds: bool, what: String) -> Link {
    Link { holds, what }
}

/// Whether FRR's running configuration holds `network PREFIX` in the router of `vrf`: Some(yes
/// or no), or None when it cannot tell (no configuration published, or one cut short).
fn frr_runs(running: Option<&str>, router: &Router, prefix: &IpNet) -> Option<bool> {
    let text = running?;
    let head = if router.vrf.is_empty() { format!("router bgp {}", router.asn) } else { format!("router bgp {} vrf {}", router.asn, router.vrf) };
    let want = format!("network {prefix}");
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line.trim_end() == head;
            continue;
        }
        if inside && line.trim() == want {
            return Some(true);
        }
    }
    if crate::agent::report::cut_short(text) {
        return None;
    }
    Some(false)
}

/// The link "the session is Established", from what the node's agent published.
fn session_link(published: Option<&routes::Session>, node: &str, peer: &str, vrf: &str) -> Link {
    match published {
        Some(s) if s.state == "Established" => link(true, format!("the session with {peer} is Established (BGPSessionState)")),
        Some(s) => {
            let reason = s.last_reset_reason.as_deref().map(|r| format!("; last reset: {r}")).unwrap_or_default();
            link(false, format!("the session with {peer} is {}, not Established (BGPSessionState){reason}", s.state))
        }
        None => link(false, format!("no BGPSessionState for {peer} ({vrf}) on {node}: is the agent running there, and has it written its sessions?")),
    }
}

/// Whether object `o` defines neighbor `n` of `router` with `toAdvertise.allowed.mode: all`.
fn advertises_all(configs: &[FRRConfiguration], o: &crate::core::ObjRef, router: &Router, n: &Neighbor) -> bool {
    configs
        .iter()
        .filter(|c| crate::core::obj_ref(c) == *o)
        .flat_map(|c| &c.spec.bgp.routers)
        .filter(|r| canonical_vrf(r.vrf.as_deref()) == router.vrf)
        .flat_map(|r| &r.neighbors)
        .any(|x| {
            let peer = x.address.as_deref().or(x.interface.as_deref()).unwrap_or_default();
            peers::same_peer(peer, &n.peer.to_string()) && x.to_advertise.allowed.mode == crate::api::AllowMode::All
        })
}

/// The chain for one neighbor of `router`, after the links that hold for the node.
#[allow(clippy::too_many_arguments)]
fn neighbor_chain(
    configs: &[FRRConfiguration],
    node: &str,
    prefix: &IpNet,
    router: &Router,
    n: &Neighbor,
    sessions: &routes::Sessions,
    running: Option<&str>,
    mut links: Vec<Link>,
) -> Chain {
    let vrf = if router.vrf.is_empty() { "default".to_string() } else { router.vrf.clone() };
    let peer = n.peer.to_string();
    let defined_by = n.sources.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
    let chain = |links: Vec<Link>, holds: bool| Chain { peer: Some(peer.clone()), vrf: Some(vrf.clone()), holds, links };
    // the neighbor's outbound policy
    match n.outbound.advertise.get(prefix) {
        Some(sources) => {
            let o = &n.outbound;
            let mut attrs: Vec<String> = o.communities.iter().filter(|(_, ps)| ps.contains(prefix)).map(|(c, _)| format!("community {c}")).collect();
            attrs.extend(o.local_pref.get(prefix).map(|l| format!("local preference {l}")));
            attrs.extend(o.as_path_prepend.get(prefix).map(|(c, _)| format!("AS path prepended {c} times")));
            let objects = sources.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
            let attrs = if attrs.is_empty() { String::new() } else { format!("; with {}", attrs.join(", ")) };
            links.push(link(true, format!("neighbor {peer} ({vrf}) may advertise it: toAdvertise.allowed of {objects}{attrs}")));
        }
        None => {
            let family = n.families.ip.has(crate::core::values::Family::of(prefix));
            let reason = if !family {
                format!(
                    "the session carries no {} routes (a neighbor's address family follows its address; dualStackAddressFamily: true carries both)",
                    if prefix.addr().is_ipv4() { "IPv4" } else { "IPv6" }
                )
            } else {
                let all: Vec<String> = n.sources.iter().filter(|o| advertises_all(configs, o, router, n)).map(|o| o.to_string()).collect();
                let mode_all = if all.is_empty() {
                    " or sets toAdvertise.allowed.mode: all".to_string()
                } else {
                    format!(
                        "; {} set{} toAdvertise.allowed.mode: all, which advertises the prefixes of that object's own router only",
                        all.join(", "),
                        if all.len() == 1 { "s" } else { "" }
                    )
                };
                format!("no object defining it ({defined_by}) lists the prefix in toAdvertise.allowed.prefixes{mode_all}")
            };
            links.push(link(false, format!("neighbor {peer} ({vrf}) may not advertise it: {reason}")));
            return chain(links, false);
        }
    }
    // the session, as the agent published it
    let published = sessions.get(&(node.to_string(), canonical_vrf(Some(&vrf)).to_string(), peer.clone()));
    let up = session_link(published, node, &peer, &vrf);
    if !up.holds {
        links.push(up);
        return chain(links, false);
    }
    links.push(up);
    // what FRR runs
    match frr_runs(running, router, prefix) {
        Some(true) => links.push(link(true, format!("FRR on {node} runs `network {prefix}` (FRRNodeState {node})"))),
        Some(false) => {
            links.push(link(
                false,
                format!("FRR on {node} does not run `network {prefix}` (FRRNodeState {node}): the agent has not applied it; its lastReloadResult says why"),
            ));
            return chain(links, false);
        }
        None => {
            links.push(link(false, format!("cannot tell whether FRR on {node} runs it: FRRNodeState {node} has no running configuration, or one cut short")));
            return chain(links, false);
        }
    }
    // what FRR sent on the session, as the agent published it
    match published.and_then(|s| s.sent(&prefix.to_string())) {
        Some(true) => links.push(link(true, format!("FRR on {node} sent it to {peer} (BGPSessionState advertisedPrefixes)"))),
        Some(false) => {
            links.push(link(
                false,
                format!("FRR on {node} did not send it to {peer} (BGPSessionState advertisedPrefixes): FRR's outbound policy or its update timer holds it"),
            ));
            return chain(links, false);
        }
        // not published (an agent before advertisedPrefixes, or more than 100 prefixes sent):
        // the chain ends at what FRR runs
        None => {}
    }
    chain(links, true)
}

/// The chains for `prefix` on `node`. Pure.
pub fn why(inputs: &Inputs, running: Option<&str>, node: &str, prefix: IpNet, peer: Option<&str>) -> Result<Why, String> {
    let Some(labels) = inputs.node_labels.get(node) else { return Err(format!("no Node {node:?}")) };
    let out = |chains: Vec<Chain>| Ok(Why { prefix: prefix.to_string(), node: node.to_string(), received: false, chains });
    let broken = |links: Vec<Link>| out(vec![Chain { peer: peer.map(String::from), vrf: None, holds: false, links }]);

    // 1. the objects that ask for the prefix, and whether they select the node
    let asks = |c: &FRRConfiguration| -> Option<String> {
        c.spec
            .bgp
            .routers
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.prefixes.iter().any(|p| p.parse::<IpNet>().is_ok_and(|p| p == prefix)).then(|| format!("spec.bgp.routers[{i}].prefixes")))
    };
    let name = |c: &FRRConfiguration| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
    let mut selecting = Vec::new();
    let mut elsewhere = Vec::new();
    for c in &inputs.configs {
        let Some(field) = asks(c) else { continue };
        let selects = match &c.spec.node_selector {
            None => true,
            Some(sel) => crate::core::selector_matches(sel, labels).unwrap_or(true),
        };
        if selects {
            selecting.push((c, field));
        } else {
            elsewhere.push(name(c));
        }
    }
    if selecting.is_empty() {
        let also = if elsewhere.is_empty() {
            String::new()
        } else {
            let more = if elsewhere.len() > 5 { format!(" and {} more", elsewhere.len() - 5) } else { String::new() };
            format!(
                " ({}{more} ha{} it, but {} nodeSelector does not match {node})",
                elsewhere[..elsewhere.len().min(5)].join(", "),
                if elsewhere.len() == 1 { "s" } else { "ve" },
                if elsewhere.len() == 1 { "its" } else { "their" }
            )
        };
        return broken(vec![link(
            false,
            format!("no FRRConfiguration in {} that selects {node} has {prefix} in spec.bgp.routers[].prefixes{also}", inputs.namespace),
        )]);
    }
    let mut links: Vec<Link> =
        selecting.iter().map(|(c, field)| link(true, format!("FRRConfiguration {} asks for it ({field}) and selects {node}", name(c)))).collect();

    // 2. whether those objects are in effect on the node: the merge and isolation `routes` runs
    let prepared = routes::Prepared::new(inputs);
    let isolated = match prepared.compose(node, labels, &prepared.selecting(labels)) {
        Ok(x) => x,
        Err(e) => {
            links.push(link(false, format!("nothing on {node} can be merged: {e}")));
            return broken(links);
        }
    };
    let holders: Vec<crate::core::ObjRef> = selecting.iter().map(|(c, _)| crate::core::obj_ref(c)).collect();
    let mut in_effect = false;
    for d in isolated.decisions.iter().filter(|d| holders.contains(&d.obj)) {
        match &d.decision {
            Decision::Applied => {
                in_effect = true;
                links.push(link(true, format!("{} is in effect on {node}", d.obj)));
            }
            _ => links.push(link(false, format!("{} is not in effect on {node} ({}): {}", d.obj, d.reason(), crate::frr::redact(&d.message())))),
        }
    }
    if !in_effect {
        return broken(links);
    }
    // 3-5. per neighbor of the routers that hold it
    let routers: Vec<&Router> = isolated.composition.model.routers.iter().filter(|r| r.prefixes.contains_key(&prefix)).collect();
    let sessions = routes::session_states(inputs);
    let mut chains = Vec::new();
    for r in routers {
        for n in r.neighbors.iter().filter(|n| peer.is_none_or(|p| peers::same_peer(p, &n.peer.to_string()))) {
            chains.push(neighbor_chain(&inputs.configs, node, &prefix, r, n, &sessions, running, links.clone()));
        }
    }
    if chains.is_empty() {
        let what = match peer {
            Some(p) => format!("{node} has no neighbor {p} in a router that holds {prefix}"),
            None => format!("the routers of {node} that hold {prefix} have no neighbor"),
        };
        links.push(link(false, what));
        return broken(links);
    }
    out(chains)
}

/// The chains for a route `node` receives: per neighbor (or `peer`), the session is up, an
/// object's toReceive lets the prefix in (and --always-block does not), and FRR accepted it
/// (as the session's `acceptedPrefixes` shows, when published). Pure.
pub fn why_received(inputs: &Inputs, node: &str, prefix: IpNet, peer: Option<&str>) -> Result<Why, String> {
    let Some(labels) = inputs.node_labels.get(node) else { return Err(format!("no Node {node:?}")) };
    let prepared = routes::Prepared::new(inputs);
    let isolated = prepared.compose(node, labels, &prepared.selecting(labels)).map_err(|e| format!("nothing on {node} can be merged: {e}"))?;
    let sessions = routes::session_states(inputs);
    let mut chains = Vec::new();
    let filter = routes::Filter { scope: peers::Scope { peer: peer.map(String::from), ..Default::default() }, ..Default::default() };
    for (vrf, n, p) in routes::neighbors(&isolated.composition.model, &filter) {
        let mut links = Vec::new();
        let chain = |links: Vec<Link>, holds: bool| Chain { peer: Some(p.clone()), vrf: Some(vrf.clone()), holds, links };
        let published = sessions.get(&(node.to_string(), canonical_vrf(Some(&vrf)).to_string(), p.clone()));
        let up = session_link(published, node, &p, &vrf);
        let holds = up.holds;
        links.push(up);
        if !holds {
            chains.push(chain(links, false));
            continue;
        }
        let inbound = &n.inbound;
        if let Some(block) = inbound.always_block.iter().find(|b| b.contains(&prefix)) {
            links.push(link(false, format!("the agent's --always-block {block} refuses it")));
            chains.push(chain(links, false));
            continue;
        }
        let mut by: Vec<String> = inbound.receive_all.iter().flat_map(|s| s.iter()).map(|o| format!("{o} (mode: all)")).collect();
        by.extend(inbound.receive.iter().filter(|(m, _)| routes::covers(m, &prefix)).flat_map(|(m, s)| s.iter().map(move |o| format!("{o} ({m})"))));
        if by.is_empty() {
            let defined_by = n.sources.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
            let entries = inbound.receive.keys().map(|m| m.to_string()).collect::<Vec<_>>();
            let entries = if entries.is_empty() { "it has none".to_string() } else { format!("its entries: {}", entries.join(", ")) };
            links.push(link(false, format!("no object defining neighbor {p} ({defined_by}) lets it in with toReceive.allowed ({entries})")));
            chains.push(chain(links, false));
            continue;
        }
        links.push(link(true, format!("toReceive lets it in: {}", by.join(", "))));
        let accepted = published.and_then(|s| s.accepted.as_ref().map(|l| (l, s.accepted_count)));
        match accepted {
            Some((list, _)) if list.contains(&prefix.to_string()) => {
                links.push(link(true, format!("FRR on {node} accepted it from {p} (BGPSessionState acceptedPrefixes)")));
                match published.and_then(|s| s.installed(&prefix.to_string())) {
                    Some(true) => links.push(link(true, format!("{node}'s routing table installed it via {p} (BGPSessionState notInstalledPrefixes)"))),
                    Some(false) => links.push(link(
                        false,
                        format!(
                            "{node}'s routing table did not install it via {p} (BGPSessionState notInstalledPrefixes): another peer's path, or a \
                             connected, static or kernel route is preferred, or the next hop is unreachable"
                        ),
                    )),
                    None => {}
                }
            }
            Some((list, count)) if count.is_some_and(|c| c as usize <= list.len()) => {
                links.push(link(false, format!("FRR on {node} holds no such route from {p} (BGPSessionState acceptedPrefixes): the peer does not send it")));
                chains.push(chain(links, false));
                continue;
            }
            // not published, or more than 100 accepted: the chain ends at the policy
            _ => {}
        }
        chains.push(chain(links, true));
    }
    if chains.is_empty() {
        let what = match peer {
            Some(p) => format!("{node} has no neighbor {p}"),
            None => format!("{node} has no neighbor"),
        };
        chains.push(Chain { peer: peer.map(String::from), vrf: None, holds: false, links: vec![link(false, what)] });
    }
    Ok(Why { prefix: prefix.to_string(), node: node.to_string(), received: true, chains })
}

pub fn print(w: &Why, output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string_pretty(w).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(w).unwrap_or_default(),
        Output::Table | Output::Wide => {
            let mut s = String::new();
            for c in &w.chains {
                let way = if w.received { "from" } else { "to" };
                let to = match (&c.peer, &c.vrf) {
                    (Some(p), Some(v)) => format!(" {way} {p} ({v})"),
                    (Some(p), None) => format!(" {way} {p}"),
                    _ => String::new(),
                };
                let verdict = match (w.received, c.holds) {
                    (false, true) => "advertised",
                    (false, false) => "not advertised",
                    (true, true) if c.links.iter().all(|l| l.holds) => "accepted",
                    (true, true) => "accepted, not installed",
                    (true, false) => "not accepted",
                };
                s.push_str(&format!("{} on {}{to}: {verdict}\n", w.prefix, w.node));
                for l in &c.links {
                    s.push_str(&format!("  {}  {}\n", if l.holds { "ok" } else { "NO" }, l.what));
                }
            }
            s
        }
    }
}

async fn read_cluster(args: &WhyArgs) -> anyhow::Result<(Inputs, Option<String>)> {
    let client = peers::client(args.cluster.context.as_deref()).await?;
    let inputs = routes::read_inputs(&client, &args.cluster.namespace).await?;
    let state = Api::<FRRNodeState>::all(client).get_opt(&args.node).await.context("reading the node's FRRNodeState")?;
    Ok((inputs, state.and_then(|s| s.status).and_then(|s| s.running_config)))
}

fn read_files(args: &WhyArgs) -> anyhow::Result<(Inputs, Option<String>)> {
    let (inputs, objects) = routes::read_saved(&args.from, &args.cluster.namespace)?;
    let running = objects.node_states.iter().find(|s| s.name_any() == args.node).and_then(|s| s.status.as_ref()).and_then(|s| s.running_config.clone());
    Ok((inputs, running))
}

pub fn run(args: &WhyArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let prefix = match args.prefix.parse::<IpAddr>() {
        Ok(a) => IpNet::from(a),
        Err(_) => match args.prefix.parse::<IpNet>() {
            Ok(p) if p.trunc() == p => p,
            Ok(p) => {
                let _ = writeln!(err, "error: {:?} has host bits set (the prefix is {})", args.prefix, p.trunc());
                return 2;
            }
            Err(_) => {
                let _ = writeln!(err, "error: {:?} is neither an IP address nor a prefix", args.prefix);
                return 2;
            }
        },
    };
    let read = if args.from.is_empty() { peers::block_on(read_cluster(args)) } else { read_files(args) };
    let (inputs, running) = match read {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            return 2;
        }
    };
    let explained = if args.received {
        why_received(&inputs, &args.node, prefix, args.peer.as_deref())
    } else {
        why(&inputs, running.as_deref(), &args.node, prefix, args.peer.as_deref())
    };
    match explained {
        Ok(w) => {
            let _ = out.write_all(print(&w, args.output).as_bytes());
            if w.chains.iter().any(|c| c.holds) {
                0
            } else {
                1
            }
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::routes::tests::inputs;

    const RUNNING: &str = "frr version 10.3\n!\nrouter bgp 64512\n neighbor 192.0.2.1 remote-as 64513\n !\n address-family ipv4 unicast\n  network 198.51.100.181/32\n  network 203.0.113.0/24\n exit-address-family\nexit\n!\n";

    fn chain(w: &Why, peer: &str) -> Vec<(bool, String)> {
        let c = w.chains.iter().find(|c| c.peer.as_deref() == Some(peer)).unwrap_or_else(|| panic!("no chain to {peer}: {w:#?}"));
        c.links.iter().map(|l| (l.holds, l.what.clone())).collect()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn an_advertised_prefix_holds_at_every_link() {
        let w = why(&inputs(), Some(RUNNING), "wk1", net("198.51.100.181/32"), Some("192.0.2.1")).unwrap();
        assert_eq!(w.chains.len(), 1);
        assert!(w.chains[0].holds, "{w:#?}");
        let links = chain(&w, "192.0.2.1");
        assert!(links.iter().all(|(ok, _)| *ok), "{links:#?}");
        let text: Vec<&str> = links.iter().map(|(_, t)| t.as_str()).collect();
        assert!(text[0].contains("frr-k8s-system/metallb-wk1 asks for it (spec.bgp.routers[0].prefixes)"), "{text:?}");
        assert!(text[1].contains("frr-k8s-system/metallb-wk1 is in effect on wk1"), "{text:?}");
        assert!(text[2].contains("community 65000:1") && text[2].contains("prepended 3 times"), "{text:?}");
        assert!(text[3].contains("Established") && text[4].contains("runs `network 198.51.100.181/32`"), "{text:?}");
        assert!(text[5].contains("sent it to 192.0.2.1 (BGPSessionState advertisedPrefixes)"), "{text:?}");
        // without what FRR runs, the last link cannot hold
        let w = why(&inputs(), None, "wk1", net("198.51.100.181/32"), None).unwrap();
        assert!(!w.chains[0].holds && chain(&w, "192.0.2.1").last().unwrap().1.contains("cannot tell"), "{w:#?}");
    }

    #[test]
    fn each_link_that_breaks_names_the_object_and_the_field() {
        let i = inputs();
        // no object on wk2 asks for the Service address; the one that does selects wk1
        let w = why(&i, Some(RUNNING), "wk2", net("198.51.100.181/32"), None).unwrap();
        let only = &w.chains[0].links;
        assert!(
            only.len() == 1 && !only[0].holds && only[0].what.contains("frr-k8s-system/metallb-wk1 has it, but its nodeSelector does not match wk2"),
            "{w:#?}"
        );
        // the session to the IPv6 peer is Active
        let w = why(&i, Some(RUNNING), "wk2", net("203.0.113.0/24"), Some("2001:DB8::1")).unwrap();
        let links = chain(&w, "2001:db8::1");
        assert!(!w.chains[0].holds && links.last().unwrap().1.contains("is Active, not Established"), "{links:#?}");
        // a prefix the router has but no neighbor may advertise
        let mut more = i.clone();
        more.configs.iter_mut().find(|c| c.metadata.name.as_deref() == Some("metallb-wk1")).unwrap().spec.bgp.routers[0]
            .prefixes
            .push("198.51.100.182/32".into());
        let w = why(&more, Some(RUNNING), "wk1", net("198.51.100.182/32"), Some("192.0.2.1")).unwrap();
        let last = chain(&w, "192.0.2.1").last().unwrap().clone();
        assert!(
            !last.0
                && last
                    .1
                    .contains("no object defining it (frr-k8s-system/admin-all, frr-k8s-system/metallb-wk1) lists the prefix in toAdvertise.allowed.prefixes"),
            "{last:?}"
        );
        // the IPv6 dual-stack neighbor's only object advertises its own router's prefixes
        let w = why(&i, Some(RUNNING), "wk1", net("198.51.100.181/32"), Some("2001:db8::1")).unwrap();
        let last = chain(&w, "2001:db8::1").last().unwrap().clone();
        assert!(
            !last.0
                && last
                    .1
                    .contains("frr-k8s-system/admin-all sets toAdvertise.allowed.mode: all, which advertises the prefixes of that object's own router only"),
            "{last:?}"
        );
        // an object that asks for it is not in effect: the conflict, with the other object
        let mut odd = i.clone();
        odd.configs.iter_mut().find(|c| c.metadata.name.as_deref() == Some("odd-wk2")).unwrap().spec.bgp.routers[0].prefixes = vec!["192.0.2.128/25".into()];
        let w = why(&odd, Some(RUNNING), "wk2", net("192.0.2.128/25"), None).unwrap();
        let last = w.chains[0].links.last().unwrap();
        assert!(!last.holds && last.what.contains("frr-k8s-system/odd-wk2 is not in effect on wk2 (LeftOut)") && last.what.contains("admin-all"), "{w:#?}");
        // ... also when its name is one the output quotes (offline input may hold anything)
        let mut quoted = odd.clone();
        quoted.configs.iter_mut().find(|c| c.metadata.name.as_deref() == Some("odd-wk2")).unwrap().metadata.name = Some("odd wk2".into());
        let w = why(&quoted, Some(RUNNING), "wk2", net("192.0.2.128/25"), None).unwrap();
        let last = w.chains[0].links.last().unwrap();
        assert!(!last.holds && last.what.contains("is not in effect on wk2 (LeftOut)") && last.what.contains("odd wk2"), "{w:#?}");
        // a peer the node does not have, and a node that does not exist
        let w = why(&i, Some(RUNNING), "wk1", net("203.0.113.0/24"), Some("192.0.2.99")).unwrap();
        assert!(w.chains[0].links.last().unwrap().what.contains("wk1 has no neighbor 192.0.2.99"), "{w:#?}");
        assert!(why(&i, None, "wk9", net("203.0.113.0/24"), None).unwrap_err().contains("no Node \"wk9\""));
        // FRR runs it but did not send it (the agent published what it sent)
        let mut unsent = i.clone();
        unsent.sessions[0].status.as_mut().unwrap().advertised_prefixes = Some(vec!["198.51.100.181/32".into()]);
        unsent.sessions[0].status.as_mut().unwrap().prefixes_sent = Some(1);
        let w = why(&unsent, Some(RUNNING), "wk1", net("203.0.113.0/24"), Some("192.0.2.1")).unwrap();
        assert!(!w.chains[0].holds && chain(&w, "192.0.2.1").last().unwrap().1.contains("did not send it to 192.0.2.1"), "{w:#?}");
        // FRR does not run it
        let w = why(&i, Some("router bgp 64512\nexit\n"), "wk1", net("203.0.113.0/24"), Some("192.0.2.1")).unwrap();
        assert!(chain(&w, "192.0.2.1").last().unwrap().1.contains("does not run `network 203.0.113.0/24`"), "{w:#?}");
    }

    #[test]
    fn a_received_route_accepted_or_not_and_by_what() {
        let i = inputs();
        let w = why_received(&i, "wk1", net("198.51.100.7/32"), Some("192.0.2.1")).unwrap();
        let links = chain(&w, "192.0.2.1");
        assert!(w.chains[0].holds && links.iter().all(|(ok, _)| *ok), "{links:#?}");
        assert!(links[1].1.contains("toReceive lets it in: frr-k8s-system/admin-all (198.51.100.0/24 le 32)"), "{links:#?}");
        assert!(links[2].1.contains("accepted it from 192.0.2.1"), "{links:#?}");
        // covered by the policy, but the router does not send it
        let w = why_received(&i, "wk1", net("198.51.100.8/32"), Some("192.0.2.1")).unwrap();
        assert!(!w.chains[0].holds && chain(&w, "192.0.2.1").last().unwrap().1.contains("the peer does not send it"), "{w:#?}");
        // no object lets it in
        let w = why_received(&i, "wk1", net("203.0.113.0/24"), Some("192.0.2.1")).unwrap();
        let last = chain(&w, "192.0.2.1").last().unwrap().clone();
        assert!(!last.0 && last.1.contains("lets it in with toReceive.allowed (its entries: 198.51.100.0/24 le 32)"), "{last:?}");
        // a session that is down accepts nothing
        let w = why_received(&i, "wk2", net("198.51.100.7/32"), Some("2001:db8::1")).unwrap();
        assert!(chain(&w, "2001:db8::1")[0].1.contains("is Active, not Established"), "{w:#?}");
        let t = print(&why_received(&i, "wk1", net("198.51.100.7/32"), Some("192.0.2.1")).unwrap(), Output::Table);
        assert!(t.starts_with("198.51.100.7/32 on wk1 from 192.0.2.1 (default): accepted\n"), "{t}");
        assert!(links[3].1.contains("routing table installed it via 192.0.2.1"), "{links:#?}");
        // accepted, and another route is preferred: the chain says so
        let mut beaten = inputs();
        let st = beaten.sessions[0].status.as_mut().unwrap();
        (st.prefixes_installed, st.not_installed_prefixes) = (Some(0), Some(vec!["198.51.100.7/32".into()]));
        let w = why_received(&beaten, "wk1", net("198.51.100.7/32"), Some("192.0.2.1")).unwrap();
        let last = chain(&w, "192.0.2.1").last().unwrap().clone();
        assert!(w.chains[0].holds && !last.0 && last.1.contains("did not install it via 192.0.2.1"), "{w:#?}");
        assert!(print(&w, Output::Table).starts_with("198.51.100.7/32 on wk1 from 192.0.2.1 (default): accepted, not installed\n"));
    }

    #[test]
    fn text() {
        let w = why(&inputs(), Some(RUNNING), "wk1", net("198.51.100.181/32"), Some("192.0.2.1")).unwrap();
        let t = print(&w, Output::Table);
        assert!(t.starts_with("198.51.100.181/32 on wk1 to 192.0.2.1 (default): advertised\n  ok  FRRConfiguration frr-k8s-system/metallb-wk1"), "{t}");
        assert_eq!(t.lines().count(), 7, "{t}");
    }
}
