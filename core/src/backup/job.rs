//! Builders of the Jobs that run pgBackRest: backup, restore, replica re-initialisation after a
//! restore, and stanza deletion. Pure: inputs are the CR (through [`Ctx`]) and the object the
//! Job runs for.
//!
//! Backup and stanza-delete Jobs follow Crunchy's layout: the Job's pod runs the pgBackRest
//! image's `/opt/crunchy/bin/pgbackrest` wrapper, which execs `pgbackrest $COMMAND
//! $COMMAND_OPTS` in the container `$CONTAINER` of the pod matched by `$SELECTOR` — the
//! dedicated repo host when one exists, else the primary — with the `<cluster>-pgbackrest`
//! ServiceAccount (it may `pods/exec`). Restore Jobs instead mount the data volume of the
//! instance they restore, since the instance is stopped.

use super::{STANZA, annotations, labels as blabels, repo_index};
use crate::api::backup::PerconaPGBackup;
use crate::api::pgbackrest::PgBackRestSpec;
use crate::build::configmaps::pgdata_dir;
use crate::build::{Ctx, list_json, prune, to_json};
use crate::labels;
use crate::naming;
use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Longest name a Job may have (its pods carry it in the `job-name` label).
const MAX_JOB_NAME: usize = 63;

/// A short, stable, name-safe digest of `key`.
pub fn short_hash(key: &str, len: usize) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter()
        .take(len)
        .map(|b| naming::SUFFIX_ALPHABET[usize::from(*b) % naming::SUFFIX_ALPHABET.len()] as char)
        .collect()
}

/// `<prefix>-<middle>-<hash>`, with `prefix` shortened so the name fits a Job.
fn job_name(prefix: &str, middle: &str, key: &str) -> String {
    let hash = short_hash(key, 5);
    let room = MAX_JOB_NAME - middle.len() - hash.len() - 2;
    let p: String = prefix.chars().take(room).collect();
    format!("{}-{middle}-{hash}", p.trim_end_matches('-'))
}

/// Job of a PerconaPGBackup: `<cluster>-backup-<hash of the backup's uid>`. A new object of
/// the same name gets a new Job (upstream K8SPG-462: a reused name could not start).
pub fn backup_job_name(cluster: &str, backup: &PerconaPGBackup) -> String {
    let key = backup
        .metadata
        .uid
        .clone()
        .unwrap_or_else(|| backup.metadata.name.clone().unwrap_or_default());
    job_name(cluster, "backup", &key)
}

/// Job of a PerconaPGRestore writing `instance`'s data volume.
pub fn restore_job_name(cluster: &str, restore: &str, uid: &str, instance: &str) -> String {
    job_name(
        cluster,
        "pgbackrest-restore",
        &format!("{restore}/{uid}/{instance}"),
    )
}

/// The stanza-delete Job of the `percona.com/delete-backups` finalizer.
pub fn stanza_delete_job_name(cluster: &str) -> String {
    job_name(cluster, "stanza-delete", cluster)
}

fn pgbackrest_spec(ctx: &Ctx) -> PgBackRestSpec {
    ctx.cr.spec.backups.pgbackrest.clone().unwrap_or_default()
}

/// Selector and container of the pod pgBackRest runs in for backups.
fn exec_target(ctx: &Ctx) -> (String, &'static str) {
    if ctx.has_repo_host() {
        (
            format!(
                "{}={},{}=,{}=",
                labels::CLUSTER,
                ctx.name,
                labels::PGBACKREST,
                labels::PGBACKREST_DEDICATED
            ),
            "pgbackrest",
        )
    } else {
        (
            format!(
                "{}={},{}={}",
                labels::CLUSTER,
                ctx.name,
                labels::ROLE,
                labels::ROLE_PRIMARY
            ),
            crate::naming::DATABASE_CONTAINER,
        )
    }
}

fn env_json(extra: &[EnvVar], base: Vec<Value>) -> Value {
    let mut v = base;
    v.extend(extra.iter().map(to_json));
    Value::Array(v)
}

