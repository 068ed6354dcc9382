//! `frr-composer peers` against a real kube-apiserver + etcd: the sessions agents published
//! (BGPSessionStates with their status), the FRRConfigurations and the Nodes are read with
//! paged lists (1,200 session objects: three pages); filters by node, label selector, peer,
//! VRF and negated state; the same rows from the YAML `kubectl get -o yaml` saved; and the
//! binary installed as `kubectl-frr` answers `kubectl frr peers`.
//!
//! Needs the binaries built by .ci/install-apiserver.sh: skipped without them, except under
//! CI=true, where it fails.

mod apiserver;
#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use apiserver::ApiServer;
use serde_json::Value;

const NS: &str = "frr-k8s-system";
const BIN: &str = env!("CARGO_BIN_EXE_frr-composer");

fn objects() -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Node\nmetadata: {name: wk1, labels: {rack: a}}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: wk2, labels: {rack: b}}\n",
    );
    let config = |name: &str, rack: Option<&str>, vrf: Option<&str>, peers: &[&str]| {
        format!(
            "---\napiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n{}  bgp:\n    routers:\n    - asn: 64512\n{}      neighbors:\n{}",
            rack.map(|r| format!("  nodeSelector: {{matchLabels: {{rack: {r}}}}}\n")).unwrap_or_default(),
            vrf.map(|v| format!("      vrf: {v}\n")).unwrap_or_default(),
            peers.iter().map(|p| format!("      - {{address: \"{p}\", asn: 64513}}\n")).collect::<String>()
        )
    };
    s += &config("metallb-wk1", Some("a"), None, &["192.0.2.1", "2001:db8::1"]);
    s += &config("admin-all", None, None, &["192.0.2.1"]);
    s += &config("red", Some("a"), Some("red"), &["198.51.100.1"]);
    s
}

/// (name, node, peer, vrf, state)
const SESSIONS: [(&str, &str, &str, &str, &str); 4] = [
    ("wk1-default-192.0.2.1", "wk1", "192.0.2.1", "", "Established"),
    ("wk1-default-2001-db8--1", "wk1", "2001:db8::1", "", "Active"),
    ("wk1-red-198.51.100.1", "wk1", "198.51.100.1", "red", "Connect"),
    ("wk2-default-192.0.2.1", "wk2", "192.0.2.1", "", "Established"),
];

fn peers(api: &ApiServer, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN).arg("peers").args(["-n", NS]).args(args).env("KUBECONFIG", api.kubeconfig()).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn keys(json: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {} {}", r["node"].as_str().unwrap(), r["vrf"].as_str().unwrap(), r["peer"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect()
}

/// A real API server with the CRDs and the agents' namespace (None: skipped).
fn cluster() -> Option<ApiServer> {
    if !apiserver::require() {
        return None;
    }
    let api = ApiServer::start().unwrap();
    api.install_crds().unwrap();
    api.kubectl(&["create", "namespace", NS]).unwrap();
    Some(api)
}

