//! `Objects::controlled` on the real store reads an index kept on every commit; it must
//! always answer what a scan of the namespace answers, whatever writes came before.

use proptest::prelude::*;
use serde_json::{Value, json};
use tusk_fake_apiserver::{Config, Objects, Store};

const NAMESPACES: [&str; 2] = ["default", "other"];
const OWNERS: [&str; 2] = ["uid-a", "uid-b"];

/// Who controls an object: nobody, an owner by uid, or a controller reference without a uid.
#[derive(Debug, Clone, Copy)]
enum Controller {
    None,
    Owner(usize),
    NoUid,
    /// An owner reference that is not the controller.
    Bystander(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, usize, Controller),
    SetController(usize, usize, Controller),
    Delete(usize, usize),
}

fn controller() -> impl Strategy<Value = Controller> {
    prop_oneof![
        Just(Controller::None),
        (0..OWNERS.len()).prop_map(Controller::Owner),
        Just(Controller::NoUid),
        (0..OWNERS.len()).prop_map(Controller::Bystander),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let ns = 0..NAMESPACES.len();
    prop_oneof![
        (ns.clone(), 0..6usize, controller()).prop_map(|(n, i, c)| Op::Create(n, i, c)),
        (ns.clone(), 0..6usize, controller()).prop_map(|(n, i, c)| Op::SetController(n, i, c)),
        (ns, 0..6usize).prop_map(|(n, i)| Op::Delete(n, i)),
    ]
}

fn owner_refs(c: Controller) -> Value {
    let reference = |uid: Option<&str>, controller: bool| {
        let mut r = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "owner",
            "controller": controller});
        if let Some(uid) = uid {
            r["uid"] = json!(uid);
        }
        r
    };
    match c {
        Controller::None => json!([]),
        Controller::Owner(i) => json!([reference(Some(OWNERS[i]), true)]),
        Controller::NoUid => json!([reference(None, true)]),
        Controller::Bystander(i) => json!([reference(Some(OWNERS[i]), false)]),
    }
}

fn config_map(ns: usize, i: usize, c: Controller) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{i}"), "namespace": NAMESPACES[ns],
            "ownerReferences": owner_refs(c)}})
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The answer by scanning, as the trait's default does for stores without an index.
fn scanned(store: &Store, ns: &str, uid: &str, with_orphans: bool) -> Vec<String> {
    names(&Objects::list_where(
        store,
        "v1",
        "ConfigMap",
        Some(ns),
        &|o| match tusk_fake_apiserver::objects::controller_uid(o) {
            Some(u) => u == uid,
            None => with_orphans,
        },
    ))
}

fn apply(store: &mut Store, op: &Op) {
    // Rejections (already exists, not found) are part of the sequence: ignore them.
    let _ = match op {
        Op::Create(ns, i, c) => Objects::create(store, config_map(*ns, *i, *c)).map(drop),
        Op::SetController(ns, i, c) => {
            match Objects::get(
                store,
                "v1",
                "ConfigMap",
                Some(NAMESPACES[*ns]),
                &format!("cm-{i}"),
            ) {
                Some(mut o) => {
                    o["metadata"]["ownerReferences"] = owner_refs(*c);
                    Objects::update(store, o).map(drop)
                }
                None => Ok(()),
            }
        }
        Op::Delete(ns, i) => Objects::delete(
            store,
            "v1",
            "ConfigMap",
            Some(NAMESPACES[*ns]),
            &format!("cm-{i}"),
            None,
            None,
        ),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]
    #[test]
    fn controlled_answers_what_a_scan_answers(ops in prop::collection::vec(op(), 1..40)) {
        let mut store = Store::new(Config::default());
        Objects::create(&mut store, json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "other"}})).unwrap();
        for (step, op) in ops.iter().enumerate() {
            apply(&mut store, op);
            for ns in NAMESPACES {
                for uid in OWNERS.into_iter().chain([""]) {
                    for with_orphans in [false, true] {
                        let indexed =
                            names(&Objects::controlled(&store, "v1", "ConfigMap", ns, uid, with_orphans));
                        prop_assert_eq!(
                            indexed,
                            scanned(&store, ns, uid, with_orphans),
                            "after step {} ({:?}): namespace {}, owner {:?}, orphans {}",
                            step, op, ns, uid, with_orphans
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn controlled_objects_come_without_managed_fields_and_by_name() {
    let mut store = Store::new(Config::default());
    for i in [3, 1, 2] {
        Objects::create(&mut store, config_map(0, i, Controller::Owner(0))).unwrap();
    }
    Objects::create(&mut store, config_map(0, 0, Controller::None)).unwrap();
    let found = Objects::controlled(&store, "v1", "ConfigMap", "default", OWNERS[0], true);
    assert_eq!(names(&found), ["cm-0", "cm-1", "cm-2", "cm-3"]);
    // Controllers never read field ownership; the API still shows it.
    assert!(
        found
            .iter()
            .all(|o| o.pointer("/metadata/managedFields").is_none())
    );
    let info = store.resource("v1", "ConfigMap").unwrap();
    let served = Store::get(&store, &info, Some("default"), "cm-1").unwrap();
    assert!(served.pointer("/metadata/managedFields").is_some());
}
