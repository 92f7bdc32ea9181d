//! Structured logs: JSON in a cluster (or when asked), human-readable otherwise, to stderr so
//! that stdout stays clean for `tusk crds` and `tusk render`.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_new(level)
        .or_else(|_| EnvFilter::try_new(level.to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => {
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
                || std::env::var("LOG_STRUCTURED").is_ok_and(|v| v == "true")
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}
