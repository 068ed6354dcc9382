//! One reconcile, told in order in [`Reconciler::reconcile`]: 1. gather (pure: what the
//! watches hold → what this node merges), 2. compose (per-object isolation,
//! `isolation::Isolation::decide`), 3. render, 4. apply (the FRR keeper), 5. the status to
//! report (pure, built in `super::report`) and 6. its writes and events (`super::status`). The loop that calls it is
//! `super::run`; `super::trigger` says when.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;

use super::args::ControllerArgs;
use super::http::{self, Health, APPLY_LIMIT, COMPOSE_LIMIT};
use super::metrics::Metrics;
use super::report::{config_entries, node_status, HeldDeletion, ObjectConditions, Outcome, ReconcileError, Reported};
use super::status::{Events, StatusWriter, API_TIMEOUT};
use super::watch::{self, ConfigEntry, View, Watches};
use super::{holddown, isolation};
use crate::api::{FRRConfiguration, LogLevel};
use crate::core::{self, SecretEntry, Snapshot};
use crate::frr::keeper::{Check, Keeper, Reason};
use crate::frr::redact;
use crate::settings::{set_log_level, NodeSettings};

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

/// What the reconcile keeps from one run to the next.
pub struct Reconciler {
    node_name: String,
    node: NodeSettings,
    default_level: LogLevel,
    keeper: Arc<Mutex<Keeper>>,
    iso: isolation::Isolation,
    hold: holddown::HoldDown<ConfigEntry>,
    writer: StatusWriter,
    /// The FRRConfigurations whose status holds an entry of this node (from the watch).
    own_entries: watch::OwnEntries,
    metrics: Metrics,
    health: Arc<Mutex<Health>>,
    /// What FRRNodeState reported last (a refused conversion applies nothing: the status keeps
    /// the last reload's result).
    reported: Reported,
    /// This node's condition in each FRRConfiguration's status, as last reported.
    object_conditions: ObjectConditions,
    events: Events,
    log_level: Option<LogLevel>,
    /// The configuration's warnings as last logged (logged again only when they change).
    warnings: Vec<String>,
    /// Generations FRR refuses (its syntax check of what the object brings alone), by object:
    /// refused like a conflict until the object changes.
    frr_refused: core::isolation::Refusals,
}

/// At most this many objects are checked alone with FRR's syntax check after a refusal.
pub const MAX_CHARGE_CHECKS: usize = 16;

impl Reconciler {
    pub fn new(
        args: &ControllerArgs,
        client: Client,
        node: NodeSettings,
        watches: &Watches,
        keeper: Arc<Mutex<Keeper>>,
        metrics: Metrics,
        health: Arc<Mutex<Health>>,
    ) -> Reconciler {
        Reconciler {
            node_name: args.node_name.clone(),
            default_level: args.log_level.into(),
            iso: isolation::Isolation::open(args.state_dir.as_deref()),
            events: Events::new(client.clone(), &args.node_name),
            object_conditions: ObjectConditions::new(&args.node_name),
            writer: StatusWriter::new(client, &args.node_name, &args.namespace, args.object_status),
            own_entries: watches.own_entries.clone(),
            hold: holddown::HoldDown::new(args.deletion_hold_down),
            node,
            keeper,
            metrics,
            health,
            reported: Reported::default(),
            log_level: None,
            warnings: Vec::new(),
            frr_refused: core::isolation::Refusals::new(),
        }
    }

    /// The keeper's answer when nothing changed in the API: whether FRR must be brought back
    /// (restarted daemons, a failed apply to retry, drift to repair), logged.
    pub fn wants_reapply(&self, check: Check) -> bool {
        match check {
            Check::Fine => return false,
            Check::Unreadable(e) => {
                tracing::warn!(error = %e, "drift check");
                return false;
            }
            Check::Reapply(Reason::Restarted) => tracing::warn!("FRR daemons restarted; re-applying"),
            Check::Reapply(Reason::Retry) => tracing::info!("retrying the failed apply"),
            Check::Reapply(Reason::Drift(d)) => {
                self.metrics.drift_repairs.inc();
                tracing::warn!(drift = %redact(&d.to_string()), "FRR's running configuration drifted; repairing");
            }
        }
        true
    }

    /// The next wake-up for the loop's timer: a held deletion ends, or a paced status write is
    /// due.
    pub fn next_wake(&self) -> Option<Instant> {
        [self.hold.next_wake(), self.writer.next_flush()].into_iter().flatten().min()
    }

