//! How often one node writes one status object: the first change after a quiet period is
//! written at once; changes within [`STATUS_INTERVAL`] of a write wait for its end and are
//! written as one (the latest). An object that flips between valid and conflicting twenty times
//! a second thus costs each node at most one write of it per interval, and the last state is
//! always written. Pure: the caller says what time it is.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The shortest time between two writes of one status object by one node: FRRNodeState, and
/// this node's entry in one FRRConfiguration's status.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// When each key was last written, and the value that waits for the end of its interval.
#[derive(Debug)]
pub struct Pacer<K: Ord + Clone, V> {
    interval: Duration,
    last: BTreeMap<K, Instant>,
    waiting: BTreeMap<K, V>,
}

impl<K: Ord + Clone, V> Pacer<K, V> {
    pub fn new(interval: Duration) -> Pacer<K, V> {
        Pacer { interval, last: BTreeMap::new(), waiting: BTreeMap::new() }
    }

    /// A new value for `key` at `now`: returned when it may be written now, else kept (in place
    /// of whatever waited) until [`Pacer::due`] hands it out.
    pub fn offer(&mut self, key: K, value: V, now: Instant) -> Option<V> {
        match self.last.get(&key) {
            Some(at) if now < *at + self.interval => {
                self.waiting.insert(key, value);
                None
            }
            _ => {
                self.waiting.remove(&key);
                Some(value)
            }
        }
    }

    /// What is written already stands again: nothing for `key` waits any more.
    pub fn settled(&mut self, key: &K) {
        self.waiting.remove(key);
    }

    /// A write of `value` starts at `now`: counted as a write, and the value waits as its own
    /// retry until [`Pacer::settled`] says it was written. A write that fails, or is given up
    /// (a timeout drops it), is thus retried at the interval's end unless a newer value comes.
    pub fn attempt(&mut self, key: K, value: V, now: Instant) {
        self.last.insert(key.clone(), now);
        self.waiting.insert(key, value);
    }

    /// The values whose interval has ended at `now`, taken.
    pub fn due(&mut self, now: Instant) -> Vec<(K, V)> {
        let keys: Vec<K> = self.waiting.keys().filter(|k| self.ready_at(k).is_none_or(|t| now >= t)).cloned().collect();
        keys.into_iter().filter_map(|k| self.waiting.remove(&k).map(|v| (k, v))).collect()
    }

    /// Everything that waits, at once (the agent is stopping).
    pub fn all(&mut self) -> Vec<(K, V)> {
        std::mem::take(&mut self.waiting).into_iter().collect()
    }

    /// When the next waiting value is due (None: nothing waits).
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.keys().filter_map(|k| self.ready_at(k)).min()
    }

    /// Keys no longer followed: their times go too (none of them waits).
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.last.retain(|k, _| keep(k) || self.waiting.contains_key(k));
    }

    fn ready_at(&self, key: &K) -> Option<Instant> {
        self.last.get(key).map(|t| *t + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_secs(2);

    /// A write of `key` at `now` that succeeded, as the status writer records it.
    fn wrote(p: &mut Pacer<&'static str, i32>, key: &'static str, now: Instant) {
        p.attempt(key, 0, now);
        p.settled(&key);
    }

    #[test]
    fn the_first_change_goes_at_once_and_a_burst_folds_into_one_write() {
        let t0 = Instant::now();
        let mut p = Pacer::new(I);
        assert_eq!(p.offer("n", 1, t0), Some(1));
        wrote(&mut p, "n", t0);
        // twenty flips within the interval: none written, the latest waits
        for i in 0..20 {
            assert_eq!(p.offer("n", 100 + i, t0 + Duration::from_millis(50 * i as u64)), None);
        }
        assert_eq!(p.next_due(), Some(t0 + I));
        assert!(p.due(t0 + I - Duration::from_millis(1)).is_empty());
        assert_eq!(p.due(t0 + I), vec![("n", 119)]);
        assert_eq!(p.next_due(), None);
        // quiet for longer than the interval: at once again
        wrote(&mut p, "n", t0 + I);
        assert_eq!(p.offer("n", 7, t0 + I * 3), Some(7));
    }

    #[test]
    fn keys_are_paced_apart_and_a_settled_key_stops_waiting() {
        let t0 = Instant::now();
        let mut p = Pacer::new(I);
        wrote(&mut p, "a", t0);
        assert_eq!(p.offer("b", 1, t0), Some(1), "another object is not held by a's write");
        assert_eq!(p.offer("a", 2, t0), None);
        p.settled(&"a");
        assert_eq!(p.next_due(), None);
        assert!(p.due(t0 + I).is_empty());
    }

    #[test]
    fn a_failed_write_is_retried_unless_a_newer_value_comes() {
        let t0 = Instant::now();
        let mut p = Pacer::new(I);
        p.attempt("a", 1, t0);
        // not settled (failed, or dropped by a timeout): retried at the interval's end
        assert_eq!(p.due(t0 + I), vec![("a", 1)]);
        p.attempt("a", 1, t0 + I);
        assert_eq!(p.offer("a", 2, t0 + I), None);
        assert_eq!(p.due(t0 + I * 2), vec![("a", 2)]);
        // a write that succeeds leaves nothing waiting
        p.attempt("a", 2, t0 + I * 2);
        p.settled(&"a");
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn stopping_takes_everything_and_forgotten_keys_lose_their_time() {
        let t0 = Instant::now();
        let mut p = Pacer::new(I);
        wrote(&mut p, "a", t0);
        wrote(&mut p, "b", t0);
        assert_eq!(p.offer("a", 1, t0), None);
        p.retain(|k| *k == "nothing");
        // b is forgotten; a still waits, so its time stays
        assert_eq!(p.offer("b", 2, t0), Some(2));
        assert_eq!(p.all(), vec![("a", 1)]);
    }
}
