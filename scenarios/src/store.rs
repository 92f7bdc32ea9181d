//! The world's view of the API server: the [`Objects`] trait plus what the world needs beyond it
//! (the current revision, reads at an older revision for stale-read faults, server-side apply).
//!
//! [`SimStore`] is a small, deterministic in-memory implementation used by the world. It keeps the
//! semantics the models and the operator depend on: one increasing revision, resourceVersion
//! preconditions (409), uid preconditions on delete, generation bumps on spec changes, finalizers
//! and graceful pod deletion, no-op writes that bump nothing, and per-object history for reads in
//! the past.

use crate::clock::{Millis, rfc3339, to_timestamp};
use crate::rng::SimRng;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tusk_fake_apiserver::objects::is_controlled_by;
use tusk_fake_apiserver::{ApiError, Objects};

/// A Secret's `stringData` is write-only: the API server folds it into `data` (base64, over
/// what `data` held for the same key) and stores no `stringData`.
fn fold_string_data(kind: &str, object: &mut Value) {
    if kind != "Secret" {
        return;
    }
    let Some(Value::Object(strings)) = object.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    if !object["data"].is_object() {
        object["data"] = json!({});
    }
    for (k, v) in strings {
        let bytes = v.as_str().unwrap_or_default().as_bytes().to_vec();
        object["data"][k] = serde_json::to_value(k8s_openapi::ByteString(bytes)).expect("base64");
    }
}

/// What the world needs from an API server beyond [`Objects`].
pub trait SimApi: Objects {
    /// The newest resourceVersion.
    fn revision(&self) -> u64;
    /// Objects of a kind as they were at `revision` (a stale read).
    fn list_at(
        &self,
        revision: u64,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value>;
    /// Server-side apply of a whole object by `manager` (force).
    fn apply(&mut self, object: Value, manager: &str) -> Result<Value, ApiError>;
    /// Server-side apply of `{"status": ...}` through the status subresource.
    fn apply_status(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError>;
    /// Every stored object (for the garbage collector and invariants), in key order.
    fn all(&self) -> Vec<Value>;
    /// Sets the store's notion of now.
    fn set_now(&mut self, t: Millis);
    /// Objects of a kind, borrowed (no copy), in key order.
    fn list_ref(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<&Value>;
    /// Every stored object, borrowed, in key order.
    fn all_ref(&self) -> Vec<&Value>;
    /// One object, borrowed.
    fn get_ref(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Value>;
    /// The revision of the newest write to objects of this kind (0: never written). A
    /// component that read a kind at revision r and finds it unchanged may skip its work.
    fn kind_revision(&self, api_version: &str, kind: &str) -> u64;
}

/// The reads the behaviour models make, borrowed where the store can lend its objects: the
/// world's [`SimStore`] lends them; any other [`Objects`] (the live API server of `tusk up`)
/// works through [`Copying`].
pub trait ModelApi: Objects {
    /// Calls `f` with each object of a kind, in key order.
    fn visit(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        f: &mut dyn FnMut(&Value),
    );
    /// Calls `f` with one object, if it exists.
    fn peek(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: &mut dyn FnMut(&Value),
    );
}

/// What `f` makes of one object, if it exists.
pub fn peek<R>(
    api: &dyn ModelApi,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    f: impl FnOnce(&Value) -> R,
) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    api.peek(api_version, kind, namespace, name, &mut |o| {
        if let Some(f) = f.take() {
            out = Some(f(o));
        }
    });
    out
}

/// Any [`Objects`] as a [`ModelApi`]: reads copy.
pub struct Copying<'a>(pub &'a mut dyn Objects);

impl Objects for Copying<'_> {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
    fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        self.0.list(api_version, kind, namespace)
    }
    fn list_where(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.0.list_where(api_version, kind, namespace, keep)
    }
    fn list_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<std::sync::Arc<Value>> {
        self.0.list_shared(api_version, kind, namespace)
    }
    fn controlled(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Value> {
        self.0
            .controlled(api_version, kind, namespace, owner_uid, with_orphans)
    }
    fn controlled_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<std::sync::Arc<Value>> {
        self.0
            .controlled_shared(api_version, kind, namespace, owner_uid, with_orphans)
    }
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.0.get(api_version, kind, namespace, name)
    }
    fn get_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<std::sync::Arc<Value>> {
        self.0.get_shared(api_version, kind, namespace, name)
    }
    fn create(&mut self, object: Value) -> Result<Value, ApiError> {
        self.0.create(object)
    }
    fn update(&mut self, object: Value) -> Result<Value, ApiError> {
        self.0.update(object)
    }
    fn update_status(&mut self, object: Value) -> Result<Value, ApiError> {
        self.0.update_status(object)
    }
    fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        grace_seconds: Option<i64>,
    ) -> Result<(), ApiError> {
        self.0
            .delete(api_version, kind, namespace, name, uid, grace_seconds)
    }
}

