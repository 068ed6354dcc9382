//! `frr-composer controller`: the node agent. It watches its namespace's FRRConfigurations,
//! Secrets and FRRK8sConfiguration and its own Node, and keeps the local FRR at the merged
//! configuration: debounced, never from an unsynced cache, retried with backoff, self-healing.
//! It reports FRRNodeState, BGPSessionState and per-configuration status, and serves health
//! and metrics.

pub mod holddown;
pub mod isolation;
pub mod lastgood;
pub mod metrics;
pub mod status;
pub mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::Client;
use tokio::sync::Notify;

use crate::api::FRRNodeStateStatus;
use crate::core::{self, Errors, ObjRef, Settings, Snapshot};
use crate::frr::apply::{Applier, ApplyError};
use crate::frr::{redact, state};
use crate::settings::{set_log_level, FrrArgs, LogLevelArg};
use crate::signals::Shutdown;
use metrics::Metrics;
use status::StatusWriter;

#[derive(clap::Args, Clone, Debug)]
pub struct ControllerArgs {
    /// The node this agent serves (downward API: spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Namespace of the FRRConfigurations, Secrets and FRRK8sConfiguration to read.
    #[arg(long, env = "NAMESPACE")]
    pub namespace: String,
    #[command(flatten)]
    pub frr: FrrArgs,
    /// CIDRs refused from every neighbor, comma-separated.
    #[arg(long, value_delimiter = ',', env = "FRR_COMPOSER_ALWAYS_BLOCK")]
    pub always_block: Vec<String>,
    /// Quiet time after the last change before applying (a burst becomes one apply).
    #[arg(long, default_value_t = 200, env = "FRR_COMPOSER_DEBOUNCE_MS")]
    pub debounce_ms: u64,
    /// How long the configuration of a deleted FRRConfiguration, or of one that stops
    /// advertising anything, stays in FRR (0: withdraw at once). Advertising again within this
    /// time changes nothing (MetalLB's speaker deletes or empties its object when it restarts);
    /// other content changes apply at once.
    #[arg(long, default_value = "5s", value_parser = holddown::parse_duration, env = "FRR_COMPOSER_DELETION_HOLD_DOWN")]
    pub deletion_hold_down: Duration,
    /// Log level of the agent and default FRR log level (FRRK8sConfiguration `config` overrides).
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: LogLevelArg,
    /// Prometheus metrics address.
    #[arg(long, default_value = "0.0.0.0:9140")]
    pub metrics_address: SocketAddr,
    /// Health address (/healthz, /readyz, /livez).
    #[arg(long, default_value = "127.0.0.1:7572")]
    pub health_address: SocketAddr,
    /// Seconds between checks of FRR's running configuration for drift.
    #[arg(long, default_value_t = 30)]
    pub drift_interval: u64,
    /// Seconds between reads of BGP/BFD state (BGPSessionState, metrics).
    #[arg(long, default_value_t = 2)]
    pub poll_interval: u64,
    /// Also write the applied configuration to this file, so FRR restarts with it.
    #[arg(long, value_name = "FILE")]
    pub persist: Option<std::path::PathBuf>,
    /// The hostname written into frr.conf (default: this machine's hostname).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Directory (owned by the agent, not writable by others) where the generations of the
    /// FRRConfigurations in effect are kept across restarts (unset: kept in memory only).
    #[arg(long, env = "FRR_COMPOSER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// Daemons that must run for FRR to be live (/livez).
    #[arg(long, value_delimiter = ',', default_value = "zebra,bgpd")]
    pub required_daemons: Vec<String>,
}

