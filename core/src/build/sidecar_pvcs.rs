//! PVCs of `sidecarPVCs` (crVersion ≥ 2.9.0, Percona K8SPG-864) for the instance sets, the
//! pgBackRest repo host and pgBouncer, as Percona makes them: one claim per entry, named
//! exactly as written (not per instance: every pod of the set mounts the same claim, as a
//! volume of the same name), labelled like the component's other objects without the
//! `pgv2.percona.com/version` label, and with no owner, so that they outlive the cluster like
//! the data PVCs (`percona.com/delete-pvc` removes them with the others: they carry the
//! cluster label).

use super::{Ctx, prune, to_json};
use crate::api::common::{Metadata, SidecarPvc};
use crate::labels::{self, Labels};
use serde_json::{Value, json};

/// Every sidecar PVC of the cluster: instance sets in order, then the repo host, then
/// pgBouncer. None before crVersion 2.9.0.
pub fn all(ctx: &Ctx) -> Vec<Value> {
    if !ctx.features.sidecar_pvcs {
        return vec![];
    }
    let mut out = Vec::new();
    for set in &ctx.cr.spec.instances {
        let l = component_labels(ctx, "pg", set.metadata.as_ref())
            .with(labels::INSTANCE_SET, set.name.clone())
            .with(labels::DATA, labels::DATA_POSTGRES);
        out.extend(claims(ctx, &set.sidecar_pvcs, &l));
    }
    if let Some(pb) = &ctx.cr.spec.backups.pgbackrest
        && let Some(rh) = &pb.repo_host
    {
        let l = component_labels(ctx, "", pb.metadata.as_ref()).with(labels::PGBACKREST, "");
        out.extend(claims(ctx, &rh.sidecar_pvcs, &l));
    }
    if let Some(pgb) = ctx.cr.pgbouncer() {
        let l = component_labels(ctx, "pgbouncer", pgb.metadata.as_ref())
            .with(labels::ROLE, labels::ROLE_PGBOUNCER);
        out.extend(claims(ctx, &pgb.sidecar_pvcs, &l));
    }
    out
}

/// The pod volumes that mount `pvcs` (named after the claims); none before crVersion 2.9.0.
pub fn volumes<'a>(ctx: &Ctx, pvcs: &'a [SidecarPvc]) -> impl Iterator<Item = Value> + 'a {
    let on = ctx.features.sidecar_pvcs;
    pvcs.iter()
        .filter(move |_| on)
        .map(|p| json!({"name": p.name, "persistentVolumeClaim": {"claimName": p.name}}))
}

/// The cluster's labels for `component` (none when empty, as Percona does for the repo host),
/// without the version label, plus the component's own `metadata.labels`.
fn component_labels(ctx: &Ctx, component: &str, metadata: Option<&Metadata>) -> Labels {
    let mut l = ctx.labels(component);
    l.0.remove(labels::PERCONA_VERSION);
    if component.is_empty() {
        l.0.remove(labels::APP_COMPONENT);
    }
    l.extend_user(metadata.map(|m| to_json(&m.labels)).as_ref())
}

fn claims(ctx: &Ctx, pvcs: &[SidecarPvc], l: &Labels) -> Vec<Value> {
    pvcs.iter()
        .map(|p| {
            let mut v = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": ctx.meta_unowned(&p.name, l.clone(), None),
                "spec": to_json(&p.spec),
            });
            prune(&mut v);
            v
        })
        .collect()
}
