//! Load and soak (feature `heavy`): 50 000 mixed requests — sign-ins, refreshes with rotation, JWKS,
//! userinfo, management calls — at concurrency 64 against an in-process IdP. No 5xx; every request is in the
//! request log and every sign-in, refresh and management change in the System Log; no refresh family has
//! two live generations; and once the tenant clock passes every expiry, the purge gives the memory back.
//!
//! The request log keeps 10 000 entries by default; this IdP is started with a cap of 100 000
//! (`Options::log_caps`, `mock-idp --request-log-cap`) so all 50 000 can be counted.

#![cfg(feature = "heavy")]

mod reliability_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use counts::Counts;
use mock_idp::core::tenant::Tenant;
use mock_idp::{LogCaps, MockIdp, Options};
use reliability_support::rss_kib;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::*;

const TOTAL: usize = 50_000;
const CONCURRENCY: usize = 64;
/// After the purge, resident memory may exceed the warmed-up baseline by this much (allocator slack).
const TOLERANCE_KIB: u64 = 24 * 1024;

mod counts {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Requests per endpoint and per status, from the clients' side.
    #[derive(Default)]
    pub struct Counts {
        pub by_endpoint: Mutex<BTreeMap<&'static str, usize>>,
        pub by_status: Mutex<BTreeMap<u16, usize>>,
        pub events: Mutex<BTreeMap<&'static str, usize>>,
    }

    impl Counts {
        pub fn add(&self, endpoint: &'static str, status: u16) {
            *self.by_endpoint.lock().unwrap().entry(endpoint).or_default() += 1;
            *self.by_status.lock().unwrap().entry(status).or_default() += 1;
        }
        pub fn event(&self, kind: &'static str) {
            *self.events.lock().unwrap().entry(kind).or_default() += 1;
        }
    }
}

struct Worker {
    c: Client,
    access_token: String,
    refresh_token: String,
}

impl Worker {
    async fn sign_in(&mut self, n: usize, counts: &Counts) {
        let user = if n.is_multiple_of(2) { ALICE } else { BOB };
        let r = self.c.post_json("/api/v1/authn", &json!({"username": user, "password": PASSWORD})).await;
        counts.add("authn", r.status.as_u16());
        let st = r.json()["sessionToken"].as_str().expect("sessionToken").to_string();
        let req = Authorize::new(CLIENT_ID).scope("openid profile email offline_access").param("sessionToken", &st);
        let r = self.c.authorize(Server::DEFAULT, &req).await;
        counts.add("authorize", r.status.as_u16());
        let code = url_param(&r.location().expect("a redirect"), "code").expect("a code");
        let (s, b) =
            self.c.token_code(Server::DEFAULT, Auth::BSR, &code, REDIRECT_URI, req.pkce.as_ref().map(|p| p.verifier.as_str())).await;
        counts.add("token", s.as_u16());
        let t = Tokens::from_response(s, b, &req.nonce);
        counts.event("signin");
        self.access_token = t.access_token;
        self.refresh_token = t.refresh_token.expect("a refresh token");
    }

