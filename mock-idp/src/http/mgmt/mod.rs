//! Okta's management API subset: Users, Groups, Apps (OIDC), Authorization Servers, a user's OAuth
//! refresh tokens; plus the mock-only org key rotation. Every route needs `Authorization: SSWS <token>`
//! (401 E0000011 otherwise). Bodies and answers follow Okta's JSON; the decisions are in
//! `core::directory`. The reference with the mock's choices is docs/management-api.md.

pub mod apps;
pub mod groups;
pub mod servers;
pub mod users;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::{Shared, require_ssws};
use crate::core::directory::DirError;
use crate::core::params::Params;

impl From<DirError> for ApiError {
    fn from(e: DirError) -> Self {
        match e {
            DirError::NotFound { id, kind } => ApiError::not_found(&format!("Resource not found: {id} ({kind})")),
            DirError::Validation { what, causes } => {
                ApiError { status: 400, code: "E0000001", summary: format!("Api validation failed: {what}"), causes }
            }
            DirError::AlreadyActive => ApiError {
                status: 403,
                code: "E0000016",
                summary: "Activation failed because the user is already active".into(),
                causes: vec![],
            },
            DirError::WrongStatus => ApiError {
                status: 403,
                code: "E0000038",
                summary: "This operation is not allowed in the user's current status.".into(),
                causes: vec![],
            },
            DirError::AppActive => ApiError {
                status: 403,
                code: "E0000056",
                summary: "Delete application forbidden.".into(),
                causes: vec!["The application must be deactivated before deletion.".into()],
            },
            DirError::ServerActive => ApiError {
                status: 403,
                code: "E0000107",
                summary: "The entity is not in the expected state for the requested transition.".into(),
                causes: vec!["The authorization server must be deactivated before deletion.".into()],
            },
            DirError::DefaultServer => ApiError {
                status: 403,
                code: "E0000006",
                summary: "You do not have permission to perform the requested action".into(),
                causes: vec!["The default authorization server cannot be deleted.".into()],
            },
        }
    }
}

/// E0000003 for a body that is not JSON (Okta's "The request body was not well-formed.").
pub fn malformed(e: impl std::fmt::Display) -> ApiError {
    let msg = e.to_string();
    ApiError {
        status: 400,
        code: "E0000003",
        summary: "The request body was not well-formed.".into(),
        causes: vec![msg.split(" at line").next().unwrap_or(&msg).to_string()],
    }
}

/// A JSON object body; an empty body is `{}` (control POSTs carry no options).
pub fn object_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body).map_err(malformed)? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(malformed("the body must be a JSON object")),
    }
}

/// Query parameters of an API request, with Okta's validation error for a malformed query.
pub fn query(q: Option<&str>) -> Result<Params, ApiError> {
    Params::parse(q.unwrap_or("")).map_err(|e| ApiError::validation(vec![e.description]))
}

/// A boolean query parameter (`true`/`false`), with a default.
pub fn query_bool(p: &Params, name: &str, default: bool) -> Result<bool, ApiError> {
    match p.get(name) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(ApiError::validation(vec![format!("{name}: must be true or false, got {v}")])),
    }
}

/// `limit` between 1 and `max`, default `default`.
pub fn query_limit(p: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(default),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(vec![format!("limit: must be between 1 and {max}, got {l}")])),
        },
    }
}

/// A JSON answer with an optional `Link` header.
pub fn json_with_link(v: Value, link: Option<String>) -> Response {
    let mut r = axum::Json(v).into_response();
    if let Some(l) = link
        && let Ok(h) = HeaderValue::from_str(&l)
    {
        r.headers_mut().insert(header::LINK, h);
    }
    r
}

