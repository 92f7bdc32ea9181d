//! `reconcile(&Observed, &Env) -> Plan`: the whole decision of one reconcile, level-based.
//!
//! Order of a plan (every prefix is safe to stop after): RBAC, password Secrets, ConfigMaps,
//! Services, PVCs, instance StatefulSets, repo host, pgBouncer, PDBs; then lifecycle steps
//! (instance removal, rolling restarts, switchovers), SQL for roles, and last the status.

pub mod compare;

use crate::build::memo::Rendered;
use crate::build::{
    Ctx, configmaps, instance, memo, pdb, pgbouncer, rbac, repohost, secrets, services,
    sidecar_pvcs,
};
use crate::labels::annotations;
use crate::lifecycle::{self, Instances};
use crate::observed::{Observed, annotation, by_name};
use crate::plan::{Action, ObjectRef, Plan};
use crate::{Env, naming};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
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
/// With `memo`, an observed object equal to the one last compared with the same rendered
/// object gets the remembered verdict (see [`memo::Rendered::verdict`]).
fn satisfied<T>(list: &[T], name: &str, desired: &Value, memo: Option<(&Rendered, usize)>) -> bool
where
    T: kube::Resource + Serialize + Clone + PartialEq + Send + Sync + 'static,
{
    by_name(list, name).is_some_and(|o| {
        let check = || {
            let meta = o.meta();
            // An object being deleted will be gone soon; re-create it afterwards.
            meta.deletion_timestamp.is_none()
                && compare::is_subset_of(desired, o)
                && !compare::drops_owned_fields(desired, meta.managed_fields.as_deref())
        };
        match memo {
            Some((r, i)) => r.verdict(i, o, crate::build::memo::version_of(o.meta()), check),
            None => check(),
        }
    })
}

/// The objects `render` builds, through the render memo (`key` names the builder and its
/// arguments besides `ctx`).
fn objs(ctx: &Ctx, key: &str, render: impl FnOnce() -> Vec<Value>) -> Arc<Rendered> {
    memo::get(ctx, key, || Rendered::new(render()))
}

/// PodDisruptionBudgets tusk made that the spec no longer asks for (an instance set removed,
/// a set or pgBouncer down to one replica, pgBouncer gone) are deleted, as upstream does: a
/// budget left with `minAvailable: 1` over a single pod blocks every drain of its node.
fn delete_unwanted_pdbs(obs: &Observed, wanted: &Rendered, plan: &mut Plan) {
    let cr_uid = obs.cluster.metadata.uid.as_deref();
    for p in &obs.pdbs {
        let (Some(name), Some(uid)) = (p.metadata.name.as_deref(), p.metadata.uid.as_ref()) else {
            continue;
        };
        let ours = p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(o.uid.as_str()) == cr_uid);
        let still_wanted = wanted.objects().iter().any(|w| {
            w.get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                == Some(name)
        });
        if ours && !still_wanted && p.metadata.deletion_timestamp.is_none() {
            plan.push(Action::Delete {
                target: ObjectRef {
                    api_version: "policy/v1".into(),
                    kind: "PodDisruptionBudget".into(),
                    namespace: p.metadata.namespace.clone(),
                    name: name.to_string(),
                },
                uid: uid.clone(),
            });
        }
    }
}

/// Emits an Apply of each rendered object, in order, unless the observed object already
/// satisfies it: shared with the memo, not copied.
fn apply_all(obs: &Observed, plan: &mut Plan, desired: &Rendered) {
    for (i, d) in desired.objects().iter().enumerate() {
        if !already_there(obs, d, Some((desired, i))) {
            plan.push(Action::Apply {
                object: Arc::clone(d),
            });
        }
    }
}

