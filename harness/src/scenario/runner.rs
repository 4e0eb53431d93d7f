//! Runs one scenario: an isolated in-process IdP (or a running one, reset first) and a stub BSR, actors
//! with their own or shared cookie jars, steps in order, expectations checked with exact values.
//!
//! The runner talks to the service provider only over HTTP, and to the IdP only through its public APIs
//! (Okta's management API shapes and `/_mock/*`), so a scenario runs the same against any of them. Clocks:
//! the IdP's moves through `/_mock/clock`, the stub BSR's through the clock handle the runner gave it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use mock_idp::config::{AssignmentConfig, GroupConfig, GroupProfileConfig, RefreshTokenConfig, UserConfig};
use mock_idp::core::model::{GroupsClaim, RefreshNonce, RotationType, UserProfile, UserStatus};
use mock_idp::{Clock, MockIdp, Options, TenantConfig};
use reqwest::cookie::Jar;
use serde::Serialize;
use serde_json::{Value, json};

use super::model::*;
use crate::bsr::config::{BsrConfig, SsoSettings};

/// Where the scenario's IdP comes from.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Use an already running mock-idp at this URL (reset before the scenario) instead of an in-process one.
    pub idp_url: Option<String>,
    /// Chromium is available for `via: browser` steps.
    pub browser_available: bool,
    /// Node.js is available for external targets.
    pub node_available: bool,
    /// An external service provider to drive instead of the stub BSR.
    pub target: Option<crate::target::TargetFile>,
    /// Browser sessions on this running WebDriver instead of a chromedriver started here (`None`: the
    /// `HARNESS_WEBDRIVER_URL` environment variable, else a local chromedriver).
    pub webdriver_url: Option<String>,
    /// The address the scenario's stub BSR and in-process IdP listen on (`None`: 127.0.0.1).
    pub listen_host: Option<std::net::IpAddr>,
    /// The host name in their URLs: what the browser opens, the redirect URIs registered at the IdP
    /// (`None`: the listen host, or 127.0.0.1 when that is 0.0.0.0 or ::).
    pub public_host: Option<String>,
}

impl RunOptions {
    fn listen_ip(&self) -> std::net::IpAddr {
        self.listen_host.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    /// `http://{public host}:{port}`, the base URL of a server of this run listening on `port`.
    pub(crate) fn public_base(&self, port: u16) -> String {
        let host = match &self.public_host {
            Some(h) => h.clone(),
            None if self.listen_ip().is_unspecified() => "127.0.0.1".into(),
            None => self.listen_ip().to_string(),
        };
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
        format!("http://{host}:{port}")
    }
}

/// One HTTP exchange the runner made, for the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRecord {
    pub step: usize,
    pub actor: String,
    pub method: String,
    pub url: String,
    pub status: u16,
    /// The IdP clock when the request was sent (ms).
    pub idp_time_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub action: String,
    pub label: Option<String>,
    pub ok: bool,
    pub message: Option<String>,
    pub idp_time_ms: i64,
    /// Wall time the step took.
    pub duration_ms: u128,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed { step: Option<usize>, message: String },
    Skipped { reason: String },
}

