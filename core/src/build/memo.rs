//! A pure memo of rendered objects, so that a reconcile of an unchanged CR does not render the
//! same StatefulSets, Services and ConfigMaps again.
//!
//! Every builder in this module's parent reads only the CR's name, namespace, uid and spec
//! (through [`Ctx`]) and its explicit arguments: nothing from `Observed`, the clock or Env.
//! The memo is therefore keyed by exactly those inputs: an entry per cluster holds a copy of
//! the name, namespace, uid and spec, compared for equality (not a hash, so no collision can
//! return a wrong object), and inside it the objects by builder and arguments. A result is
//! identical with or without the memo (tests below render with it and without it).
//!
//! One memo per process, shared by every thread that reconciles (the operator's reconcile
//! pool): a cluster's entries are found by its namespace and name in a hash map (no scan),
//! then checked against the uid and spec (up to four specs per cluster name are kept). Bounded by an
//! estimate of the bytes it holds ([`set_budget`], default [`DEFAULT_BUDGET_BYTES`]): past the
//! budget the least recently reconciled clusters are dropped whole. Within a cluster at most
//! [`MAX_OBJECTS`] objects are kept (cleared when full, so keys of objects that no longer
//! exist do not pile up). Misses cost what a reconcile without the memo costs plus a copy of
//! the spec. Rendered password and TLS Secrets stay in this memory (the observed Secrets are
//! in the same process anyway).

use super::Ctx;
use crate::api::cluster::PerconaPGClusterSpec;
use serde_json::Value;
use std::any::Any;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// Objects kept per cluster before that cluster's objects are cleared.
pub const MAX_OBJECTS: usize = 256;
/// The default bound on the memo's estimated size, see [`set_budget`]: room for about 1,300
/// clusters like the upstream `cr.yaml` (393 KiB of heap each, measured).
pub const DEFAULT_BUDGET_BYTES: usize = 512 << 20;

type Shared = Arc<dyn Any + Send + Sync>;

/// An estimate of the heap bytes a memoised value holds, for the memo's budget.
pub trait Weigh {
    fn weight(&self) -> usize;
}

/// A cluster's entry: the inputs its objects were rendered from and the objects.
pub(crate) struct Entry {
    uid: Option<String>,
    spec: PerconaPGClusterSpec,
    objects: Mutex<Objects>,
}

struct Objects {
    /// False once the entry is dropped from the memo: nothing more is stored or counted.
    live: bool,
    bytes: usize,
    map: HashMap<Box<[u8]>, (Shared, usize)>,
}

struct Slot {
    entry: Arc<Entry>,
    tick: u64,
}

#[derive(Default)]
struct Memo {
    /// Entries by namespace/name: a few per cluster, for specs that alternate (a stale read
    /// after a change, a test going back and forth).
    by_cluster: HashMap<String, Vec<Slot>>,
    /// Entries by last use, oldest first: tick to namespace/name.
    lru: BTreeMap<u64, String>,
    tick: u64,
}

/// Entries kept per cluster name (different specs or uids).
const PER_CLUSTER: usize = 4;

static MEMO: LazyLock<Mutex<Memo>> = LazyLock::new(|| Mutex::new(Memo::default()));
/// Estimated bytes held by live entries.
static BYTES: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET_BYTES);

