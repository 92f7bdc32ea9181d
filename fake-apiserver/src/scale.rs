//! The `/scale` subresource (autoscaling/v1 Scale) for kinds that declare one.

use crate::error::ApiError;
use crate::json_ptr::At;
use crate::patch::{self, PatchKind};
use crate::resources::ResourceInfo;
use crate::selectors::LabelSelector;
use crate::store::{Store, WriteOptions};
use serde_json::{Value, json};

fn ptr(path: &str) -> String {
    path.replace('.', "/")
}

fn to_scale(info: &ResourceInfo, obj: &Value) -> Value {
    let spec = info.scale.as_ref().expect("caller checked");
    let replicas = obj
        .at(&ptr(&spec.spec_replicas_path))
        .cloned()
        .unwrap_or(json!(0));
    let status_replicas = obj
        .at(&ptr(&spec.status_replicas_path))
        .cloned()
        .unwrap_or(json!(0));
    let selector = spec
        .label_selector_path
        .as_ref()
        .and_then(|p| obj.at(&ptr(p)))
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => LabelSelector::from_object(other)
                .map(|l| l.to_string_form())
                .unwrap_or_default(),
        });
    let md = &obj["metadata"];
    let mut status = json!({"replicas": status_replicas});
    if let Some(s) = selector {
        status["selector"] = json!(s);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": md["name"], "namespace": md.get("namespace").cloned().unwrap_or(Value::Null),
            "uid": md["uid"], "resourceVersion": md["resourceVersion"],
            "creationTimestamp": md["creationTimestamp"],
        },
        "spec": {"replicas": replicas},
        "status": status,
    })
}

pub fn get(
    s: &Store,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let obj = s.get(info, ns, name)?;
    Ok(to_scale(info, &obj))
}

pub fn update(
    s: &mut Store,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scale: &Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let obj = s.get(info, ns, name)?;
    let want_rv = scale
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cur_rv = obj
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !want_rv.is_empty() && want_rv != cur_rv {
        return Err(ApiError::conflict(info, name));
    }
    let replicas = scale
        .at("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::invalid_simple(format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Required value"
            ))
        })?;
    if replicas < 0 {
        return Err(ApiError::invalid_simple(format!(
            "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
        )));
    }
    let mut new = obj.clone();
    let path = &info.scale.as_ref().expect("checked").spec_replicas_path;
    set_path(&mut new, path, json!(replicas));
    let (stored, _) = s.replace(info, ns, name, new, opts)?;
    Ok(to_scale(info, &stored))
}

pub fn patch(
    s: &mut Store,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    kind: PatchKind,
    body: &Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let mut scale = get(s, info, ns, name)?;
    let cur_rv = scale["metadata"]["resourceVersion"].clone();
    match kind {
        PatchKind::Json => patch::json_patch(&mut scale, body)?,
        _ => patch::merge_patch(&mut scale, body),
    }
    // Only a resourceVersion written by the patch is a precondition.
    if scale["metadata"]["resourceVersion"] == cur_rv {
        scale["metadata"]["resourceVersion"] = json!("");
    }
    update(s, info, ns, name, &scale, opts)
}

fn set_path(obj: &mut Value, path: &str, v: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let m = cur.as_object_mut().expect("object");
        if i == parts.len() - 1 {
            m.insert(p.to_string(), v);
            return;
        }
        cur = m.entry(p.to_string()).or_insert_with(|| json!({}));
    }
}
