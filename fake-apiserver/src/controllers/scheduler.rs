//! A deterministic stand-in for kube-scheduler. Filters: node Ready and schedulable, taints
//! (NoSchedule/NoExecute) against tolerations, nodeSelector, required node affinity,
//! required pod affinity and anti-affinity (both directions), the node's pod capacity, cpu
//! and memory requests against allocatable, and
//! volumes: a claim bound to a node-local PV pins the pod to that PV's node. Score: fewest
//! pods, then node name.

use super::nodes::{TAINT_UNSCHEDULABLE, node_taints, pod_tolerations, tolerates};
use super::util::{self, condition_status, expression_matches, labels, set_condition, str_at};
use super::{ControllerConfig, StepReport, Writer};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Annotation the scheduler sets on a claim whose volume is provisioned for a node
/// (`WaitForFirstConsumer`).
pub const SELECTED_NODE_ANNOTATION: &str = "volume.kubernetes.io/selected-node";

fn node_ready(node: &Value) -> bool {
    condition_status(node, "/status/conditions", "Ready") == Some("True")
}

/// Node selector terms (`requiredDuringSchedulingIgnoredDuringExecution` or a PV's
/// `nodeAffinity.required`): OR over terms, AND inside each term.
pub(crate) fn node_selector_terms_match(terms: &Value, node: &Value) -> bool {
    let Some(terms) = terms.get("nodeSelectorTerms").and_then(Value::as_array) else {
        return true;
    };
    let node_labels = labels(node);
    let node_name = util::name(node);
    terms.iter().any(|term| {
        let exprs_ok = term
            .get("matchExpressions")
            .and_then(Value::as_array)
            .is_none_or(|es| {
                es.iter()
                    .all(|e| expression_matches(e, |k| node_labels.get(k).map(String::as_str)))
            });
        let fields_ok = term
            .get("matchFields")
            .and_then(Value::as_array)
            .is_none_or(|es| {
                es.iter()
                    .all(|e| expression_matches(e, |k| (k == "metadata.name").then_some(node_name)))
            });
        let empty = term.get("matchExpressions").is_none() && term.get("matchFields").is_none();
        !empty && exprs_ok && fields_ok
    })
}

struct PodAffinityTerm<'a> {
    term: &'a Value,
    owner_ns: &'a str,
}

impl PodAffinityTerm<'_> {
    fn topology_key(&self) -> &str {
        str_at(self.term, "/topologyKey").unwrap_or("kubernetes.io/hostname")
    }

    fn selects(&self, pod: &Value) -> bool {
        let namespaces: Vec<&str> = self
            .term
            .get("namespaces")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ns_ok = if namespaces.is_empty() {
            // namespaceSelector is not modelled; an empty one ({}) means all namespaces.
            self.term
                .get("namespaceSelector")
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
                || util::namespace(pod) == self.owner_ns
        } else {
            namespaces.contains(&util::namespace(pod))
        };
        ns_ok
            && self
                .term
                .get("labelSelector")
                .is_some_and(|s| util::selector_matches(s, &labels(pod)))
    }
}

