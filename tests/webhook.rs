//! The admission webhook against a real kube-apiserver: `kubectl apply` of a conflicting
//! configuration is refused with both objects named; valid ones are admitted; an update that
//! introduces a conflict is refused; per-object checks run even when no node is selected;
//! warnings reach kubectl (also those of an update that resets a session or withdraws a
//! prefix, with the number of nodes); with the webhook down, failurePolicy Fail refuses writes.

mod apiserver;
#[path = "support/mod.rs"]
mod support;

use std::io::Write;
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

/// A real API server with the CRDs, the namespace and Nodes with the given `rack` labels; None
/// when the apiserver is not installed (outside CI).
fn cluster(nodes: &[(&str, &str)]) -> Option<ApiServer> {
    if !apiserver::require() {
        return None;
    }
    let api = ApiServer::start().unwrap();
    api.install_crds().unwrap();
    api.kubectl(&["create", "namespace", NS]).unwrap();
    for (n, r) in nodes {
        api.kubectl_stdin(&["apply", "-f", "-"], &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n    rack: {r}\n")).unwrap();
    }
    Some(api)
}

/// The shipped registration with `client_config` (a `url:` line) in place of the Service.
fn registration(client_config: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/webhook/validatingwebhookconfiguration.yaml"))
        .unwrap()
        .replace("service:\n      name: frr-composer-webhook\n      namespace: frr-k8s-system\n      path: /validate-frrk8s-metallb-io-v1beta1-frrconfiguration\n      port: 443", client_config)
}

#[test]
fn webhook_refuses_conflicts_at_kubectl_apply() {
    let Some(api) = cluster(&[("n1", "a"), ("n2", "b")]) else { return };
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
    let ca_b64 = openssl(&["base64", "-A"], &api.ca_pem().unwrap());
    let registration = registration(&format!("url: https://127.0.0.1:{port}/validate-frrk8s-metallb-io-v1beta1-frrconfiguration\n    caBundle: {ca_b64}"));
    api.kubectl_stdin(&["apply", "-f", "-"], &registration).unwrap();
    let webhook_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // a valid configuration is admitted (retried while the webhook starts)
    let a = config("a", 65001, &rack("a"), "");
    assert!(
        wait_until(Duration::from_secs(30), || api.kubectl_stdin(&["apply", "-f", "-"], &a).is_ok()),
        "valid config refused: {}\n{}",
        api.kubectl_stdin(&["apply", "-f", "-"], &a).unwrap_err(),
        webhook_log()
    );

    // a conflicting one is refused, naming both objects, the field and the values
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, "", "")).unwrap_err().to_string();
    assert!(
        err.contains("denied the request")
            && err.contains("frr-k8s-system/a")
            && err.contains("frr-k8s-system/b")
            && err.contains("65001")
            && err.contains("65002")
            && err.contains("node(s) n1"),
        "{err}"
    );
    // no common node: admitted
    api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, &rack("b"), "")).unwrap();
    // an update that introduces the conflict is refused
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, &rack("a"), "")).unwrap_err().to_string();
    assert!(err.contains("denied the request") && err.contains("65002"), "{err}");
    // per-object checks even when no node is selected
    let bad = config("c", 65001, &rack("nowhere"), "").replace("address: 192.0.2.1", "address: 192.0.2.300");
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &bad).unwrap_err().to_string();
    assert!(err.contains("not an IP address"), "{err}");
    // warnings reach kubectl (its standard error)
    let apply_warned = |yaml: &str| {
        let out = Command::new("/usr/bin/kubectl")
            .arg(format!("--kubeconfig={}", api.kubeconfig().display()))
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(yaml.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let stderr = apply_warned(&config("d", 65001, &rack("a"), "        disableMP: true\n"));
    assert!(stderr.contains("disableMP is deprecated"), "{stderr}");
    // an update that resets a session (another password Secret) is admitted with a warning
    // that counts the nodes; one that withdraws a prefix says so too; a policy change is quiet
    let secret = |name: &str| format!("        passwordSecret:\n          name: {name}\n");
    apply_warned(&config("b", 65002, &rack("b"), &secret("pw-1")));
    let stderr = apply_warned(&config("b", 65002, &rack("b"), &secret("pw-2")));
    assert!(stderr.contains("Warning: this change resets or ends BGP sessions on 1 node(s): 192.0.2.1 (default): resets (password)"), "{stderr}");
    assert!(!stderr.contains("pw-"), "{stderr}");
    let advertising = |prefixes: &str| {
        config("b", 65002, &rack("b"), &format!("{}        toAdvertise:\n          allowed:\n            prefixes: [{prefixes}]\n", secret("pw-2")))
            .replace("    - asn: 65000\n", &format!("    - asn: 65000\n      prefixes: [{prefixes}]\n"))
    };
    let stderr = apply_warned(&advertising("198.51.100.1/32, 198.51.100.2/32"));
    assert!(!stderr.contains("Warning"), "a new prefix is no disruption: {stderr}");
    let stderr = apply_warned(&advertising("198.51.100.1/32"));
    assert!(stderr.contains("this change withdraws prefixes on 1 node(s)") && stderr.contains("198.51.100.2/32"), "{stderr}");
    // the webhook down: failurePolicy Fail refuses writes (documented in deploy/webhook)
    drop(webhook);
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("e", 65001, &rack("a"), "")).unwrap_err().to_string();
    assert!(err.contains("failed calling webhook"), "{err}");
}

