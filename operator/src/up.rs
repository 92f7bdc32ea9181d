//! `tusk up`: the embedded default. Serves the fake Kubernetes API on 127.0.0.1, installs the
//! CRDs, writes a kubeconfig, runs the simulated world in real time and the same controller as
//! `tusk run` against the API over HTTP.
//!
//! The simulated world (nodes, built-in controllers, pod behaviour) is stepped by [`World`].

use crate::cli::{RunArgs, UpArgs};
use crate::error::CliError;
use crate::executor::DatabaseOps;
use crate::run::{Shutdown, client_from_config, run_with_client};
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tusk_core::ObjectRef;
use tusk_fake_apiserver::Objects;
use tusk_fake_apiserver::controllers::{
    ControllerConfig, Controllers, DefaultBehaviour, Nodes, PodBehaviour,
};
use tusk_fake_apiserver::exec::{ExecOutput, ExecRequest};
use tusk_fake_apiserver::{ApiServer, Config, SystemClock};
use tusk_scenarios::LiveModels;

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
            // The garbage collector runs in the world's loop at most once a second (see
            // `World::spawn`), asynchronously as upstream's GC controller does, not after
            // every write: a full pass reads every object, which at a thousand clusters made
            // each create cost a scan of fifty thousand objects.
            auto_gc: false,
            // Watches replay from recent history only; a long history of full objects is
            // most of the embedded server's memory with many clusters.
            history: EMBEDDED_HISTORY,
            // As a real cluster bounds them: etcd compacted to the last 5 minutes, Events
            // deleted an hour after their last write (kube-apiserver's --event-ttl).
            history_age: Some(Duration::from_secs(300)),
            event_ttl: Some(Duration::from_secs(3600)),
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

/// Changes the embedded API server keeps for watch replay (a client further behind gets
/// 410 Gone and lists again, as with a real API server's watch cache).
const EMBEDDED_HISTORY: usize = 20_000;

/// How often the simulated world is stepped in real time.
const WORLD_TICK: Duration = Duration::from_millis(200);

/// At most this many controller rounds per tick (a round that changes nothing ends it early).
const SETTLE_ROUNDS: usize = 20;

/// Settling stops after this long (rests included), so the behaviour models step at least
/// about once a second however large the world: Patroni leaders must renew their leases
/// (30 s by default) or they lose them.
const SETTLE_BUDGET: Duration = Duration::from_secs(1);

/// The garbage collector's pace in the embedded world: a pass at most this often when a write
/// asked for one (an owner deleted, a dependent created) ...
const GC_INTERVAL: Duration = Duration::from_secs(1);
/// ... and one this often regardless, for the time-based parts.
const GC_IDLE_INTERVAL: Duration = Duration::from_secs(5);

/// Share of the time the world may hold the store. The rest is left to API requests: with
/// many clusters every round changes something and one round can outlast a tick, and a world
/// that steps back to back starves the operator and kubectl of the store lock.
const WORLD_SHARE: f64 = 0.4;

/// The pause after a piece of world work that took `busy`, so that the world holds the store
/// for at most [`WORLD_SHARE`] of the time (nothing for a small, fast world).
fn rest_after(busy: Duration) -> Duration {
    busy.mul_f64((1.0 - WORLD_SHARE) / WORLD_SHARE)
}

/// Steps the simulated world in real time: nodes, built-in controllers (StatefulSet,
/// Deployment, Job, PVC binding, scheduler, kubelets) and, for database pods in every
/// namespace, the Patroni + PostgreSQL model of tusk-scenarios (leader lock in `<cluster>-ha`,
/// role labels, failover, switchover).
pub struct World {
    pub models: LiveModels,
    pub task: tokio::task::JoinHandle<()>,
}

/// The kubelet's view of the models: Patroni decides database pods' readiness, the fake API
/// server's default behaviour everything else (pgBouncer, repo host, Jobs).
struct ModelBehaviour<'a> {
    models: &'a LiveModels,
    default: DefaultBehaviour,
}

impl PodBehaviour for ModelBehaviour<'_> {
    fn ready(&mut self, pod: &Value, container: &str, now: Timestamp) -> bool {
        match self.models.ready(pod) {
            Some(ready) => ready,
            None => self.default.ready(pod, container, now),
        }
    }

    fn exit(&mut self, pod: &Value, container: &str, now: Timestamp) -> Option<i32> {
        self.default.exit(pod, container, now)
    }

    fn stop_delay(&self, pod: &Value) -> Option<i64> {
        match self.models.ready(pod) {
            Some(_) => Some(tusk_scenarios::live::DATABASE_STOP_SECONDS),
            None => self.default.stop_delay(pod),
        }
    }

    fn on_stop(&mut self, pod: &Value, _now: Timestamp) {
        self.models.stopped(pod);
    }
}

