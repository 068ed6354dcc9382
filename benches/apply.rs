//! Apply benchmark: frr-composer's minimal-diff apply against the anchor's path (frr-k8s
//! layout applied with frr-reload.py), side by side, on live FRR 10.3 and FRR 8.4.
//!
//! Load: MetalLB-like, one router (AS 64512), 10 neighbors (192.0.2.11-20, AS 64513) that all
//! advertise all P /32 prefixes (filtered mode), nothing received. Each side gets its own fresh
//! FRR in its own network namespace with only loopback: the neighbors never connect.
//!
//! Steps, wall clock: (i) initial load (1 run), (ii) add one /32 that sorts in the middle,
//! (iii) remove it again, (iv) no change, (v) `frr-composer apply` CLI end to end (process start
//! to verified running configuration) for an add-one step and a no-change step. After every
//! step both FRRs' running configurations are checked: `network` lines and, per neighbor, the
//! prefixes permitted by the lists its `-out` route-map matches must equal the intended set.
//!
//! Run (root, FRR from .ci/install-frr.sh):
//!   cargo bench --bench apply                                   # P=1000, 10.3 and 8.4, 3 reps
//!   cargo bench --bench apply -- --prefixes 100 --versions 10.3 --reps 3
//! or the environment: FRR_BENCH_PREFIXES, FRR_BENCH_VERSIONS (10.3,8.4), FRR_BENCH_REPS.
//! `--no-anchor` runs only frr-composer (quick checks); `-- --help` lists the options.

#[path = "../tests/lab/mod.rs"]
mod lab;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use frr_composer::frr::apply::{Applier, Report};
use lab::{Frr, FrrVersion, Netns};

const ROUTER_ASN: u32 = 64512;
const PEER_ASN: u32 = 64513;
const NEIGHBORS: usize = 10;
const HOSTNAME: &str = "bench";
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

// ------------------------------------------------------------------------------ options

/// Options (also from the environment); cargo's own `--bench` flag and test filters are
/// accepted and ignored.
#[derive(clap::Parser)]
struct Opts {
    /// Prefixes advertised to every neighbor.
    #[arg(long, short = 'p', env = "FRR_BENCH_PREFIXES", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    prefixes: usize,
    /// FRR versions, comma-separated (10.7, 10.3, 8.4).
    #[arg(long, env = "FRR_BENCH_VERSIONS", default_value = "10.3,8.4", value_delimiter = ',', value_parser = parse_version)]
    versions: Vec<FrrVersion>,
    /// Runs of each step (ii)-(iv).
    #[arg(long, env = "FRR_BENCH_REPS", default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    reps: usize,
    /// Only frr-composer, not frr-reload.py (quick checks).
    #[arg(long = "no-anchor", action = clap::ArgAction::SetFalse)]
    anchor: bool,
    /// Skip the reference load of the rendered frr.conf with one `vtysh -f`.
    #[arg(long = "no-reference", action = clap::ArgAction::SetFalse)]
    reference: bool,
    #[arg(long, hide = true)]
    bench: bool,
    #[arg(hide = true)]
    filters: Vec<String>,
}

fn parse_version(v: &str) -> Result<FrrVersion, String> {
    match v.trim() {
        "10.3" | "10" => Ok(FrrVersion::V10),
        "10.7" => Ok(FrrVersion::V10_7),
        "8.4" | "8" => Ok(FrrVersion::V8),
        o => Err(format!("unknown FRR version {o:?} (10.7, 10.3 or 8.4)")),
    }
}

// ------------------------------------------------------------------------------ load

fn neighbor(j: usize) -> String {
    format!("192.0.2.{}", 11 + j)
}

/// The base service /32s: even addresses from 10.200.0.0.
fn base_prefixes(p: usize) -> BTreeSet<Ipv4Addr> {
    let base = u32::from(Ipv4Addr::new(10, 200, 0, 0));
    (0..p).map(|i| Ipv4Addr::from(base + 2 * i as u32)).collect()
}

