//! "Is the desired object already there?" — the subset comparison behind idempotency, and a
//! stable structural hash of JSON values.

use serde_json::Value;

/// Whether every field of `desired` is present and equal in `observed`. Objects are compared
/// key-wise (observed may carry extra, server-defaulted keys), arrays element-wise with equal
/// length. A desired `null`, `{}` or `[]` is satisfied by an absent field, because the API
/// server (and k8s-openapi's serializers) drop empty values.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(k, dv)| match o.get(k) {
            Some(ov) => is_subset(dv, ov),
            None => is_empty(dv),
        }),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(a, b)| is_subset(a, b))
        }
        (Value::Number(d), Value::Number(o)) => {
            d == o || matches!((d.as_f64(), o.as_f64()), (Some(a), Some(b)) if a == b)
        }
        (d, Value::Null) => is_empty(d),
        (d, o) => d == o,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A 64-bit FNV-1a hash over the structure of a JSON value. Stable across Rust releases and
/// platforms (unlike `std`'s hasher), so it can be stored in annotations: an operator upgrade
/// that renders the same objects computes the same hashes and restarts nothing.
pub fn hash_value(v: &Value) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.value(v);
    h.0
}

/// [`hash_value`] as 16 hex digits.
pub fn hash_hex(v: &Value) -> String {
    format!("{:016x}", hash_value(v))
}

pub(crate) struct Fnv(pub u64);

impl Fnv {
    pub fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.bytes(b"n"),
            Value::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                self.bytes(b"#");
                self.bytes(n.to_string().as_bytes());
            }
            Value::String(s) => {
                self.bytes(b"s");
                self.bytes(&(s.len() as u64).to_le_bytes());
                self.bytes(s.as_bytes());
            }
            Value::Array(a) => {
                self.bytes(b"[");
                for x in a {
                    self.value(x);
                }
                self.bytes(b"]");
            }
            Value::Object(m) => {
                // serde_json's Map is a BTreeMap here (no preserve_order), so order is stable.
                self.bytes(b"{");
                for (k, x) in m {
                    self.bytes(&(k.len() as u64).to_le_bytes());
                    self.bytes(k.as_bytes());
                    self.value(x);
                }
                self.bytes(b"}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!({"a": 1}), json!({"a": 1, "b": 2}), true)]
    #[case(json!({"a": 1}), json!({"a": 2}), false)]
    #[case(json!({"a": {}}), json!({}), true)]
    #[case(json!({"a": []}), json!({"b": 1}), true)]
    #[case(json!({"a": [1]}), json!({}), false)]
    #[case(json!({"a": [1, 2]}), json!({"a": [1]}), false)]
    #[case(json!({"a": [{"x": 1}]}), json!({"a": [{"x": 1, "y": 2}]}), true)]
    #[case(json!({"a": 1.0}), json!({"a": 1}), true)]
    #[case(json!({"a": "1"}), json!({"a": 1}), false)]
    #[case(json!({"a": null}), json!({"a": null}), true)]
    fn subset(#[case] d: Value, #[case] o: Value, #[case] expect: bool) {
        assert_eq!(is_subset(&d, &o), expect, "{d} ⊆ {o}");
    }

    #[test]
    fn hash_is_structural() {
        assert_eq!(
            hash_value(&json!({"a": 1, "b": [1, "x"]})),
            hash_value(&json!({"b": [1, "x"], "a": 1}))
        );
        assert_ne!(hash_value(&json!({"a": "1"})), hash_value(&json!({"a": 1})));
        assert_ne!(
            hash_value(&json!(["ab", "c"])),
            hash_value(&json!(["a", "bc"]))
        );
    }
}
