//! What the agent reads from the API server: FRRConfigurations, Secrets and the
//! FRRK8sConfiguration of its namespace, and its own Node. Each watch keeps a complete snapshot
//! (rebuilt atomically on every re-list) and marks itself synced after its first full list;
//! nothing is rendered before every watch is synced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

use crate::api::{FRRConfiguration, FRRK8sConfiguration};
use crate::core::SecretEntry;

pub use crate::watch::{typed_config, ConfigEntry, RetryDelay};

/// Labels and uid of the agent's Node: only these matter (heartbeats change nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    pub labels: BTreeMap<String, String>,
    pub uid: Option<String>,
}

#[derive(Default)]
pub struct Snapshot {
    pub configs: BTreeMap<String, ConfigEntry>,
    pub secrets: BTreeMap<String, SecretEntry>,
    /// At most one: the watch selects the Node by name.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// At most one: the watch selects the object named `config`.
    pub settings: BTreeMap<String, FRRK8sConfiguration>,
    synced: [bool; 4],
    /// Watches whose last attempt failed (for logs and readiness).
    pub watch_errors: BTreeMap<&'static str, String>,
}

impl Snapshot {
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| *s)
    }
    pub fn node(&self) -> Option<&NodeInfo> {
        self.nodes.values().next()
    }
    pub fn settings(&self) -> Option<&FRRK8sConfiguration> {
        self.settings.values().next()
    }
}

#[derive(Clone)]
pub struct Shared {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub changed: Arc<Notify>,
}

fn secret_entry(s: &Secret) -> SecretEntry {
    crate::input::secret_entries(std::iter::once(s)).into_values().next().unwrap_or(SecretEntry { type_: String::new(), password: None })
}

/// Applies one watch event to a map kept by key; `Init`...`InitDone` replaces it atomically.
/// Returns whether the map changed.
pub fn fold<O, K: Ord, V: PartialEq>(
    map: &mut BTreeMap<K, V>,
    buffer: &mut Option<BTreeMap<K, V>>,
    ev: Event<O>,
    key: impl Fn(&O) -> K,
    value: impl Fn(&O) -> V,
) -> bool {
    match ev {
        Event::Apply(o) => {
            let (k, v) = (key(&o), value(&o));
            let changed = map.get(&k) != Some(&v);
            map.insert(k, v);
            changed
        }
        Event::Delete(o) => map.remove(&key(&o)).is_some(),
        Event::Init => {
            *buffer = Some(BTreeMap::new());
            false
        }
        Event::InitApply(o) => {
            buffer.get_or_insert_with(BTreeMap::new).insert(key(&o), value(&o));
            false
        }
        Event::InitDone => {
            // a full list: the first one unblocks the reconciler, later ones follow reconnects
            *map = buffer.take().unwrap_or_default();
            true
        }
    }
}

/// One watch: keeps `slot` of the snapshot equal to the listed objects and wakes the
/// reconciler when it changes.
fn spawn_watch<K, V>(
    name: &'static str,
    index: usize,
    api: Api<K>,
    config: watcher::Config,
    shared: Shared,
    slot: fn(&mut Snapshot) -> &mut BTreeMap<String, V>,
    value: fn(&K) -> V,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    V: PartialEq + Send + 'static,
{
    tokio::spawn(async move {
        let mut buffer = None;
        let mut stream = watcher(api, config).backoff(RetryDelay::default()).boxed();
        while let Some(ev) = stream.next().await {
            let mut s = shared.snapshot.lock().expect("snapshot lock");
            match ev {
                Ok(ev) => {
                    let done = matches!(ev, Event::InitDone);
                    let changed = fold(slot(&mut s), &mut buffer, ev, |o| o.name_any(), value);
                    if done {
                        s.synced[index] = true;
                    }
                    s.watch_errors.remove(name);
                    drop(s);
                    tracing::debug!(watch = name, changed, "watch event");
                    if changed {
                        shared.changed.notify_one();
                    }
                }
                Err(e) => {
                    tracing::warn!(watch = name, error = %e, "watch failed; retrying");
                    s.watch_errors.insert(name, e.to_string());
                }
            }
        }
    });
}

/// Starts the four watches (they run until the process ends).
pub fn spawn(client: Client, namespace: &str, node_name: &str, shared: Shared) {
    // FRRConfigurations are read untyped, so that one malformed object cannot stop the watch.
    let configs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<FRRConfiguration>(&()));
    spawn_watch("FRRConfiguration", 0, configs, watcher::Config::default(), shared.clone(), |s| &mut s.configs, typed_config);
    spawn_watch(
        "Secret",
        1,
        Api::<Secret>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
        shared.clone(),
        |s| &mut s.secrets,
        secret_entry,
    );
    let node_cfg = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    spawn_watch(
        "Node",
        2,
        Api::<Node>::all(client.clone()),
        node_cfg,
        shared.clone(),
        |s| &mut s.nodes,
        |n: &Node| NodeInfo { labels: n.labels().clone(), uid: n.metadata.uid.clone() },
    );
    let settings_cfg = watcher::Config::default().fields("metadata.name=config");
    spawn_watch("FRRK8sConfiguration", 3, Api::<FRRK8sConfiguration>::namespaced(client, namespace), settings_cfg, shared, |s| &mut s.settings, |c| c.clone());
}
