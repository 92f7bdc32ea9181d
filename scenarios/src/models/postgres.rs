//! PostgreSQL as the world sees it: a data directory (on a PVC) with a system identifier, a
//! timeline and its history, and a WAL position (LSN); plus the roles and databases SQL created.
//!
//! Lineage is what matters for safety: a write acknowledged on timeline `t` at LSN `l` survives
//! in a data directory only if `t` is an ancestor of its timeline and the branch point from `t`
//! is at or after `l`.

use std::collections::BTreeMap;

/// One data directory (what lives on a `pgdata` PVC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    pub system_id: u64,
    pub timeline: u32,
    pub lsn: u64,
    /// Ended timelines: `(timeline, lsn where the next one branched off)`, oldest first.
    pub history: Vec<(u32, u64)>,
    /// Whether this directory last ran as a primary (a restart then resumes read-write).
    pub was_primary: bool,
    /// Roles with their current password (as `ALTER ROLE ... PASSWORD` set it).
    pub roles: BTreeMap<String, String>,
    pub databases: Vec<String>,
    /// Recent commits `(time, lsn before, lsn after)`, so standbys can lag behind by a delay.
    pub recent: Vec<(i64, u64, u64)>,
}

/// Where the first WAL record of a fresh cluster sits, like a real initdb leaves it.
pub const INITIAL_LSN: u64 = 0x0300_0060;

impl DataDir {
    pub fn initdb(system_id: u64) -> Self {
        Self {
            system_id,
            timeline: 1,
            lsn: INITIAL_LSN,
            history: Vec::new(),
            was_primary: true,
            roles: BTreeMap::from([("postgres".to_string(), String::new())]),
            databases: vec!["postgres".to_string()],
            recent: Vec::new(),
        }
    }

    /// A copy without the recent-commit window (what an archive or a backup keeps).
    pub fn without_recent(&self) -> Self {
        Self {
            system_id: self.system_id,
            timeline: self.timeline,
            lsn: self.lsn,
            history: self.history.clone(),
            was_primary: self.was_primary,
            roles: self.roles.clone(),
            databases: self.databases.clone(),
            recent: Vec::new(),
        }
    }

    /// Whether the WAL position `(timeline, lsn)` is part of this directory's history.
    pub fn contains(&self, timeline: u32, lsn: u64) -> bool {
        if timeline == self.timeline {
            return lsn <= self.lsn;
        }
        self.history
            .iter()
            .any(|(t, end)| *t == timeline && lsn <= *end)
    }

    /// Whether a standby at `other` can stream from this directory without a rewind.
    pub fn can_serve(&self, other: &DataDir) -> bool {
        self.system_id == other.system_id && self.contains(other.timeline, other.lsn)
    }

    /// Promotion: the current timeline ends here and a new one starts.
    pub fn promote(&mut self) {
        self.promote_after(self.timeline);
    }

    /// Promotion when timelines up to `newest` already exist elsewhere (PostgreSQL looks for
    /// history files in the WAL archive and takes the next free ID): the new timeline is above
    /// both this directory's and `newest`.
    pub fn promote_after(&mut self, newest: u32) {
        self.history.push((self.timeline, self.lsn));
        self.timeline = self.timeline.max(newest) + 1;
        self.was_primary = true;
    }

    /// pg_rewind onto `source`: throw away what diverged and take the source's history.
    pub fn rewind_to(&mut self, source: &DataDir) {
        let mut d = source.clone();
        d.was_primary = false;
        d.recent.clear();
        *self = d;
    }

    /// Appends a commit of `bytes` of WAL at `now`; returns the commit's end LSN.
    pub fn commit(&mut self, now: i64, bytes: u64) -> u64 {
        let before = self.lsn;
        self.lsn += bytes;
        self.recent.push((now, before, self.lsn));
        if self.recent.len() > 64 {
            self.recent.remove(0);
        }
        self.lsn
    }

