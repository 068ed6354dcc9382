//! The committed CRDs in `crds/` are exactly what the types generate (UPDATE_GOLDEN=1 rewrites
//! them), every schema node is structural, and the constraints users rely on are there.

use std::path::Path;

use frr_composer::api::all_crds;
use serde_json::Value;

#[test]
fn committed_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    for (file, crd) in all_crds() {
        let text = serde_yaml::to_string(&crd).unwrap();
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            let diff = similar::TextDiff::from_lines(&committed, &text);
            panic!("{file} drifted from the API types; run UPDATE_GOLDEN=1 cargo test --test crds\n{}", diff.unified_diff());
        }
    }
    let listed: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).filter(|f| f != "kustomization.yaml").collect();
    assert_eq!(listed.len(), all_crds().len(), "stray files in crds/: {listed:?}");
    // the kustomization (used by deploy/) lists every CRD
    let k = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    for (file, _) in all_crds() {
        assert!(k.contains(&format!("- {file}")), "crds/kustomization.yaml does not list {file}");
    }
}

/// Every schema node must say what it is (the API server rejects non-structural schemas).
fn walk(v: &Value, path: &str, bad: &mut Vec<String>) {
    let Some(obj) = v.as_object() else { return };
    let typed = obj.contains_key("type")
        || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed {
        bad.push(path.to_string());
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if obj.contains_key(key) {
            bad.push(format!("{path} uses {key}"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
        for (k, s) in props {
            walk(s, &format!("{path}.{k}"), bad);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(items, &format!("{path}[]"), bad);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        walk(extra, &format!("{path}{{}}"), bad);
    }
}

fn schema(kind: &str) -> Value {
    let (_, crd) = all_crds().into_iter().find(|(_, c)| c.spec.names.kind == kind).unwrap();
    serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = if *p == "[]" { &cur["items"] } else { &cur["properties"][*p] };
    }
    cur
}

#[test]
fn schemas_are_structural() {
    let mut bad = Vec::new();
    for (file, crd) in all_crds() {
        for v in &crd.spec.versions {
            let s = serde_json::to_value(&v.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            walk(&s, file, &mut bad);
        }
    }
    assert!(bad.is_empty(), "non-structural schema nodes: {bad:#?}");
}

#[test]
fn constraints_are_in_the_schema() {
    let s = schema("FRRConfiguration");
    let router = at(&s, &["spec", "bgp", "routers", "[]"]);
    assert_eq!(at(&s, &["spec", "bgp", "routers"])["maxItems"].as_f64(), Some(50.0));
    assert_eq!(router["properties"]["asn"]["maximum"].as_f64(), Some(4294967295.0));
    assert_eq!(router["properties"]["asn"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(router["properties"]["asn"]["type"], "integer");
    assert_eq!(router["properties"]["neighbors"]["maxItems"].as_f64(), Some(1000.0));
    let n = at(router, &["neighbors", "[]"]);
    assert_eq!(n["properties"]["asn"]["maximum"].as_f64(), Some(4294967295.0));
    assert_eq!(n["properties"]["localASN"]["maximum"].as_f64(), Some(4294967295.0));
    assert_eq!(n["properties"]["port"]["maximum"].as_f64(), Some(65535.0));
    assert_eq!(n["properties"]["toAdvertise"]["properties"]["allowed"]["properties"]["mode"]["default"], "filtered");
    assert_eq!(n["properties"]["toAdvertise"]["properties"]["allowed"]["properties"]["mode"]["enum"], serde_json::json!(["all", "filtered"]));
    assert_eq!(n["properties"]["dynamicASN"]["enum"], serde_json::json!(["internal", "external"]));
    assert!(n["properties"]["connectTime"]["x-kubernetes-validations"].as_array().unwrap().len() == 2);
    assert!(n["properties"].get("sourceaddress").is_some() && n["properties"].get("disableMP").is_some());
    let l2 = at(router, &["evpn", "l2vnis", "[]"]);
    assert_eq!(l2["properties"]["vni"]["maximum"].as_f64(), Some(16777215.0));
    assert_eq!(l2["properties"]["rd"]["maxLength"].as_f64(), Some(21.0));
    assert!(l2["properties"]["importRTs"]["items"]["pattern"].as_str().unwrap().starts_with("^(\\*|"));
    let sel = at(&s, &["spec", "nodeSelector"]);
    assert_eq!(sel["x-kubernetes-map-type"], "atomic");
    assert_eq!(sel["properties"]["matchExpressions"]["maxItems"].as_f64(), Some(64.0));
    assert_eq!(sel["properties"]["matchExpressions"]["items"]["properties"]["values"]["maxItems"].as_f64(), Some(1000.0));
    assert_eq!(sel["properties"]["matchExpressions"]["items"]["properties"]["values"]["items"]["maxLength"].as_f64(), Some(63.0));
    assert_eq!(sel["properties"]["matchLabels"]["maxProperties"].as_f64(), Some(64.0));
    let rx = at(n, &["toReceive", "allowed", "prefixes", "[]"]);
    assert_eq!(rx["properties"]["le"]["maximum"].as_f64(), Some(128.0));
}

#[test]
fn printer_columns_and_scope() {
    for (_, crd) in all_crds() {
        let cols: Vec<String> = crd.spec.versions[0].additional_printer_columns.iter().flatten().map(|c| c.name.clone()).collect();
        match crd.spec.names.kind.as_str() {
            "FRRNodeState" => {
                assert_eq!(crd.spec.scope, "Cluster");
                assert_eq!(cols, ["FRR", "Reload", "Conversion", "Age"]);
            }
            "BGPSessionState" => {
                assert_eq!(crd.spec.scope, "Namespaced");
                assert_eq!(cols, ["Node", "Peer", "VRF", "BGP", "BFD"]);
            }
            _ => assert_eq!(crd.spec.scope, "Namespaced"),
        }
        assert_eq!(crd.spec.group, "frrk8s.metallb.io");
        assert!(crd.spec.versions[0].subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    }
}

#[test]
fn crds_command_prints_all_of_them() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frr-composer")).arg("crds").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["spec"]["names"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["FRRConfiguration", "FRRNodeState", "BGPSessionState", "FRRK8sConfiguration"]);
}
