//! frr-composer as users deploy it: the shipped deploy/ (through an overlay that changes image
//! references only) on a real one-node Kubernetes (tests/cluster), with images built locally
//! from Debian's FRR 8.4, 10.3 and 10.7, against an FRR router in another namespace.
//!
//! Needs root and what .ci/install-apiserver.sh and .ci/install-cluster.sh build: skipped
//! without them, except under CI=true, where it fails. One cluster at a time per machine (the
//! harness holds a lock), about 8 minutes per FRR version.

#[path = "cluster/mod.rs"]
mod cluster;
mod lab;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use cluster::{Cluster, NAMESPACE, NODE_IP, NODE_NAME};
use lab::{Frr, FrrVersion};
use serde_json::Value;

const LB_IP: &str = "198.51.100.181/32";
const PEER_ROUTE: &str = "203.0.113.0/24";
const AGENT: &str = "app.kubernetes.io/name=frr-composer";
const FRR: &str = "app.kubernetes.io/name=frr-composer-frr";
/// How long the agent is killed over and over while FRR must stay untouched.
const AGENT_KILL_PERIOD: Duration = Duration::from_secs(120);
const API_OUTAGE: Duration = Duration::from_secs(60);

const ROUTER_CONF: &str = "frr defaults traditional\nip route 203.0.113.0/24 blackhole\nrouter bgp 65102\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n neighbor 192.0.2.113 remote-as 65801\n address-family ipv4 unicast\n  redistribute static\n exit-address-family\nexit\n";

/// The field example (MetalLB's FRRConfiguration for one node), for this node.
fn metallb() -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: metallb-{NODE_NAME}\n  namespace: {NAMESPACE}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        disableMP: false\n        dualStackAddressFamily: false\n        passwordSecret: {{}}\n        port: 179\n        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n            - {LB_IP}\n        toReceive:\n          allowed:\n            mode: filtered\n      prefixes:\n      - {LB_IP}\n  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: {NODE_NAME}\n  raw: {{}}\n"
    )
}

fn receive_all() -> String {
    format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: receive-all\n  namespace: {NAMESPACE}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        toReceive:\n          allowed:\n            mode: all\n")
}

fn conflicting() -> String {
    format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: conflicting\n  namespace: {NAMESPACE}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65999\n")
}

/// The router's view of the node's session: (established, dropped, state).
fn session(router: &Frr) -> (u64, u64, String) {
    let v = router.vtysh_json(&format!("show bgp neighbors {NODE_IP} json")).unwrap_or(Value::Null);
    let n = &v[NODE_IP];
    (n["connectionsEstablished"].as_u64().unwrap_or(0), n["connectionsDropped"].as_u64().unwrap_or(0), n["bgpState"].as_str().unwrap_or("").to_string())
}

fn pod_ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn restarts(p: &Value, container: &str) -> u64 {
    p["status"]["containerStatuses"].as_array().and_then(|c| c.iter().find(|c| c["name"] == container)).and_then(|c| c["restartCount"].as_u64()).unwrap_or(0)
}

/// A counter of the agent's /metrics (hostNetwork: 127.0.0.1:9140 in the node namespace).
fn agent_metric(c: &Cluster, name: &str) -> Option<u64> {
    let text = c.node.exec(&["curl", "-s", "--max-time", "2", "http://127.0.0.1:9140/metrics"]).ok()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse::<f64>().ok()).map(|v| v as u64))
}

