//! The scenario runner itself (issue 6): the library passes, a wrong expectation fails with a clear
//! message, a malformed file is an error naming file, line and field, reports count right, shards
//! partition the library, and a reproduction (`expect_failure`) passes only when the bug shows.

use std::path::PathBuf;

use harness::scenario::runner::Outcome;
use harness::scenario::{RunArgs, load, report, run_all, select};

fn args(paths: Vec<PathBuf>) -> RunArgs {
    RunArgs {
        paths,
        jobs: 4,
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
        browser: Default::default(),
    }
}

fn library() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write scenario");
    p
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("harness-runner-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The whole built-in library passes (skips allowed only for missing Chromium or Node.js).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scenario_library_passes() {
    let a = args(vec![library()]);
    let list = select(&a).expect("the library parses");
    assert!(list.len() >= 30, "at least 30 scenarios, found {}", list.len());
    let reports = run_all(list, &a, false, None).await;
    // The stub meets every conformance requirement, the recommended ones too (tests/tests/conformance.rs).
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed { message, .. } => Some(format!("{}: {message}", r.name)),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "failed scenarios:\n{}", failed.join("\n"));
    for r in &reports {
        if let Outcome::Skipped { reason } = &r.outcome {
            assert!(
                reason.contains("Chromium") || reason.contains("Node.js") || reason.contains("external target"),
                "{}: {reason}",
                r.name
            );
        }
    }
    // Every case of ../shared/cases.md has at least one scenario.
    for n in 1..=24 {
        let case = format!("C{n:02}");
        assert!(reports.iter().any(|r| r.case.as_deref() == Some(case.as_str())), "no scenario for {case}");
    }
}

const WRONG: &str = r#"name: wrong-expectation
steps:
  - sign_in: {actor: browser, user: alice@example.com}
  - request: {actor: browser, path: /api/me}
    expect: {status: 200, json: {/username: alicia}}
"#;

#[tokio::test]
async fn a_wrong_expectation_fails_with_expected_and_actual() {
    let d = tmpdir("wrong");
    write(&d, "wrong.yaml", WRONG);
    let a = args(vec![d.clone()]);
    let reports = run_all(select(&a).unwrap(), &a, false, None).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].outcome,
        Outcome::Failed { step: Some(1), message: "step 2 (request): JSON /username: expected \"alicia\", got \"alice\"".into() }
    );
    let detail = report::failure_detail(&reports[0]).unwrap();
    assert!(detail.contains("IdP events around it:\n") && detail.contains("app.oauth2.token.grant.id_token"), "{detail}");
    assert!(detail.contains("IdP requests around it:\n") && !detail.contains("(none)"), "{detail}");
    // The CLI's exit status for a failing run is 1.
    let mut a = a;
    a.junit = Some(d.join("junit.xml"));
    assert_eq!(harness::scenario::cli_run(a).await, 1);
    let xml = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit file is well-formed XML");
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    assert_eq!(suites.attribute("tests"), Some("1"));
    assert_eq!(suites.attribute("failures"), Some("1"));
    let case = doc.descendants().find(|n| n.has_tag_name("testcase")).unwrap();
    assert_eq!(case.attribute("name"), Some("wrong-expectation"));
    let failure = case.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some("step 2 (request): JSON /username: expected \"alicia\", got \"alice\""));
}

#[tokio::test]
async fn a_malformed_file_is_an_error_naming_file_line_and_field() {
    let d = tmpdir("bad");
    let p = write(&d, "bad.yaml", "name: bad\nsteps:\n  - request: {actor: a, path: /}\n    expect: {stauts: 200}\n");
    let e = load::load(&p).unwrap_err();
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field, "steps[0].expect.stauts");
    assert!(e.message.starts_with("unknown field `stauts`, expected one of `status`"), "{}", e.message);
    assert!(e.to_string().starts_with(&format!("{}:4:", p.display())), "{e}");
    // The CLI exits 2 and runs nothing.
    assert_eq!(harness::scenario::cli_run(args(vec![d.clone()])).await, 2);
    let p2 = write(&d, "bad.yaml", "name: bad\nsteps:\n  - teleport: {actor: a}\n");
    let e = load::load(&p2).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (Some(3), "steps[0].teleport"));
    assert!(e.message.contains("unknown field `teleport`") && e.message.contains("sign_in"), "{}", e.message);
}

