//! A cache of one kind's objects indexed by the cluster they belong to, fed by a watch.
//!
//! kube-runtime's reflector `Store` can only be scanned to find a cluster's objects, so
//! assembling one cluster's snapshot cost a pass over every object of every kind: at a
//! thousand clusters nearly all of the operator's CPU. [`Index`] keeps, next to the objects by
//! namespace and name, the names of each (namespace, cluster)'s objects, maintained from the
//! watcher's event stream, so [`Index::of_cluster`] costs what that cluster holds.
//!
//! Relists follow the watcher's protocol: `Init` opens a buffer, `InitApply` fills it,
//! `InitDone` replaces the whole content at once (objects not listed again are gone, and their
//! clusters are reported as touched). Until the first `InitDone` the index is not ready.
//!
//! Objects are held as their compact JSON and decoded when a reconcile reads them. A typed
//! k8s-openapi object is several times the size of its JSON: every optional field of every
//! nested struct is laid out inline, so a StatefulSet's pod template (each `Volume` carries
//! room for every volume source, each `Container` for every probe and handler) took 44 KiB of
//! heap for 5.7 KiB of JSON, and the typed caches were most of the operator's memory at a
//! thousand clusters (the `footprint` bench measures it). Decoding a cluster's few dozen
//! objects costs less than the deep copies the typed caches needed for each reconcile anyway.

use kube::Resource;
use kube::runtime::watcher::Event;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// (namespace, name) of an object, or (namespace, cluster) of a cluster.
pub type Key = (String, String);

/// The cluster an object belongs to, if any (a label, or `spec.pgCluster`).
pub type ClusterOf<K> = fn(&K) -> Option<String>;

/// One object: its JSON, and what lookups by name read without decoding it.
struct Entry {
    /// The object's JSON without its resourceVersion (held apart, so that `digest` is a hash
    /// of these same bytes when the kind has no quiet annotations).
    json: Box<[u8]>,
    resource_version: Option<Box<str>>,
    uid: Box<str>,
    cluster: Option<String>,
    /// Hash of the object without its resourceVersion and quiet annotations: an update that
    /// leaves it unchanged changed nothing a reconcile reads.
    digest: u64,
}

struct State {
    objects: HashMap<Key, Entry>,
    /// (namespace, cluster) → names of its objects, sorted.
    by_cluster: HashMap<Key, BTreeSet<String>>,
    /// Objects received since `Init`, while a relist is under way.
    relist: Option<HashMap<Key, Entry>>,
}

struct Shared<K> {
    state: RwLock<State>,
    ready: tokio::sync::watch::Sender<bool>,
    cluster_of: ClusterOf<K>,
    quiet_annotations: &'static [&'static str],
}

/// A cheaply cloned handle on one kind's cache.
pub struct Index<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Index<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> Key {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

impl<K: Resource + Serialize + DeserializeOwned> Index<K> {
    pub fn new(cluster_of: ClusterOf<K>) -> Self {
        Self::with_quiet_annotations(cluster_of, &[])
    }

