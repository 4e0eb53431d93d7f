//! Refresh tokens with Okta's rotation, grace period and reuse detection (issue 3), over real HTTP.
//!
//! The IdP clock is frozen at 2030-01-01T00:00:00Z and moved with `idp.clock().advance_ms`, so the edges of
//! grace windows and lifetimes are hit to the millisecond.

use mock_idp::MockIdp;
use mock_idp::config::RefreshTokenConfig;
use mock_idp::core::model::{RefreshNonce, RotationType};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tests::*;

const SCOPES: &str = "openid profile email offline_access";
const INVALID: &str = "The refresh token is invalid or expired.";

fn rotating(leeway: u8) -> mock_idp::TenantConfig {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: RotationType::Rotate, leeway });
    cfg
}

fn static_tokens() -> mock_idp::TenantConfig {
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: RotationType::Static, leeway: 30 });
    cfg
}

async fn start(cfg: mock_idp::TenantConfig) -> (MockIdp, Client) {
    let idp = idp_with(cfg).await;
    let c = Client::new(&idp);
    (idp, c)
}

async fn refresh(c: &Client, server: Server, rt: &str) -> (StatusCode, Value) {
    c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), rt, None).await
}

fn rt_of(v: &Value) -> String {
    v["refresh_token"].as_str().unwrap_or_else(|| panic!("a refresh_token in {v}")).to_string()
}

fn assert_invalid(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, &json!({"error": "invalid_grant", "error_description": INVALID}));
}

fn server_prefix(s: Server) -> &'static str {
    match s {
        Server::Org => "app.oauth2",
        Server::Custom(_) => "app.oauth2.as",
    }
}

#[rstest]
#[case::org(Server::Org)]
#[case::custom(Server::DEFAULT)]
#[tokio::test]
async fn rotation_returns_a_new_token_every_use(#[case] server: Server) {
    let (idp, c) = start(rotating(15)).await;
    let t = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let first = t.refresh_token.clone().expect("offline_access gives a refresh token");
    assert_eq!(first.len(), 43);
    assert!(first.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
    let id0 = decode_claims(t.id_token.as_deref().expect("id token"));
    let mut seen = vec![first.clone()];
    let mut rt = first;
    for i in 1..=5 {
        idp.clock().advance_ms(60_000);
        let (s, b) = refresh(&c, server, &rt).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let next = rt_of(&b);
        assert!(!seen.contains(&next), "rotation {i} returned an earlier token");
        assert_eq!(b["token_type"], "Bearer");
        assert_eq!(b["expires_in"], 3600);
        assert_eq!(b["scope"], SCOPES);
        // ID tokens of the refresh grant keep auth_time and amr, get a fresh iat, and omit nonce (M7).
        let id = decode_claims(b["id_token"].as_str().expect("openid was granted, so an id_token"));
        assert_eq!(id["auth_time"], id0["auth_time"]);
        assert_eq!(id["amr"], json!(["pwd"]));
        assert_eq!(id["iat"], json!(T0 + 60 * i));
        assert!(id.get("nonce").is_none(), "nonce omitted by default: {id}");
        assert_eq!(id["at_hash"], json!(at_hash(b["access_token"].as_str().unwrap())));
        verify_id_token(idp.base_url(), server, b["id_token"].as_str().unwrap(), CLIENT_ID).await.expect("signature verifies");
        let at = decode_claims(b["access_token"].as_str().unwrap());
        let jti = at["jti"].as_str().unwrap();
        assert!(jti.starts_with("AT.") && jti.split('.').nth(2).is_some_and(|s| s.starts_with("oar")), "jti {jti}");
        seen.push(next.clone());
        rt = next;
    }
    let ok = c.logs(&format!("eventType eq \"{}.token.grant.refresh_token\"", server_prefix(server))).await;
    // One for the code grant, five for the refreshes.
    assert_eq!(ok.len(), 6);
    assert_eq!(ok[5]["debugContext"]["debugData"]["grantType"], "refresh_token");
    assert_eq!(ok[5]["debugContext"]["debugData"]["refreshGeneration"], 5);
    idp.check_invariants().unwrap();
}

/// C02: the same refresh token sent twice, 2 s apart. Inside the grace window the second call succeeds
/// and returns the same successor.
#[tokio::test]
async fn c02_duplicate_renew_inside_grace_gets_the_same_successor() {
    let (idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let r0 = t.refresh_token.unwrap();
    let (s1, b1) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s1, StatusCode::OK);
    idp.clock().advance_ms(2_000);
    let (s2, b2) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s2, StatusCode::OK, "{b2}");
    assert_eq!(rt_of(&b2), rt_of(&b1), "the grace replay returns the current successor");
    assert_ne!(b2["access_token"], b1["access_token"], "with a fresh access token");
    // The chain goes on from the shared successor; nothing was revoked.
    let (s3, b3) = refresh(&c, Server::DEFAULT, &rt_of(&b1)).await;
    assert_eq!(s3, StatusCode::OK, "{b3}");
    assert!(c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await.is_empty());
    idp.check_invariants().unwrap();
}

