//! Integration tests of the token-tampering fault actions (issue 12): `tamper_id_token`,
//! `tamper_access_token` and `tamper_authorize`. Each defect is checked exactly: the tampered token is
//! compared claim by claim (and header by header) with a clean token minted by the same IdP a moment
//! before, so the test proves the token carries that one defect and nothing else, and the parts that were
//! not tampered with still verify against the JWKS. The request log names the defect in `fault`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mock_idp::core::faults::{INJECTED_CODE_VERIFIER, TAMPER_SHIFT_S, TAMPERED_AUDIENCE, TAMPERED_ISSUER, TAMPERED_NONCE, TAMPERED_STATE};
use mock_idp::signing::{bad_at_hash, foreign_key};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tests::*;

const SCOPES: &str = "openid profile email offline_access";

async fn add_rule(c: &Client, rule: Value) -> String {
    let r = c.post_json("/_mock/faults", &rule).await;
    assert_eq!(r.status, StatusCode::OK, "{rule}: {}", r.body);
    r.json()["id"].as_str().expect("a rule id").to_string()
}

async fn jwks(c: &Client, server: Server) -> JwkSet {
    let r = c.get(&server.endpoint("keys")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    serde_json::from_str(&r.body).expect("a JWKS")
}

async fn active_kid(c: &Client, server: Server) -> String {
    let r = c.get(&server.endpoint("keys")).await;
    r.json()["keys"][0]["kid"].as_str().expect("the first JWKS key is the active one").to_string()
}

/// Whether the RS256 signature of `jwt` verifies with `key` (claims are not checked here).
fn rs256_verifies(jwt: &str, key: &DecodingKey) -> bool {
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, key, &v).is_ok()
}

fn jwks_key(set: &JwkSet, kid: &str) -> DecodingKey {
    DecodingKey::from_jwk(set.find(kid).unwrap_or_else(|| panic!("kid {kid} in the JWKS"))).expect("an RSA JWK")
}

fn signature(jwt: &str) -> &str {
    jwt.rsplit_once('.').expect("a JWS has three parts").1
}

/// The rule's counters as `GET /_mock/faults/{id}` shows them.
async fn rule_counts(c: &Client, id: &str) -> (Value, Value) {
    let r = c.get(&format!("/_mock/faults/{id}")).await.json();
    (r["remaining"].clone(), r["matched"].clone())
}

/// `(endpoint, grant_type, fault)` of every logged request to `endpoint`.
async fn log_faults(c: &Client, endpoint: &str) -> Vec<(String, Value, Value)> {
    let v = c.get(&format!("/_mock/requests?endpoint={endpoint}")).await.json();
    v.as_array()
        .expect("the request log is an array")
        .iter()
        .map(|e| (e["path"].as_str().unwrap_or("").to_string(), e["grant_type"].clone(), e["fault"].clone()))
        .collect()
}

fn obj(v: &Value) -> serde_json::Map<String, Value> {
    v.as_object().expect("a JSON object").clone()
}

// ---------------------------------------------------------------------------------------------------
// tamper_id_token

