//! What the store keeps over time: Events expire after their TTL counted from their last
//! write (kube-apiserver's --event-ttl), history older than `history_age` is compacted (as
//! etcd is), and with neither configured nothing goes.

use k8s_openapi::jiff::SignedDuration;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::selectors::{FieldSelector, LabelSelector};
use tusk_fake_apiserver::store::{ListOptions, WatchFilter, WatchMsg, WatchStart, WriteOptions};
use tusk_fake_apiserver::{ApiServer, Config, EventType, ManualClock, PatchKind};

fn server(clock: &ManualClock, age: Option<u64>, ttl: Option<u64>) -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(clock.clone()),
        seed: 5,
        auto_gc: false,
        history_age: age.map(Duration::from_secs),
        event_ttl: ttl.map(Duration::from_secs),
        ..Config::default()
    })
}

fn event(name: &str) -> Value {
    json!({"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "Started container", "type": "Normal", "count": 1})
}

fn minutes(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

#[test]
fn events_expire_an_hour_after_their_last_write() {
    let clock = ManualClock::at_epoch_2025();
    let s = server(&clock, None, Some(3600));
    let mut st = s.lock();
    let ev = st.resource("v1", "Event").unwrap();
    let new_ev = st.resource("events.k8s.io/v1", "Event").unwrap();
    let cm = st.resource("v1", "ConfigMap").unwrap();
    let w = WriteOptions::default();
    let filter = WatchFilter {
        group_resource: "events".into(),
        namespace: None,
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
    };
    let r0 = st.revision();
    let mut watch = st.watch(filter, WatchStart::From(r0));
    st.create(&ev, Some("default"), event("a"), &w).unwrap();
    st.create(&ev, Some("default"), event("b"), &w).unwrap();
    st.create(
        &new_ev,
        Some("default"),
        json!({"metadata": {"name": "n"}, "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "x", "reportingInstance": "y", "action": "Start", "reason": "Started",
            "regarding": {"kind": "Pod", "name": "p"}, "type": "Normal"}),
        &w,
    )
    .unwrap();
    st.create(&cm, Some("default"), json!({"metadata": {"name": "c"}}), &w)
        .unwrap();
    clock.advance(minutes(30));
    // A repeat of b (count 2) renews its lease.
    st.patch(
        &ev,
        Some("default"),
        "b",
        PatchKind::Merge,
        &json!({"count": 2}),
        &w,
    )
    .unwrap();
    clock.advance(minutes(31));
    // Nothing is written: nothing expires yet (expiry runs with writes, as housekeeping).
    assert!(st.get(&ev, Some("default"), "a").is_ok());
    st.create(&cm, Some("default"), json!({"metadata": {"name": "d"}}), &w)
        .unwrap();
    assert_eq!(st.get(&ev, Some("default"), "a").unwrap_err().code, 404);
    assert_eq!(st.get(&new_ev, Some("default"), "n").unwrap_err().code, 404);
    assert!(
        st.get(&ev, Some("default"), "b").is_ok(),
        "renewed 31 minutes ago"
    );
    assert!(
        st.get(&cm, Some("default"), "c").is_ok(),
        "only Events expire"
    );
    clock.advance(minutes(30));
    st.create(&cm, Some("default"), json!({"metadata": {"name": "e"}}), &w)
        .unwrap();
    assert_eq!(st.get(&ev, Some("default"), "b").unwrap_err().code, 404);
    let listed = st.list(&ev, None, &ListOptions::default()).unwrap();
    assert_eq!(listed["items"], json!([]));
    // Watchers saw the expiries as deletions.
    let mut seen = vec![];
    while let Ok(m) = watch.try_recv() {
        if let WatchMsg::Event(t, o) = m {
            seen.push((t, o["metadata"]["name"].as_str().unwrap().to_string()));
        }
    }
    let names = |t: EventType| -> Vec<&str> {
        seen.iter()
            .filter(|(k, _)| *k == t)
            .map(|(_, n)| n.as_str())
            .collect()
    };
    assert_eq!(names(EventType::Deleted), ["a", "b"]);
    assert_eq!(names(EventType::Modified), ["b"]);
}

#[test]
fn without_a_ttl_events_stay() {
    let clock = ManualClock::at_epoch_2025();
    let s = server(&clock, None, None);
    let mut st = s.lock();
    let ev = st.resource("v1", "Event").unwrap();
    let cm = st.resource("v1", "ConfigMap").unwrap();
    let w = WriteOptions::default();
    st.create(&ev, Some("default"), event("a"), &w).unwrap();
    let r1 = st.revision();
    clock.advance(minutes(24 * 60));
    st.create(&cm, Some("default"), json!({"metadata": {"name": "c"}}), &w)
        .unwrap();
    assert!(st.get(&ev, Some("default"), "a").is_ok());
    assert!(st.changes_since(r1 - 1).is_ok(), "no age-based compaction");
}

#[test]
fn history_older_than_the_age_is_compacted() {
    let clock = ManualClock::at_epoch_2025();
    let s = server(&clock, Some(300), None);
    let mut st = s.lock();
    let cm = st.resource("v1", "ConfigMap").unwrap();
    let w = WriteOptions::default();
    st.create(&cm, Some("default"), json!({"metadata": {"name": "a"}}), &w)
        .unwrap();
    let r1 = st.revision();
    clock.advance(minutes(4));
    st.create(&cm, Some("default"), json!({"metadata": {"name": "b"}}), &w)
        .unwrap();
    let r2 = st.revision();
    assert_eq!(
        st.changes_since(r1 - 1).unwrap().len(),
        2,
        "4 minutes: kept"
    );
    clock.advance(minutes(2));
    st.create(&cm, Some("default"), json!({"metadata": {"name": "c"}}), &w)
        .unwrap();
    // a's change is 6 minutes old: gone; b's (2 minutes) and c's stay.
    assert_eq!(st.compacted_revision(), r1);
    assert_eq!(st.changes_since(r1 - 1).unwrap_err().code, 410);
    assert_eq!(st.changes_since(r1).unwrap().len(), 2);
    let old = ListOptions {
        resource_version: Some((r1 - 1).to_string()),
        resource_version_match: Some("Exact".into()),
        ..ListOptions::default()
    };
    assert_eq!(st.list(&cm, Some("default"), &old).unwrap_err().code, 410);
    let filter = WatchFilter {
        group_resource: "configmaps".into(),
        namespace: None,
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
    };
    let mut rx = st.watch(filter, WatchStart::From(r1 - 1));
    assert!(matches!(rx.try_recv(), Ok(WatchMsg::Error(e)) if e["code"] == 410));
    // Objects themselves are kept, only their history goes.
    assert!(st.get(&cm, Some("default"), "a").is_ok());
    assert!(r2 > r1);
}
