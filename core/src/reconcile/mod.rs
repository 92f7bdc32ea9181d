//! `reconcile(&Observed, &Env) -> Plan`: the whole decision of one reconcile, level-based.
//!
//! Order of a plan (every prefix is safe to stop after): RBAC, password Secrets, ConfigMaps,
//! Services, PVCs, instance StatefulSets, repo host, pgBouncer, PDBs; then lifecycle steps
//! (instance removal, rolling restarts, switchovers), SQL for roles, and last the status.

pub mod compare;

use crate::build::{Ctx, configmaps, instance, pdb, pgbouncer, rbac, repohost, secrets, services};
use crate::labels::annotations;
use crate::lifecycle::{self, Instances};
use crate::observed::{Observed, annotation, by_name};
use crate::plan::{Action, ObjectRef, Plan};
use crate::{Env, naming};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How long to wait before looking again while something is converging.
pub const REQUEUE_CONVERGING: Duration = Duration::from_secs(10);

/// The reference of an object tusk rendered.
pub fn object_ref(obj: &Value) -> ObjectRef {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    ObjectRef {
        api_version: s("/apiVersion"),
        kind: s("/kind"),
        namespace: obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        name: s("/metadata/name"),
    }
}

fn to_value<T: Serialize>(x: &T) -> Option<Value> {
    serde_json::to_value(x).ok()
}

/// The observed object of the same kind and name as `desired`, as JSON.
pub fn observed_value(obs: &Observed, kind: &str, name: &str) -> Option<Value> {
    match kind {
        "StatefulSet" => by_name(&obs.stateful_sets, name).and_then(to_value),
        "Deployment" => by_name(&obs.deployments, name).and_then(to_value),
        "Service" => by_name(&obs.services, name).and_then(to_value),
        "ConfigMap" => by_name(&obs.config_maps, name).and_then(to_value),
        "Secret" => by_name(&obs.secrets, name).and_then(to_value),
        "Endpoints" => by_name(&obs.endpoints, name).and_then(to_value),
        "PersistentVolumeClaim" => by_name(&obs.pvcs, name).and_then(to_value),
        "PodDisruptionBudget" => by_name(&obs.pdbs, name).and_then(to_value),
        "ServiceAccount" => by_name(&obs.service_accounts, name).and_then(to_value),
        "Role" => by_name(&obs.roles, name).and_then(to_value),
        "RoleBinding" => by_name(&obs.role_bindings, name).and_then(to_value),
        "Job" => by_name(&obs.jobs, name).and_then(to_value),
        _ => None,
    }
}

/// Whether the observed object named `name` in `list` already satisfies `desired`: it exists,
/// is not being deleted, holds every field tusk sends (compared on the typed object, no JSON
/// conversion) and holds no field tusk applied earlier but no longer sends.
fn satisfied<T>(list: &[T], name: &str, desired: &Value) -> bool
where
    T: kube::Resource + Serialize,
{
    by_name(list, name).is_some_and(|o| {
        let meta = o.meta();
        // An object being deleted will be gone soon; re-create it afterwards.
        meta.deletion_timestamp.is_none()
            && compare::is_subset_of(desired, o)
            && !compare::drops_owned_fields(desired, meta.managed_fields.as_deref())
    })
}

/// Emits an Apply of `desired` unless the observed object already satisfies it.
fn apply(obs: &Observed, plan: &mut Plan, desired: Value) {
    if !already_there(obs, &desired) {
        plan.push(Action::Apply { object: desired });
    }
}

/// [`apply`] for a rendered object the caller keeps: cloned only when it must be sent.
fn apply_ref(obs: &Observed, plan: &mut Plan, desired: &Value) {
    if !already_there(obs, desired) {
        plan.push(Action::Apply {
            object: desired.clone(),
        });
    }
}

