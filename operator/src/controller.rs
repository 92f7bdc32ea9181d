//! The kube-runtime controller: one reconcile per cluster at a time, clusters in parallel.
//!
//! A reconcile reads the caches (see [`crate::observe`]), calls the core, and executes the plan.
//! After writing, it remembers what it wrote; the next reconcile of that cluster waits until the
//! caches have caught up with those writes, so a lagging cache never makes the core redo a
//! write with fresh entropy (a new password, a new instance suffix).

use crate::core_glue;
use crate::executor::{DatabaseOps, ExecError, Executor, Written};
use crate::kinds::Undeclared;
use crate::metrics::METRICS;
use crate::observe::{Caches, Scope, cluster_resource};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;
use tusk_core::Env;

/// How long a reconcile waits for the caches to show its own previous writes before giving up
/// on them (a write the caches can never show, e.g. an unlabelled object, must not wedge it).
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(10);
const EXPECTATION_POLL: Duration = Duration::from_millis(100);

type Key = (String, String);

pub struct Ctx {
    pub executor: Executor,
    pub caches: Caches,
    pub clusters: Store<DynamicObject>,
    expectations: Mutex<HashMap<Key, (Instant, Vec<Written>)>>,
    failures: Mutex<HashMap<Key, u32>>,
    next_id: AtomicU64,
    /// Backups and restores (by uid) already told that their cluster does not exist.
    told_missing: Mutex<std::collections::HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cluster {namespace}/{name}: {source}")]
    Exec {
        namespace: String,
        name: String,
        #[source]
        source: ExecError,
    },
    #[error("{message}; fix the CR (kubectl edit), tusk retries with backoff")]
    Unreadable { message: String },
}

impl ReconcileError {
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Exec { source, .. } => source.reason(),
            ReconcileError::Unreadable { .. } => "unreadable_cr",
        }
    }
}

/// 32 bytes from the OS CSPRNG. Falls back to time-derived bytes only if /dev/urandom is
/// unreadable, which on Linux means a broken container; the fallback is logged.
pub fn os_entropy() -> [u8; 32] {
    let mut buf = [0u8; 32];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)) {
        Ok(()) => buf,
        Err(e) => {
            tracing::error!(error = %e, "cannot read /dev/urandom; using time-derived entropy");
            let now = Timestamp::now().as_nanosecond() as u128;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (now >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
            }
            buf
        }
    }
}

fn key_of(obj: &DynamicObject) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

impl Ctx {
    /// True when every remembered write of this cluster is visible in the caches.
    fn caught_up(&self, key: &Key) -> bool {
        let mut exp = self.expectations.lock().unwrap_or_else(|e| e.into_inner());
        let Some((since, writes)) = exp.get(key) else {
            return true;
        };
        if since.elapsed() > EXPECTATION_TIMEOUT {
            tracing::warn!(cluster = %key.1, namespace = %key.0, "caches did not show our writes in time; reconciling anyway");
            exp.remove(key);
            return true;
        }
        let done = writes.iter().all(|w| self.visible(w));
        if done {
            exp.remove(key);
        }
        done
    }

    fn visible(&self, w: &Written) -> bool {
        match w {
            Written::At {
                kind,
                namespace,
                name,
                resource_version,
                ..
            } => {
                match self.lookup(kind, namespace.as_deref(), name) {
                    Some((rv, _)) => rv >= *resource_version,
                    // Not in a cache we can see: nothing to wait for.
                    None => !self.tracked(kind),
                }
            }
            Written::Deleted {
                kind,
                namespace,
                name,
                uid,
                ..
            } => match self.lookup(kind, namespace.as_deref(), name) {
                Some((_, seen_uid)) => &seen_uid != uid,
                None => true,
            },
        }
    }

    fn tracked(&self, kind: &str) -> bool {
        kind == "PerconaPGCluster" || kind == "PerconaPGBackup" || kind == "PerconaPGRestore"
    }

