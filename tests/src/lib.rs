//! Helpers shared by the integration tests: start an isolated mock-idp, talk to it over real HTTP on
//! loopback like a relying party would, and check what comes back.
//!
//! Everything here goes over the wire (reqwest against `127.0.0.1:<port 0>`); nothing reaches into the
//! IdP's internals except [`mock_idp::MockIdp`]'s own handle (clock, tenant), which tests may use too.
//!
//! ```no_run
//! use tests::*;
//! # async fn demo() {
//! let idp = idp().await;                          // default tenant, clock frozen at 2030-01-01T00:00:00Z
//! let c = Client::new(&idp);                      // no redirects followed, cookie jar on
//! let t = c.login(Server::DEFAULT, ALICE, PASSWORD, "openid profile email offline_access").await;
//! let claims = verify_id_token(idp.base_url(), Server::DEFAULT, t.id_token.as_deref().unwrap(), CLIENT_ID).await.unwrap();
//! assert_eq!(claims["sub"], ALICE_ID);
//! let (status, body) = c.refresh(Server::DEFAULT, CLIENT_ID, Some(CLIENT_SECRET), t.refresh_token.as_deref().unwrap(), None).await;
//! c.advance(3600).await;                          // an hour passes on the IdP clock
//! let events = c.logs(r#"eventType eq "app.oauth2.token.grant.refresh_token""#).await;
//! # let _ = (claims, status, body, events); }
//! ```
//!
//! Conventions: helpers that "must work" (e.g. [`Client::authn`], [`Client::login`]) panic with a
//! message on failure, because they are preconditions of the test calling them; helpers whose outcome is
//! what a test asserts (token, refresh, introspect, …) return the status and the parsed body.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::{MockIdp, Options, TenantConfig};
use rand::RngCore;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::form_urlencoded;

/// The default tenant's web app (Buf Schema Registry).
pub const CLIENT_ID: &str = "bsr-local";
pub const CLIENT_SECRET: &str = "bsr-local-secret";
pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/oauth2/callback";
pub const REDIRECT_URI_LOCALHOST: &str = "http://localhost:3000/oauth2/callback";
pub const LOGOUT_URI: &str = "http://127.0.0.1:3000/logout";
/// The management API token (`Authorization: SSWS …`).
pub const ADMIN_TOKEN: &str = "mock-admin-token";
/// Every default-tenant user's password.
pub const PASSWORD: &str = "Passw0rd!";
pub const ALICE: &str = "alice@example.com";
pub const ALICE_ID: &str = "00u1alice00000000001";
pub const BOB: &str = "bob@example.com";
pub const BOB_ID: &str = "00u1bob0000000000001";
/// Active but not assigned to `bsr-local`.
pub const CAROL: &str = "carol@example.com";
pub const CAROL_ID: &str = "00u1carol00000000001";
pub const GROUP_ID: &str = "00g1bsrusers00000001";
pub const APP_ID: &str = "0oa1bsr0000000000001";
/// The `idp` claim (org id).
pub const ORG_ID: &str = "00o1mockorg000000001";
/// The test clock's start, 2030-01-01T00:00:00Z, in seconds.
pub const T0: i64 = 1_893_456_000;

/// Starts an isolated IdP with the default tenant and a frozen clock at [`T0`].
pub async fn idp() -> MockIdp {
    idp_with(TenantConfig::default_tenant()).await
}

/// Starts an isolated IdP with `cfg` (e.g. the default tenant with a field changed) and a frozen clock.
pub async fn idp_with(cfg: TenantConfig) -> MockIdp {
    MockIdp::start(Options { config: cfg, ..Options::default() }).await.expect("an in-process mock-idp starts on 127.0.0.1:0")
}

/// Parses a tenant YAML (panics with the file:line:col error if it does not parse).
pub fn tenant(yaml: &str) -> TenantConfig {
    TenantConfig::parse(yaml, "test-tenant.yaml").unwrap_or_else(|e| panic!("tenant parses: {e}"))
}

/// Which authorization server a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The org server: issuer = base URL, endpoints under `/oauth2/v1/`.
    Org,
    /// A custom server: issuer `<base>/oauth2/<id>`, endpoints under `/oauth2/<id>/v1/`.
    Custom(&'static str),
}

impl Server {
    /// The default tenant's custom server `default`.
    pub const DEFAULT: Server = Server::Custom("default");

