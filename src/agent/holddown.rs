//! Deletion hold-down: when a whole FRRConfiguration that FRR runs disappears, its part of the
//! configuration stays for a short time before it is withdrawn.
//!
//! Why: MetalLB's speaker deletes its node's FRRConfiguration when it restarts and creates it
//! again about 3.3 s later. Applied at once, that deletion withdraws every LoadBalancer IP of
//! the node for those seconds, on every MetalLB upgrade or crash. Held, a deletion followed by
//! a re-creation changes nothing in FRR.
//!
//! The same restart, when the speaker's reconciler runs after its peers are known but before
//! its Services are, does not delete the object but writes it with no prefixes at all, and
//! writes the prefixes back about 3 s later: in the live lab two of five restarts did that. An
//! object that stops advertising anything at all is therefore held the same way.
//!
//! Rules (pure, no clock: the caller passes `now`):
//! - Held: the deletion of an object, or an object emptied (it advertised prefixes and now
//!   advertises none), but only for objects that the last successful merge used. Every other
//!   change - a prefix less while others stay, a new object, a node label change, the deletion
//!   of an object that was refused or never selected - takes effect at once.
//! - An object that comes back advertising (same name) within the hold-down ends it: the
//!   current content counts from then on, exactly as for any content change. Coming back
//!   still empty keeps the hold (MetalLB may recreate its object empty first).
//! - An object still gone when its hold-down ends is withdrawn: the caller wakes at
//!   [`Step::next_wake`] and merges without it.
//! - A zero hold-down holds nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The longest hold-down the agent accepts (a bound, so that time arithmetic cannot overflow
/// and a typo cannot keep a withdrawn object in FRR for days).
pub const MAX: Duration = Duration::from_secs(600);

/// A held deletion, as the hold-down reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Holding {
    pub name: String,
    /// Deleted (false: emptied).
    pub deleted: bool,
    /// When its hold-down ends.
    pub until: Instant,
}

/// A deleted or emptied object whose previous part of the configuration is still in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Held<V> {
    /// The content last merged.
    pub value: V,
    pub deleted_at: Instant,
    /// Deleted (true) or still there but emptied (false), as last seen.
    pub deleted: bool,
}

/// What to merge now, and what the hold-down keeps for later.
#[derive(Clone, Debug, PartialEq)]
pub struct Step<V> {
    /// The current objects plus the held deletions (by name).
    pub effective: BTreeMap<String, V>,
    /// Deletions still held after this step.
    pub held: BTreeMap<String, Held<V>>,
    /// The objects the last merge used, less those whose hold-down ended (the caller replaces
    /// this with the newly merged set after a successful merge).
    pub applied: BTreeMap<String, V>,
    /// When the earliest hold-down ends (None: nothing held).
    pub next_wake: Option<Instant>,
    /// Deletions held from this step on.
    pub started: Vec<String>,
    /// Held deletions ended because the object is back.
    pub cancelled: Vec<String>,
    /// Held deletions that ended: withdrawn now.
    pub expired: Vec<String>,
}

/// One reconcile's view through the hold-down.
///
/// `current`: the objects the API server holds now; `applied`: those the last successful merge
/// used, with the content it used; `held`: the holds so far; `hold`: the hold-down;
/// `advertises`: whether an object's content advertises any prefix.
pub fn step<V: Clone>(
    current: &BTreeMap<String, V>,
    applied: &BTreeMap<String, V>,
    held: &BTreeMap<String, Held<V>>,
    now: Instant,
    hold: Duration,
    advertises: impl Fn(&V) -> bool,
) -> Step<V> {
    let hold = hold.min(MAX);
    let mut out = Step {
        effective: current.clone(),
        held: BTreeMap::new(),
        applied: applied.clone(),
        next_wake: None,
        started: Vec::new(),
        cancelled: Vec::new(),
        expired: Vec::new(),
    };
    for (name, h) in held {
        let now_there = current.get(name);
        if now_there.is_some_and(&advertises) {
            out.cancelled.push(name.clone());
        } else if now.saturating_duration_since(h.deleted_at) >= hold {
            out.expired.push(name.clone());
            // the next merge records it again as it is then (if it exists)
            out.applied.remove(name);
        } else {
            out.held.insert(name.clone(), Held { deleted: now_there.is_none(), ..h.clone() });
        }
    }
    if !hold.is_zero() {
        for (name, value) in applied {
            if held.contains_key(name) {
                continue;
            }
            let start = match current.get(name) {
                None => Some(true),
                Some(c) if advertises(value) && !advertises(c) => Some(false),
                Some(_) => None,
            };
            if let Some(deleted) = start {
                out.started.push(name.clone());
                out.held.insert(name.clone(), Held { value: value.clone(), deleted_at: now, deleted });
            }
        }
    }
    for (name, h) in &out.held {
        out.effective.insert(name.clone(), h.value.clone());
    }
    out.next_wake = out.held.values().map(|h| h.deleted_at + hold).min();
    out
}