/// What the health endpoints report.
#[derive(Default)]
struct Health {
    synced: bool,
    last_apply_ok: bool,
    /// The reconcile step running now: since when, which, and how long it may take.
    busy: Option<(Instant, &'static str, Duration)>,
}

/// How long composing and rendering may take: milliseconds normally, seconds for the largest
/// inputs; longer means the agent is stuck (work is bounded, so this is a bug to surface).
const COMPOSE_LIMIT: Duration = Duration::from_secs(60);
/// How long an apply may take (vtysh calls have their own limits; a batch of 100,000 lines
/// needs a few minutes on FRR 8.4).
const APPLY_LIMIT: Duration = Duration::from_secs(30 * 60);

impl Health {
    fn begin(this: &Mutex<Health>, step: &'static str, limit: Duration) {
        this.lock().unwrap_or_else(|e| e.into_inner()).busy = Some((Instant::now(), step, limit));
    }
    fn end(this: &Mutex<Health>) {
        this.lock().unwrap_or_else(|e| e.into_inner()).busy = None;
    }
    /// `/healthz`: fails while a reconcile step has run longer than its limit.
    fn liveness(&self, now: Instant) -> (axum::http::StatusCode, String) {
        match self.busy {
            Some((since, step, limit)) if now.saturating_duration_since(since) > limit => (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("reconcile stuck: {step} running for {} s (limit {} s)", now.saturating_duration_since(since).as_secs(), limit.as_secs()),
            ),
            _ => (axum::http::StatusCode::OK, "ok".to_string()),
        }
    }
}

/// The outcome of one reconcile, for status.
struct Outcome {
    conversion: Result<Vec<ObjRef>, Errors>,
    reload: Option<Result<(), String>>,
    generations: BTreeMap<String, i64>,
    malformed: BTreeMap<String, String>,
    /// Per selected object: which generation is in effect (per-object isolation).
    decisions: Vec<core::isolation::ObjectDecision>,
    /// Deleted FRRConfigurations still in effect, with the end of their hold-down.
    held: Vec<(String, bool, jiff::Timestamp)>,
}

/// Runs until `stop` is set: a stop is taken only between reconciles, so a batch that is being
/// applied finishes (or is rolled back by the applier) and its status is written first.
pub async fn run(args: ControllerArgs, stop: Shutdown) -> anyhow::Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API server")?;
    let shared = watch::Shared { snapshot: Arc::new(Mutex::new(watch::Snapshot::default())), changed: Arc::new(Notify::new()) };
    watch::spawn(client.clone(), &args.namespace, &args.node_name, shared.clone());
    let metrics = Metrics::new();
    let health = Arc::new(Mutex::new(Health::default()));
    serve(&args, metrics.clone(), health.clone());

