//! PersistentVolumeClaim binding with a simulated dynamic provisioner.
//!
//! A Pending claim gets `storageClassName` (default `standard`, as the DefaultStorageClass
//! admission and retroactive assignment do), then a PV `pvc-<claim uid>` sized from the
//! request, and both become Bound. With [`ControllerConfig::local_volumes`] (the default, like kind's
//! local-path `standard` class with `WaitForFirstConsumer`) a claim is provisioned only once
//! the scheduler has chosen a node for a pod that uses it (`volume.kubernetes.io/selected-node`)
//! and the PV carries node affinity to that node, so every later pod of the claim — the same
//! StatefulSet ordinal after a restart or eviction — can only run there. A claim stays bound
//! to its PV for its whole life. When a claim is deleted its PV is deleted too (reclaim
//! policy Delete) or marked Released (Retain).
//!
//! A bound claim whose storage request grows is expanded at once (PV and status capacity).
//!
//! The `kubernetes.io/pvc-protection` finalizer is added to claims and removed only when no
//! live pod uses the claim, so a claim deleted under a running pod stays Terminating.

use super::scheduler::SELECTED_NODE_ANNOTATION;
use super::util::{self, is_terminating, str_at};
use super::{ControllerConfig, StepReport, Writer};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::{Value, json};
use std::sync::Arc;

pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Whether a pod holds the claim: as upstream's pvc-protection controller, only a pod bound
/// to a node counts (the kubelet will not start a pod on a claim being deleted, and the
/// scheduler will not place one), so a claim deleted under a pod that was never scheduled
/// goes instead of waiting for a pod that can never run.
fn claim_in_use(pods: &[Arc<Value>], ns: &str, claim: &str) -> bool {
    pods.iter().any(|p| {
        util::namespace(p) == ns
            && str_at(p, "/spec/nodeName").is_some_and(|n| !n.is_empty())
            && !util::pod_terminal(p)
            && p.at("/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|v| str_at(v, "/persistentVolumeClaim/claimName") == Some(claim))
    })
}

/// Online volume expansion: a bound claim whose request grew gets the larger capacity on
/// its PV and in its status at once (an expandable class whose resize needs no restart).
fn expand(w: &mut Writer<'_>, pvc: &Value) {
    let want = pvc.at("/spec/resources/requests/storage");
    let have = pvc.at("/status/capacity/storage");
    let (Some(want_q), Some(have_q)) = (
        want.and_then(super::scheduler::quantity),
        have.and_then(super::scheduler::quantity),
    ) else {
        return;
    };
    if want_q <= have_q {
        return;
    }
    let want = want.cloned().unwrap_or(Value::Null);
    if let Some(mut pv) = str_at(pvc, "/spec/volumeName")
        .and_then(|n| w.objects.get("v1", "PersistentVolume", None, n))
        && pv.at("/spec/capacity/storage") != Some(&want)
    {
        pv["spec"]["capacity"]["storage"] = want.clone();
        w.update(pv, "expand");
    }
    let mut st = pvc.clone();
    st["status"]["capacity"]["storage"] = want;
    w.update_status(st, "expanded");
}

pub fn step(objects: &mut dyn Objects, config: &ControllerConfig) -> StepReport {
    let mut report = StepReport::default();
    let claims = objects.list_shared("v1", "PersistentVolumeClaim", None);
    // Only a claim being deleted asks which pods use it: most rounds list no pods.
    let pods = if claims.iter().any(|c| is_terminating(c)) {
        objects.list_shared("v1", "Pod", None)
    } else {
        Vec::new()
    };
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "volumes",
    };
    for pvc in &claims {
        let ns = util::namespace(pvc).to_string();
        let name = util::name(pvc).to_string();
        let finalizers: Vec<String> = pvc
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let protected = finalizers.iter().any(|f| f == PVC_PROTECTION_FINALIZER);
        if is_terminating(pvc) {
            if protected && !claim_in_use(&pods, &ns, &name) {
                let mut new = Value::clone(pvc);
                new["metadata"]["finalizers"] = json!(
                    finalizers
                        .iter()
                        .filter(|f| *f != PVC_PROTECTION_FINALIZER)
                        .collect::<Vec<_>>()
                );
                w.update(new, "claim no longer in use");
            }
            continue;
        }
        if protected
            && str_at(pvc, "/spec/storageClassName").is_some()
            && str_at(pvc, "/status/phase") == Some("Bound")
        {
            // The steady state of every claim: nothing to copy.
            expand(&mut w, pvc);
            continue;
        }
        let mut pvc = Value::clone(pvc);
        if !protected {
            let mut f = finalizers.clone();
            f.push(PVC_PROTECTION_FINALIZER.to_string());
            let mut new = pvc.clone();
            new["metadata"]["finalizers"] = json!(f);
            match w.update(new, "pvc protection") {
                Some(v) => pvc = v,
                None => continue,
            }
        }
        if str_at(&pvc, "/spec/storageClassName").is_none() {
            let mut new = pvc.clone();
            new["spec"]["storageClassName"] = json!(config.default_storage_class);
            match w.update(new, "default storage class") {
                Some(v) => pvc = v,
                None => continue,
            }
        }
        if str_at(&pvc, "/status/phase") == Some("Bound") {
            expand(&mut w, &pvc);
            continue;
        }
        let pv_name = match str_at(&pvc, "/spec/volumeName").filter(|s| !s.is_empty()) {
            Some(pv) => pv.to_string(),
            None => format!("pvc-{}", util::uid(&pvc)),
        };
        let selected = annotation(&pvc, SELECTED_NODE_ANNOTATION).map(str::to_string);
        let existing_pv = w.objects.get("v1", "PersistentVolume", None, &pv_name);
        if existing_pv.is_none() {
            if config.local_volumes && selected.is_none() {
                // WaitForFirstConsumer: provision where the first pod lands.
                continue;
            }
            let class = str_at(&pvc, "/spec/storageClassName")
                .unwrap_or(&config.default_storage_class)
                .to_string();
            let storage = pvc
                .at("/spec/resources/requests/storage")
                .cloned()
                .unwrap_or_else(|| json!("1Gi"));
            let access = pvc
                .at("/spec/accessModes")
                .cloned()
                .unwrap_or_else(|| json!(["ReadWriteOnce"]));
            let mut pv = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": pv_name,
                    "annotations": {"pv.kubernetes.io/provisioned-by": "sim.tusk.dev/provisioner"},
                    "finalizers": ["kubernetes.io/pv-protection"],
                },
                "spec": {
                    "capacity": {"storage": storage},
                    "accessModes": access,
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": class,
                    "volumeMode": pvc.at("/spec/volumeMode").cloned().unwrap_or_else(|| json!("Filesystem")),
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": ns,
                        "name": name,
                        "uid": util::uid(&pvc),
                    },
                },
            });
            match &selected {
                Some(node) if config.local_volumes => {
                    pv["spec"]["local"] = json!({"path": format!("/var/local-path-provisioner/{pv_name}_{ns}_{name}")});
                    pv["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
                    ]}});
                }
                _ => {
                    pv["spec"]["csi"] = json!({"driver": "sim.tusk.dev", "volumeHandle": pv_name});
                }
            }
            let Some(created) = w.create(pv, &format!("provision for {ns}/{name}")) else {
                continue;
            };
            let mut st = created.clone();
            st["status"] = json!({"phase": "Bound"});
            w.update_status(st, "bound");
        }
        let pv = w.objects.get("v1", "PersistentVolume", None, &pv_name);
        let Some(pv) = pv else { continue };
        if str_at(&pvc, "/spec/volumeName") != Some(pv_name.as_str()) {
            let mut new = pvc.clone();
            new["spec"]["volumeName"] = json!(pv_name);
            let a = &mut new["metadata"]["annotations"];
            a["pv.kubernetes.io/bind-completed"] = json!("yes");
            a["pv.kubernetes.io/bound-by-controller"] = json!("yes");
            a["volume.kubernetes.io/storage-provisioner"] = json!("sim.tusk.dev/provisioner");
            match w.update(new, &format!("bind to {pv_name}")) {
                Some(v) => pvc = v,
                None => continue,
            }
        }
        let mut st = pvc.clone();
        st["status"] = json!({
            "phase": "Bound",
            "accessModes": pv.at("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
            "capacity": pv.at("/spec/capacity").cloned().unwrap_or(json!({})),
        });
        w.update_status(st, "bound");
    }
    // Volumes whose claim is gone (by uid): delete (reclaim Delete) or mark Released.
    let claim_uids: Vec<&str> = claims.iter().map(|c| util::uid(c)).collect();
    // Read shared: a volume is copied only to be written (most passes write none).
    for pv in w.objects.list_shared("v1", "PersistentVolume", None) {
        let Some(claim_uid) = str_at(&pv, "/spec/claimRef/uid") else {
            continue;
        };
        if claim_uids.contains(&claim_uid) {
            continue;
        }
        match str_at(&pv, "/spec/persistentVolumeReclaimPolicy").unwrap_or("Delete") {
            "Delete" => {
                if !is_terminating(&pv) {
                    w.delete(&pv, None, "claim deleted");
                }
                // Once deleting, release the pv-protection finalizer (no pod can use a
                // volume whose claim is gone).
                if let Some(mut cur) = w
                    .objects
                    .get("v1", "PersistentVolume", None, util::name(&pv))
                    .filter(is_terminating)
                {
                    let keep: Vec<Value> = cur
                        .at("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|f| f.as_str() != Some("kubernetes.io/pv-protection"))
                        .cloned()
                        .collect();
                    cur["metadata"]["finalizers"] = Value::Array(keep);
                    w.update(cur, "volume released");
                }
            }
            _ => {
                if str_at(&pv, "/status/phase") != Some("Released") {
                    let mut st = Value::clone(&pv);
                    st["status"] = json!({"phase": "Released"});
                    w.update_status(st, "claim deleted");
                }
            }
        }
    }
    report
}
