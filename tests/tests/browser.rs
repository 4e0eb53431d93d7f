//! Real headless Chromium against an in-process mock-idp and stub BSR: the hosted sign-in page, redirects,
//! cookies and two tabs of one browser profile, as a person would use them (issue 7).
//!
//! Run with `cargo test -p tests --features browser --test browser` (scripts/test installs Chromium and
//! chromedriver when they are missing). Each test launches its own browser. The IdP listens on 127.0.0.1 and
//! the stub on `localhost`, so the two are different sites to the browser, as Okta and a BSR are, and
//! SameSite cookie rules apply as they would in production. Both clocks are frozen at 2030-01-01T00:00:00Z
//! and advanced by the tests; only the browser's waits are real time. A failing test leaves a screenshot and
//! the HTML of every tab in target/browser-artifacts/<test name>/.
#![cfg(feature = "browser")]

use harness::browser::{Browser, DEFAULT_TIMEOUT, Tab};
use harness::bsr::{BsrConfig, RefreshStrategy, StubBsr};
use mock_idp::config::RefreshTokenConfig;
use mock_idp::core::model::RotationType;
use mock_idp::{Clock, MockIdp, Options, TenantConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const PASSWORD: &str = "Passw0rd!";
const NOT_ASSIGNED: &str = "User is not assigned to the client application.";
const LOGIN_REQUIRED: &str = "The client specified not to prompt, but the user is not logged in.";
const REFRESH_INVALID: &str = "The refresh token is invalid or expired.";
/// Past the org authorization server's 60-minute access-token lifetime.
const PAST_ACCESS_TOKEN_LIFETIME_S: i64 = 3601;

struct Env {
    idp: MockIdp,
    bsr: StubBsr,
}

impl Env {
    /// An IdP with `tenant` and a stub on `localhost` that knows it (`configured`) or waits for an
    /// administrator to enter the settings; the IdP's `bsr-local` app gets the stub's real redirect URIs.
    async fn start(tenant: TenantConfig, configured: bool, edit: impl FnOnce(&mut BsrConfig)) -> Env {
        let idp = MockIdp::start(Options { config: tenant, ..Options::default() }).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut cfg =
            if configured { BsrConfig::for_issuer(idp.org_issuer(), "bsr-local", "bsr-local-secret") } else { BsrConfig::default() };
        cfg.public_url = Some(format!("http://localhost:{port}"));
        cfg.clock = Clock::test_default();
        edit(&mut cfg);
        let bsr = StubBsr::serve(listener, cfg).await.unwrap();
        let (redirect, post_logout) = (bsr.redirect_uri(), bsr.post_logout_redirect_uri());
        idp.with_tenant(|t| {
            for a in t.apps.values_mut().filter(|a| a.client_id == "bsr-local") {
                a.redirect_uris.push(redirect.clone());
                a.post_logout_redirect_uris.push(post_logout.clone());
            }
        });
        Env { idp, bsr }
    }

    async fn default() -> Env {
        Env::start(TenantConfig::default_tenant(), true, |_| {}).await
    }

    fn bsr(&self, path: &str) -> String {
        format!("{}{path}", self.bsr.base_url())
    }

    /// Time passes for both parties (their clocks are separate, as two machines' are).
    fn advance(&self, secs: i64) {
        self.idp.clock().advance_ms(secs * 1000);
        self.bsr.clock().advance_ms(secs * 1000);
    }

    /// System Log events of one type, through the management API's filter.
    async fn events(&self, event_type: &str) -> Vec<Value> {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/logs", self.idp.base_url()))
            .query(&[("filter", format!("eventType eq \"{event_type}\""))])
            .header("authorization", "SSWS mock-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json().await.unwrap()
    }
}

fn with_leeway(leeway: u8) -> TenantConfig {
    let mut t = TenantConfig::default_tenant();
    t.apps[0].settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: RotationType::Rotate, leeway });
    t
}

