//! The PerconaPGBackup state machine: `""` → Starting → Running → Succeeded | Failed.
//!
//! | observed | decision |
//! |---|---|
//! | new, cluster paused / not ready | wait: condition `BackupLeaseAcquired=False` with the reason; fail after [`READY_WAIT_LIMIT`] |
//! | new, another backup or a restore holds the cluster | wait (no time limit: that one is bounded itself) |
//! | new, nothing in the way, oldest waiting | apply the Job, state Starting |
//! | Starting/Running, Job active | Running |
//! | Starting, Job not observed | apply it again (same name: idempotent) |
//! | Running, Job gone | Failed (`JobLost`) |
//! | Job Complete / Failed | Succeeded / Failed with the Job's reason |
//! | past the deadline + grace | Failed (`DeadlineExceeded`), Job deleted |
//! | deletionTimestamp | delete the Job, drop our finalizer |

use super::{
    BackupKind, DEADLINE_GRACE, DEFAULT_BACKUP_DEADLINE, JobOutcome, READY_WAIT_LIMIT, created,
    deadline, delete_job, elapsed, finalizers, job, job_outcome, labels as blabels, meta_apply,
    oref, percona_time, retention, rfc3339,
};
use crate::Env;
use crate::api::backup::{BackupMethod, BackupState, PerconaPGBackup};
use crate::api::cluster::ClusterState;
use crate::api::pgbackrest::PgBackRestRepo;
use crate::build::Ctx;
use crate::labels;
use crate::observed::{Observed, by_name, label};
use crate::plan::{Action, EventType, ObjectRef, Plan};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

/// Condition type on a waiting or started backup (upstream's name).
pub const CONDITION: &str = "BackupLeaseAcquired";

fn state(b: &PerconaPGBackup) -> Option<BackupState> {
    b.status.as_ref().and_then(|s| s.state)
}

fn name(b: &PerconaPGBackup) -> &str {
    b.metadata.name.as_deref().unwrap_or("")
}

fn backup_ref(cr: &crate::api::PerconaPGCluster, b: &PerconaPGBackup) -> ObjectRef {
    oref(
        cr,
        crate::api::defaults::API_VERSION,
        "PerconaPGBackup",
        name(b),
    )
}

/// Sort key: oldest first, then by name (deterministic on equal timestamps).
fn order_key(b: &PerconaPGBackup) -> (Option<Timestamp>, String) {
    (created(&b.metadata), name(b).to_string())
}

/// Jobs that run for `backup`: by label, and the one its status names.
fn jobs_of<'a>(obs: &'a Observed, b: &PerconaPGBackup) -> Vec<&'a Job> {
    let n = name(b);
    let named = b.status.as_ref().and_then(|s| s.job_name.as_deref());
    obs.jobs
        .iter()
        .filter(|j| {
            label(&j.metadata, blabels::PG_BACKUP) == Some(n)
                || (named.is_some() && j.metadata.name.as_deref() == named)
        })
        .collect()
}

/// The backup currently holding the cluster: a PerconaPGBackup in Starting/Running, or an
/// unfinished backup Job of the cluster (also one tusk did not make, e.g. replica-create).
pub fn holder(obs: &Observed) -> Option<String> {
    let mut active: Vec<&PerconaPGBackup> = obs
        .backups
        .iter()
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .filter(|b| matches!(state(b), Some(BackupState::Starting | BackupState::Running)))
        .collect();
    active.sort_by_key(|b| order_key(b));
    if let Some(b) = active.first() {
        return Some(name(b).to_string());
    }
    let cluster = obs.cluster.metadata.name.as_deref().unwrap_or("");
    obs.jobs
        .iter()
        .filter(|j| label(&j.metadata, labels::CLUSTER) == Some(cluster))
        .filter(|j| label(&j.metadata, blabels::BACKUP).is_some())
        .filter(|j| !job_outcome(Some(j)).is_finished())
        .map(|j| {
            label(&j.metadata, blabels::PG_BACKUP)
                .map(str::to_string)
                .unwrap_or_else(|| j.metadata.name.clone().unwrap_or_default())
        })
        .next()
}

