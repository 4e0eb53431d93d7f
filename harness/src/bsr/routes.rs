//! axum handlers. Each one parses, asks the state, and renders; failures go through [`BsrError`]'s single
//! status mapping. Tracing logs method and path only, never query strings (they carry codes and states).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::config::{Provider, Secret, SsoSettings};
use super::errors::BsrError;
use super::pages;
use super::state::{AdminSession, AuthFailure, BsrState, attempt_cookie, random_token};
use super::store::BsrUser;

pub const SESSION_COOKIE: &str = "bsr_session";
pub const ADMIN_COOKIE: &str = "bsr_admin";
pub const ADMIN_CSRF_COOKIE: &str = "bsr_admin_csrf";

type Shared = Arc<BsrState>;

/// The whole router of the stub.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/oauth2/callback", get(callback))
        .route("/logout", get(logout).post(logout))
        .route("/api/me", get(api_me))
        .route("/admin/login", get(admin_login_form).post(admin_login_submit))
        .route("/admin/users", get(users))
        .route("/admin/users/{id}/{action}", post(user_action))
        .route("/{org}/pro-settings", get(settings_form).post(settings_submit))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .layer(middleware::from_fn(log_requests))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

async fn log_requests(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let res = next.run(req).await;
    tracing::debug!(%method, %path, status = res.status().as_u16(), "request");
    res
}

// ----- small helpers -----

/// Reads one cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

fn set_cookie(r: &mut Response, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie_attrs(s: &BsrState) -> &'static str {
    if s.base_url.starts_with("https://") { "; HttpOnly; SameSite=Lax; Secure" } else { "; HttpOnly; SameSite=Lax" }
}

