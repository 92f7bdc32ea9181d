//! Properties of `reconcile` over random valid specs and random partially converged worlds:
//!
//! - applying a plan and reconciling again asks for no further object changes (the only
//!   exception: `<cluster>-primary` Endpoints, which need the ClusterIP the API server assigns
//!   to `<cluster>-ha`), and for nothing at all when the plan had no lifecycle step
//!   (delete/switchover) that legitimately changes the world the status is computed from;
//! - no plan deletes a PVC unless the cluster is being deleted with `percona.com/delete-pvc`;
//! - no plan removes the instance that holds the primary role;
//! - passwords never change unless the user emptied them.

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use serde_json::json;
use tusk_core::api::PerconaPGCluster;
use tusk_core::labels;
use tusk_core::observed::label;
use tusk_core::testkit::{apply_plan, set_primary, set_ready, settle};
use tusk_core::{Action, Env, Observed, Plan, reconcile};

#[derive(Debug, Clone)]
struct Spec {
    sets: Vec<(u8, bool)>,
    users: u8,
    pause: bool,
    bouncer: Option<u8>,
    repos: (bool, bool, bool),
    pmm: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec((1u8..=4, any::<bool>()), 1..=3),
        0u8..=3,
        prop::bool::weighted(0.2),
        prop::option::of(0u8..=3),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        any::<bool>(),
    )
        .prop_map(|(sets, users, pause, bouncer, repos, pmm)| Spec {
            sets,
            users,
            pause,
            bouncer,
            repos,
            pmm,
        })
}

fn build(s: &Spec) -> PerconaPGCluster {
    let pvc =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    let sets: Vec<_> = s
        .sets
        .iter()
        .enumerate()
        .map(|(i, (r, wal))| {
            let mut v =
                json!({"name": format!("set{i}"), "replicas": r, "dataVolumeClaimSpec": pvc});
            if *wal {
                v["walVolumeClaimSpec"] = pvc.clone();
            }
            v
        })
        .collect();
    let users: Vec<_> = (0..s.users)
        .map(|i| json!({"name": format!("user{i}"), "databases": [format!("db{i}")]}))
        .collect();
    let mut repos = Vec::new();
    if s.repos.0 {
        repos.push(json!({"name": "repo1", "volume": {"volumeClaimSpec": pvc}}));
    }
    if s.repos.1 {
        repos.push(json!({"name": "repo2", "s3": {"bucket": "b", "endpoint": "e", "region": "r"}}));
    }
    if s.repos.2 {
        repos.push(json!({"name": "repo3", "gcs": {"bucket": "g"}}));
    }
    let backups = if repos.is_empty() {
        json!({"enabled": false})
    } else {
        json!({"pgbackrest": {"repos": repos}})
    };
    let mut cr = json!({
        "apiVersion": "pgv2.percona.com/v2",
        "kind": "PerconaPGCluster",
        "metadata": {"name": "pc", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "crVersion": "2.9.0",
            "postgresVersion": 17,
            "instances": sets,
            "users": users,
            "pause": s.pause,
            "backups": backups,
        },
    });
    if let Some(b) = s.bouncer {
        cr["spec"]["proxy"] = json!({"pgBouncer": {"replicas": b}});
    }
    if s.pmm {
        cr["spec"]["pmm"] =
            json!({"enabled": true, "image": "pmm:3", "secret": "pc-pmm", "serverHost": "pmm"});
    }
    serde_json::from_value(cr).expect("generated CR deserializes")
}

fn env(seed: u64) -> Env {
    Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), seed)
}

fn passwords(o: &Observed) -> Vec<(String, Vec<u8>)> {
    o.secrets
        .iter()
        .filter_map(|s| {
            let pw = s
                .data
                .as_ref()?
                .get("password")
                .or_else(|| s.data.as_ref()?.get("pgbouncer-password"))?;
            Some((s.metadata.name.clone()?, pw.0.clone()))
        })
        .filter(|(_, p)| !p.is_empty())
        .collect()
}

