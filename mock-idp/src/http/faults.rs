//! Mock-only fault injection and the request log: `/_mock/faults`, `/_mock/requests`, and the middleware
//! that applies fault rules and records every protocol and API request.
//!
//! Carrying out actions needs real time and real connections, so it lives here and not in `core`:
//! - `respond`: the handler never runs; an Okta-shaped error for the endpoint goes back at once.
//! - `delay_ms`: a real `tokio::time::sleep` before the handler runs. Delays are wall time by nature (a
//!   slow network); the tenant clock does not move.
//! - `drop_after_commit`: the handler runs and commits its state change (a refresh rotates), then the
//!   response is replaced by a body that fails before its first byte, so hyper closes the connection
//!   without writing the status line: the client sees a connection error, never a response.
//! - `hold`: matching requests wait at a barrier until `until_waiting` of them are there, or until
//!   `POST /_mock/faults/{id}/release`; then all go at once, to put concurrent refreshes on one instant.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::errors::{ApiError, OAuthJson};
use super::mock::optional_json;
use super::{Shared, html};
use crate::clock::Millis;
use crate::core::errors::{CLIENT_AUTH_FAILED, ErrorCode, OAuthError, RATE_LIMITED, USERINFO_INVALID, USERINFO_SCOPE};
use crate::core::faults::{Action, Endpoint, FaultSet, Respond, Rule, RuleSpec};
use crate::core::flows::RefreshTrace;
use crate::core::reqlog::{RequestEntry, RequestLog};

/// Request bodies are buffered to read `grant_type` and `client_id`; the same limit as the handlers'.
const BODY_LIMIT: usize = 64 * 1024;

/// One barrier of a `hold` rule.
struct Barrier {
    waiting: u32,
    epoch: u64,
    tx: watch::Sender<u64>,
}

impl Barrier {
    fn new() -> Self {
        Barrier { waiting: 0, epoch: 0, tx: watch::channel(0).0 }
    }
    /// Lets every waiter go; returns how many there were.
    fn release(&mut self) -> u32 {
        let n = self.waiting;
        self.waiting = 0;
        self.epoch += 1;
        self.tx.send_replace(self.epoch);
        n
    }
}

/// The mock's controls of one IdP: fault rules, their barriers, and the request log.
#[derive(Default)]
pub struct Controls {
    pub faults: Mutex<FaultSet>,
    pub requests: Mutex<RequestLog>,
    barriers: Mutex<HashMap<String, Barrier>>,
}

/// Takes a waiter off its barrier's count if its request goes away (the client hung up) before release.
struct WaitGuard<'a> {
    controls: &'a Controls,
    rule: String,
    epoch: u64,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut b = self.controls.barriers.lock();
        if let Some(st) = b.get_mut(&self.rule)
            && st.epoch == self.epoch
        {
            st.waiting = st.waiting.saturating_sub(1);
        }
    }
}

impl Controls {
    /// Waits at the barrier of `rule` until `until` requests wait there (this one included) or the rule
    /// is released or removed.
    async fn hold(&self, rule: &str, until: u32) {
        let (mut rx, epoch) = {
            let mut b = self.barriers.lock();
            let st = b.entry(rule.to_string()).or_insert_with(Barrier::new);
            st.waiting += 1;
            if st.waiting >= until {
                st.release();
                return;
            }
            (st.tx.subscribe(), st.epoch)
        };
        let mut guard = WaitGuard { controls: self, rule: rule.to_string(), epoch, armed: true };
        // An error means the barrier was dropped (rule deleted, reset): the request goes on.
        let _ = rx.changed().await;
        guard.armed = false;
    }

    /// How many requests wait at a rule's barrier.
    fn waiting(&self, rule: &str) -> u32 {
        self.barriers.lock().get(rule).map(|b| b.waiting).unwrap_or(0)
    }

    /// Releases a rule's barrier; returns how many requests it let go.
    pub fn release(&self, rule: &str) -> u32 {
        self.barriers.lock().get_mut(rule).map(Barrier::release).unwrap_or(0)
    }

