//! `harness bench`: a load generator for mock-idp (a running one, or in-process) with an HDR histogram,
//! printing throughput and p50/p90/p99/max latency next to the machine's raw RS256 signing rate measured
//! in the same run, so the ratio to the signing bound is visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `client_credentials` at the `default` server with `svc-local` (1 signature per response).
    ClientCredentials,
    /// Refresh grants with STATIC refresh tokens (access + ID token: 2 signatures). The in-process IdP sets
    /// `bsr-local` to STATIC; a running one (`--idp-url`) must have it so (the default tenant rotates).
    StaticRefresh,
    /// Refresh chains with ROTATE refresh tokens (2 signatures).
    RotateRefresh,
    /// Full headless sign-in: authn, authorize with sessionToken and PKCE, code exchange (2 signatures).
    SignIn,
    /// `GET /oauth2/default/v1/keys` (no signature).
    Jwks,
    /// `GET /oauth2/default/.well-known/openid-configuration` (no signature).
    Discovery,
    /// Start-up of the `mock-idp` binary (`--binary`): time from exec to the first answered discovery
    /// request, over repeated starts (`--runs`).
    Startup,
    /// An in-process tenant for a test: `MockIdp::start` with the default options until it answers
    /// discovery, over repeated starts (`--runs`) in one process (the first start includes the key pool).
    TenantStart,
    /// Memory of live refresh families: the `mock-idp` binary (`--binary`) gets `--families` sign-ins (each
    /// a refresh-token family), its resident memory is read before and after, then its clock is moved past
    /// every expiry and the memory read again once the purge has run.
    Families,
}

fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

impl Workload {
    /// The name on the command line (`client-credentials`, `tenant-start`, …).
    pub fn name(self) -> &'static str {
        match self {
            Workload::ClientCredentials => "client-credentials",
            Workload::StaticRefresh => "static-refresh",
            Workload::RotateRefresh => "rotate-refresh",
            Workload::SignIn => "sign-in",
            Workload::Jwks => "jwks",
            Workload::Discovery => "discovery",
            Workload::Startup => "startup",
            Workload::TenantStart => "tenant-start",
            Workload::Families => "families",
        }
    }

    /// RS256 signatures per successful operation, for the signing bound.
    pub fn signatures(self) -> u32 {
        match self {
            Workload::ClientCredentials => 1,
            Workload::StaticRefresh | Workload::RotateRefresh | Workload::SignIn => 2,
            Workload::Jwks | Workload::Discovery | Workload::Startup | Workload::TenantStart | Workload::Families => 0,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "client-credentials")]
    pub workload: Workload,
    /// Requests in flight at once (at most 100,000, and no more than the open-file limit holds: a connection
    /// each, two with the IdP in process).
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    pub concurrency: usize,
    /// Seconds of load (after one second of warm-up), from 0.01 to 86400.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// A running mock-idp (plain `http://`; the load generator speaks HTTP/1.1 without TLS); without it an
    /// in-process one is started (default tenant, system clock).
    #[arg(long)]
    pub idp_url: Option<String>,
    /// Print the result as JSON on standard output (the lines for a person go to standard error).
    #[arg(long)]
    pub json: bool,
    /// Skip measuring the raw signing rate.
    #[arg(long)]
    pub no_signing_rate: bool,
    /// client_credentials against another provider: its token endpoint path (default: mock-idp's
    /// `/oauth2/default/v1/token`).
    #[arg(long, default_value = "/oauth2/default/v1/token")]
    pub token_path: String,
    /// client_credentials: the service app's client ID (the refresh and sign-in workloads use `bsr-local`).
    #[arg(long, default_value = "svc-local")]
    pub client_id: String,
    /// client_credentials: the service app's client secret.
    #[arg(long, default_value = "svc-local-secret")]
    pub client_secret: String,
    /// client_credentials: the scope asked for.
    #[arg(long, default_value = "bsr.read")]
    pub scope: String,
    /// startup and families: the mock-idp binary to start (default: `mock-idp` next to this `harness`).
    #[arg(long)]
    pub binary: Option<std::path::PathBuf>,
    /// startup and tenant-start: how many starts to time.
    #[arg(long, default_value_t = 20, value_parser = at_least_one())]
    pub runs: usize,
    /// families: how many refresh-token families to create.
    #[arg(long, default_value_t = 100_000, value_parser = at_least_one())]
    pub families: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub workload: Workload,
    pub concurrency: usize,
    pub seconds: f64,
    pub ok: u64,
    pub errors: u64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub signing_rate_per_s: Option<f64>,
    pub signing_bound_per_s: Option<f64>,
    pub share_of_bound: Option<f64>,
    /// families: resident memory of the mock-idp process (MiB) at start, with the families live, and
    /// after the clock passed their expiry and the purge ran.
    pub rss_mib: Option<RssReport>,
    /// The first error of the measured window, when there were any.
    pub first_error: Option<String>,
    /// Errors in the second of warm-up before the window (not in `errors`), and the first of them.
    pub warm_up_errors: u64,
    pub warm_up_error: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RssReport {
    pub families: usize,
    /// Sign-ins whose latency was measured: all but the first, which also waits for the keys generated at
    /// start.
    pub timed_sign_ins: u64,
    pub before: f64,
    /// Right after the sign-ins: families, sessions, codes, access and ID tokens, System Log all live.
    pub live: f64,
    /// An hour later: codes and access tokens expired and purged (ID-token records stay a day longer, for
    /// id_token_hint), families and sessions live.
    pub families_only: f64,
    pub after_expiry: f64,
}

