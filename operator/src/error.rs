//! Errors of the `tusk` command line, each printed as one line that says what failed, on which
//! object, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}; check the path and permissions")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: the file holds no document; expected one PerconaPGCluster")]
    Empty { path: PathBuf },
    #[error("{path}: expected {expected}, found {found}")]
    WrongKind {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    /// Field errors, printed one per line (`spec.path: message`).
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("{0}")]
    Unavailable(String),
    #[error(
        "cannot connect to Kubernetes: {0}; set --kubeconfig or KUBECONFIG, or run in a cluster"
    )]
    Connect(String),
    #[error("cannot bind {address}: {source}; choose another address or port")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}; choose another path")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// Lines to print on stderr: field errors one per line, others a single line.
    pub fn lines(&self) -> Vec<String> {
        match self {
            CliError::Invalid(lines) => lines.clone(),
            other => vec![format!("error: {}", one_line(&other.to_string()))],
        }
    }
}

/// Collapse a message onto one line so a user never sees a wrapped multi-line dump.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
