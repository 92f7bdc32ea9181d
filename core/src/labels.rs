//! Label and annotation keys (research/percona.md §2.4), and the label sets of each object family.

use serde_json::{Map, Value};

pub const CLUSTER: &str = "postgres-operator.crunchydata.com/cluster";
pub const INSTANCE_SET: &str = "postgres-operator.crunchydata.com/instance-set";
pub const INSTANCE: &str = "postgres-operator.crunchydata.com/instance";
pub const ROLE: &str = "postgres-operator.crunchydata.com/role";
pub const DATA: &str = "postgres-operator.crunchydata.com/data";
pub const PATRONI: &str = "postgres-operator.crunchydata.com/patroni";
pub const PGBACKREST: &str = "postgres-operator.crunchydata.com/pgbackrest";
pub const PGBACKREST_REPO: &str = "postgres-operator.crunchydata.com/pgbackrest-repo";
pub const PGBACKREST_VOLUME: &str = "postgres-operator.crunchydata.com/pgbackrest-volume";
pub const PGBACKREST_DEDICATED: &str = "postgres-operator.crunchydata.com/pgbackrest-dedicated";
pub const PGBACKREST_CONFIG: &str = "postgres-operator.crunchydata.com/pgbackrest-config";
pub const PGUSER: &str = "postgres-operator.crunchydata.com/pguser";
pub const CLUSTER_CERTIFICATE: &str = "postgres-operator.crunchydata.com/cluster-certificate";

pub const APP_NAME: &str = "app.kubernetes.io/name";
pub const APP_PART_OF: &str = "app.kubernetes.io/part-of";
pub const APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const APP_INSTANCE: &str = "app.kubernetes.io/instance";
pub const APP_COMPONENT: &str = "app.kubernetes.io/component";
pub const PERCONA_VERSION: &str = "pgv2.percona.com/version";

/// Role label values. Patroni ≥ 4 writes `primary`, older versions `master`.
pub const ROLE_PRIMARY: &str = "primary";
pub const ROLE_MASTER: &str = "master";
pub const ROLE_REPLICA: &str = "replica";
pub const ROLE_PGBOUNCER: &str = "pgbouncer";
pub const ROLE_PGDATA: &str = "pgdata";
pub const ROLE_PGWAL: &str = "pgwal";
pub const ROLE_TABLESPACE: &str = "tablespace";
pub const ROLE_PGUSER: &str = "pguser";

pub const DATA_POSTGRES: &str = "postgres";
pub const DATA_PGBACKREST: &str = "pgbackrest";

/// Annotations tusk writes.
pub mod annotations {
    /// On a pod template: hash of the template, so an outdated pod is recognised without
    /// depending on the StatefulSet controller's revision bookkeeping.
    pub const TEMPLATE_HASH: &str = "pgv2.percona.com/template-hash";
    /// On a user Secret: hash of the role state (name, options, databases, verifier) last
    /// applied in PostgreSQL. Written only after the SQL that made it true.
    pub const USER_APPLIED: &str = "pgv2.percona.com/user-applied-hash";
    /// On a password Secret: fingerprint of the (password, verifier) pair tusk computed the
    /// verifier for, so a reconcile notices a changed password or verifier without running
    /// PBKDF2 (see `build::secrets::verifier_fingerprint`).
    pub const VERIFIER_OF: &str = "pgv2.percona.com/verifier-of";
    /// On the cluster: the last `spec.patroni.switchover` request that was carried out.
    pub const SWITCHOVER_DONE: &str = "pgv2.percona.com/switchover-done";
    /// Crunchy's trigger annotation (either prefix is accepted) for `spec.patroni.switchover`.
    /// On an instance StatefulSet: the instance that was primary when the cluster paused; it
    /// starts first on resume.
    pub const STARTUP_INSTANCE: &str = "pgv2.percona.com/startup-instance";
    pub const TRIGGER_SWITCHOVER: &str = "postgres-operator.crunchydata.com/trigger-switchover";
    pub const TRIGGER_SWITCHOVER_PERCONA: &str = "pgv2.percona.com/trigger-switchover";
}

/// Finalizers users put on the PerconaPGCluster.
pub const FINALIZER_DELETE_PVC: &str = "percona.com/delete-pvc";
pub const FINALIZER_DELETE_SSL: &str = "percona.com/delete-ssl";

/// Whether a pod role label value means "primary".
pub fn is_primary_role(v: &str) -> bool {
    v == ROLE_PRIMARY || v == ROLE_MASTER
}

/// A label map builder that keeps insertion simple and output sorted.
#[derive(Debug, Clone, Default)]
pub struct Labels(pub Map<String, Value>);

impl Labels {
    pub fn new() -> Self {
        Self(Map::new())
    }
    pub fn with(mut self, k: &str, v: impl Into<String>) -> Self {
        self.0.insert(k.to_string(), Value::String(v.into()));
        self
    }
    /// Adds user-supplied labels without overriding the ones tusk relies on.
    pub fn extend_user(mut self, user: Option<&Value>) -> Self {
        if let Some(Value::Object(m)) = user {
            for (k, v) in m {
                if let Value::String(_) = v {
                    self.0.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        self
    }
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// The labels every object of the cluster carries.
pub fn cluster(name: &str) -> Labels {
    Labels::new().with(CLUSTER, name)
}
