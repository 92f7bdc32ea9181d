//! Request → response tables against the HTTP front (in-process, via tower::ServiceExt).

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use tusk_fake_apiserver::{ApiServer, Config, ManualClock};

fn server() -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 42,
        ..Config::default()
    })
}

async fn call(
    s: &ApiServer,
    method: &str,
    uri: &str,
    ct: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    let req = b
        .body(Body::from(body.map(|v| v.to_string()).unwrap_or_default()))
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v)
}

async fn seeded() -> ApiServer {
    let s = server();
    let (c, _) = call(&s, "POST", "/api/v1/namespaces/default/configmaps?", None, Some(json!({"metadata": {"name": "cm", "labels": {"app": "a", "tier": "db"}}, "data": {"k": "v"}}))).await;
    assert_eq!(c, 201);
    let (c, _) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        None,
        Some(json!({"metadata": {"name": "other", "labels": {"app": "b"}}})),
    )
    .await;
    assert_eq!(c, 201);
    s
}

#[rstest]
#[case::get(
    "GET",
    "/api/v1/namespaces/default/configmaps/cm",
    None,
    None,
    200,
    None
)]
#[case::get_missing(
    "GET",
    "/api/v1/namespaces/default/configmaps/nope",
    None,
    None,
    404,
    Some("NotFound")
)]
#[case::unknown_resource(
    "GET",
    "/api/v1/namespaces/default/widgets",
    None,
    None,
    404,
    Some("NotFound")
)]
#[case::duplicate("POST", "/api/v1/namespaces/default/configmaps", None, Some(json!({"metadata": {"name": "cm"}})), 409, Some("AlreadyExists"))]
#[case::rv_on_create("POST", "/api/v1/namespaces/default/configmaps", None, Some(json!({"metadata": {"name": "n", "resourceVersion": "5"}})), 500, Some("InternalError"))]
#[case::wrong_kind("POST", "/api/v1/namespaces/default/configmaps", None, Some(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "n"}})), 400, Some("BadRequest"))]
#[case::ns_mismatch("POST", "/api/v1/namespaces/default/configmaps", None, Some(json!({"metadata": {"name": "n", "namespace": "kube-system"}})), 400, Some("BadRequest"))]
#[case::missing_ns("POST", "/api/v1/namespaces/ghost/configmaps", None, Some(json!({"metadata": {"name": "n"}})), 404, Some("NotFound"))]
#[case::no_name("POST", "/api/v1/namespaces/default/configmaps", None, Some(json!({"metadata": {}})), 422, Some("Invalid"))]
#[case::stale_put("PUT", "/api/v1/namespaces/default/configmaps/cm", None, Some(json!({"metadata": {"name": "cm", "resourceVersion": "1"}})), 409, Some("Conflict"))]
#[case::put_name_mismatch("PUT", "/api/v1/namespaces/default/configmaps/cm", None, Some(json!({"metadata": {"name": "zz"}})), 400, Some("BadRequest"))]
#[case::patch_bad_type("PATCH", "/api/v1/namespaces/default/configmaps/cm", Some("text/plain"), Some(json!({})), 415, Some("UnsupportedMediaType"))]
#[case::patch_rv_precondition("PATCH", "/api/v1/namespaces/default/configmaps/cm", Some("application/strategic-merge-patch+json"), Some(json!({"metadata": {"resourceVersion": "2"}})), 409, Some("Conflict"))]
#[case::json_patch_test_fails("PATCH", "/api/v1/namespaces/default/configmaps/cm", Some("application/json-patch+json"), Some(json!([{"op": "test", "path": "/data/k", "value": "x"}])), 422, Some("Invalid"))]
#[case::apply_without_manager("PATCH", "/api/v1/namespaces/default/configmaps/cm", Some("application/apply-patch+yaml"), Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})), 422, Some("Invalid"))]
#[case::apply_wrong_version("PATCH", "/api/v1/namespaces/default/configmaps/cm?fieldManager=m", Some("application/apply-patch+yaml"), Some(json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "cm"}})), 400, Some("BadRequest"))]
#[case::force_on_merge("PATCH", "/api/v1/namespaces/default/configmaps/cm?force=true", Some("application/merge-patch+json"), Some(json!({})), 422, Some("Invalid"))]
#[case::bad_label_selector(
    "GET",
    "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(",
    None,
    None,
    400,
    Some("BadRequest")
)]
#[case::bad_field_selector(
    "GET",
    "/api/v1/namespaces/default/configmaps?fieldSelector=spec.foo%3Dx",
    None,
    None,
    400,
    Some("BadRequest")
)]
#[case::delete_uid_precondition("DELETE", "/api/v1/namespaces/default/configmaps/cm", None, Some(json!({"preconditions": {"uid": "x"}})), 409, Some("Conflict"))]
#[case::status_on_configmap(
    "GET",
    "/api/v1/namespaces/default/configmaps/cm/status",
    None,
    None,
    404,
    Some("NotFound")
)]
#[tokio::test]
async fn table(
    #[case] method: &str,
    #[case] uri: &str,
    #[case] ct: Option<&str>,
    #[case] body: Option<Value>,
    #[case] code: u16,
    #[case] reason: Option<&str>,
) {
    let s = seeded().await;
    let rev = s.lock().revision();
    let (c, v) = call(&s, method, uri, ct, body).await;
    assert_eq!(c, code, "{v}");
    if let Some(r) = reason {
        assert_eq!(v["kind"], "Status", "{v}");
        assert_eq!(v["reason"], r, "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        // A failed request changes nothing.
        assert_eq!(s.lock().revision(), rev);
    }
}

#[tokio::test]
async fn conflict_message_and_status_body() {
    let s = seeded().await;
    let (c, v) = call(
        &s,
        "PUT",
        "/api/v1/namespaces/default/configmaps/cm",
        None,
        Some(json!({"metadata": {"name": "cm", "resourceVersion": "1"}})),
    )
    .await;
    assert_eq!(c, 409);
    assert_eq!(
        v,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified; please apply your changes to the latest version and try again",
            "reason": "Conflict", "details": {"name": "cm", "kind": "configmaps"}, "code": 409
        })
    );
}

