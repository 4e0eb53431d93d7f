//! The relying party's side of OpenID Connect, over HTTP only, as any service provider would do it:
//! discovery, the JWKS cache, the token endpoint (client_secret_basic), userinfo, revocation, and ID-token
//! validation on the harness clock. Nothing here knows the IdP is a mock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{self, HeaderMap};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::config::{JwksPolicy, Secret, SsoSettings};
use super::errors::{BsrError, HttpFailure, Step, UpstreamError};

/// The largest body read from the IdP; a discovery document or JWKS is a few kilobytes.
const BODY_LIMIT: usize = 1 << 20;
/// JWKS lifetime when the response has no usable `Cache-Control`.
const DEFAULT_JWKS_MAX_AGE_S: i64 = 300;

/// Counters of what the stub sent to the IdP, for tests and scenarios (secondary evidence next to the
/// IdP's own request log).
#[derive(Debug, Default)]
pub struct Counters {
    pub discovery_fetches: AtomicU64,
    pub jwks_fetches: AtomicU64,
    pub code_exchanges: AtomicU64,
    pub refresh_requests: AtomicU64,
    pub refresh_successes: AtomicU64,
    pub refresh_failures: AtomicU64,
    pub userinfo_requests: AtomicU64,
    pub revocations: AtomicU64,
    pub logins: AtomicU64,
    pub users_created: AtomicU64,
    pub sessions_ended_by_idp: AtomicU64,
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The HTTP client the stub uses for the IdP: no redirects followed, one timeout for everything.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

/// A response read in full (up to [`BODY_LIMIT`]).
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    headers: HeaderMap,
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl Http {
    pub fn new(timeout: Duration, trusted_ca_pem: &[String]) -> anyhow::Result<Self> {
        // Real IdPs are https; reqwest's rustls needs the process-wide provider before a client is built.
        crate::crypto::install();
        let mut builder = reqwest::Client::builder();
        for pem in trusted_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("harness-stub-bsr/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Http { client, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn failure(&self, e: &reqwest::Error) -> HttpFailure {
        if e.is_timeout() {
            HttpFailure::Timeout(self.timeout)
        } else if e.is_connect() {
            HttpFailure::Connect(root_cause(e))
        } else {
            HttpFailure::Transport(root_cause(e))
        }
    }

    async fn send(&self, step: Step, method: &'static str, url: &str, req: reqwest::RequestBuilder) -> Result<Answer, UpstreamError> {
        let err = |failure| UpstreamError { step, method, url: url.to_string(), failure };
        let mut res = req.send().await.map_err(|e| err(self.failure(&e)))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| err(self.failure(&e)))? {
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(err(HttpFailure::TooLarge { limit: BODY_LIMIT }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, content_type, body, headers })
    }

    /// GETs a JSON object; anything else is an error naming the step and URL. The headers come along
    /// because the JWKS needs its Cache-Control.
    async fn get_json(&self, step: Step, url: &str, bearer: Option<&str>) -> Result<(Map<String, Value>, HeaderMap), UpstreamError> {
        let err = |failure| UpstreamError { step, method: "GET", url: url.to_string(), failure };
        let mut req = self.client.get(url).header(header::ACCEPT, "application/json");
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let Answer { status, content_type, body, headers } = self.send(step, "GET", url, req).await?;
        if !(200..300).contains(&status) {
            return Err(err(oauth_or_status(status, &body)));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| err(HttpFailure::NotJson { status, content_type, detail: e.to_string() }))?;
        match v {
            Value::Object(m) => Ok((m, headers)),
            other => Err(err(HttpFailure::BadShape { detail: format!("expected a JSON object, got {}", json_kind(&other)) })),
        }
    }

    /// POSTs a form with client_secret_basic authentication.
    async fn post_form(
        &self,
        step: Step,
        url: &str,
        client_id: &str,
        secret: &Secret,
        form: &[(&str, &str)],
    ) -> Result<(u16, Option<String>, Vec<u8>), UpstreamError> {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter().copied()).finish();
        let req = self
            .client
            .post(url)
            .header(header::AUTHORIZATION, basic_auth(client_id, secret))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(body);
        let a = self.send(step, "POST", url, req).await?;
        Ok((a.status, a.content_type, a.body))
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An OAuth error body if there is one, else the bare status.
fn oauth_or_status(status: u16, body: &[u8]) -> HttpFailure {
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body)
        && let Some(Value::String(error)) = m.get("error")
    {
        let description = m.get("error_description").and_then(Value::as_str).map(str::to_string);
        return HttpFailure::OAuth { status, error: error.clone(), description };
    }
    HttpFailure::Status(status)
}

/// RFC 6749 §2.3.1: both parts form-urlencoded, then base64.
pub fn basic_auth(client_id: &str, secret: &Secret) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret.expose()))))
}

