//! Integration tests of the mock-only controls (issue 4): fault rules (`respond`, `delay_ms`,
//! `drop_after_commit`, `hold`), their counting and matching, the request log, and reset. Each action is
//! shown doing what it says over real HTTP: the barrier lets N requests go together, a dropped response
//! leaves the rotation committed, a 503 carries Okta's body.

use std::time::{Duration, Instant};

use mock_idp::client::AdminClient;
use mock_idp::core::faults::{Action, Endpoint, Hold, Respond, RuleSpec};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::*;

const T0_ISO: &str = "2030-01-01T00:00:00.000Z";

async fn sign_in(c: &Client, user: &str) -> Tokens {
    c.login(Server::DEFAULT, user, PASSWORD, "openid profile email offline_access").await
}

async fn refresh(c: &Client, rt: &str) -> (StatusCode, Value) {
    c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), rt, None).await
}

fn respond(status: u16) -> Action {
    Action::Respond(Respond { status, body: None, headers: Default::default() })
}

/// Waits (polling the control API) until `n` requests wait at a hold rule's barrier.
async fn wait_until_waiting(admin: &AdminClient, id: &str, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if admin.fault(id).await.unwrap().waiting == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "{n} requests never waited at {id}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn requests_json(v: &Value) -> Vec<Value> {
    v.as_array().expect("the request log is an array").clone()
}

// ---------------------------------------------------------------------------------------------------
// respond

#[tokio::test]
async fn respond_503_at_token_is_okta_shaped_and_times_are_counted() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, ALICE).await;
    let rule = json!({"endpoint": "token", "grant_type": "refresh_token", "client_id": "bsr-local", "times": 1, "action": {"respond": {"status": 503}}});
    let r = c.post_json("/_mock/faults", &rule).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"id": "flt_1"})));

    let first = c
        .post_form(
            &Server::DEFAULT.endpoint("token"),
            Auth::BSR,
            &[("grant_type", "refresh_token"), ("refresh_token", t.refresh_token.as_deref().unwrap())],
        )
        .await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        first.json(),
        json!({"error": "temporarily_unavailable", "error_description": "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."})
    );
    assert_eq!(first.header("content-type").as_deref(), Some("application/json;charset=UTF-8"));
    assert!(first.header("x-okta-request-id").is_some());
    // Used up: the same token now works, and it was not rotated by the faulted request.
    let (s, b) = refresh(&c, t.refresh_token.as_deref().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        c.get("/_mock/faults").await.json(),
        json!([{"id": "flt_1", "endpoint": "token", "grant_type": "refresh_token", "client_id": "bsr-local", "times": 1,
            "action": {"respond": {"status": 503}}, "remaining": 0, "matched": 1}])
    );
    let log = requests_json(&c.get("/_mock/requests?endpoint=token").await.json());
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[1]["status"].clone(), log[1]["fault"].clone(), log[1]["refresh_generation"].clone()),
        (json!(503), json!("respond"), Value::Null),
        "the handler never ran, so no family was looked up"
    );
    assert_eq!(
        (log[2]["status"].clone(), log[2]["fault"].clone(), log[2]["refresh_generation"].clone()),
        (json!(200), Value::Null, json!(0))
    );
    // The faulted request left no trace in the System Log: refresh tokens were granted at the code
    // exchange and at the one successful refresh.
    assert_eq!(c.events("app.oauth2.as.token.grant.refresh_token").await.len(), 2);
}