/// Signs `user` in from the stub's home page, through the sign-in link and the hosted page.
async fn sign_in(env: &Env, tab: &Tab, user: &str) -> String {
    tab.goto(&env.bsr("/")).await.unwrap();
    tab.click_and_wait("#sign-in").await.unwrap();
    tab.wait_for("#okta-signin-username", DEFAULT_TIMEOUT).await.unwrap();
    tab.fill_and_submit_sign_in(user, PASSWORD).await.unwrap()
}

async fn assert_signed_in_as(tab: &Tab, username: &str) {
    assert_eq!(tab.wait_for("#username", DEFAULT_TIMEOUT).await.unwrap(), username);
}

#[tokio::test]
async fn sign_in_on_the_hosted_page_provisions_the_user_and_sign_out_round_trips() {
    let env = Env::default().await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("sign_in_and_out");
    let tab = browser.new_tab().await.unwrap();

    assert_eq!(tab.goto(&env.bsr("/")).await.unwrap(), env.bsr("/"));
    assert_eq!(tab.wait_for("#signed-out", DEFAULT_TIMEOUT).await.unwrap(), "You are not signed in.");
    let login_page = tab.click_and_wait("#sign-in").await.unwrap();
    assert!(login_page.starts_with(&format!("{}/login/login.htm?fromURI=", env.idp.base_url())), "{login_page}");
    tab.wait_for("#okta-signin-username", DEFAULT_TIMEOUT).await.unwrap();

    let landed = tab.fill_and_submit_sign_in("alice@example.com", PASSWORD).await.unwrap();
    assert_eq!(landed, env.bsr("/"));
    assert_signed_in_as(&tab, "alice").await;
    assert_eq!(tab.text("#email").await.unwrap().as_deref(), Some("alice@example.com"));
    assert_eq!(tab.text("#idp-subject").await.unwrap().as_deref(), Some("00u1alice00000000001"));
    let users = env.bsr.users();
    assert_eq!(users.iter().map(|u| (u.username.as_str(), u.email.as_str())).collect::<Vec<_>>(), vec![("alice", "alice@example.com")]);
    assert_eq!((env.bsr.stats().logins, env.bsr.stats().users_created), (1, 1));
    let (status, me) = tab.fetch("/api/me").await.unwrap();
    assert_eq!(status, 200);
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!((me["username"].as_str(), me["idp_subject"].as_str()), (Some("alice"), Some("00u1alice00000000001")));

    // Sign-out: the stub's form, the IdP's end-session endpoint, back to the stub's /logout with its state.
    let out = tab.click_and_wait("#sign-out").await.unwrap();
    assert!(out.starts_with(&format!("{}?state=", env.bsr.post_logout_redirect_uri())), "{out}");
    assert_eq!(tab.wait_for("#signed-out", DEFAULT_TIMEOUT).await.unwrap(), "You are signed out");
    assert_eq!(env.bsr.session_count(), 0);
    assert_eq!(tab.fetch("/api/me").await.unwrap().0, 401);
    assert_eq!(env.events("user.session.end").await.len(), 1, "the IdP session ended too");
    // So the next sign-in asks for the password again instead of signing in silently.
    tab.click_and_wait("#sign-in").await.unwrap();
    assert_eq!(tab.wait_for("#okta-signin-submit", DEFAULT_TIMEOUT).await.unwrap(), "Sign In");
    tab.fill_and_submit_sign_in("alice@example.com", PASSWORD).await.unwrap();
    assert_signed_in_as(&tab, "alice").await;
    assert_eq!(env.bsr.users().len(), 1, "a known email signs in the existing user");

    artifacts.passed();
    browser.close().await;
}

