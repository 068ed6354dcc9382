//! Per-object isolation: one object's invalid or conflicting generation never blocks another's.
//!
//! Pure: given the node's inputs and the generations in effect before (the ledger), decides
//! for every selected FRRConfiguration which generation is in effect, and returns the merged
//! model of exactly those. The rule, in order:
//!
//! 1. When the current generations of all selected objects merge cleanly, all of them apply.
//! 2. Otherwise the generations already in effect (the ledger) are taken first: all of them
//!    when they merge together, else one by one in the order below, each kept when it still
//!    merges with those kept before it.
//! 3. Then the current generations not yet in effect join, in the order below: all of them
//!    when they merge with what is kept; otherwise the first half and then the second half,
//!    each tried the same way, down to single objects. An object whose current generation
//!    does not merge keeps its generation in effect ("held at last good") if it has one, and
//!    is otherwise left out. (With conflicts between pairs of objects, as almost all are, this
//!    is the same as trying the objects one by one in order; it costs about log2(n) merges per
//!    refused object instead of n.)
//!
//! The order is: the older `metadata.creationTimestamp` first, then namespace/name. So what is
//! in effect stays, and among newcomers the older object wins. Because the ledger is an input,
//! the same ledger and the same objects always give the same decisions: an agent that restarts
//! with its persisted ledger changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{compose, obj_ref, selector_matches, Composition, Error, Errors, ObjRef, Settings, Snapshot};
use crate::api::{FRRConfiguration, FRRConfigurationSpec};

/// The generation of one object in effect on the node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InEffect {
    /// The object's uid: a deleted and recreated object starts afresh.
    pub uid: String,
    pub generation: i64,
    /// The spec of that generation. `None` when it could not be kept (the persisted form leaves
    /// out specs holding an inline password): then only the current generation, if it is this
    /// one, can be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<FRRConfigurationSpec>,
}

/// The generations in effect, by object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub objects: BTreeMap<String, InEffect>,
}

/// What happened to one selected object.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Its current generation is in effect.
    Applied,
    /// Its current generation is refused; an earlier one stays in effect.
    HeldAtLastGood { in_effect: i64, errors: Errors },
    /// Its current generation is refused and it has no earlier one: nothing of it is in effect.
    LeftOut { errors: Errors },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObjectDecision {
    pub obj: ObjRef,
    /// The generation the decision is about (the object's current one).
    pub generation: i64,
    pub decision: Decision,
}

impl ObjectDecision {
    /// `Applied`, `HeldAtLastGood` or `LeftOut`, as a condition reason.
    pub fn reason(&self) -> &'static str {
        match self.decision {
            Decision::Applied => "Applied",
            Decision::HeldAtLastGood { .. } => "HeldAtLastGood",
            Decision::LeftOut { .. } => "LeftOut",
        }
    }

    /// One line for users: what is in effect and why the current generation is not.
    pub fn message(&self) -> String {
        match &self.decision {
            Decision::Applied => format!("generation {} is in effect", self.generation),
            Decision::HeldAtLastGood { in_effect, errors } => {
                format!("generation {} is refused, generation {in_effect} stays in effect: {}", self.generation, one_line(errors))
            }
            Decision::LeftOut { errors } => format!("generation {} is refused, nothing of this object is in effect: {}", self.generation, one_line(errors)),
        }
    }
}

fn one_line(e: &Errors) -> String {
    e.to_string().replace('\n', "; ")
}

#[derive(Clone, Debug, PartialEq)]
pub struct Isolated {
    /// The merged model of the generations in effect.
    pub composition: Composition,
    /// Every selected object, sorted.
    pub decisions: Vec<ObjectDecision>,
    /// The generations in effect now (to be kept for the next run).
    pub ledger: Ledger,
}

