//! Scheduled backups: `spec.backups.pgbackrest.repos[].schedules.{full,differential,incremental}`.
//!
//! Level-based, no timer: at every reconcile the core computes, for each schedule, the latest
//! instant `due <= now` (UTC, standard 5-field cron). The schedule "has fired" for `due` when a
//! PerconaPGBackup labelled with the schedule carries a `scheduled-at` annotation at or after
//! `due`. If none does, one PerconaPGBackup is applied, named after `due`. Consequences:
//!
//! - an outage of N periods fires once, for the latest missed instant (earlier ones are older
//!   than `due`, so they are never considered);
//! - repeated reconciles, stale reads and crashes between "apply" and "observe" cannot fire
//!   twice: the name is a function of the instant, so a second apply is the same object;
//! - instants before the cluster's creation never fire (a new cluster does not start with a
//!   backup for last week's slot).
//!
//! The reconcile is requeued at the next instant of any schedule.

use super::{BackupKind, annotations, labels as blabels};
use crate::api::PerconaPGCluster;
use crate::api::backup::PerconaPGBackup;
use crate::labels;
use crate::observed::{annotation, label};
use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::time::Duration;

/// A schedule that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "schedule {kind} of {repo} ({expr:?}) is not a valid 5-field cron expression: {reason}; \
     fix spec.backups.pgbackrest.repos[{repo}].schedules.{kind}"
)]
pub struct ScheduleError {
    pub repo: String,
    pub kind: &'static str,
    pub expr: String,
    pub reason: String,
}

/// One configured schedule of one repository.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub repo: String,
    pub kind: BackupKind,
    pub expr: String,
    cron: std::sync::Arc<Cron>,
}

/// Parses a standard 5-field cron expression (minute hour day-of-month month day-of-week;
/// `@daily` and friends too). Seconds and years are refused: upstream uses robfig/cron's
/// standard parser.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    crate::validate::memo_cron(1, expr, parse_cron_uncached).map(|c| (*c).clone())
}