fn already_there(obs: &Observed, desired: &Value, memo: Option<(&Rendered, usize)>) -> bool {
    // `get` rather than `pointer`, which allocates a String per path segment.
    let kind = desired.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = desired
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (d, m) = (desired, memo);
    match kind {
        "StatefulSet" => satisfied(&obs.stateful_sets, name, d, m),
        "Deployment" => satisfied(&obs.deployments, name, d, m),
        "Service" => satisfied(&obs.services, name, d, m),
        "ConfigMap" => satisfied(&obs.config_maps, name, d, m),
        "Secret" => satisfied(&obs.secrets, name, d, m),
        "Endpoints" => satisfied(&obs.endpoints, name, d, m),
        "PersistentVolumeClaim" => satisfied(&obs.pvcs, name, d, m),
        "PodDisruptionBudget" => satisfied(&obs.pdbs, name, d, m),
        "ServiceAccount" => satisfied(&obs.service_accounts, name, d, m),
        "Role" => satisfied(&obs.roles, name, d, m),
        "RoleBinding" => satisfied(&obs.role_bindings, name, d, m),
        "Job" => satisfied(&obs.jobs, name, d, m),
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
    let mut errors = lifecycle::validation_errors(cr);
    errors.extend(lifecycle::version_change_error(cr));
    if !errors.is_empty() {
        lifecycle::invalid(obs, env, &errors, &mut plan);
        return plan;
    }
    let ctx = Ctx::new(cr);
    let inst = Instances::decide(obs, &ctx, env);

    // RBAC first: pods cannot start without their ServiceAccount.
    let one = |key: &str, render: fn(&Ctx) -> Value| objs(&ctx, key, || vec![render(&ctx)]);
    apply_all(obs, &mut plan, &one("sa", rbac::instance_service_account));
    apply_all(obs, &mut plan, &one("role", rbac::instance_role));
    apply_all(
        obs,
        &mut plan,
        &one("rolebinding", rbac::instance_role_binding),
    );
    if ctx.has_repo_host() {
        apply_all(
            obs,
            &mut plan,
            &one("br-sa", rbac::pgbackrest_service_account),
        );
        apply_all(obs, &mut plan, &one("br-role", rbac::pgbackrest_role));
        apply_all(
            obs,
            &mut plan,
            &one("br-rolebinding", rbac::pgbackrest_role_binding),
        );
    }

    // Password Secrets: written before anything uses them, never regenerated once set.
    let auto_schema = cr
        .spec
        .auto_create_user_schema
        .unwrap_or(ctx.features.auto_create_user_schema);
    let mut pending_roles = Vec::new();
    let mut awaiting_verifier = false;
    for (ri, role) in secrets::roles(&ctx).into_iter().enumerate() {
        let observed = by_name(&obs.secrets, &role.secret);
        let creds = lifecycle::credentials(observed, &role, env);
        let applied = observed.and_then(|s| annotation(&s.metadata, annotations::USER_APPLIED));
        // The role is the `ri`-th of `roles(&ctx)`; the rest of the inputs are in the key,
        // each length-prefixed so that no two input sets share a key.
        let field = |x: Option<&str>| x.map_or("-".to_string(), |x| format!("{}:{x}", x.len()));
        let key = format!(
            "role-secret/{ri}/{}/{}/{}",
            field(Some(&creds.password)),
            field(creds.verifier.as_deref()),
            field(applied)
        );
        let secret = objs(&ctx, &key, || {
            vec![secrets::role_secret(&ctx, &role, &creds, applied)]
        });
        apply_all(obs, &mut plan, &secret);
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
        Ok(objects) => objects.iter().for_each(|o| apply_all(obs, &mut plan, o)),
        Err(e) => plan.push(Action::Event {
            regarding: cluster_ref(obs),
            type_: crate::plan::EventType::Warning,
            reason: "TLSFailed".into(),
            message: e.to_string(),
        }),
    }

    apply_all(obs, &mut plan, &one("cm-patroni", configmaps::patroni));
    let names = inst.all_names();
    let key = format!("cm-pgbackrest/{}", names.join(","));
    let cm = objs(&ctx, &key, || {
        configmaps::pgbackrest(&ctx, &names).into_iter().collect()
    });
    apply_all(obs, &mut plan, &cm);
    let cm = objs(&ctx, "cm-pgbouncer", || {
        configmaps::pgbouncer(&ctx).into_iter().collect()
    });
    apply_all(obs, &mut plan, &cm);

    apply_all(obs, &mut plan, &one("svc-ha", services::ha));
    apply_all(obs, &mut plan, &one("svc-ha-config", services::ha_config));
    apply_all(obs, &mut plan, &one("svc-primary", services::primary));
    if let Some(ip) = by_name(&obs.services, &naming::ha_service(ctx.name))
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        let ep = objs(&ctx, &format!("ep-primary/{ip}"), || {
            vec![services::primary_endpoints(&ctx, ip)]
        });
        apply_all(obs, &mut plan, &ep);
    }
    apply_all(obs, &mut plan, &one("svc-replicas", services::replicas));
    apply_all(obs, &mut plan, &one("svc-pods", services::pods));
    if ctx.has_pgbouncer() {
        apply_all(obs, &mut plan, &one("svc-pgbouncer", services::pgbouncer));
    }

    // Volumes before the workloads that mount them.
    apply_all(
        obs,
        &mut plan,
        &objs(&ctx, "repo-pvcs", || repohost::repo_pvcs(&ctx)),
    );
    apply_all(
        obs,
        &mut plan,
        &objs(&ctx, "sidecar-pvcs", || sidecar_pvcs::all(&ctx)),
    );
    for i in &inst.keep {
        let key = format!("instance-pvcs/{}/{}", i.set_index, i.name);
        let pvcs = objs(&ctx, &key, || {
            instance::pvcs(&ctx, &ctx.cr.spec.instances[i.set_index], &i.name)
        });
        apply_all(obs, &mut plan, &pvcs);
    }
    for i in &inst.keep {
        apply_all(obs, &mut plan, &i.desired);
    }
    let key = format!("repohost-sts/{}", inst.repo_host_replicas);
    let sts = objs(&ctx, &key, || {
        repohost::statefulset(&ctx, inst.repo_host_replicas)
            .into_iter()
            .collect()
    });
    apply_all(obs, &mut plan, &sts);
    let key = format!("pgbouncer-deploy/{}", inst.pgbouncer_replicas);
    let d = objs(&ctx, &key, || {
        pgbouncer::deployment(&ctx, inst.pgbouncer_replicas)
            .into_iter()
            .collect()
    });
    apply_all(obs, &mut plan, &d);
    let pdbs = objs(&ctx, "pdbs", || {
        cr.spec
            .instances
            .iter()
            .filter_map(|set| pdb::instance_set(&ctx, set))
            .chain(pdb::pgbouncer(&ctx))
            .collect()
    });
    apply_all(obs, &mut plan, &pdbs);
    delete_unwanted_pdbs(obs, &pdbs, &mut plan);

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
                        object: secrets::role_secret(&ctx, role, creds, Some(hash)).into(),
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
    let state = status.get("state").and_then(Value::as_str);
    let converged = state == Some("ready") || state == Some("paused");
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
