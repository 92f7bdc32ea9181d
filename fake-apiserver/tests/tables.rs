//! `kubectl get` columns (`as=Table`) of built-in kinds, as kube-apiserver's printers give
//! them: names, order, `-o wide` priorities and cells.

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use k8s_openapi::jiff::SignedDuration;
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use tusk_fake_apiserver::table::human;
use tusk_fake_apiserver::{ApiServer, Config, ManualClock, Objects};

async fn table(s: &ApiServer, uri: &str) -> Value {
    let req = Request::builder()
        .uri(uri)
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// Objects created at the epoch, read 3 minutes later; statuses written directly.
fn world() -> ApiServer {
    let clock = ManualClock::at_epoch_2025();
    let s = ApiServer::new(Config {
        clock: Arc::new(clock.clone()),
        seed: 9,
        auto_gc: false,
        ..Config::default()
    });
    let tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
    let sel = json!({"matchLabels": {"app": "web"}});
    let mut st = s.lock();
    let mut put = |o: Value, status: Option<Value>| {
        let mut created = Objects::create(&mut *st, o).unwrap();
        if let Some(status) = status {
            created["status"] = status;
            Objects::update_status(&mut *st, created).unwrap();
        }
    };
    put(
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"replicas": 3, "selector": sel, "template": tpl}}),
        Some(json!({"replicas": 3, "readyReplicas": 2})),
    );
    put(
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        Some(
            json!({"succeeded": 1, "startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:00:05Z",
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        ),
    );
    put(
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "default"}}),
        None,
    );
    put(
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                         "ports": [{"port": 5432}]}]}),
        None,
    );
    put(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "db-x", "namespace": "default"},
            "addressType": "IPv4", "ports": [{"name": "", "port": 5432, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}),
        None,
    );
    put(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "default"},
            "spec": {"holderIdentity": "pod-a"}}),
        None,
    );
    put(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        None,
    );
    put(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "done", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        Some(
            json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        ),
    );
    put(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crashy", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        Some(
            json!({"phase": "Running", "podIP": "10.244.0.9", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 2,
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-01T00:01:00Z"}},
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        ),
    );
    drop(st);
    clock.advance(SignedDuration::from_mins(3));
    s
}

#[rstest]
#[case::replicasets("/apis/apps/v1/namespaces/default/replicasets",
    &[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)],
    json!(["web-1", 3, 3, 2, "3m", "c", "nginx:1", "app=web"]))]
#[case::jobs("/apis/batch/v1/namespaces/default/jobs",
    &[("Name", 0), ("Status", 0), ("Completions", 0), ("Duration", 0), ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)],
    json!(["j", "Complete", "1/1", "5s", "3m", "c", "busybox", "batch.kubernetes.io/controller-uid=00cf387d-34fe-4d6c-b628-6c6592e9dad6"]))]
#[case::serviceaccounts("/api/v1/namespaces/default/serviceaccounts",
    &[("Name", 0), ("Secrets", 0), ("Age", 0)], json!(["sa", 0, "3m"]))]
#[case::endpoints("/api/v1/namespaces/default/endpoints",
    &[("Name", 0), ("Endpoints", 0), ("Age", 0)],
    json!(["db", "10.0.0.1:5432,10.0.0.2:5432,10.0.0.3:5432 + 1 more...", "3m"]))]
#[case::endpointslices("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
    &[("Name", 0), ("AddressType", 0), ("Ports", 0), ("Endpoints", 0), ("Age", 0)],
    json!(["db-x", "IPv4", "5432", "10.0.0.1,10.0.0.2", "3m"]))]
#[case::leases("/apis/coordination.k8s.io/v1/namespaces/default/leases",
    &[("Name", 0), ("Holder", 0), ("Age", 0)], json!(["l", "pod-a", "3m"]))]
#[case::services("/api/v1/namespaces/default/services/svc",
    &[("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)],
    json!(null))]
#[case::completed_pod("/api/v1/namespaces/default/pods/done",
    &[("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)],
    json!(["done", "0/1", "Completed", "0", "3m", "<none>", "<none>", "<none>", "<none>"]))]
#[case::crashing_pod("/api/v1/namespaces/default/pods/crashy",
    &[("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)],
    json!(["crashy", "0/1", "CrashLoopBackOff", "2 (2m ago)", "3m", "10.244.0.9", "<none>", "<none>", "<none>"]))]
#[tokio::test]
async fn builtin_columns(#[case] uri: &str, #[case] cols: &[(&str, i64)], #[case] row: Value) {
    let s = world();
    let t = table(&s, uri).await;
    let got: Vec<(&str, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, cols, "{t}");
    if !row.is_null() {
        assert_eq!(t["rows"][0]["cells"], row, "{t}");
    }
    assert_eq!(t["rows"][0]["cells"].as_array().unwrap().len(), cols.len());
}

