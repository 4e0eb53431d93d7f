//! Integration tests of mock-idp's core (issue 2) over real HTTP on loopback: discovery, JWKS, authorize,
//! hosted sign-in, authn, token, userinfo, introspect, revoke, logout, System Log, clock, reset.
//!
//! Error texts are Okta's literal strings (okta-behaviour.md §4), written out here rather than taken from
//! `mock_idp::core::errors`, so a typo in a constant fails a test.

use mock_idp::core::model::UserStatus;
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tests::*;

// ---------------------------------------------------------------------------------------------------
// Small assertion helpers.

/// Asserts an OAuth JSON error: status, `error`, `error_description`, nothing else, Okta's headers.
fn assert_oauth_error(got: (StatusCode, Value), status: u16, error: &str, description: &str) {
    let (s, b) = got;
    assert_eq!((s.as_u16(), &b), (status, &json!({"error": error, "error_description": description})));
}

/// Asserts a management-API error body (`E0000…`): every field but the random `errorId` exactly.
fn assert_api_error(r: &Reply, status: u16, code: &str, summary: &str, causes: &[&str]) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    let b = r.json();
    let id = b["errorId"].as_str().unwrap_or_else(|| panic!("errorId in {b}"));
    assert!(id.starts_with("oae") && id.len() == 25, "errorId {id}");
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    let expected = json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": id, "errorCauses": causes});
    assert_eq!(b, expected);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
}

/// Asserts an authorize error redirect: exactly `[state,] error, error_description`, in that order.
fn assert_error_redirect(r: &Reply, redirect_uri: &str, state: Option<&str>, error: &str, description: &str) {
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let loc = r.location().expect("Location");
    assert!(loc.starts_with(&format!("{redirect_uri}?")), "{loc}");
    let mut expected = vec![];
    if let Some(s) = state {
        expected.push(("state".to_string(), s.to_string()));
    }
    expected.push(("error".into(), error.into()));
    expected.push(("error_description".into(), description.into()));
    assert_eq!(url_params(&loc), expected, "{loc}");
    assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
}

/// Asserts Okta's HTML error page (400 unless said otherwise) with this code and description, no redirect.
fn assert_error_page(r: &Reply, status: u16, code: &str, description: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.location(), None);
    assert!(r.header("content-type").unwrap_or_default().starts_with("text/html"), "{:?}", r.headers);
    assert!(r.body.contains("Your request resulted in an error."), "{}", r.body);
    assert_eq!(error_page(&r.body), Some((code.to_string(), description.to_string())));
}

/// The code of a successful authorize redirect (and checks the state).
fn code_of(r: &Reply, state: &str) -> String {
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let loc = r.location().expect("Location");
    let p = url_params(&loc);
    assert_eq!(p.len(), 2, "{loc}");
    assert_eq!(p[0].0, "code", "{loc}");
    assert_eq!(p[1], ("state".to_string(), state.to_string()), "{loc}");
    p[0].1.clone()
}

fn is_login_form_redirect(r: &Reply) -> bool {
    r.status == StatusCode::FOUND && r.location().is_some_and(|l| l.contains("/login/login.htm?fromURI="))
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

async fn spa_idp() -> mock_idp::MockIdp {
    idp_with(tenant_with_spa()).await
}

// ---------------------------------------------------------------------------------------------------
// Discovery and JWKS.

fn expected_discovery(base: &str, server: Server, oauth_metadata: bool) -> Value {
    let iss = server.issuer_at(base);
    let b = format!("{base}{}", server.path_prefix());
    let mut scopes = json!(["openid", "profile", "email", "address", "phone", "offline_access"]);
    let mut grants = json!(["authorization_code", "refresh_token"]);
    if server == Server::Org {
        scopes.as_array_mut().unwrap().push(json!("groups"));
    } else if oauth_metadata {
        grants.as_array_mut().unwrap().push(json!("client_credentials"));
    }
    let claims = if oauth_metadata {
        json!(["ver", "jti", "iss", "aud", "iat", "exp", "cid", "uid", "scp", "sub"])
    } else {
        json!([
            "iss",
            "ver",
            "sub",
            "aud",
            "iat",
            "exp",
            "jti",
            "auth_time",
            "amr",
            "idp",
            "nonce",
            "name",
            "nickname",
            "preferred_username",
            "given_name",
            "family_name",
            "email",
            "email_verified",
            "zoneinfo",
            "locale",
            "updated_at",
            "at_hash"
        ])
    };
    let methods = json!(["client_secret_basic", "client_secret_post", "none"]);
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{b}/v1/authorize"),
        "token_endpoint": format!("{b}/v1/token"),
        "userinfo_endpoint": format!("{b}/v1/userinfo"),
        "jwks_uri": format!("{b}/v1/keys"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": grants,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": methods,
        "claims_supported": claims,
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{b}/v1/introspect"),
        "introspection_endpoint_auth_methods_supported": methods,
        "revocation_endpoint": format!("{b}/v1/revoke"),
        "revocation_endpoint_auth_methods_supported": methods,
        "end_session_endpoint": format!("{b}/v1/logout"),
        "request_parameter_supported": false,
    })
}

#[rstest]
#[case::org(Server::Org, "/.well-known/openid-configuration", false)]
#[case::default_openid(Server::DEFAULT, "/oauth2/default/.well-known/openid-configuration", false)]
#[case::default_oauth(Server::DEFAULT, "/oauth2/default/.well-known/oauth-authorization-server", true)]
#[tokio::test]
async fn discovery_documents_have_oktas_fields_and_only_implemented_features(
    #[case] server: Server,
    #[case] path: &str,
    #[case] oauth_metadata: bool,
) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.get(path).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let doc = r.json();
    assert_eq!(doc, expected_discovery(idp.base_url(), server, oauth_metadata));
    // Every endpoint advertised answers (no 404 for a URL the document names).
    for k in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"]
    {
        let url = doc[k].as_str().unwrap();
        let s = c.http.get(url).send().await.unwrap().status();
        assert_ne!(s, StatusCode::NOT_FOUND, "{k} {url}");
    }
    for absent in ["registration_endpoint", "device_authorization_endpoint", "pushed_authorization_request_endpoint"] {
        assert!(doc.get(absent).is_none(), "{absent} advertised but not implemented");
    }
}

#[rstest]
#[case::openid("/oauth2/nope/.well-known/openid-configuration")]
#[case::oauth("/oauth2/nope/.well-known/oauth-authorization-server")]
#[case::keys("/oauth2/nope/v1/keys")]
#[case::authorize("/oauth2/nope/v1/authorize?client_id=bsr-local")]
#[case::userinfo("/oauth2/nope/v1/userinfo")]
#[tokio::test]
async fn unknown_authorization_server_is_oktas_404(#[case] path: &str) {
    let idp = idp().await;
    let r = Client::new(&idp).get(path).await;
    assert_api_error(&r, 404, "E0000007", "Not found: Resource not found: nope (AuthorizationServer)", &[]);
}

#[tokio::test]
async fn unknown_path_and_wrong_method_get_okta_api_errors() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.get("/no/such/thing").await;
    assert_api_error(&r, 404, "E0000007", "Not found: Resource not found: /no/such/thing (Resource)", &[]);
    let r = c.get("/oauth2/v1/token").await;
    assert_api_error(&r, 405, "E0000022", "The endpoint does not support the provided HTTP method", &[]);
    assert_eq!(c.get("/_mock/health").await.body, "ok");
}

#[rstest]
#[case::org(Server::Org)]
#[case::default(Server::DEFAULT)]
#[tokio::test]
async fn jwks_has_rsa_2048_signing_keys_and_cache_control(#[case] server: Server) {
    let idp = idp().await;
    let r = Client::new(&idp).get(&server.endpoint("keys")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=3600, must-revalidate"));
    let jwks = r.json();
    assert_eq!(keys_of(&jwks), ["keys"]);
    let keys = jwks["keys"].as_array().unwrap();
    // ACTIVE and NEXT are published.
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert_eq!(keys_of(k), sorted(&["kty", "alg", "kid", "use", "e", "n"]));
        assert_eq!((&k["kty"], &k["alg"], &k["use"], &k["e"]), (&json!("RSA"), &json!("RS256"), &json!("sig"), &json!("AQAB")));
        let n = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, k["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256, "RSA-2048 modulus");
        assert!(!k["kid"].as_str().unwrap().is_empty());
    }
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
}

#[tokio::test]
async fn org_and_custom_servers_sign_with_different_keys() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let kids = |v: Value| v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let org = kids(c.get("/oauth2/v1/keys").await.json());
    let def = kids(c.get("/oauth2/default/v1/keys").await.json());
    assert!(org.iter().all(|k| !def.contains(k)), "{org:?} {def:?}");
}

// ---------------------------------------------------------------------------------------------------
// Tokens and their claims.

#[rstest]
#[case::org(Server::Org)]
#[case::default(Server::DEFAULT)]
#[tokio::test]
async fn id_token_verifies_against_jwks_and_has_exact_claims(#[case] server: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    idp.clock().advance_ms(100_000);
    let t = c.login(server, ALICE, PASSWORD, "openid profile email").await;
    let jwt = t.id_token.as_deref().expect("an ID token for openid");
    assert_eq!(decode_header(jwt), json!({"alg": "RS256", "kid": decode_header(jwt)["kid"]}));
    let claims = verify_id_token(idp.base_url(), server, jwt, CLIENT_ID).await.expect("signature, iss, aud and exp verify");
    let jti = claims["jti"].as_str().unwrap().to_string();
    assert!(jti.starts_with("ID.") && jti.len() > 10, "{jti}");
    let at = T0 + 100;
    assert_eq!(
        claims,
        json!({
            "sub": ALICE_ID,
            "ver": 1,
            "iss": server.issuer(&idp),
            "aud": CLIENT_ID,
            "iat": at,
            "exp": at + 3600,
            "jti": jti,
            "amr": ["pwd"],
            "idp": ORG_ID,
            "nonce": t.nonce,
            "auth_time": at,
            "at_hash": at_hash(&t.access_token),
            "name": "Alice Example",
            "preferred_username": ALICE,
            "given_name": "Alice",
            "family_name": "Example",
            "locale": "en_US",
            "zoneinfo": "America/Los_Angeles",
            "updated_at": T0,
            "email": ALICE,
            "email_verified": true,
        })
    );
    // The token response itself: Okta's shape and headers.
    assert_eq!(keys_of(&t.raw), sorted(&["token_type", "expires_in", "access_token", "scope", "id_token"]));
    assert_eq!(
        (&t.raw["token_type"], &t.raw["expires_in"], &t.raw["scope"]),
        (&json!("Bearer"), &json!(3600), &json!("openid profile email"))
    );
}

#[tokio::test]
async fn id_token_without_nonce_or_scope_claims_has_only_the_base_claims() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let req = Authorize { nonce: String::new(), ..Authorize::new(CLIENT_ID).scope("openid") };
    let t = c.login_with(Server::Org, BOB, PASSWORD, req, Auth::BSR).await;
    let claims = verify_id_token(idp.base_url(), Server::Org, t.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
    assert_eq!(keys_of(&claims), sorted(&["sub", "ver", "iss", "aud", "iat", "exp", "jti", "amr", "idp", "auth_time", "at_hash"]));
    assert_eq!(claims["sub"], BOB_ID);
}

