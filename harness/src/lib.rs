//! harness: the stub BSR (a relying party that signs users in the way the Buf Schema Registry does) and
//! `harness up`, which runs it next to mock-idp.
//!
//! The stub talks to its IdP only over HTTP; see [`bsr`] for its pages, switches and handle.

/// `println!` that does not panic when stdout has gone away (`harness list | head -1`, a reader that
/// stopped): the line is dropped and the program goes on. Any other failure to write (a full disk) is kept
/// for [`output_error`], which the binary reports before it exits 1.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        $crate::out(format!("{}\n", format_args!($($t)*)).as_bytes());
    }};
}

static OUTPUT_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Writes `bytes` to stdout (see [`say!`]): a reader that went away is fine, any other error is kept.
pub fn out(bytes: &[u8]) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(bytes).and_then(|()| o.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        OUTPUT_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert_with(|| e.to_string());
    }
}

/// The first error writing stdout other than a reader that went away, if there was one.
pub fn output_error() -> Option<String> {
    OUTPUT_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
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
