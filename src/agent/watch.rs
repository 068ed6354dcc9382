//! What the agent reads from the API server: FRRConfigurations, Secrets and the
//! FRRK8sConfiguration of its namespace, and its own Node. Each watch keeps a complete snapshot
//! (rebuilt atomically on every re-list) and marks itself synced after its first full list;
//! nothing is rendered before every watch is synced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

use crate::api::{FRRConfiguration, FRRK8sConfiguration};
use crate::core::{ObjRef, SecretEntry};

/// A FRRConfiguration as read from the API server: typed, or why it could not be read.
pub type ConfigEntry = Result<FRRConfiguration, String>;

#[derive(Default)]
pub struct Snapshot {
    pub configs: BTreeMap<String, ConfigEntry>,
    pub secrets: BTreeMap<String, SecretEntry>,
    pub node: Option<Node>,
    pub settings: Option<FRRK8sConfiguration>,
    synced: [bool; 4],
    /// Objects whose watch failed last (for readiness and logs).
    pub watch_errors: BTreeMap<&'static str, String>,
}

impl Snapshot {
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| *s)
    }
}

#[derive(Clone)]
pub struct Shared {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub changed: Arc<Notify>,
}

/// Converts a FRRConfiguration that the API server holds into the typed object; a malformed one
/// becomes an error naming the field (it is reported, and left out).
pub fn typed_config(o: &DynamicObject) -> ConfigEntry {
    let value = serde_json::to_value(o).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize::<_, FRRConfiguration>(value).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })
}

fn secret_entry(s: &Secret) -> SecretEntry {
    crate::input::secret_entries(std::iter::once(s)).into_values().next().unwrap_or(SecretEntry { type_: String::new(), password: None })
}

/// Applies one watch event to a map kept by key; `Init`...`InitDone` replaces it atomically.
fn fold<K, V>(map: &mut BTreeMap<String, V>, buffer: &mut Option<BTreeMap<String, V>>, ev: Event<K>, key: impl Fn(&K) -> String, value: impl Fn(&K) -> V) -> bool {
    let what = match &ev {
        Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => key(o),
        _ => String::new(),
    };
    tracing::debug!(event = match &ev { Event::Apply(_) => "apply", Event::Delete(_) => "delete", Event::Init => "init", Event::InitApply(_) => "init-apply", Event::InitDone => "init-done" }, object = %what, "watch event");
    match ev {
        Event::Apply(o) => {
            map.insert(key(&o), value(&o));
            true
        }
        Event::Delete(o) => {
            map.remove(&key(&o));
            true
        }
        Event::Init => {
            *buffer = Some(BTreeMap::new());
            false
        }
        Event::InitApply(o) => {
            buffer.get_or_insert_with(BTreeMap::new).insert(key(&o), value(&o));
            false
        }
        Event::InitDone => {
            *map = buffer.take().unwrap_or_default();
            true
        }
    }
}

/// Starts the four watches; returns when they are spawned (they run until the process ends).
pub fn spawn(client: Client, namespace: &str, node_name: &str, shared: Shared) {
    let ns = namespace.to_string();
    // FRRConfigurations, read untyped so that one malformed object cannot stop the watch.
    {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ApiResource::erase::<FRRConfiguration>(&()));
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buffer = None;
            let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                let mut s = shared.snapshot.lock().expect("snapshot lock");
                match ev {
                    Ok(ev) => {
                        let done = matches!(ev, Event::InitDone);
                        let changed = fold(&mut s.configs, &mut buffer, ev, |o| o.name_any(), typed_config);
                        if done {
                            s.synced[0] = true;
                        }
                        s.watch_errors.remove("FRRConfiguration");
                        drop(s);
                        if changed {
                            shared.changed.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching FRRConfigurations");
                        s.watch_errors.insert("FRRConfiguration", e.to_string());
                    }
                }
            }
        });
    }
    {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buffer = None;
            let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                let mut s = shared.snapshot.lock().expect("snapshot lock");
                match ev {
                    Ok(ev) => {
                        let done = matches!(ev, Event::InitDone);
                        let changed = fold(&mut s.secrets, &mut buffer, ev, |o| o.name_any(), secret_entry);
                        if done {
                            s.synced[1] = true;
                        }
                        s.watch_errors.remove("Secret");
                        drop(s);
                        if changed {
                            shared.changed.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching Secrets");
                        s.watch_errors.insert("Secret", e.to_string());
                    }
                }
            }
        });
    }
    {
        let api: Api<Node> = Api::all(client.clone());
        let shared = shared.clone();
        let cfg = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
        tokio::spawn(async move {
            let mut buffer = None;
            let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        let done = matches!(ev, Event::InitDone);
                        let changed = fold(&mut nodes, &mut buffer, ev, |o| o.name_any(), |o| o.clone());
                        let mut s = shared.snapshot.lock().expect("snapshot lock");
                        let before = s.node.as_ref().map(|n| n.labels().clone());
                        s.node = nodes.values().next().cloned();
                        if done {
                            s.synced[2] = true;
                        }
                        s.watch_errors.remove("Node");
                        // only label changes matter for selection
                        let relevant = done || before != s.node.as_ref().map(|n| n.labels().clone());
                        drop(s);
                        if changed && relevant {
                            shared.changed.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching the Node");
                        shared.snapshot.lock().expect("snapshot lock").watch_errors.insert("Node", e.to_string());
                    }
                }
            }
        });
    }
    {
        let api: Api<FRRK8sConfiguration> = Api::namespaced(client, &ns);
        let cfg = watcher::Config::default().fields("metadata.name=config");
        tokio::spawn(async move {
            let mut buffer = None;
            let mut objs: BTreeMap<String, FRRK8sConfiguration> = BTreeMap::new();
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        let done = matches!(ev, Event::InitDone);
                        let changed = fold(&mut objs, &mut buffer, ev, |o| o.name_any(), |o| o.clone());
                        let mut s = shared.snapshot.lock().expect("snapshot lock");
                        s.settings = objs.values().next().cloned();
                        if done {
                            s.synced[3] = true;
                        }
                        s.watch_errors.remove("FRRK8sConfiguration");
                        drop(s);
                        if changed {
                            shared.changed.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching FRRK8sConfiguration");
                        shared.snapshot.lock().expect("snapshot lock").watch_errors.insert("FRRK8sConfiguration", e.to_string());
                    }
                }
            }
        });
    }
}

/// The reference of a FRRConfiguration entry (namespace/name).
pub fn entry_ref(namespace: &str, name: &str) -> ObjRef {
    ObjRef::new(namespace, name)
}

use kube::runtime::watcher::watcher;