/// A world reached by applying random prefixes of plans, with random readiness and roles.
/// Password Secrets that hold a password but not yet its verifier.
fn awaiting_verifier(o: &Observed) -> std::collections::BTreeSet<String> {
    o.secrets
        .iter()
        .filter(|s| {
            let d = s.data.as_ref();
            let has = |k: &str| d.is_some_and(|d| d.get(k).is_some_and(|v| !v.0.is_empty()));
            (has("password") && !has("verifier"))
                || (has("pgbouncer-password") && !has("pgbouncer-verifier"))
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect()
}

fn partial_world(cr: PerconaPGCluster, steps: &[(usize, u64, bool, u8)]) -> Observed {
    let mut o = Observed::new(cr);
    for (i, (cut, seed, settle_now, chaos)) in steps.iter().enumerate() {
        let plan = reconcile(&o, &env(*seed));
        let n = plan.actions.len();
        let prefix = Plan {
            actions: plan
                .actions
                .into_iter()
                .take(if n == 0 { 0 } else { cut % (n + 1) })
                .collect(),
        };
        o = apply_plan(&o, &prefix);
        if *settle_now {
            settle(&mut o);
        }
        let instance_pods: Vec<String> = o
            .pods
            .iter()
            .filter(|p| label(&p.metadata, labels::INSTANCE).is_some())
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if !instance_pods.is_empty() {
            match chaos % 4 {
                0 => {
                    let k = (i + *chaos as usize) % instance_pods.len();
                    if let Some(p) = o
                        .pods
                        .iter_mut()
                        .find(|p| p.metadata.name.as_deref() == Some(instance_pods[k].as_str()))
                    {
                        set_ready(p, false);
                    }
                }
                1 => {
                    let k = (*seed as usize) % instance_pods.len();
                    set_primary(&mut o, &instance_pods[k]);
                }
                _ => {}
            }
        }
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reconcile_is_idempotent_and_safe(
        s in spec(),
        steps in prop::collection::vec((any::<usize>(), any::<u64>(), any::<bool>(), any::<u8>()), 0..6),
        seed in any::<u64>(),
        rotate in any::<bool>(),
    ) {
        let cr = build(&s);
        let mut o = partial_world(cr, &steps);
        let mut emptied = None;
        if rotate && let Some(sec) = o.secrets.iter_mut().find(|s| s.metadata.name.as_deref() == Some("pc-pguser-pc") || s.metadata.name.as_deref() == Some("pc-pguser-user0")) {
            sec.data.as_mut().unwrap().insert("password".into(), k8s_openapi::ByteString(vec![]));
            emptied = sec.metadata.name.clone();
        }
        let before = passwords(&o);
        let primary_inst = o.primary_pod().and_then(|p| label(&p.metadata, labels::INSTANCE).map(str::to_string));
        let plan = reconcile(&o, &env(seed));

        for a in &plan.actions {
            if let Action::Delete { target, .. } = a {
                prop_assert!(target.kind != "PersistentVolumeClaim", "PVC deleted without delete-pvc: {target:?}");
                if target.kind == "StatefulSet" {
                    prop_assert!(Some(&target.name) != primary_inst.as_ref(), "primary instance removed: {target:?}");
                }
            }
        }

        let o1 = apply_plan(&o, &plan);
        for (name, pw) in &before {
            let now = passwords(&o1).into_iter().find(|(n, _)| n == name).map(|(_, p)| p);
            prop_assert_eq!(now.as_ref(), Some(pw), "password of {} changed", name);
        }
        if let Some(e) = &emptied {
            let now = passwords(&o1).into_iter().find(|(n, _)| n == e);
            prop_assert!(now.is_some_and(|(_, p)| p.len() == 24), "emptied password of {} not regenerated", e);
        }

        // Passwords generated by `plan` are stored without their SCRAM verifier; the next
        // reconcile adds it (and runs the role SQL): allowed once, then quiet.
        let awaiting = awaiting_verifier(&o1);
        let plan2 = reconcile(&o1, &env(seed.wrapping_add(1)));
        let lifecycle = plan.actions.iter().any(|a| matches!(a, Action::Delete { .. } | Action::Switchover { .. }));
        for a in plan2.writes() {
            match a {
                Action::Apply { object } if object["kind"] == "Secret"
                    && object["metadata"]["name"].as_str().is_some_and(|n| awaiting.contains(n)) => {}
                Action::Apply { object } => prop_assert!(
                    object["kind"] == "Endpoints" && object["metadata"]["name"] == "pc-primary",
                    "second plan re-applies {} {}", object["kind"], object["metadata"]["name"]
                ),
                Action::Sql { .. } => prop_assert!(!awaiting.is_empty(), "SQL sent twice"),
                other => prop_assert!(lifecycle, "second plan not empty after a plan without lifecycle steps: {other:?}"),
            }
        }
        if !awaiting.is_empty() {
            let o2 = apply_plan(&o1, &plan2);
            prop_assert!(awaiting_verifier(&o2).is_empty(), "verifiers still missing");
            prop_assert_eq!(passwords(&o2), passwords(&o1), "adding verifiers changed a password");
            let lifecycle = lifecycle || plan2.actions.iter().any(|a| matches!(a, Action::Delete { .. } | Action::Switchover { .. }));
            let plan3 = reconcile(&o2, &env(seed.wrapping_add(2)));
            for a in plan3.writes() {
                match a {
                    Action::Apply { object } => prop_assert!(
                        object["kind"] == "Endpoints" && object["metadata"]["name"] == "pc-primary",
                        "third plan re-applies {} {}", object["kind"], object["metadata"]["name"]
                    ),
                    Action::Sql { .. } => prop_assert!(
                        !plan2.actions.iter().any(|a| matches!(a, Action::Sql { .. })),
                        "SQL sent twice"
                    ),
                    other => prop_assert!(lifecycle, "third plan not empty after plans without lifecycle steps: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn deletion_without_delete_pvc_keeps_volumes(s in spec(), seed in any::<u64>()) {
        let cr = build(&s);
        let (mut o, _) = tusk_core::testkit::converge(&Observed::new(cr), &env(seed), 40).expect("converges");
        o.cluster.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::from_second(1_800_000_100).unwrap()));
        o.cluster.metadata.finalizers = Some(vec!["percona.com/delete-ssl".into()]);
        let plan = reconcile(&o, &env(seed));
        let deletes_pvc = plan.actions.iter().any(|a| matches!(a, Action::Delete { target, .. } if target.kind == "PersistentVolumeClaim"));
        prop_assert!(!deletes_pvc, "PVC deleted without delete-pvc");
    }
}
