//! Validation of custom objects against their CRD's structural schema, as kube-apiserver does
//! before storing them: types (`x-kubernetes-int-or-string` included), `required`, `enum`,
//! `minimum`/`maximum`, `minItems`/`maxItems` and `minLength`/`maxLength`. A failed check is
//! the upstream 422 (`Invalid`) with one cause per field, worded as kube-openapi words them, so
//! `kubectl apply` of `replicas: three` fails at once naming the field instead of storing an
//! object no operator can read. Not checked: `pattern`, `format` and CEL rules
//! (`x-kubernetes-validations`). `null` passes everywhere (upstream prunes or accepts it
//! depending on `nullable`; neither stores a wrong type).

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use serde_json::{Map, Value, json};

/// One failed check: the field path (`spec.instances[0].replicas`), upstream's cause reason and
/// the cause message (`Required value`, `Invalid value: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

/// Every failed check of `obj` (a whole custom object) against `schema` (its version's
/// `openAPIV3Schema`). `apiVersion`, `kind` and `metadata` are the server's to check.
pub fn check(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let (Some(m), Some(props)) = (
        obj.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, s) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(v) = m.get(k) {
                value(v, s, k, &mut out);
            }
        }
        required(m, schema, "", &mut out);
    }
    out
}

/// The 422 for `causes` (not empty): one cause is printed inline, several as upstream's
/// bracketed list.
pub fn invalid(info: &ResourceInfo, name: &str, causes: &[Cause]) -> ApiError {
    let kind_group = if info.group.is_empty() {
        info.kind.clone()
    } else {
        format!("{}.{}", info.kind, info.group)
    };
    let each: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let listed = match each.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let mut details = json!({
        "name": name,
        "kind": info.kind,
        "causes": causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect::<Vec<_>>(),
    });
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    ApiError::new(
        422,
        "Invalid",
        format!("{kind_group} \"{name}\" is invalid: {listed}"),
    )
    .with_details(details)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// How Go's `%#v` shows a bad value in upstream's messages.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) => "[]interface {}".into(),
        Value::Object(_) => "map[string]interface {}".into(),
    }
}

/// The JSON type name of a value, as kube-openapi names it.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

fn invalid_value(path: &str, v: &Value, detail: String, out: &mut Vec<Cause>) {
    out.push(Cause {
        field: path.to_string(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {}: {path} in body {detail}", shown(v)),
    });
}

fn required(m: &Map<String, Value>, s: &Value, path: &str, out: &mut Vec<Cause>) {
    for r in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if path.is_empty() && matches!(r, "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if !m.contains_key(r) {
            out.push(Cause {
                field: join(path, r),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            });
        }
    }
}

