//! Day one with kubectl, beyond the lifecycle: what a new user types against `tusk up` and
//! what they see. A mistyped cluster is refused naming the field; `kubectl explain` knows the
//! kind; psql in the primary lists the operator's roles and says what the model cannot do;
//! `exec` of a shell and `port-forward` fail with one line instead of hanging or a 404.

use std::process::{Command, Stdio};
use std::time::Duration;
use tusk_e2e::{Endpoint, deploy, require};

const READY: Duration = Duration::from_secs(300);

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn what_a_new_user_sees_with_kubectl() {
    let ep = require!(Endpoint::start());
    if !ep.embedded {
        eprintln!("SKIP: psql and port-forward answers are tusk up's own");
        return;
    }
    let cr = std::fs::read_to_string(deploy("cr.yaml")).unwrap();
    assert!(cr.contains("    replicas: 3\n"), "cr.yaml changed");

    // A typo in a type: refused at apply time, naming the field; nothing is stored.
    let bad = cr.replacen("name: cluster1", "name: typo", 1).replacen(
        "    replicas: 3\n",
        "    replicas: three\n",
        1,
    );
    let path = std::env::temp_dir().join(format!("tusk-e2e-typo-{}.yaml", std::process::id()));
    std::fs::write(&path, bad).unwrap();
    let out = ep.kubectl(&["apply", "-f", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success(), "a mistyped cluster must be refused");
    assert_eq!(
        stderr_of(&out),
        r#"The PerconaPGCluster "typo" is invalid: spec.instances[0].replicas: Invalid value: "string": spec.instances[0].replicas in body must be of type integer: "three""#
    );
    assert!(!ep.kubectl(&["get", "pg", "typo"]).status.success());

    let explain = ep.kubectl_ok(&["explain", "pg"]);
    assert!(
        explain.contains("metadata\t<ObjectMeta>") && explain.contains("spec\t<Object>"),
        "{explain}"
    );

    ep.kubectl_ok(&["apply", "-f", &deploy("cr.yaml").to_string_lossy()]);
    let mut primary = String::new();
    ep.eventually("cluster1 ready with a primary", READY, |ep| {
        let state = ep.jsonpath(&["pg", "cluster1"], "{.status.state}");
        primary = ep.jsonpath(
            &[
                "pods",
                "-l",
                "postgres-operator.crunchydata.com/role=master",
            ],
            "{.items[0].metadata.name}",
        );
        if state == "ready" && !primary.is_empty() {
            Ok(())
        } else {
            Err(format!("state {state:?}, primary {primary:?}"))
        }
    });

    // psql in the primary: the roles the operator created, as \du lists them.
    let roles = ep.kubectl_ok(&[
        "exec", &primary, "-c", "database", "--", "psql", "-c", "\\du",
    ]);
    assert!(roles.contains("List of roles"), "{roles}");
    assert!(roles.lines().any(|l| l.trim() == "cluster1"), "{roles}");
    // A query the model does not answer: accepted, with a NOTICE saying so.
    let out = ep.kubectl(&[
        "exec", &primary, "-c", "database", "--", "psql", "-c", "select 1",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).starts_with("NOTICE:  tusk up simulates PostgreSQL"),
        "{}",
        stderr_of(&out)
    );
    // A shell: one line and exit code 126, as a container without it would give.
    let out = ep.kubectl(&["exec", &primary, "-c", "database", "--", "bash", "-c", "id"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("tusk up simulates pods"), "{err}");
    assert!(err.contains("exit code 126"), "{err}");

    // port-forward: fails at once with the reason, not a 404.
    let pf = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&ep.kubeconfig)
        .args(["port-forward", &format!("pod/{primary}"), "0:5432"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = pf.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("is not supported: this API server simulates pods"),
        "{}",
        stderr_of(&out)
    );
}
