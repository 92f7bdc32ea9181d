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

// ---- Restores and schedules driven from Rust, with the pgBackRest model's records. ----

use serde_json::{Value, json};
use tusk_scenarios::clock::{MINUTE, Millis, SECOND, to_timestamp};
use tusk_scenarios::{World, WorldConfig};

const NS: &str = "default";
const API: &str = "pgv2.percona.com/v2";

fn cluster_cr() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/cluster.yaml"
    ))
    .expect("read scenarios/cluster.yaml");
    serde_yaml::from_str(&text).expect("parse scenarios/cluster.yaml")
}

fn get(w: &World, kind: &str, name: &str) -> Option<Value> {
    use tusk_fake_apiserver::Objects;
    w.store.get(API, kind, Some(NS), name)
}

fn state(w: &World, kind: &str, name: &str) -> Option<String> {
    get(w, kind, name).and_then(|o| o["status"]["state"].as_str().map(str::to_string))
}

/// Panics with the seed and the end of the timeline.
fn fail(w: &World, seed: u64, what: &str) -> ! {
    let tl = w.rendered_timeline();
    let tail = tl[tl.len().saturating_sub(60)..].join("\n");
    panic!("seed {seed}: {what}\nlast timeline lines:\n{tail}");
}

fn wait(w: &mut World, seed: u64, within: Millis, what: &str, f: impl FnMut(&World) -> bool) {
    let deadline = w.now() + within;
    if !w.run_until(deadline, f) {
        fail(w, seed, &format!("timed out waiting for {what}"));
    }
}

/// A ready cluster with one finished full backup.
fn backed_up(seed: u64) -> World {
    let mut w = World::new(WorldConfig::new(seed));
    w.apply_user(cluster_cr()).unwrap();
    wait(&mut w, seed, 10 * MINUTE, "cluster ready", |w| {
        w.cluster_ready("cluster1")
    });
    w.apply_user(json!({"apiVersion": API, "kind": "PerconaPGBackup",
        "metadata": {"name": "full1", "namespace": NS},
        "spec": {"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=full"]}}))
        .unwrap();
    wait(&mut w, seed, 5 * MINUTE, "backup full1 Succeeded", |w| {
        state(w, "PerconaPGBackup", "full1").as_deref() == Some("Succeeded")
    });
    w
}

/// Requests a restore to `target` (whole seconds) and waits for it and a ready cluster.
fn restore_to(w: &mut World, seed: u64, name: &str, target: Millis) {
    let t = to_timestamp(target)
        .strftime("%Y-%m-%d %H:%M:%S+00")
        .to_string();
    w.apply_user(json!({"apiVersion": API, "kind": "PerconaPGRestore",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"pgCluster": "cluster1", "repoName": "repo1",
                 "options": ["--type=time", format!("--target=\"{t}\"")]}}))
        .unwrap();
    wait(w, seed, 15 * MINUTE, "restore Succeeded", |w| {
        state(w, "PerconaPGRestore", name).as_deref() == Some("Succeeded")
    });
    wait(
        w,
        seed,
        10 * MINUTE,
        "cluster ready after the restore",
        |w| w.cluster_ready("cluster1"),
    );
}

/// The restored data holds exactly the writes acknowledged up to the target: each write
/// acknowledged at or before `target` is in it, none acknowledged after.
fn check_exact(w: &World, seed: u64, restore: &str, target: Millis) {
    let recs: Vec<_> = w
        .pgbackrest
        .restores
        .iter()
        .filter(|r| r.restore == restore)
        .collect();
    let Some(rec) = recs.last() else {
        fail(
            w,
            seed,
            &format!("the model ran no restore Job for {restore}"),
        );
    };
    assert_eq!(rec.target, Some(target), "seed {seed}: restore target");
    let acked = &w.workloads[0].acked;
    let before = acked.iter().filter(|a| a.at <= target).count();
    assert!(
        before > 0 && before < acked.len(),
        "seed {seed}: the target must split the writes ({before} of {})",
        acked.len()
    );
    let wrong: Vec<String> = acked
        .iter()
        .filter(|a| (a.at <= target) != rec.data.contains(a.timeline, a.lsn))
        .map(|a| {
            format!(
                "write {} acked at {} ms (tl {}, lsn {}): {}",
                a.id,
                a.at,
                a.timeline,
                a.lsn,
                if a.at <= target {
                    "missing"
                } else {
                    "restored although after the target"
                }
            )
        })
        .collect();
    if !wrong.is_empty() {
        fail(
            w,
            seed,
            &format!("restore to {target} ms is not exact:\n{}", wrong.join("\n")),
        );
    }
    // And the new primary serves that data (its history holds the restored point).
    let primary = w.patroni.primary_of("cluster1").map(|m| m.pvc.clone());
    let data = primary.and_then(|p| w.patroni.data.get(&p).cloned());
    let Some(data) = data else {
        fail(w, seed, "no primary after the restore");
    };
    for a in acked.iter().filter(|a| a.at <= target) {
        if !data.contains(a.timeline, a.lsn) {
            fail(
                w,
                seed,
                &format!("write {} restored but not on the new primary", a.id),
            );
        }
    }
    for a in acked.iter().filter(|a| a.at > target && a.at < rec.at) {
        if data.contains(a.timeline, a.lsn) {
            fail(
                w,
                seed,
                &format!(
                    "write {} (acked at {} ms, tl {}, lsn {}) after the target is on the new \
                     primary (tl {}, lsn {}, history {:?}); restore records: {:#?}",
                    a.id,
                    a.at,
                    a.timeline,
                    a.lsn,
                    data.timeline,
                    data.lsn,
                    data.history,
                    w.pgbackrest.restores
                ),
            );
        }
    }
}

