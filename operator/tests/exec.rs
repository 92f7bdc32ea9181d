//! SQL through `pods/exec`: tusk's psql runner against the fake API server's exec endpoint
//! over a real loopback socket (WebSocket upgrade, channel protocol, stdin close, status).

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tusk_core::ObjectRef;
use tusk_fake_apiserver::exec::{ExecOutput, ExecRequest};
use tusk_fake_apiserver::{ApiServer, Objects, ServeHandle};
use tusk_operator::executor::{DatabaseOps, PatroniRest, exec_psql, psql_command, sql_script};

async fn serve() -> (ApiServer, ServeHandle, kube::Client) {
    let server = ApiServer::new(Default::default());
    server
        .with_store(|s| {
            Objects::create(
                s,
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "c1-instance1-abcd-0", "namespace": "default"},
                       "spec": {"containers": [{"name": "database", "image": "postgres"}]}}),
            )
        })
        .expect("pod created");
    let handle = server
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("serve on loopback");
    let kubeconfig = Kubeconfig::from_yaml(&handle.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    (server, handle, client)
}

fn primary() -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: Some("default".into()),
        name: "c1-instance1-abcd-0".into(),
    }
}

/// A handler that records what it was asked and fails scripts containing `FAIL`.
fn recording(server: &ApiServer) -> Arc<Mutex<Vec<ExecRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    server.set_exec_handler(Arc::new(move |r: &ExecRequest| {
        log.lock().unwrap().push(r.clone());
        let script = String::from_utf8_lossy(&r.stdin);
        if script.contains("FAIL") {
            ExecOutput {
                stderr: b"ERROR:  syntax error at or near \"FAIL\"\n".to_vec(),
                exit_code: 3,
                ..Default::default()
            }
        } else {
            ExecOutput {
                stdout: b"DO\n".to_vec(),
                ..Default::default()
            }
        }
    }));
    seen
}

#[tokio::test]
async fn psql_runs_in_the_database_container_with_the_script_on_stdin() {
    let (server, handle, client) = serve().await;
    let seen = recording(&server);
    let statements = vec![
        "DO $$BEGIN CREATE ROLE app; END$$;".to_string(),
        "SELECT 'CREATE DATABASE app' WHERE NOT EXISTS (SELECT 1) \\gexec".to_string(),
    ];
    PatroniRest::with_client(client)
        .sql(&primary(), "postgres", &statements)
        .await
        .expect("psql exited 0");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one psql session");
    assert_eq!(seen[0].pod, "c1-instance1-abcd-0");
    assert_eq!(seen[0].container, "database");
    assert_eq!(seen[0].command, psql_command("postgres"));
    assert_eq!(
        String::from_utf8(seen[0].stdin.clone()).unwrap(),
        sql_script(&statements),
        "the whole script arrives on stdin"
    );
    assert!(
        !seen[0].command.iter().any(|a| a.contains("CREATE ROLE")),
        "no SQL on the command line"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_failing_script_is_an_error_with_psqls_message() {
    let (server, handle, client) = serve().await;
    recording(&server);
    let err = exec_psql(&client, &primary(), "postgres", "FAIL;\n")
        .await
        .unwrap_err();
    assert!(err.contains("syntax error"), "{err}");
    assert!(err.contains("c1-instance1-abcd-0"), "{err}");

    // A pod that does not exist: the error names it.
    let mut gone = primary();
    gone.name = "c1-instance1-zzzz-0".into();
    let err = exec_psql(&client, &gone, "postgres", "SELECT 1;\n")
        .await
        .unwrap_err();
    assert!(err.contains("c1-instance1-zzzz-0"), "{err}");

    // Without a client the runner refuses clearly instead of pretending.
    let err = PatroniRest::default()
        .sql(&primary(), "postgres", &["SELECT 1;".into()])
        .await
        .unwrap_err();
    assert!(err.contains("no Kubernetes client"), "{err}");
    handle.shutdown().await;
}

/// The info ConfigMap a plan asks for (metadata only; the driver fills the data).
fn info_request() -> tusk_core::Action {
    tusk_core::Action::RefreshBackupInfo {
        pod: primary(),
        container: "database".into(),
        command: tusk_core::backup::retention::info_command(),
        config_map: json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c1-pgbackrest-info", "namespace": "default",
                         "labels": {"postgres-operator.crunchydata.com/cluster": "c1"},
                         "annotations": {"pgv2.percona.com/pgbackrest-info-refreshed-at": "2026-12-07T12:00:00Z"}}}),
    }
}

fn executor(client: kube::Client) -> tusk_operator::executor::Executor {
    use kube::runtime::events::{Recorder, Reporter};
    tusk_operator::executor::Executor {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "tusk".into(),
                instance: None,
            },
        ),
        database: Arc::new(PatroniRest::with_client(client.clone())),
        client,
    }
}

