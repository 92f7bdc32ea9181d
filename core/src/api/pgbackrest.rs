//! pgBackRest configuration: repositories, schedules, the repo host, backup and restore Jobs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapProjection, Container, EnvFromSource, EnvVar, PersistentVolumeClaimSpec,
    PodSecurityContext, ResourceRequirements, SecretProjection, Toleration,
    TopologySpreadConstraint, Volume, VolumeProjection,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::null_as_default;

use super::common::{InitContainerSpec, Metadata, SidecarPvc, SidecarResources};

/// `spec.backups`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "At least one repository must be configured when backups are enabled",
    "rule": "(has(self.enabled) && self.enabled == false) || (has(self.pgbackrest.repos) && size(self.pgbackrest.repos) > 0)"
}]))]
pub struct Backups {
    /// Whether backups are configured at all; unset means enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// pgBackRest archive configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<PgBackRestSpec>,
    /// Track the latest restorable time in backup status (defaults to true when backups are enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_latest_restorable_time: Option<bool>,
    /// Volume snapshot based backups (alpha upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshots: Option<VolumeSnapshots>,
}

impl Backups {
    /// Backups are enabled unless `enabled: false` is set explicitly.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// The configured repositories (empty when pgBackRest is not configured).
    pub fn repos(&self) -> &[PgBackRestRepo] {
        self.pgbackrest
            .as_ref()
            .map(|p| p.repos.as_slice())
            .unwrap_or(&[])
    }
}

/// `spec.backups.volumeSnapshots`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "className is required",
    "rule": "has(self.className) && self.className != \"\""
}]))]
pub struct VolumeSnapshots {
    /// VolumeSnapshotClass to use (required when volume snapshots are configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Snapshot mode; only `offline` exists (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "offline"))]
    pub mode: Option<VolumeSnapshotMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_config: Option<OfflineConfig>,
    /// Cron schedule of snapshot backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 6))]
    pub schedule: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VolumeSnapshotMode {
    #[default]
    Offline,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointConfig {
    /// Request a checkpoint before the snapshot (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// Checkpoint timeout in seconds (default 300, minimum 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30))]
    #[schemars(extend("default" = 300))]
    pub timeout_seconds: Option<i32>,
}

/// `spec.backups.pgbackrest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestSpec {
    /// Projected volumes with extra pgBackRest configuration, mounted under /etc/pgbackrest/conf.d.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub configuration: Vec<VolumeProjection>,
    /// Resources of the operator's pgBackRest sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<PgBackRestContainers>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<EnvVar>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env_from: Vec<EnvFromSource>,
    /// Settings for the `[global]` section of pgbackrest.conf (e.g. `repo1-retention-full`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub global: BTreeMap<String, String>,
    /// pgBackRest image for the repo host and backup Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_container: Option<InitContainerSpec>,
    /// Settings of the backup Jobs (manual, scheduled and replica-create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<BackupJobs>,
    /// Template for on-demand backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<PgBackRestManualBackup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Dedicated repository host, used when a volume repository exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_host: Option<PgBackRestRepoHost>,
    /// Repositories (repo1..repo4).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub repos: Vec<PgBackRestRepo>,
    /// In-place restore settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<PgBackRestRestore>,
    /// Deprecated name of `containers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<PgBackRestContainers>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestContainers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<SidecarResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest_config: Option<SidecarResources>,
}

/// `spec.backups.pgbackrest.jobs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupJobs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Pod restart policy of backup Jobs (`OnFailure` or `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Toleration>,
    /// Seconds a finished Job is kept (minimum 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60))]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// `spec.backups.pgbackrest.manual`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestManualBackup {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<EnvVar>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env_from: Vec<EnvFromSource>,
    /// Seconds the backup pod waits before it starts the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i64>,
    /// Options passed to `pgbackrest backup`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    /// Repository to back up to (repo1..repo4).
    #[schemars(regex(pattern = r"^repo[1-4]"))]
    pub repo_name: String,
}

/// `spec.backups.pgbackrest.repoHost`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestRepoHost {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(
        default,
        rename = "sidecarPVCs",
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sidecar_pvcs: Vec<SidecarPvc>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sidecar_volumes: Vec<Volume>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sidecars: Vec<Container>,
    /// Deprecated: repo hosts use mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_config_map: Option<ConfigMapProjection>,
    /// Deprecated: repo hosts use mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_secret: Option<SecretProjection>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Toleration>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
}

/// One pgBackRest repository. Exactly one of `volume`, `s3`, `gcs`, `azure` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestRepo {
    /// Repository name, repo1..repo4.
    #[schemars(regex(pattern = r"^repo[1-4]"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<RepoAzure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<RepoGcs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<RepoS3>,
    /// Cron schedules of full, differential and incremental backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedules: Option<BackupSchedules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<RepoVolume>,
}

/// The storage kind of a repository, as pgBackRest and the backup status name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoStorage {
    Volume,
    S3,
    Gcs,
    Azure,
}

impl RepoStorage {
    /// Name used in `status.storageType` of a PerconaPGBackup.
    pub fn storage_type(self) -> &'static str {
        match self {
            RepoStorage::Volume => "filesystem",
            RepoStorage::S3 => "s3",
            RepoStorage::Gcs => "gcs",
            RepoStorage::Azure => "azure",
        }
    }
}

impl PgBackRestRepo {
    /// Which storage kinds are configured (more than one is invalid).
    pub fn storages(&self) -> Vec<RepoStorage> {
        let mut v = Vec::new();
        if self.volume.is_some() {
            v.push(RepoStorage::Volume);
        }
        if self.s3.is_some() {
            v.push(RepoStorage::S3);
        }
        if self.gcs.is_some() {
            v.push(RepoStorage::Gcs);
        }
        if self.azure.is_some() {
            v.push(RepoStorage::Azure);
        }
        v
    }

    /// The single configured storage kind, if exactly one is set.
    pub fn storage(&self) -> Option<RepoStorage> {
        match self.storages().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoAzure {
    /// Azure container of the repository.
    pub container: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoGcs {
    /// GCS bucket of the repository.
    pub bucket: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoS3 {
    /// S3 bucket of the repository.
    pub bucket: String,
    /// S3 endpoint matching the region.
    pub endpoint: String,
    /// Region of the bucket.
    pub region: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoVolume {
    /// PersistentVolumeClaim spec of the repository volume.
    pub volume_claim_spec: PersistentVolumeClaimSpec,
}

/// Standard 5-field cron schedules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSchedules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 6))]
    pub differential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 6))]
    pub full: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 6))]
    pub incremental: Option<String>,
}

impl BackupSchedules {
    /// `(type, schedule)` pairs in a fixed order: full, differential, incremental.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("full", self.full.as_deref()),
            ("differential", self.differential.as_deref()),
            ("incremental", self.incremental.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }
}

/// `spec.backups.pgbackrest.restore`: the in-place restore template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestRestore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_namespace: Option<String>,
    /// Whether in-place restores are enabled (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<EnvVar>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env_from: Vec<EnvFromSource>,
    /// Options passed to `pgbackrest restore`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Repository holding the backups to restore from.
    #[schemars(regex(pattern = r"^repo[1-4]"))]
    pub repo_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Toleration>,
}
