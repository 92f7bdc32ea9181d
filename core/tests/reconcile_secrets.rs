//! The two-step password flow (password first, SCRAM verifier on a later reconcile), change
//! detection through the `verifier-of` fingerprint, and the subset comparison's handling of
//! quantities and of fields tusk owns but no longer sends.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tusk_core::api::PerconaPGCluster;
use tusk_core::build::scram;
use tusk_core::labels::annotations;
use tusk_core::plan::ObjectRef;
use tusk_core::testkit::{apply_plan, converge};
use tusk_core::{Action, Env, Observed, Plan, reconcile};

const USER_SECRET: &str = "cluster1-pguser-cluster1";

fn cr_yaml() -> PerconaPGCluster {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/percona/cr.yaml"
    ))
    .expect("shared/percona/cr.yaml");
    let mut cr: PerconaPGCluster = serde_yaml::from_str(&text).expect("cr.yaml parses");
    cr.metadata.namespace = Some("pg".into());
    cr.metadata.uid = Some("cluster-uid".into());
    cr.metadata.generation = Some(1);
    cr
}

fn env(seed: u64) -> Env {
    Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), seed)
}

fn converged(seed: u64) -> Observed {
    converge(&Observed::new(cr_yaml()), &env(seed), 30)
        .expect("cr.yaml converges")
        .0
}

fn secret<'a>(o: &'a Observed, name: &str) -> &'a Secret {
    o.secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("secret {name}"))
}

fn secret_mut<'a>(o: &'a mut Observed, name: &str) -> &'a mut Secret {
    o.secrets
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("secret {name}"))
}

fn key(s: &Secret, k: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(k)
        .map(|b| String::from_utf8(b.0.clone()).unwrap())
}

fn fingerprint(s: &Secret) -> Option<&str> {
    s.metadata
        .annotations
        .as_ref()?
        .get(annotations::VERIFIER_OF)
        .map(String::as_str)
}

fn applied_secrets(p: &Plan) -> Vec<&Value> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { object } if object["kind"] == "Secret" => Some(&**object),
            _ => None,
        })
        .collect()
}

fn sql(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Sql { statements, .. } => Some(statements.join("\n")),
            _ => None,
        })
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn first_plan_stores_passwords_without_verifiers_and_the_next_adds_them() {
    let empty = Observed::new(cr_yaml());
    let p1 = reconcile(&empty, &env(1));
    // The credential Secrets (the generated TLS Secrets are covered in tests/tls.rs).
    let secrets: Vec<_> = applied_secrets(&p1)
        .into_iter()
        .filter(|s| {
            let data = s["data"].as_object();
            !data.is_some_and(|d| d.keys().any(|k| k.ends_with(".crt")))
        })
        .collect();
    assert_eq!(secrets.len(), 3, "{secrets:#?}");
    for s in &secrets {
        let data = s["data"].as_object().unwrap();
        assert!(
            data.contains_key("password") || data.contains_key("pgbouncer-password"),
            "{s}"
        );
        assert!(
            !data.contains_key("verifier") && !data.contains_key("pgbouncer-verifier"),
            "no PBKDF2 in the first reconcile: {s}"
        );
    }
    assert!(sql(&p1).is_empty(), "no role SQL without a verifier");
    assert!(p1.requeue_after().is_some(), "comes back for the verifiers");

    let o1 = apply_plan(&empty, &p1);
    let password = key(secret(&o1, USER_SECRET), "password").unwrap();
    let p2 = reconcile(&o1, &env(2));
    let o2 = apply_plan(&o1, &p2);
    let s = secret(&o2, USER_SECRET);
    let verifier = key(s, "verifier").expect("verifier added");
    assert_eq!(key(s, "password").as_deref(), Some(password.as_str()));
    assert!(scram::verifier_matches(&verifier, &password));
    assert_eq!(
        fingerprint(s),
        Some(tusk_core::build::secrets::verifier_fingerprint(&password, &verifier).as_str())
    );
    let bouncer = secret(&o2, "cluster1-pgbouncer");
    let users = key(bouncer, "pgbouncer-users.txt").expect("users.txt with the verifier");
    assert!(users.contains(&key(bouncer, "pgbouncer-verifier").unwrap()));
}

#[test]
fn converged_noop_recomputes_nothing() {
    let o = converged(1);
    // A different entropy would salt a recomputed verifier differently, so any PBKDF2 run
    // on the no-op path would show up as a Secret write here.
    for seed in [2, 3, 77] {
        let p = reconcile(&o, &env(seed));
        assert!(applied_secrets(&p).is_empty(), "seed {seed}: {p:#?}");
        assert!(p.writes().next().is_none(), "seed {seed}: {p:#?}");
    }
}

