//! The PerconaPGBackup state machine: Job transitions, deadlines, cancellation, one at a
//! time, waiting on the cluster, retention, the delete-backups finalizer, and crash safety.

mod backup_common;

use backup_common::*;
use proptest::prelude::*;
use serde_json::json;
use tusk_core::Action;
use tusk_core::api::ClusterState;
use tusk_core::backup::{self, finalizers};

fn snap(name: &str, v: &serde_json::Value) {
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots")}, {
        insta::assert_yaml_snapshot!(name, v);
    });
}

/// A cluster without schedules, so only the backups the test creates exist.
fn world() -> World {
    let mut cr = cluster();
    cr.spec.backups.pgbackrest.as_mut().unwrap().repos[0].schedules = None;
    World::new(cr)
}

#[test]
fn manual_backup_runs_to_success() {
    let mut w = world();
    w.add_backup("b1", "repo2", &["--type=full"]);
    let p = w.plan();
    let jobs = applied(&p, "Job");
    assert_eq!(jobs.len(), 1);
    snap("backup_job_s3_repo", &jobs[0]);
    w.apply(&p);
    assert_eq!(w.state("b1"), Some("Starting"));
    let b = w.backup("b1");
    assert!(
        b.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&finalizers::DELETE_BACKUP.to_string())
    );
    let st = serde_json::to_value(b.status.as_ref().unwrap()).unwrap();
    snap("backup_status_starting", &st);

    let job = w.job_name_of("b1");
    w.now += 5;
    w.job_start(&job);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Running"));
    // Nothing more while it runs (besides the requeue).
    assert!(w.plan().writes().next().is_none());
    assert!(w.plan().requeue_after().is_some());

    w.now += 100;
    w.job_complete(&job);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Succeeded"));
    let st = w.backup("b1").status.clone().unwrap();
    assert_eq!(st.completed.unwrap().0, ts(w.now));
    assert_eq!(st.destination.as_deref(), Some("s3://tusk-backups/tusk/c1"));
    assert_eq!(st.storage_type.as_deref(), Some("s3"));
    assert_eq!(st.backup_type.as_deref(), Some("full"));
    assert!(w.plan().writes().next().is_none());
    assert!(w.events.iter().any(|(r, _)| r == "BackupSucceeded"));
}

#[test]
fn pgbackrest_info_fills_backup_name_and_restorable_time() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let job = w.job_name_of("b1");
    w.job_complete(&job);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Succeeded"));
    assert!(
        w.backup("b1")
            .status
            .as_ref()
            .unwrap()
            .backup_name
            .is_none()
    );
    // The info ConfigMap appears later: the status is completed from it.
    let info = json!([{"name": "db", "backup": [
        {"label": "20270115-080100F", "type": "full", "annotation": {"percona.com/backup-name": "b1"},
         "timestamp": {"start": T0 + 60, "stop": T0 + 120}, "database": {"id": 1, "repo-key": 1}}
    ]}]);
    w.obs.config_maps.push(serde_json::from_value(json!({
        "metadata": {"name": "c1-pgbackrest-info", "namespace": "pg", "labels": {"postgres-operator.crunchydata.com/cluster": "c1"}},
        "data": {"info.json": info.to_string()},
    })).unwrap());
    w.apply(&w.plan());
    let st = w.backup("b1").status.clone().unwrap();
    assert_eq!(st.backup_name.as_deref(), Some("20270115-080100F"));
    assert_eq!(st.backup_type.as_deref(), Some("full"));
    assert_eq!(
        st.latest_restorable_time.as_deref(),
        Some("2027-01-15 08:02:00.000000+0000")
    );
    assert!(w.plan().writes().next().is_none());

    // pgBackRest expires it (another backup of repo1 remains): the object goes.
    let info = json!([{"name": "db", "backup": [
        {"label": "20270116-080100F", "type": "full", "timestamp": {"start": T0, "stop": T0}, "database": {"repo-key": 1}}
    ]}]);
    w.obs.config_maps[0]
        .data
        .as_mut()
        .unwrap()
        .insert("info.json".into(), info.to_string());
    let p = w.plan();
    assert_eq!(deleted(&p, "PerconaPGBackup"), vec!["b1"]);
    w.apply(&p);
    // Our finalizer is released on the next reconcile, then the object is gone.
    w.settle(3);
    assert!(w.obs.backups.is_empty());
}

