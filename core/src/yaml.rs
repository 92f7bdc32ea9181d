//! Reading a user's YAML the way `kubectl apply -f` reads it.
//!
//! kubectl turns YAML into JSON with sigs.k8s.io/yaml, which parses with go-yaml v2: YAML 1.1
//! scalars. There an unquoted `y`, `Y`, `yes`, `Yes`, `YES`, `on`, `On`, `ON` is the boolean
//! true and `n`, `N`, `no`, `No`, `NO`, `off`, `Off`, `OFF` is false, besides the
//! `true`/`True`/`TRUE`/`false`/`False`/`FALSE` that YAML 1.2 (serde_yaml) also knows. So a
//! `cr.yaml` with `enabled: yes` is a boolean for the API server, and an unquoted `yes` in a
//! string field reaches the API server as `true`, which it rejects for that field. A quoted
//! `"yes"` stays a string in both. Mapping keys become strings as sigs.k8s.io/yaml makes them:
//! a key `on:` is `"true"`, a key `1:` is `"1"`.
//!
//! [`documents`] reads a stream with serde_yaml and applies the YAML 1.1 booleans on top: a
//! scalar serde_yaml leaves as a string is one of those words written plainly (not quoted, not
//! tagged) when its text, borrowed from the input, is not preceded by a quote or a tag. It
//! records where it did so, so that a type error on such a field can say why
//! ([`explain`]).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// One YAML document read as kubectl reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// The plain scalars that are booleans only in YAML 1.1, in document order.
    pub yaml11_booleans: Vec<Yaml11Boolean>,
}

/// A plain scalar such as `yes` or `off` read as a boolean, at `path` (serde_yaml's path
/// notation: `spec.users[0].password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yaml11Boolean {
    pub path: String,
    pub word: String,
}

/// Every document of a YAML stream (empty documents are `null`).
pub fn documents(text: &str) -> Result<Vec<Document>, serde_yaml::Error> {
    let mut out = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        out.push(document(text, de)?);
    }
    Ok(out)
}

/// A single-document YAML text as kubectl reads it.
pub fn from_str(text: &str) -> Result<Value, serde_yaml::Error> {
    document(text, serde_yaml::Deserializer::from_str(text)).map(|d| d.value)
}

fn document<'de>(
    text: &str,
    de: serde_yaml::Deserializer<'de>,
) -> Result<Document, serde_yaml::Error> {
    let mut ctx = Ctx {
        text,
        path: Vec::new(),
        found: Vec::new(),
    };
    let value = ValueSeed { ctx: &mut ctx }.deserialize(de)?;
    Ok(Document {
        value,
        yaml11_booleans: ctx.found,
    })
}

/// `line` (an error such as `spec.image: invalid type: boolean `true`, expected a string`)
/// with a hint when the field it names was one of the YAML 1.1 words.
pub fn explain(line: &str, booleans: &[Yaml11Boolean]) -> String {
    for b in booleans {
        if line
            .strip_prefix(b.path.as_str())
            .is_some_and(|rest| rest.starts_with(": "))
        {
            return format!(
                "{line} (the unquoted `{}` is a boolean in YAML 1.1, as kubectl reads it; \
                 write \"{}\" to keep it a string)",
                b.word, b.word
            );
        }
    }
    line.to_string()
}

/// The YAML 1.1 boolean words YAML 1.2 does not have.
fn yaml11_word(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

struct Ctx<'t> {
    text: &'t str,
    path: Vec<Seg>,
    found: Vec<Yaml11Boolean>,
}

/// The boolean a borrowed string scalar `s` of `text` is in YAML 1.1, when it is one of the
/// words and was written plainly (not quoted, not tagged).
fn plain_yaml11(text: &str, s: &str) -> Option<bool> {
    let b = yaml11_word(s)?;
    let at = (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    if at + s.len() > text.len() {
        return None;
    }
    let before = &text.as_bytes()[..at];
    if matches!(before.last(), Some(b'"' | b'\'')) {
        return None; // quoted
    }
    // A tag (`!!str yes`, `!foo yes`) is the token before the scalar on its line.
    let line = before
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(before, |i| &before[i + 1..]);
    let trimmed = line.trim_ascii_end();
    let token_start = trimmed
        .iter()
        .rposition(|c| c.is_ascii_whitespace() || matches!(c, b'[' | b'{' | b','))
        .map_or(0, |i| i + 1);
    if trimmed.len() < line.len() && trimmed.get(token_start) == Some(&b'!') {
        return None;
    }
    Some(b)
}

impl Ctx<'_> {
    fn path_string(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

struct ValueSeed<'c, 't> {
    ctx: &'c mut Ctx<'t>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value, E> {
        match plain_yaml11(self.ctx.text, v) {
            Some(b) => {
                let path = self.ctx.path_string();
                self.ctx.found.push(Yaml11Boolean {
                    path,
                    word: v.to_string(),
                });
                Ok(Value::Bool(b))
            }
            None => Ok(Value::String(v.to_string())),
        }
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.ctx.path.push(Seg::Index(out.len()));
            let next = seq.next_element_seed(ValueSeed {
                ctx: &mut *self.ctx,
            });
            self.ctx.path.pop();
            match next? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // YAML 1.1 merge keys (`<<: *defaults` or `<<: [*a, *b]`), which go-yaml v2 applies:
        // the merged mappings fill in what the mapping itself does not set, the earlier of
        // several first.
        let mut merged: Vec<Map<String, Value>> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed {
            text: self.ctx.text,
        })? {
            self.ctx.path.push(Seg::Key(key.clone()));
            let value = map.next_value_seed(ValueSeed {
                ctx: &mut *self.ctx,
            });
            self.ctx.path.pop();
            let value = value?;
            if key == "<<" {
                match value {
                    Value::Object(m) => merged.push(m),
                    Value::Array(items) if items.iter().all(Value::is_object) => {
                        merged.extend(items.into_iter().filter_map(|v| match v {
                            Value::Object(m) => Some(m),
                            _ => None,
                        }))
                    }
                    _ => {
                        return Err(de::Error::custom(
                            "a merge key (<<) takes a mapping or a list of mappings",
                        ));
                    }
                }
                continue;
            }
            out.insert(key, value);
        }
        for m in merged {
            for (k, v) in m {
                out.entry(k).or_insert(v);
            }
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key as sigs.k8s.io/yaml writes it into JSON: booleans (YAML 1.1 words included)
/// and numbers become their text.
struct KeySeed<'t> {
    text: &'t str,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<String, E> {
        Ok(match plain_yaml11(self.text, v) {
            Some(b) => b.to_string(),
            None => v.to_string(),
        })
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
}
