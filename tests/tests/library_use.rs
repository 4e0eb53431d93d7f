//! How your own Rust tests use the harness (documented in docs/scenarios.md, "Library use"): the rstest
//! fixtures, a scenario file, and a scenario built in code.

use harness::fixtures::{bsr, clock};
use harness::scenario::runner::Outcome;
use harness::up::Up;
use mock_idp::Clock;
use rstest::rstest;

/// The `bsr` fixture: a mock-idp and a stub BSR wired to each other, on a frozen clock.
#[rstest]
#[tokio::test]
async fn the_bsr_fixture_signs_a_user_in(#[future] bsr: Up) {
    let up = bsr.await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // The stub's /login sends the browser to the IdP's authorize endpoint of the org server.
    let r = http.get(format!("{}/login", up.bsr.base_url())).send().await.unwrap();
    assert!(r.status().is_redirection(), "a redirect, got {}", r.status());
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(&format!("{}/oauth2/v1/authorize?", up.idp.base_url())), "{loc}");
    assert_eq!(up.idp.clock().now_ms(), Clock::test_default().now_ms());
}

#[rstest]
fn the_clock_fixture_is_frozen(clock: Clock) {
    let t = clock.now_ms();
    clock.advance_ms(90 * 86_400_000);
    assert_eq!(clock.now_ms() - t, 90 * 86_400_000);
}

/// One scenario file from the library, run in-process.
#[tokio::test]
async fn run_one_scenario_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/refresh/c06-stale-generation.yaml");
    let r = harness::scenario::run_file(&path).await.expect("the file parses");
    assert_eq!(r.outcome, Outcome::Passed);
    assert_eq!(r.case.as_deref(), Some("C06"));
}

/// A scenario built in code.
#[tokio::test]
async fn run_a_scenario_built_in_code() {
    let yaml = r#"
name: my-refresh-check
steps:
  - sign_in: {actor: me, user: bob@example.com}
    expect: {status: 200}
  - clock: {advance_seconds: 3601}
  - request: {actor: me, path: /api/me}
    expect: {status: 200, json: {/username: bob}}
  - check:
      requests: [{endpoint: token, grant_type: refresh_token, status: 200, count: 1}]
"#;
    let r = harness::scenario::run_yaml(yaml, "my-refresh-check.yaml").await.expect("it parses");
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.outcome);
    let e = harness::scenario::run_yaml("name: x\nsteps: []\n", "empty.yaml").await.unwrap_err();
    assert_eq!(e.message, "a scenario needs at least one step");
}
