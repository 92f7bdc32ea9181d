//! Backups, restores and schedules on pgBackRest, as pure level-based decisions.
//!
//! Everything is derived from the API objects in [`Observed`] and the time in [`Env`]: no
//! memory between reconciles, no timers. Every state machine here is
//!
//! - **resumable**: each step is recorded in an API object (a PerconaPGBackup/Restore status,
//!   a Job with a deterministic name) before the next one depends on it, so an operator crash
//!   after any action is finished by the next reconcile;
//! - **cancellable**: deleting a PerconaPGBackup or PerconaPGRestore deletes its Jobs (our
//!   finalizer holds the object until then);
//! - **bounded in time**: every Job has `activeDeadlineSeconds`, and the core fails the object
//!   itself once that deadline (plus a grace period) passed, even if the Job never reports.
//!
//! One at a time: the cluster's backup "lock" is held by the PerconaPGBackup in state Starting
//! or Running (or any unfinished backup Job of the cluster). A waiting backup starts only when
//! there is no holder and it is the oldest waiting one (creationTimestamp, then name), so two
//! reconciles — even on stale reads — pick the same one and apply the same deterministic Job.
//! This replaces upstream's coordination Lease: the Lease would be a second record of what
//! the backup objects already say, and the `Observed` does not carry Leases.
//!
//! Entry points for the rest of the core:
//! - [`plan_backups`]: called by `reconcile` for a live cluster;
//! - [`finalize_backups`]: called on cluster deletion (finalizer `percona.com/delete-backups`);
//! - [`restore_gate`]: the lifecycle asks whether instances must be stopped for a restore.

pub mod backups;
pub mod job;
pub mod restore;
pub mod retention;
pub mod schedule;

use crate::Env;
use crate::api::PerconaPGCluster;
use crate::observed::Observed;
use crate::plan::{Action, ObjectRef, Plan};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

pub use restore::{
    RestoreGate, RestorePhase, enforce_restore_gate, restore_gate, restore_in_progress,
};

/// Label keys of backup and restore objects.
pub mod labels {
    /// Crunchy's label on backup Jobs and PerconaPGBackups: `manual`, `scheduled`, `replica-create`.
    pub const BACKUP: &str = "postgres-operator.crunchydata.com/pgbackrest-backup";
    /// Crunchy's label on restore Jobs.
    pub const RESTORE: &str = "postgres-operator.crunchydata.com/pgbackrest-restore";
    /// On scheduled PerconaPGBackups: `<repo>-<full|diff|incr>`.
    pub const SCHEDULE: &str = "pgv2.percona.com/backup-schedule";
    /// On backup Jobs: the PerconaPGBackup they run for.
    pub const PG_BACKUP: &str = "pgv2.percona.com/pg-backup";
    /// On restore Jobs: the PerconaPGRestore they run for.
    pub const PG_RESTORE: &str = "pgv2.percona.com/pg-restore";
    /// On restore Jobs: the instance whose data volume they write.
    pub const INSTANCE: &str = crate::labels::INSTANCE;
    /// On the stanza-delete Job of `percona.com/delete-backups`.
    pub const STANZA_DELETE: &str = "pgv2.percona.com/pgbackrest-stanza-delete";
}

/// Annotation keys.
pub mod annotations {
    /// On scheduled PerconaPGBackups: the scheduled instant (RFC 3339, UTC).
    pub const SCHEDULED_AT: &str = "pgv2.percona.com/scheduled-at";
    /// On scheduled PerconaPGBackups: the cron expression that made them.
    pub const SCHEDULE: &str = "pgv2.percona.com/backup-schedule";
    /// On a PerconaPGBackup/Restore: overrides the deadline in seconds.
    pub const DEADLINE: &str = "pgv2.percona.com/deadline-seconds";
    /// On a waiting PerconaPGRestore: why it waits (its status has no message field).
    pub const RESTORE_WAITING: &str = "pgv2.percona.com/restore-waiting";
    /// On the bootstrap PerconaPGRestore of a cluster created from a backup (upstream name).
    pub const CLUSTER_BOOTSTRAP_RESTORE: &str = "pgv2.percona.com/cluster-bootstrap-restore";
    /// pgBackRest backup annotation naming the PerconaPGBackup (upstream's `Default()` option).
    pub const PGBACKREST_BACKUP_NAME: &str = "percona.com/backup-name";
}

