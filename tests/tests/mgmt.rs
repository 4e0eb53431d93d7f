//! Integration tests of Okta's management API subset (issue 4) over real HTTP: users and lifecycle,
//! groups, OIDC apps and assignments, a user's refresh tokens, authorization-server rules and keys, the
//! org key rotation control, and the typed client `mock_idp::client::AdminClient`. End to end: the
//! revocations of modelling decision M6 as a relying party sees them.
//!
//! Okta's error strings are written out literally, so a typo in the implementation fails a test.

use mock_idp::client::{AdminClient, NewOidcApp, RuleLifetimes};
use mock_idp::core::model::{RotationType, UserProfile, UserStatus};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tests::*;

const T0_ISO: &str = "2030-01-01T00:00:00.000Z";
const REFRESH_INVALID: &str = "The refresh token is invalid or expired.";

// ---------------------------------------------------------------------------------------------------
// Helpers.

/// A management-API request with `Authorization: SSWS mock-admin-token` and an optional JSON body.
async fn api(c: &Client, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let mut rb = c.http.request(method, c.url(path)).header("authorization", format!("SSWS {ADMIN_TOKEN}"));
    if let Some(b) = body {
        rb = rb.json(b);
    }
    Reply::from(rb.send().await.expect("API request")).await
}

/// A management-API request with a raw body (or none).
async fn api_raw(c: &Client, method: Method, path: &str, body: Option<&str>) -> Reply {
    let mut rb = c.http.request(method, c.url(path)).header("authorization", format!("SSWS {ADMIN_TOKEN}"));
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    Reply::from(rb.send().await.expect("API request")).await
}

/// Asserts Okta's error body exactly (the random `errorId` only by shape).
fn assert_api_error(r: &Reply, status: u16, code: &str, summary: &str, causes: &[&str]) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    let b = r.json();
    let id = b["errorId"].as_str().unwrap_or_else(|| panic!("errorId in {b}"));
    assert!(id.starts_with("oae") && id.len() == 25, "errorId {id}");
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    assert_eq!(b, json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": id, "errorCauses": causes}));
}

fn assert_refresh_dead(got: (StatusCode, Value)) {
    assert_eq!(got, (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": REFRESH_INVALID})));
}

async fn refresh(c: &Client, server: Server, rt: &str) -> (StatusCode, Value) {
    c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), rt, None).await
}

/// Signs in with offline_access and returns the tokens (access, refresh, ID).
async fn sign_in(c: &Client, server: Server, user: &str) -> Tokens {
    c.login(server, user, PASSWORD, "openid profile email offline_access").await
}

fn rt(t: &Tokens) -> &str {
    t.refresh_token.as_deref().expect("a refresh token")
}

/// The authorize outcome for a user who signs in with a session token: the `error` of the redirect, or
/// `None` when a code came back.
async fn authorize_error(c: &Client, server: Server, user: &str) -> Option<(String, String)> {
    authorize_error_pw(c, server, user, PASSWORD).await
}

async fn authorize_error_pw(c: &Client, server: Server, user: &str, password: &str) -> Option<(String, String)> {
    let st = c.authn(user, password).await;
    let req = Authorize::new(CLIENT_ID).param("sessionToken", &st);
    let r = c.authorize(server, &req).await;
    let loc = r.location().unwrap_or_else(|| panic!("authorize redirects: {} {}", r.status, r.body));
    match url_param(&loc, "error") {
        Some(e) => Some((e, url_param(&loc, "error_description").unwrap_or_default())),
        None => {
            assert!(url_param(&loc, "code").is_some(), "{loc}");
            None
        }
    }
}

