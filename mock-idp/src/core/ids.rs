//! Okta-shaped identifiers and opaque secrets, all from the OS CSPRNG.
//!
//! Secrets (passwords, client secrets, codes, tokens) are wrapped in [`Secret`], whose `Debug` is redacted,
//! so a stray `{:?}` in a log line never prints one.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    // 62 does not divide 256, so reject the top values to keep the distribution uniform.
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 1];
    for b in bytes {
        let mut v = b;
        while v >= 248 {
            OsRng.fill_bytes(&mut buf);
            v = buf[0];
        }
        out.push(BASE62[(v % 62) as usize] as char);
    }
    out
}

/// An Okta object id: a three-character type prefix plus 17 base62 characters (20 in all), as
/// `00u47i0j8NJCwyEen4x6`.
pub fn okta_id(prefix: &str) -> String {
    format!("{prefix}{}", base62(17))
}

/// Okta user id (`00u…`).
pub fn user_id() -> String {
    okta_id("00u")
}
/// Okta group id (`00g…`).
pub fn group_id() -> String {
    okta_id("00g")
}
/// Okta app id (`0oa…`).
pub fn app_id() -> String {
    okta_id("0oa")
}
/// Okta refresh-token id (`oar…`).
pub fn refresh_token_id() -> String {
    okta_id("oar")
}
/// Okta session id (`102…`).
pub fn session_id() -> String {
    okta_id("102")
}
/// Okta `errorId` (`oae…` plus 22 characters).
pub fn error_id() -> String {
    format!("oae{}", base62(22))
}
/// Okta `X-Okta-Request-Id` value.
pub fn request_id() -> String {
    format!("req{}", base62(22))
}
/// System Log event `uuid`.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Bytes as lowercase hex digits, two per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// `n` random bytes as base64url without padding: 32 bytes give the 43-character strings Okta uses for
/// refresh tokens and codes.
pub fn opaque(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A random id for JWT `jti` values (`AT.…`, `ID.…`).
pub fn jti_suffix() -> String {
    opaque(24)
}

/// SHA-256 of a token string: what the mock keeps instead of the token where it only needs to recognise it.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A secret value with a redacted `Debug`, compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself: call only where it leaves the process on purpose (a token response).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison, so response timing does not reveal how much of a guess was right.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(candidate.as_bytes());
        a.ct_eq(&b).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_okta_shapes() {
        let u = user_id();
        assert_eq!(u.len(), 20);
        assert!(u.starts_with("00u"));
        assert!(u.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(opaque(32).len(), 43);
        assert!(error_id().starts_with("oae"));
        assert_eq!(error_id().len(), 25);
        assert_eq!(uuid().len(), 36);
    }

    #[test]
    fn secret_is_redacted_and_compares() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
    }
}
