//! One StatefulSet per PostgreSQL instance (`<cluster>-<set>-<suffix>`, 1 replica, OnDelete:
//! tusk rolls pods itself) and the instance's PVCs (`<instance>-pgdata`, `<instance>-pgwal`,
//! `<instance>-<tablespace>-tablespace`),
//! which tusk creates directly so that their names match Crunchy's and they survive both the
//! StatefulSet and the cluster.

use super::configmaps::{PG_SOCKET_DIR, pgdata_dir};
use super::{Ctx, list_json, prune, to_json};
use crate::api::cluster::InstanceSet;
use crate::labels::{self, Labels, annotations};
use crate::naming;
use crate::reconcile::compare::hash_hex;
use serde_json::{Map, Value, json};

/// Labels of an instance's pod (and the StatefulSet selector subset).
pub fn pod_labels(ctx: &Ctx, set: &InstanceSet, instance: &str) -> Labels {
    ctx.labels("pg")
        .with(labels::INSTANCE_SET, set.name.clone())
        .with(labels::INSTANCE, instance)
        .with(labels::DATA, labels::DATA_POSTGRES)
        .with(labels::PATRONI, naming::patroni_scope(ctx.name))
}

fn selector(ctx: &Ctx, set: &InstanceSet, instance: &str) -> Value {
    json!({"matchLabels": {
        labels::CLUSTER: ctx.name,
        labels::INSTANCE_SET: set.name,
        labels::INSTANCE: instance,
    }})
}

fn pvc(
    ctx: &Ctx,
    set: &InstanceSet,
    instance: &str,
    name: String,
    role: &str,
    spec: Value,
) -> Value {
    let l = ctx
        .labels("pg")
        .with(labels::INSTANCE_SET, set.name.clone())
        .with(labels::INSTANCE, instance)
        .with(labels::DATA, labels::DATA_POSTGRES)
        .with(labels::ROLE, role);
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": ctx.meta_unowned(&name, l, None),
        "spec": spec,
    });
    prune(&mut v);
    v
}

/// The PVCs of one instance, data first.
pub fn pvcs(ctx: &Ctx, set: &InstanceSet, instance: &str) -> Vec<Value> {
    let mut out = vec![pvc(
        ctx,
        set,
        instance,
        naming::instance_pgdata_pvc(instance),
        labels::ROLE_PGDATA,
        to_json(&set.data_volume_claim_spec),
    )];
    if let Some(w) = &set.wal_volume_claim_spec {
        out.push(pvc(
            ctx,
            set,
            instance,
            naming::instance_pgwal_pvc(instance),
            labels::ROLE_PGWAL,
            to_json(w),
        ));
    }
    for t in &set.tablespace_volumes {
        out.push(pvc(
            ctx,
            set,
            instance,
            naming::instance_tablespace_pvc(instance, &t.name),
            labels::ROLE_TABLESPACE,
            to_json(&t.data_volume_claim_spec),
        ));
    }
    out
}

/// The pod volume name of tablespace `name`.
fn tablespace_volume(name: &str) -> String {
    format!("tablespace-{name}")
}

/// Probe timing from Patroni's loop (Crunchy `probeTiming`).
fn probe(ctx: &Ctx, path: &str) -> Value {
    let p = ctx.cr.patroni();
    let sync = p.sync_period_seconds().max(1);
    let lease = p.leader_lease_duration_seconds();
    let timing = json!({
        "initialDelaySeconds": 3,
        "periodSeconds": sync,
        "timeoutSeconds": (sync / 2).max(1),
        "failureThreshold": (lease / sync).max(1),
        "successThreshold": 1,
    });
    let mut v = if ctx.features.exec_probes {
        json!({"exec": {"command": [
            "bash", "-c",
            format!("curl --silent --fail --max-time {} http://localhost:{}/{path}", (sync / 2).max(1), ctx.patroni_port()),
        ]}})
    } else {
        json!({"httpGet": {"path": format!("/{path}"), "port": ctx.patroni_port(), "scheme": "HTTP"}})
    };
    super::configmaps::merge(&mut v, &timing);
    v
}

