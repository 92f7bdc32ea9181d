//! The lifecycle of a cluster: which instances exist, pause/resume ordering, scale-down that
//! never removes the primary, one-at-a-time rolling restarts with a switchover before the
//! primary restarts, requested switchovers, deletion finalizers, and the status.

use crate::api::PerconaPGCluster;
use crate::build::secrets::{self, Credentials, Role};
use crate::build::{Ctx, instance, memo, scram};
use crate::labels::{self, annotations};
use crate::observed::{Observed, annotation, by_name, label, pod_ready};
use crate::plan::{Action, EventType, ObjectRef, Plan};
use crate::reconcile::cluster_ref;
use crate::{Env, naming};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// One instance the cluster keeps, with its rendered StatefulSet.
#[derive(Debug, Clone)]
pub struct Inst {
    pub name: String,
    pub set_index: usize,
    pub set: String,
    /// The StatefulSet tusk applies for it (shared with the render memo).
    pub desired: std::sync::Arc<memo::Rendered>,
    /// The pod template hash of `desired`.
    pub hash: String,
    /// Whether the StatefulSet exists already.
    pub exists: bool,
}

impl Inst {
    pub fn pod(&self) -> String {
        naming::instance_pod(&self.name)
    }
}

/// The instance decisions of one reconcile.
#[derive(Debug, Clone, Default)]
pub struct Instances {
    pub keep: Vec<Inst>,
    /// Instance StatefulSets to remove (scale-down or removed set): (name, uid).
    pub remove: Vec<(String, String)>,
    /// The instance holding the primary role, if known.
    pub primary: Option<String>,
    pub repo_host_replicas: i32,
    pub pgbouncer_replicas: i32,
    /// Whether any instance pod exists (paused clusters stop the repo host after the last).
    pub any_instance_pod: bool,
    /// A restore holds the cluster (`backup::restore_gate`): instances stay stopped and
    /// nothing is sent to a primary (switchovers, SQL).
    pub restoring: bool,
}

fn sts_uid(obs: &Observed, name: &str) -> Option<String> {
    by_name(&obs.stateful_sets, name).and_then(|s| s.metadata.uid.clone())
}

