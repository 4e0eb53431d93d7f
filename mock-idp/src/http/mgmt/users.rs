//! `/api/v1/users`: create, get (by id or login), list (`q`, `filter`, `search`, `limit`, `after`),
//! update (POST partial, PUT full), delete (deactivates first), lifecycle, sessions, groups, and the
//! user's refresh tokens per client.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{empty_object, href, href_allow, json_with_link, no_content, object_body, paging_link, query, query_bool, query_limit};
use crate::clock::rfc3339_secs;
use crate::core::directory::{NewUser, UserFilter, merge_profile, parse_user_filter};
use crate::core::ids::{self, Secret};
use crate::core::model::{ServerId, User, UserProfile, UserStatus};
use crate::core::refresh::Family;
use crate::core::tenant::Tenant;
use crate::http::Shared;
use crate::http::errors::ApiError;

fn status_str(s: UserStatus) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// Okta's User object. `credentials.password` is `{}` when the user has a password (never the value).
pub fn user_json(base: &str, u: &User) -> Value {
    let me = format!("{base}/api/v1/users/{}", u.id);
    let lc = |op: &str| href_allow(format!("{me}/lifecycle/{op}"), &["POST"]);
    let mut links = Map::new();
    links.insert("self".into(), href(me.clone()));
    match u.status {
        UserStatus::Active => {
            links.insert("suspend".into(), lc("suspend"));
            links.insert("deactivate".into(), lc("deactivate"));
        }
        UserStatus::Suspended => {
            links.insert("unsuspend".into(), lc("unsuspend"));
            links.insert("deactivate".into(), lc("deactivate"));
        }
        UserStatus::Staged | UserStatus::Deprovisioned => {
            links.insert("activate".into(), lc("activate"));
        }
        UserStatus::Provisioned => {
            links.insert("reactivate".into(), lc("reactivate"));
            links.insert("deactivate".into(), lc("deactivate"));
        }
        _ => {
            links.insert("deactivate".into(), lc("deactivate"));
        }
    }
    let mut creds = Map::new();
    if u.password.is_some() {
        creds.insert("password".into(), json!({}));
    }
    creds.insert("provider".into(), json!({"type": "OKTA", "name": "OKTA"}));
    json!({
        "id": u.id,
        "status": status_str(u.status),
        "created": rfc3339_secs(u.created),
        "activated": u.activated.map(rfc3339_secs),
        "statusChanged": u.status_changed.map(rfc3339_secs),
        "lastLogin": u.last_login.map(rfc3339_secs),
        "lastUpdated": rfc3339_secs(u.last_updated),
        "passwordChanged": u.password_changed.map(rfc3339_secs),
        "type": {"id": "oty1mockdefaultusr01"},
        "profile": u.profile,
        "credentials": creds,
        "_links": links,
    })
}

fn one_user(s: &Shared, uid: &str) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let u = t.users.get(uid).ok_or_else(|| ApiError::not_found(&format!("Resource not found: {uid} (User)")))?;
    Ok(axum::Json(user_json(&t.base_url, u)).into_response())
}

/// The password of a `credentials` object (`{"password": {"value": "…"}}`).
fn password_of(body: &Map<String, Value>) -> Result<Option<Secret>, ApiError> {
    let Some(c) = body.get("credentials").filter(|c| !c.is_null()) else { return Ok(None) };
    let Some(c) = c.as_object() else { return Err(ApiError::validation(vec!["credentials: must be an object".into()])) };
    let Some(p) = c.get("password").filter(|p| !p.is_null()) else { return Ok(None) };
    if p.get("hash").is_some() || p.get("hook").is_some() {
        return Err(ApiError::validation(vec![
            "credentials.password: imported hashes and password hooks are not supported by the mock".into(),
        ]));
    }
    match p.get("value") {
        Some(Value::String(v)) if !v.is_empty() => Ok(Some(Secret::new(v.clone()))),
        _ => Err(ApiError {
            status: 400,
            code: "E0000001",
            summary: "Api validation failed: password".into(),
            causes: vec!["password: The field cannot be left blank".into()],
        }),
    }
}

