//! How long a `--state` write holds the tenant lock (every request waits that long) with a full System Log.
//!
//! Run: `cargo run --release -p mock-idp --example state_lock -- [EVENTS]` (default 50000, the log's cap).
//! A default tenant gets EVENTS copies of a real sign-in's System Log event; one thread writes state-file
//! snapshots (`persist::snapshot_bytes`, what the writer does after each change) while another takes and
//! releases the tenant lock in a loop, as requests do, and records how long each take waited.
//! BENCHMARKS.md ("State file") quotes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mock_idp::core::syslog::{Actor, Event, Outcome, Target};
use mock_idp::core::tenant::Tenant;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50_000).max(1);
    mock_idp::keys::install_crypto_provider();
    let clock = mock_idp::Clock::system();
    let mut t = Tenant::from_config(mock_idp::TenantConfig::default_tenant(), "http://127.0.0.1:1", clock.now_ms(), &|i| {
        mock_idp::keys::pooled(i)
    })?;
    t.log.set_capacity(n);
    // An event the size of a sign-in's `user.authentication.sso` (actor, client, target, debug context).
    let mut e = Event::new("user.authentication.sso", "User single sign on to app", Outcome::Success, clock.now_ms())
        .actor(Actor::user("00u1alice00000000001", "alice@example.com", "Alice Example"))
        .client("bsr-local")
        .target(Target::new("AppInstance", "0oa1bsrlocal000000001", "bsr-local", "BSR (local)"))
        .target(Target::new("AppUser", "0ua1alice0000000001", "alice@example.com", "Alice Example"))
        .debug("requestId", "X1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6")
        .debug("requestUri", "/oauth2/default/v1/authorize")
        .debug("grantType", "authorization_code");
    e.ip_address = Some("127.0.0.1".into());
    e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/148.0 Safari/537.36".into());
    e.session_id = Some("102abcdefghijklmnopqrstuv".into());
    for _ in 0..n {
        t.log.push(e.clone());
    }
    let tenant = Arc::new(parking_lot::Mutex::new(t));
    let done = Arc::new(AtomicBool::new(false));
    let (tn, dn) = (tenant.clone(), done.clone());
    let waiter = std::thread::spawn(move || {
        // Waits of a millisecond or more: the ones a snapshot caused.
        let mut long = Vec::new();
        while !dn.load(Ordering::Relaxed) {
            let t0 = Instant::now();
            drop(tn.lock());
            let w = t0.elapsed();
            if w >= Duration::from_millis(1) {
                long.push(w);
            }
        }
        long.sort();
        long
    });
    let writes = 10;
    let t0 = Instant::now();
    let mut bytes = 0;
    for _ in 0..writes {
        bytes = mock_idp::persist::snapshot_bytes(&tenant, &clock).map_err(anyhow::Error::msg)?.len();
    }
    let per_write = t0.elapsed() / writes;
    done.store(true, Ordering::Relaxed);
    let long = waiter.join().map_err(|_| anyhow::anyhow!("the waiting thread panicked"))?;
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "{n} System Log events: {writes} state snapshots ({:.1} MB each) took {:.1} ms each; waits of 1 ms or more for the tenant lock meanwhile: {}, median {:.1} ms, longest {:.1} ms",
        bytes as f64 / 1e6,
        per_write.as_secs_f64() * 1000.0,
        long.len(),
        ms(long.get(long.len() / 2)),
        ms(long.last())
    );
    Ok(())
}