/// The discovery document fields the stub uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Where it was fetched from.
    pub url: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// RFC 9207 §3: the IdP puts `iss` in every authorization response, so one without it must be refused.
    /// Okta does not say so (its discovery documents have no such field), so `iss` is checked only when present.
    pub authorization_response_iss_parameter_supported: bool,
}

/// OpenID Connect Core §3.1.3.8: base64url of the left half of the SHA-256 of the access token (the hash of
/// RS256, the only algorithm the stub accepts).
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

/// OpenID Connect Discovery §4: a terminating `/` of the issuer is removed before appending the path.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.strip_suffix('/').unwrap_or(issuer))
}

/// The token endpoint's success answer.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub scope: Option<String>,
}

/// What the nonce of an ID token must be.
#[derive(Debug, Clone, Copy)]
pub enum NonceRule<'a> {
    /// Present and equal (a login; a strict check on refresh).
    Required(&'a str),
    /// Absent, or present and equal (a refresh, OpenID Connect Core §12.2).
    AbsentOr(&'a str),
}

/// What a validated ID token says.
#[derive(Debug, Clone, PartialEq)]
pub struct IdClaims {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    /// `email_verified`, when the ID token has it (a JSON boolean, or the strings `"true"`/`"false"` some
    /// IdPs send).
    pub email_verified: Option<bool>,
    pub iat: i64,
    pub exp: i64,
}

/// `email_verified` of an ID token or a userinfo answer: a boolean, or `"true"`/`"false"` as a string.
pub fn email_verified_claim(claims: &Map<String, Value>) -> Option<bool> {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

struct JwksCache {
    keys: Vec<(Option<String>, DecodingKey)>,
    kids: Vec<String>,
    fetched_at_ms: i64,
    max_age_ms: i64,
}

/// One configured IdP: its settings, its discovery document, and the JWKS cache.
pub struct Provider {
    pub settings: SsoSettings,
    pub discovery: Discovery,
    /// An async lock, held across a fetch, so concurrent validations that miss the cache share one fetch.
    jwks: tokio::sync::Mutex<Option<JwksCache>>,
}

fn string_field(doc: &Map<String, Value>, name: &str, required: bool) -> Result<Option<String>, HttpFailure> {
    match doc.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(HttpFailure::BadShape { detail: format!("the required field {name:?} is missing") }),
        Some(other) => Err(HttpFailure::BadShape { detail: format!("the field {name:?} is {}, not a URL string", json_kind(other)) }),
    }
}

/// `max-age` from a Cache-Control header; `no-store`/`no-cache` mean 0.
pub fn max_age_seconds(headers: &HeaderMap) -> Option<i64> {
    let v = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut out = None;
    for d in v.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            out = n.trim_matches('"').parse::<i64>().ok().map(|n| n.max(0));
        }
    }
    out
}

fn parse_jwks(doc: &Map<String, Value>) -> Result<Vec<(Option<String>, DecodingKey)>, HttpFailure> {
    let Some(Value::Array(keys)) = doc.get("keys") else {
        return Err(HttpFailure::BadShape { detail: "no \"keys\" array".into() });
    };
    let mut out = Vec::new();
    for k in keys {
        let Value::Object(k) = k else { continue };
        let s = |n: &str| k.get(n).and_then(Value::as_str);
        // Keys for other uses or algorithms cannot verify an RS256 ID token; skip them rather than fail.
        if s("kty") != Some("RSA") || s("use").is_some_and(|u| u != "sig") || s("alg").is_some_and(|a| a != "RS256") {
            continue;
        }
        let (Some(n), Some(e)) = (s("n"), s("e")) else { continue };
        if let Ok(dk) = DecodingKey::from_rsa_components(n, e) {
            out.push((s("kid").map(str::to_string), dk));
        }
    }
    Ok(out)
}

