//! rstest fixtures for your own tests (feature `fixtures`): an isolated mock-idp, a stub BSR wired to it,
//! and a frozen clock. Every fixture starts its servers on free loopback ports.
//!
//! ```no_run
//! use harness::fixtures::{bsr, clock};
//! use rstest::rstest;
//!
//! #[rstest]
//! #[tokio::test]
//! async fn my_test(#[future] bsr: harness::up::Up) {
//!     let up = bsr.await;
//!     println!("stub BSR at {}, IdP at {}", up.bsr.base_url(), up.idp.base_url());
//! }
//! ```

use std::net::SocketAddr;

use mock_idp::{Clock, MockIdp, Options};

use crate::up::{self, Up, UpOptions};

/// An isolated mock-idp with the default tenant and a clock frozen at 2030-01-01T00:00:00Z.
#[rstest::fixture]
pub async fn idp() -> MockIdp {
    MockIdp::start(Options::default()).await.expect("an in-process mock-idp starts on 127.0.0.1:0")
}

/// A mock-idp and a stub BSR wired to each other (the app's redirect URIs point at the stub), sharing one
/// frozen clock; `up.idp.clock()` moves both.
#[rstest::fixture]
pub async fn bsr() -> Up {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    up::start(UpOptions { idp_addr: any, bsr_addr: any, clock: Clock::test_default(), fresh_keys: false, ..UpOptions::default() })
        .await
        .expect("mock-idp and the stub BSR start on 127.0.0.1:0")
}

/// A clock frozen at 2030-01-01T00:00:00Z, for an IdP or stub you configure yourself.
#[rstest::fixture]
pub fn clock() -> Clock {
    Clock::test_default()
}
