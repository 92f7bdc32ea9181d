//! Property tests over random request sequences against the store (deterministic, no HTTP).

use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tusk_fake_apiserver::selectors::{FieldSelector, LabelSelector};
use tusk_fake_apiserver::store::{
    DeleteOptions, ListOptions, WatchFilter, WatchMsg, WatchStart, WriteOptions,
};
use tusk_fake_apiserver::{ApiServer, Config, EventType, ManualClock, PatchKind, Store};

#[derive(Debug, Clone)]
enum Op {
    Create {
        ns: u8,
        name: u8,
        color: u8,
    },
    Replace {
        ns: u8,
        name: u8,
        color: u8,
        stale: bool,
    },
    Patch {
        ns: u8,
        name: u8,
        color: u8,
    },
    Delete {
        ns: u8,
        name: u8,
    },
    Noop {
        ns: u8,
        name: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2u8, 0..4u8, 0..3u8).prop_map(|(ns, name, color)| Op::Create { ns, name, color }),
        (0..2u8, 0..4u8, 0..3u8, any::<bool>()).prop_map(|(ns, name, color, stale)| Op::Replace {
            ns,
            name,
            color,
            stale
        }),
        (0..2u8, 0..4u8, 0..3u8).prop_map(|(ns, name, color)| Op::Patch { ns, name, color }),
        (0..2u8, 0..4u8).prop_map(|(ns, name)| Op::Delete { ns, name }),
        (0..2u8, 0..4u8).prop_map(|(ns, name)| Op::Noop { ns, name }),
    ]
}

const NS: [&str; 2] = ["default", "kube-public"];
const COLORS: [&str; 3] = ["red", "green", "blue"];

fn store(seed: u64) -> ApiServer {
    ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed,
        auto_gc: false,
        ..Config::default()
    })
}

fn snapshot(s: &Store) -> Vec<Value> {
    let info = s.resource("v1", "ConfigMap").unwrap();
    s.list(&info, None, &ListOptions::default()).unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<WatchMsg>) -> Vec<(EventType, Value)> {
    let mut out = vec![];
    while let Ok(m) = rx.try_recv() {
        if let WatchMsg::Event(t, o) = m {
            out.push((t, (*o).clone()));
        }
    }
    out
}

