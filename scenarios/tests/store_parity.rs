//! The world keeps its objects in `SimStore`, a small store written for speed (the fake API
//! server's full `Store`, with field managers and watch history, made a seed about twice as
//! slow). What keeps it honest: the same requests, made to both, must have the same outcome.
//! Each case runs a sequence of writes against `SimStore` and against the fake API server's
//! `Store`, and compares what a client sees (status codes and the objects, minus what each
//! server generates: uids, resourceVersions, timestamps, managedFields).

use serde_json::{Value, json};
use std::sync::Arc;
use tusk_fake_apiserver::store::WriteOptions;
use tusk_fake_apiserver::{ApiError, ApiServer, Config, ManualClock, Objects, PatchKind};
use tusk_scenarios::rng::SimRng;
use tusk_scenarios::store::{SimApi, SimStore};

/// One request, made the same way to either store.
#[derive(Clone)]
enum Req {
    Create(Value),
    /// Update of the stored object after `edit`; `stale` sends the resourceVersion read
    /// before the previous write.
    Update {
        kind: &'static str,
        name: &'static str,
        edit: fn(&mut Value),
        stale: bool,
    },
    UpdateStatus {
        kind: &'static str,
        name: &'static str,
        status: Value,
    },
    Delete {
        kind: &'static str,
        name: &'static str,
        grace: Option<i64>,
        wrong_uid: bool,
    },
    /// Server-side apply of a whole object by a manager (force).
    Apply(Value, &'static str),
}

fn api_version(kind: &str) -> &'static str {
    match kind {
        "StatefulSet" => "apps/v1",
        _ => "v1",
    }
}

/// What a client can compare across two servers: the object without server-generated
/// values, with timestamps reduced to whether they are set.
fn comparable(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(k);
        }
        if m.contains_key("deletionTimestamp") {
            m.insert("deletionTimestamp".into(), json!("set"));
        }
    }
    o
}

trait Server {
    fn run(&mut self, req: &Req, history: &mut Vec<Value>) -> Result<(), u16>;
    fn read(&self, kind: &str, name: &str) -> Option<Value>;
}

fn outcome(r: Result<Value, ApiError>) -> Result<Value, u16> {
    r.map_err(|e| e.code)
}

/// The requests both stores take through [`Objects`]; each store applies in its own way.
fn run_objects(s: &mut dyn Objects, req: &Req, history: &mut Vec<Value>) -> Result<(), u16> {
    let ns = Some("ns");
    match req {
        Req::Create(o) => {
            let c = outcome(s.create(o.clone()))?;
            history.push(c);
        }
        Req::Update {
            kind,
            name,
            edit,
            stale,
        } => {
            let cur = s.get(api_version(kind), kind, ns, name).ok_or(404u16)?;
            let mut next = cur.clone();
            if *stale && let Some(old) = history.iter().rev().nth(1) {
                next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
            }
            edit(&mut next);
            let u = outcome(s.update(next))?;
            history.push(u);
        }
        Req::UpdateStatus { kind, name, status } => {
            let mut cur = s.get(api_version(kind), kind, ns, name).ok_or(404u16)?;
            cur["status"] = status.clone();
            let u = outcome(s.update_status(cur))?;
            history.push(u);
        }
        Req::Delete {
            kind,
            name,
            grace,
            wrong_uid,
        } => {
            let uid = wrong_uid.then_some("not-the-uid");
            s.delete(api_version(kind), kind, ns, name, uid, *grace)
                .map_err(|e| e.code)?;
        }
        Req::Apply(..) => unreachable!("each store applies in its own way"),
    }
    Ok(())
}

struct Sim(SimStore);
impl Server for Sim {
    fn run(&mut self, req: &Req, history: &mut Vec<Value>) -> Result<(), u16> {
        if let Req::Apply(o, m) = req {
            let a = outcome(self.0.apply(o.clone(), m))?;
            history.push(a);
            return Ok(());
        }
        run_objects(&mut self.0, req, history)
    }
    fn read(&self, kind: &str, name: &str) -> Option<Value> {
        self.0.get(api_version(kind), kind, Some("ns"), name)
    }
}

struct Real(ApiServer);
impl Server for Real {
    fn run(&mut self, req: &Req, history: &mut Vec<Value>) -> Result<(), u16> {
        let mut st = self.0.lock();
        if let Req::Apply(o, m) = req {
            let kind = o["kind"].as_str().unwrap_or_default();
            let info = st.resource(api_version(kind), kind).map_err(|e| e.code)?;
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let opts = WriteOptions {
                field_manager: Some(m.to_string()),
                force: true,
                ..WriteOptions::default()
            };
            let (a, _) = st
                .patch(&info, Some("ns"), name, PatchKind::Apply, o, &opts)
                .map_err(|e| e.code)?;
            history.push(a);
            return Ok(());
        }
        run_objects(&mut *st, req, history)
    }
    fn read(&self, kind: &str, name: &str) -> Option<Value> {
        Objects::get(&*self.0.lock(), api_version(kind), kind, Some("ns"), name)
    }
}

