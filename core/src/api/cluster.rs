//! `PerconaPGCluster` (`pgv2.percona.com/v2`, short name `pg`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvFromSource, EnvVar, LocalObjectReference, PersistentVolumeClaimSpec,
    PodSecurityContext, ResourceRequirements, SecretProjection, SecurityContext, Toleration,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::null_as_default;

use super::common::{
    ImagePullPolicy, InitContainerSpec, Metadata, ServiceExpose, SidecarPvc, SidecarResources,
};
use super::pgbackrest::{Backups, PgBackRestRepo};
use super::schema::preserve_unknown_object;

/// The desired state of a Percona PostgreSQL cluster.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pgv2.percona.com",
    version = "v2",
    kind = "PerconaPGCluster",
    plural = "perconapgclusters",
    singular = "perconapgcluster",
    shortname = "pg",
    namespaced,
    status = "PerconaPGClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "PerconaPGCluster is the CRD that defines a Percona PG Cluster",
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.host"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Postgres","type":"string","jsonPath":".status.postgres.ready"}"#,
    printcolumn = r#"{"name":"PGBouncer","type":"string","jsonPath":".status.pgbouncer.ready"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "PostgresVersion must be >= 15 if grantPublicSchemaAccess exists and is true",
    "rule": "!has(self.users) || self.postgresVersion >= 15 || self.users.all(u, !has(u.grantPublicSchemaAccess) || !u.grantPublicSchemaAccess)"
}]))]
pub struct PerconaPGClusterSpec {
    /// Custom pg_hba.conf rules, placed after the operator's mandatory rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationSpec>,
    /// Create a schema named after each user in each of its databases (default true from 2.6.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_create_user_schema: Option<bool>,
    /// Backup configuration.
    pub backups: Backups,
    /// DNS suffix of cluster Services (e.g. cluster.local).
    #[serde(
        default,
        rename = "clusterServiceDNSSuffix",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_service_dns_suffix: Option<String>,
    /// postgresql.conf parameters and files mounted under /etc/postgres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PostgresConfig>,
    /// Operator version this resource targets; gates behaviour changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr_version: Option<String>,
    /// Where the data of a new cluster comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    /// ConfigMap with SQL run once after the cluster is initialized.
    #[serde(
        default,
        rename = "databaseInitSQL",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_init_sql: Option<DatabaseInitSql>,
    /// Service of the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ServiceExpose>,
    /// Service of the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_replicas: Option<ServiceExpose>,
    /// Built-in and custom PostgreSQL extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<ExtensionsSpec>,
    /// PostgreSQL image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Init container copying helper binaries into every pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_container: Option<InitContainerSpec>,
    /// Instance sets: groups of PostgreSQL pods replicating the same data (at least one).
    #[schemars(length(min = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub instances: Vec<InstanceSet>,
    /// Labels and annotations added to every generated object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Running on OpenShift; unset means auto-detect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openshift: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni: Option<PatroniSpec>,
    /// Stop the cluster: workloads scale to zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<bool>,
    /// PMM monitoring sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmm: Option<PmmSpec>,
    /// PostgreSQL port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    #[schemars(extend("default" = 5432))]
    pub port: Option<i32>,
    /// Major PostgreSQL version of the image (12..=18).
    #[schemars(range(min = 12, max = 18))]
    pub postgres_version: i64,
    /// Connection pooler in front of PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxySpec>,
    /// Custom TLS secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,
    /// Run as a read-only standby of another cluster or archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbySpec>,
    /// Validity durations of certificates issued by cert-manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Make every pg_hba rule hostssl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_only: Option<bool>,
    /// Stop reconciling this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged: Option<bool>,
    /// PostgreSQL users and their databases.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub users: Vec<PostgresUser>,
}

/// `spec.authentication`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSpec {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub rules: Vec<HbaRule>,
}