#[rstest]
#[case::wrong_iss("wrong_iss")]
#[case::wrong_aud("wrong_aud")]
#[case::extra_aud_without_azp("extra_aud_without_azp")]
#[case::expired("expired")]
#[case::iat_in_future("iat_in_future")]
#[case::wrong_nonce("wrong_nonce")]
#[case::missing_nonce("missing_nonce")]
#[case::alg_none("alg_none")]
#[case::hs256_client_secret("hs256_client_secret")]
#[case::bad_signature("bad_signature")]
#[case::unknown_kid("unknown_kid")]
#[case::same_kid_other_key("same_kid_other_key")]
#[case::bad_at_hash("bad_at_hash")]
#[case::missing_sub("missing_sub")]
#[case::email_unverified("email_unverified")]
#[tokio::test]
async fn id_token_carries_exactly_one_defect(#[case] defect: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    let kid = active_kid(&c, server).await;
    let keys = jwks(&c, server).await;
    let clean = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let clean_id = clean.id_token.clone().expect("an ID token");
    let clean_claims = decode_claims(&clean_id);
    assert_eq!(decode_header(&clean_id), json!({"alg": "RS256", "kid": kid}));

    let rule = add_rule(&c, json!({"endpoint": "token", "times": 1, "action": {"tamper_id_token": defect}})).await;
    let t = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let id = t.id_token.clone().expect("the tampered answer still has an ID token");

    // The claims: the clean token's, with this login's own jti, nonce and at_hash, and then the defect.
    let mut want = obj(&clean_claims);
    let got = obj(&decode_claims(&id));
    want.insert("jti".into(), got["jti"].clone());
    want.insert("nonce".into(), json!(t.nonce));
    want.insert("at_hash".into(), json!(at_hash(&t.access_token)));
    assert_eq!(want["iat"], json!(T0), "the clock is frozen at T0");
    let mut want_header = json!({"alg": "RS256", "kid": kid});
    match defect {
        "wrong_iss" => {
            want.insert("iss".into(), json!(TAMPERED_ISSUER));
        }
        "wrong_aud" => {
            want.insert("aud".into(), json!(TAMPERED_AUDIENCE));
        }
        "extra_aud_without_azp" => {
            want.insert("aud".into(), json!([CLIENT_ID, TAMPERED_AUDIENCE]));
        }
        "expired" => {
            want.insert("exp".into(), json!(T0 - TAMPER_SHIFT_S));
        }
        "iat_in_future" => {
            want.insert("iat".into(), json!(T0 + TAMPER_SHIFT_S));
        }
        "wrong_nonce" => {
            want.insert("nonce".into(), json!(TAMPERED_NONCE));
        }
        "missing_nonce" => {
            want.remove("nonce");
        }
        "bad_at_hash" => {
            want.insert("at_hash".into(), json!(bad_at_hash(&t.access_token)));
        }
        "missing_sub" => {
            want.remove("sub");
        }
        "email_unverified" => {
            want.insert("email_verified".into(), json!(false));
        }
        "alg_none" => want_header = json!({"alg": "none", "kid": kid}),
        "hs256_client_secret" => want_header = json!({"alg": "HS256", "kid": kid}),
        "unknown_kid" => want_header = json!({"alg": "RS256", "kid": foreign_key().kid}),
        "bad_signature" | "same_kid_other_key" => {}
        other => panic!("no expectation for {other}"),
    }
    assert_eq!(got, want, "{defect}: the claims differ from a clean token in exactly the defect");
    assert!(!got.contains_key("azp"), "{defect}: Okta's ID tokens of this app carry no azp");
    assert_eq!(decode_header(&id), want_header, "{defect}: header");

    // The signature: as the defect says, and otherwise a good RS256 signature of the active key.
    let active = jwks_key(&keys, &kid);
    match defect {
        "alg_none" => {
            assert_eq!(signature(&id), "", "alg none has an empty signature");
            assert!(!rs256_verifies(&id, &active));
        }
        "hs256_client_secret" => {
            let mut v = Validation::new(Algorithm::HS256);
            v.validate_exp = false;
            v.validate_aud = false;
            v.required_spec_claims.clear();
            assert!(jsonwebtoken::decode::<Value>(&id, &DecodingKey::from_secret(CLIENT_SECRET.as_bytes()).unwrap(), &v).is_ok());
            assert!(jsonwebtoken::decode::<Value>(&id, &DecodingKey::from_secret(b"another-secret").unwrap(), &v).is_err());
        }
        "bad_signature" => {
            assert!(!rs256_verifies(&id, &active), "the flipped signature must not verify");
            // Flipping the same byte back gives the IdP's real signature, which verifies: the flip is the only change.
            let (input, sig) = id.rsplit_once('.').unwrap();
            let mut bytes = base64_url_decode(sig);
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            assert!(rs256_verifies(&format!("{input}.{}", base64_url_encode(&bytes)), &active));
        }
        "unknown_kid" => {
            assert!(keys.find(&foreign_key().kid).is_none(), "the foreign kid is not published");
            assert!(rs256_verifies(&id, &foreign_key().decoding));
        }
        "same_kid_other_key" => {
            assert!(!rs256_verifies(&id, &active), "the published key of that kid must not verify it");
            assert!(rs256_verifies(&id, &foreign_key().decoding));
        }
        _ => assert!(rs256_verifies(&id, &active), "{defect}: the signature is the active key's"),
    }

    // The rest of the answer is untouched: the access token verifies, the refresh token works.
    let at = verify_jwt(idp.base_url(), server, &t.access_token, "api://default").await.expect("the access token verifies");
    assert_eq!(at["sub"], ALICE);
    let (s, b) = c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    verify_id_token(idp.base_url(), server, b["id_token"].as_str().unwrap(), CLIENT_ID).await.expect("the next ID token is clean");

    // The IdP does not know the tampered ID token (Okta never issued it); it knows the clean one.
    let (_, intro) = c.introspect(server, Auth::BSR, &id, Some("id_token")).await;
    assert_eq!(intro["active"], false, "{defect}: {intro}");
    let (_, intro) = c.introspect(server, Auth::BSR, &clean_id, Some("id_token")).await;
    assert_eq!(intro["active"], true, "{intro}");

    // The rule was used once and the request log names the defect on the code exchange only.
    assert_eq!(rule_counts(&c, &rule).await, (json!(0), json!(1)));
    let label = format!("tamper_id_token:{defect}");
    let path = server.endpoint("token");
    assert_eq!(
        log_faults(&c, "token").await,
        vec![
            (path.clone(), json!("authorization_code"), Value::Null),
            (path.clone(), json!("authorization_code"), json!(label)),
            (path, json!("refresh_token"), Value::Null),
        ]
    );
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn base64_url_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn id_token_tampering_at_the_org_server_uses_its_keys_and_issuer() {
    let idp = idp().await;
    let c = Client::new(&idp);
    add_rule(&c, json!({"endpoint": "token", "client_id": CLIENT_ID, "times": 1, "action": {"tamper_id_token": "wrong_iss"}})).await;
    let t = c.login(Server::Org, ALICE, PASSWORD, SCOPES).await;
    let id = t.id_token.unwrap();
    assert_eq!(decode_claims(&id)["iss"], TAMPERED_ISSUER);
    let kid = active_kid(&c, Server::Org).await;
    assert_eq!(decode_header(&id), json!({"alg": "RS256", "kid": kid}));
    assert!(rs256_verifies(&id, &jwks_key(&jwks(&c, Server::Org).await, &kid)));
    assert_eq!(log_faults(&c, "token").await[0].2, json!("tamper_id_token:wrong_iss"));
}

#[tokio::test]
async fn an_id_token_rule_waits_for_an_answer_with_an_id_token_and_honours_grant_type() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    let rule =
        add_rule(&c, json!({"endpoint": "token", "grant_type": "refresh_token", "times": 1, "action": {"tamper_id_token": "wrong_aud"}}))
            .await;
    // The code exchange is not a refresh: untouched.
    let t = c.login(server, ALICE, PASSWORD, SCOPES).await;
    assert_eq!(decode_claims(t.id_token.as_deref().unwrap())["aud"], CLIENT_ID);
    // A refresh without openid has no ID token: the rule stays unused.
    let (s, b) = c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), Some("offline_access email")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b.get("id_token"), None);
    assert_eq!(rule_counts(&c, &rule).await, (json!(1), json!(0)));
    // The next refresh with an ID token carries the defect.
    let (s, b) = c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), b["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(decode_claims(b["id_token"].as_str().unwrap())["aud"], TAMPERED_AUDIENCE);
    assert_eq!(rule_counts(&c, &rule).await, (json!(0), json!(1)));
    let faults: Vec<Value> = log_faults(&c, "token").await.into_iter().map(|x| x.2).collect();
    assert_eq!(faults, vec![Value::Null, Value::Null, json!("tamper_id_token:wrong_aud")]);
}

