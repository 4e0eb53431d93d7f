//! The one place where protocol errors become Okta's wire shapes: OAuth JSON, management-API JSON
//! (`errorCode`, `errorSummary`, …), and the HTML error page Okta shows in the browser.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::html;
use crate::core::errors::OAuthError;
use crate::core::ids;

/// OAuth error as the token, introspect and revoke endpoints answer it.
pub struct OAuthJson(pub OAuthError);

impl IntoResponse for OAuthJson {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = json!({"error": e.code.as_str(), "error_description": e.description});
        let mut r = (StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        r
    }
}

/// Okta management-API error (`E0000…`).
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub summary: String,
    pub causes: Vec<String>,
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError { status: 404, code: "E0000007", summary: format!("Not found: {what}"), causes: vec![] }
    }
    pub fn server_not_found(id: &str) -> Self {
        Self::not_found(&format!("Resource not found: {id} (AuthorizationServer)"))
    }
    pub fn invalid_token() -> Self {
        ApiError { status: 401, code: "E0000011", summary: "Invalid token provided".into(), causes: vec![] }
    }
    pub fn authentication_failed() -> Self {
        ApiError { status: 401, code: "E0000004", summary: "Authentication failed".into(), causes: vec![] }
    }
    pub fn validation(causes: Vec<String>) -> Self {
        ApiError { status: 400, code: "E0000001", summary: "Api validation failed".into(), causes }
    }
    pub fn bad_request(summary: impl Into<String>) -> Self {
        ApiError { status: 400, code: "E0000003", summary: summary.into(), causes: vec![] }
    }
    pub fn method_not_allowed() -> Self {
        ApiError { status: 405, code: "E0000022", summary: "The endpoint does not support the provided HTTP method".into(), causes: vec![] }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let causes: Vec<_> = self.causes.iter().map(|c| json!({"errorSummary": c})).collect();
        let body = json!({
            "errorCode": self.code,
            "errorSummary": self.summary,
            "errorLink": self.code,
            "errorId": ids::error_id(),
            "errorCauses": causes,
        });
        let mut r = (StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST), body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }
}

/// Okta's browser error page: "400 Bad Request — Your request resulted in an error."
pub struct ErrorPage(pub OAuthError);

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(if e.status == 401 { 400 } else { e.status }).unwrap_or(StatusCode::BAD_REQUEST);
        let body = html::error_page(status.as_u16(), e.code.as_str(), &e.description);
        (status, Html(body)).into_response()
    }
}