#[test]
fn idp_overrides_are_checked_when_the_file_loads() {
    let d = tmpdir("overrides");
    let p = write(&d, "o.yaml", "name: o\nidp:\n  apps:\n    bsr-local: {leeway: 90}\nsteps:\n  - clock: {advance_seconds: 1}\n");
    let e = load::load(&p).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (Some(4), "idp.apps.bsr-local.leeway"));
    assert_eq!(e.message, "leeway must be between 0 and 60 seconds (Okta's range), got 90");
    let p = write(&d, "o.yaml", "name: o\nidp:\n  apps:\n    nope: {leeway: 5}\nsteps:\n  - clock: {advance_seconds: 1}\n");
    let e = load::load(&p).unwrap_err();
    assert_eq!(e.field, "idp.apps.nope");
    assert_eq!(e.message, "no app with this client_id in the default tenant");
    let p =
        write(&d, "o.yaml", "name: o\nidp:\n  apps:\n    bsr-local: {pkce_required: sometimes}\nsteps:\n  - clock: {advance_seconds: 1}\n");
    let e = load::load(&p).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (Some(4), "idp.apps.bsr-local.pkce_required"));
    assert!(e.message.starts_with("invalid type: string \"sometimes\", expected a boolean"), "{}", e.message);
    // A valid one reaches the app's credentials, where mock-idp reads it.
    let p = write(&d, "o.yaml", "name: o\nidp:\n  apps:\n    bsr-local: {pkce_required: true}\nsteps:\n  - clock: {advance_seconds: 1}\n");
    let t = harness::scenario::runner::tenant_for(&load::load(&p).unwrap().scenario).unwrap();
    let app = t.apps.iter().find(|a| a.credentials.oauth_client.client_id == "bsr-local").unwrap();
    assert_eq!(app.credentials.oauth_client.pkce_required, Some(true));
}

#[test]
fn shards_partition_the_library() {
    let all = select(&args(vec![library()])).unwrap();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let mut a = args(vec![library()]);
        a.shard = Some(format!("{k}/3"));
        for l in select(&a).unwrap() {
            assert!(!seen.contains(&l.scenario.name), "{} is in two shards", l.scenario.name);
            seen.push(l.scenario.name.clone());
        }
    }
    assert_eq!(seen.len(), all.len());
    assert!(harness::scenario::parse_shard("4/3").is_err());
    assert!(harness::scenario::parse_shard("0/3").is_err());
}

#[tokio::test]
async fn a_reproduction_passes_only_when_the_bug_shows() {
    let d = tmpdir("repro");
    let reproduces = "name: repro-ok\nexpect_failure: 'JSON /username'\nsteps:\n  - sign_in: {actor: b, user: alice@example.com}\n  - request: {actor: b, path: /api/me}\n    expect: {json: {/username: nobody}}\n";
    let does_not = "name: repro-missing\nexpect_failure: 'JSON /username'\nsteps:\n  - sign_in: {actor: b, user: alice@example.com}\n  - request: {actor: b, path: /api/me}\n    expect: {json: {/username: alice}}\n";
    write(&d, "a.yaml", reproduces);
    write(&d, "b.yaml", does_not);
    let a = args(vec![d]);
    let reports = run_all(select(&a).unwrap(), &a, false, None).await;
    let by = |n: &str| reports.iter().find(|r| r.name == n).unwrap().outcome.clone();
    assert_eq!(by("repro-ok"), Outcome::Passed);
    assert_eq!(
        by("repro-missing"),
        Outcome::Failed {
            step: None,
            message: "expected the scenario to fail with \"JSON /username\" (a reproduction), but every step passed".into()
        }
    );
}