#[tokio::test]
async fn respond_shapes_per_endpoint() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, ALICE).await;
    admin.add_fault(&RuleSpec::new(Endpoint::Authn, respond(429))).await.unwrap();
    admin.add_fault(&RuleSpec::new(Endpoint::Token, respond(429)).grant_type("refresh_token")).await.unwrap();
    admin.add_fault(&RuleSpec::new(Endpoint::Keys, respond(500))).await.unwrap();
    admin.add_fault(&RuleSpec::new(Endpoint::Authorize, respond(503))).await.unwrap();
    admin.add_fault(&RuleSpec::new(Endpoint::Userinfo, respond(401))).await.unwrap();
    admin.add_fault(&RuleSpec::new(Endpoint::Discovery, respond(503))).await.unwrap();
    admin.add_fault(&RuleSpec::new(Endpoint::Api, respond(429))).await.unwrap();

    let authn = c.post_json("/api/v1/authn", &json!({"username": ALICE, "password": PASSWORD})).await;
    assert_eq!(authn.status, StatusCode::TOO_MANY_REQUESTS);
    let b = authn.json();
    assert_eq!(
        b,
        json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests.", "errorLink": "E0000047", "errorId": b["errorId"], "errorCauses": []})
    );
    assert_eq!(
        (authn.header("x-rate-limit-limit"), authn.header("x-rate-limit-remaining"), authn.header("x-rate-limit-reset")),
        (Some("600".into()), Some("0".into()), Some((T0 + 60).to_string()))
    );
    let tok = refresh(&c, t.refresh_token.as_deref().unwrap()).await;
    assert_eq!(
        tok,
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "invalid_grant", "error_description": "API call exceeded rate limit due to too many requests."})
        )
    );
    let keys = c.get(&Server::DEFAULT.endpoint("keys")).await;
    assert_eq!(keys.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        (keys.json()["errorCode"].as_str(), keys.json()["errorSummary"].as_str()),
        (Some("E0000009"), Some("Internal Server Error"))
    );
    let authz = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID)).await;
    assert_eq!(authz.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        error_page(&authz.body),
        Some(("temporarily_unavailable".into(), "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server.".into()))
    );
    let ui = c.userinfo(Server::DEFAULT, &t.access_token).await;
    assert_eq!((ui.status, ui.body.as_str()), (StatusCode::UNAUTHORIZED, ""));
    assert_eq!(
        ui.header("www-authenticate").as_deref(),
        Some("Bearer error=\"invalid_token\", error_description=\"The access token is invalid\"")
    );
    let disc = c.get(&Server::DEFAULT.discovery_path()).await;
    assert_eq!((disc.status.as_u16(), disc.json()["errorCode"].as_str()), (503, Some("E0000010")));
    let api = c.http.get(c.url("/api/v1/users")).header("authorization", format!("SSWS {ADMIN_TOKEN}")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.headers()["x-rate-limit-remaining"], "0");
    // Unaffected: the org server's discovery (rules match endpoints, and discovery rules both servers).
    assert_eq!(c.get(&Server::Org.endpoint("keys")).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(c.get("/_mock/health").await.status, StatusCode::OK, "mock controls are never faulted");
}

#[tokio::test]
async fn respond_body_and_headers_override() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let rule = json!({"endpoint": "keys", "action": {"respond": {"status": 418, "body": "teapot", "headers": {"retry-after": "5"}}}});
    assert_eq!(c.post_json("/_mock/faults", &rule).await.status, StatusCode::OK);
    let rule = json!({"endpoint": "introspect", "action": {"respond": {"status": 400, "body": {"error": "invalid_request", "error_description": "custom"}}}});
    assert_eq!(c.post_json("/_mock/faults", &rule).await.status, StatusCode::OK);
    let k = c.get(&Server::DEFAULT.endpoint("keys")).await;
    assert_eq!((k.status.as_u16(), k.body.as_str()), (418, "teapot"));
    assert_eq!(k.header("retry-after").as_deref(), Some("5"));
    assert_eq!(k.header("content-type").as_deref(), Some("text/plain;charset=UTF-8"));
    let i = c.introspect(Server::DEFAULT, Auth::BSR, "whatever", None).await;
    assert_eq!(i, (StatusCode::BAD_REQUEST, json!({"error": "invalid_request", "error_description": "custom"})));
}

