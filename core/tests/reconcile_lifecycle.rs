//! End-to-end behaviour of `reconcile` over the pure test kit: convergence, idempotency,
//! stable names and passwords, pause/resume ordering, scale-down, rolling restarts,
//! switchovers, deletion finalizers.

use k8s_openapi::jiff::Timestamp;
use tusk_core::api::PerconaPGCluster;
use tusk_core::labels;
use tusk_core::observed::{label, pod_ready};
use tusk_core::testkit::{apply_plan, converge, set_ready, settle};
use tusk_core::{Action, Env, Observed, Plan, reconcile};

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

fn converged(cr: PerconaPGCluster, seed: u64) -> Observed {
    let (o, _) = converge(&Observed::new(cr), &env(seed), 30).expect("converges");
    o
}

fn state(o: &Observed) -> String {
    o.cluster
        .status
        .as_ref()
        .and_then(|s| s.state)
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

fn primary(o: &Observed) -> String {
    o.primary_pod()
        .and_then(|p| p.metadata.name.clone())
        .unwrap_or_default()
}

fn secret_value(o: &Observed, name: &str, key: &str) -> String {
    let s = o
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .expect("secret");
    String::from_utf8(s.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[test]
fn converges_from_empty_to_ready_and_stays_quiet() {
    let o = converged(cr_yaml(), 1);
    assert_eq!(state(&o), "ready");
    let instances: Vec<_> = o
        .stateful_sets
        .iter()
        .filter(|s| label(&s.metadata, labels::INSTANCE_SET) == Some("instance1"))
        .collect();
    assert_eq!(instances.len(), 3);
    for s in &instances {
        let n = s.metadata.name.as_deref().unwrap();
        let suffix = n.strip_prefix("cluster1-instance1-").expect("name pattern");
        assert!(tusk_core::naming::is_suffix(suffix), "{n}");
        assert!(
            o.pvcs
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(&format!("{n}-pgdata")))
        );
    }
    // A different entropy source changes nothing once converged.
    for seed in [2, 3, 99] {
        let p = reconcile(&o, &env(seed));
        assert!(p.writes().next().is_none(), "seed {seed}: {p:#?}");
    }
    let st = o.cluster.status.as_ref().unwrap();
    assert_eq!(st.host.as_deref(), Some("cluster1-pgbouncer.pg.svc"));
    assert_eq!(st.postgres.as_ref().unwrap().ready, 3);
    assert_eq!(st.pgbouncer.as_ref().unwrap().ready, 3);
    // Every owned object points at the cluster; PVCs and password Secrets do not.
    for s in &o.services {
        let refs = s.metadata.owner_references.as_ref().expect("owned");
        assert_eq!(refs[0].uid, "cluster-uid");
        assert_eq!(refs[0].controller, Some(true));
    }
    assert!(o.pvcs.iter().all(|p| p.metadata.owner_references.is_none()));
}

#[test]
fn first_plan_applied_is_idempotent() {
    let o = Observed::new(cr_yaml());
    let p1 = reconcile(&o, &env(5));
    let o1 = apply_plan(&o, &p1);
    // The follow-ups: `-primary` Endpoints need the ClusterIP the server gave `-ha`, and the
    // password Secrets get the SCRAM verifiers of the passwords they now hold.
    let p2 = reconcile(&o1, &env(6));
    let writes: Vec<&Action> = p2.writes().collect();
    let secrets = writes
        .iter()
        .filter(|a| matches!(a, Action::Apply { object } if object["kind"] == "Secret" && (object["data"].get("verifier").is_some() || object["data"].get("pgbouncer-verifier").is_some())))
        .count();
    assert_eq!(
        secrets, 3,
        "the user, pgBouncer and replication Secrets: {p2:#?}"
    );
    assert_eq!(writes.len(), 1 + secrets, "{p2:#?}");
    assert!(
        writes.iter().any(|w| matches!(w, Action::Apply { object } if object["kind"] == "Endpoints" && object["metadata"]["name"] == "cluster1-primary"))
    );
    let o2 = apply_plan(&o1, &p2);
    let p3 = reconcile(&o2, &env(7));
    assert!(p3.writes().next().is_none(), "{p3:#?}");
}

#[test]
fn passwords_persist_and_rotate_only_when_emptied() {
    let mut o = converged(cr_yaml(), 1);
    let name = "cluster1-pguser-cluster1";
    let pw = secret_value(&o, name, "password");
    assert_eq!(pw.len(), 24);
    assert!(tusk_core::build::scram::verifier_matches(
        &secret_value(&o, name, "verifier"),
        &pw
    ));
    // The user blanks the password: a new one, a new verifier, and SQL to set it.
    let s = o
        .secrets
        .iter_mut()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap();
    s.data
        .as_mut()
        .unwrap()
        .insert("password".into(), k8s_openapi::ByteString(vec![]));
    // First a new password alone (no PBKDF2, no SQL yet), then its verifier and the SQL.
    let plan = reconcile(&o, &env(7));
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::Sql { .. })));
    let o1 = apply_plan(&o, &plan);
    let plan = reconcile(&o1, &env(7));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::Sql { statements, .. } if statements.iter().any(|s| s.contains("ALTER ROLE \"cluster1\"")))));
    let o2 = apply_plan(&o1, &plan);
    let pw2 = secret_value(&o2, name, "password");
    assert_ne!(pw, pw2);
    assert!(tusk_core::build::scram::verifier_matches(
        &secret_value(&o2, name, "verifier"),
        &pw2
    ));
    assert!(reconcile(&o2, &env(8)).writes().next().is_none());
}