#[test]
fn a_changed_password_gets_a_new_verifier_and_sql_once() {
    let mut o = converged(1);
    let old_verifier = key(secret(&o, USER_SECRET), "verifier").unwrap();
    secret_mut(&mut o, USER_SECRET)
        .data
        .as_mut()
        .unwrap()
        .insert(
            "password".into(),
            ByteString(b"chosen-by-the-user".to_vec()),
        );
    let p = reconcile(&o, &env(5));
    let o2 = apply_plan(&o, &p);
    let s = secret(&o2, USER_SECRET);
    assert_eq!(key(s, "password").as_deref(), Some("chosen-by-the-user"));
    let v = key(s, "verifier").unwrap();
    assert_ne!(v, old_verifier);
    assert!(scram::verifier_matches(&v, "chosen-by-the-user"));
    let statements = sql(&p);
    assert!(
        statements
            .iter()
            .any(|l| l.starts_with("ALTER ROLE \"cluster1\"") && l.contains(&v)),
        "{statements:#?}"
    );
    // The Secret holding the new verifier is written before the SQL that uses it.
    let first_secret = p
        .actions
        .iter()
        .position(
            |a| matches!(a, Action::Apply { object } if object["metadata"]["name"] == USER_SECRET),
        )
        .unwrap();
    let first_sql = p
        .actions
        .iter()
        .position(|a| matches!(a, Action::Sql { .. }))
        .unwrap();
    assert!(first_secret < first_sql);
    let p3 = reconcile(&o2, &env(6));
    assert!(p3.writes().next().is_none(), "{p3:#?}");
}

#[test]
fn a_tampered_verifier_is_replaced() {
    let mut o = converged(1);
    let password = key(secret(&o, USER_SECRET), "password").unwrap();
    let foreign = scram::verifier("something-else", &[7u8; 16], 4096);
    secret_mut(&mut o, USER_SECRET)
        .data
        .as_mut()
        .unwrap()
        .insert("verifier".into(), ByteString(foreign.clone().into_bytes()));
    let p = reconcile(&o, &env(5));
    let o2 = apply_plan(&o, &p);
    let v = key(secret(&o2, USER_SECRET), "verifier").unwrap();
    assert_ne!(v, foreign);
    assert!(scram::verifier_matches(&v, &password));
}

#[test]
fn a_verifier_without_fingerprint_is_checked_once_and_kept() {
    // As an earlier tusk (or another operator) left it: a matching verifier, no fingerprint.
    let mut o = converged(1);
    let verifier = key(secret(&o, USER_SECRET), "verifier").unwrap();
    secret_mut(&mut o, USER_SECRET)
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(annotations::VERIFIER_OF);
    let p = reconcile(&o, &env(9));
    assert!(
        sql(&p).is_empty(),
        "same verifier, nothing to change in PostgreSQL"
    );
    let o2 = apply_plan(&o, &p);
    let s = secret(&o2, USER_SECRET);
    assert_eq!(key(s, "verifier"), Some(verifier));
    assert!(fingerprint(s).is_some());
    assert!(reconcile(&o2, &env(10)).writes().next().is_none());
}

#[test]
fn quantities_compare_by_value() {
    let mut o = converged(1);
    // The API server reads quantities back canonicalised; none of these may trigger a write.
    let pvc = o
        .pvcs
        .iter_mut()
        .find(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .is_some_and(|q| q.0 == "1Gi")
        })
        .expect("a 1Gi PVC in cr.yaml");
    let requests = pvc
        .spec
        .as_mut()
        .unwrap()
        .resources
        .as_mut()
        .unwrap()
        .requests
        .as_mut()
        .unwrap();
    requests.insert(
        "storage".into(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("1073741824".into()),
    );
    let p = reconcile(&o, &env(1));
    assert!(p.writes().next().is_none(), "{p:#?}");
    // A real change of size is still one.
    let pvc = o
        .pvcs
        .iter_mut()
        .find(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .is_some_and(|q| q.0 == "1073741824")
        })
        .unwrap();
    pvc.spec
        .as_mut()
        .unwrap()
        .resources
        .as_mut()
        .unwrap()
        .requests
        .as_mut()
        .unwrap()
        .insert(
            "storage".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2Gi".into()),
        );
    let p = reconcile(&o, &env(1));
    assert!(
        p.writes().any(
            |a| matches!(a, Action::Apply { object } if object["kind"] == "PersistentVolumeClaim")
        ),
        "{p:#?}"
    );
}

fn tusk_entry(fields: Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        api_version: Some("v1".into()),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1(fields)),
        manager: Some("tusk".into()),
        operation: Some("Apply".into()),
        ..Default::default()
    }
}