fn profile(login: &str, first: &str) -> UserProfile {
    UserProfile {
        login: login.into(),
        email: Some(login.into()),
        first_name: Some(first.into()),
        last_name: Some("Tester".into()),
        email_verified: true,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------------
// The SSWS guard and Okta's headers.

#[rstest]
#[case::users(Method::GET, "/api/v1/users")]
#[case::user(Method::GET, "/api/v1/users/00u1alice00000000001")]
#[case::create_user(Method::POST, "/api/v1/users")]
#[case::lifecycle(Method::POST, "/api/v1/users/00u1alice00000000001/lifecycle/deactivate")]
#[case::sessions(Method::DELETE, "/api/v1/users/00u1alice00000000001/sessions")]
#[case::tokens(Method::GET, "/api/v1/users/00u1alice00000000001/clients/bsr-local/tokens")]
#[case::groups(Method::GET, "/api/v1/groups")]
#[case::member(Method::PUT, "/api/v1/groups/00g1bsrusers00000001/users/00u1carol00000000001")]
#[case::apps(Method::GET, "/api/v1/apps")]
#[case::app_users(Method::POST, "/api/v1/apps/0oa1bsr0000000000001/users")]
#[case::app_group(Method::DELETE, "/api/v1/apps/0oa1bsr0000000000001/groups/00g1bsrusers00000001")]
#[case::servers(Method::GET, "/api/v1/authorizationServers")]
#[case::keys(Method::GET, "/api/v1/authorizationServers/default/credentials/keys")]
#[case::key_rotate(Method::POST, "/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate")]
#[tokio::test]
async fn every_route_needs_the_ssws_token(#[case] method: Method, #[case] path: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    for auth in [None, Some("SSWS wrong-token"), Some("Bearer mock-admin-token"), Some("mock-admin-token")] {
        let mut rb = c.http.request(method.clone(), c.url(path));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = Reply::from(rb.send().await.unwrap()).await;
        assert_api_error(&r, 401, "E0000011", "Invalid token provided", &[]);
        assert!(r.header("x-okta-request-id").is_some_and(|v| v.starts_with("req")), "{:?}", r.headers);
        assert_eq!(r.header("x-rate-limit-limit").as_deref(), Some("600"));
    }
    // Nothing changed: alice is still ACTIVE and in the group.
    let a = api(&c, Method::GET, "/api/v1/users/00u1alice00000000001", None).await;
    assert_eq!(a.json()["status"], "ACTIVE");
    assert_eq!(api(&c, Method::GET, "/api/v1/groups/00g1bsrusers00000001/users", None).await.json().as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn api_responses_carry_okta_headers() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = api(&c, Method::GET, "/api/v1/users", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-rate-limit-limit").as_deref(), Some("600"));
    assert_eq!(r.header("x-rate-limit-remaining").as_deref(), Some("599"));
    assert!(r.header("x-rate-limit-reset").is_some());
    assert!(r.header("x-okta-request-id").is_some_and(|v| v.starts_with("req") && v.len() == 25));
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
}

// ---------------------------------------------------------------------------------------------------
// Users.

#[tokio::test]
async fn create_user_with_password_is_active_and_can_sign_in() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let body = json!({
        "profile": {"firstName": "Dave", "lastName": "Example", "email": "dave@example.com", "login": "dave@example.com", "mobilePhone": "555-415-1337"},
        "credentials": {"password": {"value": "tlpWENT2m"}}
    });
    let r = api(&c, Method::POST, "/api/v1/users?activate=true", Some(&body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let u = r.json();
    let id = u["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("00u") && id.len() == 20, "{id}");
    let base = idp.base_url();
    assert_eq!(
        u,
        json!({
            "id": id,
            "status": "ACTIVE",
            "created": T0_ISO,
            "activated": T0_ISO,
            "statusChanged": T0_ISO,
            "lastLogin": null,
            "lastUpdated": T0_ISO,
            "passwordChanged": T0_ISO,
            "type": {"id": "oty1mockdefaultusr01"},
            "profile": {"firstName": "Dave", "lastName": "Example", "email": "dave@example.com", "login": "dave@example.com", "mobilePhone": "555-415-1337"},
            "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {
                "self": {"href": format!("{base}/api/v1/users/{id}")},
                "suspend": {"href": format!("{base}/api/v1/users/{id}/lifecycle/suspend"), "hints": {"allow": ["POST"]}},
                "deactivate": {"href": format!("{base}/api/v1/users/{id}/lifecycle/deactivate"), "hints": {"allow": ["POST"]}}
            }
        })
    );
    // By id and by login, the same object.
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/users/{id}"), None).await.json(), u);
    assert_eq!(api(&c, Method::GET, "/api/v1/users/DAVE@example.com", None).await.json(), u);
    // The new user authenticates; not assigned to bsr-local, authorize refuses it.
    let (s, b) = c.authn_raw("dave@example.com", "tlpWENT2m").await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("SUCCESS")));
    assert_eq!(
        authorize_error_pw(&c, Server::DEFAULT, "dave@example.com", "tlpWENT2m").await,
        Some(("access_denied".into(), "User is not assigned to the client application.".into()))
    );
    let created = c.events("user.lifecycle.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["target"][0]["id"], id);
    assert_eq!(created[0]["target"][0]["alternateId"], "dave@example.com");
    assert_eq!(c.events("user.lifecycle.activate").await.len(), 1);
}

#[tokio::test]
async fn create_user_statuses_and_errors() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let configured = idp.with_tenant(|t| t.users.len());
    let staged = api(
        &c,
        Method::POST,
        "/api/v1/users?activate=false",
        Some(&json!({"profile": {"login": "s@example.com"}, "credentials": {"password": {"value": "x1234567"}}})),
    )
    .await;
    assert_eq!((staged.json()["status"].as_str(), staged.json()["activated"].clone()), (Some("STAGED"), Value::Null));
    assert_eq!(
        staged.json()["_links"]["activate"]["href"],
        format!("{}/api/v1/users/{}/lifecycle/activate", idp.base_url(), staged.json()["id"].as_str().unwrap())
    );
    let provisioned = api(&c, Method::POST, "/api/v1/users", Some(&json!({"profile": {"login": "p@example.com"}}))).await;
    assert_eq!(provisioned.json()["status"], "PROVISIONED");
    assert_eq!(provisioned.json()["credentials"], json!({"provider": {"type": "OKTA", "name": "OKTA"}}));
    // A STAGED user cannot sign in.
    assert_eq!(c.authn_raw("s@example.com", "x1234567").await.0, StatusCode::UNAUTHORIZED);

    let dup = api(&c, Method::POST, "/api/v1/users", Some(&json!({"profile": {"login": "Alice@Example.com"}}))).await;
    assert_api_error(
        &dup,
        400,
        "E0000001",
        "Api validation failed: login",
        &["login: An object with this field already exists in the current organization"],
    );
    let no_login = api(&c, Method::POST, "/api/v1/users", Some(&json!({"profile": {"email": "x@example.com"}}))).await;
    assert_api_error(&no_login, 400, "E0000001", "Api validation failed: login", &["login: The field cannot be left blank"]);
    let no_profile = api(&c, Method::POST, "/api/v1/users", Some(&json!({}))).await;
    assert_api_error(&no_profile, 400, "E0000001", "Api validation failed", &["profile: must be an object"]);
    let blank_pw = api(
        &c,
        Method::POST,
        "/api/v1/users",
        Some(&json!({"profile": {"login": "q@example.com"}, "credentials": {"password": {"value": ""}}})),
    )
    .await;
    assert_api_error(&blank_pw, 400, "E0000001", "Api validation failed: password", &["password: The field cannot be left blank"]);
    let bad_json = api_raw(&c, Method::POST, "/api/v1/users", Some("{\"profile\": ")).await;
    assert_api_error(&bad_json, 400, "E0000003", "The request body was not well-formed.", &["EOF while parsing a value"]);
    let bad_group =
        api(&c, Method::POST, "/api/v1/users", Some(&json!({"profile": {"login": "g@example.com"}, "groupIds": ["00gnope"]}))).await;
    assert_api_error(&bad_group, 404, "E0000007", "Not found: Resource not found: 00gnope (UserGroup)", &[]);
    let bad_activate = api(&c, Method::POST, "/api/v1/users?activate=maybe", Some(&json!({"profile": {"login": "m@example.com"}}))).await;
    assert_api_error(&bad_activate, 400, "E0000001", "Api validation failed", &["activate: must be true or false, got maybe"]);
    let missing = api(&c, Method::GET, "/api/v1/users/00unope", None).await;
    assert_api_error(&missing, 404, "E0000007", "Not found: Resource not found: 00unope (User)", &[]);
    // Nothing half-created: the configured users plus the staged and the provisioned one.
    assert_eq!(api(&c, Method::GET, "/api/v1/users", None).await.json().as_array().unwrap().len(), configured + 2);
}

#[tokio::test]
async fn create_user_in_group_is_assigned_through_it() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let body = json!({"profile": {"login": "erin@example.com", "email": "erin@example.com"}, "credentials": {"password": {"value": PASSWORD}}, "groupIds": [GROUP_ID]});
    let r = api(&c, Method::POST, "/api/v1/users", Some(&body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = sign_in(&c, Server::DEFAULT, "erin@example.com").await;
    assert_eq!(decode_claims(t.id_token.as_deref().unwrap())["email"], "erin@example.com");
    assert_eq!(c.events("group.user_membership.add").await.len(), 1);
    assert_eq!(c.events("application.user_membership.add").await.len(), 1);
}

#[tokio::test]
async fn list_users_with_q_filter_search_limit_and_paging() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let ids = |r: &Reply| r.json().as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let all = api(&c, Method::GET, "/api/v1/users", None).await;
    assert_eq!(ids(&all), vec![ALICE_ID, BOB_ID, CAROL_ID]);
    let base = idp.base_url();
    assert_eq!(all.header("link").as_deref(), Some(format!("<{base}/api/v1/users>; rel=\"self\"").as_str()));
    assert_eq!(ids(&api(&c, Method::GET, "/api/v1/users?q=ali", None).await), vec![ALICE_ID]);
    assert_eq!(ids(&api(&c, Method::GET, "/api/v1/users?q=Example", None).await), vec![ALICE_ID, BOB_ID, CAROL_ID]);
    let f = |q: &str| format!("/api/v1/users?{}", encode_form(&[("filter", q)]));
    assert_eq!(ids(&api(&c, Method::GET, &f(r#"profile.email eq "bob@example.com""#), None).await), vec![BOB_ID]);
    assert_eq!(
        ids(&api(&c, Method::GET, &f(r#"status eq "ACTIVE" and profile.login eq "CAROL@example.com""#), None).await),
        vec![CAROL_ID]
    );
    assert_eq!(
        ids(&api(&c, Method::GET, &f(r#"id eq "00u1alice00000000001" or id eq "00u1carol00000000001""#), None).await),
        vec![ALICE_ID, CAROL_ID]
    );
    let search = format!("/api/v1/users?{}", encode_form(&[("search", r#"profile.email sw "car""#)]));
    assert_eq!(ids(&api(&c, Method::GET, &search, None).await), vec![CAROL_ID]);
    assert_api_error(&api(&c, Method::GET, &f(r#"profile.email sw "car""#), None).await, 400, "E0000031", "Invalid search criteria.", &[]);
    assert_api_error(&api(&c, Method::GET, &f("status eq ACTIVE"), None).await, 400, "E0000031", "Invalid search criteria.", &[]);
    let both = format!("/api/v1/users?{}", encode_form(&[("q", "a"), ("filter", r#"status eq "ACTIVE""#)]));
    assert_api_error(
        &api(&c, Method::GET, &both, None).await,
        400,
        "E0000033",
        "Bad request. Can't specify a search query and filter in the same request.",
        &[],
    );
    assert_api_error(
        &api(&c, Method::GET, "/api/v1/users?limit=0", None).await,
        400,
        "E0000001",
        "Api validation failed",
        &["limit: must be between 1 and 200, got 0"],
    );

    // Paging: limit 2, then the next link.
    let p1 = api(&c, Method::GET, "/api/v1/users?limit=2", None).await;
    assert_eq!(ids(&p1), vec![ALICE_ID, BOB_ID]);
    assert_eq!(
        p1.header("link").as_deref(),
        Some(format!("<{base}/api/v1/users?limit=2>; rel=\"self\", <{base}/api/v1/users?limit=2&after={BOB_ID}>; rel=\"next\"").as_str())
    );
    let p2 = api(&c, Method::GET, &format!("/api/v1/users?limit=2&after={BOB_ID}"), None).await;
    assert_eq!(ids(&p2), vec![CAROL_ID]);
    assert!(!p2.header("link").unwrap().contains("rel=\"next\""));

    // A deactivated user leaves the default list but is found by status.
    assert_eq!(api(&c, Method::POST, &format!("/api/v1/users/{BOB_ID}/lifecycle/deactivate"), None).await.status, StatusCode::OK);
    assert_eq!(ids(&api(&c, Method::GET, "/api/v1/users", None).await), vec![ALICE_ID, CAROL_ID]);
    assert_eq!(ids(&api(&c, Method::GET, &f(r#"status eq "DEPROVISIONED""#), None).await), vec![BOB_ID]);
    // The typed client follows paging.
    let admin = AdminClient::for_idp(&idp);
    let listed: Vec<String> = admin.list_users(&[("limit", "1")]).await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(listed, vec![ALICE_ID, CAROL_ID]);
}

#[tokio::test]
async fn update_profile_partial_and_full_and_password() {
    let idp = idp().await;
    let c = Client::new(&idp);
    c.advance(60).await;
    let r = api(
        &c,
        Method::POST,
        &format!("/api/v1/users/{ALICE_ID}"),
        Some(&json!({"profile": {"email": "alice.new@example.com", "nickName": "ali"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let u = r.json();
    assert_eq!(
        u["profile"],
        json!({"login": "alice@example.com", "email": "alice.new@example.com", "firstName": "Alice", "lastName": "Example", "nickName": "ali"})
    );
    assert_eq!(u["lastUpdated"], "2030-01-01T00:01:00.000Z");
    assert_eq!(u["passwordChanged"], T0_ISO);
    // The new email is in the next ID token.
    let t = sign_in(&c, Server::DEFAULT, ALICE).await;
    assert_eq!(decode_claims(t.id_token.as_deref().unwrap())["email"], "alice.new@example.com");

    // PUT replaces the profile as a whole and needs a login.
    let full = api(
        &c,
        Method::PUT,
        &format!("/api/v1/users/{ALICE_ID}"),
        Some(&json!({"profile": {"login": "alice@example.com", "email": "a@example.com"}})),
    )
    .await;
    assert_eq!(full.json()["profile"], json!({"login": "alice@example.com", "email": "a@example.com"}));
    let no_login = api(&c, Method::PUT, &format!("/api/v1/users/{ALICE_ID}"), Some(&json!({"profile": {"email": "a@example.com"}}))).await;
    assert_api_error(&no_login, 400, "E0000001", "Api validation failed: login", &["login: The field cannot be left blank"]);
    let taken = api(&c, Method::POST, &format!("/api/v1/users/{ALICE_ID}"), Some(&json!({"profile": {"login": "bob@example.com"}}))).await;
    assert_api_error(
        &taken,
        400,
        "E0000001",
        "Api validation failed: login",
        &["login: An object with this field already exists in the current organization"],
    );

    // A new password: the old one stops working, the tokens issued before survive (Okta documents no effect).
    let pw =
        api(&c, Method::POST, &format!("/api/v1/users/{ALICE_ID}"), Some(&json!({"credentials": {"password": {"value": "N3w-Passw0rd"}}})))
            .await;
    assert_eq!(pw.json()["passwordChanged"], "2030-01-01T00:01:00.000Z");
    assert_eq!(c.authn_raw(ALICE, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(c.authn_raw(ALICE, "N3w-Passw0rd").await.0, StatusCode::OK);
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&t)).await.0, StatusCode::OK);
    assert_eq!(c.events("user.account.update_profile").await.len(), 2);
    assert_eq!(c.events("user.account.update_password").await.len(), 1);
    let missing = api(&c, Method::POST, "/api/v1/users/00unope", Some(&json!({"profile": {"email": "x@example.com"}}))).await;
    assert_api_error(&missing, 404, "E0000007", "Not found: Resource not found: 00unope (User)", &[]);
}

#[tokio::test]
async fn lifecycle_transitions_follow_okta_and_refuse_the_rest() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let lc = |op: &'static str| format!("/api/v1/users/{ALICE_ID}/lifecycle/{op}");
    let status = async |c: &Client| {
        api(c, Method::GET, &format!("/api/v1/users/{ALICE_ID}"), None).await.json()["status"].as_str().unwrap().to_string()
    };

    // Control POSTs accept no body, an empty body and `{}`.
    let r = api_raw(&c, Method::POST, &lc("suspend"), None).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    assert_eq!(status(&c).await, "SUSPENDED");
    assert_api_error(
        &api_raw(&c, Method::POST, &lc("suspend"), Some("")).await,
        400,
        "E0000001",
        "Api validation failed: suspend",
        &["status: Only an ACTIVE user can be suspended; this user is SUSPENDED"],
    );
    assert_api_error(
        &api(&c, Method::POST, &lc("activate"), None).await,
        403,
        "E0000038",
        "This operation is not allowed in the user's current status.",
        &[],
    );
    let r = api_raw(&c, Method::POST, &lc("unsuspend"), Some("{}")).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    assert_eq!(status(&c).await, "ACTIVE");
    assert_api_error(
        &api(&c, Method::POST, &lc("unsuspend"), None).await,
        400,
        "E0000001",
        "Api validation failed: unsuspend",
        &["status: Only a SUSPENDED user can be unsuspended; this user is ACTIVE"],
    );
    assert_api_error(
        &api(&c, Method::POST, &lc("activate"), None).await,
        403,
        "E0000016",
        "Activation failed because the user is already active",
        &[],
    );
    assert_api_error(
        &api(&c, Method::POST, &lc("reactivate"), None).await,
        403,
        "E0000038",
        "This operation is not allowed in the user's current status.",
        &[],
    );
    assert_eq!(api(&c, Method::POST, &lc("deactivate"), None).await.json(), json!({}));
    assert_eq!(status(&c).await, "DEPROVISIONED");
    assert_api_error(
        &api(&c, Method::POST, &lc("deactivate"), None).await,
        403,
        "E0000038",
        "This operation is not allowed in the user's current status.",
        &[],
    );
    assert_api_error(
        &api(&c, Method::POST, &lc("suspend"), None).await,
        400,
        "E0000001",
        "Api validation failed: suspend",
        &["status: Only an ACTIVE user can be suspended; this user is DEPROVISIONED"],
    );
    let act = api(&c, Method::POST, &format!("{}?sendEmail=false", lc("activate")), None).await;
    assert_eq!(act.status, StatusCode::OK);
    let token = act.json()["activationToken"].as_str().unwrap().to_string();
    assert_eq!(act.json(), json!({"activationUrl": format!("{}/welcome/{token}", idp.base_url()), "activationToken": token}));
    assert_eq!(status(&c).await, "ACTIVE");
    assert_api_error(
        &api(&c, Method::POST, &lc("reset_password"), None).await,
        400,
        "E0000001",
        "Api validation failed: lifecycle",
        &[
            "lifecycle: the operation reset_password is not supported by the mock (activate, reactivate, deactivate, suspend, unsuspend are)",
        ],
    );
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/users/00unope/lifecycle/suspend", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 00unope (User)",
        &[],
    );
    for (ty, n) in
        [("user.lifecycle.suspend", 1), ("user.lifecycle.unsuspend", 1), ("user.lifecycle.deactivate", 1), ("user.lifecycle.activate", 1)]
    {
        assert_eq!(c.events(ty).await.len(), n, "{ty}");
    }
}

#[tokio::test]
async fn delete_deactivates_first_then_deletes() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let del = api(&c, Method::DELETE, &format!("/api/v1/users/{BOB_ID}"), None).await;
    assert_eq!((del.status, del.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/users/{BOB_ID}"), None).await.json()["status"], "DEPROVISIONED");
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/users/{BOB_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/users/{BOB_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {BOB_ID} (User)"),
        &[],
    );
    assert_api_error(
        &api(&c, Method::DELETE, &format!("/api/v1/users/{BOB_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {BOB_ID} (User)"),
        &[],
    );
    let members: Vec<Value> =
        api(&c, Method::GET, &format!("/api/v1/groups/{GROUP_ID}/users"), None).await.json().as_array().unwrap().clone();
    assert_eq!(members.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(), vec![json!(ALICE_ID)]);
    assert_eq!(c.events("user.lifecycle.deactivate").await.len(), 1);
    assert_eq!(c.events("user.lifecycle.delete.initiated").await.len(), 1);
    assert_eq!(c.events("user.lifecycle.delete.completed").await.len(), 1);
    // The login is free again.
    let again = api(&c, Method::POST, "/api/v1/users", Some(&json!({"profile": {"login": BOB}}))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

// ---------------------------------------------------------------------------------------------------
// End to end: what M6 revokes, as a relying party sees it.

#[rstest]
#[case::org(Server::Org)]
#[case::custom(Server::DEFAULT)]
#[tokio::test]
async fn deactivation_kills_refresh_and_reactivation_does_not_resurrect(#[case] server: Server) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, server, ALICE).await;
    let (s, b) = refresh(&c, server, rt(&t)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r1 = b["refresh_token"].as_str().unwrap().to_string();
    let at1 = b["access_token"].as_str().unwrap().to_string();
    assert_eq!(c.userinfo(server, &at1).await.status, StatusCode::OK);

    assert_eq!(api(&c, Method::POST, &format!("/api/v1/users/{ALICE_ID}/lifecycle/deactivate"), None).await.status, StatusCode::OK);
    assert_refresh_dead(refresh(&c, server, &r1).await);
    assert_refresh_dead(refresh(&c, server, rt(&t)).await);
    let ui = c.userinfo(server, &at1).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        ui.header("www-authenticate").as_deref(),
        Some("Bearer error=\"invalid_token\", error_description=\"The access token is invalid\"")
    );
    assert!(!c.is_active(server, &r1).await);
    assert!(!c.is_active(server, &at1).await);
    let (s, b) = c.authn_raw(ALICE, PASSWORD).await;
    assert_eq!((s.as_u16(), b["errorCode"].as_str()), (401, Some("E0000004")));
    // The System Log names the revoked family (the one the request log saw presented).
    let fam = AdminClient::for_idp(&idp).requests().await.unwrap().into_iter().find_map(|e| e.refresh_family).unwrap();
    let ev = c.events("user.lifecycle.deactivate").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["debugContext"]["debugData"]["revokedRefreshFamilies"], json!([fam]));
    assert_eq!(ev[0]["target"][0]["id"], ALICE_ID);

    // Reactivated: password and group kept, old tokens stay dead, a new sign-in works.
    assert_eq!(api(&c, Method::POST, &format!("/api/v1/users/{ALICE_ID}/lifecycle/activate"), None).await.status, StatusCode::OK);
    assert_refresh_dead(refresh(&c, server, &r1).await);
    assert_eq!(c.userinfo(server, &at1).await.status, StatusCode::UNAUTHORIZED);
    let fresh = sign_in(&c, server, ALICE).await;
    assert_eq!(refresh(&c, server, rt(&fresh)).await.0, StatusCode::OK);
    idp.check_invariants().unwrap();
}

#[tokio::test]
async fn suspension_kills_refresh_and_unsuspend_does_not_resurrect() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, Server::DEFAULT, BOB).await;
    let admin = AdminClient::for_idp(&idp);
    admin.suspend_user(BOB).await.unwrap();
    assert_eq!(admin.get_user(BOB_ID).await.unwrap().status, UserStatus::Suspended);
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t)).await);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    admin.unsuspend_user(BOB).await.unwrap();
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t)).await);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&sign_in(&c, Server::DEFAULT, BOB).await)).await.0, StatusCode::OK);
    let err = admin.unsuspend_user(BOB).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(400), Some("E0000001")));
}

#[tokio::test]
async fn removal_from_the_group_unassigns_and_revokes() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, Server::DEFAULT, BOB).await;
    let alice = sign_in(&c, Server::DEFAULT, ALICE).await;
    let r = api(&c, Method::DELETE, &format!("/api/v1/groups/{GROUP_ID}/users/{BOB_ID}"), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t)).await);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        authorize_error(&c, Server::DEFAULT, BOB).await,
        Some(("access_denied".into(), "User is not assigned to the client application.".into()))
    );
    // Alice, still in the group, is untouched.
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&alice)).await.0, StatusCode::OK);
    let removed = c.events("application.user_membership.remove").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["target"][0]["id"], APP_ID);
    assert_eq!(removed[0]["target"][1]["id"], BOB_ID);
    assert_eq!(c.events("group.user_membership.remove").await.len(), 1);
    // Removing a non-member is a no-op; back in the group, bob signs in again but the old token stays dead.
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/groups/{GROUP_ID}/users/{BOB_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(c.events("group.user_membership.remove").await.len(), 1);
    assert_eq!(api(&c, Method::PUT, &format!("/api/v1/groups/{GROUP_ID}/users/{BOB_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(c.events("application.user_membership.add").await.len(), 1);
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t)).await);
    assert_eq!(authorize_error(&c, Server::DEFAULT, BOB).await, None);
}

#[tokio::test]
async fn a_direct_assignment_keeps_tokens_when_the_group_goes_and_its_removal_revokes() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, Server::DEFAULT, BOB).await;
    let r = api(
        &c,
        Method::POST,
        &format!("/api/v1/apps/{APP_ID}/users"),
        Some(&json!({"id": BOB_ID, "scope": "USER", "credentials": {"userName": BOB}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let base = idp.base_url();
    assert_eq!(
        r.json(),
        json!({
            "id": BOB_ID, "externalId": null, "created": T0_ISO, "lastUpdated": T0_ISO, "scope": "USER", "status": "ACTIVE",
            "statusChanged": T0_ISO, "passwordChanged": null, "syncState": "DISABLED", "credentials": {"userName": BOB}, "profile": {},
            "_links": {"app": {"href": format!("{base}/api/v1/apps/{APP_ID}")}, "user": {"href": format!("{base}/api/v1/users/{BOB_ID}")}}
        })
    );
    let scopes = |r: &Reply| {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["id"].as_str().unwrap().to_string(), u["scope"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scopes(&api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}/users"), None).await),
        vec![(ALICE_ID.into(), "GROUP".into()), (BOB_ID.into(), "USER".into())]
    );
    // Assigned directly as well: leaving the group changes nothing.
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/groups/{GROUP_ID}/users/{BOB_ID}"), None).await.status, StatusCode::NO_CONTENT);
    let (s, b) = refresh(&c, Server::DEFAULT, rt(&t)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r1 = b["refresh_token"].as_str().unwrap().to_string();
    assert!(c.events("application.user_membership.remove").await.is_empty());
    // The last assignment goes: the family dies.
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/apps/{APP_ID}/users/{BOB_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_refresh_dead(refresh(&c, Server::DEFAULT, &r1).await);
    assert_eq!(c.events("application.user_membership.remove").await.len(), 1);
    assert_api_error(
        &api(&c, Method::DELETE, &format!("/api/v1/apps/{APP_ID}/users/{BOB_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {BOB_ID} (AppUser)"),
        &[],
    );
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}/users/{BOB_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {BOB_ID} (AppUser)"),
        &[],
    );
    // Carol (never assigned) gets in through a direct assignment, and out again.
    let admin = AdminClient::for_idp(&idp);
    assert_eq!(admin.assign_user(APP_ID, CAROL_ID).await.unwrap().scope, "USER");
    let carol = sign_in(&c, Server::DEFAULT, CAROL).await;
    admin.unassign_user(APP_ID, CAROL_ID).await.unwrap();
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&carol)).await);
    assert_api_error(
        &api(&c, Method::POST, &format!("/api/v1/apps/{APP_ID}/users"), Some(&json!({"scope": "USER"}))).await,
        400,
        "E0000001",
        "Api validation failed: id",
        &["id: The field cannot be left blank"],
    );
    assert_api_error(
        &api(&c, Method::POST, &format!("/api/v1/apps/{APP_ID}/users"), Some(&json!({"id": "00unope"}))).await,
        404,
        "E0000007",
        "Not found: Resource not found: 00unope (User)",
        &[],
    );
}

#[tokio::test]
async fn unassigning_the_group_from_the_app_revokes_its_members() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let a = sign_in(&c, Server::DEFAULT, ALICE).await;
    let b = sign_in(&c, Server::Org, BOB).await;
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/apps/{APP_ID}/groups/{GROUP_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&a)).await);
    assert_refresh_dead(refresh(&c, Server::Org, rt(&b)).await);
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}/groups"), None).await.json(), json!([]));
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}/users"), None).await.json(), json!([]));
    assert_eq!(c.events("group.application_assignment.remove").await.len(), 1);
    assert_eq!(c.events("application.user_membership.remove").await.len(), 2);
    assert_api_error(
        &api(&c, Method::DELETE, &format!("/api/v1/apps/{APP_ID}/groups/{GROUP_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {GROUP_ID} (ApplicationGroupAssignment)"),
        &[],
    );
    // Assigned again (an empty body, `{}` or none), new sign-ins work; the old families stay dead.
    let base = idp.base_url();
    let put = api_raw(&c, Method::PUT, &format!("/api/v1/apps/{APP_ID}/groups/{GROUP_ID}"), Some("{}")).await;
    assert_eq!(
        put.json(),
        json!({"id": GROUP_ID, "lastUpdated": T0_ISO, "priority": 0, "profile": {},
            "_links": {"app": {"href": format!("{base}/api/v1/apps/{APP_ID}")}, "self": {"href": format!("{base}/api/v1/apps/{APP_ID}/groups/{GROUP_ID}")}, "group": {"href": format!("{base}/api/v1/groups/{GROUP_ID}")}}})
    );
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}/groups/{GROUP_ID}"), None).await.json(), put.json());
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&a)).await);
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&sign_in(&c, Server::DEFAULT, ALICE).await)).await.0, StatusCode::OK);
    assert_api_error(
        &api(&c, Method::PUT, &format!("/api/v1/apps/{APP_ID}/groups/00gnope"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 00gnope (UserGroup)",
        &[],
    );
}

#[tokio::test]
async fn deleting_a_group_revokes_the_members_it_assigned() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let a = sign_in(&c, Server::DEFAULT, ALICE).await;
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/groups/{GROUP_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&a)).await);
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}/groups"), None).await.json(), json!([]));
    assert_eq!(c.events("group.lifecycle.delete").await.len(), 1);
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/groups/{GROUP_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {GROUP_ID} (UserGroup)"),
        &[],
    );
}

// ---------------------------------------------------------------------------------------------------
// Groups.

#[tokio::test]
async fn groups_create_list_get_update_members_delete() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let base = idp.base_url();
    let r = api(&c, Method::POST, "/api/v1/groups", Some(&json!({"profile": {"name": "BSR Admins", "description": "Admins"}}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let g = r.json();
    let gid = g["id"].as_str().unwrap().to_string();
    assert!(gid.starts_with("00g") && gid.len() == 20);
    assert_eq!(
        g,
        json!({
            "id": gid, "created": T0_ISO, "lastUpdated": T0_ISO, "lastMembershipUpdated": T0_ISO,
            "objectClass": ["okta:user_group"], "type": "OKTA_GROUP",
            "profile": {"name": "BSR Admins", "description": "Admins"},
            "_links": {
                "logo": [
                    {"name": "medium", "href": format!("{base}/img/logos/groups/okta-medium.png"), "type": "image/png"},
                    {"name": "large", "href": format!("{base}/img/logos/groups/okta-large.png"), "type": "image/png"}
                ],
                "users": {"href": format!("{base}/api/v1/groups/{gid}/users")},
                "apps": {"href": format!("{base}/api/v1/groups/{gid}/apps")}
            }
        })
    );
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/groups", Some(&json!({"profile": {"name": "BSR Admins"}}))).await,
        400,
        "E0000001",
        "Api validation failed: name",
        &["name: An object with this field already exists in the current organization"],
    );
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/groups", Some(&json!({"profile": {}}))).await,
        400,
        "E0000001",
        "Api validation failed: name",
        &["name: The field cannot be left blank"],
    );
    let names =
        |r: &Reply| r.json().as_array().unwrap().iter().map(|g| g["profile"]["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&api(&c, Method::GET, "/api/v1/groups?q=bsr%20a", None).await), vec!["BSR Admins"]);
    assert_eq!(api(&c, Method::GET, "/api/v1/groups", None).await.json().as_array().unwrap().len(), idp.with_tenant(|t| t.groups.len()));
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/groups/{gid}"), None).await.json(), g);
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/groups/{gid}/users"), None).await.json(), json!([]));

    c.advance(1).await;
    assert_eq!(api(&c, Method::PUT, &format!("/api/v1/groups/{gid}/users/{CAROL}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(&c, Method::PUT, &format!("/api/v1/groups/{gid}/users/{CAROL_ID}"), None).await.status, StatusCode::NO_CONTENT);
    let members = api(&c, Method::GET, &format!("/api/v1/groups/{gid}/users"), None).await.json();
    assert_eq!(members.as_array().unwrap().iter().map(|u| u["id"].clone()).collect::<Vec<_>>(), vec![json!(CAROL_ID)]);
    let carol_groups = api(&c, Method::GET, &format!("/api/v1/users/{CAROL_ID}/groups"), None).await.json();
    assert_eq!(carol_groups.as_array().unwrap().iter().map(|g| g["id"].clone()).collect::<Vec<_>>(), vec![json!(gid)]);
    assert_eq!(
        api(&c, Method::GET, &format!("/api/v1/groups/{gid}"), None).await.json()["lastMembershipUpdated"],
        "2030-01-01T00:00:01.000Z"
    );
    assert_eq!(c.events("group.user_membership.add").await.len(), 1);
    let upd = api(&c, Method::PUT, &format!("/api/v1/groups/{gid}"), Some(&json!({"profile": {"name": "BSR Owners"}}))).await;
    assert_eq!(upd.json()["profile"], json!({"name": "BSR Owners", "description": null}));
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/groups/{gid}/users/{CAROL_ID}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/groups/{gid}/users"), None).await.json(), json!([]));
    assert_api_error(
        &api(&c, Method::PUT, &format!("/api/v1/groups/{gid}/users/00unope"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 00unope (User)",
        &[],
    );
    assert_eq!(api(&c, Method::DELETE, &format!("/api/v1/groups/{gid}"), None).await.status, StatusCode::NO_CONTENT);
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/groups/{gid}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {gid} (UserGroup)"),
        &[],
    );
    assert_api_error(
        &api(&c, Method::PUT, &format!("/api/v1/groups/{gid}/users/{CAROL_ID}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {gid} (UserGroup)"),
        &[],
    );
    assert_eq!(c.events("group.lifecycle.create").await.len(), 1);
    // The typed client.
    let admin = AdminClient::for_idp(&idp);
    let g2 = admin.create_group("Readers", Some("read only")).await.unwrap();
    admin.add_group_member(&g2.id, ALICE).await.unwrap();
    assert_eq!(admin.group_members(&g2.id).await.unwrap().iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), vec![ALICE_ID]);
    assert_eq!(admin.user_groups(ALICE).await.unwrap().len(), 2);
    assert_eq!(admin.list_groups(Some("read")).await.unwrap().len(), 1);
    admin.delete_group(&g2.id).await.unwrap();
    assert_eq!(admin.get_group(&g2.id).await.unwrap_err().code(), Some("E0000007"));
}

// ---------------------------------------------------------------------------------------------------
// Apps.

#[tokio::test]
async fn app_create_shows_the_secret_once_and_get_masks_it() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let new = NewOidcApp::web("Portal", "portal", "portal-secret-0123456789", &["http://127.0.0.1:5000/cb"], 15);
    let created = admin.create_app(&new, true).await.unwrap();
    assert_eq!(created.credentials.oauth_client.client_secret.as_deref(), Some("portal-secret-0123456789"));
    let id = created.id.clone();
    assert!(id.starts_with("0oa") && id.len() == 20);
    let base = idp.base_url();
    let got = api(&c, Method::GET, &format!("/api/v1/apps/{id}"), None).await.json();
    assert_eq!(
        got,
        json!({
            "id": id, "name": "oidc_client", "label": "Portal", "status": "ACTIVE", "lastUpdated": T0_ISO, "created": T0_ISO,
            "accessibility": {"selfService": false, "errorRedirectUrl": null, "loginRedirectUrl": null},
            "visibility": {"autoSubmitToolbar": false, "hide": {"iOS": true, "web": true}, "appLinks": {"oidc_client_link": true}},
            "features": [], "signOnMode": "OPENID_CONNECT",
            "credentials": {
                "userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"},
                "oauthClient": {"autoKeyRotation": true, "client_id": "portal", "client_secret": "********", "token_endpoint_auth_method": "client_secret_basic", "pkce_required": false}
            },
            "settings": {
                "app": {}, "notifications": {"vpn": {"network": {"connection": "DISABLED"}, "message": null, "helpUrl": null}},
                "oauthClient": {
                    "client_uri": null, "logo_uri": null, "redirect_uris": ["http://127.0.0.1:5000/cb"], "post_logout_redirect_uris": [],
                    "response_types": ["code"], "grant_types": ["authorization_code", "refresh_token"], "application_type": "web",
                    "consent_method": "TRUSTED", "issuer_mode": "ORG_URL", "refresh_token": {"rotation_type": "ROTATE", "leeway": 15}
                }
            },
            "_links": {
                "appLinks": [{"name": "oidc_client_link", "href": format!("{base}/home/oidc_client/{id}/aln5z7uhkbM6y7bMy0g7"), "type": "text/html"}],
                "groups": {"href": format!("{base}/api/v1/apps/{id}/groups")},
                "users": {"href": format!("{base}/api/v1/apps/{id}/users")},
                "self": {"href": format!("{base}/api/v1/apps/{id}"), "hints": {"allow": ["GET", "PUT"]}},
                "deactivate": {"href": format!("{base}/api/v1/apps/{id}/lifecycle/deactivate"), "hints": {"allow": ["POST"]}}
            }
        })
    );
    assert!(!api(&c, Method::GET, "/api/v1/apps", None).await.body.contains("portal-secret"));
    assert_eq!(c.events("application.lifecycle.create").await.len(), 1);

    // The new app works end to end once a group is assigned: sign in, refresh.
    admin.assign_group(&id, GROUP_ID).await.unwrap();
    let req = Authorize::new("portal").redirect_uri("http://127.0.0.1:5000/cb").scope("openid email offline_access");
    let t = c.login_with(Server::DEFAULT, ALICE, PASSWORD, req.clone(), Auth::Basic("portal", "portal-secret-0123456789")).await;
    let r = c.refresh(Server::DEFAULT, "portal", Some("portal-secret-0123456789"), t.refresh_token.as_deref().unwrap(), None).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);

    // PUT without a secret, and with the mask, keeps the secret; redirect URIs and rotation change.
    let put = json!({"name": "oidc_client", "label": "Portal 2", "signOnMode": "OPENID_CONNECT",
        "credentials": {"oauthClient": {"client_id": "portal", "client_secret": "********", "token_endpoint_auth_method": "client_secret_basic"}},
        "settings": {"oauthClient": {"redirect_uris": ["http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb2"], "grant_types": ["authorization_code", "refresh_token"], "application_type": "web", "refresh_token": {"rotation_type": "STATIC", "leeway": 0}}}});
    let upd = api(&c, Method::PUT, &format!("/api/v1/apps/{id}"), Some(&put)).await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.body);
    let u = upd.json();
    assert_eq!(u["label"], "Portal 2");
    assert_eq!(u["credentials"]["oauthClient"]["client_secret"], "********");
    assert_eq!(u["settings"]["oauthClient"]["redirect_uris"], json!(["http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb2"]));
    assert_eq!(u["settings"]["oauthClient"]["refresh_token"], json!({"rotation_type": "STATIC", "leeway": 0}));
    let app = admin.update_app(&id, &json!({"label": "Portal 3"})).await.unwrap();
    assert_eq!((app.label.as_str(), app.credentials.oauth_client.client_secret.as_deref()), ("Portal 3", Some("********")));
    // STATIC now: a refresh returns the same token; the secret still works.
    let rt1 = r.1["refresh_token"].as_str().unwrap().to_string();
    let again = c.refresh(Server::DEFAULT, "portal", Some("portal-secret-0123456789"), &rt1, None).await;
    assert_eq!((again.0, again.1["refresh_token"].as_str()), (StatusCode::OK, Some(rt1.as_str())));
    // A new secret replaces the old one.
    admin.update_app(&id, &json!({"credentials": {"oauthClient": {"client_secret": "rotated-secret-0123456789"}}})).await.unwrap();
    let old = c.refresh(Server::DEFAULT, "portal", Some("portal-secret-0123456789"), &rt1, None).await;
    assert_eq!(
        old,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "The client secret supplied for a confidential client is invalid."})
        )
    );
    assert_eq!(c.refresh(Server::DEFAULT, "portal", Some("rotated-secret-0123456789"), &rt1, None).await.0, StatusCode::OK);
    assert_eq!(c.events("application.lifecycle.update").await.len(), 3);
}

