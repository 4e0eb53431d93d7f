//! RSA signing keys: generation, PEM loading, JWK rendering, and a per-process key pool.
//!
//! Generating an RSA-2048 key takes tens to hundreds of milliseconds, so keys come from a process-wide pool
//! indexed by slot: the first tenant in a process generates them, every later tenant in the same process
//! (every test's isolated IdP) reuses them. A new process (the binary) therefore always has fresh keys.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use parking_lot::Mutex;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One RSA key pair, ready to sign and to publish.
pub struct KeyMaterial {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Modulus and exponent, base64url without padding, as the JWK carries them.
    pub n: String,
    pub e: String,
    pub public: RsaPublicKey,
    /// The private key as PKCS#1 PEM, for the state file of `mock-idp --state` (never logged: `Debug`
    /// shows the kid only).
    pub pkcs1_pem: String,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial {{ kid: {} }}", self.kid)
    }
}

impl KeyMaterial {
    /// Wraps a private key; the kid is the key's SHA-256 thumbprint-like hash, 43 base64url characters.
    pub fn from_private(key: &RsaPrivateKey, kid: Option<String>) -> anyhow::Result<Self> {
        let public = key.to_public_key();
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
        let kid = kid.unwrap_or_else(|| {
            let mut h = Sha256::new();
            h.update(n.as_bytes());
            h.update(b".");
            h.update(e.as_bytes());
            URL_SAFE_NO_PAD.encode(h.finalize())
        });
        let der = key.to_pkcs1_der()?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let decoding = DecodingKey::from_rsa_components(&n, &e)?;
        let pkcs1_pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?.to_string();
        Ok(KeyMaterial { kid, encoding, decoding, n, e, public, pkcs1_pem })
    }

    /// Loads a PEM private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    pub fn from_pem(pem: &str, kid: Option<String>) -> anyhow::Result<Self> {
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| anyhow::anyhow!("not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}"))?;
        if key.size() * 8 < 2048 {
            anyhow::bail!("RSA key is {} bits; Okta signs with 2048-bit keys, use at least 2048", key.size() * 8);
        }
        Self::from_private(&key, kid)
    }

    /// A fresh RSA-2048 key.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        // Key generation fails only if the RNG fails, which the OS RNG does not; an invariant, not input.
        let key = RsaPrivateKey::new(&mut rng, 2048).expect("RSA-2048 key generation");
        Self::from_private(&key, None).expect("a generated key always encodes")
    }

    /// The JWK as Okta publishes it.
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "alg": "RS256", "kid": self.kid, "use": "sig", "e": self.e, "n": self.n})
    }
}

fn pool() -> &'static Mutex<Vec<Arc<KeyMaterial>>> {
    static POOL: OnceLock<Mutex<Vec<Arc<KeyMaterial>>>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(Vec::new()))
}

/// The key in pool slot `slot`, generated on first use. Slots make a tenant's keys the same in every test
/// of one process, and different from each other within a tenant.
pub fn pooled(slot: usize) -> Arc<KeyMaterial> {
    {
        let p = pool().lock();
        if let Some(k) = p.get(slot) {
            return k.clone();
        }
    }
    // Generate outside the lock so slots needed by other threads are not held up; fill in order.
    loop {
        let have = pool().lock().len();
        if have > slot {
            return pool().lock()[slot].clone();
        }
        let k = Arc::new(KeyMaterial::generate());
        let mut p = pool().lock();
        if p.len() == have {
            p.push(k);
        }
    }
}

/// Makes sure jsonwebtoken has its crypto provider; idempotent.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
