//! `/v1/authorize`, the hosted sign-in page and Okta's classic authentication API (`/api/v1/authn`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::errors::{ApiError, ErrorPage};
use super::faults::with_tamper;
use super::{CSRF_COOKIE, SID_COOKIE, Shared, cookie, form, html, query_and_body, redirect, with_params};
use crate::clock::rfc3339;
use crate::core::errors::{LOGIN_REQUIRED, LOGIN_REQUIRED_REAUTH, OAuthError};
use crate::core::faults::{Action, AuthorizeDefect, Endpoint, TAMPERED_ISSUER, TAMPERED_STATE};
use crate::core::flows::AuthorizeError;
use crate::core::ids;
use crate::core::model::ServerId;
use crate::core::params::Params;
use crate::core::syslog::{Event, Outcome};
use crate::core::tenant::{AuthorizeRequest, ResponseMode, Session, Tenant};

fn set_cookie(r: &mut Response, v: String) {
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn session_cookie(sid: &str) -> String {
    format!("{SID_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax")
}

/// Renders an authorize error: a page, Okta's 404, or a redirect with `state` first.
fn render_error(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::ServerNotFound(id) => ApiError::server_not_found(&id).into_response(),
        AuthorizeError::Page(err) => ErrorPage(err).into_response(),
        AuthorizeError::Redirect { redirect_uri, mode, state, error } => {
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            pairs.push(("error", error.code.as_str()));
            pairs.push(("error_description", &error.description));
            respond(&redirect_uri, mode, &pairs)
        }
    }
}

fn respond(redirect_uri: &str, mode: ResponseMode, pairs: &[(&str, &str)]) -> Response {
    match mode {
        ResponseMode::Query => redirect(&with_params(redirect_uri, pairs, false)),
        ResponseMode::Fragment => redirect(&with_params(redirect_uri, pairs, true)),
        ResponseMode::FormPost => {
            let mut r = Html(html::form_post(redirect_uri, pairs)).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
            r
        }
    }
}

fn success(req: &AuthorizeRequest, code: &str, defect: Option<AuthorizeDefect>) -> Response {
    match defect {
        // An injected code looks like any other; the difference is in what it is bound to.
        None | Some(AuthorizeDefect::InjectedCode) => {
            respond(&req.redirect_uri, req.response_mode, &[("code", code), ("state", &req.state)])
        }
        Some(AuthorizeDefect::WrongState) => respond(&req.redirect_uri, req.response_mode, &[("code", code), ("state", TAMPERED_STATE)]),
        Some(AuthorizeDefect::WrongIssParam) => {
            respond(&req.redirect_uri, req.response_mode, &[("code", code), ("state", &req.state), ("iss", TAMPERED_ISSUER)])
        }
    }
}

/// Issues the code for a session and renders the response, with the defect of a `tamper_authorize`
/// fault (mock-only) if one is installed: only a redirect that carries a code uses such a rule up.
fn finish(s: &Shared, t: &mut Tenant, req: &AuthorizeRequest, session: &Session, now: i64) -> Response {
    match t.complete_authorize(req, session, now) {
        Ok(code) => {
            let applied = s
                .controls
                .faults
                .lock()
                .take_tamper(Endpoint::Authorize, None, Some(&req.client_id), |a| matches!(a, Action::TamperAuthorize(_)));
            match applied.map(|a| (a.action.name(), a.action)) {
                Some((label, Action::TamperAuthorize(d))) => {
                    if d == AuthorizeDefect::InjectedCode {
                        t.rebind_code_to_another_request(&code);
                    }
                    with_tamper(success(req, &code, Some(d)), label)
                }
                _ => success(req, &code, None),
            }
        }
        Err(e) => render_error(e),
    }
}