#[tokio::test]
async fn custom_server_access_token_has_exact_claims_and_verifies() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile").await;
    let claims = verify_jwt(idp.base_url(), Server::DEFAULT, &t.access_token, "api://default").await.expect("AT verifies against JWKS");
    let jti = claims["jti"].as_str().unwrap().to_string();
    assert!(jti.starts_with("AT.") && !jti[3..].contains('.'), "{jti}");
    assert_eq!(
        claims,
        json!({
            "ver": 1,
            "jti": jti,
            "iss": idp.issuer("default"),
            "aud": "api://default",
            "iat": T0,
            "exp": T0 + 3600,
            "cid": CLIENT_ID,
            "uid": ALICE_ID,
            "scp": ["openid", "profile"],
            "auth_time": T0,
            "sub": ALICE,
        })
    );
    // With offline_access, Okta suffixes the jti with the refresh token's id (`oar…`).
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid offline_access").await;
    assert!(t.refresh_token.is_some());
    let jti = decode_claims(&t.access_token)["jti"].as_str().unwrap().to_string();
    let parts: Vec<&str> = jti.split('.').collect();
    assert_eq!(parts.len(), 3, "{jti}");
    assert!(parts[2].starts_with("oar"), "{jti}");
}

#[tokio::test]
async fn org_access_tokens_are_signed_by_an_unpublished_key() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::Org, ALICE, PASSWORD, "openid").await;
    let kid = decode_header(&t.access_token)["kid"].as_str().unwrap().to_string();
    let jwks = c.get("/oauth2/v1/keys").await.json();
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k["kid"] != kid.as_str()), "org AT key {kid} must not be in the org JWKS");
    let err = verify_jwt(idp.base_url(), Server::Org, &t.access_token, idp.base_url()).await.unwrap_err();
    assert!(err.to_string().contains("is not in the JWKS"), "{err}");
    let claims = decode_claims(&t.access_token);
    assert_eq!((&claims["iss"], &claims["aud"]), (&json!(idp.base_url()), &json!(idp.base_url())));
    // Resource servers validate org access tokens at /introspect instead.
    assert!(c.is_active(Server::Org, &t.access_token).await);
}

#[tokio::test]
async fn token_responses_carry_no_store_headers() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let r = c
        .post_form(
            &Server::DEFAULT.endpoint("token"),
            Auth::BSR,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &req.pkce.unwrap().verifier),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json;charset=UTF-8"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache, no-store"));
    assert_eq!(r.header("pragma").as_deref(), Some("no-cache"));
    assert!(r.header("x-okta-request-id").unwrap().starts_with("req"));
}

#[tokio::test]
async fn groups_claim_lists_groups_and_fails_over_oktas_100_group_limit() {
    use mock_idp::config::{GroupConfig, GroupProfileConfig};
    use mock_idp::core::model::{GroupFilterType, GroupsClaim};
    let mk = |extra: usize| {
        let mut cfg = mock_idp::TenantConfig::default_tenant();
        cfg.apps[0].settings.oauth_client.groups_claim =
            Some(GroupsClaim { name: "groups".into(), filter_type: GroupFilterType::Regex, value: ".*".into() });
        for i in 0..extra {
            cfg.groups.push(GroupConfig {
                id: None,
                profile: GroupProfileConfig { name: format!("Extra {i:03}"), description: None },
                members: vec![ALICE.into()],
            });
        }
        cfg
    };
    // BSR Users plus 99 = 100 groups: allowed.
    let idp = idp_with(mk(99)).await;
    let c = Client::new(&idp);
    let t = c.login(Server::Org, ALICE, PASSWORD, "openid").await;
    let groups = decode_claims(t.id_token.as_deref().unwrap())["groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 100);
    assert_eq!(groups[0], "BSR Users");
    assert_eq!(groups[1], "Extra 000");
    // 101 groups: the token request fails with Okta's error.
    let idp = idp_with(mk(100)).await;
    let c = Client::new(&idp);
    let req = Authorize::new(CLIENT_ID).scope("openid");
    let code = c.code(Server::Org, ALICE, PASSWORD, &req).await;
    let got = c.token_code(Server::Org, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    assert_oauth_error(got, 400, "server_error", "The groups claim matched too many groups and must be configured to match fewer groups.");
}

// ---------------------------------------------------------------------------------------------------
// Classic authentication API.

#[tokio::test]
async fn authn_returns_a_session_token_and_oktas_401_on_bad_password() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let (s, b) = c.authn_raw(ALICE, PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "SUCCESS");
    assert_eq!(b["expiresAt"], "2030-01-01T00:05:00.000Z");
    assert!(b["sessionToken"].as_str().unwrap().len() > 20);
    assert_eq!(b["_embedded"]["user"]["id"], ALICE_ID);
    assert_eq!(b["_embedded"]["user"]["profile"]["login"], ALICE);
    assert_eq!(b["_embedded"]["user"]["profile"]["firstName"], "Alice");
    assert_eq!(b["_embedded"]["user"]["profile"]["lastName"], "Example");
    for (u, p) in [(ALICE, "wrong"), ("nobody@example.com", PASSWORD), (ALICE, "")] {
        let r = c.post_json("/api/v1/authn", &json!({"username": u, "password": p})).await;
        assert_api_error(&r, 401, "E0000004", "Authentication failed", &[]);
    }
    let r = c.post_json("/api/v1/authn", &json!({"username": ALICE})).await;
    assert_api_error(&r, 401, "E0000004", "Authentication failed", &[]);
    let fails = c.logs(r#"eventType eq "user.session.start" and outcome.result eq "FAILURE""#).await;
    assert_eq!(fails.len(), 2, "wrong password and unknown user are logged");
    assert_eq!(fails[0]["actor"]["alternateId"], ALICE);
    assert_eq!(fails[0]["outcome"], json!({"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}));
    assert_eq!(c.events("user.authentication.authenticate").await.len(), 1);
}

#[tokio::test]
async fn authn_with_a_malformed_body_is_oktas_e0000003() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = Reply::from(c.http.post(c.url("/api/v1/authn")).header("content-type", "application/json").body("{nope").send().await.unwrap())
        .await;
    assert_api_error(&r, 400, "E0000003", "The request body was not well-formed.", &["key must be a string"]);
}

#[tokio::test]
async fn session_token_is_single_use_and_short_lived() {
    let idp = idp().await;
    let st = Client::new(&idp).authn(ALICE, PASSWORD).await;
    let req = Authorize::new(CLIENT_ID).param("sessionToken", &st);
    let first = Client::new(&idp).authorize(Server::DEFAULT, &req).await;
    code_of(&first, &req.state);
    // A second use, by a browser without a session, is sent to the sign-in form.
    let second = Client::new(&idp).authorize(Server::DEFAULT, &req).await;
    assert!(is_login_form_redirect(&second), "{second:?}");
    // An unused token dies after 300 s.
    let st = Client::new(&idp).authn(ALICE, PASSWORD).await;
    idp.clock().advance_ms(300_001);
    let r = Client::new(&idp).authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("sessionToken", &st)).await;
    assert!(is_login_form_redirect(&r), "{r:?}");
}

// ---------------------------------------------------------------------------------------------------
// /v1/authorize.

#[rstest]
#[case::org(Server::Org)]
#[case::default(Server::DEFAULT)]
#[tokio::test]
async fn authorize_with_session_token_redirects_with_code_then_state(#[case] server: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let st = c.authn(ALICE, PASSWORD).await;
    let pkce = Pkce::new();
    let (s, loc) =
        c.authorize_with_session_token(server, &st, CLIENT_ID, REDIRECT_URI_LOCALHOST, "openid", "st-1", "n-1", Some(&pkce)).await;
    assert_eq!(s, StatusCode::FOUND);
    let loc = loc.unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT_URI_LOCALHOST}?code=")), "{loc}");
    assert!(loc.ends_with("&state=st-1"), "{loc}");
    let code = url_param(&loc, "code").unwrap();
    let (s, b) = c.token_code(server, Auth::BSR, &code, REDIRECT_URI_LOCALHOST, Some(&pkce.verifier)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn authorize_accepts_a_post_form() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let st = c.authn(ALICE, PASSWORD).await;
    let req = Authorize::new(CLIENT_ID).param("sessionToken", &st);
    let pairs = req.pairs();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = c.post_form(&Server::DEFAULT.endpoint("authorize"), Auth::Nothing, &pairs).await;
    code_of(&r, &req.state);
}

#[rstest]
#[case::unknown_client(&[("client_id", "nope")], "invalid_client", "Invalid value for 'client_id' parameter.")]
#[case::missing_client(&[], "invalid_request", "The required parameter 'client_id' is missing.")]
#[tokio::test]
async fn authorize_with_a_bad_client_is_an_error_page(#[case] extra: &[(&str, &str)], #[case] code: &str, #[case] description: &str) {
    let idp = idp().await;
    let mut p = vec![("response_type", "code"), ("redirect_uri", REDIRECT_URI), ("scope", "openid"), ("state", "s")];
    p.extend_from_slice(extra);
    let r = Client::new(&idp).authorize_raw(Server::Org, &p).await;
    assert_error_page(&r, 400, code, description);
}

#[rstest]
#[case::unregistered(Some("http://evil.example/cb"))]
#[case::trailing_slash(Some("http://127.0.0.1:3000/oauth2/callback/"))]
#[case::https(Some("https://127.0.0.1:3000/oauth2/callback"))]
#[case::missing(None)]
#[tokio::test]
async fn authorize_redirect_uri_mismatch_is_an_html_400_not_a_redirect(#[case] redirect_uri: Option<&str>) {
    let idp = idp().await;
    let mut p = vec![("response_type", "code"), ("client_id", CLIENT_ID), ("scope", "openid"), ("state", "s")];
    if let Some(u) = redirect_uri {
        p.push(("redirect_uri", u));
    }
    let r = Client::new(&idp).authorize_raw(Server::DEFAULT, &p).await;
    let text = format!(
        "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings: {}/admin/app/oidc_client/instance/bsr-local#tab-general",
        idp.base_url()
    );
    assert_error_page(&r, 400, "invalid_request", &text);
    assert!(r.body.contains("400 Bad Request"));
}

#[rstest]
#[case::token(
    "token",
    "unsupported_response_type",
    "The response type is not supported by the authorization server. Configured response types: [code]."
)]
#[case::id_token(
    "id_token",
    "unsupported_response_type",
    "The response type is not supported by the authorization server. Configured response types: [code]."
)]
#[tokio::test]
async fn authorize_unsupported_response_type_redirects_with_state_first(
    #[case] response_type: &str,
    #[case] error: &str,
    #[case] description: &str,
) {
    let idp = idp().await;
    let p =
        [("response_type", response_type), ("client_id", CLIENT_ID), ("redirect_uri", REDIRECT_URI), ("scope", "openid"), ("state", "xyz")];
    let r = Client::new(&idp).authorize_raw(Server::DEFAULT, &p).await;
    assert_error_redirect(&r, REDIRECT_URI, Some("xyz"), error, description);
}