    /// One operation of the mix; returns how many requests it made. Of every 24 operations (28 requests):
    /// 2 refreshes, 1 sign-in (3 requests), 8 JWKS and 8 userinfo requests, 3 management reads and 2
    /// management changes (a group created and deleted). RS256 signing bounds the rate (two signatures per
    /// token answer), so token answers are about a tenth of the requests.
    async fn op(&mut self, n: usize, counts: &Counts) -> usize {
        match n % 24 {
            0 | 12 => {
                let (s, b) = self.c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &self.refresh_token, None).await;
                counts.add("token", s.as_u16());
                assert_eq!(s, StatusCode::OK, "refresh: {b}");
                let rt = b["refresh_token"].as_str().unwrap().to_string();
                assert_ne!(rt, self.refresh_token, "ROTATE gives a new token");
                self.refresh_token = rt;
                self.access_token = b["access_token"].as_str().unwrap().to_string();
                counts.event("refresh");
                1
            }
            1 | 3 | 5 | 8 | 13 | 15 | 17 | 20 => {
                let r = self.c.get("/oauth2/default/v1/keys").await;
                counts.add("keys", r.status.as_u16());
                1
            }
            2 | 4 | 7 | 9 | 14 | 16 | 19 | 22 => {
                let r = self.c.userinfo(Server::DEFAULT, &self.access_token).await;
                counts.add("userinfo", r.status.as_u16());
                assert_eq!(r.status, StatusCode::OK, "userinfo: {}", r.body);
                1
            }
            10 | 18 | 23 => {
                let r = self.admin(self.c.http.get(self.c.url(&format!("/api/v1/users/{ALICE_ID}")))).await;
                counts.add("api", r.status.as_u16());
                1
            }
            6 => {
                self.sign_in(n, counts).await;
                3
            }
            _ => {
                // A management change and its undo: a group created and deleted.
                let r = self
                    .admin(
                        self.c
                            .http
                            .post(self.c.url("/api/v1/groups"))
                            .json(&json!({"profile": {"name": format!("soak-{}", random_string())}})),
                    )
                    .await;
                counts.add("api", r.status.as_u16());
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                let id = r.json()["id"].as_str().unwrap().to_string();
                let r = self.admin(self.c.http.delete(self.c.url(&format!("/api/v1/groups/{id}")))).await;
                counts.add("api", r.status.as_u16());
                counts.event("group");
                2
            }
        }
    }

    async fn admin(&self, rb: reqwest::RequestBuilder) -> Reply {
        Reply::from(
            rb.header("authorization", format!("SSWS {ADMIN_TOKEN}")).send().await.expect("a response (a dropped connection is a panic)"),
        )
        .await
    }
}

/// Runs the mix on all workers until `budget` requests have been made; returns the count.
async fn run(workers: Vec<Worker>, budget: usize, counts: Arc<Counts>) -> (Vec<Worker>, usize) {
    let sent = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for (i, mut w) in workers.into_iter().enumerate() {
        let (sent, counts) = (sent.clone(), counts.clone());
        set.spawn(async move {
            let mut n = i;
            while sent.load(Ordering::SeqCst) < budget {
                let k = w.op(n, &counts).await;
                sent.fetch_add(k, Ordering::SeqCst);
                n += 1;
            }
            w
        });
    }
    let mut out = Vec::new();
    while let Some(w) = set.join_next().await {
        out.push(w.expect("a worker panicked"));
    }
    (out, sent.load(Ordering::SeqCst))
}

fn held(t: &Tenant) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("sessions", t.sessions.len()),
        ("session_tokens", t.session_tokens.len()),
        ("pending", t.pending.len()),
        ("codes", t.codes.len()),
        ("tokens", t.tokens.len()),
        ("refresh_families", t.refresh.len()),
        ("system_log", t.log.len()),
    ])
}

