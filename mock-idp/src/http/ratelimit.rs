//! The HTTP half of rate limits (`core::ratelimit` decides): `X-Rate-Limit-*` on every protocol and API
//! answer, the 429 of a refused request, and `GET`/`PUT /_mock/rate-limits`.
//!
//! A refused request gets Okta's E0000047 body (`API call exceeded rate limit due to too many requests.`) with
//! `X-Rate-Limit-Remaining: 0` and the window's end as `X-Rate-Limit-Reset`; the browser endpoints
//! (authorize, logout, the sign-in page) get Okta's HTML error page with the same status and headers. The
//! handler never runs, so nothing changes.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::errors::ApiError;
use super::mock::control_body;
use super::{Shared, html};
use crate::core::errors::RATE_LIMITED;
use crate::core::faults::Endpoint;
use crate::core::ratelimit::{Decision, RateLimits};

/// Okta's 429 code.
const CODE: &str = "E0000047";

/// Sets the `X-Rate-Limit-*` headers of an answer from the limiter's decision, unless the answer brought its
/// own (a fault rule's 429).
pub fn set_headers(res: &mut Response, d: &Decision) {
    let h = res.headers_mut();
    if h.contains_key("x-rate-limit-limit") {
        return;
    }
    for (name, value) in
        [("x-rate-limit-limit", d.limit as i64), ("x-rate-limit-remaining", d.remaining as i64), ("x-rate-limit-reset", d.reset_s)]
    {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
}

/// The answer to a request the limiter refused.
pub fn refused(endpoint: Endpoint, d: &Decision) -> Response {
    let mut res = match endpoint {
        Endpoint::Authorize | Endpoint::Logout | Endpoint::Login => {
            (StatusCode::TOO_MANY_REQUESTS, Html(html::error_page(429, CODE, RATE_LIMITED))).into_response()
        }
        _ => ApiError { status: 429, code: CODE, summary: RATE_LIMITED.into(), causes: vec![] }.into_response(),
    };
    set_headers(&mut res, d);
    res
}

/// `GET /_mock/rate-limits`: the limits in force, `{"token": 600, …}` (buckets without a limit left out).
pub async fn get_limits(State(s): State<Shared>) -> Response {
    let limits = s.tenant.lock().rate_limiter.limits();
    Json(limits).into_response()
}

/// `PUT /_mock/rate-limits`: replaces every limit (`{}` or no body turns them all off); the counts of the
/// current windows are kept. Answers the limits in force. A body that is not one JSON object is E0000003 and
/// changes nothing; a bad bucket or limit is E0000001 naming it.
pub async fn put_limits(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let limits: RateLimits = control_body(&body, "Api validation failed: rate_limits")?;
    s.tenant.lock().set_rate_limits(limits);
    Ok(Json(limits).into_response())
}

/// The `/_mock/rate-limits` route.
pub fn routes(r: Router<Shared>) -> Router<Shared> {
    r.route("/_mock/rate-limits", get(get_limits).put(put_limits))
}
