//! pgBackRest as the world sees it: per cluster, a WAL archive fed by the primary's LSN and
//! per repo the backups (full/diff/incr, with start/stop LSN and time), expired by the
//! `repoN-retention-full` / `-diff` options of the cluster. The model runs the pgBackRest Jobs
//! tusk creates:
//!
//! - a backup Job (label `pgv2.percona.com/pg-backup`, or the replica-create backup labelled
//!   `postgres-operator.crunchydata.com/pgbackrest-backup`) succeeds with a new backup set when a
//!   primary runs and the object store is reachable, and fails with the reason otherwise;
//! - a restore Job (label `postgres-operator.crunchydata.com/pgbackrest-restore`, container
//!   `pgbackrest-restore`) writes the target instance's data directory: the newest backup that
//!   ended before the target time plus the archived WAL up to it (`--type=time
//!   --target=...`), or to the end of the archive; PostgreSQL then ends recovery on a new
//!   timeline. It fails when no backup qualifies;
//! - a re-init Job (`restore-reinit` in its name) empties an instance's data directory.
//!
//! After every change, the ConfigMap `<cluster>-pgbackrest-info` carries `pgbackrest info
//! --output=json` for the core (see `tusk_core::backup::retention`).
//!
//! What restores produced is kept in [`PgBackRest::restores`], so a test compares the restored
//! data with the workload's acknowledged writes.

use super::patroni::{Infra, Patroni};
use super::postgres::DataDir;
use crate::clock::{Millis, parse_rfc3339, rfc3339, to_timestamp};
use crate::labels;
use crate::store::{ModelApi, peek};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tusk_fake_apiserver::Objects;

/// Label of backup Jobs naming their PerconaPGBackup.
const PG_BACKUP: &str = "pgv2.percona.com/pg-backup";
/// Label of restore and re-init Jobs naming their PerconaPGRestore.
const PG_RESTORE: &str = "pgv2.percona.com/pg-restore";
/// Annotation a backup carries with its PerconaPGBackup's name.
const BACKUP_NAME: &str = "percona.com/backup-name";

/// Backup type as pgBackRest names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Diff,
    Incr,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Diff => "diff",
            Kind::Incr => "incr",
        }
    }
}

/// One backup set in a repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSet {
    pub label: String,
    pub kind: Kind,
    /// The backup this one depends on (diff → full, incr → any).
    pub prior: Option<String>,
    pub backup_name: Option<String>,
    pub start: Millis,
    pub stop: Millis,
    pub start_lsn: u64,
    pub stop_lsn: u64,
    pub timeline: u32,
}

/// One point of the WAL archive: the primary's WAL as archived at `at`, up to `lsn`.
///
/// The archive gains a point whenever the primary's LSN moved, so a long run holds thousands
/// of them; consecutive points that differ only in their LSN share one copy of the rest of
/// the data directory (timeline history, roles, databases) instead of each holding its own.
#[derive(Debug, Clone)]
pub struct ArchivePoint {
    pub at: Millis,
    pub lsn: u64,
    /// The data directory without its recent-commit window; its `lsn` is not this point's.
    base: Arc<DataDir>,
}

/// Points are equal when their times and archived data directories are (the shared copy's
/// own LSN is not part of a point).
impl PartialEq for ArchivePoint {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.lsn == other.lsn && same_but_lsn(&self.base, &other.base)
    }
}

impl Eq for ArchivePoint {}

impl ArchivePoint {
    /// The data directory as archived at this point (without the recent-commit window).
    pub fn data(&self) -> DataDir {
        let mut d = (*self.base).clone();
        d.lsn = self.lsn;
        d
    }

    pub fn system_id(&self) -> u64 {
        self.base.system_id
    }

    pub fn timeline(&self) -> u32 {
        self.base.timeline
    }
}