impl World {
    pub fn spawn(
        server: ApiServer,
        nodes: u32,
        seed: u64,
        shutdown: Shutdown,
    ) -> Result<Self, CliError> {
        Self::spawn_with_tick(server, nodes, seed, shutdown, WORLD_TICK)
    }

    /// As [`World::spawn`], stepping every `tick` (long virtual-time tests use a coarser one).
    pub fn spawn_with_tick(
        server: ApiServer,
        nodes: u32,
        seed: u64,
        shutdown: Shutdown,
        tick: Duration,
    ) -> Result<Self, CliError> {
        server
            .with_store(|s| Nodes::create(s, nodes.max(1) as usize))
            .map_err(|e| CliError::Other(format!("creating {nodes} simulated nodes: {e}")))?;
        let mut controllers = Controllers::new(ControllerConfig {
            seed,
            // PodDisruptionBudget status, so `kubectl get pdb` shows allowed disruptions, and
            // the built-in controllers' Events, for `kubectl get events` / `describe pod`.
            pdb_status: true,
            events: true,
            // Every namespace's `default` ServiceAccount, as kubectl users expect.
            service_accounts: true,
            ..ControllerConfig::default()
        });
        let models = LiveModels::new(seed);
        let exec_models = models.clone();
        server.set_exec_handler(Arc::new(move |r: &ExecRequest| model_exec(&exec_models, r)));
        let stepped = models.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(tick);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_gc = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = shutdown.wait() => return,
                }
                let started = tokio::time::Instant::now();
                // A pass when a write asked for one (at most once a second), and every few
                // seconds for the time-based parts (pods on nodes that vanished).
                let gc_due = last_gc.elapsed() >= GC_INTERVAL;
                let gc_ran = server.with_store(|s| {
                    let now = Objects::now(s);
                    stepped.step(s, now);
                    let run = gc_due && (s.gc_pending() || last_gc.elapsed() >= GC_IDLE_INTERVAL);
                    if run {
                        s.gc_until_settled();
                    }
                    run
                });
                if gc_ran {
                    last_gc = tokio::time::Instant::now();
                }
                tokio::time::sleep(rest_after(started.elapsed())).await;
                // One controller round per lock, resting in between in proportion to the
                // round's cost, so API clients (the operator, kubectl) are served while a
                // large world settles.
                let settle_started = tokio::time::Instant::now();
                for _ in 0..SETTLE_ROUNDS {
                    if settle_started.elapsed() >= SETTLE_BUDGET {
                        break;
                    }
                    let started = tokio::time::Instant::now();
                    let report = server.with_store(|s| {
                        let mut behaviour = ModelBehaviour {
                            models: &stepped,
                            default: DefaultBehaviour::default(),
                        };
                        controllers.step_with(s, &mut behaviour)
                    });
                    for line in report.lines() {
                        tracing::debug!(target: "tusk::world", "{line}");
                    }
                    if report.is_empty() {
                        break;
                    }
                    let rest = rest_after(started.elapsed());
                    if rest.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(rest).await;
                    }
                }
            }
        });
        Ok(Self { models, task })
    }
}

