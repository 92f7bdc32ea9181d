//! Reflector caches of everything a reconcile reads, and the assembly of [`Observed`] from them.
//!
//! Owned kinds are watched with a label selector on the cluster label, so the operator's memory
//! grows with what tusk owns, not with everything in the namespace. Every change to an owned
//! object, backup or restore becomes a reconcile request for its cluster.

use crate::core_glue::CLUSTER_LABEL;
use crate::kinds::{self, KINDS, Undeclared};
use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use tusk_core::Observed;

/// Where the operator looks: one namespace or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self {
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
            Scope::All => Api::all(client.clone()),
        }
    }

    pub fn dynamic_api(&self, client: &Client, ar: &ApiResource) -> Api<DynamicObject> {
        match self {
            Scope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, ar),
            Scope::All => Api::all_with(client.clone(), ar),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Scope::Namespace(ns) => ns,
            Scope::All => "*",
        }
    }
}

/// The cluster kind as a dynamic resource (the core's typed API is converted at the glue).
pub fn cluster_resource() -> ApiResource {
    kind_spec("PerconaPGCluster").api_resource()
}

fn kind_spec(kind: &str) -> &'static kinds::KindSpec {
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .expect("kind declared in kinds::KINDS")
}

/// A stream of cluster references to reconcile.
pub type Triggers = SelectAll<BoxStream<'static, ObjectRef<DynamicObject>>>;

/// Every cache a reconcile reads.
#[derive(Clone)]
pub struct Caches {
    pub backups: Store<DynamicObject>,
    pub restores: Store<DynamicObject>,
    pub stateful_sets: Store<StatefulSet>,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub secrets: Store<Secret>,
    pub endpoints: Store<Endpoints>,
    pub pods: Store<Pod>,
    pub pvcs: Store<PersistentVolumeClaim>,
    pub jobs: Store<Job>,
    pub pdbs: Store<PodDisruptionBudget>,
    pub service_accounts: Store<ServiceAccount>,
    pub roles: Store<Role>,
    pub role_bindings: Store<RoleBinding>,
}

impl Caches {
    /// Start the reflectors (they run as the returned trigger stream is polled).
    pub fn start(client: &Client, scope: &Scope) -> Result<(Self, Triggers), Undeclared> {
        let mut triggers = SelectAll::new();
        let cluster_ar = cluster_resource();
        let caches = Caches {
            backups: pg_store(client, scope, "PerconaPGBackup", &cluster_ar, &mut triggers)?,
            restores: pg_store(
                client,
                scope,
                "PerconaPGRestore",
                &cluster_ar,
                &mut triggers,
            )?,
            stateful_sets: owned(client, scope, &cluster_ar, &mut triggers)?,
            deployments: owned(client, scope, &cluster_ar, &mut triggers)?,
            services: owned(client, scope, &cluster_ar, &mut triggers)?,
            config_maps: owned(client, scope, &cluster_ar, &mut triggers)?,
            secrets: owned(client, scope, &cluster_ar, &mut triggers)?,
            endpoints: owned(client, scope, &cluster_ar, &mut triggers)?,
            pods: owned(client, scope, &cluster_ar, &mut triggers)?,
            pvcs: owned(client, scope, &cluster_ar, &mut triggers)?,
            jobs: owned(client, scope, &cluster_ar, &mut triggers)?,
            pdbs: owned(client, scope, &cluster_ar, &mut triggers)?,
            service_accounts: owned(client, scope, &cluster_ar, &mut triggers)?,
            roles: owned(client, scope, &cluster_ar, &mut triggers)?,
            role_bindings: owned(client, scope, &cluster_ar, &mut triggers)?,
        };
        Ok((caches, triggers))
    }

    /// Wait until every reflector has listed once, so a first reconcile never sees a partial
    /// world (which could make it recreate objects that exist).
    pub async fn ready(&self) {
        let _ = futures::join!(
            self.backups.wait_until_ready(),
            self.restores.wait_until_ready(),
            self.stateful_sets.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.services.wait_until_ready(),
            self.config_maps.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.endpoints.wait_until_ready(),
            self.pods.wait_until_ready(),
            self.pvcs.wait_until_ready(),
            self.jobs.wait_until_ready(),
            self.pdbs.wait_until_ready(),
            self.service_accounts.wait_until_ready(),
            self.roles.wait_until_ready(),
            self.role_bindings.wait_until_ready(),
        );
    }

