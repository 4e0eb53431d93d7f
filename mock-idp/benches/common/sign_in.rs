//! One headless sign-in of the default tenant's `bsr-local` over loopback HTTP (authn, authorize with PKCE,
//! code exchange with offline_access: one refresh family), shared by `benches/refresh.rs` and
//! `examples/memory.rs` (included with `#[path]`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:3000/oauth2/callback";

/// Signs alice in at `base` and returns the token response (access, ID and refresh token).
pub async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    let st: Value = http
        .post(format!("{base}/api/v1/authn"))
        .json(&json!({"username": "alice@example.com", "password": "Passw0rd!"}))
        .send()
        .await?
        .json()
        .await?;
    let token = st["sessionToken"].as_str().ok_or_else(|| anyhow::anyhow!("authn gave no sessionToken: {st}"))?;
    let verifier = URL_SAFE_NO_PAD.encode([7u8; 40]);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let r = http
        .get(format!("{base}/oauth2/default/v1/authorize"))
        .query(&[
            ("client_id", "bsr-local"),
            ("response_type", "code"),
            ("scope", "openid profile email offline_access"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("sessionToken", token),
        ])
        .send()
        .await?;
    let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let code = url::Url::parse(&loc)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| anyhow::anyhow!("authorize did not redirect with a code: {loc:?}"))?;
    let t: Value = http
        .post(format!("{base}/oauth2/default/v1/token"))
        .basic_auth("bsr-local", Some("bsr-local-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(t["refresh_token"].is_string(), "the code exchange failed: {t}");
    Ok(t)
}
