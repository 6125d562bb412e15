//! Uniform access to what every reconciler reads and writes on a Flux object: suspend,
//! interval, conditions, observedGeneration and lastHandledReconcileAt.

use crate::meta::Condition;
use crate::{helm, kustomize, notification, source};

/// Common accessors of Flux kinds that have a status.
pub trait FluxObject {
    /// `spec.suspend`.
    fn suspended(&self) -> bool;
    /// `spec.interval` (Go duration), when the kind has one set.
    fn interval(&self) -> Option<&str>;
    /// `status.conditions` (empty when unset).
    fn conditions(&self) -> &[Condition];
    /// Mutable `status.conditions`, creating status and list when missing.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// `status.lastHandledReconcileAt` (None for kinds without it).
    fn last_handled_reconcile_at(&self) -> Option<&str>;
    /// Sets `status.lastHandledReconcileAt` (ignored by kinds without it).
    fn set_last_handled_reconcile_at(&mut self, value: Option<String>);
}

macro_rules! flux_object {
    ($kind:ty, interval: |$s:ident| $interval:expr) => {
        impl FluxObject for $kind {
            fn suspended(&self) -> bool {
                self.spec.suspend.unwrap_or(false)
            }
            fn interval(&self) -> Option<&str> {
                let $s = &self.spec;
                $interval
            }
            fn conditions(&self) -> &[Condition] {
                self.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_deref())
                    .unwrap_or(&[])
            }
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                self.status
                    .get_or_insert_with(Default::default)
                    .conditions
                    .get_or_insert_with(Vec::new)
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.status
                    .get_or_insert_with(Default::default)
                    .observed_generation = generation;
            }
            fn last_handled_reconcile_at(&self) -> Option<&str> {
                self.status
                    .as_ref()
                    .and_then(|s| s.last_handled_reconcile_at.as_deref())
            }
            fn set_last_handled_reconcile_at(&mut self, value: Option<String>) {
                self.status
                    .get_or_insert_with(Default::default)
                    .last_handled_reconcile_at = value;
            }
        }
    };
}

flux_object!(source::GitRepository, interval: |s| Some(s.interval.as_str()));
flux_object!(source::OCIRepository, interval: |s| Some(s.interval.as_str()));
flux_object!(source::HelmRepository, interval: |s| s.interval.as_deref());
flux_object!(source::HelmChart, interval: |s| Some(s.interval.as_str()));
flux_object!(source::Bucket, interval: |s| Some(s.interval.as_str()));
flux_object!(kustomize::Kustomization, interval: |s| Some(s.interval.as_str()));
flux_object!(helm::HelmRelease, interval: |s| Some(s.interval.as_str()));
flux_object!(notification::Receiver, interval: |s| s.interval.as_deref());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn accessors_create_status_on_demand() {
        let mut ks = kustomize::Kustomization::new(
            "apps",
            kustomize::KustomizationSpec {
                interval: "10m".into(),
                ..Default::default()
            },
        );
        assert!(
            !ks.suspended() && ks.conditions().is_empty() && ks.observed_generation().is_none()
        );
        assert_eq!(ks.interval(), Some("10m"));
        let now = crate::meta::Time(Timestamp::UNIX_EPOCH);
        conditions::mark_reconciling(ks.conditions_mut(), "working", Some(1), &now);
        ks.set_observed_generation(Some(1));
        ks.set_last_handled_reconcile_at(Some("t1".into()));
        assert_eq!(ks.conditions().len(), 2);
        assert_eq!(
            (ks.observed_generation(), ks.last_handled_reconcile_at()),
            (Some(1), Some("t1"))
        );
        let repo = source::HelmRepository::new(
            "r",
            source::HelmRepositorySpec {
                suspend: Some(true),
                ..Default::default()
            },
        );
        assert!(repo.suspended() && repo.interval().is_none());
    }
}