/// A cluster's stanza.
#[derive(Debug, Clone, Default)]
pub struct Stanza {
    /// Backups per repo index (`repo1` → 1), oldest first.
    pub repos: BTreeMap<u32, Vec<BackupSet>>,
    pub archive: Vec<ArchivePoint>,
}

impl Stanza {
    /// The archived WAL position at `t`: the last point archived at or before it.
    pub fn archived_at(&self, t: Millis) -> Option<&ArchivePoint> {
        self.archive.iter().rev().find(|p| p.at <= t)
    }

    /// Archives `d` (its WAL up to `d.lsn`) at `at`, sharing the previous point's copy of
    /// the data directory when only the LSN moved.
    fn push_archive(&mut self, at: Millis, d: &DataDir) {
        let base = match self.archive.last() {
            Some(p) if same_but_lsn(&p.base, d) => Arc::clone(&p.base),
            _ => Arc::new(d.without_recent()),
        };
        self.archive.push(ArchivePoint {
            at,
            lsn: d.lsn,
            base,
        });
    }
}

/// Whether two data directories are equal in all but their LSN and recent-commit window.
fn same_but_lsn(a: &DataDir, b: &DataDir) -> bool {
    a.system_id == b.system_id
        && a.timeline == b.timeline
        && a.was_primary == b.was_primary
        && a.history == b.history
        && a.databases == b.databases
        && a.roles == b.roles
}

/// What one restore Job wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRecord {
    pub job: String,
    pub restore: String,
    pub cluster: String,
    pub pvc: String,
    /// `--target` of a point-in-time restore; None: to the end of the archive.
    pub target: Option<Millis>,
    /// The backup it started from.
    pub backup: String,
    /// The data as recovered (before the promotion that ends recovery).
    pub data: DataDir,
    pub at: Millis,
}

/// The pgBackRest model of a namespace.
#[derive(Debug, Default)]
pub struct PgBackRest {
    pub namespace: String,
    pub stanzas: BTreeMap<String, Stanza>,
    pub restores: Vec<RestoreRecord>,
    /// Failures it reported, `(time, job, reason)`.
    pub failures: Vec<(Millis, String, String)>,
    /// Backups expired by retention, by label.
    pub expired: Vec<String>,
    /// Whether the model itself keeps `<cluster>-pgbackrest-info` current (the world), or
    /// leaves it to the operator reading `pgbackrest info` through exec (`tusk up`).
    pub leaves_info_to_operator: bool,
    /// Per running backup Job (by name): the primary pod it reads from, and whether that
    /// PostgreSQL stopped or stepped down since (the backup's session is then gone).
    sources: BTreeMap<String, BackupSource>,
    wakeups: Vec<Millis>,
    seq: u64,
}

/// Where a running backup reads from.
#[derive(Debug, Clone)]
struct BackupSource {
    pod: Option<String>,
    lost: bool,
}

/// Why a pgBackRest command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("object storage unavailable: repo{repo} could not be reached")]
    StoreDown { repo: u32 },
    #[error("no primary of cluster {cluster} runs: nothing to back up from")]
    NoPrimary { cluster: String },
    #[error("no backup in repo{repo} of cluster {cluster} ended before the target time {target}")]
    NoBackup {
        cluster: String,
        repo: u32,
        target: String,
    },
    #[error("the restore target {0:?} is not a time pgBackRest understands")]
    BadTarget(String),
    #[error("backup set {set} is not in repo{repo} (sets: {known})")]
    NoSuchSet {
        repo: u32,
        set: String,
        known: String,
    },
    #[error(
        "the connection to {pod} was lost during the backup (PostgreSQL stopped or stepped down before pg_backup_stop)"
    )]
    SourceLost { pod: String },
    #[error(
        "repo{repo} is on the repo host, and {pod} is not running: its pgBackRest server cannot be reached"
    )]
    RepoHostDown { repo: u32, pod: String },
}

