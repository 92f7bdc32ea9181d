//! A pure, minimal stand-in for the API server and the built-in controllers, for tests of the
//! reconcile core (and for the world's own quick checks). Not a Kubernetes simulation: it does
//! just enough for "apply the plan, reconcile again" properties.
//!
//! - [`apply_plan`] executes a plan against an [`Observed`]: Apply replaces what tusk sends and
//!   keeps server-set fields (uid, creationTimestamp, status, a Service's clusterIP), giving new
//!   objects a deterministic uid and ClusterIP; Delete removes the object if the uid matches
//!   (deleting a StatefulSet removes its pods, like the garbage collector); PatchStatus replaces
//!   the status of the cluster, backup or restore it targets; RemoveFinalizer drops one finalizer; Switchover moves Patroni's role label and
//!   `leader` annotation to the candidate; Sql, Event and RequeueAfter change nothing.
//! - [`settle`] plays the StatefulSet/Deployment controllers, the kubelet and Patroni once:
//!   pods for replicas, all Ready, a primary elected when there is none.

use crate::labels;
use crate::observed::{Observed, by_name, label, pod_ready};
use crate::plan::{Action, Plan};
use k8s_openapi::Metadata;
use k8s_openapi::api::core::v1::{Endpoints, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn upsert<T: Serialize + DeserializeOwned + Metadata<Ty = ObjectMeta>>(
    list: &mut Vec<T>,
    object: &Value,
    counter: usize,
) {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object
        .pointer("/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut new = object.clone();
    match list
        .iter()
        .position(|o| o.metadata().name.as_deref() == Some(name))
    {
        Some(i) => {
            let old = serde_json::to_value(&list[i]).unwrap_or(Value::Null);
            for key in ["uid", "creationTimestamp", "resourceVersion"] {
                if let Some(v) = old.pointer(&format!("/metadata/{key}")) {
                    new["metadata"][key] = v.clone();
                }
            }
            if let Some(s) = old.get("status") {
                new["status"] = s.clone();
            }
            if kind == "Service"
                && new.pointer("/spec/clusterIP").is_none()
                && let Some(ip) = old.pointer("/spec/clusterIP")
            {
                new["spec"]["clusterIP"] = ip.clone();
            }
            if let Ok(v) = serde_json::from_value(new) {
                list[i] = v;
            }
        }
        None => {
            new["metadata"]["uid"] = json!(format!("uid-{}-{}", kind.to_lowercase(), name));
            new["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            if kind == "Service" && new.pointer("/spec/clusterIP").is_none() {
                new["spec"]["clusterIP"] =
                    json!(format!("10.96.{}.{}", counter / 250, counter % 250 + 1));
            }
            if let Ok(v) = serde_json::from_value(new) {
                list.push(v);
                list.sort_by(|a, b| a.metadata().name.cmp(&b.metadata().name));
            }
        }
    }
}

fn remove<T: Metadata<Ty = ObjectMeta>>(list: &mut Vec<T>, name: &str, uid: &str) -> bool {
    let before = list.len();
    list.retain(|o| {
        !(o.metadata().name.as_deref() == Some(name) && o.metadata().uid.as_deref() == Some(uid))
    });
    list.len() != before
}

/// Executes `plan` against `obs` (see the module docs for what each action does).
pub fn apply_plan(obs: &Observed, plan: &Plan) -> Observed {
    let mut o = obs.clone();
    for (n, a) in plan.actions.iter().enumerate() {
        match a {
            Action::Apply { object } => {
                let counter = o.services.len() + n;
                match object
                    .pointer("/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                {
                    "StatefulSet" => upsert(&mut o.stateful_sets, object, counter),
                    "Deployment" => upsert(&mut o.deployments, object, counter),
                    "Service" => upsert(&mut o.services, object, counter),
                    "ConfigMap" => upsert(&mut o.config_maps, object, counter),
                    "Secret" => upsert(&mut o.secrets, object, counter),
                    "Endpoints" => upsert(&mut o.endpoints, object, counter),
                    "PersistentVolumeClaim" => upsert(&mut o.pvcs, object, counter),
                    "PodDisruptionBudget" => upsert(&mut o.pdbs, object, counter),
                    "ServiceAccount" => upsert(&mut o.service_accounts, object, counter),
                    "Role" => upsert(&mut o.roles, object, counter),
                    "RoleBinding" => upsert(&mut o.role_bindings, object, counter),
                    "Job" => upsert(&mut o.jobs, object, counter),
                    _ => {}
                }
            }
            Action::Delete { target, uid } => {
                let name = target.name.as_str();
                match target.kind.as_str() {
                    "StatefulSet" if remove(&mut o.stateful_sets, name, uid) => {
                        // The garbage collector takes the StatefulSet's pods with it.
                        o.pods
                            .retain(|p| label(&p.metadata, labels::INSTANCE) != Some(name));
                    }
                    "Pod" => {
                        remove(&mut o.pods, name, uid);
                    }
                    "PersistentVolumeClaim" => {
                        remove(&mut o.pvcs, name, uid);
                    }
                    "Secret" => {
                        remove(&mut o.secrets, name, uid);
                    }
                    "Deployment" => {
                        remove(&mut o.deployments, name, uid);
                    }
                    "Service" => {
                        remove(&mut o.services, name, uid);
                    }
                    "ConfigMap" => {
                        remove(&mut o.config_maps, name, uid);
                    }
                    "PodDisruptionBudget" => {
                        remove(&mut o.pdbs, name, uid);
                    }
                    _ => {}
                }
            }
            Action::PatchStatus { target, status } => {
                // The status goes to the object the action names; a target that is not
                // observed (e.g. a deleted backup) is left alone, like a 404 would.
                let named = |m: &ObjectMeta| m.name.as_deref() == Some(target.name.as_str());
                match target.kind.as_str() {
                    "PerconaPGCluster" if named(&o.cluster.metadata) => {
                        o.cluster.status = serde_json::from_value(status.clone()).ok();
                    }
                    "PerconaPGBackup" => {
                        if let Some(b) = o.backups.iter_mut().find(|b| named(&b.metadata)) {
                            b.status = serde_json::from_value(status.clone()).ok();
                        }
                    }
                    "PerconaPGRestore" => {
                        if let Some(r) = o.restores.iter_mut().find(|r| named(&r.metadata)) {
                            r.status = serde_json::from_value(status.clone()).ok();
                        }
                    }
                    _ => {}
                }
            }
            Action::RemoveFinalizer { finalizer, .. } => {
                if let Some(f) = o.cluster.metadata.finalizers.as_mut() {
                    f.retain(|x| x != finalizer);
                }
            }
            Action::Switchover { pod, candidate } => {
                let target = candidate.clone().or_else(|| {
                    o.pods
                        .iter()
                        .filter(|p| p.metadata.name.as_deref() != Some(pod.name.as_str()))
                        .filter(|p| label(&p.metadata, labels::INSTANCE).is_some() && pod_ready(p))
                        .filter_map(|p| p.metadata.name.clone())
                        .next()
                });
                if let Some(t) = target
                    && o.pod(&t).is_some_and(pod_ready)
                {
                    set_primary(&mut o, &t);
                }
            }
            Action::RefreshBackupInfo { config_map, .. } => {
                // What `pgbackrest info` prints for a stanza with no backups yet.
                let mut cm = config_map.clone();
                cm["data"] = serde_json::json!({crate::backup::retention::INFO_KEY: "[]"});
                upsert(&mut o.config_maps, &cm, o.services.len() + n);
            }
            Action::Sql { .. } | Action::Event { .. } | Action::RequeueAfter { .. } => {}
        }
    }
    o
}

/// Makes `pod` Patroni's leader: role labels and the `<cluster>-ha` leader annotation.
pub fn set_primary(o: &mut Observed, pod: &str) {
    let cluster = o.cluster.metadata.name.clone().unwrap_or_default();
    for p in &mut o.pods {
        if label(&p.metadata, labels::INSTANCE).is_none() {
            continue;
        }
        let role = if p.metadata.name.as_deref() == Some(pod) {
            labels::ROLE_PRIMARY
        } else {
            labels::ROLE_REPLICA
        };
        p.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::ROLE.into(), role.into());
    }
    let scope = crate::naming::patroni_scope(&cluster);
    let ns = o.cluster.metadata.namespace.clone();
    match o
        .endpoints
        .iter_mut()
        .find(|e| e.metadata.name.as_deref() == Some(scope.as_str()))
    {
        Some(e) => {
            e.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert("leader".into(), pod.into());
        }
        None => {
            o.endpoints.push(Endpoints {
                metadata: ObjectMeta {
                    name: Some(scope),
                    namespace: ns,
                    uid: Some("uid-endpoints-ha".into()),
                    labels: Some([(labels::CLUSTER.to_string(), cluster.clone())].into()),
                    annotations: Some([("leader".to_string(), pod.to_string())].into()),
                    ..Default::default()
                },
                ..Default::default()
            });
            o.endpoints
                .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        }
    }
}

/// Sets a pod's Ready condition.
pub fn set_ready(pod: &mut Pod, ready: bool) {
    let st = pod.status.get_or_insert_with(PodStatus::default);
    st.conditions = Some(vec![PodCondition {
        type_: "Ready".into(),
        status: if ready { "True" } else { "False" }.into(),
        ..Default::default()
    }]);
}

/// One pass of the built-in controllers, the kubelet and Patroni (see the module docs).
/// Gives every owned object a resourceVersion derived from its content, as an API server
/// gives a new one on every change (the objects [`apply_plan`] and [`settle`] make have
/// none). The render memo then tells observed objects apart by uid and resourceVersion, as
/// it does in the operator, instead of keeping copies.
pub fn stamp_versions(o: &mut Observed) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    fn each<T: kube::Resource + Serialize>(list: &mut [T]) {
        for obj in list {
            obj.meta_mut().resource_version = None;
            let mut h = DefaultHasher::new();
            serde_json::to_string(obj).unwrap_or_default().hash(&mut h);
            obj.meta_mut().resource_version = Some(format!("{:x}", h.finish()));
        }
    }
    each(&mut o.stateful_sets);
    each(&mut o.deployments);
    each(&mut o.services);
    each(&mut o.config_maps);
    each(&mut o.secrets);
    each(&mut o.endpoints);
    each(&mut o.pvcs);
    each(&mut o.pdbs);
    each(&mut o.service_accounts);
    each(&mut o.roles);
    each(&mut o.role_bindings);
    each(&mut o.jobs);
}

