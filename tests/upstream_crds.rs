//! Our generated CRD schemas against upstream's: metallb/frr-k8s v0.0.27's CRDs (fetched from
//! the Go module proxy by .ci/install-upstream-crds.sh) after normalising. Every schema node is
//! flattened into facts `path keyword = value` (descriptions, titles and the object envelope
//! `apiVersion`/`kind`/`metadata`, which the derive leaves to the API server, are left out);
//! every fact that differs must be listed, with its reason, in
//! testdata/upstream-crds/allowed-differences.yaml, and every listed difference must still
//! exist. So a default, a bound or a field that upstream does not have cannot creep in
//! unnoticed, and the deliberate differences stay written down.
//!
//! Without the upstream copy (no Go, no network) the test reports itself skipped, except under
//! CI=true, where it fails.

#[path = "support/mod.rs"]
mod support;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use frr_composer::api::all_crds;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Allowed {
    /// CRD kind, e.g. FRRConfiguration.
    kind: String,
    /// Schema path (`spec.bgp.routers[].asn`); a trailing `**` covers a subtree.
    path: String,
    /// Schema keyword (`default`, `maxItems`, `x-kubernetes-validations`...); `*`: any.
    keyword: String,
    reason: String,
}

fn upstream_dir() -> PathBuf {
    let cache = std::env::var("FRR_COMPOSER_CACHE").unwrap_or_else(|_| "/var/cache/frr-composer".into());
    Path::new(&cache).join("upstream/frr-k8s-v0.0.27/crds")
}

/// Numbers compare by value (`4294967295` and `4294967295.0` are one bound); lists of
/// required fields by content.
fn norm(keyword: &str, v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) if keyword == "required" => {
            let mut a = a.clone();
            a.sort_by_key(|x| x.to_string());
            Value::Array(a)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| norm("", x)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), norm(k, x))).collect()),
        _ => v.clone(),
    }
}

fn flatten(v: &Value, path: &str, out: &mut BTreeMap<(String, String), Value>) {
    let Some(obj) = v.as_object() else { return };
    for (k, x) in obj {
        match k.as_str() {
            // wording and the generator's title are not behaviour
            "description" | "title" => {}
            "properties" => {
                for (name, s) in x.as_object().into_iter().flatten() {
                    // kube's derive leaves the object's envelope out of the schema; the API
                    // server handles apiVersion, kind and metadata the same either way
                    if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let p = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    // the node itself exists: a field missing on one side is one fact
                    out.insert((p.clone(), "(field)".into()), Value::Bool(true));
                    flatten(s, &p, out);
                }
            }
            "items" => flatten(x, &format!("{path}[]"), out),
            "additionalProperties" if x.is_object() => flatten(x, &format!("{path}{{}}"), out),
            _ => {
                out.insert((path.to_string(), k.clone()), norm(k, x));
            }
        }
    }
}

fn facts(crd: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    out.insert(("(crd)".into(), "scope".into()), crd["spec"]["scope"].clone());
    out.insert(("(crd)".into(), "plural".into()), crd["spec"]["names"]["plural"].clone());
    let versions = crd["spec"]["versions"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = versions.iter().filter_map(|v| v["name"].as_str()).collect();
    out.insert(("(crd)".into(), "versions".into()), serde_json::json!(names));
    for v in &versions {
        let name = v["name"].as_str().unwrap_or_default();
        if name != "v1beta1" {
            continue;
        }
        out.insert(("(crd)".into(), "status subresource".into()), Value::Bool(v["subresources"]["status"].is_object()));
        flatten(&v["schema"]["openAPIV3Schema"], "", &mut out);
    }
    out
}

fn matches(a: &Allowed, kind: &str, path: &str, keyword: &str) -> bool {
    let path_ok = match a.path.strip_suffix("**") {
        Some(prefix) => path.starts_with(prefix),
        None => a.path == path,
    };
    a.kind == kind && path_ok && (a.keyword == "*" || a.keyword == keyword)
}

fn show(v: Option<&Value>) -> String {
    v.map_or("(absent)".into(), |v| v.to_string())
}

#[test]
fn schemas_match_upstream_v0_0_27_except_listed_differences() {
    let dir = upstream_dir();
    let missing = (!dir.join(".complete").is_file()).then(|| format!("{} missing", dir.display()));
    if !support::prerequisite("the comparison with frr-k8s's CRDs", missing, "run .ci/install-upstream-crds.sh") {
        return;
    }
    let allow_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/upstream-crds/allowed-differences.yaml");
    let allowed: Vec<Allowed> = serde_yaml::from_str(&std::fs::read_to_string(&allow_file).unwrap()).unwrap();
    for a in &allowed {
        assert!(a.reason.trim().len() > 20, "allowed difference {} {} {} has no real reason", a.kind, a.path, a.keyword);
    }
    let mut used = vec![false; allowed.len()];
    let mut unexplained = Vec::new();
    let ours = all_crds();
    assert_eq!(ours.len(), 4);
    for (file, crd) in ours {
        let kind = crd.spec.names.kind.clone();
        let up_text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("upstream {file}: {e}"));
        let up: Value = serde_yaml::from_str(&up_text).unwrap();
        let (a, b) = (facts(&serde_json::to_value(&crd).unwrap()), facts(&up));
        let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (ov, uv) = (a.get(key), b.get(key));
            if ov == uv {
                continue;
            }
            let (path, keyword) = key;
            match allowed.iter().position(|al| matches(al, &kind, path, keyword)) {
                Some(i) => used[i] = true,
                None => unexplained.push(format!("{kind} {path} {keyword}: ours {} upstream {}", show(ov), show(uv))),
            }
        }
    }
    let stale: Vec<String> = allowed.iter().zip(&used).filter(|(_, u)| !**u).map(|(a, _)| format!("{} {} {}", a.kind, a.path, a.keyword)).collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "CRD schemas differ from frr-k8s v0.0.27.\nDifferences not listed in {} ({}):\n  {}\nListed differences that no longer exist ({}):\n  {}",
        allow_file.display(),
        unexplained.len(),
        unexplained.join("\n  "),
        stale.len(),
        stale.join("\n  ")
    );
}