/// Okta's `Link` header for a list: `self`, and `next` with `after=<cursor>` when more follow.
pub fn paging_link(base: &str, path: &str, p: &Params, raw_query: Option<&str>, next_after: Option<&str>) -> String {
    let mut link = format!("<{base}{path}{}>; rel=\"self\"", raw_query.map(|q| format!("?{q}")).unwrap_or_default());
    if let Some(a) = next_after {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in p.iter().filter(|(k, _)| k.as_str() != "after") {
            ser.append_pair(k, v);
        }
        ser.append_pair("after", a);
        link.push_str(&format!(", <{base}{path}?{}>; rel=\"next\"", ser.finish()));
    }
    link
}

/// An `_links` entry.
pub fn href(url: String) -> Value {
    json!({"href": url})
}

/// An `_links` entry with allowed methods.
pub fn href_allow(url: String, methods: &[&str]) -> Value {
    json!({"href": url, "hints": {"allow": methods}})
}

/// `{}` with 200, what Okta's lifecycle operations answer.
pub fn empty_object() -> Response {
    axum::Json(json!({})).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn ssws(State(s): State<Shared>, req: Request, next: Next) -> Response {
    match require_ssws(&s, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The management routes, behind the SSWS guard, plus `/_mock/keys/rotate`.
pub fn routes(state: Shared) -> Router<Shared> {
    let api = Router::new()
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{id}", get(users::get).post(users::update_partial).put(users::update_full).delete(users::delete))
        .route("/api/v1/users/{id}/lifecycle/{op}", post(users::lifecycle))
        .route("/api/v1/users/{id}/sessions", axum::routing::delete(users::clear_sessions))
        .route("/api/v1/users/{id}/groups", get(users::groups))
        .route("/api/v1/users/{id}/clients/{cid}/tokens", get(users::tokens).delete(users::revoke_tokens))
        .route("/api/v1/users/{id}/clients/{cid}/tokens/{tid}", get(users::token).delete(users::revoke_token))
        .route("/api/v1/groups", get(groups::list).post(groups::create))
        .route("/api/v1/groups/{gid}", get(groups::get).put(groups::update).delete(groups::delete))
        .route("/api/v1/groups/{gid}/users", get(groups::members))
        .route("/api/v1/groups/{gid}/users/{uid}", put(groups::add_member).delete(groups::remove_member))
        .route("/api/v1/apps", get(apps::list).post(apps::create))
        .route("/api/v1/apps/{id}", get(apps::get).put(apps::update).delete(apps::delete))
        .route("/api/v1/apps/{id}/lifecycle/{op}", post(apps::lifecycle))
        .route("/api/v1/apps/{id}/users", get(apps::users).post(apps::assign_user))
        .route("/api/v1/apps/{id}/users/{uid}", get(apps::user).delete(apps::unassign_user))
        .route("/api/v1/apps/{id}/groups", get(apps::groups))
        .route("/api/v1/apps/{id}/groups/{gid}", get(apps::group).put(apps::assign_group).delete(apps::unassign_group))
        .route("/api/v1/authorizationServers", get(servers::list).post(servers::create))
        .route("/api/v1/authorizationServers/{sid}", get(servers::get).delete(servers::delete))
        .route("/api/v1/authorizationServers/{sid}/lifecycle/{op}", post(servers::lifecycle))
        .route("/api/v1/authorizationServers/{sid}/policies", get(servers::policies))
        .route("/api/v1/authorizationServers/{sid}/policies/{pid}", get(servers::policy))
        .route("/api/v1/authorizationServers/{sid}/policies/{pid}/rules", get(servers::rules))
        .route("/api/v1/authorizationServers/{sid}/policies/{pid}/rules/{rid}", get(servers::rule).put(servers::update_rule))
        .route("/api/v1/authorizationServers/{sid}/credentials/keys", get(servers::keys))
        .route("/api/v1/authorizationServers/{sid}/credentials/keys/{kid}", get(servers::key))
        .route("/api/v1/authorizationServers/{sid}/credentials/lifecycle/keyRotate", post(servers::key_rotate))
        .route_layer(middleware::from_fn_with_state(state, ssws));
    api.route("/_mock/keys/rotate", post(servers::mock_rotate_org))
}
