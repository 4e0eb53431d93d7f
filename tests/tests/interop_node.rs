//! Okta's own npm SDKs against mock-idp, unmodified (issue 8): `@okta/jwt-verifier` (tests/interop/
//! jwt-verifier.test.js, run with `node --test`) and `@okta/oidc-middleware` in an Express app
//! (tests/interop/express-app), driven over HTTP the way a browser would, and as the scenario runner's
//! external target: the portable scenarios, and the conformance profile with its verdict per requirement.
//!
//! Needs Node.js 20+ and `(cd tests/interop && npm ci)` (scripts/test does both); without them every test
//! fails at once saying so. The IdPs here run on real time (`Clock::system()`): the SDKs check token times
//! against their own clocks. Each test starts its own IdP on a free port; the https cases use `mock-idp`'s
//! TLS mode, with its CA given to Node as `NODE_EXTRA_CA_CERTS` and no SDK testing flag.

mod interop_support;

use std::time::Duration;

use harness::scenario::RunArgs;
use harness::scenario::runner::Outcome;
use harness::scenario::verdict;
use interop_support::*;
use mock_idp::{MockIdp, TenantConfig};
use rstest::rstest;
use serde_json::{Value, json};

const NODE_TEST_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn jwt_verifier_over_http() {
    let idp = idp_real_time(TenantConfig::default_tenant(), false).await;
    node_test("jwt-verifier.test.js", &[("MOCK_IDP_URL", idp.base_url().to_string())], NODE_TEST_TIMEOUT).await;
}

#[tokio::test]
async fn jwt_verifier_over_https_without_testing_flags() {
    let idp = idp_real_time(TenantConfig::default_tenant(), true).await;
    assert!(idp.base_url().starts_with("https://127.0.0.1:"), "{}", idp.base_url());
    let ca = CaFile::write(&idp);
    let env = [("MOCK_IDP_URL", idp.base_url().to_string()), ("NODE_EXTRA_CA_CERTS", ca.path.display().to_string())];
    node_test("jwt-verifier.test.js", &env, NODE_TEST_TIMEOUT).await;
}

/// System Log events of one type.
async fn events(http: &reqwest::Client, idp: &MockIdp, event_type: &str) -> Vec<Value> {
    let r = http
        .get(format!("{}/api/v1/logs", idp.base_url()))
        .query(&[("filter", format!("eventType eq \"{event_type}\""))])
        .header("authorization", "SSWS mock-admin-token")
        .send()
        .await
        .unwrap();
    r.json::<Vec<Value>>().await.unwrap()
}

