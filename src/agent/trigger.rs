//! When to reconcile after a change (`--debounce-ms`): the coalescer the agent's loop asks.

use std::time::{Duration, Instant};

/// The default coalescing window (`--debounce-ms`): long enough that 100 changes within one
/// second cost at most 5 applies even when an apply takes only 40 ms.
pub const DEFAULT_WINDOW_MS: u64 = 250;

/// When to apply after a change: the first change after a quiet period applies at once;
/// changes that arrive while an apply runs, or within `window` after it ended, wait for the
/// end of the window and then apply together. A burst of changes thus costs at most one apply
/// per (apply time + window), and a lone change waits for nothing.
#[derive(Clone, Debug)]
pub struct Coalescer {
    window: Duration,
    last_end: Option<Instant>,
    pending: Option<Instant>,
}

impl Coalescer {
    pub fn new(window: Duration) -> Coalescer {
        Coalescer { window, last_end: None, pending: None }
    }

    /// A change was seen at `now`.
    pub fn changed(&mut self, now: Instant) {
        if self.pending.is_none() {
            let at = match self.last_end {
                Some(end) if now < end + self.window => end + self.window,
                _ => now,
            };
            self.pending = Some(at);
        }
    }

    /// When the pending changes are to be applied (None: nothing pending).
    pub fn due_at(&self) -> Option<Instant> {
        self.pending
    }

    /// Whether pending changes are due at `now`; if so they are taken (the caller applies).
    pub fn take(&mut self, now: Instant) -> bool {
        if self.pending.is_some_and(|t| now >= t) {
            self.pending = None;
            true
        } else {
            false
        }
    }

    /// An apply (of whatever reason) ended at `now`: it included every change seen before it
    /// started.
    pub fn applied(&mut self, now: Instant) {
        self.last_end = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_lone_change_applies_at_once() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(200 * MS);
        assert_eq!(c.due_at(), None);
        c.changed(t0);
        assert_eq!(c.due_at(), Some(t0));
        assert!(c.take(t0));
        c.applied(t0 + 50 * MS);
        // long after: again at once
        c.changed(t0 + 1000 * MS);
        assert_eq!(c.due_at(), Some(t0 + 1000 * MS));
    }

    #[test]
    fn changes_during_or_right_after_an_apply_coalesce_at_the_window_end() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(200 * MS);
        c.changed(t0);
        assert!(c.take(t0));
        // seen while the apply runs (the loop notices them after it)
        c.applied(t0 + 60 * MS);
        c.changed(t0 + 60 * MS);
        c.changed(t0 + 100 * MS);
        c.changed(t0 + 250 * MS);
        assert_eq!(c.due_at(), Some(t0 + 260 * MS), "one apply at the end of the window");
        assert!(!c.take(t0 + 259 * MS));
        assert!(c.take(t0 + 260 * MS));
        assert_eq!(c.due_at(), None);
    }

    #[test]
    fn a_burst_of_a_hundred_changes_in_a_second_is_at_most_five_applies() {
        let t0 = Instant::now();
        // a fast apply (FRR's own apply of a small change is 40-100 ms) at the default window
        let apply_time = 40 * MS;
        let mut c = Coalescer::new(Duration::from_millis(DEFAULT_WINDOW_MS));
        let mut applies = 0;
        let mut t = t0;
        let mut next_change = 0;
        // simulate: a change every 10 ms for 1 s; an apply takes `apply_time`
        while t < t0 + 3000 * MS {
            while next_change < 100 && t0 + next_change * 10 * MS <= t {
                c.changed(t);
                next_change += 1;
            }
            if c.take(t) {
                applies += 1;
                t += apply_time;
                c.applied(t);
            } else {
                t += MS;
            }
        }
        assert!(next_change == 100 && c.due_at().is_none(), "every change applied");
        assert!(applies <= 5, "{applies} applies");
        assert!(applies >= 4, "{applies} applies: the window is not longer than needed");
    }
}