fn parse_cron_uncached(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !expr.trim_start().starts_with('@') && fields != 5 {
        return Err(format!("expected 5 fields, found {fields}"));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

fn to_chrono(t: Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(t.as_second(), 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn from_chrono(t: DateTime<Utc>) -> Option<Timestamp> {
    Timestamp::from_second(t.timestamp()).ok()
}

impl Schedule {
    pub fn new(repo: &str, kind: BackupKind, expr: &str) -> Result<Self, ScheduleError> {
        let cron = crate::validate::memo_cron(1, expr, parse_cron_uncached).map_err(|reason| {
            ScheduleError {
                repo: repo.to_string(),
                kind: kind.schedule_key(),
                expr: expr.to_string(),
                reason,
            }
        })?;
        Ok(Self {
            repo: repo.to_string(),
            kind,
            expr: expr.to_string(),
            cron,
        })
    }

    /// The latest instant `<= now`, if the schedule ever matched (looked for within a year).
    pub fn latest_due(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_previous_occurrence(&to_chrono(now), true)
            .ok()
            .and_then(from_chrono)
    }

    /// The first instant strictly after `now`.
    pub fn next_due(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&to_chrono(now), false)
            .ok()
            .and_then(from_chrono)
    }

    /// Value of the schedule label: `<repo>-<full|diff|incr>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.repo, self.kind.pgbackrest_type())
    }
}

/// Every schedule of the cluster, with the ones that do not parse as errors.
pub fn schedules(cr: &PerconaPGCluster) -> (Vec<Schedule>, Vec<ScheduleError>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for repo in cr.repos() {
        let Some(s) = &repo.schedules else { continue };
        for (key, expr) in s.iter() {
            let Some(kind) = BackupKind::from_schedule_key(key) else {
                continue;
            };
            match Schedule::new(&repo.name, kind, expr) {
                Ok(s) => ok.push(s),
                Err(e) => bad.push(e),
            }
        }
    }
    (ok, bad)
}

/// `yyyymmddhhmm` of an instant (UTC): short, sortable, and a valid name part.
pub fn instant_suffix(t: Timestamp) -> String {
    t.strftime("%Y%m%d%H%M").to_string()
}

/// Name of the PerconaPGBackup a schedule creates for `instant`:
/// `<cluster>-<repo>-<full|diff|incr>-<yyyymmddhhmm>`.
pub fn scheduled_backup_name(cluster: &str, s: &Schedule, instant: Timestamp) -> String {
    format!(
        "{cluster}-{}-{}-{}",
        s.repo,
        s.kind.pgbackrest_type(),
        instant_suffix(instant)
    )
}

/// The instant a scheduled PerconaPGBackup was created for, from its annotation.
pub fn scheduled_at(b: &PerconaPGBackup) -> Option<Timestamp> {
    annotation(&b.metadata, annotations::SCHEDULED_AT).and_then(|v| v.parse().ok())
}

/// Whether the schedule already fired at or after `due`.
pub fn fired_since(backups: &[PerconaPGBackup], s: &Schedule, due: Timestamp) -> bool {
    let id = s.id();
    backups.iter().any(|b| {
        label(&b.metadata, blabels::SCHEDULE) == Some(id.as_str())
            && scheduled_at(b).is_some_and(|at| at >= due)
    })
}

/// The PerconaPGBackup a schedule creates, owned by the cluster.
pub fn scheduled_backup(cr: &PerconaPGCluster, s: &Schedule, instant: Timestamp) -> Value {
    let cluster = cr.metadata.name.as_deref().unwrap_or("");
    let ns = cr.metadata.namespace.as_deref().unwrap_or("default");
    json!({
        "apiVersion": crate::api::defaults::API_VERSION,
        "kind": "PerconaPGBackup",
        "metadata": {
            "name": scheduled_backup_name(cluster, s, instant),
            "namespace": ns,
            "labels": {
                labels::CLUSTER: cluster,
                labels::PGBACKREST_REPO: s.repo,
                blabels::BACKUP: "scheduled",
                blabels::SCHEDULE: s.id(),
            },
            "annotations": {
                annotations::SCHEDULED_AT: super::rfc3339(instant),
                annotations::SCHEDULE: s.expr,
            },
            // Present from creation: tusk never applies a metadata-only patch to an object it
            // created (server-side apply would drop the rest of it).
            "finalizers": [super::finalizers::DELETE_BACKUP],
            "ownerReferences": [{
                "apiVersion": crate::api::defaults::API_VERSION,
                "kind": "PerconaPGCluster",
                "name": cluster,
                "uid": cr.metadata.uid.as_deref().unwrap_or(""),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "pgCluster": cluster,
            "repoName": s.repo,
            "options": [format!("--type={}", s.kind.pgbackrest_type())],
        },
    })
}

/// What the schedules ask for at `now`.
#[derive(Debug, Default)]
pub struct Decision {
    /// PerconaPGBackups to apply.
    pub create: Vec<Value>,
    /// When the next instant of any schedule comes.
    pub requeue: Option<Duration>,
    pub errors: Vec<ScheduleError>,
}

/// Decides which scheduled backups to create now. Nothing fires while the cluster is paused,
/// being deleted, or has backups disabled; the missed instant fires once afterwards.
pub fn decide(cr: &PerconaPGCluster, backups: &[PerconaPGBackup], now: Timestamp) -> Decision {
    let mut d = Decision::default();
    if !cr.spec.backups.is_enabled() || cr.metadata.deletion_timestamp.is_some() {
        return d;
    }
    let (list, errors) = schedules(cr);
    d.errors = errors;
    let created = cr.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let cluster = cr.metadata.name.as_deref().unwrap_or("");
    for s in &list {
        if let Some(next) = s.next_due(now) {
            let wait = Duration::from_secs(
                u64::try_from(next.as_second() - now.as_second())
                    .unwrap_or(0)
                    .max(1),
            );
            d.requeue = Some(d.requeue.map_or(wait, |r| r.min(wait)));
        }
        if cr.is_paused() {
            continue;
        }
        let Some(due) = s.latest_due(now) else {
            continue;
        };
        // Without a creation time (never so for an object read from the API) nothing says
        // whether `due` predates the cluster: do not fire.
        if created.is_none_or(|c| due < c) {
            continue;
        }
        let name = scheduled_backup_name(cluster, s, due);
        let exists = backups
            .iter()
            .any(|b| b.metadata.name.as_deref() == Some(name.as_str()));
        if exists || fired_since(backups, s, due) {
            continue;
        }
        d.create.push(scheduled_backup(cr, s, due));
    }
    d
}
