//! flux-notify integration tests: real HTTP servers on 127.0.0.1 random ports.
#![allow(clippy::unwrap_used)]

mod capture;
mod end_to_end;
mod providers;
mod receivers;
mod tls;