#[test]
fn user_sql_is_sent_once_on_a_ready_primary() {
    let o = Observed::new(cr_yaml());
    let (o, _) = converge(&o, &env(1), 30).unwrap();
    // Converged means the SQL ran and the applied hash is recorded.
    let s = o
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("cluster1-pguser-cluster1"))
        .unwrap();
    assert!(
        s.metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key(labels::annotations::USER_APPLIED)
    );
    // A new user triggers SQL for that user only.
    let mut cr = o.cluster.clone();
    cr.spec.users = serde_json::from_value(serde_json::json!([
        {"name": "cluster1", "databases": ["cluster1"]},
        {"name": "app", "databases": ["appdb"], "options": "CREATEDB"}
    ]))
    .unwrap();
    let mut o2 = o.clone();
    o2.cluster = cr;
    // The new user's password is stored first; its verifier and the SQL follow.
    let plan = reconcile(&o2, &env(2));
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::Sql { .. })));
    let o2 = apply_plan(&o2, &plan);
    let plan = reconcile(&o2, &env(2));
    let sql: Vec<&Vec<String>> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Sql {
                statements,
                database,
                ..
            } if database == "postgres" => Some(statements),
            _ => None,
        })
        .collect();
    assert_eq!(sql.len(), 1, "{plan:#?}");
    assert!(sql[0].iter().any(|s| {
        s.contains("ALTER ROLE \"app\" WITH LOGIN CREATEDB PASSWORD 'SCRAM-SHA-256$4096:")
    }));
    assert!(
        sql[0]
            .iter()
            .any(|s| s.contains("CREATE DATABASE %I") && s.contains("'appdb'"))
    );
}

#[test]
fn no_sql_without_a_ready_primary() {
    let o = Observed::new(cr_yaml());
    let plan = reconcile(&o, &env(1));
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::Sql { .. })));
    assert!(plan.requeue_after().is_some());
}

#[test]
fn unmanaged_plans_nothing() {
    let mut cr = cr_yaml();
    cr.spec.unmanaged = Some(true);
    assert!(reconcile(&Observed::new(cr), &env(1)).is_empty());
}

/// Steps the world one reconcile at a time, without the "settle" shortcut for pods.
fn step(o: &Observed, seed: u64) -> (Observed, Plan) {
    let plan = reconcile(o, &env(seed));
    let mut o2 = apply_plan(o, &plan);
    settle(&mut o2);
    (o2, plan)
}