/// `GET|POST {server}/v1/authorize`.
pub async fn authorize(
    State(s): State<Shared>,
    path: Option<Path<String>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = path.map(|Path(p)| p);
    let server = match s.server(id.as_deref()) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let params = match query_and_body(q.as_deref(), &method, &body) {
        Ok(p) => p,
        Err(e) => return ErrorPage(e).into_response(),
    };
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let req = match t.validate_authorize(&server, &params) {
        Ok(r) => r,
        Err(e) => return render_error(e),
    };
    // A one-time session token from /api/v1/authn signs the user in without the form.
    if let Some(st) = params.get("sessionToken")
        && let Some(user_id) = t.redeem_session_token(st, now)
    {
        let sid = t.start_session(&user_id, now);
        let Some(session) = t.live_session(&sid, now) else {
            return ErrorPage(OAuthError::invalid_request("The session could not be started.")).into_response();
        };
        let mut r = finish(&s, &mut t, &req, &session, now);
        set_cookie(&mut r, session_cookie(&sid));
        return r;
    }
    let existing = cookie(&headers, SID_COOKIE).and_then(|sid| t.live_session(sid, now));
    if let Some(session) = &existing
        && Tenant::session_satisfies(&req, session, now)
    {
        return finish(&s, &mut t, &req, session, now);
    }
    if req.prompt_none {
        let text = if existing.is_some() { LOGIN_REQUIRED_REAUTH } else { LOGIN_REQUIRED };
        return render_error(AuthorizeError::Redirect {
            redirect_uri: req.redirect_uri.clone(),
            mode: req.response_mode,
            state: Some(req.state.clone()),
            error: OAuthError::new(crate::core::errors::ErrorCode::LoginRequired, text),
        });
    }
    let hint = req.login_hint.clone();
    let prefix = server.path_prefix();
    let key = t.park_authorize(req, now);
    let base = t.base_url.clone();
    drop(t);
    let from = format!("{prefix}/v1/authorize/redirect?okta_key={key}");
    let mut pairs = vec![("fromURI", from.as_str())];
    if let Some(h) = &hint {
        pairs.push(("login_hint", h));
    }
    // Okta redirects with absolute URLs.
    redirect(&with_params(&format!("{base}/login/login.htm"), &pairs, false))
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    okta_key: Option<String>,
}

/// `GET {server}/v1/authorize/redirect?okta_key=…`: where the sign-in page sends the browser back.
pub async fn resume(State(s): State<Shared>, path: Option<Path<String>>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let id = path.map(|Path(p)| p);
    if let Err(e) = s.server(id.as_deref()) {
        return e.into_response();
    }
    let key = match Params::parse(q.as_deref().unwrap_or("")) {
        Ok(p) => p.get("okta_key").map(str::to_string),
        Err(e) => return ErrorPage(e).into_response(),
    };
    let q: ResumeQuery = ResumeQuery { okta_key: key };
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let Some(session) = cookie(&headers, SID_COOKIE).and_then(|sid| t.live_session(sid, now)) else {
        // Not signed in (yet): back to the form, keeping the transaction.
        let from = format!(
            "{}/v1/authorize/redirect?okta_key={}",
            ServerId::path_prefix(&t.server(id.as_deref()).unwrap_or(ServerId::Org)),
            q.okta_key.unwrap_or_default()
        );
        return redirect(&with_params(&format!("{}/login/login.htm", t.base_url), &[("fromURI", &from)], false));
    };
    let Some(req) = q.okta_key.as_deref().and_then(|k| t.take_parked(k, now)) else {
        return ErrorPage(OAuthError::invalid_request(
            "The authorization request has expired or was already used. Start the sign-in again.",
        ))
        .into_response();
    };
    finish(&s, &mut t, &req, &session, now)
}

/// A `fromURI` the sign-in page may send the browser to: a path on this server, never another host.
fn safe_from_uri(u: &str) -> Option<&str> {
    (u.starts_with('/') && !u.starts_with("//") && !u.contains('\\')).then_some(u)
}

