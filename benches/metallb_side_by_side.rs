//! frr-composer beside frr-k8s v0.0.26 itself, both driven by the same real MetalLB (one run).
//!
//!     .ci/install-apiserver.sh && .ci/install-metallb.sh && .ci/install-frr-k8s.sh
//!     cargo bench --bench metallb_side_by_side [-- --services 12 --per-node 12,50 --restarts 20]
//!
//! The lab of tests/metallb.rs with a second set of three nodes (n4..n6) that run frr-k8s's
//! controller, its reloader script and FRR's frr-reload.py instead of frr-composer. n1 and n4
//! are the nodes under test, one of each. Measured, in this order:
//! 1. Service -> route: for each of `--services` Services (created one at a time, policy
//!    Cluster, so every node announces), the time from MetalLB's controller writing the
//!    Service's IP (watch event) to the route having n1's next hop and n4's next hop in the
//!    router's kernel.
//! 2. Speaker restarts: for each size of `--per-node`, that many Services with policy Local
//!    and their endpoint on n1 (frr-composer's set) and as many on n4 (frr-k8s's set), so
//!    that only that node announces each and a client's TCP connect reaches it only through
//!    that node's route. Then `--restarts` restarts of the speakers of n1 and n4 at the same
//!    moment; during each, the router's kernel is read every 100 ms (a poll is missed when
//!    any IP of the set lacks its node's next hop) and a client connects to every IP of each
//!    set in turn (connects that fail are counted).
//! 3. Deletion -> withdrawal: three Services of each set deleted, the time until the route
//!    is gone from the router's kernel.
//!    Then the node's controller restarted with FRR left running (frr-composer's agent;
//!    frr-k8s's controller and reloader, as in its pod): missed polls and failed connects.
//! 4. Failover and FRR restarts (unless `--no-failover`): n1's and n4's link cut (time until
//!    the router drops that node's next hop of a Cluster Service) with MetalLB's BFD profile
//!    and without BFD (hold time, MetalLB's default 90 s); FRR of n1 and n4 killed (SIGKILL,
//!    every daemon, as a crash) and started again, with BFD, without, and with graceful
//!    restart (with and without BFD): missed polls and failed connects of each set, and the
//!    time until the set was whole again. frr-composer's FRR starts empty and its agent
//!    restores it; frr-k8s's FRR starts with the frr.conf its reloader last wrote (as its
//!    FRR container does).
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

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use lab::Frr;
use metallb_lab::{MetalLbLab, ObjectWatch, FRRK8S_NODES, NODES, NS, ROUTER_ASN, ROUTER_IP};

#[derive(Parser)]
struct Args {
    /// Services timed one at a time (policy Cluster).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=40))]
    services: u32,
    /// Services per node under test for the speaker restarts (policy Local), one run per size.
    #[arg(long, value_delimiter = ',', default_values_t = vec![12u32, 50], value_parser = clap::value_parser!(u32).range(1..=50))]
    per_node: Vec<u32>,
    /// Speaker restarts (n1 and n4 together) per size.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=50))]
    restarts: u32,
    /// Skip the link cuts and FRR restarts.
    #[arg(long)]
    no_failover: bool,
    /// cargo bench passes --bench.
    #[arg(long, hide = true)]
    bench: bool,
}

const OURS: &str = "frr-composer";
const THEIRS: &str = "frr-k8s";

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

/// The LoadBalancer IPs of one node under test (policy Local: only that node announces them).
struct Set {
    who: &'static str,
    /// The node's index in the lab and its address (the next hop at the router).
    node: usize,
    hop: String,
    ips: Vec<String>,
}

/// What one observation window saw of one set.
#[derive(Default, Clone)]
struct Seen {
    polls: u32,
    missed: u32,
    /// From the window's start to the end of the last poll that missed.
    last_miss: Option<Duration>,
    connects: u32,
    failed: u32,
}

/// The router's kernel: each IPv4 destination with its gateways (`ip -j route`).
fn router_table(router: &str) -> BTreeMap<String, BTreeSet<String>> {
    lab::route_table(&support::run(support::command("ip").args(["-n", router, "-j", "-4", "route", "show"])).unwrap_or_default())
}

fn missing(table: &BTreeMap<String, BTreeSet<String>>, set: &Set) -> usize {
    set.ips.iter().filter(|ip| !table.get(*ip).is_some_and(|h| h.contains(&set.hop))).count()
}