async fn whoami(b: &Browser, app: &ExpressApp) -> (u16, Value) {
    let r = b.http.get(format!("{}/whoami", app.base_url)).header("accept", "application/json").send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sign in through the hosted page, whoami from userinfo, sign out with forceLogoutAndRevoke.
async fn oidc_middleware_flow(idp: &MockIdp, issuer: &str, prefix: &str, app: &ExpressApp, b: &Browser) {
    let ctx = |step: &str| format!("oidc-middleware ({issuer}), {step}; the app printed:\n{}", app.output());
    assert_eq!(whoami(b, app).await, (401, json!({"error": "not_signed_in"})), "{}", ctx("whoami before signing in"));

    let page = b.browse(&format!("{}/login", app.base_url), Some("alice@example.com"), None).await;
    assert_eq!((page.status, page.url.as_str()), (200, format!("{}/", app.base_url).as_str()), "{}: {page:?}", ctx("sign-in"));
    assert!(page.body.contains("<p id=\"user\">alice@example.com</p>"), "{}: {}", ctx("home page"), page.body);
    // The middleware went to this issuer's authorize endpoint, and came back through its callback.
    let server_path = if prefix.is_empty() { "/oauth2" } else { prefix };
    assert!(page.trail[1].starts_with(&format!("{}{server_path}/v1/authorize?", idp.base_url())), "{:?}", page.trail);
    assert!(page.trail.iter().any(|u| u.starts_with(&format!("{}/authorization-code/callback?code=", app.base_url))), "{:?}", page.trail);
    assert_eq!(
        whoami(b, app).await,
        (200, json!({"email": "alice@example.com", "sub": "00u1alice00000000001", "name": "Alice Example"})),
        "{}",
        ctx("whoami after signing in")
    );

    let log = &b.http;
    let ev = if prefix.is_empty() { "app.oauth2" } else { "app.oauth2.as" };
    assert_eq!(events(log, idp, &format!("{ev}.authorize.code")).await.len(), 1);
    assert_eq!(events(log, idp, &format!("{ev}.token.grant.id_token")).await.len(), 1);

    let out = b.browse(&format!("{}/signout", app.base_url), None, None).await;
    assert_eq!((out.status, out.url.as_str()), (200, format!("{}/logout/callback", app.base_url).as_str()), "{}: {out:?}", ctx("sign-out"));
    assert!(out.body.contains("You are signed out."), "{}", out.body);
    let logout = format!("{}{server_path}/v1/logout?", idp.base_url());
    assert!(out.trail.iter().any(|u| u.starts_with(&logout) && u.contains("&id_token_hint=")), "{:?}", out.trail);
    assert_eq!(whoami(b, app).await, (401, json!({"error": "not_signed_in"})), "{}", ctx("whoami after signing out"));
    // forceLogoutAndRevoke revoked the access token (the only one: no offline_access) and ended the session.
    assert_eq!(events(log, idp, &format!("{ev}.token.revoke")).await.len(), 1, "{}", ctx("revoke"));
    assert_eq!(events(log, idp, "user.session.end").await.len(), 1, "{}", ctx("logout"));
    // A new sign-in shows the hosted page again: the IdP session is gone.
    let again = b.browse(&format!("{}/login", app.base_url), None, None).await;
    assert!(again.url.starts_with(&format!("{}/login/login.htm?fromURI=", idp.base_url())), "{again:?}");
    assert!(again.body.contains("id=\"signin-form\""));
}

fn register_app(idp: &MockIdp, app: &ExpressApp) {
    let (cb, lo) = (format!("{}/authorization-code/callback", app.base_url), format!("{}/logout/callback", app.base_url));
    idp.with_tenant(|t| {
        for a in t.apps.values_mut().filter(|a| a.client_id == "bsr-local") {
            a.redirect_uris.push(cb.clone());
            a.post_logout_redirect_uris.push(lo.clone());
        }
    });
}

#[rstest]
#[case::org_server("")]
#[case::default_server("/oauth2/default")]
#[tokio::test]
async fn oidc_middleware_express_app_signs_in_and_out(#[case] prefix: &str) {
    let idp = idp_real_time(TenantConfig::default_tenant(), false).await;
    let issuer = format!("{}{prefix}", idp.base_url());
    let app = start_express_app(&issuer, &[]).await;
    register_app(&idp, &app);
    oidc_middleware_flow(&idp, &issuer, prefix, &app, &Browser::new(None)).await;
    app.stop().await;
}

#[tokio::test]
async fn oidc_middleware_over_https_without_testing_flags() {
    let idp = idp_real_time(TenantConfig::default_tenant(), true).await;
    let ca = CaFile::write(&idp);
    let issuer = idp.issuer("default");
    let app = start_express_app(&issuer, &[("NODE_EXTRA_CA_CERTS", ca.path.display().to_string())]).await;
    register_app(&idp, &app);
    oidc_middleware_flow(&idp, &issuer, "/oauth2/default", &app, &Browser::new(idp.tls_ca_pem())).await;
    app.stop().await;
}

#[tokio::test]
async fn express_app_passes_the_portable_scenarios_as_an_external_target() {
    let idp = idp_real_time(TenantConfig::default_tenant(), false).await;
    let app = start_express_app(&idp.org_issuer(), &[]).await;
    // The committed target file, on this run's ports.
    let mut target = harness::target::TargetFile::load(&interop_dir().join("express-target.yaml")).unwrap();
    target.base_url = app.base_url.clone();
    target.idp_url = Some(idp.base_url().to_string());
    let root = interop_dir().join("../../scenarios/portable");
    let args = RunArgs {
        paths: vec![root],
        jobs: 1,
        filter: None,
        repeat: 1,
        shard: None,
        idp_url: Some(idp.base_url().to_string()),
        target: None,
        require_all: true,
        junit: None,
        json: None,
        html: None,
        quiet: true,
        browser: Default::default(),
    };
    let list = harness::scenario::select(&args).unwrap_or_else(|e| panic!("scenario files: {e:?}"));
    let reports = harness::scenario::run_all(list, &args, false, Some(target)).await;
    let mut names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["portable-session-outlives-a-short-access-token", "portable-sign-in-whoami-sign-out", "portable-unassigned-user-is-refused"]
    );
    for r in &reports {
        assert!(
            matches!(r.outcome, Outcome::Passed),
            "scenario {} against the Express app (oidc-middleware): {:?}\n{}\nthe app printed:\n{}",
            r.name,
            r.outcome,
            harness::scenario::report::failure_detail(r).unwrap_or_default(),
            app.output()
        );
    }
    app.stop().await;
}

