//! Injected time. The store never reads the wall clock itself: a deterministic driver hands it a
//! [`ManualClock`], the standalone binary a [`SystemClock`].

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};

/// A source of "now" for the store's semantics.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real time; only for interactive use (the standalone binary, `tusk up`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// 2025-01-01T00:00:00Z, a fixed start for tests.
    pub fn at_epoch_2025() -> Self {
        Self::new(Timestamp::from_second(1_735_689_600).expect("valid constant"))
    }

    pub fn set(&self, t: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    pub fn advance(&self, d: SignedDuration) {
        let mut g = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *g = g.checked_add(d).unwrap_or(*g);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// RFC 3339 with second precision, as the API server writes metav1.Time.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parse an RFC 3339 timestamp as found in object metadata.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}
