//! `ApiServer`: the shared handle around the store, with the tower service and HTTP serving.

use crate::error::ApiError;
use crate::store::{Config, Store};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// A cheap-to-clone handle on one in-memory API server.
#[derive(Clone)]
pub struct ApiServer {
    store: Arc<Mutex<Store>>,
    exec: Arc<Mutex<Option<crate::exec::ExecHandler>>>,
    logs: Arc<Mutex<Option<crate::logs::LogSource>>>,
}

impl ApiServer {
    pub fn new(cfg: Config) -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::new(cfg))),
            exec: Arc::new(Mutex::new(None)),
            logs: Arc::new(Mutex::new(None)),
        }
    }

    /// Decide what `pods/exec` runs (see [`crate::exec`]); replaces any earlier handler.
    pub fn set_exec_handler(&self, handler: crate::exec::ExecHandler) {
        *self.exec.lock().unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    /// Decide what `pods/log` returns (see [`crate::logs`]); replaces any earlier source.
    pub fn set_log_source(&self, source: crate::logs::LogSource) {
        *self.logs.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    pub(crate) fn log_source(&self) -> Option<crate::logs::LogSource> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn exec_handler(&self) -> Option<crate::exec::ExecHandler> {
        self.exec.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Exclusive access to the store (implements [`crate::Objects`]). Do not hold it across
    /// an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.lock())
    }

    /// The `default/kubernetes` Service (ClusterIP 10.96.0.1, port 443 named `https`), its
    /// Endpoints and EndpointSlice pointing at 127.0.0.1:`port`, as kube-apiserver keeps
    /// them for itself (`kubectl get svc` in `default` lists it). Idempotent.
    pub fn publish_kubernetes_service(&self, port: u16) -> Result<(), ApiError> {
        use crate::Objects;
        use serde_json::json;
        let mut s = self.lock();
        let labels = json!({"component": "apiserver", "provider": "kubernetes"});
        let objects = [
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
                "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP", "sessionAffinity": "None",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}),
            json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
        ];
        for o in objects {
            let (av, kind) = (o["apiVersion"].clone(), o["kind"].clone());
            let exists = Objects::get(
                &*s,
                av.as_str().unwrap_or_default(),
                kind.as_str().unwrap_or_default(),
                Some("default"),
                "kubernetes",
            )
            .is_some();
            if !exists {
                Objects::create(&mut *s, o)?;
            }
        }
        Ok(())
    }

    /// The axum router serving the whole API. It is a `tower::Service`, usable directly as
    /// `kube::Client::new(server.router(), "default")` with no sockets.
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.clone())
    }

    /// Alias of [`ApiServer::router`].
    pub fn service(&self) -> axum::Router {
        self.router()
    }

    /// Create or replace CRDs.
    pub fn install_crds(&self, crds: Vec<Value>) -> Result<(), ApiError> {
        self.lock().install_crds(crds)
    }

    /// Serve over HTTP on a loopback address (port 0 picks a free one). Non-loopback
    /// addresses are refused.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<ServeHandle> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("refusing to bind {addr}: the fake API server only listens on loopback"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = self.router();
        let server = self.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                    // A watch never ends on its own, and graceful shutdown waits for every
                    // connection: end them, as a stopping kube-apiserver does.
                    server.with_store(Store::drop_watches);
                })
                .await;
        });
        Ok(ServeHandle {
            addr: local,
            shutdown: Some(tx),
            task,
        })
    }
}

/// How long [`ServeHandle::shutdown`] lets requests in flight finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// A running HTTP server; dropping it leaves it running, call [`ServeHandle::shutdown`].
pub struct ServeHandle {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServeHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting connections. Open watches end when their clients go away; use
    /// `Store::drop_watches` to end them now.
    /// Stop serving: open watches end, requests in flight get [`SHUTDOWN_GRACE`] to finish,
    /// then every connection is cut. Without the bound, a client that re-watches or sends a
    /// last request meanwhile (an operator releasing its Lease) waits on a listener nobody
    /// accepts from, and both sides hang.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }

    /// A kubeconfig that kubectl (and Patroni, context `kind-kind` is an alias) use as is.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.url())
    }
}

pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: tusk-fake\n  cluster:\n    server: {url}\ncontexts:\n- name: tusk-fake\n  context:\n    cluster: tusk-fake\n    user: tusk-fake\n    namespace: default\n- name: kind-kind\n  context:\n    cluster: tusk-fake\n    user: tusk-fake\n    namespace: default\ncurrent-context: tusk-fake\nusers:\n- name: tusk-fake\n  user:\n    token: tusk-fake\npreferences: {{}}\n"
    )
}
