//! What stands between a request and the handlers, besides faults: the limits of [`crate::server`] in Okta's
//! error shapes, who may use `/_mock/*` ([`MockControls`]), and after each request the purge of what the
//! tenant clock has expired and the write of the state file ([`crate::persist`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::errors::{ApiError, OAuthJson};
use super::{Shared, html, require_ssws};
use crate::clock::Millis;
use crate::core::errors::OAuthError;
use crate::core::faults::Endpoint;
use crate::persist::Persister;
use crate::server::{Limits, Refusal};

/// Who may use the mock-only controls under `/_mock/` (`/_mock/health` is always open: it tells nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MockControls {
    /// Anyone who can reach the IdP (the default: tests and scenarios drive the clock and faults).
    #[default]
    Open,
    /// Only with `Authorization: SSWS <management token>`, else Okta's 401 E0000011
    /// (`--mock-controls-token-required`).
    TokenRequired,
    /// Not at all: Okta's 404 E0000007, as for any path Okta does not have (`--no-mock-controls`).
    Off,
}

/// How often, on the tenant clock, expired state is purged: at the first request after this much time.
pub const PURGE_EVERY_MS: Millis = 60_000;
/// A purge that removed at least this many entries also hands freed memory back to the OS.
const TRIM_AFTER: usize = 1_000;

/// The guard's part of the IdP's state.
pub struct Guard {
    pub mock_controls: MockControls,
    pub limits: Limits,
    /// Set once at start when the IdP keeps a state file.
    pub persister: OnceLock<Arc<Persister>>,
    last_purge: AtomicI64,
}

impl Guard {
    pub fn new(mock_controls: MockControls, limits: Limits) -> Self {
        Guard { mock_controls, limits, persister: OnceLock::new(), last_purge: AtomicI64::new(i64::MIN) }
    }
}

/// A refused request in the shape its endpoint answers errors in: OAuth JSON at token, introspect and
/// revoke; Okta's HTML error page at the browser endpoints; the management API's body elsewhere.
pub fn refusal(r: Refusal, path: &str) -> Response {
    let status = r.status();
    match Endpoint::classify(path) {
        Some(Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke) => {
            OAuthJson(OAuthError::invalid_request(r.message()).with_status(status)).into_response()
        }
        Some(Endpoint::Authorize | Endpoint::Login | Endpoint::Logout) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (code, Html(html::error_page(status, "invalid_request", &r.message()))).into_response()
        }
        _ => ApiError {
            status,
            code: "E0000001",
            summary: format!("Api validation failed: {}", r.field()),
            causes: vec![format!("{}: {}", r.field(), r.message())],
        }
        .into_response(),
    }
}

/// The limits middleware (outermost but for the request-id header).
pub async fn limits(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let limits = s.guard.limits;
    crate::server::enforce(&limits, req, next, refusal).await
}

/// Whether a request may have changed what the state file holds. Reads of the directory, keys, userinfo and
/// the mock's own faults and request log (not kept in the file) may not; the browser GETs that start,
/// resume or end sign-ins, and every other write, may.
fn may_change(method: &Method, path: &str) -> bool {
    if path.starts_with("/_mock/faults") || path.starts_with("/_mock/requests") || path == "/_mock/health" {
        return false;
    }
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => {
            path == "/" || path.ends_with("/v1/authorize") || path.ends_with("/v1/authorize/redirect") || path.ends_with("/v1/logout")
        }
        _ => true,
    }
}

/// Gives memory freed by a large purge back to the operating system: glibc keeps freed heap pages otherwise,
/// and a mock that ran a load test would stay at its peak size.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Who may use `/_mock/*`, then the request, then the purge and the state file.
pub async fn controls(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path.starts_with("/_mock/") && path != "/_mock/health" {
        match s.guard.mock_controls {
            MockControls::Open => {}
            MockControls::Off => return ApiError::not_found(&format!("Resource not found: {path} (Resource)")).into_response(),
            MockControls::TokenRequired => {
                if let Err(e) = require_ssws(&s, req.headers()) {
                    return e.into_response();
                }
            }
        }
    }
    let res = next.run(req).await;
    let now = s.clock.now_ms();
    let last = s.guard.last_purge.load(Ordering::Relaxed);
    // A clock moved back also purges, so a purge is never postponed by a whole jump.
    if (now < last || now.saturating_sub(last) >= PURGE_EVERY_MS)
        && s.guard.last_purge.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let removed = s.tenant.lock().purge(now);
        if removed >= TRIM_AFTER {
            trim_heap();
        }
    }
    // A rate-limited request of any method may have written `system.org.rate_limit.violation`.
    if let Some(p) = s.guard.persister.get()
        && (may_change(&method, &path) || res.status() == StatusCode::TOO_MANY_REQUESTS)
        && let Err(e) = p.commit().await
    {
        tracing::error!(error = %e, "the state file could not be written; the answer is withheld");
        return ApiError { status: 500, code: "E0000009", summary: "Internal Server Error".into(), causes: vec![e] }.into_response();
    }
    res
}
