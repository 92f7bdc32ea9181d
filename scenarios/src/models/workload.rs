//! A client that writes through the `-primary` Service (or through pgBouncer when the cluster
//! has it) and records every acknowledged write, so
//! data loss is measured: after a failover, a write is lost when the new primary's history does
//! not contain it.

use super::patroni::{Infra, Patroni, Settings};
use super::postgres::DataDir;
use crate::clock::{Millis, SECOND};
use crate::kube::pod_ready;
use crate::labels;
use crate::store::SimApi;
use serde_json::Value;

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
    /// The writes failing now (or recovered fewer than [`STEADY_WRITES`] writes ago), once the
    /// client had written at least once.
    pub outage: Option<Outage>,
    /// The longest run of failed writes that ended (or is still going), in milliseconds from
    /// its first failure to the first write acknowledged after it.
    pub longest_outage: Millis,
    next_id: u64,
}

/// A run of failed writes: what an application sees as the database being down. Writes that
/// fail again soon after they had succeeded (a dead pgBouncer pod still taking some
/// connections) make one intermittent outage, reported once, not a line per write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub since: Millis,
    /// Writes tried and failed since `since`.
    pub failed: u64,
    pub tried: u64,
    /// Writes failed again within [`STEADY_WRITES`] of a recovery.
    pub intermittent: bool,
    /// Writes acknowledged in a row, and when the first of them was.
    pub ok_streak: u64,
    pub ok_since: Millis,
}

