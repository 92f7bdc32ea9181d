//! Node maintenance as a user does it: `kubectl drain` the node of the primary (evictions go
//! through the PodDisruptionBudgets tusk creates), Patroni fails over, `kubectl uncordon`
//! brings the evicted instance back, and the cluster is ready again with one primary.

use serde_json::Value;
use std::time::Duration;
use tusk_e2e::{Endpoint, deploy, require};

const WAIT: Duration = Duration::from_secs(300);
const ROLE: &str = "postgres-operator.crunchydata.com/role";

fn instance_pods(ep: &Endpoint) -> Vec<Value> {
    let out = ep.kubectl(&[
        "get",
        "pods",
        "-l",
        "postgres-operator.crunchydata.com/cluster=cluster1,postgres-operator.crunchydata.com/instance-set",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["items"].as_array().cloned().unwrap_or_default()
}

fn primary(ep: &Endpoint) -> Option<(String, String)> {
    instance_pods(ep)
        .iter()
        .find(|p| {
            matches!(
                p["metadata"]["labels"][ROLE].as_str(),
                Some("master" | "primary")
            )
        })
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            )
        })
}

fn wait_ready(ep: &Endpoint) {
    ep.eventually("cluster1 ready", WAIT, |ep| {
        match ep.jsonpath(&["pg", "cluster1"], "{.status.state}").as_str() {
            "ready" => Ok(()),
            s => Err(format!("state {s:?}")),
        }
    });
}

#[test]
fn draining_the_primarys_node_fails_over_and_uncordon_heals() {
    let ep = require!(Endpoint::start());
    ep.kubectl_ok(&["apply", "-f", &deploy("cr.yaml").to_string_lossy()]);
    wait_ready(&ep);
    let mut found = None;
    ep.eventually("a primary", WAIT, |ep| {
        found = primary(ep);
        found
            .as_ref()
            .map(|_| ())
            .ok_or_else(|| "no pod has the primary role".into())
    });
    let (old_primary, node) = found.expect("a primary was found");

    let out = ep.kubectl_ok(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=120s",
    ]);
    assert!(out.contains(&format!("{node} drained")), "{out}");
    ep.eventually("a new primary on another node", WAIT, |ep| {
        match primary(ep) {
            Some((name, on)) if name != old_primary && on != node => Ok(()),
            other => Err(format!("primary {other:?}")),
        }
    });
    // Nothing is scheduled onto the cordoned node.
    for p in instance_pods(&ep) {
        assert_ne!(p["spec"]["nodeName"].as_str(), Some(node.as_str()), "{p}");
    }

    ep.kubectl_ok(&["uncordon", &node]);
    ep.eventually("three ready instances, one primary", WAIT, |ep| {
        let pods = instance_pods(ep);
        let ready = pods
            .iter()
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        let primaries = pods
            .iter()
            .filter(|p| {
                matches!(
                    p["metadata"]["labels"][ROLE].as_str(),
                    Some("master" | "primary")
                )
            })
            .count();
        if pods.len() == 3 && ready == 3 && primaries == 1 {
            Ok(())
        } else {
            Err(format!(
                "{} pods, {ready} ready, {primaries} primaries",
                pods.len()
            ))
        }
    });
    wait_ready(&ep);
}
