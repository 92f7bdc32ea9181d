//! ConfigMaps: the Patroni configuration (`<cluster>-config`), the pgBackRest configuration
//! (`<cluster>-pgbackrest-config`) and the pgBouncer configuration (`<cluster>-pgbouncer`).
//!
//! Patroni reads YAML; YAML is a superset of JSON, so `patroni.yaml` is written as pretty JSON
//! (no YAML emitter in the core, and the content stays byte-for-byte deterministic).

use super::{Ctx, to_json};
use crate::api::pgbackrest::PgBackRestRepo;
use crate::labels;
use crate::naming;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};
use std::fmt::Write;

/// Where the data directory lives in the instance pod.
pub fn pgdata_dir(version: i64) -> String {
    format!("/pgdata/pg{version}")
}

pub const PG_SOCKET_DIR: &str = "/tmp/postgres";
pub const REPLICATION_USER: &str = "_crunchyrepl";
pub const PGBOUNCER_USER: &str = "_crunchypgbouncer";

/// Deep merge: objects key-wise (recursively), everything else replaced by `over`.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn int_or_string(v: &IntOrString) -> Value {
    match v {
        IntOrString::Int(i) => Value::String(i.to_string()),
        IntOrString::String(s) => Value::String(s.clone()),
    }
}

/// Which built-in extensions are preloaded (research/percona.md §1.2 `extensions.builtin`).
fn preload_libraries(ctx: &Ctx) -> Vec<&'static str> {
    let b = ctx
        .cr
        .spec
        .extensions
        .as_ref()
        .and_then(|e| e.builtin.clone())
        .unwrap_or_default();
    let pmm = ctx.cr.spec.pmm.as_ref().filter(|p| p.enabled);
    let monitor_source = pmm.map(|p| {
        to_json(&p.query_source)
            .as_str()
            .unwrap_or("pgstatstatements")
            .to_string()
    });
    let (sm_default, ss_default) = if ctx.features.pgbouncer_optional {
        // crVersion ≥ 2.9.0: on only when PMM reads from them.
        (
            monitor_source.as_deref() == Some("pgstatmonitor"),
            monitor_source.as_deref() == Some("pgstatstatements"),
        )
    } else {
        (true, false)
    };
    let mut libs = Vec::new();
    // pg_stat_statements goes before pg_stat_monitor (K8SPG-884).
    if b.pg_stat_statements.unwrap_or(ss_default) {
        libs.push("pg_stat_statements");
    }
    if b.pg_stat_monitor.unwrap_or(sm_default) {
        libs.push("pg_stat_monitor");
    }
    if b.pg_audit.unwrap_or(true) {
        libs.push("pgaudit");
    }
    libs
}

/// postgresql.conf parameters, lowest precedence first: tusk's defaults, then
/// `patroni.dynamicConfiguration.postgresql.parameters`, then `config.parameters`, then the
/// settings the cluster cannot work without.
pub fn postgres_parameters(ctx: &Ctx) -> Map<String, Value> {
    let mut p = Map::new();
    let s = |v: &str| Value::String(v.to_string());
    p.insert("password_encryption".into(), s("scram-sha-256"));
    p.insert("wal_level".into(), s("logical"));
    p.insert("max_wal_senders".into(), s("10"));
    p.insert("hot_standby".into(), s("on"));
    let libs = preload_libraries(ctx);
    if !libs.is_empty() {
        p.insert("shared_preload_libraries".into(), s(&libs.join(",")));
    }
    let dyn_params = ctx
        .cr
        .spec
        .patroni
        .as_ref()
        .and_then(|pa| pa.dynamic_configuration.as_ref())
        .and_then(|d| d.get("postgresql"))
        .and_then(|pg| pg.get("parameters"))
        .and_then(Value::as_object);
    if let Some(d) = dyn_params {
        for (k, v) in d {
            let v = match v {
                Value::String(_) => v.clone(),
                other => Value::String(match other {
                    Value::Bool(b) => {
                        if *b {
                            "on".into()
                        } else {
                            "off".into()
                        }
                    }
                    o => o.to_string(),
                }),
            };
            if k == "shared_preload_libraries" {
                // User libraries first, then the mandatory ones (K8SPG-442).
                let user = v.as_str().unwrap_or("");
                let mut all: Vec<&str> = user
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .collect();
                for l in &libs {
                    if !all.contains(l) {
                        all.push(l);
                    }
                }
                p.insert(k.clone(), s(&all.join(",")));
            } else {
                p.insert(k.clone(), v);
            }
        }
    }
    if let Some(c) = &ctx.cr.spec.config {
        for (k, v) in &c.parameters {
            p.insert(k.clone(), int_or_string(v));
        }
    }
    p.insert("unix_socket_directories".into(), s(PG_SOCKET_DIR));
    if ctx.backups_enabled() {
        p.insert("archive_mode".into(), s("on"));
        p.insert(
            "archive_command".into(),
            s("pgbackrest --stanza=db archive-push \"%p\""),
        );
    }
    if ctx.tls_enabled() {
        p.insert("ssl".into(), s("on"));
        p.insert("ssl_cert_file".into(), s("/pgconf/tls/tls.crt"));
        p.insert("ssl_key_file".into(), s("/pgconf/tls/tls.key"));
        p.insert("ssl_ca_file".into(), s("/pgconf/tls/ca.crt"));
    }
    p
}