#[tokio::test]
async fn rules_match_grant_type_and_client_and_apply_until_removed() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, ALICE).await;
    let other = admin.add_fault(&RuleSpec::new(Endpoint::Token, respond(500)).client_id("someone-else")).await.unwrap();
    let code_only = admin.add_fault(&RuleSpec::new(Endpoint::Token, respond(500)).grant_type("authorization_code")).await.unwrap();
    assert_eq!(refresh(&c, t.refresh_token.as_deref().unwrap()).await.0, StatusCode::OK);
    assert_eq!(admin.fault(&other).await.unwrap().matched, 0);
    assert_eq!(admin.fault(&code_only).await.unwrap().matched, 0);
    // No `times`: every matching request, until the rule is removed.
    let always = admin.add_fault(&RuleSpec::new(Endpoint::Keys, respond(503))).await.unwrap();
    for _ in 0..3 {
        assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let info = admin.fault(&always).await.unwrap();
    assert_eq!((info.times, info.remaining, info.matched), (None, None, 3));
    admin.remove_fault(&always).await.unwrap();
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    // The first matching rule wins; a second rule never stacks on it.
    let a = admin.add_fault(&RuleSpec::new(Endpoint::Keys, respond(502)).times(1)).await.unwrap();
    let b = admin.add_fault(&RuleSpec::new(Endpoint::Keys, respond(504)).times(1)).await.unwrap();
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status.as_u16(), 502);
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status.as_u16(), 504);
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status.as_u16(), 200);
    assert_eq!((admin.fault(&a).await.unwrap().remaining, admin.fault(&b).await.unwrap().remaining), (Some(0), Some(0)));
    admin.clear_faults().await.unwrap();
    assert_eq!(admin.faults().await.unwrap(), vec![]);
    // A cleared id stays unknown; a new rule gets a new id.
    assert_eq!(admin.add_fault(&RuleSpec::new(Endpoint::Keys, respond(503))).await.unwrap(), "flt_6");
}

// ---------------------------------------------------------------------------------------------------
// delay

#[tokio::test]
async fn delay_waits_in_wall_time_and_leaves_the_tenant_clock_alone() {
    let idp = idp().await;
    let c = Client::new(&idp);
    assert_eq!(
        c.post_json("/_mock/faults", &json!({"endpoint": "keys", "times": 1, "action": {"delay_ms": 250}})).await.status,
        StatusCode::OK
    );
    let start = Instant::now();
    let r = c.get(&Server::DEFAULT.endpoint("keys")).await;
    let took = start.elapsed();
    assert_eq!(r.status, StatusCode::OK);
    assert!(took >= Duration::from_millis(250), "took {took:?}");
    let quick = Instant::now();
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    assert!(quick.elapsed() < Duration::from_millis(250), "the rule was used up");
    assert_eq!(c.clock().await["now"], T0_ISO);
    let log = requests_json(&c.get("/_mock/requests?endpoint=keys").await.json());
    assert_eq!(log.iter().map(|e| e["fault"].clone()).collect::<Vec<_>>(), vec![json!("delay"), Value::Null]);
}

// ---------------------------------------------------------------------------------------------------
// drop_after_commit

#[tokio::test]
async fn drop_after_commit_loses_the_response_but_keeps_the_rotation() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, ALICE).await;
    let r0 = t.refresh_token.clone().unwrap();
    let id_before = admin.refresh_tokens(ALICE, CLIENT_ID).await.unwrap()[0].id.clone();
    admin
        .add_fault(&RuleSpec::new(Endpoint::Token, Action::DropAfterCommit).grant_type("refresh_token").client_id(CLIENT_ID).times(1))
        .await
        .unwrap();

    // A real client sees a broken connection, not a response.
    let sent = c
        .http
        .post(c.url(&Server::DEFAULT.endpoint("token")))
        .header("authorization", basic(CLIENT_ID, CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[("grant_type", "refresh_token"), ("refresh_token", &r0)]))
        .send()
        .await;
    let err = sent.expect_err("no response reaches the client");
    assert!(err.is_request() && !err.is_timeout() && err.status().is_none(), "{err:?}");

    // The rotation committed: the family's current token is a new one.
    let id_after = admin.refresh_tokens(ALICE, CLIENT_ID).await.unwrap()[0].id.clone();
    assert_ne!(id_after, id_before);
    let log = admin.requests_to(Endpoint::Token).await.unwrap();
    let dropped = log.last().unwrap();
    assert_eq!(
        (
            dropped.grant_type.as_deref(),
            dropped.status,
            dropped.refresh_family.as_deref(),
            dropped.refresh_generation,
            dropped.fault.as_deref()
        ),
        (Some("refresh_token"), 200, Some("rtf_1"), Some(0), Some("drop_after_commit"))
    );

    // The client retries with the old token inside the 15 s grace window: it is the predecessor now, and
    // gets the successor the lost response carried (no second rotation).
    c.advance(10).await;
    let (s, b) = refresh(&c, &r0).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r1 = b["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r0);
    assert_eq!(admin.refresh_tokens(ALICE, CLIENT_ID).await.unwrap()[0].id, id_after);
    let retry = admin.requests_to(Endpoint::Token).await.unwrap().last().cloned().unwrap();
    assert_eq!((retry.refresh_generation, retry.fault), (Some(0), None));
    // The successor works; after the window the old token is reuse and the family dies.
    c.advance(6).await;
    assert_eq!(
        refresh(&c, &r0).await,
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}))
    );
    assert_eq!(refresh(&c, &r1).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(c.events("app.oauth2.as.token.detect_reuse").await.len(), 1);
    idp.check_invariants().unwrap();
}

