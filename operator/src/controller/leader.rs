//! Leader election with a `coordination.k8s.io/v1` Lease, so that two replicas never act on
//! the same buckets at once. Updates use the Lease's resourceVersion (optimistic concurrency):
//! of two replicas racing for an expired lease, the API server lets exactly one write win.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

/// Lease timing, as in client-go: the leader retries every `retry_period` and gives up writing
/// when it has not renewed for `renew_deadline`, which is shorter than `lease_duration`, so it
/// stops before any other replica may take over.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseTiming {
    /// `Err` names the flag when the deadline does not leave room before the lease expires.
    pub fn check(&self) -> Result<(), String> {
        if self.retry_period.is_zero() || self.renew_deadline <= self.retry_period {
            return Err(
                "--renew-deadline-seconds must be greater than --retry-period-seconds".into(),
            );
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(
                "--renew-deadline-seconds must be less than --lease-duration-seconds".into(),
            );
        }
        Ok(())
    }
}

fn micro(t: DateTime<Utc>) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn to_chrono(t: &MicroTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.0.as_microsecond())
}

/// Whether `identity` may take or keep the lease at `now` (pure, for tests).
pub fn may_hold(spec: Option<&LeaseSpec>, identity: &str, now: DateTime<Utc>) -> bool {
    let Some(spec) = spec else { return true };
    match spec.holder_identity.as_deref() {
        None | Some("") => true,
        Some(h) if h == identity => true,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            spec.renew_time
                .as_ref()
                .and_then(to_chrono)
                .is_none_or(|renewed| now > renewed + chrono::TimeDelta::seconds(duration))
        }
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
}

impl LeaderElector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        LeaderElector {
            api,
            name: name.into(),
            identity: identity.into(),
            timing,
        }
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Takes or renews the lease. `Ok(false)` when another replica holds it.
    pub async fn try_acquire(&self, now: DateTime<Utc>) -> Result<bool, kube::Error> {
        let duration = i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(15);
        let current = self.api.get_opt(&self.name).await?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(micro(now)),
                    renew_time: Some(micro(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        if !may_hold(lease.spec.as_ref(), &self.identity, now) {
            return Ok(false);
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(micro(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(duration);
        spec.renew_time = Some(micro(now));
        // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up on clean shutdown so another replica can take over at once.
    /// `Ok(true)` only when this replica still held it and released it.
    pub async fn release(&self) -> Result<bool, kube::Error> {
        if let Some(mut lease) = self.api.get_opt(&self.name).await?
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            // resourceVersion guards this too: a lease taken meanwhile makes it a 409.
            return match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spec(holder: &str, renewed: DateTime<Utc>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(micro(renewed)),
            ..Default::default()
        }
    }

    #[test]
    fn a_live_lease_of_another_replica_is_respected_and_an_expired_one_taken() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
            .single()
            .expect("valid");
        let s = spec("pod-a", t0);
        assert!(!may_hold(
            Some(&s),
            "pod-b",
            t0 + chrono::TimeDelta::seconds(10)
        ));
        assert!(may_hold(
            Some(&s),
            "pod-a",
            t0 + chrono::TimeDelta::seconds(10)
        ));
        assert!(may_hold(
            Some(&s),
            "pod-b",
            t0 + chrono::TimeDelta::seconds(16)
        ));
        assert!(may_hold(None, "pod-b", t0));
    }

    #[test]
    fn the_renew_deadline_must_end_before_the_lease_does() {
        assert!(LeaseTiming::default().check().is_ok());
        let t = LeaseTiming {
            renew_deadline: Duration::from_secs(15),
            ..LeaseTiming::default()
        };
        assert!(t.check().is_err());
    }
}
