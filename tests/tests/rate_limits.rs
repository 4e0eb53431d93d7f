//! Integration tests of Okta's rate limits as the tenant turns them on (issue 4): `rate_limits:` in the tenant
//! file, `PUT /_mock/rate-limits` and `POST /_mock/reset {tenant}` at run time. Over real HTTP: the
//! `X-Rate-Limit-*` headers count down, Reset is the end of the window on the tenant clock, the request after
//! the limit gets Okta's 429, advancing the clock opens the next window, and the refusals show in the request
//! log and the System Log. No sleeps: windows are minutes of the tenant clock.

use mock_idp::TenantConfig;
use mock_idp::client::{AdminClient, Bucket, RateLimits};
use mock_idp::core::faults::{Action, Endpoint, Respond, RuleSpec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::*;

const RATE_LIMITED: &str = "API call exceeded rate limit due to too many requests.";
/// What a limit must be, as the errors say it.
const WHOLE: &str = "expected a whole number of requests per minute (1–1000000)";
const SVC: Auth<'static> = Auth::Basic("svc-local", "svc-local-secret");

fn with_limits(f: impl FnOnce(&mut RateLimits)) -> TenantConfig {
    let mut cfg = TenantConfig::default_tenant();
    f(&mut cfg.rate_limits);
    cfg
}

/// `(Limit, Remaining, Reset)` of an answer.
fn rate_headers(r: &Reply) -> (Option<String>, Option<String>, Option<String>) {
    (r.header("x-rate-limit-limit"), r.header("x-rate-limit-remaining"), r.header("x-rate-limit-reset"))
}

fn expect_headers(limit: u32, remaining: u32, reset: i64) -> (Option<String>, Option<String>, Option<String>) {
    (Some(limit.to_string()), Some(remaining.to_string()), Some(reset.to_string()))
}

/// Asserts Okta's 429 body exactly (the random `errorId` only by shape).
fn assert_rate_limited(r: &Reply) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    let b = r.json();
    let id = b["errorId"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("oae") && id.len() == 25, "errorId {id}");
    assert_eq!(
        b,
        json!({"errorCode": "E0000047", "errorSummary": RATE_LIMITED, "errorLink": "E0000047", "errorId": id, "errorCauses": []})
    );
}

/// A client_credentials token request of the service app at `server`.
async fn cc(c: &Client, server: Server) -> Reply {
    c.post_form(&server.endpoint("token"), SVC, &[("grant_type", "client_credentials"), ("scope", "bsr.read")]).await
}

async fn api(c: &Client, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let mut rb = c.http.request(method, c.url(path)).header("authorization", format!("SSWS {ADMIN_TOKEN}"));
    if let Some(b) = body {
        rb = rb.json(b);
    }
    Reply::from(rb.send().await.expect("API request")).await
}

