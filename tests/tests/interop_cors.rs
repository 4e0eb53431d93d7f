//! What the browser SDK needs from mock-idp besides OIDC itself (issue 8): Okta's Trusted Origins as CORS
//! headers on the endpoints a single-page app calls, for configured origins only; the default tenant's
//! browser app `bsr-spa`; and the tenant file's checks of `trusted_origins`. The okta-auth-js test
//! (interop_browser.rs) shows a real browser accepting these answers; this one pins them exactly.

use mock_idp::{MockIdp, Options, TenantConfig};
use reqwest::header::HeaderMap;
use rstest::rstest;

const TRUSTED: &str = "http://127.0.0.1:4300";

async fn idp() -> MockIdp {
    MockIdp::start(Options::default()).await.unwrap()
}

fn client() -> reqwest::Client {
    mock_idp::tls::install_default_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn cors_headers(h: &HeaderMap) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("access-control-") || k.as_str() == "vary")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    v.sort();
    v
}

#[rstest]
#[case::token("/oauth2/default/v1/token", "POST, OPTIONS")]
#[case::org_token("/oauth2/v1/token", "POST, OPTIONS")]
#[case::keys("/oauth2/default/v1/keys", "GET, OPTIONS")]
#[case::userinfo("/oauth2/v1/userinfo", "GET, POST, OPTIONS")]
#[case::revoke("/oauth2/default/v1/revoke", "POST, OPTIONS")]
#[case::introspect("/oauth2/v1/introspect", "POST, OPTIONS")]
#[case::logout("/oauth2/default/v1/logout", "GET, POST, OPTIONS")]
#[case::authn("/api/v1/authn", "POST, OPTIONS")]
#[case::discovery("/oauth2/default/.well-known/openid-configuration", "GET, OPTIONS")]
#[case::org_discovery("/.well-known/openid-configuration", "GET, OPTIONS")]
#[tokio::test]
async fn a_trusted_origins_preflight_is_answered(#[case] path: &str, #[case] methods: &str) {
    let idp = idp().await;
    let r = client()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", idp.base_url()))
        .header("origin", TRUSTED)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-okta-user-agent-extended")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        cors_headers(r.headers()),
        pairs(&[
            ("access-control-allow-origin", TRUSTED),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", methods),
            ("access-control-allow-headers", "content-type,x-okta-user-agent-extended"),
            ("access-control-max-age", "3600"),
            ("vary", "Origin"),
        ])
    );
}

#[tokio::test]
async fn a_trusted_origin_gets_cors_headers_on_answers_and_errors() {
    let idp = idp().await;
    let c = client();
    let keys = c.get(format!("{}/oauth2/default/v1/keys", idp.base_url())).header("origin", "http://localhost:4300").send().await.unwrap();
    assert_eq!(keys.status(), 200);
    let want = pairs(&[
        ("access-control-allow-origin", "http://localhost:4300"),
        ("access-control-allow-credentials", "true"),
        ("access-control-expose-headers", "WWW-Authenticate"),
        ("vary", "Origin"),
    ]);
    assert_eq!(cors_headers(keys.headers()), want);
    // An error is readable by the page too: userinfo's 401 and its challenge.
    let ui = c.get(format!("{}/oauth2/v1/userinfo", idp.base_url())).header("origin", "http://localhost:4300").send().await.unwrap();
    assert_eq!(ui.status(), 401);
    assert_eq!(cors_headers(ui.headers()), want);
    assert_eq!(ui.headers()["www-authenticate"], "Bearer error=\"invalid_token\", error_description=\"The access token is invalid\"");
}

#[rstest]
#[case::untrusted_origin("http://evil.example", "/oauth2/default/v1/token")]
#[case::same_host_other_port("http://127.0.0.1:4301", "/oauth2/v1/keys")]
#[case::https_variant("https://127.0.0.1:4300", "/oauth2/v1/keys")]
#[case::authorize_is_a_navigation("http://127.0.0.1:4300", "/oauth2/v1/authorize")]
#[case::management_api("http://127.0.0.1:4300", "/api/v1/users")]
#[tokio::test]
async fn no_cors_headers_for_other_origins_or_other_endpoints(#[case] origin: &str, #[case] path: &str) {
    let idp = idp().await;
    let c = client();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{}{path}", idp.base_url()))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    // Not answered as a preflight: the router's 405 (E0000022), which browsers treat as a refusal.
    assert_eq!(pre.status(), 405);
    assert!(!pre.headers().contains_key("access-control-allow-origin"));
    let get = c.get(format!("{}{path}", idp.base_url())).header("origin", origin).send().await.unwrap();
    assert!(!get.headers().contains_key("access-control-allow-origin"), "{path} from {origin}: {:?}", get.headers());
}