impl Provider {
    /// Fetches the discovery document and checks its issuer against the configured one, exactly.
    pub async fn discover(http: &Http, settings: &SsoSettings, counters: &Counters) -> Result<Provider, BsrError> {
        let url = discovery_url(&settings.issuer_url);
        bump(&counters.discovery_fetches);
        let (doc, _) = http.get_json(Step::Discovery, &url, None).await?;
        let bad = |failure| BsrError::Upstream(UpstreamError { step: Step::Discovery, method: "GET", url: url.clone(), failure });
        let field = |n: &str, req: bool| string_field(&doc, n, req).map_err(bad);
        let issuer = field("issuer", true)?.unwrap_or_default();
        if issuer != settings.issuer_url {
            return Err(BsrError::IssuerMismatch { discovery_url: url.clone(), configured: settings.issuer_url.clone(), found: issuer });
        }
        let discovery = Discovery {
            issuer,
            authorization_endpoint: field("authorization_endpoint", true)?.unwrap_or_default(),
            token_endpoint: field("token_endpoint", true)?.unwrap_or_default(),
            jwks_uri: field("jwks_uri", true)?.unwrap_or_default(),
            userinfo_endpoint: field("userinfo_endpoint", false)?,
            end_session_endpoint: field("end_session_endpoint", false)?,
            revocation_endpoint: field("revocation_endpoint", false)?,
            authorization_response_iss_parameter_supported: doc.get("authorization_response_iss_parameter_supported")
                == Some(&Value::Bool(true)),
            url: url.clone(),
        };
        Ok(Provider { settings: settings.clone(), discovery, jwks: tokio::sync::Mutex::new(None) })
    }

    async fn fetch_jwks(&self, http: &Http, now_ms: i64, counters: &Counters) -> Result<JwksCache, UpstreamError> {
        let url = &self.discovery.jwks_uri;
        bump(&counters.jwks_fetches);
        let (doc, headers) = http.get_json(Step::Jwks, url, None).await?;
        let keys = parse_jwks(&doc).map_err(|failure| UpstreamError { step: Step::Jwks, method: "GET", url: url.clone(), failure })?;
        let kids = keys.iter().filter_map(|(k, _)| k.clone()).collect();
        let max_age = max_age_seconds(&headers).unwrap_or(DEFAULT_JWKS_MAX_AGE_S);
        Ok(JwksCache { keys, kids, fetched_at_ms: now_ms, max_age_ms: max_age.saturating_mul(1000) })
    }

    fn find(cache: &JwksCache, kid: Option<&str>) -> Option<DecodingKey> {
        match kid {
            Some(kid) => cache.keys.iter().find(|(k, _)| k.as_deref() == Some(kid)).map(|(_, d)| d.clone()),
            // Without a kid only an unambiguous key set can verify.
            None if cache.keys.len() == 1 => Some(cache.keys[0].1.clone()),
            None => None,
        }
    }

