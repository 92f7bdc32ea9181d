//! Events written through `events.k8s.io/v1` show in `core/v1` lists (what `kubectl get
//! events` and `kubectl describe` read), converted and filtered by kubectl's field selectors.

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
        .header("content-type", "application/json")
        .body(Body::from(body.map(|v| v.to_string()).unwrap_or_default()))
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn new_api_events_are_listed_as_core_events_with_field_selectors() {
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 3,
        ..Config::default()
    });
    for (name, target) in [("e1", "cluster1"), ("e2", "cluster2")] {
        let (c, v) = call(&s, "POST", "/apis/events.k8s.io/v1/namespaces/default/events", Some(json!({
            "metadata": {"name": name},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "tusk",
            "reportingInstance": "tusk-1",
            "action": "Reconcile",
            "reason": "InvalidSpec",
            "note": format!("{target}: spec.postgresVersion: must be 12 to 18"),
            "type": "Warning",
            "regarding": {"apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGCluster",
                          "name": target, "namespace": "default", "uid": format!("uid-{target}")}
        }))).await;
        assert_eq!(c, 201, "{v}");
    }
    let (c, v) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/events",
        Some(json!({
            "metadata": {"name": "old"}, "reason": "Started", "message": "core event",
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}
        })),
    )
    .await;
    assert_eq!(c, 201, "{v}");

    let (c, all) = call(&s, "GET", "/api/v1/namespaces/default/events", None).await;
    assert_eq!(c, 200);
    assert_eq!(names(&all), ["old", "e1", "e2"]);
    let e1 = &all["items"][1];
    assert_eq!(e1["apiVersion"], "v1");
    assert_eq!(
        e1["message"],
        "cluster1: spec.postgresVersion: must be 12 to 18"
    );
    assert_eq!(e1["involvedObject"]["kind"], "PerconaPGCluster");
    assert_eq!(e1["source"]["component"], "tusk");

    // kubectl describe's selector.
    let (_, one) = call(
        &s,
        "GET",
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dcluster1,involvedObject.kind%3DPerconaPGCluster,involvedObject.uid%3Duid-cluster1&limit=500",
        None,
    )
    .await;
    assert_eq!(names(&one), ["e1"]);
    // The new API still lists only its own.
    let (_, new) = call(
        &s,
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        None,
    )
    .await;
    assert_eq!(names(&new), ["e1", "e2"]);
}

#[tokio::test]
async fn kubectl_tables_show_event_and_budget_columns() {
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 3,
        ..Config::default()
    });
    let (c, _) = call(
        &s,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(json!({
            "metadata": {"name": "e1"}, "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "tusk", "reportingInstance": "tusk-1", "action": "Reconcile",
            "reason": "Switchover", "note": "switchover requested", "type": "Normal",
            "regarding": {"kind": "PerconaPGCluster", "name": "cluster1", "namespace": "default"}
        })),
    )
    .await;
    assert_eq!(c, 201);
    let (c, _) = call(&s, "POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Some(json!({
        "metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}
    }))).await;
    assert_eq!(c, 201);
    let table = |uri: &str| {
        let req = Request::builder()
            .uri(uri)
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .body(Body::empty())
            .unwrap();
        let s = s.clone();
        async move {
            let resp = s.router().oneshot(req).await.unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let t = table("/api/v1/namespaces/default/events").await;
    let columns: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Upstream's event printer: no Name or Age by default (Name, Subobject, Source,
    // First Seen and Count only with -o wide).
    assert_eq!(
        columns,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ],
        "{t}"
    );
    let priorities: Vec<i64> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(priorities, [0, 0, 0, 0, 1, 1, 0, 1, 1, 1]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "0s",
            "Normal",
            "Switchover",
            "perconapgcluster/cluster1",
            "",
            "tusk, tusk-1",
            "switchover requested",
            "0s",
            1,
            "e1"
        ])
    );
    let t = table("/apis/policy/v1/namespaces/default/poddisruptionbudgets").await;
    assert_eq!(t["rows"][0]["cells"][1], json!(1), "{t}");
    assert_eq!(t["rows"][0]["cells"][2], json!("N/A"), "{t}");
    // No status published yet: upstream prints 0.
    assert_eq!(
        t["columnDefinitions"][3]["name"], "Allowed Disruptions",
        "{t}"
    );
    assert_eq!(t["rows"][0]["cells"][3], json!(0), "{t}");
}

