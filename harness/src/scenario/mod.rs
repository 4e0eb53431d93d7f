//! Scenarios: the model (serde), loading with located errors, the runner, and reports.

pub mod load;
pub mod model;
pub mod report;
pub mod runner;
pub mod verdict;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use runner::{Outcome, RunOptions, ScenarioReport};

/// What `harness run` was asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario files or folders (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// How many scenarios run at once (each has its own IdP and stub BSR).
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Only scenarios whose name, case or a tag contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Run each scenario N times and report any outcome that differs (the flake detector for races).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Run the K-th of N shards of the library (1-based), e.g. 2/4.
    #[arg(long)]
    pub shard: Option<String>,
    /// Use an already running mock-idp (scenarios then run one at a time, with /_mock/reset between).
    #[arg(long, env = "HARNESS_IDP_URL")]
    pub idp_url: Option<String>,
    /// Drive this external service provider (a target file) instead of the stub BSR.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Turn skips (missing Chromium or Node.js) into failures.
    #[arg(long)]
    pub require_all: bool,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the whole run as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with timelines here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// No progress lines (the failure details, the summary table and the verdict table are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub browser: BrowserArgs,
}

/// Where browser scenarios' browser runs, and how it reaches the servers each scenario starts.
#[derive(Debug, Clone, clap::Args)]
pub struct BrowserArgs {
    /// Open browser sessions on this running WebDriver (e.g. a chromedriver sidecar,
    /// http://chromedriver:9515) instead of starting chromedriver here.
    #[arg(long, env = "HARNESS_WEBDRIVER_URL", value_name = "URL")]
    pub webdriver_url: Option<String>,
    /// The address each scenario's stub BSR (and in-process IdP) listens on; 0.0.0.0 when the browser runs
    /// on another machine or container.
    #[arg(long, env = "HARNESS_LISTEN_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), value_name = "IP", value_parser = listen_ip)]
    pub listen_host: IpAddr,
    /// The host name or IP address (no scheme or port) in those servers' URLs: the pages the browser opens
    /// and the redirect URIs registered at the IdP (default: the listen host, or 127.0.0.1 when that is
    /// 0.0.0.0 or ::).
    #[arg(long, env = "HARNESS_PUBLIC_HOST", value_name = "HOST")]
    pub public_host: Option<String>,
}

impl Default for BrowserArgs {
    fn default() -> Self {
        BrowserArgs { webdriver_url: None, listen_host: IpAddr::V4(Ipv4Addr::LOCALHOST), public_host: None }
    }
}

/// `--listen-host`: an IP address; blank (a compose variable left empty) is the default, 127.0.0.1.
fn listen_ip(s: &str) -> Result<IpAddr, String> {
    match s.trim() {
        "" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        t => t.parse().map_err(|e| format!("{e}: expected an IP address such as 127.0.0.1 or 0.0.0.0")),
    }
}

