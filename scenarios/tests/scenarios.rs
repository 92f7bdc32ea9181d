//! Runs every scenario file, snapshot-tests its timeline, and checks determinism.

use std::path::PathBuf;
use tusk_fake_apiserver::Objects;
use tusk_scenarios::clock::{MINUTE, SECOND, parse_rfc3339};
use tusk_scenarios::script::{Step, parse, run_in, run_scenario};
use tusk_scenarios::{Fault, World, WorldConfig, run_file};

/// A scenario written inline in a test, resolved against the shipped scenarios' folder.
fn parse_inline(text: &str) -> tusk_scenarios::script::Scenario {
    parse(text, &dir().join("x.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs an inline scenario with seed 1 and checks it passed (failures and timeline shown
/// when it did not).
fn run_inline(text: &str) -> tusk_scenarios::script::RunOutcome {
    let out = run_scenario(&parse_inline(text), 1).unwrap();
    assert!(
        out.passed(),
        "{:?}\n{}",
        out.failures,
        out.timeline.join("\n")
    );
    out
}

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
}

fn run(name: &str) {
    let path = dir().join(format!("{name}.yaml"));
    let out = run_file(&path, 1).unwrap_or_else(|e| panic!("{e}"));
    let mut text = out.timeline.join("\n");
    if !out.failures.is_empty() {
        text.push_str("\n\nFAILURES:\n");
        text.push_str(&out.failures.join("\n"));
    }
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("scenario-{name}"), text);
    });
    if out.pending.is_none() {
        assert!(
            out.failures.is_empty(),
            "scenario {name} (replay: tusk sim run scenarios/scenarios/{name}.yaml --seed 1) failed:\n{}",
            out.failures.join("\n")
        );
    }
}

macro_rules! scenario {
    ($f:ident, $n:literal) => {
        #[test]
        fn $f() {
            run($n);
        }
    };
}

scenario!(bootstrap, "bootstrap");
scenario!(pod_loss, "pod-loss");
scenario!(primary_kill_failover, "primary-kill-failover");
scenario!(sync_failover, "sync-failover");
scenario!(switchover, "switchover");
scenario!(rolling_update, "rolling-update");
scenario!(scale_up_down, "scale-up-down");
scenario!(pause_resume, "pause-resume");
scenario!(node_loss, "node-loss");
scenario!(operator_crash_mid_rollout, "operator-crash-mid-rollout");
scenario!(stale_read_during_scale_down, "stale-read-during-scale-down");
scenario!(backup_interruption, "backup-interruption");
scenario!(restore, "restore");
scenario!(cluster_delete, "cluster-delete");
scenario!(cluster_delete_keep_pvcs, "cluster-delete-keep-pvcs");
scenario!(failover_during_backup, "failover-during-backup");
scenario!(switchover_to_named_replica, "switchover-to-named-replica");
scenario!(scale_down_while_partitioned, "scale-down-while-partitioned");
scenario!(pause_during_rollout, "pause-during-rollout");
scenario!(delete_replica_repeatedly, "delete-replica-repeatedly");
scenario!(
    api_throttling_during_scale_up,
    "api-throttling-during-scale-up"
);
scenario!(restore_to_a_time, "restore-to-a-time");
scenario!(repo_host_down, "repo-host-down");
scenario!(pgbouncer_node_loss, "pgbouncer-node-loss");
scenario!(kubelet_lost, "kubelet-lost");
scenario!(disk_full_primary, "disk-full-primary");