/// The hold-down's state across reconciles: the last merged objects and the holds.
#[derive(Debug)]
pub struct HoldDown<V> {
    pub hold: Duration,
    applied: BTreeMap<String, V>,
    held: BTreeMap<String, Held<V>>,
    advertises: fn(&V) -> bool,
}

impl<V: Clone> HoldDown<V> {
    pub fn new(hold: Duration, advertises: fn(&V) -> bool) -> Self {
        HoldDown { hold: hold.min(MAX), applied: BTreeMap::new(), held: BTreeMap::new(), advertises }
    }

    /// Runs [`step`] and keeps its state; returns the step for logging and merging.
    pub fn advance(&mut self, current: &BTreeMap<String, V>, now: Instant) -> Step<V> {
        let s = step(current, &self.applied, &self.held, now, self.hold, self.advertises);
        self.held.clone_from(&s.held);
        self.applied.clone_from(&s.applied);
        s
    }

    /// After a successful merge: the objects (by name, from the step's effective set) it used.
    pub fn merged<'a>(&mut self, effective: &BTreeMap<String, V>, used: impl IntoIterator<Item = &'a str>) {
        self.applied = used.into_iter().filter_map(|n| effective.get(n).map(|v| (n.to_string(), v.clone()))).collect();
    }

    /// The holds, each with the time its hold-down ends.
    pub fn held(&self) -> Vec<Holding> {
        self.held.iter().map(|(n, h)| Holding { name: n.clone(), deleted: h.deleted, until: h.deleted_at + self.hold }).collect()
    }

    /// Whether the hold-down follows this object (the last merge used it, or it is held): its
    /// step must see whether it still exists, whichever node it selects now.
    pub fn knows(&self, name: &str) -> bool {
        self.applied.contains_key(name) || self.held.contains_key(name)
    }

    pub fn next_wake(&self) -> Option<Instant> {
        self.held.values().map(|h| h.deleted_at + self.hold).min()
    }
}

