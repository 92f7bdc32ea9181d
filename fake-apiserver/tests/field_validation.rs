//! `?fieldValidation=Strict|Warn|Ignore` on create, update and patch (all four patch types):
//! request → (status, message or Warning headers) tables, custom resources against their
//! structural schema and built-ins against their known fields.

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use tusk_fake_apiserver::{ApiServer, Config, ManualClock};

struct Reply {
    code: u16,
    body: Value,
    warnings: Vec<String>,
}

async fn call(s: &ApiServer, method: &str, uri: &str, ct: Option<&str>, body: &str) -> Reply {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    let resp = s
        .router()
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        code,
        body,
        warnings,
    }
}

/// A server with a Widget CRD (nested properties, a list of objects, a map, a
/// preserve-unknown-fields subtree, an embedded resource) and one Widget and ConfigMap.
async fn server() -> ApiServer {
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 5,
        ..Config::default()
    });
    let schema = json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer"},
            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}});
    s.install_crds(vec![json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}}]}
    })])
    .unwrap();
    let r = call(&s, "POST", "/apis/example.com/v1/namespaces/default/widgets", None,
        r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":1}}"#).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        None,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"b"}}"#,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    s
}

const W: &str = "/apis/example.com/v1/namespaces/default/widgets";
const CM: &str = "/api/v1/namespaces/default/configmaps";

#[rstest]
// Custom resources, create.
#[case::cr_create_strict("POST", "?fieldValidation=Strict", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"},"spec":{"size":1,"foo":2}}"#,
    400, Some(r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.foo""#), &[])]
#[case::cr_create_strict_several("POST", "?fieldValidation=Strict", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n","bogus":1},"spec":{"items":[{"name":"a"},{"nam":"b"}],"tags":{"any":"x"},"free":{"any":{"deep":1}},"template":{"metadata":{"name":"t"},"spec":{"y":1}}},"top":1}"#,
    400, Some(r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "metadata.bogus", unknown field "spec.items[1].nam", unknown field "spec.template.spec.y", unknown field "top""#), &[])]
#[case::cr_create_warn("POST", "?fieldValidation=Warn", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"},"spec":{"foo":2,"bar":{}}}"#,
    201, None, &[r#"299 - "unknown field \"spec.bar\"""#, r#"299 - "unknown field \"spec.foo\"""#])]
#[case::cr_create_default_is_warn("POST", "", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"},"spec":{"foo":2}}"#,
    201, None, &[r#"299 - "unknown field \"spec.foo\"""#])]
#[case::cr_create_ignore("POST", "?fieldValidation=Ignore", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"},"spec":{"foo":2}}"#,
    201, None, &[])]
#[case::cr_create_known_only("POST", "?fieldValidation=Strict", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n","labels":{"a":"b"}},"spec":{"size":1,"free":{"x":1}}}"#,
    201, None, &[])]
#[case::bad_directive("POST", "?fieldValidation=Loud", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"}}"#,
    400, Some(r#"fieldValidation: Invalid value: "Loud": fieldValidation must be one of Ignore, Warn, or Strict"#), &[])]
// Custom resources, update and the patch types.
#[case::cr_update_strict("PUT", "/w?fieldValidation=Strict", None,
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"sise":1}}"#,
    400, Some(r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.sise""#), &[])]
#[case::cr_merge_strict("PATCH", "/w?fieldValidation=Strict", Some("application/merge-patch+json"),
    r#"{"spec":{"foo":1}}"#, 400, Some(r#"strict decoding error: unknown field "spec.foo""#), &[])]
#[case::cr_json_patch_strict("PATCH", "/w?fieldValidation=Strict", Some("application/json-patch+json"),
    r#"[{"op":"add","path":"/spec/items","value":[{"name":"a","x":1}]},{"op":"replace","path":"/spec/foo","value":1}]"#,
    400, Some(r#"strict decoding error: unknown field "spec.foo", unknown field "spec.items[0].x""#), &[])]
#[case::cr_json_patch_known("PATCH", "/w?fieldValidation=Strict", Some("application/json-patch+json"),
    r#"[{"op":"add","path":"/spec/items","value":[{"name":"a"}]},{"op":"replace","path":"/spec/size","value":4}]"#,
    200, None, &[])]
