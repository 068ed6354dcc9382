//! What the agent reads from the API server, kept in the reflector stores of `crate::watch`:
//! its namespace's FRRConfigurations and Secrets, the FRRK8sConfiguration named `config`, its
//! own Node (metadata only: labels and uid) and its own BGPSessionStates (label-selected).
//! Each store holds only what the agent derives from an object. After the initial lists the
//! agent sends watches only: no LIST or GET at steady state. Each kind is described in one
//! place, an impl of [`WatchedKind`]: where it is watched, what is kept of an object, and
//! which changes wake a reconcile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::core::SelectorExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{BGPSessionState, BGPSessionStateStatus, FRRConfiguration, FRRK8sConfiguration, LogLevel};
use crate::core::SecretEntry;
use crate::watch::{reflect_where, typed_config, Changes, Entry, Reader, Refresh, WatchErrors};

/// A FRRConfiguration as the agent keeps it. Every object of the namespace is kept (a change
/// of the node's labels can select any of them, and must apply at once), but at 3,000 nodes
/// nearly all of them select other nodes: those are kept compact, a third of the typed size.
/// Values are shared (every snapshot, the hold-down and the isolation record hold the same
/// copy).
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigEntry {
    /// Selected this node's labels when it was read (or they were not known yet): typed.
    Typed(Arc<FRRConfiguration>),
    /// Did not select this node's labels when it was read.
    Compact(Arc<Compact>),
    /// Could not be read: the field and the reason.
    Malformed(String),
}

/// A FRRConfiguration kept without its typed form: what selecting and holding it needs, and
/// the object as JSON, read again if the node's labels come to match its selector.
#[derive(Debug, PartialEq)]
pub struct Compact {
    /// Its nodeSelector, parsed (valid: an invalid one selects every node, to be reported).
    selector: kube::core::Selector,
    advertises: bool,
    json: Box<str>,
}

impl ConfigEntry {
    /// From a typed object: typed if it may select a node with `labels` (or they are not
    /// known), compact otherwise.
    pub fn new(c: FRRConfiguration, labels: Option<&BTreeMap<String, String>>) -> ConfigEntry {
        let selector = match (labels, c.spec.node_selector.as_ref().map(crate::core::parse_selector)) {
            (Some(labels), Some(Ok(s))) if !s.matches(labels) => s,
            _ => return ConfigEntry::Typed(Arc::new(c)),
        };
        match serde_json::to_string(&c) {
            Ok(json) => ConfigEntry::Compact(Arc::new(Compact { selector, advertises: advertises(&c), json: json.into() })),
            Err(_) => ConfigEntry::Typed(Arc::new(c)),
        }
    }

    /// Whether it may be merged on a node with these labels (a malformed one, or one with an
    /// invalid selector, counts: it is reported).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            ConfigEntry::Typed(c) => selector_admits(c.spec.node_selector.as_ref(), labels),
            ConfigEntry::Compact(c) => c.selector.matches(labels),
            ConfigEntry::Malformed(_) => true,
        }
    }

    /// The typed object (a compact one is read again), or why it could not be read.
    pub fn typed(&self) -> Result<Arc<FRRConfiguration>, String> {
        match self {
            ConfigEntry::Typed(c) => Ok(c.clone()),
            ConfigEntry::Compact(c) => serde_json::from_str(&c.json).map(Arc::new).map_err(|e| format!("reading the kept copy: {e}")),
            ConfigEntry::Malformed(e) => Err(e.clone()),
        }
    }

    /// Whether any of its routers advertises a prefix (for the deletion hold-down).
    pub fn advertises(&self) -> bool {
        match self {
            ConfigEntry::Typed(c) => advertises(c),
            ConfigEntry::Compact(c) => c.advertises,
            ConfigEntry::Malformed(_) => false,
        }
    }

    /// The form to keep now that the node has these labels: a compact object that selects
    /// them is typed again, a typed one that does not is made compact (None: keep as it is).
    pub fn refresh(&self, labels: Option<&BTreeMap<String, String>>) -> Option<ConfigEntry> {
        match self {
            ConfigEntry::Compact(_) if labels.is_none_or(|l| self.selects(l)) => Some(match self.typed() {
                Ok(c) => ConfigEntry::Typed(c),
                Err(e) => ConfigEntry::Malformed(e),
            }),
            ConfigEntry::Typed(c) if labels.is_some_and(|l| !self.selects(l)) => Some(ConfigEntry::new((**c).clone(), labels)),
            _ => None,
        }
    }
}

