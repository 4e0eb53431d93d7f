//! Where the memory of many sign-ins goes: live heap bytes per sign-in, by part of the tenant.
//!
//! Run: `cargo run --release -p mock-idp --example memory -- [SIGN_INS]` (default 5000). An in-process IdP
//! (frozen test clock, so nothing expires) gets that many headless sign-ins of `bsr-local` over loopback
//! HTTP (authn, authorize with PKCE, code exchange with offline_access: one refresh family each). A counting
//! allocator gives the live heap; then each part of the tenant is dropped in turn and what that released is
//! printed. BENCHMARKS.md ("Memory") quotes it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use mock_idp::core::tenant::Tenant;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is updated on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[path = "../benches/common/sign_in.rs"]
mod sign_in;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5000).max(1);
    let idp = mock_idp::MockIdp::start(mock_idp::Options::default()).await?;
    let base = idp.base_url().to_string();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (start, events_before) = (live(), idp.with_tenant(|t| t.log.len()));
    for _ in 0..n {
        sign_in::sign_in(&http, &base).await?;
    }
    let per = |bytes: isize| bytes as f64 / n as f64;
    let events = idp.with_tenant(|t| t.log.len()) - events_before;
    println!(
        "{n} sign-ins: {:.1} MiB live heap, {:.0} B each; {events} System Log events",
        (live() - start) as f64 / 1048576.0,
        per(live() - start)
    );
    idp.with_tenant(|t| {
        let mut part = |name: &str, drop_it: &mut dyn FnMut(&mut Tenant)| {
            let before = live();
            drop_it(t);
            println!("{name:>14}: {:>7.0} B per sign-in", per(before - live()));
        };
        part("System Log", &mut |t| t.log.clear());
        part("sessions", &mut |t| t.sessions = Default::default());
        part("codes", &mut |t| t.codes = Default::default());
        part("token records", &mut |t| {
            t.tokens = Default::default();
            t.token_contexts = Default::default();
        });
        part("refresh", &mut |t| t.refresh = Default::default());
    });
    println!("{:>14}: {:>7.0} B per sign-in", "the rest", per(live() - start));
    Ok(())
}
