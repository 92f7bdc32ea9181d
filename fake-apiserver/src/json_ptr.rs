//! JSON Pointer lookups that do not allocate. `serde_json::Value::pointer` builds two strings
//! per token to unescape it; the controllers and the store look up paths such as
//! `/status/phase` on every object of every round, so the world spent much of its time in
//! the allocator. Tokens without `~` are borrowed as they are.

use serde_json::Value;
use std::borrow::Cow;

pub trait At {
    /// As `serde_json::Value::pointer` (RFC 6901), without allocating for plain tokens.
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |target, raw| {
            let token: Cow<'_, str> = if raw.contains('~') {
                Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(raw)
            };
            match target {
                Value::Object(map) => map.get(token.as_ref()),
                Value::Array(list) => index(&token).and_then(|i| list.get(i)),
                _ => None,
            }
        })
    }
}

/// An array index as RFC 6901 allows it: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::At;
    use serde_json::json;

    #[test]
    fn answers_as_serde_json_pointer() {
        let doc = json!({
            "metadata": {"annotations": {"a/b": "slash", "c~d": "tilde", "~1": "literal"},
                         "labels": {"": "empty key"}},
            "list": [10, {"x": [true]}],
            "": {"": 1}
        });
        for p in [
            "",
            "/",
            "//",
            "/metadata",
            "/metadata/annotations/a~1b",
            "/metadata/annotations/c~0d",
            "/metadata/annotations/~01",
            "/metadata/labels/",
            "/list/0",
            "/list/1/x/0",
            "/list/01",
            "/list/+1",
            "/list/2",
            "/list/-",
            "/missing/x",
            "metadata",
            "/metadata/annotations/a/b",
            "/list/1/x/0/deeper",
        ] {
            assert_eq!(doc.at(p), doc.pointer(p), "pointer {p:?}");
        }
    }
}