fn required_terms<'a>(pod: &'a Value, kind: &str) -> Vec<PodAffinityTerm<'a>> {
    pod.at(&format!(
        "/spec/affinity/{kind}/requiredDuringSchedulingIgnoredDuringExecution"
    ))
    .and_then(Value::as_array)
    .map(|a| {
        a.iter()
            .map(|term| PodAffinityTerm {
                term,
                owner_ns: util::namespace(pod),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn same_domain(a: &Value, b: &Value, key: &str) -> bool {
    match (util::label(a, key), util::label(b, key)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Why `node` cannot take `pod`, or None when it can.
// The filters need the whole picture of the pass; a struct would only rename the list.
#[allow(clippy::too_many_arguments)]
fn unfit_reason(
    pod: &Value,
    node: &Value,
    nodes: &BTreeMap<String, Arc<Value>>,
    placed: &[(Arc<Value>, String)],
    anti_owners: &[usize],
    load: &BTreeMap<String, i64>,
    used: &Used,
    pv_terms: &[Value],
) -> Option<String> {
    let tolerations = pod_tolerations(pod);
    if !node_ready(node) {
        return Some("node(s) were not ready".into());
    }
    let unschedulable = node
        .at("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if unschedulable {
        let taint = json!({"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"});
        if !tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Some("node(s) were unschedulable".into());
        }
    }
    for taint in node_taints(node) {
        let effect = str_at(&taint, "/effect").unwrap_or("");
        if effect != "NoSchedule" && effect != "NoExecute" {
            continue;
        }
        if !tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Some(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                str_at(&taint, "/key").unwrap_or(""),
                str_at(&taint, "/value").unwrap_or("")
            ));
        }
    }
    if let Some(sel) = pod.at("/spec/nodeSelector").and_then(Value::as_object) {
        let nl = labels(node);
        if sel
            .iter()
            .any(|(k, v)| nl.get(k).map(String::as_str) != v.as_str())
        {
            return Some("node(s) didn't match Pod's node affinity/selector".into());
        }
    }
    if let Some(req) =
        pod.at("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
        && !node_selector_terms_match(req, node)
    {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    for terms in pv_terms {
        if !node_selector_terms_match(terms, node) {
            return Some("node(s) had volume node affinity conflict".into());
        }
    }
    let capacity = node
        .at("/status/allocatable/pods")
        .and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| v.as_i64())
        })
        .unwrap_or(110);
    if load.get(util::name(node)).copied().unwrap_or(0) >= capacity {
        return Some("Too many pods".into());
    }
    for (resource, requested) in requests(pod) {
        let Some(alloc) = node
            .at(&format!("/status/allocatable/{resource}"))
            .and_then(quantity)
        else {
            continue;
        };
        let used = used
            .get(&(util::name(node).to_string(), resource))
            .copied()
            .unwrap_or(0.0);
        if used + requested > alloc + 1e-9 {
            return Some(format!("Insufficient {resource}"));
        }
    }
    let node_of = |p: &Value| -> Option<&Value> {
        str_at(p, "/spec/nodeName")
            .and_then(|n| nodes.get(n))
            .map(|n| &**n)
    };
    // Required anti-affinity of the incoming pod.
    for term in required_terms(pod, "podAntiAffinity") {
        let key = term.topology_key();
        if placed.iter().any(|(other, _)| {
            term.selects(other) && node_of(other).is_some_and(|on| same_domain(on, node, key))
        }) {
            return Some("node(s) didn't match pod anti-affinity rules".into());
        }
    }
    // Required anti-affinity of pods already placed, against the incoming pod. Only the few
    // placed pods that carry such terms are looked at (found once per pass).
    for other in anti_owners
        .iter()
        .filter_map(|&i| placed.get(i).map(|(o, _)| o))
    {
        let Some(on) = node_of(other) else { continue };
        for term in required_terms(other, "podAntiAffinity") {
            if term.selects(pod) && same_domain(on, node, term.topology_key()) {
                return Some("node(s) didn't satisfy existing pods anti-affinity rules".into());
            }
        }
    }
    // Required pod affinity: some matching pod in the same domain. A pod whose term matches
    // itself may go anywhere when no matching pod exists yet (upstream's special case).
    for term in required_terms(pod, "podAffinity") {
        let key = term.topology_key();
        let any_match = placed.iter().any(|(o, _)| term.selects(o));
        let here = placed.iter().any(|(other, _)| {
            term.selects(other) && node_of(other).is_some_and(|on| same_domain(on, node, key))
        });
        if !here && (any_match || !term.selects(pod)) {
            return Some("node(s) didn't match pod affinity rules".into());
        }
    }
    None
}

/// Requested cpu and memory per node, in cores and bytes.
type Used = BTreeMap<(String, &'static str), f64>;

/// A resource quantity ("500m", "2", "1Gi", "512M", "1e3") in base units.
pub(crate) fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(n * mult)
}

/// The pod's effective cpu and memory requests: the sum over containers, or the largest
/// init container if that is more (limits stand in for missing requests, as the API
/// server defaults them).
fn requests(pod: &Value) -> Vec<(&'static str, f64)> {
    let get = |c: &Value, r: &str| {
        c.at(&format!("/resources/requests/{r}"))
            .or_else(|| c.at(&format!("/resources/limits/{r}")))
            .and_then(quantity)
            .unwrap_or(0.0)
    };
    // Borrowed: copying the container lists was a large share of every scheduler pass.
    let list = |k: &str| {
        pod.get("spec")
            .and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    ["cpu", "memory"]
        .into_iter()
        .map(|r| {
            let sum: f64 = list("containers").iter().map(|c| get(c, r)).sum();
            let init = list("initContainers")
                .iter()
                .map(|c| get(c, r))
                .fold(0.0, f64::max);
            (r, sum.max(init))
        })
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// Assign `spec.nodeName` to pending pods; mark the ones that fit nowhere
/// `PodScheduled=False/Unschedulable` with a scheduler-style message.
pub fn step(objects: &mut dyn Objects, config: &ControllerConfig) -> StepReport {
    let mut report = StepReport::default();
    let now = objects.now();
    let nodes: BTreeMap<String, Arc<Value>> = objects
        .list_shared("v1", "Node", None)
        .into_iter()
        .map(|n| (util::name(&n).to_string(), n))
        .collect();
    let pods = objects.list_shared("v1", "Pod", None);
    let mut placed: Vec<(Arc<Value>, String)> = Vec::new();
    let mut load: BTreeMap<String, i64> = BTreeMap::new();
    let mut used: Used = BTreeMap::new();
    let mut pending: Vec<Arc<Value>> = Vec::new();
    for p in pods {
        match str_at(&p, "/spec/nodeName").filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.to_string();
                placed.push((p, n));
            }
            None => {
                let scheduler = str_at(&p, "/spec/schedulerName").unwrap_or("default-scheduler");
                if !util::is_terminating(&p)
                    && !util::pod_terminal(&p)
                    && scheduler == "default-scheduler"
                {
                    pending.push(p);
                }
            }
        }
    }
    // Most passes find no pending pod: then the nodes' load is not needed.
    if pending.is_empty() {
        return report;
    }
    for (p, n) in &placed {
        if !util::pod_terminal(p) {
            *load.entry(n.clone()).or_default() += 1;
            for (r, q) in requests(p) {
                *used.entry((n.clone(), r)).or_default() += q;
            }
        }
    }
    let has_anti = |p: &Value| !required_terms(p, "podAntiAffinity").is_empty();
    let mut anti_owners: Vec<usize> = placed
        .iter()
        .enumerate()
        .filter(|(_, (p, _))| has_anti(p))
        .map(|(i, _)| i)
        .collect();
    // FIFO by creation time, then namespace/name: deterministic.
    pending.sort_by(|a, b| {
        (
            str_at(a, "/metadata/creationTimestamp").unwrap_or(""),
            util::namespace(a),
            util::name(a),
        )
            .cmp(&(
                str_at(b, "/metadata/creationTimestamp").unwrap_or(""),
                util::namespace(b),
                util::name(b),
            ))
    });
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "scheduler",
    };
    for pod in pending {
        let ns = util::namespace(&pod).to_string();
        // Volumes: claims must exist; bound node-local PVs constrain the node.
        let mut pv_terms = Vec::new();
        let mut unbound_local_claims = Vec::new();
        let mut volume_problem = None;
        for claim in pod
            .at("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| str_at(v, "/persistentVolumeClaim/claimName"))
        {
            let Some(pvc) = w
                .objects
                .get("v1", "PersistentVolumeClaim", Some(&ns), claim)
            else {
                volume_problem = Some(format!("persistentvolumeclaim \"{claim}\" not found"));
                break;
            };
            if util::is_terminating(&pvc) {
                volume_problem = Some(format!(
                    "persistentvolumeclaim \"{claim}\" is being deleted"
                ));
                break;
            }
            match str_at(&pvc, "/spec/volumeName").filter(|s| !s.is_empty()) {
                Some(pv_name) => {
                    if let Some(terms) = w
                        .objects
                        .get("v1", "PersistentVolume", None, pv_name)
                        .and_then(|pv| pv.at("/spec/nodeAffinity/required").cloned())
                    {
                        pv_terms.push(terms);
                    }
                }
                None if config.local_volumes => unbound_local_claims.push(pvc),
                None => {
                    volume_problem =
                        Some("pod has unbound immediate PersistentVolumeClaims".to_string());
                    break;
                }
            }
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(i64, String)> = None;
        if volume_problem.is_none() {
            for (name, node) in &nodes {
                match unfit_reason(
                    &pod,
                    node,
                    &nodes,
                    &placed,
                    &anti_owners,
                    &load,
                    &used,
                    &pv_terms,
                ) {
                    Some(r) => *reasons.entry(r).or_default() += 1,
                    None => {
                        let l = load.get(name).copied().unwrap_or(0);
                        if best.as_ref().is_none_or(|(bl, bn)| (l, name) < (*bl, bn)) {
                            best = Some((l, name.clone()));
                        }
                    }
                }
            }
        }
        let Some((_, node_name)) = best else {
            let message = match volume_problem {
                Some(m) => format!("0/{} nodes are available: {m}.", nodes.len()),
                None if nodes.is_empty() => "no nodes available to schedule pods".to_string(),
                None => {
                    let parts: Vec<String> =
                        reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
                    format!(
                        "0/{} nodes are available: {}. preemption: 0/{} nodes are available: {} Preemption is not helpful for scheduling.",
                        nodes.len(),
                        parts.join(", "),
                        nodes.len(),
                        nodes.len()
                    )
                }
            };
            let mut conds: Vec<Value> = pod
                .at("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if set_condition(
                &mut conds,
                "PodScheduled",
                "False",
                Some("Unschedulable"),
                Some(&message),
                now,
                false,
            ) {
                let mut new = Value::clone(&pod);
                new["status"]["conditions"] = Value::Array(conds);
                if w.update_status(new, "unschedulable").is_some() {
                    w.event(&pod, true, "FailedScheduling", message.clone());
                }
            }
            continue;
        };
        // WaitForFirstConsumer: record the node for the provisioner before binding.
        for mut pvc in unbound_local_claims {
            if str_at(
                &pvc,
                &format!(
                    "/metadata/annotations/{}",
                    SELECTED_NODE_ANNOTATION.replace('/', "~1")
                ),
            )
            .is_none()
            {
                pvc["metadata"]["annotations"][SELECTED_NODE_ANNOTATION] = json!(node_name);
                w.update(pvc, "selected node");
            }
        }
        let mut bound = Value::clone(&pod);
        bound["spec"]["nodeName"] = json!(node_name);
        let Some(bound) = w.update(bound, &format!("bind to {node_name}")) else {
            continue;
        };
        let mut conds: Vec<Value> = bound
            .at("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        set_condition(&mut conds, "PodScheduled", "True", None, None, now, false);
        let mut st = bound.clone();
        st["status"]["conditions"] = Value::Array(conds);
        w.update_status(st, "scheduled");
        let msg = format!(
            "Successfully assigned {}/{} to {node_name}",
            util::namespace(&bound),
            util::name(&bound)
        );
        w.event(&bound, false, "Scheduled", msg);
        *load.entry(node_name.clone()).or_default() += 1;
        for (r, q) in requests(&bound) {
            *used.entry((node_name.clone(), r)).or_default() += q;
        }
        if has_anti(&bound) {
            anti_owners.push(placed.len());
        }
        placed.push((Arc::new(bound), node_name));
    }
    report
}
