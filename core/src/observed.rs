//! What a reconcile sees: one consistent snapshot of a cluster's CR and everything it owns.
//!
//! Both drivers build this: the operator from its reflector caches, the world from the fake
//! API server's store at some (possibly stale) revision. Collections are sorted by name so
//! that the same snapshot always yields the same plan.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::{Deserialize, Serialize};

/// A snapshot of one PerconaPGCluster and its world. `C`, `B` and `R` are the cluster, backup and
/// restore kinds; they default to the `api` types once those exist.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed<C = serde_json::Value, B = serde_json::Value, R = serde_json::Value> {
    /// The CR itself.
    pub cluster: C,
    /// The resourceVersion the snapshot was read at (the newest one seen across the caches).
    pub revision: String,
    pub stateful_sets: Vec<StatefulSet>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub endpoints: Vec<Endpoints>,
    pub pods: Vec<Pod>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub jobs: Vec<Job>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub backups: Vec<B>,
    pub restores: Vec<R>,
}