/// `pods/exec` in `tusk up`: psql in a database pod's `database` container runs against the
/// PostgreSQL model (what `tusk run` does on a real cluster reaches the same model: roles,
/// databases, passwords); anything else is refused with exit code 126 and a message. Each
/// line of stdin and each `-c`/`--command` is one statement, as tusk writes them.
pub fn model_exec(models: &LiveModels, r: &ExecRequest) -> ExecOutput {
    let refuse = |why: String| ExecOutput {
        stderr: format!("{why}\n").into_bytes(),
        exit_code: 126,
        ..Default::default()
    };
    let program = match r.command.first().map(String::as_str) {
        Some(p @ ("psql" | "pgbackrest")) => p,
        _ => {
            return refuse(format!(
                "tusk up simulates pods: {:?} cannot run in {}/{}; only psql and `pgbackrest info` in a database pod's `{}` container do, against the PostgreSQL and pgBackRest models",
                r.command,
                r.namespace,
                r.pod,
                crate::executor::DATABASE_CONTAINER
            ));
        }
    };
    if !r.container.is_empty() && r.container != crate::executor::DATABASE_CONTAINER {
        return refuse(format!(
            "container {:?} of {}/{} runs no {program} in tusk up; use -c {}",
            r.container,
            r.namespace,
            r.pod,
            crate::executor::DATABASE_CONTAINER
        ));
    }
    if program == "pgbackrest" {
        return model_pgbackrest(models, r);
    }
    let mut statements: Vec<String> = String::from_utf8_lossy(&r.stdin)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut args = r.command.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "-c" || a == "--command" {
            statements.extend(args.next().cloned());
        } else if let Some(c) = a.strip_prefix("--command=") {
            statements.push(c.to_string());
        }
    }
    if statements.is_empty() {
        // `kubectl exec -it POD -- psql`: there is no session to type into.
        return ExecOutput {
            stderr: format!(
                "tusk up simulates PostgreSQL: psql has no interactive session here; give statements with -c or on stdin, e.g. kubectl exec -n {} {} -c {} -- psql -c '\\du'\n",
                r.namespace,
                r.pod,
                crate::executor::DATABASE_CONTAINER
            )
            .into_bytes(),
            exit_code: 2,
            ..Default::default()
        };
    }
    let (meta, sql): (Vec<String>, Vec<String>) =
        statements.into_iter().partition(|s| s.starts_with('\\'));
    let mut out = ExecOutput::default();
    if !sql.is_empty() {
        if let Err(e) = models.sql(&r.namespace, &r.pod, &sql) {
            // psql's exit code when ON_ERROR_STOP stops a script.
            out.stderr = format!("ERROR:  {e}\n").into_bytes();
            out.exit_code = 3;
            return out;
        }
        if let Some(other) = sql.iter().find(|s| !modelled(s)) {
            out.stderr.extend_from_slice(
                format!(
                    "NOTICE:  tusk up simulates PostgreSQL: it keeps roles, databases and passwords only, so {other:?} returned nothing (\\du lists its roles)\n"
                )
                .as_bytes(),
            );
        }
    }
    for m in meta {
        let listing = match m.split_whitespace().next().unwrap_or("") {
            "\\du" | "\\dg" => models
                .roles(&r.namespace, &r.pod)
                .map(|roles| psql_table("List of roles", "Role name", &roles)),
            _ => Err(format!("tusk up's psql answers \\du only, not {m:?}")),
        };
        match listing {
            Ok(text) => out.stdout.extend_from_slice(text.as_bytes()),
            Err(e) => {
                out.stderr
                    .extend_from_slice(format!("ERROR:  {e}\n").as_bytes());
                out.exit_code = 3;
                return out;
            }
        }
    }
    out
}

