//! `frr-composer webhook`: validating admission for FRRConfiguration CREATE and UPDATE. It runs
//! the same core as the agent: per-object checks always, then, for every node the object
//! selects, the merge with the other configurations of the same namespace that select that
//! node (one merge per group of nodes that read the same configurations). A conflict is refused
//! at `kubectl apply` with both objects, the field and both values.

pub mod certs;
pub mod server;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::response::IntoResponse;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};

use crate::api::FRRConfiguration;
use crate::core::cluster_index::{NodeIndex, Prepared};
use crate::signals::Shutdown;
use crate::watch::{self, typed_config, Changes, Entry, Reader, WatchErrors};

pub const PATH: &str = "/validate-frrk8s-metallb-io-v1beta1-frrconfiguration";

#[derive(clap::Args, Clone, Debug)]
pub struct WebhookArgs {
    /// HTTPS address of the admission server.
    #[arg(long, default_value = "0.0.0.0:19443")]
    pub address: SocketAddr,
    /// Serving certificate (PEM), when no --cert-secret is given.
    #[arg(long, value_name = "FILE", default_value = "/tmp/k8s-webhook-server/serving-certs/tls.crt")]
    pub cert_file: PathBuf,
    /// Serving key (PEM), when no --cert-secret is given.
    #[arg(long, value_name = "FILE", default_value = "/tmp/k8s-webhook-server/serving-certs/tls.key")]
    pub key_file: PathBuf,
    /// Keep the serving certificate in this Secret: a CA and a certificate are generated when
    /// it is missing, renewed 30 days before they expire, shared by all replicas, and the CA is
    /// put into --webhook-configuration's caBundle. Without it, --cert-file/--key-file are read.
    #[arg(long, value_name = "NAME")]
    pub cert_secret: Option<String>,
    /// Namespace of --cert-secret (default: $POD_NAMESPACE, else frr-k8s-system).
    #[arg(long)]
    pub namespace: Option<String>,
    /// The ValidatingWebhookConfiguration whose caBundle gets the CA of --cert-secret.
    #[arg(long, value_name = "NAME", default_value = "frr-composer-validating-webhook")]
    pub webhook_configuration: String,
    /// A name (DNS) or IP address the generated certificate is for; repeatable (default:
    /// frr-composer-webhook.<namespace>.svc).
    #[arg(long = "cert-host", value_name = "NAME")]
    pub cert_hosts: Vec<String>,
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: crate::settings::LogLevelArg,
}

/// A FRRConfiguration as the webhook keeps it: prepared for validation once per change of the
/// object (its selector parsed, its contribution converted), or why it could not be read (a
/// malformed one is left out of merges; the agents report it).
#[derive(Clone, Debug)]
pub struct Kept(pub Result<Arc<Prepared>, String>);

impl Kept {
    pub fn of(o: &DynamicObject) -> Kept {
        Kept(typed_config(o).map(|c| Arc::new(Prepared::new(&c))))
    }
}

/// Every event derives the value anew: an object counts as changed unless it is the same one.
impl PartialEq for Kept {
    fn eq(&self, other: &Kept) -> bool {
        match (&self.0, &other.0) {
            (Ok(a), Ok(b)) => Arc::ptr_eq(a, b),
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }
}

/// What the webhook reads: the Nodes' labels and the FRRConfigurations of all namespaces, each
/// kept by a watch in a reflector store. Reviews take snapshots (no lock held while they work).
#[derive(Clone)]
pub struct State {
    pub nodes: Reader<BTreeMap<String, String>>,
    pub configs: Reader<Kept>,
    /// Counts node changes: the label index is rebuilt when it moved.
    node_changes: Changes,
    index: Arc<Mutex<(u64, Arc<NodeIndex>)>>,
    ready: Arc<AtomicBool>,
}

/// One review's consistent view of the cluster.
pub struct View {
    pub nodes: Arc<NodeIndex>,
    pub configs: Vec<Arc<Entry<Kept>>>,
}

impl State {
    /// Starts the watches: Nodes as metadata only (kube's metadata watch: labels, no Node
    /// object is read or kept), and
    /// FRRConfigurations untyped (one malformed object cannot stop the watch).
    pub fn watch(client: Client, errors: WatchErrors) -> State {
        let node_changes = Changes::default();
        let nodes = watch::reflect(
            "nodes",
            watcher(Api::<PartialObjectMeta<Node>>::all(client.clone()), watcher::Config::default()),
            |n: &PartialObjectMeta<Node>| n.labels().clone(),
            node_changes.clone(),
            errors.clone(),
        );
        let api: Api<DynamicObject> = Api::all_with(client, &ApiResource::erase::<FRRConfiguration>(&()));
        let configs = watch::reflect("frrconfigurations", watcher(api, watcher::Config::default()), Kept::of, Changes::default(), errors);
        State::new(nodes, configs, node_changes)
    }

