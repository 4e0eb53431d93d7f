//! What the interop tests share: Node.js and the npm packages of tests/interop (checked up front, so a
//! missing one fails at once with what to install instead of hanging), child processes that always end,
//! an IdP on real time, and a cookie-keeping HTTP "browser" that follows redirects and signs in on the
//! hosted page.
#![allow(dead_code)] // Each interop test file uses a different part of this module.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mock_idp::{Clock, MockIdp, Options, TenantConfig};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub const PASSWORD: &str = "Passw0rd!";

/// tests/interop: the npm packages (package.json, package-lock.json) and the node test scripts.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Node.js 20 or newer and `npm ci` done in tests/interop; panics with what to do otherwise.
pub fn require_node() {
    let out = std::process::Command::new("node").arg("--version").output();
    let version = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => panic!("interop: `node --version` failed ({}); Node.js 20+ is needed", o.status),
        Err(e) => panic!(
            "interop: Node.js is not installed (`node`: {e}). The interop tests run Okta's npm SDKs: install Node.js 20+ \
             (Debian: `apt-get install -y nodejs npm`), then `(cd tests/interop && npm ci)`; scripts/test does both."
        ),
    };
    let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(major >= 20, "interop: Node.js {version} is too old; the SDKs need Node.js 20 or newer");
    let sdk = interop_dir().join("node_modules/@okta/okta-auth-js/package.json");
    assert!(
        sdk.is_file(),
        "interop: the npm packages are not installed ({} is missing): run `(cd tests/interop && npm ci)` (scripts/test does)",
        sdk.display()
    );
}

/// An IdP on real time (the SDKs check `iat`/`exp` against their own clocks), optionally over https.
pub async fn idp_real_time(config: TenantConfig, tls: bool) -> MockIdp {
    MockIdp::start(Options { config, clock: Clock::system(), tls, ..Options::default() }).await.expect("mock-idp starts")
}

/// Writes the IdP's CA certificate to a file for `NODE_EXTRA_CA_CERTS`; the file lives as long as the guard.
pub struct CaFile {
    pub path: PathBuf,
}

impl CaFile {
    pub fn write(idp: &MockIdp) -> CaFile {
        let pem = idp.tls_ca_pem().expect("the IdP serves TLS");
        let path = std::env::temp_dir().join(format!("mock-idp-ca-{}-{}.pem", std::process::id(), idp.addr().port()));
        std::fs::write(&path, pem).expect("write the CA certificate");
        CaFile { path }
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Lines a child printed, collected in the background for failure messages.
#[derive(Default)]
pub struct Lines(std::sync::Mutex<Vec<String>>);

impl Lines {
    fn push(&self, l: String) {
        if let Ok(mut g) = self.0.lock() {
            g.push(l);
        }
    }
    pub fn text(&self) -> String {
        self.0.lock().map(|g| g.join("\n")).unwrap_or_default()
    }
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, into: Arc<Lines>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            into.push(l);
        }
    });
}

/// Runs `node --test` on one script of tests/interop with `env`; panics with the whole report (which
/// names the client and the failing step) unless every test passed within `timeout`.
pub async fn node_test(script: &str, env: &[(&str, String)], timeout: Duration) {
    require_node();
    let mut cmd = Command::new("node");
    cmd.arg("--test").arg("--test-reporter=spec").arg(script).current_dir(interop_dir());
    cmd.env_remove("NODE_OPTIONS").stdin(Stdio::null()).kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = tokio::time::timeout(timeout, cmd.output()).await;
    let out = match run {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!("interop: cannot run node --test {script}: {e}"),
        // kill_on_drop ends node when the dropped future drops the child.
        Err(_) => panic!("interop: node --test {script} did not finish within {timeout:?}"),
    };
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "interop: node --test {script} failed ({}):\n{report}", out.status);
    // The spec reporter's summary; a run that executed nothing must not pass.
    assert!(report.contains("ℹ fail 0") && !report.contains("ℹ pass 0"), "interop: unexpected node --test summary:\n{report}");
    eprintln!("{report}");
}

/// A node server of tests/interop (the Express app, the SPA's static server) on a free loopback port: it
/// prints `listening on <url>` when ready. Killed on drop.
pub struct NodeServer {
    child: Child,
    pub base_url: String,
    output: Arc<Lines>,
}

