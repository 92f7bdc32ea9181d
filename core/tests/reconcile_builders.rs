//! Unit tests of the object builders, through small CRs.

use rstest::rstest;
use serde_json::{Value, json};
use tusk_core::api::PerconaPGCluster;
use tusk_core::build::{
    Ctx, configmaps, instance, pdb, pgbouncer, secrets, services, sidecar_pvcs,
};

fn cr(spec: Value) -> PerconaPGCluster {
    let mut base = json!({
        "crVersion": "2.9.0",
        "postgresVersion": 17,
        "instances": [{"name": "i1", "replicas": 2, "dataVolumeClaimSpec": {"resources": {"requests": {"storage": "1Gi"}}}}],
        "backups": {"enabled": false},
    });
    configmaps::merge(&mut base, &spec);
    serde_json::from_value(json!({
        "apiVersion": "pgv2.percona.com/v2",
        "kind": "PerconaPGCluster",
        "metadata": {"name": "c", "namespace": "ns", "uid": "u"},
        "spec": base,
    }))
    .expect("test CR deserializes")
}

#[rstest]
#[case(json!({}), "ClusterIP", None)]
#[case(json!({"expose": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"], "annotations": {"a": "b"}}}), "LoadBalancer", Some("10.0.0.0/8"))]
#[case(json!({"expose": {"type": "NodePort", "nodePort": 30001}}), "NodePort", None)]
fn ha_service_follows_expose(#[case] spec: Value, #[case] ty: &str, #[case] range: Option<&str>) {
    let c = cr(spec);
    let ctx = Ctx::new(&c);
    let s = services::ha(&ctx);
    assert_eq!(s["metadata"]["name"], "c-ha");
    assert_eq!(s["spec"]["type"], ty);
    assert!(
        s["spec"].get("selector").is_none(),
        "Patroni owns the -ha Endpoints"
    );
    assert_eq!(s["spec"]["loadBalancerSourceRanges"][0].as_str(), range);
    if ty == "NodePort" {
        assert_eq!(s["spec"]["ports"][0]["nodePort"], 30001);
    }
    assert_eq!(s["metadata"]["ownerReferences"][0]["controller"], true);
}

#[test]
fn replicas_service_selects_replica_role() {
    let c = cr(json!({"exposeReplicas": {"type": "LoadBalancer"}}));
    let s = services::replicas(&Ctx::new(&c));
    assert_eq!(
        s["spec"]["selector"]["postgres-operator.crunchydata.com/role"],
        "replica"
    );
    assert_eq!(s["spec"]["type"], "LoadBalancer");
}

#[rstest]
#[case(1, None, None)]
#[case(2, None, Some(json!(1)))]
#[case(3, Some(json!("50%")), Some(json!("50%")))]
#[case(3, Some(json!(0)), None)]
fn instance_pdb(#[case] replicas: i32, #[case] min: Option<Value>, #[case] expect: Option<Value>) {
    let mut set = json!({"name": "i1", "replicas": replicas, "dataVolumeClaimSpec": {}});
    if let Some(m) = min {
        set["minAvailable"] = m;
    }
    let c = cr(json!({"instances": [set]}));
    let ctx = Ctx::new(&c);
    let p = pdb::instance_set(&ctx, &c.spec.instances[0]);
    assert_eq!(p.map(|p| p["spec"]["minAvailable"].clone()), expect);
}

#[test]
fn patroni_config_carries_spec_settings() {
    let c = cr(json!({
        "patroni": {
            "leaderLeaseDurationSeconds": 45,
            "syncPeriodSeconds": 15,
            "dynamicConfiguration": {
                "postgresql": {"parameters": {"max_connections": 300, "shared_preload_libraries": "timescaledb"}, "pg_hba": ["host all mytest 123.123.123.123/32 reject"]},
                "synchronous_mode": true
            }
        },
        "config": {"parameters": {"work_mem": "8MB"}},
        "tlsOnly": true,
    }));
    let ctx = Ctx::new(&c);
    let y = configmaps::patroni_yaml(&ctx);
    let dcs = &y["bootstrap"]["dcs"];
    assert_eq!(dcs["ttl"], 45);
    assert_eq!(dcs["loop_wait"], 15);
    assert_eq!(dcs["synchronous_mode"], true);
    let p = &dcs["postgresql"]["parameters"];
    assert_eq!(p["max_connections"], "300");
    assert_eq!(p["work_mem"], "8MB");
    assert_eq!(p["shared_preload_libraries"], "timescaledb,pgaudit");
    let hba: Vec<&str> = dcs["postgresql"]["pg_hba"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        hba.contains(&"hostssl all mytest 123.123.123.123/32 reject"),
        "{hba:?}"
    );
    assert_eq!(*hba.last().unwrap(), "hostssl all all all scram-sha-256");
    assert_eq!(
        y["kubernetes"]["role_label"],
        "postgres-operator.crunchydata.com/role"
    );
    assert_eq!(y["scope"], "c-ha");
}