#[tokio::test]
async fn pgbackrest_info_is_read_through_exec_and_stored_in_the_info_config_map() {
    let (server, handle, client) = serve().await;
    let info = r#"[{"name":"db","backup":[{"label":"20261207-120000F","type":"full","annotation":{"percona.com/backup-name":"b1"},"database":{"id":1,"repo-key":1},"timestamp":{"start":1,"stop":2}}]}]"#;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    server.set_exec_handler(Arc::new(move |r: &ExecRequest| {
        log.lock().unwrap().push(r.clone());
        ExecOutput {
            stdout: format!("{info}\n").into_bytes(),
            ..Default::default()
        }
    }));
    let plan = tusk_core::Plan {
        actions: vec![info_request()],
    };
    executor(client).execute(&plan).await.expect("info read");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].container, "database");
    assert_eq!(
        seen[0].command,
        ["pgbackrest", "info", "--stanza=db", "--output=json"]
    );
    assert!(seen[0].stdin.is_empty(), "nothing is sent on stdin");
    let cm = server
        .with_store(|s| Objects::get(s, "v1", "ConfigMap", Some("default"), "c1-pgbackrest-info"))
        .expect("the info ConfigMap exists");
    assert_eq!(cm["data"]["info.json"], info);
    assert_eq!(
        cm["metadata"]["annotations"]["pgv2.percona.com/pgbackrest-info-refreshed-at"],
        "2026-12-07T12:00:00Z"
    );
    let info = tusk_core::backup::retention::Info::parse(
        cm["data"]["info.json"].as_str().unwrap(),
        "c1-pgbackrest-info",
    )
    .expect("the core parses what was stored");
    assert_eq!(info.backups[0].backup_name.as_deref(), Some("b1"));
    handle.shutdown().await;
}

#[tokio::test]
async fn a_failed_or_garbled_pgbackrest_info_leaves_the_stored_info_alone() {
    let (server, handle, client) = serve().await;
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c1-pgbackrest-info", "namespace": "default"},
        "data": {"info.json": "[]"}});
    server
        .with_store(|s| Objects::create(s, good))
        .expect("existing info");
    let answer = Arc::new(Mutex::new(ExecOutput {
        stderr: b"ERROR: [104]: unable to find primary cluster\n".to_vec(),
        exit_code: 104,
        ..Default::default()
    }));
    let reply = answer.clone();
    server.set_exec_handler(Arc::new(move |_r: &ExecRequest| {
        reply.lock().unwrap().clone()
    }));
    let exec = executor(client);
    let plan = tusk_core::Plan {
        actions: vec![info_request()],
    };
    let err = exec.execute(&plan).await.unwrap_err().to_string();
    assert!(err.contains("unable to find primary cluster"), "{err}");
    assert!(err.contains("c1-instance1-abcd-0"), "{err}");
    // Exit 0 but not JSON (a warning banner, say): refused too.
    *answer.lock().unwrap() = ExecOutput {
        stdout: b"WARN: configuration file contains invalid option\n".to_vec(),
        ..Default::default()
    };
    let err = exec.execute(&plan).await.unwrap_err().to_string();
    assert!(err.contains("not print a JSON array"), "{err}");
    let cm = server
        .with_store(|s| Objects::get(s, "v1", "ConfigMap", Some("default"), "c1-pgbackrest-info"))
        .unwrap();
    assert_eq!(cm["data"]["info.json"], "[]", "the good info stays");
    assert!(cm["metadata"]["annotations"].is_null());
    handle.shutdown().await;
}

/// `kubectl exec -it POD -- psql` against `tusk up`: a terminal never closes stdin, so the
/// server must not wait for it. The session ends at once with one line on the terminal (stdout,
/// CRLF) saying how to give psql its statements, and a non-zero exit.
#[tokio::test]
async fn an_interactive_psql_in_tusk_up_answers_at_once() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    use tokio::io::AsyncReadExt;
    let (server, handle, client) = serve().await;
    let models = tusk_scenarios::LiveModels::new(1);
    server.set_exec_handler(Arc::new(move |r: &ExecRequest| {
        tusk_operator::up::model_exec(&models, r)
    }));
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let params = AttachParams::interactive_tty().container("database");
    let mut process = pods
        .exec("c1-instance1-abcd-0", ["psql"], &params)
        .await
        .expect("exec starts");
    // Stdin stays open, as a terminal's does, and keystrokes arrive that nothing reads: the
    // server must still end with a clean close, or the client loses the final status to a
    // connection reset. A few lines, as typed: kube's client blocks for good on stdin it
    // cannot hand over once the session is closed (64 KiB hung the test).
    let mut stdin = process.stdin().expect("stdin");
    {
        use tokio::io::AsyncWriteExt;
        for _ in 0..4 {
            stdin
                .write_all(b"select 1;\n")
                .await
                .expect("stdin accepted");
        }
        stdin.flush().await.expect("stdin flushed");
    }
    let mut stdout = process.stdout().expect("stdout");
    let status = process.take_status().expect("status");
    let mut text = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stdout.read_to_string(&mut text),
    )
    .await
    .expect("psql answered without waiting for stdin to close")
    .expect("read stdout");
    assert!(text.contains("no interactive session"), "{text:?}");
    assert!(text.contains("psql -c '\\du'"), "{text:?}");
    assert!(text.ends_with("\r\n"), "a terminal line: {text:?}");
    let status = status.await.expect("a final status");
    assert_eq!(status.status.as_deref(), Some("Failure"), "{status:?}");
    handle.shutdown().await;
}
