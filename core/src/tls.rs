//! Internal TLS: the certificates tusk makes when the user brings none.
//!
//! Like the Percona operator (which follows Crunchy PGO's `internal/pki`), every cluster gets
//! its own ECDSA P-256 root CA and leaf certificates signed by it:
//!
//! | Secret | keys | what |
//! |---|---|---|
//! | `<cluster>-cluster-ca-cert` | `root.crt`, `root.key` | root CA, 10 years (skipped with `customRootCATLSSecret`, whose keys are the same) |
//! | `<cluster>-cluster-cert` | `tls.crt`, `tls.key`, `ca.crt` | PostgreSQL server certificate for the `-primary`, `-ha`, `-replicas` Services and every pod of `-pods` |
//! | `<cluster>-replication-cert` | `tls.crt`, `tls.key`, `ca.crt` | client certificate of the replication user, CN `_crunchyrepl` |
//! | `<cluster>-pgbouncer-cert` | `tls.crt`, `tls.key`, `ca.crt` | pgBouncer's frontend certificate for the `-pgbouncer` Service |
//!
//! PGO keeps pgBouncer's frontend pair in the `<cluster>-pgbouncer` Secret; tusk keeps that
//! Secret for pgBouncer's credentials and uses the name Percona gives the same certificate under
//! cert-manager (`<cluster>-pgbouncer-cert`).
//!
//! The core stays pure: keys and serial numbers are derived from [`Env::entropy`] (HMAC-SHA256
//! per Secret), signatures are RFC 6979 deterministic, validity starts at [`Env::now`]. So the
//! same `Env` renders byte-identical certificates.
//!
//! Certificates are made once and then reused. A reconcile only compares bytes and reads two
//! annotations (`pgv2.percona.com/tls-not-after`, `pgv2.percona.com/tls-subject`): it parses
//! a certificate only when the annotation is missing, and signs only when a leaf is missing,
//! signed by another CA, for other names, or within [`RENEW_BEFORE_SECONDS`] of its expiry.
//! Renewal keeps the CA. A user-provided Secret always wins: tusk then generates nothing for
//! that role (and, with `customTLSSecret`, no replication certificate either, since it would
//! come from a different CA than the user's).

use crate::Env;
use crate::build::memo::{self, Rendered};
use crate::build::{Ctx, to_json};
use crate::labels;
use crate::naming;
use crate::observed::{Observed, annotation, by_name};
use crate::reconcile::compare::hash_hex;
use base64::Engine;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::{Secret, SecretProjection};
use k8s_openapi::jiff::Timestamp;
use p256::elliptic_curve::zeroize::Zeroize;
use p256::pkcs8::DecodePrivateKey;
use p256::{FieldBytes, NonZeroScalar};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{GeneralizedTime, Ia5String};
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{DateTime, DecodePem, EncodePem};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

mod field;
mod key;
pub use key::{EcKey, mul_generator};

/// Root CA lifetime (PGO: 10 years).
pub const CA_VALIDITY_SECONDS: i64 = 10 * 365 * 24 * 3600;
/// Leaf lifetime (PGO: 1 year).
pub const LEAF_VALIDITY_SECONDS: i64 = 365 * 24 * 3600;
/// A certificate this close to its expiry is replaced (cert-manager's renewBefore in Percona).
pub const RENEW_BEFORE_SECONDS: i64 = 30 * 24 * 3600;
/// `notBefore` lies this far before `now`, so that a node whose clock lags a little accepts a
/// certificate made a moment ago.
pub const BACKDATE_SECONDS: i64 = 3600;

pub const CA_COMMON_NAME: &str = "postgres-operator-ca";
/// The replication user authenticates with this CN (research/percona.md §2.6).
pub const REPLICATION_COMMON_NAME: &str = "_crunchyrepl";

pub const ROOT_CERT_KEY: &str = "root.crt";
pub const ROOT_KEY_KEY: &str = "root.key";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
pub const CA_CERT_KEY: &str = "ca.crt";

/// When the certificate of a tusk-made TLS Secret expires (RFC 3339), so that a reconcile
/// knows without parsing it.
pub const ANNOTATION_NOT_AFTER: &str = "pgv2.percona.com/tls-not-after";
/// Hash of the subject and DNS names a leaf was issued for; a change re-issues it.
pub const ANNOTATION_SUBJECT: &str = "pgv2.percona.com/tls-subject";

/// Values of `postgres-operator.crunchydata.com/cluster-certificate` on the Secrets.
pub const CERT_LABEL_ROOT: &str = "root-ca";
pub const CERT_LABEL_SERVER: &str = "postgres-tls";
pub const CERT_LABEL_REPLICATION: &str = "replication-client-tls";
pub const CERT_LABEL_PGBOUNCER: &str = "pgbouncer-frontend-tls";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "custom root CA Secret {0:?} (spec.secrets.customRootCATLSSecret) was not found among the cluster's Secrets; create it with keys root.crt and root.key and label it postgres-operator.crunchydata.com/cluster=<cluster>"
    )]
    MissingCustomRoot(String),
    #[error(
        "root CA Secret {secret:?} cannot sign certificates: {what}; fix its root.crt/root.key (a PEM certificate and its P-256 key)"
    )]
    BadCa { secret: String, what: String },
    #[error("cannot build the certificate of Secret {secret:?}: {what}")]
    Build { secret: String, what: String },
    #[error("time {0} cannot be written into a certificate (before 1970 or after 9999)")]
    Time(i64),
}

/// Which certificate a leaf Secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    Server,
    Replication,
    PgBouncer,
}

/// A leaf certificate tusk generates for this cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    pub kind: LeafKind,
    pub secret: String,
    pub common_name: String,
    pub dns_names: Vec<String>,
}

impl LeafSpec {
    /// What the `ANNOTATION_SUBJECT` annotation records.
    pub fn subject_hash(&self) -> String {
        hash_hex(&json!([self.common_name, self.dns_names]))
    }