fn apply(s: &mut Store, op: &Op) -> Result<(), tusk_fake_apiserver::ApiError> {
    let info = s.resource("v1", "ConfigMap").unwrap();
    let w = WriteOptions::default();
    match *op {
        Op::Create { ns, name, color } => s
            .create(&info, Some(NS[ns as usize]), json!({"metadata": {"name": format!("c{name}"), "labels": {"color": COLORS[color as usize]}}}), &w)
            .map(|_| ()),
        Op::Replace { ns, name, color, stale } => {
            let mut cur = s.get(&info, Some(NS[ns as usize]), &format!("c{name}"))?;
            cur["metadata"]["labels"]["color"] = json!(COLORS[color as usize]);
            if stale {
                cur["metadata"]["resourceVersion"] = json!("1");
            }
            s.replace(&info, Some(NS[ns as usize]), &format!("c{name}"), cur, &w).map(|_| ())
        }
        Op::Patch { ns, name, color } => s
            .patch(&info, Some(NS[ns as usize]), &format!("c{name}"), PatchKind::Merge, &json!({"data": {"x": COLORS[color as usize]}}), &w)
            .map(|_| ()),
        Op::Delete { ns, name } => s.delete(&info, Some(NS[ns as usize]), &format!("c{name}"), &DeleteOptions::default()).map(|_| ()),
        Op::Noop { ns, name } => {
            let cur = s.get(&info, Some(NS[ns as usize]), &format!("c{name}"))?;
            s.replace(&info, Some(NS[ns as usize]), &format!("c{name}"), cur, &w).map(|_| ())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn random_requests_keep_invariants(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..40)) {
        let server = store(seed);
        let mut s = server.lock();
        let r0 = s.revision();
        let filter = WatchFilter {
            group_resource: "configmaps".into(),
            namespace: Some("default".into()),
            labels: LabelSelector::parse("color in (red,green)").unwrap(),
            fields: FieldSelector::default(),
        };
        let mut live = s.watch(filter.clone(), WatchStart::From(r0));
        for op in &ops {
            let before_rev = s.revision();
            let before = snapshot(&s);
            let res = apply(&mut s, op);
            let after_rev = s.revision();
            prop_assert!(after_rev >= before_rev, "revisions never go back (seed {seed})");
            match (&res, op) {
                (Err(_), _) => {
                    prop_assert_eq!(after_rev, before_rev, "a failed request changes nothing: {:?}", op);
                    prop_assert_eq!(snapshot(&s), before);
                }
                (Ok(()), Op::Noop { .. }) => prop_assert_eq!(after_rev, before_rev, "no-op writes are silent"),
                (Ok(()), _) => {}
            }
            if let Op::Replace { stale: true, .. } = op {
                prop_assert!(res.is_err() || before_rev == 1);
            }
        }
        // A watch replayed from r0 now sees exactly what the live watch saw, in order.
        let mut replay = s.watch(filter.clone(), WatchStart::From(r0));
        let got_live = drain(&mut live);
        let got_replay = drain(&mut replay);
        prop_assert_eq!(&got_live, &got_replay);
        // Revisions strictly increase along the stream.
        let revs: Vec<u64> = got_live.iter().map(|(_, o)| o["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()).collect();
        prop_assert!(revs.windows(2).all(|w| w[0] < w[1]), "{:?}", revs);
        // Folding the events gives the current matching set.
        let mut model: BTreeMap<String, Value> = BTreeMap::new();
        for (t, o) in &got_live {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            match t {
                EventType::Deleted => { prop_assert!(model.remove(&name).is_some()); }
                EventType::Added => { prop_assert!(model.insert(name, o.clone()).is_none()); }
                EventType::Modified => { prop_assert!(model.insert(name, o.clone()).is_some()); }
            }
        }
        let want: BTreeMap<String, Value> = snapshot(&s)
            .into_iter()
            .filter(|o| filter.matches(o))
            .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
            .collect();
        prop_assert_eq!(model, want);
    }

    #[test]
    fn gc_removes_dependents_by_uid(seed in any::<u64>(), links in proptest::collection::vec((0..4usize, 0..4usize), 1..12), kill in proptest::collection::vec(any::<bool>(), 4)) {
        let server = store(seed);
        let mut s = server.lock();
        let info = s.resource("v1", "ConfigMap").unwrap();
        let w = WriteOptions::default();
        let mut owners = vec![];
        for i in 0..4 {
            let o = s.create(&info, Some("default"), json!({"metadata": {"name": format!("owner{i}")}}), &w).unwrap();
            owners.push(o["metadata"]["uid"].as_str().unwrap().to_string());
        }
        // Dependents reference one or two owners by uid.
        for (i, (a, b)) in links.iter().enumerate() {
            let mut refs = vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "name": format!("owner{a}"), "uid": owners[*a]})];
            if a != b {
                refs.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": format!("owner{b}"), "uid": owners[*b]}));
            }
            s.create(&info, Some("default"), json!({"metadata": {"name": format!("dep{i}"), "ownerReferences": refs}}), &w).unwrap();
        }
        for (i, k) in kill.iter().enumerate() {
            if *k {
                s.delete(&info, Some("default"), &format!("owner{i}"), &DeleteOptions::default()).unwrap();
                // Recreate under the same name: a new uid does not keep the dependents alive.
                s.create(&info, Some("default"), json!({"metadata": {"name": format!("owner{i}")}}), &w).unwrap();
            }
        }
        s.gc_until_settled();
        for (i, (a, b)) in links.iter().enumerate() {
            let alive = !kill[*a] || !kill[*b];
            let exists = s.get(&info, Some("default"), &format!("dep{i}")).is_ok();
            prop_assert_eq!(exists, alive, "dep{} owners {} {} kill {:?} (seed {})", i, a, b, kill, seed);
        }
        prop_assert_eq!(s.gc_step(), 0, "settled");
    }
}

