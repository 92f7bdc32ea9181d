//! The real controller (`run_with_client`) against the fake API server in-process: a tower
//! service behind kube's Client, no sockets.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::client::ClientBuilder;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::{ApiServer, Clock, Config, FaultMatch, Objects, SystemClock};
use tusk_operator::cli::RunArgs;
use tusk_operator::executor::PatroniRest;
use tusk_operator::observe::cluster_resource;
use tusk_operator::run::{Shutdown, run_with_client};
use tusk_operator::up::{ModelOps, World};

/// The API server's clock follows tokio's (paused, virtual) clock, so the simulated world —
/// pod start-up, Patroni leases, graceful deletion — runs in the same time as the operator's
/// timers, and ten virtual minutes are ten minutes for everyone.
struct TokioClock {
    start: k8s_openapi::jiff::Timestamp,
    origin: tokio::time::Instant,
}

impl TokioClock {
    fn new() -> Self {
        Self {
            start: SystemClock.now(),
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> k8s_openapi::jiff::Timestamp {
        let elapsed =
            k8s_openapi::jiff::SignedDuration::try_from(self.origin.elapsed()).unwrap_or_default();
        self.start.checked_add(elapsed).unwrap_or(self.start)
    }
}

fn server() -> ApiServer {
    let server = ApiServer::new(Config {
        clock: Arc::new(TokioClock::new()),
        seed: 1,
        auto_gc: true,
        ..Config::default()
    });
    tusk_operator::up::install_crds(&server).expect("CRDs install");
    server
}

fn client(server: &ApiServer) -> Client {
    ClientBuilder::new(server.router(), "default").build()
}

fn args() -> RunArgs {
    RunArgs {
        namespaces: vec!["default".into()],
        http_address: "127.0.0.1:0".parse().unwrap(),
        lease_namespace: Some("default".into()),
        lease_renew_secs: 1,
        ..RunArgs::default()
    }
}

fn example_cr() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cr.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let de = serde_yaml::Deserializer::from_str(&text).next().unwrap();
    Value::deserialize(de).unwrap()
}

async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lease_holder(server: &ApiServer) -> Option<String> {
    let store = server.lock();
    Objects::get(
        &*store,
        "coordination.k8s.io/v1",
        "Lease",
        Some("default"),
        "tusk-operator-lock",
    )
    .and_then(|l| {
        l.pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_the_lease_applies_a_cluster_and_releases_on_shutdown() {
    let server = server();
    let shutdown = Shutdown::default();
    let op = {
        let (c, s) = (client(&server), shutdown.clone());
        tokio::spawn(async move {
            run_with_client(&args(), c, Arc::new(PatroniRest::default()), s).await
        })
    };
    eventually("the leader Lease", Duration::from_secs(20), || {
        lease_holder(&server).is_some()
    })
    .await;

    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&server), "default", &cluster_resource());
    let cr = example_cr();
    api.patch(
        "cluster1",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&cr),
    )
    .await
    .expect("apply cr.yaml");
    assert!(api.get("cluster1").await.is_ok());

    shutdown.trigger();
    let res = tokio::time::timeout(Duration::from_secs(20), op)
        .await
        .expect("operator stops")
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
    assert_eq!(lease_holder(&server), None, "Lease released on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_waits_while_the_first_leads() {
    let server = server();
    let (s1, s2) = (Shutdown::default(), Shutdown::default());
    let first = {
        let (c, s) = (client(&server), s1.clone());
        tokio::spawn(async move {
            run_with_client(&args(), c, Arc::new(PatroniRest::default()), s).await
        })
    };
    eventually("the first leader", Duration::from_secs(20), || {
        lease_holder(&server).is_some()
    })
    .await;
    let holder = lease_holder(&server);
    let second = {
        let (c, s) = (client(&server), s2.clone());
        tokio::spawn(async move {
            run_with_client(&args(), c, Arc::new(PatroniRest::default()), s).await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        lease_holder(&server),
        holder,
        "the standby must not take a live Lease"
    );
    // The leader leaves cleanly; the standby takes over without waiting for expiry.
    s1.trigger();
    first.await.unwrap().unwrap();
    eventually("the standby to lead", Duration::from_secs(20), || {
        lease_holder(&server).is_some_and(|h| Some(&h) != holder.as_ref())
    })
    .await;
    s2.trigger();
    second.await.unwrap().unwrap();
}

fn cluster_state(server: &ApiServer, name: &str) -> Option<String> {
    let store = server.lock();
    Objects::get(
        &*store,
        "pgv2.percona.com/v2",
        "PerconaPGCluster",
        Some("default"),
        name,
    )
    .and_then(|c| {
        c.pointer("/status/state")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

fn count_kind(server: &ApiServer, api_version: &str, kind: &str) -> usize {
    let store = server.lock();
    Objects::list(&*store, api_version, kind, Some("default")).len()
}

/// Objects the operator may write that changed after `revision`, for failure messages.
fn changed_since(server: &ApiServer, revision: u64) -> String {
    let store = server.lock();
    let kinds = [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "Pod"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "Deployment"),
        ("policy/v1", "PodDisruptionBudget"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("events.k8s.io/v1", "Event"),
        ("pgv2.percona.com/v2", "PerconaPGCluster"),
    ];
    let mut out = Vec::new();
    for (api_version, kind) in kinds {
        for o in Objects::list(&*store, api_version, kind, Some("default")) {
            let rv: u64 = o["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rv > revision {
                let managers: Vec<String> = o["metadata"]["managedFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| format!("{}@{}", m["manager"], m["time"]))
                    .collect();
                out.push(format!(
                    "{kind} {} rv {rv} managers {managers:?} note {}",
                    o["metadata"]["name"], o["note"]
                ));
            }
        }
    }
    out.join("\n")
}

async fn apply_cr(server: &ApiServer) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(server), "default", &cluster_resource());
    api.patch(
        "cluster1",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&example_cr()),
    )
    .await
    .expect("apply cr.yaml");
}

/// The operator and the world on tokio's paused clock: timers (requeues, the world's ticks,
/// backoffs) run in virtual time, so ten minutes of steady state take milliseconds.
fn start(
    server: &ApiServer,
    world: &World,
    shutdown: &Shutdown,
) -> tokio::task::JoinHandle<Result<(), tusk_operator::error::CliError>> {
    let mut a = args();
    // Without leader election every write the API server counts is a reconcile's.
    a.no_leader_election = true;
    let (c, s) = (client(server), shutdown.clone());
    // SQL and switchovers go to the world's models, as in `tusk up`.
    let ops = Arc::new(ModelOps {
        models: world.models.clone(),
        server: server.clone(),
    });
    tokio::spawn(async move { run_with_client(&a, c, ops, s).await })
}

/// The world of `tusk up` on `nodes` nodes with a one-second tick: its granularity is not
/// under test here, and ten virtual minutes at 200 ms cost a minute and a half of CPU in a
/// debug build.
fn coarse_world(server: &ApiServer, nodes: u32, shutdown: &Shutdown) -> World {
    World::spawn_with_tick(
        server.clone(),
        nodes,
        7,
        shutdown.clone(),
        Duration::from_secs(1),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn cr_yaml_reaches_ready_then_no_writes_for_ten_minutes() {
    let server = server();
    let shutdown = Shutdown::default();
    let world = coarse_world(&server, 3, &shutdown);
    let op = start(&server, &world, &shutdown);
    apply_cr(&server).await;
    eventually("cluster1 ready", Duration::from_secs(600), || {
        cluster_state(&server, "cluster1").as_deref() == Some("ready")
    })
    .await;
    assert_eq!(
        count_kind(&server, "apps/v1", "StatefulSet"),
        4,
        "3 instances + repo host"
    );
    assert!(count_kind(&server, "v1", "Secret") >= 1);
    // Let the last status updates land, then count writes at the API server.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let before = server.lock().request_counts();
    let writes_before = server.lock().write_count();
    let revision_before = server.lock().revision();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let writes = server.lock().write_count() - writes_before;
    assert_eq!(
        writes,
        0,
        "steady state must not write; counts before {before:?}, after {:?}; changed since: {}",
        server.lock().request_counts(),
        changed_since(&server, revision_before)
    );
    shutdown.trigger();
    op.await.unwrap().unwrap();
    world.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_retried_until_the_cluster_converges() {
    let server = server();
    let shutdown = Shutdown::default();
    let world = World::spawn(server.clone(), 3, 7, shutdown.clone()).unwrap();
    // The next 5 patches of StatefulSets fail with 409 Conflict.
    server
        .lock()
        .faults()
        .conflict_next(5, FaultMatch::verbs(&["patch"]).resource("statefulsets"));
    let op = start(&server, &world, &shutdown);
    apply_cr(&server).await;
    eventually(
        "cluster1 ready despite conflicts",
        Duration::from_secs(600),
        || cluster_state(&server, "cluster1").as_deref() == Some("ready"),
    )
    .await;
    assert!(
        server.lock().faults().injected >= 5,
        "the conflicts were injected"
    );
    assert!(
        tusk_operator::metrics::METRICS
            .render()
            .contains("reason=\"conflict\""),
        "conflicts are counted as reconcile errors"
    );
    shutdown.trigger();
    op.await.unwrap().unwrap();
    world.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn operator_stopped_mid_reconcile_and_restarted_converges() {
    let server = server();
    let shutdown = Shutdown::default();
    let world = World::spawn(server.clone(), 3, 7, shutdown.clone()).unwrap();
    // Slow writes so that the first operator is stopped in the middle of its first plan.
    server
        .lock()
        .faults()
        .latency(Duration::from_millis(200), FaultMatch::verbs(&["patch"]));
    let first_stop = Shutdown::default();
    let first = start(&server, &world, &first_stop);
    apply_cr(&server).await;
    eventually("some objects written", Duration::from_secs(60), || {
        count_kind(&server, "v1", "ConfigMap") > 0
    })
    .await;
    first_stop.trigger();
    first.await.unwrap().unwrap();
    let partial = count_kind(&server, "apps/v1", "StatefulSet");
    server.lock().faults().clear();
    // A new process: empty caches, fresh entropy.
    let second = start(&server, &world, &shutdown);
    eventually(
        "cluster1 ready after restart",
        Duration::from_secs(600),
        || cluster_state(&server, "cluster1").as_deref() == Some("ready"),
    )
    .await;
    assert_eq!(
        count_kind(&server, "apps/v1", "StatefulSet"),
        4,
        "no duplicate instances (had {partial} before restart)"
    );
    shutdown.trigger();
    second.await.unwrap().unwrap();
    world.task.await.unwrap();
}

/// A backup that names a cluster that does not exist gets one Warning Event that says so, and
/// keeps no state: it waits, and nothing else is written for it.
#[tokio::test(start_paused = true)]
async fn a_backup_for_a_missing_cluster_is_told_why_it_waits() {
    let server = server();
    let shutdown = Shutdown::default();
    let world = coarse_world(&server, 1, &shutdown);
    let op = start(&server, &world, &shutdown);
    let backups: Api<DynamicObject> = Api::namespaced_with(
        client(&server),
        "default",
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("pgv2.percona.com", "v2", "PerconaPGBackup"),
            "perconapgbackups",
        ),
    );
    let backup: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "pgv2.percona.com/v2",
        "kind": "PerconaPGBackup",
        "metadata": {"name": "orphan", "namespace": "default"},
        "spec": {"pgCluster": "nope", "repoName": "repo1"},
    }))
    .unwrap();
    backups
        .create(&Default::default(), &backup)
        .await
        .expect("create backup");
    let warned = || {
        let store = server.lock();
        Objects::list(&*store, "events.k8s.io/v1", "Event", Some("default"))
            .into_iter()
            .filter(|e| e.get("reason").and_then(Value::as_str) == Some("ClusterNotFound"))
            .map(|e| {
                e.get("note")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    eventually("a ClusterNotFound event", Duration::from_secs(60), || {
        !warned().is_empty()
    })
    .await;
    let notes = warned();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("orphan") && notes[0].contains("cluster nope (spec.pgCluster)"),
        "{notes:?}"
    );
    // Touching the backup again does not repeat the event, and its status stays empty.
    let mut labelled = backups.get("orphan").await.unwrap();
    labelled.labels_mut().insert("touched".into(), "yes".into());
    backups
        .replace("orphan", &Default::default(), &labelled)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(warned().len(), 1);
    let got = backups.get("orphan").await.unwrap();
    assert!(got.data.get("status").is_none(), "{:?}", got.data);
    shutdown.trigger();
    op.await.unwrap().unwrap();
    world.task.await.unwrap();
}
