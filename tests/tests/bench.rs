//! `harness bench` through the library: every workload runs against a real mock-idp (in-process, or the
//! binary for `startup` and `families`) without errors, and reports what it measured; bad servers and bad
//! arguments end the run with a reason. No performance figure is asserted here (the load generator runs on
//! real time: a run is its 1 s warm-up, the window, and at most 2 s of grace); BENCHMARKS.md has the figures
//! and the commands that reproduce them.

use std::path::PathBuf;
use std::process::Command;

use harness::bench::{BenchArgs, Workload, run};
use tests::{binaries, children_of};

fn args(workload: Workload) -> BenchArgs {
    BenchArgs {
        workload,
        concurrency: 4,
        duration: 0.3,
        idp_url: None,
        json: false,
        no_signing_rate: true,
        token_path: "/oauth2/default/v1/token".into(),
        client_id: "svc-local".into(),
        client_secret: "svc-local-secret".into(),
        scope: "bsr.read".into(),
        binary: None,
        runs: 3,
        families: 40,
    }
}

/// The arguments for a short run (0.2 s) against the server at `url`.
fn against(workload: Workload, url: impl Into<String>) -> BenchArgs {
    BenchArgs { idp_url: Some(url.into()), duration: 0.2, ..args(workload) }
}

fn mock_idp_binary() -> &'static PathBuf {
    &binaries().mock_idp
}