    /// Removes one rule, letting its held requests go.
    pub fn remove(&self, rule: &str) -> bool {
        let found = self.faults.lock().remove(rule);
        self.barriers.lock().remove(rule);
        found
    }

    /// Removes every rule, letting every held request go.
    pub fn clear_faults(&self) {
        self.faults.lock().clear();
        self.barriers.lock().clear();
    }

    /// What `/_mock/reset` clears besides the tenant and the clock: faults, barriers, the request log.
    pub fn clear(&self) {
        self.clear_faults();
        self.requests.lock().clear();
    }
}

/// Marks a response with the refresh family and generation its request presented, for the request log.
pub fn with_trace(mut r: Response, trace: RefreshTrace) -> Response {
    r.extensions_mut().insert(trace);
    r
}

/// The tampering fault a handler applied to its answer (`tamper_id_token:wrong_iss`, …), for the request
/// log's `fault`: handlers take tampering rules themselves, so the middleware learns of them afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Tampered(pub &'static str);

/// Marks a response as changed by a tampering fault.
pub fn with_tamper(mut r: Response, label: &'static str) -> Response {
    r.extensions_mut().insert(Tampered(label));
    r
}

/// A response body that fails before its first frame: hyper then drops the connection without writing
/// the buffered status line and headers.
struct Dropped;

impl HttpBody for Dropped {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("mock-idp fault: drop_after_commit"))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }
}

/// The first value of `name` in urlencoded text (duplicates are the handlers' business).
fn first_param(raw: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(raw.as_bytes()).find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.into_owned())
}

/// The client id of a `Basic` header, without checking the secret.
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let s = String::from_utf8(STANDARD.decode(b.trim()).ok()?).ok()?;
    let (id, _) = s.split_once(':')?;
    first_param(&format!("v={id}"), "v")
}

/// Applies fault rules and records the request log; `/_mock/*` and unknown paths pass untouched.
pub async fn observe(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some(endpoint) = Endpoint::classify(&path) else {
        return next.run(req).await;
    };
    let method = req.method().to_string();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError {
            status: 413,
            code: "E0000001",
            summary: "Api validation failed: body".into(),
            causes: vec![format!("body: larger than {BODY_LIMIT} bytes")],
        }
        .into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body_param = |n: &str| if is_form { first_param(&text, n) } else { None };
    let grant_type = if endpoint == Endpoint::Token { body_param("grant_type") } else { None };
    let client_id = body_param("client_id").or_else(|| parts.uri.query().and_then(|q| first_param(q, "client_id"))).or_else(|| {
        matches!(endpoint, Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke).then(|| basic_client_id(&parts.headers)).flatten()
    });
    let time = s.clock.now_ms();
    let seq = s.controls.requests.lock().arrive();
    // Okta's rate limits come before everything else the IdP does: a refused request reaches no handler and
    // uses no fault rule.
    let rate = s.tenant.lock().rate_check(endpoint, &path, client_id.as_deref(), time);
    let applied = if rate.allowed { s.controls.faults.lock().take(endpoint, grant_type.as_deref(), client_id.as_deref()) } else { None };
    let record = |status: u16, trace: RefreshTrace, fault: Option<&'static str>| {
        s.controls.requests.lock().record(RequestEntry {
            seq,
            time,
            method,
            path,
            endpoint,
            grant_type,
            client_id,
            status,
            refresh_family: trace.family,
            refresh_generation: trace.generation,
            fault,
        });
    };
    if !rate.allowed {
        let res = super::ratelimit::refused(endpoint, &rate);
        record(res.status().as_u16(), RefreshTrace::default(), None);
        return res;
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let fault = applied.as_ref().map(|a| a.action.name());
    let mut drop_it = false;
    let mut res = match applied {
        None => next.run(req).await,
        Some(a) => match a.action {
            Action::Respond(r) => fault_response(endpoint, &r, time),
            Action::DelayMs(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                next.run(req).await
            }
            Action::Hold(h) => {
                s.controls.hold(&a.rule_id, h.until_waiting).await;
                next.run(req).await
            }
            Action::DropAfterCommit => {
                drop_it = true;
                next.run(req).await
            }
            // `take` never returns tampering rules (the handlers take them); run the handler regardless.
            Action::TamperIdToken(_) | Action::TamperAccessToken(_) | Action::TamperAuthorize(_) => next.run(req).await,
        },
    };
    let trace = res.extensions_mut().remove::<RefreshTrace>().unwrap_or_default();
    let fault = fault.or_else(|| res.extensions_mut().remove::<Tampered>().map(|t| t.0));
    super::ratelimit::set_headers(&mut res, &rate);
    record(res.status().as_u16(), trace, fault);
    if drop_it {
        return Response::new(Body::new(Dropped));
    }
    res
}

