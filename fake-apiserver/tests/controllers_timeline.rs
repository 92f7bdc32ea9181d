//! A timeline snapshot of the simulated cluster: a 3-replica StatefulSet comes up, a node
//! goes down, its pod is evicted and stays Terminating until the node returns.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use tusk_fake_apiserver::Objects;
use tusk_fake_apiserver::controllers::testing::MemObjects;
use tusk_fake_apiserver::controllers::{
    ControllerConfig, Controllers, DefaultBehaviour, Nodes, PodBehaviours, faults,
};

fn run_for(o: &mut MemObjects, c: &mut Controllers, t0: i64, d: i64, out: &mut Vec<String>) {
    let end = o.now().as_second() + d;
    loop {
        let r = c.settle(o, 100);
        let t = o.now().as_second() - t0;
        // Heartbeats are noise in a timeline.
        out.extend(
            r.lines()
                .into_iter()
                .filter(|l| !l.contains("Lease") && !l.contains("heartbeat"))
                .map(|l| format!("t+{t:>4} {l}")),
        );
        match c.next_wakeup() {
            Some(w) if w.as_second() <= end => o.set_now(w),
            _ => break,
        }
    }
    if o.now().as_second() < end {
        o.set_now(Timestamp::from_second(end).unwrap());
        run_for(o, c, t0, 0, out);
    }
}

#[test]
fn node_loss_timeline() {
    let mut o = MemObjects::new();
    Nodes::create(&mut o, 3).unwrap();
    let mut b = PodBehaviours::default();
    b.set_default(DefaultBehaviour {
        ready_after: 5,
        ..Default::default()
    });
    let mut c = Controllers::new(ControllerConfig::default()).with_behaviours(b);
    let t0 = o.now().as_second();
    o.create(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "pg", "namespace": "db"},
        "spec": {
            "replicas": 3, "serviceName": "pg-pods",
            "selector": {"matchLabels": {"app": "pg"}},
            "template": {"metadata": {"labels": {"app": "pg"}},
                         "spec": {"containers": [{"name": "database", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "pgdata"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }))
    .unwrap();
    let mut out = Vec::new();
    run_for(&mut o, &mut c, t0, 30, &mut out);
    out.push("---- node-2 down".into());
    faults::node_down(&mut o, "node-2").unwrap();
    run_for(&mut o, &mut c, t0, 400, &mut out);
    out.push("---- node-2 up".into());
    faults::node_up(&mut o, "node-2").unwrap();
    run_for(&mut o, &mut c, t0, 30, &mut out);
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots")}, {
        insta::assert_snapshot!(out.join("\n"));
    });
}