    /// An index where a change to only these annotations (and the resourceVersion) updates
    /// the cache but touches no cluster. For what other programs rewrite on a timer and no
    /// reconcile decision reads: Patroni renews its leader lock (`renewTime`, `optime` on
    /// `<cluster>-ha`) every loop, which at a thousand clusters was a hundred no-op reconciles
    /// a second.
    pub fn with_quiet_annotations(
        cluster_of: ClusterOf<K>,
        quiet_annotations: &'static [&'static str],
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: RwLock::new(State {
                    objects: HashMap::new(),
                    by_cluster: HashMap::new(),
                    relist: None,
                }),
                ready: tokio::sync::watch::channel(false).0,
                cluster_of,
                quiet_annotations,
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one watch event; returns the (namespace, cluster) pairs whose objects it
    /// touched: both the old and the new cluster when an object moves between clusters.
    pub fn apply(&self, event: Event<K>) -> Vec<Key> {
        let mut touched = Vec::new();
        let mut state = self.write();
        match event {
            Event::Apply(mut obj) => {
                let key = key_of(&obj);
                let cluster = (self.shared.cluster_of)(&obj);
                let entry = self.entry(&mut obj, cluster.clone());
                let quiet = state
                    .objects
                    .get(&key)
                    .is_some_and(|old| old.cluster == cluster && old.digest == entry.digest);
                if let Some(c) = &cluster
                    && !quiet
                {
                    touched.push((key.0.clone(), c.clone()));
                }
                if let Some(old) = state.insert(key.clone(), entry)
                    && !touched.iter().any(|t| t.1 == old)
                {
                    touched.push((key.0, old));
                }
            }
            Event::Delete(obj) => {
                let key = key_of(&obj);
                let old = state.remove(&key);
                if let Some(c) = old.or_else(|| (self.shared.cluster_of)(&obj)) {
                    touched.push((key.0, c));
                }
            }
            Event::Init => state.relist = Some(HashMap::new()),
            Event::InitApply(mut obj) => {
                let key = key_of(&obj);
                let cluster = (self.shared.cluster_of)(&obj);
                if let Some(c) = &cluster {
                    touched.push((key.0.clone(), c.clone()));
                }
                let entry = self.entry(&mut obj, cluster);
                state
                    .relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key, entry);
            }
            Event::InitDone => {
                let listed = state.relist.take().unwrap_or_default();
                // Objects that were here and were not listed again are gone.
                for (key, entry) in &state.objects {
                    if !listed.contains_key(key)
                        && let Some(c) = &entry.cluster
                    {
                        touched.push((key.0.clone(), c.clone()));
                    }
                }
                state.objects.clear();
                state.by_cluster.clear();
                for (key, entry) in listed {
                    state.insert(key, entry);
                }
                drop(state);
                self.shared.ready.send_replace(true);
            }
        }
        touched
    }

    /// The object by namespace and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<K> {
        let state = self.read();
        decode(
            state
                .objects
                .get(&(namespace.to_string(), name.to_string()))?,
        )
    }

    /// resourceVersion and uid of an object, without decoding it.
    pub fn version(&self, namespace: &str, name: &str) -> Option<(u64, String)> {
        self.read()
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .map(|e| {
                let rv = e.resource_version.as_deref().and_then(|v| v.parse().ok());
                (rv.unwrap_or(0), e.uid.to_string())
            })
    }

    /// The objects of one cluster, sorted by name.
    pub fn of_cluster(&self, namespace: &str, cluster: &str) -> Vec<K> {
        let state = self.read();
        let Some(names) = state
            .by_cluster
            .get(&(namespace.to_string(), cluster.to_string()))
        else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|n| decode(state.objects.get(&(namespace.to_string(), n.clone()))?))
            .collect()
    }

    /// Bytes of JSON held for the objects (their resourceVersions, held apart, included).
    pub fn json_bytes(&self) -> usize {
        self.read()
            .objects
            .values()
            .map(|e| e.json.len() + e.resource_version.as_deref().map_or(0, str::len))
            .sum()
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the first complete list has been applied.
    pub fn is_ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    /// Resolves once the first complete list has been applied.
    pub async fn wait_until_ready(&self) {
        let mut rx = self.shared.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
}

impl<K: Resource + Serialize> Index<K> {
    /// The cache entry of an object (which it borrows to serialize without its
    /// resourceVersion and, for the digest, without its quiet annotations; both are put back).
    fn entry(&self, obj: &mut K, cluster: Option<String>) -> Entry {
        let meta = obj.meta_mut();
        let resource_version = meta.resource_version.take().map(String::into_boxed_str);
        let mut quieted = Vec::new();
        if let Some(a) = meta.annotations.as_mut() {
            for key in self.shared.quiet_annotations {
                if let Some(v) = a.remove(*key) {
                    quieted.push((key.to_string(), v));
                }
            }
        }
        // Serializing a typed object that was just deserialized does not fail.
        let bytes = serde_json::to_vec(obj).unwrap_or_default();
        let digest = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            h.finish()
        };
        let json = if quieted.is_empty() {
            bytes
        } else {
            obj.meta_mut()
                .annotations
                .get_or_insert_with(Default::default)
                .extend(quieted);
            serde_json::to_vec(obj).unwrap_or_default()
        };
        Entry {
            json: json.into_boxed_slice(),
            resource_version,
            uid: obj.meta().uid.as_deref().unwrap_or_default().into(),
            cluster,
            digest,
        }
    }
}