#[case::cr_apply_strict("PATCH", "/w?fieldManager=m&fieldValidation=Strict", Some("application/apply-patch+yaml"),
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":2,"foo":1}}"#,
    400, Some(r#"strict decoding error: unknown field "spec.foo""#), &[])]
#[case::cr_apply_warn("PATCH", "/w?fieldManager=m&force=true&fieldValidation=Warn", Some("application/apply-patch+yaml"),
    r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":2,"foo":1}}"#,
    200, None, &[r#"299 - "unknown field \"spec.foo\"""#])]
#[tokio::test]
async fn custom_resources(
    #[case] method: &str,
    #[case] suffix: &str,
    #[case] ct: Option<&str>,
    #[case] body: &str,
    #[case] code: u16,
    #[case] message: Option<&str>,
    #[case] warnings: &[&str],
) {
    let s = server().await;
    check(
        &s,
        method,
        &format!("{W}{suffix}"),
        ct,
        body,
        code,
        message,
        warnings,
    )
    .await;
}

#[rstest]
#[case::cm_create_strict("POST", "?fieldValidation=Strict", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n","lables":{}},"data":{},"spec":{"foo":1}}"#,
    400, Some(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.lables", unknown field "spec""#), &[])]
#[case::cm_create_warn("POST", "?fieldValidation=Warn", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"dat":{}}"#,
    201, None, &[r#"299 - "unknown field \"dat\"""#])]
#[case::cm_create_ignore("POST", "?fieldValidation=Ignore", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"dat":{}}"#, 201, None, &[])]
#[case::cm_smp_strict("PATCH", "/cm?fieldValidation=Strict", Some("application/strategic-merge-patch+json"),
    r#"{"$patch":"merge","metadata":{"labels":{"a":"b"}},"data":{"c":"d"},"extra":1}"#,
    400, Some(r#"strict decoding error: unknown field "extra""#), &[])]
#[case::cm_smp_known("PATCH", "/cm?fieldValidation=Strict", Some("application/strategic-merge-patch+json"),
    r#"{"metadata":{"labels":{"a":"b"}},"data":{"c":"d"}}"#, 200, None, &[])]
#[case::cm_update_strict("PUT", "/cm?fieldValidation=Strict", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"spec":{}}"#,
    400, Some(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "spec""#), &[])]
#[case::cm_duplicate_strict("POST", "?fieldValidation=Strict", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n","name":"m"},"data":{"a":"1","b":"2","a":"3"},"x":[{"k":1,"k":2}]}"#,
    400, Some(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name", duplicate field "data.a", duplicate field "x[0].k", unknown field "x""#), &[])]
#[case::cm_duplicate_warn("POST", "?fieldValidation=Warn", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":{"a\u0062":"1","ab":"2"}}"#,
    201, None, &[r#"299 - "duplicate field \"data.ab\"""#])]
#[case::cm_duplicate_ignore("POST", "?fieldValidation=Ignore", None,
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":{"a":"1","a":"2"}}"#, 201, None, &[])]
#[tokio::test]
async fn built_ins(
    #[case] method: &str,
    #[case] suffix: &str,
    #[case] ct: Option<&str>,
    #[case] body: &str,
    #[case] code: u16,
    #[case] message: Option<&str>,
    #[case] warnings: &[&str],
) {
    let s = server().await;
    check(
        &s,
        method,
        &format!("{CM}{suffix}"),
        ct,
        body,
        code,
        message,
        warnings,
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn check(
    s: &ApiServer,
    method: &str,
    uri: &str,
    ct: Option<&str>,
    body: &str,
    code: u16,
    message: Option<&str>,
    warnings: &[&str],
) {
    let before = s.lock().revision();
    let r = call(s, method, uri, ct, body).await;
    assert_eq!(r.code, code, "{}", r.body);
    if let Some(m) = message {
        assert_eq!(r.body["reason"], "BadRequest");
        assert_eq!(r.body["message"], m);
        assert_eq!(
            s.lock().revision(),
            before,
            "a rejected write changes nothing"
        );
    }
    let mut got = r.warnings.clone();
    got.sort();
    assert_eq!(got, warnings);
}

/// Under Warn and Ignore the unknown fields of a custom resource are still pruned.
#[tokio::test]
async fn warn_still_prunes() {
    let s = server().await;
    let r = call(&s, "POST", &format!("{W}?fieldValidation=Warn"), None,
        r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"n"},"spec":{"size":3,"foo":2}}"#).await;
    assert_eq!(r.code, 201);
    assert_eq!(r.body["spec"], json!({"size": 3}));
}

fn yaml_docs(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// kubectl validates strictly by default: tusk's CRD (deploy/crd.yaml) must know every field
/// of its own examples and of upstream's (when the shared copies are present).
#[tokio::test]
async fn tusk_crd_knows_every_example_field() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 5,
        ..Config::default()
    });
    s.install_crds(yaml_docs(&root.join("deploy/crd.yaml")))
        .unwrap();
    let mut files: Vec<std::path::PathBuf> = ["cr.yaml", "backup.yaml", "restore.yaml"]
        .iter()
        .map(|f| root.join("deploy").join(f))
        .collect();
    let shared = root.join("../shared/percona");
    let shared = if shared.exists() {
        shared
    } else {
        std::path::PathBuf::from("/work/shared/percona")
    };
    if shared.exists() {
        files.extend(
            ["cr.yaml", "backup.yaml", "restore.yaml"]
                .iter()
                .map(|f| shared.join(f)),
        );
    } else {
        eprintln!("upstream examples not found: checking tusk's own only");
    }
    for f in files {
        for d in yaml_docs(&f) {
            let kind = d["kind"].as_str().unwrap().to_string();
            let plural = format!("{}s", kind.to_lowercase());
            let uri = format!(
                "/apis/pgv2.percona.com/v2/namespaces/default/{plural}?fieldValidation=Strict&dryRun=All"
            );
            let r = call(&s, "POST", &uri, None, &d.to_string()).await;
            assert_eq!(r.code, 201, "{}: {}", f.display(), r.body);
        }
    }
}

/// As kube-apiserver validates custom objects against the CRD's schema before storing them,
/// `kubectl apply` of a cr.yaml with a wrong type or without a required field fails at once
/// with a 422 naming each field; create, merge patch and server-side apply alike. Nothing is
/// stored, so no operator is left with an object it cannot read.
#[tokio::test]
async fn wrong_types_and_missing_required_fields_are_rejected() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 5,
        ..Config::default()
    });
    s.install_crds(yaml_docs(&root.join("deploy/crd.yaml")))
        .unwrap();
    let pg = "/apis/pgv2.percona.com/v2/namespaces/default/perconapgclusters";
    let good = yaml_docs(&root.join("deploy/cr.yaml")).remove(0);

    let mut bad = good.clone();
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["instances"][0]["replicas"] = json!("three");
    bad["spec"]["instances"][0]
        .as_object_mut()
        .unwrap()
        .remove("dataVolumeClaimSpec");
    let r = call(&s, "POST", pg, None, &bad.to_string()).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(
        r.body["message"],
        "PerconaPGCluster.pgv2.percona.com \"bad\" is invalid: [spec.instances[0].replicas: Invalid value: \"string\": spec.instances[0].replicas in body must be of type integer: \"three\", spec.instances[0].dataVolumeClaimSpec: Required value]"
    );
    let fields: Vec<&str> = r.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.instances[0].replicas",
            "spec.instances[0].dataVolumeClaimSpec"
        ]
    );
    let r = call(&s, "GET", &format!("{pg}/bad"), None, "").await;
    assert_eq!(r.code, 404, "nothing stored: {}", r.body);

    // The good cluster is stored; patches that break it are refused and leave it as it was.
    let r = call(&s, "POST", pg, None, &good.to_string()).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let one = format!("{pg}/cluster1");
    let r = call(
        &s,
        "PATCH",
        &one,
        Some("application/merge-patch+json"),
        r#"{"spec":{"postgresVersion":9}}"#,
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["details"]["causes"][0]["message"],
        "Invalid value: 9: spec.postgresVersion in body should be greater than or equal to 12"
    );
    let r = call(
        &s,
        "PATCH",
        &one,
        Some("application/json-patch+json"),
        r#"[{"op":"replace","path":"/spec/instances","value":[]}]"#,
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    let mut applied = good.clone();
    applied["spec"]["instances"][0]["replicas"] = json!(true);
    let r = call(
        &s,
        "PATCH",
        &format!("{one}?fieldManager=kubectl&force=true"),
        Some("application/apply-patch+yaml"),
        &applied.to_string(),
    )
    .await;
    assert_eq!(r.code, 422, "{}", r.body);
    let r = call(&s, "GET", &one, None, "").await;
    assert_eq!(r.body["spec"]["postgresVersion"], 18);
    assert_eq!(r.body["spec"]["instances"][0]["replicas"], 3);
}
