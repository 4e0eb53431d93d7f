//! Okta's browser SDK, `@okta/okta-auth-js`, unmodified in headless Chromium against mock-idp (issue 8):
//! the test page tests/interop/spa/index.html (served by spa/serve.js, the SDK loaded from node_modules) signs
//! in with redirect + PKCE through the hosted page as the default tenant's public browser app `bsr-spa`,
//! handles the callback, keeps the tokens in its tokenManager, renews them with the refresh token under
//! rotation, and signs out; two SDK instances renew at the same moment with a 15-second grace period (both
//! keep working) and with none (the SDK reports Okta's invalid_grant). Every call the page makes to the IdP
//! is cross-origin, so it also proves the Trusted Origins (CORS) support, and an untrusted origin is refused.
//!
//! Run with `cargo test -p tests --features browser --test interop_browser`; needs Chromium and chromedriver
//! (scripts/test installs them) and Node.js with `npm ci` done in tests/interop. The IdP runs on real time: the
//! SDK checks token times with the browser's clock. A failing test leaves screenshots and the HTML of every
//! tab in target/browser-artifacts/<test name>/.
#![cfg(feature = "browser")]

mod interop_support;

use harness::browser::{Browser, DEFAULT_TIMEOUT, Tab};
use interop_support::{NodeServer, PASSWORD, http_client, idp_real_time};
use mock_idp::config::RefreshTokenConfig;
use mock_idp::core::model::{OriginScope, RotationType, TrustedOrigin};
use mock_idp::{MockIdp, TenantConfig};
use rstest::rstest;
use serde_json::{Value, json};

const REFRESH_INVALID: &str = "The refresh token is invalid or expired.";
const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

struct Spa {
    idp: MockIdp,
    page: NodeServer,
    browser: Browser,
    tab: Tab,
    issuer: String,
    /// `/oauth2` or `/oauth2/default`: where the server's endpoints are.
    server_path: String,
}

fn decode_claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON claims")
}

impl Spa {
    /// An IdP (bsr-spa with `leeway`), the page's server, and Chromium on the page, ready.
    async fn start(prefix: &str, leeway: u8) -> Spa {
        let mut cfg = TenantConfig::default_tenant();
        let spa = cfg.apps.iter_mut().find(|a| a.credentials.oauth_client.client_id == "bsr-spa").expect("bsr-spa in the default tenant");
        spa.settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: RotationType::Rotate, leeway });
        let idp = idp_real_time(cfg, false).await;
        let page = NodeServer::start("spa/serve.js", &[], "the okta-auth-js page's server").await;
        let origin = page.base_url.clone();
        // As an administrator sets up an SPA at Okta: its redirect URIs, and its origin as a Trusted Origin.
        idp.with_tenant(|t| {
            for a in t.apps.values_mut().filter(|a| a.client_id == "bsr-spa") {
                a.redirect_uris.push(format!("{origin}/callback"));
                a.post_logout_redirect_uris.push(format!("{origin}/signed-out"));
            }
            t.trusted_origins.push(TrustedOrigin {
                name: "interop page".into(),
                origin: origin.clone(),
                scopes: vec![OriginScope::Cors, OriginScope::Redirect],
            });
        });
        let issuer = format!("{}{prefix}", idp.base_url());
        let server_path = if prefix.is_empty() { "/oauth2".to_string() } else { prefix.to_string() };
        let browser = Browser::launch().await.expect("Chromium and chromedriver start (scripts/test installs them)");
        let tab = browser.new_tab().await.unwrap();
        let s = Spa { idp, page, browser, tab, issuer, server_path };
        let url = format!("{origin}/?issuer={}&client_id=bsr-spa", s.issuer);
        s.tab.goto(&url).await.unwrap();
        s.state(&s.tab, "ready").await;
        s
    }

    /// Waits until the page shows `want` in #status; an error state fails with the SDK's error.
    async fn state(&self, tab: &Tab, want: &str) -> String {
        let css = format!("#status[data-state=\"{want}\"], #status[data-state=\"error\"]");
        let text = tab.wait_for(&css, DEFAULT_TIMEOUT).await.unwrap_or_else(|e| panic!("okta-auth-js page: waiting for {want}: {e:#}"));
        let state = tab.execute("return document.getElementById('status').dataset.state", vec![]).await.unwrap();
        if state != json!(want) {
            let detail = tab.text("#detail").await.unwrap().unwrap_or_default();
            panic!("okta-auth-js page: expected {want}, got {text}: {detail}\nthe page's server printed:\n{}", self.page.output());
        }
        text
    }

    async fn call(&self, tab: &Tab, js: &str) -> Value {
        tab.execute(&format!("return window.interop.{js};"), vec![]).await.unwrap_or_else(|e| panic!("okta-auth-js page: {js}: {e:#}"))
    }

    /// Signs in through the hosted page and returns what the tokenManager holds.
    async fn sign_in(&self, user: &str) -> Value {
        self.call(&self.tab, "signIn()").await;
        self.tab.fill_and_submit_sign_in(user, PASSWORD).await.unwrap();
        assert_eq!(self.state(&self.tab, "signed-in").await, format!("signed in as {user}"));
        self.call(&self.tab, "tokens()").await
    }

    async fn events(&self, event_type: &str) -> usize {
        let r = http_client()
            .get(format!("{}/api/v1/logs", self.idp.base_url()))
            .query(&[("filter", format!("eventType eq \"{event_type}\""))])
            .header("authorization", "SSWS mock-admin-token")
            .send()
            .await
            .unwrap();
        r.json::<Vec<Value>>().await.unwrap().len()
    }

    fn event_prefix(&self) -> &'static str {
        if self.server_path == "/oauth2" { "app.oauth2" } else { "app.oauth2.as" }
    }

    /// A refresh at the token endpoint outside the browser, as the public client.
    async fn refresh_outside(&self, rt: &str) -> (u16, Value) {
        let r = http_client()
            .post(format!("{}{}/v1/token", self.idp.base_url(), self.server_path))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "bsr-spa")])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    fn check_tokens(&self, t: &Value) {
        let id = &t["idClaims"];
        assert_eq!(id["iss"], json!(self.issuer), "{t}");
        assert_eq!(id["aud"], "bsr-spa");
        assert_eq!(id["sub"], "00u1alice00000000001");
        assert_eq!(id["email"], "alice@example.com");
        assert_eq!(t["scopes"], json!(SCOPES));
        assert!(t["refreshToken"].as_str().is_some_and(|r| !r.is_empty()), "offline_access gives a refresh token: {t}");
        let at = decode_claims(t["accessToken"].as_str().unwrap());
        assert_eq!(at["cid"], "bsr-spa");
        assert_eq!(at["iss"], json!(self.issuer));
    }

    async fn finish(self, artifacts: harness::browser::ArtifactsGuard) {
        self.idp.check_invariants().unwrap();
        artifacts.passed();
        self.browser.close().await;
        self.page.stop().await;
    }
}

