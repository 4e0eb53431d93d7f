//! RS256 signatures per second for each signing backend, on one core and on every core, signing the signing
//! input of an access token the size mock-idp issues. Every backend is used through jsonwebtoken's
//! `JwtSigner` interface, the way `jsonwebtoken::encode` uses its default provider: a signer made by the
//! provider's `signer_factory` from an `EncodingKey` (once per token for jsonwebtoken's providers, as
//! `encode` does), or a signer made once per key (mock-idp, OpenSSL).
//!
//! Usage: bench-signers [SECONDS]   (default 3 per measurement)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner};
use jsonwebtoken::{Algorithm, EncodingKey};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use signature::Signer;

/// An OpenSSL 3 RS256 signer holding its parsed key, pluggable as a jsonwebtoken `JwtSigner`.
struct OpenSslSigner(PKey<Private>);

impl Signer<Vec<u8>> for OpenSslSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &self.0).map_err(signature::Error::from_source)?;
        s.update(msg).map_err(signature::Error::from_source)?;
        s.sign_to_vec().map_err(signature::Error::from_source)
    }
}

impl JwtSigner for OpenSslSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn openssl_factory(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::RS256 {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into());
    }
    let rsa = openssl::rsa::Rsa::private_key_from_der(key.as_bytes()).map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let pkey = PKey::from_rsa(rsa).map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(OpenSslSigner(pkey)))
}

/// OpenSSL as a complete jsonwebtoken crypto provider: its signer, aws-lc's verifier and key utilities.
fn openssl_provider() -> CryptoProvider {
    let base = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    CryptoProvider { signer_factory: openssl_factory, verifier_factory: base.verifier_factory, key_utils: base.key_utils.clone() }
}

/// How a backend signs one token.
#[derive(Clone)]
enum Backend {
    /// A jsonwebtoken provider: factory and sign per token, exactly what `jsonwebtoken::encode` does.
    PerToken(&'static CryptoProvider),
    /// A signer made once (per key) and used for every token.
    Once(Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>),
}

fn sign_one(b: &Backend, key: &EncodingKey, msg: &[u8]) -> Vec<u8> {
    match b {
        Backend::PerToken(p) => (p.signer_factory)(&Algorithm::RS256, key).and_then(|s| Ok(s.try_sign(msg)?)).expect("signing"),
        Backend::Once(f) => f(msg),
    }
}

fn rate(b: &Backend, key: &EncodingKey, msg: &[u8], threads: usize, secs: f64) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let count = count.clone();
            s.spawn(move || {
                while Instant::now() < deadline {
                    std::hint::black_box(sign_one(b, key, msg));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let material = mock_idp::keys::KeyMaterial::generate();
    let claims = serde_json::json!({"ver":1,"jti":"AT.abcdefghijklmnopqrstuvwxyz012345","iss":"http://127.0.0.1:1/oauth2/default","aud":"api://default",
        "iat":1893456000,"exp":1893459600,"cid":"svc-local","scp":["bsr.read"],"sub":"svc-local"});
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::json!({"alg":"RS256","kid":material.kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let msg = msg.as_bytes();
    let key = material.encoding.clone();
    let provider: &'static CryptoProvider = Box::leak(Box::new(openssl_provider()));
    let ossl_signer = Arc::new((provider.signer_factory)(&Algorithm::RS256, &key).expect("OpenSSL parses the key"));
    let ossl: Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync> = {
        // PKey is Send + Sync; the boxed JwtSigner is not declared so, so sign through our concrete type.
        let der = key.as_bytes().to_vec();
        let pkey = PKey::from_rsa(openssl::rsa::Rsa::private_key_from_der(&der).expect("der")).expect("pkey");
        let s = OpenSslSigner(pkey);
        Arc::new(move |m| s.try_sign(m).expect("OpenSSL signing"))
    };
    let mock = Arc::new(material);
    let mock_f: Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync> = {
        let m = mock.clone();
        Arc::new(move |msg| m.signer.try_sign(msg).expect("aws-lc signing"))
    };
    let backends: Vec<(&str, Backend)> = vec![
        ("jsonwebtoken aws_lc_rs (key parsed per token)", Backend::PerToken(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER)),
        ("jsonwebtoken rust_crypto (key parsed per token)", Backend::PerToken(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER)),
        ("mock-idp RsaSigner: aws-lc, key parsed once", Backend::Once(mock_f)),
        ("OpenSSL 3 provider, key parsed once", Backend::Once(ossl)),
    ];
    // PKCS#1 v1.5 is deterministic: every backend must write the same signature.
    let reference = ossl_signer.try_sign(msg).expect("OpenSSL signing");
    for (name, b) in &backends {
        assert_eq!(sign_one(b, &key, msg), reference, "{name} signs differently");
    }
    println!("RS256 over a {}-byte signing input, {secs} s per measurement, {cores} cores; all backends wrote identical signatures", msg.len());
    println!("| backend | 1 thread | {cores} threads |");
    println!("|---|---|---|");
    for (name, b) in &backends {
        let one = rate(b, &key, msg, 1, secs);
        let all = rate(b, &key, msg, cores, secs);
        println!("| {name} | {one:.0}/s | {all:.0}/s |");
    }
}