    /// `/oauth2` or `/oauth2/<id>`.
    pub fn path_prefix(self) -> String {
        match self {
            Server::Org => "/oauth2".into(),
            Server::Custom(id) => format!("/oauth2/{id}"),
        }
    }

    /// The issuer URL of this server on `idp`.
    pub fn issuer(self, idp: &MockIdp) -> String {
        self.issuer_at(idp.base_url())
    }

    /// The issuer URL of this server under a base URL.
    pub fn issuer_at(self, base: &str) -> String {
        match self {
            Server::Org => base.to_string(),
            Server::Custom(id) => format!("{base}/oauth2/{id}"),
        }
    }

    /// An endpoint path, e.g. `endpoint("token")` = `/oauth2/default/v1/token`.
    pub fn endpoint(self, name: &str) -> String {
        format!("{}/v1/{name}", self.path_prefix())
    }

    /// The discovery document path (`/.well-known/openid-configuration` at the issuer).
    pub fn discovery_path(self) -> String {
        match self {
            Server::Org => "/.well-known/openid-configuration".into(),
            Server::Custom(id) => format!("/oauth2/{id}/.well-known/openid-configuration"),
        }
    }
}

/// A PKCE pair: a 43-character verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut b = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        Self::from_verifier(&URL_SAFE_NO_PAD.encode(b))
    }

    pub fn from_verifier(verifier: &str) -> Self {
        Pkce { verifier: verifier.to_string(), challenge: s256(verifier) }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `BASE64URL(SHA256(s))`: the S256 challenge of a verifier.
pub fn s256(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(s.as_bytes()))
}

/// OIDC `at_hash`: base64url of the left half of SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

/// A random value for `state` / `nonce`.
pub fn random_string() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: String,
    pub expires_in: i64,
    /// The nonce sent at authorize (for ID-token checks).
    pub nonce: String,
    /// The whole response body.
    pub raw: Value,
}

impl Tokens {
    /// Parses a 200 token response (panics otherwise).
    pub fn from_response(status: StatusCode, body: Value, nonce: &str) -> Self {
        assert_eq!(status, StatusCode::OK, "token response: {body}");
        let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        Tokens {
            access_token: s("access_token").expect("access_token in token response"),
            id_token: s("id_token"),
            refresh_token: s("refresh_token"),
            scope: s("scope").unwrap_or_default(),
            expires_in: body["expires_in"].as_i64().unwrap_or(0),
            nonce: nonce.to_string(),
            raw: body,
        }
    }
}

/// How a client authenticates at token, introspect and revoke.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// `Authorization: Basic base64(id:secret)` (client_secret_basic).
    Basic(&'a str, &'a str),
    /// `client_id` and `client_secret` in the body (client_secret_post).
    Post(&'a str, &'a str),
    /// `client_id` in the body only (public client, `none`).
    Public(&'a str),
    /// Nothing.
    Nothing,
    /// A raw `Authorization` header value.
    Header(&'a str),
}

impl<'a> Auth<'a> {
    /// `bsr-local` with client_secret_basic.
    pub const BSR: Auth<'static> = Auth::Basic(CLIENT_ID, CLIENT_SECRET);

    /// Basic when a secret is given, public (client_id in the body) otherwise.
    pub fn of(client_id: &'a str, secret: Option<&'a str>) -> Self {
        match secret {
            Some(s) => Auth::Basic(client_id, s),
            None => Auth::Public(client_id),
        }
    }
}

/// The `Basic` header value for a client (parts form-urlencoded first, per RFC 6749 §2.3.1).
pub fn basic(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret))))
}

/// Encodes pairs as `application/x-www-form-urlencoded` (keeps order and duplicates).
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter().copied()).finish()
}

/// The query (or, if there is no query, the fragment) pairs of a URL, in order.
pub fn url_params(location: &str) -> Vec<(String, String)> {
    let u = url::Url::parse(location).or_else(|_| url::Url::parse("http://x.invalid").and_then(|b| b.join(location))).expect("a URL");
    let part = u.query().or(u.fragment()).unwrap_or("");
    form_urlencoded::parse(part.as_bytes()).into_owned().collect()
}

