//! Validation of the three kinds beyond what the CRD schema enforces.
//!
//! Every rule reports a [`FieldError`] with the path of the offending field and a message that
//! says what is wrong and what is allowed. Validation never panics, whatever the input.
//!
//! Rules for PerconaPGCluster (upstream = Percona v2.9.0 CRD/CEL or Go `Validate()`):
//! - `metadata.name` is a DNS-1035 label of at most 63 characters (it prefixes Service names).
//! - `spec.postgresVersion` is 12..=18 (upstream CRD bounds).
//! - `spec.instances` has at least one set; set names match upstream's pattern
//!   (lowercase letters, digits, '-'; not starting or ending with '-'), may be empty only when
//!   there is a single set, are unique, and cluster name + set name is at most 46 characters
//!   (upstream: the StatefulSet and pod names derived from them must fit 63 characters).
//! - `replicas` of an instance set is at least 1 (upstream minimum); pgBouncer replicas is at
//!   least 0. `minAvailable` is a non-negative integer or a percentage.
//! - Ports (`spec.port`, `patroni.port`, pgBouncer and standby ports) are 1024..=65535.
//! - `patroni.leaderLeaseDurationSeconds` >= 3, `syncPeriodSeconds` >= 1 and below the lease
//!   duration (upstream's documented constraint). A `Failover` switchover needs a target.
//! - Repositories: named repo1..repo4, unique, at most four, each with exactly one of
//!   `volume`, `s3`, `gcs`, `azure`. Backups that are enabled (the default) need a repository
//!   (upstream CEL). Schedules are standard 5-field cron expressions (or @hourly/@daily/...).
//! - `backups.pgbackrest.manual.repoName`, `restore.repoName` and `standby.repoName` name a
//!   configured repository. `volumeSnapshots` needs `className` (upstream CEL).
//! - Users: names match upstream's pattern (lowercase DNS label, at most 63 characters) and are
//!   unique; database names are 1..=63 bytes without NUL; `options` has no ';' and at most 200
//!   characters; `secretName` is a DNS-1123 subdomain; `grantPublicSchemaAccess` needs
//!   PostgreSQL 15 or later (upstream CEL).
//! - Mutually exclusive or dependent options: `dataSource.postgresCluster` and
//!   `dataSource.pgbackrest` (one source of data); a `dataSource.pgbackrest` repo must be a cloud
//!   repo; an enabled standby needs `repoName` or `host`; `customReplicationTLSSecret` needs
//!   `customTLSSecret` (they must share a CA); `pg_stat_monitor` and `pg_stat_statements` cannot
//!   both be enabled (upstream `Validate()`); an authentication rule is either a raw `hba` line
//!   or `connection` + `method`.
//! - `config.parameters` may not set what the operator owns (upstream CEL): data and config file
//!   paths, listen_addresses, port, ssl, socket directories, archiving and recovery settings,
//!   hot_standby, synchronous_standby_names, primary_conninfo/slot, recovery_min_apply_delay,
//!   cluster_name, logging_collector, log_file_mode, wal_log_hints; `wal_level` may only be set
//!   to `logical` there (upstream CEL), and in `patroni.dynamicConfiguration` it must be
//!   `replica` or `logical` (upstream Go validation).
//! - pgBackRest Jobs: `ttlSecondsAfterFinished` >= 60, `backoffLimit` >= 0, `restartPolicy`
//!   is `OnFailure` or `Never`.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::defaults::{
    MAX_CLUSTER_AND_SET_NAME, MAX_POSTGRES_VERSION, MAX_REPOS, MIN_POSTGRES_VERSION,
};
use crate::api::{
    BackupMethod, PerconaPGBackup, PerconaPGCluster, PerconaPGRestore, PgBackRestRepo,
    ServiceExpose, SwitchoverType,
};

/// One problem in a resource: where it is and what is allowed instead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.instances[0].name`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// A PerconaPGCluster that passed [`validate`]. Only `validate` builds one, so holding it is
/// proof that the spec is acceptable.
#[derive(Clone, Copy, Debug)]
pub struct ValidCluster<'a> {
    cluster: &'a PerconaPGCluster,
}

impl<'a> ValidCluster<'a> {
    pub fn cluster(&self) -> &'a PerconaPGCluster {
        self.cluster
    }
}

impl std::ops::Deref for ValidCluster<'_> {
    type Target = PerconaPGCluster;
    fn deref(&self) -> &PerconaPGCluster {
        self.cluster
    }
}

/// Collects errors while walking a resource.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }
}

/// Checks a PerconaPGCluster; every problem is reported, not just the first.
pub fn validate(cluster: &PerconaPGCluster) -> Result<ValidCluster<'_>, Vec<FieldError>> {
    let mut e = Errors::default();
    let spec = &cluster.spec;
    let name = cluster.metadata.name.as_deref().unwrap_or("");

    if name.is_empty() {
        e.push("metadata.name", "is required");
    } else if let Err(why) = dns1035_label(name) {
        e.push("metadata.name", format!("{name:?} {why}"));
    }

    if !(MIN_POSTGRES_VERSION..=MAX_POSTGRES_VERSION).contains(&spec.postgres_version) {
        e.push(
            "spec.postgresVersion",
            format!(
                "{} is not supported; use a major version from {MIN_POSTGRES_VERSION} to {MAX_POSTGRES_VERSION}",
                spec.postgres_version
            ),
        );
    }
    check_port(&mut e, "spec.port", spec.port);

    instances(&mut e, cluster, name);
    users(&mut e, cluster);
    backups(&mut e, cluster);
    data_source(&mut e, cluster);
    misc(&mut e, cluster);
    quantities(&mut e, cluster);

    if e.0.is_empty() {
        Ok(ValidCluster { cluster })
    } else {
        Err(e.0)
    }
}

