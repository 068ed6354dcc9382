//! Writing what the agent reports: status objects (FRRNodeState per node, BGPSessionState per
//! session, each FRRConfiguration's per-node entry) and Kubernetes Events on FRRConfigurations.
//! The values are computed by pure functions (`super::report`, and the session status here);
//! the writers use server-side apply with one field manager per node and write only on change.
//! Events go through kube-runtime's recorder, which folds repeats into a series; they are sent
//! only when a decision changes, and at most once per object per [`EVENT_INTERVAL`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde_json::json;

use super::metrics::Metrics;
use super::pacer::{Pacer, STATUS_INTERVAL};
use super::watch::{OwnEntries, SessionEntry, Watches};
use crate::api::{BGPSessionState, BGPSessionStateStatus, FRRConfiguration, FRRNodeState, FRRNodeStateStatus, API_VERSION};
use crate::core::isolation::{Decision, ObjectDecision};
use crate::frr::redact;
use crate::frr::state::{self, BgpNeighbor, Installed, PathRoute, SessionRoutes, MAX_LISTED};
use crate::frr::vtysh::FrrLocation;
use crate::watch::Reader;

pub const MANAGER: &str = "frr-composer";
/// A status write that takes longer is given up: an API server that is away must not hold the
/// agent (the write is retried with the next change).
pub const API_TIMEOUT: Duration = Duration::from_secs(10);
/// FRRConfiguration status writes in flight at once.
const STATUS_WRITES_AT_ONCE: usize = 8;
use crate::api::{LABEL_NODE, LABEL_PEER, LABEL_VRF};

/// The peer label as frr-k8s writes it: IPv6 fully expanded with `-` for `:`.
pub fn peer_label(peer: &str) -> String {
    match peer.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => v6.segments().iter().map(|s| format!("{s:04x}")).collect::<Vec<_>>().join("-"),
        Err(_) => peer.to_string(),
    }
}

/// A stable object name for a session: `<node>-<vrf>-<peer>`, made a valid DNS subdomain.
pub fn session_name(node: &str, vrf: &str, peer: &str) -> String {
    let raw = format!("{node}-{}-{}", if vrf.is_empty() { "default" } else { vrf }, peer_label(peer));
    let mut name: String = raw.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect();
    name.truncate(253);
    name.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// FRR's VRF name `default` is "" in the API, as in frr-k8s.
pub fn api_vrf(vrf: &str) -> &str {
    if vrf == "default" {
        ""
    } else {
        vrf
    }
}

pub fn session_status(node: &str, n: &BgpNeighbor, now: jiff::Timestamp) -> BGPSessionStateStatus {
    let since = (n.state == "Established").then(|| n.uptime_msec.map(|ms| now - jiff::SignedDuration::from_millis(ms as i64))).flatten();
    BGPSessionStateStatus {
        bgp_status: Some(n.state.clone()),
        bfd_status: Some(n.bfd_status.clone().unwrap_or_else(|| "N/A".into())),
        node: Some(node.to_string()),
        peer: Some(n.peer.clone()),
        vrf: Some(api_vrf(&n.vrf).to_string()),
        prefixes_sent: Some(n.prefixes_sent),
        prefixes_received: Some(n.prefixes_received),
        prefixes_accepted: Some(n.prefixes_accepted),
        // whole seconds: the status then only changes when the session does
        established_since: since.map(|t| jiff::Timestamp::from_second(t.as_second()).map(|t| t.to_string()).unwrap_or_default()),
        last_reset_reason: n.last_reset_reason.clone(),
        advertised_prefixes: n.advertised.clone(),
        accepted_prefixes: n.accepted.clone(),
        prefixes_installed: n.installed,
        not_installed_prefixes: n.not_installed.clone(),
    }
}

/// Writes status objects, remembering what it wrote to skip identical writes. FRRNodeState
/// and this node's entry in each FRRConfiguration's status are paced ([`Pacer`]): at most one
/// write of each per [`STATUS_INTERVAL`]; what changes faster waits, and the latest is written
/// when the interval ends ([`StatusWriter::flush`], at [`StatusWriter::next_flush`]).
pub struct StatusWriter {
    client: Client,
    node: String,
    namespace: String,
    node_state_written: Option<FRRNodeStateStatus>,
    sessions_written: BTreeMap<String, BGPSessionStateStatus>,
    sessions_deleted: std::collections::BTreeSet<String>,
    config_entries_written: BTreeMap<String, serde_json::Value>,
    object_status: ObjectStatus,
    /// FRRNodeState: (the Node's uid, the status) waiting.
    node_pace: Pacer<(), (String, FRRNodeStateStatus)>,
    /// Per FRRConfiguration: (this node's entry, whether the node merges the object) waiting.
    config_pace: Pacer<String, (serde_json::Value, bool)>,
}

/// What each node writes into the status of the FRRConfigurations it merges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectStatus {
    /// Every node that merges the object: `appliedOn`, its `<node>/Applied` condition (True or
    /// False) and its error. An object that selects N nodes carries N entries, and every write
    /// of one reaches every agent's watch: for small clusters.
    #[default]
    All,
    /// Only nodes where the object has a problem: its error and its `<node>/Applied` condition
    /// while that is False (refused, held at its last good generation, left out); the entries
    /// go when the problem does. The status then stays small at thousands of nodes.
    Problems,
}

