//! Well-known strings, spelled exactly as Flux spells them: condition types, reasons,
//! annotations, labels, finalizers, field managers and controller names.

/// Condition types.
pub mod condition {
    /// Positive polarity: the object is fully reconciled at its current generation.
    pub const READY: &str = "Ready";
    /// Negative polarity: work in progress.
    pub const RECONCILING: &str = "Reconciling";
    /// Negative polarity: cannot succeed without a spec change.
    pub const STALLED: &str = "Stalled";
    /// Kustomization: result of the last health check.
    pub const HEALTHY: &str = "Healthy";
    /// Sources: the artifact is in storage.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// Sources (negative): upstream has a newer revision than the stored artifact.
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    /// Sources (negative): fetching from upstream failed.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// GitRepository (negative): an included repository is not available.
    pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
    /// Sources (negative): a storage operation failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// HelmChart (negative): packaging the chart failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Sources: signature verification result.
    pub const SOURCE_VERIFIED: &str = "SourceVerified";
    /// HelmRelease: result of the last install/upgrade.
    pub const RELEASED: &str = "Released";
    /// HelmRelease: result of the last test run.
    pub const TEST_SUCCESS: &str = "TestSuccess";
    /// HelmRelease (negative): a remediation happened.
    pub const REMEDIATED: &str = "Remediated";
    /// HelmRelease: drift between the release and the cluster.
    pub const DRIFTED: &str = "Drifted";
}

