//! `/api/v1/authorizationServers`: create, list, get, lifecycle (activate, deactivate), delete, policies and
//! rules (token lifetimes read and update), signing keys with their status, `credentials/lifecycle/keyRotate`;
//! and the mock-only `POST /_mock/keys/rotate` for the org server, which Okta gives no API for.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{href_allow, no_content, object_body};
use crate::clock::rfc3339_secs;
use crate::core::directory::{NewServer, PolicyView, RuleView};
use crate::core::keyset::{KeyEntry, KeyStatus};
use crate::core::model::{AuthServer, ServerId, ServerStatus, TokenLifetimes};
use crate::core::tenant::Tenant;
use crate::http::Shared;
use crate::http::errors::ApiError;
use crate::http::mock::optional_json;

const ROTATION_PERIOD_MS: i64 = 90 * 86_400_000;

fn server_not_found(id: &str) -> ApiError {
    ApiError::server_not_found(id)
}

/// Okta's AuthorizationServer object.
fn server_json(t: &Tenant, s: &AuthServer) -> Value {
    let base = &t.base_url;
    let me = format!("{base}/api/v1/authorizationServers/{}", s.id);
    let ks = &t.keys[&ServerId::Custom(s.id.clone())];
    let active = ks.entries().iter().find(|e| e.status == KeyStatus::Active);
    let last_rotated = active.map(|e| e.last_rotated.unwrap_or(e.created)).unwrap_or(s.created);
    let (status, toggle) = match s.status {
        ServerStatus::Active => ("ACTIVE", "deactivate"),
        ServerStatus::Inactive => ("INACTIVE", "activate"),
    };
    // Okta offers DELETE on the servers it would delete: inactive ones, and never `default` here.
    let self_methods: &[&str] = if s.status == ServerStatus::Inactive && s.id != "default" { &["GET", "DELETE"] } else { &["GET"] };
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "audiences": s.audiences,
        "issuer": t.issuer(&ServerId::Custom(s.id.clone())),
        "issuerMode": "ORG_URL",
        "status": status,
        "created": rfc3339_secs(s.created),
        "lastUpdated": rfc3339_secs(s.last_updated),
        "credentials": {"signing": {
            "rotationMode": "AUTO",
            "lastRotated": rfc3339_secs(last_rotated),
            "nextRotation": rfc3339_secs(last_rotated + ROTATION_PERIOD_MS),
            "kid": ks.active().kid,
            "use": "sig",
        }},
        "_links": {
            "scopes": href_allow(format!("{me}/scopes"), &["GET"]),
            "claims": href_allow(format!("{me}/claims"), &["GET"]),
            "policies": href_allow(format!("{me}/policies"), &["GET"]),
            "self": href_allow(me.clone(), self_methods),
            "metadata": [
                {"name": "oauth-authorization-server", "href": format!("{base}/oauth2/{}/.well-known/oauth-authorization-server", s.id), "hints": {"allow": ["GET"]}},
                {"name": "openid-configuration", "href": format!("{base}/oauth2/{}/.well-known/openid-configuration", s.id), "hints": {"allow": ["GET"]}}
            ],
            "rotateKey": href_allow(format!("{me}/credentials/lifecycle/keyRotate"), &["POST"]),
        }
    });
    v["_links"][toggle] = href_allow(format!("{me}/lifecycle/{toggle}"), &["POST"]);
    v
}

fn policy_json(base: &str, sid: &str, p: &PolicyView, s: &AuthServer) -> Value {
    let me = format!("{base}/api/v1/authorizationServers/{sid}/policies/{}", p.id);
    json!({
        "type": "OAUTH_AUTHORIZATION_POLICY",
        "id": p.id,
        "status": "ACTIVE",
        "name": p.name,
        "description": p.description,
        "priority": p.priority,
        "system": false,
        "conditions": {"clients": {"include": ["ALL_CLIENTS"]}},
        "created": rfc3339_secs(s.created),
        "lastUpdated": rfc3339_secs(s.last_updated),
        "_links": {
            "self": href_allow(me.clone(), &["GET"]),
            "rules": href_allow(format!("{me}/rules"), &["GET"]),
        }
    })
}

