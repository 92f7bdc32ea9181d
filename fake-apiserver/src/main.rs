//! `tusk-fake-apiserver`: the in-memory API server over HTTP on 127.0.0.1, with simulated
//! nodes and the built-in controllers running in real time.

use clap::Parser;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::controllers::nodes::Nodes;
use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers};
use tusk_fake_apiserver::{ApiServer, Config, SystemClock};

#[derive(Parser, Debug)]
#[command(
    name = "tusk-fake-apiserver",
    about = "An in-memory Kubernetes API server for kubectl and tests (loopback only)"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write a kubeconfig that kubectl uses as is.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Simulated nodes to create.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seed for UIDs and generated names.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CRD manifests (YAML, may hold several documents) to install at start.
    #[arg(long = "crd")]
    crds: Vec<PathBuf>,
    /// Controller step interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    tick_ms: u64,
    /// Changes kept for watch replay.
    #[arg(long, default_value_t = 200_000)]
    history: usize,
    /// Changes older than this many seconds are compacted too (kube-apiserver compacts
    /// etcd every 5 minutes); 0 keeps them until `--history` pushes them out.
    #[arg(long, default_value_t = 300)]
    history_age_secs: u64,
    /// Events are deleted this many seconds after their last write, as kube-apiserver's
    /// `--event-ttl` (1 h by default); 0 keeps them.
    #[arg(long, default_value_t = 3600)]
    event_ttl_secs: u64,
}

fn secs(s: u64) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s))
}

fn read_crds(paths: &[PathBuf]) -> Result<Vec<serde_json::Value>, String> {
    let mut out = vec![];
    for p in paths {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| format!("parsing {}: {e}", p.display()))?;
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("tusk-fake-apiserver: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        seed: args.seed,
        history: args.history,
        auto_gc: true,
        history_age: secs(args.history_age_secs),
        event_ttl: secs(args.event_ttl_secs),
    });
    let crds = read_crds(&args.crds)?;
    server
        .install_crds(crds)
        .map_err(|e| format!("installing CRDs: {e}"))?;
    let mut controllers = Controllers::new(ControllerConfig {
        seed: args.seed,
        pdb_status: true,
        events: true,
        service_accounts: true,
        endpoints: true,
        ..ControllerConfig::default()
    });
    {
        let mut store = server.lock();
        Nodes::create(&mut *store, args.nodes).map_err(|e| format!("creating nodes: {e}"))?;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let handle = server
        .serve(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e} (is the port free?)"))?;
    server
        .publish_kubernetes_service(handle.addr.port())
        .map_err(|e| format!("creating the kubernetes Service: {e}"))?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, handle.kubeconfig())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("kubeconfig: {}", path.display());
    }
    println!(
        "serving the Kubernetes API on {} ({} nodes); Ctrl-C stops",
        handle.url(),
        args.nodes
    );
    let mut tick = tokio::time::interval(Duration::from_millis(args.tick_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let mut store = server.lock();
                let report = controllers.step(&mut *store);
                for (action, e) in &report.errors {
                    eprintln!("controller error: {action}: {e}");
                }
                ticks += 1;
                // Full passes are O(objects): run them when a write asked for one, and every
                // few seconds for the time-based parts (pods on vanished nodes).
                if store.gc_pending() || ticks.is_multiple_of(25) {
                    store.gc_until_settled();
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    server.lock().drop_watches();
    handle.shutdown().await;
    Ok(())
}
