//! The agent's side of per-object isolation ([`crate::core::isolation`]): the ledger of
//! generations in effect (persisted by [`super::lastgood`]), and how decisions are reported:
//! a condition per node in each FRRConfiguration's status, Kubernetes Events on the object
//! (through kube-runtime's recorder, which folds repeats into a series; sent only when a
//! decision changes, and at most once per object per [`EVENT_INTERVAL`]), an
//! FRRNodeState condition and metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use super::lastgood::LastGood;
use super::report::{condition, find};
use crate::api::FRRConfiguration;
use crate::core::isolation::{isolate, Decision, Isolated, Ledger, ObjectDecision};
use crate::core::{Errors, Settings, Snapshot};
use crate::frr::redact;

/// An object's events are sent at most this often (its status always holds the latest).
pub const EVENT_INTERVAL: Duration = Duration::from_secs(10);
/// The FRRNodeState condition type.
pub const NODE_CONDITION: &str = "AllConfigurationsApplied";
/// Kubernetes limits an event's note to 1 kB.
const NOTE_MAX: usize = 1000;

pub struct Isolation {
    node: String,
    store: Option<LastGood>,
    /// The generations in effect in FRR (advanced only after a successful apply).
    pub ledger: Ledger,
    recorder: Recorder,
    /// Per object: the decision last seen for events, and when an event was last sent.
    sent: BTreeMap<String, (String, Option<Instant>)>,
    /// Per object: the condition last reported (for transition times).
    conditions: BTreeMap<String, Condition>,
}

/// The condition type of `node`'s entry in an FRRConfiguration's status.
pub fn condition_type(node: &str) -> String {
    format!("{node}/Applied")
}

impl Isolation {
    /// Loads the ledger from `dir` (none: kept in memory only). A ledger that cannot be read
    /// is reported and replaced: decisions then start afresh.
    pub fn open(client: Client, node: &str, dir: Option<&Path>) -> Isolation {
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
        let reporter = Reporter { controller: "frr-composer".into(), instance: Some(node.to_string()) };
        Isolation { node: node.to_string(), store, ledger, recorder: Recorder::new(client, reporter), sent: BTreeMap::new(), conditions: BTreeMap::new() }
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

    /// This node's condition for each decided object.
    pub fn object_conditions(&mut self, decisions: &[ObjectDecision], now: jiff::Timestamp) -> BTreeMap<String, Condition> {
        let mut out = BTreeMap::new();
        for d in decisions {
            let name = d.obj.name.to_string();
            let applied = matches!(d.decision, Decision::Applied);
            let c = condition(self.conditions.get(&name), &condition_type(&self.node), applied, d.reason(), redact(&d.message()), Some(d.generation), now);
            out.insert(name, c);
        }
        self.conditions.clone_from(&out);
        out
    }

    /// Events for decisions that changed: a Warning when a generation is refused, a Normal
    /// event when an object that was refused applies again. Nothing for objects that simply
    /// apply, nothing twice for the same decision, and at most one per object per interval.
    pub async fn publish_events(&mut self, decisions: &[ObjectDecision], configs: &[FRRConfiguration]) {
        let now = Instant::now();
        for d in decisions {
            let name = d.obj.name.to_string();
            let applied = matches!(d.decision, Decision::Applied);
            let key = if applied { "Applied".to_string() } else { d.message() };
            match self.sent.get(&name) {
                Some((k, _)) if *k == key => continue,
                Some((_, Some(at))) if now.duration_since(*at) < EVENT_INTERVAL => continue,
                None if applied => {
                    self.sent.insert(name, (key, None));
                    continue;
                }
                _ => {}
            }
            let note = Some(truncate(&redact(&d.message())));
            let event = if applied {
                Event { type_: EventType::Normal, reason: "Applied".into(), note, action: "Apply".into(), secondary: None }
            } else {
                Event { type_: EventType::Warning, reason: d.reason().into(), note, action: "Apply".into(), secondary: None }
            };
            let Some(obj) =
                configs.iter().find(|c| c.metadata.name.as_deref() == Some(&*d.obj.name) && c.metadata.namespace.as_deref() == Some(&*d.obj.namespace))
            else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), self.recorder.publish(&event, &obj.object_ref(&()))).await {
                Ok(Ok(())) => {
                    self.sent.insert(name, (key, Some(now)));
                }
                Ok(Err(e)) => tracing::warn!(error = %e, object = %d.obj, "publishing an event"),
                Err(_) => {
                    // the API server is away: the rest waits for the next round
                    tracing::warn!(object = %d.obj, "publishing an event timed out");
                    break;
                }
            }
        }
        self.sent.retain(|k, _| decisions.iter().any(|d| *d.obj.name == **k));
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= NOTE_MAX {
        return s.to_string();
    }
    let mut end = NOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ObjRef;

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
    fn long_notes_are_cut_on_a_character_boundary() {
        let s = "é".repeat(800);
        let t = truncate(&s);
        assert!(t.len() <= NOTE_MAX + 3 && t.ends_with("..."));
    }
}
