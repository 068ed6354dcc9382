//! FRR upgraded on the real one-node cluster as a user does it: the shipped deploy/ runs FRR
//! 10.3 (image built from Debian trixie), then the FRR DaemonSet's image and the agent's are
//! changed to FRR 10.7.1 (Debian forky) with `kubectl set image`. Measured at an FRR router
//! in another namespace: how long its kernel lacked the node's LoadBalancer /32 (read every
//! 100 ms) and how often the session dropped, without and with graceful restart.
//!
//!     .ci/install-apiserver.sh && .ci/install-cluster.sh
//!     cargo bench --bench frr_upgrade
//!
//! Needs root; reports what is missing and exits 2 otherwise. About 6 minutes.

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[path = "../tests/lab/mod.rs"]
mod lab;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use cluster::{composer_image, frr_image, Cluster, NAMESPACE, NODE_IP, NODE_NAME};
use lab::{Frr, FrrVersion};

const LB_IP: &str = "198.51.100.181/32";
const ROUTER_CONF: &str = "frr defaults traditional\nrouter bgp 65102\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n neighbor 192.0.2.113 remote-as 65801\n neighbor 192.0.2.113 timers connect 1\nexit\n";

fn metallb(graceful_restart: bool) -> String {
    format!(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: metallb-{NODE_NAME}\n  namespace: {NAMESPACE}\nspec:\n  bgp:\n    routers:\n    - asn: 65801\n      neighbors:\n      - address: 192.0.2.1\n        asn: 65102\n        enableGracefulRestart: {graceful_restart}\n        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n            - {LB_IP}\n      prefixes:\n      - {LB_IP}\n  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: {NODE_NAME}\n"
    )
}

fn dropped(router: &Frr) -> u64 {
    router.vtysh_json(&format!("show bgp neighbors {NODE_IP} json")).ok().and_then(|v| v[NODE_IP]["connectionsDropped"].as_u64()).unwrap_or(0)
}

fn established(router: &Frr) -> bool {
    router.vtysh_json(&format!("show bgp neighbors {NODE_IP} json")).is_ok_and(|v| v[NODE_IP]["bgpState"] == "Established")
}

fn in_kernel(c: &Cluster) -> bool {
    c.router.routes(false, &["exact", LB_IP]).is_ok_and(|r| r.contains(&format!("via {NODE_IP}")))
}

struct Seen {
    polls: u32,
    missed: u32,
    drops: u64,
    rollout: Duration,
}

/// Sets the images of both DaemonSets to FRR `to`'s (FRR's first, then the agent's, each
/// rollout awaited) while the router's kernel is read every 100 ms, until both rollouts are
/// done and the route has been back for 10 s.
fn upgrade(c: &Cluster, router: &Frr, to: FrrVersion) -> Seen {
    let drops = dropped(router);
    let start = Instant::now();
    let (mut polls, mut missed) = (0, 0);
    let mut rollout = None;
    std::thread::scope(|s| {
        let done = s.spawn(|| {
            let frr = frr_image(to);
            let agent = composer_image(to);
            c.kubectl(&["-n", NAMESPACE, "set", "image", "daemonset/frr-composer-frr", &format!("frr={frr}"), &format!("cp-frr-files={frr}")]).unwrap();
            c.kubectl(&["-n", NAMESPACE, "rollout", "status", "daemonset/frr-composer-frr", "--timeout=300s"]).unwrap();
            c.kubectl(&["-n", NAMESPACE, "set", "image", "daemonset/frr-composer", &format!("frr-composer={agent}"), &format!("state-dir={agent}")]).unwrap();
            c.kubectl(&["-n", NAMESPACE, "rollout", "status", "daemonset/frr-composer", "--timeout=300s"]).unwrap();
            start.elapsed()
        });
        let mut back_since: Option<Instant> = None;
        while start.elapsed() < Duration::from_secs(600) {
            polls += 1;
            if in_kernel(c) {
                back_since.get_or_insert_with(Instant::now);
            } else {
                missed += 1;
                back_since = None;
            }
            if rollout.is_none() && done.is_finished() {
                rollout = Some(start.elapsed());
            }
            if rollout.is_some() && back_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100).saturating_sub(Duration::from_nanos((start.elapsed().as_nanos() % 100_000_000) as u64)));
        }
        rollout = Some(done.join().unwrap());
    });
    Seen { polls, missed, drops: dropped(router) - drops, rollout: rollout.unwrap() }
}

