//! The lifecycle a user drives with kubectl: install, create, ready, connection secret, scale,
//! rolling update (replicas first), pause/resume, failover, delete with and without delete-pvc.
//! See the crate docs for which endpoint is used and when tests skip.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tusk_e2e::{Endpoint, deploy, require};

const CLUSTER: &str = "cluster1";
const READY: Duration = Duration::from_secs(300);
const ROLE: &str = "postgres-operator.crunchydata.com/role";

fn state(ep: &Endpoint, name: &str) -> String {
    ep.jsonpath(&["pg", name], "{.status.state}")
}

fn wait_state(ep: &Endpoint, name: &str, want: &str) {
    ep.eventually(&format!("{name} to be {want}"), READY, |ep| {
        let s = state(ep, name);
        if s == want {
            Ok(())
        } else {
            Err(format!("state {s:?}"))
        }
    });
}

/// Instance pods of a cluster (not being deleted): name -> pod.
fn instance_pods(ep: &Endpoint, cluster: &str) -> BTreeMap<String, Value> {
    let sel = format!(
        "postgres-operator.crunchydata.com/cluster={cluster},postgres-operator.crunchydata.com/instance-set"
    );
    let out = ep.kubectl(&["get", "pods", "-l", &sel, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p.clone(),
            )
        })
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn primaries(pods: &BTreeMap<String, Value>) -> Vec<String> {
    pods.iter()
        .filter(|(_, p)| {
            matches!(
                p["metadata"]["labels"][ROLE].as_str(),
                Some("master" | "primary")
            )
        })
        .map(|(n, _)| n.clone())
        .collect()
}

fn wait_instances(ep: &Endpoint, n: usize) {
    ep.eventually(
        &format!("{n} ready instances with one primary"),
        READY,
        |ep| {
            let pods = instance_pods(ep, CLUSTER);
            let ready_n = pods.values().filter(|p| ready(p)).count();
            let prim = primaries(&pods);
            if pods.len() == n && ready_n == n && prim.len() == 1 {
                Ok(())
            } else {
                Err(format!(
                    "{} pods, {ready_n} ready, primaries {prim:?}",
                    pods.len()
                ))
            }
        },
    );
}