    fn lookup(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<(u64, String)> {
        if kind == "PerconaPGCluster" {
            let r = ObjectRef::new_with(name, cluster_resource());
            let r = match ns {
                Some(ns) => r.within(ns),
                None => r,
            };
            return self.clusters.get(&r).map(|o| meta_rv(&o.metadata));
        }
        self.caches.lookup(kind, ns, name)
    }
}

pub fn meta_rv(m: &kube::api::ObjectMeta) -> (u64, String) {
    (
        m.resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        m.uid.clone().unwrap_or_default(),
    )
}

async fn reconcile(cluster: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let key = key_of(&cluster);
    let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
    let span =
        tracing::info_span!("reconcile", cluster = %key.1, namespace = %key.0, reconcile_id = id);
    async move {
        ctx.caches.ready().await;
        if !ctx.caught_up(&key) {
            tracing::debug!("waiting for the caches to show the previous writes");
            return Ok(Action::requeue(EXPECTATION_POLL));
        }
        let started = Instant::now();
        let observed = match ctx.caches.observe(&cluster) {
            Ok(o) => o,
            Err(message) => {
                let err = ReconcileError::Unreadable { message };
                METRICS.reconciled(started.elapsed(), Some(err.reason()));
                return Err(err);
            }
        };
        let env = Env::new(Timestamp::now(), os_entropy());
        let plan = core_glue::reconcile(&observed, &env);
        let writes = plan.writes().count();
        let result = ctx.executor.execute(&plan).await;
        let took = started.elapsed();
        match result {
            Ok(written) => {
                METRICS.reconciled(took, None);
                ctx.failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                if !written.is_empty() {
                    ctx.expectations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key.clone(), (Instant::now(), written));
                }
                if writes > 0 {
                    tracing::info!(
                        actions = writes,
                        took_ms = took.as_millis() as u64,
                        "plan executed"
                    );
                } else {
                    tracing::debug!(took_ms = took.as_millis() as u64, "nothing to do");
                }
                Ok(match plan.requeue_after() {
                    Some(d) => Action::requeue(d),
                    None => Action::await_change(),
                })
            }
            Err(source) => {
                let err = ReconcileError::Exec {
                    namespace: key.0.clone(),
                    name: key.1.clone(),
                    source,
                };
                METRICS.reconciled(took, Some(err.reason()));
                Err(err)
            }
        }
    }
    .instrument(span)
    .await
}

/// Exponential backoff with jitter per cluster: 0.5 s, 1 s, 2 s ... capped at 60 s, each
/// scaled by a random factor in [0.5, 1.5) so that many clusters failing together spread out.
pub fn backoff(failures: u32, random: u64) -> Duration {
    let base = 0.5f64 * 2f64.powi(failures.min(7) as i32);
    let capped = base.min(60.0);
    let factor = 0.5 + (random % 1000) as f64 / 1000.0;
    Duration::from_secs_f64(capped * factor)
}

fn error_policy(cluster: Arc<DynamicObject>, err: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    let key = key_of(&cluster);
    let n = {
        let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.clone()).or_default();
        *n += 1;
        *n - 1
    };
    let random = u64::from_le_bytes(os_entropy()[..8].try_into().unwrap_or([0; 8]));
    let delay = backoff(n, random);
    // Conflicts are expected under concurrency (someone else wrote first): debug, not warn.
    if err.reason() == "conflict" {
        tracing::debug!(cluster = %key.1, namespace = %key.0, error = %err, retry_in_ms = delay.as_millis() as u64, "conflict; retrying");
    } else {
        tracing::warn!(cluster = %key.1, namespace = %key.0, error = %err, retry_in_ms = delay.as_millis() as u64, "reconcile failed; retrying");
    }
    Action::requeue(delay)
}

/// The clusters' own cache (the controller's store) and the stream of clusters that changed,
/// without the managedFields of other managers, as the other caches.
pub fn cluster_cache(
    api: kube::Api<DynamicObject>,
    ar: kube::core::ApiResource,
) -> (
    Store<DynamicObject>,
    impl futures::Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
) {
    let writer = kube::runtime::reflector::store::Writer::<DynamicObject>::new(ar);
    let reader = writer.as_reader();
    let events = kube::runtime::reflector::reflector(
        writer,
        watcher(api, crate::observe::list_config())
            .modify(|o| crate::observe::strip_managed_fields(&mut o.metadata)),
    )
    .applied_objects();
    (reader, events)
}

