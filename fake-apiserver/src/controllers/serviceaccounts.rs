//! The service-account controller's part that clients see: every active namespace has a
//! `default` ServiceAccount (recreated if deleted), as on a real cluster.

use super::{Action, StepReport};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Value, json};

pub fn step(objects: &mut dyn Objects) -> StepReport {
    let mut report = StepReport::default();
    let active: Vec<String> = objects
        .list("v1", "Namespace", None)
        .iter()
        .filter(|n| n.at("/metadata/deletionTimestamp").is_none())
        .filter(|n| n.at("/status/phase").and_then(Value::as_str) != Some("Terminating"))
        .filter_map(|n| n.at("/metadata/name").and_then(Value::as_str))
        .map(String::from)
        .collect();
    for ns in active {
        if objects
            .get("v1", "ServiceAccount", Some(&ns), "default")
            .is_some()
        {
            continue;
        }
        let action = Action {
            controller: "serviceaccount",
            verb: "create",
            kind: "ServiceAccount".into(),
            namespace: ns.clone(),
            name: "default".into(),
            detail: String::new(),
        };
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns}});
        match objects.create(sa) {
            Ok(_) => report.actions.push(action),
            // Lost a race with a namespace going away: the next step sees it gone.
            Err(e) => report.errors.push((action, e)),
        }
    }
    report
}
