//! The webhook's HTTPS server, bounded against slow, idle and large clients: time limits for
//! the TLS handshake, the request headers (also between requests on a kept-alive connection)
//! and the body; a limit on open connections (the oldest makes room for a new one); a memory
//! budget for request bodies in flight;
//! and a backoff when accepting fails (EMFILE: out of file descriptors).
//!
//! The API server sends at most 3 MiB per object, and an UPDATE's review carries the object
//! and its old version; `max_body` (8 MiB) accepts that. Memory is reserved from `memory` as
//! a body arrives (twice its bytes, so a client that trickles holds only what it sent), then
//! for parsing (6x the body: the bytes, the parsed review and the typed configurations), so
//! concurrent clients wait instead of growing the process beyond its limit; a client that
//! cannot send its body within `body` gets 408. What parsing costs
//! depends on how many JSON values the body holds, not only on its bytes (`[0,0,...]` costs
//! about 35 times its size), so the values are counted before parsing and the reservation
//! grows to what they cost; a body that could never fit the budget gets 413.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct Limits {
    /// TLS handshake.
    pub handshake: Duration,
    /// Request headers, counted from the first byte expected (so also an idle keep-alive).
    pub headers: Duration,
    /// Request body, including the wait for its memory.
    pub body: Duration,
    pub max_body: usize,
    pub max_connections: usize,
    /// Estimated memory for the bodies in flight and what is parsed from them.
    pub memory: usize,
    /// How long a connection may stay open; then it is closed after its current request.
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handshake: Duration::from_secs(10),
            headers: Duration::from_secs(30),
            body: Duration::from_secs(10),
            max_body: 8 << 20,
            max_connections: 256,
            memory: 48 << 20,
            lifetime: Duration::from_secs(600),
        }
    }
}

/// Memory reserved per body byte (bytes, parsed JSON, typed objects).
const MEMORY_PER_BYTE: usize = 6;

/// Memory reserved per byte while a body arrives: the bytes, and the buffer's growth.
const ARRIVING_PER_BYTE: usize = 2;

/// Memory one parsed JSON value costs beyond its text: a `serde_json::Value` (32 bytes), its
/// place in an array or a map, and the typed copy of it.
const MEMORY_PER_VALUE: usize = 96;

