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
pub mod http;
pub mod keys;
pub mod signing;
pub mod tls;

#[cfg(feature = "fixtures")]
pub mod fixtures;

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use config::TenantConfig;
use core::tenant::Tenant;
use http::AppState;

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
        // Fresh keys, but stable per slot for this instance, so a reset keeps the keys clients cached.
        let mut g = generated.lock();
        while g.len() <= slot {
            g.push(Arc::new(keys::KeyMaterial::generate()));
        }
        g[slot].clone()
    }
}

impl MockIdp {
    /// Binds, builds the tenant and serves until shut down.
    pub async fn start(opts: Options) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(opts.addr).await?;
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
        let tenant = Tenant::from_config(opts.config.clone(), &base_url, opts.clock.now_ms(), &*source)?;
        let public_base = tenant.base_url.clone();
        let (clock, base, src) = (opts.clock.clone(), base_url.clone(), source.clone());
        let rebuild = Box::new(move |c: &TenantConfig| Tenant::from_config(c.clone(), &base, clock.now_ms(), &*src));
        let state = Arc::new(AppState {
            tenant: Mutex::new(tenant),
            clock: opts.clock.clone(),
            rebuild,
            initial_config: opts.config.clone(),
            keys: source,
            controls: http::faults::Controls::default(),
        });
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
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(stopped).await;
            });
            (task, Some(material.ca_pem))
        } else {
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(stopped).await;
            });
            (task, None)
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

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
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
    }
}
