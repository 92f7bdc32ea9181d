//! The PerconaPGRestore state machine (in place, and the bootstrap of a cluster created from a
//! backup): `""` → Starting → Running → Succeeded | Failed.
//!
//! 1. **Starting** — the restore holds the cluster: [`restore_gate`] tells the lifecycle to stop
//!    every instance (StatefulSets at 0 replicas; PVCs and the repo host stay). The instance
//!    whose volume gets the restored data (the primary at that moment, else the instance marked
//!    as startup instance, else the first by name) is recorded in an annotation.
//! 2. Once no instance pod is left, **Running**: the restore Job (`pgbackrest restore
//!    --stanza=db --repo=N --delta <options>`) writes that instance's data volume, and one
//!    re-init Job per other instance empties theirs (they come back as replicas of the
//!    restored leader).
//! 3. All Jobs complete: Patroni's DCS Endpoints (`<cluster>-ha`, `-ha-config`, `-ha-failover`,
//!    `-ha-sync`) are deleted so that Patroni bootstraps a leader from the restored data, and
//!    the state becomes **Succeeded**; the gate lifts, the instances start, the cluster resumes.
//!
//! One restore at a time (oldest first); a restore also waits for a running backup. A waiting
//! restore says why in the annotation `pgv2.percona.com/restore-waiting` and an Event (its
//! status has no message field). Deadlines: [`STOP_WAIT_LIMIT`] for the instances to stop, the
//! restore deadline (default [`DEFAULT_RESTORE_DEADLINE`], annotation
//! `pgv2.percona.com/deadline-seconds`) for the whole run. Cancelling (deleting the object)
//! deletes its Jobs and lifts the gate; the restored instance then holds whatever the
//! interrupted `--delta` restore left, so cancel only to abandon the restore.

use super::job::{self, RestoreJobInput, RestoreSource};
use super::{
    DEADLINE_GRACE, DEFAULT_RESTORE_DEADLINE, JobOutcome, STOP_WAIT_LIMIT, annotations, backups,
    created, deadline, delete_job, elapsed, finalizers, job_outcome, labels as blabels, oref,
    rfc3339,
};
use crate::Env;
use crate::api::restore::{PerconaPGRestore, RestoreState};
use crate::build::Ctx;
use crate::labels;
use crate::observed::{Observed, annotation, by_name, label};
use crate::plan::{Action, EventType, ObjectRef, Plan};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The condition on a PerconaPGRestore's status saying where it is (Crunchy's name for the
/// same thing on its PostgresCluster).
pub const PROGRESSING: &str = "PGBackRestoreProgressing";

/// Reasons of the [`PROGRESSING`] condition while the restore is under way.
pub mod reasons {
    /// Another restore or a backup holds the cluster.
    pub const WAITING: &str = "Waiting";
    /// The instances are being stopped.
    pub const STOPPING_INSTANCES: &str = "StoppingInstances";
    /// The restore and re-init Jobs run.
    pub const RESTORING: &str = "Restoring";
}

/// Annotation on a started restore: when it took the cluster.
pub const STARTED_AT: &str = "pgv2.percona.com/restore-started-at";
/// Annotation on a started restore: the instance whose volume receives the restored data.
pub const TARGET_INSTANCE: &str = "pgv2.percona.com/restore-instance";

/// Where an in-progress restore is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePhase {
    /// The instances must be stopped (and stay stopped): the restore waits for their pods to go.
    StopInstances,
    /// The restore Jobs run; the instances stay stopped.
    Restoring,
}

/// What the lifecycle must respect while a restore holds the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreGate {
    /// The PerconaPGRestore (or `<cluster>-bootstrap`, possibly not created yet).
    pub restore: String,
    pub phase: RestorePhase,
    /// The instance that receives the restored data and should start first afterwards.
    pub startup_instance: Option<String>,
}

impl RestoreGate {
    /// While the gate exists every instance StatefulSet must have 0 replicas; the repo host
    /// must keep running (a volume repo is read through it).
    pub fn instances_must_stop(&self) -> bool {
        true
    }
}