/// Resource amounts (`resources.requests/limits`, volume sizes) must be Kubernetes
/// quantities: the upstream CRD rejects anything else, and a StatefulSet or PVC built from one
/// would be refused by the API server on every reconcile.
fn quantities(e: &mut Errors, cluster: &PerconaPGCluster) {
    use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaimSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;
    fn amounts(e: &mut Errors, path: &str, map: Option<&BTreeMap<String, Quantity>>) {
        for (k, q) in map.into_iter().flatten() {
            if !is_quantity(&q.0) {
                e.push(
                    format!("{path}.{k}"),
                    format!(
                        "{:?} is not a quantity; use a number with an optional unit, e.g. 1Gi, 500Mi, 2 or 250m",
                        q.0
                    ),
                );
            }
        }
    }
    fn resources(e: &mut Errors, path: &str, r: Option<&ResourceRequirements>) {
        if let Some(r) = r {
            amounts(e, &format!("{path}.requests"), r.requests.as_ref());
            amounts(e, &format!("{path}.limits"), r.limits.as_ref());
        }
    }
    fn claim(e: &mut Errors, path: &str, c: &PersistentVolumeClaimSpec) {
        if let Some(r) = &c.resources {
            amounts(
                e,
                &format!("{path}.resources.requests"),
                r.requests.as_ref(),
            );
            amounts(e, &format!("{path}.resources.limits"), r.limits.as_ref());
        }
    }
    fn containers(e: &mut Errors, path: &str, list: &[Container]) {
        for (j, c) in list.iter().enumerate() {
            resources(e, &format!("{path}[{j}].resources"), c.resources.as_ref());
        }
    }
    let spec = &cluster.spec;
    for (i, set) in spec.instances.iter().enumerate() {
        let p = format!("spec.instances[{i}]");
        resources(e, &format!("{p}.resources"), set.resources.as_ref());
        claim(
            e,
            &format!("{p}.dataVolumeClaimSpec"),
            &set.data_volume_claim_spec,
        );
        if let Some(w) = &set.wal_volume_claim_spec {
            claim(e, &format!("{p}.walVolumeClaimSpec"), w);
        }
        for (j, t) in set.tablespace_volumes.iter().enumerate() {
            claim(
                e,
                &format!("{p}.tablespaceVolumes[{j}].dataVolumeClaimSpec"),
                &t.data_volume_claim_spec,
            );
        }
        for (j, v) in set.sidecar_pvcs.iter().enumerate() {
            claim(e, &format!("{p}.sidecarPVCs[{j}].spec"), &v.spec);
        }
        containers(e, &format!("{p}.sidecars"), &set.sidecars);
        containers(e, &format!("{p}.initContainers"), &set.init_containers);
    }
    if let Some(proxy) = &spec.proxy {
        let p = "spec.proxy.pgBouncer";
        resources(
            e,
            &format!("{p}.resources"),
            proxy.pg_bouncer.resources.as_ref(),
        );
        containers(e, &format!("{p}.sidecars"), &proxy.pg_bouncer.sidecars);
    }
    if let Some(pmm) = &spec.pmm {
        resources(e, "spec.pmm.resources", pmm.resources.as_ref());
    }
    if let Some(pb) = &spec.backups.pgbackrest {
        let p = "spec.backups.pgbackrest";
        if let Some(h) = &pb.repo_host {
            resources(e, &format!("{p}.repoHost.resources"), h.resources.as_ref());
        }
        if let Some(j) = &pb.jobs {
            resources(e, &format!("{p}.jobs.resources"), j.resources.as_ref());
        }
        for (k, r) in pb.repos.iter().enumerate() {
            if let Some(v) = &r.volume {
                claim(
                    e,
                    &format!("{p}.repos[{k}].volume.volumeClaimSpec"),
                    &v.volume_claim_spec,
                );
            }
        }
    }
}

/// A Kubernetes quantity: an optional sign, a decimal number, then an optional binary suffix
/// (Ki..Ei), decimal suffix (n, u, m, k, M, G, T, P, E) or exponent (e3, E-2).
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = match number.split_once('.') {
        None => !number.is_empty(),
        Some((a, b)) => !(b.contains('.') || a.is_empty() && b.is_empty()),
    };
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        exp => exp
            .strip_prefix(['e', 'E'])
            .map(|x| x.strip_prefix(['+', '-']).unwrap_or(x))
            .is_some_and(|x| {
                let x = x.split_once('.').map_or(x, |(a, _)| a);
                !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit())
            }),
    };
    number_ok && suffix_ok
}

fn instances(e: &mut Errors, cluster: &PerconaPGCluster, cluster_name: &str) {
    let sets = &cluster.spec.instances;
    if sets.is_empty() {
        e.push("spec.instances", "at least one instance set is required");
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, set) in sets.iter().enumerate() {
        let p = format!("spec.instances[{i}]");
        if set.name.is_empty() {
            if sets.len() > 1 {
                e.push(
                    format!("{p}.name"),
                    "is required when there is more than one instance set",
                );
            }
        } else if let Err(why) = dns1123_label(&set.name) {
            e.push(format!("{p}.name"), format!("{:?} {why}", set.name));
        }
        let effective = set.effective_name(i);
        if !seen.insert(effective.clone()) {
            e.push(
                format!("{p}.name"),
                format!(
                    "instance set name {effective:?} is used twice; each set needs a unique name"
                ),
            );
        }
        let total = cluster_name.chars().count() + effective.chars().count();
        if total > MAX_CLUSTER_AND_SET_NAME {
            e.push(
                format!("{p}.name"),
                format!(
                    "cluster name and instance set name are {total} characters together; at most {MAX_CLUSTER_AND_SET_NAME} are allowed"
                ),
            );
        }
        if let Some(r) = set.replicas
            && r < 1
        {
            e.push(
                format!("{p}.replicas"),
                format!("{r} is not allowed; an instance set needs at least 1 replica"),
            );
        }
        check_min_available(e, &format!("{p}.minAvailable"), set.min_available.as_ref());
        let mut ts = BTreeSet::new();
        for (j, t) in set.tablespace_volumes.iter().enumerate() {
            let tp = format!("{p}.tablespaceVolumes[{j}].name");
            if !is_tablespace_name(&t.name) {
                e.push(
                    &tp,
                    format!(
                        "{:?} is not a valid tablespace name; use a lowercase letter followed by lowercase letters or digits",
                        t.name
                    ),
                );
            }
            if !ts.insert(t.name.as_str()) {
                e.push(
                    &tp,
                    format!("tablespace {:?} is listed twice in this set", t.name),
                );
            }
        }
        for (j, pvc) in set.sidecar_pvcs.iter().enumerate() {
            if let Err(why) = dns1123_label(&pvc.name) {
                e.push(
                    format!("{p}.sidecarPVCs[{j}].name"),
                    format!("{:?} {why}", pvc.name),
                );
            }
        }
    }
}

