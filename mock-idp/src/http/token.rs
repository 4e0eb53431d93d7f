//! `/v1/token`, `/v1/introspect`, `/v1/revoke`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::errors::OAuthJson;
use super::faults::{with_tamper, with_trace};
use super::{Shared, form};
use crate::core::errors::*;
use crate::core::faults::{Action, Endpoint};
use crate::core::flows::{ClientAuth, IMPLEMENTED_GRANTS, TokenRequest};
use crate::core::model::{App, ServerId};
use crate::core::params::Params;
use crate::signing::{self, Tamper};

/// Reads client credentials the way Okta does: a Basic header, or `client_id`/`client_secret` in the body,
/// never both, never in the query string.
pub fn client_auth(headers: &HeaderMap, p: &Params) -> ClientAuth {
    let body_secret = p.get("client_secret").map(str::to_string);
    let body_id = p.get("client_id").map(str::to_string);
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        let parsed = h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let dec = |x: &str| form_urlencoded::parse(format!("v={x}").as_bytes()).next().map(|(_, v)| v.into_owned());
                match s.split_once(':') {
                    Some((i, sec)) => Some((dec(i)?, Some(dec(sec)?))),
                    // No colon: okta-auth-js's credentials for a public client (see ClientAuth::BasicIdOnly).
                    None => Some((dec(&s)?, None)),
                }
            });
        return match parsed {
            Some(_) if body_secret.is_some() || p.contains("client_assertion") => ClientAuth::Multiple,
            Some((client_id, Some(secret))) if !client_id.is_empty() => ClientAuth::Basic { client_id, secret },
            Some((client_id, None)) if !client_id.is_empty() => ClientAuth::BasicIdOnly { client_id },
            _ => ClientAuth::BadHeader,
        };
    }
    match (body_id, body_secret) {
        (Some(client_id), Some(secret)) => ClientAuth::Post { client_id, secret },
        (Some(client_id), None) => ClientAuth::ClientIdOnly { client_id },
        (None, Some(_)) | (None, None) => ClientAuth::Missing,
    }
}

fn credentials_in_query(q: Option<&str>) -> bool {
    // Every pair is looked at, so a repeated name (which Params refuses) cannot hide a secret in the query.
    form_urlencoded::parse(q.unwrap_or("").as_bytes()).any(|(k, _)| k == "client_secret" || k == "client_assertion")
}

