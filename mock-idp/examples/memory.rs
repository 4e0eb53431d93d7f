//! Where the memory of many sign-ins goes: live heap bytes per sign-in, by part of the tenant.
//!
//! Run: `cargo run --release -p mock-idp --example memory -- [SIGN_INS]` (default 5000). An in-process IdP
//! (frozen test clock, so nothing expires) gets that many headless sign-ins of `bsr-local` over loopback
//! HTTP (authn, authorize with PKCE, code exchange with offline_access: one refresh family each). A counting
//! allocator gives the live heap; then each part of the tenant is dropped in turn and what that released is
//! printed. BENCHMARKS.md ("Memory") quotes it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use mock_idp::core::tenant::Tenant;
use serde_json::{Value, json};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is updated on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const REDIRECT: &str = "http://127.0.0.1:3000/oauth2/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5000).max(1);
    let idp = mock_idp::MockIdp::start(mock_idp::Options::default()).await?;
    let base = idp.base_url().to_string();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (start, events_before) = (live(), idp.with_tenant(|t| t.log.len()));
    for _ in 0..n {
        let st: Value = http
            .post(format!("{base}/api/v1/authn"))
            .json(&json!({"username": "alice@example.com", "password": "Passw0rd!"}))
            .send()
            .await?
            .json()
            .await?;
        let r = http
            .get(format!("{base}/oauth2/default/v1/authorize"))
            .query(&[
                ("client_id", "bsr-local"),
                ("response_type", "code"),
                ("scope", "openid profile email offline_access"),
                ("redirect_uri", REDIRECT),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("sessionToken", st["sessionToken"].as_str().unwrap_or_default()),
            ])
            .send()
            .await?;
        let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let code = url::Url::parse(&loc)?.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.to_string()).unwrap_or_default();
        let t: Value = http
            .post(format!("{base}/oauth2/default/v1/token"))
            .basic_auth("bsr-local", Some("bsr-local-secret"))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)])
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(t["refresh_token"].is_string(), "the code exchange failed: {t}");
    }
    let per = |bytes: isize| bytes as f64 / n as f64;
    let events = idp.with_tenant(|t| t.log.len()) - events_before;
    println!(
        "{n} sign-ins: {:.1} MiB live heap, {:.0} B each; {events} System Log events",
        (live() - start) as f64 / 1048576.0,
        per(live() - start)
    );
    idp.with_tenant(|t| {
        let mut part = |name: &str, drop_it: &mut dyn FnMut(&mut Tenant)| {
            let before = live();
            drop_it(t);
            println!("{name:>14}: {:>7.0} B per sign-in", per(before - live()));
        };
        part("System Log", &mut |t| t.log.clear());
        part("sessions", &mut |t| t.sessions = Default::default());
        part("codes", &mut |t| t.codes = Default::default());
        part("token records", &mut |t| {
            t.tokens = Default::default();
            t.token_contexts = Default::default();
        });
        part("refresh", &mut |t| t.refresh = Default::default());
    });
    println!("{:>14}: {:>7.0} B per sign-in", "the rest", per(live() - start));
    Ok(())
}
