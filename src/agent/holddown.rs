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
//! The same restart can also write the object with part of its prefixes first (0, then 5,
//! then 12 within 60 ms with 12 Services): applied at once, the partial write withdrew the
//! missing Services for 2.7 s. So every withdrawal waits, not only a whole object's.
//!
//! Rules (pure, no clock: the caller passes `now`):
//! - Additions apply at once. A withdrawal waits: the deletion of an object, an object emptied,
//!   or one that advertises less than the last successful merge used (a prefix, a neighbor's
//!   prefix, a neighbor) keeps what it advertised there for the hold-down, merged with its
//!   current content. Only objects that the last successful merge used are held; a new
//!   object, a node label change, the deletion of an object that was refused or never
//!   selected take effect at once, and so does a change that cannot be merged with the
//!   earlier content (a router's or a neighbor's ASN changed).
//! - A hold ends when the object advertises again everything it did (a refill): its current
//!   content counts from then on. Coming back with part of it keeps the hold, merged with
//!   what came back.
//! - What is still withdrawn when the hold-down ends is withdrawn: the caller wakes at
//!   [`Step::next_wake`] and merges the current content.
//! - A zero hold-down holds nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The longest hold-down the agent accepts (a bound, so that time arithmetic cannot overflow
/// and a typo cannot keep a withdrawn object in FRR for days).
pub const MAX: Duration = Duration::from_secs(600);

/// What an object's content says for the hold-down. Pure; the agent implements it for the
/// FRRConfigurations it keeps.
pub trait Advertisement: Clone {
    /// Whether it advertises anything at all.
    fn advertises(&self) -> bool;
    /// Whether it advertises everything `earlier` did (it withdraws nothing).
    fn covers(&self, earlier: &Self) -> bool;
    /// Itself plus what `earlier` advertised and it no longer does; None when the two cannot
    /// be merged (a router's or a neighbor's ASN changed): it then applies as it is.
    fn keeping(&self, earlier: &Self) -> Option<Self>;
}

/// Why an object is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Deleted,
    /// Still there, advertising nothing.
    Emptied,
    /// Still there, advertising less.
    Withdrawing,
}

impl Why {
    fn of<V: Advertisement>(current: Option<&V>) -> Why {
        match current {
            None => Why::Deleted,
            Some(c) if !c.advertises() => Why::Emptied,
            Some(_) => Why::Withdrawing,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Why::Deleted => "deleted",
            Why::Emptied => "emptied",
            Why::Withdrawing => "withdrawing prefixes",
        }
    }
}

/// A hold, as the hold-down reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Holding {
    pub name: String,
    pub why: Why,
    /// When its hold-down ends.
    pub until: Instant,
}

