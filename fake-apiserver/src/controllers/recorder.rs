//! Events the built-in controllers record, as kube-controller-manager, the scheduler and the
//! kubelet emit them (reasons and messages worded like upstream's), so `kubectl get events`
//! and `kubectl describe` show what the simulated cluster did.
//!
//! Controllers always note events in their [`StepReport`](super::StepReport) (no store
//! write); [`Recorder::write`] turns them into `core/v1` Events only when
//! `ControllerConfig::events` is on, so deterministic worlds recorded before keep their
//! revisions. Names are `<object>.<hex>` from the injected clock (nanoseconds) plus a
//! sequence number, timestamps from the clock: the same steps give the same events.
//! A repeat of an event (same object, reason and message) bumps its `count` and
//! `lastTimestamp`, as upstream's event correlator does.

use super::util;
use crate::objects::Objects;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;

/// One event a controller would record.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    /// The involvedObject (an ObjectReference).
    pub regarding: Value,
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
    /// `source.component`: statefulset-controller, default-scheduler, kubelet, ...
    pub component: &'static str,
    /// `source.host` (the node, for kubelet events).
    pub host: String,
}

/// The reference to `obj` an event carries; `field_path` names a container
/// (`spec.containers{db}`).
pub fn reference(obj: &Value, field_path: Option<String>) -> Value {
    let mut r = json!({
        "kind": obj.get("kind").cloned().unwrap_or(Value::Null),
        "name": util::name(obj),
        "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
    });
    if let Some(ns) = util::ns_opt(obj) {
        r["namespace"] = json!(ns);
    }
    if obj.get("kind").and_then(Value::as_str) == Some("Node") {
        // Upstream's node events carry the node's name as their uid.
        r["uid"] = json!(util::name(obj));
    } else if !util::uid(obj).is_empty() {
        r["uid"] = json!(util::uid(obj));
    }
    if let Some(rv) = util::str_at(obj, "/metadata/resourceVersion") {
        r["resourceVersion"] = json!(rv);
    }
    if let Some(p) = field_path {
        r["fieldPath"] = json!(p);
    }
    r
}

/// The `source.component` upstream uses for each simulated controller.
pub fn component_of(controller: &str) -> &'static str {
    match controller {
        "statefulset" => "statefulset-controller",
        "replicaset" => "replicaset-controller",
        "deployment" => "deployment-controller",
        "job" => "job-controller",
        "scheduler" => "default-scheduler",
        "kubelet" => "kubelet",
        "node-lifecycle" => "node-controller",
        "disruption" => "controllermanager",
        _ => "kube-controller-manager",
    }
}

/// Writes pending events as `core/v1` Events.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    seq: u64,
    /// (namespace, involved uid or name, reason, message) → event name, for aggregation.
    seen: HashMap<(String, String, &'static str, String), String>,
}

impl Recorder {
    pub fn write(&mut self, objects: &mut dyn Objects, events: &[PendingEvent]) {
        for e in events {
            self.write_one(objects, e);
        }
    }

    fn write_one(&mut self, objects: &mut dyn Objects, e: &PendingEvent) {
        let now = objects.now();
        let ts = util::fmt_time(now);
        let ns = e
            .regarding
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let involved = util::str_at(&e.regarding, "/uid")
            .or_else(|| util::str_at(&e.regarding, "/name"))
            .unwrap_or_default()
            .to_string();
        let key = (ns.clone(), involved, e.reason, e.message.clone());
        if let Some(name) = self.seen.get(&key)
            && let Some(mut old) = objects.get("v1", "Event", Some(&ns), name)
        {
            let count = old.get("count").and_then(Value::as_i64).unwrap_or(1) + 1;
            old["count"] = json!(count);
            old["lastTimestamp"] = json!(ts);
            if objects.update(old).is_ok() {
                return;
            }
        }
        let name = format!(
            "{}.{:x}",
            util::str_at(&e.regarding, "/name").unwrap_or("event"),
            nanos(now).wrapping_add(self.seq)
        );
        self.seq += 1;
        let mut source = json!({"component": e.component});
        if !e.host.is_empty() {
            source["host"] = json!(e.host);
        }
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": e.regarding,
            "reason": e.reason,
            "message": e.message,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": if e.warning { "Warning" } else { "Normal" },
            "eventTime": null,
            "reportingComponent": e.component,
            "reportingInstance": e.host,
        });
        if objects.create(ev).is_ok() {
            self.seen.insert(key, name);
        }
    }
}

fn nanos(t: Timestamp) -> u64 {
    u64::try_from(t.as_nanosecond()).unwrap_or(0)
}
