//! A webhook server on loopback with its real routes and TLS, and a raw HTTPS client, for the
//! tests of the server's limits (`tests/webhook_limits.rs`, `tests/webhook_resources.rs`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use frr_composer::watch::{Changes, Entry};
use frr_composer::webhook::{app, certs, server, tls_config, State, PATH};
use kube::runtime::reflector::store::Writer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Arc<server::Stats>,
    pub ca: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the server on 127.0.0.1 with `limits` (call inside a tokio runtime), on empty stores
/// that are synced (a complete, empty list): these tests are about the server, not the decision.
pub async fn start(limits: server::Limits) -> Server {
    let mut nodes = Writer::<Entry<_>>::new(());
    let mut configs = Writer::<Entry<_>>::new(());
    nodes.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    configs.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let state = State::new(nodes.as_reader(), configs.as_reader(), Changes::default());
    // the stores stay synced (a dropped writer would leave them never ready)
    std::mem::forget((nodes, configs));
    let s = start_with(limits, state).await;
    // State::new learns that the stores are ready on a task of its own
    for _ in 0..100 {
        if healthz(&s).await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s
}

/// Starts the server on stores that never get their first list (as before the API server
/// answered).
pub async fn start_unsynced(limits: server::Limits) -> Server {
    let nodes = Writer::<Entry<_>>::new(());
    let configs = Writer::<Entry<_>>::new(());
    let state = State::new(nodes.as_reader(), configs.as_reader(), Changes::default());
    std::mem::forget((nodes, configs));
    start_with(limits, state).await
}

/// `/healthz`'s status code.
pub async fn healthz(s: &Server) -> u16 {
    let mut c = s.connect().await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    response(&mut c).await.0
}

/// Starts the server on 127.0.0.1 with `limits`, reviewing against `state`.
pub async fn start_with(limits: server::Limits, state: State) -> Server {
    let bundle = certs::new_bundle(&["localhost".to_string()], time::OffsetDateTime::now_utc()).unwrap();
    let resolver = Arc::new(certs::Resolver::new(&bundle.cert, &bundle.key).unwrap());
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(resolver).unwrap()));
    let stats = Arc::new(server::Stats::default());
    let router = app(state, server::Bodies::new(&limits, stats.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(server::serve(listener, tls, router, limits, stats.clone()));
    Server { addr, stats, ca: bundle.ca_cert, task }
}

pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

impl Server {
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(self.ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    /// A TLS connection (handshake done).
    pub async fn connect(&self) -> std::io::Result<Tls> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        // as the API server's client (Go) does: a request's head and body go out at once
        tcp.set_nodelay(true)?;
        self.connector().connect(rustls_pki_types::ServerName::try_from("localhost").unwrap(), tcp).await
    }
}

/// The request head of an admission review POST of `len` bytes.
pub fn head(len: usize) -> String {
    format!("POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
}

/// Sends a whole request on `c` and reads the response: (status, body).
pub async fn post(c: &mut Tls, body: &[u8]) -> (u16, String) {
    c.write_all(head(body.len()).as_bytes()).await.unwrap();
    c.write_all(body).await.unwrap();
    c.flush().await.unwrap();
    response(c).await
}

/// Reads one response (Content-Length bodies only).
pub async fn response(c: &mut Tls) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = c.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").and_then(|v| v.trim().parse::<usize>().ok()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Whether the server closes `c` (EOF or error) within `within`.
pub async fn closed_within<S: tokio::io::AsyncRead + Unpin>(c: &mut S, within: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(tokio::time::timeout(within, c.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
}

/// An FRRConfiguration with `n` prefixes (about 25 bytes each in JSON).
pub fn big_config(name: &str, n: usize) -> serde_json::Value {
    let prefixes: Vec<String> = (0..n).map(|i| format!("{}.{}.{}.0/24", 1 + i / 65536, (i >> 8) & 255, i & 255)).collect();
    serde_json::json!({
        "apiVersion": "frrk8s.metallb.io/v1beta1",
        "kind": "FRRConfiguration",
        "metadata": {"name": name, "namespace": "frr-k8s-system", "uid": "u1"},
        "spec": {"bgp": {"routers": [{"asn": 65000, "prefixes": prefixes, "neighbors": [{"address": "192.0.2.1", "asn": 65001, "toAdvertise": {"allowed": {"mode": "all"}}}]}]}}
    })
}

/// An admission review of an UPDATE from `old` to `new`.
pub fn update_review(new: &serde_json::Value, old: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "r1",
            "kind": {"group": "frrk8s.metallb.io", "version": "v1beta1", "kind": "FRRConfiguration"},
            "resource": {"group": "frrk8s.metallb.io", "version": "v1beta1", "resource": "frrconfigurations"},
            "name": new["metadata"]["name"], "namespace": "frr-k8s-system", "operation": "UPDATE",
            "userInfo": {"username": "test"},
            "object": new, "oldObject": old, "dryRun": false
        }
    }))
    .unwrap()
}
