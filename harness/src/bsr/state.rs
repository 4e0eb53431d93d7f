//! The stub's state and the mechanisms behind the pages: the provider cache, sign-in attempts, the callback,
//! sessions and backend refresh (single-flight or naive), sign-out and deactivation.
//!
//! Backend refresh, as BSR does it since v1.8. A session holds the tokens. A request that finds the access
//! token expired (on the harness clock) refreshes:
//!
//! ```text
//!  request A            request B            session                 IdP
//!  expired? yes ──────────────────────────── epoch 0
//!                       expired? yes
//!  single-flight: A takes the session's refresh lock, B waits on it
//!  POST /token (refresh_token R1) ─────────────────────────────────────▶ rotates R1→R2
//!  store {AT2, R2} atomically, epoch 1 ◀────────────────────────────────
//!                       gets the lock, sees epoch 1 ≠ 0: adopts A's result, no second refresh
//!  naive: B does not wait and presents R1 too; with a grace period of 0 that is reuse, the family dies
//! ```
//!
//! `invalid_grant` ends the session and the user is sent to `/login`; a new login makes a new session, so
//! there is never a refresh loop. Other failures (timeouts, 5xx) keep the session and show a 502.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::Clock;
use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::config::{BsrConfig, NonceCheck, RefreshStrategy, Secret, SsoSettings, Switches};
use super::errors::{BsrError, Step};
use super::oidc::{Counters, Http, NonceRule, Provider, bump};
use super::store::{BsrUser, UserState, UserStore};

/// Sign-in attempts, sign-out states and admin sessions expire after this long (harness clock).
pub const ATTEMPT_LIFETIME_MS: i64 = 600_000;
pub const ADMIN_SESSION_LIFETIME_MS: i64 = 12 * 3_600_000;
/// Bounds on pending attempts, so a flood of `/login` requests cannot grow memory without limit.
const MAX_ATTEMPTS: usize = 10_000;
/// Assumed access-token lifetime when the token response has no `expires_in`.
const DEFAULT_EXPIRES_IN_S: i64 = 3600;

/// A random URL-safe string of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The name of the cookie that binds a sign-in attempt to the browser that started it.
pub fn attempt_cookie(state: &str) -> String {
    let h = Sha256::digest(state.as_bytes());
    let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bsr_login_{hex}")
}

/// One sign-in attempt, kept server-side by its `state`; two attempts in one browser are independent.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub nonce: String,
    /// The PKCE verifier: a secret until the code exchange.
    pub verifier: Secret,
    /// The value of the attempt's cookie.
    pub binding: Secret,
    pub created_ms: i64,
    pub return_to: String,
}

#[derive(Debug, Clone)]
struct TokenState {
    access_token: Secret,
    access_expires_ms: i64,
    refresh_token: Option<Secret>,
    id_token: Secret,
    /// Bumped by every finished refresh attempt, so requests that waited know one happened.
    epoch: u64,
    /// The result of the last finished attempt, shared with the requests that waited for it.
    last_result: Option<Result<(), AuthFailure>>,
    ended: Option<String>,
    refreshes: u64,
}

/// Holds requests that found the token expired until `n` have (see [`Switches::refresh_barrier`]).
struct Gather {
    state: Mutex<(usize, u64)>,
    round: tokio::sync::watch::Sender<u64>,
}

impl Gather {
    fn new() -> Self {
        Gather { state: Mutex::new((0, 0)), round: tokio::sync::watch::channel(0).0 }
    }

    async fn arrive(&self, n: usize, timeout: Duration) {
        if n <= 1 {
            return;
        }
        let (round, mut rx) = {
            let mut s = self.state.lock();
            s.0 += 1;
            if s.0 >= n {
                *s = (0, s.1 + 1);
                self.round.send_replace(s.1);
                return;
            }
            (s.1, self.round.subscribe())
        };
        if tokio::time::timeout(timeout, rx.wait_for(|r| *r != round)).await.is_err() {
            let mut s = self.state.lock();
            if s.1 == round {
                s.0 = s.0.saturating_sub(1);
            }
        }
    }
}