#[tokio::test]
async fn authorize_without_state_is_oktas_invalid_state_redirect() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let p = [("response_type", "code"), ("client_id", CLIENT_ID), ("redirect_uri", REDIRECT_URI), ("scope", "openid")];
    let r = c.authorize_raw(Server::Org, &p).await;
    // Byte for byte the Location Okta sends (captured in public issues).
    assert_eq!(
        r.location().as_deref(),
        Some(
            "http://127.0.0.1:3000/oauth2/callback?error=invalid_request&error_description=The+authentication+request+has+an+invalid+%27state%27+parameter."
        )
    );
    // An empty state is no state.
    let r = c.authorize_raw(Server::Org, &[p[0], p[1], p[2], p[3], ("state", "")]).await;
    assert_error_redirect(&r, REDIRECT_URI, None, "invalid_request", "The authentication request has an invalid 'state' parameter.");
}

#[rstest]
#[case::unknown_scope(
    Server::DEFAULT,
    Some("openid bogus"),
    "invalid_scope",
    "One or more scopes are not configured for the authorization server resource."
)]
#[case::org_without_openid(
    Server::Org,
    Some("profile"),
    "invalid_scope",
    "One or more scopes are not configured for the authorization server resource."
)]
#[case::missing_scope(Server::DEFAULT, None, "invalid_scope", "The requested scope is invalid, unknown, or malformed")]
#[tokio::test]
async fn authorize_scope_errors(#[case] server: Server, #[case] scope: Option<&str>, #[case] error: &str, #[case] description: &str) {
    let idp = idp().await;
    let mut p = vec![("response_type", "code"), ("client_id", CLIENT_ID), ("redirect_uri", REDIRECT_URI), ("state", "s1")];
    if let Some(s) = scope {
        p.push(("scope", s));
    }
    let r = Client::new(&idp).authorize_raw(server, &p).await;
    assert_error_redirect(&r, REDIRECT_URI, Some("s1"), error, description);
}

#[rstest]
#[case::plain(&[("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), ("code_challenge_method", "plain")], "PKCE code challenge method is not supported. Valid values: [S256]")]
#[case::no_method(&[("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")], "PKCE code challenge method is not supported. Valid values: [S256]")]
#[case::illegal_chars(&[("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"), ("code_challenge_method", "S256")], "PKCE code challenge contains illegal characters.")]
#[tokio::test]
async fn authorize_pkce_errors(#[case] pkce: &[(&str, &str)], #[case] description: &str) {
    let idp = idp().await;
    let mut p =
        vec![("response_type", "code"), ("client_id", CLIENT_ID), ("redirect_uri", REDIRECT_URI), ("scope", "openid"), ("state", "p1")];
    p.extend_from_slice(pkce);
    let r = Client::new(&idp).authorize_raw(Server::DEFAULT, &p).await;
    assert_error_redirect(&r, REDIRECT_URI, Some("p1"), "invalid_request", description);
}

#[tokio::test]
async fn authorize_without_challenge_when_the_app_requires_pkce() {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].credentials.oauth_client.pkce_required = Some(true);
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).no_pkce()).await;
    let req_state = url_param(&r.location().unwrap(), "state").unwrap();
    assert_error_redirect(&r, REDIRECT_URI, Some(&req_state), "invalid_request", "PKCE code challenge is required by the application.");
    // With a challenge, a missing verifier at the token endpoint is Okta's "verifier required".
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, None).await;
    assert_oauth_error(got, 400, "invalid_request", "PKCE code verifier is required by the application.");
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_with_state_first() {
    let idp = idp().await;
    let req = Authorize::new(CLIENT_ID).param("prompt", "none");
    let r = Client::new(&idp).authorize(Server::Org, &req).await;
    assert_error_redirect(
        &r,
        REDIRECT_URI,
        Some(&req.state),
        "login_required",
        "The client specified not to prompt, but the user is not logged in.",
    );
    let loc = r.location().unwrap();
    assert!(
        loc.ends_with("&error=login_required&error_description=The+client+specified+not+to+prompt%2C+but+the+user+is+not+logged+in."),
        "{loc}"
    );
}

#[tokio::test]
async fn invalid_prompt_values_are_refused() {
    let idp = idp().await;
    let c = Client::new(&idp);
    for v in ["bogus", "none login"] {
        let req = Authorize::new(CLIENT_ID).param("prompt", v);
        let r = c.authorize(Server::Org, &req).await;
        assert_error_redirect(
            &r,
            REDIRECT_URI,
            Some(&req.state),
            "invalid_request",
            "Invalid value for 'prompt' parameter. Supported values: [none, consent, login, consent and login]",
        );
    }
}

#[rstest]
#[case::org(Server::Org, "app.oauth2.authorize")]
#[case::default(Server::DEFAULT, "app.oauth2.as.authorize")]
#[tokio::test]
async fn unassigned_user_is_access_denied(#[case] server: Server, #[case] event: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let st = c.authn(CAROL, PASSWORD).await;
    let req = Authorize::new(CLIENT_ID).param("sessionToken", &st);
    let r = c.authorize(server, &req).await;
    assert_error_redirect(&r, REDIRECT_URI, Some(&req.state), "access_denied", "User is not assigned to the client application.");
    let ev = c.events(event).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["outcome"], json!({"result": "FAILURE", "reason": "User is not assigned to the client application."}));
    assert_eq!(ev[0]["actor"]["id"], CAROL_ID);
    assert_eq!(ev[0]["client"]["id"], CLIENT_ID);
    // Carol's session exists, but she still gets no code for this app.
    let r = c.authorize(server, &Authorize::new(CLIENT_ID)).await;
    assert_eq!(url_param(&r.location().unwrap(), "error").as_deref(), Some("access_denied"));
}

#[rstest]
#[case::suspended(UserStatus::Suspended)]
#[case::deprovisioned(UserStatus::Deprovisioned)]
#[case::locked_out(UserStatus::LockedOut)]
#[case::staged(UserStatus::Staged)]
#[tokio::test]
async fn users_who_are_not_active_cannot_sign_in(#[case] status: UserStatus) {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.users[1].status = status;
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let r = c.post_json("/api/v1/authn", &json!({"username": BOB, "password": PASSWORD})).await;
    assert_api_error(&r, 401, "E0000004", "Authentication failed", &[]);
    let r = c.browser_authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID), BOB, PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Unable to sign in"), "{}", r.body);
}

#[tokio::test]
async fn a_user_suspended_during_a_session_gets_no_more_codes() {
    let idp = idp().await;
    let c = Client::new(&idp);
    c.login(Server::DEFAULT, BOB, PASSWORD, "openid").await;
    let req = Authorize::new(CLIENT_ID);
    code_of(&c.authorize(Server::DEFAULT, &req).await, &req.state);
    idp.with_tenant(|t| t.users.get_mut(BOB_ID).unwrap().status = UserStatus::Suspended);
    let req = Authorize::new(CLIENT_ID);
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert!(is_login_form_redirect(&r), "{r:?}");
    let r = c.authorize(Server::DEFAULT, &req.clone().param("prompt", "none")).await;
    assert_error_redirect(
        &r,
        REDIRECT_URI,
        Some(&req.state),
        "login_required",
        "The client specified not to prompt, but the user is not logged in.",
    );
}

#[tokio::test]
async fn response_mode_fragment_and_form_post() {
    let idp = idp().await;
    let c = Client::new(&idp);
    c.authn(ALICE, PASSWORD).await;
    let st = c.authn(ALICE, PASSWORD).await;
    let req = Authorize::new(CLIENT_ID).param("response_mode", "fragment").param("sessionToken", &st);
    let r = c.authorize(Server::DEFAULT, &req).await;
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT_URI}#code=")), "{loc}");
    assert_eq!(url_param(&loc, "state").as_deref(), Some(req.state.as_str()));
    // Errors go to the fragment too.
    let req = Authorize::new(CLIENT_ID).param("response_mode", "fragment").param("prompt", "none");
    let r = Client::new(&idp).authorize(Server::DEFAULT, &req).await;
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT_URI}#state=")), "{loc}");
    assert_eq!(url_param(&loc, "error").as_deref(), Some("login_required"));
    // form_post: a 200 page that posts code and state to the redirect URI (the session from above is used).
    let req = Authorize::new(CLIENT_ID).param("response_mode", "form_post");
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&format!("<form method=\"post\" action=\"{REDIRECT_URI}\">")), "{}", r.body);
    let code = hidden_field(&r.body, "code").expect("code field");
    assert_eq!(hidden_field(&r.body, "state").as_deref(), Some(req.state.as_str()));
    let (s, b) = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn duplicate_authorize_parameters_are_refused() {
    let idp = idp().await;
    let p = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
        ("state", "a"),
        ("state", "b"),
    ];
    let r = Client::new(&idp).authorize_raw(Server::DEFAULT, &p).await;
    assert_error_page(&r, 400, "invalid_request", "The request contained multiple parameters with the same name.");
}

// ---------------------------------------------------------------------------------------------------
// Hosted sign-in page and the IdP session.

#[tokio::test]
async fn hosted_form_sign_in_sets_a_session_and_later_authorizes_at_once() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(CLIENT_ID).param("login_hint", ALICE);
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert!(is_login_form_redirect(&r), "{r:?}");
    let loc = r.location().unwrap();
    let from = url_param(&loc, "fromURI").unwrap();
    assert!(from.starts_with("/oauth2/default/v1/authorize/redirect?okta_key="), "{from}");
    // The page: labelled fields, the hint pre-filled, a CSRF cookie.
    let page = c.get(&loc).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<label for=\"okta-signin-username\">Username</label>"));
    assert!(page.body.contains("<label for=\"okta-signin-password\">Password</label>"));
    assert!(page.body.contains(&format!("name=\"username\" value=\"{ALICE}\"")));
    assert!(page.header("set-cookie").unwrap().starts_with("mock_csrf="));
    let posted = c.submit_login_form(&loc, ALICE, PASSWORD).await;
    assert_eq!(posted.status, StatusCode::FOUND);
    assert_eq!(posted.location(), Some(format!("{}{from}", idp.base_url())), "Okta redirects with absolute URLs");
    let cookie = posted.header("set-cookie").unwrap();
    assert!(cookie.starts_with("sid=") && cookie.contains("HttpOnly"), "{cookie}");
    let back = c.follow(&posted).await;
    let code = code_of(&back, &req.state);
    let t = Tokens::from_response(
        StatusCode::OK,
        c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.as_ref().unwrap().verifier)).await.1,
        &req.nonce,
    );
    assert_eq!(decode_claims(t.id_token.as_deref().unwrap())["sub"], ALICE_ID);
    // A second authorize with the live session returns a code at once, on either server.
    for server in [Server::DEFAULT, Server::Org] {
        let req = Authorize::new(CLIENT_ID);
        code_of(&c.authorize(server, &req).await, &req.state);
        let req = Authorize::new(CLIENT_ID).param("prompt", "none");
        code_of(&c.authorize(server, &req).await, &req.state);
    }
    // prompt=login forces the form even with a session.
    let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("prompt", "login")).await;
    assert!(is_login_form_redirect(&r), "{r:?}");
    assert_eq!(c.events("user.session.start").await.len(), 1);
}