#[test]
fn pause_stops_replicas_then_primary_and_resume_starts_primary_first() {
    let mut o = converged(cr_yaml(), 1);
    let prim = primary(&o);
    let prim_inst = prim.trim_end_matches("-0").to_string();
    o.cluster.spec.pause = Some(true);
    let (o1, p1) = step(&o, 2);
    // First plan: the two replicas go to 0, the primary stays at 1.
    let replicas_of = |plan: &Plan, name: &str| {
        plan.actions.iter().find_map(|a| match a {
            Action::Apply { object }
                if object["kind"] == "StatefulSet" && object["metadata"]["name"] == name =>
            {
                object["spec"]["replicas"].as_i64()
            }
            _ => None,
        })
    };
    assert_eq!(
        replicas_of(&p1, &prim_inst),
        None.or(replicas_of(&p1, &prim_inst))
    );
    let prim_sts = o1
        .stateful_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(&prim_inst))
        .unwrap();
    assert_eq!(prim_sts.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        o1.pods
            .iter()
            .filter(|p| label(&p.metadata, labels::INSTANCE).is_some())
            .count(),
        1
    );
    assert_eq!(state(&o1), "stopping");
    // Then the primary, then pgBouncer and the repo host.
    let (o2, _) = step(&o1, 3);
    assert!(
        o2.pods
            .iter()
            .all(|p| label(&p.metadata, labels::INSTANCE).is_none())
    );
    let (o3, _) = step(&o2, 4);
    let (o4, _) = step(&o3, 5);
    assert_eq!(state(&o4), "paused");
    assert_eq!(o4.deployments[0].spec.as_ref().unwrap().replicas, Some(0));
    assert!(reconcile(&o4, &env(6)).writes().next().is_none());
    // Resume: the last primary starts first.
    let mut o5 = o4.clone();
    o5.cluster.spec.pause = Some(false);
    let plan = reconcile(&o5, &env(7));
    let started: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { object }
                if object["kind"] == "StatefulSet" && object["spec"]["replicas"] == 1 =>
            {
                object["metadata"]["name"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .collect();
    assert!(started.contains(&prim_inst), "{started:?}");
    assert!(
        started
            .iter()
            .filter(|n| n.starts_with("cluster1-instance1"))
            .count()
            == 1,
        "{started:?}"
    );
    let (o6, _) = converge(&o5, &env(8), 30).unwrap();
    assert_eq!(state(&o6), "ready");
}

#[test]
fn scale_down_keeps_the_primary() {
    let o = converged(cr_yaml(), 1);
    let prim = primary(&o);
    let mut o2 = o.clone();
    o2.cluster.spec.instances[0].replicas = Some(1);
    let plan = reconcile(&o2, &env(2));
    let deleted: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { target, .. } if target.kind == "StatefulSet" => {
                Some(target.name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 2, "{plan:#?}");
    // With one replica the set's budget goes too (see budgets_the_spec_no_longer_asks_for).
    assert!(plan.actions.iter().any(|a| matches!(a,
        Action::Delete { target, .. } if target.name == "cluster1-set-instance1")));
    assert!(!deleted.iter().any(|d| prim.starts_with(d)));
    let (o3, _) = converge(&o2, &env(3), 30).unwrap();
    assert_eq!(primary(&o3), prim);
    // PVCs of removed instances stay (no delete-pvc); scaling up again reuses them.
    assert_eq!(
        o3.pvcs
            .iter()
            .filter(|p| label(&p.metadata, labels::ROLE) == Some("pgdata"))
            .count(),
        3
    );
    let mut o4 = o3.clone();
    o4.cluster.spec.instances[0].replicas = Some(3);
    let (o5, _) = converge(&o4, &env(4), 30).unwrap();
    let mut names: Vec<_> = o
        .stateful_sets
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    let mut names5: Vec<_> = o5
        .stateful_sets
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    names.sort();
    names5.sort();
    assert_eq!(names, names5);
}

#[test]
fn removing_the_primarys_set_switches_over_first() {
    let mut cr = cr_yaml();
    let mut second = cr.spec.instances[0].clone();
    second.name = "instance2".into();
    second.replicas = Some(1);
    cr.spec.instances.push(second);
    let o = converged(cr, 1);
    // Make an instance1 pod primary, then remove instance1.
    let prim = primary(&o);
    assert!(prim.starts_with("cluster1-instance1-"), "{prim}");
    let mut o2 = o.clone();
    o2.cluster.spec.instances.remove(0);
    let plan = reconcile(&o2, &env(2));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::Switchover { candidate: Some(c), .. } if c.starts_with("cluster1-instance2-"))), "{plan:#?}");
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Delete { target, .. } if prim.starts_with(&target.name)))
    );
    let (o3, _) = converge(&o2, &env(3), 30).unwrap();
    assert!(primary(&o3).starts_with("cluster1-instance2-"));
    assert_eq!(
        o3.stateful_sets
            .iter()
            .filter(|s| label(&s.metadata, labels::INSTANCE_SET).is_some())
            .count(),
        1
    );
}

