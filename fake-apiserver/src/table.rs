//! `as=Table` responses, so `kubectl get` prints the usual columns (and a CRD's
//! additionalPrinterColumns).

use crate::clock::parse_time;
use crate::resources::ResourceInfo;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// kubectl's short age format (`5s`, `3m`, `2h`, `4d`).
pub fn age(created: Option<&str>, now: Timestamp) -> String {
    let Some(t) = created.and_then(parse_time) else {
        return "<unknown>".into();
    };
    let secs = (now.as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn jsonpath(obj: &Value, path: &str) -> Value {
    // Only the simple `.a.b.c` and `.a[0].b` forms CRDs use.
    let mut cur = obj;
    for part in path.trim_start_matches('.').split('.') {
        if part.is_empty() {
            continue;
        }
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = match cur.get(name) {
            Some(v) => v,
            None => return Value::Null,
        };
        if let Some(i) = idx {
            cur = match cur.get(i) {
                Some(v) => v,
                None => return Value::Null,
            };
        }
    }
    cur.clone()
}

fn cell(v: &Value) -> Value {
    match v {
        Value::Null => json!("<none>"),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => v.clone(),
        other => json!(other.to_string()),
    }
}

fn builtin_columns(info: &ResourceInfo, o: &Value) -> Vec<(String, String, Value)> {
    let p = |path: &str| o.pointer(path).cloned().unwrap_or(Value::Null);
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            let cs = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = cs.map_or(0, |c| {
                c.iter().filter(|c| c["ready"] == json!(true)).count()
            });
            let restarts: i64 = cs.map_or(0, |c| {
                c.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
            });
            let mut status = p("/status/phase").as_str().unwrap_or("Unknown").to_string();
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                status = "Terminating".into();
            }
            vec![
                (
                    "Ready".into(),
                    "string".into(),
                    json!(format!("{ready}/{total}")),
                ),
                ("Status".into(), "string".into(), json!(status)),
                ("Restarts".into(), "integer".into(), json!(restarts)),
                ("IP".into(), "string".into(), cell(&p("/status/podIP"))),
                ("Node".into(), "string".into(), cell(&p("/spec/nodeName"))),
            ]
        }
        ("apps", "statefulsets") => vec![(
            "Ready".into(),
            "string".into(),
            json!(format!(
                "{}/{}",
                p("/status/readyReplicas").as_i64().unwrap_or(0),
                p("/spec/replicas").as_i64().unwrap_or(0)
            )),
        )],
        ("apps", "deployments") => vec![
            (
                "Ready".into(),
                "string".into(),
                json!(format!(
                    "{}/{}",
                    p("/status/readyReplicas").as_i64().unwrap_or(0),
                    p("/spec/replicas").as_i64().unwrap_or(0)
                )),
            ),
            (
                "Up-to-date".into(),
                "integer".into(),
                json!(p("/status/updatedReplicas").as_i64().unwrap_or(0)),
            ),
            (
                "Available".into(),
                "integer".into(),
                json!(p("/status/availableReplicas").as_i64().unwrap_or(0)),
            ),
        ],
        ("", "services") => vec![
            ("Type".into(), "string".into(), cell(&p("/spec/type"))),
            (
                "Cluster-IP".into(),
                "string".into(),
                cell(&p("/spec/clusterIP")),
            ),
            (
                "External-IP".into(),
                "string".into(),
                json!(service_external_ip(o)),
            ),
            ("Port(s)".into(), "string".into(), json!(service_ports(o))),
        ],
        ("", "persistentvolumeclaims") => vec![
            ("Status".into(), "string".into(), cell(&p("/status/phase"))),
            (
                "Volume".into(),
                "string".into(),
                json!(p("/spec/volumeName").as_str().unwrap_or("")),
            ),
        ],
        ("", "nodes") => {
            let ready = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            vec![("Status".into(), "string".into(), json!(ready))]
        }
        ("", "namespaces") => vec![("Status".into(), "string".into(), cell(&p("/status/phase")))],
        ("", "configmaps") => vec![(
            "Data".into(),
            "integer".into(),
            json!(p("/data").as_object().map_or(0, |m| m.len())),
        )],
        ("", "secrets") => vec![
            ("Type".into(), "string".into(), cell(&p("/type"))),
            (
                "Data".into(),
                "integer".into(),
                json!(p("/data").as_object().map_or(0, |m| m.len())),
            ),
        ],
        ("", "events") | ("events.k8s.io", "events") => {
            let (regarding, message) = if info.group.is_empty() {
                (p("/involvedObject"), p("/message"))
            } else {
                (p("/regarding"), p("/note"))
            };
            let object = format!(
                "{}/{}",
                regarding["kind"].as_str().unwrap_or("").to_lowercase(),
                regarding["name"].as_str().unwrap_or("")
            );
            vec![
                ("Type".into(), "string".into(), cell(&p("/type"))),
                ("Reason".into(), "string".into(), cell(&p("/reason"))),
                ("Object".into(), "string".into(), json!(object)),
                ("Message".into(), "string".into(), cell(&message)),
            ]
        }
        ("policy", "poddisruptionbudgets") => {
            let or_na = |v: Value| if v.is_null() { json!("N/A") } else { cell(&v) };
            vec![
                (
                    "Min Available".into(),
                    "string".into(),
                    or_na(p("/spec/minAvailable")),
                ),
                (
                    "Max Unavailable".into(),
                    "string".into(),
                    or_na(p("/spec/maxUnavailable")),
                ),
                (
                    "Allowed Disruptions".into(),
                    "integer".into(),
                    json!(p("/status/disruptionsAllowed").as_i64().unwrap_or(0)),
                ),
            ]
        }
        _ => vec![],
    }
}