fn clear_session_cookie(s: &BsrState, r: &mut Response) {
    set_cookie(r, &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0{}", cookie_attrs(s)));
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn json_response(status: StatusCode, v: Value) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_page(e: &BsrError) -> Response {
    match e {
        BsrError::IdpRedirect { error, description } => html(e.status(), pages::idp_error(error, description.as_deref())),
        _ => html(e.status(), pages::error(e.title(), &e.to_string())),
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

/// Query or form pairs; the first value of a repeated name wins.
fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A local path to return to after a sign-in: never another host.
fn safe_path(p: Option<&str>) -> Option<String> {
    let p = p?;
    (p.starts_with('/') && !p.starts_with("//") && !p.contains('\\')).then(|| p.to_string())
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn user_json(u: &BsrUser) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "idp_subject": u.idp_subject,
        "state": u.state,
        "created": mock_idp::clock::rfc3339(u.created_ms),
        "last_login": mock_idp::clock::rfc3339(u.last_login_ms),
    })
}

// ----- pages -----

async fn home(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match s.authenticate(cookie(&headers, SESSION_COOKIE)).await {
        Ok((_, u)) => html(StatusCode::OK, pages::home_signed_in(&u)),
        Err(AuthFailure::NoSession) => html(StatusCode::OK, pages::home_signed_out(&s.settings_path())),
        Err(AuthFailure::Ended(_)) => {
            // The session ended at the IdP: a new sign-in, never another refresh.
            let mut r = redirect(StatusCode::FOUND, "/login");
            clear_session_cookie(&s, &mut r);
            r
        }
        Err(AuthFailure::Upstream(e)) => error_page(&e),
    }
}

async fn login(State(s): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let p = pairs(q.as_deref().unwrap_or("").as_bytes());
    let return_to = safe_path(param(&p, "next")).unwrap_or_else(|| "/".into());
    match s.begin_login(return_to).await {
        Ok((url, state, attempt)) => {
            let mut r = redirect(StatusCode::FOUND, &url);
            set_cookie(
                &mut r,
                &format!("{}={}; Path=/oauth2/callback; Max-Age=600{}", attempt_cookie(&state), attempt.binding.expose(), cookie_attrs(&s)),
            );
            r
        }
        Err(e) => error_page(&e),
    }
}

async fn callback(State(s): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = pairs(q.as_deref().unwrap_or("").as_bytes());
    let state = param(&p, "state");
    let attempt = state.and_then(|st| s.take_attempt(st));
    let mut r = callback_inner(&s, &headers, &p, state, attempt).await;
    if let Some(st) = state {
        set_cookie(&mut r, &format!("{}=; Path=/oauth2/callback; Max-Age=0{}", attempt_cookie(st), cookie_attrs(&s)));
    }
    // The URL carried a code; it must not travel on in a Referer header.
    r.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

async fn callback_inner(
    s: &BsrState,
    headers: &HeaderMap,
    p: &[(String, String)],
    state: Option<&str>,
    attempt: Option<super::state::Attempt>,
) -> Response {
    // RFC 9207 §2.4 applies to error responses too: one from another issuer says nothing about this sign-in.
    if let Err(e) = s.check_response_issuer(param(p, "iss")).await {
        return error_page(&e);
    }
    if let Some(error) = param(p, "error") {
        return error_page(&BsrError::IdpRedirect {
            error: error.to_string(),
            description: param(p, "error_description").map(str::to_string),
        });
    }
    let Some(state) = state else {
        return error_page(&BsrError::BadCallback("the callback has no state parameter".into()));
    };
    let Some(attempt) = attempt else {
        return error_page(&BsrError::BadCallback(
            "no sign-in attempt is waiting for this state (it was already used, or it expired after 10 minutes); start again at /login"
                .into(),
        ));
    };
    let bound = cookie(headers, &attempt_cookie(state)).is_some_and(|v| attempt.binding.matches(v));
    if !bound {
        return error_page(&BsrError::BadCallback(
            "this sign-in was started in another browser (its cookie is missing or does not match); start again at /login".into(),
        ));
    }
    let Some(code) = param(p, "code") else {
        return error_page(&BsrError::BadCallback("the callback has neither a code nor an error".into()));
    };
    match s.complete_login(code, &attempt).await {
        Ok((session, _)) => {
            // A new session id at every sign-in (no session fixation); the old one ends.
            if let Some(old) = cookie(headers, SESSION_COOKIE) {
                s.end_session(old, "replaced by a new sign-in");
            }
            let mut r = redirect(StatusCode::FOUND, &attempt.return_to);
            set_cookie(&mut r, &format!("{SESSION_COOKIE}={}; Path=/{}", session.id, cookie_attrs(s)));
            r
        }
        Err(e) => error_page(&e),
    }
}

async fn logout(State(s): State<Shared>, method: Method, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = pairs(q.as_deref().unwrap_or("").as_bytes());
    if method == Method::GET
        && let Some(st) = param(&p, "state")
    {
        let mut r = if s.finish_logout(st) {
            html(StatusCode::OK, pages::signed_out(None))
        } else {
            html(
                StatusCode::BAD_REQUEST,
                pages::error(
                    "Sign-out failed",
                    "sign-out failed: no sign-out is waiting for this state (it was already used, or it expired after 10 minutes)",
                ),
            )
        };
        clear_session_cookie(&s, &mut r);
        return r;
    }
    let mut r = match s.begin_logout(cookie(&headers, SESSION_COOKIE)).await {
        Ok(Some(url)) => redirect(StatusCode::FOUND, &url),
        Ok(None) => html(StatusCode::OK, pages::signed_out(None)),
        Err(e) => html(
            StatusCode::OK,
            pages::signed_out(Some(&format!("you are signed out of the BSR, but the identity provider's session could not be ended: {e}"))),
        ),
    };
    clear_session_cookie(&s, &mut r);
    r
}

async fn api_me(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match s.authenticate(cookie(&headers, SESSION_COOKIE)).await {
        Ok((_, u)) => json_response(
            StatusCode::OK,
            json!({"id": u.id, "username": u.username, "email": u.email, "name": u.name, "idp_subject": u.idp_subject}),
        ),
        Err(AuthFailure::NoSession) => json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "not_signed_in", "error_description": "not signed in; sign in at /login", "login_url": "/login"}),
        ),
        Err(AuthFailure::Ended(reason)) => {
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "session_ended", "error_description": reason, "login_url": "/login"}),
            );
            clear_session_cookie(&s, &mut r);
            r
        }
        Err(AuthFailure::Upstream(e)) => json_response(e.status(), json!({"error": e.code(), "error_description": e.to_string()})),
    }
}