fn find_restore<'a>(obs: &'a Observed, n: &str) -> Option<&'a PerconaPGRestore> {
    obs.restores
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(n))
}

fn name(r: &PerconaPGRestore) -> &str {
    r.metadata.name.as_deref().unwrap_or("")
}

fn state(r: &PerconaPGRestore) -> Option<RestoreState> {
    r.status.as_ref().and_then(|s| s.state)
}

fn order_key(r: &PerconaPGRestore) -> (Option<Timestamp>, String) {
    (created(&r.metadata), name(r).to_string())
}

fn restore_ref(cr: &crate::api::PerconaPGCluster, r: &PerconaPGRestore) -> ObjectRef {
    oref(
        cr,
        crate::api::defaults::API_VERSION,
        "PerconaPGRestore",
        name(r),
    )
}

fn in_progress(r: &PerconaPGRestore) -> bool {
    r.metadata.deletion_timestamp.is_none()
        && matches!(
            state(r),
            Some(RestoreState::Starting | RestoreState::Running)
        )
}

/// The name of the bootstrap restore of a cluster created from a backup.
pub fn bootstrap_restore_name(cluster: &str) -> String {
    format!("{cluster}-bootstrap")
}

fn instance_pods_exist(obs: &Observed) -> bool {
    let cluster = obs.cluster.metadata.name.as_deref().unwrap_or("");
    obs.pods.iter().any(|p| {
        label(&p.metadata, labels::CLUSTER) == Some(cluster)
            && label(&p.metadata, labels::INSTANCE).is_some()
    })
}

/// Whether the cluster must bootstrap from `spec.dataSource` and has not started doing so:
/// a data source is set, no bootstrap restore exists, and the cluster never ran.
fn bootstrap_needed(obs: &Observed) -> bool {
    let cr = &obs.cluster;
    let Some(ds) = &cr.spec.data_source else {
        return false;
    };
    if ds.pgbackrest.is_none() && ds.postgres_cluster.is_none() {
        return false;
    }
    let cluster = cr.metadata.name.as_deref().unwrap_or("");
    if find_restore(obs, &bootstrap_restore_name(cluster)).is_some() {
        return false;
    }
    let st = cr.status.as_ref();
    let never_ran = st
        .and_then(|s| s.state)
        .is_none_or(|s| s == crate::api::cluster::ClusterState::Initializing)
        && st
            .and_then(|s| s.postgres.as_ref())
            .is_none_or(|p| p.ready == 0);
    never_ran && !instance_pods_exist(obs)
}

/// The restore holding the cluster, if any: the lifecycle must keep the instances stopped.
/// Also answers for a cluster that must bootstrap from a backup before its first instance
/// starts (`spec.dataSource.pgbackrest` / `postgresCluster`).
pub fn restore_gate(obs: &Observed) -> Option<RestoreGate> {
    let cluster = obs.cluster.metadata.name.as_deref().unwrap_or("");
    let mut active: Vec<&PerconaPGRestore> =
        obs.restores.iter().filter(|r| in_progress(r)).collect();
    active.sort_by_key(|r| order_key(r));
    if let Some(r) = active.first() {
        let phase = if state(r) == Some(RestoreState::Running) {
            RestorePhase::Restoring
        } else {
            RestorePhase::StopInstances
        };
        return Some(RestoreGate {
            restore: name(r).to_string(),
            phase,
            startup_instance: annotation(&r.metadata, TARGET_INSTANCE)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        });
    }
    // A bootstrap restore not started yet still holds the first instance back.
    let boot = bootstrap_restore_name(cluster);
    let pending_boot = find_restore(obs, &boot)
        .is_some_and(|r| state(r).is_none() && r.metadata.deletion_timestamp.is_none());
    if pending_boot || bootstrap_needed(obs) {
        return Some(RestoreGate {
            restore: boot,
            phase: RestorePhase::StopInstances,
            startup_instance: None,
        });
    }
    None
}

