//! Unit tests of the controllers against the [`MemObjects`] test double.

use super::testing::MemObjects;
use super::util::{self, secs};
use super::*;
use serde_json::json;

const NS: &str = "db";

fn world(nodes: usize) -> (MemObjects, Controllers) {
    let mut o = MemObjects::new();
    Nodes::create(&mut o, nodes).unwrap();
    (o, Controllers::new(ControllerConfig::default()))
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

fn pod(o: &MemObjects, name: &str) -> Option<Value> {
    o.get("v1", "Pod", Some(NS), name)
}

fn pods(o: &MemObjects) -> Vec<Value> {
    o.list("v1", "Pod", Some(NS))
}

fn names(v: &[Value]) -> Vec<String> {
    v.iter().map(|p| util::name(p).to_string()).collect()
}

/// Settle, then jump to each wake-up until `secs_from_now` has passed.
fn run_for(o: &mut MemObjects, c: &mut Controllers, secs_from_now: i64) -> Vec<String> {
    let end = secs(o.now()) + secs_from_now;
    let mut lines = Vec::new();
    loop {
        let r = c.settle(o, 100);
        assert!(r.errors.is_empty(), "controller errors: {:?}", r.errors);
        lines.extend(
            r.lines()
                .into_iter()
                .map(|l| format!("t+{} {l}", secs(o.now()))),
        );
        match c.next_wakeup() {
            Some(t) if secs(t) <= end => o.set_now(t),
            _ => break,
        }
    }
    if secs(o.now()) < end {
        o.set_now(util::from_secs(end));
        let r = c.settle(o, 100);
        lines.extend(r.lines());
    }
    lines
}

fn update_spec(o: &mut MemObjects, kind: &str, api: &str, name: &str, f: impl FnOnce(&mut Value)) {
    let mut v = o.get(api, kind, Some(NS), name).unwrap();
    f(&mut v["spec"]);
    o.update(v).unwrap();
}

#[test]
fn statefulset_ordered_ready_creates_in_order_and_waits_for_readiness() {
    let (mut o, _) = world(3);
    let mut behaviours = PodBehaviours::default();
    behaviours.set_default(DefaultBehaviour {
        ready_after: 30,
        ..Default::default()
    });
    let mut c = Controllers::new(ControllerConfig::default()).with_behaviours(behaviours);
    o.create(sts("pg", 3)).unwrap();
    c.settle(&mut o, 100);
    assert_eq!(
        names(&pods(&o)),
        vec!["pg-0"],
        "only ordinal 0 before it is ready"
    );
    let p0 = pod(&o, "pg-0").unwrap();
    assert_eq!(util::pod_phase(&p0), "Running");
    assert!(!util::pod_ready(&p0));
    assert_eq!(c.next_wakeup().map(secs), Some(secs(o.now()) + 30));
    run_for(&mut o, &mut c, 30);
    assert_eq!(names(&pods(&o)), vec!["pg-0", "pg-1"]);
    run_for(&mut o, &mut c, 60);
    let all = pods(&o);
    assert_eq!(names(&all), vec!["pg-0", "pg-1", "pg-2"]);
    assert!(all.iter().all(util::pod_running_and_ready));
    // Identity: labels, hostname, subdomain, claims.
    let p1 = pod(&o, "pg-1").unwrap();
    assert_eq!(
        util::label(&p1, "statefulset.kubernetes.io/pod-name"),
        Some("pg-1")
    );
    assert_eq!(util::label(&p1, "apps.kubernetes.io/pod-index"), Some("1"));
    assert_eq!(p1["spec"]["hostname"], "pg-1");
    assert_eq!(p1["spec"]["subdomain"], "pg-pods");
    assert_eq!(
        p1["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "pgdata-pg-1"
    );
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    assert_eq!(s["status"]["readyReplicas"], 3);
    assert_eq!(s["status"]["availableReplicas"], 3);
    assert_eq!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );
    let rev = s["status"]["updateRevision"].as_str().unwrap();
    assert!(rev.starts_with("pg-"));
    assert_eq!(util::label(&p1, "controller-revision-hash"), Some(rev));
    assert!(
        o.get("apps/v1", "ControllerRevision", Some(NS), rev)
            .is_some()
    );
    // Claims are bound to node-local volumes on the pod's node.
    let pvc = o
        .get("v1", "PersistentVolumeClaim", Some(NS), "pgdata-pg-1")
        .unwrap();
    assert_eq!(pvc["status"]["phase"], "Bound");
    assert_eq!(pvc["spec"]["storageClassName"], "standard");
    let pv_name = pvc["spec"]["volumeName"].as_str().unwrap();
    assert_eq!(pv_name, format!("pvc-{}", util::uid(&pvc)));
    let pv = o.get("v1", "PersistentVolume", None, pv_name).unwrap();
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
            [0],
        p1["spec"]["nodeName"]
    );
    // Spread: least loaded node first, then by name.
    let nodes: Vec<&str> = all
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, vec!["node-1", "node-2", "node-3"]);
}

#[test]
fn statefulset_parallel_creates_all_at_once_and_scales_down_from_the_top() {
    let (mut o, mut c) = world(2);
    let mut s = sts("pg", 3);
    s["spec"]["podManagementPolicy"] = json!("Parallel");
    o.create(s).unwrap();
    let r = c.step(&mut o);
    let created: Vec<String> = r
        .actions
        .iter()
        .filter(|a| a.kind == "Pod" && a.verb == "create")
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(created, vec!["pg-0", "pg-1", "pg-2"]);
    run_for(&mut o, &mut c, 1);
    update_spec(&mut o, "StatefulSet", "apps/v1", "pg", |s| {
        s["replicas"] = json!(1)
    });
    run_for(&mut o, &mut c, 1);
    assert_eq!(names(&pods(&o)), vec!["pg-0"]);
    // Claims are retained by default.
    assert_eq!(o.list("v1", "PersistentVolumeClaim", Some(NS)).len(), 3);
}

