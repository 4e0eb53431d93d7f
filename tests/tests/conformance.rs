//! The service-provider conformance profile (scenarios/conformance/, issue 12), run through the library
//! against the in-process stub BSR and mock-idp: with the stub's correct settings every requirement is
//! met, and with each bug switch on exactly the matching requirements fail, which the verdict names.
//!
//! Bug configurations are variant copies of the profile in a temporary folder with `bsr.switches` set in
//! every scenario, so the profile files stay as a service provider's CI would run them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use harness::scenario::runner::{Outcome, ScenarioReport};
use harness::scenario::{RunArgs, run_all, select};
use serde_yaml::{Mapping, Value};

use harness::scenario::verdict::{self, Verdict};

fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/conformance")
}

fn args(paths: Vec<PathBuf>) -> RunArgs {
    RunArgs {
        paths,
        jobs: 2,
        filter: None,
        repeat: 1,
        shard: None,
        idp_url: None,
        target: None,
        require_all: true,
        junit: None,
        json: None,
        html: None,
        quiet: true,
        browser: Default::default(),
    }
}

async fn run(dir: PathBuf) -> Vec<ScenarioReport> {
    let a = args(vec![dir]);
    let list = select(&a).unwrap_or_else(|e| panic!("the profile loads: {e:?}"));
    run_all(list, &a, false, None).await
}

/// Runs a variant folder, then removes it.
async fn run_variant(dir: PathBuf) -> Vec<ScenarioReport> {
    let rs = run(dir.clone()).await;
    std::fs::remove_dir_all(&dir).unwrap();
    rs
}

/// A copy of the profile in a fresh temporary folder with `switches` merged into every scenario's
/// `bsr.switches`.
fn variant(tag: &str, switches: &[(&str, Value)]) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("conformance-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(profile_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let mut doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let top = doc.as_mapping_mut().expect("a scenario is a mapping");
        let bsr = top.entry("bsr".into()).or_insert_with(|| Value::Mapping(Mapping::new()));
        let sw = bsr.as_mapping_mut().unwrap().entry("switches".into()).or_insert_with(|| Value::Mapping(Mapping::new()));
        for (k, v) in switches {
            sw.as_mapping_mut().unwrap().insert(Value::from(*k), v.clone());
        }
        std::fs::write(dir.join(path.file_name().unwrap()), serde_yaml::to_string(&doc).unwrap()).unwrap();
    }
    dir
}

fn failing(rs: &[ScenarioReport]) -> BTreeSet<String> {
    rs.iter().filter(|r| matches!(r.outcome, Outcome::Failed { .. })).map(|r| r.name.clone()).collect()
}

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn report<'a>(rs: &'a [ScenarioReport], name: &str) -> &'a ScenarioReport {
    rs.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no scenario {name}"))
}

