//! The scale benchmark's instruments: a minimal HTTPS/1.1 client for the webhook, the API
//! server's request counters, process memory and CPU from /proc, a watch of FRRNodeStates.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::Client;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

// ------------------------------------------------------------------------------ /proc

/// A `Vm*:` line of /proc/<pid>/status, in MiB.
pub fn vm_mib(pid: u32, key: &str) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with(key)).ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))?;
    let kb: f64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("bad {line}"))?.parse()?;
    Ok(kb / 1024.0)
}

/// utime + stime of a process, in seconds (clock ticks of 1/100 s, Linux's USER_HZ).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("bad stat"))? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok((f[11].parse::<f64>()? + f[12].parse::<f64>()?) / 100.0)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

// ------------------------------------------------------------------------------ statistics

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The p-th percentile (nearest rank) of `v`, NaN when empty.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::NAN, f64::max)
}

// ------------------------------------------------------------------------------ apiserver_request_total

/// (verb, resource[/subresource]) -> count, summed over codes, groups, versions and scopes;
/// resource requests only (the non-resource ones, such as this benchmark's reads of /metrics,
/// are left out).
pub type Requests = BTreeMap<(String, String), f64>;

pub fn parse_requests(metrics: &str) -> Requests {
    parse_by_verb_and_resource(metrics, "apiserver_request_total")
}

/// A metric of the API server with `verb` and `resource` labels, summed by those two.
pub fn parse_by_verb_and_resource(metrics: &str, name: &str) -> Requests {
    let mut out = Requests::new();
    let prefix = format!("{name}{{");
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else { continue };
        let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let mut m = HashMap::new();
        // label values hold no `",` here (verbs, resources, codes)
        for kv in labels.split("\",") {
            if let Some((k, v)) = kv.split_once("=\"") {
                m.insert(k.trim_start_matches(',').to_string(), v.trim_end_matches('"').to_string());
            }
        }
        let resource = m.get("resource").cloned().unwrap_or_default();
        if resource.is_empty() {
            continue;
        }
        let sub = m.get("subresource").cloned().unwrap_or_default();
        let key = if sub.is_empty() { resource } else { format!("{resource}/{sub}") };
        *out.entry((m.get("verb").cloned().unwrap_or_default(), key)).or_default() += value;
    }
    out
}

/// `after - before`, per key, leaving out zeros.
pub fn delta(before: &Requests, after: &Requests) -> Requests {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0))).filter(|(_, v)| *v > 0.0).collect()
}

// ------------------------------------------------------------------------------ FRRNodeStates

/// Node name -> every version of its FRRNodeState, with the instant it arrived.
type History = HashMap<String, Vec<(Instant, Value)>>;

/// Every version of every FRRNodeState seen by one watch.
#[derive(Clone, Default)]
pub struct States(Arc<(Mutex<History>, Condvar)>);

impl States {
    /// Starts the watch on `rt`; it runs until the runtime stops.
    pub fn start(rt: &tokio::runtime::Runtime, client: Client) -> States {
        let states = States::default();
        let s = states.clone();
        rt.spawn(async move {
            let api: Api<DynamicObject> = Api::all_with(client, &super::fixture::resource("FRRNodeState", "frrnodestates"));
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                let objs = match ev {
                    Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) => vec![o],
                    _ => continue,
                };
                let now = Instant::now();
                let (lock, cv) = &*s.0;
                let mut m = lock.lock().unwrap_or_else(|e| e.into_inner());
                for o in objs {
                    let name = o.metadata.name.clone().unwrap_or_default();
                    m.entry(name).or_default().push((now, o.data));
                }
                cv.notify_all();
            }
        });
        states
    }

    /// How many versions of `node`'s state have been seen.
    pub fn seen(&self, node: &str) -> usize {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).get(node).map(|v| v.len()).unwrap_or(0)
    }

    /// The first version of `node`'s state after the first `from` for which `pred` holds,
    /// and when it arrived; an error after `timeout` or when `alive` turns false.
    pub fn wait(
        &self,
        node: &str,
        from: usize,
        timeout: Duration,
        alive: &mut dyn FnMut() -> Result<()>,
        pred: &dyn Fn(&Value) -> bool,
    ) -> Result<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.0;
        let mut m = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(hit) = m.get(node).and_then(|v| v.iter().skip(from).find(|(_, s)| pred(s))) {
                return Ok(hit.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                let last = m.get(node).and_then(|v| v.last()).map(|(_, s)| summary(s)).unwrap_or_else(|| "(no FRRNodeState)".into());
                bail!("FRRNodeState/{node}: not there after {timeout:?}; last seen: {last}");
            }
            drop(m);
            alive()?;
            m = lock.lock().unwrap_or_else(|e| e.into_inner());
            m = cv.wait_timeout(m, (deadline - now).min(Duration::from_millis(500))).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

pub fn summary(v: &Value) -> String {
    let s = &v["status"];
    format!(
        "lastConversionResult {:.300}, lastReloadResult {:.300}, runningConfig {} lines",
        s["lastConversionResult"].as_str().unwrap_or("-"),
        s["lastReloadResult"].as_str().unwrap_or("-"),
        s["runningConfig"].as_str().unwrap_or("").lines().count()
    )
}

pub fn applied(v: &Value) -> bool {
    v["status"]["lastReloadResult"] == "success" && v["status"]["lastConversionResult"] == "success"
}

pub fn has_network(v: &Value, prefix: &str) -> bool {
    v["status"]["runningConfig"].as_str().unwrap_or("").lines().any(|l| l.trim() == format!("network {prefix}"))
}

// ------------------------------------------------------------------------------ HTTPS

/// HTTPS/1.1 with keep-alive to a server on 127.0.0.1 whose certificate `ca_pem` signed.
pub struct Https {
    connector: tokio_rustls::TlsConnector,
    port: u16,
}

pub type Conn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

impl Https {
    pub fn new(ca_pem: &str, port: u16) -> Result<Https> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg =
            rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth();
        Ok(Https { connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)), port })
    }

    /// A connection, TLS handshake done.
    pub async fn connect(&self) -> Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        Ok(self.connector.connect(name, tcp).await?)
    }
}

/// One request on `c` (a body means POST with JSON); (status, body).
pub async fn request(c: &mut Conn, path: &str, body: Option<&[u8]>) -> Result<(u16, Vec<u8>)> {
    let head = match body {
        Some(b) => format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", b.len()),
        None => format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    };
    let mut req = head.into_bytes();
    req.extend_from_slice(body.unwrap_or_default());
    c.write_all(&req).await?;
    c.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = c.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse().ok())).unwrap_or(0);
        if buf.len() >= end + 4 + len {
            let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            return Ok((status, buf[end + 4..end + 4 + len].to_vec()));
        }
    }
}

/// The JSON lines of a log file whose `fields.message` is `message`.
pub fn log_lines(path: &Path, message: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}
