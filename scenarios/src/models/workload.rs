//! A client that writes through the `-primary` Service and records every acknowledged write, so
//! data loss is measured: after a failover, a write is lost when the new primary's history does
//! not contain it.

use super::patroni::{Patroni, Settings};
use super::postgres::DataDir;
use crate::clock::{Millis, SECOND};
use crate::kube::pod_ready;
use crate::store::SimApi;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedWrite {
    pub id: u64,
    pub at: Millis,
    pub pod: String,
    pub timeline: u32,
    pub lsn: u64,
}

#[derive(Debug)]
pub struct Workload {
    pub cluster: String,
    pub namespace: String,
    pub interval: Millis,
    pub next: Millis,
    pub acked: Vec<AckedWrite>,
    pub failed: u64,
    /// Ids of acknowledged writes found missing on a promoted primary.
    pub lost: Vec<u64>,
    /// Ids of acknowledged writes a restore rolled back (newer than its target, or not yet
    /// archived): given up on request, so not lost.
    pub discarded: Vec<u64>,
    /// How many of `acked` came before the current world step's models ran: a promotion
    /// reported for this step happened before any write the workload makes in it.
    pub acked_before_step: usize,
    /// The writes failing now, once the client had written at least once.
    pub outage: Option<Outage>,
    /// The longest run of failed writes that ended (or is still going), in milliseconds from
    /// its first failure to the first write acknowledged after it.
    pub longest_outage: Millis,
    next_id: u64,
}

/// An unbroken run of failed writes: what an application sees as the database being down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub since: Millis,
    pub failed: u64,
}

