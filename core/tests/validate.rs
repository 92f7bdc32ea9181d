//! Table tests of every validation rule: the upstream example with one change, the exact path
//! reported, and a fragment of the message.

use rstest::rstest;
use serde_json::{Value, json};
use tusk_core::api::{PerconaPGBackup, PerconaPGCluster, PerconaPGRestore};
use tusk_core::validate::{
    FieldError, validate, validate_backup, validate_backup_for, validate_restore,
};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/percona");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn base() -> Value {
    yaml(&format!("{SHARED}/cr.yaml"))
}

/// Sets (or, for `null`, removes) the value at a JSON pointer, creating objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut parts: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = parts.pop().expect("pointer has a last segment");
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Array(a) => &mut a[p.parse::<usize>().expect("index")],
            Value::Object(m) => m.entry(p).or_insert_with(|| json!({})),
            other => panic!("cannot descend into {other}"),
        };
    }
    match cur {
        Value::Array(a) => {
            let i: usize = last.parse().expect("index");
            if value.is_null() {
                a.remove(i);
            } else if i == a.len() {
                a.push(value);
            } else {
                a[i] = value;
            }
        }
        Value::Object(m) => {
            if value.is_null() {
                m.remove(&last);
            } else {
                m.insert(last, value);
            }
        }
        other => panic!("cannot set in {other}"),
    }
}

fn cluster(changes: &[(&str, Value)]) -> PerconaPGCluster {
    let mut doc = base();
    for (p, v) in changes {
        set(&mut doc, p, v.clone());
    }
    serde_json::from_value(doc).expect("the changed CR still deserializes")
}

