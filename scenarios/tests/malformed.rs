//! Scenario files with mistakes an outsider makes: each is refused before anything runs, with
//! one line naming the field or the step (and its line) and what is allowed instead.

use std::path::{Path, PathBuf};
use tusk_scenarios::script::{parse, run_scenario};

fn base() -> PathBuf {
    // `cluster: {file: cluster.yaml}` resolves next to the scenario.
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/x.yaml"))
}

/// The error for `text` (which must be refused), on one line.
fn refused(text: &str) -> String {
    match parse(text, &base()) {
        Ok(s) => panic!("accepted a malformed scenario: {s:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "not one line: {msg}");
            msg
        }
    }
}

fn has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "`{p}` missing from: {msg}");
    }
}

const HEAD: &str = "name: t\ncluster: {file: cluster.yaml}\nsteps:\n  - wait: ready\n";

#[test]
fn an_unknown_step_names_its_number_line_and_the_steps_allowed() {
    let msg = refused(&format!("{HEAD}  - sleep: 30s\n"));
    has(
        &msg,
        &[
            "step 2 (line 5)",
            "unknown step `sleep`",
            "wait, advance, fault",
        ],
    );
}

#[test]
fn an_unknown_fault_lists_the_kinds() {
    let msg = refused(&format!(
        "{HEAD}  - advance: 5s\n  - fault: {{kind: network-partition, target: primary}}\n"
    ));
    has(
        &msg,
        &[
            "step 3 (line 6)",
            "network-partition",
            "pod-kill",
            "partition",
        ],
    );
}

#[test]
fn a_wrong_type_names_the_field() {
    let msg = refused("name: t\nnodes: three\ncluster: {file: cluster.yaml}\n");
    has(&msg, &["nodes", "line 2"]);
    let msg = refused(&format!(
        "{HEAD}  - fault: {{kind: api-errors, rate: lots}}\n"
    ));
    has(&msg, &["step 2 (line 5)", "f64"]);
    let msg = refused(&format!("{HEAD}  - fault: {{kind: api-errors, rate: 3}}\n"));
    has(&msg, &["step 2 (line 5)", "between 0 and 1"]);
    let msg = refused(&format!(
        "{HEAD}  - fault: {{kind: clock-skew, target: primary, seconds: 9000000000}}\n"
    ));
    has(&msg, &["step 2 (line 5)", "clock-skew", "-86400 to 86400"]);
    let msg = refused(&format!(
        "{HEAD}  - fault: {{kind: replication-lag, millis: -5}}\n"
    ));
    has(
        &msg,
        &[
            "step 2 (line 5)",
            "replication-lag",
            "between 0 and 3600000",
        ],
    );
}

#[test]
fn a_missing_cluster_or_target_is_named() {
    has(&refused("name: t\nsteps:\n  - wait: ready\n"), &["cluster"]);
    has(
        &refused(&format!("{HEAD}  - fault: {{kind: pod-kill}}\n")),
        &["step 2 (line 5)", "target"],
    );
    has(
        &refused("name: t\ncluster: {file: nope.yaml}\n"),
        &["nope.yaml", "No such file"],
    );
}

#[test]
fn bad_durations_say_what_a_duration_looks_like() {
    for (step, at) in [
        ("  - advance: 30 seconds\n", "advance"),
        ("  - advance: -5s\n", "advance"),
        ("  - advance: 999999h\n", "advance"),
        (
            "  - wait: {for: ready, timeout: 5 minutes}\n",
            "wait timeout",
        ),
        (
            "  - fault: {kind: pod-kill, target: primary, down: forever}\n",
            "down",
        ),
    ] {
        let msg = refused(&format!("{HEAD}{step}"));
        has(&msg, &["step 2 (line 5)", at, "500ms, 30s"]);
    }
    has(
        &refused("name: t\nworkload: sometimes\ncluster: {file: cluster.yaml}\n"),
        &["workload", "off"],
    );
}