#[tokio::test]
async fn hosted_form_wrong_password_shows_unable_to_sign_in_and_logs_a_failure() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.authorize(Server::Org, &Authorize::new(CLIENT_ID)).await;
    let loc = r.location().unwrap();
    let posted = c.submit_login_form(&loc, ALICE, "not-the-password").await;
    assert_eq!(posted.status, StatusCode::UNAUTHORIZED);
    assert!(posted.body.contains("role=\"alert\" id=\"signin-error\" aria-live=\"assertive\">Unable to sign in</div>"), "{}", posted.body);
    assert!(posted.header("set-cookie").unwrap().starts_with("mock_csrf="), "a new form with a new CSRF token");
    assert!(!posted.headers.get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with("sid=")));
    let ev = c.events("user.session.start").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["outcome"], json!({"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}));
    assert_eq!(ev[0]["actor"]["id"], ALICE_ID);
    assert_eq!(ev[0]["published"], "2030-01-01T00:00:00.000Z");
    // The form still works afterwards.
    let posted = c.submit_login_form(&loc, ALICE, PASSWORD).await;
    assert_eq!(posted.status, StatusCode::FOUND);
}

#[tokio::test]
async fn hosted_form_without_csrf_is_refused() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.post_form("/login/login.htm", Auth::Nothing, &[("username", ALICE), ("password", PASSWORD), ("fromURI", "/")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Your sign-in form expired. Please try again."));
    assert!(c.events("user.session.start").await.is_empty());
}

#[tokio::test]
async fn max_age_forces_a_fresh_sign_in_when_the_session_is_older() {
    let idp = idp().await;
    let c = Client::new(&idp);
    c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    idp.clock().advance_ms(100_000);
    let req = Authorize::new(CLIENT_ID).param("max_age", "200");
    let code = code_of(&c.authorize(Server::DEFAULT, &req).await, &req.state);
    let (_, b) = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    let claims = decode_claims(b["id_token"].as_str().unwrap());
    assert_eq!((claims["auth_time"].as_i64(), claims["iat"].as_i64()), (Some(T0), Some(T0 + 100)));
    let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("max_age", "50")).await;
    assert!(is_login_form_redirect(&r), "{r:?}");
    let req = Authorize::new(CLIENT_ID).param("max_age", "50").param("prompt", "none");
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_error_redirect(
        &r,
        REDIRECT_URI,
        Some(&req.state),
        "login_required",
        "The client specified not to prompt, but the client app requires re-authentication or MFA.",
    );
    let req = Authorize::new(CLIENT_ID).param("max_age", "0").param("prompt", "none");
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_error_redirect(
        &r,
        REDIRECT_URI,
        Some(&req.state),
        "invalid_request",
        "'prompt' parameter must not have the value 'none' for request with 'zero' as max_age.",
    );
}

#[tokio::test]
async fn idp_sessions_end_after_two_idle_hours() {
    let idp = idp().await;
    let c = Client::new(&idp);
    c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    idp.clock().advance_ms(2 * 3_600_000);
    let req = Authorize::new(CLIENT_ID).param("prompt", "none");
    code_of(&c.authorize(Server::DEFAULT, &req).await, &req.state);
    idp.clock().advance_ms(2 * 3_600_000 + 1);
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_eq!(url_param(&r.location().unwrap(), "error").as_deref(), Some("login_required"));
}

// ---------------------------------------------------------------------------------------------------
// /v1/token: client authentication.

#[rstest]
#[case::no_credentials(Auth::Nothing, 401, "invalid_client", "No client credentials found.")]
#[case::bad_secret_basic(
    Auth::Basic(CLIENT_ID, "wrong"),
    401,
    "invalid_client",
    "The client secret supplied for a confidential client is invalid."
)]
#[case::bad_secret_post(
    Auth::Post(CLIENT_ID, "wrong"),
    401,
    "invalid_client",
    "The client secret supplied for a confidential client is invalid."
)]
#[case::unknown_client(Auth::Basic("nope", "x"), 401, "invalid_client", "Invalid value for 'client_id' parameter.")]
#[case::public_auth_for_a_confidential_client(
    Auth::Public(CLIENT_ID),
    401,
    "invalid_client",
    "Client authentication failed. Either the client or the client credentials are invalid."
)]
#[case::wrong_method(
    Auth::Post(CLIENT_ID, CLIENT_SECRET),
    401,
    "invalid_client",
    "Client authentication failed. Either the client or the client credentials are invalid."
)]
#[case::not_base64(
    Auth::Header("Basic !!!not-base64!!!"),
    401,
    "invalid_client",
    "Found Authentication header but was not valid client credentials."
)]
#[case::no_colon(
    Auth::Header("Basic YnNyLWxvY2Fs"),
    401,
    "invalid_client",
    "Found Authentication header but was not valid client credentials."
)]
#[case::bearer(Auth::Header("Bearer abc"), 401, "invalid_client", "Found Authentication header but was not valid client credentials.")]
#[tokio::test]
async fn token_client_authentication_errors(
    #[case] auth: Auth<'static>,
    #[case] status: u16,
    #[case] error: &str,
    #[case] description: &str,
    #[values(Server::Org, Server::DEFAULT)] server: Server,
) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let got = c.token(server, auth, &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT_URI)]).await;
    assert_oauth_error(got, status, error, description);
    let ev = c.events("app.oauth2.invalid_client_credentials").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["outcome"]["reason"], description);
}

#[tokio::test]
async fn token_refuses_credentials_in_two_places_or_in_the_query() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c
        .post_form(
            "/oauth2/default/v1/token",
            Auth::BSR,
            &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT_URI), ("client_secret", CLIENT_SECRET)],
        )
        .await;
    assert_oauth_error(
        (r.status, r.json()),
        401,
        "invalid_request",
        "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
    );
    let r = c
        .post_form(
            "/oauth2/default/v1/token?client_id=bsr-local&client_secret=bsr-local-secret",
            Auth::Nothing,
            &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT_URI)],
        )
        .await;
    assert_oauth_error((r.status, r.json()), 400, "invalid_request", "Client credentials cannot be supplied via query parameters.");
    assert_eq!(r.header("content-type").as_deref(), Some("application/json;charset=UTF-8"));
}

#[tokio::test]
async fn client_secret_post_works_for_a_post_client() {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].credentials.oauth_client.token_endpoint_auth_method = mock_idp::core::model::AuthMethod::ClientSecretPost;
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let t = c.login_with(Server::DEFAULT, ALICE, PASSWORD, Authorize::new(CLIENT_ID), Auth::Post(CLIENT_ID, CLIENT_SECRET)).await;
    assert!(t.id_token.is_some());
    let got =
        c.token(Server::DEFAULT, Auth::BSR, &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT_URI)]).await;
    assert_oauth_error(
        got,
        401,
        "invalid_client",
        "Client authentication failed. Either the client or the client credentials are invalid.",
    );
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].credentials.oauth_client.client_secret = Some("s3cr:t/+&=%".into());
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let t = c.login_with(Server::Org, ALICE, PASSWORD, Authorize::new(CLIENT_ID), Auth::Basic(CLIENT_ID, "s3cr:t/+&=%")).await;
    assert!(t.id_token.is_some());
}

// ---------------------------------------------------------------------------------------------------
// /v1/token: grant types and parameters.

#[tokio::test]
async fn token_grant_type_errors() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let got = c.token(Server::DEFAULT, Auth::BSR, &[("code", "x")]).await;
    assert_oauth_error(
        got,
        400,
        "invalid_request",
        "The token request must specify a 'grant_type'. Valid values: [authorization_code, client_credentials, refresh_token]",
    );
    // grant_type is checked before the client, as Okta does.
    let got = c.token(Server::DEFAULT, Auth::Nothing, &[]).await;
    assert_eq!(
        got.1["error_description"].as_str().unwrap(),
        "The token request must specify a 'grant_type'. Valid values: [authorization_code, client_credentials, refresh_token]"
    );
    for g in ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"] {
        let got = c.token(Server::DEFAULT, Auth::BSR, &[("grant_type", g)]).await;
        assert_oauth_error(
            got,
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server. Configured grant types: [authorization_code, refresh_token].",
        );
    }
    let got = c.token(Server::DEFAULT, Auth::BSR, &[("grant_type", "client_credentials"), ("scope", "x")]).await;
    assert_oauth_error(
        got,
        400,
        "unauthorized_client",
        "The client is not authorized to use the provided grant type. Configured grant types: [authorization_code, refresh_token].",
    );
}

#[tokio::test]
async fn refresh_grant_not_allowed_for_an_app_without_it() {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].settings.oauth_client.grant_types = vec!["authorization_code".into()];
    cfg.apps[0].settings.oauth_client.refresh_token = None;
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let got = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), "x", None).await;
    assert_oauth_error(
        got,
        400,
        "unauthorized_client",
        "The client is not authorized to use the provided grant type. Configured grant types: [authorization_code].",
    );
    // offline_access without the refresh grant yields no refresh token.
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid offline_access").await;
    assert_eq!(t.refresh_token, None);
}

#[rstest]
#[case::missing_code(&[("grant_type", "authorization_code"), ("redirect_uri", REDIRECT_URI)], "invalid_request", "The required parameter 'code' is missing.")]
#[case::missing_redirect_uri(&[("grant_type", "authorization_code"), ("code", "abc")], "invalid_request", "The required parameter 'redirect_uri' is missing.")]
#[case::unknown_code(&[("grant_type", "authorization_code"), ("code", "abc"), ("redirect_uri", REDIRECT_URI)], "invalid_grant", "The authorization code is invalid or has expired.")]
#[case::duplicate(&[("grant_type", "authorization_code"), ("code", "abc"), ("code", "def"), ("redirect_uri", REDIRECT_URI)], "invalid_request", "The request contained multiple parameters with the same name.")]
#[tokio::test]
async fn token_code_parameter_errors(#[case] pairs: &[(&str, &str)], #[case] error: &str, #[case] description: &str) {
    let idp = idp().await;
    let got = Client::new(&idp).token(Server::DEFAULT, Auth::BSR, pairs).await;
    assert_oauth_error(got, 400, error, description);
}

