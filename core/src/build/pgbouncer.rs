//! The pgBouncer Deployment `<cluster>-pgbouncer`, in front of `<cluster>-primary`.

use super::{Ctx, DEFAULT_PGBOUNCER_IMAGE, list_json, prune, to_json};
use crate::labels;
use crate::naming;
use crate::reconcile::compare::hash_hex;
use serde_json::{Map, Value, json};

/// `replicas` is the spec's, or 0 while the cluster is paused.
pub fn deployment(ctx: &Ctx, replicas: i32) -> Option<Value> {
    if !ctx.has_pgbouncer() {
        return None;
    }
    let spec = ctx.cr.pgbouncer().cloned().unwrap_or_default();
    let name = naming::pgbouncer(ctx.name);
    let pod_labels = ctx
        .labels("pgbouncer")
        .with(labels::ROLE, labels::ROLE_PGBOUNCER);
    let user_meta = spec.metadata.as_ref();
    let template_labels = pod_labels
        .clone()
        .extend_user(user_meta.map(|m| to_json(&m.labels)).as_ref());
    let mut env: Vec<Value> = spec.env.iter().map(to_json).collect();
    env.insert(
        0,
        json!({"name": "PGBOUNCER_PORT", "value": ctx.pgbouncer_port().to_string()}),
    );
    let mut volumes = vec![
        json!({"name": "pgbouncer-config", "projected": {"sources": [
            {"configMap": {"name": name, "items": [{"key": "pgbouncer.ini", "path": "pgbouncer.ini"}]}},
            {"secret": {"name": name, "items": [{"key": "pgbouncer-users.txt", "path": "users.txt"}]}},
        ]}}),
    ];
    let tls_secret = ctx
        .tls_enabled()
        .then(|| crate::tls::pgbouncer_cert_source(ctx));
    let mut mounts =
        vec![json!({"name": "pgbouncer-config", "mountPath": "/etc/pgbouncer", "readOnly": true})];
    if let Some(t) = tls_secret {
        volumes.push(json!({"name": "pgbouncer-tls", "projected": {"defaultMode": 0o600, "sources": [{"secret": t}]}}));
        mounts.push(
            json!({"name": "pgbouncer-tls", "mountPath": "/etc/pgbouncer/tls", "readOnly": true}),
        );
    }
    volumes.extend(spec.sidecar_volumes.iter().map(to_json));
    // Percona mounts pgBouncer's sidecar claims only along with its sidecars.
    if !spec.sidecars.is_empty() {
        volumes.extend(super::sidecar_pvcs::volumes(ctx, &spec.sidecar_pvcs));
    }
    let mut containers = vec![json!({
        "name": "pgbouncer",
        "image": spec.image.clone().unwrap_or_else(|| DEFAULT_PGBOUNCER_IMAGE.to_string()),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"],
        "env": env,
        "envFrom": list_json(&spec.env_from),
        "ports": [{"name": "pgbouncer", "containerPort": ctx.pgbouncer_port(), "protocol": "TCP"}],
        "resources": spec.resources.as_ref().map(to_json).unwrap_or_else(|| json!({})),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
        },
        "volumeMounts": mounts,
    })];
    containers.extend(spec.sidecars.iter().map(to_json));
    let mut template = json!({
        "metadata": {"labels": template_labels.into_value()},
        "spec": {
            "enableServiceLinks": false,
            "securityContext": spec.security_context.as_ref().map(to_json).unwrap_or_else(|| json!({"fsGroup": 2, "runAsNonRoot": true})),
            "affinity": spec.affinity.as_ref().map(to_json),
            "tolerations": list_json(&spec.tolerations),
            "topologySpreadConstraints": list_json(&spec.topology_spread_constraints),
            "priorityClassName": spec.priority_class_name,
            "imagePullSecrets": list_json(&ctx.cr.spec.image_pull_secrets),
        },
    });
    // Moved in rather than interpolated: `json!` would deep-copy them.
    template["spec"]["containers"] = Value::Array(containers);
    template["spec"]["volumes"] = Value::Array(volumes);
    prune(&mut template);
    let mut ann: Map<String, Value> = user_meta
        .map(|m| super::string_map(&m.annotations))
        .unwrap_or_default();
    ann.insert(
        labels::annotations::TEMPLATE_HASH.into(),
        Value::String(hash_hex(&template)),
    );
    template["metadata"]["annotations"] = Value::Object(ann);
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {labels::CLUSTER: ctx.name, labels::ROLE: labels::ROLE_PGBOUNCER}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        },
    });
    d["metadata"] = ctx.meta(&name, pod_labels, None);
    d["spec"]["template"] = template;
    prune(&mut d);
    Some(d)
}