fn users(e: &mut Errors, cluster: &PerconaPGCluster) {
    let mut seen = BTreeSet::new();
    for (i, u) in cluster.spec.users.iter().enumerate() {
        let p = format!("spec.users[{i}]");
        if u.name.is_empty() || u.name.len() > 63 || !is_dns_label_chars(&u.name) {
            e.push(
                format!("{p}.name"),
                format!(
                    "{:?} is not a valid user name; use 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
                    u.name
                ),
            );
        }
        if !seen.insert(u.name.as_str()) {
            e.push(
                format!("{p}.name"),
                format!("user {:?} is listed twice", u.name),
            );
        }
        let mut dbs = BTreeSet::new();
        for (j, db) in u.databases.iter().enumerate() {
            let dp = format!("{p}.databases[{j}]");
            if db.is_empty() || db.len() > 63 || db.contains('\0') {
                e.push(
                    &dp,
                    format!(
                        "{db:?} is not a valid database name; PostgreSQL allows 1 to 63 bytes without NUL characters"
                    ),
                );
            }
            if !dbs.insert(db.as_str()) {
                e.push(&dp, format!("database {db:?} is listed twice"));
            }
        }
        if let Some(opts) = &u.options {
            if opts.contains(';') {
                e.push(
                    format!("{p}.options"),
                    "must not contain ';'; give ALTER ROLE options only",
                );
            }
            if opts.chars().count() > 200 {
                e.push(format!("{p}.options"), "is longer than 200 characters");
            }
            if opts
                .to_ascii_uppercase()
                .split_whitespace()
                .any(|w| w == "PASSWORD")
            {
                e.push(
                    format!("{p}.options"),
                    "must not set PASSWORD; passwords are generated into the user's Secret",
                );
            }
        }
        if let Some(secret) = &u.secret_name
            && let Err(why) = dns1123_subdomain(secret, 63)
        {
            e.push(format!("{p}.secretName"), format!("{secret:?} {why}"));
        }
        if u.grant_public_schema_access == Some(true) && cluster.spec.postgres_version < 15 {
            e.push(
                format!("{p}.grantPublicSchemaAccess"),
                "needs postgresVersion 15 or later",
            );
        }
    }
}

fn backups(e: &mut Errors, cluster: &PerconaPGCluster) {
    let b = &cluster.spec.backups;
    let repos = b.repos();
    let base = "spec.backups.pgbackrest";
    if b.is_enabled() && repos.is_empty() {
        e.push(
            format!("{base}.repos"),
            "at least one repository is required when backups are enabled; add one or set spec.backups.enabled to false",
        );
    }
    check_repos(e, &format!("{base}.repos"), repos);
    if let Some(pg) = &b.pgbackrest {
        if let Some(m) = &pg.manual {
            check_repo_ref(e, &format!("{base}.manual.repoName"), &m.repo_name, repos);
        }
        if let Some(r) = &pg.restore {
            check_repo_ref(e, &format!("{base}.restore.repoName"), &r.repo_name, repos);
        }
        if let Some(j) = &pg.jobs {
            if let Some(t) = j.ttl_seconds_after_finished
                && t < 60
            {
                e.push(
                    format!("{base}.jobs.ttlSecondsAfterFinished"),
                    format!("{t} is below the minimum of 60 seconds"),
                );
            }
            if let Some(bl) = j.backoff_limit
                && bl < 0
            {
                e.push(
                    format!("{base}.jobs.backoffLimit"),
                    format!("{bl} is negative; use 0 or more"),
                );
            }
            if let Some(rp) = &j.restart_policy
                && rp != "OnFailure"
                && rp != "Never"
            {
                e.push(
                    format!("{base}.jobs.restartPolicy"),
                    format!("{rp:?} is not allowed; use OnFailure or Never"),
                );
            }
        }
    }
    if let Some(vs) = &b.volume_snapshots {
        if vs.class_name.as_deref().unwrap_or("").is_empty() {
            e.push(
                "spec.backups.volumeSnapshots.className",
                "is required when volume snapshots are configured",
            );
        }
        if let Some(s) = &vs.schedule {
            check_cron(e, "spec.backups.volumeSnapshots.schedule", s);
        }
        if let Some(t) = vs
            .offline_config
            .as_ref()
            .and_then(|o| o.checkpoint.as_ref())
            .and_then(|c| c.timeout_seconds)
            && t < 30
        {
            e.push(
                "spec.backups.volumeSnapshots.offlineConfig.checkpoint.timeoutSeconds",
                format!("{t} is below the minimum of 30 seconds"),
            );
        }
    }
}