    fn label(&self) -> &'static str {
        match self.kind {
            LeafKind::Server => CERT_LABEL_SERVER,
            LeafKind::Replication => CERT_LABEL_REPLICATION,
            LeafKind::PgBouncer => CERT_LABEL_PGBOUNCER,
        }
    }
}

impl memo::Weigh for Vec<(LeafSpec, String)> {
    fn weight(&self) -> usize {
        self.iter()
            .map(|(s, h)| {
                let names: usize = s.dns_names.iter().map(|n| n.len() + 24).sum();
                std::mem::size_of::<(LeafSpec, String)>()
                    + s.secret.len()
                    + s.common_name.len()
                    + names
                    + h.len()
            })
            .sum()
    }
}

/// The Secret name of pgBouncer's generated frontend certificate.
pub fn pgbouncer_cert_secret(cluster: &str) -> String {
    format!("{cluster}-pgbouncer-cert")
}

/// The names a Service answers to inside the cluster, most qualified first (PGO's
/// `ServiceDNSNames`): `svc.ns.svc.<domain>`, `svc.ns.svc`, `svc.ns`, `svc`.
pub fn service_dns_names(service: &str, ns: &str, domain: &str) -> Vec<String> {
    vec![
        format!("{service}.{ns}.svc.{domain}"),
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}"),
        service.to_string(),
    ]
}

fn domain<'a>(ctx: &'a Ctx) -> &'a str {
    ctx.dns_suffix()
        .filter(|s| !s.is_empty())
        .unwrap_or("cluster.local")
}

fn custom_server<'a>(ctx: &'a Ctx) -> Option<&'a SecretProjection> {
    ctx.cr
        .spec
        .secrets
        .as_ref()
        .and_then(|s| s.custom_tls_secret.as_ref())
}

fn custom_replication<'a>(ctx: &'a Ctx) -> Option<&'a SecretProjection> {
    ctx.cr
        .spec
        .secrets
        .as_ref()
        .and_then(|s| s.custom_replication_tls_secret.as_ref())
}

fn custom_root<'a>(ctx: &'a Ctx) -> Option<&'a SecretProjection> {
    ctx.cr
        .spec
        .secrets
        .as_ref()
        .and_then(|s| s.custom_root_ca_tls_secret.as_ref())
}

fn custom_pgbouncer<'a>(ctx: &'a Ctx) -> Option<&'a SecretProjection> {
    ctx.cr
        .pgbouncer()
        .and_then(|p| p.custom_tls_secret.as_ref())
        .or_else(|| custom_server(ctx))
}

/// Common names are limited to 64 characters (RFC 5280 ub-common-name); a long FQDN falls
/// back to the bare Service name, which the SANs cover anyway.
fn common_name(names: &[String]) -> String {
    names
        .iter()
        .find(|n| n.len() <= 64)
        .or(names.last())
        .cloned()
        .unwrap_or_default()
}

/// The leaves tusk generates for this cluster: those the user does not provide.
pub fn leaf_specs(ctx: &Ctx) -> Vec<LeafSpec> {
    let (c, ns, d) = (ctx.name, ctx.ns, domain(ctx));
    let mut out = Vec::new();
    if custom_server(ctx).is_none() {
        let mut dns = service_dns_names(&naming::primary_service(c), ns, d);
        dns.extend(service_dns_names(&naming::ha_service(c), ns, d));
        dns.extend(service_dns_names(&naming::replicas_service(c), ns, d));
        let pods = naming::pods_service(c);
        dns.extend([
            format!("*.{pods}.{ns}.svc.{d}"),
            format!("*.{pods}.{ns}.svc"),
            format!("*.{pods}.{ns}"),
        ]);
        out.push(LeafSpec {
            kind: LeafKind::Server,
            secret: naming::cluster_cert_secret(c),
            common_name: common_name(&dns[..4]),
            dns_names: dns,
        });
        // With the user's server certificate, a generated replication certificate would come
        // from another CA than the `ca.crt` PostgreSQL trusts.
        if custom_replication(ctx).is_none() {
            out.push(LeafSpec {
                kind: LeafKind::Replication,
                secret: naming::replication_cert_secret(c),
                common_name: REPLICATION_COMMON_NAME.into(),
                dns_names: Vec::new(),
            });
        }
    }
    if ctx.has_pgbouncer() && custom_pgbouncer(ctx).is_none() {
        let dns = service_dns_names(&naming::pgbouncer(c), ns, d);
        out.push(LeafSpec {
            kind: LeafKind::PgBouncer,
            secret: pgbouncer_cert_secret(c),
            common_name: common_name(&dns),
            dns_names: dns,
        });
    }
    out
}

/// The projected-volume sources with the database's certificates: the server pair under
/// `tls.*`/`ca.crt` and the replication client pair under `replication/`.
pub fn instance_cert_sources(ctx: &Ctx) -> Vec<Value> {
    let items = |prefix: &str| {
        json!([
            {"key": TLS_CERT_KEY, "path": format!("{prefix}tls.crt")},
            {"key": TLS_KEY_KEY, "path": format!("{prefix}tls.key")},
            {"key": CA_CERT_KEY, "path": format!("{prefix}ca.crt")},
        ])
    };
    let mut sources = Vec::new();
    match custom_server(ctx) {
        Some(s) => sources.push(json!({"secret": to_json(s)})),
        None => sources.push(json!({"secret": {
            "name": naming::cluster_cert_secret(ctx.name),
            "items": items(""),
        }})),
    }
    let replication = match custom_replication(ctx) {
        Some(r) => Some(to_json(r)),
        None if custom_server(ctx).is_none() => {
            Some(json!({"name": naming::replication_cert_secret(ctx.name)}))
        }
        None => None,
    };
    if let Some(mut r) = replication {
        // The replication certificate sits beside the server one under its own names.
        r["items"] = items("replication/");
        sources.push(json!({"secret": r}));
    }
    sources
}

