//! One event storage seen through both APIs, as upstream serves it: events written as
//! `events.k8s.io/v1` (kube-rs' Recorder, tusk's operator) also appear in `core/v1` event
//! lists, converted field by field, so `kubectl get events` and `kubectl describe` show them.

use crate::error::ApiError;
use crate::store::{ListOptions, Store};
use serde_json::{Map, Value, json};

/// An `events.k8s.io/v1` Event as the `core/v1` API shows it.
pub fn to_core(e: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    out.insert("metadata".into(), e["metadata"].clone());
    let mut copy = |from: &str, to: &str| {
        if let Some(v) = e.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    };
    copy("regarding", "involvedObject");
    copy("related", "related");
    copy("reason", "reason");
    copy("note", "message");
    copy("type", "type");
    copy("action", "action");
    copy("eventTime", "eventTime");
    copy("series", "series");
    copy("reportingController", "reportingComponent");
    copy("reportingInstance", "reportingInstance");
    copy("deprecatedFirstTimestamp", "firstTimestamp");
    copy("deprecatedLastTimestamp", "lastTimestamp");
    copy("deprecatedCount", "count");
    let source = e
        .get("deprecatedSource")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"component": e["reportingController"]}));
    out.insert("source".into(), source);
    Value::Object(out)
}

/// Appends the `events.k8s.io/v1` events of `ns` that match `opts` (converted) to a `core/v1`
/// event list that is complete in one page (kubectl asks with `limit=500`); later pages of a
/// paginated list are left as they are, since their continue tokens name one kind.
pub fn merge_into_core_list(
    s: &Store,
    ns: Option<&str>,
    opts: &ListOptions,
    list: &mut Value,
) -> Result<(), ApiError> {
    let more_pages = list["metadata"]["continue"]
        .as_str()
        .is_some_and(|c| !c.is_empty());
    if opts.continue_token.is_some() || more_pages {
        return Ok(());
    }
    let Some(info) = s.registry().by_gvk("events.k8s.io/v1", "Event") else {
        return Ok(());
    };
    let labels_only = ListOptions {
        labels: opts.labels.clone(),
        fields: Default::default(),
        limit: None,
        continue_token: None,
        resource_version: None,
        resource_version_match: None,
    };
    let other = s.list(&info, ns, &labels_only)?;
    let converted: Vec<Value> = other["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(to_core)
        .filter(|e| opts.fields.matches(e))
        .collect();
    if let Some(items) = list["items"].as_array_mut() {
        items.extend(converted);
    }
    Ok(())
}
