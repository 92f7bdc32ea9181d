//! kube-rs against the fake API server in-process (tower service, no sockets).

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, finalizer, reflector, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::{ApiServer, Config, ManualClock};

fn server() -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 1,
        ..Config::default()
    })
}

fn client(s: &ApiServer) -> Client {
    Client::new(s.router(), "default")
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "x"}}, "data": {"k": "v"}}),
    )
    .unwrap()
}

#[tokio::test]
async fn crud_roundtrip_and_errors() {
    let s = server();
    let api: Api<ConfigMap> = Api::namespaced(client(&s), "default");
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    assert!(created.uid().is_some());
    assert_eq!(
        created
            .metadata
            .creation_timestamp
            .as_ref()
            .unwrap()
            .0
            .to_string(),
        "2025-01-01T00:00:00Z"
    );
    let again = api
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap_err();
    match again {
        kube::Error::Api(e) => assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("unexpected {other:?}"),
    }
    let got = api.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "v");
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "w".to_string())].into());
    api.replace("a", &PostParams::default(), &stale)
        .await
        .unwrap();
    let err = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 409);
            assert_eq!(
                e.message,
                "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let list = api
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(matches!(api.get("a").await, Err(kube::Error::Api(e)) if e.code == 404));
    let missing: Api<ConfigMap> = Api::namespaced(client(&s), "nope");
    assert!(
        matches!(missing.create(&PostParams::default(), &cm("b")).await, Err(kube::Error::Api(e)) if e.code == 404)
    );
}

#[tokio::test]
async fn server_side_apply_owns_and_removes_fields() {
    let s = server();
    let api: Api<ConfigMap> = Api::namespaced(client(&s), "default");
    let pp = PatchParams::apply("tusk").force();
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
    let o = api.patch("ssa", &pp, &Patch::Apply(&first)).await.unwrap();
    let rv1 = o.resource_version().unwrap();
    assert_eq!(o.managed_fields()[0].manager.as_deref(), Some("tusk"));
    // Same apply again: no write.
    let o2 = api.patch("ssa", &pp, &Patch::Apply(&first)).await.unwrap();
    assert_eq!(o2.resource_version().unwrap(), rv1);
    // Another manager sets its own key; then tusk drops y and label b.
    api.patch(
        "ssa",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"z": "3"}})),
    )
    .await
    .unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"a": "1"}}, "data": {"x": "1"}});
    let o3 = api.patch("ssa", &pp, &Patch::Apply(&second)).await.unwrap();
    let data = o3.data.unwrap();
    assert_eq!(data.keys().cloned().collect::<Vec<_>>(), vec!["x", "z"]);
    assert_eq!(o3.metadata.labels.unwrap().len(), 1);
    // Conflict without force.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"x": "other"}});
    let err = api
        .patch("ssa", &PatchParams::apply("someone"), &Patch::Apply(&other))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 409);
            assert!(
                e.message
                    .starts_with("Apply failed with 1 conflict: conflict with \"tusk\": .data.x"),
                "{}",
                e.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Missing apiVersion is a 400.
    let bad = api
        .patch(
            "ssa",
            &pp,
            &Patch::Apply(json!({"metadata": {"name": "ssa"}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, kube::Error::Api(e) if e.code == 400));
}

#[tokio::test]
async fn statefulset_status_scale_and_generation() {
    let s = server();
    let api: Api<StatefulSet> = Api::namespaced(client(&s), "default");
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}}}
    })).unwrap();
    let c = api.create(&PostParams::default(), &sts).await.unwrap();
    assert_eq!(c.metadata.generation, Some(1));
    let spec = c.spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("OrderedReady"));
    assert_eq!(
        spec.template
            .spec
            .as_ref()
            .unwrap()
            .restart_policy
            .as_deref(),
        Some("Always")
    );
    let scaled = api
        .patch_scale(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    let now = api.get("db").await.unwrap();
    assert_eq!(now.metadata.generation, Some(2));
    // Status through /status does not bump generation; status through main endpoint is ignored.
    let st = api
        .patch_status(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3, "readyReplicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(st.metadata.generation, Some(2));
    let ignored = api
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().ready_replicas, Some(3));
    // Forbidden spec change.
    let err = api
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"serviceName": "other"}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 422));
}

#[tokio::test]
async fn finalizer_helper_adds_and_removes() {
    let s = server();
    let api: Api<ConfigMap> = Api::namespaced(client(&s), "default");
    api.create(&PostParams::default(), &cm("fin"))
        .await
        .unwrap();
    let obj = Arc::new(api.get("fin").await.unwrap());
    // First call adds the finalizer (test-null + add), returning without running apply.
    let r = finalizer(&api, "tusk.test/cleanup", obj, |ev| async move {
        match ev {
            finalizer::Event::Apply(_) => {
                Ok::<_, std::convert::Infallible>(kube::runtime::controller::Action::await_change())
            }
            finalizer::Event::Cleanup(_) => Ok(kube::runtime::controller::Action::await_change()),
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    let with = api.get("fin").await.unwrap();
    assert_eq!(with.finalizers(), &["tusk.test/cleanup".to_string()]);
    // Delete: object stays with a deletionTimestamp until the finalizer is removed.
    api.delete("fin", &DeleteParams::default()).await.unwrap();
    let deleting = Arc::new(api.get("fin").await.unwrap());
    assert!(deleting.metadata.deletion_timestamp.is_some());
    let r = finalizer(&api, "tusk.test/cleanup", deleting, |ev| async move {
        match ev {
            finalizer::Event::Apply(_) => panic!("apply while deleting"),
            finalizer::Event::Cleanup(_) => {
                Ok::<_, std::convert::Infallible>(kube::runtime::controller::Action::await_change())
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(matches!(api.get("fin").await, Err(kube::Error::Api(e)) if e.code == 404));
}

#[tokio::test]
async fn raw_watch_replays_and_reports_410() {
    let s = server();
    let api: Api<ConfigMap> = Api::namespaced(client(&s), "default");
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&PostParams::default(), &cm("w1")).await.unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.delete("w1", &DeleteParams::default()).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), &start)
        .await
        .unwrap()
        .boxed();
    let mut kinds = vec![];
    while let Some(ev) = stream.try_next().await.unwrap() {
        kinds.push(match ev {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        });
    }
    // WatchParams asks for bookmarks: one comes just before the timeout closes the stream.
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);
    let rev = s.lock().revision();
    s.lock().compact(rev);
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), &start)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn reflector_recovers_after_410() {
    let s = server();
    let api: Api<Pod> = Api::namespaced(client(&s), "default");
    let (reader, writer) = reflector::store::<Pod>();
    let stream =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).applied_objects();
    let handle = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(_ev) = stream.next().await {}
    });
    let pod = |n: &str| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": n}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap()
    };
    api.create(&PostParams::default(), &pod("p1"))
        .await
        .unwrap();
    wait_for(|| reader.state().len() == 1).await;
    // Expire every watch: the watcher must relist and still see new objects.
    s.lock().expire_watches();
    api.create(&PostParams::default(), &pod("p2"))
        .await
        .unwrap();
    wait_for(|| reader.state().len() == 2).await;
    api.delete("p1", &DeleteParams::default()).await.unwrap();
    wait_for(|| reader.state().len() == 1).await;
    handle.abort();
}

async fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 2s");
}
