//! Restarts without loss: `mock-idp --state FILE` and `harness bsr --state FILE`. An IdP that is stopped
//! without a goodbye (dropped in-process, or SIGKILLed as a process in the middle of a load run) and started
//! again on the same file keeps its users signed in, its keys, its System Log and clock, and decides every
//! refresh exactly as it would have without the restart: rotation, the grace window, reuse detection. A
//! corrupt or incompatible file stops start-up with an error that names it.

mod reliability_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::bsr::{BsrConfig, StubBsr, UserState};
use mock_idp::{MockIdp, Options};
use reliability_support::{StubEnv, browser, walk};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::*;

/// A fresh folder for one test's state files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mock-idp-{name}-{}-{}", std::process::id(), random_string()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn start_on(addr: SocketAddr, state: &Path) -> anyhow::Result<MockIdp> {
    // The previous server on this address, if any, is gone (`MockIdp::abort` or `shutdown` waited for it).
    let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e}"))?;
    let addr = l.local_addr()?;
    MockIdp::serve(l, Options { addr, state_file: Some(state.to_path_buf()), ..Options::default() }).await
}

/// What a refresh answered, reduced to what must be the same with and without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 200; `same` when the refresh token that came back is the one named.
    Ok {
        same_as: Option<&'static str>,
    },
    Refused(u16, String, String),
}

async fn refresh(c: &Client, rt: &str) -> (Outcome, Option<String>) {
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), rt, None).await;
    if s == StatusCode::OK {
        (Outcome::Ok { same_as: None }, b["refresh_token"].as_str().map(str::to_string))
    } else {
        (Outcome::Refused(s.as_u16(), b["error"].as_str().unwrap_or("").into(), b["error_description"].as_str().unwrap_or("").into()), None)
    }
}

/// The script after the (possible) restart: the predecessor inside its 15 s grace window, a rotation, the
/// old token after the window (reuse), and the newest token of the now revoked family.
async fn after(idp: &MockIdp, c: &Client, r0: &str, r1: &str) -> Vec<Outcome> {
    let mut out = Vec::new();
    let (o, rt) = refresh(c, r0).await;
    out.push(match o {
        Outcome::Ok { .. } => Outcome::Ok { same_as: (rt.as_deref() == Some(r1)).then_some("r1") },
        o => o,
    });
    let (o, r2) = refresh(c, r1).await;
    out.push(match o {
        Outcome::Ok { .. } => Outcome::Ok { same_as: (r2.as_deref() == Some(r1)).then_some("r1") },
        o => o,
    });
    idp.clock().advance_ms(16_000);
    out.push(refresh(c, r1).await.0);
    out.push(refresh(c, r2.as_deref().unwrap_or("none")).await.0);
    out
}