/// `restore_gate(obs).is_some()`, as the lifecycle asks it.
pub fn restore_in_progress(obs: &Observed) -> Option<RestorePhase> {
    restore_gate(obs).map(|g| g.phase)
}

/// The PerconaPGRestore `<cluster>-bootstrap` for a cluster created from a backup (upstream
/// creates the same, K8SPG-560), owned by the cluster.
pub fn bootstrap(obs: &Observed, plan: &mut Plan) {
    if !bootstrap_needed(obs) {
        return;
    }
    let cr = &obs.cluster;
    let ds = cr.spec.data_source.clone().unwrap_or_default();
    let (repo, options) = if let Some(p) = &ds.postgres_cluster {
        (p.repo_name.clone(), p.options.clone())
    } else if let Some(p) = &ds.pgbackrest {
        (p.repo.name.clone(), p.options.clone())
    } else {
        return;
    };
    plan.push(Action::Apply {
        object: bootstrap_object(cr, &repo, &options, Map::new()).into(),
    });
}

/// The whole bootstrap restore as tusk applies it (created by tusk, so every later apply of
/// it sends all of it: server-side apply would drop what tusk stopped sending). Carries the
/// finalizer from the start.
fn bootstrap_object(
    cr: &crate::api::PerconaPGCluster,
    repo: &str,
    options: &[String],
    extra_annotations: Map<String, Value>,
) -> Value {
    let cluster = cr.metadata.name.as_deref().unwrap_or("");
    let mut ann = Map::new();
    ann.insert(annotations::CLUSTER_BOOTSTRAP_RESTORE.into(), json!("true"));
    ann.extend(extra_annotations);
    json!({
        "apiVersion": crate::api::defaults::API_VERSION,
        "kind": "PerconaPGRestore",
        "metadata": {
            "name": bootstrap_restore_name(cluster),
            "namespace": cr.metadata.namespace.as_deref().unwrap_or("default"),
            "labels": {labels::CLUSTER: cluster},
            "annotations": ann,
            "finalizers": [finalizers::DELETE_RESTORE],
            "ownerReferences": [{
                "apiVersion": crate::api::defaults::API_VERSION,
                "kind": "PerconaPGCluster",
                "name": cluster,
                "uid": cr.metadata.uid.as_deref().unwrap_or(""),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {"pgCluster": cluster, "repoName": repo, "options": options},
    })
}

fn is_bootstrap(cluster: &str, r: &PerconaPGRestore) -> bool {
    name(r) == bootstrap_restore_name(cluster)
        && annotation(&r.metadata, annotations::CLUSTER_BOOTSTRAP_RESTORE).is_some()
}

/// What the restores decided, for the backups that follow in the same plan.
#[derive(Debug, Default)]
pub struct Outcome {
    /// A restore holds the cluster (including one started in this plan).
    pub busy: Option<String>,
    /// The oldest waiting restore, `(creationTimestamp, name)`.
    pub pending: Option<(Option<Timestamp>, String)>,
    /// Something is in progress: requeue.
    pub active: bool,
}

/// tusk's metadata on a restore: its finalizer and annotations. Applied whole (server-side
/// apply drops what tusk stops sending), so every caller passes the complete set.
fn restore_meta(
    cr: &crate::api::PerconaPGCluster,
    r: &PerconaPGRestore,
    mut annotations: Map<String, Value>,
) -> Option<Action> {
    // A cleared annotation is sent as "" rather than dropped: stores that merge annotations
    // would otherwise keep the stale value.
    for k in [annotations::RESTORE_WAITING, STARTED_AT, TARGET_INSTANCE] {
        if !annotations.contains_key(k) && annotation(&r.metadata, k).is_some_and(|v| !v.is_empty())
        {
            annotations.insert(k.to_string(), json!(""));
        }
    }
    let has_fin = r
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizers::DELETE_RESTORE));
    let same = [annotations::RESTORE_WAITING, STARTED_AT, TARGET_INSTANCE]
        .iter()
        .all(|k| {
            annotations.get(*k).and_then(Value::as_str).unwrap_or("")
                == annotation(&r.metadata, k).unwrap_or("")
        });
    if has_fin && same {
        return None;
    }
    if is_bootstrap(cr.metadata.name.as_deref().unwrap_or(""), r) {
        return Some(Action::Apply {
            object: bootstrap_object(
                cr,
                r.spec.repo_name.as_deref().unwrap_or(""),
                &r.spec.options,
                annotations,
            )
            .into(),
        });
    }
    Some(super::meta_apply(
        cr,
        "PerconaPGRestore",
        name(r),
        finalizers::DELETE_RESTORE,
        Some(Value::Object(annotations)),
        serde_json::to_value(&r.spec).unwrap_or(Value::Null),
    ))
}

/// The annotations tusk keeps on a started restore.
fn started_annotations(r: &PerconaPGRestore) -> Map<String, Value> {
    let mut a = Map::new();
    for k in [STARTED_AT, TARGET_INSTANCE] {
        if let Some(v) = annotation(&r.metadata, k).filter(|v| !v.is_empty()) {
            a.insert(k.to_string(), json!(v));
        }
    }
    a
}

/// Instance StatefulSets of the cluster, by name.
fn instances(obs: &Observed) -> Vec<String> {
    let cluster = obs.cluster.metadata.name.as_deref().unwrap_or("");
    let mut v: Vec<String> = obs
        .stateful_sets
        .iter()
        .filter(|s| label(&s.metadata, labels::CLUSTER) == Some(cluster))
        .filter(|s| label(&s.metadata, labels::INSTANCE).is_some())
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    v.sort();
    v
}

/// The instance that receives the restored data: the current primary, else the instance the
/// lifecycle marked as startup instance, else the first by name.
fn choose_instance(obs: &Observed) -> Option<String> {
    let all = instances(obs);
    let primary = obs
        .primary_pod()
        .and_then(|p| label(&p.metadata, labels::INSTANCE))
        .filter(|i| all.iter().any(|a| a == i))
        .map(str::to_string);
    let marked = all.iter().find(|n| {
        by_name(&obs.stateful_sets, n)
            .and_then(|s| annotation(&s.metadata, labels::annotations::STARTUP_INSTANCE))
            == Some("true")
    });
    primary
        .or_else(|| marked.cloned())
        .or_else(|| all.first().cloned())
}

struct Ctx2<'a> {
    obs: &'a Observed,
    ctx: &'a Ctx<'a>,
    env: &'a Env,
}

