//! Password Secrets: one per user (`<cluster>-pguser-<user>` or `secretName`), plus the internal
//! roles tusk needs (`_crunchypgbouncer` for pgBouncer's auth_query, `_crunchyrepl` for
//! replication, `monitor` for PMM). These Secrets carry no ownerReference: like the PVCs whose
//! data their passwords unlock, they outlive the cluster unless `percona.com/delete-pvc` is set.
//!
//! TLS certificates live in [`crate::tls`].

use super::Ctx;
use super::configmaps::{PGBOUNCER_USER, REPLICATION_USER};
use super::scram;
use crate::labels::{self, annotations};
use crate::naming;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleKind {
    /// A `spec.users` entry (or the default user).
    User,
    /// PMM's `monitor` superuser.
    Monitor,
    /// pgBouncer's auth_query user.
    PgBouncer,
    /// Patroni's replication and rewind user.
    Replication,
}

/// A PostgreSQL role whose password lives in a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub kind: RoleKind,
    pub role: String,
    pub secret: String,
    pub databases: Vec<String>,
    pub options: Option<String>,
    /// AlphaNumeric passwords (`password.type`); internal roles always use them.
    pub alnum: bool,
    pub grant_public_schema: bool,
}

/// A password and its SCRAM verifier. The verifier is `None` only right after the password
/// was generated: computing it costs 4096 PBKDF2 rounds, so the reconcile that creates the
/// Secret stores the password alone and a later one (which reads the password back) adds the
/// verifier. Role SQL runs only once the verifier exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub password: String,
    pub verifier: Option<String>,
}

/// The roles a cluster has, in a fixed order: users (spec order; the default user named after
/// the cluster when `spec.users` is empty), then the internal roles.
pub fn roles(ctx: &Ctx) -> Vec<Role> {
    let mut out = Vec::new();
    let users = &ctx.cr.spec.users;
    if users.is_empty() {
        out.push(Role {
            kind: RoleKind::User,
            role: ctx.name.to_string(),
            secret: naming::user_secret(ctx.name, ctx.name),
            databases: vec![ctx.name.to_string()],
            options: None,
            alnum: false,
            grant_public_schema: false,
        });
    }
    for u in users {
        // `monitor` is reserved for PMM (upstream ignores such an entry).
        if u.name == "monitor" {
            continue;
        }
        let alnum = u
            .password
            .as_ref()
            .map(|p| super::to_json(&p.type_).as_str() == Some("AlphaNumeric"))
            .unwrap_or(false);
        out.push(Role {
            kind: RoleKind::User,
            role: u.name.clone(),
            secret: u
                .secret_name
                .clone()
                .unwrap_or_else(|| naming::user_secret(ctx.name, &u.name)),
            databases: u.databases.clone(),
            options: u.options.clone().filter(|o| !o.trim().is_empty()),
            alnum,
            grant_public_schema: u.grant_public_schema_access.unwrap_or(false),
        });
    }
    if ctx.cr.spec.pmm.as_ref().is_some_and(|p| p.enabled) {
        out.push(Role {
            kind: RoleKind::Monitor,
            role: "monitor".into(),
            secret: naming::user_secret(ctx.name, "monitor"),
            databases: vec![],
            options: None,
            alnum: true,
            grant_public_schema: false,
        });
    }
    if ctx.has_pgbouncer() {
        out.push(Role {
            kind: RoleKind::PgBouncer,
            role: PGBOUNCER_USER.into(),
            secret: naming::pgbouncer(ctx.name),
            databases: vec![],
            options: None,
            alnum: true,
            grant_public_schema: false,
        });
    }
    out.push(Role {
        kind: RoleKind::Replication,
        role: REPLICATION_USER.into(),
        secret: format!("{}-replication", ctx.name),
        databases: vec![],
        options: None,
        alnum: true,
        grant_public_schema: false,
    });
    out
}

/// Key of the password in the Secret of each role kind.
pub fn password_key(kind: RoleKind) -> &'static str {
    match kind {
        RoleKind::PgBouncer => "pgbouncer-password",
        _ => "password",
    }
}