fn profile_of(v: &Value) -> Result<UserProfile, ApiError> {
    let Some(m) = v.as_object() else { return Err(ApiError::validation(vec!["profile: must be an object".into()])) };
    let login = m.get("login").and_then(Value::as_str).unwrap_or("");
    if login.trim().is_empty() {
        return Err(ApiError {
            status: 400,
            code: "E0000001",
            summary: "Api validation failed: login".into(),
            causes: vec!["login: The field cannot be left blank".into()],
        });
    }
    serde_json::from_value(v.clone()).map_err(|e| ApiError::validation(vec![format!("profile: {e}")]))
}

/// `POST /api/v1/users?activate=true|false` (default true).
pub async fn create(State(s): State<Shared>, RawQuery(q): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let activate = query_bool(&p, "activate", true)?;
    let b = object_body(&body)?;
    let profile = profile_of(b.get("profile").unwrap_or(&Value::Null))?;
    let password = password_of(&b)?;
    let group_ids = match b.get("groupIds") {
        None | Some(Value::Null) => vec![],
        Some(v) => serde_json::from_value::<Vec<String>>(v.clone())
            .map_err(|_| ApiError::validation(vec!["groupIds: must be an array of group ids".into()]))?,
    };
    let now = s.clock.now_ms();
    let id = s.tenant.lock().create_user(NewUser { profile, password, group_ids }, activate, now)?;
    one_user(&s, &id)
}

/// `GET /api/v1/users/{id|login}`.
pub async fn get(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let uid = s.tenant.lock().find_user_id(&id).ok_or_else(|| ApiError::not_found(&format!("Resource not found: {id} (User)")))?;
    one_user(&s, &uid)
}

fn filter_param(p: &crate::core::params::Params) -> Result<UserFilter, ApiError> {
    let bad = |_| ApiError { status: 400, code: "E0000031", summary: "Invalid search criteria.".into(), causes: vec![] };
    match (p.get("filter"), p.get("search")) {
        (Some(_), Some(_)) => Err(ApiError {
            status: 400,
            code: "E0000033",
            summary: "Bad request. Can't specify a search query and filter in the same request.".into(),
            causes: vec![],
        }),
        (Some(f), None) => parse_user_filter(f, false).map_err(bad),
        (None, Some(f)) => parse_user_filter(f, true).map_err(bad),
        (None, None) => Ok(vec![]),
    }
}

/// `GET /api/v1/users`: without `filter`/`search`, DEPROVISIONED users are left out, as Okta does.
pub async fn list(State(s): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let filter = filter_param(&p)?;
    if p.get("q").is_some() && !filter.is_empty() {
        return Err(ApiError {
            status: 400,
            code: "E0000033",
            summary: "Bad request. Can't specify a search query and filter in the same request.".into(),
            causes: vec![],
        });
    }
    let limit = query_limit(&p, 200, 200)?;
    let t = s.tenant.lock();
    let hide_deprovisioned = filter.is_empty();
    let mut users: Vec<&User> = Vec::new();
    let mut after = p.get("after").map(str::to_string);
    let mut more;
    // Paging skips hidden users without counting them, so a page is never short while more follow.
    loop {
        let (page, m) = t.search_users(p.get("q"), &filter, after.as_deref(), limit - users.len());
        more = m;
        let last = page.last().map(|u| u.id.clone());
        users.extend(page.into_iter().filter(|u| !(hide_deprovisioned && u.status == UserStatus::Deprovisioned)));
        if users.len() >= limit || !more || last.is_none() {
            break;
        }
        after = last;
    }
    let next = if more { users.last().map(|u| u.id.clone()) } else { None };
    let body: Vec<Value> = users.iter().map(|u| user_json(&t.base_url, u)).collect();
    let link = paging_link(&t.base_url, "/api/v1/users", &p, q.as_deref(), next.as_deref());
    Ok(json_with_link(Value::Array(body), Some(link)))
}