#[tokio::test]
async fn app_create_generates_client_id_and_secret_and_validates() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let configured = idp.with_tenant(|t| t.apps.len());
    let body = json!({"name": "oidc_client", "label": "Gen", "signOnMode": "OPENID_CONNECT",
        "credentials": {"oauthClient": {"token_endpoint_auth_method": "client_secret_post"}},
        "settings": {"oauthClient": {"redirect_uris": ["http://127.0.0.1:6000/cb"], "grant_types": ["authorization_code"], "application_type": "web"}}});
    let r = api(&c, Method::POST, "/api/v1/apps?activate=false", Some(&body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = r.json();
    assert_eq!(a["credentials"]["oauthClient"]["client_id"], a["id"]);
    assert_eq!(a["credentials"]["oauthClient"]["client_secret"].as_str().unwrap().len(), 64);
    assert_eq!(a["status"], "INACTIVE");
    assert_eq!(a["_links"]["activate"]["href"], format!("{}/api/v1/apps/{}/lifecycle/activate", idp.base_url(), a["id"].as_str().unwrap()));
    assert!(a["settings"]["oauthClient"].get("refresh_token").is_none());
    // A public SPA gets ROTATE by default, PKCE required, no secret.
    let spa = json!({"name": "oidc_client", "label": "SPA", "credentials": {"oauthClient": {"token_endpoint_auth_method": "none"}},
        "settings": {"oauthClient": {"redirect_uris": ["http://127.0.0.1:6000/spa"], "grant_types": ["authorization_code", "refresh_token"], "application_type": "browser"}}});
    let s = api(&c, Method::POST, "/api/v1/apps", Some(&spa)).await.json();
    assert_eq!(s["credentials"]["oauthClient"].get("client_secret"), None);
    assert_eq!(s["credentials"]["oauthClient"]["pkce_required"], true);
    assert_eq!(s["settings"]["oauthClient"]["refresh_token"], json!({"rotation_type": "ROTATE", "leeway": 30}));

    let bad = |patch: Value| {
        let mut b = json!({"name": "oidc_client", "label": "Bad", "credentials": {"oauthClient": {"client_id": "bad", "client_secret": "s3cret-0123456789"}},
            "settings": {"oauthClient": {"redirect_uris": ["http://127.0.0.1:6000/cb"], "grant_types": ["authorization_code", "refresh_token"], "application_type": "web"}}});
        merge(&mut b, patch);
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"settings": {"oauthClient": {"refresh_token": {"rotation_type": "ROTATE", "leeway": 61}}}}),
            "Api validation failed: leeway",
            "settings.oauthClient.refresh_token.leeway: must be between 0 and 60 seconds, got 61",
        ),
        (
            json!({"settings": {"oauthClient": {"refresh_token": {"rotation_type": "SOMETIMES"}}}}),
            "Api validation failed: rotation_type",
            "settings.oauthClient.refresh_token.rotation_type: must be ROTATE or STATIC, got \"SOMETIMES\"",
        ),
        (
            json!({"settings": {"oauthClient": {"grant_types": ["authorization_code", "magic"]}}}),
            "Api validation failed: settings",
            "grant_types: unsupported grant type magic; valid values: [authorization_code, refresh_token, client_credentials, implicit, password]",
        ),
        (
            json!({"settings": {"oauthClient": {"redirect_uris": ["/relative"]}}}),
            "Api validation failed: settings",
            "redirect_uris: '/relative' is not an absolute URI without a fragment",
        ),
        (
            json!({"credentials": {"oauthClient": {"client_id": "bsr-local"}}}),
            "Api validation failed: client_id",
            "client_id: An object with this field already exists in the current organization",
        ),
        (
            json!({"credentials": {"oauthClient": {"token_endpoint_auth_method": "private_key_jwt"}}}),
            "Api validation failed: token_endpoint_auth_method",
            "credentials.oauthClient.token_endpoint_auth_method: must be one of client_secret_basic, client_secret_post, none, got \"private_key_jwt\"",
        ),
        (json!({"name": "saml_app"}), "Api validation failed: name", "name: the mock supports only OIDC apps (oidc_client), got saml_app"),
        (
            json!({"signOnMode": "SAML_2_0"}),
            "Api validation failed: signOnMode",
            "signOnMode: the mock supports only OPENID_CONNECT, got SAML_2_0",
        ),
        (json!({"label": ""}), "Api validation failed: label", "label: The field cannot be left blank"),
    ];
    for (patch, summary, cause) in cases {
        let r = api(&c, Method::POST, "/api/v1/apps", Some(&bad(patch.clone()))).await;
        assert_api_error(&r, 400, "E0000001", summary, &[cause]);
    }
    let mut no_name = bad(json!({}));
    no_name.as_object_mut().unwrap().remove("name");
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/apps", Some(&no_name)).await,
        400,
        "E0000001",
        "Api validation failed: name",
        &["name: The field cannot be left blank"],
    );
    assert_api_error(
        &api(&c, Method::GET, "/api/v1/apps/0oanope", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 0oanope (AppInstance)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::PUT, "/api/v1/apps/0oanope", Some(&json!({}))).await,
        404,
        "E0000007",
        "Not found: Resource not found: 0oanope (AppInstance)",
        &[],
    );
    // Only the two valid apps were added; the filter finds the inactive one.
    assert_eq!(api(&c, Method::GET, "/api/v1/apps", None).await.json().as_array().unwrap().len(), configured + 2);
    let inactive =
        api(&c, Method::GET, &format!("/api/v1/apps?{}", encode_form(&[("filter", r#"status eq "INACTIVE""#)])), None).await.json();
    assert_eq!(inactive.as_array().unwrap().iter().map(|a| a["label"].clone()).collect::<Vec<_>>(), vec![json!("Gen")]);
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

#[tokio::test]
async fn app_deactivation_revokes_and_activation_does_not_restore() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, Server::DEFAULT, ALICE).await;
    let r = api_raw(&c, Method::POST, &format!("/api/v1/apps/{APP_ID}/lifecycle/deactivate"), None).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({})));
    // While inactive the client itself is refused.
    let (s, b) = refresh(&c, Server::DEFAULT, rt(&t)).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "Client authentication failed. Either the client or the client credentials are invalid."})
        )
    );
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/apps/{APP_ID}"), None).await.json()["status"], "INACTIVE");
    assert_eq!(api(&c, Method::POST, &format!("/api/v1/apps/{APP_ID}/lifecycle/activate"), Some(&json!({}))).await.json(), json!({}));
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t)).await);
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&sign_in(&c, Server::DEFAULT, ALICE).await)).await.0, StatusCode::OK);
    assert_eq!(c.events("application.lifecycle.deactivate").await.len(), 1);
    assert_eq!(c.events("application.lifecycle.activate").await.len(), 1);
    assert_api_error(
        &api(&c, Method::POST, &format!("/api/v1/apps/{APP_ID}/lifecycle/delete"), None).await,
        400,
        "E0000001",
        "Api validation failed: lifecycle",
        &["lifecycle: the operation delete is not supported (activate, deactivate are)"],
    );
}

