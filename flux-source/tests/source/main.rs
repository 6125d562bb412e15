//! Integration tests against real servers started on 127.0.0.1 by the tests themselves
//! (git daemon, git http-backend behind lighttpd, sshd, docker-registry, moto's S3 server).
//! A test whose server binary is missing prints a notice and returns.

#![allow(
    clippy::unwrap_used,
    clippy::format_push_string,
    clippy::case_sensitive_file_extension_comparisons
)]

mod bucket;
mod git;
mod git_features;
mod helm;
mod helm_deps;
mod oci;
mod perf;
mod push;
mod server;
mod support;
mod tls_proxy;