fn rule_json(base: &str, sid: &str, pid: &str, r: &RuleView, s: &AuthServer) -> Value {
    let me = format!("{base}/api/v1/authorizationServers/{sid}/policies/{pid}/rules/{}", r.id);
    json!({
        "type": "RESOURCE_ACCESS",
        "id": r.id,
        "status": "ACTIVE",
        "name": r.name,
        "priority": r.priority,
        "created": rfc3339_secs(s.created),
        "lastUpdated": rfc3339_secs(s.last_updated),
        "system": false,
        "conditions": {
            "people": {"users": {"include": [], "exclude": []}, "groups": {"include": ["EVERYONE"], "exclude": []}},
            "grantTypes": {"include": ["authorization_code", "refresh_token", "client_credentials"]},
            "scopes": {"include": ["*"]}
        },
        "actions": {"token": {
            "accessTokenLifetimeMinutes": r.lifetimes.access_token_lifetime_minutes,
            "refreshTokenLifetimeMinutes": r.lifetimes.refresh_token_lifetime_minutes,
            "refreshTokenWindowMinutes": r.lifetimes.refresh_token_window_minutes,
            "inlineHook": null
        }},
        "_links": {"self": href_allow(me, &["GET", "PUT"])}
    })
}

/// Okta's view of a server's keys: ACTIVE, then NEXT, then EXPIRED, each with its status. Takes the entries
/// copied out of the tenant (each an `Arc` of the key), so the JWKs are built after the lock is let go: a key
/// still being generated in the background is waited for there (on a blocking thread), not under the lock
/// every request needs.
async fn keys_json(base: &str, path: &str, mut entries: Vec<KeyEntry>) -> Vec<Value> {
    crate::keys::KeyMaterial::all_ready(&entries.iter().map(|e| e.material.clone()).collect::<Vec<_>>()).await;
    let rank = |s: KeyStatus| match s {
        KeyStatus::Active => 0,
        KeyStatus::Next => 1,
        KeyStatus::Expired => 2,
    };
    entries.sort_by_key(|e| rank(e.status));
    entries
        .iter()
        .map(|e| {
            let mut v = e.material.jwk();
            v["status"] = json!(e.status);
            v["_links"] = json!({"self": href_allow(format!("{base}{path}/{}", e.material.kid), &["GET"])});
            v
        })
        .collect()
}

/// `GET /api/v1/authorizationServers`: the custom servers (the org server is not listed, as in Okta).
pub async fn list(State(s): State<Shared>) -> Response {
    let t = s.tenant.lock();
    axum::Json(t.servers.values().map(|x| server_json(&t, x)).collect::<Vec<_>>()).into_response()
}

pub async fn get(State(s): State<Shared>, Path(sid): Path<String>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let x = t.servers.get(&sid).ok_or_else(|| server_not_found(&sid))?;
    Ok(axum::Json(server_json(&t, x)).into_response())
}

fn invalid(field: &str, cause: String) -> ApiError {
    ApiError { status: 400, code: "E0000001", summary: format!("Api validation failed: {field}"), causes: vec![cause] }
}

/// An optional string attribute of a body.
fn string_attr(b: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, ApiError> {
    match b.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.clone())),
        Some(v) => Err(invalid(k, format!("{k}: must be a string, got {v}"))),
    }
}

/// `POST /api/v1/authorizationServers` with `{"name", "description", "audiences": [one], "status"?}`: 201 and
/// the new server, whose discovery, keys and token endpoints work at once.
pub async fn create(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let b = object_body(&body)?;
    let name = string_attr(&b, "name")?.unwrap_or_default();
    let description = string_attr(&b, "description")?.unwrap_or_default();
    let audiences = match b.get("audiences") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value::<Vec<String>>(v.clone())
            .map_err(|_| invalid("audiences", format!("audiences: must be an array of strings, got {v}")))?,
    };
    let active = match string_attr(&b, "status")?.as_deref() {
        None | Some("ACTIVE") => true,
        Some("INACTIVE") => false,
        Some(other) => return Err(invalid("status", format!("status: must be ACTIVE or INACTIVE, got {other}"))),
    };
    let n = NewServer { name, description, audiences, active };
    // Checked before keys are drawn: generating an RSA key takes a while in the binary.
    s.tenant.lock().check_new_server(&n)?;
    let (active_key, next_key) = draw_keys(&s).await?;
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let id = t.create_server(n, active_key, next_key, now)?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(server_json(&t, &t.servers[&id]))).into_response())
}

/// `POST …/{id}/lifecycle/{activate|deactivate}`: 204. Deactivation makes the server unavailable to clients
/// and revokes its tokens.
pub async fn lifecycle(State(s): State<Shared>, Path((sid, op)): Path<(String, String)>, body: Bytes) -> Result<Response, ApiError> {
    object_body(&body)?;
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    match op.as_str() {
        "activate" => t.set_server_active(&sid, true, now)?,
        "deactivate" => t.set_server_active(&sid, false, now)?,
        other => {
            t.servers.get(&sid).ok_or_else(|| server_not_found(&sid))?;
            return Err(invalid("lifecycle", format!("lifecycle: the operation {other} is not supported (activate, deactivate are)")));
        }
    };
    Ok(no_content())
}