/// Extra services: odd addresses that sort (as strings, the anchor's order) into the middle
/// 40-60% of the base list, so that the anchor's counter renumbering shifts about half the list.
fn extra_prefixes(base: &BTreeSet<Ipv4Addr>, count: usize) -> Vec<Ipv4Addr> {
    let mut sorted = cidrs(base);
    sorted.sort();
    let p = sorted.len();
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for strict in [true, false] {
        for i in (p / 2..p).chain(0..p / 2) {
            if out.len() == count {
                return out;
            }
            let a: Ipv4Addr = sorted[i].trim_end_matches("/32").parse().expect("address");
            let c = Ipv4Addr::from(u32::from(a) + 1);
            let pos = sorted.partition_point(|e| *e < format!("{c}/32"));
            if base.contains(&c) || out.contains(&c) || (strict && !(pos * 10 >= p * 4 && pos * 10 <= p * 6)) {
                continue;
            }
            out.push(c);
        }
    }
    out
}

fn cidrs(set: &BTreeSet<Ipv4Addr>) -> Vec<String> {
    set.iter().map(|a| format!("{a}/32")).collect()
}

/// One FRRConfiguration: router AS 64512 originating every prefix, 10 neighbors advertising all
/// of them (filtered mode), receiving nothing.
fn yaml(set: &BTreeSet<Ipv4Addr>) -> String {
    let list: String = cidrs(set).iter().map(|c| format!("        - {c}\n")).collect();
    let mut y = String::from(
        "apiVersion: frrk8s.metallb.io/v1beta1\nkind: FRRConfiguration\nmetadata:\n  name: metallb-bench\n  namespace: metallb-system\nspec:\n  bgp:\n    routers:\n",
    );
    let _ = write!(y, "    - asn: {ROUTER_ASN}\n      prefixes:\n");
    y.push_str(&list.replace("        - ", "      - "));
    y.push_str("      neighbors:\n");
    for j in 0..NEIGHBORS {
        let _ = write!(
            y,
            "      - address: {}\n        asn: {PEER_ASN}\n        toAdvertise:\n          allowed:\n            mode: filtered\n            prefixes:\n",
            neighbor(j)
        );
        y.push_str(&list.replace("        - ", "            - "));
        y.push_str("        toReceive:\n          allowed:\n            mode: filtered\n");
    }
    y
}

/// The anchor's frr.conf for the same content (anchor spec §4.3-§4.9, layout of the §4.14
/// goldens): per-neighbor `<peer>-allowed-ipv4` lists with counter seq numbers 1..N over the
/// sorted prefixes (Go string order), route-maps `<peer>-out` 1,2 and `<peer>-in` 3,4,
/// `<peer>-inpl-ipv4` deny-any lists, then the router with `network` statements.
fn anchor_conf(set: &BTreeSet<Ipv4Addr>) -> String {
    let mut sorted = cidrs(set);
    sorted.sort(); // frr-k8s sorts the prefixes as strings
    let mut c =
        format!("log stdout informational\nlog timestamp precision 3\nhostname {HOSTNAME}\nip nht resolve-via-default\nipv6 nht resolve-via-default\n\n");
    for j in 0..NEIGHBORS {
        let id = neighbor(j);
        for (i, p) in sorted.iter().enumerate() {
            let _ = writeln!(c, "ip prefix-list {id}-allowed-ipv4 seq {} permit {p}", i + 1);
        }
        let _ = writeln!(c, "ipv6 prefix-list {id}-allowed-ipv6 seq 1 deny any");
        let _ = write!(
            c,
            "route-map {id}-out permit 1\n  match ip address prefix-list {id}-allowed-ipv4\n\
             route-map {id}-out permit 2\n  match ipv6 address prefix-list {id}-allowed-ipv6\n\n\
             ip prefix-list {id}-inpl-ipv4 seq 1 deny any\n\
             ipv6 prefix-list {id}-inpl-ipv4 seq 2 deny any\n\
             route-map {id}-in permit 3\n  match ip address prefix-list {id}-inpl-ipv4\n\
             route-map {id}-in permit 4\n  match ipv6 address prefix-list {id}-inpl-ipv4\n\n"
        );
    }
    let _ = write!(
        c,
        "router bgp {ROUTER_ASN}\n  no bgp ebgp-requires-policy\n  no bgp network import-check\n  no bgp default ipv4-unicast\n  bgp graceful-restart preserve-fw-state\n\n"
    );
    for j in 0..NEIGHBORS {
        let _ = writeln!(c, "  neighbor {} remote-as {PEER_ASN}", neighbor(j));
    }
    for j in 0..NEIGHBORS {
        let id = neighbor(j);
        let _ = write!(
            c,
            "  address-family ipv4 unicast\n    neighbor {id} activate\n    neighbor {id} route-map {id}-in in\n    neighbor {id} route-map {id}-out out\n  exit-address-family\n"
        );
    }
    c.push_str("  address-family ipv4 unicast\n");
    for p in &sorted {
        let _ = writeln!(c, "    network {p}");
    }
    c.push_str("  exit-address-family\n");
    c
}