#[tokio::test]
async fn the_html_report_draws_a_timeline_with_rotations_and_reuse() {
    let a = args(vec![library().join("refresh/c02-duplicate-renew-leeway-0.yaml")]);
    let reports = run_all(select(&a).unwrap(), &a, false, None).await;
    assert_eq!(reports[0].outcome, Outcome::Passed);
    let html = report::html(&reports);
    assert!(html.contains("<svg"), "inline SVG");
    assert!(html.contains("reuse detected: family revoked"), "the reuse marker");
    assert!(html.contains("refresh token generation 1 issued"), "rotations are drawn");
}

#[tokio::test]
async fn a_browser_scenario_with_an_unreachable_webdriver_fails_naming_it() {
    // A WebDriver URL makes browser scenarios runnable (never skipped), so a wrong one is a failure.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut a = args(vec![library().join("browser/sign-in-and-out.yaml")]);
    a.browser.webdriver_url = Some(format!("http://127.0.0.1:{port}"));
    let reports = run_all(select(&a).unwrap(), &a, false, None).await;
    let message = format!(
        "step 1 (sign_in): cannot start Chromium: cannot reach the WebDriver at http://127.0.0.1:{port}: Connection refused (os error 111)"
    );
    assert_eq!(reports[0].outcome, Outcome::Failed { step: Some(0), message: message.clone() });
    // The step failed before any IdP traffic: the details say so instead of printing empty headings, the
    // same text in the terminal, in JUnit's failure and in the HTML report.
    let detail = report::failure_detail(&reports[0]).unwrap();
    assert_eq!(
        detail,
        format!(
            "--- browser-sign-in-and-out ({})\n    {message}\n    IdP events around it: (none)\n    IdP requests around it: (none)\n",
            reports[0].file
        )
    );
    let xml = report::junit(&reports);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!((failure.attribute("message"), failure.text()), (Some(message.as_str()), Some(detail.as_str())));
    assert!(report::html(&reports).contains(&format!("<pre class=\"fail\">{detail}</pre>")));
}

#[tokio::test]
async fn a_malformed_public_host_or_webdriver_url_is_a_usage_error_before_anything_runs() {
    let d = tmpdir("usage");
    let run = |public_host: Option<&str>, webdriver_url: Option<&str>| {
        let mut a = args(vec![library()]);
        // One scenario without a browser: a WebDriver URL typo is caught even where no browser would start.
        a.filter = Some("c23-logout-round".into());
        a.browser.public_host = public_host.map(str::to_string);
        a.browser.webdriver_url = webdriver_url.map(str::to_string);
        a.junit = Some(d.join("junit.xml"));
        let _ = std::fs::remove_file(d.join("junit.xml"));
        harness::scenario::cli_run(a)
    };
    for (host, url) in
        [(Some("vm:99"), None), (Some("http://vm"), None), (None, Some("notaurl")), (Some("runner"), Some("chromedriver:9515"))]
    {
        assert_eq!(run(host, url).await, 2, "--public-host {host:?} --webdriver-url {url:?}");
        assert!(!d.join("junit.xml").exists(), "nothing ran, no report was written ({host:?}, {url:?})");
    }
    // Well-formed values run it (the WebDriver is not contacted: this scenario has no browser steps).
    assert_eq!(run(Some("localhost"), Some("http://127.0.0.1:9")).await, 0);
    assert!(d.join("junit.xml").exists());
}

