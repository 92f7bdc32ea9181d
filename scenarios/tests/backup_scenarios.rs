//! Backup scenario files (`scenarios/backup/*.yaml`) run in the deterministic world with
//! tusk's core; the seed is printed on failure.

use std::path::Path;
use tusk_scenarios::script::run_file;

fn run(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("backup")
        .join(file);
    for seed in [1u64, 2, 3] {
        let out = run_file(&path, seed).unwrap_or_else(|e| panic!("{file} seed {seed}: {e}"));
        assert!(
            out.passed(),
            "{file} seed {seed} failed: {:#?}\ntimeline:\n{}",
            out.failures,
            out.timeline.join("\n")
        );
    }
}

#[test]
fn backup_job_kill_then_next_succeeds() {
    run("backup-job-kill.yaml");
}

#[test]
fn backup_object_store_down_fails_with_reason() {
    run("backup-object-store-down.yaml");
}

#[test]
fn restore_requested_during_a_backup_waits() {
    run("restore-during-backup.yaml");
}
