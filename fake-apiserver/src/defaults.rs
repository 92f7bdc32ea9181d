//! Defaults the real API server fills in for built-in kinds, where clients diff against them.

use crate::json_ptr::At;
use serde_json::{Map, Value, json};

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("object")
}

fn default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.into(), v);
    }
}

fn container(c: &mut Value) {
    let m = obj(c);
    default(m, "terminationMessagePath", json!("/dev/termination-log"));
    default(m, "terminationMessagePolicy", json!("File"));
    let latest = m.get("image").and_then(Value::as_str).is_some_and(|i| {
        !i.rsplit('/').next().unwrap_or(i).contains(':') || i.ends_with(":latest")
    });
    default(
        m,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    default(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            default(obj(p), "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe).and_then(Value::as_object_mut) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
        }
    }
}

/// PodSpec defaults (also inside templates).
pub fn pod_spec(spec: &mut Value) {
    let m = obj(spec);
    default(m, "restartPolicy", json!("Always"));
    default(m, "terminationGracePeriodSeconds", json!(30));
    default(m, "dnsPolicy", json!("ClusterFirst"));
    default(m, "securityContext", json!({}));
    default(m, "schedulerName", json!("default-scheduler"));
    default(m, "enableServiceLinks", json!(true));
    if let Some(sa) = m.get("serviceAccountName").cloned() {
        default(m, "serviceAccount", sa);
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                container(c);
            }
        }
    }
    if let Some(vols) = m.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols {
            for (src, field, val) in [
                ("secret", "defaultMode", json!(420)),
                ("configMap", "defaultMode", json!(420)),
                ("projected", "defaultMode", json!(420)),
            ] {
                if let Some(s) = v.get_mut(src).and_then(Value::as_object_mut) {
                    default(s, field, val);
                }
            }
        }
    }
}

fn template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut)
        && let Some(ps) = t.get_mut("spec")
    {
        pod_spec(ps);
    }
}

/// Apply the defaults for `plural` (group-qualified names for non-core groups).
/// Values the API server allocates: a Service's cluster IP and node ports.
pub trait Allocator {
    fn cluster_ip(&mut self) -> String;
    fn node_port(&mut self) -> u16;
}

/// On an update, a Service keeps what was allocated to it when the new object leaves it out
/// (as upstream's registry does): its cluster IPs, and the node port of each port that is
/// still there (same port and protocol) while the type still needs node ports.
pub fn keep_allocated(group: &str, plural: &str, old: &Value, new: &mut Value) {
    if (group, plural) != ("", "services") {
        return;
    }
    let ty = |v: &Value| {
        v.at("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let (old_ty, new_ty) = (ty(old), ty(new));
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if old_ty != "ExternalName" && new_ty != "ExternalName" {
        for k in ["clusterIP", "clusterIPs"] {
            if spec.get(k).is_none_or(|v| v.is_null() || v == "")
                && let Some(v) = old.at(&format!("/spec/{k}"))
            {
                spec.insert(k.into(), v.clone());
            }
        }
    }
    let external = |t: &str| matches!(t, "NodePort" | "LoadBalancer");
    let old_ports = old
        .at("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let proto = |p: &Value| {
        p.get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_string()
    };
    if external(&old_ty) && !external(&new_ty) {
        // Leaving NodePort/LoadBalancer: what the server set for the old type goes, unless
        // the request changed it (then validation decides).
        let unchanged = |k: &str, spec: &Map<String, Value>| {
            spec.get(k).is_some() && spec.get(k) == old.at(&format!("/spec/{k}"))
        };
        for k in ["externalTrafficPolicy", "allocateLoadBalancerNodePorts"] {
            if unchanged(k, spec) {
                spec.remove(k);
            }
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                let same = old_ports
                    .iter()
                    .find(|o| o.get("port") == p.get("port") && proto(o) == proto(p));
                if let (Some(o), Some(m)) = (same, p.as_object_mut())
                    && m.get("nodePort").is_some()
                    && m.get("nodePort") == o.get("nodePort")
                {
                    m.remove("nodePort");
                }
            }
        }
        return;
    }
    if !(external(&old_ty) && external(&new_ty)) {
        return;
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("nodePort").is_some_and(|n| !n.is_null()) {
                continue;
            }
            let same = old_ports
                .iter()
                .find(|o| o.get("port") == p.get("port") && proto(o) == proto(p));
            if let (Some(n), Some(m)) = (same.and_then(|o| o.get("nodePort")), p.as_object_mut()) {
                m.insert("nodePort".into(), n.clone());
            }
        }
    }
}

