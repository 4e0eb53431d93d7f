//! One process-wide crypto set-up for everything that speaks TLS or JWT in the harness.
//!
//! reqwest is built with rustls but without a default provider (so the workspace carries one backend,
//! aws-lc-rs, shared with jsonwebtoken); every reqwest client in the process then needs the provider
//! installed before it is built. Call [`install`] before building one; it is idempotent and cheap.

/// Installs aws-lc-rs as the rustls and jsonwebtoken crypto provider (a second call is a no-op).
pub fn install() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
