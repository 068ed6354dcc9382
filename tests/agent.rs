//! The node agent (`frr-composer controller`) against a real kube-apiserver + etcd and a real
//! FRR (10.3 and 8.4) in a network namespace, driven with kubectl as a user would.
//!
//! Needs root, the lab (FRR, gobgpd) and the apiserver binaries (.ci/install-apiserver.sh):
//! skipped without them, except under CI=true, where it fails.

mod apiserver;
#[path = "support/mod.rs"]
mod support;
// the lab and the API server harness each include tests/support
mod lab;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apiserver::node::{self, Peering};
use apiserver::{AgentUnderTest, ApiServer};
use lab::{Frr, FrrVersion};
use serde_json::Value;

const NS: &str = "openshift-frr-k8s";
const NODE_IP: &str = "192.0.2.113";
const ROUTER_IP: &str = "192.0.2.1";
const LB_IP: &str = "198.51.100.181/32";
const PEER_ROUTES: [&str; 3] = ["0.0.0.0/0", "203.0.113.0/24", "198.51.100.0/25"];
const PEERING: Peering = Peering { node_ip: NODE_IP, node_asn: 65801, router_ip: ROUTER_IP, router_asn: 65102 };

const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: wk3\n  labels:\n    kubernetes.io/hostname: wk3\n    kubernetes.io/os: linux\n";

fn metallb(extra_neighbor_fields: &str) -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: metallb-wk3\n  namespace: {NS}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        disableMP: false\n        dualStackAddressFamily: false\n        passwordSecret: {{}}\n        port: 179\n{extra_neighbor_fields}        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n            - 198.51.100.181/32\n        toReceive:\n          allowed:\n            mode: filtered\n      prefixes:\n      - 198.51.100.181/32\n  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: wk3\n  raw: {{}}\n"
    )
}

/// The node's object as MetalLB v0.16.2 writes it for a BGPAdvertisement with `asPathPrepend:
/// count` and a community (0: no prepend, only the community).
fn metallb_prepend(count: u32) -> String {
    let prepend = if count == 0 {
        String::new()
    } else {
        format!("          withAsPathPrepend:\n          - asPathPrepend: {count}\n            prefixes:\n            - 198.51.100.181/32\n")
    };
    let community = "          withCommunity:\n          - community: 65000:181\n            prefixes:\n            - 198.51.100.181/32\n";
    metallb("")
        .replace("            - 198.51.100.181/32\n        toReceive:", &format!("            - 198.51.100.181/32\n{prepend}{community}        toReceive:"))
}

const RECEIVE_ALL: &str = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: receive-all\n  namespace: openshift-frr-k8s\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        toReceive:\n          allowed:\n            mode: all\n";