pub fn apply(group: &str, plural: &str, o: &mut Value, alloc: &mut impl Allocator) {
    match (group, plural) {
        ("", "pods") => {
            if let Some(s) = o.get_mut("spec") {
                pod_spec(s);
                let m = obj(s);
                default(
                    m,
                    "tolerations",
                    json!([
                        {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},
                        {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}
                    ]),
                );
                default(m, "priority", json!(0));
                default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
                default(m, "serviceAccountName", json!("default"));
                default(m, "serviceAccount", json!("default"));
            }
        }
        ("", "services") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
            if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
                if spec
                    .get("clusterIP")
                    .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
                {
                    let ip = alloc.cluster_ip();
                    spec.insert("clusterIP".into(), json!(ip));
                }
                let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
                default(spec, "clusterIPs", json!([ip]));
                default(spec, "ipFamilies", json!(["IPv4"]));
                default(spec, "ipFamilyPolicy", json!("SingleStack"));
                default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            let _ = headless;
            let ty = spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let ty = ty.as_str();
            let external = matches!(ty, "NodePort" | "LoadBalancer");
            if external {
                default(spec, "externalTrafficPolicy", json!("Cluster"));
            }
            if ty == "LoadBalancer" {
                default(spec, "allocateLoadBalancerNodePorts", json!(true));
            }
            let node_ports = external
                && (ty == "NodePort"
                    || spec.get("allocateLoadBalancerNodePorts") != Some(&json!(false)));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    let pm = obj(p);
                    if node_ports && pm.get("nodePort").is_none_or(Value::is_null) {
                        pm.insert("nodePort".into(), json!(alloc.node_port()));
                    }
                    default(pm, "protocol", json!("TCP"));
                    if let Some(port) = pm.get("port").cloned() {
                        default(pm, "targetPort", port);
                    }
                }
            }
        }
        ("", "secrets") => {
            let m = obj(o);
            default(m, "type", json!("Opaque"));
            string_data(m);
        }
        ("", "persistentvolumeclaims") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "volumeMode", json!("Filesystem"));
        }
        ("", "persistentvolumes") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            default(spec, "volumeMode", json!("Filesystem"));
        }
        ("", "namespaces") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "finalizers", json!(["kubernetes"]));
            // Every namespace carries its name as a label (NamespaceDefaultLabelName).
            let name = o.at("/metadata/name").cloned();
            if let Some(n) = name {
                let md = obj(obj(o).entry("metadata").or_insert_with(|| json!({})));
                let labels = obj(md.entry("labels").or_insert_with(|| json!({})));
                default(labels, "kubernetes.io/metadata.name", n);
            }
        }
        ("apps", "statefulsets") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(
                spec,
                "updateStrategy",
                json!({"type":"RollingUpdate","rollingUpdate":{"partition":0}}),
            );
            if let Some(us) = spec
                .get_mut("updateStrategy")
                .and_then(Value::as_object_mut)
                && us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            {
                let ru = obj(us.entry("rollingUpdate").or_insert_with(|| json!({})));
                default(ru, "partition", json!(0));
            }
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted":"Retain","whenScaled":"Retain"}),
            );
            if let Some(vcts) = spec
                .get_mut("volumeClaimTemplates")
                .and_then(Value::as_array_mut)
            {
                for v in vcts {
                    let vm = obj(v);
                    default(vm, "apiVersion", json!("v1"));
                    default(vm, "kind", json!("PersistentVolumeClaim"));
                    let s = obj(vm.entry("spec").or_insert_with(|| json!({})));
                    default(s, "volumeMode", json!("Filesystem"));
                    default(vm, "status", json!({"phase":"Pending"}));
                }
            }
            template(spec);
        }
        ("apps", "deployments") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "replicas", json!(1));
            default(
                spec,
                "strategy",
                json!({"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            template(spec);
        }
        ("apps", "replicasets") | ("apps", "daemonsets") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            if plural == "replicasets" {
                default(spec, "replicas", json!(1));
            }
            template(spec);
        }
        ("batch", "jobs") => job(o),
        ("batch", "cronjobs") => {
            let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(jt) = spec.get_mut("jobTemplate").and_then(|j| j.get_mut("spec")) {
                let js = obj(jt);
                job_spec(js);
            }
        }
        _ => {}
    }
}

