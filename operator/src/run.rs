//! `tusk run`: client, namespaces, leader election, the HTTP endpoints and the controllers,
//! with graceful shutdown.

use crate::cli::RunArgs;
use crate::controller;
use crate::core_glue;
use crate::error::CliError;
use crate::executor::DatabaseOps;
use crate::leader::Elector;
use crate::metrics::METRICS;
use crate::observe::Scope;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// A shutdown signal that many tasks can wait on.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`Shutdown::trigger`] has been called.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    /// Trigger on SIGTERM or Ctrl-C.
    pub fn on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            this.trigger();
        });
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Classify each request the client sends, for `tusk_api_requests_total{verb}` (and
/// `tusk_leader_election_requests_total{verb}` for the Lease).
fn count_request<B>(req: http::Request<B>) -> http::Request<B> {
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"));
    let verb = match *req.method() {
        http::Method::GET if watch => "watch",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    };
    METRICS.request(verb);
    // Leader election renews its Lease every few seconds whatever the clusters do; counted
    // apart so that "writes in steady state" means reconcile writes.
    if req.uri().path().contains("/apis/coordination.k8s.io/") {
        METRICS.lease_request(verb);
    }
    req
}

/// A client from a kubeconfig file, or in-cluster / $KUBECONFIG / ~/.kube/config.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, CliError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| CliError::Connect(format!("reading {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| CliError::Connect(format!("{}: {e}", path.display())))?
        }
        None => Config::infer()
            .await
            .map_err(|e| CliError::Connect(e.to_string()))?,
    };
    client_from_config(config)
}

pub fn client_from_config(config: Config) -> Result<Client, CliError> {
    let builder = ClientBuilder::try_from(config).map_err(|e| CliError::Connect(e.to_string()))?;
    Ok(builder
        .with_layer(&tower::util::MapRequestLayer::new(count_request))
        .build())
}

/// The operator's own namespace: POD_NAMESPACE, the service-account file, or the client's default.
pub fn own_namespace(client: &Client) -> String {
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.trim().is_empty()
    {
        return ns.trim().to_string();
    }
    if let Ok(ns) = std::fs::read_to_string(NAMESPACE_FILE)
        && !ns.trim().is_empty()
    {
        return ns.trim().to_string();
    }
    client.default_namespace().to_string()
}

/// Which namespaces to watch. Flags win; else Percona's WATCH_NAMESPACE: unset = own namespace,
/// empty = all namespaces, otherwise a comma-separated list.
pub fn scopes(args: &RunArgs, watch_namespace: Option<&str>, own: &str) -> Vec<Scope> {
    if args.all_namespaces {
        return vec![Scope::All];
    }
    let list = |items: &mut dyn Iterator<Item = &str>| -> Vec<Scope> {
        let mut v: Vec<Scope> = Vec::new();
        for s in items.map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::Namespace(s.to_string());
            if !v.contains(&scope) {
                v.push(scope);
            }
        }
        v
    };
    if !args.namespaces.is_empty() {
        return list(&mut args.namespaces.iter().map(String::as_str));
    }
    match watch_namespace {
        None => vec![Scope::Namespace(own.to_string())],
        Some(s) if s.trim().is_empty() => vec![Scope::All],
        Some(s) => list(&mut s.split(',')),
    }
}

#[derive(Clone)]
struct Health {
    ready: Arc<AtomicBool>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        METRICS.render(),
    )
}

/// Serve /healthz, /readyz and /metrics until shutdown. Returns the bound address.
pub async fn serve_http(
    address: SocketAddr,
    ready: Arc<AtomicBool>,
    shutdown: Shutdown,
) -> Result<SocketAddr, CliError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| CliError::Bind {
            address: address.to_string(),
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(address);
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Health { ready });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.wait())
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok(bound)
}

fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "tusk".into());
    let r = controller::os_entropy();
    format!("{host}-{:02x}{:02x}{:02x}{:02x}", r[0], r[1], r[2], r[3])
}