#[tokio::test]
async fn token_limit_counts_down_refuses_at_limit_plus_one_and_the_next_window_lets_requests_through() {
    let idp = idp_with(with_limits(|l| l.token = Some(3))).await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    // A request in the middle of the first minute: the window is still the clock's minute, so Reset is its end.
    c.advance(25).await;
    for remaining in [2, 1, 0] {
        let r = cc(&c, Server::DEFAULT).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(rate_headers(&r), expect_headers(3, remaining, T0 + 60));
    }
    let refused = cc(&c, Server::DEFAULT).await;
    assert_rate_limited(&refused);
    assert_eq!(rate_headers(&refused), expect_headers(3, 0, T0 + 60));
    assert!(refused.header("x-okta-request-id").is_some_and(|v| v.starts_with("req")));

    // The org server's token endpoint is a bucket of its own: counted, not refused (the grant itself is
    // refused there, as Okta refuses client_credentials on the org server).
    let org = cc(&c, Server::Org).await;
    assert_eq!(org.status, StatusCode::BAD_REQUEST, "{}", org.body);
    assert_eq!(rate_headers(&org), expect_headers(3, 2, T0 + 60));

    // A refused request reaches no handler and uses no fault rule.
    let rule = admin
        .add_fault(
            &RuleSpec::new(Endpoint::Token, Action::Respond(Respond { status: 503, body: None, headers: Default::default() })).times(1),
        )
        .await
        .unwrap();
    assert_rate_limited(&cc(&c, Server::DEFAULT).await);
    let f = admin.fault(&rule).await.unwrap();
    assert_eq!((f.matched, f.remaining), (0, Some(1)));

    // The next window: the fault rule now gets its request (and counts it), then requests go through again.
    c.advance(35).await;
    let faulted = cc(&c, Server::DEFAULT).await;
    assert_eq!(faulted.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rate_headers(&faulted), expect_headers(3, 2, T0 + 120));
    let ok = cc(&c, Server::DEFAULT).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(rate_headers(&ok), expect_headers(3, 1, T0 + 120));
    assert_eq!(c.events("app.oauth2.as.token.grant.access_token").await.len(), 4);

    // The request log: every request, the refused ones with 429 and no fault.
    let log = admin.requests_to(Endpoint::Token).await.unwrap();
    assert!(log.iter().all(|e| e.client_id.as_deref() == Some("svc-local") && e.grant_type.as_deref() == Some("client_credentials")));
    let got: Vec<(&str, u16, Option<&str>)> = log.iter().map(|e| (e.path.as_str(), e.status, e.fault.as_deref())).collect();
    let default = "/oauth2/default/v1/token";
    assert_eq!(
        got,
        vec![
            (default, 200, None),
            (default, 200, None),
            (default, 200, None),
            (default, 429, None),
            ("/oauth2/v1/token", 400, None),
            (default, 429, None),
            (default, 503, Some("respond")),
            (default, 200, None),
        ]
    );
    let raw = c.get("/_mock/requests?endpoint=token").await.json();
    assert_eq!(
        raw[3],
        json!({"time": "2030-01-01T00:00:25.000Z", "method": "POST", "path": "/oauth2/default/v1/token", "endpoint": "token",
            "grant_type": "client_credentials", "client_id": "svc-local", "status": 429, "refresh_family": null,
            "refresh_generation": null, "fault": null})
    );

    // The System Log: one violation for the window, however many requests were refused in it.
    let v = c.events("system.org.rate_limit.violation").await;
    assert_eq!(v.len(), 1, "{v:?}");
    let e = &v[0];
    assert_eq!(
        (
            e["published"].as_str(),
            e["displayMessage"].as_str(),
            e["severity"].as_str(),
            e["outcome"].clone(),
            e["client"]["id"].as_str(),
            e["target"].clone(),
            e["debugContext"]["debugData"].clone()
        ),
        (
            Some("2030-01-01T00:00:25.000Z"),
            Some("Rate limit violation"),
            Some("WARN"),
            json!({"result": "DENY", "reason": "Rate limit of 3 requests per minute exceeded for /oauth2/default/v1/token"}),
            Some("svc-local"),
            json!([{"id": "/oauth2/default/v1/token", "type": "URL Pattern", "alternateId": "token", "displayName": "/oauth2/default/v1/token", "detailEntry": null}]),
            json!({"requestUri": "/oauth2/default/v1/token", "rateLimitBucket": "token", "rateLimitThreshold": 3,
                "rateLimitSecondsToReset": 35, "rateLimitTimeSpan": 1, "rateLimitTimeUnit": "MINUTES"})
        )
    );
}

