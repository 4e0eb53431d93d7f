//! Hostile and malformed input at a running mock-idp and stub BSR: the request limits with their exact
//! statuses and bodies, slow clients, duplicate parameters at every query and form parser, and property-based
//! tests (proptest) of the parameter parser, JSON bodies, cookies and `Authorization` headers over real HTTP.
//! Nothing may panic or answer 5xx; every refusal is Okta-shaped.

mod reliability_support;

use std::time::Duration;

use mock_idp::core::params::Params;
use mock_idp::{Limits, MockIdp, Options};
use proptest::prelude::*;
use reliability_support::{head, raw};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tests::*;
use url::form_urlencoded;

const DUP: &str = "The request contained multiple parameters with the same name.";

async fn idp_with_limits(limits: Limits) -> MockIdp {
    MockIdp::start(Options { limits, ..Options::default() }).await.expect("mock-idp starts")
}

fn ssws() -> String {
    format!("SSWS {ADMIN_TOKEN}")
}

/// Okta's management-API error body, reduced to what the tests compare.
fn api_error(v: &Value) -> (String, String, Vec<String>) {
    let causes = v["errorCauses"].as_array().map(|a| a.iter().filter_map(|c| c["errorSummary"].as_str().map(str::to_string)).collect());
    (v["errorCode"].as_str().unwrap_or("").into(), v["errorSummary"].as_str().unwrap_or("").into(), causes.unwrap_or_default())
}

// ----- limits -----

