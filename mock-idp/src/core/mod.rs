//! Pure logic: no axum, no tokio, no clock reads, no network, no environment. Every decision takes `now`.
//! Randomness for ids, codes and tokens comes from the OS CSPRNG through [`ids`].

pub mod directory;
pub mod errors;
pub mod faults;
pub mod flows;
pub mod ids;
pub mod keyset;
pub mod model;
pub mod params;
pub mod ratelimit;
pub mod refresh;
pub mod reqlog;
pub mod stored;
pub mod syslog;
pub mod tenant;
