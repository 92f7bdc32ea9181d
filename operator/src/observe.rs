//! Caches of everything a reconcile reads, and the assembly of [`Observed`] from them.
//!
//! Owned kinds are watched with a label selector on the cluster label, so the operator's memory
//! grows with what tusk owns, not with everything in the namespace. Every change to an owned
//! object, backup or restore becomes a reconcile request for its cluster. Each cache is an
//! [`Index`] by cluster holding compact JSON, so assembling one cluster's snapshot costs what
//! that cluster holds (see [`crate::index`]; `cargo bench -p tusk-operator --bench footprint`
//! measures the heap per cluster and per kind).

use crate::core_glue::CLUSTER_LABEL;
use crate::index::{ClusterOf, Index};
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
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
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

/// Every cache a reconcile reads, each indexed by cluster (see [`crate::index`]).
#[derive(Clone)]
pub struct Caches {
    pub backups: Index<DynamicObject>,
    pub restores: Index<DynamicObject>,
    pub stateful_sets: Index<StatefulSet>,
    pub deployments: Index<Deployment>,
    pub services: Index<Service>,
    pub config_maps: Index<ConfigMap>,
    pub secrets: Index<Secret>,
    pub endpoints: Index<Endpoints>,
    pub pods: Index<Pod>,
    pub pvcs: Index<PersistentVolumeClaim>,
    pub jobs: Index<Job>,
    pub pdbs: Index<PodDisruptionBudget>,
    pub service_accounts: Index<ServiceAccount>,
    pub roles: Index<Role>,
    pub role_bindings: Index<RoleBinding>,
}

/// Calls `$m!(field)` for every owned kind's field of [`Caches`].
macro_rules! owned_kinds {
    ($m:ident) => {
        $m!(
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
        )
    };
}

impl Caches {
    /// Start the watches (they run as the returned trigger stream is polled).
    pub fn start(client: &Client, scope: &Scope) -> Result<(Self, Triggers), Undeclared> {
        Self::start_only(client, scope, |_| true)
    }

    /// Start the watches of the kinds `watch` accepts (by kind name); the other caches stay
    /// empty and never become ready. For measuring one kind's footprint alone.
    pub fn start_only(
        client: &Client,
        scope: &Scope,
        watch: impl Fn(&str) -> bool,
    ) -> Result<(Self, Triggers), Undeclared> {
        let mut triggers = SelectAll::new();
        let cluster_ar = cluster_resource();
        macro_rules! owned_field {
            ($kind:ty) => {
                owned_field!($kind, &[])
            };
            ($kind:ty, $quiet:expr) => {{
                let index = Index::with_quiet_annotations(cluster_label::<$kind>, $quiet);
                if watch(<$kind as Resource>::kind(&()).as_ref()) {
                    owned(client, scope, &cluster_ar, &index, &mut triggers)?;
                }
                index
            }};
        }
        let mut pg = |kind: &str| -> Result<Index<DynamicObject>, Undeclared> {
            let index = Index::new(pg_cluster_owned as ClusterOf<DynamicObject>);
            if watch(kind) {
                pg_store(client, scope, kind, &cluster_ar, &index, &mut triggers)?;
            }
            Ok(index)
        };
        let backups = pg("PerconaPGBackup")?;
        let restores = pg("PerconaPGRestore")?;
        let caches = Caches {
            backups,
            restores,
            stateful_sets: owned_field!(StatefulSet),
            deployments: owned_field!(Deployment),
            services: owned_field!(Service),
            config_maps: owned_field!(ConfigMap),
            secrets: owned_field!(Secret),
            endpoints: owned_field!(Endpoints, PATRONI_LOCK_RENEWAL),
            pods: owned_field!(Pod, PATRONI_MEMBER_STATUS),
            pvcs: owned_field!(PersistentVolumeClaim),
            jobs: owned_field!(Job),
            pdbs: owned_field!(PodDisruptionBudget),
            service_accounts: owned_field!(ServiceAccount),
            roles: owned_field!(Role),
            role_bindings: owned_field!(RoleBinding),
        };
        Ok((caches, triggers))
    }