/// `harness bench` killed alone (SIGTERM to its pid, as a CI cancel or `kill $!` sends; it runs no
/// destructor) takes the `mock-idp` it started with it.
#[test]
fn a_killed_bench_leaves_no_mock_idp_behind() {
    let harness = &binaries().harness;
    let mut h = Command::new(harness)
        .args(["bench", "--workload", "families", "--families", "1000000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its mock-idp: spawned at once; waited for without sleeping (a busy wait, bounded).
    let t0 = std::time::Instant::now();
    // (Right after the fork the child is still called harness.)
    let is_mock_idp = |p: &i32| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "mock-idp");
    let idp = loop {
        if let Some(p) = children_of(h.id()).into_iter().find(is_mock_idp) {
            break p;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(30), "harness started no mock-idp");
        std::thread::yield_now();
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (or -1); nothing is borrowed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, idp, 0) } as i32;
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: kill takes a pid and a signal number.
    assert_eq!(unsafe { libc::kill(h.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(h.wait().unwrap().code(), None, "ended by the signal");
    // The descriptor becomes readable when the process has ended.
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, valid for the call; a 10 s timeout.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    // SAFETY: fd is ours, closed once; kill takes a pid and a signal number (the orphan, should it run on).
    unsafe {
        libc::close(fd);
        if n != 1 {
            libc::kill(idp, libc::SIGKILL);
        }
    }
    assert_eq!(n, 1, "mock-idp {idp} still runs 10 s after its harness was killed");
}

#[rstest::rstest]
#[case::client_credentials(Workload::ClientCredentials)]
#[case::static_refresh(Workload::StaticRefresh)]
#[case::rotate_refresh(Workload::RotateRefresh)]
#[case::sign_in(Workload::SignIn)]
#[case::jwks(Workload::Jwks)]
#[case::discovery(Workload::Discovery)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_workloads_run_without_errors(#[case] w: Workload) {
    let r = run(&args(w)).await.unwrap();
    assert_eq!(r.workload, w);
    assert_eq!(r.errors, 0);
    assert!(r.ok > 0, "{w:?} completed no operation");
    assert_eq!(r.concurrency, 4);
    assert!(r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms);
    assert!(r.rss_mib.is_none());
    assert_eq!(r.signing_rate_per_s, None, "--no-signing-rate");
}

/// With the signing rate, the bound is the rate divided by the signatures per response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_bound_is_the_rate_over_the_signatures_per_response() {
    let mut a = args(Workload::SignIn);
    a.no_signing_rate = false;
    let r = run(&a).await.unwrap();
    let (rate, bound) = (r.signing_rate_per_s.unwrap(), r.signing_bound_per_s.unwrap());
    assert!(rate > 0.0);
    assert_eq!(bound, rate / 2.0);
    assert_eq!(r.share_of_bound, Some(r.throughput / bound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_start_times_each_start() {
    let r = run(&args(Workload::TenantStart)).await.unwrap();
    assert_eq!((r.ok, r.errors, r.concurrency), (3, 0, 1));
    assert!(r.p50_ms > 0.0 && r.p50_ms <= r.max_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_times_the_binary_until_discovery_answers() {
    let mut a = args(Workload::Startup);
    a.binary = Some(mock_idp_binary().clone());
    a.runs = 2;
    let r = run(&a).await.unwrap();
    assert_eq!((r.ok, r.errors), (2, 0));
    assert!(r.p50_ms > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_without_a_binary_names_the_fix() {
    let mut a = args(Workload::Startup);
    a.binary = Some("/nonexistent/mock-idp".into());
    let e = run(&a).await.unwrap_err().to_string();
    assert!(e.starts_with("starting /nonexistent/mock-idp: "), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_reports_memory_before_live_and_after_expiry() {
    let mut a = args(Workload::Families);
    a.binary = Some(mock_idp_binary().clone());
    let r = run(&a).await.unwrap();
    assert_eq!((r.ok, r.errors), (40, 0));
    let m = r.rss_mib.unwrap();
    assert_eq!(m.families, 40);
    assert_eq!(m.timed_sign_ins, 39, "every sign-in but the first, which waits for the keys, is timed");
    assert!(m.before > 1.0 && m.live > 1.0 && m.families_only > 1.0 && m.after_expiry > 1.0, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_fails_at_once_when_the_binary_exits() {
    let mut a = args(Workload::Startup);
    a.binary = Some("/bin/false".into());
    let t0 = std::time::Instant::now();
    let e = run(&a).await.unwrap_err().to_string();
    assert!(e.starts_with("mock-idp exited (exit status: 1) before answering http://127.0.0.1:"), "{e}");
    assert!(e.ends_with("/.well-known/openid-configuration"), "nothing on its stderr, nothing added: {e}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(20), "it did not wait for the 30 s timeout");
    // What a binary that fails says on stderr ends the error.
    let dir = std::env::temp_dir().join(format!("bench-failing-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("mock-idp");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'first line' >&2\necho 'mock-idp: cannot start: cannot listen on 127.0.0.1:1: denied' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    a.binary = Some(script);
    let e = run(&a).await.unwrap_err().to_string();
    assert!(e.starts_with("mock-idp exited (exit status: 3) before answering http://127.0.0.1:"), "{e}");
    assert!(
        e.ends_with(
            "/.well-known/openid-configuration; its stderr ends:\nfirst line\nmock-idp: cannot start: cannot listen on 127.0.0.1:1: denied"
        ),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_workloads_refuse_idp_url_and_zero_counts() {
    for w in [Workload::Startup, Workload::TenantStart, Workload::Families] {
        let mut a = args(w);
        a.idp_url = Some("http://127.0.0.1:1".into());
        let e = run(&a).await.unwrap_err().to_string();
        assert_eq!(e, format!("--idp-url does not apply to the {} workload: it starts its own mock-idp", w.name()));
    }
    let mut a = args(Workload::TenantStart);
    a.runs = 0;
    assert_eq!(run(&a).await.unwrap_err().to_string(), "--concurrency, --runs and --families must be at least 1");
    // Durations: a_duration_below_a_hundredth_of_a_second_is_refused.
}

#[test]
fn workload_names_are_the_command_line_names() {
    use clap::ValueEnum;
    for w in Workload::value_variants() {
        assert_eq!(w.to_possible_value().unwrap().get_name(), w.name());
    }
}

/// A refused request is an error with the IdP's answer in it, not a silent zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_fails_with_the_idps_answer() {
    let mut a = args(Workload::ClientCredentials);
    a.client_secret = "wrong".into();
    let e = run(&a).await.unwrap_err().to_string();
    assert_eq!(
        e,
        r#"the workload failed: client_credentials (POST /oauth2/default/v1/token): 401 {"error":"invalid_client","error_description":"The client secret supplied for a confidential client is invalid."}"#
    );
}

/// The error names the request that failed: a token path on a server the tenant does not have is Okta's 404,
/// and the message says which path that was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_path_the_idp_does_not_serve_fails_naming_the_path() {
    let mut a = args(Workload::ClientCredentials);
    a.token_path = "/oauth2/nope/v1/token".into();
    let e = run(&a).await.unwrap_err().to_string();
    let body =
        e.strip_prefix("the workload failed: client_credentials (POST /oauth2/nope/v1/token): 404 ").unwrap_or_else(|| panic!("{e}"));
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|x| panic!("{x}: {e}"));
    assert_eq!(body["errorCode"], "E0000007");
    assert_eq!(body["errorSummary"], "Not found: Resource not found: nope (AuthorizationServer)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_idp_url_is_refused_with_a_reason() {
    let mut a = args(Workload::Jwks);
    a.idp_url = Some("https://127.0.0.1:1".into());
    assert_eq!(run(&a).await.unwrap_err().to_string(), "harness bench speaks plain http:// only (got https://127.0.0.1:1)");
}

/// The load generator drives a running binary as it drives the in-process IdP (here named `localhost`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_running_mock_idp_binary() {
    use std::io::BufRead;
    /// Kills the binary however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        Command::new(mock_idp_binary())
            .args(["--addr", "127.0.0.1:0"])
            .env("MOCK_IDP_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The binary prints its address once it listens.
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("mock-idp listening on ").unwrap_or_else(|| panic!("{line:?}")).to_string();
    let mut a = args(Workload::SignIn);
    a.idp_url = Some(format!("{}/", url.replace("127.0.0.1", "localhost")));
    let r = run(&a).await;
    // The binary's default tenant rotates refresh tokens: static-refresh says so instead of measuring it.
    let mut st = args(Workload::StaticRefresh);
    st.idp_url = Some(url.clone());
    let st = run(&st).await;
    drop(child);
    let r = r.unwrap();
    assert_eq!((r.errors, r.workload, r.first_error), (0, Workload::SignIn, None));
    assert!(r.ok > 0);
    assert_eq!(
        st.unwrap_err().to_string(),
        "the workload failed: static-refresh: the refresh token rotated; the IdP's bsr-local is not set to STATIC refresh tokens"
    );
}

/// A server that takes connections and never answers ends the run (2 s after the window) with an error,
/// instead of hanging it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_the_run_with_an_error() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        loop {
            let (s, _) = l.accept().await.unwrap();
            conns.push(s);
        }
    });
    let mut a = args(Workload::Jwks);
    a.idp_url = Some(url);
    let e = run(&a).await.unwrap_err().to_string();
    held.abort();
    assert_eq!(e, "the workload failed: no answer by the run's deadline, 2.0 s after the measured window");
}

/// A server that answers each request `delay_ms` after it arrives with `answer(request)` (status line,
/// headers and body), and its base URL.
async fn fake_server(delay_ms: u64, answer: fn(&[u8]) -> Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut b = [0u8; 4096];
                loop {
                    let n = s.read(&mut b).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    // The load generator's window and latencies are wall time (it measures a real server), so
                    // a slow server is slow in wall time; no delay, no wait.
                    if delay_ms > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                    }
                    if s.write_all(&answer(&b[..n])).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, server)
}

/// A 200 with `body` as JSON.
fn ok_json(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// A server that answers every request with an empty JWKS `delay_ms` after it arrives, and the arguments
/// of a jwks run against it with one worker and a window of `duration` seconds.
async fn one_worker_against_slow_server(delay_ms: u64, duration: f64) -> (BenchArgs, tokio::task::JoinHandle<()>) {
    let (url, server) = fake_server(delay_ms, |_| ok_json(r#"{"keys":[]}"#)).await;
    let mut a = args(Workload::Jwks);
    a.idp_url = Some(url);
    a.concurrency = 1;
    a.duration = duration;
    (a, server)
}

/// A 200 that is not the answer asked for is an error, not a success: a token response without an access
/// token, a key set without keys, a discovery document without an issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_answer_without_the_expected_member_is_an_error() {
    // A member name as a value (an error that names what is missing) is not the member; `"issuer" :` is.
    let (url, server) =
        fake_server(0, |_| ok_json(r#"{"hello":"world","missing":"access_token","no":"keys","issuer":1,"x":"issuer"}"#)).await;
    for (w, want) in [
        (
            Workload::ClientCredentials,
            r#"client_credentials (POST /oauth2/default/v1/token): 200 without "access_token" in the answer: {"hello":"world","missing":"access_token","no":"keys","issuer":1,"x":"issuer"}"#,
        ),
        (
            Workload::Jwks,
            r#"jwks (GET /oauth2/default/v1/keys): 200 without "keys" in the answer: {"hello":"world","missing":"access_token","no":"keys","issuer":1,"x":"issuer"}"#,
        ),
    ] {
        let mut a = args(w);
        a.idp_url = Some(url.clone());
        a.duration = 0.2;
        assert_eq!(run(&a).await.unwrap_err().to_string(), format!("the workload failed: {want}"));
    }
    let d = against(Workload::Discovery, url.clone());
    let r = run(&d).await.unwrap();
    assert!(r.ok > 0 && r.errors == 0, "a member with a value of any type counts: {r:?}");
    server.abort();
}

/// A server that echoes the request into its error (as some debugging servers and proxies do) does not
/// make bench print the client secret, its Authorization value or the password, and a body's control
/// characters (a terminal's escape sequences) are not printed as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_request_does_not_put_secrets_or_escape_codes_in_the_error() {
    let echo = |req: &[u8]| {
        let body = format!("\x1b[31mecho\x1b[0m {}", String::from_utf8_lossy(req));
        format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let (url, server) = fake_server(0, echo).await;
    let mut cc = against(Workload::ClientCredentials, url.clone());
    cc.client_secret = "TOPSECRETVALUE".into();
    let e = run(&cc).await.unwrap_err().to_string();
    let si = against(Workload::SignIn, url);
    let e2 = run(&si).await.unwrap_err().to_string();
    server.abort();
    assert!(
        e.starts_with("the workload failed: client_credentials (POST /oauth2/default/v1/token): 400 \u{fffd}[31mecho\u{fffd}[0m POST"),
        "{e}"
    );
    assert!(e.contains("Authorization: [secret]"), "{e}");
    assert!(!e.contains("TOPSECRETVALUE") && !e.contains("c3ZjLWxvY2FsOlRPUFNFQ1JFVFZBTFVF") && !e.contains('\x1b'), "{e}");
    assert!(e2.starts_with("the workload failed: authn (POST /api/v1/authn): 400 "), "{e2}");
    assert!(e2.contains(r#""password":"[secret]""#) && !e2.contains("Passw0rd!"), "{e2}");
    // This run's own tokens (a session token, a JWT) are not printed either.
    let leaky = |_: &[u8]| ok_json(r#"{"sessionToken":"20111aaaabbbbccccddddeeeeffffgggg1234","status":"SUCCESS"}"#);
    let (url, server) = fake_server(0, leaky).await;
    let si = against(Workload::SignIn, url);
    let e3 = run(&si).await.unwrap_err().to_string();
    server.abort();
    assert_eq!(
        e3,
        r#"the workload failed: authorize (GET /oauth2/default/v1/authorize) did not redirect: 200 {"sessionToken":"[token]","status":"SUCCESS"}"#
    );
}

/// A redirect without a code is reported without its query, which may carry a session token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_without_a_code_is_reported_without_its_query() {
    let answer = |req: &[u8]| {
        if req.starts_with(b"POST /api/v1/authn") {
            ok_json(r#"{"status":"SUCCESS","sessionToken":"SESSION-TOKEN-VALUE"}"#)
        } else {
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/login?fromURI=x%26sessionToken%3DSESSION-TOKEN-VALUE\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        }
    };
    let (url, server) = fake_server(0, answer).await;
    let a = against(Workload::SignIn, url);
    let e = run(&a).await.unwrap_err().to_string();
    server.abort();
    assert_eq!(e, "the workload failed: authorize (GET /oauth2/default/v1/authorize): no code in the redirect to http://127.0.0.1:9/login");
}

/// Errors of the warm-up second are not counted in the window, but reported: three 503s for the first
/// three token requests, then successes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_errors_are_reported_apart() {
    let idp = mock_idp::MockIdp::start(mock_idp::Options { clock: mock_idp::Clock::system(), ..Default::default() }).await.unwrap();
    let rule = serde_json::json!({"endpoint": "token", "times": 3, "action": {"respond": {"status": 503}}});
    // reqwest is built with rustls and no default provider in this workspace (run alone, nothing else installs it).
    harness::crypto::install();
    let r = reqwest::Client::new().post(format!("{}/_mock/faults", idp.base_url())).json(&rule).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut a = args(Workload::ClientCredentials);
    a.idp_url = Some(idp.base_url().to_string());
    a.concurrency = 1;
    a.duration = 0.2;
    let r = run(&a).await.unwrap();
    assert_eq!((r.errors, r.warm_up_errors), (0, 3));
    assert_eq!(
        r.warm_up_error.as_deref(),
        Some(
            r#"client_credentials (POST /oauth2/default/v1/token): 503 {"error":"temporarily_unavailable","error_description":"The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."}"#
        )
    );
}

/// Answers that all start before the window and end after it: nothing is counted, nothing failed, and the
/// run says so instead of printing zeros. The server answers each request 400 ms after it arrives; the window
/// is 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_in_which_nothing_ends_is_an_error() {
    let (a, server) = one_worker_against_slow_server(400, 0.05).await;
    let e = run(&a).await.unwrap_err().to_string();
    server.abort();
    assert_eq!(e, "no operation completed within the 0.05 s measured");
}

/// Operations longer than the window: the one that ends in it is counted, and its latency reported (not
/// 0 ms, though it started in the warm-up). One worker, answers after 1.2 s, a 1 s window after the 1 s
/// warm-up: the first answer ends at 1.2 s, the second at 2.4 s, after the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_longer_than_the_window_still_report_their_latency() {
    let (a, server) = one_worker_against_slow_server(1200, 1.0).await;
    let r = run(&a).await.unwrap();
    server.abort();
    assert_eq!((r.ok, r.errors), (1, 0));
    assert!(r.p50_ms >= 1200.0 && r.p50_ms == r.max_ms, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_path_that_is_not_a_path_is_refused() {
    let mut a = args(Workload::ClientCredentials);
    a.token_path = "token endpoint".into();
    assert_eq!(
        run(&a).await.unwrap_err().to_string(),
        r#"--token-path must be a path starting with / and without spaces, got "token endpoint""#
    );
}

/// A concurrency the process cannot hold is refused before any worker starts, saying why: above the
/// ceiling, or needing more open files than the limit (a worker's connection, and with the IdP in process its
/// other end too).
#[tokio::test]
async fn a_concurrency_beyond_the_open_file_limit_is_refused_before_it_starts() {
    let mut a = args(Workload::ClientCredentials);
    a.concurrency = 99_999_999_999;
    assert_eq!(run(&a).await.unwrap_err().to_string(), "--concurrency must be at most 100000, got 99999999999");
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the limits into the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let soft = lim.rlim_cur as usize;
    assert!(soft < 100_000 * 2, "this test needs an open-file limit below 200000, not {soft}");
    // In process: two descriptors a worker; the largest concurrency that does not fit.
    a.concurrency = (soft / 2).min(100_000);
    let needed = a.concurrency * 2 + 64;
    assert!(needed > soft);
    assert_eq!(
        run(&a).await.unwrap_err().to_string(),
        format!(
            "--concurrency {} needs about {needed} open files (two per connection with the IdP in this process), more than this process may open ({soft}; raise it with `ulimit -n`, at most {})",
            a.concurrency, lim.rlim_max
        )
    );
}

/// A duration too short to measure anything is refused, and printed readably.
#[tokio::test]
async fn a_duration_below_a_hundredth_of_a_second_is_refused() {
    for (d, shown) in
        [(1e-300, "1e-300"), (0.001, "0.001"), (0.0, "0"), (-1.0, "-1"), (f64::NAN, "NaN"), (f64::INFINITY, "inf"), (86_401.0, "86401")]
    {
        let mut a = args(Workload::Jwks);
        a.duration = d;
        assert_eq!(
            run(&a).await.unwrap_err().to_string(),
            format!("--duration must be a number of seconds from 0.01 to 86400 (a day), got {shown}"),
        );
    }
}

/// An error of a request that was in flight when the window closed is neither counted nor reported as one
/// of the warm-up. The server takes 700 ms per answer: the first (a 503) ends in the warm-up, the second (a
/// 200) in the window (1.0–2.0 s), the third (a 503) after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_the_window_is_not_a_warm_up_error() {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let answer = |_: &[u8]| match N.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        1 => ok_json(r#"{"keys":[]}"#),
        _ => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy".to_vec(),
    };
    let (url, server) = fake_server(700, answer).await;
    let mut a = against(Workload::Jwks, url);
    a.concurrency = 1;
    a.duration = 1.0;
    let r = run(&a).await.unwrap();
    server.abort();
    assert_eq!((r.ok, r.errors, r.warm_up_errors), (1, 0, 1));
    assert_eq!(r.warm_up_error.as_deref(), Some("jwks (GET /oauth2/default/v1/keys): 503 busy"));
    assert_eq!(N.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// With --json, standard output is the JSON alone (for `| jq`); the lines for a person go to stderr.
#[test]
fn json_output_is_alone_on_stdout() {
    let out = Command::new(&binaries().harness)
        .args(["bench", "--workload", "discovery", "--concurrency", "2", "--duration", "0.2", "--json"])
        .env("HARNESS_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    assert_eq!((v["workload"].as_str(), v["concurrency"].as_u64(), v["errors"].as_u64()), (Some("discovery"), Some(2), Some(0)));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("discovery at concurrency 2 for 0.2"), "{stderr}");
}

/// An argument bench refuses is a usage error, as clap's own are: exit 2, the reason on stderr.
#[test]
fn a_refused_argument_exits_2() {
    for (args, why) in [
        (&["--duration", "0"][..], "harness bench: --duration must be a number of seconds from 0.01 to 86400 (a day), got 0\n"),
        (
            &["--workload", "startup", "--idp-url", "http://127.0.0.1:1"][..],
            "harness bench: --idp-url does not apply to the startup workload: it starts its own mock-idp\n",
        ),
    ] {
        let out = Command::new(&binaries().harness).arg("bench").args(args).output().unwrap();
        assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()), (Some(2), why.to_string()), "{args:?}");
    }
    // A malformed --idp-url too, before anything starts; with --json the error is the JSON on stdout, and a
    // password in the URL is in neither.
    let out = Command::new(&binaries().harness).args(["bench", "--json", "--idp-url", "http:/u:SE/CRET@127.0.0.1:1"]).output().unwrap();
    let why = r#"--idp-url "http:/[credentials]@127.0.0.1:1": invalid port number"#;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("harness bench: {why}\n"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"workload": "client-credentials", "error": why}));
}