#[test]
fn pgbackrest_config_covers_every_repo_kind() {
    let pvc = json!({"resources": {"requests": {"storage": "1Gi"}}});
    let c = cr(json!({"backups": {"enabled": true, "pgbackrest": {
    "global": {"repo1-retention-full": "14"},
    "repos": [
        {"name": "repo1", "volume": {"volumeClaimSpec": pvc}},
        {"name": "repo2", "s3": {"bucket": "b", "endpoint": "e", "region": "r"}},
        {"name": "repo3", "gcs": {"bucket": "g"}},
        {"name": "repo4", "azure": {"container": "a"}},
    ]}}}));
    let ctx = Ctx::new(&c);
    let cm = configmaps::pgbackrest(&ctx, &["c-i1-bbbb".to_string()]).expect("backups on");
    let inst = cm["data"]["pgbackrest_instance.conf"].as_str().unwrap();
    for line in [
        "repo1-host=c-repo-host-0.c-pods.ns.svc",
        "repo2-type=s3",
        "repo2-s3-bucket=b",
        "repo3-type=gcs",
        "repo4-type=azure",
        "repo4-azure-container=a",
        "repo1-retention-full=14",
        "pg1-path=/pgdata/pg17",
    ] {
        assert!(inst.lines().any(|l| l == line), "missing {line} in\n{inst}");
    }
    let repo = cm["data"]["pgbackrest_repo.conf"].as_str().unwrap();
    assert!(repo.contains("pg1-host=c-i1-bbbb-0.c-pods.ns.svc"));
}

#[test]
fn default_user_and_custom_secret_names() {
    let c = cr(json!({}));
    let roles = secrets::roles(&Ctx::new(&c));
    assert_eq!(roles[0].role, "c");
    assert_eq!(roles[0].secret, "c-pguser-c");
    assert_eq!(roles[0].databases, vec!["c".to_string()]);
    let c = cr(
        json!({"users": [{"name": "app", "secretName": "my-secret", "password": {"type": "AlphaNumeric"}}, {"name": "monitor"}]}),
    );
    let roles = secrets::roles(&Ctx::new(&c));
    let users: Vec<_> = roles
        .iter()
        .filter(|r| r.kind == secrets::RoleKind::User)
        .collect();
    assert_eq!(users.len(), 1, "monitor is reserved");
    assert_eq!(users[0].secret, "my-secret");
    assert!(users[0].alnum);
}