/// C02 at leeway 0: the duplicate is reuse; the family dies with every token minted from it.
#[tokio::test]
async fn c02_duplicate_renew_at_leeway_zero_revokes_the_family() {
    let (idp, c) = start(rotating(0)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let r0 = t.refresh_token.unwrap();
    let (s1, b1) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s1, StatusCode::OK);
    let r1 = rt_of(&b1);
    let at1 = b1["access_token"].as_str().unwrap().to_string();
    idp.clock().advance_ms(2_000);
    let (s2, b2) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_invalid(s2, &b2);
    // The successor, its access token and the first access token are dead.
    let (s3, b3) = refresh(&c, Server::DEFAULT, &r1).await;
    assert_invalid(s3, &b3);
    assert!(!c.is_active(Server::DEFAULT, &at1).await);
    assert!(!c.is_active(Server::DEFAULT, &t.access_token).await);
    assert!(!c.is_active(Server::DEFAULT, &r1).await);
    let u = c.userinfo(Server::DEFAULT, &at1).await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED);
    let reuse = c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await;
    assert_eq!(reuse.len(), 1, "exactly one detect_reuse event");
    let d = &reuse[0]["debugContext"]["debugData"];
    assert_eq!(d["replayedGeneration"], 0);
    assert_eq!(d["currentGeneration"], 1);
    assert!(d["refreshFamily"].as_str().unwrap().starts_with("rtf_"));
    assert_eq!(reuse[0]["outcome"]["result"], "FAILURE");
    assert_eq!(reuse[0]["actor"]["alternateId"], ALICE);
    assert_eq!(reuse[0]["published"], mock_idp::clock::rfc3339(idp.clock().now_ms()));
    // The failed requests are in the log with their reason.
    let failures = c.logs("eventType eq \"app.oauth2.as.token.grant\" and outcome.result eq \"FAILURE\"").await;
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["outcome"]["reason"], INVALID);
    idp.check_invariants().unwrap();
}

