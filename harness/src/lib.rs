//! harness: the stub BSR (a relying party that signs users in the way the Buf Schema Registry does) and
//! `harness up`, which runs it next to mock-idp.
//!
//! The stub talks to its IdP only over HTTP; see [`bsr`] for its pages, switches and handle.

/// `println!` that does not panic when stdout has gone away (`harness list | head -1`, a reader that
/// stopped): the line is dropped and the program goes on.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod bench;
pub mod browser;
pub mod bsr;
pub mod crypto;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod scenario;
pub mod target;
pub mod up;
