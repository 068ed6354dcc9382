//! What the agent reports, in one place (pure: no I/O, no clock): the [`Outcome`] of one
//! reconcile and its typed [`ReconcileError`]; FRRNodeState's status ([`node_status`]: the
//! `Ready`/`Degraded` conditions, [`NODE_CONDITION`] for per-object isolation and
//! [`HELD_CONDITION`] for the deletion hold-down); each FRRConfiguration's entry and condition
//! of this node ([`config_entries`], [`ObjectConditions`]); and the one rule for Kubernetes
//! conditions ([`condition`]: a condition's `lastTransitionTime` changes only when its status
//! does). `super::status` writes what is built here and sends the events.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::FRRNodeStateStatus;
use crate::core::isolation::{Decision, ObjectDecision};
use crate::core::{self, Errors, ObjRef};
use crate::frr::apply::ApplyError;
use crate::frr::redact;
use crate::render::RenderError;

/// Why a reconcile did not bring FRR to the merged configuration. The status texts are made
/// from these (the `Display` texts are redacted); each keeps the error it comes from as its
/// `source`; `category` names the kind for logs.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The agent's Node is not (yet) known.
    #[error("the Node {0} does not exist")]
    NoNode(String),
    /// The selected configurations do not merge (the core's errors, naming objects and fields).
    #[error("{0}")]
    Conversion(#[source] Errors),
    /// The merged model could not be rendered.
    #[error("rendering: {0}")]
    Render(#[source] RenderError),
    /// FRR refused the configuration (syntax check or while applying) or did not run it after
    /// applying. The message names the lines and the objects they come from.
    #[error("{message}")]
    FrrRefused {
        message: String,
        #[source]
        source: ApplyError,
    },
    /// FRR could not be reached (vtysh failed, a daemon is down, a file could not be written).
    #[error("{message}")]
    FrrUnreachable {
        message: String,
        #[source]
        source: ApplyError,
    },
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Api {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
}

impl ReconcileError {
    /// The kind of error, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::NoNode(_) => "no-node",
            ReconcileError::Conversion(_) => "conversion",
            ReconcileError::Render(_) => "render",
            ReconcileError::FrrRefused { .. } => "frr-refused",
            ReconcileError::FrrUnreachable { .. } => "frr-unreachable",
            ReconcileError::Api { .. } => "api",
        }
    }

    /// An apply's failure, with the objects each refused line comes from (redacted).
    pub fn from_apply(e: ApplyError, model: &core::Model) -> ReconcileError {
        match &e {
            ApplyError::Refused(r) | ApplyError::Failed(r) => {
                let lines: Vec<String> = r
                    .iter()
                    .map(|r| {
                        let from = crate::render::sources_for_line(model, &r.line).iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
                        format!("{}: {} (from FRRConfiguration {from})", r.line, r.message)
                    })
                    .collect();
                let what =
                    if matches!(e, ApplyError::Refused(_)) { "FRR refuses the configuration" } else { "FRR refused commands; previous configuration restored" };
                ReconcileError::FrrRefused { message: redact(&format!("{what}: {}", lines.join("; "))), source: e }
            }
            ApplyError::Drift(_) => ReconcileError::FrrRefused { message: redact(&e.to_string()), source: e },
            ApplyError::Frr(f) => ReconcileError::FrrUnreachable { message: redact(&f.to_string()), source: e },
        }
    }

    pub fn api(what: &'static str, source: kube::Error) -> ReconcileError {
        ReconcileError::Api { what, source }
    }
}

/// A deleted, emptied or shrunk FRRConfiguration whose withdrawals the hold-down keeps back.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldDeletion {
    /// namespace/name
    pub object: String,
    pub why: super::holddown::Why,
    /// The wall-clock end of its hold-down.
    pub until: jiff::Timestamp,
}

/// The outcome of one reconcile, for status.
#[derive(Debug)]
pub struct Outcome {
    pub conversion: Result<Vec<ObjRef>, Errors>,
    /// The apply's result (None: nothing was applied, e.g. a refused conversion).
    pub reload: Option<Result<(), ReconcileError>>,
    /// Generations in effect in FRR, by namespace/name.
    pub generations: BTreeMap<String, i64>,
    pub malformed: BTreeMap<String, String>,
    /// Per selected object: which generation is in effect (per-object isolation).
    pub decisions: Vec<ObjectDecision>,
    /// Deleted FRRConfigurations still in effect.
    pub held: Vec<HeldDeletion>,
}