#[test]
fn statefulset_rolling_update_respects_partition_and_goes_from_the_top() {
    let (mut o, mut c) = world(3);
    o.create(sts("pg", 3)).unwrap();
    run_for(&mut o, &mut c, 1);
    let old_rev =
        o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap()["status"]["currentRevision"]
            .as_str()
            .unwrap()
            .to_string();
    update_spec(&mut o, "StatefulSet", "apps/v1", "pg", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        s["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    });
    let lines = run_for(&mut o, &mut c, 1);
    let deletes: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("statefulset: delete Pod"))
        .collect();
    assert_eq!(deletes.len(), 2, "{lines:#?}");
    assert!(
        deletes[0].contains("pg-2") && deletes[1].contains("pg-1"),
        "{deletes:?}"
    );
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    let new_rev = s["status"]["updateRevision"].as_str().unwrap();
    assert_ne!(new_rev, old_rev);
    assert_eq!(
        s["status"]["currentRevision"],
        old_rev.as_str(),
        "partition holds the rollout"
    );
    assert_eq!(s["status"]["updatedReplicas"], 2);
    assert_eq!(s["status"]["currentReplicas"], 1);
    assert_eq!(
        util::label(&pod(&o, "pg-0").unwrap(), "controller-revision-hash"),
        Some(old_rev.as_str())
    );
    assert_eq!(
        pod(&o, "pg-2").unwrap()["spec"]["containers"][0]["image"],
        "postgres:17"
    );
    // Pods below the partition come back at the current revision when deleted.
    o.delete("v1", "Pod", Some(NS), "pg-0", None, None).unwrap();
    run_for(&mut o, &mut c, 1);
    assert_eq!(
        pod(&o, "pg-0").unwrap()["spec"]["containers"][0]["image"],
        "postgres:16"
    );
    update_spec(&mut o, "StatefulSet", "apps/v1", "pg", |s| {
        s["updateStrategy"]["rollingUpdate"]["partition"] = json!(0);
    });
    run_for(&mut o, &mut c, 1);
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    assert_eq!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );
    assert_eq!(s["status"]["updatedReplicas"], 3);
    assert_eq!(o.list("apps/v1", "ControllerRevision", Some(NS)).len(), 2);
}

#[test]
fn statefulset_on_delete_keeps_pods_until_deleted_then_uses_the_new_revision() {
    let (mut o, mut c) = world(3);
    let mut s = sts("pg", 3);
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    o.create(s).unwrap();
    run_for(&mut o, &mut c, 1);
    let uids: Vec<String> = pods(&o).iter().map(|p| util::uid(p).to_string()).collect();
    update_spec(&mut o, "StatefulSet", "apps/v1", "pg", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
    });
    run_for(&mut o, &mut c, 60);
    let after: Vec<String> = pods(&o).iter().map(|p| util::uid(p).to_string()).collect();
    assert_eq!(uids, after, "OnDelete never replaces pods by itself");
    o.delete("v1", "Pod", Some(NS), "pg-1", None, None).unwrap();
    run_for(&mut o, &mut c, 1);
    let p1 = pod(&o, "pg-1").unwrap();
    assert_ne!(util::uid(&p1), uids[1]);
    assert_eq!(p1["spec"]["containers"][0]["image"], "postgres:17");
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    assert_eq!(
        util::label(&p1, "controller-revision-hash"),
        s["status"]["updateRevision"].as_str()
    );
    assert_eq!(s["status"]["updatedReplicas"], 1);
    assert_ne!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );
}

#[test]
fn statefulset_claim_retention_delete_on_scale_down_sets_pod_owner() {
    let (mut o, mut c) = world(2);
    let mut s = sts("pg", 2);
    s["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Delete", "whenScaled": "Delete"});
    o.create(s).unwrap();
    run_for(&mut o, &mut c, 1);
    let set_uid = util::uid(&o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap()).to_string();
    let c0 = o
        .get("v1", "PersistentVolumeClaim", Some(NS), "pgdata-pg-0")
        .unwrap();
    assert_eq!(
        c0["metadata"]["ownerReferences"][0]["uid"],
        set_uid.as_str()
    );
    let p1_uid = util::uid(&pod(&o, "pg-1").unwrap()).to_string();
    update_spec(&mut o, "StatefulSet", "apps/v1", "pg", |s| {
        s["replicas"] = json!(1)
    });
    run_for(&mut o, &mut c, 1);
    let c1 = o
        .get("v1", "PersistentVolumeClaim", Some(NS), "pgdata-pg-1")
        .unwrap();
    let owners: Vec<&str> = util::owner_uids(&c1).collect();
    assert_eq!(owners, vec![p1_uid.as_str()]);
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

