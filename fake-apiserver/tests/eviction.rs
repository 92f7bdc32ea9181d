//! `pods/eviction` (what `kubectl drain` posts): PodDisruptionBudgets are honoured with 429,
//! pods outside any budget are deleted, and the subresource is discoverable.

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use tusk_fake_apiserver::{ApiServer, Config, ManualClock};

async fn call(s: &ApiServer, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(
            "content-type",
            if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            },
        )
        .body(Body::from(body.map(|v| v.to_string()).unwrap_or_default()))
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v)
}

/// Three running pods labelled app=db, `ready` of them Ready, and one unlabelled pod.
async fn pods(s: &ApiServer, ready: usize) {
    for i in 0..3 {
        let (c, _) = call(
            s,
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(json!({
                "metadata": {"name": format!("db-{i}"), "labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}
            })),
        )
        .await;
        assert_eq!(c, 201);
        let status = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": if i < ready { "True" } else { "False" }}]}});
        let (c, v) = call(
            s,
            "PATCH",
            &format!("/api/v1/namespaces/default/pods/db-{i}/status"),
            Some(status),
        )
        .await;
        assert!(c == 200, "{v}");
    }
    let (c, _) = call(
        s,
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(json!({
            "metadata": {"name": "loner"},
            "spec": {"containers": [{"name": "c", "image": "x"}]}
        })),
    )
    .await;
    assert_eq!(c, 201);
}

async fn evict(s: &ApiServer, pod: &str) -> (u16, Value) {
    call(
        s,
        "POST",
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        Some(json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod, "namespace": "default"},
            "deleteOptions": {"gracePeriodSeconds": 0}})),
    )
    .await
}

fn server() -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 7,
        ..Config::default()
    })
}

async fn pdb(s: &ApiServer, spec: Value) {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "db"}});
    let (c, v) = call(
        s,
        "POST",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        Some(json!({"metadata": {"name": "db"}, "spec": spec})),
    )
    .await;
    assert_eq!(c, 201, "{v}");
}

async fn exists(s: &ApiServer, pod: &str) -> bool {
    call(
        s,
        "GET",
        &format!("/api/v1/namespaces/default/pods/{pod}"),
        None,
    )
    .await
    .0 == 200
}

#[tokio::test]
async fn a_budget_at_its_minimum_refuses_with_429_and_names_itself() {
    let s = server();
    pods(&s, 2).await;
    pdb(&s, json!({"minAvailable": 2})).await;
    let (code, body) = evict(&s, "db-0").await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["reason"], "TooManyRequests");
    assert!(
        body["details"]["causes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("db needs 2 healthy pods and has 2"),
        "{body}"
    );
    assert!(
        exists(&s, "db-0").await,
        "a refused eviction deletes nothing"
    );
    // The unready pod can go: the budget holds without it.
    let (code, body) = evict(&s, "db-2").await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], "Success");
}

#[tokio::test]
async fn evictions_within_the_budget_and_outside_any_budget_delete_the_pod() {
    let s = server();
    pods(&s, 3).await;
    pdb(&s, json!({"maxUnavailable": "34%"})).await;
    // 34% of 3 rounds up to 2 unavailable allowed, so one ready pod may go.
    let (code, body) = evict(&s, "db-1").await;
    assert_eq!(code, 201, "{body}");
    let (code, _) = evict(&s, "loner").await;
    assert_eq!(code, 201);
    let (code, body) = evict(&s, "nobody").await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods/db-0/eviction",
        Some(json!({"metadata": {"name": "db-9"}})),
    )
    .await;
    assert_eq!(code, 400, "a mismatched name is refused: {body}");
}

#[tokio::test]
async fn eviction_is_listed_in_discovery() {
    let s = server();
    let (code, body) = call(&s, "GET", "/api/v1", None).await;
    assert_eq!(code, 200);
    let listed = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["group"], "policy", "{body}");
    assert_eq!(listed["verbs"], json!(["create"]));
}