    /// True when every cache has listed once.
    pub fn is_ready(&self) -> bool {
        let mut ready = self.backups.is_ready() && self.restores.is_ready();
        macro_rules! all {
            ($($field:ident),*) => {$( ready = ready && self.$field.is_ready(); )*};
        }
        owned_kinds!(all);
        ready
    }

    /// Wait until every cache has listed once, so a first reconcile never sees a partial
    /// world (which could make it recreate objects that exist).
    pub async fn ready(&self) {
        if self.is_ready() {
            return;
        }
        self.backups.wait_until_ready().await;
        self.restores.wait_until_ready().await;
        macro_rules! wait {
            ($($field:ident),*) => {$( self.$field.wait_until_ready().await; )*};
        }
        owned_kinds!(wait);
    }

    /// Objects held, by kind (for measurements and /metrics).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut out = vec![
            ("PerconaPGBackup", self.backups.len()),
            ("PerconaPGRestore", self.restores.len()),
        ];
        macro_rules! count {
            ($($field:ident),*) => {$( out.push((stringify!($field), self.$field.len())); )*};
        }
        owned_kinds!(count);
        out
    }

    /// Whether each cache has listed once, in the order of [`Caches::counts`].
    pub fn readiness(&self) -> Vec<bool> {
        let mut out = vec![self.backups.is_ready(), self.restores.is_ready()];
        macro_rules! ready {
            ($($field:ident),*) => {$( out.push(self.$field.is_ready()); )*};
        }
        owned_kinds!(ready);
        out
    }

    /// Bytes of JSON the caches hold.
    pub fn json_bytes(&self) -> usize {
        let mut total = self.backups.json_bytes() + self.restores.json_bytes();
        macro_rules! sum {
            ($($field:ident),*) => {$( total += self.$field.json_bytes(); )*};
        }
        owned_kinds!(sum);
        total
    }

    /// resourceVersion and uid of a cached object, by kind.
    pub fn lookup(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<(u64, String)> {
        fn find<K: Resource + serde::Serialize + DeserializeOwned>(
            index: &Index<K>,
            ns: Option<&str>,
            name: &str,
        ) -> Option<(u64, String)> {
            index.version(ns.unwrap_or_default(), name)
        }
        match kind {
            "PerconaPGBackup" => find(&self.backups, ns, name),
            "PerconaPGRestore" => find(&self.restores, ns, name),
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
    /// that the API accepted but the core's types reject). Costs what the cluster holds: each
    /// cache is indexed by cluster.
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
        owned_kinds!(fill);
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

fn select<K: Resource + serde::Serialize + DeserializeOwned>(
    index: &Index<K>,
    ns: &str,
    cluster: &str,
    revision: &mut u64,
) -> Vec<K> {
    let objs = index.of_cluster(ns, cluster);
    for o in &objs {
        *revision = (*revision).max(rv(o));
    }
    objs
}

/// The cluster a backup or restore belongs to: `spec.pgCluster`.
pub fn pg_cluster_of(obj: &DynamicObject) -> Option<&str> {
    obj.data.pointer("/spec/pgCluster").and_then(|v| v.as_str())
}

fn pg_cluster_owned(obj: &DynamicObject) -> Option<String> {
    pg_cluster_of(obj).map(str::to_string)
}

/// The cluster an owned object belongs to: its cluster label.
fn cluster_label<K: Resource>(obj: &K) -> Option<String> {
    obj.meta().labels.as_ref()?.get(CLUSTER_LABEL).cloned()
}

fn select_pg<T: serde::de::DeserializeOwned>(
    index: &Index<DynamicObject>,
    ns: &str,
    cluster: &str,
    revision: &mut u64,
) -> Vec<T> {
    index
        .of_cluster(ns, cluster)
        .iter()
        .filter_map(|o| {
            *revision = (*revision).max(rv(o));
            // A backup or restore the types reject is left out (the API server validated it
            // against the CRD schema, so this is rare); it is logged, not fatal to the cluster.
            match serde_json::to_value(o).and_then(serde_json::from_value) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(object = %o.name_any(), kind = ?o.types.as_ref().map(|t| &t.kind), error = %e, "cannot read object; ignored");
                    None
                }
            }
        })
        .collect()
}

pub(crate) fn strip<K: Resource + 'static>(obj: &mut K) {
    strip_managed_fields(obj.meta_mut());
    if let Some(pod) = (obj as &mut dyn std::any::Any).downcast_mut::<Pod>() {
        trim_pod(pod);
    }
}

