//! The backup module as the full `reconcile` drives it: backups and restores show up in the
//! cluster's plan, and a restore keeps the instance StatefulSets at 0 replicas.

mod backup_common;

use backup_common::*;
use tusk_core::{Action, reconcile};

#[test]
fn reconcile_starts_a_requested_backup() {
    let mut w = World::new(cluster());
    w.add_backup("b1", "repo1", &["--type=full"]);
    let p = reconcile(&w.obs, &w.env());
    let jobs = applied_jobs(&p);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::PatchStatus { target, status } if target.kind == "PerconaPGBackup" && status["state"] == "Starting")));
}

#[test]
fn reconcile_holds_instances_at_zero_during_a_restore() {
    let mut w = World::new(cluster());
    w.add_restore("r1", "repo1", &[]);
    // Mark it started, as the previous reconcile would have.
    w.obs.restores[0].status =
        Some(serde_json::from_value(serde_json::json!({"state": "Starting"})).unwrap());
    let p = reconcile(&w.obs, &w.env());
    let sts: Vec<_> = applied(&p, "StatefulSet")
        .into_iter()
        .filter(|s| {
            s["metadata"]["labels"]["postgres-operator.crunchydata.com/instance"].is_string()
        })
        .collect();
    assert!(!sts.is_empty());
    for s in sts {
        assert_eq!(s["spec"]["replicas"], 0, "{}", s["metadata"]["name"]);
    }
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::Sql { .. } | Action::Switchover { .. }))
    );
}
