//! `/api/v1/groups`: create, list (`q` = name prefix, `limit`), get, update, delete, members.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{href, no_content, object_body, query, query_limit};
use crate::clock::rfc3339_secs;
use crate::core::model::Group;
use crate::http::Shared;
use crate::http::errors::ApiError;

/// Okta's Group object (type OKTA_GROUP).
pub fn group_json(base: &str, g: &Group) -> Value {
    let me = format!("{base}/api/v1/groups/{}", g.id);
    json!({
        "id": g.id,
        "created": rfc3339_secs(g.created),
        "lastUpdated": rfc3339_secs(g.last_updated),
        "lastMembershipUpdated": rfc3339_secs(g.last_updated),
        "objectClass": ["okta:user_group"],
        "type": "OKTA_GROUP",
        "profile": {"name": g.name, "description": g.description},
        "_links": {
            "logo": [
                {"name": "medium", "href": format!("{base}/img/logos/groups/okta-medium.png"), "type": "image/png"},
                {"name": "large", "href": format!("{base}/img/logos/groups/okta-large.png"), "type": "image/png"}
            ],
            "users": href(format!("{me}/users")),
            "apps": href(format!("{me}/apps")),
        }
    })
}

fn not_found(gid: &str) -> ApiError {
    ApiError::not_found(&format!("Resource not found: {gid} (UserGroup)"))
}

fn one(s: &Shared, gid: &str) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let g = t.groups.get(gid).ok_or_else(|| not_found(gid))?;
    Ok(axum::Json(group_json(&t.base_url, g)).into_response())
}

/// `{"profile": {"name": …, "description": …}}`.
fn profile(body: &Bytes) -> Result<(String, Option<String>), ApiError> {
    let b = object_body(body)?;
    let p = b.get("profile").and_then(Value::as_object);
    let name = p.and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
    if name.trim().is_empty() {
        return Err(ApiError {
            status: 400,
            code: "E0000001",
            summary: "Api validation failed: name".into(),
            causes: vec!["name: The field cannot be left blank".into()],
        });
    }
    let description = p.and_then(|p| p.get("description")).and_then(Value::as_str).map(str::to_string);
    Ok((name, description))
}

/// `POST /api/v1/groups`.
pub async fn create(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let (name, description) = profile(&body)?;
    let now = s.clock.now_ms();
    let id = s.tenant.lock().create_group(&name, description, now)?;
    one(&s, &id)
}

/// `GET /api/v1/groups[?q=prefix&limit=n]`, in id order.
pub async fn list(State(s): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let limit = query_limit(&p, 10_000, 10_000)?;
    let prefix = p.get("q").map(str::to_lowercase);
    let t = s.tenant.lock();
    let v: Vec<Value> = t
        .groups
        .values()
        .filter(|g| prefix.as_ref().is_none_or(|q| g.name.to_lowercase().starts_with(q.as_str())))
        .take(limit)
        .map(|g| group_json(&t.base_url, g))
        .collect();
    Ok(axum::Json(v).into_response())
}

pub async fn get(State(s): State<Shared>, Path(gid): Path<String>) -> Result<Response, ApiError> {
    one(&s, &gid)
}

/// `PUT /api/v1/groups/{id}`: a new profile.
pub async fn update(State(s): State<Shared>, Path(gid): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    if !s.tenant.lock().groups.contains_key(&gid) {
        return Err(not_found(&gid));
    }
    let (name, description) = profile(&body)?;
    let now = s.clock.now_ms();
    s.tenant.lock().update_group(&gid, &name, description, now)?;
    one(&s, &gid)
}

/// `DELETE /api/v1/groups/{id}`; 204.
pub async fn delete(State(s): State<Shared>, Path(gid): Path<String>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().delete_group(&gid, now)?;
    Ok(no_content())
}

/// `GET /api/v1/groups/{id}/users`: the members as User objects.
pub async fn members(State(s): State<Shared>, Path(gid): Path<String>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let g = t.groups.get(&gid).ok_or_else(|| not_found(&gid))?;
    let v: Vec<Value> = g.members.iter().filter_map(|u| t.users.get(u)).map(|u| super::users::user_json(&t.base_url, u)).collect();
    Ok(axum::Json(v).into_response())
}

/// `PUT /api/v1/groups/{gid}/users/{uid}`; 204.
pub async fn add_member(State(s): State<Shared>, Path((gid, uid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().add_group_member(&gid, &uid, now)?;
    Ok(no_content())
}

/// `DELETE /api/v1/groups/{gid}/users/{uid}`; 204.
pub async fn remove_member(State(s): State<Shared>, Path((gid, uid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().remove_group_member(&gid, &uid, now)?;
    Ok(no_content())
}
