//! The behaviour models in real time (`tusk up`), driven by hand on the fake API server's
//! store with a manual clock: what happens when the kubelet is faster than the models' step.

use k8s_openapi::jiff::SignedDuration;
use serde_json::{Value, json};
use std::sync::Arc;
use tusk_fake_apiserver::Objects;
use tusk_fake_apiserver::clock::ManualClock;
use tusk_fake_apiserver::store::{Config, Store};
use tusk_scenarios::LiveModels;

const NS: &str = "default";
const CLUSTER: &str = "c1";

fn pvc(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS,
            "labels": {"postgres-operator.crunchydata.com/cluster": CLUSTER}},
        "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}})
}

/// A database pod as the kubelet leaves it once its containers run.
fn running_pod(store: &mut Store, name: &str) -> Value {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {
            "postgres-operator.crunchydata.com/cluster": CLUSTER,
            "postgres-operator.crunchydata.com/data": "postgres",
            "postgres-operator.crunchydata.com/instance": name}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "database", "image": "postgres"}],
            "volumes": [{"name": "postgres-data",
                "persistentVolumeClaim": {"claimName": format!("{name}-pgdata")}}]}});
    let mut pod = Objects::create(store, pod).expect("create pod");
    pod["status"] = json!({"phase": "Running", "podIP": "10.0.0.1",
        "containerStatuses": [{"name": "database", "ready": false, "restartCount": 0,
            "image": "postgres", "imageID": "", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]});
    Objects::update_status(store, pod).expect("pod status")
}

fn leader(store: &Store) -> Option<String> {
    let ep = Objects::get(store, "v1", "Endpoints", Some(NS), &format!("{CLUSTER}-ha"))?;
    ep["metadata"]["annotations"]["leader"]
        .as_str()
        .map(str::to_string)
}

/// Steps the models once a second until `done` or `limit` seconds have passed.
fn step_until(
    store: &mut Store,
    clock: &ManualClock,
    models: &LiveModels,
    limit: i64,
    mut done: impl FnMut(&Store, &LiveModels) -> bool,
) -> bool {
    for _ in 0..limit {
        let now = Objects::now(store);
        models.step(store, now);
        if done(store, models) {
            return true;
        }
        clock.advance(SignedDuration::from_secs(1));
    }
    false
}

/// `kubectl delete pod <primary>` while the world is busy: the kubelet stops the pod's
/// containers (Patroni gets SIGTERM), the pod goes and the StatefulSet recreates it, all
/// before the models step again. Patroni shut down cleanly and released the leader lock, so
/// the replica takes over; the model used to take the new incarnation's predecessor for a
/// crashed process whose lock the new one then renewed, and no failover happened.
#[test]
fn a_primary_deleted_and_recreated_between_two_steps_still_fails_over() {
    let clock = Arc::new(ManualClock::at_epoch_2025());
    let mut store = Store::new(Config {
        clock: clock.clone(),
        auto_gc: false,
        ..Config::default()
    });
    let names = ["c1-a-0", "c1-b-0"];
    for n in names {
        Objects::create(&mut store, pvc(&format!("{n}-pgdata"))).expect("pvc");
        running_pod(&mut store, n);
    }
    let models = LiveModels::new(7);
    let elected = step_until(&mut store, &clock, &models, 120, |s, m| {
        leader(s).is_some()
            && m.ready(&Objects::get(s, "v1", "Pod", Some(NS), names[1]).unwrap()) == Some(true)
            && m.ready(&Objects::get(s, "v1", "Pod", Some(NS), names[0]).unwrap()) == Some(true)
    });
    assert!(elected, "no leader with a ready replica after 120 s");
    let old = leader(&store).expect("leader");

    // Graceful delete; the kubelet stops the containers (on_stop) and removes the pod; the
    // StatefulSet creates the pod again under the same name. No model step in between.
    Objects::delete(&mut store, "v1", "Pod", Some(NS), &old, None, Some(30))
        .expect("graceful delete");
    let terminating = Objects::get(&store, "v1", "Pod", Some(NS), &old).expect("terminating pod");
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    models.stopped(&terminating);
    Objects::delete(&mut store, "v1", "Pod", Some(NS), &old, None, Some(0)).expect("removal");
    running_pod(&mut store, &old);

    let other = names.iter().find(|n| **n != old).unwrap().to_string();
    let failed_over = step_until(&mut store, &clock, &models, 60, |s, _| {
        leader(s).as_deref() == Some(other.as_str())
    });
    assert!(
        failed_over,
        "after {old} was deleted, {other} must take the leader lock; it names {:?}",
        leader(&store)
    );
}
