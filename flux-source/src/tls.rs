//! TLS setup shared by every HTTP client of the crate.

use std::sync::Once;

/// Installs rustls's ring provider as the process default (once). reqwest is built without a
/// bundled provider so that no aws-lc build is needed.
pub fn ensure_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
