//! The node's record of the FRRConfiguration generations in effect (the isolation ledger,
//! [`crate::core::isolation`]), kept across agent restarts.
//!
//! One JSON file, mode 0600, in a directory the agent owns (created 0700 when missing; a
//! directory owned by another user or writable by others is refused). Written atomically: a
//! new file is created exclusively next to it, synced, then renamed over the old one. Specs
//! holding an inline password are not written (secrets stay in FRR's own configuration only):
//! for those objects, only the generation number is kept.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::core::isolation::Ledger;

const FILE: &str = "in-effect.json";

pub struct LastGood {
    dir: PathBuf,
}

impl LastGood {
    /// Opens (creating it when missing) the state directory.
    pub fn open(dir: &Path) -> anyhow::Result<LastGood> {
        if !dir.exists() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let meta = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        // the process's effective uid, without libc: /proc/self belongs to it
        let me = fs::metadata("/proc/self").map(|m| m.uid()).context("reading /proc/self")?;
        if meta.uid() != me {
            bail!("{} belongs to uid {}, not to this agent (uid {me})", dir.display(), meta.uid());
        }
        if meta.permissions().mode() & 0o022 != 0 {
            bail!("{} is writable by group or others (mode {:o})", dir.display(), meta.permissions().mode() & 0o777);
        }
        Ok(LastGood { dir: dir.to_path_buf() })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The ledger written last; None when there is none. A file that cannot be read is an
    /// error (the agent then starts from what FRR runs, `super::isolation`).
    pub fn load(&self) -> anyhow::Result<Option<Ledger>> {
        let path = self.path();
        // a regular file of bounded size only: a link to /dev/zero was once read for 15 s
        match crate::files::read_regular(&path, crate::files::MAX_STATE_FILE) {
            Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| format!("{} is not a ledger", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces the file atomically with `ledger` (inline-password specs left out).
    pub fn save(&self, ledger: &Ledger) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(&persisted(ledger))?;
        let tmp = self.dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let result = (|| {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path()).with_context(|| format!("renaming {} over {}", tmp.display(), self.path().display()))?;
            fs::File::open(&self.dir)?.sync_all()?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// What is written: the ledger, with the spec dropped wherever a neighbor has an inline password.
pub fn persisted(ledger: &Ledger) -> Ledger {
    let mut out = ledger.clone();
    for e in out.objects.values_mut() {
        let inline =
            e.spec.as_ref().is_some_and(|s| s.bgp.routers.iter().flat_map(|r| &r.neighbors).any(|n| n.password.as_deref().is_some_and(|p| !p.is_empty())));
        if inline {
            e.spec = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FRRConfigurationSpec;
    use crate::core::isolation::InEffect;

    fn dir() -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::env::temp_dir().join(format!("fc-lastgood-{}-{n}", std::process::id()))
    }

    fn ledger(password: Option<&str>) -> Ledger {
        let mut spec: FRRConfigurationSpec = serde_yaml::from_str("bgp: {routers: [{asn: 64512, neighbors: [{address: 192.0.2.1, asn: 64513}]}]}").unwrap();
        spec.bgp.routers[0].neighbors[0].password = password.map(str::to_string);
        let mut l = Ledger::default();
        l.objects.insert("ns/a".into(), InEffect { uid: "u".into(), generation: 3, spec: Some(spec) });
        l
    }

    #[test]
    fn saves_atomically_private_and_reads_back() {
        let d = dir().join("state");
        let lg = LastGood::open(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(lg.load().unwrap(), None);
        lg.save(&ledger(None)).unwrap();
        lg.save(&ledger(None)).unwrap();
        assert_eq!(fs::metadata(lg.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(lg.load().unwrap(), Some(ledger(None)));
        // nothing but the file is left in the directory
        let names: Vec<String> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        assert_eq!(names, [FILE]);
        fs::remove_dir_all(d.parent().unwrap()).unwrap();
    }

    #[test]
    fn inline_passwords_are_never_written() {
        let d = dir();
        let lg = LastGood::open(&d).unwrap();
        lg.save(&ledger(Some("s3cr3t-value"))).unwrap();
        let text = fs::read_to_string(lg.path()).unwrap();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        let back = lg.load().unwrap().unwrap();
        assert_eq!(back.objects["ns/a"].generation, 3);
        assert!(back.objects["ns/a"].spec.is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let d = dir();
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let e = LastGood::open(&d).err().expect("refused").to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unreadable_ledger_is_an_error_not_a_silent_reset() {
        let d = dir();
        let lg = LastGood::open(&d).unwrap();
        fs::write(lg.path(), "not json").unwrap();
        assert!(lg.load().is_err());
        // a link to an endless device is refused at once, not read
        fs::remove_file(lg.path()).unwrap();
        std::os::unix::fs::symlink("/dev/zero", lg.path()).unwrap();
        let t = std::time::Instant::now();
        let e = lg.load().unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        fs::remove_dir_all(&d).unwrap();
    }
}
