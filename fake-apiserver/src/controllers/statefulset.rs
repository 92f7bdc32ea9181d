//! The StatefulSet controller: ordinal pods `<sts>-<ordinal>`, claims
//! `<template>-<sts>-<ordinal>`, OrderedReady and Parallel pod management, RollingUpdate
//! with partition and OnDelete, ControllerRevisions `<sts>-<hash>`, and status.
//!
//! As upstream, a pod on an unreachable node that was evicted stays Terminating (the
//! kubelet cannot confirm) and the controller does not replace it: a pod name is an
//! identity, so there is never a second `<sts>-<n>`. It is replaced only once the pod object
//! is really gone: the node comes back, someone force-deletes it, the Node object is deleted,
//! or the node is tainted `node.kubernetes.io/out-of-service` (pod GC then force-deletes).

use super::util::{
    self, controlled_by, controller_ref, i64_at, is_terminating, pod_available, pod_available_at,
    pod_running_and_ready, pod_terminal, str_at, template_hash,
};
use super::{ControllerConfig, StepReport, Writer};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const REVISION_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// A revision's name and pod template. The template is borrowed; a stored revision's still
/// carries `$patch: replace`, which [`new_pod`] never reads.
struct Revision<'a> {
    name: String,
    template: &'a Value,
}

static NULL: Value = Value::Null;

/// `revision_template(rev) == *template`, without copying the stored template.
fn same_template(rev: &Value, template: &Value) -> bool {
    match (rev.at("/data/spec/template"), template) {
        (Some(Value::Object(r)), Value::Object(t)) => {
            !t.contains_key("$patch")
                && r.len() - usize::from(r.contains_key("$patch")) == t.len()
                && t.iter().all(|(k, v)| r.get(k) == Some(v))
        }
        (Some(r), t) => r == t,
        (None, t) => t.is_null(),
    }
}

/// Template hashes by (set uid, generation, collisionCount): the template of a generation
/// never changes, and hashing it (canonical JSON of the whole pod template) on every pass of
/// every set was a large share of a simulated world's time. Owned by [`super::Controllers`],
/// so a hash never outlives the store it was computed for.
///
/// It also remembers which stored revisions hold the template of a set's generation
/// ([`RevisionHashes::same_template`]): a revision is immutable but for its `revision`
/// number, so (revision uid, resourceVersion) and (set uid, generation) decide the answer,
/// and comparing the whole pod template on every pass of every set was the next largest
/// share of the controller's time.
#[derive(Debug, Default)]
pub struct RevisionHashes(
    BTreeMap<(String, i64, i64), String>,
    BTreeMap<(String, String, String, i64), bool>,
);

impl RevisionHashes {
    /// [`same_template`] of a stored revision and the set's template, remembered by
    /// (revision uid, revision resourceVersion, set uid, set generation).
    fn same_template(&mut self, rev: &Value, sts: &Value, template: &Value) -> bool {
        let (Some(rev_rv), Some(generation)) = (
            str_at(rev, "/metadata/resourceVersion").filter(|v| !v.is_empty()),
            i64_at(sts, "/metadata/generation"),
        ) else {
            return same_template(rev, template);
        };
        let key = (
            util::uid(rev).to_string(),
            rev_rv.to_string(),
            util::uid(sts).to_string(),
            generation,
        );
        if let Some(same) = self.1.get(&key) {
            return *same;
        }
        let same = same_template(rev, template);
        if self.1.len() >= 4096 {
            self.1.clear();
        }
        self.1.insert(key, same);
        same
    }

    fn get(&mut self, sts: &Value, template: &Value, collision: i64) -> String {
        let Some(generation) = i64_at(sts, "/metadata/generation") else {
            return template_hash(template, collision);
        };
        let key = (util::uid(sts).to_string(), generation, collision);
        if let Some(h) = self.0.get(&key) {
            return h.clone();
        }
        let h = template_hash(template, collision);
        if self.0.len() >= 4096 {
            self.0.clear();
        }
        self.0.insert(key, h.clone());
        h
    }
}

/// A stored revision's template, `$patch` directive included (see [`Revision`]).
fn revision_template(rev: &Value) -> &Value {
    rev.at("/data/spec/template").unwrap_or(&NULL)
}

