//! HTTP fuzzing (feature `heavy`): 20 000 random and mutated requests at a running in-process mock-idp and
//! 20 000 at a stub BSR — random and odd methods, the real routes with mutated paths, random and mutated
//! query strings, bodies, content types and credentials, huge values, invalid UTF-8, broken
//! percent-encoding — plus raw bytes that are barely HTTP. Then: no answer was a 5xx, no connection was
//! dropped (a panic in a handler drops its connection), the panic hook counted nothing, and both servers
//! still serve a normal sign-in.
//!
//! The run is seeded (`FUZZ_SEED`, printed) so a failure replays. Requests that would take the servers'
//! state away from a test on purpose are not sent: valid fault rules (a 500 rule or a hold would be the
//! fuzzer's own doing), a replacement tenant for `/_mock/reset`, and administrator changes to the stub's
//! SSO settings. The final sign-ins use a user and an app the fuzzer does not know the ids of.

#![cfg(feature = "heavy")]

mod reliability_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mock_idp::MockIdp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reliability_support::{browser, count_panics, panics, walk};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::*;

const PER_SERVER: usize = 20_000;
const RAW: usize = 500;
const CONCURRENCY: usize = 16;

const CANARY: &str = "canary@example.com";
const CANARY_CLIENT: &str = "canary-app";
const CANARY_SECRET: &str = "canary-app-secret-0001";

/// The default tenant plus a user and an app (directly assigned) that the fuzzer never names.
fn tenant_with_canary() -> mock_idp::TenantConfig {
    let yaml = mock_idp::config::DEFAULT_TENANT_YAML.replacen(
        "users:\n",
        "users:\n  - id: 00u1canary0000000001\n    status: ACTIVE\n    profile: {login: canary@example.com, email: canary@example.com}\n    credentials: {password: {value: \"Passw0rd!\"}}\n",
        1,
    );
    let app = format!(
        "  - id: 0oa1canary0000000001\n    label: Canary\n    status: ACTIVE\n    credentials:\n      oauthClient: {{client_id: {CANARY_CLIENT}, client_secret: {CANARY_SECRET}, token_endpoint_auth_method: client_secret_basic}}\n    settings:\n      oauthClient:\n        application_type: web\n        grant_types: [authorization_code, refresh_token]\n        response_types: [code]\n        redirect_uris: [\"https://canary.example.com/cb\"]\n"
    );
    let yaml = yaml.replacen("apps:\n", &format!("apps:\n{app}"), 1).replacen(
        "assignments:\n",
        "assignments:\n  - {app: canary-app, user: canary@example.com}\n",
        1,
    );
    tenant(&yaml)
}

/// What the fuzzer may put where a path has a parameter.
const IDS: &[&str] = &[
    "00u1alice00000000001",
    "00u1bob0000000000001",
    "00u1carol00000000001",
    "alice@example.com",
    "00g1bsrusers00000001",
    "0oa1bsr0000000000001",
    "0oa1svc0000000000001",
    "bsr-local",
    "default",
    "org",
    "v1",
    "flt_1",
    "",
    "%FF",
    "..",
    "x",
    "00uXXXXXXXXXXXXXXXXX",
];

