//! The stub BSR over real HTTP: against an in-process mock-idp for the flows and the cases of
//! ../shared/cases.md, and against wiremock standing in for a broken IdP.
//!
//! Each test starts its own IdP and stub on 127.0.0.1:0. Both listeners are bound first, so the tenant can
//! register the stub's real redirect URIs. The IdP and the stub have separate frozen clocks at
//! 2030-01-01T00:00:00Z; time passes only when a test advances them.

use std::time::Duration;

use harness::bsr::{BsrConfig, EmailVerifiedPolicy, JwksPolicy, NonceCheck, RefreshStrategy, StubBsr, UserState};
use mock_idp::client::AdminClient;
use mock_idp::config::RefreshTokenConfig;
use mock_idp::core::faults::Endpoint;
use mock_idp::core::model::{RefreshNonce, RotationType};
use mock_idp::{Clock, MockIdp, Options, TenantConfig};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use rstest::rstest;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// 2030-01-01T00:00:00Z, where both clocks start.
const T0_S: i64 = 1_893_456_000;
const PASSWORD: &str = "Passw0rd!";
const NOT_ASSIGNED: &str = "User is not assigned to the client application.";
const REFRESH_INVALID: &str = "The refresh token is invalid or expired.";

// ----- an IdP and a stub, wired to each other -----

struct Env {
    idp: MockIdp,
    bsr: StubBsr,
}

impl Env {
    /// Starts an IdP with `tenant` (the stub's redirect URIs added to its first app) and a stub configured
    /// for the IdP's org issuer, after `edit`.
    async fn start(mut tenant: TenantConfig, edit: impl FnOnce(&mut BsrConfig)) -> Env {
        let idp_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bsr_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bsr_base = format!("http://{}", bsr_l.local_addr().unwrap());
        let s = &mut tenant.apps[0].settings.oauth_client;
        s.redirect_uris.push(format!("{bsr_base}/oauth2/callback"));
        s.post_logout_redirect_uris.push(format!("{bsr_base}/logout"));
        let addr = idp_l.local_addr().unwrap();
        let idp =
            MockIdp::serve(idp_l, Options { config: tenant, addr, clock: Clock::test_default(), fresh_keys: false, ..Options::default() })
                .await
                .unwrap();
        let mut cfg = BsrConfig::for_issuer(idp.org_issuer(), "bsr-local", "bsr-local-secret");
        cfg.clock = Clock::test_default();
        edit(&mut cfg);
        let bsr = StubBsr::serve(bsr_l, cfg).await.unwrap();
        Env { idp, bsr }
    }

    async fn default() -> Env {
        Env::start(TenantConfig::default_tenant(), |_| {}).await
    }

    fn bsr(&self, path: &str) -> String {
        format!("{}{path}", self.bsr.base_url())
    }

    /// Time passes for both parties.
    fn advance(&self, secs: i64) {
        self.idp.clock().advance_ms(secs * 1000);
        self.bsr.clock().advance_ms(secs * 1000);
    }

    /// The IdP's System Log, oldest first.
    async fn logs(&self) -> Vec<Value> {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/logs?limit=1000", self.idp.base_url()))
            .header("authorization", "SSWS mock-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn count_events(&self, event_type: &str) -> usize {
        self.logs().await.iter().filter(|e| e["eventType"] == event_type).count()
    }

    /// Refresh grants the IdP answered with tokens.
    async fn refreshes_granted(&self) -> usize {
        self.logs()
            .await
            .iter()
            .filter(|e| {
                e["eventType"] == "app.oauth2.token.grant.access_token" && e["debugContext"]["debugData"]["grantType"] == "refresh_token"
            })
            .count()
    }

    /// Refresh grants the IdP refused.
    async fn refreshes_refused(&self) -> usize {
        self.logs()
            .await
            .iter()
            .filter(|e| {
                e["eventType"] == "app.oauth2.token.grant"
                    && e["outcome"]["result"] == "FAILURE"
                    && e["debugContext"]["debugData"]["grantType"] == "refresh_token"
            })
            .count()
    }

    /// The IdP's management and mock-control API.
    fn admin(&self) -> AdminClient {
        AdminClient::for_idp(&self.idp)
    }

    /// Requests the IdP logged for an endpoint (`GET /_mock/requests?endpoint=…`).
    async fn requests_to(&self, e: Endpoint) -> Vec<mock_idp::client::RequestRecord> {
        self.admin().requests_to(e).await.unwrap()
    }

    /// Refresh requests the IdP received, with their statuses.
    async fn refresh_requests_at_idp(&self) -> Vec<u16> {
        self.requests_to(Endpoint::Token)
            .await
            .into_iter()
            .filter(|r| r.grant_type.as_deref() == Some("refresh_token"))
            .map(|r| r.status)
            .collect()
    }

    /// An emergency rotation of the org server's keys over HTTP: a key no client has seen signs at once.
    /// Returns the new kid.
    async fn rotate_signing_key_to_an_unpublished_one(&self) -> String {
        let keys = self.admin().rotate_org_keys(true).await.unwrap();
        keys.into_iter().find(|k| k.status == "ACTIVE").unwrap().kid
    }
}

/// The default tenant plus users (login = email), all in the group assigned to the BSR app.
fn tenant_with_users(users: &[(&str, &str, &str)]) -> TenantConfig {
    let mut yaml = mock_idp::config::DEFAULT_TENANT_YAML.to_string();
    let mut entries = String::new();
    let mut members = String::from("members: [alice@example.com, bob@example.com");
    for (email, first, last) in users {
        entries.push_str(&format!(
            "  - profile: {{login: \"{email}\", email: \"{email}\", firstName: {first}, lastName: {last}}}\n    credentials: {{password: {{value: \"{PASSWORD}\"}}}}\n"
        ));
        members.push_str(&format!(", \"{email}\""));
    }
    members.push(']');
    yaml = yaml.replacen("users:\n", &format!("users:\n{entries}"), 1);
    yaml = yaml.replacen("members: [alice@example.com, bob@example.com]", &members, 1);
    TenantConfig::parse(&yaml, "test tenant").unwrap()
}

fn with_leeway(mut t: TenantConfig, leeway: u8) -> TenantConfig {
    t.apps[0].settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: RotationType::Rotate, leeway });
    t
}

// ----- a browser: one cookie jar, redirects followed by hand -----

#[derive(Debug)]
struct Page {
    url: String,
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The Location header, resolved against the page's URL.
    fn location(&self) -> Option<String> {
        let l = self.headers.get("location")?.to_str().ok()?;
        Some(url::Url::parse(&self.url).unwrap().join(l).unwrap().to_string())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.url, self.body))
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
    /// The text of the element with `id`, entities decoded.
    fn text_of(&self, id: &str) -> Option<String> {
        let start = self.body.find(&format!("id=\"{id}\""))?;
        let rest = &self.body[start..];
        let open = rest.find('>')? + 1;
        let close = rest[open..].find('<')?;
        Some(unescape(&rest[open..open + close]))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

fn hidden_field(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).unwrap_or_else(|| panic!("no hidden field {name} in {html}")) + needle.len();
    let end = html[start..].find('"').unwrap();
    unescape(&html[start..start + end])
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
}