#[tokio::test]
async fn the_hosted_sign_in_page_works_for_a_person() {
    let env = Env::default().await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("sign_in_page_for_a_person");
    let tab = browser.new_tab().await.unwrap();
    tab.goto(&env.bsr("/login")).await.unwrap();

    tab.wait_for("#okta-signin-username", DEFAULT_TIMEOUT).await.unwrap();
    assert_eq!(tab.focused_id().await.unwrap(), "okta-signin-username", "the cursor starts in the username field");
    assert_eq!(tab.text("label[for=okta-signin-username]").await.unwrap().as_deref(), Some("Username"));
    assert_eq!(tab.text("label[for=okta-signin-password]").await.unwrap().as_deref(), Some("Password"));
    assert_eq!(tab.text("#signin-error").await.unwrap(), None);

    // Enter with empty fields: the page says what is missing, next to the form.
    tab.press_enter("#okta-signin-username").await.unwrap();
    assert_eq!(tab.wait_for("#signin-error", DEFAULT_TIMEOUT).await.unwrap(), "Please enter a username and a password.");
    assert_eq!(tab.status().await.unwrap(), 400);

    // A wrong password: Okta's message, the username kept, the cursor in the password field to try again.
    tab.fill_and_submit_sign_in("alice@example.com", "wrong password").await.unwrap();
    assert_eq!(tab.wait_for("#signin-error", DEFAULT_TIMEOUT).await.unwrap(), "Unable to sign in");
    assert_eq!(tab.status().await.unwrap(), 401);
    let kept = tab.execute("return document.getElementById('okta-signin-username').value", vec![]).await.unwrap();
    assert_eq!(kept, json!("alice@example.com"));
    assert_eq!(tab.focused_id().await.unwrap(), "okta-signin-password");
    let described =
        tab.execute("return document.getElementById('okta-signin-password').getAttribute('aria-describedby')", vec![]).await.unwrap();
    assert_eq!(described, json!("signin-error"), "screen readers read the error with the field");
    assert_eq!(env.bsr.users().len(), 0);

    tab.fill_and_submit_sign_in("alice@example.com", PASSWORD).await.unwrap();
    assert_signed_in_as(&tab, "alice").await;

    artifacts.passed();
    browser.close().await;
}

#[tokio::test]
async fn an_unassigned_user_sees_oktas_message_on_the_bsr_error_page() {
    // C21: carol is active but not assigned to the app.
    let env = Env::default().await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("unassigned_user");
    let tab = browser.new_tab().await.unwrap();

    let landed = sign_in(&env, &tab, "carol@example.com").await;
    assert!(landed.starts_with(&format!("{}?state=", env.bsr.redirect_uri())), "{landed}");
    assert!(landed.contains("error=access_denied"), "{landed}");
    assert_eq!(tab.wait_for("#error-description", DEFAULT_TIMEOUT).await.unwrap(), NOT_ASSIGNED);
    assert_eq!(tab.text("#error-code").await.unwrap().as_deref(), Some("access_denied"));
    assert_eq!(tab.text("h1").await.unwrap().as_deref(), Some("The identity provider refused the sign-in"));
    assert_eq!(tab.status().await.unwrap(), 403);
    assert!(env.bsr.users().is_empty(), "nothing is provisioned");
    assert_eq!(env.bsr.session_count(), 0);

    artifacts.passed();
    browser.close().await;
}

