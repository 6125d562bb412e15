//! The controller runtime shared by the four Flux controllers: Flux's common flags, Prometheus
//! metrics, health/readiness probes, requeue jitter and backoff, finalizer patches, leader
//! election on a coordination Lease, and event recording (Kubernetes Events plus the
//! notification-controller webhook).
//!
//! Decisions are pure functions with unit tests; the async adapters around them are thin.

pub mod access;
pub mod events;
pub mod finalizer;
pub mod flags;
pub mod gate;
pub mod leader;
pub mod metrics;
pub mod probes;
pub mod requeue;
pub mod serve;
pub mod status;