/// `COMMAND_OPTS` of a backup: stanza, repo, the user's options, and the annotation that ties
/// the pgBackRest backup to its PerconaPGBackup (upstream adds the same one).
pub fn backup_command_opts(repo: &str, backup_name: &str, options: &[String]) -> String {
    let mut parts = vec![format!("--stanza={STANZA}")];
    if let Some(n) = repo_index(repo) {
        parts.push(format!("--repo={n}"));
    }
    parts.extend(options.iter().map(|o| o.trim().to_string()));
    parts.push(format!(
        "--annotation=\"{}\"=\"{backup_name}\"",
        annotations::PGBACKREST_BACKUP_NAME
    ));
    parts.join(" ")
}

/// Common pod-level settings of backup Jobs (`spec.backups.pgbackrest.jobs`).
fn job_pod_spec(ctx: &Ctx, containers: Value, volumes: Value) -> Value {
    let jobs = pgbackrest_spec(ctx).jobs.unwrap_or_default();
    json!({
        "restartPolicy": jobs.restart_policy.clone().unwrap_or_else(|| "Never".into()),
        "serviceAccountName": naming::pgbackrest_rbac(ctx.name),
        "enableServiceLinks": false,
        "securityContext": jobs.security_context.as_ref().map(to_json).unwrap_or_else(|| json!({"fsGroup": 26, "runAsNonRoot": true})),
        "affinity": jobs.affinity.as_ref().map(to_json),
        "tolerations": list_json(&jobs.tolerations),
        "priorityClassName": jobs.priority_class_name,
        "imagePullSecrets": list_json(&ctx.cr.spec.image_pull_secrets),
        "containers": containers,
        "volumes": volumes,
    })
}

fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "privileged": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
    })
}

fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!([{
        "apiVersion": crate::api::defaults::API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn deadline_secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// The Job of a PerconaPGBackup, owned by it (deleting the backup removes the Job).
pub fn backup_job(ctx: &Ctx, backup: &PerconaPGBackup, deadline: Duration) -> Value {
    let bname = backup.metadata.name.as_deref().unwrap_or("");
    let repo = backup.spec.repo_name.clone().unwrap_or_default();
    let kind = crate::observed::label(&backup.metadata, blabels::BACKUP)
        .filter(|v| *v == "scheduled")
        .unwrap_or("manual");
    let name = backup_job_name(ctx.name, backup);
    let pb = pgbackrest_spec(ctx);
    let jobs = pb.jobs.clone().unwrap_or_default();
    let (selector, container) = exec_target(ctx);
    let l = ctx
        .labels("pgbackrest")
        .with(labels::PGBACKREST, "")
        .with(blabels::BACKUP, kind)
        .with(labels::PGBACKREST_REPO, repo.clone())
        .with(blabels::PG_BACKUP, bname);
    let mut meta = ctx.meta_unowned(&name, l.clone(), None);
    meta["ownerReferences"] = owner(
        "PerconaPGBackup",
        bname,
        backup.metadata.uid.as_deref().unwrap_or(""),
    );
    let opts = backup_command_opts(&repo, bname, &backup.spec.options);
    let user_env: Vec<EnvVar> = backup
        .spec
        .container_options
        .as_ref()
        .map(|c| c.env.clone())
        .unwrap_or_default();
    let env_from: Vec<EnvFromSource> = backup
        .spec
        .container_options
        .as_ref()
        .map(|c| c.env_from.clone())
        .unwrap_or_default();
    let containers = json!([backup_container(
        ctx,
        &opts,
        container,
        &selector,
        &user_env,
        list_json(&env_from),
        jobs.resources.as_ref().map(to_json),
    )]);
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": jobs.backoff_limit.unwrap_or(2),
            "activeDeadlineSeconds": deadline_secs(deadline),
            "ttlSecondsAfterFinished": jobs.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": l.into_value()},
                "spec": job_pod_spec(ctx, containers, Value::Null),
            },
        },
    });
    prune(&mut job);
    job
}

/// Where a restore reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreSource {
    /// The cluster's own repositories (in-place restore): its pgBackRest ConfigMap.
    Own,
    /// Another cluster's repositories (`dataSource.postgresCluster`): that cluster's
    /// pgBackRest ConfigMap, in this namespace.
    Cluster { name: String },
    /// A repository given inline (`dataSource.pgbackrest`): rendered as options, with the
    /// `configuration` projections (credentials) mounted.
    Inline,
}