fn decode<K: Resource + DeserializeOwned>(entry: &Entry) -> Option<K> {
    match serde_json::from_slice::<K>(&entry.json) {
        Ok(mut obj) => {
            obj.meta_mut().resource_version = entry.resource_version.as_deref().map(str::to_string);
            Some(obj)
        }
        Err(e) => {
            tracing::error!(error = %e, "a cached object does not decode; left out");
            None
        }
    }
}

impl State {
    /// Inserts or replaces an object; returns the cluster it belonged to before, if that differs.
    fn insert(&mut self, key: Key, entry: Entry) -> Option<String> {
        let cluster = entry.cluster.clone();
        let old = self.objects.insert(key.clone(), entry);
        let old_cluster = old.and_then(|e| e.cluster);
        if old_cluster == cluster {
            return None;
        }
        if let Some(c) = &old_cluster {
            self.unindex(&key, c);
        }
        if let Some(c) = cluster {
            self.by_cluster
                .entry((key.0.clone(), c))
                .or_default()
                .insert(key.1);
        }
        old_cluster
    }

    /// Removes an object; returns the cluster it belonged to.
    fn remove(&mut self, key: &Key) -> Option<String> {
        let cluster = self.objects.remove(key)?.cluster?;
        self.unindex(key, &cluster);
        Some(cluster)
    }

    fn unindex(&mut self, key: &Key, cluster: &str) {
        let ck = (key.0.clone(), cluster.to_string());
        if let Some(names) = self.by_cluster.get_mut(&ck) {
            names.remove(&key.1);
            if names.is_empty() {
                self.by_cluster.remove(&ck);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    const LABEL: &str = "postgres-operator.crunchydata.com/cluster";

    fn cm(ns: &str, name: &str, cluster: Option<&str>, data: &str) -> ConfigMap {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "namespace": ns},
            "data": {"v": data},
        });
        if let Some(c) = cluster {
            v["metadata"]["labels"] = serde_json::json!({ LABEL: c });
        }
        serde_json::from_value(v).unwrap()
    }

    fn by_label(o: &ConfigMap) -> Option<String> {
        o.metadata.labels.as_ref()?.get(LABEL).cloned()
    }

    fn names(index: &Index<ConfigMap>, ns: &str, cluster: &str) -> Vec<String> {
        index
            .of_cluster(ns, cluster)
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect()
    }

    fn data(index: &Index<ConfigMap>, ns: &str, name: &str) -> Option<String> {
        index
            .get(ns, name)
            .and_then(|o| o.data.as_ref()?.get("v").cloned())
    }

    fn k(ns: &str, c: &str) -> Key {
        (ns.into(), c.into())
    }

    /// A first list: ready only at InitDone; objects found by cluster, sorted, per namespace.
    fn listed() -> Index<ConfigMap> {
        listed_with(&[])
    }