/// Shared by spec.backups and dataSource: names, uniqueness, storage kinds, schedules.
fn check_repos(e: &mut Errors, path: &str, repos: &[PgBackRestRepo]) {
    if repos.len() > MAX_REPOS {
        e.push(
            path,
            format!(
                "{} repositories are configured; at most {MAX_REPOS} (repo1..repo4) are allowed",
                repos.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, r) in repos.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !is_repo_name(&r.name) {
            e.push(
                format!("{p}.name"),
                format!(
                    "{:?} is not a repository name; use repo1, repo2, repo3 or repo4",
                    r.name
                ),
            );
        }
        if !seen.insert(r.name.as_str()) {
            e.push(
                format!("{p}.name"),
                format!("repository {:?} is defined twice", r.name),
            );
        }
        check_repo_storage(e, &p, r);
        if let Some(s) = &r.schedules {
            for (kind, expr) in s.iter() {
                check_cron(e, &format!("{p}.schedules.{kind}"), expr);
            }
        }
    }
}

fn check_repo_storage(e: &mut Errors, p: &str, r: &PgBackRestRepo) {
    match r.storages().len() {
        0 => e.push(
            p,
            "a repository needs exactly one of volume, s3, gcs or azure; none is set",
        ),
        1 => {}
        _ => e.push(
            p,
            "a repository needs exactly one of volume, s3, gcs or azure; several are set",
        ),
    }
    if let Some(s3) = &r.s3 {
        for (k, v) in [
            ("bucket", &s3.bucket),
            ("endpoint", &s3.endpoint),
            ("region", &s3.region),
        ] {
            if v.is_empty() {
                e.push(format!("{p}.s3.{k}"), "must not be empty");
            }
        }
    }
    if let Some(g) = &r.gcs
        && g.bucket.is_empty()
    {
        e.push(format!("{p}.gcs.bucket"), "must not be empty");
    }
    if let Some(a) = &r.azure
        && a.container.is_empty()
    {
        e.push(format!("{p}.azure.container"), "must not be empty");
    }
}

fn check_repo_ref(e: &mut Errors, path: &str, name: &str, repos: &[PgBackRestRepo]) {
    if !is_repo_name(name) {
        e.push(
            path,
            format!("{name:?} is not a repository name; use repo1, repo2, repo3 or repo4"),
        );
    } else if !repos.iter().any(|r| r.name == name) {
        let known: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        e.push(
            path,
            format!(
                "repository {name:?} is not defined in spec.backups.pgbackrest.repos (defined: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        );
    }
}

fn data_source(e: &mut Errors, cluster: &PerconaPGCluster) {
    let Some(ds) = &cluster.spec.data_source else {
        return;
    };
    if ds.postgres_cluster.is_some() && ds.pgbackrest.is_some() {
        e.push(
            "spec.dataSource",
            "postgresCluster and pgbackrest are mutually exclusive; choose one source for the new cluster's data",
        );
    }
    if let Some(pc) = &ds.postgres_cluster {
        if !is_repo_name(&pc.repo_name) {
            e.push(
                "spec.dataSource.postgresCluster.repoName",
                format!(
                    "{:?} is not a repository name; use repo1, repo2, repo3 or repo4",
                    pc.repo_name
                ),
            );
        }
        if let Some(n) = &pc.cluster_name
            && let Err(why) = dns1035_label(n)
        {
            e.push(
                "spec.dataSource.postgresCluster.clusterName",
                format!("{n:?} {why}"),
            );
        }
        check_restore_options(e, "spec.dataSource.postgresCluster.options", &pc.options);
    }
    if let Some(pb) = &ds.pgbackrest {
        let p = "spec.dataSource.pgbackrest";
        if pb.stanza.is_empty() {
            e.push(
                format!("{p}.stanza"),
                "must not be empty; give the name of the existing pgBackRest stanza",
            );
        }
        if !is_repo_name(&pb.repo.name) {
            e.push(
                format!("{p}.repo.name"),
                format!(
                    "{:?} is not a repository name; use repo1, repo2, repo3 or repo4",
                    pb.repo.name
                ),
            );
        }
        if pb.repo.volume.is_some() {
            e.push(
                format!("{p}.repo.volume"),
                "a pgbackrest data source must be a cloud repository (s3, gcs or azure)",
            );
        } else {
            check_repo_storage(e, &format!("{p}.repo"), &pb.repo);
        }
        check_restore_options(e, &format!("{p}.options"), &pb.options);
    }
    if let Some(v) = &ds.volumes
        && v.pg_wal_volume.is_some()
        && v.pg_data_volume.is_none()
    {
        e.push(
            "spec.dataSource.volumes.pgWALVolume",
            "needs pgDataVolume as well",
        );
    }
}

fn misc(e: &mut Errors, cluster: &PerconaPGCluster) {
    let spec = &cluster.spec;

    if let Some(p) = &spec.patroni {
        check_port(e, "spec.patroni.port", p.port);
        if let Some(l) = p.leader_lease_duration_seconds
            && l < 3
        {
            e.push(
                "spec.patroni.leaderLeaseDurationSeconds",
                format!("{l} is below the minimum of 3 seconds"),
            );
        }
        if let Some(s) = p.sync_period_seconds
            && s < 1
        {
            e.push(
                "spec.patroni.syncPeriodSeconds",
                format!("{s} is below the minimum of 1 second"),
            );
        }
        let (lease, sync) = (p.leader_lease_duration_seconds(), p.sync_period_seconds());
        if sync >= 1 && lease >= 3 && sync >= lease {
            e.push(
                "spec.patroni.syncPeriodSeconds",
                format!("{sync} must be less than leaderLeaseDurationSeconds ({lease})"),
            );
        }
        for (i, m) in p.create_replica_methods.iter().enumerate() {
            if m != "basebackup" && m != "pgbackrest" {
                e.push(
                    format!("spec.patroni.createReplicaMethods[{i}]"),
                    format!("{m:?} is not a replica creation method; use basebackup or pgbackrest"),
                );
            }
        }
        if let Some(sw) = &p.switchover
            && sw.type_ == Some(SwitchoverType::Failover)
            && sw.target_instance.as_deref().unwrap_or("").is_empty()
        {
            e.push(
                "spec.patroni.switchover.targetInstance",
                "is required when the switchover type is Failover",
            );
        }
        let wal_level = p
            .dynamic_configuration
            .as_ref()
            .and_then(|d| d.get("postgresql"))
            .and_then(|pg| pg.get("parameters"))
            .and_then(|params| params.get("wal_level"));
        if let Some(w) = wal_level {
            let ok = w
                .as_str()
                .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "replica" | "logical"));
            if !ok {
                e.push(
                    "spec.patroni.dynamicConfiguration.postgresql.parameters.wal_level",
                    format!("{w} is not allowed; use replica or logical"),
                );
            }
        }
    }

    if let Some(c) = &spec.config {
        for (k, v) in &c.parameters {
            if let Some(why) = forbidden_parameter(k, v) {
                e.push(format!("spec.config.parameters.{k}"), why);
            }
        }
    }

    if let Some(px) = &spec.proxy {
        let b = &px.pg_bouncer;
        let p = "spec.proxy.pgBouncer";
        check_port(e, &format!("{p}.port"), b.port);
        if let Some(r) = b.replicas
            && r < 0
        {
            e.push(
                format!("{p}.replicas"),
                format!("{r} is negative; use 0 or more"),
            );
        }
        check_min_available(e, &format!("{p}.minAvailable"), b.min_available.as_ref());
        if let Some(x) = &b.expose {
            check_expose(e, &format!("{p}.expose"), x);
        }
    }
    if let Some(x) = &spec.expose {
        check_expose(e, "spec.expose", x);
    }
    if let Some(x) = &spec.expose_replicas {
        check_expose(e, "spec.exposeReplicas", x);
    }

    if let Some(s) = &spec.standby {
        check_port(e, "spec.standby.port", s.port);
        if s.enabled == Some(true)
            && s.repo_name.as_deref().unwrap_or("").is_empty()
            && s.host.as_deref().unwrap_or("").is_empty()
        {
            e.push("spec.standby", "an enabled standby needs repoName (a repository to follow) or host (a primary to stream from)");
        }
        if let Some(r) = s.repo_name.as_deref().filter(|r| !r.is_empty()) {
            check_repo_ref(e, "spec.standby.repoName", r, spec.backups.repos());
        }
    }

    if let Some(sec) = &spec.secrets
        && sec.custom_replication_tls_secret.is_some()
        && sec.custom_tls_secret.is_none()
    {
        e.push(
            "spec.secrets.customReplicationTLSSecret",
            "needs customTLSSecret too; both certificates must come from the same CA",
        );
    }

    if let Some(b) = spec.extensions.as_ref().and_then(|x| x.builtin.as_ref())
        && b.pg_stat_monitor == Some(true)
        && b.pg_stat_statements == Some(true)
    {
        e.push(
            "spec.extensions.builtin",
            "pg_stat_monitor and pg_stat_statements cannot both be enabled; choose one",
        );
    }

    if let Some(pmm) = &spec.pmm
        && pmm.enabled
    {
        for (k, v) in [
            ("image", &pmm.image),
            ("secret", &pmm.secret),
            ("serverHost", &pmm.server_host),
        ] {
            if v.is_empty() {
                e.push(format!("spec.pmm.{k}"), "is required when PMM is enabled");
            }
        }
    }

    if let Some(a) = &spec.authentication {
        for (i, r) in a.rules.iter().enumerate() {
            let p = format!("spec.authentication.rules[{i}]");
            if r.hba.as_deref().is_some_and(|h| !h.trim().is_empty()) {
                continue;
            }
            match r.connection.as_deref() {
                None | Some("") => e.push(format!("{p}.connection"), "is required unless a raw hba line is given"),
                Some(c) if !matches!(c, "local" | "host" | "hostssl" | "hostnossl" | "hostgssenc" | "hostnogssenc") => e.push(
                    format!("{p}.connection"),
                    format!("{c:?} is not allowed; use local, host, hostssl, hostnossl, hostgssenc or hostnogssenc"),
                ),
                _ => {}
            }
            if r.method.as_deref().unwrap_or("").is_empty() {
                e.push(
                    format!("{p}.method"),
                    "is required unless a raw hba line is given",
                );
            }
        }
    }
}

fn check_expose(e: &mut Errors, path: &str, x: &ServiceExpose) {
    if let Some(np) = x.node_port
        && !(1..=65535).contains(&np)
    {
        e.push(
            format!("{path}.nodePort"),
            format!("{np} is not a port; use 1..65535 (usually 30000..32767)"),
        );
    }
    for (i, cidr) in x.load_balancer_source_ranges.iter().enumerate() {
        if !is_cidr(cidr) {
            e.push(
                format!("{path}.loadBalancerSourceRanges[{i}]"),
                format!("{cidr:?} is not a CIDR such as 10.0.0.0/8"),
            );
        }
    }
}

fn check_port(e: &mut Errors, path: &str, port: Option<i32>) {
    if let Some(p) = port
        && !(1024..=65535).contains(&p)
    {
        e.push(
            path,
            format!("{p} is not allowed; use a port from 1024 to 65535"),
        );
    }
}

fn check_min_available(e: &mut Errors, path: &str, v: Option<&IntOrString>) {
    match v {
        Some(IntOrString::Int(n)) if *n < 0 => e.push(
            path,
            format!("{n} is negative; use a count of 0 or more or a percentage like \"50%\""),
        ),
        Some(IntOrString::String(s)) if !is_percentage(s) => e.push(
            path,
            format!("{s:?} is neither a count nor a percentage; use e.g. 1 or \"50%\""),
        ),
        _ => {}
    }
}

/// Standard 5-field cron (minute hour day-of-month month day-of-week) or an @nickname, as
/// Kubernetes CronJobs and upstream accept.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    memo_cron(0, expr, parse_cron_uncached).map(|c| (*c).clone())
}