/// `kubectl get events -w` watches `core/v1`: events written through `events.k8s.io/v1` reach
/// it converted, filtered by its field selector, alongside core events.
#[tokio::test]
async fn core_event_watch_includes_new_api_events() {
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 3,
        ..Config::default()
    });
    let req = Request::builder()
        .method("GET")
        .uri("/api/v1/namespaces/default/events?watch=true&fieldSelector=involvedObject.name%3Dcluster1")
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body();
    for (name, target) in [("e1", "cluster1"), ("e2", "cluster2")] {
        let (c, v) = call(
            &s,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            Some(json!({
                "metadata": {"name": name},
                "eventTime": "2025-01-01T00:00:00.000000Z",
                "reportingController": "tusk", "reportingInstance": "tusk-1", "action": "Reconcile",
                "reason": "Switchover", "note": "switchover requested", "type": "Normal",
                "regarding": {"kind": "PerconaPGCluster", "name": target, "namespace": "default"}
            })),
        )
        .await;
        assert_eq!(c, 201, "{v}");
    }
    let (c, v) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/events",
        Some(json!({
            "metadata": {"name": "old"}, "reason": "Started", "message": "core event",
            "involvedObject": {"kind": "PerconaPGCluster", "name": "cluster1", "namespace": "default"}
        })),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    let mut lines = vec![];
    while lines.len() < 2 {
        // A guard, not a wait: the lines are already queued when the writes return.
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("the core/v1 watch delivers the events.k8s.io event")
            .unwrap()
            .unwrap();
        let bytes = frame.into_data().unwrap();
        for l in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            lines.push(serde_json::from_slice::<Value>(l).unwrap());
        }
    }
    let mut seen: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_string(),
                l["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                l["object"]["apiVersion"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("ADDED".to_string(), "e1".to_string(), "v1".to_string()),
            ("ADDED".to_string(), "old".to_string(), "v1".to_string()),
        ]
    );
    assert_eq!(
        lines
            .iter()
            .find(|l| l["object"]["metadata"]["name"] == "e1")
            .unwrap()["object"]["message"],
        "switchover requested"
    );
}

/// kubectl 1.32 asks `/api` and `/apis` for aggregated discovery v2 and reads every group,
/// version and resource (with subresources) from the two answers; plain JSON stays as it was.
#[tokio::test]
async fn aggregated_discovery_v2() {
    let s = ApiServer::new(Config::default());
    let get = |path: &'static str, accept: &'static str| {
        let s = s.clone();
        async move {
            let req = Request::builder()
                .uri(path)
                .header("accept", accept)
                .body(Body::empty())
                .unwrap();
            let resp = s.router().oneshot(req).await.unwrap();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (ct, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let (ct, apis) = get("/apis", kubectl).await;
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(apis["kind"], "APIGroupDiscoveryList");
    let apps = apis["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let sts = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "statefulsets")
        .unwrap();
    assert_eq!(sts["responseKind"]["kind"], "StatefulSet");
    assert_eq!(sts["scope"], "Namespaced");
    let subs: Vec<&str> = sts["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert!(
        subs.contains(&"status") && subs.contains(&"scale"),
        "{subs:?}"
    );
    assert!(
        apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["metadata"]["name"] != "")
    );

    let (_, core) = get("/api", kubectl).await;
    assert_eq!(core["items"].as_array().unwrap().len(), 1);
    let pods = core["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .unwrap();
    assert_eq!(pods["responseKind"]["version"], "v1");

    // Only v2beta1 asked for: the legacy documents, which clients also understand.
    let (ct, legacy) = get("/apis", "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json").await;
    assert!(!ct.contains("apidiscovery"), "{ct}");
    assert_eq!(legacy["kind"], "APIGroupList");
}
