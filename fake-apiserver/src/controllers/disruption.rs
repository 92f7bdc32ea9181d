//! The disruption controller: each PodDisruptionBudget's status says how many pods it
//! covers, how many are healthy and how many may go, which is what `kubectl get pdb` shows
//! as ALLOWED DISRUPTIONS, and the `DisruptionAllowed` condition. The numbers are the ones
//! `pods/eviction` judges by.

use super::{StepReport, Writer, util};
use crate::json_ptr::At;
use crate::objects::Objects;
use serde_json::Value;
use std::collections::HashMap;

pub fn step(objects: &mut dyn Objects) -> StepReport {
    let mut report = StepReport::default();
    let budgets = objects.list("policy/v1", "PodDisruptionBudget", None);
    if budgets.is_empty() {
        return report;
    }
    let pods = objects.list_shared("v1", "Pod", None);
    // Pods by namespace and by each of their labels, so a budget looks only at the pods that
    // carry one of its matchLabels (borrowed, not copied): with thousands of budgets and pods
    // in one namespace, a scan per budget made every pass quadratic.
    let mut in_namespace: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut by_label: HashMap<(&str, &str, &str), Vec<&Value>> = HashMap::new();
    for p in &pods {
        let ns = util::namespace(p);
        in_namespace.entry(ns).or_default().push(p);
        for (k, v) in p["metadata"]["labels"].as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                by_label.entry((ns, k.as_str(), v)).or_default().push(p);
            }
        }
    }
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "disruption",
    };
    let now = w.now();
    for pdb in budgets {
        let ns = util::namespace(&pdb);
        // Any one matchLabels pair narrows the candidates; the full selector decides.
        let first_pair = pdb["spec"]["selector"]["matchLabels"]
            .as_object()
            .and_then(|m| m.iter().next())
            .and_then(|(k, v)| Some((k.as_str(), v.as_str()?)));
        let none = Vec::new();
        let candidates = match first_pair {
            Some((k, v)) => by_label.get(&(ns, k, v)).unwrap_or(&none),
            None => in_namespace.get(ns).unwrap_or(&none),
        };
        let Some(mut status) = crate::eviction::budget_status(&pdb, candidates.iter().copied())
        else {
            continue;
        };
        // DisruptionAllowed, as upstream's disruption controller sets it: True/SufficientPods
        // while an eviction may proceed, False/InsufficientPods otherwise; lastTransitionTime
        // moves only when the status flips.
        let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0) > 0;
        let mut conds: Vec<Value> = pdb
            .at("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (st, reason) = if allowed {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        util::set_condition(
            &mut conds,
            "DisruptionAllowed",
            st,
            Some(reason),
            Some(""),
            now,
            false,
        );
        for c in conds
            .iter_mut()
            .filter(|c| c["type"] == "DisruptionAllowed")
        {
            c["observedGeneration"] = status["observedGeneration"].clone();
        }
        status["conditions"] = Value::Array(conds);
        // Only write on change, so a settled world stays settled.
        let current = &pdb["status"];
        let same = status
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| current.get(k) == Some(v));
        if !same {
            let mut new = pdb.clone();
            let st = new["status"].as_object().cloned().unwrap_or_default();
            let mut merged = st;
            for (k, v) in status.as_object().into_iter().flatten() {
                merged.insert(k.clone(), v.clone());
            }
            new["status"] = Value::Object(merged);
            let allowed = new["status"]["disruptionsAllowed"].clone();
            w.update_status(new, &format!("disruptionsAllowed={allowed}"));
        }
    }
    report
}
