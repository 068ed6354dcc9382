//! `frr-composer lab`: the merged configuration against real BGP peers on this machine.
//!
//! `lab run` builds the lab, waits for convergence, prints what every peer received and what
//! the node accepted and installed, checks `--expect`, and removes everything (also on errors,
//! SIGINT and SIGTERM). `lab up` keeps a lab running in the background (a `lab serve` process)
//! that re-applies changed files; `lab status` prints its latest report; `lab down` stops it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::lab::expect::{self, Expect};
use crate::lab::topology::{Announce, Lab, LabReport, Options, PeerKind, Route};

#[derive(clap::Args, Clone, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(clap::Subcommand, Clone, Debug)]
pub enum LabCommand {
    /// Build the lab, wait for convergence, report, check --expect, remove the lab.
    Run(RunArgs),
    /// Start a lab that keeps running in the background and re-applies changed files.
    Up(UpArgs),
    /// The latest report of a running lab (`lab up`).
    Status(StatusArgs),
    /// Stop a running lab and remove everything it made.
    Down(NameArgs),
    /// The background process of `lab up` (not for direct use).
    #[command(hide = true)]
    Serve(UpArgs),
}

/// What the lab is built from.
#[derive(clap::Args, Clone, Debug)]
pub struct SetupArgs {
    /// YAML files or folders, as for `render`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub node: crate::offline::NodeArgs,
    /// FRR is installed under this root (default `/`: Debian's package in /usr/lib/frr).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub frr_root: PathBuf,
    /// The program playing the peers: gobgp (default) or frr (for BFD).
    #[arg(long, value_enum, default_value_t = PeerKind::Gobgp)]
    pub peers: PeerKind,
    /// Make peers announce a route to the node: PREFIX[@NEIGHBOR][=COMMUNITY,...] (communities
    /// as in the API: 65000:1, large:1:2:3); without @NEIGHBOR every peer announces it.
    #[arg(long, value_name = "PREFIX[@PEER][=COMM,...]")]
    pub announce: Vec<Announce>,
    /// Seconds to wait for every session and for the routes to settle.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// A YAML file of what each peer must receive and the node must accept; exit 1 with the
    /// differences when the lab disagrees.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug)]
pub struct NameArgs {
    /// The lab's name.
    #[arg(long, default_value = "default")]
    pub name: String,
}

#[derive(clap::Args, Clone, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub name: NameArgs,
}

#[derive(clap::Args, Clone, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub name: NameArgs,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Runs `lab ...`; returns the exit code: 0 as expected, 1 the lab disagrees with --expect or
/// did not converge, 2 invalid input or the lab cannot run here.
pub fn main(args: &LabArgs) -> i32 {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match &args.command {
        LabCommand::Run(a) => run(a, &mut out, &mut err),
        LabCommand::Up(a) => up(a, &mut out, &mut err),
        LabCommand::Status(a) => status(a, &mut out, &mut err),
        LabCommand::Down(a) => down(a, &mut out, &mut err),
        LabCommand::Serve(a) => serve(a, &mut err),
    }
}

/// On SIGINT or SIGTERM: `also()`, remove everything the lab made, exit 130 or 143.
fn cleanup_on_signals(also: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    crate::signals::exit_on_signal(move || {
        eprintln!("frr-composer lab: interrupted; removing the lab");
        also();
        crate::lab::cleanup_all();
    })
}

/// How long sessions must have been up, and the routers' tables unchanged, for convergence.
const SETTLE: Duration = Duration::from_millis(1500);
const QUIET: Duration = Duration::from_millis(500);

fn options(s: &SetupArgs) -> Options {
    Options { frr_root: s.frr_root.clone(), peers: s.peers, announce: s.announce.clone() }
}

/// Whether the machine can run the lab; prints what is missing.
fn ready(s: &SetupArgs, err: &mut dyn Write) -> bool {
    let missing = crate::lab::missing(&s.frr_root, s.peers == PeerKind::Gobgp);
    for m in &missing {
        let _ = writeln!(err, "error: {m}");
    }
    if !missing.is_empty() {
        let _ = writeln!(err, "frr-composer lab: cannot run here ({} thing(s) missing)", missing.len());
    }
    missing.is_empty()
}