/// The repo host pod, when `repo` of `cluster` is a volume repo (kept on the repo host, whose
/// pgBackRest TLS server every backup goes through) and that pod's container is not running
/// (its node down, or the pod being deleted).
fn repo_host_unreachable(
    api: &dyn Objects,
    infra: &dyn Infra,
    now: Millis,
    ns: &str,
    cluster: &str,
    repo: u32,
) -> Option<String> {
    let cr = api.get("pgv2.percona.com/v2", "PerconaPGCluster", Some(ns), cluster)?;
    let name = format!("repo{repo}");
    let on_volume = cr["spec"]["backups"]["pgbackrest"]["repos"]
        .as_array()?
        .iter()
        .any(|r| r["name"] == name.as_str() && r["volume"].is_object());
    if !on_volume {
        return None;
    }
    let pod = format!("{}-0", tusk_core::naming::repo_host(cluster));
    let up = api.get("v1", "Pod", Some(ns), &pod).is_some_and(|p| {
        p["metadata"]["deletionTimestamp"].is_null() && infra.container_up(&p, now)
    });
    (!up).then_some(pod)
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn label<'a>(o: &'a Value, k: &str) -> Option<&'a str> {
    o["metadata"]["labels"][k].as_str()
}

/// The shell words of a Job's first container (command and `COMMAND_OPTS`).
fn words(job: &Value) -> Vec<String> {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let mut text = String::new();
    for w in c["command"].as_array().into_iter().flatten() {
        text.push_str(w.as_str().unwrap_or(""));
        text.push(' ');
    }
    for e in c["env"].as_array().into_iter().flatten() {
        if e["name"] == "COMMAND_OPTS" {
            text.push_str(e["value"].as_str().unwrap_or(""));
        }
    }
    // Split on blanks outside quotes, dropping the quotes (enough for tusk's commands).
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in text.chars() {
        match (quote, ch) {
            (None, '"' | '\'') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn opt(words: &[String], key: &str) -> Option<String> {
    let p = format!("--{key}=");
    words
        .iter()
        .rev()
        .find_map(|w| w.strip_prefix(&p).map(str::to_string))
}

/// `2027-01-15 08:30:00+00` (pgBackRest's `--target`) or RFC 3339.
pub fn parse_target(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    let (date, rest) = s.split_once(' ')?;
    let (time, offset) = match rest.find(['+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "+00"),
    };
    let offset = if offset.len() == 3 {
        format!("{offset}:00")
    } else {
        offset.to_string()
    };
    parse_rfc3339(&format!("{date}T{time}{offset}"))
}

/// `repoN-retention-full` / `-diff` of the cluster's `spec.backups.pgbackrest.global`.
fn retention(cr: &Value, repo: u32, kind: &str) -> Option<usize> {
    cr["spec"]["backups"]["pgbackrest"]["global"][format!("repo{repo}-retention-{kind}")]
        .as_str()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
}

impl PgBackRest {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            ..Default::default()
        }
    }

    /// When the model next has something to do (a Job due).
    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        self.wakeups.iter().copied().filter(|t| *t > now).min()
    }

    /// Finishes the pgBackRest Jobs that are due (they run `duration`) and keeps the info
    /// ConfigMaps current. Runs before the built-in Job controller, which then leaves these
    /// Jobs alone. `store_down`: the object store is unreachable.
    pub fn step(
        &mut self,
        api: &mut dyn Objects,
        patroni: &mut Patroni,
        infra: &dyn Infra,
        now: Millis,
        duration: Millis,
        store_down: bool,
    ) {
        self.wakeups.retain(|t| *t > now);
        let ns = self.namespace.clone();
        let mut changed = BTreeSet::new();
        // Only running Jobs are copied out of the store.
        let running = api.list_where("batch/v1", "Job", Some(&ns), &|job| {
            let st = &job["status"];
            st["succeeded"].as_i64().unwrap_or(0) == 0 && st["failed"].as_i64().unwrap_or(0) == 0
        });
        self.sources
            .retain(|job, _| running.iter().any(|j| name(j) == job));
        for job in running {
            // A PerconaPGBackup's Job, or the replica-create backup (Crunchy's label only).
            let is_backup =
                label(&job, PG_BACKUP).is_some() || label(&job, labels::BACKUP).is_some();
            let is_restore = label(&job, PG_RESTORE).is_some();
            if !is_backup && !is_restore {
                continue;
            }
            let start = parse_rfc3339(job["metadata"]["creationTimestamp"].as_str().unwrap_or(""))
                .unwrap_or(now);
            if job["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let mut source_lost = false;
            if is_backup {
                // pgBackRest holds one session on the primary from pg_backup_start to
                // pg_backup_stop: if that PostgreSQL stops or is demoted meanwhile, the
                // backup fails then (whoever leads afterwards).
                let cluster = label(&job, labels::CLUSTER).unwrap_or("");
                let primary = patroni.primary_of(cluster).map(|m| m.pod.clone());
                let source = self
                    .sources
                    .entry(name(&job).to_string())
                    .or_insert_with(|| BackupSource {
                        pod: primary.clone(),
                        lost: false,
                    });
                if source.pod.is_some() && source.pod != primary {
                    source.lost = true;
                }
                source_lost = source.lost;
            }
            if now < start + duration && !source_lost {
                self.wakeups.push(start + duration);
                continue;
            }
            let cluster = label(&job, labels::CLUSTER).unwrap_or("").to_string();
            let lost_source = self
                .sources
                .get(name(&job))
                .filter(|s| is_backup && s.lost)
                .and_then(|s| s.pod.clone());
            let result = if let Some(pod) = lost_source {
                Err(Failure::SourceLost { pod })
            } else if is_backup {
                self.backup(api, patroni, infra, &job, &cluster, start, now, store_down)
            } else if name(&job).contains("restore-reinit") {
                self.reinit(patroni, &job);
                Ok(())
            } else {
                self.restore(patroni, &job, &cluster, now, store_down)
            };
            let mut new = job.clone();
            new["metadata"]["resourceVersion"] = json!("");
            match result {
                Ok(()) => {
                    changed.insert(cluster);
                    new["status"] = json!({"startTime": rfc3339(start), "succeeded": 1,
                        "active": 0, "completionTime": rfc3339(now),
                        "conditions": [{"type": "Complete", "status": "True",
                                        "lastTransitionTime": rfc3339(now)}]});
                }
                Err(f) => {
                    self.failures
                        .push((now, name(&job).to_string(), f.to_string()));
                    new["status"] = json!({"startTime": rfc3339(start), "failed": 1,
                        "active": 0,
                        "conditions": [{"type": "Failed", "status": "True",
                                        "reason": "BackoffLimitExceeded",
                                        "message": format!("pgbackrest: {f}"),
                                        "lastTransitionTime": rfc3339(now)}]});
                }
            }
            let _ = api.update_status(new);
        }
        if !self.leaves_info_to_operator {
            for c in changed {
                self.write_info(api, &c);
            }
        }
    }

    /// The primaries' WAL reaches the archive (archive_command, continuously); call it after
    /// the workload wrote, so a write acknowledged at `now` is archived at `now`. Nothing is
    /// archived while the object store is down.
    pub fn archive(
        &mut self,
        api: &dyn ModelApi,
        patroni: &Patroni,
        now: Millis,
        store_down: bool,
    ) {
        if store_down {
            return;
        }
        let clusters: BTreeSet<String> = patroni
            .members
            .values()
            .map(|m| m.cluster.clone())
            .collect();
        for c in clusters {
            // Only clusters with a repo archive.
            let has_repo = peek(
                api,
                labels::CR_API,
                labels::CR_KIND,
                Some(&self.namespace),
                &c,
                |cr| {
                    cr["spec"]["backups"]["pgbackrest"]["repos"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
                },
            )
            .unwrap_or(false);
            if !has_repo {
                continue;
            }
            let Some(d) = patroni
                .primary_of(&c)
                .and_then(|m| patroni.data.get(&m.pvc))
            else {
                continue;
            };
            let st = self.stanzas.entry(c).or_default();
            let same = st.archive.last().is_some_and(|p| {
                p.system_id() == d.system_id && p.timeline() == d.timeline && p.lsn == d.lsn
            });
            if !same {
                st.push_archive(now, d);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backup(
        &mut self,
        api: &dyn Objects,
        patroni: &Patroni,
        infra: &dyn Infra,
        job: &Value,
        cluster: &str,
        start: Millis,
        now: Millis,
        store_down: bool,
    ) -> Result<(), Failure> {
        let w = words(job);
        let repo = opt(&w, "repo").and_then(|r| r.parse().ok()).unwrap_or(1u32);
        if store_down {
            return Err(Failure::StoreDown { repo });
        }
        if let Some(pod) = repo_host_unreachable(api, infra, now, &self.namespace, cluster, repo) {
            return Err(Failure::RepoHostDown { repo, pod });
        }
        let Some(d) = patroni
            .primary_of(cluster)
            .and_then(|m| patroni.data.get(&m.pvc))
        else {
            return Err(Failure::NoPrimary {
                cluster: cluster.to_string(),
            });
        };
        let st = self.stanzas.entry(cluster.to_string()).or_default();
        let start_lsn = st.archived_at(start).map_or(d.lsn, |p| p.lsn);
        st.push_archive(now, d);
        let sets = st.repos.entry(repo).or_default();
        let last_full = sets.iter().rev().find(|b| b.kind == Kind::Full).cloned();
        // pgBackRest's default type is incr; without a full to build on it takes a full.
        let mut kind = match opt(&w, "type").as_deref() {
            Some("full") => Kind::Full,
            Some("diff") => Kind::Diff,
            _ => Kind::Incr,
        };
        if last_full.is_none() {
            kind = Kind::Full;
        }
        let prior = match kind {
            Kind::Full => None,
            Kind::Diff => last_full.map(|b| b.label),
            Kind::Incr => sets.last().map(|b| b.label.clone()),
        };
        self.seq += 1;
        let stamp = to_timestamp(start).strftime("%Y%m%d-%H%M%S").to_string();
        let label = match (&prior, kind) {
            (Some(p), k) if k != Kind::Full => {
                let base = p.split('_').next().unwrap_or(p);
                format!("{base}_{stamp}{}", if k == Kind::Diff { "D" } else { "I" })
            }
            _ => format!("{stamp}F"),
        };
        let backup_name = w
            .iter()
            .find_map(|x| x.strip_prefix("--annotation="))
            .and_then(|a| a.split_once('='))
            .filter(|(k, _)| *k == BACKUP_NAME)
            .map(|(_, v)| v.to_string());
        sets.push(BackupSet {
            label,
            kind,
            prior,
            backup_name,
            start,
            stop: now,
            start_lsn,
            stop_lsn: d.lsn,
            timeline: d.timeline,
        });
        let cr = api.get(
            labels::CR_API,
            labels::CR_KIND,
            Some(&self.namespace),
            cluster,
        );
        if let Some(cr) = cr {
            self.expire(cluster, repo, &cr);
        }
        Ok(())
    }

    /// Retention: keep the newest `retention-full` fulls (and what depends on them), and
    /// the newest `retention-diff` diffs.
    fn expire(&mut self, cluster: &str, repo: u32, cr: &Value) {
        let Some(sets) = self
            .stanzas
            .get_mut(cluster)
            .and_then(|s| s.repos.get_mut(&repo))
        else {
            return;
        };
        let mut gone: BTreeSet<String> = BTreeSet::new();
        if let Some(n) = retention(cr, repo, "full") {
            let fulls: Vec<&BackupSet> = sets.iter().filter(|b| b.kind == Kind::Full).collect();
            if fulls.len() > n {
                for b in &fulls[..fulls.len() - n] {
                    gone.insert(b.label.clone());
                }
            }
        }
        if let Some(n) = retention(cr, repo, "diff") {
            let diffs: Vec<&BackupSet> = sets.iter().filter(|b| b.kind == Kind::Diff).collect();
            if diffs.len() > n {
                for b in &diffs[..diffs.len() - n] {
                    gone.insert(b.label.clone());
                }
            }
        }
        // Dependants go with what they depend on.
        loop {
            let more: Vec<String> = sets
                .iter()
                .filter(|b| !gone.contains(&b.label))
                .filter(|b| b.prior.as_ref().is_some_and(|p| gone.contains(p)))
                .map(|b| b.label.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            gone.extend(more);
        }
        sets.retain(|b| !gone.contains(&b.label));
        self.expired.extend(gone);
    }

    fn reinit(&mut self, patroni: &mut Patroni, job: &Value) {
        if let Some(i) = label(job, labels::INSTANCE) {
            patroni.data.remove(&format!("{i}-pgdata"));
        }
    }

    fn restore(
        &mut self,
        patroni: &mut Patroni,
        job: &Value,
        cluster: &str,
        now: Millis,
        store_down: bool,
    ) -> Result<(), Failure> {
        let w = words(job);
        let repo = opt(&w, "repo").and_then(|r| r.parse().ok()).unwrap_or(1u32);
        if store_down {
            return Err(Failure::StoreDown { repo });
        }
        let target = if opt(&w, "type").as_deref() == Some("time") {
            let t = opt(&w, "target").unwrap_or_default();
            Some(parse_target(&t).ok_or(Failure::BadTarget(t))?)
        } else {
            None
        };
        let until = target.unwrap_or(now);
        let no_backup = || Failure::NoBackup {
            cluster: cluster.to_string(),
            repo,
            target: target.map(rfc3339).unwrap_or_else(|| "(latest)".into()),
        };
        let st = self.stanzas.get(cluster).ok_or_else(no_backup)?;
        let sets = st.repos.get(&repo).map(Vec::as_slice).unwrap_or_default();
        // `--set=LABEL` restores that backup (pgBackRest refuses a label it does not have);
        // otherwise the newest backup that ended before the target.
        let set = match opt(&w, "set") {
            Some(wanted) => {
                let set =
                    sets.iter()
                        .find(|b| b.label == wanted)
                        .ok_or_else(|| Failure::NoSuchSet {
                            repo,
                            known: if sets.is_empty() {
                                "none".to_string()
                            } else {
                                sets.iter()
                                    .map(|b| b.label.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            },
                            set: wanted.clone(),
                        })?;
                if set.stop > until {
                    return Err(no_backup());
                }
                set
            }
            None => sets
                .iter()
                .rev()
                .find(|b| b.stop <= until)
                .ok_or_else(no_backup)?,
        };
        // The backup's end, then WAL replay up to the target.
        let point = st
            .archived_at(until)
            .filter(|p| p.at >= set.stop)
            .ok_or_else(no_backup)?;
        let recovered = point.data();
        // Recovery ends on a timeline no archived history used yet (PostgreSQL scans the
        // archive's history files), so the restored cluster never collides with a timeline
        // the old one reached after the target.
        let newest = st
            .archive
            .iter()
            .filter(|p| p.system_id() == recovered.system_id)
            .map(ArchivePoint::timeline)
            .max()
            .unwrap_or(recovered.timeline);
        let mut data = recovered.clone();
        data.promote();
        data.timeline = data.timeline.max(newest + 1);
        let instance = label(job, labels::INSTANCE).unwrap_or("").to_string();
        let pvc = format!("{instance}-pgdata");
        patroni.data.insert(pvc.clone(), data);
        self.restores.push(RestoreRecord {
            job: name(job).to_string(),
            restore: label(job, PG_RESTORE).unwrap_or("").to_string(),
            cluster: cluster.to_string(),
            pvc,
            target,
            backup: set.label.clone(),
            data: recovered,
            at: now,
        });
        Ok(())
    }

    /// `pgbackrest info --output=json` of a cluster, as the core reads it.
    pub fn info_json(&self, cluster: &str) -> Value {
        let mut backups = Vec::new();
        if let Some(st) = self.stanzas.get(cluster) {
            for (repo, sets) in &st.repos {
                for b in sets {
                    let mut v = json!({
                        "label": b.label,
                        "type": b.kind.as_str(),
                        "prior": b.prior,
                        "database": {"id": 1, "repo-key": repo},
                        "timestamp": {"start": to_timestamp(b.start).as_second(),
                                      "stop": to_timestamp(b.stop).as_second()},
                        "lsn": {"start": super::postgres::fmt_lsn(b.start_lsn),
                                "stop": super::postgres::fmt_lsn(b.stop_lsn)},
                    });
                    if let Some(n) = &b.backup_name {
                        v["annotation"] = json!({BACKUP_NAME: n});
                    }
                    backups.push(v);
                }
            }
        }
        json!([{"name": "db", "backup": backups, "status": {"code": 0, "message": "ok"}}])
    }

    fn write_info(&self, api: &mut dyn Objects, cluster: &str) {
        let name = format!("{cluster}-pgbackrest-info");
        let text = self.info_json(cluster).to_string();
        let existing = api.get("v1", "ConfigMap", Some(&self.namespace), &name);
        match existing {
            Some(mut cm) => {
                if cm["data"]["info.json"] == text.as_str() {
                    return;
                }
                cm["data"]["info.json"] = json!(text);
                cm["metadata"]["resourceVersion"] = json!("");
                let _ = api.update(cm);
            }
            None => {
                let _ = api.create(json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": self.namespace,
                                 "labels": {labels::CLUSTER: cluster}},
                    "data": {"info.json": text},
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_pgbackrest() {
        let a = parse_target("2026-01-01 00:01:00+00").unwrap();
        let b = parse_target("2026-01-01T00:01:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_target("2026-01-01 02:01:00+02"), Some(a));
        assert_eq!(parse_target("yesterday"), None);
    }

    #[test]
    fn archive_points_share_the_directory_until_more_than_the_lsn_moves() {
        let mut st = Stanza::default();
        let mut d = DataDir::initdb(7);
        let first = d.lsn;
        st.push_archive(1_000, &d);
        d.commit(1_500, 100);
        st.push_archive(2_000, &d);
        d.promote();
        d.commit(2_500, 50);
        st.push_archive(3_000, &d);
        assert!(Arc::ptr_eq(&st.archive[0].base, &st.archive[1].base));
        assert!(!Arc::ptr_eq(&st.archive[1].base, &st.archive[2].base));
        // Each point gives back its own LSN and the directory it archived, without the
        // recent-commit window.
        assert_eq!(st.archive[0].data().lsn, first);
        assert_eq!(st.archived_at(2_999).unwrap().data().lsn, first + 100);
        let last = st.archived_at(3_000).unwrap().data();
        let mut expected = d.clone();
        expected.recent.clear();
        assert_eq!(last, expected);
        assert_eq!(st.archive[2].timeline(), 2);
        assert_ne!(st.archive[0], st.archive[1]);
        assert_eq!(st.archive[1], st.archive[1].clone());
    }

    #[test]
    fn words_split_quotes() {
        let job = json!({"spec": {"template": {"spec": {"containers": [{
            "command": ["bash", "-ceu", "--", "pgbackrest restore --type=time --target=\"2026-01-01 00:01:00+00\" --repo=2"],
        }]}}}});
        let w = words(&job);
        assert_eq!(opt(&w, "target").as_deref(), Some("2026-01-01 00:01:00+00"));
        assert_eq!(opt(&w, "repo").as_deref(), Some("2"));
    }
}
