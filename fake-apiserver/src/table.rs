//! `as=Table` responses, so `kubectl get` prints the usual columns (and a CRD's
//! additionalPrinterColumns).

use crate::clock::parse_time;
use crate::json_ptr::At;
use crate::resources::ResourceInfo;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// kubectl's age format (`5s`, `3m20s`, `3m`, `2h5m`, `4d3h`), as upstream's
/// `duration.HumanDuration`.
pub fn age(created: Option<&str>, now: Timestamp) -> String {
    let Some(t) = created.and_then(parse_time) else {
        return "<unknown>".into();
    };
    human((now.as_second() - t.as_second()).max(0))
}

/// Upstream's `duration.HumanDuration` of a number of seconds.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let (m, h) = (s / 60, s / 3600);
    let with = |big: i64, unit: &str, small: i64, su: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{su}")
        }
    };
    match () {
        _ if m < 10 => with(m, "m", s % 60, "s"),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => with(h, "h", m % 60, "m"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => with(h / 24, "d", h % 24, "h"),
        _ if h < 24 * 365 * 2 => format!("{}d", h / 24),
        _ if h < 24 * 365 * 8 => with(h / 24 / 365, "y", (h / 24) % 365, "d"),
        _ => format!("{}y", h / 24 / 365),
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

/// One column of a built-in kind's table: name, type, priority (1: only with `-o wide`), and
/// this object's cell.
struct Col(&'static str, &'static str, i32, Value);

fn col(name: &'static str, ty: &'static str, v: Value) -> Col {
    Col(name, ty, 0, v)
}

fn wide(name: &'static str, v: Value) -> Col {
    Col(name, "string", 1, v)
}

fn int_at(o: &Value, path: &str) -> i64 {
    o.at(path).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at<'a>(o: &'a Value, path: &str) -> &'a str {
    o.at(path).and_then(Value::as_str).unwrap_or("")
}

fn or_none(s: String) -> Value {
    json!(if s.is_empty() { "<none>".into() } else { s })
}

/// `metav1.FormatLabelSelector`: `a=b,c in (d,e)`, `<none>` for an empty selector.
fn selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let vals: Vec<&str> = e["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", vals.join(",")),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// A pod template's container names and images (the wide columns of workloads).
fn containers_images(o: &Value, spec: &str) -> [Col; 2] {
    let cs = o.at(spec).and_then(Value::as_array);
    let list = |k: &str| {
        cs.map(|c| {
            c.iter()
                .map(|c| c[k].as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
    };
    [
        wide("Containers", json!(list("name"))),
        wide("Images", json!(list("image"))),
    ]
}

fn has_condition(o: &Value, ty: &str) -> bool {
    o.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

fn since(o: &Value, path: &str, now: Timestamp) -> Option<String> {
    o.at(path)
        .and_then(Value::as_str)
        .map(|t| age(Some(t), now))
}

/// The pod STATUS column as upstream's printer derives it: the phase or pod reason, then a
/// container's waiting or terminated reason, `Running` again when a container still runs,
/// `Terminating` while being deleted.
fn pod_status(o: &Value, now: Timestamp) -> (String, usize, String) {
    let mut reason = str_at(o, "/status/reason").to_string();
    if reason.is_empty() {
        reason = str_at(o, "/status/phase").to_string();
    }
    let statuses = o
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut ready, mut restarts, mut running) = (0usize, 0i64, false);
    let mut last_restart: Option<&str> = None;
    for c in statuses.iter().rev() {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c
            .at("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            && last_restart.is_none_or(|l| t > l)
        {
            last_restart = Some(t);
        }
        let state = &c["state"];
        if let Some(r) = state
            .at("/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            reason = r.into();
        } else if let Some(t) = state.get("terminated") {
            reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => r.into(),
                None if t["signal"].as_i64().unwrap_or(0) != 0 => {
                    format!("Signal:{}", t["signal"])
                }
                None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
            };
        } else if c["ready"] == json!(true) && state.get("running").is_some() {
            running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && running {
        reason = if has_condition(o, "Ready") {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
    let terminal = matches!(str_at(o, "/status/phase"), "Succeeded" | "Failed");
    if o.at("/metadata/deletionTimestamp").is_some() {
        if str_at(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !terminal {
            reason = "Terminating".into();
        }
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", age(Some(t), now)),
        _ => restarts.to_string(),
    };
    (reason, ready, restarts)
}

/// Columns of built-in kinds as kube-apiserver's printers give them (Name and Age included,
/// in their place); `None`: just Name and Age.
fn builtin_columns(info: &ResourceInfo, o: &Value, now: Timestamp) -> Option<Vec<Col>> {
    let name = col(
        "Name",
        "string",
        o.at("/metadata/name").cloned().unwrap_or(json!("")),
    );
    let age_col = col(
        "Age",
        "string",
        json!(age(
            o.at("/metadata/creationTimestamp").and_then(Value::as_str),
            now
        )),
    );
    let p = |path: &str| o.at(path).cloned().unwrap_or(Value::Null);
    let sel = || wide("Selector", json!(selector(o.at("/spec/selector"))));
    let cols = match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            let (status, ready, restarts) = pod_status(o, now);
            let total = o
                .at("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let gates = o
                .at("/spec/readinessGates")
                .and_then(Value::as_array)
                .map(|g| {
                    let ok = g
                        .iter()
                        .filter(|g| has_condition(o, g["conditionType"].as_str().unwrap_or("")))
                        .count();
                    format!("{ok}/{}", g.len())
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                col("Ready", "string", json!(format!("{ready}/{total}"))),
                col("Status", "string", json!(status)),
                col("Restarts", "string", json!(restarts)),
                age_col,
                wide("IP", or_none(str_at(o, "/status/podIP").into())),
                wide("Node", or_none(str_at(o, "/spec/nodeName").into())),
                wide(
                    "Nominated Node",
                    or_none(str_at(o, "/status/nominatedNodeName").into()),
                ),
                wide("Readiness Gates", json!(gates)),
            ]
        }
        ("apps", "statefulsets") => {
            let [c, i] = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                col(
                    "Ready",
                    "string",
                    json!(format!(
                        "{}/{}",
                        int_at(o, "/status/readyReplicas"),
                        int_at(o, "/spec/replicas")
                    )),
                ),
                age_col,
                c,
                i,
            ]
        }
        ("apps", "deployments") => {
            let [c, i] = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                col(
                    "Ready",
                    "string",
                    json!(format!(
                        "{}/{}",
                        int_at(o, "/status/readyReplicas"),
                        int_at(o, "/spec/replicas")
                    )),
                ),
                col(
                    "Up-to-date",
                    "integer",
                    json!(int_at(o, "/status/updatedReplicas")),
                ),
                col(
                    "Available",
                    "integer",
                    json!(int_at(o, "/status/availableReplicas")),
                ),
                age_col,
                c,
                i,
                sel(),
            ]
        }
        ("apps", "replicasets") => {
            let [c, i] = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                col("Desired", "integer", json!(int_at(o, "/spec/replicas"))),
                col("Current", "integer", json!(int_at(o, "/status/replicas"))),
                col(
                    "Ready",
                    "integer",
                    json!(int_at(o, "/status/readyReplicas")),
                ),
                age_col,
                c,
                i,
                sel(),
            ]
        }
        ("apps", "daemonsets") => {
            let [c, i] = containers_images(o, "/spec/template/spec/containers");
            let node_sel = o
                .at("/spec/template/spec/nodeSelector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                col(
                    "Desired",
                    "integer",
                    json!(int_at(o, "/status/desiredNumberScheduled")),
                ),
                col(
                    "Current",
                    "integer",
                    json!(int_at(o, "/status/currentNumberScheduled")),
                ),
                col("Ready", "integer", json!(int_at(o, "/status/numberReady"))),
                col(
                    "Up-to-date",
                    "integer",
                    json!(int_at(o, "/status/updatedNumberScheduled")),
                ),
                col(
                    "Available",
                    "integer",
                    json!(int_at(o, "/status/numberAvailable")),
                ),
                col("Node Selector", "string", or_none(node_sel)),
                age_col,
                c,
                i,
                sel(),
            ]
        }
        ("apps", "controllerrevisions") => {
            let owner = o
                .at("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|r| r.iter().find(|r| r["controller"] == json!(true)))
                .map(|r| {
                    let group = r["apiVersion"]
                        .as_str()
                        .and_then(|a| a.split_once('/'))
                        .map(|(g, _)| format!(".{g}"))
                        .unwrap_or_default();
                    format!(
                        "{}{group}/{}",
                        r["kind"].as_str().unwrap_or_default().to_lowercase(),
                        r["name"].as_str().unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                col("Controller", "string", json!(owner)),
                col("Revision", "integer", json!(int_at(o, "/revision"))),
                age_col,
            ]
        }
        ("batch", "jobs") => {
            let status = if has_condition(o, "Complete") {
                "Complete"
            } else if has_condition(o, "Failed") {
                "Failed"
            } else if o.at("/metadata/deletionTimestamp").is_some() {
                "Terminating"
            } else if has_condition(o, "Suspended") {
                "Suspended"
            } else if has_condition(o, "FailureTarget") {
                "FailureTarget"
            } else if has_condition(o, "SuccessCriteriaMet") {
                "SuccessCriteriaMet"
            } else {
                "Running"
            };
            let succeeded = int_at(o, "/status/succeeded");
            let completions = match (
                o.at("/spec/completions").and_then(Value::as_i64),
                o.at("/spec/parallelism").and_then(Value::as_i64),
            ) {
                (Some(c), _) => format!("{succeeded}/{c}"),
                (None, Some(par)) if par > 1 => format!("{succeeded}/1 of {par}"),
                _ => format!("{succeeded}/1"),
            };
            let start = o
                .at("/status/startTime")
                .and_then(Value::as_str)
                .and_then(parse_time);
            let end = o
                .at("/status/completionTime")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or(now);
            let duration = start
                .map(|s| human(end.as_second() - s.as_second()))
                .unwrap_or_default();
            let [c, i] = containers_images(o, "/spec/template/spec/containers");
            vec![
                name,
                col("Status", "string", json!(status)),
                col("Completions", "string", json!(completions)),
                col("Duration", "string", json!(duration)),
                age_col,
                c,
                i,
                sel(),
            ]
        }
        ("batch", "cronjobs") => {
            let [c, i] = containers_images(o, "/spec/jobTemplate/spec/template/spec/containers");
            let suspend = if p("/spec/suspend") == json!(true) {
                "True"
            } else {
                "False"
            };
            vec![
                name,
                col("Schedule", "string", json!(str_at(o, "/spec/schedule"))),
                col(
                    "Timezone",
                    "string",
                    or_none(str_at(o, "/spec/timeZone").into()),
                ),
                col("Suspend", "boolean", json!(suspend)),
                col(
                    "Active",
                    "integer",
                    json!(
                        o.at("/status/active")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len)
                    ),
                ),
                col(
                    "Last Schedule",
                    "string",
                    json!(since(o, "/status/lastScheduleTime", now).unwrap_or("<none>".into())),
                ),
                age_col,
                c,
                i,
                wide(
                    "Selector",
                    json!(selector(o.at("/spec/jobTemplate/spec/selector"))),
                ),
            ]
        }
        ("", "services") => {
            let ty = str_at(o, "/spec/type");
            let ingress: Vec<&str> = o
                .at("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                        .collect()
                })
                .unwrap_or_default();
            let mut external: Vec<String> = o
                .at("/spec/externalIPs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let external = match ty {
                "LoadBalancer" => {
                    external.extend(ingress.iter().map(|s| s.to_string()));
                    if external.is_empty() {
                        "<pending>".to_string()
                    } else {
                        external.join(",")
                    }
                }
                "ExternalName" => str_at(o, "/spec/externalName").to_string(),
                _ if !external.is_empty() => external.join(","),
                _ => "<none>".into(),
            };
            let ports: Vec<String> = o
                .at("/spec/ports")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|pt| {
                            let proto = pt["protocol"].as_str().unwrap_or("TCP");
                            match pt["nodePort"].as_i64().filter(|n| *n != 0) {
                                Some(np) => format!("{}:{np}/{proto}", pt["port"]),
                                None => format!("{}/{proto}", pt["port"]),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let svc_sel = o
                .at("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let cluster_ip = str_at(o, "/spec/clusterIP");
            vec![
                name,
                col("Type", "string", json!(ty)),
                col("Cluster-IP", "string", or_none(cluster_ip.into())),
                col("External-IP", "string", json!(external)),
                col("Port(s)", "string", or_none(ports.join(","))),
                age_col,
                wide("Selector", or_none(svc_sel)),
            ]
        }
        ("", "endpoints") => {
            let mut all = vec![];
            for sub in o
                .at("/subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let addrs: Vec<&str> = sub["addresses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|a| a["ip"].as_str()).collect())
                    .unwrap_or_default();
                match sub["ports"].as_array().filter(|p| !p.is_empty()) {
                    Some(ports) => {
                        for pt in ports {
                            for a in &addrs {
                                all.push(format!("{a}:{}", pt["port"]));
                            }
                        }
                    }
                    None => all.extend(addrs.iter().map(|a| a.to_string())),
                }
            }
            let shown = if all.len() > 3 {
                format!("{} + {} more...", all[..3].join(","), all.len() - 3)
            } else {
                all.join(",")
            };
            vec![name, col("Endpoints", "string", or_none(shown)), age_col]
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = o
                .at("/ports")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p["port"].as_i64())
                        .map(|p| p.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let addrs: Vec<&str> = o
                .at("/endpoints")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
                        .filter_map(Value::as_str)
                        .collect()
                })
                .unwrap_or_default();
            let unset = |s: String| json!(if s.is_empty() { "<unset>".into() } else { s });
            let shown = if addrs.len() > 3 {
                format!("{} + {} more...", addrs[..3].join(","), addrs.len() - 3)
            } else {
                addrs.join(",")
            };
            vec![
                name,
                col("AddressType", "string", json!(str_at(o, "/addressType"))),
                col("Ports", "string", unset(ports.join(","))),
                col("Endpoints", "string", unset(shown)),
                age_col,
            ]
        }
        ("", "persistentvolumeclaims") => {
            let modes = access_modes(o.at("/status/accessModes"));
            vec![
                name,
                col("Status", "string", json!(str_at(o, "/status/phase"))),
                col("Volume", "string", json!(str_at(o, "/spec/volumeName"))),
                col(
                    "Capacity",
                    "string",
                    json!(str_at(o, "/status/capacity/storage")),
                ),
                col("Access Modes", "string", json!(modes)),
                col(
                    "StorageClass",
                    "string",
                    json!(str_at(o, "/spec/storageClassName")),
                ),
                col(
                    "VolumeAttributesClass",
                    "string",
                    json!(
                        o.at("/spec/volumeAttributesClassName")
                            .and_then(Value::as_str)
                            .unwrap_or("<unset>")
                    ),
                ),
                age_col,
                wide("VolumeMode", json!(str_at(o, "/spec/volumeMode"))),
            ]
        }
        ("", "nodes") => {
            let mut status = match o
                .at("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            {
                Some(c) if c["status"] == "True" => "Ready",
                Some(_) => "NotReady",
                None => "Unknown",
            }
            .to_string();
            if p("/spec/unschedulable") == json!(true) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<String> = o
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .filter(|r| !r.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            let addr = |ty: &str| {
                o.at("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|a| a["type"] == ty))
                    .and_then(|a| a["address"].as_str())
                    .unwrap_or("<none>")
                    .to_string()
            };
            vec![
                name,
                col("Status", "string", json!(status)),
                col("Roles", "string", or_none(roles.join(","))),
                age_col,
                col(
                    "Version",
                    "string",
                    json!(str_at(o, "/status/nodeInfo/kubeletVersion")),
                ),
                wide("Internal-IP", json!(addr("InternalIP"))),
                wide("External-IP", json!(addr("ExternalIP"))),
                wide(
                    "OS-Image",
                    or_none(str_at(o, "/status/nodeInfo/osImage").into()),
                ),
                wide(
                    "Kernel-Version",
                    or_none(str_at(o, "/status/nodeInfo/kernelVersion").into()),
                ),
                wide(
                    "Container-Runtime",
                    or_none(str_at(o, "/status/nodeInfo/containerRuntimeVersion").into()),
                ),
            ]
        }
        ("", "namespaces") => vec![
            name,
            col("Status", "string", json!(str_at(o, "/status/phase"))),
            age_col,
        ],
        ("", "configmaps") => vec![
            name,
            col(
                "Data",
                "integer",
                json!(
                    p("/data").as_object().map_or(0, |m| m.len())
                        + p("/binaryData").as_object().map_or(0, |m| m.len())
                ),
            ),
            age_col,
        ],
        ("", "secrets") => vec![
            name,
            col("Type", "string", json!(str_at(o, "/type"))),
            col(
                "Data",
                "integer",
                json!(p("/data").as_object().map_or(0, |m| m.len())),
            ),
            age_col,
        ],
        ("", "serviceaccounts") => vec![
            name,
            col(
                "Secrets",
                "integer",
                json!(p("/secrets").as_array().map_or(0, Vec::len)),
            ),
            age_col,
        ],
        ("coordination.k8s.io", "leases") => vec![
            name,
            col("Holder", "string", json!(str_at(o, "/spec/holderIdentity"))),
            age_col,
        ],
        ("", "events") | ("events.k8s.io", "events") => {
            let core = info.group.is_empty();
            let (regarding, message, first, last, count) = if core {
                (
                    p("/involvedObject"),
                    p("/message"),
                    since(o, "/firstTimestamp", now).or_else(|| since(o, "/eventTime", now)),
                    since(o, "/lastTimestamp", now),
                    p("/count"),
                )
            } else {
                (
                    p("/regarding"),
                    p("/note"),
                    since(o, "/deprecatedFirstTimestamp", now)
                        .or_else(|| since(o, "/eventTime", now)),
                    since(o, "/deprecatedLastTimestamp", now),
                    p("/deprecatedCount"),
                )
            };
            let first = first.unwrap_or_else(|| "<unknown>".into());
            let (last, count) = match o.at("/series") {
                Some(s) => (
                    s["lastObservedTime"]
                        .as_str()
                        .map(|t| age(Some(t), now))
                        .unwrap_or_else(|| first.clone()),
                    s["count"].as_i64().unwrap_or(1),
                ),
                None => (
                    last.unwrap_or_else(|| first.clone()),
                    count.as_i64().filter(|c| *c != 0).unwrap_or(1),
                ),
            };
            let kind = regarding["kind"].as_str().unwrap_or("").to_lowercase();
            let target = match regarding["name"].as_str().filter(|n| !n.is_empty()) {
                Some(n) => format!("{kind}/{n}"),
                None => kind,
            };
            // formatEventSource: the source component (else the reporting controller),
            // then ", " and the source host (else the reporting instance) when there is one.
            let (src, controller) = if core {
                ("/source", "/reportingComponent")
            } else {
                ("/deprecatedSource", "/reportingController")
            };
            let first_non_empty = |a: &str, b: &str| {
                let a = str_at(o, a);
                if a.is_empty() { str_at(o, b) } else { a }.to_string()
            };
            let component = first_non_empty(&format!("{src}/component"), controller);
            let instance = first_non_empty(&format!("{src}/host"), "/reportingInstance");
            let source = if instance.is_empty() {
                component
            } else {
                format!("{component}, {instance}")
            };
            vec![
                col("Last Seen", "string", json!(last)),
                col("Type", "string", json!(str_at(o, "/type"))),
                col("Reason", "string", json!(str_at(o, "/reason"))),
                col("Object", "string", json!(target)),
                wide(
                    "Subobject",
                    json!(regarding["fieldPath"].as_str().unwrap_or("")),
                ),
                wide("Source", json!(source)),
                col(
                    "Message",
                    "string",
                    json!(message.as_str().unwrap_or("").trim()),
                ),
                wide("First Seen", json!(first)),
                Col("Count", "integer", 1, json!(count)),
                wide("Name", o.at("/metadata/name").cloned().unwrap_or(json!(""))),
            ]
        }
        ("policy", "poddisruptionbudgets") => {
            let or_na = |v: Value| if v.is_null() { json!("N/A") } else { cell(&v) };
            vec![
                name,
                col("Min Available", "string", or_na(p("/spec/minAvailable"))),
                col(
                    "Max Unavailable",
                    "string",
                    or_na(p("/spec/maxUnavailable")),
                ),
                col(
                    "Allowed Disruptions",
                    "integer",
                    json!(int_at(o, "/status/disruptionsAllowed")),
                ),
                age_col,
            ]
        }
        _ => return None,
    };
    Some(cols)
}

/// `RWO,ROX,RWX,RWOP` as kubectl abbreviates access modes.
fn access_modes(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|m| match m {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// What a Table row carries besides its cells (`?includeObject=`): the object's metadata
/// (the default), the whole object (kubectl asks for it with `--sort-by`), or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    Metadata,
    Object,
    None,
}

impl Include {
    pub fn from_query(v: Option<&str>) -> Self {
        match v {
            Some("Object") => Include::Object,
            Some("None") => Include::None,
            _ => Include::Metadata,
        }
    }
}

/// A Table row: the cells and, as asked, the object's metadata (managedFields left out), the
/// object, or nothing.
fn row(cells: Vec<Value>, o: &Value, include: Include) -> Value {
    match include {
        Include::None => json!({"cells": cells}),
        Include::Object => json!({"cells": cells, "object": o}),
        Include::Metadata => {
            let mut partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))});
            if let Some(m) = partial["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            json!({"cells": cells, "object": partial})
        }
    }
}

/// Convert an object or list response into a meta.k8s.io/v1 Table.
pub fn to_table(info: &ResourceInfo, v: &Value, now: Timestamp) -> Value {
    to_table_with(info, v, now, Include::Metadata)
}

/// [`to_table`] with the rows' objects as `includeObject` asks.
pub fn to_table_with(info: &ResourceInfo, v: &Value, now: Timestamp, include: Include) -> Value {
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
    let mut age_in_custom = false;
    for o in &items {
        let mut cells = vec![o.at("/metadata/name").cloned().unwrap_or(json!(""))];
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
                } else if c.get("type").and_then(Value::as_str) == Some("date") && val.is_string() {
                    // As upstream's CRD table convertor: a date column shows how long ago.
                    cells.push(json!(age(val.as_str(), now)));
                } else {
                    cells.push(cell(&val));
                }
            }
        } else if let Some(cols) = builtin_columns(info, o, now) {
            // Name first, Age in upstream's place: replace the cells pushed so far.
            cells = cols.into_iter().map(|Col(_, _, _, v)| v).collect();
            rows.push(row(cells, o, include));
            continue;
        }
        if !(info.custom && age_in_custom) {
            cells.push(json!(age(
                o.at("/metadata/creationTimestamp").and_then(Value::as_str),
                now
            )));
        }
        rows.push(row(cells, o, include));
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
    } else if let Some(cols) = builtin_columns(info, &json!({}), now) {
        // kubectl shows priority > 0 columns only with -o wide.
        defs = cols
            .into_iter()
            .map(|Col(n, ty, priority, _)| {
                let format = if n == "Name" { "name" } else { "" };
                json!({"name": n, "type": ty, "format": format, "description": n, "priority": priority})
            })
            .collect();
        let mut md = json!({});
        if let Some(m) = v.get("metadata").filter(|_| v.get("items").is_some()) {
            md = m.clone();
        }
        return json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": defs, "rows": rows});
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
