//! Every kind the operator touches and what it does with it: the single table from which the
//! code builds its API handles (watches, applies, deletes, status patches, events, leases) and
//! against which `deploy/rbac.yaml` and `deploy/cw-rbac.yaml` are checked in the tests.
//!
//! If the core starts to emit a kind that is not here, the executor refuses it with an error
//! that names the kind, so the table (and therefore the RBAC) cannot silently fall behind.

use kube::core::{ApiResource, GroupVersionKind};

/// One kind and the verbs tusk uses on it and on its subresources.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// How the operator reads it: a label-filtered reflector, an unfiltered one (our CRs), none.
    pub watch: Watch,
    /// Verbs on the main resource.
    pub verbs: &'static [&'static str],
    /// (subresource, verbs), e.g. ("status", ["patch"]).
    pub subresources: &'static [(&'static str, &'static [&'static str])],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Reflector filtered on the cluster label, so memory grows with what tusk owns.
    Owned,
    /// Reflector over every object in the watched namespaces (the Percona CRs).
    Everything,
    /// Not watched.
    No,
}

// Server-side apply is a PATCH, and creates the object when missing, which needs `create` too.
const MANAGE: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
const STATUS: &[(&str, &[&str])] = &[("status", &["get", "patch", "update"])];

pub const PG_GROUP: &str = "pgv2.percona.com";

pub const KINDS: &[KindSpec] = &[
    // The Percona CRs. The cluster's finalizers are set by apply; `finalizers` update is needed
    // for ownerReferences with blockOwnerDeletion pointing at the cluster.
    KindSpec {
        group: PG_GROUP,
        version: "v2",
        kind: "PerconaPGCluster",
        plural: "perconapgclusters",
        watch: Watch::Everything,
        verbs: &["get", "list", "watch", "patch"],
        subresources: &[
            ("status", &["get", "patch", "update"]),
            ("finalizers", &["update"]),
        ],
    },
    KindSpec {
        group: PG_GROUP,
        version: "v2",
        kind: "PerconaPGBackup",
        plural: "perconapgbackups",
        watch: Watch::Everything,
        verbs: MANAGE,
        subresources: &[
            ("status", &["get", "patch", "update"]),
            ("finalizers", &["update"]),
        ],
    },
    KindSpec {
        group: PG_GROUP,
        version: "v2",
        kind: "PerconaPGRestore",
        plural: "perconapgrestores",
        watch: Watch::Everything,
        verbs: MANAGE,
        subresources: STATUS,
    },
    // What a cluster is made of.
    owned("apps", "v1", "StatefulSet", "statefulsets", MANAGE),
    owned("apps", "v1", "Deployment", "deployments", MANAGE),
    owned("", "v1", "Service", "services", MANAGE),
    owned("", "v1", "ConfigMap", "configmaps", MANAGE),
    owned("", "v1", "Secret", "secrets", MANAGE),
    // Patroni's DCS objects: read for roles and leader, created by the operator for `-ha`.
    owned("", "v1", "Endpoints", "endpoints", MANAGE),
    owned(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        MANAGE,
    ),
    owned("batch", "v1", "Job", "jobs", MANAGE),
    owned(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        MANAGE,
    ),
    owned("", "v1", "ServiceAccount", "serviceaccounts", MANAGE),
    owned("rbac.authorization.k8s.io", "v1", "Role", "roles", MANAGE),
    owned(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        MANAGE,
    ),
    // Pods: read for roles and readiness, deleted for rolling restarts, exec for SQL and
    // Patroni switchover requests.
    KindSpec {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        watch: Watch::Owned,
        verbs: &["get", "list", "watch", "patch", "delete"],
        subresources: &[("exec", &["create", "get"])],
    },
    // Events about clusters, backups and restores (kube's Recorder writes events.k8s.io/v1).
    KindSpec {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        watch: Watch::No,
        verbs: &["create", "patch"],
        subresources: &[],
    },
    // Leader election.
    KindSpec {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        watch: Watch::No,
        verbs: &["get", "create", "update"],
        subresources: &[],
    },
];

const fn owned(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    verbs: &'static [&'static str],
) -> KindSpec {
    KindSpec {
        group,
        version,
        kind,
        plural,
        watch: Watch::Owned,
        verbs,
        subresources: &[],
    }
}

/// A kind or verb the operator wants but has not declared in [`KINDS`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "tusk does not manage {kind} ({api_version}) with verb {verb}; add it to operator/src/kinds.rs KINDS and to deploy/rbac.yaml"
)]
pub struct Undeclared {
    pub api_version: String,
    pub kind: String,
    pub verb: String,
}

impl KindSpec {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    pub fn allows(&self, subresource: Option<&str>, verb: &str) -> bool {
        match subresource {
            None => self.verbs.contains(&verb),
            Some(sub) => self
                .subresources
                .iter()
                .any(|(s, verbs)| *s == sub && verbs.contains(&verb)),
        }
    }
}

/// The declared spec for `(apiVersion, kind)` if `verb` (on `subresource`) is declared for it.
pub fn require(
    api_version: &str,
    kind: &str,
    subresource: Option<&str>,
    verb: &str,
) -> Result<&'static KindSpec, Undeclared> {
    KINDS
        .iter()
        .find(|k| k.kind == kind && k.api_version() == api_version)
        .filter(|k| k.allows(subresource, verb))
        .ok_or_else(|| Undeclared {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            verb: match subresource {
                Some(s) => format!("{verb} on {s}"),
                None => verb.to_string(),
            },
        })
}

/// Same as [`require`] for a typed k8s-openapi resource.
pub fn require_typed<K: kube::Resource<DynamicType = ()>>(
    verb: &str,
) -> Result<&'static KindSpec, Undeclared> {
    require(&K::api_version(&()), &K::kind(&()), None, verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_respect_declared_verbs() {
        assert!(require("apps/v1", "StatefulSet", None, "patch").is_ok());
        assert!(require("v1", "Pod", None, "create").is_err());
        assert!(require("v1", "Pod", Some("exec"), "create").is_ok());
        let err = require("v1", "Node", None, "get").unwrap_err();
        assert!(err.to_string().contains("Node"), "{err}");
    }

    #[test]
    fn kinds_are_unique_and_api_resources_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KINDS {
            assert!(seen.insert((k.api_version(), k.kind)), "{} twice", k.kind);
            let ar = k.api_resource();
            assert_eq!(ar.api_version, k.api_version());
            assert_eq!(ar.plural, k.plural);
            if k.watch != Watch::No {
                assert!(
                    k.allows(None, "list") && k.allows(None, "watch"),
                    "{}",
                    k.kind
                );
            }
        }
    }
}
