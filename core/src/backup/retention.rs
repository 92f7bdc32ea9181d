//! Retention: pgBackRest expires backups itself (the `repoN-retention-*` options of
//! `spec.backups.pgbackrest.global`, rendered into `[global]` of the pgBackRest config by the
//! ConfigMap builder); tusk removes the PerconaPGBackup objects whose backups are gone.
//!
//! How the core learns which backups exist: the ConfigMap `<cluster>-pgbackrest-info`
//! (labelled with the cluster, so it is in `Observed::config_maps`), key `info.json`, holding
//! the output of `pgbackrest info --stanza=db --output=json`. Whoever runs pgBackRest next to
//! the repo keeps it current (the world's pgBackRest model; in a real deployment a step of the
//! backup Job or a repo-host sidecar). Each pgBackRest backup carries the annotation
//! `percona.com/backup-name=<PerconaPGBackup>`, which ties it to its object. A Succeeded
//! PerconaPGBackup whose `status.backupName` is no longer listed for its repo — while the
//! info does list other backups of that repo, so an empty or failed `info` never deletes
//! anything — is deleted.
//!
//! Keeping the info current on a real cluster is tusk's job: when a PerconaPGBackup has
//! succeeded but the info does not name it yet, and the info was last read before that backup
//! completed (or was never read), the plan asks the driver to run `pgbackrest info` in the
//! primary's `database` container and store the output ([`Action::RefreshBackupInfo`]). The
//! ConfigMap carries [`REFRESHED_AT`], the time of that read; a ConfigMap without it is kept
//! by someone else (a repo-host sidecar, the simulated pgBackRest) and is never re-read. One
//! read per completed backup suffices: pgBackRest expires old backups at the end of a backup,
//! so the read that names the new backup also shows what retention removed.

use super::{annotations, info_config_map, oref, repo_index};
use crate::api::PerconaPGCluster;
use crate::api::backup::BackupState;
use crate::observed::{Observed, by_name};
use crate::plan::{Action, EventType, Plan};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// Key of the info ConfigMap holding `pgbackrest info --output=json`.
pub const INFO_KEY: &str = "info.json";

/// On the info ConfigMap tusk writes: when `pgbackrest info` was run (RFC 3339, UTC).
pub const REFRESHED_AT: &str = "pgv2.percona.com/pgbackrest-info-refreshed-at";

/// What the driver runs to read the repos.
pub fn info_command() -> Vec<String> {
    [
        "pgbackrest".to_string(),
        "info".to_string(),
        format!("--stanza={}", super::STANZA),
        "--output=json".to_string(),
    ]
    .to_vec()
}

/// One backup as `pgbackrest info` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoBackup {
    /// `database.repo-key`.
    pub repo: u32,
    pub label: String,
    /// `full`, `diff` or `incr`.
    pub kind: String,
    /// The `percona.com/backup-name` annotation.
    pub backup_name: Option<String>,
    pub stop: Option<Timestamp>,
}

/// The parsed info of the `db` stanza.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub backups: Vec<InfoBackup>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ConfigMap {config_map} key {INFO_KEY} is not `pgbackrest info --output=json` output: {reason}"
)]
pub struct InfoError {
    pub config_map: String,
    pub reason: String,
}

impl Info {
    /// Parses `pgbackrest info --output=json` (an array of stanzas) for stanza `db`.
    pub fn parse(text: &str, config_map: &str) -> Result<Self, InfoError> {
        let err = |reason: String| InfoError {
            config_map: config_map.to_string(),
            reason,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let stanzas = v.as_array().ok_or_else(|| err("not an array".into()))?;
        let mut backups = Vec::new();
        for s in stanzas {
            if s.get("name").and_then(Value::as_str) != Some(super::STANZA) {
                continue;
            }
            for b in s
                .get("backup")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(label) = b.get("label").and_then(Value::as_str) else {
                    continue;
                };
                let repo = b
                    .pointer("/database/repo-key")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(1);
                backups.push(InfoBackup {
                    repo,
                    label: label.to_string(),
                    kind: b
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    backup_name: b
                        .get("annotation")
                        .and_then(|a| a.get(annotations::PGBACKREST_BACKUP_NAME))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    stop: b
                        .pointer("/timestamp/stop")
                        .and_then(Value::as_i64)
                        .and_then(|s| Timestamp::from_second(s).ok()),
                });
            }
        }
        Ok(Self { backups })
    }

