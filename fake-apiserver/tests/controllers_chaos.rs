//! Random fault sequences against the simulated cluster: controllers never fail a write,
//! every step settles, and once the faults are lifted everything converges back to Ready.

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use tusk_fake_apiserver::controllers::testing::MemObjects;
use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers, Nodes, faults};
use tusk_fake_apiserver::{Config, ManualClock, Objects, Store};

const NS: &str = "db";

/// A store plus a way to move its clock and run its garbage collector.
trait Sim {
    fn o(&mut self) -> &mut dyn Objects;
    fn set_time(&mut self, t: Timestamp);
    fn gc(&mut self) -> usize {
        0
    }
}

impl Sim for MemObjects {
    fn o(&mut self) -> &mut dyn Objects {
        self
    }
    fn set_time(&mut self, t: Timestamp) {
        self.set_now(t);
    }
}

struct Real {
    store: Store,
    clock: ManualClock,
}

impl Real {
    fn new() -> Self {
        let clock = ManualClock::at_epoch_2025();
        let mut store = Store::new(Config {
            clock: Arc::new(clock.clone()),
            seed: 1,
            history: 1_000,
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
        Self { store, clock }
    }
}

impl Sim for Real {
    fn o(&mut self) -> &mut dyn Objects {
        &mut self.store
    }
    fn set_time(&mut self, t: Timestamp) {
        self.clock.set(t);
    }
    fn gc(&mut self) -> usize {
        self.store.gc_step()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Advance(i64),
    NodeDown(usize),
    NodeNotReady(usize),
    NodeUp(usize),
    NodeReboot(usize),
    OutOfService(usize),
    KillPod(usize),
    CrashLoop(usize),
    DeletePod(usize),
    ForceDeletePod(usize),
    ScaleSts(i64),
    ScaleDeploy(i64),
    NewImage(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..400).prop_map(Op::Advance),
        1 => (1usize..4).prop_map(Op::NodeDown),
        1 => (1usize..4).prop_map(Op::NodeNotReady),
        2 => (1usize..4).prop_map(Op::NodeUp),
        1 => (1usize..4).prop_map(Op::NodeReboot),
        1 => (1usize..4).prop_map(Op::OutOfService),
        1 => (0usize..8).prop_map(Op::KillPod),
        1 => (0usize..8).prop_map(Op::CrashLoop),
        1 => (0usize..8).prop_map(Op::DeletePod),
        1 => (0usize..8).prop_map(Op::ForceDeletePod),
        1 => (0i64..5).prop_map(Op::ScaleSts),
        1 => (0i64..4).prop_map(Op::ScaleDeploy),
        1 => (0u8..3).prop_map(Op::NewImage),
    ]
}

fn settle(o: &mut dyn Sim, c: &mut Controllers) {
    for _ in 0..20 {
        let r = c.settle(o.o(), 200);
        assert!(r.errors.is_empty(), "controller errors: {:#?}", r.errors);
        if o.gc() == 0 {
            break;
        }
    }
    let again = c.step(o.o());
    assert!(again.is_empty(), "did not settle: {:#?}", again.lines());
}

fn advance(o: &mut dyn Sim, c: &mut Controllers, d: i64) {
    let end = o.o().now().as_second() + d;
    loop {
        settle(o, c);
        match c.next_wakeup() {
            Some(t) if t.as_second() <= end => o.set_time(t),
            _ => break,
        }
    }
    o.set_time(Timestamp::from_second(end).unwrap());
    settle(o, c);
}

fn pod_names(o: &mut dyn Objects) -> Vec<String> {
    o.list("v1", "Pod", Some(NS))
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn edit(o: &mut dyn Objects, api: &str, kind: &str, name: &str, f: impl FnOnce(&mut Value)) {
    let mut v = o.get(api, kind, Some(NS), name).unwrap();
    f(&mut v["spec"]);
    o.update(v).unwrap();
}

fn apply(sim: &mut dyn Sim, c: &mut Controllers, op: &Op) {
    let node = |i: &usize| format!("node-{i}");
    let pick = |o: &mut dyn Objects, i: &usize| {
        let names = pod_names(o);
        (!names.is_empty()).then(|| names[i % names.len()].clone())
    };
    if let Op::Advance(d) = op {
        advance(sim, c, *d);
        return;
    }
    let o = sim.o();
    match op {
        Op::Advance(_) => {}
        Op::NodeDown(i) => faults::node_down(o, &node(i)).unwrap(),
        Op::NodeNotReady(i) => faults::node_not_ready(o, &node(i)).unwrap(),
        Op::NodeUp(i) => faults::node_up(o, &node(i)).unwrap(),
        Op::NodeReboot(i) => faults::node_reboot(o, &node(i)).unwrap(),
        Op::OutOfService(i) => faults::out_of_service(o, &node(i)).unwrap(),
        Op::KillPod(i) => {
            if let Some(p) = pick(o, i) {
                faults::kill_pod(o, NS, &p).unwrap();
            }
        }
        Op::CrashLoop(i) => {
            if let Some(p) = pick(o, i) {
                faults::crash_loop(o, NS, &p, "*").unwrap();
            }
        }
        Op::DeletePod(i) => {
            if let Some(p) = pick(o, i) {
                o.delete("v1", "Pod", Some(NS), &p, None, None).unwrap();
            }
        }
        Op::ForceDeletePod(i) => {
            if let Some(p) = pick(o, i) {
                faults::force_delete_pod(o, NS, &p).unwrap();
            }
        }
        Op::ScaleSts(n) => edit(o, "apps/v1", "StatefulSet", "pg", |s| {
            s["replicas"] = json!(n)
        }),
        Op::ScaleDeploy(n) => edit(o, "apps/v1", "Deployment", "bouncer", |s| {
            s["replicas"] = json!(n)
        }),
        Op::NewImage(v) => edit(o, "apps/v1", "StatefulSet", "pg", |s| {
            s["template"]["spec"]["containers"][0]["image"] = json!(format!("postgres:{v}"))
        }),
    }
    settle(sim, c);
}

/// Lift every fault: nodes up (out-of-service taints removed), crash loops cleared.
fn heal(sim: &mut dyn Sim, c: &mut Controllers) {
    let o = sim.o();
    for i in 1..=3 {
        let name = format!("node-{i}");
        faults::node_up(o, &name).unwrap();
        let mut n = o.get("v1", "Node", None, &name).unwrap();
        if let Some(t) = n["spec"].get_mut("taints").and_then(Value::as_array_mut) {
            t.retain(|t| t["key"] != "node.kubernetes.io/out-of-service");
            o.update(n).unwrap();
        }
    }
    for p in pod_names(o) {
        faults::clear_crash_loop(o, NS, &p).unwrap();
    }
    advance(sim, c, 1000);
}

fn run(sim: &mut dyn Sim, ops: &[Op], seed: u64) -> Result<(), TestCaseError> {
    let mut c = Controllers::new(ControllerConfig {
        seed,
        local_volumes: seed.is_multiple_of(2),
        ..Default::default()
    });
    {
        let o = sim.o();
        Nodes::create(o, 3).unwrap();
        o.create(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "pg", "namespace": NS},
            "spec": {"replicas": 3, "serviceName": "pg", "selector": {"matchLabels": {"app": "pg"}},
                "template": {"metadata": {"labels": {"app": "pg"}},
                    "spec": {"containers": [{"name": "database", "image": "postgres:16"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "pgdata"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
        }))
        .unwrap();
        o.create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bouncer", "namespace": NS},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "bouncer"}},
                "template": {"metadata": {"labels": {"app": "bouncer"}},
                    "spec": {"containers": [{"name": "pgbouncer", "image": "pgbouncer"}]}}},
        }))
        .unwrap();
    }
    advance(sim, &mut c, 10);
    for op in ops {
        apply(sim, &mut c, op);
        // Every pod is an ordinal of pg or belongs to the Deployment.
        for n in pod_names(sim.o()) {
            prop_assert!(n.starts_with("pg-") || n.starts_with("bouncer-"), "{n}");
        }
    }
    heal(sim, &mut c);
    let o = sim.o();
    let sts = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    let want = sts["spec"]["replicas"].as_i64().unwrap();
    let ready = sts["status"]["readyReplicas"].as_i64().unwrap_or(0);
    prop_assert_eq!(
        ready,
        want,
        "seed {} ops {:?}\n{:#}",
        seed,
        ops,
        sts["status"]
    );
    prop_assert_eq!(
        &sts["status"]["currentRevision"],
        &sts["status"]["updateRevision"]
    );
    let d = o.get("apps/v1", "Deployment", Some(NS), "bouncer").unwrap();
    let want = d["spec"]["replicas"].as_i64().unwrap();
    prop_assert_eq!(
        d["status"]["availableReplicas"].as_i64().unwrap_or(0),
        want,
        "seed {} ops {:?}",
        seed,
        ops
    );
    for p in o.list("v1", "Pod", Some(NS)) {
        let ready = p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        prop_assert!(ready, "pod not ready after healing: {:#}", p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    #[test]
    fn cluster_recovers_from_any_fault_sequence(ops in prop::collection::vec(op(), 1..25), seed in 0u64..1000) {
        run(&mut MemObjects::new(), &ops, seed)?;
    }

    #[test]
    fn cluster_on_the_real_store_recovers_from_any_fault_sequence(ops in prop::collection::vec(op(), 1..20), seed in 0u64..1000) {
        run(&mut Real::new(), &ops, seed)?;
    }
}