#[test]
fn image_change_rolls_replicas_first_then_switches_over_then_old_primary() {
    let o = converged(cr_yaml(), 1);
    let old_primary = primary(&o);
    let mut w = o.clone();
    w.cluster.spec.image = Some("percona/percona-distribution-postgresql:18.4-1".into());
    let mut events = Vec::new();
    for round in 0..40 {
        let plan = reconcile(&w, &env(100 + round));
        if plan.writes().next().is_none() {
            break;
        }
        for a in &plan.actions {
            match a {
                Action::Delete { target, .. } if target.kind == "Pod" => {
                    // Only one pod at a time, and only while all others are ready.
                    let others_ready = w
                        .pods
                        .iter()
                        .filter(|p| {
                            label(&p.metadata, labels::INSTANCE).is_some()
                                && p.metadata.name.as_deref() != Some(&target.name)
                        })
                        .all(pod_ready);
                    assert!(others_ready);
                    events.push(format!("delete {}", target.name));
                }
                Action::Switchover { pod, .. } => events.push(format!("switchover {}", pod.name)),
                _ => {}
            }
        }
        w = apply_plan(&w, &plan);
        settle(&mut w);
    }
    assert_eq!(state(&w), "ready");
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events[0].starts_with("delete") && events[1].starts_with("delete"));
    assert_eq!(events[2], format!("switchover {old_primary}"));
    assert_eq!(events[3], format!("delete {old_primary}"));
    assert_ne!(primary(&w), old_primary);
}

#[test]
fn requested_switchover_happens_once() {
    let o = converged(cr_yaml(), 1);
    let prim = primary(&o);
    let target = o
        .stateful_sets
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .find(|n| n.starts_with("cluster1-instance1-") && !prim.starts_with(n.as_str()))
        .unwrap();
    let mut w = o.clone();
    w.cluster.spec.patroni = Some(
        serde_json::from_value(
            serde_json::json!({"switchover": {"enabled": true, "targetInstance": target}}),
        )
        .unwrap(),
    );
    w.cluster.metadata.annotations = Some(
        [(
            labels::annotations::TRIGGER_SWITCHOVER.to_string(),
            "req-1".to_string(),
        )]
        .into(),
    );
    let plan = reconcile(&w, &env(2));
    assert!(plan.actions.iter().any(|a| matches!(a, Action::Switchover { candidate: Some(c), .. } if *c == format!("{target}-0"))), "{plan:#?}");
    let (w2, _) = converge(&w, &env(3), 30).unwrap();
    assert_eq!(primary(&w2), format!("{target}-0"));
    // Same request again: nothing.
    assert!(reconcile(&w2, &env(4)).writes().next().is_none());
}

#[test]
fn deletion_honours_finalizers() {
    let o = converged(cr_yaml(), 1);
    let mut without = o.clone();
    without.cluster.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(1_800_000_100).unwrap(),
        ));
    assert!(reconcile(&without, &env(2)).is_empty());
    let mut with = without.clone();
    with.cluster.metadata.finalizers =
        Some(vec!["percona.com/delete-pvc".into(), "other/keep".into()]);
    let plan = reconcile(&with, &env(2));
    let pvc_deletes = plan.actions.iter().filter(|a| matches!(a, Action::Delete { target, .. } if target.kind == "PersistentVolumeClaim")).count();
    assert_eq!(pvc_deletes, o.pvcs.len());
    assert!(
        matches!(plan.actions.last(), Some(Action::RemoveFinalizer { finalizer, .. }) if finalizer == "percona.com/delete-pvc")
    );
    let after = apply_plan(&with, &plan);
    assert!(after.pvcs.is_empty());
    assert_eq!(
        after.cluster.metadata.finalizers,
        Some(vec!["other/keep".to_string()])
    );
}