fn advertises(c: &FRRConfiguration) -> bool {
    c.spec.bgp.routers.iter().any(|r| !r.prefixes.is_empty())
}

impl super::holddown::Advertisement for ConfigEntry {
    fn advertises(&self) -> bool {
        ConfigEntry::advertises(self)
    }

    /// Only typed objects are compared: a compact one does not select the node, a malformed
    /// one is reported; either change applies at once.
    fn covers(&self, earlier: &Self) -> bool {
        match (self, earlier) {
            (ConfigEntry::Typed(now), ConfigEntry::Typed(before)) => advertised(now).is_superset(&advertised(before)),
            _ => true,
        }
    }

    fn keeping(&self, earlier: &Self) -> Option<Self> {
        match (self, earlier) {
            (ConfigEntry::Typed(now), ConfigEntry::Typed(before)) => keeping(now, before).map(|c| ConfigEntry::Typed(Arc::new(c))),
            _ => None,
        }
    }
}

/// A prefix written as the API takes it, in one spelling (`10.0.0.0/24`).
fn canonical_prefix(p: &str) -> String {
    p.parse::<ipnet::IpNet>().map(|n| n.to_string()).unwrap_or_else(|_| p.to_string())
}

fn peer_of(n: &crate::api::Neighbor) -> Option<String> {
    match (n.address.as_deref(), n.interface.as_deref()) {
        (Some(a), _) if !a.is_empty() => Some(a.parse::<std::net::IpAddr>().map(|a| a.to_string()).unwrap_or_else(|_| a.to_string())),
        (_, Some(i)) if !i.is_empty() => Some(i.to_string()),
        _ => None,
    }
}

/// What an object advertises, as (VRF, neighbor or None for the router, prefix or `*` for all
/// of the router's).
fn advertised(c: &FRRConfiguration) -> BTreeSet<(String, Option<String>, String)> {
    let mut out = BTreeSet::new();
    for r in &c.spec.bgp.routers {
        let vrf = crate::core::convert::canonical_vrf(r.vrf.as_deref()).to_string();
        for p in &r.prefixes {
            out.insert((vrf.clone(), None, canonical_prefix(p)));
        }
        for n in &r.neighbors {
            let Some(peer) = peer_of(n) else { continue };
            let allowed = &n.to_advertise.allowed;
            if allowed.mode == crate::api::AllowMode::All {
                out.insert((vrf.clone(), Some(peer.clone()), "*".into()));
            }
            for p in &allowed.prefixes {
                out.insert((vrf.clone(), Some(peer.clone()), canonical_prefix(p)));
            }
        }
    }
    out
}

