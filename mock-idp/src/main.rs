//! `mock-idp`: serve the fake Okta until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mock_idp::{Clock, MockIdp, Options, TenantConfig};

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
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", mock_idp::config::DEFAULT_TENANT_YAML);
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MOCK_IDP_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
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
    if let Some(b) = args.base_url {
        config.base_url = Some(b);
    }
    if !args.addr.ip().is_loopback() {
        eprintln!(
            "mock-idp: warning: listening on {}, reachable from other machines; this is a test IdP with known credentials",
            args.addr
        );
    }
    let opts = Options { config, addr: args.addr, clock: Clock::system(), fresh_keys: true };
    let idp = match MockIdp::start(opts).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("mock-idp: cannot start on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    println!("mock-idp listening on http://{}", idp.addr());
    shutdown_signal().await;
    idp.shutdown().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
