//! Smoke test against a real kube-apiserver + etcd (tests/apiserver/mod.rs): the committed
//! CRDs (the crds/*.yaml files of kind CustomResourceDefinition) are accepted by the server (structural schemas, CEL rules that compile
//! and fit the cost budget) and become Established; the metallb-wk3 field example is stored
//! and read back unchanged; the schema rejects invalid objects (OpenAPI bounds and a CEL rule);
//! the object survives a kube-apiserver restart.
//!
//! Needs the binaries built by .ci/install-apiserver.sh: skipped without them, except under
//! CI=true, where it fails.

mod apiserver;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use apiserver::ApiServer;
use serde_json::{json, Value};

const NAMESPACE: &str = "openshift-frr-k8s";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn crd_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("crds"))
        .expect("crds/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        // Only the CRD manifests (crds/ may also hold e.g. a kustomization.yaml).
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.trim_end() == "kind: CustomResourceDefinition")))
        .collect();
    files.sort();
    files
}

/// The field example without the server-set metadata (a create must not carry
/// resourceVersion or uid).
fn field_example() -> Result<Value> {
    let path = repo().join("testdata/field/metallb-wk3/metallb-wk3.yaml");
    let text = std::fs::read_to_string(&path)?;
    let mut obj: Value = serde_yaml::from_str(&text).context("metallb-wk3.yaml")?;
    let meta = obj["metadata"].as_object_mut().context("metadata")?;
    for k in ["creationTimestamp", "generation", "resourceVersion", "uid", "managedFields"] {
        meta.remove(k);
    }
    Ok(obj)
}

/// Every field of `want` is in `got` with the same value (`got` may have more: defaults).
fn contains(got: &Value, want: &Value, path: &str, diffs: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => contains(gv, wv, &format!("{path}.{k}"), diffs),
                    None => diffs.push(format!("{path}.{k}: missing (pruned?), want {wv}")),
                }
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                contains(gv, wv, &format!("{path}[{i}]"), diffs);
            }
        }
        _ if got == want => {}
        _ => diffs.push(format!("{path}: got {got}, want {want}")),
    }
}

/// Apply every CRD; Ok(names) or an error naming each CRD the server rejected and why.
fn apply_crds(api: &ApiServer) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for f in crd_files() {
        let file = f.display().to_string();
        match api.kubectl(&["apply", "--server-side", "--warnings-as-errors", "-f", &file, "-o", "name"]) {
            Ok(out) => names.extend(out.lines().map(|l| l.trim().to_string())),
            Err(e) => errors.push(format!("{}: {e:#}", file_name(&f))),
        }
    }
    if !errors.is_empty() {
        bail!("the API server rejected CRDs:\n{}", errors.join("\n"));
    }
    Ok(names)
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn retry<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn variant(base: &Value, edit: impl FnOnce(&mut Value)) -> String {
    let mut obj = base.clone();
    edit(&mut obj);
    obj.to_string()
}

/// The first neighbor receiving these prefix selectors (filtered mode).
fn receiving(base: &Value, prefixes: Value) -> String {
    variant(base, |o| o["spec"]["bgp"]["routers"][0]["neighbors"][0]["toReceive"]["allowed"] = json!({"mode": "filtered", "prefixes": prefixes}))
}