struct Walk {
    page: Page,
    /// The URL the walk stopped before, when `stop` accepted one.
    stopped_at: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self::trusting(None)
    }

    /// A browser that also trusts `ca_pem` (for an https IdP with its own CA).
    fn trusting(ca_pem: Option<&str>) -> Self {
        harness::crypto::install();
        let mut b = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        Browser { http: b.build().unwrap() }
    }

    async fn page(url: &str, r: reqwest::Response) -> Page {
        let status = r.status();
        let headers = r.headers().clone();
        Page { url: url.to_string(), status, headers, body: r.text().await.unwrap() }
    }

    async fn get(&self, url: &str) -> Page {
        Self::page(url, self.http.get(url).send().await.unwrap()).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter().copied()).finish();
        let r = self.http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        Self::page(url, r).await
    }

    /// Follows redirects and fills in the IdP's hosted sign-in form (GET /login/login.htm: csrf hidden field
    /// and mock_csrf cookie; POST) as `creds`, until a page that is neither, or until `stop` accepts a
    /// redirect target (which is then not visited).
    async fn walk(&self, start: &str, creds: Option<(&str, &str)>, stop: impl Fn(&str) -> bool) -> Walk {
        let mut page = self.get(start).await;
        for _ in 0..20 {
            if let Some(loc) = page.location() {
                if stop(&loc) {
                    return Walk { page, stopped_at: Some(loc) };
                }
                page = self.get(&loc).await;
                continue;
            }
            if page.status == StatusCode::OK && page.body.contains("id=\"signin-form\"") {
                let (user, pw) = creds.unwrap_or_else(|| panic!("the IdP asked for a password at {}", page.url));
                let csrf = hidden_field(&page.body, "csrf");
                let from = hidden_field(&page.body, "fromURI");
                let action = url::Url::parse(&page.url).unwrap().join("/login/login.htm").unwrap().to_string();
                page = self.post_form(&action, &[("username", user), ("password", pw), ("fromURI", &from), ("csrf", &csrf)]).await;
                continue;
            }
            return Walk { page, stopped_at: None };
        }
        panic!("more than 20 hops from {start}");
    }

    /// A complete sign-in at the stub as `user`; returns the page it lands on.
    async fn sign_in(&self, env: &Env, user: &str) -> Page {
        self.walk(&env.bsr("/login"), Some((user, PASSWORD)), |_| false).await.page
    }

    /// A sign-in up to the IdP's redirect back to the stub; returns the callback URL, not yet visited.
    async fn until_callback(&self, env: &Env, creds: Option<(&str, &str)>) -> String {
        let cb = env.bsr("/oauth2/callback");
        let w = self.walk(&env.bsr("/login"), creds, |u| u.starts_with(&cb)).await;
        w.stopped_at.unwrap_or_else(|| panic!("no redirect to the callback; ended at {} {}: {}", w.page.url, w.page.status, w.page.body))
    }

    async fn me(&self, env: &Env) -> Page {
        self.get(&env.bsr("/api/me")).await
    }
}

fn assert_signed_in_home(p: &Page, username: &str) {
    assert_eq!(p.status, StatusCode::OK, "{}: {}", p.url, p.body);
    assert_eq!(p.text_of("username").as_deref(), Some(username), "{}", p.body);
}

/// N concurrent GETs of `/api/me` in one browser (one cookie jar: one session).
async fn concurrent_me(env: &Env, b: &Browser, n: usize) -> Vec<Page> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let b = b.clone();
        let url = env.bsr("/api/me");
        set.spawn(async move { b.get(&url).await });
    }
    let mut out = Vec::new();
    while let Some(p) = set.join_next().await {
        out.push(p.unwrap());
    }
    out
}

// ----- sign-in -----

#[tokio::test]
async fn full_login_through_the_hosted_form_provisions_the_user_and_sets_a_safe_session_cookie() {
    let env = Env::default().await;
    let b = Browser::new();
    let login = b.get(&env.bsr("/login")).await;
    assert_eq!(login.status, StatusCode::FOUND);
    let authorize = login.location().unwrap();
    assert!(authorize.starts_with(&format!("{}/oauth2/v1/authorize?", env.idp.base_url())), "{authorize}");
    assert_eq!(query_param(&authorize, "client_id").as_deref(), Some("bsr-local"));
    assert_eq!(query_param(&authorize, "response_type").as_deref(), Some("code"));
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("openid profile email offline_access"));
    assert_eq!(query_param(&authorize, "redirect_uri"), Some(env.bsr.redirect_uri()));
    assert_eq!(query_param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query_param(&authorize, "code_challenge").unwrap().len(), 43);
    assert_eq!(query_param(&authorize, "state").unwrap().len(), 43);
    assert_eq!(query_param(&authorize, "nonce").unwrap().len(), 43);

    let cb = b.walk(&authorize, Some(("alice@example.com", PASSWORD)), |u| u.starts_with(&env.bsr("/oauth2/callback"))).await;
    let cb = cb.stopped_at.unwrap();
    assert_eq!(query_param(&cb, "state"), query_param(&authorize, "state"));
    let landed = b.get(&cb).await;
    assert_eq!(landed.status, StatusCode::FOUND, "{}", landed.body);
    assert_eq!(landed.location(), Some(env.bsr("/")));
    let session_cookie = landed.set_cookies().into_iter().find(|c| c.starts_with("bsr_session=")).unwrap();
    assert!(session_cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{session_cookie}");

    let home = b.get(&env.bsr("/")).await;
    assert_signed_in_home(&home, "alice");
    assert_eq!(home.text_of("email").as_deref(), Some("alice@example.com"));
    let me = b.me(&env).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        me.json(),
        json!({"id": "u000001", "username": "alice", "email": "alice@example.com", "name": "Alice Example", "idp_subject": "00u1alice00000000001"})
    );
    let users = env.bsr.users();
    assert_eq!(users.len(), 1);
    assert_eq!((users[0].username.as_str(), users[0].state), ("alice", UserState::Active));
    let st = env.bsr.stats();
    assert_eq!((st.discovery_fetches, st.jwks_fetches, st.code_exchanges, st.logins, st.users_created), (1, 1, 1, 1, 1));
    assert_eq!(env.count_events("app.oauth2.token.grant.refresh_token").await, 1, "the login got a refresh token");
}

#[tokio::test]
async fn not_signed_in_gets_a_sign_in_link_and_a_401() {
    let env = Env::default().await;
    let b = Browser::new();
    let home = b.get(&env.bsr("/")).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("<a id=\"sign-in\" href=\"/login\">"), "{}", home.body);
    let me = b.me(&env).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me.json(),
        json!({"error": "not_signed_in", "error_description": "not signed in; sign in at /login", "login_url": "/login"})
    );
}

#[tokio::test]
async fn two_concurrent_attempts_in_one_browser_both_work_and_make_one_user() {
    let env = Env::default().await;
    let b = Browser::new();
    let first = b.until_callback(&env, Some(("bob@example.com", PASSWORD))).await;
    // The IdP session from the first attempt signs the second in without the form.
    let second = b.until_callback(&env, None).await;
    assert_ne!(query_param(&first, "state"), query_param(&second, "state"));
    let (p1, p2) = tokio::join!(b.get(&first), b.get(&second));
    for p in [&p1, &p2] {
        assert_eq!(p.status, StatusCode::FOUND, "{}", p.body);
        assert_eq!(p.location(), Some(env.bsr("/")));
    }
    assert_eq!(env.bsr.users().len(), 1, "concurrent first logins of one email make exactly one user");
    assert_eq!(env.bsr.stats().users_created, 1);
    assert_eq!(env.bsr.stats().logins, 2);
    assert_signed_in_home(&b.get(&env.bsr("/")).await, "bob");
}

#[tokio::test]
async fn a_callback_from_another_browser_or_a_replayed_state_is_refused() {
    let env = Env::default().await;
    let alice = Browser::new();
    let cb = alice.until_callback(&env, Some(("alice@example.com", PASSWORD))).await;
    let mallory = Browser::new();
    let p = mallory.get(&cb).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        p.text_of("error").as_deref(),
        Some(
            "sign-in failed: this sign-in was started in another browser (its cookie is missing or does not match); start again at /login"
        )
    );
    // The attempt was consumed by that try, so the real browser must start again too.
    let p = alice.get(&cb).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        p.text_of("error").as_deref(),
        Some(
            "sign-in failed: no sign-in attempt is waiting for this state (it was already used, or it expired after 10 minutes); start again at /login"
        )
    );
    assert!(env.bsr.users().is_empty());
    assert_eq!(env.bsr.stats().code_exchanges, 0);
    assert_signed_in_home(&alice.sign_in(&env, "alice@example.com").await, "alice");
}

