//! RS256 signing of the JWTs a plan asks for. Runs outside the tenant lock: signing is the slow part.
//!
//! The `tamper_id_token` / `tamper_access_token` fault actions are carried out here too, because a
//! defect has to be put in before (claims) or while (header, signature, key) the token is signed.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::core::faults::{TAMPER_SHIFT_S, TAMPERED_AUDIENCE, TAMPERED_ISSUER, TAMPERED_NONCE, TokenDefect};
use crate::core::flows::{MintPlan, at_hash};
use crate::keys::KeyMaterial;

/// Signs claims with a key, header `{"alg":"RS256","kid":…}` as Okta's.
pub fn sign(claims: &Map<String, Value>, key: &KeyMaterial) -> String {
    sign_with_kid(claims, key, &key.kid)
}

/// Signs with `key` but names `kid` in the header (the same as `key.kid` except when tampering).
///
/// The same bytes `jsonwebtoken::encode` produces for this header and these claims (the unit test below
/// compares them), but with the key parsed once per key instead of once per signature: jsonwebtoken's
/// aws-lc signer re-parses the DER private key for every signature (`RsaKeyPair::from_der` in
/// `crypto/aws_lc/rsa.rs`), which costs a third of the signing rate (BENCHMARKS.md, "Signing backends").
fn sign_with_kid(claims: &Map<String, Value>, key: &KeyMaterial, kid: &str) -> String {
    // Okta's JWT headers carry only `kid` and `alg` (serde_json's map is ordered: alg, kid).
    let header = json!({"alg": "RS256", "kid": kid});
    let mut jwt = String::with_capacity(1024);
    URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut jwt);
    jwt.push('.');
    // Serialising a JSON map cannot fail.
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).unwrap_or_default(), &mut jwt);
    let sig = key.signer.sign_rs256(jwt.as_bytes());
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut jwt);
    jwt
}

/// An RSA private key parsed once, signing RS256 (PKCS#1 v1.5 with SHA-256) with aws-lc.
///
/// It is also a [`jsonwebtoken::crypto::JwtSigner`], the interface jsonwebtoken's crypto providers hand out,
/// so the backends can be compared through one interface (`bench/signers`).
pub struct RsaSigner(aws_lc_rs::signature::RsaKeyPair);

impl RsaSigner {
    /// Parses a PKCS#1 DER private key.
    pub fn from_pkcs1_der(der: &[u8]) -> anyhow::Result<Self> {
        aws_lc_rs::signature::RsaKeyPair::from_der(der)
            .map(RsaSigner)
            .map_err(|e| anyhow::anyhow!("aws-lc refused the RSA private key: {e}"))
    }

    /// The RS256 signature of `msg`.
    pub fn sign_rs256(&self, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.0.public_modulus_len()];
        // PKCS#1 v1.5 padding uses no randomness; signing with a valid key and a buffer of the modulus' length
        // cannot fail.
        self.0
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), msg, &mut sig)
            .expect("RS256 signing with a loaded key");
        sig
    }
}

impl signature::Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.sign_rs256(msg))
    }
}

impl jsonwebtoken::crypto::JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// The signed tokens of a plan.
pub struct Signed {
    pub access_token: String,
    pub id_token: Option<String>,
}

pub fn sign_plan(plan: &MintPlan) -> Signed {
    sign_plan_with(plan, None, "")
}

/// Which token of a plan a tampering fault changes, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    IdToken(TokenDefect),
    AccessToken(TokenDefect),
}

/// Signs a plan, putting `tamper`'s one defect into one of its tokens. `client_secret` is the HMAC key of
/// `hs256_client_secret` and must not be empty when that defect is asked for (an app without a secret
/// passes its client id). The ID token's `at_hash` is always the hash
/// of the access token actually sent, so tampering with the access token leaves the ID token valid.
pub fn sign_plan_with(plan: &MintPlan, tamper: Option<Tamper>, client_secret: &str) -> Signed {
    let access_token = match tamper {
        Some(Tamper::AccessToken(d)) => tampered(&plan.access_claims, &plan.access_key, d, "", client_secret),
        _ => sign(&plan.access_claims, &plan.access_key),
    };
    let id_token = plan.id_claims.as_ref().map(|c| {
        let mut c = c.clone();
        c.insert("at_hash".into(), Value::String(at_hash(&access_token)));
        match tamper {
            Some(Tamper::IdToken(d)) => tampered(&c, &plan.id_key, d, &access_token, client_secret),
            _ => sign(&c, &plan.id_key),
        }
    });
    Signed { access_token, id_token }
}

/// A key no JWKS publishes, made once per process: what `unknown_kid` and `same_kid_other_key` sign with.
pub fn foreign_key() -> Arc<KeyMaterial> {
    static KEY: OnceLock<Arc<KeyMaterial>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(KeyMaterial::generate())).clone()
}

/// What `bad_at_hash` hashes instead of the access token.
pub fn bad_at_hash(access_token: &str) -> String {
    at_hash(&format!("{access_token}.tampered"))
}

fn shift(c: &mut Map<String, Value>, claim: &str, by: i64) {
    if let Some(v) = c.get(claim).and_then(Value::as_i64) {
        c.insert(claim.into(), json!(v + by));
    }
}

