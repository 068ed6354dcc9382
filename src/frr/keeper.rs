//! Keeping one FRR at a desired configuration over time: the `Applier` applies once; the
//! `Keeper` remembers what should run and notices when it no longer does (a daemon restarted,
//! the running configuration drifted, the last apply failed) and says when to apply it again.
//! Used by `apply --watch` and by the node agent. Blocking (vtysh): async callers run it on a
//! blocking thread.
//!
//! The decisions (when a restart counts, when the next drift check or retry is due) are in
//! `Schedule`, a pure type; the `Keeper` adds what it reads from FRR.

use std::time::{Duration, Instant};

use super::apply::{Applier, ApplyError, Drift, Report};
use super::vtysh::FrrError;

/// First delay before a failed apply is tried again; it doubles up to `MAX_BACKOFF`.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often restarts (changed daemon sockets, a local `stat`) are looked for.
pub const RESTART_POLL: Duration = Duration::from_millis(500);
/// With a persisted configuration, how long a restarted FRR gets to load it before the keeper
/// compares (so that the re-apply finds everything in place and sends nothing).
pub const RESTART_SETTLE: Duration = Duration::from_secs(5);

/// Why FRR needs the desired configuration again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The last apply failed and its backoff has passed.
    Retry,
    /// FRR's daemons are not those the last apply verified.
    Restarted,
    /// The running configuration differs from the desired one.
    Drift(Drift),
}

/// What is due now, before reading FRR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Retry,
    Restarted,
    DriftCheck,
}

/// When restarts count, when drift is checked and when a failed apply is retried. Pure: the
/// caller says what time it is and whether the daemons changed.
#[derive(Clone, Debug)]
pub struct Schedule {
    drift_interval: Duration,
    /// `Some`: wait this long after seeing a restart (FRR loads a persisted configuration).
    settle: Option<Duration>,
    last_drift_check: Instant,
    restart_seen: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Schedule {
    pub fn new(drift_interval: Duration, settle: Option<Duration>, now: Instant) -> Schedule {
        Schedule { drift_interval, settle, last_drift_check: now, restart_seen: None, retry_at: None, backoff: FIRST_BACKOFF }
    }

    /// What is due at `now`; `restarted`: FRR's daemons differ from the verified ones. A
    /// restart comes first, then a retry, then a drift check (which restarts its interval).
    pub fn due(&mut self, now: Instant, restarted: bool) -> Option<Due> {
        let restart_due = match (restarted, self.restart_seen, self.settle) {
            (false, _, _) => {
                self.restart_seen = None;
                false
            }
            (true, _, None) => true,
            (true, None, Some(_)) => {
                self.restart_seen = Some(now);
                false
            }
            (true, Some(seen), Some(settle)) => now.saturating_duration_since(seen) >= settle,
        };
        if restart_due {
            self.restart_seen = None;
            return Some(Due::Restarted);
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            return Some(Due::Retry);
        }
        if now.saturating_duration_since(self.last_drift_check) >= self.drift_interval {
            self.last_drift_check = now;
            return Some(Due::DriftCheck);
        }
        None
    }

    /// An apply succeeded: no retry pending, the backoff starts over.
    pub fn succeeded(&mut self) {
        self.retry_at = None;
        self.backoff = FIRST_BACKOFF;
    }

    /// An apply failed at `now`: the retry is due after the backoff, which doubles. Returns
    /// the delay.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.backoff;
        self.retry_at = Some(now + delay);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        delay
    }

    /// When `due` should be asked next (restarts are looked for every `RESTART_POLL`).
    pub fn next_check(&self, now: Instant) -> Instant {
        let mut t = (now + RESTART_POLL).min(self.last_drift_check + self.drift_interval);
        if let Some(r) = self.retry_at {
            t = t.min(r);
        }
        if let (Some(seen), Some(settle)) = (self.restart_seen, self.settle) {
            t = t.min(seen + settle);
        }
        t.max(now)
    }
}

/// What a check found.
#[derive(Debug)]
pub enum Check {
    /// FRR runs what it should (or nothing is desired yet, or nothing was due).
    Fine,
    /// The desired configuration must be applied again (the verified state is forgotten where
    /// it no longer describes FRR).
    Reapply(Reason),
    /// The drift check could not read FRR.
    Unreadable(FrrError),
}

/// One FRR kept at a desired configuration.
pub struct Keeper {
    pub applier: Applier,
    desired: Option<String>,
    schedule: Schedule,
}

impl Keeper {
    /// `drift_interval`: between drift checks. A restarted FRR is given `RESTART_SETTLE` when
    /// the applier persists the configuration (FRR then loads it itself).
    pub fn new(applier: Applier, drift_interval: Duration) -> Keeper {
        let settle = applier.persist.is_some().then_some(RESTART_SETTLE);
        Keeper { applier, desired: None, schedule: Schedule::new(drift_interval, settle, Instant::now()) }
    }

    /// The configuration FRR should run (the last one given to `apply`).
    pub fn desired(&self) -> Option<&str> {
        self.desired.as_deref()
    }

