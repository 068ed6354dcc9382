//! What the agent reads from the API server, kept in the reflector stores of `crate::watch`:
//! its namespace's FRRConfigurations and Secrets, the FRRK8sConfiguration named `config`, its
//! own Node (metadata only: labels and uid) and its own BGPSessionStates (label-selected).
//! Each store holds only what the agent derives from an object. After the initial lists the
//! agent sends watches only: no LIST or GET at steady state.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};

use crate::api::{BGPSessionState, BGPSessionStateStatus, FRRConfiguration, FRRK8sConfiguration, LogLevel};
use crate::core::SecretEntry;
use crate::watch::{reflect, reflect_where, Changes, Reader, WatchErrors};

pub use crate::watch::{typed_config, RetryDelay};

/// A FRRConfiguration as the agent keeps it: typed and shared (every snapshot, the hold-down
/// and the isolation record hold the same copy), or why it could not be read.
pub type ConfigEntry = Result<std::sync::Arc<FRRConfiguration>, String>;

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

/// The watched stores. `changes` wakes the reconciler for the stores it merges (not for the
/// session states, which only the session writer reads).
#[derive(Clone)]
pub struct Watches {
    pub configs: Reader<ConfigEntry>,
    pub secrets: Reader<SecretEntry>,
    pub node: Reader<NodeInfo>,
    pub settings: Reader<Option<LogLevel>>,
    pub sessions: Reader<SessionEntry>,
    pub changes: Changes,
    pub errors: WatchErrors,
}

/// What the stores hold at one moment, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    pub configs: BTreeMap<String, ConfigEntry>,
    pub secrets: BTreeMap<String, SecretEntry>,
    pub node: Option<NodeInfo>,
    /// FRRK8sConfiguration `config`'s log level, when it sets one.
    pub log_level: Option<LogLevel>,
}

impl Watches {
    /// Starts the five watches (they run until the process ends).
    pub fn start(client: Client, namespace: &str, node_name: &str) -> Watches {
        let changes = Changes::default();
        let errors = WatchErrors::default();
        // FRRConfigurations are read untyped, so that one malformed object cannot stop the watch.
        let configs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<FRRConfiguration>(&()));
        // lists in pages of 100 (kube's default is 500): what a page holds while it is read is
        // the agent's peak memory at start
        let paged = || watcher::Config::default().page_size(LIST_PAGE);
        let secrets = reflect("Secret", watcher(Api::<Secret>::namespaced(client.clone(), namespace), paged()), secret_entry, changes.clone(), errors.clone());
        let by_name = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
        let node = reflect(
            "Node",
            watcher(Api::<PartialObjectMeta<Node>>::all(client.clone()), by_name),
            |n: &PartialObjectMeta<Node>| NodeInfo { labels: n.labels().clone(), uid: n.metadata.uid.clone() },
            changes.clone(),
            errors.clone(),
        );
        // A change to an object that selects this node neither before nor after it wakes nothing:
        // 100 changes a second elsewhere in the namespace must not hold up this node's own
        // (the reconcile re-reads everything, and a change of the node's labels wakes it).
        let labels = node.clone();
        let concerns_this_node = move |old: Option<&ConfigEntry>, new: Option<&ConfigEntry>| {
            let Some(labels) = labels.state().first().map(|n| n.value.labels.clone()) else { return true };
            [old, new].into_iter().flatten().any(|c| selects(c, &labels))
        };
        let configs = reflect_where("FRRConfiguration", watcher(configs, paged()), config_entry, concerns_this_node, changes.clone(), errors.clone());
        let settings = reflect(
            "FRRK8sConfiguration",
            watcher(Api::<FRRK8sConfiguration>::namespaced(client.clone(), namespace), watcher::Config::default().fields("metadata.name=config")),
            |c: &FRRK8sConfiguration| c.spec.log_level,
            changes.clone(),
            errors.clone(),
        );
        let own = watcher::Config::default().labels(&format!("{}={node_name}", super::status::LABEL_NODE));
        let sessions = reflect(
            "BGPSessionState",
            watcher(Api::<BGPSessionState>::namespaced(client, namespace), own),
            |s: &BGPSessionState| SessionEntry { status: s.status.clone() },
            Changes::default(),
            errors.clone(),
        );
        Watches { configs, secrets, node, settings, sessions, changes, errors }
    }

    /// Returns once every store has had its first complete list (never render from an
    /// unsynced cache: an empty one would wipe FRR). Only ONE task may wait: kube 5's readiness
    /// signal keeps a single waker, so a second waiter can leave the first asleep forever (seen:
    /// the agent never started). Start whatever else needs the stores after this returns.
    pub async fn ready(&self) {
        use futures::stream::{FuturesUnordered, StreamExt};
        use futures::FutureExt;
        let mut waits: FuturesUnordered<_> = [
            ("FRRConfiguration", self.configs.wait_until_ready().boxed()),
            ("Secret", self.secrets.wait_until_ready().boxed()),
            ("Node", self.node.wait_until_ready().boxed()),
            ("FRRK8sConfiguration", self.settings.wait_until_ready().boxed()),
            ("BGPSessionState", self.sessions.wait_until_ready().boxed()),
        ]
        .into_iter()
        .map(|(name, f)| f.map(move |_| name))
        .collect();
        let mut pending: std::collections::BTreeSet<&str> = ["FRRConfiguration", "Secret", "Node", "FRRK8sConfiguration", "BGPSessionState"].into();
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

    /// A consistent read of the stores the reconciler merges.
    pub fn view(&self) -> View {
        View {
            configs: crate::watch::by_name(&self.configs),
            secrets: crate::watch::by_name(&self.secrets),
            node: self.node.state().first().map(|e| e.value.clone()),
            log_level: self.settings.state().first().and_then(|e| e.value),
        }
    }

    /// The node's uid (for owner references), once its Node is known.
    pub fn node_uid(&self) -> Option<String> {
        self.node.state().first().and_then(|e| e.value.uid.clone())
    }
}