#[tokio::test]
async fn unassigned_user_sees_oktas_message_and_nothing_is_provisioned() {
    let env = Env::default().await;
    let b = Browser::new();
    let p = b.sign_in(&env, "carol@example.com").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert!(p.url.starts_with(&env.bsr("/oauth2/callback?")), "{}", p.url);
    assert_eq!(p.text_of("error-code").as_deref(), Some("access_denied"));
    assert_eq!(p.text_of("error-description").as_deref(), Some(NOT_ASSIGNED));
    assert!(env.bsr.users().is_empty());
    assert_eq!(env.bsr.stats().code_exchanges, 0);
    assert_eq!(b.me(&env).await.status, StatusCode::UNAUTHORIZED);
    // The stub keeps serving: an assigned user signs in next.
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
}

#[tokio::test]
async fn idp_error_values_are_escaped_on_the_error_page() {
    let env = Env::default().await;
    let b = Browser::new();
    let url = format!(
        "{}?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_description=%22%3E%3Cimg%20src%3Dx%3E&state=x",
        env.bsr("/oauth2/callback")
    );
    let p = b.get(&url).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(!p.body.contains("<script>alert(1)") && !p.body.contains("<img src=x>"), "{}", p.body);
    assert_eq!(p.text_of("error-code").as_deref(), Some("<script>alert(1)</script>"));
    assert_eq!(p.text_of("error-description").as_deref(), Some("\"><img src=x>"));
}

// ----- JIT provisioning (C17–C20) -----

#[tokio::test]
async fn jit_usernames_follow_bsrs_rule_and_collisions_get_a_number() {
    let t = tenant_with_users(&[
        ("bob.smith@example.com", "Bob", "Smith"),
        ("julia-smith+demo@example.com", "Julia", "Smith"),
        ("bob.smith@other.com", "Robert", "Smith"),
        ("Bob_Smith@third.example", "Bobby", "Smith"),
    ]);
    let env = Env::start(t, |_| {}).await;
    for (email, username) in [
        ("bob.smith@example.com", "bob-smith"),
        ("julia-smith+demo@example.com", "julia-smith-demo"),
        ("bob.smith@other.com", "bob-smith2"),
        ("Bob_Smith@third.example", "bob-smith3"),
    ] {
        assert_signed_in_home(&Browser::new().sign_in(&env, email).await, username);
    }
    // A second login with a known email signs in the existing user.
    assert_signed_in_home(&Browser::new().sign_in(&env, "bob.smith@example.com").await, "bob-smith");
    let users: Vec<(String, String)> = env.bsr.users().into_iter().map(|u| (u.username, u.email)).collect();
    assert_eq!(
        users,
        vec![
            ("bob-smith".to_string(), "bob.smith@example.com".to_string()),
            ("julia-smith-demo".to_string(), "julia-smith+demo@example.com".to_string()),
            ("bob-smith2".to_string(), "bob.smith@other.com".to_string()),
            ("bob-smith3".to_string(), "Bob_Smith@third.example".to_string()),
        ]
    );
    assert_eq!(env.bsr.stats().users_created, 4);
}

#[tokio::test]
async fn email_case_variants_are_one_user() {
    let env = Env::default().await;
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
    env.idp.with_tenant(|t| t.users.get_mut("00u1alice00000000001").unwrap().profile.email = Some("Alice@Example.COM".into()));
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    assert_eq!(env.bsr.users().len(), 1);
    // The email the user was first provisioned with is kept.
    assert_eq!(b.me(&env).await.json()["email"], "alice@example.com");
}

#[tokio::test]
async fn an_email_changed_at_the_idp_makes_a_new_user_and_keeps_the_old_one() {
    // C19: BSR provisions by email, so the same IdP subject under a new email is a new BSR user.
    let env = Env::default().await;
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
    env.idp.with_tenant(|t| t.users.get_mut("00u1alice00000000001").unwrap().profile.email = Some("alice.cooper@example.com".into()));
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice-cooper");
    let users = env.bsr.users();
    assert_eq!(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), vec!["alice", "alice-cooper"]);
    assert!(users.iter().all(|u| u.idp_subject == "00u1alice00000000001" && u.state == UserState::Active));
}

#[tokio::test]
async fn no_email_claim_fails_clearly_and_provisions_nothing() {
    // C20: without the email scope neither the ID token nor userinfo carries an email.
    let env = Env::start(TenantConfig::default_tenant(), |c| {
        c.switches.scopes = vec!["openid".into(), "profile".into(), "offline_access".into()]
    })
    .await;
    let p = Browser::new().sign_in(&env, "alice@example.com").await;
    assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
    assert_eq!(
        p.text_of("error").as_deref(),
        Some(
            "provisioning failed: the identity provider sent no email claim (was the email scope granted, and does the user have an email?); BSR provisions users by email, so no user was created"
        )
    );
    assert!(env.bsr.users().is_empty());
    assert_eq!(env.bsr.session_count(), 0);
    assert_eq!(env.bsr.stats().userinfo_requests, 1, "userinfo was asked before giving up");
}

// ----- backend refresh (C01, C03, C04, C13, C14) -----

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_on_the_backend() {
    let env = Env::default().await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    assert_eq!(b.me(&env).await.status, StatusCode::OK);
    assert_eq!(env.bsr.stats().refresh_requests, 0);
    env.advance(3599);
    assert_eq!(b.me(&env).await.status, StatusCode::OK);
    assert_eq!(env.bsr.stats().refresh_requests, 0, "not expired yet");
    env.advance(2);
    let me = b.me(&env).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["username"], "alice");
    assert_eq!(b.me(&env).await.status, StatusCode::OK);
    assert_eq!(env.refreshes_granted().await, 1);
    assert_eq!(env.refreshes_refused().await, 0);
    assert_eq!(env.bsr.stats().refresh_successes, 1);
    assert_eq!(env.bsr.sessions()[0].refreshes, 1);
    assert_eq!(env.bsr.sessions()[0].access_expires_ms, (T0_S + 3601 + 3600) * 1000);
    // The stored successor is the live generation: the next expiry refreshes fine, long after the grace window.
    env.advance(3601);
    assert_eq!(b.me(&env).await.status, StatusCode::OK);
    assert_eq!(env.refreshes_granted().await, 2);
}

#[rstest]
#[case::grace_15(15)]
#[case::grace_0(0)]
#[tokio::test]
async fn single_flight_makes_exactly_one_refresh_for_8_concurrent_requests(#[case] leeway: u8) {
    let env = Env::start(with_leeway(TenantConfig::default_tenant(), leeway), |c| c.switches.refresh_barrier = Some(8)).await;
    assert_eq!(env.bsr.switches().refresh_strategy, RefreshStrategy::SingleFlight, "the default");
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    env.advance(3601);
    let pages = concurrent_me(&env, &b, 8).await;
    assert!(pages.iter().all(|p| p.status == StatusCode::OK), "{:?}", pages.iter().map(|p| (p.status, &p.body)).collect::<Vec<_>>());
    assert_eq!(env.refresh_requests_at_idp().await, vec![200], "exactly one refresh at the IdP");
    assert_eq!(env.refreshes_granted().await, 1);
    assert_eq!(env.refreshes_refused().await, 0);
    assert_eq!(env.count_events("app.oauth2.token.detect_reuse").await, 0);
    let st = env.bsr.stats();
    assert_eq!((st.refresh_requests, st.refresh_successes, st.refresh_failures), (1, 1, 0));
    assert_eq!(env.bsr.session_count(), 1);
}