fn main() {
    // the cluster's prerequisites include the FRR 10.7 image
    let missing: Vec<String> = cluster::available().into_iter().collect();
    if !missing.is_empty() {
        eprintln!("cannot run: {}", missing.join("; "));
        std::process::exit(2);
    }
    let c = Cluster::start(FrrVersion::V10).unwrap();
    c.import_version(FrrVersion::V10_7).unwrap();
    let router = Frr::start(FrrVersion::V8, &c.router).unwrap();
    router.load_config_file(ROUTER_CONF).unwrap();
    let overlay = c.overlay().unwrap();
    c.kubectl(&["apply", "-k", &overlay.display().to_string()]).unwrap();
    c.kubectl(&["-n", NAMESPACE, "rollout", "status", "deployment/frr-composer-webhook", "--timeout=300s"]).unwrap();
    let apply = |gr: bool| {
        assert!(lab::wait_until(Duration::from_secs(60), || c.kubectl_stdin(&["apply", "-f", "-"], &metallb(gr)).is_ok()), "{}", c.diagnostics());
    };
    let whole = |what: &str| {
        assert!(lab::wait_until(Duration::from_secs(180), || established(&router) && in_kernel(&c)), "{what}: the router has no route\n{}", c.diagnostics());
    };
    // the FRR the agent reports (FRRNodeState status.frrVersion), e.g. "10.7.1"
    let running = |want: FrrVersion| {
        let prefix = format!("{}.", want.label());
        let mut last = String::new();
        let ok = lab::wait_until(Duration::from_secs(60), || {
            last =
                c.kubectl_json(&["get", "frrnodestate", NODE_NAME]).ok().and_then(|s| s["status"]["frrVersion"].as_str().map(String::from)).unwrap_or_default();
            format!("{last}.").starts_with(&prefix)
        });
        assert!(ok, "the node runs FRR {last:?}, not {}\n{}", want.label(), c.diagnostics());
        last
    };
    apply(false);
    whole("deployed");
    let mut rows = Vec::new();
    let mut run = |what: &str, to: FrrVersion| {
        let s = upgrade(&c, &router, to);
        let now = running(to);
        let row = format!(
            "| {what} (FRRNodeState: {now}) | {:.1} s ({} of {} polls) | {} | {:.0} s |",
            f64::from(s.missed) / 10.0,
            s.missed,
            s.polls,
            s.drops,
            s.rollout.as_secs_f64()
        );
        eprintln!("{row}");
        rows.push(row);
    };
    run("FRR 10.3 -> 10.7.1, no graceful restart", FrrVersion::V10_7);
    whole("upgraded");
    run("FRR 10.7.1 -> 10.3, no graceful restart", FrrVersion::V10);
    whole("downgraded");
    apply(true);
    assert!(
        lab::wait_until(Duration::from_secs(60), || c
            .kubectl_json(&["get", "frrnodestate", NODE_NAME])
            .is_ok_and(|s| s["status"]["runningConfig"].as_str().is_some_and(|r| r.contains("neighbor 192.0.2.1 graceful-restart")))),
        "graceful restart not applied\n{}",
        c.diagnostics()
    );
    // graceful restart takes effect when the session starts again
    router.vtysh(&["clear bgp *"]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    whole("graceful restart on");
    run("FRR 10.3 -> 10.7.1, graceful restart", FrrVersion::V10_7);
    whole("upgraded");
    run("FRR 10.7.1 -> 10.3, graceful restart", FrrVersion::V10);
    println!("\n| the node's FRR and agent images changed | router's kernel without the LB /32 | session drops | both rollouts |\n|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    drop(router);
    drop(c);
}