    /// resourceVersion and uid of a cached object, by kind.
    pub fn lookup(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<(u64, String)> {
        fn find<K: Resource<DynamicType = ()> + Clone + 'static>(
            store: &Store<K>,
            ns: Option<&str>,
            name: &str,
        ) -> Option<(u64, String)> {
            store
                .get(&ObjectRef::new(name).within(ns.unwrap_or_default()))
                .map(|o| crate::controller::meta_rv(o.meta()))
        }
        fn find_dyn(
            store: &Store<DynamicObject>,
            ns: Option<&str>,
            name: &str,
        ) -> Option<(u64, String)> {
            store
                .find(|o| {
                    o.metadata.name.as_deref() == Some(name)
                        && o.metadata.namespace.as_deref() == ns
                })
                .map(|o| crate::controller::meta_rv(&o.metadata))
        }
        match kind {
            "PerconaPGBackup" => find_dyn(&self.backups, ns, name),
            "PerconaPGRestore" => find_dyn(&self.restores, ns, name),
            "StatefulSet" => find(&self.stateful_sets, ns, name),
            "Deployment" => find(&self.deployments, ns, name),
            "Service" => find(&self.services, ns, name),
            "ConfigMap" => find(&self.config_maps, ns, name),
            "Secret" => find(&self.secrets, ns, name),
            "Endpoints" => find(&self.endpoints, ns, name),
            "Pod" => find(&self.pods, ns, name),
            "PersistentVolumeClaim" => find(&self.pvcs, ns, name),
            "Job" => find(&self.jobs, ns, name),
            "PodDisruptionBudget" => find(&self.pdbs, ns, name),
            "ServiceAccount" => find(&self.service_accounts, ns, name),
            "Role" => find(&self.roles, ns, name),
            "RoleBinding" => find(&self.role_bindings, ns, name),
            _ => None,
        }
    }

    /// The snapshot of one cluster; Err names what could not be read as its typed kind (a CR
    /// that the API accepted but the core's types reject).
    pub fn observe(&self, cluster: &DynamicObject) -> Result<Observed, String> {
        let ns = cluster.namespace().unwrap_or_default();
        let name = cluster.name_any();
        let mut revision = rv(cluster);
        let typed = serde_json::to_value(cluster)
            .and_then(serde_json::from_value)
            .map_err(|e| format!("PerconaPGCluster {ns}/{name} cannot be read: {e}"))?;
        let mut observed = Observed::new(typed);
        macro_rules! fill {
            ($($field:ident),*) => {$(
                observed.$field = select(&self.$field, &ns, &name, &mut revision);
            )*};
        }
        fill!(
            stateful_sets,
            deployments,
            services,
            config_maps,
            secrets,
            endpoints,
            pods,
            pvcs,
            jobs,
            pdbs,
            service_accounts,
            roles,
            role_bindings
        );
        observed.backups = select_pg(&self.backups, &ns, &name, &mut revision);
        observed.restores = select_pg(&self.restores, &ns, &name, &mut revision);
        observed.revision = revision.to_string();
        Ok(observed)
    }
}

fn rv<K: Resource>(obj: &K) -> u64 {
    obj.meta()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn select<K>(store: &Store<K>, ns: &str, cluster: &str, revision: &mut u64) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut objs: Vec<K> = store
        .state_filter(|o| {
            o.meta().namespace.as_deref() == Some(ns)
                && o.meta()
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(CLUSTER_LABEL))
                    .map(String::as_str)
                    == Some(cluster)
        })
        .into_iter()
        .map(|o| (*o).clone())
        .collect();
    objs.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    for o in &objs {
        *revision = (*revision).max(rv(o));
    }
    objs
}

/// The cluster a backup or restore belongs to: `spec.pgCluster`.
pub fn pg_cluster_of(obj: &DynamicObject) -> Option<&str> {
    obj.data.pointer("/spec/pgCluster").and_then(|v| v.as_str())
}

fn select_pg<T: serde::de::DeserializeOwned>(
    store: &Store<DynamicObject>,
    ns: &str,
    cluster: &str,
    revision: &mut u64,
) -> Vec<T> {
    let mut objs: Vec<Arc<DynamicObject>> = store.state_filter(|o| {
        o.metadata.namespace.as_deref() == Some(ns) && pg_cluster_of(o) == Some(cluster)
    });
    objs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    objs.iter()
        .filter_map(|o| {
            *revision = (*revision).max(rv(o.as_ref()));
            // A backup or restore the types reject is left out (the API server validated it
            // against the CRD schema, so this is rare); it is logged, not fatal to the cluster.
            match serde_json::to_value(o.as_ref()).and_then(serde_json::from_value) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(object = %o.name_any(), kind = ?o.types.as_ref().map(|t| &t.kind), error = %e, "cannot read object; ignored");
                    None
                }
            }
        })
        .collect()
}

fn strip<K: Resource + 'static>(obj: &mut K) {
    // managedFields are the largest part of most objects and the core never reads them.
    obj.meta_mut().managed_fields = None;
    if let Some(pod) = (obj as &mut dyn std::any::Any).downcast_mut::<Pod>() {
        trim_pod(pod);
    }
}