/// Moves the tenant clock past every expiry (refresh idle window 7 days, System Log retention 90 days)
/// with the mock's own control, which purges, and empties the request log.
async fn expire_everything(c: &Client) {
    // The request log first: the purge that the clock move triggers then hands all freed memory back.
    assert_eq!(c.http.delete(c.url("/_mock/requests")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let (s, _) = c.set_clock(json!({"advance_seconds": 91 * 86_400})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_mixed_requests_at_concurrency_64() {
    let idp =
        MockIdp::start(Options { log_caps: LogCaps { request_log: 100_000, system_log: 400_000 }, ..Options::default() }).await.unwrap();
    let admin = Client::new(&idp);
    let counts = Arc::new(Counts::default());
    let mut workers = Vec::new();
    for i in 0..CONCURRENCY {
        let mut w = Worker { c: Client::new(&idp), access_token: String::new(), refresh_token: String::new() };
        w.sign_in(i, &counts).await;
        workers.push(w);
    }
    // Warm up (allocator arenas, connection pools, key caches), expire it all, and take the baseline.
    let (mut workers, _) = run(workers, 3_000, counts.clone()).await;
    for (i, w) in workers.iter_mut().enumerate() {
        w.sign_in(i, &counts).await;
    }
    expire_everything(&admin).await;
    for (i, w) in workers.iter_mut().enumerate() {
        w.sign_in(i, &counts).await;
    }
    admin.http.delete(admin.url("/_mock/requests")).send().await.unwrap();
    let events_before = idp.with_tenant(|t| t.log.len());
    let counts = Arc::new(Counts::default());
    let baseline = rss_kib();

    let started = Instant::now();
    let (_workers, sent) = run(workers, TOTAL, counts.clone()).await;
    let elapsed = started.elapsed();
    let peak = rss_kib();
    assert!(sent >= TOTAL, "{sent}");

    // No 5xx, from the clients' side.
    let by_status = counts.by_status.lock().unwrap().clone();
    assert!(by_status.keys().all(|s| *s < 500), "{by_status:?}");
    assert_eq!(by_status.values().sum::<usize>(), sent);
    // Every request is in the request log, per endpoint, none with a 5xx. (The answer is large; it is
    // dropped before memory is measured again.)
    let mut logged: BTreeMap<String, usize> = BTreeMap::new();
    {
        let log: Vec<Value> = admin.get("/_mock/requests").await.json().as_array().unwrap().clone();
        assert_eq!(log.len(), sent);
        for e in &log {
            *logged.entry(e["endpoint"].as_str().unwrap().to_string()).or_default() += 1;
            assert!(e["status"].as_u64().unwrap() < 500, "{e}");
        }
    }
    let by_endpoint: BTreeMap<String, usize> = counts.by_endpoint.lock().unwrap().iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(logged, by_endpoint);
    // And in the System Log (the events of this run are the ones after `events_before`): every sign-in,
    // refresh and group change.
    let events = counts.events.lock().unwrap().clone();
    let (signins, refreshes, groups) = (events["signin"], events["refresh"], events["group"]);
    let logged_events = idp.with_tenant(|t| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for e in t.log.all().skip(events_before) {
            let key = match e.debug.get("grantType").and_then(Value::as_str) {
                Some(g) if e.event_type == "app.oauth2.as.token.grant.access_token" => format!("{} ({g})", e.event_type),
                _ => e.event_type.clone(),
            };
            *m.entry(key).or_default() += 1;
        }
        m
    });
    let n = |k: &str| logged_events.get(k).copied().unwrap_or(0);
    assert_eq!(n("user.authentication.authenticate"), signins, "{logged_events:?}");
    assert_eq!(n("app.oauth2.as.authorize.code"), signins, "{logged_events:?}");
    assert_eq!(n("app.oauth2.as.token.grant.access_token (authorization_code)"), signins, "{logged_events:?}");
    assert_eq!(n("app.oauth2.as.token.grant.access_token (refresh_token)"), refreshes, "{logged_events:?}");
    assert_eq!(n("app.oauth2.as.token.grant.refresh_token"), signins + refreshes, "{logged_events:?}");
    assert_eq!(n("group.lifecycle.create"), groups, "{logged_events:?}");
    assert_eq!(n("group.lifecycle.delete"), groups, "{logged_events:?}");
    idp.check_invariants().unwrap();

    // Past every expiry, the purge empties the stores and the memory comes back.
    expire_everything(&admin).await;
    let left = idp.with_tenant(|t| held(t));
    assert!(left.values().all(|n| *n == 0), "{left:?}");
    let after = rss_kib();
    eprintln!(
        "soak: {sent} requests in {:.1} s ({:.0}/s) at concurrency {CONCURRENCY}; {signins} sign-ins, {refreshes} refreshes; \
         RSS baseline {} MiB, after the load {} MiB, after the purge {} MiB",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        baseline / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(after <= baseline + TOLERANCE_KIB, "RSS {after} KiB after the purge, baseline {baseline} KiB");
    assert!(elapsed < Duration::from_secs(300));
}