/// One backup of repo1 as `pgbackrest info` lists it.
fn info_entry(label: &str, backup: Option<&str>, stop: i64) -> serde_json::Value {
    let mut b = json!({"label": label, "type": "full",
        "timestamp": {"start": stop - 60, "stop": stop}, "database": {"id": 1, "repo-key": 1}});
    if let Some(n) = backup {
        b["annotation"] = json!({"percona.com/backup-name": n});
    }
    b
}

/// Whether a plan asks the driver to read `pgbackrest info`.
fn asks_for_info(plan: &tusk_core::Plan) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a, Action::RefreshBackupInfo { .. }))
}

/// Runs backup `name` on repo1 to Succeeded (Job created, completed, status patched).
fn run_backup(w: &mut backup_common::World, name: &str) {
    w.add_backup(name, "repo1", &[]);
    w.apply(&w.plan());
    let job = w.job_name_of(name);
    w.now += 30;
    w.job_complete(&job);
    w.apply(&w.plan());
    assert_eq!(w.state(name), Some("Succeeded"));
}

#[test]
fn a_succeeded_backup_is_named_from_a_fresh_pgbackrest_info() {
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa", "c1-instance1-bbbb"]);
    run_backup(&mut w, "b1");
    // The repo now holds b1; the operator has never read the repo.
    w.repo_info =
        json!([{"name": "db", "backup": [info_entry("20270115-080100F", Some("b1"), T0 + 90)]}]);
    w.now += 1;
    let p = w.plan();
    let reads: Vec<_> = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::RefreshBackupInfo { .. }))
        .collect();
    assert_eq!(reads.len(), 1, "{p:#?}");
    let Action::RefreshBackupInfo {
        pod,
        container,
        command,
        config_map,
    } = reads[0]
    else {
        unreachable!()
    };
    assert_eq!(pod.name, "c1-instance1-aaaa-0", "runs on the primary");
    assert_eq!(container, "database");
    assert_eq!(
        command,
        &["pgbackrest", "info", "--stanza=db", "--output=json"]
    );
    assert_eq!(config_map["metadata"]["name"], "c1-pgbackrest-info");
    assert_eq!(
        config_map["metadata"]["annotations"][backup::retention::REFRESHED_AT],
        backup::rfc3339(ts(w.now))
    );
    assert_eq!(
        config_map["metadata"]["ownerReferences"][0]["kind"], "PerconaPGCluster",
        "the info goes with the cluster"
    );
    assert!(
        config_map.get("data").is_none(),
        "the driver fills the data"
    );
    w.apply(&p);
    w.apply(&w.plan());
    let st = w.backup("b1").status.clone().unwrap();
    assert_eq!(st.backup_name.as_deref(), Some("20270115-080100F"));
    // Read once: nothing more to do.
    w.now += 600;
    assert!(w.plan().writes().next().is_none(), "{:#?}", w.plan());
    assert_eq!(w.info_reads.len(), 1);
}

#[test]
fn an_info_read_that_misses_the_backup_is_not_repeated_until_another_completes() {
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    run_backup(&mut w, "b1");
    w.now += 1;
    w.apply(&w.plan());
    assert_eq!(w.info_reads.len(), 1);
    // The repo did not list it (the info is empty): no loop of reads.
    for _ in 0..5 {
        w.now += 120;
        assert!(w.plan().writes().next().is_none(), "{:#?}", w.plan());
    }
    // The next backup that completes after the read triggers one more.
    w.now += 1;
    run_backup(&mut w, "b2");
    w.now += 1;
    w.apply(&w.plan());
    assert_eq!(w.info_reads.len(), 2);
}

#[test]
fn the_read_after_a_new_backup_shows_what_retention_expired() {
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    run_backup(&mut w, "b1");
    w.repo_info = json!([{"name": "db", "backup": [info_entry("L1", Some("b1"), T0 + 90)]}]);
    w.now += 1;
    w.settle(3);
    assert_eq!(
        w.backup("b1")
            .status
            .as_ref()
            .unwrap()
            .backup_name
            .as_deref(),
        Some("L1")
    );
    // b2 completes; pgBackRest's retention expired b1 at its end.
    w.now += 60;
    run_backup(&mut w, "b2");
    w.repo_info = json!([{"name": "db", "backup": [info_entry("L2", Some("b2"), w.now)]}]);
    w.now += 1;
    w.settle(5);
    assert_eq!(w.info_reads.len(), 2);
    assert!(
        w.obs
            .backups
            .iter()
            .all(|b| b.metadata.name.as_deref() != Some("b1"))
    );
    assert_eq!(
        w.backup("b2")
            .status
            .as_ref()
            .unwrap()
            .backup_name
            .as_deref(),
        Some("L2")
    );
    assert!(w.events.iter().any(|(r, _)| r == "BackupExpired"));
}