    /// Whether a held deletion ended by `now` (a reconcile is due).
    pub fn hold_due(&self, now: Instant) -> bool {
        self.hold.next_wake().is_some_and(|t| now >= t)
    }

    /// Writes the status that waited for the end of its interval (`all`: everything that
    /// waits, as the agent stops: within 3 s, well inside a pod's grace period); bounded by the
    /// API timeout.
    pub async fn flush_status(&mut self, all: bool) {
        if self.writer.next_flush().is_none_or(|t| !all && Instant::now() < t) {
            return;
        }
        let timeout = if all { Duration::from_secs(3) } else { API_TIMEOUT };
        match tokio::time::timeout(timeout, self.writer.flush(Instant::now(), all, &self.own_entries)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let e = ReconcileError::api("writing paced status", e);
                tracing::warn!(category = e.category(), error = %e, "status not written");
            }
            Err(_) => tracing::warn!(category = "api", "writing paced status timed out"),
        }
    }

    /// Whether the hold-down follows `name` (the view must keep it).
    pub fn knows(&self, name: &str) -> bool {
        self.hold.knows(name)
    }

    /// One reconcile: gather → compose → render → apply → status. Errors are reported in the
    /// status and the log; only a failure of the runtime itself (a panicked task) is returned.
    pub async fn reconcile(&mut self, view: &View) -> anyhow::Result<()> {
        self.metrics.updates.inc();
        // deleted objects stay for their hold-down
        let step = self.hold.advance(&view.configs, Instant::now());
        log_hold_down(&self.node.namespace, &step, self.hold.hold);
        // 1. gather
        let g = match gather(&self.node_name, view, &step.effective, self.default_level) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(category = e.category(), error = %e, "waiting");
                return Ok(());
            }
        };
        if self.log_level != Some(g.log_level) {
            set_log_level(g.log_level);
            tracing::info!(level = ?g.log_level, "log level");
            self.log_level = Some(g.log_level);
        }
        for (name, e) in &g.malformed {
            tracing::error!(object = %format!("{}/{name}", self.node.namespace), category = "conversion", error = %e, "malformed FRRConfiguration left out");
        }
        // 2. compose: every valid object applies; refused ones keep their last good generation
        //    or are left out (core::isolation)
        Health::begin(&self.health, "compose and render", COMPOSE_LIMIT);
        let mut settings = self.node.core(g.log_level);
        // an object that needs a newer FRR than runs is refused with its field (core::capability)
        settings.frr_version = self.frr_version().await;
        // FRR's refusals of a generation count until the object changes or goes
        self.frr_refused.retain(|o, (generation, _)| g.configs.iter().any(|c| core::obj_ref(c) == *o && c.metadata.generation.unwrap_or(0) == *generation));
        let isolated = self.iso.decide(&settings, Snapshot { node_labels: &g.labels, configs: &g.configs, secrets: &g.secrets }, &self.frr_refused);
        let decisions = isolated.as_ref().map(|i| i.decisions.clone()).unwrap_or_default();
        for d in decisions.iter().filter(|d| !matches!(d.decision, core::isolation::Decision::Applied)) {
            tracing::error!(object = %d.obj, reason = d.reason(), error = %redact(&d.message()), "configuration refused");
        }
        if let Ok(i) = &isolated {
            self.metrics.objects_held.set(i.held() as i64);
            self.metrics.objects_left_out.set(i.left_out() as i64);
            tracing::debug!(configs = g.configs.len(), selected = i.composition.selected.len(), "composed");
            // deprecated fields, raw lines that refer to a name two neighbors would share
            let model = &i.composition.model;
            let warnings: Vec<String> = model.warnings.iter().cloned().chain(crate::render::raw_name_warnings(model)).collect();
            if warnings != self.warnings {
                for w in &warnings {
                    tracing::warn!(category = "configuration", "{}", redact(w));
                }
                self.warnings = warnings;
            }
        }
        // 3. render
        let rendered = isolated.as_ref().ok().map(|i| crate::render::render(&i.composition.model).map_err(ReconcileError::Render));
        Health::end(&self.health);
        if let Ok(i) = &isolated {
            self.hold.merged(&step.effective, i.composition.selected.iter().map(|o| &*o.name));
        }
        let (now, now_ts) = (Instant::now(), jiff::Timestamp::now());
        let mut outcome = Outcome {
            conversion: isolated.as_ref().map(|i| i.composition.selected.clone()).map_err(|e| e.clone()),
            reload: None,
            generations: BTreeMap::new(),
            malformed: g.malformed.clone(),
            decisions,
            held: self
                .hold
                .held()
                .into_iter()
                .map(|h| HeldDeletion {
                    object: format!("{}/{}", self.node.namespace, h.name),
                    why: h.why,
                    until: now_ts + h.until.saturating_duration_since(now),
                })
                .collect(),
        };
        // without a record of the generations in effect, a refusal waits (FRR keeps what it runs)
        if let Ok(i) = &isolated {
            if let Some(errors) = self.unrecorded_hold(i).await? {
                for d in outcome.decisions.iter().filter(|d| !matches!(d.decision, core::isolation::Decision::Applied)) {
                    tracing::warn!(object = %d.obj, "no record of the generation in effect: FRR keeps what it runs");
                }
                self.metrics.config_stale.set(1);
                outcome.conversion = Err(errors);
                outcome.decisions.clear();
                return self.write_status(outcome, &g).await;
            }
        }
        // 4. apply
        match (&isolated, rendered) {
            (Err(errors), _) => {
                self.metrics.update_errors.inc();
                self.metrics.config_stale.set(1);
                // (a missing Secret may still appear: the Secret watch triggers the next try)
                for e in &errors.0 {
                    tracing::error!(category = "conversion", error = %e, "configuration refused; FRR keeps its current configuration");
                }
            }
            (Ok(_), Some(Err(e))) => {
                self.metrics.update_errors.inc();
                self.metrics.config_stale.set(1);
                tracing::error!(category = e.category(), error = %e, "FRR keeps its current configuration");
                outcome.reload = Some(Err(e));
            }
            (Ok(i), Some(Ok(text))) => {
                let mut result = self.apply(text, &i.composition.model).await?;
                let mut applied = None;
                if let Err(e) = &result {
                    // FRR refuses what some objects bring: charge it to them and apply the rest
                    let charged = self.charge_refusal(e, i, &g, &settings).await?;
                    if !charged.is_empty() {
                        self.frr_refused.extend(charged);
                        let again =
                            self.iso.decide(&settings, Snapshot { node_labels: &g.labels, configs: &g.configs, secrets: &g.secrets }, &self.frr_refused);
                        if let Ok(again) = again {
                            if let Ok(text) = crate::render::render(&again.composition.model) {
                                for d in again.decisions.iter().filter(|d| self.frr_refused.contains_key(&d.obj)) {
                                    tracing::error!(object = %d.obj, reason = d.reason(), error = %redact(&d.message()), "configuration refused by FRR");
                                }
                                result = self.apply(text, &again.composition.model).await?;
                                self.metrics.objects_held.set(again.held() as i64);
                                self.metrics.objects_left_out.set(again.left_out() as i64);
                                outcome.conversion = Ok(again.composition.selected.clone());
                                outcome.decisions = again.decisions.clone();
                                applied = Some(again);
                            }
                        }
                    }
                }
                if result.is_ok() {
                    self.iso.commit(applied.as_ref().unwrap_or(i));
                }
                outcome.reload = Some(result);
            }
            (Ok(_), None) => unreachable!("rendered whenever composed"),
        }
        http::lock(&self.health).last_apply_ok = outcome.ok();
        // 5. status (computed by pure functions) and 6. its writes
        self.write_status(outcome, &g).await
    }

    /// FRR refused the composition `i` (`e`): which objects bring what it refuses. Each object
    /// whose current generation is in `i` and that a refused line points at
    /// ([`crate::render::sources_for_line`]) is composed and rendered alone and checked with
    /// FRR's own syntax check; those FRR refuses alone are charged, with the lines and FRR's
    /// words. At most [`MAX_CHARGE_CHECKS`] checks; none charged: the refusal stays the node's
    /// (FRR keeps its last good configuration, the apply is retried).
    async fn charge_refusal(
        &self,
        e: &ReconcileError,
        i: &core::isolation::Isolated,
        g: &Gathered,
        settings: &core::Settings,
    ) -> anyhow::Result<core::isolation::Refusals> {
        use crate::frr::apply::ApplyError;
        let mut charged = core::isolation::Refusals::new();
        let ReconcileError::FrrRefused { source: ApplyError::Refused(lines) | ApplyError::Failed(lines), .. } = e else { return Ok(charged) };
        let mut suspects: Vec<core::ObjRef> = Vec::new();
        for r in lines {
            for o in crate::render::sources_for_line(&i.composition.model, &r.line) {
                let current = i.decisions.iter().any(|d| d.obj == o && matches!(d.decision, core::isolation::Decision::Applied));
                if current && !suspects.contains(&o) {
                    suspects.push(o);
                }
            }
        }
        for o in suspects.into_iter().take(MAX_CHARGE_CHECKS) {
            let Some(c) = g.configs.iter().find(|c| core::obj_ref(c) == o) else { continue };
            let Ok(alone) = core::compose(settings, Snapshot { node_labels: &g.labels, configs: std::slice::from_ref(c), secrets: &g.secrets }) else {
                continue;
            };
            let Ok(text) = crate::render::render(&alone.model) else { continue };
            let k = self.keeper.clone();
            let checked = tokio::task::spawn_blocking(move || k.lock().unwrap_or_else(|e| e.into_inner()).applier.location.check(&text)).await?;
            let Ok(refused) = checked else { continue };
            if refused.is_empty() {
                continue;
            }
            let raw = c.spec.raw.raw_config.as_str();
            let field = if refused.iter().all(|r| raw.lines().any(|l| l.trim() == r.line.trim())) { "spec.raw.rawConfig" } else { "spec" };
            let words: Vec<String> = refused.iter().map(|r| format!("`{}`: {}", r.line.trim(), r.message)).collect();
            let reason = redact(&format!("FRR refuses what it brings: {}", words.join("; ")));
            let error = core::Error::Invalid { object: o.clone(), field: field.into(), reason };
            charged.insert(o, (c.metadata.generation.unwrap_or(0), core::Errors::new(vec![error])));
        }
        Ok(charged)
    }

    /// With no record of the generations in effect (`Isolation::unrecorded`) and an object
    /// refused, whether FRR must keep what it runs: the errors to report, naming the objects and
    /// why nothing is applied (None: apply as decided).
    async fn unrecorded_hold(&self, i: &core::isolation::Isolated) -> anyhow::Result<Option<core::Errors>> {
        let Some(why) = self.iso.unrecorded.clone() else { return Ok(None) };
        if i.decisions.iter().all(|d| matches!(d.decision, core::isolation::Decision::Applied)) {
            return Ok(None);
        }
        // what FRR runs: unreadable counts as a configuration (an apply would fail anyway)
        let k = self.keeper.clone();
        let running = tokio::task::spawn_blocking(move || k.lock().unwrap_or_else(|e| e.into_inner()).applier.location.running_config()).await?;
        let runs_bgp = running.map(|r| r.lines().any(|l| l.starts_with("router bgp"))).unwrap_or(true);
        if !self.iso.must_hold(i, runs_bgp) {
            return Ok(None);
        }
        let mut errors: Vec<core::Error> = i
            .decisions
            .iter()
            .flat_map(|d| match &d.decision {
                core::isolation::Decision::Applied => Vec::new(),
                core::isolation::Decision::HeldAtLastGood { errors, .. } | core::isolation::Decision::LeftOut { errors } => errors.0.clone(),
            })
            .collect();
        errors.push(core::Error::Setting {
            setting: "generations in effect".into(),
            reason: format!("no record of them ({why}): which generation of a refused object FRR runs is not known, so FRR keeps what it runs until every selected object applies"),
        });
        Ok(Some(core::Errors::new(errors)))
    }

    /// Step 4: FRR brought to `text` by the keeper (on a blocking thread).
    async fn apply(&mut self, text: String, model: &core::Model) -> anyhow::Result<Result<(), ReconcileError>> {
        let k = self.keeper.clone();
        let started = Instant::now();
        Health::begin(&self.health, "apply", APPLY_LIMIT);
        let result = tokio::task::spawn_blocking(move || k.lock().unwrap_or_else(|e| e.into_inner()).apply(&text)).await?;
        Health::end(&self.health);
        let m = &self.metrics;
        m.apply_duration.observe(started.elapsed().as_secs_f64());
        Ok(match result {
            Ok(r) => {
                // the first apply is always logged: after a restart it should send nothing
                let first = m.applies.get() == 0;
                if r.commands > 0 || first {
                    tracing::info!(
                        commands = r.commands,
                        added = r.added.len(),
                        removed = r.removed.len(),
                        ms = r.total.as_millis() as u64,
                        check_ms = r.check.as_millis() as u64,
                        apply_ms = r.apply.as_millis() as u64,
                        verify_ms = r.verify.as_millis() as u64,
                        first,
                        "applied"
                    );
                }
                m.applies.inc();
                m.commands_sent.inc_by(r.commands as u64);
                m.config_loaded.set(1);
                m.config_stale.set(0);
                Ok(())
            }
            Err(e) => {
                m.apply_errors.inc();
                m.update_errors.inc();
                m.config_stale.set(1);
                let e = ReconcileError::from_apply(e, model);
                let retry_in = self.keeper.lock().unwrap_or_else(|e| e.into_inner()).retry_in(Instant::now()).unwrap_or_default();
                tracing::error!(category = e.category(), error = %e, retry_in_s = retry_in.as_secs(), "apply failed; FRR keeps its last good configuration");
                Err(e)
            }
        })
    }

    /// The running FRR's version, read at every reconcile (an FRR container upgraded beside a
    /// running agent shows its new version with the re-apply that its restart causes); a failed
    /// read (FRR restarting) keeps the version last read.
    async fn frr_version(&self) -> Option<String> {
        let k = self.keeper.clone();
        let read = tokio::task::spawn_blocking(move || k.lock().unwrap_or_else(|e| e.into_inner()).applier.location.version().ok()).await.ok().flatten();
        let mut snapshot = self.metrics.frr.0.lock().unwrap_or_else(|e| e.into_inner());
        if read.is_some() {
            snapshot.version = read;
        }
        snapshot.version.clone()
    }

    /// Steps 5 and 6: the status values, then the writes (each only when it changed).
    async fn write_status(&mut self, mut outcome: Outcome, g: &Gathered) -> anyhow::Result<()> {
        // the running configuration read back by the apply (or, when nothing was applied, now)
        let k = self.keeper.clone();
        let running = tokio::task::spawn_blocking(move || {
            let k = k.lock().unwrap_or_else(|e| e.into_inner());
            match &k.applier.last_running {
                Some(r) => Ok(r.clone()),
                None => k.applier.location.running_config(),
            }
        })
        .await?;
        // as read at the start of this reconcile
        let version = self.metrics.frr.0.lock().unwrap_or_else(|e| e.into_inner()).version.clone();
        // observed generations: those in effect in FRR
        outcome.generations = self.iso.ledger.objects.iter().map(|(o, e)| (o.clone(), e.generation)).collect();
        let now = jiff::Timestamp::now();
        let mut status = node_status(&outcome, running.ok().map(|r| redact(&r)), &mut self.reported, now);
        status.frr_version = version;
        let object_conditions = self.object_conditions.update(&outcome.decisions, now);
        self.events.publish(&outcome.decisions, &g.configs).await;
        let entries = config_entries(&outcome);
        // an API server that is away must not hold the agent: writes time out and are retried
        // with the next status change
        let results = [
            ("writing FRRNodeState", tokio::time::timeout(API_TIMEOUT, self.writer.node_state(&g.node_uid, status)).await.map(|r| r.map(|_| ()))),
            (
                "writing FRRConfiguration status",
                tokio::time::timeout(API_TIMEOUT, self.writer.config_entries(entries, &object_conditions, &self.own_entries)).await,
            ),
        ];
        for (what, r) in results {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let e = ReconcileError::api(what, e);
                    tracing::warn!(category = e.category(), error = %e, "status not written");
                }
                Err(_) => tracing::warn!(category = "api", "{what} timed out"),
            }
        }
        Ok(())
    }
}