/// Whether the PostgreSQL model keeps what a statement does (anything else it accepts and
/// forgets): roles, passwords and databases, and the statements tusk itself sends.
fn modelled(statement: &str) -> bool {
    let lower = statement.trim_start().to_ascii_lowercase();
    [
        "create role",
        "create user",
        "alter role",
        "alter user",
        "create database",
        "do $$",
        "grant ",
        "create schema",
        "create or replace function",
        "revoke ",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || lower.trim_end().ends_with("\\gexec")
}

/// A one-column listing as psql prints it (`\du`), with the model's names.
fn psql_table(title: &str, column: &str, names: &[String]) -> String {
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .chain([column.chars().count()])
        .max()
        .unwrap_or(0);
    let mut s = format!("{title:^w$}\n", w = width + 2);
    s.push_str(&format!(" {column:<width$} \n"));
    s.push_str(&format!("{}\n", "-".repeat(width + 2)));
    for n in names {
        s.push_str(&format!(" {n:<width$} \n"));
    }
    let rows = names.len();
    s.push_str(&format!(
        "({rows} row{})\n\n",
        if rows == 1 { "" } else { "s" }
    ));
    s
}

/// `pgbackrest info --output=json` (the only pgBackRest command tusk up answers; the
/// container was checked by [`model_exec`]): the backups the pgBackRest model holds for the
/// pod's cluster.
fn model_pgbackrest(models: &LiveModels, r: &ExecRequest) -> ExecOutput {
    let fail = |code: i32, why: String| ExecOutput {
        stderr: format!("{why}\n").into_bytes(),
        exit_code: code,
        ..Default::default()
    };
    let args: Vec<&str> = r.command.iter().skip(1).map(String::as_str).collect();
    if args.first() != Some(&"info") || !args.contains(&"--output=json") {
        return fail(
            126,
            format!(
                "tusk up simulates pgBackRest: only `pgbackrest info --output=json` runs in pods, not {:?}",
                r.command
            ),
        );
    }
    match models.pgbackrest_info(&r.namespace, &r.pod) {
        Ok(text) => ExecOutput {
            stdout: format!("{text}\n").into_bytes(),
            ..Default::default()
        },
        // pgBackRest's exit code for a stanza or host it cannot reach.
        Err(e) => fail(56, format!("ERROR: [056]: {e}")),
    }
}

/// `tusk up` runs the operator's SQL on the PostgreSQL model (it has no SQL engine beyond
/// roles, databases and passwords) and hands switchovers to the Patroni model, through the
/// same failover key in the DCS that Patroni's REST API writes.
pub struct ModelOps {
    pub models: LiveModels,
    pub server: ApiServer,
}

impl DatabaseOps for ModelOps {
    fn sql<'a>(
        &'a self,
        pod: &'a ObjectRef,
        _database: &'a str,
        statements: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let ns = pod.namespace.as_deref().unwrap_or("default");
            self.models.sql(ns, &pod.name, statements)
        })
    }

    fn switchover<'a>(
        &'a self,
        leader: &'a ObjectRef,
        _leader_address: Option<&'a str>,
        candidate: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let ns = leader.namespace.as_deref().unwrap_or("default");
            self.server.with_store(|s| {
                let pod = Objects::get(s, "v1", "Pod", Some(ns), &leader.name)
                    .ok_or_else(|| format!("pod {ns}/{} is gone", leader.name))?;
                let cluster = pod["metadata"]["labels"][tusk_core::labels::CLUSTER]
                    .as_str()
                    .ok_or_else(|| format!("pod {ns}/{} has no cluster label", leader.name))?
                    .to_string();
                self.models
                    .switchover(s, ns, &cluster, &leader.name, candidate)
            })
        })
    }

    fn read_output<'a>(
        &'a self,
        pod: &'a ObjectRef,
        container: &'a str,
        command: &'a [String],
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let request = ExecRequest {
                namespace: pod.namespace.clone().unwrap_or_else(|| "default".into()),
                pod: pod.name.clone(),
                container: container.to_string(),
                command: command.to_vec(),
                stdin: Vec::new(),
                tty: false,
            };
            let out = model_exec(&self.models, &request);
            if out.exit_code == 0 {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
        })
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