impl Outcome {
    /// FRR runs the merged configuration.
    pub fn ok(&self) -> bool {
        self.conversion.is_ok() && matches!(self.reload, Some(Ok(())))
    }
}

/// What FRRNodeState reported last: the conditions (their transition times are kept) and the
/// reload result (a refused conversion applies nothing and keeps it).
#[derive(Clone, Debug, Default)]
pub struct Reported {
    pub conditions: Vec<Condition>,
    pub reload: Option<String>,
}

/// What FRRNodeState may hold of FRR's running configuration: the API server stores objects of
/// up to about 1.5 MB, and one node's object must never approach that (10,000 admitted
/// neighbors once made a 5.9 MB status that the API server refused).
pub const MAX_RUNNING_CONFIG: usize = 512 << 10;
/// What FRRNodeState may hold of each result message (one line per refused object).
pub const MAX_RESULT: usize = 16 << 10;

/// `text`, or its first whole lines within `limit` bytes and a last line that says how much
/// was left out and where the rest is.
fn bounded(text: String, limit: usize, rest: &str) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').map_or(end, |i| i + 1);
    format!("{}... {} more bytes left out ({rest})", &text[..cut], text.len() - cut)
}

/// Whether `text` was cut by [`bounded`]: its last line says how much was left out.
pub fn cut_short(text: &str) -> bool {
    text.lines().last().is_some_and(|l| l.contains(" more bytes left out ("))
}

/// FRRNodeState's status after `o`; `last` is what was reported before, and is updated.
pub fn node_status(o: &Outcome, running: Option<String>, last: &mut Reported, now: jiff::Timestamp) -> FRRNodeStateStatus {
    let refused: Vec<String> = o.decisions.iter().filter(|d| !matches!(d.decision, Decision::Applied)).map(|d| format!("{}: {}", d.obj, d.message())).collect();
    let conversion = match &o.conversion {
        Ok(_) if !refused.is_empty() => format!("failed: {}", redact(&refused.join("; "))),
        Ok(_) if o.malformed.is_empty() => "success".to_string(),
        Ok(_) => format!("success, malformed objects left out: {}", o.malformed.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; ")),
        Err(e) => format!("failed: {}", redact(&e.to_string()).replace('\n', "; ")),
    };
    let reload = match &o.reload {
        Some(Ok(())) => Some("success".to_string()),
        Some(Err(e)) => Some(format!("failed: {e}")),
        None => last.reload.clone(),
    };
    last.reload.clone_from(&reload);
    let (reason, message) = match (&o.conversion, &o.reload) {
        (Err(_), _) => ("ConversionFailed", conversion.clone()),
        (Ok(_), Some(Err(e))) => ("ReloadFailed", e.to_string()),
        _ => ("Applied", "FRR runs the merged configuration".to_string()),
    };
    let previous = &last.conditions;
    let mut conditions = ready_conditions(previous, o.ok(), reason, &message, None, now);
    conditions.push(node_condition(&o.decisions, previous, now));
    conditions.push(held_condition(previous, &o.held, now));
    last.conditions = conditions.clone();
    FRRNodeStateStatus {
        frr_version: None,
        running_config: running.map(|r| bounded(r, MAX_RUNNING_CONFIG, "the whole configuration: vtysh -c 'show running-config' in the FRR container")),
        last_reload_result: reload.map(|r| bounded(r, MAX_RESULT, "the whole message is in the agent's log")),
        last_conversion_result: Some(bounded(conversion, MAX_RESULT, "every error is in the agent's log and in each FRRConfiguration's status")),
        observed_generations: o.generations.clone(),
        conditions,
    }
}

/// Per FRRConfiguration, applied here (None) or the reason it is not.
pub fn config_entries(o: &Outcome) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    match &o.conversion {
        Ok(_) => {
            for d in &o.decisions {
                let entry = match &d.decision {
                    Decision::Applied => o.reload.as_ref().and_then(|r| r.as_ref().err().map(|e| e.to_string())),
                    _ => Some(redact(&d.message())),
                };
                out.insert(d.obj.name.to_string(), entry);
            }
        }
        Err(errors) => {
            for e in &errors.0 {
                for obj in e.objects() {
                    let msg = redact(&e.to_string());
                    out.entry(obj.name.to_string())
                        .and_modify(|m: &mut Option<String>| {
                            if let Some(m) = m {
                                m.push_str("; ");
                                m.push_str(&msg);
                            }
                        })
                        .or_insert(Some(msg));
                }
            }
        }
    }
    for (name, e) in &o.malformed {
        out.insert(name.clone(), Some(format!("malformed: {e}")));
    }
    out
}