impl Instances {
    /// Decides the instance set: existing instances are read back from the observed
    /// StatefulSets (label instance-set) so names never change; missing ones reuse names of
    /// orphaned data PVCs of the same set, then get fresh suffixes from the entropy.
    pub fn decide(obs: &Observed, ctx: &Ctx, env: &Env) -> Self {
        let cluster = ctx.name;
        let existing: Vec<(&str, &str, Option<&str>)> = obs
            .stateful_sets
            .iter()
            .filter(|s| label(&s.metadata, labels::CLUSTER) == Some(cluster))
            .filter_map(|s| {
                let set = label(&s.metadata, labels::INSTANCE_SET)?;
                Some((
                    s.metadata.name.as_deref()?,
                    set,
                    s.metadata.deletion_timestamp.as_ref().map(|_| ""),
                ))
            })
            .collect();
        let primary_pod = obs.primary_pod();
        let primary = primary_pod
            .and_then(|p| label(&p.metadata, labels::INSTANCE))
            .map(str::to_string);
        let pod_of = |inst: &str| obs.pod(&naming::instance_pod(inst));
        let any_instance_pod = obs
            .pods
            .iter()
            .any(|p| label(&p.metadata, labels::INSTANCE).is_some());

        let mut taken: BTreeSet<String> = obs
            .stateful_sets
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        for p in &obs.pvcs {
            if let Some(i) = label(&p.metadata, labels::INSTANCE) {
                taken.insert(i.to_string());
            }
        }
        let mut keep_names: Vec<(usize, String, bool)> = Vec::new();
        let mut remove = Vec::new();
        for (si, set) in ctx.cr.spec.instances.iter().enumerate() {
            let want = set.replicas().max(0) as usize;
            let mut mine: Vec<&str> = existing
                .iter()
                .filter(|(_, s, deleting)| *s == set.name && deleting.is_none())
                .map(|(n, _, _)| *n)
                .collect();
            // Keep the primary, then ready instances, then by name.
            mine.sort_by_key(|n| {
                (
                    primary.as_deref() != Some(*n),
                    !pod_of(n).is_some_and(pod_ready),
                    n.to_string(),
                )
            });
            for (k, n) in mine.iter().enumerate() {
                if k < want {
                    keep_names.push((si, n.to_string(), true));
                } else if let Some(uid) = sts_uid(obs, n) {
                    remove.push((n.to_string(), uid));
                }
            }
            let missing = want.saturating_sub(mine.len());
            if missing > 0 {
                // Orphaned data PVCs of this set (their StatefulSet was removed): reuse them.
                let mut orphans: Vec<String> = obs
                    .pvcs
                    .iter()
                    .filter(|p| {
                        label(&p.metadata, labels::INSTANCE_SET) == Some(set.name.as_str())
                            && label(&p.metadata, labels::ROLE) == Some(labels::ROLE_PGDATA)
                            && p.metadata.deletion_timestamp.is_none()
                    })
                    .filter_map(|p| label(&p.metadata, labels::INSTANCE).map(str::to_string))
                    .filter(|i| by_name(&obs.stateful_sets, i).is_none())
                    .collect();
                orphans.sort();
                orphans.dedup();
                let rng = env.rng(&format!("instance/{}", set.name));
                let mut fresh = Vec::new();
                let mut tries = 0;
                while fresh.len() + orphans.len().min(missing) < missing && tries < 1000 {
                    tries += 1;
                    let suffix = rng.string(naming::SUFFIX_ALPHABET, naming::SUFFIX_LEN);
                    let name = naming::instance(cluster, &set.name, &suffix);
                    if taken.insert(name.clone()) {
                        fresh.push(name);
                    }
                }
                for n in orphans.into_iter().take(missing).chain(fresh) {
                    keep_names.push((si, n, false));
                }
            }
        }
        // Instances of sets no longer in the spec.
        for (n, set, deleting) in &existing {
            if deleting.is_none()
                && !ctx.cr.spec.instances.iter().any(|s| s.name == *set)
                && let Some(uid) = sts_uid(obs, n)
            {
                remove.push((n.to_string(), uid));
            }
        }
        keep_names.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

        // A restore holds the cluster (issue 6): every instance stays at 0 replicas, and the
        // instance receiving the restored data is marked to start first once the gate lifts
        // (an emptied instance must never win Patroni's initialize race with an initdb).
        let gate = crate::backup::restore_gate(obs);

        // Pause: replicas stop first, the primary last; resume starts the last primary first.
        let paused = ctx.cr.is_paused();
        let startup_marked: Vec<&str> = keep_names
            .iter()
            .filter(|(_, n, _)| {
                by_name(&obs.stateful_sets, n)
                    .and_then(|s| annotation(&s.metadata, annotations::STARTUP_INSTANCE))
                    == Some("true")
            })
            .map(|(_, n, _)| n.as_str())
            .collect();
        let startup = if let Some(g) = &gate {
            g.startup_instance
                .clone()
                .filter(|s| keep_names.iter().any(|(_, n, _)| n == s))
        } else if paused {
            primary
                .clone()
                .or_else(|| (startup_marked.len() == 1).then(|| startup_marked[0].to_string()))
        } else if startup_marked.len() == 1 && !pod_of(startup_marked[0]).is_some_and(pod_ready) {
            Some(startup_marked[0].to_string())
        } else {
            None
        };
        let others_have_pods = |me: &str| {
            obs.pods.iter().any(|p| {
                label(&p.metadata, labels::INSTANCE).is_some_and(|i| i != me)
                    && label(&p.metadata, labels::CLUSTER) == Some(cluster)
            })
        };
        let mut keep = Vec::new();
        for (si, name, exists) in keep_names {
            let set = &ctx.cr.spec.instances[si];
            let replicas = if gate.is_some() {
                0
            } else if paused {
                if startup.as_deref() == Some(name.as_str()) && others_have_pods(&name) {
                    1
                } else {
                    0
                }
            } else if let Some(s) = startup.as_deref() {
                // Resuming: the last primary first, the others once it is ready.
                if s == name { 1 } else { 0 }
            } else {
                1
            };
            let is_startup = startup.as_deref() == Some(name.as_str());
            let clear_mark = !is_startup
                && by_name(&obs.stateful_sets, &name)
                    .and_then(|s| annotation(&s.metadata, annotations::STARTUP_INSTANCE))
                    .is_some();
            let key = format!("instance-sts/{si}/{name}/{replicas}/{is_startup}/{clear_mark}");
            let desired = memo::get(ctx, &key, || {
                let mut desired = instance::statefulset(ctx, set, &name, replicas, is_startup);
                if clear_mark {
                    // Clear a stale mark explicitly: apply does not compare absent fields.
                    desired["metadata"]["annotations"][annotations::STARTUP_INSTANCE] =
                        json!("false");
                }
                memo::Rendered::new(vec![desired])
            });
            let hash = desired
                .object()
                .get("spec")
                .and_then(|s| s.get("template"))
                .and_then(|t| t.get("metadata"))
                .and_then(instance::template_hash_of)
                .unwrap_or("")
                .to_string();
            keep.push(Inst {
                set: set.name.clone(),
                name,
                set_index: si,
                desired,
                hash,
                exists,
            });
        }
        let stopped = paused && !any_instance_pod;
        Self {
            keep,
            remove,
            primary,
            repo_host_replicas: if stopped { 0 } else { 1 },
            pgbouncer_replicas: if stopped { 0 } else { ctx.pgbouncer_replicas() },
            any_instance_pod,
            restoring: gate.is_some(),
        }
    }

