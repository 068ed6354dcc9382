//! frr-composer beside frr-k8s v0.0.26 itself, both driven by the same real MetalLB (one run).
//!
//!     .ci/install-apiserver.sh && .ci/install-metallb.sh && .ci/install-frr-k8s.sh
//!     cargo bench --bench metallb_side_by_side [-- --services 12 --restarts 3]
//!
//! The lab of tests/metallb.rs with a second set of three nodes (n4..n6) that run frr-k8s's
//! controller, its reloader script and FRR's frr-reload.py instead of frr-composer. Measured:
//! - for each of N Services (created one at a time, policy Cluster, so every node announces),
//!   the time from MetalLB's controller writing the Service's IP (watch event) to the route
//!   having n1's next hop (frr-composer) and n4's next hop (frr-k8s) in the router's kernel;
//! - during restarts of the speakers of n1 and n4 (at the same moment), what the router's
//!   kernel held for the first Service's IP, polled every 50 ms.
//!
//! Needs root, FRR 8.4 and the binaries above; reports what is missing and exits 2 otherwise.

#[path = "../tests/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/support/mod.rs"]
mod support;
// the lab and the API server harness each include tests/support
#[path = "../tests/lab/mod.rs"]
mod lab;
#[path = "../tests/metallb_lab/mod.rs"]
mod metallb_lab;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use metallb_lab::{MetalLbLab, ObjectWatch, FRRK8S_NODES, NODES};

#[derive(Parser)]
struct Args {
    /// Services to time (one at a time).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100))]
    services: u32,
    /// Speaker restarts (n1 and n4 together).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    restarts: u32,
    /// cargo bench passes --bench.
    #[arg(long, hide = true)]
    bench: bool,
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args = Args::parse();
    let missing: Vec<String> =
        [lab::unavailable(&[lab::Req::Frr(lab::FrrVersion::V8)]), apiserver::available(), metallb_lab::available(), metallb_lab::frr_k8s_available()]
            .into_iter()
            .flatten()
            .collect();
    if !missing.is_empty() {
        eprintln!("cannot run: {}", missing.join("; "));
        std::process::exit(2);
    }
    let ours = NODES[0].1.to_string();
    let theirs = FRRK8S_NODES[0].1.to_string();
    let lab = MetalLbLab::start_with(&[], true).unwrap();
    let services = ObjectWatch::start(&lab.api, &["-n", "default", "get", "services", "--output-watch-events"], lab.tmp.path().join("svc-watch.log")).unwrap();
    // both sets of sessions up (MetalLB writes the peer before any Service exists)
    let established = || {
        lab.router_frr
            .vtysh_json("show bgp ipv4 unicast summary json")
            .ok()
            .map(|v| v["peers"].as_object().map(|p| p.values().filter(|p| p["state"] == "Established").count()).unwrap_or(0))
            .unwrap_or(0)
    };
    if !lab::wait_until(Duration::from_secs(180), || established() == 6) {
        let mut s = lab.diag("not all six sessions came up");
        for n in &lab.frrk8s {
            s.push_str(&format!("\n--- {}\n{}", n.proc.name, n.logs(15)));
        }
        panic!("{s}");
    }
    eprintln!("six sessions established");

