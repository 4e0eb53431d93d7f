//! `harness`: the stub BSR and mock-idp for manual use and for docker-compose.
//!
//! - `harness up`: mock-idp on 127.0.0.1:8080 and the stub BSR on 127.0.0.1:3000, wired to each other.
//! - `harness bsr --issuer … --client-id … --client-secret …`: the stub BSR alone, against any OpenID Connect
//!   provider; every flag also comes from an environment variable or a `--config` YAML file.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use harness::bsr::{BsrConfig, EmailVerifiedPolicy, JwksPolicy, NonceCheck, RefreshStrategy, Secret, SsoSettings, StubBsr, Switches};
use harness::up::{self, UpOptions};
use mock_idp::TenantConfig;

#[derive(Parser, Debug)]
#[command(name = "harness", version, about = "Stub BSR and mock-idp for testing Okta OIDC sign-in end to end")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start mock-idp and the stub BSR wired to each other (the tenant's redirect URIs follow --bsr-addr).
    Up(UpArgs),
    /// Run the stub BSR alone against any OpenID Connect provider.
    Bsr(BsrArgs),
    /// Run scenarios (default: scenarios/): exit 0 when all pass, 1 when any fails, 2 on file errors.
    Run(harness::scenario::RunArgs),
    /// Load-test a mock-idp (running, or in-process) and compare with the raw RS256 signing rate.
    Bench(harness::bench::BenchArgs),
    /// List scenarios with their case and tags.
    List {
        /// Scenario files or folders (default: scenarios/).
        paths: Vec<PathBuf>,
    },
    /// Check a running server (a container health check without curl): GET the URL (plain http, 1.5 s at
    /// most), exit 0 on a 2xx answer and 1 otherwise, with the reason on stderr.
    HealthCheck {
        /// e.g. http://127.0.0.1:3000/healthz
        url: String,
    },
}