#[test]
fn no_info_read_without_a_ready_primary_or_when_someone_else_keeps_the_info() {
    // No database pod: nothing to run pgBackRest in.
    let mut w = world();
    run_backup(&mut w, "b1");
    w.now += 1;
    assert!(!asks_for_info(&w.plan()));
    // An info ConfigMap without tusk's read time is kept by a sidecar: tusk leaves it alone.
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    w.obs.config_maps.push(
        serde_json::from_value(json!({
            "metadata": {"name": "c1-pgbackrest-info", "namespace": "pg"},
            "data": {"info.json": "[]"},
        }))
        .unwrap(),
    );
    run_backup(&mut w, "b1");
    w.now += 1;
    assert!(!asks_for_info(&w.plan()));
}

#[test]
fn empty_info_never_deletes() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let job = w.job_name_of("b1");
    w.job_complete(&job);
    w.apply(&w.plan());
    w.obs.backups[0].status.as_mut().unwrap().backup_name = Some("L1".into());
    w.obs.config_maps.push(
        serde_json::from_value(json!({
            "metadata": {"name": "c1-pgbackrest-info", "namespace": "pg"},
            "data": {"info.json": "[{\"name\":\"db\",\"backup\":[]}]"},
        }))
        .unwrap(),
    );
    assert!(deleted(&w.plan(), "PerconaPGBackup").is_empty());
}

#[test]
fn failed_job_fails_the_backup_with_its_reason() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let job = w.job_name_of("b1");
    w.job_start(&job);
    w.apply(&w.plan());
    w.job_fail(&job, "BackoffLimitExceeded");
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Failed"));
    let err = w.backup_error("b1");
    assert!(err.starts_with("BackoffLimitExceeded"), "{err}");
    assert!(err.contains(&job), "{err}");
    assert!(
        w.events
            .iter()
            .any(|(r, m)| r == "BackupFailed" && m.contains("BackoffLimitExceeded"))
    );
}

#[test]
fn deadline_fails_and_deletes_the_job() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    let mut b = w.obs.backups[0].clone();
    b.metadata.annotations =
        Some([(backup::annotations::DEADLINE.to_string(), "600".to_string())].into());
    w.obs.backups[0] = b;
    let p = w.plan();
    assert_eq!(
        applied(&p, "Job")[0]["spec"]["activeDeadlineSeconds"],
        json!(600)
    );
    w.apply(&p);
    let job = w.job_name_of("b1");
    w.job_start(&job);
    w.apply(&w.plan());
    // The Job never reports (its controller is gone): within the grace nothing happens...
    w.now += 600 + 60;
    assert!(w.plan().writes().next().is_none());
    // ...after it the core gives up on its own.
    w.now += 120;
    let p = w.plan();
    assert_eq!(deleted(&p, "Job"), vec![job.clone()]);
    w.apply(&p);
    assert_eq!(w.state("b1"), Some("Failed"));
    assert!(w.backup_error("b1").starts_with("DeadlineExceeded"));
}

#[test]
fn deleting_a_running_backup_cancels_it() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let job = w.job_name_of("b1");
    w.job_start(&job);
    w.apply(&w.plan());
    w.delete_backup("b1");
    let p = w.plan();
    assert_eq!(deleted(&p, "Job"), vec![job]);
    assert!(p.actions.iter().any(|a| matches!(a, Action::RemoveFinalizer { finalizer, .. } if finalizer == finalizers::DELETE_BACKUP)));
    w.apply(&p);
    assert!(w.obs.backups.is_empty());
    assert!(w.obs.jobs.is_empty());
}