/// The conformance profile (scenarios/conformance, docs/conformance.md) against the Express app: the
/// verdict of every requirement, each failure with the reason it is oidc-middleware's own behaviour (the
/// same against real Okta, not a quirk of the mock):
///
/// - No code-injection defence (RFC 9700 §2.1.1): oidc-middleware 5.5.1 builds openid-client's strategy
///   with `usePKCE: false` (src/oidcUtil.js) and openid-client adds a nonce only for response types with
///   `id_token`, so a code from another authorization request redeems as its own. The same is why the
///   nonce requirements are not applicable and an app that requires PKCE refuses it.
/// - openid-client refetches the JWKS on an unknown kid at most once a minute (`throttle`,
///   lib/helpers/issuer.js), so right after an emergency rotation sign-ins fail until a minute has passed
///   since its last fetch (the profile's first 20 scenarios take a few seconds, so that fetch is recent).
/// - It never refreshes: the session is express-session's, kept from the login's userinfo (with
///   `offline_access` too), so it outlives the access token, an expired refresh token and a deactivated
///   user, and no refresh with rotation or without a nonce ever happens.
/// - Recommended: it accepts `email_verified: false` (it provisions nothing, the app decides) and an `iat`
///   an hour ahead (openid-client checks only that `iat` is a number).
///
/// The profile sleeps in real time (the app's clock cannot be moved): about 25 s.
#[tokio::test]
async fn express_app_conformance_verdict() {
    let idp = idp_real_time(TenantConfig::default_tenant(), false).await;
    let app = start_express_app(&idp.org_issuer(), &[]).await;
    let mut target = harness::target::TargetFile::load(&interop_dir().join("express-target.yaml")).unwrap();
    target.base_url = app.base_url.clone();
    target.idp_url = Some(idp.base_url().to_string());
    let args = RunArgs {
        paths: vec![interop_dir().join("../../scenarios/conformance")],
        jobs: 1,
        filter: None,
        repeat: 1,
        shard: None,
        idp_url: Some(idp.base_url().to_string()),
        target: None,
        require_all: false,
        junit: None,
        json: None,
        html: None,
        quiet: true,
        browser: Default::default(),
    };
    let list = harness::scenario::select(&args).unwrap_or_else(|e| panic!("the profile loads: {e:?}"));
    let rs = harness::scenario::run_all(list, &args, false, Some(target)).await;
    let output = app.output();
    app.stop().await;
    let table = verdict::terminal(&rs);
    let ctx = format!("{table}\nthe app printed:\n{output}");
    let got: Vec<(&str, &str)> = rs.iter().map(|r| (r.name.as_str(), verdict::verdict(r).as_str())).collect();
    assert_eq!(got, EXPRESS_VERDICTS, "{ctx}");
    assert_eq!(
        verdict::conclusion(&rs),
        "conformance: NOT CONFORMANT: 13/19 required met, 5/8 recommended met, 2 not applicable, 1 skipped; failing: \
         conf-authorize-injected-code, conf-key-rotation-new-key-at-once, conf-refresh-rotation-with-grace, \
         conf-refresh-token-expired, conf-refreshed-id-token-without-nonce, conf-user-deactivated",
        "{ctx}"
    );
    assert_eq!(verdict::exit_code(&rs), 1);
    let report = |name: &str| rs.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no {name}"));
    let exchanges = |name: &str| -> Vec<u64> {
        let r = report(name);
        r.idp_requests.iter().filter(|q| q["grant_type"] == "authorization_code").map(|q| q["status"].as_u64().unwrap_or(0)).collect()
    };
    let refreshes = |name: &str| report(name).idp_requests.iter().filter(|q| q["grant_type"] == "refresh_token").count();

    // The injected code was redeemed as the middleware's own (no PKCE binds it, no nonce tells it apart),
    // and it signed the user in.
    let r = report("conf-authorize-injected-code");
    assert!(r.idp_requests.iter().any(|q| q["fault"] == "tamper_authorize:injected_code"), "{ctx}");
    assert_eq!(exchanges("conf-authorize-injected-code"), [200], "{ctx}");
    assert_eq!(
        verdict::evidence(r).0,
        "step 3 (check): session of browser: expected SignedOut, got SignedIn (GET /api/me answered 200 \
         {\"email\":\"alice@example.com\",\"sub\":\"00u1alice00000000001\",\"name\":\"Alice Example\"})"
    );
    // No PKCE: the app that requires it refuses the sign-in at the authorize endpoint.
    let (summary, _) = verdict::evidence(report("conf-pkce-s256"));
    assert_eq!(
        summary,
        "step 1 (the sign-in with PKCE S256 works): status: expected 200, got 401 (body: Sign-in failed invalid_request \
         (PKCE code challenge is required by the application.))"
    );
    assert_eq!(exchanges("conf-pkce-s256"), Vec::<u64>::new());
    // No nonce: the nonce defects never applied although the code was redeemed.
    for name in ["conf-id-token-missing-nonce", "conf-id-token-wrong-nonce"] {
        assert_eq!(
            verdict::evidence(report(name)).0,
            "not exercised: the IdP never applied the fault (for a nonce defect: no nonce was sent)"
        );
    }
    // The emergency rotation: the ID token with the new kid was refused, and no JWKS fetch followed it
    // (openid-client's one-minute throttle).
    let (summary, evidence) = verdict::evidence(report("conf-key-rotation-new-key-at-once"));
    assert_eq!(summary, "step 4 (the ID token is signed with the new key): status: expected 200, got 401 (body: Unauthorized)");
    let log = evidence.split("IdP request log from this step on:\n").nth(1).expect("request-log lines");
    assert!(log.contains("/oauth2/v1/token 200 grant_type=authorization_code"), "{evidence}");
    assert!(!log.contains("/oauth2/v1/keys"), "{evidence}");
    // It never refreshes, so the session outlives what should end it.
    for name in
        ["conf-refresh-rotation-with-grace", "conf-refresh-token-expired", "conf-refreshed-id-token-without-nonce", "conf-user-deactivated"]
    {
        assert_eq!(refreshes(name), 0, "{name}: {ctx}");
    }
    assert_eq!(
        verdict::evidence(report("conf-refresh-rotation-with-grace")).0,
        "step 6 (check): IdP requests endpoint=token grant_type=refresh_token status=200: expected 2, got 0"
    );
    for name in ["conf-refresh-token-expired", "conf-user-deactivated", "conf-id-token-email-unverified", "conf-id-token-iat-in-future"] {
        let (summary, _) = verdict::evidence(report(name));
        assert!(summary.contains("session of browser: expected SignedOut, got SignedIn"), "{name}: {summary}");
    }
}