const IDP_ROUTES: &[&str] = &[
    "/.well-known/openid-configuration",
    "/oauth2/{server}/.well-known/openid-configuration",
    "/oauth2/{server}/.well-known/oauth-authorization-server",
    "/",
    "/login/login.htm",
    "/api/v1/authn",
    "/api/v1/logs",
    "/_mock/clock",
    "/_mock/reset",
    "/_mock/health",
    "/_mock/faults",
    "/_mock/faults/{id}",
    "/_mock/faults/{id}/release",
    "/_mock/requests",
    "/_mock/keys/rotate",
    "{prefix}/v1/keys",
    "{prefix}/v1/authorize",
    "{prefix}/v1/authorize/redirect",
    "{prefix}/v1/token",
    "{prefix}/v1/introspect",
    "{prefix}/v1/revoke",
    "{prefix}/v1/userinfo",
    "{prefix}/v1/logout",
    "/api/v1/users",
    "/api/v1/users/{id}",
    "/api/v1/users/{id}/lifecycle/{op}",
    "/api/v1/users/{id}/sessions",
    "/api/v1/users/{id}/groups",
    "/api/v1/users/{id}/clients/{id}/tokens",
    "/api/v1/users/{id}/clients/{id}/tokens/{id}",
    "/api/v1/groups",
    "/api/v1/groups/{id}",
    "/api/v1/groups/{id}/users",
    "/api/v1/groups/{id}/users/{id}",
    "/api/v1/apps",
    "/api/v1/apps/{id}",
    "/api/v1/apps/{id}/lifecycle/{op}",
    "/api/v1/apps/{id}/users",
    "/api/v1/apps/{id}/users/{id}",
    "/api/v1/apps/{id}/groups",
    "/api/v1/apps/{id}/groups/{id}",
    "/api/v1/authorizationServers",
    "/api/v1/authorizationServers/{id}",
    "/api/v1/authorizationServers/{id}/policies",
    "/api/v1/authorizationServers/{id}/policies/{id}",
    "/api/v1/authorizationServers/{id}/policies/{id}/rules",
    "/api/v1/authorizationServers/{id}/policies/{id}/rules/{id}",
    "/api/v1/authorizationServers/{id}/credentials/keys",
    "/api/v1/authorizationServers/{id}/credentials/keys/{id}",
    "/api/v1/authorizationServers/{id}/credentials/lifecycle/keyRotate",
    "/api/v1/nothing/here",
];

const BSR_ROUTES: &[&str] = &[
    "/",
    "/login",
    "/oauth2/callback",
    "/logout",
    "/api/me",
    "/admin/login",
    "/admin/users",
    "/admin/users/{id}/{op}",
    "/{org}/pro-settings",
    "/healthz",
    "/nothing/here",
];

const PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "response_mode",
    "sessionToken",
    "fromURI",
    "okta_key",
    "limit",
    "after",
    "filter",
    "search",
    "q",
    "since",
    "until",
    "sortOrder",
    "endpoint",
    "id_token_hint",
    "post_logout_redirect_uri",
    "activate",
    "sendEmail",
    "oauthTokens",
    "grant_type",
    "code",
    "refresh_token",
    "token",
    "token_type_hint",
    "client_secret",
    "error",
    "error_description",
    "next",
    "username",
    "password",
    "csrf",
];

const VALUES: &[&str] = &[
    "bsr-local",
    "http://127.0.0.1:3000/oauth2/callback",
    "code",
    "openid profile email offline_access",
    "none",
    "login",
    "form_post",
    "fragment",
    "S256",
    "plain",
    "-1",
    "0",
    "99999999999999999999",
    "true",
    "false",
    "ACTIVE",
    "status eq \"ACTIVE\"",
    "eventType eq \"x\" and",
    "2030-01-01T00:00:00Z",
    "not-a-date",
    "/oauth2/default/v1/authorize/redirect?okta_key=x",
    "//evil.example",
    "https://evil.example",
    "<script>alert(1)</script>",
    "alice@example.com",
    "Passw0rd!",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "token",
    "access_token",
    "ü",
    "%",
    "%zz",
    "%FF%FE",
    "%00",
    "\u{0}",
    "",
];

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded; charset=ISO-8859-1",
    "",
    "\u{7f}",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FUZZ", "CONNECTX"];

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.gen_range(0..=max);
    (0..n).map(|_| rng.r#gen::<u8>()).collect()
}