/// The Secret projection pgBouncer mounts at `/etc/pgbouncer/tls` (`tls.crt`, `tls.key`,
/// `ca.crt`): its own custom Secret, else the cluster's custom one, else the generated one.
pub fn pgbouncer_cert_source(ctx: &Ctx) -> Value {
    match custom_pgbouncer(ctx) {
        Some(s) => to_json(s),
        None => json!({
            "name": pgbouncer_cert_secret(ctx.name),
            "items": [
                {"key": TLS_CERT_KEY, "path": "tls.crt"},
                {"key": TLS_KEY_KEY, "path": "tls.key"},
                {"key": CA_CERT_KEY, "path": "ca.crt"},
            ],
        }),
    }
}

/// A certificate and its key, PEM-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: Timestamp,
}

/// A CA that can sign: its key, its subject and its certificate as PEM.
pub struct Authority {
    key: EcKey,
    subject: Name,
    pub cert_pem: String,
}

impl std::fmt::Debug for Authority {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("subject", &self.subject.to_string())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new self-signed root CA, its key derived from `env` for `purpose`.
    pub fn generate(env: &Env, purpose: &str) -> Result<(Self, Issued), TlsError> {
        let (ca, issued, _) = Self::generate_with_leaves(env, purpose, &[])?;
        Ok((ca, issued))
    }

    /// A new self-signed root CA and leaves for `specs` signed by it, all made together: the
    /// keys' public points share their inversions, and so do the signatures' nonces (see
    /// `key`). The same certificates and keys as [`Self::generate`] then [`Self::issue`].
    pub fn generate_with_leaves(
        env: &Env,
        purpose: &str,
        specs: &[&LeafSpec],
    ) -> Result<(Self, Issued, Vec<Issued>), TlsError> {
        let mut secrets =
            vec![derive_secret(env, &format!("key/{purpose}")).map_err(build_err(purpose))?];
        for spec in specs {
            secrets.push(
                derive_secret(env, &format!("key/{}", spec.secret))
                    .map_err(build_err(&spec.secret))?,
            );
        }
        let mut keys = EcKey::from_scalars(&secrets);
        secrets.zeroize();
        let ca_key = keys.remove(0);
        let subject = Name::from_str(&format!("CN={CA_COMMON_NAME}"))
            .map_err(|e| build_err(purpose)(e.to_string()))?;
        let mut drafts = Vec::with_capacity(specs.len() + 1);
        drafts.push(draft(
            Profile::Root,
            ca_key.clone(),
            &ca_key,
            subject.clone(),
            &[],
            env,
            purpose,
            CA_VALIDITY_SECONDS,
        )?);
        for (spec, key) in specs.iter().zip(keys) {
            drafts.push(leaf_draft(&subject, &ca_key, spec, key, env)?);
        }
        let mut issued = sign_drafts(&ca_key, drafts)?;
        let ca_issued = issued.remove(0);
        let ca = Authority {
            key: ca_key,
            subject,
            cert_pem: ca_issued.cert_pem.clone(),
        };
        Ok((ca, ca_issued, issued))
    }

    /// The CA stored in a Secret (`root.crt` and a SEC1 or PKCS#8 `root.key`); checks that the
    /// key belongs to the certificate.
    pub fn from_pem(secret: &str, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let bad = |what: String| TlsError::BadCa {
            secret: secret.to_string(),
            what,
        };
        let cert = Certificate::from_pem(cert_pem).map_err(|e| bad(format!("root.crt: {e}")))?;
        let key_str =
            std::str::from_utf8(key_pem).map_err(|_| bad("root.key is not PEM".into()))?;
        let secret_key = p256::SecretKey::from_sec1_pem(key_str)
            .or_else(|_| p256::SecretKey::from_pkcs8_pem(key_str))
            .map_err(|_| bad("root.key is not a P-256 private key in PEM".into()))?;
        let key = EcKey::from_secret_key(&secret_key);
        let spki =
            SubjectPublicKeyInfoOwned::from_key(*key.public()).map_err(|e| bad(e.to_string()))?;
        if spki != cert.tbs_certificate.subject_public_key_info {
            return Err(bad("root.key does not belong to root.crt".into()));
        }
        let cert_pem = String::from_utf8_lossy(cert_pem).into_owned();
        Ok(Authority {
            key,
            subject: cert.tbs_certificate.subject,
            cert_pem,
        })
    }

    /// A leaf for `spec`, its key derived from `env` for the Secret's name.
    pub fn issue(&self, spec: &LeafSpec, env: &Env) -> Result<Issued, TlsError> {
        Ok(self.issue_all(&[spec], env)?.remove(0))
    }

    /// Leaves for `specs`, in order, made together (see [`Self::generate_with_leaves`]).
    pub fn issue_all(&self, specs: &[&LeafSpec], env: &Env) -> Result<Vec<Issued>, TlsError> {
        let mut secrets = Vec::with_capacity(specs.len());
        for spec in specs {
            secrets.push(
                derive_secret(env, &format!("key/{}", spec.secret))
                    .map_err(build_err(&spec.secret))?,
            );
        }
        let keys = EcKey::from_scalars(&secrets);
        secrets.zeroize();
        let drafts = specs
            .iter()
            .zip(keys)
            .map(|(spec, key)| leaf_draft(&self.subject, &self.key, spec, key, env))
            .collect::<Result<Vec<_>, _>>()?;
        sign_drafts(&self.key, drafts)
    }
}

fn build_err(secret: &str) -> impl Fn(String) -> TlsError + '_ {
    move |what| TlsError::Build {
        secret: secret.to_string(),
        what,
    }
}

type HmacSha256 = Hmac<Sha256>;