fn whole_second(t: Millis) -> Millis {
    t - t.rem_euclid(SECOND)
}

/// issue 6 §4: a restore to time T yields exactly the writes acknowledged up to T.
#[test]
fn pitr_restore_yields_exactly_the_writes_acknowledged_up_to_t() {
    for seed in [1u64, 2, 3] {
        let mut w = backed_up(seed);
        // The backup's status is complete (§5).
        let b = get(&w, "PerconaPGBackup", "full1").unwrap();
        // `destination` stays empty for a volume repo (as upstream): only cloud repos have one.
        assert!(b["status"].get("destination").is_none());
        for k in [
            "backupName",
            "backupType",
            "storageType",
            "completed",
            "latestRestorableTime",
            "jobName",
        ] {
            assert!(
                b["status"][k].as_str().is_some_and(|v| !v.is_empty()),
                "seed {seed}: PerconaPGBackup status.{k} is not filled: {:#}",
                b["status"]
            );
        }
        w.advance(20 * SECOND + 500);
        let target = whole_second(w.now());
        w.advance(20 * SECOND);
        restore_to(&mut w, seed, "pitr1", target);
        check_exact(&w, seed, "pitr1", target);
        let r = get(&w, "PerconaPGRestore", "pitr1").unwrap();
        assert_eq!(
            r["status"]["conditions"][0]["status"], "False",
            "seed {seed}: finished restore condition: {:#}",
            r["status"]
        );
    }
}

/// issue 6 §4: an operator crash at every step of a restore still converges. Crash point k
/// makes the operator crash right after its k-th write once the restore was requested; each
/// run is reproducible from its seed (= k).
#[test]
fn restore_converges_with_an_operator_crash_at_every_step() {
    // How many writes a restore takes without a crash bounds the crash points.
    let mut w = backed_up(100);
    let before = w.operator.writes;
    w.advance(10 * SECOND + 300);
    let target = whole_second(w.now());
    w.advance(10 * SECOND);
    restore_to(&mut w, 100, "r", target);
    let span = (w.operator.writes - before).clamp(1, 40);
    eprintln!("a restore takes {span} operator writes: crash points 1..={span}");
    for k in 1..=span {
        let seed = k;
        let mut w = backed_up(seed);
        w.advance(10 * SECOND + 300);
        let target = whole_second(w.now());
        w.advance(10 * SECOND);
        w.operator.crash_after = Some(k);
        restore_to(&mut w, seed, "r", target);
        let crashed = w
            .operator
            .events
            .iter()
            .any(|(_, e)| matches!(e, tusk_scenarios::operator::OpEvent::Crashed { .. }));
        assert!(crashed, "seed {seed}: crash point {k} was never reached");
        check_exact(&w, seed, "r", target);
        assert!(
            w.checker.violations.is_empty(),
            "seed {seed}: invariants violated: {:#?}",
            w.checker.violations
        );
    }
}

