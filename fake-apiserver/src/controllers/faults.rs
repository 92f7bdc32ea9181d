//! Node and pod faults, applied through the store so they are part of the recorded state.
//! Each takes effect on the next controller step, at `objects.now()`.
//!
//! What happens after a node goes down, as on a real cluster:
//! 1. its kubelet stops renewing its Lease and posting status, and stops updating its pods;
//! 2. after `node_monitor_grace_period` (40s) the node controller sets every node condition
//!    to Unknown, taints the node `node.kubernetes.io/unreachable` (NoSchedule, NoExecute)
//!    and marks its pods Ready=False;
//! 3. after the pods' toleration of that taint runs out (300s by default) they are deleted
//!    gracefully. The kubelet cannot confirm, so they stay Terminating: a Deployment
//!    replaces them at once (new names), a StatefulSet does not (same name, same identity)
//!    until the pod is gone — [`node_up`], [`force_delete_pod`], [`delete_node`] or
//!    [`out_of_service`].

use super::kubelet::CRASH_LOOP_ANNOTATION;
use super::nodes::{KUBELET_STATE_ANNOTATION, TAINT_OUT_OF_SERVICE};
use super::util::{self, fmt_time, str_at};
use crate::error::ApiError;
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Value, json};

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
}

fn get_node(objects: &dyn Objects, node: &str) -> Result<Value, ApiError> {
    objects
        .get("v1", "Node", None, node)
        .ok_or_else(|| not_found("nodes", node))
}

fn get_pod(objects: &dyn Objects, namespace: &str, pod: &str) -> Result<Value, ApiError> {
    objects
        .get("v1", "Pod", Some(namespace), pod)
        .ok_or_else(|| not_found("pods", pod))
}

fn set_kubelet_state(
    objects: &mut dyn Objects,
    node: &str,
    state: Option<&str>,
) -> Result<(), ApiError> {
    let mut n = get_node(objects, node)?;
    let current = n
        .at("/metadata/annotations")
        .and_then(|a| a.get(KUBELET_STATE_ANNOTATION))
        .and_then(Value::as_str);
    if current == state {
        return Ok(());
    }
    match state {
        Some(s) => n["metadata"]["annotations"][KUBELET_STATE_ANNOTATION] = json!(s),
        None => {
            if let Some(a) = n
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                a.remove(KUBELET_STATE_ANNOTATION);
            }
        }
    }
    objects.update(n).map(|_| ())
}

/// The node stops: no heartbeats, no pod updates, no confirmations of deletions.
pub fn node_down(objects: &mut dyn Objects, node: &str) -> Result<(), ApiError> {
    set_kubelet_state(objects, node, Some("down"))
}

/// The kubelet keeps heartbeating but reports Ready=False (container runtime down); it
/// still confirms deletions, but neither starts pods nor changes readiness.
pub fn node_not_ready(objects: &mut dyn Objects, node: &str) -> Result<(), ApiError> {
    set_kubelet_state(objects, node, Some("not-ready"))
}

/// The node is healthy again: heartbeats resume, taints are lifted, Terminating pods there
/// are confirmed and removed, and the kubelet resumes reporting its pods (their containers
/// kept running: a partition, not a reboot).
pub fn node_up(objects: &mut dyn Objects, node: &str) -> Result<(), ApiError> {
    set_kubelet_state(objects, node, None)
}

/// Delete the Node object: pod GC force-deletes the pods bound to it.
pub fn delete_node(objects: &mut dyn Objects, node: &str) -> Result<(), ApiError> {
    let n = get_node(objects, node)?;
    objects.delete("v1", "Node", None, node, Some(util::uid(&n)), None)
}