#[rstest]
#[case::wrong_nonce("wrong_nonce")]
#[case::missing_nonce("missing_nonce")]
#[tokio::test]
async fn nonce_defects_wait_for_an_id_token_that_carries_the_clients_nonce(#[case] defect: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    let t = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let rule = add_rule(&c, json!({"endpoint": "token", "times": 1, "action": {"tamper_id_token": defect}})).await;
    // Okta's refreshed ID tokens carry no nonce, so there is none to change: the rule stays unused.
    let (s, b) = c.refresh(server, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(decode_claims(b["id_token"].as_str().unwrap()).get("nonce"), None);
    // Nor is there in a login whose authorization request had no nonce.
    let mut req = Authorize::new(CLIENT_ID);
    req.nonce = String::new();
    let code = c.code(server, ALICE, PASSWORD, &req).await;
    let (s, b) = c.token_code(server, Auth::BSR, &code, REDIRECT_URI, req.pkce.as_ref().map(|p| p.verifier.as_str())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(decode_claims(b["id_token"].as_str().unwrap()).get("nonce"), None);
    assert_eq!(rule_counts(&c, &rule).await, (json!(1), json!(0)));
    // The next login with a nonce uses it.
    let t = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let nonce = decode_claims(t.id_token.as_deref().unwrap()).get("nonce").cloned();
    assert_eq!(nonce, if defect == "wrong_nonce" { Some(json!(TAMPERED_NONCE)) } else { None });
    assert_eq!(rule_counts(&c, &rule).await, (json!(0), json!(1)));
}

#[tokio::test]
async fn a_tampering_rule_combines_with_a_delay_rule() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let tamper = add_rule(&c, json!({"endpoint": "token", "times": 1, "action": {"tamper_id_token": "missing_sub"}})).await;
    let delay = add_rule(&c, json!({"endpoint": "token", "times": 1, "action": {"delay_ms": 1}})).await;
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, SCOPES).await;
    assert_eq!(decode_claims(t.id_token.as_deref().unwrap()).get("sub"), None);
    assert_eq!(rule_counts(&c, &tamper).await, (json!(0), json!(1)));
    assert_eq!(rule_counts(&c, &delay).await, (json!(0), json!(1)));
    // The middleware's action is the one the log names; the tampering happened too (checked above).
    assert_eq!(log_faults(&c, "token").await[0].2, json!("delay"));
}