fn value(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    if v.is_null() {
        return;
    }
    let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let want = s.get("type").and_then(Value::as_str);
    let got = type_of(v);
    if int_or_string {
        if !matches!(got, "integer" | "string") {
            out.push(Cause {
                field: path.to_string(),
                reason: "FieldValueTypeInvalid",
                message: format!(
                    "Invalid value: \"{got}\": {path} in body must be of type integer,string: {}",
                    shown(v)
                ),
            });
            return;
        }
    } else if let Some(want) = want {
        let fits = want == got || (want == "number" && got == "integer");
        if !fits {
            out.push(Cause {
                field: path.to_string(),
                reason: "FieldValueTypeInvalid",
                message: format!(
                    "Invalid value: \"{got}\": {path} in body must be of type {want}: {}",
                    shown(v)
                ),
            });
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        out.push(Cause {
            field: path.to_string(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                list.join(", ")
            ),
        });
    }
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            let bound = |b: f64| {
                if b.fract() == 0.0 {
                    format!("{}", b as i64)
                } else {
                    b.to_string()
                }
            };
            if let Some(min) = num("minimum")
                && x < min
            {
                let d = format!("should be greater than or equal to {}", bound(min));
                invalid_value(path, v, d, out);
            }
            if let Some(max) = num("maximum")
                && x > max
            {
                let d = format!("should be less than or equal to {}", bound(max));
                invalid_value(path, v, d, out);
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as f64;
            if let Some(min) = num("minLength")
                && len < min
            {
                invalid_value(path, v, format!("should be at least {min} chars long"), out);
            }
            if let Some(max) = num("maxLength")
                && len > max
            {
                invalid_value(path, v, format!("should be at most {max} chars long"), out);
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if let Some(min) = num("minItems")
                && n < min
            {
                let d = format!("should have at least {min} items");
                invalid_value(path, &json!(items.len()), d, out);
            }
            if let Some(max) = num("maxItems")
                && n > max
            {
                let d = format!("should have at most {max} items");
                invalid_value(path, &json!(items.len()), d, out);
            }
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    value(it, is, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(m) => {
            // An embedded resource's own apiVersion/kind/metadata are not the schema's.
            let embedded = s
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, ps) in props {
                    if embedded && k == "metadata" {
                        continue;
                    }
                    if let Some(child) = m.get(k) {
                        value(child, ps, &join(path, k), out);
                    }
                }
            } else if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, child) in m {
                    value(child, a, &join(path, k), out);
                }
            }
            required(m, s, path, out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["instances", "postgresVersion"],
                    "properties": {
                        "postgresVersion": {"type": "integer", "minimum": 12.0, "maximum": 18.0},
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["dataVolumeClaimSpec"],
                                "properties": {
                                    "name": {"type": "string", "minLength": 1},
                                    "replicas": {"type": "integer", "format": "int32"},
                                    "dataVolumeClaimSpec": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": true},
                                    "cpu": {"x-kubernetes-int-or-string": true},
                                },
                            },
                        },
                        "policy": {"type": "string", "enum": ["Always", "Never"]},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "ratio": {"type": "number", "nullable": true},
                    },
                },
            },
        })
    }

    fn messages(obj: Value) -> Vec<String> {
        check(&obj, &schema())
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn a_valid_object_passes() {
        let ok = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"postgresVersion": 18, "policy": "Always", "labels": {"a": "b"},
                     "ratio": 1, "instances": [{"name": "i", "replicas": 3, "cpu": "500m",
                     "dataVolumeClaimSpec": {"anything": [1]}}]}});
        assert_eq!(messages(ok), Vec::<String>::new());
        // null is never a type error.
        let nulls = json!({"spec": {"postgresVersion": 18, "ratio": null,
            "instances": [{"replicas": null, "dataVolumeClaimSpec": {}}]}});
        assert_eq!(messages(nulls), Vec::<String>::new());
    }

    #[test]
    fn every_failed_check_names_its_field_as_upstream_does() {
        let bad = json!({"spec": {"postgresVersion": 9, "policy": "Sometimes",
            "labels": {"a": 1},
            "instances": [{"name": "", "replicas": "three", "cpu": true}]}});
        assert_eq!(
            messages(bad),
            vec![
                "spec.instances[0].cpu: Invalid value: \"boolean\": spec.instances[0].cpu in body must be of type integer,string: true",
                "spec.instances[0].name: Invalid value: \"\": spec.instances[0].name in body should be at least 1 chars long",
                "spec.instances[0].replicas: Invalid value: \"string\": spec.instances[0].replicas in body must be of type integer: \"three\"",
                "spec.instances[0].dataVolumeClaimSpec: Required value",
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: 1",
                "spec.policy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\"",
                "spec.postgresVersion: Invalid value: 9: spec.postgresVersion in body should be greater than or equal to 12",
            ]
        );
        let empty = json!({"spec": {"instances": []}});
        assert_eq!(
            messages(empty),
            vec![
                "spec.instances: Invalid value: 0: spec.instances in body should have at least 1 items",
                "spec.postgresVersion: Required value",
            ]
        );
    }
}