/// This node's part of one FRRConfiguration's status. `merged`: the node merges the object
/// (else whatever it wrote before is given up); `error`: why it is not applied here;
/// `condition`: this node's condition for the object, when it has one.
pub fn object_status(node: &str, mode: ObjectStatus, merged: bool, error: Option<&str>, condition: Option<&Condition>) -> serde_json::Value {
    let mut status = match (merged, error) {
        (true, Some(err)) => json!({"errors": [{"node": node, "message": err}]}),
        (true, None) if mode == ObjectStatus::All => json!({"appliedOn": [node]}),
        _ => json!({}),
    };
    if let Some(c) = condition.filter(|c| merged && (mode == ObjectStatus::All || c.status != "True")) {
        status["conditions"] = json!([c]);
    }
    status
}

impl StatusWriter {
    pub fn new(client: Client, node: &str, namespace: &str, object_status: ObjectStatus) -> StatusWriter {
        StatusWriter {
            client,
            object_status,
            node: node.to_string(),
            namespace: namespace.to_string(),
            node_state_written: None,
            sessions_written: BTreeMap::new(),
            sessions_deleted: Default::default(),
            config_entries_written: BTreeMap::new(),
            node_pace: Pacer::new(STATUS_INTERVAL),
            config_pace: Pacer::new(STATUS_INTERVAL),
        }
    }

    fn pp(&self) -> PatchParams {
        PatchParams::apply(&format!("{MANAGER}/{}", self.node)).force()
    }

    fn owner(&self, node_uid: &str) -> serde_json::Value {
        json!([{"apiVersion": "v1", "kind": "Node", "name": self.node, "uid": node_uid}])
    }

    /// FRRNodeState/<node>, owned by the Node. Ok(true): written now; Ok(false): unchanged, or
    /// waiting for the end of its interval.
    pub async fn node_state(&mut self, node_uid: &str, status: FRRNodeStateStatus) -> Result<bool, kube::Error> {
        if self.node_state_written.as_ref() == Some(&status) {
            self.node_pace.settled(&());
            return Ok(false);
        }
        let now = Instant::now();
        let Some((uid, status)) = self.node_pace.offer((), (node_uid.to_string(), status), now) else {
            tracing::debug!("FRRNodeState write waits for the end of its interval");
            return Ok(false);
        };
        self.write_node_state(uid, status, now).await.map(|_| true)
    }

    async fn write_node_state(&mut self, node_uid: String, status: FRRNodeStateStatus, now: Instant) -> Result<(), kube::Error> {
        self.node_pace.attempt((), (node_uid.clone(), status.clone()), now);
        let api: Api<FRRNodeState> = Api::all(self.client.clone());
        if self.node_state_written.is_none() {
            let obj = json!({"apiVersion": API_VERSION, "kind": "FRRNodeState", "metadata": {"name": self.node, "ownerReferences": self.owner(&node_uid)}, "spec": {}});
            api.patch(&self.node, &self.pp(), &Patch::Apply(&obj)).await?;
        }
        let obj = json!({"apiVersion": API_VERSION, "kind": "FRRNodeState", "status": status});
        api.patch_status(&self.node, &self.pp(), &Patch::Apply(&obj)).await?;
        self.node_pace.settled(&());
        self.node_state_written = Some(status);
        Ok(())
    }

