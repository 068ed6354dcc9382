//! `frr-composer controller`: the node agent. It watches its namespace's FRRConfigurations,
//! Secrets and FRRK8sConfiguration and its own Node, and keeps the local FRR at the merged
//! configuration: at once after a quiet period, bursts coalesced, never from an unsynced cache,
//! retried with backoff, self-healing (the FRR keeper, `crate::frr::keeper`). This file holds
//! the loop only: when to reconcile (`trigger`); the steps of a reconcile are in `reconcile`.
//! It reports FRRNodeState, BGPSessionState and per-configuration status, and serves health
//! and metrics.

pub mod args;
pub mod holddown;
mod http;
pub mod isolation;
pub mod lastgood;
pub mod metrics;
pub mod pacer;
pub mod reconcile;
pub mod report;
pub mod status;
pub mod trigger;
pub mod watch;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::Client;

use crate::frr::apply::Applier;
use crate::frr::keeper::Keeper;
use crate::settings::NodeSettings;
use crate::signals::Shutdown;
pub use args::ControllerArgs;
use http::Health;
use metrics::Metrics;
use reconcile::Reconciler;
use status::StatusWriter;
use trigger::Coalescer;
use watch::Watches;

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
    let sessions = StatusWriter::new(client.clone(), &args.node_name, &args.namespace, args.object_status);
    status::spawn_session_poller(Duration::from_secs(args.poll_interval.max(1)), args.frr.location(), sessions, watches.clone(), metrics.clone());
    tracing::info!(node = %args.node_name, namespace = %args.namespace, "caches synced");
    http::lock(&health).synced = true;

    let mut reconciler = Reconciler::new(&args, client, node, &watches, keeper.clone(), metrics, health);
    let mut coalescer = Coalescer::new(Duration::from_millis(args.debounce_ms));
    coalescer.changed(Instant::now());
    loop {
        let now = Instant::now();
        let keeper_at = keeper.lock().unwrap_or_else(|e| e.into_inner()).next_check(now);
        let wake = [coalescer.due_at(), reconciler.next_wake(), Some(keeper_at)].into_iter().flatten().min().unwrap_or(keeper_at);
        tokio::select! {
            _ = stop.wait() => {
                // status writes that wait for their interval go out now
                reconciler.flush_status(true).await;
                return stopped();
            }
            _ = watches.changes.wait() => {
                coalescer.changed(Instant::now());
                continue;
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        reconciler.flush_status(false).await;
        let now = Instant::now();
        let hold_due = reconciler.hold_due(now);
        if !coalescer.take(now) && !hold_due {
            // nothing changed in the API: ask the keeper whether FRR still runs what it should
            let k = keeper.clone();
            let check = tokio::task::spawn_blocking(move || k.lock().unwrap_or_else(|e| e.into_inner()).check(now)).await?;
            if !reconciler.wants_reapply(check) {
                continue;
            }
        }
        let view = watches.view(|name| reconciler.knows(name));
        reconciler.reconcile(&view).await?;
        coalescer.applied(Instant::now());
    }
}

/// Every apply's status was written or flushed above: nothing is left.
fn stopped() -> anyhow::Result<()> {
    tracing::info!("stopped");
    Ok(())
}