/// Taint the node `node.kubernetes.io/out-of-service=nodeshutdown:NoExecute`, the documented
/// way to let StatefulSet pods on a dead node be replaced: pods without a toleration are
/// evicted and pod GC force-deletes the Terminating ones.
pub fn out_of_service(objects: &mut dyn Objects, node: &str) -> Result<(), ApiError> {
    let mut n = get_node(objects, node)?;
    let mut taints: Vec<Value> = n
        .at("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if taints
        .iter()
        .any(|t| str_at(t, "/key") == Some(TAINT_OUT_OF_SERVICE))
    {
        return Ok(());
    }
    let now = objects.now();
    taints.push(json!({"key": TAINT_OUT_OF_SERVICE, "value": "nodeshutdown",
        "effect": "NoExecute", "timeAdded": fmt_time(now)}));
    n["spec"]["taints"] = Value::Array(taints);
    objects.update(n).map(|_| ())
}

/// Mark the node unschedulable (`kubectl cordon`) or schedulable again.
pub fn cordon(objects: &mut dyn Objects, node: &str, unschedulable: bool) -> Result<(), ApiError> {
    let mut n = get_node(objects, node)?;
    if unschedulable {
        n["spec"]["unschedulable"] = json!(true);
    } else if let Some(s) = n.get_mut("spec").and_then(Value::as_object_mut) {
        s.remove("unschedulable");
    }
    objects.update(n).map(|_| ())
}

/// `kubectl delete pod --grace-period=0 --force`.
pub fn force_delete_pod(
    objects: &mut dyn Objects,
    namespace: &str,
    pod: &str,
) -> Result<(), ApiError> {
    let p = get_pod(objects, namespace, pod)?;
    objects.delete(
        "v1",
        "Pod",
        Some(namespace),
        pod,
        Some(util::uid(&p)),
        Some(0),
    )
}

/// One container's process dies now with `exit_code`. The kubelet then restarts it per
/// `restartPolicy` (restartCount+1, CrashLoopBackOff delays on repeated crashes) or, for
/// `Never`, leaves it terminated (the pod fails once all containers have exited).
pub fn crash_container(
    objects: &mut dyn Objects,
    namespace: &str,
    pod: &str,
    container: &str,
    exit_code: i32,
) -> Result<(), ApiError> {
    let mut p = get_pod(objects, namespace, pod)?;
    let now = fmt_time(objects.now());
    let mut found = false;
    if let Some(statuses) = p
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for cs in statuses.iter_mut() {
            if str_at(cs, "/name") != Some(container) {
                continue;
            }
            let Some(started) = str_at(cs, "/state/running/startedAt").map(str::to_string) else {
                // Not running: nothing to kill.
                return Ok(());
            };
            found = true;
            cs["state"] = json!({"terminated": {
                "exitCode": exit_code,
                "reason": if exit_code == 0 { "Completed" } else { "Error" },
                "startedAt": started,
                "finishedAt": now,
                "containerID": cs.get("containerID").cloned().unwrap_or(Value::Null),
            }});
            cs["ready"] = json!(false);
            cs["started"] = json!(false);
        }
    }
    if !found {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("container \"{container}\" is not running in pod \"{namespace}/{pod}\""),
        ));
    }
    if let Some(conds) = p
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conds.iter_mut() {
            let t = str_at(c, "/type").unwrap_or("");
            if (t == "Ready" || t == "ContainersReady") && str_at(c, "/status") == Some("True") {
                c["status"] = json!("False");
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!(format!("containers with unready status: [{container}]"));
                c["lastTransitionTime"] = json!(now);
            }
        }
    }
    objects.update_status(p).map(|_| ())
}

/// Every running container of the pod dies (exit 137, as after SIGKILL).
pub fn kill_pod(objects: &mut dyn Objects, namespace: &str, pod: &str) -> Result<(), ApiError> {
    let p = get_pod(objects, namespace, pod)?;
    let running: Vec<String> = p
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.at("/state/running").is_some())
        .filter_map(|c| str_at(c, "/name").map(str::to_string))
        .collect();
    for c in running {
        crash_container(objects, namespace, pod, &c, 137)?;
    }
    Ok(())
}

/// The container crashes every time it starts (use `"*"` for all containers), until
/// [`clear_crash_loop`]: CrashLoopBackOff with delays 10s, 20s, ... capped at 300s.
pub fn crash_loop(
    objects: &mut dyn Objects,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(), ApiError> {
    let mut p = get_pod(objects, namespace, pod)?;
    let mut names: Vec<String> = p
        .at("/metadata/annotations")
        .and_then(|a| a.get(CRASH_LOOP_ANNOTATION))
        .and_then(Value::as_str)
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if names.iter().any(|n| n == container) {
        return Ok(());
    }
    names.push(container.to_string());
    p["metadata"]["annotations"][CRASH_LOOP_ANNOTATION] = json!(names.join(","));
    objects.update(p).map(|_| ())
}

/// End a crash loop: the next restart (after the current back-off) stays up.
pub fn clear_crash_loop(
    objects: &mut dyn Objects,
    namespace: &str,
    pod: &str,
) -> Result<(), ApiError> {
    let mut p = get_pod(objects, namespace, pod)?;
    let Some(a) = p
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    if a.remove(CRASH_LOOP_ANNOTATION).is_none() {
        return Ok(());
    }
    objects.update(p).map(|_| ())
}

/// The node comes back after a reboot: like [`node_up`], and every container that was
/// running there has died (exit 137), so the kubelet restarts them (restartCount+1) or, for
/// `restartPolicy: Never`, the pods fail.
pub fn node_reboot(objects: &mut dyn Objects, node: &str) -> Result<(), ApiError> {
    node_up(objects, node)?;
    let pods: Vec<Value> = objects
        .list("v1", "Pod", None)
        .into_iter()
        .filter(|p| str_at(p, "/spec/nodeName") == Some(node) && !util::is_terminating(p))
        .collect();
    for p in pods {
        kill_pod(objects, util::namespace(&p), util::name(&p))?;
    }
    Ok(())
}
