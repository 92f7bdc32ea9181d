//! `tusk render`: every object tusk creates for a CR on a fresh cluster, deterministically.

use crate::api::PerconaPGCluster;
use crate::plan::Action;
use crate::{Env, Observed};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

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
/// and returns every applied object in plan order. The namespace defaults to `default`.
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
    let plan = crate::reconcile::reconcile(&Observed::new(cr), &env);
    Ok(plan
        .actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Apply { object } => Some(object),
            _ => None,
        })
        .collect())
}
