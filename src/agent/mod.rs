//! `frr-composer controller`: the node agent. It watches its namespace's FRRConfigurations,
//! Secrets and FRRK8sConfiguration and its own Node, and keeps the local FRR at the merged
//! configuration: at once after a quiet period, bursts coalesced, never from an unsynced cache,
//! retried with backoff, self-healing (the FRR keeper, `crate::frr::keeper`). The steps of a
//! reconcile are in `reconcile`.
//! It reports FRRNodeState, BGPSessionState and per-configuration status, and serves health
//! and metrics.

pub mod args;
pub mod holddown;
mod http;
pub mod isolation;
pub mod lastgood;
pub mod metrics;
pub mod reconcile;
pub mod report;
pub mod status;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::Client;

use crate::api::LogLevel;
use crate::core::{self, Snapshot};
use crate::frr::apply::Applier;
use crate::frr::keeper::{Check, Keeper, Reason};
use crate::frr::{redact, state};
use crate::settings::{set_log_level, NodeSettings};
use crate::signals::Shutdown;
pub use args::ControllerArgs;
use http::{Health, APPLY_LIMIT, COMPOSE_LIMIT};
use metrics::Metrics;
use reconcile::{config_entries, gather, node_status, Coalescer, Gathered, Outcome, ReconcileError};
use status::StatusWriter;
use watch::{ConfigEntry, View, Watches};

pub async fn run(args: ControllerArgs, stop: Shutdown) -> anyhow::Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API server")?;
    let node = NodeSettings::new(&args.namespace, args.hostname.as_deref(), &args.always_block).map_err(anyhow::Error::msg)?;
    let watches = Watches::start(client.clone(), &args.namespace, &args.node_name);
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    http::serve(&args, metrics.clone(), health.clone());
    let mut applier = Applier::new(args.frr.location());
    applier.persist = args.persist.clone();
    let keeper = Arc::new(Mutex::new(Keeper::new(applier, Duration::from_secs(args.drift_interval))));
    tokio::select! {
        _ = stop.wait() => return stopped(),
        _ = watches.ready() => {}
    }
    // a separate writer: a slow session write never holds up the status of an apply
    spawn_session_poller(&args, StatusWriter::new(client.clone(), &args.node_name, &args.namespace, args.object_status), watches.clone(), metrics.clone());
    tracing::info!(node = %args.node_name, namespace = %args.namespace, "caches synced");
    http::lock(&health).synced = true;

    let mut r = Reconciler {
        node_name: args.node_name.clone(),
        default_level: args.log_level.into(),
        iso: isolation::Isolation::open(client.clone(), &args.node_name, args.state_dir.as_deref()),
        writer: StatusWriter::new(client, &args.node_name, &args.namespace, args.object_status),
        own_entries: watches.own_entries.clone(),
        hold: holddown::HoldDown::new(args.deletion_hold_down),
        node,
        keeper: keeper.clone(),
        metrics,
        health,
        previous_conditions: Vec::new(),
        last_reload: None,
        log_level: None,
    };
    let mut coalescer = Coalescer::new(Duration::from_millis(args.debounce_ms));
    coalescer.changed(Instant::now());
    loop {
        let now = Instant::now();
        let keeper_at = keeper.lock().unwrap_or_else(|e| e.into_inner()).next_check(now);
        let wake = [coalescer.due_at(), r.hold.next_wake(), Some(keeper_at)].into_iter().flatten().min().unwrap_or(keeper_at);
        tokio::select! {
            _ = stop.wait() => return stopped(),
            _ = watches.changes.wait() => {
                coalescer.changed(Instant::now());
                continue;
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        let hold_due = r.hold.next_wake().is_some_and(|t| now >= t);
        if !coalescer.take(now) && !hold_due {
            // nothing changed in the API: ask the keeper whether FRR still runs what it should
            let k = keeper.clone();
            match tokio::task::spawn_blocking(move || k.lock().unwrap_or_else(|e| e.into_inner()).check(now)).await? {
                Check::Fine => continue,
                Check::Unreadable(e) => {
                    tracing::warn!(error = %e, "drift check");
                    continue;
                }
                Check::Reapply(Reason::Restarted) => tracing::warn!("FRR daemons restarted; re-applying"),
                Check::Reapply(Reason::Retry) => tracing::info!("retrying the failed apply"),
                Check::Reapply(Reason::Drift(d)) => {
                    r.metrics.drift_repairs.inc();
                    tracing::warn!(drift = %redact(&d.to_string()), "FRR's running configuration drifted; repairing");
                }
            }
        }
        let view = watches.view(|name| r.hold.knows(name));
        r.reconcile(&view).await?;
        coalescer.applied(Instant::now());
    }
}

/// What the reconcile keeps from one run to the next.
struct Reconciler {
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
    previous_conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    /// A refused conversion applies nothing: the status keeps the last reload's result.
    last_reload: Option<String>,
    log_level: Option<LogLevel>,
}

impl Reconciler {
    /// One reconcile: gather → compose → render → apply → status. Errors are reported in the
    /// status and the log; only a failure of the runtime itself (a panicked task) is returned.
    async fn reconcile(&mut self, view: &View) -> anyhow::Result<()> {
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
        let settings = self.node.core(g.log_level);
        let isolated = self.iso.decide(&settings, Snapshot { node_labels: &g.labels, configs: &g.configs, secrets: &g.secrets });
        let decisions = isolated.as_ref().map(|i| i.decisions.clone()).unwrap_or_default();
        for d in decisions.iter().filter(|d| !matches!(d.decision, core::isolation::Decision::Applied)) {
            tracing::error!(object = %d.obj, reason = d.reason(), error = %redact(&d.message()), "configuration refused");
        }
        if let Ok(i) = &isolated {
            self.metrics.objects_held.set(i.held() as i64);
            self.metrics.objects_left_out.set(i.left_out() as i64);
            tracing::debug!(configs = g.configs.len(), selected = i.composition.selected.len(), "composed");
        }
        // 3. render
        let rendered = isolated.as_ref().ok().map(|i| crate::render::render(&i.composition.model).map_err(|e| ReconcileError::Render(e.to_string())));
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
                .map(|(n, why, t)| (format!("{}/{n}", self.node.namespace), why, now_ts + t.saturating_duration_since(now)))
                .collect(),
        };
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
                let result = self.apply(text, &i.composition.model).await?;
                if result.is_ok() {
                    self.iso.commit(i);
                }
                outcome.reload = Some(result);
            }
            (Ok(_), None) => unreachable!("rendered whenever composed"),
        }
        http::lock(&self.health).last_apply_ok = outcome.ok();
        // 5. status (computed by pure functions) and 6. its writes
        self.write_status(outcome, &g).await
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
                let e = ReconcileError::from_apply(&e, model);
                let retry_in = self.keeper.lock().unwrap_or_else(|e| e.into_inner()).retry_in(Instant::now()).unwrap_or_default();
                tracing::error!(category = e.category(), error = %e, retry_in_s = retry_in.as_secs(), "apply failed; FRR keeps its last good configuration");
                Err(e)
            }
        })
    }

    /// Steps 5 and 6: the status values, then the writes (each only when it changed).
    async fn write_status(&mut self, mut outcome: Outcome, g: &Gathered) -> anyhow::Result<()> {
        // the running configuration read back by the apply (or, when nothing was applied, now)
        let k = self.keeper.clone();
        let (running, version) = tokio::task::spawn_blocking(move || {
            let k = k.lock().unwrap_or_else(|e| e.into_inner());
            let running = match &k.applier.last_running {
                Some(r) => Ok(r.clone()),
                None => k.applier.location.running_config(),
            };
            // read at every reconcile: an FRR container upgraded beside a running agent shows
            // its new version with the re-apply that its restart causes
            (running, k.applier.location.version().ok())
        })
        .await?;
        // a failed read (FRR restarting) keeps the version last read
        let version = {
            let mut snapshot = self.metrics.frr.0.lock().unwrap_or_else(|e| e.into_inner());
            if version.is_some() {
                snapshot.version = version;
            }
            snapshot.version.clone()
        };
        // observed generations: those in effect in FRR
        outcome.generations = self.iso.ledger.objects.iter().map(|(o, e)| (o.clone(), e.generation)).collect();
        let now = jiff::Timestamp::now();
        let mut status = node_status(&outcome, running.ok().map(|r| redact(&r)), &mut self.previous_conditions, &mut self.last_reload, now);
        status.frr_version = version;
        let object_conditions = self.iso.object_conditions(&outcome.decisions, now);
        self.iso.publish_events(&outcome.decisions, &g.configs).await;
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
                    let e = ReconcileError::api(what, &e);
                    tracing::warn!(category = e.category(), error = %e, "status not written");
                }
                Err(_) => tracing::warn!(category = "api", "{what} timed out"),
            }
        }
        Ok(())
    }
}