/// Finalizers tusk puts on (and removes from) backup and restore objects.
pub mod finalizers {
    /// On a PerconaPGBackup (upstream name): its Job is deleted before the object goes.
    pub const DELETE_BACKUP: &str = "internal.percona.com/delete-backup";
    /// On a PerconaPGRestore (upstream name): its Jobs are deleted before the object goes.
    pub const DELETE_RESTORE: &str = "internal.percona.com/delete-restore";
    /// On the cluster (user opt-in): the stanza is deleted from every repo first.
    pub const DELETE_BACKUPS: &str = crate::api::defaults::FINALIZER_DELETE_BACKUPS;
}

/// Default time a backup may run before it is failed.
pub const DEFAULT_BACKUP_DEADLINE: Duration = Duration::from_secs(6 * 3600);
/// Default time a restore Job may run before the restore is failed.
pub const DEFAULT_RESTORE_DEADLINE: Duration = Duration::from_secs(6 * 3600);
/// How long a backup may wait for the cluster to become ready (paused, initializing) before it
/// fails; waiting behind another backup or a restore does not count.
pub const READY_WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How long a restore may wait for the instances to stop.
pub const STOP_WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Slack past a Job's own `activeDeadlineSeconds` before the core gives up on it.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(120);
/// Requeue period while a backup or restore is in progress.
pub const REQUEUE_ACTIVE: Duration = Duration::from_secs(10);
/// pgBackRest stanza tusk uses (as upstream).
pub const STANZA: &str = "db";

/// Backup type, in its three spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackupKind {
    Full,
    Differential,
    Incremental,
}

impl BackupKind {
    /// `--type=` value of pgBackRest, also used in scheduled backup names.
    pub fn pgbackrest_type(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Differential => "diff",
            BackupKind::Incremental => "incr",
        }
    }

    /// `status.backupType` of a PerconaPGBackup.
    pub fn status_type(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Differential => "differential",
            BackupKind::Incremental => "incremental",
        }
    }

    /// Key under `schedules`.
    pub fn schedule_key(self) -> &'static str {
        self.status_type()
    }

    pub fn from_schedule_key(k: &str) -> Option<Self> {
        match k {
            "full" => Some(BackupKind::Full),
            "differential" => Some(BackupKind::Differential),
            "incremental" => Some(BackupKind::Incremental),
            _ => None,
        }
    }

    /// From a pgBackRest `--type` value or a `status.backupType`.
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "full" => Some(BackupKind::Full),
            "diff" | "differential" => Some(BackupKind::Differential),
            "incr" | "incremental" => Some(BackupKind::Incremental),
            _ => None,
        }
    }

    /// The `--type=` among pgBackRest options, if any (last one wins, as in pgBackRest).
    pub fn from_options(options: &[String]) -> Option<Self> {
        options
            .iter()
            .flat_map(|o| o.split_whitespace())
            .filter_map(|o| o.strip_prefix("--type="))
            .filter_map(|v| Self::parse(v.trim_matches('"')))
            .next_back()
    }
}

/// RFC 3339 in UTC, whole seconds (how Kubernetes writes times).
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Percona's `latestRestorableTime` format (`2006-01-02 15:04:05.000000-0700`), in UTC.
pub fn percona_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S.000000+0000").to_string()
}

pub(crate) fn created(m: &ObjectMeta) -> Option<Timestamp> {
    m.creation_timestamp.as_ref().map(|t| t.0)
}

/// Whether `now` is more than `limit` past `since`.
pub(crate) fn elapsed(now: Timestamp, since: Timestamp, limit: Duration) -> bool {
    now.as_second() - since.as_second() > i64::try_from(limit.as_secs()).unwrap_or(i64::MAX)
}

/// A deadline from the object's annotation, else the default.
pub(crate) fn deadline(m: &ObjectMeta, default: Duration) -> Duration {
    crate::observed::annotation(m, annotations::DEADLINE)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(default)
}

/// The repo index pgBackRest uses (`repo2` → 2).
pub fn repo_index(repo: &str) -> Option<u32> {
    repo.strip_prefix("repo")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=4).contains(n))
}

/// What a Job says about its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Not observed.
    Missing,
    /// Created, no pod running yet.
    Pending,
    /// A pod is running.
    Active,
    Succeeded {
        at: Option<Timestamp>,
    },
    Failed {
        reason: String,
        message: String,
    },
}

impl JobOutcome {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobOutcome::Succeeded { .. } | JobOutcome::Failed { .. }
        )
    }
}