impl Isolated {
    pub fn held(&self) -> usize {
        self.decisions.iter().filter(|d| matches!(d.decision, Decision::HeldAtLastGood { .. })).count()
    }
    pub fn left_out(&self) -> usize {
        self.decisions.iter().filter(|d| matches!(d.decision, Decision::LeftOut { .. })).count()
    }
}

struct Candidate<'a> {
    obj: ObjRef,
    current: &'a FRRConfiguration,
    /// The generation in effect before, as an object, when usable.
    last_good: Option<(i64, FRRConfiguration)>,
}

fn generation(c: &FRRConfiguration) -> i64 {
    c.metadata.generation.unwrap_or(0)
}

/// The errors of a failed attempt that concern `obj` (all of them when none names it).
fn concerning(errors: Errors, obj: &ObjRef) -> Errors {
    let mine: Vec<Error> = errors.0.iter().filter(|e| e.objects().contains(&obj)).cloned().collect();
    if mine.is_empty() {
        errors
    } else {
        Errors::new(mine)
    }
}

/// Decides the generations in effect (see the module documentation). Fails only on errors
/// no object causes (the agent's settings).
pub fn isolate(settings: &Settings, snap: Snapshot<'_>, ledger: &Ledger) -> Result<Isolated, Errors> {
    isolate_refusing(settings, snap, ledger, &Refusals::new())
}

/// Generations refused by a check outside the merge (FRR's own syntax check of what an object
/// brings, in the agent): by object, the refused generation and why.
pub type Refusals = BTreeMap<ObjRef, (i64, Errors)>;

