//! The steps of one reconcile, each on its own: `gather` (pure: what the watches hold → what
//! this node merges), compose (per-object isolation, `isolation::Isolation::decide`), render,
//! apply (the FRR keeper), `node_status` and `config_entries` (pure: the status to report), and
//! the status writes. The loop that runs them is `super::run`; `Coalescer` says when.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::watch::{ConfigEntry, View};
use super::{holddown, isolation, status};
use crate::api::{FRRConfiguration, FRRNodeStateStatus, LogLevel};
use crate::core::{self, Errors, ObjRef, SecretEntry};
use crate::frr::apply::ApplyError;
use crate::frr::redact;

/// Why a reconcile did not bring FRR to the merged configuration. The status texts are made
/// from these; `category` names the kind for logs.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The agent's Node is not (yet) known.
    #[error("the Node {0} does not exist")]
    NoNode(String),
    /// The selected configurations do not merge (the core's errors, naming objects and fields).
    #[error("{0}")]
    Conversion(Errors),
    /// The merged model could not be rendered.
    #[error("rendering: {0}")]
    Render(String),
    /// FRR refused the configuration (syntax check or while applying) or did not run it after
    /// applying. The message names the lines and the objects they come from.
    #[error("{0}")]
    FrrRefused(String),
    /// FRR could not be reached (vtysh failed, a daemon is down, a file could not be written).
    #[error("{0}")]
    FrrUnreachable(String),
    /// A request to the API server failed.
    #[error("{what}: {message}")]
    Api { what: &'static str, message: String },
}

impl ReconcileError {
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::NoNode(_) => "no-node",
            ReconcileError::Conversion(_) => "conversion",
            ReconcileError::Render(_) => "render",
            ReconcileError::FrrRefused(_) => "frr-refused",
            ReconcileError::FrrUnreachable(_) => "frr-unreachable",
            ReconcileError::Api { .. } => "api",
        }
    }

    /// An apply's failure, with the objects each refused line comes from (redacted).
    pub fn from_apply(e: &ApplyError, model: &core::Model) -> ReconcileError {
        match e {
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
                ReconcileError::FrrRefused(redact(&format!("{what}: {}", lines.join("; "))))
            }
            ApplyError::Drift(_) => ReconcileError::FrrRefused(redact(&e.to_string())),
            ApplyError::Frr(f) => ReconcileError::FrrUnreachable(redact(&f.to_string())),
        }
    }

    pub fn api(what: &'static str, e: &kube::Error) -> ReconcileError {
        ReconcileError::Api { what, message: e.to_string() }
    }
}

/// What this node merges now: the output of `gather`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gathered {
    /// The typed FRRConfigurations whose nodeSelector may select this node (an invalid selector
    /// is kept, so that its error is reported), by name.
    pub configs: Vec<FRRConfiguration>,
    /// FRRConfigurations that could not be read, with the field and the reason.
    pub malformed: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretEntry>,
    pub labels: BTreeMap<String, String>,
    pub node_uid: String,
    pub log_level: LogLevel,
}

/// Step 1 (pure): from the watched stores and the objects in effect (`effective`: the current
/// ones plus deletions still held down) to what this node merges.
pub fn gather(node: &str, view: &View, effective: &BTreeMap<String, ConfigEntry>, default_level: LogLevel) -> Result<Gathered, ReconcileError> {
    let info = view.node.as_ref().ok_or_else(|| ReconcileError::NoNode(node.to_string()))?;
    let node_uid = info.uid.clone().ok_or_else(|| ReconcileError::NoNode(node.to_string()))?;
    let mut configs = Vec::new();
    let mut malformed = BTreeMap::new();
    for (name, c) in effective.iter().filter(|(_, c)| c.selects(&info.labels)) {
        // (a compact one that selects the node since its labels changed is read again here)
        match c.typed() {
            Ok(o) => configs.push((*o).clone()),
            Err(e) => {
                malformed.insert(name.clone(), e);
            }
        }
    }
    Ok(Gathered {
        configs,
        malformed,
        secrets: view.secrets.clone(),
        labels: info.labels.clone(),
        node_uid,
        log_level: view.log_level.unwrap_or(default_level),
    })
}

