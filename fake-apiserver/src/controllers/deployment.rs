//! Deployment → ReplicaSet `<deploy>-<hash>` (label `pod-template-hash`) → Pods
//! `<rs>-<5 chars>`, with RollingUpdate (maxSurge/maxUnavailable) and Recreate, revision
//! annotations, and status with the Available and Progressing conditions.
//!
//! Progress is any change of the replica counts; none for `progressDeadlineSeconds` turns
//! Progressing False (ProgressDeadlineExceeded). Not modelled: paused deployments, proportional scaling of several old ReplicaSets during a rollout.

use super::util::{
    self, NameSource, controller_ref, i64_at, int_or_percent, is_terminating, pod_available,
    pod_available_at, pod_ready, pod_terminal, set_condition, str_at, template_hash,
};
use super::{ControllerConfig, StepReport, Writer};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Map, Value, json};

pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

fn template_without_hash(t: &Value) -> Value {
    let mut t = super::util::template_normalized(t).into_owned();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(POD_TEMPLATE_HASH_LABEL);
        if l.is_empty()
            && let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
    t
}

fn rs_revision(rs: &Value) -> i64 {
    rs.at("/metadata/annotations")
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    i64_at(rs, "/spec/replicas").unwrap_or(1)
}

fn status_of(rs: &Value, field: &str) -> i64 {
    i64_at(rs, &format!("/status/{field}")).unwrap_or(0)
}

pub fn step(objects: &mut dyn Objects, _config: &ControllerConfig) -> StepReport {
    let mut report = StepReport::default();
    let deployments = objects.list_shared("apps/v1", "Deployment", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "deployment",
    };
    for d in deployments {
        if !is_terminating(&d) {
            sync_deployment(&mut w, &d);
        }
    }
    report
}

fn scale(w: &mut Writer<'_>, rs: &mut Value, to: i64, why: &str) {
    if spec_replicas(rs) == to {
        return;
    }
    let mut new = rs.clone();
    new["spec"]["replicas"] = json!(to);
    let from = spec_replicas(rs);
    if let Some(u) = w.update(new, &format!("scale {from} → {to} ({why})")) {
        if let Some(owner) = util::controller_owner(&u) {
            let d = json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                "metadata": {"name": owner["name"], "namespace": util::namespace(&u), "uid": owner["uid"]}});
            let op = if to > from { "up" } else { "down" };
            let msg = format!(
                "Scaled {op} replica set {} from {from} to {to}",
                util::name(&u)
            );
            w.event(&d, false, "ScalingReplicaSet", msg);
        }
        *rs = u;
    }
}