    let mut always_block = Vec::new();
    for c in args.always_block.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        always_block.push(core::values::parse_prefix(c).map_err(|e| anyhow::anyhow!("--always-block: {e}"))?);
    }
    let hostname = args.hostname.clone().unwrap_or_else(crate::settings::hostname_of_this_machine);
    let node_has_ipv4 = crate::settings::host_has_ipv4();
    let applier = Arc::new(Mutex::new({
        let mut a = Applier::new(args.frr.location());
        a.persist = args.persist.clone();
        a
    }));
    // separate writers: a slow session write never holds up the status of an apply
    let mut writer = StatusWriter::new(client.clone(), &args.node_name, &args.namespace);
    let mut iso = isolation::Isolation::open(client.clone(), &args.node_name, args.state_dir.as_deref());
    spawn_session_poller(&args, StatusWriter::new(client.clone(), &args.node_name, &args.namespace), shared.clone(), metrics.clone());

    // Never render from an unsynced cache: an empty cache would wipe FRR.
    loop {
        if shared.snapshot.lock().expect("snapshot").synced() {
            break;
        }
        tokio::select! {
            _ = stop.wait() => return stopped(),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    tracing::info!(node = %args.node_name, namespace = %args.namespace, "caches synced");
    health.lock().expect("health").synced = true;

    let debounce = Duration::from_millis(args.debounce_ms);
    let mut backoff = Duration::from_secs(1);
    let mut retry_at: Option<Instant> = None;
    let mut last_drift_check = Instant::now();
    let mut log_level = None;
    let mut previous_conditions = Vec::new();
    // a refused conversion applies nothing: the status keeps the last reload's result
    let mut last_reload: Option<String> = None;
    let mut desired_text: Option<String> = None;
    let mut first = true;
    let mut hold = holddown::HoldDown::new(args.deletion_hold_down, |c: &watch::ConfigEntry| {
        c.as_ref().is_ok_and(|c| c.spec.bgp.routers.iter().any(|r| !r.prefixes.is_empty()))
    });
    let mut restart_seen: Option<Instant> = None;
    loop {
        // wait for a change, a retry, or the periodic self-healing check
        let woke_by_change = if first {
            first = false;
            true
        } else {
            tokio::select! {
                _ = stop.wait() => return stopped(),
                _ = shared.changed.notified() => true,
                _ = tokio::time::sleep(hold.next_wake().map_or(Duration::from_millis(500), |t| t.saturating_duration_since(Instant::now()).min(Duration::from_millis(500)))) => false,
            }
        };
        if woke_by_change {
            // coalesce a burst: wait until nothing changed for `debounce` (at most 2 s)
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                tokio::select! {
                    _ = stop.wait() => return stopped(),
                    _ = shared.changed.notified() => continue,
                    _ = tokio::time::sleep(debounce) => break,
                }
            }
        } else {
            let due_retry = retry_at.is_some_and(|t| Instant::now() >= t);
            // a restart is a verified state whose daemons changed; a failed apply has no state
            // and waits for its backoff instead of retrying on every tick
            let restarted = desired_text.is_some() && {
                let a = applier.lock().expect("applier");
                a.state.is_some() && !a.state_is_current()
            };
            // With --persist, a restarted FRR loads the last applied configuration itself: give it
            // that time, so that the re-apply finds everything in place and sends nothing.
            let restarted = match (restarted, restart_seen) {
                (false, _) => {
                    restart_seen = None;
                    false
                }
                (true, None) if args.persist.is_some() => {
                    restart_seen = Some(Instant::now());
                    false
                }
                (true, Some(seen)) => seen.elapsed() >= RESTART_SETTLE,
                (true, None) => true,
            };
            let drift_due = last_drift_check.elapsed() >= Duration::from_secs(args.drift_interval);
            let hold_due = hold.next_wake().is_some_and(|t| Instant::now() >= t);
            if !(due_retry || restarted || drift_due || hold_due) {
                continue;
            }
            if drift_due {
                last_drift_check = Instant::now();
                let a = applier.clone();
                let drift = tokio::task::spawn_blocking(move || a.lock().expect("applier").check_drift()).await?;
                match drift {
                    Ok(Some(d)) => {
                        metrics.drift_repairs.inc();
                        tracing::warn!(drift = %redact(&d.to_string()), "FRR's running configuration drifted; repairing");
                        applier.lock().expect("applier").invalidate();
                    }
                    Ok(None) if !due_retry && !restarted && !hold_due => continue,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "drift check");
                        continue;
                    }
                }
            }
            if restarted {
                tracing::warn!("FRR daemons restarted; re-applying");
            }
        }
        metrics.updates.inc();

        // snapshot -> core
        let (configs, malformed, secrets, labels, node_uid, settings_level, generations, step) = {
            let s = shared.snapshot.lock().expect("snapshot");
            // deleted objects stay for their hold-down
            let step = hold.advance(&s.configs, Instant::now());
            let mut configs = Vec::new();
            let mut malformed = BTreeMap::new();
            let mut generations = BTreeMap::new();
            let node_labels = s.node().map(|n| n.labels.clone()).unwrap_or_default();
            for (name, c) in &step.effective {
                match c {
                    // only the configurations this node may merge are copied out (an invalid
                    // selector is kept, so that its error is reported)
                    Ok(c) if c.spec.node_selector.as_ref().is_none_or(|sel| core::selector_matches(sel, &node_labels) != Ok(false)) => {
                        generations.insert(name.clone(), c.metadata.generation.unwrap_or(0));
                        configs.push(c.clone());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        malformed.insert(name.clone(), e.clone());
                    }
                }
            }
            let uid = s.node().and_then(|n| n.uid.clone());
            let level = s.settings().and_then(|c| c.spec.log_level);
            (configs, malformed, s.secrets.clone(), node_labels, uid, level, generations, step)
        };
        log_hold_down(&args.namespace, &step, hold.hold);
        let Some(node_uid) = node_uid else {
            tracing::warn!(node = %args.node_name, "the Node does not exist; waiting");
            continue;
        };
        let level = settings_level.unwrap_or(args.log_level.into());
        if log_level != Some(level) {
            set_log_level(level);
            tracing::info!(level = ?level, "log level");
            log_level = Some(level);
        }
        let settings =
            Settings { namespace: args.namespace.clone(), hostname: hostname.clone(), log_level: level, always_block: always_block.clone(), node_has_ipv4 };
        for (name, e) in &malformed {
            tracing::error!(object = %format!("{}/{name}", args.namespace), error = %e, "malformed FRRConfiguration left out");
        }
        Health::begin(&health, "compose and render", COMPOSE_LIMIT);
        // per-object isolation: every valid object applies; refused ones keep their last good
        // generation or are left out (core::isolation)
        let isolated = iso.decide(&settings, Snapshot { node_labels: &labels, configs: &configs, secrets: &secrets });
        let composed = isolated.as_ref().map(|i| i.composition.clone()).map_err(|e| e.clone());
        tracing::debug!(configs = configs.len(), selected = composed.as_ref().map(|c| c.selected.len()).unwrap_or(0), ok = composed.is_ok(), "composed");
        let decisions = isolated.as_ref().map(|i| i.decisions.clone()).unwrap_or_default();
        for d in decisions.iter().filter(|d| !matches!(d.decision, core::isolation::Decision::Applied)) {
            tracing::error!(object = %d.obj, reason = d.reason(), error = %redact(&d.message()), "configuration refused");
        }
        if let Ok(i) = &isolated {
            metrics.objects_held.set(i.held() as i64);
            metrics.objects_left_out.set(i.left_out() as i64);
        }
        // the generations reported are those in effect (from the ledger, after the apply)
        let _ = generations;
        let mut outcome = Outcome {
            conversion: composed.as_ref().map(|c| c.selected.clone()).map_err(|e| e.clone()),
            reload: None,
            generations: BTreeMap::new(),
            malformed,
            decisions,
            held: Vec::new(),
        };
        let rendered = composed.as_ref().ok().map(|c| crate::render::render(&c.model));
        Health::end(&health);
        if let Ok(c) = &composed {
            hold.merged(&step.effective, c.selected.iter().map(|o| &*o.name));
        }
        let (now, now_ts) = (Instant::now(), jiff::Timestamp::now());
        outcome.held =
            hold.held().into_iter().map(|(n, deleted, t)| (format!("{}/{n}", args.namespace), deleted, now_ts + t.saturating_duration_since(now))).collect();
        match composed {
            Err(errors) => {
                metrics.update_errors.inc();
                metrics.config_stale.set(1);
                // (a missing Secret may still appear: the Secret watch triggers the next try)
                for e in &errors.0 {
                    tracing::error!(error = %e, "configuration refused; FRR keeps its current configuration");
                }
            }
            Ok(c) => {
                let text = match rendered.expect("rendered when composed") {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "render");
                        continue;
                    }
                };
                desired_text = Some(text.clone());
                let a = applier.clone();
                let started = Instant::now();
                let model = c.model.clone();
                Health::begin(&health, "apply", APPLY_LIMIT);
                let result = tokio::task::spawn_blocking(move || a.lock().expect("applier").apply(&text)).await?;
                Health::end(&health);
                metrics.apply_duration.observe(started.elapsed().as_secs_f64());
                match result {
                    Ok(r) => {
                        // the first apply is always logged: after a restart it should send nothing
                        let first = metrics.applies.get() == 0;
                        if r.commands > 0 || first {
                            tracing::info!(
                                commands = r.commands,
                                added = r.added.len(),
                                removed = r.removed.len(),
                                ms = r.total.as_millis() as u64,
                                first,
                                "applied"
                            );
                        }
                        metrics.applies.inc();
                        metrics.commands_sent.inc_by(r.commands as u64);
                        metrics.config_loaded.set(1);
                        metrics.config_stale.set(0);
                        retry_at = None;
                        backoff = Duration::from_secs(1);
                        outcome.reload = Some(Ok(()));
                        if let Ok(i) = &isolated {
                            iso.commit(i);
                        }
                    }
                    Err(e) => {
                        metrics.apply_errors.inc();
                        metrics.update_errors.inc();
                        metrics.config_stale.set(1);
                        let msg = match &e {
                            ApplyError::Refused(r) | ApplyError::Failed(r) => {
                                let lines: Vec<String> = r
                                    .iter()
                                    .map(|r| {
                                        let from =
                                            crate::render::sources_for_line(&model, &r.line).iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ");
                                        format!("{}: {} (from FRRConfiguration {from})", r.line, r.message)
                                    })
                                    .collect();
                                format!(
                                    "{}: {}",
                                    if matches!(e, ApplyError::Refused(_)) {
                                        "FRR refuses the configuration"
                                    } else {
                                        "FRR refused commands; previous configuration restored"
                                    },
                                    lines.join("; ")
                                )
                            }
                            other => other.to_string(),
                        };
                        let msg = redact(&msg);
                        tracing::error!(error = %msg, retry_in_s = backoff.as_secs(), "apply failed; FRR keeps its last good configuration");
                        retry_at = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        outcome.reload = Some(Err(msg));
                    }
                }
            }
        }
        {
            let mut h = health.lock().expect("health");
            h.last_apply_ok = matches!((&outcome.conversion, &outcome.reload), (Ok(_), Some(Ok(()))));
        }
        // status, right after the apply
        // the running configuration read back by the apply (or, when nothing was applied, now)
        let a = applier.clone();
        let running = tokio::task::spawn_blocking(move || {
            let a = a.lock().expect("applier");
            match &a.last_running {
                Some(r) => Ok(r.clone()),
                None => a.location.running_config(),
            }
        })
        .await?;
        // observed generations: those in effect in FRR
        outcome.generations = iso.ledger.objects.iter().map(|(o, e)| (o.clone(), e.generation)).collect();
        let status = node_status(&outcome, running.ok().map(|r| redact(&r)), &mut previous_conditions, &mut last_reload);
        let object_conditions = iso.object_conditions(&outcome.decisions, jiff::Timestamp::now());
        iso.publish_events(&outcome.decisions, &configs).await;
        let config_entries = config_entries(&outcome);
        // an API server that is away must not hold the agent: writes time out and are retried
        // with the next status change
        match tokio::time::timeout(API_TIMEOUT, writer.node_state(&node_uid, status)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "writing FRRNodeState"),
            Err(_) => tracing::warn!("writing FRRNodeState timed out"),
        }
        match tokio::time::timeout(API_TIMEOUT, writer.config_entries(config_entries, &object_conditions)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "writing FRRConfiguration status"),
            Err(_) => tracing::warn!("writing FRRConfiguration status timed out"),
        }
    }
}