#[tokio::test]
async fn seed_setup_end_to_end_in_the_browser() {
    // C24: the stub starts unconfigured; an administrator enters the app's client id, secret and issuer on the
    // SSO settings page; then a user signs in, the session refreshes, and the user signs out.
    let env = Env::start(TenantConfig::default_tenant(), false, |_| {}).await;
    let admin_browser = Browser::launch().await.unwrap();
    let admin_artifacts = admin_browser.artifacts_on_failure("seed_setup_admin");
    let admin = admin_browser.new_tab().await.unwrap();

    let at = admin.goto(&env.bsr.settings_url()).await.unwrap();
    assert_eq!(at, env.bsr("/admin/login?next=%2Facme%2Fpro-settings"));
    admin.fill("#username", "admin").await.unwrap();
    admin.fill("#password", "admin-password").await.unwrap();
    assert_eq!(admin.press_enter("#password").await.unwrap(), env.bsr.settings_url());
    assert_eq!(admin.wait_for("#organization", DEFAULT_TIMEOUT).await.unwrap(), "acme");
    admin.fill("#client_id", "bsr-local").await.unwrap();
    admin.fill("#client_secret", "bsr-local-secret").await.unwrap();
    admin.fill("#issuer_url", &env.idp.org_issuer()).await.unwrap();
    admin.click_and_wait("#sso-settings button[type=submit]").await.unwrap();
    let saved = admin.wait_for("#message", DEFAULT_TIMEOUT).await.unwrap();
    assert_eq!(
        saved,
        format!(
            "Saved. Discovery works: issuer {}, authorization endpoint {}/oauth2/v1/authorize.",
            env.idp.org_issuer(),
            env.idp.base_url()
        )
    );
    let sso = env.bsr.sso_settings().unwrap();
    assert_eq!(
        (sso.client_id.as_str(), sso.client_secret.expose(), sso.issuer_url.as_str()),
        ("bsr-local", "bsr-local-secret", env.idp.org_issuer().as_str())
    );
    assert_eq!(admin.text("#error").await.unwrap(), None);

    // A user, in a browser of their own.
    let user_browser = Browser::launch().await.unwrap();
    let user_artifacts = user_browser.artifacts_on_failure("seed_setup_user");
    let tab = user_browser.new_tab().await.unwrap();
    sign_in(&env, &tab, "bob@example.com").await;
    assert_signed_in_as(&tab, "bob").await;
    env.advance(PAST_ACCESS_TOKEN_LIFETIME_S);
    let (status, _) = tab.fetch("/api/me").await.unwrap();
    assert_eq!(status, 200);
    let st = env.bsr.stats();
    assert_eq!((st.refresh_requests, st.refresh_successes), (1, 1), "backend refresh after the access token expired");
    tab.click_and_wait("#sign-out").await.unwrap();
    assert_eq!(tab.wait_for("#signed-out", DEFAULT_TIMEOUT).await.unwrap(), "You are signed out");

    user_artifacts.passed();
    admin_artifacts.passed();
    user_browser.close().await;
    admin_browser.close().await;
}

/// Signs alice in in one tab, opens a second tab of the same profile, lets the access token expire and
/// sends `/api/me` from both tabs at once. Returns the tabs and the two answers.
async fn two_tabs_refresh_at_once(env: &Env, browser: &Browser) -> (Tab, Tab, Vec<(u16, String)>) {
    let one = browser.new_tab().await.unwrap();
    sign_in(env, &one, "alice@example.com").await;
    assert_signed_in_as(&one, "alice").await;
    let two = browser.new_tab().await.unwrap();
    two.goto(&env.bsr("/")).await.unwrap();
    assert_signed_in_as(&two, "alice").await;
    assert_eq!(env.bsr.session_count(), 1, "the tabs share one BSR session");

    env.advance(PAST_ACCESS_TOKEN_LIFETIME_S);
    // Both requests are in flight before either is answered; the stub's barrier releases them together.
    let a = one.start_fetch("/api/me").await.unwrap();
    let b = two.start_fetch("/api/me").await.unwrap();
    let answers = vec![a.finish().await.unwrap(), b.finish().await.unwrap()];
    assert_eq!(env.bsr.stats().refresh_requests, 2, "each tab's request refreshed on its own: {answers:?}");
    (one, two, answers)
}