/// The grace window is the closed interval [rotated_at, rotated_at + leeway]: a replay at exactly leeway
/// seconds is inside, one millisecond later is reuse.
#[rstest]
#[case::exactly_at_leeway(15_000, true)]
#[case::one_ms_later(15_001, false)]
#[case::same_millisecond(0, true)]
#[tokio::test]
async fn grace_window_edges(#[case] after_ms: i64, #[case] inside: bool) {
    let (idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let r0 = t.refresh_token.unwrap();
    let (_, b1) = refresh(&c, Server::DEFAULT, &r0).await;
    idp.clock().advance_ms(after_ms);
    let (s, b) = refresh(&c, Server::DEFAULT, &r0).await;
    if inside {
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(rt_of(&b), rt_of(&b1));
    } else {
        assert_invalid(s, &b);
        let (s, b) = refresh(&c, Server::DEFAULT, &rt_of(&b1)).await;
        assert_invalid(s, &b);
    }
    idp.check_invariants().unwrap();
}

/// Leeway 0 is strict even within the same millisecond (M3).
#[tokio::test]
async fn leeway_zero_has_no_window_at_all() {
    let (idp, c) = start(rotating(0)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let r0 = t.refresh_token.unwrap();
    let (s1, _) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s1, StatusCode::OK);
    let (s2, b2) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_invalid(s2, &b2);
    idp.check_invariants().unwrap();
}

/// The window does not reset on a second use: a replay inside, then one after the original window.
#[tokio::test]
async fn grace_window_is_not_extended_by_a_replay() {
    let (idp, c) = start(rotating(15)).await;
    let r0 = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    let (_, b1) = refresh(&c, Server::DEFAULT, &r0).await;
    idp.clock().advance_ms(10_000);
    let (s, _) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s, StatusCode::OK);
    idp.clock().advance_ms(10_000);
    let (s, b) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_invalid(s, &b);
    let (s, b) = refresh(&c, Server::DEFAULT, &rt_of(&b1)).await;
    assert_invalid(s, &b);
}

/// C05 without fault injection: the client never saw the rotation's answer and retries with the old token.
#[rstest]
#[case::inside_window(10_000, true)]
#[case::after_window(16_000, false)]
#[tokio::test]
async fn c05_lost_response_retry(#[case] retry_after_ms: i64, #[case] survives: bool) {
    let (idp, c) = start(rotating(15)).await;
    let r0 = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    // The rotation commits; its response is "lost" (ignored).
    let (s, lost) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s, StatusCode::OK);
    idp.clock().advance_ms(retry_after_ms);
    let (s, b) = refresh(&c, Server::DEFAULT, &r0).await;
    if survives {
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(rt_of(&b), rt_of(&lost), "the retry gets the current successor");
        assert!(c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await.is_empty());
    } else {
        assert_invalid(s, &b);
        assert_eq!(c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await.len(), 1);
        let (s, b) = refresh(&c, Server::DEFAULT, &rt_of(&lost)).await;
        assert_invalid(s, &b);
    }
    idp.check_invariants().unwrap();
}

/// C06: chain R0→R1→R2; R0 is not the immediate predecessor of R2, so presenting it is reuse even one
/// second after R1 was rotated, and the family is revoked.
#[rstest]
#[case::org(Server::Org)]
#[case::custom(Server::DEFAULT)]
#[tokio::test]
async fn c06_stale_generation_is_reuse(#[case] server: Server) {
    let (idp, c) = start(rotating(15)).await;
    let r0 = c.login(server, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    let (_, b1) = refresh(&c, server, &r0).await;
    let (_, b2) = refresh(&c, server, &rt_of(&b1)).await;
    idp.clock().advance_ms(1_000);
    let (s, b) = refresh(&c, server, &r0).await;
    assert_invalid(s, &b);
    let (s, b) = refresh(&c, server, &rt_of(&b2)).await;
    assert_invalid(s, &b);
    // R1 is inside its window but the family is revoked.
    let (s, b) = refresh(&c, server, &rt_of(&b1)).await;
    assert_invalid(s, &b);
    let reuse = c.logs(&format!("eventType eq \"{}.token.detect_reuse\"", server_prefix(server))).await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["debugContext"]["debugData"]["replayedGeneration"], 0);
    assert_eq!(reuse[0]["debugContext"]["debugData"]["currentGeneration"], 2);
    idp.check_invariants().unwrap();
}

