//! Schedule math and the "fires once, never twice" property of scheduled backups.

mod backup_common;

use backup_common::*;
use proptest::prelude::*;
use rstest::rstest;
use tusk_core::backup::schedule::{self, Schedule, parse_cron};
use tusk_core::backup::{BackupKind, annotations, labels};

#[rstest]
#[case("0 1 * * 0")]
#[case("*/15 * * * *")]
#[case("0 0 1 * *")]
#[case("30 2 * * MON-FRI")]
#[case("@daily")]
fn valid_schedules_parse(#[case] expr: &str) {
    assert!(parse_cron(expr).is_ok(), "{expr}");
}

#[rstest]
#[case("0 0 1 * * *")] // seconds field: not standard cron
#[case("0 1 * *")]
#[case("61 * * * *")]
#[case("every day")]
#[case("")]
fn invalid_schedules_are_refused(#[case] expr: &str) {
    assert!(parse_cron(expr).is_err(), "{expr}");
}

#[rstest]
// hourly at :00; now = 10:30 → latest 10:00, next 11:00
#[case(
    "0 * * * *",
    "2027-01-15T10:30:00Z",
    "2027-01-15T10:00:00Z",
    "2027-01-15T11:00:00Z"
)]
// exactly on the instant: it is due now; the next is an hour later
#[case(
    "0 * * * *",
    "2027-01-15T10:00:00Z",
    "2027-01-15T10:00:00Z",
    "2027-01-15T11:00:00Z"
)]
// Sunday 01:00 weekly (2027-01-17 is a Sunday)
#[case(
    "0 1 * * 0",
    "2027-01-20T12:00:00Z",
    "2027-01-17T01:00:00Z",
    "2027-01-24T01:00:00Z"
)]
// month end crossing
#[case(
    "0 0 1 * *",
    "2027-01-31T23:59:59Z",
    "2027-01-01T00:00:00Z",
    "2027-02-01T00:00:00Z"
)]
fn due_instants_are_utc(
    #[case] expr: &str,
    #[case] now: &str,
    #[case] latest: &str,
    #[case] next: &str,
) {
    let s = Schedule::new("repo1", BackupKind::Full, expr).unwrap();
    let now = now.parse().unwrap();
    assert_eq!(s.latest_due(now).unwrap().to_string(), latest);
    assert_eq!(s.next_due(now).unwrap().to_string(), next);
}

#[test]
fn names_are_deterministic_and_short() {
    let s = Schedule::new("repo1", BackupKind::Differential, "0 * * * *").unwrap();
    let at = ts(T0 + 3600);
    assert_eq!(
        schedule::scheduled_backup_name("c1", &s, at),
        "c1-repo1-diff-202701150900"
    );
    assert_eq!(s.id(), "repo1-diff");
}

/// Applies whatever the schedule creates; returns the names created.
fn tick(w: &mut World) -> Vec<String> {
    let p = w.plan();
    let made: Vec<String> = applied(&p, "PerconaPGBackup")
        .iter()
        .filter(|o| o["metadata"]["labels"][labels::SCHEDULE].is_string())
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    w.apply(&p);
    made
}

#[test]
fn scheduled_backup_object_snapshot() {
    let mut w = World::new(cluster());
    w.now = T0 + 3600 + 5;
    let p = w.plan();
    let objs = applied(&p, "PerconaPGBackup");
    assert_eq!(objs.len(), 1);
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots")}, {
        insta::assert_yaml_snapshot!("backup_scheduled_object", objs[0]);
    });
}

#[test]
fn no_fire_before_the_first_instant_after_creation() {
    // Created at 08:00:00 exactly; at 08:30 the latest instant (08:00) is not before creation.
    let mut w = World::new(cluster());
    w.now = T0 + 1800;
    assert_eq!(tick(&mut w), vec!["c1-repo1-full-202701150800"]);
    // A cluster created at 08:00:01 does not get the 08:00 slot.
    let mut cr = cluster();
    cr.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        ts(T0 + 1),
    ));
    let mut w = World::new(cr);
    w.now = T0 + 1800;
    assert!(tick(&mut w).is_empty());
    // The requeue points at 09:00.
    let p = w.plan();
    assert_eq!(p.requeue_after().unwrap().as_secs(), 1800);
}