fn log_hold_down<V>(namespace: &str, step: &holddown::Step<V>, hold: Duration) {
    for n in &step.started {
        let msg = match step.held.get(n).map(|h| h.why) {
            Some(holddown::Why::Deleted) => "FRRConfiguration deleted; its configuration stays until the hold-down ends",
            Some(holddown::Why::Emptied) => "FRRConfiguration emptied (it advertises nothing now); its previous configuration stays until the hold-down ends",
            _ => "FRRConfiguration advertises less; what it withdraws stays until the hold-down ends (new prefixes apply at once)",
        };
        tracing::info!(object = %format!("{namespace}/{n}"), hold_down_ms = hold.as_millis() as u64, "{msg}");
    }
    for n in &step.cancelled {
        tracing::info!(object = %format!("{namespace}/{n}"), "FRRConfiguration advertises again within its hold-down everything it withdrew (recreated or refilled), or changed in a way that applies at once; nothing is withdrawn");
    }
    for n in &step.expired {
        tracing::info!(object = %format!("{namespace}/{n}"), "hold-down ended; what the deleted, emptied or shrunk FRRConfiguration withdrew is withdrawn");
    }
}

#[cfg(test)]
mod tests {
    use super::watch::{configs_to_read, NodeInfo};
    use super::*;

    const MS: Duration = Duration::from_millis(1);

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
}