#[test]
fn a_field_tusk_owns_but_no_longer_sends_is_reapplied() {
    let mut o = converged(1);
    let svc = o
        .services
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some("cluster1-replicas"))
        .unwrap();
    // Sent by an earlier version: a label and spec.sessionAffinity the server still holds.
    svc.metadata
        .labels
        .get_or_insert_default()
        .insert("old-label".into(), "x".into());
    svc.metadata.managed_fields = Some(vec![tusk_entry(json!({
        "f:metadata": {"f:labels": {"f:old-label": {}, "f:postgres-operator.crunchydata.com/cluster": {}}},
        "f:spec": {"f:ports": {"k:{\"port\":5432,\"protocol\":\"TCP\"}": {".": {}}}}
    }))]);
    let p = reconcile(&o, &env(1));
    let applied: Vec<&str> = p
        .writes()
        .filter_map(|a| match a {
            Action::Apply { object } => object["metadata"]["name"].as_str(),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec!["cluster1-replicas"], "{p:#?}");

    // Owning only fields still sent (and list entries, which are not followed) is quiet, and
    // so are other managers' fields.
    let svc = o
        .services
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some("cluster1-replicas"))
        .unwrap();
    let mut other = tusk_entry(json!({"f:metadata": {"f:labels": {"f:old-label": {}}}}));
    other.manager = Some("kubectl".into());
    svc.metadata.managed_fields = Some(vec![
        tusk_entry(json!({
            "f:metadata": {"f:labels": {"f:postgres-operator.crunchydata.com/cluster": {}}},
            "f:spec": {"f:ports": {"k:{\"port\":5432,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}}}}
        })),
        other,
    ]);
    let p = reconcile(&o, &env(1));
    assert!(p.writes().next().is_none(), "{p:#?}");
}

#[test]
fn testkit_patches_the_status_of_the_targeted_object() {
    let mut o = converged(1);
    let backup: tusk_core::api::PerconaPGBackup = serde_json::from_value(json!({
        "apiVersion": "pgv2.percona.com/v2",
        "kind": "PerconaPGBackup",
        "metadata": {"name": "b1", "namespace": "pg"},
        "spec": {"pgCluster": "cluster1", "repoName": "repo1"}
    }))
    .unwrap();
    o.backups.push(backup);
    let cluster_status = serde_json::to_value(&o.cluster.status).unwrap();
    let target = |kind: &str, name: &str| ObjectRef {
        api_version: "pgv2.percona.com/v2".into(),
        kind: kind.into(),
        namespace: Some("pg".into()),
        name: name.into(),
    };
    let mut plan = Plan::new();
    plan.push(Action::PatchStatus {
        target: target("PerconaPGBackup", "b1"),
        status: json!({"state": "Starting"}),
    });
    plan.push(Action::PatchStatus {
        target: target("PerconaPGBackup", "missing"),
        status: json!({"state": "Failed"}),
    });
    let o2 = apply_plan(&o, &plan);
    assert_eq!(
        serde_json::to_value(&o2.cluster.status).unwrap(),
        cluster_status,
        "the cluster's status is not the backup's"
    );
    let b = serde_json::to_value(&o2.backups[0]).unwrap();
    assert_eq!(b["status"]["state"], "Starting", "{b}");
    assert_eq!(o2.backups.len(), 1);

    let mut plan = Plan::new();
    plan.push(Action::PatchStatus {
        target: target("PerconaPGCluster", "cluster1"),
        status: json!({"state": "paused"}),
    });
    let o3 = apply_plan(&o2, &plan);
    assert_eq!(
        serde_json::to_value(&o3.cluster.status).unwrap()["state"],
        "paused"
    );
    assert_eq!(
        serde_json::to_value(&o3.backups[0]).unwrap()["status"]["state"],
        "Starting"
    );
}

#[test]
fn render_owner_uid_is_the_crs_or_a_seeded_placeholder() {
    let mut cr = cr_yaml();
    cr.metadata.uid = None;
    let uid_of = |objs: &[Value]| -> Vec<String> {
        objs.iter()
            .filter_map(|o| o.pointer("/metadata/ownerReferences/0/uid"))
            .map(|u| u.as_str().unwrap().to_string())
            .collect()
    };
    let a = tusk_core::render(&cr, 0).unwrap();
    let uids = uid_of(&a);
    assert!(!uids.is_empty());
    assert!(
        uids.iter().all(|u| u == &uids[0] && u.len() == 36),
        "{uids:?}"
    );
    assert_eq!(
        uid_of(&tusk_core::render(&cr, 0).unwrap()),
        uids,
        "deterministic"
    );
    assert_ne!(
        uid_of(&tusk_core::render(&cr, 1).unwrap())[0],
        uids[0],
        "from the seed"
    );
    cr.metadata.uid = Some("real-uid".into());
    assert!(
        uid_of(&tusk_core::render(&cr, 0).unwrap())
            .iter()
            .all(|u| u == "real-uid")
    );
    // Render shows the Secrets complete, verifiers included.
    let s = a
        .iter()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == USER_SECRET)
        .unwrap();
    let get =
        |k: &str| String::from_utf8(scram::unb64(s["data"][k].as_str().unwrap()).unwrap()).unwrap();
    assert!(scram::verifier_matches(&get("verifier"), &get("password")));
}
