//! Real headless Chromium, driven through chromedriver with fantoccini, for sign-ins the way a person does
//! them: the hosted sign-in page, redirects, cookies and several tabs of one browser profile.
//!
//! ```no_run
//! # async fn demo(bsr_base: &str) -> anyhow::Result<()> {
//! use harness::browser::{Browser, DEFAULT_TIMEOUT};
//! let browser = Browser::launch().await?;
//! let artifacts = browser.artifacts_on_failure("demo");
//! let tab = browser.new_tab().await?;
//! tab.goto(&format!("{bsr_base}/login")).await?;
//! tab.fill_and_submit_sign_in("alice@example.com", "Passw0rd!").await?;
//! assert_eq!(tab.wait_for("#username", DEFAULT_TIMEOUT).await?, "alice");
//! artifacts.passed();
//! browser.close().await;
//! # Ok(()) }
//! ```
//!
//! How it runs:
//! - chromedriver comes from `CHROMEDRIVER` or `PATH`; Chromium from `CHROME`, `/usr/bin/chromium`, or `PATH`
//!   (`chromium`, `chromium-browser`, `google-chrome`). chromedriver listens on a free loopback port in its own
//!   process group; its log and the fresh browser profile live in one temporary directory.
//! - Or a WebDriver that already runs elsewhere (a chromedriver sidecar container): [`Browser::connect`], or
//!   [`Browser::launch`] with `HARNESS_WEBDRIVER_URL` set. No process is started or killed then, and no local
//!   path goes into the capabilities: that chromedriver picks its own Chromium and makes a fresh temporary
//!   profile for the session. The pages the browser opens must be reachable from where it runs.
//! - The session uses `pageLoadStrategy: none`: navigation commands return at once and every helper waits
//!   explicitly (for a new document, for an element). With the default strategy the first navigation of a new
//!   profile was seen to stall here for the whole page-load timeout.
//! - One WebDriver session has one "current window", and fantoccini sends its commands one at a time, so tabs
//!   take turns: every [`Tab`] call switches to its own window under a lock. Requests that must be in flight
//!   together (two tabs refreshing at once) use [`Tab::start_fetch`], which returns as soon as the page has
//!   sent the request.
//! - Timeouts are real time (a browser has no virtual clock); the IdP's and the stub's clocks stay virtual.
//! - The session and chromedriver always end: [`Browser::close`], or on drop (also while a test panics) with
//!   plain blocking HTTP to chromedriver and a kill of its process group, so no Chromium is left behind. A
//!   remote WebDriver's session is deleted the same way; the remote chromedriver keeps running.
//! - [`Browser::artifacts_on_failure`] saves a screenshot, the HTML and the URL of every tab (over WebDriver,
//!   so also from a remote browser), and a local chromedriver's log, under `target/browser-artifacts/<name>/`
//!   when a test fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long helpers wait for a page or an element unless told otherwise (real time).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The Chromium flags a closed network and a container need: no sandbox (root in a container), no GPU, no
/// /dev/shm (small in containers), and none of the background traffic to Google's services that would
/// otherwise wait on a network that is not there.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
];

/// The environment variable naming a running WebDriver (e.g. `http://chromedriver:9515`) that
/// [`Browser::launch`] connects to instead of starting chromedriver.
pub const WEBDRIVER_URL_ENV: &str = "HARNESS_WEBDRIVER_URL";

/// The window size, so screenshots look the same on every machine.
const WINDOW_SIZE: &str = "--window-size=1280,900";
/// How long chromedriver may take to answer `/status` after it starts.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Chromium may take to open the session.
const SESSION_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per request of the blocking clean-up path (drop, artifacts on a panic).
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// Marks the current document as old, so a helper can tell when the next one has replaced it.
const MARK_STALE: &str = "if (document.documentElement) { document.documentElement.dataset.harnessStale = '1'; } return true;";
/// The URL of the current document once it is new (not marked) and parsed; `null` before.
const FRESH_DOCUMENT: &str = "const d = document.documentElement; \
     if (!d || d.dataset.harnessStale === '1' || document.readyState === 'loading') { return null; } \
     return location.href;";

/// A running headless Chromium with its chromedriver. Tabs share the browser profile and so its cookies.
pub struct Browser {
    inner: Arc<Inner>,
}

/// One tab (a top-level browsing context) of a [`Browser`]. Clones refer to the same tab.
#[derive(Clone)]
pub struct Tab {
    inner: Arc<Inner>,
    handle: WindowHandle,
}

/// A `fetch` a page has sent and not yet finished; see [`Tab::start_fetch`].
pub struct PendingFetch {
    tab: Tab,
    id: String,
    path: String,
}

/// Saves screenshots and HTML of every tab when dropped without [`ArtifactsGuard::passed`] (a failed
/// assertion, a panic, or an early `?` return).
pub struct ArtifactsGuard {
    inner: Arc<Inner>,
    name: String,
    passed: bool,
}

struct Inner {
    client: Client,
    session_id: String,
    /// The window the session is switched to; held while a tab's command runs.
    current: tokio::sync::Mutex<Option<WindowHandle>>,
    /// The window the session opened with, handed out by the first [`Browser::new_tab`].
    initial_window: parking_lot::Mutex<Option<WindowHandle>>,
    closed: AtomicBool,
    fetches: AtomicU64,
    /// Where WebDriver commands go (for the blocking path: drop, artifacts, cookies).
    wd: WdAddr,
    /// The remote WebDriver's URL, when the session is not on a chromedriver of ours.
    remote: Option<String>,
    /// Declared last so it drops last: the session is deleted before chromedriver is killed. `None` for a
    /// remote WebDriver, which is left running.
    driver: parking_lot::Mutex<Option<Driver>>,
}