/// Run the operator with a ready client until `shutdown` triggers (or leadership is lost).
pub async fn run_with_client(
    args: &RunArgs,
    client: Client,
    sql: Arc<dyn DatabaseOps>,
    shutdown: Shutdown,
) -> Result<(), CliError> {
    core_glue::set_render_cache_bytes(args.render_cache_mib.saturating_mul(1 << 20));
    let own = own_namespace(&client);
    let watch_ns = std::env::var("WATCH_NAMESPACE").ok();
    let scopes = scopes(args, watch_ns.as_deref(), &own);
    let ready = Arc::new(AtomicBool::new(false));
    let bound = serve_http(args.http_address, ready.clone(), shutdown.clone()).await?;
    tracing::info!(address = %bound, "serving /healthz, /readyz and /metrics");

    let elector = (!args.no_leader_election).then(|| {
        let ns = args.lease_namespace.clone().unwrap_or_else(|| own.clone());
        Elector::new(
            client.clone(),
            &ns,
            &args.lease_name,
            &identity(),
            Duration::from_secs(args.lease_duration_secs.max(2)),
        )
    });
    let renew = Duration::from_secs(args.lease_renew_secs.max(1));
    // A standby replica is healthy and ready: it serves its probes while it waits.
    ready.store(true, Ordering::Relaxed);
    if let Some(el) = &elector {
        tracing::info!(lease = %el.name, identity = %el.identity, "waiting for leadership");
        loop {
            if shutdown.is_triggered() {
                return Ok(());
            }
            match el.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot acquire the Lease; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(renew) => {}
                _ = shutdown.wait() => return Ok(()),
            }
        }
        tracing::info!(lease = %el.name, "became leader");
    }
    METRICS.set_leader(true);

    // The controllers stop when shutdown triggers or when leadership is lost.
    let stop = Shutdown::default();
    let lost = Arc::new(AtomicBool::new(false));
    {
        let (stop, shutdown) = (stop.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.wait().await;
            stop.trigger();
        });
    }
    let renewer = elector.map(|el| {
        let (stop, lost) = (stop.clone(), lost.clone());
        let el = Arc::new(el);
        let el2 = el.clone();
        let handle = tokio::spawn(async move {
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(renew) => {}
                    _ = stop.wait() => return,
                }
                match el.try_acquire_or_renew().await {
                    Ok(true) => last_ok = tokio::time::Instant::now(),
                    Ok(false) => {
                        tracing::error!("leadership lost to another replica; stopping");
                        lost.store(true, Ordering::Relaxed);
                        stop.trigger();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the Lease");
                        // Stop before the Lease can expire and someone else takes over.
                        if last_ok.elapsed() + renew >= el.duration {
                            lost.store(true, Ordering::Relaxed);
                            stop.trigger();
                            return;
                        }
                    }
                }
            }
        });
        (el2, handle)
    });

    let mut tasks = Vec::new();
    for scope in scopes {
        let fut = controller::run_scope(
            client.clone(),
            scope,
            args.workers.max(1),
            sql.clone(),
            stop.wait(),
        );
        tasks.push(tokio::spawn(fut));
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(CliError::Other(e.to_string())),
            Err(e) => return Err(CliError::Other(format!("controller task failed: {e}"))),
        }
    }
    METRICS.set_leader(false);
    if let Some((el, handle)) = renewer {
        handle.abort();
        if !lost.load(Ordering::Relaxed)
            && let Err(e) = el.release().await
        {
            tracing::warn!(error = %e, "could not release the Lease; a standby takes over after it expires");
        }
    }
    if lost.load(Ordering::Relaxed) {
        return Err(CliError::Other(
            "lost the leader Lease; exiting so that only one replica reconciles (the pod restarts and waits as a standby)".into(),
        ));
    }
    Ok(())
}

/// `tusk run`.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let shutdown = Shutdown::default();
    shutdown.on_signals();
    let client = client(args.kubeconfig.as_deref()).await?;
    // Fail fast with a clear line when the API is unreachable, instead of retrying watches forever.
    client
        .apiserver_version()
        .await
        .map_err(|e| CliError::Connect(e.to_string()))?;
    let database = Arc::new(crate::executor::PatroniRest::with_client(client.clone()));
    run_with_client(&args, client, database, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RunArgs {
        RunArgs::default()
    }

    #[test]
    fn lease_requests_are_counted_apart() {
        let before = METRICS.reconcile_writes();
        let put = |path: &str| {
            count_request(
                http::Request::builder()
                    .method(http::Method::PUT)
                    .uri(path)
                    .body(())
                    .unwrap(),
            );
        };
        put("/apis/coordination.k8s.io/v1/namespaces/pg/leases/tusk-operator-lock");
        assert_eq!(METRICS.reconcile_writes(), before, "a Lease renewal");
        put("/api/v1/namespaces/pg/configmaps/c1-config");
        assert!(METRICS.reconcile_writes() > before, "a ConfigMap update");
    }

    #[test]
    fn watch_namespace_semantics() {
        assert_eq!(
            scopes(&args(), None, "op"),
            vec![Scope::Namespace("op".into())]
        );
        assert_eq!(scopes(&args(), Some(""), "op"), vec![Scope::All]);
        assert_eq!(
            scopes(&args(), Some("a, b,,a"), "op"),
            vec![Scope::Namespace("a".into()), Scope::Namespace("b".into())]
        );
        let mut a = args();
        a.namespaces = vec!["x".into()];
        assert_eq!(
            scopes(&a, Some(""), "op"),
            vec![Scope::Namespace("x".into())]
        );
        a.all_namespaces = true;
        assert_eq!(scopes(&a, None, "op"), vec![Scope::All]);
    }
}
