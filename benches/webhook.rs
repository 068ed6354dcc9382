//! The admission webhook at 3,000 Nodes and 6,000 FRRConfigurations, in process: the webhook's
//! own stores (kube-runtime reflector stores fed the objects a watch would deliver, derived as
//! the watches derive them), its real HTTPS server and routes on loopback.
//!
//! The cluster: 3,000 Nodes with 8 labels each (hostname, 30 racks, 3 zones, ...); one
//! MetalLB-shaped object per node selecting it by `kubernetes.io/hostname` (two BGP peers with
//! timers, ten service prefixes, no password Secret so that every one takes part in merges);
//! 3,000 admin objects: 10 selecting every node, 90 selecting a rack, 2,900 selecting one node.
//! Reviewed: a new admin object selecting every node that agrees with all of them (admitted),
//! and one that contradicts the MetalLB peers' ASN (refused on all 3,000 nodes).
//!
//! Reported: the decision alone (serial, p50/p99/max), 50 concurrent reviews over HTTPS (each
//! latency from send to answer), `/healthz` latency while they run, and the process's memory.
//!
//!   cargo bench --bench webhook
//!
//! The shape `racks` is a heavier cluster: 3,000 Nodes in 30 racks of 100, 100 admin objects
//! per rack (each with its own neighbor), 6 admin objects on every node and one MetalLB object
//! per node: 107 objects on each node, 6,006 in all. Reviewed: a new object on every node with a
//! neighbor no other object has (it can conflict with nothing but the routers' ASN), admitted,
//! one after another over HTTPS; and one whose router ASN contradicts every other, refused.
//!
//!   cargo bench --bench webhook -- racks

#[path = "../tests/webhook_server/mod.rs"]
mod webhook_server;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use frr_composer::watch::{apply_event, Changes, Entry};
use frr_composer::webhook::{review, server::Limits, Kept, State};
use k8s_openapi::api::core::v1::Node;
use kube::api::DynamicObject;
use kube::core::admission::AdmissionReview;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const NODES: usize = 3000;
const NS: &str = "frr-k8s-system";
const HOSTNAME: &str = "kubernetes.io/hostname";

fn node(i: usize) -> PartialObjectMeta<Node> {
    serde_json::from_value(json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": format!("node-{i:04}"), "uid": format!("node-uid-{i}"), "resourceVersion": "1", "labels": {
            HOSTNAME: format!("node-{i:04}"), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": format!("zone-{}", i % 3), "rack": format!("rack-{:02}", i / 100),
            "node.kubernetes.io/instance-type": "m5.large", "node-role.kubernetes.io/worker": "",
            "beta.kubernetes.io/os": "linux"
        }}
    }))
    .unwrap()
}

fn object(name: &str, selector: Value, routers: Value) -> Value {
    let mut spec = json!({"bgp": {"routers": routers}});
    if !selector.is_null() {
        spec["nodeSelector"] = selector;
    }
    json!({
        "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"), "resourceVersion": "1"},
        "spec": spec
    })
}

fn labels(k: &str, v: &str) -> Value {
    json!({"matchLabels": {k: v}})
}

fn service_prefixes() -> Vec<String> {
    (0..10).map(|i| format!("203.0.113.{}/32", 10 + i)).collect()
}

/// What MetalLB writes for one node: its BGP peers and the service addresses to announce.
fn metallb(i: usize) -> Value {
    let peer = |addr: &str| {
        json!({"address": addr, "asn": 64513, "holdTime": "90s", "keepaliveTime": "30s",
               "toAdvertise": {"allowed": {"prefixes": service_prefixes()}}})
    };
    object(
        &format!("metallb-node-{i:04}"),
        labels(HOSTNAME, &format!("node-{i:04}")),
        json!([{"asn": 64512, "prefixes": service_prefixes(), "neighbors": [peer("192.0.2.1"), peer("192.0.2.2")]}]),
    )
}