/// `now` plus what `before` advertised and `now` withdraws: router prefixes, neighbors, a
/// neighbor's prefixes with their communities, local preferences and AS-path prepends. None
/// when a router's or a neighbor's ASN changed (the two cannot be one configuration).
fn keeping(now: &FRRConfiguration, before: &FRRConfiguration) -> Option<FRRConfiguration> {
    let mut out = now.clone();
    for rb in &before.spec.bgp.routers {
        let vrf = crate::core::convert::canonical_vrf(rb.vrf.as_deref());
        let Some(ro) = out.spec.bgp.routers.iter_mut().find(|r| crate::core::convert::canonical_vrf(r.vrf.as_deref()) == vrf) else {
            out.spec.bgp.routers.push(rb.clone());
            continue;
        };
        if ro.asn != rb.asn {
            return None;
        }
        let have: BTreeSet<String> = ro.prefixes.iter().map(|p| canonical_prefix(p)).collect();
        ro.prefixes.extend(rb.prefixes.iter().filter(|p| !have.contains(&canonical_prefix(p))).cloned());
        for nb in &rb.neighbors {
            let peer = peer_of(nb);
            let Some(no) = ro.neighbors.iter_mut().find(|n| peer.is_some() && peer_of(n) == peer) else {
                ro.neighbors.push(nb.clone());
                continue;
            };
            if (no.asn, no.dynamic_asn) != (nb.asn, nb.dynamic_asn) {
                return None;
            }
            let (o, b) = (&mut no.to_advertise, &nb.to_advertise);
            if b.allowed.mode == crate::api::AllowMode::All {
                o.allowed.mode = crate::api::AllowMode::All;
            }
            let have: BTreeSet<String> = o.allowed.prefixes.iter().map(|p| canonical_prefix(p)).collect();
            let gone: BTreeSet<String> = b.allowed.prefixes.iter().map(|p| canonical_prefix(p)).filter(|p| !have.contains(p)).collect();
            if gone.is_empty() {
                continue;
            }
            o.allowed.prefixes.extend(b.allowed.prefixes.iter().filter(|p| gone.contains(&canonical_prefix(p))).cloned());
            let only_gone = |ps: &[String]| ps.iter().filter(|p| gone.contains(&canonical_prefix(p))).cloned().collect::<Vec<_>>();
            for c in &b.with_community {
                let prefixes = only_gone(&c.prefixes);
                if !prefixes.is_empty() {
                    o.with_community.push(crate::api::CommunityPrefixes { prefixes, ..c.clone() });
                }
            }
            for l in &b.with_local_pref {
                let prefixes = only_gone(&l.prefixes);
                if !prefixes.is_empty() {
                    o.with_local_pref.push(crate::api::LocalPrefPrefixes { prefixes, ..l.clone() });
                }
            }
            for a in &b.with_as_path_prepend {
                let prefixes = only_gone(&a.prefixes);
                if !prefixes.is_empty() {
                    o.with_as_path_prepend.push(crate::api::AsPathPrependPrefixes { prefixes, ..a.clone() });
                }
            }
        }
    }
    Some(out)
}

fn selector_admits(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_none_or(|sel| crate::core::selector_matches(sel, labels) != Ok(false))
}

/// The node's labels as last read (None until its Node has been read).
type Labels = tokio::sync::watch::Receiver<Option<BTreeMap<String, String>>>;

/// The FRRConfigurations whose status holds an entry of this node, as last read (also one
/// left by an earlier run of the agent): those it has something to give up in.
#[derive(Clone, Default)]
pub struct OwnEntries(Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>);

impl OwnEntries {
    pub fn contains(&self, name: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(name)
    }
    pub fn names(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
    /// The object is gone (a deleted object's last state still names the node).
    pub fn forget(&self, name: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }
    /// Records what `o`'s status holds of `node`.
    fn read(&self, o: &DynamicObject, node: &str) {
        let status = &o.data["status"];
        let listed = |field: &str, key: Option<&str>, want: &str| {
            status[field].as_array().is_some_and(|a| a.iter().any(|v| key.map_or(v, |k| &v[k]).as_str() == Some(want)))
        };
        let has = listed("appliedOn", None, node) || listed("errors", Some("node"), node) || listed("conditions", Some("type"), &format!("{node}/Applied"));
        let name = o.metadata.name.clone().unwrap_or_default();
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if has {
            set.insert(name);
        } else {
            set.remove(&name);
        }
    }
}

/// Objects per page of the initial lists (and re-lists) of FRRConfigurations and Secrets.
const LIST_PAGE: u32 = 100;

/// Labels and uid of the agent's Node: only these matter (heartbeats change nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    pub labels: BTreeMap<String, String>,
    pub uid: Option<String>,
}

/// A BGPSessionState as the agent keeps it: its status (the watch selects this node's by label).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionEntry {
    pub status: Option<BGPSessionStateStatus>,
}