/// `s3://bucket/path` and friends (volume repos have none).
pub fn destination(cr: &crate::api::PerconaPGCluster, repo: &PgBackRestRepo) -> Option<String> {
    let global = cr
        .spec
        .backups
        .pgbackrest
        .as_ref()
        .map(|p| p.global.clone())
        .unwrap_or_default();
    let path = global
        .get(&format!("{}-path", repo.name))
        .cloned()
        .unwrap_or_else(|| format!("/pgbackrest/{}", repo.name));
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    if let Some(s) = &repo.s3 {
        Some(format!("s3://{}{path}", s.bucket))
    } else if let Some(g) = &repo.gcs {
        Some(format!("gs://{}{path}", g.bucket))
    } else {
        repo.azure
            .as_ref()
            .map(|a| format!("azure://{}{path}", a.container))
    }
}

/// Why a new backup cannot start yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    ClusterPaused,
    ClusterNotReady(String),
    RestoreInProgress(String),
    RestoreQueued(String),
    BackupInProgress(String),
}

impl Wait {
    fn reason(&self) -> &'static str {
        match self {
            Wait::ClusterPaused => "ClusterPaused",
            Wait::ClusterNotReady(_) => "ClusterNotReady",
            Wait::RestoreInProgress(_) => "RestoreInProgress",
            Wait::RestoreQueued(_) => "RestoreQueued",
            Wait::BackupInProgress(_) => "BackupInProgress",
        }
    }

    fn message(&self, cluster: &str) -> String {
        match self {
            Wait::ClusterPaused => format!(
                "waiting: cluster {cluster} is paused (spec.pause); the backup starts after it resumes"
            ),
            Wait::ClusterNotReady(s) => {
                format!("waiting: cluster {cluster} is {s}; the backup starts once it is ready")
            }
            Wait::RestoreInProgress(r) => {
                format!("waiting: restore {r} of cluster {cluster} is in progress")
            }
            Wait::RestoreQueued(r) => {
                format!("waiting: restore {r} of cluster {cluster} was requested first")
            }
            Wait::BackupInProgress(b) => {
                format!("waiting: backup {b} of cluster {cluster} is running (one at a time)")
            }
        }
    }

    /// Waiting on the cluster's readiness is bounded; waiting in the queue is not (what is
    /// ahead is bounded itself).
    fn is_bounded(&self) -> bool {
        matches!(self, Wait::ClusterPaused | Wait::ClusterNotReady(_))
    }
}

fn status_value(b: &PerconaPGBackup) -> Value {
    b.status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({}))
}

/// The condition `CONDITION`, keeping `lastTransitionTime` when status and reason are unchanged.
fn condition(
    b: &PerconaPGBackup,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Value {
    let prev = b.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == CONDITION && c.status == status && c.reason == reason)
    });
    let at = prev
        .map(|c| rfc3339(c.last_transition_time.0))
        .unwrap_or_else(|| rfc3339(now));
    json!({
        "type": CONDITION,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
    })
}

fn set_condition(st: &mut Value, cond: Value) {
    let mut conds: Vec<Value> = st
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.get("type").and_then(Value::as_str) != Some(CONDITION))
        .collect();
    conds.push(cond);
    st["conditions"] = Value::Array(conds);
}

/// Since when the backup has been waiting on `reason` (the condition's transition time).
fn waiting_since(b: &PerconaPGBackup, reason: &str) -> Option<Timestamp> {
    b.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == CONDITION && c.status == "False" && c.reason == reason)
            .map(|c| c.last_transition_time.0)
    })
}

struct Step<'a> {
    obs: &'a Observed,
    ctx: &'a Ctx<'a>,
    env: &'a Env,
    plan: &'a mut Plan,
}