#[test]
fn unknown_conditions_heal_classes_and_expectations_are_refused() {
    has(
        &refused(&format!("{HEAD}  - wait: healthy\n")),
        &[
            "step 2 (line 5)",
            "unknown condition `healthy`",
            "primary-changed",
        ],
    );
    has(
        &refused(&format!("{HEAD}  - wait: {{for: ready, timout: 1m}}\n")),
        &["step 2 (line 5)", "timout"],
    );
    has(
        &refused(&format!("{HEAD}  - heal: everything\n")),
        &["step 2 (line 5)", "everything", "all or one of pod-delete"],
    );
    has(
        &refused(&format!("{HEAD}expect:\n  primary: cluster1-instance1-0\n")),
        &["expect", "primary", "min-primary-changes"],
    );
    has(
        &refused("name: t\nnodes: 0\ncluster: {file: cluster.yaml}\n"),
        &["nodes: 0 is not between 1 and 100"],
    );
}

#[test]
fn a_cluster_the_schema_would_refuse_is_refused_with_its_field() {
    let msg = refused("name: t\ncluster: {file: cluster.yaml, patch: {spec: {instances: 3}}}\n");
    has(&msg, &["cluster: spec.instances", "invalid type"]);
    let msg = refused(&format!(
        "{HEAD}  - apply: {{apiVersion: pgv2.percona.com/v2, kind: PerconaPGBackup, metadata: {{name: b}}, spec: {{pgCluster: cluster1, repoName: 7}}}}\n"
    ));
    has(&msg, &["step 2 (line 5)", "PerconaPGBackup b", "repoName"]);
}

#[test]
fn not_yaml_or_not_a_scenario_is_one_line() {
    has(
        &refused("name: t\ncluster: {file: x\nsteps: []\n"),
        &["not valid", "line"],
    );
    has(&refused("- wait: ready\n"), &["a map with name, cluster"]);
    has(&refused(""), &["missing field `name`"]);
}

#[test]
fn numbers_are_seconds_and_false_turns_the_workload_off() {
    let s = parse(
        "name: t\nworkload: false\ncluster: {file: cluster.yaml}\nsteps:\n  - advance: 30\n  - wait: {for: ready, timeout: 90}\n  - fault: {kind: pod-kill, target: primary, down: 1.5}\n",
        &base(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.workload, "off");
    use tusk_scenarios::script::{Step, Wait};
    assert_eq!(s.steps[0], Step::Advance("30".into()));
    assert_eq!(
        s.steps[1],
        Step::Wait(Wait::Full {
            condition: "ready".into(),
            timeout: Some("90".into())
        })
    );
    assert_eq!(
        s.steps[2],
        Step::Fault(
            tusk_scenarios::Fault::PodKill {
                target: "primary".into(),
                down: Some("1.5".into())
            }
            .into()
        )
    );
}

#[test]
fn every_shipped_scenario_passes_the_check() {
    for d in ["scenarios", "backup"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(d);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == "cluster.yaml") {
                continue;
            }
            tusk_scenarios::script::load(&p).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// A scenario built in code (as explore does) is checked too, before the world starts.
#[test]
fn run_scenario_refuses_an_unchecked_scenario() {
    let mut s = parse(HEAD, &base()).unwrap();
    s.steps
        .push(tusk_scenarios::script::Step::Heal("bogus".into()));
    let err = run_scenario(&s, 1).unwrap_err();
    has(&err, &["step 2", "bogus"]);
}

/// A node target that does not exist is skipped with the nodes there are, not "injected".
#[test]
fn a_node_down_on_a_node_that_does_not_exist_is_skipped_with_the_nodes() {
    let s = parse(
        &format!("{HEAD}  - fault: {{kind: node-down, target: node-7}}\n"),
        &base(),
    )
    .unwrap();
    let out = run_scenario(&s, 1).unwrap();
    assert!(
        out.timeline.iter().any(|l| l.contains(
            "fault node-down node-7 skipped: there is no node node-7 (nodes: node-1, node-2, node-3)"
        )),
        "{}",
        out.timeline.join("\n")
    );
}

#[test]
fn a_stale_read_lag_beyond_the_kept_history_is_refused_with_the_limit() {
    let msg = refused(&format!(
        "{HEAD}  - fault: {{kind: stale-reads, lag: 5000}}\n"
    ));
    has(&msg, &["stale-reads", "lag 5000", "up to 1000"]);
    // At the limit it is accepted.
    parse(
        &format!("{HEAD}  - fault: {{kind: stale-reads, lag: 1000}}\n"),
        &base(),
    )
    .expect("a lag of 1000 revisions is allowed");
}