#[test]
fn only_one_backup_at_a_time_oldest_first() {
    let mut w = world();
    w.add_backup("b-zeta", "repo1", &[]);
    w.now += 1;
    w.add_backup("b-alpha", "repo2", &[]);
    w.apply(&w.plan());
    assert_eq!(w.state("b-zeta"), Some("Starting"));
    assert_eq!(w.state("b-alpha"), None);
    assert_eq!(
        condition_reason(w.backup("b-alpha")).as_deref(),
        Some("BackupInProgress")
    );
    assert_eq!(w.obs.jobs.len(), 1);
    // Repeated reconciles keep it that way.
    w.settle(5);
    assert_eq!(w.obs.jobs.len(), 1);
    let job = w.job_name_of("b-zeta");
    w.job_complete(&job);
    w.apply(&w.plan());
    assert_eq!(w.state("b-zeta"), Some("Succeeded"));
    w.apply(&w.plan());
    assert_eq!(w.state("b-alpha"), Some("Starting"));
}

#[test]
fn an_unfinished_foreign_backup_job_holds_the_cluster() {
    let mut w = world();
    w.obs.jobs.push(serde_json::from_value(json!({
        "metadata": {"name": "c1-backup-replica", "namespace": "pg", "uid": "u",
            "labels": {"postgres-operator.crunchydata.com/cluster": "c1", "postgres-operator.crunchydata.com/pgbackrest-backup": "replica-create"}},
        "status": {"active": 1},
    })).unwrap());
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), None);
    assert_eq!(
        condition_reason(w.backup("b1")).as_deref(),
        Some("BackupInProgress")
    );
}

#[test]
fn paused_cluster_waits_with_a_reason_then_gives_up() {
    let mut w = world();
    w.obs.cluster.spec.pause = Some(true);
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let b = w.backup("b1");
    assert_eq!(w.state("b1"), None);
    let c = &b.status.as_ref().unwrap().conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("BackupLeaseAcquired", "False", "ClusterPaused")
    );
    assert!(c.message.contains("paused"), "{}", c.message);
    assert_eq!(
        w.events
            .iter()
            .filter(|(r, _)| r == "BackupWaiting")
            .count(),
        1
    );
    // Waiting is quiet: no repeated writes or events.
    w.now += 60;
    assert!(w.plan().writes().next().is_none());
    w.now += backup::READY_WAIT_LIMIT.as_secs() as i64;
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Failed"));
    assert!(w.obs.jobs.is_empty());
}

#[test]
fn initializing_cluster_waits_and_then_runs() {
    let mut w = world();
    w.obs.cluster.status.as_mut().unwrap().state = Some(ClusterState::Initializing);
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    assert_eq!(
        condition_reason(w.backup("b1")).as_deref(),
        Some("ClusterNotReady")
    );
    w.obs.cluster.status.as_mut().unwrap().state = Some(ClusterState::Ready);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Starting"));
    assert_eq!(
        condition_reason(w.backup("b1")).as_deref(),
        Some("Acquired")
    );
}

#[test]
fn impossible_requests_fail_at_once() {
    let mut w = world();
    w.add_backup("b1", "repo3", &[]);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Failed"));
    assert!(w.backup_error("b1").contains("repo3 is not configured"));
    // An option pgBackRest would refuse fails too, naming the option, and starts no Job.
    w.add_backup("b2", "repo1", &["--type=weekly"]);
    let p = w.plan();
    w.apply(&p);
    assert_eq!(w.state("b2"), Some("Failed"));
    let error = w.backup_error("b2");
    assert!(
        error.contains("spec.options[0]") && error.contains("use full, diff or incr"),
        "{error}"
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| format!("{a:?}").contains("\"Job\"")),
        "no Job for an invalid request"
    );
}

#[test]
fn a_lost_job_is_recreated_while_starting_and_fails_while_running() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let job = w.job_name_of("b1");
    w.obs.jobs.clear();
    assert_eq!(applied_jobs(&w.plan()), vec![job.clone()]);
    w.apply(&w.plan());
    w.job_start(&job);
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Running"));
    w.obs.jobs.clear();
    w.apply(&w.plan());
    assert_eq!(w.state("b1"), Some("Failed"));
    assert!(w.backup_error("b1").starts_with("JobLost"));
}

#[test]
fn a_recreated_backup_of_the_same_name_gets_a_new_job() {
    let mut w = world();
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let first = w.job_name_of("b1");
    w.delete_backup("b1");
    w.apply(&w.plan());
    assert!(w.obs.backups.is_empty());
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    assert_ne!(w.job_name_of("b1"), first);
}