#[tokio::test]
async fn naive_refresh_with_grace_0_loses_the_session() {
    // C01/C04: eight requests present the same refresh token; the first rotates it, the second is reuse and
    // revokes the family, the rest find it revoked.
    let env = Env::start(with_leeway(TenantConfig::default_tenant(), 0), |c| {
        c.switches.refresh_strategy = RefreshStrategy::Naive;
        c.switches.refresh_barrier = Some(8);
    })
    .await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    env.advance(3601);
    let pages = concurrent_me(&env, &b, 8).await;
    let ok = pages.iter().filter(|p| p.status == StatusCode::OK).count();
    let ended: Vec<&Page> = pages.iter().filter(|p| p.status == StatusCode::UNAUTHORIZED).collect();
    assert_eq!((ok, ended.len()), (1, 7), "{:?}", pages.iter().map(|p| (p.status, &p.body)).collect::<Vec<_>>());
    let token_url = format!("{}/oauth2/v1/token", env.idp.base_url());
    for p in ended {
        assert_eq!(
            p.json(),
            json!({
                "error": "session_ended",
                "error_description": format!("the identity provider rejected the refresh token, so the session ended: refresh failed: POST {token_url} returned 400 Bad Request: invalid_grant: {REFRESH_INVALID}"),
                "login_url": "/login"
            })
        );
    }
    let mut statuses = env.refresh_requests_at_idp().await;
    statuses.sort();
    assert_eq!(statuses, vec![200, 400, 400, 400, 400, 400, 400, 400]);
    assert_eq!(env.refreshes_granted().await, 1);
    assert_eq!(env.refreshes_refused().await, 7);
    assert_eq!(env.count_events("app.oauth2.token.detect_reuse").await, 1);
    let st = env.bsr.stats();
    assert_eq!((st.refresh_requests, st.refresh_successes, st.refresh_failures, st.sessions_ended_by_idp), (8, 1, 7, 1));
    assert_eq!(env.bsr.session_count(), 0);
    assert_eq!(b.me(&env).await.status, StatusCode::UNAUTHORIZED, "the session is gone");
    assert!(env.idp.check_invariants().is_ok());
}

#[tokio::test]
async fn naive_refresh_with_grace_15_keeps_the_session() {
    let env = Env::start(TenantConfig::default_tenant(), |c| {
        c.switches.refresh_strategy = RefreshStrategy::Naive;
        c.switches.refresh_barrier = Some(8);
    })
    .await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    env.advance(3601);
    let pages = concurrent_me(&env, &b, 8).await;
    assert!(pages.iter().all(|p| p.status == StatusCode::OK), "{:?}", pages.iter().map(|p| (p.status, &p.body)).collect::<Vec<_>>());
    assert_eq!(env.refresh_requests_at_idp().await, vec![200; 8]);
    assert_eq!(env.refreshes_granted().await, 8, "one rotation and seven refreshes inside the grace period");
    assert_eq!(env.count_events("app.oauth2.token.detect_reuse").await, 0);
    assert_eq!(env.bsr.stats().refresh_requests, 8);
    // All eight got the same successor, so whichever was stored last is the live generation.
    env.advance(3601);
    assert_eq!(b.me(&env).await.status, StatusCode::OK);
    assert_eq!(env.count_events("app.oauth2.token.detect_reuse").await, 0);
    assert!(env.idp.check_invariants().is_ok());
}

#[tokio::test]
async fn an_expired_refresh_token_ends_the_session_and_sends_the_user_to_login_once() {
    // C03: the refresh fails with invalid_grant; `/` sends the browser to /login, and without a session the
    // next `/` is the signed-out page, not another refresh.
    let mut t = TenantConfig::default_tenant();
    t.apps[0].mock.access_token_lifetime_seconds = Some(300);
    t.apps[0].mock.refresh_token_lifetime_seconds = Some(360);
    let env = Env::start(t, |_| {}).await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    env.advance(420);
    let home = b.get(&env.bsr("/")).await;
    assert_eq!(home.status, StatusCode::FOUND);
    assert_eq!(home.location(), Some(env.bsr("/login")));
    assert!(home.set_cookies().iter().any(|c| c.starts_with("bsr_session=; Path=/; Max-Age=0")), "{:?}", home.set_cookies());
    assert_eq!(env.refreshes_refused().await, 1);
    let again = b.get(&env.bsr("/")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("id=\"signed-out\""));
    assert_eq!(env.bsr.stats().refresh_requests, 1, "never a refresh loop");
    // The IdP session is still alive, so /login signs the user in again without the form.
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    assert_eq!(env.bsr.users().len(), 1);
}

#[rstest]
#[case::omitted_lenient(RefreshNonce::Omit, NonceCheck::Lenient, true)]
#[case::echoed_lenient(RefreshNonce::Echo, NonceCheck::Lenient, true)]
#[case::echoed_strict(RefreshNonce::Echo, NonceCheck::Strict, true)]
#[case::omitted_strict(RefreshNonce::Omit, NonceCheck::Strict, false)]
#[tokio::test]
async fn nonce_on_refreshed_id_tokens(#[case] idp: RefreshNonce, #[case] check: NonceCheck, #[case] keeps_session: bool) {
    // C13: Okta omits the nonce on refresh by default; a strict service provider that demands it fails.
    let mut t = TenantConfig::default_tenant();
    t.apps[0].mock.refresh_nonce = idp;
    let env = Env::start(t, |c| c.switches.refresh_nonce = check).await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    env.advance(3601);
    let me = b.me(&env).await;
    assert_eq!(env.refreshes_granted().await, 1);
    if keeps_session {
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        assert_eq!(env.bsr.session_count(), 1);
    } else {
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me.json()["error_description"],
            "the ID token of the refresh was rejected (nonce is missing, and the nonce sent at sign-in is required), so the session ended"
        );
        assert_eq!(env.bsr.session_count(), 0);
    }
}

#[tokio::test]
async fn a_refresh_without_an_id_token_keeps_the_session() {
    // C14: the refresh asks for offline_access only, so the IdP sends no ID token.
    let env = Env::start(TenantConfig::default_tenant(), |c| c.switches.refresh_scopes = Some(vec!["offline_access".into()])).await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    for _ in 0..2 {
        env.advance(3601);
        let me = b.me(&env).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    }
    assert_eq!(env.refreshes_granted().await, 2);
    assert_eq!(env.count_events("app.oauth2.token.grant.id_token").await, 1, "only the login had an ID token");
    assert_eq!(env.bsr.sessions()[0].refreshes, 2);
}

#[rstest]
#[case::deactivated("deactivate")]
#[case::suspended("suspend")]
#[case::removed_from_the_assigned_group("unassign")]
#[tokio::test]
async fn a_user_removed_at_the_idp_loses_the_bsr_session_at_the_next_refresh(#[case] how: &str) {
    // C22, through the IdP's management API while the user is signed in.
    let env = Env::default().await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    let admin = env.admin();
    match how {
        "deactivate" => admin.deactivate_user("alice@example.com").await.unwrap(),
        "suspend" => admin.suspend_user("alice@example.com").await.unwrap(),
        _ => admin.remove_group_member("00g1bsrusers00000001", "00u1alice00000000001").await.unwrap(),
    }
    // The stub does not ask the IdP while the access token is valid.
    assert_eq!(b.me(&env).await.status, StatusCode::OK);
    env.advance(3601);
    let me = b.me(&env).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me.json()["error_description"],
        format!(
            "the identity provider rejected the refresh token, so the session ended: refresh failed: POST {}/oauth2/v1/token returned 400 Bad Request: invalid_grant: {REFRESH_INVALID}",
            env.idp.base_url()
        )
    );
    assert_eq!(env.refresh_requests_at_idp().await, vec![400]);
    assert_eq!(env.bsr.session_count(), 0);
    assert_eq!(env.bsr.stats().sessions_ended_by_idp, 1);
    // BSR keeps the user (its resources stay); only the session is gone.
    assert_eq!(env.bsr.user_by_username("alice").unwrap().state, UserState::Active);
}

// ----- keys and clocks (C09–C12, C15) -----

