//! Label and annotation names shared by the models, the invariants and the timeline. They are
//! the Crunchy/Percona names users know (research/percona.md §2.4).

pub const CLUSTER: &str = "postgres-operator.crunchydata.com/cluster";
pub const INSTANCE_SET: &str = "postgres-operator.crunchydata.com/instance-set";
pub const INSTANCE: &str = "postgres-operator.crunchydata.com/instance";
pub const DATA: &str = "postgres-operator.crunchydata.com/data";
pub const ROLE: &str = "postgres-operator.crunchydata.com/role";
pub const PATRONI: &str = "postgres-operator.crunchydata.com/patroni";
pub const BACKUP: &str = "postgres-operator.crunchydata.com/pgbackrest-backup";
/// Patroni 3.x role values (Percona also accepts `primary` from Patroni 4).
pub const ROLE_PRIMARY: &str = "master";
pub const ROLE_REPLICA: &str = "replica";
pub const ROLE_PGBOUNCER: &str = "pgbouncer";
pub const DELETE_PVC: &str = "percona.com/delete-pvc";
/// The finalizer the API server's StorageObjectInUseProtection admission puts on every PVC; the
/// pvc-protection controller removes it once no scheduled pod uses the claim.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

pub const CR_API: &str = "pgv2.percona.com/v2";
pub const CR_KIND: &str = "PerconaPGCluster";

/// True for a role label value that means "the primary".
pub fn is_primary_role(v: &str) -> bool {
    v == "master" || v == "primary"
}
