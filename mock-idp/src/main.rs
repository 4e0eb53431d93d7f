//! `mock-idp`: serve the fake Okta until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mock_idp::{Clock, LogCaps, MockControls, MockIdp, Options, TenantConfig};

#[derive(Parser)]
#[command(name = "mock-idp", version, about = "A fake Okta OpenID Connect provider with a virtual clock")]
struct Args {
    /// Address to listen on (127.0.0.1 unless you mean to expose it).
    #[arg(long, env = "MOCK_IDP_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Tenant file (YAML); the embedded default tenant when absent.
    #[arg(long, env = "MOCK_IDP_CONFIG")]
    config: Option<PathBuf>,
    /// Public base URL (the org issuer) when clients reach the mock under another name.
    #[arg(long, env = "MOCK_IDP_BASE_URL")]
    base_url: Option<String>,
    /// Print the embedded default tenant and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Check a running server instead of starting one (a container health check without curl): GET the URL
    /// (plain http, 1.5 s at most), exit 0 on a 2xx answer and 1 otherwise, with the reason on stderr.
    #[arg(long, value_name = "URL")]
    health_check: Option<String>,
    /// Serve https with a certificate generated at start (signed by a throwaway CA; see --tls-cert-out).
    #[arg(long, env = "MOCK_IDP_TLS", value_parser = clap::builder::FalseyValueParser::new())]
    tls: bool,
    /// With --tls: write the CA certificate (PEM) here for clients to trust, e.g. NODE_EXTRA_CA_CERTS=FILE.
    #[arg(long, env = "MOCK_IDP_TLS_CERT_OUT", requires = "tls")]
    tls_cert_out: Option<PathBuf>,
    /// Keep the tenant (users, apps, keys, sessions, tokens, refresh families, System Log, clock) in this
    /// file: restored at start, written before every answer that changed it.
    #[arg(long, env = "MOCK_IDP_STATE")]
    state: Option<PathBuf>,
    /// Turn the mock-only controls off: /_mock/* (but /_mock/health) answers Okta's 404.
    #[arg(long, env = "MOCK_IDP_NO_MOCK_CONTROLS", value_parser = clap::builder::FalseyValueParser::new(), conflicts_with = "mock_controls_token_required")]
    no_mock_controls: bool,
    /// Require the management token (Authorization: SSWS …) for /_mock/* too.
    #[arg(long, env = "MOCK_IDP_MOCK_CONTROLS_TOKEN_REQUIRED", value_parser = clap::builder::FalseyValueParser::new())]
    mock_controls_token_required: bool,
    /// Most entries GET /_mock/requests keeps (the oldest go first; at least 1).
    #[arg(long, env = "MOCK_IDP_REQUEST_LOG_CAP", default_value_t = LogCaps::default().request_log, value_parser = at_least_one())]
    request_log_cap: usize,
    /// Most System Log events kept (the oldest go first; events older than 90 days always go; at least 1).
    #[arg(long, env = "MOCK_IDP_SYSTEM_LOG_CAP", default_value_t = LogCaps::default().system_log, value_parser = at_least_one())]
    system_log_cap: usize,
}

fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

fn main() -> ExitCode {
    // A MOCK_IDP_* variable set to nothing (a compose variable left blank) counts as not set: removed before
    // the arguments are read, while this is the only thread (so changing the environment is sound).
    for (k, v) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("MOCK_IDP_")) && v.to_str().is_some_and(|v| v.trim().is_empty()) {
            // SAFETY: no other thread exists yet (the async runtime is built below), so nothing reads the
            // environment concurrently.
            unsafe { std::env::remove_var(&k) };
        }
    }
    let args = Args::parse();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(serve(args)),
        Err(e) => {
            eprintln!("mock-idp: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: Args) -> ExitCode {
    if args.print_default_config {
        use std::io::Write as _;
        // A reader that stopped early (`| head`) is fine; a file that could not be written (disk full) is not.
        return match std::io::stdout().write_all(mock_idp::config::DEFAULT_TENANT_YAML.as_bytes()).and_then(|()| std::io::stdout().flush())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("mock-idp: cannot write the default configuration: {e}");
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        };
    }
    if let Some(url) = &args.health_check {
        return match mock_idp::health::check(url, mock_idp::health::TIMEOUT) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mock-idp: health check failed: {e}");
                ExitCode::from(1)
            }
        };
    }
    mock_idp::logging::init("MOCK_IDP_LOG");
    let mut config = match &args.config {
        Some(p) => match TenantConfig::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("mock-idp: {e}");
                return ExitCode::from(2);
            }
        },
        None => TenantConfig::default_tenant(),
    };
    // An empty value (a compose file's `MOCK_IDP_BASE_URL:` left blank) means "not set".
    if let Some(b) = args.base_url.filter(|b| !b.trim().is_empty()) {
        config.base_url = Some(b);
    }
    if !args.addr.ip().is_loopback() {
        eprintln!(
            "mock-idp: warning: listening on {}, reachable from other machines; this is a test IdP with known credentials",
            args.addr
        );
    }
    let mock_controls = if args.no_mock_controls {
        MockControls::Off
    } else if args.mock_controls_token_required {
        MockControls::TokenRequired
    } else {
        MockControls::Open
    };
    let opts = Options {
        config,
        addr: args.addr,
        clock: Clock::system(),
        fresh_keys: true,
        tls: args.tls,
        state_file: args.state.clone(),
        mock_controls,
        log_caps: LogCaps { request_log: args.request_log_cap, system_log: args.system_log_cap },
        ..Options::default()
    };
    // One process per state file: a second one would overwrite the first one's writes.
    let _state_lock = match args.state.as_deref().map(mock_idp::persist::lock).transpose() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock-idp: {e:#}");
            return ExitCode::from(1);
        }
    };
    let idp = match MockIdp::start(opts).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("mock-idp: cannot start: {e:#}");
            return ExitCode::from(1);
        }
    };
    if let (Some(path), Some(pem)) = (&args.tls_cert_out, idp.tls_ca_pem()) {
        // Written before the "listening" line, so whoever waits for that line finds the file complete.
        if let Err(e) = std::fs::write(path, pem) {
            eprintln!("mock-idp: cannot write the TLS certificate to {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let scheme = if args.tls { "https" } else { "http" };
    let shutdown = mock_idp::server::shutdown_signal();
    // Not println!: a reader that went away (`mock-idp | head -1`) must not end the server.
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "mock-idp listening on {scheme}://{}", idp.addr());
    }
    shutdown.await;
    idp.shutdown().await;
    ExitCode::SUCCESS
}