/// The kids the org server's JWKS publishes now, fetched as any client would.
async fn published_kids(env: &Env) -> Vec<String> {
    let v: Value = reqwest::get(format!("{}/oauth2/v1/keys", env.idp.base_url())).await.unwrap().json().await.unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_unknown_kid_makes_exactly_one_extra_jwks_fetch() {
    // C09: the IdP's request log shows the fetches; the stub's own counter agrees.
    let env = Env::default().await;
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
    assert_eq!(env.requests_to(Endpoint::Keys).await.len(), 1);
    let kid = env.rotate_signing_key_to_an_unpublished_one().await;
    let before = env.requests_to(Endpoint::Keys).await.len();
    assert_signed_in_home(&Browser::new().sign_in(&env, "bob@example.com").await, "bob");
    assert_eq!(env.requests_to(Endpoint::Keys).await.len() - before, 1, "exactly one refetch for kid {kid}");
    // Now cached: more logins with the new key fetch nothing.
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
    assert_eq!(env.requests_to(Endpoint::Keys).await.len() - before, 1);
    assert_eq!(env.bsr.stats().jwks_fetches, 2);
}

#[tokio::test]
async fn a_jwks_fixed_at_start_up_fails_every_login_after_rotation() {
    // C10: the reproduction of the bug.
    let env = Env::start(TenantConfig::default_tenant(), |c| c.switches.jwks = JwksPolicy::StartupOnly).await;
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
    let cached = published_kids(&env).await;
    let kid = env.rotate_signing_key_to_an_unpublished_one().await;
    for _ in 0..2 {
        let p = Browser::new().sign_in(&env, "bob@example.com").await;
        assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
        assert_eq!(
            p.text_of("error").unwrap(),
            format!(
                "ID token rejected: no key with kid {kid:?} in the JWKS at {}/oauth2/v1/keys (kids: {}); the JWKS is fetched once at start-up and never refetched (jwks: startup-only)",
                env.idp.base_url(),
                cached.join(", ")
            )
        );
    }
    assert_eq!(env.requests_to(Endpoint::Keys).await.len(), 2, "the stub's one fetch and this test's");
    assert_eq!(env.bsr.stats().jwks_fetches, 1);
    assert_eq!(env.bsr.users().iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), vec!["alice"], "bob was not provisioned");
}

#[rstest]
#[case::default_skew_fails(60, false)]
#[case::larger_skew_passes(900, true)]
#[tokio::test]
async fn a_stub_clock_ten_minutes_behind_sees_iat_in_the_future(#[case] skew: u64, #[case] passes: bool) {
    // C11: the default skew is 60 s.
    let env = Env::start(TenantConfig::default_tenant(), |c| {
        c.switches.clock_offset_seconds = -600;
        c.switches.clock_skew_seconds = skew;
    })
    .await;
    let p = Browser::new().sign_in(&env, "alice@example.com").await;
    if passes {
        assert_signed_in_home(&p, "alice");
    } else {
        assert_eq!(p.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            p.text_of("error").unwrap(),
            format!("ID token rejected: iat {T0_S} is 600 s in the future of the harness clock {} (allowed skew 60 s)", T0_S - 600)
        );
        assert!(env.bsr.users().is_empty());
    }
}

#[tokio::test]
async fn an_idp_clock_one_second_ahead_passes_with_the_default_skew() {
    // C12.
    let env = Env::default().await;
    env.idp.clock().advance_ms(1000);
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_fails_naming_both_values() {
    // C15: the issuer URL is used exactly as typed.
    let mut issuer = String::new();
    let env = Env::start(TenantConfig::default_tenant(), |c| {
        let s = c.sso.as_mut().unwrap();
        s.issuer_url.push('/');
        issuer = s.issuer_url.clone();
    })
    .await;
    let p = Browser::new().get(&env.bsr("/login")).await;
    assert_eq!(p.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        p.text_of("error").unwrap(),
        format!(
            "discovery failed: GET {base}/.well-known/openid-configuration returned issuer \"{base}\", but the configured issuer URL is \"{issuer}\"; they must be equal exactly",
            base = env.idp.base_url()
        )
    );
}

// ----- sign-out (C23) -----

#[rstest]
#[case::refresh_token_survives(false)]
#[case::refresh_token_revoked(true)]
#[tokio::test]
async fn logout_round_trip_through_the_idp(#[case] revoke: bool) {
    let env = Env::start(TenantConfig::default_tenant(), |c| c.switches.revoke_on_logout = revoke).await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    let out = b.post_form(&env.bsr("/logout"), &[]).await;
    assert_eq!(out.status, StatusCode::FOUND);
    let end = out.location().unwrap();
    assert!(end.starts_with(&format!("{}/oauth2/v1/logout?", env.idp.base_url())), "{end}");
    assert!(query_param(&end, "id_token_hint").unwrap().split('.').count() == 3);
    assert_eq!(query_param(&end, "post_logout_redirect_uri"), Some(env.bsr.post_logout_redirect_uri()));
    let state = query_param(&end, "state").unwrap();
    assert_eq!(b.me(&env).await.status, StatusCode::UNAUTHORIZED, "the local session ended at once");
    let back = b.get(&end).await;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    assert_eq!(back.location(), Some(format!("{}?state={state}", env.bsr("/logout"))));
    let done = b.get(&back.location().unwrap()).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.text_of("signed-out").as_deref(), Some("You are signed out"));
    assert_eq!(env.count_events("user.session.end").await, 1, "the IdP session ended");
    let revokes = env.logs().await.into_iter().filter(|e| e["eventType"] == "app.oauth2.token.revoke").collect::<Vec<_>>();
    if revoke {
        assert_eq!(revokes.len(), 1);
        assert_eq!(revokes[0]["debugContext"]["debugData"]["tokenType"], "refresh_token");
    } else {
        assert!(revokes.is_empty(), "an IdP logout alone leaves the refresh token alive");
    }
    // The state is single use.
    let again = b.get(&back.location().unwrap()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // Signing in again needs the password: the IdP session is gone.
    let w = b.walk(&env.bsr("/login"), None, |u| u.contains("/login/login.htm")).await;
    assert!(w.stopped_at.is_some());
}

// ----- administration -----

/// Signs in as the local administrator through the form; the browser then holds the admin cookie.
async fn admin_sign_in(env: &Env, b: &Browser, next: &str) -> Page {
    let form = b.get(&format!("{}?next={next}", env.bsr("/admin/login"))).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = hidden_field(&form.body, "csrf");
    let wrong =
        b.post_form(&env.bsr("/admin/login"), &[("username", "admin"), ("password", "nope"), ("csrf", &csrf), ("next", next)]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text_of("error").as_deref(), Some("wrong administrator username or password"));
    let csrf = hidden_field(&wrong.body, "csrf");
    let ok = b
        .post_form(&env.bsr("/admin/login"), &[("username", "admin"), ("password", "admin-password"), ("csrf", &csrf), ("next", next)])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), Some(env.bsr(next)));
    ok
}