/// One pg_hba.conf rule: either a raw `hba` line or the structured fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HbaRule {
    /// local, host, hostssl, hostnossl, hostgssenc or hostnogssenc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Databases to match; empty matches all.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub databases: Vec<String>,
    /// A raw pg_hba.conf line; when set the structured fields are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hba: Option<String>,
    /// Authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Options of the authentication method (e.g. ldapserver).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub options: BTreeMap<String, IntOrString>,
    /// Users to match; empty matches all.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub users: Vec<String>,
}

/// `spec.config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresConfig {
    /// Files mounted under /etc/postgres.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<VolumeProjection>,
    /// postgresql.conf parameters.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(extend("x-kubernetes-map-type" = "granular", "maxProperties" = 50))]
    #[schemars(extend("x-kubernetes-validations" = [{"message": "cannot change PGDATA path: config_file, data_directory", "rule": "!has(self.config_file) && !has(self.data_directory)"}, {"message": "cannot change external_pid_file", "rule": "!has(self.external_pid_file)"}, {"message": "cannot change authentication path: hba_file, ident_file", "rule": "!has(self.hba_file) && !has(self.ident_file)"}, {"message": "network connectivity is always enabled: listen_addresses", "rule": "!has(self.listen_addresses)"}, {"message": "change port using .spec.port instead", "rule": "!has(self.port)"}, {"message": "TLS is always enabled", "rule": "!has(self.ssl) && !self.exists(k, k.startsWith(\"ssl_\") && !(k == 'ssl_groups' || k == 'ssl_ecdh_curve'))"}, {"message": "domain socket paths cannot be changed", "rule": "!self.exists(k, k.startsWith(\"unix_socket_\"))"}, {"message": "wal_level must be \"replica\" or higher", "rule": "!has(self.wal_level) || self.wal_level in [\"logical\"]"}, {"message": "wal_log_hints are always enabled", "rule": "!has(self.wal_log_hints)"}, {"rule": "!has(self.archive_mode) && !has(self.archive_command) && !has(self.restore_command)"}, {"rule": "!has(self.recovery_target) && !self.exists(k, k.startsWith(\"recovery_target_\"))"}, {"message": "hot_standby is always enabled", "rule": "!has(self.hot_standby)"}, {"rule": "!has(self.synchronous_standby_names)"}, {"rule": "!has(self.primary_conninfo) && !has(self.primary_slot_name)"}, {"message": "delayed replication is not supported at this time", "rule": "!has(self.recovery_min_apply_delay)"}, {"message": "cluster_name is derived from the PostgresCluster name", "rule": "!has(self.cluster_name)"}, {"message": "disabling logging_collector is unsafe", "rule": "!has(self.logging_collector)"}, {"message": "log_file_mode cannot be changed", "rule": "!has(self.log_file_mode)"}]))]
    pub parameters: BTreeMap<String, IntOrString>,
}

/// `spec.dataSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// Restore from a cloud pgBackRest repository that no cluster owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<PgBackRestDataSource>,
    /// Restore from another cluster's pgBackRest repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_cluster: Option<PostgresClusterDataSource>,
    /// Reuse existing volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<DataSourceVolumes>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestDataSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub configuration: Vec<VolumeProjection>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub global: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// The repository to restore from.
    pub repo: PgBackRestRepo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Existing pgBackRest stanza to restore from.
    pub stanza: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Toleration>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresClusterDataSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Source cluster (defaults to this cluster's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Namespace of the source cluster (defaults to this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_namespace: Option<String>,
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
    /// Repository of the source cluster.
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceVolumes {
    #[serde(
        default,
        rename = "pgBackRestVolume",
        skip_serializing_if = "Option::is_none"
    )]
    pub pg_backrest_volume: Option<DataSourceVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_data_volume: Option<DataSourceVolume>,
    #[serde(
        default,
        rename = "pgWALVolume",
        skip_serializing_if = "Option::is_none"
    )]
    pub pg_wal_volume: Option<DataSourceVolume>,
}