/// An object that withdraws what the last merge used, and whose earlier content is still in
/// effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Held<V> {
    /// The content merged before the withdrawal.
    pub value: V,
    pub deleted_at: Instant,
    pub why: Why,
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
/// used, with the content it used; `held`: the holds so far; `hold`: the hold-down.
pub fn step<V: Advertisement>(
    current: &BTreeMap<String, V>,
    applied: &BTreeMap<String, V>,
    held: &BTreeMap<String, Held<V>>,
    now: Instant,
    hold: Duration,
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
    // what stays in effect for a held object: its earlier content, with what it has now
    let kept = |h: &Held<V>, now_there: Option<&V>| match now_there {
        None => Some(h.value.clone()),
        Some(c) => c.keeping(&h.value),
    };
    for (name, h) in held {
        let now_there = current.get(name);
        if now_there.is_some_and(|c| c.covers(&h.value)) {
            out.cancelled.push(name.clone());
        } else if now.saturating_duration_since(h.deleted_at) >= hold {
            out.expired.push(name.clone());
            // the next merge records it again as it is then (if it exists)
            out.applied.remove(name);
        } else if let Some(v) = kept(h, now_there) {
            out.effective.insert(name.clone(), v);
            out.held.insert(name.clone(), Held { why: Why::of(now_there), ..h.clone() });
        } else {
            // cannot be merged with what it was: the change applies as it is
            out.cancelled.push(name.clone());
        }
    }
    if !hold.is_zero() {
        for (name, value) in applied {
            if held.contains_key(name) {
                continue;
            }
            let now_there = current.get(name);
            if now_there.is_some_and(|c| c.covers(value)) {
                continue;
            }
            let h = Held { value: value.clone(), deleted_at: now, why: Why::of(now_there) };
            if let Some(v) = kept(&h, now_there) {
                out.started.push(name.clone());
                out.effective.insert(name.clone(), v);
                out.held.insert(name.clone(), h);
            }
        }
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
}

impl<V: Advertisement> HoldDown<V> {
    pub fn new(hold: Duration) -> Self {
        HoldDown { hold: hold.min(MAX), applied: BTreeMap::new(), held: BTreeMap::new() }
    }

    /// Runs [`step`] and keeps its state; returns the step for logging and merging.
    pub fn advance(&mut self, current: &BTreeMap<String, V>, now: Instant) -> Step<V> {
        let s = step(current, &self.applied, &self.held, now, self.hold);
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
        self.held.iter().map(|(n, h)| Holding { name: n.clone(), why: h.why, until: h.deleted_at + self.hold }).collect()
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

    /// Test values: each bit a prefix; 0 advertises nothing.
    impl Advertisement for u32 {
        fn advertises(&self) -> bool {
            *self != 0
        }
        fn covers(&self, earlier: &Self) -> bool {
            self & earlier == *earlier
        }
        fn keeping(&self, earlier: &Self) -> Option<Self> {
            // bit 31: a change that cannot be merged with the earlier content
            (self & (1 << 31) == 0).then_some(self | earlier)
        }
    }

    fn map(items: &[(&str, u32)]) -> BTreeMap<String, u32> {
        items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    const HOLD: Duration = Duration::from_secs(5);

    #[test]
    fn deletion_of_a_merged_object_is_held_then_withdrawn() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD);
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
        let mut h = HoldDown::new(HOLD);
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
        let mut h = HoldDown::new(HOLD);
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
        let mut h = HoldDown::new(HOLD);
        let s = h.advance(&map(&[("a", 1), ("b", 2)]), t0);
        h.merged(&s.effective, ["a", "b"]);
        // b written with nothing to advertise (MetalLB's speaker on some restarts): held
        let s = h.advance(&map(&[("a", 1), ("b", 0)]), t0 + Duration::from_secs(1));
        assert_eq!(s.effective, map(&[("a", 1), ("b", 2)]));
        assert_eq!(s.started, vec!["b".to_string()]);
        assert_eq!(h.held()[0].why, Why::Emptied);
        h.merged(&s.effective, ["a", "b"]);
        // its content back 3 s later, and more: the hold ends with the new content
        let s = h.advance(&map(&[("a", 1), ("b", 6)]), t0 + Duration::from_secs(4));
        assert_eq!(s.effective, map(&[("a", 1), ("b", 6)]));
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
        // a prefix more applies at once
        let s = h.advance(&map(&[("a", 3), ("b", 0)]), t1 + HOLD + Duration::from_secs(2));
        assert_eq!(s.effective, map(&[("a", 3), ("b", 0)]));
        assert!(s.started.is_empty());
    }

    #[test]
    fn a_partial_write_withdraws_nothing_and_a_refill_ends_the_hold() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD);
        // 12 Services (bits 0-11)
        let all = 0xfff;
        let s = h.advance(&map(&[("metallb-n1", all)]), t0);
        h.merged(&s.effective, ["metallb-n1"]);
        // MetalLB's speaker restarts: 0, then 5, then 12 prefixes within 60 ms
        let s = h.advance(&map(&[("metallb-n1", 0)]), t0 + Duration::from_millis(10));
        assert_eq!(s.effective, map(&[("metallb-n1", all)]));
        assert_eq!(s.started, ["metallb-n1"]);
        h.merged(&s.effective, ["metallb-n1"]);
        let s = h.advance(&map(&[("metallb-n1", 0x1f)]), t0 + Duration::from_millis(40));
        assert_eq!(s.effective, map(&[("metallb-n1", all)]), "5 of 12 back: the 7 others stay");
        assert!(s.cancelled.is_empty());
        assert_eq!(h.held()[0].why, Why::Withdrawing);
        h.merged(&s.effective, ["metallb-n1"]);
        // a new Service during the hold applies at once
        let s = h.advance(&map(&[("metallb-n1", 0x1f | 1 << 12)]), t0 + Duration::from_millis(50));
        assert_eq!(s.effective, map(&[("metallb-n1", all | 1 << 12)]));
        h.merged(&s.effective, ["metallb-n1"]);
        let s = h.advance(&map(&[("metallb-n1", all | 1 << 12)]), t0 + Duration::from_millis(70));
        assert_eq!(s.cancelled, ["metallb-n1"]);
        assert_eq!(s.effective, map(&[("metallb-n1", all | 1 << 12)]));
        assert_eq!(s.next_wake, None);
        h.merged(&s.effective, ["metallb-n1"]);

        // a real deletion of one Service: kept for the hold-down, then withdrawn
        let t1 = t0 + Duration::from_secs(10);
        let less = (all | 1 << 12) & !1;
        let s = h.advance(&map(&[("metallb-n1", less)]), t1);
        assert_eq!(s.effective, map(&[("metallb-n1", all | 1 << 12)]));
        h.merged(&s.effective, ["metallb-n1"]);
        let s = h.advance(&map(&[("metallb-n1", less)]), t1 + HOLD);
        assert_eq!(s.expired, ["metallb-n1"]);
        assert_eq!(s.effective, map(&[("metallb-n1", less)]));
        h.merged(&s.effective, ["metallb-n1"]);
        let s = h.advance(&map(&[("metallb-n1", less)]), t1 + HOLD + Duration::from_secs(1));
        assert!(s.started.is_empty() && s.held.is_empty());

        // a change that cannot be merged with the earlier content applies at once
        let s = h.advance(&map(&[("metallb-n1", 1 << 31)]), t1 + HOLD + Duration::from_secs(2));
        assert_eq!(s.effective, map(&[("metallb-n1", 1 << 31)]));
        assert!(s.started.is_empty());
    }

    #[test]
    fn deleted_then_recreated_empty_stays_held_until_it_advertises() {
        let t0 = Instant::now();
        let mut h = HoldDown::new(HOLD);
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
        let mut h = HoldDown::new(HOLD);
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
        let mut h = HoldDown::new(Duration::ZERO);
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