/// One query/fragment parameter of a URL.
pub fn url_param(location: &str, name: &str) -> Option<String> {
    url_params(location).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The unverified payload of a JWT.
/// Okta's error body with one cause (`errorCode`, `errorSummary`, `errorLink`, `errorCauses`), taking its
/// `errorId` from `got`, the body it is compared with (an id is random).
pub fn okta_error_with_cause(got: &Value, code: &str, summary: &str, cause: impl AsRef<str>) -> Value {
    serde_json::json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": got["errorId"],
        "errorCauses": [{"errorSummary": cause.as_ref()}]})
}

pub fn decode_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload")).expect("JSON payload")
}

/// The unverified header of a JWT.
pub fn decode_header(jwt: &str) -> Value {
    let h = jwt.split('.').next().expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).expect("base64url header")).expect("JSON header")
}

/// Verifies an ID token: fetches the server's JWKS over HTTP, checks the RS256 signature, `iss`, `aud`
/// = `client_id`, and `exp` against the IdP's clock (not wall time: the test clock stands in 2030).
pub async fn verify_id_token(idp_base: &str, server: Server, jwt: &str, client_id: &str) -> anyhow::Result<Value> {
    verify_jwt(idp_base, server, jwt, client_id).await
}

/// Verifies any JWT of `server` against its JWKS, with `aud` (e.g. `api://default` for access tokens).
pub async fn verify_jwt(idp_base: &str, server: Server, jwt: &str, aud: &str) -> anyhow::Result<Value> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
    mock_idp::keys::install_crypto_provider();
    harness::crypto::install();
    let http = reqwest::Client::new();
    let jwks: JwkSet = http.get(format!("{idp_base}{}", server.endpoint("keys"))).send().await?.error_for_status()?.json().await?;
    let header = jsonwebtoken::decode_header(jwt)?;
    anyhow::ensure!(header.alg == Algorithm::RS256, "alg {:?}", header.alg);
    let kid = header.kid.ok_or_else(|| anyhow::anyhow!("no kid in the JWT header"))?;
    let jwk = jwks.find(&kid).ok_or_else(|| anyhow::anyhow!("kid {kid} is not in the JWKS of {server:?}"))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.set_audience(&[aud]);
    v.set_issuer(&[server.issuer_at(idp_base)]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(jwk)?, &v)?;
    let clock: Value = http.get(format!("{idp_base}/_mock/clock")).send().await?.json().await?;
    let now = mock_idp::clock::parse_rfc3339(clock["now"].as_str().unwrap_or("")).ok_or_else(|| anyhow::anyhow!("clock"))? / 1000;
    let exp = data.claims["exp"].as_i64().unwrap_or(0);
    anyhow::ensure!(exp > now, "token expired: exp {exp} <= IdP now {now}");
    Ok(data.claims)
}

/// A relying party / browser talking to one IdP: redirects are NOT followed, cookies are kept.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

/// Parameters of an authorize request. `Authorize::new(CLIENT_ID)` fills in the default redirect URI,
/// `openid profile email`, a random state and nonce, and a fresh PKCE pair.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub pkce: Option<Pkce>,
    /// More parameters (prompt, max_age, response_mode, sessionToken, …), sent after the ones above.
    pub extra: Vec<(String, String)>,
}

impl Authorize {
    pub fn new(client_id: &str) -> Self {
        Authorize {
            client_id: client_id.into(),
            redirect_uri: REDIRECT_URI.into(),
            scope: "openid profile email".into(),
            state: random_string(),
            nonce: random_string(),
            pkce: Some(Pkce::new()),
            extra: vec![],
        }
    }
    pub fn scope(mut self, s: &str) -> Self {
        self.scope = s.into();
        self
    }
    pub fn redirect_uri(mut self, s: &str) -> Self {
        self.redirect_uri = s.into();
        self
    }
    pub fn no_pkce(mut self) -> Self {
        self.pkce = None;
        self
    }
    pub fn param(mut self, k: &str, v: &str) -> Self {
        self.extra.push((k.into(), v.into()));
        self
    }
    /// The query pairs, in order: response_type, client_id, redirect_uri, scope, state, nonce (left out
    /// when empty), PKCE, extra.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), self.client_id.clone()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("scope".into(), self.scope.clone()),
            ("state".into(), self.state.clone()),
        ];
        if !self.nonce.is_empty() {
            p.push(("nonce".into(), self.nonce.clone()));
        }
        if let Some(k) = &self.pkce {
            p.push(("code_challenge".into(), k.challenge.clone()));
            p.push(("code_challenge_method".into(), "S256".into()));
        }
        p.extend(self.extra.iter().cloned());
        p
    }
}

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.text().await.expect("response body");
        Reply { status, headers, body }
    }
    /// The `Location` header.
    pub fn location(&self) -> Option<String> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.body))
    }
}