/// An existing PVC (and directory in it) to adopt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceVolume {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Existing directory; when unset no move Job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    pub pvc_name: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Toleration>,
}

/// `spec.databaseInitSQL`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInitSql {
    /// Key of the SQL in the ConfigMap.
    pub key: String,
    /// ConfigMap name.
    pub name: String,
}

/// `spec.extensions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinExtensions>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub custom: Vec<CustomExtension>,
    /// Installer image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<ExtensionsStorage>,
}

/// Built-in extensions. Defaults: pg_audit on, pgvector and pg_repack off; pg_stat_monitor /
/// pg_stat_statements follow the PMM query source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BuiltinExtensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_audit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_repack: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_stat_monitor: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_stat_statements: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgvector: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomExtension {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionsStorageType {
    S3,
    Gcs,
    Azure,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionsStorage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(
        default,
        rename = "disableSSL",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_ssl: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretProjection>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ExtensionsStorageType>,
}

/// One instance set (`spec.instances[]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<InstanceContainers>,
    /// PersistentVolumeClaim of the data directory.
    pub data_volume_claim_spec: PersistentVolumeClaimSpec,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_container: Option<InitContainerSpec>,
    /// Extra init containers of instance pods.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub init_containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// PodDisruptionBudget minAvailable (defaults to 1 when replicas > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Name of the set; may be empty when there is only one set.
    #[serde(default)]
    #[schemars(regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Number of pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    #[schemars(extend("default" = 1))]
    pub replicas: Option<i32>,
    /// Resources of the database container.
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
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tablespace_volumes: Vec<TablespaceVolume>,
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
    /// Extra volume mounts of the database container.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volume_mounts: Vec<VolumeMount>,
    /// Separate PersistentVolumeClaim for the WAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_volume_claim_spec: Option<PersistentVolumeClaimSpec>,
}

impl InstanceSet {
    /// The set's name, or the name upstream gives an unnamed set: its index as two digits
    /// ("00" for the first).
    pub fn effective_name(&self, index: usize) -> String {
        if self.name.is_empty() {
            format!("{index:02}")
        } else {
            self.name.clone()
        }
    }

    /// Desired pods in this set (upstream default 1).
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(super::defaults::INSTANCE_REPLICAS)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceContainers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_cert_copy: Option<SidecarResources>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TablespaceVolume {
    pub data_volume_claim_spec: PersistentVolumeClaimSpec,
    /// Tablespace name, used as its directory name.
    #[schemars(length(min = 1), regex(pattern = r"^[a-z][a-z0-9]*$"))]
    pub name: String,
}

/// `spec.patroni`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniSpec {
    /// Overrides Patroni's create_replica_methods (e.g. pgbackrest, basebackup).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(schema_with = "super::schema::create_replica_methods")]
    pub create_replica_methods: Vec<String>,
    /// Patroni dynamic configuration, merged into the DCS config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub dynamic_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    /// Leader lock TTL in seconds (default 30, minimum 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3))]
    #[schemars(extend("default" = 30))]
    pub leader_lease_duration_seconds: Option<i32>,
    /// Patroni REST API port (default 8008).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    #[schemars(extend("default" = 8008))]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_data_directory_on_diverged_timelines: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<PatroniSwitchover>,
    /// Loop wait in seconds (default 10, minimum 1); must be below the lease duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    #[schemars(extend("default" = 10))]
    pub sync_period_seconds: Option<i32>,
}