fn real() -> Real {
    let server = ApiServer::new(Config {
        clock: Arc::new(ManualClock::at_epoch_2025()),
        seed: 1,
        auto_gc: false,
        ..Config::default()
    });
    Objects::create(
        &mut *server.lock(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
    )
    .expect("namespace");
    Real(server)
}

/// Per request, its outcome on `SimStore` and on the fake API server (the status code of a
/// refusal).
type Outcomes = Vec<(Result<(), u16>, Result<(), u16>)>;

/// Runs `reqs` on both stores; returns the outcomes, and the final object `kind/name` as each
/// holds it.
fn both(reqs: &[Req], kind: &str, name: &str) -> (Outcomes, Option<Value>, Option<Value>) {
    let mut sim = Sim(SimStore::new(SimRng::new(1)));
    let mut api = real();
    let (mut hs, mut hr) = (vec![], vec![]);
    let outcomes = reqs
        .iter()
        .map(|r| (sim.run(r, &mut hs), api.run(r, &mut hr)))
        .collect();
    (
        outcomes,
        sim.read(kind, name).map(|o| comparable(&o)),
        api.read(kind, name).map(|o| comparable(&o)),
    )
}

fn assert_same(reqs: &[Req], kind: &str, name: &str, pick: &[&str]) {
    let (outcomes, sim, api) = both(reqs, kind, name);
    for (i, (s, a)) in outcomes.iter().enumerate() {
        assert_eq!(s, a, "request {i}: SimStore {s:?}, fake API server {a:?}");
    }
    // Compare the fields the case is about (the fake API server also fills in defaults for
    // built-in kinds that the world's builders write themselves).
    let at = |o: &Option<Value>, p: &str| o.as_ref().and_then(|o| o.pointer(p).cloned());
    assert_eq!(
        sim.is_some(),
        api.is_some(),
        "exists: SimStore {sim:?}, fake API server {api:?}"
    );
    for p in pick {
        assert_eq!(
            at(&sim, p),
            at(&api, p),
            "{p}: SimStore {sim:?}\nfake API server {api:?}"
        );
    }
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns"}, "data": {"a": "1"}})
}

fn sts() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {"replicas": 1, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}})
}

#[test]
fn a_stale_resource_version_conflicts_on_both() {
    let reqs = [
        Req::Create(cm("c")),
        Req::Update {
            kind: "ConfigMap",
            name: "c",
            edit: |o| o["data"]["a"] = json!("2"),
            stale: false,
        },
        Req::Update {
            kind: "ConfigMap",
            name: "c",
            edit: |o| o["data"]["a"] = json!("3"),
            stale: true,
        },
    ];
    let (outcomes, _, _) = both(&reqs, "ConfigMap", "c");
    assert_eq!(outcomes[2], (Err(409), Err(409)));
    assert_same(&reqs, "ConfigMap", "c", &["/data"]);
}

#[test]
fn generation_moves_with_the_spec_only_on_both() {
    let reqs = [
        Req::Create(sts()),
        Req::UpdateStatus {
            kind: "StatefulSet",
            name: "db",
            status: json!({"replicas": 1}),
        },
        Req::Update {
            kind: "StatefulSet",
            name: "db",
            edit: |o| o["spec"]["replicas"] = json!(2),
            stale: false,
        },
        // A status change through the main resource is ignored where a status subresource
        // exists.
        Req::Update {
            kind: "StatefulSet",
            name: "db",
            edit: |o| o["status"]["replicas"] = json!(9),
            stale: false,
        },
    ];
    assert_same(
        &reqs,
        "StatefulSet",
        "db",
        &["/metadata/generation", "/spec/replicas", "/status/replicas"],
    );
    let (_, sim, _) = both(&reqs, "StatefulSet", "db");
    assert_eq!(sim.unwrap()["metadata"]["generation"], 2);
}

#[test]
fn finalizers_hold_a_deleted_object_on_both() {
    let mut with_finalizer = cm("f");
    with_finalizer["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let held = [
        Req::Create(with_finalizer),
        Req::Delete {
            kind: "ConfigMap",
            name: "f",
            grace: None,
            wrong_uid: false,
        },
    ];
    assert_same(
        &held,
        "ConfigMap",
        "f",
        &["/metadata/deletionTimestamp", "/metadata/finalizers"],
    );
    let (_, sim, _) = both(&held, "ConfigMap", "f");
    assert_eq!(sim.expect("held")["metadata"]["deletionTimestamp"], "set");
    let mut released = held.to_vec();
    released.push(Req::Update {
        kind: "ConfigMap",
        name: "f",
        edit: |o| o["metadata"]["finalizers"] = json!([]),
        stale: false,
    });
    let (_, sim, api) = both(&released, "ConfigMap", "f");
    assert_eq!((sim, api), (None, None), "gone once its last finalizer is");
}