/// What a restore Job needs besides the CR.
#[derive(Debug, Clone)]
pub struct RestoreJobInput<'a> {
    pub restore: &'a str,
    pub restore_uid: &'a str,
    /// The repository (`repoN`) to restore from.
    pub repo: &'a str,
    pub options: &'a [String],
    pub env: &'a [EnvVar],
    pub env_from: &'a [EnvFromSource],
    /// The instance whose data volume is restored (its StatefulSet has no pod meanwhile).
    pub instance: &'a str,
    pub deadline: Duration,
    pub source: RestoreSource,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// The restore Job: `pgbackrest restore --stanza=db --repo=N --delta <options>` into the
/// instance's data volume, in the PostgreSQL image (it carries pgBackRest, as Crunchy's
/// restore Job uses). `--delta` makes a re-run after a crash cheap and idempotent.
pub fn restore_job(ctx: &Ctx, input: &RestoreJobInput) -> Value {
    let name = restore_job_name(ctx.name, input.restore, input.restore_uid, input.instance);
    let pgdata = pgdata_dir(ctx.pg_version());
    let l = ctx
        .labels("pgbackrest")
        .with(labels::PGBACKREST, "")
        .with(blabels::RESTORE, "")
        .with(blabels::PG_RESTORE, input.restore)
        .with(blabels::INSTANCE, input.instance);
    let mut meta = ctx.meta_unowned(&name, l.clone(), None);
    meta["ownerReferences"] = owner("PerconaPGRestore", input.restore, input.restore_uid);
    let mut cmd = vec![
        "pgbackrest".to_string(),
        "restore".to_string(),
        format!("--pg1-path={pgdata}"),
        "--delta".to_string(),
    ];
    let mut config_volume = json!({"name": "pgbackrest-config", "projected": {"sources": [
        {"configMap": {"name": naming::pgbackrest_config(ctx.name), "items": [{"key": "pgbackrest_instance.conf", "path": "pgbackrest_instance.conf"}]}},
    ]}});
    match &input.source {
        RestoreSource::Own => {
            cmd.push(format!("--stanza={STANZA}"));
        }
        RestoreSource::Cluster { name } => {
            cmd.push(format!("--stanza={STANZA}"));
            config_volume["projected"]["sources"] = json!([
                {"configMap": {"name": naming::pgbackrest_config(name), "items": [{"key": "pgbackrest_instance.conf", "path": "pgbackrest_instance.conf"}]}},
            ]);
        }
        RestoreSource::Inline => {
            let ds = ctx
                .cr
                .spec
                .data_source
                .as_ref()
                .and_then(|d| d.pgbackrest.clone())
                .unwrap_or_default();
            let stanza = if ds.stanza.is_empty() {
                STANZA.to_string()
            } else {
                ds.stanza.clone()
            };
            cmd.push(format!("--stanza={stanza}"));
            let r = &ds.repo;
            let n = &r.name;
            if let Some(s3) = &r.s3 {
                cmd.push(format!("--{n}-type=s3"));
                cmd.push(format!("--{n}-s3-bucket={}", s3.bucket));
                cmd.push(format!("--{n}-s3-endpoint={}", s3.endpoint));
                cmd.push(format!("--{n}-s3-region={}", s3.region));
            } else if let Some(g) = &r.gcs {
                cmd.push(format!("--{n}-type=gcs"));
                cmd.push(format!("--{n}-gcs-bucket={}", g.bucket));
            } else if let Some(a) = &r.azure {
                cmd.push(format!("--{n}-type=azure"));
                cmd.push(format!("--{n}-azure-container={}", a.container));
            }
            for (k, v) in &ds.global {
                cmd.push(format!("--{k}={v}"));
            }
            config_volume["projected"]["sources"] =
                Value::Array(ds.configuration.iter().map(to_json).collect::<Vec<Value>>());
        }
    }
    if let Some(n) = repo_index(input.repo) {
        cmd.push(format!("--repo={n}"));
    }
    // tusk's own arguments are quoted; the user's options are shell words as written (as
    // upstream runs them), so `--target="2027-01-15 08:30:00+00"` reaches pgBackRest unquoted.
    let mut words: Vec<String> = cmd
        .iter()
        .map(|c| {
            if c.contains(['"', ' ', '\'', '$', '`', '\\']) {
                shell_quote(c)
            } else {
                c.clone()
            }
        })
        .collect();
    words.extend(input.options.iter().map(|o| o.trim().to_string()));
    let script = words.join(" ");
    let containers = json!([{
        "name": "pgbackrest-restore",
        "image": ctx.postgres_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["bash", "-ceu", "--", script],
        "env": env_json(input.env, vec![]),
        "envFrom": list_json(input.env_from),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "pgdata", "mountPath": "/pgdata"},
            {"name": "pgbackrest-config", "mountPath": "/etc/pgbackrest/conf.d", "readOnly": true},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }]);
    let volumes = json!([
        {"name": "pgdata", "persistentVolumeClaim": {"claimName": naming::instance_pgdata_pvc(input.instance)}},
        config_volume,
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
    ]);
    let mut pod = job_pod_spec(ctx, containers, volumes);
    pod["serviceAccountName"] = json!(naming::instance_rbac(ctx.name));
    if let Some(r) = ctx
        .cr
        .spec
        .backups
        .pgbackrest
        .as_ref()
        .and_then(|p| p.restore.as_ref())
    {
        if let Some(a) = &r.affinity {
            pod["affinity"] = to_json(a);
        }
        if !r.tolerations.is_empty() {
            pod["tolerations"] = to_json(&r.tolerations);
        }
        if let Some(p) = &r.priority_class_name {
            pod["priorityClassName"] = json!(p);
        }
        if let Some(res) = &r.resources {
            pod["containers"][0]["resources"] = to_json(res);
        }
    }
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            // A restore is retried by the core (a new reconcile re-applies the Job only if it
            // was lost); pgBackRest itself is not re-run in a loop by the Job controller.
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_secs(input.deadline),
            "template": {
                "metadata": {"labels": l.into_value()},
                "spec": pod,
            },
        },
    });
    prune(&mut job);
    job
}

