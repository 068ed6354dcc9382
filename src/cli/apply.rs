//! `frr-composer apply`: merge, render and apply to the local FRR; `--watch` keeps it there.
//! `frr-composer status`: BGP sessions and BFD peers.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::core::error::printable;
use crate::core::Model;
use crate::frr::apply::{Applied, Applier, ApplyError, Report};
use crate::frr::keeper::{Check, Keeper, Reason};
use crate::frr::vtysh::Rejected;
use crate::frr::{redact, state};
use crate::offline::{desired, inputs_stamp};
pub use crate::settings::FrrArgs;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ApplyArgs {
    /// YAML files or folders, as for `render`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub node: crate::offline::NodeArgs,
    #[command(flatten)]
    pub frr: FrrArgs,
    /// Remember the verified configuration here: an unchanged configuration is then applied
    /// with no FRR command at all, as long as FRR's daemons have not restarted.
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Also write the applied configuration to this file (e.g. /etc/frr/frr.conf), so that FRR
    /// starts with it.
    #[arg(long, value_name = "FILE")]
    pub persist: Option<PathBuf>,
    /// Keep running: re-apply when the inputs change, when an FRR daemon restarts, and when
    /// the running configuration drifts.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: seconds between drift checks of the running configuration.
    #[arg(long, default_value_t = 30)]
    pub drift_interval: u64,
    /// With --watch: milliseconds between checks for daemon restarts and input changes.
    #[arg(long, default_value_t = 250)]
    pub poll_ms: u64,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn describe_rejected(model: &Model, r: &[Rejected]) -> String {
    r.iter()
        .map(|r| {
            if r.line.is_empty() {
                return format!("  {} (FRR did not say which line)", redact(&r.message));
            }
            let from = crate::render::sources_for_line(model, &r.line).iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
            redact(&format!("  {}: {} (from FRRConfiguration {from})", r.line, r.message))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_report(out: &mut dyn Write, r: &Report) {
    if r.commands == 0 {
        let _ = writeln!(
            out,
            "frr-composer: FRR already runs the desired configuration ({}; {})",
            if r.read_running { "verified" } else { "no FRR command" },
            ms(r.total)
        );
        return;
    }
    for a in &r.added {
        let _ = writeln!(out, "+ {}", redact(a));
    }
    for d in &r.removed {
        let _ = writeln!(out, "- {}", redact(d));
    }
    let _ = writeln!(
        out,
        "frr-composer: applied {} change(s){}{} in {} (check {}, apply {}, verify {})",
        r.commands,
        if r.from_running { " computed from FRR's running configuration" } else { "" },
        if r.repaired { ", drift repaired" } else { "" },
        ms(r.total),
        ms(r.check),
        ms(r.apply),
        ms(r.verify),
    );
}

fn apply_once(applier: &mut Applier, model: &Model, text: &str, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    report(applier.apply(text), model, out, err)
}

/// Prints the outcome of an apply; whether FRR runs the configuration.
fn report(result: Result<Report, ApplyError>, model: &Model, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    match result {
        Ok(r) => {
            print_report(out, &r);
            true
        }
        Err(ApplyError::Refused(r)) => {
            let _ = writeln!(err, "error: FRR refuses the configuration; nothing was changed:\n{}", describe_rejected(model, &r));
            false
        }
        Err(ApplyError::Failed(r)) => {
            let _ = writeln!(err, "error: FRR refused commands while applying; the previous configuration was restored:\n{}", describe_rejected(model, &r));
            false
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}", redact(&e.to_string()));
            false
        }
    }
}

/// Runs `apply`; exit code 0 only when FRR runs the desired configuration.
pub fn run(args: &ApplyArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut applier = Applier::new(args.frr.location());
    applier.persist = args.persist.clone();
    if let Some(path) = &args.state_file {
        // a state file that could never be written is an error now, not at every apply
        if let Err(e) = writable_place(path) {
            let _ = writeln!(err, "error: --state-file {}: {e}", printable(&path.display().to_string()));
            return 2;
        }
        // a missing, unreadable or foreign state file only costs a read of FRR's configuration
        applier.state = crate::files::read_regular(path, crate::files::MAX_STATE_FILE).ok().and_then(|t| serde_json::from_str::<Applied>(&t).ok());
    }
    if let Some(path) = &args.persist {
        if let Err(e) = writable_place(path) {
            let _ = writeln!(err, "error: --persist {}: {e}", printable(&path.display().to_string()));
            return 2;
        }
    }
    let save_state = |applier: &Applier, err: &mut dyn Write| {
        if let Some(path) = &args.state_file {
            let result = match &applier.state {
                Some(s) => crate::frr::apply::persist(path, &serde_json::to_string(s).unwrap_or_default()),
                None => std::fs::remove_file(path).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
            };
            if let Err(e) = result {
                let _ = writeln!(err, "warning: --state-file {}: {e}", printable(&path.display().to_string()));
            }
        }
    };
    let Some((mut model, mut text)) = desired(&args.inputs, &args.node, err) else { return 2 };
    if !applier.state_is_current() {
        if let Err(e) = applier.location.version() {
            let _ = writeln!(err, "error: {e}");
            return 3;
        }
    }
    let ok = apply_once(&mut applier, &model, &text, out, err);
    save_state(&applier, err);
    if !args.watch {
        return if ok { 0 } else { 1 };
    }
    // --watch: keep FRR at the desired configuration (the keeper notices restarts, drift and
    // failed applies; input changes are looked for here).
    let mut keeper = Keeper::new(applier, Duration::from_secs(args.drift_interval));
    keeper.remember(&text, ok);
    let mut stamp = inputs_stamp(&args.inputs);
    let mut repairs = 0u64;
    loop {
        std::thread::sleep(Duration::from_millis(args.poll_ms));
        let now_stamp = inputs_stamp(&args.inputs);
        if now_stamp != stamp {
            stamp = now_stamp;
            let _ = writeln!(out, "frr-composer: inputs changed");
            match desired(&args.inputs, &args.node, err) {
                Some((m, t)) => {
                    model = m;
                    text = t;
                    let r = keeper.apply(&text);
                    report(r, &model, out, err);
                }
                None => continue, // invalid inputs: FRR keeps what it runs
            }
        } else {
            match keeper.check(Instant::now()) {
                Check::Fine => {}
                Check::Unreadable(e) => {
                    let _ = writeln!(err, "error: {e}");
                }
                Check::Reapply(reason) => {
                    match reason {
                        Reason::Restarted => {
                            let _ = writeln!(out, "frr-composer: FRR daemons restarted; re-applying");
                        }
                        Reason::Retry => {
                            let _ = writeln!(out, "frr-composer: the last apply failed; trying again");
                        }
                        Reason::Drift(d) => {
                            repairs += 1;
                            let _ = writeln!(out, "frr-composer: drift #{repairs} in FRR's running configuration; repairing:\n{}", redact(&d.to_string()));
                        }
                    }
                    if let Some(r) = keeper.reapply() {
                        report(r, &model, out, err);
                    }
                }
            }
        }
        save_state(&keeper.applier, err);
        let _ = out.flush();
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(clap::Args, Clone, Debug, Default)]
pub struct StatusArgs {
    #[command(flatten)]
    pub frr: FrrArgs,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn uptime(msec: Option<u64>) -> String {
    match msec {
        None => "-".into(),
        Some(ms) => {
            let s = ms / 1000;
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
    }
}

pub fn status(args: &StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let loc = args.frr.location();
    let neighbors = match state::bgp_neighbors(&loc) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 3;
        }
    };
    let bfd = state::bfd_peers(&loc).unwrap_or_default();
    if args.output == Output::Json {
        let v = serde_json::json!({"bgpNeighbors": neighbors, "bfdPeers": bfd});
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return 0;
    }
    let _ = writeln!(
        out,
        "{:<10} {:<28} {:>10} {:<12} {:>9} {:>6} {:>6} {:>6} {:<5} LAST RESET",
        "VRF", "PEER", "AS", "STATE", "UPTIME", "RCVD", "ACCPT", "SENT", "BFD"
    );
    for n in &neighbors {
        let _ = writeln!(
            out,
            "{:<10} {:<28} {:>10} {:<12} {:>9} {:>6} {:>6} {:>6} {:<5} {}",
            n.vrf,
            n.peer,
            n.remote_as.map(|a| a.to_string()).unwrap_or_default(),
            n.state,
            uptime(n.uptime_msec),
            n.prefixes_received,
            n.prefixes_accepted,
            n.prefixes_sent,
            n.bfd_status.as_deref().unwrap_or("-"),
            n.last_reset_reason.as_deref().unwrap_or("-"),
        );
    }
    if !bfd.is_empty() {
        let _ = writeln!(out, "\n{:<10} {:<28} {:<10} {:>9}", "VRF", "BFD PEER", "STATUS", "UPTIME");
        for p in &bfd {
            let _ = writeln!(out, "{:<10} {:<28} {:<10} {:>9}", p.vrf, p.peer, p.status, uptime(p.uptime_sec.map(|s| s * 1000)));
        }
    }
    0
}

/// Whether a file can be written at `path` by replacing it: its folder exists and is a folder,
/// and the path is a regular file or nothing yet (a FIFO or a device would hang or be
/// replaced behind the user's back).
fn writable_place(path: &std::path::Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a folder", printable(&dir.display().to_string()))),
        Err(e) => return Err(format!("folder {}: {e}", printable(&dir.display().to_string()))),
    }
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err("exists and is not a regular file".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(args: ApplyArgs) -> (i32, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut out, &mut err);
        (code, String::from_utf8_lossy(&err).into_owned())
    }

    #[test]
    fn a_state_file_or_persist_path_that_cannot_be_written_is_an_error_before_any_apply() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.yaml");
        std::fs::write(&input, "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n").unwrap();
        let base = ApplyArgs { inputs: vec![input], ..Default::default() };

        let missing = dir.path().join("no-such-folder/state.json");
        let (code, err) = run_with(ApplyArgs { state_file: Some(missing), ..base.clone() });
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--state-file") && err.contains("no-such-folder"), "{err}");

        // a FIFO would block the read of the state file, and the unchanged-check of --persist
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let (code, err) = run_with(ApplyArgs { state_file: Some(fifo.clone()), ..base.clone() });
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        let (code, err) = run_with(ApplyArgs { persist: Some(fifo.clone()), ..base });
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--persist") && err.contains("not a regular file"), "{err}");
        assert!(crate::frr::apply::persist(&fifo, "x\n").is_err());
    }
}