    /// The key for `kid`: from the cache while fresh (on the harness clock), refetched once on an unknown kid
    /// unless the policy is startup-only.
    async fn key_for(
        &self,
        http: &Http,
        kid: Option<&str>,
        now_ms: i64,
        policy: JwksPolicy,
        counters: &Counters,
    ) -> Result<DecodingKey, BsrError> {
        let mut guard = self.jwks.lock().await;
        let mut fetched = false;
        let stale = match &*guard {
            None => true,
            Some(c) => policy == JwksPolicy::RefetchOnUnknownKid && now_ms >= c.fetched_at_ms.saturating_add(c.max_age_ms),
        };
        if stale {
            match self.fetch_jwks(http, now_ms, counters).await {
                Ok(c) => {
                    *guard = Some(c);
                    fetched = true;
                }
                // A stale cache still verifies tokens signed with keys it has; only a miss makes the failure fatal.
                Err(e) => match guard.as_ref().and_then(|c| Self::find(c, kid)) {
                    Some(k) => return Ok(k),
                    None => return Err(e.into()),
                },
            }
        }
        if let Some(k) = guard.as_ref().and_then(|c| Self::find(c, kid)) {
            return Ok(k);
        }
        if policy == JwksPolicy::RefetchOnUnknownKid && !fetched {
            *guard = Some(self.fetch_jwks(http, now_ms, counters).await?);
            if let Some(k) = guard.as_ref().and_then(|c| Self::find(c, kid)) {
                return Ok(k);
            }
        }
        let have = guard.as_ref().map(|c| c.kids.join(", ")).unwrap_or_default();
        let have = if have.is_empty() { "no usable keys".to_string() } else { format!("kids: {have}") };
        let why = match policy {
            JwksPolicy::StartupOnly => "; the JWKS is fetched once at start-up and never refetched (jwks: startup-only)",
            JwksPolicy::RefetchOnUnknownKid => "",
        };
        Err(BsrError::IdToken(match kid {
            Some(kid) => format!("no key with kid {kid:?} in the JWKS at {} ({have}){why}", self.discovery.jwks_uri),
            None => format!("the ID token names no kid and the JWKS at {} does not have exactly one key ({have})", self.discovery.jwks_uri),
        }))
    }

