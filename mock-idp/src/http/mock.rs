//! Mock-only controls under `/_mock/`: the virtual clock, reset, health. Faults and the request log are in
//! `http::faults`, org key rotation in `http::mgmt::servers`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::json;

use super::Shared;
use super::errors::ApiError;
use super::mgmt::malformed;
use crate::clock::{parse_rfc3339, rfc3339};

fn clock_json(s: &Shared) -> Response {
    let snap = s.clock.snapshot();
    Json(json!({"now": rfc3339(snap.now_ms), "frozen": snap.frozen, "offset_seconds": snap.offset_ms as f64 / 1000.0})).into_response()
}

pub async fn get_clock(State(s): State<Shared>) -> Response {
    clock_json(&s)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    advance_seconds: Option<f64>,
    advance_ms: Option<i64>,
    set: Option<String>,
    freeze: Option<bool>,
    offset_seconds: Option<f64>,
}

/// Parses the optional JSON body of a `/_mock/*` control: no body (or only whitespace) and `{}` mean "no
/// options". The rest follows the Conventions of docs/management-api.md: a body that is not JSON (or has
/// anything after its JSON value) is E0000003 `The request body was not well-formed.`, and so is JSON that is
/// not an object (`[]`, `null`, `5`: cause `the body must be a JSON object`, as `/api/v1` answers); an object
/// with unknown fields or wrong types is E0000001 `Api validation failed`, its cause naming the field.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    control_body(body, "Api validation failed")
}

/// [`optional_json`] with the E0000001 summary of the caller (`Api validation failed: rate_limits`).
pub fn control_body<T: DeserializeOwned + Default>(body: &[u8], summary: &str) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // One well-formed JSON value and nothing after it (`from_slice` checks the end), …
    serde_json::from_slice::<IgnoredAny>(body).map_err(malformed)?;
    // … which is an object: an array must not be read by position, nor `null` as "no options".
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(malformed("the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let msg = msg.split(" at line").next().unwrap_or(&msg);
        let cause = if path.is_empty() || path == "." { msg.to_string() } else { format!("{path}: {msg}") };
        ApiError { status: 400, code: "E0000001", summary: summary.into(), causes: vec![cause] }
    })
}

/// `POST /_mock/clock`: `{"advance_seconds": n}`, `{"advance_ms": n}`, `{"set": "<RFC 3339>"}`,
/// `{"freeze": bool}`, `{"offset_seconds": n}`; applied in the order set, offset, freeze, advance.
pub async fn post_clock(State(s): State<Shared>, body: Bytes) -> Response {
    let c: ClockChange = match optional_json(&body) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let set = match c.set.as_deref().map(|v| (v, parse_rfc3339(v))) {
        Some((v, None)) => return ApiError::validation(vec![format!("set: not an RFC 3339 timestamp: {v}")]).into_response(),
        Some((_, Some(ms))) => Some(ms),
        None => None,
    };
    for (name, v) in [("advance_seconds", c.advance_seconds), ("offset_seconds", c.offset_seconds)] {
        if let Some(x) = v
            && (!x.is_finite() || x.abs() > 1e11)
        {
            return ApiError::validation(vec![format!("{name}: out of range: {x}")]).into_response();
        }
    }
    // Applied in turn, then checked as a whole: a clock outside 1970-01-01 to 9999-12-31 (which tokens and
    // RFC 3339 cannot show, and a state file could not be restarted from) is refused and nothing changes.
    let before = s.clock.persisted();
    if let Some(ms) = set {
        s.clock.set_ms(ms);
    }
    if let Some(o) = c.offset_seconds {
        s.clock.set_offset_ms((o * 1000.0).round() as i64);
    }
    if let Some(f) = c.freeze {
        s.clock.freeze(f);
    }
    if let Some(a) = c.advance_seconds {
        s.clock.advance_ms((a * 1000.0).round() as i64);
    }
    if let Some(a) = c.advance_ms {
        s.clock.advance_ms(a);
    }
    let now = s.clock.now_ms();
    if !(0..=crate::clock::LAST_MS).contains(&now) {
        s.clock.restore(before.0, before.1);
        return ApiError::validation(vec![format!(
            "clock: out of range: the change would put it at {now} ms, outside 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z"
        )])
        .into_response();
    }
    clock_json(&s)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    /// A tenant configuration (the tenant file's shape, as JSON) to reset to instead of the initial one.
    tenant: Option<serde_json::Value>,
}

/// `POST /_mock/reset`: the tenant as configured (or as the body's `tenant` says), the clock as started,
/// no faults, empty logs. A runner that shares one IdP between scenarios uses the body to give each
/// scenario its own tenant.
pub async fn reset(State(s): State<Shared>, body: Bytes) -> Response {
    let b: ResetBody = match optional_json(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let cfg = match b.tenant {
        None => s.initial_config.clone(),
        Some(v) => {
            let c: crate::config::TenantConfig = match serde_path_to_error::deserialize(v) {
                Ok(c) => c,
                Err(e) => return ApiError::validation(vec![format!("tenant.{}: {}", e.path(), e.inner())]).into_response(),
            };
            // Named from the body as the parse errors are: `tenant.trusted_origins[0].origin: …`.
            if let Err(e) = c.check("tenant") {
                let field = if e.field.is_empty() { "tenant".to_string() } else { format!("tenant.{}", e.field) };
                return ApiError::validation(vec![format!("{field}: {}", e.message)]).into_response();
            }
            c
        }
    };
    s.clock.reset();
    // Faults (and the requests they hold), and the request log go too.
    s.controls.clear();
    match (s.rebuild)(&cfg) {
        Ok(t) => {
            *s.tenant.lock() = t;
            Json(json!({"reset": true})).into_response()
        }
        Err(e) => ApiError::validation(vec![format!("reset failed: {e}")]).into_response(),
    }
}

pub async fn health() -> &'static str {
    "ok"
}