/// Changes a few bytes of `b`: flips, inserts, deletes, truncates, repeats, or plants a huge value or
/// bytes that are not UTF-8.
fn mutate(rng: &mut StdRng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(0..4) {
        match rng.gen_range(0..9) {
            0 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.r#gen();
            }
            1 => {
                let i = rng.gen_range(0..=b.len());
                let ins = random_bytes(rng, 8);
                b.splice(i..i, ins);
            }
            2 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                let j = rng.gen_range(i..=b.len());
                b.drain(i..j);
            }
            3 => b.truncate(rng.gen_range(0..=b.len())),
            4 => {
                let copy = b.clone();
                b.push(b'&');
                b.extend_from_slice(&copy);
            }
            5 => {
                let i = rng.gen_range(0..=b.len());
                let n = if rng.gen_bool(0.1) { 70_000 } else { rng.gen_range(100..5_000) };
                b.splice(i..i, std::iter::repeat_n(b'A', n));
            }
            6 => {
                let i = rng.gen_range(0..=b.len());
                b.splice(i..i, [0xC3, 0x28, 0xFF, 0xFE]);
            }
            7 => {
                let i = rng.gen_range(0..=b.len());
                b.splice(i..i, pick(rng, &["%", "%G1", "%FF", "%00", "%2", "+", "=", "&&", "\"", "{", "]"]).bytes());
            }
            _ => {}
        }
    }
    b
}

fn json_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 2 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => json!(rng.r#gen::<i64>()),
        3 => json!(rng.r#gen::<f64>() * 1e12),
        4 => json!(pick(rng, VALUES)),
        5 => json!(String::from_utf8_lossy(&random_bytes(rng, 20))),
        6 | 7 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..5) {
                let k = pick(
                    rng,
                    &[
                        "profile",
                        "login",
                        "email",
                        "credentials",
                        "password",
                        "value",
                        "name",
                        "label",
                        "signOnMode",
                        "settings",
                        "oauthClient",
                        "redirect_uris",
                        "grant_types",
                        "advance_seconds",
                        "set",
                        "freeze",
                        "offset_seconds",
                        "username",
                        "id",
                        "scope",
                        "actions",
                        "token",
                        "accessTokenLifetimeMinutes",
                        "use",
                        "sign_with_new_key_at_once",
                        "x",
                    ],
                );
                m.insert(k.into(), json_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.gen_range(0..4)).map(|_| json_value(rng, depth + 1)).collect()),
    }
}

/// Fills a route template and mutates the path.
fn path(rng: &mut StdRng, template: &str) -> String {
    let mut p = template.to_string();
    while let Some(i) = p.find('{') {
        let j = p[i..].find('}').map(|j| i + j + 1).unwrap_or(p.len());
        let v = match &p[i..j] {
            "{prefix}" => pick(rng, &["/oauth2", "/oauth2/default", "/oauth2/nope", "/oauth2/v1"]).to_string(),
            "{server}" => pick(rng, &["default", "nope", "v1", "%FF"]).to_string(),
            "{op}" => pick(rng, &["activate", "deactivate", "suspend", "unsuspend", "reactivate", "reset_password", "x"]).to_string(),
            "{org}" => pick(rng, &["acme", "other"]).to_string(),
            _ => pick(rng, IDS).to_string(),
        };
        p.replace_range(i..j, &v);
    }
    match rng.gen_range(0..12) {
        0 => p.push('/'),
        1 => p.push_str(&format!("/{}", pick(rng, IDS))),
        2 => p.push_str(pick(rng, &["%", "%zz", "%FF%FE", "%00", "/..", "//", "ü", "%2F%2E%2E"])),
        3 => p = p.replace('/', "//"),
        4 => p.push_str(&format!("/{}", "s".repeat(rng.gen_range(1_000..20_000)))),
        5 => p = p.to_uppercase(),
        _ => {}
    }
    p
}

fn query(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.3) {
        return String::new();
    }
    let mut pairs = Vec::new();
    for _ in 0..rng.gen_range(0..8) {
        let k = if rng.gen_bool(0.9) { pick(rng, PARAMS).to_string() } else { String::from_utf8_lossy(&random_bytes(rng, 6)).into_owned() };
        let v =
            if rng.gen_bool(0.8) { pick(rng, VALUES).to_string() } else { String::from_utf8_lossy(&random_bytes(rng, 30)).into_owned() };
        pairs.push(form_urlencoded_pair(&k, &v));
    }
    let q = pairs.join("&");
    let q = if rng.gen_bool(0.3) { String::from_utf8_lossy(&mutate(rng, q.into_bytes())).into_owned() } else { q };
    // A query reqwest would refuse to put in a URL is sent percent-encoded instead.
    format!("?{}", q.replace(['#', ' '], "%20"))
}