impl ModelApi for Copying<'_> {
    fn visit(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        f: &mut dyn FnMut(&Value),
    ) {
        // Shared, not copied: the live server lends its stored objects.
        for o in self.0.list_shared(api_version, kind, namespace) {
            f(&o);
        }
    }
    fn peek(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: &mut dyn FnMut(&Value),
    ) {
        if let Some(o) = self.0.get_shared(api_version, kind, namespace, name) {
            f(&o);
        }
    }
}

impl ModelApi for SimStore {
    fn visit(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        f: &mut dyn FnMut(&Value),
    ) {
        for o in self.kind_range(api_version, kind, namespace) {
            f(o);
        }
    }
    fn peek(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: &mut dyn FnMut(&Value),
    ) {
        if let Some(o) = self.get_ref(api_version, kind, namespace, name) {
            f(o);
        }
    }
}

type Key = (String, String, String, String); // apiVersion, kind, namespace, name

fn meta_str<'a>(o: &'a Value, field: &str) -> Option<&'a str> {
    o.get("metadata")?.get(field)?.as_str()
}

fn key_of(o: &Value) -> Option<Key> {
    Some((
        o.get("apiVersion")?.as_str()?.to_string(),
        o.get("kind")?.as_str()?.to_string(),
        meta_str(o, "namespace").unwrap_or("").to_string(),
        meta_str(o, "name")?.to_string(),
    ))
}

/// Objects of one kind: namespace, then name.
type ByName<T> = BTreeMap<String, BTreeMap<String, T>>;

/// The node under `key`, created empty when missing (the key is copied only then).
fn level<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// A map keyed by (apiVersion, kind, namespace, name), nested level by level so that a lookup
/// borrows its key parts instead of allocating a tuple of four strings, and a kind (or one
/// namespace of it) is one node. Iteration is in the order of the tuple.
#[derive(Debug)]
struct Tree<T> {
    kinds: BTreeMap<String, BTreeMap<String, ByName<T>>>,
}

impl<T> Default for Tree<T> {
    fn default() -> Self {
        Self {
            kinds: BTreeMap::new(),
        }
    }
}

impl<T> Tree<T> {
    fn kind(&self, api_version: &str, kind: &str) -> Option<&ByName<T>> {
        self.kinds.get(api_version)?.get(kind)
    }

    fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<&T> {
        self.kind(api_version, kind)?.get(namespace)?.get(name)
    }

    fn contains(&self, k: &Key) -> bool {
        self.get(&k.0, &k.1, &k.2, &k.3).is_some()
    }

    /// The entry for `k`, created with `T::default()` when missing.
    fn entry(&mut self, k: &Key) -> &mut T
    where
        T: Default,
    {
        let kinds = level(&mut self.kinds, &k.0);
        let namespaces = level(kinds, &k.1);
        let names = level(namespaces, &k.2);
        names.entry(k.3.clone()).or_default()
    }

    fn insert(&mut self, k: &Key, value: T)
    where
        T: Default,
    {
        *self.entry(k) = value;
    }

    fn remove(&mut self, k: &Key) -> Option<T> {
        let names = self.kinds.get_mut(&k.0)?.get_mut(&k.1)?.get_mut(&k.2)?;
        names.remove(&k.3)
    }

