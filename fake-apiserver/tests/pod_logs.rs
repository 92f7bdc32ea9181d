//! `pods/log` (what `kubectl logs` reads): upstream's container checks and 400s, the kubelet's
//! view of a container as default text, a pluggable source, and tailLines / timestamps /
//! limitBytes / previous.

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use tusk_fake_apiserver::logs::{LogLine, LogSource};
use tusk_fake_apiserver::{ApiServer, Config, ManualClock, Objects};

async fn get(s: &ApiServer, uri: &str) -> (u16, String) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // Errors are Status objects: compare their message.
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(v) if v["kind"] == "Status" => v["message"].as_str().unwrap().to_string(),
        _ => text,
    };
    (code, text)
}

/// Pods: `one` (running db, restarted once after exit 1), `two` (containers a and b, init
/// container setup), `pending` (unscheduled), `creating` (scheduled, still waiting).
fn server() -> ApiServer {
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 9,
        ..Config::default()
    });
    let mut st = s.lock();
    let pod = |name: &str, node: Option<&str>, containers: &[&str], inits: &[&str]| {
        let c = |n: &&str| json!({"name": n, "image": "postgres:16"});
        let mut spec = json!({"containers": containers.iter().map(c).collect::<Vec<_>>()});
        if !inits.is_empty() {
            spec["initContainers"] = inits.iter().map(c).collect();
        }
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    };
    for (name, node, cs, inits) in [
        ("one", Some("n1"), &["db"][..], &[][..]),
        ("two", Some("n1"), &["a", "b"][..], &["setup"][..]),
        ("pending", None, &["db"][..], &[][..]),
        ("creating", Some("n1"), &["db"][..], &[][..]),
    ] {
        let mut p = Objects::create(&mut *st, pod(name, node, cs, inits)).unwrap();
        let status = match name {
            "one" => {
                json!({"phase": "Running", "containerStatuses": [{"name": "db", "image": "postgres:16",
                "restartCount": 1, "ready": true,
                "state": {"running": {"startedAt": "2025-01-01T00:01:00Z"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": "2025-01-01T00:00:00Z", "finishedAt": "2025-01-01T00:00:50Z"}}}]})
            }
            "two" => json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "image": "postgres:16", "restartCount": 0,
                 "state": {"running": {"startedAt": "2025-01-01T00:00:05Z"}}},
                {"name": "b", "image": "postgres:16", "restartCount": 0,
                 "state": {"running": {"startedAt": "2025-01-01T00:00:06Z"}}}]}),
            "creating" => json!({"phase": "Pending", "containerStatuses": [{"name": "db",
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
            _ => continue,
        };
        p["status"] = status;
        Objects::update_status(&mut *st, p).unwrap();
    }
    drop(st);
    s
}

const P: &str = "/api/v1/namespaces/default/pods";

#[rstest]
#[case::running(
    "/one/log",
    200,
    "container db started (image postgres:16, restart 1)\n"
)]
#[case::previous(
    "/one/log?previous=true",
    200,
    "container db started (image postgres:16, restart 0)\ncontainer db exited with code 1 (Error)\n"
)]
#[case::previous_tail(
    "/one/log?previous=true&tailLines=1",
    200,
    "container db exited with code 1 (Error)\n"
)]
#[case::tail_zero("/one/log?tailLines=0", 200, "")]
#[case::timestamps(
    "/one/log?timestamps=true",
    200,
    "2025-01-01T00:01:00.000000000Z container db started (image postgres:16, restart 1)\n"
)]
#[case::limit_bytes("/one/log?limitBytes=9", 200, "container")]
#[case::named(
    "/two/log?container=b",
    200,
    "container b started (image postgres:16, restart 0)\n"
)]
#[case::choose(
    "/two/log",
    400,
    "a container name must be specified for pod two, choose one of: [a b] or one of the init containers: [setup]"
)]
#[case::unknown_container(
    "/one/log?container=nope",
    400,
    "container nope is not valid for pod one"
)]
#[case::no_previous(
    "/two/log?container=a&previous=true",
    400,
    "previous terminated container \"a\" in pod \"two\" not found"
)]
#[case::waiting(
    "/creating/log",
    400,
    "container \"db\" in pod \"creating\" is waiting to start: ContainerCreating"
)]
#[case::unscheduled("/pending/log", 200, "")]
#[case::missing_pod("/ghost/log", 404, "pods \"ghost\" not found")]
#[case::bad_tail(
    "/one/log?tailLines=-1",
    422,
    "tailLines: Invalid value: -1: must be greater than or equal to 0"
)]
#[tokio::test]
async fn kubelet_view(#[case] path: &str, #[case] code: u16, #[case] body: &str) {
    let s = server();
    assert_eq!(
        get(&s, &format!("{P}{path}")).await,
        (code, body.to_string())
    );
}

/// A log source replaces the kubelet's lines for the pods it knows; the query options still
/// apply, and the container checks come first.
#[tokio::test]
async fn pluggable_source() {
    let s = server();
    let source: LogSource = Arc::new(|req, _pod| {
        (req.pod == "one").then(|| {
            (1..=5)
                .map(|i| LogLine {
                    time: format!("2025-01-01T00:00:0{i}Z"),
                    text: format!("{} line {i}", req.container),
                })
                .collect()
        })
    });
    s.set_log_source(source);
    assert_eq!(
        get(&s, &format!("{P}/one/log?tailLines=2")).await,
        (200, "db line 4\ndb line 5\n".to_string())
    );
    assert_eq!(
        get(&s, &format!("{P}/one/log?tailLines=1&timestamps=true")).await,
        (
            200,
            "2025-01-01T00:00:05.000000000Z db line 5\n".to_string()
        )
    );
    // Not known to the source: the kubelet's view.
    assert_eq!(
        get(&s, &format!("{P}/two/log?container=a")).await,
        (
            200,
            "container a started (image postgres:16, restart 0)\n".to_string()
        )
    );
    assert_eq!(get(&s, &format!("{P}/one/log?container=x")).await.0, 400);
}