fn oauth_fault(status: u16) -> OAuthError {
    let (code, text) = match status {
        429 => (ErrorCode::InvalidGrant, RATE_LIMITED),
        401 => (ErrorCode::InvalidClient, CLIENT_AUTH_FAILED),
        503 => (
            ErrorCode::TemporarilyUnavailable,
            "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server.",
        ),
        s if s >= 500 => (
            ErrorCode::ServerError,
            "The authorization server encountered an unexpected condition that prevented it from fulfilling the request.",
        ),
        _ => (ErrorCode::InvalidRequest, "The request was rejected by a mock-idp fault rule."),
    };
    OAuthError::new(code, text).with_status(status)
}

fn api_fault(status: u16) -> ApiError {
    let (code, summary) = match status {
        400 => ("E0000001", "Api validation failed"),
        401 => ("E0000011", "Invalid token provided"),
        403 => ("E0000006", "You do not have permission to perform the requested action"),
        404 => ("E0000007", "Not found: Resource not found"),
        405 => ("E0000022", "The endpoint does not support the provided HTTP method"),
        429 => ("E0000047", RATE_LIMITED),
        503 => ("E0000010", "Service is in read only mode"),
        s if s >= 500 => ("E0000009", "Internal Server Error"),
        _ => ("E0000001", "Api validation failed"),
    };
    ApiError { status, code, summary: summary.into(), causes: vec![] }
}

/// The Okta-shaped answer of a `respond` rule: OAuth JSON at token/introspect/revoke, Okta's HTML error
/// page at browser endpoints, a `WWW-Authenticate` challenge for 401/403 at userinfo, the management-API
/// error body (E0000047 for 429, …) elsewhere; 429s carry `X-Rate-Limit-*` with Remaining 0 and a reset a
/// minute ahead on the tenant clock. `body` and `headers` in the rule override.
fn fault_response(endpoint: Endpoint, r: &Respond, now: Millis) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut res = if status.as_u16() < 400 {
        (status, Json(json!({}))).into_response()
    } else {
        match endpoint {
            Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke => OAuthJson(oauth_fault(r.status)).into_response(),
            Endpoint::Authorize | Endpoint::Logout | Endpoint::Login => {
                let e = oauth_fault(r.status);
                (status, Html(html::error_page(r.status, e.code.as_str(), &e.description))).into_response()
            }
            Endpoint::Userinfo if r.status == 401 || r.status == 403 => {
                let (err, desc) =
                    if r.status == 401 { ("invalid_token", USERINFO_INVALID) } else { ("insufficient_scope", USERINFO_SCOPE) };
                let mut x = status.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer error=\"{err}\", error_description=\"{desc}\"")) {
                    x.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                x
            }
            _ => api_fault(r.status).into_response(),
        }
    };
    if r.status == 429 {
        let h = res.headers_mut();
        h.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
        h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
        if let Ok(v) = HeaderValue::from_str(&(now.div_euclid(1000) + 60).to_string()) {
            h.insert("x-rate-limit-reset", v);
        }
    }
    if let Some(b) = &r.body {
        let (text, ct) = match b {
            Value::String(s) => (s.clone(), "text/plain;charset=UTF-8"),
            other => (other.to_string(), "application/json"),
        };
        let headers = std::mem::take(res.headers_mut());
        res = (status, text).into_response();
        *res.headers_mut() = headers;
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        res.headers_mut().remove(header::CONTENT_LENGTH);
    }
    for (k, v) in &r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            res.headers_mut().insert(k, v);
        }
    }
    res
}