fn set_replicas(ep: &Endpoint, n: u32) {
    let patch = format!(r#"[{{"op":"replace","path":"/spec/instances/0/replicas","value":{n}}}]"#);
    ep.kubectl_ok(&["patch", "pg", CLUSTER, "--type=json", "-p", &patch]);
}

fn cpu_limit(pod: &Value) -> String {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "database")
        .and_then(|c| c["resources"]["limits"]["cpu"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn cluster_lifecycle_through_kubectl() {
    let ep = require!(Endpoint::start());
    // Printer columns come from the CRD.
    let crd = ep.kubectl_ok(&[
        "get",
        "crd",
        "perconapgclusters.pgv2.percona.com",
        "-o",
        "json",
    ]);
    assert!(crd.contains("additionalPrinterColumns"));

    ep.kubectl_ok(&["apply", "-f", &deploy("cr.yaml").to_string_lossy()]);
    wait_state(&ep, CLUSTER, "ready");
    wait_instances(&ep, 3);
    let table = ep.kubectl_ok(&["get", "pg", CLUSTER]);
    assert!(
        table.contains("ENDPOINT") && table.contains("STATUS") && table.contains("ready"),
        "{table}"
    );

    // Connection secret.
    let keys = ep.jsonpath(
        &["secret", &format!("{CLUSTER}-pguser-{CLUSTER}")],
        "{.data}",
    );
    for k in ["user", "password", "host", "port", "uri"] {
        assert!(
            keys.contains(&format!("\"{k}\"")),
            "secret lacks {k}: {keys}"
        );
    }

    // Scale 3 -> 5 -> 2; there is always exactly one primary.
    set_replicas(&ep, 5);
    wait_instances(&ep, 5);
    wait_state(&ep, CLUSTER, "ready");
    set_replicas(&ep, 2);
    wait_instances(&ep, 2);
    wait_state(&ep, CLUSTER, "ready");

    // A resource change rolls replicas first, the primary last.
    let before = instance_pods(&ep, CLUSTER);
    let old_primary = primaries(&before)[0].clone();
    ep.kubectl_ok(&[
        "patch",
        "pg",
        CLUSTER,
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/instances/0/resources","value":{"limits":{"cpu":"2"}}}]"#,
    ]);
    let mut order: Vec<String> = Vec::new();
    ep.eventually("every instance pod updated", READY, |ep| {
        let pods = instance_pods(ep, CLUSTER);
        for (name, pod) in &pods {
            let updated = cpu_limit(pod) == "2" && ready(pod);
            if updated && !order.contains(name) {
                order.push(name.clone());
            }
        }
        if pods.len() == 2 && order.len() == 2 {
            Ok(())
        } else {
            Err(format!("updated so far {order:?}"))
        }
    });
    assert_eq!(
        order.last(),
        Some(&old_primary),
        "the old primary must be updated last: {order:?}"
    );
    wait_state(&ep, CLUSTER, "ready");

    // Pause stops every instance; resume brings the cluster back.
    ep.kubectl_ok(&[
        "patch",
        "pg",
        CLUSTER,
        "--type=merge",
        "-p",
        r#"{"spec":{"pause":true}}"#,
    ]);
    wait_state(&ep, CLUSTER, "paused");
    ep.eventually("no instance pods while paused", READY, |ep| {
        let n = instance_pods(ep, CLUSTER).len();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    });
    ep.kubectl_ok(&[
        "patch",
        "pg",
        CLUSTER,
        "--type=merge",
        "-p",
        r#"{"spec":{"pause":false}}"#,
    ]);
    wait_state(&ep, CLUSTER, "ready");
    wait_instances(&ep, 2);

    // Deleting the primary pod: Patroni elects the replica.
    let primary = primaries(&instance_pods(&ep, CLUSTER))[0].clone();
    ep.kubectl_ok(&["delete", "pod", &primary, "--wait=false"]);
    ep.eventually("a new primary", READY, |ep| {
        let p = primaries(&instance_pods(ep, CLUSTER));
        if p.len() == 1 && p[0] != primary {
            Ok(())
        } else {
            Err(format!("primaries {p:?}"))
        }
    });
    wait_state(&ep, CLUSTER, "ready");

    // Without percona.com/delete-pvc the data volumes outlive the cluster.
    let pvc_sel = format!("postgres-operator.crunchydata.com/cluster={CLUSTER}");
    ep.kubectl_ok(&["delete", "pg", CLUSTER, "--wait=true", "--timeout=120s"]);
    let left = ep.kubectl_ok(&["get", "pvc", "-l", &pvc_sel, "-o", "name"]);
    assert!(
        left.lines().count() >= 2,
        "PVCs must survive without delete-pvc: {left:?}"
    );
}

#[test]
fn delete_pvc_finalizer_removes_volumes() {
    let ep = require!(Endpoint::start());
    let name = "cluster2";
    let cr = std::fs::read_to_string(deploy("cr.yaml")).unwrap();
    let cr = cr.replacen(
        "  name: cluster1",
        &format!("  name: {name}\n  finalizers:\n  - percona.com/delete-pvc"),
        1,
    );
    let path = std::env::temp_dir().join(format!("tusk-e2e-{name}-{}.yaml", std::process::id()));
    std::fs::write(&path, cr).unwrap();
    ep.kubectl_ok(&["apply", "-f", &path.to_string_lossy()]);
    wait_state(&ep, name, "ready");
    let sel = format!("postgres-operator.crunchydata.com/cluster={name}");
    assert!(
        !ep.kubectl_ok(&["get", "pvc", "-l", &sel, "-o", "name"])
            .trim()
            .is_empty()
    );
    ep.kubectl_ok(&["delete", "pg", name, "--wait=true", "--timeout=180s"]);
    ep.eventually("PVCs removed by delete-pvc", READY, |ep| {
        let left = ep.kubectl_ok(&["get", "pvc", "-l", &sel, "-o", "name"]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    });
    let _ = std::fs::remove_file(path);
}
