//! Events from the built-in controllers (opt-in with `ControllerConfig::events`): reasons and
//! messages as kube-controller-manager, the scheduler and the kubelet word them, names and
//! timestamps from the injected clock, and nothing written when the option is off.

use serde_json::{Value, json};
use std::sync::Arc;
use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers, Nodes, faults};
use tusk_fake_apiserver::{Config, ManualClock, Objects, Store};

fn store(clock: &ManualClock) -> Store {
    let mut store = Store::new(Config {
        clock: Arc::new(clock.clone()),
        seed: 1,
        history: 100_000,
        auto_gc: false,
        ..Config::default()
    });
    Nodes::create(&mut store, 2).unwrap();
    store
}

fn settle(store: &mut Store, c: &mut Controllers) {
    for _ in 0..200 {
        let r = c.step(store);
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        if r.is_empty() && store.gc_step() == 0 {
            return;
        }
    }
    panic!("did not settle");
}

/// Runs a small cluster through StatefulSet create and scale-down, a Deployment, a Job, an
/// unschedulable pod and a node loss; returns every core/v1 Event as
/// "type reason component kind/name: message (xcount)" lines, sorted by name.
fn run(events: bool) -> (Vec<String>, Vec<Value>) {
    let clock = ManualClock::at_epoch_2025();
    let mut s = store(&clock);
    let mut c = Controllers::new(ControllerConfig {
        seed: 3,
        events,
        ..ControllerConfig::default()
    });
    let tpl = |app: &str| {
        json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}})
    };
    Objects::create(
        &mut s,
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "pg", "namespace": "default"},
        "spec": {"replicas": 2, "serviceName": "pg", "selector": {"matchLabels": {"app": "pg"}},
                 "template": tpl("pg")}}),
    )
    .unwrap();
    Objects::create(&mut s, json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": tpl("web")}}))
    .unwrap();
    Objects::create(&mut s, json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once", "namespace": "default"},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "once"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "run", "image": "busybox"}]}}}}))
    .unwrap();
    Objects::create(
        &mut s,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nowhere", "namespace": "default"},
        "spec": {"nodeSelector": {"zone": "mars"}, "containers": [{"name": "c", "image": "x"}]}}),
    )
    .unwrap();
    settle(&mut s, &mut c);
    // Scale the StatefulSet down; then lose a node.
    let mut sts = Objects::get(&s, "apps/v1", "StatefulSet", Some("default"), "pg").unwrap();
    sts["spec"]["replicas"] = json!(1);
    Objects::update(&mut s, sts).unwrap();
    settle(&mut s, &mut c);
    faults::node_down(&mut s, "node-2").unwrap();
    settle(&mut s, &mut c);
    // Past the node-monitor grace period (40 s) the node turns Unknown.
    clock.advance(k8s_openapi::jiff::SignedDuration::from_secs(45));
    settle(&mut s, &mut c);
    let evs = Objects::list(&s, "v1", "Event", None);
    let mut lines: Vec<String> = evs
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}/{}: {} (x{})",
                e["type"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
                e["source"]["component"].as_str().unwrap(),
                e["involvedObject"]["kind"].as_str().unwrap(),
                e["involvedObject"]["name"].as_str().unwrap(),
                e["message"].as_str().unwrap(),
                e["count"]
            )
        })
        .collect();
    lines.sort();
    (lines, evs)
}

#[test]
fn controllers_record_upstream_events() {
    let (lines, evs) = run(true);
    let has = |want: &str| {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in\n{}",
            lines.join("\n")
        )
    };
    has(
        "Normal SuccessfulCreate statefulset-controller StatefulSet/pg: create Pod pg-0 in StatefulSet pg successful",
    );
    has(
        "Normal SuccessfulCreate statefulset-controller StatefulSet/pg: create Pod pg-1 in StatefulSet pg successful",
    );
    has(
        "Normal SuccessfulDelete statefulset-controller StatefulSet/pg: delete Pod pg-1 in StatefulSet pg successful",
    );
    has(
        "Normal ScalingReplicaSet deployment-controller Deployment/web: Scaled up replica set web-",
    );
    has("Normal SuccessfulCreate replicaset-controller ReplicaSet/web-");
    has("Normal SuccessfulCreate job-controller Job/once: Created pod: once-");
    has("Normal Scheduled default-scheduler Pod/pg-0: Successfully assigned default/pg-0 to node-");
    has("Warning FailedScheduling default-scheduler Pod/nowhere: 0/2 nodes are available");
    has(
        "Normal Pulled kubelet Pod/pg-0: Container image \"postgres:16\" already present on machine",
    );
    has("Normal Created kubelet Pod/pg-0: Created container: db");
    has("Normal Started kubelet Pod/pg-0: Started container db");
    has("Normal Killing kubelet Pod/pg-1: Stopping container db");
    has("Normal NodeNotReady node-controller Node/node-2: Node node-2 status is now: NodeNotReady");
    // Kubelet events name the container and the node; node events live in `default`.
    let started = evs
        .iter()
        .find(|e| e["reason"] == "Started" && e["involvedObject"]["name"] == "pg-0")
        .unwrap();
    assert_eq!(
        started["involvedObject"]["fieldPath"],
        "spec.containers{db}"
    );
    assert!(
        started["source"]["host"]
            .as_str()
            .unwrap()
            .starts_with("node-")
    );
    assert_eq!(started["firstTimestamp"], "2025-01-01T00:00:00Z");
    let node = evs.iter().find(|e| e["reason"] == "NodeNotReady").unwrap();
    assert_eq!(node["metadata"]["namespace"], "default");
    assert_eq!(node["involvedObject"]["uid"], "node-2");
    // Same steps, same events, names included.
    let (again, evs2) = run(true);
    assert_eq!(lines, again);
    let names = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&evs), names(&evs2));
}