#[tokio::test]
async fn rotation_settings_change_applies_from_the_next_refresh() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, Server::DEFAULT, ALICE).await;
    let app = admin.set_refresh_rotation(APP_ID, RotationType::Static, 30).await.unwrap();
    assert_eq!(app.settings.oauth_client.refresh_token.map(|r| (r.rotation_type, r.leeway)), Some((RotationType::Static, 30)));
    assert_eq!(app.settings.oauth_client.redirect_uris, vec![REDIRECT_URI, REDIRECT_URI_LOCALHOST]);
    let (s, b) = refresh(&c, Server::DEFAULT, rt(&t)).await;
    assert_eq!((s, b["refresh_token"].as_str()), (StatusCode::OK, Some(rt(&t))));
    // The secret was kept by the partial update.
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&t)).await.0, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------------
// A user's refresh tokens and sessions.

#[tokio::test]
async fn user_refresh_tokens_per_client_list_get_revoke() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t1 = sign_in(&c, Server::DEFAULT, ALICE).await;
    let t2 = sign_in(&c, Server::Org, ALICE).await;
    let base = idp.base_url().to_string();
    let path = format!("/api/v1/users/{ALICE_ID}/clients/{CLIENT_ID}/tokens");
    let list = api(&c, Method::GET, &path, None).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let id1 = list[0]["id"].as_str().unwrap().to_string();
    assert!(id1.starts_with("oar") && id1.len() == 20);
    assert_eq!(
        list[0],
        json!({
            "id": id1, "status": "ACTIVE", "created": T0_ISO, "lastUpdated": T0_ISO, "expiresAt": "2030-01-08T00:00:00.000Z",
            "issuer": format!("{base}/oauth2/default"), "clientId": CLIENT_ID, "userId": ALICE_ID,
            "scopes": ["openid", "profile", "email", "offline_access"],
            "_links": {
                "app": {"href": format!("{base}/api/v1/apps/{APP_ID}"), "title": "Buf Schema Registry"},
                "self": {"href": format!("{base}{path}/{id1}")},
                "revoke": {"href": format!("{base}{path}/{id1}"), "hints": {"allow": ["DELETE"]}},
                "client": {"href": format!("{base}/oauth2/v1/clients/{CLIENT_ID}"), "title": "Buf Schema Registry"},
                "user": {"href": format!("{base}/api/v1/users/{ALICE_ID}"), "title": "Alice Example"},
                "authorizationServer": {"href": format!("{base}/api/v1/authorizationServers/default"), "title": "default"}
            }
        })
    );
    // The org server's family: 90 days, no authorizationServer link.
    assert_eq!(list[1]["issuer"], base);
    assert_eq!(list[1]["expiresAt"], "2030-04-01T00:00:00.000Z");
    assert!(list[1]["_links"].get("authorizationServer").is_none());
    assert_eq!(api(&c, Method::GET, &format!("{path}/{id1}"), None).await.json(), list[0]);

    // A rotation moves the family's id to its new current token.
    c.advance(60).await;
    let (s, _) = refresh(&c, Server::DEFAULT, rt(&t1)).await;
    assert_eq!(s, StatusCode::OK);
    let after = api(&c, Method::GET, &path, None).await.json();
    let new_id = after[0]["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, id1);
    assert_eq!(
        (after[0]["created"].as_str(), after[0]["lastUpdated"].as_str()),
        (Some("2030-01-01T00:01:00.000Z"), Some("2030-01-01T00:01:00.000Z"))
    );
    assert_api_error(
        &api(&c, Method::GET, &format!("{path}/{id1}"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {id1} (RefreshToken)"),
        &[],
    );

    // Revoke one: that family dies with its access tokens, the other lives.
    assert_eq!(api(&c, Method::DELETE, &format!("{path}/{new_id}"), None).await.status, StatusCode::NO_CONTENT);
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t1)).await);
    assert_eq!(c.userinfo(Server::DEFAULT, &t1.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api(&c, Method::GET, &path, None).await.json().as_array().unwrap().len(), 1);
    assert_eq!(c.events("app.oauth2.as.token.revoke").await.len(), 1);
    // Revoke all.
    assert_eq!(api(&c, Method::DELETE, &path, None).await.status, StatusCode::NO_CONTENT);
    assert_refresh_dead(refresh(&c, Server::Org, rt(&t2)).await);
    assert_eq!(api(&c, Method::GET, &path, None).await.json(), json!([]));
    assert_eq!(c.events("app.oauth2.token.revoke").await.len(), 1);
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/users/{ALICE_ID}/clients/nope/tokens"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: nope (AppInstance)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/users/00unope/clients/{CLIENT_ID}/tokens"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 00unope (User)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::DELETE, &format!("{path}/oarnope"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: oarnope (RefreshToken)",
        &[],
    );
    let admin = AdminClient::for_idp(&idp);
    let t3 = sign_in(&c, Server::DEFAULT, ALICE).await;
    let listed = admin.refresh_tokens(ALICE, CLIENT_ID).await.unwrap();
    assert_eq!(listed.len(), 1);
    admin.revoke_refresh_tokens(ALICE, CLIENT_ID, Some(&listed[0].id)).await.unwrap();
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t3)).await);
}