fn database_container(ctx: &Ctx, set: &InstanceSet) -> Value {
    let mut env = vec![
        json!({"name": "PGDATA", "value": pgdata_dir(ctx.pg_version())}),
        json!({"name": "PGHOST", "value": PG_SOCKET_DIR}),
        json!({"name": "PGPORT", "value": ctx.pg_port().to_string()}),
        json!({"name": "PATRONI_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}),
        json!({"name": "PATRONI_KUBERNETES_POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}),
        json!({"name": "PATRONI_KUBERNETES_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}),
        json!({"name": "PATRONI_POSTGRESQL_CONNECT_ADDRESS", "value": format!("$(PATRONI_KUBERNETES_POD_IP):{}", ctx.pg_port())}),
        json!({"name": "PATRONI_RESTAPI_CONNECT_ADDRESS", "value": format!("$(PATRONI_KUBERNETES_POD_IP):{}", ctx.patroni_port())}),
        json!({"name": "PATRONI_REPLICATION_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{}-replication", ctx.name), "key": "password"}}}),
        json!({"name": "PATRONI_REWIND_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{}-replication", ctx.name), "key": "password"}}}),
    ];
    env.extend(set.env.iter().map(to_json));
    let mut mounts = vec![
        json!({"name": "pgdata", "mountPath": "/pgdata"}),
        json!({"name": "patroni-config", "mountPath": "/etc/patroni", "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    if set.wal_volume_claim_spec.is_some() {
        mounts.push(json!({"name": "pgwal", "mountPath": "/pgwal"}));
    }
    for t in &set.tablespace_volumes {
        mounts.push(json!({"name": tablespace_volume(&t.name), "mountPath": naming::tablespace_mount_path(&t.name)}));
    }
    if ctx.backups_enabled() {
        mounts.push(json!({"name": "pgbackrest-config", "mountPath": "/etc/pgbackrest/conf.d", "readOnly": true}));
    }
    if ctx.tls_enabled() {
        mounts.push(json!({"name": "cert-volume", "mountPath": "/pgconf/tls", "readOnly": true}));
    }
    mounts.extend(set.volume_mounts.iter().map(to_json));
    // Large parts are moved in after `json!`, which would deep-copy them (it serialises every
    // interpolated value).
    let mut c = json!({
        "name": naming::DATABASE_CONTAINER,
        "image": ctx.postgres_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["patroni", "/etc/patroni/patroni.yaml"],
        "envFrom": list_json(&set.env_from),
        "ports": [
            {"name": "postgres", "containerPort": ctx.pg_port(), "protocol": "TCP"},
            {"name": "patroni", "containerPort": ctx.patroni_port(), "protocol": "TCP"},
        ],
        "resources": set.resources.as_ref().map(to_json).unwrap_or_else(|| json!({})),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
        },
    });
    c["env"] = Value::Array(env);
    c["livenessProbe"] = probe(ctx, "liveness");
    c["readinessProbe"] = probe(ctx, "readiness");
    c["volumeMounts"] = Value::Array(mounts);
    c
}

fn pmm_container(ctx: &Ctx) -> Option<Value> {
    let pmm = ctx.cr.spec.pmm.as_ref().filter(|p| p.enabled)?;
    let monitor = naming::user_secret(ctx.name, "monitor");
    let query_source = to_json(&pmm.query_source);
    let cluster_name = pmm
        .custom_cluster_name
        .clone()
        .unwrap_or_else(|| ctx.name.to_string());
    Some(json!({
        "name": "pmm-client",
        "image": pmm.image,
        "imagePullPolicy": pmm.image_pull_policy.map(|p| p.as_str()),
        "ports": [{"name": "pmm", "containerPort": 7777, "protocol": "TCP"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "PMM_AGENT_SERVER_ADDRESS", "value": pmm.server_host},
            {"name": "PMM_AGENT_SERVER_USERNAME", "value": "service_token"},
            {"name": "PMM_AGENT_SERVER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": pmm.secret, "key": "PMM_SERVER_TOKEN"}}},
            {"name": "PMM_AGENT_SETUP_NODE_NAME", "value": "$(POD_NAME)"},
            {"name": "DB_TYPE", "value": "postgresql"},
            {"name": "DB_USER", "value": "monitor"},
            {"name": "DB_PASS", "valueFrom": {"secretKeyRef": {"name": monitor, "key": "password"}}},
            {"name": "DB_HOST", "value": "127.0.0.1"},
            {"name": "DB_PORT", "value": ctx.pg_port().to_string()},
            {"name": "DB_CLUSTER", "value": cluster_name},
            {"name": "PMM_QUERY_SOURCE", "value": if query_source.is_null() { json!("pgstatstatements") } else { query_source }},
            {"name": "PMM_POSTGRES_PARAMS", "value": pmm.postgres_params.clone().unwrap_or_default()},
        ],
        "resources": pmm.resources.as_ref().map(to_json).unwrap_or_else(|| json!({})),
        "securityContext": pmm.container_security_context.as_ref().map(to_json),
        "lifecycle": {"preStop": {"exec": {"command": ["bash", "-c", "pmm-admin unregister --force"]}}},
    }))
}