/// Classifies a Job from its conditions and counters.
pub fn job_outcome(job: Option<&Job>) -> JobOutcome {
    let Some(job) = job else {
        return JobOutcome::Missing;
    };
    let st = job.status.as_ref();
    let conds = st.and_then(|s| s.conditions.as_ref());
    let cond = |t: &str| {
        conds.and_then(|c| {
            c.iter()
                .find(|c| c.type_ == t && c.status == "True")
                .cloned()
        })
    };
    if let Some(c) = cond("Complete") {
        let at = st
            .and_then(|s| s.completion_time.as_ref())
            .or(c.last_transition_time.as_ref())
            .map(|t| t.0);
        return JobOutcome::Succeeded { at };
    }
    if let Some(c) = cond("Failed").or_else(|| cond("FailureTarget")) {
        return JobOutcome::Failed {
            reason: c.reason.unwrap_or_else(|| "JobFailed".into()),
            message: c.message.unwrap_or_default(),
        };
    }
    if job.metadata.deletion_timestamp.is_some() {
        return JobOutcome::Failed {
            reason: "JobDeleted".into(),
            message: "the Job was deleted before it finished".into(),
        };
    }
    if st.and_then(|s| s.active).unwrap_or(0) > 0 {
        JobOutcome::Active
    } else {
        JobOutcome::Pending
    }
}

/// Reference of a namespaced object of the cluster's namespace.
pub(crate) fn oref(cr: &PerconaPGCluster, api: &str, kind: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api.into(),
        kind: kind.into(),
        namespace: cr.metadata.namespace.clone(),
        name: name.into(),
    }
}

/// Deletes a Job (UID precondition) unless it is already going.
pub(crate) fn delete_job(cr: &PerconaPGCluster, job: &Job, plan: &mut Plan) {
    if job.metadata.deletion_timestamp.is_some() {
        return;
    }
    if let (Some(n), Some(uid)) = (&job.metadata.name, &job.metadata.uid) {
        plan.push(Action::Delete {
            target: oref(cr, "batch/v1", "Job", n),
            uid: uid.clone(),
        });
    }
}

/// A server-side apply that adds `finalizer` to an object's `metadata.finalizers` (a set:
/// the user's entries stay) and sets tusk's annotations. The observed `spec` is sent back
/// unchanged: with real server-side apply tusk then co-owns it with identical values (the
/// specs of backups and restores do not change after creation), and a store that treats
/// everything outside metadata as the applier's keeps it too.
pub(crate) fn meta_apply(
    cr: &PerconaPGCluster,
    kind: &str,
    name: &str,
    finalizer: &str,
    annotations: Option<Value>,
    spec: Value,
) -> Action {
    let mut m = json!({
        "name": name,
        "namespace": cr.metadata.namespace.as_deref().unwrap_or("default"),
        "finalizers": [finalizer],
    });
    if let Some(a) = annotations {
        m["annotations"] = a;
    }
    Action::Apply {
        object: json!({
            "apiVersion": crate::api::defaults::API_VERSION,
            "kind": kind,
            "metadata": m,
            "spec": spec,
        })
        .into(),
    }
}

fn has_finalizer(m: &ObjectMeta, f: &str) -> bool {
    m.finalizers
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| x == f))
}

/// All decisions about backups, schedules, retention and restores of a live cluster
/// (not being deleted, valid, managed). Appends to `plan`; never removes anything from it.
///
/// Call it from `reconcile` after the workload objects and before the cluster status, so that
/// the objects backup Jobs need (ConfigMap, ServiceAccount) are applied first.
pub fn plan_backups(observed: &Observed, env: &Env, plan: &mut Plan) {
    let cr = &observed.cluster;
    if cr.metadata.name.as_deref().unwrap_or("").is_empty()
        || cr.metadata.deletion_timestamp.is_some()
        || cr.is_unmanaged()
    {
        return;
    }
    let mut requeue: Option<Duration> = None;
    let want = |d: Duration, r: &mut Option<Duration>| {
        *r = Some(r.map_or(d, |x| x.min(d)));
    };

    // Schedules create PerconaPGBackups; those are handled by the next reconcile.
    let decision = schedule::decide(cr, &observed.backups, env.now);
    for obj in decision.create {
        plan.push(Action::Apply { object: obj.into() });
    }
    for e in &decision.errors {
        plan.push(Action::Event {
            regarding: crate::reconcile::cluster_ref(observed),
            type_: crate::plan::EventType::Warning,
            reason: "InvalidSchedule".into(),
            message: e.to_string(),
        });
    }
    if let Some(d) = decision.requeue {
        want(d, &mut requeue);
    }

    restore::bootstrap(observed, plan);
    let restores = restore::plan_restores(observed, env, plan);
    let active_backup = backups::plan(
        observed,
        env,
        plan,
        restores.busy.as_deref(),
        restores.pending.clone(),
    );
    if let Some(d) = backups::replica_create(
        observed,
        env,
        plan,
        restores.busy.is_some() || restores.pending.is_some() || active_backup,
    ) {
        want(d, &mut requeue);
    }
    retention::refresh(observed, env, plan);
    retention::plan(observed, plan);
    if restores.active || active_backup {
        want(REQUEUE_ACTIVE, &mut requeue);
    }
    if let Some(after) = requeue {
        plan.push(Action::RequeueAfter { after });
    }
}