#[rstest]
#[case::org(Server::Org)]
#[case::default(Server::DEFAULT)]
#[tokio::test]
async fn a_code_is_single_use_and_a_replay_revokes_what_it_issued(#[case] server: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(CLIENT_ID).scope("openid profile offline_access");
    let code = c.code(server, ALICE, PASSWORD, &req).await;
    let verifier = req.pkce.as_ref().unwrap().verifier.clone();
    let t =
        Tokens::from_response(StatusCode::OK, c.token_code(server, Auth::BSR, &code, REDIRECT_URI, Some(&verifier)).await.1, &req.nonce);
    assert!(c.is_active(server, &t.access_token).await);
    assert!(c.is_active(server, t.id_token.as_deref().unwrap()).await);
    let got = c.token_code(server, Auth::BSR, &code, REDIRECT_URI, Some(&verifier)).await;
    assert_oauth_error(got, 400, "invalid_grant", "The authorization code is invalid or has expired.");
    assert!(!c.is_active(server, &t.access_token).await, "the replay revoked the access token");
    assert!(!c.is_active(server, t.id_token.as_deref().unwrap()).await, "the replay revoked the ID token");
    assert!(!c.is_active(server, t.refresh_token.as_deref().unwrap()).await, "the replay revoked the refresh token");
    let got = c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
    assert_oauth_error(got, 400, "invalid_grant", "The refresh token is invalid or expired.");
    let r = c.userinfo(server, &t.access_token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let prefix = if server == Server::Org { "app.oauth2" } else { "app.oauth2.as" };
    let fails = c.logs(&format!(r#"eventType eq "{prefix}.token.grant" and outcome.result eq "FAILURE""#)).await;
    // The replayed code, then the refresh with the revoked token.
    assert_eq!(fails.len(), 2);
    assert_eq!(fails[0]["outcome"]["reason"], "The authorization code is invalid or has expired.");
    assert_eq!(fails[0]["debugContext"]["debugData"]["grantType"], "authorization_code");
    assert_eq!(fails[0]["actor"]["id"], ALICE_ID);
    assert_eq!(fails[1]["outcome"]["reason"], "The refresh token is invalid or expired.");
}

#[tokio::test]
async fn a_code_lives_300_seconds() {
    let idp = idp().await;
    let c = Client::new(&idp);
    // At exactly 300 s the code is still valid (expiry is "after 300 s").
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    idp.clock().advance_ms(300_000);
    let (s, b) = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // One millisecond later it is not.
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    c.set_clock(json!({"advance_ms": 300_001})).await;
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    assert_oauth_error(got, 400, "invalid_grant", "The authorization code is invalid or has expired.");
}

#[tokio::test]
async fn token_redirect_uri_must_match_the_authorize_request() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI_LOCALHOST, Some(&req.pkce.as_ref().unwrap().verifier)).await;
    assert_oauth_error(
        got,
        400,
        "invalid_grant",
        "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
    );
}

#[tokio::test]
async fn token_pkce_verification() {
    let idp = idp().await;
    let c = Client::new(&idp);
    // Wrong verifier.
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&Pkce::new().verifier)).await;
    assert_oauth_error(got, 400, "invalid_grant", "PKCE verification failed.");
    // Too short a verifier.
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some("short")).await;
    assert_oauth_error(got, 400, "invalid_grant", "PKCE verification failed.");
    // Missing verifier for a code with a challenge (PKCE not required by the app).
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, None).await;
    assert_oauth_error(got, 400, "invalid_grant", "PKCE verification failed.");
    // A verifier for a code issued without a challenge.
    let req = Authorize::new(CLIENT_ID).no_pkce();
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some(&Pkce::new().verifier)).await;
    assert_oauth_error(
        got,
        400,
        "invalid_request",
        "PKCE code challenge should be specified in the authorize request for code verification.",
    );
    // A confidential client may skip PKCE altogether.
    let (s, b) = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The RFC 7636 example pair verifies.
    let req = Authorize { pkce: Some(Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")), ..Authorize::new(CLIENT_ID) };
    assert_eq!(req.pkce.as_ref().unwrap().challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let (s, b) = c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[rstest]
#[case::org_code_at_default(Server::Org, Server::DEFAULT)]
#[case::default_code_at_org(Server::DEFAULT, Server::Org)]
#[tokio::test]
async fn a_code_from_one_server_is_refused_at_the_other(#[case] issued_by: Server, #[case] used_at: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(CLIENT_ID);
    let code = c.code(issued_by, ALICE, PASSWORD, &req).await;
    let got = c.token_code(used_at, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.as_ref().unwrap().verifier)).await;
    assert_oauth_error(got, 400, "invalid_request", "The grant was issued for another authorization server.");
}

#[tokio::test]
async fn public_client_with_pkce() {
    let idp = spa_idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(SPA_CLIENT_ID).redirect_uri(SPA_REDIRECT_URI).scope("openid profile offline_access");
    let t = c.login_with(Server::DEFAULT, ALICE, PASSWORD, req, Auth::Public(SPA_CLIENT_ID)).await;
    let claims = verify_id_token(idp.base_url(), Server::DEFAULT, t.id_token.as_deref().unwrap(), SPA_CLIENT_ID).await.unwrap();
    assert_eq!(claims["aud"], SPA_CLIENT_ID);
    assert!(t.refresh_token.is_some());
    assert_eq!(decode_claims(&t.access_token)["cid"], SPA_CLIENT_ID);
    let (s, b) = c.introspect(Server::DEFAULT, Auth::Public(SPA_CLIENT_ID), &t.access_token, None).await;
    assert_eq!((s, &b["active"]), (StatusCode::OK, &json!(true)));
    // Browser apps require PKCE by default.
    let r = c.authorize(Server::DEFAULT, &Authorize::new(SPA_CLIENT_ID).redirect_uri(SPA_REDIRECT_URI).no_pkce()).await;
    assert_eq!(
        url_param(&r.location().unwrap(), "error_description").as_deref(),
        Some("PKCE code challenge is required by the application.")
    );
    let req = Authorize::new(SPA_CLIENT_ID).redirect_uri(SPA_REDIRECT_URI);
    let code = code_of(&c.authorize(Server::DEFAULT, &req).await, &req.state);
    let got = c.token_code(Server::DEFAULT, Auth::Public(SPA_CLIENT_ID), &code, SPA_REDIRECT_URI, None).await;
    assert_oauth_error(got, 400, "invalid_request", "PKCE code verifier is required by the application.");
    // A public client cannot authenticate with a secret it does not have.
    let got = c.token_code(Server::DEFAULT, Auth::Basic(SPA_CLIENT_ID, "x"), &code, SPA_REDIRECT_URI, None).await;
    assert_oauth_error(
        got,
        401,
        "invalid_client",
        "Client authentication failed. Either the client or the client credentials are invalid.",
    );
}

#[tokio::test]
async fn a_code_issued_to_one_client_is_refused_for_another() {
    let idp = spa_idp().await;
    let c = Client::new(&idp);
    let req = Authorize::new(SPA_CLIENT_ID).redirect_uri(SPA_REDIRECT_URI);
    let code = c.code(Server::DEFAULT, ALICE, PASSWORD, &req).await;
    let got = c.token_code(Server::DEFAULT, Auth::BSR, &code, SPA_REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    assert_oauth_error(
        got,
        400,
        "invalid_grant",
        "The grant was issued to another client. Please make sure the 'client_id' matches the one used at the authorize request.",
    );
}

#[tokio::test]
async fn scopes_are_granted_as_requested_without_duplicates() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid  email openid").await;
    assert_eq!(t.scope, "openid email");
    assert_eq!(decode_claims(&t.access_token)["scp"], json!(["openid", "email"]));
    // A custom server accepts a request without openid: an access token, no ID token.
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "profile").await;
    assert_eq!(t.id_token, None);
    assert_eq!(keys_of(&t.raw), sorted(&["token_type", "expires_in", "access_token", "scope"]));
}

// ---------------------------------------------------------------------------------------------------
// /v1/userinfo.

#[rstest]
#[case::openid_only("openid", json!({"sub": ALICE_ID}))]
#[case::email("openid email", json!({"sub": ALICE_ID, "email": ALICE, "email_verified": true}))]
#[case::profile("openid profile", json!({
    "sub": ALICE_ID, "name": "Alice Example", "preferred_username": ALICE, "given_name": "Alice", "family_name": "Example",
    "locale": "en_US", "zoneinfo": "America/Los_Angeles", "updated_at": T0
}))]
#[tokio::test]
async fn userinfo_returns_the_claims_of_the_granted_scopes(
    #[case] scopes: &str,
    #[case] expected: Value,
    #[values(Server::Org, Server::DEFAULT)] server: Server,
) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(server, ALICE, PASSWORD, scopes).await;
    let r = c.userinfo(server, &t.access_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json(), expected);
    // POST with the token in the body works too.
    let r = c.post_form(&server.endpoint("userinfo"), Auth::Nothing, &[("access_token", &t.access_token)]).await;
    assert_eq!(r.json(), expected);
}

#[tokio::test]
async fn userinfo_errors_use_www_authenticate() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let invalid = "Bearer error=\"invalid_token\", error_description=\"The access token is invalid\"";
    let r = c.get(&Server::DEFAULT.endpoint("userinfo")).await;
    assert_eq!((r.status, r.header("www-authenticate").as_deref()), (StatusCode::UNAUTHORIZED, Some(invalid)));
    let r = c.userinfo(Server::DEFAULT, "not-a-token").await;
    assert_eq!((r.status, r.header("www-authenticate").as_deref()), (StatusCode::UNAUTHORIZED, Some(invalid)));
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile").await;
    // A token of another server.
    let r = c.userinfo(Server::Org, &t.access_token).await;
    assert_eq!((r.status, r.header("www-authenticate").as_deref()), (StatusCode::UNAUTHORIZED, Some(invalid)));
    // Valid until exp, invalid from exp on.
    idp.clock().advance_ms(3_599_000);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::OK);
    idp.clock().advance_ms(1_000);
    let r = c.userinfo(Server::DEFAULT, &t.access_token).await;
    assert_eq!((r.status, r.header("www-authenticate").as_deref()), (StatusCode::UNAUTHORIZED, Some(invalid)));
    // A token without openid: 403 insufficient_scope.
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "profile").await;
    let r = c.userinfo(Server::DEFAULT, &t.access_token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"The access token must provide access to at least one of these scopes - profile, email, address or phone\""
        )
    );
}

// ---------------------------------------------------------------------------------------------------
// /v1/introspect and /v1/revoke.

#[rstest]
#[case::org(Server::Org)]
#[case::default(Server::DEFAULT)]
#[tokio::test]
async fn introspect_active_access_and_id_tokens(#[case] server: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(server, ALICE, PASSWORD, "openid profile").await;
    let at = decode_claims(&t.access_token);
    let (s, b) = c.introspect(server, Auth::BSR, &t.access_token, Some("access_token")).await;
    assert_eq!(s, StatusCode::OK);
    let aud = if server == Server::Org { json!(idp.base_url()) } else { json!("api://default") };
    assert_eq!(
        b,
        json!({
            "active": true, "token_type": "Bearer", "scope": "openid profile", "client_id": CLIENT_ID, "username": ALICE,
            "exp": T0 + 3600, "iat": T0, "sub": ALICE, "aud": aud, "iss": server.issuer(&idp), "jti": at["jti"], "uid": ALICE_ID
        })
    );
    let id = decode_claims(t.id_token.as_deref().unwrap());
    let (_, b) = c.introspect(server, Auth::BSR, t.id_token.as_deref().unwrap(), Some("id_token")).await;
    assert_eq!(
        b,
        json!({
            "active": true, "client_id": CLIENT_ID, "username": ALICE, "exp": T0 + 3600, "iat": T0, "sub": ALICE_ID,
            "aud": CLIENT_ID, "iss": server.issuer(&idp), "jti": id["jti"], "uid": ALICE_ID
        })
    );
}