/// Admin objects: the first 10 on every node, the next 90 on a rack, the rest on one node.
fn admin(k: usize) -> Value {
    let (name, selector) = match k {
        0..10 => (format!("admin-all-{k}"), Value::Null),
        10..100 => (format!("admin-rack-{k}"), labels("rack", &format!("rack-{:02}", k % 30))),
        _ => (format!("admin-node-{k:04}"), labels(HOSTNAME, &format!("node-{:04}", k % NODES))),
    };
    let neighbors = json!([
        {"address": format!("198.51.100.{}", 1 + k % 250), "asn": 65100 + (k % 50) as u32, "toReceive": {"allowed": {"mode": "all"}}},
        // every admin object also receives from the MetalLB peers
        {"address": "192.0.2.1", "asn": 64513, "toReceive": {"allowed": {"prefixes": [{"prefix": "192.0.2.0/24", "le": 32}]}}}
    ]);
    object(&name, selector, json!([{"asn": 64512, "neighbors": neighbors}]))
}

fn create_review(obj: &Value) -> Vec<u8> {
    review_of(obj, None)
}

/// An UPDATE from `old` to `obj`.
fn update_review(obj: &Value, old: &Value) -> Vec<u8> {
    review_of(obj, Some(old))
}

fn review_of(obj: &Value, old: Option<&Value>) -> Vec<u8> {
    let mut review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "r1",
            "kind": {"group": "frrk8s.metallb.io", "version": "v1beta1", "kind": "FRRConfiguration"},
            "resource": {"group": "frrk8s.metallb.io", "version": "v1beta1", "resource": "frrconfigurations"},
            "name": obj["metadata"]["name"], "namespace": NS, "operation": "CREATE",
            "userInfo": {"username": "bench"}, "object": obj, "dryRun": false
        }
    });
    if let Some(old) = old {
        review["request"]["operation"] = json!("UPDATE");
        review["request"]["oldObject"] = old.clone();
    }
    serde_json::to_vec(&review).unwrap()
}

/// (VmRSS, VmHWM) of this process in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(0.0);
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// CPU time this process used so far (user + system, all threads).
fn cpu() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let d = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    d(u.ru_utime) + d(u.ru_stime)
}

fn pct(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e3
}

fn summary(what: &str, times: &mut [Duration]) {
    println!("{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)", pct(times, 0.5), pct(times, 0.99), pct(times, 1.0), times.len());
}

/// The `racks` shape's admin objects: 100 per rack, then 6 on every node.
fn rack_admin(k: usize) -> Value {
    let (name, selector) = match k {
        0..3000 => (format!("admin-rack-{:02}-{:02}", k / 100, k % 100), labels("rack", &format!("rack-{:02}", k / 100))),
        _ => (format!("admin-all-{}", k - 3000), Value::Null),
    };
    let neighbors = json!([
        {"address": format!("198.51.{}.{}", 100 + k / 250 % 2, 1 + k % 250), "asn": 65100 + (k % 50) as u32,
         "toReceive": {"allowed": {"prefixes": [{"prefix": "198.51.100.0/24", "le": 32}]}}}
    ]);
    object(&name, selector, json!([{"asn": 64512, "neighbors": neighbors}]))
}

fn main() {
    // as `frr-composer webhook` runs: one malloc arena, two runtime threads
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let racks = std::env::args().skip(1).any(|a| a == "racks");
    rt.block_on(async {
        if racks {
            run_racks().await
        } else {
            run().await
        }
    });
}

/// One admission decision, timed as one blocking thread runs it.
fn decide(state: &State, body: &[u8]) -> (Duration, kube::core::admission::AdmissionResponse) {
    let t = Instant::now();
    let out = review(&state.view(), serde_json::from_slice::<AdmissionReview<DynamicObject>>(body).unwrap());
    (t.elapsed(), out.response.unwrap())
}