fn backrest_container(ctx: &Ctx) -> Option<Value> {
    if !ctx.has_repo_host() {
        return None;
    }
    let res = ctx
        .cr
        .spec
        .backups
        .pgbackrest
        .as_ref()
        .and_then(|p| p.containers.as_ref())
        .and_then(|c| c.pgbackrest.as_ref())
        .and_then(|r| r.resources.as_ref())
        .map(to_json);
    Some(json!({
        "name": "pgbackrest",
        "image": ctx.pgbackrest_image(),
        "imagePullPolicy": ctx.pull_policy(),
        "command": ["pgbackrest", "server"],
        "resources": res.unwrap_or_else(|| json!({})),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
        },
        "volumeMounts": [
            {"name": "pgdata", "mountPath": "/pgdata"},
            {"name": "pgbackrest-config", "mountPath": "/etc/pgbackrest/conf.d", "readOnly": true},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }))
}

/// The volumes projected as pgBackRest configuration: tusk's ConfigMap plus the user's
/// `backups.pgbackrest.configuration` projections (e.g. cloud credentials).
pub fn pgbackrest_config_volume(ctx: &Ctx, key: &str) -> Value {
    let mut sources = vec![json!({"configMap": {
        "name": naming::pgbackrest_config(ctx.name),
        "items": [{"key": key, "path": key}],
    }})];
    if let Some(p) = &ctx.cr.spec.backups.pgbackrest {
        sources.extend(p.configuration.iter().map(to_json));
    }
    json!({"name": "pgbackrest-config", "projected": {"sources": sources}})
}

