//! A Kubernetes-API-compatible in-memory test server for end-to-end tests of flux-rs.