/// Writes acknowledged after a point-in-time restore's target are rolled back as asked: the
/// timeline says so, and they are not counted as lost (nor, in synchronous mode, a violation).
#[test]
fn a_point_in_time_restore_rolls_back_writes_without_losing_them() {
    let out = run_file(&dir().join("restore-to-a-time.yaml"), 1).unwrap();
    assert!(out.passed(), "{:?}", out.failures);
    let line = out
        .timeline
        .iter()
        .find(|l| l.contains("rolled back by the restore to-a-time to 2026-01-01T00:02:30Z"))
        .unwrap_or_else(|| panic!("no roll-back line:\n{}", out.timeline.join("\n")));
    let n: usize = line
        .split("workload: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(n > 30, "{line}");
    assert_eq!(out.lost_writes, 0);
}

/// A backup whose primary dies while it runs fails, even though the same pod leads again by
/// the time the Job would have ended (pg_backup_stop needs the session pg_backup_start
/// opened).
#[test]
fn a_backup_fails_when_its_primary_restarts_under_it() {
    let text = "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - wait: {for: replica-create-backup, timeout: 2m}\n  - apply: {apiVersion: pgv2.percona.com/v2, kind: PerconaPGBackup, metadata: {name: b}, spec: {pgCluster: cluster1, repoName: repo1}}\n  - wait: {for: backup=Running, timeout: 1m}\n  - fault: {kind: pod-kill, target: primary}\n  - wait: {for: backup=Failed, timeout: 2m}\n  - wait: {for: ready, timeout: 2m}\nexpect: {max-primary-changes: 0}\n";
    run_inline(text);
}

/// Found by `tusk sim explore --seeds 1000 --start 300000` (seeds 300643 and 300920): chaos
/// crashed a container already in back-off, and each crash doubled the back-off again, so the
/// primary stayed down past the 5-minute convergence bound. Only a running container can
/// crash: the other five crashes are skipped and the first back-off (10 s) holds.
#[test]
fn a_container_in_back_off_cannot_crash_again() {
    let text = format!(
        "name: t\ncluster: {{file: cluster.yaml}}\nsteps:\n  - wait: ready\n{}  - wait: {{for: ready, timeout: 1m}}\nexpect: {{max-primary-changes: 0}}\n",
        "  - fault: {kind: container-crash, target: primary}\n".repeat(6)
    );
    let s = parse(&text, &dir().join("x.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let out = run_scenario(&s, 1).unwrap();
    assert!(
        out.passed(),
        "{:?}\n{}",
        out.failures,
        out.timeline.join("\n")
    );
    let skipped = out
        .timeline
        .iter()
        .filter(|l| l.contains("container-crash") && l.contains("skipped"))
        .count();
    // As the kubelet does, the first crash is restarted at once (the next step) and only
    // later ones wait out a back-off: the second crash puts the container in back-off (10 s),
    // and the four after it, at the same instant, find it not running.
    assert_eq!(skipped, 4, "{}", out.timeline.join("\n"));
}

#[test]
fn same_seed_same_trace() {
    for name in ["primary-kill-failover", "rolling-update"] {
        let path = dir().join(format!("{name}.yaml"));
        let a = run_file(&path, 7).unwrap();
        let b = run_file(&path, 7).unwrap();
        assert_eq!(
            a.timeline, b.timeline,
            "{name}: timelines differ for seed 7"
        );
        assert_eq!(a.digest, b.digest, "{name}: final states differ for seed 7");
    }
}

fn load(name: &str) -> tusk_scenarios::script::Scenario {
    tusk_scenarios::script::load(&dir().join(format!("{name}.yaml"))).unwrap()
}

#[test]
fn crash_mid_rollout_is_counted_and_a_crash_outside_one_is_not() {
    let out = run_file(&dir().join("operator-crash-mid-rollout.yaml"), 1).unwrap();
    assert_eq!(out.sometimes.operator_crashes, 1);
    assert_eq!(
        out.sometimes.rollout_crossed_crash, 1,
        "{:?}",
        out.sometimes
    );

    // The same crash during a scale-up (spec.replicas changes, the pod template does not) is a
    // crash but crosses no rollout.
    let mut s = load("operator-crash-mid-rollout");
    for step in &mut s.steps {
        if let Step::Patch(p) = step {
            *p = serde_json::json!({"spec": {"instances": [{"name": "instance1", "replicas": 4,
                "dataVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}]}});
        }
    }
    s.expect.instances = Some(4);
    let out = tusk_scenarios::script::run_scenario(&s, 1).unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(out.sometimes.operator_crashes, 1);
    assert_eq!(out.sometimes.rollout_crossed_crash, 0);
}

/// The core, except that it never deletes a PVC: a leak the deletion check must catch.
fn leaking_pvcs() -> Box<tusk_scenarios::operator::ReconcileFn> {
    Box::new(|obs, env| {
        let mut plan = tusk_core::reconcile(obs, env);
        plan.actions.retain(|a| {
            !matches!(a, tusk_core::Action::Delete { target, .. } if target.kind == "PersistentVolumeClaim")
        });
        plan
    })
}

#[test]
fn cluster_delete_fails_when_a_pvc_is_leaked() {
    let s = load("cluster-delete");
    let mut config = WorldConfig::new(1);
    config.reconcile = leaking_pvcs();
    let mut world = World::new(config);
    let out = run_in(&mut world, &s, 1).unwrap();
    assert!(
        out.failures
            .iter()
            .any(|f| f.contains("expected 0 PVC(s) of the cluster, got 4")),
        "{:?}",
        out.failures
    );
    let leaked: Vec<&String> = out
        .failures
        .iter()
        .filter(|f| f.contains("outlived PerconaPGCluster cluster1"))
        .collect();
    assert_eq!(leaked.len(), 4, "{:?}", out.failures);
    assert!(leaked[0].contains("PersistentVolumeClaim/cluster1-"));
}

#[test]
fn an_object_whose_owner_is_gone_is_an_orphan() {
    let s = load("cluster-delete-keep-pvcs");
    let mut world = World::new(WorldConfig::new(1));
    let out = run_in(&mut world, &s, 1).unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    // Kept PVCs are not orphans; an object still pointing at the deleted cluster is.
    let before = world.checker.violations.len();
    world
        .store
        .create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster1-leaked", "namespace": "default",
                "ownerReferences": [{"apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGCluster",
                    "name": "cluster1", "uid": "gone", "controller": true}]}}))
        .unwrap();
    let now = world.now();
    world.checker.check_orphans(now, &world.store, "cluster1");
    let new = &world.checker.violations[before..];
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(
        new[0].contains("ConfigMap/cluster1-leaked outlived its owner PerconaPGCluster/cluster1")
    );
}

fn ready_world() -> World {
    let mut w = World::new(WorldConfig::new(3));
    let cr = load("bootstrap").cluster;
    w.apply_user(cr).unwrap();
    assert!(w.run_until(5 * MINUTE, |w| w.cluster_ready("cluster1")));
    w
}

fn lock_time(w: &World, annotation: &str) -> i64 {
    let ha = w
        .store
        .get("v1", "Endpoints", Some("default"), "cluster1-ha")
        .unwrap();
    parse_rfc3339(ha["metadata"]["annotations"][annotation].as_str().unwrap()).unwrap()
}

#[test]
fn clock_skew_shows_in_the_lock_but_does_not_move_it() {
    let mut w = ready_world();
    let primary = w.resolve_pod("primary").unwrap();
    w.inject(Fault::ClockSkew {
        target: "primary".into(),
        seconds: 120,
    })
    .unwrap();
    w.inject(Fault::ClockSkew {
        target: "replica".into(),
        seconds: -90,
    })
    .unwrap();
    w.advance(3 * MINUTE);
    // The leader renews every 10 s with its own clock, two minutes ahead.
    let ahead = lock_time(&w, "renewTime") - w.now();
    assert!(
        (105 * SECOND..=120 * SECOND).contains(&ahead),
        "renewTime is {ahead} ms from the world's time"
    );
    // Nobody times the lock by those stamps: the leader stays, nothing is violated.
    assert_eq!(w.resolve_pod("primary").as_deref(), Some(primary.as_str()));
    assert_eq!(w.primary_changes.get("cluster1").copied().unwrap_or(0), 0);
    assert!(
        w.checker.violations.is_empty(),
        "{:?}",
        w.checker.violations
    );

    // Once healed, the leader stamps the world's time again.
    w.heal(Some("clock-skew"));
    w.advance(MINUTE);
    let ahead = lock_time(&w, "renewTime") - w.now();
    assert!((-11 * SECOND..=0).contains(&ahead), "{ahead}");
}

#[test]
fn a_skewed_replica_that_takes_over_stamps_its_own_time() {
    let mut w = ready_world();
    for r in ["replica-0", "replica-1"] {
        w.inject(Fault::ClockSkew {
            target: r.into(),
            seconds: 300,
        })
        .unwrap();
    }
    w.inject(Fault::PodKill {
        target: "primary".into(),
        down: Some("5m".into()),
    })
    .unwrap();
    let changes = w.primary_changes.get("cluster1").copied().unwrap_or(0);
    assert!(w.run_until(w.now() + 2 * MINUTE, |w| {
        w.primary_changes.get("cluster1").copied().unwrap_or(0) > changes
    }));
    let acquired = lock_time(&w, "acquireTime") - w.now();
    assert!(
        (295 * SECOND..=300 * SECOND).contains(&acquired),
        "acquireTime is {acquired} ms from the world's time"
    );
    let config = w
        .store
        .get("v1", "Endpoints", Some("default"), "cluster1-ha-config")
        .unwrap();
    let history: serde_json::Value = serde_json::from_str(
        config["metadata"]["annotations"]["history"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let stamp = parse_rfc3339(
        history.as_array().unwrap().last().unwrap()[3]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!((295 * SECOND..=300 * SECOND).contains(&(stamp - w.now())));
    assert!(
        w.checker.violations.is_empty(),
        "{:?}",
        w.checker.violations
    );
}

/// The claim a database pod mounts for its data directory.
fn pgdata_claim(w: &World, pod: &str) -> String {
    let p = w.store.get("v1", "Pod", Some("default"), pod).unwrap();
    p["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .find(|c| c.ends_with("-pgdata"))
        .unwrap()
        .to_string()
}

/// pvc-protection: a claim deleted while its pod runs stays Terminating (the pod keeps its
/// data and stays ready); once the pod is gone the claim goes, the replacement pod waits
/// unscheduled until a new claim exists, and it clones from the primary onto that.
#[test]
fn a_claim_in_use_stays_terminating_until_its_pod_is_gone() {
    let mut w = ready_world();
    let replica = w.resolve_pod("replica").unwrap();
    let claim = pgdata_claim(&w, &replica);
    let old_uid = w
        .store
        .get("v1", "PersistentVolumeClaim", Some("default"), &claim)
        .unwrap()["metadata"]["uid"]
        .clone();
    w.delete_user("v1", "PersistentVolumeClaim", &claim)
        .unwrap();
    w.advance(30 * SECOND);
    let held = w
        .store
        .get("v1", "PersistentVolumeClaim", Some("default"), &claim)
        .expect("the claim is still there while the pod uses it");
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        held["metadata"]["finalizers"],
        serde_json::json!(["kubernetes.io/pvc-protection"])
    );
    assert!(w.cluster_ready("cluster1"), "the replica keeps running");

    w.delete_user("v1", "Pod", &replica).unwrap();
    let deadline = w.now() + 3 * MINUTE;
    assert!(w.run_until(deadline, |w| w.cluster_ready("cluster1")));
    let new = w
        .store
        .get("v1", "PersistentVolumeClaim", Some("default"), &claim)
        .expect("a new claim");
    assert_ne!(new["metadata"]["uid"], old_uid);
    assert!(new["metadata"]["deletionTimestamp"].is_null());
    let tl = w.rendered_timeline();
    let at = |needle: &str| {
        tl.iter()
            .position(|l| l.ends_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{}", tl.join("\n")))
    };
    let terminating = at(&format!("pvc {claim} terminating"));
    let pod_gone = at(&format!("pod {replica} deleted"));
    let claim_gone = at(&format!("pvc {claim} deleted"));
    assert!(terminating < pod_gone && pod_gone < claim_gone);
    assert!(
        tl[claim_gone..]
            .iter()
            .any(|l| l.contains(&format!("{replica} cloned from"))),
        "the replica clones onto the new claim:\n{}",
        tl.join("\n")
    );
    assert!(
        w.checker.failures().is_empty(),
        "{:?}",
        w.checker.failures()
    );
}

/// Deleting a user Secret is how Crunchy and Percona users rotate a password: the operator
/// generates a new one, which the password invariant accepts; a password the user sets
/// themselves is kept (the operator must not put the old one back, which the invariant would
/// report).
#[test]
fn a_user_may_rotate_or_set_a_password_through_the_secret() {
    let text = "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - delete: {kind: Secret, name: cluster1-pguser-cluster1}\n  - advance: 30s\n  - apply: {apiVersion: v1, kind: Secret, metadata: {name: cluster1-pguser-cluster1}, stringData: {password: chosen-by-the-user}}\n  - advance: 1m\nexpect: {state: ready}\n";
    let s = parse_inline(text);
    let mut w = World::new(WorldConfig::new(1));
    let out = run_in(&mut w, &s, 1).unwrap();
    assert!(out.passed(), "{:?}", out.failures);
    let secret = w
        .store
        .get("v1", "Secret", Some("default"), "cluster1-pguser-cluster1")
        .expect("the operator recreated the Secret");
    let pw = secret["stringData"]["password"]
        .as_str()
        .or(secret["data"]["password"].as_str())
        .unwrap();
    assert!(
        pw == "chosen-by-the-user" || pw == "Y2hvc2VuLWJ5LXRoZS11c2Vy",
        "the user's password was replaced: {secret}"
    );
}

/// `--set=LABEL` restores that backup set; pgBackRest refuses a label it does not have, and
/// the restore fails saying so (before, any label restored the newest backup).
#[test]
fn a_restore_of_a_backup_set_that_does_not_exist_fails() {
    let text = "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - wait: {for: replica-create-backup, timeout: 2m}\n  - apply: {apiVersion: pgv2.percona.com/v2, kind: PerconaPGRestore, metadata: {name: r}, spec: {pgCluster: cluster1, repoName: repo1, options: [--set=20990101-000000F]}}\n  - wait: {for: restore=Failed, timeout: 5m}\n  - wait: {for: ready, timeout: 5m}\nexpect: {state: ready}\n";
    let out = run_inline(text);
    assert!(
        out.timeline
            .iter()
            .any(|l| l.contains("backup set 20990101-000000F is not in repo1 (sets: 2026")),
        "{}",
        out.timeline.join("\n")
    );
}

/// A cluster deleted and created again under the same name starts over on the timeline: its
/// first state line is `state initializing`, not a transition from the deleted one's `ready`.
#[test]
fn a_cluster_created_again_starts_with_no_state() {
    let text = "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - delete: {kind: PerconaPGCluster, name: cluster1}\n  - wait: deleted\n  - advance: 5s\n  - apply: {apiVersion: pgv2.percona.com/v2, kind: PerconaPGCluster, metadata: {name: cluster1}, spec: {postgresVersion: 17, instances: [{name: instance1, replicas: 2, dataVolumeClaimSpec: {resources: {requests: {storage: 1Gi}}}}], backups: {pgbackrest: {repos: [{name: repo1, volume: {volumeClaimSpec: {resources: {requests: {storage: 1Gi}}}}}]}}}}\n  - wait: {for: ready, timeout: 5m}\nexpect: {state: ready, instances: 2}\n";
    let out = run_inline(text);
    let tl = out.timeline.join("\n");
    let after = &tl[tl.find("cluster cluster1 deleted").expect("deleted")..];
    assert!(
        after.contains("cluster cluster1 state initializing\n"),
        "{after}"
    );
    assert!(!after.contains("state ready -> initializing"), "{after}");
}

/// The objects a scenario applies are read as `kubectl apply` reads them (YAML 1.1: unquoted
/// `yes`/`off` are booleans, quoted ones strings); the scenario's own fields are not
/// (`workload: off` stays the word).
#[test]
fn scenario_objects_are_read_as_kubectl_reads_them() {
    let text = "name: t\nworkload: off\ncluster: {file: cluster.yaml, patch: {spec: {unmanaged: no}}}\nsteps:\n  - patch: {spec: {pause: on, unmanaged: 'no'}}\n  - apply: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {a: \"yes\"}}\n";
    let s = parse_inline(text);
    assert_eq!(s.workload, "off");
    assert_eq!(s.cluster["spec"]["unmanaged"], serde_json::json!(false));
    assert_eq!(
        s.steps[0],
        Step::Patch(serde_json::json!({"spec": {"pause": true, "unmanaged": "no"}}))
    );
    assert_eq!(
        s.steps[1],
        Step::Apply(
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "yes"}})
        )
    );
}

/// A failover is a write outage for the application: the timeline says when writes through
/// `-primary` start failing and why, and when and where they succeed again; the end line and
/// `max-write-outage` hold the longest one.
#[test]
fn a_failover_shows_as_a_bounded_write_outage() {
    let text = |limit: &str| {
        format!(
            "name: t\ncluster: {{file: cluster.yaml}}\nsteps:\n  - wait: ready\n  - fault: {{kind: pod-kill, target: primary, down: 90s}}\n  - wait: {{for: primary-changed, timeout: 2m}}\n  - advance: 5s\nexpect: {{max-write-outage: {limit}}}\n"
        )
    };
    let out = run_inline(&text("45s"));
    let start = out
        .timeline
        .iter()
        .position(|l| l.contains("client: writes through cluster1-primary fail: "))
        .unwrap_or_else(|| panic!("no outage line:\n{}", out.timeline.join("\n")));
    let end = out
        .timeline
        .iter()
        .position(|l| l.contains("client: writes through cluster1-primary succeed again on "))
        .unwrap_or_else(|| panic!("no recovery line:\n{}", out.timeline.join("\n")));
    let promoted = out
        .timeline
        .iter()
        .position(|l| l.contains("promoted to primary"))
        .unwrap();
    assert!(
        start < promoted && promoted < end,
        "{}",
        out.timeline.join("\n")
    );
    // The lock's 30 s TTL bounds the outage from below.
    let last = out.timeline.last().unwrap();
    let outage: f64 = last
        .split("longest write outage ")
        .nth(1)
        .and_then(|t| t.split('s').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{last}"));
    assert!((25.0..45.0).contains(&outage), "{last}");

    let tight = run_scenario(&parse_inline(&text("10s")), 1).unwrap();
    assert!(
        tight
            .failures
            .iter()
            .any(|f| f.contains("expected no write outage longer than 10.0s")),
        "{:?}",
        tight.failures
    );
}

/// `max-write-outage` is checked with the file: a bad duration, or no workload to measure.
#[test]
fn max_write_outage_is_checked_before_the_run() {
    let error = |text: &str| match parse(text, &dir().join("x.yaml")) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    };
    let e = error("name: t\ncluster: {file: cluster.yaml}\nexpect: {max-write-outage: soon}\n");
    assert!(
        e.contains("max-write-outage: `soon` is not a duration"),
        "{e}"
    );
    let e = error(
        "name: t\nworkload: off\ncluster: {file: cluster.yaml}\nexpect: {max-write-outage: 30s}\n",
    );
    assert!(e.contains("needs the client workload"), "{e}");
}

/// `replication-lag` may name one standby: it alone falls behind, and when the primary is lost
/// Patroni promotes the standby that is ahead, not the lagging one.
#[test]
fn a_lagging_standby_is_passed_over_at_failover() {
    let out = run_inline(
        "name: t\nworkload: 200ms\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - fault: {kind: replication-lag, target: replica, millis: 20000}\n  - advance: 30s\n  - fault: {kind: pod-kill, target: primary, down: 2m}\n  - wait: {for: primary-changed, timeout: 2m}\n  - heal: replication-lag\nexpect: {min-failovers: 1}\n",
    );
    let timeline = out.timeline.join("\n");
    let lagging = out
        .timeline
        .iter()
        .find_map(|l| l.split("fault: replication-lag ").nth(1))
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("no lag line:\n{timeline}"));
    assert!(lagging.starts_with("cluster1-instance1-"), "{timeline}");
    let promoted = out
        .timeline
        .iter()
        .find_map(|l| {
            l.split("postgres: ")
                .nth(1)
                .filter(|t| t.contains("promoted"))
        })
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("no promotion:\n{timeline}"));
    assert_ne!(promoted, lagging, "{timeline}");
    assert!(
        timeline.contains(&format!("healed: replication-lag {lagging} 20000ms")),
        "{timeline}"
    );
}

/// With pgBouncer in the spec the client connects through `<cluster>-pgbouncer`. One pgBouncer
/// is a single point of failure: its node lost, writes stop until the pod is evicted (40 s to
/// NotReady, then the 300 s toleration) and replaced. With two, only the connections still
/// sent to the lost one fail, and only until it is marked not ready.
#[test]
fn pgbouncer_is_on_the_write_path() {
    let out = run_file(&dir().join("pgbouncer-node-loss.yaml"), 1).unwrap();
    assert!(out.passed(), "{:?}", out.failures);
    let timeline = out.timeline.join("\n");
    assert!(
        timeline.contains(
            "client: writes through cluster1-pgbouncer fail: pgBouncer cluster1-pgbouncer-"
        ),
        "{timeline}"
    );
    let single = out
        .timeline
        .iter()
        .find_map(|l| {
            l.split("succeed again on ")
                .nth(1)
                .filter(|_| l.contains("cluster1-pgbouncer"))
        })
        .and_then(|t| t.split(" after ").nth(1))
        .unwrap_or_else(|| panic!("{timeline}"));
    assert!(
        single.starts_with("5m4"),
        "one pgBouncer: {single}\n{timeline}"
    );
    assert!(
        timeline.contains("fail again, intermittently"),
        "{timeline}"
    );
    assert!(timeline.contains("succeed steadily again"), "{timeline}");
}

/// `for:` heals a lasting fault by itself, at that time, even in the middle of a wait; on a
/// fault that happens once it is refused with the file.
#[test]
fn a_fault_with_for_heals_itself() {
    let out = run_inline(
        "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - fault: {kind: partition, target: primary, for: 45s}\n  - wait: {for: primary-changed, timeout: 2m}\n  - advance: 1m\n  - wait: ready\nexpect: {min-primary-changes: 1}\n",
    );
    let at = |needle: &str| {
        out.timeline
            .iter()
            .find(|l| l.contains(needle))
            .and_then(|l| parse_offset(l))
            .unwrap_or_else(|| panic!("no `{needle}`:\n{}", out.timeline.join("\n")))
    };
    assert_eq!(at("healed: partition") - at("fault: partition"), 45_000);
    let e = match parse(
        "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - fault: {kind: pod-kill, target: primary, for: 30s}\n",
        &dir().join("x.yaml"),
    ) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("`for: 30s` applies only to faults that last until healed"),
        "{e}"
    );
    assert!(e.contains("`down:` holds its replacement back"), "{e}");
}

/// `[+mm:ss.mmm]` of a timeline line, in milliseconds.
fn parse_offset(line: &str) -> Option<i64> {
    let t = line.strip_prefix("[+")?.split(']').next()?;
    let (m, s) = t.split_once(':')?;
    let (s, ms) = s.split_once('.')?;
    Some((m.parse::<i64>().ok()? * 60 + s.parse::<i64>().ok()?) * 1000 + ms.parse::<i64>().ok()?)
}

/// A stranger counting replicas from 1 gets a skip line that says how they are counted and
/// which pod each target names now.
#[test]
fn a_replica_target_past_the_last_one_names_the_ones_there_are() {
    let out = run_inline(
        "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n  - fault: {kind: pod-delete, target: replica-2}\n",
    );
    let line = out
        .timeline
        .iter()
        .find(|l| l.contains("replica-2") && l.contains("skipped"))
        .unwrap_or_else(|| panic!("no skip line:\n{}", out.timeline.join("\n")));
    assert!(
        line.contains("counting from 0: replica-0 = cluster1-instance1-"),
        "{line}"
    );
    assert!(line.contains(", replica-1 = cluster1-instance1-"), "{line}");
}

/// The world keeps the history its stale reads can reach: the largest lag, none without.
#[test]
fn the_history_kept_is_the_largest_stale_read_lag() {
    let head = "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n";
    assert_eq!(parse_inline(head).stale_read_window(), 0);
    let two = format!(
        "{head}  - fault: {{kind: stale-reads, lag: 7}}\n  - heal: all\n  - fault: {{kind: stale-reads, lag: 40}}\n"
    );
    assert_eq!(parse_inline(&two).stale_read_window(), 40);
    // The default lag counts too.
    let default = format!("{head}  - fault: {{kind: stale-reads}}\n");
    assert_eq!(parse_inline(&default).stale_read_window(), 20);
}
