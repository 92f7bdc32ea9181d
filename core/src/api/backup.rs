//! `PerconaPGBackup` (`pgv2.percona.com/v2`, short name `pg-backup`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::null_as_default;

use super::common::ContainerOptions;
use super::pgbackrest::PgBackRestRepo;

/// A request for one backup of a PerconaPGCluster.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pgv2.percona.com",
    version = "v2",
    kind = "PerconaPGBackup",
    plural = "perconapgbackups",
    singular = "perconapgbackup",
    shortname = "pg-backup",
    namespaced,
    status = "PerconaPGBackupStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "PerconaPGBackup is the CRD that defines a Percona PostgreSQL Backup",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.pgCluster"}"#,
    printcolumn = r#"{"name":"Repo","type":"string","jsonPath":".spec.repoName"}"#,
    printcolumn = r#"{"name":"Destination","type":"string","jsonPath":".status.destination"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".status.backupType"}"#,
    printcolumn = r#"{"name":"Completed","type":"date","jsonPath":".status.completed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "repoName is required when method is 'pgbackrest'",
    "rule": "self.method == \"volumeSnapshot\" || has(self.repoName)"
}]))]
pub struct PerconaPGBackupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_options: Option<ContainerOptions>,
    /// Backup method (default pgbackrest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<BackupMethod>,
    /// Options passed to `pgbackrest backup` (e.g. `--type=full`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    /// The PerconaPGCluster to back up.
    pub pg_cluster: String,
    /// Repository to back up to; required for the pgbackrest method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^repo[1-4]"))]
    pub repo_name: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackupMethod {
    #[default]
    Pgbackrest,
    VolumeSnapshot,
}

impl PerconaPGBackupSpec {
    pub fn method(&self) -> BackupMethod {
        self.method.unwrap_or_default()
    }
}

/// `status.state` of a backup.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum BackupState {
    Starting,
    Running,
    Succeeded,
    Failed,
}

impl BackupState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupState::Starting => "Starting",
            BackupState::Running => "Running",
            BackupState::Succeeded => "Succeeded",
            BackupState::Failed => "Failed",
        }
    }

    /// Succeeded and Failed are final.
    pub fn is_finished(self) -> bool {
        matches!(self, BackupState::Succeeded | BackupState::Failed)
    }
}

/// Observed state of a backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PerconaPGBackupStatus {
    /// pgBackRest label of the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// full, differential, incremental or snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Time>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr_version: Option<String>,
    /// Where the backup went, e.g. `s3://bucket/path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Why the backup failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Format `2006-01-02 15:04:05.000000-0700`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_restorable_time: Option<String>,
    /// The repository as it was when the backup ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<PgBackRestRepo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotStatus>,
    #[serde(
        default,
        deserialize_with = "super::common::lenient_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<BackupState>,
    /// filesystem, s3, gcs or azure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_volume_snapshot_ref: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tablespace_volume_snapshot_refs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_volume_snapshot_ref: Option<String>,
}
