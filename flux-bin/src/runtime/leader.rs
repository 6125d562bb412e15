//! Leader election on a `coordination.k8s.io/v1` Lease, as controller-runtime does it: the
//! holder renews `renewTime` every retry period; others take over once
//! `renewTime + leaseDurationSeconds` has passed. The decision is pure; [`LeaderElector`]
//! performs it against the API with optimistic concurrency (resourceVersion).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

/// What an instance should do with the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// We hold it: renew `renewTime`.
    Renew,
    /// Free or expired: take it (increments `leaseTransitions` when the holder changes).
    Acquire,
    /// Someone else holds a live lease.
    Wait {
        /// The current holder.
        holder: String,
    },
}

/// Decides from the current Lease spec (`None`: no Lease yet).
pub fn decide(
    spec: Option<&LeaseSpec>,
    identity: &str,
    now: Timestamp,
    default_duration: Duration,
) -> LeaseDecision {
    let Some(spec) = spec else {
        return LeaseDecision::Acquire;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return LeaseDecision::Renew;
    }
    if holder.is_empty() {
        return LeaseDecision::Acquire;
    }
    let duration = spec.lease_duration_seconds.map_or(default_duration, |s| {
        Duration::from_secs(u64::try_from(s).unwrap_or(0))
    });
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match renewed {
        Some(renewed)
            if now
                < renewed + SignedDuration::try_from(duration).unwrap_or(SignedDuration::ZERO) =>
        {
            LeaseDecision::Wait { holder }
        }
        _ => LeaseDecision::Acquire,
    }
}

/// The Lease spec after acting on `decision` (`None` for [`LeaseDecision::Wait`]).
pub fn next_spec(
    current: Option<&LeaseSpec>,
    decision: &LeaseDecision,
    identity: &str,
    now: Timestamp,
    duration: Duration,
) -> Option<LeaseSpec> {
    let mut spec = current.cloned().unwrap_or_default();
    match decision {
        LeaseDecision::Wait { .. } => return None,
        LeaseDecision::Renew => {}
        LeaseDecision::Acquire => {
            let previous = spec.holder_identity.clone().unwrap_or_default();
            if !previous.is_empty() && previous != identity {
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.holder_identity = Some(identity.to_string());
            spec.acquire_time = Some(MicroTime(now));
        }
    }
    spec.lease_duration_seconds = Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX));
    spec.renew_time = Some(MicroTime(now));
    Some(spec)
}

/// Acquires and renews one Lease through the API.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
}

impl LeaderElector {
    /// An elector for Lease `name` in the Api's namespace.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, lease_duration: Duration) -> Self {
        LeaderElector {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration,
        }
    }

    /// One acquire-or-renew attempt; `Ok(true)` when we hold the Lease afterwards. Conflicts
    /// (another writer won) answer `Ok(false)`.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.identity,
            now,
            self.lease_duration,
        );
        let Some(spec) = next_spec(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &decision,
            &self.identity,
            now,
            self.lease_duration,
        ) else {
            return Ok(false);
        };
        let result = match current {
            Some(mut lease) => {
                lease.spec = Some(spec);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up on shutdown (`--leader-election-release-on-cancel`).
    pub async fn release(&self) -> Result<(), kube::Error> {
        if let Some(mut lease) = self.api.get_opt(&self.name).await? {
            if let Some(spec) = lease.spec.as_mut() {
                if spec.holder_identity.as_deref() == Some(self.identity.as_str()) {
                    spec.holder_identity = None;
                    spec.lease_duration_seconds = Some(1);
                    self.api
                        .replace(&self.name, &PostParams::default(), &lease)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("valid")
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(35),
            renew_time: Some(MicroTime(at(renewed))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        let duration = Duration::from_secs(35);
        assert_eq!(
            decide(None, "me", at(100), duration),
            LeaseDecision::Acquire
        );
        assert_eq!(
            decide(Some(&held_by("me", 90)), "me", at(100), duration),
            LeaseDecision::Renew
        );
        assert_eq!(
            decide(Some(&held_by("other", 90)), "me", at(100), duration),
            LeaseDecision::Wait {
                holder: "other".into()
            }
        );
        assert_eq!(
            decide(Some(&held_by("other", 60)), "me", at(100), duration),
            LeaseDecision::Acquire
        );
        assert_eq!(
            decide(Some(&held_by("", 99)), "me", at(100), duration),
            LeaseDecision::Acquire
        );
    }

    #[test]
    fn takeover_counts_transitions() {
        let duration = Duration::from_secs(35);
        let old = held_by("other", 10);
        let spec = next_spec(Some(&old), &LeaseDecision::Acquire, "me", at(100), duration)
            .expect("acquired");
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(spec.renew_time, Some(MicroTime(at(100))));
        let renewed = next_spec(Some(&spec), &LeaseDecision::Renew, "me", at(105), duration)
            .expect("renewed");
        assert_eq!(
            (renewed.lease_transitions, renewed.acquire_time),
            (Some(1), Some(MicroTime(at(100))))
        );
        assert!(next_spec(
            Some(&old),
            &LeaseDecision::Wait {
                holder: "other".into()
            },
            "me",
            at(100),
            duration
        )
        .is_none());
    }
}