/// kubectl's EXTERNAL-IP: the load balancer's addresses (`<pending>` until it has one) and
/// `spec.externalIPs`; `<none>` otherwise.
fn service_external_ip(o: &Value) -> String {
    let mut ips: Vec<String> = o
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .collect();
    ips.extend(
        o.pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string),
    );
    let ty = o
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    match (ty, ips.is_empty()) {
        ("ExternalName", _) => o
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string(),
        ("LoadBalancer", true) => "<pending>".into(),
        (_, true) => "<none>".into(),
        (_, false) => ips.join(","),
    }
}

/// kubectl's PORT(S): `port[:nodePort]/protocol`, comma-separated.
fn service_ports(o: &Value) -> String {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p.get("port").map(Value::to_string).unwrap_or_default();
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").filter(|n| !n.is_null()) {
                Some(n) => format!("{port}:{n}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

/// Convert an object or list response into a meta.k8s.io/v1 Table.
pub fn to_table(info: &ResourceInfo, v: &Value, now: Timestamp) -> Value {
    let items: Vec<Value> = match v.get("items").and_then(Value::as_array) {
        Some(a) => a.clone(),
        None => vec![v.clone()],
    };
    let custom_cols: Vec<&Value> = info
        .printer_columns
        .iter()
        .filter(|c| c.get("priority").and_then(Value::as_i64).unwrap_or(0) == 0)
        .collect();
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
    ];
    let mut rows = vec![];
    let mut header_done = false;
    let mut age_in_custom = false;
    for o in &items {
        let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
        if info.custom {
            for c in &custom_cols {
                let jp = c
                    .get("jsonPath")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let val = jsonpath(o, jp);
                if jp == ".metadata.creationTimestamp" {
                    age_in_custom = true;
                    cells.push(json!(age(val.as_str(), now)));
                } else {
                    cells.push(cell(&val));
                }
            }
        } else {
            for (_, _, val) in builtin_columns(info, o) {
                cells.push(val);
            }
        }
        if !(info.custom && age_in_custom) {
            cells.push(json!(age(
                o.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str),
                now
            )));
        }
        if !header_done {
            header_done = true;
        }
        let mut partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))});
        if let Some(m) = partial["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        rows.push(json!({"cells": cells, "object": partial}));
    }
    if info.custom {
        for c in &custom_cols {
            defs.push(json!({
                "name": c.get("name").cloned().unwrap_or(json!("")),
                "type": c.get("type").cloned().unwrap_or(json!("string")),
                "format": c.get("format").cloned().unwrap_or(json!("")),
                "description": c.get("description").cloned().unwrap_or(json!("")),
                "priority": 0,
            }));
        }
    } else {
        let sample = items.first().cloned().unwrap_or(json!({}));
        for (n, ty, _) in builtin_columns(info, &sample) {
            // kubectl shows priority > 0 columns only with -o wide.
            let priority = i32::from(n == "IP" || n == "Node");
            defs.push(
                json!({"name": n, "type": ty, "format": "", "description": n, "priority": priority}),
            );
        }
    }
    if !(info.custom && age_in_custom) {
        defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0}));
    }
    let mut md = json!({});
    if let Some(m) = v.get("metadata").filter(|_| v.get("items").is_some()) {
        md = m.clone();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": defs, "rows": rows})
}