/// At most `n` characters of `s`, for messages.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn form_urlencoded_pair(k: &str, v: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair(k, v).finish()
}

/// Real bodies a route takes, as seeds for mutation.
fn seed_body(rng: &mut StdRng, path: &str, tokens: &Seeds) -> Vec<u8> {
    let form = |pairs: &[(&str, &str)]| tests::encode_form(pairs).into_bytes();
    if path.ends_with("/v1/token") {
        return match rng.gen_range(0..3) {
            0 => form(&[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh_token)]),
            1 => form(&[("grant_type", "authorization_code"), ("code", "abc"), ("redirect_uri", REDIRECT_URI)]),
            _ => form(&[("grant_type", "client_credentials"), ("scope", "bsr.read")]),
        };
    }
    if path.ends_with("/v1/introspect") || path.ends_with("/v1/revoke") {
        return form(&[("token", &tokens.access_token), ("token_type_hint", "access_token")]);
    }
    if path.starts_with("/login/login.htm") {
        return form(&[("username", ALICE), ("password", PASSWORD), ("fromURI", "/"), ("csrf", "x")]);
    }
    if path == "/_mock/faults" {
        // Never a valid rule (see the module documentation): no `action`.
        return serde_json::to_vec(&json!({"endpoint": pick(rng, &["token", "keys", "nope"]), "times": rng.gen_range(-1..3)})).unwrap();
    }
    if path == "/_mock/reset" {
        return pick(rng, &["", "{}", "[]", "{\"tenant\": 1}", "{\"tenant\": {\"users\": 5}}", "null", "{\"x\": 1}"]).as_bytes().to_vec();
    }
    serde_json::to_vec(&json_value(rng, 0)).unwrap()
}

struct Seeds {
    access_token: String,
    refresh_token: String,
    sid: String,
}

struct Tally {
    sent: AtomicUsize,
    server_errors: std::sync::Mutex<Vec<String>>,
    dropped: std::sync::Mutex<Vec<String>>,
}