impl Step<'_> {
    fn patch(&mut self, b: &PerconaPGBackup, status: Value) {
        if status != status_value(b) {
            self.plan.push(Action::PatchStatus {
                target: backup_ref(self.ctx.cr, b),
                status,
            });
        }
    }

    fn event(&mut self, b: &PerconaPGBackup, type_: EventType, reason: &str, message: String) {
        self.plan.push(Action::Event {
            regarding: backup_ref(self.ctx.cr, b),
            type_,
            reason: reason.into(),
            message,
        });
    }

    fn fail(&mut self, b: &PerconaPGBackup, reason: &str, message: String) {
        let mut st = status_value(b);
        st["state"] = json!(BackupState::Failed.as_str());
        st["error"] = json!(format!("{reason}: {message}"));
        st["completed"] = json!(rfc3339(self.env.now));
        self.patch(b, st);
        self.event(
            b,
            EventType::Warning,
            "BackupFailed",
            format!("backup {} failed: {reason}: {message}", name(b)),
        );
    }
}

/// Whether the cluster can take a backup now.
fn cluster_wait(cr: &crate::api::PerconaPGCluster) -> Option<Wait> {
    if cr.is_paused() {
        return Some(Wait::ClusterPaused);
    }
    let st = cr.status.as_ref().and_then(|s| s.state);
    match st {
        Some(ClusterState::Ready) => None,
        Some(s) => Some(Wait::ClusterNotReady(s.as_str().to_string())),
        None => Some(Wait::ClusterNotReady("initializing".into())),
    }
}

/// Plans every PerconaPGBackup of the cluster. `restore_busy` names a restore that holds the
/// cluster (including one started in this very plan); `restore_pending` the oldest waiting one.
/// Returns whether a backup is in progress (to requeue).
pub fn plan(
    obs: &Observed,
    env: &Env,
    plan: &mut Plan,
    restore_busy: Option<&str>,
    restore_pending: Option<(Option<Timestamp>, String)>,
) -> bool {
    let cr = &obs.cluster;
    let ctx = Ctx::new(cr);
    let info = retention::observed_info(obs);
    let mut holder = holder(obs);
    let mut active = false;
    let mut list: Vec<&PerconaPGBackup> = obs.backups.iter().collect();
    list.sort_by_key(|b| order_key(b));
    let mut step = Step {
        obs,
        ctx: &ctx,
        env,
        plan,
    };
    for b in list {
        let bname = name(b).to_string();
        let has_fin = b
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == finalizers::DELETE_BACKUP));
        // Cancellation: delete the Job, then let the object go.
        if b.metadata.deletion_timestamp.is_some() {
            if has_fin {
                for j in jobs_of(step.obs, b) {
                    delete_job(cr, j, step.plan);
                }
                if !state(b).is_some_and(BackupState::is_finished) {
                    step.event(
                        b,
                        EventType::Normal,
                        "BackupCancelled",
                        format!("backup {bname} was deleted; its Job is deleted"),
                    );
                }
                step.plan.push(Action::RemoveFinalizer {
                    target: backup_ref(cr, b),
                    finalizer: finalizers::DELETE_BACKUP.into(),
                });
            }
            continue;
        }
        // Objects tusk created (scheduled) carry the finalizer from creation; a metadata-only
        // apply to them would drop their spec (same field manager), so they are left alone.
        let made_by_tusk = label(&b.metadata, blabels::SCHEDULE).is_some();
        if !has_fin && !made_by_tusk && !state(b).is_some_and(BackupState::is_finished) {
            step.plan.push(meta_apply(
                cr,
                "PerconaPGBackup",
                &bname,
                finalizers::DELETE_BACKUP,
                None,
                serde_json::to_value(&b.spec).unwrap_or(Value::Null),
            ));
        }
        match state(b) {
            None => {
                if let Some(started) = start_or_wait(
                    &mut step,
                    b,
                    holder.as_deref(),
                    restore_busy,
                    restore_pending.as_ref(),
                ) {
                    holder = Some(started);
                    active = true;
                }
            }
            Some(BackupState::Starting | BackupState::Running) => {
                active |= progress(&mut step, b, info.as_ref());
            }
            Some(BackupState::Succeeded) => {
                // Record what pgBackRest says about it, once the info shows it.
                let missing = b.status.as_ref().is_none_or(|s| s.backup_name.is_none());
                let repo = b.spec.repo_name.as_deref().unwrap_or("");
                if missing
                    && let Some(i) = info
                        .as_ref()
                        .and_then(|i| i.find_by_annotation(repo, &bname))
                {
                    let mut st = status_value(b);
                    st["backupName"] = json!(i.label);
                    if let Some(k) = BackupKind::parse(&i.kind) {
                        st["backupType"] = json!(k.status_type());
                    }
                    if let Some(stop) = i.stop {
                        st["latestRestorableTime"] = json!(percona_time(stop));
                    }
                    step.patch(b, st);
                }
            }
            Some(BackupState::Failed) => {}
        }
    }
    active
}

