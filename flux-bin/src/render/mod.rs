//! Offline rendering of a Flux repository: what `flux-rs build cluster` runs.

pub mod order;
