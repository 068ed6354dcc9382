//! The scale benchmark's cluster: Nodes in racks and zones, one MetalLB-shaped
//! FRRConfiguration per node, admin FRRConfigurations selecting every node, racks or zones,
//! and basic-auth Secrets; loaded into the API server with bounded concurrency.
//!
//! Address plan (documentation ranges only; the namespaces have no route, so nothing is sent):
//! - top-of-rack peers of rack r: 192.0.2.(1 + r % 200) and 198.51.100.(1 + r % 200), AS 65000 + r % 200
//! - LoadBalancer /32s the MetalLB objects advertise: 203.0.113.1-120
//! - collectors of the rack/zone admin objects: 203.0.113.128-247, AS 64700 + index
//! - route reflectors of the every-node admin objects: 203.0.113.250-253, AS 64512 (iBGP)
//! - /32s added by the timed changes: 192.0.2.201-250 (the agent's node), by the background
//!   writer: 198.51.100.201-250 (other nodes)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

pub const NS: &str = "frr-k8s-system";
pub const ROUTER_ASN: u32 = 64512;
pub const NODES_PER_RACK: usize = 20;
pub const ZONES: usize = 4;

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "frrk8s.metallb.io".into(),
        version: "v1beta1".into(),
        api_version: "frrk8s.metallb.io/v1beta1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn configs_api(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &resource("FRRConfiguration", "frrconfigurations"))
}

/// The sizes of the cluster.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub nodes: usize,
    /// All FRRConfigurations: one MetalLB object per node, the rest admin objects.
    pub configs: usize,
    pub secrets: usize,
    /// Admin objects that select every node (no nodeSelector, or an empty one).
    pub all_nodes: usize,
}

impl Shape {
    pub fn admin(&self) -> usize {
        self.configs - self.nodes
    }
    pub fn racks(&self) -> usize {
        self.nodes.div_ceil(NODES_PER_RACK)
    }
}

pub fn node_name(i: usize) -> String {
    format!("node-{i:04}")
}

pub fn rack_of(i: usize) -> usize {
    i / NODES_PER_RACK
}

pub fn node_labels(i: usize) -> BTreeMap<String, String> {
    let r = rack_of(i);
    [
        ("kubernetes.io/hostname".to_string(), node_name(i)),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("node-role.kubernetes.io/worker".to_string(), String::new()),
        ("rack".to_string(), format!("rack-{r:03}")),
        ("zone".to_string(), format!("zone-{}", r % ZONES)),
    ]
    .into()
}

fn node(i: usize) -> Node {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name(i), "labels": node_labels(i)}})).expect("Node")
}

pub fn secret_name(i: usize) -> String {
    format!("bgp-auth-{}", node_name(i))
}

fn secret(i: usize) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
        "metadata": {"name": secret_name(i), "namespace": NS},
        "stringData": {"password": format!("bench-{i}-{:08x}", (i as u32).wrapping_mul(2_654_435_761))}
    }))
    .expect("Secret")
}

/// Whether node i's MetalLB object names a password Secret (a third of the nodes).
pub fn has_password(shape: &Shape, i: usize) -> bool {
    i.is_multiple_of(3) && i < shape.secrets
}

/// The LoadBalancer /32s node i's MetalLB object advertises (1-3).
pub fn lb_prefixes(i: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..1 + i % 3).map(|k| format!("203.0.113.{}/32", 1 + (i * 7 + k * 31) % 120)).collect();
    v.sort();
    v.dedup();
    v
}

pub fn metallb_name(i: usize) -> String {
    format!("metallb-{}", node_name(i))
}

/// The MetalLB-shaped object of node i (as MetalLB's speaker writes it), with `extra`
/// LoadBalancer /32s.
pub fn metallb_spec(shape: &Shape, i: usize, extra: &[String]) -> Value {
    let r = rack_of(i);
    let mut prefixes = lb_prefixes(i);
    prefixes.extend(extra.iter().cloned());
    let password = if has_password(shape, i) { json!({"name": secret_name(i), "namespace": NS}) } else { json!({}) };
    let neighbor = |address: String| {
        json!({
            "address": address, "asn": 65000 + r % 200, "disableMP": false, "dualStackAddressFamily": false,
            "passwordSecret": password, "port": 179,
            "toAdvertise": {"allowed": {"mode": "filtered", "prefixes": prefixes}},
            "toReceive": {"allowed": {"mode": "filtered"}}
        })
    };
    let mut neighbors = vec![neighbor(format!("192.0.2.{}", 1 + r % 200))];
    if i.is_multiple_of(2) {
        neighbors.push(neighbor(format!("198.51.100.{}", 1 + r % 200)));
    }
    json!({
        "bgp": {"routers": [{"asn": ROUTER_ASN, "neighbors": neighbors, "prefixes": prefixes}]},
        "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": node_name(i)}},
        "raw": {}
    })
}

fn object(name: &str, labels: Value, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": spec
    }))
    .expect("FRRConfiguration")
}