/// A signed-in browser session.
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub subject: String,
    pub login_nonce: String,
    pub created_ms: i64,
    tokens: Mutex<TokenState>,
    refresh_lock: tokio::sync::Mutex<()>,
    gather: Gather,
}

/// What a snapshot of a session's tokens shows (for tests and scenarios; no token values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user_id: String,
    pub access_expires_ms: i64,
    pub has_refresh_token: bool,
    /// SHA-256 of the current refresh token, hex, so two views can be compared without the token.
    pub refresh_token_sha256: Option<String>,
    pub refreshes: u64,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    NoSession,
    /// The session ended (refresh rejected, admin deactivation); the reason is shown.
    Ended(String),
    /// The session is alive but the IdP could not be reached to refresh it.
    Upstream(BsrError),
}

/// A pending sign-out: the state sent to the end-session endpoint.
struct LogoutState {
    created_ms: i64,
}

/// A local administrator's session (for the settings page and the admin panel).
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub csrf: String,
    pub created_ms: i64,
}

/// Everything the handlers share.
pub struct BsrState {
    pub base_url: String,
    pub organization: String,
    pub admin_username: String,
    pub admin_password: Secret,
    pub clock: Clock,
    pub switches: RwLock<Switches>,
    sso: RwLock<(u64, Option<SsoSettings>)>,
    provider: Mutex<Option<(u64, Arc<Provider>)>>,
    discovery_lock: tokio::sync::Mutex<()>,
    pub http: Http,
    attempts: Mutex<HashMap<String, Attempt>>,
    logout_states: Mutex<HashMap<String, LogoutState>>,
    pub users: Mutex<UserStore>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub admin_sessions: Mutex<HashMap<String, AdminSession>>,
    pub counters: Counters,
}

impl BsrState {
    pub fn new(config: &BsrConfig, base_url: String) -> anyhow::Result<Self> {
        Ok(BsrState {
            base_url,
            organization: config.organization.clone(),
            admin_username: config.admin_username.clone(),
            admin_password: config.admin_password.clone(),
            clock: config.clock.clone(),
            switches: RwLock::new(config.switches.clone()),
            sso: RwLock::new((0, config.sso.clone())),
            provider: Mutex::new(None),
            discovery_lock: tokio::sync::Mutex::new(()),
            http: Http::new(config.http_timeout, &config.trusted_ca_pem)?,
            attempts: Mutex::new(HashMap::new()),
            logout_states: Mutex::new(HashMap::new()),
            users: Mutex::new(UserStore::default()),
            sessions: Mutex::new(HashMap::new()),
            admin_sessions: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// The harness clock plus the configured offset against the IdP.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms().saturating_add(self.switches.read().clock_offset_seconds.saturating_mul(1000))
    }

    pub fn switches(&self) -> Switches {
        self.switches.read().clone()
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth2/callback", self.base_url)
    }

    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}/logout", self.base_url)
    }

    pub fn settings_path(&self) -> String {
        format!("/{}/pro-settings", self.organization)
    }

    pub fn sso_settings(&self) -> Option<SsoSettings> {
        self.sso.read().1.clone()
    }

    /// Replaces the SSO settings. The provider is discovered again on next use, and every user session
    /// ends, since its tokens came from the old settings.
    pub fn set_sso_settings(&self, s: Option<SsoSettings>) {
        {
            let mut g = self.sso.write();
            *g = (g.0 + 1, s);
        }
        *self.provider.lock() = None;
        let all: Vec<Arc<Session>> = self.sessions.lock().drain().map(|(_, s)| s).collect();
        for s in all {
            s.tokens.lock().ended = Some("the SSO settings changed; sign in again".into());
        }
    }