fn load_expect(path: &Path, err: &mut dyn Write) -> Option<Expect> {
    let parsed = crate::files::read_regular(path, expect::MAX_EXPECT_FILE)
        .map_err(|e| format!("{}: {e}", path.display()))
        .and_then(|t| expect::parse(&t, &path.display().to_string()));
    match parsed {
        Ok(e) => Some(e),
        Err(e) => {
            let _ = writeln!(err, "error: --expect {e}");
            None
        }
    }
}

fn build(s: &SetupArgs, err: &mut dyn Write) -> Result<Lab, i32> {
    let Some((model, text)) = crate::offline::desired(&s.inputs, &s.node, err) else { return Err(2) };
    let mut progress = |m: &str| {
        let _ = writeln!(std::io::stderr(), "lab: {m}");
    };
    Lab::build(&model, &text, &options(s), &mut progress).map_err(|e| {
        let _ = writeln!(err, "error: {}", crate::frr::redact(&format!("{e:#}")));
        2
    })
}

fn run(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let started = Instant::now();
    let expect = match &args.expect {
        Some(p) => match load_expect(p, err) {
            Some(e) => Some(e),
            None => return 2,
        },
        None => None,
    };
    if !ready(&args.setup, err) {
        return 2;
    }
    if let Err(e) = cleanup_on_signals(|| {}) {
        let _ = writeln!(err, "error: cannot handle signals: {e}");
        return 2;
    }
    let lab = match build(&args.setup, err) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let _ = writeln!(err, "lab: waiting for convergence (at most {} s)", args.setup.timeout);
    let mut report = match lab.converge(Duration::from_secs(args.setup.timeout), SETTLE, QUIET) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: cannot read the lab's state: {e:#}");
            return 2;
        }
    };
    report.seconds = started.elapsed().as_secs_f64();
    print_report(&report, args.output, out);
    drop(lab);
    let mut code = 0;
    if !report.converged {
        let _ = writeln!(err, "frr-composer lab: not converged within {} s (sessions not established or routes still changing)", args.setup.timeout);
        code = 1;
    }
    if let Some(e) = &expect {
        let diffs = expect::differences(e, &report);
        if diffs.is_empty() {
            let _ = writeln!(err, "frr-composer lab: the lab agrees with {}", args.expect.as_deref().unwrap_or(Path::new("")).display());
        } else {
            let _ = writeln!(err, "frr-composer lab: the lab differs from {}:", args.expect.as_deref().unwrap_or(Path::new("")).display());
            for d in &diffs {
                let _ = writeln!(err, "  {d}");
            }
            code = 1;
        }
    }
    code
}

