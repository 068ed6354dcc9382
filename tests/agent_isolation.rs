//! Per-object isolation in the node agent, against a real kube-apiserver + etcd, a real FRR
//! (10.3 and 8.4) and a GoBGP router, driven with kubectl:
//!
//! 1. MetalLB's object is in effect; an admin object whose timers conflict with it arrives: it
//!    is left out and reported (its status condition for the node with observedGeneration,
//!    reason and a message naming MetalLB's object and the field; a Warning Event; the
//!    FRRNodeState condition; the metric), while new LB IPs in MetalLB's object keep reaching
//!    the router.
//! 2. The admin fixes the object: it applies.
//! 3. An update that breaks it again: its previous generation stays in effect, MetalLB's
//!    changes still apply.
//! 4. The agent is killed and started again with the same state directory: the same decisions,
//!    and FRR's configuration does not change.
//! 5. The record of the generations in effect is corrupted, then deleted, while the agent is
//!    down: the restarted agent keeps what FRR runs (deciding afresh would drop the admin's
//!    generation in effect) and FRRNodeState says why.
//! 6. The admin fixes the object: everything applies and the record is written again.
//! 7. An admin's raw configuration that FRR's syntax check refuses is charged to that object
//!    (left out, with FRR's words), and MetalLB's changes still apply; fixed, it applies.
//! 8. An L3VNI wildcard import route target: left out on FRR 8.4 with the field and both
//!    versions, applied on 10.3 and 10.7.
//!
//! Needs root, the lab (FRR, gobgpd) and the apiserver binaries (.ci/install-apiserver.sh):
//! skipped without them, except under CI=true, where it fails.

mod apiserver;
#[path = "support/mod.rs"]
mod support;
// the lab and the API server harness each include tests/support
mod lab;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use apiserver::node::{self, Peering};
use apiserver::{AgentUnderTest, ApiServer};
use lab::{Frr, FrrVersion};
use serde_json::Value;

const NS: &str = "metallb-system";
const NODE_IP: &str = "192.0.2.113";
const ROUTER_IP: &str = "192.0.2.1";
const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: wk3\n  labels:\n    kubernetes.io/hostname: wk3\n";

/// MetalLB's object as MetalLB writes it, announcing `ips`, with MetalLB's timers.
fn metallb(ips: &[&str]) -> String {
    let list: String = ips.iter().map(|ip| format!("\n            - {ip}")).collect();
    let prefixes: String = ips.iter().map(|ip| format!("\n      - {ip}")).collect();
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: metallb-wk3\n  namespace: {NS}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: {ROUTER_IP}\n        asn: 65102\n        holdTime: 90s\n        keepaliveTime: 30s\n        toAdvertise:\n          allowed:\n            prefixes:{list}\n      prefixes:{prefixes}\n  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: wk3\n  raw: {{}}\n"
    )
}

/// A cluster admin's object: receive everything from the router, with its own timers.
fn admin(hold: &str, keepalive: &str) -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: admin-receive\n  namespace: {NS}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: {ROUTER_IP}\n        asn: 65102\n        holdTime: {hold}\n        keepaliveTime: {keepalive}\n        toReceive:\n          allowed:\n            mode: all\n"
    )
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The agent of run `run` (its own log), with the state directory every run shares.
fn start_agent(api: &ApiServer, frr: &Frr, dir: &Path, state: &Path, run: u32) -> AgentUnderTest {
    AgentUnderTest::builder(api, &frr.cli_args(), "wk3", NS, dir)
        .log_name(format!("agent-{run}.log"))
        .args(["--poll-interval", "1"])
        .arg("--state-dir")
        .arg(state)
        .spawn()
}

