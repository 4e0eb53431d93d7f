//! axum adapters: one file per endpoint group. Handlers parse, read the clock once, lock the tenant for
//! the decision, unlock, sign outside the lock, and render.

pub mod authorize;
pub mod cors;
pub mod discovery;
pub mod errors;
pub mod faults;
pub mod guard;
pub mod html;
pub mod logout;
pub mod logs;
pub mod mgmt;
pub mod mock;
pub mod ratelimit;
pub mod token;
pub mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::core::errors::OAuthError;
use crate::core::ids;
use crate::core::model::ServerId;
use crate::core::params::Params;
use crate::core::tenant::Tenant;
use errors::ApiError;

/// Builds a tenant from a configuration, with the IdP's own clock and key source.
pub type Rebuild = Box<dyn Fn(&crate::config::TenantConfig) -> anyhow::Result<Tenant> + Send + Sync>;

/// Shared state of a running IdP.
pub struct AppState {
    pub tenant: Mutex<Tenant>,
    pub clock: Clock,
    /// Builds a tenant from a configuration (`/_mock/reset`); the clock and key source are the IdP's own.
    pub rebuild: Rebuild,
    /// The configuration a plain reset returns to: the one the IdP started with.
    pub initial_config: crate::config::TenantConfig,
    /// Where key rotations get new keys: the same source the tenant was built from.
    pub keys: Arc<dyn Fn(usize) -> Arc<crate::keys::KeyMaterial> + Send + Sync>,
    /// Fault rules, their barriers and the request log (`/_mock/faults`, `/_mock/requests`).
    pub controls: faults::Controls,
    /// Limits, who may use `/_mock/*`, the purge and the state file.
    pub guard: guard::Guard,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Resolves the server of a request path (`None` = org server); unknown ids are Okta's 404.
    pub fn server(&self, id: Option<&str>) -> Result<ServerId, ApiError> {
        self.tenant.lock().server(id).ok_or_else(|| ApiError::server_not_found(id.unwrap_or("")))
    }
}

/// Name of the IdP session cookie (Okta's `sid`).
pub const SID_COOKIE: &str = "sid";
pub const CSRF_COOKIE: &str = "mock_csrf";

/// Reads one cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Parses a form body (or any urlencoded text) with the duplicate rule; bodies that are not UTF-8 are
/// treated as text with replacement characters, so they fail validation instead of the parser.
pub fn form(body: &[u8]) -> Result<Params, OAuthError> {
    Params::parse(&String::from_utf8_lossy(body))
}

/// Query and, for POST, the form body, merged (a name in both is a duplicate).
pub fn query_and_body(query: Option<&str>, method: &Method, body: &[u8]) -> Result<Params, OAuthError> {
    let q = Params::parse(query.unwrap_or(""))?;
    if method == Method::POST { q.merge(form(body)?) } else { Ok(q) }
}

async fn okta_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ids::request_id()) {
        h.insert("x-okta-request-id", v);
    }
    // `X-Rate-Limit-*` are set where requests are counted (`faults::observe`, `ratelimit`).
    // Method and path only: query strings carry codes and tokens, which never go into logs.
    tracing::debug!(%method, %path, status = res.status().as_u16(), "request");
    res
}

async fn not_found(req: Request) -> Response {
    ApiError::not_found(&format!("Resource not found: {} (Resource)", req.uri().path())).into_response()
}

async fn fallback_405() -> Response {
    ApiError::method_not_allowed().into_response()
}

/// The whole router of one tenant.
pub fn router(state: Shared) -> Router {
    let server_routes = |r: Router<Shared>, prefix: &str| {
        r.route(&format!("{prefix}/v1/keys"), get(discovery::keys))
            .route(&format!("{prefix}/v1/authorize"), get(authorize::authorize).post(authorize::authorize))
            .route(&format!("{prefix}/v1/authorize/redirect"), get(authorize::resume))
            .route(&format!("{prefix}/v1/token"), post(token::token))
            .route(&format!("{prefix}/v1/introspect"), post(token::introspect))
            .route(&format!("{prefix}/v1/revoke"), post(token::revoke))
            .route(&format!("{prefix}/v1/userinfo"), get(userinfo::userinfo).post(userinfo::userinfo))
            .route(&format!("{prefix}/v1/logout"), get(logout::logout).post(logout::logout))
    };
    let mut r = Router::new()
        .route("/.well-known/openid-configuration", get(discovery::org_openid))
        .route("/oauth2/{server}/.well-known/openid-configuration", get(discovery::custom_openid))
        .route("/oauth2/{server}/.well-known/oauth-authorization-server", get(discovery::custom_oauth))
        .route("/", get(authorize::landing))
        .route("/login/login.htm", get(authorize::login_form).post(authorize::login_submit))
        .route("/api/v1/authn", post(authorize::authn))
        .route("/api/v1/logs", get(logs::logs))
        .route("/_mock/clock", get(mock::get_clock).post(mock::post_clock))
        .route("/_mock/reset", post(mock::reset))
        .route("/_mock/health", get(mock::health));
    r = server_routes(r, "/oauth2");
    r = server_routes(r, "/oauth2/{server}");
    r = ratelimit::routes(faults::routes(r)).merge(mgmt::routes(state.clone()));
    r.fallback(not_found)
        .method_not_allowed_fallback(fallback_405)
        .layer(middleware::from_fn_with_state(state.clone(), faults::observe))
        // Outside the faults, so a state-file write covers a `drop_after_commit` answer too.
        .layer(middleware::from_fn_with_state(state.clone(), guard::controls))
        // Outside the faults, so an injected error still reaches a trusted page's JavaScript.
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
        // Before everything else, so no handler or fault waits on a slow or oversized request.
        .layer(middleware::from_fn_with_state(state.clone(), guard::limits))
        .layer(middleware::from_fn(okta_headers))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// A 302 to `location`, with Okta's no-referrer policy.
pub fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    r
}

/// Appends `pairs` to a URL's query (or fragment), encoded.
pub fn with_params(base: &str, pairs: &[(&str, &str)], fragment: bool) -> String {
    let enc: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter().copied()).finish();
    if fragment {
        format!("{base}#{enc}")
    } else if base.contains('?') {
        format!("{base}&{enc}")
    } else {
        format!("{base}?{enc}")
    }
}

/// The `Authorization: SSWS <token>` guard of the management API.
pub fn require_ssws(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("SSWS ")).map(str::trim);
    match given {
        Some(t) if state.tenant.lock().management_token.matches(t) => Ok(()),
        _ => Err(ApiError::invalid_token()),
    }
}
