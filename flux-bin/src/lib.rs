//! Thin binaries over the flux-* libraries: the `flux-rs` CLI and the controllers.
//!
//! Everything that decides anything lives in the library crates; this crate parses flags,
//! wires I/O and turns errors into exit codes and messages.

pub mod cli;
pub mod cmd;
pub mod controllers;
pub mod install;
pub mod manifest;
pub mod render;
pub mod runtime;
