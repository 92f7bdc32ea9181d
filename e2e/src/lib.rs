//! tusk-e2e: drive a live Kubernetes API endpoint only from the outside, with kubectl and a kube
//! client.
//!
//! Endpoints, in order of preference:
//! - `TUSK_E2E_KUBECONFIG=/path` — a real cluster. The tests install `deploy/bundle.yaml`
//!   (the image `tusk:0.1.0` must be available to the cluster: `docker build -t tusk:0.1.0 .`).
//! - otherwise `tusk up` started as a subprocess on a free port. The binary is looked up as
//!   `$TUSK_BIN`, then `<target>/debug/tusk` and `<target>/release/tusk` where `<target>` is
//!   `$CARGO_TARGET_DIR` or `<workspace>/target`; when none exists it is built with
//!   `cargo build -p tusk-operator` (Cargo gives `CARGO_BIN_EXE_*` only to the package that owns
//!   the binary, so this crate has to find it itself).
//! - k3s in a container through testcontainers ([`Endpoint::start_k3s`]): used by
//!   `tests/k3s.rs` whenever a Docker engine answers, and by every test with `TUSK_E2E_K3S=1`.
//!   The operator runs out of cluster (`tusk run --kubeconfig`, all namespaces), so no image
//!   has to be loaded into k3s; the database pods pull Percona's images. Without a Docker engine
//!   these tests print why and skip.
//!
//! Tests print `SKIP: <reason>` and pass when kubectl is absent.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn deploy(file: &str) -> PathBuf {
    workspace_root().join("deploy").join(file)
}

/// Why a test did not run.
#[derive(Debug)]
pub struct Skip(pub String);

/// Returns from the test with a printed reason when the environment cannot run it.
#[macro_export]
macro_rules! require {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err($crate::Skip(reason)) => {
                eprintln!("SKIP: {reason}");
                return;
            }
        }
    };
}

pub fn kubectl_available() -> Result<(), Skip> {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(Skip(
            "kubectl is not installed; install kubectl 1.30+ to run the e2e tests".into(),
        )),
    }
}

fn find_tusk() -> Result<PathBuf, Skip> {
    if let Ok(p) = std::env::var("TUSK_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("tusk");
        if p.exists() {
            return Ok(p);
        }
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "-p", "tusk-operator"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| Skip(format!("cannot run cargo to build tusk: {e}")))?;
    let p = target.join("debug").join("tusk");
    if status.success() && p.exists() {
        Ok(p)
    } else {
        Err(Skip(
            "cargo build -p tusk-operator failed; build tusk first or set TUSK_BIN".into(),
        ))
    }
}

/// A live endpoint and how to reach it.
pub struct Endpoint {
    pub kubeconfig: PathBuf,
    pub embedded: bool,
    child: Option<Child>,
    // Dropped after `child` (fields drop in order): the operator stops before its API does.
    _k3s: Option<k3s::Running>,
    _dir: Option<TempDir>,
}

/// Whether a Docker engine answers: `DOCKER_HOST`, or the default socket, and `docker info`.
pub fn docker_available() -> Result<(), Skip> {
    let socket = Path::new("/var/run/docker.sock");
    if std::env::var_os("DOCKER_HOST").is_none() && !socket.exists() {
        return Err(Skip(
            "no Docker engine (no DOCKER_HOST, no /var/run/docker.sock): the k3s tests need one"
                .into(),
        ));
    }
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Skip(format!(
            "the Docker engine does not answer: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        // Without the CLI, let testcontainers try the socket itself.
        Err(_) => Ok(()),
    }
}

mod k3s {
    use super::Skip;
    use std::path::Path;
    use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};
    use testcontainers_modules::testcontainers::runners::SyncRunner;
    use testcontainers_modules::testcontainers::{Container, ImageExt};

    /// A k3s server in a container; removed when dropped.
    pub struct Running {
        _container: Container<K3s>,
    }

    /// Starts k3s and writes a kubeconfig for it to `kubeconfig` (server on 127.0.0.1 and the
    /// port Docker mapped).
    pub fn start(conf_dir: &Path, kubeconfig: &Path) -> Result<Running, Skip> {
        let container = K3s::default()
            .with_conf_mount(conf_dir)
            .with_privileged(true)
            .with_userns_mode("host")
            .start()
            .map_err(|e| Skip(format!("k3s did not start in Docker: {e}")))?;
        let port = container
            .get_host_port_ipv4(KUBE_SECURE_PORT)
            .map_err(|e| Skip(format!("k3s exposes no API port: {e}")))?;
        let text = container
            .image()
            .read_kube_config()
            .map_err(|e| Skip(format!("reading k3s's kubeconfig: {e}")))?;
        std::fs::write(kubeconfig, super::point_at_port(&text, port))
            .map_err(|e| Skip(format!("writing {}: {e}", kubeconfig.display())))?;
        Ok(Running {
            _container: container,
        })
    }
}