impl PatroniSpec {
    pub fn leader_lease_duration_seconds(&self) -> i32 {
        self.leader_lease_duration_seconds
            .unwrap_or(super::defaults::LEADER_LEASE_DURATION_SECONDS)
    }
    pub fn sync_period_seconds(&self) -> i32 {
        self.sync_period_seconds
            .unwrap_or(super::defaults::SYNC_PERIOD_SECONDS)
    }
    pub fn port(&self) -> i32 {
        self.port.unwrap_or(super::defaults::PATRONI_PORT)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SwitchoverType {
    #[default]
    Switchover,
    Failover,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniSwitchover {
    /// Allow switchovers (default false).
    #[serde(default)]
    pub enabled: bool,
    /// Instance to promote; required for Failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_instance: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Switchover"))]
    pub type_: Option<SwitchoverType>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PmmQuerySource {
    Pgstatmonitor,
    #[default]
    Pgstatstatements,
}

/// `spec.pmm`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PmmSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_cluster_name: Option<String>,
    pub enabled: bool,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_params: Option<String>,
    /// Query source (default pgstatstatements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "pgstatstatements"))]
    pub query_source: Option<PmmQuerySource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Secret with the PMM server token/key.
    pub secret: String,
    pub server_host: String,
}

/// `spec.proxy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    pub pg_bouncer: PgBouncerSpec,
}

/// `spec.proxy.pgBouncer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBouncerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PgBouncerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<PgBouncerContainers>,
    /// Frontend TLS certificate (tls.crt, tls.key, ca.crt).
    #[serde(
        default,
        rename = "customTLSSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_tls_secret: Option<SecretProjection>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ServiceExpose>,
    /// Allow superusers to connect through pgBouncer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_superusers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Listen port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    #[schemars(extend("default" = 5432))]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Number of pgBouncer pods (default 1, may be 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    #[schemars(extend("default" = 1))]
    pub replicas: Option<i32>,
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

impl PgBouncerSpec {
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(super::defaults::PGBOUNCER_REPLICAS)
    }
    pub fn port(&self) -> i32 {
        self.port.unwrap_or(super::defaults::PGBOUNCER_PORT)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBouncerConfig {
    /// `[databases]` entries; `*` is the fallback.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub databases: BTreeMap<String, String>,
    /// Files mounted under /etc/pgbouncer.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<VolumeProjection>,
    /// `[pgbouncer]` settings.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub global: BTreeMap<String, String>,
    /// `[users]` settings.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub users: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBouncerContainers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer_config: Option<SidecarResources>,
}

/// `spec.secrets`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSpec {
    /// Replication client certificate.
    #[serde(
        default,
        rename = "customReplicationTLSSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_replication_tls_secret: Option<SecretProjection>,
    /// Root CA certificate and key.
    #[serde(
        default,
        rename = "customRootCATLSSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_root_ca_tls_secret: Option<SecretProjection>,
    /// Server certificate.
    #[serde(
        default,
        rename = "customTLSSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_tls_secret: Option<SecretProjection>,
}

/// `spec.standby`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StandbySpec {
    /// Run read-only, following a repo or host (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
    /// Address of the PostgreSQL server to stream from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// WAL lag above which the standby is reported not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"))]
    pub max_acceptable_lag: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024))]
    pub port: Option<i32>,
    /// Repository to follow for WAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^repo[1-4]"))]
    pub repo_name: Option<String>,
}

/// `spec.tls`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_validity_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_validity_duration: Option<String>,
    #[serde(
        default,
        rename = "pgBackRestCertValidityDuration",
        skip_serializing_if = "Option::is_none"
    )]
    pub pg_backrest_cert_validity_duration: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PasswordType {
    #[default]
    #[serde(rename = "ASCII")]
    Ascii,
    AlphaNumeric,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSpec {
    #[serde(default, rename = "type")]
    pub type_: PasswordType,
}

/// `spec.users[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresUser {
    /// Databases the user may connect to and create objects in.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(schema_with = "super::schema::user_databases")]
    pub databases: Vec<String>,
    /// Grant access to the public schema (PostgreSQL 15 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_public_schema_access: Option<bool>,
    /// Role name: lowercase letters, digits and hyphens.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// ALTER ROLE options except PASSWORD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200), regex(pattern = r"^[^;]*$"))]
    pub options: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSpec>,
    /// Name of the Secret with this user's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub secret_name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Status

/// Observed state of a PerconaPGCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PerconaPGClusterStatus {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    /// Endpoint clients connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub installed_custom_extensions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni: Option<PatroniStatus>,
    /// Deprecated: use patroni.version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<PgBackRestStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer: Option<PgBouncerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyStatus>,
    /// initializing, ready, stopping or paused.
    #[serde(
        default,
        deserialize_with = "super::common::lenient_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<ClusterState>,
}