/// A new backup: start it, or record why it waits. Returns its name when it started.
fn start_or_wait(
    step: &mut Step,
    b: &PerconaPGBackup,
    holder: Option<&str>,
    restore_busy: Option<&str>,
    restore_pending: Option<&(Option<Timestamp>, String)>,
) -> Option<String> {
    let cr = step.ctx.cr;
    let cluster = step.ctx.name;
    let bname = name(b).to_string();
    // Requests that can never run fail at once, with what to fix.
    if b.spec.method() == BackupMethod::VolumeSnapshot {
        step.fail(
            b,
            "Unsupported",
            "volume snapshot backups are not supported by tusk; use method pgbackrest".into(),
        );
        return None;
    }
    if !cr.spec.backups.is_enabled() {
        step.fail(
            b,
            "BackupsDisabled",
            format!("backups are disabled in cluster {cluster} (spec.backups.enabled: false)"),
        );
        return None;
    }
    if let Err(errs) = crate::validate::validate_backup(b) {
        let why: Vec<String> = errs.iter().map(ToString::to_string).collect();
        step.fail(b, "InvalidSpec", why.join("; "));
        return None;
    }
    let Some(repo_name) = b.spec.repo_name.as_deref() else {
        step.fail(
            b,
            "InvalidSpec",
            format!("spec.repoName is required (one of the repos of cluster {cluster})"),
        );
        return None;
    };
    let Some(repo) = cr.repos().iter().find(|r| r.name == repo_name) else {
        step.fail(b, "InvalidSpec", format!("repo {repo_name} is not configured in spec.backups.pgbackrest.repos of cluster {cluster}"));
        return None;
    };
    let wait = cluster_wait(cr)
        .or_else(|| restore_busy.map(|r| Wait::RestoreInProgress(r.to_string())))
        .or_else(|| {
            restore_pending
                .filter(|(t, n)| (*t, n.clone()) < order_key(b))
                .map(|(_, n)| Wait::RestoreQueued(n.clone()))
        })
        .or_else(|| {
            holder
                .filter(|h| *h != bname)
                .map(|h| Wait::BackupInProgress(h.to_string()))
        });
    let now = step.env.now;
    if let Some(w) = wait {
        let since = waiting_since(b, w.reason());
        if w.is_bounded() && since.is_some_and(|s| elapsed(now, s, READY_WAIT_LIMIT)) {
            step.fail(
                b,
                "ClusterNotReady",
                format!(
                    "cluster {cluster} was not ready for backups for {} minutes ({}); create the backup again once it is ready",
                    READY_WAIT_LIMIT.as_secs() / 60,
                    w.reason()
                ),
            );
            return None;
        }
        let mut st = status_value(b);
        set_condition(
            &mut st,
            condition(b, "False", w.reason(), &w.message(cluster), now),
        );
        if since.is_none() {
            step.event(b, EventType::Normal, "BackupWaiting", w.message(cluster));
        }
        step.patch(b, st);
        return None;
    }
    // Start: the Job first, then the state that points at it.
    let d = deadline(&b.metadata, DEFAULT_BACKUP_DEADLINE);
    let job_obj = job::backup_job(step.ctx, b, d);
    let job_name = job::backup_job_name(cluster, b);
    if by_name(&step.obs.jobs, &job_name).is_none() {
        step.plan.push(Action::Apply {
            object: job_obj.into(),
        });
    }
    let mut st = status_value(b);
    st["state"] = json!(BackupState::Starting.as_str());
    st["jobName"] = json!(job_name);
    st["repo"] = serde_json::to_value(repo).unwrap_or(Value::Null);
    st["storageType"] = json!(repo.storage().map(|s| s.storage_type()));
    if let Some(dst) = destination(cr, repo) {
        st["destination"] = json!(dst);
    }
    st["image"] = json!(step.ctx.pgbackrest_image());
    st["crVersion"] = json!(
        cr.spec
            .cr_version
            .clone()
            .unwrap_or_else(|| crate::api::defaults::CR_VERSION.into())
    );
    if let Some(k) = BackupKind::from_options(&b.spec.options) {
        st["backupType"] = json!(k.status_type());
    }
    set_condition(
        &mut st,
        condition(
            b,
            "True",
            "Acquired",
            &format!("backup {bname} holds cluster {cluster}"),
            now,
        ),
    );
    crate::build::prune(&mut st);
    step.patch(b, st);
    step.event(
        b,
        EventType::Normal,
        "BackupStarting",
        format!("backup {bname} of cluster {cluster} to {repo_name} started with Job {job_name}"),
    );
    Some(bname)
}

