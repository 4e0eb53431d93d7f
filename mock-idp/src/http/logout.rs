//! `/v1/logout`: ends the IdP session only (refresh tokens survive, decision M6).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::errors::ErrorPage;
use super::{SID_COOKIE, Shared, cookie, query_and_body, redirect, with_params};
use crate::core::errors::{LOGOUT_MISMATCH, LOGOUT_URI, OAuthError, missing_param};

pub async fn logout(
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
    let p = match query_and_body(q.as_deref(), &method, &body) {
        Ok(p) => p,
        Err(e) => return ErrorPage(e).into_response(),
    };
    let now = s.clock.now_ms();
    let mut t = s.tenant.lock();
    let hint = match p.get("id_token_hint") {
        Some(h) => match t.id_token_hint(&server, h) {
            Some(r) => Some(r.clone()),
            None => {
                return ErrorPage(OAuthError::invalid_request(
                    "The 'id_token_hint' parameter is not a valid ID token issued by this authorization server.",
                ))
                .into_response();
            }
        },
        None => None,
    };
    let client_id = hint.as_ref().map(|h| h.client_id.clone()).or_else(|| p.get("client_id").map(str::to_string));
    let post_logout = p.get("post_logout_redirect_uri").map(str::to_string);
    if let Some(uri) = &post_logout {
        let Some(app) = client_id.as_deref().and_then(|c| t.app_by_client_id(c)) else {
            return ErrorPage(OAuthError::invalid_request(missing_param("id_token_hint"))).into_response();
        };
        if !app.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return ErrorPage(OAuthError::invalid_request(LOGOUT_URI)).into_response();
        }
    }
    let sign_in_page = format!("{}/", t.base_url);
    let sid = cookie(&headers, SID_COOKIE).map(str::to_string);
    if let Some(sid) = &sid
        && let Some(sess) = t.live_session(sid, now)
    {
        if let Some(h) = &hint
            && h.user_id != sess.user_id
        {
            return ErrorPage(OAuthError::invalid_request(LOGOUT_MISMATCH)).into_response();
        }
        t.end_session(sid, now);
    }
    drop(t);
    let mut r = match post_logout {
        Some(uri) => match p.get("state") {
            Some(st) => redirect(&with_params(&uri, &[("state", st)], false)),
            None => redirect(&uri),
        },
        None => redirect(&sign_in_page),
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{SID_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