    /// The same, with quiet annotations.
    fn listed_with(quiet: &'static [&'static str]) -> Index<ConfigMap> {
        let index = Index::with_quiet_annotations(by_label, quiet);
        assert!(index.apply(Event::Init).is_empty());
        assert_eq!(
            index.apply(Event::InitApply(cm("a", "c1-b", Some("c1"), "1"))),
            vec![k("a", "c1")]
        );
        index.apply(Event::InitApply(cm("a", "c1-a", Some("c1"), "1")));
        index.apply(Event::InitApply(cm("a", "c2-a", Some("c2"), "1")));
        index.apply(Event::InitApply(cm("b", "c1-a", Some("c1"), "1")));
        assert!(!index.is_ready(), "not ready before InitDone");
        assert!(index.get("a", "c1-a").is_none(), "a list is applied whole");
        index.apply(Event::InitDone);
        assert!(index.is_ready());
        index
    }

    #[test]
    fn a_list_is_indexed_by_namespace_and_cluster() {
        let index = listed();
        assert_eq!(index.len(), 4);
        assert_eq!(names(&index, "a", "c1"), ["c1-a", "c1-b"]);
        assert_eq!(names(&index, "a", "c2"), ["c2-a"]);
        assert_eq!(names(&index, "b", "c1"), ["c1-a"]);
        assert!(names(&index, "b", "c2").is_empty());
    }

    #[test]
    fn add_modify_delete() {
        let index = listed();
        assert_eq!(
            index.apply(Event::Apply(cm("a", "c2-b", Some("c2"), "1"))),
            vec![k("a", "c2")]
        );
        assert_eq!(names(&index, "a", "c2"), ["c2-a", "c2-b"]);
        // Modify in place: same cluster, new content.
        assert_eq!(
            index.apply(Event::Apply(cm("a", "c2-b", Some("c2"), "2"))),
            vec![k("a", "c2")]
        );
        assert_eq!(data(&index, "a", "c2-b").as_deref(), Some("2"));
        assert_eq!(names(&index, "a", "c2"), ["c2-a", "c2-b"]);
        // Delete: the cluster comes from the index even if the deleted object lost its label.
        assert_eq!(
            index.apply(Event::Delete(cm("a", "c2-b", None, "2"))),
            vec![k("a", "c2")]
        );
        assert_eq!(names(&index, "a", "c2"), ["c2-a"]);
        assert!(index.get("a", "c2-b").is_none());
        index.apply(Event::Delete(cm("a", "c2-a", Some("c2"), "1")));
        assert!(names(&index, "a", "c2").is_empty());
        assert_eq!(index.len(), 3);
    }

    /// `<cluster>-ha` as Patroni leaves it after a loop: leader, renewal time and WAL position.
    fn lock(rv: u64, leader: &str, renewed: &str, optime: u64) -> ConfigMap {
        let mut c = cm("a", "c1-ha", Some("c1"), "1");
        c.metadata.resource_version = Some(rv.to_string());
        c.metadata.annotations = Some(
            [
                ("leader".to_string(), leader.to_string()),
                ("renewTime".to_string(), renewed.to_string()),
                ("optime".to_string(), optime.to_string()),
            ]
            .into(),
        );
        c
    }

    #[test]
    fn a_change_to_quiet_annotations_only_is_cached_but_touches_no_cluster() {
        let index = listed_with(&["renewTime", "optime"]);
        assert_eq!(
            index.apply(Event::Apply(lock(10, "c1-a-0", "t1", 100))),
            vec![k("a", "c1")],
            "a new object touches its cluster"
        );
        assert!(
            index
                .apply(Event::Apply(lock(11, "c1-a-0", "t2", 200)))
                .is_empty(),
            "a lock renewal alone touches nothing"
        );
        // The cache still serves the newest object, resourceVersion included.
        let cached = index.get("a", "c1-ha").unwrap();
        let a = cached.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            (a["renewTime"].as_str(), a["optime"].as_str()),
            ("t2", "200")
        );
        assert_eq!(cached.metadata.resource_version.as_deref(), Some("11"));
        assert_eq!(index.version("a", "c1-ha").unwrap().0, 11);
        // A new leader is what reconciles read: it touches the cluster.
        assert_eq!(
            index.apply(Event::Apply(lock(12, "c1-a-1", "t3", 300))),
            vec![k("a", "c1")]
        );
        // Without quiet annotations every change touches, as before.
        let loud = listed();
        loud.apply(Event::Apply(lock(10, "c1-a-0", "t1", 100)));
        assert_eq!(
            loud.apply(Event::Apply(lock(11, "c1-a-0", "t2", 200))),
            vec![k("a", "c1")]
        );
        // A new resourceVersion with nothing else changed touches nothing, in either.
        assert!(
            loud.apply(Event::Apply(lock(12, "c1-a-0", "t2", 200)))
                .is_empty()
        );
    }

    #[test]
    fn an_object_whose_cluster_label_changes_moves_and_touches_both() {
        let index = listed();
        assert_eq!(
            index.apply(Event::Apply(cm("a", "c1-b", Some("c2"), "1"))),
            vec![k("a", "c2"), k("a", "c1")]
        );
        assert_eq!(names(&index, "a", "c1"), ["c1-a"]);
        assert_eq!(names(&index, "a", "c2"), ["c1-b", "c2-a"]);
        // Label removed: in no cluster, still found by name.
        assert_eq!(
            index.apply(Event::Apply(cm("a", "c1-b", None, "1"))),
            vec![k("a", "c2")]
        );
        assert_eq!(names(&index, "a", "c2"), ["c2-a"]);
        assert!(index.get("a", "c1-b").is_some());
    }

    #[test]
    fn a_relist_replaces_the_content_and_drops_what_was_not_listed() {
        let index = listed();
        index.apply(Event::Init);
        index.apply(Event::InitApply(cm("a", "c1-a", Some("c1"), "2")));
        index.apply(Event::InitApply(cm("a", "c3-a", Some("c3"), "1")));
        // During the relist the previous content is still served.
        assert_eq!(names(&index, "a", "c1"), ["c1-a", "c1-b"]);
        assert_eq!(data(&index, "a", "c1-a").as_deref(), Some("1"));
        let mut touched = index.apply(Event::InitDone);
        touched.sort();
        // Gone: a/c1-b (cluster c1), a/c2-a (c2), b/c1-a (b, c1).
        assert_eq!(touched, vec![k("a", "c1"), k("a", "c2"), k("b", "c1")]);
        assert_eq!(names(&index, "a", "c1"), ["c1-a"]);
        assert_eq!(data(&index, "a", "c1-a").as_deref(), Some("2"));
        assert!(names(&index, "a", "c2").is_empty());
        assert!(names(&index, "b", "c1").is_empty());
        assert_eq!(names(&index, "a", "c3"), ["c3-a"]);
        assert_eq!(index.len(), 2);
        assert!(index.is_ready());
    }

    #[test]
    fn objects_are_held_as_their_json_and_decode_to_the_same_object() {
        let index = Index::new(by_label);
        let mut obj = cm("a", "c1-a", Some("c1"), "x");
        obj.metadata.resource_version = Some("42".into());
        obj.metadata.uid = Some("u-1".into());
        index.apply(Event::Apply(obj.clone()));
        assert_eq!(index.get("a", "c1-a"), Some(obj.clone()));
        assert_eq!(index.of_cluster("a", "c1"), vec![obj.clone()]);
        assert_eq!(index.version("a", "c1-a"), Some((42, "u-1".to_string())));
        assert_eq!(index.version("a", "nope"), None);
        let mut without_version = obj.clone();
        without_version.metadata.resource_version = None;
        assert_eq!(
            index.json_bytes(),
            serde_json::to_vec(&without_version).unwrap().len() + "42".len()
        );
    }

    #[tokio::test]
    async fn wait_until_ready_resolves_at_the_first_init_done() {
        let index: Index<ConfigMap> = Index::new(by_label);
        let waiter = {
            let index = index.clone();
            tokio::spawn(async move { index.wait_until_ready().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        index.apply(Event::Init);
        index.apply(Event::InitDone);
        waiter.await.unwrap();
        assert!(index.is_ready() && index.is_empty());
    }
}
