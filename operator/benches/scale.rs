//! Scale benchmark on the embedded setup (issue 4): many 3-instance clusters served by
//! `tusk up --no-operator` (API server + simulated world in one process) and reconciled by
//! `tusk run` in another process over HTTP, so the operator's own footprint is what is measured.
//!
//! `cargo bench -p tusk-operator --bench scale` (100 clusters by default;
//! `TUSK_SCALE_CLUSTERS=1000` for the full figure). Reports:
//! - time from the operator's start until every cluster is `ready`,
//! - the operator's writes per minute in steady state (from its own /metrics), leader election's
//!   Lease renewals counted apart,
//! - the operator's resident memory (VmRSS now, VmHWM peak),
//! - latency from a spec change to the operator's first write for it (p50, p99, max).
//!
//! Progress goes to stderr. Both processes listen on 127.0.0.1 only.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tusk_operator::observe::cluster_resource;

mod common;
use common::{NAMESPACE, scale_cluster as cluster};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sum of the operator's `tusk_api_requests_total` over writing verbs.
/// Writing requests the operator sent so far: `(all, leader election's Lease renewals)`.
async fn operator_writes(metrics_url: &str) -> (u64, u64) {
    let text = http_get(metrics_url).await.unwrap_or_default();
    let sum = |family: &str| {
        text.lines()
            .filter(|l| l.starts_with(family))
            .filter(|l| {
                ["create", "update", "patch", "delete"]
                    .iter()
                    .any(|v| l.contains(&format!("verb=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    (
        sum("tusk_api_requests_total{"),
        sum("tusk_leader_election_requests_total{"),
    )
}

async fn http_get(url: &str) -> Option<String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().ok()?).await.ok()?;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we use.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let clusters = env_usize("TUSK_SCALE_CLUSTERS", 100);
    let samples = env_usize("TUSK_SCALE_SAMPLES", 20);
    let nodes = (clusters / 4).max(3);
    let tusk = PathBuf::from(env!("CARGO_BIN_EXE_tusk"));
    let dir = std::env::temp_dir().join(format!("tusk-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");

    eprintln!("scale: {clusters} clusters of 3 instances on {nodes} simulated nodes");
    let mut world = Command::new(&tusk)
        .args(["up", "--no-operator", "--port", "0", "--nodes"])
        .arg(nodes.to_string())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tusk up --no-operator");
    let stdout = world.stdout.take().expect("piped stdout");
    let _world = Process(world);
    // Drain its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
    wait_for_file(&kubeconfig, Duration::from_secs(60));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::from_yaml(&text).expect("kubeconfig parses"),
            &KubeConfigOptions::default(),
        )
        .await
        .expect("kube config");
        let client = kube::Client::try_from(config).expect("kube client");
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &cluster_resource());
        let names: Vec<String> = (0..clusters).map(|i| format!("scale-{i:04}")).collect();
        for name in &names {
            let cr = cluster(name);
            api.patch(
                name,
                &PatchParams::apply("scale-bench").force(),
                &Patch::Apply(&cr),
            )
            .await
            .expect("create cluster");
        }
        eprintln!("scale: {clusters} clusters created; starting the operator");

        let metrics_port = free_port();
        let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
        let operator = Command::new(&tusk)
            .args(["run", "--all-namespaces", "--workers", "8", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["--http-address", &format!("127.0.0.1:{metrics_port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tusk run");
        let pid = operator.id();
        let _operator = Process(operator);
        let started = Instant::now();

        // Until every cluster is ready.
        let mut last_report = Instant::now();
        let ready_after = loop {
            let list = api.list(&Default::default()).await.expect("list clusters");
            let ready = list
                .items
                .iter()
                .filter(|c| c.data["status"]["state"] == "ready")
                .count();
            if ready == clusters {
                break started.elapsed();
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                let (rss, _) = rss_kib(pid);
                eprintln!(
                    "scale: {ready}/{clusters} ready after {:.0} s (operator RSS {} MiB)",
                    started.elapsed().as_secs_f64(),
                    rss / 1024
                );
                last_report = Instant::now();
            }
            assert!(
                started.elapsed() < Duration::from_secs(3600),
                "not all clusters ready within an hour ({ready}/{clusters})"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        eprintln!("scale: all ready after {:.1} s", ready_after.as_secs_f64());

        // Steady state: writes over one minute, after the last status updates settle.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let (all_before, lease_before) = operator_writes(&metrics_url).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (all_after, lease_after) = operator_writes(&metrics_url).await;
        let lease_writes = lease_after.saturating_sub(lease_before);
        let steady_writes = all_after
            .saturating_sub(all_before)
            .saturating_sub(lease_writes);
        let (rss, peak) = rss_kib(pid);

        // Reaction: a spec change (pgBouncer replicas 1 -> 2) until the operator has written
        // the Deployment.
        let deployments: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            NAMESPACE,
            &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        );
        let mut latencies = Vec::new();
        for (k, name) in names.iter().take(samples).enumerate() {
            let deployment = format!("{name}-pgbouncer");
            let generation = |d: &DynamicObject| d.metadata.generation.unwrap_or(0);
            let before = generation(&deployments.get(&deployment).await.expect("deployment"));
            let patch = json!({"spec": {"proxy": {"pgBouncer": {"replicas": 2}}}});
            let t0 = Instant::now();
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("patch cluster");
            loop {
                let d = deployments.get(&deployment).await.expect("deployment");
                if generation(&d) > before {
                    latencies.push(t0.elapsed());
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(120),
                    "sample {k}: no write for {name} within two minutes"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        latencies.sort();

        println!("scale benchmark: {clusters} clusters x 3 instances, operator over HTTP");
        println!(
            "  time until all ready:         {:.1} s",
            ready_after.as_secs_f64()
        );
        println!(
            "  steady-state writes:          {steady_writes} per minute (plus {lease_writes} Lease renewals of leader election)"
        );
        println!(
            "  operator RSS:                 {} MiB now, {} MiB peak",
            rss / 1024,
            peak / 1024
        );
        println!(
            "  spec change -> first write:   p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} samples)",
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            latencies.len()
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
