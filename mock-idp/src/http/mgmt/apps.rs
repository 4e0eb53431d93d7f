//! `/api/v1/apps`: OIDC apps (`name: oidc_client`, `signOnMode: OPENID_CONNECT`): create, get, list,
//! update, lifecycle, user and group assignments.
//!
//! Client secrets: the create response shows a secret in clear once (Okta's generated secret is otherwise
//! unknowable); GET, list and PUT answers show [`SECRET_MASK`] instead. A PUT whose client_secret is
//! missing, `null` or the mask keeps the current secret.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{empty_object, href, href_allow, no_content, object_body, query, query_bool, query_limit};
use crate::clock::rfc3339_secs;
use crate::core::directory::AppSpec;
use crate::core::ids::Secret;
use crate::core::model::{App, AppStatus, ApplicationType, AuthMethod, RefreshTokenSettings, RotationType, User};
use crate::core::tenant::Tenant;
use crate::http::Shared;
use crate::http::errors::ApiError;

/// What GET shows in place of a client secret.
pub const SECRET_MASK: &str = "********";

fn invalid(field: &str, cause: String) -> ApiError {
    ApiError { status: 400, code: "E0000001", summary: format!("Api validation failed: {field}"), causes: vec![cause] }
}

fn at<'a>(m: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let mut cur = m.get(path[0])?;
    for k in &path[1..] {
        cur = cur.as_object()?.get(*k)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn typed<T: DeserializeOwned>(m: &Map<String, Value>, path: &[&str], what: &str) -> Result<Option<T>, ApiError> {
    let Some(v) = at(m, path) else { return Ok(None) };
    let field = path.last().copied().unwrap_or("");
    serde_json::from_value(v.clone()).map(Some).map_err(|_| invalid(field, format!("{}: must be {what}, got {v}", path.join("."))))
}

/// Reads Okta's app JSON into an [`AppSpec`]; on update, what the body leaves out keeps its current value.
fn spec_from(b: &Map<String, Value>, current: Option<&App>) -> Result<AppSpec, ApiError> {
    match b.get("name").and_then(Value::as_str) {
        Some("oidc_client") => {}
        Some(other) => return Err(invalid("name", format!("name: the mock supports only OIDC apps (oidc_client), got {other}"))),
        None if current.is_none() => return Err(invalid("name", "name: The field cannot be left blank".into())),
        None => {}
    }
    if let Some(m) = b.get("signOnMode").and_then(Value::as_str)
        && m != "OPENID_CONNECT"
    {
        return Err(invalid("signOnMode", format!("signOnMode: the mock supports only OPENID_CONNECT, got {m}")));
    }
    let oc = ["credentials", "oauthClient"];
    let so = ["settings", "oauthClient"];
    let p = |base: &[&'static str; 2], k: &'static str| [base[0], base[1], k];
    let label: Option<String> = typed(b, &["label"], "a string")?;
    let label = label.or_else(|| current.map(|a| a.label.clone())).unwrap_or_default();
    let client_id: Option<String> = typed(b, &p(&oc, "client_id"), "a string")?;
    let secret: Option<String> = typed(b, &p(&oc, "client_secret"), "a string")?;
    let client_secret = secret.filter(|s| s != SECRET_MASK).map(Secret::new);
    let method: Option<AuthMethod> =
        typed(b, &p(&oc, "token_endpoint_auth_method"), "one of client_secret_basic, client_secret_post, none")?;
    let pkce_required: Option<bool> = typed(b, &p(&oc, "pkce_required"), "a boolean")?;
    let application_type: Option<ApplicationType> = typed(b, &p(&so, "application_type"), "one of web, browser, native, service")?;
    let list = |k: &'static str, default: Vec<String>| -> Result<Vec<String>, ApiError> {
        Ok(typed::<Vec<String>>(b, &p(&so, k), "an array of strings")?.unwrap_or(default))
    };
    let redirect_uris = list("redirect_uris", current.map(|a| a.redirect_uris.clone()).unwrap_or_default())?;
    let post_logout_redirect_uris =
        list("post_logout_redirect_uris", current.map(|a| a.post_logout_redirect_uris.clone()).unwrap_or_default())?;
    let grant_types = list("grant_types", current.map(|a| a.grant_types.clone()).unwrap_or_else(|| vec!["authorization_code".into()]))?;
    let response_types = list("response_types", current.map(|a| a.response_types.clone()).unwrap_or_else(|| vec!["code".into()]))?;
    let refresh_token = match at(b, &p(&so, "refresh_token")) {
        None => current.and_then(|a| a.refresh_token),
        Some(v) => {
            let rotation: RotationType = typed(b, &["settings", "oauthClient", "refresh_token", "rotation_type"], "ROTATE or STATIC")?
                .ok_or_else(|| {
                    invalid("rotation_type", "settings.oauthClient.refresh_token.rotation_type: The field cannot be left blank".into())
                })?;
            let leeway = match v.get("leeway") {
                None | Some(Value::Null) => 30,
                Some(l) => match l.as_i64() {
                    Some(n) if (0..=60).contains(&n) => n as u8,
                    _ => {
                        return Err(invalid(
                            "leeway",
                            format!("settings.oauthClient.refresh_token.leeway: must be between 0 and 60 seconds, got {l}"),
                        ));
                    }
                },
            };
            Some(RefreshTokenSettings { rotation_type: rotation, leeway })
        }
    };
    Ok(AppSpec {
        label,
        client_id,
        client_secret,
        token_endpoint_auth_method: method.or(current.map(|a| a.token_endpoint_auth_method)).unwrap_or(AuthMethod::ClientSecretBasic),
        pkce_required: pkce_required.or(current.map(|a| a.pkce_required)),
        application_type: application_type.or(current.map(|a| a.application_type)).unwrap_or(ApplicationType::Web),
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        response_types,
        refresh_token,
    })
}

/// Okta's OIDC app object. `secret_in_clear` is given only in the create response.
pub fn app_json(base: &str, a: &App, secret_in_clear: Option<&str>) -> Value {
    let me = format!("{base}/api/v1/apps/{}", a.id);
    let mut oauth_client = json!({
        "autoKeyRotation": true,
        "client_id": a.client_id,
        "token_endpoint_auth_method": a.token_endpoint_auth_method.as_str(),
        "pkce_required": a.pkce_required,
    });
    if a.client_secret.is_some() {
        oauth_client["client_secret"] = json!(secret_in_clear.unwrap_or(SECRET_MASK));
    }
    let mut settings = json!({
        "client_uri": null,
        "logo_uri": null,
        "redirect_uris": a.redirect_uris,
        "post_logout_redirect_uris": a.post_logout_redirect_uris,
        "response_types": a.response_types,
        "grant_types": a.grant_types,
        "application_type": a.application_type,
        "consent_method": "TRUSTED",
        "issuer_mode": "ORG_URL",
    });
    if let Some(rt) = a.refresh_token {
        settings["refresh_token"] = json!(rt);
    }
    let (status, toggle) = match a.status {
        AppStatus::Active => ("ACTIVE", ("deactivate", format!("{me}/lifecycle/deactivate"))),
        AppStatus::Inactive => ("INACTIVE", ("activate", format!("{me}/lifecycle/activate"))),
    };
    let mut links = Map::new();
    links.insert("appLinks".into(), json!([{"name": "oidc_client_link", "href": format!("{base}/home/oidc_client/{}/aln5z7uhkbM6y7bMy0g7", a.id), "type": "text/html"}]));
    links.insert("groups".into(), href(format!("{me}/groups")));
    links.insert("users".into(), href(format!("{me}/users")));
    // Okta offers DELETE on inactive apps only.
    let methods: &[&str] = if a.status == AppStatus::Inactive { &["GET", "PUT", "DELETE"] } else { &["GET", "PUT"] };
    links.insert("self".into(), href_allow(me.clone(), methods));
    links.insert(toggle.0.into(), href_allow(toggle.1, &["POST"]));
    json!({
        "id": a.id,
        "name": "oidc_client",
        "label": a.label,
        "status": status,
        "lastUpdated": rfc3339_secs(a.last_updated),
        "created": rfc3339_secs(a.created),
        "accessibility": {"selfService": false, "errorRedirectUrl": null, "loginRedirectUrl": null},
        "visibility": {"autoSubmitToolbar": false, "hide": {"iOS": true, "web": true}, "appLinks": {"oidc_client_link": true}},
        "features": [],
        "signOnMode": "OPENID_CONNECT",
        "credentials": {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}, "oauthClient": oauth_client},
        "settings": {"app": {}, "notifications": {"vpn": {"network": {"connection": "DISABLED"}, "message": null, "helpUrl": null}}, "oauthClient": settings},
        "_links": links,
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(&format!("Resource not found: {id} (AppInstance)"))
}

fn one(s: &Shared, id: &str) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let a = t.apps.get(id).ok_or_else(|| not_found(id))?;
    Ok(axum::Json(app_json(&t.base_url, a, None)).into_response())
}

/// `POST /api/v1/apps?activate=true|false` (default true).
pub async fn create(State(s): State<Shared>, RawQuery(q): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let activate = query_bool(&p, "activate", true)?;
    let b = object_body(&body)?;
    let spec = spec_from(&b, None)?;
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let (id, secret) = t.create_app(spec, activate, now)?;
    Ok(axum::Json(app_json(&t.base_url, &t.apps[&id], secret.as_deref())).into_response())
}

pub async fn get(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    one(&s, &id)
}

/// `GET /api/v1/apps[?q=…&limit=…&filter=status eq "ACTIVE"]`: `q` matches a label or client_id prefix.
pub async fn list(State(s): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = query(q.as_deref())?;
    let limit = query_limit(&p, 10_000, 10_000)?;
    let status = match p.get("filter") {
        None => None,
        Some(f) => match f.trim() {
            r#"status eq "ACTIVE""# => Some(AppStatus::Active),
            r#"status eq "INACTIVE""# => Some(AppStatus::Inactive),
            _ => return Err(ApiError { status: 400, code: "E0000031", summary: "Invalid search criteria.".into(), causes: vec![] }),
        },
    };
    let prefix = p.get("q").map(str::to_lowercase);
    let t = s.tenant.lock();
    let v: Vec<Value> = t
        .apps
        .values()
        .filter(|a| status.is_none_or(|st| a.status == st))
        .filter(|a| {
            prefix
                .as_ref()
                .is_none_or(|q| a.label.to_lowercase().starts_with(q.as_str()) || a.client_id.to_lowercase().starts_with(q.as_str()))
        })
        .take(limit)
        .map(|a| app_json(&t.base_url, a, None))
        .collect();
    Ok(axum::Json(v).into_response())
}

/// `PUT /api/v1/apps/{id}`.
pub async fn update(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let b = object_body(&body)?;
    let current = s.tenant.lock().apps.get(&id).cloned().ok_or_else(|| not_found(&id))?;
    let spec = spec_from(&b, Some(&current))?;
    let now = s.clock.now_ms();
    s.tenant.lock().update_app(&id, spec, now)?;
    one(&s, &id)
}

/// `POST /api/v1/apps/{id}/lifecycle/{activate|deactivate}`; `{}`. Deactivation revokes the app's tokens.
pub async fn lifecycle(State(s): State<Shared>, Path((id, op)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    match op.as_str() {
        "activate" => t.set_app_active(&id, true, now)?,
        "deactivate" => t.set_app_active(&id, false, now)?,
        other => {
            t.apps.get(&id).ok_or_else(|| not_found(&id))?;
            return Err(invalid("lifecycle", format!("lifecycle: the operation {other} is not supported (activate, deactivate are)")));
        }
    };
    Ok(empty_object())
}

/// `DELETE /api/v1/apps/{id}`; 204. Only an INACTIVE app: an ACTIVE one is Okta's 403 E0000056.
pub async fn delete(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().delete_app(&id, now)?;
    Ok(no_content())
}

/// Okta's AppUser object; `scope` is USER for a direct assignment, GROUP for one through a group.
fn app_user_json(t: &Tenant, a: &App, u: &User) -> Value {
    let base = &t.base_url;
    let scope = if a.assigned_users.contains(&u.id) { "USER" } else { "GROUP" };
    json!({
        "id": u.id,
        "externalId": null,
        "created": rfc3339_secs(u.created),
        "lastUpdated": rfc3339_secs(u.last_updated),
        "scope": scope,
        "status": "ACTIVE",
        "statusChanged": rfc3339_secs(u.created),
        "passwordChanged": null,
        "syncState": "DISABLED",
        "credentials": {"userName": u.profile.login},
        "profile": {},
        "_links": {
            "app": href(format!("{base}/api/v1/apps/{}", a.id)),
            "user": href(format!("{base}/api/v1/users/{}", u.id)),
        }
    })
}

/// `GET /api/v1/apps/{id}/users`: everyone assigned, directly or through a group.
pub async fn users(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let a = t.apps.get(&id).ok_or_else(|| not_found(&id))?;
    let v: Vec<Value> = t.users.values().filter(|u| t.is_assigned(a, &u.id)).map(|u| app_user_json(&t, a, u)).collect();
    Ok(axum::Json(v).into_response())
}

fn app_user_not_found(uid: &str) -> ApiError {
    ApiError::not_found(&format!("Resource not found: {uid} (AppUser)"))
}

/// `GET /api/v1/apps/{id}/users/{uid}`.
pub async fn user(State(s): State<Shared>, Path((id, uid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let a = t.apps.get(&id).ok_or_else(|| not_found(&id))?;
    let u = t.users.get(&uid).filter(|u| t.is_assigned(a, &u.id)).ok_or_else(|| app_user_not_found(&uid))?;
    Ok(axum::Json(app_user_json(&t, a, u)).into_response())
}

/// `POST /api/v1/apps/{id}/users` with `{"id": "00u…", "scope": "USER", …}`.
pub async fn assign_user(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let b = object_body(&body)?;
    let uid = b
        .get("id")
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .ok_or_else(|| invalid("id", "id: The field cannot be left blank".into()))?;
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let uid = t.assign_user(&id, uid, now)?;
    let a = &t.apps[&id];
    Ok(axum::Json(app_user_json(&t, a, &t.users[&uid])).into_response())
}

/// `DELETE /api/v1/apps/{id}/users/{uid}`; 204.
pub async fn unassign_user(State(s): State<Shared>, Path((id, uid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().unassign_user(&id, &uid, now)?;
    Ok(no_content())
}

fn group_assignment_json(base: &str, a: &App, gid: &str, last_updated: i64) -> Value {
    json!({
        "id": gid,
        "lastUpdated": rfc3339_secs(last_updated),
        "priority": 0,
        "profile": {},
        "_links": {
            "app": href(format!("{base}/api/v1/apps/{}", a.id)),
            "self": href(format!("{base}/api/v1/apps/{}/groups/{gid}", a.id)),
            "group": href(format!("{base}/api/v1/groups/{gid}")),
        }
    })
}

/// `GET /api/v1/apps/{id}/groups`.
pub async fn groups(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let a = t.apps.get(&id).ok_or_else(|| not_found(&id))?;
    let v: Vec<Value> = a
        .assigned_groups
        .iter()
        .filter_map(|g| t.groups.get(g))
        .map(|g| group_assignment_json(&t.base_url, a, &g.id, g.last_updated))
        .collect();
    Ok(axum::Json(v).into_response())
}

/// `GET /api/v1/apps/{id}/groups/{gid}`.
pub async fn group(State(s): State<Shared>, Path((id, gid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let a = t.apps.get(&id).ok_or_else(|| not_found(&id))?;
    let g = t
        .groups
        .get(&gid)
        .filter(|_| a.assigned_groups.contains(&gid))
        .ok_or_else(|| ApiError::not_found(&format!("Resource not found: {gid} (ApplicationGroupAssignment)")))?;
    Ok(axum::Json(group_assignment_json(&t.base_url, a, &g.id, g.last_updated)).into_response())
}

/// `PUT /api/v1/apps/{id}/groups/{gid}` (body optional: priority and profile are accepted and ignored).
pub async fn assign_group(State(s): State<Shared>, Path((id, gid)): Path<(String, String)>, body: Bytes) -> Result<Response, ApiError> {
    object_body(&body)?;
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    t.assign_group(&id, &gid, now)?;
    let last = t.groups.get(&gid).map(|g| g.last_updated).unwrap_or(now);
    Ok(axum::Json(group_assignment_json(&t.base_url, &t.apps[&id], &gid, last)).into_response())
}

/// `DELETE /api/v1/apps/{id}/groups/{gid}`; 204.
pub async fn unassign_group(State(s): State<Shared>, Path((id, gid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().unassign_group(&id, &gid, now)?;
    Ok(no_content())
}