/// issue 6 §4: a schedule across an operator outage fires exactly once (for the latest missed
/// instant), and not again until its next instant.
#[test]
fn schedule_across_an_operator_outage_fires_exactly_once() {
    for seed in [1u64, 2] {
        let mut cr = cluster_cr();
        cr["spec"]["backups"]["pgbackrest"]["repos"][0]["schedules"] =
            json!({"full": "5-59/10 * * * *"});
        let mut w = World::new(WorldConfig::new(seed));
        w.apply_user(cr).unwrap();
        wait(&mut w, seed, 8 * MINUTE, "cluster ready", |w| {
            w.cluster_ready("cluster1")
        });
        let scheduled = |w: &World| -> Vec<(String, String)> {
            use tusk_fake_apiserver::Objects;
            let mut v: Vec<(String, String)> = w
                .store
                .list(API, "PerconaPGBackup", Some(NS))
                .iter()
                .filter(|b| b["metadata"]["labels"]["pgv2.percona.com/backup-schedule"].is_string())
                .map(|b| {
                    (
                        b["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        b["metadata"]["annotations"]["pgv2.percona.com/scheduled-at"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        // "5-59/10": instants at 5, 15, 25, 35, 45 min. The 5 min one fires normally.
        w.run_until(8 * MINUTE, |_| false);
        let first = scheduled(&w);
        assert_eq!(first.len(), 1, "seed {seed}: 00:05 fires: {first:?}");
        assert!(first[0].1.ends_with("00:05:00Z"), "seed {seed}: {first:?}");
        // Down from 8 to 38 min: the instants 15, 25 and 35 pass unseen.
        w.operator.down_until = Some(38 * MINUTE);
        w.run_until(38 * MINUTE - SECOND, |_| false);
        assert_eq!(
            scheduled(&w),
            first,
            "seed {seed}: a backup appeared while the operator was down"
        );
        w.run_until(41 * MINUTE, |_| false);
        let got = scheduled(&w);
        let new: Vec<&(String, String)> = got.iter().filter(|b| !first.contains(b)).collect();
        assert_eq!(
            new.len(),
            1,
            "seed {seed}: the outage must fire exactly one backup: {got:?}"
        );
        assert!(
            new[0].1.ends_with("00:35:00Z"),
            "seed {seed}: it is for the latest missed instant (00:35): {got:?}"
        );
        let n = new[0].0.clone();
        wait(
            &mut w,
            seed,
            3 * MINUTE,
            "the scheduled backup Succeeded",
            |w| state(w, "PerconaPGBackup", &n).as_deref() == Some("Succeeded"),
        );
        w.run_until(44 * MINUTE + 50 * SECOND, |_| false);
        assert_eq!(scheduled(&w).len(), 2, "seed {seed}: {:?}", scheduled(&w));
        w.run_until(46 * MINUTE, |_| false);
        assert_eq!(
            scheduled(&w).len(),
            3,
            "seed {seed}: the next instant (00:45) fires normally: {:?}",
            scheduled(&w)
        );
    }
}

/// Retention in the pgBackRest model: with `repo1-retention-full: "1"` a second full backup
/// expires the first, and the core then deletes the PerconaPGBackup whose backup is gone.
#[test]
fn retention_expires_old_fulls_and_their_objects() {
    let seed = 7;
    let mut cr = cluster_cr();
    cr["spec"]["backups"]["pgbackrest"]["global"] = json!({"repo1-retention-full": "1"});
    let mut w = World::new(WorldConfig::new(seed));
    w.apply_user(cr).unwrap();
    wait(&mut w, seed, 10 * MINUTE, "cluster ready", |w| {
        w.cluster_ready("cluster1")
    });
    for (name, ty) in [("f1", "full"), ("i1", "incr"), ("f2", "full")] {
        w.apply_user(json!({"apiVersion": API, "kind": "PerconaPGBackup",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"pgCluster": "cluster1", "repoName": "repo1",
                     "options": [format!("--type={ty}")]}}))
            .unwrap();
        wait(&mut w, seed, 5 * MINUTE, "backup Succeeded", |w| {
            state(w, "PerconaPGBackup", name).as_deref() == Some("Succeeded")
        });
        w.advance(5 * SECOND);
    }
    let sets = &w.pgbackrest.stanzas["cluster1"].repos[&1];
    let kinds: Vec<&str> = sets.iter().map(|b| b.kind.as_str()).collect();
    assert_eq!(kinds, vec!["full"], "seed {seed}: {sets:#?}");
    // The replica-create full taken after bootstrap expires with f1, the incr goes with f1.
    assert_eq!(
        w.pgbackrest.expired.len(),
        3,
        "seed {seed}: {:#?}",
        w.pgbackrest.expired
    );
    wait(&mut w, seed, 2 * MINUTE, "f1 and i1 deleted", |w| {
        get(w, "PerconaPGBackup", "f1").is_none() && get(w, "PerconaPGBackup", "i1").is_none()
    });
    assert!(get(&w, "PerconaPGBackup", "f2").is_some(), "seed {seed}");
}