fn already_there(obs: &Observed, desired: &Value) -> bool {
    let kind = desired
        .pointer("/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = desired
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let d = desired;
    match kind {
        "StatefulSet" => satisfied(&obs.stateful_sets, name, d),
        "Deployment" => satisfied(&obs.deployments, name, d),
        "Service" => satisfied(&obs.services, name, d),
        "ConfigMap" => satisfied(&obs.config_maps, name, d),
        "Secret" => satisfied(&obs.secrets, name, d),
        "Endpoints" => satisfied(&obs.endpoints, name, d),
        "PersistentVolumeClaim" => satisfied(&obs.pvcs, name, d),
        "PodDisruptionBudget" => satisfied(&obs.pdbs, name, d),
        "ServiceAccount" => satisfied(&obs.service_accounts, name, d),
        "Role" => satisfied(&obs.roles, name, d),
        "RoleBinding" => satisfied(&obs.role_bindings, name, d),
        "Job" => satisfied(&obs.jobs, name, d),
        _ => false,
    }
}

/// The PerconaPGCluster's own reference.
pub fn cluster_ref(obs: &Observed) -> ObjectRef {
    ObjectRef {
        api_version: crate::api::defaults::API_VERSION.to_string(),
        kind: "PerconaPGCluster".to_string(),
        namespace: obs.cluster.metadata.namespace.clone(),
        name: obs.cluster.metadata.name.clone().unwrap_or_default(),
    }
}

/// One reconcile. Pure: the same `Observed` and `Env` give the same plan.
pub fn reconcile(obs: &Observed, env: &Env) -> Plan {
    let mut plan = Plan::new();
    let cr = &obs.cluster;
    if cr.metadata.name.as_deref().unwrap_or("").is_empty() {
        return plan;
    }
    // `unmanaged`: tusk changes nothing at all.
    if cr.is_unmanaged() {
        return plan;
    }
    if cr.metadata.deletion_timestamp.is_some() {
        crate::backup::finalize_backups(obs, env, &mut plan); // issue 6: percona.com/delete-backups
        lifecycle::finalize(obs, &mut plan);
        return plan;
    }
    let errors = lifecycle::validation_errors(cr);
    if !errors.is_empty() {
        lifecycle::invalid(obs, env, &errors, &mut plan);
        return plan;
    }
    let ctx = Ctx::new(cr);
    let inst = Instances::decide(obs, &ctx, env);

    // RBAC first: pods cannot start without their ServiceAccount.
    apply(obs, &mut plan, rbac::instance_service_account(&ctx));
    apply(obs, &mut plan, rbac::instance_role(&ctx));
    apply(obs, &mut plan, rbac::instance_role_binding(&ctx));
    if ctx.has_repo_host() {
        apply(obs, &mut plan, rbac::pgbackrest_service_account(&ctx));
        apply(obs, &mut plan, rbac::pgbackrest_role(&ctx));
        apply(obs, &mut plan, rbac::pgbackrest_role_binding(&ctx));
    }

    // Password Secrets: written before anything uses them, never regenerated once set.
    let auto_schema = cr
        .spec
        .auto_create_user_schema
        .unwrap_or(ctx.features.auto_create_user_schema);
    let mut pending_roles = Vec::new();
    let mut awaiting_verifier = false;
    for role in secrets::roles(&ctx) {
        let observed = by_name(&obs.secrets, &role.secret);
        let creds = lifecycle::credentials(observed, &role, env);
        let applied = observed.and_then(|s| annotation(&s.metadata, annotations::USER_APPLIED));
        apply(
            obs,
            &mut plan,
            secrets::role_secret(&ctx, &role, &creds, applied),
        );
        if creds.verifier.is_none() {
            // Just generated: the next reconcile reads it back and adds the verifier; the
            // role SQL waits for it (never a clear-text password in SQL).
            awaiting_verifier = true;
            continue;
        }
        let hash = secrets::applied_hash(&role, &creds, auto_schema);
        if applied != Some(hash.as_str()) {
            pending_roles.push((role, creds, hash));
        }
    }

    // Internal TLS (crate::tls): the CA and certificates, before the pods that mount them.
    match crate::tls::desired_secrets(obs, &ctx, env) {
        Ok(objects) => objects.into_iter().for_each(|o| apply(obs, &mut plan, o)),
        Err(e) => plan.push(Action::Event {
            regarding: cluster_ref(obs),
            type_: crate::plan::EventType::Warning,
            reason: "TLSFailed".into(),
            message: e.to_string(),
        }),
    }

    apply(obs, &mut plan, configmaps::patroni(&ctx));
    if let Some(cm) = configmaps::pgbackrest(&ctx, &inst.all_names()) {
        apply(obs, &mut plan, cm);
    }
    if let Some(cm) = configmaps::pgbouncer(&ctx) {
        apply(obs, &mut plan, cm);
    }

    apply(obs, &mut plan, services::ha(&ctx));
    apply(obs, &mut plan, services::ha_config(&ctx));
    apply(obs, &mut plan, services::primary(&ctx));
    if let Some(ip) = by_name(&obs.services, &naming::ha_service(ctx.name))
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        apply(obs, &mut plan, services::primary_endpoints(&ctx, ip));
    }
    apply(obs, &mut plan, services::replicas(&ctx));
    apply(obs, &mut plan, services::pods(&ctx));
    if ctx.has_pgbouncer() {
        apply(obs, &mut plan, services::pgbouncer(&ctx));
    }

    // Volumes before the workloads that mount them.
    for pvc in repohost::repo_pvcs(&ctx) {
        apply(obs, &mut plan, pvc);
    }
    for i in &inst.keep {
        for pvc in instance::pvcs(&ctx, &ctx.cr.spec.instances[i.set_index], &i.name) {
            apply(obs, &mut plan, pvc);
        }
    }
    for i in &inst.keep {
        apply_ref(obs, &mut plan, &i.desired);
    }
    if let Some(sts) = repohost::statefulset(&ctx, inst.repo_host_replicas) {
        apply(obs, &mut plan, sts);
    }
    if let Some(d) = pgbouncer::deployment(&ctx, inst.pgbouncer_replicas) {
        apply(obs, &mut plan, d);
    }
    for set in &cr.spec.instances {
        if let Some(p) = pdb::instance_set(&ctx, set) {
            apply(obs, &mut plan, p);
        }
    }
    if let Some(p) = pdb::pgbouncer(&ctx) {
        apply(obs, &mut plan, p);
    }

    // Lifecycle: removals, switchovers, rolling restarts.
    let switchover_done = lifecycle::steps(obs, &ctx, &inst, &mut plan);

    // Roles: SQL on a ready primary, then record what was applied on the Secret.
    let mut roles_pending = awaiting_verifier;
    if !pending_roles.is_empty() && !cr.is_standby() && !cr.is_paused() {
        match inst.ready_primary_pod(obs) {
            Some(pod) => {
                for (role, creds, hash) in &pending_roles {
                    plan.push(Action::Sql {
                        pod: pod.clone(),
                        database: "postgres".into(),
                        statements: secrets::role_sql(role, creds),
                    });
                    let db_sql = secrets::role_db_sql(role, auto_schema);
                    if !db_sql.is_empty() {
                        for db in &role.databases {
                            plan.push(Action::Sql {
                                pod: pod.clone(),
                                database: db.clone(),
                                statements: db_sql.clone(),
                            });
                        }
                    }
                    plan.push(Action::Apply {
                        object: secrets::role_secret(&ctx, role, creds, Some(hash)),
                    });
                }
            }
            None => roles_pending = true,
        }
    }

    // issue 6 (core/src/backup): backups, schedules, retention, restores. The lifecycle
    // (`Instances::decide`) honours `backup::restore_gate` itself.
    crate::backup::plan_backups(obs, env, &mut plan);

    let status = lifecycle::status(obs, &ctx, &inst, env, switchover_done.as_deref());
    let converged = status.pointer("/state").and_then(Value::as_str) == Some("ready")
        || status.pointer("/state").and_then(Value::as_str) == Some("paused");
    if !compare::is_subset_of(&status, &obs.cluster.status) {
        plan.push(Action::PatchStatus {
            target: cluster_ref(obs),
            status,
        });
    }
    if !converged || roles_pending {
        plan.push(Action::RequeueAfter {
            after: REQUEUE_CONVERGING,
        });
    }
    plan
}