fn naive_with_barrier(c: &mut BsrConfig) {
    c.switches.refresh_strategy = RefreshStrategy::Naive;
    c.switches.refresh_barrier = Some(2);
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_with_leeway_15_both_stay_signed_in() {
    // C01 with a 15-second grace period: the second use of the refresh token is inside it.
    let env = Env::start(with_leeway(15), true, naive_with_barrier).await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("two_tabs_leeway_15");
    let (one, two, answers) = two_tabs_refresh_at_once(&env, &browser).await;

    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(serde_json::from_str::<Value>(body).unwrap()["username"], "alice");
    }
    let st = env.bsr.stats();
    assert_eq!((st.refresh_successes, st.refresh_failures, st.sessions_ended_by_idp), (2, 0, 0));
    assert_eq!(env.events("app.oauth2.token.detect_reuse").await.len(), 0);
    for tab in [&one, &two] {
        tab.goto(&env.bsr("/")).await.unwrap();
        assert_signed_in_as(tab, "alice").await;
    }
    assert_eq!(env.bsr.session_count(), 1);

    artifacts.passed();
    browser.close().await;
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_with_leeway_0_and_naive_refresh_both_are_signed_out() {
    // C01 without a grace period: one refresh rotates the token, the other is reuse; Okta revokes the family
    // and the shared BSR session ends for both tabs.
    let env = Env::start(with_leeway(0), true, naive_with_barrier).await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("two_tabs_leeway_0");
    let (one, two, answers) = two_tabs_refresh_at_once(&env, &browser).await;

    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 401], "{answers:?}");
    let ended = answers.iter().find(|(s, _)| *s == 401).map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()).unwrap();
    let token_url = format!("{}/oauth2/v1/token", env.idp.base_url());
    assert_eq!(
        ended,
        json!({
            "error": "session_ended",
            "error_description": format!("the identity provider rejected the refresh token, so the session ended: refresh failed: POST {token_url} returned 400 Bad Request: invalid_grant: {REFRESH_INVALID}"),
            "login_url": "/login"
        })
    );
    let st = env.bsr.stats();
    assert_eq!((st.refresh_successes, st.refresh_failures, st.sessions_ended_by_idp), (1, 1, 1));
    let reuse = env.events("app.oauth2.token.detect_reuse").await;
    assert_eq!(reuse.len(), 1, "{reuse:?}");
    assert_eq!(reuse[0]["eventType"], "app.oauth2.token.detect_reuse");
    assert_eq!(env.bsr.session_count(), 0);
    for tab in [&one, &two] {
        tab.goto(&env.bsr("/")).await.unwrap();
        assert_eq!(tab.wait_for("#signed-out", DEFAULT_TIMEOUT).await.unwrap(), "You are not signed in.");
        assert_eq!(tab.fetch("/api/me").await.unwrap().0, 401);
    }

    artifacts.passed();
    browser.close().await;
}

#[tokio::test]
async fn prompt_none_without_an_idp_session_shows_login_required() {
    let env = Env::default().await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("prompt_none_without_session");
    let tab = browser.new_tab().await.unwrap();

    let landed = tab.start_sign_in_with(&env.bsr("/login"), &[("prompt", "none")]).await.unwrap();
    assert!(landed.starts_with(&format!("{}?state=", env.bsr.redirect_uri())), "{landed}");
    assert_eq!(tab.wait_for("#error-code", DEFAULT_TIMEOUT).await.unwrap(), "login_required");
    assert_eq!(tab.text("#error-description").await.unwrap().as_deref(), Some(LOGIN_REQUIRED));
    assert_eq!(tab.status().await.unwrap(), 400);
    assert!(env.bsr.users().is_empty());
    assert_eq!(env.bsr.stats().logins, 0);

    artifacts.passed();
    browser.close().await;
}

#[tokio::test]
async fn prompt_none_with_an_idp_session_signs_in_silently() {
    let env = Env::default().await;
    let browser = Browser::launch().await.unwrap();
    let artifacts = browser.artifacts_on_failure("prompt_none_with_session");
    let tab = browser.new_tab().await.unwrap();
    sign_in(&env, &tab, "alice@example.com").await;
    assert_signed_in_as(&tab, "alice").await;

    // The BSR session goes (as when its cookie expires); the IdP session stays.
    tab.delete_cookie("bsr_session").await.unwrap();
    tab.goto(&env.bsr("/")).await.unwrap();
    assert_eq!(tab.wait_for("#signed-out", DEFAULT_TIMEOUT).await.unwrap(), "You are not signed in.");

    let landed = tab.start_sign_in_with(&env.bsr("/login"), &[("prompt", "none")]).await.unwrap();
    assert_eq!(landed, env.bsr("/"), "no sign-in page on the way");
    assert_signed_in_as(&tab, "alice").await;
    let st = env.bsr.stats();
    assert_eq!((st.logins, st.users_created), (2, 1));

    artifacts.passed();
    browser.close().await;
}
