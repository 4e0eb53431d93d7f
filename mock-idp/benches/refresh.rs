//! Refresh grants per second over loopback HTTP, STATIC and ROTATE, next to the machine's raw RS256
//! signing rate measured in the same run.
//!
//! Run: `cargo bench -p mock-idp --bench refresh` (optional env: BENCH_SECONDS=5, BENCH_CONCURRENCY=16).
//! Each refresh response carries two signatures (access token and ID token), so the bound on refreshes per
//! second is the signing rate divided by two.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mock_idp::config::RefreshTokenConfig;
use mock_idp::core::model::RotationType;
use mock_idp::{MockIdp, Options, TenantConfig};
use serde_json::Value;

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn signing_rate(threads: usize, secs: f64) -> f64 {
    mock_idp::signing::measure_rate(threads, secs)
}

#[path = "common/sign_in.rs"]
mod common;

async fn login(http: &reqwest::Client, base: &str) -> String {
    let t = common::sign_in(http, base).await.expect("a sign-in");
    t["refresh_token"].as_str().expect("refresh_token").to_string()
}

async fn run(rotation: RotationType, conc: usize, secs: u64) -> (f64, Vec<u128>) {
    let mut cfg = TenantConfig::default_tenant();
    cfg.apps[0].settings.oauth_client.refresh_token = Some(RefreshTokenConfig { rotation_type: rotation, leeway: 15 });
    let idp = MockIdp::start(Options { config: cfg, ..Options::default() }).await.expect("start");
    let base = idp.base_url().to_string();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, base, done) = (http.clone(), base.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // Each worker drives its own chain (its own family), as independent sessions do.
            let mut rt = login(&http, &base).await;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r: Value = http
                    .post(format!("{base}/oauth2/default/v1/token"))
                    .basic_auth("bsr-local", Some("bsr-local-secret"))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
                    .send()
                    .await
                    .expect("refresh")
                    .json()
                    .await
                    .expect("refresh json");
                lat.push(t0.elapsed().as_micros());
                rt = r["refresh_token"].as_str().expect("a successor refresh token").to_string();
                done.fetch_add(1, Ordering::Relaxed);
            }
            lat
        }));
    }
    let start = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    idp.check_invariants().expect("no family has two live generations");
    idp.shutdown().await;
    all.sort_unstable();
    (rate, all)
}

fn pct(v: &[u128], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn main() {
    let secs = env_num("BENCH_SECONDS", 5);
    let conc = env_num("BENCH_CONCURRENCY", 16) as usize;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let one = signing_rate(1, 2.0);
    let all = signing_rate(cores, 2.0);
    println!("raw RS256 signing: {one:.0}/s on 1 thread, {all:.0}/s on {cores} threads");
    println!("bound for refreshes (2 signatures each): {:.0}/s", all / 2.0);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for rotation in [RotationType::Static, RotationType::Rotate] {
        let (rate, lat) = rt.block_on(run(rotation, conc, secs));
        println!(
            "refresh {rotation:?}: {rate:.0}/s at concurrency {conc} over {secs}s ({:.0}% of the signing bound); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            100.0 * rate / (all / 2.0),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    }
}