/// `status.state` of a cluster.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    #[default]
    Initializing,
    Ready,
    Stopping,
    Paused,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Initializing => "initializing",
            ClusterState::Ready => "ready",
            ClusterState::Stopping => "stopping",
            ClusterState::Paused => "paused",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PatroniInnerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatroniInnerStatus {
    /// Switchover request being executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover_timeline: Option<i64>,
    /// PostgreSQL system identifier reported by Patroni.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_backup: Option<PgBackRestJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_host: Option<RepoHostStatus>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub repos: Vec<RepoStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<PgBackRestJobStatus>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scheduled_backups: Vec<ScheduledBackupStatus>,
}

/// Progress of a manual backup or restore Job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBackRestJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    pub finished: bool,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoHostStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<bool>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_create_backup_complete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_options_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza_created: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledBackupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<i32>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PgBouncerStatus {
    pub ready: i32,
    pub size: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresStatus {
    #[serde(default, rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub instances: Vec<InstanceSetStatus>,
    #[serde(default)]
    pub ready: i32,
    #[serde(default)]
    pub size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSetStatus {
    pub name: String,
    pub ready: i32,
    pub size: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StandbyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_last_computed_at: Option<Time>,
}

// ---------------------------------------------------------------------------------------------
// Helpers

impl PerconaPGCluster {
    /// The instance sets, in spec order.
    pub fn instance_sets(&self) -> &[InstanceSet] {
        &self.spec.instances
    }

    /// The cluster's name ("" when metadata.name is missing).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    /// The pgBackRest repositories.
    pub fn repos(&self) -> &[PgBackRestRepo] {
        self.spec.backups.repos()
    }

    /// pgBouncer settings when a proxy is configured.
    pub fn pgbouncer(&self) -> Option<&PgBouncerSpec> {
        self.spec.proxy.as_ref().map(|p| &p.pg_bouncer)
    }

    pub fn is_paused(&self) -> bool {
        self.spec.pause.unwrap_or(false)
    }

    pub fn is_unmanaged(&self) -> bool {
        self.spec.unmanaged.unwrap_or(false)
    }

    pub fn is_standby(&self) -> bool {
        self.spec
            .standby
            .as_ref()
            .and_then(|s| s.enabled)
            .unwrap_or(false)
    }

    /// PostgreSQL port (default 5432).
    pub fn port(&self) -> i32 {
        self.spec.port.unwrap_or(super::defaults::POSTGRES_PORT)
    }

    /// Patroni settings, defaulted when `spec.patroni` is absent.
    pub fn patroni(&self) -> PatroniSpec {
        self.spec.patroni.clone().unwrap_or_default()
    }

    /// `spec.crVersion`, or the operator's own version when unset (as upstream patches in).
    pub fn cr_version(&self) -> &str {
        self.spec
            .cr_version
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or(super::defaults::CR_VERSION)
    }

    /// Backups are on unless `spec.backups.enabled: false`.
    pub fn backups_enabled(&self) -> bool {
        self.spec.backups.is_enabled()
    }

    /// Whether a finalizer (e.g. [`super::defaults::FINALIZER_DELETE_PVC`]) is set.
    pub fn has_finalizer(&self, name: &str) -> bool {
        self.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == name))
    }

    /// Total desired PostgreSQL pods over all instance sets.
    pub fn desired_instances(&self) -> i64 {
        self.spec
            .instances
            .iter()
            .map(|s| i64::from(s.replicas().max(0)))
            .sum()
    }
}