impl Outcome {
    /// What `--repeat` compares between runs.
    pub fn signature(&self) -> String {
        match self {
            Outcome::Passed => "passed".into(),
            Outcome::Failed { step, message } => format!("failed at step {step:?}: {message}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        }
    }
}

/// Everything a report needs about one run of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub file: String,
    pub description: String,
    pub case: Option<String>,
    pub tags: Vec<String>,
    pub clause: Option<String>,
    pub level: Option<String>,
    pub outcome: Outcome,
    pub expect_failure: Option<String>,
    pub duration_ms: u128,
    pub steps: Vec<StepRecord>,
    pub http: Vec<HttpRecord>,
    /// The IdP's request log (`/_mock/requests`) at the end.
    pub idp_requests: Vec<Value>,
    /// The IdP's System Log at the end.
    pub idp_events: Vec<Value>,
    /// Grace period of `bsr-local`, for shading grace windows in the timeline.
    pub leeway_s: u8,
    /// The IdP clock when the scenario started (ms).
    pub started_idp_ms: i64,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
    url: String,
}

struct Actor {
    http: reqwest::Client,
    refresh_tokens: Vec<String>,
    last_tokens: Option<Value>,
}

struct Env {
    idp_base: String,
    local_idp: Option<MockIdp>,
    bsr: Option<crate::bsr::StubBsr>,
    bsr_base: String,
    /// The service provider's HTTP surface (the stub's or the external target's).
    sp: crate::target::Surface,
    sp_clock: Clock,
    config: TenantConfig,
    actors: HashMap<String, Actor>,
    jars: HashMap<String, Arc<Jar>>,
    control: reqwest::Client,
    http: Vec<HttpRecord>,
    step: usize,
    admin_jar: Option<reqwest::Client>,
    /// The shared IdP's clock as last reported (a remote IdP cannot be read synchronously).
    remote_now: std::sync::atomic::AtomicI64,
    /// Chromium, launched on the first browser step; browser actors are tabs of its one profile.
    browser: Option<crate::browser::Browser>,
    tabs: HashMap<String, crate::browser::Tab>,
    /// Where the browser runs: a running WebDriver, or `None` for [`crate::browser::Browser::launch`].
    webdriver_url: Option<String>,
}

const ADMIN: &str = "SSWS mock-admin-token";

fn client_with(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Applies a scenario's IdP setup to the default tenant.
pub fn tenant_for(s: &Scenario) -> Result<TenantConfig, String> {
    let mut cfg = TenantConfig::default_tenant();
    for (client_id, o) in &s.idp.apps {
        let app = cfg
            .apps
            .iter_mut()
            .find(|a| &a.credentials.oauth_client.client_id == client_id)
            .ok_or_else(|| format!("idp.apps.{client_id}: no app with this client_id in the default tenant"))?;
        let st = &mut app.settings.oauth_client;
        if let Some(g) = &o.grant_types {
            st.grant_types = g.clone();
            if !g.iter().any(|x| x == "refresh_token") {
                st.refresh_token = None;
            }
        }
        if o.rotation_type.is_some() || o.leeway.is_some() {
            let cur = st.refresh_token.unwrap_or(RefreshTokenConfig { rotation_type: RotationType::Rotate, leeway: 30 });
            let rotation_type = match o.rotation_type.as_deref() {
                None => cur.rotation_type,
                Some("ROTATE") => RotationType::Rotate,
                Some("STATIC") => RotationType::Static,
                Some(x) => return Err(format!("idp.apps.{client_id}.rotation_type: ROTATE or STATIC, got {x}")),
            };
            let leeway = o.leeway.unwrap_or(cur.leeway);
            if leeway > 60 {
                return Err(format!("idp.apps.{client_id}.leeway: leeway must be between 0 and 60 seconds (Okta's range), got {leeway}"));
            }
            st.refresh_token = Some(RefreshTokenConfig { rotation_type, leeway });
        }
        if o.groups_claim == Some(true) {
            st.groups_claim =
                Some(GroupsClaim { name: "groups".into(), filter_type: mock_idp::core::model::GroupFilterType::Regex, value: ".*".into() });
        }
        if let Some(v) = o.access_token_lifetime_seconds {
            app.mock.access_token_lifetime_seconds = Some(v);
        }
        if let Some(v) = o.refresh_token_lifetime_seconds {
            app.mock.refresh_token_lifetime_seconds = Some(v);
        }
        if let Some(v) = o.pkce_required {
            app.credentials.oauth_client.pkce_required = Some(v);
        }
        match o.refresh_nonce.as_deref() {
            None => {}
            Some("omit") => app.mock.refresh_nonce = RefreshNonce::Omit,
            Some("echo") => app.mock.refresh_nonce = RefreshNonce::Echo,
            Some(x) => return Err(format!("idp.apps.{client_id}.refresh_nonce: omit or echo, got {x}")),
        }
    }
    for (id, o) in &s.idp.servers {
        let srv = cfg.authorization_servers.iter_mut().find(|x| &x.id == id).ok_or_else(|| format!("idp.servers.{id}: no such server"))?;
        let rule = srv
            .policies
            .first_mut()
            .and_then(|p| p.rules.first_mut())
            .ok_or_else(|| format!("idp.servers.{id}: the server has no policy rule"))?;
        let t = &mut rule.actions.token;
        if let Some(v) = o.access_token_lifetime_minutes {
            t.access_token_lifetime_minutes = v;
        }
        if let Some(v) = o.refresh_token_lifetime_minutes {
            t.refresh_token_lifetime_minutes = v;
        }
        if let Some(v) = o.refresh_token_window_minutes {
            t.refresh_token_window_minutes = v;
        }
        mock_idp::config::check_lifetimes(t).map_err(|(f, m)| format!("idp.servers.{id}.{f}: {m}"))?;
    }
    for g in &s.idp.groups {
        cfg.groups.push(GroupConfig {
            id: None,
            profile: GroupProfileConfig { name: g.name.clone(), description: None },
            members: g.members.clone(),
        });
        if let Some(app) = &g.assign_to {
            cfg.assignments.push(AssignmentConfig { app: app.clone(), user: None, group: Some(g.name.clone()) });
        }
    }
    for u in &s.idp.users {
        let status = match u.status.as_deref() {
            None => UserStatus::Active,
            Some(x) => serde_json::from_value(json!(x)).map_err(|_| format!("idp.users[{}].status: unknown status {x}", u.login))?,
        };
        let email = match &u.email {
            None => Some(u.login.clone()),
            Some(e) => e.clone(),
        };
        let profile = UserProfile {
            login: u.login.clone(),
            email,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            email_verified: true,
            ..UserProfile::default()
        };
        cfg.users.push(UserConfig {
            id: None,
            status,
            profile,
            credentials: Some(mock_idp::config::CredentialsConfig {
                password: Some(mock_idp::config::PasswordConfig { value: u.password.clone() }),
            }),
        });
        for gname in &u.groups {
            let g = cfg
                .groups
                .iter_mut()
                .find(|g| &g.profile.name == gname)
                .ok_or_else(|| format!("idp.users[{}].groups: no group {gname}", u.login))?;
            g.members.push(u.login.clone());
        }
    }
    for a in &s.idp.assignments {
        cfg.assignments.push(AssignmentConfig { app: a.app.clone(), user: a.user.clone(), group: a.group.clone() });
    }
    cfg.check("scenario tenant").map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn leeway_of(cfg: &TenantConfig) -> u8 {
    cfg.apps
        .iter()
        .find(|a| a.credentials.oauth_client.client_id == "bsr-local")
        .and_then(|a| a.settings.oauth_client.refresh_token)
        .map(|r| r.leeway)
        .unwrap_or(0)
}

impl Env {
    fn idp_now(&self) -> i64 {
        self.local_idp.as_ref().map(|i| i.clock().now_ms()).unwrap_or_else(|| self.remote_now.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn resolve_issuer(&self, spec: &str) -> String {
        match spec {
            "org" => self.idp_base.clone(),
            s if s.contains("{org}") => s.replace("{org}", &self.idp_base),
            id => format!("{}/oauth2/{id}", self.idp_base),
        }
    }

    fn actor(&mut self, name: &str, spec: Option<&ActorSpec>) -> &mut Actor {
        if !self.actors.contains_key(name) {
            let jar_name = spec.and_then(|s| s.jar.clone()).unwrap_or_else(|| name.to_string());
            let jar = self.jars.entry(jar_name).or_insert_with(|| Arc::new(Jar::default())).clone();
            self.actors.insert(name.to_string(), Actor { http: client_with(jar), refresh_tokens: Vec::new(), last_tokens: None });
        }
        self.actors.get_mut(name).expect("inserted above")
    }

    async fn send(&mut self, actor: &str, req: reqwest::RequestBuilder, method: &str, url: &str) -> Result<Resp, String> {
        let t = self.idp_now();
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                // No response at all (a dropped connection): status 0, so scenarios can expect it.
                self.http.push(HttpRecord {
                    step: self.step,
                    actor: actor.into(),
                    method: method.into(),
                    url: strip_query(url),
                    status: 0,
                    idp_time_ms: t,
                });
                return Ok(Resp { status: 0, headers: Default::default(), body: format!("no response: {e}"), url: url.to_string() });
            }
        };
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let final_url = r.url().to_string();
        let body = r.text().await.unwrap_or_default();
        self.http.push(HttpRecord {
            step: self.step,
            actor: actor.into(),
            method: method.into(),
            url: strip_query(url),
            status,
            idp_time_ms: t,
        });
        Ok(Resp { status, headers, body, url: final_url })
    }

    /// Follows redirects like a browser, submitting the IdP's hosted sign-in form when it appears.
    async fn navigate(&mut self, actor: &str, start: &str, user: &str, password: &str) -> Result<Resp, String> {
        let http = self.actors[actor].http.clone();
        let mut url = start.to_string();
        let mut submitted = false;
        for _ in 0..20 {
            let r = self.send(actor, http.get(&url), "GET", &url).await?;
            if (300..400).contains(&r.status) {
                let loc = r.headers.get("location").and_then(|v| v.to_str().ok()).ok_or("a redirect without Location")?;
                url = join(&url, loc)?;
                continue;
            }
            if r.status == 200 && r.body.contains("id=\"signin-form\"") && !submitted {
                submitted = true;
                let csrf = hidden(&r.body, "csrf").ok_or("the sign-in page has no csrf field")?;
                let from = hidden(&r.body, "fromURI").ok_or("the sign-in page has no fromURI field")?;
                let post_url = join(&url, "/login/login.htm")?;
                let form = [("username", user), ("password", password), ("fromURI", from.as_str()), ("csrf", csrf.as_str())];
                let r = self.send(actor, http.post(&post_url).form(&form), "POST", &post_url).await?;
                if (300..400).contains(&r.status) {
                    let loc = r.headers.get("location").and_then(|v| v.to_str().ok()).ok_or("a redirect without Location")?;
                    url = join(&post_url, loc)?;
                    continue;
                }
                return Ok(Resp { url: post_url, ..r });
            }
            return Ok(Resp { url, ..r });
        }
        Err(format!("more than 20 redirects from {start}"))
    }

    fn is_browser_actor(&self, s: &Scenario, actor: &str) -> bool {
        self.tabs.contains_key(actor) || s.actors.get(actor).and_then(|a| a.kind.as_deref()) == Some("browser")
    }

    /// The actor's tab, opening Chromium (once per scenario) and the tab on first use.
    async fn tab(&mut self, actor: &str) -> Result<crate::browser::Tab, String> {
        if let Some(t) = self.tabs.get(actor) {
            return Ok(t.clone());
        }
        if self.browser.is_none() {
            let b = crate::browser::Browser::launch_with(self.webdriver_url.as_deref()).await;
            self.browser = Some(b.map_err(|e| format!("cannot start Chromium: {e:#}"))?);
        }
        let b = self.browser.as_ref().ok_or("no browser")?;
        let t = b.new_tab().await.map_err(|e| format!("cannot open a tab: {e:#}"))?;
        self.tabs.insert(actor.to_string(), t.clone());
        Ok(t)
    }

    /// The actor's tab, on the service provider's origin (so relative fetches go there).
    async fn tab_on_sp(&mut self, actor: &str) -> Result<crate::browser::Tab, String> {
        let tab = self.tab(actor).await?;
        let here = tab.current_url().await.unwrap_or_default();
        if !here.starts_with(&self.sp.base_url) {
            tab.goto(&format!("{}/", self.sp.base_url)).await.map_err(|e| format!("{e:#}"))?;
        }
        Ok(tab)
    }

    /// A page's state as a response, for expectations.
    async fn tab_resp(&mut self, actor: &str, tab: &crate::browser::Tab, method: &str) -> Result<Resp, String> {
        let url = tab.current_url().await.map_err(|e| format!("{e:#}"))?;
        let status = tab.status().await.unwrap_or(0);
        let body = tab.source().await.map_err(|e| format!("{e:#}"))?;
        let t = self.idp_now();
        self.http.push(HttpRecord {
            step: self.step,
            actor: actor.into(),
            method: method.into(),
            url: strip_query(&url),
            status,
            idp_time_ms: t,
        });
        Ok(Resp { status, headers: Default::default(), body, url })
    }

    async fn control_get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.idp_base);
        let r = self.control.get(&url).header("authorization", ADMIN).send().await.map_err(|e| format!("GET {path}: {e}"))?;
        let s = r.status();
        let v: Value = r.json().await.map_err(|e| format!("GET {path}: not JSON: {e}"))?;
        if !s.is_success() {
            return Err(format!("GET {path}: {s} {v}"));
        }
        Ok(v)
    }

    async fn control_send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.idp_base);
        let mut rb = self.control.request(method.clone(), &url).header("authorization", ADMIN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let s = r.status();
        let text = r.text().await.unwrap_or_default();
        if !s.is_success() {
            return Err(format!("{method} {path}: {s} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn user_id(&self, login: &str) -> Result<String, String> {
        let u = self.control_get(&format!("/api/v1/users/{}", urlenc(login))).await?;
        u["id"].as_str().map(str::to_string).ok_or_else(|| format!("no id for user {login}"))
    }

    async fn app_id(&self, client_id: &str) -> Result<String, String> {
        let apps = self.control_get("/api/v1/apps").await?;
        apps.as_array()
            .and_then(|a| a.iter().find(|x| x["credentials"]["oauthClient"]["client_id"] == client_id))
            .and_then(|x| x["id"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no app with client_id {client_id}"))
    }

    async fn group_id(&self, name: &str) -> Result<String, String> {
        let gs = self.control_get(&format!("/api/v1/groups?q={}", urlenc(name))).await?;
        gs.as_array()
            .and_then(|a| a.iter().find(|x| x["profile"]["name"] == name))
            .and_then(|x| x["id"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no group named {name}"))
    }

    async fn move_idp_clock(&self, m: &ClockMove) -> Result<(), String> {
        let mut body = serde_json::Map::new();
        if let Some(v) = m.advance_seconds {
            body.insert("advance_seconds".into(), json!(v));
        }
        if let Some(v) = m.advance_ms {
            body.insert("advance_ms".into(), json!(v));
        }
        if let Some(v) = m.offset_seconds {
            body.insert("offset_seconds".into(), json!(v));
        }
        if let Some(v) = &m.set {
            body.insert("set".into(), json!(v));
        }
        let v = self.control_send(reqwest::Method::POST, "/_mock/clock", Some(Value::Object(body))).await?;
        if let Some(ms) = v["now"].as_str().and_then(mock_idp::clock::parse_rfc3339) {
            self.remote_now.store(ms, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn move_sp_clock(&self, m: &ClockMove) -> Result<(), String> {
        if let Some(v) = &m.set {
            let ms = mock_idp::clock::parse_rfc3339(v).ok_or_else(|| format!("sp.set: not RFC 3339: {v}"))?;
            self.sp_clock.set_ms(ms);
        }
        if let Some(v) = m.offset_seconds {
            self.sp_clock.advance_ms(v * 1000);
        }
        if let Some(v) = m.advance_seconds {
            self.sp_clock.advance_ms((v * 1000.0).round() as i64);
        }
        if let Some(v) = m.advance_ms {
            self.sp_clock.advance_ms(v);
        }
        Ok(())
    }

    /// An administrator signed in to the stub through its admin form (csrf field and cookie included).
    async fn admin_client(&mut self) -> Result<reqwest::Client, String> {
        if let Some(c) = &self.admin_jar {
            return Ok(c.clone());
        }
        let c = client_with(Arc::new(Jar::default()));
        let url = format!("{}/admin/login", self.bsr_base);
        let page = c.get(&url).send().await.map_err(|e| format!("GET /admin/login: {e}"))?.text().await.unwrap_or_default();
        let csrf = hidden(&page, "csrf").ok_or("the admin sign-in page has no csrf field")?;
        let r = c
            .post(&url)
            .form(&[("username", "admin"), ("password", "admin-password"), ("csrf", csrf.as_str())])
            .send()
            .await
            .map_err(|e| format!("POST /admin/login: {e}"))?;
        if !r.status().is_redirection() {
            return Err(format!("the stub BSR refused the admin sign-in: {}", r.status()));
        }
        self.admin_jar = Some(c.clone());
        Ok(c)
    }

    async fn check(&mut self, c: &Check) -> Result<(), String> {
        for (actor, want) in &c.sessions {
            let url = format!("{}{}", self.sp.base_url, self.sp.whoami_path);
            let r = if self.tabs.contains_key(actor) {
                let tab = self.tab_on_sp(actor).await?;
                let (status, body) = tab.fetch(&self.sp.whoami_path).await.map_err(|e| format!("{e:#}"))?;
                let t = self.idp_now();
                self.http.push(HttpRecord {
                    step: self.step,
                    actor: actor.clone(),
                    method: "GET".into(),
                    url: url.clone(),
                    status,
                    idp_time_ms: t,
                });
                Resp { status, headers: Default::default(), body, url }
            } else {
                let http = self.actor(actor, None).http.clone();
                self.send(actor, http.get(&url).header("accept", "application/json"), "GET", &url).await?
            };
            let got = if r.status == 200 { SessionState::SignedIn } else { SessionState::SignedOut };
            if got != *want {
                return Err(format!(
                    "session of {actor}: expected {want:?}, got {got:?} (GET /api/me answered {} {})",
                    r.status,
                    trim(&r.body)
                ));
            }
        }
        for (actor, email) in &c.whoami {
            let url = format!("{}{}", self.sp.base_url, self.sp.whoami_path);
            let r = if self.tabs.contains_key(actor) {
                let tab = self.tab_on_sp(actor).await?;
                let (status, body) = tab.fetch(&self.sp.whoami_path).await.map_err(|e| format!("{e:#}"))?;
                Resp { status, headers: Default::default(), body, url: url.clone() }
            } else {
                let http = self.actor(actor, None).http.clone();
                self.send(actor, http.get(&url).header("accept", "application/json"), "GET", &url).await?
            };
            if r.status != 200 {
                return Err(format!("whoami of {actor}: expected 200 naming {email}, got {} {}", r.status, trim(&r.body)));
            }
            let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("whoami of {actor}: not JSON ({e}): {}", trim(&r.body)))?;
            let got = v.pointer(&self.sp.email_pointer).cloned().unwrap_or(Value::Null);
            if got != json!(email) {
                return Err(format!("whoami of {actor}: {} expected {email:?}, got {got}", self.sp.email_pointer));
            }
        }
        if let Some(want) = &c.bsr_users {
            if !self.sp.is_stub {
                return Err("bsr_users checks the stub BSR's user store; it does not apply to an external target".into());
            }
            let admin = self.admin_client().await?;
            let url = format!("{}/admin/users", self.bsr_base);
            let r = admin.get(&url).header("accept", "application/json").send().await.map_err(|e| format!("GET /admin/users: {e}"))?;
            let v: Value = r.json().await.map_err(|e| format!("GET /admin/users: not JSON: {e}"))?;
            let list = v.get("users").unwrap_or(&v);
            let mut got: Vec<BsrUser> = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|u| BsrUser {
                            username: u["username"].as_str().unwrap_or_default().to_string(),
                            email: u["email"].as_str().unwrap_or_default().to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            got.sort_by(|a, b| a.username.cmp(&b.username));
            let mut want = want.clone();
            want.sort_by(|a, b| a.username.cmp(&b.username));
            if got != want {
                return Err(format!("provisioned users: expected {}, got {}", users_str(&want), users_str(&got)));
            }
        }
        for e in &c.events {
            let mut filter = format!("eventType eq \"{}\"", e.event_type);
            if let Some(o) = &e.outcome {
                filter.push_str(&format!(" and outcome.result eq \"{o}\""));
            }
            let v = self.control_get(&format!("/api/v1/logs?limit=1000&filter={}", urlenc(&filter))).await?;
            let evs = v.as_array().cloned().unwrap_or_default();
            if evs.len() != e.count {
                return Err(format!("System Log events {filter}: expected {}, got {}", e.count, evs.len()));
            }
            for ev in &evs {
                for (k, want) in &e.debug {
                    let got = &ev["debugContext"]["debugData"][k];
                    if got != want {
                        return Err(format!("System Log event {}: debugData.{k}: expected {want}, got {got}", e.event_type));
                    }
                }
            }
        }
        if !c.requests.is_empty() {
            let v = self.control_get("/_mock/requests").await?;
            let all = v.as_array().cloned().unwrap_or_default();
            for rc in &c.requests {
                let n = all
                    .iter()
                    .filter(|r| r["endpoint"] == rc.endpoint.as_str())
                    .filter(|r| rc.grant_type.as_ref().is_none_or(|g| r["grant_type"] == g.as_str()))
                    .filter(|r| rc.status.is_none_or(|s| r["status"] == s))
                    .count();
                if n != rc.count {
                    return Err(format!(
                        "IdP requests endpoint={}{}{}: expected {}, got {n}",
                        rc.endpoint,
                        rc.grant_type.as_ref().map(|g| format!(" grant_type={g}")).unwrap_or_default(),
                        rc.status.map(|s| format!(" status={s}")).unwrap_or_default(),
                        rc.count
                    ));
                }
            }
        }
        Ok(())
    }
}

fn users_str(v: &[BsrUser]) -> String {
    let items: Vec<String> = v.iter().map(|u| format!("{} <{}>", u.username, u.email)).collect();
    format!("[{}]", items.join(", "))
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn strip_query(u: &str) -> String {
    // Query strings carry codes, tokens and state: the timeline keeps only the path.
    u.split(['?', '#']).next().unwrap_or(u).to_string()
}

/// A short, readable form of a response body for messages: the visible text of an HTML page (without
/// head, style and script), or the start of anything else.
fn trim(s: &str) -> String {
    let text = if s.trim_start().starts_with('<') { visible_text(s) } else { s.to_string() };
    let t: String = text.chars().take(300).collect();
    if t.len() < text.len() { format!("{t}…") } else { t }
}

fn visible_text(html: &str) -> String {
    let mut body = html;
    if let Some(i) = body.find("<body") {
        body = &body[i..];
    }
    let mut out = String::new();
    let mut in_tag = false;
    let mut skip_until: Option<&str> = None;
    let mut i = 0;
    let bytes = body.as_bytes();
    while i < bytes.len() {
        if let Some(end) = skip_until {
            if body[i..].starts_with(end) {
                i += end.len();
                skip_until = None;
            } else {
                i += 1;
            }
            continue;
        }
        if body[i..].starts_with("<style") {
            skip_until = Some("</style>");
            continue;
        }
        if body[i..].starts_with("<script") {
            skip_until = Some("</script>");
            continue;
        }
        let c = body[i..].chars().next().unwrap_or(' ');
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
        i += c.len_utf8();
    }
    let unescaped = out.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'");
    unescaped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn join(base: &str, loc: &str) -> Result<String, String> {
    let b = url::Url::parse(base).map_err(|e| format!("bad URL {base}: {e}"))?;
    b.join(loc).map(|u| u.to_string()).map_err(|e| format!("bad redirect {loc}: {e}"))
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">"))
}

fn check_responses(exp: &Expect, rs: &[Resp]) -> Result<(), String> {
    let Some(last) = rs.last() else { return Err("no response".into()) };
    if let Some(s) = exp.status {
        for r in rs {
            if r.status != s {
                return Err(format!("status: expected {s}, got {} (body: {})", r.status, trim(&r.body)));
            }
        }
    }
    if let Some(want) = &exp.statuses {
        let mut got: BTreeMap<u16, usize> = BTreeMap::new();
        for r in rs {
            *got.entry(r.status).or_default() += 1;
        }
        if &got != want {
            return Err(format!("statuses: expected {want:?}, got {got:?}"));
        }
    }
    for (k, v) in &exp.headers {
        let got = last.headers.get(k.as_str()).and_then(|h| h.to_str().ok());
        if got != Some(v.as_str()) {
            return Err(format!("header {k}: expected {v:?}, got {got:?}"));
        }
    }
    for t in &exp.body_contains {
        if !last.body.contains(t.as_str()) {
            return Err(format!("body does not contain {t:?}; body: {}", trim(&last.body)));
        }
    }
    for t in &exp.body_not_contains {
        if last.body.contains(t.as_str()) {
            return Err(format!("body contains {t:?}"));
        }
    }
    if !exp.json.is_empty() {
        let v: Value = serde_json::from_str(&last.body).map_err(|e| format!("body is not JSON ({e}): {}", trim(&last.body)))?;
        for (ptr, want) in &exp.json {
            let got = v.pointer(ptr).cloned().unwrap_or(Value::Null);
            if &got != want {
                return Err(format!("JSON {ptr}: expected {want}, got {got}"));
            }
        }
    }
    if let Some(p) = &exp.final_path {
        let got = url::Url::parse(&last.url).map(|u| u.path().to_string()).unwrap_or_default();
        if &got != p {
            return Err(format!("final path: expected {p}, got {got} ({})", strip_query(&last.url)));
        }
    }
    if exp.same_refresh_token == Some(true) {
        let mut rts: Vec<String> = rs
            .iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok().and_then(|v| v["refresh_token"].as_str().map(str::to_string)))
            .collect();
        rts.sort();
        rts.dedup();
        if rts.len() != 1 {
            return Err(format!("expected every success to carry one refresh token, got {} distinct", rts.len()));
        }
    }
    Ok(())
}

impl ScenarioReport {
    /// The report of a scenario whose run crashed.
    pub fn crashed(name: &str, file: &str, message: &str) -> Self {
        ScenarioReport {
            name: name.into(),
            file: file.into(),
            description: String::new(),
            case: None,
            tags: Vec::new(),
            clause: None,
            level: None,
            outcome: Outcome::Failed { step: None, message: message.into() },
            expect_failure: None,
            duration_ms: 0,
            steps: Vec::new(),
            http: Vec::new(),
            idp_requests: Vec::new(),
            idp_events: Vec::new(),
            leeway_s: 0,
            started_idp_ms: 0,
        }
    }
}

/// Runs one scenario and reports what happened.
pub async fn run(loaded: &super::load::Loaded, opts: &RunOptions) -> ScenarioReport {
    crate::crypto::install();
    let s = &loaded.scenario;
    let started = Instant::now();
    let mut report = ScenarioReport {
        name: s.name.clone(),
        file: loaded.path.display().to_string(),
        description: s.description.clone(),
        case: s.case.clone(),
        tags: s.tags.clone(),
        clause: s.clause.clone(),
        level: s.level.clone(),
        outcome: Outcome::Passed,
        expect_failure: s.expect_failure.clone(),
        duration_ms: 0,
        steps: Vec::new(),
        http: Vec::new(),
        idp_requests: Vec::new(),
        idp_events: Vec::new(),
        leeway_s: 0,
        started_idp_ms: 0,
    };
    match &opts.target {
        Some(t) if !s.targets.iter().any(|x| x == "external") => {
            report.outcome = Outcome::Skipped { reason: format!("runs against the stub BSR only, not the external target {}", t.name) };
            return report;
        }
        None if !s.targets.iter().any(|x| x == "stub") => {
            report.outcome = Outcome::Skipped { reason: "runs against an external target only (give --target FILE)".into() };
            return report;
        }
        _ => {}
    }
    let uses_browser = s.requires.iter().any(|r| r == "browser")
        || s.steps.iter().any(|st| matches!(&st.action, Action::SignIn(si) if si.via.as_deref() == Some("browser")));
    if uses_browser && !opts.browser_available {
        report.outcome = Outcome::Skipped {
            reason: "needs Chromium and chromedriver, which are not installed (or give --webdriver-url for a running WebDriver)".into(),
        };
        return report;
    }
    if s.requires.iter().any(|r| r == "node") && !opts.node_available {
        report.outcome = Outcome::Skipped { reason: "needs Node.js, which is not installed".into() };
        return report;
    }
    let (outcome, env) = run_inner(s, opts, &mut report).await;
    report.outcome = match (&s.expect_failure, outcome) {
        (None, o) => o,
        (Some(want), Outcome::Failed { step, message }) if message.contains(want.as_str()) => {
            let _ = step;
            Outcome::Passed
        }
        (Some(want), Outcome::Failed { step, message }) => {
            Outcome::Failed { step, message: format!("expected a failure containing {want:?}, but it failed with: {message}") }
        }
        (Some(want), Outcome::Passed) => Outcome::Failed {
            step: None,
            message: format!("expected the scenario to fail with {want:?} (a reproduction), but every step passed"),
        },
        (Some(_), o) => o,
    };
    if let Some(env) = env {
        report.idp_requests = env.control_get("/_mock/requests").await.ok().and_then(|v| v.as_array().cloned()).unwrap_or_default();
        report.idp_events = env.control_get("/api/v1/logs?limit=1000").await.ok().and_then(|v| v.as_array().cloned()).unwrap_or_default();
        report.http = env.http.clone();
        // Dropping the handles stops both servers at once; a graceful shutdown would wait for the actors'
        // idle keep-alive connections. Chromium is closed properly (its Drop would only kill it).
        let mut env = env;
        if let Some(b) = env.browser.take() {
            env.tabs.clear();
            b.close().await;
        }
        drop(env);
    }
    report.duration_ms = started.elapsed().as_millis();
    report
}

async fn run_inner(s: &Scenario, opts: &RunOptions, report: &mut ScenarioReport) -> (Outcome, Option<Env>) {
    let cfg = match tenant_for(s) {
        Ok(c) => c,
        Err(e) => return (Outcome::Failed { step: None, message: format!("IdP setup: {e}") }, None),
    };
    report.leeway_s = leeway_of(&cfg);
    let control = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap_or_default();
    let remote = opts.idp_url.clone().or_else(|| opts.target.as_ref().and_then(|t| t.idp_url.clone()));
    if opts.target.is_some() && remote.is_none() {
        return (
            Outcome::Failed {
                step: None,
                message:
                    "an external target needs the running mock-idp it is configured against: give --idp-url or idp_url in the target file"
                        .into(),
            },
            None,
        );
    }
    let (idp_base, local_idp) = match &remote {
        Some(u) => {
            let base = u.trim_end_matches('/').to_string();
            // The shared IdP gets this scenario's tenant, fresh clock, no faults, empty logs.
            let mut tenant = match serde_json::to_value(&cfg) {
                Ok(v) => v,
                Err(e) => return (Outcome::Failed { step: None, message: format!("tenant: {e}") }, None),
            };
            // Keep the running IdP's own public base URL (it may be a docker-compose service name).
            if let Some(m) = tenant.as_object_mut() {
                m.remove("base_url");
            }
            match control.post(format!("{base}/_mock/reset")).json(&json!({"tenant": tenant})).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    let st = r.status();
                    let body = r.text().await.unwrap_or_default();
                    return (Outcome::Failed { step: None, message: format!("reset of the IdP at {base}: {st} {body}") }, None);
                }
                Err(e) => return (Outcome::Failed { step: None, message: format!("reset of the IdP at {base} failed: {e}") }, None),
            }
            // A shared IdP runs on its own clock. Against the stub BSR (whose clock the runner owns) it is
            // set and frozen at the stub's start, so a remote run decides exactly as an in-process one;
            // against an external target both sides run on real time.
            if opts.target.is_none() {
                let at = mock_idp::clock::rfc3339(Clock::test_default().now_ms());
                if let Err(e) = control.post(format!("{base}/_mock/clock")).json(&json!({"set": at, "freeze": true})).send().await {
                    return (Outcome::Failed { step: None, message: format!("setting the IdP clock at {base}: {e}") }, None);
                }
            }
            (base, None)
        }
        None => {
            // On the run's listen address; its issuer names the public host, so a browser elsewhere reaches it.
            let listener = match tokio::net::TcpListener::bind((opts.listen_ip(), 0)).await {
                Ok(l) => l,
                Err(e) => {
                    return (Outcome::Failed { step: None, message: format!("mock-idp cannot listen on {}: {e}", opts.listen_ip()) }, None);
                }
            };
            let mut config = cfg.clone();
            if config.base_url.is_none()
                && let Ok(a) = listener.local_addr()
            {
                config.base_url = Some(opts.public_base(a.port()));
            }
            match MockIdp::serve(listener, Options { config, ..Options::default() }).await {
                Ok(i) => (i.base_url().to_string(), Some(i)),
                Err(e) => return (Outcome::Failed { step: None, message: format!("mock-idp did not start: {e}") }, None),
            }
        }
    };
    let sp_clock = Clock::test_default();
    let mut env = Env {
        idp_base,
        local_idp,
        bsr: None,
        bsr_base: String::new(),
        sp: crate::target::Surface::stub(""),
        sp_clock: sp_clock.clone(),
        config: cfg,
        actors: HashMap::new(),
        jars: HashMap::new(),
        control,
        http: Vec::new(),
        step: 0,
        admin_jar: None,
        remote_now: std::sync::atomic::AtomicI64::new(0),
        browser: None,
        tabs: HashMap::new(),
        webdriver_url: opts.webdriver_url.clone(),
    };
    if env.local_idp.is_none()
        && let Ok(v) = env.control_get("/_mock/clock").await
        && let Some(ms) = v["now"].as_str().and_then(mock_idp::clock::parse_rfc3339)
    {
        env.remote_now.store(ms, std::sync::atomic::Ordering::Relaxed);
    }
    report.started_idp_ms = env.idp_now();
    if let Some(t) = &opts.target {
        env.sp = crate::target::Surface::external(t);
        if let Err(e) = register_redirects(&env).await {
            return (Outcome::Failed { step: None, message: format!("registering the target's redirect URIs: {e}") }, Some(env));
        }
        return run_steps(s, env, report).await;
    }
    // The stub BSR, configured with the issuer the scenario names.
    let mut bcfg = BsrConfig { switches: s.bsr.switches.clone(), clock: sp_clock, ..BsrConfig::default() };
    if !s.bsr.unconfigured {
        bcfg.sso = Some(SsoSettings::new(env.resolve_issuer(&s.bsr.issuer), "bsr-local", "bsr-local-secret"));
    }
    // On the run's listen address, with URLs (its pages, its redirect URIs) on the public host.
    let listener = match tokio::net::TcpListener::bind((opts.listen_ip(), 0)).await {
        Ok(l) => l,
        Err(e) => {
            return (
                Outcome::Failed { step: None, message: format!("the stub BSR cannot listen on {}: {e}", opts.listen_ip()) },
                Some(env),
            );
        }
    };
    if let Ok(a) = listener.local_addr() {
        bcfg.public_url = Some(opts.public_base(a.port()));
    }
    let bsr = match crate::bsr::StubBsr::serve(listener, bcfg).await {
        Ok(b) => b,
        Err(e) => return (Outcome::Failed { step: None, message: format!("the stub BSR did not start: {e}") }, Some(env)),
    };
    env.bsr_base = bsr.base_url().to_string();
    env.sp = crate::target::Surface::stub(&env.bsr_base);
    env.bsr = Some(bsr);
    // Register the stub's real redirect URIs at the IdP, as an administrator does when setting up the app.
    if let Err(e) = register_redirects(&env).await {
        return (Outcome::Failed { step: None, message: format!("registering the stub's redirect URIs: {e}") }, Some(env));
    }
    run_steps(s, env, report).await
}

async fn run_steps(s: &Scenario, mut env: Env, report: &mut ScenarioReport) -> (Outcome, Option<Env>) {
    for (name, spec) in &s.actors {
        env.actor(name, Some(spec));
    }
    for (i, step) in s.steps.iter().enumerate() {
        env.step = i;
        let t = env.idp_now();
        let began = Instant::now();
        let r = run_step(&mut env, s, step).await;
        let ok = r.is_ok();
        let message = r.as_ref().err().cloned();
        report.steps.push(StepRecord {
            index: i,
            action: step.action.name().into(),
            label: step.label.clone(),
            ok,
            message: message.clone(),
            idp_time_ms: t,
            duration_ms: began.elapsed().as_millis(),
        });
        if let Err(m) = r {
            let what = step.label.clone().unwrap_or_else(|| step.action.name().to_string());
            return (Outcome::Failed { step: Some(i), message: format!("step {} ({what}): {m}", i + 1) }, Some(env));
        }
    }
    (Outcome::Passed, Some(env))
}

async fn register_redirects(env: &Env) -> Result<(), String> {
    let cb = format!("{}{}", env.sp.base_url, env.sp.callback_path);
    let lo = env.sp.post_logout_path.as_ref().map(|p| format!("{}{p}", env.sp.base_url));
    let client = env.sp.client_id.clone();
    if let Some(idp) = &env.local_idp {
        idp.with_tenant(|t| {
            for a in t.apps.values_mut().filter(|a| a.client_id == client) {
                a.redirect_uris.push(cb.clone());
                if let Some(lo) = &lo {
                    a.post_logout_redirect_uris.push(lo.clone());
                }
            }
        });
        return Ok(());
    }
    let id = env.app_id(&client).await?;
    let mut app = env.control_get(&format!("/api/v1/apps/{id}")).await?;
    let oc = &mut app["settings"]["oauthClient"];
    if let Some(a) = oc["redirect_uris"].as_array_mut() {
        a.push(json!(cb));
    }
    if let (Some(a), Some(lo)) = (oc["post_logout_redirect_uris"].as_array_mut(), lo) {
        a.push(json!(lo));
    }
    env.control_send(reqwest::Method::PUT, &format!("/api/v1/apps/{id}"), Some(app)).await.map(|_| ())
}

async fn run_step(env: &mut Env, s: &Scenario, step: &Step) -> Result<(), String> {
    let exp = step.expect.clone();
    let responses: Vec<Resp> = match &step.action {
        Action::SignIn(si) => {
            env.actor(&si.actor, s.actors.get(&si.actor));
            let mut start = format!("{}{}", env.sp.base_url, env.sp.login_path);
            let http = env.actors[&si.actor].http.clone();
            let via = si.via.as_deref().unwrap_or("form");
            if via == "authn" || !si.authorize_params.is_empty() {
                // Take the first hop by hand to add parameters to the IdP authorize URL.
                let r = env.send(&si.actor, http.get(&start), "GET", &start).await?;
                let loc = r
                    .headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("/login did not redirect: {} {}", r.status, trim(&r.body)))?;
                let mut u = url::Url::parse(&join(&start, loc)?).map_err(|e| e.to_string())?;
                for (k, v) in &si.authorize_params {
                    u.query_pairs_mut().append_pair(k, v);
                }
                if via == "authn" {
                    let url = format!("{}/api/v1/authn", env.idp_base);
                    let r = env
                        .send(&si.actor, http.post(&url).json(&json!({"username": si.user, "password": si.password})), "POST", &url)
                        .await?;
                    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("authn: {e}"))?;
                    let st = v["sessionToken"].as_str().ok_or_else(|| format!("authn failed: {} {}", r.status, trim(&r.body)))?;
                    u.query_pairs_mut().append_pair("sessionToken", st);
                }
                start = u.to_string();
            }
            if via == "browser" || env.is_browser_actor(s, &si.actor) {
                let tab = env.tab(&si.actor).await?;
                let params: Vec<(&str, &str)> = si.authorize_params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let landed = if params.is_empty() { tab.goto(&start).await } else { tab.start_sign_in_with(&start, &params).await }
                    .map_err(|e| format!("{e:#}"))?;
                // The IdP's hosted page, unless an IdP session signs the user in at once.
                if tab.text("#okta-signin-username").await.ok().flatten().is_some() || landed.contains("/login/login.htm") {
                    tab.fill_and_submit_sign_in(&si.user, &si.password).await.map_err(|e| format!("{e:#}"))?;
                }
                vec![env.tab_resp(&si.actor, &tab, "GET").await?]
            } else {
                vec![env.navigate(&si.actor, &start, &si.user, &si.password).await?]
            }
        }
        Action::Request(rq) => {
            env.actor(&rq.actor, s.actors.get(&rq.actor));
            for w in &rq.with {
                env.actor(w, s.actors.get(w));
            }
            if env.tabs.contains_key(&rq.actor) {
                // Browser tabs: fetch() in each page, all started before any is awaited.
                let path = rq.path.replace("{whoami}", &env.sp.whoami_path);
                let mut who: Vec<String> = (0..rq.concurrent.unwrap_or(1).max(1)).map(|_| rq.actor.clone()).collect();
                who.extend(rq.with.iter().cloned());
                let t = env.idp_now();
                let mut pending = Vec::new();
                for w in &who {
                    let tab = env.tab_on_sp(w).await?;
                    pending.push((w.clone(), tab.start_fetch(&path).await.map_err(|e| format!("{e:#}"))?));
                }
                let mut out = Vec::new();
                for (w, p) in pending {
                    let (status, body) = p.finish().await.map_err(|e| format!("{e:#}"))?;
                    let url = format!("{}{path}", env.sp.base_url);
                    env.http.push(HttpRecord {
                        step: env.step,
                        actor: w,
                        method: "GET".into(),
                        url: strip_query(&url),
                        status,
                        idp_time_ms: t,
                    });
                    out.push(Resp { status, headers: Default::default(), body, url });
                }
                if let Some(e) = step.expect.clone() {
                    check_responses(&e, &out)?;
                }
                return Ok(());
            }
            let http = env.actors[&rq.actor].http.clone();
            let url = if rq.path.starts_with("{idp}") {
                rq.path.replace("{idp}", &env.idp_base)
            } else if rq.path.starts_with("http") {
                rq.path.clone()
            } else {
                format!("{}{}", env.sp.base_url, rq.path.replace("{whoami}", &env.sp.whoami_path))
            };
            let n = rq.concurrent.unwrap_or(1).max(1);
            let mut senders: Vec<(String, reqwest::Client)> = (0..n).map(|_| (rq.actor.clone(), http.clone())).collect();
            for w in &rq.with {
                senders.push((w.clone(), env.actors[w].http.clone()));
            }
            if senders.len() == 1 {
                let rb = match rq.method.to_uppercase().as_str() {
                    "POST" => http.post(&url).form(&rq.form),
                    "PUT" => http.put(&url).form(&rq.form),
                    "DELETE" => http.delete(&url),
                    _ => http.get(&url),
                };
                let r = env.send(&rq.actor, rb.header("accept", "application/json"), &rq.method.to_uppercase(), &url).await?;
                if rq.follow && (300..400).contains(&r.status) {
                    let loc = r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("/").to_string();
                    let next = join(&url, &loc)?;
                    vec![env.navigate(&rq.actor, &next, "", "").await?]
                } else {
                    vec![r]
                }
            } else {
                let barrier = Arc::new(tokio::sync::Barrier::new(senders.len()));
                let t = env.idp_now();
                let mut tasks = Vec::new();
                for (who, http) in senders {
                    let (url, barrier) = (url.clone(), barrier.clone());
                    tasks.push(tokio::spawn(async move {
                        barrier.wait().await;
                        let r = match http.get(&url).header("accept", "application/json").send().await {
                            Ok(r) => r,
                            Err(e) => {
                                return (who, Resp { status: 0, headers: Default::default(), body: format!("no response: {e}"), url });
                            }
                        };
                        let status = r.status().as_u16();
                        let headers = r.headers().clone();
                        let body = r.text().await.unwrap_or_default();
                        (who, Resp { status, headers, body, url })
                    }));
                }
                let mut out = Vec::new();
                for task in tasks {
                    let (who, r) = task.await.map_err(|e| format!("request task: {e}"))?;
                    env.http.push(HttpRecord {
                        step: env.step,
                        actor: who,
                        method: "GET".into(),
                        url: strip_query(&r.url),
                        status: r.status,
                        idp_time_ms: t,
                    });
                    out.push(r);
                }
                out
            }
        }
        Action::SignOut(a) if env.tabs.contains_key(&a.actor) => {
            // In the browser, a sign-out is a navigation to the logout URL and the IdP round trip after it.
            let tab = env.tab(&a.actor).await?;
            let url = format!("{}{}", env.sp.base_url, env.sp.logout_path);
            tab.goto(&url).await.map_err(|e| format!("{e:#}"))?;
            vec![env.tab_resp(&a.actor, &tab, "GET").await?]
        }
        Action::SignOut(a) => {
            env.actor(&a.actor, s.actors.get(&a.actor));
            let url = format!("{}{}", env.sp.base_url, env.sp.logout_path);
            let http = env.actors[&a.actor].http.clone();
            let method = env.sp.logout_method.clone();
            let rb = if method == "GET" { http.get(&url) } else { http.post(&url) };
            let r = env.send(&a.actor, rb, &method, &url).await?;
            if (300..400).contains(&r.status) {
                let loc = r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("/").to_string();
                vec![env.navigate(&a.actor, &join(&url, &loc)?, "", "").await?]
            } else {
                vec![r]
            }
        }
        Action::IdpLogin(l) => vec![idp_login(env, s, l).await?],
        Action::IdpRefresh(r) => idp_refresh(env, s, r).await?,
        Action::Clock(c) => {
            let both = ClockMove { advance_seconds: c.advance_seconds, advance_ms: c.advance_ms, ..Default::default() };
            if c.advance_seconds.is_some() || c.advance_ms.is_some() {
                env.move_idp_clock(&both).await?;
                env.move_sp_clock(&both)?;
            }
            if let Some(m) = &c.idp {
                env.move_idp_clock(m).await?;
            }
            if let Some(m) = &c.sp {
                env.move_sp_clock(m)?;
            }
            Vec::new()
        }
        Action::Admin(op) => {
            admin(env, op).await?;
            Vec::new()
        }
        Action::Fault(rule) => {
            env.control_send(reqwest::Method::POST, "/_mock/faults", Some(rule.clone())).await?;
            Vec::new()
        }
        Action::ClearFaults(_) => {
            env.control_send(reqwest::Method::DELETE, "/_mock/faults", None).await?;
            Vec::new()
        }
        Action::ConfigureSso(c) => {
            if !env.sp.is_stub {
                return Err("configure_sso fills the stub BSR's settings page; it does not apply to an external target".into());
            }
            vec![configure_sso(env, c).await?]
        }
        Action::Sleep(sl) => {
            if env.sp.is_stub {
                // Both clocks are virtual here: move them instead of waiting.
                let m = ClockMove { advance_seconds: Some(sl.seconds), ..Default::default() };
                env.move_idp_clock(&m).await?;
                env.move_sp_clock(&m)?;
            } else {
                // Real time, for external targets whose clocks the harness cannot move.
                tokio::time::sleep(std::time::Duration::from_secs_f64(sl.seconds)).await;
            }
            Vec::new()
        }
        Action::Check(c) => {
            env.check(c).await?;
            Vec::new()
        }
        Action::WaitFor(w) => {
            let mut waited = 0.0;
            loop {
                match env.check(&w.until).await {
                    Ok(()) => break,
                    Err(e) if waited >= w.max_seconds => return Err(format!("not reached after {waited} s of virtual time: {e}")),
                    Err(_) => {
                        let m = ClockMove { advance_seconds: Some(w.step_seconds), ..Default::default() };
                        env.move_idp_clock(&m).await?;
                        env.move_sp_clock(&m)?;
                        waited += w.step_seconds;
                    }
                }
            }
            Vec::new()
        }
    };
    if let Some(e) = exp {
        if responses.is_empty() {
            return Err(format!("`expect` on a {} step, which has no response to check", step.action.name()));
        }
        check_responses(&e, &responses)?;
    }
    Ok(())
}

async fn idp_login(env: &mut Env, s: &Scenario, l: &IdpLogin) -> Result<Resp, String> {
    use base64::Engine;
    use sha2::Digest;
    env.actor(&l.actor, s.actors.get(&l.actor));
    let http = env.actors[&l.actor].http.clone();
    let app = env
        .config
        .apps
        .iter()
        .find(|a| a.credentials.oauth_client.client_id == l.client_id)
        .ok_or_else(|| format!("no app {}", l.client_id))?;
    let secret = app.credentials.oauth_client.client_secret.clone();
    let redirect = app.settings.oauth_client.redirect_uris.first().cloned().ok_or("the app has no redirect URI")?;
    let prefix = if l.server == "org" { "/oauth2".to_string() } else { format!("/oauth2/{}", l.server) };
    let url = format!("{}/api/v1/authn", env.idp_base);
    let r = env.send(&l.actor, http.post(&url).json(&json!({"username": l.user, "password": l.password})), "POST", &url).await?;
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("authn: {e}"))?;
    let st = v["sessionToken"].as_str().ok_or_else(|| format!("authn failed: {} {}", r.status, trim(&r.body)))?.to_string();
    let verifier = mock_idp::core::ids::opaque(40);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut u = url::Url::parse(&format!("{}{prefix}/v1/authorize", env.idp_base)).map_err(|e| e.to_string())?;
    u.query_pairs_mut()
        .append_pair("client_id", &l.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", &l.scopes)
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", "scenario")
        .append_pair("nonce", "scenario-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("sessionToken", &st);
    let au = u.to_string();
    let r = env.send(&l.actor, http.get(&au), "GET", &au).await?;
    let loc = r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let code = url::Url::parse(&loc)
        .ok()
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.to_string()))
        .ok_or_else(|| format!("authorize gave no code: {} {}", r.status, strip_query(&loc)))?;
    let tu = format!("{}{prefix}/v1/token", env.idp_base);
    let mut rb = http.post(&tu).form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &redirect),
        ("code_verifier", &verifier),
    ]);
    rb = match &secret {
        Some(sec) => rb.basic_auth(&l.client_id, Some(sec)),
        None => rb,
    };
    let r = env.send(&l.actor, rb, "POST", &tu).await?;
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let a = env.actors.get_mut(&l.actor).expect("actor exists");
    if let Some(rt) = v["refresh_token"].as_str() {
        a.refresh_tokens.push(rt.to_string());
    }
    a.last_tokens = Some(v);
    Ok(r)
}

async fn idp_refresh(env: &mut Env, s: &Scenario, r: &IdpRefresh) -> Result<Vec<Resp>, String> {
    env.actor(&r.actor, s.actors.get(&r.actor));
    let a = &env.actors[&r.actor];
    let toks = &a.refresh_tokens;
    let pick = match &r.token {
        None => toks.last(),
        Some(Value::String(s)) if s == "latest" => toks.last(),
        Some(Value::String(s)) if s == "previous" => toks.len().checked_sub(2).and_then(|i| toks.get(i)),
        Some(Value::String(s)) if s == "first" => toks.first(),
        Some(Value::Number(n)) => n.as_u64().and_then(|i| toks.get(i as usize)),
        Some(other) => return Err(format!("token: latest, previous, first or a generation number, got {other}")),
    }
    .cloned()
    .ok_or_else(|| format!("{} has no such refresh token ({} known)", r.actor, toks.len()))?;
    let http = a.http.clone();
    // The token endpoint of the server the actor signed in at with `idp_login`.
    let prefix = idp_prefix_of(s, &r.actor);
    let tu = format!("{}{prefix}/v1/token", env.idp_base);
    let mut form = vec![("grant_type".to_string(), "refresh_token".to_string()), ("refresh_token".to_string(), pick)];
    if let Some(sc) = &r.scope {
        form.push(("scope".into(), sc.clone()));
    }
    let n = r.concurrent.unwrap_or(1).max(1);
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let t = env.idp_now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, tu, form, barrier) = (http.clone(), tu.clone(), form.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = match http.post(&tu).basic_auth("bsr-local", Some("bsr-local-secret")).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    return Ok::<Resp, String>(Resp { status: 0, headers: Default::default(), body: format!("no response: {e}"), url: tu });
                }
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.text().await.unwrap_or_default();
            Ok::<Resp, String>(Resp { status, headers, body, url: tu })
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        let resp = task.await.map_err(|e| format!("refresh task: {e}"))??;
        env.http.push(HttpRecord {
            step: env.step,
            actor: r.actor.clone(),
            method: "POST".into(),
            url: strip_query(&resp.url),
            status: resp.status,
            idp_time_ms: t,
        });
        if r.keep
            && let Ok(v) = serde_json::from_str::<Value>(&resp.body)
            && let Some(rt) = v["refresh_token"].as_str()
        {
            let a = env.actors.get_mut(&r.actor).expect("actor exists");
            if a.refresh_tokens.last().map(String::as_str) != Some(rt) {
                a.refresh_tokens.push(rt.to_string());
            }
        }
        out.push(resp);
    }
    Ok(out)
}