/// What `tusk up` prints once the API serves: where it is, the kubeconfig, and commands a user
/// can paste as they are (the role label value is the one the Patroni model sets).
pub fn banner(url: &str, nodes: u32, kubeconfig: &Path, no_operator: bool) -> String {
    use std::fmt::Write;
    let k = kubeconfig.display();
    let role = tusk_scenarios::labels::ROLE;
    let primary = tusk_scenarios::labels::ROLE_PRIMARY;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "tusk up: Kubernetes API at {url} with {nodes} simulated nodes"
    );
    let _ = writeln!(s, "kubeconfig: {k}");
    if no_operator {
        let _ = writeln!(s, "operator: not started (--no-operator); run it with:");
        let _ = writeln!(
            s,
            "  tusk run --kubeconfig {k} --all-namespaces --http-address 127.0.0.1:0"
        );
    } else {
        let _ = writeln!(s, "operator: running (all namespaces)");
    }
    let _ = writeln!(
        s,
        "Everything lives in memory: stopping tusk up forgets every object."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "Try (from the repository's root):");
    let _ = writeln!(s, "  export KUBECONFIG={k}");
    let _ = writeln!(s, "  kubectl apply -f deploy/cr.yaml");
    let _ = writeln!(s, "  kubectl get pg -w");
    let _ = writeln!(s, "  kubectl get pods -L {role}");
    let _ = writeln!(
        s,
        "  kubectl delete pod -l {role}={primary}   # watch Patroni fail over"
    );
    let _ = writeln!(
        s,
        "  kubectl exec $(kubectl get pod -l {role}={primary} -o name) -c database -- psql -c '\\du'"
    );
    let _ = writeln!(s, "Press Ctrl-C to stop.");
    s
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
    let database = Arc::new(ModelOps {
        models: world.models.clone(),
        server: embedded.server.clone(),
    });

    print!(
        "{}",
        banner(&embedded.url, args.nodes, &kubeconfig, args.no_operator)
    );

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
        run_with_client(&run_args, client, database, shutdown.clone()).await
    };
    shutdown.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), world.task).await;
    embedded.server.with_store(|s| s.drop_watches());
    embedded.stop().await;
    println!("tusk up: stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &[&str], container: &str, stdin: &str) -> ExecRequest {
        ExecRequest {
            namespace: "pg".into(),
            pod: "c1-instance1-abcd-0".into(),
            container: container.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            stdin: stdin.as_bytes().to_vec(),
            tty: false,
        }
    }

    #[test]
    fn exec_in_tusk_up_runs_only_psql_and_reaches_the_model() {
        let models = LiveModels::new(1);
        let out = model_exec(&models, &request(&["sh", "-c", "id"], "", ""));
        assert_eq!(out.exit_code, 126);
        assert!(String::from_utf8_lossy(&out.stderr).contains("only psql"));
        let out = model_exec(&models, &request(&["psql"], "pgbackrest", "SELECT 1;"));
        assert_eq!(out.exit_code, 126);
        // psql reaches the model, which knows no PostgreSQL in this namespace yet.
        let out = model_exec(
            &models,
            &request(
                &["psql", "--dbname", "postgres", "--file=-"],
                "database",
                "SELECT 1;\n",
            ),
        );
        assert_eq!(out.exit_code, 3);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no postgres runs in namespace pg"),
            "{out:?}"
        );
    }

    #[test]
    fn psql_in_tusk_up_explains_what_it_cannot_do() {
        let models = LiveModels::new(1);
        // `kubectl exec -it POD -- psql`: no statements; one line saying how, no hang.
        let mut r = request(&["psql"], "database", "");
        r.tty = true;
        let out = model_exec(&models, &r);
        assert_eq!(out.exit_code, 2);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("no interactive session") && text.contains("psql -c"),
            "{text}"
        );
        // Meta-commands other than \du are refused by name.
        let out = model_exec(&models, &request(&["psql", "-c", "\\dt"], "database", ""));
        assert_eq!(out.exit_code, 3, "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("\\dt"),
            "{out:?}"
        );
    }

    #[test]
    fn psql_statements_tusk_sends_are_modelled_and_queries_are_not() {
        for s in [
            "CREATE ROLE app",
            "alter role \"app\" WITH LOGIN PASSWORD 'x'",
            "DO $$BEGIN CREATE ROLE app; END$$;",
            "SELECT pg_catalog.format('CREATE DATABASE %I', 'db') WHERE true\\gexec",
            "GRANT ALL PRIVILEGES ON DATABASE \"db\" TO \"app\";",
        ] {
            assert!(modelled(s), "{s}");
        }
        for s in ["select 1", "SELECT version();", "CREATE TABLE t (a int)"] {
            assert!(!modelled(s), "{s}");
        }
        assert_eq!(
            psql_table(
                "List of roles",
                "Role name",
                &["app".into(), "postgres".into()]
            ),
            "List of roles\n Role name \n-----------\n app       \n postgres  \n(2 rows)\n\n"
        );
    }

    #[test]
    fn exec_in_tusk_up_answers_pgbackrest_info_only() {
        let models = LiveModels::new(1);
        let out = model_exec(
            &models,
            &request(&["pgbackrest", "backup", "--stanza=db"], "database", ""),
        );
        assert_eq!(out.exit_code, 126);
        assert!(String::from_utf8_lossy(&out.stderr).contains("only `pgbackrest info"));
        let info = ["pgbackrest", "info", "--stanza=db", "--output=json"];
        let out = model_exec(&models, &request(&info, "pgbouncer", ""));
        assert_eq!(out.exit_code, 126);
        // It reaches the model, which runs no PostgreSQL in this pod.
        let out = model_exec(&models, &request(&info, "database", ""));
        assert_eq!(out.exit_code, 56, "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("runs no PostgreSQL"),
            "{out:?}"
        );
    }

    #[test]
    fn the_banner_names_the_label_value_the_model_sets() {
        let text = banner("http://127.0.0.1:6443", 3, Path::new("/tmp/kc"), false);
        assert!(text.contains("\nkubeconfig: /tmp/kc\n"), "{text}");
        // Paste-able: the primary is selected by the value Patroni's model writes, not a
        // placeholder.
        let selector = format!(
            "-l {}={}",
            tusk_scenarios::labels::ROLE,
            tusk_scenarios::labels::ROLE_PRIMARY
        );
        assert!(
            text.contains(&format!("kubectl delete pod {selector}")),
            "{text}"
        );
        assert!(!text.contains('<'), "no placeholders: {text}");
        assert!(text.contains("in memory"), "{text}");
    }

    #[test]
    fn the_world_leaves_most_of_the_time_to_api_requests() {
        assert_eq!(rest_after(Duration::ZERO), Duration::ZERO);
        let busy = Duration::from_millis(400);
        let rest = rest_after(busy);
        let share = busy.as_secs_f64() / (busy + rest).as_secs_f64();
        assert!((share - WORLD_SHARE).abs() < 1e-9, "world share {share}");
    }
}