// ----- administration -----

enum Admin {
    /// Signed in through the form: forms must carry the session's CSRF token.
    Cookie(AdminSession),
    /// HTTP Basic credentials (scripts): no ambient authority, so no CSRF token.
    Basic,
}

fn admin(s: &BsrState, headers: &HeaderMap) -> Option<Admin> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic ")) {
        let decoded = STANDARD.decode(v.trim()).ok().and_then(|b| String::from_utf8(b).ok())?;
        let (u, p) = decoded.split_once(':')?;
        return (ct_eq(u, &s.admin_username) & s.admin_password.matches(p)).then_some(Admin::Basic);
    }
    cookie(headers, ADMIN_COOKIE).and_then(|t| s.admin_session(t)).map(Admin::Cookie)
}

fn csrf_ok(a: &Admin, form: &[(String, String)]) -> bool {
    match a {
        Admin::Basic => true,
        Admin::Cookie(sess) => param(form, "csrf").is_some_and(|c| ct_eq(c, &sess.csrf)),
    }
}

fn csrf_of(a: &Admin) -> String {
    match a {
        Admin::Cookie(s) => s.csrf.clone(),
        Admin::Basic => String::new(),
    }
}

fn to_admin_login(next: &str) -> Response {
    let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    redirect(StatusCode::SEE_OTHER, &format!("/admin/login?{q}"))
}

fn admin_login_page(s: &BsrState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = random_token(24);
    let mut r = html(status, pages::admin_login(&csrf, next, error));
    set_cookie(&mut r, &format!("{ADMIN_CSRF_COOKIE}={csrf}; Path=/admin/login{}", cookie_attrs(s)));
    r
}

async fn admin_login_form(State(s): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let p = pairs(q.as_deref().unwrap_or("").as_bytes());
    let next = safe_path(param(&p, "next")).unwrap_or_else(|| s.settings_path());
    admin_login_page(&s, &next, None, StatusCode::OK)
}

async fn admin_login_submit(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let f = pairs(&body);
    let next = safe_path(param(&f, "next")).unwrap_or_else(|| s.settings_path());
    let csrf = matches!((param(&f, "csrf"), cookie(&headers, ADMIN_CSRF_COOKIE)), (Some(a), Some(b)) if ct_eq(a, b));
    if !csrf {
        return admin_login_page(&s, &next, Some("the sign-in form expired; please try again"), StatusCode::FORBIDDEN);
    }
    let user_ok = param(&f, "username").is_some_and(|u| ct_eq(u, &s.admin_username));
    let pass_ok = param(&f, "password").is_some_and(|p| s.admin_password.matches(p));
    if !(user_ok & pass_ok) {
        return admin_login_page(&s, &next, Some("wrong administrator username or password"), StatusCode::UNAUTHORIZED);
    }
    let (token, _) = s.new_admin_session();
    let mut r = redirect(StatusCode::SEE_OTHER, &next);
    set_cookie(&mut r, &format!("{ADMIN_COOKIE}={token}; Path=/{}", cookie_attrs(&s)));
    r
}

fn settings_page(s: &BsrState, a: &Admin, status: StatusCode, message: Option<(bool, &str)>) -> Response {
    html(status, pages::settings(&s.organization, s.sso_settings().as_ref(), &csrf_of(a), message))
}

async fn settings_form(State(s): State<Shared>, Path(org): Path<String>, headers: HeaderMap) -> Response {
    if org != s.organization {
        return not_found_page(&format!("/{org}/pro-settings"));
    }
    match admin(&s, &headers) {
        Some(a) => settings_page(&s, &a, StatusCode::OK, None),
        None => to_admin_login(&s.settings_path()),
    }
}