#[rstest]
#[case("app=a", &["cm"])]
#[case("app==a", &["cm"])]
#[case("app!=a", &["other"])]
#[case("app in (a,b)", &["cm", "other"])]
#[case("app notin (a)", &["other"])]
#[case("tier", &["cm"])]
#[case("!tier", &["other"])]
#[case("app=a,tier=db", &["cm"])]
#[case("tier!=web", &["cm", "other"])]
#[tokio::test]
async fn label_selectors(#[case] sel: &str, #[case] names: &[&str]) {
    let s = seeded().await;
    let uri = format!(
        "/api/v1/namespaces/default/configmaps?labelSelector={}",
        sel.replace(' ', "%20").replace('!', "%21")
    );
    let (c, v) = call(&s, "GET", &uri, None, None).await;
    assert_eq!(c, 200, "{v}");
    let got: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, names);
}

#[tokio::test]
async fn no_op_writes_keep_revision() {
    let s = seeded().await;
    let (_, cm) = call(
        &s,
        "GET",
        "/api/v1/namespaces/default/configmaps/cm",
        None,
        None,
    )
    .await;
    let rev = s.lock().revision();
    let (c, same) = call(
        &s,
        "PUT",
        "/api/v1/namespaces/default/configmaps/cm",
        None,
        Some(cm.clone()),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        same["metadata"]["resourceVersion"],
        cm["metadata"]["resourceVersion"]
    );
    let (c, _) = call(
        &s,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cm",
        Some("application/merge-patch+json"),
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(s.lock().revision(), rev);
}

#[tokio::test]
async fn pagination_is_one_snapshot() {
    let s = server();
    for i in 0..5 {
        call(
            &s,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            None,
            Some(json!({"metadata": {"name": format!("c{i}")}})),
        )
        .await;
    }
    let (_, p1) = call(
        &s,
        "GET",
        "/api/v1/namespaces/default/configmaps?limit=2",
        None,
        None,
    )
    .await;
    let rv = p1["metadata"]["resourceVersion"].clone();
    // A write between pages is not visible in later pages.
    call(
        &s,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        None,
        Some(json!({"metadata": {"name": "c9"}})),
    )
    .await;
    call(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/c4",
        None,
        None,
    )
    .await;
    let mut names: Vec<String> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = p1["metadata"]["continue"].as_str().unwrap().to_string();
    loop {
        let (c, p) = call(
            &s,
            "GET",
            &format!("/api/v1/namespaces/default/configmaps?limit=2&continue={token}"),
            None,
            None,
        )
        .await;
        assert_eq!(c, 200, "{p}");
        assert_eq!(p["metadata"]["resourceVersion"], rv);
        names.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match p["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn discovery_documents() {
    let s = server();
    let (c, v) = call(&s, "GET", "/api", None, None).await;
    assert_eq!((c, v["versions"].clone()), (200, json!(["v1"])));
    let (_, v) = call(&s, "GET", "/apis/apps/v1", None, None).await;
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"statefulsets/scale") && names.contains(&"statefulsets/status"));
    let (_, v) = call(&s, "GET", "/openapi/v3", None, None).await;
    let url = v["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (c, doc) = call(&s, "GET", &url, None, None).await;
    assert_eq!(c, 200);
    let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"];
    assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "StatefulSet");
}

#[tokio::test]
async fn crd_registration_defaults_and_pruning() {
    let s = server();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 3}, "name": {"type": "string"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    });
    let (c, v) = call(
        &s,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        None,
        Some(crd),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    assert_eq!(v["status"]["conditions"][1]["type"], "Established");
    let (c, w) = call(&s, "POST", "/apis/example.com/v1/namespaces/default/widgets", None, Some(json!({"metadata": {"name": "w"}, "spec": {"name": "x", "junk": 1}, "status": {"ok": true}}))).await;
    assert_eq!(c, 201, "{w}");
    assert_eq!(w["spec"], json!({"name": "x", "size": 3}));
    assert!(w.get("status").is_none(), "create cannot set status: {w}");
    assert_eq!(w["metadata"]["generation"], 1);
    let (c, e) = call(
        &s,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/w",
        Some("application/strategic-merge-patch+json"),
        Some(json!({"spec": {"size": 1}})),
    )
    .await;
    assert_eq!(
        (c, e["reason"].clone()),
        (415, json!("UnsupportedMediaType"))
    );
    let (c, e) = call(&s, "PUT", "/apis/example.com/v1/namespaces/default/widgets/w", None, Some(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}))).await;
    assert_eq!((c, e["reason"].clone()), (422, json!("Invalid")));
    let (_, apis) = call(&s, "GET", "/apis/example.com/v1", None, None).await;
    assert_eq!(apis["resources"][0]["name"], "widgets");
}