#[tokio::test]
async fn management_api_groups_share_the_api_limit_unless_they_have_their_own() {
    let idp = idp_with(with_limits(|l| {
        l.api = Some(2);
        l.api_logs = Some(100);
    }))
    .await;
    let c = Client::new(&idp);
    let users = api(&c, Method::GET, "/api/v1/users", None).await;
    assert_eq!((users.status, rate_headers(&users)), (StatusCode::OK, expect_headers(2, 1, T0 + 60)));
    let groups = api(&c, Method::GET, "/api/v1/groups", None).await;
    assert_eq!((groups.status, rate_headers(&groups)), (StatusCode::OK, expect_headers(2, 0, T0 + 60)));
    // Refused before the SSWS check: the limiter comes first.
    let apps = c.get("/api/v1/apps").await;
    assert_rate_limited(&apps);
    assert_eq!(rate_headers(&apps), expect_headers(2, 0, T0 + 60));
    // Nothing changed: the create was refused.
    let create = api(&c, Method::POST, "/api/v1/groups", Some(&json!({"profile": {"name": "Refused"}}))).await;
    assert_rate_limited(&create);
    // The System Log has a bucket of its own; authn and the protocol endpoints are untouched.
    let v = c.events("system.org.rate_limit.violation").await;
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0]["target"][0]["id"].as_str(), v[0]["debugContext"]["debugData"]["requestUri"].as_str(), v[0]["client"]["id"].as_str()),
        (Some("/api/v1"), Some("/api/v1/apps"), None)
    );
    assert_eq!(c.events("group.lifecycle.create").await.len(), 0);
    let (s, _) = c.authn_raw(ALICE, PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    // The mock's own controls are never limited and carry no rate-limit headers.
    let clock = c.get("/_mock/clock").await;
    assert_eq!((clock.status, rate_headers(&clock)), (StatusCode::OK, (None, None, None)));
    c.advance(60).await;
    let again = api(&c, Method::GET, "/api/v1/apps", None).await;
    assert_eq!((again.status, rate_headers(&again)), (StatusCode::OK, expect_headers(2, 1, T0 + 120)));
}

#[tokio::test]
async fn without_limits_headers_report_the_default_and_nothing_is_refused() {
    let idp = idp().await;
    let c = Client::new(&idp);
    for remaining in [599, 598] {
        let r = api(&c, Method::GET, "/api/v1/users", None).await;
        assert_eq!((r.status, rate_headers(&r)), (StatusCode::OK, expect_headers(600, remaining, T0 + 60)));
    }
    // Protocol answers carry them too, counted per bucket and server.
    let keys = c.get(&Server::DEFAULT.endpoint("keys")).await;
    assert_eq!(rate_headers(&keys), expect_headers(600, 599, T0 + 60));
    let disc = c.get(&Server::Org.discovery_path()).await;
    assert_eq!(rate_headers(&disc), expect_headers(600, 599, T0 + 60));
    c.advance(90).await;
    let r = api(&c, Method::GET, "/api/v1/users", None).await;
    assert_eq!(rate_headers(&r), expect_headers(600, 599, T0 + 120));
    let r = c.get("/_mock/rate-limits").await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    assert!(c.events("system.org.rate_limit.violation").await.is_empty());
}