/// Parsed cron schedules per thread, keyed by which parser (`kind`, 0 or 1) and the
/// expression. croner's parser costs tens of µs per schedule and every reconcile parses the
/// same few schedules again (validation and the backup planner); parsing is pure, so a memo
/// keeps the result identical. Shared (`Arc`) so that a hit copies nothing: cloning a parsed
/// `Cron` costs as much as a lookup. Bounded: cleared when it grows past a handful of
/// clusters' schedules.
pub(crate) fn memo_cron(
    kind: u8,
    expr: &str,
    parse: fn(&str) -> Result<croner::Cron, String>,
) -> Result<std::sync::Arc<croner::Cron>, String> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Arc;
    type Memo = [HashMap<String, Result<Arc<croner::Cron>, String>>; 2];
    thread_local! {
        static MEMO: RefCell<Memo> = RefCell::new(Default::default());
    }
    const MAX_ENTRIES: usize = 128;
    let k = usize::from(kind.min(1));
    if let Some(hit) = MEMO.with(|m| m.borrow()[k].get(expr).cloned()) {
        return hit;
    }
    let parsed = parse(expr).map(Arc::new);
    MEMO.with(|m| {
        let m = &mut m.borrow_mut()[k];
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(expr.to_string(), parsed.clone());
    });
    parsed
}