/// A service provider's answer with control characters (a terminal's escape sequences, NUL, backspace, a
/// right-to-left override) and a scenario name with one: the JUnit XML stays well-formed, and no report
/// carries them as they are; they are shown as `\u{..}` escapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_an_answer_or_a_name_do_not_reach_the_reports_as_they_are() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 4096];
                let _ = s.read(&mut b).await;
                let body = "hello \x1b[31mred\x1b[0m \0 \x08 \u{202e}txt.exe end";
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 418 I'm a teapot\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                            .as_bytes(),
                    )
                    .await;
            });
        }
    });
    let d = tmpdir("control-chars");
    let p = write(
        &d,
        "ctl.yaml",
        &format!(
            "name: \"ctl\\u0001name\"\nactors:\n  tab: {{}}\nsteps:\n  - request: {{actor: tab, path: \"http://127.0.0.1:{port}/ctl\"}}\n    expect: {{status: 200, body_contains: [nothing-like-it]}}\n"
        ),
    );
    let a = args(vec![p]);
    let reports = run_all(select(&a).unwrap(), &a, false, None).await;
    server.abort();
    let Outcome::Failed { message, .. } = &reports[0].outcome else { panic!("{:?}", reports[0].outcome) };
    assert!(message.contains('\x1b'), "the outcome itself keeps what was received: {message:?}");
    let xml = report::junit(&reports);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let case = doc.descendants().find(|n| n.has_tag_name("testcase")).unwrap();
    assert_eq!(case.attribute("name"), Some("ctl\\u{1}name"));
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    let text = failure.text().unwrap();
    assert!(text.contains("hello \\u{1b}[31mred\\u{1b}[0m \\u{0} \\u{8} \\u{202e}txt.exe end"), "{text}");
    // The JSON report keeps what was received, every control character escaped (serde_json leaves U+202E,
    // DEL and the C1 controls as they are; the report escapes them too).
    let json = report::json(&reports);
    assert!(json.contains("\\u202etxt.exe"), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(serde_json::to_string(&v).unwrap().contains("\u{202e}txt.exe"), "decoded, it is the character again");
    for out in [xml.clone(), json, report::terminal(&reports), report::failure_detail(&reports[0]).unwrap(), report::html(&reports)] {
        assert!(!out.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}'), "{out:?}");
    }
}

/// A sharded or filtered run says its conformance verdict covers only the requirements it ran; the whole
/// library's does not.
#[test]
fn a_partial_run_says_its_verdict_is_partial() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(&tests::binaries().harness)
            .current_dir(repo)
            .args(["run", "--quiet", "scenarios/conformance"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let total = std::fs::read_dir(library().join("conformance")).unwrap().count();
    let out = run(&["--filter", "conf-key-rotation"]);
    let ran: usize = out.lines().find_map(|l| l.strip_suffix(" passed, 0 failed, 0 skipped")?.parse().ok()).unwrap_or_default();
    assert!(ran >= 2, "{out}");
    assert!(
        out.contains(&format!(
            "(partial: {ran} of the {total} conformance requirements in these files were in this run (--filter conf-key-rotation); the verdict is for those only)"
        )),
        "{out}"
    );
    assert!(!run(&[]).contains("(partial:"));
}

/// Output that cannot be written (a full disk) is said and fails the command (a reader that stopped early,
/// `| head -1`, does not: the pipe's end is not an error).
#[test]
fn output_that_cannot_be_written_fails_the_command() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for args in [&["list"][..], &["run", "--quiet", "--filter", "c23-logout-round"][..]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = std::process::Command::new(&tests::binaries().harness).current_dir(repo).args(args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "harness: cannot write its output: No space left on device (os error 28)\n");
    }
}

/// A scenario name with a line break cannot forge a line of the progress, the summary table or `harness
/// list`: line breaks and tabs in one-line fields are escaped like other control characters.
#[test]
fn a_name_with_a_line_break_stays_on_its_line() {
    let d = tmpdir("newline-name");
    write(&d, "n.yaml", "name: \"real\\npass   forged-scenario\"\nactors:\n  tab: {}\nsteps:\n  - clock: {advance_seconds: 1}\n");
    for args in [&["list"][..], &["run"][..]] {
        let out = std::process::Command::new(&tests::binaries().harness).args(args).arg(&d).output().unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(all.contains("real\\u{a}pass   forged-scenario"), "{args:?}: {all}");
        assert!(!all.lines().any(|l| l.starts_with("pass   forged")), "{args:?}: {all}");
    }
}