/// The stub's bug-reproduction switches; unset flags keep the config file's value or the default.
#[derive(Args, Debug, Default)]
struct SwitchArgs {
    /// How an expired access token is refreshed.
    #[arg(long, value_enum)]
    refresh_strategy: Option<RefreshStrategy>,
    /// When the JWKS is fetched.
    #[arg(long, value_enum)]
    jwks: Option<JwksPolicy>,
    /// What a refreshed ID token's nonce must be.
    #[arg(long, value_enum)]
    refresh_nonce: Option<NonceCheck>,
    /// The stub's clock against the IdP's, in seconds (negative: behind).
    #[arg(long, allow_hyphen_values = true)]
    clock_offset_seconds: Option<i64>,
    /// Allowed clock skew for ID-token exp, iat and nbf (default 60).
    #[arg(long)]
    clock_skew_seconds: Option<u64>,
    /// Scopes asked for at sign-in, separated by spaces or commas (default "openid profile email offline_access").
    #[arg(long)]
    scopes: Option<String>,
    /// A scope to send on refresh requests (default: none, the original grant's scopes apply).
    #[arg(long)]
    refresh_scopes: Option<String>,
    /// Revoke the refresh token at the IdP on sign-out.
    #[arg(long)]
    revoke_on_logout: bool,
    /// Send no PKCE at sign-in (a bug switch).
    #[arg(long)]
    no_pkce: bool,
    /// Ignore the ID token's at_hash (a bug switch).
    #[arg(long)]
    no_at_hash_check: bool,
    /// What JIT provisioning does with email_verified (default reject-false; ignore is the bug).
    #[arg(long, value_enum)]
    email_verified: Option<EmailVerifiedPolicy>,
    /// Ignore the authorization response's RFC 9207 iss parameter (a bug switch).
    #[arg(long)]
    no_iss_param_check: bool,
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split([' ', ',']).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

impl SwitchArgs {
    fn apply(&self, s: &mut Switches) {
        if let Some(v) = self.refresh_strategy {
            s.refresh_strategy = v;
        }
        if let Some(v) = self.jwks {
            s.jwks = v;
        }
        if let Some(v) = self.refresh_nonce {
            s.refresh_nonce = v;
        }
        if let Some(v) = self.clock_offset_seconds {
            s.clock_offset_seconds = v;
        }
        if let Some(v) = self.clock_skew_seconds {
            s.clock_skew_seconds = v;
        }
        if let Some(v) = &self.scopes {
            s.scopes = split_scopes(v);
        }
        if let Some(v) = &self.refresh_scopes {
            s.refresh_scopes = Some(split_scopes(v));
        }
        if self.revoke_on_logout {
            s.revoke_on_logout = true;
        }
        if self.no_pkce {
            s.pkce = false;
        }
        if self.no_at_hash_check {
            s.check_at_hash = false;
        }
        if let Some(v) = self.email_verified {
            s.email_verified = v;
        }
        if self.no_iss_param_check {
            s.check_iss_param = false;
        }
    }
}

#[derive(Args, Debug)]
struct UpArgs {
    /// Where mock-idp listens.
    #[arg(long, env = "HARNESS_IDP_ADDR", default_value = "127.0.0.1:8080")]
    idp_addr: SocketAddr,
    /// Where the stub BSR listens; the tenant's redirect and post-logout URIs follow it.
    #[arg(long, env = "HARNESS_BSR_ADDR", default_value = "127.0.0.1:3000")]
    bsr_addr: SocketAddr,
    /// Tenant file for mock-idp; the embedded default tenant when absent.
    #[arg(long, env = "MOCK_IDP_CONFIG")]
    idp_config: Option<PathBuf>,
    #[command(flatten)]
    switches: SwitchArgs,
}

#[derive(Args, Debug)]
struct BsrArgs {
    /// YAML config file; flags and environment variables override its values.
    #[arg(long, env = "HARNESS_BSR_CONFIG")]
    config: Option<PathBuf>,
    /// Where to listen (default 127.0.0.1:3000).
    #[arg(long, env = "HARNESS_BSR_ADDR")]
    addr: Option<SocketAddr>,
    /// The base URL browsers use, when it is not http://{addr} (behind a proxy, in a container).
    #[arg(long, env = "BSR_PUBLIC_URL")]
    public_url: Option<String>,
    /// The issuer URL, exactly as the IdP's discovery document spells it.
    #[arg(long, env = "BSR_ISSUER")]
    issuer: Option<String>,
    #[arg(long, env = "BSR_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, env = "BSR_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Where sign-out sends the browser (default: discovery's end_session_endpoint).
    #[arg(long, env = "BSR_LOGOUT_URL")]
    logout_url: Option<String>,
    /// The organization slug of the settings page, /{organization}/pro-settings (default acme).
    #[arg(long, env = "BSR_ORGANIZATION")]
    organization: Option<String>,
    #[arg(long, env = "BSR_ADMIN_USERNAME")]
    admin_username: Option<String>,
    #[arg(long, env = "BSR_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Timeout of each request to the IdP, in milliseconds (default 2000).
    #[arg(long, env = "BSR_HTTP_TIMEOUT_MS")]
    http_timeout_ms: Option<u64>,
    /// A PEM file of CA certificates to trust for an https IdP with a private CA (e.g. mock-idp --tls).
    #[arg(long, env = "BSR_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Keep the provisioned users in this file: restored at start, written before every answer that changed
    /// them (sessions are not kept).
    #[arg(long, env = "HARNESS_BSR_STATE")]
    state: Option<PathBuf>,
    #[command(flatten)]
    switches: SwitchArgs,
}

/// The stub's configuration from a file, environment variables and flags, in that order of precedence.
fn bsr_config(a: &BsrArgs) -> Result<BsrConfig, String> {
    let mut c = match &a.config {
        Some(p) => BsrConfig::load(p).map_err(|e| e.to_string())?,
        None => BsrConfig { addr: SocketAddr::from(([127, 0, 0, 1], 3000)), ..BsrConfig::default() },
    };
    if let Some(v) = a.addr {
        c.addr = v;
    }
    if let Some(v) = &a.public_url {
        c.public_url = Some(v.clone());
    }
    if let Some(v) = &a.organization {
        c.organization = v.clone();
    }
    if let Some(v) = &a.admin_username {
        c.admin_username = v.clone();
    }
    if let Some(v) = &a.admin_password {
        c.admin_password = Secret::new(v.clone());
    }
    if let Some(v) = a.http_timeout_ms {
        c.http_timeout = Duration::from_millis(v);
    }
    if let Some(p) = &a.ca_file {
        let pem = std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
        c.trusted_ca_pem.push(pem);
    }
    a.switches.apply(&mut c.switches);
    if let Some(p) = &a.state {
        c.state_file = Some(p.clone());
    }
    if a.issuer.is_some() || a.client_id.is_some() || a.client_secret.is_some() || a.logout_url.is_some() {
        let old = c.sso.take();
        let issuer = a.issuer.clone().or_else(|| old.as_ref().map(|o| o.issuer_url.clone()));
        let client_id = a.client_id.clone().or_else(|| old.as_ref().map(|o| o.client_id.clone()));
        let secret = a.client_secret.clone().map(Secret::new).or_else(|| old.as_ref().map(|o| o.client_secret.clone()));
        let (Some(issuer), Some(client_id), Some(secret)) = (issuer, client_id, secret) else {
            return Err(
                "SSO settings need all of --issuer, --client-id and --client-secret (or BSR_ISSUER, BSR_CLIENT_ID, BSR_CLIENT_SECRET)"
                    .into(),
            );
        };
        let mut s = SsoSettings::new(issuer, client_id, "");
        s.client_secret = secret;
        s.logout_url = a.logout_url.clone().or_else(|| old.and_then(|o| o.logout_url));
        s.validate()?;
        c.sso = Some(s);
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    mock_idp::logging::init("HARNESS_LOG");
    let code = match cli.command {
        Command::Up(a) => run_up(a).await,
        Command::Bsr(a) => run_bsr(a).await,
        Command::Bench(a) => ExitCode::from(harness::bench::cli(a).await as u8),
        Command::Run(a) => {
            // An interrupted run (Ctrl-C, SIGTERM from `timeout` or CI) ends the browsers it has open before
            // it exits: a signal would otherwise leave chromedriver and Chromium running.
            let interrupted = interruption();
            tokio::select! {
                code = harness::scenario::cli_run(a) => ExitCode::from(code as u8),
                n = interrupted => {
                    harness::browser::end_all();
                    let _ = writeln!(std::io::stderr(), "harness: interrupted; the browsers it had open were ended");
                    // As a shell reports a process a signal ended: 128 + its number (130 for SIGINT).
                    ExitCode::from(128 + n)
                }
            }
        }
        Command::List { paths } => ExitCode::from(harness::scenario::cli_list(paths) as u8),
        Command::HealthCheck { url } => match mock_idp::health::check(&url, mock_idp::health::TIMEOUT) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("harness: health check failed: {e}");
                ExitCode::from(1)
            }
        },
    };
    // What it printed did not all arrive (a full disk; a reader that went away is fine): said, and not a
    // success.
    match harness::output_error() {
        Some(e) => {
            // Not eprintln!, which panics when stderr cannot be written either.
            let _ = writeln!(std::io::stderr(), "harness: cannot write its output: {e}");
            if code == ExitCode::SUCCESS { ExitCode::from(1) } else { code }
        }
        None => code,
    }
}

