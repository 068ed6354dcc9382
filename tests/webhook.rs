//! The admission webhook against a real kube-apiserver: `kubectl apply` of a conflicting
//! configuration is refused with both objects named; valid ones are admitted; an update that
//! introduces a conflict is refused; per-object checks run even when no node is selected;
//! warnings reach kubectl; with the webhook down, failurePolicy Fail refuses writes.

mod apiserver;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use apiserver::ApiServer;

const NS: &str = "frr-k8s-system";

use apiserver::support::KillOnDrop as Proc;

fn config(name: &str, asn: u32, selector: &str, extra: &str) -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  bgp:\n    routers:\n    - asn: 65000\n      neighbors:\n      - address: 192.0.2.1\n        asn: {asn}\n{extra}{selector}"
    )
}

fn rack(r: &str) -> String {
    format!("  nodeSelector:\n    matchLabels:\n      rack: {r}\n")
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn webhook_refuses_conflicts_at_kubectl_apply() {
    if !apiserver::require() {
        return;
    }
    let api = ApiServer::start().unwrap();
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    api.kubectl(&["apply", "-k", crds.to_str().unwrap()]).unwrap();
    api.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]).unwrap();
    api.kubectl(&["create", "namespace", NS]).unwrap();
    for (n, r) in [("n1", "a"), ("n2", "b")] {
        api.kubectl_stdin(&["apply", "-f", "-"], &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n    rack: {r}\n")).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (cert, key) = api.issue_serving_cert("webhook", &["localhost"]).unwrap();
    let log = api.dir().join("webhook.log");
    let webhook = Proc(
        Command::new(env!("CARGO_BIN_EXE_frr-composer"))
            .args(["webhook", "--address", &format!("127.0.0.1:{port}")])
            .arg("--cert-file")
            .arg(&cert)
            .arg("--key-file")
            .arg(&key)
            .env("KUBECONFIG", api.kubeconfig())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    use std::io::Write;
    let ca = api.ca_pem().unwrap();
    let ca_b64 = {
        // base64 without a crate: openssl does it
        let mut c = Command::new("openssl").args(["base64", "-A"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        c.stdin.take().unwrap().write_all(ca.as_bytes()).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    let registration = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/webhook/validatingwebhookconfiguration.yaml"))
        .unwrap()
        .replace("service:\n      name: frr-composer-webhook\n      namespace: frr-k8s-system\n      path: /validate-frrk8s-metallb-io-v1beta1-frrconfiguration\n      port: 443", &format!("url: https://127.0.0.1:{port}/validate-frrk8s-metallb-io-v1beta1-frrconfiguration\n    caBundle: {ca_b64}"));
    api.kubectl_stdin(&["apply", "-f", "-"], &registration).unwrap();
    let webhook_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // a valid configuration is admitted (retried while the webhook starts)
    let a = config("a", 65001, &rack("a"), "");
    assert!(wait_until(Duration::from_secs(30), || api.kubectl_stdin(&["apply", "-f", "-"], &a).is_ok()), "valid config refused: {}\n{}", api.kubectl_stdin(&["apply", "-f", "-"], &a).unwrap_err(), webhook_log());

    // a conflicting one is refused, naming both objects, the field and the values
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, "", "")).unwrap_err().to_string();
    assert!(err.contains("denied the request") && err.contains("frr-k8s-system/a") && err.contains("frr-k8s-system/b") && err.contains("65001") && err.contains("65002") && err.contains("node(s) n1"), "{err}");
    // no common node: admitted
    api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, &rack("b"), "")).unwrap();
    // an update that introduces the conflict is refused
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, &rack("a"), "")).unwrap_err().to_string();
    assert!(err.contains("denied the request") && err.contains("65002"), "{err}");
    // per-object checks even when no node is selected
    let bad = config("c", 65001, &rack("nowhere"), "").replace("address: 192.0.2.1", "address: 192.0.2.300");
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &bad).unwrap_err().to_string();
    assert!(err.contains("not an IP address"), "{err}");
    // warnings reach kubectl
    let out = Command::new("/usr/bin/kubectl")
        .arg(format!("--kubeconfig={}", api.kubeconfig().display()))
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(config("d", 65001, &rack("a"), "        disableMP: true\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("disableMP is deprecated"), "{}", String::from_utf8_lossy(&out.stderr));
    // the webhook down: failurePolicy Fail refuses writes (documented in deploy/webhook)
    drop(webhook);
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("e", 65001, &rack("a"), "")).unwrap_err().to_string();
    assert!(err.contains("failed calling webhook"), "{err}");
}