fn parse_cron_uncached(expr: &str) -> Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds, Year};
    if expr.trim().is_empty() {
        return Err("is empty".into());
    }
    if expr.len() > 256 {
        return Err("is longer than 256 characters".into());
    }
    let nickname = expr.trim_start().starts_with('@');
    if !nickname && expr.split_whitespace().count() != 5 {
        return Err(format!(
            "{expr:?} has {} fields; use 5 (minute hour day-of-month month day-of-week), e.g. \"0 0 * * 6\"",
            expr.split_whitespace().count()
        ));
    }
    // `@midnight` is the same as `@daily` for the cron parsers Kubernetes and upstream use.
    let expr = if expr.trim().eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        expr
    };
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    // A third-party parser must not take the operator down on odd input.
    match std::panic::catch_unwind(|| parser.parse(expr)) {
        Ok(Ok(cron)) => Ok(cron),
        Ok(Err(err)) => Err(format!(
            "{expr:?} is not a valid cron schedule ({err}); use 5 fields, e.g. \"0 0 * * 6\""
        )),
        Err(_) => Err(format!(
            "{expr:?} is not a valid cron schedule; use 5 fields, e.g. \"0 0 * * 6\""
        )),
    }
}

fn check_cron(e: &mut Errors, path: &str, expr: &str) {
    if let Err(why) = memo_cron(0, expr, parse_cron_uncached) {
        e.push(path, why);
    }
}

/// pgBackRest restore options: `--type` values, and the targets the recovery types need.
fn check_restore_options(e: &mut Errors, path: &str, options: &[String]) {
    let mut ty: Option<String> = None;
    let mut has_target = false;
    for o in options.iter().flat_map(|o| o.split_whitespace()) {
        if let Some(v) = o.strip_prefix("--type=") {
            ty = Some(v.trim_matches(|c| c == '"' || c == '\'').to_owned());
        } else if o.starts_with("--target=") || o == "--target" {
            has_target = true;
        }
    }
    if let Some(t) = ty {
        const TYPES: &[&str] = &[
            "default",
            "immediate",
            "lsn",
            "name",
            "preserve",
            "standby",
            "time",
            "xid",
        ];
        if !TYPES.contains(&t.as_str()) {
            e.push(
                path,
                format!(
                    "--type={t} is not a pgBackRest restore type; use one of {}",
                    TYPES.join(", ")
                ),
            );
        } else if matches!(t.as_str(), "time" | "xid" | "name" | "lsn") && !has_target {
            e.push(
                path,
                format!("--type={t} needs --target=<{t}> to say where recovery stops"),
            );
        } else if let Some(target) = restore_target(options) {
            let why = match t.as_str() {
                "time" if !is_recovery_time(&target) => Some(format!(
                    "--target={target:?} is not a time; write it as \"YYYY-MM-DD HH:MM:SS+TZ\", e.g. --target=\"2026-12-07 14:05:00+00\""
                )),
                "lsn" if !is_lsn(&target) => Some(format!(
                    "--target={target:?} is not a WAL location; write it as PostgreSQL prints one, e.g. --target=0/3000028"
                )),
                "xid" if target.is_empty() || !target.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(format!(
                        "--target={target:?} is not a transaction id; use its number, e.g. --target=1234"
                    ))
                }
                _ => None,
            };
            if let Some(why) = why {
                e.push(path, why);
            }
        }
    }
}

/// The value of `--target=` in restore options, quotes removed; the value may hold spaces
/// inside quotes (`--target="2026-12-07 14:05:00+00"`).
fn restore_target(options: &[String]) -> Option<String> {
    options.iter().find_map(|o| {
        let at = o.find("--target=")?;
        let rest = &o[at + "--target=".len()..];
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or_default(),
            _ => rest.split_whitespace().next().unwrap_or_default(),
        };
        Some(value.to_owned())
    })
}