// ------------------------------------------------------------------------------ verification

/// Checks that FRR runs exactly `set`: the `network` statements of the IPv4 unicast family,
/// and for every neighbor the prefixes permitted by the IPv4 lists its `-out` route-map matches
/// (no duplicates, nothing else). Returns the number of IPv4 prefix-list entries.
fn verify(frr: &Frr, set: &BTreeSet<Ipv4Addr>, what: &str) -> Result<usize> {
    let running = frr.running_config()?;
    let want: BTreeSet<String> = cidrs(set).into_iter().collect();
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rm_lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out_map: BTreeMap<String, String> = BTreeMap::new();
    let mut networks: Vec<String> = Vec::new();
    let mut entries = 0;
    let (mut rm, mut af) = (None::<String>, None::<String>);
    for raw in running.lines() {
        let t: Vec<&str> = raw.split_whitespace().collect();
        if !raw.starts_with(' ') {
            rm = None;
            af = None;
        }
        match t.as_slice() {
            ["ip", "prefix-list", name, "seq", _, action, p, ..] => {
                entries += 1;
                if *action == "permit" {
                    lists.entry(name.to_string()).or_default().push(p.to_string());
                } else {
                    lists.entry(name.to_string()).or_default();
                }
            }
            ["route-map", name, "permit", _] => rm = Some(name.to_string()),
            ["match", "ip", "address", "prefix-list", l] => {
                if let Some(r) = &rm {
                    rm_lists.entry(r.clone()).or_default().push(l.to_string());
                }
            }
            ["address-family", fam, "unicast"] => af = Some(fam.to_string()),
            ["exit-address-family"] => af = None,
            ["neighbor", n, "route-map", m, "out"] if af.as_deref() == Some("ipv4") => {
                out_map.insert(n.to_string(), m.to_string());
            }
            ["network", p] if af.as_deref() == Some("ipv4") => networks.push(p.to_string()),
            _ => {}
        }
    }
    let fail = |msg: String| -> Result<usize> { bail!("{what}: FRR {} does not run the intended prefixes: {msg}", frr.version().label()) };
    let nets: BTreeSet<String> = networks.iter().cloned().collect();
    if nets != want || networks.len() != want.len() {
        return fail(format!(
            "{} network lines ({} distinct), want {}; missing {:?}, extra {:?}",
            networks.len(),
            nets.len(),
            want.len(),
            want.difference(&nets).take(5).collect::<Vec<_>>(),
            nets.difference(&want).take(5).collect::<Vec<_>>()
        ));
    }
    for j in 0..NEIGHBORS {
        let n = neighbor(j);
        let Some(m) = out_map.get(&n) else { return fail(format!("no route-map out for {n}")) };
        let got: Vec<String> = rm_lists.get(m).into_iter().flatten().flat_map(|l| lists.get(l).cloned().unwrap_or_default()).collect();
        let gs: BTreeSet<String> = got.iter().cloned().collect();
        if gs != want || got.len() != want.len() {
            return fail(format!(
                "{n} (route-map {m}) permits {} entries ({} distinct), want {}; missing {:?}, extra {:?}",
                got.len(),
                gs.len(),
                want.len(),
                want.difference(&gs).take(5).collect::<Vec<_>>(),
                gs.difference(&want).take(5).collect::<Vec<_>>()
            ));
        }
    }
    Ok(entries)
}

// ------------------------------------------------------------------------------ the two sides

/// Ours through the library: YAML text -> parse, compose, render -> minimal-diff apply.
fn ours(applier: &mut Applier, yaml: &str) -> Result<(Duration, Report, String)> {
    let t = Instant::now();
    let (objects, errors) = frr_composer::input::parse_documents(yaml, "bench.yaml");
    if !errors.is_empty() {
        bail!("YAML errors: {errors:?}");
    }
    let args = frr_composer::offline::NodeArgs { hostname: Some(HOSTNAME.into()), ..Default::default() };
    let mut notices = Vec::new();
    let c = frr_composer::offline::compose_objects(&args, &objects, &mut notices).map_err(|e| anyhow!("compose: {e}"))?;
    let text = frr_composer::render::render(&c.model).map_err(|e| anyhow!("render: {e}"))?;
    let report = applier.apply(&text).map_err(|e| anyhow!("frr-composer apply failed: {e}"))?;
    Ok((t.elapsed(), report, text))
}

