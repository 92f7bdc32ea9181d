//! Simulated Nodes: creation, kubelet heartbeats (Lease + node conditions), and the node
//! lifecycle controller of kube-controller-manager (Ready=Unknown after the monitor grace
//! period, `not-ready`/`unreachable` taints, marking pods not ready, taint-based eviction)
//! plus the pod garbage collector's force-deletions.

use super::util::{
    self, condition, condition_status, fmt_micro_time, fmt_time, from_secs, is_terminating, secs,
    set_condition, str_at, time_at,
};
use super::{ControllerConfig, StepReport, Writer};
use crate::error::ApiError;
use crate::json_ptr::At;
use crate::objects::Objects;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

/// Node annotation holding the simulated kubelet's state: absent (healthy), `down` (no
/// heartbeats, no pod updates) or `not-ready` (heartbeats reporting Ready=False).
pub const KUBELET_STATE_ANNOTATION: &str = "sim.tusk.dev/kubelet";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The kubelet states a fault can put a node in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeletState {
    Running,
    /// Node powered off or partitioned: nothing is posted, nothing on it changes.
    Down,
    /// The kubelet is alive and heartbeats, but reports Ready=False (e.g. runtime down).
    NotReady,
}

pub fn kubelet_state(node: &Value) -> KubeletState {
    match node
        .at("/metadata/annotations")
        .and_then(|a| a.get(KUBELET_STATE_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some("down") => KubeletState::Down,
        Some("not-ready") => KubeletState::NotReady,
        _ => KubeletState::Running,
    }
}

/// Shape of the nodes [`Nodes::create`] makes.
#[derive(Debug, Clone)]
pub struct NodeTemplate {
    /// `topology.kubernetes.io/zone` values, assigned round-robin (node-1 → first zone).
    pub zones: Vec<String>,
    pub region: String,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

impl Default for NodeTemplate {
    fn default() -> Self {
        Self {
            zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
            region: "region-1".into(),
            cpu: "8".into(),
            memory: "32Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
        }
    }
}

pub struct Nodes;

impl Nodes {
    /// Create `node-1` .. `node-n` (Ready, with Leases) with the default template.
    pub fn create(objects: &mut dyn Objects, n: usize) -> Result<Vec<Value>, ApiError> {
        Self::create_with(objects, n, &NodeTemplate::default())
    }

    pub fn create_with(
        objects: &mut dyn Objects,
        n: usize,
        template: &NodeTemplate,
    ) -> Result<Vec<Value>, ApiError> {
        ensure_namespace(objects, LEASE_NAMESPACE)?;
        let mut out = Vec::with_capacity(n);
        for i in 1..=n {
            let now = objects.now();
            let node = Self::node_object(i, template, now);
            let created = objects.create(node.clone())?;
            // Nodes may carry status on create, but a store may drop it: post it explicitly.
            let created = if created.get("status") != node.get("status") {
                let mut s = created.clone();
                s["status"] = node["status"].clone();
                objects.update_status(s)?
            } else {
                created
            };
            objects.create(lease_object(util::name(&created), now))?;
            out.push(created);
        }
        Ok(out)
    }

    /// The Node object `node-<index>` (index from 1): hostname and zone labels, podCIDR
    /// `10.244.<index>.0/24`, InternalIP `172.18.0.<index+1>`, Ready.
    pub fn node_object(index: usize, template: &NodeTemplate, now: Timestamp) -> Value {
        let name = format!("node-{index}");
        let zone = if template.zones.is_empty() {
            "zone-a".to_string()
        } else {
            template.zones[(index - 1) % template.zones.len()].clone()
        };
        let t = fmt_time(now);
        let resources = json!({
            "cpu": template.cpu, "memory": template.memory, "pods": template.pods,
            "ephemeral-storage": template.ephemeral_storage,
        });
        let cond = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": t, "lastTransitionTime": t})
        };
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": zone,
                    "topology.kubernetes.io/region": template.region,
                    "node.kubernetes.io/instance-type": "sim",
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {
                "podCIDR": format!("10.244.{index}.0/24"),
                "podCIDRs": [format!("10.244.{index}.0/24")],
                "providerID": format!("sim://{name}"),
            },
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [
                    cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                "addresses": [
                    {"type": "InternalIP", "address": format!("172.18.0.{}", index + 1)},
                    {"type": "Hostname", "address": name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": format!("{:032x}", index),
                    "systemUUID": format!("00000000-0000-0000-0000-{:012}", index),
                    "bootID": format!("boot-{index}"),
                    "kernelVersion": "6.8.0-sim",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kubeletVersion": "v1.32.0",
                    "kubeProxyVersion": "v1.32.0",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        })
    }
}

fn lease_object(node: &str, now: Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": 40,
            "renewTime": fmt_micro_time(now),
        },
    })
}