/// `--idp-url`: a running mock-idp's base URL, `http(s)://host[:port][/path]`, checked before anything runs.
pub fn check_idp_url(u: &str) -> Result<(), String> {
    let shown = crate::bench::conn::without_credentials(u);
    let bad = |why: String| format!("--idp-url / HARNESS_IDP_URL {shown:?}: {why}; expected a base URL such as http://127.0.0.1:8080");
    let url = url::Url::parse(u).map_err(|e| bad(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("not an http:// or https:// URL".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a query, fragment or credentials are not allowed".into()));
    }
    Ok(())
}

/// An option's value when it is given and not blank (a compose file's variable left empty means "not set").
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

impl BrowserArgs {
    /// `--webdriver-url` (or `HARNESS_WEBDRIVER_URL`) when given and not blank.
    pub fn given_webdriver_url(&self) -> Option<String> {
        given(&self.webdriver_url)
    }

    /// `--public-host` (or `HARNESS_PUBLIC_HOST`) when given and not blank.
    pub fn given_public_host(&self) -> Option<String> {
        given(&self.public_host)
    }

    /// Checks the syntax of `--public-host` and `--webdriver-url`, so that a typo is a usage error before
    /// anything runs (`harness run` exits 2) instead of a failure of every scenario, or of none when the run
    /// has no browser scenario. Whether the WebDriver answers is found out when a browser scenario starts.
    pub fn check(&self) -> Result<(), String> {
        if let Some(h) = self.given_public_host() {
            check_public_host(&h)?;
        }
        if let Some(u) = self.given_webdriver_url() {
            crate::browser::check_webdriver_url(&u)?;
        }
        Ok(())
    }
}

/// A `--public-host` value: a host name (letters, digits, `-`, `_`, dot-separated) or an IP address (IPv6
/// bare or in brackets), with no scheme and no port: each server of a scenario gets a port of its own.
pub fn check_public_host(host: &str) -> Result<(), String> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let ok = match bare {
        Some(b) => b.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<IpAddr>().is_ok() || is_host_name(host),
    };
    // What public_base makes of it must be a URL (the issuer and redirect URIs are built from it).
    let in_url = if bare.is_none() && host.contains(':') { format!("[{host}]") } else { host.to_string() };
    if ok && url::Url::parse(&format!("http://{in_url}:1/")).is_ok() {
        return Ok(());
    }
    Err(format!(
        "--public-host / HARNESS_PUBLIC_HOST {host:?}: expected a host name or IP address, with no scheme or port (e.g. runner, 10.0.0.5 or fd00::2)"
    ))
}

fn is_host_name(h: &str) -> bool {
    let name = h.strip_suffix('.').unwrap_or(h);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    // A name whose last label is a number is an IPv4 address to a URL parser (1.2.3 is 1.2.0.3, 999.1.1.1 an
    // error), so only a real address may end in one.
    let numeric = |l: &str| {
        l.chars().all(|c| c.is_ascii_digit())
            || l.strip_prefix("0x").or_else(|| l.strip_prefix("0X")).is_some_and(|x| x.chars().all(|c| c.is_ascii_hexdigit()))
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) && !name.rsplit('.').next().is_some_and(numeric)
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4)
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Parses `K/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or_else(|| format!("--shard {s}: expected K/N, e.g. 1/4"))?;
    let (k, n): (usize, usize) = (
        k.parse().map_err(|_| format!("--shard {s}: K is not a number"))?,
        n.parse().map_err(|_| format!("--shard {s}: N is not a number"))?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard {s}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// Loads the scenarios a run covers; errors are file errors (exit 2).
pub fn select(args: &RunArgs) -> Result<Vec<load::Loaded>, Vec<String>> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("scenarios")] } else { args.paths.clone() };
    let files = load::discover(&paths).map_err(|e| vec![e])?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load::load(&f) {
            Ok(l) => out.push(l),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut names = std::collections::BTreeMap::new();
    for l in &out {
        if let Some(prev) = names.insert(l.scenario.name.clone(), l.path.display().to_string()) {
            errors.push(format!("{}: field `name`: {} is also the name of {prev}", l.path.display(), l.scenario.name));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(f) = &args.filter {
        out.retain(|l| {
            let s = &l.scenario;
            s.name.contains(f.as_str()) || s.case.as_deref().is_some_and(|c| c == f) || s.tags.iter().any(|t| t == f)
        });
    }
    out.sort_by(|a, b| a.scenario.name.cmp(&b.scenario.name));
    if let Some(sh) = &args.shard {
        let (k, n) = parse_shard(sh).map_err(|e| vec![e])?;
        out = out.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, l)| l).collect();
    }
    Ok(out)
}

/// Runs the selected scenarios (in parallel unless they share one IdP) and returns every report, in
/// scenario order; with `--repeat`, one report per scenario (the first run's) plus flake failures.
pub async fn run_all(
    list: Vec<load::Loaded>,
    args: &RunArgs,
    progress: bool,
    target: Option<crate::target::TargetFile>,
) -> Vec<ScenarioReport> {
    let remote = args.idp_url.is_some() || target.as_ref().is_some_and(|t| t.idp_url.is_some());
    let webdriver_url = args.browser.given_webdriver_url();
    let opts = Arc::new(RunOptions {
        target,
        idp_url: args.idp_url.clone(),
        browser_available: webdriver_url.is_some() || on_path("chromedriver") || std::env::var_os("CHROMEDRIVER").is_some(),
        node_available: on_path("node"),
        webdriver_url,
        listen_host: Some(args.browser.listen_host),
        public_host: args.browser.given_public_host(),
    });
    let jobs = if remote { 1 } else { args.jobs.max(1) };
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
    let repeat = args.repeat.max(1);
    let mut handles = Vec::new();
    for l in list {
        let (opts, sem) = (opts.clone(), sem.clone());
        let (name, file) = (l.scenario.name.clone(), l.path.display().to_string());
        handles.push((
            name,
            file,
            tokio::spawn(async move {
                let mut runs = Vec::with_capacity(repeat);
                for _ in 0..repeat {
                    let _permit = sem.acquire().await;
                    let r = runner::run(&l, &opts).await;
                    if progress {
                        let mark = match &r.outcome {
                            Outcome::Passed => "pass",
                            Outcome::Failed { .. } => "FAIL",
                            Outcome::Skipped { .. } => "skip",
                        };
                        eprintln!("{mark} {} ({} ms)", report::printable_line(&r.name), r.duration_ms);
                    }
                    runs.push(r);
                }
                runs
            }),
        ));
    }
    let mut out = Vec::new();
    for (name, file, h) in handles {
        let mut runs = match h.await {
            Ok(r) => r,
            Err(e) => {
                // A panic inside the harness is a failure of that scenario, never a silent omission.
                out.push(ScenarioReport::crashed(&name, &file, &format!("the harness crashed running this scenario: {e}")));
                continue;
            }
        };
        let first_sig = runs[0].outcome.signature();
        let differing: Vec<String> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.outcome.signature() != first_sig)
            .map(|(i, r)| format!("run {}: {}", i + 1, r.outcome.signature()))
            .collect();
        let mut first = runs.remove(0);
        if !differing.is_empty() {
            first.outcome = Outcome::Failed {
                step: None,
                message: format!("flaky: {} of {repeat} runs differ from run 1 ({first_sig}); {}", differing.len(), differing.join("; ")),
            };
        }
        out.push(first);
    }
    out
}

/// Runs one scenario file with an in-process IdP and stub BSR, as `harness run FILE` does.
pub async fn run_file(path: &std::path::Path) -> Result<ScenarioReport, mock_idp::config::ConfigError> {
    let loaded = load::load(path)?;
    Ok(runner::run(&loaded, &RunOptions::default()).await)
}

/// Runs a scenario written in code (YAML text; `name` names it in errors).
pub async fn run_yaml(yaml: &str, name: &str) -> Result<ScenarioReport, mock_idp::config::ConfigError> {
    let scenario = load::parse(yaml, name)?;
    let loaded = load::Loaded { path: PathBuf::from(name), scenario };
    Ok(runner::run(&loaded, &RunOptions::default()).await)
}

/// `harness run`: exit 0 when all pass, 1 when any fails, 2 on usage or scenario-file errors.
pub async fn cli_run(mut args: RunArgs) -> i32 {
    if args.jobs == 0 || args.repeat == 0 {
        eprintln!("harness: --jobs and --repeat take a number of at least 1");
        return 2;
    }
    // A blank HARNESS_IDP_URL (a compose variable left empty) is "not set".
    args.idp_url = given(&args.idp_url);
    if let Err(e) = args.browser.check().and_then(|()| args.idp_url.as_deref().map_or(Ok(()), check_idp_url)) {
        eprintln!("harness: {e}");
        return 2;
    }
    let list = match select(&args) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                eprintln!("harness: {e}");
            }
            return 2;
        }
    };
    if list.is_empty() {
        eprintln!("harness: no scenarios selected");
        return 2;
    }
    let target = match &args.target {
        None => None,
        Some(p) => match crate::target::TargetFile::load(p) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("harness: {e}");
                return 2;
            }
        },
    };
    if !args.browser.listen_host.is_loopback() {
        eprintln!(
            "harness: warning: the servers each scenario starts listen on {}, reachable from other machines; they have known test credentials",
            args.browser.listen_host
        );
    }
    let mut reports = run_all(list, &args, !args.quiet, target).await;
    if args.require_all {
        for r in &mut reports {
            if let Outcome::Skipped { reason } = &r.outcome {
                r.outcome = Outcome::Failed { step: None, message: format!("skipped, and --require-all was given: {reason}") };
            }
        }
    }
    for r in &reports {
        if let Some(d) = report::failure_detail(r) {
            eprintln!("{d}");
        }
    }
    crate::out(report::terminal(&reports).as_bytes());
    // Conformance requirements in the run get their verdict table, so the exit status is explained: a
    // recommended requirement that is not met does not fail the run.
    let profile: Vec<ScenarioReport> = reports.iter().filter(|r| r.level.is_some()).cloned().collect();
    if !profile.is_empty() {
        crate::out(verdict::terminal(&profile).as_bytes());
        // A filtered or sharded run checks part of the profile: its verdict is for that part only.
        if args.shard.is_some() || args.filter.is_some() {
            let all = select(&RunArgs { filter: None, shard: None, ..args.clone() })
                .map(|l| l.iter().filter(|l| l.scenario.level.is_some()).count());
            if let Ok(total) = all
                && total > profile.len()
            {
                let by = match (&args.shard, &args.filter) {
                    (Some(sh), Some(f)) => format!("--shard {sh} and --filter {f}"),
                    (Some(sh), None) => format!("--shard {sh}"),
                    (None, Some(f)) => format!("--filter {f}"),
                    (None, None) => String::new(),
                };
                crate::say!(
                    "(partial: {} of the {total} conformance requirements in these files were in this run ({by}); the verdict is for those only)",
                    profile.len()
                );
            }
        }
    }
    // A report that cannot be written fails the run (exit 2): CI must not pass without its reports.
    let write_failed = std::cell::Cell::new(false);
    let write = |p: &PathBuf, s: String| {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(p, s) {
            eprintln!("harness: cannot write {}: {e}", p.display());
            write_failed.set(true);
        }
    };
    if let Some(p) = &args.junit {
        write(p, if verdict::is_profile(&reports) { verdict::junit(&reports) } else { report::junit(&reports) });
    }
    if let Some(p) = &args.json {
        write(p, report::json(&reports));
    }
    if let Some(p) = &args.html {
        write(p, if verdict::is_profile(&reports) { verdict::html(&reports) } else { report::html(&reports) });
    }
    if write_failed.get() {
        return 2;
    }
    // Recommended (and not-applicable) requirements of a conformance profile never fail the run.
    verdict::exit_code(&reports)
}

/// `harness list`: scenarios with their case and tags.
pub fn cli_list(paths: Vec<PathBuf>) -> i32 {
    let args = RunArgs {
        paths,
        jobs: 1,
        filter: None,
        repeat: 1,
        shard: None,
        idp_url: None,
        target: None,
        require_all: false,
        junit: None,
        json: None,
        html: None,
        quiet: true,
        browser: BrowserArgs::default(),
    };
    match select(&args) {
        Ok(list) => {
            for l in list {
                let s = &l.scenario;
                crate::say!(
                    "{:<48} {:<5} [{}]  {}",
                    report::printable_line(&s.name),
                    report::printable_line(&s.case.clone().unwrap_or_default()),
                    report::printable_line(&s.tags.join(", ")),
                    report::printable_line(&l.path.display().to_string())
                );
            }
            0
        }
        Err(errors) => {
            for e in errors {
                eprintln!("harness: {e}");
            }
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_HOST_HELP: &str = "expected a host name or IP address, with no scheme or port (e.g. runner, 10.0.0.5 or fd00::2)";

    #[test]
    fn idp_url_and_listen_host_are_checked_and_blank_is_not_set() {
        assert_eq!(check_idp_url("http://127.0.0.1:8080"), Ok(()));
        assert_eq!(check_idp_url("https://idp.example.com/tenant-a/"), Ok(()));
        for (bad, why) in [
            ("notaurl", "not a URL (relative URL without a base)"),
            ("ftp://x", "not an http:// or https:// URL"),
            ("http://127.0.0.1:4500?x=1", "a query, fragment or credentials are not allowed"),
        ] {
            assert_eq!(
                check_idp_url(bad),
                Err(format!("--idp-url / HARNESS_IDP_URL {bad:?}: {why}; expected a base URL such as http://127.0.0.1:8080"))
            );
        }
        // A password in it is not repeated.
        assert_eq!(
            check_idp_url("http://u:pw-SECRET@127.0.0.1:4500"),
            Err("--idp-url / HARNESS_IDP_URL \"http://[credentials]@127.0.0.1:4500\": a query, fragment or credentials are not allowed; expected a base URL such as http://127.0.0.1:8080".into())
        );
        assert_eq!(listen_ip(""), Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(listen_ip(" 0.0.0.0 "), Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(listen_ip("nothost"), Err("invalid IP address syntax: expected an IP address such as 127.0.0.1 or 0.0.0.0".into()));
    }

    #[test]
    fn a_public_host_is_a_host_name_or_an_ip_address() {
        for ok in
            ["runner", "browser-runner", "browser_runner", "vm.example.com", "vm.example.com.", "10.0.0.5", "fd00::2", "[fd00::2]", "::1"]
        {
            assert_eq!(check_public_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "vm:99",
            "http://vm",
            "vm/",
            "10.0.0.5:80",
            "[vm]",
            "[10.0.0.5]",
            "-vm",
            "a..b",
            "999.1.1.1",
            "1.2.3",
            "vm.0x10",
            "vm name",
            "émile",
            "",
        ] {
            assert_eq!(check_public_host(bad), Err(format!("--public-host / HARNESS_PUBLIC_HOST {bad:?}: {PUBLIC_HOST_HELP}")), "{bad}");
        }
    }

    #[test]
    fn the_browser_flags_are_checked_before_anything_runs() {
        let with = |webdriver: Option<&str>, public: Option<&str>| BrowserArgs {
            webdriver_url: webdriver.map(str::to_string),
            public_host: public.map(str::to_string),
            ..BrowserArgs::default()
        };
        assert_eq!(with(None, None).check(), Ok(()));
        assert_eq!(with(Some("http://chromedriver:9515"), Some("runner")).check(), Ok(()));
        // A blank value (a compose variable left empty) is "not set", never an error.
        assert_eq!(with(Some(" "), Some("")).check(), Ok(()));
        assert_eq!(with(None, Some(" runner ")).given_public_host().as_deref(), Some("runner"));
        assert_eq!(
            with(Some("http://chromedriver:9515"), Some("vm:99")).check(),
            Err(format!("--public-host / HARNESS_PUBLIC_HOST \"vm:99\": {PUBLIC_HOST_HELP}"))
        );
        assert_eq!(
            with(Some("notaurl"), Some("runner")).check(),
            Err("--webdriver-url / HARNESS_WEBDRIVER_URL \"notaurl\": not a URL (relative URL without a base); expected http://host:port, e.g. http://chromedriver:9515".into())
        );
        // What passes the check makes the issuer a URL the stub BSR accepts.
        for h in ["runner", "fd00::2", "[fd00::2]", "10.0.0.5"] {
            let opts = runner::RunOptions { public_host: Some(h.into()), ..runner::RunOptions::default() };
            let issuer = format!("{}/oauth2/default", opts.public_base(35513));
            assert_eq!(crate::bsr::SsoSettings::new(issuer.clone(), "bsr-local", "s").validate(), Ok(()), "{issuer}");
        }
    }
}