// ---------------------------------------------------------------------------------------------------
// hold

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_releases_n_requests_together() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, ALICE).await;
    let rt = t.refresh_token.clone().unwrap();
    let id = admin
        .add_fault(&RuleSpec::new(Endpoint::Token, Action::Hold(Hold { until_waiting: 2 })).grant_type("refresh_token").times(2))
        .await
        .unwrap();
    let spawn = |c: Client, rt: String| tokio::spawn(async move { refresh(&c, &rt).await });
    let first = spawn(c.clone(), rt.clone());
    wait_until_waiting(&admin, &id, 1).await;
    // Still held while it is alone at the barrier (and other endpoints go on).
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    assert!(!first.is_finished(), "the first refresh waits for the second");
    let second = spawn(c.clone(), rt.clone());
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    // Both went through at the same instant: one rotated, the other was forgiven by the 15 s grace
    // window and got the same successor.
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"]);
    let info = admin.fault(&id).await.unwrap();
    assert_eq!((info.remaining, info.matched, info.waiting), (Some(0), 2, Some(0)));
    let held: Vec<_> =
        admin.requests_to(Endpoint::Token).await.unwrap().into_iter().filter(|e| e.fault.as_deref() == Some("hold")).collect();
    assert_eq!(held.len(), 2);
    assert!(
        held.iter().all(|e| e.status == 200
            && e.refresh_generation == Some(0)
            && e.refresh_family.as_deref() == Some("rtf_1")
            && e.time == T0_ISO)
    );
    // Granted at the code exchange, then once per released refresh.
    assert_eq!(c.events("app.oauth2.as.token.grant.refresh_token").await.len(), 3);
    assert!(c.events("app.oauth2.as.token.detect_reuse").await.is_empty());
    idp.check_invariants().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_leeway_zero_puts_two_refreshes_on_one_instant_and_one_loses() {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    if let Some(rt) = cfg.apps[0].settings.oauth_client.refresh_token.as_mut() {
        rt.leeway = 0;
    }
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, BOB).await;
    let rt = t.refresh_token.clone().unwrap();
    admin
        .add_fault(&RuleSpec::new(Endpoint::Token, Action::Hold(Hold { until_waiting: 2 })).grant_type("refresh_token").times(2))
        .await
        .unwrap();
    let (c1, c2, r1, r2) = (c.clone(), c.clone(), rt.clone(), rt.clone());
    let (a, b) = tokio::join!(async move { refresh(&c1, &r1).await }, async move { refresh(&c2, &r2).await });
    let mut statuses = vec![a.0.as_u16(), b.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 400], "{a:?} {b:?}");
    assert_eq!(c.events("app.oauth2.as.token.detect_reuse").await.len(), 1);
}

#[tokio::test]
async fn release_lets_held_requests_go_and_removal_does_too() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let id = admin.add_fault(&RuleSpec::new(Endpoint::Keys, Action::Hold(Hold { until_waiting: 5 }))).await.unwrap();
    let cc = c.clone();
    let held = tokio::spawn(async move { cc.get(&Server::DEFAULT.endpoint("keys")).await.status });
    wait_until_waiting(&admin, &id, 1).await;
    let r = c.post_json(&format!("/_mock/faults/{id}/release"), &json!({})).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"released": 1})));
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    assert_eq!(admin.release_fault(&id).await.unwrap(), 0);
    // Deleting the rule lets its waiters go as well.
    let cc = c.clone();
    let held = tokio::spawn(async move { cc.get(&Server::DEFAULT.endpoint("keys")).await.status });
    wait_until_waiting(&admin, &id, 1).await;
    assert_eq!(c.http.delete(c.url(&format!("/_mock/faults/{id}"))).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    let unknown = c.post_json(&format!("/_mock/faults/{id}/release"), &json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["errorSummary"], format!("Not found: Resource not found: {id} (FaultRule)"));
}