/// Acknowledged writes in a row after which an outage is over for good.
pub const STEADY_WRITES: u64 = 5;

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

    /// The ready pods a Service's selector picks, as kube-proxy routes (None: the Service is
    /// missing or has no selector).
    fn ready_pods_behind<'a>(
        api: &'a dyn SimApi,
        ns: Option<&str>,
        service: &str,
    ) -> Option<Vec<&'a Value>> {
        let sel = api
            .get_ref("v1", "Service", ns, service)
            .and_then(|s| s["spec"]["selector"].as_object())
            .filter(|s| !s.is_empty())?;
        Some(
            api.list_ref("v1", "Pod", ns)
                .into_iter()
                .filter(|p| {
                    sel.iter().all(|(k, v)| &p["metadata"]["labels"][k] == v) && pod_ready(p)
                })
                .collect(),
        )
    }

    /// The pod a connection to `<cluster>-primary` reaches: the Service's selector when it has
    /// one (ready pods only, as kube-proxy routes), else the `-ha` Endpoints Patroni maintains.
    pub fn route(&self, api: &dyn SimApi) -> Option<String> {
        let ns = Some(self.namespace.as_str());
        if let Some(pods) = Self::ready_pods_behind(api, ns, &format!("{}-primary", self.cluster)) {
            return pods
                .first()
                .and_then(|p| p["metadata"]["name"].as_str())
                .map(str::to_string);
        }
        // Endpoints Patroni writes are not a selector's: kube-proxy sends traffic to the
        // address they hold even when that pod is being deleted (whether postgres there
        // still takes writes is the database's answer).
        let ep = api.get_ref("v1", "Endpoints", ns, &format!("{}-ha", self.cluster))?;
        let ip = ep["subsets"][0]["addresses"][0]["ip"].as_str()?;
        api.list_ref("v1", "Pod", ns)
            .into_iter()
            .find(|p| p["status"]["podIP"] == ip)
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_string))
    }

    /// Whether the application connects through pgBouncer: the cluster asks for at least one
    /// (`spec.proxy.pgBouncer`, one replica unless it says otherwise), and Percona tells
    /// applications to use `<cluster>-pgbouncer` then.
    pub fn through_pgbouncer(&self, api: &dyn SimApi) -> bool {
        api.get_ref(
            labels::CR_API,
            labels::CR_KIND,
            Some(&self.namespace),
            &self.cluster,
        )
        .map(|cr| &cr["spec"]["proxy"]["pgBouncer"])
        .is_some_and(|b| b.is_object() && b["replicas"].as_i64().unwrap_or(1) > 0)
    }

    /// The database pod a write reaches, or why it reaches none (`via_pgbouncer`: see
    /// [`Self::through_pgbouncer`]). Through pgBouncer, kube-proxy
    /// spreads connections over the ready pgBouncer pods (here in turn); a pod whose process is
    /// gone (its node down) still takes connections until it is marked not ready, and they time
    /// out. pgBouncer itself connects to `<cluster>-primary`.
    pub fn connect(
        &self,
        api: &dyn SimApi,
        infra: &dyn Infra,
        now: Millis,
        via_pgbouncer: bool,
    ) -> Result<String, String> {
        let primary = format!("{}-primary", self.cluster);
        if !via_pgbouncer {
            return self
                .route(api)
                .ok_or_else(|| format!("no ready pod behind Service {primary}"));
        }
        let service = format!("{}-pgbouncer", self.cluster);
        let bouncers =
            Self::ready_pods_behind(api, Some(&self.namespace), &service).unwrap_or_default();
        if bouncers.is_empty() {
            return Err(format!("no ready pgBouncer pod behind Service {service}"));
        }
        let attempt = self.next_id as usize + self.failed as usize;
        let bouncer = bouncers[attempt % bouncers.len()];
        let name = bouncer["metadata"]["name"].as_str().unwrap_or_default();
        if !infra.container_up(bouncer, now) {
            return Err(format!(
                "pgBouncer {name} does not answer (connection timed out)"
            ));
        }
        self.route(api).ok_or_else(|| {
            format!("pgBouncer {name}: no server: no ready pod behind Service {primary}")
        })
    }

    /// Writes once if due. Returns a line for the timeline when writes start failing (after
    /// the client had written at least once) or succeed again after failing.
    pub fn step(
        &mut self,
        api: &dyn SimApi,
        infra: &dyn Infra,
        patroni: &mut Patroni,
        settings: &Settings,
        now: Millis,
    ) -> Option<String> {
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        let via_pgbouncer = self.through_pgbouncer(api);
        let service = if via_pgbouncer {
            format!("{}-pgbouncer", self.cluster)
        } else {
            format!("{}-primary", self.cluster)
        };
        let result = self
            .connect(api, infra, now, via_pgbouncer)
            .and_then(|pod| patroni.write(&pod, now, settings).map(|at| (pod, at)));
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
                self.write_succeeded(&service, &pod, now)
            }
            Err(reason) => {
                self.failed += 1;
                self.write_failed(&service, &reason, now)
            }
        }
    }

    fn write_succeeded(&mut self, service: &str, pod: &str, now: Millis) -> Option<String> {
        let o = self.outage.as_mut()?;
        o.tried += 1;
        if o.ok_streak == 0 {
            o.ok_since = now;
            self.longest_outage = self.longest_outage.max(now - o.since);
        }
        o.ok_streak += 1;
        let line = match (o.intermittent, o.ok_streak) {
            (false, 1) => Some(format!(
                "client: writes through {service} succeed again on {pod} after {} ({} failed)",
                outage_text(now - o.since),
                o.failed
            )),
            (true, n) if n == STEADY_WRITES => Some(format!(
                "client: writes through {service} succeed steadily again on {pod} since {}, {} after they began to fail ({} of {} failed)",
                crate::clock::fmt_offset(o.ok_since),
                outage_text(o.ok_since - o.since),
                o.failed,
                o.tried
            )),
            _ => None,
        };
        if o.ok_streak >= STEADY_WRITES {
            self.outage = None;
        }
        line
    }

    fn write_failed(&mut self, service: &str, reason: &str, now: Millis) -> Option<String> {
        if let Some(o) = &mut self.outage {
            o.failed += 1;
            o.tried += 1;
            let recovered = o.ok_streak > 0;
            o.ok_streak = 0;
            self.longest_outage = self.longest_outage.max(now - o.since);
            if recovered && !o.intermittent {
                o.intermittent = true;
                return Some(format!(
                    "client: writes through {service} fail again, intermittently: {reason}"
                ));
            }
            return None;
        }
        if self.acked.is_empty() {
            return None;
        }
        self.outage = Some(Outage {
            since: now,
            failed: 1,
            tried: 1,
            intermittent: false,
            ok_streak: 0,
            ok_since: now,
        });
        Some(format!("client: writes through {service} fail: {reason}"))
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

    /// Replays a run of write results (true: acknowledged) one second apart, returning the
    /// timeline lines with the time they were emitted.
    fn replay(results: &[bool]) -> Vec<(Millis, String)> {
        let mut w = Workload::new("default", "c", SECOND);
        w.acked.push(write(0, "p", 1, 1));
        let mut lines = Vec::new();
        for (i, ok) in results.iter().enumerate() {
            let now = i as Millis * SECOND;
            let line = if *ok {
                w.write_succeeded("c-primary", "p", now)
            } else {
                w.write_failed("c-primary", "down", now)
            };
            lines.extend(line.map(|l| (now, l)));
        }
        assert!(w.outage.is_none() || !results.ends_with(&[true; 5]));
        lines
    }

    #[test]
    fn an_outage_is_reported_when_it_starts_and_when_it_ends() {
        let lines = replay(&[
            true, false, false, false, true, true, true, true, true, true,
        ]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            (1000, "client: writes through c-primary fail: down".into())
        );
        assert_eq!(
            lines[1],
            (
                4000,
                "client: writes through c-primary succeed again on p after 3.0s (3 failed)".into()
            )
        );
    }

    #[test]
    fn failures_soon_after_a_recovery_make_one_intermittent_outage() {
        let mut run = vec![false, true, false, true, false, false, true];
        run.extend([true; 5]);
        let lines = replay(&run);
        let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(texts.len(), 4, "{texts:?}");
        assert!(
            texts[2].contains("fail again, intermittently: down"),
            "{texts:?}"
        );
        // Steady from the write at 6 s on; the outage began at 0 s; 4 of 11 writes failed.
        assert_eq!(
            texts[3],
            "client: writes through c-primary succeed steadily again on p since +00:06.000, 6.0s after they began to fail (4 of 11 failed)"
        );
        assert_eq!(lines[3].0, 10_000);
    }
}