/// pg_hba rules: the mandatory ones, the user's (`dynamicConfiguration.postgresql.pg_hba`, then
/// `authentication.rules`), then a scram-sha-256 fallback. `tlsOnly` makes host rules hostssl.
pub fn pg_hba(ctx: &Ctx) -> Vec<String> {
    let mut rules = vec![
        "local all \"postgres\" peer".to_string(),
        format!("host replication \"{REPLICATION_USER}\" all scram-sha-256"),
        format!("host all \"{REPLICATION_USER}\" all reject"),
        format!("host all \"{PGBOUNCER_USER}\" all scram-sha-256"),
    ];
    if let Some(user) = ctx
        .cr
        .spec
        .patroni
        .as_ref()
        .and_then(|pa| pa.dynamic_configuration.as_ref())
        .and_then(|d| d.get("postgresql"))
        .and_then(|pg| pg.get("pg_hba"))
        .and_then(Value::as_array)
    {
        rules.extend(user.iter().filter_map(|r| r.as_str().map(str::to_string)));
    }
    if let Some(a) = &ctx.cr.spec.authentication {
        for r in &a.rules {
            if let Some(h) = &r.hba {
                rules.push(h.clone());
                continue;
            }
            let conn = r.connection.as_deref().unwrap_or("host");
            let dbs = if r.databases.is_empty() {
                "all".to_string()
            } else {
                r.databases.join(",")
            };
            let users = if r.users.is_empty() {
                "all".to_string()
            } else {
                r.users.join(",")
            };
            let mut line = if conn == "local" {
                format!("local {dbs} {users}")
            } else {
                format!("{conn} {dbs} {users} all")
            };
            let _ = write!(line, " {}", r.method.as_deref().unwrap_or("scram-sha-256"));
            for (k, v) in &r.options {
                let v = int_or_string(v);
                let _ = write!(line, " {k}=\"{}\"", v.as_str().unwrap_or(""));
            }
            rules.push(line);
        }
    }
    rules.push("host all all all scram-sha-256".to_string());
    if ctx.cr.spec.tls_only.unwrap_or(false) {
        for r in &mut rules {
            if let Some(rest) = r.strip_prefix("host ") {
                *r = format!("hostssl {rest}");
            }
        }
    }
    rules
}