/// The stores, filled as a first complete list fills them (each object dropped once read).
fn fill(configs_of: impl Iterator<Item = Value>) -> State {
    let mut nodes: Writer<Entry<BTreeMap<String, String>>> = Writer::new(());
    let mut configs: Writer<Entry<Kept>> = Writer::new(());
    let node_labels = |n: &PartialObjectMeta<Node>| n.metadata.labels.clone().unwrap_or_default();
    apply_event(&mut nodes, Event::Init, &node_labels);
    for i in 0..NODES {
        apply_event(&mut nodes, Event::InitApply(node(i)), &node_labels);
    }
    apply_event(&mut nodes, Event::<PartialObjectMeta<Node>>::InitDone, &node_labels);
    apply_event(&mut configs, Event::Init, &Kept::of);
    for c in configs_of {
        let o: DynamicObject = serde_json::from_value(c).unwrap();
        apply_event(&mut configs, Event::InitApply(o), &Kept::of);
    }
    apply_event(&mut configs, Event::<DynamicObject>::InitDone, &Kept::of);
    State::new(nodes.as_reader(), configs.as_reader(), Changes::default())
}

async fn run() {
    let before = memory();
    let started = Instant::now();
    let state = fill((0..NODES).flat_map(|i| [metallb(i), admin(i)]));
    let kept = memory();
    println!(
        "stores: {} Nodes, {} FRRConfigurations ({} malformed), filled in {:.1} s",
        state.nodes.len(),
        state.configs.len(),
        state.configs.state().iter().filter(|e| e.value.0.is_err()).count(),
        started.elapsed().as_secs_f64()
    );

    let new_admin = |asn: u32| {
        let neighbors = json!([
            {"address": "192.0.2.1", "asn": asn, "toReceive": {"allowed": {"mode": "all"}}},
            {"address": "198.51.100.254", "asn": 65200, "toReceive": {"allowed": {"mode": "all"}}}
        ]);
        object("admin-new", Value::Null, json!([{"asn": 64512, "neighbors": neighbors}]))
    };
    let admitted = create_review(&new_admin(64513));
    let refused = create_review(&new_admin(64999));
    // an admin object on every node drops one of its neighbors: admitted, with a warning that
    // the session ends on every node
    let all_0 = admin(0);
    let mut dropped = all_0.clone();
    dropped["spec"]["bgp"]["routers"][0]["neighbors"].as_array_mut().unwrap().remove(0);
    let updated = update_review(&dropped, &all_0);

    // 1. The decision alone, one at a time (as one blocking thread runs it).
    let decide = |body: &[u8]| -> (Duration, bool, usize, Vec<String>) {
        let (elapsed, resp) = decide(&state, body);
        (elapsed, resp.allowed, resp.result.message.len(), resp.warnings.unwrap_or_default())
    };
    let (first, _, _, _) = tokio::task::block_in_place(|| decide(&admitted));
    println!("first review (builds the node index): {:.1} ms", first.as_secs_f64() * 1e3);
    let cases = [
        ("admitted", &admitted, true),
        ("refused on every node", &refused, false),
        ("update admitted with a warning: a session ends on every node", &updated, true),
    ];
    for (what, body, allowed) in cases {
        let mut times = Vec::new();
        let cpu_before = cpu();
        for _ in 0..100 {
            let (t, ok, len, warnings) = tokio::task::block_in_place(|| decide(body));
            assert_eq!(ok, allowed, "{what}");
            if !allowed {
                assert!(len > NODES * 10, "the refusal names every node");
            }
            if std::ptr::eq(body, &updated) {
                let want = format!("this change resets or ends BGP sessions on {NODES} node(s): 198.51.100.1 (default): removed");
                assert!(warnings.iter().any(|w| w.starts_with(&want)), "{warnings:?}");
            }
            times.push(t);
        }
        let cpu_each = (cpu() - cpu_before) / times.len() as u32;
        summary(&format!("decision, object selecting all {NODES} nodes, {what}"), &mut times);
        println!("  CPU time per decision (both threads, mean; independent of other load): {:.1} ms", cpu_each.as_secs_f64() * 1e3);
    }

    // 2. 50 concurrent reviews over HTTPS, /healthz probed meanwhile on its own connection.
    let server = webhook_server::start_with(Limits::default(), state.clone()).await;
    let mut health = server.connect().await.unwrap();
    health.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert_eq!(webhook_server::response(&mut health).await.0, 200, "the stores are ready");
    let mut review_times = Vec::new();
    let mut health_times = Vec::new();
    let mut bursts = Vec::new();
    for round in 0..5 {
        let body = if round % 2 == 0 { admitted.clone() } else { refused.clone() };
        let mut conns = Vec::new();
        for _ in 0..50 {
            conns.push(server.connect().await.unwrap());
        }
        let burst_started = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let body = body.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let (status, text) = webhook_server::post(&mut c, &body).await;
                    assert_eq!(status, 200, "{text}");
                    t.elapsed()
                })
            })
            .collect();
        while !tasks.iter().all(|t| t.is_finished()) {
            let t = Instant::now();
            health.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
            let (status, _) = webhook_server::response(&mut health).await;
            assert_eq!(status, 200);
            health_times.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for t in tasks {
            review_times.push(t.await.unwrap());
        }
        bursts.push(burst_started.elapsed());
    }
    summary("50 concurrent reviews over HTTPS (5 bursts, all-nodes objects), each review", &mut review_times);
    summary("50 concurrent reviews, whole burst", &mut bursts);
    summary("/healthz during the bursts", &mut health_times);
    let after = memory();
    println!(
        "memory: RSS {:.1} MiB before the stores, {:.1} MiB holding them, {:.1} MiB after the reviews; peak (VmHWM) {:.1} MiB",
        before.0, kept.0, after.0, after.1
    );
}

