//! Helpers of the reliability tests (hostile input, limits, restarts, load): raw HTTP/1.1 over a TCP socket
//! for what reqwest will not send (chunked bodies of our own, half-sent requests, oversized heads, bytes
//! that are not HTTP), the process's resident memory, and a counter of panics.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a raw connection: the status (None if the server closed without answering), the
/// header block and the body as text.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub status: Option<u16>,
    pub head: String,
    pub body: String,
}

/// Sends `request` as is (it should say `Connection: close`) and reads until the server closes, at most
/// `wait`.
pub async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> RawReply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // A server that refuses early may close before the whole request is written; what it answered counts.
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut buf)).await;
    parse(&buf)
}

pub fn parse(buf: &[u8]) -> RawReply {
    let text = String::from_utf8_lossy(buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).unwrap_or((text.clone(), String::new()));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).filter(|_| head.starts_with("HTTP/1."));
    RawReply { status, head, body }
}

/// A request head with `Host` and `Connection: close` and the given extra header lines.
pub fn head(method: &str, target: &str, extra: &[String]) -> String {
    let mut h = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for line in extra {
        h.push_str(line);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h
}

/// The resident set size of this process, from /proc/self/status, in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Installs (once) a panic hook that counts every panic in the process, on any thread, before the default
/// hook prints it; a panic inside a handler ends its connection task, so the counter is how a test sees it.
pub fn count_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Panics counted since [`count_panics`].
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// An IdP and a stub BSR wired to each other on 127.0.0.1 (both listeners bound first, so the tenant
/// registers the stub's real redirect URIs), with frozen clocks at 2030-01-01T00:00:00Z.
pub struct StubEnv {
    pub idp: mock_idp::MockIdp,
    pub bsr: harness::bsr::StubBsr,
}

impl StubEnv {
    pub async fn start(mut tenant: mock_idp::TenantConfig, edit: impl FnOnce(&mut harness::bsr::BsrConfig)) -> StubEnv {
        let idp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bsr_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bsr_base = format!("http://{}", bsr_l.local_addr().unwrap());
        let s = &mut tenant.apps[0].settings.oauth_client;
        s.redirect_uris.push(format!("{bsr_base}/oauth2/callback"));
        s.post_logout_redirect_uris.push(format!("{bsr_base}/logout"));
        let addr = idp_l.local_addr().unwrap();
        let opts = mock_idp::Options { config: tenant, addr, ..mock_idp::Options::default() };
        let idp = mock_idp::MockIdp::serve(idp_l, opts).await.unwrap();
        let mut cfg = harness::bsr::BsrConfig::for_issuer(idp.org_issuer(), "bsr-local", "bsr-local-secret");
        cfg.clock = mock_idp::Clock::test_default();
        edit(&mut cfg);
        let bsr = harness::bsr::StubBsr::serve(bsr_l, cfg).await.unwrap();
        StubEnv { idp, bsr }
    }
}

/// What a walk through redirects ended on, and every `Set-Cookie` seen on the way.
pub struct Walked {
    pub status: reqwest::StatusCode,
    pub url: String,
    pub body: String,
    pub set_cookies: Vec<String>,
}

/// Follows redirects from `start` and fills in the IdP's hosted sign-in form as `user`/`password`, like a
/// browser; stops at the first page that is neither a redirect nor the form.
pub async fn walk(http: &reqwest::Client, start: &str, user: &str, password: &str) -> Walked {
    let mut set_cookies = Vec::new();
    let mut url = start.to_string();
    let mut r = http.get(&url).send().await.unwrap();
    for _ in 0..20 {
        set_cookies.extend(r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string));
        if let Some(loc) = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string) {
            url = url::Url::parse(&url).unwrap().join(&loc).unwrap().to_string();
            r = http.get(&url).send().await.unwrap();
            continue;
        }
        let status = r.status();
        let body = r.text().await.unwrap();
        if status == reqwest::StatusCode::OK && body.contains("id=\"signin-form\"") {
            let csrf = tests::hidden_field(&body, "csrf").unwrap();
            let from = tests::hidden_field(&body, "fromURI").unwrap();
            let action = url::Url::parse(&url).unwrap().join("/login/login.htm").unwrap().to_string();
            let form = tests::encode_form(&[("username", user), ("password", password), ("fromURI", &from), ("csrf", &csrf)]);
            url = action.clone();
            r = http.post(&action).header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap();
            continue;
        }
        return Walked { status, url, body, set_cookies };
    }
    panic!("more than 20 hops from {start}");
}

/// A browser-like client: cookies kept, redirects not followed.
pub fn browser() -> reqwest::Client {
    harness::crypto::install();
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
