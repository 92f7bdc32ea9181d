//! Every upstream example and every fixture deserializes into the typed API and survives
//! deserialize → serialize: each leaf set in the file is present, and equal, in the output.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tusk_core::api::{PerconaPGBackup, PerconaPGCluster, PerconaPGRestore};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/percona");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// Collects, for every leaf of `input`, a mismatch message when `output` lacks it or differs.
fn missing_leaves(input: &Value, output: Option<&Value>, path: &str, out: &mut Vec<String>) {
    match input {
        Value::Object(map) => {
            for (k, v) in map {
                let child = output.and_then(|o| o.get(k));
                missing_leaves(v, child, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let child = output.and_then(|o| o.get(i));
                missing_leaves(v, child, &format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            if !leaf_matches(leaf, output) {
                out.push(format!("{path}: input {leaf} but output {output:?}"));
            }
        }
    }
}

fn leaf_matches(input: &Value, output: Option<&Value>) -> bool {
    match (input, output) {
        (a, Some(b)) if a == b => true,
        // `key:` with no value is null in YAML; the types read it as absent or empty.
        (Value::Null, None) => true,
        // Quantities are numbers in YAML (`cpu: 2.0`) and strings once typed ("2").
        (Value::Number(n), Some(Value::String(s))) => s.parse::<f64>().ok() == n.as_f64(),
        _ => false,
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(path: &str) -> (T, Vec<String>) {
    let mut input = load(path);
    // The typed API always writes `pgv2.percona.com/v2`; v2.0.0 files say
    // `pg.percona.com/v2beta1`, which the types read and convert.
    if input.get("apiVersion").and_then(Value::as_str) == Some("pg.percona.com/v2beta1")
        && let Some(map) = input.as_object_mut()
    {
        map.remove("apiVersion");
    }
    let typed: T = serde_json::from_value(input.clone())
        .unwrap_or_else(|e| panic!("{path} does not deserialize: {e}"));
    let output = serde_json::to_value(&typed).expect("serialize");
    let mut missing = Vec::new();
    missing_leaves(&input, Some(&output), "", &mut missing);
    (typed, missing)
}

fn assert_round_trip<T: DeserializeOwned + Serialize>(path: &str) -> T {
    let (typed, missing) = round_trip::<T>(path);
    assert!(
        missing.is_empty(),
        "{path}: fields lost or changed in the round trip:\n{}",
        missing.join("\n")
    );
    typed
}

#[test]
fn upstream_cr_yaml_round_trips() {
    let cr: PerconaPGCluster = assert_round_trip(&format!("{SHARED}/cr.yaml"));
    assert_eq!(cr.metadata.name.as_deref(), Some("cluster1"));
    assert_eq!(cr.spec.postgres_version, 18);
    assert_eq!(cr.spec.instances.len(), 1);
    assert_eq!(cr.spec.instances[0].replicas(), 3);
    assert_eq!(cr.repos().len(), 1);
    assert_eq!(cr.pgbouncer().map(|p| p.replicas()), Some(3));
}

#[test]
fn upstream_backup_yaml_round_trips() {
    let b: PerconaPGBackup = assert_round_trip(&format!("{SHARED}/backup.yaml"));
    assert_eq!(b.spec.pg_cluster, "cluster1");
    assert_eq!(b.spec.repo_name.as_deref(), Some("repo1"));
}

#[test]
fn upstream_restore_yaml_round_trips() {
    let r: PerconaPGRestore = assert_round_trip(&format!("{SHARED}/restore.yaml"));
    assert_eq!(r.spec.pg_cluster, "cluster1");
}

/// The deploy/ copies of the examples are the upstream files, unchanged.
#[test]
fn deploy_examples_equal_upstream() {
    for name in ["cr.yaml", "backup.yaml", "restore.yaml"] {
        let upstream = std::fs::read_to_string(format!("{SHARED}/{name}")).expect("read upstream");
        let deployed = std::fs::read_to_string(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/").to_owned() + name,
        )
        .expect("read deploy copy");
        assert_eq!(
            upstream, deployed,
            "deploy/{name} differs from the upstream example"
        );
    }
}

/// v2.0.0 examples use `pg.percona.com/v2beta1`. Their spec fields are a subset of v2's, so
/// the v2 types read them (the apiVersion is carried through, not checked, by the types).
#[test]
fn v2_0_0_backup_and_restore_parse() {
    let b: PerconaPGBackup = assert_round_trip(&format!("{SHARED}/v2.0.0/backup.yaml"));
    assert_eq!(b.spec.pg_cluster, "cluster1");
    let r: PerconaPGRestore = assert_round_trip(&format!("{SHARED}/v2.0.0/restore.yaml"));
    assert_eq!(r.spec.repo_name.as_deref(), Some("repo1"));
}

#[test]
fn v2_0_0_cluster_round_trips() {
    let cr: PerconaPGCluster = assert_round_trip(&format!("{SHARED}/v2.0.0/cr.yaml"));
    assert_eq!(cr.metadata.name.as_deref(), Some("cluster1"));
}

#[test]
fn every_fixture_round_trips() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(FIXTURES)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let path = path.to_string_lossy().into_owned();
        let kind = load(&path)
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match kind.as_deref() {
            Some("PerconaPGCluster") => drop(assert_round_trip::<PerconaPGCluster>(&path)),
            Some("PerconaPGBackup") => drop(assert_round_trip::<PerconaPGBackup>(&path)),
            Some("PerconaPGRestore") => drop(assert_round_trip::<PerconaPGRestore>(&path)),
            other => panic!("{path}: unexpected kind {other:?}"),
        }
        seen += 1;
    }
    assert!(seen >= 8, "expected at least 8 fixtures, found {seen}");
}

/// The checker itself notices a dropped field (so the round-trip tests can fail).
#[test]
fn round_trip_checker_detects_lost_fields() {
    let input: Value = serde_json::json!({"spec": {"a": 1, "b": ["x"], "q": 2.0}});
    let output: Value = serde_json::json!({"spec": {"a": 1, "q": "2"}});
    let mut missing = Vec::new();
    missing_leaves(&input, Some(&output), "", &mut missing);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].starts_with(".spec.b[0]"));
}

/// cr.yaml with every comment removed at once: not a sensible cluster, but it exercises every
/// field the upstream example documents in one go.
#[test]
fn fully_uncommented_cr_round_trips() {
    let cr: PerconaPGCluster = assert_round_trip(&format!(
        "{FIXTURES}/roundtrip-only/cr-all-uncommented.yaml"
    ));
    assert_eq!(cr.spec.users.len(), 1);
    assert_eq!(cr.repos().len(), 4);
    assert!(
        cr.spec
            .data_source
            .as_ref()
            .is_some_and(|d| d.pgbackrest.is_some())
    );
}

#[test]
fn helpers_apply_upstream_defaults() {
    use tusk_core::api::defaults;
    let cr: PerconaPGCluster = assert_round_trip(&format!("{SHARED}/cr.yaml"));
    assert_eq!(cr.port(), defaults::POSTGRES_PORT);
    assert_eq!(cr.cr_version(), "2.9.0");
    assert!(cr.backups_enabled());
    assert!(!cr.is_paused() && !cr.is_unmanaged() && !cr.is_standby());
    assert!(!cr.has_finalizer(defaults::FINALIZER_DELETE_PVC));
    let p = cr.patroni();
    assert_eq!(
        (
            p.leader_lease_duration_seconds(),
            p.sync_period_seconds(),
            p.port()
        ),
        (30, 10, 8008)
    );
    assert_eq!(cr.desired_instances(), 3);
    assert_eq!(cr.instance_sets()[0].effective_name(0), "instance1");
    let meta: PerconaPGCluster =
        assert_round_trip(&format!("{FIXTURES}/cluster-metadata-tls.yaml"));
    assert!(meta.has_finalizer(defaults::FINALIZER_DELETE_PVC));
    let paused: PerconaPGCluster =
        assert_round_trip(&format!("{FIXTURES}/cluster-pause-unmanaged.yaml"));
    assert!(paused.is_paused() && paused.is_unmanaged());
    let standby: PerconaPGCluster = assert_round_trip(&format!("{FIXTURES}/cluster-standby.yaml"));
    assert!(standby.is_standby());
}

/// A status state outside tusk's enum (upstream writes "" for a new backup) reads as absent
/// instead of making the whole object unreadable.
#[test]
fn unknown_status_states_read_as_absent() {
    let b: PerconaPGBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGBackup",
        "metadata": {"name": "b"}, "spec": {"pgCluster": "c", "repoName": "repo1"},
        "status": {"state": "", "jobName": "j"}
    }))
    .expect("backup with an empty state");
    let status = b.status.expect("status");
    assert_eq!(status.state, None);
    assert_eq!(status.job_name.as_deref(), Some("j"));
    let c: PerconaPGCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGCluster",
        "metadata": {"name": "c"},
        "spec": {"postgresVersion": 16, "instances": [], "backups": {}},
        "status": {"state": "weird", "host": "h"}
    }))
    .expect("cluster with an unknown state");
    assert_eq!(c.status.as_ref().and_then(|s| s.state), None);
    let r: PerconaPGRestore = serde_json::from_value(serde_json::json!({
        "apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGRestore",
        "metadata": {"name": "r"}, "spec": {"pgCluster": "c"},
        "status": {"state": "Succeeded"}
    }))
    .expect("restore");
    assert_eq!(
        r.status.and_then(|s| s.state),
        Some(tusk_core::api::RestoreState::Succeeded)
    );
}