#[tokio::test]
async fn settings_page_changes_take_effect() {
    let env = Env::start(TenantConfig::default_tenant(), |c| c.sso = None).await;
    let b = Browser::new();
    let p = b.get(&env.bsr("/login")).await;
    assert_eq!(p.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        p.text_of("error").as_deref(),
        Some("single sign-on is not configured; an administrator can enter the identity provider's settings at /acme/pro-settings")
    );
    let gate = b.get(&env.bsr("/acme/pro-settings")).await;
    assert_eq!(gate.status, StatusCode::SEE_OTHER);
    assert_eq!(gate.location(), Some(env.bsr("/admin/login?next=%2Facme%2Fpro-settings")));
    assert_eq!(b.get(&env.bsr("/other-org/pro-settings")).await.status, StatusCode::NOT_FOUND);

    admin_sign_in(&env, &b, "/acme/pro-settings").await;
    let form = b.get(&env.bsr("/acme/pro-settings")).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = hidden_field(&form.body, "csrf");
    let issuer = env.idp.org_issuer();
    let settings = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("provider", "oidc".into()),
            ("client_id", "bsr-local".into()),
            ("client_secret", "bsr-local-secret".into()),
            ("issuer_url", issuer.clone()),
            ("logout_url", String::new()),
        ]
    };
    let post = |pairs: Vec<(&'static str, String)>| {
        let b = b.clone();
        let url = env.bsr("/acme/pro-settings");
        async move {
            let v: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post_form(&url, &v).await
        }
    };
    let forged = post(settings("not-the-token")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(env.bsr.sso_settings().is_none(), "nothing saved without the CSRF token");

    let saved = post(settings(&csrf)).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(
        saved.text_of("message").unwrap(),
        format!("Saved. Discovery works: issuer {issuer}, authorization endpoint {issuer}/oauth2/v1/authorize.")
    );
    assert!(!saved.body.contains("bsr-local-secret"), "the secret is never shown");
    let s = env.bsr.sso_settings().unwrap();
    assert_eq!((s.issuer_url.as_str(), s.client_id.as_str(), s.client_secret.expose()), (issuer.as_str(), "bsr-local", "bsr-local-secret"));
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");

    // A new client ID (secret left empty: kept) is what the next /login uses; the IdP does not know it.
    let mut changed = settings(&csrf);
    changed[2].1 = "0oa-other-client".into();
    changed[3].1 = String::new();
    assert_eq!(post(changed).await.status, StatusCode::OK);
    assert_eq!(env.bsr.sso_settings().unwrap().client_secret.expose(), "bsr-local-secret");
    let login = Browser::new().get(&env.bsr("/login")).await;
    assert_eq!(query_param(&login.location().unwrap(), "client_id").as_deref(), Some("0oa-other-client"));

    // C15 through the page: saved, with the discovery failure shown at once.
    let mut slash = settings(&csrf);
    slash[4].1 = format!("{issuer}/");
    let p = post(slash).await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(
        p.text_of("error").unwrap(),
        format!(
            "Saved, but sign-in will fail: discovery failed: GET {issuer}/.well-known/openid-configuration returned issuer \"{issuer}\", but the configured issuer URL is \"{issuer}/\"; they must be equal exactly"
        )
    );
}