fn sync_deployment(w: &mut Writer<'_>, d: &Value) {
    let now = w.now();
    let ns = util::namespace(d).to_string();
    let name = util::name(d).to_string();
    let replicas = i64_at(d, "/spec/replicas").unwrap_or(1).max(0);
    let template = d.at("/spec/template").cloned().unwrap_or(json!({}));
    let collision = i64_at(d, "/status/collisionCount").unwrap_or(0);
    let selector = d.at("/spec/selector").cloned().unwrap_or(json!({}));
    let all_rs = w.candidates(d, "apps/v1", "ReplicaSet", &selector);
    let mut rss = w.owned_or_adopted(d, all_rs, &selector, |_| true);
    rss.sort_by_key(|rs| (rs_revision(rs), util::name(rs).to_string()));
    let max_revision = rss.iter().map(rs_revision).max().unwrap_or(0);
    let mut created_new = false;
    let new_idx = match rss.iter().position(|rs| {
        rs.at("/spec/template").map(template_without_hash) == Some(template_without_hash(&template))
    }) {
        Some(i) => {
            // An old template rolled back to becomes the newest revision again.
            if rs_revision(&rss[i]) < max_revision {
                let mut rs = rss[i].clone();
                rs["metadata"]["annotations"][REVISION_ANNOTATION] =
                    json!((max_revision + 1).to_string());
                if let Some(u) = w.update(rs, "rollback: newest revision") {
                    rss[i] = u;
                }
            }
            i
        }
        None => {
            let hash = template_hash(&template, collision);
            let rs_name = format!("{name}-{hash}");
            let mut t = template.clone();
            t["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
            let mut selector = d.at("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"][POD_TEMPLATE_HASH_LABEL] = json!(hash);
            let mut labels: Map<String, Value> = t
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            labels.insert(POD_TEMPLATE_HASH_LABEL.into(), json!(hash));
            let rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": {
                        REVISION_ANNOTATION: (max_revision + 1).to_string(),
                        "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                    },
                    "ownerReferences": [controller_ref(d)],
                },
                "spec": {
                    "replicas": 0,
                    "minReadySeconds": i64_at(d, "/spec/minReadySeconds").unwrap_or(0),
                    "selector": selector,
                    "template": t,
                },
            });
            let Some(created) = w.create(rs, "new template") else {
                return;
            };
            created_new = true;
            rss.push(created);
            rss.len() - 1
        }
    };
    let mut new_rs = rss.remove(new_idx);
    let mut old_rss = rss;
    let strategy = str_at(d, "/spec/strategy/type").unwrap_or("RollingUpdate");
    let mut max_surge = int_or_percent(
        d.at("/spec/strategy/rollingUpdate/maxSurge"),
        replicas,
        "25%",
        true,
    );
    let mut max_unavailable = int_or_percent(
        d.at("/spec/strategy/rollingUpdate/maxUnavailable"),
        replicas,
        "25%",
        false,
    );
    if strategy == "Recreate" {
        max_surge = 0;
        max_unavailable = replicas;
    } else if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    if strategy == "Recreate" {
        for rs in old_rss.iter_mut() {
            scale(w, rs, 0, "recreate");
        }
        let old_uids: Vec<String> = old_rss.iter().map(|r| util::uid(r).to_string()).collect();
        let old_pods_left = old_uids.iter().any(|u| {
            w.objects
                .controlled("v1", "Pod", &ns, u, false)
                .iter()
                .any(|p| !pod_terminal(p))
        });
        if !old_pods_left {
            scale(w, &mut new_rs, replicas, "recreate");
        }
    } else if old_rss.iter().all(|rs| spec_replicas(rs) == 0) {
        scale(w, &mut new_rs, replicas, "scale");
    } else {
        // Scale the new ReplicaSet up within maxSurge.
        let new_cur = spec_replicas(&new_rs);
        if new_cur > replicas {
            scale(w, &mut new_rs, replicas, "rolling update");
        } else if new_cur < replicas {
            let total: i64 = old_rss.iter().map(spec_replicas).sum::<i64>() + new_cur;
            let room = replicas + max_surge - total;
            if room > 0 {
                let to = new_cur + room.min(replicas - new_cur);
                scale(w, &mut new_rs, to, "rolling update");
            }
        }
        // Scale old ReplicaSets down within maxUnavailable: unhealthy replicas first.
        let min_available = replicas - max_unavailable;
        let all: i64 = old_rss.iter().map(spec_replicas).sum::<i64>() + spec_replicas(&new_rs);
        let new_unavailable =
            (spec_replicas(&new_rs) - status_of(&new_rs, "availableReplicas")).max(0);
        let mut budget = all - min_available - new_unavailable;
        for rs in old_rss.iter_mut() {
            if budget <= 0 {
                break;
            }
            let unhealthy = (spec_replicas(rs) - status_of(rs, "availableReplicas")).max(0);
            let down = unhealthy.min(budget);
            if down > 0 {
                let to = spec_replicas(rs) - down;
                scale(w, rs, to, "rolling update: unhealthy");
                budget -= down;
            }
        }
        let available: i64 = old_rss
            .iter()
            .map(|r| status_of(r, "availableReplicas"))
            .sum::<i64>()
            + status_of(&new_rs, "availableReplicas");
        let mut total_down = (available - min_available).min(budget.max(0));
        for rs in old_rss.iter_mut() {
            if total_down <= 0 {
                break;
            }
            let down = spec_replicas(rs).min(total_down);
            if down > 0 {
                let to = spec_replicas(rs) - down;
                scale(w, rs, to, "rolling update");
                total_down -= down;
            }
        }
    }
    // History: old ReplicaSets scaled to zero beyond revisionHistoryLimit are deleted.
    let limit = i64_at(d, "/spec/revisionHistoryLimit").unwrap_or(10).max(0) as usize;
    let idle: Vec<&Value> = old_rss
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && status_of(rs, "replicas") == 0)
        .collect();
    if idle.len() > limit {
        let extra: Vec<Value> = idle[..idle.len() - limit]
            .iter()
            .map(|r| (*r).clone())
            .collect();
        for rs in extra {
            w.delete(&rs, None, "revision history limit");
        }
    }
    // Status.
    let all_rs: Vec<&Value> = old_rss.iter().chain(std::iter::once(&new_rs)).collect();
    let st_replicas: i64 = all_rs.iter().map(|r| status_of(r, "replicas")).sum();
    let ready: i64 = all_rs.iter().map(|r| status_of(r, "readyReplicas")).sum();
    let available: i64 = all_rs
        .iter()
        .map(|r| status_of(r, "availableReplicas"))
        .sum();
    let spec_total: i64 = all_rs.iter().map(|r| spec_replicas(r)).sum();
    let updated = status_of(&new_rs, "replicas");
    let new_name = util::name(&new_rs).to_string();
    let mut conds: Vec<Value> = d
        .at("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if available >= replicas - max_unavailable {
        set_condition(
            &mut conds,
            "Available",
            "True",
            Some("MinimumReplicasAvailable"),
            Some("Deployment has minimum availability."),
            now,
            true,
        );
    } else {
        set_condition(
            &mut conds,
            "Available",
            "False",
            Some("MinimumReplicasUnavailable"),
            Some("Deployment does not have minimum availability."),
            now,
            true,
        );
    }
    let complete = updated == replicas
        && st_replicas == replicas
        && available == replicas
        && spec_replicas(&new_rs) == replicas;
    let (reason, message) = if complete {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else if created_new {
        (
            "NewReplicaSetCreated",
            format!("Created new replica set \"{new_name}\""),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
        )
    };
    // Progress (any change in the counts) refreshes lastUpdateTime; a rollout that makes
    // none for progressDeadlineSeconds is reported as ProgressDeadlineExceeded.
    let counts = |v: &Value| {
        [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ]
        .map(|k| i64_at(v, &format!("/status/{k}")).unwrap_or(0))
    };
    let progressed = counts(d) != [st_replicas, updated, ready, available] || created_new;
    let deadline = i64_at(d, "/spec/progressDeadlineSeconds").unwrap_or(600);
    let last_progress = util::condition(d, "/status/conditions", "Progressing")
        .and_then(|c| util::time_at(c, "/lastUpdateTime"))
        .map(util::secs);
    let already_timed_out = util::condition(d, "/status/conditions", "Progressing")
        .and_then(|c| str_at(c, "/reason"))
        == Some("ProgressDeadlineExceeded");
    let timed_out = !complete
        && !progressed
        && (already_timed_out || last_progress.is_some_and(|t| util::secs(now) >= t + deadline));
    if timed_out {
        set_condition(
            &mut conds,
            "Progressing",
            "False",
            Some("ProgressDeadlineExceeded"),
            Some(&format!(
                "ReplicaSet \"{new_name}\" has timed out progressing."
            )),
            now,
            true,
        );
    } else {
        set_condition(
            &mut conds,
            "Progressing",
            "True",
            Some(reason),
            Some(&message),
            now,
            true,
        );
        if progressed
            && let Some(c) = conds
                .iter_mut()
                .find(|c| str_at(c, "/type") == Some("Progressing"))
        {
            c["lastUpdateTime"] = json!(util::fmt_time(now));
        }
        if !complete {
            let since = if progressed {
                util::secs(now)
            } else {
                last_progress.unwrap_or(util::secs(now))
            };
            w.report.wake_at(util::from_secs(since + deadline));
        }
    }
    conds.sort_by_key(|c| {
        if str_at(c, "/type") == Some("Available") {
            0
        } else {
            1
        }
    });
    let mut status = json!({
        "observedGeneration": i64_at(d, "/metadata/generation").unwrap_or(1),
        "replicas": st_replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": conds,
    });
    let unavailable = (spec_total - available).max(0);
    if unavailable > 0 {
        status["unavailableReplicas"] = json!(unavailable);
    }
    if collision > 0 {
        status["collisionCount"] = json!(collision);
    }
    for k in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        if status[k] == json!(0) {
            status.as_object_mut().map(|m| m.remove(k));
        }
    }
    let revision = rs_revision(&new_rs).to_string();
    let mut cur = w
        .objects
        .get("apps/v1", "Deployment", Some(&ns), &name)
        .unwrap_or_else(|| d.clone());
    let ann = cur
        .at("/metadata/annotations")
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_string);
    if ann.as_deref() != Some(revision.as_str()) {
        cur["metadata"]["annotations"][REVISION_ANNOTATION] = json!(revision);
        match w.update(cur, "revision annotation") {
            Some(u) => cur = u,
            None => return,
        }
    }
    if cur.get("status") != Some(&status) {
        cur["status"] = status;
        w.update_status(cur, "status");
    }
}

