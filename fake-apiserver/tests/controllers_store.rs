//! The built-in controllers against the real store (API semantics, defaults, GC).

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;
use tusk_fake_apiserver::controllers::{
    ControllerConfig, Controllers, DefaultBehaviour, Nodes, PodBehaviours, faults,
};
use tusk_fake_apiserver::{Config, ManualClock, Objects, Store};

const NS: &str = "db";

struct World {
    store: Store,
    clock: ManualClock,
    c: Controllers,
    log: Vec<String>,
}

fn secs(t: Timestamp) -> i64 {
    t.as_second()
}

impl World {
    fn new(nodes: usize, config: ControllerConfig) -> Self {
        let clock = ManualClock::at_epoch_2025();
        let mut store = Store::new(Config {
            clock: Arc::new(clock.clone()),
            seed: 1,
            history: 100_000,
            auto_gc: false,
            ..Config::default()
        });
        if Objects::get(&store, "v1", "Namespace", None, NS).is_none() {
            Objects::create(
                &mut store,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
            )
            .unwrap();
        }
        Nodes::create(&mut store, nodes).unwrap();
        Self {
            store,
            clock,
            c: Controllers::new(config),
            log: Vec::new(),
        }
    }

    fn settle(&mut self) {
        for _ in 0..200 {
            let r = self.c.step(&mut self.store);
            assert!(r.errors.is_empty(), "controller errors: {:#?}", r.errors);
            let now = secs(self.store.now());
            self.log
                .extend(r.lines().into_iter().map(|l| format!("t+{now} {l}")));
            let gc = self.store.gc_step();
            if r.is_empty() && gc == 0 {
                return;
            }
        }
        panic!(
            "did not settle: {:#?}",
            &self.log[self.log.len().saturating_sub(40)..]
        );
    }

    fn set_now(&mut self, t: i64) {
        self.clock.set(Timestamp::from_second(t).unwrap());
    }

    fn run_for(&mut self, d: i64) {
        let end = secs(self.store.now()) + d;
        loop {
            self.settle();
            match self.c.next_wakeup() {
                Some(t) if secs(t) <= end => self.set_now(secs(t)),
                _ => break,
            }
        }
        if secs(self.store.now()) < end {
            self.set_now(end);
            self.settle();
        }
    }

    fn pod(&self, name: &str) -> Option<Value> {
        Objects::get(&self.store, "v1", "Pod", Some(NS), name)
    }

    fn pods(&self) -> Vec<Value> {
        Objects::list(&self.store, "v1", "Pod", Some(NS))
    }

    fn get(&self, api: &str, kind: &str, name: &str) -> Value {
        Objects::get(&self.store, api, kind, Some(NS), name).unwrap()
    }

    fn edit_spec(&mut self, api: &str, kind: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut v = self.get(api, kind, name);
        f(&mut v["spec"]);
        Objects::update(&mut self.store, v).unwrap();
    }

    fn dump(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (api, kind) in [
            ("v1", "Node"),
            ("v1", "Pod"),
            ("v1", "PersistentVolumeClaim"),
            ("v1", "PersistentVolume"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "ControllerRevision"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "ReplicaSet"),
            ("batch/v1", "Job"),
            ("coordination.k8s.io/v1", "Lease"),
        ] {
            out.insert(
                kind.to_string(),
                Value::Array(Objects::list(&self.store, api, kind, None)),
            );
        }
        Value::Object(out)
    }
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("")
}

fn cond<'a>(v: &'a Value, t: &str) -> Option<&'a Value> {
    v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

fn ready(p: &Value) -> bool {
    cond(p, "Ready").is_some_and(|c| c["status"] == "True")
}

fn terminating(p: &Value) -> bool {
    p["metadata"].get("deletionTimestamp").is_some()
}

fn sts(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{name}-pods"),
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "database", "image": "postgres:16"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "pgdata"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    })
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "pgbouncer", "image": "pgbouncer:1"}]},
            },
        },
    })
}

fn job(name: &str, exit_code: i32, backoff_limit: i64) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"annotations": {"sim.tusk.dev/exit-code": exit_code.to_string(),
                                             "sim.tusk.dev/run-seconds": "5"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "backup", "image": "pgbackrest"}]},
            },
        },
    })
}