/// Parses a hold-down such as `5s`, `1500ms`, `1m30s` or `0` (off); at most [`MAX`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let d: jiff::SignedDuration = s.parse().map_err(|e| format!("not a duration ({e}); examples: 5s, 1500ms, 1m30s, 0"))?;
    let d = Duration::try_from(d).map_err(|_| "must not be negative".to_string())?;
    if d > MAX {
        return Err(format!("at most {}s", MAX.as_secs()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test values: 0 advertises nothing, anything else advertises.
    fn adv(v: &u32) -> bool {
        *v != 0
    }

    fn map(items: &[(&str, u32)]) -> BTreeMap<String, u32> {
        items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    const HOLD: Duration = Duration::from_secs(5);

    #[test]
    fn deletion_of_a_merged_object_is_held_then_withdrawn() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD, adv);
        let s = h.advance(&map(&[("a", 1), ("b", 2)]), t0);
        assert_eq!(s.effective, map(&[("a", 1), ("b", 2)]));
        h.merged(&s.effective, ["a", "b"]);
        assert!(h.knows("a") && h.knows("b") && !h.knows("c"), "it follows what the merge used");

        // b deleted: still merged, with its last content, until t0+1s+5s
        let t1 = t0 + Duration::from_secs(1);
        let s = h.advance(&map(&[("a", 1)]), t1);
        assert_eq!(s.effective, map(&[("a", 1), ("b", 2)]));
        assert_eq!(s.started, vec!["b".to_string()]);
        assert_eq!(s.next_wake, Some(t1 + HOLD));
        h.merged(&s.effective, ["a", "b"]);

        // a change of a's content applies at once while b is held
        let s = h.advance(&map(&[("a", 7)]), t1 + Duration::from_secs(2));
        assert_eq!(s.effective, map(&[("a", 7), ("b", 2)]));
        assert!(s.started.is_empty() && s.expired.is_empty());
        assert_eq!(s.next_wake, Some(t1 + HOLD), "the hold-down does not restart");
        h.merged(&s.effective, ["a", "b"]);

        // just before the end: held; at the end: withdrawn
        let s = h.advance(&map(&[("a", 7)]), t1 + HOLD - Duration::from_millis(1));
        assert!(s.effective.contains_key("b"));
        let s = h.advance(&map(&[("a", 7)]), t1 + HOLD);
        assert_eq!(s.effective, map(&[("a", 7)]));
        assert_eq!(s.expired, vec!["b".to_string()]);
        assert_eq!(s.next_wake, None);
        assert!(h.held().is_empty());
        assert!(!h.knows("b"), "withdrawn: no longer followed");
        // an expired deletion is never held again, even if the next merge fails
        let s = h.advance(&map(&[("a", 7)]), t1 + HOLD + Duration::from_secs(1));
        assert_eq!(s.effective, map(&[("a", 7)]));
        assert!(s.started.is_empty());
    }

    #[test]
    fn recreation_within_the_hold_down_cancels_it_with_the_new_content() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD, adv);
        let s = h.advance(&map(&[("metallb-n1", 1)]), t0);
        h.merged(&s.effective, ["metallb-n1"]);
        let s = h.advance(&map(&[]), t0 + Duration::from_millis(300));
        assert_eq!(s.effective, map(&[("metallb-n1", 1)]));
        h.merged(&s.effective, ["metallb-n1"]);
        // recreated 3.35 s later (what MetalLB's speaker does), same content: nothing changes
        let s = h.advance(&map(&[("metallb-n1", 1)]), t0 + Duration::from_millis(3650));
        assert_eq!(s.effective, map(&[("metallb-n1", 1)]));
        assert_eq!(s.cancelled, vec!["metallb-n1".to_string()]);
        assert_eq!(s.next_wake, None);
        h.merged(&s.effective, ["metallb-n1"]);
        // deleted again later: a fresh hold-down
        let t2 = t0 + Duration::from_secs(20);
        let s = h.advance(&map(&[]), t2);
        assert_eq!(s.next_wake, Some(t2 + HOLD));
        // recreated with other content: the new content counts
        let s = h.advance(&map(&[("metallb-n1", 9)]), t2 + Duration::from_secs(1));
        assert_eq!(s.effective, map(&[("metallb-n1", 9)]));
    }

    #[test]
    fn only_objects_of_the_last_merge_are_held() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD, adv);
        // "bad" was refused (or selects another node): the merge used only "a"
        let s = h.advance(&map(&[("a", 1), ("bad", 2)]), t0);
        h.merged(&s.effective, ["a"]);
        let s = h.advance(&map(&[("a", 1)]), t0 + Duration::from_secs(1));
        assert_eq!(s.effective, map(&[("a", 1)]), "a refused object's deletion applies at once");
        assert!(s.started.is_empty());
        // a new object that goes away before any merge used it is not held either
        let s = h.advance(&map(&[("a", 1), ("new", 3)]), t0 + Duration::from_secs(2));
        assert_eq!(s.effective.len(), 2);
        let s = h.advance(&map(&[("a", 1)]), t0 + Duration::from_secs(3));
        assert_eq!(s.effective, map(&[("a", 1)]));
    }

    #[test]
    fn an_emptied_object_is_held_like_a_deletion() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD, adv);
        let s = h.advance(&map(&[("a", 1), ("b", 2)]), t0);
        h.merged(&s.effective, ["a", "b"]);
        // b written with nothing to advertise (MetalLB's speaker on some restarts): held
        let s = h.advance(&map(&[("a", 1), ("b", 0)]), t0 + Duration::from_secs(1));
        assert_eq!(s.effective, map(&[("a", 1), ("b", 2)]));
        assert_eq!(s.started, vec!["b".to_string()]);
        assert!(!h.held()[0].deleted, "emptied, not deleted");
        h.merged(&s.effective, ["a", "b"]);
        // its content back 3 s later: the hold ends with the new content
        let s = h.advance(&map(&[("a", 1), ("b", 5)]), t0 + Duration::from_secs(4));
        assert_eq!(s.effective, map(&[("a", 1), ("b", 5)]));
        assert_eq!(s.cancelled, vec!["b".to_string()]);
        h.merged(&s.effective, ["a", "b"]);
        // emptied for good: the empty content applies when the hold-down ends, and is not held again
        let t1 = t0 + Duration::from_secs(10);
        h.advance(&map(&[("a", 1), ("b", 0)]), t1);
        let s = h.advance(&map(&[("a", 1), ("b", 0)]), t1 + HOLD);
        assert_eq!(s.effective, map(&[("a", 1), ("b", 0)]));
        assert_eq!(s.expired, vec!["b".to_string()]);
        h.merged(&s.effective, ["a", "b"]);
        let s = h.advance(&map(&[("a", 1), ("b", 0)]), t1 + HOLD + Duration::from_secs(1));
        assert!(s.started.is_empty() && s.next_wake.is_none());
        // a prefix less while others stay is an ordinary change: at once
        let s = h.advance(&map(&[("a", 3), ("b", 0)]), t1 + HOLD + Duration::from_secs(2));
        assert_eq!(s.effective, map(&[("a", 3), ("b", 0)]));
        assert!(s.started.is_empty());
    }

    #[test]
    fn deleted_then_recreated_empty_stays_held_until_it_advertises() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD, adv);
        let s = h.advance(&map(&[("n1", 4)]), t0);
        h.merged(&s.effective, ["n1"]);
        h.advance(&map(&[]), t0 + Duration::from_millis(300));
        let s = h.advance(&map(&[("n1", 0)]), t0 + Duration::from_secs(2));
        assert_eq!(s.effective, map(&[("n1", 4)]));
        assert!(s.cancelled.is_empty());
        assert_eq!(s.next_wake, Some(t0 + Duration::from_millis(300) + HOLD), "the hold-down does not restart");
        let s = h.advance(&map(&[("n1", 4)]), t0 + Duration::from_secs(4));
        assert_eq!(s.cancelled, vec!["n1".to_string()]);
        assert_eq!(s.effective, map(&[("n1", 4)]));
    }

    #[test]
    fn several_deletions_wake_at_the_earliest_end() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD, adv);
        let s = h.advance(&map(&[("a", 1), ("b", 2), ("c", 3)]), t0);
        h.merged(&s.effective, ["a", "b", "c"]);
        let s = h.advance(&map(&[("b", 2), ("c", 3)]), t0 + Duration::from_secs(1));
        h.merged(&s.effective, ["a", "b", "c"]);
        let s = h.advance(&map(&[("c", 3)]), t0 + Duration::from_secs(3));
        assert_eq!(s.next_wake, Some(t0 + Duration::from_secs(6)));
        assert_eq!(h.held().len(), 2);
        let s = h.advance(&map(&[("c", 3)]), t0 + Duration::from_secs(6));
        assert_eq!(s.expired, vec!["a".to_string()]);
        assert_eq!(s.effective, map(&[("b", 2), ("c", 3)]));
        assert_eq!(s.next_wake, Some(t0 + Duration::from_secs(8)));
    }

    #[test]
    fn zero_hold_down_holds_nothing() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(Duration::ZERO, adv);
        let s = h.advance(&map(&[("a", 1)]), t0);
        h.merged(&s.effective, ["a"]);
        let s = h.advance(&map(&[]), t0);
        assert!(s.effective.is_empty() && s.started.is_empty() && s.next_wake.is_none());
    }

    #[test]
    fn durations_parse_and_are_bounded() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("2h").unwrap_err().contains("at most"));
        assert!(parse_duration("soon").is_err());
    }
}