/// The condition `type_` with `status`, keeping `previous`'s transition time while the status
/// is the same (a condition that says the same thing again did not transition).
pub fn condition(
    previous: Option<&Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let since = previous.filter(|c| c.type_ == type_ && c.status == status).map(|c| c.last_transition_time.clone()).unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// The condition of `type_` among `conditions`.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Conditions after an outcome: `Ready` and `Degraded`, with transition times kept while the
/// status does not change.
pub fn ready_conditions(previous: &[Condition], ok: bool, reason: &str, message: &str, generation: Option<i64>, now: jiff::Timestamp) -> Vec<Condition> {
    let make = |type_: &str, status: bool| condition(find(previous, type_), type_, status, reason, message.to_string(), generation, now);
    vec![make("Ready", ok), make("Degraded", !ok)]
}

/// The FRRNodeState condition of per-object isolation.
pub const NODE_CONDITION: &str = "AllConfigurationsApplied";

/// The FRRNodeState condition: whether every selected FRRConfiguration's current generation
/// is in effect, and otherwise which are not and why.
pub fn node_condition(decisions: &[ObjectDecision], previous: &[Condition], now: jiff::Timestamp) -> Condition {
    let refused: Vec<&ObjectDecision> = decisions.iter().filter(|d| !matches!(d.decision, Decision::Applied)).collect();
    let (status, reason, message) = if refused.is_empty() {
        (true, "AllApplied", format!("the current generation of each of the {} selected FRRConfigurations is in effect", decisions.len()))
    } else {
        let held = refused.iter().filter(|d| matches!(d.decision, Decision::HeldAtLastGood { .. })).count();
        let list = refused.iter().map(|d| format!("{}: {}", d.obj, d.message())).collect::<Vec<_>>().join("; ");
        (false, "ConfigurationsRefused", redact(&format!("{held} held at their last good generation, {} left out: {list}", refused.len() - held)))
    };
    condition(find(previous, NODE_CONDITION), NODE_CONDITION, status, reason, message, None, now)
}

/// The FRRNodeState condition of the deletion hold-down.
pub const HELD_CONDITION: &str = "DeletionHeldDown";

/// The `DeletionHeldDown` condition of FRRNodeState: True while what a deleted, emptied or
/// shrunk FRRConfiguration withdraws is kept, naming each one and when it will be withdrawn.
pub fn held_condition(previous: &[Condition], held: &[HeldDeletion], now: jiff::Timestamp) -> Condition {
    let active = !held.is_empty();
    let (reason, message) = if active {
        let list: Vec<String> = held
            .iter()
            .map(|h| format!("{} ({}) until {}", h.object, h.why.label(), jiff::Timestamp::from_second(h.until.as_second()).unwrap_or(h.until)))
            .collect();
        (
            "Held",
            format!(
                "what deleted, emptied or shrunk FRRConfigurations withdraw is kept in FRR until the hold-down ends (withdrawn unless they advertise it again): {}",
                list.join(", ")
            ),
        )
    } else {
        ("NothingHeld", "no deletion is held".to_string())
    };
    condition(find(previous, HELD_CONDITION), HELD_CONDITION, active, reason, message, None, now)
}

/// The condition type of `node`'s entry in an FRRConfiguration's status.
pub fn condition_type(node: &str) -> String {
    format!("{node}/Applied")
}

/// This node's condition in each decided FRRConfiguration's status, remembering the last ones
/// (for their transition times).
#[derive(Clone, Debug)]
pub struct ObjectConditions {
    type_: String,
    last: BTreeMap<String, Condition>,
}

impl ObjectConditions {
    pub fn new(node: &str) -> ObjectConditions {
        ObjectConditions { type_: condition_type(node), last: BTreeMap::new() }
    }

    /// This node's condition for each decided object, by name.
    pub fn update(&mut self, decisions: &[ObjectDecision], now: jiff::Timestamp) -> BTreeMap<String, Condition> {
        let mut out = BTreeMap::new();
        for d in decisions {
            let name = d.obj.name.to_string();
            let applied = matches!(d.decision, Decision::Applied);
            let c = condition(self.last.get(&name), &self.type_, applied, d.reason(), redact(&d.message()), Some(d.generation), now);
            out.insert(name, c);
        }
        self.last.clone_from(&out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::holddown::Why;
    use crate::frr::vtysh::FrrError;

    #[test]
    fn the_transition_time_moves_only_with_the_status() {
        let (t0, t1, t2) =
            (jiff::Timestamp::from_second(1_000).unwrap(), jiff::Timestamp::from_second(2_000).unwrap(), jiff::Timestamp::from_second(3_000).unwrap());
        let a = condition(None, "Ready", true, "Applied", "first".into(), Some(1), t0);
        assert_eq!(a.last_transition_time.0, t0);
        let b = condition(Some(&a), "Ready", true, "Applied", "again, other words".into(), Some(2), t1);
        assert_eq!((b.last_transition_time.0, b.message.as_str(), b.observed_generation), (t0, "again, other words", Some(2)));
        let c = condition(Some(&b), "Ready", false, "Refused", "now false".into(), Some(2), t2);
        assert_eq!((c.last_transition_time.0, c.status.as_str()), (t2, "False"));
        // another type's condition is no previous one
        let d = condition(Some(&c), "Degraded", false, "Fine", String::new(), None, t2);
        assert_eq!(d.last_transition_time.0, t2);
        assert_eq!(find(&[a.clone(), d.clone()], "Degraded"), Some(&d));
    }

    #[test]
    fn transition_times_stay_while_nothing_changes() {
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = jiff::Timestamp::from_second(1_700_000_100).unwrap();
        let c0 = ready_conditions(&[], true, "Applied", "ok", Some(1), t0);
        let c1 = ready_conditions(&c0, true, "Applied", "ok", Some(2), t1);
        assert_eq!(c1[0].last_transition_time.0, t0);
        let c2 = ready_conditions(&c1, false, "ConversionFailed", "bad", Some(3), t1);
        assert_eq!(c2[0].status, "False");
        assert_eq!(c2[0].last_transition_time.0, t1);
    }

    fn d(name: &str, decision: Decision) -> ObjectDecision {
        ObjectDecision { obj: ObjRef::new("ns", name), generation: 4, decision }
    }

    #[test]
    fn node_condition_names_each_refused_object() {
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let ok = node_condition(&[d("a", Decision::Applied)], &[], t0);
        assert_eq!((ok.status.as_str(), ok.reason.as_str()), ("True", "AllApplied"));
        let errors = Errors::new(vec![crate::core::Error::invalid(&ObjRef::new("ns", "b"), "spec.x", "bad")]);
        let bad = node_condition(&[d("a", Decision::Applied), d("b", Decision::HeldAtLastGood { in_effect: 3, errors })], std::slice::from_ref(&ok), t0);
        assert_eq!((bad.status.as_str(), bad.reason.as_str()), ("False", "ConfigurationsRefused"));
        assert!(
            bad.message.contains("1 held")
                && bad.message.contains("ns/b: generation 4 is refused, generation 3 stays in effect")
                && bad.message.contains("spec.x"),
            "{}",
            bad.message
        );
    }

    #[test]
    fn held_condition_names_held_objects_and_keeps_its_transition_time() {
        let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let held = |why, until: jiff::Timestamp| HeldDeletion { object: "ns/metallb-n1".into(), why, until };
        let c = held_condition(&[], &[held(Why::Deleted, t + jiff::SignedDuration::from_millis(4500))], t);
        assert_eq!((c.type_.as_str(), c.status.as_str(), c.reason.as_str()), ("DeletionHeldDown", "True", "Held"));
        assert!(c.message.contains("ns/metallb-n1 (deleted) until 2027-01-15T08:00:04Z"), "{}", c.message);
        let later = held_condition(std::slice::from_ref(&c), &[held(Why::Emptied, t)], t + jiff::SignedDuration::from_secs(1));
        assert!(later.message.contains("ns/metallb-n1 (emptied)"), "{}", later.message);
        assert_eq!(later.last_transition_time, c.last_transition_time);
        let off = held_condition(&[later], &[], t + jiff::SignedDuration::from_secs(5));
        assert_eq!((off.status.as_str(), off.reason.as_str()), ("False", "NothingHeld"));
        assert_eq!(off.last_transition_time.0, t + jiff::SignedDuration::from_secs(5));
    }

    #[test]
    fn status_texts_are_bounded() {
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let mut last = Reported::default();
        let running: String = (0..100_000).map(|i| format!("ip prefix-list 10.0.0.{i}-in seq 5 permit any\n")).collect();
        let errors: Vec<core::Error> = (0..5_000)
            .map(|i| core::Error::Invalid { object: ObjRef::new("ns", format!("o{i}")), field: "spec.bgp.routers[0].asn".into(), reason: "0".into() })
            .collect();
        let s = node_status(&outcome(Err(Errors::new(errors)), None), Some(running.clone()), &mut last, t0);
        let r = s.running_config.unwrap();
        assert!(r.len() < MAX_RUNNING_CONFIG + 200, "{}", r.len());
        assert!(running.starts_with(r.lines().next().unwrap()));
        let tail = r.lines().last().unwrap();
        assert!(tail.starts_with("... ") && tail.contains("more bytes left out") && tail.contains("show running-config"), "{tail}");
        assert!(cut_short(&r) && !cut_short(&running), "`why` reads the cut from the same marker");
        // only whole lines are kept
        assert!(r.lines().rev().nth(1).unwrap().ends_with("permit any"));
        let c = s.last_conversion_result.unwrap();
        assert!(c.len() < MAX_RESULT + 200 && c.starts_with("failed: FRRConfiguration ns/o0") && c.contains("more bytes left out"), "{}", c.len());
        // small texts are kept whole
        let s = node_status(&outcome(Ok(vec![]), Some(Ok(()))), Some("running\n".into()), &mut last, t0);
        assert_eq!(s.running_config.as_deref(), Some("running\n"));
    }

    fn outcome(conversion: Result<Vec<ObjRef>, Errors>, reload: Option<Result<(), ReconcileError>>) -> Outcome {
        Outcome { conversion, reload, generations: BTreeMap::new(), malformed: BTreeMap::new(), decisions: Vec::new(), held: Vec::new() }
    }

    fn refused(message: &str) -> ReconcileError {
        ReconcileError::FrrRefused { message: message.into(), source: ApplyError::Refused(Vec::new()) }
    }

    #[test]
    fn status_after_success_failure_and_a_refused_conversion() {
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let mut last = Reported::default();
        let s = node_status(&outcome(Ok(vec![]), Some(Ok(()))), Some("running".into()), &mut last, t0);
        assert_eq!(s.last_reload_result.as_deref(), Some("success"));
        assert_eq!(s.last_conversion_result.as_deref(), Some("success"));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Applied"));

        let e = refused("FRR refuses the configuration: x: y (from FRRConfiguration ns/a)");
        assert_eq!(e.category(), "frr-refused");
        assert!(std::error::Error::source(&e).is_some(), "the apply's error is kept");
        let s = node_status(&outcome(Ok(vec![]), Some(Err(e))), None, &mut last, t0);
        assert_eq!(s.last_reload_result.as_deref(), Some("failed: FRR refuses the configuration: x: y (from FRRConfiguration ns/a)"));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "ReloadFailed"));

        // a refused conversion applies nothing: the last reload result stays
        let err = core::Error::Invalid { object: ObjRef::new("ns", "a"), field: "spec.bgp.routers[0].asn".into(), reason: "65999".into() };
        let s = node_status(&outcome(Err(Errors::new(vec![err])), None), None, &mut last, t0);
        assert!(s.last_reload_result.as_deref().unwrap().starts_with("failed: FRR refuses"));
        assert_eq!(s.last_conversion_result.as_deref(), Some("failed: FRRConfiguration ns/a: spec.bgp.routers[0].asn: 65999"));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason, "ConversionFailed");
    }

    #[test]
    fn config_entries_name_the_malformed_and_the_reload_failure() {
        let unreachable = ApplyError::Frr(FrrError::Unreachable { pathspace: None, output: "no bgpd".into() });
        let message = redact(&FrrError::Unreachable { pathspace: None, output: "no bgpd".into() }.to_string());
        let e = ReconcileError::FrrUnreachable { message, source: unreachable };
        assert_eq!((e.category(), e.to_string().as_str()), ("frr-unreachable", "FRR is not running or not reachable: no bgpd"));
        assert!(std::error::Error::source(&e).is_some(), "the apply's error is kept");
        let mut o = outcome(Ok(vec![]), Some(Err(e)));
        o.malformed.insert("bad".into(), "spec.bgp: invalid".into());
        let e = config_entries(&o);
        assert_eq!(e.get("bad"), Some(&Some("malformed: spec.bgp: invalid".to_string())));
    }
}