#[test]
fn delete_backups_finalizer_runs_stanza_delete_first() {
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    w.add_backup("b1", "repo1", &[]);
    w.apply(&w.plan());
    let j = w.job_name_of("b1");
    w.job_complete(&j);
    w.apply(&w.plan());
    let cr = &mut w.obs.cluster;
    cr.metadata.finalizers = Some(vec![finalizers::DELETE_BACKUPS.into()]);
    cr.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        ts(w.now),
    ));
    let run = |w: &World| {
        let mut p = tusk_core::Plan::new();
        backup::finalize_backups(&w.obs, &w.env(), &mut p);
        p
    };
    let p = run(&w);
    let jobs = applied(&p, "Job");
    assert_eq!(jobs.len(), 1);
    snap("backup_stanza_delete_job", &jobs[0]);
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::RemoveFinalizer { .. }))
    );
    w.apply(&p);
    let name = jobs[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert!(
        !run(&w)
            .actions
            .iter()
            .any(|a| matches!(a, Action::RemoveFinalizer { .. }))
    );
    w.job_complete(&name);
    let p = run(&w);
    assert_eq!(deleted(&p, "PerconaPGBackup"), vec!["b1"]);
    assert!(p.actions.iter().any(|a| matches!(a, Action::RemoveFinalizer { finalizer, .. } if finalizer == finalizers::DELETE_BACKUPS)));
}