#[test]
fn deployment_rolls_out_a_new_replicaset_without_losing_availability() {
    let (mut o, mut c) = world(3);
    o.create(deployment("bouncer", 3)).unwrap();
    run_for(&mut o, &mut c, 1);
    let rss = o.list("apps/v1", "ReplicaSet", Some(NS));
    assert_eq!(rss.len(), 1);
    let rs1 = util::name(&rss[0]).to_string();
    let hash = util::label(&rss[0], "pod-template-hash")
        .unwrap()
        .to_string();
    assert_eq!(rs1, format!("bouncer-{hash}"));
    let ps = pods(&o);
    assert_eq!(ps.len(), 3);
    for p in &ps {
        let n = util::name(p);
        assert!(
            n.starts_with(&format!("{rs1}-")) && n.len() == rs1.len() + 6,
            "{n}"
        );
        assert_eq!(util::label(p, "pod-template-hash"), Some(hash.as_str()));
    }
    update_spec(&mut o, "Deployment", "apps/v1", "bouncer", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("pgbouncer:2");
    });
    // Step by step: never fewer than 3 ready pods that are not terminating.
    for _ in 0..60 {
        let r = c.step(&mut o);
        let ready = pods(&o)
            .iter()
            .filter(|p| util::pod_ready(p) && !util::is_terminating(p))
            .count();
        assert!(ready >= 3, "availability dropped to {ready}");
        if r.is_empty() {
            break;
        }
    }
    let rss = o.list("apps/v1", "ReplicaSet", Some(NS));
    assert_eq!(rss.len(), 2);
    for rs in &rss {
        let want = if util::name(rs) == rs1 { 0 } else { 3 };
        assert_eq!(rs["spec"]["replicas"], want);
    }
    let d = o.get("apps/v1", "Deployment", Some(NS), "bouncer").unwrap();
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let conds = d["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds[0]["type"], "Available");
    assert_eq!(conds[0]["status"], "True");
    assert_eq!(conds[1]["reason"], "NewReplicaSetAvailable");
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
fn job_fails_after_backoff_limit_with_growing_delays() {
    let (mut o, mut c) = world(1);
    let t0 = secs(o.now());
    o.create(job("backup", 1, 2)).unwrap();
    let lines = run_for(&mut o, &mut c, 600);
    let j = o.get("batch/v1", "Job", Some(NS), "backup").unwrap();
    assert_eq!(j["status"]["failed"], 3);
    let failed = util::condition(&j, "/status/conditions", "Failed").unwrap();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert!(j["status"].get("completionTime").is_none());
    let creates: Vec<i64> = lines
        .iter()
        .filter(|l| l.contains("job: create Pod"))
        .map(|l| {
            l.trim_start_matches("t+")
                .split(' ')
                .next()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                - t0
        })
        .collect();
    // Runs last 5s; the next pod waits 10s, then 20s, after each failure.
    assert_eq!(creates, vec![0, 15, 40], "{lines:#?}");
    let p = &pods(&o)[0];
    assert_eq!(
        util::label(p, "batch.kubernetes.io/job-name"),
        Some("backup")
    );
    assert_eq!(util::label(p, "job-name"), Some("backup"));
    assert_eq!(util::label(p, "controller-uid"), Some(util::uid(&j)));
}

#[test]
fn job_completes_with_completions_and_parallelism() {
    let (mut o, mut c) = world(2);
    let mut j = job("restore", 0, 6);
    j["spec"]["completions"] = json!(3);
    j["spec"]["parallelism"] = json!(2);
    let t0 = secs(o.now());
    o.create(j).unwrap();
    c.settle(&mut o, 100);
    let j = o.get("batch/v1", "Job", Some(NS), "restore").unwrap();
    assert_eq!(j["status"]["active"], 2);
    run_for(&mut o, &mut c, 60);
    let j = o.get("batch/v1", "Job", Some(NS), "restore").unwrap();
    assert_eq!(j["status"]["succeeded"], 3);
    assert!(j["status"].get("active").is_none());
    assert_eq!(
        util::condition_status(&j, "/status/conditions", "Complete"),
        Some("True")
    );
    let done = util::time_at(&j, "/status/completionTime")
        .map(secs)
        .unwrap();
    assert_eq!(done - t0, 10, "two waves of 5s");
}

#[test]
fn job_active_deadline_fails_the_job() {
    let (mut o, mut c) = world(1);
    let mut j = job("slow", 0, 6);
    j["spec"]["template"]["metadata"]["annotations"]["sim.tusk.dev/run-seconds"] = json!("1000");
    j["spec"]["activeDeadlineSeconds"] = json!(30);
    o.create(j).unwrap();
    run_for(&mut o, &mut c, 100);
    let j = o.get("batch/v1", "Job", Some(NS), "slow").unwrap();
    let failed = util::condition(&j, "/status/conditions", "Failed").unwrap();
    assert_eq!(failed["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["lastTransitionTime"],
        util::fmt_time(util::from_secs(1_735_689_600 + 30))
    );
    assert!(
        pods(&o)
            .iter()
            .all(|p| util::is_terminating(p) || util::pod_terminal(p))
            || pods(&o).is_empty()
    );
}

fn bare_pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"app": "x"}}, "spec": spec})
}

#[test]
fn scheduler_respects_taints_selectors_and_anti_affinity() {
    let (mut o, mut c) = world(3);
    let mut n1 = o.get("v1", "Node", None, "node-1").unwrap();
    n1["spec"]["taints"] = json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]);
    o.update(n1).unwrap();
    let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}});
    for i in 0..3 {
        o.create(bare_pod(
            &format!("p{i}"),
            json!({"affinity": anti, "containers": [{"name": "c", "image": "i"}]}),
        ))
        .unwrap();
    }
    c.settle(&mut o, 100);
    let placed: Vec<(String, Option<String>)> = pods(&o)
        .iter()
        .map(|p| {
            (
                util::name(p).to_string(),
                p["spec"]["nodeName"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        placed,
        vec![
            ("p0".into(), Some("node-2".into())),
            ("p1".into(), Some("node-3".into())),
            ("p2".into(), None),
        ]
    );
    let p2 = pod(&o, "p2").unwrap();
    let sched = util::condition(&p2, "/status/conditions", "PodScheduled").unwrap();
    assert_eq!(sched["status"], "False");
    assert_eq!(sched["reason"], "Unschedulable");
    let msg = sched["message"].as_str().unwrap();
    assert!(msg.starts_with("0/3 nodes are available: 2 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint {dedicated: infra}."), "{msg}");
    // A toleration opens node-1; a nodeSelector restricts by zone.
    o.create(bare_pod("tol", json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "nodeSelector": {"topology.kubernetes.io/zone": "zone-a"}, "containers": [{"name": "c", "image": "i"}]}))).unwrap();
    let mut other = bare_pod(
        "zoned",
        json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-c"}, "containers": [{"name": "c", "image": "i"}]}),
    );
    other["metadata"]["labels"] = json!({"app": "y"});
    o.create(other).unwrap();
    c.settle(&mut o, 100);
    assert_eq!(pod(&o, "tol").unwrap()["spec"]["nodeName"], "node-1");
    assert_eq!(pod(&o, "zoned").unwrap()["spec"]["nodeName"], "node-3");
}