/// RS256 signatures per second over `threads` threads for `secs` seconds (see `mock_idp::signing::measure_rate`).
pub fn signing_rate(threads: usize, secs: f64) -> f64 {
    mock_idp::signing::measure_rate(threads, secs)
}

pub(crate) mod conn;

use conn::{Conn, Target};

/// What the workers send: the target and the requests that never change, built once.
struct Driver {
    target: Target,
    /// `Authorization` of the app the sign-in and refresh workloads use (`bsr-local`).
    bsr_auth: String,
    /// What an error message must not show should a server echo it back: the client secrets, their
    /// `Authorization` values and the password of the sign-in.
    secrets: Vec<String>,
    authn: Vec<u8>,
    client_credentials: Vec<u8>,
    jwks: Vec<u8>,
    discovery: Vec<u8>,
}

const REDIRECT: &str = "http://127.0.0.1:3000/oauth2/callback";
/// alice's password in the default tenant.
const PASSWORD: &str = "Passw0rd!";

fn basic(id: &str, secret: &str) -> String {
    // RFC 6749 §2.3.1: each part form-urlencoded before base64.
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

/// The start of an answer's body for an error message, on one line (an HTML error page's lines and
/// indentation collapsed to single spaces).
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(2000)]).split_whitespace().collect::<Vec<_>>().join(" ");
    // Control characters (a terminal's escape sequences among them) are not printed as they are.
    let s: String = s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if body.len() > 2000 { format!("{s}…") } else { s }
}

/// The names of a JSON object's members, for an error message (never their values, which may be tokens).
fn members(v: &Value) -> String {
    match v.as_object() {
        Some(o) if !o.is_empty() => o.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
        _ => "no members".into(),
    }
}

/// Whether a JSON body has the member `name` (quoted): the name followed by a colon, so a value that
/// happens to be the name (`{"missing":"access_token"}`) does not count.
fn has_member(body: &[u8], name: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = body[from..].windows(name.len()).position(|w| w == name) {
        let after = from + i + name.len();
        if body[after..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':') {
            return true;
        }
        from = after;
    }
    false
}

/// A URL for an error message: without its query and fragment, which may carry codes and tokens.
fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

/// What a failed request was, for its error: the operation, the method and the path, without the query
/// (an authorize request's query carries a session token).
fn request_of(what: &str, req: &[u8]) -> String {
    let line = req.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(method), Some(target)) => format!("{what} ({method} {})", target.split('?').next().unwrap_or_default()),
        _ => what.to_string(),
    }
}

/// Sends a prepared request and reads its answer as a 200 with a JSON body.
async fn json_of(c: &mut Conn, req: &[u8], what: &str) -> Result<Value, String> {
    let a = c.send(req).await.map_err(|e| format!("{}: {e}", request_of(what, req)))?;
    if a.status != 200 {
        return Err(format!("{}: {} {}", request_of(what, req), a.status, snippet(&a.body)));
    }
    serde_json::from_slice(&a.body).map_err(|e| format!("{}: not JSON: {e}", request_of(what, req)))
}

