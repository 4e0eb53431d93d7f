//! Real headless Chromium against an in-process mock-idp and stub BSR: the hosted sign-in page, redirects,
//! cookies and two tabs of one browser profile, as a person would use them (issue 7).
//!
//! Run with `cargo test -p tests --features browser --test browser` (scripts/test installs Chromium and
//! chromedriver when they are missing). Each test launches its own browser. The IdP listens on 127.0.0.1 and
//! the stub on `localhost`, so the two are different sites to the browser, as Okta and a BSR are, and
//! SameSite cookie rules apply as they would in production. Both clocks are frozen at 2030-01-01T00:00:00Z
//! and advanced by the tests; only the browser's waits are real time. A failing test leaves a screenshot and
//! the HTML of every tab in target/browser-artifacts/<test name>/. The last tests use a remote WebDriver: a
//! chromedriver the test starts as the docker-compose sidecar runs it, reached by URL (docs/browser.md).
#![cfg(feature = "browser")]

use harness::browser::{Browser, DEFAULT_TIMEOUT, Tab};
use harness::bsr::{BsrConfig, RefreshStrategy, StubBsr};
use harness::scenario::runner::Outcome;
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

// ---------------------------------------------------------------------------------------------------
// A remote WebDriver: chromedriver running elsewhere (a sidecar container in docker-compose), reached by
// URL, with the runner's servers on a host name the browser can reach.

/// chromedriver started the way the docker-compose sidecar runs it (any client address, any Host header),
/// on a port it picks. Its process group is killed on drop, so a failed test leaves no Chromium behind.
struct Sidecar {
    child: std::process::Child,
    url: String,
}

