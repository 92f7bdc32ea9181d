//! The behaviour models in real time, for `tusk up`: the same Patroni/PostgreSQL model as in the
//! world, stepped on a timer against a live API server, so database pods become ready and elect
//! a primary. Readiness reaches the built-in kubelet through its `PodBehaviour` hook.
//!
//! ```ignore
//! let models = LiveModels::new(seed);
//! attach_models(&mut controllers.behaviours, &models);
//! // every 200 ms or so:
//! models.step(&mut api_objects, Timestamp::now());
//! ```

use crate::clock::from_timestamp;
use crate::labels;
use crate::models::patroni::{Patroni, PodStatusInfra};
use crate::models::pgbackrest::PgBackRest;
use crate::rng::SimRng;
use crate::store::Copying;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tusk_fake_apiserver::Objects;
use tusk_fake_apiserver::controllers::{PodBehaviour, PodBehaviours};

struct Inner {
    per_namespace: BTreeMap<String, Patroni>,
    /// pgBackRest per namespace: finishes backup/restore Jobs and keeps
    /// `<cluster>-pgbackrest-info` current, as in the world.
    backrest: BTreeMap<String, PgBackRest>,
    rng: SimRng,
}

/// Patroni models for every namespace, shared between the stepping task and the kubelet hook.
#[derive(Clone)]
pub struct LiveModels {
    inner: Arc<Mutex<Inner>>,
}

impl LiveModels {
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                per_namespace: BTreeMap::new(),
                backrest: BTreeMap::new(),
                rng: SimRng::new(seed),
            })),
        }
    }

    /// One pass of every model at `now` (wall time in `tusk up`).
    pub fn step(&self, api: &mut dyn Objects, now: Timestamp) {
        let t = from_timestamp(now);
        let namespaces: Vec<String> = api
            .list_shared("v1", "Pod", None)
            .iter()
            .filter(|p| p["metadata"]["labels"][labels::DATA] == "postgres")
            .filter_map(|p| p["metadata"]["namespace"].as_str().map(str::to_string))
            .collect();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner {
            per_namespace,
            backrest,
            rng,
        } = &mut *inner;
        for ns in namespaces {
            per_namespace
                .entry(ns.clone())
                .or_insert_with(|| Patroni::new(&ns));
        }
        for (ns, p) in per_namespace.iter_mut() {
            p.replicate(t);
            let b = backrest.entry(ns.clone()).or_insert_with(|| {
                // As on a real cluster, the operator reads `pgbackrest info` itself.
                let mut b = PgBackRest::new(ns);
                b.leaves_info_to_operator = true;
                b
            });
            // Jobs finish as soon as the model sees them: a simulated database is small.
            b.step(api, p, &PodStatusInfra, t, 0, false);
            p.step(&mut Copying(&mut *api), t, &PodStatusInfra, rng);
            b.archive(&Copying(&mut *api), p, t, false);
        }
    }

    /// Readiness of a database pod as Patroni reports it (None for pods no model manages).
    pub fn ready(&self, pod: &Value) -> Option<bool> {
        let ns = pod["metadata"]["namespace"].as_str()?;
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.per_namespace.get(ns)?.ready(pod)
    }

    /// The kubelet stopped a pod's processes (`PodBehaviour::on_stop`). After a graceful
    /// delete that is Patroni's SIGTERM: it shuts down cleanly and releases the leader lock,
    /// even when the pod is recreated before the models step again.
    pub fn stopped(&self, pod: &Value) {
        if pod["metadata"]["deletionTimestamp"].is_null() {
            return;
        }
        let (Some(ns), Some(uid)) = (
            pod["metadata"]["namespace"].as_str(),
            pod["metadata"]["uid"].as_str(),
        ) else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = inner.per_namespace.get_mut(ns) {
            p.sigterm(uid);
        }
    }

    /// The pod that holds the primary role in a cluster, if any.
    pub fn primary(&self, namespace: &str, cluster: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .per_namespace
            .get(namespace)?
            .primary_of(cluster)
            .map(|m| m.pod.clone())
    }

    /// Runs SQL (from `Action::Sql`) on a pod's model; refused unless it is the primary.
    pub fn sql(&self, namespace: &str, pod: &str, statements: &[String]) -> Result<(), String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .per_namespace
            .get_mut(namespace)
            .ok_or_else(|| format!("no postgres runs in namespace {namespace}"))?
            .sql(pod, statements)
    }

    /// The roles a pod's data directory holds (what `\du` lists in `tusk up`'s psql), on any
    /// member, primary or replica.
    pub fn roles(&self, namespace: &str, pod: &str) -> Result<Vec<String>, String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let d = inner
            .per_namespace
            .get(namespace)
            .and_then(|p| p.data_of(pod))
            .ok_or_else(|| format!("pod {namespace}/{pod} runs no PostgreSQL"))?;
        Ok(d.roles.keys().cloned().collect())
    }

    /// What `pgbackrest info --stanza=db --output=json` prints in `pod` (a database pod of a
    /// cluster the models run): the backups the pgBackRest model holds for its cluster.
    pub fn pgbackrest_info(&self, namespace: &str, pod: &str) -> Result<String, String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let cluster = inner
            .per_namespace
            .get(namespace)
            .and_then(|p| p.members.get(pod))
            .map(|m| m.cluster.clone())
            .ok_or_else(|| format!("pod {namespace}/{pod} runs no PostgreSQL"))?;
        Ok(match inner.backrest.get(namespace) {
            Some(b) => b.info_json(&cluster).to_string(),
            // No Job has run yet: an empty stanza.
            None => serde_json::json!([{"name": "db", "backup": [],
                "status": {"code": 0, "message": "ok"}}])
            .to_string(),
        })
    }

    /// A switchover (from `Action::Switchover`), as Patroni's REST API takes it.
    pub fn switchover(
        &self,
        api: &mut dyn Objects,
        namespace: &str,
        cluster: &str,
        leader: &str,
        candidate: Option<&str>,
    ) -> Result<(), String> {
        Patroni::request_switchover(api, namespace, cluster, Some(leader), candidate)
    }
}

/// The kubelet hook: database pods are ready when their Patroni says so.
struct DatabaseBehaviour(LiveModels);

impl PodBehaviour for DatabaseBehaviour {
    fn ready(&mut self, pod: &Value, container: &str, _now: Timestamp) -> bool {
        if container != "database" {
            return true;
        }
        self.0.ready(pod).unwrap_or(false)
    }

    fn exit(&mut self, _pod: &Value, _container: &str, _now: Timestamp) -> Option<i32> {
        None
    }

    fn stop_delay(&self, _pod: &Value) -> Option<i64> {
        Some(DATABASE_STOP_SECONDS)
    }

    fn on_stop(&mut self, pod: &Value, _now: Timestamp) {
        self.0.stopped(pod);
    }
}

/// Seconds a database pod takes to stop after a graceful delete: a clean PostgreSQL shutdown
/// (checkpoint) takes a moment, and Patroni releases the leader lock meanwhile.
pub const DATABASE_STOP_SECONDS: i64 = 2;

/// Registers the models for every pod labelled `postgres-operator.crunchydata.com/data=postgres`.
pub fn attach_models(behaviours: &mut PodBehaviours, models: &LiveModels) {
    behaviours.add_for_labels(
        None,
        &[(labels::DATA, "postgres")],
        DatabaseBehaviour(models.clone()),
    );
}
