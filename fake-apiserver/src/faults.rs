//! API-level fault injection: chosen requests fail (409, 429, 5xx with Retry-After), are
//! delayed, or read an older revision. A failed request changes nothing: faults are decided
//! before the request touches the store.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use std::time::Duration;

/// Which requests a rule hits. Empty / None fields match anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultMatch {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verbs: Vec<String>,
    /// Plural (`pods`) or group-qualified (`statefulsets.apps`).
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl FaultMatch {
    pub fn verbs(verbs: &[&str]) -> Self {
        Self {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn resource(mut self, r: &str) -> Self {
        self.resource = Some(r.into());
        self
    }

    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.into());
        self
    }

    pub fn namespace(mut self, n: &str) -> Self {
        self.namespace = Some(n.into());
        self
    }

    fn hits(&self, verb: &str, info: &ResourceInfo, ns: Option<&str>, name: Option<&str>) -> bool {
        (self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb))
            && self
                .resource
                .as_deref()
                .is_none_or(|r| r == info.plural || r == info.group_resource())
            && self.namespace.as_deref().is_none_or(|n| Some(n) == ns)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
    }
}

/// What happens to a request a rule hits.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// 409 Conflict, worded as the optimistic-concurrency failure.
    Conflict,
    /// Any error code (429 TooManyRequests, 500, 503, 504 ...), with Retry-After seconds.
    Error { code: u16, retry_after: Option<u64> },
    /// The HTTP front delays the response; in-process drivers ignore it.
    Latency(Duration),
    /// Reads (get, list) are served as of this older revision.
    StaleRead { revision: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub matcher: FaultMatch,
    pub action: FaultAction,
    /// How many more requests it hits; None means until cleared.
    pub remaining: Option<u32>,
}

/// The decision for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultOutcome {
    pub error: Option<ApiError>,
    pub latency: Duration,
    pub stale_revision: Option<u64>,
}

/// The installed fault rules (reach them with `ApiServer::faults` or `Store::faults`).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    /// How many requests each rule has failed so far, in installation order.
    pub injected: u64,
}

fn reason_for(code: u16) -> &'static str {
    match code {
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        409 => "Conflict",
        410 => "Expired",
        403 => "Forbidden",
        _ => "InternalError",
    }
}

impl Faults {
    pub fn inject(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    /// The next `n` matching requests get 409 Conflict.
    pub fn conflict_next(&mut self, n: u32, matcher: FaultMatch) {
        self.inject(FaultRule {
            matcher,
            action: FaultAction::Conflict,
            remaining: Some(n),
        });
    }

    /// The next `n` matching requests fail with `code` and Retry-After.
    pub fn error_next(&mut self, n: u32, code: u16, retry_after: Option<u64>, matcher: FaultMatch) {
        self.inject(FaultRule {
            matcher,
            action: FaultAction::Error { code, retry_after },
            remaining: Some(n),
        });
    }

    /// Matching reads see revision `revision` until cleared.
    pub fn stale_reads(&mut self, revision: u64, matcher: FaultMatch) {
        self.inject(FaultRule {
            matcher,
            action: FaultAction::StaleRead { revision },
            remaining: None,
        });
    }

    pub fn latency(&mut self, d: Duration, matcher: FaultMatch) {
        self.inject(FaultRule {
            matcher,
            action: FaultAction::Latency(d),
            remaining: None,
        });
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Decide the fate of one request (consumes counted rules).
    pub fn check(
        &mut self,
        verb: &str,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> FaultOutcome {
        let mut out = FaultOutcome::default();
        for r in &mut self.rules {
            if r.remaining == Some(0) || !r.matcher.hits(verb, info, ns, name) {
                continue;
            }
            let is_read = matches!(verb, "get" | "list");
            match &r.action {
                FaultAction::Conflict | FaultAction::Error { .. } if out.error.is_some() => {
                    continue;
                }
                FaultAction::Conflict => {
                    out.error = Some(ApiError::conflict(info, name.unwrap_or_default()));
                }
                FaultAction::Error { code, retry_after } => {
                    let mut e = ApiError::new(
                        *code,
                        reason_for(*code),
                        format!("injected fault: {} {}", verb, info.group_resource()),
                    );
                    e.retry_after = *retry_after;
                    out.error = Some(e);
                }
                FaultAction::Latency(d) => out.latency += *d,
                FaultAction::StaleRead { revision } if is_read => {
                    out.stale_revision = Some(*revision)
                }
                FaultAction::StaleRead { .. } => continue,
            }
            if let Some(n) = &mut r.remaining {
                *n -= 1;
            }
            if out.error.is_some() {
                self.injected += 1;
            }
        }
        self.rules.retain(|r| r.remaining != Some(0));
        out
    }
}