#[test]
fn user_secret_keys() {
    let c = cr(json!({"proxy": {"pgBouncer": {"replicas": 1}}}));
    let ctx = Ctx::new(&c);
    let role = &secrets::roles(&ctx)[0];
    let creds = secrets::Credentials {
        password: "p@ss".into(),
        verifier: Some("SCRAM-SHA-256$4096:x$y:z".into()),
    };
    let s = secrets::role_secret(&ctx, role, &creds, None);
    let get = |k: &str| {
        String::from_utf8(
            tusk_core::build::scram::unb64(s["data"][k].as_str().unwrap_or_else(|| panic!("{k}")))
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(get("user"), "c");
    assert_eq!(get("host"), "c-primary.ns.svc");
    assert_eq!(get("port"), "5432");
    assert_eq!(get("dbname"), "c");
    assert_eq!(get("uri"), "postgresql://c:p%40ss@c-primary.ns.svc:5432/c");
    assert_eq!(
        get("jdbc-uri"),
        "jdbc:postgresql://c-primary.ns.svc:5432/c?password=p%40ss&user=c"
    );
    assert_eq!(get("pgbouncer-host"), "c-pgbouncer.ns.svc");
    assert!(get("pgbouncer-uri").starts_with("postgresql://c:p%40ss@c-pgbouncer.ns.svc:5432/c"));
    assert!(
        s["metadata"].get("ownerReferences").is_none(),
        "password Secrets outlive the cluster"
    );
}

#[rstest]
#[case("2.6.0", false)]
#[case("2.9.0", true)]
fn pgbouncer_optional_from_2_9(#[case] v: &str, #[case] optional: bool) {
    let c = cr(json!({"crVersion": v}));
    assert_eq!(Ctx::new(&c).has_pgbouncer(), !optional);
}

#[rstest]
#[case(json!([]), false)]
#[case(json!([{"name": "user", "dataVolumeClaimSpec": {"resources": {"requests": {"storage": "2Gi"}}}}]), false)]
#[case(json!([{"name": "user", "dataVolumeClaimSpec": {"resources": {"requests": {"storage": "2Gi"}}}}, {"name": "archive", "dataVolumeClaimSpec": {"storageClassName": "slow", "resources": {"requests": {"storage": "5Gi"}}}}]), true)]
fn tablespace_volumes_get_a_pvc_and_a_mount_per_instance(
    #[case] tablespaces: Value,
    #[case] wal: bool,
) {
    let mut set = json!({"name": "i1", "replicas": 2, "dataVolumeClaimSpec": {"resources": {"requests": {"storage": "1Gi"}}}, "tablespaceVolumes": tablespaces});
    if wal {
        set["walVolumeClaimSpec"] = json!({"resources": {"requests": {"storage": "1Gi"}}});
    }
    let c = cr(json!({"instances": [set]}));
    let ctx = Ctx::new(&c);
    let set = &c.spec.instances[0];
    let pvcs = instance::pvcs(&ctx, set, "c-i1-abcd");
    let names: Vec<&str> = pvcs
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut expected = vec!["c-i1-abcd-pgdata".to_string()];
    if wal {
        expected.push("c-i1-abcd-pgwal".into());
    }
    let ts = tablespaces.as_array().unwrap();
    for t in ts {
        expected.push(format!(
            "c-i1-abcd-{}-tablespace",
            t["name"].as_str().unwrap()
        ));
    }
    assert_eq!(names, expected);
    let sts = instance::statefulset(&ctx, set, "c-i1-abcd", 1, false);
    let pod = &sts["spec"]["template"]["spec"];
    let db = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database")
        .expect("database container");
    for t in ts {
        let name = t["name"].as_str().unwrap();
        let pvc = pvcs
            .iter()
            .find(|p| p["metadata"]["name"] == format!("c-i1-abcd-{name}-tablespace"))
            .unwrap();
        assert_eq!(
            pvc["metadata"]["labels"]["postgres-operator.crunchydata.com/role"],
            "tablespace"
        );
        assert_eq!(
            pvc["metadata"]["labels"]["postgres-operator.crunchydata.com/instance"],
            "c-i1-abcd"
        );
        assert_eq!(pvc["spec"], t["dataVolumeClaimSpec"]);
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"])
            .expect("the pod mounts the tablespace claim");
        let mount = db["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume["name"])
            .expect("the database container mounts it");
        assert_eq!(mount["mountPath"], format!("/tablespaces/{name}"));
    }
    let tablespace_mounts = db["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["mountPath"]
                .as_str()
                .unwrap()
                .starts_with("/tablespaces/")
        })
        .count();
    assert_eq!(tablespace_mounts, ts.len());
}

/// `instances[].sidecarPVCs` (crVersion ≥ 2.9.0): one claim per entry, named as written and
/// shared by the set's instances, labelled like the set's data, unowned, mounted in each pod.
#[rstest]
#[case::before_2_9("2.8.0", false)]
#[case::from_2_9("2.9.0", true)]
fn instance_sidecar_pvcs_are_claimed_and_mounted(#[case] v: &str, #[case] on: bool) {
    let c = cr(json!({"crVersion": v, "instances": [{
        "name": "i1", "replicas": 2,
        "metadata": {"labels": {"team": "db"}},
        "dataVolumeClaimSpec": {"resources": {"requests": {"storage": "1Gi"}}},
        "sidecars": [{"name": "side", "image": "busybox"}],
        "sidecarPVCs": [{"name": "side-data", "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "3Gi"}}}}],
    }]}));
    let ctx = Ctx::new(&c);
    let pvcs = sidecar_pvcs::all(&ctx);
    let set = &c.spec.instances[0];
    let sts = instance::statefulset(&ctx, set, "c-i1-abcd", 1, false);
    let mounted = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "side-data")
        .cloned();
    if !on {
        assert!(pvcs.is_empty(), "{pvcs:?}");
        assert_eq!(mounted, None);
        return;
    }
    assert_eq!(pvcs.len(), 1, "one claim for the set, not one per instance");
    let p = &pvcs[0];
    assert_eq!(p["kind"], "PersistentVolumeClaim");
    assert_eq!(p["metadata"]["name"], "side-data");
    assert_eq!(p["metadata"]["namespace"], "ns");
    assert!(
        p["metadata"].get("ownerReferences").is_none(),
        "outlives the cluster"
    );
    let l = &p["metadata"]["labels"];
    assert_eq!(l["postgres-operator.crunchydata.com/cluster"], "c");
    assert_eq!(l["postgres-operator.crunchydata.com/instance-set"], "i1");
    assert_eq!(l["postgres-operator.crunchydata.com/data"], "postgres");
    assert_eq!(l["app.kubernetes.io/component"], "pg");
    assert_eq!(
        l["app.kubernetes.io/managed-by"],
        "percona-postgresql-operator"
    );
    assert_eq!(l["team"], "db");
    assert!(
        l.get("postgres-operator.crunchydata.com/instance")
            .is_none()
    );
    assert!(l.get("pgv2.percona.com/version").is_none());
    assert_eq!(p["spec"]["storageClassName"], "fast");
    assert_eq!(p["spec"]["resources"]["requests"]["storage"], "3Gi");
    assert_eq!(
        mounted,
        Some(json!({"name": "side-data", "persistentVolumeClaim": {"claimName": "side-data"}}))
    );
}

/// pgBouncer's and the repo host's sidecar claims are created whenever listed, and mounted
/// only along with their sidecars.
#[rstest]
#[case::without_sidecars(json!([]), false)]
#[case::with_sidecars(json!([{"name": "side", "image": "busybox"}]), true)]
fn pgbouncer_and_repo_host_sidecar_pvcs(#[case] sidecars: Value, #[case] mounted: bool) {
    let claim =
        |n: &str| json!([{"name": n, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]);
    let c = cr(json!({
        "proxy": {"pgBouncer": {"replicas": 1, "sidecars": sidecars, "sidecarPVCs": claim("bouncer-side")}},
        "backups": {"enabled": true, "pgbackrest": {
            "repoHost": {"sidecars": sidecars, "sidecarPVCs": claim("repo-side")},
            "repos": [{"name": "repo1", "volume": {"volumeClaimSpec": {"resources": {"requests": {"storage": "1Gi"}}}}}],
        }},
    }));
    let ctx = Ctx::new(&c);
    let pvcs = sidecar_pvcs::all(&ctx);
    let names: Vec<&str> = pvcs
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["repo-side", "bouncer-side"]);
    let repo = &pvcs[0]["metadata"]["labels"];
    assert_eq!(repo["postgres-operator.crunchydata.com/pgbackrest"], "");
    assert!(
        repo.get("app.kubernetes.io/component").is_none(),
        "Percona gives the repo host's claims no component"
    );
    let bouncer = &pvcs[1]["metadata"]["labels"];
    assert_eq!(
        bouncer["postgres-operator.crunchydata.com/role"],
        "pgbouncer"
    );
    assert_eq!(bouncer["app.kubernetes.io/component"], "pgbouncer");

    let has_volume = |obj: &Value, name: &str| {
        obj["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == name)
    };
    let deploy = pgbouncer::deployment(&ctx, 1).expect("pgBouncer");
    assert_eq!(has_volume(&deploy, "bouncer-side"), mounted);
    let sts = tusk_core::build::repohost::statefulset(&ctx, 1).expect("repo host");
    assert_eq!(has_volume(&sts, "repo-side"), mounted);
}