pub fn step(
    objects: &mut dyn Objects,
    _config: &ControllerConfig,
    hashes: &mut RevisionHashes,
) -> StepReport {
    let mut report = StepReport::default();
    let sets = objects.list_shared("apps/v1", "StatefulSet", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "statefulset",
    };
    for sts in sets {
        if is_terminating(&sts) {
            continue;
        }
        sync(&mut w, &sts, hashes);
    }
    report
}

/// Find or create the revision for the current template, bumping collisionCount when a
/// revision of that name holds a different template.
fn ensure_revision<'a>(
    w: &mut Writer<'_>,
    sts: &Value,
    template: &'a Value,
    revisions: &mut Vec<Arc<Value>>,
    hashes: &mut RevisionHashes,
) -> Option<(Revision<'a>, i64)> {
    let ns = util::namespace(sts).to_string();
    let name = util::name(sts);
    let mut collision = i64_at(sts, "/status/collisionCount").unwrap_or(0);
    let max_rev = revisions
        .iter()
        .filter_map(|r| r.get("revision").and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    for _ in 0..16 {
        let hash = hashes.get(sts, template, collision);
        let rname = format!("{name}-{hash}");
        let fetched;
        let existing = match revisions.iter().position(|r| util::name(r) == rname) {
            Some(i) => Some(&*revisions[i]),
            None => {
                fetched = w
                    .objects
                    .get_shared("apps/v1", "ControllerRevision", Some(&ns), &rname);
                fetched.as_deref()
            }
        };
        match existing {
            Some(r)
                if hashes.same_template(r, sts, template) && controlled_by(r, util::uid(sts)) =>
            {
                let rev = r.get("revision").and_then(Value::as_i64).unwrap_or(0);
                if rev < max_rev {
                    // A rollback to an older template: it becomes the newest revision.
                    let mut nr = r.clone();
                    nr["revision"] = json!(max_rev + 1);
                    if let Some(u) = w.update(nr, "rollback: newest revision")
                        && let Some(i) = revisions.iter().position(|x| util::name(x) == rname)
                    {
                        revisions[i] = Arc::new(u);
                    }
                }
                return Some((
                    Revision {
                        name: rname,
                        template,
                    },
                    collision,
                ));
            }
            Some(_) => collision += 1,
            None => {
                let mut labels: Map<String, Value> = sts
                    .at("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                labels.insert(REVISION_LABEL.into(), json!(rname));
                let mut data_template = template.clone();
                data_template["$patch"] = json!("replace");
                let rev = json!({
                    "apiVersion": "apps/v1",
                    "kind": "ControllerRevision",
                    "metadata": {
                        "name": rname,
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [controller_ref(sts)],
                    },
                    "data": {"spec": {"template": data_template}},
                    "revision": max_rev + 1,
                });
                let created = w.create(rev, "new revision")?;
                revisions.push(Arc::new(created));
                return Some((
                    Revision {
                        name: rname,
                        template,
                    },
                    collision,
                ));
            }
        }
    }
    None
}

/// The ControllerRevision name this controller gives a StatefulSet's current template
/// (`<sts>-<hash>`, with `status.collisionCount`), which new pods carry in their
/// `controller-revision-hash` label: a world can tell a rollout is under way as soon as the
/// template changes, before the controller's next pass updates `status.updateRevision`.
pub fn revision_name(sts: &Value) -> String {
    let template = sts.at("/spec/template").cloned().unwrap_or(json!({}));
    let collision = i64_at(sts, "/status/collisionCount").unwrap_or(0);
    format!(
        "{}-{}",
        util::name(sts),
        template_hash(&template, collision)
    )
}

fn claim_name(template: &Value, sts: &str, ordinal: i64) -> String {
    format!(
        "{}-{sts}-{ordinal}",
        str_at(template, "/metadata/name").unwrap_or("")
    )
}

fn claim_templates(sts: &Value) -> Vec<Value> {
    sts.at("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn retention(sts: &Value, which: &str) -> String {
    str_at(
        sts,
        &format!("/spec/persistentVolumeClaimRetentionPolicy/{which}"),
    )
    .unwrap_or("Retain")
    .to_string()
}

/// Create missing claims for an ordinal. Returns false when a claim is being deleted, in
/// which case the pod must wait (upstream refuses to start a pod on a dying claim).
fn ensure_claims(w: &mut Writer<'_>, sts: &Value, ordinal: i64) -> bool {
    let ns = util::namespace(sts).to_string();
    let name = util::name(sts).to_string();
    let selector_labels = sts
        .at("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut ok = true;
    for t in claim_templates(sts) {
        let cname = claim_name(&t, &name, ordinal);
        match w
            .objects
            .get("v1", "PersistentVolumeClaim", Some(&ns), &cname)
        {
            Some(c) if is_terminating(&c) => ok = false,
            Some(_) => {}
            None => {
                let mut labels: Map<String, Value> = t
                    .at("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                labels.extend(selector_labels.clone());
                let mut meta = json!({"name": cname, "namespace": ns, "labels": labels});
                if let Some(a) = t.at("/metadata/annotations") {
                    meta["annotations"] = a.clone();
                }
                if retention(sts, "whenDeleted") == "Delete" {
                    meta["ownerReferences"] = json!([controller_ref(sts)]);
                }
                let claim = json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": meta,
                    "spec": t.get("spec").cloned().unwrap_or(json!({})),
                });
                match w.create(claim, &format!("claim for ordinal {ordinal}")) {
                    Some(c) => {
                        let msg = format!(
                            "create Claim {} Pod {}-{ordinal} in StatefulSet {} success",
                            util::name(&c),
                            util::name(sts),
                            util::name(sts)
                        );
                        w.event(sts, false, "SuccessfulCreate", msg);
                    }
                    None => ok = false,
                }
            }
        }
    }
    ok
}

fn new_pod(sts: &Value, rev: &Revision, ordinal: i64) -> Value {
    let ns = util::namespace(sts);
    let set_name = util::name(sts);
    let pod_name = format!("{set_name}-{ordinal}");
    let t = &rev.template;
    let mut labels: Map<String, Value> = t
        .at("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), json!(pod_name));
    labels.insert(POD_INDEX_LABEL.into(), json!(ordinal.to_string()));
    labels.insert(REVISION_LABEL.into(), json!(rev.name));
    let mut meta = json!({
        "name": pod_name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": [controller_ref(sts)],
    });
    if let Some(a) = t.at("/metadata/annotations") {
        meta["annotations"] = a.clone();
    }
    let mut spec = t.get("spec").cloned().unwrap_or(json!({}));
    spec["hostname"] = json!(pod_name);
    if let Some(svc) = str_at(sts, "/spec/serviceName").filter(|s| !s.is_empty()) {
        spec["subdomain"] = json!(svc);
    }
    let mut volumes: Vec<Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for ct in claim_templates(sts) {
        let vname = str_at(&ct, "/metadata/name").unwrap_or("").to_string();
        volumes.retain(|v| str_at(v, "/name") != Some(vname.as_str()));
        volumes.push(json!({
            "name": vname,
            "persistentVolumeClaim": {"claimName": claim_name(&ct, set_name, ordinal)},
        }));
    }
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

fn pod_revision(pod: &Value) -> &str {
    util::label(pod, REVISION_LABEL).unwrap_or("")
}

fn sync(w: &mut Writer<'_>, sts: &Value, hashes: &mut RevisionHashes) {
    let now = w.now();
    let ns = util::namespace(sts).to_string();
    let set_name = util::name(sts).to_string();
    let set_uid = util::uid(sts).to_string();
    let replicas = i64_at(sts, "/spec/replicas").unwrap_or(1).max(0);
    let start = i64_at(sts, "/spec/ordinals/start").unwrap_or(0).max(0);
    let end = start + replicas;
    let monotonic =
        str_at(sts, "/spec/podManagementPolicy").unwrap_or("OrderedReady") != "Parallel";
    let strategy = str_at(sts, "/spec/updateStrategy/type")
        .unwrap_or("RollingUpdate")
        .to_string();
    let partition = i64_at(sts, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    let min_ready = i64_at(sts, "/spec/minReadySeconds").unwrap_or(0);

    let empty = json!({});
    let selector = sts.at("/spec/selector").unwrap_or(&empty);
    let template = sts.at("/spec/template").unwrap_or(&empty);
    let all_revisions = w.candidates_shared(sts, "apps/v1", "ControllerRevision", selector);
    let mut revisions = w.owned_or_adopted_shared(sts, all_revisions, selector, |_| true);
    let Some((update_rev, collision)) = ensure_revision(w, sts, template, &mut revisions, hashes)
    else {
        return;
    };
    let current_rev = str_at(sts, "/status/currentRevision")
        .and_then(|c| revisions.iter().find(|r| util::name(r) == c))
        .map(|r| Revision {
            name: util::name(r).to_string(),
            template: revision_template(r),
        })
        .unwrap_or(Revision {
            name: update_rev.name.clone(),
            template: update_rev.template,
        });

    let ordinal_of = |pod: &Value| -> Option<i64> {
        util::name(pod)
            .strip_prefix(&format!("{set_name}-"))
            .and_then(|s| s.parse::<i64>().ok())
    };
    let all_pods = w.candidates_shared(sts, "v1", "Pod", selector);
    let pods: BTreeMap<i64, Arc<Value>> = w
        .owned_or_adopted_shared(sts, all_pods, selector, |p| ordinal_of(p).is_some())
        .into_iter()
        .filter_map(|p| ordinal_of(&p).map(|o| (o, p)))
        .collect();

    let revision_for = |ord: i64| -> &Revision<'_> {
        if strategy == "RollingUpdate" && ord < start + partition {
            &current_rev
        } else {
            &update_rev
        }
    };

    let mut blocked = false;
    let mut in_range: BTreeMap<i64, Option<Arc<Value>>> = BTreeMap::new();
    // 1. Ordinals in range, ascending: create missing pods, replace failed ones, and (for
    //    OrderedReady) stop at the first pod that is not Running and Ready.
    for ord in start..end {
        match pods.get(&ord) {
            None => {
                if !ensure_claims(w, sts, ord) {
                    blocked |= monotonic;
                    in_range.insert(ord, None);
                    if monotonic {
                        break;
                    }
                    continue;
                }
                let pod = new_pod(sts, revision_for(ord), ord);
                let created = w.create(pod, &format!("ordinal {ord}"));
                if let Some(c) = &created {
                    let msg = format!(
                        "create Pod {} in StatefulSet {} successful",
                        util::name(c),
                        util::name(sts)
                    );
                    w.event(sts, false, "SuccessfulCreate", msg);
                }
                in_range.insert(ord, created.map(Arc::new));
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Some(p) => {
                in_range.insert(ord, Some(p.clone()));
                if is_terminating(p) {
                    if monotonic {
                        blocked = true;
                        break;
                    }
                } else if pod_terminal(p) {
                    if w.delete(
                        p,
                        None,
                        &format!("ordinal {ord} {}: recreate", util::pod_phase(p)),
                    ) {
                        deleted_event(w, sts, p);
                    }
                    if monotonic {
                        blocked = true;
                        break;
                    }
                } else if monotonic && !pod_available(p, min_ready, now) {
                    // OrderedReady waits for Running, Ready and minReadySeconds.
                    if let Some(t) = pod_available_at(p, min_ready) {
                        w.report.wake_at(t);
                    }
                    blocked = true;
                    break;
                }
            }
        }
    }
    // 2. Ordinals out of range, highest first.
    if !blocked {
        let condemned: Vec<(&i64, &Arc<Value>)> = pods
            .iter()
            .rev()
            .filter(|(o, _)| **o < start || **o >= end)
            .collect();
        for (ord, p) in condemned {
            if is_terminating(p) {
                if monotonic {
                    blocked = true;
                    break;
                }
                continue;
            }
            if retention(sts, "whenScaled") == "Delete" {
                // The claims follow the pod: the GC removes them once the pod is gone.
                for t in claim_templates(sts) {
                    let cname = claim_name(&t, &set_name, *ord);
                    if let Some(mut c) =
                        w.objects
                            .get("v1", "PersistentVolumeClaim", Some(&ns), &cname)
                        && !util::owner_uids(&c).any(|u| u == util::uid(p))
                    {
                        let mut refs: Vec<Value> = c
                            .at("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        refs.retain(|r| str_at(r, "/uid") != Some(set_uid.as_str()));
                        let mut r = controller_ref(p);
                        r["controller"] = json!(false);
                        refs.push(r);
                        c["metadata"]["ownerReferences"] = Value::Array(refs);
                        w.update(c, "scale-down retention: Delete");
                    }
                }
            }
            if w.delete(p, None, &format!("scale down ordinal {ord}")) {
                deleted_event(w, sts, p);
            }
            if monotonic {
                blocked = true;
                break;
            }
        }
    }
    // 3. Rolling update: the highest outdated ordinal at or above the partition, one at a
    //    time, waiting for each replacement to be Running and Ready.
    if !blocked && strategy == "RollingUpdate" {
        for ord in (start + partition.max(0)..end).rev() {
            let Some(Some(p)) = in_range.get(&ord) else {
                break;
            };
            if pod_revision(p) != update_rev.name && !is_terminating(p) {
                if w.delete(p, None, &format!("rolling update ordinal {ord}")) {
                    deleted_event(w, sts, p);
                }
                break;
            }
            if !pod_running_and_ready(p) || is_terminating(p) {
                break;
            }
        }
    }
    // Revision history: keep revisionHistoryLimit old revisions not used by live pods.
    let limit = i64_at(sts, "/spec/revisionHistoryLimit")
        .unwrap_or(10)
        .max(0) as usize;
    let live = w
        .objects
        .controlled_shared("v1", "Pod", &ns, &set_uid, false);
    let in_use: Vec<String> = live
        .iter()
        .filter(|p| controlled_by(p, &set_uid))
        .map(|p| pod_revision(p).to_string())
        .collect();
    let mut old: Vec<&Arc<Value>> = revisions
        .iter()
        .filter(|r| {
            let n = util::name(r);
            n != update_rev.name && n != current_rev.name && !in_use.iter().any(|u| u == n)
        })
        .collect();
    old.sort_by_key(|r| r.get("revision").and_then(Value::as_i64).unwrap_or(0));
    if old.len() > limit {
        let extra: Vec<Arc<Value>> = old[..old.len() - limit]
            .iter()
            .map(|r| Arc::clone(r))
            .collect();
        for r in extra {
            w.delete(&r, None, "revision history limit");
        }
    }
    // 4. Status from the pods as they are now.
    let mut st_replicas = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut current = 0;
    let mut updated = 0;
    for p in live.iter().filter(|p| controlled_by(p, &set_uid)) {
        if ordinal_of(p).is_none() {
            continue;
        }
        st_replicas += 1;
        if pod_running_and_ready(p) {
            ready += 1;
            if pod_available(p, min_ready, now) {
                available += 1;
            } else if let Some(t) = pod_available_at(p, min_ready) {
                w.report.wake_at(t);
            }
        }
        if !is_terminating(p) {
            if pod_revision(p) == current_rev.name {
                current += 1;
            }
            if pod_revision(p) == update_rev.name {
                updated += 1;
            }
        }
    }
    let mut current_name = current_rev.name.clone();
    // Upstream completes a rollout (currentRevision := updateRevision) when every pod is
    // updated and ready, and only for RollingUpdate: with OnDelete currentRevision keeps
    // naming the old revision even after every pod was replaced, so a client must compare
    // updatedReplicas (or the pods' controller-revision-hash) with updateRevision instead.
    if strategy == "RollingUpdate"
        && updated == st_replicas
        && ready == st_replicas
        && st_replicas == replicas
    {
        current = updated;
        current_name = update_rev.name.clone();
    }
    let mut status = json!({
        "observedGeneration": i64_at(sts, "/metadata/generation").unwrap_or(1),
        "replicas": st_replicas,
        "availableReplicas": available,
        "currentRevision": current_name,
        "updateRevision": update_rev.name,
        "collisionCount": collision,
    });
    for (k, v) in [
        ("readyReplicas", ready),
        ("currentReplicas", current),
        ("updatedReplicas", updated),
    ] {
        if v > 0 {
            status[k] = json!(v);
        }
    }
    if sts.get("status") != Some(&status) {
        // Re-read: the writes above may have changed the object's resourceVersion.
        let mut cur = w
            .objects
            .get("apps/v1", "StatefulSet", Some(&ns), &set_name)
            .unwrap_or_else(|| sts.clone());
        if cur.get("status") == Some(&status) {
            return;
        }
        cur["status"] = status;
        w.update_status(cur, "status");
    }
}

/// Upstream's event for a pod the StatefulSet controller deleted.
fn deleted_event(w: &mut Writer<'_>, sts: &Value, pod: &Value) {
    let msg = format!(
        "delete Pod {} in StatefulSet {} successful",
        util::name(pod),
        util::name(sts)
    );
    w.event(sts, false, "SuccessfulDelete", msg);
}