/// As [`isolate`], with `refused` generations refused as if they did not merge: such an object
/// keeps its generation in effect when it has another one, and is otherwise left out. An
/// entry for a generation the object no longer has is ignored.
pub fn isolate_refusing(settings: &Settings, snap: Snapshot<'_>, ledger: &Ledger, refused_outside: &Refusals) -> Result<Isolated, Errors> {
    // Global settings first: with those wrong, nothing can apply.
    let empty = compose(settings, Snapshot { configs: &[], ..snap })?;

    // The selected objects (an invalid selector is the current generation's error), deduplicated.
    let mut current: BTreeMap<ObjRef, &FRRConfiguration> = BTreeMap::new();
    for c in snap.configs {
        let obj = obj_ref(c);
        if *obj.namespace != *settings.namespace {
            continue;
        }
        if let Some(sel) = &c.spec.node_selector {
            if selector_matches(sel, snap.node_labels) == Ok(false) {
                continue;
            }
        }
        current.entry(obj).or_insert(c);
    }
    let blocked: BTreeMap<ObjRef, Errors> =
        current.iter().filter_map(|(o, c)| refused_outside.get(o).filter(|(g, _)| *g == generation(c)).map(|(_, e)| (o.clone(), e.clone()))).collect();
    // 1. everything at once, when nothing is refused outside the merge
    if blocked.is_empty() {
        let all: Vec<FRRConfiguration> = current.values().map(|c| (*c).clone()).collect();
        if let Ok(composition) = compose(settings, Snapshot { configs: &all, ..snap }) {
            let decisions = current.iter().map(|(o, c)| ObjectDecision { obj: o.clone(), generation: generation(c), decision: Decision::Applied }).collect();
            let objects = current.iter().map(|(o, c)| (o.to_string(), in_effect(c))).collect();
            return Ok(Isolated { composition, decisions, ledger: Ledger { objects } });
        }
    }

    let mut candidates: Vec<Candidate> = current
        .iter()
        .map(|(obj, c)| {
            let uid = c.metadata.uid.clone().unwrap_or_default();
            let last_good = ledger.objects.get(&obj.to_string()).filter(|e| e.uid == uid).and_then(|e| {
                let spec = match &e.spec {
                    Some(s) => s.clone(),
                    None if e.generation == generation(c) => c.spec.clone(),
                    None => return None,
                };
                let mut old = (*c).clone();
                old.spec = spec;
                old.metadata.generation = Some(e.generation);
                Some((e.generation, old))
            });
            Candidate { obj: obj.clone(), current: c, last_good }
        })
        .collect();
    candidates.sort_by(|a, b| {
        let key = |c: &Candidate| {
            let t = c.current.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (t.is_none(), t, c.obj.clone())
        };
        key(a).cmp(&key(b))
    });

    // 2. the generations in effect that still merge, in order
    let mut accepted: Vec<(ObjRef, FRRConfiguration)> = Vec::new();
    let try_with = |accepted: &[(ObjRef, FRRConfiguration)], obj: &ObjRef, c: &FRRConfiguration| {
        let mut set: Vec<FRRConfiguration> = accepted.iter().filter(|(o, _)| o != obj).map(|(_, c)| c.clone()).collect();
        set.push(c.clone());
        compose(settings, Snapshot { configs: &set, ..snap })
    };
    // (usually they all still merge: one compose instead of one per object)
    let in_effect_before: Vec<(ObjRef, FRRConfiguration)> =
        candidates.iter().filter_map(|c| c.last_good.as_ref().map(|(_, old)| (c.obj.clone(), old.clone()))).collect();
    let together: Vec<FRRConfiguration> = in_effect_before.iter().map(|(_, c)| c.clone()).collect();
    if compose(settings, Snapshot { configs: &together, ..snap }).is_ok() {
        accepted = in_effect_before;
    } else {
        for (obj, old) in in_effect_before {
            if try_with(&accepted, &obj, &old).is_ok() {
                accepted.push((obj, old));
            }
        }
    }
    // 3. the current generations not yet kept, in order, in groups: a group joins when it
    //    merges with what is kept, otherwise its first half and then its second half are tried
    //    the same way; a single object that does not merge is refused. (One bad object among n
    //    costs about log2(n) merges, not n.)
    // (a generation refused outside the merge never joins; if it was in effect, it leaves)
    accepted.retain(|(o, c)| !(blocked.contains_key(o) && refused_outside.get(o).is_some_and(|(g, _)| *g == generation(c))));
    let pending: Vec<&Candidate> =
        candidates.iter().filter(|c| !blocked.contains_key(&c.obj) && kept_generation(&accepted, &c.obj) != Some(generation(c.current))).collect();
    let mut refused: BTreeMap<ObjRef, Errors> = blocked;
    let mut work: Vec<std::ops::Range<usize>> = Vec::new();
    work.push(0..pending.len());
    while let Some(r) = work.pop() {
        if r.is_empty() {
            continue;
        }
        let group = &pending[r.clone()];
        let members: BTreeSet<&ObjRef> = group.iter().map(|c| &c.obj).collect();
        let mut set: Vec<FRRConfiguration> = accepted.iter().filter(|(o, _)| !members.contains(o)).map(|(_, c)| c.clone()).collect();
        set.extend(group.iter().map(|c| c.current.clone()));
        match compose(settings, Snapshot { configs: &set, ..snap }) {
            Ok(_) => {
                accepted.retain(|(o, _)| !members.contains(o));
                accepted.extend(group.iter().map(|c| (c.obj.clone(), c.current.clone())));
            }
            Err(errors) if group.len() == 1 => {
                refused.insert(group[0].obj.clone(), concerning(errors, &group[0].obj));
            }
            Err(_) => {
                // a stack: the first half is tried first
                let mid = r.start + r.len() / 2;
                work.push(mid..r.end);
                work.push(r.start..mid);
            }
        }
    }
    let mut decisions = Vec::new();
    for cand in &candidates {
        let decision = match refused.remove(&cand.obj) {
            None => Decision::Applied,
            Some(errors) => match kept_generation(&accepted, &cand.obj) {
                Some(in_effect) => Decision::HeldAtLastGood { in_effect, errors },
                None => Decision::LeftOut { errors },
            },
        };
        decisions.push(ObjectDecision { obj: cand.obj.clone(), generation: generation(cand.current), decision });
    }
    decisions.sort_by(|a, b| a.obj.cmp(&b.obj));
    let set: Vec<FRRConfiguration> = accepted.iter().map(|(_, c)| c.clone()).collect();
    // every step above kept the accepted set mergeable; the empty set is the fallback
    let composition = compose(settings, Snapshot { configs: &set, ..snap }).unwrap_or(empty);
    let objects = accepted.iter().map(|(o, c)| (o.to_string(), in_effect(c))).collect();
    Ok(Isolated { composition, decisions, ledger: Ledger { objects } })
}