    /// Names of the kept instances, in spec order.
    pub fn all_names(&self) -> Vec<String> {
        self.keep.iter().map(|i| i.name.clone()).collect()
    }

    /// The primary's pod, when it is ready (SQL and switchovers go there).
    pub fn ready_primary_pod(&self, obs: &Observed) -> Option<ObjectRef> {
        if self.restoring {
            return None;
        }
        let p = obs.primary_pod().filter(|p| pod_ready(p))?;
        Some(pod_ref(obs, p.metadata.name.as_deref().unwrap_or("")))
    }
}

fn pod_ref(obs: &Observed, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: obs.cluster.metadata.namespace.clone(),
        name: name.to_string(),
    }
}

fn pod_hash<'a>(obs: &'a Observed, inst: &str) -> Option<&'a str> {
    obs.pod(&naming::instance_pod(inst))
        .and_then(|p| annotation(&p.metadata, annotations::TEMPLATE_HASH))
}

/// Whether the instance's pod runs the desired template.
pub fn pod_updated(obs: &Observed, i: &Inst) -> bool {
    pod_hash(obs, &i.name) == Some(i.hash.as_str())
}

fn sts_current(obs: &Observed, i: &Inst) -> bool {
    by_name(&obs.stateful_sets, &i.name)
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| annotation(m, annotations::TEMPLATE_HASH))
        == Some(i.hash.as_str())
}

/// The switchover key requested through `spec.patroni.switchover` + the trigger annotation.
fn switchover_request(cr: &PerconaPGCluster) -> Option<(String, Option<String>)> {
    let sw = cr.spec.patroni.as_ref()?.switchover.as_ref()?;
    if !sw.enabled {
        return None;
    }
    let a = cr.metadata.annotations.as_ref()?;
    let key = a
        .get(annotations::TRIGGER_SWITCHOVER)
        .or_else(|| a.get(annotations::TRIGGER_SWITCHOVER_PERCONA))?;
    Some((key.clone(), sw.target_instance.clone()))
}

fn switchover_done(cr: &PerconaPGCluster) -> Option<&str> {
    cr.status
        .as_ref()?
        .patroni
        .as_ref()?
        .status
        .as_ref()?
        .switchover
        .as_deref()
}