/// The token endpoint prefix of the server the actor last signed in at with `idp_login`.
fn idp_prefix_of(s: &Scenario, actor: &str) -> String {
    let server = s
        .steps
        .iter()
        .filter_map(|st| match &st.action {
            Action::IdpLogin(l) if l.actor == actor => Some(l.server.clone()),
            _ => None,
        })
        .next_back()
        .unwrap_or_else(|| "default".into());
    if server == "org" { "/oauth2".into() } else { format!("/oauth2/{server}") }
}

async fn admin(env: &mut Env, op: &AdminOp) -> Result<(), String> {
    use reqwest::Method;
    match op {
        AdminOp::DeactivateUser(l) | AdminOp::ActivateUser(l) | AdminOp::SuspendUser(l) | AdminOp::UnsuspendUser(l) => {
            let id = env.user_id(l).await?;
            let verb = match op {
                AdminOp::DeactivateUser(_) => "deactivate",
                AdminOp::ActivateUser(_) => "activate",
                AdminOp::SuspendUser(_) => "suspend",
                _ => "unsuspend",
            };
            env.control_send(Method::POST, &format!("/api/v1/users/{id}/lifecycle/{verb}"), None).await?;
        }
        AdminOp::DeleteUser(l) => {
            let id = env.user_id(l).await?;
            env.control_send(Method::DELETE, &format!("/api/v1/users/{id}"), None).await?;
            env.control_send(Method::DELETE, &format!("/api/v1/users/{id}"), None).await?;
        }
        AdminOp::UpdateEmail(u) => {
            let id = env.user_id(&u.user).await?;
            env.control_send(Method::POST, &format!("/api/v1/users/{id}"), Some(json!({"profile": {"email": u.email}}))).await?;
        }
        AdminOp::UnassignUser(m) => {
            let app = env.app_id(m.app.as_deref().ok_or("unassign_user needs app")?).await?;
            let uid = env.user_id(&m.user).await?;
            env.control_send(Method::DELETE, &format!("/api/v1/apps/{app}/users/{uid}"), None).await?;
        }
        AdminOp::RemoveFromGroup(m) => {
            let gid = env.group_id(m.group.as_deref().ok_or("remove_from_group needs group")?).await?;
            let uid = env.user_id(&m.user).await?;
            env.control_send(Method::DELETE, &format!("/api/v1/groups/{gid}/users/{uid}"), None).await?;
        }
        AdminOp::UpdateApp(u) => {
            let id = env.app_id(&u.app).await?;
            let mut app = env.control_get(&format!("/api/v1/apps/{id}")).await?;
            let rt = &mut app["settings"]["oauthClient"]["refresh_token"];
            if let Some(r) = &u.rotation_type {
                rt["rotation_type"] = json!(r);
            }
            if let Some(l) = u.leeway {
                rt["leeway"] = json!(l);
            }
            env.control_send(Method::PUT, &format!("/api/v1/apps/{id}"), Some(app)).await?;
        }
        AdminOp::DeactivateApp(c) => {
            let id = env.app_id(c).await?;
            env.control_send(Method::POST, &format!("/api/v1/apps/{id}/lifecycle/deactivate"), None).await?;
        }
        AdminOp::RotateKeys(k) => {
            if k.server == "org" {
                env.control_send(Method::POST, "/_mock/keys/rotate", Some(json!({"sign_with_new_key_at_once": k.new_key_at_once}))).await?;
            } else if k.new_key_at_once {
                return Err("new_key_at_once is only for the org server (custom servers rotate through Okta's keyRotate)".into());
            } else {
                let path = format!("/api/v1/authorizationServers/{}/credentials/lifecycle/keyRotate", k.server);
                env.control_send(Method::POST, &path, Some(json!({"use": "sig"}))).await?;
            }
        }
        AdminOp::ClearSessions(l) => {
            let id = env.user_id(l).await?;
            env.control_send(Method::DELETE, &format!("/api/v1/users/{id}/sessions?oauthTokens=true"), None).await?;
        }
    }
    Ok(())
}

