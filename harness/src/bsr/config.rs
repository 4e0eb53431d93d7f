//! The stub BSR's configuration: where it listens, its SSO settings (what an administrator types into
//! `/{organization}/pro-settings`), and the switches that reproduce real service-provider bugs
//! (../shared/cases.md). The same settings come from code, a YAML file (`harness bsr --config`), flags or
//! environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mock_idp::Clock;
use mock_idp::config::ConfigError;
use serde::{Deserialize, Serialize};

/// A secret (client secret, admin password) whose `Debug` never shows the value, so it cannot leak
/// into logs or panic messages.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the one place that must send it (an Authorization header, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Constant-time comparison, so a wrong admin password takes as long as a right one.
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == given.len() && bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How a session's access token is renewed once it has expired (case C04).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshStrategy {
    /// One refresh per session at a time; requests that find the token expired meanwhile wait for that
    /// refresh and share its result. What a careful service provider does.
    #[default]
    SingleFlight,
    /// Every request that finds the token expired refreshes on its own, concurrently, with the same refresh
    /// token. With a grace period of 0 at the IdP this loses the session (reuse detection).
    Naive,
}

/// When the JWKS is fetched (cases C09, C10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum JwksPolicy {
    /// Cached for the response's `Cache-Control: max-age` (on the harness clock), refetched once when an ID
    /// token names a kid the cache does not have.
    #[default]
    RefetchOnUnknownKid,
    /// Fetched once, on first use, and never again: every login after a key rotation fails.
    StartupOnly,
}

/// What a refreshed ID token's `nonce` must be (case C13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NonceCheck {
    /// Absent, or equal to the nonce of the login (OpenID Connect Core §12.2 allows both).
    #[default]
    Lenient,
    /// Must equal the login's nonce: fails against IdPs that omit it on refresh, as Okta does.
    Strict,
}

/// What JIT provisioning does with the `email_verified` claim (OpenID Connect Core §5.1). BSR provisions and
/// links users by email, so an email the IdP has not verified would let whoever typed it into an IdP
/// profile take over the BSR account of that address (§5.7: only `sub` identifies the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EmailVerifiedPolicy {
    /// Refuse a login whose `email_verified` is `false`; accept one without the claim (not every IdP sends
    /// it; Okta always does with the `email` scope).
    #[default]
    RejectFalse,
    /// Refuse a login unless `email_verified` is `true`.
    Require,
    /// Ignore the claim: provision and sign in by any email (the bug).
    Ignore,
}

/// The identity provider protocol; BSR offers OIDC and SAML, the stub only OIDC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Oidc,
}

/// The SSO settings an administrator enters on the settings page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SsoSettings {
    #[serde(default)]
    pub provider: Provider,
    /// Used exactly as typed: a trailing slash is kept, so it must match discovery's `issuer` (case C15).
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where sign-out sends the browser; the discovery document's `end_session_endpoint` when absent.
    #[serde(default)]
    pub logout_url: Option<String>,
}

impl SsoSettings {
    pub fn new(issuer_url: impl Into<String>, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        SsoSettings {
            provider: Provider::Oidc,
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            client_secret: Secret::new(client_secret),
            logout_url: None,
        }
    }

    /// Checks what the settings page checks before saving.
    pub fn validate(&self) -> Result<(), String> {
        if self.client_id.trim().is_empty() {
            return Err("client ID must not be empty".into());
        }
        if self.client_secret.is_empty() {
            return Err("client secret must not be empty".into());
        }
        check_http_url("issuer URL", &self.issuer_url)?;
        if let Some(l) = &self.logout_url {
            check_http_url("logout URL", l)?;
        }
        Ok(())
    }
}

fn check_http_url(what: &str, u: &str) -> Result<(), String> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(()),
        Ok(_) => Err(format!("{what} {u:?} must be an http or https URL")),
        Err(e) => Err(format!("{what} {u:?} is not an absolute URL: {e}")),
    }
}

/// The OpenID Connect scopes BSR asks for by default (okta-behaviour.md §8).
pub fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"].iter().map(|s| s.to_string()).collect()
}