/// A Secret's `stringData` is folded into `data` (base64) on create and on every later write,
/// wins over a `data` entry of the same key, and is never stored or returned.
#[tokio::test]
async fn secret_string_data_is_written_into_data() {
    let s = server();
    let (c, v) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/secrets",
        None,
        Some(json!({"metadata": {"name": "creds"}, "data": {"user": "b2xk", "keep": "a2VlcA=="}, "stringData": {"user": "app", "password": "pa:ss"}})),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    assert_eq!(v["data"]["user"], "YXBw", "stringData wins over data: {v}");
    assert_eq!(v["data"]["password"], "cGE6c3M=");
    assert_eq!(v["data"]["keep"], "a2VlcA==");
    assert!(v.get("stringData").is_none(), "{v}");
    assert_eq!(v["type"], "Opaque");

    let (c, v) = call(
        &s,
        "PATCH",
        "/api/v1/namespaces/default/secrets/creds",
        Some("application/merge-patch+json"),
        Some(json!({"stringData": {"password": "new"}})),
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["data"]["password"], "bmV3", "{v}");
    assert_eq!(v["data"]["user"], "YXBw");
    assert!(v.get("stringData").is_none(), "{v}");
    let (_, v) = call(
        &s,
        "GET",
        "/api/v1/namespaces/default/secrets/creds",
        None,
        None,
    )
    .await;
    assert_eq!(v["data"]["password"], "bmV3");
    assert!(v.get("stringData").is_none(), "{v}");
}