#[tokio::test]
async fn introspect_is_inactive_for_unknown_expired_revoked_and_foreign_tokens() {
    let idp = spa_idp().await;
    let c = Client::new(&idp);
    let inactive = (StatusCode::OK, json!({"active": false}));
    assert_eq!(c.introspect(Server::DEFAULT, Auth::BSR, "garbage", None).await, inactive);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    // Another client, another server.
    assert_eq!(c.introspect(Server::DEFAULT, Auth::Public(SPA_CLIENT_ID), &t.access_token, None).await, inactive);
    assert_eq!(c.introspect(Server::Org, Auth::BSR, &t.access_token, None).await, inactive);
    // Revoked.
    let t2 = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    assert_eq!(c.revoke(Server::DEFAULT, Auth::BSR, &t2.access_token, Some("access_token")).await, (StatusCode::OK, String::new()));
    assert_eq!(c.introspect(Server::DEFAULT, Auth::BSR, &t2.access_token, None).await, inactive);
    // Expired.
    assert!(c.is_active(Server::DEFAULT, &t.access_token).await);
    c.advance(3600).await;
    assert_eq!(c.introspect(Server::DEFAULT, Auth::BSR, &t.access_token, None).await, inactive);
    assert_eq!(c.introspect(Server::DEFAULT, Auth::BSR, t.id_token.as_deref().unwrap(), None).await, inactive);
}

#[tokio::test]
async fn introspect_and_revoke_need_client_auth_and_a_token() {
    let idp = idp().await;
    let c = Client::new(&idp);
    for ep in ["introspect", "revoke"] {
        let r = c.post_form(&Server::DEFAULT.endpoint(ep), Auth::Nothing, &[("token", "x")]).await;
        assert_oauth_error((r.status, r.json()), 401, "invalid_client", "No client credentials found.");
        let r = c.post_form(&Server::DEFAULT.endpoint(ep), Auth::BSR, &[]).await;
        assert_oauth_error((r.status, r.json()), 400, "invalid_request", "The required parameter 'token' is missing.");
        let r = c.post_form(&Server::DEFAULT.endpoint(ep), Auth::Basic(CLIENT_ID, "bad"), &[("token", "x")]).await;
        assert_oauth_error((r.status, r.json()), 401, "invalid_client", "The client secret supplied for a confidential client is invalid.");
    }
}

#[tokio::test]
async fn revoke_is_200_for_anything_and_kills_access_tokens() {
    let idp = idp().await;
    let c = Client::new(&idp);
    assert_eq!(c.revoke(Server::DEFAULT, Auth::BSR, "never-issued", None).await, (StatusCode::OK, String::new()));
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile offline_access").await;
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::OK);
    assert_eq!(c.revoke(Server::DEFAULT, Auth::BSR, &t.access_token, None).await, (StatusCode::OK, String::new()));
    assert_eq!(c.revoke(Server::DEFAULT, Auth::BSR, &t.access_token, None).await, (StatusCode::OK, String::new()), "twice is fine");
    assert!(!c.is_active(Server::DEFAULT, &t.access_token).await);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    // Revoking an access token leaves its refresh token alone (okta-behaviour.md §5).
    assert!(c.is_active(Server::DEFAULT, t.refresh_token.as_deref().unwrap()).await);
    let ev = c.events("app.oauth2.as.token.revoke").await;
    // One event per revocation of a known token (twice here); the unknown token left no trace.
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["debugContext"]["debugData"]["tokenType"], "access_token");
    assert_eq!(ev[0]["actor"]["id"], ALICE_ID);
}

// ---------------------------------------------------------------------------------------------------
// /v1/logout.

#[rstest]
#[case::org(Server::Org)]
#[case::default(Server::DEFAULT)]
#[tokio::test]
async fn logout_with_hint_redirects_with_state_and_ends_the_session(#[case] server: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(server, ALICE, PASSWORD, "openid offline_access").await;
    let url = format!(
        "{}?{}",
        server.endpoint("logout"),
        encode_form(&[("id_token_hint", t.id_token.as_deref().unwrap()), ("post_logout_redirect_uri", LOGOUT_URI), ("state", "bye 1")])
    );
    let r = c.get(&url).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.location().as_deref(), Some("http://127.0.0.1:3000/logout?state=bye+1"));
    assert!(r.header("set-cookie").unwrap().starts_with("sid=;"), "the session cookie is cleared");
    // The IdP session is over: prompt=none now needs a sign-in.
    let req = Authorize::new(CLIENT_ID).param("prompt", "none");
    let r = c.authorize(server, &req).await;
    assert_error_redirect(
        &r,
        REDIRECT_URI,
        Some(&req.state),
        "login_required",
        "The client specified not to prompt, but the user is not logged in.",
    );
    let ev = c.events("user.session.end").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["actor"]["id"], ALICE_ID);
    // Tokens survive logout (decision M6).
    assert!(c.is_active(server, &t.access_token).await);
    assert!(c.is_active(server, t.refresh_token.as_deref().unwrap()).await);
}

#[tokio::test]
async fn logout_with_an_unregistered_post_logout_uri_is_oktas_error() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    let url = format!(
        "{}?{}",
        Server::DEFAULT.endpoint("logout"),
        encode_form(&[("id_token_hint", t.id_token.as_deref().unwrap()), ("post_logout_redirect_uri", "http://evil.example/logout")])
    );
    let r = c.get(&url).await;
    assert_error_page(
        &r,
        400,
        "invalid_request",
        "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the client app settings.",
    );
    // The session is still there.
    let req = Authorize::new(CLIENT_ID).param("prompt", "none");
    code_of(&c.authorize(Server::DEFAULT, &req).await, &req.state);
}

#[tokio::test]
async fn logout_without_a_redirect_uri_goes_to_the_sign_in_page() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::Org, ALICE, PASSWORD, "openid").await;
    let r = c.get(&format!("/oauth2/v1/logout?{}", encode_form(&[("id_token_hint", t.id_token.as_deref().unwrap())]))).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let sign_in = format!("{}/", idp.base_url());
    assert_eq!(r.location().as_deref(), Some(sign_in.as_str()));
    let page = c.follow(&r).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Sign In</h1>"));
    // Without any session, logout still redirects.
    let r = Client::new(&idp).get("/oauth2/v1/logout").await;
    assert_eq!((r.status, r.location().as_deref()), (StatusCode::FOUND, Some(sign_in.as_str())));
}