/// 32 bytes for `purpose` from the reconcile's entropy: HMAC-SHA256 keyed by it, so that every
/// Secret gets an independent key and the full 256 bits of entropy carry over.
fn derive_bytes(env: &Env, purpose: &str, counter: u32) -> Result<[u8; 32], String> {
    let mut mac = HmacSha256::new_from_slice(&env.entropy).map_err(|e| e.to_string())?;
    mac.update(b"tusk/tls/");
    mac.update(purpose.as_bytes());
    mac.update(&counter.to_be_bytes());
    Ok(mac.finalize().into_bytes().into())
}

/// The private scalar for `purpose`.
fn derive_secret(env: &Env, purpose: &str) -> Result<NonZeroScalar, String> {
    // A draw outside 1..n (probability ~2^-32) is skipped, like rejection sampling.
    for counter in 0..8 {
        let bytes = derive_bytes(env, purpose, counter)?;
        let secret: Option<NonZeroScalar> =
            NonZeroScalar::from_repr(*FieldBytes::from_slice(&bytes)).into();
        if let Some(s) = secret {
            return Ok(s);
        }
    }
    Err("no valid P-256 scalar could be derived".into())
}

#[cfg(test)]
fn derive_key(env: &Env, purpose: &str) -> Result<EcKey, String> {
    Ok(EcKey::from_scalars(&[derive_secret(env, purpose)?]).remove(0))
}

fn cert_time(secs: i64) -> Result<Time, TlsError> {
    let d = u64::try_from(secs).map_err(|_| TlsError::Time(secs))?;
    let dt =
        DateTime::from_unix_duration(Duration::from_secs(d)).map_err(|_| TlsError::Time(secs))?;
    // The builder turns this into UTCTime before 2050, as RFC 5280 asks.
    Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
}

/// A certificate up to its signature: the builder (which makes the to-be-signed part), the
/// subject's key and what the Secret records.
struct Draft<'a> {
    builder: CertificateBuilder<'a, EcKey>,
    subject_key: EcKey,
    purpose: String,
    not_after: i64,
}

fn leaf_draft<'a>(
    issuer: &Name,
    issuer_key: &'a EcKey,
    spec: &LeafSpec,
    key: EcKey,
    env: &Env,
) -> Result<Draft<'a>, TlsError> {
    let subject = Name::from_str(&format!("CN={}", spec.common_name))
        .map_err(|e| build_err(&spec.secret)(e.to_string()))?;
    let profile = Profile::Leaf {
        issuer: issuer.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    draft(
        profile,
        key,
        issuer_key,
        subject,
        &spec.dns_names,
        env,
        &spec.secret,
        LEAF_VALIDITY_SECONDS,
    )
}

#[allow(clippy::too_many_arguments)]
fn draft<'a>(
    profile: Profile,
    subject_key: EcKey,
    issuer_key: &'a EcKey,
    subject: Name,
    dns_names: &[String],
    env: &Env,
    purpose: &str,
    lifetime: i64,
) -> Result<Draft<'a>, TlsError> {
    let err = build_err(purpose);
    let now = env.now.as_second();
    let not_after = now.saturating_add(lifetime);
    let validity = Validity {
        not_before: cert_time(now.saturating_sub(BACKDATE_SECONDS))?,
        not_after: cert_time(not_after)?,
    };
    // A positive 128-bit serial with its top bit clear, so DER needs no sign byte.
    let mut serial = [0u8; 16];
    serial
        .copy_from_slice(&derive_bytes(env, &format!("serial/{purpose}"), 0).map_err(&err)?[..16]);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial = SerialNumber::new(&serial).map_err(|e| err(e.to_string()))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(*subject_key.public())
        .map_err(|e| err(e.to_string()))?;
    let mut builder = CertificateBuilder::new(profile, serial, validity, subject, spki, issuer_key)
        .map_err(|e| err(e.to_string()))?;
    if !dns_names.is_empty() {
        let names = dns_names
            .iter()
            .map(|n| Ia5String::new(n).map(GeneralName::DnsName))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(format!("DNS name: {e}")))?;
        builder
            .add_extension(&SubjectAltName(names))
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(Draft {
        builder,
        subject_key,
        purpose: purpose.to_string(),
        not_after,
    })
}

/// Signs every draft with `issuer_key` (the one each draft's builder was made with), the
/// signatures made together, and encodes certificates and keys.
fn sign_drafts(issuer_key: &EcKey, drafts: Vec<Draft<'_>>) -> Result<Vec<Issued>, TlsError> {
    use x509_cert::spki::SignatureBitStringEncoding;
    let mut drafts = drafts;
    let mut tbs = Vec::with_capacity(drafts.len());
    for d in &mut drafts {
        tbs.push(
            d.builder
                .finalize()
                .map_err(|e| build_err(&d.purpose)(e.to_string()))?,
        );
    }
    let msgs: Vec<&[u8]> = tbs.iter().map(Vec::as_slice).collect();
    let sigs = issuer_key.sign_messages(&msgs).map_err(|e| {
        let purpose = drafts.first().map_or("", |d| d.purpose.as_str());
        build_err(purpose)(e.to_string())
    })?;
    drafts
        .into_iter()
        .zip(sigs)
        .map(|(d, sig)| {
            let err = build_err(&d.purpose);
            let bits = sig
                .to_der()
                .to_bitstring()
                .map_err(|e| err(e.to_string()))?;
            let cert = d.builder.assemble(bits).map_err(|e| err(e.to_string()))?;
            let cert_pem = cert
                .to_pem(LineEnding::LF)
                .map_err(|e| err(e.to_string()))?;
            // PKCS#8 rather than SEC1: RustCrypto's SEC1 encoding leaves out the curve
            // parameters, without which OpenSSL (and so PostgreSQL and pgBouncer) cannot load
            // the key.
            let key_pem = pkcs8_pem(&d.subject_key).map_err(|e| err(e.to_string()))?;
            Ok(Issued {
                cert_pem,
                key_pem,
                not_after: Timestamp::from_second(d.not_after)
                    .map_err(|_| TlsError::Time(d.not_after))?,
            })
        })
        .collect()
}