#[tokio::test]
async fn stub_with_correct_settings_meets_every_requirement() {
    let rs = run(profile_dir()).await;
    assert_eq!(rs.len(), 30, "{:?}", rs.iter().map(|r| &r.name).collect::<Vec<_>>());
    assert!(verdict::is_profile(&rs));
    for r in &rs {
        assert!(r.name.starts_with("conf-"), "{}", r.name);
        assert!(r.clause.as_deref().is_some_and(|c| !c.is_empty()), "{} names its clause", r.name);
        assert!(matches!(r.level.as_deref(), Some("required" | "recommended")), "{}: level {:?}", r.name, r.level);
        assert_eq!(r.outcome, Outcome::Passed, "{}: {}", r.name, verdict::evidence(r).1);
    }
    assert_eq!(rs.iter().filter(|r| r.level.as_deref() == Some("required")).count(), 22);
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 22/22 required met, 8/8 recommended met");
    assert_eq!(verdict::exit_code(&rs), 0);

    // The evidence of a pass: the fault applied and what the service provider answered.
    let (summary, _) = verdict::evidence(report(&rs, "conf-id-token-wrong-iss"));
    assert_eq!(summary, "tamper_id_token:wrong_iss; the service provider answered 502 at /oauth2/callback");
    let (summary, _) = verdict::evidence(report(&rs, "conf-authorize-wrong-state"));
    assert_eq!(summary, "tamper_authorize:wrong_state; the service provider answered 400 at /oauth2/callback");
    // RFC 9207: refused before the code was redeemed (the scenario checks the token count is 0).
    let (summary, _) = verdict::evidence(report(&rs, "conf-authorize-wrong-iss-param"));
    assert_eq!(summary, "tamper_authorize:wrong_iss_param; the service provider answered 400 at /oauth2/callback");
    // The injected code: the stub's PKCE verifier does not match it, so the token endpoint refuses.
    let r = report(&rs, "conf-authorize-injected-code");
    assert_eq!(verdict::evidence(r).0, "tamper_authorize:injected_code; the service provider answered 502 at /oauth2/callback");
    let exchanges: Vec<u64> =
        r.idp_requests.iter().filter(|q| q["grant_type"] == "authorization_code").map(|q| q["status"].as_u64().unwrap_or(0)).collect();
    assert_eq!(exchanges, [400, 200], "the injected code is refused, the clean sign-in's is not");
    let (summary, _) = verdict::evidence(report(&rs, "conf-logout-ends-the-session"));
    assert_eq!(summary, "all 3 steps passed");

    // The reports group the same way.
    let junit = verdict::junit(&rs);
    assert!(junit.contains("<testsuite name=\"conformance.required\" tests=\"22\" failures=\"0\" skipped=\"0\""), "{junit}");
    assert!(junit.contains("<testsuite name=\"conformance.recommended\" tests=\"8\" failures=\"0\" skipped=\"0\""), "{junit}");
    assert!(junit.contains(
        "<property name=\"clause\" value=\"OpenID Connect Core 1.0 §3.1.3.8\" /><property name=\"level\" value=\"recommended\" />"
    ));
    let html = verdict::html(&rs);
    assert!(
        html.contains(
            "<h2>Conformance verdict</h2><p><strong>conformance: CONFORMANT: 22/22 required met, 8/8 recommended met</strong></p>"
        )
    );
    assert!(html.contains("<td>OpenID Connect Core 1.0 §3.1.3.7 item 2</td><td>required</td><td class=\"pass\">pass</td>"), "{html}");
    let table = verdict::terminal(&rs);
    assert!(table.lines().any(|l| l.starts_with("conf-pkce-s256") && l.contains("recommended") && l.contains("pass")), "{table}");
}

/// One bug configuration: the switches, and exactly the requirements that must fail.
async fn bug_config(tag: &str, switches: &[(&str, Value)], want: &[&str]) -> Vec<ScenarioReport> {
    let rs = run_variant(variant(tag, switches)).await;
    assert_eq!(failing(&rs), names(want), "{tag}: {}", verdict::terminal(&rs));
    rs
}

#[tokio::test]
async fn ignoring_at_hash_fails_only_the_recommended_at_hash_requirement() {
    let rs = bug_config("at-hash", &[("check_at_hash", Value::from(false))], &["conf-id-token-bad-at-hash"]).await;
    let r = report(&rs, "conf-id-token-bad-at-hash");
    assert_eq!(verdict::verdict(r), Verdict::NotMet);
    assert_eq!(verdict::exit_code(&rs), 0, "recommended requirements do not fail the run");
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 22/22 required met, 7/8 recommended met");

    // The evidence of a requirement not met: the step's message, the service provider's answers, and the
    // IdP's request-log lines of that step with the tampering fault that was applied.
    let (summary, evidence) = verdict::evidence(r);
    assert_eq!(summary, "step 2 (the tampered sign-in is refused): body contains \"Signed in as\"");
    assert!(evidence.contains("service provider's answers in this step:\n  GET http://127.0.0.1:"), "{evidence}");
    assert!(evidence.contains("/oauth2/callback → 302\n"), "{evidence}");
    assert!(
        evidence.contains(" POST /oauth2/v1/token 200 grant_type=authorization_code fault=tamper_id_token:bad_at_hash\n"),
        "{evidence}"
    );
    let log = evidence.split("IdP request log from this step on:\n").nth(1).expect("request-log lines");
    let paths: Vec<&str> = log.lines().map(|l| l.split_whitespace().nth(2).unwrap_or("")).collect();
    assert_eq!(
        paths,
        [
            "/oauth2/v1/authorize",
            "/login/login.htm",
            "/login/login.htm",
            "/oauth2/v1/authorize/redirect",
            "/oauth2/v1/token",
            "/oauth2/v1/keys"
        ],
        "{evidence}"
    );
    let junit = verdict::junit(&rs);
    assert!(junit.contains("<testsuite name=\"conformance.recommended\" tests=\"8\" failures=\"1\" skipped=\"0\""), "{junit}");
    assert!(junit.contains("type=\"RecommendedNotMet\">step 2 (the tampered sign-in is refused): body contains &quot;Signed in as&quot;"));
    let table = verdict::terminal(&rs);
    assert!(table.lines().any(|l| l.starts_with("conf-id-token-bad-at-hash") && l.contains("recommended") && l.contains("not met")));
}