    /// Validates an ID token: RS256 signature against the JWKS, `iss`, `aud` (and `azp`), `exp`, `iat`, `nbf`
    /// with `skew_s` on the harness clock `now_ms`, `nonce`, `sub` when `expect_sub` is given, and `at_hash`
    /// against `access_token` (the access token of the same answer) when both are there: the code flow makes
    /// the claim optional (OpenID Connect Core §3.1.3.8), but one that does not match means the two tokens
    /// do not belong together. `access_token: None` skips that check.
    #[allow(clippy::too_many_arguments)]
    pub async fn validate_id_token(
        &self,
        http: &Http,
        token: &str,
        nonce: NonceRule<'_>,
        expect_sub: Option<&str>,
        access_token: Option<&str>,
        now_ms: i64,
        skew_s: i64,
        policy: JwksPolicy,
        counters: &Counters,
    ) -> Result<IdClaims, BsrError> {
        let bad = |m: String| BsrError::IdToken(m);
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(format!("not a signed JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad(format!("alg is {:?}, the stub accepts only RS256", header.alg)));
        }
        let key = self.key_for(http, header.kid.as_deref(), now_ms, policy, counters).await?;
        let mut v = Validation::new(Algorithm::RS256);
        // Time, audience and issuer are checked below on the harness clock, with messages that name the claim.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                bad(format!("the signature does not verify with the JWKS key {:?}", header.kid.as_deref().unwrap_or("")))
            }
            _ => bad(format!("cannot decode: {e}")),
        })?;
        let c = data.claims;
        let str_claim = |n: &str| c.get(n).and_then(Value::as_str).map(str::to_string);
        let int_claim = |n: &str| -> Result<Option<i64>, BsrError> {
            match c.get(n) {
                None => Ok(None),
                Some(Value::Number(x)) => {
                    x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)).map(Some).ok_or_else(|| bad(format!("{n} is not a number")))
                }
                Some(_) => Err(bad(format!("{n} is not a number"))),
            }
        };
        let iss = str_claim("iss").ok_or_else(|| bad("iss is missing".into()))?;
        if iss != self.discovery.issuer {
            return Err(bad(format!("iss {iss:?} is not the issuer {:?}", self.discovery.issuer)));
        }
        let client_id = &self.settings.client_id;
        let auds: Vec<String> = match c.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => return Err(bad("aud is missing".into())),
        };
        if !auds.iter().any(|a| a == client_id) {
            return Err(bad(format!("aud {auds:?} does not contain the client ID {client_id:?}")));
        }
        if auds.len() > 1 && str_claim("azp").as_deref() != Some(client_id.as_str()) {
            return Err(bad(format!("aud has several values {auds:?} and azp is not the client ID {client_id:?}")));
        }
        let now_s = now_ms.div_euclid(1000);
        let exp = int_claim("exp")?.ok_or_else(|| bad("exp is missing".into()))?;
        if now_s >= exp.saturating_add(skew_s) {
            return Err(bad(format!("expired: exp {exp} is {} s before the harness clock {now_s} (allowed skew {skew_s} s)", now_s - exp)));
        }
        let iat = int_claim("iat")?.ok_or_else(|| bad("iat is missing".into()))?;
        if iat > now_s.saturating_add(skew_s) {
            return Err(bad(format!(
                "iat {iat} is {} s in the future of the harness clock {now_s} (allowed skew {skew_s} s)",
                iat - now_s
            )));
        }
        if let Some(nbf) = int_claim("nbf")?
            && nbf > now_s.saturating_add(skew_s)
        {
            return Err(bad(format!(
                "nbf {nbf} is {} s in the future of the harness clock {now_s} (allowed skew {skew_s} s)",
                nbf - now_s
            )));
        }
        let got_nonce = str_claim("nonce");
        match (nonce, got_nonce.as_deref()) {
            (NonceRule::Required(want), Some(n)) | (NonceRule::AbsentOr(want), Some(n)) if n == want => {}
            (NonceRule::AbsentOr(_), None) => {}
            (NonceRule::Required(_), None) => return Err(bad("nonce is missing, and the nonce sent at sign-in is required".into())),
            (_, Some(_)) => return Err(bad("nonce does not match the nonce sent at sign-in".into())),
        }
        let sub = str_claim("sub").filter(|s| !s.is_empty()).ok_or_else(|| bad("sub is missing".into()))?;
        if let Some(want) = expect_sub
            && sub != want
        {
            return Err(bad(format!("sub {sub:?} is not the subject {want:?} of the signed-in user")));
        }
        if let Some(at) = access_token {
            match c.get("at_hash") {
                None => {}
                Some(Value::String(h)) if *h == at_hash(at) => {}
                Some(Value::String(h)) => {
                    return Err(bad(format!(
                        "at_hash {h:?} is not the hash of the access token that came with it (OpenID Connect Core §3.1.3.8)"
                    )));
                }
                Some(_) => return Err(bad("at_hash is not a string".into())),
            }
        }
        Ok(IdClaims {
            sub,
            email: str_claim("email"),
            name: str_claim("name"),
            preferred_username: str_claim("preferred_username"),
            email_verified: email_verified_claim(&c),
            iat,
            exp,
        })
    }

    /// POSTs to the token endpoint; `step` says whether this is a code exchange or a refresh.
    pub async fn token(&self, http: &Http, step: Step, form: &[(&str, &str)]) -> Result<TokenResponse, UpstreamError> {
        let url = &self.discovery.token_endpoint;
        let s = &self.settings;
        let (status, content_type, body) = http.post_form(step, url, &s.client_id, &s.client_secret, form).await?;
        let err = |failure| UpstreamError { step, method: "POST", url: url.clone(), failure };
        if !(200..300).contains(&status) {
            return Err(err(oauth_or_status(status, &body)));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| err(HttpFailure::NotJson { status, content_type, detail: e.to_string() }))?;
        let Value::Object(m) = v else {
            return Err(err(HttpFailure::BadShape { detail: format!("expected a JSON object, got {}", json_kind(&v)) }));
        };
        let secret = |n: &str| m.get(n).and_then(Value::as_str).filter(|s| !s.is_empty()).map(Secret::new);
        let access_token = secret("access_token")
            .ok_or_else(|| err(HttpFailure::BadShape { detail: "the token response has no \"access_token\"".into() }))?;
        // Some IdPs send expires_in as a string; both forms are accepted.
        let expires_in = match m.get("expires_in") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(TokenResponse {
            access_token,
            expires_in,
            refresh_token: secret("refresh_token"),
            id_token: secret("id_token"),
            scope: m.get("scope").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// Fetches userinfo with an access token.
    pub async fn userinfo(&self, http: &Http, access_token: &Secret) -> Result<Option<Map<String, Value>>, UpstreamError> {
        let Some(url) = &self.discovery.userinfo_endpoint else { return Ok(None) };
        http.get_json(Step::Userinfo, url, Some(access_token.expose())).await.map(|(m, _)| Some(m))
    }

    /// Revokes a token (RFC 7009). Returns `Ok(false)` when the IdP has no revocation endpoint.
    pub async fn revoke(&self, http: &Http, token: &Secret, hint: &str) -> Result<bool, UpstreamError> {
        let Some(url) = &self.discovery.revocation_endpoint else { return Ok(false) };
        let s = &self.settings;
        let (status, _, body) = http
            .post_form(Step::Revocation, url, &s.client_id, &s.client_secret, &[("token", token.expose()), ("token_type_hint", hint)])
            .await?;
        if (200..300).contains(&status) {
            Ok(true)
        } else {
            Err(UpstreamError { step: Step::Revocation, method: "POST", url: url.clone(), failure: oauth_or_status(status, &body) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[tokio::test]
    async fn https_issuers_are_supported() {
        // Port 1 on loopback refuses the connection: the request got as far as connecting, which a client
        // without TLS support never does for an https URL.
        let http = Http::new(Duration::from_secs(2), &[]).unwrap();
        let e = http.get_json(Step::Discovery, "https://127.0.0.1:1/.well-known/openid-configuration", None).await.unwrap_err();
        assert!(matches!(&e.failure, HttpFailure::Connect(m) if !m.contains("scheme is not http")), "{e}");
        assert!(
            e.to_string().starts_with("discovery failed: GET https://127.0.0.1:1/.well-known/openid-configuration could not connect: "),
            "{e}"
        );
    }

    #[test]
    fn discovery_url_drops_one_trailing_slash() {
        assert_eq!(discovery_url("https://x.okta.com"), "https://x.okta.com/.well-known/openid-configuration");
        assert_eq!(discovery_url("https://x.okta.com/"), "https://x.okta.com/.well-known/openid-configuration");
        assert_eq!(
            discovery_url("https://x.okta.com/oauth2/default"),
            "https://x.okta.com/oauth2/default/.well-known/openid-configuration"
        );
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core 1.0, Appendix A.3's access token and at_hash.
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn email_verified_is_a_boolean_or_its_string() {
        let m = |v: Value| serde_json::from_value::<Map<String, Value>>(serde_json::json!({"email_verified": v})).unwrap();
        assert_eq!(email_verified_claim(&m(Value::Bool(false))), Some(false));
        assert_eq!(email_verified_claim(&m(Value::from("true"))), Some(true));
        assert_eq!(email_verified_claim(&m(Value::from("no"))), None);
        assert_eq!(email_verified_claim(&Map::new()), None);
    }

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age_seconds(&h), None);
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600, must-revalidate"));
        assert_eq!(max_age_seconds(&h), Some(3600));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age_seconds(&h), Some(0));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, MAX-AGE=-5"));
        assert_eq!(max_age_seconds(&h), Some(0));
    }

    #[test]
    fn basic_auth_encodes_both_parts() {
        assert_eq!(
            basic_auth("bsr-local", &Secret::new("bsr-local-secret")),
            format!("Basic {}", STANDARD.encode("bsr-local:bsr-local-secret"))
        );
        assert_eq!(basic_auth("a:b", &Secret::new("c d")), format!("Basic {}", STANDARD.encode("a%3Ab:c+d")));
    }

    #[test]
    fn oauth_error_bodies_are_recognised() {
        assert_eq!(
            oauth_or_status(400, br#"{"error":"invalid_grant","error_description":"The refresh token is invalid or expired."}"#),
            HttpFailure::OAuth {
                status: 400,
                error: "invalid_grant".into(),
                description: Some("The refresh token is invalid or expired.".into())
            }
        );
        assert_eq!(oauth_or_status(500, b"<html>"), HttpFailure::Status(500));
    }
}