const CONFLICT: &str = "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: conflicting\n  namespace: openshift-frr-k8s\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65999\n";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn agent_against_real_apiserver(version: FrrVersion) {
    let v = version.label();
    let Some((tmp, mut frr, gobgp, mut api)) = node::frr_router_apiserver(version, NS, NODE, PEERING) else { return };
    for p in PEER_ROUTES {
        gobgp.add_route(p, ROUTER_IP, &[]).unwrap();
    }

    let agent = AgentUnderTest::start(&api, &frr.cli_args(), "wk3", NS, tmp.path(), &["--drift-interval", "2", "--poll-interval", "1"]);

    let node_state = |api: &ApiServer| api.kubectl_json(&["get", "frrnodestate", "wk3"]).ok();
    let status_field = |api: &ApiServer, f: &str| node_state(api).and_then(|s| s["status"][f].as_str().map(String::from)).unwrap_or_default();
    let diag_with = |api: &ApiServer, frr: &Frr, what: &str| {
        let _ = std::fs::write(std::env::temp_dir().join("frr-composer-agent-failed.log"), agent.log());
        format!(
            "{}\n--- FRRNodeState\n{}\n--- FRR running\n{}",
            agent.diag(&format!("FRR {v}: {what}")),
            node_state(api).map(|s| serde_json::to_string_pretty(&s["status"]).unwrap()).unwrap_or_default(),
            frr.running_config().unwrap_or_default()
        )
    };
    macro_rules! diag {
        ($api:expr, $what:expr) => {
            diag_with($api, &frr, $what)
        };
    }

    // 1. With no configuration the agent applies the empty configuration and reports it.
    assert!(lab::wait_until(Duration::from_secs(30), || status_field(&api, "lastConversionResult") == "success"), "{}", diag!(&api, "no FRRNodeState"));
    assert!(lab::wait_until(Duration::from_secs(10), || agent.http_get("/readyz").0 == 200), "{}", diag!(&api, "not ready"));
    assert_eq!(agent.http_get("/healthz").0, 200);
    assert_eq!(agent.http_get("/livez").0, 200, "{}", agent.http_get("/livez").1);

    // 1b. FRRK8sConfiguration `config` changes the log levels at runtime: FRR's and the agent's.
    assert!(!agent.log().contains("\"level\":\"DEBUG\""));
    let settings = |level: &str| {
        format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRK8sConfiguration\nmetadata:\n  name: config\n  namespace: {NS}\nspec:\n  logLevel: {level}\n")
    };
    api.kubectl_stdin(&["apply", "-f", "-"], &settings("debug")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || frr.running_config().unwrap_or_default().contains("debug bgp neighbor-events")),
        "{}",
        diag!(&api, "FRR debug logging not enabled")
    );
    assert!(lab::wait_until(Duration::from_secs(5), || agent.log().contains("\"level\":\"DEBUG\"")), "{}", diag!(&api, "agent debug logging not enabled"));
    api.kubectl_stdin(&["apply", "-f", "-"], &settings("info")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || !frr.running_config().unwrap_or_default().contains("debug bgp")),
        "{}",
        diag!(&api, "FRR debug logging not disabled")
    );

    // 2. The field example: kubectl apply -> FRRNodeState shows it; the router gets the LB IP.
    let t = Instant::now();
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb("")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || status_field(&api, "runningConfig").contains("permit 198.51.100.181/32")),
        "{}",
        diag!(&api, "metallb-wk3 not applied")
    );
    let latency = t.elapsed();
    eprintln!("FRR {v}: kubectl apply -> FRRNodeState shows the new config: {:.0} ms", latency.as_secs_f64() * 1e3);
    let ns_obj = node_state(&api).unwrap();
    assert_eq!(ns_obj["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(ns_obj["status"]["lastReloadResult"], "success");
    assert!(ns_obj["status"]["observedGenerations"][format!("{NS}/metallb-wk3")].as_i64().is_some(), "{ns_obj}");
    let ready = ns_obj["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    assert_eq!(ready["status"], "True");
    assert!(
        lab::wait_until(Duration::from_secs(25), || gobgp.received_prefixes(NODE_IP).is_ok_and(|p| p == set(&[LB_IP]))),
        "{}",
        diag!(&api, "router did not get the LB IP")
    );
    let cfg = api.kubectl_json(&["-n", NS, "get", "frrconfiguration", "metallb-wk3"]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(5), || api
            .kubectl_json(&["-n", NS, "get", "frrconfiguration", "metallb-wk3"])
            .is_ok_and(|c| c["status"]["appliedOn"] == serde_json::json!(["wk3"]))),
        "{cfg}"
    );

    // BGPSessionState for the peer, with the anchor's labels.
    let sessions = |api: &ApiServer| {
        api.kubectl_json(&["-n", NS, "get", "bgpsessionstates", "-l", "frrk8s.metallb.io/node=wk3"])
            .map(|l| l["items"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    assert!(
        lab::wait_until(Duration::from_secs(10), || sessions(&api)
            .iter()
            .any(|s| s["status"]["bgpStatus"] == "Established" && s["metadata"]["labels"]["frrk8s.metallb.io/peer"] == ROUTER_IP)),
        "{:#?}\n{}",
        sessions(&api),
        diag!(&api, "no Established BGPSessionState")
    );
    // ... with what FRR sent on it, read from FRR's advertised routes: the LB IP
    let advertised = |api: &ApiServer| {
        sessions(api).iter().find(|s| s["metadata"]["labels"]["frrk8s.metallb.io/peer"] == ROUTER_IP).map(|s| s["status"]["advertisedPrefixes"].clone())
    };
    assert!(
        lab::wait_until(Duration::from_secs(10), || advertised(&api) == Some(serde_json::json!([LB_IP]))),
        "{:?}\n{}",
        advertised(&api),
        diag!(&api, "the session's advertisedPrefixes is not the LB IP")
    );
    // metrics with the anchor's names
    assert!(
        lab::wait_until(Duration::from_secs(5), || agent.metric(r#"frrk8s_bgp_session_up{peer="192.0.2.1",vrf="default"}"#) == Some(1.0)),
        "{}",
        agent.metrics()
    );
    // the running FRR's version, in the node's status and as a metric label
    let frr_version = status_field(&api, "frrVersion");
    assert!(frr_version.starts_with(version.label()), "frrVersion {frr_version:?} for FRR {v}\n{}", diag!(&api, "no frrVersion"));
    let info = format!(r#"frr_composer_frr_info{{version="{frr_version}"}} 1"#);
    assert!(agent.metrics().contains(&info), "no {info}:\n{}", agent.metrics());

    // 2b. MetalLB v0.16.2's AS-path prepend, as its speaker writes it (frr-k8s v0.0.27's
    //     `withAsPathPrepend`, beside a community): kept by the API server, applied by the
    //     agent, and the router holds the LB IP with 65801 prepended N times and its community.
    //     Changing and removing the prepend does not reset the session.
    let lb_at_router = || gobgp.adj_in(NODE_IP).ok()?.into_iter().find(|r| r.prefix == LB_IP).map(|r| (r.as_path, r.communities));
    let session_counters = |frr: &Frr| {
        let v = frr.vtysh_json("show bgp neighbors 192.0.2.1 json").unwrap_or_default();
        (v[ROUTER_IP]["connectionsDropped"].as_u64().unwrap_or(u64::MAX), v[ROUTER_IP]["bgpTimerUpMsec"].as_u64().unwrap_or(0))
    };
    let (dropped, mut uptime) = session_counters(&frr);
    let mut seen = Vec::new();
    for count in [3u32, 1, 0] {
        let t = Instant::now();
        api.kubectl_stdin(&["apply", "-f", "-"], &metallb_prepend(count)).unwrap();
        let stored = api.kubectl_json(&["-n", NS, "get", "frrconfiguration", "metallb-wk3"]).unwrap();
        let kept = &stored["spec"]["bgp"]["routers"][0]["neighbors"][0]["toAdvertise"]["withAsPathPrepend"];
        assert_eq!(kept.as_array().map(Vec::len).unwrap_or(0), usize::from(count > 0), "the API server pruned withAsPathPrepend: {stored}");
        let want = (vec![65801u32; count as usize + 1], vec!["65000:181".to_string()]);
        assert!(
            lab::wait_until(Duration::from_secs(30), || lb_at_router().as_ref() == Some(&want)),
            "the router holds {:?}, expected {want:?}\n{}",
            lb_at_router(),
            diag!(&api, &format!("prepend {count} did not reach the router"))
        );
        seen.push(format!("{count}: {:.1} s", t.elapsed().as_secs_f64()));
        let (d, u) = session_counters(&frr);
        assert_eq!(d, dropped, "FRR {v}: prepend {count} reset the session");
        assert!(u > uptime, "FRR {v}: prepend {count}: the session's uptime went from {uptime} to {u} ms");
        uptime = u;
    }
    eprintln!("FRR {v}: kubectl apply -> the router holds the new AS path, by prepend count: {}", seen.join(", "));
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb("")).unwrap();

    // 3. receive-all widens: the node's kernel gains the routes; removing it takes them away.
    //    A kernel route on the node holds 198.51.100.0/25 first, so FRR accepts that one from
    //    the router and does not install it.
    frr.netns().ip(&["route", "add", "198.51.100.0/25", "via", "192.0.2.1", "metric", "5"]).unwrap();
    api.kubectl_stdin(&["apply", "-f", "-"], RECEIVE_ALL).unwrap();
    let kernel_has = |p: &str| frr.netns().routes(false, &["proto", "bgp"]).is_ok_and(|r| r.lines().any(|l| l.starts_with(p) && l.contains("via 192.0.2.1")));
    assert!(lab::wait_until(Duration::from_secs(20), || kernel_has("203.0.113.0/24 ")), "{}", diag!(&api, "routes not in the kernel after receive-all"));
    // ... the session publishes what it accepted, and `routes --received` names receive-all
    let accepted = |api: &ApiServer| {
        sessions(api).iter().find(|s| s["metadata"]["labels"]["frrk8s.metallb.io/peer"] == ROUTER_IP).map(|s| s["status"]["acceptedPrefixes"].clone())
    };
    let all_three = serde_json::json!(["0.0.0.0/0", "198.51.100.0/25", "203.0.113.0/24"]);
    assert!(
        lab::wait_until(Duration::from_secs(10), || accepted(&api) == Some(all_three.clone())),
        "{:?}\n{}",
        accepted(&api),
        diag!(&api, "acceptedPrefixes")
    );
    let received = || {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_frr-composer"))
            .args(["routes", "--received", "-o", "json", "-n", NS])
            .env("KUBECONFIG", api.kubeconfig())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let why = || {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_frr-composer"))
            .args(["why", "203.0.113.0/24", "--received", "--node", "wk3", "-n", NS])
            .env("KUBECONFIG", api.kubeconfig())
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    // ... and which of them the node's routing table installed from the router
    let installed = |api: &ApiServer| {
        sessions(api)
            .iter()
            .find(|s| s["metadata"]["labels"]["frrk8s.metallb.io/peer"] == ROUTER_IP)
            .map(|s| (s["status"]["prefixesInstalled"].clone(), s["status"]["notInstalledPrefixes"].clone()))
    };
    let two_of_three = Some((serde_json::json!(2), serde_json::json!(["198.51.100.0/25"])));
    assert!(
        lab::wait_until(Duration::from_secs(10), || installed(&api) == two_of_three),
        "{:?}\n{}",
        installed(&api),
        diag!(&api, "prefixesInstalled / notInstalledPrefixes")
    );
    let (code, out) = why();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("toReceive lets it in: {NS}/receive-all (mode: all)")) && out.contains("accepted it from 192.0.2.1"), "{out}");
    assert!(out.contains("wk3's routing table installed it via 192.0.2.1"), "{out}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_frr-composer"))
        .args(["why", "198.51.100.0/25", "--received", "--node", "wk3", "-n", NS])
        .env("KUBECONFIG", api.kubeconfig())
        .output()
        .unwrap();
    let beaten = String::from_utf8_lossy(&o.stdout);
    assert!(beaten.contains("accepted, not installed") && beaten.contains("did not install it via 192.0.2.1"), "{beaten}");
    let r = received();
    let rows: Vec<(String, serde_json::Value)> =
        r["received"].as_array().unwrap().iter().map(|x| (x["prefix"].as_str().unwrap().to_string(), x["acceptedBy"].clone())).collect();
    let by = serde_json::json!([format!("{NS}/receive-all")]);
    assert_eq!(rows, [("0.0.0.0/0".to_string(), by.clone()), ("198.51.100.0/25".to_string(), by.clone()), ("203.0.113.0/24".to_string(), by)], "{r:#}");
    let flags: Vec<&serde_json::Value> = r["received"].as_array().unwrap().iter().map(|x| &x["installed"]).collect();
    assert_eq!(flags, [true, false, true], "{r:#}");
    assert_eq!(r["sessionsIn"][0]["installed"], 2, "{r:#}");
    frr.netns().ip(&["route", "del", "198.51.100.0/25", "via", "192.0.2.1", "metric", "5"]).unwrap();
    api.kubectl(&["-n", NS, "delete", "frrconfiguration", "receive-all"]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(20), || !kernel_has("203.0.113.0/24 ")), "{}", diag!(&api, "routes stayed after removing receive-all"));
    // ... and now accepts nothing: no object's toReceive lets a route in
    assert!(lab::wait_until(Duration::from_secs(10), || accepted(&api) == Some(serde_json::json!([]))), "{:?}", accepted(&api));
    let r = received();
    assert!(r["received"].as_array().is_none_or(|a| a.is_empty()), "{r:#}");
    assert_eq!((&r["sessionsIn"][0]["accepted"], &r["sessionsIn"][0]["policy"]), (&serde_json::json!(0), &serde_json::json!([])), "{r:#}");
    let (code, out) = why();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("NO  no object defining neighbor 192.0.2.1 ({NS}/metallb-wk3) lets it in")), "{out}");

    // 4. A conflicting configuration: reported, FRR keeps the previous configuration.
    let before = frr.running_config().unwrap();
    api.kubectl_stdin(&["apply", "-f", "-"], CONFLICT).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || status_field(&api, "lastConversionResult").starts_with("failed")),
        "{}",
        diag!(&api, "conflict not reported")
    );
    let conv = status_field(&api, "lastConversionResult");
    // nothing was applied: the status keeps the last reload's result
    assert_eq!(status_field(&api, "lastReloadResult"), "success", "{}", diag!(&api, "reload result lost on a refused conversion"));
    assert!(conv.contains("openshift-frr-k8s/conflicting") && conv.contains("openshift-frr-k8s/metallb-wk3") && conv.contains("65999"), "{conv}");
    assert!(
        lab::wait_until(Duration::from_secs(5), || api
            .kubectl_json(&["-n", NS, "get", "frrconfiguration", "conflicting"])
            .is_ok_and(|c| c["status"]["errors"][0]["node"] == "wk3" && c["status"]["errors"][0]["message"].as_str().is_some_and(|m| m.contains("65999")))),
        "{}",
        diag!(&api, "the conflicting object's status does not say why")
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(frr.running_config().unwrap(), before, "FRR changed although the configuration was refused");
    api.kubectl(&["-n", NS, "delete", "frrconfiguration", "conflicting"]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(10), || status_field(&api, "lastConversionResult") == "success"), "{}", diag!(&api, "fix not applied"));

    // 5. Node labels: the configuration is re-selected.
    api.kubectl(&["label", "node", "wk3", "kubernetes.io/hostname=elsewhere", "--overwrite"]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || !frr.running_config().unwrap_or_default().contains("neighbor 192.0.2.1 remote-as")),
        "{}",
        diag!(&api, "relabelled node kept the config")
    );
    // the node gives up its entries in the object's status (and keeps no empty one)
    let applied_on = || api.kubectl_json(&["-n", NS, "get", "frrconfiguration", "metallb-wk3", "--show-managed-fields"]).ok();
    assert!(
        lab::wait_until(Duration::from_secs(10), || applied_on().is_some_and(|c| c["status"].get("appliedOn").is_none()
            && !c["metadata"]["managedFields"].as_array().unwrap().iter().any(|m| m["manager"] == "frr-composer/wk3"))),
        "{:?}",
        applied_on()
    );
    api.kubectl(&["label", "node", "wk3", "kubernetes.io/hostname=wk3", "--overwrite"]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || frr.running_config().unwrap_or_default().contains("neighbor 192.0.2.1 remote-as 65102")),
        "{}",
        diag!(&api, "config not back")
    );
    assert!(
        lab::wait_until(Duration::from_secs(10), || applied_on().is_some_and(|c| c["status"]["appliedOn"] == serde_json::json!(["wk3"]))),
        "{:?}",
        applied_on()
    );

    // 6. Password Secret rotation; the password never shows in FRRNodeState or the log.
    api.kubectl(&["-n", NS, "create", "secret", "generic", "peer-pw", "--type=kubernetes.io/basic-auth", "--from-literal=password=first-Secret-9"]).unwrap();
    // as MetalLB v0.16.2 writes it with --frrk8s-secret-passthrough: the reference names the
    // frr-k8s namespace
    let passthrough = format!("passwordSecret:\n          name: peer-pw\n          namespace: {NS}");
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb("").replace("passwordSecret: {}", &passthrough)).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || frr.running_config().unwrap_or_default().contains("password first-Secret-9")),
        "{}",
        diag!(&api, "password not applied")
    );
    api.kubectl_stdin(&["apply", "-f", "-"], &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: peer-pw\n  namespace: {NS}\ntype: kubernetes.io/basic-auth\nstringData:\n  password: second-Secret-7\n")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || frr.running_config().unwrap_or_default().contains("password second-Secret-7")),
        "{}",
        diag!(&api, "rotated password not applied")
    );
    assert!(
        lab::wait_until(Duration::from_secs(5), || status_field(&api, "runningConfig").contains("password <retracted>")),
        "{}",
        diag!(&api, "no redacted password in FRRNodeState")
    );
    let everything = format!("{}{}", serde_json::to_string(&node_state(&api).unwrap()).unwrap(), agent.log());
    assert!(!everything.contains("first-Secret-9") && !everything.contains("second-Secret-7"), "a password leaked into status or logs");
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb("")).unwrap();

    // 7. A hostile object (a newline in a password): a clear status, no crash.
    api.kubectl_stdin(&["apply", "-f", "-"], &format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: hostile\n  namespace: {NS}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        password: \"x\\n neighbor 192.0.2.99 remote-as 1\"\n")).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || status_field(&api, "lastConversionResult").contains("hostile")),
        "{}",
        diag!(&api, "hostile object not reported")
    );
    assert!(!frr.running_config().unwrap().contains("192.0.2.99"));
    api.kubectl(&["-n", NS, "delete", "frrconfiguration", "hostile"]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(10), || status_field(&api, "lastConversionResult") == "success"), "{}", diag!(&api, "not back to success"));

    // 8. The API server restarts mid-run: no wrong apply meanwhile, and changes apply after.
    let before = frr.running_config().unwrap();
    api.restart_apiserver().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(frr.running_config().unwrap(), before, "FRR changed while the API server restarted");
    api.kubectl_stdin(&["apply", "-f", "-"], RECEIVE_ALL).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(30), || frr.running_config().unwrap_or_default().contains("ip prefix-list frr-composer-permit-any")),
        "{}",
        diag!(&api, "no apply after the API server restart")
    );
    api.kubectl(&["-n", NS, "delete", "frrconfiguration", "receive-all"]).unwrap();

    // 9. bgpd killed and started again: the configuration is restored.
    frr.kill_daemon("bgpd").unwrap();
    frr.start_daemon("bgpd").unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(5), || frr.running_config().unwrap_or_default().contains("route-map 192.0.2.1-out out")),
        "{}",
        diag!(&api, "not restored after bgpd restart")
    );

    // 10. Every configuration deleted: FRR returns to the empty configuration, the session
    //     state object goes away.
    api.kubectl(&["-n", NS, "delete", "frrconfiguration", "--all"]).unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), || !frr.running_config().unwrap_or_default().contains("router bgp")),
        "{}",
        diag!(&api, "FRR not emptied")
    );
    assert!(lab::wait_until(Duration::from_secs(10), || sessions(&api).is_empty()), "{:#?}", sessions(&api));
    assert!(!agent.log().contains("panicked"));
    let _ = &mut api;
}