impl Client {
    /// A fresh browser/RP for `idp` (its own cookie jar).
    pub fn new(idp: &MockIdp) -> Self {
        Self::for_base(idp.base_url())
    }

    pub fn for_base(base: &str) -> Self {
        // reqwest is built with rustls and no default provider in this workspace.
        harness::crypto::install();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client builds");
        Client { http, base: base.trim_end_matches('/').to_string() }
    }

    /// An absolute URL for a path (`/oauth2/v1/token`) or an absolute URL unchanged.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    /// `GET path` (path or absolute URL).
    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    /// `POST path` with a form body given as raw pairs (order and duplicates kept) and optional auth.
    pub async fn post_form(&self, path: &str, auth: Auth<'_>, pairs: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(&str, &str)> = Vec::new();
        let mut rb = self.http.post(self.url(path)).header("content-type", "application/x-www-form-urlencoded");
        match auth {
            Auth::Basic(i, s) => rb = rb.header(AUTHORIZATION, basic(i, s)),
            Auth::Header(h) => rb = rb.header(AUTHORIZATION, h),
            Auth::Post(i, s) => all.extend([("client_id", i), ("client_secret", s)]),
            Auth::Public(i) => all.push(("client_id", i)),
            Auth::Nothing => {}
        }
        all.extend_from_slice(pairs);
        Reply::from(rb.body(encode_form(&all)).send().await.expect("POST")).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        Reply::from(self.http.post(self.url(path)).json(body).send().await.expect("POST")).await
    }

    /// `POST /api/v1/authn`; returns the status and body.
    pub async fn authn_raw(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let r = self.post_json("/api/v1/authn", &json!({"username": username, "password": password})).await;
        (r.status, r.json())
    }

    /// `POST /api/v1/authn` that must succeed; returns the one-time sessionToken.
    pub async fn authn(&self, username: &str, password: &str) -> String {
        let (s, b) = self.authn_raw(username, password).await;
        assert_eq!(s, StatusCode::OK, "authn for {username}: {b}");
        assert_eq!(b["status"], "SUCCESS", "authn for {username}: {b}");
        b["sessionToken"].as_str().expect("sessionToken").to_string()
    }

    /// `GET {server}/v1/authorize?…` with the request's pairs.
    pub async fn authorize(&self, server: Server, req: &Authorize) -> Reply {
        let q = form_urlencoded::Serializer::new(String::new()).extend_pairs(req.pairs()).finish();
        self.get(&format!("{}?{q}", server.endpoint("authorize"))).await
    }

    /// `GET {server}/v1/authorize?…` with raw pairs (for malformed requests).
    pub async fn authorize_raw(&self, server: Server, pairs: &[(&str, &str)]) -> Reply {
        self.get(&format!("{}?{}", server.endpoint("authorize"), encode_form(pairs))).await
    }

    /// Authorize with a sessionToken (no form); returns the status and the `Location` header.
    #[allow(clippy::too_many_arguments)]
    pub async fn authorize_with_session_token(
        &self,
        server: Server,
        session_token: &str,
        client_id: &str,
        redirect_uri: &str,
        scopes: &str,
        state: &str,
        nonce: &str,
        pkce: Option<&Pkce>,
    ) -> (StatusCode, Option<String>) {
        let req = Authorize {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scope: scopes.into(),
            state: state.into(),
            nonce: nonce.into(),
            pkce: pkce.cloned(),
            extra: vec![("sessionToken".into(), session_token.into())],
        };
        let r = self.authorize(server, &req).await;
        (r.status, r.location())
    }

    /// authn + authorize with the sessionToken; returns the code (panics unless a code comes back with
    /// the state). Cookies: the session cookie the IdP sets is kept in this client's jar.
    pub async fn code(&self, server: Server, username: &str, password: &str, req: &Authorize) -> String {
        let st = self.authn(username, password).await;
        let r = self.authorize(server, &req.clone().param("sessionToken", &st)).await;
        let loc = r.location().unwrap_or_else(|| panic!("authorize redirects: {} {}", r.status, r.body));
        assert_eq!(url_param(&loc, "state").as_deref(), Some(req.state.as_str()), "state echoed: {loc}");
        url_param(&loc, "code").unwrap_or_else(|| panic!("a code in {loc}"))
    }