/// Every status write is awaited right after its apply, so nothing is left to flush.
fn stopped() -> anyhow::Result<()> {
    tracing::info!("stopped");
    Ok(())
}

fn node_status(
    o: &Outcome,
    running: Option<String>,
    previous: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    last_reload: &mut Option<String>,
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
    let ok = o.conversion.is_ok() && matches!(o.reload, Some(Ok(())));
    let (reason, message) = match (&o.conversion, &o.reload) {
        (Err(_), _) => ("ConversionFailed", conversion.clone()),
        (Ok(_), Some(Err(e))) => ("ReloadFailed", e.clone()),
        _ => ("Applied", "FRR runs the merged configuration".to_string()),
    };
    let now = jiff::Timestamp::now();
    let mut conditions = status::conditions(previous, ok, reason, &message, None, now);
    conditions.push(isolation::node_condition(&o.decisions, previous, now));
    conditions.push(holddown::condition(previous, &o.held, now));
    *previous = conditions.clone();
    FRRNodeStateStatus {
        running_config: running,
        last_reload_result: reload,
        last_conversion_result: Some(conversion),
        observed_generations: o.generations.clone(),
        conditions,
    }
}

/// Per FRRConfiguration: applied here (None) or the reason it is not.
fn config_entries(o: &Outcome) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    match &o.conversion {
        Ok(_) => {
            for d in &o.decisions {
                let entry = match &d.decision {
                    core::isolation::Decision::Applied => o.reload.as_ref().and_then(|r| r.as_ref().err().cloned()),
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

fn log_hold_down<V>(namespace: &str, step: &holddown::Step<V>, hold: Duration) {
    for n in &step.started {
        let deleted = step.held.get(n).is_some_and(|h| h.deleted);
        let msg = if deleted {
            "FRRConfiguration deleted; its configuration stays until the hold-down ends"
        } else {
            "FRRConfiguration emptied (it advertises nothing now); its previous configuration stays until the hold-down ends"
        };
        tracing::info!(object = %format!("{namespace}/{n}"), hold_down_ms = hold.as_millis() as u64, "{msg}");
    }
    for n in &step.cancelled {
        tracing::info!(object = %format!("{namespace}/{n}"), "FRRConfiguration advertises again within its hold-down (recreated or refilled); the deletion is not applied");
    }
    for n in &step.expired {
        tracing::info!(object = %format!("{namespace}/{n}"), "hold-down ended; the deleted or emptied FRRConfiguration's previous configuration is withdrawn");
    }
}

const API_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restarted FRR gets to load its persisted configuration before the agent checks it.
const RESTART_SETTLE: Duration = Duration::from_secs(5);

fn spawn_session_poller(args: &ControllerArgs, mut writer: StatusWriter, shared: watch::Shared, metrics: Metrics) {
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
                let mut s = metrics.frr.0.lock().expect("metrics");
                s.neighbors = neighbors.clone();
                s.bfd = bfd;
                s.bfd_counters = counters;
            }
            let uid = shared.snapshot.lock().expect("snapshot").node().and_then(|n| n.uid.clone());
            let Some(uid) = uid else { continue };
            match tokio::time::timeout(API_TIMEOUT, writer.sessions(&uid, &neighbors, jiff::Timestamp::now())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "writing BGPSessionStates"),
                Err(_) => tracing::warn!("writing BGPSessionStates timed out"),
            }
        }
    });
}