// ---------------------------------------------------------------------------------------------------
// tamper_access_token

#[rstest]
#[case::wrong_iss("wrong_iss")]
#[case::wrong_aud("wrong_aud")]
#[case::expired("expired")]
#[case::iat_in_future("iat_in_future")]
#[case::alg_none("alg_none")]
#[case::hs256_client_secret("hs256_client_secret")]
#[case::bad_signature("bad_signature")]
#[case::unknown_kid("unknown_kid")]
#[case::same_kid_other_key("same_kid_other_key")]
#[case::missing_sub("missing_sub")]
#[tokio::test]
async fn access_token_carries_exactly_one_defect_and_the_id_token_stays_valid(#[case] defect: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    let kid = active_kid(&c, server).await;
    let keys = jwks(&c, server).await;
    let clean = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let clean_claims = decode_claims(&clean.access_token);

    add_rule(&c, json!({"endpoint": "token", "times": 1, "action": {"tamper_access_token": defect}})).await;
    let t = c.login(server, ALICE, PASSWORD, SCOPES).await;
    let got = obj(&decode_claims(&t.access_token));
    let mut want = obj(&clean_claims);
    want.insert("jti".into(), got["jti"].clone());
    let mut want_header = json!({"alg": "RS256", "kid": kid});
    match defect {
        "wrong_iss" => {
            want.insert("iss".into(), json!(TAMPERED_ISSUER));
        }
        "wrong_aud" => {
            want.insert("aud".into(), json!(TAMPERED_AUDIENCE));
        }
        "expired" => {
            want.insert("exp".into(), json!(T0 - TAMPER_SHIFT_S));
        }
        "iat_in_future" => {
            want.insert("iat".into(), json!(T0 + TAMPER_SHIFT_S));
        }
        "missing_sub" => {
            want.remove("sub");
        }
        "alg_none" => want_header = json!({"alg": "none", "kid": kid}),
        "hs256_client_secret" => want_header = json!({"alg": "HS256", "kid": kid}),
        "unknown_kid" => want_header = json!({"alg": "RS256", "kid": foreign_key().kid}),
        _ => {}
    }
    assert_eq!(got, want, "{defect}: access-token claims");
    assert_eq!(decode_header(&t.access_token), want_header, "{defect}: header");
    let active = jwks_key(&keys, &kid);
    let verifies_with_jwks = rs256_verifies(&t.access_token, &active);
    let signature_defect = matches!(defect, "alg_none" | "hs256_client_secret" | "bad_signature" | "unknown_kid" | "same_kid_other_key");
    assert_eq!(verifies_with_jwks, !signature_defect, "{defect}: JWKS signature check");
    if matches!(defect, "unknown_kid" | "same_kid_other_key") {
        assert!(rs256_verifies(&t.access_token, &foreign_key().decoding));
    }

    // The ID token is fully valid and its at_hash binds the access token actually sent.
    let id = verify_id_token(idp.base_url(), server, t.id_token.as_deref().unwrap(), CLIENT_ID).await.expect("the ID token verifies");
    assert_eq!(id["at_hash"], json!(at_hash(&t.access_token)));
    assert_eq!(id["nonce"], json!(t.nonce));

    // The IdP never issued the tampered access token: userinfo refuses it, introspection calls it inactive.
    assert_eq!(c.userinfo(server, &t.access_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.introspect(server, Auth::BSR, &t.access_token, None).await.1, json!({"active": false}));
    assert_eq!(c.userinfo(server, &clean.access_token).await.status, StatusCode::OK);
    assert_eq!(log_faults(&c, "token").await[1].2, json!(format!("tamper_access_token:{defect}")));
}

// ---------------------------------------------------------------------------------------------------
// tamper_authorize

#[tokio::test]
async fn wrong_state_is_applied_to_the_code_redirect_after_the_sign_in_form_not_before() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    let rule = add_rule(&c, json!({"endpoint": "authorize", "times": 1, "action": {"tamper_authorize": "wrong_state"}})).await;
    let req = Authorize::new(CLIENT_ID);
    let first = c.authorize(server, &req).await;
    let login = first.location().expect("a redirect to the sign-in page");
    assert!(login.starts_with(&format!("{}/login/login.htm?fromURI=", idp.base_url())), "{login}");
    // The hop to the sign-in page carries no code: the rule is still unused.
    assert_eq!(rule_counts(&c, &rule).await, (json!(1), json!(0)));
    let posted = c.submit_login_form(&login, ALICE, PASSWORD).await;
    let back = c.follow(&posted).await;
    assert_eq!(back.status, StatusCode::FOUND);
    let loc = back.location().unwrap();
    assert!(loc.starts_with(REDIRECT_URI), "{loc}");
    let params = url_params(&loc);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["code", "state"]);
    assert_eq!(url_param(&loc, "state").as_deref(), Some(TAMPERED_STATE));
    assert_ne!(req.state, TAMPERED_STATE);
    // The code itself is genuine: it redeems.
    let code = url_param(&loc, "code").unwrap();
    let (s, b) = c.token_code(server, Auth::BSR, &code, REDIRECT_URI, req.pkce.as_ref().map(|p| p.verifier.as_str())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(rule_counts(&c, &rule).await, (json!(0), json!(1)));
    let authorize = server.endpoint("authorize");
    assert_eq!(
        log_faults(&c, "authorize").await,
        vec![
            (authorize.clone(), Value::Null, Value::Null),
            (format!("{authorize}/redirect"), Value::Null, json!("tamper_authorize:wrong_state")),
        ]
    );
    // The next sign-in is clean.
    let again = c.browser_authorize(server, &Authorize::new(CLIENT_ID), ALICE, PASSWORD).await;
    assert!(url_param(&again.location().unwrap(), "state").is_some_and(|s| s != TAMPERED_STATE));
}