impl Sidecar {
    fn start() -> Sidecar {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let chromedriver = harness::browser::find_chromedriver().expect("chromedriver (scripts/test installs it)");
        let mut child = std::process::Command::new(chromedriver)
            .args(["--port=0", "--allowed-ips=", "--allowed-origins=*"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = loop {
            let l = lines.next().expect("chromedriver says which port it took").expect("stdout");
            if let Some(rest) = l.strip_prefix("ChromeDriver was started successfully on port ") {
                break rest.trim_end_matches('.').parse::<u16>().expect("a port");
            }
        };
        // The rest of its output is drained, so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Sidecar { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Chromium processes the sidecar's chromedriver has running (its process group, but itself).
    fn browsers(&self) -> usize {
        self.browser_pids().len()
    }

    fn browser_pids(&self) -> Vec<i32> {
        let pgid = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            .filter(|e| e.file_name().to_string_lossy() != pgid)
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            // pid (comm) state ppid pgrp …; comm may hold spaces, so fields are counted after the last ')'.
            .filter(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2)) == Some(pgid.as_str()))
            .filter(|stat| !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
            .filter_map(|stat| stat.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// Waits (real time, the browser's) until the sidecar has no Chromium left: its sessions were deleted
    /// and chromedriver quit them (real processes: waited for by their pidfds, not slept on).
    async fn assert_no_browser_left(&self) {
        let pids = self.browser_pids();
        let left = tokio::task::spawn_blocking(move || tests::wait_ended(&pids, std::time::Duration::from_secs(15))).await.unwrap();
        assert_eq!(left, Vec::<i32>::new(), "the sidecar still runs these Chromium processes");
        assert_eq!(self.browsers(), 0, "the sidecar started no other Chromium meanwhile");
    }

    /// The sidecar itself still runs and takes new sessions: nothing of it was killed.
    async fn assert_still_ready(&mut self) {
        assert_eq!(self.child.try_wait().expect("try_wait"), None, "the sidecar's chromedriver exited");
        let status: Value = reqwest::get(format!("{}/status", self.url)).await.unwrap().json().await.unwrap();
        assert_eq!(status["value"]["ready"], true, "{status}");
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

/// An address of this machine other than loopback (the one its default route leaves from), so a server
/// listening on 127.0.0.1 only would not be reachable there; `localhost` when the machine has none.
fn public_host() -> String {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    // A UDP connect only picks the route and source address; nothing is sent (TEST-NET-3, RFC 5737).
    match s.connect("203.0.113.1:9").and_then(|_| s.local_addr()) {
        Ok(a) if !a.ip().is_loopback() && !a.ip().is_unspecified() => a.ip().to_string(),
        _ => {
            eprintln!("note: this machine has no non-loopback address; the public host is `localhost`");
            "localhost".into()
        }
    }
}

fn remote_run_args(paths: Vec<std::path::PathBuf>, webdriver: &str, public: &str, idp_url: Option<String>) -> harness::scenario::RunArgs {
    harness::scenario::RunArgs {
        paths,
        jobs: 2,
        filter: None,
        repeat: 1,
        shard: None,
        idp_url,
        target: None,
        require_all: true,
        junit: None,
        json: None,
        html: None,
        quiet: true,
        browser: harness::scenario::BrowserArgs {
            webdriver_url: Some(webdriver.to_string()),
            listen_host: std::net::Ipv4Addr::UNSPECIFIED.into(),
            public_host: Some(public.to_string()),
        },
    }
}

fn scenario_library() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[tokio::test]
async fn browser_scenarios_run_on_a_remote_webdriver_with_the_servers_on_a_public_host() {
    let mut sidecar = Sidecar::start();
    let public = public_host();
    let prefix = format!("http://{public}:");

    // In-process IdP and stub BSR per scenario, both on 0.0.0.0 and named by the public host.
    let args = remote_run_args(vec![scenario_library().join("browser")], &sidecar.url, &public, None);
    let list = harness::scenario::select(&args).unwrap();
    let reports = harness::scenario::run_all(list, &args, false, None).await;
    let outcomes: Vec<(&str, &Outcome)> = reports.iter().map(|r| (r.name.as_str(), &r.outcome)).collect();
    assert_eq!(outcomes, [("browser-c01-two-tabs-leeway-15", &Outcome::Passed), ("browser-sign-in-and-out", &Outcome::Passed)]);
    for r in &reports {
        // Every page the tabs were on, the stub's and the IdP's, was on the public host.
        assert!(!r.http.is_empty(), "{}: no exchanges recorded", r.name);
        for h in &r.http {
            assert!(h.url.starts_with(&prefix), "{}: the browser was on {} (step {})", r.name, h.url, h.step);
        }
    }
    sidecar.assert_no_browser_left().await;
    sidecar.assert_still_ready().await;

    // A shared, running IdP (as in docker-compose: --idp-url): the runner registers the stub's redirect
    // URIs on the public host through the management API, and the IdP accepts them at sign-in.
    let idp = MockIdp::start(Options::default()).await.unwrap();
    let args = remote_run_args(
        vec![scenario_library().join("browser/sign-in-and-out.yaml")],
        &sidecar.url,
        &public,
        Some(idp.base_url().to_string()),
    );
    let list = harness::scenario::select(&args).unwrap();
    let reports = harness::scenario::run_all(list, &args, false, None).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Passed, "{:?}", reports[0].steps);
    let stub_pages: Vec<&str> = reports[0].http.iter().map(|h| h.url.as_str()).filter(|u| u.starts_with(&prefix)).collect();
    assert!(!stub_pages.is_empty(), "{:?}", reports[0].http);
    let app: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/apps/0oa1bsr0000000000001", idp.base_url()))
        .header("authorization", "SSWS mock-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered: Vec<&str> =
        app["settings"]["oauthClient"]["redirect_uris"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let stub_base = stub_pages[0].split('/').take(3).collect::<Vec<_>>().join("/");
    assert_eq!(
        registered,
        ["http://127.0.0.1:3000/oauth2/callback", "http://localhost:3000/oauth2/callback", &format!("{stub_base}/oauth2/callback")]
    );
    let grants = env_events(&idp, "app.oauth2.token.grant.id_token").await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    sidecar.assert_no_browser_left().await;
    sidecar.assert_still_ready().await;
}

async fn env_events(idp: &MockIdp, event_type: &str) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!("{}/api/v1/logs", idp.base_url()))
        .query(&[("filter", format!("eventType eq \"{event_type}\""))])
        .header("authorization", "SSWS mock-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_remote_browser_signs_in_saves_artifacts_and_its_session_ends_on_drop() {
    let mut sidecar = Sidecar::start();
    let env = Env::default().await;
    let browser = Browser::connect(&sidecar.url).await.unwrap();
    assert_eq!(browser.webdriver_url(), Some(sidecar.url.as_str()));
    let tab = browser.new_tab().await.unwrap();
    sign_in(&env, &tab, "alice@example.com").await;
    assert_signed_in_as(&tab, "alice").await;
    assert!(sidecar.browsers() > 0, "Chromium runs under the sidecar's chromedriver, not here");

    // Artifacts come over WebDriver; the remote chromedriver's log is not ours to copy.
    let dir = browser.save_artifacts("remote_webdriver_artifacts");
    let png = std::fs::read(dir.join("tab-1.png")).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(std::fs::read_to_string(dir.join("tab-1.url.txt")).unwrap(), format!("{}\n", env.bsr("/")));
    assert!(std::fs::read_to_string(dir.join("tab-1.html")).unwrap().contains("id=\"username\""));
    assert_eq!(
        std::fs::read_to_string(dir.join("webdriver.txt")).unwrap(),
        format!(
            "The browser ran on the remote WebDriver {}; its log is that chromedriver's own (with docker-compose: docker compose logs chromedriver).\n",
            sidecar.url
        )
    );
    assert!(!dir.join("chromedriver.log").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    // The tab still works after the artifacts switched windows.
    assert_eq!(tab.current_url().await.unwrap(), env.bsr("/"));

    // Dropped without close(), as when a test panics: the session is deleted, the sidecar keeps running.
    drop(tab);
    drop(browser);
    sidecar.assert_no_browser_left().await;
    sidecar.assert_still_ready().await;

    // And a second session on the same sidecar, closed properly.
    let browser = Browser::launch_with(Some(&sidecar.url)).await.unwrap();
    let tab = browser.new_tab().await.unwrap();
    assert_eq!(tab.goto(&env.bsr("/")).await.unwrap(), env.bsr("/"));
    browser.close().await;
    sidecar.assert_no_browser_left().await;
    sidecar.assert_still_ready().await;
}

#[tokio::test]
async fn an_unreachable_webdriver_is_an_error_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let e = Browser::connect(&url).await.err().expect("nothing listens there");
    assert_eq!(format!("{e:#}"), format!("cannot reach the WebDriver at {url}: Connection refused (os error 111)"));
    let e = Browser::connect("https://chromedriver:9515").await.err().expect("https is refused");
    assert_eq!(
        e.to_string(),
        "--webdriver-url / HARNESS_WEBDRIVER_URL \"https://chromedriver:9515\": not an http:// URL (a WebDriver over TLS is not supported); expected http://host:port, e.g. http://chromedriver:9515"
    );
}

#[tokio::test]
async fn a_webdriver_url_with_a_path_chromedriver_does_not_serve_fails_in_one_readable_line() {
    // chromedriver serves at /; with /wd/hub (Selenium Grid 3's path) it answers `unknown command` with a
    // stack trace. The result line is the WebDriver's message and a hint; the whole answer is in the details.
    let mut sidecar = Sidecar::start();
    let url = format!("{}/wd/hub", sidecar.url);
    let first = format!(
        "the WebDriver at {url} answered GET /wd/hub/status with \"unknown command: unknown command: wd/hub/status\" (a chromedriver serves its commands at the root: try {})",
        sidecar.url
    );
    let e = Browser::connect(&url).await.err().expect("chromedriver has no /wd/hub");
    let text = format!("{e:#}");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(first.as_str()));
    assert_eq!(lines.next(), Some("its answer: error \"unknown command\": unknown command: unknown command: wd/hub/status"));
    assert_eq!(lines.next(), Some("stacktrace:"));
    assert!(lines.next().is_some_and(|l| l.starts_with("#0 ")), "{text}");

    let mut args = remote_run_args(vec![scenario_library().join("browser/sign-in-and-out.yaml")], &url, "127.0.0.1", None);
    args.browser.listen_host = std::net::Ipv4Addr::LOCALHOST.into();
    let reports = harness::scenario::run_all(harness::scenario::select(&args).unwrap(), &args, false, None).await;
    let Outcome::Failed { step: Some(0), message } = &reports[0].outcome else { panic!("{:?}", reports[0].outcome) };
    assert_eq!(harness::scenario::report::first_line(message), format!("step 1 (sign_in): cannot start Chromium: {first}"));
    let table = harness::scenario::report::terminal(&reports);
    let row = table.lines().find(|l| l.starts_with("browser-sign-in-and-out")).unwrap();
    assert!(
        row.ends_with(&format!("{:<7}  {:>6}ms  step 1 (sign_in): cannot start Chromium: {first}", "FAIL", reports[0].duration_ms)),
        "{row}"
    );
    assert!(!table.contains("stacktrace"), "{table}");
    // The failure details (terminal, JUnit, HTML) keep the WebDriver's whole answer.
    let detail = harness::scenario::report::failure_detail(&reports[0]).unwrap();
    assert!(
        detail.contains("\n    stacktrace:\n    #0 ")
            && detail.ends_with("    IdP events around it: (none)\n    IdP requests around it: (none)\n"),
        "{detail}"
    );
    sidecar.assert_still_ready().await;
}

/// The processes of a process group that have not exited (zombies, exited but not yet reaped, excluded).
fn live_in_group(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|st| {
                // After the command's closing parenthesis: state, ppid, pgrp.
                let rest = st.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                Some(rest.first() != Some(&"Z") && rest.get(2)?.parse::<i32>().ok()? == pgid)
            }) == Some(true)
        })
        .collect()
}

/// `harness run` interrupted while a browser scenario runs — SIGINT as Ctrl-C sends it, SIGTERM as
/// `timeout` and a cancelled CI job do, SIGHUP as a closed terminal does — ends the browser's session, its
/// chromedriver and every Chromium process (chromedriver runs in a process group of its own, which no
/// Ctrl-C reaches), removes their temporary directory and exits 128 + the signal's number, as a shell
/// reports it.
#[test]
fn an_interrupted_run_leaves_no_chromedriver_or_chromium_behind() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let mut h = std::process::Command::new(&tests::binaries().harness)
            .current_dir(repo)
            .args(["run", "--quiet", "--jobs", "1", "scenarios/browser"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Real processes: wait (real time) until chromedriver runs and has started Chromium.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let driver = loop {
            assert!(std::time::Instant::now() < deadline, "no chromedriver with a Chromium under harness {}", h.id());
            let found = tests::children_of(h.id()).into_iter().find(|&p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "chromedriver") && live_in_group(p).len() > 1
            });
            if let Some(p) = found {
                break p;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let dirs = |pid: u32| -> Vec<String> {
            std::fs::read_dir(std::env::temp_dir())
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("harness-browser-{pid}-")))
                .collect()
        };
        assert!(!dirs(h.id()).is_empty(), "the browser's temporary directory exists while it runs");
        // SAFETY: kill(2) sends a signal to the child this test started.
        assert_eq!(unsafe { libc::kill(h.id() as i32, sig) }, 0);
        let status = h.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(h.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(128 + sig), "signal {sig}: {err}");
        assert!(err.contains("harness: interrupted; the browsers it had open were ended"), "{err}");
        // Killed processes end once the kernel has torn them down (real processes: waited for, not slept on).
        let left = tests::wait_ended(&live_in_group(driver), std::time::Duration::from_secs(10));
        assert_eq!(left, Vec::<i32>::new(), "signal {sig}: still running in chromedriver's group");
        assert_eq!(live_in_group(driver), Vec::<i32>::new(), "signal {sig}: nothing else started in the group");
        assert_eq!(dirs(h.id()), Vec::<String>::new(), "signal {sig}: the temporary directory was removed");
    }
}