    /// The configured IdP, discovered once per settings and cached; a failed discovery is not cached, so
    /// the next request tries again.
    pub async fn provider(&self) -> Result<Arc<Provider>, BsrError> {
        let (generation, settings) = self.sso.read().clone();
        if let Some((g, p)) = &*self.provider.lock()
            && *g == generation
        {
            return Ok(p.clone());
        }
        let settings = settings.ok_or_else(|| BsrError::NotConfigured { settings_path: self.settings_path() })?;
        let _one_at_a_time = self.discovery_lock.lock().await;
        if let Some((g, p)) = &*self.provider.lock()
            && *g == generation
        {
            return Ok(p.clone());
        }
        let p = Arc::new(Provider::discover(&self.http, &settings, &self.counters).await?);
        if self.sso.read().0 == generation {
            *self.provider.lock() = Some((generation, p.clone()));
        }
        Ok(p)
    }

    // ----- sign-in -----

    /// Starts a sign-in attempt; returns the authorize URL and the attempt (whose binding goes in a cookie).
    pub async fn begin_login(&self, return_to: String) -> Result<(String, String, Attempt), BsrError> {
        let provider = self.provider().await?;
        let now = self.now_ms();
        let state = random_token(32);
        let attempt = Attempt {
            nonce: random_token(32),
            verifier: Secret::new(random_token(32)),
            binding: Secret::new(random_token(24)),
            created_ms: now,
            return_to,
        };
        let (scopes, pkce) = {
            let sw = self.switches.read();
            (sw.scopes.join(" "), sw.pkce)
        };
        let mut url = url::Url::parse(&provider.discovery.authorization_endpoint).map_err(|e| {
            BsrError::Upstream(super::errors::UpstreamError {
                step: Step::Discovery,
                method: "GET",
                url: provider.discovery.url.clone(),
                failure: super::errors::HttpFailure::BadShape {
                    detail: format!("authorization_endpoint {:?} is not a URL: {e}", provider.discovery.authorization_endpoint),
                },
            })
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &provider.settings.client_id)
                .append_pair("response_type", "code")
                .append_pair("scope", &scopes)
                .append_pair("redirect_uri", &self.redirect_uri())
                .append_pair("state", &state)
                .append_pair("nonce", &attempt.nonce);
            if pkce {
                q.append_pair("code_challenge", &pkce_challenge(attempt.verifier.expose())).append_pair("code_challenge_method", "S256");
            }
        }
        let mut attempts = self.attempts.lock();
        if attempts.len() >= MAX_ATTEMPTS {
            attempts.retain(|_, a| now - a.created_ms <= ATTEMPT_LIFETIME_MS);
            if attempts.len() >= MAX_ATTEMPTS
                && let Some(oldest) = attempts.iter().min_by_key(|(_, a)| a.created_ms).map(|(k, _)| k.clone())
            {
                attempts.remove(&oldest);
            }
        }
        attempts.insert(state.clone(), attempt.clone());
        Ok((url.to_string(), state, attempt))
    }

    /// RFC 9207 §2.4: an authorization response's `iss`, when present, must be the issuer the request went to
    /// (a simple string comparison), and it must be present when discovery says the IdP always sends it.
    /// Otherwise the response is refused before its code is redeemed: the mix-up defence.
    pub async fn check_response_issuer(&self, iss: Option<&str>) -> Result<(), BsrError> {
        if !self.switches.read().check_iss_param {
            return Ok(());
        }
        let provider = self.provider().await?;
        let want = &provider.discovery.issuer;
        match iss {
            Some(i) if i == want => Ok(()),
            Some(i) => Err(BsrError::BadCallback(format!(
                "the authorization response's iss parameter {i:?} is not the issuer {want:?} (RFC 9207 §2.4); the response was refused and its code not redeemed"
            ))),
            None if provider.discovery.authorization_response_iss_parameter_supported => Err(BsrError::BadCallback(format!(
                "the authorization response has no iss parameter, but the discovery document of {want:?} says every response carries one (RFC 9207 §2.4); the response was refused and its code not redeemed"
            ))),
            None => Ok(()),
        }
    }

    /// Takes (consumes) the attempt of a callback's `state`.
    pub fn take_attempt(&self, state: &str) -> Option<Attempt> {
        let a = self.attempts.lock().remove(state)?;
        (self.now_ms() - a.created_ms <= ATTEMPT_LIFETIME_MS).then_some(a)
    }