fn json_no_store(v: Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Common front of the three client-authenticated endpoints: server, params, client.
#[allow(clippy::result_large_err)] // the error is the finished response, returned at once
fn front(
    s: &Shared,
    id: Option<&str>,
    q: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(ServerId, Params, App), Response> {
    let server = s.server(id).map_err(IntoResponse::into_response)?;
    if credentials_in_query(q) {
        return Err(OAuthJson(OAuthError::invalid_request(CREDENTIALS_IN_QUERY)).into_response());
    }
    let p = form(body).map_err(|e| OAuthJson(e).into_response())?;
    let auth = client_auth(headers, &p);
    let app = s.tenant.lock().authenticate_client(&auth, now).map_err(|e| OAuthJson(e).into_response())?;
    Ok((server, p, app))
}

/// `POST {server}/v1/token`.
pub async fn token(
    State(s): State<Shared>,
    path: Option<Path<String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = path.map(|Path(p)| p);
    let now = s.clock.now_ms();
    // grant_type is checked before the client, as Okta does.
    if let Ok(p) = form(&body)
        && p.get("grant_type").is_none()
        && s.server(id.as_deref()).is_ok()
    {
        return OAuthJson(OAuthError::invalid_request(grant_type_required(IMPLEMENTED_GRANTS))).into_response();
    }
    let (server, p, app) = match front(&s, id.as_deref(), q.as_deref(), &headers, &body, now) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let s_ = |k: &str| p.get(k).map(str::to_string);
    let req = match p.get("grant_type") {
        Some("authorization_code") => {
            TokenRequest::AuthorizationCode { code: s_("code"), redirect_uri: s_("redirect_uri"), code_verifier: s_("code_verifier") }
        }
        Some("refresh_token") => TokenRequest::RefreshToken { refresh_token: s_("refresh_token"), scope: s_("scope") },
        Some("client_credentials") => TokenRequest::ClientCredentials { scope: s_("scope") },
        _ => return OAuthJson(OAuthError::new(ErrorCode::UnsupportedGrantType, unsupported_grant_type(&app.grant_types))).into_response(),
    };
    // A key that became active in a rotation a moment ago may still be being generated: wait for it here,
    // before the grant changes anything (a code redeemed, a refresh token rotated), so that no await stands
    // between the grant and the registration of its tokens.
    let pending = s.tenant.lock().signing_keys_not_ready(&server);
    if let Some(keys) = pending {
        crate::keys::KeyMaterial::all_ready(&keys).await;
    }
    let (result, trace) = s.tenant.lock().grant(&server, &app, req, now);
    let plan = match result {
        Ok(p) => p,
        Err(e) => return with_trace(OAuthJson(e).into_response(), trace),
    };
    // A tampering fault (mock-only) is used by the first answer it can change: an ID-token defect needs an
    // ID token in the answer, a nonce defect an ID token with a nonce.
    let has_id = plan.id_claims.is_some();
    let has_nonce = plan.id_claims.as_ref().is_some_and(|c| c.contains_key("nonce"));
    let applied = s.controls.faults.lock().take_tamper(Endpoint::Token, Some(plan.grant_type), Some(&app.client_id), |a| match a {
        Action::TamperIdToken(d) => has_id && (has_nonce || !d.needs_nonce()),
        Action::TamperAccessToken(_) => true,
        _ => false,
    });
    let tamper = applied.as_ref().and_then(|a| match a.action {
        Action::TamperIdToken(d) => Some(Tamper::IdToken(d)),
        Action::TamperAccessToken(d) => Some(Tamper::AccessToken(d)),
        _ => None,
    });
    // The HMAC key of `hs256_client_secret`; an app without a secret (a public client) gets its client id.
    let secret = app.client_secret.as_ref().map(|x| x.expose()).unwrap_or(&app.client_id);
    let signed = signing::sign_plan_with(&plan, tamper, secret);
    // The IdP never knows a tampered token (introspect says inactive, userinfo 401, a logout hint is
    // refused), as Okta would not know a forged one; its untampered sibling is registered as usual.
    match tamper {
        None => s.tenant.lock().register(&plan, &signed.access_token, signed.id_token.as_deref()),
        Some(Tamper::IdToken(_)) => s.tenant.lock().register(&plan, &signed.access_token, None),
        Some(Tamper::AccessToken(_)) => {
            let genuine = signing::sign(&plan.access_claims, &plan.access_key);
            s.tenant.lock().register(&plan, &genuine, signed.id_token.as_deref());
        }
    }
    let mut m = Map::new();
    m.insert("token_type".into(), json!("Bearer"));
    m.insert("expires_in".into(), json!(plan.expires_in));
    m.insert("access_token".into(), json!(signed.access_token));
    m.insert("scope".into(), json!(plan.scopes.join(" ")));
    if let Some(rt) = &plan.refresh_token {
        m.insert("refresh_token".into(), json!(rt));
    }
    if let Some(it) = &signed.id_token {
        m.insert("id_token".into(), json!(it));
    }
    let r = with_trace(json_no_store(Value::Object(m)), trace);
    match &applied {
        Some(a) => with_tamper(r, a.action.name()),
        None => r,
    }
}

/// `POST {server}/v1/introspect`.
pub async fn introspect(
    State(s): State<Shared>,
    path: Option<Path<String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = path.map(|Path(p)| p);
    let now = s.clock.now_ms();
    let (server, p, app) = match front(&s, id.as_deref(), q.as_deref(), &headers, &body, now) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(token) = p.get("token") else {
        return OAuthJson(OAuthError::invalid_request(missing_param("token"))).into_response();
    };
    if let Some(h) = p.get("token_type_hint")
        && !matches!(h, "access_token" | "id_token" | "refresh_token" | "device_secret")
    {
        return OAuthJson(OAuthError::invalid_request(format!(
            "The 'token_type_hint' parameter is invalid. Valid values: [access_token, id_token, refresh_token, device_secret]. Found: {h}"
        )))
        .into_response();
    }
    let v = s.tenant.lock().introspect(&server, &app, token, now);
    Json(v).into_response()
}

/// `POST {server}/v1/revoke`: 200 with an empty body, also for unknown or already revoked tokens.
pub async fn revoke(
    State(s): State<Shared>,
    path: Option<Path<String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = path.map(|Path(p)| p);
    let now = s.clock.now_ms();
    let (server, p, app) = match front(&s, id.as_deref(), q.as_deref(), &headers, &body, now) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(token) = p.get("token") else {
        return OAuthJson(OAuthError::invalid_request(missing_param("token"))).into_response();
    };
    s.tenant.lock().revoke(&server, &app, token, now);
    StatusCode::OK.into_response()
}