/// Connects from the client to every IP in turn for the given seconds (0.5 s timeout each,
/// the node's answer read), each IP about every 100 ms (flat out, the probes and listeners
/// load 2 cores enough to delay BFD packets past 750 ms), then prints {ip: [attempts,
/// failures]} as JSON.
const PROBE: &str = "import socket,sys,time,json\n\
end=time.time()+float(sys.argv[1]); ips=sys.argv[2].split(','); port=int(sys.argv[3])\n\
res={ip:[0,0] for ip in ips}\n\
while time.time()<end:\n  t0=time.time()\n  for ip in ips:\n    ok=False\n    s=socket.socket(); s.settimeout(0.5)\n    try:\n      s.connect((ip,port)); ok=len(s.recv(64))>0\n    except Exception:\n      pass\n    s.close()\n    res[ip][0]+=1\n    if not ok: res[ip][1]+=1\n  time.sleep(max(0.0,0.1-(time.time()-t0)))\n\
print(json.dumps(res))\n";

/// Runs `action` while the router's kernel is read every 100 ms and the client connects to
/// every IP of each set in turn, for `window`; what each set saw.
fn observe(router: &str, client: &str, sets: &[&Set], window: Duration, action: impl FnOnce()) -> BTreeMap<&'static str, Seen> {
    // one prober per set, so that one set's timeouts do not slow the other's connects
    let mut probes: Vec<_> = sets
        .iter()
        .map(|s| {
            std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    client,
                    "/usr/bin/python3",
                    "-c",
                    PROBE,
                    &format!("{:.1}", window.as_secs_f64()),
                    &s.ips.join(","),
                    &metallb_lab::PORT.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("connect probe")
        })
        .collect();
    let start = Instant::now();
    let init: BTreeMap<&'static str, Seen> = sets.iter().map(|s| (s.who, Seen::default())).collect();
    let mut seen = std::thread::scope(|scope| {
        let poller = scope.spawn(move || {
            let mut seen = init;
            while start.elapsed() < window {
                let t = router_table(router);
                for s in sets {
                    let e = seen.get_mut(s.who).unwrap();
                    e.polls += 1;
                    if missing(&t, s) > 0 {
                        e.missed += 1;
                        e.last_miss = Some(start.elapsed());
                    }
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(Duration::from_nanos((start.elapsed().as_nanos() % 100_000_000) as u64)));
            }
            seen
        });
        action();
        poller.join().unwrap()
    });
    for (s, probe) in sets.iter().zip(&mut probes) {
        let mut out = String::new();
        probe.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let _ = probe.wait();
        let res: BTreeMap<String, (u32, u32)> = serde_json::from_str(out.trim()).unwrap_or_default();
        let e = seen.get_mut(s.who).unwrap();
        for (a, f) in res.values() {
            e.connects += a;
            e.failed += f;
        }
    }
    seen
}

/// Kills every daemon of `frr` at once (SIGKILL, as a crash) and starts them again; then
/// loads `conf` when given (what FRR's container does at start with its frr.conf). Returns
/// how long after the kill FRR took configuration again.
fn crash_frr(frr: &mut Frr, conf: Option<String>) -> Duration {
    let start = Instant::now();
    let daemons = frr.version().daemons();
    for d in daemons {
        if let Some(pid) = frr.pid(d) {
            let _ = std::process::Command::new("kill").args(["-s", "KILL", &pid.to_string()]).status();
        }
    }
    lab::wait_until(Duration::from_secs(5), || daemons.iter().all(|d| !frr.daemon_running(d)));
    for d in daemons {
        frr.start_daemon(d).unwrap_or_else(|e| panic!("restart {d}: {e:#}"));
    }
    lab::wait_until(Duration::from_secs(10), || frr.vtysh(&["configure terminal", "end"]).is_ok_and(|o| !o.contains('%')));
    let back = start.elapsed();
    if let Some(c) = conf {
        if let Err(e) = frr.load_config_file(&c) {
            eprintln!("loading frr-k8s's frr.conf after the restart: {e:#}");
        }
    }
    back
}

fn bgp_peer(bfd: bool, graceful_restart: bool) -> String {
    let mut s = format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: router\n  namespace: {NS}\nspec:\n  myASN: {}\n  peerASN: {ROUTER_ASN}\n  peerAddress: {ROUTER_IP}\n  passwordSecret:\n    name: bgp-pw\n    namespace: {NS}\n",
        metallb_lab::NODE_ASN
    );
    if bfd {
        s.push_str("  bfdProfile: fast\n");
    }
    if graceful_restart {
        s.push_str("  enableGracefulRestart: true\n");
    }
    s
}