    /// This node's entry in each FRRConfiguration's status: applied here, or why not, and this
    /// node's condition (per-object isolation) when there is one.
    /// `own`: the objects whose status holds an entry of this node, as the watch last read them.
    pub async fn config_entries(
        &mut self,
        entries: BTreeMap<String, Option<String>>,
        conditions: &BTreeMap<String, Condition>,
        own: &OwnEntries,
    ) -> Result<(), kube::Error> {
        // entries of this node in objects now unrelated to it (written by this run, or left by
        // an earlier one): give them up
        let mut all = entries.clone();
        for name in self.config_entries_written.keys().cloned().chain(own.names()) {
            all.entry(name).or_insert(None);
        }
        let now = Instant::now();
        let mut writes = Vec::new();
        for (name, entry) in all {
            let merged = entries.contains_key(&name);
            let status = object_status(&self.node, self.object_status, merged, entry.as_deref(), conditions.get(&name));
            let written = self.config_entries_written.get(&name);
            // nothing to say where nothing was said is no write (with `--object-status
            // problems`, that is every object that is fine on this node)
            let nothing = status == json!({}) && written.is_none() && !own.contains(&name);
            if written == Some(&status) || nothing {
                self.config_pace.settled(&name);
            } else if let Some(w) = self.config_pace.offer(name.clone(), (status, merged), now) {
                writes.push((name, w));
            }
        }
        self.write_entries(writes, own, now).await
    }