pub fn settle(o: &mut Observed) {
    let ns = o.cluster.metadata.namespace.clone();
    // StatefulSets: pod `<sts>-0` while replicas ≥ 1 (OnDelete: existing pods keep their
    // template); none at 0.
    let mut pods: Vec<Pod> = Vec::new();
    for s in &o.stateful_sets {
        let name = s.metadata.name.clone().unwrap_or_default();
        let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let pod_name = format!("{name}-0");
        if replicas < 1 {
            continue;
        }
        match by_name(&o.pods, &pod_name) {
            Some(p) => pods.push(p.clone()),
            None => {
                let tm = s
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.clone())
                    .unwrap_or_default();
                let mut p = Pod {
                    metadata: ObjectMeta {
                        name: Some(pod_name.clone()),
                        namespace: ns.clone(),
                        uid: Some(format!("uid-pod-{pod_name}-{}", o.pods.len() + pods.len())),
                        labels: tm.labels,
                        annotations: tm.annotations,
                        ..Default::default()
                    },
                    ..Default::default()
                };
                set_ready(&mut p, true);
                pods.push(p);
            }
        }
    }
    for p in &mut pods {
        if !pod_ready(p) && p.metadata.deletion_timestamp.is_none() {
            set_ready(p, true);
        }
    }
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    o.pods = pods;
    for s in &mut o.stateful_sets {
        let name = s.metadata.name.clone().unwrap_or_default();
        let ready = i32::from(
            o.pods
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(&format!("{name}-0")) && pod_ready(p)),
        );
        let st = s.status.get_or_insert_with(Default::default);
        st.ready_replicas = Some(ready);
        st.replicas = ready;
    }
    for d in &mut o.deployments {
        let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let st = d.status.get_or_insert_with(Default::default);
        st.ready_replicas = Some(r);
        st.replicas = Some(r);
    }
    // Patroni labels the leader's pod once it runs (a recreated pod starts unlabelled).
    let leader_unlabelled = o
        .primary_pod()
        .filter(|p| {
            pod_ready(p) && !label(&p.metadata, labels::ROLE).is_some_and(labels::is_primary_role)
        })
        .and_then(|p| p.metadata.name.clone());
    if let Some(leader) = leader_unlabelled {
        set_primary(o, &leader);
    }
    if o.primary_pod().is_none()
        && let Some(first) = o
            .pods
            .iter()
            .filter(|p| label(&p.metadata, labels::INSTANCE).is_some() && pod_ready(p))
            .filter_map(|p| p.metadata.name.clone())
            .next()
    {
        set_primary(o, &first);
    }
}

/// Reconciles, applies and settles until the plan has no writes (at most `max_rounds`).
/// Returns the converged world and the number of rounds, or `None` if it never converged.
pub fn converge(obs: &Observed, env: &crate::Env, max_rounds: usize) -> Option<(Observed, usize)> {
    let mut o = obs.clone();
    for round in 0..max_rounds {
        let plan = crate::reconcile(&o, env);
        if plan.writes().next().is_none() {
            return Some((o, round));
        }
        o = apply_plan(&o, &plan);
        settle(&mut o);
    }
    None
}