/// Whether the cluster asks Patroni for synchronous replication
/// (`spec.patroni.dynamicConfiguration.synchronous_mode`: true, "on", or Patroni 4's "quorum").
pub fn synchronous_mode(cr: &PerconaPGCluster) -> bool {
    let mode = cr
        .spec
        .patroni
        .as_ref()
        .and_then(|p| p.dynamic_configuration.as_ref())
        .and_then(|d| d.get("synchronous_mode"));
    match mode {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => {
            matches!(
                s.to_ascii_lowercase().as_str(),
                "on" | "true" | "yes" | "1" | "quorum"
            )
        }
        _ => false,
    }
}

/// Removals, requested switchovers and rolling restarts. Returns the switchover request key to
/// record in the status once carried out.
pub fn steps(obs: &Observed, ctx: &Ctx, inst: &Instances, plan: &mut Plan) -> Option<String> {
    let primary = inst.primary.as_deref();
    // No switchover while a restore holds the cluster: the primary is about to be replaced.
    let primary_pod = obs
        .primary_pod()
        .filter(|p| pod_ready(p) && !inst.restoring);
    let ready = |i: &Inst| obs.pod(&i.pod()).is_some_and(pod_ready);
    // The best candidate: a ready, updated replica, then any ready replica, by name.
    let candidate = || {
        inst.keep
            .iter()
            .filter(|i| Some(i.name.as_str()) != primary && ready(i))
            .min_by_key(|i| (!pod_updated(obs, i), i.name.clone()))
    };
    let mut switched = false;
    // In synchronous mode Patroni hands over only to its synchronous standby (and refuses a
    // switchover naming another member), which the operator does not track: the switchovers
    // the operator starts itself name no candidate there, and Patroni picks that standby.
    let sync = synchronous_mode(ctx.cr);
    let own_choice = |c: &Inst| (!sync).then(|| c.pod());

    // Scale-down and removed sets: replicas go at once; the primary only after a switchover.
    // While no member leads, nothing goes: the instance to remove may be the one Patroni is
    // about to promote (a switchover candidate, the synchronous standby) or hold the only
    // good copy of the data.
    let removable = if primary.is_some() {
        inst.remove.as_slice()
    } else {
        &[]
    };
    for (name, uid) in removable {
        if Some(name.as_str()) == primary {
            if let (Some(pp), Some(c)) = (primary_pod, candidate())
                && !switched
            {
                plan.push(Action::Switchover {
                    pod: pod_ref(obs, pp.metadata.name.as_deref().unwrap_or("")),
                    candidate: own_choice(c),
                });
                switched = true;
            }
            continue;
        }
        plan.push(Action::Delete {
            target: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                namespace: Some(ctx.ns.to_string()),
                name: name.clone(),
            },
            uid: uid.clone(),
        });
    }

    let mut done = None;
    if let Some((key, target)) = switchover_request(ctx.cr)
        && switchover_done(ctx.cr) != Some(key.as_str())
    {
        let target_inst = match &target {
            Some(t) => inst.keep.iter().find(|i| &i.name == t || i.pod() == *t),
            None => candidate(),
        };
        match (target_inst, primary_pod) {
            (Some(t), _) if Some(t.name.as_str()) == primary => done = Some(key),
            (Some(t), Some(pp)) if ready(t) && !switched => {
                plan.push(Action::Switchover {
                    pod: pod_ref(obs, pp.metadata.name.as_deref().unwrap_or("")),
                    candidate: Some(t.pod()),
                });
                plan.push(Action::Event {
                    regarding: cluster_ref(obs),
                    type_: EventType::Normal,
                    reason: "Switchover".into(),
                    message: format!(
                        "switchover requested from {} to {}",
                        pp.metadata.name.as_deref().unwrap_or(""),
                        t.pod()
                    ),
                });
                switched = true;
                done = Some(key);
            }
            _ => {}
        }
    }

    // Rolling restart, one pod at a time, only when everything else is settled.
    if switched || ctx.cr.is_paused() || !inst.remove.is_empty() || inst.restoring {
        return done;
    }
    let settled = inst
        .keep
        .iter()
        .all(|i| i.exists && sts_current(obs, i) && ready(i));
    if !settled {
        return done;
    }
    let outdated: Vec<&Inst> = inst.keep.iter().filter(|i| !pod_updated(obs, i)).collect();
    let delete_pod = |plan: &mut Plan, i: &Inst| {
        if let Some(uid) = obs.pod(&i.pod()).and_then(|p| p.metadata.uid.clone()) {
            plan.push(Action::Delete {
                target: pod_ref(obs, &i.pod()),
                uid,
            });
        }
    };
    if let Some(r) = outdated.iter().find(|i| Some(i.name.as_str()) != primary) {
        delete_pod(plan, r);
    } else if let Some(p) = outdated.first() {
        // Only the primary is outdated: hand over to an updated replica, or restart it when
        // it is alone.
        let updated_replica = inst
            .keep
            .iter()
            .filter(|i| Some(i.name.as_str()) != primary && pod_updated(obs, i))
            .min_by_key(|i| i.name.clone());
        match (updated_replica, primary_pod) {
            (Some(c), Some(pp)) => plan.push(Action::Switchover {
                pod: pod_ref(obs, pp.metadata.name.as_deref().unwrap_or("")),
                candidate: own_choice(c),
            }),
            (None, _) if inst.keep.len() == 1 => delete_pod(plan, p),
            _ => {}
        }
    }
    done
}