/// `12.5s`, `2m05.0s`: a write outage as the timeline prints it.
pub fn outage_text(ms: Millis) -> String {
    let tenths = ms.max(0) / 100;
    let (minutes, tenths) = (tenths / 600, tenths % 600);
    if minutes > 0 {
        format!("{minutes}m{:02}.{}s", tenths / 10, tenths % 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

impl Workload {
    pub fn new(namespace: &str, cluster: &str, interval: Millis) -> Self {
        Self {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            interval: interval.max(100),
            next: 0,
            acked: Vec::new(),
            failed: 0,
            lost: Vec::new(),
            discarded: Vec::new(),
            acked_before_step: 0,
            outage: None,
            longest_outage: 0,
            next_id: 0,
        }
    }

    pub fn next_wakeup(&self) -> Millis {
        self.next
    }

    /// The pod a connection to `<cluster>-primary` reaches: the Service's selector when it has
    /// one (ready pods only, as kube-proxy routes), else the `-ha` Endpoints Patroni maintains.
    pub fn route(&self, api: &dyn SimApi) -> Option<String> {
        let ns = Some(self.namespace.as_str());
        let svc = api.get_ref("v1", "Service", ns, &format!("{}-primary", self.cluster));
        if let Some(sel) = svc
            .and_then(|s| s["spec"]["selector"].as_object())
            .filter(|s| !s.is_empty())
        {
            return api
                .list_ref("v1", "Pod", ns)
                .into_iter()
                .find(|p| sel.iter().all(|(k, v)| &p["metadata"]["labels"][k] == v) && pod_ready(p))
                .and_then(|p| p["metadata"]["name"].as_str())
                .map(str::to_string);
        }
        let ep = api.get_ref("v1", "Endpoints", ns, &format!("{}-ha", self.cluster))?;
        let ip = ep["subsets"][0]["addresses"][0]["ip"].as_str()?;
        api.list_ref("v1", "Pod", ns)
            .into_iter()
            .find(|p| {
                p["status"]["podIP"] == ip && p["metadata"].get("deletionTimestamp").is_none()
            })
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_string))
    }

    /// Writes once if due. Returns a line for the timeline when writes start failing (after
    /// the client had written at least once) or succeed again after failing.
    pub fn step(
        &mut self,
        api: &dyn SimApi,
        patroni: &mut Patroni,
        settings: &Settings,
        now: Millis,
    ) -> Option<String> {
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        let service = format!("{}-primary", self.cluster);
        let result = match self.route(api) {
            None => Err(format!("no ready pod behind Service {service}")),
            Some(pod) => patroni.write(&pod, now, settings).map(|at| (pod, at)),
        };
        match result {
            Ok((pod, (timeline, lsn))) => {
                self.next_id += 1;
                self.acked.push(AckedWrite {
                    id: self.next_id,
                    at: now,
                    pod: pod.clone(),
                    timeline,
                    lsn,
                });
                let outage = self.outage.take()?;
                let length = now - outage.since;
                self.longest_outage = self.longest_outage.max(length);
                Some(format!(
                    "client: writes through {service} succeed again on {pod} after {} ({} failed)",
                    outage_text(length),
                    outage.failed
                ))
            }
            Err(reason) => {
                self.failed += 1;
                if let Some(o) = &mut self.outage {
                    o.failed += 1;
                    self.longest_outage = self.longest_outage.max(now - o.since);
                    return None;
                }
                if self.acked.is_empty() {
                    return None;
                }
                self.outage = Some(Outage {
                    since: now,
                    failed: 1,
                });
                Some(format!("client: writes through {service} fail: {reason}"))
            }
        }
    }

    /// Acknowledged writes missing from `data`, the directory of `promoted` as it was promoted.
    /// Writes `promoted` itself acknowledged on its new timeline came after the promotion
    /// (the world reports it once the step is over, when the workload may already have written
    /// there): they are in its lineage whatever `data` says.
    pub fn missing_in(&self, data: &DataDir, promoted: &str) -> Vec<AckedWrite> {
        self.acked
            .iter()
            .filter(|w| !(w.pod == promoted && w.timeline >= data.timeline))
            .filter(|w| !data.contains(w.timeline, w.lsn))
            .cloned()
            .collect()
    }

    /// Records writes lost to a promotion reported for the current step; returns how many
    /// were newly lost. Only writes acknowledged before the step count: one the workload made
    /// in the same step came after the promotion, even on another member promoted later in
    /// that step (a switchover right after a restarted leader resumed).
    pub fn record_loss(&mut self, data: &DataDir, promoted: &str) -> usize {
        let before = self.acked_before_step.min(self.acked.len());
        let missing: Vec<AckedWrite> = self
            .missing_in(data, promoted)
            .into_iter()
            .filter(|w| self.acked[..before].iter().any(|a| a.id == w.id))
            .collect();
        let mut n = 0;
        for w in missing {
            if !self.lost.contains(&w.id) && !self.discarded.contains(&w.id) {
                self.lost.push(w.id);
                n += 1;
            }
        }
        n
    }

    /// Records writes a restore rolled back (the promotion that ends its recovery); returns
    /// how many were newly discarded.
    pub fn record_discard(&mut self, data: &DataDir, promoted: &str) -> usize {
        let missing = self.missing_in(data, promoted);
        let mut n = 0;
        for w in missing {
            if !self.lost.contains(&w.id) && !self.discarded.contains(&w.id) {
                self.discarded.push(w.id);
                n += 1;
            }
        }
        n
    }
}

pub const DEFAULT_INTERVAL: Millis = SECOND;

#[cfg(test)]
mod tests {
    use super::*;

    fn write(id: u64, pod: &str, timeline: u32, lsn: u64) -> AckedWrite {
        AckedWrite {
            id,
            at: 0,
            pod: pod.into(),
            timeline,
            lsn,
        }
    }

    #[test]
    fn only_writes_outside_the_promoted_lineage_are_missing() {
        let mut w = Workload::new("default", "c", SECOND);
        // Promoted at LSN 300 onto timeline 2 (timeline 1 ended there).
        let mut data = DataDir::initdb(1);
        data.timeline = 1;
        data.lsn = 300;
        data.promote();
        w.acked = vec![
            write(1, "old", 1, 200), // before the branch: kept
            write(2, "old", 1, 400), // after it, on the old primary: lost
            write(3, "new", 2, 500), // taken by the new primary after its promotion
        ];
        let lost: Vec<u64> = w.missing_in(&data, "new").iter().map(|x| x.id).collect();
        assert_eq!(lost, vec![2]);
        // The same write seen from another member's promotion is not excused.
        let lost: Vec<u64> = w.missing_in(&data, "other").iter().map(|x| x.id).collect();
        assert_eq!(lost, vec![2, 3]);
        // All three were acknowledged before the step that reported the promotion.
        w.acked_before_step = 3;
        assert_eq!(w.record_loss(&data, "new"), 1);
        assert_eq!(w.record_loss(&data, "new"), 0);
    }

    /// A promotion reported for a step is not blamed for a write the workload made later in
    /// that step, even on another member (promoted after it in the same step).
    #[test]
    fn writes_of_the_promotions_own_step_are_not_lost_to_it() {
        let mut w = Workload::new("default", "c", SECOND);
        let mut data = DataDir::initdb(1);
        data.lsn = 300;
        w.acked = vec![write(1, "old", 1, 200)];
        w.acked_before_step = 1;
        // Written in the step after the promotion, on another member's new timeline.
        w.acked.push(write(2, "other", 2, 400));
        assert_eq!(w.missing_in(&data, "old").len(), 1, "outside the lineage");
        assert_eq!(w.record_loss(&data, "old"), 0);
        // Reported in a later step, the same write counts.
        w.acked_before_step = 2;
        assert_eq!(w.record_loss(&data, "old"), 1);
    }
}