#[test]
fn crds_on_a_real_apiserver() -> Result<()> {
    if !apiserver::require() {
        return Ok(());
    }
    let mut api = ApiServer::start()?;
    let version = api.kubectl(&["get", "--raw", "/version"])?;
    eprintln!("server: {}", version.replace('\n', " "));

    // 1. The committed CRDs: accepted, Established, names accepted.
    let crds = apply_crds(&api)?;
    assert_eq!(crds.len(), crd_files().len(), "one CRD per file: {crds:?}");
    for crd in &crds {
        api.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", crd]).with_context(|| format!("{crd} not Established"))?;
        api.kubectl(&["wait", "--for=condition=NamesAccepted", "--timeout=10s", crd])?;
    }
    // A CRD with a non-structural schema is accepted but flagged in its conditions.
    for crd in &crds {
        let obj = api.kubectl_json(&["get", crd])?;
        for c in obj["status"]["conditions"].as_array().into_iter().flatten() {
            let t = c["type"].as_str().unwrap_or("");
            assert!(!(t == "NonStructuralSchema" && c["status"] == "True"), "{crd}: {}", c["message"]);
        }
    }

    // 2. The metallb-wk3 field example: stored and read back unchanged.
    api.kubectl(&["create", "namespace", NAMESPACE])?;
    let example = field_example()?;
    retry(Duration::from_secs(30), || api.kubectl_stdin(&["apply", "-f", "-"], &example.to_string()))?;
    let list = api.kubectl_json(&["get", "frrconfigurations", "-A"])?;
    let items = list["items"].as_array().context("items")?;
    assert_eq!(items.len(), 1, "{list:#}");
    let got = &items[0];
    assert_eq!(got["metadata"]["name"], "metallb-wk3");
    assert_eq!(got["metadata"]["namespace"], NAMESPACE);
    let mut diffs = Vec::new();
    contains(&got["spec"], &example["spec"], "spec", &mut diffs);
    assert!(diffs.is_empty(), "read back differs:\n{}", diffs.join("\n"));
    assert_eq!(got["spec"]["bgp"]["routers"][0]["asn"], 65801);
    assert_eq!(got["spec"]["bgp"]["routers"][0]["neighbors"][0]["address"], "172.18.20.1");
    let uid = got["metadata"]["uid"].as_str().context("uid")?.to_string();

    // 3. The schema rejects invalid objects (server-side dry run: nothing is stored).
    let mut base = example.clone();
    base["metadata"]["name"] = json!("invalid");
    let cases = [
        ("router asn 0", variant(&base, |o| o["spec"]["bgp"]["routers"][0]["asn"] = json!(0)), "asn"),
        ("neighbor port 70000", variant(&base, |o| o["spec"]["bgp"]["routers"][0]["neighbors"][0]["port"] = json!(70000)), "port"),
        ("router prefix that is not a CIDR", variant(&base, |o| o["spec"]["bgp"]["routers"][0]["prefixes"][0] = json!("172.19.20.181")), "prefixes"),
        (
            "advertised prefix that is not a CIDR",
            variant(&base, |o| o["spec"]["bgp"]["routers"][0]["neighbors"][0]["toAdvertise"]["allowed"]["prefixes"][0] = json!("not-a-prefix")),
            "prefixes",
        ),
        (
            "connectTime 0s (CEL rule)",
            variant(&base, |o| o["spec"]["bgp"]["routers"][0]["neighbors"][0]["connectTime"] = json!("0s")),
            "connect time should be between 1 seconds to 65535",
        ),
        (
            "IPv4 selector with le 33 (CEL rule, per family)",
            receiving(&base, json!([{"prefix": "192.0.2.0/24", "le": 33}])),
            "le and ge can be at most 32 for an IPv4 prefix",
        ),
        (
            "IPv4 selector with ge 40 (CEL rule, per family)",
            receiving(&base, json!([{"prefix": "192.0.2.0/24", "ge": 40}])),
            "le and ge can be at most 32 for an IPv4 prefix",
        ),
        ("selector with ge above le (CEL rule)", receiving(&base, json!([{"prefix": "2001:db8::/32", "ge": 64, "le": 48}])), "ge must not be greater than le"),
        ("IPv6 selector with le 129", receiving(&base, json!([{"prefix": "2001:db8::/32", "le": 129}])), "le"),
        (
            "1,001 neighbors in one router",
            variant(&base, |o| {
                let n = o["spec"]["bgp"]["routers"][0]["neighbors"][0].clone();
                o["spec"]["bgp"]["routers"][0]["neighbors"] = (0..1001)
                    .map(|i| {
                        let mut n = n.clone();
                        n["address"] = json!(format!("10.0.{}.{}", i / 256, i % 256));
                        n
                    })
                    .collect();
            }),
            "must have at most 1000 items",
        ),
        (
            "a nodeSelector of 1,001 values",
            variant(&base, |o| {
                o["spec"]["nodeSelector"] = json!({"matchExpressions": [{"key": "rack", "operator": "NotIn", "values": vec![""; 1001]}]});
            }),
            "must have at most 1000 items",
        ),
    ];
    for (what, obj, want) in &cases {
        match api.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], obj) {
            Ok(out) => panic!("{what}: accepted by the server: {out}"),
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.contains("Invalid value") || msg.contains("Too many"), "{what}: unexpected error: {msg}");
                assert!(msg.contains(want), "{what}: error does not mention {want:?}: {msg}");
                eprintln!("{what}: rejected as expected");
            }
        }
    }
    // The valid variant passes the same dry run (the rejections above are the edits), and so
    // do selectors within their family's bounds (IPv6 above 32, IPv4 up to 32, ge == le).
    api.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &base.to_string())?;
    let in_bounds = receiving(
        &base,
        json!([
            {"prefix": "2001:db8::/32", "ge": 48, "le": 128},
            {"prefix": "::ffff:192.0.2.0/120", "le": 128},
            {"prefix": "192.0.2.0/24", "ge": 32, "le": 32},
            {"prefix": "198.51.100.0/24", "le": 28},
            {"prefix": "203.0.113.0/24"}
        ]),
    );
    api.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &in_bounds)?;

    // 4. A kube-apiserver restart (same etcd): the object is still there.
    api.restart_apiserver()?;
    let after = retry(Duration::from_secs(30), || api.kubectl_json(&["get", "frrconfigurations", "metallb-wk3", "-n", NAMESPACE]))?;
    assert_eq!(after["metadata"]["uid"], uid.as_str());
    assert_eq!(after["spec"], got["spec"]);
    let n = api.kubectl_json(&["get", "frrconfigurations", "-A"])?["items"].as_array().map(Vec::len);
    assert_eq!(n, Some(1), "dry runs must not have stored anything");

    api.stop();
    Ok(())
}