/// What the core reads of a pod is its metadata (labels, annotations, deletion) and its
/// conditions and phase; the executor reads a pod afresh before it execs into it. The rest
/// (the spec, container statuses) is most of a pod's size and, at a thousand clusters, most of
/// the operator's memory, so the cache does not keep it.
fn trim_pod(pod: &mut Pod) {
    pod.spec = None;
    if let Some(status) = pod.status.take() {
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            conditions: status.conditions,
            phase: status.phase,
            ..Default::default()
        });
    }
}

fn cluster_ref(ns: Option<String>, name: &str, ar: &ApiResource) -> ObjectRef<DynamicObject> {
    let r = ObjectRef::new_with(name, ar.clone());
    match ns {
        Some(ns) => r.within(&ns),
        None => r,
    }
}

fn owned<K>(
    client: &Client,
    scope: &Scope,
    cluster_ar: &ApiResource,
    triggers: &mut Triggers,
) -> Result<Store<K>, Undeclared>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    kinds::require_typed::<K>("watch")?;
    let (reader, writer) = reflector::store::<K>();
    let cfg = watcher::Config::default()
        .labels(CLUSTER_LABEL)
        .any_semantic();
    let ar = cluster_ar.clone();
    let stream = watcher(scope.api::<K>(client), cfg)
        .default_backoff()
        .modify(strip)
        .reflect(writer)
        .touched_objects()
        .filter_map(move |res| {
            let out = match res {
                Ok(obj) => obj
                    .labels()
                    .get(CLUSTER_LABEL)
                    .map(|c| cluster_ref(obj.namespace(), c, &ar)),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying with backoff");
                    crate::metrics::METRICS.watch_error();
                    None
                }
            };
            futures::future::ready(out)
        });
    triggers.push(boxed(stream));
    Ok(reader)
}

fn pg_store(
    client: &Client,
    scope: &Scope,
    kind: &str,
    cluster_ar: &ApiResource,
    triggers: &mut Triggers,
) -> Result<Store<DynamicObject>, Undeclared> {
    let spec = kind_spec(kind);
    kinds::require(&spec.api_version(), spec.kind, None, "watch")?;
    let ar = spec.api_resource();
    let writer = reflector::store::Writer::new(ar.clone());
    let reader = writer.as_reader();
    let cluster_ar = cluster_ar.clone();
    let stream = watcher(scope.dynamic_api(client, &ar), watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(strip)
        .reflect(writer)
        .touched_objects()
        .filter_map(move |res| {
            let out = match res {
                Ok(obj) => pg_cluster_of(&obj).map(|c| cluster_ref(obj.namespace(), c, &cluster_ar)),
                Err(e) => {
                    tracing::warn!(error = %e, "watch of backups/restores failed; retrying with backoff");
                    crate::metrics::METRICS.watch_error();
                    None
                }
            };
            futures::future::ready(out)
        });
    triggers.push(boxed(stream));
    Ok(reader)
}

fn boxed<S>(s: S) -> BoxStream<'static, ObjectRef<DynamicObject>>
where
    S: Stream<Item = ObjectRef<DynamicObject>> + Send + 'static,
{
    s.boxed()
}

#[cfg(test)]
mod trim_tests {
    use super::*;

    fn pod(ready: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "c1-instance1-abcd-0",
                "uid": "u1",
                "labels": {"postgres-operator.crunchydata.com/role": "primary"},
                "annotations": {"pgv2.percona.com/template-hash": "h1"},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
            },
            "spec": {"containers": [{"name": "database", "image": "pg", "env": [{"name": "A", "value": "1"}]}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [{"name": "database", "ready": true, "restartCount": 0, "image": "pg", "imageID": ""}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_cached_pod_keeps_what_the_core_reads_and_drops_the_rest() {
        for ready in ["True", "False"] {
            let full = pod(ready);
            let mut cached = full.clone();
            strip(&mut cached);
            assert_eq!(
                tusk_core::observed::pod_ready(&cached),
                tusk_core::observed::pod_ready(&full)
            );
            assert_eq!(cached.metadata.labels, full.metadata.labels);
            assert_eq!(cached.metadata.annotations, full.metadata.annotations);
            assert_eq!(cached.metadata.uid, full.metadata.uid);
            assert!(cached.metadata.managed_fields.is_none());
            assert!(cached.spec.is_none());
            let status = cached.status.unwrap();
            assert_eq!(status.phase.as_deref(), Some("Running"));
            assert!(status.container_statuses.is_none() && status.pod_ip.is_none());
        }
        // Other kinds keep everything but managedFields.
        let mut cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "managedFields": [{"manager": "m"}]},
            "data": {"k": "v"},
        }))
        .unwrap();
        strip(&mut cm);
        assert!(cm.metadata.managed_fields.is_none());
        assert_eq!(cm.data.unwrap()["k"], "v");
    }
}
