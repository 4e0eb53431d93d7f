//! Measures real Chromium sign-ins against an in-process mock-idp and stub BSR (issue 7): the time from
//! browser launch to the signed-in BSR page, and the time of each further sign-in with the warm browser.
//!
//! `cargo run -p harness --example browser_timing --release [-- --runs N] [--screenshot PATH]`
//!
//! Every sign-in is the full round trip a person makes: the BSR's home page, its sign-in link, the IdP's hosted
//! page (username, password, Enter), the callback and the signed-in home page. Between two sign-ins the
//! user signs out (BSR and IdP session), so none of them is silent. `--screenshot` saves the hosted sign-in
//! page as a PNG, and next to it `<name>-error.png` after a wrong password (docs/img/sign-in.png is made
//! this way).

use std::time::{Duration, Instant};

use anyhow::Context;
use harness::browser::{Browser, DEFAULT_TIMEOUT, Tab};
use harness::bsr::{BsrConfig, StubBsr};
use mock_idp::{MockIdp, Options};
use tokio::net::TcpListener;

async fn sign_in(tab: &Tab, bsr: &str) -> anyhow::Result<()> {
    tab.goto(&format!("{bsr}/")).await?;
    tab.click_and_wait("#sign-in").await?;
    tab.fill_and_submit_sign_in("alice@example.com", "Passw0rd!").await?;
    let user = tab.wait_for("#username", DEFAULT_TIMEOUT).await?;
    anyhow::ensure!(user == "alice", "signed in as {user:?}");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut runs = 10usize;
    let mut screenshot = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().context("--runs needs a number")?.parse()?,
            "--screenshot" => screenshot = Some(args.next().context("--screenshot needs a path")?),
            other => anyhow::bail!("unknown argument {other:?}; usage: browser_timing [--runs N] [--screenshot PATH]"),
        }
    }

    let idp = MockIdp::start(Options::default()).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut cfg = BsrConfig::for_issuer(idp.org_issuer(), "bsr-local", "bsr-local-secret");
    cfg.public_url = Some(format!("http://localhost:{port}"));
    cfg.clock = mock_idp::Clock::test_default();
    let bsr = StubBsr::serve(listener, cfg).await?;
    let (redirect, post_logout) = (bsr.redirect_uri(), bsr.post_logout_redirect_uri());
    idp.with_tenant(|t| {
        for a in t.apps.values_mut().filter(|a| a.client_id == "bsr-local") {
            a.redirect_uris.push(redirect.clone());
            a.post_logout_redirect_uris.push(post_logout.clone());
        }
    });
    let base = bsr.base_url().to_string();

    let t0 = Instant::now();
    let browser = Browser::launch().await?;
    let launched = t0.elapsed();
    let tab = browser.new_tab().await?;
    sign_in(&tab, &base).await?;
    let first = t0.elapsed();

    if let Some(path) = &screenshot {
        tab.click_and_wait("#sign-out").await?;
        tab.goto(&format!("{base}/login")).await?;
        tab.wait_for("#okta-signin-username", DEFAULT_TIMEOUT).await?;
        tab.screenshot(path).await?;
        tab.fill_and_submit_sign_in("alice@example.com", "not the password").await?;
        tab.wait_for("#signin-error", DEFAULT_TIMEOUT).await?;
        let error_path = match path.strip_suffix(".png") {
            Some(stem) => format!("{stem}-error.png"),
            None => format!("{path}-error.png"),
        };
        tab.screenshot(&error_path).await?;
        println!("sign-in page screenshots: {path}, {error_path} (after a wrong password)");
        tab.fill_and_submit_sign_in("alice@example.com", "Passw0rd!").await?;
        tab.wait_for("#username", DEFAULT_TIMEOUT).await?;
    }

    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs {
        tab.click_and_wait("#sign-out").await?;
        tab.wait_for("#signed-out", DEFAULT_TIMEOUT).await?;
        let t = Instant::now();
        sign_in(&tab, &base).await?;
        warm.push(t.elapsed());
    }
    browser.close().await;

    warm.sort();
    println!("browser launch (chromedriver + Chromium session): {:.0} ms", ms(launched));
    println!("launch to signed-in BSR page (cold):                {:.0} ms", ms(first));
    if !warm.is_empty() {
        let mean = warm.iter().map(|d| ms(*d)).sum::<f64>() / warm.len() as f64;
        println!(
            "extra sign-in with the warm browser, {} runs:        min {:.0} ms, median {:.0} ms, mean {:.0} ms, max {:.0} ms",
            warm.len(),
            ms(warm[0]),
            ms(warm[warm.len() / 2]),
            mean,
            ms(warm[warm.len() - 1])
        );
    }
    Ok(())
}