/// NodePort and LoadBalancer Services get node ports from 30000-32767, keep them (and their
/// cluster IP) across a replace that leaves them out, and kubectl's table shows EXTERNAL-IP
/// and PORT(S) as upstream prints them.
#[tokio::test]
async fn service_node_ports_are_allocated_kept_and_printed() {
    let s = server();
    let svc = |name: &str, ty: &str| {
        json!({"metadata": {"name": name}, "spec": {"type": ty, "selector": {"app": "db"},
            "ports": [{"name": "pg", "port": 5432, "targetPort": 5432}]}})
    };
    let (c, np) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/services",
        None,
        Some(svc("np", "NodePort")),
    )
    .await;
    assert_eq!(c, 201, "{np}");
    let port = np["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort allocated");
    assert!((30000..=32767).contains(&port), "{port}");
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    let (c, lb) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/services",
        None,
        Some(svc("lb", "LoadBalancer")),
    )
    .await;
    assert_eq!(c, 201, "{lb}");
    let lb_port = lb["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort allocated");
    assert_ne!(lb_port, port, "ports are not handed out twice");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    let (_, cip) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/services",
        None,
        Some(svc("cip", "ClusterIP")),
    )
    .await;
    assert!(cip["spec"]["ports"][0].get("nodePort").is_none(), "{cip}");

    // A PUT without nodePort or clusterIP keeps both.
    let mut again = svc("np", "NodePort");
    again["metadata"]["resourceVersion"] = np["metadata"]["resourceVersion"].clone();
    again["metadata"]["labels"] = json!({"changed": "yes"});
    let (c, put) = call(
        &s,
        "PUT",
        "/api/v1/namespaces/default/services/np",
        None,
        Some(again),
    )
    .await;
    assert_eq!(c, 200, "{put}");
    assert_eq!(put["spec"]["ports"][0]["nodePort"].as_u64(), Some(port));
    assert_eq!(put["spec"]["clusterIP"], np["spec"]["clusterIP"]);

    // Back to ClusterIP with a merge patch: the allocated node port and the policy go.
    let (c, back) = call(
        &s,
        "PATCH",
        "/api/v1/namespaces/default/services/lb",
        Some("application/merge-patch+json"),
        Some(json!({"spec": {"type": "ClusterIP"}})),
    )
    .await;
    assert_eq!(c, 200, "{back}");
    assert!(back["spec"]["ports"][0].get("nodePort").is_none(), "{back}");
    assert!(
        back["spec"].get("externalTrafficPolicy").is_none(),
        "{back}"
    );
    assert!(
        back["spec"].get("allocateLoadBalancerNodePorts").is_none(),
        "{back}"
    );
    call(
        &s,
        "PATCH",
        "/api/v1/namespaces/default/services/lb",
        Some("application/merge-patch+json"),
        Some(json!({"spec": {"type": "LoadBalancer"}})),
    )
    .await;

    let req = Request::builder()
        .uri("/api/v1/namespaces/default/services")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let t: Value = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let row = |n: &str| {
        t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["cells"][0] == n)
            .unwrap()["cells"]
            .clone()
    };
    assert_eq!(row("np")[3], "<none>");
    assert_eq!(row("np")[4], format!("5432:{port}/TCP"));
    assert_eq!(row("lb")[3], "<pending>");
    assert_eq!(row("cip")[4], "5432/TCP");
}