crate::frr_versions!(agent_against_real_apiserver);

/// An FRR 10.3 in its own namespace and an API server with the CRDs, the agents' namespace and
/// the Node (None: the test is skipped).
fn frr10_with_apiserver() -> Option<(lab::TempDir, node::NodeFrr, ApiServer)> {
    node::frr_with_apiserver(FrrVersion::V10, NS, NODE)
}

/// The FRRConfigurations of the agents' namespace through a kube client: writes at a pace
/// kubectl cannot keep.
async fn configs_api(api: &ApiServer) -> kube::Api<frr_composer::api::FRRConfiguration> {
    let kubeconfig = kube::config::Kubeconfig::read_from(api.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    kube::Api::namespaced(kube::Client::try_from(config).unwrap(), NS)
}

/// 100 changes within a second: 100 FRRConfigurations sent one every 10 ms (each one more
/// /32 for the same router; sent concurrently with a kube client, so that the API server's
/// pace does not stretch the burst). The agent applies the first at once and coalesces the
/// rest: at most 5 applies in all (its `frr_composer_applies` counter), and FRR ends with
/// exactly the 100 prefixes.
#[test]
fn burst_of_100_changes_coalesces_frr10() {
    let Some((tmp, frr, api)) = frr10_with_apiserver() else { return };
    let config = |name: &str, prefixes: &[String]| {
        serde_json::json!({"apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration", "metadata": {"name": name, "namespace": NS},
            "spec": {"bgp": {"routers": [{"asn": 65801, "prefixes": prefixes,
            "neighbors": [{"address": ROUTER_IP, "asn": 65102, "toAdvertise": {"allowed": {"mode": "all"}}}]}]}}})
    };
    let prefix = |i: usize| format!("198.51.100.{i}/32");
    api.kubectl_stdin(&["apply", "-f", "-"], &config("base", &[]).to_string()).unwrap();

    // as at thousands of nodes: the objects' status only names problems
    let agent = AgentUnderTest::start(&api, &frr.cli_args(), "wk3", NS, tmp.path(), &["--object-status", "problems"]);
    let applies = || agent.metric("frr_composer_applies_total").map(|n| n as u64);
    let networks = || -> BTreeSet<String> {
        frr.running_config().unwrap_or_default().lines().filter_map(|l| l.trim().strip_prefix("network ").map(String::from)).collect()
    };
    assert!(
        lab::wait_until(Duration::from_secs(30), || applies().is_some_and(|n| n >= 1) && frr.running_config().is_ok_and(|r| r.contains("router bgp 65801"))),
        "the first apply did not happen\n{}",
        agent.log()
    );
    // quiet: nothing pending
    std::thread::sleep(Duration::from_secs(2));
    let before = applies().unwrap();
    let applied_lines = |t: &str| t.lines().filter(|l| l.contains(r#""message":"applied""#)).count();
    let lines_before = applied_lines(&agent.log());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let took = rt.block_on(async {
        let configs = configs_api(&api).await;
        let start = Instant::now();
        let mut sends = Vec::new();
        for i in 1..=100 {
            let (configs, doc) = (configs.clone(), config(&format!("burst-{i:03}"), &[prefix(i)]));
            sends.push(tokio::spawn(async move {
                tokio::time::sleep_until((start + Duration::from_millis(10 * (i as u64 - 1))).into()).await;
                let c: frr_composer::api::FRRConfiguration = serde_json::from_value(doc).unwrap();
                configs.create(&kube::api::PostParams::default(), &c).await.unwrap();
            }));
        }
        for s in sends {
            s.await.unwrap();
        }
        start.elapsed()
    });
    let sent = Instant::now();
    let want: BTreeSet<String> = (1..=100).map(prefix).collect();
    assert!(lab::wait_until(Duration::from_secs(20), || networks() == want), "FRR does not run the 100 prefixes: {:?}\n{}", networks().len(), agent.log());
    let settled = sent.elapsed();
    // anything still pending would show within a second or two
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(networks(), want, "the final state is not exact");
    let n = applies().unwrap() - before;
    let logged = applied_lines(&agent.log()) - lines_before;
    eprintln!(
        "100 changes sent in {:.0} ms: {n} applies ({logged} that changed FRR); FRR at the final state {:.0} ms after the last change was accepted",
        took.as_secs_f64() * 1e3,
        settled.as_secs_f64() * 1e3
    );
    // (a loaded API server may take longer than the second the changes are spread over: more
    // time between the changes can only mean more applies, so the bound below still holds)
    assert!(n <= 5, "{n} applies for 100 changes within a second (at most 5)\n{}", agent.log());
    assert!(n >= 2, "{n} applies: the first change after the quiet period applies at once, the rest after it");
    // --object-status problems: 101 applied objects, and not one status entry or status write
    // of this node in them (its writes of an empty status changed nothing)
    let objects: serde_json::Value =
        serde_json::from_str(&api.kubectl(&["get", "frrconfigurations", "-n", NS, "-o", "json", "--show-managed-fields"]).unwrap()).unwrap();
    let items = objects["items"].as_array().unwrap();
    assert_eq!(items.len(), 101);
    for o in items {
        let name = &o["metadata"]["name"];
        assert!(o["status"].as_object().is_none_or(|s| s.is_empty()), "{name}: status {}", o["status"]);
        let managers: Vec<&str> = o["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
        assert!(!managers.iter().any(|m| m.starts_with("frr-composer")), "{name}: managed by {managers:?}: {}", o["metadata"]);
    }
    // and the API server received no status request for them at all
    let metrics = api.kubectl(&["get", "--raw", "/metrics"]).unwrap();
    let status_requests: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains(r#"resource="frrconfigurations""#) && l.contains(r#"subresource="status""#))
        .collect();
    assert!(status_requests.is_empty(), "{status_requests:#?}");
    assert!(!agent.log().contains("panicked"));
}

/// Status requests (`<resource>/status`) the API server has received, all verbs.
fn status_requests(api: &ApiServer, resource: &str) -> u64 {
    let metrics = api.kubectl(&["get", "--raw", "/metrics"]).unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains(&format!("resource=\"{resource}\"")) && l.contains(r#"subresource="status""#))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

/// Status writes are paced: an object that flips between valid and conflicting every 50 ms for
/// 6 s (120 writes of it) costs this node at most one FRRNodeState write and one write of the
/// object's status per status interval (2 s), counted by the API server itself; when the
/// flipping stops, the last state is written (the conflict, naming the other ASN). Also with
/// `--object-status problems`, where every flip adds or gives up the node's entry.
#[test]
fn status_writes_of_a_flipping_object_are_paced_frr10() {
    let Some((tmp, frr, api)) = frr10_with_apiserver() else { return };
    api.kubectl_stdin(&["apply", "-f", "-"], &metallb("")).unwrap();
    let agent = AgentUnderTest::start(&api, &frr.cli_args(), "wk3", NS, tmp.path(), &["--object-status", "problems"]);
    let conversion = || {
        api.kubectl_json(&["get", "frrnodestate", "wk3"]).ok().and_then(|s| s["status"]["lastConversionResult"].as_str().map(String::from)).unwrap_or_default()
    };
    assert!(
        lab::wait_until(Duration::from_secs(30), || conversion() == "success" && frr.running_config().is_ok_and(|r| r.contains("router bgp 65801"))),
        "the first apply did not happen\n{}",
        agent.log()
    );
    // quiet: the first writes are done and their interval is over
    std::thread::sleep(frr_composer::agent::pacer::STATUS_INTERVAL + Duration::from_secs(1));
    let (nodes_before, configs_before) = (status_requests(&api, "frrnodestates"), status_requests(&api, "frrconfigurations"));

    // the admin's object: agrees with MetalLB's neighbor (asn 65102) or conflicts (65999)
    let flipper = |asn: u32| {
        serde_json::json!({"apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration", "metadata": {"name": "flipper", "namespace": NS},
            "spec": {"bgp": {"routers": [{"asn": 65801, "neighbors": [{"address": ROUTER_IP, "asn": asn}]}]}}})
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let window = rt.block_on(async {
        let configs = configs_api(&api).await;
        let pp = kube::api::PatchParams::apply("flipper-test").force();
        let start = Instant::now();
        for i in 0..120u64 {
            tokio::time::sleep_until((start + Duration::from_millis(50 * i)).into()).await;
            // ends on the conflict (i = 119 is odd)
            let asn = if i % 2 == 0 { 65102 } else { 65999 };
            configs.patch("flipper", &pp, &kube::api::Patch::Apply(&flipper(asn))).await.unwrap();
        }
        start.elapsed()
    });
    // the last state is written: the conflict, on the object and in FRRNodeState
    let flipper_error = || {
        api.kubectl_json(&["-n", NS, "get", "frrconfiguration", "flipper"])
            .ok()
            .and_then(|c| c["status"]["errors"][0]["message"].as_str().map(String::from))
            .unwrap_or_default()
    };
    assert!(
        lab::wait_until(Duration::from_secs(10), || flipper_error().contains("65999") && conversion().contains("65999")),
        "the last state was not written: object {:?}, FRRNodeState {:?}\n{}",
        flipper_error(),
        conversion(),
        agent.log()
    );
    // anything still waiting would land within an interval
    std::thread::sleep(frr_composer::agent::pacer::STATUS_INTERVAL + Duration::from_secs(1));
    let nodes = status_requests(&api, "frrnodestates") - nodes_before;
    let configs = status_requests(&api, "frrconfigurations") - configs_before;
    let interval = frr_composer::agent::pacer::STATUS_INTERVAL.as_secs_f64();
    // the first write at once, one per interval, and the last when the flipping stopped
    let bound = (window.as_secs_f64() / interval).ceil() as u64 + 2;
    eprintln!(
        "120 flips in {:.1} s: {nodes} FRRNodeState and {configs} FRRConfiguration status writes (bound {bound} each: {:.2}/s and {:.2}/s)",
        window.as_secs_f64(),
        nodes as f64 / window.as_secs_f64(),
        configs as f64 / window.as_secs_f64()
    );
    assert!(nodes >= 2 && configs >= 2, "the flips were not reported at all: {nodes} and {configs} writes\n{}", agent.log());
    assert!(nodes <= bound, "{nodes} FRRNodeState status writes in {window:?} (at most {bound})");
    assert!(configs <= bound, "{configs} FRRConfiguration status writes in {window:?} (at most {bound})");
    assert!(!agent.log().contains("panicked"));
}

/// The whole of deploy/ is accepted by the real API server (server-side dry run).
#[test]
fn deploy_manifests_pass_server_side_dry_run() {
    if !apiserver::require() {
        return;
    }
    let api = ApiServer::start().unwrap();
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy");
    // CRDs and the namespace first (a dry run cannot create what later objects need)
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    api.kubectl(&["apply", "-k", crds.to_str().unwrap()]).unwrap();
    api.kubectl(&["create", "namespace", "frr-k8s-system"]).unwrap();
    let out = api.kubectl(&["apply", "--dry-run=server", "-k", deploy.to_str().unwrap()]).unwrap();
    for kind in [
        "daemonset.apps/frr-composer",
        "clusterrole.rbac.authorization.k8s.io/frr-composer",
        "role.rbac.authorization.k8s.io/frr-composer",
        "role.rbac.authorization.k8s.io/frr-composer-webhook-cert",
        "rolebinding.rbac.authorization.k8s.io/frr-composer-webhook-cert",
        "configmap/frr-startup",
        "serviceaccount/frr-composer",
        "deployment.apps/frr-composer-webhook",
        "service/frr-composer-webhook",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/frr-composer-validating-webhook",
    ] {
        assert!(out.contains(kind), "{kind} missing from:\n{out}");
    }
    let _: Value = Value::Null;
}