impl Driver {
    /// An error message with every known secret in it replaced.
    fn redact(&self, e: &str) -> String {
        let e = self.secrets.iter().fold(e.to_string(), |e, s| e.replace(s.as_str(), "[secret]"));
        // Tokens, codes and session tokens of this run: long runs of base64url (a JWT's parts and dots
        // included) are not printed.
        let mut out = String::with_capacity(e.len());
        let mut run = String::new();
        let flush = |run: &mut String, out: &mut String| {
            out.push_str(if run.len() >= 32 { "[token]" } else { run.as_str() });
            run.clear();
        };
        for c in e.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                run.push(c);
            } else {
                flush(&mut run, &mut out);
                out.push(c);
            }
        }
        flush(&mut run, &mut out);
        // Cut after the secrets are gone, so no part of one is left at the cut.
        match out.char_indices().nth(400) {
            Some((i, _)) => format!("{}…", &out[..i]),
            None => out,
        }
    }

    fn new(target: Target, args: &BenchArgs) -> Driver {
        let form = |pairs: &[(&str, &str)]| form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let cc_body = form(&[("grant_type", "client_credentials"), ("scope", args.scope.as_str())]);
        let cc_auth = basic(&args.client_id, &args.client_secret);
        Driver {
            client_credentials: target.request(
                "POST",
                &args.token_path,
                &[("Authorization", &cc_auth), ("Content-Type", "application/x-www-form-urlencoded")],
                cc_body.as_bytes(),
            ),
            authn: target.request(
                "POST",
                "/api/v1/authn",
                &[("Content-Type", "application/json"), ("Accept", "application/json")],
                json!({"username": "alice@example.com", "password": PASSWORD}).to_string().as_bytes(),
            ),
            jwks: target.request("GET", "/oauth2/default/v1/keys", &[], b""),
            discovery: target.request("GET", "/oauth2/default/.well-known/openid-configuration", &[], b""),
            bsr_auth: basic("bsr-local", "bsr-local-secret"),
            secrets: [
                args.client_secret.as_str(),
                &form_urlencoded::byte_serialize(args.client_secret.as_bytes()).collect::<String>(),
                &cc_auth,
                "bsr-local-secret",
                &basic("bsr-local", "bsr-local-secret"),
                PASSWORD,
            ]
            .into_iter()
            .flat_map(|s| [s.to_string(), s.strip_prefix("Basic ").unwrap_or_default().to_string()])
            .filter(|s| s.len() >= 4)
            .collect(),
            target,
        }
    }

    fn token_request(&self, body: &str) -> Vec<u8> {
        self.target.request(
            "POST",
            "/oauth2/default/v1/token",
            &[("Authorization", &self.bsr_auth), ("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }

    async fn sign_in(&self, c: &mut Conn) -> Result<Value, String> {
        let st = json_of(c, &self.authn, "authn").await?;
        let token =
            st["sessionToken"].as_str().ok_or_else(|| format!("{}: no sessionToken in the answer", request_of("authn", &self.authn)))?;
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", "bsr-local"),
                ("response_type", "code"),
                ("scope", "openid profile email offline_access"),
                ("redirect_uri", REDIRECT),
                ("state", "bench"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("sessionToken", token),
            ])
            .finish();
        let req = self.target.request("GET", &format!("/oauth2/default/v1/authorize?{query}"), &[], b"");
        let r = c.send(&req).await.map_err(|e| format!("{}: {e}", request_of("authorize", &req)))?;
        let loc =
            r.location.ok_or_else(|| format!("{} did not redirect: {} {}", request_of("authorize", &req), r.status, snippet(&r.body)))?;
        let code = url::Url::parse(&loc)
            .ok()
            .and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.to_string()))
            .ok_or_else(|| format!("{}: no code in the redirect to {}", request_of("authorize", &req), without_query(&loc)))?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
            .finish();
        let t = json_of(c, &self.token_request(&body), "code exchange").await?;
        if t.get("access_token").is_none() {
            return Err(format!("code exchange: no access_token in the answer (it has {})", members(&t)));
        }
        Ok(t)
    }

    async fn refresh(&self, c: &mut Conn, rt: &str) -> Result<String, String> {
        let body =
            form_urlencoded::Serializer::new(String::new()).extend_pairs([("grant_type", "refresh_token"), ("refresh_token", rt)]).finish();
        let t = json_of(c, &self.token_request(&body), "refresh").await?;
        t["refresh_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("refresh: no refresh_token in the answer (it has {})", members(&t)))
    }

    /// Sends a prepared request; a 2xx answer whose body has `member` (a JSON member name, quoted) is
    /// success, so a server that answers 200 with something else does not count.
    async fn send_ok(&self, c: &mut Conn, req: &[u8], what: &str, member: &str) -> Result<(), String> {
        let r = c.send(req).await.map_err(|e| format!("{}: {e}", request_of(what, req)))?;
        if !(200..300).contains(&r.status) {
            return Err(format!("{}: {} {}", request_of(what, req), r.status, snippet(&r.body)));
        }
        if !has_member(&r.body, member.as_bytes()) {
            return Err(format!("{}: {} without {member} in the answer: {}", request_of(what, req), r.status, snippet(&r.body)));
        }
        Ok(())
    }

    async fn client_credentials(&self, c: &mut Conn) -> Result<(), String> {
        self.send_ok(c, &self.client_credentials, "client_credentials", "\"access_token\"").await
    }
}

/// Latencies in microseconds, 1 µs to 60 s, three significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What the load loop measured.
struct Outcome {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    /// The first error of the window.
    first_error: Option<String>,
    /// Errors of the second of warm-up before the window (not counted in `errors`), and the first of them.
    warm_up_errors: u64,
    warm_up_error: Option<String>,
    seconds: f64,
}

/// How long after the measured window a request may still take before the run gives up on it.
const GRACE: Duration = Duration::from_secs(2);

/// The load loop: `concurrency` workers, each on its own connection, one second of warm-up, then
/// `duration` seconds measured. An operation counts when it ended inside the window, its latency when it
/// also started there; one that has no answer by the window's end plus [`GRACE`] is an error, so a server
/// that stops answering ends the run instead of hanging it.
async fn drive(driver: Arc<Driver>, workload: Workload, concurrency: usize, duration: f64) -> anyhow::Result<Outcome> {
    let hist = Arc::new(Mutex::new((latency_histogram(), latency_histogram())));
    let (ok, errors, warm_up_errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // 0: the warm-up, 1: the measured window, 2: after it.
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The first error of the window, and the first of the warm-up.
    let first_error = Arc::new(Mutex::new((None::<String>, None::<String>)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1) + Duration::from_secs_f64(duration) + GRACE;
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (d, hist, ok, errors, warm_up_errors, phase, stop, first_error) = (
            driver.clone(),
            hist.clone(),
            ok.clone(),
            errors.clone(),
            warm_up_errors.clone(),
            phase.clone(),
            stop.clone(),
            first_error.clone(),
        );
        let w = workload;
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(d.target.clone());
            // Refresh workloads: each worker drives its own family, as independent sessions do, signing in
            // (again) whenever it has none; a failed sign-in counts as an error.
            let mut rt: Option<String> = None;
            // Latencies of the operations that started and ended in the window, and of all that ended in it.
            let (mut local, mut local_all) = (latency_histogram(), latency_histogram());
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let started_in = phase.load(Ordering::Relaxed) == 1;
                let refresh = matches!(w, Workload::StaticRefresh | Workload::RotateRefresh);
                let op = async {
                    match w {
                        Workload::ClientCredentials => d.client_credentials(&mut c).await.map(|()| true),
                        Workload::StaticRefresh | Workload::RotateRefresh => match &rt {
                            None => {
                                let t = d.sign_in(&mut c).await?;
                                let got = t["refresh_token"].as_str().ok_or("the sign-in gave no refresh token (no offline_access?)")?;
                                rt = Some(got.to_string());
                                Ok(false)
                            }
                            Some(cur) => {
                                let next = d.refresh(&mut c, cur).await?;
                                match (w, next == *cur) {
                                    (Workload::StaticRefresh, false) => {
                                        Err("static-refresh: the refresh token rotated; the IdP's bsr-local is not set to STATIC refresh tokens".to_string())
                                    }
                                    (Workload::RotateRefresh, true) => {
                                        Err("rotate-refresh: the refresh token did not rotate; the IdP's bsr-local is set to STATIC refresh tokens".to_string())
                                    }
                                    _ => {
                                        rt = Some(next);
                                        Ok(true)
                                    }
                                }
                            }
                        },
                        Workload::SignIn => d.sign_in(&mut c).await.map(|_| true),
                        Workload::Jwks => d.send_ok(&mut c, &d.jwks, "jwks", "\"keys\"").await.map(|()| true),
                        Workload::Discovery => d.send_ok(&mut c, &d.discovery, "discovery", "\"issuer\"").await.map(|()| true),
                        // Handled before the load loop (`starts`, `families`).
                        Workload::Startup | Workload::TenantStart | Workload::Families => Err("not a load workload".into()),
                    }
                };
                let (r, timed_out) = match tokio::time::timeout_at(deadline, op).await {
                    Ok(r) => (r, false),
                    Err(_) => {
                        c.reset();
                        (Err(format!("no answer by the run's deadline, {:.1} s after the measured window", GRACE.as_secs_f64())), true)
                    }
                };
                let ended = phase.load(Ordering::Relaxed);
                let ended_in = ended == 1;
                if let Err(e) = &r {
                    if refresh {
                        rt = None;
                    }
                    // An error of the window (or a request still unanswered when the run gave up) counts and is
                    // reported; one of the warm-up only explains a run in which nothing succeeded; one after the
                    // window (a request in flight when it closed) is neither.
                    if ended_in || timed_out {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().0.get_or_insert_with(|| d.redact(e));
                    } else if ended == 0 {
                        warm_up_errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().1.get_or_insert_with(|| d.redact(e));
                    }
                }
                // Throughput: operations that ended in the window; latency: those that also started in it (one
                // in flight when the window opened would bring its warm-up time).
                if let (Ok(true), true) = (&r, ended_in) {
                    ok.fetch_add(1, Ordering::Relaxed);
                    let us = t0.elapsed().as_micros() as u64;
                    if started_in {
                        let _ = local.record(us);
                    }
                    let _ = local_all.record(us);
                }
                if timed_out {
                    break;
                }
            }
            let mut h = hist.lock();
            let _ = h.0.add(&local);
            let _ = h.1.add(&local_all);
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(1, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    phase.store(2, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        if let Err(e) = t.await {
            errors.fetch_add(1, Ordering::Relaxed);
            first_error.lock().0.get_or_insert(format!("a load worker failed: {e}"));
        }
    }
    // When no operation both started and ended in the window (each took longer than it), the latencies of
    // those that ended in it, rather than none.
    let hist = {
        let h = hist.lock();
        if h.0.is_empty() { h.1.clone() } else { h.0.clone() }
    };
    let (first_error, warm_up_error) = first_error.lock().clone();
    Ok(Outcome {
        hist,
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        warm_up_errors: warm_up_errors.load(Ordering::Relaxed),
        warm_up_error,
        seconds,
    })
}

/// Each worker holds a connection (two descriptors when the IdP is in this process): refuses a concurrency
/// the process's open-file limit cannot hold, before any worker starts, instead of failing (or using up
/// memory) on the way.
fn check_open_files(args: &BenchArgs) -> anyhow::Result<()> {
    const MAX: usize = 100_000;
    anyhow::ensure!(args.concurrency <= MAX, "--concurrency must be at most {MAX}, got {}", args.concurrency);
    let per_worker = if args.idp_url.is_none() && !matches!(args.workload, Workload::Startup | Workload::TenantStart | Workload::Families) {
        2
    } else {
        1
    };
    // The runtime, the signing threads, a spawned mock-idp's pipes: a margin.
    let needed = (args.concurrency * per_worker + 64) as u64;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the limits into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
        anyhow::ensure!(
            needed <= lim.rlim_cur,
            "--concurrency {} needs about {needed} open files ({}), more than this process may open ({}; raise it with `ulimit -n`, at most {})",
            args.concurrency,
            if per_worker == 2 { "two per connection with the IdP in this process" } else { "one per connection" },
            lim.rlim_cur,
            lim.rlim_max
        );
    }
    Ok(())
}

/// The arguments' own errors (a usage error: `harness bench` exits 2), before anything starts.
pub fn check_args(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.concurrency >= 1 && args.runs >= 1 && args.families >= 1,
        "--concurrency, --runs and --families must be at least 1"
    );
    anyhow::ensure!(
        args.duration.is_finite() && (0.01..=86_400.0).contains(&args.duration),
        "--duration must be a number of seconds from 0.01 to 86400 (a day), got {}",
        if args.duration != 0.0 && args.duration.abs() < 1e-3 { format!("{:e}", args.duration) } else { args.duration.to_string() }
    );
    check_open_files(args)?;
    anyhow::ensure!(
        args.token_path.starts_with('/') && !args.token_path.chars().any(|c| c.is_whitespace() || c.is_control()),
        "--token-path must be a path starting with / and without spaces, got {:?}",
        args.token_path
    );
    if args.idp_url.is_some() && matches!(args.workload, Workload::Startup | Workload::TenantStart | Workload::Families) {
        anyhow::bail!("--idp-url does not apply to the {} workload: it starts its own mock-idp", args.workload.name());
    }
    if let Some(u) = &args.idp_url {
        conn::check_base_url(u)?;
    }
    Ok(())
}

/// Runs one workload and returns its numbers.
pub async fn run(args: &BenchArgs) -> anyhow::Result<BenchResult> {
    crate::crypto::install();
    check_args(args)?;
    match args.workload {
        Workload::Startup | Workload::TenantStart => return starts(args).await,
        Workload::Families => return families(args).await,
        _ => {}
    }
    let local = match &args.idp_url {
        Some(_) => None,
        None => {
            let mut cfg = mock_idp::TenantConfig::default_tenant();
            if args.workload == Workload::StaticRefresh
                && let Some(a) = cfg.apps.iter_mut().find(|a| a.credentials.oauth_client.client_id == "bsr-local")
            {
                a.settings.oauth_client.refresh_token =
                    Some(mock_idp::config::RefreshTokenConfig { rotation_type: mock_idp::core::model::RotationType::Static, leeway: 30 });
            }
            Some(mock_idp::MockIdp::start(mock_idp::Options { config: cfg, clock: mock_idp::Clock::system(), ..Default::default() }).await?)
        }
    };
    let base = args
        .idp_url
        .clone()
        .or_else(|| local.as_ref().map(|i| i.base_url().to_string()))
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let driver = Arc::new(Driver::new(Target::resolve(&base).await?, args));
    let out = drive(driver, args.workload, args.concurrency, args.duration).await?;
    drop(local);
    if out.ok == 0 {
        match out.first_error.as_ref().or(out.warm_up_error.as_ref()) {
            Some(e) => anyhow::bail!("the workload failed: {e}"),
            None => anyhow::bail!("no operation completed within the {} s measured", args.duration),
        }
    }
    let signing = if args.no_signing_rate || args.workload.signatures() == 0 {
        None
    } else {
        Some(signing_rate(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), 2.0))
    };
    let r = BenchResult::measured(args.workload, args.concurrency, out.seconds, out.ok, out.errors, &out.hist);
    let bound = signing.map(|s| s / args.workload.signatures() as f64);
    Ok(BenchResult {
        signing_rate_per_s: signing,
        signing_bound_per_s: bound,
        share_of_bound: bound.map(|b| r.throughput / b),
        first_error: out.first_error,
        warm_up_errors: out.warm_up_errors,
        warm_up_error: out.warm_up_error,
        ..r
    })
}

