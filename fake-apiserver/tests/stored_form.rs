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

/// A write by another manager that changes nothing takes no ownership, bumps nothing and
/// leaves the stored entries exactly as they were (they are not parsed and rewritten).
#[test]
fn a_no_op_write_by_another_manager_leaves_ownership_as_stored() {
    let s = server();
    let mut st = s.lock();
    let info = st.resource("v1", "ConfigMap").unwrap();
    st.create(
        &info,
        Some("default"),
        json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
        &mgr("writer-a"),
    )
    .unwrap();
    let stored_before = st.get_arc(&info, Some("default"), "c").unwrap();
    let rev = st.revision();
    let same = st.get(&info, Some("default"), "c").unwrap();
    let (back, _) = st
        .replace(&info, Some("default"), "c", same, &mgr("writer-b"))
        .unwrap();
    assert_eq!(
        st.revision(),
        rev,
        "a no-op write must not bump the revision"
    );
    let stored_after = st.get_arc(&info, Some("default"), "c").unwrap();
    assert!(Arc::ptr_eq(&stored_before, &stored_after));
    let managers: Vec<&str> = back["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["writer-a"]);
}

/// A write that changes a field moves it to the writer, and what the write returns, what
/// a later read shows and what a watcher sees agree, although the array is packed once.
#[test]
fn a_changing_write_moves_the_field_and_every_view_agrees() {
    let s = server();
    let mut st = s.lock();
    let info = st.resource("v1", "ConfigMap").unwrap();
    st.create(
        &info,
        Some("default"),
        json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "1"}}),
        &mgr("writer-a"),
    )
    .unwrap();
    let filter = WatchFilter {
        group_resource: "configmaps".into(),
        namespace: Some("default".into()),
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
    };
    let r0 = st.revision();
    let mut rx = st.watch(filter, WatchStart::From(r0));
    let mut changed = st.get(&info, Some("default"), "c").unwrap();
    changed["data"]["b"] = json!("2");
    let (returned, _) = st
        .replace(&info, Some("default"), "c", changed, &mgr("writer-b"))
        .unwrap();
    let read = st.get(&info, Some("default"), "c").unwrap();
    let seen = events(&mut rx);
    assert_eq!(seen.len(), 1);
    for view in [&returned, &read, &seen[0]] {
        let entries = view["metadata"]["managedFields"].as_array().unwrap();
        let of = |m: &str| {
            entries
                .iter()
                .find(|e| e["manager"] == m)
                .unwrap_or_else(|| panic!("no entry of {m} in {view}"))["fieldsV1"]["f:data"]
                .clone()
        };
        assert_eq!(of("writer-b"), json!({"f:b": {}}), "{view}");
        assert_eq!(of("writer-a"), json!({"f:a": {}}), "{view}");
    }
    assert_eq!(returned, read);
}

/// Writes through [`tusk_fake_apiserver::Objects`] return what its reads return: no
/// managedFields (in-process drivers never read them, and unpacking them per write costs).
#[test]
fn writes_through_objects_return_no_managed_fields() {
    use tusk_fake_apiserver::Objects;
    let s = server();
    let mut st = s.lock();
    let created = Objects::create(
        &mut *st,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}}),
    )
    .unwrap();
    assert!(
        created["metadata"].get("managedFields").is_none(),
        "{created}"
    );
    let mut next = created.clone();
    next["data"]["a"] = json!("2");
    let updated = Objects::update(&mut *st, next).unwrap();
    assert!(
        updated["metadata"].get("managedFields").is_none(),
        "{updated}"
    );
    assert_eq!(updated["data"]["a"], "2");
    // The store still tracks who owns what.
    let info = st.resource("v1", "ConfigMap").unwrap();
    let full = st.get(&info, Some("default"), "c").unwrap();
    assert!(
        full["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}