/// A timestamp PostgreSQL takes as `recovery_target_time` and pgBackRest can pick a backup
/// set for: `YYYY-MM-DD`, then ` ` or `T`, `HH:MM[:SS[.frac]]`, then an optional zone (`Z`,
/// `±HH`, `±HHMM`, `±HH:MM`, or a space and a zone name such as `UTC`).
pub fn is_recovery_time(s: &str) -> bool {
    fn digits(s: &str, n: usize) -> bool {
        s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
    }
    let s = s.trim();
    let (Some(date), Some(rest)) = (s.get(..10), s.get(10..)) else {
        return false;
    };
    let mut d = date.split('-');
    let date_ok = matches!((d.next(), d.next(), d.next(), d.next()),
        (Some(y), Some(m), Some(dd), None) if digits(y, 4) && digits(m, 2) && digits(dd, 2));
    let Some(rest) = rest.strip_prefix([' ', 'T']) else {
        return false;
    };
    if !date_ok {
        return false;
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(end);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let parts: Vec<&str> = hms.split(':').collect();
    let clock_ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| digits(p, 2))
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit());
    let zone_ok = match zone.as_bytes().first() {
        None => true,
        Some(b'Z') => zone.len() == 1,
        Some(b'+' | b'-') => {
            let z = zone[1..].replace(':', "");
            (digits(&z, 2) || digits(&z, 4)) && zone.len() <= 6
        }
        Some(b' ') => {
            let name = &zone[1..];
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-'))
        }
        _ => false,
    };
    clock_ok && zone_ok
}

/// `X/Y` with one to eight hex digits on each side, as `pg_current_wal_lsn()` prints.
fn is_lsn(s: &str) -> bool {
    let hex = |p: &str| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
    s.split_once('/').is_some_and(|(a, b)| hex(a) && hex(b))
}

/// Why `config.parameters.<key>` may not be set, if it may not (upstream CEL rules).
fn forbidden_parameter(key: &str, value: &IntOrString) -> Option<String> {
    let k = key.to_ascii_lowercase();
    let why = match k.as_str() {
        "config_file" | "data_directory" => "cannot change the PGDATA path",
        "external_pid_file" => "cannot change external_pid_file",
        "hba_file" | "ident_file" => "cannot change the authentication file paths",
        "listen_addresses" => "network connectivity is always enabled",
        "port" => "change the port with spec.port instead",
        "wal_log_hints" => "wal_log_hints is always enabled",
        "archive_mode" | "archive_command" | "restore_command" => {
            "archiving is managed by the operator (pgBackRest)"
        }
        "hot_standby" => "hot_standby is always enabled",
        "synchronous_standby_names" => "synchronous replication is configured through Patroni",
        "primary_conninfo" | "primary_slot_name" => "replication is managed by Patroni",
        "recovery_min_apply_delay" => "delayed replication is not supported",
        "cluster_name" => "cluster_name is derived from the cluster's name",
        "logging_collector" => "disabling logging_collector is unsafe",
        "log_file_mode" => "log_file_mode cannot be changed",
        // Upstream allows only "logical" here: "replica" is what the operator already sets.
        "wal_level" => {
            if matches!(value, IntOrString::String(v) if v.eq_ignore_ascii_case("logical")) {
                return None;
            }
            "wal_level must be \"replica\" or higher; only \"logical\" may be set (replica is the default)"
        }
        _ if k.starts_with("unix_socket_") => "domain socket paths cannot be changed",
        // ssl_groups and ssl_ecdh_curve tune TLS without turning it off; upstream allows them.
        _ if k == "ssl"
            || (k.starts_with("ssl_") && k != "ssl_groups" && k != "ssl_ecdh_curve") =>
        {
            "TLS is always enabled and managed by the operator"
        }
        _ if k.starts_with("recovery_target") => "recovery targets belong in a restore's options",
        _ => return None,
    };
    Some(why.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Backups and restores

/// Basic checks of a PerconaPGBackup.
pub fn validate_backup(backup: &PerconaPGBackup) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    let s = &backup.spec;
    if s.pg_cluster.is_empty() {
        e.push(
            "spec.pgCluster",
            "is required; name the PerconaPGCluster to back up",
        );
    }
    match (s.method(), s.repo_name.as_deref()) {
        (BackupMethod::Pgbackrest, None | Some("")) => e.push(
            "spec.repoName",
            "is required when method is pgbackrest; use repo1..repo4",
        ),
        (_, Some(r)) if !r.is_empty() && !is_repo_name(r) => e.push(
            "spec.repoName",
            format!("{r:?} is not a repository name; use repo1, repo2, repo3 or repo4"),
        ),
        _ => {}
    }
    for (i, o) in s.options.iter().enumerate() {
        if let Some(t) = o.trim().strip_prefix("--type=") {
            let t = t.trim_matches(|c| c == '"' || c == '\'');
            if !matches!(t, "full" | "diff" | "incr") {
                e.push(
                    format!("spec.options[{i}]"),
                    format!("--type={t} is not a backup type; use full, diff or incr"),
                );
            }
        }
    }
    if e.0.is_empty() { Ok(()) } else { Err(e.0) }
}

/// A backup against the cluster it names: the repository must exist there.
pub fn validate_backup_for(
    backup: &PerconaPGBackup,
    cluster: &PerconaPGCluster,
) -> Result<(), Vec<FieldError>> {
    validate_backup(backup)?;
    let mut e = Errors::default();
    if backup.spec.method() == BackupMethod::Pgbackrest
        && let Some(r) = backup.spec.repo_name.as_deref()
    {
        check_repo_ref(&mut e, "spec.repoName", r, cluster.repos());
    }
    if e.0.is_empty() { Ok(()) } else { Err(e.0) }
}

/// Basic checks of a PerconaPGRestore.
pub fn validate_restore(restore: &PerconaPGRestore) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    let s = &restore.spec;
    if s.pg_cluster.is_empty() {
        e.push(
            "spec.pgCluster",
            "is required; name the PerconaPGCluster to restore",
        );
    }
    let repo = s.repo_name.as_deref().filter(|r| !r.is_empty());
    let snap = s
        .volume_snapshot_backup_name
        .as_deref()
        .filter(|r| !r.is_empty());
    match (repo, snap) {
        (None, None) => e.push(
            "spec",
            "either repoName or volumeSnapshotBackupName must be set",
        ),
        (Some(r), _) if !is_repo_name(r) => e.push(
            "spec.repoName",
            format!("{r:?} is not a repository name; use repo1, repo2, repo3 or repo4"),
        ),
        _ => {}
    }
    check_restore_options(&mut e, "spec.options", &s.options);
    if e.0.is_empty() { Ok(()) } else { Err(e.0) }
}