impl BenchResult {
    /// `ok` operations (and `errors`) in `seconds`, latencies from `h` (microseconds); no signing rate or
    /// memory report.
    fn measured(workload: Workload, concurrency: usize, seconds: f64, ok: u64, errors: u64, h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        BenchResult {
            workload,
            concurrency,
            seconds,
            ok,
            errors,
            throughput: ok as f64 / seconds,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            signing_rate_per_s: None,
            signing_bound_per_s: None,
            share_of_bound: None,
            rss_mib: None,
            first_error: None,
            warm_up_errors: 0,
            warm_up_error: None,
        }
    }
}

/// A `mock-idp` binary on a free loopback port, killed on drop.
struct Spawned {
    child: std::process::Child,
    base: String,
    /// Its stderr (errors only), for the error should it exit before answering: a file already removed
    /// (so none is left however this process ends), read through this handle.
    log: std::fs::File,
}

impl Spawned {
    /// The last lines of what it wrote to stderr, for an error message ("" when nothing).
    fn log_tail(&self) -> String {
        use std::io::{Read as _, Seek as _};
        let mut text = String::new();
        let mut f = &self.log;
        let _ = f.rewind().and_then(|()| f.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n");
        // At most its last 2,000 characters, its control characters (a terminal's escape sequences) escaped.
        let cut = tail.char_indices().rev().nth(1999).map_or(0, |(i, _)| i);
        let tail = crate::scenario::report::printable(&tail[cut..]).into_owned();
        if tail.is_empty() { String::new() } else { format!("; its stderr ends:\n{}{tail}", if cut > 0 { "…" } else { "" }) }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mock_idp_binary(args: &BenchArgs) -> anyhow::Result<std::path::PathBuf> {
    if let Some(b) = &args.binary {
        return Ok(b.clone());
    }
    let me = std::env::current_exe()?;
    let sibling = me.with_file_name(format!("mock-idp{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        sibling.exists(),
        "no mock-idp next to {}; build it (cargo build --release -p mock-idp) or pass --binary",
        me.display()
    );
    Ok(sibling)
}

fn spawn_mock_idp(binary: &std::path::Path) -> anyhow::Result<Spawned> {
    // A free port: bound and released here, then given to the binary.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    static N: AtomicU64 = AtomicU64::new(0);
    let log = std::env::temp_dir().join(format!("harness-bench-mock-idp-{}-{}.log", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let err = std::fs::File::create(&log).map_err(|e| anyhow::anyhow!("creating {}: {e}", log.display()))?;
    let reader = std::fs::File::open(&log);
    let _ = std::fs::remove_file(&log);
    let reader = reader.map_err(|e| anyhow::anyhow!("opening {}: {e}", log.display()))?;
    let mut cmd = std::process::Command::new(binary);
    cmd.args(["--addr", &format!("127.0.0.1:{port}")]).env("MOCK_IDP_LOG", "error").stdout(std::process::Stdio::null()).stderr(err);
    dies_with_this_process(&mut cmd);
    let child = cmd.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
    Ok(Spawned { child, base: format!("http://127.0.0.1:{port}"), log: reader })
}

/// A child that is killed when this process ends however it ends (SIGTERM or SIGKILL to `harness` alone,
/// which runs no destructor), so a cancelled benchmark leaves no `mock-idp` behind. Linux: the parent-death
/// signal, which fires when the thread that spawned the child ends; the runtime's worker threads, which
/// spawn it, live as long as the process.
fn dies_with_this_process(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: between fork and exec the closure calls only prctl, getppid and _exit, which are
        // async-signal-safe, and touches no memory but a copied integer.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have ended before the signal was set.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Polls `url` (a fresh connection each time, 0.2 ms apart) until it answers 200; the elapsed time. With a
/// `child`, fails at once when that process has exited.
async fn until_answered(http: &reqwest::Client, url: &str, t0: Instant, mut child: Option<&mut Spawned>) -> anyhow::Result<Duration> {
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            let _ = r.bytes().await;
            return Ok(t0.elapsed());
        }
        if let Some(c) = child.as_deref_mut()
            && let Ok(Some(status)) = c.child.try_wait()
        {
            anyhow::bail!("mock-idp exited ({status}) before answering {url}{}", c.log_tail());
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(30),
            "{url} did not answer within 30 s{}",
            child.as_deref().map(Spawned::log_tail).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn latency_result(args: &BenchArgs, times: &[Duration], total: Duration) -> anyhow::Result<BenchResult> {
    let mut h = latency_histogram();
    for t in times {
        h.record(t.as_micros().max(1) as u64)?;
    }
    Ok(BenchResult::measured(args.workload, 1, total.as_secs_f64(), times.len() as u64, 0, &h))
}

/// `startup` and `tenant-start`: repeated starts, each timed until discovery answers.
async fn starts(args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let mut times = Vec::with_capacity(args.runs);
    let all = Instant::now();
    for _ in 0..args.runs.max(1) {
        match args.workload {
            Workload::Startup => {
                let binary = mock_idp_binary(args)?;
                let t0 = Instant::now();
                let mut p = spawn_mock_idp(&binary)?;
                let url = format!("{}/.well-known/openid-configuration", p.base);
                times.push(until_answered(&http, &url, t0, Some(&mut p)).await?);
            }
            _ => {
                let t0 = Instant::now();
                let idp = mock_idp::MockIdp::start(mock_idp::Options::default()).await?;
                times.push(until_answered(&http, &format!("{}/.well-known/openid-configuration", idp.base_url()), t0, None).await?);
            }
        }
    }
    latency_result(args, &times, all.elapsed())
}

/// Resident memory of a process in MiB, from /proc (Linux).
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| anyhow::anyhow!("reading /proc/{pid}/status: {e}"))?;
    let kib: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib / 1024.0)
}

/// `families`: sign-ins until `--families` refresh families are live, then past their expiry.
async fn families(args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let binary = mock_idp_binary(args)?;
    let mut p = spawn_mock_idp(&binary)?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(args.concurrency).build()?;
    let url = format!("{}/.well-known/openid-configuration", p.base);
    until_answered(&http, &url, Instant::now(), Some(&mut p)).await?;
    // The keys are generated in the background after start; one sign-in waits for them.
    let driver = Arc::new(Driver::new(Target::resolve(&p.base).await?, args));
    let mut control = Conn::new(driver.target.clone());
    let first = driver.sign_in(&mut control).await.map_err(|e| anyhow::Error::msg(driver.redact(&e)))?;
    let first_rt = first["refresh_token"].as_str().unwrap_or_default().to_string();
    let pid = p.child.id();
    let before = rss_mib(pid)?;
    let next = Arc::new(AtomicU64::new(1));
    let total = args.families as u64;
    let all = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (d, next) = (driver.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = latency_histogram();
            let mut c = Conn::new(d.target.clone());
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t0 = Instant::now();
                tokio::time::timeout(Duration::from_secs(30), d.sign_in(&mut c))
                    .await
                    .map_err(|_| "a sign-in got no answer within 30 s".to_string())??;
                let _ = h.record(t0.elapsed().as_micros().max(1) as u64);
            }
            Ok::<_, String>(h)
        }));
    }
    // Latency of one sign-in (authn, authorize, code exchange) while the families pile up.
    let mut hist = latency_histogram();
    for t in tasks {
        hist.add(t.await?.map_err(|e| anyhow::Error::msg(driver.redact(&e)))?)?;
    }
    let seconds = all.elapsed().as_secs_f64();
    let live = rss_mib(pid)?;
    let advance = |secs: f64| {
        let (http, base) = (http.clone(), p.base.clone());
        async move {
            let r = http.post(format!("{base}/_mock/clock")).json(&json!({"advance_seconds": secs})).send().await?;
            anyhow::ensure!(r.status().is_success(), "moving the clock: {}", r.status());
            Ok::<(), anyhow::Error>(())
        }
    };
    // 61 minutes on: the access tokens (1 hour) and the codes have expired and are purged (the clock request
    // itself runs the purge); ID-token records stay a day past expiry (id_token_hint), the sessions (2 hours)
    // and refresh families (90 days) are live.
    advance(61.0 * 60.0).await?;
    settle(&driver, &mut control).await?;
    let families_only = rss_mib(pid)?;
    // The families are live: the first one still refreshes.
    driver
        .refresh(&mut control, &first_rt)
        .await
        .map_err(|e| anyhow::anyhow!("the first family no longer refreshes an hour later: {}", driver.redact(&e)))?;
    // Past every lifetime of the default tenant (refresh tokens: 90 days on the default server), then one
    // request so the purge runs.
    advance(100.0 * 86_400.0).await?;
    settle(&driver, &mut control).await?;
    let after_expiry = rss_mib(pid)?;
    let rss = RssReport { families: args.families, timed_sign_ins: hist.len(), before, live, families_only, after_expiry };
    // The rate is of the timed sign-ins, over the time they took.
    let r = BenchResult::measured(args.workload, args.concurrency, seconds, total, 0, &hist);
    Ok(BenchResult { rss_mib: Some(rss), throughput: hist.len() as f64 / seconds, ..r })
}

/// Allocators hand freed pages back lazily, as a server goes on working: some ordinary requests and a moment
/// before each memory reading after a purge.
async fn settle(d: &Driver, c: &mut Conn) -> anyhow::Result<()> {
    for _ in 0..200 {
        d.send_ok(c, &d.discovery, "discovery", "\"issuer\"").await.map_err(|e| anyhow::Error::msg(d.redact(&e)))?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// `harness bench`.
pub async fn cli(args: BenchArgs) -> i32 {
    // With --json, standard output is the JSON alone (for `| jq`); the lines for a person go to stderr.
    let json_out = args.json;
    macro_rules! human {
        ($($t:tt)*) => {{
            use std::io::Write as _;
            if json_out {
                let _ = writeln!(std::io::stderr(), $($t)*);
            } else {
                crate::say!($($t)*);
            }
        }};
    }
    if let Err(e) = check_args(&args) {
        eprintln!("harness bench: {e}");
        if args.json {
            crate::say!("{}", json!({"workload": args.workload, "error": e.to_string()}));
        }
        return 2;
    }
    match run(&args).await {
        Ok(r) => {
            match (r.workload, r.rss_mib) {
                (_, Some(m)) => human!(
                    "{}: {} refresh families created ({}); mock-idp resident memory {:.1} MiB at start, {:.1} MiB right after the sign-ins, {:.1} MiB an hour later (codes and access tokens expired, families live), {:.1} MiB after the families' expiry and the purge",
                    r.workload.name(),
                    m.families,
                    if m.timed_sign_ins == 0 {
                        "none timed: the first sign-in waits for the keys generated at start and is not".to_string()
                    } else {
                        format!(
                            "the {} after the first in {:.2}s, {:.0}/s, sign-in p50 {:.2} ms, p99 {:.2} ms",
                            m.timed_sign_ins, r.seconds, r.throughput, r.p50_ms, r.p99_ms
                        )
                    },
                    m.before,
                    m.live,
                    m.families_only,
                    m.after_expiry
                ),
                (Workload::Startup | Workload::TenantStart, _) => human!(
                    "{}: {} starts; until discovery answered: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    r.workload.name(),
                    r.ok,
                    r.p50_ms,
                    r.p90_ms,
                    r.p99_ms,
                    r.max_ms
                ),
                _ => human!(
                    "{} at concurrency {} for {:.2}s: {} ok, {} errors, {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    r.workload.name(),
                    r.concurrency,
                    r.seconds,
                    r.ok,
                    r.errors,
                    r.throughput,
                    r.p50_ms,
                    r.p90_ms,
                    r.p99_ms,
                    r.max_ms
                ),
            }
            if let (Some(s), Some(b), Some(share)) = (r.signing_rate_per_s, r.signing_bound_per_s, r.share_of_bound) {
                human!(
                    "raw RS256 signing {s:.0}/s on all cores; {} signature(s) per response bound the endpoint at {b:.0}/s; reached {:.0}%",
                    r.workload.signatures(),
                    share * 100.0
                );
            }
            if let Some(e) = &r.first_error {
                human!("first error: {e}");
            }
            if let (n @ 1.., Some(e)) = (r.warm_up_errors, &r.warm_up_error) {
                human!("warm-up (not counted): {n} error(s), the first: {e}");
            }
            if args.json {
                crate::say!("{}", serde_json::to_string(&r).unwrap_or_default());
            }
            if r.errors > 0 { 1 } else { 0 }
        }
        Err(e) => {
            eprintln!("harness bench: {e}");
            if args.json {
                crate::say!("{}", json!({"workload": args.workload, "error": e.to_string()}));
            }
            1
        }
    }
}
