//! The Rust `openidconnect` crate (ramosbugs/openidconnect-rs), a standard OIDC relying-party library nobody
//! here wrote, against mock-idp unmodified (issue 8): discovery, the code flow with PKCE through the hosted
//! sign-in page, ID-token verification (signature through the JWKS, issuer, audience, nonce, `at_hash`),
//! userinfo, and refresh under rotation, on the org server and the `default` custom server, and once over
//! https. The IdP's clock is virtual (frozen at 2030-01-01T00:00:00Z); the crate's verifier is handed the same
//! clock with `set_time_fn`, as a relying party on a synchronised machine would see it.

mod interop_support;

use chrono::{DateTime, Utc};
use interop_support::Browser;
use mock_idp::{MockIdp, Options};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreGenderClaim, CoreIdTokenClaims, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthenticationMethodReference, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RequestTokenError, Scope, TokenResponse, reqwest,
};
use rstest::rstest;

const REDIRECT_URI: &str = "http://127.0.0.1:3000/oauth2/callback";
/// 2030-01-01T00:00:00Z, the test clock's start, in seconds.
const T0: i64 = 1_893_456_000;

fn http_client(ca_pem: Option<&str>) -> reqwest::Client {
    // No redirects: the crate's documentation asks for it (SSRF), and the IdP's endpoints never redirect.
    // reqwest's rustls (enabled in the workspace without a provider) needs one even for http.
    interop_support::install_rustls_provider();
    let mut b = reqwest::ClientBuilder::new().redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn url_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[rstest]
#[case::org_server("", false)]
#[case::default_server("/oauth2/default", false)]
#[case::default_server_over_https("/oauth2/default", true)]
#[tokio::test]
async fn openidconnect_crate_discovery_code_flow_pkce_verification_userinfo_refresh(#[case] prefix: &str, #[case] tls: bool) {
    let idp = MockIdp::start(Options { tls, ..Options::default() }).await.unwrap();
    let base = idp.base_url().to_string();
    let issuer = format!("{base}{prefix}");
    let http = http_client(idp.tls_ca_pem());
    let clock = idp.clock().clone();
    let now = move || -> DateTime<Utc> { DateTime::from_timestamp_millis(clock.now_ms()).unwrap() };

    // Discovery, as the crate validates it (issuer equality, required fields, the JWKS fetched and parsed).
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
        .await
        .unwrap_or_else(|e| panic!("openidconnect: discovery of {issuer} failed: {e:?}"));
    let server_path = if prefix.is_empty() { "/oauth2" } else { prefix };
    assert_eq!(meta.issuer().as_str(), issuer);
    assert_eq!(meta.authorization_endpoint().as_str(), format!("{base}{server_path}/v1/authorize"));
    assert_eq!(meta.token_endpoint().map(|u| u.to_string()), Some(format!("{base}{server_path}/v1/token")));
    assert_eq!(meta.userinfo_endpoint().map(|u| u.to_string()), Some(format!("{base}{server_path}/v1/userinfo")));
    assert_eq!(meta.jwks_uri().as_str(), format!("{base}{server_path}/v1/keys"));
    assert_eq!(meta.jwks().keys().len(), 2, "ACTIVE and NEXT keys");

    let client =
        CoreClient::from_provider_metadata(meta, ClientId::new("bsr-local".into()), Some(ClientSecret::new("bsr-local-secret".into())))
            .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());

    // The code flow with PKCE, through the hosted sign-in page.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = Browser::new(idp.tls_ca_pem()).browse(auth_url.as_str(), Some("alice@example.com"), Some(REDIRECT_URI)).await;
    assert_eq!(url_param(&page.url, "state").as_deref(), Some(csrf.secret().as_str()), "{page:?}");
    let code = url_param(&page.url, "code").unwrap_or_else(|| panic!("openidconnect: no code in the redirect: {page:?}"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("openidconnect: code exchange failed: {e:?}"));
    assert_eq!(tokens.expires_in().map(|d| d.as_secs()), Some(3600));
    let scopes: Vec<String> = tokens.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, ["openid", "profile", "email", "offline_access"]);

    // The ID token: signature (RS256 through the JWKS), issuer, audience, expiry, nonce, then at_hash.
    let id_verifier = client.id_token_verifier().set_time_fn(now.clone());
    let id_token = tokens.id_token().expect("an ID token");
    let claims: &CoreIdTokenClaims =
        id_token.claims(&id_verifier, &nonce).unwrap_or_else(|e| panic!("openidconnect: ID token rejected: {e:?}"));
    assert_eq!(claims.issuer().as_str(), issuer);
    assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["bsr-local"]);
    assert_eq!(claims.subject().as_str(), "00u1alice00000000001");
    assert_eq!(claims.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice@example.com"));
    assert_eq!(claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Alice Example"));
    assert_eq!(claims.auth_time().map(|t| t.timestamp()), Some(T0));
    assert_eq!(claims.issue_time().timestamp(), T0);
    assert_eq!(claims.expiration().timestamp(), T0 + 3600);
    assert_eq!(claims.auth_method_refs(), Some(&vec![AuthenticationMethodReference::new("pwd".into())]));
    let expected_hash = claims.access_token_hash().expect("Okta puts at_hash in ID tokens from the code flow");
    let actual_hash =
        AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&id_verifier).unwrap())
            .unwrap();
    assert_eq!(&actual_hash, expected_hash);

    // Userinfo with the access token.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("openidconnect: userinfo failed: {e:?}"));
    assert_eq!(info.subject().as_str(), "00u1alice00000000001");
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Alice"));
    assert_eq!(info.family_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Example"));

    // Refresh under rotation: a new refresh token, a new ID token without a nonce that keeps auth_time.
    idp.clock().advance_ms(60_000);
    let rt1 = tokens.refresh_token().expect("offline_access gives a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("openidconnect: refresh failed: {e:?}"));
    let rt2 = refreshed.refresh_token().expect("a rotated refresh token").clone();
    assert_ne!(rt2.secret(), rt1.secret(), "ROTATE: each use returns a new refresh token");
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let id_verifier = client.id_token_verifier().set_time_fn(now.clone());
    let refreshed_claims: &openidconnect::IdTokenClaims<openidconnect::EmptyAdditionalClaims, CoreGenderClaim> = refreshed
        .id_token()
        .expect("refresh with openid returns an ID token")
        .claims(&id_verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(n) => Err(format!("a refreshed ID token carries nonce {}", n.secret())),
        })
        .unwrap_or_else(|e| panic!("openidconnect: refreshed ID token rejected: {e:?}"));
    assert_eq!(refreshed_claims.auth_time().map(|t| t.timestamp()), Some(T0));
    assert_eq!(refreshed_claims.issue_time().timestamp(), T0 + 60);
    let info: CoreUserInfoClaims = client.user_info(refreshed.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));

    // Past the 15-second grace period the rotated-out token is a reuse, and the crate sees Okta's error.
    idp.clock().advance_ms(16_000);
    match client.exchange_refresh_token(&rt1).unwrap().request_async(&http).await {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), CoreErrorResponseType::InvalidGrant);
            assert_eq!(e.error_description().map(String::as_str), Some("The refresh token is invalid or expired."));
        }
        other => panic!("openidconnect: a replay after the grace period should be invalid_grant, got {other:?}"),
    }
    idp.check_invariants().unwrap();
}
