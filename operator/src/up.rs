//! `tusk up`: the embedded default. Serves the fake Kubernetes API on 127.0.0.1, installs the
//! CRDs, writes a kubeconfig, runs the simulated world in real time and the same controller as
//! `tusk run` against the API over HTTP.
//!
//! The simulated world (nodes, built-in controllers, pod behaviour) is stepped by [`World`].

use crate::cli::{RunArgs, UpArgs};
use crate::error::CliError;
use crate::run::{Shutdown, client_from_config, run_with_client};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers, Nodes};
use tusk_fake_apiserver::{ApiServer, Config, SystemClock};

/// A running embedded API (used by `tusk up` and the in-process tests).
pub struct Embedded {
    pub server: ApiServer,
    pub url: String,
    pub kubeconfig_text: String,
    handle: tusk_fake_apiserver::ServeHandle,
}

impl Embedded {
    /// Serve an API with the CRDs installed on 127.0.0.1:`port` (0 = a free port).
    pub async fn start(port: u16, seed: u64) -> Result<Self, CliError> {
        let server = ApiServer::new(Config {
            clock: Arc::new(SystemClock),
            seed,
            auto_gc: true,
            ..Config::default()
        });
        install_crds(&server)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let handle = server.serve(addr).await.map_err(|source| CliError::Bind {
            address: format!("{addr} (use --port to pick another, 0 for any free port)"),
            source,
        })?;
        let url = handle.url();
        let kubeconfig_text = handle.kubeconfig();
        Ok(Self {
            server,
            url,
            kubeconfig_text,
            handle,
        })
    }

    /// A kube client over HTTP, exactly as kubectl reaches the API.
    pub async fn client(&self) -> Result<kube::Client, CliError> {
        let kc = Kubeconfig::from_yaml(&self.kubeconfig_text)
            .map_err(|e| CliError::Connect(format!("embedded kubeconfig: {e}")))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| CliError::Connect(format!("embedded kubeconfig: {e}")))?;
        client_from_config(config)
    }

    pub async fn stop(self) {
        self.handle.shutdown().await;
    }
}

pub fn install_crds(server: &ApiServer) -> Result<(), CliError> {
    let crds = tusk_core::api::crds()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .collect();
    server
        .install_crds(crds)
        .map_err(|e| CliError::Other(format!("installing the CRDs into the embedded API: {e}")))
}

/// How often the simulated world is stepped in real time.
const WORLD_TICK: Duration = Duration::from_millis(200);

/// Steps the simulated world in real time: nodes, built-in controllers (StatefulSet,
/// Deployment, Job, PVC binding, scheduler, kubelets) and the pods' behaviour.
///
/// INTEGRATION POINT (models): the Patroni/PostgreSQL behaviour of tusk-scenarios attaches
/// through `Controllers::with_behaviours` / `step_with`; until it lands, database pods use the
/// fake API server's default behaviour (ready once started) and nobody takes the leader lock.
pub struct World;

impl World {
    pub fn spawn(
        server: ApiServer,
        nodes: u32,
        seed: u64,
        shutdown: Shutdown,
    ) -> Result<tokio::task::JoinHandle<()>, CliError> {
        server
            .with_store(|s| Nodes::create(s, nodes.max(1) as usize))
            .map_err(|e| CliError::Other(format!("creating {nodes} simulated nodes: {e}")))?;
        let mut controllers = Controllers::new(ControllerConfig {
            seed,
            ..ControllerConfig::default()
        });
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(WORLD_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait() => return,
                }
                let report = server.with_store(|s| controllers.settle(s, 20));
                for line in report.lines() {
                    tracing::debug!(target: "tusk::world", "{line}");
                }
            }
        }))
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

fn entropy_seed() -> u64 {
    u64::from_le_bytes(
        crate::controller::os_entropy()[..8]
            .try_into()
            .unwrap_or([0; 8]),
    )
}

pub async fn up(args: UpArgs) -> Result<(), CliError> {
    let shutdown = Shutdown::default();
    shutdown.on_signals();
    let seed = entropy_seed();
    let embedded = Embedded::start(args.port, seed).await?;
    let kubeconfig = absolute(&args.kubeconfig);
    std::fs::write(&kubeconfig, &embedded.kubeconfig_text).map_err(|source| CliError::Write {
        path: kubeconfig.clone(),
        source,
    })?;
    let world = World::spawn(embedded.server.clone(), args.nodes, seed, shutdown.clone())?;

    let k = kubeconfig.display();
    println!(
        "tusk up: Kubernetes API at {} with {} simulated nodes",
        embedded.url, args.nodes
    );
    println!("kubeconfig: {k}");
    if args.no_operator {
        println!("operator: not started (--no-operator); run it with:");
        println!("  tusk run --kubeconfig {k} --all-namespaces --http-address 127.0.0.1:0");
    } else {
        println!("operator: running (all namespaces)");
    }
    println!();
    println!("Try:");
    println!("  export KUBECONFIG={k}");
    println!("  kubectl apply -f deploy/cr.yaml");
    println!("  kubectl get pg -w");
    println!("  kubectl get pods -L postgres-operator.crunchydata.com/role");
    println!("  kubectl delete pod <the pod with role=primary>   # watch Patroni fail over");
    println!("Press Ctrl-C to stop.");

    let result = if args.no_operator {
        shutdown.wait().await;
        Ok(())
    } else {
        let client = embedded.client().await?;
        let run_args = RunArgs {
            all_namespaces: true,
            workers: args.workers,
            http_address: args.http_address,
            lease_namespace: Some("default".into()),
            ..RunArgs::default()
        };
        run_with_client(
            &run_args,
            client,
            Arc::new(crate::executor::LogOnlySql),
            shutdown.clone(),
        )
        .await
    };
    shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), world).await;
    embedded.server.with_store(|s| s.drop_watches());
    embedded.stop().await;
    println!("tusk up: stopped");
    result
}
