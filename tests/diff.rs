//! `frr-composer diff` offline, against saved objects: a change that withdraws a prefix and
//! resets a session on the rack it selects, grouped by node; `--delete`; no change (exit 0);
//! an unreadable change (exit 2); JSON for CI; passwords never printed.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_frr-composer");

fn cluster() -> String {
    let mut s = String::new();
    for (n, rack) in [("wk1", "a"), ("wk2", "a"), ("wk3", "b")] {
        s += &format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{rack: {rack}}}}}\n---\n");
    }
    s += &metallb(&["198.51.100.10/32", "198.51.100.11/32"], "s3cret-one");
    s
}

fn metallb(prefixes: &[&str], password: &str) -> String {
    let list = prefixes.join(", ");
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {{name: metallb, namespace: frr-k8s-system, generation: 4}}\nspec:\n  nodeSelector: {{matchLabels: {{rack: a}}}}\n  bgp:\n    routers:\n    - asn: 64512\n      prefixes: [{list}]\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65001\n        password: {password}\n        toAdvertise: {{allowed: {{prefixes: [{list}]}}}}\n"
    )
}

fn diff(dir: &Path, change: &str, extra: &[&str]) -> (i32, String, String) {
    std::fs::write(dir.join("cluster.yaml"), cluster()).unwrap();
    std::fs::write(dir.join("change.yaml"), change).unwrap();
    let o = Command::new(BIN)
        .arg("diff")
        .arg("--from")
        .arg(dir.join("cluster.yaml"))
        .arg("-f")
        .arg(dir.join("change.yaml"))
        .args(extra)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn what_a_change_would_do() {
    let d = tempfile::tempdir().unwrap();
    // one prefix withdrawn, one added, and a new password: the rack-a nodes, in one group
    let (code, out, err) = diff(d.path(), &metallb(&["198.51.100.10/32", "198.51.100.12/32"], "s3cret-two"), &[]);
    assert_eq!(code, 1, "{out}{err}");
    let expected_head = "2 nodes: wk1, wk2\n  sessions:\n    192.0.2.1 (default): resets (password)\n  withdrawn:\n    - 192.0.2.1 (default): 198.51.100.11/32\n  announced:\n    + 192.0.2.1 (default): 198.51.100.12/32\n";
    assert!(out.starts_with(expected_head), "{out}");
    assert!(out.contains("  FRR commands added:\n") && out.contains("network 198.51.100.12/32"), "{out}");
    assert!(!out.contains("s3cret") && !err.contains("s3cret"), "a password was printed:\n{out}{err}");

    // JSON: the same groups
    let (code, out, _) = diff(d.path(), &metallb(&["198.51.100.10/32", "198.51.100.12/32"], "s3cret-two"), &["-o", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["groups"][0]["nodes"], serde_json::json!(["wk1", "wk2"]));
    assert_eq!(v["groups"][0]["withdrawn"], serde_json::json!(["192.0.2.1 (default): 198.51.100.11/32"]));

    // deleting it: both sessions go down
    let (code, out, _) = diff(d.path(), &metallb(&[], "x"), &["--delete"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("2 nodes: wk1, wk2\n  sessions:\n    192.0.2.1 (default): removed, the session goes down\n"), "{out}");

    // the same object: nothing changes
    let (code, out, err) = diff(d.path(), &metallb(&["198.51.100.10/32", "198.51.100.11/32"], "s3cret-one"), &[]);
    assert_eq!((code, out.as_str()), (0, "no node changes\n"), "{err}");

    // an unreadable change
    let (code, _, err) = diff(d.path(), "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata: {name: x}\nspec: {bgp: 3}\n", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spec.bgp"), "{err}");
}