/// A started backup: follow its Job. Returns whether it is still in progress.
fn progress(step: &mut Step, b: &PerconaPGBackup, info: Option<&retention::Info>) -> bool {
    let cr = step.ctx.cr;
    let cluster = step.ctx.name;
    let bname = name(b).to_string();
    let now = step.env.now;
    let job_name = b
        .status
        .as_ref()
        .and_then(|s| s.job_name.clone())
        .unwrap_or_else(|| job::backup_job_name(cluster, b));
    let job = by_name(&step.obs.jobs, &job_name);
    let outcome = job_outcome(job);
    let d = deadline(&b.metadata, DEFAULT_BACKUP_DEADLINE);
    // The run started when the Job did; before that, when the backup took the cluster.
    let started = job
        .and_then(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| job.and_then(|j| created(&j.metadata)))
        .or_else(|| {
            b.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == CONDITION && c.status == "True")
                    .map(|c| c.last_transition_time.0)
            })
        })
        .or_else(|| created(&b.metadata))
        .unwrap_or(now);
    let overdue = elapsed(now, started, d + DEADLINE_GRACE);
    let running = state(b) == Some(BackupState::Running);
    match outcome {
        JobOutcome::Succeeded { at } => {
            let mut st = status_value(b);
            st["state"] = json!(BackupState::Succeeded.as_str());
            st["completed"] = json!(rfc3339(at.unwrap_or(now)));
            let repo = b.spec.repo_name.as_deref().unwrap_or("");
            if let Some(i) = info.and_then(|i| i.find_by_annotation(repo, &bname)) {
                st["backupName"] = json!(i.label);
                if let Some(k) = BackupKind::parse(&i.kind) {
                    st["backupType"] = json!(k.status_type());
                }
                if let Some(stop) = i.stop {
                    st["latestRestorableTime"] = json!(percona_time(stop));
                }
            }
            step.patch(b, st);
            step.event(
                b,
                EventType::Normal,
                "BackupSucceeded",
                format!("backup {bname} of cluster {cluster} succeeded (Job {job_name})"),
            );
            false
        }
        JobOutcome::Failed { reason, message } => {
            let msg = if message.is_empty() {
                format!("backup Job {job_name} failed")
            } else {
                format!("backup Job {job_name} failed: {message}")
            };
            step.fail(b, &reason, msg);
            false
        }
        _ if overdue => {
            if let Some(j) = job {
                delete_job(cr, j, step.plan);
            }
            step.fail(
                b,
                "DeadlineExceeded",
                format!(
                    "backup did not finish within {}s (annotation {} overrides); its Job {job_name} is deleted",
                    d.as_secs(),
                    super::annotations::DEADLINE
                ),
            );
            false
        }
        JobOutcome::Missing if running => {
            step.fail(
                b,
                "JobLost",
                format!("the backup Job {job_name} disappeared before it finished"),
            );
            false
        }
        JobOutcome::Missing => {
            // Not observed yet (a lagging cache) or deleted before it ran: same name, same Job.
            step.plan.push(Action::Apply {
                object: job::backup_job(step.ctx, b, d).into(),
            });
            true
        }
        JobOutcome::Active if !running => {
            let mut st = status_value(b);
            st["state"] = json!(BackupState::Running.as_str());
            step.patch(b, st);
            step.event(
                b,
                EventType::Normal,
                "BackupRunning",
                format!("backup {bname} is running (Job {job_name})"),
            );
            true
        }
        JobOutcome::Active | JobOutcome::Pending => true,
    }
}