#[tokio::test]
async fn deactivating_a_user_ends_sessions_and_revokes_tokens_at_the_idp() {
    let env = Env::default().await;
    let bob = Browser::new();
    assert_signed_in_home(&bob.sign_in(&env, "bob@example.com").await, "bob");
    let id = env.bsr.user_by_username("bob").unwrap().id;
    let admin = reqwest::Client::new();
    let listed: Value = admin
        .get(env.bsr("/admin/users"))
        .basic_auth("admin", Some("admin-password"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["users"][0]["username"], "bob");
    assert_eq!(listed["users"][0]["state"], "ACTIVE");
    assert_eq!(listed["users"][0]["sessions"], 1);
    assert_eq!(listed["users"][0]["created"], "2030-01-01T00:00:00.000Z");

    let r = admin
        .post(env.bsr(&format!("/admin/users/{id}/deactivate")))
        .basic_auth("admin", Some("admin-password"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["sessions_ended"].clone(), v["tokens_revoked"].clone(), v["revocation_errors"].clone()), (json!(1), json!(2), json!([])));
    assert_eq!(v["user"]["state"], "DEACTIVATED");
    let revoked: Vec<Value> = env.logs().await.into_iter().filter(|e| e["eventType"] == "app.oauth2.token.revoke").collect();
    assert_eq!(
        revoked.iter().map(|e| e["debugContext"]["debugData"]["tokenType"].clone()).collect::<Vec<_>>(),
        vec![json!("refresh_token"), json!("access_token")]
    );
    assert_eq!(bob.me(&env).await.status, StatusCode::UNAUTHORIZED);
    let again = bob.sign_in(&env, "bob@example.com").await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert_eq!(
        again.text_of("error").as_deref(),
        Some("the BSR user bob is deactivated; an administrator can reactivate it at /admin/users")
    );
    assert_eq!(env.bsr.session_count(), 0);

    // Without credentials: 401 JSON, or a redirect to the sign-in form for a browser.
    assert_eq!(
        admin.get(env.bsr("/admin/users")).header("accept", "application/json").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let page = Browser::new().get(&env.bsr("/admin/users")).await;
    assert_eq!(page.location(), Some(env.bsr("/admin/login?next=%2Fadmin%2Fusers")));
    // The HTML panel through the admin form, reactivating with its CSRF token.
    let b = Browser::new();
    admin_sign_in(&env, &b, "/admin/users").await;
    let panel = b.get(&env.bsr("/admin/users")).await;
    assert!(panel.body.contains("<td class=\"state\">DEACTIVATED</td>"), "{}", panel.body);
    let csrf = hidden_field(&panel.body, "csrf");
    let done = b.post_form(&env.bsr(&format!("/admin/users/{id}/activate")), &[("csrf", &csrf)]).await;
    assert_eq!(done.text_of("message").as_deref(), Some("Reactivated bob."));
    assert_signed_in_home(&bob.sign_in(&env, "bob@example.com").await, "bob");
}

// ----- harness up -----

#[tokio::test]
async fn harness_up_wires_the_stub_and_the_idp_on_any_ports() {
    let up = harness::up::start(harness::up::UpOptions {
        idp_addr: "127.0.0.1:0".parse().unwrap(),
        bsr_addr: "127.0.0.1:0".parse().unwrap(),
        clock: Clock::test_default(),
        fresh_keys: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let b = Browser::new();
    let w = b.walk(&format!("{}/login", up.bsr.base_url()), Some(("alice@example.com", PASSWORD)), |_| false).await;
    assert_signed_in_home(&w.page, "alice");
    // One clock for both: advancing the IdP's over HTTP expires the stub's access token too.
    let r = reqwest::Client::new()
        .post(format!("{}/_mock/clock", up.idp.base_url()))
        .json(&json!({"advance_seconds": 3601}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(b.get(&format!("{}/api/me", up.bsr.base_url())).await.status, StatusCode::OK);
    assert_eq!(up.bsr.stats().refresh_successes, 1);
    up.shutdown().await;
}

#[tokio::test]
async fn signs_in_against_an_https_idp_whose_ca_it_is_told_to_trust() {
    let idp_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bsr_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut tenant = TenantConfig::default_tenant();
    tenant.apps[0].settings.oauth_client.redirect_uris.push(format!("http://{}/oauth2/callback", bsr_l.local_addr().unwrap()));
    let addr = idp_l.local_addr().unwrap();
    let idp = MockIdp::serve(
        idp_l,
        Options { config: tenant, addr, clock: Clock::test_default(), fresh_keys: false, tls: true, ..Options::default() },
    )
    .await
    .unwrap();
    assert_eq!(idp.org_issuer(), format!("https://{addr}"));
    let ca = idp.tls_ca_pem().unwrap().to_string();
    // Without the CA the stub refuses the certificate and says where.
    let mut cfg = BsrConfig::for_issuer(idp.org_issuer(), "bsr-local", "bsr-local-secret");
    cfg.clock = Clock::test_default();
    let untrusting = StubBsr::start(cfg.clone()).await.unwrap();
    let p = Browser::new().get(&format!("{}/login", untrusting.base_url())).await;
    assert_eq!(p.status, StatusCode::BAD_GATEWAY);
    let e = p.text_of("error").unwrap();
    assert!(e.starts_with(&format!("discovery failed: GET https://{addr}/.well-known/openid-configuration could not connect: ")), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");
    cfg.trusted_ca_pem = vec![ca.clone()];
    let bsr = StubBsr::serve(bsr_l, cfg).await.unwrap();
    let b = Browser::trusting(Some(&ca));
    let w = b.walk(&format!("{}/login", bsr.base_url()), Some(("alice@example.com", PASSWORD)), |_| false).await;
    assert_signed_in_home(&w.page, "alice");
    assert_eq!(bsr.stats().jwks_fetches, 1);
}

// ----- the recommended checks: at_hash, email_verified, the RFC 9207 iss parameter, PKCE -----

impl Env {
    /// Installs one mock-idp fault rule (the JSON `/_mock/faults` takes) over the management client.
    async fn fault(&self, rule: Value) {
        let spec: mock_idp::core::faults::RuleSpec = serde_json::from_value(rule).unwrap();
        self.admin().add_fault(&spec).await.unwrap();
    }
}

#[rstest]
#[case::checked(true)]
#[case::ignored(false)]
#[tokio::test]
async fn an_at_hash_that_does_not_match_the_access_token_is_refused(#[case] check: bool) {
    let env = Env::start(TenantConfig::default_tenant(), |c| c.switches.check_at_hash = check).await;
    env.fault(json!({"endpoint": "token", "times": 1, "action": {"tamper_id_token": "bad_at_hash"}})).await;
    let p = Browser::new().sign_in(&env, "alice@example.com").await;
    if check {
        assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
        let e = p.text_of("error").unwrap();
        assert!(e.starts_with("ID token rejected: at_hash \""), "{e}");
        assert!(e.ends_with("\" is not the hash of the access token that came with it (OpenID Connect Core §3.1.3.8)"), "{e}");
        assert!(env.bsr.users().is_empty());
        assert_eq!(env.bsr.session_count(), 0);
    } else {
        assert_signed_in_home(&p, "alice");
    }
    // Okta's own at_hash matches: a clean sign-in works either way.
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
}

#[tokio::test]
async fn a_refreshed_id_token_whose_at_hash_does_not_match_ends_the_session() {
    let env = Env::default().await;
    let b = Browser::new();
    assert_signed_in_home(&b.sign_in(&env, "alice@example.com").await, "alice");
    env.fault(json!({"endpoint": "token", "grant_type": "refresh_token", "times": 1, "action": {"tamper_id_token": "bad_at_hash"}})).await;
    env.advance(3601);
    let me = b.me(&env).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    let why = me.json()["error_description"].as_str().unwrap().to_string();
    assert!(why.starts_with("the ID token of the refresh was rejected (at_hash \""), "{why}");
    assert!(
        why.ends_with("is not the hash of the access token that came with it (OpenID Connect Core §3.1.3.8)), so the session ended"),
        "{why}"
    );
    assert_eq!(env.refresh_requests_at_idp().await, [200]);
}

#[rstest]
#[case::reject_false(EmailVerifiedPolicy::RejectFalse, false)]
#[case::require(EmailVerifiedPolicy::Require, false)]
#[case::ignore(EmailVerifiedPolicy::Ignore, true)]
#[tokio::test]
async fn an_email_the_idp_calls_unverified_neither_signs_in_nor_provisions(#[case] policy: EmailVerifiedPolicy, #[case] trusted: bool) {
    let env = Env::start(TenantConfig::default_tenant(), |c| c.switches.email_verified = policy).await;
    assert_eq!(BsrConfig::default().switches.email_verified, EmailVerifiedPolicy::RejectFalse, "the default");
    // Okta says email_verified: true for alice, so she signs in and is provisioned under every policy.
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
    env.fault(json!({"endpoint": "token", "times": 2, "action": {"tamper_id_token": "email_unverified"}})).await;
    // An existing account (alice), then a new one (bob), each with email_verified: false.
    for (user, username) in [("alice@example.com", "alice"), ("bob@example.com", "bob")] {
        let b = Browser::new();
        let p = b.sign_in(&env, user).await;
        if trusted {
            assert_signed_in_home(&p, username);
            continue;
        }
        assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
        assert_eq!(
            p.text_of("error").unwrap(),
            format!(
                "provisioning failed: the identity provider says the email \"{user}\" is not verified (email_verified is false); BSR links accounts by email, so nobody was signed in and no user was created"
            )
        );
        assert_eq!(b.me(&env).await.status, StatusCode::UNAUTHORIZED);
    }
    let usernames: Vec<String> = env.bsr.users().into_iter().map(|u| u.username).collect();
    assert_eq!(usernames, if trusted { vec!["alice", "bob"] } else { vec!["alice"] });
    assert_eq!(env.bsr.session_count(), if trusted { 3 } else { 1 });
}

#[rstest]
#[case::checked(true)]
#[case::ignored(false)]
#[tokio::test]
async fn an_authorization_response_from_another_issuer_is_refused_before_its_code_is_redeemed(#[case] check: bool) {
    let env = Env::start(TenantConfig::default_tenant(), |c| c.switches.check_iss_param = check).await;
    env.fault(json!({"endpoint": "authorize", "times": 1, "action": {"tamper_authorize": "wrong_iss_param"}})).await;
    let p = Browser::new().sign_in(&env, "alice@example.com").await;
    if !check {
        assert_signed_in_home(&p, "alice");
        return;
    }
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert_eq!(
        p.text_of("error").unwrap(),
        format!(
            "sign-in failed: the authorization response's iss parameter \"https://issuer.attacker.example\" is not the issuer {:?} (RFC 9207 §2.4); the response was refused and its code not redeemed",
            env.idp.org_issuer()
        )
    );
    assert_eq!(env.bsr.stats().code_exchanges, 0);
    assert!(env.requests_to(Endpoint::Token).await.is_empty(), "the code never reached the token endpoint");
    assert!(env.bsr.users().is_empty());
    // Okta sends no iss (its discovery does not promise one), and a response without it is accepted.
    assert_signed_in_home(&Browser::new().sign_in(&env, "alice@example.com").await, "alice");
}

#[rstest]
#[case::pkce(true)]
#[case::no_pkce(false)]
#[tokio::test]
async fn an_app_that_requires_pkce_refuses_a_sign_in_without_it(#[case] pkce: bool) {
    let mut t = TenantConfig::default_tenant();
    t.apps[0].credentials.oauth_client.pkce_required = Some(true);
    let env = Env::start(t, |c| c.switches.pkce = pkce).await;
    let b = Browser::new();
    let to_idp = b.get(&env.bsr("/login")).await.location().unwrap();
    assert_eq!(query_param(&to_idp, "code_challenge_method"), pkce.then(|| "S256".to_string()));
    assert_eq!(query_param(&to_idp, "code_challenge").is_some(), pkce);
    let p = b.sign_in(&env, "alice@example.com").await;
    if pkce {
        assert_signed_in_home(&p, "alice");
        return;
    }
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert_eq!(p.text_of("error-code").as_deref(), Some("invalid_request"));
    assert_eq!(p.text_of("error-description").as_deref(), Some("PKCE code challenge is required by the application."));
    assert_eq!(env.bsr.stats().code_exchanges, 0);
    assert!(env.bsr.users().is_empty());
}

// ----- a broken IdP (wiremock) -----

mod broken_idp {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const CLIENT: &str = "fake-client";

    fn discovery(base: &str) -> Value {
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/keys"),
            "end_session_endpoint": format!("{base}/logout"),
        })
    }

    fn jwks(keys: &[usize]) -> Value {
        json!({"keys": keys.iter().map(|k| mock_idp::keys::pooled(*k).jwk()).collect::<Vec<_>>()})
    }

    fn id_token(key: usize, iss: &str, nonce: &str) -> String {
        mock_idp::keys::install_crypto_provider();
        let k = mock_idp::keys::pooled(key);
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some(k.kid.clone());
        let claims = json!({"iss": iss, "aud": CLIENT, "sub": "sub-1", "iat": T0_S, "exp": T0_S + 3600, "nonce": nonce, "email": "dana@example.org", "name": "Dana"});
        jsonwebtoken::encode(&h, &claims, &k.encoding).unwrap()
    }

    async fn mount_good(server: &MockServer, keys: &[usize]) {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(discovery(&server.uri())))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/keys"))
            .respond_with(ResponseTemplate::new(200).set_body_json(jwks(keys)))
            .mount(server)
            .await;
    }

    async fn stub(server: &MockServer) -> StubBsr {
        let mut c = BsrConfig::for_issuer(server.uri(), CLIENT, "fake-secret");
        c.clock = Clock::test_default();
        c.http_timeout = Duration::from_millis(300);
        StubBsr::start(c).await.unwrap()
    }

    /// `/login` at the stub; returns the state and nonce it sent to the fake authorize endpoint.
    async fn begin(b: &Browser, bsr: &StubBsr) -> (String, String) {
        let p = b.get(&format!("{}/login", bsr.base_url())).await;
        assert_eq!(p.status, StatusCode::FOUND, "{}", p.body);
        let loc = p.location().unwrap();
        (query_param(&loc, "state").unwrap(), query_param(&loc, "nonce").unwrap())
    }

    async fn callback(b: &Browser, bsr: &StubBsr, state: &str) -> Page {
        b.get(&format!("{}/oauth2/callback?code=fake-code&state={state}", bsr.base_url())).await
    }

    /// A whole sign-in against a fixed fake IdP: the stub kept serving.
    async fn works_again(server: &MockServer, bsr: &StubBsr) {
        mount_good(server, &[0]).await;
        let b = Browser::new();
        let (state, nonce) = begin(&b, bsr).await;
        let body =
            json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": id_token(0, &server.uri(), &nonce)});
        Mock::given(method("POST")).and(path("/token")).respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(server).await;
        let p = callback(&b, bsr, &state).await;
        assert_eq!(p.status, StatusCode::FOUND, "{}", p.body);
        assert_signed_in_home(&b.get(&format!("{}/", bsr.base_url())).await, "dana");
        assert_eq!(bsr.users().len(), 1);
    }

    #[rstest]
    #[case::status_500(ResponseTemplate::new(500), "returned 500 Internal Server Error")]
    #[case::garbage(
        ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
        "returned 200 OK with a body that is not JSON (Content-Type: text/html): expected value at line 1 column 1"
    )]
    #[tokio::test]
    async fn discovery_failures_name_the_url_and_the_stub_keeps_serving(#[case] answer: ResponseTemplate, #[case] what: &str) {
        let server = MockServer::start().await;
        Mock::given(method("GET")).and(path("/.well-known/openid-configuration")).respond_with(answer).mount(&server).await;
        let bsr = stub(&server).await;
        let p = Browser::new().get(&format!("{}/login", bsr.base_url())).await;
        assert_eq!(p.status, StatusCode::BAD_GATEWAY);
        assert_eq!(p.text_of("error").unwrap(), format!("discovery failed: GET {}/.well-known/openid-configuration {what}", server.uri()));
        assert!(bsr.users().is_empty());
        works_again(&server, &bsr).await;
    }

    #[tokio::test]
    async fn a_discovery_document_without_a_token_endpoint_is_named() {
        let server = MockServer::start().await;
        let doc = json!({"issuer": server.uri(), "authorization_endpoint": format!("{}/authorize", server.uri()), "jwks_uri": format!("{}/keys", server.uri())});
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(doc))
            .mount(&server)
            .await;
        let bsr = stub(&server).await;
        let p = Browser::new().get(&format!("{}/login", bsr.base_url())).await;
        assert_eq!(p.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            p.text_of("error").unwrap(),
            format!(
                "discovery failed: GET {}/.well-known/openid-configuration returned an unusable document: the required field \"token_endpoint\" is missing",
                server.uri()
            )
        );
        works_again(&server, &bsr).await;
    }

    #[tokio::test]
    async fn a_jwks_without_the_tokens_kid_is_refetched_once_then_named() {
        let server = MockServer::start().await;
        mount_good(&server, &[0]).await;
        let bsr = stub(&server).await;
        // A first sign-in fills the JWKS cache.
        let b = Browser::new();
        let (state, nonce) = begin(&b, &bsr).await;
        let body = json!({"access_token": "at", "expires_in": 3600, "id_token": id_token(0, &server.uri(), &nonce)});
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        assert_eq!(callback(&b, &bsr, &state).await.status, StatusCode::FOUND);
        // The next ID token is signed with a key the JWKS does not publish, before the refetch or after it.
        let b = Browser::new();
        let (state, nonce) = begin(&b, &bsr).await;
        let body = json!({"access_token": "at", "expires_in": 3600, "id_token": id_token(1, &server.uri(), &nonce)});
        Mock::given(method("POST")).and(path("/token")).respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(&server).await;
        let p = callback(&b, &bsr, &state).await;
        assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
        assert_eq!(
            p.text_of("error").unwrap(),
            format!(
                "ID token rejected: no key with kid {:?} in the JWKS at {}/keys (kids: {})",
                mock_idp::keys::pooled(1).kid,
                server.uri(),
                mock_idp::keys::pooled(0).kid
            )
        );
        let jwks_gets = server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/keys").count();
        assert_eq!(jwks_gets, 2, "fetched for the first sign-in, refetched once for the unknown kid");
        assert_eq!(bsr.stats().jwks_fetches, 2);
        assert_eq!(bsr.users().len(), 1, "only the first sign-in provisioned a user");
        assert_eq!(bsr.session_count(), 1);
        assert_eq!(b.get(&format!("{}/api/me", bsr.base_url())).await.status, StatusCode::UNAUTHORIZED);
        works_again(&server, &bsr).await;
    }

    #[tokio::test]
    async fn an_idp_that_promises_the_rfc9207_iss_parameter_must_send_it() {
        let server = MockServer::start().await;
        let mut doc = discovery(&server.uri());
        doc["authorization_response_iss_parameter_supported"] = json!(true);
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(doc))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/keys"))
            .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[0])))
            .mount(&server)
            .await;
        let bsr = stub(&server).await;
        let b = Browser::new();
        let (state, nonce) = begin(&b, &bsr).await;
        let body = json!({"access_token": "at", "expires_in": 3600, "id_token": id_token(0, &server.uri(), &nonce)});
        Mock::given(method("POST")).and(path("/token")).respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(&server).await;
        let p = callback(&b, &bsr, &state).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
        assert_eq!(
            p.text_of("error").unwrap(),
            format!(
                "sign-in failed: the authorization response has no iss parameter, but the discovery document of {:?} says every response carries one (RFC 9207 §2.4); the response was refused and its code not redeemed",
                server.uri()
            )
        );
        let tokens = server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/token").count();
        assert_eq!(tokens, 0);
        // With the issuer's iss the same kind of response signs in.
        let b = Browser::new();
        let (state, nonce) = begin(&b, &bsr).await;
        server.reset().await;
        mount_good(&server, &[0]).await;
        let body = json!({"access_token": "at", "expires_in": 3600, "id_token": id_token(0, &server.uri(), &nonce)});
        Mock::given(method("POST")).and(path("/token")).respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(&server).await;
        let iss: String = url::form_urlencoded::byte_serialize(server.uri().as_bytes()).collect();
        let p = b.get(&format!("{}/oauth2/callback?code=fake-code&state={state}&iss={iss}", bsr.base_url())).await;
        assert_eq!(p.status, StatusCode::FOUND, "{}", p.body);
        assert_signed_in_home(&b.get(&format!("{}/", bsr.base_url())).await, "dana");
    }

    #[rstest]
    #[case::timeout(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)), "timed out after 300 ms")]
    #[case::not_json(
        ResponseTemplate::new(200).set_body_raw("<html>oops</html>", "text/html"),
        "returned 200 OK with a body that is not JSON (Content-Type: text/html): expected value at line 1 column 1"
    )]
    #[case::server_error(ResponseTemplate::new(503), "returned 503 Service Unavailable")]
    #[case::oauth_error(
        ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": "The authorization code is invalid or has expired."})),
        "returned 400 Bad Request: invalid_grant: The authorization code is invalid or has expired."
    )]
    #[tokio::test]
    async fn token_endpoint_failures_name_what_failed_and_provision_nothing(#[case] answer: ResponseTemplate, #[case] what: &str) {
        let server = MockServer::start().await;
        mount_good(&server, &[0]).await;
        Mock::given(method("POST")).and(path("/token")).respond_with(answer).mount(&server).await;
        let bsr = stub(&server).await;
        let b = Browser::new();
        let (state, _) = begin(&b, &bsr).await;
        let p = callback(&b, &bsr, &state).await;
        assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
        assert_eq!(p.text_of("error").unwrap(), format!("token request failed: POST {}/token {what}", server.uri()));
        assert!(bsr.users().is_empty());
        assert_eq!(bsr.session_count(), 0);
        let home = b.get(&format!("{}/", bsr.base_url())).await;
        assert_eq!(home.status, StatusCode::OK, "the stub keeps serving");
        works_again(&server, &bsr).await;
    }
}