/// The [`PROGRESSING`] condition; its transition time only moves when its status does.
fn condition(
    r: &PerconaPGRestore,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Value {
    let since = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == PROGRESSING))
        .filter(|c| c.status == status)
        .map(|c| rfc3339(c.last_transition_time.0))
        .unwrap_or_else(|| rfc3339(now));
    json!({
        "type": PROGRESSING,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    })
}

impl Ctx2<'_> {
    /// The status of an unfinished restore: its state, Job and where it is.
    fn progress(
        &self,
        plan: &mut Plan,
        r: &PerconaPGRestore,
        state: Option<RestoreState>,
        job: Option<&str>,
        reason: &str,
        message: &str,
    ) {
        let mut st = json!({
            "conditions": [condition(r, "True", reason, message, self.env.now)],
        });
        if let Some(s) = state {
            st["state"] = json!(s.as_str());
        }
        if let Some(j) = job {
            st["jobName"] = json!(j);
        }
        self.status(plan, r, st);
    }

    fn status(&self, plan: &mut Plan, r: &PerconaPGRestore, status: Value) {
        let old = r
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_else(|| json!({}));
        if old != status {
            plan.push(Action::PatchStatus {
                target: restore_ref(self.ctx.cr, r),
                status,
            });
        }
    }

    fn event(
        &self,
        plan: &mut Plan,
        r: &PerconaPGRestore,
        t: EventType,
        reason: &str,
        msg: String,
    ) {
        plan.push(Action::Event {
            regarding: restore_ref(self.ctx.cr, r),
            type_: t,
            reason: reason.into(),
            message: msg,
        });
    }

    fn finish(&self, plan: &mut Plan, r: &PerconaPGRestore, ok: bool, reason: &str, msg: String) {
        let mut st = json!({
            "state": if ok { RestoreState::Succeeded.as_str() } else { RestoreState::Failed.as_str() },
            "completed": rfc3339(self.env.now),
            "conditions": [condition(r, "False", reason, &msg, self.env.now)],
        });
        if let Some(j) = r.status.as_ref().and_then(|s| s.job_name.clone()) {
            st["jobName"] = json!(j);
        }
        if !ok {
            st["error"] = json!(msg);
        }
        self.status(plan, r, st);
        let t = if ok {
            EventType::Normal
        } else {
            EventType::Warning
        };
        self.event(plan, r, t, reason, msg);
    }

    fn source(&self, r: &PerconaPGRestore) -> RestoreSource {
        let cluster = self.ctx.name;
        if is_bootstrap(cluster, r) {
            let ds = self.ctx.cr.spec.data_source.clone().unwrap_or_default();
            if let Some(p) = ds.postgres_cluster {
                return RestoreSource::Cluster {
                    name: p.cluster_name.unwrap_or_default(),
                };
            }
            if ds.pgbackrest.is_some() {
                return RestoreSource::Inline;
            }
        }
        RestoreSource::Own
    }

    /// The restore Job and the re-init Jobs, `(name, object)`, the restore Job first.
    fn jobs(&self, r: &PerconaPGRestore, target: &str) -> Vec<(String, Value)> {
        let cluster = self.ctx.name;
        let uid = r.metadata.uid.as_deref().unwrap_or("");
        let co = r.spec.container_options.clone().unwrap_or_default();
        let repo = r.spec.repo_name.clone().unwrap_or_default();
        let mut input = RestoreJobInput {
            restore: name(r),
            restore_uid: uid,
            repo: &repo,
            options: &r.spec.options,
            env: &co.env,
            env_from: &co.env_from,
            instance: target,
            deadline: deadline(&r.metadata, DEFAULT_RESTORE_DEADLINE),
            source: self.source(r),
        };
        let mut out = vec![(
            job::restore_job_name(cluster, name(r), uid, target),
            job::restore_job(self.ctx, &input),
        )];
        let others: Vec<String> = instances(self.obs)
            .into_iter()
            .filter(|i| i != target)
            .collect();
        for other in &others {
            input.instance = other;
            out.push((
                job::reinit_job_name(cluster, name(r), uid, other),
                job::reinit_job(self.ctx, &input),
            ));
        }
        out
    }
}