/// The password and verifier of a role: read back from its Secret, generated only when the
/// Secret has none (first creation, or the user emptied `password` to rotate it). A freshly
/// generated password comes without a verifier (see [`Credentials`]). The verifier is
/// recomputed (PBKDF2) only when the Secret's `verifier-of` fingerprint does not match its
/// password and verifier, i.e. never on a no-op reconcile.
pub fn credentials(observed: Option<&Secret>, role: &Role, env: &Env) -> Credentials {
    let get = |k: &str| -> Option<String> {
        observed?
            .data
            .as_ref()?
            .get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|s| !s.is_empty())
    };
    let Some(password) = get(secrets::password_key(role.kind)) else {
        return secrets::generate_credentials(env, role);
    };
    let stored = get(secrets::verifier_key(role.kind)).filter(|v| v.starts_with("SCRAM-SHA-256$"));
    let fingerprint = observed.and_then(|s| annotation(&s.metadata, annotations::VERIFIER_OF));
    let verifier = match (stored, fingerprint) {
        (Some(v), Some(fp)) if fp == secrets::verifier_fingerprint(&password, &v) => v,
        // A verifier without a fingerprint (written by an earlier version or migrated from
        // another operator): check it once; the fingerprint is stored with it afterwards.
        (Some(v), None) if scram::verifier_matches(&v, &password) => v,
        _ => secrets::verifier_for(env, role, &password),
    };
    Credentials {
        password,
        verifier: Some(verifier),
    }
}

fn time(env: &Env) -> Value {
    serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        env.now,
    ))
    .unwrap_or(Value::Null)
}

/// Conditions tusk owns; others (e.g. from the backup controller) are carried over.
const OWN_CONDITIONS: &[&str] = &["ReconcileError"];