    /// The objects of one kind (in `namespace`, or all), in key order, with their namespace.
    fn of_kind<'a>(
        &'a self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = (&'a str, &'a T)> + 'a {
        let by_ns = self.kind(api_version, kind);
        let ns_iter: Box<dyn Iterator<Item = (&'a String, &'a BTreeMap<String, T>)> + 'a> =
            match (by_ns, namespace) {
                (None, _) => Box::new(std::iter::empty()),
                (Some(m), None) => Box::new(m.iter()),
                (Some(m), Some(ns)) => Box::new(m.get_key_value(ns).into_iter()),
            };
        ns_iter.flat_map(|(ns, names)| names.values().map(move |v| (ns.as_str(), v)))
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.kinds
            .values()
            .flat_map(|k| k.values())
            .flat_map(|ns| ns.values())
            .flat_map(|names| names.values())
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.kinds
            .values_mut()
            .flat_map(|k| k.values_mut())
            .flat_map(|ns| ns.values_mut())
            .flat_map(|names| names.values_mut())
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for names in self
            .kinds
            .values_mut()
            .flat_map(|k| k.values_mut())
            .flat_map(|ns| ns.values_mut())
        {
            names.retain(|_, v| keep(v));
        }
    }
}

/// Kinds served with a status subresource (status is written only through it, and spec changes
/// bump metadata.generation).
fn has_status_subresource(kind: &str) -> bool {
    !matches!(
        kind,
        "ConfigMap"
            | "Secret"
            | "Endpoints"
            | "ServiceAccount"
            | "Role"
            | "RoleBinding"
            | "Event"
            | "Lease"
            | "Namespace"
    )
}

/// How many revisions back a stale read may look (fault `stale-reads` refuses a larger
/// lag); older history is compacted away.
pub const STALE_READ_WINDOW: u64 = 1_000;

/// The world's in-memory API server.
#[derive(Debug)]
pub struct SimStore {
    now: Millis,
    rev: u64,
    /// Stored objects, shared with `history` (a write copies no object into it).
    objects: Tree<Arc<Value>>,
    history: Tree<Vec<(u64, Option<Arc<Value>>)>>,
    rng: SimRng,
    /// Requests served (reads excluded), for benchmarks and the steady-state check.
    pub writes: u64,
    /// Revision of the newest write per apiVersion and kind.
    kind_revs: BTreeMap<String, BTreeMap<String, u64>>,
    /// An object was removed or its owner references changed since the garbage collector
    /// last looked: an orphan may exist.
    orphans_possible: bool,
    /// How many revisions back reads may look (0: reads are always of the present, and no
    /// history is kept).
    window: u64,
}

impl SimStore {
    pub fn new(rng: SimRng) -> Self {
        Self {
            now: 0,
            rev: 1,
            objects: Tree::default(),
            history: Tree::default(),
            rng,
            writes: 0,
            kind_revs: BTreeMap::new(),
            orphans_possible: false,
            window: STALE_READ_WINDOW,
        }
    }

    /// Keeps history for reads up to `revisions` back (at most [`STALE_READ_WINDOW`]); with
    /// 0 none is kept and a read of the past reads the present. A world whose scenario has
    /// no stale reads needs none; call before the first write.
    pub fn keep_history(&mut self, revisions: u64) {
        self.window = revisions.min(STALE_READ_WINDOW);
    }

    /// Whether an orphan may exist (an object was removed or its owner references changed)
    /// since the last call; clears the mark.
    pub fn take_orphans_possible(&mut self) -> bool {
        std::mem::take(&mut self.orphans_possible)
    }

