//! Bringing a running FRR to a desired configuration: check, apply only the difference in one
//! batch, read back and verify, roll back what a refused batch changed, and notice restarts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::conf::{self, Node};
use super::vtysh::{FrrError, FrrLocation, Rejected};

/// Top-level lines frr-composer manages. Other lines in FRR's running configuration
/// (`frr version`, `hostname`, `no ip forwarding`, interfaces, `line vty`...) are left alone.
pub fn managed(line: &str) -> bool {
    const KINDS: &[&str] =
        &["ip prefix-list ", "ipv6 prefix-list ", "route-map ", "router bgp ", "bfd", "vrf ", "debug ", "log stdout", "log timestamp", "ip nht ", "ipv6 nht "];
    KINDS.iter().any(|k| line.starts_with(k))
}

/// Lines that FRR applies but does not show in `show running-config`, or shows differently:
/// they are not counted as drift.
fn invisible(path: &str) -> bool {
    path == "ip nht resolve-via-default"
        || path == "ipv6 nht resolve-via-default"
        || path.starts_with("hostname ")
        || path == "log stdout informational"
        || auto_route_target(path)
}

/// FRR does not show an L2VNI's route target when it equals the automatic one (`ASN:VNI`).
fn auto_route_target(path: &str) -> bool {
    let parts: Vec<&str> = path.split(" > ").collect();
    let [router, "address-family l2vpn evpn", vni, rt] = parts.as_slice() else { return false };
    let asn = router.split_whitespace().nth(2).unwrap_or("");
    let vni = vni.strip_prefix("vni ").unwrap_or("");
    let value = rt.strip_prefix("route-target import ").or_else(|| rt.strip_prefix("route-target export "));
    value == Some(&format!("{asn}:{vni}"))
}

/// Puts the desired lines FRR does not show into a tree read from FRR, so that they are not
/// sent again on every apply (FRR 10 has `ip nht resolve-via-default` on by default and never
/// shows it).
fn add_invisible(base: &mut Vec<Node>, want: &[Node], prefix: &str) {
    for w in want {
        let path = format!("{prefix}{}", w.line);
        match base.iter_mut().find(|b| b.line == w.line) {
            Some(b) => add_invisible(&mut b.children, &w.children, &format!("{path} > ")),
            None if invisible(&path) => base.push(w.clone()),
            None => {}
        }
    }
}

/// Keeps what frr-composer manages (plus the top-level lines of `desired`, for raw configs).
fn managed_part(tree: Vec<Node>, desired: &[Node]) -> Vec<Node> {
    tree.into_iter()
        .filter(|n| managed(&n.line) || desired.iter().any(|d| d.line == n.line))
        .filter(|n| !n.line.starts_with("hostname "))
        .map(|mut n| {
            // a VRF block is zebra's; only its `vni` line is ours
            if n.line.starts_with("vrf ") {
                n.children.retain(|c| c.line.starts_with("vni "));
            }
            n
        })
        // an empty VRF or BFD block is what FRR shows when nothing of ours is in it
        .filter(|n| !((n.line.starts_with("vrf ") || n.line == "bfd") && n.children.is_empty() && !desired.iter().any(|d| d.line == n.line)))
        .collect()
}

/// The commands an apply sends to bring FRR from `old` (what it runs, as rendered) to `new`:
/// the same difference [`Applier::apply`] computes from its last verified state, so what
/// `frr-composer diff` predicts is what the agent sends.
pub fn commands(old: &str, new: &str) -> conf::Batch {
    conf::diff(&without_hostname(conf::parse(old)), &without_hostname(conf::parse(new)))
}

fn without_hostname(tree: Vec<Node>) -> Vec<Node> {
    tree.into_iter().filter(|n| !n.line.starts_with("hostname ")).collect()
}

/// Identity of the running daemons: their vty sockets are recreated when a daemon restarts.
fn daemon_identity(loc: &FrrLocation) -> BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    loc.vty_sockets()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(daemon, path)| std::fs::symlink_metadata(path).ok().map(|m| (daemon, (m.ino(), m.ctime(), m.ctime_nsec()))))
        .collect()
}

/// What was last verified as running.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub text: String,
    daemons: BTreeMap<String, (u64, i64, i64)>,
}

/// Lines that differ between what should run and what runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// In the desired configuration but not running.
    pub missing: Vec<String>,
    /// Running (and managed by frr-composer) but not desired.
    pub unexpected: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in &self.missing {
            writeln!(f, "  missing in FRR:    {m}")?;
        }
        for u in &self.unexpected {
            writeln!(f, "  unexpected in FRR: {u}")?;
        }
        Ok(())
    }
}