/// Every status write is awaited right after its apply, so nothing is left to flush.
fn stopped() -> anyhow::Result<()> {
    tracing::info!("stopped");
    Ok(())
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

const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads BGP and BFD state from FRR every poll interval (local vtysh) for the metrics and the
/// BGPSessionStates, which are written only when a session changed. Started once the stores
/// are ready.
fn spawn_session_poller(args: &ControllerArgs, mut writer: StatusWriter, watches: Watches, metrics: Metrics) {
    let interval = Duration::from_secs(args.poll_interval.max(1));
    let loc = args.frr.location();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let l = loc.clone();
            let read = tokio::task::spawn_blocking(move || {
                let n = state::bgp_neighbors(&l)?;
                let b = state::bfd_peers(&l).unwrap_or_default();
                let c = l.show_json("show bfd peers counters json").map(|v| metrics::parse_bfd_counters(&v)).unwrap_or_default();
                Ok::<_, crate::frr::vtysh::FrrError>((n, b, c))
            })
            .await;
            let Ok(Ok((neighbors, bfd, counters))) = read else { continue };
            {
                let mut s = metrics.frr.0.lock().unwrap_or_else(|e| e.into_inner());
                s.neighbors = neighbors.clone();
                s.bfd = bfd;
                s.bfd_counters = counters;
            }
            let Some(uid) = watches.node_uid() else { continue };
            match tokio::time::timeout(API_TIMEOUT, writer.sessions(&uid, &neighbors, &watches.sessions, jiff::Timestamp::now())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(category = "api", error = %e, "writing BGPSessionStates"),
                Err(_) => tracing::warn!(category = "api", "writing BGPSessionStates timed out"),
            }
        }
    });
}