fn serve(args: &ControllerArgs, metrics: Metrics, health: Arc<Mutex<Health>>) {
    use axum::routing::get;
    let m = metrics.clone();
    let metrics_app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = m.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode()) }
        }),
    );
    let loc = args.frr.location();
    let required = args.required_daemons.clone();
    let h1 = health.clone();
    let health_app = axum::Router::new()
        .route(
            "/healthz",
            get({
                let h = health.clone();
                move || {
                    let h = h.clone();
                    async move { h.lock().unwrap_or_else(|e| e.into_inner()).liveness(Instant::now()) }
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let h = h1.clone();
                async move {
                    let h = h.lock().expect("health");
                    if h.synced && h.last_apply_ok {
                        (axum::http::StatusCode::OK, "ready".to_string())
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("synced: {}, last apply ok: {}", h.synced, h.last_apply_ok))
                    }
                }
            }),
        )
        .route(
            "/livez",
            get(move || {
                let loc = loc.clone();
                let required = required.clone();
                async move {
                    match tokio::task::spawn_blocking(move || loc.listening_daemons()).await {
                        Ok(Ok(d)) => {
                            let missing: Vec<&String> = required.iter().filter(|r| !d.contains(r)).collect();
                            if missing.is_empty() {
                                (axum::http::StatusCode::OK, "FRR is live".to_string())
                            } else {
                                (axum::http::StatusCode::NOT_FOUND, format!("daemons not running: {missing:?}"))
                            }
                        }
                        Ok(Err(e)) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                }
            }),
        );
    for (addr, app) in [(args.metrics_address, metrics_app), (args.health_address, health_app)] {
        tokio::spawn(async move {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    if let Err(e) = axum::serve(l, app).await {
                        tracing::error!(error = %e, %addr, "http server");
                    }
                }
                Err(e) => tracing::error!(error = %e, %addr, "cannot listen"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_fails_while_a_reconcile_step_is_stuck() {
        let h = Mutex::new(Health::default());
        let now = Instant::now();
        assert_eq!(h.lock().unwrap().liveness(now).0, axum::http::StatusCode::OK);
        Health::begin(&h, "compose and render", COMPOSE_LIMIT);
        assert_eq!(h.lock().unwrap().liveness(Instant::now()).0, axum::http::StatusCode::OK, "busy within the limit is healthy");
        let (code, msg) = h.lock().unwrap().liveness(Instant::now() + COMPOSE_LIMIT + Duration::from_secs(1));
        assert_eq!(code, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(msg.contains("stuck: compose and render"), "{msg}");
        Health::end(&h);
        assert_eq!(h.lock().unwrap().liveness(Instant::now() + Duration::from_secs(3600)).0, axum::http::StatusCode::OK);
    }
}
