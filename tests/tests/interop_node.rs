//! Okta's own npm SDKs against mock-idp, unmodified (issue 8): `@okta/jwt-verifier` (tests/interop/
//! jwt-verifier.test.js, run with `node --test`) and `@okta/oidc-middleware` in an Express app
//! (tests/interop/express-app), driven over HTTP the way a browser would, and as the scenario runner's
//! external target.
//!
//! Needs Node.js 20+ and `(cd tests/interop && npm ci)` (scripts/test does both); without them every test
//! fails at once saying so. The IdPs here run on real time (`Clock::system()`): the SDKs check token times
//! against their own clocks. Each test starts its own IdP on a free port; the https cases use `mock-idp`'s
//! TLS mode, with its CA given to Node as `NODE_EXTRA_CA_CERTS` and no SDK testing flag.

mod interop_support;

use std::time::Duration;

use harness::scenario::RunArgs;
use harness::scenario::runner::Outcome;
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