    /// A whole headless sign-in of `bsr-local`: authn → authorize (sessionToken, PKCE S256) → token
    /// (client_secret_basic). Panics unless tokens come back.
    pub async fn login(&self, server: Server, username: &str, password: &str, scopes: &str) -> Tokens {
        self.login_with(server, username, password, Authorize::new(CLIENT_ID).scope(scopes), Auth::BSR).await
    }

    /// Like [`Client::login`] for any client and authorize request.
    pub async fn login_with(&self, server: Server, username: &str, password: &str, req: Authorize, auth: Auth<'_>) -> Tokens {
        let code = self.code(server, username, password, &req).await;
        let verifier = req.pkce.as_ref().map(|p| p.verifier.as_str());
        let (s, b) = self.token_code(server, auth, &code, &req.redirect_uri, verifier).await;
        Tokens::from_response(s, b, &req.nonce)
    }

    /// `POST {server}/v1/token` with grant_type=authorization_code.
    pub async fn token_code(
        &self,
        server: Server,
        auth: Auth<'_>,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut p = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        if let Some(v) = code_verifier {
            p.push(("code_verifier", v));
        }
        self.token(server, auth, &p).await
    }

    /// `POST {server}/v1/token` with any form pairs.
    pub async fn token(&self, server: Server, auth: Auth<'_>, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self.post_form(&server.endpoint("token"), auth, pairs).await;
        (r.status, r.json())
    }

    /// `POST {server}/v1/token` with grant_type=refresh_token; `secret: None` = public client.
    pub async fn refresh(
        &self,
        server: Server,
        client_id: &str,
        secret: Option<&str>,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut p = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        if let Some(s) = scope {
            p.push(("scope", s));
        }
        self.token(server, Auth::of(client_id, secret), &p).await
    }

    /// `GET {server}/v1/userinfo` with `Authorization: Bearer <token>`.
    pub async fn userinfo(&self, server: Server, access_token: &str) -> Reply {
        let r = self.http.get(self.url(&server.endpoint("userinfo"))).bearer_auth(access_token).send().await.expect("GET userinfo");
        Reply::from(r).await
    }

    /// `POST {server}/v1/introspect`; returns status and body.
    pub async fn introspect(&self, server: Server, auth: Auth<'_>, token: &str, hint: Option<&str>) -> (StatusCode, Value) {
        let mut p = vec![("token", token)];
        if let Some(h) = hint {
            p.push(("token_type_hint", h));
        }
        let r = self.post_form(&server.endpoint("introspect"), auth, &p).await;
        (r.status, r.json())
    }

    /// Whether `token` is active at introspect for `bsr-local`.
    pub async fn is_active(&self, server: Server, token: &str) -> bool {
        let (s, b) = self.introspect(server, Auth::BSR, token, None).await;
        assert_eq!(s, StatusCode::OK, "introspect: {b}");
        b["active"].as_bool().expect("active is a bool")
    }

    /// `POST {server}/v1/revoke`; returns status and the raw body.
    pub async fn revoke(&self, server: Server, auth: Auth<'_>, token: &str, hint: Option<&str>) -> (StatusCode, String) {
        let mut p = vec![("token", token)];
        if let Some(h) = hint {
            p.push(("token_type_hint", h));
        }
        let r = self.post_form(&server.endpoint("revoke"), auth, &p).await;
        (r.status, r.body)
    }

    /// `GET /api/v1/logs` with SSWS [`ADMIN_TOKEN`] and raw query pairs.
    pub async fn logs_raw(&self, pairs: &[(&str, &str)]) -> Reply {
        let url = if pairs.is_empty() { "/api/v1/logs".to_string() } else { format!("/api/v1/logs?{}", encode_form(pairs)) };
        let r = self.http.get(self.url(&url)).header(AUTHORIZATION, format!("SSWS {ADMIN_TOKEN}")).send().await.expect("GET logs");
        Reply::from(r).await
    }

    /// System Log events matching a SCIM filter (e.g. `eventType eq "user.session.start"`; "" = all),
    /// oldest first, up to 1000.
    pub async fn logs(&self, filter: &str) -> Vec<Value> {
        let mut p = vec![("limit", "1000")];
        if !filter.is_empty() {
            p.push(("filter", filter));
        }
        let r = self.logs_raw(&p).await;
        assert_eq!(r.status, StatusCode::OK, "logs: {}", r.body);
        r.json().as_array().expect("logs are an array").clone()
    }

    /// System Log events of one event type.
    pub async fn events(&self, event_type: &str) -> Vec<Value> {
        self.logs(&format!("eventType eq \"{event_type}\"")).await
    }

    /// `GET /_mock/clock`.
    pub async fn clock(&self) -> Value {
        self.get("/_mock/clock").await.json()
    }

    /// `POST /_mock/clock` with a JSON body; returns status and body.
    pub async fn set_clock(&self, body: Value) -> (StatusCode, Value) {
        let r = self.post_json("/_mock/clock", &body).await;
        (r.status, r.json())
    }

    /// Advances the IdP clock by `seconds` over HTTP.
    pub async fn advance(&self, seconds: i64) {
        let (s, b) = self.set_clock(json!({"advance_seconds": seconds})).await;
        assert_eq!(s, StatusCode::OK, "advance clock: {b}");
    }

    /// The IdP clock now, in seconds.
    pub async fn now_secs(&self) -> i64 {
        let c = self.clock().await;
        mock_idp::clock::parse_rfc3339(c["now"].as_str().expect("now")).expect("RFC 3339 now") / 1000
    }

    /// `POST /_mock/reset`.
    pub async fn reset(&self) -> Reply {
        Reply::from(self.http.post(self.url("/_mock/reset")).send().await.expect("POST reset")).await
    }

    /// Signs in through the hosted form: follows a `Location` to `/login/login.htm`, GETs the page, reads
    /// the csrf hidden field (the `mock_csrf` cookie lands in the jar), posts username/password/fromURI/
    /// csrf, and returns the reply to the POST (302 to `fromURI` on success, the page with an error
    /// otherwise). Call [`Client::follow`] on the success reply to get the authorize result.
    pub async fn submit_login_form(&self, login_location: &str, username: &str, password: &str) -> Reply {
        let page = self.get(login_location).await;
        assert_eq!(page.status, StatusCode::OK, "login page: {}", page.body);
        let csrf = hidden_field(&page.body, "csrf").expect("a csrf hidden field");
        let from = hidden_field(&page.body, "fromURI").expect("a fromURI hidden field");
        self.post_form(
            "/login/login.htm",
            Auth::Nothing,
            &[("username", username), ("password", password), ("fromURI", &from), ("csrf", &csrf)],
        )
        .await
    }

    /// GETs a reply's `Location` (one redirect hop).
    pub async fn follow(&self, r: &Reply) -> Reply {
        let loc = r.location().unwrap_or_else(|| panic!("a Location header: {} {}", r.status, r.body));
        self.get(&loc).await
    }

    /// Browser sign-in: authorize → (form if no session) → back to authorize/redirect → the reply that
    /// redirects to the app (status 302, Location with code and state, or an error).
    pub async fn browser_authorize(&self, server: Server, req: &Authorize, username: &str, password: &str) -> Reply {
        let r = self.authorize(server, req).await;
        let Some(loc) = r.location() else { return r };
        if !loc.starts_with(&format!("{}/login/login.htm", self.base)) {
            return r;
        }
        let posted = self.submit_login_form(&loc, username, password).await;
        if posted.status != StatusCode::FOUND {
            return posted;
        }
        self.follow(&posted).await
    }
}