fn errors(changes: &[(&str, Value)]) -> Vec<FieldError> {
    match validate(&cluster(changes)) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

fn repo(name: &str) -> Value {
    json!({"name": name, "s3": {"bucket": "b", "endpoint": "e", "region": "r"}})
}

fn second_set(name: &str) -> Value {
    json!({"name": name, "dataVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

#[test]
fn upstream_example_is_valid() {
    let cr = cluster(&[]);
    let valid = validate(&cr).expect("cr.yaml is valid");
    assert_eq!(valid.name(), "cluster1");
}

#[test]
fn every_cluster_fixture_is_valid() {
    let mut n = 0;
    let mut paths: Vec<_> = std::fs::read_dir(FIXTURES)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("cluster-"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let cr: PerconaPGCluster =
            serde_json::from_value(yaml(&p.to_string_lossy())).expect("fixture parses");
        if let Err(errs) = validate(&cr) {
            panic!(
                "{} is invalid:\n{}",
                p.display(),
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} cluster fixtures");
}

#[test]
fn field_error_display_is_path_colon_message() {
    let e = FieldError::new("spec.port", "80 is not allowed");
    assert_eq!(e.to_string(), "spec.port: 80 is not allowed");
}

#[test]
fn all_errors_are_reported_at_once() {
    let errs = errors(&[
        ("/spec/postgresVersion", json!(9)),
        ("/spec/instances/0/replicas", json!(0)),
    ]);
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"spec.postgresVersion"), "{errs:?}");
    assert!(paths.contains(&"spec.instances[0].replicas"), "{errs:?}");
}

#[rstest]
// postgresVersion
#[case::pg_version_low(&[("/spec/postgresVersion", json!(11))], "spec.postgresVersion", "use a major version from 12 to 18")]
#[case::pg_version_high(&[("/spec/postgresVersion", json!(19))], "spec.postgresVersion", "19 is not supported")]
#[case::pg_version_negative(&[("/spec/postgresVersion", json!(-1))], "spec.postgresVersion", "from 12 to 18")]
// names
#[case::cluster_name_uppercase(&[("/metadata/name", json!("Cluster1"))], "metadata.name", "lowercase")]
#[case::cluster_name_digit_first(&[("/metadata/name", json!("1cluster"))], "metadata.name", "must start with a lowercase letter")]
#[case::cluster_name_missing(&[("/metadata/name", Value::Null)], "metadata.name", "is required")]
#[case::cluster_name_too_long(&[("/metadata/name", json!("a".repeat(64)))], "metadata.name", "at most 63")]
// instance sets
#[case::no_instances(&[("/spec/instances", json!([]))], "spec.instances", "at least one instance set")]
#[case::set_name_invalid(&[("/spec/instances/0/name", json!("Set_1"))], "spec.instances[0].name", "lowercase letters, digits and '-'")]
#[case::set_name_dash_end(&[("/spec/instances/0/name", json!("set-"))], "spec.instances[0].name", "starting and ending")]
#[case::set_name_duplicate(&[("/spec/instances/1", second_set("instance1"))], "spec.instances[1].name", "used twice")]
#[case::set_name_empty_with_two(&[("/spec/instances/1", second_set(""))], "spec.instances[1].name", "more than one instance set")]
#[case::set_name_too_long(&[("/spec/instances/0/name", json!("a".repeat(40)))], "spec.instances[0].name", "at most 46")]
#[case::replicas_zero(&[("/spec/instances/0/replicas", json!(0))], "spec.instances[0].replicas", "at least 1 replica")]
#[case::replicas_negative(&[("/spec/instances/0/replicas", json!(-3))], "spec.instances[0].replicas", "-3 is not allowed")]
#[case::min_available_negative(&[("/spec/instances/0/minAvailable", json!(-1))], "spec.instances[0].minAvailable", "negative")]
#[case::min_available_bad_string(&[("/spec/instances/0/minAvailable", json!("half"))], "spec.instances[0].minAvailable", "percentage")]
#[case::tablespace_name(&[("/spec/instances/0/tablespaceVolumes", json!([{"name": "User", "dataVolumeClaimSpec": {}}]))], "spec.instances[0].tablespaceVolumes[0].name", "not a valid tablespace name")]
// ports and patroni
#[case::port_low(&[("/spec/port", json!(80))], "spec.port", "1024 to 65535")]
#[case::patroni_port(&[("/spec/patroni/port", json!(70000))], "spec.patroni.port", "1024 to 65535")]
#[case::pgbouncer_port(&[("/spec/proxy/pgBouncer/port", json!(10))], "spec.proxy.pgBouncer.port", "1024 to 65535")]
#[case::pgbouncer_replicas(&[("/spec/proxy/pgBouncer/replicas", json!(-1))], "spec.proxy.pgBouncer.replicas", "negative")]
#[case::lease_low(&[("/spec/patroni/leaderLeaseDurationSeconds", json!(2))], "spec.patroni.leaderLeaseDurationSeconds", "minimum of 3")]
#[case::sync_zero(&[("/spec/patroni/syncPeriodSeconds", json!(0))], "spec.patroni.syncPeriodSeconds", "minimum of 1")]
#[case::sync_not_below_lease(&[("/spec/patroni/syncPeriodSeconds", json!(30))], "spec.patroni.syncPeriodSeconds", "less than leaderLeaseDurationSeconds (30)")]
#[case::replica_method(&[("/spec/patroni/createReplicaMethods", json!(["pgbackrest", "rsync"]))], "spec.patroni.createReplicaMethods[1]", "basebackup or pgbackrest")]
#[case::failover_needs_target(&[("/spec/patroni/switchover", json!({"enabled": true, "type": "Failover"}))], "spec.patroni.switchover.targetInstance", "Failover")]
#[case::dcs_wal_level(&[("/spec/patroni/dynamicConfiguration", json!({"postgresql": {"parameters": {"wal_level": "minimal"}}}))], "spec.patroni.dynamicConfiguration.postgresql.parameters.wal_level", "replica or logical")]
// repositories and schedules
#[case::repo_name_bad(&[("/spec/backups/pgbackrest/repos/0/name", json!("repo5"))], "spec.backups.pgbackrest.repos[0].name", "use repo1, repo2, repo3 or repo4")]
#[case::repo_duplicate(&[("/spec/backups/pgbackrest/repos/1", repo("repo1"))], "spec.backups.pgbackrest.repos[1].name", "defined twice")]
#[case::too_many_repos(&[("/spec/backups/pgbackrest/repos/1", repo("repo2")), ("/spec/backups/pgbackrest/repos/2", repo("repo3")), ("/spec/backups/pgbackrest/repos/3", repo("repo4")), ("/spec/backups/pgbackrest/repos/4", repo("repo4"))], "spec.backups.pgbackrest.repos", "at most 4")]
#[case::repo_two_storages(&[("/spec/backups/pgbackrest/repos/0/gcs", json!({"bucket": "b"}))], "spec.backups.pgbackrest.repos[0]", "several are set")]
#[case::repo_no_storage(&[("/spec/backups/pgbackrest/repos/0/volume", Value::Null)], "spec.backups.pgbackrest.repos[0]", "none is set")]
#[case::repo_s3_empty_bucket(&[("/spec/backups/pgbackrest/repos/1", json!({"name": "repo2", "s3": {"bucket": "", "endpoint": "e", "region": "r"}}))], "spec.backups.pgbackrest.repos[1].s3.bucket", "must not be empty")]
#[case::no_repos(&[("/spec/backups/pgbackrest/repos", json!([])), ("/spec/backups/pgbackrest/manual", Value::Null)], "spec.backups.pgbackrest.repos", "at least one repository")]
#[case::cron_garbage(&[("/spec/backups/pgbackrest/repos/0/schedules/full", json!("every sunday"))], "spec.backups.pgbackrest.repos[0].schedules.full", "use 5")]
#[case::cron_six_fields(&[("/spec/backups/pgbackrest/repos/0/schedules/differential", json!("0 0 1 * * 6"))], "spec.backups.pgbackrest.repos[0].schedules.differential", "has 6 fields")]
#[case::cron_zero_step(&[("/spec/backups/pgbackrest/repos/0/schedules/full", json!("*/0 * * * *"))], "spec.backups.pgbackrest.repos[0].schedules.full", "not a valid cron schedule")]
#[case::cron_tz_prefix(&[("/spec/backups/pgbackrest/repos/0/schedules/full", json!("TZ=UTC 0 0 * * *"))], "spec.backups.pgbackrest.repos[0].schedules.full", "use 5")]
#[case::cron_out_of_range(&[("/spec/backups/pgbackrest/repos/0/schedules/incremental", json!("61 0 * * *"))], "spec.backups.pgbackrest.repos[0].schedules.incremental", "not a valid cron schedule")]
#[case::snapshot_cron(&[("/spec/backups/volumeSnapshots", json!({"className": "c", "schedule": "x y z"}))], "spec.backups.volumeSnapshots.schedule", "fields")]
#[case::snapshot_class(&[("/spec/backups/volumeSnapshots", json!({"schedule": "0 0 * * 6"}))], "spec.backups.volumeSnapshots.className", "is required")]
#[case::manual_repo_missing(&[("/spec/backups/pgbackrest/manual/repoName", json!("repo2"))], "spec.backups.pgbackrest.manual.repoName", "not defined")]
#[case::manual_repo_bad(&[("/spec/backups/pgbackrest/manual/repoName", json!("repository"))], "spec.backups.pgbackrest.manual.repoName", "not a repository name")]
#[case::restore_repo_missing(&[("/spec/backups/pgbackrest/restore", json!({"repoName": "repo3"}))], "spec.backups.pgbackrest.restore.repoName", "not defined")]
#[case::jobs_ttl(&[("/spec/backups/pgbackrest/jobs", json!({"ttlSecondsAfterFinished": 10}))], "spec.backups.pgbackrest.jobs.ttlSecondsAfterFinished", "minimum of 60")]
#[case::jobs_restart(&[("/spec/backups/pgbackrest/jobs", json!({"restartPolicy": "Always"}))], "spec.backups.pgbackrest.jobs.restartPolicy", "OnFailure or Never")]
// users
#[case::user_name_upper(&[("/spec/users", json!([{"name": "Rhino"}]))], "spec.users[0].name", "not a valid user name")]
#[case::user_name_underscore(&[("/spec/users", json!([{"name": "my_user"}]))], "spec.users[0].name", "lowercase letters, digits or '-'")]
#[case::user_duplicate(&[("/spec/users", json!([{"name": "rhino"}, {"name": "rhino"}]))], "spec.users[1].name", "listed twice")]
#[case::user_db_empty(&[("/spec/users", json!([{"name": "rhino", "databases": [""]}]))], "spec.users[0].databases[0]", "1 to 63 bytes")]
#[case::user_db_long(&[("/spec/users", json!([{"name": "rhino", "databases": ["d".repeat(64)]}]))], "spec.users[0].databases[0]", "1 to 63 bytes")]
#[case::user_options_semicolon(&[("/spec/users", json!([{"name": "rhino", "options": "SUPERUSER; DROP"}]))], "spec.users[0].options", "';'")]
#[case::user_options_password(&[("/spec/users", json!([{"name": "rhino", "options": "LOGIN PASSWORD 'x'"}]))], "spec.users[0].options", "PASSWORD")]
#[case::user_secret_name(&[("/spec/users", json!([{"name": "rhino", "secretName": "Rhino_Creds"}]))], "spec.users[0].secretName", "Secret name")]
#[case::user_public_schema_pg14(&[("/spec/postgresVersion", json!(14)), ("/spec/users", json!([{"name": "rhino", "grantPublicSchemaAccess": true}]))], "spec.users[0].grantPublicSchemaAccess", "15 or later")]
// mutually exclusive and dependent options
#[case::two_data_sources(&[("/spec/dataSource", json!({"postgresCluster": {"repoName": "repo1"}, "pgbackrest": {"stanza": "db", "repo": repo("repo1")}}))], "spec.dataSource", "mutually exclusive")]
#[case::pgbackrest_source_volume(&[("/spec/dataSource", json!({"pgbackrest": {"stanza": "db", "repo": {"name": "repo1", "volume": {"volumeClaimSpec": {}}}}}))], "spec.dataSource.pgbackrest.repo.volume", "cloud repository")]
#[case::pgbackrest_source_stanza(&[("/spec/dataSource", json!({"pgbackrest": {"stanza": "", "repo": repo("repo1")}}))], "spec.dataSource.pgbackrest.stanza", "must not be empty")]
#[case::source_pitr_without_target(&[("/spec/dataSource", json!({"postgresCluster": {"repoName": "repo1", "options": ["--type=time"]}}))], "spec.dataSource.postgresCluster.options", "needs --target")]
#[case::source_repo_name(&[("/spec/dataSource", json!({"postgresCluster": {"repoName": "r1"}}))], "spec.dataSource.postgresCluster.repoName", "not a repository name")]
#[case::standby_without_source(&[("/spec/standby", json!({"enabled": true}))], "spec.standby", "repoName")]
#[case::standby_unknown_repo(&[("/spec/standby", json!({"enabled": true, "repoName": "repo2"}))], "spec.standby.repoName", "not defined")]
#[case::replication_tls_alone(&[("/spec/secrets", json!({"customReplicationTLSSecret": {"name": "r"}}))], "spec.secrets.customReplicationTLSSecret", "customTLSSecret")]
#[case::two_stat_extensions(&[("/spec/extensions", json!({"builtin": {"pg_stat_monitor": true, "pg_stat_statements": true}}))], "spec.extensions.builtin", "cannot both be enabled")]
#[case::pmm_enabled_without_host(&[("/spec/pmm/enabled", json!(true)), ("/spec/pmm/serverHost", json!(""))], "spec.pmm.serverHost", "required when PMM is enabled")]
#[case::hba_rule_incomplete(&[("/spec/authentication", json!({"rules": [{"connection": "host"}]}))], "spec.authentication.rules[0].method", "required unless a raw hba line")]
#[case::hba_rule_bad_connection(&[("/spec/authentication", json!({"rules": [{"connection": "tcp", "method": "md5"}]}))], "spec.authentication.rules[0].connection", "hostssl")]
#[case::expose_cidr(&[("/spec/expose", json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0"]}))], "spec.expose.loadBalancerSourceRanges[0]", "not a CIDR")]
#[case::expose_node_port(&[("/spec/exposeReplicas", json!({"type": "NodePort", "nodePort": 0}))], "spec.exposeReplicas.nodePort", "not a port")]
// quantities
#[case::storage_word(&[("/spec/instances/0/dataVolumeClaimSpec/resources/requests/storage", json!("banana"))], "spec.instances[0].dataVolumeClaimSpec.resources.requests.storage", "not a quantity")]
#[case::storage_unit_case(&[("/spec/instances/0/dataVolumeClaimSpec/resources/requests/storage", json!("1GB"))], "spec.instances[0].dataVolumeClaimSpec.resources.requests.storage", "e.g. 1Gi")]
#[case::cpu_words(&[("/spec/proxy/pgBouncer/resources", json!({"limits": {"cpu": "2 cores"}}))], "spec.proxy.pgBouncer.resources.limits.cpu", "not a quantity")]
#[case::repo_size(&[("/spec/backups/pgbackrest/repos/0/volume/volumeClaimSpec/resources/requests/storage", json!("1 Gi"))], "spec.backups.pgbackrest.repos[0].volume.volumeClaimSpec.resources.requests.storage", "not a quantity")]
// parameters the operator owns
#[case::param_port(&[("/spec/config", json!({"parameters": {"port": 5433}}))], "spec.config.parameters.port", "spec.port")]
#[case::param_ssl(&[("/spec/config", json!({"parameters": {"ssl_ciphers": "x"}}))], "spec.config.parameters.ssl_ciphers", "TLS")]
#[case::param_archive(&[("/spec/config", json!({"parameters": {"archive_command": "true"}}))], "spec.config.parameters.archive_command", "archiving")]
#[case::param_recovery(&[("/spec/config", json!({"parameters": {"recovery_target_time": "x"}}))], "spec.config.parameters.recovery_target_time", "restore")]
#[case::param_wal_level(&[("/spec/config", json!({"parameters": {"wal_level": "minimal"}}))], "spec.config.parameters.wal_level", "replica")]
#[case::param_wal_level_replica(&[("/spec/config", json!({"parameters": {"wal_level": "replica"}}))], "spec.config.parameters.wal_level", "only \"logical\" may be set")]
#[case::param_socket(&[("/spec/config", json!({"parameters": {"unix_socket_group": "x"}}))], "spec.config.parameters.unix_socket_group", "domain socket")]
#[case::param_logging_collector(&[("/spec/config", json!({"parameters": {"logging_collector": "off"}}))], "spec.config.parameters.logging_collector", "unsafe")]
fn invalid_cluster(#[case] changes: &[(&str, Value)], #[case] path: &str, #[case] fragment: &str) {
    let errs = errors(changes);
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.message.contains(fragment)),
        "expected an error at {path} containing {fragment:?}; got:\n{}",
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[rstest]
#[case::pg12(&[("/spec/postgresVersion", json!(12))])]
#[case::pg15_public_schema(&[("/spec/postgresVersion", json!(15)), ("/spec/users", json!([{"name": "rhino", "grantPublicSchemaAccess": true}]))])]
#[case::unnamed_single_set(&[("/spec/instances/0/name", json!(""))])]
#[case::two_sets(&[("/spec/instances/1", second_set("instance2"))])]
#[case::set_name_digit_first(&[("/spec/instances/0/name", json!("00"))])]
#[case::name_46(&[("/spec/instances/0/name", json!("a".repeat(46 - "cluster1".len())))])]
#[case::four_repos(&[("/spec/backups/pgbackrest/repos/1", repo("repo2")), ("/spec/backups/pgbackrest/repos/2", repo("repo3")), ("/spec/backups/pgbackrest/repos/3", repo("repo4"))])]
#[case::backups_disabled(&[("/spec/backups", json!({"enabled": false}))])]
#[case::cron_nickname(&[("/spec/backups/pgbackrest/repos/0/schedules/full", json!("@daily"))])]
#[case::cron_midnight(&[("/spec/backups/pgbackrest/repos/0/schedules/full", json!("@midnight"))])]
#[case::cron_question_mark(&[("/spec/backups/pgbackrest/repos/0/schedules/full", json!("0 0 ? * 6"))])]
#[case::cron_ranges(&[("/spec/backups/pgbackrest/repos/0/schedules/differential", json!("0 1 * * 1-6"))])]
#[case::cron_names(&[("/spec/backups/pgbackrest/repos/0/schedules/incremental", json!("*/15 * * JAN-DEC MON-FRI"))])]
#[case::pgbouncer_zero(&[("/spec/proxy/pgBouncer/replicas", json!(0))])]
#[case::no_proxy(&[("/spec/proxy", Value::Null)])]
#[case::min_available_percent(&[("/spec/instances/0/minAvailable", json!("50%"))])]
#[case::standby_host(&[("/spec/standby", json!({"enabled": true, "host": "10.0.0.1", "port": 5432}))])]
#[case::standby_disabled_empty(&[("/spec/standby", json!({"enabled": false}))])]
#[case::hba_raw(&[("/spec/authentication", json!({"rules": [{"hba": "host all all 10.0.0.0/8 md5"}]}))])]
#[case::ssl_tuning_allowed(&[("/spec/config", json!({"parameters": {"ssl_groups": "X25519", "ssl_ecdh_curve": "prime256v1"}}))])]
#[case::wal_level_logical(&[("/spec/config", json!({"parameters": {"wal_level": "logical", "max_connections": 100}}))])]
#[case::pitr_source(&[("/spec/dataSource", json!({"postgresCluster": {"repoName": "repo1", "options": ["--type=time", "--target=\"2021-06-09 14:15:11-04\""]}}))])]
#[case::failover_with_target(&[("/spec/patroni/switchover", json!({"enabled": true, "type": "Failover", "targetInstance": "cluster1-instance1-abcd"}))])]
#[case::ipv6_cidr(&[("/spec/expose", json!({"loadBalancerSourceRanges": ["fd00::/8"]}))])]
fn valid_cluster(#[case] changes: &[(&str, Value)]) {
    let errs = errors(changes);
    assert!(
        errs.is_empty(),
        "expected valid; got:\n{}",
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn backup(spec: Value) -> PerconaPGBackup {
    serde_json::from_value(json!({"apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGBackup", "metadata": {"name": "b"}, "spec": spec}))
        .expect("backup deserializes")
}

fn restore(spec: Value) -> PerconaPGRestore {
    serde_json::from_value(json!({"apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGRestore", "metadata": {"name": "r"}, "spec": spec}))
        .expect("restore deserializes")
}

#[rstest]
#[case::ok(json!({"pgCluster": "cluster1", "repoName": "repo1"}), None)]
#[case::ok_full(json!({"pgCluster": "cluster1", "repoName": "repo2", "options": ["--type=full"]}), None)]
#[case::snapshot_without_repo(json!({"pgCluster": "cluster1", "method": "volumeSnapshot"}), None)]
#[case::no_repo(json!({"pgCluster": "cluster1"}), Some(("spec.repoName", "required when method is pgbackrest")))]
#[case::bad_repo(json!({"pgCluster": "cluster1", "repoName": "repo9"}), Some(("spec.repoName", "not a repository name")))]
#[case::no_cluster(json!({"pgCluster": "", "repoName": "repo1"}), Some(("spec.pgCluster", "is required")))]
#[case::bad_type(json!({"pgCluster": "c", "repoName": "repo1", "options": ["--type=weekly"]}), Some(("spec.options[0]", "full, diff or incr")))]
fn backups(#[case] spec: Value, #[case] expect: Option<(&str, &str)>) {
    let result = validate_backup(&backup(spec));
    match expect {
        None => assert!(result.is_ok(), "{result:?}"),
        Some((path, fragment)) => {
            let errs = result.expect_err("invalid");
            assert!(
                errs.iter()
                    .any(|e| e.path == path && e.message.contains(fragment)),
                "{errs:?}"
            );
        }
    }
}

#[test]
fn backup_repo_must_exist_in_its_cluster() {
    let cr = cluster(&[]);
    assert!(
        validate_backup_for(
            &backup(json!({"pgCluster": "cluster1", "repoName": "repo1"})),
            &cr
        )
        .is_ok()
    );
    let errs = validate_backup_for(
        &backup(json!({"pgCluster": "cluster1", "repoName": "repo2"})),
        &cr,
    )
    .expect_err("repo2 missing");
    assert_eq!(errs[0].path, "spec.repoName");
    assert!(errs[0].message.contains("(defined: repo1)"), "{}", errs[0]);
}

#[rstest]
#[case::ok(json!({"pgCluster": "cluster1", "repoName": "repo1"}), None)]
#[case::pitr(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time", "--target=\"2022-11-30 15:12:11+03\""]}), None)]
#[case::snapshot(json!({"pgCluster": "cluster1", "volumeSnapshotBackupName": "backup1"}), None)]
#[case::set(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--set=20240101-000000F"]}), None)]
#[case::time_without_target(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time"]}), Some(("spec.options", "needs --target")))]
#[case::xid_without_target(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=xid"]}), Some(("spec.options", "needs --target")))]
#[case::bad_type(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=yesterday"]}), Some(("spec.options", "not a pgBackRest restore type")))]
#[case::pitr_iso(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time", "--target=2022-11-30T15:12:11.25Z"]}), None)]
#[case::pitr_zone_name(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time --target='2022-11-30 15:12 UTC'"]}), None)]
#[case::pitr_word(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time", "--target=yesterday"]}), Some(("spec.options", "is not a time")))]
#[case::pitr_no_clock(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time", "--target=\"2022-11-30\""]}), Some(("spec.options", "is not a time")))]
#[case::pitr_bad_month(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=time", "--target=\"2022-1-30 10:00:00\""]}), Some(("spec.options", "is not a time")))]
#[case::lsn(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=lsn", "--target=0/3000028"]}), None)]
#[case::lsn_bad(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=lsn", "--target=3000028"]}), Some(("spec.options", "not a WAL location")))]
#[case::xid(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=xid", "--target=1234"]}), None)]
#[case::xid_bad(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=xid", "--target=abc"]}), Some(("spec.options", "not a transaction id")))]
#[case::name_any(json!({"pgCluster": "cluster1", "repoName": "repo1", "options": ["--type=name", "--target=before upgrade"]}), None)]
#[case::no_source(json!({"pgCluster": "cluster1"}), Some(("spec", "either repoName or volumeSnapshotBackupName")))]
#[case::bad_repo(json!({"pgCluster": "cluster1", "repoName": "s3"}), Some(("spec.repoName", "not a repository name")))]
#[case::no_cluster(json!({"pgCluster": "", "repoName": "repo1"}), Some(("spec.pgCluster", "is required")))]
fn restores(#[case] spec: Value, #[case] expect: Option<(&str, &str)>) {
    let result = validate_restore(&restore(spec));
    match expect {
        None => assert!(result.is_ok(), "{result:?}"),
        Some((path, fragment)) => {
            let errs = result.expect_err("invalid");
            assert!(
                errs.iter()
                    .any(|e| e.path == path && e.message.contains(fragment)),
                "{errs:?}"
            );
        }
    }
}

#[test]
fn upstream_backup_and_restore_examples_are_valid() {
    let b: PerconaPGBackup =
        serde_json::from_value(yaml(&format!("{SHARED}/backup.yaml"))).expect("backup");
    validate_backup(&b).expect("backup.yaml valid");
    validate_backup_for(&b, &cluster(&[])).expect("backup.yaml fits cr.yaml");
    let r: PerconaPGRestore =
        serde_json::from_value(yaml(&format!("{SHARED}/restore.yaml"))).expect("restore");
    validate_restore(&r).expect("restore.yaml valid");
    let b: PerconaPGBackup =
        serde_json::from_value(yaml(&format!("{FIXTURES}/backup-all-options.yaml")))
            .expect("fixture");
    validate_backup(&b).expect("backup fixture valid");
    for f in ["restore-pitr.yaml", "restore-volume-snapshot.yaml"] {
        let r: PerconaPGRestore =
            serde_json::from_value(yaml(&format!("{FIXTURES}/{f}"))).expect("fixture");
        validate_restore(&r).expect("restore fixture valid");
    }
}

mod parsing {
    use super::*;
    use tusk_core::validate::{parse_backup, parse_cluster, parse_restore, unknown_fields};

    #[test]
    fn examples_and_fixtures_parse_without_unknown_fields() {
        let mut files = vec![
            format!("{SHARED}/cr.yaml"),
            format!("{SHARED}/backup.yaml"),
            format!("{SHARED}/restore.yaml"),
            format!("{FIXTURES}/roundtrip-only/cr-all-uncommented.yaml"),
        ];
        for e in std::fs::read_dir(FIXTURES).expect("fixtures").flatten() {
            if e.path().extension().is_some_and(|x| x == "yaml") {
                files.push(e.path().to_string_lossy().into_owned());
            }
        }
        for f in files {
            let doc = yaml(&f);
            let unknown = match doc["kind"].as_str() {
                Some("PerconaPGCluster") => {
                    unknown_fields(&doc, &parse_cluster(doc.clone()).expect(&f))
                }
                Some("PerconaPGBackup") => {
                    unknown_fields(&doc, &parse_backup(doc.clone()).expect(&f))
                }
                Some("PerconaPGRestore") => {
                    unknown_fields(&doc, &parse_restore(doc.clone()).expect(&f))
                }
                other => panic!("{f}: kind {other:?}"),
            };
            assert!(unknown.is_empty(), "{f}: {unknown:?}");
        }
    }

    fn parse_errors(changes: &[(&str, Value)]) -> Vec<String> {
        let mut doc = base();
        for (p, v) in changes {
            set(&mut doc, p, v.clone());
        }
        match parse_cluster(doc) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[rstest]
    #[case::wrong_type(&[("/spec/instances/0/replicas", json!("three"))], "spec.instances[0].replicas: invalid type: string \"three\", expected i32")]
    #[case::missing_version(&[("/spec/postgresVersion", Value::Null)], "spec.postgresVersion: is required")]
    #[case::missing_pvc(&[("/spec/instances/0/dataVolumeClaimSpec", Value::Null)], "spec.instances[0].dataVolumeClaimSpec: is required")]
    #[case::bad_enum(&[("/spec/expose", json!({"type": "Ingress"}))], "spec.expose.type: unknown variant `Ingress`")]
    #[case::old_api(&[("/apiVersion", json!("pg.percona.com/v2beta1"))], "apiVersion: \"pg.percona.com/v2beta1\" is not served; use pgv2.percona.com/v2")]
    #[case::wrong_kind(&[("/kind", json!("PerconaPGBackup"))], "kind: \"PerconaPGBackup\" is not PerconaPGCluster")]
    fn parse_errors_name_the_field(#[case] changes: &[(&str, Value)], #[case] expected: &str) {
        let errs = parse_errors(changes);
        assert!(
            errs.iter().any(|e| e.starts_with(expected)),
            "expected {expected:?} in {errs:?}"
        );
    }

    #[test]
    fn unknown_fields_are_reported_with_their_path() {
        let mut doc = base();
        set(&mut doc, "/spec/instances/0/replica", json!(5));
        set(&mut doc, "/spec/backupz", json!({"a": 1}));
        set(&mut doc, "/spec/proxy/pgBouncer/labels", json!({}));
        let cr = parse_cluster(doc.clone()).expect("unknown fields do not stop parsing");
        let unknown: Vec<String> = unknown_fields(&doc, &cr)
            .iter()
            .map(|e| e.path.clone())
            .collect();
        assert_eq!(
            unknown,
            vec![
                "spec.backupz".to_owned(),
                "spec.instances[0].replica".to_owned()
            ]
        );
    }
}

#[test]
fn quantities_follow_the_kubernetes_grammar() {
    use tusk_core::validate::is_quantity;
    for ok in [
        "1Gi", "500Mi", "2", "250m", "0.5", ".5", "1.", "1e3", "1E-2", "+1k", "-1", "100Ti", "3Ei",
        "1.5G",
    ] {
        assert!(is_quantity(ok), "{ok} is a quantity");
    }
    for bad in [
        "", "Gi", "banana", "1GB", "1gi", "1 Gi", "1..5", ".", "1e", "1Gi ", "1iB", "--1", "1.2.3",
    ] {
        assert!(!is_quantity(bad), "{bad:?} is not a quantity");
    }
}
