//! The pgBackRest repo host StatefulSet `<cluster>-repo-host` and the PVCs of volume repos
//! (`<cluster>-repoN`), present only when a `volume` repo exists.

use super::instance::pgbackrest_config_volume;
use super::{Ctx, list_json, prune, to_json};
use crate::labels;
use crate::naming;
use serde_json::{Value, json};

fn repo_labels(ctx: &Ctx) -> crate::labels::Labels {
    ctx.labels("pgbackrest")
        .with(labels::PGBACKREST, "")
        .with(labels::PGBACKREST_DEDICATED, "")
        .with(labels::DATA, labels::DATA_PGBACKREST)
}

/// PVCs of the volume repos, unowned (they outlive the cluster like instance PVCs).
pub fn repo_pvcs(ctx: &Ctx) -> Vec<Value> {
    if !ctx.has_repo_host() {
        return vec![];
    }
    ctx.cr
        .repos()
        .iter()
        .filter_map(|r| {
            let vol = r.volume.as_ref()?;
            let l = ctx
                .labels("pgbackrest")
                .with(labels::PGBACKREST, "")
                .with(labels::PGBACKREST_REPO, r.name.clone())
                .with(labels::PGBACKREST_VOLUME, "");
            let mut v = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": ctx.meta_unowned(&naming::repo_pvc(ctx.name, &r.name), l, None),
                "spec": to_json(&vol.volume_claim_spec),
            });
            prune(&mut v);
            Some(v)
        })
        .collect()
}

/// `replicas` is 1, or 0 once a paused cluster has no instance pods left.
pub fn statefulset(ctx: &Ctx, replicas: i32) -> Option<Value> {
    if !ctx.has_repo_host() {
        return None;
    }
    let pb = ctx.cr.spec.backups.pgbackrest.clone().unwrap_or_default();
    let rh = pb.repo_host.clone().unwrap_or_default();
    let name = naming::repo_host(ctx.name);
    let mut volumes = vec![
        pgbackrest_config_volume(ctx, "pgbackrest_repo.conf"),
        json!({"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}),
    ];
    let mut mounts = vec![
        json!({"name": "pgbackrest-config", "mountPath": "/etc/pgbackrest/conf.d", "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    for r in ctx.cr.repos().iter().filter(|r| r.volume.is_some()) {
        volumes.push(json!({"name": r.name, "persistentVolumeClaim": {"claimName": naming::repo_pvc(ctx.name, &r.name)}}));
        mounts.push(json!({"name": r.name, "mountPath": format!("/pgbackrest/{}", r.name)}));
    }
    volumes.extend(rh.sidecar_volumes.iter().map(to_json));
    // Percona mounts the repo host's sidecar claims only along with its sidecars.
    if !rh.sidecars.is_empty() {
        volumes.extend(super::sidecar_pvcs::volumes(ctx, &rh.sidecar_pvcs));
    }
    let res = rh.resources.as_ref().map(to_json).or_else(|| {
        pb.containers
            .as_ref()
            .and_then(|c| c.pgbackrest.as_ref())
            .and_then(|r| r.resources.as_ref())
            .map(to_json)
    });
    let mut containers = vec![json!({
        "name": "pgbackrest",
        "image": ctx.pgbackrest_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["pgbackrest", "server"],
        "env": list_json(&pb.env),
        "resources": res.unwrap_or_else(|| json!({})),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
        },
        "volumeMounts": mounts,
    })];
    containers.extend(rh.sidecars.iter().map(to_json));
    let pod_labels = repo_labels(ctx);
    let mut template = json!({
        "metadata": {"labels": pod_labels.clone().into_value()},
        "spec": {
            "serviceAccountName": naming::pgbackrest_rbac(ctx.name),
            "enableServiceLinks": false,
            "securityContext": rh.security_context.as_ref().map(to_json).unwrap_or_else(|| json!({"fsGroup": 26, "runAsNonRoot": true})),
            "affinity": rh.affinity.as_ref().map(to_json),
            "tolerations": list_json(&rh.tolerations),
            "topologySpreadConstraints": list_json(&rh.topology_spread_constraints),
            "priorityClassName": rh.priority_class_name,
            "imagePullSecrets": list_json(&ctx.cr.spec.image_pull_secrets),
        },
    });
    // Moved in rather than interpolated: `json!` would deep-copy them.
    template["spec"]["containers"] = Value::Array(containers);
    template["spec"]["volumes"] = Value::Array(volumes);
    prune(&mut template);
    let mut sts = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {
            "replicas": replicas,
            "serviceName": naming::pods_service(ctx.name),
            "updateStrategy": {"type": "RollingUpdate"},
            "revisionHistoryLimit": 0,
            "selector": {"matchLabels": {
                labels::CLUSTER: ctx.name,
                labels::PGBACKREST: "",
                labels::PGBACKREST_DEDICATED: "",
            }},
        },
    });
    sts["metadata"] = ctx.meta(&name, pod_labels, None);
    sts["spec"]["template"] = template;
    Some(sts)
}