/// How long a failed replica-create backup Job stays (so its pod logs can be read) before it
/// is deleted and the backup tried again.
pub const REPLICA_CREATE_RETRY: Duration = Duration::from_secs(300);

/// The replica-create backup (research/percona.md §2.11): once the cluster has a ready primary
/// after bootstrap, one full backup of the first repo, unless that repo already has a backup
/// (a Succeeded PerconaPGBackup, or one listed by `pgbackrest info`) or the cluster status says
/// it completed. The Job itself (deterministic name, kept after it succeeded) is the record
/// that it ran, so it is applied at most once per repo; a failed one is deleted after
/// [`REPLICA_CREATE_RETRY`] and taken again. Waits while anything else holds the cluster
/// (`busy`: a restore or a backup). Returns when to look again, if it is not done.
pub fn replica_create(obs: &Observed, env: &Env, plan: &mut Plan, busy: bool) -> Option<Duration> {
    let cr = &obs.cluster;
    let ctx = Ctx::new(cr);
    let repo = cr.repos().first()?;
    if !ctx.backups_enabled() || cr.is_paused() || cr.is_standby() {
        return None;
    }
    let has_backup = obs.backups.iter().any(|b| {
        b.spec.repo_name.as_deref() == Some(repo.name.as_str())
            && state(b) == Some(BackupState::Succeeded)
    }) || retention::observed_info(obs).is_some_and(|i| i.lists_repo(&repo.name));
    let job_name = job::replica_create_job_name(ctx.name, &repo.name);
    if let Some(j) = by_name(&obs.jobs, &job_name) {
        return match job_outcome(Some(j)) {
            JobOutcome::Succeeded { .. } => None,
            JobOutcome::Active | JobOutcome::Pending => Some(super::REQUEUE_ACTIVE),
            JobOutcome::Failed { .. } | JobOutcome::Missing => {
                retry_failed_replica_create(obs, j, env, plan, has_backup)
            }
        };
    }
    if replica_create_in_status(cr, &repo.name) || has_backup {
        return None;
    }
    let primary_ready = obs.primary_pod().is_some_and(crate::observed::pod_ready);
    if busy || holder(obs).is_some() || !primary_ready {
        // Someone else's turn, or no primary to back up yet: the change that ends the wait
        // (a Job or pod update) triggers the next reconcile.
        return None;
    }
    plan.push(Action::Apply {
        object: job::replica_create_job(&ctx, &repo.name, super::DEFAULT_BACKUP_DEADLINE).into(),
    });
    Some(super::REQUEUE_ACTIVE)
}

/// A failed replica-create Job: deleted (uid precondition) once it has been failed for
/// [`REPLICA_CREATE_RETRY`], with a Warning Event; until then, a requeue for that moment.
/// When a full backup reached the repo meanwhile (`has_backup`), none is taken again.
fn retry_failed_replica_create(
    obs: &Observed,
    job: &Job,
    env: &Env,
    plan: &mut Plan,
    has_backup: bool,
) -> Option<Duration> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let failed_at = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .or_else(|| job.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let waited = failed_at
        .and_then(|at| env.now.duration_since(at).try_into().ok())
        .unwrap_or(Duration::ZERO);
    if waited < REPLICA_CREATE_RETRY {
        return Some(REPLICA_CREATE_RETRY - waited);
    }
    let (Some(name), Some(uid)) = (&job.metadata.name, &job.metadata.uid) else {
        return None;
    };
    let reason = match job_outcome(Some(job)) {
        JobOutcome::Failed { reason, message } => format!("{reason}: {message}"),
        _ => "the Job failed".into(),
    };
    plan.push(Action::Event {
        regarding: crate::reconcile::cluster_ref(obs),
        type_: EventType::Warning,
        reason: "ReplicaCreateBackupFailed".into(),
        message: if has_backup {
            format!(
                "the full backup taken after bootstrap failed ({reason}); Job {name} is deleted, and not taken again: the repo holds a backup now"
            )
        } else {
            format!(
                "the full backup taken after bootstrap failed ({reason}); Job {name} is deleted and the backup tried again"
            )
        },
    });
    plan.push(Action::Delete {
        target: super::oref(&obs.cluster, "batch/v1", "Job", name),
        uid: uid.clone(),
    });
    Some(super::REQUEUE_ACTIVE)
}