/// A FRRConfiguration as the agent merges it: typed, without what the API server changes on
/// every write (resourceVersion, managedFields), without the metadata it never reads, and
/// without its status, which the agents write:
/// a status write is not a change to merge.
pub fn config_entry(o: &DynamicObject) -> ConfigEntry {
    let mut c = typed_config(o)?;
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
    Ok(std::sync::Arc::new(c))
}

/// Whether a FRRConfiguration may be merged on a node with these labels (a malformed one, or one
/// with an invalid selector, counts: it is reported).
pub fn selects(c: &ConfigEntry, labels: &BTreeMap<String, String>) -> bool {
    match c {
        Err(_) => true,
        Ok(c) => c.spec.node_selector.as_ref().is_none_or(|sel| crate::core::selector_matches(sel, labels) != Ok(false)),
    }
}

fn secret_entry(s: &Secret) -> SecretEntry {
    crate::input::secret_entries(std::iter::once(s)).into_values().next().unwrap_or(SecretEntry { type_: String::new(), password: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_writes_and_resource_versions_are_not_changes() {
        let doc = |rv: &str, status: serde_json::Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
                "metadata": {"name": "a", "namespace": "ns", "resourceVersion": rv, "generation": 2,
                    "managedFields": [{"manager": "frr-composer/wk3", "operation": "Apply"}]},
                "spec": {"bgp": {"routers": [{"asn": 65000}]}},
                "status": status,
            }))
            .unwrap()
        };
        let a = config_entry(&doc("1", serde_json::json!({})));
        let b = config_entry(&doc("2", serde_json::json!({"appliedOn": ["wk3"]})));
        assert_eq!(a, b);
        assert_eq!(a.unwrap().metadata.generation, Some(2), "the generation is kept (observed generations)");
        let mut bad = doc("3", serde_json::json!({}));
        bad.data["spec"]["bgp"]["routers"][0]["asn"] = serde_json::json!("x");
        let e = config_entry(&bad).unwrap_err();
        assert!(e.starts_with("spec.bgp.routers[0].asn"), "{e}");
    }
}
