//! `harness bench`: a load generator for mock-idp (a running one, or in-process) with an HDR histogram,
//! printing throughput and p50/p90/p99/max latency next to the machine's raw RS256 signing rate measured
//! in the same run, so the ratio to the signing bound is visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Refresh grants with STATIC refresh tokens (access + ID token: 2 signatures).
    StaticRefresh,
    /// Refresh chains with ROTATE refresh tokens (2 signatures).
    RotateRefresh,
    /// Full headless sign-in: authn, authorize with sessionToken and PKCE, code exchange (2 signatures).
    SignIn,
    /// `GET /oauth2/default/v1/keys` (no signature).
    Jwks,
    /// `GET /oauth2/default/.well-known/openid-configuration` (no signature).
    Discovery,
}

impl Workload {
    /// RS256 signatures per successful operation, for the signing bound.
    pub fn signatures(self) -> u32 {
        match self {
            Workload::ClientCredentials => 1,
            Workload::StaticRefresh | Workload::RotateRefresh | Workload::SignIn => 2,
            Workload::Jwks | Workload::Discovery => 0,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "client-credentials")]
    pub workload: Workload,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds of load (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// A running mock-idp; without it an in-process one is started (default tenant, system clock).
    #[arg(long)]
    pub idp_url: Option<String>,
    /// Print the result as JSON too.
    #[arg(long)]
    pub json: bool,
    /// Skip measuring the raw signing rate.
    #[arg(long)]
    pub no_signing_rate: bool,
    /// client_credentials against another provider: its token endpoint path (default: mock-idp's
    /// `/oauth2/default/v1/token`).
    #[arg(long, default_value = "/oauth2/default/v1/token")]
    pub token_path: String,
    #[arg(long, default_value = "svc-local")]
    pub client_id: String,
    #[arg(long, default_value = "svc-local-secret")]
    pub client_secret: String,
    #[arg(long, default_value = "bsr.read")]
    pub scope: String,
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
}

/// RS256 signatures per second over `threads` threads for `secs` seconds (see `mock_idp::signing::measure_rate`).
pub fn signing_rate(threads: usize, secs: f64) -> f64 {
    mock_idp::signing::measure_rate(threads, secs)
}

struct Driver {
    http: reqwest::Client,
    base: String,
    token_path: String,
    client_id: String,
    client_secret: String,
    scope: String,
}

const REDIRECT: &str = "http://127.0.0.1:3000/oauth2/callback";

impl Driver {
    async fn sign_in(&self) -> Result<Value, String> {
        let st: Value = self
            .http
            .post(format!("{}/api/v1/authn", self.base))
            .json(&json!({"username": "alice@example.com", "password": "Passw0rd!"}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let token = st["sessionToken"].as_str().ok_or("authn gave no sessionToken")?;
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let r = self
            .http
            .get(format!("{}/oauth2/default/v1/authorize", self.base))
            .query(&[
                ("client_id", "bsr-local"),
                ("response_type", "code"),
                ("scope", "openid profile email offline_access"),
                ("redirect_uri", REDIRECT),
                ("state", "bench"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("sessionToken", token),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).ok_or("authorize did not redirect")?;
        let code = url::Url::parse(loc)
            .ok()
            .and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.to_string()))
            .ok_or("no code")?;
        let t: Value = self
            .http
            .post(format!("{}/oauth2/default/v1/token", self.base))
            .basic_auth("bsr-local", Some("bsr-local-secret"))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if t.get("access_token").is_none() {
            return Err(format!("code exchange failed: {t}"));
        }
        Ok(t)
    }

    async fn refresh(&self, rt: &str) -> Result<String, String> {
        let t: Value = self
            .http
            .post(format!("{}/oauth2/default/v1/token", self.base))
            .basic_auth("bsr-local", Some("bsr-local-secret"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        t["refresh_token"].as_str().map(str::to_string).ok_or_else(|| format!("refresh failed: {t}"))
    }

    async fn get_ok(&self, path: &str) -> Result<(), String> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("{path}: {}", r.status()));
        }
        let _ = r.bytes().await.map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn client_credentials(&self) -> Result<(), String> {
        let r = self
            .http
            .post(format!("{}{}", self.base, self.token_path))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", self.scope.as_str())])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("client_credentials: {} {}", r.status(), r.text().await.unwrap_or_default()));
        }
        let _ = r.bytes().await;
        Ok(())
    }
}

/// Runs one workload and returns its numbers.
pub async fn run(args: &BenchArgs) -> anyhow::Result<BenchResult> {
    crate::crypto::install();
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
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(args.concurrency).build()?;
    let driver = Arc::new(Driver {
        http,
        base,
        token_path: args.token_path.clone(),
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        scope: args.scope.clone(),
    });
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (d, hist, ok, errors, measuring, stop, first_error) =
            (driver.clone(), hist.clone(), ok.clone(), errors.clone(), measuring.clone(), stop.clone(), first_error.clone());
        let w = args.workload;
        tasks.push(tokio::spawn(async move {
            // Refresh workloads: each worker drives its own family, as independent sessions do.
            let mut rt = match w {
                Workload::StaticRefresh | Workload::RotateRefresh => match d.sign_in().await {
                    Ok(t) => t["refresh_token"].as_str().map(str::to_string),
                    Err(e) => {
                        *first_error.lock() = Some(e);
                        return;
                    }
                },
                _ => None,
            };
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let r = match w {
                    Workload::ClientCredentials => d.client_credentials().await,
                    Workload::StaticRefresh | Workload::RotateRefresh => match &rt {
                        Some(cur) => d.refresh(cur).await.map(|next| rt = Some(next)),
                        None => Err("no refresh token".into()),
                    },
                    Workload::SignIn => d.sign_in().await.map(|_| ()),
                    Workload::Jwks => d.get_ok("/oauth2/default/v1/keys").await,
                    Workload::Discovery => d.get_ok("/oauth2/default/.well-known/openid-configuration").await,
                };
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match r {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let _ = local.record(t0.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().get_or_insert(e);
                    }
                }
            }
            let _ = hist.lock().add(&local);
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    drop(local);
    if let Some(e) = first_error.lock().clone()
        && ok.load(Ordering::Relaxed) == 0
    {
        anyhow::bail!("the workload failed: {e}");
    }
    let signing = if args.no_signing_rate || args.workload.signatures() == 0 {
        None
    } else {
        Some(signing_rate(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), 2.0))
    };
    let h = hist.lock();
    let okn = ok.load(Ordering::Relaxed);
    let throughput = okn as f64 / seconds;
    let bound = signing.map(|s| s / args.workload.signatures() as f64);
    Ok(BenchResult {
        workload: args.workload,
        concurrency: args.concurrency,
        seconds,
        ok: okn,
        errors: errors.load(Ordering::Relaxed),
        throughput,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p90_ms: h.value_at_quantile(0.9) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: h.max() as f64 / 1000.0,
        signing_rate_per_s: signing,
        signing_bound_per_s: bound,
        share_of_bound: bound.map(|b| throughput / b),
    })
}

/// `harness bench`.
pub async fn cli(args: BenchArgs) -> i32 {
    match run(&args).await {
        Ok(r) => {
            println!(
                "{:?} at concurrency {} for {:.1}s: {} ok, {} errors, {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                r.workload, r.concurrency, r.seconds, r.ok, r.errors, r.throughput, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
            );
            if let (Some(s), Some(b), Some(share)) = (r.signing_rate_per_s, r.signing_bound_per_s, r.share_of_bound) {
                println!(
                    "raw RS256 signing {s:.0}/s on all cores; {} signature(s) per response bound the endpoint at {b:.0}/s; reached {:.0}%",
                    r.workload.signatures(),
                    share * 100.0
                );
            }
            if args.json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            }
            if r.errors > 0 { 1 } else { 0 }
        }
        Err(e) => {
            eprintln!("harness bench: {e}");
            1
        }
    }
}
