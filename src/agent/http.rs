//! The agent's HTTP endpoints: `/metrics` on the metrics address; `/healthz`, `/readyz` and
//! `/livez` on the health address. What each answers is a pure function of what the agent
//! knows ([`Health`]) or of the daemons FRR has listening, so it is tested without a server.
//!
//! - `/healthz` (the agent's liveness probe): 500 while a reconcile step runs past its limit
//!   (the agent is stuck), else 200.
//! - `/readyz`: 200 once the caches are synced and the last apply succeeded, else 503.
//! - `/livez` (FRR's liveness probe): 200 when every required daemon listens, 503 when one
//!   does not (naming them), 500 when the daemons cannot be asked.
//!
//! Every lock recovers from poisoning: a panic elsewhere never takes a probe down with it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;

use super::args::ControllerArgs;
use super::metrics::Metrics;

/// What the health endpoints report.
#[derive(Default)]
pub struct Health {
    pub synced: bool,
    pub last_apply_ok: bool,
    /// The reconcile step running now: since when, which, and how long it may take.
    busy: Option<(Instant, &'static str, Duration)>,
}

/// How long composing and rendering may take: milliseconds normally, seconds for the largest
/// inputs; longer means the agent is stuck (work is bounded, so this is a bug to surface).
pub const COMPOSE_LIMIT: Duration = Duration::from_secs(60);
/// How long an apply may take (vtysh calls have their own limits; a batch of 100,000 lines
/// needs a few minutes on FRR 8.4).
pub const APPLY_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The lock, also after a panic while it was held (the data is plain flags).
pub fn lock(this: &Mutex<Health>) -> MutexGuard<'_, Health> {
    this.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    pub fn begin(this: &Mutex<Health>, step: &'static str, limit: Duration) {
        lock(this).busy = Some((Instant::now(), step, limit));
    }
    pub fn end(this: &Mutex<Health>) {
        lock(this).busy = None;
    }
    /// `/healthz`: fails while a reconcile step has run longer than its limit.
    fn liveness(&self, now: Instant) -> (StatusCode, String) {
        match self.busy {
            Some((since, step, limit)) if now.saturating_duration_since(since) > limit => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reconcile stuck: {step} running for {} s (limit {} s)", now.saturating_duration_since(since).as_secs(), limit.as_secs()),
            ),
            _ => (StatusCode::OK, "ok".to_string()),
        }
    }
    /// `/readyz`.
    fn readiness(&self) -> (StatusCode, String) {
        if self.synced && self.last_apply_ok {
            (StatusCode::OK, "ready".to_string())
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, format!("synced: {}, last apply ok: {}", self.synced, self.last_apply_ok))
        }
    }
}

/// `/livez` from the daemons FRR has listening: 503 (the service is unavailable) while a
/// required daemon is not among them.
fn daemons_live(required: &[String], listening: &[String]) -> (StatusCode, String) {
    let missing: Vec<&String> = required.iter().filter(|r| !listening.contains(r)).collect();
    if missing.is_empty() {
        (StatusCode::OK, "FRR is live".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("daemons not running: {missing:?}"))
    }
}

/// Serves `/metrics` and the health endpoints on their addresses (in the background).
pub fn serve(args: &ControllerArgs, metrics: Metrics, health: Arc<Mutex<Health>>) {
    let metrics_app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode()) }
        }),
    );
    let loc = args.frr.location();
    let required = args.required_daemons.clone();
    let (h1, h2) = (health.clone(), health);
    let health_app = axum::Router::new()
        .route(
            "/healthz",
            get(move || {
                let h = h1.clone();
                async move { lock(&h).liveness(Instant::now()) }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let h = h2.clone();
                async move { lock(&h).readiness() }
            }),
        )
        .route(
            "/livez",
            get(move || {
                let (loc, required) = (loc.clone(), required.clone());
                async move {
                    match tokio::task::spawn_blocking(move || loc.listening_daemons()).await {
                        Ok(Ok(listening)) => daemons_live(&required, &listening),
                        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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
        assert_eq!(lock(&h).liveness(now).0, StatusCode::OK);
        Health::begin(&h, "compose and render", COMPOSE_LIMIT);
        assert_eq!(lock(&h).liveness(Instant::now()).0, StatusCode::OK, "busy within the limit is healthy");
        let (code, msg) = lock(&h).liveness(Instant::now() + COMPOSE_LIMIT + Duration::from_secs(1));
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(msg.contains("stuck: compose and render"), "{msg}");
        Health::end(&h);
        assert_eq!(lock(&h).liveness(Instant::now() + Duration::from_secs(3600)).0, StatusCode::OK);
    }

    #[test]
    fn livez_is_503_while_a_required_daemon_is_down() {
        let required = vec!["zebra".to_string(), "bgpd".to_string()];
        let all = vec!["mgmtd".to_string(), "zebra".to_string(), "bgpd".to_string(), "staticd".to_string()];
        assert_eq!(daemons_live(&required, &all).0, StatusCode::OK);
        let (code, msg) = daemons_live(&required, &all[..2]);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(msg.contains("bgpd") && !msg.contains("zebra"), "{msg}");
    }

    #[test]
    fn readyz_answers_after_a_panic_while_the_lock_was_held() {
        let h = Arc::new(Mutex::new(Health::default()));
        assert_eq!(lock(&h).readiness().0, StatusCode::SERVICE_UNAVAILABLE);
        let h2 = h.clone();
        let _ = std::thread::spawn(move || {
            let mut g = h2.lock().unwrap();
            g.synced = true;
            g.last_apply_ok = true;
            panic!("a panic while holding the health lock");
        })
        .join();
        assert!(h.is_poisoned());
        assert_eq!(lock(&h).readiness(), (StatusCode::OK, "ready".to_string()));
    }
}