/// On cluster deletion with the `percona.com/delete-backups` finalizer: run a Job that deletes
/// the stanza from every repo, then delete the cluster's PerconaPGBackups and drop the
/// finalizer. A failed Job does not keep the cluster forever: a Warning Event says what was
/// left in the repos, and the finalizer goes. Returns true while the finalizer is still held.
pub fn finalize_backups(observed: &Observed, env: &Env, plan: &mut Plan) -> bool {
    let cr = &observed.cluster;
    if cr.metadata.deletion_timestamp.is_none()
        || !has_finalizer(&cr.metadata, finalizers::DELETE_BACKUPS)
    {
        return false;
    }
    let cluster = cr.metadata.name.as_deref().unwrap_or("");
    let ctx = crate::build::Ctx::new(cr);
    let job_name = job::stanza_delete_job_name(cluster);
    let job = crate::observed::by_name(&observed.jobs, &job_name);
    let drop_all = |plan: &mut Plan| {
        for b in &observed.backups {
            if b.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let (Some(n), Some(uid)) = (&b.metadata.name, &b.metadata.uid) {
                plan.push(Action::Delete {
                    target: oref(cr, crate::api::defaults::API_VERSION, "PerconaPGBackup", n),
                    uid: uid.clone(),
                });
            }
        }
        plan.push(Action::RemoveFinalizer {
            target: crate::reconcile::cluster_ref(observed),
            finalizer: finalizers::DELETE_BACKUPS.into(),
        });
    };
    // Nothing to delete from: no repo, or no pod left to run pgBackRest in.
    let runnable = ctx.backups_enabled()
        && observed.pods.iter().any(|p| {
            crate::observed::pod_ready(p)
                && (crate::observed::label(&p.metadata, crate::labels::INSTANCE).is_some()
                    || crate::observed::label(&p.metadata, crate::labels::PGBACKREST_DEDICATED)
                        .is_some())
        });
    let outcome = job_outcome(job);
    let deleted_at = cr
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(env.now);
    let limit = DEFAULT_BACKUP_DEADLINE / 6 + DEADLINE_GRACE;
    match outcome {
        JobOutcome::Succeeded { .. } => {
            drop_all(plan);
            false
        }
        JobOutcome::Failed { reason, message } => {
            plan.push(Action::Event {
                regarding: crate::reconcile::cluster_ref(observed),
                type_: crate::plan::EventType::Warning,
                reason: "StanzaDeleteFailed".into(),
                message: format!(
                    "pgBackRest stanza-delete of cluster {cluster} failed ({reason}: {message}); \
                     its backups stay in the repositories and must be removed by hand"
                ),
            });
            drop_all(plan);
            false
        }
        _ if !runnable || elapsed(env.now, deleted_at, limit) => {
            if !runnable && ctx.backups_enabled() {
                plan.push(Action::Event {
                    regarding: crate::reconcile::cluster_ref(observed),
                    type_: crate::plan::EventType::Warning,
                    reason: "StanzaDeleteSkipped".into(),
                    message: format!(
                        "no running pod of cluster {cluster} can run pgBackRest; its backups stay \
                         in the repositories and must be removed by hand"
                    ),
                });
            }
            drop_all(plan);
            false
        }
        _ => {
            if job.is_none() {
                plan.push(Action::Apply {
                    object: job::stanza_delete_job(&ctx).into(),
                });
            }
            plan.push(Action::RequeueAfter {
                after: REQUEUE_ACTIVE,
            });
            true
        }
    }
}

/// The name of the pgBackRest info ConfigMap the core reads (see [`retention`]).
pub fn info_config_map(cluster: &str) -> String {
    format!("{cluster}-pgbackrest-info")
}
