//! The real controller (`run_with_client`) against the fake API server in-process: a tower
//! service behind kube's Client, no sockets.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::client::ClientBuilder;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::{ApiServer, Config, SystemClock};
use tusk_operator::cli::RunArgs;
use tusk_operator::executor::LogOnlySql;
use tusk_operator::observe::cluster_resource;
use tusk_operator::run::{Shutdown, run_with_client};

fn server() -> ApiServer {
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
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
    use tusk_fake_apiserver::Objects;
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
        tokio::spawn(async move { run_with_client(&args(), c, Arc::new(LogOnlySql), s).await })
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
        tokio::spawn(async move { run_with_client(&args(), c, Arc::new(LogOnlySql), s).await })
    };
    eventually("the first leader", Duration::from_secs(20), || {
        lease_holder(&server).is_some()
    })
    .await;
    let holder = lease_holder(&server);
    let second = {
        let (c, s) = (client(&server), s2.clone());
        tokio::spawn(async move { run_with_client(&args(), c, Arc::new(LogOnlySql), s).await })
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