/// managedFields are the largest part of most objects. The core reads one entry of them: the
/// field set of tusk's own server-side apply (`FIELD_MANAGER`, operation Apply), to see whether
/// an apply would remove a field tusk owns but no longer sends
/// (`tusk_core::reconcile::compare::drops_owned_fields`), and in that set only the `f:` keys
/// (keyed list entries `k:`/`v:`/`i:` and `.` are not followed). The cache keeps exactly that.
pub(crate) fn strip_managed_fields(meta: &mut kube::api::ObjectMeta) {
    let Some(entries) = meta.managed_fields.take() else {
        return;
    };
    let kept: Vec<_> = entries
        .into_iter()
        .filter(|m| {
            m.manager.as_deref() == Some(tusk_core::FIELD_MANAGER)
                && m.operation.as_deref() == Some("Apply")
        })
        .map(
            |m| k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                manager: m.manager,
                operation: m.operation,
                fields_v1: m.fields_v1.map(|f| {
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(only_fields(f.0))
                }),
                ..Default::default()
            },
        )
        .collect();
    meta.managed_fields = (!kept.is_empty()).then_some(kept);
}

/// A fieldsV1 set with only its `f:` keys, recursively.
fn only_fields(set: serde_json::Value) -> serde_json::Value {
    match set {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(k, _)| k.starts_with("f:"))
                .map(|(k, v)| (k, only_fields(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The annotations Patroni rewrites on `<cluster>-ha` each time it renews the leader lock
/// (every loop, 10 s by default). The core reads the lock's `leader`, never these, so their
/// changes trigger no reconcile (they are still cached).
const PATRONI_LOCK_RENEWAL: &[&str] = &["renewTime", "optime"];

/// Patroni's member `status` annotation on its pod (state, role, WAL position, timeline),
/// rewritten as the WAL position moves; the core reads the role label instead.
const PATRONI_MEMBER_STATUS: &[&str] = &["status"];

/// What the core reads of a pod is its metadata (labels, annotations, deletion) and its
/// conditions and phase; the executor reads a pod afresh before it execs into it. The rest
/// (the spec, container statuses) is most of a pod's size, so the cache does not keep it.
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

fn cluster_ref(ns: &str, name: &str, ar: &ApiResource) -> ObjectRef<DynamicObject> {
    let r = ObjectRef::new_with(name, ar.clone());
    if ns.is_empty() { r } else { r.within(ns) }
}

/// Objects per LIST page when a watch (re)lists. A page is decoded whole as typed objects
/// before the caches keep their JSON: 500 (kube-runtime's default) StatefulSets or pods took
/// about 40 MiB of transient heap in the footprint bench, and thirteen kinds list at once when
/// the operator starts. Lists are consistent reads (no `resourceVersion=0`), because an API
/// server answering from its watch cache ignores the limit.
pub const LIST_PAGE_SIZE: u32 = 50;

/// How every cache of the operator lists and watches.
pub fn list_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

/// Feeds `index` from a watch stream and turns each event into reconcile requests for the
/// clusters it touched.
fn feed<K, S>(
    stream: S,
    index: &Index<K>,
    cluster_ar: &ApiResource,
    what: &'static str,
) -> BoxStream<'static, ObjectRef<DynamicObject>>
where
    K: Resource + serde::Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let index = index.clone();
    let ar = cluster_ar.clone();
    stream
        .flat_map(move |res| {
            let touched = match res {
                Ok(event) => index.apply(event.modify(strip)),
                Err(e) => {
                    tracing::warn!(kind = what, error = %e, "watch failed; retrying with backoff");
                    crate::metrics::METRICS.watch_error();
                    Vec::new()
                }
            };
            futures::stream::iter(
                touched
                    .into_iter()
                    .map(|(ns, c)| cluster_ref(&ns, &c, &ar))
                    .collect::<Vec<_>>(),
            )
        })
        .boxed()
}

fn owned<K>(
    client: &Client,
    scope: &Scope,
    cluster_ar: &ApiResource,
    index: &Index<K>,
    triggers: &mut Triggers,
) -> Result<(), Undeclared>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    kinds::require_typed::<K>("watch")?;
    let cfg = list_config().labels(CLUSTER_LABEL);
    let stream = watcher(scope.api::<K>(client), cfg).default_backoff();
    let what: &'static str = match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => "owned kind",
    };
    triggers.push(feed(stream, index, cluster_ar, what));
    Ok(())
}

fn pg_store(
    client: &Client,
    scope: &Scope,
    kind: &str,
    cluster_ar: &ApiResource,
    index: &Index<DynamicObject>,
    triggers: &mut Triggers,
) -> Result<(), Undeclared> {
    let spec = kind_spec(kind);
    kinds::require(&spec.api_version(), spec.kind, None, "watch")?;
    let ar = spec.api_resource();
    let stream = watcher(scope.dynamic_api(client, &ar), list_config()).default_backoff();
    triggers.push(feed(stream, index, cluster_ar, spec.kind));
    Ok(())
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
        // Other kinds keep everything but managedFields of other managers.
        let mut cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "managedFields": [{"manager": "m"}]},
            "data": {"k": "v"},
        }))
        .unwrap();
        strip(&mut cm);
        assert!(cm.metadata.managed_fields.is_none());
        assert_eq!(cm.data.unwrap()["k"], "v");
    }

    /// tusk's own Apply entry is kept, reduced to its `f:` keys, and the core's check of fields
    /// tusk owns but no longer sends gives the same answer on the cached object as on the full one.
    #[test]
    fn tusks_apply_entry_is_kept_for_the_owned_fields_check() {
        use tusk_core::reconcile::compare::drops_owned_fields;
        let full: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "managedFields": [
                {"manager": "tusk", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {".": {}, "f:a": {}, "f:b": {}},
                              "f:metadata": {"f:ownerReferences": {"k:{\"uid\":\"u\"}": {}}}}},
                {"manager": "tusk", "operation": "Update", "fieldsV1": {"f:data": {"f:z": {}}}},
                {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:data": {"f:c": {}}}},
            ]},
            "data": {"a": "1", "b": "2", "c": "3"},
        }))
        .unwrap();
        let mut cached = full.clone();
        strip(&mut cached);
        let kept = cached.metadata.managed_fields.clone().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].fields_v1.as_ref().unwrap().0,
            serde_json::json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:ownerReferences": {}}})
        );
        for desired in [
            serde_json::json!({"data": {"a": "1", "b": "2"}, "metadata": {"ownerReferences": []}}),
            serde_json::json!({"data": {"a": "1"}, "metadata": {"ownerReferences": []}}),
            serde_json::json!({"data": {"a": "1", "b": "2"}}),
        ] {
            assert_eq!(
                drops_owned_fields(&desired, cached.metadata.managed_fields.as_deref()),
                drops_owned_fields(&desired, full.metadata.managed_fields.as_deref()),
                "{desired}"
            );
        }
        assert!(drops_owned_fields(
            &serde_json::json!({"data": {"a": "1"}, "metadata": {"ownerReferences": []}}),
            cached.metadata.managed_fields.as_deref()
        ));
    }
}