    let mut d_ours = Vec::new();
    let mut d_theirs = Vec::new();
    let mut rows = Vec::new();
    for k in 0..args.services {
        let name = format!("bench-{k}");
        let ip = format!("203.0.113.{}", 100 + k);
        lab.service(&name, &ip, false, &[0]).unwrap();
        let start = Instant::now();
        let (mut t_ours, mut t_theirs) = (None, None);
        while start.elapsed() < Duration::from_secs(120) && (t_ours.is_none() || t_theirs.is_none()) {
            let nh = lab.router_nexthops(&ip);
            let now = Instant::now();
            if t_ours.is_none() && nh.contains(&ours) {
                t_ours = Some(now);
            }
            if t_theirs.is_none() && nh.contains(&theirs) {
                t_theirs = Some(now);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let assigned = services
            .events
            .lock()
            .unwrap()
            .iter()
            .find(|(_, v)| v["object"]["metadata"]["name"] == name.as_str() && v["object"]["status"]["loadBalancer"]["ingress"][0]["ip"] == ip.as_str())
            .map(|(t, _)| *t);
        let Some(assigned) = assigned else {
            panic!("{}", lab.diag(&format!("{name}: no IP assignment seen")));
        };
        let (Some(a), Some(b)) = (t_ours, t_theirs) else {
            let mut s = lab.diag(&format!("{name}: route not at the router (ours {t_ours:?}, frr-k8s {t_theirs:?})"));
            for n in &lab.frrk8s {
                s.push_str(&format!("\n--- {}\n{}", n.proc.name, n.logs(15)));
            }
            panic!("{s}");
        };
        let (a, b) = (a.saturating_duration_since(assigned), b.saturating_duration_since(assigned));
        eprintln!("{name} {ip}: frr-composer {}, frr-k8s {}", ms(a), ms(b));
        rows.push((name, a, b));
        d_ours.push(a);
        d_theirs.push(b);
        // let both settle before the next one (MetalLB's 3 s timer, frr-k8s's 3 s debounce)
        std::thread::sleep(Duration::from_secs(1));
    }

    // speaker restarts: what the router's kernel held for the first Service's IP
    let ip0 = "203.0.113.100".to_string();
    let mut gaps: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 0..args.restarts {
        let start = Instant::now();
        let mark = lab.watch().len();
        std::thread::scope(|s| {
            s.spawn(|| lab.restart_speaker(0).unwrap());
            s.spawn(|| lab.restart_speaker(NODES.len()).unwrap());
        });
        let mut missing: BTreeMap<&str, (Option<Instant>, Duration)> = BTreeMap::new();
        while start.elapsed() < Duration::from_secs(15) {
            let nh = lab.router_nexthops(&ip0);
            let now = Instant::now();
            for (who, hop) in [("frr-composer", &ours), ("frr-k8s", &theirs)] {
                let e = missing.entry(who).or_insert((None, Duration::ZERO));
                match (nh.contains(hop), e.0) {
                    (false, None) => e.0 = Some(now),
                    (true, Some(since)) => {
                        e.1 += now - since;
                        e.0 = None;
                    }
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for (who, (open, total)) in missing {
            let total = total + open.map(|t| t.elapsed()).unwrap_or_default();
            gaps.entry(who).or_default().push(total);
        }
        // what MetalLB wrote meanwhile: kind and number of prefixes, by time after the restart
        for node in ["metallb-n1", "metallb-n4"] {
            let writes: Vec<String> = lab
                .watch()
                .since(mark)
                .iter()
                .filter(|e| e.name == node)
                .map(|e| format!("{} {} {}", ms(e.at.saturating_duration_since(start)), e.kind, e.prefixes.len()))
                .collect();
            eprintln!("  {node}: {}", writes.join(", "));
        }
        eprintln!("restart {}: next hop missing at the router: {:?}", round + 1, gaps.iter().map(|(w, g)| (w, ms(*g.last().unwrap()))).collect::<Vec<_>>());
    }

    println!("\n| | frr-composer (n1..n3) | frr-k8s v0.0.26 (n4..n6) |\n|---|---|---|");
    println!("| Service IP -> route at the router, median of {} | {} | {} |", d_ours.len(), ms(median(&mut d_ours)), ms(median(&mut d_theirs)));
    println!("| same, min / max | {} / {} | {} / {} |", ms(d_ours[0]), ms(*d_ours.last().unwrap()), ms(d_theirs[0]), ms(*d_theirs.last().unwrap()));
    if args.restarts > 0 {
        let show = |w: &str| gaps.get(w).map(|g| g.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        println!("| next hop missing at the router during {} speaker restarts | {} | {} |", args.restarts, show("frr-composer"), show("frr-k8s"));
    }
    let _ = rows;
}