#[test]
fn statefulset_ordered_ready_on_the_real_store() {
    let mut behaviours = PodBehaviours::default();
    behaviours.set_default(DefaultBehaviour {
        ready_after: 20,
        ..Default::default()
    });
    let mut w = World::new(3, ControllerConfig::default());
    w.c = Controllers::new(ControllerConfig::default()).with_behaviours(behaviours);
    Objects::create(&mut w.store, sts("pg", 3)).unwrap();
    w.settle();
    let names: Vec<String> = w.pods().iter().map(|p| name(p).to_string()).collect();
    assert_eq!(names, vec!["pg-0"]);
    w.run_for(20);
    assert_eq!(w.pods().len(), 2);
    w.run_for(40);
    let pods = w.pods();
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(ready));
    let s = w.get("apps/v1", "StatefulSet", "pg");
    assert_eq!(s["status"]["readyReplicas"], 3);
    assert_eq!(
        s["status"]["observedGeneration"],
        s["metadata"]["generation"]
    );
    for i in 0..3 {
        let c = w.get("v1", "PersistentVolumeClaim", &format!("pgdata-pg-{i}"));
        assert_eq!(c["status"]["phase"], "Bound");
        let p = w.pod(&format!("pg-{i}")).unwrap();
        assert_eq!(p["spec"]["hostname"], format!("pg-{i}"));
        assert_eq!(
            p["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            i.to_string()
        );
        assert!(
            p["status"]["podIP"]
                .as_str()
                .unwrap()
                .starts_with("10.244.")
        );
    }
}

#[test]
fn statefulset_rolling_update_with_partition_and_on_delete_on_the_real_store() {
    let mut w = World::new(3, ControllerConfig::default());
    Objects::create(&mut w.store, sts("pg", 3)).unwrap();
    w.run_for(1);
    let old = w.get("apps/v1", "StatefulSet", "pg")["status"]["currentRevision"].clone();
    w.edit_spec("apps/v1", "StatefulSet", "pg", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        s["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
    });
    w.run_for(1);
    let s = w.get("apps/v1", "StatefulSet", "pg");
    assert_eq!(s["status"]["updatedReplicas"], 1);
    assert_eq!(s["status"]["currentRevision"], old);
    assert_eq!(
        w.pod("pg-2").unwrap()["spec"]["containers"][0]["image"],
        "postgres:17"
    );
    assert_eq!(
        w.pod("pg-1").unwrap()["spec"]["containers"][0]["image"],
        "postgres:16"
    );
    // Switch to OnDelete and change the template again: nothing moves until a delete.
    w.edit_spec("apps/v1", "StatefulSet", "pg", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("postgres:18");
        s["updateStrategy"] = json!({"type": "OnDelete"});
    });
    w.run_for(30);
    assert_eq!(
        w.pod("pg-2").unwrap()["spec"]["containers"][0]["image"],
        "postgres:17"
    );
    Objects::delete(&mut w.store, "v1", "Pod", Some(NS), "pg-0", None, None).unwrap();
    w.run_for(1);
    assert_eq!(
        w.pod("pg-0").unwrap()["spec"]["containers"][0]["image"],
        "postgres:18"
    );
    assert_eq!(
        w.pod("pg-1").unwrap()["spec"]["containers"][0]["image"],
        "postgres:16"
    );
}

#[test]
fn deployment_rollout_on_the_real_store() {
    let mut w = World::new(2, ControllerConfig::default());
    Objects::create(&mut w.store, deployment("bouncer", 2)).unwrap();
    w.run_for(1);
    assert_eq!(w.pods().len(), 2);
    w.edit_spec("apps/v1", "Deployment", "bouncer", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("pgbouncer:2");
    });
    w.run_for(1);
    let pods = w.pods();
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "pgbouncer:2" && ready(p))
    );
    let d = w.get("apps/v1", "Deployment", "bouncer");
    assert_eq!(d["status"]["updatedReplicas"], 2);
    assert_eq!(
        cond(&d, "Progressing").unwrap()["reason"],
        "NewReplicaSetAvailable"
    );
    assert_eq!(cond(&d, "Available").unwrap()["status"], "True");
    // Deleting the Deployment lets the GC remove ReplicaSets and pods by owner uid.
    Objects::delete(
        &mut w.store,
        "apps/v1",
        "Deployment",
        Some(NS),
        "bouncer",
        None,
        None,
    )
    .unwrap();
    w.run_for(1);
    assert!(Objects::list(&w.store, "apps/v1", "ReplicaSet", Some(NS)).is_empty());
    assert!(w.pods().is_empty());
}

