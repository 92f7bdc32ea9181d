//! Random fault sequences against the simulated cluster: controllers never fail a write,
//! every step settles, and once the faults are lifted everything converges back to Ready.

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};
use tusk_fake_apiserver::Objects;
use tusk_fake_apiserver::controllers::testing::MemObjects;
use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers, Nodes, faults};

const NS: &str = "db";

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

fn settle(o: &mut MemObjects, c: &mut Controllers) {
    let r = c.settle(o, 200);
    assert!(r.errors.is_empty(), "controller errors: {:#?}", r.errors);
    let again = c.step(o);
    assert!(again.is_empty(), "did not settle: {:#?}", again.lines());
}

fn advance(o: &mut MemObjects, c: &mut Controllers, d: i64) {
    let end = o.now().as_second() + d;
    loop {
        settle(o, c);
        match c.next_wakeup() {
            Some(t) if t.as_second() <= end => o.set_now(t),
            _ => break,
        }
    }
    o.set_now(Timestamp::from_second(end).unwrap());
    settle(o, c);
}

fn pod_names(o: &MemObjects) -> Vec<String> {
    o.list("v1", "Pod", Some(NS))
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn edit(o: &mut MemObjects, api: &str, kind: &str, name: &str, f: impl FnOnce(&mut Value)) {
    let mut v = o.get(api, kind, Some(NS), name).unwrap();
    f(&mut v["spec"]);
    o.update(v).unwrap();
}

fn apply(o: &mut MemObjects, c: &mut Controllers, op: &Op) {
    let node = |i: &usize| format!("node-{i}");
    let pick = |o: &MemObjects, i: &usize| {
        let names = pod_names(o);
        (!names.is_empty()).then(|| names[i % names.len()].clone())
    };
    match op {
        Op::Advance(d) => advance(o, c, *d),
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
    settle(o, c);
}

/// Lift every fault: nodes up (out-of-service taints removed), crash loops cleared.
fn heal(o: &mut MemObjects, c: &mut Controllers) {
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
    advance(o, c, 1000);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cluster_recovers_from_any_fault_sequence(ops in prop::collection::vec(op(), 1..25), seed in 0u64..1000) {
        let mut o = MemObjects::new();
        Nodes::create(&mut o, 3).unwrap();
        let mut c = Controllers::new(ControllerConfig { seed, local_volumes: seed % 2 == 0, ..Default::default() });
        o.create(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "pg", "namespace": NS},
            "spec": {"replicas": 3, "serviceName": "pg", "selector": {"matchLabels": {"app": "pg"}},
                "template": {"metadata": {"labels": {"app": "pg"}},
                    "spec": {"containers": [{"name": "database", "image": "postgres:16"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "pgdata"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
        })).unwrap();
        o.create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bouncer", "namespace": NS},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "bouncer"}},
                "template": {"metadata": {"labels": {"app": "bouncer"}},
                    "spec": {"containers": [{"name": "pgbouncer", "image": "pgbouncer"}]}}},
        })).unwrap();
        advance(&mut o, &mut c, 10);
        for op in &ops {
            apply(&mut o, &mut c, op);
            // A StatefulSet never has two pods for one ordinal (names are unique), and every
            // pod name is an ordinal of pg or belongs to the Deployment.
            for n in pod_names(&o) {
                prop_assert!(n.starts_with("pg-") || n.starts_with("bouncer-"), "{n}");
            }
        }
        heal(&mut o, &mut c);
        let sts = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
        let want = sts["spec"]["replicas"].as_i64().unwrap();
        let ready = sts["status"]["readyReplicas"].as_i64().unwrap_or(0);
        prop_assert_eq!(ready, want, "seed {} ops {:?}\n{:#}", seed, ops, sts["status"]);
        prop_assert_eq!(&sts["status"]["currentRevision"], &sts["status"]["updateRevision"]);
        let d = o.get("apps/v1", "Deployment", Some(NS), "bouncer").unwrap();
        let want = d["spec"]["replicas"].as_i64().unwrap();
        prop_assert_eq!(d["status"]["availableReplicas"].as_i64().unwrap_or(0), want, "seed {} ops {:?}", seed, ops);
        for p in o.list("v1", "Pod", Some(NS)) {
            let ready = p["status"]["conditions"].as_array().into_iter().flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            prop_assert!(ready, "pod not ready after healing: {:#}", p);
        }
    }
}