/// DER of a P-256 PKCS#8 `PrivateKeyInfo` up to the private scalar: version 0, algorithm
/// id-ecPublicKey with the prime256v1 parameters, then the SEC1 `ECPrivateKey` (version 1,
/// 32-byte scalar follows).
const PKCS8_P256_HEAD: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
/// Between the scalar and the uncompressed public point: `[1] BIT STRING` of 66 bytes.
const PKCS8_P256_MID: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];

/// The key as PKCS#8 PEM, the same bytes `SecretKey::to_pkcs8_pem` writes (a test checks),
/// but with the public point the key already holds: RustCrypto's encoder derives it again, a
/// full scalar multiplication per key.
fn pkcs8_pem(key: &EcKey) -> Result<String, x509_cert::der::pem::Error> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::elliptic_curve::zeroize::Zeroizing;
    let point = key.public().as_affine().to_encoded_point(false);
    let mut der = Zeroizing::new(Vec::with_capacity(138));
    der.extend_from_slice(&PKCS8_P256_HEAD);
    der.extend_from_slice(&key.to_bytes());
    der.extend_from_slice(&PKCS8_P256_MID);
    der.extend_from_slice(point.as_bytes());
    x509_cert::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
}

/// The `notAfter` of a PEM certificate.
pub fn not_after_of(cert_pem: &[u8]) -> Option<Timestamp> {
    let cert = Certificate::from_pem(cert_pem).ok()?;
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

/// The key of a projected Secret that lands at `path` (its `items`), else `path` itself.
fn projected_key<'a>(p: &'a SecretProjection, path: &'a str) -> &'a str {
    p.items
        .iter()
        .flatten()
        .find(|i| i.path == path)
        .map_or(path, |i| i.key.as_str())
}

fn data<'a>(s: &'a Secret, key: &str) -> Option<&'a [u8]> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .filter(|b| !b.is_empty())
}

/// When the certificate under `cert_key` expires: from the annotation, else parsed.
fn observed_not_after(s: &Secret, cert_key: &str) -> Option<Timestamp> {
    annotation(&s.metadata, ANNOTATION_NOT_AFTER)
        .and_then(|a| a.parse::<Timestamp>().ok())
        .or_else(|| data(s, cert_key).and_then(not_after_of))
}

fn fresh(not_after: Option<Timestamp>, env: &Env) -> bool {
    not_after.is_some_and(|t| t.as_second() - env.now.as_second() > RENEW_BEFORE_SECONDS)
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// [`secret_object_uncached`] through the render memo, keyed by every argument (each
/// length-prefixed, the certificate and key bytes included).
fn secret_object(
    ctx: &Ctx,
    name: &str,
    cert_label: &str,
    entries: &[(&str, &[u8])],
    not_after: Timestamp,
    subject: Option<String>,
) -> Arc<Rendered> {
    let mut key = Vec::with_capacity(
        64 + entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>(),
    );
    let mut part = |b: &[u8]| {
        key.extend_from_slice(&(b.len() as u64).to_le_bytes());
        key.extend_from_slice(b);
    };
    part(b"tls-secret");
    part(name.as_bytes());
    part(cert_label.as_bytes());
    for (k, v) in entries {
        part(k.as_bytes());
        part(v);
    }
    part(&not_after.as_second().to_le_bytes());
    part(&not_after.subsec_nanosecond().to_le_bytes());
    match &subject {
        Some(s) => part(s.as_bytes()),
        None => part(b"\xff-none"),
    }
    memo::get(ctx, key, || {
        Rendered::new(vec![secret_object_uncached(
            ctx, name, cert_label, entries, not_after, subject,
        )])
    })
}

fn secret_object_uncached(
    ctx: &Ctx,
    name: &str,
    cert_label: &str,
    entries: &[(&str, &[u8])],
    not_after: Timestamp,
    subject: Option<String>,
) -> Value {
    let mut data = Map::new();
    for (k, v) in entries {
        data.insert((*k).to_string(), b64(v));
    }
    let mut ann = Map::new();
    ann.insert(
        ANNOTATION_NOT_AFTER.into(),
        Value::String(not_after.to_string()),
    );
    if let Some(s) = subject {
        ann.insert(ANNOTATION_SUBJECT.into(), Value::String(s));
    }
    let l = ctx
        .labels("pg")
        .with(labels::CLUSTER_CERTIFICATE, cert_label);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        // Like PVCs, TLS Secrets outlive the cluster unless `percona.com/delete-ssl` is set.
        "metadata": ctx.meta_unowned(name, l, Some(ann)),
        "type": "Opaque",
        "data": data,
    })
}

/// Where the CA comes from in this reconcile.
enum Ca<'a> {
    /// Stored in a Secret (tusk's or the user's); parsed only if a leaf must be signed.
    Stored {
        secret: &'a Secret,
        name: String,
        generated: bool,
    },
    /// Loaded and checked, or just made (then with its new certificate and key to store).
    Fresh(Authority, Option<Issued>),
}