/// The Patroni configuration every instance shares. Per-instance values (name, pod IP) come
/// from the environment (`PATRONI_NAME`, `PATRONI_KUBERNETES_POD_IP`).
pub fn patroni_yaml(ctx: &Ctx) -> Value {
    let patroni = ctx.cr.patroni();
    let mut dcs = json!({
        "postgresql": {
            "use_pg_rewind": true,
            "use_slots": false,
        },
    });
    if let Some(d) = &patroni.dynamic_configuration {
        merge(&mut dcs, &Value::Object(d.clone()));
    }
    dcs["ttl"] = json!(patroni.leader_lease_duration_seconds());
    dcs["loop_wait"] = json!(patroni.sync_period_seconds());
    dcs["postgresql"]["parameters"] = Value::Object(postgres_parameters(ctx));
    dcs["postgresql"]["pg_hba"] = json!(pg_hba(ctx));
    if ctx.cr.is_standby()
        && let Some(sb) = &ctx.cr.spec.standby
    {
        let mut s = Map::new();
        if let Some(h) = &sb.host {
            s.insert("host".into(), json!(h));
            s.insert("port".into(), json!(sb.port.unwrap_or(5432)));
        }
        if let Some(r) = &sb.repo_name {
            s.insert(
                "restore_command".into(),
                json!(format!(
                    "pgbackrest --stanza=db archive-get %f \"%p\" --repo={}",
                    r.trim_start_matches("repo")
                )),
            );
        }
        dcs["standby_cluster"] = Value::Object(s);
    }
    let mut create_replica = patroni.create_replica_methods.clone();
    if create_replica.is_empty() {
        if ctx.backups_enabled() {
            create_replica.push("pgbackrest".into());
        }
        create_replica.push("basebackup".into());
    }
    json!({
        "scope": naming::patroni_scope(ctx.name),
        "bootstrap": {"dcs": dcs},
        "kubernetes": {
            "namespace": ctx.ns,
            "use_endpoints": true,
            "role_label": labels::ROLE,
            "scope_label": labels::PATRONI,
            "labels": {labels::CLUSTER: ctx.name},
            "ports": [{"name": "postgres", "port": ctx.pg_port(), "protocol": "TCP"}],
        },
        "postgresql": {
            "data_dir": pgdata_dir(ctx.pg_version()),
            "pgpass": "/tmp/.pgpass",
            "listen": format!("*:{}", ctx.pg_port()),
            "authentication": {
                "replication": {"username": REPLICATION_USER},
                "rewind": {"username": REPLICATION_USER},
                "superuser": {"username": "postgres"},
            },
            "create_replica_methods": create_replica,
            "pgbackrest": {
                "command": "pgbackrest --stanza=db --delta restore",
                "keep_data": true,
                "no_master": true,
                "no_params": true,
            },
            "basebackup": [{"waldir": "/pgwal/pg_wal"}],
        },
        "restapi": {"listen": format!("*:{}", ctx.patroni_port())},
        "watchdog": {"mode": "off"},
    })
}

pub fn patroni(ctx: &Ctx) -> Value {
    let text = serde_json::to_string_pretty(&patroni_yaml(ctx)).unwrap_or_default();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ctx.meta(&naming::patroni_config(ctx.name), ctx.labels("pg").with(labels::PATRONI, naming::patroni_scope(ctx.name)), None),
        "data": {"patroni.yaml": text},
    })
}

fn repo_lines(out: &mut String, r: &PgBackRestRepo, repo_host: &str) {
    let n = &r.name;
    if r.volume.is_some() {
        let _ = writeln!(out, "{n}-host={repo_host}");
        let _ = writeln!(out, "{n}-host-user=postgres");
        let _ = writeln!(out, "{n}-path=/pgbackrest/{n}");
    } else if let Some(s3) = &r.s3 {
        let _ = writeln!(out, "{n}-type=s3");
        let _ = writeln!(out, "{n}-s3-bucket={}", s3.bucket);
        let _ = writeln!(out, "{n}-s3-endpoint={}", s3.endpoint);
        let _ = writeln!(out, "{n}-s3-region={}", s3.region);
        let _ = writeln!(out, "{n}-path=/pgbackrest/{n}");
    } else if let Some(g) = &r.gcs {
        let _ = writeln!(out, "{n}-type=gcs");
        let _ = writeln!(out, "{n}-gcs-bucket={}", g.bucket);
        let _ = writeln!(out, "{n}-path=/pgbackrest/{n}");
    } else if let Some(a) = &r.azure {
        let _ = writeln!(out, "{n}-type=azure");
        let _ = writeln!(out, "{n}-azure-container={}", a.container);
        let _ = writeln!(out, "{n}-path=/pgbackrest/{n}");
    }
}

