//! No way in for strangers: loopback by default, the management token on every management route, the mock
//! controls off or behind the token, no secret in any log, every reflected value escaped, CSRF on the
//! sign-in forms, and cookies that scripts cannot read.

mod reliability_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use mock_idp::{MockControls, MockIdp, Options, TenantConfig};
use reliability_support::{StubEnv, browser, walk};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tests::*;

const SCRIPT: &str = "<script>alert(1)</script>";
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

fn ssws() -> String {
    format!("SSWS {ADMIN_TOKEN}")
}

#[test]
fn both_servers_listen_on_loopback_unless_told_otherwise() {
    assert_eq!(Options::default().addr.to_string(), "127.0.0.1:0");
    assert_eq!(harness::bsr::BsrConfig::default().addr.to_string(), "127.0.0.1:0");
    assert_eq!(harness::up::UpOptions::default().idp_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(harness::up::UpOptions::default().bsr_addr.to_string(), "127.0.0.1:3000");
}

// ----- the management token -----

/// Every management route, with a method it answers (ids of the default tenant where a path needs one).
const MANAGEMENT_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/00u1alice00000000001"),
    ("POST", "/api/v1/users/00u1alice00000000001"),
    ("PUT", "/api/v1/users/00u1alice00000000001"),
    ("DELETE", "/api/v1/users/00u1alice00000000001"),
    ("POST", "/api/v1/users/00u1alice00000000001/lifecycle/deactivate"),
    ("DELETE", "/api/v1/users/00u1alice00000000001/sessions"),
    ("GET", "/api/v1/users/00u1alice00000000001/groups"),
    ("GET", "/api/v1/users/00u1alice00000000001/clients/bsr-local/tokens"),
    ("DELETE", "/api/v1/users/00u1alice00000000001/clients/bsr-local/tokens"),
    ("GET", "/api/v1/users/00u1alice00000000001/clients/bsr-local/tokens/oar1"),
    ("DELETE", "/api/v1/users/00u1alice00000000001/clients/bsr-local/tokens/oar1"),
    ("GET", "/api/v1/groups"),
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/groups/00g1bsrusers00000001"),
    ("PUT", "/api/v1/groups/00g1bsrusers00000001"),
    ("DELETE", "/api/v1/groups/00g1bsrusers00000001"),
    ("GET", "/api/v1/groups/00g1bsrusers00000001/users"),
    ("PUT", "/api/v1/groups/00g1bsrusers00000001/users/00u1carol00000000001"),
    ("DELETE", "/api/v1/groups/00g1bsrusers00000001/users/00u1alice00000000001"),
    ("GET", "/api/v1/apps"),
    ("POST", "/api/v1/apps"),
    ("GET", "/api/v1/apps/0oa1bsr0000000000001"),
    ("PUT", "/api/v1/apps/0oa1bsr0000000000001"),
    ("POST", "/api/v1/apps/0oa1bsr0000000000001/lifecycle/deactivate"),
    ("GET", "/api/v1/apps/0oa1bsr0000000000001/users"),
    ("POST", "/api/v1/apps/0oa1bsr0000000000001/users"),
    ("GET", "/api/v1/apps/0oa1bsr0000000000001/users/00u1alice00000000001"),
    ("DELETE", "/api/v1/apps/0oa1bsr0000000000001/users/00u1alice00000000001"),
    ("GET", "/api/v1/apps/0oa1bsr0000000000001/groups"),
    ("GET", "/api/v1/apps/0oa1bsr0000000000001/groups/00g1bsrusers00000001"),
    ("PUT", "/api/v1/apps/0oa1bsr0000000000001/groups/00g1bsrusers00000001"),
    ("DELETE", "/api/v1/apps/0oa1bsr0000000000001/groups/00g1bsrusers00000001"),
    ("GET", "/api/v1/authorizationServers"),
    ("GET", "/api/v1/authorizationServers/default"),
    ("GET", "/api/v1/authorizationServers/default/policies"),
    ("GET", "/api/v1/authorizationServers/default/policies/p"),
    ("GET", "/api/v1/authorizationServers/default/policies/p/rules"),
    ("GET", "/api/v1/authorizationServers/default/policies/p/rules/r"),
    ("PUT", "/api/v1/authorizationServers/default/policies/p/rules/r"),
    ("GET", "/api/v1/authorizationServers/default/credentials/keys"),
    ("GET", "/api/v1/authorizationServers/default/credentials/keys/k"),
    ("POST", "/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate"),
    ("GET", "/api/v1/logs"),
];

