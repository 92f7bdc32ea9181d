//! Fuzzing the deserializer and the validators with JSON shaped like the upstream examples:
//! random subsets and mutations of their trees (wrong types, huge and negative numbers, empty
//! and unicode strings, deleted and added keys). Nothing may panic, and whatever deserializes
//! must serialize and deserialize again to the same value.

use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};
use tusk_core::api::{PerconaPGBackup, PerconaPGCluster, PerconaPGRestore};
use tusk_core::validate::{
    parse_backup, parse_cluster, parse_restore, unknown_fields, validate, validate_backup,
    validate_backup_for, validate_restore,
};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/percona");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// Seed documents: the upstream examples and the richest fixtures.
fn seeds() -> Vec<Value> {
    vec![
        yaml(&format!("{SHARED}/cr.yaml")),
        yaml(&format!(
            "{FIXTURES}/roundtrip-only/cr-all-uncommented.yaml"
        )),
        yaml(&format!("{FIXTURES}/cluster-backups-full.yaml")),
        yaml(&format!("{FIXTURES}/cluster-instances-full.yaml")),
        yaml(&format!("{SHARED}/backup.yaml")),
        yaml(&format!("{FIXTURES}/backup-all-options.yaml")),
        yaml(&format!("{SHARED}/restore.yaml")),
        yaml(&format!("{FIXTURES}/restore-pitr.yaml")),
    ]
}

/// JSON pointers of every node of a document.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MIN),
            Just(-1),
            Just(0),
            Just(1),
            Just(12),
            Just(18),
            Just(1 << 40)
        ]
        .prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        Just(json!("")),
        Just(json!("repo1")),
        Just(json!("0 0 * * 6")),
        Just(json!("--type=time")),
        "[a-z0-9-]{0,70}".prop_map(Value::String),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9*/ ,@a-zA-Z-]{0,20}".prop_map(Value::String),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node at the chosen pointer.
    Replace(usize, Value),
    /// Delete the node (object key or array element).
    Delete(usize),
    /// Add a key with a random value to the chosen object (or push onto an array).
    Add(usize, String, Value),
    /// Duplicate an array element, or wrap a node in an array.
    Duplicate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<usize>();
    prop_oneof![
        4 => (idx, any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        3 => idx.prop_map(Mutation::Delete),
        2 => (idx, "[a-zA-Z]{1,16}", any_json()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
        1 => idx.prop_map(Mutation::Duplicate),
    ]
}

fn node_mut<'a>(doc: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    doc.pointer_mut(pointer)
}

fn apply(doc: &mut Value, m: &Mutation) {
    let mut ptrs = Vec::new();
    pointers(doc, String::new(), &mut ptrs);
    let pick = |i: usize| ptrs[i % ptrs.len()].clone();
    match m {
        Mutation::Replace(i, v) => {
            if let Some(n) = node_mut(doc, &pick(*i)) {
                *n = v.clone();
            }
        }
        Mutation::Delete(i) => {
            let p = pick(*i);
            let Some((parent, last)) = p.rsplit_once('/') else {
                return;
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match node_mut(doc, parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < a.len()
                    {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        Mutation::Add(i, k, v) => match node_mut(doc, &pick(*i)) {
            Some(Value::Object(map)) => {
                map.insert(k.clone(), v.clone());
            }
            Some(Value::Array(a)) => a.push(v.clone()),
            _ => {}
        },
        Mutation::Duplicate(i) => {
            if let Some(n) = node_mut(doc, &pick(*i)) {
                match n {
                    Value::Array(a) if !a.is_empty() => {
                        let first = a[0].clone();
                        a.push(first);
                    }
                    other => *other = Value::Array(vec![other.clone()]),
                }
            }
        }
    }
}

/// Whatever deserializes survives serialize → deserialize unchanged.
fn stable<T>(typed: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json =
        serde_json::to_value(typed).map_err(|e| TestCaseError::fail(format!("serialize: {e}")))?;
    let again: T = serde_json::from_value(json.clone())
        .map_err(|e| TestCaseError::fail(format!("re-deserialize failed: {e}\n{json}")))?;
    prop_assert_eq!(&again, typed);
    Ok(())
}

fn check(doc: Value) -> Result<(), TestCaseError> {
    // The path-reporting readers never panic either, and agree with plain serde on success.
    if let Ok(cr) = parse_cluster(doc.clone()) {
        let _ = unknown_fields(&doc, &cr);
    }
    let _ = parse_backup(doc.clone());
    let _ = parse_restore(doc.clone());
    // Try every kind on every document: a cluster body read as a backup must not panic either.
    if let Ok(cr) = serde_json::from_value::<PerconaPGCluster>(doc.clone()) {
        let result = validate(&cr);
        if let Err(errs) = &result {
            prop_assert!(!errs.is_empty(), "Err with no errors");
            for e in errs {
                prop_assert!(
                    !e.path.is_empty() && !e.message.is_empty(),
                    "empty path or message: {e:?}"
                );
            }
        }
        stable(&cr)?;
        if let Ok(b) = serde_json::from_value::<PerconaPGBackup>(doc.clone()) {
            let _ = validate_backup_for(&b, &cr);
        }
    }
    if let Ok(b) = serde_json::from_value::<PerconaPGBackup>(doc.clone()) {
        let _ = validate_backup(&b);
        stable(&b)?;
    }
    if let Ok(r) = serde_json::from_value::<PerconaPGRestore>(doc) {
        let _ = validate_restore(&r);
        stable(&r)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(seed in 0usize..8, mutations in prop::collection::vec(mutation(), 1..10)) {
        let mut doc = seeds()[seed].clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        check(doc)?;
    }

    #[test]
    fn arbitrary_json_under_spec_never_panics(spec in any_json()) {
        check(json!({"apiVersion": "pgv2.percona.com/v2", "kind": "PerconaPGCluster", "metadata": {"name": "c"}, "spec": spec}))?;
    }

    #[test]
    fn cron_parsing_never_panics(expr in "\\PC{0,40}") {
        let _ = tusk_core::validate::parse_cron(&expr);
    }
}

/// The mutator does change documents (so the fuzz is not vacuous), and some mutants still
/// deserialize (so validation is reached).
#[test]
fn mutations_reach_the_validator() {
    let base = seeds()[0].clone();
    let mut changed = base.clone();
    apply(&mut changed, &Mutation::Replace(5, json!(-7)));
    assert_ne!(changed, base);
    let mut ptrs = Vec::new();
    pointers(&base, String::new(), &mut ptrs);
    let pv = ptrs
        .iter()
        .position(|p| p == "/spec/postgresVersion")
        .expect("pointer");
    let mut doc = base;
    apply(&mut doc, &Mutation::Replace(pv, json!(99)));
    let cr: PerconaPGCluster = serde_json::from_value(doc).expect("still a cluster");
    assert!(validate(&cr).is_err());
}