/// Every TLS Secret tusk manages for this cluster, in apply order (CA first, then leaves).
/// Observed certificates are carried over unchanged while they are valid; only what is
/// missing, re-addressed or near expiry is signed anew.
pub fn desired_secrets(
    obs: &Observed,
    ctx: &Ctx,
    env: &Env,
) -> Result<Vec<Arc<Rendered>>, TlsError> {
    // The specs and their subject hashes depend on the CR alone.
    let specs = memo::get(ctx, "tls-leaf-specs", || {
        leaf_specs(ctx)
            .into_iter()
            .map(|s| {
                let h = s.subject_hash();
                (s, h)
            })
            .collect::<Vec<_>>()
    });
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let ca_name = naming::cluster_ca_secret(ctx.name);
    let mut out = Vec::with_capacity(specs.len() + 1);
    // A new CA re-signs every leaf: made together with it (keys and signatures batched).
    let all_specs: Vec<&LeafSpec> = specs.iter().map(|(s, _)| s).collect();
    let mut issued: Vec<Option<Issued>> = specs.iter().map(|_| None).collect();
    let generate = |issued: &mut Vec<Option<Issued>>| -> Result<Ca, TlsError> {
        let (a, ca_issued, leaves) = Authority::generate_with_leaves(env, &ca_name, &all_specs)?;
        *issued = leaves.into_iter().map(Some).collect();
        Ok(Ca::Fresh(a, Some(ca_issued)))
    };
    let mut ca = match custom_root(ctx) {
        Some(p) => Ca::Stored {
            secret: by_name(&obs.secrets, &p.name)
                .ok_or_else(|| TlsError::MissingCustomRoot(p.name.clone()))?,
            name: p.name.clone(),
            generated: false,
        },
        None => match by_name(&obs.secrets, &ca_name).filter(|s| {
            data(s, ROOT_CERT_KEY).is_some()
                && data(s, ROOT_KEY_KEY).is_some()
                && fresh(observed_not_after(s, ROOT_CERT_KEY), env)
        }) {
            Some(s) => Ca::Stored {
                secret: s,
                name: ca_name.clone(),
                generated: true,
            },
            None => generate(&mut issued)?,
        },
    };
    // The user's root CA Secret may name its keys differently and map them with `items`
    // (cr.yaml maps `tls.crt` → `root.crt`); tusk's own uses root.crt/root.key.
    let (root_crt, root_key) = match custom_root(ctx) {
        Some(p) => (
            projected_key(p, ROOT_CERT_KEY),
            projected_key(p, ROOT_KEY_KEY),
        ),
        None => (ROOT_CERT_KEY, ROOT_KEY_KEY),
    };
    let ca_pem = |ca: &Ca| -> Vec<u8> {
        match ca {
            Ca::Stored { secret, .. } => data(secret, root_crt).unwrap_or(&[]).to_vec(),
            Ca::Fresh(a, _) => a.cert_pem.as_bytes().to_vec(),
        }
    };
    let reusable = |(spec, subject): &(LeafSpec, String), ca_cert: &[u8]| -> Option<&Secret> {
        let s = by_name(&obs.secrets, &spec.secret)?;
        let ok = data(s, TLS_CERT_KEY).is_some()
            && data(s, TLS_KEY_KEY).is_some()
            && data(s, CA_CERT_KEY) == Some(ca_cert)
            && annotation(&s.metadata, ANNOTATION_SUBJECT) == Some(subject.as_str())
            && fresh(observed_not_after(s, TLS_CERT_KEY), env);
        ok.then_some(s)
    };
    let mut cert = ca_pem(&ca);
    let needs_signing = specs.iter().any(|s| reusable(s, &cert).is_none());
    // Parse (and check) a stored CA only when something must be signed with it.
    if needs_signing
        && let Ca::Stored {
            secret,
            name,
            generated,
        } = &ca
    {
        let loaded = Authority::from_pem(
            name,
            data(secret, root_crt).unwrap_or(&[]),
            data(secret, root_key).unwrap_or(&[]),
        );
        ca = match loaded {
            Ok(a) => Ca::Fresh(a, None),
            // tusk's own CA is unusable: replace it (every leaf follows, being signed anew).
            Err(_) if *generated => generate(&mut issued)?,
            Err(e) => return Err(e),
        };
        cert = ca_pem(&ca);
    }

    // tusk's CA Secret: the new one, or the stored one as it is.
    if custom_root(ctx).is_none() {
        let entries_and_expiry = match &ca {
            Ca::Fresh(_, Some(issued)) => Some((
                issued.cert_pem.as_bytes(),
                issued.key_pem.as_bytes(),
                issued.not_after,
            )),
            _ => by_name(&obs.secrets, &ca_name).map(|s| {
                (
                    data(s, ROOT_CERT_KEY).unwrap_or(&[]),
                    data(s, ROOT_KEY_KEY).unwrap_or(&[]),
                    observed_not_after(s, ROOT_CERT_KEY).unwrap_or(env.now),
                )
            }),
        };
        if let Some((crt, key, not_after)) = entries_and_expiry {
            out.push(secret_object(
                ctx,
                &ca_name,
                CERT_LABEL_ROOT,
                &[(ROOT_CERT_KEY, crt), (ROOT_KEY_KEY, key)],
                not_after,
                None,
            ));
        }
    }

    // Leaves to sign with a stored CA, signed together.
    if let Ca::Fresh(authority, _) = &ca {
        let missing: Vec<usize> = (0..specs.len())
            .filter(|&i| issued[i].is_none() && reusable(&specs[i], &cert).is_none())
            .collect();
        if !missing.is_empty() {
            let to_sign: Vec<&LeafSpec> = missing.iter().map(|&i| &specs[i].0).collect();
            for (i, leaf) in missing.into_iter().zip(authority.issue_all(&to_sign, env)?) {
                issued[i] = Some(leaf);
            }
        }
    }

    for (spec_subject, issued) in specs.iter().zip(issued) {
        let (spec, subject) = spec_subject;
        let obj = match (reusable(spec_subject, &cert), issued, &ca) {
            (Some(s), _, _) => secret_object(
                ctx,
                &spec.secret,
                spec.label(),
                &[
                    (TLS_CERT_KEY, data(s, TLS_CERT_KEY).unwrap_or(&[])),
                    (TLS_KEY_KEY, data(s, TLS_KEY_KEY).unwrap_or(&[])),
                    (CA_CERT_KEY, &cert),
                ],
                observed_not_after(s, TLS_CERT_KEY).unwrap_or(env.now),
                Some(subject.clone()),
            ),
            (None, Some(issued), _) => secret_object(
                ctx,
                &spec.secret,
                spec.label(),
                &[
                    (TLS_CERT_KEY, issued.cert_pem.as_bytes()),
                    (TLS_KEY_KEY, issued.key_pem.as_bytes()),
                    (CA_CERT_KEY, &cert),
                ],
                issued.not_after,
                Some(subject.clone()),
            ),
            // Unreachable: a leaf that needs signing made the CA `Fresh` above, and was signed.
            (None, None, Ca::Stored { name, .. }) => {
                return Err(TlsError::BadCa {
                    secret: name.clone(),
                    what: "was not loaded".into(),
                });
            }
            (None, None, Ca::Fresh(..)) => {
                return Err(TlsError::Build {
                    secret: spec.secret.clone(),
                    what: "was not signed".into(),
                });
            }
        };
        out.push(obj);
    }
    Ok(out)
}

