//! Leader election on a coordination.k8s.io/v1 Lease, so two replicas never reconcile at once.
//!
//! The holder renews `spec.renewTime` every renew period; anyone may take the Lease over once
//! `renewTime + leaseDurationSeconds` has passed. Every write is conditional on the
//! resourceVersion that was read, so two candidates racing for an expired Lease cannot both win.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;

/// How long giving the Lease up on shutdown may take.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Elector {
    api: Api<Lease>,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("leader election on Lease {namespace}/{name}: {source}")]
pub struct LeaseError {
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        crate::kinds::require_typed::<Lease>("update").expect("Lease declared in kinds::KINDS");
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    fn err(&self, source: kube::Error) -> LeaseError {
        LeaseError {
            namespace: self.api.namespace().unwrap_or_default().to_string(),
            name: self.name.clone(),
            source,
        }
    }

    /// Acquire or renew; Ok(true) when this identity holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let existing = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.err(e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration.as_secs() as i32),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.err(e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != self.identity {
            let duration = spec
                .lease_duration_seconds
                .map(|s| i64::from(s) * 1000)
                .unwrap_or(self.duration.as_millis() as i64);
            let renewed = spec
                .renew_time
                .as_ref()
                .map(|t| t.0.as_millisecond())
                .unwrap_or(0);
            let expired = renewed + duration < now.as_millisecond();
            if !holder.is_empty() && !expired {
                return Ok(false);
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(self.duration.as_secs() as i32);
        spec.renew_time = Some(MicroTime(now));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Give the Lease up (on shutdown) so a standby takes over at once instead of after expiry.
    /// Bounded by [`RELEASE_TIMEOUT`]: an API server that stopped answering must not keep the
    /// process from exiting (the standby then waits for the Lease to expire).
    pub async fn release(&self) -> Result<(), LeaseError> {
        match tokio::time::timeout(RELEASE_TIMEOUT, self.release_unbounded()).await {
            Ok(done) => done,
            Err(_) => Err(self.err(kube::Error::Service(
                format!(
                    "no answer from the API server within {} s",
                    RELEASE_TIMEOUT.as_secs()
                )
                .into(),
            ))),
        }
    }

    async fn release_unbounded(&self) -> Result<(), LeaseError> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An API server that accepts connections and never answers (one shutting down, or
    /// wedged): releasing the Lease gives up after RELEASE_TIMEOUT instead of hanging.
    #[tokio::test]
    async fn release_gives_up_on_a_silent_api_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                open.push(conn);
            }
        });
        let config = kube::Config::new(url.parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let el = Elector::new(client, "default", "lock", "me", Duration::from_secs(15));
        let outcome = tokio::time::timeout(RELEASE_TIMEOUT * 4, el.release())
            .await
            .expect("release returned");
        let err = outcome.expect_err("nothing was released").to_string();
        assert!(
            err.contains("default/lock") && err.contains("no answer"),
            "{err}"
        );
        held.abort();
    }
}