#[tokio::test]
async fn ignoring_email_verified_fails_only_the_recommended_email_requirement() {
    let rs = bug_config("email-verified", &[("email_verified", Value::from("ignore"))], &["conf-id-token-email-unverified"]).await;
    assert_eq!(verdict::verdict(report(&rs, "conf-id-token-email-unverified")), Verdict::NotMet);
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 22/22 required met, 7/8 recommended met");
}

#[tokio::test]
async fn ignoring_the_rfc9207_iss_parameter_fails_only_the_recommended_iss_requirement() {
    let rs = bug_config("iss-param", &[("check_iss_param", Value::from(false))], &["conf-authorize-wrong-iss-param"]).await;
    let r = report(&rs, "conf-authorize-wrong-iss-param");
    assert_eq!(verdict::verdict(r), Verdict::NotMet);
    assert_eq!(verdict::evidence(r).0, "step 2 (the tampered sign-in is refused): body contains \"Signed in as\"");
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 22/22 required met, 7/8 recommended met");
}

#[tokio::test]
async fn no_pkce_fails_the_pkce_requirement_and_the_nonce_still_refuses_an_injected_code() {
    let rs = bug_config("no-pkce", &[("pkce", Value::from(false))], &["conf-pkce-s256"]).await;
    let r = report(&rs, "conf-pkce-s256");
    assert_eq!(verdict::verdict(r), Verdict::NotMet);
    let (summary, _) = verdict::evidence(r);
    assert!(summary.starts_with("step 1 (the sign-in with PKCE S256 works): status: expected 200, got 400"), "{summary}");
    assert!(summary.contains("PKCE code challenge is required by the application."), "{summary}");
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 22/22 required met, 7/8 recommended met");
    // RFC 9700 §2.1.1 lets a confidential OpenID Connect client use the nonce instead: the injected code
    // redeems (no PKCE binds it), and the stub refuses its ID token for the nonce.
    let r = report(&rs, "conf-authorize-injected-code");
    assert_eq!(r.outcome, Outcome::Passed);
    let exchanges: Vec<u64> =
        r.idp_requests.iter().filter(|q| q["grant_type"] == "authorization_code").map(|q| q["status"].as_u64().unwrap_or(0)).collect();
    assert_eq!(exchanges, [200, 200]);
}

#[tokio::test]
async fn jwks_fetched_only_at_start_up_fails_key_rotation_with_immediate_use() {
    let rs = bug_config("startup-only", &[("jwks", Value::from("startup-only"))], &["conf-key-rotation-new-key-at-once"]).await;
    assert_eq!(verdict::exit_code(&rs), 1);
    assert_eq!(
        verdict::conclusion(&rs),
        "conformance: NOT CONFORMANT: 21/22 required met, 8/8 recommended met; failing: conf-key-rotation-new-key-at-once"
    );
    let r = report(&rs, "conf-key-rotation-new-key-at-once");
    let (summary, evidence) = verdict::evidence(r);
    assert!(summary.starts_with("step 4 (the ID token is signed with the new key): status: expected 200, got 502"), "{summary}");
    // The planned rotation (to a key published in advance) still works without a refetch.
    assert_eq!(report(&rs, "conf-key-rotation-planned").outcome, Outcome::Passed);
    // The evidence shows the sign-in with the new key and no JWKS fetch after it.
    let log = evidence.split("IdP request log from this step on:\n").nth(1).unwrap();
    assert!(log.contains("/oauth2/v1/token 200 grant_type=authorization_code"), "{evidence}");
    assert!(!log.contains("/oauth2/v1/keys"), "{evidence}");
}