#[tokio::test]
async fn limits_change_at_run_time_and_reset_restores_the_tenant_s() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let keys = Server::DEFAULT.endpoint("keys");
    assert_eq!(c.get(&keys).await.status, StatusCode::OK);
    // The count of the window is kept: one keys request already happened, so a limit of 2 allows one more.
    let set = admin.set_rate_limits(&RateLimits { keys: Some(2), ..Default::default() }).await.unwrap();
    assert_eq!(set, RateLimits { keys: Some(2), ..Default::default() });
    assert_eq!(c.get("/_mock/rate-limits").await.json(), json!({"keys": 2}));
    let second = c.get(&keys).await;
    assert_eq!((second.status, rate_headers(&second)), (StatusCode::OK, expect_headers(2, 0, T0 + 60)));
    assert_rate_limited(&c.get(&keys).await);
    // Other servers' keys are other buckets.
    assert_eq!(c.get(&Server::Org.endpoint("keys")).await.status, StatusCode::OK);

    // Bad bodies are Okta's validation error naming the field.
    let put = |body: &'static str| {
        let c = c.clone();
        async move {
            Reply::from(c.http.put(c.url("/_mock/rate-limits")).header("content-type", "application/json").body(body).send().await.unwrap())
                .await
        }
    };
    for (body, cause) in [
        (r#"{"keys": 0}"#, "keys: must be between 1 and 1000000 requests per minute, got 0".to_string()),
        (r#"{"keys": "many"}"#, format!("keys: invalid type: string \"many\", {WHOLE}")),
        (r#"{"keys": 2.5}"#, format!("keys: invalid type: floating point `2.5`, {WHOLE}")),
        (r#"{"keys": [5]}"#, format!("keys: invalid type: sequence, {WHOLE}")),
        (r#"{"keys": 1e30}"#, "keys: must be between 1 and 1000000 requests per minute, got 1000000000000000000000000000000".to_string()),
        (
            r#"{"keys": 99999999999999999999}"#,
            "keys: must be between 1 and 1000000 requests per minute, got 100000000000000000000".to_string(),
        ),
        (
            r#"{"tokens": 5}"#,
            format!(
                "tokens: unknown field `tokens`, expected one of {}",
                Bucket::ALL.iter().map(|b| format!("`{}`", b.as_str())).collect::<Vec<_>>().join(", ")
            ),
        ),
    ] {
        let r = put(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let b = r.json();
        assert_eq!(b, okta_error_with_cause(&b, "E0000001", "Api validation failed: rate_limits", cause), "{body}");
    }
    // A body that is not one JSON object is Okta's E0000003, as on /api/v1: trailing text is not ignored, and
    // an array is not read by position (`[1]` is not `{"authorize": 1}`, `[]` does not turn every limit off).
    for (body, cause) in [
        (r#"{"keys": 5} trailing"#, "trailing characters"),
        (r#"{"keys": 5}{}"#, "trailing characters"),
        (r#"{"keys": 5"#, "EOF while parsing an object"),
        ("keys=5", "expected value"),
        ("nope", "expected ident"),
        ("[1]", "the body must be a JSON object"),
        ("[]", "the body must be a JSON object"),
        ("null", "the body must be a JSON object"),
        ("5", "the body must be a JSON object"),
        (r#""keys""#, "the body must be a JSON object"),
    ] {
        let r = put(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let b = r.json();
        assert_eq!(b, okta_error_with_cause(&b, "E0000003", "The request body was not well-formed.", cause), "{body}");
    }
    assert_eq!(admin.rate_limits().await.unwrap(), RateLimits { keys: Some(2), ..Default::default() });
    // `{}` (or no body) turns every limit off.
    let r = put("").await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    let after = c.get(&keys).await;
    assert_eq!((after.status, rate_headers(&after)), (StatusCode::OK, expect_headers(600, 597, T0 + 60)));

    // A reset to a tenant with limits enforces them; a plain reset returns to the configured (none).
    admin.reset_to(&with_limits(|l| l.authn = Some(1))).await.unwrap();
    assert_eq!(admin.rate_limits().await.unwrap(), RateLimits { authn: Some(1), ..Default::default() });
    assert_eq!(c.authn_raw(ALICE, PASSWORD).await.0, StatusCode::OK);
    let (s, b) = c.authn_raw(ALICE, PASSWORD).await;
    assert_eq!((s, b["errorCode"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("E0000047")));
    for (limits, cause) in [
        (json!({"authn": -1}), "tenant.rate_limits.authn: must be between 1 and 1000000 requests per minute, got -1".to_string()),
        (json!({"authn": "5"}), format!("tenant.rate_limits.authn: invalid type: string \"5\", {WHOLE}")),
        (json!([5]), "tenant.rate_limits: invalid type: sequence, expected an object of bucket: limit".to_string()),
        (json!(null), "tenant.rate_limits: invalid type: null, expected an object of bucket: limit".to_string()),
    ] {
        let bad = c.post_json("/_mock/reset", &json!({"tenant": {"rate_limits": limits}})).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{limits}");
        let b = bad.json();
        assert_eq!(b, okta_error_with_cause(&b, "E0000001", "Api validation failed", cause), "{limits}");
    }
    // Nothing changed: authn is still used up.
    assert_eq!(c.authn_raw(ALICE, PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);
    admin.reset().await.unwrap();
    assert_eq!(admin.rate_limits().await.unwrap(), RateLimits::default());
    assert_eq!(c.authn_raw(ALICE, PASSWORD).await.0, StatusCode::OK);
    assert_eq!(c.authn_raw(ALICE, PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_refused_authorize_is_okta_s_error_page() {
    let idp = idp_with(with_limits(|l| l.authorize = Some(1))).await;
    let c = Client::new(&idp);
    let first = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID)).await;
    assert_eq!(first.status, StatusCode::FOUND);
    assert_eq!(rate_headers(&first), expect_headers(1, 0, T0 + 60));
    let second = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID)).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(error_page(&second.body), Some(("E0000047".into(), RATE_LIMITED.into())));
    assert_eq!(rate_headers(&second), expect_headers(1, 0, T0 + 60));
    let log = AdminClient::for_idp(&idp).requests_to(Endpoint::Authorize).await.unwrap();
    assert_eq!(
        log.iter().map(|e| (e.status, e.client_id.as_deref())).collect::<Vec<_>>(),
        vec![(302, Some(CLIENT_ID)), (429, Some(CLIENT_ID))]
    );
    let v = c.events("system.org.rate_limit.violation").await;
    assert_eq!(
        (v.len(), v[0]["target"][0]["id"].as_str(), v[0]["client"]["id"].as_str()),
        (1, Some("/oauth2/default/v1/authorize"), Some(CLIENT_ID))
    );
}

#[tokio::test]
async fn limits_and_servers_changed_at_run_time_survive_a_restart_with_a_state_file() {
    use mock_idp::{MockIdp, Options};
    let dir = std::env::temp_dir().join(format!("mock-idp-rate-limits-{}-{}", std::process::id(), random_string()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let idp = MockIdp::start(Options { state_file: Some(state.clone()), ..Options::default() }).await.unwrap();
    let addr = idp.addr();
    let admin = AdminClient::for_idp(&idp);
    admin.set_rate_limits(&RateLimits { token: Some(7), api_users: Some(9), ..Default::default() }).await.unwrap();
    let s = admin.create_server(&mock_idp::client::NewAuthorizationServer::new("Kept", "api://kept", "survives")).await.unwrap();
    admin.deactivate_server(&s.id).await.unwrap();
    idp.shutdown().await;

    // The same address (the issuer is in the file): `shutdown` returned once the old server let go of it.
    let l = tokio::net::TcpListener::bind(addr).await.expect("the address is free again");
    let idp = MockIdp::serve(l, Options { addr, state_file: Some(state.clone()), ..Options::default() }).await.unwrap();
    let admin = AdminClient::for_idp(&idp);
    assert_eq!(admin.rate_limits().await.unwrap(), RateLimits { token: Some(7), api_users: Some(9), ..Default::default() });
    let c = Client::new(&idp);
    let r = api(&c, Method::GET, "/api/v1/users", None).await;
    assert_eq!(rate_headers(&r), expect_headers(9, 8, T0 + 60));
    let kept = admin.get_server(&s.id).await.unwrap();
    assert_eq!((kept.name.as_str(), kept.status.as_str(), kept.issuer), ("Kept", "INACTIVE", idp.issuer(&s.id)));
    admin.activate_server(&s.id).await.unwrap();
    assert_eq!(c.get(&format!("/oauth2/{}/.well-known/openid-configuration", s.id)).await.status, StatusCode::OK);
    idp.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