/// Reuse in one family leaves the user's other families (another login) alone (M2).
#[tokio::test]
async fn reuse_revokes_only_its_own_family() {
    let (_idp, c) = start(rotating(0)).await;
    let a = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let other = Client::for_base(&c.base);
    let b = other.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let ra = a.refresh_token.unwrap();
    refresh(&c, Server::DEFAULT, &ra).await;
    let (s, _) = refresh(&c, Server::DEFAULT, &ra).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) = refresh(&other, Server::DEFAULT, b.refresh_token.as_deref().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(c.is_active(Server::DEFAULT, &b.access_token).await);
}

/// C08: STATIC tokens come back unchanged every time, and a replay is fine.
#[tokio::test]
async fn c08_static_tokens_never_rotate() {
    let (idp, c) = start(static_tokens()).await;
    let r0 = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    for _ in 0..5 {
        idp.clock().advance_ms(3_600_000);
        let (s, b) = refresh(&c, Server::DEFAULT, &r0).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(rt_of(&b), r0);
    }
    assert!(c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await.is_empty());
    idp.check_invariants().unwrap();
}

/// C03: refresh-token lifetime 6 minutes, access token 5 minutes; 7 minutes later the refresh fails.
/// (Okta's policy rules need an idle window of at least 10 minutes, so the 6-minute lifetime comes from the
/// mock-only per-app lifetime option.)
#[tokio::test]
async fn c03_expired_refresh_token() {
    let mut cfg = rotating(15);
    cfg.apps[0].mock.refresh_token_lifetime_seconds = Some(360);
    cfg.apps[0].mock.access_token_lifetime_seconds = Some(300);
    let (idp, c) = start(cfg).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    assert_eq!(t.expires_in, 300);
    idp.clock().advance_ms(7 * 60_000);
    let (s, b) = refresh(&c, Server::DEFAULT, t.refresh_token.as_deref().unwrap()).await;
    assert_invalid(s, &b);
    assert!(c.logs("eventType eq \"app.oauth2.as.token.detect_reuse\"").await.is_empty(), "expiry is not reuse");
}

/// A rotated token inherits the family's absolute expiry (okta-behaviour.md §2.2): exact edge and +1 ms.
#[rstest]
#[case::at_expiry(0, true)]
#[case::one_ms_after(1, false)]
#[tokio::test]
async fn rotated_tokens_inherit_the_absolute_expiry(#[case] extra_ms: i64, #[case] ok: bool) {
    let mut cfg = rotating(15);
    cfg.apps[0].mock.refresh_token_lifetime_seconds = Some(3600);
    let (idp, c) = start(cfg).await;
    let r0 = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    idp.clock().advance_ms(1_800_000);
    let (s, b1) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s, StatusCode::OK);
    idp.clock().advance_ms(1_800_000 + extra_ms);
    let (s, b) = refresh(&c, Server::DEFAULT, &rt_of(&b1)).await;
    if ok {
        assert_eq!(s, StatusCode::OK, "{b}");
    } else {
        assert_invalid(s, &b);
    }
}

/// The custom server's idle window (7 days by default) restarts at every use: exact edge and +1 ms.
#[rstest]
#[case::at_window(0, true)]
#[case::one_ms_after(1, false)]
#[tokio::test]
async fn idle_window_restarts_on_each_use(#[case] extra_ms: i64, #[case] ok: bool) {
    let (idp, c) = start(rotating(15)).await;
    let week = 7 * 86_400_000;
    let mut rt = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    // Three uses six days apart keep it alive for 18 days in all.
    for _ in 0..3 {
        idp.clock().advance_ms(6 * 86_400_000);
        let (s, b) = refresh(&c, Server::DEFAULT, &rt).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        rt = rt_of(&b);
    }
    idp.clock().advance_ms(week + extra_ms);
    let (s, b) = refresh(&c, Server::DEFAULT, &rt).await;
    if ok {
        assert_eq!(s, StatusCode::OK, "{b}");
    } else {
        assert_invalid(s, &b);
    }
}