async fn update(s: Shared, id: String, body: Bytes, partial: bool) -> Result<Response, ApiError> {
    let b = object_body(&body)?;
    let password = password_of(&b)?;
    let current = {
        let t = s.tenant.lock();
        let uid = t.find_user_id(&id).ok_or_else(|| ApiError::not_found(&format!("Resource not found: {id} (User)")))?;
        t.users[&uid].profile.clone()
    };
    let profile = match b.get("profile") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if partial => Some(merge_profile(&current, m).map_err(|e| ApiError::validation(vec![e]))?),
        Some(v) => {
            let mut p = profile_of(v)?;
            // The mock-only emailVerified flag is kept unless the new profile sets it.
            if v.get("emailVerified").is_none() {
                p.email_verified = current.email_verified;
            }
            Some(p)
        }
    };
    let now = s.clock.now_ms();
    let uid = s.tenant.lock().update_user(&id, profile, password, now)?;
    one_user(&s, &uid)
}

/// `POST /api/v1/users/{id}`: a partial update (profile attributes given replace, `null` removes).
pub async fn update_partial(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    update(s, id, body, true).await
}

/// `PUT /api/v1/users/{id}`: the profile is replaced as a whole (login required).
pub async fn update_full(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    update(s, id, body, false).await
}

/// `DELETE /api/v1/users/{id}`: deactivates a user that is not DEPROVISIONED, deletes one that is; 204.
pub async fn delete(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().delete_user(&id, now)?;
    Ok(no_content())
}

fn activation_link(base: &str) -> Response {
    let token = ids::okta_id("XE6");
    axum::Json(json!({"activationUrl": format!("{base}/welcome/{token}"), "activationToken": token})).into_response()
}