#[tokio::test]
async fn clearing_sessions_ends_the_okta_session_and_optionally_the_tokens() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let t = sign_in(&c, Server::DEFAULT, ALICE).await;
    let silent = async |c: &Client| {
        let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("prompt", "none")).await;
        url_param(&r.location().unwrap(), "error")
    };
    assert_eq!(silent(&c).await, None, "the session signs in silently");
    let r = api(&c, Method::DELETE, &format!("/api/v1/users/{ALICE_ID}/sessions"), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(silent(&c).await.as_deref(), Some("login_required"));
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&t)).await.0, StatusCode::OK, "refresh tokens survive a session end");
    let t2 = sign_in(&c, Server::DEFAULT, ALICE).await;
    assert_eq!(
        api(&c, Method::DELETE, &format!("/api/v1/users/{ALICE_ID}/sessions?oauthTokens=true"), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t2)).await);
    assert_eq!(c.userinfo(Server::DEFAULT, &t2.access_token).await.status, StatusCode::UNAUTHORIZED);
    let ev = c.events("user.session.clear").await;
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["debugContext"]["debugData"]["oauthTokens"], true);
    assert_api_error(
        &api(&c, Method::DELETE, &format!("/api/v1/users/{ALICE_ID}/sessions?oauthTokens=yes"), None).await,
        400,
        "E0000001",
        "Api validation failed",
        &["oauthTokens: must be true or false, got yes"],
    );
}

