//! "Is the desired object already there?" — the subset comparison behind idempotency, and a
//! stable structural hash of JSON values.
//!
//! Two forms of the same comparison: [`is_subset`] between two JSON values, and
//! [`is_subset_of`], which compares a desired JSON value with a typed observed object by
//! walking its `Serialize` implementation, so the observed object is never converted to JSON
//! (the no-op reconcile's main cost before) and only the fields tusk sends are visited.
//!
//! Resource quantities (values under `limits`, `requests`, `capacity`, `hard`, and
//! `sizeLimit`) compare by value: the API server canonicalises them (`1Gi` reads back as
//! `1Gi`, but `1073741824` as `1Gi`, `1000m` as `1`, `0.5` as `500m`), and a textual
//! comparison would re-apply them forever.

use serde::ser::{self, Serialize};
use serde_json::{Map, Value};

/// Where in an object a value sits, as far as quantity comparison cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    /// The values of this map are quantities (`resources.limits`, PVC `capacity`, ...).
    QuantityMap,
    /// This value is a quantity.
    Quantity,
}

impl Ctx {
    fn child(self, key: &str) -> Ctx {
        if self == Ctx::QuantityMap {
            return Ctx::Quantity;
        }
        match key {
            "limits" | "requests" | "capacity" | "allocatable" | "hard" | "overhead" => {
                Ctx::QuantityMap
            }
            "sizeLimit" => Ctx::Quantity,
            _ => Ctx::Plain,
        }
    }
}

/// Whether every field of `desired` is present and equal in `observed`. Objects are compared
/// key-wise (observed may carry extra, server-defaulted keys), arrays element-wise with equal
/// length. A desired `null`, `{}` or `[]` is satisfied by an absent field, because the API
/// server (and k8s-openapi's serializers) drop empty values. Quantities compare by value.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    subset_in(desired, observed, Ctx::Plain)
}

fn subset_in(desired: &Value, observed: &Value, ctx: Ctx) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(k, dv)| match o.get(k) {
            Some(ov) => subset_in(dv, ov, ctx.child(k)),
            None => is_empty(dv),
        }),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(a, b)| subset_in(a, b, Ctx::Plain))
        }
        (Value::Number(d), Value::Number(o)) => {
            d == o || matches!((d.as_f64(), o.as_f64()), (Some(a), Some(b)) if a == b)
        }
        (Value::String(d), Value::String(o)) => {
            d == o || (ctx == Ctx::Quantity && quantity_eq(d, o))
        }
        (d, Value::Null) => is_empty(d),
        (d, o) => d == o,
    }
}

/// [`is_subset`] of `desired` against a typed object, without converting it to JSON.
pub fn is_subset_of<T: Serialize + ?Sized>(desired: &Value, observed: &T) -> bool {
    observed
        .serialize(Cmp {
            desired,
            ctx: Ctx::Plain,
        })
        .is_ok()
}

/// Two quantity strings with the same value (`1Gi` = `1073741824`, `1000m` = `1`,
/// `0.5` = `500m`, `1e3` = `1k`). Unparseable strings are equal only to themselves.
pub fn quantity_eq(a: &str, b: &str) -> bool {
    a == b || matches!((parse_quantity(a), parse_quantity(b)), (Some(x), Some(y)) if x == y)
}