/// Whether the PEM certificate `leaf` carries a valid signature by the CA certificate `ca`
/// (signature check only: no time or name checks). For tests and invariants.
pub fn signed_by(leaf: &[u8], ca: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    use x509_cert::der::Encode;
    let (Ok(leaf), Ok(ca)) = (Certificate::from_pem(leaf), Certificate::from_pem(ca)) else {
        return false;
    };
    let Some(ca_key) = ca
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .and_then(|b| p256::ecdsa::VerifyingKey::from_sec1_bytes(b).ok())
    else {
        return false;
    };
    let Some(sig) = leaf
        .signature
        .as_bytes()
        .and_then(|b| p256::ecdsa::Signature::from_der(b).ok())
    else {
        return false;
    };
    let Ok(tbs) = leaf.tbs_certificate.to_der() else {
        return false;
    };
    leaf.tbs_certificate.issuer == ca.tbs_certificate.subject && ca_key.verify(&tbs, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::ext::pkix::BasicConstraints;

    const NOW: i64 = crate::render::RENDER_EPOCH_SECONDS;

    fn env(seed: u64) -> Env {
        Env::from_seed(Timestamp::from_second(NOW).unwrap(), seed)
    }

    fn cluster() -> crate::api::PerconaPGCluster {
        serde_json::from_value(json!({
            "apiVersion": "pgv2.percona.com/v2",
            "kind": "PerconaPGCluster",
            "metadata": {"name": "c1", "namespace": "ns", "uid": "u"},
            "spec": {
                "crVersion": "2.9.0",
                "postgresVersion": 17,
                "instances": [{"name": "i1", "dataVolumeClaimSpec": {}}],
                "proxy": {"pgBouncer": {}},
                "backups": {"enabled": false},
            },
        }))
        .expect("test CR deserializes")
    }

    #[test]
    fn memoised_tls_secrets_follow_every_input() {
        let cr = cluster();
        let ctx = Ctx::new(&cr);
        let t = Timestamp::from_second(NOW).unwrap();
        let render = |crt: &[u8], not_after: Timestamp, subject: Option<&str>| {
            let args = |s: Option<&str>| s.map(str::to_string);
            let entries: &[(&str, &[u8])] = &[(TLS_CERT_KEY, crt), (TLS_KEY_KEY, b"k")];
            let warm = secret_object(&ctx, "s", "server", entries, not_after, args(subject));
            let cold = memo::without_memo(|| {
                secret_object(&ctx, "s", "server", entries, not_after, args(subject))
            });
            assert_eq!(warm.objects(), cold.objects());
            warm.object().clone()
        };
        let a = render(b"cert-a", t, Some("h"));
        assert_eq!(a, render(b"cert-a", t, Some("h")));
        assert_ne!(a, render(b"cert-b", t, Some("h")), "certificate bytes");
        let later = Timestamp::from_second(NOW + 1).unwrap();
        assert_ne!(a, render(b"cert-a", later, Some("h")), "expiry");
        assert_ne!(a, render(b"cert-a", t, None), "subject");
        assert_ne!(a, render(b"cert-a", t, Some("i")), "subject");
    }

    fn parse(pem: &str) -> Certificate {
        Certificate::from_pem(pem.as_bytes()).expect("certificate parses")
    }

    fn cn(name: &Name) -> String {
        name.to_string().trim_start_matches("CN=").to_string()
    }

    fn sans(cert: &Certificate) -> Vec<String> {
        cert.tbs_certificate
            .get::<SubjectAltName>()
            .expect("SAN decodes")
            .map(|(_, san)| {
                san.0
                    .iter()
                    .map(|g| match g {
                        GeneralName::DnsName(d) => d.to_string(),
                        other => panic!("unexpected SAN {other:?}"),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn spec(kind: LeafKind) -> LeafSpec {
        let cr = cluster();
        let ctx = Ctx::new(&cr);
        leaf_specs(&ctx)
            .into_iter()
            .find(|s| s.kind == kind)
            .expect("leaf generated")
    }

    #[test]
    fn pkcs8_encoding_matches_rustcrypto() {
        use p256::pkcs8::EncodePrivateKey;
        for seed in 0..16u64 {
            let key = derive_key(&env(seed), "key/test").unwrap();
            let theirs = p256::SecretKey::from_slice(&key.to_bytes())
                .unwrap()
                .to_pkcs8_pem(LineEnding::LF)
                .unwrap();
            assert_eq!(pkcs8_pem(&key).unwrap(), theirs.as_str(), "seed {seed}");
        }
    }

    #[test]
    fn ca_is_a_self_signed_p256_root() {
        let (ca, issued) = Authority::generate(&env(1), "c1-cluster-ca-cert").unwrap();
        let cert = parse(&issued.cert_pem);
        assert_eq!(cn(&cert.tbs_certificate.subject), CA_COMMON_NAME);
        assert_eq!(cert.tbs_certificate.issuer, cert.tbs_certificate.subject);
        let (critical, bc) = cert
            .tbs_certificate
            .get::<BasicConstraints>()
            .unwrap()
            .expect("basicConstraints present");
        assert!(critical && bc.ca);
        assert!(signed_by(
            issued.cert_pem.as_bytes(),
            ca.cert_pem.as_bytes()
        ));
        let v = &cert.tbs_certificate.validity;
        assert_eq!(
            v.not_before.to_unix_duration().as_secs() as i64,
            NOW - BACKDATE_SECONDS
        );
        assert_eq!(
            v.not_after.to_unix_duration().as_secs() as i64,
            NOW + CA_VALIDITY_SECONDS
        );
        assert_eq!(issued.not_after.as_second(), NOW + CA_VALIDITY_SECONDS);
        assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn server_leaf_verifies_against_its_ca_with_the_service_names() {
        let e = env(2);
        let (ca, _) = Authority::generate(&e, "c1-cluster-ca-cert").unwrap();
        let s = spec(LeafKind::Server);
        let issued = ca.issue(&s, &e).unwrap();
        let cert = parse(&issued.cert_pem);
        assert!(signed_by(
            issued.cert_pem.as_bytes(),
            ca.cert_pem.as_bytes()
        ));
        assert_eq!(
            cn(&cert.tbs_certificate.subject),
            "c1-primary.ns.svc.cluster.local"
        );
        let names = sans(&cert);
        for want in [
            "c1-primary.ns.svc.cluster.local",
            "c1-primary.ns.svc",
            "c1-primary.ns",
            "c1-primary",
            "c1-ha.ns.svc",
            "c1-replicas.ns.svc.cluster.local",
            "c1-replicas",
            "*.c1-pods.ns.svc.cluster.local",
            "*.c1-pods.ns.svc",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert_eq!(names, s.dns_names);
        let (_, bc) = cert
            .tbs_certificate
            .get::<BasicConstraints>()
            .unwrap()
            .unwrap();
        assert!(!bc.ca, "a leaf must not be a CA");
        let v = &cert.tbs_certificate.validity;
        assert_eq!(
            v.not_before.to_unix_duration().as_secs() as i64,
            NOW - BACKDATE_SECONDS
        );
        assert_eq!(
            v.not_after.to_unix_duration().as_secs() as i64,
            NOW + LEAF_VALIDITY_SECONDS
        );
        // Another CA did not sign it.
        let (other, _) = Authority::generate(&env(3), "c1-cluster-ca-cert").unwrap();
        assert!(!signed_by(
            issued.cert_pem.as_bytes(),
            other.cert_pem.as_bytes()
        ));
    }

    #[test]
    fn replication_and_pgbouncer_leaves() {
        let e = env(4);
        let (ca, _) = Authority::generate(&e, "ca").unwrap();
        let repl = parse(&ca.issue(&spec(LeafKind::Replication), &e).unwrap().cert_pem);
        assert_eq!(cn(&repl.tbs_certificate.subject), REPLICATION_COMMON_NAME);
        assert!(sans(&repl).is_empty());
        let bouncer = parse(&ca.issue(&spec(LeafKind::PgBouncer), &e).unwrap().cert_pem);
        assert_eq!(
            sans(&bouncer),
            [
                "c1-pgbouncer.ns.svc.cluster.local",
                "c1-pgbouncer.ns.svc",
                "c1-pgbouncer.ns",
                "c1-pgbouncer"
            ]
        );
    }

    #[test]
    fn dns_suffix_and_long_names() {
        let mut cr = cluster();
        cr.spec.cluster_service_dns_suffix = Some("corp.example".into());
        cr.metadata.name = Some("a-rather-long-cluster-name-for-testing".into());
        cr.metadata.namespace = Some("a-long-namespace-name".into());
        let ctx = Ctx::new(&cr);
        let s = &leaf_specs(&ctx)[0];
        assert_eq!(
            s.dns_names[0],
            "a-rather-long-cluster-name-for-testing-primary.a-long-namespace-name.svc.corp.example"
        );
        assert!(s.common_name.len() <= 64, "{}", s.common_name);
        let e = env(5);
        let (ca, _) = Authority::generate(&e, "ca").unwrap();
        assert!(ca.issue(s, &e).is_ok());
    }

    #[test]
    fn same_seed_same_certificates_other_seed_other_keys() {
        let s = spec(LeafKind::Server);
        let run = |seed| {
            let e = env(seed);
            let (ca, ca_issued) = Authority::generate(&e, "ca").unwrap();
            (ca_issued, ca.issue(&s, &e).unwrap())
        };
        assert_eq!(run(7), run(7));
        let (a, b) = (run(7), run(8));
        assert_ne!(a.0.key_pem, b.0.key_pem);
        assert_ne!(a.1.key_pem, b.1.key_pem);
        assert_ne!(a.1.cert_pem, b.1.cert_pem);
        // Keys of different Secrets differ within one reconcile.
        let e = env(7);
        let (ca, _) = Authority::generate(&e, "ca").unwrap();
        let k1 = ca.issue(&spec(LeafKind::Server), &e).unwrap().key_pem;
        let k2 = ca.issue(&spec(LeafKind::Replication), &e).unwrap().key_pem;
        assert_ne!(k1, k2);
    }

    #[test]
    fn stored_ca_loads_and_a_foreign_key_is_refused() {
        let e = env(9);
        let (_, issued) = Authority::generate(&e, "ca").unwrap();
        let ca = Authority::from_pem("s", issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
            .expect("own pair loads");
        let leaf = ca.issue(&spec(LeafKind::Server), &e).unwrap();
        assert!(signed_by(
            leaf.cert_pem.as_bytes(),
            issued.cert_pem.as_bytes()
        ));
        let (_, other) = Authority::generate(&env(10), "ca").unwrap();
        let err = Authority::from_pem("s", issued.cert_pem.as_bytes(), other.key_pem.as_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = Authority::from_pem("s", b"junk", issued.key_pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("\"s\""), "{err}");
        assert_eq!(not_after_of(leaf.cert_pem.as_bytes()), Some(leaf.not_after));
    }
}