    /// The objects of one kind (in `namespace`, or all), in key order, borrowed.
    fn kind_range<'a>(
        &'a self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .of_kind(api_version, kind, namespace)
            .map(|(_, v)| &**v)
    }

    fn record(&mut self, key: Key, value: Option<Value>) -> Option<Arc<Value>> {
        *level(level(&mut self.kind_revs, &key.0), &key.1) = self.rev;
        // Only a removal or a change of owner references can leave an object orphaned.
        fn owners(o: &Value) -> Option<&Value> {
            o["metadata"]
                .get("ownerReferences")
                .filter(|r| r.as_array().is_some_and(|a| !a.is_empty()))
        }
        let owners_moved = match &value {
            None => true,
            Some(v) => {
                self.objects
                    .get(&key.0, &key.1, &key.2, &key.3)
                    .and_then(|o| owners(o))
                    != owners(v)
            }
        };
        if owners_moved {
            self.orphans_possible = true;
        }
        let value = value.map(Arc::new);
        if self.window > 0 {
            self.history.entry(&key).push((self.rev, value.clone()));
        }
        match &value {
            Some(v) => self.objects.insert(&key, v.clone()),
            None => {
                self.objects.remove(&key);
            }
        }
        value
    }

    fn bump(&mut self) -> u64 {
        self.rev += 1;
        self.writes += 1;
        // As etcd compacts: history no stale read can reach goes while the world runs, so
        // memory stays bounded and a long run does not end freeing every version at once.
        // Every `window` writes (at least 256, so the walk stays rare).
        if self.window > 0 && self.rev.is_multiple_of(self.window.max(256)) {
            self.compact(self.rev - self.window);
        }
        self.rev
    }

    /// Drops history older than `revision` (keeping, per object, the newest entry before it).
    pub fn compact(&mut self, revision: u64) {
        for h in self.history.values_mut() {
            let keep_from = h.iter().rposition(|(r, _)| *r <= revision).unwrap_or(0);
            h.drain(..keep_from);
        }
        self.history
            .retain(|h| !(h.len() == 1 && h[0].1.is_none() && h[0].0 <= revision));
    }

    fn not_found(k: &Key) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", k.1.to_lowercase(), k.3),
        )
    }

    fn conflict(k: &Key) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                k.1.to_lowercase(),
                k.3
            ),
        )
    }

    /// Stores `new` over `old` (both full objects), handling generation, resourceVersion and
    /// no-op detection. Returns the stored object.
    fn commit(&mut self, key: Key, old: &Arc<Value>, mut new: Value) -> Arc<Value> {
        fold_string_data(&key.1, &mut new);
        // Keep server-owned metadata.
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            if let Some(v) = old["metadata"].get(f) {
                new["metadata"][f] = v.clone();
            } else if let Some(m) = new["metadata"].as_object_mut() {
                m.remove(f);
            }
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if equal_but_rv(&new, old) {
            return old.clone();
        }
        if has_status_subresource(&key.1) && !same_spec(&new, old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        let rev = self.bump();
        new["metadata"]["resourceVersion"] = json!(rev.to_string());
        // An object being deleted whose last finalizer went away is removed.
        if new["metadata"].get("deletionTimestamp").is_some()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
            && key.1 != "Pod"
        {
            self.record(key, None);
            return Arc::new(new);
        }
        self.record(key, Some(new)).expect("recorded a value")
    }

    fn check_rv(k: &Key, incoming: &Value, old: &Value) -> Result<(), ApiError> {
        if let Some(rv) = meta_str(incoming, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(old, "resourceVersion")
        {
            return Err(Self::conflict(k));
        }
        Ok(())
    }
}

/// Whether two maps are equal on every key but `skip` (a missing key and a present one differ).
fn equal_except(a: &Map<String, Value>, b: &Map<String, Value>, skip: &[&str]) -> bool {
    let count = |m: &Map<String, Value>| m.keys().filter(|k| !skip.contains(&k.as_str())).count();
    count(a) == count(b)
        && a.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// `a == b` but for `metadata.resourceVersion` (compared in place, without copies).
fn equal_but_rv(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(am), Some(bm)) => {
            equal_except(am, bm, &["metadata"])
                && match (am.get("metadata"), bm.get("metadata")) {
                    (Some(Value::Object(x)), Some(Value::Object(y))) => {
                        equal_except(x, y, &["resourceVersion"])
                    }
                    (x, y) => x == y,
                }
        }
        _ => a == b,
    }
}

/// Whether everything but `metadata` and `status` is equal (what bumps `generation`).
fn same_spec(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(am), Some(bm)) => equal_except(am, bm, &["metadata", "status"]),
        _ => a == b,
    }
}