#[tokio::test]
async fn the_default_tenant_has_the_browser_app_and_its_trusted_origins() {
    let idp = idp().await;
    idp.with_tenant(|t| {
        let spa = t.apps.values().find(|a| a.client_id == "bsr-spa").expect("bsr-spa");
        assert!(spa.is_public());
        assert!(spa.pkce_required);
        assert_eq!(spa.application_type, mock_idp::core::model::ApplicationType::Browser);
        assert_eq!(spa.redirect_uris, ["http://127.0.0.1:4300/callback", "http://localhost:4300/callback"]);
        assert_eq!(spa.post_logout_redirect_uris, ["http://127.0.0.1:4300/signed-out", "http://localhost:4300/signed-out"]);
        let rt = spa.refresh_token.expect("refresh tokens");
        assert_eq!((rt.rotation_type, rt.leeway), (mock_idp::core::model::RotationType::Rotate, 15));
        assert!(t.cors_allowed("http://127.0.0.1:4300") && t.cors_allowed("http://localhost:4300"));
        assert!(!t.cors_allowed("http://127.0.0.1:3000"));
    });
}

#[rstest]
#[case::path(
    "http://127.0.0.1:4300/app",
    "\"http://127.0.0.1:4300/app\" is not an origin: write it as http://127.0.0.1:4300 (no path, query or trailing slash)"
)]
#[case::trailing_slash(
    "http://127.0.0.1:4300/",
    "\"http://127.0.0.1:4300/\" is not an origin: write it as http://127.0.0.1:4300 (no path, query or trailing slash)"
)]
#[case::not_http("ftp://example.com", "\"ftp://example.com\" is not an http or https origin")]
#[case::not_a_url("example.com", "\"example.com\" is not an origin (scheme://host[:port]): relative URL without a base")]
#[test]
fn bad_trusted_origins_are_located_errors(#[case] origin: &str, #[case] message: &str) {
    let src = mock_idp::config::DEFAULT_TENANT_YAML.replace("origin: \"http://localhost:4300\"", &format!("origin: \"{origin}\""));
    let e = TenantConfig::parse(&src, "tenant.yaml").unwrap_err();
    assert_eq!((e.file.as_str(), e.field.as_str(), e.message.as_str()), ("tenant.yaml", "trusted_origins[1].origin", message));
    let line = src.lines().position(|l| l.contains(&format!("origin: \"{origin}\""))).unwrap() + 1;
    assert_eq!(e.line, Some(line));
}

#[test]
fn a_duplicate_or_scopeless_trusted_origin_is_refused() {
    let dup = mock_idp::config::DEFAULT_TENANT_YAML.replace("origin: \"http://localhost:4300\"", "origin: \"http://127.0.0.1:4300\"");
    let e = TenantConfig::parse(&dup, "t.yaml").unwrap_err();
    assert_eq!(e.field, "trusted_origins[1].origin");
    assert_eq!(e.message, "An object with this field already exists in the current organization: http://127.0.0.1:4300");
    let none = mock_idp::config::DEFAULT_TENANT_YAML
        .replace("origin: \"http://localhost:4300\", scopes: [CORS, REDIRECT]", "origin: \"http://localhost:4300\", scopes: []");
    let e = TenantConfig::parse(&none, "t.yaml").unwrap_err();
    assert_eq!((e.field.as_str(), e.message.as_str()), ("trusted_origins[1].scopes", "a trusted origin needs at least one scope"));
    let bad_scope = mock_idp::config::DEFAULT_TENANT_YAML.replace(
        "origin: \"http://localhost:4300\", scopes: [CORS, REDIRECT]",
        "origin: \"http://localhost:4300\", scopes: [CORS, ANYTHING]",
    );
    let e = TenantConfig::parse(&bad_scope, "t.yaml").unwrap_err();
    assert_eq!(e.field, "trusted_origins[1].scopes[1]");
    assert!(e.message.starts_with("unknown variant `ANYTHING`, expected one of `CORS`, `REDIRECT`, `IFRAME_EMBED`"), "{}", e.message);
}

/// okta-auth-js revokes a public client's tokens with `Authorization: Basic base64(client_id)`: no colon, no
/// secret. Okta takes that as the client's id; for a confidential client it is not valid Basic credentials.
#[rstest]
#[case::public_client("bsr-spa", 200, "")]
#[case::confidential_client(
    "bsr-local",
    401,
    r#"{"error":"invalid_client","error_description":"Found Authentication header but was not valid client credentials."}"#
)]
#[case::unknown_client(
    "nobody",
    401,
    r#"{"error":"invalid_client","error_description":"Found Authentication header but was not valid client credentials."}"#
)]
#[tokio::test]
async fn revoke_with_the_sdks_basic_client_id_header(#[case] client_id: &str, #[case] status: u16, #[case] body: &str) {
    use base64::Engine;
    let idp = idp().await;
    let creds = base64::engine::general_purpose::STANDARD.encode(client_id);
    let r = client()
        .post(format!("{}/oauth2/default/v1/revoke", idp.base_url()))
        .header("authorization", format!("Basic {creds}"))
        .header("origin", TRUSTED)
        .form(&[("token", "not-a-token"), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["access-control-allow-origin"], TRUSTED);
    assert_eq!(r.text().await.unwrap(), body);
}
