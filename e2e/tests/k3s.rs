//! The same operator against a real Kubernetes: k3s in Docker through testcontainers, with
//! `tusk run` outside it and Percona's images inside. Skips cleanly without a Docker engine
//! (as on the development machine) or without kubectl.

use std::time::Duration;
use tusk_e2e::{Endpoint, deploy, require};

#[test]
fn cr_yaml_on_k3s_gets_its_objects_and_reaches_ready() {
    let ep = require!(Endpoint::start_k3s());
    ep.kubectl_ok(&["apply", "-f", &deploy("cr.yaml").to_string_lossy()]);
    // The objects tusk renders are accepted by a real API server (its validation, defaults
    // and admission), not only by tusk's own.
    ep.eventually(
        "cluster1's StatefulSets and Services",
        Duration::from_secs(120),
        |ep| {
            let sts = ep.kubectl_ok(&[
                "get",
                "statefulsets",
                "-l",
                "postgres-operator.crunchydata.com/cluster=cluster1",
                "-o",
                "name",
            ]);
            let svc = ep.kubectl_ok(&["get", "service", "cluster1-primary", "-o", "name"]);
            if sts.lines().count() >= 3 && !svc.trim().is_empty() {
                Ok(())
            } else {
                Err(format!("statefulsets: {sts:?}"))
            }
        },
    );
    let table = ep.kubectl_ok(&["get", "pg"]);
    for column in ["ENDPOINT", "STATUS", "POSTGRES", "PGBOUNCER", "AGE"] {
        assert!(table.contains(column), "no {column} column:\n{table}");
    }
    // Pulling the images and bootstrapping PostgreSQL under Patroni takes minutes.
    ep.eventually("cluster1 ready", Duration::from_secs(900), |ep| {
        let state = ep.jsonpath(&["pg", "cluster1"], "{.status.state}");
        if state == "ready" {
            Ok(())
        } else {
            Err(format!("state is {state:?}"))
        }
    });
}