/// Merges `patch` into `base` the way server-side apply treats a manager's fields for the
/// purposes of the world: maps merge recursively, everything else is replaced.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl Objects for SimStore {
    fn now(&self) -> Timestamp {
        to_timestamp(self.now)
    }

    fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        self.kind_range(api_version, kind, namespace)
            .cloned()
            .collect()
    }

    fn list_where(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.kind_range(api_version, kind, namespace)
            .filter(|v| keep(v))
            .cloned()
            .collect()
    }

    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.get_ref(api_version, kind, namespace, name).cloned()
    }

    // The built-in controllers read through these: objects are shared, not copied.
    fn list_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Arc<Value>> {
        self.objects
            .of_kind(api_version, kind, namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn get_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.objects
            .get(api_version, kind, namespace.unwrap_or(""), name)
            .cloned()
    }

    fn controlled(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Value> {
        // Only the matches are copied.
        self.kind_range(api_version, kind, Some(namespace))
            .filter(|o| is_controlled_by(o, owner_uid, with_orphans))
            .cloned()
            .collect()
    }

    fn controlled_shared(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        owner_uid: &str,
        with_orphans: bool,
    ) -> Vec<Arc<Value>> {
        self.objects
            .of_kind(api_version, kind, Some(namespace))
            .filter(|(_, o)| is_controlled_by(o, owner_uid, with_orphans))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn create(&mut self, mut object: Value) -> Result<Value, ApiError> {
        if meta_str(&object, "name").is_none_or(str::is_empty)
            && let Some(prefix) = meta_str(&object, "generateName").map(str::to_string)
        {
            let name = format!("{prefix}{}", self.rng.suffix(5));
            object["metadata"]["name"] = json!(name);
        }
        let key = key_of(&object).ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                "object needs apiVersion, kind and metadata.name",
            )
        })?;
        if self.objects.contains(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", key.1.to_lowercase(), key.3),
            ));
        }
        fold_string_data(&key.1, &mut object);
        let rev = self.bump();
        let uid = self.rng.uid();
        let m = object["metadata"]
            .as_object_mut()
            .expect("metadata checked");
        m.insert("uid".into(), json!(uid));
        m.insert("resourceVersion".into(), json!(rev.to_string()));
        m.insert("creationTimestamp".into(), json!(rfc3339(self.now)));
        m.remove("deletionTimestamp");
        // Admission (StorageObjectInUseProtection): a claim carries the pvc-protection
        // finalizer from birth, so deleting it while a pod uses it leaves it Terminating.
        if key.1 == "PersistentVolumeClaim" {
            let finalizers = m
                .entry("finalizers")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = finalizers.as_array_mut()
                && !list.iter().any(|f| f == crate::labels::PVC_PROTECTION)
            {
                list.push(json!(crate::labels::PVC_PROTECTION));
            }
        }
        if has_status_subresource(&key.1) {
            m.insert("generation".into(), json!(1));
        }
        let stored = self.record(key, Some(object)).expect("recorded a value");
        Ok(Arc::unwrap_or_clone(stored))
    }

    fn update(&mut self, object: Value) -> Result<Value, ApiError> {
        let key = key_of(&object)
            .ok_or_else(|| ApiError::new(422, "Invalid", "object needs apiVersion, kind, name"))?;
        let old = self
            .objects
            .get(&key.0, &key.1, &key.2, &key.3)
            .cloned()
            .ok_or_else(|| Self::not_found(&key))?;
        Self::check_rv(&key, &object, &old)?;
        let mut new = object;
        if has_status_subresource(&key.1) {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        Ok(Arc::unwrap_or_clone(self.commit(key, &old, new)))
    }

    fn update_status(&mut self, object: Value) -> Result<Value, ApiError> {
        let key = key_of(&object)
            .ok_or_else(|| ApiError::new(422, "Invalid", "object needs apiVersion, kind, name"))?;
        let old = self
            .objects
            .get(&key.0, &key.1, &key.2, &key.3)
            .cloned()
            .ok_or_else(|| Self::not_found(&key))?;
        Self::check_rv(&key, &object, &old)?;
        let mut object = object;
        let status = object.as_object_mut().and_then(|o| o.remove("status"));
        if status.as_ref() == old.get("status") {
            // Nothing to write (the commit would find the same): spare building the copy.
            return Ok((*old).clone());
        }
        // The old object but its status, which the new one replaces: not copied first.
        let mut fields: Map<String, Value> = old
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "status")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(s) = status {
            fields.insert("status".into(), s);
        }
        Ok(Arc::unwrap_or_clone(self.commit(
            key,
            &old,
            Value::Object(fields),
        )))
    }

    fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        grace_seconds: Option<i64>,
    ) -> Result<(), ApiError> {
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        let old = self
            .objects
            .get(&key.0, &key.1, &key.2, &key.3)
            .cloned()
            .ok_or_else(|| Self::not_found(&key))?;
        if let Some(uid) = uid
            && meta_str(&old, "uid") != Some(uid)
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            ));
        }
        let has_finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let grace = if kind == "Pod" {
            grace_seconds.unwrap_or_else(|| {
                old["spec"]["terminationGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(30)
            })
        } else {
            0
        };
        // A pod not yet bound to a node goes at once, as the real server does.
        let unbound_pod = kind == "Pod" && old["spec"]["nodeName"].as_str().is_none();
        if has_finalizers || (grace > 0 && !unbound_pod) {
            if old["metadata"].get("deletionTimestamp").is_some() {
                if grace == 0 && !has_finalizers {
                    self.bump();
                    self.record(key, None);
                }
                return Ok(());
            }
            let mut new = (*old).clone();
            // As the API server does: a pod's deletionTimestamp is when its grace period
            // ends (the kubelet counts back from it), anything else's is now.
            let at = if kind == "Pod" {
                self.now + grace * 1_000
            } else {
                self.now
            };
            new["metadata"]["deletionTimestamp"] = json!(rfc3339(at));
            if kind == "Pod" {
                new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            }
            let rev = self.bump();
            new["metadata"]["resourceVersion"] = json!(rev.to_string());
            self.record(key, Some(new));
            return Ok(());
        }
        self.bump();
        self.record(key, None);
        Ok(())
    }
}