#[test]
fn node_down_marks_unknown_then_evicts_and_statefulset_pod_stays_terminating() {
    let (mut o, mut c) = world(3);
    o.create(sts("pg", 3)).unwrap();
    o.create(deployment("bouncer", 1)).unwrap();
    run_for(&mut o, &mut c, 1);
    let bouncer = pods(&o)
        .into_iter()
        .find(|p| util::name(p).starts_with("bouncer"))
        .unwrap();
    let node = bouncer["spec"]["nodeName"].as_str().unwrap().to_string();
    let victim = pods(&o)
        .into_iter()
        .find(|p| util::name(p).starts_with("pg-") && p["spec"]["nodeName"] == node.as_str())
        .unwrap();
    let victim_name = util::name(&victim).to_string();
    faults::node_down(&mut o, &node).unwrap();
    c.settle(&mut o, 100);
    // The grace period runs from the last Lease renewal.
    let lease = o
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-node-lease"),
            &node,
        )
        .unwrap();
    let t0 = util::time_at(&lease, "/spec/renewTime").map(secs).unwrap();
    assert_eq!(c.next_wakeup().map(|t| secs(t) - t0), Some(40));
    o.set_now(util::from_secs(t0 + 39));
    run_for(&mut o, &mut c, 0);
    let n = o.get("v1", "Node", None, &node).unwrap();
    assert_eq!(
        util::condition_status(&n, "/status/conditions", "Ready"),
        Some("True")
    );
    run_for(&mut o, &mut c, 1);
    let n = o.get("v1", "Node", None, &node).unwrap();
    assert_eq!(
        util::condition_status(&n, "/status/conditions", "Ready"),
        Some("Unknown")
    );
    let taints: Vec<&str> = n["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        taints,
        vec![
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/unreachable"
        ]
    );
    let v = pod(&o, &victim_name).unwrap();
    assert!(!util::pod_ready(&v));
    assert_eq!(
        util::pod_phase(&v),
        "Running",
        "phase is not changed by the node controller"
    );
    // Not evicted before the 300s toleration.
    run_for(&mut o, &mut c, 299);
    assert!(!util::is_terminating(&pod(&o, &victim_name).unwrap()));
    run_for(&mut o, &mut c, 1);
    let v = pod(&o, &victim_name).unwrap();
    assert!(util::is_terminating(&v), "evicted at 40s + 300s");
    assert_eq!(
        util::condition_status(&v, "/status/conditions", "DisruptionTarget"),
        Some("True")
    );
    // The Deployment replaced its pod elsewhere; the StatefulSet pod stays Terminating.
    run_for(&mut o, &mut c, 600);
    let v = pod(&o, &victim_name).unwrap();
    assert!(util::is_terminating(&v));
    assert_eq!(util::uid(&v), util::uid(&victim));
    let bouncers: Vec<Value> = pods(&o)
        .into_iter()
        .filter(|p| util::name(p).starts_with("bouncer"))
        .collect();
    assert!(
        bouncers
            .iter()
            .any(|p| p["spec"]["nodeName"] != node.as_str() && util::pod_ready(p))
    );
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    assert_eq!(s["status"]["readyReplicas"], 2);
    // The node returns: the kubelet confirms the deletion and the pod comes back there
    // (its volume is local to that node).
    faults::node_up(&mut o, &node).unwrap();
    run_for(&mut o, &mut c, 1);
    let v = pod(&o, &victim_name).unwrap();
    assert_ne!(util::uid(&v), util::uid(&victim));
    assert_eq!(v["spec"]["nodeName"], node.as_str());
    assert!(util::pod_ready(&v));
    let n = o.get("v1", "Node", None, &node).unwrap();
    assert!(n["spec"].get("taints").is_none());
}

#[test]
fn out_of_service_frees_the_pod_which_then_waits_for_its_local_volume() {
    for local in [true, false] {
        let mut o = MemObjects::new();
        Nodes::create(&mut o, 2).unwrap();
        let mut c = Controllers::new(ControllerConfig {
            local_volumes: local,
            ..Default::default()
        });
        o.create(sts("pg", 1)).unwrap();
        run_for(&mut o, &mut c, 1);
        let node = pod(&o, "pg-0").unwrap()["spec"]["nodeName"]
            .as_str()
            .unwrap()
            .to_string();
        faults::node_down(&mut o, &node).unwrap();
        run_for(&mut o, &mut c, 400);
        assert!(util::is_terminating(&pod(&o, "pg-0").unwrap()));
        faults::out_of_service(&mut o, &node).unwrap();
        run_for(&mut o, &mut c, 1);
        let p = pod(&o, "pg-0").unwrap();
        assert!(!util::is_terminating(&p));
        if local {
            assert!(p["spec"].get("nodeName").is_none());
            let s = util::condition(&p, "/status/conditions", "PodScheduled").unwrap();
            assert!(
                s["message"]
                    .as_str()
                    .unwrap()
                    .contains("volume node affinity conflict"),
                "{s}"
            );
        } else {
            assert_ne!(p["spec"]["nodeName"], node.as_str());
            assert!(util::pod_ready(&p));
        }
    }
}