#[rstest]
#[case::query("query")]
#[case::fragment("fragment")]
#[tokio::test]
async fn wrong_iss_param_adds_an_rfc9207_iss_that_is_not_the_issuer(#[case] mode: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    add_rule(&c, json!({"endpoint": "authorize", "client_id": CLIENT_ID, "times": 1, "action": {"tamper_authorize": "wrong_iss_param"}}))
        .await;
    let st = c.authn(ALICE, PASSWORD).await;
    let req = Authorize::new(CLIENT_ID).param("response_mode", mode).param("sessionToken", &st);
    let r = c.authorize(server, &req).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let loc = r.location().unwrap();
    let sep = if mode == "fragment" { '#' } else { '?' };
    assert!(loc.starts_with(&format!("{REDIRECT_URI}{sep}")), "{loc}");
    let params = url_params(&loc);
    let code = params.iter().find(|(k, _)| k == "code").map(|(_, v)| v.clone()).expect("a code");
    assert_eq!(
        params,
        vec![("code".to_string(), code), ("state".to_string(), req.state.clone()), ("iss".to_string(), TAMPERED_ISSUER.to_string())]
    );
    assert_ne!(TAMPERED_ISSUER, server.issuer(&idp));
    assert_eq!(log_faults(&c, "authorize").await[0].2, json!("tamper_authorize:wrong_iss_param"));
}

