//! The binaries' log (`MOCK_IDP_LOG` for `mock-idp`, `HARNESS_LOG` for `harness`): tracing to stderr, `warn`
//! unless the variable says otherwise.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// Libraries whose own debug and trace output carries secret values, kept at `warn` whatever the variable
/// says: `cookie_store` (reqwest's cookie jar) logs every Set-Cookie it stores, session cookies included.
const QUIET: &[&str] = &["cookie_store=warn"];

/// The filter: the variable's directives (or `warn`), then [`QUIET`], which a directive for the same target
/// in the variable does not override.
pub fn filter(var: &str) -> EnvFilter {
    quiet(EnvFilter::try_from_env(var).unwrap_or_else(|_| EnvFilter::new("warn")))
}

/// The filter for directives given as text (`"trace"`, `"mock_idp=debug"`), with [`QUIET`] after them.
pub fn filter_from(directives: &str) -> EnvFilter {
    quiet(EnvFilter::new(directives))
}

fn quiet(mut f: EnvFilter) -> EnvFilter {
    for d in QUIET {
        if let Ok(d) = d.parse::<Directive>() {
            f = f.add_directive(d);
        }
    }
    f
}

/// Whether to colour the log: only on a terminal, and not when `NO_COLOR` is set (<https://no-color.org>).
pub fn colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the log for a binary.
pub fn init(var: &str) {
    tracing_subscriber::fmt().with_env_filter(filter(var)).with_writer(std::io::stderr).with_ansi(colour()).init();
}
