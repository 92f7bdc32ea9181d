//! PodDisruptionBudgets: one per instance set and one for pgBouncer. `minAvailable` defaults to
//! 1 when there is more than one replica; with one replica and no explicit value there is none.

use super::{Ctx, to_json};
use crate::labels;
use crate::naming;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

fn min_available(explicit: Option<&IntOrString>, replicas: i32) -> Option<Value> {
    match explicit {
        Some(IntOrString::Int(0)) => None,
        Some(v) => Some(to_json(v)),
        None if replicas > 1 => Some(json!(1)),
        None => None,
    }
}

pub fn instance_set(ctx: &Ctx, set: &crate::api::cluster::InstanceSet) -> Option<Value> {
    let min = min_available(set.min_available.as_ref(), set.replicas())?;
    Some(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": ctx.meta(
            &naming::instance_set_pdb(ctx.name, &set.name),
            ctx.labels("pg").with(labels::INSTANCE_SET, set.name.clone()),
            None,
        ),
        "spec": {
            "minAvailable": min,
            "selector": {"matchLabels": {
                labels::CLUSTER: ctx.name,
                labels::INSTANCE_SET: set.name,
            }},
        },
    }))
}

pub fn pgbouncer(ctx: &Ctx) -> Option<Value> {
    if !ctx.has_pgbouncer() {
        return None;
    }
    let explicit = ctx.cr.pgbouncer().and_then(|p| p.min_available.as_ref());
    let min = min_available(explicit, ctx.pgbouncer_replicas())?;
    Some(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": ctx.meta(
            &naming::pgbouncer(ctx.name),
            ctx.labels("pgbouncer").with(labels::ROLE, labels::ROLE_PGBOUNCER),
            None,
        ),
        "spec": {
            "minAvailable": min,
            "selector": {"matchLabels": {
                labels::CLUSTER: ctx.name,
                labels::ROLE: labels::ROLE_PGBOUNCER,
            }},
        },
    }))
}
