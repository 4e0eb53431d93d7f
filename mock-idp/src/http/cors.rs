//! Okta's Trusted Origins as CORS: browser JavaScript on a trusted origin (scope `CORS`) may call the
//! endpoints a single-page app uses — discovery, `keys`, `token`, `userinfo`, `revoke`, `introspect`,
//! `logout` and `/api/v1/authn`. Its requests get `Access-Control-Allow-Origin: <its origin>` with
//! credentials, and its preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here.
//! Any other origin gets no CORS headers, so the browser blocks the response, as Okta's does; its
//! preflight falls through to the router (405, as every `OPTIONS` there).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;

/// The methods an endpoint answers, for `Access-Control-Allow-Methods`; `None` when browsers get no CORS
/// headers from it (the hosted pages, `authorize`, the management API, `/_mock`).
pub fn browser_endpoint_methods(path: &str) -> Option<&'static str> {
    if path.ends_with("/.well-known/openid-configuration") || path.ends_with("/.well-known/oauth-authorization-server") {
        return Some("GET, OPTIONS");
    }
    if path == "/api/v1/authn" || path.starts_with("/api/v1/authn/") {
        return Some("POST, OPTIONS");
    }
    // `/oauth2/v1/<endpoint>` (the org server) or `/oauth2/<server id>/v1/<endpoint>`.
    let rest = path.strip_prefix("/oauth2/")?;
    let endpoint = match rest.strip_prefix("v1/") {
        Some(e) => e,
        None => {
            let (id, e) = rest.split_once("/v1/")?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            e
        }
    };
    match endpoint {
        "keys" => Some("GET, OPTIONS"),
        "token" | "revoke" | "introspect" => Some("POST, OPTIONS"),
        "userinfo" | "logout" => Some("GET, POST, OPTIONS"),
        _ => None,
    }
}

fn allow_origin(h: &mut HeaderMap, origin: &HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
}

/// The middleware; see the module documentation.
pub async fn cors(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let Some(methods) = browser_endpoint_methods(req.uri().path()) else {
        return next.run(req).await;
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let trusted = origin.as_ref().and_then(|o| o.to_str().ok()).is_some_and(|o| s.tenant.lock().cors_allowed(o));
    let origin = origin.filter(|_| trusted);
    if let Some(origin) = &origin
        && req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        allow_origin(h, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
        // The SDKs send their own headers (X-Okta-User-Agent-Extended, Authorization); what the browser asks
        // for is allowed.
        if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return r;
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if !h.get_all(header::VARY).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"origin")) {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = &origin {
        allow_origin(h, origin);
        // userinfo's errors are in WWW-Authenticate, which a page can read only when it is exposed.
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::browser_endpoint_methods;

    #[test]
    fn browser_endpoints_are_the_ones_a_spa_calls() {
        for (path, want) in [
            ("/oauth2/v1/token", Some("POST, OPTIONS")),
            ("/oauth2/default/v1/token", Some("POST, OPTIONS")),
            ("/oauth2/default/v1/keys", Some("GET, OPTIONS")),
            ("/oauth2/v1/userinfo", Some("GET, POST, OPTIONS")),
            ("/oauth2/default/v1/revoke", Some("POST, OPTIONS")),
            ("/oauth2/v1/introspect", Some("POST, OPTIONS")),
            ("/oauth2/default/v1/logout", Some("GET, POST, OPTIONS")),
            ("/.well-known/openid-configuration", Some("GET, OPTIONS")),
            ("/oauth2/default/.well-known/openid-configuration", Some("GET, OPTIONS")),
            ("/oauth2/default/.well-known/oauth-authorization-server", Some("GET, OPTIONS")),
            ("/api/v1/authn", Some("POST, OPTIONS")),
            ("/oauth2/v1/authorize", None),
            ("/oauth2/default/v1/authorize", None),
            ("/oauth2/a/b/v1/token", None),
            ("/oauth2//v1/token", None),
            ("/login/login.htm", None),
            ("/api/v1/users", None),
            ("/_mock/reset", None),
        ] {
            assert_eq!(browser_endpoint_methods(path), want, "{path}");
        }
    }
}