fn route_line(r: &Route) -> String {
    let mut s = r.prefix.clone();
    if let Some(nh) = &r.next_hop {
        s.push_str(&format!(" via {nh}"));
    }
    if !r.as_path.is_empty() {
        s.push_str(&format!(" path {}", r.as_path.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")));
    }
    if !r.communities.is_empty() {
        s.push_str(&format!(" communities {}", r.communities.join(",")));
    }
    if !r.large_communities.is_empty() {
        s.push_str(&format!(" large-communities {}", r.large_communities.join(",")));
    }
    if let Some(lp) = r.local_pref {
        s.push_str(&format!(" local-pref {lp}"));
    }
    s
}

/// The report as text (for people) or JSON.
pub fn report_text(r: &LabReport) -> String {
    let mut s = format!(
        "lab: node FRR {} in namespace {} (vtysh -N {}), {} after {:.1} s\n",
        r.frr_version,
        r.node_namespace,
        r.node_pathspace,
        if r.converged { "converged" } else { "NOT converged" },
        r.seconds
    );
    for p in &r.peers {
        s.push_str(&format!(
            "\nneighbor {}: {} (peer: {}, AS {}, namespace {})\n",
            p.neighbor,
            p.state,
            match p.peer {
                PeerKind::Gobgp => "gobgpd",
                PeerKind::Frr => "FRR",
            },
            p.peer_asn,
            p.namespace
        ));
        if let Some(b) = &p.bfd {
            s.push_str(&format!("  BFD: {b}\n"));
        }
        let mut list = |title: &str, lines: Vec<String>| {
            s.push_str(&format!("  {title}:{}\n", if lines.is_empty() { " nothing" } else { "" }));
            for l in lines {
                s.push_str(&format!("    {l}\n"));
            }
        };
        list("peer received", p.received.iter().map(route_line).collect());
        list("node accepted", p.accepted.iter().map(route_line).collect());
        list("node installed in its kernel", p.installed.clone());
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

fn print_report(r: &LabReport, output: Output, out: &mut dyn Write) {
    let text = match output {
        Output::Text => report_text(r),
        Output::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
    };
    let _ = out.write_all(text.as_bytes());
}

// ------------------------------------------------------------------------------ up/status/down

/// Where a running lab keeps its state: `/run/frr-composer/lab/NAME`.
fn lab_dir(name: &str) -> PathBuf {
    PathBuf::from("/run/frr-composer/lab").join(name)
}

fn valid_name(name: &str, err: &mut dyn Write) -> bool {
    let ok = !name.is_empty() && name.len() <= 40 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        let _ = writeln!(err, "error: --name {name:?}: letters, digits, - and _ only (at most 40)");
    }
    ok
}

/// The pid of a lab's `lab serve` process, when it runs.
fn server_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("pid")).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    (cmdline.contains(" lab serve ") && crate::lab::pid_alive(pid)).then_some(pid)
}

fn up(args: &UpArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if !valid_name(&args.name.name, err) || !ready(&args.setup, err) {
        return 2;
    }
    let dir = lab_dir(&args.name.name);
    if let Some(pid) = server_pid(&dir) {
        let _ = writeln!(err, "error: lab {:?} already runs (pid {pid}); `frr-composer lab down --name {}` first", args.name.name, args.name.name);
        return 2;
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let _ = writeln!(err, "error: cannot create {}: {e}", dir.display());
        return 2;
    }
    // the same arguments, to `lab serve`, in a process of its own
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "up") {
        argv[i] = "serve".into();
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(err, "error: cannot find this program: {e}");
            return 2;
        }
    };
    let log = match std::fs::File::create(dir.join("log")) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    use std::os::unix::process::CommandExt;
    let spawned = std::process::Command::new(exe)
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("file handles clone"))
        .stderr(log)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the lab: {e}");
            return 2;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.setup.timeout + 30);
    loop {
        if dir.join("report.txt").is_file() {
            let _ = out.write_all(std::fs::read_to_string(dir.join("report.txt")).unwrap_or_default().as_bytes());
            let _ = writeln!(out, "\nlab {:?} runs (pid {}); `frr-composer lab status|down --name {}`", args.name.name, child.id(), args.name.name);
            return 0;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let _ = writeln!(err, "error: the lab stopped ({st}):\n{}", std::fs::read_to_string(dir.join("log")).unwrap_or_default());
            let _ = std::fs::remove_dir_all(&dir);
            return 2;
        }
        if Instant::now() > deadline {
            let _ = writeln!(err, "error: the lab did not report within {} s; see {}", args.setup.timeout + 30, dir.join("log").display());
            return 2;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_atomic(path: &Path, text: &str) {
    let _ = crate::frr::apply::persist(path, text);
}

fn serve(args: &UpArgs, err: &mut dyn Write) -> i32 {
    let dir = lab_dir(&args.name.name);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("pid"), std::process::id().to_string());
    let cleanup_dir = dir.clone();
    if let Err(e) = cleanup_on_signals(move || {
        let _ = std::fs::remove_dir_all(&cleanup_dir);
    }) {
        let _ = writeln!(err, "error: cannot handle signals: {e}");
        return 2;
    }
    let mut lab = match build(&args.setup, err) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let publish = |lab: &Lab, converged: Option<LabReport>| {
        let r = match converged {
            Some(r) => Ok(r),
            None => lab.report(),
        };
        if let Ok(mut r) = r {
            if !r.converged {
                r.converged = r.peers.iter().all(|p| p.state == "Established");
            }
            write_atomic(&dir.join("report.json"), &(serde_json::to_string_pretty(&r).unwrap_or_default() + "\n"));
            let mut text = report_text(&r);
            for (nb, ns, port) in lab.gobgp_ports() {
                text.push_str(&format!("peer {nb}: ip netns exec {ns} gobgp -p {port} neighbor\n"));
            }
            text.push_str(&format!(
                "node: vtysh -N {}{}\n",
                lab.node().name(),
                if args.setup.frr_root != Path::new("/") { format!(" (in chroot {})", args.setup.frr_root.display()) } else { String::new() }
            ));
            write_atomic(&dir.join("report.txt"), &text);
        }
    };
    let first = lab.converge(Duration::from_secs(args.setup.timeout), SETTLE, QUIET).ok();
    publish(&lab, first);
    let mut stamp = crate::offline::inputs_stamp(&args.setup.inputs);
    let mut last = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = crate::offline::inputs_stamp(&args.setup.inputs);
        if now != stamp {
            stamp = now;
            let _ = writeln!(err, "lab: inputs changed; re-applying");
            if let Some((_, text)) = crate::offline::desired(&args.setup.inputs, &args.setup.node, err) {
                match lab.apply(&text) {
                    Ok(r) => {
                        let _ = writeln!(err, "lab: applied {} change(s)", r.commands);
                        let r = lab.converge(Duration::from_secs(args.setup.timeout), SETTLE, QUIET).ok();
                        publish(&lab, r);
                        last = Instant::now();
                    }
                    Err(e) => {
                        let _ = writeln!(err, "lab: error: {e:#}");
                    }
                }
            }
        } else if last.elapsed() >= Duration::from_secs(2) {
            publish(&lab, None);
            last = Instant::now();
        }
    }
}