/// `DELETE /api/v1/authorizationServers/{id}`: 204 for an INACTIVE server other than `default`.
pub async fn delete(State(s): State<Shared>, Path(sid): Path<String>) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    s.tenant.lock().delete_server(&sid, now)?;
    Ok(no_content())
}

pub async fn policies(State(s): State<Shared>, Path(sid): Path<String>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let ps = t.server_policies(&sid)?;
    let srv = &t.servers[&sid];
    Ok(axum::Json(ps.iter().map(|p| policy_json(&t.base_url, &sid, p, srv)).collect::<Vec<_>>()).into_response())
}

fn find_policy(t: &Tenant, sid: &str, pid: &str) -> Result<PolicyView, ApiError> {
    t.server_policies(sid)?
        .into_iter()
        .find(|p| p.id == pid)
        .ok_or_else(|| ApiError::not_found(&format!("Resource not found: {pid} (Policy)")))
}

pub async fn policy(State(s): State<Shared>, Path((sid, pid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let p = find_policy(&t, &sid, &pid)?;
    Ok(axum::Json(policy_json(&t.base_url, &sid, &p, &t.servers[&sid])).into_response())
}

pub async fn rules(State(s): State<Shared>, Path((sid, pid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let p = find_policy(&t, &sid, &pid)?;
    let srv = &t.servers[&sid];
    Ok(axum::Json(p.rules.iter().map(|r| rule_json(&t.base_url, &sid, &pid, r, srv)).collect::<Vec<_>>()).into_response())
}

fn rule_not_found(rid: &str) -> ApiError {
    ApiError::not_found(&format!("Resource not found: {rid} (PolicyRule)"))
}

pub async fn rule(State(s): State<Shared>, Path((sid, pid, rid)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let t = s.tenant.lock();
    let p = find_policy(&t, &sid, &pid)?;
    let r = p.rules.iter().find(|r| r.id == rid).ok_or_else(|| rule_not_found(&rid))?;
    Ok(axum::Json(rule_json(&t.base_url, &sid, &pid, r, &t.servers[&sid])).into_response())
}

/// `PUT …/policies/{pid}/rules/{rid}`: the rule object; the mock reads `name` and `actions.token`
/// (attributes left out keep their values) and validates Okta's ranges.
pub async fn update_rule(
    State(s): State<Shared>,
    Path((sid, pid, rid)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b = object_body(&body)?;
    let current = {
        let t = s.tenant.lock();
        let p = find_policy(&t, &sid, &pid)?;
        p.rules.iter().find(|r| r.id == rid).cloned().ok_or_else(|| rule_not_found(&rid))?
    };
    let name = match b.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if !n.trim().is_empty() => Some(n.clone()),
        Some(_) => {
            return Err(ApiError {
                status: 400,
                code: "E0000001",
                summary: "Api validation failed: name".into(),
                causes: vec!["name: The field cannot be left blank".into()],
            });
        }
    };
    let token = b.get("actions").and_then(|a| a.get("token")).cloned().unwrap_or(json!({}));
    let field = |k: &str, cur: u32| -> Result<u32, ApiError> {
        match token.get(k) {
            None | Some(Value::Null) => Ok(cur),
            Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| ApiError {
                status: 400,
                code: "E0000001",
                summary: "Api validation failed: actions.token".into(),
                causes: vec![format!("actions.token.{k}: must be a whole number of minutes, got {v}")],
            }),
        }
    };
    let l = current.lifetimes;
    let lifetimes = TokenLifetimes {
        access_token_lifetime_minutes: field("accessTokenLifetimeMinutes", l.access_token_lifetime_minutes)?,
        refresh_token_lifetime_minutes: field("refreshTokenLifetimeMinutes", l.refresh_token_lifetime_minutes)?,
        refresh_token_window_minutes: field("refreshTokenWindowMinutes", l.refresh_token_window_minutes)?,
    };
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let r = t.update_rule(&sid, &pid, &rid, name, lifetimes, now)?;
    Ok(axum::Json(rule_json(&t.base_url, &sid, &pid, &r, &t.servers[&sid])).into_response())
}

/// The base URL and a copy of a custom server's key entries, or Okta's 404 for an unknown server.
fn server_keys(s: &Shared, sid: &str) -> Result<(String, Vec<KeyEntry>), ApiError> {
    let t = s.tenant.lock();
    let ks = t.keys.get(&ServerId::Custom(sid.to_string())).filter(|_| t.servers.contains_key(sid)).ok_or_else(|| server_not_found(sid))?;
    Ok((t.base_url.clone(), ks.entries().to_vec()))
}

/// `GET …/credentials/keys`: an array of the server's keys with `status`.
pub async fn keys(State(s): State<Shared>, Path(sid): Path<String>) -> Result<Response, ApiError> {
    let (base, entries) = server_keys(&s, &sid)?;
    Ok(axum::Json(keys_json(&base, &format!("/api/v1/authorizationServers/{sid}/credentials/keys"), entries).await).into_response())
}

pub async fn key(State(s): State<Shared>, Path((sid, kid)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (base, entries) = server_keys(&s, &sid)?;
    let all = keys_json(&base, &format!("/api/v1/authorizationServers/{sid}/credentials/keys"), entries).await;
    let k =
        all.into_iter().find(|k| k["kid"] == kid).ok_or_else(|| ApiError::not_found(&format!("Resource not found: {kid} (JsonWebKey)")))?;
    Ok(axum::Json(k).into_response())
}

fn internal_error() -> ApiError {
    ApiError { status: 500, code: "E0000009", summary: "Internal Server Error".into(), causes: vec![] }
}

/// Draws `n` keys from the IdP's key source (the process pool in tests, fresh keys in the binary) outside the
/// tenant lock, because generating an RSA key takes a while.
async fn draw(s: &Shared, n: usize) -> Result<Vec<std::sync::Arc<crate::keys::KeyMaterial>>, ApiError> {
    let first = {
        let mut t = s.tenant.lock();
        t.next_key_slot += n;
        t.next_key_slot - n
    };
    let src = s.keys.clone();
    tokio::task::spawn_blocking(move || (first..first + n).map(|slot| src(slot)).collect()).await.map_err(|_| internal_error())
}

/// The ACTIVE and NEXT keys of a new server.
async fn draw_keys(s: &Shared) -> Result<(std::sync::Arc<crate::keys::KeyMaterial>, std::sync::Arc<crate::keys::KeyMaterial>), ApiError> {
    let mut keys = draw(s, 2).await?;
    match (keys.pop(), keys.pop()) {
        (Some(next), Some(active)) => Ok((active, next)),
        _ => Err(internal_error()),
    }
}

/// Draws the next key and rotates.
async fn rotate(s: &Shared, server: ServerId, at_once: bool) -> Result<Vec<Value>, ApiError> {
    let key = draw(s, 1).await?.pop().ok_or_else(internal_error)?;
    let now = s.clock.now_ms();
    let (base, entries) = {
        let mut t = s.tenant.lock();
        t.rotate_server_keys(&server, key, at_once, now)?;
        (t.base_url.clone(), t.keys[&server].entries().to_vec())
    };
    let path = match &server {
        ServerId::Org => "/oauth2/v1/keys".to_string(),
        ServerId::Custom(id) => format!("/api/v1/authorizationServers/{id}/credentials/keys"),
    };
    Ok(keys_json(&base, &path, entries).await)
}

/// `POST …/credentials/lifecycle/keyRotate` with `{"use": "sig"}` (an empty body means `sig`):
/// ACTIVE→EXPIRED, NEXT→ACTIVE (signing at once), a new NEXT. Answers the keys.
pub async fn key_rotate(State(s): State<Shared>, Path(sid): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    if !s.tenant.lock().servers.contains_key(&sid) {
        return Err(server_not_found(&sid));
    }
    let b = object_body(&body)?;
    match b.get("use") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => {
            return Err(ApiError {
                status: 400,
                code: "E0000001",
                summary: "Api validation failed: rotateKeys".into(),
                causes: vec!["Invalid value specified for key 'use' parameter.".into()],
            });
        }
    }
    Ok(axum::Json(rotate(&s, ServerId::Custom(sid), false).await?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OrgRotate {
    #[serde(default)]
    sign_with_new_key_at_once: bool,
}

/// `POST /_mock/keys/rotate` (body optional): rotates the org server's keys. By default as keyRotate does
/// (the published NEXT key signs from now on); with `{"sign_with_new_key_at_once": true}` a brand-new key
/// that no client has cached signs at once (an emergency rotation). No SSWS token needed. Answers the
/// org server's keys with their status.
pub async fn mock_rotate_org(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let o: OrgRotate = optional_json(&body)?;
    Ok(axum::Json(rotate(&s, ServerId::Org, o.sign_with_new_key_at_once).await?).into_response())
}