async fn system_log(c: &Client) -> Vec<Value> {
    let r = c.http.get(c.url("/api/v1/logs?limit=1000")).header("authorization", format!("SSWS {ADMIN_TOKEN}")).send().await.unwrap();
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_restarted_idp_keeps_sign_ins_keys_logs_and_decides_refreshes_as_before() {
    let dir = scratch("restart");
    let file = dir.join("state.json");
    let first = start_on("127.0.0.1:0".parse().unwrap(), &file).await.unwrap();
    let addr = first.addr();
    let c = Client::new(&first);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile email offline_access").await;
    let r0 = t.refresh_token.clone().unwrap();
    let (s, b) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &r0, None).await;
    assert_eq!(s, StatusCode::OK);
    let r1 = b["refresh_token"].as_str().unwrap().to_string();
    c.advance(5).await;
    let keys = c.get("/oauth2/default/v1/keys").await.json();
    let clock = c.clock().await;
    let events = system_log(&c).await;
    // No goodbye: the server is aborted, as a crash would end it, without a last write.
    first.abort().await;

    let second = start_on(addr, &file).await.unwrap();
    assert_eq!(second.addr(), addr);
    let c2 = Client { http: c.http.clone(), base: second.base_url().to_string() };
    assert_eq!(c2.get("/oauth2/default/v1/keys").await.json(), keys, "the same signing keys");
    // (A frozen clock's offset against real time moves with real time; where it stands does not.)
    let now = c2.clock().await;
    assert_eq!((&now["now"], &now["frozen"]), (&clock["now"], &clock["frozen"]), "the clock goes on where it stood");
    assert!(events.len() >= 4, "{events:?}");
    assert_eq!(system_log(&c2).await, events, "the System Log, every event whole");
    // A token from before the restart still verifies and still works.
    verify_id_token(second.base_url(), Server::DEFAULT, t.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
    assert_eq!(c2.userinfo(Server::DEFAULT, &t.access_token).await.status, StatusCode::OK);
    // Alice is still signed in: prompt=none gets a code, not the sign-in page.
    let r = c2.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("prompt", "none")).await;
    assert!(url_param(&r.location().unwrap(), "code").is_some(), "{:?}", r.location());

    // The same steps on an IdP that never restarted decide the same way.
    let control = idp().await;
    let cc = Client::new(&control);
    let ct = cc.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile email offline_access").await;
    let cr0 = ct.refresh_token.unwrap();
    let (_, b) = cc.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &cr0, None).await;
    let cr1 = b["refresh_token"].as_str().unwrap().to_string();
    cc.advance(5).await;
    let expected = after(&control, &cc, &cr0, &cr1).await;
    let invalid = Outcome::Refused(400, "invalid_grant".into(), "The refresh token is invalid or expired.".into());
    assert_eq!(expected, vec![Outcome::Ok { same_as: Some("r1") }, Outcome::Ok { same_as: None }, invalid.clone(), invalid]);
    assert_eq!(after(&second, &c2, &r0, &r1).await, expected);
    let detected = system_log(&c2).await.iter().filter(|e| e["eventType"] == "app.oauth2.as.token.detect_reuse").count();
    assert_eq!(detected, 1);
    second.check_invariants().unwrap();
    second.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// The file is written from the log's stored JSON, and read back into events: a restored IdP writes the same
