//! Backups and restores as a user drives them with kubectl: `deploy/backup.yaml` and
//! `deploy/restore.yaml` against the cluster of `deploy/cr.yaml`, Percona's printer columns,
//! and the cluster ready again after an in-place restore.

use std::time::Duration;
use tusk_e2e::{Endpoint, deploy, require};

const CLUSTER: &str = "cluster1";
const WAIT: Duration = Duration::from_secs(300);

fn wait_field(ep: &Endpoint, what: &[&str], path: &str, want: &str) {
    ep.eventually(&format!("{} {path} = {want}", what.join(" ")), WAIT, |ep| {
        let got = ep.jsonpath(what, path);
        if got == want {
            Ok(())
        } else {
            Err(format!("{path} is {got:?}"))
        }
    });
}

#[test]
fn backup_then_in_place_restore_through_kubectl() {
    let ep = require!(Endpoint::start());
    ep.kubectl_ok(&["apply", "-f", &deploy("cr.yaml").to_string_lossy()]);
    wait_field(&ep, &["pg", CLUSTER], "{.status.state}", "ready");

    ep.kubectl_ok(&["apply", "-f", &deploy("backup.yaml").to_string_lossy()]);
    wait_field(
        &ep,
        &["pg-backup", "backup1"],
        "{.status.state}",
        "Succeeded",
    );
    let table = ep.kubectl_ok(&["get", "pg-backup"]);
    for column in [
        "CLUSTER",
        "REPO",
        "DESTINATION",
        "STATUS",
        "TYPE",
        "COMPLETED",
        "AGE",
    ] {
        assert!(table.contains(column), "no {column} column:\n{table}");
    }
    assert!(
        table.contains("backup1") && table.contains("repo1") && table.contains("Succeeded"),
        "{table}"
    );
    for field in ["backupType", "completed"] {
        let v = ep.jsonpath(&["pg-backup", "backup1"], &format!("{{.status.{field}}}"));
        assert!(!v.is_empty(), "status.{field} is empty after Succeeded");
    }
    // The pgBackRest label comes from `pgbackrest info`, which the operator reads through
    // pods/exec once the backup has succeeded, and stores in <cluster>-pgbackrest-info.
    ep.eventually("status.backupName of backup1", WAIT, |ep| {
        let v = ep.jsonpath(&["pg-backup", "backup1"], "{.status.backupName}");
        if v.is_empty() {
            Err("status.backupName is empty".into())
        } else {
            Ok(())
        }
    });
    let read_at = ep.jsonpath(
        &["configmap", &format!("{CLUSTER}-pgbackrest-info")],
        "{.metadata.annotations.pgv2\\.percona\\.com/pgbackrest-info-refreshed-at}",
    );
    assert!(
        !read_at.is_empty(),
        "the info ConfigMap was not written by the operator's pgbackrest info read"
    );

    ep.kubectl_ok(&["apply", "-f", &deploy("restore.yaml").to_string_lossy()]);
    wait_field(
        &ep,
        &["pg-restore", "restore1"],
        "{.status.state}",
        "Succeeded",
    );
    let table = ep.kubectl_ok(&["get", "pg-restore"]);
    for column in ["CLUSTER", "STATUS", "COMPLETED", "AGE"] {
        assert!(table.contains(column), "no {column} column:\n{table}");
    }
    assert!(
        table.contains("restore1") && table.contains("Succeeded"),
        "{table}"
    );
    // The restore stopped the instances and brought them back.
    wait_field(&ep, &["pg", CLUSTER], "{.status.state}", "ready");
}
