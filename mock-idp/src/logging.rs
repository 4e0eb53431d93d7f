//! The binaries' log (`MOCK_IDP_LOG` for `mock-idp`, `HARNESS_LOG` for `harness`): tracing to stderr, `warn`
//! unless the variable says otherwise.

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Libraries whose own debug and trace output carries secret values: `cookie_store` (reqwest's cookie jar)
/// logs every Set-Cookie it stores, session cookies included. Their records above `warn` are dropped
/// whatever the variable says (a directive for one of their modules included).
const QUIET: &[&str] = &["cookie_store"];

/// Whether a record may be logged at all: not one of [`QUIET`]'s above `warn`.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::WARN || !QUIET.iter().any(|q| meta.target() == *q || meta.target().starts_with(&format!("{q}::")))
}

/// The filter for directives given as text (`"trace"`, `"mock_idp=debug"`), with [`allowed`] on top.
pub fn filter_from<S>(directives: &str) -> impl Filter<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::filter::FilterExt::and(EnvFilter::new(directives), tracing_subscriber::filter::filter_fn(allowed))
}

/// Whether to colour the log: only on a terminal, and not when `NO_COLOR` is set (<https://no-color.org>).
pub fn colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the log for a binary: the variable's directives (or `warn`), stderr, and the `log` crate's
/// records (libraries that log through it) brought in.
pub fn init(var: &str) {
    let directives = match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => "warn".to_string(),
        Ok(v) => match EnvFilter::try_new(&v) {
            Ok(_) => v,
            // Said once on stderr (the log is not up yet), and the default used: a typo must not go unseen.
            Err(e) => {
                eprintln!("{var}={v:?} is not a log filter ({e}); logging at warn");
                "warn".to_string()
            }
        },
        Err(_) => "warn".to_string(),
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour());
    let _ = tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(layer, filter_from(&directives))).try_init();
}