#[rstest]
#[case::no_header(None)]
#[case::wrong_token(Some("SSWS not-the-token"))]
#[case::token_with_a_suffix(Some("SSWS mock-admin-token2"))]
#[case::token_as_bearer(Some("Bearer mock-admin-token"))]
#[case::token_in_lower_case_scheme(Some("ssws mock-admin-token"))]
#[tokio::test]
async fn every_management_route_wants_the_token(#[case] auth: Option<&str>) {
    let idp = idp().await;
    let c = Client::new(&idp);
    for (method, path) in MANAGEMENT_ROUTES {
        let mut rb = c.http.request(method.parse().unwrap(), c.url(path)).header("content-type", "application/json").body("{}");
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = Reply::from(rb.send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", r.body);
        let v = r.json();
        assert_eq!(
            (v["errorCode"].as_str(), v["errorSummary"].as_str()),
            (Some("E0000011"), Some("Invalid token provided")),
            "{method} {path}"
        );
    }
    // Nothing changed: alice is still active and assigned.
    let r =
        Reply::from(c.http.get(c.url("/api/v1/users/00u1alice00000000001")).header("authorization", ssws()).send().await.unwrap()).await;
    assert_eq!(r.json()["status"], "ACTIVE");
}

// ----- the mock controls -----

const CONTROLS: &[(&str, &str)] = &[
    ("GET", "/_mock/clock"),
    ("POST", "/_mock/clock"),
    ("POST", "/_mock/reset"),
    ("POST", "/_mock/keys/rotate"),
    ("GET", "/_mock/faults"),
    ("POST", "/_mock/faults"),
    ("DELETE", "/_mock/faults"),
    ("GET", "/_mock/faults/flt_1"),
    ("POST", "/_mock/faults/flt_1/release"),
    ("GET", "/_mock/requests"),
    ("DELETE", "/_mock/requests"),
];

async fn idp_with_controls(mock_controls: MockControls) -> MockIdp {
    MockIdp::start(Options { mock_controls, ..Options::default() }).await.unwrap()
}

#[tokio::test]
async fn turned_off_controls_are_oktas_404() {
    let idp = idp_with_controls(MockControls::Off).await;
    let c = Client::new(&idp);
    for (method, path) in CONTROLS {
        let rb = c.http.request(method.parse().unwrap(), c.url(path)).header("authorization", ssws()).body("{\"advance_seconds\": 60}");
        let r = Reply::from(rb.send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        let v = r.json();
        assert_eq!(v["errorCode"], "E0000007");
        assert_eq!(v["errorSummary"], format!("Not found: Resource not found: {path} (Resource)"));
    }
    assert_eq!(idp.clock().now_secs(), T0, "the clock did not move");
    // Health stays open for container health checks; it tells nothing.
    assert_eq!(c.get("/_mock/health").await.body, "ok");
}

#[tokio::test]
async fn controls_can_require_the_management_token() {
    let idp = idp_with_controls(MockControls::TokenRequired).await;
    let c = Client::new(&idp);
    for (method, path) in CONTROLS {
        for auth in [None, Some("SSWS wrong"), Some("Bearer mock-admin-token")] {
            let mut rb = c.http.request(method.parse().unwrap(), c.url(path)).body("{\"advance_seconds\": 60}");
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            let r = Reply::from(rb.send().await.unwrap()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} {auth:?}");
            assert_eq!(r.json()["errorCode"], "E0000011");
        }
    }
    assert_eq!(idp.clock().now_secs(), T0);
    let r = Reply::from(
        c.http.post(c.url("/_mock/clock")).header("authorization", ssws()).json(&json!({"advance_seconds": 60})).send().await.unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["now"], "2030-01-01T00:01:00.000Z");
    assert_eq!(c.get("/_mock/health").await.body, "ok");
}

// ----- no secret in any log -----

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged at trace level, by every crate, from every thread of this test binary, through the
/// binaries' filter (which keeps libraries that log secret values, such as reqwest's cookie jar, quiet).
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let c = Captured(Arc::new(Mutex::new(Vec::new())));
        let writer = c.clone();
        // `try_init`, as the binaries' `init`: the subscriber, and the bridge that brings in what libraries
        // log through the `log` crate (cookie_store does).
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone());
        // A directive for cookie_store's own module, which once got round the filter, is in it too.
        let filter = mock_idp::logging::filter_from("trace,cookie_store::cookie_store=trace");
        tracing_subscriber::registry()
            .with(tracing_subscriber::Layer::with_filter(layer, filter))
            .try_init()
            .expect("the only subscriber of this binary");
        c
    })
}