fn bin() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_frr-composer") {
        return PathBuf::from(p);
    }
    if let Ok(p) = std::env::var("CARGO_BIN_EXE_frr-composer") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/frr-composer")
}

/// Ours through the CLI, end to end: `frr-composer apply FILE --state-file S ...` until it
/// exits (it exits 0 only after reading back and verifying the running configuration).
fn ours_cli(frr: &Frr, file: &std::path::Path, state: &std::path::Path) -> Result<(Duration, String)> {
    let mut c = Command::new(bin());
    c.env_clear().env("PATH", PATH).env("LC_ALL", "C");
    c.arg("apply").arg(file).args(["--hostname", HOSTNAME]).args(frr.cli_args()).arg("--state-file").arg(state);
    let t = Instant::now();
    let out = c.output().with_context(|| format!("run {}", bin().display()))?;
    let d = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("frr-composer apply (CLI) failed ({}):\n{}{}", out.status, tail(&stdout, 20), String::from_utf8_lossy(&out.stderr));
    }
    Ok((d, stdout))
}

/// The anchor's path: write the file, `frr-reload.py --reload --stdout` against the instance
/// (for 10.3 inside the chroot). Returns the wall time of the frr-reload.py process.
fn anchor(frr: &Frr, conf: &str, n: usize) -> Result<Duration> {
    let name = frr.name().to_string();
    let inner = PathBuf::from("/tmp").join(&name); // the instance directory, as FRR sees it
    let file = inner.join(format!("anchor-{n}.conf"));
    std::fs::write(frr.dir().join(format!("anchor-{n}.conf")), conf)?;
    let mut c = match frr.version() {
        FrrVersion::V8 => Command::new("python3"),
        FrrVersion::V10 | FrrVersion::V10_7 => {
            let mut c = Command::new("chroot");
            c.arg(frr.version().root()).arg("python3");
            c
        }
    };
    c.env_clear().env("PATH", PATH).env("LC_ALL", "C");
    c.args(["/usr/lib/frr/frr-reload.py", "--reload", "--stdout", "-N", &name, "--bindir", "/usr/bin"])
        .arg("--confdir")
        .arg(inner.join("etc"))
        .arg("--rundir")
        .arg(&inner)
        .arg(&file);
    let t = Instant::now();
    let out = c.output().context("run frr-reload.py")?;
    let d = t.elapsed();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("frr-reload.py failed ({}):\n{}", out.status, tail(&text, 30));
    }
    if std::env::var_os("FRR_BENCH_DEBUG").is_some() {
        eprintln!("--- frr-reload.py ({:.2?}):\n{}", d, tail(&text, 15));
    }
    let _ = std::fs::remove_file(frr.dir().join(format!("anchor-{n}.conf")));
    Ok(d)
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------------------------ table