/// Plans every PerconaPGRestore of the cluster; see the module documentation.
pub fn plan_restores(obs: &Observed, env: &Env, plan: &mut Plan) -> Outcome {
    let cr = &obs.cluster;
    let ctx = Ctx::new(cr);
    let c = Ctx2 {
        obs,
        ctx: &ctx,
        env,
    };
    let cluster = ctx.name;
    let mut out = Outcome::default();
    let mut list: Vec<&PerconaPGRestore> = obs.restores.iter().collect();
    list.sort_by_key(|r| order_key(r));
    out.busy = list
        .iter()
        .find(|r| in_progress(r))
        .map(|r| name(r).to_string());
    let backup_holder = backups::holder(obs);
    for r in list {
        let rname = name(r).to_string();
        if r.metadata.deletion_timestamp.is_some() {
            let has_fin = r
                .metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|x| x == finalizers::DELETE_RESTORE));
            if has_fin {
                for j in obs
                    .jobs
                    .iter()
                    .filter(|j| label(&j.metadata, blabels::PG_RESTORE) == Some(rname.as_str()))
                {
                    delete_job(cr, j, plan);
                }
                if !state(r).is_some_and(RestoreState::is_finished) {
                    c.event(plan, r, EventType::Warning, "RestoreCancelled", format!(
                        "restore {rname} was deleted before it finished; its Jobs are deleted and the instances start again"
                    ));
                }
                plan.push(Action::RemoveFinalizer {
                    target: restore_ref(cr, r),
                    finalizer: finalizers::DELETE_RESTORE.into(),
                });
            }
            continue;
        }
        match state(r) {
            Some(s) if s.is_finished() => {}
            None => {
                if r.spec.volume_snapshot_backup_name.is_some() && r.spec.repo_name.is_none() {
                    c.finish(plan, r, false, "Unsupported", format!("restore {rname}: restores from volume snapshots are not supported by tusk; set spec.repoName"));
                    continue;
                }
                // A spec pgBackRest would reject fails here, before any instance stops.
                if let Err(errs) = crate::validate::validate_restore(r) {
                    let why: Vec<String> = errs.iter().map(ToString::to_string).collect();
                    c.finish(
                        plan,
                        r,
                        false,
                        "InvalidSpec",
                        format!("restore {rname}: {}", why.join("; ")),
                    );
                    continue;
                }
                let Some(repo) = r.spec.repo_name.clone() else {
                    c.finish(
                        plan,
                        r,
                        false,
                        "InvalidSpec",
                        format!("restore {rname}: spec.repoName is required"),
                    );
                    continue;
                };
                if c.source(r) == RestoreSource::Own && !cr.repos().iter().any(|x| x.name == repo) {
                    c.finish(plan, r, false, "InvalidSpec", format!(
                        "restore {rname}: repo {repo} is not configured in spec.backups.pgbackrest.repos of cluster {cluster}"
                    ));
                    continue;
                }
                let wait = if let Some(b) = &out.busy {
                    Some(format!(
                        "waiting for restore {b} of cluster {cluster} to finish (one restore at a time)"
                    ))
                } else {
                    backup_holder
                        .as_ref()
                        .map(|b| format!("waiting for backup {b} of cluster {cluster} to finish"))
                };
                if let Some(msg) = wait {
                    if out.pending.is_none() {
                        out.pending = Some(order_key(r));
                    }
                    let mut a = Map::new();
                    a.insert(annotations::RESTORE_WAITING.into(), json!(msg));
                    if annotation(&r.metadata, annotations::RESTORE_WAITING) != Some(msg.as_str()) {
                        c.event(
                            plan,
                            r,
                            EventType::Normal,
                            "RestoreWaiting",
                            format!("restore {rname}: {msg}"),
                        );
                    }
                    if let Some(a) = restore_meta(cr, r, a) {
                        plan.push(a);
                    }
                    c.progress(plan, r, None, None, reasons::WAITING, &msg);
                    continue;
                }
                // Take the cluster: record when and onto which instance, then Starting.
                let mut a = Map::new();
                a.insert(STARTED_AT.into(), json!(rfc3339(env.now)));
                if let Some(i) = choose_instance(obs) {
                    a.insert(TARGET_INSTANCE.into(), json!(i));
                }
                if let Some(a) = restore_meta(cr, r, a) {
                    plan.push(a);
                }
                let msg = format!(
                    "restore {rname} of cluster {cluster} from {repo} started: stopping the instances"
                );
                c.progress(
                    plan,
                    r,
                    Some(RestoreState::Starting),
                    None,
                    reasons::STOPPING_INSTANCES,
                    &msg,
                );
                c.event(plan, r, EventType::Normal, "RestoreStarting", msg);
                out.busy = Some(rname);
                out.active = true;
            }
            Some(RestoreState::Starting) => {
                out.active = true;
                starting(&c, r, plan);
            }
            Some(_) => {
                out.active = true;
                running(&c, r, plan);
            }
        }
    }
    out
}

