//! The stub BSR: a relying party that signs users in the way the Buf Schema Registry does, with switches
//! that reproduce the mistakes real service providers make (../shared/cases.md).
//!
//! It talks to the IdP only over HTTP, exactly as a real service provider would, so it works against any
//! standards-compliant OpenID Connect provider, not only mock-idp.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::bsr::{BsrConfig, StubBsr};
//! let bsr = StubBsr::start(BsrConfig::for_issuer("http://127.0.0.1:8080", "bsr-local", "bsr-local-secret")).await?;
//! println!("sign in at {}/login", bsr.base_url());
//! bsr.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Pages: `/` (the signed-in user or a sign-in link), `/login`, `/oauth2/callback`, `/logout`, `/api/me`
//! (JSON; 401 when not signed in; the request that triggers backend refresh), `/admin/users` (JSON with
//! `Accept: application/json`, else HTML; deactivate and reactivate actions), `/{organization}/pro-settings`
//! (SSO settings behind the local administrator sign-in at `/admin/login`).

pub mod config;
pub mod errors;
pub mod jit;
pub mod oidc;
pub mod pages;
pub mod routes;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{BsrConfig, EmailVerifiedPolicy, JwksPolicy, NonceCheck, RefreshStrategy, Secret, SsoSettings, Switches};
pub use errors::BsrError;
pub use state::SessionInfo;
pub use store::{BsrUser, UserState};

use mock_idp::Clock;
use state::BsrState;

/// What the stub has sent to the IdP and done, counted since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BsrStats {
    pub discovery_fetches: u64,
    pub jwks_fetches: u64,
    pub code_exchanges: u64,
    /// Refresh requests sent to the token endpoint.
    pub refresh_requests: u64,
    pub refresh_successes: u64,
    pub refresh_failures: u64,
    pub userinfo_requests: u64,
    pub revocations: u64,
    /// Completed sign-ins.
    pub logins: u64,
    pub users_created: u64,
    /// Sessions that ended because the IdP rejected a refresh (or its ID token).
    pub sessions_ended_by_idp: u64,
}

/// A running stub BSR. Dropping it stops the server.
pub struct StubBsr {
    base_url: String,
    addr: SocketAddr,
    state: Arc<BsrState>,
    /// With [`BsrConfig::state_file`]: keeps the user store on disk.
    persister: Option<Arc<mock_idp::persist::Persister>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl StubBsr {
    /// Binds `config.addr` (port 0 picks a free port) and serves until shut down.
    pub async fn start(config: BsrConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        Self::serve(listener, config).await
    }

    /// Serves on an already bound listener (so an IdP can be told the stub's redirect URI first).
    pub async fn serve(listener: TcpListener, config: BsrConfig) -> anyhow::Result<Self> {
        // jsonwebtoken and rustls need their crypto provider; installing it twice is harmless.
        crate::crypto::install();
        let addr = listener.local_addr()?;
        let base_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();
        if let Some(s) = &config.sso {
            s.validate().map_err(|m| anyhow::anyhow!("invalid SSO settings: {m}"))?;
        }
        let state = Arc::new(BsrState::new(&config, base_url.clone())?);
        let persister = match &config.state_file {
            Some(path) => Some(routes::open_user_store(&state, path).await?),
            None => None,
        };
        let app = routes::with_guards(routes::router(state.clone()), config.limits, persister.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = rx.await;
        };
        let task = mock_idp::server::spawn(mock_idp::server::nodelay(listener), app, &config.limits, stopped);
        Ok(StubBsr { base_url, addr, state, persister, shutdown: Some(tx), task: Some(task) })
    }

    /// The base URL browsers use, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{base}/oauth2/callback`, the sign-in redirect URI to register at the IdP.
    pub fn redirect_uri(&self) -> String {
        self.state.redirect_uri()
    }

    /// `{base}/logout`, the sign-out redirect URI to register at the IdP.
    pub fn post_logout_redirect_uri(&self) -> String {
        self.state.post_logout_redirect_uri()
    }

    /// `{base}/{organization}/pro-settings`.
    pub fn settings_url(&self) -> String {
        format!("{}{}", self.base_url, self.state.settings_path())
    }

    /// The harness clock (offset by `switches.clock_offset_seconds` when the stub reads it).
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// The harness clock as the stub reads it, offset included, in milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }

    pub fn switches(&self) -> Switches {
        self.state.switches()
    }

    /// Changes switches while running (e.g. the clock offset in the middle of a scenario).
    pub fn update_switches(&self, f: impl FnOnce(&mut Switches)) {
        f(&mut self.state.switches.write());
    }

    pub fn sso_settings(&self) -> Option<SsoSettings> {
        self.state.sso_settings()
    }

    /// Replaces the SSO settings, as the settings page does: discovery runs again on next use and every
    /// user session ends.
    pub fn set_sso_settings(&self, s: Option<SsoSettings>) {
        self.state.set_sso_settings(s);
    }

    /// Provisioned users, in creation order.
    pub fn users(&self) -> Vec<BsrUser> {
        self.state.users.lock().all()
    }

    pub fn user_by_username(&self, username: &str) -> Option<BsrUser> {
        self.users().into_iter().find(|u| u.username == username)
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.state.session_count()
    }

    /// What each live session holds (no token values).
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.state.all_session_infos()
    }

    pub fn stats(&self) -> BsrStats {
        let c = &self.state.counters;
        let g = |a: &std::sync::atomic::AtomicU64| self.state.counter(a);
        BsrStats {
            discovery_fetches: g(&c.discovery_fetches),
            jwks_fetches: g(&c.jwks_fetches),
            code_exchanges: g(&c.code_exchanges),
            refresh_requests: g(&c.refresh_requests),
            refresh_successes: g(&c.refresh_successes),
            refresh_failures: g(&c.refresh_failures),
            userinfo_requests: g(&c.userinfo_requests),
            revocations: g(&c.revocations),
            logins: g(&c.logins),
            users_created: g(&c.users_created),
            sessions_ended_by_idp: g(&c.sessions_ended_by_idp),
        }
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(p) = self.persister.take() {
            let w = p.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || w.write_now()).await {
                tracing::error!(error = %e, "the stub's state file could not be written at shutdown");
            }
            p.close();
        }
    }
}

impl Drop for StubBsr {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(p) = &self.persister {
            p.close();
        }
    }
}
