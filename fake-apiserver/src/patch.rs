//! Patch algorithms: JSON merge patch (RFC 7386), JSON patch (RFC 6902, with the `test`
//! quirk Kubernetes inherits from evanphx/json-patch) and strategic merge patch for built-ins.

use crate::error::ApiError;
use crate::json_ptr::At;
use crate::managed::{Ctx, ListType};
use serde_json::{Map, Value};

/// The patch flavours selected by the request Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Apply an RFC 6902 patch. A `test` whose expected value is null passes when the path is
/// absent (kube-runtime's finalizer helper relies on this).
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    let mut kept = Vec::with_capacity(ops.len());
    for op in ops {
        let is_null_test = op.get("op").and_then(Value::as_str) == Some("test")
            && op.get("value").is_none_or(Value::is_null);
        if is_null_test {
            let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
            // Evaluated against the document as it is at this point of the patch.
            let mut probe = target.clone();
            let prefix: json_patch::Patch = serde_json::from_value(Value::Array(kept.clone()))
                .map_err(|e| {
                    ApiError::invalid_simple(format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ))
                })?;
            json_patch::patch(&mut probe, &prefix)
                .map_err(|e| ApiError::invalid_simple(e.to_string()))?;
            match probe.at(path) {
                None | Some(Value::Null) => continue,
                Some(_) => {
                    return Err(ApiError::invalid_simple(format!(
                        "the server rejected our request due to an error in our request: testing value {path} failed: test failed"
                    )));
                }
            }
        }
        kept.push(op.clone());
    }
    let p: json_patch::Patch = serde_json::from_value(Value::Array(kept)).map_err(|e| {
        ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })?;
    json_patch::patch(target, &p).map_err(|e| {
        ApiError::invalid_simple(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })
}

/// SMP list semantics for built-in fields: merge keys differ a little from SSA's.
fn smp_list_type(ctx: &Ctx) -> ListType {
    match ctx.field {
        "finalizers" if ctx.parent == "metadata" => ListType::Set,
        "ownerReferences" if ctx.parent == "metadata" => ListType::Map(vec!["uid".into()]),
        "ports" if ctx.parent == "spec" => ListType::Map(vec!["port".into()]),
        "ports" => ListType::Map(vec!["containerPort".into()]),
        "topologySpreadConstraints" => ListType::Map(vec!["topologyKey".into()]),
        "taints" => ListType::Map(vec!["key".into()]),
        "tolerations" | "subsets" | "args" | "command" => ListType::Atomic,
        _ => crate::managed::builtin_list_type(ctx.field, ctx.parent),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn same_key(a: &Value, b: &Value, keys: &[String]) -> bool {
    keys.iter().all(|k| a.get(k) == b.get(k)) && keys.iter().any(|k| a.get(k).is_some())
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge(target: &mut Value, patch: &Value, ctx: Ctx) {
    let Some(pm) = patch.as_object() else {
        *target = strip_directives(patch);
        return;
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let retain: Option<Vec<String>> = pm.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect()
    });
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(arr), Some(del)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                pv.as_array(),
            ) {
                arr.retain(|e| !del.contains(e));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let tm = target.as_object_mut().expect("made an object above");
        if pv.is_null() {
            tm.remove(k);
            continue;
        }
        let c = ctx.child(k);
        match pv {
            Value::Object(po) => {
                if po.get("$patch").and_then(Value::as_str) == Some("delete") {
                    tm.remove(k);
                    continue;
                }
                let entry = tm
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                strategic_merge(entry, pv, c);
            }
            Value::Array(pa) => {
                let lt = smp_list_type(&c);
                let existing = tm.get_mut(k).and_then(Value::as_array_mut);
                match (lt, existing) {
                    (ListType::Set, Some(ta)) => {
                        for it in pa {
                            if !ta.contains(it) {
                                ta.push(it.clone());
                            }
                        }
                    }
                    (ListType::Map(keys), Some(ta)) => {
                        let replace_all = pa
                            .iter()
                            .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"));
                        if replace_all {
                            *ta = pa
                                .iter()
                                .filter(|e| e.get("$patch").is_none())
                                .map(strip_directives)
                                .collect();
                            continue;
                        }
                        for it in pa {
                            let del = it.get("$patch").and_then(Value::as_str) == Some("delete");
                            match ta.iter().position(|t| same_key(t, it, &keys)) {
                                Some(i) if del => {
                                    ta.remove(i);
                                }
                                Some(i) => strategic_merge(&mut ta[i], it, c.item()),
                                None if del => {}
                                None => ta.push(strip_directives(it)),
                            }
                        }
                    }
                    _ => {
                        let cleaned: Vec<Value> = pa
                            .iter()
                            .filter(|e| e.get("$patch").and_then(Value::as_str) != Some("delete"))
                            .map(strip_directives)
                            .collect();
                        tm.insert(k.clone(), Value::Array(cleaned));
                    }
                }
            }
            other => {
                tm.insert(k.clone(), other.clone());
            }
        }
    }
    if let (Some(keep), Some(tm)) = (retain, target.as_object_mut()) {
        tm.retain(|k, _| keep.contains(k));
    }
}