// ---------------------------------------------------------------------------------------------
// Reading untyped documents

/// Reads a PerconaPGCluster from a parsed YAML/JSON document, reporting a wrong apiVersion or
/// kind and every type error with the path of the offending field (e.g.
/// `spec.instances[0].replicas: invalid type: string "three", expected i32`).
pub fn parse_cluster(doc: serde_json::Value) -> Result<PerconaPGCluster, Vec<FieldError>> {
    parse_kind(doc, "PerconaPGCluster")
}

/// Reads a PerconaPGBackup; see [`parse_cluster`].
pub fn parse_backup(doc: serde_json::Value) -> Result<PerconaPGBackup, Vec<FieldError>> {
    parse_kind(doc, "PerconaPGBackup")
}

/// Reads a PerconaPGRestore; see [`parse_cluster`].
pub fn parse_restore(doc: serde_json::Value) -> Result<PerconaPGRestore, Vec<FieldError>> {
    parse_kind(doc, "PerconaPGRestore")
}

fn parse_kind<T: serde::de::DeserializeOwned>(
    doc: serde_json::Value,
    kind: &str,
) -> Result<T, Vec<FieldError>> {
    use crate::api::defaults::API_VERSION;
    let mut errs = Vec::new();
    if !doc.is_object() {
        return Err(vec![FieldError::new(
            ".",
            format!("expected a {kind} object"),
        )]);
    }
    match doc.get("apiVersion").and_then(serde_json::Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => errs.push(FieldError::new(
            "apiVersion",
            format!("{other:?} is not served; use {API_VERSION}"),
        )),
        None => errs.push(FieldError::new(
            "apiVersion",
            format!("is required; use {API_VERSION}"),
        )),
    }
    match doc.get("kind").and_then(serde_json::Value::as_str) {
        Some(k) if k == kind => {}
        Some(other) => errs.push(FieldError::new("kind", format!("{other:?} is not {kind}"))),
        None => errs.push(FieldError::new("kind", format!("is required; use {kind}"))),
    }
    let parsed = serde_path_to_error::deserialize::<_, T>(doc).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // "missing field `x`" reads better as "<path>.x: is required".
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split_once('`'))
            .map(|(f, _)| f.to_owned())
        {
            let full = if path == "." {
                field
            } else {
                format!("{path}.{field}")
            };
            FieldError::new(full, "is required")
        } else {
            FieldError::new(path, message)
        }
    });
    match parsed {
        Ok(v) if errs.is_empty() => Ok(v),
        Ok(_) => Err(errs),
        Err(e) => {
            errs.push(e);
            Err(errs)
        }
    }
}

/// Fields of `doc` that the typed value does not carry: unknown (misspelt or from a newer API)
/// or dropped. Empty lists/maps and nulls count as absent; numeric quantities written as
/// numbers match their string form. Meant for warnings, as the API server prunes such fields.
pub fn unknown_fields<T: serde::Serialize>(doc: &serde_json::Value, typed: &T) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Ok(back) = serde_json::to_value(typed) {
        diff_unknown(doc, Some(&back), String::new(), &mut out);
    }
    out
}

fn diff_unknown(
    input: &serde_json::Value,
    output: Option<&serde_json::Value>,
    path: String,
    out: &mut Vec<FieldError>,
) {
    use serde_json::Value;
    match input {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match output.and_then(|o| o.get(k)) {
                    None if !is_empty_value(v) => {
                        out.push(FieldError::new(p, "unknown field; it is ignored"));
                    }
                    child => diff_unknown(v, child, p, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                diff_unknown(
                    v,
                    output.and_then(|o| o.get(i)),
                    format!("{path}[{i}]"),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn is_empty_value(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Name rules

fn is_repo_name(s: &str) -> bool {
    matches!(s, "repo1" | "repo2" | "repo3" | "repo4")
}

fn is_dns_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 label: lowercase alphanumerics and '-', alphanumeric at both ends, at most 63.
fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long; at most 63 are allowed",
            s.chars().count()
        ));
    }
    if !is_dns_label_chars(s) {
        return Err("is not allowed; use lowercase letters, digits and '-', starting and ending with a letter or digit".into());
    }
    Ok(())
}

/// DNS-1035 label: a DNS-1123 label that starts with a letter.
fn dns1035_label(s: &str) -> Result<(), String> {
    dns1123_label(s)?;
    if !s.as_bytes()[0].is_ascii_lowercase() {
        return Err(
            "must start with a lowercase letter; use lowercase letters, digits and '-'".into(),
        );
    }
    Ok(())
}

fn dns1123_subdomain(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("must be 1 to {max} characters long"));
    }
    if !s.split('.').all(is_dns_label_chars) {
        return Err(
            "is not a valid Secret name; use lowercase letters, digits, '-' and '.'".into(),
        );
    }
    Ok(())
}

fn is_tablespace_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn is_percentage(s: &str) -> bool {
    s.strip_suffix('%').is_some_and(|n| {
        !n.is_empty()
            && n.bytes().all(|c| c.is_ascii_digit())
            && n.parse::<u32>().is_ok_and(|v| v <= 100)
    })
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}