#[test]
fn events_are_opt_in() {
    let (lines, _) = run(false);
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn every_active_namespace_gets_a_default_service_account() {
    let clock = ManualClock::at_epoch_2025();
    let mut s = store(&clock);
    Objects::create(
        &mut s,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .unwrap();
    let mut off = Controllers::new(ControllerConfig::default());
    off.step(&mut s);
    assert!(Objects::get(&s, "v1", "ServiceAccount", Some("team"), "default").is_none());
    let mut on = Controllers::new(ControllerConfig {
        service_accounts: true,
        ..ControllerConfig::default()
    });
    on.step(&mut s);
    for ns in ["default", "kube-system", "team"] {
        assert!(
            Objects::get(&s, "v1", "ServiceAccount", Some(ns), "default").is_some(),
            "{ns}"
        );
    }
    // Deleted: back at the next step; a quiet step writes nothing.
    Objects::delete(
        &mut s,
        "v1",
        "ServiceAccount",
        Some("team"),
        "default",
        None,
        None,
    )
    .unwrap();
    let r = on.step(&mut s);
    assert_eq!(r.actions.len(), 1, "{:?}", r.actions);
    assert!(on.step(&mut s).actions.is_empty());
}

#[test]
fn services_with_selectors_get_endpoints_of_their_pods() {
    use serde_json::json;
    let clock = ManualClock::at_epoch_2025();
    let mut s = store(&clock);
    let mut c = Controllers::new(ControllerConfig {
        endpoints: true,
        ..ControllerConfig::default()
    });
    let pod = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}})
    };
    for n in ["web-b", "web-a"] {
        Objects::create(&mut s, pod(n)).unwrap();
    }
    Objects::create(&mut s, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})).unwrap();
    // A selector-less Service's Endpoints are someone else's (Patroni's leader Endpoints).
    Objects::create(&mut s, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ha", "namespace": "default"},
        "spec": {"ports": [{"port": 5432}]}})).unwrap();
    Objects::create(&mut s, json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ha", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 5432}]}]})).unwrap();
    c.settle(&mut s, 20);
    let ep = Objects::get(&s, "v1", "Endpoints", Some("default"), "web").expect("endpoints");
    assert_eq!(ep["metadata"]["labels"], json!({"tier": "front"}));
    let subset = &ep["subsets"][0];
    assert_eq!(
        subset["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let ips: Vec<&str> = subset["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2, "{ep}");
    assert!(ips.windows(2).all(|w| w[0] < w[1]), "sorted by IP: {ips:?}");
    assert_eq!(subset["addresses"][0]["targetRef"]["kind"], "Pod");
    let ha = Objects::get(&s, "v1", "Endpoints", Some("default"), "ha").unwrap();
    assert_eq!(ha["subsets"][0]["addresses"][0]["ip"], "10.9.9.9");
    // The EndpointSlice kubectl describe service reads, owned by the Service.
    let slices = Objects::list(&s, "discovery.k8s.io/v1", "EndpointSlice", Some("default"));
    assert_eq!(slices.len(), 1, "{slices:?}");
    let slice = &slices[0];
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "web"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(slice["endpoints"].as_array().unwrap().len(), 2);
    // Settled: another step writes nothing.
    assert!(c.step(&mut s).actions.is_empty());
    // The Service goes: its Endpoints go; Patroni's stay.
    Objects::delete(&mut s, "v1", "Service", Some("default"), "web", None, None).unwrap();
    c.step(&mut s);
    assert!(Objects::get(&s, "v1", "Endpoints", Some("default"), "web").is_none());
    assert!(Objects::get(&s, "v1", "Endpoints", Some("default"), "ha").is_some());
}

/// `kubectl rollout undo` sends the old ReplicaSet's template back with
/// `metadata.creationTimestamp: null` (Go's zero time); upstream decodes that as no timestamp,
/// so the old ReplicaSet is reused (and becomes the newest revision), not a new one made.
#[test]
fn rollout_undo_reuses_the_old_replica_set() {
    use serde_json::json;
    let clock = ManualClock::at_epoch_2025();
    let mut s = store(&clock);
    let mut c = Controllers::new(ControllerConfig::default());
    let image = |d: &mut serde_json::Value, img: &str| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(img);
    };
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}}}});
    Objects::create(&mut s, d.clone()).unwrap();
    c.settle(&mut s, 30);
    d = Objects::get(&s, "apps/v1", "Deployment", Some("default"), "api").unwrap();
    image(&mut d, "v2");
    Objects::update(&mut s, d).unwrap();
    c.settle(&mut s, 30);
    let rs = Objects::list(&s, "apps/v1", "ReplicaSet", Some("default"));
    assert_eq!(rs.len(), 2);
    let first = rs
        .iter()
        .find(|r| r["spec"]["template"]["spec"]["containers"][0]["image"] == "v1")
        .unwrap()["metadata"]["name"]
        .clone();
    d = Objects::get(&s, "apps/v1", "Deployment", Some("default"), "api").unwrap();
    image(&mut d, "v1");
    d["spec"]["template"]["metadata"]["creationTimestamp"] = serde_json::Value::Null;
    Objects::update(&mut s, d).unwrap();
    c.settle(&mut s, 30);
    let rs = Objects::list(&s, "apps/v1", "ReplicaSet", Some("default"));
    assert_eq!(rs.len(), 2, "no third ReplicaSet: {rs:?}");
    let back = rs.iter().find(|r| r["metadata"]["name"] == first).unwrap();
    assert_eq!(back["spec"]["replicas"], 1);
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
}