/// One random or mutated request at `base`.
async fn one(http: &reqwest::Client, rng: &mut StdRng, base: &str, routes: &[&str], seeds: &Seeds, tally: &Tally, idp: bool) {
    let template = pick(rng, routes);
    let p = path(rng, template);
    let method = if rng.gen_bool(0.7) { if rng.gen_bool(0.5) { "GET" } else { "POST" } } else { pick(rng, METHODS) };
    let url = format!("{base}{p}{}", query(rng));
    let Ok(method_v) = reqwest::Method::from_bytes(method.as_bytes()) else { return };
    let mut rb = http.request(method_v, &url).timeout(Duration::from_secs(20));
    if rng.gen_bool(0.8) {
        rb = rb.header("content-type", pick(rng, CONTENT_TYPES));
    }
    // Administrator credentials open the management API; at the stub they are sent on reads only.
    let auth = match rng.gen_range(0..8) {
        0 | 1 if idp => Some(format!("SSWS {ADMIN_TOKEN}")),
        0 if !idp && method == "GET" => Some(format!("Basic {}", STANDARD.encode("admin:admin-password"))),
        2 => Some(basic(CLIENT_ID, CLIENT_SECRET)),
        3 => Some(format!("Bearer {}", seeds.access_token)),
        4 => Some(format!("Basic {}", STANDARD.encode(random_bytes(rng, 30)))),
        5 => Some(format!("{} {}", pick(rng, &["SSWS", "Bearer", "Basic", "bearer", ""]), String::from_utf8_lossy(&random_bytes(rng, 20)))),
        _ => None,
    };
    if let Some(a) = auth
        && let Ok(v) = reqwest::header::HeaderValue::from_str(&a)
    {
        rb = rb.header("authorization", v);
    }
    let cookie = match rng.gen_range(0..6) {
        0 => Some(format!("sid={}", seeds.sid)),
        1 => Some(format!("sid={}; mock_csrf=x; bsr_session=y", String::from_utf8_lossy(&random_bytes(rng, 20)))),
        2 => Some("=; ;;; a=b=c; bsr_login_0000000000000000=z".into()),
        _ => None,
    };
    if let Some(c) = cookie
        && let Ok(v) = reqwest::header::HeaderValue::from_str(&c)
    {
        rb = rb.header("cookie", v);
    }
    if rng.gen_bool(0.2) {
        rb = rb.header("origin", pick(rng, &["http://127.0.0.1:4300", "http://evil.example", "null"]));
    }
    if rng.gen_bool(0.2) {
        rb = rb.header("accept", pick(rng, &["application/json", "text/html", "*/*"]));
    }
    if rng.gen_bool(0.05) {
        rb = rb.header("x-junk", "j".repeat(rng.gen_range(1..40_000)));
    }
    let body = match rng.gen_range(0..6) {
        0 => Vec::new(),
        1 => random_bytes(rng, 200),
        2 if rng.gen_bool(0.1) => vec![b'z'; 70_000],
        _ => {
            let seed = seed_body(rng, &p, seeds);
            if rng.gen_bool(0.5) { mutate(rng, seed) } else { seed }
        }
    };
    // The fuzzer must not install fault rules or swap the tenant (see the module documentation).
    if idp
        && (p.starts_with("/_mock/faults") || p.starts_with("/_mock/reset"))
        && !body.is_empty()
        && serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.get("action").is_some() || v.get("tenant").is_some_and(Value::is_object))
    {
        return;
    }
    if !idp && p.ends_with("/pro-settings") && method != "GET" {
        return;
    }
    // What reqwest will not build (a header value it refuses, a URL it cannot parse) never leaves.
    let Ok(req) = rb.body(body).build() else { return };
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let what = format!("{method} {}", cut(&url, 200));
    match http.execute(req).await {
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status.is_server_error() {
                tally.server_errors.lock().unwrap().push(format!("{what}: {status} {}", cut(&text, 300)));
            }
        }
        // A URL longer than the http crate takes (64 KiB) is refused before it is sent.
        Err(e) if e.is_builder() => {
            tally.sent.fetch_sub(1, Ordering::Relaxed);
        }
        Err(e) => {
            let mut why = String::new();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(x) = src {
                why.push_str(&format!(" / {x}"));
                src = x.source();
            }
            tally.dropped.lock().unwrap().push(format!("{}: {why}", cut(&what, 120)));
        }
    }
}

