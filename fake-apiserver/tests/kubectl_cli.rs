//! The real kubectl (1.32) against the fake API server over HTTP on 127.0.0.1.
//! Skipped, with a message, when kubectl is not installed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tusk_fake_apiserver::{ApiServer, Config, ServeHandle, SystemClock};

/// Serves `server` on a free loopback port and gives a kubectl pointed at it, with its own
/// kubeconfig and discovery cache under a temp directory named after `tag` (returned, for
/// the test to remove).
async fn serve_for_kubectl(server: &ApiServer, tag: &str) -> (ServeHandle, Kubectl, PathBuf) {
    let handle = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, handle.kubeconfig()).unwrap();
    let k = Kubectl {
        kubeconfig,
        cache: dir.join("cache"),
    };
    (handle, k, dir)
}

struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache)
            .env("HOME", self.cache.parent().unwrap())
            .args(args);
        c
    }

    /// Run and return stdout; panics with stderr when it fails.
    /// Runs `watch_args` (a `get --watch`), then `trigger`, and collects the watch's lines
    /// until one satisfies `done` (or 10 s pass); the watch is then stopped.
    fn watch_until(
        &self,
        watch_args: &[&str],
        trigger: &[&str],
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut watch = self
            .cmd(watch_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = watch.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        self.ok(trigger, None);
        let mut seen = vec![];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                let finished = done(&l);
                seen.push(l);
                if finished {
                    break;
                }
            }
        }
        let _ = watch.kill();
        let _ = watch.wait();
        seen
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (code, out, err) = self.run(args, stdin);
        assert!(code, "kubectl {args:?} failed:\n{err}\n{out}");
        out
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn kubectl");
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn percona() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/percona")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_lifecycle() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl not found on PATH");
        return;
    }
    let percona = if percona().exists() {
        percona()
    } else {
        PathBuf::from("/work/shared/percona")
    };
    if !percona.exists() {
        eprintln!(
            "SKIPPED: upstream Percona manifests not found at {}",
            percona.display()
        );
        return;
    }
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    let (handle, k, dir) = serve_for_kubectl(&server, "tusk-kubectl").await;
    let srv = server.clone();
    let percona2 = percona.clone();
    tokio::task::spawn_blocking(move || scenario(&k, &srv, &percona2))
        .await
        .unwrap();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn scenario(k: &Kubectl, server: &ApiServer, percona: &Path) {
    // CRDs (server-side: the cluster CRD is too big for the last-applied annotation upstream).
    let crd_dir = percona.join("crd");
    let out = k.ok(
        &["apply", "--server-side", "-f", crd_dir.to_str().unwrap()],
        None,
    );
    assert!(
        out.contains("perconapgclusters.pgv2.percona.com serverside-applied"),
        "{out}"
    );
    let out = k.ok(&["get", "crd"], None);
    assert!(out.contains("perconapgbackups.pgv2.percona.com"), "{out}");

    // The example cluster, with default validation.
    let cr = percona.join("cr.yaml");
    let out = k.ok(&["apply", "-f", cr.to_str().unwrap()], None);
    assert!(
        out.contains("perconapgcluster.pgv2.percona.com/cluster1 created"),
        "{out}"
    );
    let out = k.ok(&["apply", "-f", cr.to_str().unwrap()], None);
    assert!(
        out.contains("unchanged"),
        "second apply should be a no-op: {out}"
    );
    let out = k.ok(&["get", "pg"], None);
    assert!(
        out.contains("ENDPOINT") && out.contains("cluster1"),
        "printer columns: {out}"
    );
    k.ok(&["label", "pg", "cluster1", "team=db"], None);
    let out = k.ok(&["get", "pg", "-l", "team=db", "-o", "name"], None);
    assert_eq!(out.trim(), "perconapgcluster.pgv2.percona.com/cluster1");
    k.ok(
        &[
            "patch",
            "pg",
            "cluster1",
            "--type=merge",
            "-p",
            r#"{"spec":{"pause":true}}"#,
        ],
        None,
    );
    let out = k.ok(
        &[
            "get",
            "pg",
            "cluster1",
            "-o",
            "jsonpath={.spec.pause} {.metadata.generation}",
        ],
        None,
    );
    assert_eq!(out.trim(), "true 2");
    // Strategic merge on a custom resource is refused, as upstream.
    let (ok, _, err) = k.run(
        &[
            "patch",
            "pg",
            "cluster1",
            "-p",
            r#"{"spec":{"pause":false}}"#,
        ],
        None,
    );
    assert!(
        !ok && err.contains("UnsupportedMediaType")
            || err.contains("unknown format")
            || err.contains("415"),
        "{err}"
    );

    // A StatefulSet: create, scale, strategic patch.
    let sts = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        env: [{name: A, value: "1"}]
"#;
    k.ok(&["apply", "-f", "-"], Some(sts));
    k.ok(&["scale", "statefulset", "web", "--replicas=3"], None);
    let out = k.ok(
        &["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"],
        None,
    );
    assert_eq!(out.trim(), "3");
    k.ok(&["patch", "sts", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"B","value":"2"}]}]}}}}"#], None);
    let out = k.ok(
        &[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].env[*].name}",
        ],
        None,
    );
    assert_eq!(
        out.trim(),
        "A B",
        "strategic merge by name keeps A and adds B"
    );
    let sts2 = sts.replace("value: \"1\"", "value: \"9\"");
    let out = k.ok(&["apply", "-f", "-"], Some(&sts2));
    assert!(out.contains("configured"), "{out}");

    // get --watch sees a change.
    let seen = k.watch_until(
        &[
            "get",
            "configmaps",
            "--watch",
            "--output-watch-events",
            "-o",
            "name",
        ],
        &["create", "configmap", "watched", "--from-literal=a=b"],
        |l| l.contains("configmap/watched"),
    );
    assert!(
        seen.iter().any(|l| l.contains("configmap/watched")),
        "{seen:?}"
    );

    // get --watch in the default table form: the watched change is printed with the same
    // columns as the list (NAME DATA AGE), not as a bare NAME AGE fallback.
    let seen = k.watch_until(
        &["get", "configmaps", "--watch"],
        &[
            "create",
            "configmap",
            "tabled",
            "--from-literal=a=b",
            "--from-literal=c=d",
        ],
        |l| l.starts_with("tabled "),
    );
    let row = seen.iter().find(|l| l.starts_with("tabled ")).cloned();
    let cells: Vec<String> = row
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(cells.len(), 3, "NAME DATA AGE expected: {seen:?}");
    assert_eq!(cells[1], "2", "the DATA column counts two keys: {seen:?}");
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("NAME")).count(),
        1,
        "one header, not one per event: {seen:?}"
    );
    k.ok(&["delete", "configmap", "tabled"], None);

    // Delete without finalizers.
    let out = k.ok(&["delete", "configmap", "watched"], None);
    assert!(out.contains("deleted"), "{out}");
    // Delete with a finalizer: stays until it is removed, then wait --for=delete returns.
    k.ok(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n"));
    k.ok(&["delete", "configmap", "held", "--wait=false"], None);
    let out = k.ok(
        &[
            "get",
            "configmap",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
        None,
    );
    assert!(!out.trim().is_empty(), "deletionTimestamp must be set");
    let (ok, _, _) = k.run(
        &["wait", "--for=delete", "configmap/held", "--timeout=1s"],
        None,
    );
    assert!(
        !ok,
        "wait must time out while the finalizer holds the object"
    );
    let waiter = k
        .cmd(&["wait", "--for=delete", "configmap/held", "--timeout=20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    k.ok(
        &[
            "patch",
            "configmap",
            "held",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
        None,
    );
    let out = waiter.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "wait --for=delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Deleting the cluster CR, then the CRD, removes the resources from discovery.
    k.ok(&["delete", "pg", "cluster1"], None);
    k.ok(
        &["delete", "crd", "perconapgclusters.pgv2.percona.com"],
        None,
    );
    let (ok, _, _) = k.run(&["get", "crd", "perconapgclusters.pgv2.percona.com"], None);
    assert!(!ok);
    assert!(server.lock().write_count() > 10);
}

/// kubectl's `--validate` modes map to `fieldValidation`: strict (the default) fails with the
/// server's message, warn prints the server's warnings, ignore says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_field_validation() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl not found on PATH");
        return;
    }
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    let (handle, k, dir) = serve_for_kubectl(&server, "tusk-kubectl-fv").await;
    tokio::task::spawn_blocking(move || {
        let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv"},"data":{"a":"b"},"foo":1}"#;
        let (ok, out, err) = k.run(&["apply", "-f", "-"], Some(cm));
        assert!(!ok, "strict apply must fail: {out}");
        assert!(
            err.contains(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "foo""#),
            "{err}"
        );
        let (ok, out, err) = k.run(&["apply", "--server-side", "-f", "-"], Some(cm));
        assert!(!ok, "strict server-side apply must fail: {out}");
        assert!(err.contains(r#"strict decoding error: unknown field "foo""#), "{err}");
        let (ok, out, err) = k.run(&["apply", "--validate=warn", "-f", "-"], Some(cm));
        assert!(ok, "{err}");
        assert!(out.contains("configmap/fv created"), "{out}");
        assert!(err.contains(r#"Warning: unknown field "foo""#), "{err}");
        let (ok, _, err) = k.run(&["apply", "--validate=false", "--server-side", "-f", "-"], Some(cm));
        assert!(ok, "{err}");
        assert!(!err.contains("Warning"), "ignore is silent: {err}");
    })
    .await
    .unwrap();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// What a user sees for two day-one mistakes: `kubectl apply` of a PerconaPGCluster with a
/// wrong type and a missing required field is refused with upstream's one-line 422 naming
/// both fields (nothing stored), and `kubectl port-forward` to a simulated pod says it is not
/// supported instead of `the server could not find the requested resource`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_invalid_custom_object_and_port_forward() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl not found on PATH");
        return;
    }
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    let (handle, k, dir) = serve_for_kubectl(&server, "tusk-kubectl-invalid").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    tokio::task::spawn_blocking(move || {
        let crd = root.join("deploy/crd.yaml");
        k.ok(&["apply", "--server-side", "-f", &crd.to_string_lossy()], None);
        let cr = std::fs::read_to_string(root.join("deploy/cr.yaml")).unwrap();
        assert!(cr.contains("    replicas: 3\n"), "cr.yaml changed: {cr}");
        let bad = cr
            .replacen("name: cluster1", "name: bad", 1)
            .replacen("    replicas: 3\n", "    replicas: three\n", 1)
            .replacen("    dataVolumeClaimSpec:", "    dataVolumeClaimSpex:", 1);
        let (ok, out, err) = k.run(&["apply", "--validate=false", "-f", "-"], Some(&bad));
        assert!(!ok, "an invalid cluster must be refused: {out}");
        assert_eq!(
            err.trim(),
            "The PerconaPGCluster \"bad\" is invalid: \n\
             * spec.instances[0].replicas: Invalid value: \"string\": spec.instances[0].replicas in body must be of type integer: \"three\"\n\
             * spec.instances[0].dataVolumeClaimSpec: Required value"
        );
        let (ok, _, err) = k.run(&["get", "pg", "bad"], None);
        assert!(!ok && err.contains("not found"), "nothing stored: {err}");

        k.ok(&["run", "p", "--image=postgres", "--restart=Never"], None);
        // kubectl forwards only to a running pod (no kubelet runs here).
        k.ok(
            &["patch", "pod", "p", "--subresource=status", "--type=merge",
              "-p", r#"{"status":{"phase":"Running"}}"#],
            None,
        );
        let mut pf = k
            .cmd(&["port-forward", "pod/p", "15432:5432"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut pf.stderr.take().unwrap(), &mut err).unwrap();
        let status = pf.wait().unwrap();
        assert!(!status.success());
        assert!(
            err.contains("port-forward to default/p is not supported"),
            "{err}"
        );
        let (ok, _, err) = k.run(&["attach", "p"], None);
        assert!(!ok);
        assert!(err.contains("attach to default/p is not supported"), "{err}");
    })
    .await
    .unwrap();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `kubectl exec -it` (a terminal, from `script`): the handler runs at once instead of waiting
/// for stdin to close, kubectl shows its output and the exit code, and the session ends with a
/// clean close: unread keystrokes at the server's close used to reset the connection, and
/// kubectl then lost the status ('connection reset by peer').
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_with_a_terminal() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl not found on PATH");
        return;
    }
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: script (util-linux) not found: no terminal for kubectl exec -it");
        return;
    }
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    server.set_exec_handler(Arc::new(|r: &tusk_fake_apiserver::exec::ExecRequest| {
        tusk_fake_apiserver::exec::ExecOutput {
            stderr: format!("no {} here (tty {})\n", r.command[0], r.tty).into_bytes(),
            exit_code: 2,
            ..Default::default()
        }
    }));
    let (handle, k, dir) = serve_for_kubectl(&server, "tusk-kubectl-tty").await;
    tokio::task::spawn_blocking(move || {
        k.ok(&["run", "p", "--image=postgres", "--restart=Never"], None);
        k.ok(
            &[
                "patch",
                "pod",
                "p",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Running"}}"#,
            ],
            None,
        );
        let kubeconfig = k.kubeconfig.to_string_lossy().into_owned();
        let out = Command::new("timeout")
            .args(["20", "script", "-qec"])
            .arg(format!(
                "kubectl --kubeconfig {kubeconfig} exec -it p -- bash"
            ))
            .arg("/dev/null")
            .env("KUBECACHEDIR", &k.cache)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_ne!(
            out.status.code(),
            Some(124),
            "kubectl exec -it hung: {text}"
        );
        assert!(text.contains("no bash here (tty true)\r\n"), "{text:?}");
        assert!(
            text.contains("command terminated with exit code 2"),
            "{text:?}"
        );
        assert!(!text.contains("reset by peer"), "{text:?}");
        assert!(!text.contains("Unknown stream id"), "{text:?}");
        assert_eq!(out.status.code(), Some(2), "{text:?}");
    })
    .await
    .unwrap();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `kubectl explain` of a custom kind shows what a real server publishes for it: the CRD's
/// fields plus `apiVersion`, `kind` and `metadata`, and ObjectMeta's fields under `metadata`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_custom_kinds() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl not found on PATH");
        return;
    }
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    let (handle, k, dir) = serve_for_kubectl(&server, "tusk-kubectl-explain").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    tokio::task::spawn_blocking(move || {
        let crd = root.join("deploy/crd.yaml");
        k.ok(
            &["apply", "--server-side", "-f", &crd.to_string_lossy()],
            None,
        );
        // Refreshes kubectl's discovery cache, written before the CRD existed.
        k.ok(&["get", "pg"], None);
        let top = k.ok(&["explain", "pg"], None);
        for field in [
            "apiVersion\t<string>",
            "kind\t<string>",
            "metadata\t<ObjectMeta>",
            "spec\t<Object> -required-",
            "status\t<Object>",
        ] {
            assert!(top.contains(field), "{field:?} missing:\n{top}");
        }
        let labels = k.ok(&["explain", "pg.metadata.labels"], None);
        assert!(
            labels.contains("FIELD: labels <map[string]string>"),
            "{labels}"
        );
        let instances = k.ok(&["explain", "pg.spec.instances"], None);
        assert!(instances.contains("dataVolumeClaimSpec"), "{instances}");
    })
    .await
    .unwrap();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// With `ControllerConfig::events` on (as in the standalone binary), `kubectl get events` and
/// `kubectl describe pod` show what the scheduler and kubelet did, and `kubectl logs` reads
/// the kubelet's view of the container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_events_describe_and_logs() {
    use tusk_fake_apiserver::controllers::{ControllerConfig, Controllers, Nodes};
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl not found on PATH");
        return;
    }
    let server = ApiServer::new(Config {
        clock: Arc::new(SystemClock),
        ..Config::default()
    });
    Nodes::create(&mut *server.lock(), 1).unwrap();
    let (handle, k, dir) = serve_for_kubectl(&server, "tusk-kubectl-ev").await;
    let srv = server.clone();
    tokio::task::spawn_blocking(move || {
        k.ok(&["run", "web", "--image=nginx:1.27"], None);
        let mut c = Controllers::new(ControllerConfig {
            events: true,
            ..ControllerConfig::default()
        });
        c.settle(&mut *srv.lock(), 50);
        let out = k.ok(&["get", "events"], None);
        assert!(
            out.contains("Scheduled") && out.contains("pod/web"),
            "{out}"
        );
        assert!(out.contains("Started container web"), "{out}");
        let out = k.ok(&["describe", "pod", "web"], None);
        assert!(
            out.contains("Successfully assigned default/web to node-1"),
            "{out}"
        );
        assert!(out.contains("Created container: web"), "{out}");
        let out = k.ok(&["logs", "web"], None);
        assert_eq!(out, "container web started (image nginx:1.27, restart 0)\n");
        let (ok, _, err) = k.run(&["logs", "web", "-c", "nope"], None);
        assert!(!ok);
        assert!(
            err.contains("container nope is not valid for pod web"),
            "{err}"
        );
    })
    .await
    .unwrap();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
