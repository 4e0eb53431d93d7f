//! Discovery documents and JWKS, with Okta's field names, advertising only what the mock implements.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::errors::ApiError;
use crate::core::model::ServerId;
use crate::core::tenant::Tenant;

const CLAIMS: &[&str] = &[
    "iss",
    "ver",
    "sub",
    "aud",
    "iat",
    "exp",
    "jti",
    "auth_time",
    "amr",
    "idp",
    "nonce",
    "name",
    "nickname",
    "preferred_username",
    "given_name",
    "family_name",
    "email",
    "email_verified",
    "zoneinfo",
    "locale",
    "updated_at",
    "at_hash",
];
const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];

fn document(t: &Tenant, server: &ServerId, oauth: bool) -> Value {
    let iss = t.issuer(server);
    let base = format!("{}{}", t.base_url, server.path_prefix());
    let mut scopes: Vec<String> =
        ["openid", "profile", "email", "address", "phone", "offline_access"].iter().map(|s| s.to_string()).collect();
    let mut grants = vec!["authorization_code", "refresh_token"];
    match server {
        ServerId::Org => scopes.push("groups".into()),
        ServerId::Custom(_) => {
            // Custom scopes are not published: Okta lists them only with metadataPublish ALL_CLIENTS, and its
            // default is NO_CLIENTS.
            if oauth {
                grants.push("client_credentials");
            }
        }
    }
    let claims: Value = if oauth { json!(["ver", "jti", "iss", "aud", "iat", "exp", "cid", "uid", "scp", "sub"]) } else { json!(CLAIMS) };
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
        "userinfo_endpoint": format!("{base}/v1/userinfo"),
        "jwks_uri": format!("{base}/v1/keys"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": grants,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "claims_supported": claims,
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{base}/v1/introspect"),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint": format!("{base}/v1/revoke"),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "end_session_endpoint": format!("{base}/v1/logout"),
        "request_parameter_supported": false,
    })
}

pub async fn org_openid(State(s): State<Shared>) -> Response {
    let t = s.tenant.lock();
    Json(document(&t, &ServerId::Org, false)).into_response()
}

pub async fn custom_openid(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let server = s.server(Some(&id))?;
    let t = s.tenant.lock();
    Ok(Json(document(&t, &server, false)).into_response())
}

pub async fn custom_oauth(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let server = s.server(Some(&id))?;
    let t = s.tenant.lock();
    Ok(Json(document(&t, &server, true)).into_response())
}

/// JWKS of a server: ACTIVE, NEXT and EXPIRED keys, `Cache-Control: max-age=…, must-revalidate`.
pub async fn keys(State(s): State<Shared>, path: Option<Path<String>>) -> Result<Response, ApiError> {
    let id = path.map(|Path(p)| p);
    let server = s.server(id.as_deref())?;
    // The key handles only: a key generated in the background may still be on its way, and waiting for it
    // must not hold up every other request behind the tenant lock (nor a runtime thread).
    let (published, max_age) = {
        let t = s.tenant.lock();
        let published: Vec<_> = t.keys[&server].published().map(|k| k.material.clone()).collect();
        (published, t.jwks_max_age_s)
    };
    crate::keys::KeyMaterial::all_ready(&published).await;
    let keys: Vec<Value> = published.iter().map(|k| k.jwk()).collect();
    let mut r = Json(json!({"keys": keys})).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}, must-revalidate")) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    Ok(r)
}