#[derive(Default)]
struct Row {
    step: String,
    version: &'static str,
    ours: Vec<Duration>,
    anchor: Vec<Duration>,
    note: String,
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn fmt(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d < Duration::from_secs(1) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

fn print_table(rows: &[Row]) {
    println!("\n| step | FRR | ours | anchor (frr-reload.py) | speedup | runs | notes |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let (o, a) = (median(&r.ours), median(&r.anchor));
        let speed = match (o, a) {
            (Some(o), Some(a)) if o.as_nanos() > 0 => {
                let x = a.as_secs_f64() / o.as_secs_f64();
                if x < 10.0 {
                    format!("{x:.1}x")
                } else {
                    format!("{x:.0}x")
                }
            }
            (Some(o), Some(_)) if o.as_nanos() == 0 => "inf".into(),
            _ => "-".into(),
        };
        println!("| {} | {} | {} | {} | {} | {} | {} |", r.step, r.version, fmt(o), fmt(a), speed, r.ours.len().max(r.anchor.len()), r.note);
    }
}

// ------------------------------------------------------------------------------ run

fn run_version(v: FrrVersion, o: &Opts, rows: &mut Vec<Row>) -> Result<()> {
    let label = v.label();
    let p = o.prefixes;
    eprintln!("== FRR {label}: {NEIGHBORS} neighbors x {p} prefixes, {} reps", o.reps);
    // namespaces first: dropped after the daemons in them
    let ns_ours = Netns::new()?;
    let ns_anchor = Netns::new()?;
    let tmp = lab::TempDir::new()?;
    let frr_ours = Frr::start(v, &ns_ours)?;
    let frr_anchor = if o.anchor { Some(Frr::start(v, &ns_anchor)?) } else { None };
    let mut applier = Applier::new(frr_ours.location());
    let mut n = 0usize; // anchor file counter
    let base = base_prefixes(p);
    let extras = extra_prefixes(&base, o.reps + 1);
    let mut row = |step: &str, ours: Vec<Duration>, anchor: Vec<Duration>, note: String| {
        rows.push(Row { step: step.into(), version: label, ours, anchor, note });
    };
    let check = |set: &BTreeSet<Ipv4Addr>, what: &str| -> Result<()> {
        let e1 = verify(&frr_ours, set, what).with_context(|| frr_ours.logs())?;
        let mut msg = format!("  verified {what}: ours {e1} v4 list entries");
        if let Some(fa) = &frr_anchor {
            let e2 = verify(fa, set, what)?;
            let _ = write!(msg, ", anchor {e2}");
        }
        eprintln!("{msg}");
        Ok(())
    };

    // (i) initial load
    let (d, r, text) = ours(&mut applier, &yaml(&base))?;
    eprintln!(
        "  ours initial: {d:.2?} ({} commands; check {:.2?}, apply {:.2?}, verify {:.2?}; {} lines rendered)",
        r.commands,
        r.check,
        r.apply,
        r.verify,
        text.lines().count()
    );
    let mut a = Vec::new();
    if let Some(fa) = &frr_anchor {
        let conf = anchor_conf(&base);
        let da = anchor(fa, &conf, n)?;
        n += 1;
        eprintln!("  anchor initial: {da:.2?} ({} lines)", conf.lines().count());
        a.push(da);
    }
    check(&base, "(i) initial")?;
    row("(i) initial load", vec![d], a, format!("ours {} cmds", r.commands));
    if o.reference {
        // Reference, not a frr-composer figure: the same rendered frr.conf loaded with one
        // `vtysh -f FILE` into a third fresh FRR (how frr-reload.py sends its changes).
        let ns_ref = Netns::new()?;
        let frr_ref = Frr::start(v, &ns_ref)?;
        let t = Instant::now();
        frr_ref.load_config_file(&text)?;
        let dr = t.elapsed();
        let e = verify(&frr_ref, &base, "(i) reference vtysh -f")?;
        eprintln!("  reference: ours' frr.conf via vtysh -f: {dr:.2?} ({e} v4 list entries verified)");
        row("(i) ref: ours' frr.conf via `vtysh -f`", vec![dr], vec![], "reference only: the same text as one file instead of stdin lines".into());
        drop(frr_ref);
        drop(ns_ref);
    }

    // (ii) add one middle /32, (iii) remove it again
    let (mut add_o, mut add_a, mut rm_o, mut rm_a) = (vec![], vec![], vec![], vec![]);
    let (mut add_cmds, mut rm_cmds, mut shifted) = (0, 0, 0);
    for &x in extras.iter().take(o.reps) {
        let mut with = base.clone();
        with.insert(x);
        let (d, r, _) = ours(&mut applier, &yaml(&with))?;
        eprintln!("  ours add: {d:.2?} ({} commands; check {:.2?}, apply {:.2?}, verify {:.2?})", r.commands, r.check, r.apply, r.verify);
        add_o.push(d);
        add_cmds = r.commands;
        if let Some(fa) = &frr_anchor {
            let (old, new) = (anchor_conf(&base), anchor_conf(&with));
            let old_l: BTreeSet<&str> = old.lines().collect();
            shifted = new.lines().filter(|l| !old_l.contains(l)).count();
            add_a.push(anchor(fa, &new, n)?);
            n += 1;
        }
        check(&with, &format!("(ii) add {x}/32"))?;
        let (d, r, _) = ours(&mut applier, &yaml(&base))?;
        eprintln!("  ours remove: {d:.2?} ({} commands; check {:.2?}, apply {:.2?}, verify {:.2?})", r.commands, r.check, r.apply, r.verify);
        rm_o.push(d);
        rm_cmds = r.commands;
        if let Some(fa) = &frr_anchor {
            rm_a.push(anchor(fa, &anchor_conf(&base), n)?);
            n += 1;
        }
        check(&base, &format!("(iii) remove {x}/32"))?;
    }
    let mid = {
        let x = format!("{}/32", extras[0]);
        let mut s: Vec<String> = cidrs(&base);
        s.push(x.clone());
        s.sort();
        s.iter().position(|e| *e == x).unwrap_or(0) + 1
    };
    let anchor_note = if o.anchor { format!("; anchor: new entry at seq {mid}/{}, {shifted} changed lines", p + 1) } else { String::new() };
    row("(ii) add one /32", add_o, add_a, format!("ours {add_cmds} cmds{anchor_note}"));
    row("(iii) remove one /32", rm_o, rm_a, format!("ours {rm_cmds} cmds"));

    // (iv) no change
    let (mut nc_o, mut nc_a) = (vec![], vec![]);
    let y = yaml(&base);
    for _ in 0..o.reps {
        let (d, r, _) = ours(&mut applier, &y)?;
        if r.commands != 0 || r.read_running {
            bail!("(iv) no change: frr-composer sent {} commands / read the running config ({})", r.commands, r.read_running);
        }
        nc_o.push(d);
        if let Some(fa) = &frr_anchor {
            nc_a.push(anchor(fa, &anchor_conf(&base), n)?);
            n += 1;
        }
        check(&base, "(iv) no change")?;
    }
    row("(iv) no change", nc_o, nc_a, "ours: 0 FRR commands, running config not read (asserted)".into());

    // (v) CLI end to end, with the state file of the verified state above
    let state = tmp.path().join("state.json");
    let st = applier.state.as_ref().ok_or_else(|| anyhow!("no verified state"))?;
    std::fs::write(&state, serde_json::to_string(st)?)?;
    let x = extras[o.reps];
    let mut with = base.clone();
    with.insert(x);
    let file = tmp.write("services.yaml", &yaml(&with))?;
    let (d, out) = ours_cli(&frr_ours, &file, &state)?;
    if out.contains("computed from FRR's running configuration") {
        bail!("(v) the CLI did not use the state file:\n{}", tail(&out, 5));
    }
    let mut a = vec![];
    if let Some(fa) = &frr_anchor {
        a.push(anchor(fa, &anchor_conf(&with), n)?);
        n += 1;
    }
    check(&with, "(v) CLI add one")?;
    row("(v) CLI e2e add one", vec![d], a, format!("ours: `frr-composer apply` process, {}", tail(&out, 1).trim_start_matches("frr-composer: ")));
    let (d, out) = ours_cli(&frr_ours, &file, &state)?;
    if !out.contains("no FRR command") {
        bail!("(v) CLI no change sent FRR commands:\n{}", tail(&out, 5));
    }
    let mut a = vec![];
    if let Some(fa) = &frr_anchor {
        a.push(anchor(fa, &anchor_conf(&with), n)?);
    }
    check(&with, "(v) CLI no change")?;
    row("(v) CLI e2e no change", vec![d], a, "ours: no FRR command (asserted)".into());
    Ok(())
}

fn main() {
    let o = <Opts as clap::Parser>::parse();
    let reqs: Vec<lab::Req> = o.versions.iter().map(|v| lab::Req::Frr(*v)).collect();
    if let Some(why) = lab::unavailable(&reqs) {
        eprintln!("SKIPPED: live lab cannot run: {why}");
        return;
    }
    let mut rows = Vec::new();
    let mut failed = false;
    for v in &o.versions {
        if let Err(e) = run_version(*v, &o, &mut rows) {
            eprintln!("FRR {}: FAILED: {e:#}", v.label());
            failed = true;
        }
    }
    println!(
        "\n{NEIGHBORS} neighbors x {} /32 prefixes (all advertised to all, nothing received); median of {} runs for (ii)-(iv), 1 run for (i) and (v)",
        o.prefixes, o.reps
    );
    print_table(&rows);
    if failed {
        std::process::exit(1);
    }
}