async fn configure_sso(env: &mut Env, c: &ConfigureSso) -> Result<Resp, String> {
    let admin = env.admin_client().await?;
    let url = format!("{}/acme/pro-settings", env.bsr_base);
    let page = admin.get(&url).send().await.map_err(|e| format!("GET /acme/pro-settings: {e}"))?.text().await.unwrap_or_default();
    let csrf = hidden(&page, "csrf").ok_or("the settings page has no csrf field")?;
    let issuer = env.resolve_issuer(&c.issuer);
    let mut form = vec![
        ("csrf", csrf),
        ("provider", "oidc".to_string()),
        ("client_id", c.client_id.clone()),
        ("client_secret", c.client_secret.clone()),
        ("issuer_url", issuer),
    ];
    if let Some(l) = &c.logout_url {
        form.push(("logout_url", l.clone()));
    }
    let t = env.idp_now();
    let r = admin.post(&url).form(&form).send().await.map_err(|e| format!("POST /acme/pro-settings: {e}"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    env.http.push(HttpRecord { step: env.step, actor: "admin".into(), method: "POST".into(), url: url.clone(), status, idp_time_ms: t });
    Ok(Resp { status, headers, body, url })
}

#[cfg(test)]
mod tests {
    use super::RunOptions;

    #[test]
    fn servers_are_named_by_the_public_host_or_else_the_listen_host() {
        let with = |listen: Option<&str>, public: Option<&str>| RunOptions {
            listen_host: listen.map(|l| l.parse().unwrap()),
            public_host: public.map(str::to_string),
            ..RunOptions::default()
        };
        assert_eq!(with(None, None).public_base(3000), "http://127.0.0.1:3000");
        assert_eq!(with(Some("0.0.0.0"), None).public_base(3000), "http://127.0.0.1:3000");
        assert_eq!(with(Some("::"), None).public_base(3000), "http://127.0.0.1:3000");
        assert_eq!(with(Some("10.1.2.3"), None).public_base(3000), "http://10.1.2.3:3000");
        assert_eq!(with(Some("::1"), None).public_base(3000), "http://[::1]:3000");
        assert_eq!(with(Some("0.0.0.0"), Some("runner")).public_base(41234), "http://runner:41234");
        assert_eq!(with(None, Some("fd00::2")).public_base(80), "http://[fd00::2]:80");
        assert_eq!(with(None, None).listen_ip().to_string(), "127.0.0.1");
    }
}
