//! PerconaPGRestore: phases, the gate the lifecycle obeys, one at a time, waiting for a
//! backup, deadlines, cancellation, and the bootstrap of a cluster created from a backup.

mod backup_common;

use backup_common::*;
use serde_json::json;
use tusk_core::Action;
use tusk_core::backup::restore::{TARGET_INSTANCE, bootstrap_restore_name};
use tusk_core::backup::{
    self, RestorePhase, annotations, enforce_restore_gate, finalizers, restore_gate,
};

fn snap(name: &str, v: &serde_json::Value) {
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots")}, {
        insta::assert_yaml_snapshot!(name, v);
    });
}

fn world() -> World {
    let mut cr = cluster();
    cr.spec.backups.pgbackrest.as_mut().unwrap().repos[0].schedules = None;
    let mut w = World::new(cr);
    w.add_instances(&["c1-instance1-bbbb", "c1-instance1-aaaa"]);
    w
}

fn restore_jobs(w: &World) -> Vec<String> {
    w.obs
        .jobs
        .iter()
        .filter(|j| {
            j.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(backup::labels::PG_RESTORE))
        })
        .filter_map(|j| j.metadata.name.clone())
        .collect()
}

#[test]
fn in_place_pitr_restore_runs_through_its_phases() {
    let mut w = world();
    assert_eq!(restore_gate(&w.obs), None);
    w.add_restore(
        "r1",
        "repo1",
        &["--type=time", "--target=\"2027-01-15 08:30:00+00\""],
    );
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Starting"));
    let r = w.restore("r1");
    // The primary's instance receives the data.
    assert_eq!(
        r.metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(TARGET_INSTANCE)
            .map(String::as_str),
        Some("c1-instance1-bbbb")
    );
    assert!(
        r.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&finalizers::DELETE_RESTORE.to_string())
    );
    let gate = restore_gate(&w.obs).unwrap();
    assert_eq!(gate.phase, RestorePhase::StopInstances);
    assert_eq!(gate.startup_instance.as_deref(), Some("c1-instance1-bbbb"));

    // Pods still run: nothing else happens.
    w.now += 30;
    assert!(w.plan().writes().next().is_none());
    assert!(w.obs.jobs.is_empty());

    w.stop_instance_pods();
    let p = w.plan();
    let jobs = applied(&p, "Job");
    assert_eq!(jobs.len(), 2, "restore + one re-init");
    snap("restore_job_pitr", &jobs[0]);
    snap("restore_reinit_job", &jobs[1]);
    w.apply(&p);
    assert_eq!(w.restore_state("r1"), Some("Running"));
    assert_eq!(restore_gate(&w.obs).unwrap().phase, RestorePhase::Restoring);
    assert_eq!(
        w.restore("r1").status.as_ref().unwrap().job_name.as_deref(),
        jobs[0]["metadata"]["name"].as_str()
    );
    assert!(w.plan().writes().next().is_none());

    for j in restore_jobs(&w) {
        w.job_complete(&j);
    }
    w.now += 300;
    let p = w.plan();
    let mut eps = deleted(&p, "Endpoints");
    eps.sort();
    assert_eq!(eps, vec!["c1-ha", "c1-ha-config"]);
    w.apply(&p);
    assert_eq!(w.restore_state("r1"), Some("Succeeded"));
    assert_eq!(
        w.restore("r1")
            .status
            .as_ref()
            .unwrap()
            .completed
            .as_ref()
            .unwrap()
            .0,
        ts(w.now)
    );
    assert_eq!(restore_gate(&w.obs), None);
    assert!(w.plan().writes().next().is_none());
}

#[test]
fn second_restore_waits_with_a_clear_reason() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.now += 1;
    w.add_restore("r2", "repo1", &[]);
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Starting"));
    assert_eq!(w.restore_state("r2"), None);
    let why = w
        .restore("r2")
        .metadata
        .annotations
        .as_ref()
        .unwrap()
        .get(annotations::RESTORE_WAITING)
        .cloned()
        .unwrap();
    assert!(why.contains("restore r1"), "{why}");
    assert_eq!(
        w.events
            .iter()
            .filter(|(r, _)| r == "RestoreWaiting")
            .count(),
        1
    );
    // Quiet while waiting.
    assert!(w.plan().writes().next().is_none());
    // r1 finishes; r2 goes.
    w.stop_instance_pods();
    w.apply(&w.plan());
    for j in restore_jobs(&w) {
        w.job_complete(&j);
    }
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Succeeded"));
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r2"), Some("Starting"));
    assert!(
        w.restore("r2")
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(annotations::RESTORE_WAITING)
            .is_none_or(|v| v.is_empty())
    );
}