/// The `value` of `<input … name="NAME" value="…">` in a page (HTML entities for `&`, `"`, `<`, `>`, `'`
/// decoded).
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

/// The error code and description of Okta's HTML error page (`<dd id="error-code">`,
/// `<dd id="error-description">`), entities decoded; `None` if the page is not an error page.
pub fn error_page(html: &str) -> Option<(String, String)> {
    let grab = |id: &str| {
        let marker = format!("<dd id=\"{id}\">");
        let start = html.find(&marker)? + marker.len();
        let end = html[start..].find("</dd>")? + start;
        Some(unescape(&html[start..end]))
    };
    Some((grab("error-code")?, grab("error-description")?))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The default tenant's YAML with more apps (YAML list items, indented like the default file's `apps:`
/// entries) and more assignments (e.g. `  - {app: spa, group: BSR Users}`) appended.
pub fn default_tenant_with(apps: &str, assignments: &str) -> TenantConfig {
    let base = mock_idp::config::DEFAULT_TENANT_YAML;
    let (head, tail) = base.split_once("\nassignments:\n").expect("the default tenant has an assignments section");
    let (asg, rest) = tail.split_once("\n\n").unwrap_or((tail, ""));
    let yaml = format!("{head}\n{apps}\nassignments:\n{asg}\n{assignments}\n\n{rest}");
    tenant(&yaml)
}

/// A public browser app (SPA): client_id `spa-client`, no secret, `token_endpoint_auth_method: none`,
/// PKCE required (Okta's default for browser apps), redirect URI [`SPA_REDIRECT_URI`], assigned to
/// "BSR Users". Refresh tokens ROTATE with leeway 30.
pub const SPA_APP_YAML: &str = r#"  - id: 0oa1spatest000000001
    label: Test SPA
    status: ACTIVE
    credentials:
      oauthClient:
        client_id: spa-client
        token_endpoint_auth_method: none
    settings:
      oauthClient:
        application_type: browser
        grant_types: [authorization_code, refresh_token]
        response_types: [code]
        redirect_uris: [http://127.0.0.1:4000/callback]
        post_logout_redirect_uris: [http://127.0.0.1:4000/]
        refresh_token: {rotation_type: ROTATE, leeway: 30}
"#;
pub const SPA_CLIENT_ID: &str = "spa-client";
pub const SPA_REDIRECT_URI: &str = "http://127.0.0.1:4000/callback";

/// The default tenant plus the public SPA of [`SPA_APP_YAML`].
pub fn tenant_with_spa() -> TenantConfig {
    default_tenant_with(SPA_APP_YAML, "  - {app: spa-client, group: BSR Users}")
}

/// The debug `mock-idp` and `harness` binaries, for tests that run them as processes.
pub struct Binaries {
    pub mock_idp: std::path::PathBuf,
    pub harness: std::path::PathBuf,
}

/// Builds both binaries once per test process (`cargo build --locked`; cargo has released its build lock by
/// the time tests run, so the nested build of up-to-date binaries is quick) and locates them.
pub fn binaries() -> &'static Binaries {
    static BINS: std::sync::OnceLock<Binaries> = std::sync::OnceLock::new();
    BINS.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives in the workspace root");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo)
            .args(["build", "-q", "--locked", "-p", "mock-idp", "-p", "harness"])
            .current_dir(repo)
            .status()
            .expect("cargo runs");
        assert!(st.success(), "cargo build --locked -p mock-idp -p harness");
        let target = std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| repo.join("target"));
        Binaries { mock_idp: target.join("debug").join("mock-idp"), harness: target.join("debug").join("harness") }
    })
}