fn other_conditions(obs: &Observed) -> Vec<Value> {
    obs.cluster
        .status
        .as_ref()
        .map(|s| {
            s.conditions
                .iter()
                .filter(|c| !OWN_CONDITIONS.contains(&c.type_.as_str()))
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The status of a valid cluster, from what is observed.
pub fn status(
    obs: &Observed,
    ctx: &Ctx,
    inst: &Instances,
    env: &Env,
    switchover_done: Option<&str>,
) -> Value {
    let ready_pod = |i: &Inst| obs.pod(&i.pod()).is_some_and(pod_ready);
    let mut sets = Vec::new();
    let (mut size, mut ready, mut updated) = (0i64, 0i64, 0i64);
    for (si, set) in ctx.cr.spec.instances.iter().enumerate() {
        let mine: Vec<&Inst> = inst.keep.iter().filter(|i| i.set_index == si).collect();
        let s = set.replicas().max(0) as i64;
        let r = mine.iter().filter(|i| ready_pod(i)).count() as i64;
        updated += mine
            .iter()
            .filter(|i| ready_pod(i) && pod_updated(obs, i))
            .count() as i64;
        size += s;
        ready += r;
        sets.push(json!({"name": set.name, "size": s, "ready": r}));
    }
    let bouncer_size = if ctx.has_pgbouncer() {
        ctx.pgbouncer_replicas()
    } else {
        0
    };
    let bouncer_ready = by_name(&obs.deployments, &naming::pgbouncer(ctx.name))
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let repo_ready = !ctx.has_repo_host()
        || by_name(&obs.stateful_sets, &naming::repo_host(ctx.name))
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
            >= 1;
    let any_ready = inst.keep.iter().any(ready_pod)
        || obs
            .pods
            .iter()
            .any(|p| label(&p.metadata, labels::INSTANCE).is_some() && pod_ready(p));
    // The `-primary` Service routes by the role label Patroni sets: until a ready pod carries
    // it, clients cannot reach the database, so the cluster is not ready yet.
    let primary_routable = obs.pods.iter().any(|p| {
        p.metadata.deletion_timestamp.is_none()
            && label(&p.metadata, labels::ROLE).is_some_and(labels::is_primary_role)
            && pod_ready(p)
    });
    let state = if ctx.cr.is_paused() {
        if any_ready || inst.any_instance_pod {
            "stopping"
        } else {
            "paused"
        }
    } else if !repo_ready
        || i64::from(bouncer_ready) != i64::from(bouncer_size)
        || ready != size
        || updated != size
        || size == 0
        || !primary_routable
        || !inst.remove.is_empty()
    {
        "initializing"
    } else {
        "ready"
    };
    let host = if ctx.has_pgbouncer() {
        let svc = by_name(&obs.services, &naming::pgbouncer(ctx.name));
        let lb = svc
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone().or_else(|| i.hostname.clone()));
        lb.unwrap_or_else(|| naming::service_host(&naming::pgbouncer(ctx.name), ctx.ns, None))
    } else {
        naming::service_host(&naming::primary_service(ctx.name), ctx.ns, None)
    };
    let mut st = json!({
        "state": state,
        "host": host,
        "postgres": {"size": size, "ready": ready, "instances": sets, "version": ctx.pg_version()},
        "pgbouncer": {"size": bouncer_size, "ready": bouncer_ready},
        "conditions": other_conditions(obs),
    });
    if let Some(c) = crate::backup::backups::replica_create_condition(obs, env.now)
        && let Some(list) = st["conditions"].as_array_mut()
    {
        list.retain(|o| o["type"] != crate::backup::backups::REPLICA_CREATE_CONDITION);
        list.push(c);
    }
    if let Some(g) = ctx.cr.metadata.generation {
        st["observedGeneration"] = json!(g);
    }
    let done = switchover_done.or_else(|| self::switchover_done(ctx.cr));
    if let Some(d) = done {
        st["patroni"] = json!({"status": {"switchover": d}});
    }
    if ctx.has_repo_host() {
        st["pgbackrest"] = json!({"repoHost": {"apiVersion": "apps/v1", "kind": "StatefulSet", "ready": repo_ready}});
    }
    let repos = crate::backup::backups::repo_statuses(obs);
    if !repos.is_empty() {
        st["pgbackrest"]["repos"] = Value::Array(repos);
    }
    st
}

/// Validation errors as `path: message` lines.
pub fn validation_errors(cr: &PerconaPGCluster) -> Vec<String> {
    crate::render::validation_messages(cr)
}

/// A `spec.postgresVersion` other than the major version the cluster runs (its status):
/// the data directories hold that version's files, which another major version cannot start
/// on, so nothing is rolled. Upstream does a major upgrade with a separate PerconaPGUpgrade
/// (tusk has none) and no downgrade at all.
pub fn version_change_error(cr: &PerconaPGCluster) -> Option<String> {
    let running = cr.status.as_ref()?.postgres.as_ref()?.version?;
    let wanted = cr.spec.postgres_version;
    (running > 0 && running != wanted).then(|| {
        format!(
            "spec.postgresVersion: cannot change from {running} to {wanted} in place: the data directories hold PostgreSQL {running}, which PostgreSQL {wanted} cannot start on; set it back to {running} (major upgrades are not supported, downgrades are not possible)"
        )
    })
}

/// An invalid spec: only a status condition and a Warning Event, nothing else.
pub fn invalid(obs: &Observed, env: &Env, errors: &[String], plan: &mut Plan) {
    let message = errors.join("; ");
    let observed = obs.cluster.status.as_ref();
    let already = observed.is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "ReconcileError" && c.status == "True" && c.message == message)
    });
    if already {
        return;
    }
    let mut status = observed
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({}));
    let mut conds = other_conditions(obs);
    conds.push(json!({
        "type": "ReconcileError",
        "status": "True",
        "reason": "InvalidSpec",
        "message": message,
        "lastTransitionTime": time(env),
        "observedGeneration": obs.cluster.metadata.generation.unwrap_or(0),
    }));
    status["conditions"] = Value::Array(conds);
    plan.push(Action::PatchStatus {
        target: cluster_ref(obs),
        status,
    });
    plan.push(Action::Event {
        regarding: cluster_ref(obs),
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        message: format!("the cluster spec is invalid, nothing was changed: {message}"),
    });
}