pub fn verifier_key(kind: RoleKind) -> &'static str {
    match kind {
        RoleKind::PgBouncer => "pgbouncer-verifier",
        _ => "verifier",
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The hash of the role state tusk last made true in PostgreSQL; stored on the Secret after
/// the SQL ran, so the SQL is sent again only when this changes.
pub fn applied_hash(role: &Role, creds: &Credentials, auto_schema: bool) -> String {
    // `verifier` serialises as before when present (a string), so hashes stored by earlier
    // versions still match and no role SQL is re-run after an upgrade.
    let v = json!([
        format!("{:?}", role.kind),
        role.role,
        role.databases,
        role.options,
        creds.verifier,
        role.grant_public_schema,
        auto_schema,
    ]);
    crate::reconcile::compare::hash_hex(&v)
}

/// The Secret of a role. `applied` is the value of the applied-hash annotation to write.
pub fn role_secret(ctx: &Ctx, role: &Role, creds: &Credentials, applied: Option<&str>) -> Value {
    let mut data: Map<String, Value> = Map::new();
    let mut put = |k: &str, v: &str| {
        data.insert(k.to_string(), Value::String(scram::b64(v.as_bytes())));
    };
    match role.kind {
        RoleKind::PgBouncer => {
            put("pgbouncer-password", &creds.password);
            if let Some(v) = &creds.verifier {
                put("pgbouncer-verifier", v);
                put(
                    "pgbouncer-users.txt",
                    &format!("\"{}\" \"{}\"\n", role.role, v),
                );
            }
        }
        RoleKind::Replication => {
            put("user", &role.role);
            put("password", &creds.password);
            if let Some(v) = &creds.verifier {
                put("verifier", v);
            }
        }
        RoleKind::User | RoleKind::Monitor => {
            let port = ctx.pg_port().to_string();
            let host =
                naming::service_host(&naming::primary_service(ctx.name), ctx.ns, ctx.dns_suffix());
            let user = &role.role;
            let pw = uri_escape(&creds.password);
            put("user", user);
            put("password", &creds.password);
            if let Some(v) = &creds.verifier {
                put("verifier", v);
            }
            put("host", &host);
            put("port", &port);
            let db = role.databases.first();
            let path = db
                .map(|d| format!("/{}", uri_escape(d)))
                .unwrap_or_default();
            if let Some(d) = db {
                put("dbname", d);
            }
            put(
                "uri",
                &format!("postgresql://{}:{pw}@{host}:{port}{path}", uri_escape(user)),
            );
            put(
                "jdbc-uri",
                &format!(
                    "jdbc:postgresql://{host}:{port}{path}?password={pw}&user={}",
                    uri_escape(user)
                ),
            );
            if ctx.has_pgbouncer() && role.kind == RoleKind::User {
                let bh =
                    naming::service_host(&naming::pgbouncer(ctx.name), ctx.ns, ctx.dns_suffix());
                let bp = ctx.pgbouncer_port().to_string();
                put("pgbouncer-host", &bh);
                put("pgbouncer-port", &bp);
                put(
                    "pgbouncer-uri",
                    &format!("postgresql://{}:{pw}@{bh}:{bp}{path}", uri_escape(user)),
                );
                put(
                    "pgbouncer-jdbc-uri",
                    &format!(
                        "jdbc:postgresql://{bh}:{bp}{path}?password={pw}&prepareThreshold=0&user={}",
                        uri_escape(user)
                    ),
                );
            }
        }
    }
    let mut l = ctx.labels("pg");
    l = match role.kind {
        RoleKind::User | RoleKind::Monitor => l
            .with(labels::ROLE, labels::ROLE_PGUSER)
            .with(labels::PGUSER, role.role.clone()),
        RoleKind::PgBouncer => l.with(labels::ROLE, labels::ROLE_PGBOUNCER),
        RoleKind::Replication => l.with(labels::ROLE, "replication"),
    };
    let mut m = Map::new();
    if let Some(a) = applied {
        m.insert(
            annotations::USER_APPLIED.into(),
            Value::String(a.to_string()),
        );
    }
    if let Some(v) = &creds.verifier {
        m.insert(
            annotations::VERIFIER_OF.into(),
            Value::String(verifier_fingerprint(&creds.password, v)),
        );
    }
    let ann = (!m.is_empty()).then_some(m);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": ctx.meta_unowned(&role.secret, l, ann),
        "type": "Opaque",
        "data": data,
    })
}

