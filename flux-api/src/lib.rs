//! Flux's Kubernetes API types (source, kustomize, helm and notification toolkits) and status helpers.
