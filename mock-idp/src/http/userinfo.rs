//! `/v1/userinfo`, with Okta's `WWW-Authenticate` errors.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, form};
use crate::core::errors::{USERINFO_INVALID, USERINFO_SCOPE};
use crate::core::flows::UserinfoError;

fn challenge(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = status.into_response();
    let v = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

pub async fn userinfo(State(s): State<Shared>, path: Option<Path<String>>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let id = path.map(|Path(p)| p);
    let server = match s.server(id.as_deref()) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    let token = from_header
        .or_else(|| (method == Method::POST).then(|| form(&body).ok().and_then(|p| p.get("access_token").map(str::to_string))).flatten());
    let Some(token) = token else {
        return challenge(StatusCode::UNAUTHORIZED, "invalid_token", USERINFO_INVALID);
    };
    let now = s.clock.now_ms();
    let r = s.tenant.lock().userinfo(&server, &token, now);
    match r {
        Ok(v) => Json(v).into_response(),
        Err(UserinfoError::InvalidToken) => challenge(StatusCode::UNAUTHORIZED, "invalid_token", USERINFO_INVALID),
        Err(UserinfoError::InsufficientScope) => challenge(StatusCode::FORBIDDEN, "insufficient_scope", USERINFO_SCOPE),
    }
}