    /// A state on stores fed by someone else (`node_changes` must be told of every node change).
    pub fn new(nodes: Reader<BTreeMap<String, String>>, configs: Reader<Kept>, node_changes: Changes) -> State {
        let ready = Arc::new(AtomicBool::new(false));
        let (n, c, r) = (nodes.clone(), configs.clone(), ready.clone());
        tokio::spawn(async move {
            if n.wait_until_ready().await.is_ok() && c.wait_until_ready().await.is_ok() {
                r.store(true, Ordering::SeqCst);
            }
        });
        State { nodes, configs, node_changes, index: Arc::new(Mutex::new((u64::MAX, Arc::default()))), ready }
    }

    /// Whether both stores hold a complete list.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Snapshots of both stores; the node index is built once per change of the nodes (by the
    /// first review that needs it, outside the lock).
    pub fn view(&self) -> View {
        let generation = self.node_changes.count();
        let cached = {
            let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            (index.0 == generation).then(|| index.1.clone())
        };
        let nodes = cached.unwrap_or_else(|| {
            let built = Arc::new(NodeIndex::new(self.nodes.state().iter().map(|e| (e.name.clone(), e.value.clone()))));
            *self.index.lock().unwrap_or_else(|e| e.into_inner()) = (generation, built.clone());
            built
        });
        View { nodes, configs: self.configs.state() }
    }
}

/// Answers one AdmissionReview.
pub fn review(view: &View, body: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
    let req: AdmissionRequest<DynamicObject> = match body.try_into() {
        Ok(r) => r,
        Err(e) => return AdmissionResponse::invalid(format!("not an admission request: {e}")).into_review(),
    };
    let resp = AdmissionResponse::from(&req);
    let Some(obj) = req.object.as_ref() else { return resp.into_review() }; // DELETE
    let new = match typed_config(obj) {
        Ok(c) => c,
        Err(e) => return resp.deny(format!("malformed FRRConfiguration: {e}")).into_review(),
    };
    let old = req.old_object.as_ref().and_then(|o| typed_config(o).ok());
    let ns = new.namespace().or(req.namespace.clone()).unwrap_or_default();
    let name = new.name_any();
    // malformed ones cannot be merged (the agents report them)
    let others: Vec<&Prepared> =
        view.configs.iter().filter(|e| e.namespace.as_deref().unwrap_or_default() == ns && e.name != name).filter_map(|e| e.value.0.as_deref().ok()).collect();
    match validate::validate(&ns, &new, old.as_ref(), &others, &view.nodes) {
        Ok(warnings) => {
            let mut resp = resp;
            if !warnings.is_empty() {
                resp.warnings = Some(warnings);
            }
            resp.into_review()
        }
        Err(message) => resp.deny(message).into_review(),
    }
}

pub fn tls_config(resolver: Arc<certs::Resolver>) -> anyhow::Result<tokio_rustls::rustls::ServerConfig> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The serving certificate: from files, or kept in a Secret (then checked every minute, so
/// that a renewal by this or another replica is served without a restart, and the caBundle
/// is put back if someone reapplies the registration without it).
async fn serving_certificate(client: &Client, args: &WebhookArgs) -> anyhow::Result<Arc<certs::Resolver>> {
    let Some(secret) = &args.cert_secret else {
        let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
        return Ok(Arc::new(certs::Resolver::new(&read(&args.cert_file)?, &read(&args.key_file)?)?));
    };
    let namespace = args.namespace.clone().or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty())).unwrap_or_else(|| "frr-k8s-system".into());
    let hosts = if args.cert_hosts.is_empty() { vec![format!("frr-composer-webhook.{namespace}.svc")] } else { args.cert_hosts.clone() };
    let m = certs::Managed { namespace, secret: secret.clone(), webhook_configuration: args.webhook_configuration.clone(), hosts };
    let bundle = certs::ensure_secret(client, &m).await?;
    let resolver = Arc::new(certs::Resolver::new(&bundle.cert, &bundle.key)?);
    let (client, r) = (client.clone(), resolver.clone());
    tokio::spawn(async move {
        let (mut serving, mut ca) = (bundle.cert, bundle.ca_cert);
        loop {
            let registered = match certs::ensure_ca_bundle(&client, &m.webhook_configuration, &ca).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "cannot put the CA into the webhook configuration; retrying in 5 s");
                    false
                }
            };
            // every minute; every 5 s while the caBundle could not be written
            tokio::time::sleep(std::time::Duration::from_secs(if registered { 60 } else { 5 })).await;
            match certs::ensure_secret(&client, &m).await {
                Ok(b) => {
                    if b.cert != serving {
                        match r.set(&b.cert, &b.key) {
                            Ok(()) => {
                                tracing::info!("serving the renewed webhook certificate");
                                serving = b.cert;
                            }
                            Err(e) => tracing::warn!(error = format!("{e:#}"), "the renewed webhook certificate cannot be used"),
                        }
                    }
                    ca = b.ca_cert;
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot check the webhook certificate"),
            }
        }
    });
    Ok(resolver)
}