/// The org server's refresh tokens live 90 days, with no idle window (M4): used on day 89 after 88 idle
/// days, dead one millisecond after day 90, in microseconds of virtual time.
#[tokio::test]
async fn org_server_refresh_tokens_live_90_days() {
    let (idp, c) = start(rotating(15)).await;
    let day = 86_400_000;
    let t = c.login(Server::Org, ALICE, PASSWORD, SCOPES).await;
    let (_, intro) = c.introspect(Server::Org, Auth::BSR, t.refresh_token.as_deref().unwrap(), Some("refresh_token")).await;
    assert_eq!(intro["exp"], json!(T0 + 90 * 86_400));
    idp.clock().advance_ms(89 * day);
    let (s, b) = refresh(&c, Server::Org, t.refresh_token.as_deref().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    idp.clock().advance_ms(day);
    let (s, b2) = refresh(&c, Server::Org, &rt_of(&b)).await;
    assert_eq!(s, StatusCode::OK, "{b2}");
    idp.clock().advance_ms(1);
    let (s, b3) = refresh(&c, Server::Org, &rt_of(&b2)).await;
    assert_invalid(s, &b3);
}

#[tokio::test]
async fn refresh_scope_must_be_a_subset_of_the_original_grant() {
    let (idp, c) = start(rotating(15)).await;
    let rt = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &rt, Some("openid phone address")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"error": "access_denied", "error_description": "Some of the scopes requested for the refresh request were not granted in the original authorize request. Denied scopes: phone, address."})
    );
    // Nothing rotated: the same token still works.
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &rt, Some("offline_access email")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Without openid in the refresh scope there is no new ID token (C14).
    assert!(b.get("id_token").is_none(), "{b}");
    assert_eq!(b["scope"], "offline_access email");
    idp.check_invariants().unwrap();
}

/// A refresh whose scope omits offline_access gets no refresh token, and the one it presented stays current.
#[tokio::test]
async fn refresh_without_offline_access_returns_no_refresh_token_and_does_not_rotate() {
    let (_idp, c) = start(rotating(0)).await;
    let rt = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &rt, Some("openid email")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.get("refresh_token").is_none());
    assert!(b.get("id_token").is_some());
    let (s, b) = refresh(&c, Server::DEFAULT, &rt).await;
    assert_eq!(s, StatusCode::OK, "the token was not rotated away even at leeway 0: {b}");
}

#[tokio::test]
async fn no_refresh_token_without_offline_access_or_the_grant() {
    let (_idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile email").await;
    assert!(t.refresh_token.is_none());
    let mut cfg = mock_idp::TenantConfig::default_tenant();
    cfg.apps[0].settings.oauth_client.grant_types = vec!["authorization_code".into()];
    cfg.apps[0].settings.oauth_client.refresh_token = None;
    let (_idp2, c2) = start(cfg).await;
    let t = c2.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    assert!(t.refresh_token.is_none(), "the app lacks the refresh_token grant");
    let (s, b) = refresh(&c2, Server::DEFAULT, "abc").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"error": "unauthorized_client", "error_description": "The client is not authorized to use the provided grant type. Configured grant types: [authorization_code]."})
    );
}

#[tokio::test]
async fn a_refresh_token_belongs_to_its_client_and_server() {
    let yaml = mock_idp::config::DEFAULT_TENANT_YAML.replace(
        "assignments:",
        "  - label: Other\n    credentials: {oauthClient: {client_id: other-app, client_secret: other-secret}}\n    settings: {oauthClient: {grant_types: [authorization_code, refresh_token], redirect_uris: [http://127.0.0.1:4000/cb], refresh_token: {rotation_type: ROTATE, leeway: 15}}}\n\nassignments:\n  - {app: other-app, group: BSR Users}",
    );
    let (idp, c) = start(tenant(&yaml)).await;
    let rt = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await.refresh_token.unwrap();
    let (s, b) = c.refresh(Server::DEFAULT, "other-app", Some("other-secret"), &rt, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"error": "invalid_grant", "error_description": "The grant was issued to another client. Please make sure the 'client_id' matches the one used at the authorize request."})
    );
    let (s, b) = refresh(&c, Server::Org, &rt).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"error": "invalid_request", "error_description": "The grant was issued for another authorization server."}));
    // Neither mismatch revoked anything.
    let (s, b) = refresh(&c, Server::DEFAULT, &rt).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    idp.check_invariants().unwrap();
}