/// The verdict of every requirement of the profile against the Express app (see the test above for why).
const EXPRESS_VERDICTS: &[(&str, &str)] = &[
    ("conf-authorize-injected-code", "FAIL"),
    ("conf-authorize-wrong-iss-param", "pass"),
    ("conf-authorize-wrong-state", "pass"),
    ("conf-error-response-is-not-a-sign-in", "pass"),
    ("conf-id-token-alg-none", "pass"),
    ("conf-id-token-bad-at-hash", "pass"),
    ("conf-id-token-bad-signature", "pass"),
    ("conf-id-token-email-unverified", "not met"),
    ("conf-id-token-expired", "pass"),
    ("conf-id-token-extra-aud-without-azp", "pass"),
    ("conf-id-token-hs256-client-secret", "pass"),
    ("conf-id-token-iat-in-future", "not met"),
    ("conf-id-token-missing-nonce", "n/a"),
    ("conf-id-token-missing-sub", "pass"),
    ("conf-id-token-same-kid-other-key", "pass"),
    ("conf-id-token-unknown-kid", "pass"),
    ("conf-id-token-wrong-aud", "pass"),
    ("conf-id-token-wrong-iss", "pass"),
    ("conf-id-token-wrong-nonce", "n/a"),
    ("conf-idp-clock-ahead", "pass"),
    ("conf-key-rotation-new-key-at-once", "FAIL"),
    ("conf-key-rotation-planned", "pass"),
    ("conf-logout-ends-the-idp-session", "pass"),
    ("conf-logout-ends-the-session", "pass"),
    ("conf-pkce-s256", "not met"),
    ("conf-refresh-concurrent-at-expiry", "skipped"),
    ("conf-refresh-rotation-with-grace", "FAIL"),
    ("conf-refresh-token-expired", "FAIL"),
    ("conf-refreshed-id-token-without-nonce", "FAIL"),
    ("conf-user-deactivated", "FAIL"),
];
