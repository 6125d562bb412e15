//! Flux sources (Git, OCI, Helm repositories, buckets) turned into digest-addressed artifacts.
