//! Command-line interface of `tusk`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tusk",
    version,
    about = "A Kubernetes operator for PostgreSQL that speaks the Percona PG v2 API",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format; `auto` means JSON in a cluster, human-readable otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "TUSK_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `tusk_operator=debug`.
    #[arg(long, global = true, default_value = "info", env = "LOG_LEVEL")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the PerconaPGCluster, PerconaPGBackup and PerconaPGRestore CRDs as multi-document YAML.
    Crds,
    /// Check a PerconaPGCluster manifest; exit 1 with one line per error.
    Validate(FileArgs),
    /// Print every object the operator creates for a PerconaPGCluster on a fresh cluster.
    Render(RenderArgs),
    /// Run the operator against the cluster from the in-cluster config or KUBECONFIG.
    Run(RunArgs),
    /// Start an embedded Kubernetes API with simulated nodes and PostgreSQL, and the operator.
    Up(UpArgs),
    /// Deterministic simulation: scripted scenarios and random exploration.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The manifest to read (`-` for standard input).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// Seed for the random parts (instance suffixes, passwords); same seed, same output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The render memo's default budget. 16 MiB keeps about 40 clusters' renders; with 1,000
/// clusters the operator then stays within the 256 MiB its Deployment allows (measured: 241 and
/// 245 MiB; 303 MiB with 64 MiB of memo), and clusters past it only pay a fresh render.
pub const DEFAULT_RENDER_CACHE_MIB: usize = 16;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Path to a kubeconfig; default: in-cluster config, then $KUBECONFIG, then ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespaces to watch (repeat or comma-separate). Without it, WATCH_NAMESPACE decides:
    /// unset = the operator's own namespace, empty = all namespaces, or a comma-separated list.
    #[arg(
        long = "namespace",
        short = 'n',
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub namespaces: Vec<String>,

    /// Watch every namespace (needs the cluster-wide RBAC of deploy/cw-rbac.yaml).
    #[arg(long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// Clusters reconciled in parallel (one reconcile per cluster at a time).
    #[arg(long, env = "PGO_WORKERS", default_value_t = 4)]
    pub workers: u16,

    /// Address of /healthz, /readyz and /metrics. Loopback unless set, even in a cluster.
    #[arg(long, env = "TUSK_HTTP_ADDRESS", default_value = "127.0.0.1:8080")]
    pub http_address: SocketAddr,

    /// Disable leader election (only safe with a single replica).
    #[arg(long, env = "TUSK_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,

    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(
        long,
        env = "PGO_CONTROLLER_LEASE_NAME",
        default_value = "tusk-operator-lock"
    )]
    pub lease_name: String,

    /// Namespace of the Lease (default: the operator's own namespace).
    #[arg(long, env = "PGO_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a leader holds the Lease without renewing, in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_secs: u64,

    /// How often the leader renews the Lease, in seconds.
    #[arg(long, default_value_t = 5)]
    pub lease_renew_secs: u64,

    /// Memory for remembered renders of unchanged clusters, in MiB (about 0.4 MiB per
    /// cluster). Clusters past it are rendered again when they change: slower, not wrong.
    #[arg(long, env = "TUSK_RENDER_CACHE_MIB", default_value_t = DEFAULT_RENDER_CACHE_MIB)]
    pub render_cache_mib: usize,
}

impl Default for RunArgs {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            namespaces: Vec::new(),
            all_namespaces: false,
            workers: 4,
            http_address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            no_leader_election: false,
            lease_name: "tusk-operator-lock".into(),
            lease_namespace: None,
            lease_duration_secs: 15,
            lease_renew_secs: 5,
            render_cache_mib: DEFAULT_RENDER_CACHE_MIB,
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Port of the embedded API server on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub port: u16,

    /// Where to write the kubeconfig for kubectl.
    #[arg(long, value_name = "FILE", default_value = "tusk-up.kubeconfig")]
    pub kubeconfig: PathBuf,

    /// Number of simulated nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,

    /// Serve the API and the simulated world only; run `tusk run` yourself against it.
    #[arg(long)]
    pub no_operator: bool,

    /// Clusters reconciled in parallel by the embedded operator.
    #[arg(long, default_value_t = 4)]
    pub workers: u16,

    /// Address of the embedded operator's /healthz, /readyz and /metrics (port 0: any free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http_address: SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run one scenario file and print its timeline; exit 1 when an expectation or invariant
    /// fails, 2 when the file cannot be read or is not a valid scenario (nothing runs then).
    Run {
        /// The scenario YAML file.
        file: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run many random seeds with faults and report failures with the command that replays them.
    Explore {
        /// How many seeds to run.
        #[arg(long)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Comma-separated fault classes to enable (default: all).
        #[arg(long, value_delimiter = ',')]
        faults: Vec<String>,
        /// Seeds run at once (default: one per core). The output does not depend on it.
        #[arg(long)]
        threads: Option<usize>,
    },
}