#[test]
fn restore_requested_during_a_backup_waits_and_blocks_newer_backups() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Starting"));
    w.now += 1;
    w.add_restore("r1", "repo1", &[]);
    w.now += 1;
    w.add_backup("b2", "repo1", &[]);
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), None);
    assert!(
        w.restore("r1").metadata.annotations.as_ref().unwrap()[annotations::RESTORE_WAITING]
            .contains("backup b1")
    );
    assert!(
        restore_gate(&w.obs).is_none(),
        "a waiting restore does not stop the instances"
    );
    let job = w.job_name_of("b1");
    w.job_complete(&job);
    w.apply(&w.plan());
    // The restore was first in line: it starts, and b2 waits for it.
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Starting"));
    assert_eq!(w.state("b2"), None);
    let reason = condition_reason(w.backup("b2"));
    assert!(
        matches!(
            reason.as_deref(),
            Some("RestoreInProgress" | "RestoreQueued")
        ),
        "{reason:?}"
    );
}

#[test]
fn failed_restore_job_fails_and_lifts_the_gate() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.apply(&w.plan());
    w.stop_instance_pods();
    w.apply(&w.plan());
    let jobs = restore_jobs(&w);
    w.job_fail(&jobs[0], "BackoffLimitExceeded");
    let p = w.plan();
    w.apply(&p);
    assert_eq!(w.restore_state("r1"), Some("Failed"));
    assert!(restore_gate(&w.obs).is_none());
    assert!(
        w.events
            .iter()
            .any(|(r, m)| r == "RestoreFailed" && m.contains("BackoffLimitExceeded"))
    );
}

#[test]
fn instances_that_never_stop_fail_the_restore_in_bounded_time() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.apply(&w.plan());
    w.now += backup::STOP_WAIT_LIMIT.as_secs() as i64 + 1;
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Failed"));
    assert!(w.obs.jobs.is_empty(), "nothing was restored");
}

#[test]
fn restore_deadline_deletes_its_jobs() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.obs.restores[0].metadata.annotations =
        Some([(annotations::DEADLINE.to_string(), "900".to_string())].into());
    w.apply(&w.plan());
    w.stop_instance_pods();
    w.apply(&w.plan());
    assert_eq!(w.obs.jobs.len(), 2);
    w.now += 900 + backup::DEADLINE_GRACE.as_secs() as i64 + 1;
    let p = w.plan();
    assert_eq!(deleted(&p, "Job").len(), 2);
    w.apply(&p);
    assert_eq!(w.restore_state("r1"), Some("Failed"));
}

#[test]
fn deleting_a_restore_cancels_it() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.apply(&w.plan());
    w.stop_instance_pods();
    w.apply(&w.plan());
    w.delete_restore("r1");
    let p = w.plan();
    assert_eq!(deleted(&p, "Job").len(), 2);
    assert!(p.actions.iter().any(|a| matches!(a, Action::RemoveFinalizer { finalizer, .. } if finalizer == finalizers::DELETE_RESTORE)));
    w.apply(&p);
    assert!(w.obs.restores.is_empty());
    assert!(restore_gate(&w.obs).is_none());
}

#[test]
fn crash_between_every_action_of_a_restore_still_converges() {
    // Apply only the first action of each plan: the slowest possible progress.
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    for _ in 0..40 {
        let p = w.plan();
        if let Some(a) = p.writes().next() {
            w.apply_one(a);
            w.obs.normalize();
        }
        if w.restore_state("r1") == Some("Starting") && restore_gate(&w.obs).is_some() {
            w.stop_instance_pods();
        }
        for j in restore_jobs(&w) {
            if !backup::job_outcome(
                w.obs
                    .jobs
                    .iter()
                    .find(|x| x.metadata.name.as_deref() == Some(j.as_str())),
            )
            .is_finished()
            {
                w.job_complete(&j);
            }
        }
    }
    assert_eq!(w.restore_state("r1"), Some("Succeeded"));
    let mut created = w.jobs_created.clone();
    created.dedup();
    assert_eq!(created.len(), 2);
}

#[test]
fn gate_is_enforced_on_the_plan() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.apply(&w.plan());
    let mut p = tusk_core::Plan::new();
    p.push(Action::Apply { object: json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "c1-instance1-aaaa", "labels": {"postgres-operator.crunchydata.com/cluster": "c1", "postgres-operator.crunchydata.com/instance": "c1-instance1-aaaa"}},
        "spec": {"replicas": 1},
    }).into()});
    p.push(Action::Apply { object: json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "c1-repo-host", "labels": {"postgres-operator.crunchydata.com/cluster": "c1"}},
        "spec": {"replicas": 1},
    }).into()});
    p.push(Action::Sql {
        pod: tusk_core::ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: None,
            name: "x".into(),
        },
        database: "postgres".into(),
        statements: vec![],
    });
    enforce_restore_gate(&w.obs, &mut p);
    // The SQL is gone; the untouched instance StatefulSet is scaled down as well.
    assert_eq!(p.actions.len(), 3);
    let Action::Apply { object } = &p.actions[2] else {
        panic!()
    };
    assert_eq!(object["metadata"]["name"], "c1-instance1-bbbb");
    assert_eq!(object["spec"]["replicas"], json!(0));
    assert!(object["metadata"].get("uid").is_none());
    let Action::Apply { object } = &p.actions[0] else {
        panic!()
    };
    assert_eq!(object["spec"]["replicas"], json!(0));
    let Action::Apply { object } = &p.actions[1] else {
        panic!()
    };
    assert_eq!(
        object["spec"]["replicas"],
        json!(1),
        "the repo host keeps running"
    );
}