/// The children of a process, from /proc (Linux).
pub fn children_of(pid: u32) -> Vec<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    tasks
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<_>>())
        .collect()
}

/// Waits until every process of `pids` has ended (a zombie, ended but not yet reaped, counts), for at most
/// `timeout`, without polling: a pidfd per process (Linux 5.3+), which the kernel makes readable when the
/// process ends. Returns the ones still running at the timeout.
pub fn wait_ended(pids: &[i32], timeout: std::time::Duration) -> Vec<i32> {
    let mut left: Vec<(i32, i32)> = pids
        .iter()
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1 (a process already
        // gone is ESRCH: nothing to wait for).
        .filter_map(|&p| {
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p, 0) };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "pidfd_open({p}): {e}");
                return None;
            }
            Some((p, fd as i32))
        })
        .collect();
    let deadline = std::time::Instant::now() + timeout;
    while !left.is_empty() {
        let rest = deadline.saturating_duration_since(std::time::Instant::now());
        if rest.is_zero() {
            break;
        }
        let mut fds: Vec<libc::pollfd> = left.iter().map(|&(_, fd)| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: poll reads and writes the array it is given, of the length given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, rest.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
        let mut still = Vec::new();
        for (p, (pid, fd)) in fds.iter().zip(left) {
            if p.revents != 0 {
                // SAFETY: the descriptor was opened above and is closed once.
                unsafe { libc::close(fd) };
            } else {
                still.push((pid, fd));
            }
        }
        left = still;
    }
    left.into_iter()
        .map(|(pid, fd)| {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
            pid
        })
        .collect()
}
