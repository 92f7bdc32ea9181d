//! Schema helpers: field-level schema overrides and the pass that makes the generated CRD
//! schemas structural.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

/// A free-form object whose keys the API server must keep (upstream:
/// `x-kubernetes-preserve-unknown-fields` on patroni.dynamicConfiguration).
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// `patroni.createReplicaMethods`: a list of `basebackup` / `pgbackrest`.
pub fn create_replica_methods(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "string", "enum": ["basebackup", "pgbackrest"]},
    })
}

/// `users[].databases`: names of 1 to 63 characters, a set.
pub fn user_databases(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 63},
        "x-kubernetes-list-type": "set",
    })
}

/// Rewrites a generated openAPIV3Schema into a structural one:
/// - `null` defaults and JSON-Schema-only keywords (`$schema`, `title`, `examples`) are dropped;
/// - a node that only carries `x-kubernetes-int-or-string` keeps no `type` (as the API server
///   requires), every other node without a `type` but with `properties` becomes an object;
/// - `anyOf`/`oneOf` whose branches each only restate a type are collapsed to that type.
pub fn make_structural(node: &mut Value) {
    let Value::Object(map) = node else { return };
    for key in ["$schema", "title", "examples", "definitions", "$defs"] {
        map.remove(key);
    }
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
    collapse_type_only_alternatives(map, "anyOf");
    collapse_type_only_alternatives(map, "oneOf");
    if !map.contains_key("type")
        && !map.contains_key("x-kubernetes-int-or-string")
        && (map.contains_key("properties") || map.contains_key("additionalProperties"))
    {
        map.insert("type".into(), Value::String("object".into()));
    }
    // `type: [T, "null"]` (schemars' Option encoding) → `type: T, nullable: true`.
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let non_null: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
        if let [one] = non_null.as_slice() {
            map.insert("type".into(), (*one).clone());
            if non_null.len() != types.len() {
                map.insert("nullable".into(), Value::Bool(true));
            }
        }
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for v in props.values_mut() {
            make_structural(v);
        }
    }
    if let Some(items) = map.get_mut("items") {
        make_structural(items);
    }
    if let Some(ap @ Value::Object(_)) = map.get_mut("additionalProperties") {
        make_structural(ap);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            for v in list {
                make_structural(v);
            }
        }
    }
}

fn collapse_type_only_alternatives(map: &mut Map<String, Value>, key: &str) {
    let Some(Value::Array(alts)) = map.get(key) else {
        return;
    };
    let mut ty: Option<Value> = None;
    let mut nullable = false;
    for alt in alts {
        let Value::Object(a) = alt else { return };
        match a.get("type") {
            Some(Value::String(t)) if t == "null" && a.len() == 1 => nullable = true,
            Some(t) if a.len() == 1 => {
                if ty.as_ref().is_some_and(|prev| prev != t) {
                    return;
                }
                ty = Some(t.clone());
            }
            _ => return,
        }
    }
    map.remove(key);
    if let Some(t) = ty {
        map.entry("type").or_insert(t);
    }
    if nullable {
        map.insert("nullable".into(), Value::Bool(true));
    }
}

/// Fields whose type is an embedded Kubernetes structure (k8s-openapi). Their nested
/// descriptions repeat the Kubernetes API reference many times over (every Container, Volume,
/// Affinity...) and would push the cluster CRD past the API server's object size limit, so they
/// are dropped below the field itself; `kubectl explain` still documents tusk's own fields.
const EMBEDDED_K8S_FIELDS: &[&str] = &[
    "affinity",
    "conditions",
    "configuration",
    "containerSecurityContext",
    "customReplicationTLSSecret",
    "customRootCATLSSecret",
    "customTLSSecret",
    "dataVolumeClaimSpec",
    "env",
    "envFrom",
    "files",
    "imagePullSecrets",
    "initContainers",
    "resources",
    "securityContext",
    "sidecarVolumes",
    "sidecars",
    "sshConfigMap",
    "sshSecret",
    "tolerations",
    "topologySpreadConstraints",
    "volumeClaimSpec",
    "volumeMounts",
    "walVolumeClaimSpec",
];