fn rule_json(c: &Controls, r: &Rule) -> Value {
    let mut v = serde_json::to_value(&r.spec).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(r.id));
        m.insert("remaining".into(), json!(r.remaining));
        m.insert("matched".into(), json!(r.matched));
        if matches!(r.spec.action, Action::Hold(_)) {
            m.insert("waiting".into(), json!(c.waiting(&r.id)));
        }
    }
    v
}

fn fault_not_found(id: &str) -> ApiError {
    ApiError::not_found(&format!("Resource not found: {id} (FaultRule)"))
}

/// `POST /_mock/faults`: installs a rule; answers `{"id": "flt_…"}`.
pub async fn add(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(vec![
            "endpoint: The field cannot be left blank".into(),
            "action: The field cannot be left blank".into(),
        ]));
    }
    let spec: RuleSpec =
        optional_json::<Option<RuleSpec>>(&body)?.ok_or_else(|| ApiError::validation(vec!["rule: must be a JSON object".into()]))?;
    let id = s.controls.faults.lock().add(spec).map_err(|e| ApiError::validation(vec![e]))?;
    Ok(Json(json!({"id": id})).into_response())
}

/// `GET /_mock/faults`: every rule with `remaining` (null = unlimited), `matched` and, for holds,
/// `waiting`.
pub async fn list(State(s): State<Shared>) -> Response {
    let rules: Vec<Rule> = s.controls.faults.lock().rules().to_vec();
    Json(rules.iter().map(|r| rule_json(&s.controls, r)).collect::<Vec<_>>()).into_response()
}

pub async fn get_one(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let r = s.controls.faults.lock().get(&id).cloned().ok_or_else(|| fault_not_found(&id))?;
    Ok(Json(rule_json(&s.controls, &r)).into_response())
}

/// `DELETE /_mock/faults`: removes every rule (held requests go on).
pub async fn clear(State(s): State<Shared>) -> StatusCode {
    s.controls.clear_faults();
    StatusCode::NO_CONTENT
}

/// `DELETE /_mock/faults/{id}`.
pub async fn remove(State(s): State<Shared>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if s.controls.remove(&id) { Ok(StatusCode::NO_CONTENT) } else { Err(fault_not_found(&id)) }
}

/// `POST /_mock/faults/{id}/release`: lets the requests held by a rule go now; `{"released": n}`.
pub async fn release(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    optional_json::<Value>(&body)?;
    if s.controls.faults.lock().get(&id).is_none() {
        return Err(fault_not_found(&id));
    }
    Ok(Json(json!({"released": s.controls.release(&id)})).into_response())
}

/// `GET /_mock/requests[?endpoint=token]`: the request log, in arrival order.
pub async fn requests(State(s): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = crate::core::params::Params::parse(q.as_deref().unwrap_or("")).map_err(|e| ApiError::validation(vec![e.description]))?;
    let want = p.get("endpoint").map(str::to_string);
    if let Some(w) = &want
        && serde_json::from_value::<Endpoint>(json!(w)).is_err()
    {
        return Err(ApiError::validation(vec![format!("endpoint: unknown endpoint {w}")]));
    }
    let log = s.controls.requests.lock();
    let v: Vec<Value> =
        log.entries().iter().filter(|e| want.as_deref().is_none_or(|w| e.endpoint.as_str() == w)).map(RequestEntry::to_json).collect();
    Ok(Json(v).into_response())
}

/// `DELETE /_mock/requests`: empties the request log.
pub async fn clear_requests(State(s): State<Shared>) -> StatusCode {
    s.controls.requests.lock().clear();
    StatusCode::NO_CONTENT
}

/// The `/_mock/faults` and `/_mock/requests` routes.
pub fn routes(r: Router<Shared>) -> Router<Shared> {
    r.route("/_mock/faults", post(add).get(list).delete(clear))
        .route("/_mock/faults/{id}", get(get_one).delete(remove))
        .route("/_mock/faults/{id}/release", post(release))
        .route("/_mock/requests", get(requests).delete(clear_requests))
}