impl SimApi for SimStore {
    fn revision(&self) -> u64 {
        self.rev
    }

    fn list_at(
        &self,
        revision: u64,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        if self.window == 0 {
            return Objects::list(self, api_version, kind, namespace);
        }
        self.history
            .of_kind(api_version, kind, namespace)
            .filter_map(|(_, h)| {
                h.iter()
                    .rev()
                    .find(|(r, _)| *r <= revision)
                    .and_then(|(_, v)| v.as_deref().cloned())
            })
            .collect()
    }

    fn apply(&mut self, object: Value, manager: &str) -> Result<Value, ApiError> {
        let key = key_of(&object).ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                "applied object needs apiVersion, kind and metadata.name",
            )
        })?;
        let Some(old) = self.objects.get(&key.0, &key.1, &key.2, &key.3).cloned() else {
            let mut obj = object;
            if let Some(m) = obj.as_object_mut()
                && has_status_subresource(&key.1)
            {
                m.remove("status");
            }
            obj["metadata"]["managedFields"] = json!([{"manager": manager, "operation": "Apply"}]);
            return self.create(obj);
        };
        if old["metadata"].get("deletionTimestamp").is_some() {
            // Applying to an object being deleted changes it but does not revive it.
        }
        // The applier owns everything outside metadata and status; within metadata, labels,
        // annotations, ownerReferences and finalizers merge (others may have added theirs).
        let mut new = (*old).clone();
        let newm = new.as_object_mut().expect("stored objects are maps");
        let keep_status = newm.get("status").cloned();
        newm.retain(|k, _| k == "metadata" || k == "apiVersion" || k == "kind");
        for (k, v) in object.as_object().into_iter().flatten() {
            if k != "metadata" && !(k == "status" && has_status_subresource(&key.1)) {
                newm.insert(k.clone(), v.clone());
            }
        }
        if let Some(s) = keep_status {
            newm.insert("status".into(), s);
        }
        // The volume binder owns a claim's spec.volumeName; an applier that never set it
        // cannot remove it (on a real API server the binding also makes it immutable).
        if key.1 == "PersistentVolumeClaim"
            && let Some(volume) = old["spec"].get("volumeName").filter(|v| v.is_string())
            && new["spec"].is_object()
            && new["spec"].get("volumeName").is_none()
        {
            new["spec"]["volumeName"] = volume.clone();
        }
        let am = &object["metadata"];
        for f in ["labels", "annotations"] {
            if let Some(m) = am.get(f).and_then(Value::as_object) {
                let target = new["metadata"]
                    .as_object_mut()
                    .expect("metadata")
                    .entry(f)
                    .or_insert_with(|| Value::Object(Map::new()));
                merge(target, &Value::Object(m.clone()));
            }
        }
        for f in ["ownerReferences", "finalizers"] {
            if let Some(list) = am.get(f).and_then(Value::as_array) {
                let existing = new["metadata"][f].as_array().cloned().unwrap_or_default();
                let mut merged = existing.clone();
                for item in list {
                    if !merged.contains(item) {
                        merged.push(item.clone());
                    }
                }
                new["metadata"][f] = Value::Array(merged);
            }
        }
        Ok(Arc::unwrap_or_clone(self.commit(key, &old, new)))
    }

    fn apply_status(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        let old = self
            .objects
            .get(&key.0, &key.1, &key.2, &key.3)
            .cloned()
            .ok_or_else(|| Self::not_found(&key))?;
        let mut new = (*old).clone();
        let target = new
            .as_object_mut()
            .expect("stored objects are maps")
            .entry("status")
            .or_insert_with(|| Value::Object(Map::new()));
        merge(target, &status);
        Ok(Arc::unwrap_or_clone(self.commit(key, &old, new)))
    }

    fn all(&self) -> Vec<Value> {
        self.objects.values().map(|v| (**v).clone()).collect()
    }

    fn set_now(&mut self, t: Millis) {
        self.now = t;
    }

    fn list_ref(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.kind_range(api_version, kind, namespace).collect()
    }

    fn all_ref(&self) -> Vec<&Value> {
        self.objects.values().map(|v| &**v).collect()
    }

    fn get_ref(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Value> {
        self.objects
            .get(api_version, kind, namespace.unwrap_or(""), name)
            .map(|v| &**v)
    }

    fn kind_revision(&self, api_version: &str, kind: &str) -> u64 {
        self.kind_revs
            .get(api_version)
            .and_then(|k| k.get(kind))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SimStore {
        SimStore::new(SimRng::new(1))
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name,"namespace":"ns"},"data":{"a":"1"}})
    }

    #[test]
    fn stale_resource_version_conflicts() {
        let mut s = store();
        let a = s.create(cm("x")).unwrap();
        let mut b = a.clone();
        b["data"]["a"] = json!("2");
        s.update(b.clone()).unwrap();
        let err = s.update(b).unwrap_err();
        assert_eq!(err.code, 409);
    }

    /// Found by explore seeds 459, 831 and 700053: the operator re-applied a claim the binder
    /// had bound, the apply dropped spec.volumeName, and the claim's next pod was never
    /// scheduled ("pod has unbound immediate PersistentVolumeClaims").
    #[test]
    fn an_apply_keeps_the_binders_volume_name() {
        let mut s = store();
        let claim = json!({"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c","namespace":"ns"},"spec":{"accessModes":["ReadWriteOnce"]}});
        s.apply(claim.clone(), "tusk").unwrap();
        let mut bound = s
            .get("v1", "PersistentVolumeClaim", Some("ns"), "c")
            .unwrap();
        bound["spec"]["volumeName"] = json!("pv-1");
        s.update(bound).unwrap();
        let after = s.apply(claim, "tusk").unwrap();
        assert_eq!(after["spec"]["volumeName"], "pv-1");
        assert_eq!(after["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    }

    #[test]
    fn noop_write_bumps_nothing() {
        let mut s = store();
        let a = s.create(cm("x")).unwrap();
        let r = s.revision();
        s.update(a).unwrap();
        assert_eq!(s.revision(), r);
    }

    /// History is compacted as the store goes, yet every read within the window a stale read
    /// may reach gives exactly what the store held then, and older versions are gone.
    #[test]
    fn compaction_keeps_every_read_a_stale_read_may_make() {
        let mut s = store();
        let mut seen = BTreeMap::new();
        let mut x = s.create(cm("x")).unwrap();
        for i in 0..3 * STALE_READ_WINDOW {
            if i % 7 == 0 {
                let name = format!("y{i}");
                s.create(cm(&name)).unwrap();
            }
            if i % 11 == 0 && i > 0 {
                let name = format!("y{}", (i / 7) * 7);
                let _ = s.delete("v1", "ConfigMap", Some("ns"), &name, None, None);
            }
            x["data"]["a"] = json!(i.to_string());
            x = s.update(x).unwrap();
            seen.insert(s.revision(), s.list("v1", "ConfigMap", Some("ns")));
        }
        let now = s.revision();
        for (rev, then) in seen.range(now - STALE_READ_WINDOW..) {
            assert_eq!(
                &s.list_at(*rev, "v1", "ConfigMap", Some("ns")),
                then,
                "at {rev}"
            );
        }
        let kept: usize = s.history.values_mut().map(|h| h.len()).sum();
        assert!(
            kept < 2 * STALE_READ_WINDOW as usize,
            "{kept} versions kept after {now} revisions"
        );
    }

    /// A world without stale reads keeps no history: reads of the past read the present.
    #[test]
    fn without_a_window_no_history_is_kept() {
        let mut s = store();
        s.keep_history(0);
        s.create(cm("x")).unwrap();
        let r = s.revision();
        s.create(cm("y")).unwrap();
        assert_eq!(s.history.values_mut().count(), 0);
        assert_eq!(s.list_at(r, "v1", "ConfigMap", Some("ns")).len(), 2);
    }

    #[test]
    fn list_at_sees_the_past() {
        let mut s = store();
        s.create(cm("x")).unwrap();
        let r = s.revision();
        s.create(cm("y")).unwrap();
        s.delete("v1", "ConfigMap", Some("ns"), "x", None, None)
            .unwrap();
        assert_eq!(s.list_at(r, "v1", "ConfigMap", Some("ns")).len(), 1);
        let now: Vec<_> = s.list("v1", "ConfigMap", Some("ns"));
        assert_eq!(now.len(), 1);
        assert_eq!(now[0]["metadata"]["name"], "y");
    }

    #[test]
    fn uid_precondition_on_delete() {
        let mut s = store();
        s.create(cm("x")).unwrap();
        let err = s
            .delete("v1", "ConfigMap", Some("ns"), "x", Some("nope"), None)
            .unwrap_err();
        assert_eq!(err.code, 409);
    }

    #[test]
    fn finalizers_hold_deletion() {
        let mut s = store();
        let mut o = cm("x");
        o["metadata"]["finalizers"] = json!(["f"]);
        let o = s.create(o).unwrap();
        s.delete("v1", "ConfigMap", Some("ns"), "x", None, None)
            .unwrap();
        let mut got = s.get("v1", "ConfigMap", Some("ns"), "x").unwrap();
        assert!(got["metadata"]["deletionTimestamp"].is_string());
        got["metadata"]["finalizers"] = json!([]);
        let _ = o;
        s.update(got).unwrap();
        assert!(s.get("v1", "ConfigMap", Some("ns"), "x").is_none());
    }

    #[test]
    fn apply_bumps_generation_only_on_spec_change() {
        let mut s = store();
        let sts = json!({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"a","namespace":"ns"},"spec":{"replicas":1}});
        s.apply(sts.clone(), "tusk").unwrap();
        s.apply_status(
            "apps/v1",
            "StatefulSet",
            Some("ns"),
            "a",
            json!({"replicas":1}),
        )
        .unwrap();
        let o = s.apply(sts, "tusk").unwrap();
        assert_eq!(o["metadata"]["generation"], 1);
        assert_eq!(o["status"]["replicas"], 1);
        let o = s
            .apply(json!({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"a","namespace":"ns"},"spec":{"replicas":2}}), "tusk")
            .unwrap();
        assert_eq!(o["metadata"]["generation"], 2);
    }
}