/// Run the controller over one scope until `shutdown` resolves.
pub async fn run_scope(
    client: Client,
    scope: Scope,
    workers: u16,
    database: Arc<dyn DatabaseOps>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Undeclared> {
    let (caches, triggers) = Caches::start(&client, &scope)?;
    let ar = cluster_resource();
    let api = scope.dynamic_api(&client, &ar);
    let (reader, cluster_events) = cluster_cache(api, ar.clone());
    let controller = Controller::for_stream_with(cluster_events, reader, ar.clone())
        .with_config(Config::default().concurrency(workers))
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown);
    let clusters = controller.store();
    METRICS.register_clusters(clusters.clone());
    let reporter = Reporter {
        controller: "tusk".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Ctx {
        executor: Executor {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), reporter),
            database,
        },
        caches,
        clusters,
        expectations: Mutex::default(),
        failures: Mutex::default(),
        next_id: AtomicU64::new(1),
        told_missing: Mutex::default(),
    });
    tracing::info!(namespace = scope.label(), workers, "controller started");
    let after = ctx.clone();
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            let ctx = after.clone();
            async move {
                if let Err(e) = res {
                    match e {
                        // Already logged with its cluster by error_policy.
                        kube::runtime::controller::Error::ReconcilerFailed(..) => {}
                        // A reconcile request for a cluster that is gone: normal after deletion,
                        // but a backup or restore that names a cluster that does not exist would
                        // otherwise wait in silence.
                        kube::runtime::controller::Error::ObjectNotFound(r) => {
                            tracing::debug!(object = %r, "cluster gone");
                            tell_missing_cluster(&ctx, r.namespace.as_deref(), &r.name).await;
                        }
                        other => tracing::warn!(error = %other, "controller error"),
                    }
                }
            }
        })
        .await;
    tracing::info!(namespace = scope.label(), "controller stopped");
    Ok(())
}

/// Backups and restores that have not started (no `status.state`) and name a cluster that
/// does not exist: one Warning Event each, so `kubectl describe` says why nothing happens.
/// They start when the cluster appears; nothing is changed on them.
async fn tell_missing_cluster(ctx: &Ctx, namespace: Option<&str>, cluster: &str) {
    let ns = namespace.unwrap_or_default();
    let waiting = |index: &crate::index::Index<DynamicObject>| {
        index
            .of_cluster(ns, cluster)
            .into_iter()
            .filter(|o| {
                o.data.pointer("/status/state").is_none() && o.metadata.deletion_timestamp.is_none()
            })
            .collect::<Vec<_>>()
    };
    let mut pending = waiting(&ctx.caches.backups);
    pending.extend(waiting(&ctx.caches.restores));
    for o in pending {
        let Some(uid) = o.metadata.uid.clone() else {
            continue;
        };
        if !ctx
            .told_missing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid)
        {
            continue;
        }
        let kind = o.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default();
        let ns = namespace.unwrap_or("default");
        let action = tusk_core::Action::Event {
            regarding: tusk_core::ObjectRef {
                api_version: "pgv2.percona.com/v2".into(),
                kind: kind.clone(),
                namespace: namespace.map(str::to_string),
                name: o.name_any(),
            },
            type_: tusk_core::EventType::Warning,
            reason: "ClusterNotFound".into(),
            message: format!(
                "{kind} {} names cluster {cluster} (spec.pgCluster), which does not exist in namespace {ns}; it waits until that PerconaPGCluster exists",
                o.name_any()
            ),
        };
        tracing::warn!(object = %o.name_any(), kind = %kind, cluster = %cluster, namespace = %ns, "spec.pgCluster names a cluster that does not exist");
        if let Err(e) = ctx.executor.execute_one(&action).await {
            tracing::warn!(error = %e, "could not record event");
        }
    }
}

/// For tests and `tusk up`: the reference type the controller uses for clusters.
pub fn cluster_ref(namespace: &str, name: &str) -> ObjectRef<DynamicObject> {
    ObjectRef::new_with(name, cluster_resource()).within(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert!(backoff(0, 500) >= Duration::from_millis(400));
        assert!(backoff(0, 500) <= Duration::from_millis(600));
        assert!(backoff(3, 500) > backoff(1, 500));
        assert!(backoff(40, 999) <= Duration::from_secs(90));
        assert_ne!(backoff(2, 0), backoff(2, 700));
    }

    #[test]
    fn entropy_differs_between_calls() {
        assert_ne!(os_entropy(), os_entropy());
    }
}
