//! `tusk crds`, `tusk validate` and `tusk render`: the core, exposed on the command line.

use crate::core_glue::{self, API_VERSION, BACKUP_KIND, CLUSTER_KIND, RESTORE_KIND};
use crate::error::{CliError, one_line};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// `tusk crds`
pub fn crds() -> Result<String, CliError> {
    core_glue::crds_yaml().map_err(CliError::Unavailable)
}

/// `tusk validate -f FILE`: Ok(summary line) when every document is valid.
pub fn validate(path: &Path) -> Result<String, CliError> {
    let docs = read_documents(path)?;
    let mut errors = Vec::new();
    let mut names = Vec::new();
    for user_doc in &docs {
        let doc = &user_doc.value;
        let kind = check_kind(path, doc, &[CLUSTER_KIND, BACKUP_KIND, RESTORE_KIND])?;
        warn_unknown_fields(kind, doc);
        let result = if kind == CLUSTER_KIND {
            core_glue::validate_cluster(doc)
        } else {
            core_glue::validate_other(kind, doc)
        };
        match result {
            Ok(()) => names.push(format!("{kind} {}", doc_name(doc))),
            Err(lines) => errors.extend(
                lines
                    .iter()
                    .map(|l| one_line(&core_glue::explain_error(l, user_doc))),
            ),
        }
    }
    if errors.is_empty() {
        Ok(format!("{}: valid", names.join(", ")))
    } else {
        Err(CliError::Invalid(errors))
    }
}

/// One `warning: path: unknown field; it is ignored` line on stderr per unknown field; the
/// document stays valid (the API server drops such fields).
fn warn_unknown_fields(kind: &str, doc: &serde_json::Value) {
    for w in core_glue::unknown_field_warnings(kind, doc) {
        eprintln!("warning: {kind} {}: {}", doc_name(doc), one_line(&w));
    }
}

/// `tusk render -f FILE --seed N`: the objects as multi-document YAML.
pub fn render(path: &Path, seed: u64) -> Result<String, CliError> {
    let docs = read_documents(path)?;
    let [user_doc] = docs.as_slice() else {
        return Err(CliError::Other(format!(
            "{}: holds {} documents; render takes exactly one PerconaPGCluster",
            path.display(),
            docs.len()
        )));
    };
    let doc = &user_doc.value;
    check_kind(path, doc, &[CLUSTER_KIND])?;
    warn_unknown_fields(CLUSTER_KIND, doc);
    let objects = core_glue::render_cluster(doc, seed).map_err(|lines| {
        CliError::Invalid(
            lines
                .iter()
                .map(|l| one_line(&core_glue::explain_error(l, user_doc)))
                .collect(),
        )
    })?;
    Ok(to_multi_doc(&objects))
}

/// Objects as a multi-document YAML stream (`---` between documents).
pub fn to_multi_doc(objects: &[Value]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&to_yaml(object));
    }
    out
}

fn to_yaml(value: &Value) -> String {
    // Serializing a JSON value to YAML cannot fail: all keys are strings.
    serde_yaml::to_string(value).unwrap_or_default()
}

fn doc_name(doc: &Value) -> &str {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
}

/// Read a file (or stdin for `-`) as a YAML stream, skipping empty documents. The YAML is read
/// as kubectl reads it (YAML 1.1 booleans), since that is what the API server would receive.
pub fn read_documents(path: &Path) -> Result<Vec<core_glue::UserDocument>, CliError> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_documents(path, &text)
}

pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<core_glue::UserDocument>, CliError> {
    let docs: Vec<_> = core_glue::read_user_yaml(text)
        .map_err(|message| CliError::Yaml {
            path: path.to_path_buf(),
            message,
        })?
        .into_iter()
        .filter(|d| !d.value.is_null())
        .collect();
    if docs.is_empty() {
        return Err(CliError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(docs)
}

/// The document's kind when it is one of `allowed` with our apiVersion.
fn check_kind<'a>(path: &Path, doc: &Value, allowed: &[&'a str]) -> Result<&'a str, CliError> {
    let expected = if allowed.len() == 1 {
        "kind PerconaPGCluster with apiVersion pgv2.percona.com/v2"
    } else {
        "kind PerconaPGCluster, PerconaPGBackup or PerconaPGRestore with apiVersion pgv2.percona.com/v2"
    };
    let wrong = |found: String| CliError::WrongKind {
        path: path.to_path_buf(),
        expected,
        found,
    };
    let Some(map) = doc.as_object() else {
        return Err(wrong(format!("a YAML {}", json_type(doc))));
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match allowed.iter().find(|k| **k == kind) {
        Some(k) if api_version == API_VERSION => Ok(k),
        _ if kind.is_empty() => Err(wrong("a document without kind".into())),
        _ => Err(wrong(format!(
            "kind {kind:?} with apiVersion {api_version:?}"
        ))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_kind_is_one_line() {
        let docs = parse_documents(Path::new("x.yaml"), "apiVersion: v1\nkind: Pod\n").unwrap();
        let err = check_kind(Path::new("x.yaml"), &docs[0].value, &[CLUSTER_KIND]).unwrap_err();
        let lines = err.lines();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("expected kind PerconaPGCluster"),
            "{lines:?}"
        );
        assert!(lines[0].contains("\"Pod\""), "{lines:?}");
    }

    #[test]
    fn yaml_error_is_one_line() {
        let err = parse_documents(Path::new("x.yaml"), "a: [1, 2\nb: }").unwrap_err();
        let lines = err.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("error: x.yaml: not valid YAML"),
            "{lines:?}"
        );
    }

    #[test]
    fn empty_stream_is_rejected() {
        let err = parse_documents(Path::new("x.yaml"), "---\n").unwrap_err();
        assert!(matches!(err, CliError::Empty { .. }));
    }

    #[test]
    fn scalar_document_is_wrong_kind() {
        let docs = parse_documents(Path::new("x.yaml"), "hello").unwrap();
        let err = check_kind(Path::new("x.yaml"), &docs[0].value, &[CLUSTER_KIND]).unwrap_err();
        assert!(err.to_string().contains("a YAML string"), "{err}");
    }
}