#[tokio::test]
async fn logout_hint_errors() {
    let idp = idp().await;
    let c = Client::new(&idp);
    c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    let bob = Client::new(&idp).login(Server::DEFAULT, BOB, PASSWORD, "openid").await;
    let r = c.get(&format!("/oauth2/default/v1/logout?{}", encode_form(&[("id_token_hint", bob.id_token.as_deref().unwrap())]))).await;
    assert_error_page(&r, 400, "invalid_request", "The ID token subject does not match the current session's user.");
    let r = c.get("/oauth2/default/v1/logout?id_token_hint=garbage").await;
    assert_error_page(
        &r,
        400,
        "invalid_request",
        "The 'id_token_hint' parameter is not a valid ID token issued by this authorization server.",
    );
    // An ID token of the org server is not a hint for the default server.
    let org = c.login(Server::Org, ALICE, PASSWORD, "openid").await;
    let r = c.get(&format!("/oauth2/default/v1/logout?{}", encode_form(&[("id_token_hint", org.id_token.as_deref().unwrap())]))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_accepts_an_expired_id_token_hint() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    idp.clock().advance_ms(3_600_000 + 1_000);
    let url = format!(
        "/oauth2/default/v1/logout?{}",
        encode_form(&[("id_token_hint", t.id_token.as_deref().unwrap()), ("post_logout_redirect_uri", LOGOUT_URI)])
    );
    let r = c.get(&url).await;
    assert_eq!((r.status, r.location().as_deref()), (StatusCode::FOUND, Some(LOGOUT_URI)));
}

// ---------------------------------------------------------------------------------------------------
// System Log.

#[rstest]
#[case::none(None)]
#[case::wrong_token(Some("SSWS wrong"))]
#[case::bearer(Some("Bearer mock-admin-token"))]
#[tokio::test]
async fn logs_require_the_ssws_token(#[case] header: Option<&str>) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let mut rb = c.http.get(c.url("/api/v1/logs"));
    if let Some(h) = header {
        rb = rb.header("authorization", h);
    }
    let r = Reply::from(rb.send().await.unwrap()).await;
    assert_api_error(&r, 401, "E0000011", "Invalid token provided", &[]);
}

#[rstest]
#[case::org(Server::Org, "app.oauth2")]
#[case::default(Server::DEFAULT, "app.oauth2.as")]
#[tokio::test]
async fn every_step_of_a_sign_in_is_in_the_system_log(#[case] server: Server, #[case] prefix: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let st = c.authn(ALICE, PASSWORD).await;
    idp.clock().advance_ms(1_000);
    let req = Authorize::new(CLIENT_ID).scope("openid offline_access").param("sessionToken", &st);
    let code = code_of(&c.authorize(server, &req).await, &req.state);
    idp.clock().advance_ms(1_000);
    let (s, _) = c.token_code(server, Auth::BSR, &code, REDIRECT_URI, Some(&req.pkce.as_ref().unwrap().verifier)).await;
    assert_eq!(s, StatusCode::OK);
    let all = c.logs("").await;
    let types: Vec<&str> = all.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    let expected = [
        "user.authentication.authenticate".to_string(),
        "user.session.start".into(),
        format!("{prefix}.authorize.code"),
        format!("{prefix}.token.grant.access_token"),
        format!("{prefix}.token.grant.id_token"),
        format!("{prefix}.token.grant.refresh_token"),
    ];
    assert_eq!(types, expected);
    let published: Vec<&str> = all.iter().map(|e| e["published"].as_str().unwrap()).collect();
    assert_eq!(
        published,
        [
            "2030-01-01T00:00:00.000Z",
            "2030-01-01T00:00:01.000Z",
            "2030-01-01T00:00:01.000Z",
            "2030-01-01T00:00:02.000Z",
            "2030-01-01T00:00:02.000Z",
            "2030-01-01T00:00:02.000Z"
        ]
    );
    for e in &all {
        assert_eq!(e["outcome"]["result"], "SUCCESS", "{e}");
        assert_eq!(
            e["actor"],
            json!({"id": ALICE_ID, "type": "User", "alternateId": ALICE, "displayName": "Alice Example", "detailEntry": null})
        );
        assert_eq!(e["severity"], "INFO");
        assert_eq!(e["version"], "0");
        assert_eq!(e["uuid"].as_str().unwrap().len(), 36);
    }
    let code_ev = &all[2];
    assert_eq!(code_ev["client"]["id"], CLIENT_ID);
    assert_eq!(
        code_ev["target"],
        json!([{"id": APP_ID, "type": "AppInstance", "alternateId": "Buf Schema Registry", "displayName": "Buf Schema Registry", "detailEntry": null}])
    );
    assert_eq!(code_ev["debugContext"]["debugData"]["grantedScopes"], "openid offline_access");
    assert_eq!(all[3]["debugContext"]["debugData"]["grantType"], "authorization_code");
    let msg = if server == Server::Org { "OIDC access token is granted." } else { "OAuth2 access token is granted." };
    assert_eq!(all[3]["displayMessage"], msg);
    // No secret or token value is in the log.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&code) && !text.contains(&st) && !text.contains(PASSWORD) && !text.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn logs_filter_since_until_limit_and_link_paging() {
    let idp = idp().await;
    let c = Client::new(&idp);
    for _ in 0..5 {
        c.authn(ALICE, PASSWORD).await;
        idp.clock().advance_ms(60_000);
    }
    assert_eq!(c.authn_raw(BOB, "wrong").await.0, StatusCode::UNAUTHORIZED);
    // filter
    let ev = c.events("user.authentication.authenticate").await;
    assert_eq!(ev.len(), 5);
    let ev = c.logs(r#"actor.alternateId eq "bob@example.com""#).await;
    assert_eq!(ev.len(), 1);
    // since (inclusive) / until (exclusive)
    let r = c.logs_raw(&[("since", "2030-01-01T00:01:00Z"), ("until", "2030-01-01T00:03:00.000Z")]).await;
    let p: Vec<String> = r.json().as_array().unwrap().iter().map(|e| e["published"].as_str().unwrap().to_string()).collect();
    assert_eq!(p, ["2030-01-01T00:01:00.000Z", "2030-01-01T00:02:00.000Z"]);
    // limit and the Link next cursor, followed to the end.
    let r = c.logs_raw(&[("limit", "2"), ("filter", r#"eventType eq "user.authentication.authenticate""#)]).await;
    let mut pages = vec![r.json().as_array().unwrap().len()];
    let mut link = r.header("link").unwrap();
    assert!(link.starts_with(&format!("<{}/api/v1/logs?", idp.base_url())), "{link}");
    assert!(link.contains("rel=\"self\""));
    while let Some(next) = link.split(", ").find(|l| l.ends_with("rel=\"next\"")) {
        let url = next.trim_start_matches('<').split('>').next().unwrap().to_string();
        let r = Reply::from(c.http.get(&url).header("authorization", format!("SSWS {ADMIN_TOKEN}")).send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = r.json();
        assert!(page.as_array().unwrap().iter().all(|e| e["eventType"] == "user.authentication.authenticate"));
        pages.push(page.as_array().unwrap().len());
        link = r.header("link").unwrap();
    }
    assert_eq!(pages, [2, 2, 1]);
    // Bad queries are E0000001.
    let r = c.logs_raw(&[("filter", "eventType sw \"x\"")]).await;
    assert_api_error(&r, 400, "E0000001", "Api validation failed", &["Invalid filter: eventType sw \"x\""]);
    let r = c.logs_raw(&[("since", "yesterday")]).await;
    assert_api_error(&r, 400, "E0000001", "Api validation failed", &["since: Invalid date format: yesterday"]);
    let r = c.logs_raw(&[("limit", "0")]).await;
    assert_api_error(&r, 400, "E0000001", "Api validation failed", &["limit: must be between 1 and 1000, got 0"]);
}

// ---------------------------------------------------------------------------------------------------
// Clock and reset.

#[tokio::test]
async fn clock_controls_over_http() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let v = c.clock().await;
    assert_eq!(keys_of(&v), sorted(&["now", "frozen", "offset_seconds"]));
    assert_eq!((&v["now"], &v["frozen"]), (&json!("2030-01-01T00:00:00.000Z"), &json!(true)));
    assert!(v["offset_seconds"].as_f64().unwrap() > 0.0, "2030 is ahead of real time: {v}");
    let (s, v) = c.set_clock(json!({"advance_seconds": 90})).await;
    assert_eq!((s, &v["now"], &v["frozen"]), (StatusCode::OK, &json!("2030-01-01T00:01:30.000Z"), &json!(true)));
    let (_, v) = c.set_clock(json!({"advance_seconds": -30.5})).await;
    assert_eq!(v["now"], "2030-01-01T00:00:59.500Z");
    let (_, v) = c.set_clock(json!({"set": "2031-02-03T04:05:06Z"})).await;
    assert_eq!(v["now"], "2031-02-03T04:05:06.000Z");
    assert_eq!(idp.clock().now_ms(), 1_927_857_906_000, "the handle and HTTP see one clock");
    idp.clock().advance_ms(1);
    assert_eq!(c.clock().await["now"], "2031-02-03T04:05:06.001Z");
    // Unfrozen, it runs from where it stood.
    let (_, v) = c.set_clock(json!({"freeze": false})).await;
    assert_eq!(v["frozen"], false);
    assert!(c.now_secs().await >= 1_927_857_906);
    // An offset from real time on a running clock.
    let (_, v) = c.set_clock(json!({"offset_seconds": 3600})).await;
    assert_eq!((&v["frozen"], &v["offset_seconds"]), (&json!(false), &json!(3600.0)));
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let d = c.now_secs().await - real;
    assert!((3595..=3605).contains(&d), "offset {d}");
    let (_, v) = c.set_clock(json!({"freeze": true})).await;
    assert_eq!(v["frozen"], true);
    let a = c.clock().await["now"].clone();
    assert_eq!(c.clock().await["now"], a);
}

#[rstest]
#[case::wrong_type(json!({"advance_seconds": "soon"}))]
#[case::unknown_field(json!({"jump": 1}))]
#[case::out_of_range(json!({"advance_seconds": 1e12}))]
#[case::past_the_end_of_9999(json!({"set": "9999-12-31T23:59:00Z", "advance_seconds": 1000}))]
#[case::before_1970(json!({"offset_seconds": -1e11}))]
#[case::advanced_far_in_ms(json!({"advance_ms": i64::MAX}))]
#[tokio::test]
async fn clock_rejects_bad_input_with_e0000001(#[case] body: Value) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.post_json("/_mock/clock", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["errorCode"], "E0000001");
    assert_eq!(r.json()["errorSummary"], "Api validation failed");
    assert_eq!(r.json()["errorCauses"].as_array().unwrap().len(), 1);
    assert_eq!(c.clock().await["now"], "2030-01-01T00:00:00.000Z", "nothing changed");
}

/// The clock stays within what RFC 3339 and a state file can hold: 1970 to the end of 9999.
#[tokio::test]
async fn clock_changes_that_leave_1970_to_9999_are_refused_whole() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.post_json("/_mock/clock", &json!({"set": "9999-12-31T23:59:00Z", "advance_seconds": 1000})).await;
    assert_api_error(
        &r,
        400,
        "E0000001",
        "Api validation failed",
        &[
            "clock: out of range: the change would put it at 253402301740000 ms, outside 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z",
        ],
    );
    assert_eq!(c.clock().await["now"], "2030-01-01T00:00:00.000Z", "nothing changed, the set included");
    let r = c.post_json("/_mock/clock", &json!({"set": "9999-12-31T23:59:59.999Z"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(c.clock().await["now"], "9999-12-31T23:59:59.999Z");
}

#[tokio::test]
async fn clock_rejects_a_bad_timestamp_and_non_json() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.post_json("/_mock/clock", &json!({"set": "yesterday"})).await;
    assert_api_error(&r, 400, "E0000001", "Api validation failed", &["set: not an RFC 3339 timestamp: yesterday"]);
    let r = Reply::from(c.http.post(c.url("/_mock/clock")).body("advance=1").send().await.unwrap()).await;
    assert_api_error(&r, 400, "E0000003", "The request body was not well-formed.", &["expected value"]);
    assert_eq!(c.clock().await["now"], "2030-01-01T00:00:00.000Z", "nothing changed");
}

/// The `/_mock/*` controls read bodies by the Conventions table of docs/management-api.md, as `/api/v1`
/// does: not JSON (or more after it) is E0000003, JSON that is not an object too; an object with a wrong
/// field is E0000001 naming it; the option-less controls take no body, an empty one, or `{}`.
#[tokio::test]
async fn mock_controls_answer_malformed_bodies_as_the_conventions_say() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let send = async |path: &str, body: Option<&str>| {
        let mut rb = c.http.post(c.url(path));
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        Reply::from(rb.send().await.unwrap()).await
    };
    let id = {
        let r = c.post_json("/_mock/faults", &json!({"endpoint": "keys", "action": {"hold": {"until_waiting": 2}}})).await;
        r.json()["id"].as_str().unwrap().to_string()
    };
    let release = format!("/_mock/faults/{id}/release");
    let paths = ["/_mock/clock", "/_mock/reset", "/_mock/keys/rotate", release.as_str(), "/_mock/faults"];
    for path in paths {
        for (body, cause) in [
            ("nope", "expected ident"),
            ("advance_seconds=5", "expected value"),
            ("{", "EOF while parsing an object"),
            ("{} trailing", "trailing characters"),
            ("{}{}", "trailing characters"),
            ("[]", "the body must be a JSON object"),
            ("[1]", "the body must be a JSON object"),
            ("null", "the body must be a JSON object"),
            ("true", "the body must be a JSON object"),
        ] {
            let r = send(path, Some(body)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", r.body);
            assert_api_error(&r, 400, "E0000003", "The request body was not well-formed.", &[cause]);
        }
    }
    // Well-formed objects with a wrong field or type: E0000001, the cause naming the field.
    for (path, body, cause) in [
        ("/_mock/clock", r#"{"advance_seconds": "soon"}"#, "advance_seconds: invalid type: string \"soon\", expected f64"),
        ("/_mock/reset", r#"{"tenants": {}}"#, "tenants: unknown field `tenants`, expected `tenant`"),
        ("/_mock/reset", r#"{"tenant": {"users": 5}}"#, "tenant.users: invalid type: integer `5`, expected a sequence"),
        (
            "/_mock/reset",
            r#"{"tenant": {"trusted_origins": [{"name": "x", "origin": "http://127.0.0.1:4300/app", "scopes": ["CORS"]}]}}"#,
            "tenant.trusted_origins[0].origin: \"http://127.0.0.1:4300/app\" is not an origin: write it as http://127.0.0.1:4300 \
             (no path, query or trailing slash)",
        ),
        (
            "/_mock/keys/rotate",
            r#"{"sign_with_new_key_at_once": "yes"}"#,
            "sign_with_new_key_at_once: invalid type: string \"yes\", expected a boolean",
        ),
    ] {
        assert_api_error(&send(path, Some(body)).await, 400, "E0000001", "Api validation failed", &[cause]);
    }
    assert_eq!(c.clock().await["now"], "2030-01-01T00:00:00.000Z", "nothing changed");
    assert_eq!(c.get("/_mock/faults").await.json().as_array().map(Vec::len), Some(1), "nothing changed");
    // Option-less controls: no body, an empty body, whitespace, or `{}`.
    let bodies = [None, Some(""), Some(" \n"), Some("{}")];
    for body in bodies {
        let r = send(&release, body).await;
        assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"released": 0})), "{body:?}");
    }
    for body in bodies {
        let r = send("/_mock/reset", body).await;
        assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"reset": true})), "{body:?}");
    }
}

#[tokio::test]
async fn reset_restores_the_configured_state() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid offline_access").await;
    idp.with_tenant(|t| t.users.get_mut(BOB_ID).unwrap().status = UserStatus::Suspended);
    c.advance(86_400).await;
    c.set_clock(json!({"freeze": false})).await;
    let r = c.reset().await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"reset": true})));
    let clock = c.clock().await;
    assert_eq!((&clock["now"], &clock["frozen"]), (&json!("2030-01-01T00:00:00.000Z"), &json!(true)));
    assert!(c.logs("").await.is_empty());
    assert!(!c.is_active(Server::DEFAULT, &t.access_token).await);
    assert!(!c.is_active(Server::DEFAULT, t.refresh_token.as_deref().unwrap()).await);
    let req = Authorize::new(CLIENT_ID).param("prompt", "none");
    assert_eq!(url_param(&c.authorize(Server::DEFAULT, &req).await.location().unwrap(), "error").as_deref(), Some("login_required"));
    c.authn(BOB, PASSWORD).await;
    // The keys stay, so clients' cached JWKS remain valid.
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    verify_id_token(idp.base_url(), Server::DEFAULT, t.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------
// The binary.

fn mock_idp_binary() -> std::path::PathBuf {
    tests::binaries().mock_idp.clone()
}

#[test]
fn binary_prints_the_default_config_and_rejects_bad_files_with_their_location() {
    let bin = mock_idp_binary();
    let out = std::process::Command::new(&bin).arg("--print-default-config").output().unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(yaml, mock_idp::config::DEFAULT_TENANT_YAML);
    let cfg = mock_idp::TenantConfig::parse(&yaml, "printed").expect("the printed config parses");
    assert_eq!(cfg.apps[0].credentials.oauth_client.client_id, CLIENT_ID);

    let dir = std::env::temp_dir().join(format!("mock-idp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, yaml.replace("leeway: 15", "leeway: 99")).unwrap();
    let line = yaml.lines().position(|l| l.contains("leeway: 15")).unwrap() + 1;
    let out = std::process::Command::new(&bin).arg("--config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let prefix = format!("mock-idp: {}:{line}:", bad.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains(": field `apps[0].settings.oauthClient.refresh_token.leeway`: "), "{err}");
    assert!(err.contains("leeway must be between 0 and 60 seconds (Okta's range), got 99"), "{err}");

    std::fs::write(&bad, "users:\n  - profile: {login: x}\n    statuz: ACTIVE\n").unwrap();
    let out = std::process::Command::new(&bin).arg("--config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with(&format!("mock-idp: {}:3:5: field `users[0].statuz`: ", bad.display())), "{err}");
    // A file with no tenant in it is refused; `{}` is the empty tenant.
    for empty in ["", "\n# only a comment\n", "---\n", "null\n"] {
        std::fs::write(&bad, empty).unwrap();
        let out = std::process::Command::new(&bin).arg("--config").arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{empty:?}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "mock-idp: {}: no tenant in the file: it is empty, or only comments or null (a tenant with nothing in it is `{{}}`)\n",
                bad.display()
            )
        );
    }
    std::fs::write(&bad, "{}\n").unwrap();
    assert_eq!(mock_idp::TenantConfig::load(&bad).unwrap().users.len(), 0);
    std::fs::remove_dir_all(&dir).unwrap();

    // A log cap of 0 is refused, not quietly taken as 1.
    for flag in ["--system-log-cap", "--request-log-cap"] {
        let out = std::process::Command::new(&bin).args([flag, "0"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with(&format!("error: invalid value '0' for '{flag} <")), "{err}");
    }
}

/// Kills the child process it holds (by its own handle) when dropped, so a failed assertion leaves no
/// server running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_on_loopback_and_stops_on_sigterm() {
    use std::io::BufRead;
    let bin = mock_idp_binary();
    let child = std::process::Command::new(&bin).args(["--addr", "127.0.0.1:0"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim_end().strip_prefix("mock-idp listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let c = Client::for_base(&base);
    assert_eq!(c.get("/_mock/health").await.body, "ok");
    let doc = c.get("/.well-known/openid-configuration").await.json();
    assert_eq!(doc["issuer"], base.as_str());
    // The binary runs on real time.
    assert_eq!(c.clock().await["frozen"], false);
    let pid = child.0.id().to_string();
    let st = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

// ---------------------------------------------------------------------------------------------------
// Odds and ends: generated ids, inactive apps, the helper's exp check, the sign-in page's safety.

#[tokio::test]
async fn generated_ids_and_codes_look_like_oktas() {
    let cfg = tenant(
        r#"
users:
  - profile: {login: dora@example.com, email: dora@example.com, firstName: Dora, lastName: Example}
    credentials: {password: {value: "Passw0rd!"}}
groups:
  - profile: {name: Everyone}
    members: [dora@example.com]
apps:
  - label: Generated
    credentials: {oauthClient: {client_id: gen, client_secret: gen-secret}}
    settings: {oauthClient: {redirect_uris: ["http://127.0.0.1:3000/oauth2/callback"]}}
assignments:
  - {app: gen, group: Everyone}
authorization_servers:
  - id: default
"#,
    );
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let req = Authorize::new("gen");
    let code = c.code(Server::DEFAULT, "dora@example.com", PASSWORD, &req).await;
    assert!(code.len() >= 40 && code.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'), "{code}");
    let (s, b) =
        c.token_code(Server::DEFAULT, Auth::Basic("gen", "gen-secret"), &code, REDIRECT_URI, Some(&req.pkce.unwrap().verifier)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let sub = decode_claims(b["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_string();
    assert!(sub.starts_with("00u") && sub.len() == 20 && sub.chars().all(|ch| ch.is_ascii_alphanumeric()), "{sub}");
    let ev = c.events("app.oauth2.as.authorize.code").await;
    let app_id = ev[0]["target"][0]["id"].as_str().unwrap();
    assert!(app_id.starts_with("0oa") && app_id.len() == 20, "{app_id}");
    // A web app's default refresh grant is absent, so Okta's unauthorized_client names only the code grant.
    let got = c.refresh(Server::DEFAULT, "gen", Some("gen-secret"), "x", None).await;
    assert_oauth_error(
        got,
        400,
        "unauthorized_client",
        "The client is not authorized to use the provided grant type. Configured grant types: [authorization_code].",
    );
}

#[tokio::test]
async fn an_inactive_app_can_neither_authorize_nor_authenticate() {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].status = mock_idp::core::model::AppStatus::Inactive;
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID)).await;
    assert_error_page(&r, 400, "invalid_client", "Invalid value for 'client_id' parameter.");
    let got =
        c.token(Server::DEFAULT, Auth::BSR, &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT_URI)]).await;
    assert_oauth_error(
        got,
        401,
        "invalid_client",
        "Client authentication failed. Either the client or the client credentials are invalid.",
    );
}

#[tokio::test]
async fn verify_id_token_checks_exp_against_the_idp_clock() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid").await;
    let jwt = t.id_token.as_deref().unwrap();
    // Wall time is years before 2030, so only the IdP clock can expire the token.
    idp.clock().advance_ms(3_599_000);
    verify_id_token(idp.base_url(), Server::DEFAULT, jwt, CLIENT_ID).await.unwrap();
    idp.clock().advance_ms(1_000);
    let e = verify_id_token(idp.base_url(), Server::DEFAULT, jwt, CLIENT_ID).await.unwrap_err();
    assert!(e.to_string().starts_with("token expired"), "{e}");
    // A wrong audience or issuer fails too.
    idp.clock().advance_ms(-10_000);
    assert!(verify_id_token(idp.base_url(), Server::DEFAULT, jwt, "other-client").await.is_err());
    assert!(verify_id_token(idp.base_url(), Server::Org, jwt, CLIENT_ID).await.is_err());
}

#[tokio::test]
async fn sign_in_page_escapes_reflected_values_and_refuses_foreign_from_uris() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let page =
        c.get(&format!("/login/login.htm?{}", encode_form(&[("fromURI", "/"), ("login_hint", "\"><script>alert(1)</script>")]))).await;
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(page.body.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    // A fromURI to another host is replaced with this server's root.
    for evil in ["http://evil.example/", "//evil.example/", "/\\evil.example"] {
        let page = c.get(&format!("/login/login.htm?{}", encode_form(&[("fromURI", evil)]))).await;
        assert_eq!(hidden_field(&page.body, "fromURI").as_deref(), Some("/"), "{evil}");
    }
    let page = c.get("/login/login.htm?fromURI=/").await;
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let r = c
        .post_form(
            "/login/login.htm",
            Auth::Nothing,
            &[("username", ALICE), ("password", PASSWORD), ("fromURI", "//evil.example/"), ("csrf", &csrf)],
        )
        .await;
    let landing_url = format!("{}/", idp.base_url());
    assert_eq!((r.status, r.location().as_deref()), (StatusCode::FOUND, Some(landing_url.as_str())));
    // Signed in without an app to return to: the org's landing page names the user.
    let landing = c.follow(&r).await;
    assert!(landing.body.contains(&format!("<strong id=\"signed-in-user\">{ALICE}</strong>")), "{}", landing.body);
}

/// A MOCK_IDP_* variable set to nothing (a compose variable left blank) counts as not set: the binary starts
/// with the defaults (it printed "invalid value ''" for the address, the files and the flags before).
#[test]
fn blank_environment_variables_count_as_not_set() {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(mock_idp_binary());
    cmd.args(["--addr", "127.0.0.1:0"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    for v in [
        "MOCK_IDP_CONFIG",
        "MOCK_IDP_BASE_URL",
        "MOCK_IDP_TLS",
        "MOCK_IDP_TLS_CERT_OUT",
        "MOCK_IDP_STATE",
        "MOCK_IDP_NO_MOCK_CONTROLS",
        "MOCK_IDP_MOCK_CONTROLS_TOKEN_REQUIRED",
        "MOCK_IDP_REQUEST_LOG_CAP",
        "MOCK_IDP_SYSTEM_LOG_CAP",
    ] {
        cmd.env(v, if v.ends_with("TLS") { " " } else { "" });
    }
    // A flag's variable takes 0/no/off/false as "off", as shells and compose files write it.
    cmd.env("MOCK_IDP_NO_MOCK_CONTROLS", "0");
    // A log filter with a typo is said, not silently replaced.
    cmd.env("MOCK_IDP_LOG", "mock_idp=[");
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(line.starts_with("mock-idp listening on http://127.0.0.1:"), "{line:?} {stderr}");
    assert!(stderr.starts_with("MOCK_IDP_LOG=\"mock_idp=[\" is not a log filter (error parsing level filter: "), "{stderr}");
    assert!(stderr.lines().next().unwrap().ends_with("); logging at warn"), "{stderr}");
    // The address itself, blank: the default, 127.0.0.1:8080 (taken or not, never "invalid value").
    let out = std::process::Command::new(mock_idp_binary()).arg("--print-default-config").env("MOCK_IDP_ADDR", "").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