/// tenant back, System Log included.
#[tokio::test]
async fn a_restored_idp_writes_back_the_tenant_it_read() {
    let dir = scratch("roundtrip");
    let file = dir.join("state.json");
    let first = start_on("127.0.0.1:0".parse().unwrap(), &file).await.unwrap();
    let addr = first.addr();
    let c = Client::new(&first);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile email offline_access").await;
    let (s, _) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
    assert_eq!(s, StatusCode::OK);
    first.save_state().await.unwrap();
    let read = |f: &Path| serde_json::from_slice::<Value>(&std::fs::read(f).unwrap()).unwrap();
    let written = read(&file);
    let log = written["tenant"]["log"].as_array().unwrap().clone();
    assert_eq!(log.len(), system_log(&c).await.len());
    assert_eq!(log[0][1]["event_type"], "user.authentication.authenticate", "{:?}", log[0]);
    first.abort().await;

    let second = start_on(addr, &file).await.unwrap();
    second.save_state().await.unwrap();
    // The stores kept in hash maps come out in any order.
    let tenant = |v: Value| {
        let mut t = v["tenant"].as_object().unwrap().clone();
        for k in ["tokens", "codes", "session_tokens", "sessions"] {
            t[k].as_array_mut().unwrap().sort_by_key(|e| e.to_string());
        }
        t
    };
    let (a, b) = (tenant(read(&file)), tenant(written));
    let differ: Vec<_> = b.keys().filter(|k| a.get(*k) != b.get(*k)).map(|k| (k, a.get(k), b.get(k))).collect();
    assert!(differ.is_empty() && a.len() == b.len(), "written back differently: {differ:?}");
    second.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_state_file_is_private_and_written_before_the_answer() {
    let dir = scratch("private");
    let file = dir.join("state.json");
    let idp = start_on("127.0.0.1:0".parse().unwrap(), &file).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, BOB, PASSWORD, "openid offline_access").await;
    // The answer is out, so the file already holds the family (no write happens at drop).
    let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!((v["format"].as_str(), v["version"].as_u64()), (Some("mock-idp-state"), Some(1)));
    let fam = &v["tenant"]["refresh"]["families"][0];
    assert_eq!((fam["user_id"].as_str(), fam["value"].as_str()), (Some(BOB_ID), t.refresh_token.as_deref()));
    assert!(v["tenant"]["keys"][0][1][0]["pkcs1_pem"].as_str().unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_eq!(v["clock"], json!({"offset_ms": 0, "frozen_at": T0 * 1000}));
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    drop(idp);
    std::fs::remove_dir_all(dir).unwrap();
}

async fn start_error(file: &Path) -> String {
    match MockIdp::start(Options { state_file: Some(file.to_path_buf()), ..Options::default() }).await {
        Ok(_) => panic!("started on a bad state file"),
        Err(e) => format!("{e:#}"),
    }
}

/// The number of System Log events in a state file.
fn v_len(file: &[u8]) -> usize {
    serde_json::from_slice::<Value>(file).unwrap()["tenant"]["log"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_corrupt_or_incompatible_state_file_stops_start_up() {
    let dir = scratch("corrupt");
    let file = dir.join("state.json");
    let name = file.display().to_string();
    let idp = start_on("127.0.0.1:0".parse().unwrap(), &file).await.unwrap();
    let c = Client::new(&idp);
    let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid offline_access").await;
    c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
    idp.shutdown().await;
    let good = std::fs::read(&file).unwrap();

    std::fs::write(&file, b"not json").unwrap();
    let e = start_error(&file).await;
    assert!(e.starts_with(&format!("state file {name}: line 1, column 2: not a mock-idp state file: ")), "{e}");

    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let e = start_error(&file).await;
    assert!(e.starts_with(&format!("state file {name}: line 1, column ")), "{e}");
    assert!(e.contains("EOF while parsing"), "{e}");

    std::fs::write(&file, b"").unwrap();
    assert!(start_error(&file).await.starts_with(&format!("state file {name}: line 1, column 0: not a mock-idp state file")));

    std::fs::write(&file, br#"{"format": "something-else", "version": 1}"#).unwrap();
    assert_eq!(
        start_error(&file).await,
        format!("state file {name}: not a mock-idp state file (format \"something-else\", expected \"mock-idp-state\")")
    );

    let mut v: Value = serde_json::from_slice(&good).unwrap();
    v["version"] = json!(2);
    std::fs::write(&file, v.to_string()).unwrap();
    assert_eq!(
        start_error(&file).await,
        format!(
            "state file {name}: version 2 is not the version this mock-idp reads (1); move the file away to start from the tenant file"
        )
    );

    let mut v: Value = serde_json::from_slice(&good).unwrap();
    v["tenant"]["users"]["00u1alice00000000001"]["status"] = json!("SLEEPING");
    std::fs::write(&file, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let e = start_error(&file).await;
    assert!(e.starts_with(&format!("state file {name}: line ")), "{e}");
    assert!(e.contains("field `tenant.users.00u1alice00000000001.status`: unknown variant `SLEEPING`"), "{e}");
    assert!(!e.contains(" at line "), "the position is given once, first: {e}");

    // A family whose older generation is missing could not detect its reuse: refused, not guessed at.
    let mut v: Value = serde_json::from_slice(&good).unwrap();
    v["tenant"]["refresh"]["families"][0]["superseded"] = json!([]);
    std::fs::write(&file, v.to_string()).unwrap();
    assert_eq!(start_error(&file).await, format!("state file {name}: refresh families: rtf_1: generation 0 of 0..=1 has no index entry"));

    // A map entry whose key is not its id, or System Log sequence numbers that paging could not follow.
    let edited = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&good).unwrap();
        f(&mut v);
        std::fs::write(&file, v.to_string()).unwrap();
    };
    edited(&|v| {
        let alice = v["tenant"]["users"].as_object_mut().unwrap().remove("00u1alice00000000001").unwrap();
        v["tenant"]["users"]["00u1someone0000000001"] = alice;
    });
    assert_eq!(
        start_error(&file).await,
        format!(
            "state file {name}: users: the entry under \"00u1someone0000000001\" has the id \"00u1alice00000000001\"; they must be the same"
        )
    );
    let events = v_len(&good);
    assert!(events >= 3, "{events}");
    edited(&|v| v["tenant"]["log_next_seq"] = json!(1));
    assert_eq!(
        start_error(&file).await,
        format!("state file {name}: log_next_seq: 1 is not above the last event's sequence number ({})", events - 1)
    );
    edited(&|v| v["tenant"]["log"][2][0] = json!(0));
    assert_eq!(start_error(&file).await, format!("state file {name}: log[2]: sequence number 0 is not above the one before it (1)"));

    // The good file still starts.
    std::fs::write(&file, &good).unwrap();
    let idp = MockIdp::start(Options { state_file: Some(file.clone()), ..Options::default() }).await.unwrap();
    assert_eq!(idp.with_tenant(|t| t.refresh.len()), 1);
    drop(idp);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_stub_bsr_keeps_its_users_across_a_restart() {
    let dir = scratch("bsr");
    let file = dir.join("users.json");
    let f = file.clone();
    let env = StubEnv::start(mock_idp::TenantConfig::default_tenant(), move |c| c.state_file = Some(f)).await;
    let b = browser();
    let w = walk(&b, &format!("{}/login", env.bsr.base_url()), ALICE, PASSWORD).await;
    assert_eq!(w.status, StatusCode::OK);
    let w = walk(&browser(), &format!("{}/login", env.bsr.base_url()), BOB, PASSWORD).await;
    assert_eq!(w.status, StatusCode::OK);
    let bob = env.bsr.user_by_username("bob").unwrap();
    let r = b
        .post(format!("{}/admin/users/{}/deactivate", env.bsr.base_url(), bob.id))
        .basic_auth("admin", Some("admin-password"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let before = env.bsr.users();
    assert_eq!(
        before.iter().map(|u| (u.username.as_str(), u.state)).collect::<Vec<_>>(),
        [("alice", UserState::Active), ("bob", UserState::Deactivated)]
    );
    // Dropped: no last write.
    drop(env);
    let bsr = StubBsr::start(BsrConfig { state_file: Some(file.clone()), ..BsrConfig::default() }).await.unwrap();
    assert_eq!(bsr.users(), before);
    drop(bsr);

    std::fs::write(&file, br#"{"format": "harness-bsr-users", "version": 7, "users": []}"#).unwrap();
    let e = StubBsr::start(BsrConfig { state_file: Some(file.clone()), ..BsrConfig::default() }).await.err().unwrap();
    assert_eq!(e.to_string(), format!("state file {}: version 7 is not the version this stub reads (1)", file.display()));
    std::fs::write(&file, b"{").unwrap();
    let e = StubBsr::start(BsrConfig { state_file: Some(file.clone()), ..BsrConfig::default() }).await.err().unwrap();
    assert!(e.to_string().starts_with(&format!("state file {}: line 1, column 1: not JSON", file.display())), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ----- the binary, killed with SIGKILL in the middle of a load run -----

#[cfg(all(unix, feature = "heavy"))]
mod killed {
    use std::process::Stdio;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::{Child, Command};

    use super::*;

    /// Starts `mock-idp --addr ADDR --state FILE` and waits for its "listening" line.
    async fn spawn(addr: SocketAddr, state: &Path) -> Child {
        // The previous process was killed and reaped (`wait`), so the kernel has closed its listening socket;
        // the connections it leaves in TIME_WAIT do not keep the new one from binding (SO_REUSEADDR).
        let mut child = Command::new(&binaries().mock_idp)
            .args(["--addr", &addr.to_string(), "--state", &state.display().to_string()])
            .env("MOCK_IDP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mock-idp starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(l))) if l.starts_with("mock-idp listening on") => child,
            other => {
                let _ = child.start_kill();
                let out = child.wait_with_output().await.expect("the failed mock-idp is reaped");
                panic!("mock-idp did not start on {addr}: {other:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }

    /// A directory or a device is no state file: start-up stops naming it, and no lock file is made beside it
    /// (`--state /dev/null` made /dev/.null.lock).
    #[tokio::test]
    async fn a_directory_or_a_device_is_not_a_state_file() {
        let dir = scratch("not-a-file");
        let trailing = format!("{}/", dir.join("sub").display());
        for (path, why) in [
            (dir.display().to_string(), "not a regular file (a directory)"),
            ("/dev/null".to_string(), "not a regular file (a device or other special file)"),
            (trailing.clone(), "names a directory (it ends with /)"),
        ] {
            let out = Command::new(&binaries().mock_idp).args(["--addr", "127.0.0.1:0", "--state", &path]).output().await.unwrap();
            assert_eq!(out.status.code(), Some(1), "{path}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), format!("mock-idp: state file {path}: {why}\n"));
        }
        assert!(!Path::new("/dev/.null.lock").exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing was made in {}", dir.display());
    }

    /// A state file whose clock POST /_mock/clock could not have left (a hand-edited offset of i64::MAX made
    /// "now" 1970 and every exp negative) stops start-up naming the field.
    #[tokio::test]
    async fn a_state_file_with_an_impossible_clock_is_refused() {
        let dir = scratch("clock-range");
        let file = dir.join("state.json");
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        // The file as a start writes it; the process killed and reaped, so its lock is free.
        spawn(free(), &file).await.kill().await.unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (field, value, why) in [
            (
                "offset_ms",
                serde_json::json!(i64::MAX),
                format!("clock.offset_ms: out of range: {} (at most 253402300799999 either way)", i64::MAX),
            ),
            (
                "frozen_at",
                serde_json::json!(-1),
                "clock.frozen_at: out of range: -1 (from 0, 1970-01-01, to 253402300799999, the end of 9999)".to_string(),
            ),
        ] {
            let mut w = v.clone();
            w["clock"][field] = value;
            std::fs::write(&file, serde_json::to_vec(&w).unwrap()).unwrap();
            let out = Command::new(&binaries().mock_idp).args(["--addr", "127.0.0.1:0", "--state"]).arg(&file).output().await.unwrap();
            assert_eq!(out.status.code(), Some(1), "{field}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), format!("mock-idp: cannot start: state file {}: {why}\n", file.display()));
        }
        v["clock"]["offset_ms"] = serde_json::json!(86_400_000);
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        // A day ahead is fine: it starts.
        spawn(free(), &file).await.kill().await.unwrap();
    }

    /// One process per state file: a second mock-idp or stub BSR with the same file stops at start and says
    /// why; a symbolic link to the file is followed (the link stays a link, its target is written, and the
    /// lock is the target's).
    #[tokio::test]
    async fn a_state_file_is_used_by_one_process_and_followed_through_a_link() {
        let dir = scratch("lock");
        let file = dir.join("state.json");
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let _first = spawn(free(), &file).await;
        let second = Command::new(&binaries().mock_idp).args(["--addr", "127.0.0.1:0", "--state"]).arg(&file).output().await.unwrap();
        assert_eq!(second.status.code(), Some(1));
        let held = |f: &Path, lock: &str| {
            format!("state file {}: another process is using it (it holds {})\n", f.display(), dir.join(lock).display())
        };
        assert_eq!(String::from_utf8_lossy(&second.stderr), format!("mock-idp: {}", held(&file, ".state.json.lock")));

        let users = dir.join("users.json");
        let mut bsr = Command::new(&binaries().harness)
            .args(["bsr", "--addr", "127.0.0.1:0", "--state"])
            .arg(&users)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let line = BufReader::new(bsr.stdout.take().unwrap()).lines().next_line().await.unwrap().unwrap();
        assert!(line.starts_with("stub BSR listening on"), "{line}");
        let other = Command::new(&binaries().harness).args(["bsr", "--addr", "127.0.0.1:0", "--state"]).arg(&users).output().await.unwrap();
        assert_eq!(other.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&other.stderr), format!("harness bsr: {}", held(&users, ".users.json.lock")));

        let (real, link) = (dir.join("real.json"), dir.join("link.json"));
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        let addr = free();
        let _linked = spawn(addr, &link).await;
        let c = Client::for_base(&format!("http://{addr}"));
        let r = c
            .http
            .post(c.url("/api/v1/groups"))
            .header("authorization", format!("SSWS {ADMIN_TOKEN}"))
            .json(&json!({"profile": {"name": "Linked"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
        assert!(std::fs::read_to_string(&real).unwrap().contains("\"Linked\""), "the group is in the link's target");
        let direct = Command::new(&binaries().mock_idp).args(["--addr", "127.0.0.1:0", "--state"]).arg(&real).output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&direct.stderr), format!("mock-idp: {}", held(&real, ".real.json.lock")));
        drop(bsr);
        std::fs::remove_dir_all(dir).unwrap();
    }

    struct Worker {
        client: Client,
        /// The last two refresh tokens the IdP answered with (the newest last).
        acked: Vec<String>,
    }

    #[tokio::test]
    async fn a_sigkill_during_load_loses_nothing_that_was_answered() {
        let dir = scratch("sigkill");
        let file = dir.join("state.json");
        let addr: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let base = format!("http://{addr}");
        let mut child = spawn(addr, &file).await;
        let admin = Client::for_base(&base);
        // A frozen clock makes the grace windows exact.
        let (s, _) = admin.set_clock(json!({"freeze": true})).await;
        assert_eq!(s, StatusCode::OK);
        // One family rotated once before the load, to check its grace window across the restart.
        let grace = Client::for_base(&base);
        let g = grace.login(Server::DEFAULT, ALICE, PASSWORD, "openid offline_access").await;
        let g0 = g.refresh_token.unwrap();
        let (_, b) = grace.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &g0, None).await;
        let g1 = b["refresh_token"].as_str().unwrap().to_string();

        let mut workers = Vec::new();
        for i in 0..8 {
            let client = Client::for_base(&base);
            let user = if i % 2 == 0 { ALICE } else { BOB };
            let t = client.login(Server::DEFAULT, user, PASSWORD, "openid offline_access").await;
            workers.push(Worker { client, acked: vec![t.refresh_token.unwrap()] });
        }
        let answered = Arc::new(AtomicUsize::new(0));
        // Signalled by the worker whose answer is the 150th: the load is well under way.
        let under_way = Arc::new(tokio::sync::Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut w) in workers.into_iter().enumerate() {
            let answered = answered.clone();
            let under_way = under_way.clone();
            tasks.spawn(async move {
                let form = |rt: &str| encode_form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
                for n in 0.. {
                    let current = w.acked.last().unwrap().clone();
                    let req = w
                        .client
                        .http
                        .post(w.client.url("/oauth2/default/v1/token"))
                        .header("authorization", basic(CLIENT_ID, CLIENT_SECRET));
                    let sent = req.header("content-type", "application/x-www-form-urlencoded").body(form(&current)).send().await;
                    let Ok(r) = sent else { break };
                    let Ok(v) = r.json::<Value>().await else { break };
                    let rt =
                        v["refresh_token"].as_str().unwrap_or_else(|| panic!("worker {i}: a refresh was refused before the kill: {v}"));
                    if answered.fetch_add(1, Ordering::SeqCst) + 1 == 150 {
                        under_way.notify_one();
                    }
                    w.acked.push(rt.to_string());
                    if w.acked.len() > 2 {
                        w.acked.remove(0);
                    }
                    if n % 3 == 0 && w.client.http.get(w.client.url("/oauth2/default/v1/keys")).send().await.is_err() {
                        break;
                    }
                }
                w
            });
        }
        // Kill once the load is well under way.
        // notify_one stores a permit, so a signal sent before this wait is not lost.
        tokio::time::timeout(Duration::from_secs(120), under_way.notified()).await.expect("150 refreshes answered within 2 minutes");
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed by SIGKILL");
        let mut workers = Vec::new();
        while let Some(w) = tasks.join_next().await {
            workers.push(w.unwrap());
        }
        let before_kill = answered.load(Ordering::SeqCst);

        let _second = spawn(addr, &file).await;
        let invalid = json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."});
        for (i, w) in workers.iter().enumerate() {
            // Still signed in at the IdP.
            let r = w.client.authorize(Server::DEFAULT, &Authorize::new(CLIENT_ID).param("prompt", "none")).await;
            assert!(url_param(&r.location().unwrap_or_default(), "code").is_some(), "worker {i}: {:?}", r.location());
            // The last answered token works: it is current, or the predecessor (inside its window) of a
            // rotation that committed but whose answer the kill cut off.
            let current = w.acked.last().unwrap();
            let (s, b) = w.client.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), current, None).await;
            assert_eq!(s, StatusCode::OK, "worker {i}: {b}");
            let next = b["refresh_token"].as_str().unwrap().to_string();
            let (s, b) = w.client.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &next, None).await;
            assert_eq!(s, StatusCode::OK, "worker {i}: {b}");
            let newest = b["refresh_token"].as_str().unwrap().to_string();
            assert_ne!(newest, next, "worker {i}: a rotation");
            // An older token is reuse: the family is revoked, its newest token with it.
            if w.acked.len() == 2 {
                let (s, b) = w.client.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &w.acked[0], None).await;
                assert_eq!((s, b), (StatusCode::BAD_REQUEST, invalid.clone()), "worker {i}");
                let (s, b) = w.client.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &newest, None).await;
                assert_eq!((s, b), (StatusCode::BAD_REQUEST, invalid.clone()), "worker {i}");
            }
        }
        // The grace window survived the restart: the predecessor still gets the current token, until the
        // window (15 s) has passed on the restored, still frozen, clock.
        let (s, b) = grace.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &g0, None).await;
        assert_eq!((s, b["refresh_token"].as_str()), (StatusCode::OK, Some(g1.as_str())));
        assert_eq!(admin.clock().await["frozen"], true);
        admin.advance(16).await;
        let (s, b) = grace.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &g0, None).await;
        assert_eq!((s, b), (StatusCode::BAD_REQUEST, invalid.clone()));
        let (s, _) = grace.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), &g1, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        eprintln!("killed after {before_kill} answered refreshes");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn both_binaries_warn_when_bound_to_a_public_address() {
        for (bin, args) in [
            (&binaries().mock_idp, vec!["--addr", "0.0.0.0:0"]),
            (&binaries().harness, vec!["bsr", "--addr", "0.0.0.0:0"]),
            (&binaries().harness, vec!["up", "--idp-addr", "0.0.0.0:0", "--bsr-addr", "0.0.0.0:0"]),
        ] {
            let mut child = Command::new(bin).args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
            assert!(line.contains("warning:") && line.contains("0.0.0.0"), "{args:?}: {line}");
            let _ = child.kill().await;
        }
    }
}
