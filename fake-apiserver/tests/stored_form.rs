//! managedFields are stored packed (one JSON string) to save memory; clients must never see
//! the difference: every way out of the store gives the same JSON array, and writes that
//! change nothing stay silent.

use serde_json::{Value, json};
use std::sync::Arc;
use tusk_fake_apiserver::selectors::{FieldSelector, LabelSelector};
use tusk_fake_apiserver::store::{ListOptions, WatchFilter, WatchMsg, WatchStart, WriteOptions};
use tusk_fake_apiserver::{ApiServer, Config, ManualClock, PatchKind};

fn server() -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 3,
        auto_gc: false,
        ..Config::default()
    })
}

fn mgr(m: &str) -> WriteOptions {
    WriteOptions {
        field_manager: Some(m.into()),
        ..WriteOptions::default()
    }
}

fn events(rx: &mut tokio::sync::mpsc::UnboundedReceiver<WatchMsg>) -> Vec<Value> {
    let mut out = vec![];
    while let Ok(m) = rx.try_recv() {
        if let WatchMsg::Event(_, o) = m {
            out.push((*o).clone());
        }
    }
    out
}

#[test]
fn packed_managed_fields_are_invisible_to_clients() {
    let s = server();
    let mut st = s.lock();
    let info = st.resource("v1", "ConfigMap").unwrap();
    let filter = WatchFilter {
        group_resource: "configmaps".into(),
        namespace: Some("default".into()),
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
    };
    let r0 = st.revision();
    let mut live = st.watch(filter.clone(), WatchStart::From(r0));
    let created = st
        .create(
            &info,
            Some("default"),
            json!({"metadata": {"name": "c", "labels": {"app": "x"}}, "data": {"a": "1"}}),
            &mgr("kubectl-create"),
        )
        .unwrap();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"k": "v"}}, "data": {"b": "2"}});
    let mut ssa = mgr("tusk");
    ssa.force = true;
    let (patched, _) = st
        .patch(
            &info,
            Some("default"),
            "c",
            PatchKind::Apply,
            &applied,
            &ssa,
        )
        .unwrap();

    // Responses carry managedFields as the API's array, one entry per manager.
    for o in [&created, &patched] {
        assert!(o["metadata"]["managedFields"].is_array(), "{o}");
    }
    let managers: Vec<&str> = patched["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["kubectl-create", "tusk"]);
    assert_eq!(
        patched["metadata"]["managedFields"][1]["fieldsV1"],
        json!({"f:data": {"f:b": {}}, "f:metadata": {"f:annotations": {"f:k": {}}}})
    );

    // Inside the store they are one string holding exactly the array's JSON.
    let stored = st.get_arc(&info, Some("default"), "c").unwrap();
    let text = stored["metadata"]["managedFields"]
        .as_str()
        .expect("packed");
    assert_eq!(
        text,
        serde_json::to_string(&patched["metadata"]["managedFields"]).unwrap()
    );

    // get, list, a live watch, a replayed watch and changes_since all agree byte for byte.
    let got = st.get(&info, Some("default"), "c").unwrap();
    let listed = st
        .list(&info, Some("default"), &ListOptions::default())
        .unwrap()["items"][0]
        .clone();
    let live_events = events(&mut live);
    let mut replay = st.watch(filter.clone(), WatchStart::From(r0));
    let replayed = events(&mut replay);
    let mut initial = st.watch(filter, WatchStart::Initial);
    let initial = events(&mut initial);
    let changes = st.changes_since(r0).unwrap();
    let bytes = |v: &Value| serde_json::to_string(v).unwrap();
    for other in [
        &listed,
        live_events.last().unwrap(),
        replayed.last().unwrap(),
        &initial[0],
    ] {
        assert_eq!(bytes(other), bytes(&got));
    }
    assert_eq!(bytes(&changes.last().unwrap().object), bytes(&got));
    assert_eq!(
        bytes(changes.last().unwrap().prev.as_deref().unwrap()),
        bytes(&created)
    );
    assert_eq!(bytes(&live_events[0]), bytes(&created));
    assert_eq!(bytes(&got), bytes(&patched));

    // Writes that change nothing bump nothing, whatever the stored form.
    let rev = st.revision();
    st.replace(
        &info,
        Some("default"),
        "c",
        got.clone(),
        &mgr("kubectl-create"),
    )
    .unwrap();
    st.patch(
        &info,
        Some("default"),
        "c",
        PatchKind::Apply,
        &applied,
        &ssa,
    )
    .unwrap();
    st.patch(
        &info,
        Some("default"),
        "c",
        PatchKind::Merge,
        &json!({"data": {"a": "1"}}),
        &mgr("other"),
    )
    .unwrap();
    assert_eq!(st.revision(), rev);

    // A later update still takes fields from the packed entries (ownership is kept).
    let (changed, _) = st
        .patch(
            &info,
            Some("default"),
            "c",
            PatchKind::Merge,
            &json!({"data": {"b": "3"}}),
            &mgr("other"),
        )
        .unwrap();
    let entries = changed["metadata"]["managedFields"].as_array().unwrap();
    let tusk = entries.iter().find(|e| e["manager"] == "tusk").unwrap();
    assert_eq!(
        tusk["fieldsV1"],
        json!({"f:metadata": {"f:annotations": {"f:k": {}}}})
    );
    let other = entries.iter().find(|e| e["manager"] == "other").unwrap();
    assert_eq!(other["fieldsV1"], json!({"f:data": {"f:b": {}}}));
}