#[test]
fn ages_read_as_upstream_human_durations() {
    for (secs, want) in [
        (59, "59s"),
        (119, "119s"),
        (180, "3m"),
        (200, "3m20s"),
        (3600, "60m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 120, "3h2m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400, "3y"),
    ] {
        assert_eq!(human(secs), want, "{secs} s");
    }
}

/// Simulated kubelets run the server's version (a kubelet newer than the API server is
/// outside the version skew policy): `kubectl get nodes` VERSION matches /version.
#[tokio::test]
async fn node_version_matches_the_server() {
    let s = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 1,
        ..Config::default()
    });
    tusk_fake_apiserver::controllers::Nodes::create(&mut *s.lock(), 1).unwrap();
    let t = table(&s, "/api/v1/nodes").await;
    let req = Request::builder()
        .uri("/version")
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(t["rows"][0]["cells"][4], v["gitVersion"], "{t}");
}

/// `kubectl get -w` asks for Tables on the watch too: each event's object is a one-row Table
/// with the kind's columns (otherwise kubectl falls back to NAME and AGE).
#[tokio::test]
async fn watch_events_are_tables_when_asked() {
    let s = world();
    let req = Request::builder()
        .uri("/api/v1/namespaces/default/pods?watch=true")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Body::empty())
        .unwrap();
    let resp = s.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("an event")
        .expect("a frame")
        .unwrap();
    let data = frame.into_data().unwrap();
    let first = data.split(|b| *b == b'\n').next().unwrap();
    let line: Value = serde_json::from_slice(first).unwrap();
    assert_eq!(line["type"], "ADDED");
    assert_eq!(line["object"]["kind"], "Table", "{line}");
    assert_eq!(line["object"]["columnDefinitions"][2]["name"], "Status");
    let row = &line["object"]["rows"][0];
    assert_eq!(row["object"]["metadata"]["name"], "crashy");
    assert_eq!(row["cells"][2], "CrashLoopBackOff");
}

/// `kubectl get --sort-by` asks `includeObject=Object`: rows carry whole objects (it sorts
/// by fields of them); `None` leaves them out; the default is PartialObjectMetadata.
#[rstest]
#[case("", Some("PartialObjectMetadata"))]
#[case("?includeObject=Metadata", Some("PartialObjectMetadata"))]
#[case("?includeObject=Object", Some("ServiceAccount"))]
#[case("?includeObject=None", None)]
#[tokio::test]
async fn rows_include_what_is_asked(#[case] query: &str, #[case] kind: Option<&str>) {
    let s = world();
    let t = table(
        &s,
        &format!("/api/v1/namespaces/default/serviceaccounts{query}"),
    )
    .await;
    let row = &t["rows"][0];
    assert_eq!(row["object"]["kind"].as_str(), kind, "{t}");
    if kind == Some("ServiceAccount") {
        assert_eq!(row["object"]["metadata"]["name"], "sa");
    }
}

/// A custom kind's `type: date` printer column reads as an age, as upstream's CRD table
/// convertor gives it (`kubectl get pg-backup`: COMPLETED `2m`, not the timestamp); an unset
/// date stays empty.
#[tokio::test]
async fn custom_date_columns_read_as_ages() {
    let clock = ManualClock::at_epoch_2025();
    let s = ApiServer::new(Config {
        clock: Arc::new(clock.clone()),
        seed: 9,
        ..Config::default()
    });
    s.install_crds(vec![json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "jobs.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "jobs", "singular": "job", "kind": "Job"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Completed", "type": "date", "jsonPath": ".status.completed"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}
    })])
    .unwrap();
    {
        let mut st = s.lock();
        for name in ["done", "running"] {
            Objects::create(
                &mut *st,
                json!({"apiVersion": "example.com/v1", "kind": "Job",
                       "metadata": {"name": name, "namespace": "default"}}),
            )
            .unwrap();
        }
        let mut done =
            Objects::get(&*st, "example.com/v1", "Job", Some("default"), "done").unwrap();
        done["status"] = json!({"completed": "2025-01-01T00:01:00Z"});
        Objects::update_status(&mut *st, done).unwrap();
    }
    clock.advance(SignedDuration::from_secs(180));
    let t = table(&s, "/apis/example.com/v1/namespaces/default/jobs").await;
    let rows: Vec<Value> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"].clone())
        .collect();
    assert_eq!(
        rows,
        [
            json!(["done", "2m", "3m"]),
            json!(["running", "<none>", "3m"])
        ]
    );
}