thread_local! {
    static DISABLED: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` with the memo bypassed on this thread (every object rendered afresh); for tests
/// and benchmarks that compare the two.
pub fn without_memo<R>(f: impl FnOnce() -> R) -> R {
    let before = DISABLED.with(|d| d.replace(true));
    let r = f();
    DISABLED.with(|d| d.set(before));
    r
}

/// Sets the bound on the memo's estimated size in bytes and returns the previous one. The
/// estimate of a cluster is close to the heap it occupies: for the upstream `cr.yaml` (three
/// instances, pgBouncer, a repo host) 385 KiB estimated, 393 KiB measured by the bench
/// `reconcile/noop_1000_clusters_rotating`.
pub fn set_budget(bytes: usize) -> usize {
    BUDGET.swap(bytes, Ordering::Relaxed)
}

/// Empties the memo.
pub fn clear() {
    let mut m = lock(&MEMO);
    for (_, bucket) in m.by_cluster.drain() {
        for slot in bucket {
            retire(&slot.entry);
        }
    }
    m.lru.clear();
}

/// How many entries (cluster specs) the memo holds and its estimated size in bytes.
pub fn stats() -> (usize, usize) {
    let clusters = lock(&MEMO).len();
    (clusters, BYTES.load(Ordering::Relaxed))
}

/// Drops an entry's objects and their weight from the total.
fn retire(entry: &Entry) {
    let mut o = lock(&entry.objects);
    o.live = false;
    BYTES.fetch_sub(o.bytes, Ordering::Relaxed);
    o.bytes = 0;
    o.map.clear();
}

impl Memo {
    fn candidates(&self, key: &str) -> Vec<Arc<Entry>> {
        self.by_cluster
            .get(key)
            .map(|b| b.iter().map(|s| s.entry.clone()).collect())
            .unwrap_or_default()
    }

    /// Marks `entry` as just used; false when it is no longer held.
    fn touch(&mut self, key: &str, entry: &Arc<Entry>) -> bool {
        self.tick += 1;
        let tick = self.tick;
        let Some(slot) = self
            .by_cluster
            .get_mut(key)
            .and_then(|b| b.iter_mut().find(|s| Arc::ptr_eq(&s.entry, entry)))
        else {
            return false;
        };
        self.lru.remove(&slot.tick);
        slot.tick = tick;
        self.lru.insert(tick, key.to_string());
        true
    }

    fn insert(&mut self, key: String, entry: Arc<Entry>) {
        self.tick += 1;
        let tick = self.tick;
        let bucket = self.by_cluster.entry(key.clone()).or_default();
        bucket.push(Slot { entry, tick });
        if bucket.len() > PER_CLUSTER
            && let Some(oldest) = bucket.iter().map(|s| s.tick).min()
        {
            self.remove(&key, oldest);
        }
        self.lru.insert(tick, key);
    }

    /// Drops the entry of `key` last used at `tick`.
    fn remove(&mut self, key: &str, tick: u64) {
        self.lru.remove(&tick);
        if let Some(bucket) = self.by_cluster.get_mut(key) {
            if let Some(i) = bucket.iter().position(|s| s.tick == tick) {
                retire(&bucket.swap_remove(i).entry);
            }
            if bucket.is_empty() {
                self.by_cluster.remove(key);
            }
        }
    }

    fn len(&self) -> usize {
        self.lru.len()
    }

    /// Drops the least recently used entries while over budget, never the one just used.
    fn evict(&mut self) {
        let budget = BUDGET.load(Ordering::Relaxed);
        while BYTES.load(Ordering::Relaxed) > budget && self.lru.len() > 1 {
            let Some((&tick, key)) = self.lru.first_key_value() else {
                break;
            };
            let key = key.clone();
            self.remove(&key, tick);
        }
    }
}

/// The entry for `ctx`'s inputs, created when absent.
fn entry_for(ctx: &Ctx) -> Arc<Entry> {
    if let Some(e) = ctx.memo_entry.get() {
        return e.clone();
    }
    let key = format!("{}/{}", ctx.ns, ctx.name);
    let uid = ctx.cr.metadata.uid.as_deref();
    let candidates = lock(&MEMO).candidates(&key);
    // The deep comparison of the spec happens outside the memo's lock.
    let found = candidates
        .into_iter()
        .find(|e| e.uid.as_deref() == uid && e.spec == ctx.cr.spec);
    let mut m = lock(&MEMO);
    let entry = match found {
        Some(e) if m.touch(&key, &e) => e,
        _ => {
            let e = Arc::new(Entry {
                uid: uid.map(str::to_string),
                spec: ctx.cr.spec.clone(),
                objects: Mutex::new(Objects {
                    live: true,
                    bytes: 0,
                    map: HashMap::new(),
                }),
            });
            m.insert(key, e.clone());
            e
        }
    };
    m.evict();
    drop(m);
    let _ = ctx.memo_entry.set(entry.clone());
    entry
}

/// The object `render` builds from `ctx` and the arguments `key` names, rendered once per
/// distinct (CR name, namespace, uid, spec, key). `key` must name the builder and every
/// argument it is given besides `ctx`.
pub fn get<T, F>(ctx: &Ctx, key: impl AsRef<[u8]>, render: F) -> Arc<T>
where
    T: Any + Send + Sync + Weigh,
    F: FnOnce() -> T,
{
    let key = key.as_ref();
    if DISABLED.with(Cell::get) {
        return Arc::new(render());
    }
    let entry = entry_for(ctx);
    let hit = lock(&entry.objects).map.get(key).map(|(v, _)| v.clone());
    if let Some(hit) = hit.and_then(|h| h.downcast::<T>().ok()) {
        return hit;
    }
    // Rendered outside the lock: a builder may use the memo itself.
    let v = Arc::new(render());
    let weight = v.weight() + key.len() + 64;
    let mut o = lock(&entry.objects);
    if o.live {
        if o.map.len() >= MAX_OBJECTS {
            BYTES.fetch_sub(o.bytes, Ordering::Relaxed);
            o.bytes = 0;
            o.map.clear();
        }
        if let Some((_, old)) = o.map.insert(key.into(), (v.clone() as Shared, weight)) {
            o.bytes -= old;
            BYTES.fetch_sub(old, Ordering::Relaxed);
        }
        o.bytes += weight;
        BYTES.fetch_add(weight, Ordering::Relaxed);
    }
    v
}

/// An estimate of the heap bytes of a JSON tree (nodes, strings, map slots).
pub fn json_weight(v: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
        Value::String(s) => NODE + s.len(),
        Value::Array(a) => NODE + a.iter().map(json_weight).sum::<usize>(),
        Value::Object(m) => {
            NODE + m
                .iter()
                .map(|(k, v)| k.len() + 32 + json_weight(v))
                .sum::<usize>()
        }
    }
}

/// Rendered objects, as the memo shares them, with a remembered comparison per object: which
/// observed object it was last compared with and whether that satisfied it. The comparison
/// is a pure function of the two, so the same observed object gets the same verdict without
/// the walk. "The same" is its uid and resourceVersion when it has both (the API server
/// gives an object a new resourceVersion on every change, status and metadata included), so
/// a reconcile of an unchanged cluster compares two short strings per object instead of
/// walking cold copies; an object without them (built in tests) is kept as a copy and
/// compared for equality (`PartialEq`, every field).
pub struct Rendered {
    /// Shared with the plans that apply them (no copy per reconcile).
    objects: Vec<Arc<Value>>,
    verdicts: Vec<Mutex<Option<Verdict>>>,
}

struct Verdict {
    observed: Seen,
    satisfied: bool,
}

enum Seen {
    Version {
        uid: String,
        resource_version: String,
    },
    Copy(Box<dyn Any + Send + Sync>),
}

/// The uid and resourceVersion of an observed object, when both are set and not empty.
pub fn version_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<(&str, &str)> {
    let uid = meta.uid.as_deref().filter(|u| !u.is_empty())?;
    let rv = meta.resource_version.as_deref().filter(|v| !v.is_empty())?;
    Some((uid, rv))
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.objects).finish()
    }
}

impl Weigh for Rendered {
    /// The JSON trees' estimate times 2.5: measured against the heap (the bench
    /// `reconcile/noop_1000_clusters_rotating` prints both), a tree occupies that much more
    /// than [`json_weight`] counts (allocator rounding, map nodes, the verdicts).
    fn weight(&self) -> usize {
        5 * self.objects.iter().map(|o| json_weight(o)).sum::<usize>() / 2
    }
}

impl Rendered {
    pub fn new(objects: Vec<Value>) -> Self {
        // Outside the memo a render is used once: remembering would only cost a copy.
        let verdicts = if DISABLED.with(Cell::get) {
            Vec::new()
        } else {
            objects.iter().map(|_| Mutex::new(None)).collect()
        };
        let objects = objects.into_iter().map(Arc::new).collect();
        Self { objects, verdicts }
    }

    pub fn objects(&self) -> &[Arc<Value>] {
        &self.objects
    }

    /// The first (for single-object renders, the only) object.
    pub fn object(&self) -> &Value {
        &self.objects[0]
    }

    /// `check()` — whether `observed` satisfies object `i` — or the verdict remembered for
    /// the same observed object: the same `version` (its uid and resourceVersion, see
    /// [`version_of`]) or, without one, an equal object.
    pub fn verdict<T>(
        &self,
        i: usize,
        observed: &T,
        version: Option<(&str, &str)>,
        check: impl FnOnce() -> bool,
    ) -> bool
    where
        T: Any + Clone + PartialEq + Send + Sync,
    {
        let Some(slot) = self.verdicts.get(i) else {
            return check();
        };
        let mut slot = lock(slot);
        if let Some(v) = slot.as_ref() {
            let same = match (&v.observed, version) {
                (
                    Seen::Version {
                        uid,
                        resource_version,
                    },
                    Some((u, rv)),
                ) => uid == u && resource_version == rv,
                (Seen::Copy(copy), None) => copy.downcast_ref::<T>() == Some(observed),
                _ => false,
            };
            if same {
                return v.satisfied;
            }
        }
        let satisfied = check();
        let observed = match version {
            Some((uid, rv)) => Seen::Version {
                uid: uid.to_string(),
                resource_version: rv.to_string(),
            },
            None => Seen::Copy(Box::new(observed.clone())),
        };
        *slot = Some(Verdict {
            observed,
            satisfied,
        });
        satisfied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::Cell;

    fn clusters(n: usize, prefix: &str) -> Vec<crate::api::PerconaPGCluster> {
        let base: crate::api::PerconaPGCluster = serde_json::from_value(json!({
            "apiVersion": "pgv2.percona.com/v2",
            "kind": "PerconaPGCluster",
            "metadata": {"name": "x", "namespace": "ns", "uid": "u"},
            "spec": {
                "crVersion": "2.9.0",
                "postgresVersion": 17,
                "instances": [{"name": "i1", "dataVolumeClaimSpec": {}}],
                "backups": {"enabled": false},
            },
        }))
        .expect("test CR deserializes");
        (0..n)
            .map(|i| {
                let mut cr = base.clone();
                cr.metadata.name = Some(format!("{prefix}-{i}"));
                cr
            })
            .collect()
    }

    /// One reconcile's worth of gets for `cr`; returns how many objects were rendered.
    fn reconcile_like(cr: &crate::api::PerconaPGCluster) -> usize {
        let ctx = Ctx::new(cr);
        let renders = Cell::new(0);
        for k in 0..4 {
            let r = get(&ctx, format!("obj/{k}"), || {
                renders.set(renders.get() + 1);
                Rendered::new(vec![json!({"metadata": {"name": ctx.name}, "k": k})])
            });
            assert_eq!(r.object()["metadata"]["name"], json!(ctx.name));
        }
        renders.get()
    }

    /// One test, not two: the memo is process-wide and the second half lowers its budget.
    #[test]
    fn a_thousand_clusters_rotating_through_one_thread_all_hit_within_the_budget() {
        let crs = clusters(1000, "rot");
        let first: usize = crs.iter().map(reconcile_like).sum();
        assert_eq!(first, 4000);
        // Second and third rounds: every object comes from the memo.
        for _ in 0..2 {
            let again: usize = crs.iter().map(reconcile_like).sum();
            assert_eq!(again, 0);
        }
        let (held, bytes) = stats();
        assert!(held >= 1000, "{held} clusters held");
        assert!(bytes > 0 && bytes <= DEFAULT_BUDGET_BYTES);
        let per_cluster = bytes / held;
        // A changed spec gets its own entry: rendered again, once; the old spec still hits.
        let mut changed = crs[7].clone();
        changed.spec.postgres_version = 16;
        assert_eq!(reconcile_like(&changed), 4);
        assert_eq!(reconcile_like(&changed), 0);
        assert_eq!(reconcile_like(&crs[7]), 0);
        // At most four specs per cluster name: the fifth drops the least recently used.
        for v in 12..15 {
            changed.spec.postgres_version = v;
            assert_eq!(reconcile_like(&changed), 4);
        }
        assert_eq!(reconcile_like(&crs[7]), 0);
        changed.spec.postgres_version = 16;
        assert_eq!(
            reconcile_like(&changed),
            4,
            "the least recently used spec was dropped"
        );
        let held = stats().0;

        assert!(held >= 1003, "{held} entries held");
        // Room for about ten such clusters: the least recently used are dropped.
        let before = set_budget(10 * per_cluster);
        reconcile_like(&crs[0]);
        let (held, bytes) = stats();
        assert!(held <= 12, "{held} clusters held over a budget of ten");
        assert!(bytes <= 12 * per_cluster, "{bytes} bytes");
        // The most recent ones are still there; an old one was dropped.
        assert_eq!(reconcile_like(&crs[0]), 0);
        assert_eq!(reconcile_like(&crs[999]), 0);
        assert_eq!(reconcile_like(&crs[1]), 4);
        set_budget(before);
    }

    #[test]
    fn a_verdict_is_reused_only_for_an_equal_observed_object() {
        let r = Rendered::new(vec![json!({"a": 1})]);
        let calls = Cell::new(0);
        let check = |v: bool| {
            calls.set(calls.get() + 1);
            v
        };
        assert!(r.verdict(0, &json!({"a": 1}), None, || check(true)));
        // Equal observed object: the remembered verdict, no new check.
        assert!(r.verdict(0, &json!({"a": 1}), None, || check(false)));
        assert_eq!(calls.get(), 1);
        // A different one (or another type): checked again.
        assert!(!r.verdict(0, &json!({"a": 2}), None, || check(false)));
        assert!(r.verdict(0, &String::from("x"), None, || check(true)));
        assert_eq!(calls.get(), 3);
        // Out of range: always checked.
        assert!(r.verdict(5, &json!({"a": 1}), None, || check(true)));
        assert_eq!(calls.get(), 4);
        // With a uid and resourceVersion, those say whether it is the same object.
        assert!(!r.verdict(0, &json!({"a": 1}), Some(("u", "7")), || check(false)));
        assert!(!r.verdict(0, &json!({"a": 1}), Some(("u", "7")), || check(true)));
        assert_eq!(calls.get(), 5);
        assert!(r.verdict(0, &json!({"a": 1}), Some(("u", "8")), || check(true)));
        assert!(r.verdict(0, &json!({"a": 1}), Some(("v", "8")), || check(true)));
        assert_eq!(calls.get(), 7);
        // A version never matches a copy, nor the other way round.
        assert!(!r.verdict(0, &json!({"a": 1}), None, || check(false)));
        assert!(r.verdict(0, &json!({"a": 1}), Some(("v", "8")), || check(true)));
        assert_eq!(calls.get(), 9);
    }
}