/// Drops the descriptions nested inside embedded Kubernetes structures (see
/// [`EMBEDDED_K8S_FIELDS`]); `sidecarPVCs[].spec` and `extensions.storage.secret` too.
pub fn trim_embedded_descriptions(node: &mut Value) {
    walk_trim(node, None, Trim::Outside);
}

#[derive(Clone, Copy, PartialEq)]
enum Trim {
    /// Not inside an embedded Kubernetes structure.
    Outside,
    /// The field holding the structure: keep its description, drop everything below.
    Root,
    /// Below the field: drop descriptions.
    Inside,
}

fn walk_trim(node: &mut Value, field: Option<&str>, mode: Trim) {
    let Value::Object(map) = node else { return };
    if mode == Trim::Inside {
        map.remove("description");
    }
    let below = if mode == Trim::Outside {
        Trim::Outside
    } else {
        Trim::Inside
    };
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (k, v) in props.iter_mut() {
            let embedded = EMBEDDED_K8S_FIELDS.contains(&k.as_str())
                || (k == "spec" && field == Some("sidecarPVCs"))
                || (k == "secret" && field == Some("storage"));
            let child_mode = if below == Trim::Outside && embedded {
                Trim::Root
            } else {
                below
            };
            walk_trim(v, Some(k), child_mode);
        }
    }
    // Array items and map values belong to the same field.
    let same = if mode == Trim::Root {
        Trim::Inside
    } else {
        mode
    };
    if let Some(items) = map.get_mut("items") {
        walk_trim(items, field, same);
    }
    if let Some(ap @ Value::Object(_)) = map.get_mut("additionalProperties") {
        walk_trim(ap, field, same);
    }
}

/// Why a schema node is not structural, with its path; empty when it is structural.
pub fn structural_violations(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, "", &mut out);
    out
}

fn check(node: &Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = node else {
        out.push(format!("{path}: schema is not an object"));
        return;
    };
    for key in [
        "$ref",
        "$schema",
        "definitions",
        "$defs",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
    ] {
        if map.contains_key(key) {
            out.push(format!("{path}: contains `{key}`"));
        }
    }
    // Keywords the API server refuses in a CRD schema.
    for key in [
        "additionalItems",
        "patternProperties",
        "dependencies",
        "id",
        "const",
    ] {
        if map.contains_key(key) {
            out.push(format!("{path}: contains `{key}`"));
        }
    }
    if map.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push(format!("{path}: uniqueItems: true is not allowed"));
    }
    let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    match map.get("type") {
        Some(Value::String(t)) => {
            if !matches!(
                t.as_str(),
                "object" | "array" | "string" | "integer" | "number" | "boolean"
            ) {
                out.push(format!("{path}: unknown type {t}"));
            }
            if int_or_string {
                out.push(format!("{path}: int-or-string must not carry a type"));
            }
            if t == "array" && !map.contains_key("items") {
                out.push(format!("{path}: array without items"));
            }
        }
        Some(other) => out.push(format!("{path}: type is not a single string: {other}")),
        None if int_or_string => {}
        None => out.push(format!("{path}: missing type")),
    }
    if map.get("default") == Some(&Value::Null) {
        out.push(format!("{path}: null default"));
    }
    if preserve && map.get("type").and_then(Value::as_str) != Some("object") {
        out.push(format!("{path}: preserve-unknown-fields on a non-object"));
    }
    if let Some(props) = map.get("properties") {
        match props {
            Value::Object(props) => {
                for (k, v) in props {
                    check(v, &format!("{path}.{k}"), out);
                }
            }
            _ => out.push(format!("{path}: properties is not a map")),
        }
    }
    if let Some(items) = map.get("items") {
        check(items, &format!("{path}[]"), out);
    }
    match map.get("additionalProperties") {
        Some(ap @ Value::Object(_)) => check(ap, &format!("{path}{{}}"), out),
        Some(Value::Bool(false)) | None => {}
        Some(Value::Bool(true)) => out.push(format!(
            "{path}: additionalProperties: true (use preserve-unknown-fields)"
        )),
        Some(_) => out.push(format!("{path}: bad additionalProperties")),
    }
    if map.contains_key("properties")
        && matches!(map.get("additionalProperties"), Some(Value::Object(_)))
    {
        out.push(format!("{path}: both properties and additionalProperties"));
    }
}