#[test]
fn node_not_ready_taints_and_evicts_and_kubelet_confirms() {
    let (mut o, mut c) = world(2);
    o.create(sts("pg", 1)).unwrap();
    let mut c2 = Controllers::new(ControllerConfig {
        local_volumes: false,
        ..Default::default()
    });
    let _ = &mut c;
    run_for(&mut o, &mut c2, 1);
    let node = pod(&o, "pg-0").unwrap()["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_string();
    faults::node_not_ready(&mut o, &node).unwrap();
    run_for(&mut o, &mut c2, 1);
    let n = o.get("v1", "Node", None, &node).unwrap();
    assert_eq!(
        util::condition_status(&n, "/status/conditions", "Ready"),
        Some("False")
    );
    assert_eq!(
        n["spec"]["taints"][0]["key"],
        "node.kubernetes.io/not-ready"
    );
    assert!(!util::pod_ready(&pod(&o, "pg-0").unwrap()));
    run_for(&mut o, &mut c2, 300);
    // The live kubelet confirmed the eviction; the pod was recreated on the other node.
    let p = pod(&o, "pg-0").unwrap();
    assert_ne!(p["spec"]["nodeName"], node.as_str());
    assert!(util::pod_ready(&p));
}

#[test]
fn crash_loop_backs_off_exponentially_up_to_five_minutes() {
    let (mut o, mut c) = world(1);
    o.create(bare_pod(
        "p",
        json!({"containers": [{"name": "db", "image": "postgres"}]}),
    ))
    .unwrap();
    c.settle(&mut o, 100);
    let t0 = secs(o.now());
    faults::crash_loop(&mut o, NS, "p", "db").unwrap();
    let mut restarts_at = Vec::new();
    let mut last = 0;
    for _ in 0..200 {
        c.settle(&mut o, 100);
        let p = pod(&o, "p").unwrap();
        let cs = &p["status"]["containerStatuses"][0];
        let n = cs["restartCount"].as_i64().unwrap();
        if n != last {
            restarts_at.push(secs(o.now()) - t0);
            last = n;
        }
        if restarts_at.len() >= 9 {
            break;
        }
        assert!(!util::pod_ready(&p));
        match c.next_wakeup() {
            Some(t) => o.set_now(t),
            None => break,
        }
    }
    let deltas: Vec<i64> = restarts_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(restarts_at[0], 0, "first restart is immediate");
    assert_eq!(deltas, vec![10, 20, 40, 80, 160, 300, 300, 300]);
    let p = pod(&o, "p").unwrap();
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    faults::clear_crash_loop(&mut o, NS, "p").unwrap();
    run_for(&mut o, &mut c, 300);
    assert!(util::pod_ready(&pod(&o, "p").unwrap()));
}

#[test]
fn kill_pod_restarts_containers_and_never_policy_fails_the_pod() {
    let (mut o, mut c) = world(1);
    o.create(bare_pod(
        "always",
        json!({"containers": [{"name": "db", "image": "postgres"}]}),
    ))
    .unwrap();
    o.create(bare_pod(
        "never",
        json!({"restartPolicy": "Never", "containers": [{"name": "db", "image": "postgres"}]}),
    ))
    .unwrap();
    c.settle(&mut o, 100);
    let ip = pod(&o, "always").unwrap()["status"]["podIP"].clone();
    assert_eq!(ip, "10.244.1.2");
    assert_eq!(pod(&o, "never").unwrap()["status"]["podIP"], "10.244.1.3");
    faults::kill_pod(&mut o, NS, "always").unwrap();
    faults::kill_pod(&mut o, NS, "never").unwrap();
    c.settle(&mut o, 100);
    let a = pod(&o, "always").unwrap();
    assert_eq!(a["status"]["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(
        a["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        137
    );
    assert!(util::pod_ready(&a));
    assert_eq!(
        a["status"]["podIP"], ip,
        "a container restart keeps the pod IP"
    );
    let n = pod(&o, "never").unwrap();
    assert_eq!(util::pod_phase(&n), "Failed");
    assert!(!util::pod_ready(&n));
}

#[test]
fn graceful_deletion_is_confirmed_after_the_termination_delay() {
    let mut o = MemObjects::new();
    Nodes::create(&mut o, 1).unwrap();
    let mut c = Controllers::new(ControllerConfig {
        pod_termination_delay: 5,
        ..Default::default()
    });
    o.create(bare_pod(
        "p",
        json!({"containers": [{"name": "db", "image": "postgres"}]}),
    ))
    .unwrap();
    c.settle(&mut o, 100);
    o.delete("v1", "Pod", Some(NS), "p", None, None).unwrap();
    c.settle(&mut o, 100);
    assert!(pod(&o, "p").is_some());
    assert_eq!(c.next_wakeup().map(|t| secs(t) - secs(o.now())), Some(5));
    run_for(&mut o, &mut c, 5);
    assert!(pod(&o, "p").is_none());
}

#[test]
fn heartbeats_keep_nodes_ready_across_clock_jumps() {
    let (mut o, mut c) = world(2);
    c.settle(&mut o, 10);
    o.advance(3600);
    c.settle(&mut o, 10);
    for n in o.list("v1", "Node", None) {
        assert_eq!(
            util::condition_status(&n, "/status/conditions", "Ready"),
            Some("True")
        );
    }
    let lease = o
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-node-lease"),
            "node-1",
        )
        .unwrap();
    assert_eq!(
        util::time_at(&lease, "/spec/renewTime").map(secs),
        Some(secs(o.now()))
    );
}

fn scripted_run(seed: u64) -> Value {
    let mut o = MemObjects::new();
    Nodes::create(&mut o, 3).unwrap();
    let mut c = Controllers::new(ControllerConfig {
        seed,
        ..Default::default()
    });
    o.create(sts("pg", 3)).unwrap();
    o.create(deployment("bouncer", 2)).unwrap();
    o.create(job("backup", 0, 2)).unwrap();
    run_for(&mut o, &mut c, 30);
    faults::node_down(&mut o, "node-2").unwrap();
    run_for(&mut o, &mut c, 400);
    faults::crash_loop(&mut o, NS, "pg-0", "database").unwrap();
    run_for(&mut o, &mut c, 100);
    faults::node_up(&mut o, "node-2").unwrap();
    faults::clear_crash_loop(&mut o, NS, "pg-0").unwrap();
    run_for(&mut o, &mut c, 400);
    o.dump()
}

#[test]
fn same_steps_same_store() {
    let a = scripted_run(7);
    let b = scripted_run(7);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let c = scripted_run(8);
    assert_ne!(a, c, "the seed changes pod names");
}

#[test]
fn controllers_can_move_to_a_server_thread() {
    fn is_send<T: Send>() {}
    is_send::<Controllers>();
}

#[test]
fn scheduler_checks_cpu_and_memory_requests() {
    let (mut o, mut c) = world(1);
    let big = |name: &str, cpu: &str, mem: &str| {
        bare_pod(
            name,
            json!({"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}),
        )
    };
    // node-1 has 8 cpu and 32Gi.
    o.create(big("a", "6", "1Gi")).unwrap();
    o.create(big("b", "2500m", "1Gi")).unwrap();
    o.create(big("c", "500m", "40Gi")).unwrap();
    o.create(big("d", "2", "1Gi")).unwrap();
    c.settle(&mut o, 100);
    assert_eq!(pod(&o, "a").unwrap()["spec"]["nodeName"], "node-1");
    let b = pod(&o, "b").unwrap();
    assert!(b["spec"].get("nodeName").is_none());
    let msg = util::condition(&b, "/status/conditions", "PodScheduled").unwrap()["message"].clone();
    assert!(
        msg.as_str().unwrap().contains("1 Insufficient cpu"),
        "{msg}"
    );
    let cpod = pod(&o, "c").unwrap();
    assert!(cpod["spec"].get("nodeName").is_none());
    assert_eq!(pod(&o, "d").unwrap()["spec"]["nodeName"], "node-1");
}

#[test]
fn deployment_that_never_becomes_ready_exceeds_its_progress_deadline() {
    let (mut o, _) = world(1);
    let mut behaviours = PodBehaviours::default();
    behaviours.set_default(DefaultBehaviour {
        ready_after: 100_000,
        ..Default::default()
    });
    let mut c = Controllers::new(ControllerConfig::default()).with_behaviours(behaviours);
    let mut d = deployment("stuck", 1);
    d["spec"]["progressDeadlineSeconds"] = json!(120);
    o.create(d).unwrap();
    run_for(&mut o, &mut c, 119);
    let d = o.get("apps/v1", "Deployment", Some(NS), "stuck").unwrap();
    assert_eq!(
        util::condition_status(&d, "/status/conditions", "Progressing"),
        Some("True")
    );
    run_for(&mut o, &mut c, 1);
    let d = o.get("apps/v1", "Deployment", Some(NS), "stuck").unwrap();
    let p = util::condition(&d, "/status/conditions", "Progressing").unwrap();
    assert_eq!(p["status"], "False", "{:#}", d["status"]);
    assert_eq!(p["reason"], "ProgressDeadlineExceeded");
}

#[test]
fn job_with_on_failure_counts_restarts_against_the_backoff_limit() {
    let (mut o, mut c) = world(1);
    let mut j = job("flaky", 3, 2);
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    o.create(j).unwrap();
    run_for(&mut o, &mut c, 120);
    let j = o.get("batch/v1", "Job", Some(NS), "flaky").unwrap();
    let failed = util::condition(&j, "/status/conditions", "Failed").unwrap();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    // One pod, restarted in place (exits at 5s, restarts at once, exits at 10s: 2 restarts).
    let created = o.list("v1", "Pod", Some(NS)).len();
    assert!(created <= 1, "{created}");
}

struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl PodBehaviour for Recorder {
    fn on_start(&mut self, pod: &Value, container: &str, _now: Timestamp) {
        self.0
            .lock()
            .unwrap()
            .push(format!("start {}/{container}", util::name(pod)));
    }
    fn on_stop(&mut self, pod: &Value, _now: Timestamp) {
        self.0
            .lock()
            .unwrap()
            .push(format!("stop {}", util::name(pod)));
    }
    fn ready(&mut self, _pod: &Value, _container: &str, _now: Timestamp) -> bool {
        true
    }
    fn exit(&mut self, _pod: &Value, _container: &str, _now: Timestamp) -> Option<i32> {
        None
    }
    fn stop_delay(&self, _pod: &Value) -> Option<i64> {
        Some(7)
    }
}

#[test]
fn behaviours_hear_starts_and_stops_including_force_deletes() {
    let (mut o, mut c) = world(1);
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut b = PodBehaviours::default();
    b.add_for_labels(Some(NS), &[("app", "pg")], Recorder(log.clone()));
    c.behaviours = b;
    o.create(sts("pg", 2)).unwrap();
    o.create(bare_pod(
        "other",
        json!({"containers": [{"name": "c", "image": "i"}]}),
    ))
    .unwrap();
    run_for(&mut o, &mut c, 1);
    o.delete("v1", "Pod", Some(NS), "pg-0", None, None).unwrap();
    run_for(&mut o, &mut c, 7);
    faults::force_delete_pod(&mut o, NS, "pg-1").unwrap();
    run_for(&mut o, &mut c, 1);
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "start pg-0/database",
            "start pg-1/database",
            "stop pg-0",
            "start pg-0/database",
            "stop pg-1",
            "start pg-1/database",
        ]
    );
}

#[test]
fn a_recreated_statefulset_adopts_orphaned_pods_and_revisions() {
    let (mut o, mut c) = world(2);
    o.create(sts("pg", 2)).unwrap();
    run_for(&mut o, &mut c, 1);
    let before: Vec<String> = pods(&o).iter().map(|p| util::uid(p).to_string()).collect();
    // `kubectl delete sts pg --cascade=orphan`, as operators do to change immutable fields:
    // strip the owner references (the GC's orphan step) and delete the set.
    for kind in ["Pod", "ControllerRevision"] {
        let api = if kind == "Pod" { "v1" } else { "apps/v1" };
        for mut p in o.list(api, kind, Some(NS)) {
            p["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("ownerReferences");
            o.update(p).unwrap();
        }
    }
    o.delete("apps/v1", "StatefulSet", Some(NS), "pg", None, None)
        .unwrap();
    let mut again = sts("pg", 2);
    again["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("1Gi");
    let new_uid = util::uid(&o.create(again).unwrap()).to_string();
    let lines = run_for(&mut o, &mut c, 1);
    let after: Vec<String> = pods(&o).iter().map(|p| util::uid(p).to_string()).collect();
    assert_eq!(before, after, "pods kept: {lines:#?}");
    for p in pods(&o) {
        assert!(util::controlled_by(&p, &new_uid));
    }
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    assert_eq!(s["status"]["collisionCount"], 0);
    assert_eq!(s["status"]["readyReplicas"], 2);
    assert_eq!(o.list("apps/v1", "ControllerRevision", Some(NS)).len(), 1);
}

#[test]
fn a_grown_claim_is_expanded_and_host_network_pods_use_the_node_ip() {
    let (mut o, mut c) = world(1);
    o.create(sts("pg", 1)).unwrap();
    o.create(bare_pod(
        "hn",
        json!({"hostNetwork": true, "containers": [{"name": "c", "image": "i"}]}),
    ))
    .unwrap();
    run_for(&mut o, &mut c, 1);
    assert_eq!(pod(&o, "hn").unwrap()["status"]["podIP"], "172.18.0.2");
    let mut pvc = o
        .get("v1", "PersistentVolumeClaim", Some(NS), "pgdata-pg-0")
        .unwrap();
    pvc["spec"]["resources"]["requests"]["storage"] = json!("5Gi");
    o.update(pvc).unwrap();
    run_for(&mut o, &mut c, 1);
    let pvc = o
        .get("v1", "PersistentVolumeClaim", Some(NS), "pgdata-pg-0")
        .unwrap();
    assert_eq!(pvc["status"]["capacity"]["storage"], "5Gi");
    let pv = o
        .get(
            "v1",
            "PersistentVolume",
            None,
            pvc["spec"]["volumeName"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(pv["spec"]["capacity"]["storage"], "5Gi");
}

#[test]
fn ordered_ready_waits_for_min_ready_seconds() {
    let (mut o, mut c) = world(2);
    let mut s = sts("pg", 2);
    s["spec"]["minReadySeconds"] = json!(15);
    o.create(s).unwrap();
    c.settle(&mut o, 100);
    assert_eq!(pods(&o).len(), 1);
    assert_eq!(c.next_wakeup().map(|t| secs(t) - secs(o.now())), Some(15));
    run_for(&mut o, &mut c, 15);
    assert_eq!(pods(&o).len(), 2);
    let s = o.get("apps/v1", "StatefulSet", Some(NS), "pg").unwrap();
    assert_eq!(s["status"]["availableReplicas"], 1);
    assert_eq!(s["status"]["readyReplicas"], 2);
}

#[test]
fn a_bad_image_blocks_a_rolling_update_until_fixed() {
    let (mut o, mut c) = world(3);
    c.config.unpullable_images = vec!["postgres:bad".into()];
    o.create(sts("pg", 3)).unwrap();
    run_for(&mut o, &mut c, 1);
    update_spec(&mut o, "StatefulSet", "apps/v1", "pg", |s| {
        s["template"]["spec"]["containers"][0]["image"] = json!("postgres:bad");
    });
    run_for(&mut o, &mut c, 300);
    let p2 = pod(&o, "pg-2").unwrap();
    assert_eq!(util::pod_phase(&p2), "Pending");
    assert_eq!(
        p2["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    assert_eq!(
        pod(&o, "pg-1").unwrap()["spec"]["containers"][0]["image"],
        "postgres:16",
        "stuck at pg-2"
    );
    c.config.unpullable_images.clear();
    run_for(&mut o, &mut c, 1);
    assert!(
        pods(&o)
            .iter()
            .all(|p| util::pod_ready(p) && p["spec"]["containers"][0]["image"] == "postgres:bad")
    );
}

#[test]
fn node_reboot_restarts_its_containers() {
    let (mut o, mut c) = world(1);
    o.create(sts("pg", 1)).unwrap();
    run_for(&mut o, &mut c, 1);
    faults::node_down(&mut o, "node-1").unwrap();
    run_for(&mut o, &mut c, 60);
    faults::node_reboot(&mut o, "node-1").unwrap();
    run_for(&mut o, &mut c, 1);
    let p = pod(&o, "pg-0").unwrap();
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 1);
    assert!(util::pod_ready(&p));
}

#[test]
fn a_behaviour_decides_how_long_its_pod_takes_to_stop() {
    let (mut o, mut c) = world(1);
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut b = PodBehaviours::default();
    b.add_for_pod(NS, "slow", Recorder(log.clone()));
    c.behaviours = b;
    o.create(bare_pod(
        "slow",
        json!({"containers": [{"name": "c", "image": "i"}]}),
    ))
    .unwrap();
    run_for(&mut o, &mut c, 1);
    let t = secs(o.now());
    o.delete("v1", "Pod", Some(NS), "slow", None, None).unwrap();
    run_for(&mut o, &mut c, 6);
    assert!(pod(&o, "slow").is_some());
    run_for(&mut o, &mut c, 1);
    assert!(pod(&o, "slow").is_none());
    assert_eq!(secs(o.now()) - t, 7);
}

/// As upstream's pvc-protection controller: a pod that was never scheduled does not hold
/// its claim, so a claim deleted under it goes (instead of waiting on a pod the scheduler
/// will never place on a dying claim), while a scheduled pod keeps it Terminating.
#[test]
fn pvc_protection_counts_only_scheduled_pods() {
    let (mut o, mut c) = world(1);
    for name in ["held", "free"] {
        o.create(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
            .unwrap();
    }
    c.settle(&mut o, 100);
    let with_claim = |claim: &str| {
        json!({"containers": [{"name": "c", "image": "busybox"}],
               "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]})
    };
    o.create(bare_pod("runs", with_claim("held"))).unwrap();
    c.settle(&mut o, 100);
    assert!(pod(&o, "runs").unwrap()["spec"]["nodeName"].is_string());
    // A pod that cannot be scheduled (no node matches its selector).
    let mut spec = with_claim("free");
    spec["nodeSelector"] = json!({"no": "such-node"});
    o.create(bare_pod("pending", spec)).unwrap();
    c.settle(&mut o, 100);
    assert!(pod(&o, "pending").unwrap()["spec"]["nodeName"].is_null());
    for name in ["held", "free"] {
        o.delete("v1", "PersistentVolumeClaim", Some(NS), name, None, None)
            .unwrap();
    }
    c.settle(&mut o, 100);
    let claim = |n: &str| o.get("v1", "PersistentVolumeClaim", Some(NS), n);
    assert!(
        claim("held").is_some_and(|c| util::is_terminating(&c)),
        "a scheduled pod holds its claim"
    );
    assert!(claim("free").is_none(), "an unscheduled pod holds nothing");
}

/// `PodBehaviour::hold_until` keeps a bound pod's containers from starting before that time;
/// the kubelet wakes the world for it.
#[test]
fn kubelet_holds_a_pod_back_until_the_behaviour_lets_it_start() {
    struct Hold(Timestamp);
    impl PodBehaviour for Hold {
        fn ready(&mut self, _: &Value, _: &str, _: Timestamp) -> bool {
            true
        }
        fn exit(&mut self, _: &Value, _: &str, _: Timestamp) -> Option<i32> {
            None
        }
        fn hold_until(&self, _: &Value) -> Option<Timestamp> {
            Some(self.0)
        }
    }
    let (mut o, mut c) = world(1);
    let until = util::from_secs(secs(o.now()) + 90);
    let mut hold = Hold(until);
    o.create(bare_pod(
        "p",
        json!({"containers": [{"name": "c", "image": "busybox"}]}),
    ))
    .unwrap();
    c.settle_with(&mut o, &mut hold, 100);
    let p = pod(&o, "p").unwrap();
    assert!(p["spec"]["nodeName"].is_string(), "scheduled");
    assert_eq!(util::pod_phase(&p), "Pending", "not started while held");
    assert_eq!(c.next_wakeup(), Some(until));
    o.set_now(until);
    c.settle_with(&mut o, &mut hold, 100);
    assert_eq!(util::pod_phase(&pod(&o, "p").unwrap()), "Running");
}

/// Readiness decided by a flag the test flips, as the Patroni model decides a database
/// container's: the pod does not change when the answer does.
struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl PodBehaviour for Flag {
    fn ready(&mut self, _pod: &Value, _container: &str, _now: Timestamp) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn exit(&mut self, _pod: &Value, _container: &str, _now: Timestamp) -> Option<i32> {
        None
    }
}

#[test]
fn kubelet_skips_an_unchanged_pod_but_hears_a_changed_readiness_answer() {
    let (mut o, mut c) = world(1);
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut b = PodBehaviours::default();
    b.add_for_labels(Some(NS), &[("app", "x")], Flag(flag.clone()));
    c.behaviours = b;
    o.create(bare_pod(
        "p",
        json!({"containers": [{"name": "c", "image": "i"}]}),
    ))
    .unwrap();
    run_for(&mut o, &mut c, 10);
    assert!(util::pod_ready(&pod(&o, "p").unwrap()));
    // Nothing changed: a pass writes nothing.
    let rv = util::str_at(&pod(&o, "p").unwrap(), "/metadata/resourceVersion")
        .unwrap()
        .to_string();
    assert!(c.step(&mut o).lines().is_empty());
    // The pod is the same object, but the behaviour's answer changed: the kubelet writes it.
    flag.store(false, std::sync::atomic::Ordering::SeqCst);
    c.step(&mut o);
    let p = pod(&o, "p").unwrap();
    assert_ne!(util::str_at(&p, "/metadata/resourceVersion").unwrap(), rv);
    assert!(!util::pod_ready(&p));
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], json!(false));
    assert!(c.step(&mut o).lines().is_empty());
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    c.step(&mut o);
    assert!(util::pod_ready(&pod(&o, "p").unwrap()));
}

#[test]
fn kubelet_finishes_a_run_to_completion_pod_after_quiet_passes() {
    let (mut o, mut c) = world(1);
    let mut p = bare_pod(
        "job-p",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}),
    );
    p["metadata"]["labels"]["job-name"] = json!("j");
    p["metadata"]["annotations"] = json!({behaviour::RUN_SECONDS_ANNOTATION: "30"});
    o.create(p).unwrap();
    run_for(&mut o, &mut c, 10);
    let p = pod(&o, "job-p").unwrap();
    assert_eq!(p["status"]["phase"], "Running");
    // Unchanged pod, quiet passes: the exit is still asked for and the wake-up still set.
    assert!(c.step(&mut o).lines().is_empty());
    let wake = c.next_wakeup().expect("the container's exit is a wake-up");
    let started = util::time_at(
        &p["status"]["containerStatuses"][0],
        "/state/running/startedAt",
    )
    .unwrap();
    assert_eq!(secs(wake), secs(started) + 30);
    run_for(&mut o, &mut c, 30);
    assert_eq!(pod(&o, "job-p").unwrap()["status"]["phase"], "Succeeded");
}