#[test]
fn backup_job_on_primary_without_repo_host() {
    let mut cr = cluster();
    cr.spec.backups.pgbackrest.as_mut().unwrap().repos.remove(0);
    let mut w = World::new(cr);
    w.add_backup("b1", "repo2", &["--type=incr"]);
    let jobs = applied(&w.plan(), "Job");
    let env = jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    let get = |n: &str| {
        env.iter().find(|e| e["name"] == n).unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(get("CONTAINER"), "database");
    assert!(get("SELECTOR").contains("role=primary"));
    assert!(get("COMMAND_OPTS").contains("--repo=2 --type=incr"));
}

#[derive(Debug, Clone)]
enum Ev {
    Reconcile { crash_after: usize },
    Start,
    Complete,
    Fail,
    Tick(i64),
    NewBackup,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        6 => (0usize..6).prop_map(|c| Ev::Reconcile { crash_after: c }),
        2 => Just(Ev::Start),
        1 => Just(Ev::Complete),
        1 => Just(Ev::Fail),
        1 => (1i64..4000).prop_map(Ev::Tick),
        1 => Just(Ev::NewBackup),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any interleaving of reconciles cut short at any action (an operator crash), Job
    /// progress and time: never two backup Jobs at once, every backup has at most one Job,
    /// and once things calm down every backup is finished.
    #[test]
    fn crashes_anywhere_never_run_two_at_once_and_always_finish(events in prop::collection::vec(ev(), 1..60)) {
        let mut w = world();
        w.add_backup("b0", "repo1", &[]);
        let mut n = 1;
        for e in events {
            match e {
                Ev::Reconcile { crash_after } => {
                    let p = w.plan();
                    for a in p.actions.iter().take(crash_after) {
                        w.apply_one(a);
                    }
                    w.obs.normalize();
                }
                Ev::Start | Ev::Complete | Ev::Fail => {
                    let names: Vec<String> = w.obs.jobs.iter().filter_map(|j| j.metadata.name.clone()).collect();
                    for j in names {
                        let done = w.obs.jobs.iter().find(|x| x.metadata.name.as_deref() == Some(j.as_str()))
                            .is_some_and(|x| tusk_core::backup::job_outcome(Some(x)).is_finished());
                        if done { continue; }
                        match e {
                            Ev::Start => w.job_start(&j),
                            Ev::Complete => w.job_complete(&j),
                            _ => w.job_fail(&j, "BackoffLimitExceeded"),
                        }
                    }
                }
                Ev::Tick(s) => w.now += s,
                Ev::NewBackup => { w.add_backup(&format!("b{n}"), "repo1", &[]); n += 1; }
            }
            let unfinished = w.obs.jobs.iter().filter(|j| !tusk_core::backup::job_outcome(Some(j)).is_finished()).count();
            prop_assert!(unfinished <= 1, "two backup Jobs run at once: {:?}", w.obs.jobs.iter().map(|j| &j.metadata.name).collect::<Vec<_>>());
        }
        let mut created = w.jobs_created.clone();
        created.sort();
        created.dedup();
        prop_assert_eq!(created.len(), w.jobs_created.len(), "a Job name was created twice");
        // Calm down: Jobs finish as soon as they exist; everything ends finished.
        for _ in 0..(3 * n + 6) {
            let names: Vec<String> = w.obs.jobs.iter().filter_map(|j| j.metadata.name.clone()).collect();
            for j in names {
                let done = w.obs.jobs.iter().find(|x| x.metadata.name.as_deref() == Some(j.as_str()))
                    .is_some_and(|x| tusk_core::backup::job_outcome(Some(x)).is_finished());
                if !done { w.job_complete(&j); }
            }
            let p = w.plan();
            w.apply(&p);
        }
        for b in &w.obs.backups {
            let s = b.status.as_ref().and_then(|s| s.state);
            prop_assert!(s.is_some_and(|s| s.is_finished()), "{:?} is {:?}", b.metadata.name, s);
        }
        prop_assert!(w.plan().writes().next().is_none());
    }
}

/// The replica-create Job the plan applies, if any.
fn replica_create_job(p: &tusk_core::Plan) -> Option<serde_json::Value> {
    applied(p, "Job").into_iter().find(|j| {
        j.pointer("/metadata/labels/postgres-operator.crunchydata.com~1pgbackrest-backup")
            .and_then(|v| v.as_str())
            == Some("replica-create")
    })
}

#[test]
fn replica_create_backup_runs_once_after_the_primary_is_ready() {
    let mut w = world();
    // No primary yet: nothing to back up from.
    assert!(replica_create_job(&w.plan()).is_none());
    w.add_instances(&["c1-instance1-aaaa", "c1-instance1-bbbb"]);
    let p = w.plan();
    let job = replica_create_job(&p).expect("a replica-create Job once the primary is ready");
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(name, backup::job::replica_create_job_name("c1", "repo1"));
    let script = job.to_string();
    assert!(script.contains("--type=full"), "{script}");
    assert!(script.contains("--repo=1"), "{script}");
    assert_eq!(
        job.pointer("/metadata/ownerReferences/0/kind")
            .and_then(|v| v.as_str()),
        Some("PerconaPGCluster")
    );
    assert!(p.requeue_after().is_some(), "requeues while it runs");
    w.apply(&p);

    // While it runs: not applied again, and a manual backup waits behind it.
    w.job_start(&name);
    w.add_backup("b1", "repo2", &[]);
    let p = w.plan();
    assert!(replica_create_job(&p).is_none());
    assert!(applied(&p, "Job").is_empty(), "one backup Job at a time");

    w.now += 60;
    w.job_complete(&name);
    assert_eq!(
        backup::backups::repo_statuses(&w.obs),
        vec![json!({"name": "repo1", "replicaCreateBackupComplete": true})]
    );
    let p = w.plan();
    assert!(replica_create_job(&p).is_none(), "never twice");
    assert_eq!(applied(&p, "Job").len(), 1, "the manual backup goes next");
}

#[test]
fn replica_create_backup_skipped_when_the_repo_has_a_backup_or_status_says_done() {
    // A succeeded backup of repo1 already is a base for replicas.
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    w.add_backup("b0", "repo1", &[]);
    w.obs.backups[0].status =
        Some(serde_json::from_value(json!({"state": "Succeeded", "jobName": "x"})).unwrap());
    assert!(replica_create_job(&w.plan()).is_none());

    // Recorded in status (sticky after the Job is gone).
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    w.obs.cluster.status = Some(
        serde_json::from_value(json!({"state": "ready", "pgbackrest": {"repos": [
            {"name": "repo1", "replicaCreateBackupComplete": true}]}}))
        .unwrap(),
    );
    assert!(replica_create_job(&w.plan()).is_none());
    assert_eq!(backup::backups::repo_statuses(&w.obs).len(), 1);

    // Paused clusters take no backups.
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    w.obs.cluster.spec.pause = Some(true);
    assert!(replica_create_job(&w.plan()).is_none());
}

/// Plans, applies and starts the replica-create backup Job; its name.
fn start_replica_create(w: &mut backup_common::World) -> String {
    let p = w.plan();
    let name = replica_create_job(&p).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    w.apply(&p);
    w.job_start(&name);
    name
}

#[test]
fn failed_replica_create_backup_is_retried_after_a_pause() {
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    let name = start_replica_create(&mut w);
    w.now += 30;
    w.job_fail(&name, "BackoffLimitExceeded");
    assert!(backup::backups::repo_statuses(&w.obs).is_empty());

    // Kept for a while (its logs say why), with a requeue for the retry.
    let p = w.plan();
    assert!(deleted(&p, "Job").is_empty());
    let after = p.requeue_after().expect("a requeue for the retry");
    assert_eq!(after, backup::backups::REPLICA_CREATE_RETRY);

    w.now += backup::backups::REPLICA_CREATE_RETRY.as_secs() as i64;
    let p = w.plan();
    assert_eq!(deleted(&p, "Job"), vec![name.clone()]);
    assert!(p.actions.iter().any(
        |a| matches!(a, Action::Event { reason, .. } if reason == "ReplicaCreateBackupFailed")
    ));
    w.apply(&p);
    assert!(
        w.obs
            .jobs
            .iter()
            .all(|j| j.metadata.name.as_deref() != Some(&name))
    );
    let p = w.plan();
    assert!(replica_create_job(&p).is_some(), "taken again");
}

/// A backup of the repo succeeded while the failed replica-create Job waited for its retry:
/// the Job is still cleaned up, its Event says no new attempt is made, and none is.
#[test]
fn failed_replica_create_backup_is_not_retried_once_the_repo_has_a_backup() {
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    let name = start_replica_create(&mut w);
    w.now += 30;
    w.job_fail(&name, "BackoffLimitExceeded");
    w.add_backup("b0", "repo1", &[]);
    w.obs.backups[0].status =
        Some(serde_json::from_value(json!({"state": "Succeeded", "jobName": "x"})).unwrap());
    w.now += backup::backups::REPLICA_CREATE_RETRY.as_secs() as i64;
    let p = w.plan();
    assert_eq!(deleted(&p, "Job"), vec![name.clone()]);
    let message = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Event {
                reason, message, ..
            } if reason == "ReplicaCreateBackupFailed" => Some(message.clone()),
            _ => None,
        })
        .expect("the failure is told");
    assert!(
        message.contains("not taken again") && !message.contains("tried again"),
        "{message}"
    );
    w.apply(&p);
    assert!(
        replica_create_job(&w.plan()).is_none(),
        "the repo has a base for replicas"
    );
}