#[test]
fn repeated_reconciles_never_fire_twice() {
    let mut w = World::new(cluster());
    w.now = T0 + 3600 + 10;
    assert_eq!(tick(&mut w).len(), 1);
    for dt in [0, 1, 60, 1000, 3589] {
        w.now = T0 + 3600 + 10 + dt;
        assert!(tick(&mut w).is_empty(), "fired again at +{dt}s");
    }
    w.now = T0 + 7200;
    assert_eq!(tick(&mut w), vec!["c1-repo1-full-202701151000"]);
}

#[test]
fn a_stale_read_gives_the_same_object() {
    // Two reconciles that both miss the created backup apply the same name.
    let mut w = World::new(cluster());
    w.now = T0 + 3600 + 10;
    let a = applied(&w.plan(), "PerconaPGBackup");
    let b = applied(&w.plan(), "PerconaPGBackup");
    assert_eq!(a, b);
    w.apply(&w.plan());
    w.apply(&w.plan());
    assert_eq!(w.obs.backups.len(), 1);
}

#[test]
fn paused_cluster_fires_once_after_resume() {
    let mut cr = cluster();
    cr.spec.pause = Some(true);
    let mut w = World::new(cr);
    for h in 1..5 {
        w.now = T0 + h * 3600 + 5;
        assert!(tick(&mut w).is_empty());
    }
    w.obs.cluster.spec.pause = Some(false);
    assert_eq!(tick(&mut w), vec!["c1-repo1-full-202701151200"]);
    assert!(tick(&mut w).is_empty());
}

#[test]
fn invalid_schedule_is_reported_not_fatal() {
    let mut cr = cluster();
    let repos = &mut cr.spec.backups.pgbackrest.as_mut().unwrap().repos;
    repos[1].schedules = Some(serde_yaml::from_str("incremental: '0 0 1 * * *'").unwrap());
    let mut w = World::new(cr);
    w.now = T0 + 3600 + 5;
    let p = w.plan();
    assert!(p.actions.iter().any(|a| matches!(a, tusk_core::Action::Event { reason, message, .. }
        if reason == "InvalidSchedule" && message.contains("repo2") && message.contains("incremental"))));
    assert_eq!(
        applied(&p, "PerconaPGBackup").len(),
        1,
        "the valid schedule still fires"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After an outage of any length the schedule fires exactly once, for the latest instant,
    /// and not again until the next one.
    #[test]
    fn outage_fires_once_for_the_latest_instant(hours in 0i64..2000, minute in 0i64..60, extra_ticks in 1usize..5) {
        let mut w = World::new(cluster());
        // One backup before the outage (the 09:00 slot).
        w.now = T0 + 3600 + 30;
        prop_assert_eq!(tick(&mut w).len(), 1);
        w.now = T0 + 3600 + hours * 3600 + minute * 60 + 30;
        let mut fired = Vec::new();
        for _ in 0..extra_ticks {
            fired.extend(tick(&mut w));
        }
        let latest_hour = T0 + 3600 + hours * 3600;
        if hours == 0 {
            prop_assert!(fired.is_empty());
        } else {
            prop_assert_eq!(fired.len(), 1);
            let expected = format!("c1-repo1-full-{}", schedule::instant_suffix(ts(latest_hour)));
            prop_assert_eq!(&fired[0], &expected);
            let b = w.backup(&expected);
            prop_assert_eq!(
                b.metadata.annotations.as_ref().unwrap().get(annotations::SCHEDULED_AT).unwrap(),
                &tusk_core::backup::rfc3339(ts(latest_hour))
            );
        }
    }
}