pub(crate) fn ensure_namespace(objects: &mut dyn Objects, ns: &str) -> Result<(), ApiError> {
    if objects.get("v1", "Namespace", None, ns).is_some() {
        return Ok(());
    }
    match objects.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// The node's last sign of life: the later of its Lease renewal and Ready heartbeat.
pub(crate) fn last_heartbeat(objects: &dyn Objects, node: &Value) -> Option<Timestamp> {
    let lease = objects
        .get_shared(
            "coordination.k8s.io/v1",
            "Lease",
            Some(LEASE_NAMESPACE),
            util::name(node),
        )
        .and_then(|l| time_at(&l, "/spec/renewTime"));
    let hb = condition(node, "/status/conditions", "Ready")
        .and_then(|c| time_at(c, "/lastHeartbeatTime"));
    match (lease, hb) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The kubelet side: renew Leases and post node conditions for every node whose kubelet
/// is not down.
pub fn heartbeat_step(objects: &mut dyn Objects, config: &ControllerConfig) -> StepReport {
    let mut report = StepReport::default();
    let now = objects.now();
    let nodes = objects.list_shared("v1", "Node", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "kubelet",
    };
    for node in nodes {
        let state = kubelet_state(&node);
        if state == KubeletState::Down {
            continue;
        }
        let name = util::name(&node).to_string();
        // Lease renewal.
        match w.objects.get_shared(
            "coordination.k8s.io/v1",
            "Lease",
            Some(LEASE_NAMESPACE),
            &name,
        ) {
            None => {
                if ensure_namespace(w.objects, LEASE_NAMESPACE).is_ok() {
                    w.create(lease_object(&name, now), "node lease");
                }
            }
            Some(shared) => {
                let renewed = time_at(&shared, "/spec/renewTime").map(secs);
                if renewed.is_none_or(|r| secs(now) - r >= config.lease_renew_interval) {
                    // Copied only to renew it.
                    let mut lease = Arc::unwrap_or_clone(shared);
                    lease["spec"]["renewTime"] = json!(fmt_micro_time(now));
                    lease["spec"]["holderIdentity"] = json!(name);
                    w.update(lease, "renew");
                }
            }
        }
        // Node status.
        let (status, reason, message) = match state {
            KubeletState::NotReady => (
                "False",
                "KubeletNotReady",
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady",
            ),
            _ => ("True", "KubeletReady", "kubelet is posting ready status"),
        };
        let hb = condition(&node, "/status/conditions", "Ready")
            .and_then(|c| time_at(c, "/lastHeartbeatTime"))
            .map(secs);
        let ready_same = condition_status(&node, "/status/conditions", "Ready") == Some(status)
            && condition(&node, "/status/conditions", "Ready").and_then(|c| str_at(c, "/reason"))
                == Some(reason);
        let pressure_ok = ["MemoryPressure", "DiskPressure", "PIDPressure"]
            .iter()
            .all(|t| condition_status(&node, "/status/conditions", t) != Some("Unknown"));
        if ready_same
            && pressure_ok
            && hb.is_some_and(|h| secs(now) - h < config.node_status_report_interval)
        {
            continue;
        }
        let mut new = (*node).clone();
        let mut conds: Vec<Value> = node
            .at("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (t, s, r, m) in [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            (
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ("Ready", status, reason, message),
        ] {
            set_condition(&mut conds, t, s, Some(r), Some(m), now, false);
        }
        let t = fmt_time(now);
        for c in &mut conds {
            c["lastHeartbeatTime"] = json!(t);
        }
        new["status"]["conditions"] = Value::Array(conds);
        w.update_status(new, "node status heartbeat");
    }
    report
}

/// Does `toleration` tolerate `taint` (key, operator Exists/Equal, effect)?
pub(crate) fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let t_effect = str_at(toleration, "/effect").unwrap_or("");
    let effect = str_at(taint, "/effect").unwrap_or("");
    if !t_effect.is_empty() && t_effect != effect {
        return false;
    }
    let t_key = str_at(toleration, "/key").unwrap_or("");
    let key = str_at(taint, "/key").unwrap_or("");
    let op = str_at(toleration, "/operator").unwrap_or("Equal");
    if t_key.is_empty() {
        // An empty key with Exists tolerates everything.
        return op == "Exists";
    }
    if t_key != key {
        return false;
    }
    match op {
        "Exists" => true,
        _ => str_at(toleration, "/value").unwrap_or("") == str_at(taint, "/value").unwrap_or(""),
    }
}

pub(crate) fn pod_tolerations(pod: &Value) -> Vec<Value> {
    pod.at("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A node's taints, borrowed.
fn node_taints_ref(node: &Value) -> &[Value] {
    node.at("/spec/taints")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn node_taints(node: &Value) -> Vec<Value> {
    node.at("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// When a pod must leave a node because of a NoExecute taint: None = it may stay forever.
/// A pod with no matching toleration for `not-ready`/`unreachable` is treated as if the
/// DefaultTolerationSeconds admission plugin had given it one (`default_toleration_seconds`),
/// as on a real cluster every pod gets those two tolerations at creation.
fn eviction_time(pod: &Value, taint: &Value, config: &ControllerConfig) -> Option<i64> {
    let added = time_at(taint, "/timeAdded").map(secs).unwrap_or(0);
    let key = str_at(taint, "/key").unwrap_or("");
    let matching: Vec<Value> = pod_tolerations(pod)
        .into_iter()
        .filter(|t| tolerates(t, taint))
        .collect();
    if matching.is_empty() {
        if key == TAINT_NOT_READY || key == TAINT_UNREACHABLE {
            return Some(added + config.default_toleration_seconds);
        }
        return Some(added);
    }
    // The pod may stay as long as its most generous matching toleration allows.
    let mut longest: Option<i64> = Some(i64::MIN);
    for t in &matching {
        match t.get("tolerationSeconds").and_then(Value::as_i64) {
            None => longest = None,
            Some(s) => {
                if let Some(l) = longest {
                    longest = Some(l.max(s.max(0)));
                }
            }
        }
    }
    longest.map(|s| added + s)
}

fn pods_on_node<'a>(pods: &'a [Arc<Value>], node: &str) -> impl Iterator<Item = &'a Value> {
    pods.iter()
        .map(|p| &**p)
        .filter(move |p| str_at(p, "/spec/nodeName") == Some(node))
}

/// kube-controller-manager's node lifecycle controller and pod GC.
pub fn lifecycle_step(objects: &mut dyn Objects, config: &ControllerConfig) -> StepReport {
    let mut report = StepReport::default();
    let now = objects.now();
    let now_s = secs(now);
    // Read shared: a Node is copied only to be written (most passes write none).
    let nodes = objects.list_shared("v1", "Node", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "node-lifecycle",
    };
    // Listed once; writes below re-read the pod so a change earlier in this step does not
    // turn into a stale-resourceVersion conflict.
    let pods = w.objects.list_shared("v1", "Pod", None);
    let fresh = |o: &dyn Objects, p: &Value| {
        o.get("v1", "Pod", util::ns_opt(p), util::name(p))
            .filter(|x| util::uid(x) == util::uid(p))
    };
    for node in &nodes {
        let name = util::name(node).to_string();
        let mut node = Arc::clone(node);
        // 1. Monitor: no heartbeat within the grace period → every condition Unknown.
        let ready = condition_status(&node, "/status/conditions", "Ready").unwrap_or("Unknown");
        if ready != "Unknown" {
            let last = last_heartbeat(w.objects, &node).map(secs).unwrap_or(now_s);
            let deadline = last + config.node_monitor_grace_period;
            if now_s >= deadline {
                let mut conds: Vec<Value> = node
                    .at("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for c in &mut conds {
                    if c.get("status").and_then(Value::as_str) != Some("Unknown") {
                        c["status"] = json!("Unknown");
                        c["reason"] = json!("NodeStatusUnknown");
                        c["message"] = json!("Kubelet stopped posting node status.");
                        c["lastTransitionTime"] = json!(fmt_time(now));
                    }
                }
                let mut new = (*node).clone();
                new["status"]["conditions"] = Value::Array(conds);
                match w.update_status(new, "kubelet stopped posting node status") {
                    Some(n) => {
                        let msg = format!("Node {} status is now: NodeNotReady", util::name(&n));
                        w.event(&n, false, "NodeNotReady", msg);
                        node = Arc::new(n);
                    }
                    None => continue,
                }
            } else if kubelet_state(&node) == KubeletState::Down {
                w.report.wake_at(from_secs(deadline));
            }
        }
        // 2. Taints from the Ready condition.
        let ready = condition_status(&node, "/status/conditions", "Ready")
            .unwrap_or("Unknown")
            .to_string();
        let wanted_key = match ready.as_str() {
            "True" => None,
            "False" => Some(TAINT_NOT_READY),
            _ => Some(TAINT_UNREACHABLE),
        };
        let old_taints = node_taints_ref(&node);
        let mut taints: Vec<Value> = old_taints
            .iter()
            .filter(|t| {
                let k = str_at(t, "/key").unwrap_or("");
                (k != TAINT_NOT_READY && k != TAINT_UNREACHABLE) || Some(k) == wanted_key
            })
            .cloned()
            .collect();
        if let Some(key) = wanted_key {
            for effect in ["NoSchedule", "NoExecute"] {
                let present = taints.iter().any(|t| {
                    str_at(t, "/key") == Some(key) && str_at(t, "/effect") == Some(effect)
                });
                if !present {
                    let mut t = json!({"key": key, "effect": effect});
                    if effect == "NoExecute" {
                        t["timeAdded"] = json!(fmt_time(now));
                    }
                    taints.push(t);
                }
            }
        }
        let unschedulable = node
            .at("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let has_unsched = taints
            .iter()
            .any(|t| str_at(t, "/key") == Some(TAINT_UNSCHEDULABLE));
        if unschedulable && !has_unsched {
            taints.push(json!({"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": fmt_time(now)}));
        } else if !unschedulable && has_unsched {
            taints.retain(|t| str_at(t, "/key") != Some(TAINT_UNSCHEDULABLE));
        }
        if taints.as_slice() != old_taints {
            let mut new = (*node).clone();
            if taints.is_empty() {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("taints");
                }
            } else {
                new["spec"]["taints"] = Value::Array(taints.clone());
            }
            let detail = match wanted_key {
                Some(k) => format!("taint {k}"),
                None => "node ready: remove taints".to_string(),
            };
            match w.update(new, &detail) {
                Some(n) => node = Arc::new(n),
                None => continue,
            }
        }
        // 3. A node that is not Ready: its pods are not ready either.
        if ready != "True" {
            for pod in pods_on_node(&pods, &name) {
                if is_terminating(pod) || util::pod_terminal(pod) || !util::pod_ready(pod) {
                    continue;
                }
                let Some(pod) = fresh(w.objects, pod) else {
                    continue;
                };
                let mut new = pod.clone();
                let mut conds: Vec<Value> = pod
                    .at("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                set_condition(&mut conds, "Ready", "False", None, None, now, false);
                new["status"]["conditions"] = Value::Array(conds);
                w.update_status(new, "node not ready: mark pod not ready");
            }
        }
        // 4. Taint-based eviction (NoExecute).
        let no_execute: Vec<&Value> = taints
            .iter()
            .filter(|t| str_at(t, "/effect") == Some("NoExecute"))
            .collect();
        if !no_execute.is_empty() {
            for pod in pods_on_node(&pods, &name) {
                if is_terminating(pod) {
                    continue;
                }
                let due = no_execute
                    .iter()
                    .filter_map(|t| eviction_time(pod, t, config).map(|s| (s, *t)))
                    .min_by_key(|(s, _)| *s);
                let Some((due, taint)) = due else { continue };
                if now_s < due {
                    w.report.wake_at(from_secs(due));
                    continue;
                }
                let key = str_at(taint, "/key").unwrap_or("").to_string();
                let Some(pod) = fresh(w.objects, pod) else {
                    continue;
                };
                let pod = &pod;
                let mut marked = pod.clone();
                let mut conds: Vec<Value> = pod
                    .at("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                set_condition(
                    &mut conds,
                    "DisruptionTarget",
                    "True",
                    Some("DeletionByTaintManager"),
                    Some("Taint manager: deleting due to NoExecute taint"),
                    now,
                    false,
                );
                marked["status"]["conditions"] = Value::Array(conds);
                w.update_status(marked, "disruption target");
                w.delete(pod, None, &format!("taint-based eviction: {key}"));
            }
        }
    }
    // 5. Pod GC: pods bound to nodes that no longer exist, and terminating pods on nodes
    //    marked out-of-service, are force-deleted (the kubelet there will never confirm).
    let pods = w.objects.list_shared("v1", "Pod", None);
    for pod in &pods {
        let Some(node_name) = str_at(pod, "/spec/nodeName").filter(|n| !n.is_empty()) else {
            continue;
        };
        let node = nodes.iter().find(|n| util::name(n) == node_name);
        let force = match node {
            None => Some("pod GC: node gone"),
            Some(n) => {
                let oos = node_taints_ref(n).iter().any(|t| {
                    str_at(t, "/key") == Some(TAINT_OUT_OF_SERVICE)
                        && str_at(t, "/effect") == Some("NoExecute")
                });
                (oos && is_terminating(pod)).then_some("pod GC: node out of service")
            }
        };
        if let Some(detail) = force
            && util::i64_at(pod, "/metadata/deletionGracePeriodSeconds") != Some(0)
        {
            w.delete(pod, Some(0), detail);
        }
    }
    report
}