#[tokio::test]
async fn unknown_and_garbage_refresh_tokens_get_the_same_body() {
    let (_idp, c) = start(rotating(15)).await;
    for t in ["", "x", "i6mapTIAVSp2oJkgUnCACKKfZxt_H5MBLiqcybBBd04", "%00%ff"] {
        let (s, b) = refresh(&c, Server::DEFAULT, t).await;
        if t.is_empty() {
            assert_eq!(b, json!({"error": "invalid_request", "error_description": "The required parameter 'refresh_token' is missing."}));
        } else {
            assert_invalid(s, &b);
        }
    }
}

/// `/v1/revoke` of a refresh token revokes the whole family, a predecessor inside its window included,
/// and the access tokens minted from it; revoking an access token leaves the refresh token alone.
#[tokio::test]
async fn revoke_kills_the_family_including_the_predecessor_in_grace() {
    let (idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let r0 = t.refresh_token.clone().unwrap();
    let (s, _) = c.revoke(Server::DEFAULT, Auth::BSR, &t.access_token, Some("access_token")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!c.is_active(Server::DEFAULT, &t.access_token).await);
    let (s, b1) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_eq!(s, StatusCode::OK, "revoking an access token leaves its refresh token: {b1}");
    let (s, body) = c.revoke(Server::DEFAULT, Auth::BSR, &rt_of(&b1), Some("refresh_token")).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, ""));
    let (s, b) = refresh(&c, Server::DEFAULT, &r0).await;
    assert_invalid(s, &b);
    assert!(!c.is_active(Server::DEFAULT, b1["access_token"].as_str().unwrap()).await);
    let revokes = c.logs("eventType eq \"app.oauth2.as.token.revoke\"").await;
    assert_eq!(revokes.len(), 2);
    assert_eq!(revokes[1]["debugContext"]["debugData"]["tokenType"], "refresh_token");
    idp.check_invariants().unwrap();
}