/// One kind the agent watches, described in one place: where its objects are watched, what is
/// kept of each one, and which changes wake a reconcile. Adding a kind is one impl (and its
/// RBAC) and one `start` in [`Watches::start`]: the readiness wait and the watch errors follow
/// by themselves.
pub trait WatchedKind: Send + Sync + 'static {
    /// The object as it is watched (typed, metadata only, or untyped).
    type Object: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static;
    /// What the agent keeps of one object.
    type Kept: Clone + PartialEq + Send + Sync + 'static;
    /// The kind's name, in logs and in the readiness wait.
    const NAME: &'static str;
    /// Whether its changes wake the reconcile (false: only another reader looks at it).
    const WAKES: bool = true;
    /// Where its objects are watched, and which of them.
    fn watch(&self, client: Client) -> (Api<Self::Object>, watcher::Config);
    /// What to keep of an object.
    fn keep(&self, o: &Self::Object) -> Self::Kept;
    /// Whether a change from `old` to `new` (None: absent) wakes the reconcile.
    fn wakes(&self, _old: Option<&Self::Kept>, _new: Option<&Self::Kept>) -> bool {
        true
    }
    /// How the kept values follow the node's labels (see [`Refresh`]); None: they do not.
    fn refresh(&self) -> Option<LabelsRefresh<Self::Kept>> {
        None
    }
}

/// Kept values that follow the node's labels.
pub type LabelsRefresh<T> = Refresh<T, Option<BTreeMap<String, String>>>;

/// Lists in pages of 100 (kube's default is 500): what a page holds while it is read is the
/// agent's peak memory at start.
fn paged() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE)
}

/// The namespace's Secrets: the password entry of each.
struct Secrets {
    namespace: String,
}

impl WatchedKind for Secrets {
    type Object = Secret;
    type Kept = SecretEntry;
    const NAME: &'static str = "Secret";
    fn watch(&self, client: Client) -> (Api<Secret>, watcher::Config) {
        (Api::namespaced(client, &self.namespace), paged())
    }
    fn keep(&self, s: &Secret) -> SecretEntry {
        secret_entry(s)
    }
}

/// The agent's own Node, metadata only: its labels and uid (heartbeats change nothing). Its
/// labels are also sent to `labels`, for the FRRConfigurations' watch.
struct OwnNode {
    name: String,
    labels: tokio::sync::watch::Sender<Option<BTreeMap<String, String>>>,
}

impl WatchedKind for OwnNode {
    type Object = PartialObjectMeta<Node>;
    type Kept = NodeInfo;
    const NAME: &'static str = "Node";
    fn watch(&self, client: Client) -> (Api<PartialObjectMeta<Node>>, watcher::Config) {
        (Api::all(client), watcher::Config::default().fields(&format!("metadata.name={}", self.name)))
    }
    fn keep(&self, n: &PartialObjectMeta<Node>) -> NodeInfo {
        self.labels.send_if_modified(|l| {
            let new = l.as_ref() != Some(n.labels());
            if new {
                *l = Some(n.labels().clone());
            }
            new
        });
        NodeInfo { labels: n.labels().clone(), uid: n.metadata.uid.clone() }
    }
}

/// The namespace's FRRConfigurations, read untyped, so that one malformed object cannot stop
/// the watch; kept as [`ConfigEntry`] (compact when they select other nodes), and which of
/// them hold an entry of this node in their status is recorded in `own`.
struct Configs {
    namespace: String,
    node: String,
    labels: Labels,
    own: OwnEntries,
}

impl WatchedKind for Configs {
    type Object = DynamicObject;
    type Kept = ConfigEntry;
    const NAME: &'static str = "FRRConfiguration";
    fn watch(&self, client: Client) -> (Api<DynamicObject>, watcher::Config) {
        (Api::namespaced_with(client, &self.namespace, &ApiResource::erase::<FRRConfiguration>(&())), paged())
    }
    fn keep(&self, o: &DynamicObject) -> ConfigEntry {
        self.own.read(o, &self.node);
        config_entry(o, self.labels.borrow().as_ref())
    }
    /// A change to an object that selects this node neither before nor after it wakes nothing:
    /// 100 changes a second elsewhere in the namespace must not hold up this node's own (the
    /// reconcile re-reads everything, and a change of the node's labels wakes it).
    fn wakes(&self, old: Option<&ConfigEntry>, new: Option<&ConfigEntry>) -> bool {
        let labels = self.labels.borrow();
        let Some(labels) = labels.as_ref() else { return true };
        [old, new].into_iter().flatten().any(|c| c.selects(labels))
    }
    /// Objects that select other nodes are kept compact; when the labels change, the kept
    /// forms follow (gather reads a compact object that selects the node either way).
    fn refresh(&self) -> Option<LabelsRefresh<ConfigEntry>> {
        let labels = self.labels.clone();
        Some(Refresh { trigger: self.labels.clone(), with: Box::new(move |c: &ConfigEntry| c.refresh(labels.borrow().as_ref())) })
    }
}