#[test]
fn not_ready_pod_blocks_rollout() {
    let o = converged(cr_yaml(), 1);
    let mut w = o.clone();
    w.cluster.spec.image = Some("x:2".into());
    // Apply the new StatefulSets first.
    let p = reconcile(&w, &env(2));
    w = apply_plan(&w, &p);
    let idx = w
        .pods
        .iter()
        .position(|p| p.metadata.name.as_deref() != Some(primary(&o).as_str()))
        .unwrap();
    set_ready(&mut w.pods[idx], false);
    let plan = reconcile(&w, &env(3));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Delete { .. } | Action::Switchover { .. })),
        "{plan:#?}"
    );
}

#[test]
fn invalid_spec_only_reports() {
    let o = converged(cr_yaml(), 1);
    let mut bad = o.clone();
    bad.cluster.spec.postgres_version = 9;
    let plan = reconcile(&bad, &env(2));
    assert_eq!(plan.actions.len(), 2, "{plan:#?}");
    assert!(
        matches!(&plan.actions[0], Action::PatchStatus { status, .. }
        if status["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "ReconcileError" && c["message"].as_str().unwrap().contains("postgresVersion")))
    );
    assert!(matches!(
        &plan.actions[1],
        Action::Event {
            type_: tusk_core::EventType::Warning,
            ..
        }
    ));
    let after = apply_plan(&bad, &plan);
    assert!(reconcile(&after, &env(3)).is_empty());
    // Fixing the spec clears the condition.
    let mut fixed = after.clone();
    fixed.cluster.spec.postgres_version = 18;
    let (healed, _) = converge(&fixed, &env(4), 10).unwrap();
    assert!(
        healed
            .cluster
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .all(|c| c.type_ != "ReconcileError")
    );
}

#[test]
fn not_ready_until_a_ready_pod_carries_the_primary_role_label() {
    let mut o = converged(cr_yaml(), 3);
    assert_eq!(state(&o), "ready");
    // Patroni holds the leader lock (the `-ha` annotation) but has not labelled the pod yet:
    // the `-primary` Service selects nothing, so clients cannot connect.
    for p in &mut o.pods {
        if let Some(l) = p.metadata.labels.as_mut() {
            l.remove(labels::ROLE);
        }
    }
    assert!(
        o.primary_pod().is_some(),
        "the leader is known from the DCS"
    );
    let plan = reconcile(&o, &env(4));
    let o2 = apply_plan(&o, &plan);
    assert_eq!(state(&o2), "initializing");
    // Once labelled, ready again.
    let mut o3 = o2.clone();
    settle(&mut o3);
    let o4 = apply_plan(&o3, &reconcile(&o3, &env(5)));
    assert_eq!(state(&o4), "ready");
}

/// StatefulSets a plan deletes.
fn deleted_sets(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { target, .. } if target.kind == "StatefulSet" => {
                Some(target.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// Found by the world's explore (seed 600715): a scale-down while no member led removed the
/// instance Patroni was about to promote (the switchover candidate, the only one with the
/// data) and kept one whose volume was lost. With no primary known (no leader in the DCS, no
/// pod labelled primary) nothing is removed; once a primary is elected the scale-down runs.
#[test]
fn scale_down_waits_while_no_member_leads() {
    let o = converged(cr_yaml(), 1);
    let mut leaderless = o.clone();
    leaderless.cluster.spec.instances[0].replicas = Some(1);
    for e in &mut leaderless.endpoints {
        if let Some(a) = e.metadata.annotations.as_mut() {
            a.remove("leader");
        }
    }
    for p in &mut leaderless.pods {
        if let Some(l) = p.metadata.labels.as_mut() {
            l.remove(labels::ROLE);
        }
    }
    assert!(leaderless.primary_pod().is_none());
    let plan = reconcile(&leaderless, &env(2));
    assert!(deleted_sets(&plan).is_empty(), "{plan:#?}");
    // The same scale-down with a leader removes the two replicas' sets.
    let mut led = o.clone();
    led.cluster.spec.instances[0].replicas = Some(1);
    assert_eq!(deleted_sets(&reconcile(&led, &env(2))).len(), 2);
}

/// Changing `postgresVersion` of a running cluster (found with kubectl against tusk up: 18 ->
/// 17 rolled every instance onto the 17 image and reported ready) would start another major
/// version on the data directories: refused with InvalidSpec naming the field and what to do,
/// no instance touched; setting it back converges.
#[test]
fn a_major_version_change_in_place_is_refused() {
    let o = converged(cr_yaml(), 3);
    let running = o.cluster.spec.postgres_version;
    let mut changed = o.clone();
    changed.cluster.spec.postgres_version = running - 1;
    changed.cluster.metadata.generation = Some(2);
    let plan = reconcile(&changed, &env(3));
    let event = plan
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Event {
                reason, message, ..
            } if reason == "InvalidSpec" => Some(message),
            _ => None,
        })
        .expect("an InvalidSpec event");
    assert!(
        event.contains(&format!(
            "spec.postgresVersion: cannot change from {running} to {}",
            running - 1
        )) && event.contains(&format!("set it back to {running}")),
        "{event}"
    );
    assert!(
        plan.actions
            .iter()
            .all(|a| matches!(a, Action::Event { .. } | Action::PatchStatus { .. })),
        "only the condition and the event: {plan:?}"
    );
    let mut back = apply_plan(&changed, &plan);
    back.cluster.spec.postgres_version = running;
    back.cluster.metadata.generation = Some(3);
    let (back, _) = converge(&back, &env(3), 30).expect("converges once set back");
    assert_eq!(state(&back), "ready");
}

fn pdb_names(o: &Observed) -> Vec<String> {
    let mut names: Vec<String> = o
        .pdbs
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// A PodDisruptionBudget the spec no longer asks for is deleted (found with kubectl against
/// tusk up: after removing an instance set its budget stayed, and one left with
/// `minAvailable: 1` over a single pod blocks every drain of that pod's node): an instance set
/// removed, or down to one replica.
#[test]
fn budgets_the_spec_no_longer_asks_for_are_deleted() {
    let mut cr = cr_yaml();
    let mut second = cr.spec.instances[0].clone();
    second.name = "instance2".into();
    cr.spec.instances.push(second);
    let o = converged(cr, 4);
    assert_eq!(
        pdb_names(&o),
        [
            "cluster1-pgbouncer",
            "cluster1-set-instance1",
            "cluster1-set-instance2"
        ]
    );

    let mut removed = o.clone();
    removed.cluster.spec.instances.truncate(1);
    removed.cluster.metadata.generation = Some(2);
    let (o, _) = converge(&removed, &env(4), 30).expect("converges without instance2");
    assert_eq!(
        pdb_names(&o),
        ["cluster1-pgbouncer", "cluster1-set-instance1"]
    );

    let mut one = o.clone();
    one.cluster.spec.instances[0].replicas = Some(1);
    one.cluster.metadata.generation = Some(3);
    let (o, _) = converge(&one, &env(4), 30).expect("converges with one replica");
    assert_eq!(pdb_names(&o), ["cluster1-pgbouncer"]);
    assert_eq!(state(&o), "ready");
}

/// In synchronous mode Patroni hands over only to its synchronous standby and refuses a
/// switchover naming another member, so the switchovers the operator starts itself (here:
/// removing the primary's set) name no candidate and let Patroni pick.
#[test]
fn in_synchronous_mode_the_operator_lets_patroni_pick_the_switchover_candidate() {
    for (mode, named) in [
        (serde_json::json!(false), true),
        (serde_json::json!(true), false),
        (serde_json::json!("on"), false),
        (serde_json::json!("quorum"), false),
    ] {
        let mut cr = cr_yaml();
        let mut second = cr.spec.instances[0].clone();
        second.name = "instance2".into();
        second.replicas = Some(1);
        cr.spec.instances.push(second);
        let patroni = cr.spec.patroni.get_or_insert_with(Default::default);
        patroni
            .dynamic_configuration
            .get_or_insert_with(Default::default)
            .insert("synchronous_mode".into(), mode.clone());
        let o = converged(cr, 1);
        assert!(primary(&o).starts_with("cluster1-instance1-"));
        let mut o2 = o.clone();
        o2.cluster.spec.instances.remove(0);
        let plan = reconcile(&o2, &env(2));
        let candidate = plan
            .actions
            .iter()
            .find_map(|a| match a {
                Action::Switchover { candidate, .. } => Some(candidate.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no switchover for {mode}: {plan:#?}"));
        assert_eq!(
            candidate.is_some(),
            named,
            "synchronous_mode {mode}: {candidate:?}"
        );
    }
}