/// `/v1/logout` ends the IdP session only; the refresh token keeps working (M6).
#[tokio::test]
async fn logout_does_not_touch_refresh_tokens() {
    let (_idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let r = c
        .get(&format!(
            "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            Server::DEFAULT.endpoint("logout"),
            t.id_token.as_deref().unwrap(),
            LOGOUT_URI
        ))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.location().as_deref(), Some("http://127.0.0.1:3000/logout?state=bye"));
    let (s, b) = refresh(&c, Server::DEFAULT, t.refresh_token.as_deref().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn introspection_of_refresh_tokens() {
    let (_idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let rt = t.refresh_token.unwrap();
    let (s, b) = c.introspect(Server::DEFAULT, Auth::BSR, &rt, Some("refresh_token")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["active"], true);
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["scope"], SCOPES);
    assert_eq!(b["client_id"], CLIENT_ID);
    assert_eq!(b["username"], ALICE);
    assert_eq!(b["sub"], ALICE);
    assert_eq!(b["uid"], ALICE_ID);
    // Unlimited lifetime on the default server: the expiry is the 7-day idle window.
    assert_eq!(b["exp"], json!(T0 + 7 * 86_400));
    let (_, b1) = refresh(&c, Server::DEFAULT, &rt).await;
    let (_, old) = c.introspect(Server::DEFAULT, Auth::BSR, &rt, None).await;
    assert_eq!(old["active"], true, "a predecessor inside its grace window is still usable");
    let (_, other) = c.introspect(Server::Org, Auth::BSR, &rt_of(&b1), None).await;
    assert_eq!(other, json!({"active": false}), "another server's token is unknown there");
}

/// M7: a per-app option echoes the original nonce in refreshed ID tokens.
#[tokio::test]
async fn nonce_on_refresh_can_be_echoed() {
    let mut cfg = rotating(15);
    cfg.apps[0].mock.refresh_nonce = RefreshNonce::Echo;
    let (_idp, c) = start(cfg).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let (_, b) = refresh(&c, Server::DEFAULT, t.refresh_token.as_deref().unwrap()).await;
    let id = decode_claims(b["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], json!(t.nonce));
}

/// Lifecycle (M6) at the core: revoking a user's tokens kills their families and access tokens.
#[tokio::test]
async fn revoking_a_users_tokens_kills_families_and_access_tokens() {
    let (idp, c) = start(rotating(15)).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    let bob = Client::for_base(&c.base).login(Server::DEFAULT, BOB, PASSWORD, SCOPES).await;
    let now = idp.clock().now_ms();
    let fams = idp.with_tenant(|t| t.revoke_user_tokens(ALICE_ID, None, mock_idp::core::refresh::RevokeReason::UserDeactivated, now));
    assert_eq!(fams.len(), 1);
    let (s, b) = refresh(&c, Server::DEFAULT, t.refresh_token.as_deref().unwrap()).await;
    assert_invalid(s, &b);
    assert_eq!(c.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert!(c.is_active(Server::DEFAULT, &bob.access_token).await, "bob is untouched");
    idp.check_invariants().unwrap();
}

/// Memory of many sign-ins: every token of one client, user, server and scope set shares one stored
/// context (two: access tokens and ID tokens differ in `aud`), every family of them one grant, a redeemed code keeps only what a replay
/// needs, and the contexts go with the last token that used them. A refresh still carries the claims.
#[tokio::test]
async fn tokens_of_one_user_and_client_share_their_context_and_redeemed_codes_are_trimmed() {
    let (idp, c) = start(mock_idp::TenantConfig::default_tenant()).await;
    let mut last = None;
    for _ in 0..5 {
        last = Some(c.login(Server::Custom("default"), "alice@example.com", "Passw0rd!", SCOPES).await);
    }
    let (tokens, contexts, families, grants, code) = idp.with_tenant(|t| {
        let code = t.codes.values().next().cloned().unwrap();
        (t.tokens.len(), t.token_contexts.len(), t.refresh.len(), t.refresh.grant_count(), code)
    });
    assert_eq!((tokens, contexts, families, grants), (10, 2, 5, 1));
    assert!(code.redeemed);
    assert_eq!((code.redirect_uri.as_str(), code.scopes.len(), code.nonce.as_deref(), code.code_challenge.as_deref()), ("", 0, None, None));
    assert_eq!(code.issued_tokens.len(), 2);
    assert_eq!(code.client_id, CLIENT_ID);
    let (status, body) = refresh(&c, Server::Custom("default"), last.unwrap().refresh_token.as_deref().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], SCOPES);
    let claims = decode_claims(body["access_token"].as_str().unwrap());
    assert_eq!((claims["cid"].as_str(), claims["sub"].as_str()), (Some(CLIENT_ID), Some("alice@example.com")));
    // Past every token's lifetime (ID tokens are kept a day longer for id_token_hint): the records and then
    // their contexts are purged.
    idp.clock().advance_ms(3_600_000 + 86_400_000 + 1_000);
    let now = idp.clock().now_ms();
    idp.with_tenant(|t| t.purge(now));
    assert_eq!(idp.with_tenant(|t| (t.tokens.len(), t.token_contexts.len())), (0, 0));
    // The families live 90 days; past that they and their shared grant go too.
    idp.clock().advance_ms(91 * 86_400_000);
    let now = idp.clock().now_ms();
    idp.with_tenant(|t| t.purge(now));
    assert_eq!(idp.with_tenant(|t| (t.refresh.len(), t.refresh.grant_count())), (0, 0));
}