    /// Brings FRR to `text` and remembers it as desired; a failure schedules a retry.
    pub fn apply(&mut self, text: &str) -> Result<Report, ApplyError> {
        if self.desired.as_deref() != Some(text) {
            self.desired = Some(text.to_string());
        }
        let r = self.applier.apply(text);
        match &r {
            Ok(_) => self.schedule.succeeded(),
            Err(_) => {
                self.schedule.failed(Instant::now());
            }
        }
        r
    }

    /// Takes over after an apply made without the keeper: `text` is desired; a failed apply
    /// (`ok` false) is retried after the first backoff.
    pub fn remember(&mut self, text: &str, ok: bool) {
        self.desired = Some(text.to_string());
        if ok {
            self.schedule.succeeded();
        } else {
            self.schedule.failed(Instant::now());
        }
    }

    /// Applies the desired configuration again (after `check` said so).
    pub fn reapply(&mut self) -> Option<Result<Report, ApplyError>> {
        let text = self.desired.clone()?;
        Some(self.apply(&text))
    }

    /// The delay before the retry of the failed apply (None: the last apply succeeded).
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.schedule.retry_at.map(|t| t.saturating_duration_since(now))
    }

    /// When `check` should run next.
    pub fn next_check(&self, now: Instant) -> Instant {
        self.schedule.next_check(now)
    }

    /// Looks at FRR for what is due now: a restart (daemon sockets), a retry, a drift check
    /// (reads the running configuration).
    pub fn check(&mut self, now: Instant) -> Check {
        if self.desired.is_none() {
            return Check::Fine;
        }
        // a restart is a verified state whose daemons changed; a failed apply has no state and
        // waits for its retry instead
        let restarted = self.applier.state.is_some() && !self.applier.state_is_current();
        match self.schedule.due(now, restarted) {
            None => Check::Fine,
            Some(Due::Restarted) => {
                self.applier.invalidate();
                Check::Reapply(Reason::Restarted)
            }
            Some(Due::Retry) => Check::Reapply(Reason::Retry),
            Some(Due::DriftCheck) => match self.applier.check_drift() {
                Ok(Some(d)) => {
                    self.applier.invalidate();
                    Check::Reapply(Reason::Drift(d))
                }
                Ok(None) => Check::Fine,
                Err(e) => Check::Unreadable(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn drift_checks_come_every_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(30 * S, None, t0);
        assert_eq!(s.due(t0 + 29 * S, false), None);
        assert_eq!(s.due(t0 + 30 * S, false), Some(Due::DriftCheck));
        assert_eq!(s.due(t0 + 31 * S, false), None, "the interval starts again at the check");
        assert_eq!(s.due(t0 + 60 * S, false), Some(Due::DriftCheck));
        assert_eq!(s.next_check(t0 + 60 * S), t0 + 60 * S + RESTART_POLL);
    }

    #[test]
    fn a_restart_is_repaired_at_once_without_persistence() {
        let t0 = Instant::now();
        let mut s = Schedule::new(30 * S, None, t0);
        assert_eq!(s.due(t0 + S, true), Some(Due::Restarted));
    }

    #[test]
    fn with_persistence_a_restart_gets_the_settle_time() {
        let t0 = Instant::now();
        let mut s = Schedule::new(30 * S, Some(5 * S), t0);
        assert_eq!(s.due(t0 + S, true), None, "first seen: FRR loads its persisted file");
        assert_eq!(s.next_check(t0 + S), t0 + S + RESTART_POLL);
        assert_eq!(s.due(t0 + 5 * S, true), None);
        assert_eq!(s.due(t0 + 6 * S, true), Some(Due::Restarted), "still not verified after the settle time");
        // a restart that resolves itself (the re-apply found it in place) is forgotten
        assert_eq!(s.due(t0 + 7 * S, true), None);
        assert_eq!(s.due(t0 + 8 * S, false), None);
        assert_eq!(s.due(t0 + 9 * S, true), None, "a new restart waits again");
    }

    #[test]
    fn failures_back_off_doubling_to_a_limit_and_success_resets() {
        let t0 = Instant::now();
        let mut s = Schedule::new(3600 * S, None, t0);
        let delays: Vec<u64> = (0..7).map(|_| s.failed(t0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(s.due(t0 + 29 * S, false), None);
        assert_eq!(s.due(t0 + 30 * S, false), Some(Due::Retry));
        assert_eq!(s.next_check(t0), t0 + RESTART_POLL);
        s.succeeded();
        assert_eq!(s.due(t0 + 31 * S, false), None);
        assert_eq!(s.failed(t0).as_secs(), 1);
    }

    #[test]
    fn a_restart_comes_before_a_retry() {
        let t0 = Instant::now();
        let mut s = Schedule::new(3600 * S, None, t0);
        s.failed(t0);
        assert_eq!(s.due(t0 + 2 * S, true), Some(Due::Restarted));
        assert_eq!(s.due(t0 + 2 * S, false), Some(Due::Retry));
    }

    #[test]
    fn nothing_is_due_before_anything_is_desired() {
        let loc = crate::frr::vtysh::FrrLocation { vtysh: Some("/nonexistent/vtysh".into()), ..Default::default() };
        let mut k = Keeper::new(Applier::new(loc), Duration::ZERO);
        assert!(matches!(k.check(Instant::now() + S), Check::Fine));
        assert!(k.reapply().is_none());
    }
}
