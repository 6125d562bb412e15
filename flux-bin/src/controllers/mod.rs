//! The Flux controllers built on `crate::runtime` and the flux-* libraries.

pub mod common_helm_notify;
pub mod helm;
pub mod helm_plan;
pub mod notification;