/// An injected code (RFC 9700 §4.5): bound to another request's PKCE challenge and nonce, each only if the
/// client sent one. PKCE makes the client's own exchange fail; the nonce makes its ID token fail the
/// client's check; a client with neither redeems it as its own.
#[rstest]
#[case::pkce_and_nonce(true, true)]
#[case::pkce_only(true, false)]
#[case::nonce_only(false, true)]
#[case::neither(false, false)]
#[tokio::test]
async fn injected_code_belongs_to_another_request(#[case] pkce: bool, #[case] nonce: bool) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let server = Server::DEFAULT;
    add_rule(&c, json!({"endpoint": "authorize", "times": 1, "action": {"tamper_authorize": "injected_code"}})).await;
    let st = c.authn(ALICE, PASSWORD).await;
    let mut req = Authorize::new(CLIENT_ID).scope(SCOPES).param("sessionToken", &st);
    if !pkce {
        req = req.no_pkce();
    }
    if !nonce {
        req.nonce = String::new();
    }
    let r = c.authorize(server, &req).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    let loc = r.location().unwrap();
    // The response looks like any other: code and the client's own state.
    let names: Vec<String> = url_params(&loc).into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["code", "state"]);
    assert_eq!(url_param(&loc, "state").as_deref(), Some(req.state.as_str()));
    assert_eq!(log_faults(&c, "authorize").await[0].2, json!("tamper_authorize:injected_code"));
    let code = url_param(&loc, "code").unwrap();
    let own_verifier = req.pkce.as_ref().map(|p| p.verifier.as_str());
    let (s, b) = c.token_code(server, Auth::BSR, &code, REDIRECT_URI, own_verifier).await;
    if pkce {
        // The client's verifier is not the one the code is bound to.
        assert_eq!((s, b), (StatusCode::BAD_REQUEST, json!({"error": "invalid_grant", "error_description": "PKCE verification failed."})));
        // The attacker's verifier redeems it: the code is genuine, only bound elsewhere.
        let (s, b) = c.token_code(server, Auth::BSR, &code, REDIRECT_URI, Some(INJECTED_CODE_VERIFIER)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(decode_claims(b["id_token"].as_str().unwrap()).get("nonce"), nonce.then(|| json!(TAMPERED_NONCE)).as_ref());
    } else {
        assert_eq!(s, StatusCode::OK, "{b}");
        let claims = decode_claims(b["id_token"].as_str().unwrap());
        // With a nonce the client sees another one; without, nothing tells the code apart.
        assert_eq!(claims.get("nonce"), nonce.then(|| json!(TAMPERED_NONCE)).as_ref());
        assert_eq!(claims["sub"], json!(ALICE_ID));
    }
}