/// Compares a desired configuration with FRR's running configuration.
pub fn drift(desired: &str, running: &str) -> Drift {
    let want = without_hostname(conf::parse(desired));
    let have = managed_part(conf::parse(running), &want);
    let (w, h) = (conf::flatten(&want), conf::flatten(&have));
    Drift { missing: w.difference(&h).filter(|p| !invisible(p)).cloned().collect(), unexpected: h.difference(&w).filter(|p| !invisible(p)).cloned().collect() }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Configuration commands sent to FRR (0: nothing to do).
    pub commands: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Whether FRR's running configuration was read (no when the last verified state could be
    /// trusted: same text, same daemons).
    pub read_running: bool,
    /// The difference was computed against the running configuration (first apply, restart).
    pub from_running: bool,
    /// A drift found after applying was repaired by a second pass.
    pub repaired: bool,
    pub check: Duration,
    pub apply: Duration,
    pub verify: Duration,
    pub total: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Frr(#[from] FrrError),
    /// FRR's syntax check refused the desired configuration; nothing was sent.
    #[error("FRR refuses the configuration; nothing was changed:\n{}", list(.0))]
    Refused(Vec<Rejected>),
    /// FRR refused commands of the batch; what the batch changed was rolled back.
    #[error("FRR refused commands while applying; the previous configuration was restored:\n{}", list(.0))]
    Failed(Vec<Rejected>),
    /// After applying, FRR does not run the desired configuration.
    #[error("FRR does not run the desired configuration after applying:\n{0}")]
    Drift(Drift),
}

fn list(r: &[Rejected]) -> String {
    r.iter().map(|r| format!("  line {}: {}: {}", r.line_no, r.line, r.message)).collect::<Vec<_>>().join("\n")
}

/// Applies configurations to one FRR and remembers what it verified.
pub struct Applier {
    pub location: FrrLocation,
    /// FRR's whole running configuration as last read (for status reports).
    pub last_running: Option<String>,
    pub state: Option<Applied>,
    /// Written (atomically) after every verified apply, so that FRR restarts with it.
    pub persist: Option<PathBuf>,
}

impl Applier {
    pub fn new(location: FrrLocation) -> Applier {
        Applier { location, last_running: None, state: None, persist: None }
    }

    /// Whether the remembered state still describes FRR (same daemons as when verified).
    pub fn state_is_current(&self) -> bool {
        self.state.as_ref().is_some_and(|s| !s.daemons.is_empty() && s.daemons == daemon_identity(&self.location))
    }

    /// Brings FRR to `desired`. Identical text and unchanged daemons: no FRR command at all.
    pub fn apply(&mut self, desired: &str) -> Result<Report, ApplyError> {
        let start = Instant::now();
        let mut report = Report::default();
        if self.state_is_current() && self.state.as_ref().is_some_and(|s| s.text == desired) {
            report.total = start.elapsed();
            return Ok(report);
        }
        // 1. FRR's own syntax check, before touching anything.
        let refused = self.location.check(desired)?;
        report.check = start.elapsed();
        if !refused.is_empty() {
            return Err(ApplyError::Refused(refused));
        }
        // 2. The difference, against the last verified state or else the running config.
        let want = without_hostname(conf::parse(desired));
        let (base_text, base) = match (&self.state, self.state_is_current()) {
            (Some(s), true) => (s.text.clone(), without_hostname(conf::parse(&s.text))),
            _ => {
                let running = self.location.owned_running_config()?;
                report.read_running = true;
                report.from_running = true;
                let mut tree = managed_part(conf::parse(&running), &want);
                add_invisible(&mut tree, &want, "");
                (running, tree)
            }
        };
        let batch = conf::diff(&base, &want);
        let t_apply = Instant::now();
        if !batch.is_empty() {
            // a batch that could not be sent or did not finish may have changed part of FRR:
            // the next apply starts from what runs
            let refused = self.location.configure(&batch.text).inspect_err(|_| self.state = None)?;
            if !refused.is_empty() {
                self.roll_back(&base_text, report.from_running);
                return Err(ApplyError::Failed(refused));
            }
        }
        report.commands = batch.changes;
        report.added = batch.added;
        report.removed = batch.removed;
        report.apply = t_apply.elapsed();
        // 3. Read back and compare.
        let t_verify = Instant::now();
        let (full, running) = self.location.running_configs()?;
        self.last_running = Some(full);
        report.read_running = true;
        let mut d = drift(desired, &running);
        if !d.is_empty() {
            // one repair pass against what really runs
            let mut have = managed_part(conf::parse(&running), &want);
            add_invisible(&mut have, &want, "");
            let fix = conf::diff(&have, &want);
            if !fix.is_empty() {
                let refused = self.location.configure(&fix.text)?;
                if !refused.is_empty() {
                    return Err(ApplyError::Failed(refused));
                }
                report.commands += fix.changes;
                report.repaired = true;
            }
            let (full, running) = self.location.running_configs()?;
            self.last_running = Some(full);
            d = drift(desired, &running);
        }
        report.verify = t_verify.elapsed();
        if !d.is_empty() {
            self.state = None;
            return Err(ApplyError::Drift(d));
        }
        self.state = Some(Applied { text: desired.to_string(), daemons: daemon_identity(&self.location) });
        if let Some(path) = &self.persist {
            persist(path, desired).map_err(|e| FrrError::File { path: path.clone(), source: e })?;
        }
        report.total = start.elapsed();
        Ok(report)
    }

    /// Puts back what a refused batch changed: the difference from what runs now to `previous`.
    fn roll_back(&mut self, previous: &str, previous_is_running: bool) {
        self.state = None;
        let Ok(now) = self.location.owned_running_config() else { return };
        let want = if previous_is_running {
            let desired_tree = conf::parse(previous);
            managed_part(desired_tree.clone(), &desired_tree)
        } else {
            without_hostname(conf::parse(previous))
        };
        let have = managed_part(conf::parse(&now), &want);
        let back = conf::diff(&have, &want);
        if !back.is_empty() {
            let _ = self.location.configure(&back.text);
        }
    }

    /// Compares the running configuration with the last verified one (drift check).
    pub fn check_drift(&self) -> Result<Option<Drift>, FrrError> {
        let Some(s) = &self.state else { return Ok(None) };
        let d = drift(&s.text, &self.location.owned_running_config()?);
        Ok((!d.is_empty()).then_some(d))
    }

    /// Forgets the verified state: the next apply starts from the running configuration.
    pub fn invalidate(&mut self) {
        self.state = None;
    }
}

/// Writes a file atomically, only when its content changes: a new file (mode 0600, or the mode
/// and owner of the file it replaces), created exclusively beside it, written, synced and
/// renamed over it; then the folder is synced. The content holds passwords: it is never
/// readable by others unless the existing file already was.
pub fn persist(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // a FIFO or a device at the path would block the read below or be replaced by a file
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "exists and is not a regular file"));
    }
    // read no more than the new text: a longer file differs anyway
    if crate::files::read_regular(path, text.len() as u64).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let existing = std::fs::metadata(path).ok().filter(|m| m.is_file());
    let mode = existing.as_ref().map_or(0o600, |m| m.mode() & 0o7777);
    let mut tmp = tempfile::Builder::new().prefix(".frr-composer-").suffix(".tmp").permissions(std::fs::Permissions::from_mode(0o600)).tempfile_in(dir)?;
    if let Some(m) = &existing {
        // keep the owner (only root may give a file away; otherwise it stays ours)
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid()));
    }
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmanaged_running_lines_are_not_drift() {
        let desired = "hostname a\nip prefix-list L seq 5 permit 10.0.0.0/24\nrouter bgp 65000\n neighbor 192.0.2.1 remote-as 65001\nexit\n";
        let running = "frr version 8.4.4\nfrr defaults traditional\nhostname vm\nno ip forwarding\nservice integrated-vtysh-config\n!\nip prefix-list L seq 5 permit 10.0.0.0/24\n!\nrouter bgp 65000\n neighbor 192.0.2.1 remote-as 65001\nexit\n!\nvrf red\nexit-vrf\n!\ninterface lo\nexit\n!\nend\n";
        assert_eq!(drift(desired, running), Drift::default());
        let running2 = running.replace("ip prefix-list L seq 5 permit 10.0.0.0/24\n", "ip prefix-list M seq 5 permit 10.0.0.0/24\n");
        let d = drift(desired, &running2);
        assert_eq!(d.missing, vec!["ip prefix-list L seq 5 permit 10.0.0.0/24"]);
        assert_eq!(d.unexpected, vec!["ip prefix-list M seq 5 permit 10.0.0.0/24"]);
    }

    #[test]
    fn persisted_files_are_private_and_keep_an_existing_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("frr.conf");
        persist(&f, "neighbor 192.0.2.1 password s3cret\n").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        persist(&f, "changed\n").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "changed\n");
        // nothing else is left in the folder
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // a planted link at the old predictable name is not followed
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, f.with_extension("frr-composer.tmp")).unwrap();
        persist(&f, "again\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
