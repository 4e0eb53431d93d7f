//! `harness up`: mock-idp and the stub BSR side by side for manual use, wired to each other.
//!
//! The default tenant registers the stub at `127.0.0.1:3000` and `localhost:3000`. When the stub moves
//! (`--bsr-addr`), every redirect URI and post-logout redirect URI on that origin follows it, so sign-in
//! keeps working. Both listeners are bound before either server starts, so port 0 works too. The two
//! share one clock: advancing the IdP's clock (`POST /_mock/clock`) moves the stub's as well.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use mock_idp::{Clock, MockIdp, Options, TenantConfig};
use tokio::net::TcpListener;

use crate::bsr::{BsrConfig, SsoSettings, StubBsr, Switches};

/// Where the default tenant expects the stub BSR.
pub const DEFAULT_BSR_PORT: u16 = 3000;

pub struct UpOptions {
    pub idp_addr: SocketAddr,
    pub bsr_addr: SocketAddr,
    pub tenant: TenantConfig,
    pub switches: Switches,
    pub clock: Clock,
    /// Fresh RSA keys (the binary) or the per-process pool (tests).
    pub fresh_keys: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            idp_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            bsr_addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_BSR_PORT)),
            tenant: TenantConfig::default_tenant(),
            switches: Switches::default(),
            clock: Clock::system(),
            fresh_keys: true,
        }
    }
}

/// Both servers, running.
pub struct Up {
    pub idp: MockIdp,
    pub bsr: StubBsr,
}

impl Up {
    pub async fn shutdown(self) {
        self.bsr.shutdown().await;
        self.idp.shutdown().await;
    }
}

/// The address a browser uses for a listener: an unspecified address (0.0.0.0) is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() { SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()) } else { addr }
}

/// Points the tenant's redirect and post-logout URIs on the default stub origin (`127.0.0.1:3000`,
/// `localhost:3000`) at `bsr`. `localhost` stays `localhost` with the new port; `127.0.0.1` becomes the
/// stub's IP. Returns the client ID and secret of the first app that had such a URI.
pub fn retarget_redirect_uris(cfg: &mut TenantConfig, bsr: SocketAddr) -> Option<(String, String)> {
    let bsr = reachable(bsr);
    let mut client = None;
    let retarget = |u: &mut String| -> bool {
        let Ok(mut parsed) = url::Url::parse(u) else { return false };
        let host = parsed.host_str().unwrap_or("").to_string();
        if parsed.port_or_known_default() != Some(DEFAULT_BSR_PORT) || !(host == "127.0.0.1" || host == "localhost") {
            return false;
        }
        if host == "127.0.0.1" && parsed.set_ip_host(bsr.ip()).is_err() {
            return false;
        }
        if parsed.set_port(Some(bsr.port())).is_err() {
            return false;
        }
        *u = parsed.to_string();
        true
    };
    for app in &mut cfg.apps {
        let s = &mut app.settings.oauth_client;
        let mut hit = false;
        for u in s.redirect_uris.iter_mut().chain(s.post_logout_redirect_uris.iter_mut()) {
            hit |= retarget(u);
        }
        if hit && client.is_none() {
            let c = &app.credentials.oauth_client;
            client = Some((c.client_id.clone(), c.client_secret.clone().unwrap_or_default()));
        }
    }
    client
}

/// Binds both addresses, wires the tenant to the stub and the stub to the IdP's org issuer, and starts both.
pub async fn start(mut opts: UpOptions) -> anyhow::Result<Up> {
    let idp_listener =
        TcpListener::bind(opts.idp_addr).await.with_context(|| format!("cannot listen on {} for mock-idp", opts.idp_addr))?;
    let bsr_listener =
        TcpListener::bind(opts.bsr_addr).await.with_context(|| format!("cannot listen on {} for the stub BSR", opts.bsr_addr))?;
    let idp_addr = reachable(idp_listener.local_addr()?);
    let bsr_addr = bsr_listener.local_addr()?;
    let (client_id, secret) = retarget_redirect_uris(&mut opts.tenant, bsr_addr).ok_or_else(|| {
        anyhow::anyhow!(
            "the tenant has no app with a redirect URI on 127.0.0.1:{DEFAULT_BSR_PORT} or localhost:{DEFAULT_BSR_PORT} for the stub BSR"
        )
    })?;
    if opts.tenant.base_url.is_none() && opts.idp_addr.ip().is_unspecified() {
        opts.tenant.base_url = Some(format!("http://{idp_addr}"));
    }
    let idp = MockIdp::serve(
        idp_listener,
        Options { config: opts.tenant, addr: idp_addr, clock: opts.clock.clone(), fresh_keys: opts.fresh_keys, ..Options::default() },
    )
    .await?;
    let config = BsrConfig {
        addr: bsr_addr,
        public_url: Some(format!("http://{}", reachable(bsr_addr))),
        sso: Some(SsoSettings::new(idp.org_issuer(), client_id, secret)),
        switches: opts.switches,
        clock: opts.clock,
        ..BsrConfig::default()
    };
    let bsr = StubBsr::serve(bsr_listener, config).await?;
    Ok(Up { idp, bsr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_the_stub() {
        let mut cfg = TenantConfig::default_tenant();
        let got = retarget_redirect_uris(&mut cfg, "127.0.0.1:3100".parse().unwrap());
        assert_eq!(got, Some(("bsr-local".to_string(), "bsr-local-secret".to_string())));
        let s = &cfg.apps[0].settings.oauth_client;
        assert_eq!(s.redirect_uris, vec!["http://127.0.0.1:3100/oauth2/callback", "http://localhost:3100/oauth2/callback"]);
        assert_eq!(s.post_logout_redirect_uris, vec!["http://127.0.0.1:3100/logout", "http://localhost:3100/logout"]);
    }

    #[test]
    fn an_unspecified_address_is_reached_on_loopback() {
        let mut cfg = TenantConfig::default_tenant();
        retarget_redirect_uris(&mut cfg, "0.0.0.0:4000".parse().unwrap());
        assert_eq!(cfg.apps[0].settings.oauth_client.redirect_uris[0], "http://127.0.0.1:4000/oauth2/callback");
    }

    #[test]
    fn other_origins_are_left_alone() {
        let mut cfg = TenantConfig::default_tenant();
        cfg.apps[0].settings.oauth_client.redirect_uris = vec!["https://bsr.example.com/oauth2/callback".into()];
        cfg.apps[0].settings.oauth_client.post_logout_redirect_uris.clear();
        assert_eq!(retarget_redirect_uris(&mut cfg, "127.0.0.1:3100".parse().unwrap()), None);
        assert_eq!(cfg.apps[0].settings.oauth_client.redirect_uris, vec!["https://bsr.example.com/oauth2/callback"]);
    }
}