/// k3s writes `server: https://127.0.0.1:6443`; from the host the API is on the mapped port.
pub fn point_at_port(kubeconfig: &str, port: u16) -> String {
    kubeconfig
        .lines()
        .map(|line| match line.trim_start().strip_prefix("server:") {
            Some(_) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}server: https://127.0.0.1:{port}")
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Endpoint {
    pub fn start() -> Result<Self, Skip> {
        kubectl_available()?;
        if std::env::var_os("TUSK_E2E_K3S").is_some() {
            return Self::start_k3s();
        }
        if let Ok(kc) = std::env::var("TUSK_E2E_KUBECONFIG") {
            let ep = Endpoint {
                kubeconfig: PathBuf::from(kc),
                embedded: false,
                child: None,
                _k3s: None,
                _dir: None,
            };
            ep.kubectl_ok(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                &deploy("bundle.yaml").to_string_lossy(),
            ]);
            return Ok(ep);
        }
        let tusk = find_tusk()?;
        let dir =
            std::env::temp_dir().join(format!("tusk-e2e-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(|e| Skip(format!("temp dir: {e}")))?;
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(&tusk)
            .args(["up", "--port", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Skip(format!("cannot start {}: {e}", tusk.display())))?;
        // `tusk up` prints the kubeconfig line once the API is serving.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("kubeconfig:") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("tusk up did not start within 60 s");
        }
        let ep = Endpoint {
            kubeconfig,
            embedded: true,
            child: Some(child),
            _k3s: None,
            _dir: Some(TempDir(dir)),
        };
        // Installing the bundle also works against the embedded API (server-side: the CRDs are
        // too large for client-side apply's last-applied annotation).
        ep.kubectl_ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &deploy("bundle.yaml").to_string_lossy(),
        ]);
        Ok(ep)
    }

    /// k3s in Docker with the CRDs installed and `tusk run` watching all namespaces from
    /// outside. Skips when kubectl or a Docker engine is missing, or k3s cannot start.
    pub fn start_k3s() -> Result<Self, Skip> {
        kubectl_available()?;
        docker_available()?;
        let tusk = find_tusk()?;
        let dir =
            std::env::temp_dir().join(format!("tusk-e2e-k3s-{}-{}", std::process::id(), unique()));
        let conf = dir.join("k3s");
        std::fs::create_dir_all(&conf).map_err(|e| Skip(format!("temp dir: {e}")))?;
        let kubeconfig = dir.join("kubeconfig");
        let cluster = k3s::start(&conf, &kubeconfig)?;
        let mut ep = Endpoint {
            kubeconfig,
            embedded: false,
            child: None,
            _k3s: Some(cluster),
            _dir: Some(TempDir(dir)),
        };
        ep.eventually("the k3s API answers", Duration::from_secs(120), |ep| {
            let out = ep.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
        });
        ep.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            &deploy("crd.yaml").to_string_lossy(),
        ]);
        let child = Command::new(&tusk)
            .args([
                "run",
                "--all-namespaces",
                "--http-address",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(&ep.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Skip(format!("cannot start {}: {e}", tusk.display())))?;
        ep.child = Some(child);
        Ok(ep)
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Run kubectl and return stdout; panics with kubectl's stderr on failure.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o jsonpath=...`, empty on error.
    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args: Vec<&str> = vec!["get"];
        args.extend_from_slice(what);
        let jp = format!("jsonpath={path}");
        args.extend_from_slice(&["-o", &jp]);
        let out = self.kubectl(&args);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        } else {
            String::new()
        }
    }

    /// Poll until `f` holds; panic with `what` and the last observation after `timeout`.
    pub fn eventually(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Self) -> Result<(), String>,
    ) {
        let start = Instant::now();
        loop {
            match f(self) {
                Ok(()) => return,
                Err(last) if start.elapsed() > timeout => {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(cfg).expect("client")
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM-like stop first would need libc; kill is fine for a test API.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_kubeconfig_points_at_the_mapped_port() {
        let written = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAA\n    server: https://127.0.0.1:6443\n  name: default\n";
        let fixed = point_at_port(written, 32771);
        assert!(
            fixed.contains("    server: https://127.0.0.1:32771\n"),
            "{fixed}"
        );
        assert!(!fixed.contains(":6443"));
        assert!(fixed.contains("certificate-authority-data: AAA"));
    }
}