/// `pgbackrest_instance.conf` (read in instance pods) and, with a repo host,
/// `pgbackrest_repo.conf` (read on the repo host, listing every instance as a `pgN-host`).
pub fn pgbackrest(ctx: &Ctx, instances: &[String]) -> Option<Value> {
    if !ctx.backups_enabled() {
        return None;
    }
    let repos = ctx.cr.repos();
    let global = ctx
        .cr
        .spec
        .backups
        .pgbackrest
        .as_ref()
        .map(|p| p.global.clone())
        .unwrap_or_default();
    let pods = naming::pods_service(ctx.name);
    let repo_host = format!(
        "{}-0.{}",
        naming::repo_host(ctx.name),
        naming::service_host(&pods, ctx.ns, ctx.dns_suffix())
    );
    let mut inst = String::from("[global]\nlog-path=/pgdata/pgbackrest/log\n");
    for r in repos {
        repo_lines(&mut inst, r, &repo_host);
    }
    for (k, v) in &global {
        let _ = writeln!(inst, "{k}={v}");
    }
    let pgdata = pgdata_dir(ctx.pg_version());
    let _ = write!(
        inst,
        "\n[db]\npg1-path={pgdata}\npg1-port={}\npg1-socket-path={PG_SOCKET_DIR}\n",
        ctx.pg_port()
    );
    let mut data = Map::new();
    data.insert("pgbackrest_instance.conf".into(), Value::String(inst));
    if ctx.has_repo_host() {
        let mut repo = String::from("[global]\nlog-path=/pgbackrest/log\n");
        for r in repos.iter().filter(|r| r.volume.is_some()) {
            let _ = writeln!(repo, "{}-path=/pgbackrest/{}", r.name, r.name);
        }
        for (k, v) in &global {
            let _ = writeln!(repo, "{k}={v}");
        }
        repo.push_str("\n[db]\n");
        for (i, name) in instances.iter().enumerate() {
            let n = i + 1;
            let host = format!(
                "{}.{}",
                naming::instance_pod(name),
                naming::service_host(&pods, ctx.ns, ctx.dns_suffix())
            );
            let _ = writeln!(repo, "pg{n}-host={host}");
            let _ = writeln!(repo, "pg{n}-path={pgdata}");
            let _ = writeln!(repo, "pg{n}-port={}", ctx.pg_port());
            let _ = writeln!(repo, "pg{n}-socket-path={PG_SOCKET_DIR}");
        }
        data.insert("pgbackrest_repo.conf".into(), Value::String(repo));
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ctx.meta(&naming::pgbackrest_config(ctx.name), ctx.labels("pgbackrest").with(labels::PGBACKREST_CONFIG, ""), None),
        "data": data,
    }))
}

/// `pgbouncer.ini`: the `[pgbouncer]` section (tusk's settings, then `config.global`),
/// `[databases]` (everything to `<cluster>-primary` unless overridden) and `[users]`.
pub fn pgbouncer_ini(ctx: &Ctx) -> String {
    let cfg = ctx
        .cr
        .pgbouncer()
        .and_then(|p| p.config.clone())
        .unwrap_or_default();
    let mut main: Vec<(String, String)> = vec![
        ("listen_addr".into(), "*".into()),
        ("listen_port".into(), ctx.pgbouncer_port().to_string()),
        ("auth_file".into(), "/etc/pgbouncer/users.txt".into()),
        ("auth_user".into(), PGBOUNCER_USER.into()),
        (
            "auth_query".into(),
            "SELECT username, password from pgbouncer.get_auth($1)".into(),
        ),
        ("unix_socket_dir".into(), String::new()),
    ];
    let tls = ctx.tls_enabled()
        || ctx
            .cr
            .pgbouncer()
            .and_then(|p| p.custom_tls_secret.as_ref())
            .is_some();
    if tls {
        main.push(("client_tls_sslmode".into(), "require".into()));
        main.push((
            "client_tls_cert_file".into(),
            "/etc/pgbouncer/tls/tls.crt".into(),
        ));
        main.push((
            "client_tls_key_file".into(),
            "/etc/pgbouncer/tls/tls.key".into(),
        ));
        main.push((
            "client_tls_ca_file".into(),
            "/etc/pgbouncer/tls/ca.crt".into(),
        ));
    }
    for (k, v) in &cfg.global {
        match main.iter_mut().find(|(mk, _)| mk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => main.push((k.clone(), v.clone())),
        }
    }
    let mut out = String::from("[pgbouncer]\n");
    for (k, v) in &main {
        let _ = writeln!(out, "{k} = {v}");
    }
    out.push_str("\n[databases]\n");
    if cfg.databases.is_empty() {
        let _ = writeln!(
            out,
            "* = host={} port={}",
            naming::primary_service(ctx.name),
            ctx.pg_port()
        );
    }
    for (k, v) in &cfg.databases {
        let _ = writeln!(out, "{k} = {v}");
    }
    out.push_str("\n[users]\n");
    for (k, v) in &cfg.users {
        let _ = writeln!(out, "{k} = {v}");
    }
    out
}

pub fn pgbouncer(ctx: &Ctx) -> Option<Value> {
    if !ctx.has_pgbouncer() {
        return None;
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ctx.meta(&naming::pgbouncer(ctx.name), ctx.labels("pgbouncer").with(labels::ROLE, labels::ROLE_PGBOUNCER), None),
        "data": {"pgbouncer.ini": pgbouncer_ini(ctx)},
    }))
}