// ---------------------------------------------------------------------------------------------------
// The request log.

#[tokio::test]
async fn request_log_lists_every_request_with_all_keys_and_no_secrets() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, ALICE).await;
    let (_, b1) = refresh(&c, t.refresh_token.as_deref().unwrap()).await;
    let r1 = b1["refresh_token"].as_str().unwrap().to_string();
    let (_, b2) = refresh(&c, &r1).await;
    let bad = refresh(&c, "not-a-refresh-token").await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::OK);
    let users = c.http.get(c.url("/api/v1/users")).header("authorization", format!("SSWS {ADMIN_TOKEN}")).send().await.unwrap();
    assert_eq!(users.status(), StatusCode::OK);
    let r = c.get("/_mock/requests").await;
    assert_eq!(r.status, StatusCode::OK);
    let e = |method: &str, path: &str, endpoint: &str, gt: Value, cid: Value, status: u16, fam: Value, generation: Value| {
        json!({"time": T0_ISO, "method": method, "path": path, "endpoint": endpoint, "grant_type": gt, "client_id": cid, "status": status,
            "refresh_family": fam, "refresh_generation": generation, "fault": null})
    };
    let n = Value::Null;
    assert_eq!(
        r.json(),
        json!([
            e("POST", "/api/v1/authn", "authn", n.clone(), n.clone(), 200, n.clone(), n.clone()),
            e("GET", "/oauth2/default/v1/authorize", "authorize", n.clone(), json!(CLIENT_ID), 302, n.clone(), n.clone()),
            e("POST", "/oauth2/default/v1/token", "token", json!("authorization_code"), json!(CLIENT_ID), 200, n.clone(), n.clone()),
            e("POST", "/oauth2/default/v1/token", "token", json!("refresh_token"), json!(CLIENT_ID), 200, json!("rtf_1"), json!(0)),
            e("POST", "/oauth2/default/v1/token", "token", json!("refresh_token"), json!(CLIENT_ID), 200, json!("rtf_1"), json!(1)),
            e("POST", "/oauth2/default/v1/token", "token", json!("refresh_token"), json!(CLIENT_ID), 400, n.clone(), n.clone()),
            e("GET", "/oauth2/default/v1/keys", "keys", n.clone(), n.clone(), 200, n.clone(), n.clone()),
            e("GET", "/oauth2/default/v1/userinfo", "userinfo", n.clone(), n.clone(), 200, n.clone(), n.clone()),
            e("GET", "/api/v1/users", "api", n.clone(), n.clone(), 200, n.clone(), n.clone()),
        ])
    );
    // Never a token, code or secret.
    for secret in
        [t.refresh_token.as_deref().unwrap(), &r1, b2["refresh_token"].as_str().unwrap(), &t.access_token, CLIENT_SECRET, PASSWORD]
    {
        assert!(!r.body.contains(secret), "the log leaks a secret");
    }
    // "Exactly one JWKS fetch", as scenarios ask.
    assert_eq!(requests_json(&c.get("/_mock/requests?endpoint=keys").await.json()).len(), 1);
    let bad = c.get("/_mock/requests?endpoint=tokens").await;
    assert_eq!(
        (bad.status.as_u16(), bad.json()["errorCauses"][0]["errorSummary"].as_str()),
        (400, Some("endpoint: unknown endpoint tokens"))
    );
    // The log records the tenant clock's time at arrival, and can be emptied.
    c.advance(90).await;
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    assert_eq!(requests_json(&c.get("/_mock/requests?endpoint=keys").await.json())[1]["time"], "2030-01-01T00:01:30.000Z");
    assert_eq!(c.http.delete(c.url("/_mock/requests")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(c.get("/_mock/requests").await.json(), json!([]));
}

// ---------------------------------------------------------------------------------------------------
// Reset and validation.

#[tokio::test]
async fn reset_clears_faults_held_requests_and_logs() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, ALICE).await;
    admin.add_fault(&RuleSpec::new(Endpoint::Keys, respond(503))).await.unwrap();
    let id = admin.add_fault(&RuleSpec::new(Endpoint::Token, Action::Hold(Hold { until_waiting: 9 }))).await.unwrap();
    let (cc, rt) = (c.clone(), t.refresh_token.clone().unwrap());
    let held = tokio::spawn(async move { refresh(&cc, &rt).await });
    wait_until_waiting(&admin, &id, 1).await;
    let r = c.http.post(c.url("/_mock/reset")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The held refresh went on against the rebuilt tenant, where its token is unknown.
    assert_eq!(
        held.await.unwrap(),
        (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}))
    );
    assert_eq!(c.get("/_mock/faults").await.json(), json!([]));
    assert_eq!(c.get(&Server::DEFAULT.endpoint("keys")).await.status, StatusCode::OK);
    let log = requests_json(&c.get("/_mock/requests").await.json());
    // Only what came after the reset is left: the held refresh finished after it, then the keys fetch.
    assert_eq!(log.iter().map(|e| e["endpoint"].as_str().unwrap().to_string()).collect::<Vec<_>>(), vec!["token", "keys"]);
    admin.reset().await.unwrap();
    assert_eq!(admin.requests().await.unwrap(), vec![]);
}