/// How often the router's session with `hop` went down so far.
fn drops(lab: &MetalLbLab, hop: &str) -> u64 {
    lab.router_frr.vtysh_json(&format!("show bgp neighbors {hop} json")).ok().and_then(|v| v[hop]["connectionsDropped"].as_u64()).unwrap_or(0)
}

fn established(lab: &MetalLbLab) -> usize {
    lab.router_frr
        .vtysh_json("show bgp ipv4 unicast summary json")
        .ok()
        .map(|v| v["peers"].as_object().map(|p| p.values().filter(|p| p["state"] == "Established").count()).unwrap_or(0))
        .unwrap_or(0)
}

/// Both nodes' FRR runs a configuration where `line` is present (or absent), every session is
/// up and both sets are whole at the router; else Err with what is not.
fn settle(lab: &MetalLbLab, sets: &[&Set], line: &str, present: bool, what: &str) -> Result<(), String> {
    let ok = lab::wait_until(Duration::from_secs(180), || {
        sets.iter().all(|s| lab.frrs[s.node].running_config().is_ok_and(|c| c.contains(line) == present))
            && established(lab) == 6
            && sets.iter().all(|s| missing(&router_table(lab.router.name()), s) == 0)
    });
    if !ok {
        let mut s = format!("{what}: the nodes did not settle: sessions established {}", established(lab));
        for set in sets {
            let conf = lab.frrs[set.node].running_config().unwrap_or_default();
            let lines: Vec<&str> = conf.lines().filter(|l| l.contains("bfd") || l.contains("graceful")).collect();
            s.push_str(&format!(
                "\n{}: {} of its IPs missing at the router; want {line:?} {}; its lines with bfd or graceful: {lines:?}",
                set.who,
                missing(&router_table(lab.router.name()), set),
                if present { "present" } else { "absent" }
            ));
        }
        return Err(lab.diag(&s));
    }
    Ok(())
}

fn set_router_bfd(lab: &MetalLbLab, on: bool) {
    let cmd = if on { "neighbor NODES bfd" } else { "no neighbor NODES bfd" };
    lab.router_frr.vtysh(&["configure terminal", &format!("router bgp {ROUTER_ASN}"), cmd, "end"]).unwrap();
}