    /// Finishes a sign-in: code exchange, ID-token validation, JIT provisioning, a new session. Nothing is
    /// provisioned unless every check before it passed.
    pub async fn complete_login(&self, code: &str, attempt: &Attempt) -> Result<(Arc<Session>, BsrUser), BsrError> {
        let provider = self.provider().await?;
        let sw = self.switches();
        bump(&self.counters.code_exchanges);
        let redirect_uri = self.redirect_uri();
        let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri.as_str())];
        if sw.pkce {
            form.push(("code_verifier", attempt.verifier.expose()));
        }
        let tr = provider.token(&self.http, Step::Token, &form).await?;
        let received = self.now_ms();
        let id_token = tr.id_token.clone().ok_or_else(|| {
            BsrError::IdToken(format!(
                "the token response from POST {} has no id_token (was the openid scope granted?)",
                provider.discovery.token_endpoint
            ))
        })?;
        let claims = provider
            .validate_id_token(
                &self.http,
                id_token.expose(),
                NonceRule::Required(&attempt.nonce),
                None,
                sw.check_at_hash.then(|| tr.access_token.expose()),
                received,
                sw.clock_skew_seconds as i64,
                sw.jwks,
                &self.counters,
            )
            .await?;
        let mut email = claims.email.clone();
        let mut name = claims.name.clone();
        let mut email_verified = claims.email_verified;
        if email.is_none() {
            // Some providers put profile claims only in userinfo; look there before giving up.
            bump(&self.counters.userinfo_requests);
            if let Some(info) = provider.userinfo(&self.http, &tr.access_token).await? {
                let sub = info.get("sub").and_then(|v| v.as_str());
                if sub != Some(claims.sub.as_str()) {
                    return Err(BsrError::IdToken(format!(
                        "userinfo's sub {sub:?} is not the ID token's sub {:?} (OpenID Connect Core §5.3.2)",
                        claims.sub
                    )));
                }
                email = info.get("email").and_then(|v| v.as_str()).map(str::to_string);
                email_verified = super::oidc::email_verified_claim(&info);
                name = name.or_else(|| info.get("name").and_then(|v| v.as_str()).map(str::to_string));
            }
        }
        // The email links the login to an account, so an unverified one stops the sign-in before the store
        // is touched (jit.rs).
        if email.is_some() {
            super::jit::check_email_verified(email.as_deref(), email_verified, sw.email_verified).map_err(BsrError::Provisioning)?;
        }
        let (user, created) =
            self.users.lock().provision(email.as_deref(), name.as_deref(), &claims.sub, received).map_err(BsrError::Provisioning)?;
        if created {
            bump(&self.counters.users_created);
        }
        if user.state == UserState::Deactivated {
            return Err(BsrError::Deactivated { username: user.username });
        }
        bump(&self.counters.logins);
        let session = Arc::new(Session {
            id: random_token(32),
            user_id: user.id.clone(),
            subject: claims.sub,
            login_nonce: attempt.nonce.clone(),
            created_ms: received,
            tokens: Mutex::new(TokenState {
                access_token: tr.access_token,
                access_expires_ms: received.saturating_add(tr.expires_in.unwrap_or(DEFAULT_EXPIRES_IN_S).saturating_mul(1000)),
                refresh_token: tr.refresh_token,
                id_token,
                epoch: 0,
                last_result: None,
                ended: None,
                refreshes: 0,
            }),
            refresh_lock: tokio::sync::Mutex::new(()),
            gather: Gather::new(),
        });
        self.sessions.lock().insert(session.id.clone(), session.clone());
        Ok((session, user))
    }

    // ----- sessions -----

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().get(id).cloned()
    }

    /// Ends a session locally; returns it if it was alive.
    pub fn end_session(&self, id: &str, reason: &str) -> Option<Arc<Session>> {
        let s = self.sessions.lock().remove(id)?;
        let mut t = s.tokens.lock();
        if t.ended.is_none() {
            t.ended = Some(reason.to_string());
        }
        drop(t);
        Some(s)
    }

    fn end_by_idp(&self, s: &Session, reason: String) -> AuthFailure {
        // Counted once per session, however many concurrent requests saw the rejection.
        if self.sessions.lock().remove(&s.id).is_some() {
            bump(&self.counters.sessions_ended_by_idp);
        }
        let mut t = s.tokens.lock();
        let r = t.ended.get_or_insert(reason).clone();
        AuthFailure::Ended(r)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    pub fn sessions_of(&self, user_id: &str) -> Vec<Arc<Session>> {
        self.sessions.lock().values().filter(|s| s.user_id == user_id).cloned().collect()
    }

    pub fn session_info(&self, s: &Session) -> SessionInfo {
        let t = s.tokens.lock();
        SessionInfo {
            user_id: s.user_id.clone(),
            access_expires_ms: t.access_expires_ms,
            has_refresh_token: t.refresh_token.is_some(),
            refresh_token_sha256: t
                .refresh_token
                .as_ref()
                .map(|r| Sha256::digest(r.expose().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()),
            refreshes: t.refreshes,
        }
    }

    pub fn all_session_infos(&self) -> Vec<SessionInfo> {
        let all: Vec<Arc<Session>> = self.sessions.lock().values().cloned().collect();
        all.iter().map(|s| self.session_info(s)).collect()
    }

    /// The session of a cookie value, refreshed if its access token has expired, and its user.
    pub async fn authenticate(&self, session_id: Option<&str>) -> Result<(Arc<Session>, BsrUser), AuthFailure> {
        let s = session_id.and_then(|id| self.session(id)).ok_or(AuthFailure::NoSession)?;
        self.ensure_fresh(&s).await?;
        let user = self.users.lock().get(&s.user_id).cloned().ok_or(AuthFailure::NoSession)?;
        Ok((s, user))
    }

    async fn ensure_fresh(&self, s: &Arc<Session>) -> Result<(), AuthFailure> {
        let sw = self.switches();
        let (epoch, refresh_token) = {
            let t = s.tokens.lock();
            if let Some(r) = &t.ended {
                return Err(AuthFailure::Ended(r.clone()));
            }
            if self.now_ms() < t.access_expires_ms {
                return Ok(());
            }
            (t.epoch, t.refresh_token.clone())
        };
        if let Some(n) = sw.refresh_barrier {
            s.gather.arrive(n, Duration::from_millis(sw.refresh_barrier_timeout_ms)).await;
        }
        match sw.refresh_strategy {
            // Each request refreshes with the token it saw, whatever the others are doing.
            RefreshStrategy::Naive => self.refresh(s, refresh_token, &sw).await,
            RefreshStrategy::SingleFlight => {
                let _one_per_session = s.refresh_lock.lock().await;
                let refresh_token = {
                    let t = s.tokens.lock();
                    if let Some(r) = &t.ended {
                        return Err(AuthFailure::Ended(r.clone()));
                    }
                    if t.epoch != epoch {
                        // A refresh finished while this request waited: its result is this request's result.
                        return t.last_result.clone().unwrap_or(Ok(()));
                    }
                    if self.now_ms() < t.access_expires_ms {
                        return Ok(());
                    }
                    t.refresh_token.clone()
                };
                self.refresh(s, refresh_token, &sw).await
            }
        }
    }

    fn finish_attempt(&self, s: &Session, result: Result<(), AuthFailure>) -> Result<(), AuthFailure> {
        let mut t = s.tokens.lock();
        t.epoch += 1;
        t.last_result = Some(result.clone());
        result
    }

    async fn refresh(&self, s: &Arc<Session>, refresh_token: Option<Secret>, sw: &Switches) -> Result<(), AuthFailure> {
        let Some(rt) = refresh_token else {
            let f = self.end_by_idp(
                s,
                "the access token expired and the identity provider issued no refresh token (was offline_access granted?)".into(),
            );
            return self.finish_attempt(s, Err(f));
        };
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return self.finish_attempt(s, Err(AuthFailure::Upstream(e))),
        };
        bump(&self.counters.refresh_requests);
        let scope = sw.refresh_scopes.as_ref().map(|v| v.join(" "));
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt.expose())];
        if let Some(sc) = &scope {
            form.push(("scope", sc));
        }
        let tr = match provider.token(&self.http, Step::Refresh, &form).await {
            Ok(tr) => tr,
            Err(e) => {
                bump(&self.counters.refresh_failures);
                let f = if e.is_invalid_grant() {
                    self.end_by_idp(s, format!("the identity provider rejected the refresh token, so the session ended: {e}"))
                } else {
                    AuthFailure::Upstream(e.into())
                };
                return self.finish_attempt(s, Err(f));
            }
        };
        let received = self.now_ms();
        let mut id_token = None;
        let mut deferred = None;
        if let Some(idt) = &tr.id_token {
            let rule = match sw.refresh_nonce {
                NonceCheck::Lenient => NonceRule::AbsentOr(&s.login_nonce),
                NonceCheck::Strict => NonceRule::Required(&s.login_nonce),
            };
            match provider
                .validate_id_token(
                    &self.http,
                    idt.expose(),
                    rule,
                    Some(&s.subject),
                    sw.check_at_hash.then(|| tr.access_token.expose()),
                    received,
                    sw.clock_skew_seconds as i64,
                    sw.jwks,
                    &self.counters,
                )
                .await
            {
                Ok(_) => id_token = Some(idt.clone()),
                // The JWKS could not be fetched: the rotation has committed at the IdP, so the new tokens are
                // kept (dropping them would kill the chain) with the previous ID token, and this request fails.
                Err(e @ BsrError::Upstream(_)) => deferred = Some(e),
                Err(e) => {
                    bump(&self.counters.refresh_failures);
                    let why = match e {
                        BsrError::IdToken(m) => format!("the ID token of the refresh was rejected ({m}), so the session ended"),
                        other => format!("{other}; the session ended"),
                    };
                    let f = self.end_by_idp(s, why);
                    return self.finish_attempt(s, Err(f));
                }
            }
        }
        bump(&self.counters.refresh_successes);
        let mut t = s.tokens.lock();
        // A session another request ended stays ended: a late success must not bring it back.
        if t.ended.is_none() {
            t.access_token = tr.access_token;
            t.access_expires_ms = received.saturating_add(tr.expires_in.unwrap_or(DEFAULT_EXPIRES_IN_S).saturating_mul(1000));
            if let Some(r) = tr.refresh_token {
                t.refresh_token = Some(r);
            }
            if let Some(i) = id_token {
                t.id_token = i;
            }
            t.refreshes += 1;
        }
        drop(t);
        // This request had a fresh token when it was answered, so it succeeds even if the session ended since.
        self.finish_attempt(s, deferred.map_or(Ok(()), |e| Err(AuthFailure::Upstream(e))))
    }

    // ----- sign-out -----

    /// Ends the session locally, revokes its refresh token if configured, and returns where to send the
    /// browser (the IdP's end-session endpoint) if there is somewhere to send it.
    pub async fn begin_logout(&self, session_id: Option<&str>) -> Result<Option<String>, BsrError> {
        let Some(s) = session_id.and_then(|id| self.end_session(id, "signed out")) else { return Ok(None) };
        let (id_token, refresh_token) = {
            let t = s.tokens.lock();
            (t.id_token.clone(), t.refresh_token.clone())
        };
        let provider = self.provider().await?;
        let revoke = self.switches.read().revoke_on_logout;
        if revoke && let Some(rt) = &refresh_token {
            bump(&self.counters.revocations);
            if let Err(e) = provider.revoke(&self.http, rt, "refresh_token").await {
                // Sign-out goes on: the local session is gone; the failure is logged without the token.
                tracing::warn!(error = %e, "revoking the refresh token on sign-out failed");
            }
        }
        let Some(end) = provider.settings.logout_url.clone().or_else(|| provider.discovery.end_session_endpoint.clone()) else {
            return Ok(None);
        };
        let state = random_token(24);
        let now = self.now_ms();
        {
            let mut ls = self.logout_states.lock();
            ls.retain(|_, v| now - v.created_ms <= ATTEMPT_LIFETIME_MS);
            if ls.len() < MAX_ATTEMPTS {
                ls.insert(state.clone(), LogoutState { created_ms: now });
            }
        }
        let mut url = match url::Url::parse(&end) {
            Ok(u) => u,
            Err(_) => return Ok(None),
        };
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token.expose())
            .append_pair("post_logout_redirect_uri", &self.post_logout_redirect_uri())
            .append_pair("state", &state);
        Ok(Some(url.to_string()))
    }

    /// The return from the IdP's end-session endpoint; `true` when the state was ours.
    pub fn finish_logout(&self, state: &str) -> bool {
        let now = self.now_ms();
        self.logout_states.lock().remove(state).is_some_and(|v| now - v.created_ms <= ATTEMPT_LIFETIME_MS)
    }

    // ----- admin -----

    /// Deactivates a user: every session ends and its tokens are revoked at the IdP. Returns the user, the
    /// number of sessions ended, tokens revoked, and revocation failures.
    pub async fn deactivate(&self, user_id: &str) -> Option<(BsrUser, usize, usize, Vec<String>)> {
        let user = self.users.lock().set_state(user_id, UserState::Deactivated)?;
        let sessions = self.sessions_of(user_id);
        let mut tokens = Vec::new();
        for s in &sessions {
            if let Some(s) = self.end_session(&s.id, "the user was deactivated by an administrator") {
                let t = s.tokens.lock();
                if let Some(r) = &t.refresh_token {
                    tokens.push((r.clone(), "refresh_token"));
                }
                tokens.push((t.access_token.clone(), "access_token"));
            }
        }
        let mut revoked = 0;
        let mut errors = Vec::new();
        if !tokens.is_empty() {
            match self.provider().await {
                Ok(p) => {
                    for (tok, hint) in &tokens {
                        bump(&self.counters.revocations);
                        match p.revoke(&self.http, tok, hint).await {
                            Ok(true) => revoked += 1,
                            Ok(false) => errors.push(format!("the identity provider has no revocation endpoint ({})", p.discovery.url)),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        errors.dedup();
        Some((user, sessions.len(), revoked, errors))
    }

    pub fn activate(&self, user_id: &str) -> Option<BsrUser> {
        self.users.lock().set_state(user_id, UserState::Active)
    }

    /// A live admin session for a cookie value.
    pub fn admin_session(&self, token: &str) -> Option<AdminSession> {
        let now = self.now_ms();
        let mut m = self.admin_sessions.lock();
        m.retain(|_, a| now - a.created_ms <= ADMIN_SESSION_LIFETIME_MS);
        m.get(token).cloned()
    }

    pub fn new_admin_session(&self) -> (String, AdminSession) {
        let token = random_token(32);
        let a = AdminSession { csrf: random_token(24), created_ms: self.now_ms() };
        let mut m = self.admin_sessions.lock();
        if m.len() >= MAX_ATTEMPTS {
            m.clear();
        }
        m.insert(token.clone(), a.clone());
        (token, a)
    }

    pub fn counter(&self, c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // SHA-256("abc") is FIPS 180-2's test vector ba7816bf…f20015ad, here in base64url without padding.
        assert_eq!(pkce_challenge("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert_eq!(random_token(32).len(), 43);
    }

    #[test]
    fn attempt_cookies_differ_per_state() {
        assert_ne!(attempt_cookie("a"), attempt_cookie("b"));
        assert!(attempt_cookie("a").starts_with("bsr_login_"));
        assert_eq!(attempt_cookie("a").len(), "bsr_login_".len() + 16);
    }

    #[tokio::test]
    async fn gather_releases_together_or_after_timeout() {
        let g = Arc::new(Gather::new());
        let a = {
            let g = g.clone();
            tokio::spawn(async move { g.arrive(2, Duration::from_secs(5)).await })
        };
        g.arrive(2, Duration::from_secs(5)).await;
        a.await.unwrap();
        // Alone, it gives up after the timeout and leaves the count as it was.
        g.arrive(3, Duration::from_millis(10)).await;
        assert_eq!(g.state.lock().0, 0);
    }
}