#[tokio::test]
async fn wrong_state_in_a_form_post_response() {
    let idp = idp().await;
    let c = Client::new(&idp);
    add_rule(&c, json!({"endpoint": "authorize", "times": 1, "action": {"tamper_authorize": "wrong_state"}})).await;
    let st = c.authn(ALICE, PASSWORD).await;
    let req = Authorize::new(CLIENT_ID).param("response_mode", "form_post").param("sessionToken", &st);
    let r = c.authorize(Server::DEFAULT, &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fields: Vec<(String, String)> = r
        .body
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|f| {
            let (name, rest) = f.split_once("\" value=\"").unwrap();
            (name.to_string(), rest.split_once('"').unwrap().0.to_string())
        })
        .collect();
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["code", "state"]);
    assert_eq!(fields[1].1, TAMPERED_STATE);
}

// ---------------------------------------------------------------------------------------------------
// validation

#[tokio::test]
async fn tampering_rules_are_validated_with_okta_shaped_errors() {
    let idp = idp().await;
    let c = Client::new(&idp);
    for (rule, cause) in [
        (
            json!({"endpoint": "token", "action": {"tamper_access_token": "bad_at_hash"}}),
            "action.tamper_access_token: bad_at_hash is a defect of ID tokens only; access tokens take wrong_iss, wrong_aud, expired, \
             iat_in_future, alg_none, hs256_client_secret, bad_signature, unknown_kid, same_kid_other_key, missing_sub",
        ),
        (
            json!({"endpoint": "keys", "action": {"tamper_id_token": "expired"}}),
            "action.tamper_id_token: tampers with tokens; the endpoint must be token",
        ),
        (
            json!({"endpoint": "token", "action": {"tamper_authorize": "wrong_state"}}),
            "action.tamper_authorize: tampers with the code redirect; the endpoint must be authorize",
        ),
        (
            json!({"endpoint": "authorize", "grant_type": "refresh_token", "action": {"tamper_authorize": "wrong_state"}}),
            "grant_type: authorize requests have no grant type; omit it",
        ),
    ] {
        let r = c.post_json("/_mock/faults", &rule).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{rule}: {}", r.body);
        let b = r.json();
        assert_eq!(b["errorCode"], "E0000001");
        assert_eq!(b["errorSummary"], "Api validation failed");
        assert_eq!(b["errorCauses"], json!([{"errorSummary": cause}]), "{rule}");
    }
    let r = c.post_json("/_mock/faults", &json!({"endpoint": "token", "action": {"tamper_id_token": "wrong_colour"}})).await;
    assert_eq!((r.status, r.json()["errorCode"].as_str()), (StatusCode::BAD_REQUEST, Some("E0000001")));
    assert_eq!(c.get("/_mock/faults").await.json(), json!([]));
    // A valid rule reads back as it was posted.
    let id = add_rule(&c, json!({"endpoint": "token", "times": 2, "action": {"tamper_id_token": "same_kid_other_key"}})).await;
    assert_eq!(
        c.get(&format!("/_mock/faults/{id}")).await.json(),
        json!({"id": id, "endpoint": "token", "times": 2, "action": {"tamper_id_token": "same_kid_other_key"}, "remaining": 2, "matched": 0})
    );
}