#[test]
fn peers_from_a_real_apiserver() {
    let Some(api) = cluster() else { return };
    api.kubectl_stdin(&["apply", "-f", "-"], &objects()).unwrap();
    // 1,196 sessions of other nodes without a status yet (as an agent creates them): they make
    // the list three pages long and show no row
    let filler: String = (0..1196)
        .map(|i| format!("---\napiVersion: frrk8s.metallb.io/v1beta1\nkind: BGPSessionState\nmetadata: {{name: filler-{i}, namespace: {NS}}}\nspec: {{}}\n"))
        .collect();
    api.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &filler).unwrap();
    for (name, node, peer, vrf, state) in SESSIONS {
        api.kubectl_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: BGPSessionState\nmetadata: {{name: {name}, namespace: {NS}, labels: {{frrk8s.metallb.io/node: {node}}}}}\nspec: {{}}\n"),
        )
        .unwrap();
        let since = if state == "Established" { r#","establishedSince":"2026-12-03T10:00:00Z""# } else { "" };
        let status = format!(
            r#"{{"status":{{"bgpStatus":"{state}","bfdStatus":"N/A","node":"{node}","peer":"{peer}","vrf":"{vrf}","prefixesSent":12,"prefixesReceived":3,"prefixesAccepted":2{since}}}}}"#
        );
        api.kubectl(&["-n", NS, "patch", "bgpsessionstate", name, "--subresource=status", "--type=merge", "-p", &status]).unwrap();
    }

    // every session, with the objects that define its neighbor on that node
    let (code, out, err) = peers(&api, &[]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NODE", "PEER", "VRF", "STATE", "SINCE", "SENT", "RECEIVED", "ACCEPTED", "BFD", "OBJECTS"], "{out}");
    let short: Vec<String> = rows[1..].iter().map(|r| format!("{} {} {} {} {} {}", r[0], r[1], r[2], r[3], r[5], r[9])).collect();
    assert_eq!(
        short,
        [
            format!("wk1 192.0.2.1 default Established 12 {NS}/admin-all,{NS}/metallb-wk1"),
            format!("wk1 2001:db8::1 default Active 12 {NS}/metallb-wk1"),
            format!("wk1 198.51.100.1 red Connect 12 {NS}/red"),
            format!("wk2 192.0.2.1 default Established 12 {NS}/admin-all"),
        ],
        "{out}"
    );

    // the night-time query, and the other filters
    let json = |args: &[&str]| {
        let (code, out, err) = peers(&api, &[args, &["-o", "json"]].concat());
        assert_eq!(code, 0, "{args:?}: {err}");
        keys(&out)
    };
    assert_eq!(json(&["--state", "!Established"]), ["wk1 default 2001:db8::1 Active", "wk1 red 198.51.100.1 Connect"]);
    assert_eq!(json(&["-l", "rack=b"]), ["wk2 default 192.0.2.1 Established"]);
    assert_eq!(json(&["--node", "wk1", "--vrf", "default"]), ["wk1 default 192.0.2.1 Established", "wk1 default 2001:db8::1 Active"]);
    assert_eq!(json(&["--peer", "2001:DB8::1"]), ["wk1 default 2001:db8::1 Active"]);
    let (_, all_json, _) = peers(&api, &["-o", "json"]);

    // offline: the same rows from what kubectl saved
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("cluster.yaml");
    std::fs::write(&saved, api.kubectl(&["get", "-A", "bgpsessionstates,frrconfigurations,nodes", "-o", "yaml"]).unwrap()).unwrap();
    let o = Command::new(BIN).args(["peers", "-n", NS, "-o", "json", "--from"]).arg(&saved).env_remove("KUBECONFIG").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), all_json);
    let o = Command::new(BIN).args(["peers", "-n", NS, "-o", "json", "-l", "rack=a", "--from"]).arg(&saved).output().unwrap();
    assert_eq!(keys(&String::from_utf8_lossy(&o.stdout)).len(), 3);

    // `diff` against the same cluster: admin-all's neighbor with another ASN conflicts with
    // metallb-wk1 on wk1 (refused, its last good generation stays) and resets wk2's session
    let change = dir.path().join("change.yaml");
    let admin = objects().split("---\n").find(|d| d.contains("name: admin-all")).unwrap().replace("asn: 64513", "asn: 64514");
    std::fs::write(&change, admin).unwrap();
    let o = Command::new(BIN).args(["diff", "-n", NS, "-o", "json", "-f"]).arg(&change).env("KUBECONFIG", api.kubeconfig()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let group = |node: &str| {
        v["groups"].as_array().unwrap().iter().find(|g| g["nodes"] == serde_json::json!([node])).cloned().unwrap_or_else(|| panic!("no group of {node}: {v:#}"))
    };
    assert_eq!(group("wk2")["sessions"], serde_json::json!(["192.0.2.1 (default): resets (remote AS)"]), "{v:#}");
    let wk1 = group("wk1");
    assert!(wk1["refused"][0].as_str().unwrap().starts_with(&format!("{NS}/admin-all: generation 2 is refused, generation 1 stays in effect")), "{v:#}");
    assert_eq!(wk1["added"], serde_json::json!([]), "{v:#}");

    // installed as kubectl-frr, kubectl finds it as a plugin
    let out = kubectl_frr(&api, dir.path(), &["peers", "-n", NS, "--state", "!Established"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("wk1 ") && out.contains("Connect"), "{out}");
}

/// `kubectl frr ARGS` with the binary installed as the plugin `kubectl-frr` in `dir/bin`: its
/// standard output (it must succeed).
fn kubectl_frr(api: &ApiServer, dir: &std::path::Path, args: &[&str]) -> String {
    let plugins = dir.join("bin");
    if !plugins.exists() {
        std::fs::create_dir(&plugins).unwrap();
        std::os::unix::fs::symlink(BIN, plugins.join("kubectl-frr")).unwrap();
    }
    let path = format!("{}:{}", plugins.display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new(apiserver::KUBECTL).arg("frr").args(args).env("PATH", path).env("KUBECONFIG", api.kubeconfig()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `frr-composer CMD -n NS ARGS` against the cluster of `kubeconfig` (None: no cluster):
/// (exit code, stdout, stderr).
fn cli(cmd: &str, args: &[&str], kubeconfig: Option<&str>) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.arg(cmd).args(["-n", NS]).args(args);
    match kubeconfig {
        Some(k) => c.env("KUBECONFIG", k),
        None => c.env_remove("KUBECONFIG"),
    };
    let o = c.output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `frr-composer routes` and `why` against testdata/cli/routes-cluster.yaml (its Service's
/// LoadBalancer address set through the status subresource, as MetalLB sets it).
#[test]
fn routes_from_a_real_apiserver() {
    let Some(api) = cluster() else { return };
    api.kubectl(&["create", "namespace", "web"]).unwrap();
    let objects = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cli/routes-cluster.yaml")).unwrap();
    api.kubectl_stdin(&["apply", "-f", "-"], &objects).unwrap();
    api.kubectl(&[
        "-n",
        "web",
        "patch",
        "service",
        "frontend",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.181"}]}}}"#,
    ])
    .unwrap();
    api.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: frrk8s.metallb.io/v1beta1\nkind: BGPSessionState\nmetadata: {{name: wk1-s1, namespace: {NS}}}\nspec: {{}}\n"),
    )
    .unwrap();
    api.kubectl(&[
        "-n",
        NS,
        "patch",
        "bgpsessionstate",
        "wk1-s1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"bgpStatus":"Established","node":"wk1","peer":"192.0.2.1","vrf":"","prefixesSent":2,"advertisedPrefixes":["198.51.100.181/32","203.0.113.0/24"]}}"#,
    ])
    .unwrap();
    let kc = api.kubeconfig().to_str().unwrap().to_string();
    let routes = |args: &[&str], kubeconfig: bool| {
        let (code, out, err) = cli("routes", args, kubeconfig.then_some(kc.as_str()));
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    // is 198.51.100.181 announced, from which nodes, to which peers, from which object?
    let out = routes(&["198.51.100.181", "-o", "wide"], true);
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["PREFIX", "NODE", "VRF", "PEER", "SENT", "SESSION", "COMMUNITIES", "LOCALPREF", "PREPEND", "OBJECTS", "SERVICES"], "{out}");
    assert_eq!(
        rows[1],
        ["198.51.100.181/32", "wk1", "default", "192.0.2.1", "yes", "Established", "65000:1", "-", "3x", &format!("{NS}/metallb-wk1"), "web/frontend"],
        "{out}"
    );
    assert_eq!(rows.len(), 2, "{out}");
    // asked about everything, the object wk2 refuses is named with the conflict
    let out = routes(&[], true);
    assert!(out.contains(&format!("not in effect on wk2: {NS}/odd-wk2 (LeftOut)")) && out.contains("64999"), "{out}");

    let json = routes(&["-o", "json"], true);
    let v: Value = serde_json::from_str(&json).unwrap();
    let short: Vec<String> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {} {}", r["prefix"].as_str().unwrap(), r["node"].as_str().unwrap(), r["peer"].as_str().unwrap(), r["objects"]))
        .collect();
    assert_eq!(
        short,
        [
            format!("198.51.100.181/32 wk1 192.0.2.1 [\"{NS}/metallb-wk1\"]"),
            format!("203.0.113.0/24 wk1 192.0.2.1 [\"{NS}/admin-all\"]"),
            format!("203.0.113.0/24 wk1 2001:db8::1 [\"{NS}/admin-all\"]"),
            format!("203.0.113.0/24 wk2 192.0.2.1 [\"{NS}/admin-all\"]"),
            format!("203.0.113.0/24 wk2 2001:db8::1 [\"{NS}/admin-all\"]"),
        ],
        "{json}"
    );
    assert!(!json.contains("not-read"), "the stand-in password is never shown");

    // offline, from what kubectl saved: the same answer
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("cluster.yaml");
    std::fs::write(&saved, api.kubectl(&["get", "-A", "frrconfigurations,bgpsessionstates,nodes,services", "-o", "yaml"]).unwrap()).unwrap();
    assert_eq!(routes(&["-o", "json", "--from", saved.to_str().unwrap()], false), json);

    // why: on wk1 every link holds once the agent's FRRNodeState shows FRR running the prefix
    let why = |args: &[&str], kubeconfig: Option<&str>| cli("why", args, kubeconfig);
    let kc = Some(kc.as_str());
    let (code, out, err) = why(&["198.51.100.181", "--node", "wk1", "--peer", "192.0.2.1"], kc);
    assert_eq!(code, 1, "no FRRNodeState yet: {out}{err}");
    assert!(out.lines().last().unwrap().contains("NO  cannot tell whether FRR on wk1 runs it"), "{out}");
    api.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRNodeState\nmetadata: {name: wk1}\nspec: {}\n").unwrap();
    let running = "router bgp 64512\n address-family ipv4 unicast\n  network 198.51.100.181/32\n  network 203.0.113.0/24\n exit-address-family\nexit\n";
    let patch = serde_json::json!({"status": {"runningConfig": running}}).to_string();
    api.kubectl(&["patch", "frrnodestate", "wk1", "--subresource=status", "--type=merge", "-p", &patch]).unwrap();
    let (code, out, err) = why(&["198.51.100.181", "--node", "wk1", "--peer", "192.0.2.1"], kc);
    assert_eq!(code, 0, "{out}{err}");
    let links: Vec<&str> = out.lines().collect();
    assert_eq!(links[0], "198.51.100.181/32 on wk1 to 192.0.2.1 (default): advertised", "{out}");
    assert!(links[1..].iter().all(|l| l.starts_with("  ok  ")) && links.len() == 7, "{out}");
    assert!(links[6].contains("sent it to 192.0.2.1"), "{out}");
    assert!(links[3].contains("community 65000:1") && links[3].contains("prepended 3 times"), "{out}");
    // to every neighbor: advertised to one (exit 0), and why not to the other
    let (code, both, _) = why(&["198.51.100.181", "--node", "wk1"], kc);
    assert_eq!(code, 0);
    assert!(both.contains("to 2001:db8::1 (default): not advertised") && both.contains("admin-all sets toAdvertise.allowed.mode: all"), "{both}");
    // on wk2 the object that asks for it does not select the node
    let (code, wk2, _) = why(&["198.51.100.181/32", "--node", "wk2"], kc);
    assert_eq!(code, 1);
    assert!(wk2.contains(&format!("NO  no FRRConfiguration in {NS} that selects wk2 has 198.51.100.181/32")) && wk2.contains("metallb-wk1 has it"), "{wk2}");
    // offline, with the FRRNodeStates saved too: the same chains
    let saved_all = dir.path().join("all.yaml");
    std::fs::write(&saved_all, api.kubectl(&["get", "-A", "frrconfigurations,bgpsessionstates,frrnodestates,nodes,services", "-o", "yaml"]).unwrap()).unwrap();
    let (code, offline, err) = why(&["198.51.100.181", "--node", "wk1", "--peer", "192.0.2.1", "--from", saved_all.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(offline, out);

    // and as a kubectl plugin
    let out = kubectl_frr(&api, dir.path(), &["routes", "-n", NS, "203.0.113.0/24", "--node", "wk2"]);
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("203.0.113.0/24") && l.contains("wk2")), "{out}");
}
