//! Upstream (Percona v2.9.0) defaults of optional fields.

/// `spec.port`.
pub const POSTGRES_PORT: i32 = 5432;
/// `spec.proxy.pgBouncer.port`.
pub const PGBOUNCER_PORT: i32 = 5432;
/// `spec.proxy.pgBouncer.replicas`.
pub const PGBOUNCER_REPLICAS: i32 = 1;
/// `spec.instances[].replicas`.
pub const INSTANCE_REPLICAS: i32 = 1;
/// `spec.patroni.port`.
pub const PATRONI_PORT: i32 = 8008;
/// `spec.patroni.leaderLeaseDurationSeconds` (Patroni `ttl`).
pub const LEADER_LEASE_DURATION_SECONDS: i32 = 30;
/// `spec.patroni.syncPeriodSeconds` (Patroni `loop_wait`).
pub const SYNC_PERIOD_SECONDS: i32 = 10;
/// `spec.backups.volumeSnapshots.offlineConfig.checkpoint.timeoutSeconds`.
pub const SNAPSHOT_CHECKPOINT_TIMEOUT_SECONDS: i32 = 300;
/// Lowest and highest supported `spec.postgresVersion`.
pub const MIN_POSTGRES_VERSION: i64 = 12;
pub const MAX_POSTGRES_VERSION: i64 = 18;
/// Cluster name + instance-set name may not exceed this many characters.
pub const MAX_CLUSTER_AND_SET_NAME: usize = 46;
/// At most this many pgBackRest repositories (repo1..repo4).
pub const MAX_REPOS: usize = 4;
/// The operator's version; `spec.crVersion` defaults to it.
pub const CR_VERSION: &str = "2.9.0";
/// Finalizers users can opt in to.
pub const FINALIZER_DELETE_PVC: &str = "percona.com/delete-pvc";
pub const FINALIZER_DELETE_SSL: &str = "percona.com/delete-ssl";
pub const FINALIZER_DELETE_BACKUPS: &str = "percona.com/delete-backups";
/// API group and version of the three kinds.
pub const GROUP: &str = "pgv2.percona.com";
pub const VERSION: &str = "v2";
pub const API_VERSION: &str = "pgv2.percona.com/v2";
