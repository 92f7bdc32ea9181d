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
//! Bounded per thread: [`MAX_CLUSTERS`] entries (the least recently used is dropped) of at
//! most [`MAX_OBJECTS`] objects each (cleared when full). An operator reconciling more
//! clusters than that per worker thread gets misses, which cost what a reconcile without the
//! memo costs plus a copy of the spec. Rendered password and TLS Secrets stay in this memory
//! (the observed Secrets are in the same process anyway).

use super::Ctx;
use crate::api::cluster::PerconaPGClusterSpec;
use serde_json::Value;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const MAX_CLUSTERS: usize = 8;
pub const MAX_OBJECTS: usize = 256;

type Shared = Arc<dyn Any + Send + Sync>;

struct Entry {
    id: u64,
    name: String,
    ns: String,
    uid: Option<String>,
    spec: PerconaPGClusterSpec,
    objects: HashMap<Box<[u8]>, Shared>,
}

#[derive(Default)]
struct Memo {
    /// Most recently used last.
    entries: Vec<Entry>,
    next_id: u64,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
    static DISABLED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the memo bypassed on this thread (every object rendered afresh); for tests
/// and benchmarks that compare the two.
pub fn without_memo<R>(f: impl FnOnce() -> R) -> R {
    let before = DISABLED.with(|d| d.replace(true));
    let r = f();
    DISABLED.with(|d| d.set(before));
    r
}

/// Empties this thread's memo.
pub fn clear() {
    MEMO.with(|m| m.borrow_mut().entries.clear());
}

impl Memo {
    /// The index of the entry for `ctx`'s inputs, creating it when absent.
    fn entry_for(&mut self, ctx: &Ctx) -> usize {
        let uid = ctx.cr.metadata.uid.as_deref();
        let known = ctx.memo_id.get();
        let found = self
            .entries
            .iter()
            .position(|e| Some(e.id) == known)
            .or_else(|| {
                self.entries.iter().position(|e| {
                    e.name == ctx.name
                        && e.ns == ctx.ns
                        && e.uid.as_deref() == uid
                        && e.spec == ctx.cr.spec
                })
            });
        let at = match found {
            Some(i) => i,
            None => {
                if self.entries.len() >= MAX_CLUSTERS {
                    self.entries.remove(0);
                }
                self.next_id += 1;
                self.entries.push(Entry {
                    id: self.next_id,
                    name: ctx.name.to_string(),
                    ns: ctx.ns.to_string(),
                    uid: uid.map(str::to_string),
                    spec: ctx.cr.spec.clone(),
                    objects: HashMap::new(),
                });
                self.entries.len() - 1
            }
        };
        ctx.memo_id.set(Some(self.entries[at].id));
        // Most recently used last.
        let last = self.entries.len() - 1;
        if at != last {
            let e = self.entries.remove(at);
            self.entries.push(e);
        }
        last
    }
}

/// The object `render` builds from `ctx` and the arguments `key` names, rendered once per
/// distinct (CR name, namespace, uid, spec, key). `key` must name the builder and every
/// argument it is given besides `ctx`.
pub fn get<T, F>(ctx: &Ctx, key: impl AsRef<[u8]>, render: F) -> Arc<T>
where
    T: Any + Send + Sync,
    F: FnOnce() -> T,
{
    let key = key.as_ref();
    if DISABLED.with(Cell::get) {
        return Arc::new(render());
    }
    let hit = MEMO.with(|m| {
        let mut m = m.borrow_mut();
        let i = m.entry_for(ctx);
        m.entries[i].objects.get(key).cloned()
    });
    if let Some(hit) = hit.and_then(|h| h.downcast::<T>().ok()) {
        return hit;
    }
    // Rendered outside the borrow: a builder may use the memo itself.
    let v = Arc::new(render());
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        let i = m.entry_for(ctx);
        let objects = &mut m.entries[i].objects;
        if objects.len() >= MAX_OBJECTS {
            objects.clear();
        }
        objects.insert(key.into(), v.clone() as Shared);
    });
    v
}

/// Rendered objects, as the memo shares them, with a remembered comparison per object: the
/// observed object it was last compared with (a copy) and whether that satisfied it. The
/// comparison is a pure function of the two, so an equal observed object (`PartialEq`,
/// every field, status and managedFields included) gets the same verdict without the walk.
pub struct Rendered {
    objects: Vec<Value>,
    verdicts: Vec<Mutex<Option<Verdict>>>,
}

struct Verdict {
    observed: Box<dyn Any + Send + Sync>,
    satisfied: bool,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.objects).finish()
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
        Self { objects, verdicts }
    }

    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    /// The first (for single-object renders, the only) object.
    pub fn object(&self) -> &Value {
        &self.objects[0]
    }

    /// `check()` — whether `observed` satisfies object `i` — or the verdict remembered for an
    /// equal observed object.
    pub fn verdict<T>(&self, i: usize, observed: &T, check: impl FnOnce() -> bool) -> bool
    where
        T: Any + Clone + PartialEq + Send + Sync,
    {
        let Some(slot) = self.verdicts.get(i) else {
            return check();
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.as_ref()
            && v.observed.downcast_ref::<T>() == Some(observed)
        {
            return v.satisfied;
        }
        let satisfied = check();
        *slot = Some(Verdict {
            observed: Box::new(observed.clone()),
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

    #[test]
    fn a_verdict_is_reused_only_for_an_equal_observed_object() {
        let r = Rendered::new(vec![json!({"a": 1})]);
        let calls = Cell::new(0);
        let check = |v: bool| {
            calls.set(calls.get() + 1);
            v
        };
        assert!(r.verdict(0, &json!({"a": 1}), || check(true)));
        // Equal observed object: the remembered verdict, no new check.
        assert!(r.verdict(0, &json!({"a": 1}), || check(false)));
        assert_eq!(calls.get(), 1);
        // A different one (or another type): checked again.
        assert!(!r.verdict(0, &json!({"a": 2}), || check(false)));
        assert!(r.verdict(0, &String::from("x"), || check(true)));
        assert_eq!(calls.get(), 3);
        // Out of range: always checked.
        assert!(r.verdict(5, &json!({"a": 1}), || check(true)));
        assert_eq!(calls.get(), 4);
    }
}