/// Switches that reproduce the mistakes real service providers make. The defaults are the correct
/// behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Switches {
    /// Scopes requested at `/authorize`.
    pub scopes: Vec<String>,
    /// `scope` sent on refresh requests; absent means none is sent and the IdP uses the original grant's
    /// scopes. Without `openid` the IdP returns no ID token on refresh (case C14).
    pub refresh_scopes: Option<Vec<String>>,
    pub refresh_strategy: RefreshStrategy,
    pub jwks: JwksPolicy,
    pub refresh_nonce: NonceCheck,
    /// Added to the harness clock: negative puts the stub behind the IdP (case C11).
    pub clock_offset_seconds: i64,
    /// Allowed clock skew for `exp`, `iat` and `nbf` of ID tokens.
    pub clock_skew_seconds: u64,
    /// Revoke the refresh token at the IdP on sign-out (an IdP-session logout alone leaves it alive).
    pub revoke_on_logout: bool,
    /// Send PKCE (S256) at sign-in. `false` reproduces a client without it: an app that requires PKCE
    /// refuses its sign-ins, and only the nonce is left against an injected code.
    pub pkce: bool,
    /// Check an ID token's `at_hash`, when it has one, against the access token that came with it (OpenID
    /// Connect Core §3.1.3.8). `false` reproduces a client that ignores the claim.
    pub check_at_hash: bool,
    /// What the JIT rule does with `email_verified`.
    pub email_verified: EmailVerifiedPolicy,
    /// Refuse an authorization response whose RFC 9207 `iss` parameter is not the issuer, before redeeming
    /// its code (and one without `iss` when discovery says the IdP always sends it). `false` reproduces a
    /// client that ignores the parameter.
    pub check_iss_param: bool,
    /// Test aid: requests of one session that find the access token expired wait until this many have
    /// done so (for at most `refresh_barrier_timeout_ms` of real time), then go on together. It puts
    /// concurrent refreshes on the same instant so a race reproduces on every run.
    pub refresh_barrier: Option<usize>,
    pub refresh_barrier_timeout_ms: u64,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            scopes: default_scopes(),
            refresh_scopes: None,
            refresh_strategy: RefreshStrategy::SingleFlight,
            jwks: JwksPolicy::RefetchOnUnknownKid,
            refresh_nonce: NonceCheck::Lenient,
            clock_offset_seconds: 0,
            clock_skew_seconds: 60,
            revoke_on_logout: false,
            pkce: true,
            check_at_hash: true,
            email_verified: EmailVerifiedPolicy::RejectFalse,
            check_iss_param: true,
            refresh_barrier: None,
            refresh_barrier_timeout_ms: 5000,
        }
    }
}

/// Everything the stub BSR needs to start.
#[derive(Debug, Clone)]
pub struct BsrConfig {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The base URL browsers use (redirect URIs are built from it); `http://{bound address}` when absent.
    pub public_url: Option<String>,
    /// The organization slug in `/{organization}/pro-settings`.
    pub organization: String,
    pub admin_username: String,
    pub admin_password: Secret,
    /// SSO settings; the stub starts unconfigured (sign-in shows how to configure it) when absent.
    pub sso: Option<SsoSettings>,
    pub switches: Switches,
    /// Timeout of every request to the IdP.
    pub http_timeout: Duration,
    /// Extra CA certificates (PEM) to trust for https IdPs, on top of the bundled Mozilla roots: an IdP
    /// with a private CA, or `mock-idp --tls`.
    pub trusted_ca_pem: Vec<String>,
    /// The harness clock: ID-token time checks and access-token expiry use it, never wall time.
    pub clock: Clock,
    /// Request size limits and timeouts (mock-idp's, the same numbers).
    pub limits: mock_idp::Limits,
    /// Keep the provisioned users in this file (`harness bsr --state`): restored at start, written before
    /// every answer that changed them. Sessions are not kept: after a restart users sign in again.
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for BsrConfig {
    /// Loopback, a free port, organization `acme`, admin `admin` / `admin-password`, unconfigured SSO,
    /// default switches, a 2 s HTTP timeout, the system clock.
    fn default() -> Self {
        BsrConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            organization: "acme".into(),
            admin_username: "admin".into(),
            admin_password: Secret::new("admin-password"),
            sso: None,
            switches: Switches::default(),
            http_timeout: Duration::from_secs(2),
            trusted_ca_pem: Vec::new(),
            clock: Clock::system(),
            limits: mock_idp::Limits::default(),
            state_file: None,
        }
    }
}

impl BsrConfig {
    /// Defaults plus SSO settings for `issuer_url`.
    pub fn for_issuer(issuer_url: impl Into<String>, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        BsrConfig { sso: Some(SsoSettings::new(issuer_url, client_id, client_secret)), ..Default::default() }
    }

    /// Reads a YAML config file (see [`BsrFile`]); errors name the file, line, column and field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&src, &name)
    }

    /// Parses YAML config text; `file` names the source in errors.
    pub fn parse(src: &str, file: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(src);
        let f: BsrFile = serde_path_to_error::deserialize(de).map_err(|e| mock_idp::config::yaml_error(e, src, file))?;
        let locate = |needle: &str| -> (Option<usize>, Option<usize>) {
            for (i, line) in src.lines().enumerate() {
                if let Some(c) = line.find(needle) {
                    return (Some(i + 1), Some(c + 1));
                }
            }
            (None, None)
        };
        let mut cfg = BsrConfig::default();
        if let Some(a) = &f.addr {
            cfg.addr = a.parse().map_err(|e| {
                let (line, column) = locate("addr:");
                ConfigError { file: file.into(), line, column, field: "addr".into(), message: format!("not a socket address {a:?}: {e}") }
            })?;
        }
        cfg.public_url = f.public_url;
        if let Some(o) = f.organization {
            cfg.organization = o;
        }
        if let Some(a) = f.admin {
            cfg.admin_username = a.username;
            cfg.admin_password = a.password;
        }
        if let Some(s) = &f.sso {
            s.validate().map_err(|message| {
                let (line, column) = locate("sso:");
                ConfigError { file: file.into(), line, column, field: "sso".into(), message }
            })?;
        }
        cfg.sso = f.sso;
        cfg.switches = f.switches;
        if let Some(ms) = f.http_timeout_ms {
            cfg.http_timeout = Duration::from_millis(ms);
        }
        Ok(cfg)
    }

    /// `clock_offset_seconds` in milliseconds.
    pub fn clock_offset_ms(&self) -> i64 {
        self.switches.clock_offset_seconds.saturating_mul(1000)
    }
}