// ---------------------------------------------------------------------------------------------------
// Authorization servers: policies, rules, keys.

#[tokio::test]
async fn servers_policies_and_rule_lifetimes() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let base = idp.base_url();
    let servers = api(&c, Method::GET, "/api/v1/authorizationServers", None).await.json();
    assert_eq!(servers.as_array().unwrap().len(), 1);
    let s = &servers[0];
    assert_eq!(
        (
            s["id"].as_str(),
            s["name"].as_str(),
            s["description"].as_str(),
            s["audiences"].clone(),
            s["issuer"].as_str(),
            s["status"].as_str()
        ),
        (
            Some("default"),
            Some("default"),
            Some("Default Authorization Server"),
            json!(["api://default"]),
            Some(format!("{base}/oauth2/default").as_str()),
            Some("ACTIVE")
        )
    );
    let keys = api(&c, Method::GET, "/api/v1/authorizationServers/default/credentials/keys", None).await.json();
    assert_eq!(
        s["credentials"]["signing"],
        json!({"rotationMode": "AUTO", "lastRotated": T0_ISO, "nextRotation": "2030-04-01T00:00:00.000Z", "kid": keys[0]["kid"], "use": "sig"})
    );
    assert_eq!(api(&c, Method::GET, "/api/v1/authorizationServers/default", None).await.json(), *s);
    assert_api_error(
        &api(&c, Method::GET, "/api/v1/authorizationServers/nope", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: nope (AuthorizationServer)",
        &[],
    );

    let policies = api(&c, Method::GET, "/api/v1/authorizationServers/default/policies", None).await.json();
    assert_eq!(policies.as_array().unwrap().len(), 1);
    let pid = policies[0]["id"].as_str().unwrap().to_string();
    assert!(pid.starts_with("00p") && pid.len() == 20);
    assert_eq!(
        (policies[0]["type"].as_str(), policies[0]["name"].as_str(), policies[0]["priority"].as_u64()),
        (Some("OAUTH_AUTHORIZATION_POLICY"), Some("Default Policy"), Some(1))
    );
    let rules = api(&c, Method::GET, &format!("/api/v1/authorizationServers/default/policies/{pid}/rules"), None).await.json();
    let rid = rules[0]["id"].as_str().unwrap().to_string();
    assert!(rid.starts_with("0pr") && rid.len() == 20);
    assert_eq!(rules[0]["name"], "Default Policy Rule");
    assert_eq!(
        rules[0]["actions"],
        json!({"token": {"accessTokenLifetimeMinutes": 60, "refreshTokenLifetimeMinutes": 0, "refreshTokenWindowMinutes": 10080, "inlineHook": null}})
    );
    let rule_path = format!("/api/v1/authorizationServers/default/policies/{pid}/rules/{rid}");
    assert_eq!(api(&c, Method::GET, &rule_path, None).await.json(), rules[0]);

    // New lifetimes: the next sign-in's access token lives 5 minutes and its family 10 minutes.
    let mut rule = rules[0].clone();
    rule["actions"]["token"]["accessTokenLifetimeMinutes"] = json!(5);
    rule["actions"]["token"]["refreshTokenLifetimeMinutes"] = json!(10);
    rule["actions"]["token"]["refreshTokenWindowMinutes"] = json!(10);
    let put = api(&c, Method::PUT, &rule_path, Some(&rule)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(
        put.json()["actions"]["token"],
        json!({"accessTokenLifetimeMinutes": 5, "refreshTokenLifetimeMinutes": 10, "refreshTokenWindowMinutes": 10, "inlineHook": null})
    );
    let t = sign_in(&c, Server::DEFAULT, ALICE).await;
    assert_eq!(t.expires_in, 300);
    let claims = decode_claims(&t.access_token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    c.advance(10 * 60 + 1).await;
    assert_refresh_dead(refresh(&c, Server::DEFAULT, rt(&t)).await);
    assert_eq!(c.events("policy.rule.update").await.len(), 1);

    let bad = |k: &str, v: u32| {
        let mut r = rules[0].clone();
        r["actions"]["token"][k] = json!(v);
        r
    };
    assert_api_error(
        &api(&c, Method::PUT, &rule_path, Some(&bad("accessTokenLifetimeMinutes", 2))).await,
        400,
        "E0000001",
        "Api validation failed: actions.token",
        &["actions.token.accessTokenLifetimeMinutes: must be between 5 and 1440 minutes, got 2"],
    );
    assert_api_error(
        &api(&c, Method::PUT, &rule_path, Some(&bad("refreshTokenWindowMinutes", 5))).await,
        400,
        "E0000001",
        "Api validation failed: actions.token",
        &["actions.token.refreshTokenWindowMinutes: must be between 10 minutes and 5 years, got 5"],
    );
    assert_api_error(
        &api(&c, Method::GET, "/api/v1/authorizationServers/default/policies/00pnope/rules", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 00pnope (Policy)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/authorizationServers/default/policies/{pid}/rules/0prnope"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: 0prnope (PolicyRule)",
        &[],
    );
    // The typed client sets lifetimes on the deciding rule; a reset restores the configured ones.
    let admin = AdminClient::for_idp(&idp);
    let r = admin
        .set_token_lifetimes(
            "default",
            RuleLifetimes { access_token_lifetime_minutes: 15, refresh_token_lifetime_minutes: 0, refresh_token_window_minutes: 60 },
        )
        .await
        .unwrap();
    assert_eq!(r.actions.token.access_token_lifetime_minutes, 15);
    assert_eq!(sign_in(&c, Server::DEFAULT, ALICE).await.expires_in, 900);
    admin.reset().await.unwrap();
    assert_eq!(sign_in(&c, Server::DEFAULT, ALICE).await.expires_in, 3600);
}

fn kids(v: &Value) -> Vec<(String, String)> {
    v.as_array().unwrap().iter().map(|k| (k["kid"].as_str().unwrap().to_string(), k["status"].as_str().unwrap_or("").to_string())).collect()
}

async fn jwks_kids(c: &Client, server: Server) -> Vec<String> {
    let r = c.get(&server.endpoint("keys")).await;
    r.json()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn custom_server_key_rotation_publishes_both_and_signs_with_the_new_kid() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let path = "/api/v1/authorizationServers/default/credentials/keys";
    let before = api(&c, Method::GET, path, None).await.json();
    let k = kids(&before);
    assert_eq!(k.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(), vec!["ACTIVE", "NEXT"]);
    let (active, next) = (k[0].0.clone(), k[1].0.clone());
    assert_eq!(
        before[0],
        json!({"kty": "RSA", "alg": "RS256", "kid": active, "use": "sig", "e": "AQAB", "n": before[0]["n"], "status": "ACTIVE",
            "_links": {"self": {"href": format!("{}{path}/{active}", idp.base_url()), "hints": {"allow": ["GET"]}}}})
    );
    assert_eq!(api(&c, Method::GET, &format!("{path}/{next}"), None).await.json(), before[1]);
    let old = sign_in(&c, Server::DEFAULT, ALICE).await;
    assert_eq!(decode_header(old.id_token.as_deref().unwrap())["kid"], active);

    let r =
        api(&c, Method::POST, "/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate", Some(&json!({"use": "sig"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = kids(&r.json());
    assert_eq!(after.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(), vec!["ACTIVE", "NEXT", "EXPIRED"]);
    assert_eq!((after[0].0.as_str(), after[2].0.as_str()), (next.as_str(), active.as_str()));
    assert_eq!(kids(&api(&c, Method::GET, path, None).await.json()), after);
    // The JWKS shows the expired key too (tokens it signed are still valid), and new tokens carry the new kid.
    let mut published = jwks_kids(&c, Server::DEFAULT).await;
    published.sort();
    let mut expected: Vec<String> = after.iter().map(|x| x.0.clone()).collect();
    expected.sort();
    assert_eq!(published, expected);
    let new = sign_in(&c, Server::DEFAULT, ALICE).await;
    assert_eq!(decode_header(new.id_token.as_deref().unwrap())["kid"], next);
    assert_eq!(decode_header(&new.access_token)["kid"], next);
    verify_id_token(idp.base_url(), Server::DEFAULT, old.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
    verify_id_token(idp.base_url(), Server::DEFAULT, new.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
    // A refresh after the rotation signs with the new key as well.
    let (s, b) = refresh(&c, Server::DEFAULT, rt(&old)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(decode_header(b["id_token"].as_str().unwrap())["kid"], next);
    let ev = c.events("app.oauth2.as.key.rollover").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["debugContext"]["debugData"]["expiredKid"], active);
    assert_eq!(ev[0]["debugContext"]["debugData"]["activeKid"], next);
    assert_eq!(ev[0]["target"][0]["id"], "default");

    // A second rotation drops the first key; an empty body means `sig`; other uses are refused.
    let r2 = api_raw(&c, Method::POST, "/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate", None).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    assert!(!jwks_kids(&c, Server::DEFAULT).await.contains(&active));
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate", Some(&json!({"use": "enc"}))).await,
        400,
        "E0000001",
        "Api validation failed: rotateKeys",
        &["Invalid value specified for key 'use' parameter."],
    );
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/authorizationServers/nope/credentials/lifecycle/keyRotate", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: nope (AuthorizationServer)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::GET, &format!("{path}/nope"), None).await,
        404,
        "E0000007",
        "Not found: Resource not found: nope (JsonWebKey)",
        &[],
    );
    // The org server's keys did not move.
    assert_eq!(jwks_kids(&c, Server::Org).await.len(), 2);
}

#[tokio::test]
async fn org_key_rotation_through_the_mock_control() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let before = jwks_kids(&c, Server::Org).await;
    assert_eq!(before.len(), 2);
    let old = sign_in(&c, Server::Org, ALICE).await;
    let old_kid = decode_header(old.id_token.as_deref().unwrap())["kid"].as_str().unwrap().to_string();
    let next_kid = before.iter().find(|k| **k != old_kid).unwrap().clone();

    // Like keyRotate: the published NEXT key signs at once; no SSWS token needed, no body needed.
    let r = c.http.post(c.url("/_mock/keys/rotate")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let keys: Value = r.json().await.unwrap();
    assert_eq!(kids(&keys).iter().map(|x| (x.0 == next_kid, x.1.as_str())).collect::<Vec<_>>()[0], (true, "ACTIVE"));
    assert_eq!(kids(&keys)[2], (old_kid.clone(), "EXPIRED".to_string()));
    let new = sign_in(&c, Server::Org, ALICE).await;
    assert_eq!(decode_header(new.id_token.as_deref().unwrap())["kid"], next_kid);
    assert!(before.contains(&next_kid), "a client that cached the JWKS already knows the new kid");
    verify_id_token(idp.base_url(), Server::Org, old.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
    assert_eq!(c.events("app.oauth2.key.rollover").await.len(), 1);

    // Emergency: a never-published key signs at once.
    let published = jwks_kids(&c, Server::Org).await;
    let admin = AdminClient::for_idp(&idp);
    let keys = admin.rotate_org_keys(true).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.status.as_str()).collect::<Vec<_>>(), vec!["ACTIVE", "NEXT", "EXPIRED"]);
    let emergency = sign_in(&c, Server::Org, ALICE).await;
    let kid = decode_header(emergency.id_token.as_deref().unwrap())["kid"].as_str().unwrap().to_string();
    assert_eq!(kid, keys[0].kid);
    assert!(!published.contains(&kid), "the emergency key was not in the JWKS before");
    assert!(jwks_kids(&c, Server::Org).await.contains(&kid));
    let ev = c.events("app.oauth2.key.rollover").await;
    assert_eq!(ev[1]["debugContext"]["debugData"]["emergency"], true);
    // Bodies: `{}` is fine, unknown options are refused.
    assert_eq!(c.post_json("/_mock/keys/rotate", &json!({})).await.status, StatusCode::OK);
    let bad = c.post_json("/_mock/keys/rotate", &json!({"server": "default"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["errorCode"], "E0000001");
}

// ---------------------------------------------------------------------------------------------------
// Reset and the typed client.

#[tokio::test]
async fn reset_restores_the_configured_directory() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    admin.deactivate_user(ALICE).await.unwrap();
    admin.create_user(&profile("zed@example.com", "Zed"), Some(PASSWORD), true).await.unwrap();
    admin.remove_group_member(GROUP_ID, BOB).await.unwrap();
    admin.deactivate_app(APP_ID).await.unwrap();
    admin.rotate_server_keys("default").await.unwrap();
    admin.reset().await.unwrap();
    let users = admin.list_users(&[]).await.unwrap();
    assert_eq!(
        users.iter().map(|u| (u.id.as_str(), u.status)).collect::<Vec<_>>(),
        vec![(ALICE_ID, UserStatus::Active), (BOB_ID, UserStatus::Active), (CAROL_ID, UserStatus::Active)]
    );
    assert_eq!(admin.group_members(GROUP_ID).await.unwrap().len(), 2);
    assert_eq!(admin.get_app(APP_ID).await.unwrap().status, mock_idp::core::model::AppStatus::Active);
    assert_eq!(admin.server_keys("default").await.unwrap().len(), 2);
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&sign_in(&c, Server::DEFAULT, BOB).await)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn typed_client_reports_okta_errors() {
    let idp = idp().await;
    let admin = AdminClient::for_idp(&idp);
    let e = admin.get_user("nobody@example.com").await.unwrap_err();
    match e {
        mock_idp::client::ClientError::Api { status, code, summary, causes } => {
            assert_eq!(
                (status, code.as_str(), summary.as_str(), causes.len()),
                (404, "E0000007", "Not found: Resource not found: nobody@example.com (User)", 0)
            );
        }
        other => panic!("{other:?}"),
    }
    let wrong = AdminClient::new(idp.base_url(), "not-the-token");
    assert_eq!(wrong.list_users(&[]).await.unwrap_err().code(), Some("E0000011"));
    let u = admin.create_user(&profile("yan@example.com", "Yan"), None, false).await.unwrap();
    assert_eq!(u.status, UserStatus::Staged);
    assert_eq!(admin.create_user(&profile("yan@example.com", "Yan"), None, false).await.unwrap_err().code(), Some("E0000001"));
    let u = admin.update_user_profile(&u.id, &json!({"firstName": "Yanis"})).await.unwrap();
    assert_eq!(u.profile.first_name.as_deref(), Some("Yanis"));
    admin.set_password(&u.id, "An0ther-pass").await.unwrap();
    admin.activate_user(&u.id).await.unwrap();
    assert_eq!(admin.get_user("yan@example.com").await.unwrap().status, UserStatus::Active);
    admin.delete_user(&u.id).await.unwrap();
    admin.delete_user(&u.id).await.unwrap();
    assert_eq!(admin.get_user(&u.id).await.unwrap_err().status(), Some(404));
    let servers = admin.list_servers().await.unwrap();
    assert_eq!(servers.iter().map(|s| s.issuer.clone()).collect::<Vec<_>>(), vec![idp.issuer("default")]);
    assert_eq!(admin.get_server("default").await.unwrap().audiences, vec!["api://default"]);
    assert_eq!(admin.app_users(APP_ID).await.unwrap().len(), 2);
    assert_eq!(admin.list_apps().await.unwrap().len(), idp.with_tenant(|t| t.apps.len()));
    assert_eq!(admin.find_app(CLIENT_ID).await.unwrap().id, APP_ID);
    assert_eq!(admin.find_app("nope").await.unwrap_err().code(), Some("E0000007"));
    admin.clear_sessions(ALICE, true).await.unwrap();
    let clock = admin.advance_clock(30.0).await.unwrap();
    assert_eq!((clock.now.as_str(), clock.frozen), ("2030-01-01T00:00:30.000Z", true));
    assert!(!admin.logs(Some("eventType eq \"user.lifecycle.delete.completed\"")).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------
// Deleting apps; creating, deactivating and deleting authorization servers.

#[tokio::test]
async fn app_delete_needs_deactivation_and_takes_tokens_and_assignments_with_it() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let t = sign_in(&c, Server::DEFAULT, ALICE).await;
    let path = format!("/api/v1/apps/{APP_ID}");
    let active = api(&c, Method::DELETE, &path, None).await;
    assert_api_error(&active, 403, "E0000056", "Delete application forbidden.", &["The application must be deactivated before deletion."]);
    // Nothing happened: the app is there and its tokens work.
    let (s, b) = refresh(&c, Server::DEFAULT, rt(&t)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rt2 = b["refresh_token"].as_str().unwrap().to_string();
    assert!(c.events("application.lifecycle.delete").await.is_empty());

    admin.deactivate_app(APP_ID).await.unwrap();
    assert_eq!(api(&c, Method::GET, &path, None).await.json()["_links"]["self"]["hints"]["allow"], json!(["GET", "PUT", "DELETE"]));
    let deleted = api(&c, Method::DELETE, &path, None).await;
    assert_eq!((deleted.status, deleted.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_api_error(
        &api(&c, Method::GET, &path, None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {APP_ID} (AppInstance)"),
        &[],
    );
    assert_api_error(
        &api(&c, Method::DELETE, &path, None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {APP_ID} (AppInstance)"),
        &[],
    );
    assert!(admin.list_apps().await.unwrap().iter().all(|a| a.id != APP_ID));
    assert_eq!(admin.get_app(APP_ID).await.unwrap_err().code(), Some("E0000007"));
    // The client is gone: its refresh token fails client authentication, its access token is dead.
    assert_eq!(
        refresh(&c, Server::DEFAULT, &rt2).await,
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client", "error_description": "Invalid value for 'client_id' parameter."}))
    );
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_api_error(
        &api(&c, Method::GET, &format!("/api/v1/users/{ALICE_ID}/clients/{CLIENT_ID}/tokens"), None).await,
        404,
        "E0000007",
        &format!("Not found: Resource not found: {CLIENT_ID} (AppInstance)"),
        &[],
    );
    // The System Log: the members lost the app, then the app went.
    let removed = c.events("application.user_membership.remove").await;
    let mut who: Vec<&str> = removed.iter().map(|e| e["target"][1]["id"].as_str().unwrap()).collect();
    who.sort();
    assert_eq!(who, vec![ALICE_ID, BOB_ID]);
    let del = c.events("application.lifecycle.delete").await;
    assert_eq!(del.len(), 1);
    assert_eq!(
        (
            del[0]["displayMessage"].as_str(),
            del[0]["outcome"]["result"].as_str(),
            del[0]["target"][0]["id"].as_str(),
            del[0]["target"][0]["type"].as_str()
        ),
        (Some("Delete application"), Some("SUCCESS"), Some(APP_ID), Some("AppInstance"))
    );
    // A new app under the same client id does not bring the old grants back.
    let app = admin.create_app(&NewOidcApp::web("BSR again", CLIENT_ID, CLIENT_SECRET, &[REDIRECT_URI], 15), true).await.unwrap();
    admin.assign_group(&app.id, GROUP_ID).await.unwrap();
    assert_refresh_dead(refresh(&c, Server::DEFAULT, &rt2).await);
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&sign_in(&c, Server::DEFAULT, ALICE).await)).await.0, StatusCode::OK);
    // The typed client deletes too.
    admin.deactivate_app(&app.id).await.unwrap();
    admin.delete_app(&app.id).await.unwrap();
    assert_eq!(admin.delete_app(&app.id).await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn created_server_serves_discovery_and_tokens_at_once_and_is_deleted_after_deactivation() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let base = idp.base_url().to_string();
    let body = json!({"name": "Partner API", "description": "For partners", "audiences": ["api://partner"]});
    let r = api(&c, Method::POST, "/api/v1/authorizationServers", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let s = r.json();
    let id = s["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("aus") && id.len() == 20 && id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    let issuer = format!("{base}/oauth2/{id}");
    let me = format!("{base}/api/v1/authorizationServers/{id}");
    let keys = api(&c, Method::GET, &format!("/api/v1/authorizationServers/{id}/credentials/keys"), None).await.json();
    assert_eq!(keys.as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect::<Vec<_>>(), vec!["ACTIVE", "NEXT"]);
    assert_eq!(
        (
            s["name"].clone(),
            s["description"].clone(),
            s["audiences"].clone(),
            s["issuer"].as_str(),
            s["status"].as_str(),
            s["created"].as_str(),
            s["credentials"]["signing"].clone()
        ),
        (
            json!("Partner API"),
            json!("For partners"),
            json!(["api://partner"]),
            Some(issuer.as_str()),
            Some("ACTIVE"),
            Some(T0_ISO),
            json!({"rotationMode": "AUTO", "lastRotated": T0_ISO, "nextRotation": "2030-04-01T00:00:00.000Z", "kid": keys[0]["kid"], "use": "sig"})
        )
    );
    assert_eq!(s["_links"]["self"], json!({"href": me, "hints": {"allow": ["GET"]}}));
    assert_eq!(s["_links"]["deactivate"], json!({"href": format!("{me}/lifecycle/deactivate"), "hints": {"allow": ["POST"]}}));
    assert_eq!(api(&c, Method::GET, &format!("/api/v1/authorizationServers/{id}"), None).await.json(), s);
    assert_eq!(admin.list_servers().await.unwrap().len(), 2);

    // Its own keys, discovery at once, tokens with its issuer and audience.
    let server = Server::Custom(Box::leak(id.clone().into_boxed_str()));
    let default_keys = api(&c, Method::GET, "/api/v1/authorizationServers/default/credentials/keys", None).await.json();
    assert!(keys.as_array().unwrap().iter().all(|k| default_keys.as_array().unwrap().iter().all(|d| d["kid"] != k["kid"])));
    let disc = c.get(&server.discovery_path()).await;
    assert_eq!(disc.status, StatusCode::OK);
    let d = disc.json();
    assert_eq!((d["issuer"].as_str(), d["jwks_uri"].clone()), (Some(issuer.as_str()), json!(format!("{issuer}/v1/keys"))));
    let t = sign_in(&c, server, ALICE).await;
    let claims = verify_id_token(&base, server, t.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
    assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some(issuer.as_str()), Some(ALICE_ID)));
    let at = verify_jwt(&base, server, &t.access_token, "api://partner").await.unwrap();
    assert_eq!((at["iss"].as_str(), at["aud"].as_str()), (Some(issuer.as_str()), Some("api://partner")));
    assert_eq!(decode_header(&t.access_token)["kid"], keys[0]["kid"]);
    let (st, b) = refresh(&c, server, rt(&t)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let live_rt = b["refresh_token"].as_str().unwrap().to_string();
    // Okta's default policy and rule, whose lifetimes can be changed as the default server's.
    let rule = admin
        .set_token_lifetimes(
            &id,
            RuleLifetimes { access_token_lifetime_minutes: 5, refresh_token_lifetime_minutes: 0, refresh_token_window_minutes: 60 },
        )
        .await
        .unwrap();
    assert_eq!((rule.name.as_str(), rule.actions.token.access_token_lifetime_minutes), ("Default Policy Rule", 5));

    // An ACTIVE server is not deleted.
    assert_api_error(
        &api(&c, Method::DELETE, &format!("/api/v1/authorizationServers/{id}"), None).await,
        403,
        "E0000107",
        "The entity is not in the expected state for the requested transition.",
        &["The authorization server must be deactivated before deletion."],
    );
    // Deactivated: unavailable to clients (an unknown server's 404), its tokens revoked.
    let r = api(&c, Method::POST, &format!("/api/v1/authorizationServers/{id}/lifecycle/deactivate"), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NO_CONTENT, ""));
    let inactive = api(&c, Method::GET, &format!("/api/v1/authorizationServers/{id}"), None).await.json();
    assert_eq!(inactive["status"], "INACTIVE");
    assert_eq!(inactive["_links"]["self"]["hints"]["allow"], json!(["GET", "DELETE"]));
    assert_eq!(inactive["_links"]["activate"]["href"], json!(format!("{me}/lifecycle/activate")));
    let not_found = format!("Not found: Resource not found: {id} (AuthorizationServer)");
    assert_api_error(&c.get(&server.discovery_path()).await, 404, "E0000007", &not_found, &[]);
    assert_api_error(&c.get(&server.endpoint("keys")).await, 404, "E0000007", &not_found, &[]);
    let tok = c.post_form(&server.endpoint("token"), Auth::BSR, &[("grant_type", "refresh_token"), ("refresh_token", &live_rt)]).await;
    assert_api_error(&tok, 404, "E0000007", &not_found, &[]);
    let deact = c.events("oauth2.as.deactivated").await;
    assert_eq!(deact.len(), 1);
    assert_eq!(
        (deact[0]["target"][0]["id"].as_str(), deact[0]["target"][0]["type"].as_str()),
        (Some(id.as_str()), Some("AuthorizationServer"))
    );
    assert_eq!(deact[0]["debugContext"]["debugData"]["revokedRefreshFamilies"].as_array().map(Vec::len), Some(1));
    // Activated again: it answers, but its old tokens stay dead.
    admin.activate_server(&id).await.unwrap();
    assert_eq!(c.get(&server.discovery_path()).await.status, StatusCode::OK);
    assert_refresh_dead(refresh(&c, server, &live_rt).await);
    assert_eq!(c.userinfo(server, &t.access_token).await.status, StatusCode::UNAUTHORIZED);

    admin.deactivate_server(&id).await.unwrap();
    let gone = api(&c, Method::DELETE, &format!("/api/v1/authorizationServers/{id}"), None).await;
    assert_eq!((gone.status, gone.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_api_error(&api(&c, Method::GET, &format!("/api/v1/authorizationServers/{id}"), None).await, 404, "E0000007", &not_found, &[]);
    assert_eq!(admin.delete_server(&id).await.unwrap_err().status(), Some(404));
    assert_eq!(admin.list_servers().await.unwrap().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["default"]);
    let types: Vec<String> = c
        .logs("")
        .await
        .iter()
        .filter_map(|e| e["eventType"].as_str().filter(|t| t.starts_with("oauth2.as.")).map(str::to_string))
        .collect();
    assert_eq!(
        types,
        vec![
            "oauth2.as.created",
            "oauth2.as.activated",
            "oauth2.as.deactivated",
            "oauth2.as.activated",
            "oauth2.as.deactivated",
            "oauth2.as.deleted"
        ]
    );
    // The default server works on.
    assert_eq!(refresh(&c, Server::DEFAULT, rt(&sign_in(&c, Server::DEFAULT, BOB).await)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn server_create_and_lifecycle_errors_are_okta_shaped() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let admin = AdminClient::for_idp(&idp);
    let create = |body: Value| {
        let c = c.clone();
        async move { api(&c, Method::POST, "/api/v1/authorizationServers", Some(&body)).await }
    };
    for (body, field, cause) in [
        (json!({"audiences": ["api://x"]}), "name", "name: The field cannot be left blank"),
        (
            json!({"name": "default", "audiences": ["api://x"]}),
            "name",
            "name: An object with this field already exists in the current organization",
        ),
        (json!({"name": "X"}), "audiences", "audiences: The field cannot be left blank"),
        (json!({"name": "X", "audiences": ["api://a", "api://b"]}), "audiences", "audiences: Okta supports only one audience"),
        (json!({"name": "X", "audiences": "api://a"}), "audiences", "audiences: must be an array of strings, got \"api://a\""),
        (json!({"name": 7, "audiences": ["api://a"]}), "name", "name: must be a string, got 7"),
        (json!({"name": "X", "audiences": ["api://a"], "status": "ON"}), "status", "status: must be ACTIVE or INACTIVE, got ON"),
    ] {
        assert_api_error(&create(body.clone()).await, 400, "E0000001", &format!("Api validation failed: {field}"), &[cause]);
    }
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/authorizationServers", None).await,
        400,
        "E0000001",
        "Api validation failed: name",
        &["name: The field cannot be left blank"],
    );
    assert_eq!(admin.list_servers().await.unwrap().len(), 1);
    assert!(c.events("oauth2.as.created").await.is_empty());

    // `default` is never deleted, active or not; the org server has no resource in this API.
    assert_api_error(
        &api(&c, Method::DELETE, "/api/v1/authorizationServers/default", None).await,
        403,
        "E0000006",
        "You do not have permission to perform the requested action",
        &["The default authorization server cannot be deleted."],
    );
    admin.deactivate_server("default").await.unwrap();
    assert_eq!(admin.delete_server("default").await.unwrap_err().code(), Some("E0000006"));
    assert_eq!(c.get(&Server::DEFAULT.discovery_path()).await.status, StatusCode::NOT_FOUND);
    // The org server is not a custom server: it answers on, whatever happens to `default`.
    assert_eq!(c.get(&Server::Org.discovery_path()).await.status, StatusCode::OK);
    admin.activate_server("default").await.unwrap();
    assert_api_error(
        &api(&c, Method::DELETE, "/api/v1/authorizationServers/org", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: org (AuthorizationServer)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/authorizationServers/nope/lifecycle/deactivate", None).await,
        404,
        "E0000007",
        "Not found: Resource not found: nope (AuthorizationServer)",
        &[],
    );
    assert_api_error(
        &api(&c, Method::POST, "/api/v1/authorizationServers/default/lifecycle/suspend", None).await,
        400,
        "E0000001",
        "Api validation failed: lifecycle",
        &["lifecycle: the operation suspend is not supported (activate, deactivate are)"],
    );
    // Lifecycle operations are idempotent and accept `{}`; an INACTIVE server can be created directly.
    let r = api(&c, Method::POST, "/api/v1/authorizationServers/default/lifecycle/activate", Some(&json!({}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let s = create(json!({"name": "Later", "audiences": ["api://later"], "status": "INACTIVE"})).await;
    assert_eq!((s.status, s.json()["status"].as_str()), (StatusCode::CREATED, Some("INACTIVE")));
    let id = s.json()["id"].as_str().unwrap().to_string();
    assert_eq!(c.get(&format!("/oauth2/{id}/.well-known/openid-configuration")).await.status, StatusCode::NOT_FOUND);
    let typed =
        admin.create_server(&mock_idp::client::NewAuthorizationServer::new("Typed", "api://typed", "made by AdminClient")).await.unwrap();
    assert_eq!((typed.status.as_str(), typed.issuer), ("ACTIVE", idp.issuer(&typed.id)));
    // A reset brings back the configured servers only.
    admin.reset().await.unwrap();
    assert_eq!(admin.list_servers().await.unwrap().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["default"]);
}
