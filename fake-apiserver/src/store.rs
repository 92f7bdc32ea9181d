//! The store: objects by resource, one global revision, a bounded history of changes for
//! watches and reads at older revisions, and the write pipeline every API verb goes through.

use crate::clock::{Clock, format_time, parse_time};
use crate::crd;
use crate::defaults;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::json_ptr::At;
use crate::managed::{self, Ctx};
use crate::patch::{self, PatchKind};
use crate::resources::{Registry, ResourceInfo};
use crate::selectors::{FieldSelector, LabelSelector};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change. `object` is the new state (for deletions: the last state stamped
/// with the deletion revision); `prev` the state before.
#[derive(Debug, Clone)]
pub struct Change {
    pub revision: u64,
    pub group_resource: Arc<str>,
    pub namespace: String,
    pub name: String,
    pub kind: EventType,
    pub object: Arc<Value>,
    pub prev: Option<Arc<Value>>,
    /// When it was committed (the store's clock).
    pub at: Timestamp,
}

/// How the store is built.
#[derive(Clone)]
pub struct Config {
    pub clock: Arc<dyn Clock>,
    /// Seed for UIDs, generated names and cluster IPs.
    pub seed: u64,
    /// Changes kept for watch replay and reads at older revisions.
    pub history: usize,
    /// Run the garbage collector after every API request (the HTTP/tower front). Deterministic
    /// drivers usually turn this off and call [`Store::gc_step`] themselves.
    pub auto_gc: bool,
    /// Also compact changes older than this (by the store's clock), as kube-apiserver has
    /// etcd compact every 5 minutes. `None`: only `history` bounds the history.
    pub history_age: Option<std::time::Duration>,
    /// Delete Events (`v1` and `events.k8s.io/v1`) this long after their last write, as
    /// kube-apiserver's `--event-ttl` (1 h by default) does with an etcd lease. `None`:
    /// Events stay until deleted.
    pub event_ttl: Option<std::time::Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clock: Arc::new(crate::clock::ManualClock::at_epoch_2025()),
            seed: 0,
            history: 100_000,
            auto_gc: true,
            history_age: None,
            event_ttl: None,
        }
    }
}

/// What a watcher wants to see.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    pub group_resource: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj
                .at("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                != ns
        {
            return false;
        }
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// Messages on a watch channel.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    Event(EventType, Arc<Value>),
    /// An in-stream error Status (410 Expired); the stream ends after it.
    Error(Value),
    /// A bookmark at this revision (initial-events-end when the flag is set).
    Bookmark(u64, bool),
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Synthetic ADDED for every current match, then changes (RV unset or "0").
    Initial,
    /// Synthetic ADDED, then the initial-events-end bookmark (sendInitialEvents).
    InitialWithBookmark,
    /// Every change after this revision.
    From(u64),
}

struct Watcher {
    filter: WatchFilter,
    tx: mpsc::UnboundedSender<WatchMsg>,
}

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub field_manager: Option<String>,
    pub force: bool,
    pub dry_run: bool,
    pub subresource: Option<String>,
    /// The caller is an in-process driver reading through [`crate::Objects`]: the written
    /// object comes back without managedFields, as its reads do (no unpacking per write).
    pub in_process: bool,
}

/// DeleteOptions, from the body or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_json(v: &Value) -> Self {
        let mut o = DeleteOptions {
            grace_period_seconds: v.get("gracePeriodSeconds").and_then(Value::as_i64),
            propagation_policy: v
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from),
            uid: v
                .at("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from),
            resource_version: v
                .at("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from),
            dry_run: v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        };
        if o.propagation_policy.is_none()
            && let Some(orphan) = v.get("orphanDependents").and_then(Value::as_bool)
        {
            o.propagation_policy = Some(if orphan { "Orphan" } else { "Background" }.into());
        }
        o
    }
}

/// Result of a DELETE.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Gone; the last state.
    Gone(Value),
    /// Still there (finalizers or graceful deletion), with deletionTimestamp set.
    Pending(Value),
}

/// List query parameters.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// The in-memory store. Reach it through [`crate::ApiServer::lock`].
pub struct Store {
    pub(crate) clock: Arc<dyn Clock>,
    seed: u64,
    counter: u64,
    revision: u64,
    pub(crate) registry: Registry,
    data: HashMap<String, BTreeMap<ObjKey, Arc<Value>>>,
    uids: HashMap<String, (String, ObjKey)>,
    /// Names of objects by group-resource, namespace and controller uid ("" for objects with
    /// no controller): what [`Objects::controlled`] reads instead of scanning a namespace.
    by_controller: ControllerIndex,
    history: VecDeque<Change>,
    compacted: u64,
    max_history: usize,
    watchers: Vec<Watcher>,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) faults: Faults,
    pub(crate) auto_gc: bool,
    /// Something happened that the garbage collector may need to act on (a deletion, a
    /// deletionTimestamp, an owner reference); lets request handlers skip idle GC passes.
    pub(crate) gc_pending: bool,
    service_ips: u32,
    /// Node ports handed out so far (NodePort and LoadBalancer Services).
    node_ports: u32,
    history_age: Option<SignedDuration>,
    event_ttl: Option<SignedDuration>,
    /// Writes of Events, oldest first: (time, group-resource, key, revision written). An
    /// Event whose newest write is older than the TTL is deleted.
    event_writes: VecDeque<(Timestamp, Arc<str>, ObjKey, u64)>,
}

/// (namespace, controller uid, None without a controller) → names.
type NamesByController = HashMap<(String, Option<String>), BTreeSet<String>>;

/// Per group-resource: who controls which objects.
#[derive(Default)]
struct ControllerIndex(HashMap<String, NamesByController>);

impl ControllerIndex {
    /// Record that the object at `key` went from `before` to `after` (None: absent).
    fn moved(&mut self, gr: &str, key: &ObjKey, before: Option<&Value>, after: Option<&Value>) {
        // Borrowed first: most commits leave the controller as it was (every write goes here).
        let was = before.map(crate::objects::controller_uid);
        let is = after.map(crate::objects::controller_uid);
        if was == is {
            return;
        }
        let by_owner = self.0.entry(gr.to_string()).or_default();
        if let Some(uid) = was {
            let slot = (key.0.clone(), uid.map(str::to_string));
            if let Some(names) = by_owner.get_mut(&slot) {
                names.remove(&key.1);
                if names.is_empty() {
                    by_owner.remove(&slot);
                }
            }
        }
        if let Some(uid) = is {
            by_owner
                .entry((key.0.clone(), uid.map(str::to_string)))
                .or_default()
                .insert(key.1.clone());
        }
    }

    fn names(&self, gr: &str, ns: &str, uid: Option<&str>) -> Option<&BTreeSet<String>> {
        self.0
            .get(gr)?
            .get(&(ns.to_string(), uid.map(str::to_string)))
    }
}

fn signed(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn meta(o: &Value) -> &Value {
    o.get("metadata").unwrap_or(&Value::Null)
}

fn meta_str<'a>(o: &'a Value, k: &str) -> Option<&'a str> {
    meta(o).get(k).and_then(Value::as_str)
}

fn meta_mut(o: &mut Value) -> &mut Map<String, Value> {
    if !o.is_object() {
        *o = json!({});
    }
    let m = o.as_object_mut().expect("object");
    if !m.get("metadata").is_some_and(Value::is_object) {
        m.insert("metadata".into(), json!({}));
    }
    m.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata object")
}