/// A Secret's `stringData` is write-only: its entries are encoded into `data` (winning over
/// a `data` key of the same name) and the field itself is never stored, on every write.
fn string_data(m: &mut Map<String, Value>) {
    let Some(Value::Object(plain)) = m.remove("stringData") else {
        return;
    };
    let data = obj(m.entry("data").or_insert_with(|| json!({})));
    for (k, v) in plain {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        data.insert(k, json!(crate::protobuf::base64(text.as_bytes())));
    }
}

fn job_spec(spec: &mut Map<String, Value>) {
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    if spec.get("completions").is_none() && spec.get("parallelism") == Some(&json!(1)) {
        spec.insert("completions".into(), json!(1));
    }
    if let Some(ps) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        pod_spec(ps);
    }
}

fn job(o: &mut Value) {
    let uid = o
        .at("/metadata/uid")
        .and_then(Value::as_str)
        .map(String::from);
    let name = o
        .at("/metadata/name")
        .and_then(Value::as_str)
        .map(String::from);
    let spec = obj(obj(o).entry("spec").or_insert_with(|| json!({})));
    job_spec(spec);
    // The job strategy generates a selector from the uid unless manualSelector is set.
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if let (false, Some(uid), Some(name), None) = (manual, uid, name, spec.get("selector")) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let tmpl = obj(spec.entry("template").or_insert_with(|| json!({})));
        let md = obj(tmpl.entry("metadata").or_insert_with(|| json!({})));
        let labels = obj(md.entry("labels").or_insert_with(|| json!({})));
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("job-name", &name),
        ] {
            labels.insert(k.into(), json!(v));
        }
    }
}

/// Fresh status for kinds whose create strategy resets it.
pub fn initial_status(group: &str, plural: &str, o: &Value) -> Option<Value> {
    Some(match (group, plural) {
        ("", "pods") => json!({"phase": "Pending", "qosClass": qos_class(o)}),
        ("", "namespaces") => json!({"phase": "Active"}),
        ("", "persistentvolumeclaims") => json!({"phase": "Pending"}),
        ("", "persistentvolumes") => json!({"phase": "Pending"}),
        ("", "services") => json!({"loadBalancer": {}}),
        ("apps", "statefulsets") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "deployments")
        | ("apps", "replicasets")
        | ("apps", "daemonsets")
        | ("batch", "jobs")
        | ("batch", "cronjobs")
        | ("policy", "poddisruptionbudgets") => json!({}),
        _ => return None,
    })
}

fn qos_class(pod: &Value) -> &'static str {
    let cs: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| pod.at(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut all_guaranteed = !cs.is_empty();
    for c in &cs {
        let req = c.at("/resources/requests").and_then(Value::as_object);
        let lim = c.at("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        let g = ["cpu", "memory"].iter().all(|r| {
            let l = lim.and_then(|l| l.get(*r));
            l.is_some() && req.and_then(|q| q.get(*r)).is_none_or(|q| Some(q) == l)
        });
        all_guaranteed &= g;
    }
    if !any {
        "BestEffort"
    } else if all_guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