/// The cluster's status says why the replica-create backup failed, and keeps saying it while
/// the next attempt runs (the failed Job and its Event are gone by then), until one succeeds.
#[test]
fn replica_create_failure_stays_in_the_cluster_status_until_an_attempt_succeeds() {
    use backup::backups::{REPLICA_CREATE_CONDITION, replica_create_condition};
    let record = |w: &mut backup_common::World| {
        let c = replica_create_condition(&w.obs, w.env().now);
        let mut status = w
            .obs
            .cluster
            .status
            .as_ref()
            .map(|s| serde_json::to_value(s).unwrap())
            .unwrap_or_else(|| json!({}));
        status["conditions"] = json!(c.clone().into_iter().collect::<Vec<_>>());
        w.obs.cluster.status = Some(serde_json::from_value(status).unwrap());
        c
    };
    let mut w = world();
    w.add_instances(&["c1-instance1-aaaa"]);
    let name = start_replica_create(&mut w);
    assert_eq!(
        record(&mut w),
        None,
        "nothing to say while the first attempt runs"
    );
    w.now += 30;
    w.job_fail(&name, "BackoffLimitExceeded");
    let failed = record(&mut w).expect("a condition after the failure");
    assert_eq!(failed["type"], REPLICA_CREATE_CONDITION);
    assert_eq!(failed["status"], "False");
    assert_eq!(failed["reason"], "RepoBackupFailed");
    let message = failed["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("BackoffLimitExceeded") && message.contains(&name),
        "{message}"
    );

    // The retry deletes the Job and runs a new one: the failure stays on record.
    w.now += backup::backups::REPLICA_CREATE_RETRY.as_secs() as i64;
    let p = w.plan();
    w.apply(&p);
    let p = w.plan();
    w.apply(&p);
    w.job_start(&name);
    w.now += 30;
    assert_eq!(
        record(&mut w),
        Some(failed.clone()),
        "unchanged while it runs"
    );

    w.job_complete(&name);
    let done = record(&mut w).expect("a condition after success");
    assert_eq!(done["status"], "True");
    assert_eq!(done["reason"], "RepoBackupComplete");
    assert_ne!(done["lastTransitionTime"], failed["lastTransitionTime"]);
    // Stable once true: a later reconcile writes the same condition.
    w.now += 600;
    assert_eq!(record(&mut w), Some(done));
}