/// The FRRK8sConfiguration named `config`: its log level.
struct Settings {
    namespace: String,
}

impl WatchedKind for Settings {
    type Object = FRRK8sConfiguration;
    type Kept = Option<LogLevel>;
    const NAME: &'static str = "FRRK8sConfiguration";
    fn watch(&self, client: Client) -> (Api<FRRK8sConfiguration>, watcher::Config) {
        (Api::namespaced(client, &self.namespace), watcher::Config::default().fields("metadata.name=config"))
    }
    fn keep(&self, c: &FRRK8sConfiguration) -> Option<LogLevel> {
        c.spec.log_level
    }
}

/// This node's BGPSessionStates (label-selected): their status, for the session writer only.
struct Sessions {
    namespace: String,
    node: String,
}

impl WatchedKind for Sessions {
    type Object = BGPSessionState;
    type Kept = SessionEntry;
    const NAME: &'static str = "BGPSessionState";
    const WAKES: bool = false;
    fn watch(&self, client: Client) -> (Api<BGPSessionState>, watcher::Config) {
        (Api::namespaced(client, &self.namespace), watcher::Config::default().labels(&format!("{}={}", crate::api::LABEL_NODE, self.node)))
    }
    fn keep(&self, s: &BGPSessionState) -> SessionEntry {
        SessionEntry { status: s.status.clone() }
    }
}

/// Waits for one store's first complete list.
type Readiness = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Starts the watches of the kinds given to `start`, and keeps what `ready` waits for.
struct Starter {
    client: Client,
    changes: Changes,
    errors: WatchErrors,
    ready: Vec<(&'static str, Readiness)>,
}

impl Starter {
    fn start<W: WatchedKind>(&mut self, kind: W) -> Reader<W::Kept> {
        use futures::FutureExt;
        let (api, config) = kind.watch(self.client.clone());
        let refresh = kind.refresh();
        let kind = Arc::new(kind);
        let (keep, wakes) = (kind.clone(), kind);
        let changes = if W::WAKES { self.changes.clone() } else { Changes::default() };
        let reader = reflect_where(
            W::NAME,
            watcher(api, config),
            move |o: &W::Object| keep.keep(o),
            move |old: Option<&W::Kept>, new: Option<&W::Kept>| wakes.wakes(old, new),
            refresh,
            changes,
            self.errors.clone(),
        );
        let store = reader.clone();
        let wait: Readiness = Arc::new(move || {
            let store = store.clone();
            async move {
                let _ = store.wait_until_ready().await;
            }
            .boxed()
        });
        self.ready.push((W::NAME, wait));
        reader
    }
}

/// The watched stores. `changes` wakes the reconciler for the kinds that wake it (not for the
/// session states, which only the session writer reads).
#[derive(Clone)]
pub struct Watches {
    pub configs: Reader<ConfigEntry>,
    pub secrets: Reader<SecretEntry>,
    pub node: Reader<NodeInfo>,
    pub settings: Reader<Option<LogLevel>>,
    pub sessions: Reader<SessionEntry>,
    pub own_entries: OwnEntries,
    pub changes: Changes,
    pub errors: WatchErrors,
    /// Each store's first complete list, by kind.
    initial_lists: Vec<(&'static str, Readiness)>,
}

/// What the stores hold at one moment, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// The FRRConfigurations that may select this node, and those the hold-down follows.
    pub configs: BTreeMap<String, ConfigEntry>,
    pub secrets: BTreeMap<String, SecretEntry>,
    pub node: Option<NodeInfo>,
    /// FRRK8sConfiguration `config`'s log level, when it sets one.
    pub log_level: Option<LogLevel>,
}

impl Watches {
    /// Starts the watches (they run until the process ends).
    pub fn start(client: Client, namespace: &str, node_name: &str) -> Watches {
        let mut s = Starter { client, changes: Changes::default(), errors: WatchErrors::default(), ready: Vec::new() };
        let (namespace, node) = (namespace.to_string(), node_name.to_string());
        // the node's labels as they are read, for the FRRConfigurations' watch
        let (labels_tx, labels): (_, Labels) = tokio::sync::watch::channel(None);
        let own_entries = OwnEntries::default();
        Watches {
            secrets: s.start(Secrets { namespace: namespace.clone() }),
            node: s.start(OwnNode { name: node.clone(), labels: labels_tx }),
            configs: s.start(Configs { namespace: namespace.clone(), node: node.clone(), labels, own: own_entries.clone() }),
            settings: s.start(Settings { namespace: namespace.clone() }),
            sessions: s.start(Sessions { namespace, node }),
            own_entries,
            changes: s.changes,
            errors: s.errors,
            initial_lists: s.ready,
        }
    }