/// SQL (psql input) that makes `role` true on the primary, connected to `postgres`.
/// Idempotent: roles are created only when missing, databases through `\gexec` only when
/// missing, and ALTER/GRANT can be repeated. Nothing is ever dropped.
pub fn role_sql(role: &Role, creds: &Credentials) -> Vec<String> {
    let r = quote_ident(&role.role);
    let lit = quote_literal(&role.role);
    let mut s = vec![format!(
        "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {lit}) THEN CREATE ROLE {r}; END IF; END$$;"
    )];
    let attrs = match role.kind {
        RoleKind::User => {
            let mut a = String::from("LOGIN");
            if let Some(o) = &role.options {
                a.push(' ');
                a.push_str(o);
            }
            a
        }
        RoleKind::Monitor => "LOGIN SUPERUSER".into(),
        RoleKind::PgBouncer => "LOGIN".into(),
        RoleKind::Replication => "LOGIN REPLICATION".into(),
    };
    // Without a verifier (not computed yet) the password is left alone rather than sent in
    // clear text; the reconcile does not run role SQL before the verifier exists anyway.
    match &creds.verifier {
        Some(v) => s.push(format!(
            "ALTER ROLE {r} WITH {attrs} PASSWORD {};",
            quote_literal(v)
        )),
        None => s.push(format!("ALTER ROLE {r} WITH {attrs};")),
    }
    for db in &role.databases {
        s.push(format!(
            "SELECT pg_catalog.format('CREATE DATABASE %I', {}) WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = {})\\gexec",
            quote_literal(db),
            quote_literal(db)
        ));
        s.push(format!(
            "GRANT ALL PRIVILEGES ON DATABASE {} TO {r};",
            quote_ident(db)
        ));
    }
    if role.kind == RoleKind::PgBouncer {
        s.push(format!(
            "CREATE SCHEMA IF NOT EXISTS pgbouncer AUTHORIZATION {r};"
        ));
        s.push(format!(
            "CREATE OR REPLACE FUNCTION pgbouncer.get_auth(username TEXT) RETURNS TABLE(username TEXT, password TEXT) \
             LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS \
             $$SELECT rolname::TEXT, rolpassword::TEXT FROM pg_catalog.pg_authid WHERE pg_authid.rolname = $1 \
             AND pg_authid.rolcanlogin AND NOT pg_authid.rolsuper AND NOT pg_authid.rolreplication \
             AND pg_authid.rolname <> {lit} AND (pg_authid.rolvaliduntil IS NULL OR pg_authid.rolvaliduntil >= CURRENT_TIMESTAMP)$$;"
        ));
        s.push("REVOKE ALL ON FUNCTION pgbouncer.get_auth(username TEXT) FROM PUBLIC;".to_string());
        s.push(format!(
            "GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(username TEXT) TO {r};"
        ));
    }
    s
}

/// SQL run inside one of the user's databases (schema creation, public schema access).
pub fn role_db_sql(role: &Role, auto_schema: bool) -> Vec<String> {
    let r = quote_ident(&role.role);
    let mut s = Vec::new();
    if auto_schema && role.role != "postgres" {
        s.push(format!(
            "CREATE SCHEMA IF NOT EXISTS {r} AUTHORIZATION {r};"
        ));
    }
    if role.grant_public_schema {
        s.push(format!("GRANT ALL ON SCHEMA public TO {r};"));
    }
    s
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A new password for `role` from the reconcile's entropy (separated per Secret name), without
/// its verifier: the reconcile that reads the stored password back computes it (see
/// [`Credentials`]), so a plan from an empty cluster runs no PBKDF2.
pub fn generate_credentials(env: &crate::Env, role: &Role) -> Credentials {
    let alphabet = if role.alnum {
        scram::ALNUM_ALPHABET
    } else {
        scram::ASCII_ALPHABET
    };
    let password = env
        .rng(&format!("password/{}", role.secret))
        .string(alphabet, scram::PASSWORD_LEN);
    Credentials {
        password,
        verifier: None,
    }
}

/// A cheap fingerprint binding `verifier` to the `password` it was computed from (SHA-256 of
/// both, 128 bits as hex). Stored in the Secret's `verifier-of` annotation: when the user
/// changes the password (or the verifier), the fingerprint no longer matches and the verifier
/// is recomputed once. It reveals nothing the same Secret's data does not already hold.
pub fn verifier_fingerprint(password: &str, verifier: &str) -> String {
    let mut input = Vec::with_capacity(password.len() + verifier.len() + 24);
    input.extend_from_slice(b"tusk-verifier-of/v1\0");
    input.extend_from_slice(verifier.as_bytes());
    input.push(0);
    input.extend_from_slice(password.as_bytes());
    let mut hex = scram::sha256_hex(&input);
    hex.truncate(32);
    hex
}

/// A verifier for `password` with a fresh salt.
pub fn verifier_for(env: &crate::Env, role: &Role, password: &str) -> String {
    let rng = env.rng(&format!("salt/{}", role.secret));
    let mut salt = [0u8; scram::SALT_LEN];
    for chunk in salt.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    scram::verifier(password, &salt, scram::ITERATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(uri_escape("a+b/c"), "a%2Bb%2Fc");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
