//! `pods/eviction`, the API `kubectl drain` uses: a pod is deleted unless that would take a
//! PodDisruptionBudget below what it asks for, in which case the request gets 429 and the
//! caller retries. Budgets are judged from the pods as they are now (the same count the
//! disruption controller would publish in `status.disruptionsAllowed`).

use crate::error::ApiError;
use crate::json_ptr::At;
use crate::objects::Objects;
use crate::resources::ResourceInfo;
use crate::selectors::LabelSelector;
use crate::store::{DeleteOptions, Store};
use serde_json::{Value, json};

fn is_ready(pod: &Value) -> bool {
    pod.at("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn counts(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

/// An int-or-percent of `total`, rounding up as the disruption controller does.
fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => p.parse::<i64>().ok().map(|p| (p * total + 99) / 100),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

/// Healthy pods a budget needs, and how many it has, over the pods of its selector.
fn budget(pdb: &Value, pods: &[&Value]) -> (i64, i64) {
    let expected = pods.len() as i64;
    let healthy = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let spec = &pdb["spec"];
    let desired = if let Some(min) = scaled(&spec["minAvailable"], expected) {
        min
    } else if let Some(max) = scaled(&spec["maxUnavailable"], expected) {
        (expected - max).max(0)
    } else {
        // Neither set: the API server defaults minAvailable to 1.
        1
    };
    (desired, healthy)
}

/// The status the disruption controller publishes for `pdb` over the pods of its namespace
/// (`kubectl get pdb` shows ALLOWED DISRUPTIONS from it); evictions are judged by the same
/// numbers. None when the budget's selector is invalid.
pub fn budget_status<'a>(
    pdb: &Value,
    pods_in_namespace: impl IntoIterator<Item = &'a Value>,
) -> Option<Value> {
    let selector = LabelSelector::from_object(&pdb["spec"]["selector"]).ok()?;
    let covered: Vec<&Value> = pods_in_namespace
        .into_iter()
        .filter(|p| counts(p) && selector.matches_labels(p["metadata"]["labels"].as_object()))
        .collect();
    let (desired, healthy) = budget(pdb, &covered);
    Some(json!({
        "observedGeneration": pdb["metadata"]["generation"].as_i64().unwrap_or(1),
        "expectedPods": covered.len(),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": (healthy - desired).max(0),
    }))
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// POST `pods/{name}/eviction` with an Eviction body.
pub fn evict(
    s: &mut Store,
    pods_info: &ResourceInfo,
    ns: &str,
    name: &str,
    eviction: &Value,
) -> Result<(u16, Value), ApiError> {
    if let Some(n) = eviction.at("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {name} != {n}"
        )));
    }
    let pod = s.get(pods_info, Some(ns), name)?;
    let options = DeleteOptions::from_json(&eviction["deleteOptions"]);
    // Pods that are finished, not yet running, or already going need no budget.
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    let exempt = matches!(phase, "Succeeded" | "Failed" | "Pending")
        || !pod["metadata"]["deletionTimestamp"].is_null();
    if !exempt {
        let labels = pod["metadata"]["labels"].as_object();
        let pdbs: Vec<Value> = Objects::list(s, "policy/v1", "PodDisruptionBudget", Some(ns))
            .into_iter()
            .filter(|pdb| {
                LabelSelector::from_object(&pdb["spec"]["selector"])
                    .is_ok_and(|sel| !sel.is_empty() && sel.matches_labels(labels))
            })
            .collect();
        if pdbs.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = pdbs.first() {
            let all = Objects::list(s, "v1", "Pod", Some(ns));
            let selector = LabelSelector::from_object(&pdb["spec"]["selector"])?;
            let covered: Vec<&Value> = all
                .iter()
                .filter(|p| {
                    counts(p) && selector.matches_labels(p["metadata"]["labels"].as_object())
                })
                .collect();
            let (desired, healthy) = budget(pdb, &covered);
            // A ready pod may go only if one disruption is allowed; an unready one as long
            // as the budget is met without it (upstream's IfHealthyBudget policy).
            let allowed = if is_ready(&pod) {
                healthy - desired >= 1
            } else {
                healthy >= desired
            };
            if !allowed {
                let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or_default();
                return Err(ApiError::new(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                )
                .with_details(json!({"causes": [{
                    "reason": "DisruptionBudget",
                    "message": format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"),
                }]})));
            }
        }
    }
    if options.dry_run {
        return Ok((201, success()));
    }
    s.delete(pods_info, Some(ns), name, &options)?;
    Ok((201, success()))
}