/// A quantity as `n × 10^e` with `n` not divisible by 10 (or `(0, 0)`), exact.
fn parse_quantity(s: &str) -> Option<(i128, i32)> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || int.len() + frac.len() > 30 {
        return None;
    }
    let mut n: i128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        n = n * 10 + i128::from(c - b'0');
    }
    let mut e10 = -(frac.len() as i32);
    let mut e2 = 0u32;
    match suffix {
        "" => {}
        "n" => e10 -= 9,
        "u" => e10 -= 6,
        "m" => e10 -= 3,
        "k" => e10 += 3,
        "M" => e10 += 6,
        "G" => e10 += 9,
        "T" => e10 += 12,
        "P" => e10 += 15,
        "E" => e10 += 18,
        "Ki" => e2 = 10,
        "Mi" => e2 = 20,
        "Gi" => e2 = 30,
        "Ti" => e2 = 40,
        "Pi" => e2 = 50,
        "Ei" => e2 = 60,
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let exp: i32 = exp.parse().ok().filter(|x: &i32| x.abs() <= 100)?;
            e10 += exp;
        }
    }
    n = n.checked_mul(1i128.checked_shl(e2)?)?;
    if n == 0 {
        return Some((0, 0));
    }
    while n % 10 == 0 {
        n /= 10;
        e10 += 1;
    }
    Some((if neg { -n } else { n }, e10))
}

/// Stops the walk of an observed object at the first difference.
#[derive(Debug)]
struct Differs;

impl std::fmt::Display for Differs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("observed differs from desired")
    }
}

impl std::error::Error for Differs {}

impl ser::Error for Differs {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Differs
    }
}

fn check(ok: bool) -> Result<(), Differs> {
    if ok { Ok(()) } else { Err(Differs) }
}

/// A serializer that compares what it is given with `desired` instead of producing output.
struct Cmp<'a> {
    desired: &'a Value,
    ctx: Ctx,
}

impl<'a> Cmp<'a> {
    fn number(&self, eq_num: impl Fn(&serde_json::Number) -> bool) -> Result<(), Differs> {
        check(matches!(self.desired, Value::Number(d) if eq_num(d)))
    }
    fn map(self) -> Result<CmpMap<'a>, Differs> {
        match self.desired {
            Value::Object(d) => Ok(CmpMap {
                desired: Some(d),
                ctx: self.ctx,
                key: None,
                matched: 0,
            }),
            _ => Err(Differs),
        }
    }
    fn seq(self) -> Result<CmpSeq<'a>, Differs> {
        match self.desired {
            Value::Array(d) => Ok(CmpSeq {
                desired: d,
                next: 0,
            }),
            _ => Err(Differs),
        }
    }
}

struct CmpSeq<'a> {
    desired: &'a [Value],
    next: usize,
}

impl CmpSeq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Differs> {
        let d = self.desired.get(self.next).ok_or(Differs)?;
        self.next += 1;
        v.serialize(Cmp {
            desired: d,
            ctx: Ctx::Plain,
        })
    }
    fn finish(self) -> Result<(), Differs> {
        check(self.next == self.desired.len())
    }
}

struct CmpMap<'a> {
    desired: Option<&'a Map<String, Value>>,
    ctx: Ctx,
    /// The entry the last map key named: the desired value (`None`: not sent) and the
    /// context of its value.
    key: Option<(Option<&'a Value>, Ctx)>,
    /// Desired keys with a non-empty value found in the observed object.
    matched: usize,
}

impl CmpMap<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), Differs> {
        let d = self.desired.and_then(|m| m.get(key));
        self.entry(d, self.ctx.child(key), v)
    }
    fn entry<T: Serialize + ?Sized>(
        &mut self,
        d: Option<&Value>,
        ctx: Ctx,
        v: &T,
    ) -> Result<(), Differs> {
        let Some(d) = d else {
            // Not sent by tusk: not compared, not even walked.
            return Ok(());
        };
        if !is_empty(d) {
            self.matched += 1;
        }
        v.serialize(Cmp { desired: d, ctx })
    }
    fn finish(self) -> Result<(), Differs> {
        // Every desired key with a value must have been seen (absent empty ones are fine).
        let wanted = self
            .desired
            .map_or(0, |m| m.values().filter(|v| !is_empty(v)).count());
        check(self.matched == wanted)
    }
}