    /// The newest pgBackRest backup of `repo` annotated with the PerconaPGBackup `name`.
    pub fn find_by_annotation(&self, repo: &str, name: &str) -> Option<&InfoBackup> {
        let n = repo_index(repo)?;
        self.backups
            .iter()
            .filter(|b| b.repo == n && b.backup_name.as_deref() == Some(name))
            .max_by_key(|b| b.stop)
    }

    /// Whether the info lists any backup of `repo`.
    pub fn lists_repo(&self, repo: &str) -> bool {
        repo_index(repo).is_some_and(|n| self.backups.iter().any(|b| b.repo == n))
    }

    pub fn has_label(&self, repo: &str, label: &str) -> bool {
        repo_index(repo)
            .is_some_and(|n| self.backups.iter().any(|b| b.repo == n && b.label == label))
    }
}

/// The info from `<cluster>-pgbackrest-info`, if observed and well-formed.
///
/// A reconcile asks for it up to three times, and the ConfigMap changes only when a backup
/// ends: the last text parsed on this thread is remembered with its result (compared in
/// full, so a different text is always parsed), and the same text is not parsed again.
pub fn observed_info(obs: &Observed) -> Option<Info> {
    let cluster = obs.cluster.metadata.name.as_deref().unwrap_or("");
    let name = info_config_map(cluster);
    let cm = by_name(&obs.config_maps, &name)?;
    let text = cm.data.as_ref()?.get(INFO_KEY)?;
    thread_local! {
        /// (text, its parse) of the last info parsed on this thread.
        static LAST_PARSED: std::cell::RefCell<Option<(String, Option<Info>)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST_PARSED.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((t, info)) = last.as_ref()
            && t == text
        {
            return info.clone();
        }
        // The ConfigMap's name only names it in errors, which are dropped here.
        let info = Info::parse(text, &name).ok();
        *last = Some((text.clone(), info.clone()));
        info
    })
}

/// Asks for a fresh `pgbackrest info` when a succeeded backup is not in the info yet and the
/// info was read before it completed (see the module docs). Needs a ready primary to run in.
pub fn refresh(obs: &Observed, env: &crate::Env, plan: &mut Plan) {
    let cr = &obs.cluster;
    let cluster = cr.metadata.name.as_deref().unwrap_or("");
    let name = info_config_map(cluster);
    let existing = by_name(&obs.config_maps, &name);
    // None: kept by someone else, never re-read. Some(None): never read, or a read time that
    // does not parse (read again; the next write repairs it).
    let last_read: Option<Option<Timestamp>> = match existing {
        None => Some(None),
        Some(cm) => cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REFRESHED_AT))
            .map(|t| t.parse::<Timestamp>().ok()),
    };
    let Some(last_read) = last_read else {
        return;
    };
    let info = observed_info(obs);
    let behind = obs.backups.iter().any(|b| {
        let Some(st) = b.status.as_ref() else {
            return false;
        };
        if b.metadata.deletion_timestamp.is_some()
            || st.state != Some(BackupState::Succeeded)
            || st.backup_name.is_some()
        {
            return false;
        }
        let repo = b.spec.repo_name.as_deref().unwrap_or("");
        let bname = b.metadata.name.as_deref().unwrap_or("");
        if info
            .as_ref()
            .is_some_and(|i| i.find_by_annotation(repo, bname).is_some())
        {
            return false;
        }
        match (last_read, st.completed.as_ref()) {
            (None, _) => true,
            (Some(read), Some(done)) => done.0 > read,
            // No completion time: the read after it succeeded is the one to trust.
            (Some(_), None) => false,
        }
    });
    if !behind {
        return;
    }
    let Some(primary) = obs
        .primary_pod()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && crate::observed::pod_ready(p))
    else {
        return;
    };
    let ctx = crate::build::Ctx::new(cr);
    let mut annotations = serde_json::Map::new();
    annotations.insert(REFRESHED_AT.into(), Value::String(super::rfc3339(env.now)));
    let config_map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ctx.meta(&name, ctx.labels("pgbackrest"), Some(annotations)),
    });
    plan.push(Action::RefreshBackupInfo {
        pod: oref(
            cr,
            "v1",
            "Pod",
            primary.metadata.name.as_deref().unwrap_or(""),
        ),
        container: crate::naming::DATABASE_CONTAINER.into(),
        command: info_command(),
        config_map,
    });
}

