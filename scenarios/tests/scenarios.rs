//! Runs every scenario file, snapshot-tests its timeline, and checks determinism.

use std::path::PathBuf;
use tusk_scenarios::run_file;

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
}

fn run(name: &str) {
    let path = dir().join(format!("{name}.yaml"));
    let out = run_file(&path, 1).unwrap_or_else(|e| panic!("{e}"));
    let mut text = out.timeline.join("\n");
    if !out.failures.is_empty() {
        text.push_str("\n\nFAILURES:\n");
        text.push_str(&out.failures.join("\n"));
    }
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("scenario-{name}"), text);
    });
    if out.pending.is_none() {
        assert!(
            out.failures.is_empty(),
            "scenario {name} (replay: tusk sim run scenarios/scenarios/{name}.yaml --seed 1) failed:\n{}",
            out.failures.join("\n")
        );
    }
}

macro_rules! scenario {
    ($f:ident, $n:literal) => {
        #[test]
        fn $f() {
            run($n);
        }
    };
}

scenario!(bootstrap, "bootstrap");
scenario!(pod_loss, "pod-loss");
scenario!(primary_kill_failover, "primary-kill-failover");
scenario!(sync_failover, "sync-failover");
scenario!(switchover, "switchover");
scenario!(rolling_update, "rolling-update");
scenario!(scale_up_down, "scale-up-down");
scenario!(pause_resume, "pause-resume");
scenario!(node_loss, "node-loss");
scenario!(operator_crash_mid_rollout, "operator-crash-mid-rollout");
scenario!(stale_read_during_scale_down, "stale-read-during-scale-down");
scenario!(backup_interruption, "backup-interruption");
scenario!(restore, "restore");

#[test]
fn same_seed_same_trace() {
    for name in ["primary-kill-failover", "rolling-update"] {
        let path = dir().join(format!("{name}.yaml"));
        let a = run_file(&path, 7).unwrap();
        let b = run_file(&path, 7).unwrap();
        assert_eq!(
            a.timeline, b.timeline,
            "{name}: timelines differ for seed 7"
        );
        assert_eq!(a.digest, b.digest, "{name}: final states differ for seed 7");
    }
}
