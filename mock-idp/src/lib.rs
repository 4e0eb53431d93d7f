//! mock-idp: a fake Okta for testing OpenID Connect sign-in, refresh-token rotation and JIT provisioning.
//!
//! Start an isolated IdP in-process on a free loopback port:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let idp = mock_idp::MockIdp::start(mock_idp::Options::default()).await?;
//! println!("org issuer {}, default server issuer {}", idp.org_issuer(), idp.issuer("default"));
//! idp.clock().advance_ms(3_600_000); // an hour passes in a microsecond
//! idp.shutdown().await;
//! # Ok(()) }
//! ```

pub mod client;
pub mod clock;
pub mod config;
pub mod core;
pub mod health;
pub mod http;
pub mod keys;
pub mod logging;
pub mod persist;
pub mod server;
pub mod signing;
pub mod tls;

#[cfg(feature = "fixtures")]
pub mod fixtures;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use config::TenantConfig;
use core::tenant::Tenant;
use http::AppState;
pub use http::guard::MockControls;
pub use server::Limits;

/// How to start an IdP.
#[derive(Clone)]
pub struct Options {
    pub config: TenantConfig,
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    pub clock: Clock,
    /// Generate new RSA keys instead of reusing the per-process pool (the binary does; tests need not).
    pub fresh_keys: bool,
    /// Serve https with a certificate generated at start ([`MockIdp::tls_ca_pem`] is what clients trust).
    pub tls: bool,
    /// Keep the tenant in this file (see [`persist`]): restored at start if it exists, written atomically
    /// before every answer that changed it; a corrupt or incompatible file stops start-up.
    pub state_file: Option<PathBuf>,
    /// Who may use `/_mock/*`.
    pub mock_controls: MockControls,
    /// Request size limits and timeouts.
    pub limits: Limits,
    /// How much the request log and the System Log keep.
    pub log_caps: LogCaps,
}

/// The caps of the logs; the oldest entries go first. The System Log also drops events older than Okta's
/// 90-day retention on the tenant clock. A cap is at least 1 (0 counts as 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCaps {
    /// `GET /_mock/requests` (default 10 000).
    pub request_log: usize,
    /// `GET /api/v1/logs` (default 50 000).
    pub system_log: usize,
}

impl Default for LogCaps {
    fn default() -> Self {
        LogCaps { request_log: core::reqlog::MAX_ENTRIES, system_log: core::syslog::DEFAULT_MAX_EVENTS }
    }
}

impl Default for Options {
    /// The default tenant on 127.0.0.1, a free port, a frozen test clock, pooled keys.
    fn default() -> Self {
        Options {
            config: TenantConfig::default_tenant(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: Clock::test_default(),
            fresh_keys: false,
            tls: false,
            state_file: None,
            mock_controls: MockControls::Open,
            limits: Limits::default(),
            log_caps: LogCaps::default(),
        }
    }
}

/// A running IdP. Dropping it stops the server.
pub struct MockIdp {
    base_url: String,
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    tls_ca_pem: Option<String>,
}

fn key_source(fresh: bool) -> impl Fn(usize) -> Arc<keys::KeyMaterial> + Send + Sync + 'static {
    let generated: Arc<Mutex<Vec<Arc<keys::KeyMaterial>>>> = Arc::new(Mutex::new(Vec::new()));
    move |slot| {
        if !fresh {
            return keys::pooled(slot);
        }
        // Fresh keys, but stable per slot for this instance, so a reset keeps the keys clients cached. They are
        // generated in the background: start-up does not wait for them, their first use does.
        let mut g = generated.lock();
        while g.len() <= slot {
            g.push(keys::KeyMaterial::generate_in_background());
        }
        g[slot].clone()
    }
}