/// The first of SIGINT (Ctrl-C), SIGTERM (`timeout`, a cancelled CI job), SIGHUP (a closed terminal) and
/// SIGQUIT to arrive: its number.
async fn interruption() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn on(s: Option<Signal>, n: u8) -> u8 {
            match s {
                Some(mut s) => {
                    s.recv().await;
                    n
                }
                // Not installable here: this one never fires.
                None => std::future::pending().await,
            }
        }
        let sig = |k: SignalKind| signal(k).ok();
        let (int, term, hup, quit) =
            (sig(SignalKind::interrupt()), sig(SignalKind::terminate()), sig(SignalKind::hangup()), sig(SignalKind::quit()));
        tokio::select! {
            n = on(int, 2) => n,
            n = on(term, 15) => n,
            n = on(hup, 1) => n,
            n = on(quit, 3) => n,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        2
    }
}

fn warn_if_exposed(what: &str, addr: SocketAddr) {
    if !addr.ip().is_loopback() {
        eprintln!("harness: warning: {what} listens on {addr}, reachable from other machines; it has known test credentials");
    }
}

async fn run_up(a: UpArgs) -> ExitCode {
    let tenant = match &a.idp_config {
        Some(p) => match TenantConfig::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("harness: {e}");
                return ExitCode::from(2);
            }
        },
        None => TenantConfig::default_tenant(),
    };
    let mut switches = Switches::default();
    a.switches.apply(&mut switches);
    warn_if_exposed("mock-idp", a.idp_addr);
    warn_if_exposed("the stub BSR", a.bsr_addr);
    let opts = UpOptions { idp_addr: a.idp_addr, bsr_addr: a.bsr_addr, tenant, switches, ..UpOptions::default() };
    let running = match up::start(opts).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("harness: {e:#}");
            return ExitCode::from(1);
        }
    };
    let shutdown = mock_idp::server::shutdown_signal();
    harness::say!("mock-idp listening on {}", running.idp.base_url());
    harness::say!("stub BSR listening on {}", running.bsr.base_url());
    harness::say!("  sign in:      {}/login", running.bsr.base_url());
    if a.idp_config.is_none() {
        harness::say!("                (alice@example.com or bob@example.com, password Passw0rd!)");
    }
    harness::say!("  SSO settings: {}  (admin / admin-password)", running.bsr.settings_url());
    shutdown.await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn run_bsr(a: BsrArgs) -> ExitCode {
    let config = match bsr_config(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("harness bsr: {e}");
            return ExitCode::from(2);
        }
    };
    warn_if_exposed("the stub BSR", config.addr);
    // One process per state file: a second one would overwrite the first one's writes.
    let _state_lock = match config.state_file.as_deref().map(mock_idp::persist::lock).transpose() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("harness bsr: {e:#}");
            return ExitCode::from(1);
        }
    };
    let addr = config.addr;
    let configured = config.sso.is_some();
    let bsr = match StubBsr::start(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("harness bsr: cannot start on {addr}: {e:#}");
            return ExitCode::from(1);
        }
    };
    // The bound address and the URL browsers use differ in a container (0.0.0.0:3000 and
    // http://localhost:3000), so both are named.
    let shutdown = mock_idp::server::shutdown_signal();
    harness::say!("stub BSR listening on {}, public URL {}", bsr.addr(), bsr.base_url());
    if !configured {
        harness::say!("  single sign-on is not configured yet: {} (admin sign-in required)", bsr.settings_url());
    }
    shutdown.await;
    bsr.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bsr_args(args: &[&str]) -> BsrArgs {
        let mut v = vec!["harness", "bsr"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Bsr(b) => b,
            c => panic!("expected bsr, got {c:?}"),
        }
    }

    #[test]
    fn bsr_flags_make_a_config() {
        let a = bsr_args(&[
            "--addr",
            "127.0.0.1:3900",
            "--issuer",
            "https://example.okta.com",
            "--client-id",
            "0oa1",
            "--client-secret",
            "s",
            "--refresh-strategy",
            "naive",
            "--jwks",
            "startup-only",
            "--clock-offset-seconds",
            "-600",
            "--scopes",
            "openid,email",
        ]);
        let c = bsr_config(&a).unwrap();
        assert_eq!(c.addr, "127.0.0.1:3900".parse().unwrap());
        let sso = c.sso.unwrap();
        assert_eq!(
            (sso.issuer_url.as_str(), sso.client_id.as_str(), sso.client_secret.expose()),
            ("https://example.okta.com", "0oa1", "s")
        );
        assert_eq!(c.switches.refresh_strategy, RefreshStrategy::Naive);
        assert_eq!(c.switches.jwks, JwksPolicy::StartupOnly);
        assert_eq!(c.switches.clock_offset_seconds, -600);
        assert_eq!(c.switches.scopes, vec!["openid", "email"]);
    }

    #[test]
    fn the_check_switches_have_flags() {
        let c = bsr_config(&bsr_args(&[])).unwrap();
        assert!(c.switches.pkce && c.switches.check_at_hash && c.switches.check_iss_param);
        assert_eq!(c.switches.email_verified, EmailVerifiedPolicy::RejectFalse);
        let a = bsr_args(&["--no-pkce", "--no-at-hash-check", "--email-verified", "ignore", "--no-iss-param-check"]);
        let c = bsr_config(&a).unwrap();
        assert!(!c.switches.pkce && !c.switches.check_at_hash && !c.switches.check_iss_param);
        assert_eq!(c.switches.email_verified, EmailVerifiedPolicy::Ignore);
    }

    #[test]
    fn incomplete_sso_flags_are_a_usage_error() {
        let a = bsr_args(&["--issuer", "https://example.okta.com"]);
        let e = bsr_config(&a).unwrap_err();
        assert!(e.starts_with("SSO settings need all of --issuer, --client-id and --client-secret"), "{e}");
    }

    #[test]
    fn without_flags_the_stub_starts_unconfigured_on_3000() {
        let c = bsr_config(&bsr_args(&[])).unwrap();
        assert_eq!(c.addr, "127.0.0.1:3000".parse().unwrap());
        assert!(c.sso.is_none());
    }

    #[test]
    fn run_takes_a_remote_webdriver_and_the_hosts_of_its_servers() {
        let Command::Run(r) = Cli::try_parse_from(["harness", "run"]).unwrap().command else { panic!("expected run") };
        assert_eq!((r.browser.webdriver_url, r.browser.listen_host, r.browser.public_host), (None, "127.0.0.1".parse().unwrap(), None));
        let Command::Run(r) = Cli::try_parse_from([
            "harness",
            "run",
            "--webdriver-url",
            "http://chromedriver:9515",
            "--listen-host",
            "0.0.0.0",
            "--public-host",
            "runner",
        ])
        .unwrap()
        .command
        else {
            panic!("expected run")
        };
        assert_eq!(r.browser.webdriver_url.as_deref(), Some("http://chromedriver:9515"));
        assert_eq!(r.browser.listen_host, "0.0.0.0".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(r.browser.public_host.as_deref(), Some("runner"));
        let e = Cli::try_parse_from(["harness", "run", "--listen-host", "runner"]).unwrap_err().to_string();
        assert!(e.contains("invalid value 'runner' for '--listen-host <IP>'"), "{e}");
    }

    #[test]
    fn run_checks_the_public_host_and_the_webdriver_url_at_start() {
        let check = |args: &[&str]| {
            let mut v = vec!["harness", "run"];
            v.extend_from_slice(args);
            let Command::Run(r) = Cli::try_parse_from(v).unwrap().command else { panic!("expected run") };
            r.browser.check()
        };
        let host = "expected a host name or IP address, with no scheme or port (e.g. runner, 10.0.0.5 or fd00::2)";
        assert_eq!(check(&["--public-host", "vm:99"]), Err(format!("--public-host / HARNESS_PUBLIC_HOST \"vm:99\": {host}")));
        assert_eq!(check(&["--public-host", "http://vm"]), Err(format!("--public-host / HARNESS_PUBLIC_HOST \"http://vm\": {host}")));
        assert_eq!(
            check(&["--webdriver-url", "notaurl"]),
            Err("--webdriver-url / HARNESS_WEBDRIVER_URL \"notaurl\": not a URL (relative URL without a base); expected http://host:port, e.g. http://chromedriver:9515".into())
        );
        assert_eq!(check(&["--webdriver-url", "http://chromedriver:9515", "--public-host", "runner"]), Ok(()));
    }

    #[test]
    fn health_check_takes_a_url() {
        let Command::HealthCheck { url } =
            Cli::try_parse_from(["harness", "health-check", "http://127.0.0.1:3000/healthz"]).unwrap().command
        else {
            panic!("expected health-check")
        };
        assert_eq!(url, "http://127.0.0.1:3000/healthz");
    }

    #[test]
    fn up_defaults_match_the_default_tenant() {
        let Command::Up(u) = Cli::try_parse_from(["harness", "up"]).unwrap().command else { panic!("expected up") };
        assert_eq!(u.idp_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.bsr_addr, "127.0.0.1:3000".parse().unwrap());
    }
}
