//! rstest fixtures for tests of your own (feature `fixtures`): an isolated IdP per test, on a free
//! loopback port, with the default tenant and a frozen clock at 2030-01-01T00:00:00Z.

use crate::{MockIdp, Options};

/// Starts an isolated IdP with the default tenant. Use inside a tokio test:
/// `#[rstest] #[tokio::test] async fn t(#[future] idp: MockIdp) { let idp = idp.await; … }`.
#[rstest::fixture]
pub async fn idp() -> MockIdp {
    MockIdp::start(Options::default()).await.expect("an in-process mock-idp starts on 127.0.0.1:0")
}