fn started_at(r: &PerconaPGRestore) -> Option<Timestamp> {
    annotation(&r.metadata, STARTED_AT).and_then(|v| v.parse().ok())
}

/// Starting: wait for the instances to stop, then run the Jobs.
fn starting(c: &Ctx2, r: &PerconaPGRestore, plan: &mut Plan) {
    let cr = c.ctx.cr;
    let rname = name(r);
    let now = c.env.now;
    let since = started_at(r)
        .or_else(|| created(&r.metadata))
        .unwrap_or(now);
    let mut a = started_annotations(r);
    if !a.contains_key(STARTED_AT) {
        a.insert(STARTED_AT.into(), json!(rfc3339(now)));
    }
    let Some(target) = annotation(&r.metadata, TARGET_INSTANCE)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
    else {
        // Not chosen yet (no instance existed when it started, or a lagging read).
        if let Some(i) = choose_instance(c.obs) {
            a.insert(TARGET_INSTANCE.into(), json!(i));
        }
        if let Some(act) = restore_meta(cr, r, a) {
            plan.push(act);
        }
        return;
    };
    if let Some(act) = restore_meta(cr, r, a) {
        plan.push(act);
    }
    let pvc_ready = by_name(&c.obs.pvcs, &crate::naming::instance_pgdata_pvc(&target)).is_some();
    if instance_pods_exist(c.obs) || !pvc_ready {
        if elapsed(now, since, STOP_WAIT_LIMIT) {
            let why = if pvc_ready {
                "the instances did not stop"
            } else {
                "the data volume of the target instance does not exist"
            };
            c.finish(
                plan,
                r,
                false,
                "RestoreFailed",
                format!(
                    "restore {rname}: {why} within {} minutes; nothing was restored",
                    STOP_WAIT_LIMIT.as_secs() / 60
                ),
            );
        }
        return;
    }
    let jobs = c.jobs(r, &target);
    for (n, obj) in &jobs {
        if by_name(&c.obs.jobs, n).is_none() {
            plan.push(Action::Apply {
                object: obj.clone().into(),
            });
        }
    }
    let msg = running_message(rname, &jobs[0].0, &target, 0, jobs.len());
    c.progress(
        plan,
        r,
        Some(RestoreState::Running),
        Some(&jobs[0].0),
        reasons::RESTORING,
        &msg,
    );
    c.event(plan, r, EventType::Normal, "RestoreRunning", msg);
}

