//! The disruption controller: each PodDisruptionBudget's status says how many pods it
//! covers, how many are healthy and how many may go, which is what `kubectl get pdb` shows
//! as ALLOWED DISRUPTIONS. The numbers are the ones `pods/eviction` judges by.

use super::{StepReport, Writer, util};
use crate::objects::Objects;
use serde_json::Value;

pub fn step(objects: &mut dyn Objects) -> StepReport {
    let mut report = StepReport::default();
    let budgets = objects.list("policy/v1", "PodDisruptionBudget", None);
    if budgets.is_empty() {
        return report;
    }
    let pods = objects.list("v1", "Pod", None);
    let mut w = Writer {
        objects,
        report: &mut report,
        controller: "disruption",
    };
    for pdb in budgets {
        let ns = util::namespace(&pdb);
        let here: Vec<Value> = pods
            .iter()
            .filter(|p| util::namespace(p) == ns)
            .cloned()
            .collect();
        let Some(status) = crate::eviction::budget_status(&pdb, &here) else {
            continue;
        };
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