impl NodeServer {
    /// Runs `node <script>` in tests/interop with `PORT=0` and `env`; `what` names it in failures.
    pub async fn start(script: &str, env: &[(&str, String)], what: &str) -> NodeServer {
        require_node();
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .current_dir(interop_dir())
            .env_remove("NODE_OPTIONS")
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("interop: cannot spawn node {script}: {e}"));
        let output = Arc::new(Lines::default());
        collect(child.stderr.take().expect("piped stderr"), output.clone());
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(url) = l.strip_prefix("listening on ") {
                    return Some(url.trim().to_string());
                }
                output.push(l);
            }
            None
        })
        .await;
        let base_url = match ready {
            Ok(Some(u)) => u,
            Ok(None) => panic!("interop: {what} exited before listening:\n{}", output.text()),
            Err(_) => panic!("interop: {what} did not listen within 30 s:\n{}", output.text()),
        };
        collect(lines.into_inner(), output.clone());
        NodeServer { child, base_url, output }
    }

    /// What the server printed (its errors), for failure messages.
    pub fn output(&self) -> String {
        self.output.text()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The Express app of tests/interop/express-app, signed in by @okta/oidc-middleware as bsr-local.
pub type ExpressApp = NodeServer;

/// Starts the Express app against `issuer`; `extra` adds environment (NODE_EXTRA_CA_CERTS).
pub async fn start_express_app(issuer: &str, extra: &[(&str, String)]) -> ExpressApp {
    let mut env: Vec<(&str, String)> =
        vec![("ISSUER", issuer.to_string()), ("CLIENT_ID", "bsr-local".into()), ("CLIENT_SECRET", "bsr-local-secret".into())];
    if !issuer.starts_with("https://") {
        // The middleware's own testing flag, which an http:// issuer needs (an https one runs without it).
        env.push(("OKTA_TESTING_DISABLE_HTTPS_CHECK", "1".into()));
    }
    env.extend(extra.iter().cloned());
    NodeServer::start("express-app/server.js", &env, "the Express app (oidc-middleware)").await
}

/// One page a [`Browser`] ended on.
#[derive(Debug)]
pub struct Page {
    pub url: String,
    pub status: u16,
    pub body: String,
    /// Every URL visited on the way, for failure messages.
    pub trail: Vec<String>,
}

/// A cookie-keeping HTTP client that follows redirects itself (so it can stop at a redirect URI) and signs
/// in on mock-idp's hosted page when a redirect lands there, as a person with a browser would.
pub struct Browser {
    pub http: reqwest::Client,
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The `value` of the hidden input named `name` on a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(html_unescape(&rest[v..v + end]))
}

impl Browser {
    /// `ca_pem` is the IdP's CA when it serves https.
    pub fn new(ca_pem: Option<&str>) -> Browser {
        // reqwest's rustls (enabled in the workspace without a provider) needs one even for http.
        install_rustls_provider();
        let mut b = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("the CA PEM parses"));
        }
        Browser { http: b.build().expect("reqwest client") }
    }

    /// GETs `url` and follows redirects (at most 20); on mock-idp's hosted sign-in page it submits `user` and
    /// [`PASSWORD`]. Stops at the first redirect to a URL starting with `stop_at` (returned as `url`, status
    /// 302, without requesting it), or at the first answer that is not a redirect.
    pub async fn browse(&self, url: &str, user: Option<&str>, stop_at: Option<&str>) -> Page {
        let mut trail = Vec::new();
        let mut next = url.to_string();
        let mut signed_in = false;
        for _ in 0..20 {
            if let Some(stop) = stop_at
                && next.starts_with(stop)
                && !trail.is_empty()
            {
                return Page { url: next, status: 302, body: String::new(), trail };
            }
            trail.push(next.clone());
            let r = self.http.get(&next).send().await.unwrap_or_else(|e| panic!("GET {next}: {e} (visited {trail:?})"));
            let status = r.status().as_u16();
            let location = r.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
            let here = r.url().clone();
            let body = r.text().await.unwrap_or_default();
            if let Some(loc) = location.filter(|_| (300..400).contains(&status)) {
                next = here.join(&loc).unwrap_or_else(|e| panic!("bad Location {loc:?}: {e}")).to_string();
                continue;
            }
            if body.contains("id=\"signin-form\"")
                && let Some(user) = user.filter(|_| !signed_in)
            {
                signed_in = true;
                let from = hidden_field(&body, "fromURI").expect("the sign-in form has fromURI");
                let csrf = hidden_field(&body, "csrf").expect("the sign-in form has csrf");
                let action = here.join("/login/login.htm").expect("join").to_string();
                trail.push(format!("POST {action}"));
                let r = self
                    .http
                    .post(&action)
                    .form(&[("username", user), ("password", PASSWORD), ("fromURI", from.as_str()), ("csrf", csrf.as_str())])
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("POST {action}: {e}"));
                let st = r.status().as_u16();
                let loc = r.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
                let Some(loc) = loc else {
                    let body = r.text().await.unwrap_or_default();
                    return Page { url: action, status: st, body, trail };
                };
                next = here.join(&loc).expect("join").to_string();
                continue;
            }
            return Page { url: here.to_string(), status, body, trail };
        }
        panic!("more than 20 redirects: {trail:?}");
    }
}

/// A plain reqwest client (for the System Log and control calls).
pub fn http_client() -> reqwest::Client {
    install_rustls_provider();
    reqwest::Client::new()
}

/// rustls needs one process-wide crypto provider for reqwest's https; aws-lc-rs is the workspace's backend.
pub fn install_rustls_provider() {
    mock_idp::tls::install_default_provider();
}