/// Condition status values.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known (yet).
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition reasons (Flux's `meta` package plus the per-controller ones).
pub mod reason {
    // --- generic (`fluxcd/pkg/apis/meta`)
    /// Success.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Generic failure.
    pub const FAILED: &str = "Failed";
    /// Work in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// Work in progress after a failed attempt.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// A dependency is not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// An invalid path.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// An invalid URL.
    pub const INVALID_URL: &str = "InvalidURL";
    /// Plain HTTP refused.
    pub const INSECURE_CONNECTIONS_DISALLOWED: &str = "InsecureConnectionsDisallowed";
    /// Unsupported connection type.
    pub const UNSUPPORTED_CONNECTION_TYPE: &str = "UnsupportedConnectionType";
    /// Pruning failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// Fetching the source artifact failed.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// Building failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// A health check failed.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// A health check was cancelled by a new reconciliation.
    pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
    /// Reconciliation succeeded.
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// Reconciliation failed.
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// An invalid CEL expression (terminal).
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
    /// A feature gate is disabled (terminal).
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";
    /// A cross-namespace reference was refused (terminal).
    pub const ACCESS_DENIED: &str = "AccessDenied";

    // --- source-controller
    /// A new upstream revision.
    pub const NEW_REVISION: &str = "NewRevision";
    /// An included artifact changed.
    pub const INCLUDE_CHANGE: &str = "IncludeChange";
    /// A new chart version.
    pub const NEW_CHART: &str = "NewChart";
    /// Authentication failed.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// A Git operation failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// The URL is invalid.
    pub const URL_INVALID: &str = "URLInvalid";
    /// Invalid provider configuration.
    pub const INVALID_PROVIDER_CONFIGURATION: &str = "InvalidProviderConfiguration";
    /// Creating a storage directory failed.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
    /// Stat of a storage path failed.
    pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
    /// Archiving failed.
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    /// Acquiring the storage lock failed.
    pub const ACQUIRE_LOCK_FAILED: &str = "AcquireLockFailed";
    /// A path escaped its root.
    pub const ILLEGAL_PATH: &str = "IllegalPath";
    /// Copying failed.
    pub const COPY_FAILURE: &str = "CopyFailure";
    /// Signature verification error.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// Parsing a Helm index failed.
    pub const INDEXATION_FAILED: &str = "IndexationFailed";
    /// Invalid chart reference (terminal).
    pub const INVALID_CHART_REFERENCE: &str = "InvalidChartReference";
    /// A chart was pulled.
    pub const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
    /// A chart was packaged.
    pub const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";
    /// A bucket operation failed.
    pub const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";
    /// A bucket operation succeeded.
    pub const BUCKET_OPERATION_SUCCEEDED: &str = "BucketOperationSucceeded";
    /// Invalid STS configuration.
    pub const INVALID_STS_CONFIGURATION: &str = "InvalidSTSConfiguration";
    /// Pulling an OCI artifact failed.
    pub const OCI_ARTIFACT_PULL_FAILED: &str = "OCIArtifactPullFailed";
    /// Selecting an OCI layer failed.
    pub const OCI_ARTIFACT_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
    /// Event: a new artifact was stored.
    pub const NEW_ARTIFACT: &str = "NewArtifact";
    /// Trace event: the artifact is up to date.
    pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";
    /// Event: the stored artifact's digest no longer matches.
    pub const ARTIFACT_VERIFICATION_FAILED: &str = "ArtifactVerificationFailed";
    /// Trace event: storage garbage collection succeeded.
    pub const GARBAGE_COLLECTION_SUCCEEDED: &str = "GarbageCollectionSucceeded";

    // --- helm-controller
    /// Install succeeded.
    pub const INSTALL_SUCCEEDED: &str = "InstallSucceeded";
    /// Install failed.
    pub const INSTALL_FAILED: &str = "InstallFailed";
    /// Upgrade succeeded.
    pub const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
    /// Upgrade failed.
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// Tests succeeded.
    pub const TEST_SUCCEEDED: &str = "TestSucceeded";
    /// Tests failed.
    pub const TEST_FAILED: &str = "TestFailed";
    /// Rollback succeeded.
    pub const ROLLBACK_SUCCEEDED: &str = "RollbackSucceeded";
    /// Rollback failed.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// Uninstall succeeded.
    pub const UNINSTALL_SUCCEEDED: &str = "UninstallSucceeded";
    /// Uninstall failed.
    pub const UNINSTALL_FAILED: &str = "UninstallFailed";
    /// Drift detected.
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    /// No drift detected.
    pub const NO_DRIFT_DETECTED: &str = "NoDriftDetected";
    /// The chart source is not ready.
    pub const SOURCE_NOT_READY: &str = "SourceNotReady";
    /// Composing values failed.
    pub const VALUES_ERROR: &str = "ValuesError";
    /// Creating or updating the HelmChart failed.
    pub const CHART_MUTATE_ERROR: &str = "ChartMutateError";
    /// Building a REST client failed.
    pub const REST_CLIENT_ERROR: &str = "RESTClientError";
    /// Building a resource manager failed.
    pub const RESOURCE_MANAGER_ERROR: &str = "ResourceManagerError";
    /// Building a Helm action factory failed.
    pub const FACTORY_ERROR: &str = "FactoryError";
    /// Building the Helm configuration failed.
    pub const CONFIG_FACTORY_ERR: &str = "ConfigFactoryErr";

    // --- notification-controller
    /// The receiver token Secret is missing.
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
}

/// Annotations.
pub mod annotation {
    /// Any new value triggers an immediate reconcile.
    pub const RECONCILE_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
    /// HelmRelease: forced install/upgrade (with an equal `requestedAt`).
    pub const FORCE_REQUESTED_AT: &str = "reconcile.fluxcd.io/forceAt";
    /// HelmRelease: reset failure counters (with an equal `requestedAt`).
    pub const RESET_REQUESTED_AT: &str = "reconcile.fluxcd.io/resetAt";
    /// Server-side apply policy of an object (`Override`, `Merge`, `IfNotPresent`, `Ignore`).
    pub const KUSTOMIZE_SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";
    /// `enabled`: recreate the object on immutable-field changes.
    pub const KUSTOMIZE_FORCE: &str = "kustomize.toolkit.fluxcd.io/force";
    /// `disabled`: never prune the object.
    pub const KUSTOMIZE_PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";
    /// `disabled`: skip apply and prune entirely.
    pub const KUSTOMIZE_RECONCILE: &str = "kustomize.toolkit.fluxcd.io/reconcile";
    /// `disabled`: skip post-build substitution.
    pub const KUSTOMIZE_SUBSTITUTE: &str = "kustomize.toolkit.fluxcd.io/substitute";
    /// `disabled`: skip SOPS decryption (annotation only).
    pub const KUSTOMIZE_DECRYPT: &str = "kustomize.toolkit.fluxcd.io/decrypt";
    /// `disabled`: skip Helm drift detection for the object.
    pub const HELM_DRIFT_DETECTION: &str = "helm.toolkit.fluxcd.io/driftDetection";
    /// Prefix of annotations copied into event metadata.
    pub const EVENT_PREFIX: &str = "event.toolkit.fluxcd.io/";
    /// The value `disabled` of the opt-out annotations and labels.
    pub const DISABLED_VALUE: &str = "disabled";
    /// The value `enabled` of the force annotation.
    pub const ENABLED_VALUE: &str = "enabled";
}

/// Labels.
pub mod label {
    /// Name of the owning Kustomization.
    pub const KUSTOMIZE_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
    /// Namespace of the owning Kustomization.
    pub const KUSTOMIZE_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";
    /// Name of the owning HelmRelease.
    pub const HELM_NAME: &str = "helm.toolkit.fluxcd.io/name";
    /// Namespace of the owning HelmRelease.
    pub const HELM_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";
    /// Sharding key selected by `--watch-label-selector`.
    pub const SHARDING_KEY: &str = "sharding.fluxcd.io/key";
    /// `Enabled` on ConfigMaps/Secrets whose changes trigger referrers.
    pub const RECONCILE_WATCH: &str = "reconcile.fluxcd.io/watch";
    /// The value of [`RECONCILE_WATCH`] that enables watching.
    pub const RECONCILE_WATCH_ENABLED: &str = "Enabled";
}

/// The finalizer of every Flux kind that needs cleanup.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Controller names: field managers, event reporting controllers and deployment names.
pub mod controller {
    /// source-controller.
    pub const SOURCE: &str = "source-controller";
    /// kustomize-controller (also its SSA field manager).
    pub const KUSTOMIZE: &str = "kustomize-controller";
    /// helm-controller (also its SSA field manager).
    pub const HELM: &str = "helm-controller";
    /// notification-controller.
    pub const NOTIFICATION: &str = "notification-controller";
}

/// Event metadata key suffixes (prefixed with the involved object's API group and `/`).
pub mod event_metadata {
    /// Source revision.
    pub const REVISION: &str = "revision";
    /// Origin revision (OCI source annotation).
    pub const ORIGIN_REVISION: &str = "originRevision";
    /// Checksum.
    pub const CHECKSUM: &str = "checksum";
    /// Artifact digest.
    pub const DIGEST: &str = "digest";
    /// Deduplication token.
    pub const TOKEN: &str = "token";
    /// `update` on final success, read by commit-status providers.
    pub const COMMIT_STATUS: &str = "commit_status";
    /// Value of [`COMMIT_STATUS`].
    pub const COMMIT_STATUS_UPDATE: &str = "update";
    /// Change request reference.
    pub const CHANGE_REQUEST: &str = "change_request";
}

/// Maximum length of a condition message kept by the condition setter (metav1 limit).
pub const MAX_CONDITION_MESSAGE_LENGTH: usize = 32768;