/// `POST /api/v1/users/{id}/lifecycle/{activate|reactivate|deactivate|suspend|unsuspend}`; the body is
/// ignored (empty, `{}` or none).
pub async fn lifecycle(
    State(s): State<Shared>,
    Path((id, op)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    match op.as_str() {
        "activate" | "reactivate" => {
            let send_email = query_bool(&p, "sendEmail", op == "activate")?;
            if op == "activate" {
                t.activate_user(&id, now)?;
            } else {
                t.reactivate_user(&id, now)?;
            }
            // The mock sends no email; without one Okta answers with an activation link. The link is not
            // usable: the mock has no welcome flow (users with a password simply sign in).
            if send_email { Ok(empty_object()) } else { Ok(activation_link(&t.base_url)) }
        }
        "deactivate" => {
            t.deactivate_user(&id, now)?;
            Ok(empty_object())
        }
        "suspend" => {
            t.suspend_user(&id, now)?;
            Ok(empty_object())
        }
        "unsuspend" => {
            t.unsuspend_user(&id, now)?;
            Ok(empty_object())
        }
        other => {
            t.find_user_id(&id).ok_or_else(|| ApiError::not_found(&format!("Resource not found: {id} (User)")))?;
            Err(ApiError {
                status: 400,
                code: "E0000001",
                summary: "Api validation failed: lifecycle".into(),
                causes: vec![format!(
                    "lifecycle: the operation {other} is not supported by the mock (activate, reactivate, deactivate, suspend, unsuspend are)"
                )],
            })
        }
    }
}

/// `DELETE /api/v1/users/{id}/sessions[?oauthTokens=true]`; 204.
pub async fn clear_sessions(State(s): State<Shared>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let oauth = query_bool(&p, "oauthTokens", false)?;
    let now = s.clock.now_ms();
    s.tenant.lock().clear_user_sessions(&id, oauth, now)?;
    Ok(no_content())
}

/// `GET /api/v1/users/{id}/groups`.
pub async fn groups(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let uid = t.find_user_id(&id).ok_or_else(|| ApiError::not_found(&format!("Resource not found: {id} (User)")))?;
    let v: Vec<Value> = t.groups.values().filter(|g| g.members.contains(&uid)).map(|g| super::groups::group_json(&t.base_url, g)).collect();
    Ok(axum::Json(v).into_response())
}

/// Okta's OAuth2RefreshToken object for a live family: its id is the family's current token id.
fn token_json(t: &Tenant, f: &Family) -> Value {
    let m = f.meta();
    let base = &t.base_url;
    let app = t.app_by_client_id(&m.client_id);
    let label = app.map(|a| a.label.clone()).unwrap_or_default();
    let app_id = app.map(|a| a.id.clone()).unwrap_or_default();
    // The family's own server, whether or not it is active now.
    let server = if m.server_id == "org" { ServerId::Org } else { ServerId::Custom(m.server_id.clone()) };
    let issuer = t.issuer(&server);
    let user_name = t.users.get(&m.user_id).map(|u| u.profile.full_name()).unwrap_or_default();
    let me = format!("{base}/api/v1/users/{}/clients/{}/tokens/{}", m.user_id, m.client_id, f.current_token_id());
    let mut links = json!({
        "app": {"href": format!("{base}/api/v1/apps/{app_id}"), "title": label},
        "self": {"href": me},
        "revoke": href_allow(me.clone(), &["DELETE"]),
        "client": {"href": format!("{base}/oauth2/v1/clients/{}", m.client_id), "title": label},
        "user": {"href": format!("{base}/api/v1/users/{}", m.user_id), "title": user_name},
    });
    if m.server_id != "org"
        && let Some(s) = t.servers.get(&m.server_id)
    {
        links["authorizationServer"] = json!({"href": format!("{base}/api/v1/authorizationServers/{}", s.id), "title": s.name});
    }
    json!({
        "id": f.current_token_id(),
        "status": "ACTIVE",
        "created": rfc3339_secs(f.current_issued_at()),
        "lastUpdated": rfc3339_secs(f.last_used()),
        "expiresAt": f.expiry().map(rfc3339_secs),
        "issuer": issuer,
        "clientId": m.client_id,
        "userId": m.user_id,
        "scopes": m.scopes,
        "_links": links,
    })
}

/// `GET /api/v1/users/{uid}/clients/{clientId}/tokens`: one entry per live refresh family.
pub async fn tokens(State(s): State<Shared>, Path((id, cid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    let t = s.tenant.lock();
    let (_, fams) = t.user_client_families(&id, &cid, now)?;
    Ok(axum::Json(fams.iter().map(|f| token_json(&t, f)).collect::<Vec<_>>()).into_response())
}

/// `GET /api/v1/users/{uid}/clients/{clientId}/tokens/{tokenId}`.
pub async fn token(State(s): State<Shared>, Path((id, cid, tid)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    let t = s.tenant.lock();
    let (_, fams) = t.user_client_families(&id, &cid, now)?;
    let f = fams
        .iter()
        .find(|f| f.current_token_id() == tid)
        .ok_or_else(|| ApiError::not_found(&format!("Resource not found: {tid} (RefreshToken)")))?;
    Ok(axum::Json(token_json(&t, f)).into_response())
}

/// `DELETE /api/v1/users/{uid}/clients/{clientId}/tokens`: revokes them all; 204.
pub async fn revoke_tokens(State(s): State<Shared>, Path((id, cid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().revoke_user_client_families(&id, &cid, None, now)?;
    Ok(no_content())
}

/// `DELETE /api/v1/users/{uid}/clients/{clientId}/tokens/{tokenId}`; 204.
pub async fn revoke_token(State(s): State<Shared>, Path((id, cid, tid)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().revoke_user_client_families(&id, &cid, Some(&tid), now)?;
    Ok(no_content())
}
