//! The Helm chart in deploy/chart: its CRDs are the committed crds/ files, `helm lint` passes,
//! its default rendering is object for object what `kubectl kustomize deploy` gives, each value
//! changes what it names, and values.schema.json refuses bad values with their name. On a real
//! one-node Kubernetes (tests/cluster), `helm install` runs the field example end to end and
//! `helm upgrade` of the log level rolls the agent with no BGP session reset.
//!
//! helm and kustomize (the one kubectl embeds) are built from the Go module proxy by
//! `.ci/install-helm.sh` into `${FRR_COMPOSER_CACHE:-/var/cache/frr-composer}/helm/bin`; the
//! cluster test also needs what tests/cluster needs (root, .ci/install-cluster.sh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

#[path = "cluster/mod.rs"]
mod cluster;
mod lab;
#[path = "support/mod.rs"]
mod support;
use lab::support::{command, run};

const NAMESPACE: &str = "frr-k8s-system";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    repo().join("deploy/chart")
}

fn tools_dir() -> PathBuf {
    std::env::var_os("FRR_COMPOSER_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/frr-composer")).join("helm")
}

/// True when helm and kustomize are built. Otherwise: panics under `CI=true`, else prints a
/// SKIPPED message and returns false.
fn require_tools() -> bool {
    let missing: Vec<String> =
        ["helm", "kustomize"].iter().map(|b| tools_dir().join("bin").join(b)).filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
    let why = (!missing.is_empty()).then(|| format!("missing {}", missing.join(", ")));
    lab::support::prerequisite("the helm tests", why, "run .ci/install-helm.sh")
}

/// helm's own (cached, shared) home directories, so that it never reads a user's setup nor
/// writes a Kubernetes client cache into the work tree.
fn helm_homes(c: &mut std::process::Command) -> &mut std::process::Command {
    let home = tools_dir().join("home");
    c.env("HOME", &home);
    for (var, sub) in [("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")] {
        c.env(var, home.join(sub));
    }
    c
}

fn helm_command() -> std::process::Command {
    let mut c = command(tools_dir().join("bin/helm"));
    helm_homes(&mut c);
    c
}

/// `helm template` of the chart into NAMESPACE with extra arguments (`--set ...`).
fn helm_template(extra: &[&str]) -> anyhow::Result<String> {
    run(helm_command().args(["template", "frr-composer"]).arg(chart()).args(["--namespace", NAMESPACE]).args(extra))
}

/// One spelling per value, so that objects compare by meaning: a number written `10.0` (the
/// committed CRDs' bounds) is the number 10 to the API server (kustomize rewrites it as `10`,
/// helm keeps the file's text), and keys are sorted (for readable diffs; equality of mappings
/// ignores order anyway).
fn canonical(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15) {
            Some(f) => Value::Number((f as i64).into()),
            None => Value::Number(n),
        },
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(canonical).collect()),
        Value::Mapping(m) => {
            let mut entries: Vec<(Value, Value)> = m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            entries.sort_by_key(|(k, _)| serde_yaml::to_string(k).unwrap());
            Value::Mapping(entries.into_iter().collect())
        }
        other => other,
    }
}

/// The objects of a multi-document YAML stream, keyed by apiVersion, kind, namespace and name.
fn objects(stream: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(stream) {
        let v = canonical(<Value as serde::Deserialize>::deserialize(doc).expect("valid YAML"));
        if v.is_null() {
            continue;
        }
        let s = |path: &[&str]| {
            let mut cur = &v;
            for p in path {
                cur = &cur[*p];
            }
            cur.as_str().unwrap_or("").to_string()
        };
        let key = format!("{} {} {}/{}", s(&["apiVersion"]), s(&["kind"]), s(&["metadata", "namespace"]), s(&["metadata", "name"]));
        assert!(!s(&["metadata", "name"]).is_empty(), "an object without a name: {v:?}");
        assert!(out.insert(key.clone(), v).is_none(), "{key} appears twice");
    }
    out
}