/// The `racks` shape: 107 objects on every node; reviews of objects on every node.
async fn run_racks() {
    let started = Instant::now();
    let state = fill((0..NODES).map(metallb).chain((0..3006).map(rack_admin)));
    println!("stores: {} Nodes, {} FRRConfigurations, filled in {:.1} s", state.nodes.len(), state.configs.len(), started.elapsed().as_secs_f64());
    let new_object = |router_asn: u32| {
        let neighbors = json!([{"address": "203.0.113.254", "asn": 65300, "toReceive": {"allowed": {"mode": "all"}}}]);
        object("admin-new", Value::Null, json!([{"asn": router_asn, "neighbors": neighbors}]))
    };
    let admitted = create_review(&new_object(64512));
    let refused = create_review(&new_object(64999));
    let decide = |body: &[u8]| -> (Duration, bool) {
        let (elapsed, resp) = decide(&state, body);
        (elapsed, resp.allowed)
    };
    let (first, _) = tokio::task::block_in_place(|| decide(&admitted));
    println!("first review (builds the node index): {:.1} ms", first.as_secs_f64() * 1e3);
    for (what, body, allowed) in [("a new neighbor, admitted", &admitted, true), ("another router ASN, refused on every node", &refused, false)] {
        let mut times = Vec::new();
        for _ in 0..100 {
            let (t, ok) = tokio::task::block_in_place(|| decide(body));
            assert_eq!(ok, allowed, "{what}");
            times.push(t);
        }
        summary(&format!("decision, object selecting all {NODES} nodes, {what}"), &mut times);
    }
    // One review after another over HTTPS, as the API server sends them.
    let server = webhook_server::start_with(Limits::default(), state.clone()).await;
    let mut conn = server.connect().await.unwrap();
    for (what, body) in [("a new neighbor, admitted", &admitted), ("another router ASN, refused", &refused)] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let (status, text) = webhook_server::post(&mut conn, body).await;
            assert_eq!(status, 200, "{text}");
            times.push(t.elapsed());
        }
        summary(&format!("review over HTTPS, one at a time, {what}"), &mut times);
    }
    let after = memory();
    println!("memory: RSS {:.1} MiB; peak (VmHWM) {:.1} MiB", after.0, after.1);
}