#[test]
fn cluster_from_a_backup_bootstraps_through_a_restore() {
    let mut cr = cluster();
    cr.status = None;
    cr.spec.data_source = Some(
        serde_yaml::from_str(
            r#"
pgbackrest:
  stanza: db
  configuration:
    - secret: {name: source-s3-creds}
  global:
    repo1-path: /pgbackrest/source/repo1
  options: ["--type=time", '--target="2027-01-01 00:00:00+00"']
  repo:
    name: repo1
    s3:
      bucket: source-bucket
      endpoint: s3.us-east-1.amazonaws.com
      region: us-east-1
"#,
        )
        .unwrap(),
    );
    let mut w = World::new(cr);
    // From the very first reconcile the instances are held back.
    let gate = restore_gate(&w.obs).unwrap();
    assert_eq!(gate.restore, "c1-bootstrap");
    let p = w.plan();
    let restores = applied(&p, "PerconaPGRestore");
    assert_eq!(restores.len(), 1);
    snap("restore_bootstrap_object", &restores[0]);
    w.apply(&p);
    assert!(restore_gate(&w.obs).is_some());
    // The lifecycle made the (stopped) StatefulSets and PVCs.
    w.add_instances(&["c1-instance1-cccc"]);
    w.stop_instance_pods();
    w.apply(&w.plan());
    assert_eq!(
        w.restore_state(&bootstrap_restore_name("c1")),
        Some("Starting")
    );
    let p = w.plan();
    let jobs = applied(&p, "Job");
    assert_eq!(jobs.len(), 1);
    snap("restore_bootstrap_job", &jobs[0]);
    w.apply(&p);
    w.job_complete(jobs[0]["metadata"]["name"].as_str().unwrap());
    w.apply(&w.plan());
    assert_eq!(w.restore_state("c1-bootstrap"), Some("Succeeded"));
    assert!(restore_gate(&w.obs).is_none());
    // Once it ran, no second bootstrap even if the restore object is deleted.
    w.obs.pods.push(serde_json::from_value(json!({"metadata": {"name": "c1-instance1-cccc-0", "labels": {
        "postgres-operator.crunchydata.com/cluster": "c1", "postgres-operator.crunchydata.com/instance": "c1-instance1-cccc"}}})).unwrap());
    w.obs.restores.clear();
    assert!(restore_gate(&w.obs).is_none());
    assert!(applied(&w.plan(), "PerconaPGRestore").is_empty());
}

/// The whole reconcile (not only the backup planner) while a restore holds the cluster: the
/// lifecycle itself keeps every instance at 0 replicas, marks the instance receiving the data
/// to start first, and sends nothing to the primary. Once the restore finished, only the
/// marked instance starts until it is ready.
#[test]
fn lifecycle_honours_the_restore_gate() {
    use tusk_core::labels::annotations::STARTUP_INSTANCE;
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Starting"));
    let target = w
        .restore("r1")
        .metadata
        .annotations
        .as_ref()
        .unwrap()
        .get(TARGET_INSTANCE)
        .cloned()
        .unwrap();
    let plan = tusk_core::reconcile(&w.obs, &w.env());
    let sts = applied(&plan, "StatefulSet");
    let instances: Vec<&serde_json::Value> = sts
        .iter()
        .filter(|s| {
            s["metadata"]["labels"]
                .get("postgres-operator.crunchydata.com/instance")
                .is_some()
        })
        .collect();
    assert_eq!(instances.len(), 2, "both instances are applied: {sts:#?}");
    for s in &instances {
        assert_eq!(
            s["spec"]["replicas"],
            json!(0),
            "instance runs during a restore: {s:#}"
        );
        let marked = s["metadata"]["annotations"][STARTUP_INSTANCE] == json!("true");
        assert_eq!(
            marked,
            s["metadata"]["name"] == json!(target),
            "only the restore target {target} is the startup instance: {s:#}"
        );
    }
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Sql { .. } | Action::Switchover { .. })),
        "nothing may reach the primary during a restore: {:#?}",
        plan.actions
    );

    // After the restore: the marked target starts alone (its pod is not ready yet).
    w.obs.restores.clear();
    w.stop_instance_pods();
    for s in &mut w.obs.stateful_sets {
        if s.metadata.name.as_deref() == Some(target.as_str()) {
            s.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(STARTUP_INSTANCE.into(), "true".into());
        }
    }
    let plan = tusk_core::reconcile(&w.obs, &w.env());
    for s in applied(&plan, "StatefulSet") {
        if s["metadata"]["labels"]
            .get("postgres-operator.crunchydata.com/instance")
            .is_none()
        {
            continue;
        }
        let want = if s["metadata"]["name"] == json!(target) {
            1
        } else {
            0
        };
        assert_eq!(
            s["spec"]["replicas"],
            json!(want),
            "after the restore: {s:#}"
        );
    }
}