/// This node's condition in an FRRConfiguration's status.
fn object_condition(api: &ApiServer, name: &str) -> Value {
    api.kubectl_json(&["-n", NS, "get", "frrconfiguration", name])
        .ok()
        .and_then(|o| o["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "wk3/Applied").cloned()))
        .unwrap_or(Value::Null)
}

fn node_condition(api: &ApiServer) -> Value {
    api.kubectl_json(&["get", "frrnodestate", "wk3"])
        .ok()
        .and_then(|o| o["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "AllConfigurationsApplied").cloned()))
        .unwrap_or(Value::Null)
}

/// Events (events.k8s.io) about an object: (type, reason, note).
fn events(api: &ApiServer, name: &str) -> Vec<(String, String, String)> {
    let list = api.kubectl_json(&["-n", NS, "get", "events.events.k8s.io"]).unwrap_or(Value::Null);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["regarding"]["name"] == name && e["regarding"]["kind"] == "FRRConfiguration")
        .map(|e| (e["type"].as_str().unwrap_or("").to_string(), e["reason"].as_str().unwrap_or("").to_string(), e["note"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn isolation_against_real_apiserver(version: FrrVersion) {
    let v = version.label();
    let peering = Peering { node_ip: NODE_IP, node_asn: 65801, router_ip: ROUTER_IP, router_asn: 65102 };
    let Some((tmp, frr, gobgp, api)) = node::frr_router_apiserver(version, NS, NODE, peering) else { return };
    gobgp.add_route("203.0.113.0/24", ROUTER_IP, &[]).unwrap();
    let state = tmp.path().join("state");
    let mut agent = start_agent(&api, &frr, tmp.path(), &state, 1);

    let running = || frr.running_config().unwrap_or_default();
    let diag = |agent: &AgentUnderTest, what: &str| {
        format!(
            "{}\n--- admin-receive\n{}\n--- FRRNodeState condition\n{}\n--- FRR running\n{}",
            agent.diag(&format!("FRR {v}: {what}")),
            api.kubectl(&["-n", NS, "get", "frrconfiguration", "admin-receive", "-o", "yaml"]).unwrap_or_default(),
            node_condition(&api),
            running()
        )
    };
    let router_gets = |ips: &[&str]| lab::wait_until(Duration::from_secs(30), || gobgp.received_prefixes(NODE_IP).is_ok_and(|p| p == set(ips)));

    // MetalLB announces its first LoadBalancer IP.
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb(&["198.51.100.1/32"])).unwrap();
    assert!(router_gets(&["198.51.100.1/32"]), "{}", diag(&agent, "the router did not get the first LB IP"));
    assert!(running().contains("timers 30 90"), "{}", diag(&agent, "MetalLB's timers not applied"));

    // 1. The admin's object conflicts (timers): left out and reported; MetalLB keeps working.
    api.kubectl_stdin(&["apply", "-f", "-"], &admin("30s", "10s")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(15), || object_condition(&api, "admin-receive")["reason"] == "LeftOut"),
        "{}",
        diag(&agent, "the admin object is not reported as left out")
    );
    let c = object_condition(&api, "admin-receive");
    assert_eq!(c["status"], "False");
    assert_eq!(c["observedGeneration"], 1);
    let msg = c["message"].as_str().unwrap();
    assert!(msg.contains(&format!("{NS}/metallb-wk3")) && msg.contains("holdTime") && msg.contains("generation 1 is refused"), "{msg}");
    assert!(object_condition(&api, "metallb-wk3")["status"] == "True", "{}", object_condition(&api, "metallb-wk3"));
    let nc = node_condition(&api);
    assert_eq!(nc["status"], "False", "{nc}");
    assert!(nc["message"].as_str().unwrap().contains(&format!("{NS}/admin-receive")), "{nc}");
    assert!(
        lab::wait_until(Duration::from_secs(10), || events(&api, "admin-receive")
            .iter()
            .any(|(t, r, n)| t == "Warning" && r == "LeftOut" && n.contains("holdTime"))),
        "no Warning event: {:?}",
        events(&api, "admin-receive")
    );
    assert_eq!(agent.metric("frr_composer_configurations_left_out"), Some(1.0), "{}", agent.metrics());
    assert!(!running().contains("frr-composer-permit-any"), "{}", diag(&agent, "the left-out object reached FRR"));
    // a new LoadBalancer IP still reaches the router
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb(&["198.51.100.1/32", "198.51.100.2/32"])).unwrap();
    assert!(router_gets(&["198.51.100.1/32", "198.51.100.2/32"]), "{}", diag(&agent, "a new LB IP was blocked by the admin's object"));
    // the same decision is not sent again as a new event
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(events(&api, "admin-receive").len(), 1, "{:?}", events(&api, "admin-receive"));

    // 2. The admin fixes the timers: the object applies.
    api.kubectl_stdin(&["apply", "-f", "-"], &admin("90s", "30s")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(15), || {
            object_condition(&api, "admin-receive")["status"] == "True" && running().contains("frr-composer-permit-any")
        }),
        "{}",
        diag(&agent, "the fixed object did not apply")
    );
    assert_eq!(object_condition(&api, "admin-receive")["observedGeneration"], 2);
    assert!(lab::wait_until(Duration::from_secs(10), || node_condition(&api)["status"] == "True"), "{}", diag(&agent, "node condition not back to True"));

    // 3. An update breaks it: generation 2 stays in effect.
    api.kubectl_stdin(&["apply", "-f", "-"], &admin("30s", "10s")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(15), || object_condition(&api, "admin-receive")["reason"] == "HeldAtLastGood"),
        "{}",
        diag(&agent, "the broken update is not held")
    );
    let c = object_condition(&api, "admin-receive");
    assert_eq!(c["observedGeneration"], 3);
    assert!(c["message"].as_str().unwrap().contains("generation 3 is refused, generation 2 stays in effect"), "{c}");
    assert!(running().contains("frr-composer-permit-any") && running().contains("timers 30 90"), "{}", diag(&agent, "generation 2 is no longer in effect"));
    assert_eq!(agent.metric("frr_composer_configurations_held_at_last_good"), Some(1.0), "{}", agent.metrics());
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb(&["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"])).unwrap();
    assert!(router_gets(&["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"]), "{}", diag(&agent, "MetalLB blocked while another object is held"));
    // the decisions are kept on the node, privately
    let file = state.join("in-effect.json");
    assert!(lab::wait_until(Duration::from_secs(5), || std::fs::read_to_string(&file).is_ok_and(|t| t.contains("admin-receive"))), "no state file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // 4. The agent restarts: same decisions, FRR unchanged.
    let before = running();
    let reported = object_condition(&api, "admin-receive");
    drop(agent);
    agent = start_agent(&api, &frr, tmp.path(), &state, 2);
    assert!(lab::wait_until(Duration::from_secs(20), || agent.log().contains("caches synced")), "{}", diag(&agent, "the restarted agent did not sync"));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(running(), before, "{}", diag(&agent, "FRR changed after the agent restarted"));
    let log = agent.log();
    assert!(log.contains("generations in effect loaded"), "{log}");
    let after = object_condition(&api, "admin-receive");
    assert_eq!(
        (&after["reason"], &after["observedGeneration"], &after["message"]),
        (&reported["reason"], &reported["observedGeneration"], &reported["message"]),
        "{}",
        diag(&agent, "decision changed after restart")
    );
    assert!(!log.contains("panicked"));

    // 5. The record is corrupted, then deleted, while the agent is down. Deciding afresh would
    //    put MetalLB's older object first, leave admin-receive out and drop its generation 2
    //    from FRR; the restarted agent cannot know which generation FRR runs, so FRR keeps what
    //    it runs and FRRNodeState says why.
    let conversion = || {
        api.kubectl_json(&["get", "frrnodestate", "wk3"]).ok().and_then(|s| s["status"]["lastConversionResult"].as_str().map(String::from)).unwrap_or_default()
    };
    for (run, damage) in [(3, "corrupted"), (4, "deleted")] {
        drop(agent);
        if damage == "corrupted" {
            std::fs::write(&file, "{\"objects\": ").unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
        }
        agent = start_agent(&api, &frr, tmp.path(), &state, run);
        assert!(
            lab::wait_until(Duration::from_secs(20), || conversion().contains("no record of them")),
            "{}",
            diag(&agent, &format!("the record was {damage}: FRRNodeState does not say why nothing applies ({})", conversion()))
        );
        let c = conversion();
        assert!(c.contains(&format!("{NS}/admin-receive")) && c.contains("holdTime"), "{c}");
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(running(), before, "{}", diag(&agent, &format!("FRR changed after the record was {damage}")));
        assert!(router_gets(&["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"]), "{}", diag(&agent, "the router lost an LB IP"));
    }
    // 6. The admin fixes the object: everything applies, and the record is written again.
    api.kubectl_stdin(&["apply", "-f", "-"], &admin("90s", "30s")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(15), || object_condition(&api, "admin-receive")["observedGeneration"] == 4
            && object_condition(&api, "admin-receive")["status"] == "True"
            && conversion() == "success"),
        "{}",
        diag(&agent, "the fixed object did not apply after the record was lost")
    );
    assert!(
        lab::wait_until(Duration::from_secs(5), || std::fs::read_to_string(&file).is_ok_and(|t| t.contains("admin-receive"))),
        "the record was not written again"
    );
    assert!(running().contains("frr-composer-permit-any") && running().contains("timers 30 90"), "{}", diag(&agent, "after the fix"));

    // 7. An admin's raw configuration that FRR refuses is charged to it: left out with FRR's
    //    words, while MetalLB's new LB IP still reaches the router and the reload succeeds.
    let bad_raw = format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: admin-raw\n  namespace: {NS}\nspec:\n  raw:\n    rawConfig: |\n      ip prefix-lisst admin-deny seq 5 deny 203.0.113.0/24\n"
    );
    api.kubectl_stdin(&["apply", "-f", "-"], &bad_raw).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(20), || object_condition(&api, "admin-raw")["reason"] == "LeftOut"),
        "{}",
        diag(&agent, "the raw object FRR refuses is not charged with it")
    );
    let c = object_condition(&api, "admin-raw");
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(msg.contains("spec.raw.rawConfig") && msg.contains("FRR refuses") && msg.contains("prefix-lisst"), "{c}");
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb(&["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32", "198.51.100.4/32"])).unwrap();
    assert!(
        router_gets(&["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32", "198.51.100.4/32"]),
        "{}",
        diag(&agent, "a raw object FRR refuses blocked MetalLB's new LB IP")
    );
    assert_eq!(object_condition(&api, "metallb-wk3")["status"], "True");
    let reload = api.kubectl_json(&["get", "frrnodestate", "wk3"]).unwrap()["status"]["lastReloadResult"].clone();
    assert_eq!(reload, "success", "{}", diag(&agent, "the reload after charging the raw object"));
    assert_eq!(agent.metric("frr_composer_configurations_left_out"), Some(1.0), "{}", agent.metrics());
    assert!(!running().contains("admin-deny"), "{}", diag(&agent, "the refused raw line"));
    // fixed: it applies
    api.kubectl_stdin(&["apply", "-f", "-"], &bad_raw.replace("prefix-lisst", "prefix-list")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(20), || object_condition(&api, "admin-raw")["status"] == "True" && running().contains("ip prefix-list admin-deny")),
        "{}",
        diag(&agent, "the fixed raw object did not apply")
    );

    // 8. An L3VNI with a wildcard import route target, which FRR 8.4's bgpd refuses when it is
    //    applied although its syntax check takes it: on 8.4 the object is left out with the
    //    field and both versions (no failed reload); on 10.3 and 10.7 it applies.
    let evpn = format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: admin-evpn\n  namespace: {NS}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      vrf: red\n      evpn:\n        l3vni:\n          vni: 3000\n          importRTs: ['65801:3000', '*:3000']\n          advertisePrefixes: [unicast]\n"
    );
    api.kubectl_stdin(&["apply", "-f", "-"], &evpn).unwrap();
    if version == FrrVersion::V8 {
        assert!(
            lab::wait_until(Duration::from_secs(20), || object_condition(&api, "admin-evpn")["reason"] == "LeftOut"),
            "{}",
            diag(&agent, "the wildcard route target on FRR 8.4 is not refused")
        );
        let c = object_condition(&api, "admin-evpn");
        let msg = c["message"].as_str().unwrap_or_default();
        assert!(msg.contains("spec.bgp.routers[0].evpn.l3vni.importRTs[1]") && msg.contains("needs FRR 8.5 or later; this node runs FRR 8.4"), "{c}");
        assert!(!msg.contains("Malformed"), "refused by FRR, not before: {c}");
        let reload = api.kubectl_json(&["get", "frrnodestate", "wk3"]).unwrap()["status"]["lastReloadResult"].clone();
        assert_eq!(reload, "success", "{}", diag(&agent, "the reload beside the refused EVPN object"));
        assert!(!running().contains("route-target import *:3000"), "{}", diag(&agent, "the refused wildcard"));
    } else {
        assert!(
            lab::wait_until(Duration::from_secs(20), || object_condition(&api, "admin-evpn")["status"] == "True"
                && running().contains("route-target import *:3000")),
            "{}",
            diag(&agent, &format!("the wildcard route target did not apply on FRR {v}"))
        );
    }
    api.kubectl(&["-n", NS, "delete", "frrconfiguration", "admin-evpn"]).unwrap();
    // (FRR 10 keeps an empty `vrf red` stanza: the VRF's definition, not configuration)
    assert!(
        lab::wait_until(Duration::from_secs(20), || !running().contains("router bgp 65801 vrf red") && !running().contains("vni 3000")),
        "{}",
        diag(&agent, "the EVPN object's removal")
    );
    assert!(!agent.log().contains("panicked"));
    eprintln!("FRR {v}: per-object isolation scenario passed");
}

crate::frr_versions!(isolation_against_real_apiserver);