/// After a restore, the other instances' data belongs to the old timeline: this Job empties
/// their data directory so that Patroni re-creates them as replicas of the restored leader.
pub fn reinit_job(ctx: &Ctx, input: &RestoreJobInput) -> Value {
    let name = job_name(
        ctx.name,
        "restore-reinit",
        &format!("{}/{}/{}", input.restore, input.restore_uid, input.instance),
    );
    let pgdata = pgdata_dir(ctx.pg_version());
    let l = ctx
        .labels("pgbackrest")
        .with(blabels::RESTORE, "")
        .with(blabels::PG_RESTORE, input.restore)
        .with(blabels::INSTANCE, input.instance);
    let mut meta = ctx.meta_unowned(&name, l.clone(), None);
    meta["ownerReferences"] = owner("PerconaPGRestore", input.restore, input.restore_uid);
    let containers = json!([{
        "name": "reinit",
        "image": ctx.postgres_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["bash", "-ceu", "--", format!("rm -rf {pgdata} {pgdata}_wal")],
        "securityContext": container_security(),
        "volumeMounts": [{"name": "pgdata", "mountPath": "/pgdata"}],
    }]);
    let volumes = json!([
        {"name": "pgdata", "persistentVolumeClaim": {"claimName": naming::instance_pgdata_pvc(input.instance)}},
    ]);
    let mut pod = job_pod_spec(ctx, containers, volumes);
    pod["serviceAccountName"] = json!(naming::instance_rbac(ctx.name));
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": deadline_secs(input.deadline),
            "template": {"metadata": {"labels": l.into_value()}, "spec": pod},
        },
    });
    prune(&mut job);
    job
}

/// The reinit Job's name (for lookups).
pub fn reinit_job_name(cluster: &str, restore: &str, uid: &str, instance: &str) -> String {
    job_name(
        cluster,
        "restore-reinit",
        &format!("{restore}/{uid}/{instance}"),
    )
}