    /// The LSN a standby `delay` ms behind has received by `now`.
    pub fn visible_at(&self, now: i64, delay: i64) -> u64 {
        self.recent
            .iter()
            .find(|(t, _, _)| *t > now - delay)
            .map_or(self.lsn, |(_, before, _)| *before)
    }

    /// Streams from `primary` up to `upto` (an LSN on the primary's timeline).
    pub fn receive(&mut self, primary: &DataDir, upto: u64) {
        if self.timeline != primary.timeline {
            self.timeline = primary.timeline;
            self.history = primary.history.clone();
        }
        if upto > self.lsn {
            self.lsn = upto.min(primary.lsn);
        }
        if self.roles != primary.roles {
            self.roles.clone_from(&primary.roles);
        }
        if self.databases != primary.databases {
            self.databases.clone_from(&primary.databases);
        }
    }
}

/// `0/3000060`, as PostgreSQL prints an LSN.
pub fn fmt_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Applies the statements the operator sends (`Action::Sql`). Only what the invariants look at
/// is modelled: roles, their passwords and databases. Unknown statements are accepted as no-ops.
pub fn run_sql(data: &mut DataDir, statements: &[String]) -> u64 {
    let mut wal = 0;
    for s in statements {
        let lower = s.to_ascii_lowercase();
        let words: Vec<&str> = s.split_whitespace().collect();
        let ident = |i: usize| {
            words
                .get(i)
                .map(|w| w.trim_matches(|c| c == '"' || c == ';').to_string())
        };
        if lower.starts_with("create role") || lower.starts_with("create user") {
            if let Some(name) = ident(2) {
                data.roles.entry(name).or_default();
            }
        } else if lower.starts_with("create database")
            && let Some(name) = ident(2)
            && !data.databases.contains(&name)
        {
            data.databases.push(name);
        }
        if (lower.starts_with("alter role")
            || lower.starts_with("alter user")
            || lower.starts_with("create role")
            || lower.starts_with("create user"))
            && let Some(pos) = lower.find("password")
        {
            let rest = &s[pos + "password".len()..];
            if let (Some(name), Some(start)) = (ident(2), rest.find('\'')) {
                let value = rest[start + 1..]
                    .split('\'')
                    .next()
                    .unwrap_or("")
                    .to_string();
                data.roles.insert(name, value);
            }
        }
        wal += 64;
    }
    data.lsn += wal;
    wal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_skips_timelines_that_exist_elsewhere() {
        let mut old_primary = DataDir::initdb(7);
        let mut other = old_primary.clone();
        other.promote();
        assert_eq!(other.timeline, 2);
        // The old primary, still on timeline 1, is promoted later: timeline 2 is taken.
        old_primary.promote_after(other.timeline);
        assert_eq!(old_primary.timeline, 3);
        assert_eq!(old_primary.history, vec![(1, INITIAL_LSN)]);
        // It does not reach the other's timeline-2 writes: they need a rewind.
        assert!(!old_primary.can_serve(&other));
    }

    #[test]
    fn lineage_after_promotion() {
        let mut a = DataDir::initdb(7);
        a.lsn += 100;
        let old = a.clone();
        let mut b = a.clone();
        b.promote();
        b.lsn += 50;
        // The old primary wrote more on timeline 1 after the branch: diverged.
        a.lsn += 10;
        assert!(!b.can_serve(&a));
        assert!(b.can_serve(&old));
        assert!(b.contains(1, old.lsn));
        assert!(!b.contains(1, a.lsn));
        a.rewind_to(&b);
        assert!(b.can_serve(&a));
        assert_eq!(a.timeline, 2);
    }

    #[test]
    fn sql_sets_passwords() {
        let mut d = DataDir::initdb(1);
        run_sql(
            &mut d,
            &[
                "CREATE ROLE \"app\" LOGIN".into(),
                "ALTER ROLE \"app\" PASSWORD 'x1'".into(),
            ],
        );
        assert_eq!(d.roles["app"], "x1");
    }

    #[test]
    fn lsn_prints_like_postgres() {
        assert_eq!(fmt_lsn(INITIAL_LSN), "0/3000060");
    }
}