fn scenario(version: FrrVersion) {
    if !cluster::require() {
        return;
    }
    let v = version.label();
    let mut c = Cluster::start(version).unwrap();
    let router = Frr::start(FrrVersion::V8, &c.router).unwrap();
    router.load_config_file(ROUTER_CONF).unwrap();
    let node_state = |c: &Cluster| c.kubectl_json(&["get", "frrnodestate", NODE_NAME]).ok();
    let status = |c: &Cluster, f: &str| node_state(c).and_then(|s| s["status"][f].as_str().map(String::from)).unwrap_or_default();
    let diag = |c: &Cluster, what: &str| {
        // FRR_COMPOSER_CLUSTER_HOLD=SECONDS keeps a failing cluster up for a look (kubeconfig in the run folder)
        if let Some(secs) = std::env::var("FRR_COMPOSER_CLUSTER_HOLD").ok().and_then(|s| s.parse().ok()) {
            eprintln!("FRR {v}: {what}; holding the cluster for {secs} s (node namespace {})", c.node.name());
            std::thread::sleep(Duration::from_secs(secs));
        }
        let logs = c.kubectl(&["-n", NAMESPACE, "logs", "-l", AGENT, "--tail=40"]).unwrap_or_default();
        format!(
            "FRR {v}: {what}\n--- FRRNodeState\n{}\n--- agent log\n{logs}\n{}",
            node_state(c).map(|s| serde_json::to_string_pretty(&s["status"]).unwrap()).unwrap_or_default(),
            c.diagnostics()
        )
    };

    // 1. deploy/ as shipped, images swapped by the overlay: every pod Ready, FRRNodeState success.
    let overlay = c.overlay().unwrap();
    let t = Instant::now();
    c.kubectl(&["apply", "-k", &overlay.display().to_string()]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(180), || status(&c, "lastReloadResult") == "success"), "{}", diag(&c, "no successful FRRNodeState"));
    eprintln!("FIGURE FRR {v}: kubectl apply -k -> FRRNodeState success: {:.1} s", t.elapsed().as_secs_f64());
    for sel in [FRR, AGENT] {
        assert!(lab::wait_until(Duration::from_secs(60), || c.pods(sel).iter().any(pod_ready)), "{}", diag(&c, &format!("{sel} not Ready")));
    }
    // FRR's hostname is the node's, not the host's
    assert!(status(&c, "runningConfig").lines().any(|l| l == format!("hostname {NODE_NAME}")), "{}", diag(&c, "FRR's hostname is not the node name"));

    // 2. The webhook Deployment becomes Available on one node (both replicas run here).
    let t = Instant::now();
    c.kubectl(&["-n", NAMESPACE, "rollout", "status", "deployment/frr-composer-webhook", "--timeout=180s"])
        .unwrap_or_else(|e| panic!("{e}\n{}", diag(&c, "webhook rollout")));
    let dep = c.kubectl_json(&["-n", NAMESPACE, "get", "deployment", "frr-composer-webhook"]).unwrap();
    assert!(dep["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Available" && c["status"] == "True"), "{dep}");
    assert_eq!(dep["status"]["readyReplicas"], 2, "{dep}");
    eprintln!("FRR {v}: webhook Available after {:.1} s more", t.elapsed().as_secs_f64());

    // 3. The field example through the webhook: the router gets the LB /32 over one session.
    c.kubectl_stdin(&["apply", "-f", "-"], &metallb()).unwrap_or_else(|e| panic!("{e}\n{}", diag(&c, "field example refused")));
    assert!(
        lab::wait_until(Duration::from_secs(60), || router.bgp_prefixes(false).is_ok_and(|p| p.contains(LB_IP))),
        "{}",
        diag(&c, "the router did not get the LB IP")
    );
    let (established, dropped, state) = session(&router);
    assert_eq!((established, state.as_str()), (1, "Established"), "{}", diag(&c, "session"));
    let same_session = |what: &str| {
        let now = session(&router);
        assert_eq!(now, (established, dropped, "Established".to_string()), "FRR {v}: the BGP session reset ({what})");
    };
    let sessions = |c: &Cluster| {
        c.kubectl_json(&["-n", NAMESPACE, "get", "bgpsessionstates", "-l", &format!("frrk8s.metallb.io/node={NODE_NAME}")])
            .map(|l| l["items"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    assert!(
        lab::wait_until(Duration::from_secs(20), || sessions(&c)
            .iter()
            .any(|s| s["status"]["bgpStatus"] == "Established" && s["metadata"]["labels"]["frrk8s.metallb.io/peer"] == "192.0.2.1")),
        "{:#?}",
        sessions(&c)
    );
    let ns = node_state(&c).unwrap();
    assert_eq!(ns["status"]["lastConversionResult"], "success", "{ns}");
    assert!(ns["status"]["observedGenerations"][format!("{NAMESPACE}/metallb-{NODE_NAME}")].as_i64().is_some(), "{ns}");

    // receive-all: the router's route lands in the node's kernel; removing it withdraws it
    let kernel_has = |c: &Cluster| {
        c.node.routes(false, &["proto", "bgp"]).is_ok_and(|r| r.lines().any(|l| l.starts_with(&format!("{PEER_ROUTE} ")) && l.contains("via 192.0.2.1")))
    };
    c.kubectl_stdin(&["apply", "-f", "-"], &receive_all()).unwrap();
    assert!(lab::wait_until(Duration::from_secs(30), || kernel_has(&c)), "{}", diag(&c, "receive-all: no route in the node's kernel"));
    c.kubectl(&["-n", NAMESPACE, "delete", "frrconfiguration", "receive-all"]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(30), || !kernel_has(&c)), "{}", diag(&c, "route stayed after removing receive-all"));
    same_session("receive-all added and removed");

    // 4. The webhook refuses a conflict through its Service.
    let refused = c.kubectl_stdin(&["apply", "-f", "-"], &conflicting()).expect_err("a conflicting FRRConfiguration was admitted");
    let msg = refused.to_string();
    assert!(msg.contains("denied the request") && msg.contains("65999"), "{msg}");
    assert!(c.kubectl(&["-n", NAMESPACE, "get", "frrconfiguration", "conflicting"]).is_err());

    // 5. Rollout restart of the agent: old pod gone in < 3 s, no command from the new agent, no reset.
    let old: Vec<String> = c.pods(AGENT).iter().filter_map(|p| p["metadata"]["name"].as_str().map(String::from)).collect();
    assert_eq!(old.len(), 1);
    let t = Instant::now();
    c.kubectl(&["-n", NAMESPACE, "rollout", "restart", "daemonset/frr-composer"]).unwrap();
    let mut terminating_since = None;
    let mut gone_after = None;
    while t.elapsed() < Duration::from_secs(60) {
        match c.kubectl_json(&["-n", NAMESPACE, "get", "pod", &old[0]]) {
            Ok(p) if !p["metadata"]["deletionTimestamp"].is_null() => {
                terminating_since.get_or_insert_with(Instant::now);
            }
            Ok(_) => {}
            Err(_) => {
                gone_after = Some(terminating_since.map(|s| s.elapsed()).unwrap_or_default());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone_after = gone_after.unwrap_or_else(|| panic!("{}", diag(&c, "old agent pod still there after 60 s")));
    eprintln!("FIGURE FRR {v}: old agent pod terminated in {:.1} s", gone_after.as_secs_f64());
    assert!(gone_after < Duration::from_secs(3), "FRR {v}: the old agent pod took {gone_after:?} to terminate");
    c.kubectl(&["-n", NAMESPACE, "rollout", "status", "daemonset/frr-composer", "--timeout=120s"])
        .unwrap_or_else(|e| panic!("{e}\n{}", diag(&c, "agent rollout")));
    eprintln!("FIGURE FRR {v}: rollout restart of the agent: {:.1} s", t.elapsed().as_secs_f64());
    assert!(
        lab::wait_until(Duration::from_secs(30), || agent_metric(&c, "frr_composer_applies_total").is_some_and(|n| n >= 1)),
        "{}",
        diag(&c, "new agent did not apply")
    );
    let sent = agent_metric(&c, "frr_composer_commands_sent_total");
    eprintln!("FIGURE FRR {v}: commands sent by the restarted agent's first apply: {sent:?}");
    assert_eq!(sent, Some(0), "{}", diag(&c, "the restarted agent sent commands"));
    same_session("agent rollout restart");

    // 6. The agent killed over and over: FRR is never restarted, the session stays.
    let frr_pod = c.pods(FRR).into_iter().find(pod_ready).unwrap_or_else(|| panic!("{}", diag(&c, "FRR pod not ready")));
    let frr_pid = c.container_pid(&frr_pod, "frr").unwrap();
    let frr_restarts = restarts(&frr_pod, "frr");
    let t = Instant::now();
    let mut kills = 0;
    while t.elapsed() < AGENT_KILL_PERIOD {
        if let Some(pid) = c.pods(AGENT).first().and_then(|p| c.container_pid(p, "frr-composer")) {
            let _ = lab::support::run(lab::support::command("kill").args(["-KILL", &pid.to_string()]));
            kills += 1;
        }
        std::thread::sleep(Duration::from_secs(2));
        same_session("agent killed");
    }
    let frr_pod = c.pods(FRR).into_iter().next().unwrap();
    assert_eq!(restarts(&frr_pod, "frr"), frr_restarts, "FRR {v}: FRR restarted while the agent was killed");
    assert_eq!(c.container_pid(&frr_pod, "frr"), Some(frr_pid));
    assert!(kills >= 3, "only {kills} kills");
    assert!(router.bgp_prefixes(false).unwrap().contains(LB_IP));
    assert!(lab::wait_until(Duration::from_secs(330), || c.pods(AGENT).iter().any(pod_ready)), "{}", diag(&c, "agent not back after the kills"));

    // 7. The API server away for 60 s: FRR untouched; the agent catches up after.
    c.stop_apiserver();
    let t = Instant::now();
    while t.elapsed() < API_OUTAGE {
        std::thread::sleep(Duration::from_secs(5));
        same_session("API server stopped");
    }
    c.restart_apiserver().unwrap();
    assert!(router.bgp_prefixes(false).unwrap().contains(LB_IP));
    let t = Instant::now();
    let caught_up = lab::wait_until(Duration::from_secs(90), || c.kubectl_stdin(&["apply", "-f", "-"], &receive_all()).is_ok());
    assert!(caught_up, "{}", diag(&c, "cannot write after the API server came back"));
    // (the kubelet, kube-proxy and the agent all reconnect on their own backoff; kube-proxy restores
    // the `kubernetes` Service, which the stopped API server took out of its endpoints)
    assert!(lab::wait_until(Duration::from_secs(180), || kernel_has(&c)), "{}", diag(&c, "the agent did not catch up after the API server outage"));
    eprintln!("FRR {v}: agent caught up {:.1} s after the API server returned", t.elapsed().as_secs_f64());
    c.kubectl(&["-n", NAMESPACE, "delete", "frrconfiguration", "receive-all"]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(30), || !kernel_has(&c)), "{}", diag(&c, "route stayed"));
    same_session("API server outage");

    // 8. FRR killed: it comes back with the persisted configuration, the agent sends nothing.
    let sent_before = agent_metric(&c, "frr_composer_commands_sent_total").unwrap();
    // (after the outage the controller-manager may mark the pods not ready until the kubelet reports again)
    assert!(lab::wait_until(Duration::from_secs(60), || c.pods(FRR).iter().any(pod_ready)), "{}", diag(&c, "FRR pod not ready after the outage"));
    let frr_pod = c.pods(FRR).into_iter().find(pod_ready).unwrap();
    let pid = c.container_pid(&frr_pod, "frr").unwrap();
    lab::support::run(lab::support::command("kill").args(["-KILL", &pid.to_string()])).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(60), || c.pods(FRR).first().is_some_and(|p| restarts(p, "frr") == frr_restarts + 1 && pod_ready(p))),
        "{}",
        diag(&c, "FRR not restarted")
    );
    assert!(
        lab::wait_until(Duration::from_secs(60), || session(&router).2 == "Established" && router.bgp_prefixes(false).is_ok_and(|p| p.contains(LB_IP))),
        "{}",
        diag(&c, "the LB IP did not come back after FRR restarted")
    );
    // the agent noticed the restart and re-applied: nothing was missing
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        agent_metric(&c, "frr_composer_commands_sent_total"),
        Some(sent_before),
        "{}",
        diag(&c, "FRR did not come back with the persisted configuration")
    );
    assert!(status(&c, "runningConfig").lines().any(|l| l == format!("hostname {NODE_NAME}")));
    drop(router);
    drop(c);
}

#[test]
fn deploy_on_real_cluster_frr8() {
    scenario(FrrVersion::V8);
}

#[test]
fn deploy_on_real_cluster_frr10() {
    scenario(FrrVersion::V10);
}

#[test]
fn deploy_on_real_cluster_frr10_7() {
    scenario(FrrVersion::V10_7);
}