/// Deletion: honour `percona.com/delete-pvc` (PVCs and password Secrets) and
/// `percona.com/delete-ssl` (TLS Secrets tusk made), then drop those finalizers. Without them
/// these objects outlive the cluster (they carry no ownerReference).
pub fn finalize(obs: &Observed, plan: &mut Plan) {
    let cr = &obs.cluster;
    let name = cr.metadata.name.as_deref().unwrap_or("");
    let ns = cr.metadata.namespace.clone();
    let fins = cr.metadata.finalizers.clone().unwrap_or_default();
    let del = |plan: &mut Plan,
               api: &str,
               kind: &str,
               m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        if m.deletion_timestamp.is_some() {
            return;
        }
        if let (Some(n), Some(uid)) = (&m.name, &m.uid) {
            plan.push(Action::Delete {
                target: ObjectRef {
                    api_version: api.into(),
                    kind: kind.into(),
                    namespace: ns.clone(),
                    name: n.clone(),
                },
                uid: uid.clone(),
            });
        }
    };
    if fins.iter().any(|f| f == labels::FINALIZER_DELETE_PVC) {
        for p in &obs.pvcs {
            if label(&p.metadata, labels::CLUSTER) == Some(name) {
                del(plan, "v1", "PersistentVolumeClaim", &p.metadata);
            }
        }
        for s in &obs.secrets {
            let role = label(&s.metadata, labels::ROLE);
            if label(&s.metadata, labels::CLUSTER) == Some(name)
                && matches!(
                    role,
                    Some(labels::ROLE_PGUSER) | Some("replication") | Some(labels::ROLE_PGBOUNCER)
                )
            {
                del(plan, "v1", "Secret", &s.metadata);
            }
        }
        plan.push(Action::RemoveFinalizer {
            target: cluster_ref(obs),
            finalizer: labels::FINALIZER_DELETE_PVC.into(),
        });
    }
    if fins.iter().any(|f| f == labels::FINALIZER_DELETE_SSL) {
        let custom: Vec<String> = cr
            .spec
            .secrets
            .as_ref()
            .map(|s| {
                [
                    &s.custom_tls_secret,
                    &s.custom_replication_tls_secret,
                    &s.custom_root_ca_tls_secret,
                ]
                .into_iter()
                .flatten()
                .map(|p| p.name.clone())
                .collect()
            })
            .unwrap_or_default();
        for n in [
            naming::cluster_ca_secret(name),
            naming::cluster_cert_secret(name),
            naming::replication_cert_secret(name),
            crate::tls::pgbouncer_cert_secret(name),
        ] {
            if custom.contains(&n) {
                continue;
            }
            if let Some(s) = by_name(&obs.secrets, &n) {
                del(plan, "v1", "Secret", &s.metadata);
            }
        }
        plan.push(Action::RemoveFinalizer {
            target: cluster_ref(obs),
            finalizer: labels::FINALIZER_DELETE_SSL.into(),
        });
    }
}