/// The generation of `obj` in the kept set, if it is there.
fn kept_generation(accepted: &[(ObjRef, FRRConfiguration)], obj: &ObjRef) -> Option<i64> {
    accepted.iter().find(|(o, _)| o == obj).map(|(_, c)| generation(c))
}

fn in_effect(c: &FRRConfiguration) -> InEffect {
    InEffect { uid: c.metadata.uid.clone().unwrap_or_default(), generation: generation(c), spec: Some(c.spec.clone()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LogLevel;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn settings() -> Settings {
        Settings { namespace: "ns".into(), hostname: "node1".into(), log_level: LogLevel::Info, always_block: vec![], node_has_ipv4: true, frr_version: None }
    }

    /// An object from YAML spec text, with uid, generation and creation time (seconds).
    fn obj(name: &str, generation: i64, created: i64, spec: &str) -> FRRConfiguration {
        let spec: FRRConfigurationSpec = serde_yaml::from_str(spec).unwrap();
        let mut c = FRRConfiguration::new(name, spec);
        c.metadata.namespace = Some("ns".into());
        c.metadata.uid = Some(format!("uid-{name}"));
        c.metadata.generation = Some(generation);
        c.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(created).unwrap()));
        c
    }

    /// MetalLB-like: a neighbor and the prefixes it advertises.
    fn metallb(generation: i64, prefixes: &[&str]) -> FRRConfiguration {
        let list = prefixes.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        obj("metallb", generation, 100, &format!("bgp: {{routers: [{{asn: 64512, prefixes: [{list}], neighbors: [{{address: 192.0.2.1, asn: 64513, toAdvertise: {{allowed: {{prefixes: [{list}]}}}}}}]}}]}}"))
    }

    /// An admin's object for the same neighbor, with timers.
    fn admin(generation: i64, created: i64, hold: &str) -> FRRConfiguration {
        obj(
            "admin",
            generation,
            created,
            &format!("bgp: {{routers: [{{asn: 64512, neighbors: [{{address: 192.0.2.1, asn: 64513, holdTime: {hold}, keepaliveTime: 10s}}]}}]}}"),
        )
    }

    fn run(configs: &[FRRConfiguration], ledger: &Ledger) -> Isolated {
        let labels = BTreeMap::new();
        let secrets = BTreeMap::new();
        isolate(&settings(), Snapshot { node_labels: &labels, configs, secrets: &secrets }, ledger).unwrap()
    }

    fn reasons(i: &Isolated) -> Vec<(String, &'static str)> {
        i.decisions.iter().map(|d| (d.obj.name.to_string(), d.reason())).collect()
    }

    fn advertised(i: &Isolated) -> Vec<String> {
        i.composition.model.routers.iter().flat_map(|r| r.prefixes.keys().map(|p| p.to_string())).collect()
    }

    fn hold_time(i: &Isolated) -> u64 {
        i.composition.model.routers[0].neighbors[0].session.timers.hold
    }

    /// A generation refused outside the merge (FRR's syntax check, in the agent): held at
    /// its last good generation or left out, while everything else applies; a new generation
    /// of it is tried again.
    #[test]
    fn a_generation_refused_outside_the_merge_is_held_or_left_out() {
        let labels = BTreeMap::new();
        let secrets = BTreeMap::new();
        let raw = |g: i64| obj("raw", g, 50, "raw: {rawConfig: \"ip prefix-lisst x\"}");
        let refusal = |g: i64| {
            let e = Errors::new(vec![Error::Invalid { object: obj_ref(&raw(g)), field: "spec.raw.rawConfig".into(), reason: "FRR refuses it".into() }]);
            Refusals::from([(obj_ref(&raw(g)), (g, e))])
        };
        let go = |configs: &[FRRConfiguration], ledger: &Ledger, r: &Refusals| {
            isolate_refusing(&settings(), Snapshot { node_labels: &labels, configs, secrets: &secrets }, ledger, r).unwrap()
        };
        // never in effect: left out; MetalLB's object applies
        let i = go(&[metallb(1, &["198.51.100.1/32"]), raw(1)], &Ledger::default(), &refusal(1));
        let by_name = |i: &Isolated, n: &str| i.decisions.iter().find(|d| &*d.obj.name == n).unwrap().decision.clone();
        assert_eq!(by_name(&i, "metallb"), Decision::Applied);
        assert!(matches!(by_name(&i, "raw"), Decision::LeftOut { .. }), "{:?}", by_name(&i, "raw"));
        assert!(i.composition.model.raw.is_empty());
        assert!(!i.ledger.objects.contains_key("ns/raw"));
        // generation 1 in effect, generation 2 refused: 1 stays
        let before = run(&[metallb(1, &["198.51.100.1/32"]), raw(1)], &Ledger::default());
        let i = go(&[metallb(1, &["198.51.100.1/32"]), raw(2)], &before.ledger, &refusal(2));
        assert!(matches!(by_name(&i, "raw"), Decision::HeldAtLastGood { in_effect: 1, .. }), "{:?}", by_name(&i, "raw"));
        // a refusal of a generation the object no longer has is ignored
        let i = go(&[metallb(1, &["198.51.100.1/32"]), raw(3)], &before.ledger, &refusal(2));
        assert_eq!(by_name(&i, "raw"), Decision::Applied);
    }

    #[test]
    fn everything_applies_when_everything_merges() {
        let i = run(&[metallb(1, &["203.0.113.1/32"]), admin(1, 50, "30s")], &Ledger::default());
        assert_eq!(reasons(&i), [("admin".into(), "Applied"), ("metallb".into(), "Applied")]);
        assert_eq!(i.ledger.objects.len(), 2);
        assert_eq!(hold_time(&i), 30);
    }

    #[test]
    fn a_conflicting_newcomer_is_left_out_and_the_incumbent_keeps_changing() {
        // MetalLB's object is in effect; an admin object (older!) arrives with conflicting timers
        let mut two = metallb(1, &["203.0.113.1/32"]);
        two.spec.bgp.routers[0].neighbors[0].hold_time = Some("90s".into());
        two.spec.bgp.routers[0].neighbors[0].keepalive_time = Some("30s".into());
        let first = run(&[two.clone()], &Ledger::default());
        let i = run(&[two.clone(), admin(1, 50, "30s")], &first.ledger);
        assert_eq!(reasons(&i), [("admin".into(), "LeftOut"), ("metallb".into(), "Applied")]);
        let d = &i.decisions[0];
        let msg = d.message();
        assert!(msg.contains("ns/metallb") && msg.contains("holdTime") && msg.contains("generation 1 is refused"), "{msg}");
        assert_eq!(hold_time(&i), 90);
        // MetalLB adds a service: it reaches the model although the admin object still conflicts
        let mut three = two.clone();
        three.metadata.generation = Some(2);
        three.spec.bgp.routers[0].prefixes.push("203.0.113.2/32".into());
        three.spec.bgp.routers[0].neighbors[0].to_advertise.allowed.prefixes.push("203.0.113.2/32".into());
        let j = run(&[three.clone(), admin(1, 50, "30s")], &i.ledger);
        assert_eq!(reasons(&j), [("admin".into(), "LeftOut"), ("metallb".into(), "Applied")]);
        assert_eq!(advertised(&j), ["203.0.113.1/32", "203.0.113.2/32"]);
        // the admin fixes the timers: both apply
        let mut fixed = admin(2, 50, "90s");
        fixed.spec.bgp.routers[0].neighbors[0].keepalive_time = Some("30s".into());
        let k = run(&[three, fixed], &j.ledger);
        assert_eq!(reasons(&k), [("admin".into(), "Applied"), ("metallb".into(), "Applied")]);
        assert_eq!(k.ledger.objects["ns/admin"].generation, 2);
    }

    #[test]
    fn among_newcomers_the_older_wins_then_the_name() {
        let older = admin(1, 50, "30s");
        let mut younger = admin(1, 60, "90s");
        younger.metadata.name = Some("aaa-younger".into());
        younger.metadata.uid = Some("uid-y".into());
        let i = run(&[younger.clone(), older.clone()], &Ledger::default());
        assert_eq!(reasons(&i), [("aaa-younger".into(), "LeftOut"), ("admin".into(), "Applied")]);
        // same creation time: namespace/name decides
        younger.metadata.creation_timestamp = older.metadata.creation_timestamp.clone();
        let j = run(&[older, younger], &Ledger::default());
        assert_eq!(reasons(&j), [("aaa-younger".into(), "Applied"), ("admin".into(), "LeftOut")]);
    }

    #[test]
    fn a_bad_update_keeps_the_previous_generation_in_effect() {
        let good = admin(1, 50, "30s");
        let first = run(&[good.clone(), metallb(1, &["203.0.113.1/32"])], &Ledger::default());
        // generation 2 is invalid on its own (keepalive above hold)
        let mut bad = admin(2, 50, "5s");
        bad.spec.bgp.routers[0].neighbors[0].keepalive_time = Some("10s".into());
        let i = run(&[bad.clone(), metallb(2, &["203.0.113.1/32", "203.0.113.2/32"])], &first.ledger);
        assert_eq!(reasons(&i), [("admin".into(), "HeldAtLastGood"), ("metallb".into(), "Applied")]);
        assert_eq!(hold_time(&i), 30, "generation 1's timers stay");
        assert_eq!(advertised(&i), ["203.0.113.1/32", "203.0.113.2/32"]);
        let Decision::HeldAtLastGood { in_effect, errors } = &i.decisions[0].decision else { panic!() };
        assert_eq!(*in_effect, 1);
        assert!(errors.to_string().contains("keepaliveTime"), "{errors}");
        assert_eq!(i.ledger.objects["ns/admin"].generation, 1);
        // the same inputs and ledger (an agent restart) give the same decisions and model
        let again = run(&[bad, metallb(2, &["203.0.113.1/32", "203.0.113.2/32"])], &i.ledger);
        assert_eq!(again, i);
    }

    #[test]
    fn a_recreated_object_does_not_inherit_the_old_ones_generation() {
        let first = run(&[admin(1, 50, "30s")], &Ledger::default());
        let mut bad = admin(1, 70, "5s");
        bad.spec.bgp.routers[0].neighbors[0].keepalive_time = Some("10s".into());
        bad.metadata.uid = Some("uid-new".into());
        let i = run(&[bad], &first.ledger);
        assert_eq!(reasons(&i), [("admin".into(), "LeftOut")]);
        assert!(i.ledger.objects.is_empty());
        assert!(i.composition.model.routers.is_empty());
    }

    #[test]
    fn without_a_kept_spec_only_the_same_generation_can_be_held() {
        let first = run(&[admin(1, 50, "30s"), metallb(1, &["203.0.113.1/32"])], &Ledger::default());
        let mut ledger = first.ledger.clone();
        ledger.objects.get_mut("ns/admin").unwrap().spec = None;
        // unchanged: still in effect
        let same = run(&[admin(1, 50, "30s"), metallb(1, &["203.0.113.1/32"])], &ledger);
        assert_eq!(reasons(&same), [("admin".into(), "Applied"), ("metallb".into(), "Applied")]);
        // a bad generation 2 cannot fall back to a spec that was not kept
        let mut bad = admin(2, 50, "5s");
        bad.spec.bgp.routers[0].neighbors[0].keepalive_time = Some("10s".into());
        let i = run(&[bad, metallb(1, &["203.0.113.1/32"])], &ledger);
        assert_eq!(reasons(&i), [("admin".into(), "LeftOut"), ("metallb".into(), "Applied")]);
    }

    #[test]
    fn a_node_selector_that_no_longer_matches_drops_the_object() {
        let first = run(&[admin(1, 50, "30s")], &Ledger::default());
        let mut moved = admin(2, 50, "30s");
        moved.spec.node_selector = Some(serde_yaml::from_str("matchLabels: {rack: other}").unwrap());
        let i = run(&[moved], &first.ledger);
        assert!(i.decisions.is_empty() && i.ledger.objects.is_empty());
    }

    #[test]
    fn decisions_do_not_depend_on_input_order() {
        let first = run(&[metallb(1, &["203.0.113.1/32"])], &Ledger::default());
        let mut other = admin(1, 60, "30s");
        other.metadata.name = Some("other".into());
        other.metadata.uid = Some("uid-other".into());
        let inputs = vec![metallb(2, &["203.0.113.1/32", "203.0.113.2/32"]), admin(1, 50, "90s"), other];
        let expected = run(&inputs, &first.ledger);
        assert_eq!(reasons(&expected), [("admin".into(), "Applied"), ("metallb".into(), "Applied"), ("other".into(), "LeftOut")]);
        for rot in 1..inputs.len() {
            let mut v = inputs.clone();
            v.rotate_left(rot);
            assert_eq!(run(&v, &first.ledger), expected);
            v.reverse();
            assert_eq!(run(&v, &first.ledger), expected);
        }
    }

    #[test]
    fn in_groups_newcomers_join_as_if_one_by_one() {
        // nine newcomers, each with its own neighbor, except: o4 conflicts with the older o1
        // (port), and o7 conflicts only with o4 (timers), which is refused, so o7 joins
        let mut v = Vec::new();
        for i in 0..9 {
            let spec = match i {
                1 => "bgp: {routers: [{asn: 64512, neighbors: [{address: 192.0.2.1, asn: 64513, port: 180}]}]}".to_string(),
                4 => "bgp: {routers: [{asn: 64512, neighbors: [{address: 192.0.2.1, asn: 64513, port: 181, holdTime: 30s, keepaliveTime: 10s}]}]}".to_string(),
                7 => "bgp: {routers: [{asn: 64512, neighbors: [{address: 192.0.2.1, asn: 64513, holdTime: 90s, keepaliveTime: 30s}]}]}".to_string(),
                _ => format!("bgp: {{routers: [{{asn: 64512, neighbors: [{{address: 192.0.2.{}, asn: 64513}}]}}]}}", 10 + i),
            };
            v.push(obj(&format!("o{i}"), 1, 100 + i as i64, &spec));
        }
        let i = run(&v, &Ledger::default());
        let refused: Vec<String> = i.decisions.iter().filter(|d| d.reason() != "Applied").map(|d| d.obj.name.to_string()).collect();
        assert_eq!(refused, ["o4"]);
        let n = &i.composition.model.routers[0].neighbors[0];
        assert_eq!((n.session.port, n.session.timers.hold), (180, 90));
        assert!(i.decisions[4].message().contains("ns/o1") && i.decisions[4].message().contains("port"), "{}", i.decisions[4].message());
    }

    #[test]
    fn settings_errors_stop_everything() {
        let labels = BTreeMap::new();
        let secrets = BTreeMap::new();
        let mut s = settings();
        s.hostname = "bad host name".into();
        let r = isolate(&s, Snapshot { node_labels: &labels, configs: &[admin(1, 50, "30s")], secrets: &secrets }, &Ledger::default());
        assert!(r.is_err());
    }
}
