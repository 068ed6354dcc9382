//! The agent's side of per-object isolation ([`crate::core::isolation`]): the decisions, and
//! the ledger of generations in effect (persisted by [`super::lastgood`]). How decisions are
//! reported is `super::report` (conditions) and `super::status` (events).

use std::path::Path;

use super::lastgood::LastGood;
use crate::core::isolation::{isolate_refusing, Decision, Isolated, Ledger, Refusals};
use crate::core::{Errors, Settings, Snapshot};

pub struct Isolation {
    store: Option<LastGood>,
    /// The generations in effect in FRR (advanced only after a successful apply).
    pub ledger: Ledger,
    /// Why the ledger is not a record of what FRR runs (no record was read: none kept, missing,
    /// unreadable, in a directory the agent cannot trust), until the first successful apply.
    /// Meanwhile what FRR runs is the only truth: see [`Isolation::must_hold`].
    pub unrecorded: Option<String>,
}

impl Isolation {
    /// Loads the ledger from `dir` (none: kept in memory only). Without a usable record the
    /// ledger starts empty and [`Isolation::unrecorded`] says why.
    pub fn open(dir: Option<&Path>) -> Isolation {
        let mut ledger = Ledger::default();
        let mut unrecorded = None;
        let store = match dir {
            None => {
                unrecorded = Some("no --state-dir keeps a record of the generations in effect".to_string());
                None
            }
            Some(d) => match LastGood::open(d) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "state directory unusable: the generations in effect are not kept across restarts");
                    unrecorded = Some(format!("the state directory is unusable: {e:#}"));
                    None
                }
            },
        };
        if let Some(s) = &store {
            match s.load() {
                Ok(Some(l)) => {
                    tracing::info!(objects = l.objects.len(), file = %s.path().display(), "generations in effect loaded");
                    ledger = l;
                }
                Ok(None) => unrecorded = Some(format!("{} does not exist", s.path().display())),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "generations in effect not loaded; FRR keeps what it runs until every object applies");
                    unrecorded = Some(format!("{e:#}"));
                }
            }
        }
        Isolation { store, ledger, unrecorded }
    }

    /// Whether this reconcile must leave FRR as it is: with no record of the generations in
    /// effect, a decision that refuses an object may drop one FRR runs (the ledger would have
    /// kept it) and apply the refused generation in its place. So while there is no record and
    /// FRR runs a BGP configuration, only a composition in which every object applies is
    /// applied; anything else waits, and FRR keeps what it runs. A node whose FRR runs nothing
    /// has nothing to lose and decides as usual.
    pub fn must_hold(&self, isolated: &Isolated, frr_runs_bgp: bool) -> bool {
        self.unrecorded.is_some() && frr_runs_bgp && isolated.decisions.iter().any(|d| !matches!(d.decision, Decision::Applied))
    }

    /// The decisions, with the generations FRR refuses (`refused`) refused too.
    pub fn decide(&self, settings: &Settings, snap: Snapshot<'_>, refused: &Refusals) -> Result<Isolated, Errors> {
        isolate_refusing(settings, snap, &self.ledger, refused)
    }

    /// FRR now runs `isolated`: its generations are the ones in effect (written when changed).
    pub fn commit(&mut self, isolated: &Isolated) {
        let was_unrecorded = self.unrecorded.take().is_some();
        if self.ledger == isolated.ledger && !was_unrecorded {
            return;
        }
        self.ledger = isolated.ledger.clone();
        if let Some(s) = &self.store {
            if let Err(e) = s.save(&self.ledger) {
                tracing::error!(error = %e, "writing the generations in effect");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::isolation::InEffect;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("fc-iso-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn without_a_record_the_ledger_says_why() {
        assert!(Isolation::open(None).unrecorded.unwrap().contains("--state-dir"));
        // missing
        let d = dir("missing");
        let iso = Isolation::open(Some(&d));
        assert!(iso.unrecorded.as_deref().unwrap().contains("does not exist"), "{:?}", iso.unrecorded);
        // corrupt
        std::fs::write(d.join("in-effect.json"), "{").unwrap();
        let iso = Isolation::open(Some(&d));
        assert!(iso.unrecorded.as_deref().unwrap().contains("is not a ledger"), "{:?}", iso.unrecorded);
        // a directory others may write is not trusted
        let open = dir("open");
        std::fs::create_dir(&open).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Isolation::open(Some(&open)).unrecorded.unwrap().contains("writable by group or others"));
        let _ = std::fs::remove_dir_all(&open);
        // a record: read, and nothing unrecorded
        let mut ledger = Ledger::default();
        ledger.objects.insert("ns/a".into(), InEffect { uid: "u1".into(), generation: 2, spec: None });
        LastGood::open(&d).unwrap().save(&ledger).unwrap();
        let iso = Isolation::open(Some(&d));
        assert_eq!((iso.unrecorded.as_deref(), iso.ledger), (None, ledger));
        let _ = std::fs::remove_dir_all(&d);
    }
}