pub fn metallb(shape: &Shape, i: usize) -> DynamicObject {
    object(&metallb_name(i), json!({"app.kubernetes.io/managed-by": "metallb"}), metallb_spec(shape, i, &[]))
}

/// An admin object that selects every node: an iBGP route reflector peer, receiving.
pub fn admin_all_spec(j: usize) -> Value {
    let mut spec = json!({
        "bgp": {"routers": [{"asn": ROUTER_ASN, "neighbors": [{
            "address": format!("203.0.113.{}", 250 + j % 4), "asn": ROUTER_ASN,
            "toReceive": {"allowed": {"mode": "filtered", "prefixes": [{"prefix": "198.51.100.0/24", "le": 32}]}}
        }]}]}
    });
    if j.is_multiple_of(2) {
        spec["nodeSelector"] = json!({});
    }
    spec
}

/// The admin objects' selector: j of them select every node, then every 20th a zone
/// (matchExpressions), the others a rack (matchLabels).
fn admin(shape: &Shape, j: usize) -> DynamicObject {
    let labels = json!({"app.kubernetes.io/managed-by": "admin"});
    if j < shape.all_nodes {
        return object(&format!("admin-all-{j:04}"), labels, admin_all_spec(j));
    }
    let c = j % 120;
    let selector = if j.is_multiple_of(20) {
        json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": [format!("zone-{}", (j / 20) % ZONES)]}]})
    } else {
        json!({"matchLabels": {"rack": format!("rack-{:03}", j % shape.racks())}})
    };
    object(
        &format!("admin-{j:04}"),
        labels,
        json!({
            "bgp": {"routers": [{"asn": ROUTER_ASN, "neighbors": [{
                "address": format!("203.0.113.{}", 128 + c), "asn": 64700 + c as u32,
                "toReceive": {"allowed": {"mode": "filtered", "prefixes": [{"prefix": "192.0.2.0/24", "ge": 28, "le": 32}]}}
            }]}]},
            "nodeSelector": selector
        }),
    )
}

/// How long each kind took to load, and in total.
pub struct Loaded {
    pub nodes: Duration,
    pub secrets: Duration,
    pub configs: Duration,
    pub total: Duration,
    pub json_bytes: usize,
}

async fn create_all<K>(api: &Api<K>, objects: Vec<K>, concurrency: usize) -> Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    stream::iter(objects)
        .map(|o| async move {
            let name = o.meta().name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &o).await.map(|_| ()).with_context(|| format!("creating {name}"))
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Creates the namespace, the Nodes, the Secrets and the FRRConfigurations.
pub async fn load(client: &Client, shape: &Shape, concurrency: usize) -> Result<Loaded> {
    let t0 = Instant::now();
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::all(client.clone()).create(&PostParams::default(), &ns).await.context("creating the namespace")?;
    let t = Instant::now();
    create_all(&Api::<Node>::all(client.clone()), (0..shape.nodes).map(node).collect(), concurrency).await?;
    let nodes = t.elapsed();
    let t = Instant::now();
    create_all(&Api::<Secret>::namespaced(client.clone(), NS), (0..shape.secrets).map(secret).collect(), concurrency).await?;
    let secrets = t.elapsed();
    let configs: Vec<DynamicObject> = (0..shape.nodes).map(|i| metallb(shape, i)).chain((0..shape.admin()).map(|j| admin(shape, j))).collect();
    let json_bytes = configs.iter().map(|c| serde_json::to_vec(c).map(|v| v.len()).unwrap_or(0)).sum();
    let t = Instant::now();
    create_all(&configs_api(client), configs, concurrency).await?;
    Ok(Loaded { nodes, secrets, configs: t.elapsed(), total: t0.elapsed(), json_bytes })
}

/// A change of node i's MetalLB object: its LoadBalancer /32s plus `extra` (the speaker
/// rewrites the whole spec).
pub async fn patch_metallb(client: &Client, shape: &Shape, i: usize, extra: &[String]) -> Result<()> {
    configs_api(client)
        .patch(&metallb_name(i), &PatchParams::default(), &Patch::Merge(json!({"spec": metallb_spec(shape, i, extra)})))
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("patching {}: {e}", metallb_name(i)))
}

/// The admission review the webhook benchmark sends: the CREATE of a new admin object that
/// selects every node (valid: it agrees with everything already there).
pub fn review_of_all_nodes(uid: &str) -> Value {
    let obj = object("admin-all-review", json!({"app.kubernetes.io/managed-by": "admin"}), admin_all_spec(0));
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "frrk8s.metallb.io", "version": "v1beta1", "kind": "FRRConfiguration"},
            "resource": {"group": "frrk8s.metallb.io", "version": "v1beta1", "resource": "frrconfigurations"},
            "requestKind": {"group": "frrk8s.metallb.io", "version": "v1beta1", "kind": "FRRConfiguration"},
            "requestResource": {"group": "frrk8s.metallb.io", "version": "v1beta1", "resource": "frrconfigurations"},
            "name": "admin-all-review", "namespace": NS, "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": obj, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}