impl ser::SerializeSeq for CmpSeq<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Differs> {
        self.element(v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

impl ser::SerializeTuple for CmpSeq<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Differs> {
        self.element(v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for CmpSeq<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Differs> {
        self.element(v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for CmpSeq<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Differs> {
        self.element(v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

impl ser::SerializeMap for CmpMap<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Differs> {
        // Looked up while the key is borrowed: no String per key of a label map.
        self.key = Some(key.serialize(KeyLookup {
            desired: self.desired,
            ctx: self.ctx,
        })?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Differs> {
        let (d, ctx) = self.key.take().ok_or(Differs)?;
        self.entry(d, ctx, v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

/// Serialises a map key (only strings are JSON object keys, as in `serde_json::to_value`)
/// into its desired entry and that entry's context.
struct KeyLookup<'a> {
    desired: Option<&'a Map<String, Value>>,
    ctx: Ctx,
}

type KeyFound<'a> = (Option<&'a Value>, Ctx);

impl<'a> KeyLookup<'a> {
    fn found(self, k: &str) -> Result<KeyFound<'a>, Differs> {
        Ok((self.desired.and_then(|m| m.get(k)), self.ctx.child(k)))
    }
}

impl<'a> ser::Serializer for KeyLookup<'a> {
    type Ok = KeyFound<'a>;
    type Error = Differs;
    type SerializeSeq = ser::Impossible<KeyFound<'a>, Differs>;
    type SerializeTuple = ser::Impossible<KeyFound<'a>, Differs>;
    type SerializeTupleStruct = ser::Impossible<KeyFound<'a>, Differs>;
    type SerializeTupleVariant = ser::Impossible<KeyFound<'a>, Differs>;
    type SerializeMap = ser::Impossible<KeyFound<'a>, Differs>;
    type SerializeStruct = ser::Impossible<KeyFound<'a>, Differs>;
    type SerializeStructVariant = ser::Impossible<KeyFound<'a>, Differs>;

    fn serialize_str(self, v: &str) -> Result<Self::Ok, Differs> {
        self.found(v)
    }
    fn serialize_char(self, v: char) -> Result<Self::Ok, Differs> {
        self.found(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, Differs> {
        self.found(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Self::Ok, Differs> {
        v.serialize(self)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Self::Ok, Differs> {
        v.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_i8(self, _: i8) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_i16(self, _: i16) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_i32(self, _: i32) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_i64(self, _: i64) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_u8(self, _: u8) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_u16(self, _: u16) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_u32(self, _: u32) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_u64(self, _: u64) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_f32(self, _: f32) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_f64(self, _: f64) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_none(self) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_unit(self) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Differs> {
        Err(Differs)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Differs> {
        Err(Differs)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Differs> {
        Err(Differs)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Differs> {
        Err(Differs)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Differs> {
        Err(Differs)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Differs> {
        Err(Differs)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Differs> {
        Err(Differs)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Differs> {
        Err(Differs)
    }
}

impl ser::SerializeStruct for CmpMap<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Differs> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for CmpMap<'_> {
    type Ok = ();
    type Error = Differs;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Differs> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), Differs> {
        self.finish()
    }
}

impl<'a> ser::Serializer for Cmp<'a> {
    type Ok = ();
    type Error = Differs;
    type SerializeSeq = CmpSeq<'a>;
    type SerializeTuple = CmpSeq<'a>;
    type SerializeTupleStruct = CmpSeq<'a>;
    type SerializeTupleVariant = CmpSeq<'a>;
    type SerializeMap = CmpMap<'a>;
    type SerializeStruct = CmpMap<'a>;
    type SerializeStructVariant = CmpMap<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Differs> {
        check(*self.desired == Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), Differs> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Differs> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Differs> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Differs> {
        self.number(|d| d.as_i64() == Some(v) || d.as_f64() == Some(v as f64))
    }
    fn serialize_u8(self, v: u8) -> Result<(), Differs> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Differs> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Differs> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Differs> {
        self.number(|d| d.as_u64() == Some(v) || d.as_f64() == Some(v as f64))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Differs> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Differs> {
        self.number(|d| d.as_f64() == Some(v))
    }
    fn serialize_char(self, v: char) -> Result<(), Differs> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Differs> {
        check(match self.desired {
            Value::String(d) => d == v || (self.ctx == Ctx::Quantity && quantity_eq(d, v)),
            _ => false,
        })
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Differs> {
        // serde_json writes bytes as an array of numbers.
        let mut seq = self.seq()?;
        for b in v {
            seq.element(b)?;
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result<(), Differs> {
        check(is_empty(self.desired))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Differs> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Differs> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Differs> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Differs> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Differs> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Differs> {
        let mut m = self.map()?;
        m.field(variant, v)?;
        m.finish()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<CmpSeq<'a>, Differs> {
        self.seq()
    }
    fn serialize_tuple(self, _: usize) -> Result<CmpSeq<'a>, Differs> {
        self.seq()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<CmpSeq<'a>, Differs> {
        self.seq()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<CmpSeq<'a>, Differs> {
        // Not produced by Kubernetes types; never equal to a desired JSON value tusk builds.
        Err(Differs)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<CmpMap<'a>, Differs> {
        self.map()
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<CmpMap<'a>, Differs> {
        self.map()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<CmpMap<'a>, Differs> {
        Err(Differs)
    }
}

/// Whether the API server records tusk (server-side apply) as owning a field that `desired`
/// no longer contains: applying `desired` would then remove it, so the object is not yet as
/// tusk wants it even when `desired` is a subset of it. Reads the `fieldsV1` set of the
/// `tusk` Apply entry of `managedFields`; entries of keyed lists (`k:`, `v:`, `i:`) are not
/// followed (pod templates are covered by their template hash).
pub fn drops_owned_fields(
    desired: &Value,
    managed: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry]>,
) -> bool {
    managed
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            m.manager.as_deref() == Some(crate::plan::FIELD_MANAGER)
                && m.operation.as_deref() == Some("Apply")
        })
        .filter_map(|m| m.fields_v1.as_ref())
        .any(|f| owned_but_unsent(&f.0, desired))
}

fn owned_but_unsent(fields: &Value, desired: &Value) -> bool {
    let Value::Object(f) = fields else {
        return false;
    };
    f.iter().any(|(k, sub)| {
        let Some(name) = k.strip_prefix("f:") else {
            return false;
        };
        match desired.get(name) {
            None => true,
            Some(d) => owned_but_unsent(sub, d),
        }
    })
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
                // Hash the Display digits without allocating a String per number.
                struct Sink<'a>(&'a mut Fnv);
                impl std::fmt::Write for Sink<'_> {
                    fn write_str(&mut self, s: &str) -> std::fmt::Result {
                        self.0.bytes(s.as_bytes());
                        Ok(())
                    }
                }
                let _ = std::fmt::Write::write_fmt(&mut Sink(self), format_args!("{n}"));
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

    #[rstest]
    #[case("1Gi", "1073741824", true)]
    #[case("1000m", "1", true)]
    #[case("0.5", "500m", true)]
    #[case("1e3", "1k", true)]
    #[case("1.5Gi", "1536Mi", true)]
    #[case("0", "0m", true)]
    #[case("1Gi", "1G", false)]
    #[case("1", "2", false)]
    #[case("abc", "abc", true)]
    #[case("abc", "abd", false)]
    #[case("1x", "1", false)]
    fn quantities(#[case] a: &str, #[case] b: &str, #[case] eq: bool) {
        assert_eq!(quantity_eq(a, b), eq, "{a} = {b}");
        assert_eq!(quantity_eq(b, a), eq, "{b} = {a}");
    }

    #[test]
    fn quantities_only_where_quantities_live() {
        let d = json!({"resources": {"limits": {"memory": "1Gi"}}, "x": {"sizeLimit": "0.5"}});
        let o =
            json!({"resources": {"limits": {"memory": "1073741824"}}, "x": {"sizeLimit": "500m"}});
        assert!(is_subset(&d, &o));
        assert!(is_subset_of(&d, &o));
        // Elsewhere a string is a string: an env value "1000m" is not "1".
        let d = json!({"env": [{"name": "X", "value": "1000m"}]});
        let o = json!({"env": [{"name": "X", "value": "1"}]});
        assert!(!is_subset(&d, &o));
        assert!(!is_subset_of(&d, &o));
    }

    #[test]
    fn typed_comparison_of_a_kubernetes_object() {
        use k8s_openapi::api::core::v1::PersistentVolumeClaim;
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"a": "1"}, "uid": "u"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1073741824"}}}
        }))
        .unwrap();
        let d = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "p", "labels": {"a": "1"}, "annotations": {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        assert!(is_subset_of(&d, &pvc));
        let mut d2 = d.clone();
        d2["metadata"]["labels"]["b"] = json!("2");
        assert!(!is_subset_of(&d2, &pvc), "a missing label");
        let mut d3 = d.clone();
        d3["spec"]["accessModes"] = json!(["ReadWriteOnce", "ReadOnlyMany"]);
        assert!(!is_subset_of(&d3, &pvc), "a longer list");
        let mut d4 = d;
        d4["spec"]["storageClassName"] = json!("fast");
        assert!(!is_subset_of(&d4, &pvc), "a field the object lacks");
    }

    #[test]
    fn owned_fields_no_longer_sent() {
        let f = json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}},
            "f:spec": {"f:ports": {"k:{\"port\":1}": {"f:name": {}}}}});
        let d =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"ports": [{"port": 1}]}});
        assert!(!owned_but_unsent(&f, &d));
        let d = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [{"port": 1}]}});
        assert!(owned_but_unsent(&f, &d));
        let d = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        assert!(owned_but_unsent(&f, &d));
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(|n| json!(n)),
            Just(json!(1.0)),
            prop::sample::select(vec!["a", "1", "1Gi", "1073741824", ""]).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["a", "b", "limits", "requests"])
                        .prop_map(String::from),
                    inner,
                    0..3
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Drops some keys of `o` (recursively), so that `(prune(o), o)` is often a subset pair.
    fn prune(o: &Value, bits: &mut impl Iterator<Item = bool>) -> Value {
        match o {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    if bits.next().unwrap_or(true) {
                        out.insert(k.clone(), prune(v, bits));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| prune(v, bits)).collect()),
            v => v.clone(),
        }
    }

    proptest::proptest! {
        /// The typed walk and the JSON comparison are the same relation (a `Value` serialises
        /// through the same serde calls a typed object does).
        #[test]
        fn typed_walk_agrees_with_json_comparison(
            d in json_value(),
            o in json_value(),
            bits in proptest::collection::vec(proptest::bool::ANY, 0..32),
        ) {
            proptest::prop_assert_eq!(is_subset_of(&d, &o), is_subset(&d, &o), "{} vs {}", d, o);
            let p = prune(&o, &mut bits.into_iter());
            proptest::prop_assert_eq!(is_subset_of(&p, &o), is_subset(&p, &o), "{} vs {}", p, o);
            proptest::prop_assert!(is_subset(&p, &o), "a pruned copy is a subset: {} vs {}", p, o);
        }
    }

    #[test]
    fn hash_is_structural() {
        assert_eq!(
            hash_value(&json!({"a": 1, "b": [1, "x"]})),
            hash_value(&json!({"b": [1, "x"], "a": 1}))
        );
        assert_ne!(hash_value(&json!({"a": "1"})), hash_value(&json!({"a": 1})));
        // Numbers hash as `#` and their Display digits (stable stored hashes depend on it).
        for n in [json!(0), json!(-17), json!(12345678901u64), json!(1.5)] {
            let mut h = Fnv(0xcbf2_9ce4_8422_2325);
            h.bytes(format!("#{n}").as_bytes());
            assert_eq!(hash_value(&n), h.0, "{n}");
        }
        assert_ne!(
            hash_value(&json!(["ab", "c"])),
            hash_value(&json!(["a", "bc"]))
        );
    }
}