fn find<'a>(objs: &'a BTreeMap<String, Value>, kind: &str, name: &str) -> Option<&'a Value> {
    objs.values().find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
}

fn container<'a>(objs: &'a BTreeMap<String, Value>, kind: &str, name: &str, container: &str) -> &'a Value {
    let o = find(objs, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"));
    o["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(container))
        .unwrap_or_else(|| panic!("no container {container} in {kind} {name}"))
}

fn args(c: &Value) -> Vec<String> {
    c["args"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

/// The chart cannot read files outside its folder, so it carries copies of crds/*.yaml in
/// files/crds, which must stay byte for byte the same (UPDATE_GOLDEN=1 rewrites them).
#[test]
fn chart_crds_are_the_committed_crds() {
    let src = repo().join("crds");
    let dst = chart().join("files/crds");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let mut want: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    want.sort();
    assert!(want.len() >= 4, "crds/ holds {want:?}");
    if update {
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&dst).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        for f in &want {
            std::fs::copy(src.join(f), dst.join(f)).unwrap();
        }
    }
    let mut have: Vec<String> = std::fs::read_dir(&dst).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    have.sort();
    assert_eq!(have, want, "deploy/chart/files/crds differs from crds/; run UPDATE_GOLDEN=1 cargo test --test helm");
    for f in &want {
        let a = std::fs::read_to_string(src.join(f)).unwrap();
        let b = std::fs::read_to_string(dst.join(f)).unwrap();
        assert!(a == b, "deploy/chart/files/crds/{f} drifted from crds/{f}; run UPDATE_GOLDEN=1 cargo test --test helm");
    }
}

#[test]
fn helm_lint_passes() {
    if !require_tools() {
        return;
    }
    let out =
        run(helm_command().args(["lint", "--strict"]).arg(chart()).args(["--namespace", NAMESPACE])).unwrap_or_else(|e| panic!("helm lint failed: {e:#}"));
    assert!(out.contains("1 chart(s) linted, 0 chart(s) failed"), "{out}");
    // the optional parts lint too
    run(helm_command()
        .args(["lint", "--strict"])
        .arg(chart())
        .args(["--set", "prometheus.serviceMonitor.enabled=true,prometheus.scrapeAnnotations=true"])
        .args(["--set", "prometheus.rbacPrometheus=true,prometheus.serviceAccount=prom,prometheus.namespace=monitoring"]))
    .unwrap_or_else(|e| panic!("helm lint with the ServiceMonitor failed: {e:#}"));
}

/// `helm template` with default values gives the objects `kubectl kustomize deploy` gives
/// (compared parsed, object by object, in any order). The one exception is the Namespace:
/// kustomize creates it, while helm installs into the release namespace
/// (`helm install -n frr-k8s-system --create-namespace`).
#[test]
fn helm_template_matches_kustomize_deploy() {
    if !require_tools() {
        return;
    }
    let kustomized = run(command(tools_dir().join("bin/kustomize")).arg("build").arg(repo().join("deploy")))
        .unwrap_or_else(|e| panic!("kustomize build deploy failed: {e:#}"));
    let mut want = objects(&kustomized);
    let ns = want.remove(&format!("v1 Namespace /{NAMESPACE}"));
    assert!(ns.is_some(), "deploy/ no longer creates the namespace {NAMESPACE}: {:?}", want.keys());
    let have = objects(&helm_template(&[]).unwrap());

    let mut problems = Vec::new();
    for k in want.keys().filter(|k| !have.contains_key(*k)) {
        problems.push(format!("only in kustomize: {k}"));
    }
    for k in have.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!("only in helm: {k}"));
    }
    for (k, w) in &want {
        if let Some(h) = have.get(k).filter(|h| *h != w) {
            let (w, h) = (serde_yaml::to_string(w).unwrap(), serde_yaml::to_string(h).unwrap());
            let diff = similar::TextDiff::from_lines(&w, &h);
            problems.push(format!("{k} differs (- kustomize, + helm):\n{}", diff.unified_diff().context_radius(4)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // the comparison saw the whole of deploy/: agent, webhook, CRDs
    for kind in ["DaemonSet", "Deployment", "ValidatingWebhookConfiguration", "CustomResourceDefinition", "ClusterRole"] {
        assert!(have.values().any(|o| o["kind"].as_str() == Some(kind)), "no {kind} rendered");
    }
}

/// Every value changes the thing it names (and nothing it does not).
#[test]
fn values_change_what_they_name() {
    if !require_tools() {
        return;
    }
    let defaults = objects(&helm_template(&[]).unwrap());
    let set = |s: &str| objects(&helm_template(&["--set", s]).unwrap());

    let o = set("frrk8s.logLevel=debug,frrk8s.alwaysBlock=192.0.2.0/24\\,2001:db8::/32,frrk8s.objectStatus=problems");
    let a = args(container(&o, "DaemonSet", "frr-composer", "frr-composer"));
    assert!(a.contains(&"--log-level=debug".to_string()), "{a:?}");
    assert!(a.contains(&"--object-status=problems".to_string()), "{a:?}");
    assert!(args(container(&defaults, "DaemonSet", "frr-composer", "frr-composer")).contains(&"--object-status=all".to_string()));
    assert!(a.contains(&"--always-block=192.0.2.0/24,2001:db8::/32".to_string()), "{a:?}");
    assert!(!args(container(&defaults, "DaemonSet", "frr-composer", "frr-composer")).iter().any(|a| a.starts_with("--always-block")));

    let o = set(
        "frrk8s.image.repository=local/fc,frrk8s.image.tag=t1,frrk8s.image.pullPolicy=Never,frrk8s.frr.image.repository=local/frr,frrk8s.frr.image.tag=8.4",
    );
    let agent = container(&o, "DaemonSet", "frr-composer", "frr-composer");
    assert_eq!(agent["image"].as_str(), Some("local/fc:t1"));
    assert_eq!(agent["imagePullPolicy"].as_str(), Some("Never"));
    assert_eq!(container(&o, "DaemonSet", "frr-composer-frr", "frr")["image"].as_str(), Some("local/frr:8.4"));
    assert_eq!(container(&o, "Deployment", "frr-composer-webhook", "webhook")["image"].as_str(), Some("local/fc:t1"));

    let o = set("frrk8s.frr.tiniPath=/usr/bin/tini,frrk8s.frr.dockerStartPath=/opt/start,frrk8s.nodeSelector.rack=r1,frrk8s.tolerations=null");
    let frr = container(&o, "DaemonSet", "frr-composer-frr", "frr");
    assert_eq!(frr["command"][0].as_str(), Some("/usr/bin/tini"));
    assert_eq!(frr["command"].as_sequence().unwrap().last().unwrap().as_str(), Some("hostname \"$NODE_NAME\" && exec /opt/start"));
    // the agent and FRR go to the same nodes
    for ds in ["frr-composer", "frr-composer-frr"] {
        let pod = &find(&o, "DaemonSet", ds).unwrap()["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"], serde_yaml::from_str::<Value>("{kubernetes.io/os: linux, rack: r1}").unwrap(), "{ds}");
        assert!(pod["tolerations"].is_null(), "{ds}: {:?}", pod["tolerations"]);
    }

    let o = set("frrk8s.resources.limits.memory=1Gi,frrk8s.frr.resources.requests.cpu=1");
    assert_eq!(container(&o, "DaemonSet", "frr-composer", "frr-composer")["resources"]["limits"]["memory"].as_str(), Some("1Gi"));
    assert_eq!(container(&o, "DaemonSet", "frr-composer-frr", "frr")["resources"]["requests"]["cpu"].as_i64(), Some(1));

    let daemons = |o: &BTreeMap<String, Value>| find(o, "ConfigMap", "frr-startup").unwrap()["data"]["daemons"].as_str().unwrap().to_string();
    assert!(daemons(&defaults).contains("bgpd_options=\"   -A 127.0.0.1 -p 0 --limit-fds 100000\""));
    assert!(daemons(&set("frrk8s.frr.acceptIncomingBGPConnections=true")).contains("bgpd_options=\"   -A 127.0.0.1 --limit-fds 100000\""));

    let vwc = |o: &BTreeMap<String, Value>| {
        find(o, "ValidatingWebhookConfiguration", "frr-composer-validating-webhook").map(|v| v["webhooks"][0]["failurePolicy"].as_str().unwrap().to_string())
    };
    assert_eq!(vwc(&defaults).as_deref(), Some("Fail"));
    assert_eq!(vwc(&set("crds.validationFailurePolicy=Ignore")).as_deref(), Some("Ignore"));

    let o = set("frrk8s.webhookPort=29443");
    let wh = container(&o, "Deployment", "frr-composer-webhook", "webhook");
    assert!(args(wh).contains(&"--address=0.0.0.0:29443".to_string()));
    assert_eq!(wh["ports"][0]["containerPort"].as_i64(), Some(29443));
    assert_eq!(wh["readinessProbe"]["httpGet"]["port"].as_i64(), Some(29443));

    let o = set("webhook.enabled=false,crds.enabled=false");
    let kinds: Vec<&str> = o.values().map(|v| v["kind"].as_str().unwrap()).collect();
    assert!(!kinds.contains(&"CustomResourceDefinition") && !kinds.contains(&"ValidatingWebhookConfiguration") && !kinds.contains(&"Deployment"), "{kinds:?}");
    assert!(o.keys().all(|k| !k.contains("webhook")), "{:?}", o.keys());
    assert!(kinds.contains(&"DaemonSet"));

    // the ServiceMonitor and its Service are there only when asked for
    assert!(find(&defaults, "ServiceMonitor", "frr-composer").is_none());
    let o = set("prometheus.serviceMonitor.enabled=true,prometheus.serviceMonitor.interval=15s,prometheus.serviceMonitor.additionalLabels.release=prom,prometheus.scrapeAnnotations=true");
    let sm = find(&o, "ServiceMonitor", "frr-composer").expect("a ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"].as_str(), Some("15s"));
    assert_eq!(sm["spec"]["endpoints"][0]["port"].as_str(), Some("metrics"));
    assert_eq!(sm["metadata"]["labels"]["release"].as_str(), Some("prom"));
    assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"][0].as_str(), Some(NAMESPACE));
    let svc = find(&o, "Service", "frr-composer-monitor").expect("the metrics Service");
    assert_eq!(svc["metadata"]["annotations"]["prometheus.io/scrape"].as_str(), Some("true"));
    // the Service selects the agent pods, by their metrics port
    let ds = find(&o, "DaemonSet", "frr-composer").unwrap();
    for (k, v) in svc["spec"]["selector"].as_mapping().unwrap() {
        assert_eq!(&ds["spec"]["template"]["metadata"]["labels"][k.as_str().unwrap()], v);
    }
    assert_eq!(svc["spec"]["ports"][0]["targetPort"].as_str(), Some("metrics"));
    assert_eq!(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]);
    assert!(find(&o, "Role", "frr-composer-prometheus").is_none());
    let err = helm_template(&["--set", "prometheus.serviceMonitor.enabled=true,prometheus.rbacPrometheus=true"]).unwrap_err();
    assert!(format!("{err:#}").contains("prometheus.serviceAccount is required"), "{err:#}");
}

/// values.schema.json refuses a bad value, naming it; nothing is rendered then.
#[test]
fn values_schema_rejects_bad_values() {
    if !require_tools() {
        return;
    }
    for (set, names) in [
        ("frrk8s.logLevel=verbose", "logLevel"),
        ("frrk8s.objectStatus=some", "objectStatus"),
        ("crds.validationFailurePolicy=Sometimes", "validationFailurePolicy"),
        ("frrk8s.loglevel=debug", "loglevel"),
        ("frrk8s.webhookPort=70000", "webhookPort"),
        ("frrk8s.alwaysBlock=192.0.2.0/24 --evil", "alwaysBlock"),
        ("frrk8s.frr.tiniPath=tini", "tiniPath"),
        ("frrk8s.frr.dockerStartPath=/start;reboot", "dockerStartPath"),
        ("frrk8s.image.pullPolicy=Sometimes", "pullPolicy"),
        ("prometheus.serviceMonitor.interval=often", "interval"),
        ("frrk8s.frr.acceptIncomingBGPConnections=maybe", "acceptIncomingBGPConnections"),
        // a newline here once added a RoleBinding subject in another namespace
        ("prometheus.namespace=monitoring\n- kind: ServiceAccount", "namespace"),
        ("prometheus.serviceAccount=prometheus\n  namespace: kube-system", "serviceAccount"),
        ("prometheus.namespace=Monitoring", "namespace"),
    ] {
        let err = match helm_template(&["--set", set]) {
            Ok(out) => panic!("--set {set} was accepted:\n{out}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("values don't meet the specifications of the schema"), "--set {set}: {err}");
        assert!(err.contains(names), "--set {set}: the error does not name {names}: {err}");
    }
    // helm lint reports the same
    let err = run(helm_command().args(["lint"]).arg(chart()).args(["--set", "frrk8s.logLevel=verbose"])).unwrap_err();
    assert!(format!("{err:#}").contains("logLevel"), "{err:#}");
}

// ------------------------------------------------------------------------------ real cluster

const LB_IP: &str = "198.51.100.181/32";
const PEER_ROUTE: &str = "203.0.113.0/24";
const AGENT: &str = "app.kubernetes.io/name=frr-composer";
const FRR: &str = "app.kubernetes.io/name=frr-composer-frr";
const ROUTER_CONF: &str = "frr defaults traditional\nip route 203.0.113.0/24 blackhole\nrouter bgp 65102\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n neighbor 192.0.2.113 remote-as 65801\n address-family ipv4 unicast\n  redistribute static\n exit-address-family\nexit\n";

/// A field example file (testdata/field/metallb-wk3) moved onto the test network: the router
/// 192.0.2.1, the LB address from 198.51.100.0/24, this cluster's node and namespace, without
/// the server-side metadata it was read back with.
fn field(file: &str) -> String {
    let text = std::fs::read_to_string(repo().join("testdata/field/metallb-wk3").join(file)).unwrap();
    text.lines()
        .filter(|l| !["creationTimestamp:", "generation:", "resourceVersion:", "uid:"].iter().any(|k| l.trim_start().starts_with(k)))
        .map(|l| {
            l.replace("172.18.20.1", cluster::ROUTER_IP)
                .replace("172.19.20.181/32", LB_IP)
                .replace("openshift-frr-k8s", NAMESPACE)
                .replace("wk3", cluster::NODE_NAME)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// helm against the cluster, inside its node namespace.
fn cluster_helm(c: &cluster::Cluster, args: &[&str]) -> anyhow::Result<String> {
    let helm = tools_dir().join("bin/helm");
    let mut cmd = c.node.command(helm.to_str().unwrap());
    run(helm_homes(&mut cmd).arg("--kubeconfig").arg(c.kubeconfig()).args(["--namespace", NAMESPACE]).args(args))
}

/// The router's view of the node's session: (established, dropped, state).
fn router_session(router: &lab::Frr) -> (u64, u64, String) {
    let v = router.vtysh_json(&format!("show bgp neighbors {} json", cluster::NODE_IP)).unwrap_or_default();
    let n = &v[cluster::NODE_IP];
    (n["connectionsEstablished"].as_u64().unwrap_or(0), n["connectionsDropped"].as_u64().unwrap_or(0), n["bgpState"].as_str().unwrap_or("").to_string())
}

fn ready(p: &serde_json::Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `helm install` on a real one-node cluster (FRR 10.3 images) runs the field example end to
/// end; `helm upgrade` that changes the log level rolls the agent (not FRR) with no session
/// reset. (The FRR 8.4 image runs the same objects in tests/cluster.rs, through deploy/.)
#[test]
fn helm_install_and_upgrade_on_real_cluster() {
    if !cluster::require() || !require_tools() {
        return;
    }
    use std::time::{Duration, Instant};
    let version = lab::FrrVersion::V10;
    let c = cluster::Cluster::start(version).unwrap();
    let router = lab::Frr::start(lab::FrrVersion::V8, &c.router).unwrap();
    router.load_config_file(ROUTER_CONF).unwrap();
    let node_state = |c: &cluster::Cluster| c.kubectl_json(&["get", "frrnodestate", cluster::NODE_NAME]).ok();
    let status = |c: &cluster::Cluster, f: &str| node_state(c).and_then(|s| s["status"][f].as_str().map(String::from)).unwrap_or_default();
    let diag = |c: &cluster::Cluster, what: &str| {
        let logs = c.kubectl(&["-n", NAMESPACE, "logs", "-l", AGENT, "--tail=20"]).unwrap_or_default();
        let state = node_state(c).map(|s| serde_json::to_string_pretty(&s["status"]).unwrap()).unwrap_or_default();
        format!("{what}\n--- FRRNodeState\n{state}\n--- agent log\n{logs}\n{}", c.diagnostics())
    };

    // 1. helm install with the locally built images; FRRNodeState reports success.
    let (repo_tag, frr_repo_tag) = (cluster::composer_image(version), cluster::frr_image(version));
    let (image, tag) = repo_tag.rsplit_once(':').unwrap();
    let (frr_image, frr_tag) = frr_repo_tag.rsplit_once(':').unwrap();
    let images = format!("frrk8s.image.repository={image},frrk8s.image.tag={tag},frrk8s.frr.image.repository={frr_image},frrk8s.frr.image.tag={frr_tag}");
    let t = Instant::now();
    cluster_helm(&c, &["install", "frr-composer", chart().to_str().unwrap(), "--create-namespace", "--set", &images])
        .unwrap_or_else(|e| panic!("helm install failed: {e:#}\n{}", c.diagnostics()));
    assert!(lab::wait_until(Duration::from_secs(180), || status(&c, "lastReloadResult") == "success"), "{}", diag(&c, "no successful FRRNodeState"));
    eprintln!("FIGURE helm install -> FRRNodeState success: {:.1} s", t.elapsed().as_secs_f64());
    for sel in [FRR, AGENT] {
        assert!(lab::wait_until(Duration::from_secs(60), || c.pods(sel).iter().any(ready)), "{}", diag(&c, &format!("{sel} not Ready")));
    }
    c.kubectl(&["-n", NAMESPACE, "rollout", "status", "deployment/frr-composer-webhook", "--timeout=180s"])
        .unwrap_or_else(|e| panic!("{e}\n{}", diag(&c, "webhook rollout")));
    let release = cluster_helm(&c, &["status", "frr-composer", "-o", "json"]).unwrap();
    let release: serde_json::Value = serde_json::from_str(&release).unwrap();
    assert_eq!(release["info"]["status"], "deployed", "{release}");

    // 2. The field example through the webhook: the LB /32 reaches the router over one session.
    c.kubectl_stdin(&["apply", "-f", "-"], &field("metallb-wk3.yaml")).unwrap_or_else(|e| panic!("{e}\n{}", diag(&c, "field example refused")));
    assert!(
        lab::wait_until(Duration::from_secs(60), || router.bgp_prefixes(false).is_ok_and(|p| p.contains(LB_IP))),
        "{}",
        diag(&c, "the router did not get the LB IP")
    );
    let (established, dropped, state) = router_session(&router);
    assert_eq!((established, state.as_str()), (1, "Established"), "{}", diag(&c, "session"));
    let same_session = |what: &str| assert_eq!(router_session(&router), (established, dropped, "Established".to_string()), "the BGP session reset ({what})");
    let sessions = |c: &cluster::Cluster| {
        c.kubectl_json(&["-n", NAMESPACE, "get", "bgpsessionstates"]).map(|l| l["items"].as_array().cloned().unwrap_or_default()).unwrap_or_default()
    };
    assert!(
        lab::wait_until(Duration::from_secs(20), || sessions(&c)
            .iter()
            .any(|s| s["status"]["bgpStatus"] == "Established" && s["metadata"]["labels"]["frrk8s.metallb.io/peer"] == cluster::ROUTER_IP)),
        "{:#?}",
        sessions(&c)
    );
    assert_eq!(status(&c, "lastConversionResult"), "success", "{}", diag(&c, "conversion"));
    // receive-all: the router's route lands in the node's kernel; removing it withdraws it
    let kernel_has = |c: &cluster::Cluster| {
        c.node
            .routes(false, &["proto", "bgp"])
            .is_ok_and(|r| r.lines().any(|l| l.starts_with(&format!("{PEER_ROUTE} ")) && l.contains(&format!("via {}", cluster::ROUTER_IP))))
    };
    c.kubectl_stdin(&["apply", "-f", "-"], &field("receive-all.yaml")).unwrap();
    assert!(lab::wait_until(Duration::from_secs(30), || kernel_has(&c)), "{}", diag(&c, "receive-all: no route in the node's kernel"));
    c.kubectl(&["-n", NAMESPACE, "delete", "frrconfiguration", "receive-all"]).unwrap();
    assert!(lab::wait_until(Duration::from_secs(30), || !kernel_has(&c)), "{}", diag(&c, "route stayed after removing receive-all"));
    same_session("receive-all added and removed");

    // 3. helm upgrade of the log level: the agent's DaemonSet rolls, FRR's does not, the
    //    session stays up and the LB address stays at the router.
    let uids =
        |c: &cluster::Cluster, sel: &str| -> Vec<String> { c.pods(sel).iter().filter_map(|p| p["metadata"]["uid"].as_str().map(String::from)).collect() };
    let (old_agent, old_frr) = (uids(&c, AGENT), uids(&c, FRR));
    assert_eq!((old_agent.len(), old_frr.len()), (1, 1));
    let t = Instant::now();
    cluster_helm(&c, &["upgrade", "frr-composer", chart().to_str().unwrap(), "--reuse-values", "--set", "frrk8s.logLevel=debug"])
        .unwrap_or_else(|e| panic!("helm upgrade failed: {e:#}"));
    c.kubectl(&["-n", NAMESPACE, "rollout", "status", "daemonset/frr-composer", "--timeout=120s"])
        .unwrap_or_else(|e| panic!("{e}\n{}", diag(&c, "agent rollout")));
    assert!(
        lab::wait_until(Duration::from_secs(60), || {
            let p = c.pods(AGENT);
            p.len() == 1 && ready(&p[0]) && !old_agent.contains(&p[0]["metadata"]["uid"].as_str().unwrap_or("").to_string())
        }),
        "{}",
        diag(&c, "the agent did not roll")
    );
    eprintln!("FIGURE helm upgrade (log level) -> new agent Ready: {:.1} s", t.elapsed().as_secs_f64());
    let agent = c.pods(AGENT).remove(0);
    let args = agent["spec"]["containers"][0]["args"].as_array().unwrap().clone();
    assert!(args.iter().any(|a| a == "--log-level=debug"), "{args:?}");
    assert_eq!(uids(&c, FRR), old_frr, "the upgrade restarted FRR");
    assert!(lab::wait_until(Duration::from_secs(30), || status(&c, "lastReloadResult") == "success"), "{}", diag(&c, "no successful apply after the upgrade"));
    std::thread::sleep(Duration::from_secs(3));
    same_session("helm upgrade of the log level");
    assert!(router.bgp_prefixes(false).unwrap().contains(LB_IP));
    let release: serde_json::Value = serde_json::from_str(&cluster_helm(&c, &["status", "frr-composer", "-o", "json"]).unwrap()).unwrap();
    assert_eq!((release["version"].as_i64(), release["info"]["status"].as_str()), (Some(2), Some("deployed")), "{release}");
    drop(router);
    drop(c);
}
