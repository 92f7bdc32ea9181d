//! CustomResourceDefinitions: turning a CRD object into served resources, its status, and
//! structural-schema defaulting and pruning of custom objects.

use crate::error::ApiError;
use crate::json_ptr::At;
use crate::resources::{ResourceInfo, ScaleSpec};
use serde_json::{Value, json};
use std::sync::Arc;

/// The resources a CRD serves (one per served version).
pub fn resources_of(crd: &Value) -> Result<Vec<ResourceInfo>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural: Required value")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind: Required value")?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let short = strs(names.get("shortNames"));
    let categories = strs(names.get("categories"));
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions: Required value")?;
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or(versions.first())
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .ok_or("spec.versions: must have exactly one storage version")?
        .to_string();
    let mut out = vec![];
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[].name: Required value")?;
        let sub = v.get("subresources");
        let scale = sub.and_then(|s| s.get("scale")).map(|s| ScaleSpec {
            spec_replicas_path: s
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".spec.replicas")
                .into(),
            status_replicas_path: s
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".status.replicas")
                .into(),
            label_selector_path: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(String::from),
        });
        out.push(ResourceInfo {
            group: group.into(),
            version: name.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: singular.clone(),
            namespaced,
            short_names: short.clone(),
            categories: categories.clone(),
            status: sub.and_then(|s| s.get("status")).is_some(),
            scale,
            custom: true,
            generation: true,
            create_on_update: false,
            return_deleted: true,
            verbs: vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            schema: v.at("/schema/openAPIV3Schema").cloned().map(Arc::new),
            printer_columns: v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            storage_version: storage.clone(),
        });
    }
    Ok(out)
}

/// The status the apiextensions controllers would write once the names are accepted.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let names = crd.at("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if accepted.get("singular").is_none()
        && let Some(k) = names.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(k.to_ascii_lowercase());
    }
    if accepted.get("listKind").is_none()
        && let Some(k) = names.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{k}List"));
    }
    let stored: Vec<Value> = crd
        .at("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    })
}

/// Defaulting and pruning from the structural schema (top-level apiVersion/kind/metadata are
/// never pruned).
pub fn default_and_prune(obj: &mut Value, schema: &Value) {
    walk(obj, schema, true);
}

fn walk(v: &mut Value, s: &Value, top: bool) {
    match v {
        Value::Object(m) => {
            let preserve = s
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            let embedded = s
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let props = s.get("properties").and_then(Value::as_object);
            let addl = s.get("additionalProperties");
            if let Some(props) = props {
                if !preserve && addl.is_none() {
                    m.retain(|k, _| {
                        props.contains_key(k)
                            || ((top || embedded)
                                && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                    });
                }
                for (k, ps) in props {
                    if top && k == "metadata" {
                        continue;
                    }
                    match m.get_mut(k) {
                        Some(child) => walk(child, ps, false),
                        None => {
                            if let Some(d) = ps.get("default") {
                                let mut d = d.clone();
                                walk(&mut d, ps, false);
                                m.insert(k.clone(), d);
                            }
                        }
                    }
                }
            } else if let Some(a) = addl.filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    walk(child, a, false);
                }
            } else if !preserve
                && s.get("type").and_then(Value::as_str) == Some("object")
                && !top
                && !embedded
            {
                // A structural object without properties keeps nothing.
                m.clear();
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for it in items {
                    walk(it, is, false);
                }
            }
        }
        _ => {}
    }
}

/// Basic validation of a CRD before it is stored.
pub fn validate(crd: &Value) -> Result<(), String> {
    let infos = resources_of(crd)?;
    let name = crd
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(first) = infos.first() {
        let expected = format!("{}.{}", first.plural, first.group);
        if name != expected {
            return Err(format!(
                "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
            ));
        }
    }
    Ok(())
}

pub fn invalid_crd(name: &str, msg: &str) -> ApiError {
    ApiError::invalid_simple(format!(
        "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: {msg}"
    ))
}