#[tokio::test]
async fn fault_rules_are_validated_with_okta_errors() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let post = async |body: &str| {
        let r = c.http.post(c.url("/_mock/faults")).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
        Reply::from(r).await
    };
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("", vec!["endpoint: The field cannot be left blank", "action: The field cannot be left blank"]),
        (
            r#"{"endpoint": "token", "times": 0, "action": "drop_after_commit"}"#,
            vec!["times: must be at least 1 (omit it for every request)"],
        ),
        (
            r#"{"endpoint": "token", "action": {"respond": {"status": 99}}}"#,
            vec!["action.respond.status: must be between 200 and 599, got 99"],
        ),
        (r#"{"endpoint": "token", "action": {"delay_ms": 600001}}"#, vec!["action.delay_ms: must be at most 600000, got 600001"]),
        (r#"{"endpoint": "token", "action": {"hold": {"until_waiting": 0}}}"#, vec!["action.hold.until_waiting: must be at least 1"]),
        (
            r#"{"endpoint": "login", "action": "drop_after_commit"}"#,
            vec!["endpoint: the hosted sign-in page cannot be faulted; fault authorize or authn instead"],
        ),
        (
            r#"{"endpoint": "token", "action": {"respond": {"status": 500, "headers": {"bad header": "x"}}}}"#,
            vec!["action.respond.headers: not a valid header: bad header"],
        ),
    ];
    for (body, causes) in cases {
        let r = post(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let b = r.json();
        assert_eq!((b["errorCode"].as_str(), b["errorSummary"].as_str()), (Some("E0000001"), Some("Api validation failed")), "{body}");
        let got: Vec<&str> = b["errorCauses"].as_array().unwrap().iter().map(|c| c["errorSummary"].as_str().unwrap()).collect();
        assert_eq!(got, causes, "{body}");
    }
    for body in [
        r#"{"endpoint": "tokens", "action": "drop_after_commit"}"#,
        r#"{"endpoint": "token"}"#,
        r#"{"endpoint": "token", "action": "explode"}"#,
        r#"{"endpoint": "token", "action": "drop_after_commit", "extra": 1}"#,
    ] {
        let r = post(body).await;
        assert_eq!((r.status.as_u16(), r.json()["errorCode"].as_str()), (400, Some("E0000001")), "{body}: {}", r.body);
    }
    // A body that is not one JSON object is E0000003, as the Conventions table says.
    for (body, cause) in [
        ("{", "EOF while parsing an object"),
        ("endpoint=token", "expected value"),
        (r#"{"endpoint": "token", "action": "drop_after_commit"} x"#, "trailing characters"),
        ("[1]", "the body must be a JSON object"),
        ("null", "the body must be a JSON object"),
    ] {
        let r = post(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let b = r.json();
        assert_eq!(b, okta_error_with_cause(&b, "E0000003", "The request body was not well-formed.", cause), "{body}");
    }
    assert_eq!(c.get("/_mock/faults").await.json(), json!([]));
    let missing = c.get("/_mock/faults/flt_9").await;
    assert_eq!(
        (missing.status.as_u16(), missing.json()["errorSummary"].as_str()),
        (404, Some("Not found: Resource not found: flt_9 (FaultRule)"))
    );
    assert_eq!(c.http.delete(c.url("/_mock/faults/flt_9")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(c.http.delete(c.url("/_mock/faults")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
}