/// Condition type of the replica-create backup in the cluster's status (Crunchy's name).
pub const REPLICA_CREATE_CONDITION: &str = "PGBackRestReplicaCreate";

/// The cluster's `PGBackRestReplicaCreate` condition: True once the full backup taken after
/// bootstrap completed; False with the Job's reason and message after it failed, kept while
/// the next attempt runs, so why it failed outlives the deleted Job and its Event. None
/// before the first attempt ends.
pub fn replica_create_condition(obs: &Observed, now: Timestamp) -> Option<Value> {
    let cr = &obs.cluster;
    let repo = cr.repos().first()?;
    let previous = cr.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == REPLICA_CREATE_CONDITION)
    });
    let job_name = job::replica_create_job_name(cr.name(), &repo.name);
    let job = by_name(&obs.jobs, &job_name);
    let outcome = job_outcome(job);
    // Done: recorded in status (sticky after the Job is gone), or the Job succeeded.
    let done =
        replica_create_in_status(cr, &repo.name) || matches!(outcome, JobOutcome::Succeeded { .. });
    let (status, reason, message) = match outcome {
        _ if done => (
            "True",
            "RepoBackupComplete",
            format!(
                "the full backup to {} after bootstrap is complete",
                repo.name
            ),
        ),
        JobOutcome::Failed { reason, message } => (
            "False",
            "RepoBackupFailed",
            format!(
                "the full backup to {} after bootstrap failed (Job {job_name}: {reason}: {message}); it is tried again",
                repo.name
            ),
        ),
        // Running, or not started: what was said before stands (a failure stays on record
        // while the next attempt runs); a running Job the plan just created changes nothing.
        _ => return previous.and_then(|c| serde_json::to_value(c).ok()),
    };
    let since = previous
        .filter(|c| c.status == status)
        .and_then(|c| serde_json::to_value(&c.last_transition_time).ok())
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| {
            serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now))
                .unwrap_or(Value::Null)
        });
    Some(json!({
        "type": REPLICA_CREATE_CONDITION,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": cr.metadata.generation.unwrap_or(0),
    }))
}

fn replica_create_in_status(cr: &crate::api::PerconaPGCluster, repo: &str) -> bool {
    cr.status
        .as_ref()
        .and_then(|s| s.pgbackrest.as_ref())
        .is_some_and(|p| {
            p.repos
                .iter()
                .any(|r| r.name == repo && r.replica_create_backup_complete == Some(true))
        })
}

/// `status.pgbackrest.repos` entries as upstream reports them: `replicaCreateBackupComplete`
/// once the replica-create Job of a repo succeeded (sticky: it stays true in status after the
/// Job is gone). Repos without news are left out so the status does not churn.
pub fn repo_statuses(obs: &Observed) -> Vec<Value> {
    let cr = &obs.cluster;
    cr.repos()
        .iter()
        .filter(|repo| {
            let job = by_name(
                &obs.jobs,
                &job::replica_create_job_name(cr.name(), &repo.name),
            );
            replica_create_in_status(cr, &repo.name)
                || matches!(job_outcome(job), JobOutcome::Succeeded { .. })
        })
        .map(|repo| json!({"name": repo.name, "replicaCreateBackupComplete": true}))
        .collect()
}