#[test]
fn a_uid_precondition_protects_a_newer_object_on_both() {
    let reqs = [
        Req::Create(cm("u")),
        Req::Delete {
            kind: "ConfigMap",
            name: "u",
            grace: None,
            wrong_uid: true,
        },
    ];
    let (outcomes, _, _) = both(&reqs, "ConfigMap", "u");
    assert_eq!(outcomes[1], (Err(409), Err(409)));
    assert_same(&reqs, "ConfigMap", "u", &["/data"]);
}

#[test]
fn a_secrets_string_data_is_folded_into_data_on_both() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"},
        "data": {"keep": "a2VlcA=="}, "stringData": {"password": "hunter2"}});
    let reqs = [Req::Create(secret)];
    assert_same(&reqs, "Secret", "s", &["/data", "/stringData"]);
    let (_, sim, _) = both(&reqs, "Secret", "s");
    let sim = sim.expect("secret");
    assert_eq!(sim["data"]["password"], "aHVudGVyMg==");
    assert!(sim.get("stringData").is_none());
}

#[test]
fn a_noop_update_changes_nothing_on_both() {
    let reqs = [
        Req::Create(cm("n")),
        Req::Update {
            kind: "ConfigMap",
            name: "n",
            edit: |_| {},
            stale: false,
        },
        // Stale after a no-op: the no-op bumped nothing, so this one still applies.
        Req::Update {
            kind: "ConfigMap",
            name: "n",
            edit: |o| o["data"]["a"] = json!("2"),
            stale: true,
        },
    ];
    let (outcomes, _, _) = both(&reqs, "ConfigMap", "n");
    assert_eq!(outcomes[2], (Ok(()), Ok(())));
    assert_same(&reqs, "ConfigMap", "n", &["/data"]);
}

#[test]
fn an_apply_keeps_what_another_writer_set_on_both() {
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "c", "namespace": "ns", "labels": {"app": "db"}},
        "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
    let reqs = [
        Req::Apply(claim.clone(), "tusk"),
        // The volume binder and a user's label, written by others.
        Req::Update {
            kind: "PersistentVolumeClaim",
            name: "c",
            edit: |o| {
                o["spec"]["volumeName"] = json!("pv-1");
                o["metadata"]["labels"]["team"] = json!("dba");
            },
            stale: false,
        },
        Req::Apply(claim, "tusk"),
    ];
    assert_same(
        &reqs,
        "PersistentVolumeClaim",
        "c",
        &["/spec/volumeName", "/metadata/labels", "/spec/accessModes"],
    );
    let (_, sim, _) = both(&reqs, "PersistentVolumeClaim", "c");
    let sim = sim.expect("claim");
    assert_eq!(sim["spec"]["volumeName"], "pv-1");
    assert_eq!(
        sim["metadata"]["labels"],
        json!({"app": "db", "team": "dba"})
    );
}

#[test]
fn a_reapply_changes_the_fields_it_owns_on_both() {
    let mut first = cm("a");
    first["data"] = json!({"a": "1", "b": "1"});
    let mut second = cm("a");
    second["data"] = json!({"a": "2", "b": "1"});
    let reqs = [Req::Apply(first, "tusk"), Req::Apply(second, "tusk")];
    assert_same(&reqs, "ConfigMap", "a", &["/data"]);
    let (_, sim, _) = both(&reqs, "ConfigMap", "a");
    assert_eq!(sim.expect("applied")["data"], json!({"a": "2", "b": "1"}));
}

#[test]
fn a_reapply_without_a_field_removes_it_on_both() {
    let mut first = cm("r");
    first["data"] = json!({"a": "1", "gone": "1"});
    let reqs = [Req::Apply(first, "tusk"), Req::Apply(cm("r"), "tusk")];
    assert_same(&reqs, "ConfigMap", "r", &["/data"]);
    let (_, sim, _) = both(&reqs, "ConfigMap", "r");
    assert_eq!(sim.expect("applied")["data"], json!({"a": "1"}));
}

#[test]
fn a_pod_deleted_with_grace_stays_until_confirmed_on_both() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "db", "image": "postgres:17"}]}});
    let graceful = [
        Req::Create(pod.clone()),
        Req::Delete {
            kind: "Pod",
            name: "p",
            grace: Some(30),
            wrong_uid: false,
        },
    ];
    assert_same(&graceful, "Pod", "p", &["/metadata/deletionTimestamp"]);
    let (_, sim, _) = both(&graceful, "Pod", "p");
    assert_eq!(
        sim.expect("terminating")["metadata"]["deletionTimestamp"],
        "set"
    );
    let forced = [
        Req::Create(pod),
        Req::Delete {
            kind: "Pod",
            name: "p",
            grace: Some(0),
            wrong_uid: false,
        },
    ];
    let (outcomes, sim, api) = both(&forced, "Pod", "p");
    assert_eq!(outcomes[1], (Ok(()), Ok(())));
    assert_eq!((sim, api), (None, None));
}