/// The outcome of one reconcile, for status.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub conversion: Result<Vec<ObjRef>, Errors>,
    /// The apply's result (None: nothing was applied, e.g. a refused conversion).
    pub reload: Option<Result<(), ReconcileError>>,
    /// Generations in effect in FRR, by namespace/name.
    pub generations: BTreeMap<String, i64>,
    pub malformed: BTreeMap<String, String>,
    /// Per selected object: which generation is in effect (per-object isolation).
    pub decisions: Vec<core::isolation::ObjectDecision>,
    /// Deleted FRRConfigurations still in effect, with the end of their hold-down.
    pub held: Vec<(String, holddown::Why, jiff::Timestamp)>,
}

impl Outcome {
    /// FRR runs the merged configuration.
    pub fn ok(&self) -> bool {
        self.conversion.is_ok() && matches!(self.reload, Some(Ok(())))
    }
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

/// Step 5 (pure): FRRNodeState's status. `previous` holds the conditions last reported (their
/// transition times are kept); `last_reload` the reload result last reported (a refused
/// conversion applies nothing and keeps it). Both are updated.
pub fn node_status(
    o: &Outcome,
    running: Option<String>,
    previous: &mut Vec<Condition>,
    last_reload: &mut Option<String>,
    now: jiff::Timestamp,
) -> FRRNodeStateStatus {
    let refused: Vec<String> =
        o.decisions.iter().filter(|d| !matches!(d.decision, core::isolation::Decision::Applied)).map(|d| format!("{}: {}", d.obj, d.message())).collect();
    let conversion = match &o.conversion {
        Ok(_) if !refused.is_empty() => format!("failed: {}", redact(&refused.join("; "))),
        Ok(_) if o.malformed.is_empty() => "success".to_string(),
        Ok(_) => format!("success, malformed objects left out: {}", o.malformed.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; ")),
        Err(e) => format!("failed: {}", redact(&e.to_string()).replace('\n', "; ")),
    };
    let reload = match &o.reload {
        Some(Ok(())) => Some("success".to_string()),
        Some(Err(e)) => Some(format!("failed: {e}")),
        None => last_reload.clone(),
    };
    last_reload.clone_from(&reload);
    let (reason, message) = match (&o.conversion, &o.reload) {
        (Err(_), _) => ("ConversionFailed", conversion.clone()),
        (Ok(_), Some(Err(e))) => ("ReloadFailed", e.to_string()),
        _ => ("Applied", "FRR runs the merged configuration".to_string()),
    };
    let mut conditions = status::conditions(previous, o.ok(), reason, &message, None, now);
    conditions.push(isolation::node_condition(&o.decisions, previous, now));
    conditions.push(holddown::condition(previous, &o.held, now));
    *previous = conditions.clone();
    FRRNodeStateStatus {
        frr_version: None,
        running_config: running.map(|r| bounded(r, MAX_RUNNING_CONFIG, "the whole configuration: vtysh -c 'show running-config' in the FRR container")),
        last_reload_result: reload.map(|r| bounded(r, MAX_RESULT, "the whole message is in the agent's log")),
        last_conversion_result: Some(bounded(conversion, MAX_RESULT, "every error is in the agent's log and in each FRRConfiguration's status")),
        observed_generations: o.generations.clone(),
        conditions,
    }
}

/// Step 5 (pure): per FRRConfiguration, applied here (None) or the reason it is not.
pub fn config_entries(o: &Outcome) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    match &o.conversion {
        Ok(_) => {
            for d in &o.decisions {
                let entry = match &d.decision {
                    core::isolation::Decision::Applied => o.reload.as_ref().and_then(|r| r.as_ref().err().map(|e| e.to_string())),
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
    use crate::agent::watch::{configs_to_read, NodeInfo};

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

    fn cfg(name: &str, selector: Option<(&str, &str)>) -> ConfigEntry {
        let mut c = FRRConfiguration::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("ns".into());
        c.spec.node_selector = selector.map(|(k, v)| k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([(k.to_string(), v.to_string())].into()),
            ..Default::default()
        });
        ConfigEntry::Typed(std::sync::Arc::new(c))
    }

    #[test]
    fn gather_keeps_what_selects_this_node_and_reports_the_malformed() {
        let mut view = View::default();
        assert!(matches!(gather("wk3", &view, &BTreeMap::new(), LogLevel::Info), Err(ReconcileError::NoNode(_))));
        view.node = Some(NodeInfo { labels: [("rack".to_string(), "a".to_string())].into(), uid: Some("u1".into()) });
        view.log_level = Some(LogLevel::Debug);
        let effective: BTreeMap<String, ConfigEntry> = [
            ("all".to_string(), cfg("all", None)),
            ("rack-a".to_string(), cfg("rack-a", Some(("rack", "a")))),
            ("rack-b".to_string(), cfg("rack-b", Some(("rack", "b")))),
            // kept compact while the node was in rack b; the node has moved to rack a since
            (
                "rack-a2".to_string(),
                ConfigEntry::new((*cfg("rack-a2", Some(("rack", "a"))).typed().unwrap()).clone(), Some(&[("rack".into(), "b".into())].into())),
            ),
            ("bad".to_string(), ConfigEntry::Malformed("spec.bgp.routers[0].asn: invalid type".to_string())),
        ]
        .into();
        let g = gather("wk3", &view, &effective, LogLevel::Info).unwrap();
        let names: Vec<_> = g.configs.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
        assert!(matches!(effective["rack-a2"], ConfigEntry::Compact(_)));
        assert_eq!(names, ["all", "rack-a", "rack-a2"], "a compact object that selects the node now is read back");
        assert_eq!(g.malformed.get("bad").map(String::as_str), Some("spec.bgp.routers[0].asn: invalid type"));
        assert_eq!(g.node_uid, "u1");
        assert_eq!(g.log_level, LogLevel::Debug);
        view.log_level = None;
        assert_eq!(gather("wk3", &view, &effective, LogLevel::Warn).unwrap().log_level, LogLevel::Warn);
    }

    #[test]
    fn a_node_moved_away_from_an_applied_object_withdraws_it_at_once() {
        use crate::watch::Entry;
        let rack = |r: &str| -> BTreeMap<String, String> { [("rack".to_string(), r.to_string())].into() };
        let mut prefixed = (*cfg("rack-b", Some(("rack", "b"))).typed().unwrap()).clone();
        prefixed.spec.bgp.routers = vec![crate::api::Router { asn: 65000, prefixes: vec!["192.0.2.0/24".into()], ..Default::default() }];
        let store: Vec<Entry<ConfigEntry>> =
            [ConfigEntry::new(prefixed, Some(&rack("a"))), ConfigEntry::new((*cfg("rack-c", Some(("rack", "c"))).typed().unwrap()).clone(), Some(&rack("a")))]
                .into_iter()
                .zip(["rack-b", "rack-c"])
                .map(|(value, name)| Entry { namespace: Some("ns".into()), name: name.into(), value })
                .collect();
        // the last merge used rack-b (the node was in rack b); it is in rack a now
        let mut hold = holddown::HoldDown::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let before = configs_to_read(&store, None, |_| false);
        hold.advance(&before, t0);
        hold.merged(&before, ["rack-b"]);
        let read = configs_to_read(&store, Some(&rack("a")), |n| hold.knows(n));
        assert_eq!(read.keys().collect::<Vec<_>>(), ["rack-b"], "only what concerns the node: rack-c is not copied");
        let step = hold.advance(&read, t0 + MS);
        assert!(step.started.is_empty(), "a label change is not a deletion: nothing held");
        let view = View { node: Some(NodeInfo { labels: rack("a"), uid: Some("u".into()) }), ..Default::default() };
        assert!(gather("wk3", &view, &step.effective, LogLevel::Info).unwrap().configs.is_empty(), "withdrawn at once");
        // read without the hold-down's objects, the same change would look like a deletion
        let mut hold2 = holddown::HoldDown::new(Duration::from_secs(5));
        hold2.advance(&before, t0);
        hold2.merged(&before, ["rack-b"]);
        assert_eq!(hold2.advance(&configs_to_read(&store, Some(&rack("a")), |_| false), t0 + MS).started, ["rack-b"]);
    }

    fn outcome(conversion: Result<Vec<ObjRef>, Errors>, reload: Option<Result<(), ReconcileError>>) -> Outcome {
        Outcome { conversion, reload, generations: BTreeMap::new(), malformed: BTreeMap::new(), decisions: Vec::new(), held: Vec::new() }
    }

    #[test]
    fn status_after_success_failure_and_a_refused_conversion() {
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let (mut prev, mut last) = (Vec::new(), None);
        let s = node_status(&outcome(Ok(vec![]), Some(Ok(()))), Some("running".into()), &mut prev, &mut last, t0);
        assert_eq!(s.last_reload_result.as_deref(), Some("success"));
        assert_eq!(s.last_conversion_result.as_deref(), Some("success"));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Applied"));

        let e = ReconcileError::FrrRefused("FRR refuses the configuration: x: y (from FRRConfiguration ns/a)".into());
        assert_eq!(e.category(), "frr-refused");
        let s = node_status(&outcome(Ok(vec![]), Some(Err(e))), None, &mut prev, &mut last, t0);
        assert_eq!(s.last_reload_result.as_deref(), Some("failed: FRR refuses the configuration: x: y (from FRRConfiguration ns/a)"));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "ReloadFailed"));

        // a refused conversion applies nothing: the last reload result stays
        let err = core::Error::Invalid { object: ObjRef::new("ns", "a"), field: "spec.bgp.routers[0].asn".into(), reason: "65999".into() };
        let s = node_status(&outcome(Err(Errors::new(vec![err])), None), None, &mut prev, &mut last, t0);
        assert!(s.last_reload_result.as_deref().unwrap().starts_with("failed: FRR refuses"));
        assert_eq!(s.last_conversion_result.as_deref(), Some("failed: FRRConfiguration ns/a: spec.bgp.routers[0].asn: 65999"));
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason, "ConversionFailed");
    }

    #[test]
    fn status_texts_are_bounded() {
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let (mut prev, mut last) = (Vec::new(), None);
        let running: String = (0..100_000).map(|i| format!("ip prefix-list 10.0.0.{i}-in seq 5 permit any\n")).collect();
        let errors: Vec<core::Error> = (0..5_000)
            .map(|i| core::Error::Invalid { object: ObjRef::new("ns", format!("o{i}")), field: "spec.bgp.routers[0].asn".into(), reason: "0".into() })
            .collect();
        let s = node_status(&outcome(Err(Errors::new(errors)), None), Some(running.clone()), &mut prev, &mut last, t0);
        let r = s.running_config.unwrap();
        assert!(r.len() < MAX_RUNNING_CONFIG + 200, "{}", r.len());
        assert!(running.starts_with(r.lines().next().unwrap()));
        let tail = r.lines().last().unwrap();
        assert!(tail.starts_with("... ") && tail.contains("more bytes left out") && tail.contains("show running-config"), "{tail}");
        // only whole lines are kept
        assert!(r.lines().rev().nth(1).unwrap().ends_with("permit any"));
        let c = s.last_conversion_result.unwrap();
        assert!(c.len() < MAX_RESULT + 200 && c.starts_with("failed: FRRConfiguration ns/o0") && c.contains("more bytes left out"), "{}", c.len());
        // small texts are kept whole
        let s = node_status(&outcome(Ok(vec![]), Some(Ok(()))), Some("running\n".into()), &mut prev, &mut last, t0);
        assert_eq!(s.running_config.as_deref(), Some("running\n"));
    }

    #[test]
    fn config_entries_name_the_malformed_and_the_reload_failure() {
        let mut o = outcome(Ok(vec![]), Some(Err(ReconcileError::FrrUnreachable("vtysh: no bgpd".into()))));
        o.malformed.insert("bad".into(), "spec.bgp: invalid".into());
        let e = config_entries(&o);
        assert_eq!(e.get("bad"), Some(&Some("malformed: spec.bgp: invalid".to_string())));
    }
}