fn status(args: &StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if !valid_name(&args.name.name, err) {
        return 2;
    }
    let dir = lab_dir(&args.name.name);
    let Some(pid) = server_pid(&dir) else {
        let _ = writeln!(err, "frr-composer lab: no lab {:?} runs", args.name.name);
        return 1;
    };
    let file = match args.output {
        Output::Text => "report.txt",
        Output::Json => "report.json",
    };
    match std::fs::read_to_string(dir.join(file)) {
        Ok(t) => {
            let _ = out.write_all(t.as_bytes());
            0
        }
        Err(_) => {
            let _ = writeln!(err, "frr-composer lab: lab {:?} (pid {pid}) is still starting", args.name.name);
            1
        }
    }
}

fn down(args: &NameArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if !valid_name(&args.name, err) {
        return 2;
    }
    let dir = lab_dir(&args.name);
    // also what a `lab run` or `lab up` ended by SIGKILL left: its namespaces and daemons, and
    // folders that may hold a BGP password
    let (namespaces, folders) = if crate::lab::is_root() { crate::lab::remove_stale() } else { (0, 0) };
    if namespaces + folders > 0 {
        let _ = writeln!(out, "removed what stopped labs left: {namespaces} namespaces (and the daemons in them), {folders} folders");
    }
    let Some(pid) = server_pid(&dir) else {
        let _ = std::fs::remove_dir_all(&dir);
        if namespaces + folders > 0 {
            return 0;
        }
        let _ = writeln!(err, "frr-composer lab: no lab {:?} runs", args.name);
        return 1;
    };
    let _ = crate::lab::command("kill").args(["-s", "TERM", &pid.to_string()]).status();
    if crate::lab::wait_until(Duration::from_secs(20), || !crate::lab::pid_alive(pid)) {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = writeln!(out, "lab {:?} stopped and removed", args.name);
        0
    } else {
        let _ = writeln!(err, "error: lab {:?} (pid {pid}) did not stop within 20 s", args.name);
        1
    }
}
