//! `frr-composer webhook`: validating admission for FRRConfiguration CREATE and UPDATE. It runs
//! the same core as the agent: per-object checks always, then, for every node the object
//! selects, the merge with the other configurations of the same namespace that select that
//! node. A conflict is refused at `kubectl apply` with both objects, the field and both values.

pub mod certs;
pub mod server;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::response::IntoResponse;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};

use crate::agent::watch::{self, typed_config, ConfigEntry};
use crate::api::FRRConfiguration;
use crate::signals::Shutdown;

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

/// Nodes (labels) and FRRConfigurations (by namespace/name), kept by watches.
#[derive(Default)]
pub struct Cache {
    pub nodes: BTreeMap<String, BTreeMap<String, String>>,
    /// Typed, or why not (a malformed one is left out of merges).
    pub configs: BTreeMap<(String, String), ConfigEntry>,
    pub synced: [bool; 2],
}

fn spawn_watches(client: Client, cache: Arc<Mutex<Cache>>) {
    {
        let cache = cache.clone();
        let api: Api<Node> = Api::all(client.clone());
        tokio::spawn(async move {
            let mut buffer = None;
            let mut stream = watcher(api, watcher::Config::default()).backoff(watch::RetryDelay::default()).boxed();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                let mut c = cache.lock().expect("cache");
                let done = matches!(ev, Event::InitDone);
                watch::fold(&mut c.nodes, &mut buffer, ev, |n: &Node| n.name_any(), |n| n.labels().clone());
                c.synced[0] |= done;
            }
        });
    }
    let api: Api<DynamicObject> = Api::all_with(client, &ApiResource::erase::<FRRConfiguration>(&()));
    tokio::spawn(async move {
        let mut buffer = None;
        let mut stream = watcher(api, watcher::Config::default()).backoff(watch::RetryDelay::default()).boxed();
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            let mut c = cache.lock().expect("cache");
            let done = matches!(ev, Event::InitDone);
            watch::fold(&mut c.configs, &mut buffer, ev, |o: &DynamicObject| (o.namespace().unwrap_or_default(), o.name_any()), typed_config);
            c.synced[1] |= done;
        }
    });
}

/// Answers one AdmissionReview.
pub fn review(cache: &Cache, body: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
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
    // malformed ones cannot be merged (the agents report them)
    let others: Vec<FRRConfiguration> =
        cache.configs.iter().filter(|((n, name), _)| *n == ns && *name != new.name_any()).filter_map(|(_, c)| c.as_ref().ok().cloned()).collect();
    match validate::validate(&ns, &new, old.as_ref(), &others, &cache.nodes) {
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

/// The webhook's routes: the admission review (bodies read within `bodies`' limits) and
/// `/healthz` (200 once both watches have synced).
pub fn app(cache: Arc<Mutex<Cache>>, bodies: server::Bodies) -> axum::Router {
    let c2 = cache.clone();
    axum::Router::new()
        .route(
            PATH,
            axum::routing::post(move |req: axum::extract::Request| {
                let (cache, bodies) = (cache.clone(), bodies.clone());
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
                            let started = std::time::Instant::now();
                            let out = review(&cache.lock().unwrap_or_else(|e| e.into_inner()), review_in);
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
                let cache = c2.clone();
                async move {
                    let synced = cache.lock().unwrap_or_else(|e| e.into_inner()).synced.iter().all(|s| *s);
                    if synced {
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
    let cache = Arc::new(Mutex::new(Cache::default()));
    spawn_watches(client, cache.clone());
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(resolver)?));
    let limits = server::Limits::default();
    let stats = Arc::new(server::Stats::default());
    let app = app(cache, server::Bodies::new(&limits, stats.clone()));
    let listener = tokio::net::TcpListener::bind(args.address).await.with_context(|| format!("listening on {}", args.address))?;
    tracing::info!(address = %args.address, "admission webhook listening");
    tokio::select! {
        _ = server::serve(listener, tls, app, limits, stats) => {}
        _ = stop.wait() => tracing::info!("stopped"),
    }
    Ok(())
}