    /// Returns once every store has had its first complete list (never render from an
    /// unsynced cache: an empty one would wipe FRR). Only ONE task may wait: kube 5's readiness
    /// signal keeps a single waker, so a second waiter can leave the first asleep forever (seen:
    /// the agent never started). Start whatever else needs the stores after this returns.
    pub async fn ready(&self) {
        use futures::stream::{FuturesUnordered, StreamExt};
        use futures::FutureExt;
        let mut waits: FuturesUnordered<_> = self.initial_lists.iter().map(|(name, wait)| wait().map(move |_| *name)).collect();
        let mut pending: std::collections::BTreeSet<&str> = self.initial_lists.iter().map(|(name, _)| *name).collect();
        while !pending.is_empty() {
            match tokio::time::timeout(std::time::Duration::from_secs(5), waits.next()).await {
                Ok(Some(name)) => {
                    pending.remove(name);
                }
                Ok(None) => break,
                Err(_) => tracing::warn!(waiting_for = ?pending, errors = ?self.errors.get(), "the initial lists are not complete yet"),
            }
        }
    }

    /// A consistent read of the stores the reconciler merges. Of the FRRConfigurations, those
    /// that may select this node and those that `keep` names (the hold-down's: whether they
    /// still exist matters); the thousands that select other nodes are not copied.
    pub fn view(&self, keep: impl Fn(&str) -> bool) -> View {
        let node = self.node.state().first().map(|e| e.value.clone());
        View {
            configs: configs_to_read(self.configs.state().iter().map(|e| &**e), node.as_ref().map(|n| &n.labels), keep),
            secrets: crate::watch::by_name(&self.secrets),
            node,
            log_level: self.settings.state().first().and_then(|e| e.value),
        }
    }

