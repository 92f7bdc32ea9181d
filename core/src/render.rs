//! `tusk render`: every object tusk creates for a CR on a fresh cluster, deterministically.

use crate::api::PerconaPGCluster;
use crate::plan::Action;
use crate::{Env, Observed};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;

/// The time `render` pretends it is (2026-01-01T00:00:00Z), so output never depends on the clock.
pub const RENDER_EPOCH_SECONDS: i64 = 1_767_225_600;

/// Validation errors as `path: message` lines (empty when valid).
pub fn validation_messages(cr: &PerconaPGCluster) -> Vec<String> {
    match crate::validate::validate(cr) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

/// Validates `cluster`, then reconciles it against an empty world with entropy from `seed`
/// and returns every applied object in plan order. The namespace defaults to `default`; a CR
/// without a uid gets a placeholder derived from the seed, so ownerReferences are complete.
///
/// The first reconcile of a new cluster stores generated passwords without their SCRAM
/// verifiers (PBKDF2 is left to the next reconcile, see `build::secrets::Credentials`); render
/// shows the Secrets as they are once that second reconcile has run.
pub fn render(
    cluster: &PerconaPGCluster,
    seed: u64,
) -> Result<Vec<Value>, Vec<crate::validate::FieldError>> {
    crate::validate::validate(cluster)?;
    let mut cr = cluster.clone();
    if cr.metadata.namespace.is_none() {
        cr.metadata.namespace = Some("default".into());
    }
    let now = Timestamp::from_second(RENDER_EPOCH_SECONDS).unwrap_or(Timestamp::UNIX_EPOCH);
    let env = Env::from_seed(now, seed);
    if cr.metadata.uid.as_deref().unwrap_or("").is_empty() {
        cr.metadata.uid = Some(placeholder_uid(&env));
    }
    let empty = Observed::new(cr);
    let plan = crate::reconcile::reconcile(&empty, &env);
    let second = crate::reconcile::reconcile(&crate::testkit::apply_plan(&empty, &plan), &env);
    let completed_secret = |name: &str| {
        second.actions.iter().find_map(|a| match a {
            Action::Apply { object }
                if object["kind"] == "Secret" && object["metadata"]["name"] == name =>
            {
                Some(Value::clone(object))
            }
            _ => None,
        })
    };
    Ok(plan
        .actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Apply { object } => Some(Arc::unwrap_or_clone(object)),
            _ => None,
        })
        .map(|object| {
            let name = object["metadata"]["name"].as_str().unwrap_or("");
            if object["kind"] == "Secret"
                && let Some(done) = completed_secret(name)
            {
                return done;
            }
            object
        })
        .collect())
}

/// A UUID-shaped (version 4 layout) uid drawn from the render seed.
fn placeholder_uid(env: &Env) -> String {
    let rng = env.rng("render/cluster-uid");
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