/// The webhook's routes: the admission review (bodies read within `bodies`' limits, reviewed
/// on a blocking thread, concurrently; answered 503 until both stores hold a complete list) and `/healthz` (200 once both stores are ready; it reads
/// one flag, so reviews never hold it up).
pub fn app(state: State, bodies: server::Bodies) -> axum::Router {
    let ready = state.ready.clone();
    // As many reviews work at once as there are cores; the others wait their turn, so that the
    // runtime's threads (and /healthz) keep getting the CPU during a burst.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let turns = Arc::new(tokio::sync::Semaphore::new(cores));
    axum::Router::new()
        .route(
            PATH,
            axum::routing::post(move |req: axum::extract::Request| {
                let (state, bodies, turns) = (state.clone(), bodies.clone(), turns.clone());
                async move {
                    bodies
                        .with_body(req, move |body| {
                            let review_in: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
                                Ok(r) => r,
                                Err(e) => {
                                    return (
                                        axum::http::StatusCode::BAD_REQUEST,
                                        format!("not an AdmissionReview: {}", crate::core::error::excerpt(&e.to_string())),
                                    )
                                        .into_response()
                                }
                            };
                            drop(body);
                            if !state.ready() {
                                // a decision on half a list would admit conflicts: fail, so the
                                // API server applies the webhook's failurePolicy
                                tracing::warn!("admission review refused: the node and FRRConfiguration lists are not complete yet");
                                return (
                                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                    "the webhook has not yet listed every Node and FRRConfiguration; try again shortly",
                                )
                                    .into_response();
                            }
                            // on a blocking thread: waiting here holds no runtime thread
                            let _turn = tokio::runtime::Handle::current().block_on(turns.acquire());
                            let started = std::time::Instant::now();
                            let out = review(&state.view(), review_in);
                            let allowed = out.response.as_ref().is_some_and(|r| r.allowed);
                            tracing::info!(allowed, us = started.elapsed().as_micros() as u64, "admission review");
                            axum::Json(out).into_response()
                        })
                        .await
                }
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(move || {
                let ready = ready.load(Ordering::SeqCst);
                async move {
                    if ready {
                        (axum::http::StatusCode::OK, r#"{"status": "ok"}"#)
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, r#"{"status": "syncing"}"#)
                    }
                }
            }),
        )
}

/// Serves until `stop` is set; then it accepts no more connections and returns (connections
/// in progress get the runtime's shutdown time).
pub async fn run(args: WebhookArgs, stop: Shutdown) -> anyhow::Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API server")?;
    let resolver = tokio::select! {
        r = serving_certificate(&client, &args) => r?,
        _ = stop.wait() => return Ok(()),
    };
    let state = State::watch(client, WatchErrors::default());
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(resolver)?));
    let limits = server::Limits::default();
    let stats = Arc::new(server::Stats::default());
    let app = app(state, server::Bodies::new(&limits, stats.clone()));
    let listener = tokio::net::TcpListener::bind(args.address).await.with_context(|| format!("listening on {}", args.address))?;
    tracing::info!(address = %args.address, "admission webhook listening");
    tokio::select! {
        _ = server::serve(listener, tls, app, limits, stats) => {}
        _ = stop.wait() => tracing::info!("stopped"),
    }
    Ok(())
}