impl MockIdp {
    /// Binds, builds the tenant and serves until shut down.
    pub async fn start(opts: Options) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(opts.addr).await.with_context(|| format!("cannot listen on {}", opts.addr))?;
        Self::serve(listener, opts).await
    }

    /// Serves on an already bound listener.
    pub async fn serve(listener: TcpListener, opts: Options) -> anyhow::Result<Self> {
        keys::install_crypto_provider();
        let addr = listener.local_addr()?;
        let scheme = if opts.tls { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        // One key source for the tenant, its rebuilds and key rotations, so rotated keys come from the pool
        // in tests and are freshly generated in the binary.
        let source: Arc<dyn Fn(usize) -> Arc<keys::KeyMaterial> + Send + Sync> = Arc::new(key_source(opts.fresh_keys));
        let restored = match &opts.state_file {
            Some(p) => persist::read(p, &base_url)?,
            None => None,
        };
        let mut tenant = match restored {
            Some(r) => {
                opts.clock.restore(r.clock_offset_ms, r.clock_frozen_at);
                r.tenant
            }
            None => Tenant::from_config(opts.config.clone(), &base_url, opts.clock.now_ms(), &*source)?,
        };
        let system_log_cap = opts.log_caps.system_log;
        let held = tenant.log.len();
        tenant.log.set_capacity(system_log_cap);
        if tenant.log.len() < held {
            tracing::warn!(
                held,
                cap = system_log_cap,
                dropped = held - tenant.log.len(),
                "the state file's System Log holds more events than the cap; the oldest were dropped"
            );
        }
        let public_base = tenant.base_url.clone();
        let (clock, base, src) = (opts.clock.clone(), base_url.clone(), source.clone());
        let rebuild = Box::new(move |c: &TenantConfig| {
            let mut t = Tenant::from_config(c.clone(), &base, clock.now_ms(), &*src)?;
            t.log.set_capacity(system_log_cap);
            Ok(t)
        });
        let state = Arc::new(AppState {
            tenant: Mutex::new(tenant),
            clock: opts.clock.clone(),
            rebuild,
            initial_config: opts.config.clone(),
            keys: source,
            controls: http::faults::Controls::default(),
            guard: http::guard::Guard::new(opts.mock_controls, opts.limits),
        });
        state.controls.requests.lock().set_capacity(opts.log_caps.request_log);
        if let Some(path) = &opts.state_file {
            // The persister holds the state weakly, so a dropped IdP is freed and its writer ends.
            let weak = Arc::downgrade(&state);
            let persister = persist::Persister::new(path.clone(), move || {
                let s = weak.upgrade().ok_or_else(|| "the IdP has stopped".to_string())?;
                persist::snapshot_bytes(&s.tenant, &s.clock)
            });
            // Written at once, so an unwritable path stops start-up and the file is complete from the start.
            let p = persister.clone();
            tokio::task::spawn_blocking(move || p.write_now()).await?.map_err(anyhow::Error::msg).context("mock-idp --state")?;
            persister.start();
            let _ = state.guard.persister.set(persister);
        }
        let app = http::router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = rx.await;
        };
        let (task, tls_ca_pem) = if opts.tls {
            // The certificate names the listen address and the public base URL's host, so clients can use either.
            let hosts: Vec<String> = [addr.ip().to_string()]
                .into_iter()
                .chain(url::Url::parse(&public_base).ok().and_then(|u| u.host_str().map(str::to_string)))
                .collect();
            let material = tls::generate(&hosts)?;
            let listener = tls::TlsListener::new(listener, material.acceptor)?;
            (server::spawn(listener, app, &opts.limits, stopped), Some(material.ca_pem))
        } else {
            (server::spawn(server::nodelay(listener), app, &opts.limits, stopped), None)
        };
        Ok(MockIdp { base_url: public_base, addr, state, shutdown: Some(tx), task: Some(task), tls_ca_pem })
    }

    /// The base URL clients use (the org server's issuer).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// With [`Options::tls`]: the PEM of the CA that signed the server's certificate, for clients to trust.
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls_ca_pem.as_deref()
    }

    /// The org authorization server's issuer (`https://{domain}` in Okta).
    pub fn org_issuer(&self) -> String {
        self.base_url.clone()
    }

    /// A custom authorization server's issuer, e.g. `issuer("default")`.
    pub fn issuer(&self, server_id: &str) -> String {
        format!("{}/oauth2/{server_id}", self.base_url)
    }

    /// The tenant clock; moving it moves every decision the IdP makes.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Runs `f` with the tenant locked (inspection in tests, direct changes in scenarios).
    pub fn with_tenant<R>(&self, f: impl FnOnce(&mut Tenant) -> R) -> R {
        f(&mut self.state.tenant.lock())
    }

    /// The refresh invariants: no family has two live generations, the index is consistent.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.state.tenant.lock().refresh.check_invariants()
    }

    /// With [`Options::state_file`]: writes the state file now, for changes made through
    /// [`MockIdp::with_tenant`] or [`MockIdp::clock`] (requests write it themselves).
    pub async fn save_state(&self) -> anyhow::Result<()> {
        if let Some(p) = self.state.guard.persister.get() {
            p.commit().await.map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// Stops the server and waits for it; with a state file, writes it a last time.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(p) = self.state.guard.persister.get().cloned() {
            let w = p.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || w.write_now()).await {
                tracing::error!(error = %e, "the state file could not be written at shutdown");
            }
            p.close();
        }
    }
}

impl MockIdp {
    /// Ends the server as a crash would: no last write of the state file, open connections cut. Returns once
    /// the server is gone and its address free, so a test can start the next one on the same address at once
    /// (dropping a `MockIdp` does the same but lets go of the address a moment later).
    pub async fn abort(mut self) {
        if let Some(p) = self.state.guard.persister.get() {
            p.close();
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(p) = self.state.guard.persister.get() {
            p.close();
        }
    }
}