/// The StatefulSet of one instance. `replicas` is 1, or 0 while the cluster is paused.
/// `startup` marks the instance that must start first on resume (the last primary).
pub fn statefulset(
    ctx: &Ctx,
    set: &InstanceSet,
    instance: &str,
    replicas: i32,
    startup: bool,
) -> Value {
    let pod_labels = pod_labels(ctx, set, instance);
    let meta_labels = set.metadata.as_ref();
    let template_labels = pod_labels
        .clone()
        .extend_user(meta_labels.map(|m| to_json(&m.labels)).as_ref());
    let template_annotations: Map<String, Value> = meta_labels
        .map(|m| super::string_map(&m.annotations))
        .unwrap_or_default();

    let mut volumes = vec![
        json!({"name": "pgdata", "persistentVolumeClaim": {"claimName": naming::instance_pgdata_pvc(instance)}}),
        json!({"name": "patroni-config", "configMap": {"name": naming::patroni_config(ctx.name)}}),
        json!({"name": "tmp", "emptyDir": {"sizeLimit": ctx.features.tmp_size_limit}}),
    ];
    if set.wal_volume_claim_spec.is_some() {
        volumes.push(json!({"name": "pgwal", "persistentVolumeClaim": {"claimName": naming::instance_pgwal_pvc(instance)}}));
    }
    for t in &set.tablespace_volumes {
        volumes.push(json!({"name": tablespace_volume(&t.name), "persistentVolumeClaim": {"claimName": naming::instance_tablespace_pvc(instance, &t.name)}}));
    }
    if ctx.backups_enabled() {
        volumes.push(pgbackrest_config_volume(ctx, "pgbackrest_instance.conf"));
    }
    if ctx.tls_enabled() {
        let sources = crate::tls::instance_cert_sources(ctx);
        volumes.push(
            json!({"name": "cert-volume", "projected": {"defaultMode": 0o600, "sources": sources}}),
        );
    }
    volumes.extend(set.sidecar_volumes.iter().map(to_json));
    volumes.extend(super::sidecar_pvcs::volumes(ctx, &set.sidecar_pvcs));

    let mut containers = vec![database_container(ctx, set)];
    containers.extend(backrest_container(ctx));
    containers.extend(pmm_container(ctx));
    containers.extend(set.sidecars.iter().map(to_json));

    let security_context = match &set.security_context {
        Some(sc) => to_json(sc),
        None => {
            json!({"fsGroup": 26, "fsGroupChangePolicy": "OnRootMismatch", "runAsNonRoot": true})
        }
    };
    let mut template = json!({
        "metadata": {},
        "spec": {
            "serviceAccountName": naming::instance_rbac(ctx.name),
            "enableServiceLinks": false,
            "shareProcessNamespace": true,
            "terminationGracePeriodSeconds": 30,
            "affinity": set.affinity.as_ref().map(to_json),
            "tolerations": list_json(&set.tolerations),
            "topologySpreadConstraints": list_json(&set.topology_spread_constraints),
            "priorityClassName": set.priority_class_name,
            "imagePullSecrets": list_json(&ctx.cr.spec.image_pull_secrets),
            "initContainers": list_json(&set.init_containers),
        },
    });
    // Moved in rather than interpolated: `json!` would deep-copy them.
    template["metadata"]["labels"] = template_labels.into_value();
    template["spec"]["securityContext"] = security_context;
    template["spec"]["containers"] = Value::Array(containers);
    template["spec"]["volumes"] = Value::Array(volumes);
    prune(&mut template);
    // The hash covers everything a pod is made from; a pod whose annotation differs from the
    // StatefulSet's is outdated and gets rolled (StatefulSets are OnDelete).
    let hash = hash_hex(&template);
    let mut ann = template_annotations;
    ann.insert(annotations::TEMPLATE_HASH.into(), Value::String(hash));
    template["metadata"]["annotations"] = Value::Object(ann);

    let mut sts_ann = Map::new();
    if startup {
        sts_ann.insert(
            annotations::STARTUP_INSTANCE.into(),
            Value::String("true".into()),
        );
    }
    let sts_labels = ctx
        .labels("pg")
        .with(labels::INSTANCE_SET, set.name.clone())
        .with(labels::INSTANCE, instance)
        .with(labels::DATA, labels::DATA_POSTGRES);
    let mut sts = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "spec": {
            "replicas": replicas,
            "serviceName": naming::pods_service(ctx.name),
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "revisionHistoryLimit": 0,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        },
    });
    sts["metadata"] = ctx.meta(
        instance,
        sts_labels,
        Some(sts_ann).filter(|m| !m.is_empty()),
    );
    sts["spec"]["selector"] = selector(ctx, set, instance);
    sts["spec"]["template"] = template;
    sts
}

/// The template hash a rendered StatefulSet (or an observed pod) carries.
pub fn template_hash_of(obj_meta: &Value) -> Option<&str> {
    obj_meta
        .get("annotations")
        .and_then(|a| a.get(annotations::TEMPLATE_HASH))
        .and_then(Value::as_str)
}
