//! Runs every scenario file, snapshot-tests its timeline, and checks determinism.

use std::path::PathBuf;
use tusk_fake_apiserver::Objects;
use tusk_scenarios::clock::{MINUTE, SECOND, parse_rfc3339};
use tusk_scenarios::script::{Step, run_in};
use tusk_scenarios::{Fault, World, WorldConfig, run_file};

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