/// Rank for deletion on scale-down (lower goes first): unscheduled, then pending, then not
/// ready, then ready; among equals the newest, then the highest name.
fn deletion_rank(
    pod: &Value,
) -> (
    u8,
    u8,
    u8,
    std::cmp::Reverse<String>,
    std::cmp::Reverse<String>,
) {
    let assigned = str_at(pod, "/spec/nodeName").is_some_and(|n| !n.is_empty());
    let phase = match util::pod_phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    (
        u8::from(assigned),
        phase,
        u8::from(pod_ready(pod)),
        std::cmp::Reverse(
            str_at(pod, "/metadata/creationTimestamp")
                .unwrap_or("")
                .to_string(),
        ),
        std::cmp::Reverse(util::name(pod).to_string()),
    )
}

/// The ReplicaSet controller. Pod names get a suffix from `names` (seeded), standing in for
/// the API server's random `generateName`.
pub fn replicaset_step(
    objects: &mut dyn Objects,
    _config: &ControllerConfig,
    names: &mut NameSource,
) -> StepReport {
    let mut report = StepReport::default();
    let sets = objects.list_shared("apps/v1", "ReplicaSet", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "replicaset",
    };
    for rs in sets {
        if is_terminating(&rs) {
            continue;
        }
        let now = w.now();
        let ns = util::namespace(&rs).to_string();
        let rs_name = util::name(&rs).to_string();
        let uid = util::uid(&rs).to_string();
        let replicas = spec_replicas(&rs).max(0);
        let min_ready = i64_at(&rs, "/spec/minReadySeconds").unwrap_or(0);
        let selector = rs.at("/spec/selector").cloned().unwrap_or(json!({}));
        let all_pods = w.candidates(&rs, "v1", "Pod", &selector);
        let owned = w.owned_or_adopted(&rs, all_pods, &selector, |p| !pod_terminal(p));
        let mut active: Vec<Value> = owned
            .iter()
            .filter(|p| !is_terminating(p) && !pod_terminal(p))
            .cloned()
            .collect();
        let diff = active.len() as i64 - replicas;
        if diff < 0 {
            let t = rs.at("/spec/template").cloned().unwrap_or(json!({}));
            for _ in 0..(-diff) {
                let mut meta = json!({"namespace": ns, "ownerReferences": [controller_ref(&rs)]});
                if let Some(l) = t.at("/metadata/labels") {
                    meta["labels"] = l.clone();
                }
                if let Some(a) = t.at("/metadata/annotations") {
                    meta["annotations"] = a.clone();
                }
                let mut created = None;
                for _ in 0..8 {
                    meta["name"] = json!(format!("{rs_name}-{}", names.suffix()));
                    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta.clone(),
                        "spec": t.get("spec").cloned().unwrap_or(json!({}))});
                    match w.objects.create(pod.clone()) {
                        Err(e) if e.reason == "AlreadyExists" => continue,
                        r => {
                            created = Some((pod, r));
                            break;
                        }
                    }
                }
                if let Some((pod, r)) = created {
                    let a = super::Action {
                        controller: "replicaset",
                        verb: "create",
                        kind: "Pod".into(),
                        namespace: ns.clone(),
                        name: util::name(&pod).to_string(),
                        detail: format!("replica of {rs_name}"),
                    };
                    match r {
                        Ok(p) => {
                            w.report.actions.push(a);
                            let msg = format!("Created pod: {}", util::name(&p));
                            w.event(&rs, false, "SuccessfulCreate", msg);
                            active.push(p);
                        }
                        Err(e) => w.report.errors.push((a, e)),
                    }
                }
            }
        } else if diff > 0 {
            active.sort_by_key(deletion_rank);
            for p in active.iter().take(diff as usize) {
                if w.delete(p, None, &format!("scale down {rs_name}")) {
                    let msg = format!("Deleted pod: {}", util::name(p));
                    w.event(&rs, false, "SuccessfulDelete", msg);
                }
            }
        }
        let mut pods: Vec<Value> = w.objects.controlled("v1", "Pod", &ns, &uid, false);
        pods.retain(|p| !is_terminating(p) && !pod_terminal(p));
        let selector = rs.at("/spec/selector").cloned().unwrap_or(json!({}));
        let labeled = pods
            .iter()
            .filter(|p| util::selector_matches(&selector, &util::labels(p)))
            .count();
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut available = 0;
        for p in &pods {
            if pod_available(p, min_ready, now) {
                available += 1;
            } else if let Some(t) = pod_available_at(p, min_ready) {
                w.report.wake_at(t);
            }
        }
        let mut status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": i64_at(&rs, "/metadata/generation").unwrap_or(1),
        });
        for k in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
            if status[k] == json!(0) {
                status.as_object_mut().map(|m| m.remove(k));
            }
        }
        if rs.get("status") != Some(&status) {
            let mut cur = w
                .objects
                .get("apps/v1", "ReplicaSet", Some(&ns), &rs_name)
                .unwrap_or_else(|| Value::clone(&rs));
            if cur.get("status") != Some(&status) {
                cur["status"] = status;
                w.update_status(cur, "status");
            }
        }
    }
    report
}
