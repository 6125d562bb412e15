//! Helm chart loading, values coalescing and Go-template rendering compatible with helm template.