fn login_response(s: &Shared, from: &str, username: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = ids::opaque(24);
    let org = s.tenant.lock().org_name.clone();
    let mut r = (status, Html(html::login_page(&org, from, &csrf, username, error))).into_response();
    set_cookie(&mut r, format!("{CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Lax"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    r.headers_mut().insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// `GET /`: the org's sign-in page (where Okta's logout lands without a redirect URI).
pub async fn landing(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let now = s.clock.now_ms();
    let login = {
        let mut t = s.tenant.lock();
        cookie(&headers, SID_COOKIE)
            .and_then(|sid| t.live_session(sid, now))
            .and_then(|sess| t.users.get(&sess.user_id).map(|u| u.profile.login.clone()))
    };
    match login {
        Some(l) => Html(html::signed_in_page(&l)).into_response(),
        None => login_response(&s, "/", "", None, StatusCode::OK),
    }
}

/// `GET /login/login.htm?fromURI=…`: the hosted sign-in form.
pub async fn login_form(State(s): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let p = match Params::parse(q.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return ErrorPage(e).into_response(),
    };
    let from = p.get("fromURI").and_then(safe_from_uri).unwrap_or("/").to_string();
    let hint = p.get("login_hint").unwrap_or("").to_string();
    login_response(&s, &from, &hint, None, StatusCode::OK)
}

/// `POST /login/login.htm`: checks the password, starts the session, returns to `fromURI`.
pub async fn login_submit(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match form(&body) {
        Ok(p) => p,
        Err(e) => return login_response(&s, "/", "", Some(&e.description), StatusCode::BAD_REQUEST),
    };
    let from = p.get("fromURI").and_then(safe_from_uri).unwrap_or("/").to_string();
    let username = p.get("username").unwrap_or("").to_string();
    // Compared in constant time, like every other secret.
    let csrf_ok =
        matches!((p.get("csrf"), cookie(&headers, CSRF_COOKIE)), (Some(a), Some(b)) if crate::core::ids::Secret::new(a).matches(b));
    if !csrf_ok {
        return login_response(&s, &from, &username, Some("Your sign-in form expired. Please try again."), StatusCode::FORBIDDEN);
    }
    let password = p.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return login_response(&s, &from, &username, Some("Please enter a username and a password."), StatusCode::BAD_REQUEST);
    }
    let now = s.clock.now_ms();
    let sid = {
        let mut t = s.tenant.lock();
        match t.check_password(&username, password) {
            Some(uid) => t.start_session(&uid, now),
            None => {
                let actor = t.user_by_login(&username).map(|u| t.user_actor(&u.id)).unwrap_or_else(crate::core::syslog::Actor::unknown);
                t.push_event(
                    Event::new("user.session.start", "User login to Okta", Outcome::Failure, now)
                        .actor(actor)
                        .reason("INVALID_CREDENTIALS"),
                );
                drop(t);
                return login_response(&s, &from, &username, Some("Unable to sign in"), StatusCode::UNAUTHORIZED);
            }
        }
    };
    let base = s.tenant.lock().base_url.clone();
    let mut r = redirect(&format!("{base}{from}"));
    set_cookie(&mut r, session_cookie(&sid));
    r
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthnRequest {
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    options: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    context: Option<serde_json::Value>,
}

/// `POST /api/v1/authn`: Okta's classic primary authentication, for headless sign-ins.
pub async fn authn(State(s): State<Shared>, body: Bytes) -> Response {
    let req: AuthnRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            // Okta's summary is exactly this sentence; the parser's detail goes into errorCauses.
            let mut err = ApiError::bad_request("The request body was not well-formed.");
            err.causes = vec![e.to_string().split(" at line").next().unwrap_or("").to_string()];
            return err.into_response();
        }
    };
    let (Some(username), Some(password)) = (req.username.filter(|u| !u.is_empty()), req.password.filter(|p| !p.is_empty())) else {
        return ApiError::authentication_failed().into_response();
    };
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let Some(uid) = t.check_password(&username, &password) else {
        let actor = t.user_by_login(&username).map(|u| t.user_actor(&u.id)).unwrap_or_else(crate::core::syslog::Actor::unknown);
        t.push_event(
            Event::new("user.session.start", "User login to Okta", Outcome::Failure, now).actor(actor).reason("INVALID_CREDENTIALS"),
        );
        return ApiError::authentication_failed().into_response();
    };
    let token = t.issue_session_token(&uid, now);
    let actor = t.user_actor(&uid);
    t.push_event(Event::new("user.authentication.authenticate", "User authentication", Outcome::Success, now).actor(actor));
    let Some(u) = t.users.get(&uid).cloned() else {
        return ApiError::authentication_failed().into_response();
    };
    drop(t);
    Json(json!({
        "expiresAt": rfc3339(now + crate::core::tenant::SESSION_TOKEN_LIFETIME_MS),
        "status": "SUCCESS",
        "sessionToken": token,
        "_embedded": {"user": {
            "id": u.id,
            "passwordChanged": u.password_changed.map(rfc3339),
            "profile": {
                "login": u.profile.login,
                "firstName": u.profile.first_name,
                "lastName": u.profile.last_name,
                "locale": u.profile.locale.clone().unwrap_or_else(|| "en".into()),
                "timeZone": u.profile.time_zone.clone().unwrap_or_else(|| "America/Los_Angeles".into()),
            }
        }},
        "_links": {"cancel": {"href": format!("{}/api/v1/authn/cancel", s.tenant.lock().base_url), "hints": {"allow": ["POST"]}}}
    }))
    .into_response()
}