/// The JSON values (scalars and containers) `body` holds, counted in one pass without
/// parsing: commas and openings outside strings. An estimate within one per container.
pub fn json_values(body: &[u8]) -> usize {
    let (mut n, mut in_string, mut escaped) = (1usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// Counters for tests and logs.
#[derive(Debug, Default)]
pub struct Stats {
    pub accept_errors: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub refused_bodies: AtomicU64,
    /// Connections closed to make room for a new one at the connection limit.
    pub evictions: AtomicU64,
}

/// What a request handler needs to read bodies within the limits.
#[derive(Clone)]
pub struct Bodies {
    limits: Limits,
    /// In KiB.
    memory: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl Bodies {
    pub fn new(limits: &Limits, stats: Arc<Stats>) -> Bodies {
        let kib = (limits.memory / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Bodies { limits: limits.clone(), memory: Arc::new(Semaphore::new(kib)), stats }
    }

    /// Reads a request's body within the limits and runs `f` on it (holding its memory).
    /// Memory is reserved as the body arrives (a client that trickles a large body holds only
    /// what it sent), then for what parsing it will cost.
    pub async fn with_body<F, R>(&self, req: Request<Body>, f: F) -> Response
    where
        F: FnOnce(bytes_of::Bytes) -> R + Send + 'static,
        R: IntoResponse + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.limits.body;
        let refuse = |status: StatusCode, msg: String| {
            self.stats.refused_bodies.fetch_add(1, Ordering::Relaxed);
            (status, msg).into_response()
        };
        let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if length.is_some_and(|l| l > self.limits.max_body) {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {} bytes", self.limits.max_body));
        }
        let budget_kib = (self.limits.memory / 1024).max(1);
        let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
        let mut held_kib = 0usize;
        // takes the budget up to `bytes` (in KiB), waiting at most until the deadline
        macro_rules! reserve {
            ($bytes:expr, $busy:expr) => {{
                let want = ($bytes / 1024 + 1).min(budget_kib);
                if want > held_kib {
                    match tokio::time::timeout_at(deadline, self.memory.clone().acquire_many_owned((want - held_kib) as u32)).await {
                        Ok(Ok(p)) => match &mut permit {
                            Some(held) => held.merge(p),
                            None => permit = Some(p),
                        },
                        _ => {
                            tracing::warn!(held_kib, want_kib = want, "admission review refused: no memory in time");
                            return refuse(StatusCode::SERVICE_UNAVAILABLE, $busy.into());
                        }
                    }
                    held_kib = want;
                }
            }};
        }
        let mut data = futures::StreamExt::fuse(req.into_body().into_data_stream());
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = match tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut data)).await {
                Ok(None) => break,
                Ok(Some(Ok(c))) => c,
                Ok(Some(Err(e))) => return refuse(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
                Err(_) => {
                    tracing::warn!(received = buf.len(), announced = length, "admission review refused: the body did not arrive in time");
                    return refuse(StatusCode::REQUEST_TIMEOUT, format!("the body did not arrive within {:?}", self.limits.body));
                }
            };
            let total = buf.len() + chunk.len();
            if total > self.limits.max_body {
                return refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {} bytes", self.limits.max_body));
            }
            // the bytes and the buffer's growth
            reserve!(total.saturating_mul(ARRIVING_PER_BYTE), "busy: no memory for the body in time");
            buf.extend_from_slice(&chunk);
        }
        let body = bytes_of::Bytes::from(buf);
        // what parsing will cost: reserve the rest of it before parsing
        let values = json_values(&body);
        let parse_cost = body.len().saturating_add(values.saturating_mul(MEMORY_PER_VALUE));
        if parse_cost / 1024 + 1 > budget_kib {
            tracing::warn!(bytes = body.len(), values, "admission review refused: too many JSON values for the memory budget");
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body holds {values} JSON values, about {} MiB once parsed, more than the webhook's memory budget of {} MiB",
                    parse_cost >> 20,
                    self.limits.memory >> 20
                ),
            );
        }
        reserve!(parse_cost.max(body.len().saturating_mul(MEMORY_PER_BYTE)), "busy: no memory to parse the body in time");
        tracing::debug!(bytes = body.len(), values, held_kib, "review body read");
        // the review is CPU work: off the runtime's threads, the permit held until it is done
        match tokio::task::spawn_blocking(move || {
            yield_to_the_server();
            let r = f(body).into_response();
            drop(permit);
            r
        })
        .await
        {
            Ok(r) => r,
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

/// The work of a review runs at a lower CPU priority (nice +5) than the threads that accept
/// connections and answer `/healthz`: on a node whose cores are all busy reviewing, a probe is
/// still answered at once. On Linux the nice value belongs to the thread (and the threads it
/// starts), so only the blocking threads that review are lowered, each once.
fn yield_to_the_server() {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    LOWERED.with(|l| {
        if !l.replace(true) {
            // (a failure leaves the priority as it was)
            if let Ok(now) = rustix::process::getpriority_process(None) {
                let _ = rustix::process::setpriority_process(None, (now + 5).min(19));
            }
        }
    });
}

/// `bytes::Bytes`, as axum hands it out (no direct dependency on the bytes crate).
pub mod bytes_of {
    pub type Bytes = axum::body::Bytes;
}

/// The open connections, oldest first, each with the signal that asks it to close.
#[derive(Default)]
struct Open {
    next: u64,
    live: std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>,
}

/// Removes its connection from `Open` however the connection ends.
struct Registered(Arc<std::sync::Mutex<Open>>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        open.live.retain(|(id, _)| *id != self.1);
    }
}

/// Serves `app` over TLS on `listener` until the process ends. At the connection limit a new
/// connection takes the place of the oldest: that one is asked to close, at once when it is
/// in its handshake or idle between requests, after its current request otherwise. So idle
/// keep-alive connections (or TCP connections that never start a handshake) cannot keep the
/// API server's reviews and the kubelet's probes out.
pub async fn serve(listener: TcpListener, tls: tokio_rustls::TlsAcceptor, app: axum::Router, limits: Limits, stats: Arc<Stats>) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = Arc::new(std::sync::Mutex::new(Open::default()));
    let mut backoff = Duration::from_millis(10);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::from_millis(10);
                c
            }
            Err(e) => {
                // EMFILE and friends: retrying at once would spin (and log) without end
                let n = stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || backoff >= Duration::from_secs(1) {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, failures = n + 1, "accept");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        // An answer goes out as it is written, never held back waiting for the client's ACK of
        // an earlier segment (Nagle's algorithm; the API server's Go client disables it too).
        let _ = tcp.set_nodelay(true);
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let oldest = open.lock().unwrap_or_else(|e| e.into_inner()).live.pop_front();
                if let Some((_, close)) = oldest {
                    close.notify_one();
                }
                let n = stats.evictions.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(limit = limits.max_connections, closed = n + 1, "connection limit reached: the oldest connection closes for a new one");
                }
                // an idle connection closes at once; one in a request within its time limits
                let Ok(p) = connections.clone().acquire_owned().await else { return };
                p
            }
        };
        let close = Arc::new(tokio::sync::Notify::new());
        let registered = {
            let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
            let id = o.next;
            o.next += 1;
            o.live.push_back((id, close.clone()));
            Registered(open.clone(), id)
        };
        let (tls, app, limits, stats) = (tls.clone(), app.clone(), limits.clone(), stats.clone());
        tokio::spawn(async move {
            let (_permit, _registered) = (permit, registered);
            let handshake = tokio::select! {
                r = tokio::time::timeout(limits.handshake, tls.accept(tcp)) => r,
                _ = close.notified() => return,
            };
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, %peer, "TLS handshake");
                    return;
                }
                Err(_) => {
                    stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.headers)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = tokio::time::sleep(limits.lifetime) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(limits.headers + limits.body, conn).await;
                }
                _ = close.notified() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(limits.headers + limits.body, conn).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::json_values;

    #[test]
    fn json_values_are_counted_outside_strings() {
        assert_eq!(json_values(b"0"), 1);
        assert_eq!(json_values(b"[0,0,0]"), 4);
        assert_eq!(json_values(br#"{"a":"x,[{","b":[1,2]}"#), 5);
        assert_eq!(json_values(br#"["\",", 1]"#), 3);
        let dense: Vec<u8> = std::iter::once(b'[').chain(std::iter::repeat_n(b"0,".iter().copied(), 1000).flatten()).chain(*b"0]").collect();
        assert_eq!(json_values(&dense), 1002);
    }

    #[test]
    fn review_threads_run_below_the_server_and_are_lowered_once() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let (first, second) = std::thread::spawn(|| {
            super::yield_to_the_server();
            let first = rustix::process::getpriority_process(None).unwrap();
            super::yield_to_the_server();
            (first, rustix::process::getpriority_process(None).unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(first, (before + 5).min(19), "the reviewing thread is lowered by 5");
        assert_eq!(second, first, "only once");
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before, "other threads keep their priority");
    }
}