#[rstest]
#[case::org_server("")]
#[case::default_server("/oauth2/default")]
#[tokio::test]
async fn okta_auth_js_signs_in_with_pkce_renews_under_rotation_and_signs_out(#[case] prefix: &str) {
    let spa = Spa::start(prefix, 15).await;
    let artifacts = spa.browser.artifacts_on_failure(&format!("interop-okta-auth-js{}", prefix.replace('/', "-")));

    let t1 = spa.sign_in("alice@example.com").await;
    spa.check_tokens(&t1);
    assert!(t1["idClaims"]["nonce"].as_str().is_some_and(|n| !n.is_empty()), "the SDK's nonce came back: {t1}");
    assert_eq!(spa.events(&format!("{}.authorize.code", spa.event_prefix())).await, 1);

    // Renewal with the refresh token: rotation gives a new one, and the tokenManager holds it.
    let r = spa.call(&spa.tab, "renew()").await;
    assert_eq!(r["ok"], true, "renew: {r}");
    let t2 = &r["tokens"];
    spa.check_tokens(t2);
    assert_ne!(t2["refreshToken"], t1["refreshToken"], "ROTATE: the tokenManager sees the new refresh token");
    assert_ne!(t2["accessToken"], t1["accessToken"]);
    assert_eq!(t2["idClaims"]["auth_time"], t1["idClaims"]["auth_time"]);
    // `token.grant.refresh_token` is "a refresh token was granted": one at sign-in, one by the renewal.
    assert_eq!(spa.events(&format!("{}.token.grant.refresh_token", spa.event_prefix())).await, 2);
    let info = spa.call(&spa.tab, "userinfo()").await;
    assert_eq!(info["ok"], true, "userinfo: {info}");
    assert_eq!((&info["claims"]["sub"], &info["claims"]["email"]), (&json!("00u1alice00000000001"), &json!("alice@example.com")));

    if !prefix.is_empty() {
        // The same page on an origin that is not trusted cannot read the IdP's answers.
        let other = spa.browser.new_tab().await.unwrap();
        let untrusted = spa.page.base_url.replace("127.0.0.1", "localhost");
        other.goto(&format!("{untrusted}/?issuer={}&client_id=bsr-spa", spa.issuer)).await.unwrap();
        spa.state(&other, "ready").await;
        const FETCH: &str = "return fetch(arguments[0]).then(r => 'status ' + r.status, e => 'blocked: ' + e.message);";
        let keys = format!("{}{}/v1/keys", spa.idp.base_url(), spa.server_path);
        assert_eq!(other.execute(FETCH, vec![json!(keys)]).await.unwrap(), "blocked: Failed to fetch");
        assert_eq!(spa.tab.execute(FETCH, vec![json!(keys)]).await.unwrap(), "status 200");
    }

    // Sign-out: the SDK revokes both tokens (CORS) and ends the Okta session through the logout redirect.
    spa.call(&spa.tab, "signOut()").await;
    assert_eq!(spa.state(&spa.tab, "signed-out").await, "signed out");
    assert_eq!(spa.events(&format!("{}.token.revoke", spa.event_prefix())).await, 2, "access and refresh token revoked");
    assert_eq!(spa.events("user.session.end").await, 1);
    let (status, body) = spa.refresh_outside(t2["refreshToken"].as_str().unwrap()).await;
    assert_eq!((status, body), (400, json!({"error": "invalid_grant", "error_description": REFRESH_INVALID})));
    spa.finish(artifacts).await;
}

