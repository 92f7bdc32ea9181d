//! The endpoints controller: every Service with a selector has an Endpoints object of the
//! same name listing the IPs of its pods (ready ones in `addresses`, others in
//! `notReadyAddresses`) and the target ports resolved against each pod, which is what
//! `kubectl get endpoints` and `describe service` show. Endpoints of Services without a
//! selector belong to whoever writes them (Patroni's leader Endpoints) and are left alone.
//! Each such Service also gets an EndpointSlice (owned by the Service, so the garbage
//! collector removes it with the Service), which `kubectl describe service` reads.

use super::{StepReport, Writer, util};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Marks Endpoints this controller manages (upstream sets the same annotation).
const TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

fn pod_ready(p: &Value) -> bool {
    p.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A Service port's target on one pod: a number, or a named container port.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod
            .at("/spec/containers")
            .and_then(Value::as_array)?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

/// Subsets as upstream repacks them: one per distinct set of resolved ports, addresses
/// sorted by IP.
fn subsets(svc: &Value, pods: &[&Value]) -> Vec<Value> {
    let publish_all = svc.at("/spec/publishNotReadyAddresses") == Some(&json!(true));
    let svc_ports: Vec<Value> = svc
        .at("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut groups: BTreeMap<String, (Value, Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod.at("/status/podIP").and_then(Value::as_str) else {
            continue;
        };
        if util::is_terminating(pod) {
            continue;
        }
        let mut ports = vec![];
        for sp in &svc_ports {
            let Some(n) = target_port(sp, pod) else {
                continue;
            };
            let mut p = Map::new();
            if let Some(name) = sp["name"].as_str().filter(|n| !n.is_empty()) {
                p.insert("name".into(), json!(name));
            }
            p.insert("port".into(), json!(n));
            p.insert(
                "protocol".into(),
                sp.get("protocol").cloned().unwrap_or(json!("TCP")),
            );
            if let Some(a) = sp.get("appProtocol") {
                p.insert("appProtocol".into(), a.clone());
            }
            ports.push(Value::Object(p));
        }
        let mut addr = json!({"ip": ip, "targetRef": {"kind": "Pod", "namespace": util::namespace(pod),
            "name": util::name(pod), "uid": util::uid(pod)}});
        if let Some(node) = pod.at("/spec/nodeName").and_then(Value::as_str) {
            addr["nodeName"] = json!(node);
        }
        let ports = Value::Array(ports);
        let entry = groups
            .entry(ports.to_string())
            .or_insert_with(|| (ports.clone(), vec![], vec![]));
        if publish_all || pod_ready(pod) {
            entry.1.push(addr);
        } else {
            entry.2.push(addr);
        }
    }
    groups
        .into_values()
        .map(|(ports, mut ready, mut not_ready)| {
            let by_ip = |a: &Value, b: &Value| a["ip"].as_str().cmp(&b["ip"].as_str());
            ready.sort_by(by_ip);
            not_ready.sort_by(by_ip);
            let mut s = Map::new();
            if !ready.is_empty() {
                s.insert("addresses".into(), Value::Array(ready));
            }
            if !not_ready.is_empty() {
                s.insert("notReadyAddresses".into(), Value::Array(not_ready));
            }
            if ports.as_array().is_some_and(|p| !p.is_empty()) {
                s.insert("ports".into(), ports);
            }
            Value::Object(s)
        })
        .collect()
}

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// The EndpointSlice content (`kubectl describe service` reads slices, not Endpoints): one
/// IPv4 slice with every pod's address and conditions, ports resolved on the first pod.
fn slice_body(svc: &Value, pods: &[&Value]) -> (Value, Value) {
    let mut endpoints = vec![];
    let mut ports: Option<Vec<Value>> = None;
    let mut live: Vec<&&Value> = pods
        .iter()
        .filter(|p| p.at("/status/podIP").and_then(Value::as_str).is_some())
        .collect();
    live.sort_by_key(|p| p.at("/status/podIP").and_then(Value::as_str));
    for pod in live {
        let terminating = util::is_terminating(pod);
        let ready = pod_ready(pod) && !terminating;
        let mut e = json!({"addresses": [pod["status"]["podIP"]],
            "conditions": {"ready": ready, "serving": pod_ready(pod), "terminating": terminating},
            "targetRef": {"kind": "Pod", "namespace": util::namespace(pod), "name": util::name(pod), "uid": util::uid(pod)}});
        if let Some(node) = pod.at("/spec/nodeName").and_then(Value::as_str) {
            e["nodeName"] = json!(node);
        }
        endpoints.push(e);
        if ports.is_none() {
            ports = Some(
                svc.at("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|sp| {
                        Some(json!({"name": sp["name"].as_str().unwrap_or(""),
                            "port": target_port(sp, pod)?,
                            "protocol": sp.get("protocol").cloned().unwrap_or(json!("TCP"))}))
                    })
                    .collect(),
            );
        }
    }
    (
        Value::Array(endpoints),
        Value::Array(ports.unwrap_or_default()),
    )
}