#[test]
fn job_backoff_limit_on_the_real_store() {
    let mut w = World::new(1, ControllerConfig::default());
    Objects::create(&mut w.store, job("backup", 2, 1)).unwrap();
    w.run_for(600);
    let j = w.get("batch/v1", "Job", "backup");
    assert_eq!(j["status"]["failed"], 2);
    assert_eq!(
        cond(&j, "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
    Objects::create(&mut w.store, job("ok", 0, 1)).unwrap();
    w.run_for(60);
    let j = w.get("batch/v1", "Job", "ok");
    assert_eq!(j["status"]["succeeded"], 1);
    assert_eq!(cond(&j, "Complete").unwrap()["status"], "True");
}

#[test]
fn scheduler_anti_affinity_and_taints_on_the_real_store() {
    let mut w = World::new(3, ControllerConfig::default());
    let mut n = Objects::get(&w.store, "v1", "Node", None, "node-3").unwrap();
    n["spec"]["taints"] = json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]);
    Objects::update(&mut w.store, n).unwrap();
    let mut s = sts("pg", 3);
    s["spec"]["podManagementPolicy"] = json!("Parallel");
    s["spec"]["template"]["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "pg"}}, "topologyKey": "kubernetes.io/hostname"}]}});
    Objects::create(&mut w.store, s).unwrap();
    w.run_for(1);
    let pods = w.pods();
    let placed: Vec<Option<&str>> = pods
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    assert_eq!(placed, vec![Some("node-1"), Some("node-2"), None]);
    let c = cond(&pods[2], "PodScheduled").unwrap();
    assert_eq!(c["reason"], "Unschedulable");
}

#[test]
fn node_down_eviction_on_the_real_store() {
    let mut w = World::new(2, ControllerConfig::default());
    Objects::create(&mut w.store, sts("pg", 2)).unwrap();
    w.run_for(1);
    let node = w.pod("pg-1").unwrap()["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let uid = w.pod("pg-1").unwrap()["metadata"]["uid"].clone();
    faults::node_down(&mut w.store, &node).unwrap();
    w.run_for(45);
    let n = Objects::get(&w.store, "v1", "Node", None, &node).unwrap();
    assert_eq!(cond(&n, "Ready").unwrap()["status"], "Unknown");
    assert!(!ready(&w.pod("pg-1").unwrap()));
    w.run_for(300);
    let p = w.pod("pg-1").unwrap();
    assert!(
        terminating(&p),
        "evicted, stuck Terminating on the dead node"
    );
    assert_eq!(p["metadata"]["uid"], uid);
    faults::force_delete_pod(&mut w.store, NS, "pg-1").unwrap();
    w.run_for(1);
    let p = w.pod("pg-1").unwrap();
    assert_ne!(p["metadata"]["uid"], uid);
    // Its local volume lives on the dead node: the new pod cannot be placed.
    assert!(p["spec"].get("nodeName").is_none());
    faults::node_up(&mut w.store, &node).unwrap();
    w.run_for(1);
    let p = w.pod("pg-1").unwrap();
    assert_eq!(p["spec"]["nodeName"], node.as_str());
    assert!(ready(&p));
}

#[test]
fn crash_loop_on_the_real_store() {
    let mut w = World::new(1, ControllerConfig::default());
    Objects::create(&mut w.store, sts("pg", 1)).unwrap();
    w.run_for(1);
    faults::crash_loop(&mut w.store, NS, "pg-0", "database").unwrap();
    w.run_for(75);
    let p = w.pod("pg-0").unwrap();
    let cs = &p["status"]["containerStatuses"][0];
    // Restarts at +0, +10, +30, +70.
    assert_eq!(cs["restartCount"], 4);
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(!ready(&p));
    let s = w.get("apps/v1", "StatefulSet", "pg");
    assert!(s["status"].get("readyReplicas").is_none());
}

fn scripted(seed: u64) -> Value {
    let mut w = World::new(
        3,
        ControllerConfig {
            seed,
            ..Default::default()
        },
    );
    Objects::create(&mut w.store, sts("pg", 3)).unwrap();
    Objects::create(&mut w.store, deployment("bouncer", 2)).unwrap();
    Objects::create(&mut w.store, job("backup", 0, 2)).unwrap();
    w.run_for(30);
    faults::node_down(&mut w.store, "node-2").unwrap();
    w.run_for(400);
    faults::kill_pod(&mut w.store, NS, "pg-0").unwrap();
    w.run_for(100);
    faults::node_up(&mut w.store, "node-2").unwrap();
    w.run_for(400);
    w.dump()
}

#[test]
fn same_steps_give_the_same_store() {
    let a = serde_json::to_string(&scripted(3)).unwrap();
    let b = serde_json::to_string(&scripted(3)).unwrap();
    assert_eq!(a, b);
}

fn pdb(name: &str, rule: Value) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": "pg"}}});
    spec.as_object_mut()
        .unwrap()
        .extend(rule.as_object().unwrap().clone());
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn budget(w: &World, name: &str) -> (i64, i64, i64, i64) {
    let s = &w.get("policy/v1", "PodDisruptionBudget", name)["status"];
    let n = |k: &str| s[k].as_i64().unwrap_or(-1);
    (
        n("expectedPods"),
        n("currentHealthy"),
        n("desiredHealthy"),
        n("disruptionsAllowed"),
    )
}

/// The disruption controller publishes what `kubectl get pdb` shows, for minAvailable and
/// maxUnavailable as ints and percents (rounded up), and follows the pods as they change.
#[test]
fn pdb_status_follows_the_pods() {
    let mut w = World::new(
        3,
        ControllerConfig {
            seed: 5,
            pdb_status: true,
            ..Default::default()
        },
    );
    Objects::create(&mut w.store, sts("pg", 3)).unwrap();
    for (name, rule) in [
        ("min-int", json!({"minAvailable": 2})),
        ("min-pct", json!({"minAvailable": "50%"})),
        ("max-int", json!({"maxUnavailable": 1})),
        ("max-pct", json!({"maxUnavailable": "34%"})),
    ] {
        Objects::create(&mut w.store, pdb(name, rule)).unwrap();
    }
    w.run_for(120);
    assert_eq!(w.pods().iter().filter(|p| ready(p)).count(), 3);
    // (expected, healthy, desired, allowed)
    assert_eq!(budget(&w, "min-int"), (3, 3, 2, 1));
    assert_eq!(budget(&w, "min-pct"), (3, 3, 2, 1));
    assert_eq!(budget(&w, "max-int"), (3, 3, 2, 1));
    assert_eq!(budget(&w, "max-pct"), (3, 3, 1, 2));
    let p = w.get("policy/v1", "PodDisruptionBudget", "min-int");
    assert_eq!(
        p["status"]["observedGeneration"],
        p["metadata"]["generation"]
    );

    let cond = |w: &World, name: &str| {
        let p = w.get("policy/v1", "PodDisruptionBudget", name);
        let c = p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DisruptionAllowed")
            .cloned()
            .unwrap();
        assert_eq!(c["observedGeneration"], p["metadata"]["generation"]);
        (
            c["status"].as_str().unwrap().to_string(),
            c["reason"].as_str().unwrap().to_string(),
            c["lastTransitionTime"].as_str().unwrap().to_string(),
        )
    };
    let (st, reason, since) = cond(&w, "min-int");
    assert_eq!((st.as_str(), reason.as_str()), ("True", "SufficientPods"));

    w.edit_spec("apps/v1", "StatefulSet", "pg", |s| s["replicas"] = json!(1));
    w.run_for(120);
    let (st, reason, flipped) = cond(&w, "min-int");
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", "InsufficientPods")
    );
    assert!(flipped > since, "the transition time moves on a flip");
    let (st, _, unchanged) = cond(&w, "max-pct");
    assert_eq!(st, "True");
    assert_eq!(unchanged, since, "no flip, no new transition time");
    assert_eq!(budget(&w, "min-int"), (1, 1, 2, 0));
    assert_eq!(budget(&w, "max-pct"), (1, 1, 0, 1));
    // Settled: a further round writes nothing.
    assert!(w.c.step(&mut w.store).is_empty());
}

#[test]
fn pdb_status_is_off_by_default() {
    let mut w = World::new(1, ControllerConfig::default());
    Objects::create(&mut w.store, pdb("b", json!({"minAvailable": 1}))).unwrap();
    w.run_for(10);
    assert!(
        w.get("policy/v1", "PodDisruptionBudget", "b")["status"]
            .get("disruptionsAllowed")
            .is_none()
    );
}