    /// Writes these entries, several at once: after a burst of new objects, one write after
    /// the other would hold the next apply for as many round trips.
    async fn write_entries(&mut self, writes: Vec<(String, (serde_json::Value, bool))>, own: &OwnEntries, now: Instant) -> Result<(), kube::Error> {
        for (name, w) in &writes {
            self.config_pace.attempt(name.clone(), w.clone(), now);
        }
        let api: Api<FRRConfiguration> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = self.pp();
        let results: Vec<(String, serde_json::Value, bool, Result<(), kube::Error>)> = futures::stream::iter(writes)
            .map(|(name, (status, merged))| {
                let (api, pp) = (&api, &pp);
                async move {
                    // nothing to say: an apply that names no field gives up this node's fields
                    // (with `"status": {}` it would own the status map itself, which is a write)
                    let obj = if status == json!({}) {
                        json!({"apiVersion": API_VERSION, "kind": "FRRConfiguration"})
                    } else {
                        json!({"apiVersion": API_VERSION, "kind": "FRRConfiguration", "status": status})
                    };
                    let r = match api.patch_status(&name, pp, &Patch::Apply(&obj)).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(e)) if e.code == 404 => {
                            // deleted: nothing left to give up there
                            own.forget(&name);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    };
                    (name, status, merged, r)
                }
            })
            .buffer_unordered(STATUS_WRITES_AT_ONCE)
            .collect()
            .await;
        let mut first_error = None;
        for (name, status, merged, r) in results {
            match r {
                Ok(()) => {
                    self.config_pace.settled(&name);
                    if status == json!({}) && !merged {
                        self.config_entries_written.remove(&name);
                    } else {
                        self.config_entries_written.insert(name, status);
                    }
                }
                // it waits as its own retry
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let written = &self.config_entries_written;
        self.config_pace.retain(|name| written.contains_key(name));
        first_error.map_or(Ok(()), Err)
    }

    /// When a paced write is due (None: nothing waits).
    pub fn next_flush(&self) -> Option<Instant> {
        [self.node_pace.next_due(), self.config_pace.next_due()].into_iter().flatten().min()
    }

    /// Writes what waited and whose interval has ended at `now` (`all`: everything that waits,
    /// as the agent stops).
    pub async fn flush(&mut self, now: Instant, all: bool, own: &OwnEntries) -> Result<(), kube::Error> {
        let (node, entries) = if all { (self.node_pace.all(), self.config_pace.all()) } else { (self.node_pace.due(now), self.config_pace.due(now)) };
        let mut first_error = None;
        for ((), (uid, status)) in node {
            if self.node_state_written.as_ref() != Some(&status) {
                if let Err(e) = self.write_node_state(uid, status, now).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Err(e) = self.write_entries(entries, own, now).await {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One BGPSessionState per session of this node, written only when its status differs
    /// from the one the watch of this node's session states (`store`) holds; those in the
    /// store that FRR no longer has (also from a previous run) are deleted. No LIST, no GET.
    pub async fn sessions(
        &mut self,
        node_uid: &str,
        neighbors: &[BgpNeighbor],
        store: &Reader<SessionEntry>,
        now: jiff::Timestamp,
    ) -> Result<usize, kube::Error> {
        let api: Api<BGPSessionState> = Api::namespaced(self.client.clone(), &self.namespace);
        let existing: BTreeMap<String, Option<BGPSessionStateStatus>> = store.state().iter().map(|e| (e.name.clone(), e.value.status.clone())).collect();
        let mut desired: BTreeMap<String, (&BgpNeighbor, BGPSessionStateStatus)> = BTreeMap::new();
        for n in neighbors {
            desired.insert(session_name(&self.node, api_vrf(&n.vrf), &n.peer), (n, session_status(&self.node, n, now)));
        }
        let mut writes = 0;
        for (name, (n, status)) in &desired {
            // what the API server holds, as watched; right after a write the watch may not have
            // delivered it yet: then what was written
            let known = match existing.get(name) {
                Some(s) => s.clone(),
                None => self.sessions_written.get(name).cloned(),
            };
            let status = keep_established_since(known.as_ref(), status.clone());
            if known.as_ref() == Some(&status) {
                continue;
            }
            if !existing.contains_key(name) && !self.sessions_written.contains_key(name) {
                let obj = json!({"apiVersion": API_VERSION, "kind": "BGPSessionState", "metadata": {"name": name, "labels": {
                    LABEL_NODE: self.node, LABEL_PEER: peer_label(&n.peer), LABEL_VRF: api_vrf(&n.vrf)}, "ownerReferences": self.owner(node_uid)}, "spec": {}});
                api.patch(name, &self.pp(), &Patch::Apply(&obj)).await?;
            }
            let obj = json!({"apiVersion": API_VERSION, "kind": "BGPSessionState", "status": status});
            api.patch_status(name, &self.pp(), &Patch::Apply(&obj)).await?;
            self.sessions_written.insert(name.clone(), status);
            writes += 1;
        }
        self.sessions_written.retain(|name, _| desired.contains_key(name));
        // sessions of this node that FRR no longer has; each deleted once (until the watch
        // shows it gone)
        self.sessions_deleted.retain(|name| existing.contains_key(name));
        for name in existing.keys() {
            if !desired.contains_key(name) && self.sessions_deleted.insert(name.clone()) {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        self.sessions_deleted.remove(name);
                        return Err(e);
                    }
                }
                writes += 1;
            }
        }
        Ok(writes)
    }
}

/// An uptime read at another moment may round a second or two off: keep the time known.
fn keep_established_since(known: Option<&BGPSessionStateStatus>, mut status: BGPSessionStateStatus) -> BGPSessionStateStatus {
    let t = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<jiff::Timestamp>().ok()).map(|t| t.as_second());
    if let Some(old) = known {
        if t(&old.established_since).zip(t(&status.established_since)).is_some_and(|(a, b)| (a - b).abs() <= 2) {
            status.established_since = old.established_since.clone();
        }
    }
    status
}

/// An object's events are sent at most this often (its status always holds the latest).
pub const EVENT_INTERVAL: Duration = Duration::from_secs(10);
/// Kubernetes limits an event's note to 1 kB.
const NOTE_MAX: usize = 1000;

/// Sends the Events of per-object isolation on FRRConfigurations, remembering what it sent.
pub struct Events {
    recorder: Recorder,
    /// Per object: the decision last seen for events, and when an event was last sent.
    sent: BTreeMap<String, (String, Option<Instant>)>,
}

impl Events {
    pub fn new(client: Client, node: &str) -> Events {
        let reporter = Reporter { controller: "frr-composer".into(), instance: Some(node.to_string()) };
        Events { recorder: Recorder::new(client, reporter), sent: BTreeMap::new() }
    }

    /// Events for decisions that changed: a Warning when a generation is refused, a Normal
    /// event when an object that was refused applies again. Nothing for objects that simply
    /// apply, nothing twice for the same decision, and at most one per object per interval.
    pub async fn publish(&mut self, decisions: &[ObjectDecision], configs: &[FRRConfiguration]) {
        let now = Instant::now();
        for d in decisions {
            let name = d.obj.name.to_string();
            let applied = matches!(d.decision, Decision::Applied);
            let key = if applied { "Applied".to_string() } else { d.message() };
            match self.sent.get(&name) {
                Some((k, _)) if *k == key => continue,
                Some((_, Some(at))) if now.duration_since(*at) < EVENT_INTERVAL => continue,
                None if applied => {
                    self.sent.insert(name, (key, None));
                    continue;
                }
                _ => {}
            }
            let note = Some(truncate(&redact(&d.message())));
            let event = if applied {
                Event { type_: EventType::Normal, reason: "Applied".into(), note, action: "Apply".into(), secondary: None }
            } else {
                Event { type_: EventType::Warning, reason: d.reason().into(), note, action: "Apply".into(), secondary: None }
            };
            let Some(obj) =
                configs.iter().find(|c| c.metadata.name.as_deref() == Some(&*d.obj.name) && c.metadata.namespace.as_deref() == Some(&*d.obj.namespace))
            else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), self.recorder.publish(&event, &obj.object_ref(&()))).await {
                Ok(Ok(())) => {
                    self.sent.insert(name, (key, Some(now)));
                }
                Ok(Err(e)) => tracing::warn!(error = %e, object = %d.obj, "publishing an event"),
                Err(_) => {
                    // the API server is away: the rest waits for the next round
                    tracing::warn!(object = %d.obj, "publishing an event timed out");
                    break;
                }
            }
        }
        self.sent.retain(|k, _| decisions.iter().any(|d| *d.obj.name == **k));
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= NOTE_MAX {
        return s.to_string();
    }
    let mut end = NOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Reads BGP and BFD state from FRR every poll interval (local vtysh) for the metrics and the
/// BGPSessionStates, which are written only when a session changed. Started once the stores
/// are ready.
/// A session's state, with its count of updates and prefixes one way: its routes that way are
/// read again when this changes.
type Mark = (String, u64, u64);

fn marks(n: &BgpNeighbor) -> [Mark; 2] {
    [(n.state.clone(), n.updates_sent, n.prefixes_sent), (n.state.clone(), n.updates_received, n.prefixes_accepted)]
}

/// One session's routes as last read: what it sent (the listed part) and what it accepted (all
/// of it, with each path's next hops), each with the mark it was read at.
#[derive(Default)]
struct Cached {
    advertised: Option<(Mark, Vec<String>)>,
    accepted: Option<(Mark, Vec<PathRoute>)>,
}

/// A VRF's installed BGP routes, the marks of its sessions when they were read, whether they
/// were read a second time at those marks (the routing table installs a route a moment after
/// BGP accepts it), and how many polls ago.
struct Table {
    marks: Vec<(String, Mark)>,
    confirmed: bool,
    installed: BTreeMap<String, Installed>,
    age: u32,
}

/// A VRF's installed routes are read again after this many polls even when no session changed
/// (60 s at the default `--poll-interval`): a static, kernel or connected route added or removed
/// on the node changes what is installed without any BGP update.
pub const INSTALLED_REFRESH_POLLS: u32 = 30;

/// Each session's routes (by VRF and peer) and each VRF's installed routes, as last read from
/// FRR. A session's routes are read again when its updates or prefixes that way change; a
/// VRF's installed routes when any of its sessions' received side changes, once more on the
/// poll after, and every [`INSTALLED_REFRESH_POLLS`] polls.
#[derive(Default)]
pub struct RouteCache {
    sessions: BTreeMap<(String, String), Cached>,
    tables: BTreeMap<String, Table>,
}

/// Where [`RouteCache::fill`] reads from: FRR, or a test's answers.
pub trait RouteSource {
    /// The routes of session `n` one way, all of them, sorted.
    fn routes(&mut self, n: &BgpNeighbor, which: SessionRoutes) -> Option<Vec<PathRoute>>;
    /// The BGP routes installed in `vrf`.
    fn installed(&mut self, vrf: &str) -> Option<BTreeMap<String, Installed>>;
}

impl RouteSource for FrrLocation {
    fn routes(&mut self, n: &BgpNeighbor, which: SessionRoutes) -> Option<Vec<PathRoute>> {
        state::session_routes(self, n, which).ok()
    }
    fn installed(&mut self, vrf: &str) -> Option<BTreeMap<String, Installed>> {
        state::installed_routes(self, vrf).ok()
    }
}

impl RouteCache {
    /// Fills each neighbor's `advertised`, `accepted`, `installed` and `not_installed`: none
    /// unless Established, else from the cache or read from `src` when they may have changed.
    /// Sessions and VRFs FRR no longer has are forgotten.
    pub fn fill(&mut self, neighbors: &mut [BgpNeighbor], src: &mut impl RouteSource) {
        let mut kept = BTreeMap::new();
        for n in neighbors.iter_mut() {
            if n.state != "Established" {
                (n.advertised, n.accepted, n.installed, n.not_installed) = (Some(Vec::new()), Some(Vec::new()), Some(0), Some(Vec::new()));
                continue;
            }
            let key = (n.vrf.clone(), n.peer.clone());
            let mut c = self.sessions.remove(&key).unwrap_or_default();
            let [sent, received] = marks(n);
            c.advertised = match c.advertised.take() {
                Some((m, l)) if m == sent => Some((m, l)),
                _ => src.routes(n, SessionRoutes::Advertised).map(|r| (sent, r.into_iter().take(MAX_LISTED).map(|(p, _)| p).collect())),
            };
            c.accepted = match c.accepted.take() {
                Some((m, l)) if m == received => Some((m, l)),
                _ => src.routes(n, SessionRoutes::Accepted).map(|r| (received, r)),
            };
            n.advertised = c.advertised.as_ref().map(|(_, l)| l.clone());
            n.accepted = c.accepted.as_ref().map(|(_, l)| l.iter().take(MAX_LISTED).map(|(p, _)| p.clone()).collect());
            kept.insert(key, c);
        }
        self.sessions = kept;

        // the installed routes of each VRF where a session holds accepted routes
        let mut vrf_marks: BTreeMap<&str, Vec<(String, Mark)>> = BTreeMap::new();
        for n in neighbors.iter() {
            vrf_marks.entry(&n.vrf).or_default().push((n.peer.clone(), marks(n)[1].clone()));
        }
        let mut tables = BTreeMap::new();
        for (vrf, m) in vrf_marks {
            let holds = self.sessions.iter().any(|((v, _), c)| v == vrf && c.accepted.as_ref().is_some_and(|(_, l)| !l.is_empty()));
            if !holds {
                continue;
            }
            let table = match self.tables.remove(vrf) {
                Some(t) if t.marks == m && t.confirmed && t.age + 1 < INSTALLED_REFRESH_POLLS => Some(Table { age: t.age + 1, ..t }),
                Some(t) if t.marks == m => src.installed(vrf).map(|installed| Table { marks: m, confirmed: true, installed, age: 0 }).or(Some(t)),
                _ => src.installed(vrf).map(|installed| Table { marks: m, confirmed: false, installed, age: 0 }),
            };
            if let Some(t) = table {
                tables.insert(vrf.to_string(), t);
            }
        }
        self.tables = tables;

        for n in neighbors.iter_mut().filter(|n| n.state == "Established") {
            let accepted = self.sessions.get(&(n.vrf.clone(), n.peer.clone())).and_then(|c| c.accepted.as_ref()).map(|(_, l)| l);
            (n.installed, n.not_installed) = match (accepted, self.tables.get(&n.vrf)) {
                (Some(l), _) if l.is_empty() => (Some(0), Some(Vec::new())),
                (Some(l), Some(t)) => {
                    let (yes, no): (Vec<&PathRoute>, Vec<&PathRoute>) = l.iter().partition(|r| state::is_installed(&t.installed, &n.peer, r));
                    (Some(yes.len() as u64), Some(no.into_iter().take(MAX_LISTED).map(|(p, _)| p.clone()).collect()))
                }
                _ => (None, None),
            };
        }
    }
}

pub fn spawn_session_poller(interval: Duration, loc: FrrLocation, mut writer: StatusWriter, watches: Watches, metrics: Metrics) {
    tokio::spawn(async move {
        let mut cache = RouteCache::default();
        loop {
            tokio::time::sleep(interval).await;
            let l = loc.clone();
            let mut c = std::mem::take(&mut cache);
            let read = tokio::task::spawn_blocking(move || {
                let mut n = state::bgp_neighbors(&l)?;
                c.fill(&mut n, &mut l.clone());
                let b = state::bfd_peers(&l).unwrap_or_default();
                let counters = l.show_json("show bfd peers counters json").map(|v| super::metrics::parse_bfd_counters(&v)).unwrap_or_default();
                Ok::<_, crate::frr::vtysh::FrrError>((n, b, counters, c))
            })
            .await;
            let Ok(Ok((neighbors, bfd, counters, c))) = read else { continue };
            cache = c;
            {
                let mut s = metrics.frr.0.lock().unwrap_or_else(|e| e.into_inner());
                s.neighbors = neighbors.clone();
                s.bfd = bfd;
                s.bfd_counters = counters;
            }
            let Some(uid) = watches.node_uid() else { continue };
            match tokio::time::timeout(API_TIMEOUT, writer.sessions(&uid, &neighbors, &watches.sessions, jiff::Timestamp::now())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(category = "api", error = %e, "writing BGPSessionStates"),
                Err(_) => tracing::warn!(category = "api", "writing BGPSessionStates timed out"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_status_counts_prefixes_both_ways() {
        let v = serde_json::json!({"default": {"192.0.2.1": {"bgpState": "Established", "bgpTimerUpMsec": 5000,
            "addressFamilyInfo": {"ipv4Unicast": {"acceptedPrefixCounter": 2, "prefixReceivedCounter": 3, "sentPrefixCounter": 12}}}}});
        let n = &crate::frr::state::parse_bgp_neighbors(&v)[0];
        let s = session_status("wk1", n, jiff::Timestamp::from_second(1_800_000_000).unwrap());
        assert_eq!((s.prefixes_sent, s.prefixes_received, s.prefixes_accepted), (Some(12), Some(3), Some(2)));
        assert_eq!(s.established_since.as_deref(), Some("2027-01-15T07:59:55Z"), "5 s of uptime before now");
        assert_eq!((s.node.as_deref(), s.vrf.as_deref()), (Some("wk1"), Some("")));
    }

    /// Answers for [`RouteCache::fill`], recording what was asked.
    #[derive(Default)]
    struct Answers {
        sent: u64,
        received: u64,
        /// the prefixes the routing table installed (via 192.0.2.1)
        fib: Vec<&'static str>,
        reads: Vec<&'static str>,
    }

    impl RouteSource for Answers {
        fn routes(&mut self, _: &BgpNeighbor, which: SessionRoutes) -> Option<Vec<PathRoute>> {
            let hop = std::collections::BTreeSet::from(["192.0.2.1".to_string()]);
            Some(match which {
                SessionRoutes::Advertised => {
                    self.reads.push("advertised");
                    vec![(format!("198.51.100.{}/32", self.sent), Default::default())]
                }
                SessionRoutes::Accepted => {
                    self.reads.push("accepted");
                    (1..=self.received).map(|i| (format!("203.0.113.{i}/32"), hop.clone())).collect()
                }
            })
        }
        fn installed(&mut self, vrf: &str) -> Option<BTreeMap<String, Installed>> {
            assert_eq!(vrf, "default");
            self.reads.push("installed");
            let via = Installed { addresses: ["192.0.2.1".to_string()].into(), ..Default::default() };
            Some(self.fib.iter().map(|p| (p.to_string(), via.clone())).collect())
        }
    }

    /// A session's routes are read from FRR when it comes up and, each way, when its updates
    /// or prefixes that way change, not on every poll; a session that is down carries nothing.
    /// The installed routes are read when what a session received changes, and once more on
    /// the next poll (the routing table installs a moment after BGP accepts).
    #[test]
    fn session_routes_are_read_only_when_the_session_changes() {
        let v = |state: &str, sent: u64, received: u64| {
            serde_json::json!({"default": {"192.0.2.1": {"bgpState": state, "messageStats": {"updatesSent": sent, "updatesRecv": received},
                "addressFamilyInfo": {"ipv4Unicast": {"sentPrefixCounter": sent, "acceptedPrefixCounter": received}}}}})
        };
        let mut cache = RouteCache::default();
        let mut src = Answers::default();
        let mut poll = |state: &str, sent: u64, received: u64, fib: &[&'static str], src: &mut Answers| {
            (src.sent, src.received, src.fib) = (sent, received, fib.to_vec());
            src.reads.clear();
            let mut n = crate::frr::state::parse_bgp_neighbors(&v(state, sent, received));
            cache.fill(&mut n, src);
            let n = n.remove(0);
            (
                n.advertised.unwrap(),
                n.accepted.unwrap(),
                n.installed,
                n.not_installed.unwrap_or_default(),
                src.reads.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            )
        };
        let s = |l: &[&str]| l.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let (a1, r1) = (s(&["198.51.100.1/32"]), s(&["203.0.113.1/32"]));
        // up, the routing table not yet there: read, and read again on the next poll
        assert_eq!(poll("Established", 1, 1, &[], &mut src), (a1.clone(), r1.clone(), Some(0), r1.clone(), s(&["advertised", "accepted", "installed"])));
        assert_eq!(poll("Established", 1, 1, &["203.0.113.1/32"], &mut src), (a1.clone(), r1.clone(), Some(1), vec![], s(&["installed"])));
        assert_eq!(poll("Established", 1, 1, &["203.0.113.1/32"], &mut src), (a1.clone(), r1.clone(), Some(1), vec![], vec![]), "all from the cache");
        let a2 = s(&["198.51.100.2/32"]);
        assert_eq!(poll("Established", 2, 1, &["203.0.113.1/32"], &mut src), (a2.clone(), r1.clone(), Some(1), vec![], s(&["advertised"])), "an update sent");
        // two received, one installed: one listed as not installed
        let r2 = s(&["203.0.113.1/32", "203.0.113.2/32"]);
        let got = poll("Established", 2, 2, &["203.0.113.1/32"], &mut src);
        assert_eq!(got, (a2.clone(), r2.clone(), Some(1), s(&["203.0.113.2/32"]), s(&["accepted", "installed"])));
        assert_eq!(poll("Established", 2, 2, &["203.0.113.1/32"], &mut src).4, s(&["installed"]), "confirmed once");
        assert!(poll("Established", 2, 2, &["203.0.113.1/32"], &mut src).4.is_empty());
        // the routing table changes with no BGP update (a kernel route removed): seen within
        // the refresh
        let refreshed = (1..INSTALLED_REFRESH_POLLS).find(|_| poll("Established", 2, 2, &["203.0.113.1/32", "203.0.113.2/32"], &mut src).2 == Some(2));
        assert_eq!(refreshed, Some(INSTALLED_REFRESH_POLLS - 1));
        assert_eq!(poll("Active", 2, 2, &[], &mut src), (vec![], vec![], Some(0), vec![], vec![]), "down: nothing either way");
        let got = poll("Established", 2, 2, &["203.0.113.1/32", "203.0.113.2/32"], &mut src);
        assert_eq!(got, (a2, r2, Some(2), vec![], s(&["advertised", "accepted", "installed"])), "up again: read");
        let n = &crate::frr::state::parse_bgp_neighbors(&v("Established", 1, 1))[0];
        assert_eq!(n.families, ["ipv4Unicast"]);
    }

    /// A session that accepted more than the list holds: every route is counted, at most 100
    /// are listed each way.
    #[test]
    fn installed_counts_every_route_and_lists_at_most_100() {
        let v = serde_json::json!({"default": {"192.0.2.1": {"bgpState": "Established", "messageStats": {"updatesRecv": 3},
            "addressFamilyInfo": {"ipv4Unicast": {"acceptedPrefixCounter": 250}}}}});
        let mut n = crate::frr::state::parse_bgp_neighbors(&v);
        let mut src = Answers { received: 250, fib: vec!["203.0.113.1/32", "203.0.113.2/32"], ..Default::default() };
        RouteCache::default().fill(&mut n, &mut src);
        assert_eq!(n[0].accepted.as_ref().map(Vec::len), Some(MAX_LISTED));
        assert_eq!(n[0].installed, Some(2));
        let not = n[0].not_installed.clone().unwrap();
        assert_eq!((not.len(), not[0].as_str()), (MAX_LISTED, "203.0.113.3/32"));
    }

    #[test]
    fn object_status_all_or_problems_only() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let cond = |status: &str, reason: &str| Condition {
            type_: "wk3/Applied".into(),
            status: status.into(),
            reason: reason.into(),
            message: "m".into(),
            observed_generation: Some(2),
            last_transition_time: Time(jiff::Timestamp::from_second(1_700_000_000).unwrap()),
        };
        let (ok, held) = (cond("True", "Applied"), cond("False", "HeldAtLastGood"));
        let all = ObjectStatus::All;
        let problems = ObjectStatus::Problems;
        // applied here
        let s = object_status("wk3", all, true, None, Some(&ok));
        assert_eq!(s["appliedOn"], json!(["wk3"]));
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(object_status("wk3", problems, true, None, Some(&ok)), json!({}), "nothing to report");
        // refused here: both modes report it
        for mode in [all, problems] {
            let s = object_status("wk3", mode, true, Some("refused: x"), Some(&held));
            assert_eq!(s["errors"], json!([{"node": "wk3", "message": "refused: x"}]), "{mode:?}");
            assert_eq!(s["conditions"][0]["reason"], "HeldAtLastGood", "{mode:?}");
            assert!(s.get("appliedOn").is_none());
        }
        // no longer merged here: whatever was written is given up
        for mode in [all, problems] {
            assert_eq!(object_status("wk3", mode, false, None, Some(&held)), json!({}));
        }
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(peer_label("2001:db8::3"), "2001-0db8-0000-0000-0000-0000-0000-0003");
        assert_eq!(peer_label("192.0.2.1"), "192.0.2.1");
        assert_eq!(session_name("wk3", "", "192.0.2.1"), "wk3-default-192.0.2.1");
        assert_eq!(session_name("wk3", "red", "Eth_0"), "wk3-red-eth-0");
    }

    #[test]
    fn an_uptime_a_second_off_is_not_a_change() {
        let s = |since: &str| BGPSessionStateStatus { established_since: Some(since.into()), ..Default::default() };
        let known = s("2026-01-01T00:00:10Z");
        assert_eq!(keep_established_since(Some(&known), s("2026-01-01T00:00:11Z")), known);
        assert_eq!(keep_established_since(Some(&known), s("2026-01-01T00:01:11Z")), s("2026-01-01T00:01:11Z"), "a new session");
        assert_eq!(keep_established_since(None, s("2026-01-01T00:00:11Z")), s("2026-01-01T00:00:11Z"));
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let s = "é".repeat(800);
        let t = truncate(&s);
        assert!(t.len() <= NOTE_MAX + 3 && t.ends_with("..."));
    }
}
