//! A deliberately small reconcile with the core's signature, so the world can be exercised on
//! its own: instance StatefulSets (one pod each, OnDelete), the `-ha`/`-primary`/`-pods`
//! Services, pause, scale up/down that never removes the primary, and status.state. The world
//! uses `tusk_core::reconcile` when it is available; this stands in for it in world tests.

use crate::labels;
use serde_json::{Value, json};
use std::time::Duration;
use tusk_core::{Action, Env, ObjectRef, Observed, Plan};

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

pub fn reconcile(obs: &Observed, env: &Env) -> Plan {
    let mut plan = Plan::new();
    let cr = &serde_json::to_value(&obs.cluster).unwrap_or_default();
    let cname = name(cr).to_string();
    let ns = cr["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let owner = json!([{"apiVersion": labels::CR_API, "kind": labels::CR_KIND, "name": cname,
        "uid": cr["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
    if cr["metadata"].get("deletionTimestamp").is_some() {
        return plan;
    }
    let paused = cr["spec"]["pause"].as_bool().unwrap_or(false);
    let image = cr["spec"]["image"]
        .as_str()
        .unwrap_or("percona/percona-postgresql-operator:2.9.0-ppg17-postgres");
    for (svc, selector) in [
        ("ha", Value::Null),
        ("primary", Value::Null),
        ("pods", json!({labels::CLUSTER: cname})),
    ] {
        let mut spec = json!({"ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}]});
        if !selector.is_null() {
            spec["selector"] = selector;
            spec["clusterIP"] = json!("None");
            spec["publishNotReadyAddresses"] = json!(true);
        }
        plan.push(Action::Apply {
            object: json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("{cname}-{svc}"), "namespace": ns,
                "labels": {labels::CLUSTER: cname}, "ownerReferences": owner}, "spec": spec})
            .into(),
        });
    }
    let pods: Vec<Value> = obs
        .pods
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    let stss: Vec<Value> = obs
        .stateful_sets
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    let rng = env.rng("instance-names");
    let mut total = 0i64;
    let mut ready = 0i64;
    for set in cr["spec"]["instances"].as_array().into_iter().flatten() {
        let sname = set["name"].as_str().unwrap_or("instance1");
        let want = set["replicas"].as_i64().unwrap_or(1).max(0);
        total += want;
        let mut mine: Vec<&Value> = stss
            .iter()
            .filter(|s| s["metadata"]["labels"][labels::INSTANCE_SET] == sname)
            .collect();
        mine.sort_by_key(|s| name(s).to_string());
        let primary_sts = |s: &Value| {
            pods.iter().any(|p| {
                p["metadata"]["labels"][labels::INSTANCE] == name(s)
                    && labels::is_primary_role(
                        p["metadata"]["labels"][labels::ROLE].as_str().unwrap_or(""),
                    )
            })
        };
        let mut names: Vec<String> = mine.iter().map(|s| name(s).to_string()).collect();
        while (names.len() as i64) < want {
            names.push(format!(
                "{cname}-{sname}-{}",
                rng.string(b"bcdfghjklmnpqrstvwxz2456789", 4)
            ));
        }
        if (names.len() as i64) > want {
            // Scale down: remove a StatefulSet that does not hold the primary.
            let extra = names.len() as i64 - want;
            let mut removable: Vec<&&Value> = mine.iter().filter(|s| !primary_sts(s)).collect();
            removable.reverse();
            for s in removable.into_iter().take(extra as usize) {
                plan.push(Action::Delete {
                    target: ObjectRef {
                        api_version: "apps/v1".into(),
                        kind: "StatefulSet".into(),
                        namespace: Some(ns.clone()),
                        name: name(s).to_string(),
                    },
                    uid: s["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                });
                names.retain(|n| n != name(s));
            }
        }
        for inst in &names {
            let tlabels = json!({labels::CLUSTER: cname, labels::INSTANCE_SET: sname, labels::INSTANCE: inst,
                labels::DATA: "postgres", labels::PATRONI: format!("{cname}-ha")});
            plan.push(Action::Apply { object: json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": inst, "namespace": ns, "labels": {labels::CLUSTER: cname, labels::INSTANCE_SET: sname, labels::INSTANCE: inst, labels::DATA: "postgres"}, "ownerReferences": owner},
                "spec": {"replicas": if paused { 0 } else { 1 }, "serviceName": format!("{cname}-pods"),
                    "updateStrategy": {"type": "OnDelete"},
                    "selector": {"matchLabels": {labels::INSTANCE: inst}},
                    "template": {"metadata": {"labels": tlabels},
                        "spec": {"containers": [{"name": "database", "image": image}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "pgdata", "labels": {labels::CLUSTER: cname, labels::ROLE: "pgdata"}},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}).into() });
            ready += stss
                .iter()
                .find(|s| name(s) == inst)
                .and_then(|s| s["status"]["readyReplicas"].as_i64())
                .unwrap_or(0);
        }
    }
    let has_primary = pods.iter().any(|p| {
        labels::is_primary_role(p["metadata"]["labels"][labels::ROLE].as_str().unwrap_or(""))
            && crate::kube::pod_ready(p)
    });
    let state = if paused {
        if pods.is_empty() {
            "paused"
        } else {
            "stopping"
        }
    } else if ready == total && has_primary {
        "ready"
    } else {
        "initializing"
    };
    plan.push(Action::PatchStatus {
        target: ObjectRef { api_version: labels::CR_API.into(), kind: labels::CR_KIND.into(), namespace: Some(ns), name: cname },
        status: json!({"state": state, "postgres": {"size": total, "ready": ready}, "observedGeneration": cr["metadata"]["generation"]}),
    });
    if state != "ready" && state != "paused" {
        plan.push(Action::RequeueAfter {
            after: Duration::from_secs(5),
        });
    }
    plan
}