/// A WebDriver's HTTP endpoint: host, port and the path prefix of its commands (`/wd/hub`, usually empty).
#[derive(Clone, Debug, PartialEq, Eq)]
struct WdAddr {
    host: String,
    port: u16,
    prefix: String,
}

impl WdAddr {
    fn local(port: u16) -> WdAddr {
        WdAddr { host: Ipv4Addr::LOCALHOST.to_string(), port, prefix: String::new() }
    }

    /// A remote WebDriver's URL: plain `http://host:port[/prefix]` (fantoccini here speaks no TLS).
    fn parse(url: &str) -> anyhow::Result<WdAddr> {
        let bad = |why: String| {
            anyhow!("--webdriver-url / {WEBDRIVER_URL_ENV} {url:?}: {why}; expected http://host:port, e.g. http://chromedriver:9515")
        };
        let u = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
        match u.scheme() {
            "http" => {}
            "https" => return Err(bad("not an http:// URL (a WebDriver over TLS is not supported)".into())),
            _ => return Err(bad("not an http:// URL".into())),
        }
        let host = u.host_str().ok_or_else(|| bad("no host".into()))?;
        if u.query().is_some() || u.fragment().is_some() {
            return Err(bad("a query or fragment is not allowed".into()));
        }
        Ok(WdAddr {
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: u.port_or_known_default().unwrap_or(80),
            prefix: u.path().trim_end_matches('/').to_string(),
        })
    }

    /// The base URL fantoccini joins command paths to (with a trailing slash, so the prefix is kept).
    fn base_url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("http://{host}:{}{}/", self.port, self.prefix)
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }
}