/// The retention settings of `spec.backups.pgbackrest.global` (`repoN-retention-*`), as
/// `key=value` lines for `[global]` of pgbackrest.conf. The ConfigMap builder already renders
/// every `global` entry; this is for callers that render retention on its own.
pub fn retention_options(cr: &PerconaPGCluster) -> Vec<String> {
    cr.spec
        .backups
        .pgbackrest
        .as_ref()
        .map(|p| {
            p.global
                .iter()
                .filter(|(k, _)| k.contains("-retention-"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .unwrap_or_default()
}

/// PerconaPGBackups whose pgBackRest backup expired: `(name, uid)`.
pub fn expired(obs: &Observed, info: &Info) -> Vec<(String, String)> {
    obs.backups
        .iter()
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .filter_map(|b| {
            let st = b.status.as_ref()?;
            if st.state != Some(BackupState::Succeeded) {
                return None;
            }
            let label = st.backup_name.as_deref()?;
            let repo = b.spec.repo_name.as_deref()?;
            if info.lists_repo(repo) && !info.has_label(repo, label) {
                Some((b.metadata.name.clone()?, b.metadata.uid.clone()?))
            } else {
                None
            }
        })
        .collect()
}

/// Deletes the PerconaPGBackups of expired backups, with an Event on the cluster.
pub fn plan(obs: &Observed, plan: &mut Plan) {
    let Some(info) = observed_info(obs) else {
        return;
    };
    let cr = &obs.cluster;
    for (name, uid) in expired(obs, &info) {
        plan.push(Action::Delete {
            target: oref(
                cr,
                crate::api::defaults::API_VERSION,
                "PerconaPGBackup",
                &name,
            ),
            uid,
        });
        plan.push(Action::Event {
            regarding: crate::reconcile::cluster_ref(obs),
            type_: EventType::Normal,
            reason: "BackupExpired".into(),
            message: format!(
                "backup {name} was expired by pgBackRest retention; its PerconaPGBackup is deleted"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn observed_with_info(text: &str) -> Observed {
        let mut obs = Observed::default();
        obs.cluster.metadata.name = Some("c1".into());
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(info_config_map("c1"));
        cm.data = Some([(INFO_KEY.to_string(), text.to_string())].into());
        obs.config_maps.push(cm);
        obs
    }

    fn info_text(label: &str) -> String {
        serde_json::json!([{"name": "db", "backup": [
            {"label": label, "type": "full", "database": {"repo-key": 1}}
        ]}])
        .to_string()
    }

    /// The remembered parse is used only for the very same text: a changed or broken
    /// ConfigMap is parsed again.
    #[test]
    fn observed_info_parses_each_new_text() {
        let a = observed_with_info(&info_text("20270101-000000F"));
        let b = observed_with_info(&info_text("20270102-000000F"));
        let label = |o: &Observed| observed_info(o).map(|i| i.backups[0].label.clone());
        assert_eq!(label(&a).as_deref(), Some("20270101-000000F"));
        assert_eq!(label(&a).as_deref(), Some("20270101-000000F"));
        assert_eq!(label(&b).as_deref(), Some("20270102-000000F"));
        assert_eq!(observed_info(&observed_with_info("not json")), None);
        assert_eq!(label(&a).as_deref(), Some("20270101-000000F"));
        assert_eq!(
            observed_info(&a),
            Info::parse(&info_text("20270101-000000F"), "c1-pgbackrest-info").ok()
        );
    }
}