async fn settings_submit(State(s): State<Shared>, Path(org): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if org != s.organization {
        return not_found_page(&format!("/{org}/pro-settings"));
    }
    let Some(a) = admin(&s, &headers) else { return to_admin_login(&s.settings_path()) };
    let f = pairs(&body);
    if !csrf_ok(&a, &f) {
        return settings_page(&s, &a, StatusCode::FORBIDDEN, Some((false, "the form expired; nothing was saved, please try again")));
    }
    let provider = param(&f, "provider").unwrap_or("oidc");
    if !provider.eq_ignore_ascii_case("oidc") {
        let m = format!("provider {provider:?} is not supported; the stub BSR speaks OIDC only. Nothing was saved.");
        return settings_page(&s, &a, StatusCode::BAD_REQUEST, Some((false, &m)));
    }
    let old = s.sso_settings();
    let secret = match param(&f, "client_secret").filter(|v| !v.is_empty()) {
        Some(v) => Secret::new(v),
        None => old.as_ref().map(|o| o.client_secret.clone()).unwrap_or_else(|| Secret::new("")),
    };
    let new = SsoSettings {
        provider: Provider::Oidc,
        issuer_url: param(&f, "issuer_url").unwrap_or("").trim().to_string(),
        client_id: param(&f, "client_id").unwrap_or("").trim().to_string(),
        client_secret: secret,
        logout_url: param(&f, "logout_url").map(str::trim).filter(|v| !v.is_empty()).map(str::to_string),
    };
    if let Err(m) = new.validate() {
        let m = format!("{m}. Nothing was saved.");
        return settings_page(&s, &a, StatusCode::BAD_REQUEST, Some((false, &m)));
    }
    s.set_sso_settings(Some(new));
    // Discovery right away tells the administrator whether the settings work; they are saved either way.
    match s.provider().await {
        Ok(p) => {
            let m = format!(
                "Saved. Discovery works: issuer {}, authorization endpoint {}.",
                p.discovery.issuer, p.discovery.authorization_endpoint
            );
            settings_page(&s, &a, StatusCode::OK, Some((true, &m)))
        }
        Err(e) => {
            let m = format!("Saved, but sign-in will fail: {e}");
            settings_page(&s, &a, StatusCode::OK, Some((false, &m)))
        }
    }
}

fn users_list(s: &BsrState) -> Vec<(BsrUser, usize)> {
    let all = s.users.lock().all();
    all.into_iter()
        .map(|u| {
            let n = s.sessions_of(&u.id).len();
            (u, n)
        })
        .collect()
}

fn admin_required(headers: &HeaderMap) -> Response {
    if wants_json(headers) {
        json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "admin_required", "error_description": "sign in as the administrator at /admin/login, or send HTTP Basic credentials"}),
        )
    } else {
        to_admin_login("/admin/users")
    }
}

async fn users(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Some(a) = admin(&s, &headers) else { return admin_required(&headers) };
    let list = users_list(&s);
    if wants_json(&headers) {
        let users: Vec<Value> = list
            .iter()
            .map(|(u, n)| {
                let mut v = user_json(u);
                v["sessions"] = json!(n);
                v
            })
            .collect();
        return json_response(StatusCode::OK, json!({ "users": users }));
    }
    html(StatusCode::OK, pages::users(&list, &csrf_of(&a), None))
}

