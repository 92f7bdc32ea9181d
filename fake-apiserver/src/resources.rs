//! The resource types the server knows: the built-in table plus the ones CRDs register at runtime.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where the `/scale` subresource reads and writes replicas (JSON paths like `.spec.replicas`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// One served resource in one group-version.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource (the main endpoint then ignores status).
    pub status: bool,
    pub scale: Option<ScaleSpec>,
    /// Served from a CustomResourceDefinition.
    pub custom: bool,
    /// metadata.generation is maintained.
    pub generation: bool,
    /// PUT of a missing object creates it.
    pub create_on_update: bool,
    /// DELETE returns the object rather than a Status.
    pub return_deleted: bool,
    /// Read-only / virtual resources (no storage).
    pub verbs: Vec<&'static str>,
    /// For CRDs: the openAPIV3Schema of this version (defaults, pruning).
    pub schema: Option<Arc<Value>>,
    /// For CRDs: additionalPrinterColumns of this version.
    pub printer_columns: Vec<Value>,
    /// The version objects are stored in (CRDs with several versions share one storage).
    pub storage_version: String,
}

impl ResourceInfo {
    /// A custom resource served at a version other than the one it is stored in: reads
    /// rewrite its apiVersion.
    pub fn converts_on_read(&self) -> bool {
        self.custom && self.version != self.storage_version
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`: the storage key, shared by all versions.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        status,
        scale: None,
        custom: false,
        generation,
        create_on_update: false,
        return_deleted: false,
        verbs: ALL_VERBS.to_vec(),
        schema: None,
        printer_columns: vec![],
        storage_version: version.into(),
    }
}

fn replicas_scale(selector: bool) -> Option<ScaleSpec> {
    Some(ScaleSpec {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        label_selector_path: selector.then(|| ".spec.selector".into()),
    })
}

/// The built-in kinds served from the start.
pub fn builtins() -> Vec<ResourceInfo> {
    let mut v = vec![
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            true,
            false,
        ),
        builtin("", "v1", "Pod", "pods", true, &["po"], true, false),
        builtin("", "v1", "Service", "services", true, &["svc"], true, false),
        builtin(
            "",
            "v1",
            "Endpoints",
            "endpoints",
            true,
            &["ep"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            false,
        ),
        builtin("", "v1", "Secret", "secrets", true, &[], false, false),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            true,
            false,
        ),
        builtin(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            &["pv"],
            true,
            false,
        ),
        builtin("", "v1", "Node", "nodes", false, &["no"], true, false),
        builtin("", "v1", "Event", "events", true, &["ev"], false, false),
        builtin(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            true,
            &["limits"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            true,
            &["quota"],
            true,
            false,
        ),
        builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            true,
            &[],
            false,
            false,
        ),
        builtin("batch", "v1", "Job", "jobs", true, &[], true, true),
        builtin(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            true,
            true,
        ),
        builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            true,
            true,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            false,
        ),
        ResourceInfo {
            verbs: vec!["create"],
            ..builtin(
                "authorization.k8s.io",
                "v1",
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
                false,
                &[],
                false,
                false,
            )
        },
        ResourceInfo {
            verbs: vec!["create"],
            ..builtin(
                "authentication.k8s.io",
                "v1",
                "SelfSubjectReview",
                "selfsubjectreviews",
                false,
                &[],
                false,
                false,
            )
        },
        builtin(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            &["netpol"],
            false,
            true,
        ),
        builtin(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            &["sc"],
            false,
            false,
        ),
        builtin(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            false,
            &["pc"],
            false,
            false,
        ),
        builtin(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["hpa"],
            true,
            true,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
            true,
        ),
    ];
    for r in &mut v {
        match r.plural.as_str() {
            "statefulsets" | "deployments" | "replicasets" => r.scale = replicas_scale(true),
            _ => {}
        }
        r.create_on_update = matches!(
            r.plural.as_str(),
            "endpoints"
                | "services"
                | "leases"
                | "events"
                | "configmaps"
                | "secrets"
                | "nodes"
                | "endpointslices"
                | "roles"
                | "rolebindings"
                | "clusterroles"
                | "clusterrolebindings"
        );
        r.return_deleted = matches!(
            r.plural.as_str(),
            "pods"
                | "serviceaccounts"
                | "services"
                | "namespaces"
                | "persistentvolumeclaims"
                | "persistentvolumes"
                | "nodes"
        );
    }
    // "all" is only for the usual workload kinds, as kubectl get all shows.
    for r in &mut v {
        r.categories = if matches!(
            r.plural.as_str(),
            "pods"
                | "services"
                | "deployments"
                | "statefulsets"
                | "replicasets"
                | "daemonsets"
                | "jobs"
                | "cronjobs"
                | "horizontalpodautoscalers"
        ) {
            vec!["all".into()]
        } else {
            vec![]
        };
    }
    v
}

/// Lookup tables over the served resources.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    items: Vec<Arc<ResourceInfo>>,
    by_path: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
    by_gvk: BTreeMap<(String, String), Arc<ResourceInfo>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Self::default();
        for info in builtins() {
            r.add(info);
        }
        r
    }

    pub fn add(&mut self, info: ResourceInfo) {
        let info = Arc::new(info);
        self.remove(&info.group, &info.version, &info.plural);
        self.by_path.insert(
            (
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            ),
            info.clone(),
        );
        self.by_gvk
            .insert((info.api_version(), info.kind.clone()), info.clone());
        self.items.push(info);
    }

    pub fn remove(&mut self, group: &str, version: &str, plural: &str) {
        if let Some(old) =
            self.by_path
                .remove(&(group.to_string(), version.to_string(), plural.to_string()))
        {
            self.by_gvk.remove(&(old.api_version(), old.kind.clone()));
            self.items.retain(|i| !Arc::ptr_eq(i, &old));
        }
    }

    /// Remove every version of a group-resource (CRD deletion).
    pub fn remove_group_resource(&mut self, group: &str, plural: &str) {
        let versions: Vec<String> = self
            .items
            .iter()
            .filter(|i| i.group == group && i.plural == plural)
            .map(|i| i.version.clone())
            .collect();
        for v in versions {
            self.remove(group, &v, plural);
        }
    }

    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    pub fn by_gvk(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gvk
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }

    /// Any served version of a group-resource (`plural` or `plural.group`).
    pub fn by_group_resource(&self, gr: &str) -> Option<Arc<ResourceInfo>> {
        self.items
            .iter()
            .find(|i| i.group_resource() == gr && i.version == i.storage_version)
            .or_else(|| self.items.iter().find(|i| i.group_resource() == gr))
            .cloned()
    }

    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.items
    }

    /// Group-versions served, core first, then groups in registration order.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = vec![];
        for i in &self.items {
            let gv = (i.group.clone(), i.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }
}
