//! The agent's side of per-object isolation ([`crate::core::isolation`]): the decisions, and
//! the ledger of generations in effect (persisted by [`super::lastgood`]). How decisions are
//! reported is `super::report` (conditions) and `super::status` (events).

use std::path::Path;

use super::lastgood::LastGood;
use crate::core::isolation::{isolate, Isolated, Ledger};
use crate::core::{Errors, Settings, Snapshot};

pub struct Isolation {
    store: Option<LastGood>,
    /// The generations in effect in FRR (advanced only after a successful apply).
    pub ledger: Ledger,
}

impl Isolation {
    /// Loads the ledger from `dir` (none: kept in memory only). A ledger that cannot be read
    /// is reported and replaced: decisions then start afresh.
    pub fn open(dir: Option<&Path>) -> Isolation {
        let mut ledger = Ledger::default();
        let store = dir.and_then(|d| match LastGood::open(d) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "state directory unusable: the generations in effect are not kept across restarts");
                None
            }
        });
        if let Some(s) = &store {
            match s.load() {
                Ok(l) => {
                    tracing::info!(objects = l.objects.len(), file = %s.path().display(), "generations in effect loaded");
                    ledger = l;
                }
                Err(e) => tracing::error!(error = %e, "generations in effect not loaded; starting afresh"),
            }
        }
        Isolation { store, ledger }
    }

    pub fn decide(&self, settings: &Settings, snap: Snapshot<'_>) -> Result<Isolated, Errors> {
        isolate(settings, snap, &self.ledger)
    }

    /// FRR now runs `isolated`: its generations are the ones in effect (written when changed).
    pub fn commit(&mut self, isolated: &Isolated) {
        if self.ledger == isolated.ledger {
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