async fn user_action(State(s): State<Shared>, Path((id, action)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(a) = admin(&s, &headers) else { return admin_required(&headers) };
    let f = pairs(&body);
    if !csrf_ok(&a, &f) {
        let m = "the form expired; nothing was changed, please try again";
        return if wants_json(&headers) {
            json_response(StatusCode::FORBIDDEN, json!({"error": "csrf", "error_description": m}))
        } else {
            html(StatusCode::FORBIDDEN, pages::users(&users_list(&s), &csrf_of(&a), Some(m)))
        };
    }
    let (user, message, extra) = match action.as_str() {
        "deactivate" => match s.deactivate(&id).await {
            Some((u, sessions, revoked, errors)) => {
                let mut m = format!(
                    "Deactivated {}: {sessions} session(s) ended, {revoked} token(s) revoked at the identity provider.",
                    u.username
                );
                for e in &errors {
                    m.push_str(&format!(" Revocation failed: {e}."));
                }
                let extra = json!({"sessions_ended": sessions, "tokens_revoked": revoked, "revocation_errors": errors});
                (u, m, extra)
            }
            None => return not_found_page(&format!("/admin/users/{id}")),
        },
        "activate" => match s.activate(&id) {
            Some(u) => {
                let m = format!("Reactivated {}.", u.username);
                (u, m, json!({}))
            }
            None => return not_found_page(&format!("/admin/users/{id}")),
        },
        _ => return not_found_page(&format!("/admin/users/{id}/{action}")),
    };
    if wants_json(&headers) {
        let mut v = extra;
        v["user"] = user_json(&user);
        v["message"] = json!(message);
        return json_response(StatusCode::OK, v);
    }
    html(StatusCode::OK, pages::users(&users_list(&s), &csrf_of(&a), Some(&message)))
}

fn not_found_page(path: &str) -> Response {
    html(StatusCode::NOT_FOUND, pages::not_found(path))
}

async fn not_found(req: Request) -> Response {
    if wants_json(req.headers()) {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "error_description": format!("there is no page at {}", req.uri().path())}),
        );
    }
    not_found_page(req.uri().path())
}

/// A refused request (see [`mock_idp::server`]) in the stub's shapes: JSON under `/api/`, a page elsewhere.
fn refusal(r: mock_idp::server::Refusal, path: &str) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if path.starts_with("/api/") {
        return json_response(status, json!({"error": "invalid_request", "error_description": r.message()}));
    }
    html(status, pages::error("The request was refused", &r.message()))
}

/// Wraps the router in the request limits and, with a state file, the write of the user store before every
/// answer that may have changed it (a sign-in's callback, the admin actions).
pub fn with_guards(app: Router, limits: mock_idp::Limits, persister: Option<Arc<mock_idp::persist::Persister>>) -> Router {
    let app = app.layer(middleware::from_fn(move |req: Request, next: Next| {
        let persister = persister.clone();
        async move {
            let changes = req.method() != Method::GET || req.uri().path() == "/oauth2/callback";
            let res = next.run(req).await;
            if let Some(p) = persister.filter(|_| changes)
                && let Err(e) = p.commit().await
            {
                tracing::error!(error = %e, "the stub's state file could not be written");
                return html(StatusCode::INTERNAL_SERVER_ERROR, pages::error("The user store could not be saved", &e));
            }
            res
        }
    }));
    app.layer(middleware::from_fn(
        move |req: Request, next: Next| async move { mock_idp::server::enforce(&limits, req, next, refusal).await },
    ))
}

/// Restores the user store from `path` if it exists (a corrupt file is an error naming it) and starts keeping
/// it there.
pub async fn open_user_store(state: &Arc<BsrState>, path: &std::path::Path) -> anyhow::Result<Arc<mock_idp::persist::Persister>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            *state.users.lock() =
                super::store::UserStore::from_state_file(&bytes, &path.display().to_string()).map_err(anyhow::Error::msg)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("state file {}: cannot read: {e}", path.display()),
    }
    // Held weakly, so a dropped stub is freed and the writer ends.
    let weak = Arc::downgrade(state);
    let persister = mock_idp::persist::Persister::new(path.to_path_buf(), move || {
        let s = weak.upgrade().ok_or_else(|| "the stub BSR has stopped".to_string())?;
        s.users.lock().to_state_file()
    });
    let p = persister.clone();
    tokio::task::spawn_blocking(move || p.write_now()).await?.map_err(anyhow::Error::msg)?;
    persister.start();
    Ok(persister)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_stay_on_this_host() {
        assert_eq!(safe_path(Some("/admin/users")), Some("/admin/users".into()));
        assert_eq!(safe_path(Some("//evil.example")), None);
        assert_eq!(safe_path(Some("https://evil.example")), None);
        assert_eq!(safe_path(Some("/\\evil.example")), None);
        assert_eq!(safe_path(None), None);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("bsr_session_x=1; bsr_session=abc"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