/// The chromedriver process and the temporary directory with the profile and the driver's log.
struct Driver {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// What this process has open in browsers: sessions (on our chromedrivers or a remote WebDriver) and the
/// chromedrivers it started, for [`end_all`] when the run is interrupted (a signal ends the process without
/// running the destructors that normally end them).
struct Live {
    sessions: Vec<(WdAddr, String)>,
    /// chromedriver's pid (the leader of its process group) and its temporary directory.
    drivers: Vec<(u32, PathBuf)>,
}

static LIVE: std::sync::Mutex<Live> = std::sync::Mutex::new(Live { sessions: Vec::new(), drivers: Vec::new() });

fn live() -> std::sync::MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ends every browser this process has open: each session is deleted (Chromium quits and removes its
/// profile), then each chromedriver's process group is killed and its directory removed. For an interrupted
/// run (SIGINT, SIGTERM), just before the process exits; a remote WebDriver keeps running.
pub fn end_all() {
    let (sessions, drivers) = {
        let mut l = live();
        (std::mem::take(&mut l.sessions), std::mem::take(&mut l.drivers))
    };
    for (wd, id) in sessions {
        let _ = wd_sync(&wd, "DELETE", &format!("/session/{id}"), None);
    }
    for (pid, dir) in drivers {
        kill_group(pid);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// SIGKILL to chromedriver's process group: every Chromium process it started and nothing else.
fn kill_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pgid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; it has no memory effects.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

impl Driver {
    fn log_path(&self) -> PathBuf {
        self.dir.join("chromedriver.log")
    }

    /// Kills chromedriver and everything in its process group (Chromium, its helpers), then waits for it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // chromedriver was started as the leader of its own process group.
            kill_group(child.id());
            live().drivers.retain(|(pid, _)| *pid != child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        live().sessions.retain(|(_, id)| *id != self.session_id);
        if !self.closed.swap(true, Ordering::SeqCst) {
            // The async runtime may be unwinding from a panic, so the session is deleted with blocking HTTP;
            // chromedriver then quits Chromium cleanly before its process group is killed (a remote
            // chromedriver quits its Chromium and keeps running).
            let _ = wd_sync(&self.wd, "DELETE", &format!("/session/{}", self.session_id), None);
        }
    }
}

// ----- finding the binaries -----

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn env_path(var: &str) -> anyhow::Result<Option<PathBuf>> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            if !p.is_file() {
                bail!("{var}={} does not name a file", p.display());
            }
            Ok(Some(p))
        }
        _ => Ok(None),
    }
}

const INSTALL_HINT: &str =
    "install Chromium and chromedriver (Debian/Ubuntu: `apt-get install -y chromium chromium-driver`; scripts/test does this)";

/// chromedriver: `CHROMEDRIVER`, else `chromedriver` on `PATH`.
pub fn find_chromedriver() -> anyhow::Result<PathBuf> {
    if let Some(p) = env_path("CHROMEDRIVER")? {
        return Ok(p);
    }
    on_path("chromedriver")
        .ok_or_else(|| anyhow!("chromedriver was not found on PATH; {INSTALL_HINT}, or set CHROMEDRIVER=/path/to/chromedriver"))
}

/// Chromium: `CHROME`, else `/usr/bin/chromium`, else `chromium`, `chromium-browser` or `google-chrome` on `PATH`.
pub fn find_chromium() -> anyhow::Result<PathBuf> {
    if let Some(p) = env_path("CHROME")? {
        return Ok(p);
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return Ok(debian);
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| on_path(n))
        .ok_or_else(|| anyhow!("Chromium was not found (/usr/bin/chromium, or chromium, chromium-browser, google-chrome on PATH); {INSTALL_HINT}, or set CHROME=/path/to/chrome"))
}

fn free_port() -> anyhow::Result<u16> {
    // The port is released again for chromedriver to bind; a rare collision makes chromedriver exit, and
    // launch then tries another port.
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a loopback port for chromedriver")?;
    Ok(l.local_addr()?.port())
}

fn temp_dir() -> anyhow::Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let d = std::env::temp_dir().join(format!("harness-browser-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(d.join("profile")).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Starts chromedriver on a free port and waits until `/status` says it is ready.
async fn start_driver(chromedriver: &Path, dir: PathBuf) -> anyhow::Result<Driver> {
    let mut last_error = None;
    for _ in 0..3 {
        let port = free_port()?;
        let log = dir.join("chromedriver.log");
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().with_context(|| format!("cannot start {}", chromedriver.display()))?;
        live().drivers.push((child.id(), dir.clone()));
        let mut driver = Driver { child: Some(child), port, dir: dir.clone() };
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            if let Some(c) = driver.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                last_error = Some(anyhow!("chromedriver exited at start ({status}); its log ends:\n{}", log_tail(&log)));
                driver.child = None;
                break;
            }
            if let Ok(v) = tokio::task::spawn_blocking(move || wd_sync(&WdAddr::local(port), "GET", "/status", None)).await?
                && v["ready"] == json!(true)
            {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on 127.0.0.1:{port} within {DRIVER_START_TIMEOUT:?}; its log ends:\n{}", log_tail(&log));
            }
            tokio::time::sleep(POLL).await;
        }
        // The directory belongs to the next attempt; only the process is gone.
        std::mem::forget(driver);
    }
    Err(last_error.unwrap_or_else(|| anyhow!("chromedriver did not start")))
}

/// Checks a WebDriver URL's syntax (`http://host:port[/prefix]`) without connecting; the error names
/// `--webdriver-url` / `HARNESS_WEBDRIVER_URL`. `harness run` checks its URL this way before anything runs.
pub fn check_webdriver_url(url: &str) -> Result<(), String> {
    WdAddr::parse(url).map(|_| ()).map_err(|e| format!("{e:#}"))
}

/// A WebDriver error answer's `value` (`{error, message, stacktrace}`): the message's first line (or the
/// error code), and the whole text, stack trace included, for the lines after it.
fn wd_error_text(v: &Value) -> Option<(String, String)> {
    let error = v["error"].as_str()?;
    let message = v["message"].as_str().unwrap_or("");
    let first = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(error);
    let mut full = format!("error {error:?}: {}", message.trim_end());
    if let Some(st) = v["stacktrace"].as_str().map(str::trim_end).filter(|st| !st.trim().is_empty()) {
        full.push_str("\nstacktrace:\n");
        full.push_str(st);
    }
    Some((first.to_string(), full))
}

/// `HARNESS_WEBDRIVER_URL` when it is set and not empty.
pub fn webdriver_url_from_env() -> Option<String> {
    std::env::var(WEBDRIVER_URL_ENV).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The session's capabilities. `local`: the Chromium binary and the profile directory on this machine; a
/// remote chromedriver gets neither (those paths do not exist where it runs), so it uses its own Chromium
/// and a temporary profile of its own.
fn capabilities(local: Option<(&Path, &Path)>) -> Capabilities {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
    args.push(WINDOW_SIZE.into());
    if let Some((_, profile)) = local {
        args.push(format!("--user-data-dir={}", profile.display()));
    }
    // No password manager bubbles or keyring prompts after a sign-in.
    args.push("--password-store=basic".into());
    args.push("--no-default-browser-check".into());
    let mut options = json!({
        "args": args,
        "prefs": {"credentials_enable_service": false, "profile.password_manager_enabled": false},
    });
    if let Some((chromium, _)) = local {
        options["binary"] = json!(chromium.display().to_string());
    }
    match json!({
        "browserName": "chrome",
        "pageLoadStrategy": "none",
        "timeouts": {"script": DEFAULT_TIMEOUT.as_millis() as u64, "pageLoad": 60_000, "implicit": 0},
        "goog:chromeOptions": options,
    }) {
        Value::Object(m) => m,
        // The literal above is an object.
        _ => unreachable!(),
    }
}

impl Browser {
    /// Starts a headless Chromium session with a fresh profile: through the running WebDriver named by
    /// `HARNESS_WEBDRIVER_URL` when that is set ([`Browser::connect`]), else on a chromedriver of its own
    /// ([`Browser::launch_local`]).
    pub async fn launch() -> anyhow::Result<Browser> {
        match webdriver_url_from_env() {
            Some(url) => Browser::connect(&url).await,
            None => Browser::launch_local().await,
        }
    }

    /// Like [`Browser::launch`], with the WebDriver given: `Some(url)` connects there, `None` reads
    /// `HARNESS_WEBDRIVER_URL` and otherwise starts chromedriver here.
    pub async fn launch_with(webdriver_url: Option<&str>) -> anyhow::Result<Browser> {
        match webdriver_url {
            Some(url) => Browser::connect(url).await,
            None => Browser::launch().await,
        }
    }

    /// Opens a session on a WebDriver that already runs, e.g. a chromedriver sidecar container at
    /// `http://chromedriver:9515` (started with `--allowed-ips=` and `--allowed-origins=*` so that other
    /// machines may connect by that name). Nothing is started here, and closing or dropping the browser
    /// deletes the session only.
    pub async fn connect(webdriver_url: &str) -> anyhow::Result<Browser> {
        let wd = WdAddr::parse(webdriver_url)?;
        let status = {
            let wd = wd.clone();
            tokio::task::spawn_blocking(move || wd_sync(&wd, "GET", "/status", None)).await?
        };
        // The first line of an error says what went wrong; the WebDriver's whole answer (chromedriver adds a
        // stack trace) follows on the next lines, which reports keep for the failure details.
        match status {
            Ok(v) if v["ready"] == json!(true) => {}
            Ok(v) => match wd_error_text(&v) {
                Some((line, full)) => {
                    let hint = if v["error"] == "unknown command" && !wd.prefix.is_empty() {
                        let root = WdAddr { prefix: String::new(), ..wd.clone() }.base_url();
                        format!(" (a chromedriver serves its commands at the root: try {})", root.trim_end_matches('/'))
                    } else {
                        String::new()
                    };
                    bail!("the WebDriver at {webdriver_url} answered GET {}/status with {line:?}{hint}\nits answer: {full}", wd.prefix)
                }
                None => {
                    let why = v["message"].as_str().and_then(|m| m.lines().next()).map(str::to_string).unwrap_or_else(|| v.to_string());
                    bail!("the WebDriver at {webdriver_url} is not ready for a new session: {why}")
                }
            },
            Err(e) => bail!("cannot reach the WebDriver at {webdriver_url}: {e}"),
        }
        let url = webdriver_url.trim_end_matches('/').to_string();
        Browser::open(wd, capabilities(None), None, Some(url)).await
    }

    /// Starts chromedriver here (on a free loopback port) and a headless Chromium session with a fresh
    /// profile, whatever `HARNESS_WEBDRIVER_URL` says.
    pub async fn launch_local() -> anyhow::Result<Browser> {
        let chromedriver = find_chromedriver()?;
        let chromium = find_chromium()?;
        let dir = temp_dir()?;
        let driver = match start_driver(&chromedriver, dir.clone()).await {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let caps = capabilities(Some((&chromium, &dir.join("profile"))));
        Browser::open(WdAddr::local(driver.port), caps, Some(driver), None)
            .await
            .map_err(|e| e.context(format!("Chromium ({})", chromium.display())))
    }

    /// Opens the session on `wd`; `driver` is ours to end afterwards (dropped, and so killed, on an error).
    async fn open(wd: WdAddr, caps: Capabilities, driver: Option<Driver>, remote: Option<String>) -> anyhow::Result<Browser> {
        let log = driver.as_ref().map(Driver::log_path);
        let log_end = || match &log {
            Some(l) => format!("; chromedriver's log ends:\n{}", log_tail(l)),
            None => String::new(),
        };
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let client = match tokio::time::timeout(SESSION_START_TIMEOUT, builder.connect(&wd.base_url())).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => bail!("did not start a session at {}: {e}{}", wd.base_url(), log_end()),
            Err(_) => bail!("did not start a session at {} within {SESSION_START_TIMEOUT:?}{}", wd.base_url(), log_end()),
        };
        let session_id = client.session_id().await?.ok_or_else(|| anyhow!("chromedriver returned no session id"))?;
        live().sessions.push((wd.clone(), session_id.clone()));
        let first = client.window().await?;
        Ok(Browser {
            inner: Arc::new(Inner {
                client,
                session_id,
                current: tokio::sync::Mutex::new(Some(first.clone())),
                initial_window: parking_lot::Mutex::new(Some(first)),
                closed: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
                wd,
                remote,
                driver: parking_lot::Mutex::new(driver),
            }),
        })
    }

    /// The remote WebDriver's URL when the session runs there ([`Browser::connect`]); `None` for a
    /// chromedriver of this process.
    pub fn webdriver_url(&self) -> Option<&str> {
        self.inner.remote.as_deref()
    }

    /// A tab in this browser's profile (the first call gets the window the browser opened with).
    pub async fn new_tab(&self) -> anyhow::Result<Tab> {
        if let Some(handle) = self.inner.initial_window.lock().take() {
            return Ok(Tab { inner: self.inner.clone(), handle });
        }
        let _turn = self.inner.current.lock().await;
        let w = self.inner.client.new_window(true).await.context("cannot open a new tab")?;
        Ok(Tab { inner: self.inner.clone(), handle: w.handle })
    }

    /// A guard that saves every tab's screenshot and HTML under `target/browser-artifacts/<name>/` unless
    /// [`ArtifactsGuard::passed`] is called.
    pub fn artifacts_on_failure(&self, name: &str) -> ArtifactsGuard {
        ArtifactsGuard { inner: self.inner.clone(), name: name.to_string(), passed: false }
    }

    /// Saves every tab's screenshot, HTML and URL and chromedriver's log now; returns the directory.
    pub fn save_artifacts(&self, name: &str) -> PathBuf {
        save_artifacts_sync(&self.inner, name)
    }

    /// The session id (for chromedriver's log).
    pub fn session_id(&self) -> &str {
        &self.inner.session_id
    }

    /// Ends the session (Chromium quits) and our chromedriver (a remote one keeps running). Tabs still held
    /// fail from now on.
    pub async fn close(self) {
        if !self.inner.closed.swap(true, Ordering::SeqCst) {
            let _turn = self.inner.current.lock().await;
            let _ = tokio::time::timeout(SYNC_TIMEOUT, self.inner.client.clone().close()).await;
            live().sessions.retain(|(_, id)| *id != self.inner.session_id);
        }
        if let Some(d) = self.inner.driver.lock().as_mut() {
            d.kill();
        }
    }
}

impl Tab {
    /// Runs `f` with the session switched to this tab.
    async fn with<T, F>(&self, f: impl FnOnce(Client) -> F) -> anyhow::Result<T>
    where
        F: Future<Output = Result<T, fantoccini::error::CmdError>>,
    {
        let mut cur = self.inner.current.lock().await;
        if cur.as_ref() != Some(&self.handle) {
            self.inner.client.switch_to_window(self.handle.clone()).await.context("cannot switch to the tab")?;
            *cur = Some(self.handle.clone());
        }
        Ok(f(self.inner.client.clone()).await?)
    }

    /// Runs a script in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        let script = script.to_string();
        self.with(|c| async move { c.execute(&script, args).await }).await
    }

    async fn mark_stale(&self) {
        let _ = self.execute(MARK_STALE, vec![]).await;
    }

    /// Waits until the document that was current at the last mark has been replaced and the new one is parsed.
    async fn wait_new_document(&self, what: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match self.execute(FRESH_DOCUMENT, vec![]).await {
                Ok(Value::String(url)) => return Ok(url),
                Ok(_) => {}
                // The document can go away between two commands while it navigates; try again.
                Err(e) => last_error = Some(e),
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_else(|e| format!("(unknown: {e})"));
                let why = last_error.map(|e| format!("; last error: {e:#}")).unwrap_or_default();
                bail!("timed out after {timeout:?} waiting for the page after {what}; the tab is at {url}{why}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Navigates and waits until the new document is parsed (not for images or its load event); returns its URL
    /// after redirects.
    pub async fn goto(&self, url: &str) -> anyhow::Result<String> {
        self.mark_stale().await;
        let u = url.to_string();
        self.with(|c| async move { c.goto(&u).await }).await.with_context(|| format!("cannot navigate to {url}"))?;
        self.wait_new_document(&format!("navigating to {url}"), DEFAULT_TIMEOUT).await
    }

    /// Waits until an element matching `css` is in the page; returns its rendered text.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let sel = css.to_string();
            let found = self
                .with(|c| async move {
                    let e = c.find(Locator::Css(&sel)).await?;
                    e.text().await
                })
                .await;
            if let Ok(text) = found {
                return Ok(text);
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_else(|e| format!("(unknown: {e})"));
                let title = self.execute("return document.title", vec![]).await.ok().and_then(|v| v.as_str().map(str::to_string));
                bail!("timed out after {timeout:?} waiting for `{css}` on {url} (title {:?})", title.unwrap_or_default());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The text of the first element matching `css`, or `None` when there is none (no waiting).
    pub async fn text(&self, css: &str) -> anyhow::Result<Option<String>> {
        let sel = css.to_string();
        let r = self
            .with(|c| async move {
                match c.find(Locator::Css(&sel)).await {
                    Ok(e) => e.text().await.map(Some),
                    Err(e) if e.is_no_such_element() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(r)
    }

    /// The URL of the current document.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        self.with(|c| async move { c.current_url().await.map(|u| u.to_string()) }).await
    }

    /// The HTTP status of the current document's response, after redirects (0 when the browser does not know it).
    pub async fn status(&self) -> anyhow::Result<u16> {
        let v = self
            .execute(
                "const e = performance.getEntriesByType('navigation')[0]; return e && e.responseStatus ? e.responseStatus : 0;",
                vec![],
            )
            .await?;
        Ok(v.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0))
    }

    /// The HTML of the current document.
    pub async fn source(&self) -> anyhow::Result<String> {
        self.with(|c| async move { c.source().await }).await
    }

    /// The `id` of the focused element (empty when it has none).
    pub async fn focused_id(&self) -> anyhow::Result<String> {
        let v = self.execute("return document.activeElement ? document.activeElement.id : ''", vec![]).await?;
        Ok(v.as_str().unwrap_or("").to_string())
    }

    /// Clears the field matching `css` (waiting for it) and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.wait_for(css, DEFAULT_TIMEOUT).await?;
        let (sel, t) = (css.to_string(), text.to_string());
        self.with(|c| async move {
            let e = c.find(Locator::Css(&sel)).await?;
            e.clear().await?;
            e.send_keys(&t).await
        })
        .await
        .with_context(|| format!("cannot type into `{css}`"))
    }

    /// Presses Enter in the field matching `css` and waits for the page that the submission leads to.
    pub async fn press_enter(&self, css: &str) -> anyhow::Result<String> {
        self.mark_stale().await;
        let sel = css.to_string();
        self.with(|c| async move {
            let e = c.find(Locator::Css(&sel)).await?;
            e.send_keys(&fantoccini::key::Key::Enter).await
        })
        .await
        .with_context(|| format!("cannot press Enter in `{css}`"))?;
        self.wait_new_document(&format!("pressing Enter in `{css}`"), DEFAULT_TIMEOUT).await
    }

    /// Clicks the element matching `css` (a submit button, a link) and waits for the page it leads to.
    pub async fn click_and_wait(&self, css: &str) -> anyhow::Result<String> {
        self.wait_for(css, DEFAULT_TIMEOUT).await?;
        self.mark_stale().await;
        let sel = css.to_string();
        self.with(|c| async move { c.find(Locator::Css(&sel)).await?.click().await })
            .await
            .with_context(|| format!("cannot click `{css}`"))?;
        self.wait_new_document(&format!("clicking `{css}`"), DEFAULT_TIMEOUT).await
    }

    /// On the IdP's hosted sign-in page: types the username and password and presses Enter, as a person
    /// does; waits for the page the sign-in leads to and returns its URL.
    pub async fn fill_and_submit_sign_in(&self, username: &str, password: &str) -> anyhow::Result<String> {
        self.fill("#okta-signin-username", username).await?;
        self.fill("#okta-signin-password", password).await?;
        self.press_enter("#okta-signin-password").await
    }

    /// Runs `fetch(path, {credentials: 'include', cache: 'no-store'})` in the page (so it carries the tab's
    /// cookies) and returns the status and body. The page's origin must be the one `path` is relative to.
    ///
    /// `no-store` keeps the request out of Chromium's HTTP cache. The cache lets only one request per URL
    /// through at a time: a second tab's request for the same URL waits until the first one's answer has
    /// arrived, so two tabs could never be in flight together.
    pub async fn fetch(&self, path: &str) -> anyhow::Result<(u16, String)> {
        const JS: &str = "const [path, done] = arguments; \
             fetch(path, {credentials: 'include', cache: 'no-store'}) \
               .then(r => r.text().then(t => done([r.status, t]))) \
               .catch(e => done([0, 'fetch failed: ' + e]));";
        let p = path.to_string();
        let v = self.with(|c| async move { c.execute_async(JS, vec![json!(p)]).await }).await?;
        fetch_result(&v).ok_or_else(|| anyhow!("fetch {path} returned {v}"))
    }

    /// Sends the same request as [`Tab::fetch`] from the page and returns without waiting for the answer, so
    /// requests from several tabs can be in flight at the same moment.
    pub async fn start_fetch(&self, path: &str) -> anyhow::Result<PendingFetch> {
        const JS: &str = "const [path, id] = arguments; \
             window.__harnessFetches = window.__harnessFetches || {}; \
             window.__harnessFetches[id] = null; \
             fetch(path, {credentials: 'include', cache: 'no-store'}) \
               .then(r => r.text().then(t => { window.__harnessFetches[id] = [r.status, t]; })) \
               .catch(e => { window.__harnessFetches[id] = [0, 'fetch failed: ' + e]; }); \
             return true;";
        let id = format!("f{}", self.inner.fetches.fetch_add(1, Ordering::Relaxed));
        self.execute(JS, vec![json!(path), json!(id)]).await?;
        Ok(PendingFetch { tab: self.clone(), id, path: path.to_string() })
    }

    /// Writes a PNG screenshot of the tab's viewport to `path` (creating its directory).
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        let png = self.with(|c| async move { c.screenshot().await }).await?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Deletes a cookie visible to the current document (e.g. the relying party's session cookie, to end a
    /// session the way its expiry would, while the IdP session lives on).
    pub async fn delete_cookie(&self, name: &str) -> anyhow::Result<()> {
        let n = name.to_string();
        self.with(|c| async move { c.delete_cookie(&n).await }).await
    }

    /// Adds an HttpOnly, SameSite=Lax cookie for the current document's host.
    pub async fn add_cookie(&self, name: &str, value: &str, path: &str) -> anyhow::Result<()> {
        // fantoccini's add_cookie sends `"domain": null` and `"sameSite": "None"`, which Chromium refuses
        // (a null domain) or drops (None without Secure), so the command is sent as the spec spells it.
        let body = json!({"cookie": {"name": name, "value": value, "path": path, "httpOnly": true, "sameSite": "Lax"}}).to_string();
        let (wd, sid) = (self.inner.wd.clone(), self.inner.session_id.clone());
        let reply = self
            .with(|_| async move {
                Ok(tokio::task::spawn_blocking(move || wd_sync(&wd, "POST", &format!("/session/{sid}/cookie"), Some(&body))).await)
            })
            .await?;
        match reply {
            Ok(Ok(Value::Null)) => Ok(()),
            Ok(Ok(v)) => bail!("chromedriver refused the cookie {name}: {v}"),
            Ok(Err(e)) => bail!("cannot reach chromedriver: {e}"),
            Err(e) => bail!("the cookie request did not finish: {e}"),
        }
    }

    /// Starts a sign-in at a relying party's `login_url` with extra authorize parameters (`prompt=none`,
    /// `max_age`, `login_hint`) that its login page cannot add: the login redirect is fetched outside the
    /// browser, the attempt's cookies are given to the browser on the relying party's origin, and the tab goes
    /// to the IdP's authorize URL with the parameters added. Returns the URL the tab ends on.
    pub async fn start_sign_in_with(&self, login_url: &str, authorize_params: &[(&str, &str)]) -> anyhow::Result<String> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let r = http.get(login_url).send().await.with_context(|| format!("GET {login_url}"))?;
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("GET {login_url} answered {} without a Location", r.status()))?
            .to_string();
        let cookies: Vec<(String, String, Option<String>)> = r
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let mut parts = v.split(';');
                let (name, value) = parts.next()?.trim().split_once('=')?;
                let path =
                    parts.find_map(|a| a.trim().strip_prefix("Path=").or_else(|| a.trim().strip_prefix("path=")).map(str::to_string));
                Some((name.to_string(), value.to_string(), path))
            })
            .collect();
        let origin = url::Url::parse(login_url)?.origin().ascii_serialization();
        // Cookies can only be added for the current document's site.
        if !self.current_url().await?.starts_with(&origin) {
            self.goto(&format!("{origin}/")).await?;
        }
        for (name, value, path) in cookies {
            self.add_cookie(&name, &value, path.as_deref().unwrap_or("/"))
                .await
                .context("cannot give the browser the sign-in attempt's cookie")?;
        }
        let mut target = url::Url::parse(&location).with_context(|| format!("the login redirect {location:?} is not a URL"))?;
        target.query_pairs_mut().extend_pairs(authorize_params.iter().copied());
        self.goto(target.as_str()).await
    }
}

fn fetch_result(v: &Value) -> Option<(u16, String)> {
    let a = v.as_array()?;
    Some((u16::try_from(a.first()?.as_u64()?).ok()?, a.get(1)?.as_str()?.to_string()))
}

impl PendingFetch {
    /// Waits for the answer: status (0 when the request failed) and body.
    pub async fn finish(self) -> anyhow::Result<(u16, String)> {
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            let v = self.tab.execute("return (window.__harnessFetches || {})[arguments[0]] || null;", vec![json!(self.id)]).await?;
            if let Some(r) = fetch_result(&v) {
                return Ok(r);
            }
            if Instant::now() > deadline {
                bail!("fetch {} did not finish within {DEFAULT_TIMEOUT:?} (or the tab navigated away)", self.path);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl ArtifactsGuard {
    /// The test passed: nothing is saved.
    pub fn passed(mut self) {
        self.passed = true;
    }
}

impl Drop for ArtifactsGuard {
    fn drop(&mut self) {
        if !self.passed || std::thread::panicking() {
            let dir = save_artifacts_sync(&self.inner, &self.name);
            eprintln!("browser artifacts (screenshot, HTML, URL of every tab; chromedriver.log) saved in {}", dir.display());
        }
    }
}

// ----- the blocking path: drop and artifacts, usable while a runtime unwinds -----

/// Where artifacts go: `HARNESS_BROWSER_ARTIFACTS`, else `$CARGO_TARGET_DIR/browser-artifacts`, else
/// `target/browser-artifacts` of the workspace around the current directory.
pub fn artifacts_root() -> PathBuf {
    if let Some(d) = std::env::var_os("HARNESS_BROWSER_ARTIFACTS") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("browser-artifacts");
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir());
    let root = cwd.ancestors().filter(|d| d.join("Cargo.lock").is_file()).last().map(Path::to_path_buf).unwrap_or(cwd);
    root.join("target").join("browser-artifacts")
}

fn save_artifacts_sync(inner: &Inner, name: &str) -> PathBuf {
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let dir = artifacts_root().join(safe);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    match (inner.driver.lock().as_ref().map(Driver::log_path), &inner.remote) {
        (Some(log), _) => {
            let _ = std::fs::copy(&log, dir.join("chromedriver.log"));
        }
        (None, Some(url)) => {
            let note = format!(
                "The browser ran on the remote WebDriver {url}; its log is that chromedriver's own (with docker-compose: docker compose logs chromedriver).\n"
            );
            let _ = std::fs::write(dir.join("webdriver.txt"), note);
        }
        (None, None) => {}
    }
    let (wd, sid) = (&inner.wd, &inner.session_id);
    let handles = wd_sync(wd, "GET", &format!("/session/{sid}/window/handles"), None).ok();
    let handles: Vec<String> =
        handles.and_then(|v| v.as_array().cloned()).unwrap_or_default().iter().filter_map(|h| h.as_str().map(str::to_string)).collect();
    for (i, h) in handles.iter().enumerate() {
        let n = i + 1;
        let body = json!({ "handle": h }).to_string();
        if wd_sync(wd, "POST", &format!("/session/{sid}/window"), Some(&body)).is_err() {
            continue;
        }
        if let Ok(Value::String(png)) = wd_sync(wd, "GET", &format!("/session/{sid}/screenshot"), None)
            && let Ok(bytes) = STANDARD.decode(png)
        {
            let _ = std::fs::write(dir.join(format!("tab-{n}.png")), bytes);
        }
        if let Ok(Value::String(html)) = wd_sync(wd, "GET", &format!("/session/{sid}/source"), None) {
            let _ = std::fs::write(dir.join(format!("tab-{n}.html")), html);
        }
        if let Ok(Value::String(url)) = wd_sync(wd, "GET", &format!("/session/{sid}/url"), None) {
            let _ = std::fs::write(dir.join(format!("tab-{n}.url.txt")), url + "\n");
        }
    }
    // The session is now on the last tab, not the one the tabs' lock remembers: the next command switches.
    if let Ok(mut cur) = inner.current.try_lock() {
        *cur = None;
    }
    dir
}

/// Connects to the WebDriver, trying each address its host name resolves to.
fn wd_connect(wd: &WdAddr) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} resolves to no address", wd.host));
    for addr in (wd.host.as_str(), wd.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, SYNC_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One WebDriver command over blocking HTTP/1.1 to chromedriver; returns the reply's `value`.
fn wd_sync(wd: &WdAddr, method: &str, path: &str, body: Option<&str>) -> std::io::Result<Value> {
    let mut s = wd_connect(wd)?;
    s.set_read_timeout(Some(SYNC_TIMEOUT))?;
    s.set_write_timeout(Some(SYNC_TIMEOUT))?;
    let body = body.unwrap_or(if method == "POST" { "{}" } else { "" });
    let req = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        wd.prefix,
        wd.host_header(),
        body.len()
    );
    s.write_all(req.as_bytes())?;
    // chromedriver keeps the connection open despite `Connection: close`, so the body is read by its length.
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (split, head) = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad("connection closed before the end of the headers"));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (split, String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase());
        }
    };
    let header = |name: &str| head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
    let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
    let length: Option<usize> = header("content-length:").and_then(|v| v.parse().ok());
    let start = split + 4;
    loop {
        let body = &raw[start..];
        let complete = match (chunked, length) {
            (true, _) => body.ends_with(b"0\r\n\r\n"),
            (false, Some(l)) => body.len() >= l,
            (false, None) => false,
        };
        if complete {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let mut payload = raw[start..].to_vec();
    if chunked {
        payload = dechunk(&payload).ok_or_else(|| bad("bad chunked body"))?;
    } else if let Some(l) = length {
        payload.truncate(l);
    }
    let v: Value = serde_json::from_slice(&payload).map_err(|e| bad(&e.to_string()))?;
    Ok(v.get("value").cloned().unwrap_or(Value::Null))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n").as_deref(), Some(&b"Wikipedia"[..]));
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    #[test]
    fn webdriver_urls_give_host_port_and_prefix() {
        let a = WdAddr::parse("http://chromedriver:9515").unwrap();
        assert_eq!(a, WdAddr { host: "chromedriver".into(), port: 9515, prefix: String::new() });
        assert_eq!((a.base_url(), a.host_header()), ("http://chromedriver:9515/".to_string(), "chromedriver:9515".to_string()));
        let b = WdAddr::parse("http://grid:4444/wd/hub/").unwrap();
        assert_eq!(b.prefix, "/wd/hub");
        assert_eq!(b.base_url(), "http://grid:4444/wd/hub/");
        let c = WdAddr::parse("http://[::1]:9515").unwrap();
        assert_eq!((c.host.as_str(), c.base_url(), c.host_header()), ("::1", "http://[::1]:9515/".to_string(), "[::1]:9515".to_string()));
        assert_eq!(WdAddr::parse("http://h").unwrap().port, 80);
        assert_eq!(
            WdAddr::parse("https://h:1").unwrap_err().to_string(),
            "--webdriver-url / HARNESS_WEBDRIVER_URL \"https://h:1\": not an http:// URL (a WebDriver over TLS is not supported); expected http://host:port, e.g. http://chromedriver:9515"
        );
    }

    #[test]
    fn a_webdriver_url_typo_is_named_with_the_flag() {
        let tail = "expected http://host:port, e.g. http://chromedriver:9515";
        assert_eq!(
            check_webdriver_url("notaurl"),
            Err(format!("--webdriver-url / HARNESS_WEBDRIVER_URL \"notaurl\": not a URL (relative URL without a base); {tail}"))
        );
        // The scheme forgotten: `chromedriver` is then the scheme.
        assert_eq!(
            check_webdriver_url("chromedriver:9515"),
            Err(format!("--webdriver-url / HARNESS_WEBDRIVER_URL \"chromedriver:9515\": not an http:// URL; {tail}"))
        );
        assert_eq!(
            check_webdriver_url("http://"),
            Err(format!("--webdriver-url / HARNESS_WEBDRIVER_URL \"http://\": not a URL (empty host); {tail}"))
        );
        assert_eq!(
            check_webdriver_url("http://h:1/?x=1"),
            Err(format!("--webdriver-url / HARNESS_WEBDRIVER_URL \"http://h:1/?x=1\": a query or fragment is not allowed; {tail}"))
        );
        for ok in ["http://chromedriver:9515", "http://127.0.0.1:9515/", "http://grid:4444/wd/hub", "http://[::1]:9515"] {
            assert_eq!(check_webdriver_url(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_webdriver_error_answer_is_one_line_then_the_whole_text() {
        let v = json!({"error": "unknown command", "message": "unknown command: wd/hub/status", "stacktrace": "#0 0x1 <unknown>\n#1 0x2 <unknown>\n"});
        assert_eq!(
            wd_error_text(&v),
            Some((
                "unknown command: wd/hub/status".to_string(),
                "error \"unknown command\": unknown command: wd/hub/status\nstacktrace:\n#0 0x1 <unknown>\n#1 0x2 <unknown>".to_string()
            ))
        );
        let v = json!({"error": "session not created", "message": "session not created: gone\n  (details)"});
        assert_eq!(
            wd_error_text(&v),
            Some((
                "session not created: gone".to_string(),
                "error \"session not created\": session not created: gone\n  (details)".to_string()
            ))
        );
        assert_eq!(wd_error_text(&json!({"error": "unknown error"})).map(|t| t.0), Some("unknown error".to_string()));
        assert_eq!(wd_error_text(&json!({"ready": false, "message": "busy"})), None);
    }

    #[test]
    fn a_remote_session_gets_no_local_paths() {
        let remote = Value::Object(capabilities(None));
        let o = &remote["goog:chromeOptions"];
        assert_eq!(o.get("binary"), None);
        let args: Vec<&str> = o["args"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(args.iter().all(|a| !a.starts_with("--user-data-dir")), "{args:?}");
        assert!(args.contains(&"--headless=new") && args.contains(&WINDOW_SIZE), "{args:?}");
        let local = Value::Object(capabilities(Some((Path::new("/usr/bin/chromium"), Path::new("/tmp/p")))));
        assert_eq!(local["goog:chromeOptions"]["binary"], "/usr/bin/chromium");
        assert!(local["goog:chromeOptions"]["args"].as_array().unwrap().contains(&json!("--user-data-dir=/tmp/p")));
    }

    #[test]
    fn fetch_results_are_status_and_body() {
        assert_eq!(fetch_result(&json!([401, "{}"])), Some((401, "{}".to_string())));
        assert_eq!(fetch_result(&json!(null)), None);
    }
}
