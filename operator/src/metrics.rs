//! Prometheus metrics, kept in a handful of atomics and maps and rendered in the text
//! exposition format by hand (a dependency is not worth it for five families).

use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

#[derive(Default)]
pub struct Metrics {
    reconciles_ok: AtomicU64,
    reconciles_err: AtomicU64,
    watch_errors: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    errors_by_reason: Mutex<BTreeMap<String, u64>>,
    requests_by_verb: Mutex<BTreeMap<String, u64>>,
    /// The part of `requests_by_verb` that is leader election (the Lease).
    lease_requests_by_verb: Mutex<BTreeMap<String, u64>>,
    actions_by_kind: Mutex<BTreeMap<String, u64>>,
    /// (namespace, cluster) -> status.state, for tests and embedders without a store.
    cluster_states: Mutex<BTreeMap<(String, String), String>>,
    /// The controllers' cluster caches; the clusters gauge is computed from them when scraped.
    cluster_stores: Mutex<Vec<Store<DynamicObject>>>,
    leader: AtomicU64,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    *m.entry(key.to_string()).or_default() += 1;
}

impl Metrics {
    pub fn reconciled(&self, took: Duration, error_reason: Option<&str>) {
        match error_reason {
            None => self.reconciles_ok.fetch_add(1, Ordering::Relaxed),
            Some(reason) => {
                bump(&self.errors_by_reason, reason);
                self.reconciles_err.fetch_add(1, Ordering::Relaxed)
            }
        };
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn watch_error(&self) {
        self.watch_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request(&self, verb: &str) {
        bump(&self.requests_by_verb, verb);
    }

    /// A request of leader election (also counted by [`Metrics::request`]).
    pub fn lease_request(&self, verb: &str) {
        bump(&self.lease_requests_by_verb, verb);
    }

    pub fn action(&self, kind: &str) {
        bump(&self.actions_by_kind, kind);
    }

    /// Total API requests with a writing verb (create, update, patch, delete).
    pub fn writes(&self) -> u64 {
        write_total(&self.requests_by_verb)
    }

    /// Writing requests other than leader election's: what reconciles wrote.
    pub fn reconcile_writes(&self) -> u64 {
        self.writes()
            .saturating_sub(write_total(&self.lease_requests_by_verb))
    }

    pub fn reconciles(&self) -> u64 {
        self.reconciles_ok.load(Ordering::Relaxed) + self.reconciles_err.load(Ordering::Relaxed)
    }

    pub fn set_cluster_state(&self, namespace: &str, name: &str, state: Option<&str>) {
        let mut m = self
            .cluster_states
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), name.to_string());
        match state {
            Some(s) => {
                m.insert(key, s.to_string());
            }
            None => {
                m.remove(&key);
            }
        }
    }

    pub fn register_clusters(&self, store: Store<DynamicObject>) {
        self.cluster_stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(u64::from(leader), Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "# HELP tusk_reconciles_total Reconciles run, by result.");
        let _ = writeln!(w, "# TYPE tusk_reconciles_total counter");
        let _ = writeln!(
            w,
            "tusk_reconciles_total{{result=\"ok\"}} {}",
            self.reconciles_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            w,
            "tusk_reconciles_total{{result=\"error\"}} {}",
            self.reconciles_err.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            w,
            "# HELP tusk_reconcile_duration_seconds Time per reconcile, including executing its plan."
        );
        let _ = writeln!(w, "# TYPE tusk_reconcile_duration_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                w,
                "tusk_reconcile_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.duration_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        let _ = writeln!(
            w,
            "tusk_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            w,
            "tusk_reconcile_duration_seconds_sum {}",
            self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(w, "tusk_reconcile_duration_seconds_count {count}");
        family(
            w,
            "tusk_reconcile_errors_total",
            "Failed reconciles, by reason.",
            "counter",
            "reason",
            &self
                .errors_by_reason
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        family(
            w,
            "tusk_api_requests_total",
            "Requests the operator sent to the Kubernetes API, by verb.",
            "counter",
            "verb",
            &self
                .requests_by_verb
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        family(
            w,
            "tusk_leader_election_requests_total",
            "The part of tusk_api_requests_total that leader election sent (its Lease), by verb.",
            "counter",
            "verb",
            &self
                .lease_requests_by_verb
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        family(
            w,
            "tusk_plan_actions_total",
            "Plan actions executed, by kind of action.",
            "counter",
            "action",
            &self
                .actions_by_kind
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for state in self
            .cluster_states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            *by_state.entry(state.clone()).or_default() += 1;
        }
        for store in self
            .cluster_stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for c in store.state() {
                let state = c
                    .data
                    .pointer("/status/state")
                    .and_then(|s| s.as_str())
                    .unwrap_or("unknown");
                *by_state.entry(state.to_string()).or_default() += 1;
            }
        }
        family(
            w,
            "tusk_clusters",
            "PerconaPGClusters known to this operator, by status.state.",
            "gauge",
            "state",
            &by_state,
        );
        let _ = writeln!(
            w,
            "# HELP tusk_watch_errors_total Watch stream errors (retried with backoff)."
        );
        let _ = writeln!(w, "# TYPE tusk_watch_errors_total counter");
        let _ = writeln!(
            w,
            "tusk_watch_errors_total {}",
            self.watch_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            w,
            "# HELP tusk_leader 1 when this replica holds the leader Lease."
        );
        let _ = writeln!(w, "# TYPE tusk_leader gauge");
        let _ = writeln!(w, "tusk_leader {}", self.leader.load(Ordering::Relaxed));
        out
    }
}

fn write_total(by_verb: &Mutex<BTreeMap<String, u64>>) -> u64 {
    let m = by_verb.lock().unwrap_or_else(|e| e.into_inner());
    ["create", "update", "patch", "delete"]
        .iter()
        .filter_map(|v| m.get(*v))
        .sum()
}

fn family(
    w: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    label: &str,
    values: &BTreeMap<String, u64>,
) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
    for (k, v) in values {
        let k = k.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(w, "{name}{{{label}=\"{k}\"}} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_renewals_are_not_reconcile_writes() {
        let m = Metrics::default();
        m.request("patch");
        for _ in 0..3 {
            m.request("update");
            m.lease_request("update");
        }
        m.request("get");
        m.lease_request("get");
        assert_eq!(m.writes(), 4);
        assert_eq!(m.reconcile_writes(), 1);
        let text = m.render();
        assert!(
            text.contains("tusk_leader_election_requests_total{verb=\"update\"} 3"),
            "{text}"
        );
        assert!(text.contains("tusk_api_requests_total{verb=\"update\"} 3"));
    }

    #[test]
    fn renders_families_and_counts() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(3), None);
        m.reconciled(Duration::from_millis(30), Some("conflict"));
        m.request("patch");
        m.request("get");
        m.set_cluster_state("ns", "a", Some("ready"));
        m.set_cluster_state("ns", "b", Some("ready"));
        let text = m.render();
        assert!(
            text.contains("tusk_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("tusk_reconcile_errors_total{reason=\"conflict\"} 1"));
        assert!(text.contains("tusk_reconcile_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("tusk_reconcile_duration_seconds_count 2"));
        assert!(text.contains("tusk_clusters{state=\"ready\"} 2"));
        assert_eq!(m.writes(), 1);
    }
}
