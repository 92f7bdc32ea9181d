//! The render memo (`tusk_core::build::memo`) changes no plan: for the upstream example CR and
//! every fixture, each reconcile on the way to convergence, and after spec changes, gives the
//! same plan with a warm memo as with the memo bypassed.

use k8s_openapi::jiff::Timestamp;
use std::path::{Path, PathBuf};
use tusk_core::api::PerconaPGCluster;
use tusk_core::build::memo;
use tusk_core::testkit::{apply_plan, settle, stamp_versions};
use tusk_core::{Env, Observed, Plan, reconcile};

fn load(path: &Path) -> Option<PerconaPGCluster> {
    let text = std::fs::read_to_string(path).ok()?;
    for doc in text.split("\n---") {
        let v: serde_yaml::Value = serde_yaml::from_str(doc).ok()?;
        if v.get("kind").and_then(|k| k.as_str()) == Some("PerconaPGCluster") {
            return serde_yaml::from_value(v).ok();
        }
    }
    None
}

fn clusters() -> Vec<(PathBuf, PerconaPGCluster)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("../../shared/percona/cr.yaml")];
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures"))
        .expect("core/tests/fixtures")
        .map(|e| e.expect("dir entry").path())
        .collect();
    fixtures.sort();
    paths.extend(fixtures);
    let out: Vec<_> = paths
        .into_iter()
        .filter_map(|p| {
            let mut cr = load(&p)?;
            cr.metadata.namespace.get_or_insert_with(|| "pg".into());
            cr.metadata.uid = Some("memo-uid".into());
            cr.metadata.generation = Some(1);
            Some((p, cr))
        })
        .collect();
    assert!(out.len() >= 5, "too few clusters found: {}", out.len());
    out
}

/// The plan with the memo warm (reconciled twice, the second from the memo) and bypassed.
fn both(obs: &Observed, env: &Env) -> (Plan, Plan) {
    let _ = reconcile(obs, env);
    let cached = reconcile(obs, env);
    let uncached = memo::without_memo(|| reconcile(obs, env));
    (cached, uncached)
}

fn assert_same(what: &str, obs: &Observed, env: &Env) -> Plan {
    let (cached, uncached) = both(obs, env);
    assert_eq!(
        serde_json::to_string(&cached).unwrap(),
        serde_json::to_string(&uncached).unwrap(),
        "{what}: the memo changed the plan"
    );
    cached
}

/// Reconciles `o` to convergence (at most 30 rounds), checking every plan on the way.
fn walk(what: &str, o: Observed, env: &Env) -> Observed {
    walk_with(what, o, env, false)
}

fn walk_with(what: &str, mut o: Observed, env: &Env, versioned: bool) -> Observed {
    for round in 0..30 {
        if versioned {
            stamp_versions(&mut o);
        }
        let plan = assert_same(&format!("{what} round {round}"), &o, env);
        if plan.writes().next().is_none() {
            break;
        }
        o = apply_plan(&o, &plan);
        settle(&mut o);
    }
    o
}

#[test]
fn cached_plans_equal_uncached_ones_with_resource_versions() {
    let env = Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), 11);
    for (path, cr) in clusters() {
        let what = format!("{} (versioned)", path.display());
        let converged = walk_with(&what, Observed::new(cr), &env, true);
        // A changed object under a new resourceVersion is seen through the warm memo.
        let mut drifted = converged.clone();
        if let Some(s) = drifted.services.first_mut() {
            s.metadata.labels.get_or_insert_default().clear();
            stamp_versions(&mut drifted);
            let plan = assert_same(&format!("{what} drifted"), &drifted, &env);
            assert!(
                plan.writes().next().is_some(),
                "{what}: the drift is repaired"
            );
        }
    }
}

#[test]
fn cached_plans_equal_uncached_ones_on_the_way_to_convergence() {
    let env = Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), 7);
    for (path, cr) in clusters() {
        // Fixtures that never converge are compared on each of the 30 rounds.
        walk(&path.display().to_string(), Observed::new(cr), &env);
    }
}

#[test]
fn spec_changes_are_seen_through_a_warm_memo() {
    let env = Env::from_seed(Timestamp::from_second(1_800_000_000).unwrap(), 3);
    let (_, cr) = clusters().into_iter().next().expect("cr.yaml");
    let converged = walk("cr.yaml", Observed::new(cr), &env);
    assert!(reconcile(&converged, &env).writes().next().is_none());

    // A new image: every instance StatefulSet must be applied again, memo or not.
    let mut changed = converged.clone();
    changed.cluster.spec.image = Some("example/postgres:changed".into());
    let plan = assert_same("image change", &changed, &env);
    let text = serde_json::to_string(&plan).unwrap();
    assert!(
        text.contains("example/postgres:changed"),
        "the new image is applied"
    );
    walk("image change", changed, &env);

    // The same spec under another uid (a re-created cluster) renders new owner references.
    let mut recreated = converged.clone();
    recreated.cluster.metadata.uid = Some("another-uid".into());
    let plan = assert_same("uid change", &recreated, &env);
    assert!(
        serde_json::to_string(&plan)
            .unwrap()
            .contains("another-uid")
    );

    // Pause (replicas to 0, primary last), resume, scale up and down, pgBouncer replicas.
    let mut o = converged.clone();
    o.cluster.spec.pause = Some(true);
    o = walk("pause", o, &env);
    o.cluster.spec.pause = Some(false);
    o = walk("resume", o, &env);
    o.cluster.spec.instances[0].replicas = Some(o.cluster.spec.instances[0].replicas() + 1);
    o = walk("scale up", o, &env);
    o.cluster.spec.instances[0].replicas = Some(1);
    o = walk("scale down", o, &env);
    if let Some(p) = o.cluster.spec.proxy.as_mut() {
        p.pg_bouncer.replicas = Some(0);
        walk("no pgBouncer", o, &env);
    }

    // Back to the original spec: no writes again, from the memo too.
    let plan = assert_same("back to the original", &converged, &env);
    assert!(plan.writes().next().is_none());
}