#[tokio::test]
async fn a_body_over_64_kib_is_413_in_the_endpoints_shape() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let big = "a".repeat(64 * 1024 + 1);
    // The token endpoint answers OAuth JSON.
    let r = c.http.post(c.url("/oauth2/default/v1/token")).header("content-type", "application/x-www-form-urlencoded").body(big.clone());
    let r = Reply::from(r.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json(), json!({"error": "invalid_request", "error_description": "The request body is larger than 65536 bytes."}));
    // The management API answers Okta's error body.
    let r =
        c.http.post(c.url("/api/v1/users")).header("authorization", ssws()).header("content-type", "application/json").body(big.clone());
    let r = Reply::from(r.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        api_error(&r.json()),
        ("E0000001".into(), "Api validation failed: body".into(), vec!["body: The request body is larger than 65536 bytes.".into()])
    );
    // So do the mock's controls.
    let r = Reply::from(c.http.post(c.url("/_mock/clock")).body(big.clone()).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api_error(&r.json()).0, "E0000001");
    // The hosted sign-in page answers Okta's HTML error page.
    let r = c.http.post(c.url("/login/login.htm")).header("content-type", "application/x-www-form-urlencoded").body(big);
    let r = Reply::from(r.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_page(&r.body), Some(("invalid_request".into(), "The request body is larger than 65536 bytes.".into())));
    // Exactly 64 KiB is still read (and refused by the handler for what it says, not for its size).
    let r = c.http.post(c.url("/oauth2/default/v1/token")).header("content-type", "application/x-www-form-urlencoded");
    let r = Reply::from(r.body("a".repeat(64 * 1024)).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    let idp = idp().await;
    // No Content-Length: the limit applies while the body arrives.
    let chunk = "b".repeat(16 * 1024);
    let mut req = head("POST", "/api/v1/groups", &["Transfer-Encoding: chunked".into(), format!("Authorization: {}", ssws())]);
    for _ in 0..5 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let r = raw(idp.addr(), req.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(r.status, Some(413), "{r:?}");
    let v: Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(api_error(&v).1, "Api validation failed: body");
}

#[tokio::test]
async fn long_urls_are_414_and_large_header_sections_431() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let long = "q".repeat(16 * 1024);
    let r = Reply::from(c.http.get(c.url(&format!("/api/v1/users?q={long}"))).header("authorization", ssws()).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert_eq!(
        api_error(&r.json()),
        ("E0000001".into(), "Api validation failed: uri".into(), vec!["uri: The request URI is longer than 16384 bytes.".into()])
    );
    // At authorize, Okta's error page.
    let r = c.get(&format!("/oauth2/default/v1/authorize?state={long}")).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert_eq!(error_page(&r.body), Some(("invalid_request".into(), "The request URI is longer than 16384 bytes.".into())));
    // 16 KiB of target in all is still served.
    let fits = "q".repeat(16 * 1024 - "/api/v1/users?q=".len());
    let r = Reply::from(c.http.get(c.url(&format!("/api/v1/users?q={fits}"))).header("authorization", ssws()).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    // Forty 1 KiB headers are more than 32 KiB.
    let mut rb = c.http.get(c.url("/oauth2/default/v1/keys"));
    for i in 0..40 {
        rb = rb.header(format!("x-filler-{i}"), "h".repeat(1024));
    }
    let r = Reply::from(rb.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(api_error(&r.json()).2, vec!["headers: The request headers are larger than 32768 bytes in all.".to_string()]);
}

#[tokio::test]
async fn heads_beyond_what_hyper_accepts_are_refused_without_a_request() {
    let idp = idp().await;
    // A 300 KiB header section never becomes a request: hyper's own 431.
    let r = raw(idp.addr(), head("GET", "/", &[format!("X-Big: {}", "x".repeat(300 * 1024))]).as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(r.status, Some(431), "{}", r.head);
    // A 70 KiB target is over hyper's limit for a URI: its own 414.
    let r = raw(idp.addr(), head("GET", &format!("/?a={}", "x".repeat(70 * 1024)), &[]).as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(r.status, Some(414), "{}", r.head);
    // Bytes that are not HTTP at all: 400, and the server goes on.
    let r = raw(idp.addr(), b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", Duration::from_secs(10)).await;
    assert_eq!(r.status, Some(400), "{}", r.head);
    assert_eq!(Client::new(&idp).get("/_mock/health").await.body, "ok");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_disconnected() {
    let idp = idp_with_limits(Limits { header_read_timeout: Duration::from_millis(300), ..Limits::default() }).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(idp.addr()).await.unwrap();
    s.write_all(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let mut buf = Vec::new();
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(started.elapsed() >= Duration::from_millis(250), "not before the timeout: {:?}", started.elapsed());
    // hyper answers 408 to a head that timed out, or closes; either way no request reached a handler.
    let r = reliability_support::parse(&buf);
    assert!(matches!(r.status, None | Some(408)), "{r:?}");
    // An idle keep-alive connection is closed the same way; new connections are served.
    assert_eq!(Client::new(&idp).get("/_mock/health").await.body, "ok");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408() {
    let idp = idp_with_limits(Limits { body_read_timeout: Duration::from_millis(300), ..Limits::default() }).await;
    let req =
        head("POST", "/oauth2/default/v1/token", &["Content-Type: application/x-www-form-urlencoded".into(), "Content-Length: 100".into()]);
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(b"grant_type=");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(idp.addr()).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.expect("answered").unwrap();
    let r = reliability_support::parse(&buf);
    assert_eq!(r.status, Some(408), "{r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v, json!({"error": "invalid_request", "error_description": "The request body did not arrive within 300 ms."}));
}

#[tokio::test]
async fn a_path_that_is_not_utf8_is_400() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = Reply::from(c.http.get(c.url("/api/v1/users/%FF%FE")).header("authorization", ssws()).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api_error(&r.json()),
        ("E0000001".into(), "Api validation failed: uri".into(), vec!["uri: The request path is not valid percent-encoded UTF-8.".into()])
    );
}

#[tokio::test]
async fn the_stub_bsr_has_the_same_limits() {
    let idp = idp().await;
    let bsr =
        harness::bsr::StubBsr::start(harness::bsr::BsrConfig::for_issuer(idp.issuer("default"), CLIENT_ID, CLIENT_SECRET)).await.unwrap();
    let c = Client::for_base(bsr.base_url());
    let r = c.http.post(c.url("/admin/login")).header("content-type", "application/x-www-form-urlencoded").body("a".repeat(70_000));
    let r = Reply::from(r.send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("The request body is larger than 65536 bytes."), "{}", r.body);
    let r = c.get(&format!("/api/me?x={}", "y".repeat(17 * 1024))).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert_eq!(r.json(), json!({"error": "invalid_request", "error_description": "The request URI is longer than 16384 bytes."}));
    let mut rb = c.http.get(c.url("/"));
    for i in 0..40 {
        rb = rb.header(format!("x-filler-{i}"), "h".repeat(1024));
    }
    assert_eq!(rb.send().await.unwrap().status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

// ----- duplicate parameters at every parser -----

#[rstest]
#[case::hosted_sign_in_page("/login/login.htm?fromURI=/&fromURI=/x")]
#[case::authorize_resume("/oauth2/default/v1/authorize/redirect?okta_key=a&okta_key=b")]
#[tokio::test]
async fn duplicate_parameters_on_browser_pages_get_oktas_error_page(#[case] path: &str) {
    let idp = idp().await;
    let r = Client::new(&idp).get(path).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_page(&r.body), Some(("invalid_request".into(), DUP.into())));
}

#[rstest]
#[case::system_log("/api/v1/logs?limit=1&limit=2")]
#[case::users("/api/v1/users?q=a&q=b")]
#[case::groups("/api/v1/groups?q=a&q=b")]
#[case::apps("/api/v1/apps?q=a&q=b")]
#[case::request_log("/_mock/requests?endpoint=token&endpoint=keys")]
#[tokio::test]
async fn duplicate_parameters_on_api_routes_get_e0000001(#[case] path: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = Reply::from(c.http.get(c.url(path)).header("authorization", ssws()).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(api_error(&r.json()), ("E0000001".into(), "Api validation failed".into(), vec![DUP.into()]));
}

#[rstest]
#[case::token_body("/oauth2/default/v1/token", "grant_type=refresh_token&grant_type=refresh_token")]
#[case::introspect_body("/oauth2/default/v1/introspect", "token=a&token=b")]
#[case::revoke_body("/oauth2/default/v1/revoke", "token=a&token=b")]
#[tokio::test]
async fn duplicate_parameters_in_oauth_bodies_get_invalid_request(#[case] path: &str, #[case] body: &str) {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r = c.http.post(c.url(path)).header("authorization", basic(CLIENT_ID, CLIENT_SECRET));
    let r = Reply::from(r.header("content-type", "application/x-www-form-urlencoded").body(body.to_string()).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json(), json!({"error": "invalid_request", "error_description": DUP}));
}

#[tokio::test]
async fn a_secret_in_the_query_is_refused_even_when_repeated() {
    let idp = idp().await;
    let c = Client::new(&idp);
    let r =
        c.post_form("/oauth2/default/v1/token?client_secret=a&client_secret=b", Auth::BSR, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_request", "error_description": "Client credentials cannot be supplied via query parameters."})
    );
}

// ----- property-based: the parameter parser -----

fn pair() -> impl Strategy<Value = (String, String)> {
    ("[a-zA-Z_]{1,8}", any::<String>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_parameter_parser_never_panics(raw in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Params::parse(&raw);
        let _ = Params::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn distinct_names_round_trip_and_a_repeated_name_is_refused(pairs in proptest::collection::btree_map("[a-zA-Z_]{1,8}", any::<String>(), 0..8), extra in pair()) {
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
        let p = Params::parse(&encoded).expect("distinct names parse");
        for (k, v) in &pairs {
            prop_assert!(p.contains(k));
            prop_assert_eq!(p.get(k), (!v.is_empty()).then_some(v.as_str()));
        }
        if let Some((k, _)) = pairs.iter().next() {
            let twice = format!("{encoded}&{}", form_urlencoded::Serializer::new(String::new()).append_pair(k, &extra.1).finish());
            prop_assert_eq!(Params::parse(&twice).unwrap_err().description, DUP);
        }
    }
}

// ----- property-based: over HTTP -----

/// One multi-threaded runtime and one IdP for all cases of a property (a server per case would cost more
/// than the cases).
struct Live {
    rt: tokio::runtime::Runtime,
    idp: MockIdp,
    http: reqwest::Client,
}

impl Live {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let idp = rt.block_on(tests::idp());
        harness::crypto::install();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(20)).build().unwrap();
        Live { rt, idp, http }
    }

    fn send(&self, method: reqwest::Method, path: &str, headers: &[(&str, Vec<u8>)], body: Vec<u8>) -> (u16, String, String) {
        self.rt.block_on(async {
            let mut rb = self.http.request(method, format!("{}{path}", self.idp.base_url()));
            for (k, v) in headers {
                if let Ok(v) = reqwest::header::HeaderValue::from_bytes(v) {
                    rb = rb.header(*k, v);
                }
            }
            let r = rb.body(body).send().await.unwrap_or_else(|e| panic!("{path}: the connection failed (a panic in a handler?): {e}"));
            let status = r.status().as_u16();
            let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            (status, ct, r.text().await.unwrap_or_default())
        })
    }
}

/// Okta's error shapes: the management API's body, OAuth JSON, or the HTML error page.
fn okta_shaped(status: u16, ct: &str, body: &str) -> bool {
    if !(400..500).contains(&status) {
        return false;
    }
    if ct.starts_with("text/html") {
        return body.contains("id=\"error-code\"");
    }
    match serde_json::from_str::<Value>(body) {
        Ok(v) => v["errorCode"].as_str().is_some_and(|c| c.starts_with('E')) || v["error"].is_string(),
        Err(_) => false,
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        prop_oneof![Just("ACTIVE"), Just("openid"), Just("alice@example.com"), Just("2030-01-01T00:00:00Z"), Just("")]
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let keys = prop_oneof![
            "[a-zA-Z_]{1,10}",
            Just("profile".to_string()),
            Just("login".to_string()),
            Just("credentials".to_string()),
            Just("name".to_string()),
            Just("label".to_string()),
            Just("settings".to_string()),
            Just("endpoint".to_string()),
            Just("action".to_string()),
            Just("advance_seconds".to_string()),
            Just("set".to_string()),
            Just("username".to_string()),
            Just("password".to_string()),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The JSON endpoints of the management API and the mock's controls. Creating users and groups does
/// change the tenant, harmlessly; `/_mock/reset` is left out because a valid body would swap the tenant.
const JSON_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/users/00u1alice00000000001"),
    ("PUT", "/api/v1/users/00u1bob0000000000001"),
    ("POST", "/api/v1/groups"),
    ("PUT", "/api/v1/groups/00g1bsrusers00000001"),
    ("POST", "/api/v1/apps"),
    ("PUT", "/api/v1/apps/0oa1bsr0000000000001"),
    ("POST", "/api/v1/apps/0oa1bsr0000000000001/users"),
    ("PUT", "RULE"),
    ("POST", "/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate"),
    ("POST", "/api/v1/authn"),
    ("POST", "/_mock/clock"),
    ("POST", "/_mock/faults"),
    ("POST", "/_mock/keys/rotate"),
    ("PUT", "/_mock/rate-limits"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn json_bodies_never_get_a_5xx(route in 0..JSON_ROUTES.len(), v in json_value(), garbage in proptest::collection::vec(any::<u8>(), 0..64), raw_bytes in any::<bool>()) {
        thread_local!(static LIVE: Live = Live::new());
        let (method, path) = JSON_ROUTES[route];
        let rule_path = format!(
            "/api/v1/authorizationServers/default/policies/{}/rules/{}",
            mock_idp::core::directory::derived_id("00p", "policy:default:0"),
            mock_idp::core::directory::derived_id("0pr", "rule:default:0:0")
        );
        let path = if path == "RULE" { rule_path.as_str() } else { path };
        let body = if raw_bytes { garbage } else { serde_json::to_vec(&v).unwrap() };
        LIVE.with(|l| {
            let (status, ct, text) = l.send(method.parse().unwrap(), path, &[("authorization", ssws().into_bytes()), ("content-type", b"application/json".to_vec())], body);
            prop_assert!(status < 500, "{method} {path}: {status} {text}");
            if status >= 400 {
                prop_assert!(okta_shaped(status, &ct, &text), "{method} {path}: {status} {ct} {text}");
            }
            // A fault rule that took would change later answers: take it away again.
            if path == "/_mock/faults" && status == 200 {
                l.send(reqwest::Method::DELETE, "/_mock/faults", &[], vec![]);
            }
            if path == "/_mock/clock" {
                l.idp.clock().set_ms(T0 * 1000);
            }
            // Limits that took would refuse later requests: turn them off again.
            if path == "/_mock/rate-limits" && status == 200 {
                l.send(reqwest::Method::PUT, "/_mock/rate-limits", &[], vec![]);
            }
            Ok(())
        })?;
    }

    #[test]
    fn cookies_and_authorization_headers_never_get_a_5xx(
        cookie in proptest::collection::vec(any::<u8>(), 0..120),
        scheme in prop_oneof![Just("Basic "), Just("basic "), Just("Bearer "), Just("bearer "), Just("SSWS "), Just(""), Just("Digest ")],
        credential in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            proptest::collection::vec(any::<u8>(), 0..60).prop_map(|b| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b).into_bytes()),
            "[a-z:%]{0,20}".prop_map(|s| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s).into_bytes()),
        ],
        route in 0..6usize,
    ) {
        thread_local!(static LIVE: Live = Live::new());
        let mut auth = scheme.as_bytes().to_vec();
        auth.extend_from_slice(&credential);
        let authorize = "/oauth2/default/v1/authorize?response_type=code&client_id=bsr-local&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Foauth2%2Fcallback&scope=openid&state=s&nonce=n";
        let (method, path, body): (&str, &str, &[u8]) = [
            ("POST", "/oauth2/default/v1/token", b"grant_type=refresh_token&refresh_token=x".as_slice()),
            ("GET", "/oauth2/default/v1/userinfo", b"".as_slice()),
            ("GET", "/api/v1/users", b"".as_slice()),
            ("GET", authorize, b"".as_slice()),
            ("GET", "/", b"".as_slice()),
            ("POST", "/oauth2/default/v1/introspect", b"token=x".as_slice()),
        ][route];
        LIVE.with(|l| {
            let headers = [("cookie", cookie.clone()), ("authorization", auth.clone()), ("content-type", b"application/x-www-form-urlencoded".to_vec())];
            let (status, ct, text) = l.send(method.parse().unwrap(), path, &headers, body.to_vec());
            prop_assert!(status < 500, "{path}: {status} {text}");
            match route {
                // A random credential is never the management token.
                2 => prop_assert_eq!((status, api_error(&serde_json::from_str(&text).unwrap()).0), (401, "E0000011".to_string())),
                1 => prop_assert_eq!(status, 401),
                0 | 5 => prop_assert!(okta_shaped(status, &ct, &text), "{path}: {status} {text}"),
                _ => prop_assert!(status == 200 || status == 302 || okta_shaped(status, &ct, &text), "{path}: {status} {text}"),
            }
            Ok(())
        })?;
    }
}