#[test]
fn foreground_and_orphan_deletion() {
    let server = store(3);
    let mut s = server.lock();
    let info = s.resource("v1", "ConfigMap").unwrap();
    let w = WriteOptions::default();
    let owner = s
        .create(
            &info,
            Some("default"),
            json!({"metadata": {"name": "o"}}),
            &w,
        )
        .unwrap();
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let dep = |n: &str| json!({"metadata": {"name": n, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": uid, "blockOwnerDeletion": true}]}});
    s.create(&info, Some("default"), dep("d1"), &w).unwrap();
    // Foreground: the owner waits for its dependents.
    let fg = DeleteOptions {
        propagation_policy: Some("Foreground".into()),
        ..Default::default()
    };
    s.delete(&info, Some("default"), "o", &fg).unwrap();
    let pending = s.get(&info, Some("default"), "o").unwrap();
    assert_eq!(
        pending["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    s.gc_until_settled();
    assert!(s.get(&info, Some("default"), "d1").is_err());
    assert!(s.get(&info, Some("default"), "o").is_err());
    // Orphan: dependents stay, without the owner reference.
    let owner = s
        .create(
            &info,
            Some("default"),
            json!({"metadata": {"name": "o2"}}),
            &w,
        )
        .unwrap();
    let uid2 = owner["metadata"]["uid"].as_str().unwrap().to_string();
    s.create(&info, Some("default"), json!({"metadata": {"name": "d2", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o2", "uid": uid2}]}}), &w).unwrap();
    s.delete(
        &info,
        Some("default"),
        "o2",
        &DeleteOptions {
            propagation_policy: Some("Orphan".into()),
            ..Default::default()
        },
    )
    .unwrap();
    s.gc_until_settled();
    let d2 = s.get(&info, Some("default"), "d2").unwrap();
    assert!(d2["metadata"].get("ownerReferences").is_none(), "{d2}");
    assert!(s.get(&info, Some("default"), "o2").is_err());
}

#[test]
fn graceful_pod_deletion_and_namespace_termination() {
    let server = store(4);
    let mut s = server.lock();
    let pods = s.resource("v1", "Pod").unwrap();
    let nsinfo = s.resource("v1", "Namespace").unwrap();
    let w = WriteOptions::default();
    s.create(&nsinfo, None, json!({"metadata": {"name": "team"}}), &w)
        .unwrap();
    s.create(&pods, Some("team"), json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}), &w).unwrap();
    let out = s
        .delete(&pods, Some("team"), "p", &DeleteOptions::default())
        .unwrap();
    let tusk_fake_apiserver::Deleted::Pending(p) = out else {
        panic!("a bound pod is deleted gracefully")
    };
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(p["metadata"]["deletionTimestamp"], "2025-01-01T00:00:30Z");
    // The kubelet's confirmation (grace 0) removes it.
    s.delete(
        &pods,
        Some("team"),
        "p",
        &DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(s.get(&pods, Some("team"), "p").is_err());
    // Namespace deletion: Terminating, contents removed, then the namespace.
    let cms = s.resource("v1", "ConfigMap").unwrap();
    s.create(&cms, Some("team"), json!({"metadata": {"name": "x"}}), &w)
        .unwrap();
    s.delete(&nsinfo, None, "team", &DeleteOptions::default())
        .unwrap();
    assert_eq!(
        s.get(&nsinfo, None, "team").unwrap()["status"]["phase"],
        "Terminating"
    );
    assert_eq!(
        s.create(&cms, Some("team"), json!({"metadata": {"name": "y"}}), &w)
            .unwrap_err()
            .code,
        403
    );
    s.gc_until_settled();
    assert!(s.get(&nsinfo, None, "team").is_err());
    assert!(s.get(&cms, Some("team"), "x").is_err());
}

#[test]
fn same_requests_give_identical_results() {
    let run = || {
        let server = store(99);
        let mut s = server.lock();
        let info = s.resource("v1", "ConfigMap").unwrap();
        for i in 0..20 {
            s.create(
                &info,
                Some("default"),
                json!({"metadata": {"generateName": "x-", "labels": {"i": i.to_string()}}}),
                &WriteOptions::default(),
            )
            .unwrap();
        }
        serde_json::to_string(&snapshot(&s)).unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn faults_fail_without_side_effects() {
    use tusk_fake_apiserver::FaultMatch;
    let server = store(5);
    let mut s = server.lock();
    let info = s.resource("v1", "ConfigMap").unwrap();
    s.faults().error_next(
        1,
        503,
        Some(2),
        FaultMatch::verbs(&["create"]).resource("configmaps"),
    );
    let out = s
        .faults()
        .check("create", &info, Some("default"), Some("a"));
    let e = out.error.unwrap();
    assert_eq!((e.code, e.retry_after), (503, Some(2)));
    assert!(
        s.faults()
            .check("create", &info, Some("default"), Some("a"))
            .error
            .is_none(),
        "counted rule is used up"
    );
    let rev = s.revision();
    s.faults()
        .stale_reads(rev, FaultMatch::verbs(&["get", "list"]));
    s.create(
        &info,
        Some("default"),
        json!({"metadata": {"name": "new"}}),
        &WriteOptions::default(),
    )
    .unwrap();
    let stale = s
        .faults()
        .check("list", &info, Some("default"), None)
        .stale_revision
        .unwrap();
    let old = s
        .list_at(&info, Some("default"), &ListOptions::default(), stale)
        .unwrap();
    assert!(old["items"].as_array().unwrap().is_empty());
    assert_eq!(old["metadata"]["resourceVersion"], rev.to_string());
}