fn set_cookie_value(r: &Reply, name: &str) -> Option<String> {
    r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (k, v) = c.split(';').next()?.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

#[tokio::test]
async fn no_secret_or_token_reaches_the_logs_the_system_log_or_the_request_log() {
    let logs = captured_logs();
    let idp = idp().await;
    let c = Client::new(&idp);
    let mut secrets: Vec<String> = vec![PASSWORD.into(), CLIENT_SECRET.into(), ADMIN_TOKEN.into()];

    // A sign-in through the hosted form: csrf, session cookie, the transaction key, the code.
    let req = Authorize::new(CLIENT_ID).scope("openid profile email offline_access");
    let r = c.authorize(Server::DEFAULT, &req).await;
    let login = r.location().unwrap();
    let page = c.get(&login).await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let from = hidden_field(&page.body, "fromURI").unwrap();
    secrets.push(csrf.clone());
    secrets.push(url_param(&format!("http://x{from}"), "okta_key").unwrap());
    let wrong = c
        .post_form(
            "/login/login.htm",
            Auth::Nothing,
            &[("username", ALICE), ("password", "Wr0ng-Passw0rd!"), ("fromURI", &from), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    secrets.push("Wr0ng-Passw0rd!".into());
    let page = c.get(&login).await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    secrets.push(csrf.clone());
    let ok = c
        .post_form("/login/login.htm", Auth::Nothing, &[("username", ALICE), ("password", PASSWORD), ("fromURI", &from), ("csrf", &csrf)])
        .await;
    assert_eq!(ok.status, StatusCode::FOUND);
    secrets.push(set_cookie_value(&ok, "sid").expect("a session cookie"));
    let back = c.follow(&ok).await;
    let code = url_param(&back.location().unwrap(), "code").unwrap();
    secrets.push(code.clone());
    secrets.push(req.pkce.as_ref().unwrap().verifier.clone());
    let (s, b) = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.as_ref().unwrap().verifier)).await;
    let t = Tokens::from_response(s, b, &req.nonce);
    // A replay of the code, a refresh with rotation, userinfo, introspection, revocation, logout.
    c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.as_ref().unwrap().verifier)).await;
    let alice = t;
    let bob = c.login(Server::DEFAULT, BOB, PASSWORD, "openid profile email offline_access").await;
    for t in [&alice, &bob] {
        secrets.extend([Some(t.access_token.clone()), t.id_token.clone(), t.refresh_token.clone()].into_iter().flatten());
    }
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), bob.refresh_token.as_deref().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK);
    for k in ["access_token", "id_token", "refresh_token"] {
        secrets.push(b[k].as_str().unwrap().to_string());
    }
    let (s, _) = c.refresh(Server::DEFAULT, CLIENT_ID, Some("not-the-secret-XYZ"), b["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    secrets.push("not-the-secret-XYZ".into());
    // The replay revoked alice's tokens (RFC 6749 §4.1.2); bob's still work.
    assert_eq!(c.userinfo(Server::DEFAULT, &alice.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.userinfo(Server::DEFAULT, &bob.access_token).await.status, StatusCode::OK);
    c.introspect(Server::DEFAULT, Auth::BSR, alice.refresh_token.as_deref().unwrap(), None).await;
    c.revoke(Server::DEFAULT, Auth::BSR, &alice.access_token, None).await;
    let hint = bob.id_token.clone().unwrap();
    let out = c.get(&format!("/oauth2/default/v1/logout?id_token_hint={hint}&post_logout_redirect_uri={LOGOUT_URI}&state=s")).await;
    assert_eq!(out.status, StatusCode::FOUND);
    // A session token from the authentication API.
    let st = c.authn(ALICE, PASSWORD).await;
    secrets.push(st.clone());
    c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("sessionToken", &st)).await;
    // The management API: a user with a password, an app whose secret the mock generates.
    let admin = |rb: reqwest::RequestBuilder| rb.header("authorization", ssws());
    let new_password = "N3w-User-Passw0rd!";
    secrets.push(new_password.into());
    let r = admin(c.http.post(c.url("/api/v1/users")))
        .json(&json!({"profile": {"login": "dave@example.com", "email": "dave@example.com"}, "credentials": {"password": {"value": new_password}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin(c.http.post(c.url("/api/v1/apps")))
        .json(&json!({"name": "oidc_client", "label": "Secretive", "signOnMode": "OPENID_CONNECT",
            "credentials": {"oauthClient": {"token_endpoint_auth_method": "client_secret_basic"}},
            "settings": {"oauthClient": {"application_type": "web", "redirect_uris": ["https://app.example.com/cb"], "grant_types": ["authorization_code"], "response_types": ["code"]}}}))
        .send()
        .await
        .unwrap();
    let app: Value = r.json().await.unwrap();
    let generated = app["credentials"]["oauthClient"]["client_secret"].as_str().expect("the secret, once").to_string();
    assert_eq!(generated.len(), 64);
    secrets.push(generated);
    let r = admin(c.http.post(c.url(&format!("/api/v1/users/{ALICE_ID}"))))
        .json(&json!({"credentials": {"password": {"value": "Ch4nged-Passw0rd!"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    secrets.push("Ch4nged-Passw0rd!".into());

    let system_log = admin(c.http.get(c.url("/api/v1/logs?limit=1000"))).send().await.unwrap().text().await.unwrap();
    let request_log = c.get("/_mock/requests").await.body;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture works: the request lines of this very test are in it.
    assert!(text.contains("path=/oauth2/default/v1/token"), "{text}");
    let entries: Vec<Value> = serde_json::from_str(&request_log).unwrap();
    assert!(entries.len() >= 20, "{}", entries.len());
    let events: Vec<Value> = serde_json::from_str(&system_log).unwrap();
    assert!(events.len() >= 15, "{}", events.len());
    for s in &secrets {
        assert!(s.len() >= 8, "a secret long enough to be searched for: {s}");
        for (name, haystack) in [("the tracing logs", &text), ("the System Log", &system_log), ("the request log", &request_log)] {
            assert!(!haystack.contains(s.as_str()), "{name} contain the secret {s}");
        }
    }
}

// ----- reflected values are escaped -----

fn assert_escaped(body: &str, what: &str) {
    assert!(!body.contains(SCRIPT), "{what}: the script tag is in the page raw: {body}");
    assert!(body.contains(ESCAPED), "{what}: the escaped text is not in the page: {body}");
}

#[tokio::test]
async fn the_hosted_pages_escape_login_hint_state_and_user_names() {
    let mut cfg = TenantConfig::default_tenant();
    let bob = cfg.users.iter_mut().find(|u| u.profile.login == BOB).unwrap();
    bob.profile.login = format!("{SCRIPT}@example.com");
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    // login_hint travels to the sign-in page's username field.
    let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("login_hint", SCRIPT)).await;
    let page = c.get(&r.location().unwrap()).await;
    assert_escaped(&page.body, "login_hint on the sign-in page");
    // A wrong password shows the username again.
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let from = hidden_field(&page.body, "fromURI").unwrap();
    let again = c
        .post_form("/login/login.htm", Auth::Nothing, &[("username", SCRIPT), ("password", "x"), ("fromURI", &from), ("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_escaped(&again.body, "the username after a wrong password");
    // state and error_description in a form_post answer.
    let st = c.authn(ALICE, PASSWORD).await;
    let req =
        Authorize { state: SCRIPT.into(), ..Authorize::new(CLIENT_ID) }.param("response_mode", "form_post").param("sessionToken", &st);
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_escaped(&r.body, "state in form_post");
    let req = Authorize { state: SCRIPT.into(), ..Authorize::new(CLIENT_ID) }.param("response_mode", "form_post").param("prompt", SCRIPT);
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_escaped(&r.body, "state in a form_post error");
    assert!(r.body.contains("name=\"error_description\""), "{}", r.body);
    // The signed-in landing page shows the user's login.
    let evil = Client::new(&idp);
    let st = evil.authn(&format!("{SCRIPT}@example.com"), PASSWORD).await;
    evil.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("sessionToken", &st)).await;
    let home = evil.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_escaped(&home.body, "the login on the landing page");
}

#[tokio::test]
async fn the_stub_bsr_escapes_what_the_idp_and_the_user_send() {
    let mut cfg = TenantConfig::default_tenant();
    let alice = cfg.users.iter_mut().find(|u| u.profile.login == ALICE).unwrap();
    alice.profile.display_name = Some(SCRIPT.into());
    let env = StubEnv::start(cfg, |_| {}).await;
    let b = browser();
    // error and error_description of a callback.
    let r =
        b.get(format!("{}/oauth2/callback?error={SCRIPT}&error_description={SCRIPT}&state=x", env.bsr.base_url())).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(body.matches(ESCAPED).count(), 2, "{body}");
    assert!(!body.contains(SCRIPT));
    // The user's name on the home page and in the admin panel.
    let w = walk(&b, &format!("{}/login", env.bsr.base_url()), ALICE, PASSWORD).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    assert_escaped(&w.body, "the name on the stub's home page");
    let r = b.get(format!("{}/admin/users", env.bsr.base_url())).basic_auth("admin", Some("admin-password")).send().await.unwrap();
    assert_escaped(&r.text().await.unwrap(), "the name in the stub's admin panel");
    // A path reflected on the not-found page stays percent-encoded, and so inert.
    let r = b.get(format!("{}/{}", env.bsr.base_url(), "%3Cscript%3Ealert(1)%3C%2Fscript%3E")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body = r.text().await.unwrap();
    assert!(!body.contains(SCRIPT) && body.contains("/%3Cscript%3Ealert(1)%3C%2Fscript%3E"), "{body}");
}

// ----- CSRF and cookies -----

#[rstest]
#[case::no_csrf_field(false, true)]
#[case::no_csrf_cookie(true, false)]
#[case::neither(false, false)]
#[tokio::test]
async fn the_sign_in_form_refuses_a_missing_csrf_token(#[case] field: bool, #[case] cookie: bool) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let page = c.get("/login/login.htm").await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let http = if cookie { c.http.clone() } else { browser() };
    let mut form = vec![("username", ALICE), ("password", PASSWORD), ("fromURI", "/")];
    if field {
        form.push(("csrf", &csrf));
    }
    let r = http
        .post(c.url("/login/login.htm"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().starts_with("sid=")), "no session");
    assert!(r.text().await.unwrap().contains("Your sign-in form expired. Please try again."));
}

#[tokio::test]
async fn the_sign_in_form_refuses_a_wrong_csrf_token() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let page = c.get("/login/login.htm").await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let wrong = format!("{}x", &csrf[..csrf.len() - 1]);
    let r = c
        .post_form("/login/login.htm", Auth::Nothing, &[("username", ALICE), ("password", PASSWORD), ("fromURI", "/"), ("csrf", &wrong)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(set_cookie_value(&r, "sid").is_none());
    // The refusal comes with a fresh form (and cookie); its token works.
    let csrf = hidden_field(&r.body, "csrf").unwrap();
    let r = c
        .post_form("/login/login.htm", Auth::Nothing, &[("username", ALICE), ("password", PASSWORD), ("fromURI", "/"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
}

#[tokio::test]
async fn the_stub_admin_form_refuses_a_wrong_csrf_token() {
    let env = StubEnv::start(TenantConfig::default_tenant(), |_| {}).await;
    let b = browser();
    let page = b.get(format!("{}/admin/login", env.bsr.base_url())).send().await.unwrap().text().await.unwrap();
    let mut csrf = hidden_field(&page, "csrf").unwrap();
    for token in ["", "wrong-token"] {
        let form = encode_form(&[("username", "admin"), ("password", "admin-password"), ("csrf", token)]);
        let r = b
            .post(format!("{}/admin/login", env.bsr.base_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body = r.text().await.unwrap();
        assert!(body.contains("the sign-in form expired; please try again"));
        // The refusal comes with a fresh form (and cookie).
        csrf = hidden_field(&body, "csrf").unwrap();
    }
    let form = encode_form(&[("username", "admin"), ("password", "admin-password"), ("csrf", &csrf)]);
    let r = b
        .post(format!("{}/admin/login", env.bsr.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

fn assert_safe_cookie(c: &str) {
    let attrs: Vec<&str> = c.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "not HttpOnly: {c}");
    assert!(attrs.iter().any(|a| a.starts_with("SameSite=")), "no SameSite: {c}");
}

#[tokio::test]
async fn every_cookie_is_http_only_and_same_site() {
    let env = StubEnv::start(TenantConfig::default_tenant(), |_| {}).await;
    let b = browser();
    // A sign-in through the stub sets the stub's attempt and session cookies and the IdP's csrf and sid.
    let w = walk(&b, &format!("{}/login", env.bsr.base_url()), ALICE, PASSWORD).await;
    assert_eq!(w.status, StatusCode::OK);
    let mut names: Vec<String> = w.set_cookies.iter().map(|c| c.split('=').next().unwrap().to_string()).collect();
    for c in &w.set_cookies {
        assert_safe_cookie(c);
    }
    // The admin sign-in.
    let page = b.get(format!("{}/admin/login", env.bsr.base_url())).send().await.unwrap();
    let mut cookies: Vec<String> = page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let csrf = hidden_field(&page.text().await.unwrap(), "csrf").unwrap();
    let form = encode_form(&[("username", "admin"), ("password", "admin-password"), ("csrf", &csrf)]);
    let r = b
        .post(format!("{}/admin/login", env.bsr.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    cookies.extend(r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()));
    // Sign-out at the IdP clears its session cookie, with the same attributes.
    let out = Client::new(&env.idp);
    let st = out.authn(ALICE, PASSWORD).await;
    out.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("sessionToken", &st)).await;
    let r = out.get("/oauth2/default/v1/logout").await;
    cookies.extend(r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()));
    for c in &cookies {
        assert_safe_cookie(c);
    }
    names.extend(cookies.iter().map(|c| c.split('=').next().unwrap().to_string()));
    let mut names: Vec<&str> = names.iter().map(|n| if n.starts_with("bsr_login_") { "bsr_login_<hash>" } else { n.as_str() }).collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["bsr_admin", "bsr_admin_csrf", "bsr_login_<hash>", "bsr_session", "mock_csrf", "sid"]);
}
