//! `PerconaPGRestore` (`pgv2.percona.com/v2`, short name `pg-restore`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::null_as_default;

use super::common::ContainerOptions;

/// A request to restore a PerconaPGCluster in place.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pgv2.percona.com",
    version = "v2",
    kind = "PerconaPGRestore",
    plural = "perconapgrestores",
    singular = "perconapgrestore",
    shortname = "pg-restore",
    namespaced,
    status = "PerconaPGRestoreStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "PerconaPGRestore is the CRD that defines a Percona PostgreSQL Restore",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.pgCluster"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Completed","type":"date","jsonPath":".status.completed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "either repoName or volumeSnapshotBackupName must be set",
    "rule": "((has(self.repoName) && self.repoName != \"\") || (has(self.volumeSnapshotBackupName) && self.volumeSnapshotBackupName != \"\"))"
}]))]
pub struct PerconaPGRestoreSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_options: Option<ContainerOptions>,
    /// Options passed to `pgbackrest restore` (e.g. `--type=time`, `--target=...`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    /// The PerconaPGCluster to restore (immutable).
    #[schemars(extend("x-kubernetes-validations" = [{"message": "pgCluster is an immutable field", "rule": "self == oldSelf"}]))]
    pub pg_cluster: String,
    /// Repository holding the backups (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^repo[1-4]"))]
    #[schemars(extend("x-kubernetes-validations" = [{"message": "repoName is an immutable field", "rule": "self == oldSelf"}]))]
    pub repo_name: Option<String>,
    /// Backup to restore from volume snapshots (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"message": "volumeSnapshotBackupName is an immutable field", "rule": "self == oldSelf"}]))]
    pub volume_snapshot_backup_name: Option<String>,
}

/// `status.state` of a restore.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum RestoreState {
    Starting,
    Running,
    Succeeded,
    Failed,
}

impl RestoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreState::Starting => "Starting",
            RestoreState::Running => "Running",
            RestoreState::Succeeded => "Succeeded",
            RestoreState::Failed => "Failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, RestoreState::Succeeded | RestoreState::Failed)
    }
}

/// Observed state of a restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PerconaPGRestoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Time>,
    /// tusk's addition: `PGBackRestoreProgressing` (Crunchy's condition name) says where the
    /// restore is (reason) and what it waits for (message); False once it finished.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    /// tusk's addition, as on a PerconaPGBackup: why the restore failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "super::common::lenient_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<RestoreState>,
}