/// `pgbackrest stop` then `stanza-delete --force` for every repo, owned by the cluster (it is
/// being deleted; the Job goes with it once the finalizer is dropped).
pub fn stanza_delete_job(ctx: &Ctx) -> Value {
    let name = stanza_delete_job_name(ctx.name);
    let (selector, container) = exec_target(ctx);
    let l = ctx
        .labels("pgbackrest")
        .with(labels::PGBACKREST, "")
        .with(blabels::STANZA_DELETE, "");
    let repos: Vec<String> = ctx
        .cr
        .repos()
        .iter()
        .filter_map(|r| repo_index(&r.name))
        .map(|n| n.to_string())
        .collect();
    // The wrapper runs one pgBackRest command; a shell loop runs one per repo.
    let script = format!(
        "export COMMAND=stop COMMAND_OPTS='--stanza={STANZA}'; /opt/crunchy/bin/pgbackrest || true; \
         for n in {}; do COMMAND=stanza-delete COMMAND_OPTS=\"--stanza={STANZA} --repo=$n --force\" /opt/crunchy/bin/pgbackrest; done",
        repos.join(" ")
    );
    let containers = json!([{
        "name": "pgbackrest",
        "image": ctx.pgbackrest_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["bash", "-ceu", "--", script],
        "env": [
            {"name": "COMPARE_HASH", "value": "true"},
            {"name": "CONTAINER", "value": container},
            {"name": "NAMESPACE", "value": ctx.ns},
            {"name": "SELECTOR", "value": selector},
        ],
        "securityContext": container_security(),
    }]);
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": ctx.meta(&name, l.clone(), None),
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": deadline_secs(super::DEFAULT_BACKUP_DEADLINE / 6),
            "template": {"metadata": {"labels": l.into_value()}, "spec": job_pod_spec(ctx, containers, Value::Null)},
        },
    });
    prune(&mut job);
    job
}

/// The container of a backup Job: pgBackRest run through Crunchy's exec wrapper against the
/// primary (`selector`, `container`), `stanza-create` first. It is idempotent (it succeeds
/// when the stanza exists and matches), so the first backup of a new cluster or repo does not
/// depend on another step having created the stanza.
fn backup_container(
    ctx: &Ctx,
    opts: &str,
    container: &str,
    selector: &str,
    user_env: &[EnvVar],
    env_from: Value,
    resources: Option<Value>,
) -> Value {
    let env = env_json(
        user_env,
        vec![
            json!({"name": "COMMAND", "value": "backup"}),
            json!({"name": "COMMAND_OPTS", "value": opts}),
            json!({"name": "COMPARE_HASH", "value": "true"}),
            json!({"name": "CONTAINER", "value": container}),
            json!({"name": "NAMESPACE", "value": ctx.ns}),
            json!({"name": "SELECTOR", "value": selector}),
        ],
    );
    json!({
        "name": "pgbackrest",
        "image": ctx.pgbackrest_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["bash", "-ceu", "--", format!(
            "COMMAND=stanza-create COMMAND_OPTS='--stanza={STANZA}' /opt/crunchy/bin/pgbackrest\nexec /opt/crunchy/bin/pgbackrest"
        )],
        "env": env,
        "envFrom": env_from,
        "resources": resources,
        "securityContext": container_security(),
    })
}

/// The replica-create backup Job of `repo`: `<cluster>-backup-<hash>`.
pub fn replica_create_job_name(cluster: &str, repo: &str) -> String {
    job_name(cluster, "backup", &format!("replica-create/{repo}"))
}

/// The full backup upstream takes right after bootstrap (Crunchy's "replica-create" backup:
/// the base new replicas and point-in-time restores start from). Owned by the cluster, labelled
/// `pgbackrest-backup=replica-create`, no PerconaPGBackup behind it; it stays after it finished
/// (no TTL) as the record that it ran.
pub fn replica_create_job(ctx: &Ctx, repo: &str, deadline: Duration) -> Value {
    let name = replica_create_job_name(ctx.name, repo);
    let (selector, container) = exec_target(ctx);
    let pb = pgbackrest_spec(ctx);
    let jobs = pb.jobs.clone().unwrap_or_default();
    let l = ctx
        .labels("pgbackrest")
        .with(labels::PGBACKREST, "")
        .with(blabels::BACKUP, "replica-create")
        .with(labels::PGBACKREST_REPO, repo.to_string());
    let meta = ctx.meta(&name, l.clone(), None);
    let mut opts = vec![format!("--stanza={STANZA}")];
    if let Some(n) = repo_index(repo) {
        opts.push(format!("--repo={n}"));
    }
    opts.push("--type=full".into());
    let containers = json!([backup_container(
        ctx,
        &opts.join(" "),
        container,
        &selector,
        &[],
        Value::Null,
        jobs.resources.as_ref().map(to_json),
    )]);
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": jobs.backoff_limit.unwrap_or(2),
            "activeDeadlineSeconds": deadline_secs(deadline),
            "template": {
                "metadata": {"labels": l.into_value()},
                "spec": job_pod_spec(ctx, containers, Value::Null),
            },
        },
    });
    prune(&mut job);
    job
}