fn sync_slice(w: &mut Writer<'_>, svc: &Value, pods: &[&Value], slices: &[Value]) {
    let (endpoints, ports) = slice_body(svc, pods);
    let mut labels = svc.at("/metadata/labels").cloned().unwrap_or(json!({}));
    labels[SERVICE_NAME] = json!(util::name(svc));
    labels[MANAGED_BY] = json!(SLICE_CONTROLLER);
    let mine = slices.iter().find(|s| {
        util::namespace(s) == util::namespace(svc)
            && util::label(s, SERVICE_NAME) == Some(util::name(svc))
            && util::label(s, MANAGED_BY) == Some(SLICE_CONTROLLER)
    });
    match mine {
        None => {
            let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": format!("{}-", util::name(svc)), "namespace": util::namespace(svc),
                    "labels": labels, "ownerReferences": [util::controller_ref(svc)]},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
            w.create(slice, "service selector");
        }
        Some(cur) => {
            let empty = json!([]);
            if cur.get("endpoints").unwrap_or(&empty) == &endpoints
                && cur.get("ports").unwrap_or(&empty) == &ports
                && cur.at("/metadata/labels") == Some(&labels)
            {
                return;
            }
            let mut slice = cur.clone();
            slice["metadata"]["labels"] = labels;
            slice["endpoints"] = endpoints;
            slice["ports"] = ports;
            w.update(slice, "pods changed");
        }
    }
}

pub fn step(objects: &mut dyn Objects) -> StepReport {
    let mut report = StepReport::default();
    let services = objects.list("v1", "Service", None);
    let endpoints = objects.list("v1", "Endpoints", None);
    let pods = objects.list("v1", "Pod", None);
    let slices = objects.list("discovery.k8s.io/v1", "EndpointSlice", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "endpoints",
    };
    let now = util::fmt_time(w.now());
    let key = |o: &Value| (util::namespace(o).to_string(), util::name(o).to_string());
    let existing: BTreeMap<(String, String), &Value> =
        endpoints.iter().map(|e| (key(e), e)).collect();
    let mut wanted = std::collections::BTreeSet::new();
    for svc in &services {
        let Some(sel) = svc
            .at("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if svc.at("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
            continue;
        }
        wanted.insert(key(svc));
        let ns = util::namespace(svc);
        let matching: Vec<&Value> = pods
            .iter()
            .filter(|p| util::namespace(p) == ns)
            .filter(|p| {
                let labels = util::labels(p);
                sel.iter()
                    .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
            })
            .collect();
        sync_slice(&mut w, svc, &matching, &slices);
        let subsets = subsets(svc, &matching);
        let mut labels = svc.at("/metadata/labels").cloned().unwrap_or(json!({}));
        if svc.at("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
            labels["service.kubernetes.io/headless"] = json!("");
        }
        match existing.get(&key(svc)) {
            None => {
                let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": util::name(svc), "namespace": ns,
                        "annotations": {TRIGGER: now}}});
                if labels.as_object().is_some_and(|l| !l.is_empty()) {
                    ep["metadata"]["labels"] = labels;
                }
                if !subsets.is_empty() {
                    ep["subsets"] = Value::Array(subsets);
                }
                w.create(ep, "service selector");
            }
            Some(cur) => {
                let same_subsets =
                    cur.get("subsets").cloned().unwrap_or(json!([])) == json!(subsets);
                let same_labels =
                    cur.at("/metadata/labels").cloned().unwrap_or(json!({})) == labels;
                if same_subsets && same_labels {
                    continue;
                }
                let mut ep = (*cur).clone();
                ep["metadata"]["annotations"][TRIGGER] = json!(now);
                if labels.as_object().is_some_and(|l| !l.is_empty()) {
                    ep["metadata"]["labels"] = labels;
                } else if let Some(m) = ep["metadata"].as_object_mut() {
                    m.remove("labels");
                }
                match ep.as_object_mut() {
                    Some(m) if subsets.is_empty() => {
                        m.remove("subsets");
                    }
                    _ => ep["subsets"] = Value::Array(subsets),
                }
                w.update(ep, "pods changed");
            }
        }
    }
    // Endpoints this controller made whose Service is gone (or lost its selector).
    for ep in &endpoints {
        if ep
            .at("/metadata/annotations")
            .and_then(|a| a.get(TRIGGER))
            .is_some()
            && !wanted.contains(&key(ep))
            && !services.iter().any(|s| key(s) == key(ep))
        {
            let (ns, name) = key(ep);
            let a = w.action("delete", ep, "service deleted");
            let r = w
                .objects
                .delete(
                    "v1",
                    "Endpoints",
                    Some(&ns),
                    &name,
                    Some(util::uid(ep)),
                    None,
                )
                .map(|()| Value::Null);
            w.record(a, r);
        }
    }
    report
}