/// Drop empty finalizers, labels, annotations, ownerReferences (Go's omitempty).
pub(crate) fn normalize(o: &mut Value) {
    let m = meta_mut(o);
    for k in [
        "finalizers",
        "labels",
        "annotations",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match m.get(k) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(x)) => x.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            m.remove(k);
        }
    }
    for k in [
        "generateName",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "uid",
        "namespace",
        "resourceVersion",
    ] {
        if m.get(k).is_some_and(Value::is_null) {
            m.remove(k);
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Store {
    pub fn new(cfg: Config) -> Self {
        let mut s = Store {
            clock: cfg.clock,
            seed: cfg.seed,
            counter: 0,
            revision: 0,
            registry: Registry::with_builtins(),
            data: HashMap::new(),
            uids: HashMap::new(),
            by_controller: ControllerIndex::default(),
            history: VecDeque::new(),
            compacted: 0,
            max_history: cfg.history.max(1),
            watchers: vec![],
            counts: BTreeMap::new(),
            faults: Faults::default(),
            auto_gc: cfg.auto_gc,
            gc_pending: false,
            service_ips: 0,
            node_ports: 0,
            history_age: cfg.history_age.map(signed),
            event_ttl: cfg.event_ttl.map(signed),
            event_writes: VecDeque::new(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let info = s.registry.by_gvk("v1", "Namespace").expect("builtin");
            s.create(
                &info,
                None,
                json!({"metadata": {"name": ns}}),
                &WriteOptions::default(),
            )
            .expect("standard namespaces");
        }
        s
    }

    // ----- identity, time -------------------------------------------------------------

    fn next_random(&mut self) -> u64 {
        self.counter += 1;
        splitmix(self.seed ^ splitmix(self.counter))
    }

    /// A deterministic RFC 4122 version-4 UUID string.
    pub fn new_uid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn name_suffix(&mut self) -> String {
        let mut r = self.next_random();
        (0..5)
            .map(|_| {
                let c = NAME_ALPHABET[(r % NAME_ALPHABET.len() as u64) as usize] as char;
                r /= NAME_ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn now_str(&self) -> String {
        format_time(self.clock.now())
    }

    // ----- registry --------------------------------------------------------------------

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The served resource for an apiVersion and kind.
    pub fn resource(&self, api_version: &str, kind: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.registry.by_gvk(api_version, kind).ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource (kind {kind} in {api_version})"),
            )
        })
    }

    // ----- revisions and history ---------------------------------------------------------

    /// The current global revision (the resourceVersion of the last write).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The oldest revision from which watches and reads can still start.
    pub fn compacted_revision(&self) -> u64 {
        self.compacted
    }

    /// Drop history up to and including `rev`: later watches or reads from older revisions
    /// get 410 Expired.
    pub fn compact(&mut self, rev: u64) {
        while self.history.front().is_some_and(|c| c.revision <= rev) {
            self.history.pop_front();
        }
        self.compacted = self.compacted.max(rev.min(self.revision));
    }

    /// Changes after `rev`, oldest first.
    pub fn changes_since(&self, rev: u64) -> Result<Vec<Change>, ApiError> {
        if rev < self.compacted {
            return Err(too_old(rev, self.compacted));
        }
        Ok(self
            .history
            .iter()
            .filter(|c| c.revision > rev)
            .map(|c| Change {
                object: managed::unpacked(&c.object),
                prev: c.prev.as_ref().map(managed::unpacked),
                ..c.clone()
            })
            .collect())
    }

    fn commit(
        &mut self,
        info: &ResourceInfo,
        key: ObjKey,
        new: Option<Value>,
        prev: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.commit_packed(info, key, new, prev, None)
    }

    /// As [`Store::commit`] for an object whose managedFields the caller already packed;
    /// `fields` is the array it packed, for the watchers.
    fn commit_packed(
        &mut self,
        info: &ResourceInfo,
        key: ObjKey,
        new: Option<Value>,
        prev: Option<Arc<Value>>,
        fields: Option<Value>,
    ) -> Arc<Value> {
        let gr: Arc<str> = Arc::from(info.group_resource());
        let is_event = matches!(&*gr, "events" | "events.events.k8s.io");
        let written = new.is_some();
        let object = self.commit_change(gr.clone(), key.clone(), new, prev, fields);
        let now = self.clock.now();
        if is_event && written && self.event_ttl.is_some() {
            self.event_writes.push_back((now, gr, key, self.revision));
        }
        // Housekeeping after the write, so it never comes between a request's read and its
        // write: Events past their TTL go (watchers see DELETED), old history is compacted.
        self.expire_events(now);
        if let Some(age) = self.history_age {
            let cutoff = now - age;
            while self.history.front().is_some_and(|c| c.at < cutoff) {
                if let Some(c) = self.history.pop_front() {
                    self.compacted = c.revision;
                }
            }
        }
        object
    }

    /// Delete the Events whose last write is older than the TTL.
    fn expire_events(&mut self, now: Timestamp) {
        let Some(ttl) = self.event_ttl else {
            return;
        };
        let cutoff = now - ttl;
        while self.event_writes.front().is_some_and(|w| w.0 < cutoff) {
            let Some((_, gr, key, rev)) = self.event_writes.pop_front() else {
                break;
            };
            let Some(cur) = self.data.get(&*gr).and_then(|m| m.get(&key)).cloned() else {
                continue;
            };
            // Written again since: a later entry of the queue covers it.
            if meta_str(&cur, "resourceVersion") != Some(rev.to_string().as_str()) {
                continue;
            }
            self.commit_change(gr, key, None, Some(cur), None);
        }
    }

    fn commit_change(
        &mut self,
        gr: Arc<str>,
        key: ObjKey,
        new: Option<Value>,
        prev: Option<Arc<Value>>,
        packed_fields: Option<Value>,
    ) -> Arc<Value> {
        self.revision += 1;
        let rev = self.revision;
        let mut shown_fields = None;
        let (kind, object) = match new {
            Some(mut o) => {
                meta_mut(&mut o).insert("resourceVersion".into(), json!(rev.to_string()));
                shown_fields = managed::pack_taking(&mut o).or(packed_fields);
                let a = Arc::new(o);
                self.by_controller
                    .moved(&gr, &key, prev.as_deref(), Some(&a));
                let map = self.data.entry(gr.to_string()).or_default();
                map.insert(key.clone(), a.clone());
                if let Some(uid) = meta_str(&a, "uid") {
                    self.uids
                        .insert(uid.to_string(), (gr.to_string(), key.clone()));
                }
                (
                    if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    a,
                )
            }
            None => {
                let mut last = prev.as_deref().cloned().unwrap_or(Value::Null);
                meta_mut(&mut last).insert("resourceVersion".into(), json!(rev.to_string()));
                if let Some(map) = self.data.get_mut(&*gr) {
                    map.remove(&key);
                }
                self.by_controller.moved(&gr, &key, prev.as_deref(), None);
                if let Some(uid) = meta_str(&last, "uid") {
                    self.uids.remove(uid);
                }
                (EventType::Deleted, Arc::new(last))
            }
        };
        let field_changed = |ptr: &str| object.at(ptr) != prev.as_deref().and_then(|p| p.at(ptr));
        if kind == EventType::Deleted
            || field_changed("/metadata/deletionTimestamp")
            || field_changed("/metadata/ownerReferences")
            || field_changed("/metadata/finalizers")
        {
            self.gc_pending = true;
        }
        let change = Change {
            revision: rev,
            group_resource: gr.clone(),
            namespace: key.0,
            name: key.1,
            kind,
            object: object.clone(),
            prev,
            at: self.clock.now(),
        };
        self.dispatch(&change, shown_fields);
        self.history.push_back(change);
        while self.history.len() > self.max_history {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.revision;
            }
        }
        object
    }

    /// Send a change to the watchers it matches. `fields`: the object's managedFields array
    /// when the commit just packed it (moved back in rather than parsed again).
    fn dispatch(&mut self, c: &Change, mut fields: Option<Value>) {
        // Watchers get the object as clients see it: unpacked once, for the first match.
        let mut shown: Option<Arc<Value>> = None;
        let mut show = || {
            shown
                .get_or_insert_with(|| match fields.take() {
                    Some(mf) => {
                        let mut o = (*c.object).clone();
                        meta_mut(&mut o).insert("managedFields".into(), mf);
                        Arc::new(o)
                    }
                    None => managed::unpacked(&c.object),
                })
                .clone()
        };
        self.watchers.retain(|w| {
            if *w.filter.group_resource != *c.group_resource {
                return !w.tx.is_closed();
            }
            let was = c.prev.as_deref().is_some_and(|p| w.filter.matches(p));
            let is = c.kind != EventType::Deleted && w.filter.matches(&c.object);
            let msg = match (was, is) {
                (false, false) => return !w.tx.is_closed(),
                (true, true) => WatchMsg::Event(EventType::Modified, show()),
                (false, true) => WatchMsg::Event(EventType::Added, show()),
                (true, false) if c.kind == EventType::Deleted => {
                    WatchMsg::Event(EventType::Deleted, show())
                }
                (true, false) => {
                    // Left the selector: the previous content at the new revision.
                    let mut p = c.prev.as_deref().cloned().unwrap_or(Value::Null);
                    managed::unpack(&mut p);
                    meta_mut(&mut p)
                        .insert("resourceVersion".into(), json!(c.revision.to_string()));
                    WatchMsg::Event(EventType::Deleted, Arc::new(p))
                }
            };
            w.tx.send(msg).is_ok()
        });
    }

    /// Objects of a group-resource as of revision `rev` (410 when compacted).
    fn snapshot(&self, gr: &str, rev: u64) -> Result<BTreeMap<ObjKey, Arc<Value>>, ApiError> {
        let mut map = self.data.get(gr).cloned().unwrap_or_default();
        if rev >= self.revision {
            return Ok(map);
        }
        if rev < self.compacted {
            return Err(too_old(rev, self.compacted));
        }
        for c in self.history.iter().rev() {
            if c.revision <= rev {
                break;
            }
            if *c.group_resource != *gr {
                continue;
            }
            let key = (c.namespace.clone(), c.name.clone());
            match &c.prev {
                Some(p) => {
                    map.insert(key, p.clone());
                }
                None => {
                    map.remove(&key);
                }
            }
        }
        Ok(map)
    }

    // ----- watch -----------------------------------------------------------------------

    /// Register a watcher. Replayed or synthetic events are queued before live ones, so
    /// nothing is missed or duplicated. A start revision older than the history yields one
    /// in-stream 410 ERROR and a closed channel.
    pub fn watch(
        &mut self,
        filter: WatchFilter,
        start: WatchStart,
    ) -> mpsc::UnboundedReceiver<WatchMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        match start {
            WatchStart::Initial | WatchStart::InitialWithBookmark => {
                if let Some(map) = self.data.get(&filter.group_resource) {
                    for o in map.values() {
                        if filter.matches(o) {
                            let _ =
                                tx.send(WatchMsg::Event(EventType::Added, managed::unpacked(o)));
                        }
                    }
                }
                if start == WatchStart::InitialWithBookmark {
                    let _ = tx.send(WatchMsg::Bookmark(self.revision, true));
                }
            }
            WatchStart::From(rev) => {
                if rev < self.compacted {
                    let _ = tx.send(WatchMsg::Error(too_old(rev, self.compacted).to_status()));
                    return rx;
                }
                for c in self.history.iter().filter(|c| c.revision > rev) {
                    if *c.group_resource != *filter.group_resource {
                        continue;
                    }
                    let was = c.prev.as_deref().is_some_and(|p| filter.matches(p));
                    let is = c.kind != EventType::Deleted && filter.matches(&c.object);
                    let ev = match (was, is) {
                        (false, false) => continue,
                        (true, true) => EventType::Modified,
                        (false, true) => EventType::Added,
                        (true, false) => EventType::Deleted,
                    };
                    let obj = if ev == EventType::Deleted && c.kind != EventType::Deleted {
                        let mut p = c.prev.as_deref().cloned().unwrap_or(Value::Null);
                        managed::unpack(&mut p);
                        meta_mut(&mut p)
                            .insert("resourceVersion".into(), json!(c.revision.to_string()));
                        Arc::new(p)
                    } else {
                        managed::unpacked(&c.object)
                    };
                    let _ = tx.send(WatchMsg::Event(ev, obj));
                }
            }
        }
        self.watchers.push(Watcher { filter, tx });
        rx
    }

    /// End every open watch (clients see the stream close and re-watch).
    pub fn drop_watches(&mut self) {
        self.watchers.clear();
    }

    /// Send every open watch an in-stream 410 Expired and close it, and compact history to
    /// the current revision so re-watches from old revisions fail too.
    pub fn expire_watches(&mut self) {
        let rev = self.revision;
        self.compact(rev);
        for w in self.watchers.drain(..) {
            let _ = w.tx.send(WatchMsg::Error(
                ApiError::expired(format!("too old resource version: {rev} ({rev})")).to_status(),
            ));
        }
    }

    pub fn watcher_count(&self) -> usize {
        self.watchers.iter().filter(|w| !w.tx.is_closed()).count()
    }

    // ----- reads -----------------------------------------------------------------------

    fn key(info: &ResourceInfo, ns: Option<&str>, name: &str) -> ObjKey {
        let ns = if info.namespaced {
            ns.unwrap_or_default()
        } else {
            ""
        };
        (ns.to_string(), name.to_string())
    }

    fn current(&self, info: &ResourceInfo, key: &ObjKey) -> Option<Arc<Value>> {
        self.data
            .get(&info.group_resource())
            .and_then(|m| m.get(key))
            .cloned()
    }

    /// The object as served at `info`'s version, managedFields unpacked.
    pub(crate) fn present(info: &ResourceInfo, o: &Value) -> Value {
        let mut o = o.clone();
        managed::unpack(&mut o);
        Self::serve_version(info, &mut o);
        o
    }

    /// What a write returns: as [`Store::present`], or without managedFields for an
    /// in-process caller that reads as [`crate::Objects`] does.
    fn shown(info: &ResourceInfo, o: &Value, opts: &WriteOptions) -> Value {
        if opts.in_process {
            Self::present_unmanaged(info, o)
        } else {
            Self::present(info, o)
        }
    }

    /// The apiVersion `info` serves, for a custom resource stored at another version.
    fn serve_version(info: &ResourceInfo, o: &mut Value) {
        if info.converts_on_read() {
            o["apiVersion"] = json!(info.api_version());
        }
    }

    /// The object as served at `info`'s version without its managedFields: what in-process
    /// controllers and models read through [`crate::Objects`]. None of them looks at field
    /// ownership, and their updates keep it (the update pipeline recomputes it from the stored
    /// object), so they skip parsing the packed entries of every object they list.
    pub(crate) fn present_unmanaged(info: &ResourceInfo, o: &Value) -> Value {
        let mut o = o.clone();
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        Self::serve_version(info, &mut o);
        o
    }

    pub fn get(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.get_at(info, ns, name, self.revision)
    }

    /// Read an object as it was at revision `rev`.
    pub fn get_at(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        rev: u64,
    ) -> Result<Value, ApiError> {
        let key = Self::key(info, ns, name);
        let found = if rev >= self.revision {
            self.current(info, &key)
        } else {
            self.snapshot(&info.group_resource(), rev)?
                .get(&key)
                .cloned()
        };
        found
            .map(|o| Self::present(info, &o))
            .ok_or_else(|| ApiError::not_found(info, name))
    }

    /// Shared, unconverted access to a stored object (cheap). Its managedFields are in the
    /// stored form (one JSON string); [`Store::get`] gives the API form.
    pub fn get_arc(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Option<Arc<Value>> {
        self.current(info, &Self::key(info, ns, name))
    }

    /// Look an object up by uid: (group-resource, namespace, name).
    pub fn by_uid(&self, uid: &str) -> Option<(String, ObjKey)> {
        self.uids.get(uid).cloned()
    }

    /// Every stored object of a group-resource, in (namespace, name) order, in the stored
    /// form (managedFields as one JSON string).
    pub fn iter_resource(&self, gr: &str) -> impl Iterator<Item = &Arc<Value>> {
        self.data.get(gr).into_iter().flat_map(|m| m.values())
    }

    /// Stored objects of a group-resource in one namespace, by name (a range of the map,
    /// not a scan of every namespace).
    pub fn iter_namespace<'a>(
        &'a self,
        gr: &str,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let from = (ns.to_string(), String::new());
        self.data
            .get(gr)
            .into_iter()
            .flat_map(move |m| m.range(from.clone()..))
            .take_while(move |((n, _), _)| n == ns)
            .map(|(_, o)| o)
    }

    /// Stored objects of a group-resource in one namespace or, with `None`, in all of them.
    pub fn iter_scope<'a>(
        &'a self,
        gr: &'a str,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Value>> + 'a> {
        match ns {
            Some(ns) => Box::new(self.iter_namespace(gr, ns)),
            None => Box::new(self.iter_resource(gr)),
        }
    }

    /// Stored objects of a group-resource in `ns` controlled by `owner_uid` (None: those
    /// with no controller), by name.
    pub fn iter_controlled<'a>(
        &'a self,
        gr: &str,
        ns: &str,
        owner_uid: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let objects = self.data.get(gr);
        let ns = ns.to_string();
        self.by_controller
            .names(gr, &ns, owner_uid)
            .into_iter()
            .flatten()
            .filter_map(move |name| objects?.get(&(ns.clone(), name.clone())))
    }

    pub fn object_count(&self) -> usize {
        self.data.values().map(BTreeMap::len).sum()
    }

    /// A list, with pagination served from one snapshot.
    pub fn list(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, ApiError> {
        self.list_inner(info, ns, opts, None)
    }

    /// A list as of an older revision (stale reads).
    pub fn list_at(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
        rev: u64,
    ) -> Result<Value, ApiError> {
        self.list_inner(info, ns, opts, Some(rev))
    }

    fn list_inner(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
        at: Option<u64>,
    ) -> Result<Value, ApiError> {
        let gr = info.group_resource();
        let mut start_after: Option<ObjKey> = None;
        let mut rev = at.unwrap_or(self.revision);
        if let Some(m) = &opts.resource_version_match {
            if opts.resource_version.is_none() {
                return Err(ApiError::invalid_simple("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".to_string()));
            }
            if opts.continue_token.is_some() {
                return Err(ApiError::invalid_simple(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                return Err(ApiError::invalid_simple(format!(
                    "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
            if m == "Exact" && opts.resource_version.as_deref() == Some("0") {
                return Err(ApiError::invalid_simple(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if let Some(tok) = &opts.continue_token {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|r| r != "0" && !r.is_empty())
            {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (r, k) = decode_continue(tok).ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
            if r < self.compacted {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            rev = r;
            start_after = Some(k);
        } else if let Some(rv) = opts
            .resource_version
            .as_deref()
            .filter(|r| !r.is_empty() && *r != "0")
        {
            let n: u64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
            if n > self.revision {
                let mut e = ApiError::new(
                    504,
                    "Timeout",
                    format!(
                        "Too large resource version: {n}, current: {}",
                        self.revision
                    ),
                );
                e.retry_after = Some(1);
                e.details = Some(
                    json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
                );
                return Err(e);
            }
            let exact = opts.resource_version_match.as_deref() == Some("Exact")
                || (opts.resource_version_match.is_none() && opts.limit.is_some());
            if exact {
                if n < self.compacted {
                    return Err(too_old(n, self.compacted));
                }
                rev = n;
            }
        }
        let snap = self.snapshot(&gr, rev)?;
        let ns_key = if info.namespaced { ns } else { None };
        let lower = match (&start_after, ns_key) {
            (Some(k), _) => std::ops::Bound::Excluded(k.clone()),
            (None, Some(n)) => std::ops::Bound::Included((n.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut items = vec![];
        let mut next: Option<ObjKey> = None;
        let limit = opts.limit.filter(|l| *l > 0);
        for (k, o) in snap.range((lower, std::ops::Bound::Unbounded)) {
            if let Some(n) = ns_key
                && k.0 != n
            {
                break;
            }
            if !(opts.labels.matches(o) && opts.fields.matches(o)) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                next = Some(items_last_key(&items));
                break;
            }
            items.push(Self::present(info, o));
        }
        let mut md = json!({"resourceVersion": rev.to_string()});
        if let Some(k) = next {
            md["continue"] = json!(encode_continue(rev, &k));
        }
        Ok(json!({
            "kind": info.list_kind(),
            "apiVersion": info.api_version(),
            "metadata": md,
            "items": items,
        }))
    }

    // ----- writes ----------------------------------------------------------------------

    fn check_namespace(&self, info: &ResourceInfo, ns: Option<&str>) -> Result<(), ApiError> {
        if !info.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or_default();
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        let nsinfo = self.registry.by_gvk("v1", "Namespace").expect("builtin");
        match self.current(&nsinfo, &(String::new(), ns.to_string())) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if n.at("/metadata/deletionTimestamp").is_some() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    info.group_resource()
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Fill apiVersion/kind and check them and the namespace against the endpoint.
    fn check_type(info: &ResourceInfo, ns: Option<&str>, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !av.is_empty() && av != info.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
        if !kind.is_empty() && kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
        obj["apiVersion"] = json!(info.storage_api_version());
        obj["kind"] = json!(info.kind);
        let m = meta_mut(obj);
        if info.namespaced {
            let want = ns.unwrap_or_default();
            match m.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != want => {
                    return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request".to_string()));
                }
                _ => {
                    m.insert("namespace".into(), json!(want));
                }
            }
        } else {
            m.remove("namespace");
        }
        Ok(())
    }

    fn ctx<'a>(info: &'a ResourceInfo) -> Ctx<'a> {
        Ctx::root(!info.custom, info.schema.as_deref())
    }

    /// A custom object against its version's structural schema (after defaulting), as
    /// upstream validates before storing: a wrong type or a missing required field is a 422.
    fn check_schema(info: &ResourceInfo, name: &str, obj: &Value) -> Result<(), ApiError> {
        let Some(schema) = info.schema.as_deref().filter(|_| info.custom) else {
            return Ok(());
        };
        let causes = crate::schema_check::check(obj, schema);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(crate::schema_check::invalid(info, name, &causes))
        }
    }

    /// Defaults and schema handling shared by create and update.
    fn shape(&mut self, info: &ResourceInfo, obj: &mut Value) {
        if info.custom {
            if let Some(s) = info.schema.clone() {
                crd::default_and_prune(obj, &s);
            }
        } else {
            struct Counters<'a>(&'a mut u32, &'a mut u32);
            impl defaults::Allocator for Counters<'_> {
                fn cluster_ip(&mut self) -> String {
                    *self.0 += 1;
                    let n = *self.0;
                    format!("10.96.{}.{}", (n / 250) % 256, n % 250 + 1)
                }
                fn node_port(&mut self) -> u16 {
                    // The default range, 30000-32767, in order.
                    *self.1 += 1;
                    30000 + ((*self.1 - 1) % 2768) as u16
                }
            }
            let mut alloc = Counters(&mut self.service_ips, &mut self.node_ports);
            defaults::apply(&info.group, &info.plural, obj, &mut alloc);
        }
        normalize(obj);
    }

    /// POST.
    pub fn create(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        Self::check_type(info, ns, &mut obj)?;
        self.check_namespace(info, ns)?;
        if meta_str(&obj, "resourceVersion").is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            let prefix = meta_str(&obj, "generateName")
                .unwrap_or_default()
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    info,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{}", self.name_suffix());
        }
        validate_name(info, &name)?;
        let key = Self::key(info, ns, &name);
        if self.current(info, &key).is_some() {
            return Err(ApiError::already_exists(info, &name));
        }
        let now = self.now_str();
        let uid = self.new_uid();
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), json!(name));
            m.insert("uid".into(), json!(uid));
            m.insert("creationTimestamp".into(), json!(now));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if info.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
            if opts.subresource.as_deref() != Some("__apply") {
                m.remove("managedFields");
            }
        }
        if info.status {
            if info.custom {
                obj.as_object_mut().expect("object").remove("status");
            } else if let Some(s) = defaults::initial_status(&info.group, &info.plural, &obj) {
                obj["status"] = s;
            }
        }
        if info.plural == "customresourcedefinitions" {
            crd::validate(&obj).map_err(|m| crd::invalid_crd(&name, &m))?;
            obj["status"] = crd::established_status(&obj, &now);
        }
        self.shape(info, &mut obj);
        Self::check_schema(info, &name, &obj)?;
        if opts.subresource.as_deref() != Some("__apply") {
            let mgr = opts
                .field_manager
                .clone()
                .unwrap_or_else(|| "unknown".into());
            managed::record_update(
                None,
                &mut obj,
                &mgr,
                &info.api_version(),
                None,
                &now,
                Self::ctx(info),
            );
        }
        if opts.dry_run {
            return Ok(Self::present(info, &obj));
        }
        let stored = self.commit(info, key, Some(obj), None);
        if info.plural == "customresourcedefinitions" {
            self.register_crd(&stored);
        }
        Ok(Self::shown(info, &stored, opts))
    }

    fn register_crd(&mut self, crd: &Value) {
        if let Ok(infos) = crd::resources_of(crd) {
            if let Some(first) = infos.first() {
                self.registry
                    .remove_group_resource(&first.group, &first.plural);
            }
            for i in infos {
                self.registry.add(i);
            }
        }
    }

    /// Install CRDs (create or replace), as `kubectl apply` would.
    pub fn install_crds(&mut self, crds: Vec<Value>) -> Result<(), ApiError> {
        let info = self
            .registry
            .by_gvk("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .expect("builtin");
        for mut c in crds {
            let name = meta_str(&c, "name").unwrap_or_default().to_string();
            match self.current(&info, &(String::new(), name.clone())) {
                None => {
                    self.create(&info, None, c, &WriteOptions::default())?;
                }
                Some(old) => {
                    meta_mut(&mut c).insert(
                        "resourceVersion".into(),
                        old["metadata"]["resourceVersion"].clone(),
                    );
                    self.replace(&info, None, &name, c, &WriteOptions::default())?;
                }
            }
        }
        Ok(())
    }

    /// PUT (main resource or `status` subresource via opts.subresource).
    pub fn replace(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        Self::check_type(info, ns, &mut obj)?;
        let body_name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if body_name.is_empty() {
            meta_mut(&mut obj).insert("name".into(), json!(name));
        } else if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let key = Self::key(info, ns, name);
        let Some(old) = self.current(info, &key) else {
            if info.create_on_update && opts.subresource.is_none() {
                meta_mut(&mut obj).remove("resourceVersion");
                return self.create(info, ns, obj, opts).map(|o| (o, true));
            }
            return Err(ApiError::not_found(info, name));
        };
        let rv = meta_str(&obj, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if rv.is_empty() && info.custom {
            return Err(ApiError::invalid(
                info,
                name,
                "metadata.resourceVersion",
                "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion").unwrap_or_default() {
            return Err(ApiError::conflict(info, name));
        }
        self.write_update(info, key, old, obj, opts, None)
            .map(|o| (o, false))
    }

    /// PATCH (merge, JSON, strategic or apply), main resource or `status` subresource.
    pub fn patch(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        if opts.force && kind != PatchKind::Apply {
            return Err(ApiError::invalid_simple(
                "force: Forbidden: may not be specified for non-apply patch",
            ));
        }
        if kind == PatchKind::Strategic && info.custom {
            return Err(ApiError::unsupported_media(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let key = Self::key(info, ns, name);
        let old = self.current(info, &key);
        if kind == PatchKind::Apply {
            return self.apply(info, ns, name, key, old, body, opts);
        }
        let Some(old) = old else {
            return Err(ApiError::not_found(info, name));
        };
        let mut new = Self::present(info, &old);
        match kind {
            PatchKind::Merge => patch::merge_patch(&mut new, body),
            PatchKind::Json => patch::json_patch(&mut new, body)?,
            PatchKind::Strategic => patch::strategic_merge(&mut new, body, Self::ctx(info)),
            PatchKind::Apply => unreachable!("handled above"),
        }
        // A resourceVersion in the patch is a precondition.
        let want = meta_str(&new, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if !want.is_empty() && want != meta_str(&old, "resourceVersion").unwrap_or_default() {
            return Err(ApiError::conflict(info, name));
        }
        if meta_str(&new, "name") != Some(name) {
            return Err(ApiError::bad_request(format!(
                "metadata.name: Invalid value: the name of the object does not match the name on the URL ({name})"
            )));
        }
        Self::check_type(info, ns, &mut new)?;
        self.write_update(info, key, old, new, opts, None)
            .map(|o| (o, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        key: ObjKey,
        old: Option<Arc<Value>>,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let Some(mgr) = opts.field_manager.clone().filter(|m| !m.is_empty()) else {
            return Err(ApiError::invalid_simple(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        };
        let av = body
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if av != info.api_version() {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {av}, expected: {}",
                info.api_version()
            )));
        }
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() {
            return Err(ApiError::bad_request("invalid object type: /, Kind="));
        }
        if kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
        if body
            .at("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let bname = body
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if bname != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({bname}) does not match the name on the URL ({name})"
            )));
        }
        let mut applied = body.clone();
        let sub = opts.subresource.as_deref();
        {
            let m = meta_mut(&mut applied);
            {
                let k = "resourceVersion";
                m.remove(k);
            }
        }
        let want_rv = meta_str(body, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        let now = self.now_str();
        let live_presented = old.as_deref().map(|o| Self::present(info, o));
        match live_presented {
            None => {
                if sub.is_some() {
                    return Err(ApiError::not_found(info, name));
                }
                let merged = managed::apply(
                    None,
                    &applied,
                    &mgr,
                    &info.api_version(),
                    None,
                    true,
                    &now,
                    Self::ctx(info),
                )
                .map_err(|c| apply_conflict(info, name, &c))?;
                let mut o = merged;
                o["apiVersion"] = json!(info.api_version());
                o["kind"] = json!(info.kind);
                meta_mut(&mut o).insert("name".into(), json!(name));
                let mut w = opts.clone();
                w.subresource = Some("__apply".into());
                let created = self.create(info, ns, o, &w)?;
                Ok((created, true))
            }
            Some(live) => {
                if !want_rv.is_empty()
                    && want_rv != meta_str(&live, "resourceVersion").unwrap_or_default()
                {
                    return Err(ApiError::conflict(info, name));
                }
                let merged = managed::apply(
                    Some(&live),
                    &applied,
                    &mgr,
                    &info.api_version(),
                    sub,
                    opts.force,
                    &now,
                    Self::ctx(info),
                )
                .map_err(|c| apply_conflict(info, name, &c))?;
                let mut new = merged;
                Self::check_type(info, ns, &mut new)?;
                let old = old.expect("live exists");
                self.write_update(info, key, old, new, opts, Some(()))
                    .map(|o| (o, false))
            }
        }
    }

    /// The update pipeline: strategy, generation, managedFields, no-op detection, commit.
    fn write_update(
        &mut self,
        info: &ResourceInfo,
        key: ObjKey,
        old: Arc<Value>,
        mut new: Value,
        opts: &WriteOptions,
        applied: Option<()>,
    ) -> Result<Value, ApiError> {
        let name = key.1.clone();
        let sub = opts.subresource.as_deref().filter(|s| *s != "__apply");
        let now = self.now_str();
        match sub {
            Some("status") => {
                let mut merged = (*old).clone();
                match new.get("status") {
                    Some(s) => merged["status"] = s.clone(),
                    None => {
                        merged.as_object_mut().expect("object").remove("status");
                    }
                }
                if !info.custom {
                    // Built-in status strategies still take label and annotation changes.
                    let nm = meta(&new).clone();
                    let mm = meta_mut(&mut merged);
                    for k in ["labels", "annotations"] {
                        match nm.get(k) {
                            Some(v) => {
                                mm.insert(k.into(), v.clone());
                            }
                            None => {
                                mm.remove(k);
                            }
                        }
                    }
                }
                if let Some(mf) = meta(&new).get("managedFields").cloned() {
                    meta_mut(&mut merged).insert("managedFields".into(), mf);
                }
                new = merged;
            }
            Some(other) => {
                return Err(ApiError::no_route(&format!(
                    "{}/{name}/{other}",
                    info.plural
                )));
            }
            None => {
                if info.status {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            new.as_object_mut().expect("object").remove("status");
                        }
                    }
                }
            }
        }
        // Server-owned metadata comes from the old object.
        {
            let om = meta(&old).clone();
            let nuid = meta_str(&new, "uid").map(String::from);
            if let Some(u) = nuid.filter(|u| !u.is_empty())
                && Some(u.as_str()) != om.get("uid").and_then(Value::as_str)
            {
                return Err(ApiError::invalid(
                    info,
                    &name,
                    "metadata.uid",
                    "FieldValueInvalid",
                    &format!("Invalid value: {u:?}: field is immutable"),
                ));
            }
            let m = meta_mut(&mut new);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match om.get(k) {
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
            m.insert(
                "resourceVersion".into(),
                om.get("resourceVersion").cloned().unwrap_or(Value::Null),
            );
            m.remove("selfLink");
            if om.get("deletionTimestamp").is_some() {
                let oldf: Vec<&Value> = om
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                if let Some(nf) = m.get("finalizers").and_then(Value::as_array)
                    && nf.iter().any(|f| !oldf.contains(&f))
                {
                    return Err(ApiError::invalid(
                        info,
                        &name,
                        "metadata.finalizers",
                        "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being deleted",
                    ));
                }
            }
        }
        if info.plural == "statefulsets" && sub.is_none() {
            check_sts_update(info, &name, &old, &new)?;
        }
        if info.plural == "customresourcedefinitions" && sub.is_none() {
            crd::validate(&new).map_err(|m| crd::invalid_crd(&name, &m))?;
            new["status"] = crd::established_status(&new, &now);
            if let Some(old_status) = old.get("status") {
                // Keep the original transition times when nothing changed.
                if old_status.get("acceptedNames") == new["status"].get("acceptedNames") {
                    new["status"]["conditions"] = old_status["conditions"].clone();
                }
            }
        }
        if !info.custom {
            defaults::keep_allocated(&info.group, &info.plural, &old, &mut new);
        }
        self.shape(info, &mut new);
        Self::check_schema(info, &name, &new)?;
        // Generation: spec (or for CRs anything outside metadata and status) changed.
        if info.generation && sub.is_none() {
            let changed = if info.custom {
                strip_for_generation(&old, info.status) != strip_for_generation(&new, info.status)
            } else {
                old.get("spec") != new.get("spec")
            };
            if changed {
                let g = old
                    .at("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    + 1;
                meta_mut(&mut new).insert("generation".into(), json!(g));
            }
        }
        if applied.is_none() {
            let mgr = opts
                .field_manager
                .clone()
                .unwrap_or_else(|| "unknown".into());
            managed::record_update(
                Some(&old),
                &mut new,
                &mgr,
                &info.api_version(),
                sub,
                &now,
                Self::ctx(info),
            );
        }
        normalize(&mut new);
        // Compared in the stored form; the array goes back for the commit, which packs it
        // again and shows it to watchers without parsing the packed text.
        let fields = managed::pack_taking(&mut new);
        if new == *old {
            return Ok(Self::shown(info, &old, opts));
        }
        if opts.dry_run {
            return Ok(Self::shown(info, &new, opts));
        }
        // An object being deleted whose last finalizer went away is removed now.
        let deleting = new.at("/metadata/deletionTimestamp").is_some();
        let no_finalizers = new.at("/metadata/finalizers").is_none();
        let grace = new
            .at("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if deleting && no_finalizers && grace == 0 {
            let stored = self.commit_packed(info, key.clone(), Some(new), Some(old), fields);
            let last = self.commit(info, key, None, Some(stored));
            self.after_delete(info, &last);
            return Ok(Self::shown(info, &last, opts));
        }
        let stored = self.commit_packed(info, key, Some(new), Some(old), fields);
        if info.plural == "customresourcedefinitions" {
            self.register_crd(&stored);
        }
        Ok(Self::shown(info, &stored, opts))
    }

    /// DELETE of one object.
    pub fn delete(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let key = Self::key(info, ns, name);
        let Some(old) = self.current(info, &key) else {
            return Err(ApiError::not_found(info, name));
        };
        if let Some(u) = &opts.uid {
            let actual = meta_str(&old, "uid").unwrap_or_default();
            if u != actual {
                return Err(ApiError::conflict_msg(
                    info,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {u}, UID in object meta: {actual}"
                    ),
                ));
            }
        }
        if let Some(r) = &opts.resource_version {
            let actual = meta_str(&old, "resourceVersion").unwrap_or_default();
            if r != actual {
                return Err(ApiError::conflict_msg(
                    info,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {r}, ResourceVersion in object meta: {actual}"
                    ),
                ));
            }
        }
        let now = self.now();
        let mut new = (*old).clone();
        let already = old.at("/metadata/deletionTimestamp").is_some();

        // Graceful deletion for pods bound to a node and not finished.
        let mut grace = 0i64;
        if info.plural == "pods" && info.group.is_empty() {
            let bound = old
                .at("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let phase = old
                .at("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let finished = phase == "Succeeded" || phase == "Failed";
            grace = opts
                .grace_period_seconds
                .or_else(|| {
                    old.at("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
                .max(0);
            if !bound || finished {
                grace = 0;
            }
        }
        if already {
            let cur_grace = old
                .at("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let has_finalizers = old.at("/metadata/finalizers").is_some();
            if cur_grace > 0 && grace < cur_grace {
                // A shorter grace period moves the deadline closer.
                if grace == 0 && !has_finalizers {
                    if opts.dry_run {
                        return Ok(Deleted::Gone(Self::present(info, &old)));
                    }
                    let last = self.commit(info, key, None, Some(old));
                    self.after_delete(info, &last);
                    return Ok(Deleted::Gone(Self::present(info, &last)));
                }
                let m = meta_mut(&mut new);
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                m.insert(
                    "deletionTimestamp".into(),
                    json!(format_time(
                        now.checked_add(SignedDuration::from_secs(grace))
                            .unwrap_or(now)
                    )),
                );
                if opts.dry_run {
                    return Ok(Deleted::Pending(Self::present(info, &new)));
                }
                let stored = self.commit(info, key, Some(new), Some(old));
                return Ok(Deleted::Pending(Self::present(info, &stored)));
            }
            return Ok(Deleted::Pending(Self::present(info, &old)));
        }

        // Propagation policy adds or removes the GC finalizers.
        {
            let m = meta_mut(&mut new);
            let mut fins: Vec<Value> = m
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match opts.propagation_policy.as_deref() {
                Some("Foreground") => {
                    fins.retain(|f| f != "orphan");
                    if !fins.contains(&json!("foregroundDeletion")) {
                        fins.push(json!("foregroundDeletion"));
                    }
                }
                Some("Orphan") => {
                    fins.retain(|f| f != "foregroundDeletion");
                    if !fins.contains(&json!("orphan")) {
                        fins.push(json!("orphan"));
                    }
                }
                Some("Background") => fins.retain(|f| f != "orphan" && f != "foregroundDeletion"),
                Some(other) => {
                    return Err(ApiError::invalid_simple(format!(
                        "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                    )));
                }
                None => {}
            }
            // Orphan/foreground only matter if something could depend on it; keep them anyway.
            if fins.is_empty() {
                m.remove("finalizers");
            } else {
                m.insert("finalizers".into(), Value::Array(fins));
            }
        }
        let has_finalizers = new.at("/metadata/finalizers").is_some();
        let namespace_pending = info.plural == "namespaces" && info.group.is_empty();
        if grace > 0 || has_finalizers || namespace_pending {
            let m = meta_mut(&mut new);
            let ts = now
                .checked_add(SignedDuration::from_secs(grace))
                .unwrap_or(now);
            m.insert("deletionTimestamp".into(), json!(format_time(ts)));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if let Some(g) = m.get("generation").and_then(Value::as_i64)
                && g > 0
            {
                m.insert("generation".into(), json!(g + 1));
            }
            if namespace_pending {
                new["status"] = json!({"phase": "Terminating"});
            }
            if opts.dry_run {
                return Ok(Deleted::Pending(Self::present(info, &new)));
            }
            let stored = self.commit(info, key, Some(new), Some(old));
            return Ok(Deleted::Pending(Self::present(info, &stored)));
        }
        if opts.dry_run {
            return Ok(Deleted::Gone(Self::present(info, &old)));
        }
        let last = self.commit(info, key, None, Some(old));
        self.after_delete(info, &last);
        Ok(Deleted::Gone(Self::present(info, &last)))
    }

    fn after_delete(&mut self, info: &ResourceInfo, last: &Value) {
        if info.plural == "customresourcedefinitions"
            && let Ok(infos) = crd::resources_of(last)
            && let Some(first) = infos.first()
        {
            let gr = first.group_resource();
            let keys: Vec<ObjKey> = self
                .data
                .get(&gr)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for k in keys {
                let prev = self.data.get(&gr).and_then(|m| m.get(&k)).cloned();
                self.commit(first, k, None, prev);
            }
            self.registry
                .remove_group_resource(&first.group, &first.plural);
        }
    }

    /// DELETE on a collection: every matching object, each with the normal semantics.
    pub fn delete_collection(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
        del: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let list = self.list(
            info,
            ns,
            &ListOptions {
                labels: opts.labels.clone(),
                fields: opts.fields.clone(),
                ..Default::default()
            },
        )?;
        let mut items = vec![];
        for it in list["items"].as_array().cloned().unwrap_or_default() {
            let n = meta_str(&it, "name").unwrap_or_default().to_string();
            let ins = meta_str(&it, "namespace").map(String::from);
            match self.delete(info, ins.as_deref(), &n, del) {
                Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => items.push(o),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json!({
            "kind": info.list_kind(),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": self.revision.to_string()},
            "items": items,
        }))
    }

    // ----- request accounting -------------------------------------------------------------

    pub(crate) fn count(&mut self, verb: &str) {
        *self.counts.entry(verb.to_string()).or_default() += 1;
    }

    /// Requests served through the API front, by verb (get, list, watch, create, update,
    /// patch, delete, deletecollection).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.counts.clone()
    }

    /// Requests that could write: create, update, patch, delete, deletecollection.
    pub fn write_count(&self) -> u64 {
        ["create", "update", "patch", "delete", "deletecollection"]
            .iter()
            .map(|v| self.counts.get(*v).copied().unwrap_or(0))
            .sum()
    }

    pub fn reset_counts(&mut self) {
        self.counts.clear();
    }

    pub fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }

    // ----- garbage collection ---------------------------------------------------------

    /// One pass of the garbage collector and the namespace controller; returns how many
    /// writes it made (0 when settled). Deterministic: objects are visited in a fixed order.
    pub fn gc_step(&mut self) -> usize {
        self.gc_pending = false;
        let mut writes = 0;
        let mut grs: Vec<String> = self.data.keys().cloned().collect();
        grs.sort();
        // Owners being deleted in the foreground or with orphaning.
        let mut pending: Vec<(Arc<ResourceInfo>, Arc<Value>)> = vec![];
        let mut dependents: BTreeMap<String, Vec<(String, ObjKey, bool)>> = BTreeMap::new();
        for gr in &grs {
            let Some(info) = self.registry.by_group_resource(gr) else {
                continue;
            };
            for o in self.data[gr].values() {
                let fins = o.at("/metadata/finalizers").and_then(Value::as_array);
                if o.at("/metadata/deletionTimestamp").is_some()
                    && fins.is_some_and(|f| {
                        f.iter().any(|x| x == "foregroundDeletion" || x == "orphan")
                    })
                {
                    pending.push((info.clone(), o.clone()));
                }
                if let Some(refs) = o.at("/metadata/ownerReferences").and_then(Value::as_array) {
                    for r in refs {
                        if let Some(u) = r.get("uid").and_then(Value::as_str) {
                            let block =
                                r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true);
                            let k = (
                                meta_str(o, "namespace").unwrap_or_default().to_string(),
                                meta_str(o, "name").unwrap_or_default().to_string(),
                            );
                            dependents.entry(u.to_string()).or_default().push((
                                gr.clone(),
                                k,
                                block,
                            ));
                        }
                    }
                }
            }
        }
        for (info, owner) in pending {
            let uid = meta_str(&owner, "uid").unwrap_or_default().to_string();
            let deps = dependents.get(&uid).cloned().unwrap_or_default();
            let fins: Vec<Value> = owner
                .at("/metadata/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let (ns, name) = (
                meta_str(&owner, "namespace").map(String::from),
                meta_str(&owner, "name").unwrap_or_default().to_string(),
            );
            if fins.contains(&json!("orphan")) {
                for (dgr, dk, _) in &deps {
                    writes += self.strip_owner(dgr, dk, &uid);
                }
                writes += self.remove_finalizer(&info, ns.as_deref(), &name, "orphan");
            } else {
                let mut blocking = false;
                for (dgr, dk, block) in &deps {
                    let Some(dinfo) = self.registry.by_group_resource(dgr) else {
                        continue;
                    };
                    let Some(d) = self.data.get(dgr).and_then(|m| m.get(dk)).cloned() else {
                        continue;
                    };
                    if *block {
                        blocking = true;
                    }
                    if d.at("/metadata/deletionTimestamp").is_none() {
                        let dns = (!dk.0.is_empty()).then_some(dk.0.clone());
                        if self
                            .delete(
                                &dinfo,
                                dns.as_deref(),
                                &dk.1,
                                &DeleteOptions {
                                    propagation_policy: Some("Foreground".into()),
                                    ..Default::default()
                                },
                            )
                            .is_ok()
                        {
                            writes += 1;
                        }
                    }
                }
                if !blocking {
                    writes +=
                        self.remove_finalizer(&info, ns.as_deref(), &name, "foregroundDeletion");
                }
            }
        }
        // Dependents whose owners are all gone.
        for gr in &grs {
            let Some(info) = self.registry.by_group_resource(gr) else {
                continue;
            };
            let objs: Vec<Arc<Value>> = self
                .data
                .get(gr)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            for o in objs {
                let Some(refs) = o.at("/metadata/ownerReferences").and_then(Value::as_array) else {
                    continue;
                };
                if o.at("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                let ons = meta_str(&o, "namespace").unwrap_or_default();
                let alive = refs.iter().any(|r| {
                    let Some(u) = r.get("uid").and_then(Value::as_str) else {
                        return false;
                    };
                    match self.uids.get(u) {
                        Some((ogr, (owner_ns, _))) => {
                            let namespaced = self
                                .registry
                                .by_group_resource(ogr)
                                .is_some_and(|i| i.namespaced);
                            !namespaced || owner_ns == ons
                        }
                        None => false,
                    }
                });
                if !alive {
                    let name = meta_str(&o, "name").unwrap_or_default().to_string();
                    let ns = (!ons.is_empty()).then(|| ons.to_string());
                    if self
                        .delete(
                            &info,
                            ns.as_deref(),
                            &name,
                            &DeleteOptions {
                                propagation_policy: Some("Background".into()),
                                ..Default::default()
                            },
                        )
                        .is_ok()
                    {
                        writes += 1;
                    }
                }
            }
        }
        writes += self.namespace_step();
        writes += self.pod_gc_step();
        writes
    }

    /// Whether a write since the last GC pass may need the garbage collector.
    pub fn gc_pending(&self) -> bool {
        self.gc_pending
    }

    /// Run [`Store::gc_step`] until it makes no more writes (bounded).
    pub fn gc_until_settled(&mut self) -> usize {
        let mut total = 0;
        for _ in 0..64 {
            let n = self.gc_step();
            total += n;
            if n == 0 {
                break;
            }
        }
        total
    }

    fn strip_owner(&mut self, gr: &str, k: &ObjKey, uid: &str) -> usize {
        let Some(info) = self.registry.by_group_resource(gr) else {
            return 0;
        };
        let Some(d) = self.data.get(gr).and_then(|m| m.get(k)).cloned() else {
            return 0;
        };
        let mut new = (*d).clone();
        if let Some(refs) = new
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        }
        let opts = WriteOptions {
            field_manager: Some("kube-controller-manager".into()),
            // The result is dropped: no managedFields to unpack for it.
            in_process: true,
            ..Default::default()
        };
        let before = self.revision;
        let _ = self.write_update(&info, k.clone(), d, new, &opts, None);
        usize::from(self.revision != before)
    }

    fn remove_finalizer(
        &mut self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        fin: &str,
    ) -> usize {
        let key = Self::key(info, ns, name);
        let Some(o) = self.current(info, &key) else {
            return 0;
        };
        let mut new = (*o).clone();
        if let Some(f) = new
            .pointer_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        {
            f.retain(|x| x != fin);
        }
        let before = self.revision;
        let opts = WriteOptions {
            field_manager: Some("kube-controller-manager".into()),
            // The result is dropped: no managedFields to unpack for it.
            in_process: true,
            ..Default::default()
        };
        let _ = self.write_update(info, key, o, new, &opts, None);
        usize::from(self.revision != before)
    }

    /// Namespaces being deleted: delete their contents, then the namespace itself.
    fn namespace_step(&mut self) -> usize {
        let nsinfo = self.registry.by_gvk("v1", "Namespace").expect("builtin");
        let terminating: Vec<String> = self
            .iter_resource("namespaces")
            .filter(|n| n.at("/metadata/deletionTimestamp").is_some())
            .filter_map(|n| meta_str(n, "name").map(String::from))
            .collect();
        let mut writes = 0;
        for ns in terminating {
            let mut remaining = 0;
            let mut grs: Vec<String> = self.data.keys().cloned().collect();
            grs.sort();
            for gr in grs {
                let Some(info) = self.registry.by_group_resource(&gr) else {
                    continue;
                };
                if !info.namespaced {
                    continue;
                }
                let keys: Vec<ObjKey> = self.data[&gr]
                    .range((ns.clone(), String::new())..)
                    .take_while(|(k, _)| k.0 == ns)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    remaining += 1;
                    let o = self.data[&gr][&k].clone();
                    if o.at("/metadata/deletionTimestamp").is_none()
                        && self
                            .delete(
                                &info,
                                Some(&ns),
                                &k.1,
                                &DeleteOptions {
                                    grace_period_seconds: Some(0),
                                    propagation_policy: Some("Background".into()),
                                    ..Default::default()
                                },
                            )
                            .is_ok()
                    {
                        writes += 1;
                    }
                }
            }
            if remaining == 0 {
                let key = (String::new(), ns.clone());
                if let Some(old) = self.current(&nsinfo, &key)
                    && old.at("/metadata/finalizers").is_none()
                {
                    let last = self.commit(&nsinfo, key, None, Some(old));
                    let _ = last;
                    writes += 1;
                }
            }
        }
        writes
    }

    /// Pods bound to a node that does not exist, or whose graceful deletion deadline passed
    /// long ago with no kubelet: force-delete (the pod GC controller).
    fn pod_gc_step(&mut self) -> usize {
        let pinfo = self.registry.by_gvk("v1", "Pod").expect("builtin");
        let nodes: std::collections::HashSet<String> = self
            .iter_resource("nodes")
            .filter_map(|n| meta_str(n, "name").map(String::from))
            .collect();
        let now = self.now();
        let victims: Vec<(String, String)> = self
            .iter_resource("pods")
            .filter(|p| p.at("/metadata/deletionTimestamp").is_some())
            .filter(|p| p.at("/metadata/finalizers").is_none())
            .filter(|p| {
                let node = p
                    .at("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let orphaned = !node.is_empty() && !nodes.contains(node);
                let deadline = p
                    .at("/metadata/deletionTimestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_time);
                orphaned && deadline.is_some_and(|d| d <= now)
            })
            .map(|p| {
                (
                    meta_str(p, "namespace").unwrap_or_default().to_string(),
                    meta_str(p, "name").unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut writes = 0;
        for (ns, name) in victims {
            if self
                .delete(
                    &pinfo,
                    Some(&ns),
                    &name,
                    &DeleteOptions {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .is_ok()
            {
                writes += 1;
            }
        }
        writes
    }
}

fn items_last_key(items: &[Value]) -> ObjKey {
    let last = items.last().expect("limit > 0 means at least one item");
    (
        meta_str(last, "namespace").unwrap_or_default().to_string(),
        meta_str(last, "name").unwrap_or_default().to_string(),
    )
}

fn encode_continue(rev: u64, k: &ObjKey) -> String {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    format!("{rev}-{}-{}", hex(&k.0), hex(&k.1))
}

fn decode_continue(tok: &str) -> Option<(u64, ObjKey)> {
    let mut parts = tok.splitn(3, '-');
    let rev = parts.next()?.parse().ok()?;
    let unhex = |s: &str| -> Option<String> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect();
        String::from_utf8(bytes?).ok()
    };
    let ns = unhex(parts.next()?)?;
    let name = unhex(parts.next()?)?;
    Some((rev, (ns, name)))
}

fn too_old(rev: u64, compacted: u64) -> ApiError {
    ApiError::expired(format!(
        "too old resource version: {rev} ({})",
        compacted + 1
    ))
}

fn apply_conflict(info: &ResourceInfo, name: &str, c: &[managed::Conflict]) -> ApiError {
    let causes: Vec<Value> = c
        .iter()
        .map(|c| {
            let who = if c.operation == "Update" {
                format!("conflict with \"{}\" using {}", c.manager, c.api_version)
            } else {
                format!("conflict with \"{}\"", c.manager)
            };
            json!({"reason": "FieldManagerConflict", "message": who, "field": c.path})
        })
        .collect();
    let mut d = json!({"name": name, "kind": info.plural, "causes": causes});
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    ApiError::new(409, "Conflict", managed::conflict_message(c)).with_details(d)
}

fn strip_for_generation(o: &Value, status: bool) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        if status {
            m.remove("status");
        }
    }
    o
}

fn validate_name(info: &ResourceInfo, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || c == '.'
                || (c == ':' && info.group.starts_with("rbac"))
        })
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            info,
            name,
            "metadata.name",
            "FieldValueInvalid",
            &format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

fn check_sts_update(
    info: &ResourceInfo,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    const MUTABLE: &[&str] = &[
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let strip = |v: &Value| -> Value {
        let mut s = v.get("spec").cloned().unwrap_or(json!({}));
        if let Some(m) = s.as_object_mut() {
            for k in MUTABLE {
                m.remove(*k);
            }
            // Defaults filled in on the old object should not count as changes.
            if let Some(v) = m
                .get_mut("volumeClaimTemplates")
                .and_then(Value::as_array_mut)
            {
                for t in v {
                    if let Some(tm) = t.as_object_mut() {
                        tm.remove("status");
                        tm.remove("apiVersion");
                        tm.remove("kind");
                        if let Some(s) = tm.get_mut("spec").and_then(Value::as_object_mut) {
                            s.remove("volumeMode");
                        }
                    }
                }
            }
            for k in ["podManagementPolicy"] {
                if m.get(k).is_none() {
                    m.insert(k.into(), json!("OrderedReady"));
                }
            }
        }
        s
    };
    if strip(old) != strip(new) {
        return Err(ApiError::invalid(
            info,
            name,
            "spec",
            "FieldValueForbidden",
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    Ok(())
}

impl ResourceInfo {
    /// apiVersion objects are stored with.
    pub fn storage_api_version(&self) -> String {
        if self.group.is_empty() {
            self.storage_version.clone()
        } else {
            format!("{}/{}", self.group, self.storage_version)
        }
    }
}