#[tokio::test]
async fn strict_nonce_on_refresh_fails_every_requirement_that_refreshes() {
    let rs = bug_config(
        "strict-nonce",
        &[("refresh_nonce", Value::from("strict"))],
        &["conf-refresh-concurrent-at-expiry", "conf-refresh-rotation-with-grace", "conf-refreshed-id-token-without-nonce"],
    )
    .await;
    assert_eq!(verdict::exit_code(&rs), 1);
    let (summary, _) = verdict::evidence(report(&rs, "conf-refreshed-id-token-without-nonce"));
    assert_eq!(
        summary,
        "step 3 (check): whoami of browser: expected 200 naming alice@example.com, got 401 {\"error\":\"session_ended\",\"error_description\":\
         \"the ID token of the refresh was rejected (nonce is missing, and the nonce sent at sign-in is required), so the session ended\",\
         \"login_url\":\"/login\"}"
    );
}

#[tokio::test]
async fn naive_concurrent_refresh_fails_concurrent_requests_at_expiry() {
    let rs = bug_config("naive", &[("refresh_strategy", Value::from("naive"))], &["conf-refresh-concurrent-at-expiry"]).await;
    let (_, evidence) = verdict::evidence(report(&rs, "conf-refresh-concurrent-at-expiry"));
    // Eight refreshes with one refresh token: one rotates, seven are reuse.
    let log = evidence.split("IdP request log from this step on:\n").nth(1).unwrap();
    let refreshes: Vec<&str> = log.lines().filter(|l| l.contains("grant_type=refresh_token")).collect();
    assert_eq!(refreshes.len(), 8, "{evidence}");
    assert_eq!(refreshes.iter().filter(|l| l.contains(" 400 ")).count(), 7, "{evidence}");
}

#[tokio::test]
async fn no_clock_skew_allowance_fails_only_the_recommended_skew_requirement() {
    let rs = bug_config("skew-0", &[("clock_skew_seconds", Value::from(0))], &["conf-idp-clock-ahead"]).await;
    assert_eq!(verdict::verdict(report(&rs, "conf-idp-clock-ahead")), Verdict::NotMet);
    assert_eq!(verdict::exit_code(&rs), 0);
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 22/22 required met, 7/8 recommended met");
}

#[tokio::test]
async fn a_fault_that_never_applies_leaves_the_requirement_not_exercised() {
    // A nonce defect limited to refreshes never applies: Okta's refreshed ID tokens carry no nonce. The
    // tampered sign-in then succeeds, but that says nothing about the nonce check, and the verdict says so.
    let src = std::fs::read_to_string(profile_dir().join("id-token-missing-nonce.yaml")).unwrap();
    let changed = src.replace("{endpoint: token, times: 1,", "{endpoint: token, grant_type: refresh_token, times: 1,");
    assert_ne!(src, changed);
    let dir = variant("not-applicable", &[]);
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::write(dir.join("id-token-missing-nonce.yaml"), changed).unwrap();
    let rs = run_variant(dir).await;
    let r = report(&rs, "conf-id-token-missing-nonce");
    assert!(
        matches!(&r.outcome, Outcome::Failed { message, .. } if message == "step 2 (the tampered sign-in is refused): body contains \"Signed in as\"")
    );
    assert_eq!(verdict::verdict(r), Verdict::NotApplicable);
    assert_eq!(verdict::exit_code(&rs), 0);
    assert_eq!(verdict::conclusion(&rs), "conformance: CONFORMANT: 0/0 required met, 0/0 recommended met, 1 not applicable");
    assert_eq!(verdict::evidence(r).0, "not exercised: the IdP never applied the fault (for a nonce defect: no nonce was sent)");
    assert!(verdict::junit(&rs).contains("<skipped message=\"not exercised: the IdP never applied the fault"));
}