fn progressing(w: &World, name: &str) -> (String, String, String) {
    let st = w.restore(name).status.clone().unwrap_or_default();
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == backup::restore::PROGRESSING)
        .unwrap_or_else(|| panic!("restore {name} has no progress condition: {st:#?}"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// Progress and the reason of a failure are in the restore's status, not only in Events.
#[test]
fn restore_status_reports_progress_and_failure() {
    let mut w = world();
    w.add_restore("r1", "repo1", &[]);
    w.now += 1;
    w.add_restore("r2", "repo1", &[]);
    w.apply(&w.plan());
    // A waiting restore says why.
    assert_eq!(w.restore_state("r2"), None);
    let (s, reason, msg) = progressing(&w, "r2");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "Waiting"));
    assert!(msg.contains("restore r1"), "{msg}");
    let (s, reason, msg) = progressing(&w, "r1");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("True", "StoppingInstances"),
        "{msg}"
    );
    let since = w.restore("r1").status.clone().unwrap().conditions[0]
        .last_transition_time
        .clone();
    w.stop_instance_pods();
    w.now += 20;
    w.apply(&w.plan());
    let (s, reason, msg) = progressing(&w, "r1");
    assert_eq!((s.as_str(), reason.as_str()), ("True", "Restoring"));
    assert!(msg.contains("0 of 2 Jobs finished"), "{msg}");
    assert_eq!(
        w.restore("r1").status.clone().unwrap().conditions[0].last_transition_time,
        since,
        "the condition's status did not change, nor does its transition time"
    );
    let jobs = restore_jobs(&w);
    let reinit = jobs.iter().find(|j| j.contains("reinit")).cloned();
    let main = jobs
        .iter()
        .find(|j| !j.contains("reinit"))
        .cloned()
        .unwrap();
    if let Some(r) = reinit {
        w.job_complete(&r);
        w.apply(&w.plan());
        let (_, _, msg) = progressing(&w, "r1");
        assert!(msg.contains("1 of 2 Jobs finished"), "{msg}");
    }
    w.job_fail(&main, "BackoffLimitExceeded");
    w.apply(&w.plan());
    assert_eq!(w.restore_state("r1"), Some("Failed"));
    let (s, reason, msg) = progressing(&w, "r1");
    assert_eq!((s.as_str(), reason.as_str()), ("False", "RestoreFailed"));
    assert!(msg.contains("BackoffLimitExceeded"), "{msg}");
    let err = w
        .restore("r1")
        .status
        .clone()
        .unwrap()
        .error
        .unwrap_or_default();
    assert!(
        err.contains(&main) && err.contains("BackoffLimitExceeded"),
        "{err}"
    );
    let (s, reason, _) = progressing(&w, "r1");
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "RestoreFailed"),
        "settled"
    );
}

#[test]
fn restore_with_a_target_pgbackrest_would_refuse_fails_before_any_instance_stops() {
    let mut w = world();
    w.add_restore("r1", "repo1", &["--type=time", "--target=yesterday"]);
    let p = w.plan();
    w.apply(&p);
    assert_eq!(w.restore_state("r1"), Some("Failed"));
    assert!(restore_gate(&w.obs).is_none(), "the cluster keeps running");
    assert!(
        restore_jobs(&w).is_empty(),
        "no restore Job: {:?}",
        p.actions
    );
    let r = w.restore("r1");
    let error = r
        .status
        .as_ref()
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(
        error.contains("spec.options") && error.contains("YYYY-MM-DD HH:MM:SS"),
        "{error}"
    );
    assert!(
        w.events
            .iter()
            .any(|(reason, m)| reason == "InvalidSpec" && m.contains("is not a time"))
    );
    // A failed request stays failed and starts nothing later.
    let p = w.plan();
    w.apply(&p);
    assert_eq!(w.restore_state("r1"), Some("Failed"));
    assert!(restore_jobs(&w).is_empty());
    assert!(restore_gate(&w.obs).is_none());
}