#[tokio::test]
async fn okta_auth_js_two_instances_renewing_at_once_inside_the_grace_period_both_keep_working() {
    let spa = Spa::start("/oauth2/default", 15).await;
    let artifacts = spa.browser.artifacts_on_failure("interop-okta-auth-js-race-leeway-15");
    let t1 = spa.sign_in("alice@example.com").await;
    let r = spa.call(&spa.tab, "race()").await;
    let both = r.as_array().expect("two results");
    for (i, x) in both.iter().enumerate() {
        assert_eq!(x["ok"], true, "instance {i}: {x}");
        assert_eq!(x["userinfo"]["email"], "alice@example.com", "instance {i}'s new access token works: {x}");
    }
    // The one that came second, inside the grace period, got the same successor refresh token (M1).
    assert_eq!(both[0]["tokens"]["refreshToken"], both[1]["tokens"]["refreshToken"]);
    assert_ne!(both[0]["tokens"]["refreshToken"], t1["refreshToken"]);
    assert_ne!(both[0]["tokens"]["accessToken"], both[1]["tokens"]["accessToken"]);

    // And the family lives on: each renews once more (the second again inside the grace period of the
    // first one's rotation), and both end up with the same newest refresh token.
    for (i, x) in both.iter().enumerate() {
        assert_eq!(x["again"]["ok"], true, "instance {i} renews again: {r}");
    }
    assert_eq!(both[0]["again"]["refreshToken"], both[1]["again"]["refreshToken"]);
    assert_ne!(both[0]["again"]["refreshToken"], both[0]["tokens"]["refreshToken"]);
    assert_eq!(spa.events("app.oauth2.as.token.grant.refresh_token").await, 5, "sign-in, then two renewals per instance");
    assert_eq!(spa.events("app.oauth2.as.token.detect_reuse").await, 0);
    spa.finish(artifacts).await;
}

#[tokio::test]
async fn okta_auth_js_two_instances_renewing_at_once_without_a_grace_period_one_gets_invalid_grant() {
    let spa = Spa::start("", 0).await;
    let artifacts = spa.browser.artifacts_on_failure("interop-okta-auth-js-race-leeway-0");
    spa.sign_in("alice@example.com").await;
    let r = spa.call(&spa.tab, "race()").await;
    let both = r.as_array().expect("two results");
    let (won, lost): (Vec<&Value>, Vec<&Value>) = both.iter().partition(|x| x["ok"] == true);
    assert_eq!((won.len(), lost.len()), (1, 1), "exactly one renewal wins: {r}");
    // The SDK reports Okta's error as it came, and drops the refresh token it now knows is dead.
    let e = &lost[0]["error"];
    assert_eq!(
        (&e["name"], &e["errorCode"], &e["errorSummary"]),
        (&json!("OAuthError"), &json!("invalid_grant"), &json!(REFRESH_INVALID)),
        "{r}"
    );
    assert_eq!(lost[0]["tokens"]["refreshToken"], Value::Null, "{r}");
    // The replay revoked the family (reuse detection, M2): the winner's new tokens are dead too.
    assert_eq!(spa.events("app.oauth2.token.detect_reuse").await, 1);
    // The SDK read userinfo's WWW-Authenticate challenge, which CORS exposes to the page.
    assert_eq!(
        won[0]["userinfoError"],
        json!({"name": "OAuthError", "errorCode": "invalid_token", "errorSummary": "The access token is invalid", "message": "The access token is invalid"}),
        "the winner's access token was revoked with its family: {r}"
    );
    assert_eq!(won[0]["again"]["error"]["errorCode"], "invalid_grant", "the winner's refresh token died with its family: {r}");
    spa.finish(artifacts).await;
}