/// Runs openssl with `input` on its standard input; its standard output.
fn openssl(args: &[&str], input: &str) -> String {
    let mut c = Command::new("openssl").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fingerprint of a PEM certificate.
fn fingerprint(pem: &str) -> String {
    openssl(&["x509", "-noout", "-fingerprint", "-sha256"], pem).trim().to_string()
}

/// The certificate a TLS server on 127.0.0.1 presents (PEM).
fn served(port: u16) -> String {
    let out = Command::new("openssl").args(["s_client", "-connect", &format!("127.0.0.1:{port}")]).stdin(Stdio::null()).stderr(Stdio::null()).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn base64_decode(s: &str) -> String {
    openssl(&["base64", "-d", "-A"], s)
}

/// Without cert-manager: two replicas start together, then a registration without a
/// caBundle is applied; they agree on one CA and serving certificate kept in a Secret, the CA lands in
/// the caBundle, and the API server then trusts them (a conflict is refused, a valid config
/// admitted). A restarted replica reuses the stored certificate. The replicas run with the
/// ServiceAccount and RBAC of deploy/webhook. A Secret that is not frr-composer's is served as
/// it is and never rewritten.
#[test]
fn webhook_generates_and_shares_its_certificate() {
    let Some(api) = cluster(&[("n1", "a")]) else { return };
    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (p1, p2) = (free_port(), free_port());
    // the shipped registration, pointed at replica 1, with no caBundle
    let registration = registration(&format!("url: https://127.0.0.1:{p1}/validate-frrk8s-metallb-io-v1beta1-frrconfiguration"));
    assert!(!registration.contains("caBundle"));
    // the replicas run as the shipped ServiceAccount with the shipped RBAC, nothing more
    let rbac = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/webhook/rbac.yaml");
    api.kubectl(&["apply", "-n", NS, "-f", rbac.to_str().unwrap()]).unwrap();
    let token = api.kubectl(&["create", "token", "-n", NS, "frr-composer-webhook"]).unwrap();
    let kubeconfig = api.dir().join("webhook-sa.kubeconfig");
    let kc = |args: &[&str]| {
        let out = Command::new("/usr/bin/kubectl").arg(format!("--kubeconfig={}", kubeconfig.display())).args(["config"]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    kc(&["set-cluster", "test", &format!("--server={}", api.url()), &format!("--certificate-authority={}", api.ca_cert().display()), "--embed-certs"]);
    kc(&["set-credentials", "webhook", &format!("--token={}", token.trim())]);
    kc(&["set-context", "webhook", "--cluster=test", "--user=webhook"]);
    kc(&["use-context", "webhook"]);
    let start = |port: u16, log: &str| {
        Proc(
            Command::new(env!("CARGO_BIN_EXE_frr-composer"))
                .args([
                    "webhook",
                    "--address",
                    &format!("127.0.0.1:{port}"),
                    "--cert-secret",
                    "frr-composer-webhook-cert",
                    "--namespace",
                    NS,
                    "--cert-host",
                    "127.0.0.1",
                ])
                .env("KUBECONFIG", &kubeconfig)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(api.dir().join(log)).unwrap())
                .spawn()
                .unwrap(),
        )
    };
    let logs = || {
        ["webhook-1.log", "webhook-2.log", "webhook-3.log"]
            .iter()
            .map(|l| std::fs::read_to_string(api.dir().join(l)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let w1 = start(p1, "webhook-1.log");
    let w2 = start(p2, "webhook-2.log");
    // registered after the replicas started (they retry until they can fill its caBundle)
    std::thread::sleep(Duration::from_secs(1));
    api.kubectl_stdin(&["apply", "-f", "-"], &registration).unwrap();
    let ca_bundle = || {
        api.kubectl_json(&["get", "validatingwebhookconfiguration", "frr-composer-validating-webhook", "-o", "json"])
            .ok()
            .and_then(|v| v["webhooks"][0]["clientConfig"]["caBundle"].as_str().map(String::from))
    };
    assert!(wait_until(Duration::from_secs(20), || ca_bundle().is_some()), "no caBundle\n{}", logs());

    // the API server trusts replica 1 once the CA is in the caBundle
    let a = config("a", 65001, &rack("a"), "");
    assert!(
        wait_until(Duration::from_secs(30), || api.kubectl_stdin(&["apply", "-f", "-"], &a).is_ok()),
        "valid config refused: {}\n{}",
        api.kubectl_stdin(&["apply", "-f", "-"], &a).unwrap_err(),
        logs()
    );
    let err = api.kubectl_stdin(&["apply", "-f", "-"], &config("b", 65002, "", "")).unwrap_err().to_string();
    assert!(err.contains("denied the request") && err.contains("65001") && err.contains("65002"), "{err}");

    // one Secret, its CA in the caBundle, both replicas serving its certificate
    let secret = api.kubectl_json(&["get", "secret", "-n", NS, "frr-composer-webhook-cert", "-o", "json"]).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["labels"]["app.kubernetes.io/managed-by"], "frr-composer");
    let data = |k: &str| base64_decode(secret["data"][k].as_str().unwrap_or_else(|| panic!("no {k} in the Secret")));
    assert!(data("ca.key").contains("PRIVATE KEY") && data("tls.key").contains("PRIVATE KEY"));
    let vwc = api.kubectl_json(&["get", "validatingwebhookconfiguration", "frr-composer-validating-webhook", "-o", "json"]).unwrap();
    assert_eq!(base64_decode(vwc["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap()), data("ca.crt"));
    let stored = fingerprint(&data("tls.crt"));
    assert!(wait_until(Duration::from_secs(20), || fingerprint(&served(p2)) == stored), "replica 2 serves another certificate\n{}", logs());
    assert_eq!(fingerprint(&served(p1)), stored);
    // the certificate chains to the CA and names the host
    let ca_file = api.dir().join("generated-ca.crt");
    std::fs::write(&ca_file, data("ca.crt")).unwrap();
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{p2}"), "-verify_return_error", "-verify_ip", "127.0.0.1", "-CAfile"])
        .arg(&ca_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verify return code: 0 (ok)"), "{}", String::from_utf8_lossy(&out.stdout));

    // a restarted replica keeps the stored certificate; writes keep working
    drop(w1);
    let _w1 = start(p1, "webhook-3.log");
    let c = config("c", 65001, &rack("a"), "");
    assert!(wait_until(Duration::from_secs(30), || api.kubectl_stdin(&["apply", "-f", "-"], &c).is_ok()), "{}", logs());
    assert_eq!(fingerprint(&served(p1)), stored);
    let again = api.kubectl_json(&["get", "secret", "-n", NS, "frr-composer-webhook-cert", "-o", "json"]).unwrap();
    assert_eq!(again["metadata"]["resourceVersion"], secret["metadata"]["resourceVersion"], "the Secret was rewritten");
    // the keys never reach the logs
    assert!(!logs().contains("PRIVATE KEY"), "{}", logs());
    drop(w2);

    // a Secret that is not frr-composer's (made by hand, or by cert-manager) is served as it
    // is and never rewritten; without a ca.crt it leaves the caBundle alone
    let (cert, key) = api.issue_serving_cert("user", &[]).unwrap();
    api.kubectl(&["create", "secret", "tls", "user-cert", "-n", NS, &format!("--cert={}", cert.display()), &format!("--key={}", key.display())]).unwrap();
    let before = api.kubectl_json(&["get", "secret", "-n", NS, "user-cert", "-o", "json"]).unwrap();
    let p3 = free_port();
    let _w3 = Proc(
        Command::new(env!("CARGO_BIN_EXE_frr-composer"))
            .args(["webhook", "--address", &format!("127.0.0.1:{p3}"), "--cert-secret", "user-cert", "--namespace", NS, "--cert-host", "127.0.0.1"])
            .env("KUBECONFIG", api.kubeconfig())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(api.dir().join("webhook-4.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let user = fingerprint(&std::fs::read_to_string(&cert).unwrap());
    assert!(
        wait_until(Duration::from_secs(20), || served(p3).contains("BEGIN CERTIFICATE") && fingerprint(&served(p3)) == user),
        "{}",
        std::fs::read_to_string(api.dir().join("webhook-4.log")).unwrap_or_default()
    );
    let after = api.kubectl_json(&["get", "secret", "-n", NS, "user-cert", "-o", "json"]).unwrap();
    assert_eq!(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"], "the user's Secret was rewritten");
    assert_eq!(ca_bundle().map(|b| base64_decode(&b)), Some(data("ca.crt")), "the caBundle was changed");
}