/// The YAML shape of a config file:
///
/// ```yaml
/// addr: 127.0.0.1:3000
/// public_url: http://localhost:3000
/// organization: acme
/// admin: {username: admin, password: admin-password}
/// sso: {provider: oidc, issuer_url: "https://example.okta.com", client_id: "0oa…", client_secret: "…"}
/// switches: {refresh_strategy: single-flight, jwks: refetch-on-unknown-kid, refresh_nonce: lenient}
/// http_timeout_ms: 2000
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BsrFile {
    #[serde(default)]
    pub addr: Option<String>,
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub admin: Option<AdminFile>,
    #[serde(default)]
    pub sso: Option<SsoSettings>,
    #[serde(default)]
    pub switches: Switches,
    #[serde(default)]
    pub http_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub username: String,
    pub password: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let src = "addr: 127.0.0.1:3001\norganization: bufco\nsso:\n  issuer_url: http://127.0.0.1:8080/\n  client_id: bsr-local\n  client_secret: s3cret\nswitches:\n  refresh_strategy: naive\n  jwks: startup-only\n  clock_offset_seconds: -600\nhttp_timeout_ms: 250\n";
        let c = BsrConfig::parse(src, "bsr.yaml").unwrap();
        assert_eq!(c.addr, "127.0.0.1:3001".parse().unwrap());
        assert_eq!(c.organization, "bufco");
        let sso = c.sso.unwrap();
        assert_eq!(sso.issuer_url, "http://127.0.0.1:8080/");
        assert_eq!(sso.client_secret.expose(), "s3cret");
        assert_eq!(c.switches.refresh_strategy, RefreshStrategy::Naive);
        assert_eq!(c.switches.jwks, JwksPolicy::StartupOnly);
        assert_eq!(c.switches.clock_offset_seconds, -600);
        assert_eq!(c.switches.clock_skew_seconds, 60);
        assert!(c.switches.pkce && c.switches.check_at_hash && c.switches.check_iss_param, "the correct defaults");
        assert_eq!(c.switches.email_verified, EmailVerifiedPolicy::RejectFalse);
        assert_eq!(c.http_timeout, Duration::from_millis(250));
    }

    #[test]
    fn unknown_switch_names_file_line_column_field() {
        let src = "switches:\n  refresh_strategy: sometimes\n";
        let e = BsrConfig::parse(src, "bsr.yaml").unwrap_err();
        assert_eq!(e.field, "switches.refresh_strategy");
        assert_eq!(e.line, Some(2));
        assert_eq!(e.message, "unknown variant `sometimes`, expected `single-flight` or `naive`");
        assert!(e.to_string().starts_with("bsr.yaml:2:"), "{e}");
    }

    #[test]
    fn the_check_switches_parse() {
        let src = "switches:\n  pkce: false\n  check_at_hash: false\n  email_verified: ignore\n  check_iss_param: false\n";
        let sw = BsrConfig::parse(src, "bsr.yaml").unwrap().switches;
        assert!(!sw.pkce && !sw.check_at_hash && !sw.check_iss_param);
        assert_eq!(sw.email_verified, EmailVerifiedPolicy::Ignore);
        let e = BsrConfig::parse("switches:\n  email_verified: sometimes\n", "bsr.yaml").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("switches.email_verified", Some(2)));
        assert_eq!(e.message, "unknown variant `sometimes`, expected one of `reject-false`, `require`, `ignore`");
    }

    #[test]
    fn bad_sso_settings_are_located() {
        let src = "sso:\n  issuer_url: not a url\n  client_id: x\n  client_secret: y\n";
        let e = BsrConfig::parse(src, "bsr.yaml").unwrap_err();
        assert_eq!(e.field, "sso");
        assert_eq!(e.line, Some(1));
        assert!(e.message.starts_with("issuer URL \"not a url\" is not an absolute URL"), "{}", e.message);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = BsrConfig::for_issuer("http://idp", "id", "very-secret");
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret"), "{d}");
        assert!(!d.contains("admin-password"), "{d}");
    }
}