/// Running: follow the Jobs; on success reset Patroni's DCS and finish.
fn running(c: &Ctx2, r: &PerconaPGRestore, plan: &mut Plan) {
    let cr = c.ctx.cr;
    let rname = name(r);
    let now = c.env.now;
    let Some(target) = annotation(&r.metadata, TARGET_INSTANCE)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
    else {
        c.finish(plan, r, false, "RestoreFailed", format!(
            "restore {rname}: annotation {TARGET_INSTANCE} was removed while it ran; create the restore again"
        ));
        return;
    };
    let jobs = c.jobs(r, &target);
    let d = deadline(&r.metadata, DEFAULT_RESTORE_DEADLINE);
    let since = started_at(r)
        .or_else(|| created(&r.metadata))
        .unwrap_or(now);
    let outcomes: Vec<(String, JobOutcome)> = jobs
        .iter()
        .map(|(n, _)| (n.clone(), job_outcome(by_name(&c.obs.jobs, n))))
        .collect();
    let delete_all = |plan: &mut Plan| {
        for (n, _) in &jobs {
            if let Some(j) = by_name(&c.obs.jobs, n) {
                delete_job(cr, j, plan);
            }
        }
    };
    if let Some((n, JobOutcome::Failed { reason, message })) = outcomes
        .iter()
        .find(|(_, o)| matches!(o, JobOutcome::Failed { .. }))
    {
        delete_all(plan);
        c.finish(plan, r, false, "RestoreFailed", format!(
            "restore {rname}: Job {n} failed ({reason}: {message}); the instances start again with the data they have"
        ));
        return;
    }
    if outcomes
        .iter()
        .all(|(_, o)| matches!(o, JobOutcome::Succeeded { .. }))
    {
        // Patroni must forget the old cluster to bootstrap a leader from the restored data.
        let scope = crate::naming::patroni_scope(c.ctx.name);
        for suffix in ["", "-config", "-failover", "-sync"] {
            if let Some(e) = by_name(&c.obs.endpoints, &format!("{scope}{suffix}"))
                && e.metadata.deletion_timestamp.is_none()
                && let (Some(n), Some(uid)) = (&e.metadata.name, &e.metadata.uid)
            {
                plan.push(Action::Delete {
                    target: oref(cr, "v1", "Endpoints", n),
                    uid: uid.clone(),
                });
            }
        }
        c.finish(
            plan,
            r,
            true,
            "RestoreSucceeded",
            format!(
                "restore {rname} succeeded; instance {target} starts first with the restored data"
            ),
        );
        return;
    }
    if elapsed(now, since, d + DEADLINE_GRACE) {
        delete_all(plan);
        c.finish(plan, r, false, "DeadlineExceeded", format!(
            "restore {rname} did not finish within {}s (annotation {} overrides); its Jobs are deleted",
            d.as_secs(),
            annotations::DEADLINE
        ));
        return;
    }
    // Progress: how many of the Jobs finished.
    let done = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, JobOutcome::Succeeded { .. }))
        .count();
    c.progress(
        plan,
        r,
        Some(RestoreState::Running),
        Some(&jobs[0].0),
        reasons::RESTORING,
        &running_message(rname, &jobs[0].0, &target, done, jobs.len()),
    );
    // A Job not observed (lagging read, or deleted by hand): the same name again. The
    // instances are still stopped, so re-running `--delta` is safe.
    for ((n, obj), (_, o)) in jobs.iter().zip(&outcomes) {
        if *o == JobOutcome::Missing {
            let _ = n;
            plan.push(Action::Apply {
                object: obj.clone().into(),
            });
        }
    }
}