/// Cuts the links of n1 and n4 at once; the time until the router's kernel lacks each one's
/// next hop for `ip` (announced by every node); then puts the links back and waits for the
/// sets to be whole.
fn link_cut(lab: &MetalLbLab, sets: &[&Set], ip: &str, timeout: Duration) -> Result<BTreeMap<&'static str, Option<Duration>>, String> {
    let start = Instant::now();
    for s in sets {
        lab.nodes[s.node].ip(&["link", "set", "eth0", "down"]).unwrap();
    }
    let mut gone: BTreeMap<&'static str, Option<Duration>> = sets.iter().map(|s| (s.who, None)).collect();
    while start.elapsed() < timeout && gone.values().any(Option::is_none) {
        let t = router_table(lab.router.name());
        for s in sets {
            if gone[s.who].is_none() && !t.get(ip).is_some_and(|h| h.contains(&s.hop)) {
                gone.insert(s.who, Some(start.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for s in sets {
        let ns = &lab.nodes[s.node];
        ns.ip(&["link", "set", "eth0", "up"]).unwrap();
        let _ = ns.ip(&["route", "replace", "default", "via", ROUTER_IP]);
    }
    settle(lab, sets, "router bgp", true, "after the link cut")?;
    Ok(gone)
}

fn show(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64())).unwrap_or_else(|| "not seen".into())
}

fn main() {
    let args = Args::parse();
    let missing_reqs: Vec<String> =
        [lab::unavailable(&[lab::Req::Frr(lab::FrrVersion::V8)]), apiserver::available(), metallb_lab::available(), metallb_lab::frr_k8s_available()]
            .into_iter()
            .flatten()
            .collect();
    if !missing_reqs.is_empty() {
        eprintln!("cannot run: {}", missing_reqs.join("; "));
        std::process::exit(2);
    }
    let ours = NODES[0].1.to_string();
    let theirs = FRRK8S_NODES[0].1.to_string();
    let mut lab = MetalLbLab::start_with(&[], true).unwrap();
    let services = ObjectWatch::start(&lab.api, &["-n", "default", "get", "services", "--output-watch-events"], lab.tmp.path().join("svc-watch.log")).unwrap();
    // both sets of sessions up (MetalLB writes the peer before any Service exists)
    if !lab::wait_until(Duration::from_secs(180), || established(&lab) == 6) {
        let mut s = lab.diag("not all six sessions came up");
        for n in &lab.frrk8s {
            s.push_str(&format!("\n--- {}\n{}", n.proc.name, n.logs(15)));
        }
        panic!("{s}");
    }
    eprintln!("six sessions established");
    let mut table: Vec<(String, String, String)> = Vec::new();
    let (router, client) = (lab.router.name().to_string(), lab.client.name().to_string());

    // 1. Service -> route
    let mut d_ours = Vec::new();
    let mut d_theirs = Vec::new();
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
        d_ours.push(a);
        d_theirs.push(b);
        // let both settle before the next one (MetalLB's 3 s timer, frr-k8s's 3 s debounce)
        std::thread::sleep(Duration::from_secs(1));
    }
    let (m_ours, m_theirs) = (median(&mut d_ours), median(&mut d_theirs));
    table.push((format!("Service IP -> route at the router, median of {}", d_ours.len()), ms(m_ours), ms(m_theirs)));
    table.push((
        "same, min / max".into(),
        format!("{} / {}", ms(d_ours[0]), ms(*d_ours.last().unwrap())),
        format!("{} / {}", ms(d_theirs[0]), ms(*d_theirs.last().unwrap())),
    ));

    // 2. Speaker restarts, policy Local sets of each size
    let mut sets =
        [Set { who: OURS, node: 0, hop: ours.clone(), ips: Vec::new() }, Set { who: THEIRS, node: NODES.len(), hop: theirs.clone(), ips: Vec::new() }];
    for &size in &args.per_node {
        for (k, s) in sets.iter_mut().enumerate() {
            let base = if k == 0 { 141 } else { 191 };
            for j in s.ips.len() as u32..size {
                let ip = format!("203.0.113.{}", base + j);
                lab.nodes[s.node].add_addr("lo", &format!("{ip}/32")).unwrap();
                lab.service(&format!("local-{}-{j}", s.who), &ip, true, &[s.node]).unwrap();
                s.ips.push(ip);
            }
        }
        let refs: Vec<&Set> = sets.iter().collect();
        settle(&lab, &refs, "router bgp", true, &format!("{size} Services per node")).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{size} Services per node at the router");
        let mut total: BTreeMap<&str, (Seen, u32)> = BTreeMap::new();
        let dropped_before: Vec<u64> = sets.iter().map(|s| drops(&lab, &s.hop)).collect();
        for round in 0..args.restarts {
            let seen = observe(&router, &client, &refs, Duration::from_secs(12), || {
                std::thread::scope(|s| {
                    s.spawn(|| lab.restart_speaker(0).unwrap());
                    s.spawn(|| lab.restart_speaker(NODES.len()).unwrap());
                });
            });
            for (who, v) in &seen {
                let t = total.entry(who).or_default();
                t.0.polls += v.polls;
                t.0.missed += v.missed;
                t.0.connects += v.connects;
                t.0.failed += v.failed;
                t.1 += u32::from(v.missed > 0);
            }
            eprintln!(
                "{size} per node, restart {}: {}",
                round + 1,
                seen.iter()
                    .map(|(w, v)| format!("{w}: missed {}/{} polls, failed {}/{} connects", v.missed, v.polls, v.failed, v.connects))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            // all back before the next restart
            settle(&lab, &refs, "router bgp", true, "after a speaker restart").unwrap_or_else(|e| panic!("{e}"));
        }
        let dropped: BTreeMap<&str, u64> = sets.iter().zip(&dropped_before).map(|(s, b)| (s.who, drops(&lab, &s.hop) - b)).collect();
        if args.restarts > 0 {
            let cell = |w: &str| {
                let (v, r) = &total[w];
                format!(
                    "{} of {} polls missed ({} restarts with a miss); {} of {} connects failed; session drops {}",
                    v.missed, v.polls, r, v.failed, v.connects, dropped[w]
                )
            };
            table.push((format!("{} speaker restarts, {size} Services (policy Local) on the node", args.restarts), cell(OURS), cell(THEIRS)));
        }
    }

    // 3. Deletion -> withdrawal
    let mut w: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    // three, keeping at least one in each set for what follows
    let deletions = sets.iter().map(|s| s.ips.len().saturating_sub(1)).min().unwrap_or(0).min(3);
    for _ in 0..deletions {
        let gone: Vec<(&'static str, String)> = sets.iter_mut().map(|s| (s.who, s.ips.pop().unwrap())).collect();
        let start = Instant::now();
        for (who, ip) in &gone {
            let j = ip.rsplit('.').next().unwrap().parse::<u32>().unwrap() - if *who == OURS { 141 } else { 191 };
            lab.delete_service(&format!("local-{who}-{j}")).unwrap();
        }
        let mut left: BTreeSet<&str> = gone.iter().map(|(w, _)| *w).collect();
        while !left.is_empty() && start.elapsed() < Duration::from_secs(60) {
            let t = router_table(lab.router.name());
            for (who, ip) in &gone {
                if left.contains(who) && !t.contains_key(ip) {
                    left.remove(who);
                    w.entry(who).or_default().push(start.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("deletion -> withdrawal: {:?}", w.iter().map(|(k, v)| (k, ms(*v.last().unwrap()))).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_secs(1));
    }
    let wd = |who: &str| w.get(who).map(|v| v.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| "not withdrawn in 60 s".into());
    table.push((format!("Service deleted -> route withdrawn at the router ({deletions} deletions)"), wd(OURS), wd(THEIRS)));

    // 3b. The node's own controller restarted (frr-composer's agent; frr-k8s's controller
    // and reloader, as when its pod restarts), FRR left running
    let restart_controllers = |lab: &mut MetalLbLab| {
        drop(lab.agents.remove(0));
        let a = lab.spawn_agent(0).unwrap();
        lab.agents.insert(0, a);
        let old = lab.frrk8s.remove(0);
        let pidfile = old.dir.join("reloader").join("reloader.pid");
        drop(old);
        let _ = std::fs::remove_file(pidfile);
        let n = lab.spawn_frr_k8s(0).unwrap();
        lab.frrk8s.insert(0, n);
    };
    {
        let refs: Vec<&Set> = sets.iter().collect();
        let seen = observe(&router, &client, &refs, Duration::from_secs(20), || restart_controllers(&mut lab));
        let cell = |w: &str| {
            let v = &seen[w];
            format!("{} of {} polls missed; {} of {} connects failed", v.missed, v.polls, v.failed, v.connects)
        };
        eprintln!("controller restart: {OURS}: {}; {THEIRS}: {}", cell(OURS), cell(THEIRS));
        table.push(("the node's controller restarted (agent; frr-k8s's pod without FRR)".into(), cell(OURS), cell(THEIRS)));
        settle(&lab, &refs, "router bgp", true, "after the controller restarts").unwrap_or_else(|e| panic!("{e}"));
    }

    // 4. Failover and FRR restarts
    if !args.no_failover {
        let cluster_ip = "203.0.113.100".to_string();
        let refs: Vec<&Set> = sets.iter().collect();
        // what frr-k8s's FRR container starts with: the file its reloader's frr-reload.py
        // --overwrite wrote, else the one it was asked to load
        let k8s_dir = lab.frrk8s[0].dir.clone();
        let frrk8s_conf = move || {
            std::fs::read_to_string(k8s_dir.join("etc-frr").join("frr.conf"))
                .or_else(|_| std::fs::read_to_string(k8s_dir.join("reloader").join("frr.conf")))
                .ok()
        };
        let crash = |lab: &mut MetalLbLab, what: &str| -> (String, String, String) {
            let conf = frrk8s_conf();
            if conf.is_none() {
                eprintln!("frr-k8s wrote no frr.conf: its FRR restarts empty");
            }
            let (router, client) = (lab.router.name().to_string(), lab.client.name().to_string());
            let (a, rest) = lab.frrs.split_at_mut(NODES.len());
            let mut back = BTreeMap::new();
            let seen = observe(&router, &client, &refs, Duration::from_secs(40), || {
                std::thread::scope(|s| {
                    let ours = s.spawn(|| crash_frr(&mut a[0], None));
                    let theirs = s.spawn(|| crash_frr(&mut rest[0], conf));
                    back.insert(OURS, ours.join().unwrap());
                    back.insert(THEIRS, theirs.join().unwrap());
                });
            });
            let cell = |w: &str| {
                let v = &seen[w];
                let whole = match v.last_miss {
                    Some(d) => format!("whole after {} (FRR's daemons back after {})", show(Some(d + Duration::from_millis(100))), show(back.get(w).copied())),
                    None => "never missing".into(),
                };
                format!("{} of {} polls missed, {whole}; {} of {} connects failed", v.missed, v.polls, v.failed, v.connects)
            };
            eprintln!("FRR crash, {what}: {OURS}: {}; {THEIRS}: {}", cell(OURS), cell(THEIRS));
            (format!("FRR killed and started again, {what}"), cell(OURS), cell(THEIRS))
        };
        let failover = |lab: &mut MetalLbLab, table: &mut Vec<(String, String, String)>| -> Result<(), String> {
            let cut = link_cut(lab, &refs, &cluster_ip, Duration::from_secs(30))?;
            table.push(("link cut -> next hop gone at the router, BFD 250 ms x 3".into(), show(cut[OURS]), show(cut[THEIRS])));
            table.push(crash(lab, "BFD, no graceful restart"));
            settle(lab, &refs, "router bgp", true, "after the FRR restart")?;

            lab.apply(&bgp_peer(false, false)).unwrap();
            set_router_bfd(lab, false);
            // frr-composer drops BFD with the profile; frr-k8s's frr-reload.py has been seen to
            // leave `neighbor ROUTER bfd` behind: reported, not waited for (the router, which
            // no longer runs BFD, decides this failover by its hold time either way)
            settle(lab, &refs[..1], "neighbor 192.0.2.1 bfd", false, "BFD removed")?;
            settle(lab, &refs, "router bgp", true, "BFD removed")?;
            let kept: Vec<&str> =
                refs.iter().filter(|s| lab.frrs[s.node].running_config().is_ok_and(|c| c.contains("neighbor 192.0.2.1 bfd"))).map(|s| s.who).collect();
            let yes_no = |w: &str| if kept.contains(&w) { "yes (`neighbor 192.0.2.1 bfd` left)" } else { "no" }.to_string();
            table.push(("BFD profile removed from the BGPPeer: the node's FRR still runs BFD".into(), yes_no(OURS), yes_no(THEIRS)));
            let cut = link_cut(lab, &refs, &cluster_ip, Duration::from_secs(240))?;
            table.push(("link cut -> next hop gone at the router, no BFD (no timers set: FRR's hold time, 180 s)".into(), show(cut[OURS]), show(cut[THEIRS])));
            table.push(crash(lab, "no BFD, no graceful restart"));
            settle(lab, &refs, "router bgp", true, "after the FRR restart")?;

            lab.apply(&bgp_peer(false, true)).unwrap();
            settle(lab, &refs, "neighbor 192.0.2.1 graceful-restart", true, "graceful restart enabled")?;
            // takes effect when the sessions start again
            lab.router_frr.vtysh(&["clear bgp *"]).unwrap();
            std::thread::sleep(Duration::from_secs(2));
            settle(lab, &refs, "neighbor 192.0.2.1 graceful-restart", true, "sessions with graceful restart")?;
            table.push(crash(lab, "graceful restart, no BFD"));
            settle(lab, &refs, "router bgp", true, "after the FRR restart")?;

            lab.apply(&bgp_peer(true, true)).unwrap();
            set_router_bfd(lab, true);
            settle(lab, &refs, "neighbor 192.0.2.1 bfd", true, "BFD back")?;
            table.push(crash(lab, "graceful restart and BFD"));
            settle(lab, &refs, "router bgp", true, "after the FRR restart")?;

            // the router keeps a restarting node's routes on BFD down when told to read the
            // control-plane-independent bit (the node's bfdd restarts with its bgpd)
            lab.router_frr
                .vtysh(&["configure terminal", &format!("router bgp {ROUTER_ASN}"), "neighbor NODES bfd check-control-plane-failure", "end"])
                .unwrap();
            std::thread::sleep(Duration::from_secs(2));
            table.push(crash(lab, "graceful restart and BFD, the router with `bfd check-control-plane-failure`"));
            Ok(())
        };
        if let Err(e) = failover(&mut lab, &mut table) {
            eprintln!("{e}");
            table.push(("the failover runs stopped".into(), e.lines().next().unwrap_or_default().to_string(), String::new()));
        }
    }

    println!("\n| | frr-composer (n1) | frr-k8s v0.0.26 (n4) |\n|---|---|---|");
    for (what, a, b) in &table {
        println!("| {what} | {a} | {b} |");
    }
}
