//! What a reconcile sees: one consistent snapshot of a cluster's CR and everything it owns.
//!
//! Both drivers build this: the operator from its reflector caches, the world from the fake
//! API server's store at some (possibly stale) revision. What to put in each collection (all
//! in the cluster's namespace):
//!
//! | field | objects |
//! |---|---|
//! | `stateful_sets`, `deployments`, `services`, `config_maps`, `secrets`, `pvcs`, `pdbs`, `service_accounts`, `roles`, `role_bindings`, `jobs` | labelled `postgres-operator.crunchydata.com/cluster=<cluster>` |
//! | `pods` | labelled `postgres-operator.crunchydata.com/cluster=<cluster>` (instances carry Patroni's `…/role` label) |
//! | `endpoints` | labelled `…/cluster=<cluster>`: Patroni's DCS objects (`<cluster>-ha` with the `leader` annotation, `<cluster>-ha-config`) and tusk's `<cluster>-primary` |
//! | `backups`, `restores` | PerconaPGBackup / PerconaPGRestore with `spec.pgCluster=<cluster>` |
//!
//! Order does not matter: [`Observed::normalize`] sorts every collection by name, and
//! [`crate::reconcile`] never depends on the order it was given.

use crate::api::{PerconaPGBackup, PerconaPGCluster, PerconaPGRestore};
use crate::labels;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Serialize};

/// A snapshot of one PerconaPGCluster and its world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// The CR itself.
    pub cluster: PerconaPGCluster,
    /// The resourceVersion the snapshot was read at (the newest one seen across the caches).
    #[serde(default)]
    pub revision: String,
    #[serde(default)]
    pub stateful_sets: Vec<StatefulSet>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub config_maps: Vec<ConfigMap>,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub endpoints: Vec<Endpoints>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub pvcs: Vec<PersistentVolumeClaim>,
    #[serde(default)]
    pub jobs: Vec<Job>,
    #[serde(default)]
    pub pdbs: Vec<PodDisruptionBudget>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub role_bindings: Vec<RoleBinding>,
    #[serde(default)]
    pub backups: Vec<PerconaPGBackup>,
    #[serde(default)]
    pub restores: Vec<PerconaPGRestore>,
}

fn name_of<T: Resource>(o: &T) -> &str {
    o.meta().name.as_deref().unwrap_or("")
}

/// Finds an object by name in one of the collections.
pub fn by_name<'a, T: Resource>(list: &'a [T], name: &str) -> Option<&'a T> {
    list.iter().find(|o| name_of(*o) == name)
}

fn sort<T: Resource>(v: &mut [T]) {
    v.sort_by(|a, b| name_of(a).cmp(name_of(b)));
}

impl Observed {
    /// A world in which only the CR exists.
    pub fn new(cluster: PerconaPGCluster) -> Self {
        Self {
            cluster,
            ..Self::default()
        }
    }

    /// Sorts every collection by name.
    pub fn normalize(&mut self) {
        sort(&mut self.stateful_sets);
        sort(&mut self.deployments);
        sort(&mut self.services);
        sort(&mut self.config_maps);
        sort(&mut self.secrets);
        sort(&mut self.endpoints);
        sort(&mut self.pods);
        sort(&mut self.pvcs);
        sort(&mut self.jobs);
        sort(&mut self.pdbs);
        sort(&mut self.service_accounts);
        sort(&mut self.roles);
        sort(&mut self.role_bindings);
        self.backups
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        self.restores
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }

    pub fn pod(&self, name: &str) -> Option<&Pod> {
        by_name(&self.pods, name)
    }

    /// The member Patroni's leader lock names (`<cluster>-ha` Endpoints, annotation `leader`),
    /// when that pod exists; otherwise the one pod whose role label says primary.
    pub fn primary_pod(&self) -> Option<&Pod> {
        let cluster = self.cluster.metadata.name.as_deref().unwrap_or("");
        let scope = crate::naming::patroni_scope(cluster);
        let leader = by_name(&self.endpoints, &scope)
            .and_then(|e| e.metadata.annotations.as_ref())
            .and_then(|a| a.get("leader"))
            .filter(|l| !l.is_empty());
        if let Some(p) = leader.and_then(|l| self.pod(l)) {
            return Some(p);
        }
        let mut primaries = self.pods.iter().filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::ROLE))
                    .is_some_and(|r| labels::is_primary_role(r))
        });
        let first = primaries.next();
        // Two pods claiming the role (a stale label during failover): trust neither.
        if primaries.next().is_some() {
            return None;
        }
        first
    }
}

/// Whether a pod is Ready (condition Ready=True) and not being deleted.
pub fn pod_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A label of an object's metadata.
pub fn label<'a>(m: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    m.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

pub fn annotation<'a>(m: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    m.annotations
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}