#[tokio::test]
async fn ssa_conflicts_name_only_contested_fields() {
    let s = server();
    let ct = Some("application/apply-patch+yaml");
    let body = |x: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"x": x}});
    let uri = |m: &str| format!("/api/v1/namespaces/default/configmaps/s?fieldManager={m}");
    let (c, v) = call(&s, "PATCH", &uri("a"), ct, Some(body("1"))).await;
    assert_eq!(c, 201, "{v}");
    // Name and namespace are server-owned: no `f:metadata` entry (which would own metadata).
    assert_eq!(
        v["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
    let (c, v) = call(&s, "PATCH", &uri("b"), ct, Some(body("2"))).await;
    assert_eq!(c, 409, "{v}");
    assert_eq!(
        v["message"],
        "Apply failed with 1 conflict: conflict with \"a\": .data.x"
    );
    assert_eq!(
        v["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".data.x"}])
    );
    // A create by POST records its Update entry without `f:metadata` either.
    let (c, v) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create",
        None,
        Some(json!({"metadata": {"name": "p"}, "data": {"a": "1"}})),
    )
    .await;
    assert_eq!(c, 201);
    assert!(
        v["metadata"]["managedFields"][0]["fieldsV1"]
            .get("f:metadata")
            .is_none(),
        "{v}"
    );
}

/// kubectl validates `kind: List` files against /openapi/v2, asked for as protobuf.
#[tokio::test]
async fn openapi_v2_document() {
    let s = server();
    let req = Request::builder()
        .uri("/openapi/v2?timeout=32s")
        .header(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    // openapi_v2.Document { swagger: "2.0" }.
    assert_eq!(&bytes[..], b"\x0a\x032.0");
    let (c, v) = call(&s, "GET", "/openapi/v2", None, None).await;
    assert_eq!(c, 200);
    assert_eq!(v["swagger"], "2.0");
    assert_eq!(v["definitions"], json!({}));
}

/// `kubectl auth can-i` and `kubectl auth whoami`: reviews answered (the one user is an
/// admin), in JSON or from kubectl's protobuf body, and never stored.
#[tokio::test]
async fn self_subject_reviews() {
    let s = server();
    let rev = s.lock().revision();
    let spec =
        json!({"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}});
    let (c, v) = call(
        &s,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        None,
        Some(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec})),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    assert_eq!(v["status"]["allowed"], true);
    assert_eq!(v["spec"], spec);
    let req = Request::builder()
        .method("POST")
        .uri("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/vnd.kubernetes.protobuf")
        .body(Body::from(&b"k8s\x00\x0a\x00"[..]))
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["kind"], "SelfSubjectReview");
    assert_eq!(v["status"]["userInfo"]["username"], "kubernetes-admin");
    assert_eq!(s.lock().revision(), rev, "reviews are not stored");
}

/// kube-apiserver keeps `default/kubernetes` (Service, Endpoints, EndpointSlice) for itself;
/// the standalone binary publishes them with its port.
#[tokio::test]
async fn kubernetes_service_in_default() {
    let s = server();
    s.publish_kubernetes_service(6443).unwrap();
    let rev = s.lock().revision();
    s.publish_kubernetes_service(6443).unwrap();
    assert_eq!(s.lock().revision(), rev, "idempotent");
    let (c, v) = call(
        &s,
        "GET",
        "/api/v1/namespaces/default/services/kubernetes",
        None,
        None,
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(v["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(v["spec"]["ports"][0]["port"], 443);
    let (c, v) = call(
        &s,
        "GET",
        "/api/v1/namespaces/default/endpoints/kubernetes",
        None,
        None,
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(v["subsets"][0]["ports"][0]["port"], 6443);
    // The next Service gets the next address.
    let (c, v) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/services",
        None,
        Some(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    assert_ne!(v["spec"]["clusterIP"], "10.96.0.1");
}