fn running_message(restore: &str, job: &str, target: &str, done: usize, total: usize) -> String {
    format!(
        "restore {restore}: instances stopped; Job {job} restores into {target}, the other \
         instances are emptied to rejoin as replicas ({done} of {total} Jobs finished)"
    )
}

/// Makes a plan respect [`restore_gate`] on its own, for a driver that plans instances without
/// the lifecycle (`reconcile` does not need it: `Instances::decide` asks the gate itself):
/// every instance StatefulSet tusk applies gets 0 replicas, and nothing is sent to a primary
/// (SQL, switchovers) while the gate holds. A no-op without a gate.
pub fn enforce_restore_gate(obs: &Observed, plan: &mut Plan) {
    if restore_gate(obs).is_none() {
        return;
    }
    let cluster = obs.cluster.metadata.name.as_deref().unwrap_or("");
    plan.actions
        .retain(|a| !matches!(a, Action::Sql { .. } | Action::Switchover { .. }));
    for a in &mut plan.actions {
        if let Action::Apply { object } = a {
            let is_instance = object.pointer("/kind").and_then(Value::as_str)
                == Some("StatefulSet")
                && object
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(labels::CLUSTER))
                    .and_then(Value::as_str)
                    == Some(cluster)
                && object
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(labels::INSTANCE))
                    .is_some();
            if is_instance {
                std::sync::Arc::make_mut(object)["spec"]["replicas"] = json!(0);
            }
        }
    }
    // StatefulSets the plan does not touch (already as the lifecycle wants them) are scaled
    // down too: the observed object is sent back whole with 0 replicas (never a partial apply,
    // which would drop the rest of it).
    let planned: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { object } if object["kind"] == "StatefulSet" => {
                object["metadata"]["name"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .collect();
    for sts in &obs.stateful_sets {
        let Some(n) = sts.metadata.name.as_deref() else {
            continue;
        };
        if label(&sts.metadata, labels::CLUSTER) != Some(cluster)
            || label(&sts.metadata, labels::INSTANCE).is_none()
            || planned.iter().any(|p| p == n)
            || sts.spec.as_ref().and_then(|s| s.replicas) == Some(0)
        {
            continue;
        }
        let Ok(mut v) = serde_json::to_value(sts) else {
            continue;
        };
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "generation",
                "managedFields",
            ] {
                m.remove(k);
            }
        }
        v["apiVersion"] = json!("apps/v1");
        v["kind"] = json!("StatefulSet");
        v["spec"]["replicas"] = json!(0);
        plan.push(Action::Apply { object: v.into() });
    }
}