async fn fire(base: String, routes: &'static [&'static str], seeds: Arc<Seeds>, seed: u64, idp: bool) -> Arc<Tally> {
    let tally = Arc::new(Tally { sent: AtomicUsize::new(0), server_errors: Default::default(), dropped: Default::default() });
    let mut set = tokio::task::JoinSet::new();
    for w in 0..CONCURRENCY {
        let (base, seeds, tally) = (base.clone(), seeds.clone(), tally.clone());
        set.spawn(async move {
            harness::crypto::install();
            let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let mut rng = StdRng::seed_from_u64(seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            while tally.sent.load(Ordering::Relaxed) < PER_SERVER {
                one(&http, &mut rng, &base, routes, &seeds, &tally, idp).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    tally
}

/// Raw connections: random bytes, and request heads with a byte changed here and there.
async fn raw_garbage(addr: std::net::SocketAddr, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..RAW {
        let bytes = if rng.gen_bool(0.5) {
            random_bytes(&mut rng, 300)
        } else {
            mutate(
                &mut rng,
                b"POST /oauth2/default/v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde".to_vec(),
            )
        };
        reliability_support::raw(addr, &bytes, Duration::from_millis(300)).await;
    }
}

fn seed() -> u64 {
    let s = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x005E_ED0F_0B5C_0DE5);
    eprintln!("fuzz seed {s} (replay with FUZZ_SEED={s})");
    s
}

fn report(name: &str, t: &Tally) {
    let errors = t.server_errors.lock().unwrap();
    let dropped = t.dropped.lock().unwrap();
    assert!(errors.is_empty(), "{name}: {} answers were 5xx, e.g. {:?}", errors.len(), &errors[..errors.len().min(5)]);
    assert!(dropped.is_empty(), "{name}: {} connections failed (a panic?), e.g. {:?}", dropped.len(), &dropped[..dropped.len().min(5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_hostile_requests_at_mock_idp() {
    count_panics();
    let seed = seed();
    let idp = MockIdp::start(mock_idp::Options { config: tenant_with_canary(), ..mock_idp::Options::default() }).await.unwrap();
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile email offline_access").await;
    let sid = {
        let st = c.authn(BOB, PASSWORD).await;
        let r = c.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("sessionToken", &st)).await;
        r.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap()
            .trim_start_matches("sid=")
            .to_string()
    };
    let seeds = Arc::new(Seeds { access_token: t.access_token, refresh_token: t.refresh_token.unwrap(), sid });
    let started = Instant::now();
    let tally = fire(idp.base_url().to_string(), IDP_ROUTES, seeds, seed, true).await;
    raw_garbage(idp.addr(), seed).await;
    let sent = tally.sent.load(Ordering::Relaxed);
    eprintln!("mock-idp: {sent} requests and {RAW} raw connections in {:.1} s", started.elapsed().as_secs_f64());
    assert!(sent >= PER_SERVER, "{sent}");
    report("mock-idp", &tally);
    assert_eq!(panics(), 0, "panics were logged");
    // No fault rule was installed by the fuzzer, and a normal sign-in works, signed and verifiable.
    assert_eq!(c.get("/_mock/faults").await.json(), json!([]));
    idp.clock().set_ms(T0 * 1000);
    let canary = Client::new(&idp);
    let t = canary
        .login_with(
            Server::DEFAULT,
            CANARY,
            PASSWORD,
            Authorize::new(CANARY_CLIENT).redirect_uri("https://canary.example.com/cb").scope("openid email offline_access"),
            Auth::Basic(CANARY_CLIENT, CANARY_SECRET),
        )
        .await;
    let claims = verify_id_token(idp.base_url(), Server::DEFAULT, t.id_token.as_deref().unwrap(), CANARY_CLIENT).await.unwrap();
    assert_eq!(claims["email"], CANARY);
    assert_eq!(canary.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::OK);
    let (s, _) = canary.refresh(Server::DEFAULT, CANARY_CLIENT, Some(CANARY_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK);
    idp.check_invariants().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_hostile_requests_at_the_stub_bsr() {
    count_panics();
    let seed = seed().wrapping_add(1);
    let env = reliability_support::StubEnv::start(mock_idp::TenantConfig::default_tenant(), |_| {}).await;
    let seeds = Arc::new(Seeds { access_token: "x".into(), refresh_token: "y".into(), sid: "z".into() });
    let started = Instant::now();
    let tally = fire(env.bsr.base_url().to_string(), BSR_ROUTES, seeds, seed, false).await;
    raw_garbage(env.bsr.addr(), seed).await;
    let sent = tally.sent.load(Ordering::Relaxed);
    eprintln!("stub BSR: {sent} requests and {RAW} raw connections in {:.1} s", started.elapsed().as_secs_f64());
    assert!(sent >= PER_SERVER, "{sent}");
    report("stub BSR", &tally);
    assert_eq!(panics(), 0, "panics were logged");
    // A normal sign-in through the stub still works.
    let w = walk(&browser(), &format!("{}/login", env.bsr.base_url()), ALICE, PASSWORD).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    assert!(w.body.contains("<span id=\"username\">alice</span>"), "{}", w.body);
}