    /// The node's uid (for owner references), once its Node is known.
    pub fn node_uid(&self) -> Option<String> {
        self.node.state().first().and_then(|e| e.value.uid.clone())
    }
}

/// The FRRConfigurations a reconcile reads, by name: those that may select a node with
/// `labels` (all while they are not known), and those that `keep` names.
pub fn configs_to_read<'a>(
    entries: impl IntoIterator<Item = &'a Entry<ConfigEntry>>,
    labels: Option<&BTreeMap<String, String>>,
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, ConfigEntry> {
    entries.into_iter().filter(|e| labels.is_none_or(|l| e.value.selects(l)) || keep(&e.name)).map(|e| (e.name.clone(), e.value.clone())).collect()
}

/// A FRRConfiguration as the agent merges it: typed, without what the API server changes on
/// every write (resourceVersion, managedFields), without the metadata it never reads, and
/// without its status, which the agents write:
/// a status write is not a change to merge. Kept compact if it does not select a node with
/// `labels` (see [`ConfigEntry`]).
pub fn config_entry(o: &DynamicObject, labels: Option<&BTreeMap<String, String>>) -> ConfigEntry {
    let mut c = match typed_config(o) {
        Ok(c) => c,
        Err(e) => return ConfigEntry::Malformed(e),
    };
    c.status = None;
    c.metadata.resource_version = None;
    c.metadata.managed_fields = None;
    // nor what the merge never reads: annotations (kubectl's last-applied copy of the whole
    // object among them), labels, owners, finalizers; one copy of each object of the namespace
    // is kept (6,000 at the scale benchmark's size)
    c.metadata.annotations = None;
    c.metadata.labels = None;
    c.metadata.owner_references = None;
    c.metadata.finalizers = None;
    ConfigEntry::new(c, labels)
}

fn secret_entry(s: &Secret) -> SecretEntry {
    crate::input::secret_entries(std::iter::once(s)).into_values().next().unwrap_or(SecretEntry { type_: String::new(), password: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MetalLB-like object: `n` Services' /32s to one neighbor, each with a community.
    fn metallb(n: usize, asn: u32) -> ConfigEntry {
        let ips: Vec<String> = (0..n).map(|i| format!("198.51.100.{}/32", 10 + i)).collect();
        let list = ips.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        let yaml = format!(
            "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: metallb-wk1, namespace: ns}}\nspec:\n  bgp:\n    routers:\n    - asn: 64512\n      prefixes: [{list}]\n      neighbors:\n      - address: 192.0.2.1\n        asn: {asn}\n        toAdvertise:\n          allowed: {{prefixes: [{list}]}}\n          withCommunity: [{{community: \"65000:1\", prefixes: [{list}]}}]\n"
        );
        ConfigEntry::Typed(Arc::new(serde_yaml::from_str(&yaml).unwrap()))
    }

    #[test]
    fn a_partial_object_keeps_what_it_withdrew_and_still_merges() {
        use crate::agent::holddown::Advertisement;
        let (all, part) = (metallb(12, 65001), metallb(5, 65001));
        assert!(all.covers(&part) && !part.covers(&all) && all.covers(&all));
        let kept = part.keeping(&all).unwrap();
        assert!(kept.covers(&all) && all.covers(&kept), "the union advertises exactly the 12");
        // and it is a valid configuration: the 12 /32s with their community reach the neighbor
        let c = kept.typed().unwrap();
        let settings = crate::core::Settings {
            namespace: "ns".into(),
            hostname: "wk1".into(),
            log_level: LogLevel::Info,
            always_block: vec![],
            node_has_ipv4: true,
            frr_version: None,
        };
        let comp =
            crate::core::compose(&settings, crate::core::Snapshot { node_labels: &BTreeMap::new(), configs: &[(*c).clone()], secrets: &BTreeMap::new() })
                .unwrap_or_else(|e| panic!("{e}"));
        let n = &comp.model.routers[0].neighbors[0];
        assert_eq!(n.outbound.advertise.len(), 12);
        assert_eq!(n.outbound.communities.values().next().unwrap().len(), 12);
        // emptied (no prefixes, no neighbor) keeps everything
        let empty = ConfigEntry::Typed(Arc::new(
            serde_yaml::from_str("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: metallb-wk1, namespace: ns}\nspec: {}\n")
                .unwrap(),
        ));
        assert!(empty.keeping(&all).unwrap().covers(&all));
        // a neighbor's ASN changed: the change cannot keep the old content
        assert!(metallb(5, 65002).keeping(&all).is_none());
    }

    fn doc(rv: &str, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": rv, "generation": 2, "uid": "u-a",
                "managedFields": [{"manager": "frr-composer/wk3", "operation": "Apply"}]},
            "spec": {"nodeSelector": {"matchLabels": {"rack": "r1"}},
                "bgp": {"routers": [{"asn": 65000, "prefixes": ["192.0.2.0/24"],
                    "neighbors": [{"address": "192.0.2.1", "asn": 65001, "passwordSecret": {"name": "s"},
                        "toAdvertise": {"allowed": {"mode": "all"}}}]}]}},
            "status": status,
        }))
        .unwrap()
    }

    fn labels(rack: &str) -> BTreeMap<String, String> {
        [("rack".to_string(), rack.to_string())].into()
    }

    #[test]
    fn status_writes_and_resource_versions_are_not_changes() {
        let r1 = labels("r1");
        let a = config_entry(&doc("1", serde_json::json!({})), Some(&r1));
        let b = config_entry(&doc("2", serde_json::json!({"appliedOn": ["wk3"]})), Some(&r1));
        assert_eq!(a, b);
        assert!(matches!(a, ConfigEntry::Typed(_)), "it selects the node: typed");
        assert_eq!(a.typed().unwrap().metadata.generation, Some(2), "the generation is kept (observed generations)");
        let mut bad = doc("3", serde_json::json!({}));
        bad.data["spec"]["bgp"]["routers"][0]["asn"] = serde_json::json!("x");
        let e = config_entry(&bad, Some(&r1));
        assert!(matches!(&e, ConfigEntry::Malformed(m) if m.starts_with("spec.bgp.routers[0].asn")), "{e:?}");
        assert!(e.selects(&labels("r2")), "a malformed object is reported on every node");
        // the same holds for the compact form
        let r2 = labels("r2");
        assert_eq!(config_entry(&doc("1", serde_json::json!({})), Some(&r2)), config_entry(&doc("2", serde_json::json!({"appliedOn": ["x"]})), Some(&r2)));
    }

    #[test]
    fn own_entries_follow_what_the_status_holds_of_this_node() {
        let own = OwnEntries::default();
        for (status, mine) in [
            (serde_json::json!({"appliedOn": ["wk1", "wk3"]}), true),
            (serde_json::json!({"errors": [{"node": "wk3", "message": "m"}]}), true),
            (serde_json::json!({"conditions": [{"type": "wk3/Applied", "status": "False"}]}), true),
            (serde_json::json!({"appliedOn": ["wk33"], "conditions": [{"type": "wk1/Applied"}], "errors": [{"node": "wk1"}]}), false),
            (serde_json::json!({}), false),
        ] {
            own.read(&doc("1", status.clone()), "wk3");
            assert_eq!(own.contains("a"), mine, "{status}");
            assert_eq!(own.names().len(), mine as usize);
        }
        own.read(&doc("1", serde_json::json!({"appliedOn": ["wk3"]})), "wk3");
        own.forget("a");
        assert!(!own.contains("a"));
    }

    #[test]
    fn objects_for_other_nodes_are_compact_and_read_back_whole() {
        let (r1, r2) = (labels("r1"), labels("r2"));
        let typed = config_entry(&doc("1", serde_json::json!({})), Some(&r1));
        let compact = config_entry(&doc("1", serde_json::json!({})), Some(&r2));
        let ConfigEntry::Compact(c) = &compact else { panic!("not compact: {compact:?}") };
        assert!(c.json.len() < 600, "{} bytes", c.json.len());
        assert_eq!(compact.typed().unwrap(), typed.typed().unwrap(), "read back as it was");
        assert!(config_entry(&doc("1", serde_json::json!({})), None) == typed, "labels not known yet: typed");
        // selection and hold-down read either form alike
        for e in [&typed, &compact] {
            assert!(e.selects(&r1) && !e.selects(&r2));
            assert!(e.advertises());
        }
        // the kept form follows the labels
        assert_eq!(compact.refresh(Some(&r1)), Some(typed.clone()));
        assert_eq!(typed.refresh(Some(&r2)), Some(compact.clone()));
        assert_eq!(typed.refresh(Some(&r1)), None);
        assert_eq!(compact.refresh(Some(&r2)), None);
        assert_eq!(ConfigEntry::Malformed("x".into()).refresh(Some(&r2)), None);
        // an object that selects every node is never compact
        let mut all = doc("1", serde_json::json!({}));
        all.data["spec"].as_object_mut().unwrap().remove("nodeSelector");
        assert!(matches!(config_entry(&all, Some(&r2)), ConfigEntry::Typed(_)));
    }
}
