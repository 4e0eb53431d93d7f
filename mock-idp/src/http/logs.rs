//! `GET /api/v1/logs`: the System Log with Okta's query parameters and `Link` paging.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::ApiError;
use super::{Shared, require_ssws};
use crate::clock::parse_rfc3339;
use crate::core::params::Params;
use crate::core::syslog::{LogQuery, parse_filter};

pub async fn logs(State(s): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    require_ssws(&s, &headers)?;
    let p = Params::parse(q.as_deref().unwrap_or("")).map_err(|e| ApiError::validation(vec![e.description]))?;
    let mut query = LogQuery { limit: 100, ..Default::default() };
    let time = |k: &str| -> Result<Option<i64>, ApiError> {
        match p.get(k) {
            None => Ok(None),
            Some(v) => parse_rfc3339(v).map(Some).ok_or_else(|| ApiError::validation(vec![format!("{k}: Invalid date format: {v}")])),
        }
    };
    query.since = time("since")?;
    query.until = time("until")?;
    if let Some(l) = p.get("limit") {
        query.limit = match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(ApiError::validation(vec![format!("limit: must be between 1 and 1000, got {l}")])),
        };
    }
    if let Some(f) = p.get("filter") {
        query.filter = parse_filter(f).map_err(|e| ApiError::validation(vec![e]))?;
    }
    query.q = p.get("q").map(str::to_string);
    query.descending = match p.get("sortOrder") {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(o) => return Err(ApiError::validation(vec![format!("sortOrder: must be ASCENDING or DESCENDING, got {o}")])),
    };
    if let Some(a) = p.get("after") {
        query.after = Some(a.parse().map_err(|_| ApiError::validation(vec![format!("after: invalid cursor {a}")]))?);
    }
    let t = s.tenant.lock();
    let (events, cursor) = t.log.query(&query);
    let body: Vec<Value> = events.iter().map(|e| e.to_json()).collect();
    let base = format!("{}/api/v1/logs", t.base_url);
    drop(t);
    let mut r = axum::Json(body).into_response();
    let self_link = format!("<{base}{}>; rel=\"self\"", q.as_deref().map(|q| format!("?{q}")).unwrap_or_default());
    let mut link = self_link;
    if let Some(c) = cursor {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in p.iter().filter(|(k, _)| k.as_str() != "after") {
            ser.append_pair(k, v);
        }
        ser.append_pair("after", &c.to_string());
        link.push_str(&format!(", <{base}?{}>; rel=\"next\"", ser.finish()));
    }
    if let Ok(v) = HeaderValue::from_str(&link) {
        r.headers_mut().insert(header::LINK, v);
    }
    Ok(r)
}