/// One token with one defect: the claims as planned with the defect's change, then signed as the defect
/// says (normally RS256 with `key`).
fn tampered(claims: &Map<String, Value>, key: &KeyMaterial, d: TokenDefect, access_token: &str, client_secret: &str) -> String {
    let mut c = claims.clone();
    match d {
        TokenDefect::WrongIss => {
            c.insert("iss".into(), json!(TAMPERED_ISSUER));
        }
        TokenDefect::WrongAud => {
            c.insert("aud".into(), json!(TAMPERED_AUDIENCE));
        }
        TokenDefect::ExtraAudWithoutAzp => {
            let aud = c.get("aud").cloned().unwrap_or(Value::Null);
            c.insert("aud".into(), json!([aud, TAMPERED_AUDIENCE]));
            c.remove("azp");
        }
        TokenDefect::Expired => {
            let iat = c.get("iat").and_then(Value::as_i64).unwrap_or(0);
            c.insert("exp".into(), json!(iat - TAMPER_SHIFT_S));
        }
        TokenDefect::IatInFuture => shift(&mut c, "iat", TAMPER_SHIFT_S),
        TokenDefect::WrongNonce => {
            c.insert("nonce".into(), json!(TAMPERED_NONCE));
        }
        TokenDefect::MissingNonce => {
            c.remove("nonce");
        }
        TokenDefect::BadAtHash => {
            c.insert("at_hash".into(), json!(bad_at_hash(access_token)));
        }
        TokenDefect::MissingSub => {
            c.remove("sub");
        }
        TokenDefect::EmailUnverified => {
            c.insert("email_verified".into(), json!(false));
        }
        TokenDefect::AlgNone
        | TokenDefect::Hs256ClientSecret
        | TokenDefect::BadSignature
        | TokenDefect::UnknownKid
        | TokenDefect::SameKidOtherKey => {}
    }
    match d {
        TokenDefect::AlgNone => {
            let header = json!({"alg": "none", "kid": key.kid});
            let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
            format!("{}.{}.", part(&header), part(&Value::Object(c)))
        }
        TokenDefect::Hs256ClientSecret => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(key.kid.clone());
            header.typ = None;
            // jsonwebtoken refuses an empty HMAC key; the token handler passes the client secret or, for an app
            // without one, its client id, so the key is never empty. Encoding a JSON map cannot fail.
            let key = EncodingKey::from_secret(client_secret.as_bytes()).expect("a non-empty HMAC key");
            jsonwebtoken::encode(&header, &c, &key).expect("HS256 signing")
        }
        TokenDefect::BadSignature => {
            let jwt = sign(&c, key);
            let (signing_input, sig) = jwt.rsplit_once('.').unwrap_or((&jwt, ""));
            let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
            let mid = bytes.len() / 2;
            if let Some(b) = bytes.get_mut(mid) {
                *b ^= 0xff;
            }
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes))
        }
        TokenDefect::UnknownKid => sign(&c, &foreign_key()),
        TokenDefect::SameKidOtherKey => sign_with_kid(&c, &foreign_key(), &key.kid),
        _ => sign(&c, key),
    }
}

/// Raw RS256 signatures per second over `threads` threads for `secs` seconds, signing a claim set the size
/// of an access token: the bound every token-endpoint benchmark compares against.
pub fn measure_rate(threads: usize, secs: f64) -> f64 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    crate::keys::install_crypto_provider();
    let key = crate::keys::pooled(0);
    let claims = serde_json::json!({"ver":1,"jti":"AT.abcdefghijklmnopqrstuvwxyz012345","iss":"http://127.0.0.1:1/oauth2/default","aud":"api://default",
        "iat":1893456000,"exp":1893459600,"cid":"bsr-local","uid":"00u1alice00000000001","scp":["openid","profile","email","offline_access"],
        "auth_time":1893456000,"sub":"alice@example.com"});
    let map = claims.as_object().cloned().unwrap_or_default();
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let hs: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (key, map, count) = (key.clone(), map.clone(), count.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    std::hint::black_box(sign(&map, &key));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / secs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mock-idp's signer writes exactly the token `jsonwebtoken::encode` writes (RS256 is deterministic), and
    /// jsonwebtoken verifies it with the published key.
    #[test]
    fn the_cached_signer_matches_jsonwebtoken_byte_for_byte() {
        crate::keys::install_crypto_provider();
        let key = crate::keys::pooled(0);
        let claims = json!({"iss": "http://127.0.0.1:1", "sub": "00u1", "aud": "bsr-local", "iat": 1, "exp": 4_000_000_000_i64, "name": "Ålice \"q\""});
        let map = claims.as_object().cloned().unwrap_or_default();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = None;
        let expected = jsonwebtoken::encode(&header, &map, &key.encoding).unwrap();
        let ours = sign(&map, &key);
        assert_eq!(ours, expected);
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["bsr-local"]);
        let back = jsonwebtoken::decode::<Value>(&ours, &key.decoding, &v).unwrap();
        assert_eq!(back.claims, claims);
        assert_eq!(back.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(back.header.typ, None);
    }

    /// The same signer through jsonwebtoken's `JwtSigner` interface.
    #[test]
    fn the_signer_is_a_jsonwebtoken_jwt_signer() {
        use jsonwebtoken::crypto::JwtSigner;
        let key = crate::keys::pooled(0);
        let s: &dyn JwtSigner = &key.signer;
        assert_eq!(s.algorithm(), Algorithm::RS256);
        let sig = s.try_sign(b"a.b").unwrap();
        assert_eq!(sig.len(), 256);
        assert_eq!(sig, key.signer.sign_rs256(b"a.b"));
    }
}
