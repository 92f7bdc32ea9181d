//! Discovery documents (/version, /api, /apis, group versions) and a minimal OpenAPI v3.

use crate::resources::{Registry, ResourceInfo};
use serde_json::{Value, json};

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn api_versions(host: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]
    })
}

fn group_doc(reg: &Registry, group: &str) -> Option<Value> {
    let versions: Vec<String> = reg
        .group_versions()
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(_, v)| v)
        .collect();
    if versions.is_empty() {
        return None;
    }
    // The storage version is preferred (for CRDs), else the first.
    let preferred = reg
        .all()
        .iter()
        .find(|i| i.group == group && i.version == i.storage_version)
        .map(|i| i.version.clone())
        .unwrap_or_else(|| versions[0].clone());
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    Some(json!({
        "name": group, "versions": vs,
        "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred}
    }))
}

pub fn api_group_list(reg: &Registry) -> Value {
    let mut groups: Vec<String> = vec![];
    for (g, _) in reg.group_versions() {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let docs: Vec<Value> = groups.iter().filter_map(|g| group_doc(reg, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
}

pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let mut d = group_doc(reg, group)?;
    d["kind"] = json!("APIGroup");
    d["apiVersion"] = json!("v1");
    Some(d)
}

fn resource_entry(i: &ResourceInfo) -> Value {
    let mut e = json!({
        "name": i.plural, "singularName": i.singular, "namespaced": i.namespaced,
        "kind": i.kind, "verbs": i.verbs,
    });
    if !i.short_names.is_empty() {
        e["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        e["categories"] = json!(i.categories);
    }
    e["storageVersionHash"] = json!(format!("{:x}", simple_hash(&i.group_resource())));
    e
}

pub fn simple_hash(s: &str) -> u64 {
    // FNV-1a: stable across runs, good enough for cache keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let items: Vec<&std::sync::Arc<ResourceInfo>> = reg
        .all()
        .iter()
        .filter(|i| i.group == group && i.version == version)
        .collect();
    if items.is_empty() {
        return None;
    }
    let mut rs = vec![];
    for i in items {
        rs.push(resource_entry(i));
        if i.status {
            rs.push(json!({"name": format!("{}/status", i.plural), "singularName": "", "namespaced": i.namespaced, "kind": i.kind, "verbs": ["get", "patch", "update"]}));
        }
        if i.scale.is_some() {
            rs.push(json!({"name": format!("{}/scale", i.plural), "singularName": "", "namespaced": i.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if i.plural == "pods" && i.group.is_empty() {
            rs.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
            rs.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rs}),
    )
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn gv_hash(reg: &Registry, group: &str, version: &str) -> String {
    let mut s = String::new();
    for i in reg
        .all()
        .iter()
        .filter(|i| i.group == group && i.version == version)
    {
        s.push_str(&i.kind);
        s.push(',');
    }
    format!("{:016X}", simple_hash(&s))
}

/// `/openapi/v3`: one entry per served group-version.
pub fn openapi_v3_root(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in reg.group_versions() {
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/{p}?hash={}", gv_hash(reg, &g, &v)).replacen("/", "/openapi/v3/", 1)}),
        );
    }
    json!({"paths": paths})
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// As kube-apiserver publishes a CRD's schema: with `apiVersion`, `kind` and `metadata` (a
/// reference to ObjectMeta) whether or not the CRD's own schema lists them, so
/// `kubectl explain <kind>` shows them and `kubectl explain <kind>.metadata` resolves.
fn with_type_meta(schema: &mut Value) {
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    let props = &mut schema["properties"];
    props["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."});
    props["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."});
    props["metadata"] = json!({"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}],
        "description": "Standard object's metadata."});
}

/// The ObjectMeta fields users set or read, for `kubectl explain <kind>.metadata`.
fn object_meta() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    let map = |d: &str| json!({"type": "object", "additionalProperties": {"type": "string"}, "description": d});
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "properties": {
            "name": s("Name must be unique within a namespace. Cannot be updated."),
            "generateName": s("An optional prefix the server uses to generate a unique name when name is empty."),
            "namespace": s("The namespace the object lives in; an empty namespace is \"default\". Cannot be updated."),
            "labels": map("Map of string keys and values that can be used to organize and categorize (scope and select) objects."),
            "annotations": map("An unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata."),
            "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Must be empty before the object is deleted from the registry; e.g. percona.com/delete-pvc."},
            "ownerReferences": {"type": "array", "items": {"type": "object"}, "description": "Objects this object depends on; it is garbage collected when they are all gone."},
            "uid": s("The unique in time and space value for this object, set by the server. Read-only."),
            "resourceVersion": s("An opaque value that represents the internal version of this object, for optimistic concurrency and watches. Read-only."),
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state. Read-only."},
            "creationTimestamp": s("When this object was created, set by the server. Read-only."),
            "deletionTimestamp": s("When this object will be deleted, set by the server when a graceful deletion is requested. Read-only."),
        },
    })
}

/// `/openapi/v3/<gv>`: a PATCH operation per kind, declaring server-side field validation, so
/// kubectl's default `--validate=strict` trusts the server.
pub fn openapi_v3_gv(reg: &Registry, gv: &str) -> Option<Value> {
    let (group, version) = match gv.strip_prefix("api/") {
        Some(v) => (String::new(), v.to_string()),
        None => {
            let rest = gv.strip_prefix("apis/")?;
            let (g, v) = rest.split_once('/')?;
            (g.to_string(), v.to_string())
        }
    };
    let items: Vec<&std::sync::Arc<ResourceInfo>> = reg
        .all()
        .iter()
        .filter(|i| i.group == group && i.version == version)
        .collect();
    if items.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for i in items {
        let base = if i.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}/{{name}}",
                gv_path(&group, &version),
                i.plural
            )
        } else {
            format!("/{}/{}/{{name}}", gv_path(&group, &version), i.plural)
        };
        let gvk = json!({"group": i.group, "version": i.version, "kind": i.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
        ]);
        paths.insert(
            base,
            json!({
                "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk,
                        "responses": {"200": {"description": "OK"}}},
                "put": {"x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk,
                        "parameters": params, "responses": {"200": {"description": "OK"}}},
                "patch": {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                          "parameters": params, "responses": {"200": {"description": "OK"}}},
            }),
        );
        let schema_name = format!(
            "{}.{}.{}",
            if i.group.is_empty() {
                "io.k8s.api.core"
            } else {
                &i.group
            },
            i.version,
            i.kind
        );
        let mut schema = i.schema.as_deref().cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if i.custom {
            with_type_meta(&mut schema);
            schemas.insert(OBJECT_META.into(), object_meta());
        }
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(schema_name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The media type of aggregated discovery v2, which kubectl 1.32 asks for on `/api` and
/// `/apis` so it learns every resource in two requests instead of one per group-version.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header asks for aggregated discovery v2 (parameters compared exactly,
/// so `v=v2beta1` does not match; clients list it after v2 and fall back to plain JSON).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.first() == Some(&"application/json")
            && params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

fn subresource(name: &str, group: &str, version: &str, kind: &str, verbs: &[&str]) -> Value {
    json!({"subresource": name,
           "responseKind": {"group": group, "version": version, "kind": kind},
           "verbs": verbs})
}

fn aggregated_resource(i: &ResourceInfo) -> Value {
    let mut e = json!({
        "resource": i.plural,
        "responseKind": {"group": i.group, "version": i.version, "kind": i.kind},
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": i.singular,
        "verbs": i.verbs,
    });
    if !i.short_names.is_empty() {
        e["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        e["categories"] = json!(i.categories);
    }
    let mut subs = vec![];
    if i.status {
        subs.push(subresource(
            "status",
            &i.group,
            &i.version,
            &i.kind,
            &["get", "patch", "update"],
        ));
    }
    if i.scale.is_some() {
        subs.push(subresource(
            "scale",
            "autoscaling",
            "v1",
            "Scale",
            &["get", "patch", "update"],
        ));
    }
    if i.plural == "pods" && i.group.is_empty() {
        subs.push(subresource("log", "", "v1", "Pod", &["get"]));
        subs.push(subresource(
            "eviction",
            "policy",
            "v1",
            "Eviction",
            &["create"],
        ));
    }
    if !subs.is_empty() {
        e["subresources"] = json!(subs);
    }
    e
}

/// `/api` (`core` true) or `/apis` as an `APIGroupDiscoveryList`: every group with its
/// versions, the preferred (storage) version first as upstream orders them, and each
/// version's resources with their subresources.
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let mut groups: Vec<String> = vec![];
    for (g, _) in reg.group_versions() {
        if g.is_empty() == core && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut versions: Vec<String> = vec![];
            for (gg, v) in reg.group_versions() {
                if gg == *g && !versions.contains(&v) {
                    versions.push(v);
                }
            }
            if let Some(pref) = reg
                .all()
                .iter()
                .find(|i| i.group == *g && i.version == i.storage_version)
                && let Some(pos) = versions.iter().position(|v| *v == pref.version)
            {
                let v = versions.remove(pos);
                versions.insert(0, v);
            }
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = reg
                        .all()
                        .iter()
                        .filter(|i| i.group == *g && i.version == *v)
                        .map(|i| aggregated_resource(i))
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            let metadata = if core { json!({}) } else { json!({"name": g}) };
            json!({"metadata": metadata, "versions": vs})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
           "metadata": {}, "items": items})
}

/// The answer to a SelfSubjectAccessReview (`kubectl auth can-i`: the one user of this server
/// may do everything, as a cluster admin) or a SelfSubjectReview (`kubectl auth whoami`);
/// None for other kinds. Reviews are not stored.
pub fn review(info: &crate::resources::ResourceInfo, body: &Value) -> Option<Value> {
    let mut out = body.clone();
    if !out.is_object() {
        out = json!({});
    }
    out["apiVersion"] = json!(info.api_version());
    out["kind"] = json!(info.kind);
    match (info.group.as_str(), info.plural.as_str()) {
        ("authorization.k8s.io", "selfsubjectaccessreviews") => {
            out["status"] = json!({"allowed": true});
        }
        ("authentication.k8s.io", "selfsubjectreviews") => {
            out["status"] = json!({"userInfo": {"username": "kubernetes-admin",
                "groups": ["kubeadm:cluster-admins", "system:authenticated"]}});
        }
        _ => return None,
    }
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("creationTimestamp".into(), Value::Null);
    } else {
        out["metadata"] = json!({"creationTimestamp": null});
    }
    Some(out)
}
